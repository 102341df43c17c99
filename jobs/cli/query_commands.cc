#include <cstdio>
#include <filesystem>

#include "graph/catalogue.h"
#include "graph/csr.h"
#include "graph/text.h"
#include "jobs/cli/commands.h"
#include "jobs/cli/progress.h"
#include "jobs/service/browse.h"
#include "modalities/media.h"
#include "store/store.h"

namespace mosaic::jobs {

using store::NodeId;
using store::NodeKind;
using service::DescribeNode;

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


namespace {

// "Clair de lune" or, for nodes without a label, "entity 4012".
// Control characters are escaped (a name is printed on a terminal).
std::string NameOf(const nlohmann::json& node) {
  if (node.contains("label")) return graph::EscapeControl(node["label"].get<std::string>());
  return node["kind"].get<std::string>() + " " + graph::EscapeControl(node["key"].get<std::string>());
}

// Resolves an item by id or exact title (case-insensitive), else by the content of a media file at
// that path.
Status ResolveItem(const store::ReadView& view, const std::string& text, NodeId* id) {
  Status s = graph::FindItemByKeyOrTitle(view, text, id);
  std::error_code ec;
  if (!s.IsNotFound() || !std::filesystem::is_regular_file(text, ec)) return s;
  std::string hash;
  MOSAIC_RETURN_IF_ERROR(modalities::ContentHash(text, &hash).WithContext(text + ": "));
  s = view.FindNode(NodeKind::kItem, "sha256:" + hash, id);
  if (s.IsNotFound()) return Status::NotFound("file '" + text + "' has not been ingested");
  return s;
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
  std::printf("%s  [item %s, %s edges]\n", NameOf(item).c_str(), ShortKey(item["key"]).c_str(),
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
    if (n["kind"] != "entity") line += "  [" + n["kind"].get<std::string>() + " " + ShortKey(n["key"]) + "]";
    if (n["paths"].get<uint64_t>() > 1) line += "  (" + WithThousands(n["paths"].get<uint64_t>()) + " paths)";
    std::printf("%s\n", line.c_str());
  }
  if (r["neighbors"].empty()) std::printf("  no neighbours\n");
}

namespace {
// A read-only query: collect from a snapshot, then print as JSON or for people.
template <typename Collect, typename Print>
Status RunQuery(const Context& ctx, Collect&& collect, Print&& print) {
  std::unique_ptr<store::Store> store;
  MOSAIC_RETURN_IF_ERROR(OpenStore(ctx, false, /*read_only=*/true, &store));
  nlohmann::json result;
  MOSAIC_RETURN_IF_ERROR(collect(*store->NewReadView(), &result));
  if (ctx.json) {
    std::printf("%s\n", result.dump().c_str());
  } else {
    print(result);
  }
  return Status::OK();
}
}  // namespace

Status RunStats(const Context& ctx) {
  return RunQuery(
      ctx,
      [&](const store::ReadView& view, nlohmann::json* r) {
        MOSAIC_RETURN_IF_ERROR(CollectStats(view, r));
        (*r)["store"] = ctx.store_dir;
        return Status::OK();
      },
      [&](const nlohmann::json& r) {
        std::printf("store             %s\n", ctx.store_dir.c_str());
        PrintStats(r);
      });
}

Status RunNeighbors(const Context& ctx, const NeighborsArgs& args) {
  return RunQuery(
      ctx, [&](const store::ReadView& view, nlohmann::json* r) { return CollectNeighbors(view, args, r); },
      PrintNeighbors);
}

Status CollectShow(const store::ReadView& view, const std::string& text, nlohmann::json* result) {
  NodeId id = 0;
  MOSAIC_RETURN_IF_ERROR(ResolveItem(view, text, &id));
  return service::DescribeItem(view, id, /*with_values=*/true, result);
}

void PrintShow(const nlohmann::json& r) {
  const auto& item = r["item"];
  const auto& a = r["attributes"];
  std::printf("%s  [item %s]\n", NameOf(item).c_str(), graph::EscapeControl(item["key"].get<std::string>()).c_str());
  auto field = [&](const char* name, const std::string& value) {
    std::printf("  %-13s %s\n", name, graph::EscapeControl(value).c_str());
  };
  auto number = [](double v, const char* fmt) {
    char buf[64];
    std::snprintf(buf, sizeof buf, fmt, v);
    return std::string(buf);
  };
  if (a.contains("kind")) field("kind", a["kind"]);
  if (a.contains("description")) field("description", a["description"]);
  if (a.contains("year")) field("year", a["year"].dump());
  if (a.contains("duration_s")) {
    field("duration", number(a["duration_s"], "%.2f s") + "   " + a.value("container", "") + ", " +
                          number(a.value("size_bytes", 0) / 1e6, "%.2f MB"));
  }
  if (a.contains("file")) field("file", a["path"]);
  if (a.contains("video")) {
    const auto& v = a["video"];
    field("video", v["codec"].get<std::string>() + " " + std::to_string(v["width"].get<int>()) + "x" +
                       std::to_string(v["height"].get<int>()) + number(v["fps"], " %.2f fps") +
                       (v["rotation"].get<int>() ? " rotated " + std::to_string(v["rotation"].get<int>()) : ""));
  } else if (a.contains("duration_s")) {
    field("video", "none");
  }
  if (a.contains("audio")) {
    const auto& v = a["audio"];
    field("audio", v["codec"].get<std::string>() + " " + std::to_string(v["sample_rate"].get<int>()) + " Hz, " +
                       std::to_string(v["channels"].get<int>()) + " ch");
  } else if (a.contains("duration_s")) {
    field("audio", "none");
  }
  if (a.contains("analysis")) {
    const auto& an = a["analysis"];
    if (an.contains("visual")) {
      const auto& v = an["visual"];
      field("visual", std::to_string(v["samples"].get<int>()) + " frames sampled, " + std::to_string(v["cuts"].get<int>()) +
                          " cuts (" + number(v["cut_rate_per_min"], "%.1f") + "/min), brightness " +
                          number(v["brightness"], "%.2f") + ", colourfulness " + number(v["colourfulness"], "%.1f") +
                          ", motion " + number(v["motion"], "%.3f"));
    }
    if (an.contains("audio")) {
      const auto& v = an["audio"];
      field("sound", "tempo " + number(v["tempo_bpm"], "%.1f") + " BPM (confidence " + number(v["tempo_confidence"], "%.2f") +
                         "), " + number(v["onset_rate"], "%.2f") + " onsets/s, loudness " + number(v["rms_db"], "%.1f") +
                         " dBFS, silence " + number(100.0 * v["silence_ratio"].get<double>(), "%.0f") + "%, centroid " +
                         number(v["spectral_centroid_hz"], "%.0f") + " Hz");
    }
  }
  std::string links;
  for (const auto& l : r["links"]) {
    links += (links.empty() ? "" : "; ") + l["relation"].get<std::string>() + (l["direction"] == "out" ? " -> " : " <- ") +
             NameOf(l["node"]);
  }
  field("KG links", links.empty() ? "none" : links);
  std::string features;
  for (const auto& [modality, f] : r["features"].items()) {
    features += (features.empty() ? "" : "; ") + modality + " (" + f["extractor"].get<std::string>() + " v" +
                std::to_string(f["version"].get<int>()) + ", " + std::to_string(f["dims"].get<int>()) + " dims)";
  }
  field("features", features.empty() ? "none" : features);
  if (r["features"].contains("text")) {
    std::string text = r["features"]["text"]["text"];
    if (text.size() > 160) text = text.substr(0, 157) + "...";
    field("encoded text", "\"" + text + "\"");
  }
  field("interactions", WithThousands(r["interacting_users"].get<uint64_t>()) + " users");
  field("exposure", "shown " + WithThousands(r["exposure"]["impressions"].get<uint64_t>()) + " times, played " +
                        WithThousands(r["exposure"]["plays"].get<uint64_t>()) +
                        " times through the server (POST /impressions, /interactions)");
  if (!r["placement"].is_null()) {
    const bool by_rebuild = r["placement"]["by"] == "rebuild";
    field("placement", "model v" + std::to_string(r["placement"]["model_version"].get<uint64_t>()) + " placed it " +
                           (by_rebuild ? "after training (it arrived during the rebuild)" : "when it was added") +
                           ", from its content and KG links");
  }
}

Status RunShow(const Context& ctx, const std::string& item) {
  return RunQuery(
      ctx, [&](const store::ReadView& view, nlohmann::json* r) { return CollectShow(view, item, r); }, PrintShow);
}

Status RunCheck(const Context& ctx) {
  std::unique_ptr<store::Store> store;
  MOSAIC_RETURN_IF_ERROR(OpenStore(ctx, false, /*read_only=*/true, &store));
  // Every block of every column family (models included, which the invariants below never read),
  // then the invariants.
  MOSAIC_RETURN_IF_ERROR(store->VerifyChecksums());
  MOSAIC_RETURN_IF_ERROR(store->NewReadView()->CheckConsistency());
  if (ctx.json) {
    std::printf("{\"store\":%s,\"consistent\":true}\n", nlohmann::json(graph::DisplayBytes(ctx.store_dir)).dump().c_str());
  } else {
    std::printf("store '%s' is consistent\n", graph::EscapeControl(ctx.store_dir).c_str());
  }
  return Status::OK();
}

}  // namespace mosaic::jobs
