// Helpers shared by the tests of `mosaic serve` (serve_test.cc, serve_crash_test.cc): a small
// synthetic store with a model, the server as a child process, and raw HTTP for requests that
// httplib::Client will not send (lying Content-Length, bytes that are not UTF-8 in the request line).
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <memory>
#include <set>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "tests/test_util.h"

namespace mosaic::testing {

// ---------------------------------------------------------------------------------------------
// The synthetic catalogue of model_cli_test: 4 genres x 3 artists x 5 songs; 40 listeners, each of
// one genre, playing some of its songs 0-3 (song 4 of each artist is never played: the cold items).

constexpr int kServeGenres = 4, kServeArtists = 3, kServeSongs = 5, kServeUsers = 40;

inline std::string SynthSong(int g, int a, int p) {
  return "song-" + std::to_string(g) + "-" + std::to_string(a) + "-" + std::to_string(p);
}
inline std::string SynthArtist(int g, int a) { return "Artist " + std::to_string(g) + std::to_string(a); }
inline std::string SynthGenre(int g) { return "Genre " + std::to_string(g); }

inline uint32_t SynthMix(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352dU;
  x ^= x >> 15;
  x *= 0x846ca68bU;
  return x ^ (x >> 16);
}

// Imports the synthetic catalogue and plays into a new store `dir` (--no-text), then, when
// epochs > 0, runs `mosaic rebuild --epochs N --seed 1` on it (model version 1). `scratch` is a
// folder for the input files.
inline ::testing::AssertionResult MakeSyntheticStore(const std::string& dir, const std::string& scratch, int epochs) {
  std::string catalogue, plays = "user\titem\tweight\n";
  for (int g = 0; g < kServeGenres; ++g) {
    for (int a = 0; a < kServeArtists; ++a) {
      for (int p = 0; p < kServeSongs; ++p) {
        nlohmann::json j = {{"id", SynthSong(g, a, p)},
                            {"kind", "music"},
                            {"title", "Song " + std::to_string(g) + std::to_string(a) + std::to_string(p)},
                            {"artist", SynthArtist(g, a)},
                            {"genre", SynthGenre(g)}};
        catalogue += j.dump() + "\n";
      }
    }
  }
  for (int u = 0; u < kServeUsers; ++u) {
    const int g = u % kServeGenres;
    for (int a = 0; a < kServeArtists; ++a) {
      for (int p = 0; p < kServeSongs - 1; ++p) {
        const uint32_t h = SynthMix(uint32_t(u * 131 + a * 17 + p));
        if (h % 10 < 6) plays += "u" + std::to_string(u) + "\t" + SynthSong(g, a, p) + "\t" + std::to_string(1 + h % 40) + "\n";
      }
    }
  }
  const std::string cat_file = scratch + "/synthetic-catalogue.jsonl", plays_file = scratch + "/synthetic-plays.tsv";
  WriteFile(cat_file, catalogue);
  WriteFile(plays_file, plays);
  std::vector<std::string> commands = {"import --format jsonl " + Quote(cat_file),
                                       "import --format interactions " + Quote(plays_file)};
  if (epochs > 0) commands.push_back("rebuild --epochs " + std::to_string(epochs) + " --seed 1 --json");
  for (const std::string& args : commands) {
    CommandResult r = RunMosaic("--store " + Quote(dir) + " --no-text " + args);
    if (r.exit_code != 0) return ::testing::AssertionFailure() << args << "\n" << Describe(r);
  }
  return ::testing::AssertionSuccess();
}

// ---------------------------------------------------------------------------------------------
// The server as a child process.

inline double SecondsSince(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

class ServerProcess {
 public:
  ServerProcess() = default;
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;
  ~ServerProcess() { Kill(); }

  // Starts `mosaic --store STORE --no-text serve --port 0 --json EXTRA...` with its stdout and
  // stderr in files beside the store, and waits (up to timeout_s) for its first stdout line, the
  // JSON object that names its port.
  ::testing::AssertionResult Start(const std::string& store, const std::vector<std::string>& extra = {},
                                   double timeout_s = 60) {
    Kill();
    static int counter = 0;
    const std::string base = store + ".serve-" + std::to_string(getpid()) + "-" + std::to_string(counter++);
    out_path_ = base + ".out";
    err_path_ = base + ".err";
    std::vector<std::string> args = {MOSAIC_BINARY, "--store", store, "--no-text", "serve", "--port", "0", "--json"};
    args.insert(args.end(), extra.begin(), extra.end());
    command_.clear();
    for (const auto& a : args) command_ += (command_.empty() ? "" : " ") + a;
    const pid_t pid = Spawn(args, out_path_, err_path_);
    if (pid < 0) return ::testing::AssertionFailure() << "fork: " << std::strerror(errno);
    pid_ = pid;
    const auto start = std::chrono::steady_clock::now();
    while (SecondsSince(start) < timeout_s) {
      const std::string out = ReadFile(out_path_);
      const size_t nl = out.find('\n');
      if (nl != std::string::npos) {
        hello_ = nlohmann::json::parse(out.substr(0, nl), nullptr, false);
        if (!hello_.is_object() || !hello_.contains("port") || !hello_["port"].is_number_integer()) {
          return ::testing::AssertionFailure() << command_ << ": the first stdout line is not the JSON object naming "
                                               << "its port: " << out.substr(0, nl) << "\n--- stderr:\n" << Stderr();
        }
        port_ = hello_["port"].get<int>();
        startup_seconds_ = SecondsSince(start);
        return ::testing::AssertionSuccess();
      }
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return ::testing::AssertionFailure() << command_ << " exited before listening (" << DescribeStatus(status)
                                             << ")\n--- stdout:\n" << out << "\n--- stderr:\n" << Stderr();
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return ::testing::AssertionFailure() << command_ << " printed no line in " << timeout_s << " s\n--- stderr:\n"
                                         << Stderr();
  }

  // SIGTERM, then waits up to timeout_s for it to exit; success when it exits with status 0.
  ::testing::AssertionResult Stop(double timeout_s = 30) {
    if (pid_ <= 0) return ::testing::AssertionFailure() << "the server is not running";
    kill(pid_, SIGTERM);
    const auto start = std::chrono::steady_clock::now();
    int status = 0;
    while (waitpid(pid_, &status, WNOHANG) != pid_) {
      if (SecondsSince(start) > timeout_s) {
        Kill();
        return ::testing::AssertionFailure() << "the server did not stop within " << timeout_s << " s of SIGTERM";
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    pid_ = -1;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      return ::testing::AssertionFailure() << "after SIGTERM the server " << DescribeStatus(status) << "\n--- stderr:\n"
                                           << Stderr();
    }
    return ::testing::AssertionSuccess();
  }

  // SIGKILL and reap (no-op when not running).
  void Kill() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
  }

  bool running() const { return pid_ > 0; }
  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  const nlohmann::json& hello() const { return hello_; }
  double startup_seconds() const { return startup_seconds_; }
  std::string Stderr() const { return ReadFile(err_path_); }

  std::unique_ptr<httplib::Client> Client(int timeout_s = 30) const {
    auto c = std::make_unique<httplib::Client>("127.0.0.1", port_);
    c->set_tcp_nodelay(true);  // a POST body must not wait for a delayed ACK
    c->set_connection_timeout(5, 0);
    c->set_read_timeout(timeout_s, 0);
    c->set_write_timeout(timeout_s, 0);
    return c;
  }

  static std::string DescribeStatus(int status) {
    if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
    if (WIFSIGNALED(status)) return std::string("was killed by signal ") + strsignal(WTERMSIG(status));
    return "status " + std::to_string(status);
  }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
  double startup_seconds_ = 0;
  nlohmann::json hello_;
  std::string out_path_, err_path_, command_;
};

// The lines of dump `b` that are not in `a` ("+ ") and of `a` not in `b` ("- "), at most `max_lines`
// of each, cut at 300 characters: what a failed comparison of two DumpStore()s should show.
inline std::string DiffLines(const std::string& a, const std::string& b, size_t max_lines = 20) {
  auto split = [](const std::string& s) {
    std::multiset<std::string> lines;
    size_t start = 0;
    while (start < s.size()) {
      size_t end = s.find('\n', start);
      if (end == std::string::npos) end = s.size();
      lines.insert(s.substr(start, end - start));
      start = end + 1;
    }
    return lines;
  };
  const auto la = split(a), lb = split(b);
  std::string out;
  auto show = [&](const std::multiset<std::string>& from, const std::multiset<std::string>& other, const char* sign) {
    size_t shown = 0, total = 0;
    for (const auto& line : from) {
      if (other.count(line)) continue;
      if (++total <= max_lines) out += sign + (line.size() > 300 ? line.substr(0, 300) + "..." : line) + "\n";
    }
    if (total > max_lines) out += "(" + std::to_string(total - max_lines) + " more " + sign + "lines)\n";
    (void)shown;
  };
  show(la, lb, "- ");
  show(lb, la, "+ ");
  return out;
}

// ---------------------------------------------------------------------------------------------
// Raw HTTP.

struct RawResponse {
  int status = 0;          ///< 0 when no status line came back
  std::string headers;     ///< the header block, lowercased names as sent
  std::string body;
  std::string error;       ///< what went wrong on the socket, if anything
};

// A TCP connection to 127.0.0.1:port; -1 when it cannot be made.
inline int Connect(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(uint16_t(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Whether the server closed `fd` (end of stream or reset) within timeout_s; bytes it sent are skipped.
inline bool ClosedByServer(int fd, double timeout_s) {
  const auto start = std::chrono::steady_clock::now();
  while (SecondsSince(start) < timeout_s) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) continue;
    char buf[4096];
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return true;
  }
  return false;
}

// Sends `request` (bytes as they are) to 127.0.0.1:port, then `tail` bytes of 'x' (a body the
// headers may announce as longer), half-closes when `half_close`, and reads the response until the
// server closes or its Content-Length is complete (up to timeout_s).
inline RawResponse RawHttp(int port, const std::string& request, size_t tail = 0, bool half_close = false,
                           double timeout_s = 30) {
  RawResponse r;
  const int fd = Connect(port);
  if (fd < 0) {
    r.error = std::string("connect: ") + std::strerror(errno);
    return r;
  }
  auto send_all = [&](const char* p, size_t n) {
    while (n > 0) {
      const ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
      if (w <= 0) return false;  // the server may refuse before reading it all: not an error here
      p += w;
      n -= size_t(w);
    }
    return true;
  };
  bool sent = send_all(request.data(), request.size());
  if (sent && tail > 0) {
    const std::string chunk(64 * 1024, 'x');
    for (size_t left = tail; sent && left > 0;) {
      const size_t n = std::min(left, chunk.size());
      sent = send_all(chunk.data(), n);
      left -= n;
    }
  }
  if (half_close) shutdown(fd, SHUT_WR);
  std::string in;
  const auto start = std::chrono::steady_clock::now();
  size_t want = std::string::npos;  // total bytes when the headers are complete
  while (SecondsSince(start) < timeout_s) {
    pollfd p{fd, POLLIN, 0};
    const int ready = poll(&p, 1, 100);
    if (ready < 0) break;
    if (ready == 0) continue;
    char buf[65536];
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n < 0) {
      r.error = std::string("recv: ") + std::strerror(errno);
      break;
    }
    if (n == 0) break;
    in.append(buf, size_t(n));
    const size_t end = in.find("\r\n\r\n");
    if (want == std::string::npos && end != std::string::npos) {
      std::string lower = in.substr(0, end);
      for (auto& c : lower) c = char(std::tolower(static_cast<unsigned char>(c)));
      const size_t cl = lower.find("\r\ncontent-length:");
      if (cl != std::string::npos) want = end + 4 + std::stoull(lower.substr(cl + 17));
    }
    if (want != std::string::npos && in.size() >= want) break;
  }
  close(fd);
  const size_t end = in.find("\r\n\r\n");
  if (in.rfind("HTTP/1.", 0) == 0 && in.size() > 12) r.status = std::atoi(in.c_str() + 9);
  if (end != std::string::npos) {
    r.headers = in.substr(0, end);
    r.body = in.substr(end + 4);
  } else {
    r.headers = in;
  }
  if (r.status == 0 && r.error.empty()) r.error = in.empty() ? "no response" : "no status line: " + Escape(in.substr(0, 200));
  return r;
}

}  // namespace mosaic::testing
