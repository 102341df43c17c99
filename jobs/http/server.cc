// mosaic serve: the HTTP/JSON API (docs/serving.md) over the current model version.
//
// Reading: queries run on a ServingModel in memory and on a RocksDB follower (secondary instance)
// of the store for names and edges. A maintenance thread catches the follower up every
// kFollowInterval; when it sees writes that were not the server's own (a rebuild's new version, an
// ingest by another process), it loads a fresh ServingModel and swaps it in: requests in flight
// finish on the one they started with.
//
// Writing: POST /items and /interactions take the store's write lock through a lease (a primary
// instance opened on demand, given back after kLeaseIdle without writes or when another command
// waits for the lock), so that `mosaic ingest`, `import` and `rebuild` can write beside a running
// server. While the lease is held, reads go through the primary (nobody else can write then). One
// write at a time; each is one batch (the item, then its placement), committed before the response.
#include <dlfcn.h>
#include <signal.h>

#include <httplib.h>
#include <torch/torch.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <map>
#include <shared_mutex>
#include <thread>

#include "graph/catalogue.h"
#include "graph/import.h"
#include "graph/text_features.h"
#include "jobs/model_jobs.h"
#include "jobs/serving.h"

namespace mosaic::jobs {

using store::NodeId;
using store::NodeKind;
using Clock = std::chrono::steady_clock;

namespace {

constexpr auto kFollowInterval = std::chrono::milliseconds(250);
constexpr auto kLeaseIdle = std::chrono::milliseconds(1000);
constexpr auto kLeaseWait = std::chrono::seconds(10);  // longest wait for another writer
constexpr size_t kMaxInteractionsPerPost = 10000;

std::atomic<bool> g_stop_requested{false};
void OnStopSignal(int) { g_stop_requested = true; }

// A shared mutex that lets a waiting writer in before readers that came after it (a catch-up must
// not starve under a steady stream of queries). Lock order: turnstile, then rw.
class FairSharedMutex {
 public:
  std::shared_lock<std::shared_mutex> Read() {
    std::lock_guard<std::mutex> t(turnstile_);
    return std::shared_lock<std::shared_mutex>(rw_);
  }
  std::unique_lock<std::shared_mutex> Write() {
    std::lock_guard<std::mutex> t(turnstile_);
    return std::unique_lock<std::shared_mutex>(rw_);
  }

 private:
  std::mutex turnstile_;
  std::shared_mutex rw_;
};

// Request counts and latency histograms per endpoint, in Prometheus text format.
class Metrics {
 public:
  static constexpr std::array<double, 13> kBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                      0.1,    0.25,  0.5,    1,     2.5,  5};
  void Record(const std::string& endpoint, int code, double seconds) {
    std::lock_guard<std::mutex> lock(mu_);
    Series& s = series_[endpoint];
    s.codes[code]++;
    for (size_t b = 0; b < kBuckets.size(); ++b) {
      if (seconds <= kBuckets[b]) s.buckets[b]++;
    }
    s.count++;
    s.sum += seconds;
  }
  std::string Text(uint64_t version, int64_t items, int64_t placed) const {
    std::lock_guard<std::mutex> lock(mu_);
    std::string out;
    out += "# HELP mosaic_requests_total HTTP requests by endpoint and status code.\n";
    out += "# TYPE mosaic_requests_total counter\n";
    for (const auto& [endpoint, s] : series_) {
      for (const auto& [code, n] : s.codes) {
        out += "mosaic_requests_total{endpoint=\"" + endpoint + "\",code=\"" + std::to_string(code) + "\"} " +
               std::to_string(n) + "\n";
      }
    }
    out += "# HELP mosaic_request_duration_seconds Time to answer a request, by endpoint.\n";
    out += "# TYPE mosaic_request_duration_seconds histogram\n";
    char number[64];
    for (const auto& [endpoint, s] : series_) {
      const std::string label = "endpoint=\"" + endpoint + "\"";
      for (size_t b = 0; b < kBuckets.size(); ++b) {
        std::snprintf(number, sizeof number, "%g", kBuckets[b]);
        out += "mosaic_request_duration_seconds_bucket{" + label + ",le=\"" + number + "\"} " +
               std::to_string(s.buckets[b]) + "\n";
      }
      out += "mosaic_request_duration_seconds_bucket{" + label + ",le=\"+Inf\"} " + std::to_string(s.count) + "\n";
      std::snprintf(number, sizeof number, "%.9g", s.sum);
      out += "mosaic_request_duration_seconds_sum{" + label + "} " + number + "\n";
      out += "mosaic_request_duration_seconds_count{" + label + "} " + std::to_string(s.count) + "\n";
    }
    out += "# HELP mosaic_model_version The model version queries use (0: none yet).\n";
    out += "# TYPE mosaic_model_version gauge\nmosaic_model_version " + std::to_string(version) + "\n";
    out += "# HELP mosaic_items Items queries can return.\n";
    out += "# TYPE mosaic_items gauge\nmosaic_items " + std::to_string(items) + "\n";
    out += "# HELP mosaic_placed_items Items placed after the current version was trained.\n";
    out += "# TYPE mosaic_placed_items gauge\nmosaic_placed_items " + std::to_string(placed) + "\n";
    return out;
  }

 private:
  struct Series {
    std::map<int, uint64_t> codes;
    std::array<uint64_t, kBuckets.size()> buckets{};
    uint64_t count = 0;
    double sum = 0;
  };
  mutable std::mutex mu_;
  std::map<std::string, Series> series_;
};

// The endpoint label of a path for the metrics: a known endpoint, else "other" (a client must not
// be able to add series).
std::string EndpointLabel(const std::string& path) {
  for (const char* known : {"/health", "/metrics", "/recommend", "/audience", "/similar", "/items", "/interactions"}) {
    if (path == known) return path;
  }
  return "other";
}

// An HTTP error: status, message and the parameter or field at fault.
struct HttpError {
  int status;
  std::string message;
  std::string field;
};

void SendJson(httplib::Response& res, int status, const nlohmann::json& body) {
  res.status = status;
  res.set_content(body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n", "application/json");
}

void SendError(httplib::Response& res, const HttpError& e) {
  nlohmann::json body = {{"error", e.message}};
  if (!e.field.empty()) body["field"] = e.field;
  SendJson(res, e.status, body);
}

// A Status from the store or the model as an HTTP error.
HttpError FromStatus(const Status& s, const std::string& field = "") {
  switch (s.code()) {
    case Status::Code::kInvalidArgument: return {400, s.message(), field};
    case Status::Code::kNotFound: return {404, s.message(), field};
    case Status::Code::kBusy: return {503, s.message(), ""};
    default: return {500, s.ToString(), ""};
  }
}

bool IsUtf8(const std::string& text) {
  try {
    (void)nlohmann::json(text).dump();  // dump() rejects ill-formed UTF-8
    return true;
  } catch (const nlohmann::json::exception&) {
    return false;
  }
}

// Query parameter `name`: absent -> fallback; present -> must be UTF-8.
std::string Param(const httplib::Request& req, const std::string& name, const std::string& fallback = "") {
  if (!req.has_param(name.c_str())) return fallback;
  std::string value = req.get_param_value(name.c_str());
  if (!IsUtf8(value)) throw HttpError{400, "parameter '" + name + "' is not UTF-8", name};
  return value;
}

bool FlagParam(const httplib::Request& req, const std::string& name) {
  const std::string v = Param(req, name, "0");
  if (v == "1" || v == "true" || v.empty()) return true;
  if (v == "0" || v == "false") return false;
  throw HttpError{400, "parameter '" + name + "' must be 0, 1, true or false, not '" + v + "'", name};
}

size_t KParam(const httplib::Request& req, size_t fallback) {
  const std::string v = Param(req, "k", std::to_string(fallback));
  size_t used = 0;
  long long k = 0;
  try {
    k = std::stoll(v, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != v.size()) throw HttpError{400, "parameter 'k' must be an integer, not '" + v + "'", "k"};
  if (k < 1 || k > static_cast<long long>(kMaxQueryK)) {
    throw HttpError{400, "parameter 'k' must be between 1 and " + std::to_string(kMaxQueryK) + ", not " + v, "k"};
  }
  return size_t(k);
}

// The request body as JSON (after the Content-Type and size checks).
nlohmann::json JsonBody(const httplib::Request& req, const std::string& body) {
  const std::string type = req.get_header_value("Content-Type");
  std::string media = type.substr(0, type.find(';'));
  media.erase(0, media.find_first_not_of(" \t"));
  media.erase(media.find_last_not_of(" \t") + 1);
  std::transform(media.begin(), media.end(), media.begin(), [](unsigned char c) { return std::tolower(c); });
  if (media != "application/json") {
    throw HttpError{415, "the body must be JSON, sent with Content-Type: application/json (got '" + type + "')", ""};
  }
  try {
    return nlohmann::json::parse(body);
  } catch (const nlohmann::json::parse_error& e) {
    throw HttpError{400, std::string("malformed JSON: ") + e.what(), ""};
  }
}

// The store's write lock, held while writes come and given back after kLeaseIdle without any (or
// as soon as another command waits for it). While it is held nobody else can write, so the primary
// also serves reads (real snapshots, our writes included at once); readers share it, and the last
// one closes it.
class WriteLease {
 public:
  explicit WriteLease(std::string dir) : dir_(std::move(dir)) {}

  // Runs `fn` with the primary store open for writing, opening it (waiting up to kLeaseWait for
  // another writer to finish) when needed. `reopened` tells whether it was opened for this call (so
  // others may have written since the lease was last held).
  Status With(const std::function<Status(store::Store*, bool reopened)>& fn) {
    std::lock_guard<std::mutex> lock(mu_);
    std::shared_ptr<store::Store> primary = Reader();
    bool reopened = false;
    if (!primary) {
      const auto deadline = Clock::now() + kLeaseWait;
      // A command waiting for the lock (it left a marker) goes first.
      while (store::Store::WriterWaiting(dir_) && Clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      std::unique_ptr<store::Store> opened;
      for (;;) {
        Status s = store::Store::Open(dir_, store::OpenOptions(), &opened);
        if (s.ok()) break;
        if (s.code() != Status::Code::kBusy) return s;
        if (Clock::now() > deadline) {
          return Status::Busy("the store stayed busy (another process writing) for " +
                              std::to_string(kLeaseWait.count()) + " s; try again");
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      primary = std::move(opened);
      reopened = true;
    }
    last_use_ = Clock::now();
    Status s = fn(primary.get(), reopened);
    last_use_ = Clock::now();
    if (reopened) {
      std::lock_guard<std::mutex> handle(handle_mu_);
      primary_ = primary;  // readers use it from now on: the caller has made the follower current
    }
    return s;
  }

  // The primary while the lease is held, else null.
  std::shared_ptr<store::Store> Reader() const {
    std::lock_guard<std::mutex> handle(handle_mu_);
    return primary_;
  }

  // Whether the lease should be given back: unused for kLeaseIdle, or another command waits for it.
  bool ShouldRelease() {
    std::lock_guard<std::mutex> lock(mu_);
    return Reader() && (Clock::now() - last_use_ > kLeaseIdle || store::Store::WriterWaiting(dir_));
  }

  // Gives the lock back (when the last reader lets go of the primary). The caller has caught the
  // follower up with everything written through it.
  void Release() {
    std::lock_guard<std::mutex> lock(mu_);
    std::lock_guard<std::mutex> handle(handle_mu_);
    primary_.reset();
  }

 private:
  const std::string dir_;
  std::mutex mu_;                          // one writer
  mutable std::mutex handle_mu_;           // guards primary_
  std::shared_ptr<store::Store> primary_;  // null when the lease is not held
  Clock::time_point last_use_;
};

class Server {
 public:
  Server(const Context& ctx, const ServeArgs& args) : ctx_(ctx), args_(args), lease_(ctx.store_dir) {}

  Status Run();

 private:
  std::shared_ptr<ServingModel> Model() const { return std::atomic_load(&model_); }
  // Catches the follower up; when it saw writes that are not ours, reloads the model. *current tells
  // whether the follower has all that was written (ours included). Caller holds write_mu_.
  Status Follow(bool* current = nullptr);
  Status Reload();
  void Maintain();

  // A handler of a request and its body (empty for GET).
  using Handler = std::function<void(const httplib::Request&, httplib::Response&, const std::string& body)>;
  void Route(const std::string& endpoint, Handler handler);
  void Health(const httplib::Request& req, httplib::Response& res);
  void ModelQuery(const std::string& query, const httplib::Request& req, httplib::Response& res);
  void PostItems(const httplib::Request& req, httplib::Response& res, const std::string& raw_body);
  void PostInteractions(const httplib::Request& req, httplib::Response& res, const std::string& raw_body);

  const Context ctx_;
  const ServeArgs args_;
  httplib::Server http_;
  Metrics metrics_;

  std::unique_ptr<store::Store> follower_;
  FairSharedMutex follower_mu_;              // shared: reading the follower; exclusive: CatchUp
  std::shared_ptr<ServingModel> model_;      // null before the first rebuild
  std::mutex write_mu_;                      // one writer (POST or reload) at a time
  WriteLease lease_;
  uint64_t followed_sequence_ = 0;           // follower sequence the model accounts for (under write_mu_)
  std::atomic<bool> stopping_{false};
};

Status Server::Reload() {
  std::unique_ptr<ServingModel> fresh;
  {
    auto read = follower_mu_.Read();
    auto view = follower_->NewReadView();
    uint64_t version = 0;
    bool found = false;
    MOSAIC_RETURN_IF_ERROR(CurrentModelVersion(*view, &version, &found));
    if (found) MOSAIC_RETURN_IF_ERROR(ServingModel::Load(*view, &fresh));
  }
  std::shared_ptr<ServingModel> next(std::move(fresh));
  std::atomic_store(&model_, next);
  return Status::OK();
}

Status Server::Follow(bool* current) {
  uint64_t sequence = 0;
  {
    auto write = follower_mu_.Write();
    MOSAIC_RETURN_IF_ERROR(follower_->CatchUp());
    sequence = follower_->LatestSequence();
  }
  if (current) *current = sequence >= followed_sequence_;
  // Sequence numbers only grow: a follower short of ours has not replayed all of our writes yet.
  if (sequence <= followed_sequence_) return Status::OK();
  MOSAIC_RETURN_IF_ERROR(Reload());
  followed_sequence_ = sequence;
  return Status::OK();
}

void Server::Maintain() {
  while (!stopping_) {
    std::this_thread::sleep_for(kFollowInterval);
    if (g_stop_requested) {
      http_.stop();
      continue;
    }
    std::lock_guard<std::mutex> lock(write_mu_);
    bool current = false;
    Status s = Follow(&current);
    if (!s.ok()) std::fprintf(stderr, "mosaic serve: following the store: %s\n", s.ToString().c_str());
    // The follower has all the primary wrote, and no write can come in between (write_mu_): reads
    // can move back to it.
    if (current && lease_.ShouldRelease()) lease_.Release();
  }
}

void Server::Route(const std::string& endpoint, Handler handler) {
  auto timed = [this, endpoint, handler](const httplib::Request& req, httplib::Response& res, const std::string& body) {
    const auto start = Clock::now();
    try {
      handler(req, res, body);
    } catch (const HttpError& e) {
      SendError(res, e);
    } catch (const std::exception& e) {
      SendError(res, {500, std::string("internal error: ") + e.what(), ""});
    }
    metrics_.Record(endpoint, res.status, std::chrono::duration<double>(Clock::now() - start).count());
  };
  const bool post = endpoint == "/items" || endpoint == "/interactions";
  if (post) {
    // The body is read here, not by httplib, which bounds only bodies with a Content-Length: a chunked
    // body over --max-body is read to its end (so the connection stays usable) but not kept.
    http_.Post(endpoint, [this, endpoint, timed](const httplib::Request& req, httplib::Response& res,
                                                 const httplib::ContentReader& read) {
      std::string body;
      bool over = false;
      const bool complete = read([&](const char* data, size_t size) {
        over = over || body.size() + size > args_.max_body;
        if (over) {
          body.clear();
        } else {
          body.append(data, size);
        }
        return true;
      });
      if (over || res.status == 413) {
        SendError(res, {413, "the body is larger than " + std::to_string(args_.max_body) + " bytes", ""});
        metrics_.Record(endpoint, 413, 0);
      } else if (!complete) {
        SendError(res, {400, "the body could not be read to its end", ""});
        metrics_.Record(endpoint, 400, 0);
      } else {
        timed(req, res, body);
      }
    });
  } else {
    http_.Get(endpoint, [timed](const httplib::Request& req, httplib::Response& res) { timed(req, res, ""); });
  }
  // The other methods on a known path: 405, saying which one it takes.
  auto wrong_method = [this, endpoint, post](const httplib::Request& req, httplib::Response& res) {
    res.set_header("Allow", post ? "POST" : "GET");
    SendError(res, {405, req.method + " is not allowed on " + endpoint + "; use " + (post ? "POST" : "GET"), ""});
    metrics_.Record(endpoint, 405, 0);
  };
  if (post) {
    http_.Get(endpoint, wrong_method);
  } else {
    http_.Post(endpoint, wrong_method);
  }
  http_.Put(endpoint, wrong_method);
  http_.Delete(endpoint, wrong_method);
  http_.Patch(endpoint, wrong_method);
}

void Server::Health(const httplib::Request&, httplib::Response& res) {
  auto model = Model();
  nlohmann::json body = {{"status", "ok"}, {"model_version", model ? model->version() : 0}};
  body["items"] = model ? model->num_items() : 0;
  body["users"] = model ? model->num_users() : 0;
  body["placed"] = model ? model->num_placed() : 0;
  SendJson(res, 200, body);
}

void Server::ModelQuery(const std::string& query, const httplib::Request& req, httplib::Response& res) {
  QueryArgs args;
  args.k = KParam(req, 20);
  args.explain = FlagParam(req, "explain");
  if (query == "recommend") {
    args.user = Param(req, "user");
    if (args.user.empty()) throw HttpError{400, "parameter 'user' is required", "user"};
    args.new_only = FlagParam(req, "new_only");
    args.exclude_seen = FlagParam(req, "exclude_seen");
  } else {
    args.item = Param(req, "item");
    if (args.item.empty()) throw HttpError{400, "parameter 'item' is required", "item"};
  }
  auto model = Model();
  if (!model) throw HttpError{503, "no model yet: run `mosaic rebuild`", ""};
  nlohmann::json result;
  Status s;
  if (std::shared_ptr<store::Store> primary = lease_.Reader()) {
    s = model->Query(*primary->NewReadView(), query, args, &result);
  } else {
    auto read = follower_mu_.Read();
    s = model->Query(*follower_->NewReadView(), query, args, &result);
  }
  if (!s.ok()) throw FromStatus(s, query == "recommend" ? "user" : "item");
  SendJson(res, 200, result);
}

void Server::PostItems(const httplib::Request& req, httplib::Response& res, const std::string& raw_body) {
  const nlohmann::json body = JsonBody(req, raw_body);
  if (!body.is_object()) throw HttpError{400, "the body must be one JSON object (a catalogue item)", ""};
  graph::CatalogueItem item;
  Status parsed = graph::ParseCatalogueObject(body, "id", &item);
  if (!parsed.ok()) {
    // Its messages start with "field 'NAME'".
    const std::string& m = parsed.message();
    const size_t open = m.rfind("field '", 0) == 0 ? 7 : std::string::npos;
    const size_t close = open == std::string::npos ? open : m.find('\'', open);
    throw HttpError{400, m, close == std::string::npos ? "" : m.substr(open, close - open)};
  }

  std::lock_guard<std::mutex> lock(write_mu_);
  NodeId id = 0;
  bool created = false, placed = false;
  std::shared_ptr<ServingModel> model;
  Status s = lease_.With([&](store::Store* primary, bool reopened) -> Status {
    // Others may have written before the lease was taken: their writes come in first.
    if (reopened) MOSAIC_RETURN_IF_ERROR(Follow());
    model = Model();
    std::unique_ptr<store::Batch> batch;
    MOSAIC_RETURN_IF_ERROR(primary->BeginBatch(&batch));
    NodeId existing = 0;
    Status found = batch->FindNode(NodeKind::kItem, item.id, &existing);
    if (!found.ok() && !found.IsNotFound()) return found;
    created = found.IsNotFound();
    MOSAIC_RETURN_IF_ERROR(graph::WriteCatalogueItem(batch.get(), item, &id));
    if (args_.text) {
      size_t encoded = 0;
      MOSAIC_RETURN_IF_ERROR(graph::UpdateTextFeatures(batch.get(), {id}, *args_.text, &encoded));
    }
    MOSAIC_RETURN_IF_ERROR(batch->Commit());
    if (model) {
      auto view = primary->NewReadView();
      std::vector<std::pair<NodeId, std::vector<float>>> reps;
      MOSAIC_RETURN_IF_ERROR(model->Place(*view, {id}, &reps));
      if (!reps.empty()) {
        MOSAIC_RETURN_IF_ERROR(primary->BeginBatch(&batch));
        MOSAIC_RETURN_IF_ERROR(PutPlacement(batch.get(), id, model->version(), std::move(reps[0].second), "placed"));
        MOSAIC_RETURN_IF_ERROR(batch->Commit());
      }
      placed = model->HasColumn(id);
    }
    // Our own writes, already in the model: the follower will see them, and must not take them for others'.
    followed_sequence_ = primary->LatestSequence();
    return Status::OK();
  });
  if (!s.ok()) throw FromStatus(s);
  nlohmann::json out = {{"item", {{"id", id}, {"key", item.id}, {"label", item.label}}},
                        {"created", created},
                        {"placed", placed},
                        {"model_version", model ? model->version() : 0}};
  SendJson(res, created ? 201 : 200, out);
}

void Server::PostInteractions(const httplib::Request& req, httplib::Response& res, const std::string& raw_body) {
  const nlohmann::json body = JsonBody(req, raw_body);
  if (!body.is_object() && !body.is_array()) {
    throw HttpError{400, "the body must be a JSON object or an array of objects {user, item, weight, timestamp}", ""};
  }
  const nlohmann::json rows = body.is_array() ? body : nlohmann::json::array({body});
  if (rows.empty()) throw HttpError{400, "no interactions in the body", ""};
  if (rows.size() > kMaxInteractionsPerPost) {
    throw HttpError{413, "at most " + std::to_string(kMaxInteractionsPerPost) + " interactions per request", ""};
  }
  struct Row {
    std::string user, item;
    double weight = 1;
    int64_t timestamp = 0;
  };
  std::vector<Row> parsed;
  for (size_t i = 0; i < rows.size(); ++i) {
    const nlohmann::json& r = rows[i];
    const std::string at = body.is_array() ? "[" + std::to_string(i) + "]." : "";
    if (!r.is_object()) throw HttpError{400, "interaction " + std::to_string(i) + " is not an object", ""};
    Row row;
    for (const char* field : {"user", "item"}) {
      auto f = r.find(field);
      if (f == r.end() || !(f->is_string() || f->is_number_integer())) {
        throw HttpError{400, std::string("'") + field + "' must be a string or an integer id", at + field};
      }
      std::string value = f->is_string() ? f->get<std::string>() : std::to_string(f->get<int64_t>());
      if (value.empty()) throw HttpError{400, std::string("'") + field + "' is empty", at + field};
      (std::string(field) == "user" ? row.user : row.item) = std::move(value);
    }
    if (r.contains("weight")) {
      if (!r["weight"].is_number() || !std::isfinite(r["weight"].get<double>()) || r["weight"].get<double>() <= 0) {
        throw HttpError{400, "'weight' must be a positive number", at + "weight"};
      }
      row.weight = r["weight"].get<double>();
    }
    if (r.contains("timestamp")) {
      if (!r["timestamp"].is_number_integer() || r["timestamp"].get<int64_t>() < 0) {
        throw HttpError{400, "'timestamp' must be seconds since the epoch (a non-negative integer)", at + "timestamp"};
      }
      row.timestamp = r["timestamp"].get<int64_t>();
    }
    parsed.push_back(std::move(row));
  }

  std::lock_guard<std::mutex> lock(write_mu_);
  std::vector<NodeId> items;
  HttpError refused{0, "", ""};
  Status s = lease_.With([&](store::Store* primary, bool reopened) -> Status {
    if (reopened) MOSAIC_RETURN_IF_ERROR(Follow());
    std::unique_ptr<store::Batch> batch;
    MOSAIC_RETURN_IF_ERROR(primary->BeginBatch(&batch));
    for (size_t i = 0; i < parsed.size(); ++i) {
      store::Interaction x;
      Status found = batch->FindNode(NodeKind::kItem, parsed[i].item, &x.item);
      if (found.IsNotFound()) {
        // Nothing is written: the batch is dropped.
        refused = {404, "unknown item '" + parsed[i].item + "' (POST /items first)",
                   body.is_array() ? "[" + std::to_string(i) + "].item" : "item"};
        return Status::OK();
      }
      MOSAIC_RETURN_IF_ERROR(found);
      MOSAIC_RETURN_IF_ERROR(batch->UpsertNode(NodeKind::kUser, parsed[i].user, "", &x.user));
      x.weight = parsed[i].weight;
      x.timestamp = parsed[i].timestamp;
      MOSAIC_RETURN_IF_ERROR(batch->PutInteraction(x));
      items.push_back(x.item);
    }
    MOSAIC_RETURN_IF_ERROR(batch->Commit());
    if (auto model = Model()) model->MarkInteracted(items);
    followed_sequence_ = primary->LatestSequence();
    return Status::OK();
  });
  if (!s.ok()) throw FromStatus(s);
  if (refused.status) throw refused;
  SendJson(res, 200, {{"stored", items.size()}});
}

Status Server::Run() {
  store::OpenOptions follow;
  follow.follower = true;
  MOSAIC_RETURN_IF_ERROR(store::Store::Open(ctx_.store_dir, follow, &follower_));
  {
    std::lock_guard<std::mutex> lock(write_mu_);
    followed_sequence_ = follower_->LatestSequence();
    MOSAIC_RETURN_IF_ERROR(Reload());
  }

  // httplib gives each keep-alive connection a thread for as long as it stays open: a client beyond
  // the pool's size waits for a connection to close, so the pool is sized for clients, not cores.
  const int threads = args_.threads > 0 ? args_.threads
                                        : std::max(32, 8 * int(std::max(1u, std::thread::hardware_concurrency())));
  http_.new_task_queue = [threads] { return new httplib::ThreadPool(size_t(threads)); };
  http_.set_payload_max_length(args_.max_body);
  // Headers and body go out in two writes; without this the body waits for the client's delayed ACK.
  http_.set_tcp_nodelay(true);
  http_.set_read_timeout(5, 0);
  http_.set_write_timeout(5, 0);
  http_.set_keep_alive_max_count(100);
  http_.set_keep_alive_timeout(2);
  http_.set_error_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    if (res.status == 404) {
      SendError(res, {404, "no such endpoint: " + req.method + " " + req.path, ""});
      metrics_.Record(EndpointLabel(req.path), 404, 0);
    } else if (res.status == 413) {
      SendError(res, {413, "the body is larger than " + std::to_string(args_.max_body) + " bytes", ""});
    } else {
      SendError(res, {res.status, "request refused (HTTP " + std::to_string(res.status) + ")", ""});
    }
  });
  http_.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
    SendError(res, {500, "internal error", ""});
  });

  Route("/health", [this](const auto& req, auto& res, const auto&) { Health(req, res); });
  Route("/metrics", [this](const auto&, auto& res, const auto&) {
    auto model = Model();
    res.status = 200;
    res.set_content(metrics_.Text(model ? model->version() : 0, model ? model->num_items() : 0,
                                  model ? model->num_placed() : 0),
                    "text/plain; version=0.0.4");
  });
  for (const char* query : {"recommend", "audience", "similar"}) {
    Route(std::string("/") + query, [this, query](const auto& req, auto& res, const auto&) { ModelQuery(query, req, res); });
  }
  Route("/items", [this](const auto& req, auto& res, const auto& body) { PostItems(req, res, body); });
  Route("/interactions", [this](const auto& req, auto& res, const auto& body) { PostInteractions(req, res, body); });

  const int port = args_.port == 0 ? http_.bind_to_any_port(args_.host)
                                   : (http_.bind_to_port(args_.host, args_.port) ? args_.port : -1);
  if (port < 0) {
    return Status::IOError("cannot listen on " + args_.host + ":" + std::to_string(args_.port) +
                           " (in use, or not an address of this machine)");
  }
  const auto model = Model();
  const std::string url = "http://" + args_.host + ":" + std::to_string(port);
  if (ctx_.json) {
    std::printf("%s\n", nlohmann::json({{"listening", url}, {"port", port}, {"model_version", model ? model->version() : 0}})
                            .dump()
                            .c_str());
  } else {
    std::printf("listening on %s (model v%llu, %lld items); Ctrl-C stops\n", url.c_str(),
                static_cast<unsigned long long>(model ? model->version() : 0),
                static_cast<long long>(model ? model->num_items() : 0));
  }
  std::fflush(stdout);

  struct sigaction action = {};
  action.sa_handler = OnStopSignal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
  std::thread maintenance([this] { Maintain(); });
  const bool listened = http_.listen_after_bind();
  stopping_ = true;
  maintenance.join();
  lease_.Release();
  if (!listened && !g_stop_requested) return Status::IOError("the server stopped listening on " + url);
  if (!ctx_.json) std::printf("stopped\n");
  return Status::OK();
}

}  // namespace

Status RunServe(const Context& ctx, const ServeArgs& args) {
  // Requests run in parallel on their own threads: one thread per tensor operation (placement,
  // explanations) keeps them from contending for the cores.
  at::set_num_threads(1);
  // The same for BLAS calls (scoring, text encoding) when the BLAS is OpenBLAS, which otherwise starts
  // its own threads for each call.
  if (auto* set_blas_threads = reinterpret_cast<void (*)(int)>(::dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) {
    set_blas_threads(1);
  }
  try {
    Server server(ctx, args);
    return server.Run();
  } catch (const std::exception& e) {
    return Status::InvalidArgument(std::string("serve: ") + e.what());
  }
}

}  // namespace mosaic::jobs
