// The table that libmosaic_model_jobs.so hands to the `mosaic` binary (jobs/cli/model_plugin.h):
// each entry is the service call it names, wrapped once in the error boundary.
#include <chrono>
#include <exception>
#include <stdexcept>
#include <string>

#include "fusion/kgat_ranker.h"
#include "fusion/lightgcn.h"
#include "jobs/cli/model_plugin.h"
#include "jobs/http/server.h"
#include "jobs/service/api_boundary.h"
#include "jobs/service/placement.h"
#include "jobs/service/serving_model.h"

namespace mosaic::jobs {
namespace {

Status Rebuild(const std::string& store_dir, const service::RebuildOptions& options, service::RebuildReport* report) {
  MOSAIC_API_BEGIN();
  return service::Rebuild(store_dir, options, report);
  MOSAIC_API_END();
}

Status Query(const std::string& store_dir, const service::Query& query, service::QueryResult* result) {
  MOSAIC_API_BEGIN();
  store::OpenOptions read_only;
  read_only.read_only = true;
  std::unique_ptr<store::Store> store;
  MOSAIC_RETURN_IF_ERROR(store::Store::Open(store_dir, read_only, &store));
  auto view = store->NewReadView();
  std::unique_ptr<service::ServingModel> model;
  MOSAIC_RETURN_IF_ERROR(service::ServingModel::Load(*view, &model));
  if (query.explore == 0) return model->Run(*view, query, result);
  service::ExposureBoard exposure;
  MOSAIC_RETURN_IF_ERROR(exposure.Load(*view));
  return model->Run(*view, query, result, &exposure);
  MOSAIC_API_END();
}

Status Place(store::Store* store, const std::vector<store::NodeId>& items, service::PlaceReport* report) {
  MOSAIC_API_BEGIN();
  service::StoredModelPlacer placer;
  return placer.Place(store, items, report);
  MOSAIC_API_END();
}

Status NewRanker(const nlohmann::json& options, std::unique_ptr<fusion::Baseline>* ranker) {
  MOSAIC_API_BEGIN();
  const std::string model = options.value("model", std::string("mosaic"));
  if (model == "lightgcn") {
    fusion::LightGcnOptions o;
    o.seed = options.value("seed", o.seed);
    o.max_epochs = options.value("epochs", o.max_epochs);
    o.device = options.value("device", o.device);
    try {
      *ranker = fusion::MakeLightGcn(o);
    } catch (const std::invalid_argument& e) {
      return Status::InvalidArgument(e.what());  // an option out of range ("epochs": 0, an unknown device)
    }
    return Status::OK();
  }
  if (model != "mosaic") return Status::InvalidArgument("unknown model '" + model + "' (mosaic or lightgcn)");
  fusion::KgatRankerOptions o;
  o.train.seed = options.value("seed", o.train.seed);
  o.train.device = options.value("device", o.train.device);
  o.train.epochs = options.value("epochs", o.train.epochs);
  o.use_kg = options.value("kg", true);
  if (!o.use_kg) o.name = "Mosaic (no KG)";
  if (options.contains("distributed")) {  // `mosaic eval --distributed`: joins the group now
    const nlohmann::json& d = options["distributed"];
    fusion::TrainingGroupOptions g;
    g.master_addr = d.value("master_addr", g.master_addr);
    g.master_port = d.value("master_port", g.master_port);
    g.rank = d.value("rank", g.rank);
    g.world_size = d.value("world_size", g.world_size);
    g.timeout = std::chrono::milliseconds(d.value("timeout_ms", int64_t(g.timeout.count())));
    try {
      if (g.world_size > 1) o.train.group = fusion::TrainingGroup::Join(g);
    } catch (const std::runtime_error& e) {
      return Status::IOError(e.what());
    }
  }
  *ranker = fusion::MakeKgatRanker(o);
  return Status::OK();
  MOSAIC_API_END();
}

Status Serve(const Context& ctx, const ServeArgs& args) {
  MOSAIC_API_BEGIN();
  return http::RunServer(ctx, args);
  MOSAIC_API_END();
}

const ModelPlugin kPlugin = {Rebuild, Query, Place, NewRanker, Serve};

}  // namespace
}  // namespace mosaic::jobs

extern "C" __attribute__((visibility("default"))) const mosaic::jobs::ModelPlugin* mosaic_model_jobs_plugin() {
  return &mosaic::jobs::kPlugin;
}
