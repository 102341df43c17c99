// Read-only views of the store for people browsing the catalogue: an item's page, a node's KG
// neighbourhood as a drawable graph, search by title, a user's history, the model versions. `mosaic
// show` prints the first; the dashboard's endpoints (jobs/http/dashboard.h) return them all. No
// LibTorch here. Every walk and scan is bounded, since HTTP clients choose what to look at.
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "store/status.h"
#include "store/store.h"

namespace mosaic::graph {
struct TextFeatureHook;
}

namespace mosaic::jobs::service {

// A node as people see it: {"id", "kind", "key"} and "label" when it has one.
nlohmann::json DescribeNode(store::NodeId id, const store::NodeRecord& record);

// An item: its node, attributes (metadata and media analysis), KG links (not interactions), features
// (name, extractor, version, dims; the vectors themselves only `with_values`), how many users
// interacted with it, its exposure counters, and its placement ("placement": the model version that
// placed it and how, or null for an item trained with a version or never placed). NotFound for a
// node that is not an item.
Status DescribeItem(const store::ReadView& view, store::NodeId item, bool with_values, nlohmann::json* result);

struct GraphLimits {
  int hops = 2;            ///< walk this far from the centre (1 or 2)
  size_t per_node = 12;    ///< neighbours kept per node walked (the rest counted, not shown)
  size_t max_nodes = 80;   ///< nodes in all, the centre included
  size_t max_scan = 1000;  ///< edges read per node walked at most (a hub's degree is then "at least")
  size_t max_leaf_scan = 200;  ///< the same for the outermost nodes (read only for their links and degree)
};

// The knowledge graph around `center` (an item or an entity), for drawing: {"center", "nodes": [node
// + "hops" + "degree" + "degree_capped"], "edges": [{"source", "target", "relation"}] as stored
// (head to tail)}. Interactions are not walked. Breadth first within `limits`.
Status NodeGraph(const store::ReadView& view, store::NodeId center, const GraphLimits& limits,
                 nlohmann::json* result);

struct SearchOptions {
  std::string text;      ///< what to look for; empty: every item
  std::string kind;      ///< "video" or "music" (the item's "kind" attribute); empty: both
  size_t limit = 50;     ///< results at most
  const graph::TextFeatureHook* text_model = nullptr;  ///< when given, text-similar items follow the exact ones
};
// {"items": [node + "item_kind" + "match": "title" | "linked" | "text" (+ "via", "similarity")], "total": the
// exact matches (title or linked) in all, listed or not}:
// items whose title contains the text (case- and space-insensitive) and then items linked to an
// entity whose name does (an artist, a genre), newest first (latest ingested); then, with a text
// model, the items whose text embedding is nearest the text's. InvalidArgument for a kind other
// than video or music.
Status SearchItems(const store::ReadView& view, const SearchOptions& options, nlohmann::json* result);

// Scores every item that has a text vector from the text model (modalities::kTextModality) of `query`'s
// width by its cosine with `query` (the vectors are L2-normalised): (score, item), in id order.
// *other_model, when given, counts the items whose vector came from another model or version.
Status ScoreItemsByText(const store::ReadView& view, const std::vector<float>& query,
                        std::vector<std::pair<float, store::NodeId>>* scored, size_t* other_model = nullptr);

// {"user": node, "items": [node + "plays"], "total"}: the user's items, most played first, at most
// `limit`. NotFound for an unknown user.
Status UserHistory(const store::ReadView& view, const std::string& user, size_t limit, nlohmann::json* result);

// {"current": N or null, "versions": [...]}: each stored model version's manifest, newest first, with
// its list of cold items replaced by their count.
Status ListModelVersions(const store::ReadView& view, nlohmann::json* result);

}  // namespace mosaic::jobs::service
