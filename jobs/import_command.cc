#include <chrono>
#include <cstdio>
#include <filesystem>

#include "jobs/commands.h"
#include "jobs/progress.h"
#include "store/store.h"

namespace mosaic::jobs {

Status OpenStore(const Context& ctx, bool create, bool read_only, std::unique_ptr<store::Store>* store) {
  store::OpenOptions options;
  options.create_if_missing = create;
  options.read_only = read_only;
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
             {"batches", report.batches}, {"seconds", seconds},
             {"rows_per_second", seconds > 0 ? report.rows / seconds : 0.0}};
  if (!request.links_file.empty()) (*result)["links"] = request.links_file;
  return Status::OK();
}

Status RunImport(const Context& ctx, const graph::ImportRequest& request) {
  std::error_code ec;
  const bool existed = std::filesystem::exists(std::filesystem::path(ctx.store_dir) / "CURRENT", ec);
  std::unique_ptr<store::Store> store;
  MOSAIC_RETURN_IF_ERROR(OpenStore(ctx, /*create=*/true, /*read_only=*/false, &store));
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
  if (ctx.json) {
    std::printf("%s\n", result.dump().c_str());
  } else {
    std::printf("imported %s rows (%.1f MB) in %.2f s: %s rows/s\n", WithThousands(result["rows"]).c_str(),
                result["bytes"].get<double>() / 1e6, result["seconds"].get<double>(),
                WithThousands(uint64_t(result["rows_per_second"].get<double>())).c_str());
  }
  return Status::OK();
}

}  // namespace mosaic::jobs
