// The graph-attention fusion model (KGAT, Wang et al. 2019, with multimodal item fusion) as a
// LibTorch module; see shared/design/DESIGN.md, "The model". Tensors in, tensors out: no store.
//
// Nodes share one index space [users | items | entities]:
//   user u -> u,  item i -> num_users + i,  entity e -> num_users + num_items + e.
//
//   item layer 0   = id_embedding[i] * keep_i + sum_m g_im * P_m x_im
//                    keep_i = 0 for items flagged cold, and for items dropped by id-dropout in training;
//                    g_i = softmax over the modalities present for item i of a_m . tanh(P_m x_im) + b_m
//                    (absent modalities get -inf before the softmax, so they have no influence; an item
//                    with no modality gets only its id part)
//   user/entity 0  = their learned embeddings
//   pi(h,r,t)      = (W_r e_t)^T tanh(W_r e_h + e_r), softmax over the edges of each head (layer-0 e)
//   layer k        = normalize(LeakyReLU(W1_k(e_h + e_N)) + LeakyReLU(W2_k(e_h * e_N))),  e_N = sum_t pi e_t
//                    over layer k-1, message dropout in training. The normalised layer is what the next
//                    layer reads, so a node's layer k depends only on layer k-1 of its neighbours as stored
//                    in the representation: a new item can be placed with InferItems from stored
//                    representations alone, exactly as Forward would have placed it.
//   representation = concat(layer 0, layer 1, ..., layer L)        [num_nodes, dim + sum(layer_dims)]
//
// Everything follows the module's device (`.to(device)`); index tensors given on another device are
// moved. Random draws (initialisation, id-dropout, message dropout) come from the module's own CPU
// generator seeded by KgatConfig::seed, so the same seed gives the same weights and the same outputs.
#pragma once

#include <ATen/core/Generator.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace mosaic::fusion {

struct KgatConfig {
  int64_t num_users = 0;
  int64_t num_items = 0;
  int64_t num_entities = 0;
  int64_t num_relations = 0;   ///< including inverse relations and the interaction relation(s)
  int64_t dim = 64;            ///< width of layer 0 (embeddings and projected modalities)
  int64_t relation_dim = 64;   ///< width of the TransR relation space
  std::vector<int64_t> layer_dims{64, 32, 16};  ///< output widths of the propagation layers
  /// Input width of each modality (from the training data; none by default); the mask's columns
  /// follow this map's (sorted) order.
  std::map<std::string, int64_t> modality_dims;
  double id_dropout = 0.5;       ///< probability of zeroing a warm item's id embedding in training
  double message_dropout = 0.1;  ///< dropout on each propagation layer's output in training
  double l2 = 1e-5;              ///< weight of the L2 terms in BprLoss and TransRLoss
  uint64_t seed = 0;
};

// The sampled neighbourhood, one entry per directed edge (both directions included by the caller;
// interactions are a relation too). int64 [E] each, node indices as above, relations in
// [0, num_relations). E may be 0.
struct GraphTensors {
  torch::Tensor edge_head;
  torch::Tensor edge_rel;
  torch::Tensor edge_tail;
};

// Item content. `vectors[name]` float [num_items, modality_dims[name]] (rows of absent items may hold
// anything finite or not; they are never read into the result). `mask` bool [num_items, M], columns
// in KgatConfig::modality_dims order (ModalityNames()), true = present; a modality missing from
// `vectors` must have an all-false column. `cold` bool [num_items] (optional; undefined = none):
// items without an id embedding.
struct ModalityTensors {
  std::map<std::string, torch::Tensor> vectors;
  torch::Tensor mask;
  torch::Tensor cold;
};

class KgatImpl : public torch::nn::Module {
 public:
  explicit KgatImpl(KgatConfig config);

  const KgatConfig& config() const { return config_; }
  int64_t num_nodes() const { return config_.num_users + config_.num_items + config_.num_entities; }
  int64_t total_dim() const;  ///< dim + sum(layer_dims)
  std::vector<std::string> ModalityNames() const;  ///< the mask's column order
  int64_t UserNode(int64_t u) const { return u; }
  int64_t ItemNode(int64_t i) const { return config_.num_users + i; }
  int64_t EntityNode(int64_t e) const { return config_.num_users + config_.num_items + e; }

  // Layer-0 embeddings of all nodes, [num_nodes, dim]. `training` turns id-dropout on.
  torch::Tensor Layer0(const ModalityTensors& m, bool training);
  // Item layer 0 only, [num_items, dim].
  torch::Tensor ItemLayer0(const ModalityTensors& m, bool training);

  // All node representations, [num_nodes, total_dim()]. `training` turns id-dropout and message
  // dropout on. Keeps the layer-0 table (for the 4-argument TransRLoss) and the attention weights.
  // `attention` ([E], optional): weights to propagate with instead of computing them (KGAT trains
  // with attention refreshed once per epoch, without a gradient through it).
  torch::Tensor Forward(const GraphTensors& g, const ModalityTensors& m, bool training,
                        const torch::Tensor& attention = {});

  // Representations of items that are not nodes of this model (ingested after it was trained), from
  // their content and their edges to existing nodes, with no id embedding:
  //  * m: vectors [n, dim_m] and mask [n, M] of the new items (`cold` is ignored: all are cold);
  //  * edges: edge_head in [0, n) (the new item), edge_rel, edge_tail an existing node index;
  //  * reps: the stored representations of the existing nodes, [num_nodes, total_dim()].
  // Returns [n, total_dim()] on reps' device: what Forward (eval mode) gives a cold item with these
  // edges, given that the existing nodes keep their representations. An item with no edges gets its
  // content alone propagated through the layers.
  torch::Tensor InferItems(const ModalityTensors& m, const GraphTensors& edges, const torch::Tensor& reps);

  // Restarts the module's generator (id-dropout and message dropout draws) from `seed`, so that a run
  // resumed at an epoch boundary draws what the uninterrupted run drew.
  void Reseed(uint64_t seed);

  // Dot products of the representations of users (indices in [0, num_users)) and items (indices in
  // [0, num_items)), int64 [B] each -> [B].
  torch::Tensor Score(const torch::Tensor& reps, const torch::Tensor& users, const torch::Tensor& items) const;

  // mean softplus(-(s(u,pos) - s(u,neg))) + l2 * mean(|r_u|^2 + |r_pos|^2 + |r_neg|^2) / 2.
  torch::Tensor BprLoss(const torch::Tensor& reps, const torch::Tensor& users, const torch::Tensor& pos_items,
                        const torch::Tensor& neg_items) const;

  // TransR on triples of node indices h, t_pos, t_neg and relations r (int64 [B]):
  // mean softplus(||W_r e_h + e_r - W_r e_t+||^2 - ||W_r e_h + e_r - W_r e_t-||^2) + l2 * L2 / 2,
  // with e taken from `layer0` ([num_nodes, dim], e.g. Layer0(m, true)).
  torch::Tensor TransRLoss(const torch::Tensor& layer0, const torch::Tensor& h, const torch::Tensor& r,
                           const torch::Tensor& t_pos, const torch::Tensor& t_neg);
  // The same on the layer-0 table of the last Forward (so BPR + TransR share one graph); throws
  // std::logic_error before any Forward.
  torch::Tensor TransRLoss(const torch::Tensor& h, const torch::Tensor& r, const torch::Tensor& t_pos,
                           const torch::Tensor& t_neg);

  // The attention pi of each edge of the last Forward, [E] float (detached), in the order of its
  // GraphTensors; undefined before any Forward.
  torch::Tensor AttentionWeights() const { return last_attention_; }

  // pi for the edges of `g` with layer-0 embeddings `layer0` ([E], differentiable).
  torch::Tensor Attention(const torch::Tensor& layer0, const GraphTensors& g);

  torch::nn::Embedding user_embedding{nullptr}, item_embedding{nullptr}, entity_embedding{nullptr};
  std::vector<torch::nn::Linear> modality_projection;  ///< one per modality, ModalityNames() order
  torch::Tensor gate_vector;      ///< a [dim]
  torch::Tensor gate_bias;        ///< b [M]
  torch::Tensor relation_embedding;   ///< e_r [R, relation_dim]
  torch::Tensor relation_projection;  ///< W_r [R, dim, relation_dim]
  std::vector<torch::nn::Linear> w1, w2;  ///< bi-interaction, one pair per layer

 private:
  torch::Device device() const;
  // x [B, dim] projected by W_r for each row's relation r [B] -> [B, relation_dim].
  torch::Tensor Project(const torch::Tensor& x, const torch::Tensor& r) const;
  // x scaled by a keep mask drawn from the module's generator (inverted dropout).
  torch::Tensor Dropout(const torch::Tensor& x, double p);
  // Gated fusion of the projected modalities of n rows, [n, dim] (zeros for rows with none).
  torch::Tensor FuseModalities(const ModalityTensors& m, int64_t n);
  // One propagation layer k: x [n, d_in] with its aggregated neighbours [n, d_in] -> normalised [n, d_out].
  torch::Tensor Propagate(size_t k, const torch::Tensor& x, const torch::Tensor& neighbours, bool training);

  KgatConfig config_;
  std::vector<std::string> modality_names_;
  at::Generator generator_;
  torch::Tensor last_layer0_;
  torch::Tensor last_attention_;
};
TORCH_MODULE(Kgat);

}  // namespace mosaic::fusion
