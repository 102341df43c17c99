#include <cstdio>

#include "graph/csr.h"
#include "graph/text.h"
#include "jobs/commands.h"
#include "jobs/progress.h"
#include "store/store.h"

namespace mosaic::jobs {

using store::NodeId;
using store::NodeKind;

Status CollectStats(const store::ReadView& view, nlohmann::json* stats) {
  store::Counters c;
  MOSAIC_RETURN_IF_ERROR(view.GetCounters(&c));
  std::map<store::RelationId, std::string> names;
  MOSAIC_RETURN_IF_ERROR(view.ListRelations(&names));
  nlohmann::json relations = nlohmann::json::object();
  uint64_t kg_triples = 0, kg_relations = 0;
  for (const auto& [id, name] : names) {
    const uint64_t n = c.edges.count(id) ? c.edges.at(id) : 0;
    relations[name] = n;
    if (name != store::kInteractedRelation && n > 0) {
      kg_triples += n;
      ++kg_relations;
    }
  }
  auto count = [&](NodeKind k) { return c.nodes.count(k) ? c.nodes.at(k) : 0; };
  *stats = {{"users", count(NodeKind::kUser)},
            {"items", count(NodeKind::kItem)},
            {"entities", count(NodeKind::kEntity)},
            {"items_with_interactions", c.items_with_interactions},
            {"items_linked_to_kg", c.items_linked},
            {"interactions", c.interactions},
            {"tag_applications", c.tag_applications},
            {"kg_triples", kg_triples},
            {"kg_relations", kg_relations},
            {"relations", relations}};
  return Status::OK();
}

void PrintStats(const nlohmann::json& s) {
  auto n = [&](const char* key) { return WithThousands(s[key].get<uint64_t>()); };
  std::printf("users             %s\n", n("users").c_str());
  std::printf("items             %s  (%s with interactions, %s linked to a KG entity)\n", n("items").c_str(),
              n("items_with_interactions").c_str(), n("items_linked_to_kg").c_str());
  std::printf("entities          %s\n", n("entities").c_str());
  std::printf("interactions      %s\n", n("interactions").c_str());
  if (s["tag_applications"].get<uint64_t>() > 0) std::printf("tag applications  %s\n", n("tag_applications").c_str());
  std::printf("KG triples        %s over %s relations\n", n("kg_triples").c_str(), n("kg_relations").c_str());
  std::vector<std::pair<uint64_t, std::string>> rels;
  for (const auto& [name, count] : s["relations"].items()) rels.emplace_back(count.get<uint64_t>(), name);
  std::sort(rels.rbegin(), rels.rend());
  const size_t shown = std::min<size_t>(rels.size(), 15);
  std::printf("edges per relation%s:\n", rels.size() > shown ? " (largest 15)" : "");
  for (size_t i = 0; i < shown; ++i) {
    std::printf("  %-48s %12s\n", rels[i].second.c_str(), WithThousands(rels[i].first).c_str());
  }
}

Status RunStats(const Context& ctx) {
  std::unique_ptr<store::Store> store;
  MOSAIC_RETURN_IF_ERROR(OpenStore(ctx, false, /*read_only=*/true, &store));
  nlohmann::json stats;
  MOSAIC_RETURN_IF_ERROR(CollectStats(*store->NewReadView(), &stats));
  if (ctx.json) {
    stats["store"] = ctx.store_dir;
    std::printf("%s\n", stats.dump().c_str());
  } else {
    std::printf("store             %s\n", ctx.store_dir.c_str());
    PrintStats(stats);
  }
  return Status::OK();
}

namespace {

nlohmann::json DescribeNode(NodeId id, const store::NodeRecord& r) {
  nlohmann::json j = {{"id", id}, {"kind", store::NodeKindName(r.kind)}, {"key", r.key}};
  if (!r.label.empty()) j["label"] = r.label;
  return j;
}

// "Clair de lune" or, for nodes without a label, "entity 4012".
std::string NameOf(const nlohmann::json& node) {
  if (node.contains("label")) return node["label"].get<std::string>();
  return node["kind"].get<std::string>() + " " + node["key"].get<std::string>();
}

// Resolves an item by id, else by exact title (case-insensitive).
Status ResolveItem(const store::ReadView& view, const std::string& text, NodeId* id) {
  Status s = view.FindNode(NodeKind::kItem, text, id);
  if (!s.IsNotFound()) return s;
  const std::string wanted = graph::NormalizeKey(text);
  std::vector<std::pair<NodeId, std::string>> matches;
  MOSAIC_RETURN_IF_ERROR(view.ForEachNode([&](NodeId node, const store::NodeRecord& r) {
    if (r.kind == NodeKind::kItem && !r.label.empty() && graph::NormalizeKey(r.label) == wanted) {
      matches.emplace_back(node, r.key);
    }
    return true;
  }));
  if (matches.empty()) return Status::NotFound("no item with id or title '" + text + "'");
  if (matches.size() > 1) {
    std::string ids;
    for (const auto& m : matches) ids += (ids.empty() ? "" : ", ") + m.second;
    return Status::InvalidArgument("several items are titled '" + text + "'; name one by id: " + ids);
  }
  *id = matches[0].first;
  return Status::OK();
}

}  // namespace

Status CollectNeighbors(const store::ReadView& view, const NeighborsArgs& args, nlohmann::json* result) {
  if (args.hops < 1 || args.hops > 4) return Status::InvalidArgument("--hops must be between 1 and 4");
  NodeId start = 0;
  MOSAIC_RETURN_IF_ERROR(ResolveItem(view, args.item, &start));
  graph::NeighborhoodOptions options;
  options.hops = args.hops;
  for (const auto& name : args.relations) {
    store::RelationId rel = 0;
    Status s = view.FindRelation(name, &rel);
    if (s.IsNotFound()) return Status::NotFound("no relation '" + name + "' in this store (see `mosaic stats`)");
    MOSAIC_RETURN_IF_ERROR(s);
    options.relations.insert(rel);
  }
  store::RelationId interacted = 0;
  if (view.FindRelation(store::kInteractedRelation, &interacted).ok()) options.excluded.insert(interacted);

  graph::CsrGraph csr;
  MOSAIC_RETURN_IF_ERROR(graph::CsrGraph::Build(view, &csr));
  const std::vector<graph::Reached> reached = graph::Neighborhood(csr, start, options);

  std::map<store::RelationId, std::string> relation_names;
  MOSAIC_RETURN_IF_ERROR(view.ListRelations(&relation_names));
  store::NodeRecord record;
  MOSAIC_RETURN_IF_ERROR(view.GetNode(start, &record));
  nlohmann::json item = DescribeNode(start, record);
  item["degree"] = csr.Degree(start);
  nlohmann::json counts = nlohmann::json::object(), neighbors = nlohmann::json::array();
  std::map<int, size_t> per_hop;
  for (const auto& r : reached) {
    ++per_hop[r.hops];
    if (args.limit != 0 && per_hop[r.hops] > args.limit) continue;
    MOSAIC_RETURN_IF_ERROR(view.GetNode(r.node, &record));
    nlohmann::json n = DescribeNode(r.node, record);
    store::NodeRecord via_record;
    MOSAIC_RETURN_IF_ERROR(view.GetNode(r.via, &via_record));
    n["hops"] = r.hops;
    n["paths"] = r.paths;
    n["relation"] = relation_names[r.edge.relation];
    n["direction"] = r.edge.reverse ? "in" : "out";  // "in": the neighbour is the head of the triple
    n["via"] = DescribeNode(r.via, via_record);
    neighbors.push_back(std::move(n));
  }
  for (const auto& [hop, n] : per_hop) counts[std::to_string(hop)] = n;
  *result = {{"item", item}, {"hops", args.hops}, {"counts", counts}, {"neighbors", neighbors}};
  return Status::OK();
}

void PrintNeighbors(const nlohmann::json& r) {
  const auto& item = r["item"];
  std::printf("%s  [item %s, %s edges]\n", NameOf(item).c_str(), item["key"].get<std::string>().c_str(),
              WithThousands(item["degree"].get<uint64_t>()).c_str());
  int hop = 0;
  for (const auto& n : r["neighbors"]) {
    if (n["hops"].get<int>() != hop) {
      hop = n["hops"].get<int>();
      const uint64_t total = r["counts"][std::to_string(hop)].get<uint64_t>();
      std::printf("%d hop%s: %s node%s%s\n", hop, hop > 1 ? "s" : "", WithThousands(total).c_str(),
                  total == 1 ? "" : "s", hop > 1 ? " (most paths first)" : "");
    }
    const std::string relation = n["relation"].get<std::string>();
    const std::string arrow = n["direction"] == "out" ? "-[" + relation + "]->" : "<-[" + relation + "]-";
    std::string line = "  " + NameOf(n["via"]) + " " + arrow + " " + NameOf(n);
    if (n["kind"] != "entity") line += "  [" + n["kind"].get<std::string>() + " " + n["key"].get<std::string>() + "]";
    if (n["paths"].get<uint64_t>() > 1) line += "  (" + WithThousands(n["paths"].get<uint64_t>()) + " paths)";
    std::printf("%s\n", line.c_str());
  }
  if (r["neighbors"].empty()) std::printf("  no neighbours\n");
}

Status RunNeighbors(const Context& ctx, const NeighborsArgs& args) {
  std::unique_ptr<store::Store> store;
  MOSAIC_RETURN_IF_ERROR(OpenStore(ctx, false, /*read_only=*/true, &store));
  nlohmann::json result;
  MOSAIC_RETURN_IF_ERROR(CollectNeighbors(*store->NewReadView(), args, &result));
  if (ctx.json) {
    std::printf("%s\n", result.dump().c_str());
  } else {
    PrintNeighbors(result);
  }
  return Status::OK();
}

Status RunCheck(const Context& ctx) {
  std::unique_ptr<store::Store> store;
  MOSAIC_RETURN_IF_ERROR(OpenStore(ctx, false, /*read_only=*/true, &store));
  MOSAIC_RETURN_IF_ERROR(store->NewReadView()->CheckConsistency());
  if (ctx.json) {
    std::printf("{\"store\":%s,\"consistent\":true}\n", nlohmann::json(ctx.store_dir).dump().c_str());
  } else {
    std::printf("store '%s' is consistent\n", ctx.store_dir.c_str());
  }
  return Status::OK();
}

}  // namespace mosaic::jobs
