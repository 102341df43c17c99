#include "graph/catalogue.h"

#include "graph/import.h"
#include "graph/text.h"

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

Status FindItemByKeyOrTitle(const store::ReadView& view, const std::string& text, store::NodeId* id) {
  Status s = view.FindNode(store::NodeKind::kItem, text, id);
  if (!s.IsNotFound()) return s;
  const std::string wanted = NormalizeKey(text);
  std::vector<std::pair<store::NodeId, std::string>> matches;
  MOSAIC_RETURN_IF_ERROR(view.ForEachNode([&](store::NodeId node, const store::NodeRecord& r) {
    if (r.kind == store::NodeKind::kItem && !r.label.empty() && NormalizeKey(r.label) == wanted) {
      matches.emplace_back(node, r.key);
    }
    return true;
  }));
  if (matches.empty()) return Status::NotFound("no item has the id or title '" + text + "'");
  if (matches.size() > 1) {
    std::string keys;
    for (const auto& m : matches) keys += (keys.empty() ? "" : ", ") + m.second;
    return Status::InvalidArgument("several items are titled '" + text + "'; name one by id: " + keys);
  }
  *id = matches[0].first;
  return Status::OK();
}

Status ItemsCreatedSince(const store::ReadView& view, store::NodeId first, std::vector<store::NodeId>* items) {
  items->clear();
  store::NodeId limit = 0;
  MOSAIC_RETURN_IF_ERROR(view.NodeIdLimit(&limit));
  for (store::NodeId id = first; id < limit; ++id) {
    store::NodeRecord r;
    Status s = view.GetNode(id, &r);
    if (s.IsNotFound()) continue;
    MOSAIC_RETURN_IF_ERROR(s);
    if (r.kind == store::NodeKind::kItem) items->push_back(id);
  }
  return Status::OK();
}

}  // namespace mosaic::graph
