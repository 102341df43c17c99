// How a new item enters the store, whoever brings it (`mosaic import`, `mosaic ingest`, POST
// /items): written whole in one batch (node, dictionary entry, KG links both ways, content features,
// text embedding), then placed by the current model version so that it is recommendable at once.
// No LibTorch here: placement goes through an ItemPlacer, which the CLI backs with the model
// library and the server with the model it holds in memory.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "graph/catalogue.h"
#include "graph/text_features.h"
#include "store/status.h"
#include "store/store.h"

namespace mosaic::jobs::service {

struct NewItem {
  graph::CatalogueItem item;                                            ///< key, label, attributes, KG links
  std::vector<std::pair<std::string, store::FeatureVector>> features;  ///< content features by modality name
};

struct WrittenItem {
  store::NodeId id = 0;  ///< store id
  bool created = false;  ///< false: the key existed (updated, or left alone with skip_existing)
};

// What placement did.
struct PlaceReport {
  size_t placed = 0;           ///< items given a representation now
  uint64_t model_version = 0;  ///< the version that placed them; 0 when there is no model yet
};

// Places items that were just written, with the current model version.
class ItemPlacer {
 public:
  virtual ~ItemPlacer() = default;
  // Computes and stores the representations of those of `items` the current version does not know
  // yet. OK with report->model_version = 0 before the first rebuild.
  virtual Status Place(store::Store* store, const std::vector<store::NodeId>& items, PlaceReport* report) = 0;
};

// Writes `item` in one batch of its own; `text`, when given, adds its text embedding to the same batch.
// With `skip_existing`, an item whose key exists is left as it is (ingest: same content hash).
// Safe to call from several threads. Returns the store's error, or InvalidArgument for bad metadata;
// on error nothing of the item is written.
Status WriteItem(store::Store* store, const NewItem& item, const graph::TextFeatureHook* text, bool skip_existing,
                 WrittenItem* written);

// Places, through `placer` (when given), the items created since `first_new` (a NodeIdLimit read
// before the writes): after import's bulk writes and after WriteItem calls.
Status PlaceCreatedItems(store::Store* store, store::NodeId first_new, ItemPlacer* placer, PlaceReport* report);

// WriteItem for each of `items`, then placement of those created: the whole of adding items.
Status AddItems(store::Store* store, const std::vector<NewItem>& items, const graph::TextFeatureHook* text,
                ItemPlacer* placer, std::vector<WrittenItem>* written, PlaceReport* report);

}  // namespace mosaic::jobs::service
