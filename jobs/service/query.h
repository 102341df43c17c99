// The queries a model version answers, as types: what the CLI commands and the HTTP endpoints ask
// (Query) and what they get back (QueryResult). No LibTorch here, so the `mosaic` binary can build
// and print them without loading the model library; ToJson is the one JSON shape of a result, shared
// by `--json` and HTTP.
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "store/status.h"
#include "store/store.h"

namespace mosaic::jobs::service {

inline constexpr size_t kMaxQueryK = 1000;  ///< largest k a query accepts

enum class QueryKind {
  kRecommend,  ///< items for a user
  kAudience,   ///< users for an item
  kSimilar,    ///< items near an item
};

// Every kind, in the order commands and endpoints list them.
inline constexpr QueryKind kQueryKinds[] = {QueryKind::kRecommend, QueryKind::kAudience, QueryKind::kSimilar};

// "recommend", "audience", "similar": the CLI command, the endpoint (after '/') and the JSON "query".
const char* QueryKindName(QueryKind kind);

// Whether the subject of `kind` is a user (recommend) rather than an item.
inline bool AsksAboutUser(QueryKind kind) { return kind == QueryKind::kRecommend; }

struct Query {
  QueryKind kind = QueryKind::kRecommend;
  std::string user;           ///< recommend: user key
  std::string item;           ///< audience, similar: item id, key or exact title
  size_t k = 10;              ///< results, 1..kMaxQueryK
  bool new_only = false;      ///< recommend: only items with no interactions (cold start)
  bool exclude_seen = false;  ///< recommend: leave out items the user interacted with
  bool explain = false;       ///< add the graph paths that contributed most
  size_t explore = 0;         ///< recommend: at most this many positions for items explored (fusion/explore.h)
  bool seeded = false;        ///< recommend: explore with `seed` (repeatable), else with fresh randomness
  uint64_t seed = 0;          ///< with `seeded`

  // InvalidArgument naming the field when k is out of range, explore above k, or the subject is missing.
  Status Validate() const;
};

// A node as results show it.
struct NodeRef {
  store::NodeId id = 0;
  std::string key;    ///< external key (empty when the node is gone from the store)
  std::string label;  ///< title or name (may be empty)
};

struct Hit {
  NodeRef node;                      ///< an item (recommend, similar) or a user (audience)
  float score = 0;                   ///< dot product (recommend, audience) or cosine (similar)
  bool placed = false;               ///< an item placed after the version was trained
  bool explored = false;             ///< recommend: in the list by exploration, not by its score alone
  std::optional<double> plays;       ///< recommend: the user's plays of this item, when any
  std::vector<std::string> reasons;  ///< with Query::explain: best path first
};

struct QueryResult {
  Query query;                 ///< what was asked
  uint64_t model_version = 0;  ///< the version that answered
  NodeRef subject;             ///< the user (recommend) or the item (audience, similar)
  std::vector<Hit> hits;       ///< best first
  bool user_from_history = false;  ///< the user had no row in the version: folded in from their plays
  size_t plays_since_version = 0;  ///< items the user played since the version, folded into the list
  bool personalised = true;        ///< false: a user with no plays yet got the most played items lately
  std::string request;             ///< the id POST /impressions names this list by (the server's; else empty)
};

// The result as `mosaic recommend --json` prints it and the endpoints return it.
nlohmann::json ToJson(const QueryResult& result);

}  // namespace mosaic::jobs::service
