#include "graph/text_features.h"

#include <nlohmann/json.hpp>
#include <set>

namespace mosaic::graph {

Status DescribeItem(store::Batch* batch, store::NodeId id, ItemDescription* d) {
  *d = ItemDescription();
  store::NodeRecord r;
  MOSAIC_RETURN_IF_ERROR(batch->GetNode(id, &r));
  d->title = r.label;
  if (!r.attributes.empty()) {
    const auto attributes = nlohmann::json::parse(r.attributes, nullptr, false);
    if (attributes.is_object() && attributes.contains("description") && attributes["description"].is_string()) {
      d->description = attributes["description"];
    }
  }
  Status failed;
  std::map<store::RelationId, std::string> names;
  MOSAIC_RETURN_IF_ERROR(batch->ForEachOutEdge(id, [&](const store::Edge& e) {
    auto name = names.find(e.relation);
    if (name == names.end()) {
      std::string n;
      failed = batch->GetRelationName(e.relation, &n);
      if (!failed.ok()) return false;
      name = names.emplace(e.relation, n).first;
    }
    store::NodeRecord neighbour;
    failed = batch->GetNode(e.dst, &neighbour);
    if (!failed.ok()) return false;
    if (!neighbour.label.empty()) d->links.emplace_back(name->second, neighbour.label);
    return true;
  }));
  return failed;
}

Status UpdateTextFeatures(store::Batch* batch, const std::vector<store::NodeId>& items, const TextFeatureHook& hook,
                          size_t* encoded) {
  *encoded = 0;
  std::vector<store::NodeId> todo;
  std::vector<std::string> texts;
  std::set<store::NodeId> seen;
  for (store::NodeId id : items) {
    if (!seen.insert(id).second) continue;
    ItemDescription d;
    MOSAIC_RETURN_IF_ERROR(DescribeItem(batch, id, &d));
    std::string text = hook.compose(d);
    if (text.empty()) continue;
    store::FeatureVector stored;
    Status s = batch->GetFeature(id, hook.modality, &stored);
    if (s.ok() && stored.extractor == hook.extractor && stored.version == hook.version && stored.source == text) continue;
    if (!s.ok() && !s.IsNotFound()) return s;
    todo.push_back(id);
    texts.push_back(std::move(text));
  }
  if (todo.empty()) return Status::OK();
  std::vector<std::vector<float>> vectors;
  MOSAIC_RETURN_IF_ERROR(hook.embed(texts, &vectors));
  if (vectors.size() != todo.size()) return Status::Corruption("the text encoder returned a wrong number of vectors");
  for (size_t i = 0; i < todo.size(); ++i) {
    MOSAIC_RETURN_IF_ERROR(batch->PutFeature(
        todo[i], hook.modality, store::FeatureVector{hook.extractor, hook.version, std::move(vectors[i]), texts[i]}));
  }
  *encoded = todo.size();
  return Status::OK();
}

}  // namespace mosaic::graph
