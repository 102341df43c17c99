// The commands that train or run the model live in a shared library of their own
// (libmosaic_model_jobs.so, which pulls in LibTorch), opened with dlopen on first use, so that the
// commands that need no model never pay LibTorch's load time. This header is the whole interface
// between the `mosaic` binary and that library. Every entry returns a Status and lets no exception
// out (each is wrapped once in MOSAIC_API_BEGIN/END).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "jobs/cli/commands.h"
#include "jobs/service/add_items.h"
#include "jobs/service/query.h"
#include "jobs/service/rebuild.h"
#include "store/status.h"

namespace mosaic::fusion {
class Baseline;
}
namespace mosaic::graph {
struct TextFeatureHook;
}

namespace mosaic::jobs {

struct ModelPlugin {
  // mosaic rebuild: service::Rebuild.
  Status (*rebuild)(const std::string& store_dir, const service::RebuildOptions& options,
                    service::RebuildReport* report);
  // mosaic recommend / audience / similar: answers `query` from the current version of the store.
  Status (*query)(const std::string& store_dir, const service::Query& query, service::QueryResult* result);
  // Places `items` (just written, not in the current version) with the current version and stores
  // the placements in one batch of their own. OK with report->model_version = 0 before the first rebuild.
  Status (*place)(store::Store* store, const std::vector<store::NodeId>& items, service::PlaceReport* report);
  // A ranker for `mosaic eval` (fusion::Baseline interface) backed by LibTorch, chosen by "model":
  // absent or "mosaic": the model, options {"seed": S, "kg": true|false, "epochs": N, "device": D};
  // "lightgcn": the LightGCN peer (fusion::MakeLightGcn), options {"seed": S, "epochs": N (max epochs,
  // default 300), "device": D}. InvalidArgument for another "model" or a LightGCN option out of range.
  Status (*new_ranker)(const nlohmann::json& options, std::unique_ptr<fusion::Baseline>* ranker);
  // mosaic serve: answers HTTP requests until SIGINT or SIGTERM.
  Status (*serve)(const Context& ctx, const ServeArgs& args);
};

// Opens the library once and returns its table. IOError naming the library and the loader's message
// when it cannot be loaded; $MOSAIC_MODEL_JOBS_LIBRARY overrides its path.
Status LoadModelPlugin(const ModelPlugin** plugin);

// The placer of import and ingest: the library's placement, which it loads only when the store has a
// current model (so that stores without one never load LibTorch).
class PluginPlacer : public service::ItemPlacer {
 public:
  Status Place(store::Store* store, const std::vector<store::NodeId>& items, service::PlaceReport* report) override;
};

}  // namespace mosaic::jobs
