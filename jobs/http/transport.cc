#include "jobs/http/transport.h"

#include <sys/resource.h>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/optional.hpp>

#include <atomic>
#include <mutex>
#include <unordered_set>
#include <optional>
#include <thread>
#include <vector>

namespace mosaic::jobs::http {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

using Parser = bhttp::request_parser<bhttp::string_body>;

void ConfigureParser(const TransportLimits& limits, Parser* parser) {
  parser->header_limit(static_cast<std::uint32_t>(limits.max_header_bytes));
  parser->body_limit(boost::optional<std::uint64_t>(limits.max_body));
}

// A parse error as the refusal the client gets.
HttpError FromParseError(const beast::error_code& ec, const TransportLimits& limits) {
  if (ec == bhttp::error::body_limit) {
    return {413, "the body is larger than " + std::to_string(limits.max_body) + " bytes", ""};
  }
  if (ec == bhttp::error::header_limit) {
    return {431, "the request line and headers are larger than " + std::to_string(limits.max_header_bytes) + " bytes",
            ""};
  }
  return {400, "malformed HTTP request: " + ec.message(), ""};
}

// The head of a parsed message (method, target, headers) into *req; the body is moved in later.
HttpError FromHead(const bhttp::request<bhttp::string_body>& m, const TransportLimits& limits, Request* req) {
  req->method = std::string(m.method_string());
  req->target = std::string(m.target());
  req->headers.clear();
  for (const auto& field : m) {
    if (req->headers.size() == limits.max_header_fields) {
      return {431, "more than " + std::to_string(limits.max_header_fields) + " header fields", ""};
    }
    req->headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  }
  return DecodeTarget(req->target, req);
}

// Whether `ec` only says that the peer went away (nothing to answer, nothing to count).
bool PeerLeft(const beast::error_code& ec) {
  return ec == bhttp::error::end_of_stream || ec == asio::error::eof || ec == asio::error::connection_reset ||
         ec == asio::error::broken_pipe || ec == asio::error::operation_aborted || ec == asio::error::bad_descriptor;
}

}  // namespace

namespace {
class Connection;
}  // namespace

struct Transport::Impl {
  Impl(const TransportLimits& l, Handler h, Refusal r)
      : limits(l), handler(std::move(h)), refusal(std::move(r)), ioc(std::max(1, l.threads)),
        acceptor(asio::make_strand(ioc)), retry(acceptor.get_executor()) {}

  void Accept();
  void OnAccept(const beast::error_code& ec, tcp::socket socket);

  TransportLimits limits;
  const Handler handler;
  const Refusal refusal;
  std::atomic<uint64_t> open{0}, accepted{0}, refused_at_capacity{0}, timed_out{0}, refused_requests{0};
  std::atomic<bool> stopping{false};
  std::mutex live_mu;
  std::unordered_set<Connection*> live;  // every connection, for Stop() to close the idle ones
  // Declared after what connections use: the io_context destroys the connections still queued in it.
  asio::io_context ioc;
  tcp::acceptor acceptor;
  asio::steady_timer retry;  // accepting again after the process ran out of file descriptors
};

namespace {

// One client connection: reads a request, runs the handler, writes the reply, and again while the
// connection is kept alive. Every step runs on the connection's strand; the object lives as long as
// an operation of it is pending.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(tcp::socket socket, Transport::Impl* transport)
      : stream_(std::move(socket)), transport_(transport), limits_(transport->limits),
        buffer_(limits_.max_header_bytes + 128 * 1024) {
    ++transport_->open;
    std::lock_guard<std::mutex> lock(transport_->live_mu);
    transport_->live.insert(this);
  }
  ~Connection() {
    --transport_->open;
    std::lock_guard<std::mutex> lock(transport_->live_mu);
    transport_->live.erase(this);
  }

  // On the connection's strand: closes it when it is waiting for a request (Stop()).
  void CloseIfIdle() {
    asio::dispatch(stream_.get_executor(), [self = shared_from_this()] {
      if (!self->waiting_ || self->parser_->got_some()) return;
      beast::error_code ignored;
      self->stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
      self->stream_.cancel();
    });
  }

  void Start() {
    asio::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->ReadHead(); });
  }

 private:
  void ReadHead() {
    if (transport_->stopping) return;  // a Stop() came while the last reply was being written
    waiting_ = true;
    parser_.emplace();
    ConfigureParser(limits_, &*parser_);
    request_ = Request();
    // One deadline for the whole head, counted from now: an idle keep-alive connection and a client
    // that sends its headers a byte at a time are both closed when it passes.
    stream_.expires_after(limits_.head_timeout);
    bhttp::async_read_header(stream_, buffer_, *parser_,
                             [self = shared_from_this()](beast::error_code ec, size_t) { self->OnHead(ec); });
  }

  void OnHead(const beast::error_code& ec) {
    waiting_ = false;
    if (ec) return Failed(ec);
    HttpError e = FromHead(parser_->get(), limits_, &request_);
    if (!e.ok()) return Refuse(e);
    if (beast::iequals(parser_->get()[bhttp::field::expect], "100-continue")) {
      continue_.emplace(bhttp::status::continue_, parser_->get().version());
      stream_.expires_after(limits_.write_timeout);
      bhttp::async_write(stream_, *continue_, [self = shared_from_this()](beast::error_code ec, size_t) {
        if (ec) return self->Failed(ec);
        self->ReadBody();
      });
      return;
    }
    ReadBody();
  }

  void ReadBody() {
    if (parser_->is_done()) return OnBody({});
    stream_.expires_after(limits_.body_timeout);
    bhttp::async_read(stream_, buffer_, *parser_,
                      [self = shared_from_this()](beast::error_code ec, size_t) { self->OnBody(ec); });
  }

  void OnBody(const beast::error_code& ec) {
    if (ec) return Failed(ec);
    keep_alive_ = parser_->get().keep_alive();
    head_only_ = parser_->get().method() == bhttp::verb::head;
    request_.body = std::move(parser_->get().body());
    parser_.reset();
    stream_.expires_never();  // the handler's time is not the client's
    auto pending = std::make_shared<PendingReply>(shared_from_this());
    Transport::Reply reply = [pending](Response res) { pending->Answer(std::move(res)); };
    try {
      transport_->handler(request_, reply);
    } catch (...) {  // an escape would end the thread's io_context::run, and the process with it
      Response res;
      res.status = 500;
      res.body = "{\"error\":\"internal error\"}\n";
      reply(std::move(res));
    }
  }

  // A request's reply to come: the first Answer sends it on the connection's strand. It holds the
  // connection, and work on the io_context so that Run() waits for it after Stop().
  class PendingReply {
   public:
    explicit PendingReply(std::shared_ptr<Connection> connection)
        : connection_(std::move(connection)), work_(asio::make_work_guard(connection_->stream_.get_executor())) {}
    void Answer(Response res) {
      if (answered_.exchange(true)) return;
      // Inline when called from the handler on the strand; queued on the strand from another thread.
      asio::dispatch(connection_->stream_.get_executor(),
                     [connection = connection_, res = std::move(res)]() mutable { connection->Send(std::move(res)); });
      work_.reset();
    }

   private:
    std::shared_ptr<Connection> connection_;
    asio::executor_work_guard<beast::tcp_stream::executor_type> work_;
    std::atomic<bool> answered_{false};
  };

  // A read or write failed: a timeout or a departed peer closes quietly; a malformed request is refused.
  void Failed(const beast::error_code& ec) {
    if (ec == beast::error::timeout) {
      ++transport_->timed_out;
      return;  // Beast closed the socket; the last reference goes with this call
    }
    if (PeerLeft(ec) || ec.category() != bhttp::make_error_code(bhttp::error::end_of_stream).category()) return;
    if (parser_ && parser_->is_header_done() && request_.method.empty()) {
      (void)FromHead(parser_->get(), limits_, &request_);  // for the refusal's metrics label
    }
    Refuse(FromParseError(ec, limits_));
  }

  // Refuses the request before the handler; the connection closes after the reply (its input may
  // hold the rest of an unread body).
  void Refuse(const HttpError& e) {
    ++transport_->refused_requests;
    keep_alive_ = false;
    head_only_ = false;
    Response res;
    transport_->refusal(request_, e, &res);
    res.close = true;
    Send(std::move(res));
  }

  void Send(Response res) {
    reply_ = {};
    reply_.version(11);
    reply_.result(static_cast<unsigned>(res.status));
    reply_.set(bhttp::field::content_type, res.content_type);
    for (const auto& [name, value] : res.headers) reply_.insert(name, value);
    reply_.body() = std::move(res.body);  // a reply can be large (k=1000 with explanations): no copy
    reply_.prepare_payload();
    if (head_only_) reply_.body().clear();  // HEAD: the length of the reply GET would give, no content
    reply_.keep_alive(keep_alive_ && !res.close && !transport_->stopping);
    stream_.expires_after(limits_.write_timeout);
    bhttp::async_write(stream_, reply_, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec == beast::error::timeout) ++self->transport_->timed_out;
      if (ec) return;
      if (self->reply_.keep_alive()) return self->ReadHead();
      self->Linger();
    });
  }

  // Closes after a reply: our half first, then the client's input is read and dropped until it
  // closes too or `linger` passes, so that the client reads the reply before a reset (a close with
  // unread input resets the connection, and the reset can discard the reply on the client's side).
  void Linger() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.expires_after(limits_.linger);
    Drain();
  }
  void Drain() {
    stream_.async_read_some(asio::buffer(drain_), [self = shared_from_this()](beast::error_code ec, size_t) {
      if (!ec) self->Drain();
    });
  }

  beast::tcp_stream stream_;
  Transport::Impl* transport_;
  const TransportLimits& limits_;
  beast::flat_buffer buffer_;
  std::optional<Parser> parser_;
  std::optional<bhttp::response<bhttp::empty_body>> continue_;
  Request request_;
  bhttp::response<bhttp::string_body> reply_;
  bool keep_alive_ = false;
  bool head_only_ = false;
  bool waiting_ = false;  ///< reading a request's head (idle, or part of it received)
  char drain_[4096];
};

// The reply to a connection beyond max_connections, written at once on the new socket (small enough
// for its send buffer) before it is closed.
constexpr char kAtCapacity[] =
    "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\nConnection: close\r\n"
    "Content-Length: 60\r\n\r\n{\"error\":\"too many open connections: try again in a moment\"}";

}  // namespace

void Transport::Impl::Accept() {
  acceptor.async_accept(asio::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
    OnAccept(ec, std::move(socket));
  });
}

void Transport::Impl::OnAccept(const beast::error_code& ec, tcp::socket socket) {
  if (ec == asio::error::operation_aborted || !acceptor.is_open() || stopping) return;
  if (ec) {
    // Out of file descriptors (or another passing failure): wait a moment rather than spin.
    retry.expires_after(std::chrono::milliseconds(50));
    retry.async_wait([this](beast::error_code wait) {
      if (!wait) Accept();
    });
    return;
  }
  if (open >= limits.max_connections) {
    ++refused_at_capacity;
    beast::error_code ignored;
    socket.non_blocking(true, ignored);
    socket.write_some(asio::buffer(kAtCapacity, sizeof kAtCapacity - 1), ignored);
    socket.shutdown(tcp::socket::shutdown_both, ignored);
    socket.close(ignored);
  } else {
    ++accepted;
    beast::error_code ignored;
    // Headers and body go out in one write, but without this a reply can wait for the client's delayed ACK.
    socket.set_option(tcp::no_delay(true), ignored);
    std::make_shared<Connection>(std::move(socket), this)->Start();
  }
  Accept();
}

Transport::Transport(const TransportLimits& limits, Handler handler, Refusal refusal)
    : impl_(std::make_unique<Impl>(limits, std::move(handler), std::move(refusal))) {}

Transport::~Transport() = default;

const TransportLimits& Transport::limits() const { return impl_->limits; }

Status Transport::Listen(const std::string& host, int port, int* bound) {
  // Each connection is a file descriptor: make room for max_connections of them (and the store's files).
  constexpr rlim_t kReserve = 256;
  rlimit files{};
  if (::getrlimit(RLIMIT_NOFILE, &files) == 0) {
    const rlim_t wanted = rlim_t(impl_->limits.max_connections) + kReserve;
    if (files.rlim_cur != RLIM_INFINITY && files.rlim_cur < wanted) {
      files.rlim_cur = files.rlim_max == RLIM_INFINITY ? wanted : std::min(wanted, files.rlim_max);
      ::setrlimit(RLIMIT_NOFILE, &files);
      ::getrlimit(RLIMIT_NOFILE, &files);
    }
    if (files.rlim_cur != RLIM_INFINITY && files.rlim_cur < wanted) {
      impl_->limits.max_connections = files.rlim_cur > 2 * kReserve ? size_t(files.rlim_cur - kReserve) : kReserve;
    }
  }
  const std::string where = host + ":" + std::to_string(port);
  beast::error_code ec;
  const auto addresses = tcp::resolver(impl_->ioc).resolve(host, std::to_string(port), ec);
  if (ec || addresses.empty()) {
    return Status::IOError("cannot listen on " + where + ": " + (ec ? ec.message() : "no address"));
  }
  const tcp::endpoint endpoint = addresses.begin()->endpoint();
  tcp::acceptor& acceptor = impl_->acceptor;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return Status::IOError("cannot listen on " + where + " (" + ec.message() +
                           "; in use, or not an address of this machine)");
  }
  *bound = acceptor.local_endpoint().port();
  return Status::OK();
}

void Transport::Run() {
  impl_->Accept();
  std::vector<std::thread> threads;
  for (int i = 1; i < std::max(1, impl_->limits.threads); ++i) threads.emplace_back([this] { impl_->ioc.run(); });
  impl_->ioc.run();
  for (std::thread& t : threads) t.join();
}

void Transport::Stop() {
  if (impl_->stopping.exchange(true)) return;
  asio::dispatch(impl_->acceptor.get_executor(), [impl = impl_.get()] {
    beast::error_code ignored;
    impl->acceptor.close(ignored);
    impl->retry.cancel();
  });
  // References are taken under the lock and dropped after it: the last reference to a connection can
  // be ours (its pending read may end meanwhile), and its destructor takes the same lock.
  std::vector<std::shared_ptr<Connection>> connections;
  {
    std::lock_guard<std::mutex> lock(impl_->live_mu);
    connections.reserve(impl_->live.size());
    for (Connection* c : impl_->live) {
      // One whose last reference is going waits in its destructor for this lock: it is skipped.
      if (std::shared_ptr<Connection> alive = c->weak_from_this().lock()) connections.push_back(std::move(alive));
    }
  }
  for (const auto& c : connections) c->CloseIfIdle();
}

void Transport::Abort() { impl_->ioc.stop(); }

TransportStats Transport::Stats() const {
  TransportStats s;
  s.open_connections = impl_->open;
  s.accepted = impl_->accepted;
  s.refused_at_capacity = impl_->refused_at_capacity;
  s.timed_out = impl_->timed_out;
  s.refused_requests = impl_->refused_requests;
  return s;
}

HttpError ParseRequest(const std::string& bytes, const TransportLimits& limits, Request* req) {
  Parser parser;
  ConfigureParser(limits, &parser);
  parser.eager(true);
  beast::error_code ec;
  asio::const_buffer input(bytes.data(), bytes.size());
  while (!parser.is_done()) {
    const size_t used = parser.put(input, ec);
    input += used;
    if (ec == bhttp::error::need_more || (!ec && used == 0)) {
      // Everything was given: the request ends here.
      ec = {};
      parser.put_eof(ec);
      break;
    }
    if (ec) break;
  }
  if (ec) return FromParseError(ec, limits);
  MOSAIC_HTTP_RETURN_IF_ERROR(FromHead(parser.get(), limits, req));
  req->body = std::move(parser.get().body());
  return {};
}

}  // namespace mosaic::jobs::http
