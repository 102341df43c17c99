// mosaic serve: the HTTP/JSON API (docs/serving.md) over the model-service layer.
//
// Reading: queries run on a ServingModel in memory and on a RocksDB follower (secondary instance)
// of the store for names and edges. A maintenance thread catches the follower up every
// kFollowInterval; when it sees writes that were not the server's own (a rebuild's new version, an
// ingest by another process), it loads a fresh ServingModel and swaps it in: requests in flight
// finish on the one they started with.
//
// Writing: POST /items and /interactions take the store's write lock through a lease
// (jobs/http/write_lease.h). While the lease is held, reads go through the primary (nobody else can
// write then). One write at a time, each committed before its response. A POST /items is one batch
// (the item, then its placement) on its request thread. POST /interactions and /impressions are
// queued without a thread and committed by one writer thread in groups: every request waiting when
// the last commit ended goes into the next batch (one WAL sync for all), each request stored whole or
// refused whole. Plays and impressions also add to the items' exposure counters, in the same batch,
// which the exploration of /recommend reads (from memory: exposure_, updated after each commit).
//
// Connections are the transport's (jobs/http/transport.h: Beast, asynchronous, bounded in size and
// time). Every request goes through one dispatch (Serve): Host check, route, method, credentials,
// then the handler inside one wrapper (Handle): refusals come back as HttpError values, and anything
// thrown is caught there once and answered 500.
#include "jobs/http/server.h"

#include <arpa/inet.h>
#include <dlfcn.h>
#include <netinet/in.h>
#include <signal.h>

#include <httplib.h>
#include <torch/torch.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <deque>
#include <fstream>
#include <iterator>
#include <map>
#include <random>
#include <shared_mutex>
#include <thread>

#include "graph/catalogue.h"
#include "graph/import.h"
#include "graph/text_features.h"
#include "jobs/http/dashboard.h"
#include "jobs/http/metrics.h"
#include "jobs/http/parse.h"
#include "jobs/http/request.h"
#include "jobs/http/routes.h"
#include "jobs/http/transport.h"
#include "jobs/http/write_lease.h"
#include "jobs/service/add_items.h"
#include "jobs/service/api_boundary.h"
#include "jobs/service/exposure.h"
#include "jobs/service/serving_model.h"

namespace mosaic::jobs::http {

using store::NodeId;
using store::NodeKind;

namespace {

constexpr auto kFollowInterval = std::chrono::milliseconds(250);
constexpr auto kStopGrace = std::chrono::seconds(5);
// Bounds on POST /interactions and /impressions waiting to be committed (beyond either: 503), and
// on one group commit (plays and impressions).
constexpr size_t kMaxQueuedWrites = 4096;
constexpr size_t kMaxQueuedRows = 1 << 20;
constexpr size_t kMaxRowsPerCommit = 1 << 16;

std::atomic<bool> g_stop_requested{false};
void OnStopSignal(int) { g_stop_requested = true; }

// Whether `host` (as given to --host) is a loopback address: localhost, 127.0.0.0/8, ::1.
bool IsLoopback(const std::string& host) {
  if (host == "localhost") return true;
  in_addr v4{};
  if (::inet_pton(AF_INET, host.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  return ::inet_pton(AF_INET6, host.c_str(), &v6) == 1 && IN6_IS_ADDR_LOOPBACK(&v6);
}

// Compares a presented secret with the expected one in time that depends only on the expected one's
// length (no early exit at the first differing byte).
bool SameSecret(const std::string& presented, const std::string& expected) {
  unsigned char diff = presented.size() == expected.size() ? 0 : 1;
  for (size_t i = 0; i < expected.size(); ++i) {
    const unsigned char p = presented.empty() ? 0 : static_cast<unsigned char>(presented[i % presented.size()]);
    diff |= static_cast<unsigned char>(p ^ static_cast<unsigned char>(expected[i]));
  }
  return diff == 0;
}

// The token in a token file: its content less surrounding white space. InvalidArgument when empty.
Status ReadToken(const std::string& path, std::string* token) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound("cannot read --token-file '" + path + "'");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t first = text.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return Status::InvalidArgument("--token-file '" + path + "' is empty");
  *token = text.substr(first, text.find_last_not_of(" \t\r\n") - first + 1);
  if (token->find_first_of(" \t\r\n") != std::string::npos) {
    return Status::InvalidArgument("--token-file '" + path + "' must hold one token (no white space inside)");
  }
  return Status::OK();
}

// The host part of a Host header ("example.com:8080" -> "example.com", "[::1]:80" -> "::1"), lower-case.
std::string HostName(std::string host) {
  if (!host.empty() && host[0] == '[') {
    host = host.substr(1, host.find(']') == std::string::npos ? std::string::npos : host.find(']') - 1);
  } else if (std::count(host.begin(), host.end(), ':') == 1) {
    host = host.substr(0, host.find(':'));
  }
  std::transform(host.begin(), host.end(), host.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  return host;
}

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

// Placement of POSTed items by the model the server holds: in memory at once, then stored.
class ServingPlacer : public service::ItemPlacer {
 public:
  explicit ServingPlacer(std::shared_ptr<service::ServingModel> model) : model_(std::move(model)) {}
  Status Place(store::Store* store, const std::vector<NodeId>& items, service::PlaceReport* report) override {
    *report = service::PlaceReport();
    if (!model_) return Status::OK();
    report->model_version = model_->version();
    std::vector<service::Placement> placements;
    MOSAIC_RETURN_IF_ERROR(model_->Place(*store->NewReadView(), items, &placements));
    report->placed = placements.size();
    return service::PersistPlacements(store, model_->version(), placements, "placed");
  }

 private:
  std::shared_ptr<service::ServingModel> model_;
};

class Server {
 public:
  Server(const Context& ctx, const ServeArgs& args) : ctx_(ctx), args_(args), lease_(ctx.store_dir) {}

  Status Run();

 private:
  using Handler = HttpError (Server::*)(const Request&, Response&);

  std::shared_ptr<service::ServingModel> Model() const { return std::atomic_load(&model_); }
  // Catches the follower up; when it saw writes that are not ours, reloads the model. *current tells
  // whether the follower has all that was written (ours included). Caller holds write_mu_.
  Status Follow(bool* current = nullptr);
  Status Reload();
  void Maintain();
  // The transport's limits from the options.
  TransportLimits Limits() const;
  Status Listen(int* port);
  // Reads --token-file and refuses a non-loopback --host without one (unless --insecure-writes).
  Status SetUpAccess();
  // A POST's credentials: 401 unless a token is set and the request sends it as a bearer token.
  HttpError Authorize(const Request& req) const;

  // The handler of each route of Routes().
  Handler HandlerOf(const Route& route) const;
  // Every request: --allowed-host, 404 for an unknown path, 405 (with Allow) for another method, 401
  // for a write without the token, else the route's handler; POST /interactions and /impressions go to
  // the writer.
  void Serve(const Request& req, Transport::Reply reply);
  // As Serve, for all but a write that was queued: false when `reply` was handed over.
  bool Dispatch(const Request& req, Response* res, Transport::Reply* reply);
  // A request the transport refused (malformed, too large): its JSON error, counted in the metrics.
  void Refused(const Request& req, const HttpError& error, Response* res);
  // Runs `handler` once: refusals and anything thrown become JSON errors; the time goes to the metrics.
  void Handle(const Route& route, Handler handler, const Request& req, Response& res);

  HttpError Health(const Request& req, Response& res);
  HttpError MetricsText(const Request& req, Response& res);
  HttpError Query(const Request& req, Response& res);
  // The dashboard: a static file, or one of its read-only endpoints (jobs/http/dashboard.h).
  HttpError DashboardFile(const Request& req, Response& res);
  HttpError Browse(const Request& req, Response& res);
  // Calls fn(view) on a view of the store as it is now: the primary's while the server holds the write
  // lease (nobody else writes then), else the follower's.
  template <typename Fn>
  auto WithView(Fn&& fn) {
    if (std::shared_ptr<store::Store> primary = lease_.Reader()) return fn(*primary->NewReadView());
    auto read = follower_mu_.Read();
    return fn(*follower_->NewReadView());
  }
  HttpError PostItems(const Request& req, Response& res);
  // A replica's POST: sent on to the primary (--primary) and its reply relayed; 503 without one.
  void Forward(const Request& req, Response* res);
  // Parses a POST /interactions or /impressions and queues it for the writer, which replies; or
  // refuses it at once.
  HttpError QueueWrite(const Request& req, Transport::Reply* reply);
  // The writer thread: commits queued writes in groups until the queue is closed and empty.
  void WriteQueued();
  struct QueuedWrite;
  // Stores every request of `group` that names only known users and items, in one batch, and
  // replies to each.
  void CommitWrites(std::vector<QueuedWrite>* group);
  // Adds one request of a group to `batch`: *refused for a refusal (nothing of it written), a Status
  // for a failure of the store (the whole group fails). Fills *counted with the exposure it adds and
  // *played, *played_at with its plays.
  Status AddWrite(store::Batch* batch, const QueuedWrite& write, HttpError* refused, nlohmann::json* reply,
                  std::vector<std::pair<NodeId, store::Exposure>>* counted, std::vector<NodeId>* played,
                  std::vector<int64_t>* played_at);
  // A fresh id for a /recommend reply, for POST /impressions to name it by.
  std::string NewRequestId();

  const Context ctx_;
  const ServeArgs args_;
  std::unique_ptr<Transport> transport_;
  Metrics metrics_;

  std::unique_ptr<store::Store> follower_;
  FairSharedMutex follower_mu_;                    // shared: reading the follower; exclusive: CatchUp
  std::shared_ptr<service::ServingModel> model_;  // null before the first rebuild
  std::mutex write_mu_;                            // one writer (POST or reload) at a time
  WriteLease lease_;
  uint64_t followed_sequence_ = 0;                 // follower sequence the model accounts for (under write_mu_)
  std::string token_;                              // the bearer token POSTs need; empty: none
  std::atomic<int> writes_waiting_{0};             // POST /items in a handler (waiting for write_mu_ or writing)

  // A POST /interactions or /impressions waiting for the writer.
  struct QueuedWrite {
    std::string path;                  // the endpoint, for the metrics
    std::vector<InteractionRow> rows;  // /interactions
    bool many = false;                 // /interactions: a JSON array (a refusal names "[i].item")
    Impressions impressions;           // /impressions
    Transport::Reply reply;
    Clock::time_point received;
    size_t size() const { return rows.size() + impressions.items.size(); }
  };
  std::mutex writes_mu_;                  // guards the four below
  std::condition_variable writes_ready_;  // a request queued, or the queue closed
  std::deque<QueuedWrite> writes_;
  size_t queued_rows_ = 0;                // plays and impressions in writes_
  bool writes_closed_ = false;            // set once the transport has stopped

  service::ExposureBoard exposure_;           // the items' exposure counters, as committed
  std::atomic<uint64_t> explored_served_{0};  // results given by exploration since start
  std::atomic<uint64_t> request_serial_{0};   // for NewRequestId
  uint64_t request_salt_ = 0;                 // for NewRequestId: differs from run to run
  std::atomic<bool> stopping_{false};
  bool replica_ = false;             // --replica-of: never writes; POSTs go to the primary
  std::string primary_host_;         // --primary, parsed
  int primary_port_ = 0;
};

Status Server::Reload() {
  std::unique_ptr<service::ServingModel> fresh;
  {
    auto read = follower_mu_.Read();
    auto view = follower_->NewReadView();
    uint64_t version = 0;
    bool found = false;
    MOSAIC_RETURN_IF_ERROR(service::CurrentModelVersion(*view, &version, &found));
    if (found) MOSAIC_RETURN_IF_ERROR(service::ServingModel::Load(*view, &fresh));
    if (fresh) {
      fresh->set_frozen_users(args_.frozen_users);
      fresh->set_explore_settings({args_.explore_prior});
    }
    // A replica's counters are the primary's, as stored.
    if (replica_) MOSAIC_RETURN_IF_ERROR(exposure_.Load(*view));
  }
  std::shared_ptr<service::ServingModel> next(std::move(fresh));
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
  Clock::time_point stop_started;
  while (!stopping_) {
    std::this_thread::sleep_for(kFollowInterval);
    if (g_stop_requested) {
      // Requests in flight get kStopGrace to finish; then the rest are abandoned.
      if (stop_started == Clock::time_point()) stop_started = Clock::now();
      transport_->Stop();
      if (Clock::now() - stop_started > kStopGrace) transport_->Abort();
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

Server::Handler Server::HandlerOf(const Route& route) const {
  if (route.path == "/health") return &Server::Health;
  if (route.path == "/metrics") return &Server::MetricsText;
  if (route.path == "/items") return &Server::PostItems;
  if (FindAsset(route.path)) return &Server::DashboardFile;
  if (route.path == "/catalogue" || route.path == "/item" || route.path == "/graph" || route.path == "/user" ||
      route.path == "/versions") {
    return &Server::Browse;
  }
  return &Server::Query;  // one route per query kind
}

void Server::Handle(const Route& route, Handler handler, const Request& req, Response& res) {
  const auto start = Clock::now();
  HttpError refused;
  try {
    refused = (this->*handler)(req, res);
  } catch (...) {
    refused = FromStatus(service::CurrentExceptionStatus());
  }
  if (!refused.ok()) SendError(res, refused);
  metrics_.Record(route.path, res.status, std::chrono::duration<double>(Clock::now() - start).count());
}

void Server::Serve(const Request& req, Transport::Reply reply) {
  Response res;
  if (Dispatch(req, &res, &reply)) reply(std::move(res));
}

bool Server::Dispatch(const Request& req, Response* res, Transport::Reply* reply) {
  // With --allowed-host, a request naming another Host is refused (a DNS-rebinding page names its own).
  if (!args_.allowed_hosts.empty()) {
    const std::string host = HostName(req.Header("Host"));
    const bool allowed = std::any_of(args_.allowed_hosts.begin(), args_.allowed_hosts.end(),
                                     [&](const std::string& h) { return HostName(h) == host; });
    if (!allowed) {
      SendError(*res, {403, "Host '" + req.Header("Host") + "' is not served here (--allowed-host)", ""});
      res->close = true;
      metrics_.Record(EndpointLabel(req.path), 403, 0);
      return true;
    }
  }
  const Route* route = FindRoute(req.path);
  if (!route) {
    SendError(*res, {404, "no such endpoint: " + req.method + " " + req.path, ""});
    metrics_.Record("other", 404, 0);
    return true;
  }
  if (!TakesMethod(*route, req.method)) {
    const std::string allowed = MethodName(route->method);
    res->SetHeader("Allow", allowed);
    SendError(*res, {405, req.method + " is not allowed on " + route->path + "; use " + allowed, ""});
    metrics_.Record(route->path, 405, 0);
    return true;
  }
  if (route->method == Method::kPost && replica_) {
    // The primary checks the token: the replica forwards the request as it came, on at most half the
    // threads at once (queries always have threads).
    const int most_waiting = std::max(1, transport_->limits().threads / 2);
    const auto start = Clock::now();
    if (writes_waiting_.fetch_add(1) >= most_waiting) {
      res->SetHeader("Retry-After", "1");
      SendError(*res, {503, "too many writes being forwarded (" + std::to_string(most_waiting) + "): try again", ""});
    } else {
      try {
        Forward(req, res);
      } catch (...) {
        SendError(*res, FromStatus(service::CurrentExceptionStatus()));
      }
    }
    --writes_waiting_;
    metrics_.Record(route->path, res->status, std::chrono::duration<double>(Clock::now() - start).count());
    return true;
  }
  if (route->method == Method::kPost) {
    const HttpError denied = Authorize(req);
    if (!denied.ok()) {
      res->SetHeader("WWW-Authenticate", "Bearer");
      SendError(*res, denied);
      metrics_.Record(route->path, denied.status, 0);
      return true;
    }
    if (route->path == "/interactions" || route->path == "/impressions") {
      const auto start = Clock::now();
      HttpError refused;
      try {
        refused = QueueWrite(req, reply);
      } catch (...) {
        refused = FromStatus(service::CurrentExceptionStatus());
      }
      if (refused.ok()) return false;
      if (refused.status == 503) res->SetHeader("Retry-After", "1");
      SendError(*res, refused);
      metrics_.Record(route->path, res->status, std::chrono::duration<double>(Clock::now() - start).count());
      return true;
    }
    // Items go one at a time, each POST waiting for the one before it on a request thread: beyond
    // half the threads waiting, 503, so that queries always have threads.
    const int most_waiting = std::max(1, transport_->limits().threads / 2);
    if (writes_waiting_.fetch_add(1) >= most_waiting) {
      --writes_waiting_;
      res->SetHeader("Retry-After", "1");
      SendError(*res, {503, "too many writes in progress (" + std::to_string(most_waiting) + "): try again", ""});
      metrics_.Record(route->path, 503, 0);
      return true;
    }
    Handle(*route, HandlerOf(*route), req, *res);
    --writes_waiting_;
    return true;
  }
  Handle(*route, HandlerOf(*route), req, *res);
  return true;
}

void Server::Refused(const Request& req, const HttpError& error, Response* res) {
  SendError(*res, error);
  metrics_.Record(EndpointLabel(req.path), error.status, 0);
}

HttpError Server::Health(const Request&, Response& res) {
  auto model = Model();
  nlohmann::json body = {{"status", "ok"}, {"model_version", model ? model->version() : 0}};
  body["role"] = replica_ ? "replica" : "primary";
  body["items"] = model ? model->num_items() : 0;
  body["users"] = model ? model->num_users() : 0;
  body["placed"] = model ? model->num_placed() : 0;
  SendJson(res, 200, body);
  return {};
}

HttpError Server::MetricsText(const Request&, Response& res) {
  auto model = Model();
  res.status = 200;
  res.content_type = "text/plain; version=0.0.4";
  res.body = metrics_.Text(model ? model->version() : 0, model ? model->num_items() : 0, model ? model->num_placed() : 0);
  const TransportStats t = transport_->Stats();
  res.body += "# HELP mosaic_open_connections Client connections open now.\n";
  res.body += "# TYPE mosaic_open_connections gauge\nmosaic_open_connections " + std::to_string(t.open_connections) + "\n";
  res.body += "# HELP mosaic_connections_total Client connections by outcome: served, refused (503: at "
              "--max-connections), timed_out (closed: a head, body or reply too slow).\n";
  res.body += "# TYPE mosaic_connections_total counter\n";
  res.body += "mosaic_connections_total{outcome=\"served\"} " + std::to_string(t.accepted) + "\n";
  res.body += "mosaic_connections_total{outcome=\"refused\"} " + std::to_string(t.refused_at_capacity) + "\n";
  res.body += "mosaic_connections_total{outcome=\"timed_out\"} " + std::to_string(t.timed_out) + "\n";
  const store::Exposure shown = exposure_.Total();
  res.body += "# HELP mosaic_impressions_total Items shown, as POST /impressions reported them (one per item per list).\n";
  res.body += "# TYPE mosaic_impressions_total counter\nmosaic_impressions_total " + std::to_string(shown.impressions) + "\n";
  res.body += "# HELP mosaic_plays_total Plays posted to the server (POST /interactions), all items.\n";
  res.body += "# TYPE mosaic_plays_total counter\nmosaic_plays_total " + std::to_string(shown.plays) + "\n";
  res.body += "# HELP mosaic_explored_results_total /recommend results given by exploration since the server started.\n";
  res.body += "# TYPE mosaic_explored_results_total counter\nmosaic_explored_results_total " +
              std::to_string(explored_served_.load()) + "\n";
  return {};
}

HttpError Server::Query(const Request& req, Response& res) {
  service::Query query;
  MOSAIC_HTTP_RETURN_IF_ERROR(ParseQuery(req, &query, args_.explore));
  const char* subject = service::AsksAboutUser(query.kind) ? "user" : "item";
  auto model = Model();
  if (!model) return {503, "no model yet: run `mosaic rebuild`", ""};
  service::QueryResult result;
  const service::ExposureBoard* exposure = query.explore > 0 ? &exposure_ : nullptr;
  Status s = WithView([&](const store::ReadView& view) { return model->Run(view, query, &result, exposure); });
  if (!s.ok()) return FromStatus(s, subject);
  if (query.kind == service::QueryKind::kRecommend) {
    result.request = NewRequestId();
    for (const service::Hit& hit : result.hits) explored_served_ += hit.explored ? 1 : 0;
  }
  SendJson(res, 200, service::ToJson(result));
  return {};
}

HttpError Server::DashboardFile(const Request& req, Response& res) {
  const Asset* asset = FindAsset(req.path);
  res.status = 200;
  res.content_type = asset->content_type;
  res.body = asset->body;
  res.SetHeader("Cache-Control", "no-cache");
  res.SetHeader("X-Content-Type-Options", "nosniff");
  // Names and titles come from catalogues and clients: the pages add them as text, and nothing but the
  // dashboard's own files may run or load.
  res.SetHeader("Content-Security-Policy",
                "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
                "base-uri 'none'; form-action 'none'; frame-ancestors 'none'");
  return {};
}

HttpError Server::Browse(const Request& req, Response& res) {
  auto model = Model();
  nlohmann::json out;
  HttpError refused = WithView([&](const store::ReadView& view) -> HttpError {
    if (req.path == "/catalogue") return CatalogueJson(req, view, args_.text, &out);
    if (req.path == "/item") return ItemPageJson(req, view, model.get(), &out);
    if (req.path == "/graph") return GraphJson(req, view, &out);
    if (req.path == "/user") return UserJson(req, view, &out);
    return VersionsJson(req, view, &out);
  });
  if (!refused.ok()) return refused;
  SendJson(res, 200, out);
  return {};
}

HttpError Server::PostItems(const Request& req, Response& res) {
  nlohmann::json body;
  MOSAIC_HTTP_RETURN_IF_ERROR(JsonBody(req, req.body, &body));
  service::NewItem item;
  MOSAIC_HTTP_RETURN_IF_ERROR(ParseItem(body, &item.item));

  std::lock_guard<std::mutex> lock(write_mu_);
  std::vector<service::WrittenItem> written;
  service::PlaceReport placed;
  std::shared_ptr<service::ServingModel> model;
  Status s = lease_.With([&](store::Store* primary, bool reopened) -> Status {
    // Others may have written before the lease was taken: their writes come in first.
    if (reopened) MOSAIC_RETURN_IF_ERROR(Follow());
    model = Model();
    ServingPlacer placer(model);
    MOSAIC_RETURN_IF_ERROR(service::AddItems(primary, {item}, args_.text, &placer, &written, &placed));
    // Our own writes, already in the model: the follower will see them, and must not take them for others'.
    followed_sequence_ = primary->LatestSequence();
    return Status::OK();
  });
  if (!s.ok()) return FromStatus(s);
  const service::WrittenItem& w = written.at(0);
  nlohmann::json out = {{"item", {{"id", w.id}, {"key", item.item.id}, {"label", item.item.label}}},
                        {"created", w.created},
                        {"placed", model && model->HasColumn(w.id)},
                        {"model_version", model ? model->version() : 0}};
  SendJson(res, w.created ? 201 : 200, out);
  return {};
}

void Server::Forward(const Request& req, Response* res) {
  if (primary_host_.empty()) {
    SendError(*res, {503,
                     "this server is a read replica of " + args_.replica_of +
                         ": send writes to the primary server (or start the replica with --primary URL to forward them)",
                     ""});
    return;
  }
  httplib::Client primary(primary_host_, primary_port_);
  primary.set_connection_timeout(5, 0);
  primary.set_read_timeout(30, 0);
  primary.set_write_timeout(30, 0);
  httplib::Headers headers;
  if (!req.Header("Authorization").empty()) headers.emplace("Authorization", req.Header("Authorization"));
  const std::string content_type = req.Header("Content-Type");  // sent by Post, as the client sent it
  httplib::Result answer = primary.Post(req.target, headers, req.body, content_type);
  if (!answer) {
    SendError(*res, {502, "the primary " + args_.primary + " did not answer: " + httplib::to_string(answer.error()), ""});
    return;
  }
  res->status = answer->status;
  res->content_type = answer->get_header_value("Content-Type");
  res->body = answer->body;
  for (const char* name : {"WWW-Authenticate", "Retry-After"}) {
    if (answer->has_header(name)) res->SetHeader(name, answer->get_header_value(name));
  }
}

HttpError Server::QueueWrite(const Request& req, Transport::Reply* reply) {
  nlohmann::json body;
  MOSAIC_HTTP_RETURN_IF_ERROR(JsonBody(req, req.body, &body));
  QueuedWrite queued;
  queued.path = req.path;
  if (req.path == "/impressions") {
    MOSAIC_HTTP_RETURN_IF_ERROR(ParseImpressions(body, &queued.impressions));
  } else {
    MOSAIC_HTTP_RETURN_IF_ERROR(ParseInteractions(body, &queued.rows));
    queued.many = body.is_array();
  }
  queued.received = Clock::now();
  {
    std::lock_guard<std::mutex> lock(writes_mu_);
    if (writes_closed_) return {503, "the server is stopping", ""};
    if (writes_.size() >= kMaxQueuedWrites || queued_rows_ + queued.size() > kMaxQueuedRows) {
      return {503,
              "too many writes waiting to be stored (" + std::to_string(writes_.size()) + " requests, " +
                  std::to_string(queued_rows_) + " rows): try again",
              ""};
    }
    queued.reply = std::move(*reply);
    queued_rows_ += queued.size();
    writes_.push_back(std::move(queued));
  }
  writes_ready_.notify_one();
  return {};
}

void Server::WriteQueued() {
  for (;;) {
    std::vector<QueuedWrite> group;
    {
      std::unique_lock<std::mutex> lock(writes_mu_);
      writes_ready_.wait(lock, [this] { return !writes_.empty() || writes_closed_; });
      if (writes_.empty()) return;  // closed, and nothing left
      // Everything waiting goes into one commit, up to kMaxRowsPerCommit rows (always one request).
      size_t rows = 0;
      while (!writes_.empty() && (group.empty() || rows + writes_.front().size() <= kMaxRowsPerCommit)) {
        rows += writes_.front().size();
        group.push_back(std::move(writes_.front()));
        writes_.pop_front();
      }
      queued_rows_ -= rows;
    }
    CommitWrites(&group);
  }
}

Status Server::AddWrite(store::Batch* batch, const QueuedWrite& write, HttpError* refused, nlohmann::json* reply,
                        std::vector<std::pair<NodeId, store::Exposure>>* counted, std::vector<NodeId>* played,
                        std::vector<int64_t>* played_at) {
  if (write.path == "/impressions") {
    const Impressions& shown = write.impressions;
    NodeId user = 0;
    Status found = batch->FindNode(NodeKind::kUser, shown.user, &user);
    if (found.IsNotFound()) {
      *refused = {404, "unknown user '" + shown.user + "'", "user"};
      return Status::OK();
    }
    MOSAIC_RETURN_IF_ERROR(found);
    std::vector<NodeId> items;
    for (size_t i = 0; i < shown.items.size(); ++i) {
      NodeId item = 0;
      found = batch->FindNode(NodeKind::kItem, shown.items[i], &item);
      if (found.IsNotFound()) {
        *refused = {404, "unknown item '" + shown.items[i] + "'", "items[" + std::to_string(i) + "]"};
        return Status::OK();
      }
      MOSAIC_RETURN_IF_ERROR(found);
      items.push_back(item);
    }
    // An item listed twice in one list was shown once; a request counted before counts nothing.
    std::sort(items.begin(), items.end());
    items.erase(std::unique(items.begin(), items.end()), items.end());
    bool first = false;
    MOSAIC_RETURN_IF_ERROR(batch->MarkImpressionsCounted(shown.request, &first));
    if (first) {
      for (NodeId item : items) {
        batch->AddExposure(item, 1, 0);
        counted->push_back({item, {1, 0}});
      }
    }
    *reply = {{"recorded", first ? items.size() : 0}, {"duplicate", !first}};
    return Status::OK();
  }
  // Every item first: a request naming an unknown one is refused, and nothing of it is written.
  std::vector<NodeId> items(write.rows.size());
  for (size_t i = 0; i < write.rows.size(); ++i) {
    Status found = batch->FindNode(NodeKind::kItem, write.rows[i].item, &items[i]);
    if (found.IsNotFound()) {
      *refused = {404, "unknown item '" + write.rows[i].item + "' (POST /items first)",
                  write.many ? "[" + std::to_string(i) + "].item" : "item"};
      return Status::OK();
    }
    MOSAIC_RETURN_IF_ERROR(found);
  }
  for (size_t i = 0; i < write.rows.size(); ++i) {
    store::Interaction x;
    x.item = items[i];
    MOSAIC_RETURN_IF_ERROR(batch->UpsertNode(NodeKind::kUser, write.rows[i].user, "", &x.user));
    x.weight = write.rows[i].weight;
    x.timestamp = write.rows[i].timestamp;
    MOSAIC_RETURN_IF_ERROR(batch->PutInteraction(x));
    batch->AddExposure(x.item, 0, 1);
    counted->push_back({x.item, {0, 1}});
    played->push_back(x.item);
    played_at->push_back(x.timestamp);
  }
  *reply = {{"stored", write.rows.size()}};
  return Status::OK();
}

void Server::CommitWrites(std::vector<QueuedWrite>* group) {
  std::vector<HttpError> refused(group->size());
  std::vector<nlohmann::json> replies(group->size());
  std::vector<std::pair<NodeId, store::Exposure>> counted;
  Status s;
  try {
    std::lock_guard<std::mutex> lock(write_mu_);
    s = lease_.With([&](store::Store* primary, bool reopened) -> Status {
      if (reopened) MOSAIC_RETURN_IF_ERROR(Follow());
      counted.clear();
      std::unique_ptr<store::Batch> batch;
      MOSAIC_RETURN_IF_ERROR(primary->BeginBatch(&batch));
      std::vector<NodeId> played;
      std::vector<int64_t> played_at;
      for (size_t r = 0; r < group->size(); ++r) {
        // A refused request adds nothing: what it would count is dropped with it.
        std::vector<std::pair<NodeId, store::Exposure>> request_counted;
        std::vector<NodeId> request_played;
        std::vector<int64_t> request_played_at;
        MOSAIC_RETURN_IF_ERROR(AddWrite(batch.get(), (*group)[r], &refused[r], &replies[r], &request_counted,
                                        &request_played, &request_played_at));
        if (!refused[r].ok()) continue;
        counted.insert(counted.end(), request_counted.begin(), request_counted.end());
        played.insert(played.end(), request_played.begin(), request_played.end());
        played_at.insert(played_at.end(), request_played_at.begin(), request_played_at.end());
      }
      MOSAIC_RETURN_IF_ERROR(batch->Commit());
      if (auto model = Model()) model->MarkInteracted(played, played_at);
      followed_sequence_ = primary->LatestSequence();
      return Status::OK();
    });
  } catch (...) {
    s = service::CurrentExceptionStatus();
  }
  if (s.ok()) {
    for (const auto& [item, e] : counted) exposure_.Add(item, e.impressions, e.plays);
  }
  // Replies go out once the whole group is committed (or failed: then none of it was stored).
  for (size_t r = 0; r < group->size(); ++r) {
    QueuedWrite& write = (*group)[r];
    Response res;
    if (!s.ok()) {
      SendError(res, FromStatus(s));
    } else if (!refused[r].ok()) {
      SendError(res, refused[r]);
    } else {
      SendJson(res, 200, replies[r]);
    }
    metrics_.Record(write.path, res.status, std::chrono::duration<double>(Clock::now() - write.received).count());
    write.reply(std::move(res));
  }
}

std::string Server::NewRequestId() {
  char id[40];
  std::snprintf(id, sizeof id, "%016llx-%llx", static_cast<unsigned long long>(request_salt_),
                static_cast<unsigned long long>(++request_serial_));
  return id;
}

HttpError Server::Authorize(const Request& req) const {
  if (token_.empty()) return {};
  const std::string header = req.Header("Authorization");
  const std::string scheme = "Bearer ";
  if (header.size() <= scheme.size() || !std::equal(scheme.begin(), scheme.end(), header.begin(), [](char a, char b) {
        return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
      })) {
    return {401, "this server takes writes only with its token: send 'Authorization: Bearer TOKEN'", ""};
  }
  if (!SameSecret(header.substr(scheme.size()), token_)) return {401, "wrong token", ""};
  return {};
}

Status Server::SetUpAccess() {
  replica_ = !args_.replica_of.empty();
  if (!args_.primary.empty()) {
    // http://HOST:PORT, the address the primary's `serve` printed.
    const std::string scheme = "http://";
    std::string rest = args_.primary.rfind(scheme, 0) == 0 ? args_.primary.substr(scheme.size()) : "";
    if (!rest.empty() && rest.back() == '/') rest.pop_back();
    const size_t colon = rest.rfind(':');
    int port = 0;
    try {
      size_t used = 0;
      if (colon != std::string::npos) port = std::stoi(rest.substr(colon + 1), &used);
      if (colon == std::string::npos || colon == 0 || used != rest.size() - colon - 1 || port < 1 || port > 65535) port = 0;
    } catch (const std::exception&) {
      port = 0;
    }
    if (port == 0) return Status::InvalidArgument("--primary must be http://HOST:PORT, not '" + args_.primary + "'");
    primary_host_ = rest.substr(0, colon);
    if (primary_host_.size() > 2 && primary_host_.front() == '[') primary_host_ = primary_host_.substr(1, primary_host_.size() - 2);
    primary_port_ = port;
  }
  if (replica_) return Status::OK();  // it never writes: the primary holds the token
  if (!args_.token_file.empty()) MOSAIC_RETURN_IF_ERROR(ReadToken(args_.token_file, &token_));
  if (token_.empty() && !IsLoopback(args_.host)) {
    if (!args_.insecure_writes) {
      return Status::InvalidArgument("--host " + args_.host +
                                     " is reachable from the network: give --token-file to require a token for POST "
                                     "requests, or --insecure-writes to take writes from anyone");
    }
    std::fprintf(stderr,
                 "mosaic serve: WARNING: anyone who can reach %s may POST items and interactions "
                 "(--insecure-writes, no --token-file)\n",
                 args_.host.c_str());
  }
  return Status::OK();
}

Status Server::Run() {
  MOSAIC_RETURN_IF_ERROR(SetUpAccess());
  store::OpenOptions follow;
  follow.follower = true;
  MOSAIC_RETURN_IF_ERROR(store::Store::Open(ctx_.store_dir, follow, &follower_));
  {
    std::lock_guard<std::mutex> lock(write_mu_);
    followed_sequence_ = follower_->LatestSequence();
    MOSAIC_RETURN_IF_ERROR(Reload());
    // Only this server adds to the counters while it runs: what the store holds now, then its own.
    MOSAIC_RETURN_IF_ERROR(exposure_.Load(*follower_->NewReadView()));
  }
  request_salt_ = std::random_device{}() ^ (uint64_t(std::random_device{}()) << 32);
  transport_ = std::make_unique<Transport>(
      Limits(), [this](const Request& req, Transport::Reply reply) { Serve(req, std::move(reply)); },
      [this](const Request& req, const HttpError& error, Response* res) { Refused(req, error, res); });
  int port = 0;
  MOSAIC_RETURN_IF_ERROR(Listen(&port));

  struct sigaction action = {};
  action.sa_handler = OnStopSignal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
  std::thread maintenance([this] { Maintain(); });
  std::thread writer([this] { WriteQueued(); });
  transport_->Run();
  // Run() waited for every queued write's reply, unless Abort() cut it short: the writer stores what is
  // left (nobody is told) before the store is let go.
  {
    std::lock_guard<std::mutex> lock(writes_mu_);
    writes_closed_ = true;
  }
  writes_ready_.notify_all();
  writer.join();
  stopping_ = true;
  maintenance.join();
  lease_.Release();
  if (!ctx_.json) std::printf("stopped\n");
  return Status::OK();
}

TransportLimits Server::Limits() const {
  TransportLimits limits;
  // Connections wait for input without a thread: threads are for handlers, which use the cores and may
  // wait for the write lock. A few per core keeps the cores busy while some wait.
  limits.threads = args_.threads > 0 ? args_.threads : std::max(8, 4 * int(std::max(1u, std::thread::hardware_concurrency())));
  limits.max_connections = args_.max_connections;
  limits.max_body = args_.max_body;
  limits.head_timeout = std::chrono::seconds(args_.header_timeout_s);
  return limits;
}

// Binds the port and says where, with the model version it serves.
Status Server::Listen(int* out) {
  int port = 0;
  MOSAIC_RETURN_IF_ERROR(transport_->Listen(args_.host, args_.port, &port));
  if (transport_->limits().max_connections < args_.max_connections) {
    std::fprintf(stderr, "mosaic serve: at most %zu connections (the open-file limit allows no more)\n",
                 transport_->limits().max_connections);
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
  *out = port;
  return Status::OK();
}

}  // namespace

Status RunServer(const Context& ctx, const ServeArgs& args) {
  // Requests run in parallel on their own threads: one thread per tensor operation (placement,
  // explanations) keeps them from contending for the cores.
  at::set_num_threads(1);
  // The same for BLAS calls (scoring, text encoding) when the BLAS is OpenBLAS, which otherwise starts
  // its own threads for each call.
  if (auto* set_blas_threads = reinterpret_cast<void (*)(int)>(::dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) {
    set_blas_threads(1);
  }
  Server server(ctx, args);
  return server.Run();
}

}  // namespace mosaic::jobs::http
