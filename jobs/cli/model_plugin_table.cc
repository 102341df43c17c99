// The table that libmosaic_model_jobs.so hands to the `mosaic` binary (jobs/model_plugin.h). Every
// entry catches what LibTorch throws, so no exception crosses the library boundary.
#include <exception>

#include "fusion/kgat_ranker.h"
#include "jobs/model_jobs.h"

namespace mosaic::jobs {
namespace {

Status Rebuild(const Context& ctx, const RebuildArgs& args) {
  try {
    return RunRebuild(ctx, args);
  } catch (const std::exception& e) {
    return Status::InvalidArgument(std::string("rebuild: ") + e.what());
  }
}

Status Query(const Context& ctx, const std::string& query, const QueryArgs& args, nlohmann::json* result) {
  return RunModelQuery(ctx, query, args, result);
}

void Print(const nlohmann::json& result) { PrintModelQuery(result); }

Status Place(const Context& ctx, store::Store* store, const std::vector<uint32_t>& items, size_t* placed) {
  return PlaceNewItems(ctx, store, items, placed);
}

std::unique_ptr<fusion::Baseline> NewRanker(const nlohmann::json& options) {
  fusion::KgatRankerOptions o;
  o.train.seed = options.value("seed", o.train.seed);
  o.train.device = options.value("device", o.train.device);
  o.train.epochs = options.value("epochs", o.train.epochs);
  o.use_kg = options.value("kg", true);
  if (!o.use_kg) o.name = "Mosaic (no KG)";
  return fusion::MakeKgatRanker(o);
}

const ModelPlugin kPlugin = {Rebuild, Query, Print, Place, NewRanker, RunServe};

}  // namespace
}  // namespace mosaic::jobs

extern "C" __attribute__((visibility("default"))) const mosaic::jobs::ModelPlugin* mosaic_model_jobs_plugin() {
  return &mosaic::jobs::kPlugin;
}
