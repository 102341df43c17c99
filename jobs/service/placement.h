// Placement: the representation of an item that is not a row of the current model version (it
// arrived after the rebuild), computed from its content features and its edges to nodes that are
// rows (fusion::Kgat::InferItems), and stored as its "model" feature (jobs/service/version.h).
#pragma once

#include <ATen/core/Tensor.h>

#include <memory>
#include <vector>

#include "fusion/kgat.h"
#include "jobs/service/add_items.h"
#include "jobs/service/version.h"
#include "store/store.h"

namespace mosaic::jobs::service {

// One placed item.
struct Placement {
  store::NodeId item = 0;     ///< store id
  std::vector<float> values;  ///< its representation, the version's total width
};

// Representations [items.size(), total_dim] of `items` (none a row of `model`) from their content and
// their edges in both directions to rows of `model`; edges to nodes or relations the version does not
// know are left out, and so are features of another width than the version's (another extractor).
// A second version places by its content kernel (its KG features in place of edges; `kgat` unused,
// may be null); the first needs its module.
Status InferItems(const store::ReadView& view, const LoadedModel& model, fusion::Kgat* kgat,
                  const std::vector<store::NodeId>& items, at::Tensor* reps);

// The rows of `reps` as placements of `items` (same order).
std::vector<Placement> ToPlacements(const std::vector<store::NodeId>& items, const at::Tensor& reps);

// Stores `placements` made with model `version` in one batch; `source` says who placed them
// ("placed" by import, ingest or serve; "rebuild" for items that arrived during one).
Status PersistPlacements(store::Store* store, uint64_t version, const std::vector<Placement>& placements,
                         const char* source);

// The placer of a command that runs once (import, ingest): loads the current version from the store
// on its first call, and places and stores the items that are items and not rows of it.
class StoredModelPlacer : public ItemPlacer {
 public:
  StoredModelPlacer();
  ~StoredModelPlacer() override;
  Status Place(store::Store* store, const std::vector<store::NodeId>& items, PlaceReport* report) override;

 private:
  std::unique_ptr<LoadedModel> model_;   ///< loaded on first use
  std::unique_ptr<fusion::Kgat> kgat_;
};

}  // namespace mosaic::jobs::service
