// The immutable model-version format: a trained model as stored in the models column family (keys:
// version:u64 . record name), its writer (rebuild) and its loader (serving, placement).
//
// A rebuild writes version = current + 1 (1 when there is none), with the records
//   "config"          fusion::ConfigToJson of the Kgat configuration
//   "weights"         fusion::SaveWeights (torch serialization)
//   "reps/000000"...  every node's representation, raw little-endian float32 rows [num_nodes, total_dim]
//                     in Kgat numbering (users | items | entities), cut into chunks of at most 4 MiB
//   "nodes"           the store NodeId of each model row, uint32 little-endian, same order
//   "relations"       JSON array indexed by model relation: {"index", "store_id", "name", "inverse"}
//                     (KG relations r, their inverses R + r, interacted 2R, interacted-by 2R + 1)
//   "history/000000"... each user row's items at the snapshot (item rows, 0-based): uint32 little-endian,
//                     num_users + 1 offsets then the items, cut into chunks of at most 4 MiB; the plays
//                     a query finds beyond these are new since the version (absent before issue 16)
//   "hnsw/000000"...  only when the version has an HNSW graph over its item rows (rows U..U+I-1, graph
//                     id c = row U + c): fusion::ItemIndex::SaveHnsw's bytes cut into chunks of at most
//                     4 MiB (the rebuild builds it from kHnswMinItems items on, or when asked)
//   "manifest"        JSON: created, seed, epochs, losses, counts, node_id_limit (the store's NodeIdLimit
//                     at the snapshot: later nodes are not rows of this version), cold_items (store ids of
//                     items without interactions at the snapshot), reps_chunks, hnsw_chunks (0 or absent:
//                     no graph), hnsw (its parameters, when there is one), history_chunks, fold_in (the settings
//                     users are folded in with: fusion/fold_in.h), timings
// in as many batches as needed; the manifest and the current-model pointer go in the last batch, so a
// half-written version is never current and queries switch from one complete version to the next.
//
// The second version (`rebuild --model-kind v2`, fusion/second_version.h) is written in the same
// records: manifest "kind" "v2"; "config" a KgatConfig that only counts (users, items, no entities,
// relations; dim the vectors' width, no layers); "weights" fusion::SecondVersion::Save with its KG
// feature keys in store ids (relation, node); "reps" the user rows (each from its history) and the
// item vectors; "nodes" users and items only. Its users are computed from their plays at query time.
//
// Items created after the snapshot get their representation from the current version at ingest time
// (Kgat::InferItems) as the item feature "model": FeatureVector{extractor "mosaic-kgat", version = the
// model version, values = the representation}. Queries use only those whose version is current.
#pragma once

#include <ATen/core/Tensor.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "fusion/kgat.h"
#include "fusion/second_version.h"
#include "jobs/service/snapshot.h"
#include "store/status.h"
#include "store/store.h"

namespace mosaic::jobs::service {

inline constexpr size_t kRepsChunkBytes = size_t(4) << 20;     ///< largest "reps/NNNNNN" record
inline constexpr int64_t kHnswMinItems = 200000;  ///< from this many items on, top-k goes through an HNSW graph
                                                  ///< (rebuild --hnsw auto builds and stores it)

// What a rebuild writes as one version.
struct ModelVersionData {
  fusion::KgatConfig config;
  std::string weights;             ///< fusion::SaveWeights
  at::Tensor reps;                 ///< CPU float [num_nodes, total_dim]
  std::vector<store::NodeId> nodes;  ///< store id of each row
  nlohmann::json relations;        ///< see above
  std::string hnsw;                ///< fusion::ItemIndex::SaveHnsw of the item rows; empty when none
  std::vector<uint32_t> history;   ///< the "history" record's values (offsets, then items); empty: none
  nlohmann::json manifest;         ///< see above; the "*_chunks" counts are filled in by WriteModelVersion
};

// The "history" record's values for `snapshot`: each user row's items, as above.
std::vector<uint32_t> VersionHistory(const Snapshot& snapshot);

// The "relations" record of a version trained on `snapshot` (see above).
nlohmann::json VersionRelations(const Snapshot& snapshot);

// Writes `data` as model `version` and makes it current. `last_batch`, when given, adds its own writes
// to the batch that also holds the manifest and the pointer switch (so they commit together).
// Returns the store's error; on error the previous version stays current.
Status WriteModelVersion(store::Store* store, uint64_t version, ModelVersionData data,
                         const std::function<Status(store::Batch*)>& last_batch = {});

// The current model version, loaded for queries and placement.
struct LoadedModel {
  uint64_t version = 0;
  fusion::KgatConfig config;
  nlohmann::json manifest;
  nlohmann::json relations;
  at::Tensor reps;                         ///< CPU float [num_nodes, total_dim]
  std::vector<store::NodeId> nodes;        ///< store id of each row
  std::unordered_map<store::NodeId, int64_t> row_of;  ///< store id -> row
  std::unordered_map<store::RelationId, int64_t> kg_relation;  ///< store relation -> model KG relation
  int64_t num_kg_relations = 0;
  bool has_interacted = false;
  store::RelationId interacted = 0;        ///< store id of `interacted` (when has_interacted)
  std::string weights;                     ///< serialized weights (for LoadWeights when needed)
  std::string hnsw;                        ///< fusion::ItemIndex::SaveHnsw of the item rows; empty when none
                                           ///< (ItemIndex::LoadHnsw over the item rows, in row order)
  std::vector<uint32_t> history_offsets;   ///< user row u's items at the snapshot are history_items
  std::vector<uint32_t> history_items;     ///< [offsets[u], offsets[u+1]); both empty for older versions
  /// The second version's model (null for the first). Loaded without its item vectors (the reps' item
  /// rows are they) and with `weights` emptied once parsed.
  std::shared_ptr<const fusion::SecondVersion> second;
  /// The second version's KG features, KgFeatureKeyOf(relation, node, backward) -> index into
  /// second->content.kg_keys, so that placing an item does not rebuild the map.
  std::unordered_map<uint64_t, uint32_t> kg_feature;

  bool is_second_version() const { return second != nullptr; }
  static uint64_t KgFeatureKeyOf(store::RelationId relation, store::NodeId node, bool backward) {
    return ((uint64_t(relation) << 32 | node) << 1) | uint64_t(backward);
  }

  // Whether the version says which items each user had (so later plays can be told apart).
  bool has_history() const { return !history_offsets.empty(); }

  int64_t num_users() const { return config.num_users; }
  int64_t num_items() const { return config.num_items; }
  bool IsUserRow(int64_t row) const { return row < config.num_users; }
  bool IsItemRow(int64_t row) const { return row >= config.num_users && row < config.num_users + config.num_items; }
  // Fills row_of, num_kg_relations, kg_relation and interacted from config, nodes and relations, and
  // kg_feature from second.
  void Index();
  // Model relation of a stored triple walked forward (reverse = false) or from tail to head; -1 when
  // the relation is not one of this version's.
  int64_t ModelRelation(store::RelationId relation, bool reverse) const;
};

// Loads the current version from `view` (weights as bytes only). Returns NotFound "no model yet: run
// `mosaic rebuild`" before the first rebuild, Corruption when a record is missing or malformed.
Status LoadCurrentModel(const store::ReadView& view, LoadedModel* model);

// The version's module with its weights, on the CPU in eval mode (null for a second version, which
// has no module). Corruption when the stored weights do not fit the stored configuration.
Status LoadModelWeights(const LoadedModel& model, std::unique_ptr<fusion::Kgat>* kgat);

// Puts `values`, the representation of item `item` computed with model `version` after its training,
// as the item's "model" feature; `source` says what placed it ("placed" by import, ingest or serve,
// "rebuild" for items that arrived during one).
Status PutPlacement(store::Batch* batch, store::NodeId item, uint64_t version, std::vector<float> values,
                    const char* source);

// The current version number alone; *found false before the first rebuild.
Status CurrentModelVersion(const store::ReadView& view, uint64_t* version, bool* found);

}  // namespace mosaic::jobs::service
