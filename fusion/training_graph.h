// The collaborative knowledge graph a model trains on, as plain arrays (no LibTorch, no store), and
// the one function that builds it from EvalData: `mosaic rebuild` passes every interaction, `mosaic
// eval` the training part of a split, so both train on a graph made by the same code.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "fusion/eval_data.h"

namespace mosaic::fusion {

// A KG triple; head and tail are node indices (Kgat numbering) of items or entities.
struct Triple {
  uint32_t head = 0;
  uint32_t relation = 0;  ///< KG relation type in [0, TrainingGraph::num_kg_relations)
  uint32_t tail = 0;
};

// The collaborative knowledge graph, nodes numbered as in Kgat: users [0, U), items [U, U+I),
// entities [U+I, U+I+E).
struct TrainingGraph {
  int64_t num_users = 0;
  int64_t num_items = 0;
  int64_t num_entities = 0;
  int64_t num_kg_relations = 0;  ///< KG relation types; the model adds their inverses and `interacted` both ways
  std::vector<std::pair<uint32_t, uint32_t>> interactions;  ///< (user, item) positives, dense indices
  std::vector<Triple> triples;                              ///< KG triples, forward direction only
  std::map<std::string, ModalityMatrix> modalities;         ///< content per modality name (any subset)
  std::vector<uint8_t> cold;  ///< per item: no id embedding (empty = items without interactions)
};

// Model relation numbering: KG relation r -> r, its inverse -> R + r, interacted (user -> item) -> 2R,
// interacted-by (item -> user) -> 2R + 1.
inline int64_t InverseRelation(int64_t r, int64_t num_kg_relations) { return num_kg_relations + r; }
inline int64_t InteractedRelation(int64_t num_kg_relations) { return 2 * num_kg_relations; }
inline int64_t InteractedByRelation(int64_t num_kg_relations) { return 2 * num_kg_relations + 1; }

// The graph of `data` with the interactions listed in `train` (indices into data.interactions;
// a pair listed twice counts once), every KG triple unless `use_kg` is false, and every modality.
// Items with no interaction in `train` are cold. Throws std::invalid_argument for an index out of
// range (a broken precondition: the indices come from a split of the same data).
TrainingGraph BuildTrainingGraph(const EvalData& data, const std::vector<uint32_t>& train, bool use_kg = true);

// Every index of data.interactions, in order (the rebuild trains on all of them).
std::vector<uint32_t> AllInteractions(const EvalData& data);

}  // namespace mosaic::fusion
