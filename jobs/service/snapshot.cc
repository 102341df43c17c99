#include "jobs/service/snapshot.h"

#include <algorithm>
#include <map>
#include <set>
#include <unordered_map>

#include "modalities/registry.h"


namespace mosaic::jobs::service {

using store::NodeId;
using store::NodeKind;

namespace {

// Dense indices of the store's nodes, by kind.
struct Numbering {
  std::unordered_map<NodeId, uint32_t> user, item, entity;
};

Status ReadNodesAndInteractions(const store::ReadView& view, Snapshot* out, Numbering* n) {
  fusion::EvalData& d = out->data;
  std::vector<NodeId> items, entities;
  std::unordered_map<NodeId, std::string> user_key;
  MOSAIC_RETURN_IF_ERROR(view.ForEachNode([&](NodeId id, const store::NodeRecord& r) {
    if (r.kind == NodeKind::kItem) {
      n->item.emplace(id, uint32_t(items.size()));
      items.push_back(id);
      d.item_keys.push_back(r.key);
    } else if (r.kind == NodeKind::kEntity) {
      n->entity.emplace(id, uint32_t(entities.size()));
      entities.push_back(id);
    } else {
      user_key.emplace(id, r.key);
    }
    return true;
  }));
  // Interactions come in (user, item) key order, so users are numbered in store id order.
  std::vector<NodeId> users;
  std::vector<uint8_t> played(items.size(), 0);
  MOSAIC_RETURN_IF_ERROR(view.ForEachInteraction([&](const store::Interaction& x) {
    if (x.kind != store::InteractionKind::kConsumption) return true;
    auto item = n->item.find(x.item);
    if (item == n->item.end()) return true;  // not an item node
    auto [user, added] = n->user.emplace(x.user, uint32_t(users.size()));
    if (added) {
      users.push_back(x.user);
      auto key = user_key.find(x.user);
      d.user_keys.push_back(key == user_key.end() ? std::to_string(x.user) : key->second);
    }
    d.interactions.push_back({user->second, item->second, float(x.weight), x.timestamp});
    played[item->second] = 1;
    return true;
  }));
  d.num_users = uint32_t(users.size());
  d.num_items = uint32_t(items.size());
  d.num_entities = uint32_t(entities.size());
  out->nodes = users;
  out->nodes.insert(out->nodes.end(), items.begin(), items.end());
  out->nodes.insert(out->nodes.end(), entities.begin(), entities.end());
  for (size_t i = 0; i < items.size(); ++i) {
    if (!played[i]) out->cold_items.push_back(items[i]);
  }
  return Status::OK();
}

// KG triples among items and entities (every relation but `interacted`), each item's one-hop
// entities and whether it has any KG link.
Status ReadKnowledgeGraph(const store::ReadView& view, const Numbering& n, Snapshot* out) {
  fusion::EvalData& d = out->data;
  std::map<store::RelationId, std::string> names;
  MOSAIC_RETURN_IF_ERROR(view.ListRelations(&names));
  out->has_interacted = view.FindRelation(store::kInteractedRelation, &out->interacted).ok();
  auto kg_node = [&](NodeId id, uint32_t* index) {
    if (auto it = n.item.find(id); it != n.item.end()) return *index = it->second, true;
    if (auto it = n.entity.find(id); it != n.entity.end()) return *index = d.num_items + it->second, true;
    return false;
  };
  d.item_entities.assign(d.num_items, {});
  d.item_in_kg.assign(d.num_items, false);
  std::vector<fusion::EvalData::KgTriple> triples;
  std::vector<store::RelationId> triple_relation;
  std::set<store::RelationId> used;
  MOSAIC_RETURN_IF_ERROR(view.ForEachEdge([&](const store::Edge& e) {
    if (out->has_interacted && e.relation == out->interacted) return true;
    // Edges are stored both ways, so looking from the source covers both ends of every link.
    if (auto item = n.item.find(e.src); item != n.item.end()) {
      d.item_in_kg[item->second] = true;
      if (auto entity = n.entity.find(e.dst); entity != n.entity.end()) {
        d.item_entities[item->second].push_back(entity->second);
      }
    }
    if (auto item = n.item.find(e.dst); item != n.item.end()) {
      d.item_in_kg[item->second] = true;
      if (auto entity = n.entity.find(e.src); entity != n.entity.end()) {
        d.item_entities[item->second].push_back(entity->second);
      }
    }
    uint32_t head = 0, tail = 0;
    if (!kg_node(e.src, &head) || !kg_node(e.dst, &tail)) return true;
    triples.push_back({head, 0, tail});
    triple_relation.push_back(e.relation);
    used.insert(e.relation);
    return true;
  }));
  for (auto& entities : d.item_entities) {
    std::sort(entities.begin(), entities.end());
    entities.erase(std::unique(entities.begin(), entities.end()), entities.end());
  }
  std::map<store::RelationId, uint32_t> dense;
  for (store::RelationId r : used) {
    dense.emplace(r, uint32_t(out->kg_relations.size()));
    out->kg_relations.push_back(r);
    out->kg_relation_names.push_back(names[r]);
  }
  for (size_t t = 0; t < triples.size(); ++t) triples[t].relation = dense.at(triple_relation[t]);
  d.kg_triples = std::move(triples);
  d.num_kg_relations = uint32_t(dense.size());
  return Status::OK();
}

Status ReadContent(const store::ReadView& view, Snapshot* out) {
  fusion::EvalData& d = out->data;
  const store::NodeId* items = out->nodes.data() + d.num_users;
  for (uint32_t i = 0; i < d.num_items; ++i) {
    MOSAIC_RETURN_IF_ERROR(view.ForEachFeature(items[i], [&](const std::string& name, const store::FeatureVector& f) {
      if (!modalities::FindModality(name) || f.values.empty()) return true;
      fusion::ModalityMatrix& m = d.modalities[name];
      if (m.dim == 0) {
        m.dim = int64_t(f.values.size());
        m.values.assign(size_t(d.num_items) * size_t(m.dim), 0.0f);
        m.present.assign(d.num_items, 0);
      }
      if (int64_t(f.values.size()) != m.dim) return true;
      std::copy(f.values.begin(), f.values.end(), m.values.begin() + int64_t(i) * m.dim);
      m.present[i] = 1;
      return true;
    }));
  }
  return Status::OK();
}

// FNV-1a, 64 bits.
struct Hasher {
  uint64_t h = 1469598103934665603ull;
  void Bytes(const void* p, size_t n) {
    const auto* b = static_cast<const unsigned char*>(p);
    for (size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 1099511628211ull;
  }
  template <typename T>
  void Value(const T& v) { Bytes(&v, sizeof v); }
};

}  // namespace

Status TakeSnapshot(const store::ReadView& view, Snapshot* out) {
  *out = Snapshot();
  MOSAIC_RETURN_IF_ERROR(view.NodeIdLimit(&out->node_id_limit));
  Numbering numbering;
  MOSAIC_RETURN_IF_ERROR(ReadNodesAndInteractions(view, out, &numbering));
  MOSAIC_RETURN_IF_ERROR(ReadKnowledgeGraph(view, numbering, out));
  return ReadContent(view, out);
}

uint64_t Fingerprint(const Snapshot& snapshot, const fusion::TrainingGraph& g) {
  Hasher h;
  h.Value(g.num_users);
  h.Value(g.num_items);
  h.Value(g.num_entities);
  h.Value(g.num_kg_relations);
  h.Bytes(snapshot.nodes.data(), snapshot.nodes.size() * sizeof(NodeId));
  for (const auto& [u, i] : g.interactions) {
    h.Value(u);
    h.Value(i);
  }
  for (const auto& t : g.triples) {
    h.Value(t.head);
    h.Value(t.relation);
    h.Value(t.tail);
  }
  for (const auto& [name, m] : g.modalities) {
    h.Bytes(name.data(), name.size());
    h.Value(m.dim);
    h.Bytes(m.present.data(), m.present.size());
    h.Bytes(m.values.data(), m.values.size() * sizeof(float));
  }
  return h.h;
}

}  // namespace mosaic::jobs::service
