#include <httplib.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "graph/text_features.h"
#include "jobs/cli/commands.h"
#include "jobs/cli/demo_data.h"
#include "jobs/cli/model_plugin.h"
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

// Real media from Debian packages that scripts/setup installs.
const char* const kDebianMusic = "/usr/share/games/neverball/bgm";       // neverball-common
const char* const kDebianSounds = "/usr/share/sounds/freedesktop/stereo";  // sound-theme-freedesktop

// Short clips made with FFmpeg's test sources: (file, ffmpeg input and codec arguments).
struct Clip {
  const char* file;
  const char* args;
};
const Clip kClips[] = {
    {"mandelbrot.mp4",
     "-f lavfi -i mandelbrot=size=320x240:rate=25 -f lavfi -i sine=frequency=220:beep_factor=2 -t 6 "
     "-c:v libx264 -preset veryfast -g 25 -pix_fmt yuv420p -c:a aac"},
    {"test-pattern.mp4",
     "-f lavfi -i testsrc2=size=320x240:rate=25 -f lavfi -i sine=frequency=440:beep_factor=4 -t 6 "
     "-c:v libx264 -preset veryfast -g 25 -pix_fmt yuv420p -c:a aac"},
    {"game-of-life.webm", "-f lavfi -i life=size=320x240:rate=25:mold=10:ratio=0.2:death_color=#302040 -t 6 -c:v libvpx -g 25"},
};

// Metadata for the media the demo ingests, matched by file name (the --meta format).
const char* const kMediaMeta = R"(
{"path": "mandelbrot.mp4", "title": "Mandelbrot Zoom", "description": "A zoom into the Mandelbrot set, rendered by FFmpeg's mandelbrot source.", "genre": ["Animation", "Science fiction"], "tags": ["fractal", "mathematics", "surreal"], "director": "FFmpeg"}
{"path": "test-pattern.mp4", "title": "Test Pattern", "description": "FFmpeg's testsrc2 pattern with a beeping tone.", "genre": "Animation", "tags": ["test card", "comedy"], "director": "FFmpeg"}
{"path": "game-of-life.webm", "title": "Game of Life", "description": "Conway's cellular automaton, silent.", "genre": ["Animation", "Silent film"], "tags": ["cellular automaton", "black-and-white"], "director": "FFmpeg"}
{"path": "title.ogg", "title": "Neverball: Title", "artist": "Neverball", "album": "Neverball soundtrack", "genre": "Video game music", "tags": ["game", "instrumental"]}
{"path": "inter.ogg", "title": "Neverball: Interlude", "artist": "Neverball", "album": "Neverball soundtrack", "genre": "Video game music", "tags": ["game", "instrumental"]}
{"path": "track1.ogg", "title": "Neverball: Track 1", "artist": "Neverball", "album": "Neverball soundtrack", "genre": "Video game music", "tags": ["game", "instrumental"]}
{"path": "track2.ogg", "title": "Neverball: Track 2", "artist": "Neverball", "album": "Neverball soundtrack", "genre": "Video game music", "tags": ["game", "instrumental"]}
{"path": "track3.ogg", "title": "Neverball: Track 3", "artist": "Neverball", "album": "Neverball soundtrack", "genre": "Video game music", "tags": ["game", "instrumental", "calm"]}
{"path": "bell.oga", "title": "Bell", "genre": "Sound effect", "tags": ["notification"]}
{"path": "complete.oga", "title": "Complete", "genre": "Sound effect", "tags": ["notification"]}
{"path": "alarm-clock-elapsed.oga", "title": "Alarm Clock", "genre": "Sound effect", "tags": ["notification"]}
)";

// Makes the demo clips with the ffmpeg CLI; returns the files made (none without ffmpeg).
std::vector<std::string> MakeClips(const fs::path& dir, std::string* note) {
  std::vector<std::string> files;
  if (std::system("command -v ffmpeg >/dev/null 2>&1") != 0) {
    *note = "ffmpeg is not installed (scripts/setup installs it): no generated clips";
    return files;
  }
  for (const Clip& clip : kClips) {
    const std::string out = (dir / clip.file).string();
    const std::string cmd = std::string("ffmpeg -nostdin -v error -y ") + clip.args + " '" + out + "' 2>/dev/null";
    if (std::system(cmd.c_str()) == 0) files.push_back(out);
  }
  return files;
}

// A brand-new Debussy piece the listeners have never played, for the cold-start part of the tour.
const char* const kNewPieceMeta =
    R"({"path": "arabesque.ogg", "title": "Arabesque No. 1", "artist": "Claude Debussy", "genre": ["Classical", "Impressionism"], "tags": ["piano", "calm"], "instrument": "piano"})"
    "\n";
const char* const kNewPieceCatalogue =
    R"({"id": "arabesque-no-1", "kind": "music", "title": "Arabesque No. 1", "artist": "Claude Debussy", "genre": ["Classical", "Impressionism"], "tags": ["piano", "calm"], "instrument": "piano"})"
    "\n";

// The model part of the tour: train, recommend with reasons, then a new item that nobody has played
// placed by the trained model at once.
Status ModelTour(const Context& ctx, const fs::path& media, nlohmann::json* report) {
  Heading(ctx, "train the graph-attention model (mosaic rebuild)");
  RebuildArgs rebuild;
  rebuild.epochs = 25;
  nlohmann::json rebuilt;
  rebuild.summary = &rebuilt;
  MOSAIC_RETURN_IF_ERROR(RunRebuild(ctx, rebuild));
  (*report)["rebuild"] = rebuilt;
  if (!ctx.json) {
    std::printf("model v%llu: %d epochs in %.1f s (BPR + TransR on the plays and the knowledge graph), final BPR loss %.3f\n",
                rebuilt["version"].get<unsigned long long>(), rebuilt["epochs"].get<int>(), rebuilt["seconds"].get<double>(),
                rebuilt["final_loss"].is_null() ? 0.0 : rebuilt["final_loss"]["bpr"].get<double>());
  }
  auto query = [&](const char* heading, const service::Query& q, const char* key) -> Status {
    Heading(ctx, heading);
    service::QueryResult result;
    MOSAIC_RETURN_IF_ERROR(QueryModel(ctx, q, &result));
    (*report)[key] = service::ToJson(result);
    if (!ctx.json) PrintQueryResult(result);
    return Status::OK();
  };
  service::Query ana;
  ana.user = "ana";
  ana.k = 5;
  ana.exclude_seen = true;
  ana.explain = true;
  MOSAIC_RETURN_IF_ERROR(
      query("recommend --user ana --exclude-seen --explain (what she has not played yet)", ana, "recommend"));

  // A new piece: ingested from a generated clip when ffmpeg is there, else imported as a catalogue row.
  Heading(ctx, "a brand-new piece nobody has played: \"Arabesque No. 1\" by Claude Debussy");
  std::unique_ptr<store::Store> store;
  MOSAIC_RETURN_IF_ERROR(OpenStore(ctx, /*create=*/false, /*read_only=*/false, &store));
  store::NodeId first_new = 0;
  MOSAIC_RETURN_IF_ERROR(store->NewReadView()->NodeIdLimit(&first_new));
  std::string item = "Arabesque No. 1";
  const std::string clip = (media / "arabesque.ogg").string();
  const std::string make = "ffmpeg -nostdin -v error -y -f lavfi -i sine=frequency=523:duration=4 -c:a libvorbis '" +
                           clip + "' 2>/dev/null";
  std::error_code ec;
  if (std::system("command -v ffmpeg >/dev/null 2>&1") == 0 && std::system(make.c_str()) == 0) {
    IngestArgs ingest;
    ingest.paths = {clip};
    ingest.meta_file = (media / "arabesque-meta.jsonl").string();
    MOSAIC_RETURN_IF_ERROR(WriteFile(ingest.meta_file, kNewPieceMeta));
    std::shared_ptr<const encoders::TextModel> encoder;
    std::unique_ptr<graph::TextFeatureHook> text;
    MOSAIC_RETURN_IF_ERROR(LoadTextHook(ctx, &encoder, &text));
    nlohmann::json ingested;
    MOSAIC_RETURN_IF_ERROR(IngestInto(ctx, store.get(), ingest, text.get(), &ingested));
    if (!ctx.json) PrintIngest(ingested);
    if (ingested["ingested"].get<size_t>() != 1) return Status::IOError("the demo could not ingest " + clip);
  } else {
    const std::string file = (media / "arabesque.jsonl").string();
    MOSAIC_RETURN_IF_ERROR(WriteFile(file, kNewPieceCatalogue));
    std::shared_ptr<const encoders::TextModel> encoder;
    std::unique_ptr<graph::TextFeatureHook> text;
    MOSAIC_RETURN_IF_ERROR(LoadTextHook(ctx, &encoder, &text));
    graph::ImportRequest request;
    request.format = graph::ImportFormat::kCatalogueJsonl;
    request.files = {file};
    request.text_features = text.get();
    nlohmann::json imported;
    MOSAIC_RETURN_IF_ERROR(ImportInto(ctx, store.get(), request, &imported));
    if (!ctx.json) std::printf("imported it as a catalogue row (no ffmpeg to make a clip)\n");
  }
  PluginPlacer placer;
  service::PlaceReport placed;
  MOSAIC_RETURN_IF_ERROR(service::PlaceCreatedItems(store.get(), first_new, &placer, &placed));
  AddPlacement(placed, report);
  if (!ctx.json) {
    std::printf("placed %zu new item with model v%llu: its representation comes from its content and its\n"
                "knowledge-graph neighbours (Claude Debussy, Classical, Impressionism), with no retraining\n",
                placed.placed, static_cast<unsigned long long>(placed.model_version));
  }
  store.reset();

  service::Query audience;
  audience.kind = service::QueryKind::kAudience;
  audience.item = item;
  audience.k = 3;
  audience.explain = true;
  MOSAIC_RETURN_IF_ERROR(
      query("audience --item \"Arabesque No. 1\" --explain (who should hear it first)", audience, "audience"));
  service::Query fresh = ana;
  fresh.new_only = true;
  fresh.exclude_seen = false;
  fresh.k = 3;
  return query("recommend --user ana --new-only --explain (where it ranks among items nobody has played)", fresh,
               "recommend_new");
}

const char* const kServedFilm =
    R"({"id": "faust-1926", "kind": "video", "title": "Faust", "description": "Mephisto wagers with an archangel that he can corrupt the scholar Faust.", "year": 1926, "genre": ["Silent film", "German Expressionism"], "director": "F. W. Murnau", "studio": "UFA", "tags": ["silent", "expressionist", "black-and-white"]})";

// The serving part of the tour: `mosaic serve` as a child process on a free port, a new film POSTed to
// it, and that film among the new items recommended to a silent-film fan when the POST returns.
Status ServeTour(const Context& ctx, nlohmann::json* report) {
  Heading(ctx, "serve it over HTTP (mosaic serve): POST a new film, then ask for new items");
  int out[2];
  if (::pipe(out) != 0) return Status::IOError("cannot make a pipe for the server");
  std::vector<std::string> args = {"/proc/self/exe", "--store", ctx.store_dir, "--json"};
  if (ctx.no_text) args.push_back("--no-text");
  if (!ctx.model_dir.empty()) {
    args.push_back("--model");
    args.push_back(ctx.model_dir);
  }
  for (const char* a : {"serve", "--port", "0"}) args.push_back(a);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
  posix_spawn_file_actions_addclose(&actions, out[0]);
  pid_t pid = 0;
  const int spawned = posix_spawn(&pid, "/proc/self/exe", &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(out[1]);
  if (spawned != 0) {
    ::close(out[0]);
    return Status::IOError("cannot start `mosaic serve`: " + std::string(std::strerror(spawned)));
  }
  // Its first line says where it listens.
  std::string line;
  char c = 0;
  while (::read(out[0], &c, 1) == 1 && c != '\n') line += c;
  ::close(out[0]);
  auto stop = [pid] {
    ::kill(pid, SIGTERM);
    int status = 0;
    ::waitpid(pid, &status, 0);
  };
  const nlohmann::json listening = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (!listening.is_object() || !listening.contains("port")) {
    stop();
    return Status::IOError("`mosaic serve` did not start (it printed '" + line + "')");
  }
  httplib::Client client("127.0.0.1", listening["port"].get<int>());
  client.set_tcp_nodelay(true);  // else the POST's body waits for a delayed ACK of its headers
  auto timed = [](auto&& call, double* ms) {
    const auto start = std::chrono::steady_clock::now();
    auto result = call();
    *ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    return result;
  };
  double post_ms = 0, get_ms = 0;
  auto posted = timed([&] { return client.Post("/items", kServedFilm, "application/json"); }, &post_ms);
  auto got = timed([&] { return client.Get("/recommend?user=chloe&new_only=1&k=3"); }, &get_ms);
  stop();
  if (!posted || posted->status != 201 || !got || got->status != 200) {
    return Status::IOError("the demo's requests to `mosaic serve` failed" +
                           std::string(posted ? ": POST /items said " + posted->body : ""));
  }
  const nlohmann::json item = nlohmann::json::parse(posted->body), recs = nlohmann::json::parse(got->body);
  (*report)["serve"] = {{"post_items", item}, {"post_ms", post_ms}, {"recommend_new", recs}, {"get_ms", get_ms}};
  if (!ctx.json) {
    std::printf("%s\nPOST /items  Faust (1926), F. W. Murnau  -> %d in %.0f ms (stored, linked, placed by model v%llu)\n",
                listening["listening"].get<std::string>().c_str(), posted->status, post_ms,
                item["model_version"].get<unsigned long long>());
    std::printf("GET /recommend?user=chloe&new_only=1&k=3  -> %d in %.0f ms:\n", got->status, get_ms);
    for (const auto& r : recs["results"]) {
      std::printf("  %d. %s%s\n", r["rank"].get<int>(), r.value("label", r.value("key", "?")).c_str(),
                  r["key"] == "faust-1926" ? "  <- posted a moment ago" : "");
    }
  }
  return Status::OK();
}

// The demo's data files, written from the catalogue embedded in the binary.
Status WriteDemoData(const fs::path& data) {
  std::error_code ec;
  fs::create_directories(data, ec);
  if (ec) return Status::IOError("cannot create '" + data.string() + "': " + ec.message());
  MOSAIC_RETURN_IF_ERROR(WriteFile(data / "catalogue.jsonl", demo_data::kCatalogue));
  MOSAIC_RETURN_IF_ERROR(WriteFile(data / "kg.tsv", demo_data::kKnowledgeGraph));
  return WriteFile(data / "interactions.tsv", demo_data::kInteractions);
}

Status ImportTour(const Context& ctx, store::Store* store, const fs::path& data, const graph::TextFeatureHook* text,
                  nlohmann::json* report) {
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
    request.text_features = text;
    nlohmann::json result;
    MOSAIC_RETURN_IF_ERROR(ImportInto(ctx, store, request, &result));
    if (!ctx.json) {
      std::printf("  %-18s %4d rows  %s", step.file, result["rows"].get<int>(), step.what);
      if (result["text_features"].get<int>() > 0) std::printf(", %d texts encoded", result["text_features"].get<int>());
      std::printf("\n");
    }
    imports.push_back(result);
  }
  (*report)["imports"] = imports;
  return Status::OK();
}

// Real media: clips generated here, then music and sounds from Debian packages. *first receives the
// first file ingested (empty when none).
Status IngestTour(const Context& ctx, store::Store* store, const fs::path& dir, const graph::TextFeatureHook* text,
                  nlohmann::json* report, std::string* first) {
  Heading(ctx, "ingest media (FFmpeg decoding, OpenCV frame features, audio features)");
  const fs::path media = dir / "media";
  std::error_code ec;
  fs::create_directories(media, ec);
  std::string note;
  IngestArgs ingest;
  ingest.paths = MakeClips(media, &note);
  for (const char* name : {"title.ogg", "inter.ogg", "track1.ogg", "track2.ogg", "track3.ogg"}) {
    if (fs::exists(fs::path(kDebianMusic) / name, ec)) ingest.paths.push_back((fs::path(kDebianMusic) / name).string());
  }
  for (const char* name : {"bell.oga", "complete.oga", "alarm-clock-elapsed.oga"}) {
    if (fs::exists(fs::path(kDebianSounds) / name, ec)) ingest.paths.push_back((fs::path(kDebianSounds) / name).string());
  }
  if (ingest.paths.size() < 6 && note.empty()) {
    note = "neverball-common or sound-theme-freedesktop is not installed (scripts/setup installs them)";
  }
  if (!note.empty() && !ctx.json) std::printf("  note: %s\n", note.c_str());
  first->clear();
  if (ingest.paths.empty()) return Status::OK();
  ingest.meta_file = (dir / "data" / "media-meta.jsonl").string();
  MOSAIC_RETURN_IF_ERROR(WriteFile(ingest.meta_file, kMediaMeta));
  nlohmann::json ingested;
  MOSAIC_RETURN_IF_ERROR(IngestInto(ctx, store, ingest, text, &ingested));
  (*report)["ingest"] = ingested;
  if (!ctx.json) PrintIngest(ingested);
  if (ingested["failed"].get<size_t>() > 0) return Status::IOError("the demo could not ingest every media file");
  *first = ingest.paths.front();
  return Status::OK();
}

// What the store holds now: an ingested item and its neighbourhood, text similarity, counts, two
// neighbourhoods of the catalogue, the consistency check.
Status StoreTour(const Context& ctx, const store::ReadView& view, const std::string& first,
                 const encoders::TextModel* encoder, nlohmann::json* report) {
  if (!first.empty()) {
    Heading(ctx, "a freshly ingested item: " + fs::path(first).filename().string());
    nlohmann::json shown;
    MOSAIC_RETURN_IF_ERROR(CollectShow(view, first, &shown));
    for (auto& [modality, f] : shown["features"].items()) f.erase("values");  // long; the summary says enough
    (*report)["show"] = shown;
    if (!ctx.json) {
      PrintShow(shown);
      NeighborsArgs args;
      args.item = first;
      args.hops = 2;
      args.limit = 6;
      nlohmann::json neighbors;
      MOSAIC_RETURN_IF_ERROR(CollectNeighbors(view, args, &neighbors));
      std::printf("its knowledge-graph neighbourhood, no plays needed:\n");
      PrintNeighbors(neighbors);
    }
  }
  if (encoder) {
    // Content alone already finds related items, before any play or graph walk.
    const std::string query = "calm piano music for the night";
    Heading(ctx, "the text model: items whose words are most like \"" + query + "\"");
    nlohmann::json similar;
    MOSAIC_RETURN_IF_ERROR(CollectSimilarText(view, *encoder, query, 5, &similar));
    (*report)["similar_text"] = similar;
    if (!ctx.json) PrintSimilarText(similar);
  }
  Heading(ctx, "stats");
  nlohmann::json stats;
  MOSAIC_RETURN_IF_ERROR(CollectStats(view, &stats));
  (*report)["stats"] = stats;
  if (!ctx.json) PrintStats(stats);
  for (const char* item : {"clair-de-lune", "nosferatu"}) {
    NeighborsArgs args;
    args.item = item;
    args.hops = 2;
    args.limit = 8;
    Heading(ctx, std::string("knowledge-graph neighbourhood of '") + item + "' (2 hops)");
    nlohmann::json neighbors;
    MOSAIC_RETURN_IF_ERROR(CollectNeighbors(view, args, &neighbors));
    (*report)["neighbors"][item] = neighbors;
    if (!ctx.json) PrintNeighbors(neighbors);
  }
  Heading(ctx, "consistency");
  MOSAIC_RETURN_IF_ERROR(view.CheckConsistency());
  (*report)["consistent"] = true;
  if (!ctx.json) std::printf("every edge has its reverse, every node its dictionary entry, counters match\n");
  return Status::OK();
}

}  // namespace

Status RunDemo(const Context& base_ctx, const DemoArgs& args) {
  fs::path dir;
  MOSAIC_RETURN_IF_ERROR(MakeDemoFolder(args.dir, &dir));
  MOSAIC_RETURN_IF_ERROR(WriteDemoData(dir / "data"));
  Context ctx = base_ctx;
  ctx.store_dir = (dir / "store").string();
  nlohmann::json report = {{"dir", dir.string()}, {"store", ctx.store_dir}};
  if (!ctx.json) {
    std::printf("Mosaic demo: a small music and video catalogue with its knowledge graph and 8 listeners,\n"
                "then real media analysed and added as new items.\n");
    std::printf("store: %s\n", ctx.store_dir.c_str());
  }
  // The text model turns every title, tag list and description into a 512-d embedding.
  std::shared_ptr<const encoders::TextModel> encoder;
  std::unique_ptr<graph::TextFeatureHook> text;
  MOSAIC_RETURN_IF_ERROR(LoadTextHook(ctx, &encoder, &text));
  {
    std::unique_ptr<store::Store> store;
    MOSAIC_RETURN_IF_ERROR(OpenStore(ctx, /*create=*/true, /*read_only=*/false, &store));
    MOSAIC_RETURN_IF_ERROR(ImportTour(ctx, store.get(), dir / "data", text.get(), &report));
    std::string first;
    MOSAIC_RETURN_IF_ERROR(IngestTour(ctx, store.get(), dir, text.get(), &report, &first));
    MOSAIC_RETURN_IF_ERROR(StoreTour(ctx, *store->NewReadView(), first, encoder.get(), &report));
  }  // the rebuild opens the store itself
  MOSAIC_RETURN_IF_ERROR(ModelTour(ctx, dir / "media", &report));
  MOSAIC_RETURN_IF_ERROR(ServeTour(ctx, &report));
  report["dashboard"] = "http://127.0.0.1:8080/";  // where `mosaic serve` (default port) puts it
  if (ctx.json) {
    std::printf("%s\n", report.dump().c_str());
  } else {
    const char* s = ctx.store_dir.c_str();
    std::printf("\nExplore it yourself:\n  mosaic --store %s stats\n  mosaic --store %s neighbors \"Sintel\" --hops 2\n"
                "  mosaic --store %s show \"Game of Life\"\n  mosaic --store %s recommend --user ben --explain\n"
                "  mosaic --store %s similar --item \"Arabesque No. 1\" --explain\n"
                "  mosaic --store %s serve    # then: curl 'localhost:8080/recommend?user=ana&new_only=1'\n"
                "\nThe dashboard (catalogue, items and their KG, users, model versions, health), while that serve runs:\n"
                "  dashboard: http://127.0.0.1:8080/\n",
                s, s, s, s, s, s);
  }
  return Status::OK();
}

}  // namespace mosaic::jobs
