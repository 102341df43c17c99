// The HTTP transport in process (jobs/http/transport.h): its stop, its timeouts and its bounds, with
// a handler that answers at once and raw sockets for clients.
#include "jobs/http/transport.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tests/serve_util.h"

namespace mosaic::testing {
namespace {

using jobs::http::HttpError;
using jobs::http::Request;
using jobs::http::Response;
using jobs::http::Transport;
using jobs::http::TransportLimits;

// A transport on a free loopback port, run on its own thread until Stop() (or, failing that, Abort()).
class Running {
 public:
  explicit Running(const TransportLimits& limits, Transport::Handler handler = Ok)
      : transport_(limits, std::move(handler), [](const Request&, const HttpError& e, Response* res) {
          res->status = e.status;
          res->body = e.message;
        }) {
    const Status s = transport_.Listen("127.0.0.1", 0, &port_);
    EXPECT_TRUE(s.ok()) << s.ToString();
    done_ = std::async(std::launch::async, [this] { transport_.Run(); });
  }
  ~Running() {
    if (done_.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
      transport_.Abort();
      done_.wait();
    }
  }

  static void Ok(const Request&, Transport::Reply reply) {
    Response res;
    res.body = "ok";
    reply(std::move(res));
  }

  int port() const { return port_; }
  Transport& transport() { return transport_; }
  // Whether Run() returned within timeout_s.
  bool Ended(double timeout_s) {
    return done_.wait_for(std::chrono::duration<double>(timeout_s)) == std::future_status::ready;
  }

 private:
  Transport transport_;
  int port_ = 0;
  std::future<void> done_;
};

// A keep-alive GET on `fd`; whether a 200 came back.
bool GetOk(int fd) {
  const std::string request = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) != ssize_t(request.size())) return false;
  std::string in;
  char buf[1024];
  while (in.find("\r\n\r\nok") == std::string::npos) {
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return false;
    in.append(buf, size_t(n));
  }
  return in.rfind("HTTP/1.1 200", 0) == 0;
}

// The CI run of issue 13 hung here: Stop() dropped its reference to a connection while it held the
// lock that the connection's destructor takes, when that reference was the last one (the connection's
// read had just ended). Each round stops with connections in every state Stop() meets.
TEST(TransportTest, StopClosesWaitingConnectionsAndRunReturns) {
  for (int round = 0; round < 25; ++round) {
    TransportLimits limits;
    limits.threads = 4;
    Running server(limits);
    std::vector<int> fds;
    for (int i = 0; i < 16; ++i) {  // answered once, now waiting for their next request
      fds.push_back(Connect(server.port()));
      ASSERT_TRUE(GetOk(fds.back())) << "round " << round;
    }
    for (int i = 0; i < 16; ++i) fds.push_back(Connect(server.port()));  // never sent anything
    std::thread closing([&] {  // clients that leave while the server stops
      for (int i = 0; i < 8; ++i) close(fds[size_t(i)]);
    });
    server.transport().Stop();
    closing.join();
    ASSERT_TRUE(server.Ended(10)) << "round " << round << ": Run() did not return after Stop()";
    for (size_t i = 8; i < fds.size(); ++i) {
      EXPECT_TRUE(ClosedByServer(fds[i], 1)) << "round " << round << ", connection " << i;
      close(fds[i]);
    }
    EXPECT_EQ(server.transport().Stats().open_connections, 0u);
  }
}

// A request being answered when Stop() comes finishes; its reply says Connection: close.
TEST(TransportTest, RequestInFlightFinishesAfterStop) {
  std::mutex mu;
  std::condition_variable cv;
  bool entered = false, release = false;
  Running server(TransportLimits(), [&](const Request&, Transport::Reply reply) {
    std::unique_lock<std::mutex> lock(mu);
    entered = true;
    cv.notify_all();
    cv.wait(lock, [&] { return release; });
    Response res;
    res.body = "late";
    reply(std::move(res));
  });
  std::future<RawResponse> reply = std::async(std::launch::async, [&] {
    return RawHttp(server.port(), "GET /slow HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 0, false, 10);
  });
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return entered; });
  }
  server.transport().Stop();
  EXPECT_FALSE(server.Ended(0.2)) << "Run() returned with a request in flight";
  {
    std::lock_guard<std::mutex> lock(mu);
    release = true;
  }
  cv.notify_all();
  const RawResponse r = reply.get();
  EXPECT_EQ(r.status, 200) << r.error;
  EXPECT_EQ(r.body, "late");
  EXPECT_NE(r.headers.find("close"), std::string::npos) << r.headers;
  EXPECT_TRUE(server.Ended(10));
}

// A reply handed to another thread (as the server does with writes it commits together): the handler
// returns at once, the connection waits without a thread, Run() waits for it after Stop(), and only
// the first answer is sent.
TEST(TransportTest, ReplyFromAnotherThreadIsSentAndStopWaitsForIt) {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<Transport::Reply> held;
  TransportLimits limits;
  limits.threads = 1;  // the one thread must stay free for the GET while the POST waits
  Running server(limits, [&](const Request& req, Transport::Reply reply) {
    if (req.method == "GET") return Running::Ok(req, std::move(reply));
    std::lock_guard<std::mutex> lock(mu);
    held.push_back(std::move(reply));
    cv.notify_all();
  });
  std::future<RawResponse> deferred = std::async(std::launch::async, [&] {
    return RawHttp(server.port(), "POST /later HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n", 0, false, 10);
  });
  {
    std::unique_lock<std::mutex> lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(10), [&] { return !held.empty(); }));
  }
  const int fd = Connect(server.port());
  ASSERT_GE(fd, 0);
  EXPECT_TRUE(GetOk(fd)) << "a reply waiting on another thread held the only transport thread";
  close(fd);

  server.transport().Stop();
  EXPECT_FALSE(server.Ended(0.2)) << "Run() returned with a reply still to come";
  std::thread answer([&] {
    Response first, second;
    first.body = "committed";
    second.status = 500;
    second.body = "twice";
    std::lock_guard<std::mutex> lock(mu);
    held[0](std::move(first));
    held[0](std::move(second));
    held.clear();
  });
  answer.join();
  const RawResponse r = deferred.get();
  EXPECT_EQ(r.status, 200) << r.error;
  EXPECT_EQ(r.body, "committed");
  EXPECT_TRUE(server.Ended(10));
}

// An idle connection is closed when its head is overdue, and counted as timed out.
TEST(TransportTest, HeadTimeoutClosesAnIdleConnection) {
  TransportLimits limits;
  limits.head_timeout = std::chrono::milliseconds(200);
  Running server(limits);
  const int answered = Connect(server.port());
  ASSERT_TRUE(GetOk(answered));
  const int silent = Connect(server.port());
  EXPECT_TRUE(ClosedByServer(silent, 5));
  EXPECT_TRUE(ClosedByServer(answered, 5));
  close(silent);
  close(answered);
  // The count is taken after the close the client sees: give the server's handler a moment.
  for (int i = 0; i < 200 && server.transport().Stats().timed_out < 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(server.transport().Stats().timed_out, 2u);
  server.transport().Stop();
  EXPECT_TRUE(server.Ended(10));
}

// ParseRequest, the fuzzers' entry: the same bounds as the network path.
TEST(TransportTest, ParseRequestKeepsTheBounds) {
  TransportLimits limits;
  Request req;
  EXPECT_TRUE(jobs::http::ParseRequest("GET /a%20b?k=3 HTTP/1.1\r\nHost: x\r\n\r\n", limits, &req).ok());
  EXPECT_EQ(req.path, "/a b");
  EXPECT_EQ(req.params.find("k")->second, "3");
  std::string many = "GET / HTTP/1.1\r\n";
  for (int i = 0; i < 101; ++i) many += "X-" + std::to_string(i) + ": 1\r\n";
  EXPECT_EQ(jobs::http::ParseRequest(many + "\r\n", limits, &req).status, 431);
  EXPECT_EQ(jobs::http::ParseRequest("GET / HTTP/1.1\r\nX: " + std::string(17 * 1024, 'a') + "\r\n\r\n", limits, &req)
                .status,
            431);
  limits.max_body = 4;
  EXPECT_EQ(jobs::http::ParseRequest("POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nabcde", limits, &req).status, 413);
  EXPECT_EQ(jobs::http::ParseRequest("NOT HTTP\r\n\r\n", limits, &req).status, 400);
}

}  // namespace
}  // namespace mosaic::testing
