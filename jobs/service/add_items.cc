#include "jobs/service/add_items.h"

namespace mosaic::jobs::service {

Status WriteItem(store::Store* store, const NewItem& item, const graph::TextFeatureHook* text, bool skip_existing,
                 WrittenItem* written) {
  *written = WrittenItem();
  std::unique_ptr<store::Batch> batch;
  MOSAIC_RETURN_IF_ERROR(store->BeginBatch(&batch));
  store::NodeId existing = 0;
  Status found = batch->FindNode(store::NodeKind::kItem, item.item.id, &existing);
  if (!found.ok() && !found.IsNotFound()) return found;
  if (found.ok() && skip_existing) {
    written->id = existing;
    return Status::OK();
  }
  written->created = found.IsNotFound();
  MOSAIC_RETURN_IF_ERROR(graph::WriteCatalogueItem(batch.get(), item.item, &written->id));
  for (const auto& [modality, vector] : item.features) {
    MOSAIC_RETURN_IF_ERROR(batch->PutFeature(written->id, modality, vector));
  }
  if (text) {
    size_t encoded = 0;
    MOSAIC_RETURN_IF_ERROR(graph::UpdateTextFeatures(batch.get(), {written->id}, *text, &encoded));
  }
  return batch->Commit();
}

Status PlaceCreatedItems(store::Store* store, store::NodeId first_new, ItemPlacer* placer, PlaceReport* report) {
  *report = PlaceReport();
  if (!placer) return Status::OK();
  std::vector<store::NodeId> created;
  MOSAIC_RETURN_IF_ERROR(graph::ItemsCreatedSince(*store->NewReadView(), first_new, &created));
  if (created.empty()) return Status::OK();
  return placer->Place(store, created, report);
}

Status AddItems(store::Store* store, const std::vector<NewItem>& items, const graph::TextFeatureHook* text,
                ItemPlacer* placer, std::vector<WrittenItem>* written, PlaceReport* report) {
  *report = PlaceReport();
  written->assign(items.size(), WrittenItem());
  std::vector<store::NodeId> created;
  for (size_t i = 0; i < items.size(); ++i) {
    MOSAIC_RETURN_IF_ERROR(WriteItem(store, items[i], text, /*skip_existing=*/false, &(*written)[i]));
    if ((*written)[i].created) created.push_back((*written)[i].id);
  }
  if (!placer || created.empty()) return Status::OK();
  return placer->Place(store, created, report);
}

}  // namespace mosaic::jobs::service
