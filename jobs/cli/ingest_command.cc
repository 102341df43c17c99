// mosaic ingest: media files become items, each in one atomic write with its metadata,
// knowledge-graph links and visual/audio feature vectors.
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>

#include "graph/catalogue.h"
#include "graph/import.h"
#include "graph/text.h"
#include "graph/text_features.h"
#include "jobs/cli/commands.h"
#include "jobs/cli/model_plugin.h"
#include "jobs/cli/progress.h"
#include "jobs/service/add_items.h"
#include "jobs/service/api_boundary.h"
#include "modalities/ffmpeg_log.h"
#include "modalities/media.h"
#include "modalities/registry.h"
#include "store/store.h"

namespace mosaic::jobs {

namespace fs = std::filesystem;
using store::NodeId;
using store::NodeKind;

namespace {

// Extensions a folder scan picks up (files named explicitly are always tried).
const std::set<std::string>& MediaExtensions() {
  static const std::set<std::string> exts = {
      ".webm", ".mp4", ".m4v", ".mkv", ".mov", ".avi", ".ogv", ".mpg", ".mpeg", ".ts", ".flv", ".wmv",
      ".ogg", ".oga", ".opus", ".mp3", ".flac", ".wav", ".m4a", ".aac", ".wma", ".aiff", ".aif",
      ".it", ".xm", ".mod", ".s3m", ".mptm"};
  return exts;
}

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  return s;
}

Status CollectFiles(const std::vector<std::string>& paths, std::vector<std::string>* files, size_t* skipped) {
  *skipped = 0;
  for (const auto& p : paths) {
    std::error_code ec;
    if (fs::is_directory(p, ec)) {
      std::vector<std::string> found;
      for (auto it = fs::recursive_directory_iterator(p, fs::directory_options::skip_permission_denied, ec);
           !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
        if (!it->is_regular_file(ec)) continue;
        if (MediaExtensions().count(Lower(it->path().extension().string()))) {
          found.push_back(it->path().string());
        } else {
          ++*skipped;
        }
      }
      if (ec) return Status::IOError("cannot list '" + p + "': " + ec.message());
      std::sort(found.begin(), found.end());
      files->insert(files->end(), found.begin(), found.end());
    } else {
      files->push_back(p);  // missing or unreadable files are reported per file
    }
  }
  return Status::OK();
}

// Per-file metadata from --meta, found by path as given, absolute path or file name.
class MetaIndex {
 public:
  Status Load(const std::string& file) {
    std::ifstream in(file);
    if (!in) return Status::NotFound("cannot open --meta file '" + file + "'");
    std::string line;
    for (size_t n = 1; std::getline(in, line); ++n) {
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      const std::string where = file + ":" + std::to_string(n) + ": ";
      if (graph::FindInvalidUtf8(line) != std::string::npos) return Status::InvalidArgument(where + "invalid UTF-8");
      nlohmann::json j;
      try {
        j = nlohmann::json::parse(line);
      } catch (const nlohmann::json::exception& e) {  // parse_error, or out_of_range for a number like 1e400
        return Status::InvalidArgument(where + "invalid JSON: " + e.what());
      }
      graph::CatalogueItem item;
      Status s = graph::ParseCatalogueObject(j, "path", &item);
      if (!s.ok()) return Status::InvalidArgument(where + s.message());
      const std::string path = item.id;
      for (const std::string& key : {path, Absolute(path), fs::path(path).filename().string()}) by_key_[key] = item;
    }
    return Status::OK();
  }

  const graph::CatalogueItem* Find(const std::string& path) const {
    for (const std::string& key : {path, Absolute(path), fs::path(path).filename().string()}) {
      auto it = by_key_.find(key);
      if (it != by_key_.end()) return &it->second;
    }
    return nullptr;
  }

 private:
  static std::string Absolute(const std::string& p) {
    std::error_code ec;
    auto a = fs::weakly_canonical(fs::absolute(p), ec);
    return ec ? p : a.string();
  }
  std::map<std::string, graph::CatalogueItem> by_key_;
};

// The catalogue item of an analysed file: container tags, overridden by --meta.
graph::CatalogueItem DescribeMedia(const std::string& path, const std::string& key, const modalities::MediaAnalysis& a,
                                   const graph::CatalogueItem* meta) {
  graph::CatalogueItem item;
  item.id = key;
  const auto& info = a.info;
  auto tag = [&](const char* name) -> std::string {
    auto it = info.tags.find(name);
    // Tags are text from the file: ill-formed UTF-8 is replaced, control characters escaped.
    return it == info.tags.end() ? "" : graph::EscapeControl(graph::CollapseSpaces(it->second));
  };
  nlohmann::json& attr = item.attributes;
  std::string title = tag("title");
  // A file name is bytes, not always UTF-8: its lossless display form (\xNN for the other bytes).
  if (title.empty()) title = graph::DisplayBytes(fs::path(path).stem().string());
  attr["title"] = title;
  attr["kind"] = info.has_video ? "video" : "music";
  if (!tag("comment").empty()) attr["description"] = tag("comment");
  if (!tag("date").empty()) attr["date"] = tag("date");
  attr["file"] = graph::DisplayBytes(fs::path(path).filename().string());
  attr["path"] = graph::DisplayBytes(fs::absolute(path).string());
  attr["duration_s"] = info.duration_s;
  attr["container"] = info.container;
  attr["size_bytes"] = info.size_bytes;
  if (info.has_video) {
    attr["video"] = {{"codec", info.video_codec}, {"width", info.width}, {"height", info.height},
                     {"fps", info.fps}, {"rotation", info.rotation}};
  }
  if (info.has_audio) {
    attr["audio"] = {{"codec", info.audio_codec}, {"sample_rate", info.sample_rate}, {"channels", info.channels}};
  }
  nlohmann::json analysis = nlohmann::json::object();
  if (a.visual) {
    analysis["visual"] = {{"samples", a.visual->samples}, {"cuts", a.visual->cuts},
                          {"cut_rate_per_min", a.visual->cut_rate_per_min}, {"brightness", a.visual->brightness},
                          {"colourfulness", a.visual->colourfulness}, {"motion", a.visual->motion},
                          {"keyframes_decoded", a.keyframes_decoded},
                          {"frames_decoded_for_gaps", a.frames_decoded_for_gaps}};
  }
  if (a.audio) {
    analysis["audio"] = {{"tempo_bpm", a.audio->tempo_bpm}, {"tempo_confidence", a.audio->tempo_confidence},
                         {"onset_rate", a.audio->onset_rate}, {"rms_db", a.audio->rms_db},
                         {"silence_ratio", a.audio->silence_ratio},
                         {"spectral_centroid_hz", a.audio->spectral_centroid_hz}};
  }
  attr["analysis"] = analysis;

  // KG links from the container's tags, each replaced by --meta's field when given.
  std::map<std::string, std::vector<std::string>> links;
  for (const char* field : {"artist", "album", "genre"}) {
    if (!tag(field).empty()) links[field] = {tag(field)};
  }
  if (meta) {
    // --meta wins: its attributes replace the container's, its links replace those of the same relation.
    for (auto& [k, v] : meta->attributes.items()) attr[k] = v;
    std::map<std::string, std::vector<std::string>> meta_links;
    for (const auto& [relation, value] : meta->links) meta_links[relation].push_back(value);
    for (auto& [relation, values] : meta_links) links[relation] = values;
  }
  for (const auto& [relation, values] : links) {
    for (const auto& value : values) {
      std::string clean = graph::CollapseSpaces(value);
      if (!clean.empty()) item.links.emplace_back(relation, clean);
    }
  }
  item.label = graph::CollapseSpaces(attr["title"].get<std::string>());
  return item;
}

struct FileResult {
  std::string path;
  std::string status;  // "ingested", "present" or "failed"
  std::string key;     // item key
  std::string title;
  std::string error;
  nlohmann::json summary;
  uint64_t bytes = 0;
};

// What every file of one ingest shares.
struct IngestJob {
  store::Store* store = nullptr;
  const graph::TextFeatureHook* text = nullptr;  // null: no text embeddings
  const MetaIndex* meta = nullptr;
  modalities::AnalyzeOptions options;
};

// The item of an analysed file: its catalogue entry and its content features, tagged with the
// registry's extractor versions.
service::NewItem MediaItem(const std::string& path, const std::string& key, const modalities::MediaAnalysis& a,
                           const graph::CatalogueItem* meta) {
  service::NewItem item;
  item.item = DescribeMedia(path, key, a, meta);
  if (a.visual) {
    const modalities::ModalityInfo& m = modalities::kVisualModality;
    item.features.emplace_back(m.name, store::FeatureVector{m.extractor, m.version, a.visual->vector, key});
  }
  if (a.audio) {
    const modalities::ModalityInfo& m = modalities::kAudioModality;
    item.features.emplace_back(m.name, store::FeatureVector{m.extractor, m.version, a.audio->vector, key});
  }
  return item;
}

// What kind of file a stat mode is, for a refusal's message.
const char* FileTypeName(mode_t mode) {
  if (S_ISDIR(mode)) return "a folder";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a plain file";
}

// Analyses `path` and writes it as one item (unless its content is stored already), filling *r. A
// returned error is this file's failure (its message says why; the report line names the file).
Status IngestFile(const IngestJob& job, const std::string& path, FileResult* r) {
  // Only regular files are read (after symlinks are followed): a device (/dev/zero, /dev/urandom)
  // or a FIFO would be read forever, with the store's write lock held. Checked before opening, since
  // opening a FIFO alone blocks.
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    const int err = errno;
    return err == ENOENT ? Status::NotFound("no such file") : Status::IOError(std::strerror(err));
  }
  if (!S_ISREG(st.st_mode)) return Status::InvalidArgument(std::string("not a regular file (") + FileTypeName(st.st_mode) + ")");
  r->bytes = uint64_t(st.st_size);
  std::string hash;
  MOSAIC_RETURN_IF_ERROR(modalities::ContentHash(path, &hash));
  r->key = "sha256:" + hash;
  NodeId existing;
  if (job.store->NewReadView()->FindNode(NodeKind::kItem, r->key, &existing).ok()) {
    r->status = "present";
    return Status::OK();
  }
  modalities::MediaAnalysis analysis;
  MOSAIC_RETURN_IF_ERROR(modalities::AnalyzeMedia(path, job.options, &analysis));
  const service::NewItem item = MediaItem(path, r->key, analysis, job.meta->Find(path));
  r->title = item.item.label;
  r->summary = {{"kind", item.item.attributes["kind"]}, {"duration_s", analysis.info.duration_s},
                {"visual", bool(analysis.visual)}, {"audio", bool(analysis.audio)}};
  service::WrittenItem written;
  MOSAIC_RETURN_IF_ERROR(service::WriteItem(job.store, item, job.text, /*skip_existing=*/true, &written));
  r->status = written.created ? "ingested" : "present";  // present: an identical file earlier in this run
  return Status::OK();
}

// The JSON result of an ingest (see PrintIngest).
nlohmann::json IngestResult(const std::vector<FileResult>& results) {
  nlohmann::json list = nlohmann::json::array();
  size_t ingested = 0, present = 0, failed = 0;
  for (const auto& r : results) {
    // Paths are bytes (DisplayBytes: valid UTF-8, lossless); an error's message may quote them.
    nlohmann::json j = {{"path", graph::DisplayBytes(r.path)}, {"status", r.status}, {"bytes", r.bytes}};
    if (!r.key.empty()) j["item"] = r.key;
    if (!r.title.empty()) j["title"] = graph::EscapeControl(r.title);
    if (!r.error.empty()) j["error"] = graph::EscapeControl(r.error);
    if (!r.summary.is_null()) j["summary"] = r.summary;
    list.push_back(j);
    ingested += r.status == "ingested";
    present += r.status == "present";
    failed += r.status == "failed";
  }
  return {{"files", list}, {"ingested", ingested}, {"present", present}, {"failed", failed}};
}

}  // namespace

Status IngestInto(const Context& ctx, store::Store* store, const IngestArgs& args, const graph::TextFeatureHook* text,
                  nlohmann::json* result) {
  MetaIndex meta;
  if (!args.meta_file.empty()) MOSAIC_RETURN_IF_ERROR(meta.Load(args.meta_file));
  std::vector<std::string> files;
  size_t skipped = 0;
  MOSAIC_RETURN_IF_ERROR(CollectFiles(args.paths, &files, &skipped));
  if (files.empty()) return Status::InvalidArgument("no media files found in the given paths");

  modalities::SetFfmpegLogSink(args.verbose ? [](const std::string& m) { std::fprintf(stderr, "ffmpeg: %s\n", m.c_str()); }
                                            : std::function<void(const std::string&)>());
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  const unsigned jobs = std::min<size_t>(args.jobs > 0 ? unsigned(args.jobs) : cores, files.size());
  IngestJob job;
  job.store = store;
  job.text = text;
  job.meta = &meta;
  job.options.decoder_threads = int(std::max(1u, cores / jobs));  // one file alone gets every core

  uint64_t total_bytes = 0;
  for (const auto& f : files) {
    std::error_code ec;
    if (!fs::is_regular_file(f, ec)) continue;  // reported per file
    auto size = fs::file_size(f, ec);
    if (!ec) total_bytes += size;
  }
  std::vector<FileResult> results(files.size());
  std::atomic<size_t> next{0};
  std::atomic<uint64_t> bytes_done{0};
  std::atomic<size_t> files_done{0};
  std::mutex progress_mutex;
  Progress progress(ctx.progress, "ingest");
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> workers;
  for (unsigned w = 0; w < jobs; ++w) {
    workers.emplace_back([&] {
      for (size_t i; (i = next.fetch_add(1)) < files.size();) {
        FileResult& r = results[i];
        r.path = files[i];
        Status s;
        try {  // a worker thread's boundary: nothing may escape it
          s = IngestFile(job, files[i], &r);
        } catch (...) {
          s = service::CurrentExceptionStatus();
        }
        if (!s.ok()) {
          r.status = "failed";
          r.error = s.ToString();
        }
        bytes_done += r.bytes;
        const size_t done = ++files_done;
        std::lock_guard<std::mutex> lock(progress_mutex);
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        char detail[96];
        std::snprintf(detail, sizeof detail, "%zu/%zu files  %.1f MB/s", done, files.size(),
                      seconds > 0 ? bytes_done / 1e6 / seconds : 0.0);
        progress.Update(double(bytes_done), double(total_bytes), detail);
      }
    });
  }
  for (auto& t : workers) t.join();
  progress.Finish();
  *result = IngestResult(results);
  (*result)["skipped_non_media"] = skipped;
  (*result)["bytes"] = total_bytes;
  (*result)["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  (*result)["jobs"] = jobs;
  return Status::OK();
}

void PrintIngest(const nlohmann::json& r) {
  for (const auto& f : r["files"]) {
    const std::string status = f["status"];
    const std::string path = f["path"];
    if (status == "failed") {
      std::printf("failed    %s: %s\n", path.c_str(), f["error"].get<std::string>().c_str());
    } else if (status == "present") {
      std::printf("present   %s  (item %s)\n", path.c_str(), ShortKey(f["item"]).c_str());
    } else {
      const auto& s = f["summary"];
      std::printf("ingested  %s  -> \"%s\" (%s, %.1f s%s%s, item %s)\n", path.c_str(), f.value("title", "").c_str(),
                  s["kind"].get<std::string>().c_str(), s["duration_s"].get<double>(),
                  s["visual"].get<bool>() ? ", visual" : "", s["audio"].get<bool>() ? ", audio" : "",
                  ShortKey(f["item"]).c_str());
    }
  }
  const double seconds = r["seconds"];
  std::printf("%zu ingested, %zu already present, %zu failed", r["ingested"].get<size_t>(), r["present"].get<size_t>(),
              r["failed"].get<size_t>());
  if (r["skipped_non_media"].get<size_t>() > 0) std::printf(", %zu non-media files skipped", r["skipped_non_media"].get<size_t>());
  std::printf(" (%.1f MB in %.2f s, %.1f MB/s, %d jobs)\n", r["bytes"].get<double>() / 1e6, seconds,
              seconds > 0 ? r["bytes"].get<double>() / 1e6 / seconds : 0.0, r["jobs"].get<int>());
}

Status RunIngest(const Context& ctx, const IngestArgs& args) {
  std::error_code ec;
  const bool existed = fs::exists(fs::path(ctx.store_dir) / "CURRENT", ec);
  std::shared_ptr<const encoders::TextModel> encoder;
  std::unique_ptr<graph::TextFeatureHook> text;
  MOSAIC_RETURN_IF_ERROR(LoadTextHook(ctx, &encoder, &text));
  std::unique_ptr<store::Store> store;
  MOSAIC_RETURN_IF_ERROR(OpenStore(ctx, /*create=*/true, /*read_only=*/false, &store));
  store::NodeId first_new = 0;
  MOSAIC_RETURN_IF_ERROR(store->NewReadView()->NodeIdLimit(&first_new));
  nlohmann::json result;
  Status s = IngestInto(ctx, store.get(), args, text.get(), &result);
  if (!existed && (!s.ok() || result["ingested"].get<size_t>() == 0)) {
    // A store this command created and left empty is not worth keeping.
    store.reset();
    fs::remove_all(ctx.store_dir, ec);
  }
  MOSAIC_RETURN_IF_ERROR(s);
  // The ingested items become recommendable now, from the current model (when there is one).
  PluginPlacer placer;
  service::PlaceReport placed;
  if (result["ingested"].get<size_t>() > 0) {
    MOSAIC_RETURN_IF_ERROR(service::PlaceCreatedItems(store.get(), first_new, &placer, &placed));
  }
  AddPlacement(placed, &result);
  if (ctx.json) {
    std::printf("%s\n", result.dump().c_str());
  } else {
    PrintIngest(result);
    PrintPlacement(placed);
  }
  const size_t failed = result["failed"];
  if (failed > 0) {
    return Status::InvalidArgument(std::to_string(failed) + " of " + std::to_string(result["files"].size()) +
                                   " files could not be ingested (nothing of them was written)");
  }
  return Status::OK();
}

}  // namespace mosaic::jobs
