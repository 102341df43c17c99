// Training of the graph-attention model (fusion/kgat.h) on a collaborative knowledge graph given as
// plain arrays: BPR on user-item interactions plus TransR on the KG triples, with item-id dropout so
// that items are also scored from content and neighbours alone. No store: jobs/ fills a
// TrainingGraph from a store snapshot, `mosaic eval` from its split.
//
// An epoch: (1) a share of the warm items is made cold for the epoch (id embedding and interaction
// edges removed: item-id dropout at the level of the graph, the situation of a new item), and the
// neighbourhood of every node is sampled afresh (at most max_neighbours edges per head, seeded), (2) the attention pi of the sampled edges is computed once, without a gradient, as
// KGAT's reference implementation does, (3) the interactions are shuffled into mini-batches; each step
// runs the full-graph propagation over the sampled edges, a BPR loss on the batch with one sampled
// negative per positive, and a TransR loss on a batch of KG triples with corrupted tails, and takes one
// Adam step. Every random draw of epoch e comes from seeds derived from (seed, e), so a run resumed from
// a checkpoint taken between epochs continues exactly as the uninterrupted run would have.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "fusion/kgat.h"
#include "fusion/training_graph.h"
#include "fusion/training_group.h"

namespace mosaic::fusion {

// Defaults: the settings docs/results.md reports (tried on Last.FM warm validation).
struct TrainOptions {
  int epochs = 80;                               ///< a rebuild's length; eval stops earlier on validation
  int64_t dim = 64;                              ///< layer-0 width
  int64_t relation_dim = 64;                     ///< TransR relation space width
  std::vector<int64_t> layer_dims{64, 32, 16};   ///< propagation layers
  double id_dropout = 0.3;                       ///< share of warm items trained without their id embedding
  /// Share of warm items made cold for a whole epoch: no id embedding and none of their interaction
  /// edges, so they are scored from content and KG neighbours alone, as a new item is.
  double cold_share = 0.2;
  double message_dropout = 0.1;
  double l2 = 3e-3;              ///< weight of the L2 terms (tuned on Last.FM warm validation, docs/results.md)
  double learning_rate = 0.01;   ///< Adam
  double kg_weight = 1.0;        ///< weight of the TransR loss beside BPR
  int64_t batch_size = 16384;    ///< interactions per step
  int64_t negatives = 4;         ///< sampled negatives per positive (each a BPR pair; the forward pass is shared)
  int64_t kg_batch_size = 4096;  ///< KG triples per step
  int64_t max_neighbours = 64;   ///< edges sampled per head and epoch in training (inference uses all)
  uint64_t seed = 1;
  std::string device = "cpu";    ///< cpu, cuda or auto
  /// Data-parallel training (null: this process alone). Every rank draws each step's batch alike
  /// and takes its own contiguous share of the BPR pairs and of the TransR triples; the gradients
  /// are averaged over the ranks after backward(), so every rank takes the same Adam step. The
  /// forward pass over the graph is the whole graph's on every rank (the model propagates over all
  /// of it), so only the loss terms are divided.
  std::shared_ptr<TrainingGroup> group;
};

struct EpochReport {
  int epoch = 0;           ///< 1-based number of the epoch just finished
  double bpr_loss = 0;     ///< mean over its steps
  double kg_loss = 0;      ///< mean over its steps (0 without triples)
  int64_t steps = 0;
  int64_t kg_triples = 0;  ///< TransR triples seen
  double seconds = 0;
  int64_t bytes_allreduced = 0;  ///< gradient bytes this rank sent into allreduces (0 alone)
  double allreduce_seconds = 0;  ///< time in those allreduces (waiting for the slowest rank included)
};

// Resolves "auto" to cuda when LibTorch has it and a GPU is present, else cpu; throws
// std::invalid_argument for cuda without one, or an unknown name.
std::string ResolveDevice(const std::string& device);

class Trainer {
 public:
  // Throws std::invalid_argument when the graph is inconsistent (indices out of range, modality rows
  // of the wrong size) or an option is out of range.
  Trainer(TrainingGraph graph, const TrainOptions& options);
  ~Trainer();
  Trainer(const Trainer&) = delete;
  Trainer& operator=(const Trainer&) = delete;

  // The Kgat configuration this trainer builds (for saving beside the weights).
  static KgatConfig ModelConfig(const TrainingGraph& graph, const TrainOptions& options);

  int epochs_done() const;
  const TrainingGraph& graph() const;
  Kgat& model();

  // Runs one epoch; on_step(step, steps) after each step (1-based).
  EpochReport RunEpoch(const std::function<void(int64_t, int64_t)>& on_step = {});

  // Eval-mode representations of every node over the full graph, float [num_nodes, total_dim] on the
  // CPU. Also keeps the full graph's attention (see Attention()).
  at::Tensor Representations();

  // The full graph (every edge, both directions) and the attention of its edges from the last
  // Representations() call (undefined before).
  const GraphTensors& FullGraph() const;
  at::Tensor Attention() const;

  // Everything a resumed run needs (weights, optimizer state, epochs done), as bytes; LoadCheckpoint
  // restores it into a Trainer built from the same graph and options (throws std::invalid_argument
  // when the checkpoint does not fit).
  std::string SaveCheckpoint();
  void LoadCheckpoint(const std::string& blob);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// The model's weights as bytes (torch serialization), and back into a model built from `config`;
// LoadWeights throws std::invalid_argument when they do not fit the configuration.
std::string SaveWeights(Kgat& model);
Kgat LoadWeights(const KgatConfig& config, const std::string& blob, const std::string& device);

// KgatConfig to and from JSON text, for a model version's manifest.
std::string ConfigToJson(const KgatConfig& config);
KgatConfig ConfigFromJson(const std::string& json);

}  // namespace mosaic::fusion
