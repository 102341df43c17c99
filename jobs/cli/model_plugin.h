// The commands that train or run the graph-attention model live in a shared library of their own
// (libmosaic_model_jobs.so, which pulls in LibTorch), opened with dlopen on first use, so that the
// commands that need no model never pay LibTorch's load time. This header is the whole interface
// between the `mosaic` binary and that library.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "jobs/commands.h"
#include "store/status.h"

namespace mosaic::fusion {
class Baseline;
}
namespace mosaic::graph {
struct TextFeatureHook;
}
namespace mosaic::store {
class Batch;
class Store;
}

namespace mosaic::jobs {

// mosaic rebuild
struct RebuildArgs {
  int epochs = 0;         ///< 0 = the default for the store's size
  uint64_t seed = 2026;   ///< initialisation, sampling and dropout seed
  bool resume = false;    ///< continue from the last checkpoint of an interrupted rebuild
  std::string hnsw = "auto";  ///< auto|on|off: store an HNSW graph of the items (auto: from kHnswMinItems items on)
  nlohmann::json* summary = nullptr;  ///< when set, receives the summary instead of stdout (the demo)
};

// mosaic recommend / audience / similar
struct QueryArgs {
  std::string user;           ///< recommend: user key
  std::string item;           ///< audience, similar: item id, key or exact title
  size_t k = 10;              ///< results
  bool new_only = false;      ///< recommend: only items with no interactions (cold start)
  bool exclude_seen = false;  ///< recommend: leave out items the user interacted with
  bool explain = false;       ///< add the neighbours and relations that contributed most
};

// mosaic serve (docs/serving.md)
struct ServeArgs {
  std::string host = "127.0.0.1";  ///< address to listen on
  int port = 8080;                 ///< 0: any free port (printed)
  int threads = 0;                 ///< request threads; 0 = 8 x cores, at least 32
  size_t max_body = size_t(1) << 20;  ///< largest request body, bytes
  const graph::TextFeatureHook* text = nullptr;  ///< encodes the text of POSTed items; null: none
};

struct ModelPlugin {
  // mosaic rebuild: trains on a snapshot of the store and switches queries to the new version.
  Status (*rebuild)(const Context& ctx, const RebuildArgs& args);
  // mosaic recommend / audience / similar (`query` names which) into *result (printed by the caller
  // through print_query).
  Status (*query)(const Context& ctx, const std::string& query, const QueryArgs& args, nlohmann::json* result);
  void (*print_query)(const nlohmann::json& result);
  // Computes, with the current model, the representations of `items` (new items just written by
  // import or ingest, not in the current model version) and stores them in one batch of their own, so
  // that they are recommendable when it returns. Does nothing (OK, *placed = 0) before the first rebuild.
  Status (*place_new_items)(const Context& ctx, store::Store* store, const std::vector<uint32_t>& items,
                            size_t* placed);
  // A ranker for `mosaic eval` (fusion::Baseline interface) with the graph-attention model inside;
  // options: {"seed": S, "kg": true|false, "epochs": N, "device": D}.
  std::unique_ptr<fusion::Baseline> (*new_ranker)(const nlohmann::json& options);
  // mosaic serve: answers HTTP requests until SIGINT or SIGTERM.
  Status (*serve)(const Context& ctx, const ServeArgs& args);
};

// For import and ingest, after they commit: places the items with node ids >= `first_new` (those the
// command created) with the current model, through the plugin. Without a current model it does
// nothing and never loads the library (so stores without a model never load LibTorch). On success
// *placed is the number placed and *version the model version used (0 when none).
Status PlaceCreatedItems(const Context& ctx, store::Store* store, uint32_t first_new, size_t* placed,
                         uint64_t* version);

// Opens the library once and returns its table; throws std::runtime_error (naming the library and
// the loader's message) when it cannot be loaded. $MOSAIC_MODEL_JOBS_LIBRARY overrides its path.
const ModelPlugin& LoadModelPlugin();

}  // namespace mosaic::jobs
