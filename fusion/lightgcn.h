// LightGCN (He et al., SIGIR 2020) as a warm-start peer behind the Baseline interface: the model of the
// paper and of its reference code (gusye1234/LightGCN-PyTorch), in LibTorch.
//
// Nodes share one index space [users | items]: user u -> u, item i -> num_users + i.
//
//   A          = the symmetric-normalised adjacency D^-1/2 [[0, R], [R^T, 0]] D^-1/2 of the binary
//                training matrix R (users x items), D its diagonal degree matrix (a node without
//                training interactions has an empty row and column)
//   e^(0)      = learned embeddings, init N(0, 0.1^2)
//   e^(k)      = A e^(k-1), k = 1..layers (no weights, no non-linearity, no self-loop)
//   e          = mean of e^(0..layers)
//   score(u,i) = <e_u, e_i>
//
// Training: per epoch, one (user, positive, negative) triple per training pair in a seeded random
// order, the negative uniform over the items not in the user's training set (the reference code
// instead draws as many users uniformly, then one of each user's items); mini-batches of `batch`
// triples, each step propagating the whole graph once; loss = mean softplus(s_neg - s_pos) + l2 *
// sum of (|e_u^(0)|^2 + |e_i^(0)|^2 + |e_j^(0)|^2) / 2 / batch size; Adam. On the CPU the propagation is a
// CSR product of our own with the running mean fused in (on LibTorch's intra-op threads), the loss
// and its gradient are computed by hand in one pass (A is symmetric, so the backward of the
// propagation is the same propagation), and Adam is one fused pass; on a GPU they are torch::mm of
// the sparse tensor and LibTorch operations. An epoch of `mosaic eval`'s Last.FM warm split (1,892
// users, 17,632 items, 74k training pairs) takes ~0.45-0.6 s on one core of the 2-core build machine.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "fusion/baselines.h"

namespace mosaic::fusion {

struct LightGcnOptions {
  int dim = 64;                ///< embedding width
  int layers = 3;              ///< propagation layers (0: plain matrix factorisation with BPR)
  double lr = 1e-3;            ///< Adam learning rate
  double l2 = 1e-4;            ///< weight of the L2 term on the batch's layer-0 embeddings
  int batch = 2048;            ///< BPR triples per step
  int max_epochs = 300;        ///< epoch limit with validation; without, min(100, max_epochs) epochs
  int eval_every = 5;          ///< epochs between validation checks (the last epoch is checked too)
  int patience = 5;            ///< checks without a better validation Recall@20 before stopping
  uint64_t seed = 1;           ///< initialisation (LibTorch CPU generator) and sampling (SplitMix64)
  std::string device = "cpu";  ///< cpu, cuda or auto (fusion::ResolveDevice)
};

// The row "LightGCN". Fit(data, train, valid) trains on the binary matrix of the train interactions
// (weights ignored, duplicate pairs once). With a non-empty `valid` it measures, every eval_every
// epochs, Recall@20 and NDCG@20 on the validation interactions exactly as the warm protocol
// measures test (fusion::RankingEvaluator over every item not in the user's training set, ties to
// the lower index), keeps the embeddings of the check with the best Recall@20 (the earlier one on
// a tie) and stops after `patience` checks without improvement or at max_epochs. Without `valid`
// it trains min(100, max_epochs) epochs and keeps the last. tuning() reports the checks as
// "epoch=N" points (one point with zero metrics without `valid`), chosen = the kept epoch.
// ScoreUser is const and thread-safe after Fit (plain float copies of the final embeddings); items
// without training interactions score with their untrained layer-0 embedding / (layers + 1).
// Deterministic for a seed on one machine and device (the CPU loops have AVX2/FMA variants, which
// round differently from the baseline ones). Throws std::invalid_argument for an option out of
// range (here) and for indices out of line with `data` (in Fit).
// With $MOSAIC_TRAIN_LOG set, each check prints a line (epoch, loss, seconds per epoch, validation
// Recall@20) on stderr.
std::unique_ptr<Baseline> MakeLightGcn(const LightGcnOptions& options);

// The normalised adjacency D^-1/2 A D^-1/2 of the bipartite graph of `user_items` (pairs (user,
// item), duplicates counted once) over num_users + num_items nodes: a coalesced float32 sparse COO
// tensor with value 1 / sqrt(deg(u) deg(i)) at (u, num_users + i) and (num_users + i, u). Throws
// std::invalid_argument for a user or item out of range.
at::Tensor NormalisedAdjacency(uint32_t num_users, uint32_t num_items,
                               const std::vector<std::pair<uint32_t, uint32_t>>& user_items);

// The final embeddings: the mean of e^(0) = `embeddings` [n, d] and e^(k) = adjacency e^(k-1) for
// k = 1..layers, where adjacency is NormalisedAdjacency's tensor over the same n nodes (on the
// embeddings' device). The propagation Fit trains with, so gradients flow to `embeddings`.
at::Tensor LightGcnPropagate(const at::Tensor& adjacency, const at::Tensor& embeddings, int layers);

// The loss Fit minimises on one mini-batch of B triples, differentiable w.r.t. `embeddings` (e0):
// (1/B) sum over b of [softplus(<e_u, e_j> - <e_u, e_i>) + l2 (|e0_u|^2 + |e0_i|^2 + |e0_j|^2) / 2],
// with e = LightGcnPropagate(adjacency, embeddings, layers) and u = users[b], i = positives[b],
// j = negatives[b] node indices (int64; an item is num_users + item).
// On the CPU in one fused pass each way (the gradient by hand), elsewhere by LibTorch operations.
// Throws std::invalid_argument for an index out of range or tensors of unequal or zero length.
at::Tensor LightGcnBatchLoss(const at::Tensor& adjacency, const at::Tensor& embeddings, int layers, double l2,
                             const at::Tensor& users, const at::Tensor& positives, const at::Tensor& negatives);

// Fit's optimiser: Adam (Kingma & Ba, ICLR 2015) with torch::optim::Adam's formula and defaults
// (betas 0.9 and 0.999, eps 1e-8, no weight decay), in one fused pass over the parameters on the CPU
// (torch::optim::Adam makes about six passes and two temporaries: ~3x slower at Last.FM's size);
// LibTorch operations elsewhere. Step updates `param` in place, outside autograd; `grad` has its
// shape and device (both contiguous on the CPU).
class LightGcnAdam {
 public:
  LightGcnAdam(const at::Tensor& param, double lr);
  void Step(const at::Tensor& param, const at::Tensor& grad);

 private:
  at::Tensor m_, v_;  ///< first and second moments, param's shape
  double lr_;
  int64_t steps_ = 0;  ///< steps taken
};

}  // namespace mosaic::fusion
