#include "jobs/service/browse.h"

#include <algorithm>
#include <deque>
#include <map>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "graph/text.h"
#include "graph/text_features.h"
#include "jobs/service/snapshot.h"
#include "modalities/registry.h"

namespace mosaic::jobs::service {

using store::NodeId;
using store::NodeKind;

nlohmann::json DescribeNode(NodeId id, const store::NodeRecord& r) {
  nlohmann::json j = {{"id", id}, {"kind", store::NodeKindName(r.kind)}, {"key", r.key}};
  if (!r.label.empty()) j["label"] = r.label;
  return j;
}

namespace {

nlohmann::json Attributes(const store::NodeRecord& r) {
  if (r.attributes.empty()) return nlohmann::json::object();
  nlohmann::json a = nlohmann::json::parse(r.attributes, nullptr, false);
  return a.is_object() ? a : nlohmann::json::object();
}

// The "kind" attribute of an item ("video", "music"), or "".
std::string ItemKind(const nlohmann::json& attributes) {
  auto it = attributes.find("kind");
  return it != attributes.end() && it->is_string() ? it->get<std::string>() : "";
}

}  // namespace

Status DescribeItem(const store::ReadView& view, NodeId id, bool with_values, nlohmann::json* result) {
  store::NodeRecord record;
  MOSAIC_RETURN_IF_ERROR(view.GetNode(id, &record));
  if (record.kind != NodeKind::kItem) return Status::NotFound("node " + std::to_string(id) + " is not an item");
  std::map<store::RelationId, std::string> relations;
  MOSAIC_RETURN_IF_ERROR(view.ListRelations(&relations));
  nlohmann::json links = nlohmann::json::array();
  uint64_t users = 0;
  auto link = [&](const store::Edge& e, NodeId other, const char* direction) {
    if (relations[e.relation] == store::kInteractedRelation) {
      ++users;
      return true;
    }
    store::NodeRecord r;
    if (!view.GetNode(other, &r).ok()) return true;
    links.push_back({{"relation", relations[e.relation]}, {"direction", direction}, {"node", DescribeNode(other, r)}});
    return true;
  };
  MOSAIC_RETURN_IF_ERROR(view.ForEachOutEdge(id, [&](const store::Edge& e) { return link(e, e.dst, "out"); }));
  MOSAIC_RETURN_IF_ERROR(view.ForEachInEdge(id, [&](const store::Edge& e) { return link(e, e.src, "in"); }));
  nlohmann::json features = nlohmann::json::object();
  nlohmann::json placement = nullptr;
  MOSAIC_RETURN_IF_ERROR(view.ForEachFeature(id, [&](const std::string& modality, const store::FeatureVector& f) {
    nlohmann::json& j = features[modality];
    j = {{"extractor", f.extractor}, {"version", f.version}, {"dims", f.values.size()}};
    if (with_values) j["values"] = f.values;
    if (modality == modalities::kTextModality.name) j["text"] = f.source;  // what the encoder read
    if (modality == kModelFeature) placement = {{"model_version", f.version}, {"by", f.source}};
    return true;
  }));
  store::Exposure exposure;
  MOSAIC_RETURN_IF_ERROR(view.GetExposure(id, &exposure));
  *result = {{"item", DescribeNode(id, record)},
             {"attributes", Attributes(record)},
             {"links", links},
             {"features", features},
             {"interacting_users", users},
             {"placement", placement},
             {"exposure", {{"impressions", exposure.impressions}, {"plays", exposure.plays}}}};
  return Status::OK();
}

Status NodeGraph(const store::ReadView& view, NodeId center, const GraphLimits& limits, nlohmann::json* result) {
  if (limits.hops < 1 || limits.hops > 2) return Status::InvalidArgument("hops must be 1 or 2");
  store::NodeRecord record;
  MOSAIC_RETURN_IF_ERROR(view.GetNode(center, &record));
  if (record.kind == NodeKind::kUser) return Status::InvalidArgument("a user's graph is their history (/user)");
  std::map<store::RelationId, std::string> relations;
  MOSAIC_RETURN_IF_ERROR(view.ListRelations(&relations));

  nlohmann::json nodes = nlohmann::json::array(), edges = nlohmann::json::array();
  std::unordered_map<NodeId, size_t> index;  // node -> position in `nodes`
  std::set<std::tuple<NodeId, store::RelationId, NodeId>> drawn;
  std::deque<NodeId> frontier = {center};
  index[center] = 0;
  nodes.push_back(DescribeNode(center, record));
  nodes[0]["hops"] = 0;
  Status failed;
  while (!frontier.empty()) {
    const NodeId at = frontier.front();
    frontier.pop_front();
    const int hops = nodes[index[at]]["hops"].get<int>();
    size_t degree = 0, kept = 0, scanned = 0;
    const size_t max_scan = hops >= limits.hops ? limits.max_leaf_scan : limits.max_scan;
    bool capped = false;
    auto visit = [&](const store::Edge& e, NodeId other) {
      if (++scanned > max_scan) {
        capped = true;
        return false;
      }
      if (relations[e.relation] == store::kInteractedRelation) return true;
      ++degree;
      const bool known = index.count(other) > 0;
      if (!known && (hops >= limits.hops || kept >= limits.per_node || nodes.size() >= limits.max_nodes)) return true;
      if (!known) {
        store::NodeRecord r;
        Status s = view.GetNode(other, &r);
        if (!s.ok()) {
          failed = s;
          return false;
        }
        index[other] = nodes.size();
        nlohmann::json n = DescribeNode(other, r);
        n["hops"] = hops + 1;
        nodes.push_back(std::move(n));
        frontier.push_back(other);
      }
      ++kept;
      if (drawn.insert({e.src, e.relation, e.dst}).second) {
        edges.push_back({{"source", e.src}, {"target", e.dst}, {"relation", relations[e.relation]}});
      }
      return true;
    };
    MOSAIC_RETURN_IF_ERROR(view.ForEachOutEdge(at, [&](const store::Edge& e) { return visit(e, e.dst); }));
    MOSAIC_RETURN_IF_ERROR(failed);
    MOSAIC_RETURN_IF_ERROR(view.ForEachInEdge(at, [&](const store::Edge& e) { return visit(e, e.src); }));
    MOSAIC_RETURN_IF_ERROR(failed);
    nodes[index[at]]["degree"] = degree;
    nodes[index[at]]["degree_capped"] = capped;
  }
  *result = {{"center", center}, {"nodes", nodes}, {"edges", edges}};
  return Status::OK();
}

Status SearchItems(const store::ReadView& view, const SearchOptions& options, nlohmann::json* result) {
  if (!options.kind.empty() && options.kind != "video" && options.kind != "music") {
    return Status::InvalidArgument("kind must be video or music, not '" + options.kind + "'");
  }
  const std::string wanted = graph::NormalizeKey(options.text);
  // Items newest first; entities whose name matches (their items are matches too).
  std::vector<std::pair<NodeId, store::NodeRecord>> items;
  std::vector<std::pair<NodeId, std::string>> matching_entities;
  MOSAIC_RETURN_IF_ERROR(view.ForEachNode([&](NodeId id, const store::NodeRecord& r) {
    if (r.kind == NodeKind::kItem) {
      items.emplace_back(id, r);
    } else if (r.kind == NodeKind::kEntity && !wanted.empty() && !r.label.empty() &&
               graph::NormalizeKey(r.label).find(wanted) != std::string::npos) {
      matching_entities.emplace_back(id, r.label);
    }
    return true;
  }));
  std::sort(items.begin(), items.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  std::unordered_map<NodeId, size_t> position;
  for (size_t i = 0; i < items.size(); ++i) position[items[i].first] = i;
  auto kind_ok = [&](const nlohmann::json& attributes) {
    return options.kind.empty() || ItemKind(attributes) == options.kind;
  };

  nlohmann::json found = nlohmann::json::array();
  std::unordered_set<NodeId> listed;
  size_t total = 0;
  auto add = [&](size_t i, nlohmann::json extra) {
    const auto& [id, r] = items[i];
    const nlohmann::json attributes = Attributes(r);
    if (!kind_ok(attributes) || !listed.insert(id).second) return;
    if (extra["match"] != "text") ++total;  // the exact matches
    if (found.size() >= options.limit) return;
    nlohmann::json n = DescribeNode(id, r);
    n["item_kind"] = ItemKind(attributes);
    n.update(extra);
    found.push_back(std::move(n));
  };
  for (size_t i = 0; i < items.size(); ++i) {
    const store::NodeRecord& r = items[i].second;
    if (wanted.empty() || graph::NormalizeKey(r.label.empty() ? r.key : r.label).find(wanted) != std::string::npos) {
      add(i, {{"match", "title"}});
    }
  }
  // Items linked to a matching entity, newest first; a hub's items are read up to a bound.
  constexpr size_t kMostLinkedScanned = 20000;
  std::vector<std::pair<size_t, std::string>> linked;
  for (const auto& [entity, name] : matching_entities) {
    size_t scanned = 0;
    auto collect = [&, name = name](NodeId other) {
      auto it = position.find(other);
      if (it != position.end()) linked.emplace_back(it->second, name);
      return ++scanned < kMostLinkedScanned;
    };
    MOSAIC_RETURN_IF_ERROR(view.ForEachInEdge(entity, [&](const store::Edge& e) { return collect(e.src); }));
    MOSAIC_RETURN_IF_ERROR(view.ForEachOutEdge(entity, [&](const store::Edge& e) { return collect(e.dst); }));
  }
  std::sort(linked.begin(), linked.end());
  for (const auto& [i, via] : linked) add(i, {{"match", "linked"}, {"via", via}});

  if (options.text_model && options.text_model->embed && !wanted.empty()) {
    std::vector<std::vector<float>> query;
    MOSAIC_RETURN_IF_ERROR(options.text_model->embed({options.text}, &query));
    std::vector<std::pair<float, NodeId>> scored;
    if (!query.empty()) MOSAIC_RETURN_IF_ERROR(ScoreItemsByText(view, query[0], &scored));
    std::stable_sort(scored.begin(), scored.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
    for (const auto& [similarity, id] : scored) {
      if (found.size() >= options.limit) break;
      add(position.at(id), {{"match", "text"}, {"similarity", similarity}});
    }
  }
  *result = {{"items", found}, {"total", total}};
  return Status::OK();
}

Status ScoreItemsByText(const store::ReadView& view, const std::vector<float>& query,
                        std::vector<std::pair<float, NodeId>>* scored, size_t* other_model) {
  const modalities::ModalityInfo& text = modalities::kTextModality;
  Status failed;
  MOSAIC_RETURN_IF_ERROR(view.ForEachNode([&](NodeId id, const store::NodeRecord& r) {
    if (r.kind != NodeKind::kItem) return true;
    store::FeatureVector f;
    Status s = view.GetFeature(id, text.name, &f);
    if (s.IsNotFound()) return true;
    if (!s.ok()) {
      failed = s;
      return false;
    }
    if (f.extractor != text.extractor || f.version != text.version || f.values.size() != query.size()) {
      if (other_model) ++*other_model;
      return true;
    }
    float dot = 0;
    for (size_t d = 0; d < query.size(); ++d) dot += query[d] * f.values[d];
    scored->emplace_back(dot, id);
    return true;
  }));
  return failed;
}

Status UserHistory(const store::ReadView& view, const std::string& key, size_t limit, nlohmann::json* result) {
  NodeId user = 0;
  Status s = view.FindNode(NodeKind::kUser, key, &user);
  if (s.IsNotFound()) return Status::NotFound("unknown user '" + key + "'");
  MOSAIC_RETURN_IF_ERROR(s);
  store::NodeRecord record;
  MOSAIC_RETURN_IF_ERROR(view.GetNode(user, &record));
  store::RelationId interacted = 0;
  std::vector<std::pair<float, NodeId>> played;
  if (view.FindRelation(store::kInteractedRelation, &interacted).ok()) {
    MOSAIC_RETURN_IF_ERROR(view.ForEachOutEdge(user, [&](const store::Edge& e) {
      if (e.relation == interacted) played.emplace_back(e.weight, e.dst);
      return true;
    }));
  }
  std::sort(played.begin(), played.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : a.second > b.second;
  });
  nlohmann::json items = nlohmann::json::array();
  for (size_t i = 0; i < played.size() && i < limit; ++i) {
    store::NodeRecord r;
    MOSAIC_RETURN_IF_ERROR(view.GetNode(played[i].second, &r));
    nlohmann::json n = DescribeNode(played[i].second, r);
    n["plays"] = played[i].first;
    items.push_back(std::move(n));
  }
  *result = {{"user", DescribeNode(user, record)}, {"items", items}, {"total", played.size()}};
  return Status::OK();
}

Status ListModelVersions(const store::ReadView& view, nlohmann::json* result) {
  uint64_t current = 0;
  Status s = view.GetCurrentModel(&current);
  if (s.IsNotFound()) {
    *result = {{"current", nullptr}, {"versions", nlohmann::json::array()}};
    return Status::OK();
  }
  MOSAIC_RETURN_IF_ERROR(s);
  nlohmann::json versions = nlohmann::json::array();
  for (uint64_t v = current; v >= 1; --v) {
    std::string blob;
    s = view.GetModelRecord(v, "manifest", &blob);
    if (s.IsNotFound()) continue;  // an abandoned rebuild's number
    MOSAIC_RETURN_IF_ERROR(s);
    nlohmann::json manifest = nlohmann::json::parse(blob, nullptr, false);
    if (!manifest.is_object()) return Status::Corruption("model version " + std::to_string(v) + ": manifest is not JSON");
    if (manifest.contains("cold_items") && manifest["cold_items"].is_array()) {
      manifest["cold_items"] = manifest["cold_items"].size();
    }
    manifest["version"] = v;
    manifest["current"] = v == current;
    versions.push_back(std::move(manifest));
  }
  *result = {{"current", current}, {"versions", versions}};
  return Status::OK();
}

}  // namespace mosaic::jobs::service
