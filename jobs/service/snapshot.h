// The one conversion of a store into the graph a model trains on. `mosaic rebuild` trains on every
// interaction of a snapshot; `mosaic eval` splits the same snapshot's interactions and trains on the
// training part; both then call fusion::BuildTrainingGraph on Snapshot::data, so the graph that eval
// certifies is built by the code that rebuild trains and serves.
//
// Numbering (the rows of a model version): users with at least one consumption interaction, then
// every item, then every entity, each in store id order; KG relations numbered densely in store id
// order among those used by an edge between two items or entities.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "fusion/eval_data.h"
#include "fusion/training_graph.h"
#include "store/store.h"

namespace mosaic::jobs::service {

// Placed items' representations are stored as this item feature (jobs/service/version.h).
inline constexpr const char* kModelFeature = "model";          ///< feature name of placed items
inline constexpr const char* kModelExtractor = "mosaic-kgat";  ///< their extractor

struct Snapshot {
  fusion::EvalData data;                         ///< the graph in dense arrays (see the numbering above)
  std::vector<store::NodeId> nodes;              ///< model row -> store id: users, items, entities
  std::vector<store::RelationId> kg_relations;   ///< dense KG relation -> store relation
  std::vector<std::string> kg_relation_names;    ///< dense KG relation -> its name
  bool has_interacted = false;                   ///< the store has the `interacted` relation
  store::RelationId interacted = 0;              ///< its store id (when has_interacted)
  store::NodeId node_id_limit = 0;               ///< the store's NodeIdLimit: later nodes are not rows
  std::vector<store::NodeId> cold_items;         ///< store ids of items without interactions
};

// Reads `view` into *out. Content features whose width differs from the first vector seen for their
// modality are left out (an extractor changed half-way). Returns the store's error.
Status TakeSnapshot(const store::ReadView& view, Snapshot* out);

// A fingerprint (FNV-1a, not for security) of `graph` and the row numbering: a rebuild resumes only
// from a checkpoint of the same graph.
uint64_t Fingerprint(const Snapshot& snapshot, const fusion::TrainingGraph& graph);

}  // namespace mosaic::jobs::service
