#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>

#include "graph/text_features.h"
#include "jobs/cli/commands.h"
#include "jobs/cli/model_plugin.h"
#include "jobs/cli/progress.h"
#include "store/store.h"

namespace mosaic::jobs {

Status OpenStore(const Context& ctx, bool create, bool read_only, std::unique_ptr<store::Store>* store) {
  store::OpenOptions options;
  options.create_if_missing = create;
  options.read_only = read_only;
  // Another writer (often `mosaic serve`, which holds the lock only while it writes) gets time to finish.
  options.wait_for_lock_ms = kWriteLockWaitMs;
  options.on_wait = [&ctx] {
    if (!ctx.json) std::fprintf(stderr, "the store is busy (another process is writing); waiting for it...\n");
  };
  return store::Store::Open(ctx.store_dir, options, store);
}

Status ImportInto(const Context& ctx, store::Store* store, const graph::ImportRequest& request,
                  nlohmann::json* result) {
  std::string label = "import";
  for (const auto& f : graph::ImportFormats()) {
    if (f.format == request.format) label += std::string(" ") + f.name;
  }
  Progress progress(ctx.progress, label);
  const auto start = std::chrono::steady_clock::now();
  graph::ImportReport report;
  MOSAIC_RETURN_IF_ERROR(graph::Import(
      store, request,
      [&](const graph::ImportProgress& p) {
        const double seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        char detail[96];
        std::snprintf(detail, sizeof detail, "%s  %.1f MB/s  %s rows written", p.pass == 1 ? "checking" : "writing ",
                      seconds > 0 ? p.bytes_done / 1e6 / seconds : 0.0, WithThousands(p.rows).c_str());
        progress.Update(double(p.bytes_done), double(p.bytes_total), detail);
      },
      &report));
  progress.Finish();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  *result = {{"files", request.files}, {"rows", report.rows}, {"bytes", report.bytes},
             {"batches", report.batches}, {"text_features", report.text_features}, {"seconds", seconds},
             {"rows_per_second", seconds > 0 ? report.rows / seconds : 0.0}};
  if (!request.links_file.empty()) (*result)["links"] = request.links_file;
  return Status::OK();
}

namespace {
// Formats whose rows describe items (titles, tags...) and so change their text.
bool DescribesItems(graph::ImportFormat f) {
  return f == graph::ImportFormat::kHetrecArtists || f == graph::ImportFormat::kMovielensMovies ||
         f == graph::ImportFormat::kMovielensTags || f == graph::ImportFormat::kCatalogueJsonl;
}
}  // namespace

Status RunImport(const Context& ctx, const graph::ImportRequest& base_request) {
  graph::ImportRequest request = base_request;
  std::shared_ptr<const encoders::TextModel> encoder;
  graph::TextFeatureHook hook;
  if (DescribesItems(request.format) && !ctx.no_text) {
    MOSAIC_RETURN_IF_ERROR(LoadTextModel(ctx, &encoder));
    hook = MakeTextHook(encoder);
    request.text_features = &hook;
    request.rows_per_batch = std::min<size_t>(request.rows_per_batch, 2000);  // progress keeps moving while encoding
  }
  std::error_code ec;
  const bool existed = std::filesystem::exists(std::filesystem::path(ctx.store_dir) / "CURRENT", ec);
  std::unique_ptr<store::Store> store;
  MOSAIC_RETURN_IF_ERROR(OpenStore(ctx, /*create=*/true, /*read_only=*/false, &store));
  store::NodeId first_new = 0;
  MOSAIC_RETURN_IF_ERROR(store->NewReadView()->NodeIdLimit(&first_new));
  nlohmann::json result;
  Status s = ImportInto(ctx, store.get(), request, &result);
  if (!s.ok()) {
    if (!existed) {
      // A store this command created holds nothing worth keeping: leave no trace of it.
      store.reset();
      std::filesystem::remove_all(ctx.store_dir, ec);
    }
    return s;
  }
  // New items become recommendable now, from the current model (when there is one).
  PluginPlacer placer;
  service::PlaceReport placed;
  MOSAIC_RETURN_IF_ERROR(service::PlaceCreatedItems(store.get(), first_new, &placer, &placed));
  AddPlacement(placed, &result);
  if (ctx.json) {
    std::printf("%s\n", result.dump().c_str());
  } else {
    std::printf("imported %s rows (%.1f MB) in %.2f s: %s rows/s", WithThousands(result["rows"]).c_str(),
                result["bytes"].get<double>() / 1e6, result["seconds"].get<double>(),
                WithThousands(uint64_t(result["rows_per_second"].get<double>())).c_str());
    if (result["text_features"].get<uint64_t>() > 0) {
      std::printf(", %s item texts encoded", WithThousands(result["text_features"]).c_str());
    }
    std::printf("\n");
    PrintPlacement(placed);
  }
  return Status::OK();
}

}  // namespace mosaic::jobs
