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
// write then). One write at a time; each is one batch (the item, then its placement), committed
// before the response.
//
// Every handler runs inside one wrapper (Register): refusals come back as HttpError values, and
// anything thrown is caught there once and answered 500.
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
#include <cstdio>
#include <fstream>
#include <iterator>
#include <map>
#include <shared_mutex>
#include <thread>

#include "graph/catalogue.h"
#include "graph/import.h"
#include "graph/text_features.h"
#include "jobs/http/metrics.h"
#include "jobs/http/parse.h"
#include "jobs/http/request.h"
#include "jobs/http/routes.h"
#include "jobs/http/write_lease.h"
#include "jobs/service/add_items.h"
#include "jobs/service/api_boundary.h"
#include "jobs/service/serving_model.h"

namespace mosaic::jobs::http {

using store::NodeId;
using store::NodeKind;

namespace {

constexpr auto kFollowInterval = std::chrono::milliseconds(250);

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
  using Handler = HttpError (Server::*)(const httplib::Request&, httplib::Response&, const std::string& body);

  std::shared_ptr<service::ServingModel> Model() const { return std::atomic_load(&model_); }
  // Catches the follower up; when it saw writes that are not ours, reloads the model. *current tells
  // whether the follower has all that was written (ours included). Caller holds write_mu_.
  Status Follow(bool* current = nullptr);
  Status Reload();
  void Maintain();
  void Configure();
  Status Listen(int* port);
  // Reads --token-file and refuses a non-loopback --host without one (unless --insecure-writes).
  Status SetUpAccess();
  // A POST's credentials: 401 unless a token is set and the request sends it as a bearer token.
  HttpError Authorize(const httplib::Request& req) const;

  // The handler of each route of Routes().
  Handler HandlerOf(const Route& route) const;
  // Registers `handler` for `route`, and 405 for the route's path with the other methods.
  void Register(const Route& route, Handler handler);
  // Runs `handler` once: refusals and anything thrown become JSON errors; the time goes to the metrics.
  void Handle(const Route& route, Handler handler, const httplib::Request& req, httplib::Response& res,
              const std::string& body);

  HttpError Health(const httplib::Request& req, httplib::Response& res, const std::string& body);
  HttpError MetricsText(const httplib::Request& req, httplib::Response& res, const std::string& body);
  HttpError Query(const httplib::Request& req, httplib::Response& res, const std::string& body);
  HttpError PostItems(const httplib::Request& req, httplib::Response& res, const std::string& body);
  HttpError PostInteractions(const httplib::Request& req, httplib::Response& res, const std::string& body);

  const Context ctx_;
  const ServeArgs args_;
  httplib::Server http_;
  Metrics metrics_;

  std::unique_ptr<store::Store> follower_;
  FairSharedMutex follower_mu_;                    // shared: reading the follower; exclusive: CatchUp
  std::shared_ptr<service::ServingModel> model_;  // null before the first rebuild
  std::mutex write_mu_;                            // one writer (POST or reload) at a time
  WriteLease lease_;
  uint64_t followed_sequence_ = 0;                 // follower sequence the model accounts for (under write_mu_)
  std::string token_;                              // the bearer token POSTs need; empty: none
  std::atomic<bool> stopping_{false};
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

Server::Handler Server::HandlerOf(const Route& route) const {
  if (route.path == "/health") return &Server::Health;
  if (route.path == "/metrics") return &Server::MetricsText;
  if (route.path == "/items") return &Server::PostItems;
  if (route.path == "/interactions") return &Server::PostInteractions;
  return &Server::Query;  // one route per query kind
}

void Server::Handle(const Route& route, Handler handler, const httplib::Request& req, httplib::Response& res,
                    const std::string& body) {
  const auto start = Clock::now();
  HttpError refused;
  try {
    refused = (this->*handler)(req, res, body);
  } catch (...) {
    refused = FromStatus(service::CurrentExceptionStatus());
  }
  if (!refused.ok()) SendError(res, refused);
  metrics_.Record(route.path, res.status, std::chrono::duration<double>(Clock::now() - start).count());
}

void Server::Register(const Route& route, Handler handler) {
  const std::string& path = route.path;
  if (route.method == Method::kPost) {
    // The body is read here, not by httplib, which bounds only bodies with a Content-Length: a chunked
    // body over --max-body is read to its end (so the connection stays usable) but not kept.
    http_.Post(path, [this, route, handler](const httplib::Request& req, httplib::Response& res,
                                            const httplib::ContentReader& read) {
      std::string body;
      bool over = false;
      // Unauthorized: the body is read to its end and dropped, like one over the limit.
      const HttpError denied = Authorize(req);
      const bool complete = read([&](const char* data, size_t size) {
        over = over || body.size() + size > args_.max_body;
        if (over || !denied.ok()) {
          body.clear();
        } else {
          body.append(data, size);
        }
        return true;
      });
      if (!denied.ok()) {
        res.set_header("WWW-Authenticate", "Bearer");
        SendError(res, denied);
        metrics_.Record(route.path, denied.status, 0);
      } else if (over || res.status == 413) {
        SendError(res, {413, "the body is larger than " + std::to_string(args_.max_body) + " bytes", ""});
        metrics_.Record(route.path, 413, 0);
      } else if (!complete) {
        SendError(res, {400, "the body could not be read to its end", ""});
        metrics_.Record(route.path, 400, 0);
      } else {
        Handle(route, handler, req, res, body);
      }
    });
  } else {
    http_.Get(path, [this, route, handler](const httplib::Request& req, httplib::Response& res) {
      Handle(route, handler, req, res, "");
    });
  }
  // The other methods on a known path: 405, saying which one it takes.
  const std::string allowed = MethodName(route.method);
  auto wrong_method = [this, path, allowed](const httplib::Request& req, httplib::Response& res) {
    res.set_header("Allow", allowed);
    SendError(res, {405, req.method + " is not allowed on " + path + "; use " + allowed, ""});
    metrics_.Record(path, 405, 0);
  };
  if (route.method == Method::kPost) {
    http_.Get(path, wrong_method);
  } else {
    http_.Post(path, wrong_method);
  }
  http_.Put(path, wrong_method);
  http_.Delete(path, wrong_method);
  http_.Patch(path, wrong_method);
  http_.Options(path, wrong_method);
}

HttpError Server::Health(const httplib::Request&, httplib::Response& res, const std::string&) {
  auto model = Model();
  nlohmann::json body = {{"status", "ok"}, {"model_version", model ? model->version() : 0}};
  body["items"] = model ? model->num_items() : 0;
  body["users"] = model ? model->num_users() : 0;
  body["placed"] = model ? model->num_placed() : 0;
  SendJson(res, 200, body);
  return {};
}

HttpError Server::MetricsText(const httplib::Request&, httplib::Response& res, const std::string&) {
  auto model = Model();
  res.status = 200;
  res.set_content(metrics_.Text(model ? model->version() : 0, model ? model->num_items() : 0,
                                model ? model->num_placed() : 0),
                  "text/plain; version=0.0.4");
  return {};
}

HttpError Server::Query(const httplib::Request& req, httplib::Response& res, const std::string&) {
  service::Query query;
  MOSAIC_HTTP_RETURN_IF_ERROR(ParseQuery(req, &query));
  const char* subject = service::AsksAboutUser(query.kind) ? "user" : "item";
  auto model = Model();
  if (!model) return {503, "no model yet: run `mosaic rebuild`", ""};
  service::QueryResult result;
  Status s;
  if (std::shared_ptr<store::Store> primary = lease_.Reader()) {
    s = model->Run(*primary->NewReadView(), query, &result);
  } else {
    auto read = follower_mu_.Read();
    s = model->Run(*follower_->NewReadView(), query, &result);
  }
  if (!s.ok()) return FromStatus(s, subject);
  SendJson(res, 200, service::ToJson(result));
  return {};
}

HttpError Server::PostItems(const httplib::Request& req, httplib::Response& res, const std::string& raw_body) {
  nlohmann::json body;
  MOSAIC_HTTP_RETURN_IF_ERROR(JsonBody(req, raw_body, &body));
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

HttpError Server::PostInteractions(const httplib::Request& req, httplib::Response& res, const std::string& raw_body) {
  nlohmann::json body;
  MOSAIC_HTTP_RETURN_IF_ERROR(JsonBody(req, raw_body, &body));
  std::vector<InteractionRow> parsed;
  MOSAIC_HTTP_RETURN_IF_ERROR(ParseInteractions(body, &parsed));
  const bool many = body.is_array();  // a refusal names "[i].item" in an array, "item" in one object

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
                   many ? "[" + std::to_string(i) + "].item" : "item"};
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
  if (!s.ok()) return FromStatus(s);
  if (!refused.ok()) return refused;
  SendJson(res, 200, {{"stored", items.size()}});
  return {};
}

HttpError Server::Authorize(const httplib::Request& req) const {
  if (token_.empty()) return {};
  const std::string header = req.get_header_value("Authorization");
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
  }
  Configure();
  int port = 0;
  MOSAIC_RETURN_IF_ERROR(Listen(&port));
  const std::string url = "http://" + args_.host + ":" + std::to_string(port);

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

// Limits, timeouts, error replies and the routes.
void Server::Configure() {
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
  // Before routing: API responses ignore Range. httplib would answer a Range header on any endpoint
  // with a partial or multipart response, and a few thousand overlapping ranges multiply a reply's
  // size by as many (RFC 9110 lets a server ignore Range). httplib hands the handler a const Request
  // that is not const; the parsed ranges are cleared so that the reply goes out whole.
  // With --allowed-host, a request naming another Host is refused (a DNS-rebinding page names its own).
  http_.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    auto& request = const_cast<httplib::Request&>(req);
    request.ranges.clear();
    request.headers.erase("Range");
    if (!args_.allowed_hosts.empty()) {
      const std::string host = HostName(req.get_header_value("Host"));
      const bool allowed = std::any_of(args_.allowed_hosts.begin(), args_.allowed_hosts.end(),
                                       [&](const std::string& h) { return HostName(h) == host; });
      if (!allowed) {
        SendError(res, {403, "Host '" + req.get_header_value("Host") + "' is not served here (--allowed-host)", ""});
        res.set_header("Connection", "close");
        metrics_.Record(EndpointLabel(req.path), 403, 0);
        return httplib::Server::HandlerResponse::Handled;
      }
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  http_.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
    SendError(res, {500, "internal error", ""});
  });

  for (const Route& route : Routes()) Register(route, HandlerOf(route));
}

// Binds the port and says where, with the model version it serves.
Status Server::Listen(int* out) {
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
