// The HTTP/1.1 transport of `mosaic serve`, on Boost.Beast and Asio: a fixed set of threads serves
// every connection asynchronously, so a client that sends slowly, or sends nothing, holds a socket and
// a small buffer, never a thread. Each request is read whole within bounds of size and time, then
// handed to the handler on one of those threads; the reply goes back on the same connection, which
// stays open for the next request (keep-alive) unless either side says otherwise.
//
// Routing, authentication and the JSON of replies are the server's (jobs/http/server.cc); the
// transport knows only bytes, limits and connections.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "jobs/http/request.h"
#include "store/status.h"

namespace mosaic::jobs::http {

// Every bound on what a client may send or hold. docs/serving.md lists them with their defaults.
struct TransportLimits {
  int threads = 4;                       ///< threads that read, run handlers and write (handlers may block)
  size_t max_connections = 4096;         ///< open connections; beyond, a new one gets 503 and is closed
  size_t max_header_bytes = 16 * 1024;   ///< request line and headers together (431 beyond)
  size_t max_header_fields = 100;        ///< header fields (431 beyond)
  size_t max_body = size_t(1) << 20;     ///< body bytes, chunked or not (413 beyond)
  std::chrono::milliseconds head_timeout{10000};   ///< from waiting for a request to having its head (else closed)
  std::chrono::milliseconds body_timeout{30000};   ///< from the head to the end of the body (else closed)
  std::chrono::milliseconds write_timeout{30000};  ///< to send a reply (else closed)
  std::chrono::milliseconds linger{2000};  ///< after a refusal that closes: input is read and dropped this long at most
};

// What the transport did since it started, for /metrics.
struct TransportStats {
  uint64_t open_connections = 0;     ///< now
  uint64_t accepted = 0;             ///< connections served
  uint64_t refused_at_capacity = 0;  ///< connections answered 503 because max_connections were open
  uint64_t timed_out = 0;            ///< connections closed because a head, a body or a write took too long
  uint64_t refused_requests = 0;     ///< requests refused before the handler (400, 413, 431)
};

class Transport {
 public:
  // Sends the reply to one request on its connection. The first call counts (later ones do nothing);
  // callable from any thread, at once or later. Until it is called the connection waits without a
  // thread, and Run() does not return after Stop().
  using Reply = std::function<void(Response res)>;
  // Answers one request (read whole, within the limits) through `reply`: on the transport thread it
  // runs on (it may block; the other connections go on on the other threads), or later from another
  // thread that it hands `reply` to (a write waiting to be committed with others). A handler that
  // throws before replying is answered 500.
  using Handler = std::function<void(const Request& req, Reply reply)>;
  // Fills the reply to a request the transport refuses (400 malformed, 413 body, 431 headers).
  // `req` holds what could be read of it: method, target, path and headers when the head was read.
  using Refusal = std::function<void(const Request& req, const HttpError& error, Response* res)>;

  Transport(const TransportLimits& limits, Handler handler, Refusal refusal);
  ~Transport();
  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;

  // Binds host:port (port 0: any free one, stored in *bound) and listens. IOError when it cannot.
  // Raises the process's open-file limit to its hard limit when max_connections needs it, and lowers
  // max_connections to what that limit allows (limits() tells).
  Status Listen(const std::string& host, int port, int* bound);
  // Serves until every connection is gone after Stop(), or until Abort(); returns then.
  void Run();
  // Stops taking connections and closes those waiting for a request; a request being read or
  // answered finishes, its reply saying Connection: close. Thread-safe, idempotent; not
  // async-signal-safe (a signal handler sets a flag that a thread turns into Stop()).
  void Stop();
  // Stops at once: requests in flight are abandoned (for a Stop() that does not end in time).
  void Abort();

  const TransportLimits& limits() const;
  TransportStats Stats() const;

  struct Impl;  // the io_context, the acceptor and the counters (transport.cc), shared with connections

 private:
  std::unique_ptr<Impl> impl_;
};

// Parses `bytes`, one whole request as a client would send it, under `limits`, as a connection does,
// into *req. 400, 413 or 431 as the transport would refuse it. For the fuzzers and tests.
HttpError ParseRequest(const std::string& bytes, const TransportLimits& limits, Request* req);

}  // namespace mosaic::jobs::http
