#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "jobs/commands.h"
#include "jobs/demo_data.h"
#include "store/store.h"

namespace mosaic::jobs {

namespace fs = std::filesystem;

namespace {

Status WriteFile(const fs::path& path, std::string_view content) {
  std::ofstream out(path, std::ios::binary);
  out.write(content.data(), std::streamsize(content.size()));
  out.close();
  if (!out) return Status::IOError("cannot write '" + path.string() + "'");
  return Status::OK();
}

Status MakeDemoFolder(const std::string& requested, fs::path* dir) {
  std::error_code ec;
  if (!requested.empty()) {
    *dir = requested;
    if (fs::exists(*dir, ec) && !fs::is_empty(*dir, ec)) {
      return Status::InvalidArgument("demo folder '" + requested + "' is not empty; name a new folder");
    }
    fs::create_directories(*dir, ec);
    if (ec) return Status::IOError("cannot create '" + requested + "': " + ec.message());
    return Status::OK();
  }
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/mosaic-demo-XXXXXX";
  if (!mkdtemp(pattern.data())) return Status::IOError("cannot create a temporary folder from '" + pattern + "'");
  *dir = pattern;
  return Status::OK();
}

void Heading(const Context& ctx, const std::string& text) {
  if (!ctx.json) std::printf("\n== %s\n", text.c_str());
}

}  // namespace

Status RunDemo(const Context& base_ctx, const DemoArgs& args) {
  fs::path dir;
  MOSAIC_RETURN_IF_ERROR(MakeDemoFolder(args.dir, &dir));
  const fs::path data = dir / "data";
  std::error_code ec;
  fs::create_directories(data, ec);
  if (ec) return Status::IOError("cannot create '" + data.string() + "': " + ec.message());
  MOSAIC_RETURN_IF_ERROR(WriteFile(data / "catalogue.jsonl", demo_data::kCatalogue));
  MOSAIC_RETURN_IF_ERROR(WriteFile(data / "kg.tsv", demo_data::kKnowledgeGraph));
  MOSAIC_RETURN_IF_ERROR(WriteFile(data / "interactions.tsv", demo_data::kInteractions));

  Context ctx = base_ctx;
  ctx.store_dir = (dir / "store").string();
  nlohmann::json report = {{"dir", dir.string()}, {"store", ctx.store_dir}};
  if (!ctx.json) {
    std::printf("Mosaic demo: a small music and video catalogue with its knowledge graph and 8 listeners.\n");
    std::printf("store: %s\n", ctx.store_dir.c_str());
  }

  std::unique_ptr<store::Store> store;
  MOSAIC_RETURN_IF_ERROR(OpenStore(ctx, /*create=*/true, /*read_only=*/false, &store));
  Heading(ctx, "import");
  struct Step {
    graph::ImportFormat format;
    const char* file;
    const char* what;
  };
  const Step steps[] = {
      {graph::ImportFormat::kCatalogueJsonl, "catalogue.jsonl", "catalogue (titles, artists, directors, genres, tags)"},
      {graph::ImportFormat::kKgTriples, "kg.tsv", "knowledge-graph triples (influences, places, movements)"},
      {graph::ImportFormat::kInteractions, "interactions.tsv", "plays by 8 listeners"},
  };
  nlohmann::json imports = nlohmann::json::array();
  for (const Step& step : steps) {
    graph::ImportRequest request;
    request.format = step.format;
    request.files = {(data / step.file).string()};
    nlohmann::json result;
    MOSAIC_RETURN_IF_ERROR(ImportInto(ctx, store.get(), request, &result));
    if (!ctx.json) {
      std::printf("  %-18s %4d rows  %s\n", step.file, result["rows"].get<int>(), step.what);
    }
    imports.push_back(result);
  }
  report["imports"] = imports;

  auto view = store->NewReadView();
  Heading(ctx, "stats");
  nlohmann::json stats;
  MOSAIC_RETURN_IF_ERROR(CollectStats(*view, &stats));
  report["stats"] = stats;
  if (!ctx.json) PrintStats(stats);

  for (const char* item : {"clair-de-lune", "nosferatu"}) {
    NeighborsArgs args;
    args.item = item;
    args.hops = 2;
    args.limit = 8;
    Heading(ctx, std::string("knowledge-graph neighbourhood of '") + item + "' (2 hops)");
    nlohmann::json neighbors;
    MOSAIC_RETURN_IF_ERROR(CollectNeighbors(*view, args, &neighbors));
    report["neighbors"][item] = neighbors;
    if (!ctx.json) PrintNeighbors(neighbors);
  }

  Heading(ctx, "consistency");
  MOSAIC_RETURN_IF_ERROR(view->CheckConsistency());
  report["consistent"] = true;
  if (ctx.json) {
    std::printf("%s\n", report.dump().c_str());
  } else {
    std::printf("every edge has its reverse, every node its dictionary entry, counters match\n");
    std::printf("\nExplore it yourself:\n  mosaic --store %s stats\n  mosaic --store %s neighbors \"Sintel\" --hops 2\n",
                ctx.store_dir.c_str(), ctx.store_dir.c_str());
  }
  return Status::OK();
}

}  // namespace mosaic::jobs
