// mosaic consume against a real redis-server on a loopback port: three producers push 10,000 entries
// while the consumer is killed -9 twice; at the end every entry is applied exactly once, the store
// passes `mosaic check`, and the consumer group has nothing pending.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <thread>

#include "tests/test_util.h"

namespace mosaic {
namespace {

using testing::Quote;
using testing::RunJson;
using testing::RunMosaic;
using testing::TempDir;

const char* kRedisServer = "/usr/bin/redis-server";

// A process started with fork/exec, its output in a file; killed when the object goes.
class Child {
 public:
  ~Child() { Kill(SIGKILL); }
  bool Start(const std::vector<std::string>& args, const std::string& output) {
    pid_ = testing::Spawn(args, output, output, /*append=*/true);
    return pid_ > 0;
  }
  void Kill(int signal) {
    if (pid_ <= 0) return;
    ::kill(pid_, signal);
    Wait();
  }
  // Waits for the exit (up to timeout_s); its status, or -1 when it is still running.
  int Wait(double timeout_s = 30) {
    if (pid_ <= 0) return status_;
    const auto start = std::chrono::steady_clock::now();
    for (;;) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        return status_;
      }
      if (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() > timeout_s) return -1;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

 private:
  pid_t pid_ = -1;
  int status_ = -1;
};

// A hiredis connection for the test's producers and checks.
struct Connection {
  redisContext* c = nullptr;
  explicit Connection(int port) { c = redisConnect("127.0.0.1", port); }
  ~Connection() {
    if (c) redisFree(c);
  }
  bool ok() const { return c && !c->err; }
  // The reply's integer, or -1.
  long long Integer(const std::vector<std::string>& args) {
    std::vector<const char*> argv;
    std::vector<size_t> lengths;
    for (const auto& a : args) {
      argv.push_back(a.data());
      lengths.push_back(a.size());
    }
    auto* r = static_cast<redisReply*>(redisCommandArgv(c, int(argv.size()), argv.data(), lengths.data()));
    long long v = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements > 0 && r->element[0]->type == REDIS_REPLY_INTEGER) {
      v = r->element[0]->integer;  // XPENDING's summary: [count, ...]
    }
    if (r) freeReplyObject(r);
    return v;
  }
  // XINFO GROUPS' "entries-read" of the first group (Redis 7), or -1.
  long long EntriesRead(const std::string& stream) {
    auto* r = static_cast<redisReply*>(redisCommand(c, "XINFO GROUPS %s", stream.c_str()));
    long long v = -1;
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements > 0) {
      const redisReply* g = r->element[0];
      for (size_t i = 0; i + 1 < g->elements; i += 2) {
        if (g->element[i]->type == REDIS_REPLY_STRING && std::string(g->element[i]->str) == "entries-read" &&
            g->element[i + 1]->type == REDIS_REPLY_INTEGER) {
          v = g->element[i + 1]->integer;
        }
      }
    }
    if (r) freeReplyObject(r);
    return v;
  }
};

TEST(Consume, EveryEntryOnceThroughTwoKillsAndNothingPending) {
  if (!std::filesystem::exists(kRedisServer)) {
    GTEST_SKIP() << kRedisServer << " is not installed (scripts/setup installs Debian's redis-server)";
  }
  TempDir tmp;
  const int port = testing::FreePort();
  Child redis;
  ASSERT_TRUE(redis.Start({kRedisServer, "--port", std::to_string(port), "--bind", "127.0.0.1", "--save", "",
                           "--appendonly", "no", "--dir", tmp.path().string()},
                          tmp / "redis.log"));
  std::unique_ptr<Connection> check;
  for (int i = 0; i < 200 && !(check && check->ok() && check->Integer({"DBSIZE"}) >= 0); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
    check = std::make_unique<Connection>(port);
  }
  ASSERT_TRUE(check && check->ok()) << testing::ReadFile(tmp / "redis.log");

  // A catalogue of 50 songs; plays name them, and new items arrive through the stream too.
  const std::string store = tmp / "store";
  std::string catalogue;
  for (int s = 0; s < 50; ++s) {
    catalogue += nlohmann::json({{"id", "song-" + std::to_string(s)}, {"kind", "music"}, {"title", "Song " + std::to_string(s)},
                                 {"genre", "Genre " + std::to_string(s % 4)}})
                     .dump() +
                 "\n";
  }
  testing::WriteFile(tmp / "catalogue.jsonl", catalogue);
  ASSERT_EQ(RunMosaic("--store " + Quote(store) + " --no-text import --format jsonl " + Quote(tmp / "catalogue.jsonl")).exit_code, 0);
  const nlohmann::json before = RunJson("--store " + Quote(store) + " --json stats");

  // Three producers, 10,000 entries: unique (user, item) plays, a new item every 500 entries, one bad
  // entry each, and one play sent twice (the same entry content: it changes nothing).
  constexpr int kProducers = 3, kEntries = 10000;
  std::atomic<int> items_sent{0}, plays_sent{0}, bad_sent{0};
  std::vector<std::thread> producers;
  for (int t = 0; t < kProducers; ++t) {
    producers.emplace_back([&, t] {
      Connection c(port);
      const int count = kEntries / kProducers + (t < kEntries % kProducers ? 1 : 0);
      for (int i = 0; i < count; ++i) {
        std::vector<std::string> args = {"XADD", "catalogue", "*"};
        if (i == 7) {
          args.insert(args.end(), {"type", "song", "note", "not a type"});
          ++bad_sent;
        } else if (i % 500 == 250) {
          const nlohmann::json item = {{"id", "new-" + std::to_string(t) + "-" + std::to_string(i)}, {"kind", "music"},
                                       {"title", "New song " + std::to_string(i)}, {"genre", "Genre 1"}};
          args.insert(args.end(), {"type", "item", "json", item.dump()});
          ++items_sent;
        } else if (t == 0 && i == 11) {
          args.insert(args.end(), {"type", "play", "user", "p0-u0", "item", "song-10", "weight", "1", "timestamp",
                                   "1700000010"});  // entry i == 10 again
        } else {
          args.insert(args.end(), {"type", "play", "user", "p" + std::to_string(t) + "-u" + std::to_string(i / 50), "item",
                                   "song-" + std::to_string(i % 50), "weight", std::to_string(1 + i % 5), "timestamp",
                                   std::to_string(1700000000 + i)});
          ++plays_sent;
        }
        c.Integer(args);
        if (i % 200 == 199) std::this_thread::sleep_for(std::chrono::milliseconds(20));  // keeps coming while consumed
      }
    });
  }

  const std::vector<std::string> consume = {MOSAIC_BINARY, "--store", store, "--no-text", "--json", "consume",
                                            "--redis", "127.0.0.1:" + std::to_string(port), "--stream", "catalogue",
                                            "--group", "g", "--consumer", "c1", "--batch", "100", "--block-ms", "100",
                                            "--until-idle", "2"};
  // Killed -9 twice, each time once it has read more of the stream.
  for (long long read_at_least : {1500LL, 5000LL}) {
    Child consumer;
    ASSERT_TRUE(consumer.Start(consume, tmp / "consume.log"));
    const auto start = std::chrono::steady_clock::now();
    while (check->EntriesRead("catalogue") < read_at_least &&
           std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() < 60) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    consumer.Kill(SIGKILL);
    const long long read = check->EntriesRead("catalogue");
    EXPECT_GE(read, read_at_least);
    EXPECT_LT(read, kEntries) << "the consumer was killed after the stream was read: nothing was interrupted";
  }
  for (auto& p : producers) p.join();
  Child last;
  ASSERT_TRUE(last.Start(consume, tmp / "consume.log"));
  ASSERT_EQ(last.Wait(120), 0) << testing::ReadFile(tmp / "consume.log");
  std::printf("the last consumer's summary: %s", testing::ReadFile(tmp / "consume.log").c_str());

  const nlohmann::json after = RunJson("--store " + Quote(store) + " --json stats");
  EXPECT_EQ(after["interactions"].get<long long>(), before["interactions"].get<long long>() + plays_sent.load())
      << "every play once (the play sent twice is one): " << testing::ReadFile(tmp / "consume.log");
  EXPECT_EQ(after["items"].get<long long>(), before["items"].get<long long>() + items_sent.load());
  EXPECT_EQ(check->Integer({"XPENDING", "catalogue", "g"}), 0) << "nothing pending";
  EXPECT_EQ(check->Integer({"HLEN", "catalogue:rejected"}), bad_sent.load()) << "each bad entry rejected once";
  EXPECT_EQ(check->Integer({"XLEN", "catalogue"}), kEntries);
  // Every entry delivered again (a second group reads the stream from its start): nothing changes.
  std::vector<std::string> again = consume;
  again[std::find(again.begin(), again.end(), "g") - again.begin()] = "g2";
  Child second;
  ASSERT_TRUE(second.Start(again, tmp / "consume-again.log"));
  ASSERT_EQ(second.Wait(120), 0) << testing::ReadFile(tmp / "consume-again.log");
  const nlohmann::json summary = nlohmann::json::parse(testing::ReadFile(tmp / "consume-again.log"), nullptr, false);
  EXPECT_EQ(summary.value("already_applied", 0), kEntries) << summary.dump();
  EXPECT_EQ(RunJson("--store " + Quote(store) + " --json stats"), after);
  const testing::CommandResult checked = RunMosaic("--store " + Quote(store) + " check");
  EXPECT_EQ(checked.exit_code, 0) << testing::Describe(checked);
  redis.Kill(SIGTERM);
}

TEST(Consume, BadOptionsAreRefusedWithAMessage) {
  TempDir tmp;
  const testing::CommandResult r =
      RunMosaic("--store " + Quote(tmp / "s") + " consume --redis nowhere --stream x");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("--redis must be HOST:PORT"), std::string::npos) << testing::Describe(r);
  const testing::CommandResult spinning =
      RunMosaic("--store " + Quote(tmp / "s") + " consume --redis 127.0.0.1:6379 --stream x --block-ms 0");
  EXPECT_NE(spinning.err.find("--block-ms must be between 1 and 60000"), std::string::npos) << testing::Describe(spinning);
  EXPECT_FALSE(std::filesystem::exists(tmp / "s")) << "a refused command creates no store";
  const testing::CommandResult unreachable =
      RunMosaic("--store " + Quote(tmp / "s") + " consume --redis 127.0.0.1:" + std::to_string(testing::FreePort()) + " --stream x");
  EXPECT_EQ(unreachable.exit_code, 1) << testing::Describe(unreachable);
  EXPECT_NE(unreachable.err.find("redis 127.0.0.1:"), std::string::npos) << testing::Describe(unreachable);
}

}  // namespace
}  // namespace mosaic
