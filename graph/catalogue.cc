#include "graph/catalogue.h"

#include "graph/import.h"

namespace mosaic::graph {

Status UpsertEntity(store::Batch* batch, const std::string& key, const std::string& label, store::NodeId* id) {
  Status s = batch->FindNode(store::NodeKind::kEntity, key, id);
  if (!s.IsNotFound()) return s;
  return batch->UpsertNode(store::NodeKind::kEntity, key, label, id);
}

Status WriteCatalogueItem(store::Batch* batch, const CatalogueItem& item, store::NodeId* id) {
  MOSAIC_RETURN_IF_ERROR(batch->UpsertNode(store::NodeKind::kItem, item.id, item.label, id));
  if (!item.attributes.empty()) MOSAIC_RETURN_IF_ERROR(batch->SetNodeAttributes(*id, item.attributes.dump()));
  for (const auto& [relation, value] : item.links) {
    store::RelationId rel = 0;
    store::NodeId entity = 0;
    MOSAIC_RETURN_IF_ERROR(batch->UpsertRelation(relation, &rel));
    MOSAIC_RETURN_IF_ERROR(UpsertEntity(batch, EntityKey(relation, value), value, &entity));
    MOSAIC_RETURN_IF_ERROR(batch->AddEdge(*id, rel, entity));
  }
  return Status::OK();
}

}  // namespace mosaic::graph
