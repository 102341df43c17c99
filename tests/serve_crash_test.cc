// Kill -9 during writes, through the binary: 10 runs that SIGKILL `mosaic serve` while a client
// POSTs /items and /interactions in a loop, and 10 that SIGKILL `mosaic ingest` (media from
// ../shared/media, with --meta giving each file KG links) at random moments. After every kill:
//   - `mosaic check` passes on the store (it reopens, its invariants hold);
//   - it holds only whole items: every item present has its key, label, attributes, its KG edges
//     both ways (item -> entity and entity <- item) and, for media, its feature vectors, exactly as
//     written (posted items have known content; ingested ones are compared with a reference store
//     that ingested the same files uninterrupted);
//   - nothing acknowledged is lost: every item and interaction whose POST returned success is
//     there, in this run and all the runs before it (and ingested items stay across runs).
// The store is a small synthetic one with a model (imported with --no-text, rebuilt with 5 epochs),
// so that the server places what it is sent and ingest places what it adds.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "graph/import.h"
#include "store/store.h"
#include "tests/serve_util.h"

namespace mosaic {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using store::Edge;
using store::NodeId;
using store::NodeKind;
using store::NodeRecord;
using store::ReadView;
using testing::CommandResult;
using testing::Describe;
using testing::Quote;
using testing::RunMosaic;
using testing::SecondsSince;
using testing::ServerProcess;
using testing::TempDir;
using testing::WriteFile;

constexpr int kRuns = 10;  // of each kind

// ---------------------------------------------------------------------------------------------
// Reading an item back, as a JSON description that two stores can be compared by: everything the
// item's write put in the store, with node ids replaced by keys.

struct Described {
  bool ok = false;
  std::string problem;  ///< why the item is not whole (edges missing one way, unreadable records)
  json item;            ///< {"key","label","attributes","links":[[relation, entity key]...],"features":{...}}
};

Described DescribeItem(const ReadView& view, NodeId id) {
  Described d;
  NodeRecord r;
  if (Status s = view.GetNode(id, &r); !s.ok()) {
    d.problem = "GetNode: " + s.ToString();
    return d;
  }
  std::map<store::RelationId, std::string> relations;
  if (Status s = view.ListRelations(&relations); !s.ok()) {
    d.problem = "ListRelations: " + s.ToString();
    return d;
  }
  json links = json::array();
  std::vector<std::string> problems;
  Status s = view.ForEachOutEdge(id, [&](const Edge& e) {
    const std::string rel = relations.count(e.relation) ? relations[e.relation] : "?" + std::to_string(e.relation);
    NodeRecord other;
    if (!view.GetNode(e.dst, &other).ok()) {
      problems.push_back("edge " + rel + " to a missing node " + std::to_string(e.dst));
      return true;
    }
    // The same triple the other way: the entity's in-edges hold the item.
    bool back = false;
    Status sb = view.ForEachInEdge(e.dst, [&](const Edge& in) {
      if (in.src == id && in.relation == e.relation) back = true;
      return !back;
    });
    if (!sb.ok() || !back) problems.push_back("edge " + rel + " -> " + other.key + " has no reverse");
    links.push_back({rel, other.key});
    return true;
  });
  if (!s.ok()) problems.push_back("ForEachOutEdge: " + s.ToString());
  std::sort(links.begin(), links.end());
  json features = json::object();
  s = view.ForEachFeature(id, [&](const std::string& modality, const store::FeatureVector& f) {
    // The model's placement of a new item is written after the item, in a batch of its own (and
    // depends on which items are placed together): not part of the item's write.
    if (modality == "model") return true;
    features[modality] = {{"extractor", f.extractor}, {"version", f.version}, {"values", f.values}, {"source", f.source}};
    return true;
  });
  if (!s.ok()) problems.push_back("ForEachFeature: " + s.ToString());
  json attributes = r.attributes.empty() ? json::object() : json::parse(r.attributes, nullptr, false);
  if (attributes.is_discarded()) problems.push_back("attributes are not JSON: " + r.attributes);
  d.item = {{"key", r.key}, {"label", r.label}, {"attributes", attributes}, {"links", links}, {"features", features}};
  for (const auto& p : problems) d.problem += (d.problem.empty() ? "" : "; ") + p;
  d.ok = problems.empty();
  return d;
}

// What differs between two item descriptions, field by field, each value cut short.
std::string DiffItems(const json& got, const json& expected) {
  auto cut = [](const json& j) {
    const std::string s = j.dump();
    return s.size() > 300 ? s.substr(0, 300) + "..." : s;
  };
  std::string out;
  std::set<std::string> keys;
  for (auto& [k, v] : got.items()) keys.insert(k);
  for (auto& [k, v] : expected.items()) keys.insert(k);
  for (const auto& k : keys) {
    const json a = got.contains(k) ? got[k] : json(), b = expected.contains(k) ? expected[k] : json();
    if (a == b) continue;
    if (a.is_object() && b.is_object()) {
      out += k + ": {" + DiffItems(a, b) + "} ";
    } else {
      out += k + ": got " + cut(a) + ", expected " + cut(b) + "; ";
    }
  }
  return out;
}

// The items of a view whose key starts with `prefix`, by key.
std::map<std::string, NodeId> ItemsWithPrefix(const ReadView& view, const std::string& prefix) {
  std::map<std::string, NodeId> items;
  Status s = view.ForEachNode([&](NodeId id, const NodeRecord& r) {
    if (r.kind == NodeKind::kItem && r.key.rfind(prefix, 0) == 0) items[r.key] = id;
    return true;
  });
  EXPECT_TRUE(s.ok()) << s.ToString();
  return items;
}

// Opens `dir` read-only (no process may be writing it).
std::unique_ptr<store::Store> OpenReadOnly(const std::string& dir) {
  std::unique_ptr<store::Store> st;
  store::OpenOptions o;
  o.read_only = true;
  Status s = store::Store::Open(dir, o, &st);
  EXPECT_TRUE(s.ok()) << "reopening " << dir << ": " << s.ToString();
  return st;
}

::testing::AssertionResult CheckPasses(const std::string& dir) {
  CommandResult r = RunMosaic("--store " + Quote(dir) + " check");
  if (r.exit_code != 0) return ::testing::AssertionFailure() << "mosaic check:\n" << Describe(r);
  return ::testing::AssertionSuccess();
}

// ---------------------------------------------------------------------------------------------
// Posted items: what item n of run r is, and what the store must then hold for it.

json PostedItem(int run, int n) {
  return {{"id", "crash-" + std::to_string(run) + "-" + std::to_string(n)},
          {"kind", n % 2 ? "music" : "video"},
          {"title", "Crash Piece " + std::to_string(run) + "." + std::to_string(n)},
          {"description", "Posted in run " + std::to_string(run) + " as number " + std::to_string(n)},
          {"year", 1990 + n % 30},
          {"artist", testing::SynthArtist(n % testing::kServeGenres, n % testing::kServeArtists)},
          {"genre", testing::SynthGenre(n % testing::kServeGenres)},
          // a shared tag, and one entity that only this item names (created in the same write)
          {"tags", {"take " + std::to_string(n % 5), "only " + std::to_string(run) + "-" + std::to_string(n)}}};
}

// The description DescribeItem must give of posted item `j` (features aside: the server may add a
// text embedding or none).
json ExpectedDescription(const json& j) {
  json links = json::array();
  auto add = [&](const std::string& field, const std::string& value) {
    const std::string rel = graph::RelationForField(field);
    links.push_back({rel, graph::EntityKey(rel, value)});
  };
  add("artist", j["artist"]);
  add("genre", j["genre"]);
  for (const auto& t : j["tags"]) add("tags", t);
  std::sort(links.begin(), links.end());
  json attributes = {{"title", j["title"]}, {"description", j["description"]}, {"kind", j["kind"]}, {"year", j["year"]}};
  return {{"key", j["id"]}, {"label", j["title"]}, {"attributes", attributes}, {"links", links}};
}

// Parses "crash-R-N"; false when the key is not one of ours.
bool ParsePostedKey(const std::string& key, int* run, int* n) {
  return std::sscanf(key.c_str(), "crash-%d-%d", run, n) == 2 && key == "crash-" + std::to_string(*run) + "-" + std::to_string(*n);
}

struct Acknowledged {
  std::set<std::string> items;                                  ///< keys whose POST /items succeeded
  std::map<std::pair<std::string, std::string>, double> plays;  ///< (user, item) -> weight, POST /interactions succeeded
  std::set<std::string> shown;                                  ///< keys whose POST /impressions succeeded
};

// What the client thread of one run saw.
struct ClientLog {
  int posted = 0, acknowledged = 0;
  int refused = 0;            ///< a response that was not a success (a server bug: reported)
  std::vector<std::string> refusals;
  bool cut_in_flight = false; ///< a request was in flight when the server died
};

// POSTs items and their plays until the server stops answering or `stop` is set.
void ClientLoop(int port, int run, std::atomic<bool>* stop, ClientLog* log, Acknowledged* ack, std::mutex* mu) {
  httplib::Client c("127.0.0.1", port);
  c.set_connection_timeout(2, 0);
  c.set_read_timeout(30, 0);
  c.set_write_timeout(30, 0);
  for (int n = 0; !stop->load(); ++n) {
    const json item = PostedItem(run, n);
    ++log->posted;
    auto res = c.Post("/items", item.dump(), "application/json");
    if (!res) {
      log->cut_in_flight = true;
      return;
    }
    if (res->status != 201) {
      ++log->refused;
      log->refusals.push_back("POST /items " + item["id"].get<std::string>() + ": " + std::to_string(res->status) + " " +
                              res->body.substr(0, 200));
      continue;
    }
    {
      std::lock_guard<std::mutex> lock(*mu);
      ack->items.insert(item["id"]);
      ++log->acknowledged;
    }
    const std::string user = "u" + std::to_string((run * 7 + n) % testing::kServeUsers);
    const double weight = 1 + (n % 9);
    const json play = {{"user", user}, {"item", item["id"]}, {"weight", weight}, {"timestamp", 1700000000 + n}};
    auto pres = c.Post("/interactions", play.dump(), "application/json");
    if (!pres) {
      log->cut_in_flight = true;
      return;
    }
    if (pres->status != 200) {
      ++log->refused;
      log->refusals.push_back("POST /interactions " + play.dump() + ": " + std::to_string(pres->status) + " " +
                              pres->body.substr(0, 200));
      continue;
    }
    {
      std::lock_guard<std::mutex> lock(*mu);
      ack->plays[{user, item["id"]}] = weight;
    }
    // The item was shown to the user once (one request id each): its exposure counts it once.
    const json shown = {{"request", "crash-" + std::to_string(run) + "-" + std::to_string(n)},
                        {"user", user},
                        {"items", {item["id"]}}};
    auto sres = c.Post("/impressions", shown.dump(), "application/json");
    if (!sres) {
      log->cut_in_flight = true;
      return;
    }
    if (sres->status != 200) {
      ++log->refused;
      log->refusals.push_back("POST /impressions " + shown.dump() + ": " + std::to_string(sres->status) + " " +
                              sres->body.substr(0, 200));
      continue;
    }
    std::lock_guard<std::mutex> lock(*mu);
    ack->shown.insert(item["id"]);
  }
}

// Checks the store after a kill: every posted item present is whole and as sent, every acknowledged
// item and play is there. Returns the number of posted items present.
size_t VerifyPosted(const std::string& dir, const Acknowledged& ack, int run) {
  auto st = OpenReadOnly(dir);
  if (!st) return 0;
  auto view = st->NewReadView();
  const auto present = ItemsWithPrefix(*view, "crash-");
  for (const auto& [key, id] : present) {
    SCOPED_TRACE("run " + std::to_string(run) + ", item " + key);
    int r = 0, n = 0;
    if (!ParsePostedKey(key, &r, &n)) {
      ADD_FAILURE() << "an item nobody posted";
      continue;
    }
    const Described d = DescribeItem(*view, id);
    EXPECT_TRUE(d.ok) << d.problem;
    json got = d.item;
    got.erase("features");
    json expected = ExpectedDescription(PostedItem(r, n));
    // Attributes the server adds of its own are allowed; those posted must be as posted.
    for (auto& [k, v] : got["attributes"].items()) {
      if (!expected["attributes"].contains(k)) expected["attributes"][k] = v;
    }
    EXPECT_TRUE(got == expected) << "a partial or altered item: " << DiffItems(got, expected);
  }
  for (const auto& key : ack.items) {
    EXPECT_TRUE(present.count(key)) << "run " << run << ": item " << key << " was acknowledged (201) but is gone";
  }
  // Exposure counters: each posted item was played once and shown once, so at most 1 of each, and
  // exactly 1 when acknowledged (a kill neither loses an acknowledged count nor counts twice).
  for (const auto& [key, id] : present) {
    store::Exposure e;
    EXPECT_TRUE(view->GetExposure(id, &e).ok());
    EXPECT_LE(e.plays, 1u) << key;
    EXPECT_LE(e.impressions, 1u) << key;
    if (ack.shown.count(key)) {
      EXPECT_EQ(e.impressions, 1u) << "run " << run << ": " << key << "'s acknowledged impression";
    }
    bool played = false;
    for (const auto& [pair, weight] : ack.plays) played = played || pair.second == key;
    if (played) {
      EXPECT_EQ(e.plays, 1u) << "run " << run << ": " << key << "'s acknowledged play";
    }
  }
  // Acknowledged plays: the interacted edge user -> item with the weight sent.
  store::RelationId interacted = 0;
  const bool have_rel = view->FindRelation(store::kInteractedRelation, &interacted).ok();
  for (const auto& [pair, weight] : ack.plays) {
    const auto& [user, item] = pair;
    NodeId u = 0;
    bool found = false;
    auto it = present.find(item);
    if (have_rel && it != present.end() && view->FindNode(NodeKind::kUser, user, &u).ok()) {
      Status s = view->ForEachInEdge(it->second, [&](const Edge& e) {
        if (e.src == u && e.relation == interacted && std::abs(e.weight - weight) < 1e-6) found = true;
        return !found;
      });
      EXPECT_TRUE(s.ok()) << s.ToString();
    }
    EXPECT_TRUE(found) << "run " << run << ": the play of " << item << " by " << user << " (weight " << weight
                       << ") was acknowledged (200) but is not in the store";
  }
  return present.size();
}

class ServeCrash : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = tmp_ / "base";
    ASSERT_TRUE(testing::MakeSyntheticStore(base_, tmp_.path().string(), 5));
  }
  TempDir tmp_;
  std::string base_;
};

TEST_F(ServeCrash, SigkillWhilePostingLeavesWholeItemsAndKeepsAcknowledgedOnes) {
  const std::string dir = base_;
  std::mt19937 rng(20261123);
  std::uniform_int_distribution<int> delay_ms(250, 1500);
  Acknowledged ack;
  std::mutex mu;
  int grew = 0, cut = 0;
  size_t before = 0;
  std::vector<std::string> refusals;
  const auto t0 = std::chrono::steady_clock::now();
  for (int run = 0; run < kRuns; ++run) {
    SCOPED_TRACE("serve run " + std::to_string(run));
    ServerProcess server;
    ASSERT_TRUE(server.Start(dir));
    std::atomic<bool> stop{false};
    ClientLog log;
    std::thread client(ClientLoop, server.port(), run, &stop, &log, &ack, &mu);
    const int delay = delay_ms(rng);
    std::this_thread::sleep_for(std::chrono::milliseconds(delay));
    const std::string err = server.Stderr();
    server.Kill();  // SIGKILL, reaped
    stop = true;
    client.join();
    ASSERT_TRUE(CheckPasses(dir)) << "after the kill of run " << run << "; server stderr:\n" << err;
    const size_t now = VerifyPosted(dir, ack, run);
    std::printf("run %d: killed after %d ms; %d items posted, %d acknowledged, %s; %zu posted items in the store\n", run,
                delay, log.posted, log.acknowledged, log.cut_in_flight ? "a request cut in flight" : "none in flight", now);
    EXPECT_GE(now, before);
    grew += now > before;
    cut += log.cut_in_flight;
    before = now;
    refusals.insert(refusals.end(), log.refusals.begin(), log.refusals.end());
    if (HasFatalFailure()) return;
  }
  EXPECT_TRUE(refusals.empty()) << refusals.size() << " valid POSTs were refused, the first: " << refusals.front();
  // The kills must land while writing, or the test proves nothing.
  EXPECT_GE(grew, kRuns / 2);
  EXPECT_GE(cut, kRuns / 2) << "few kills found a request in flight";

  // A server started on the store afterwards serves every acknowledged item.
  ServerProcess server;
  ASSERT_TRUE(server.Start(dir));
  auto c = server.Client();
  auto health = c->Get("/health");
  ASSERT_TRUE(health && health->status == 200);
  int checked = 0;
  for (const auto& key : ack.items) {
    if (checked++ % 7) continue;  // a sample
    auto r = c->Get(("/similar?item=" + key + "&k=3").c_str());
    EXPECT_TRUE(r && r->status == 200) << key << ": " << (r ? std::to_string(r->status) + " " + r->body : httplib::to_string(r.error()));
  }
  EXPECT_TRUE(server.Stop());
  EXPECT_TRUE(CheckPasses(dir));
  std::printf("%d serve runs in %.1f s: %zu items acknowledged in all, %zu plays\n", kRuns, SecondsSince(t0),
              ack.items.size(), ack.plays.size());
}

// ---------------------------------------------------------------------------------------------
// mosaic ingest

// The media files of ../shared/media (the copyright files are skipped by ingest itself).
std::vector<std::string> SharedMediaFiles() {
  std::vector<std::string> files;
  const fs::path root = fs::path(MOSAIC_SHARED_DIR) / "media";
  if (!fs::exists(root)) return files;
  static const std::set<std::string> media = {".webm", ".mp4", ".ogg", ".oga", ".wav", ".it", ".xm"};
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    if (e.is_regular_file() && media.count(e.path().extension().string())) files.push_back(e.path().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

pid_t StartIngest(const std::string& dir, const std::string& meta, const std::vector<std::string>& files) {
  std::vector<std::string> args = {MOSAIC_BINARY, "--store", dir, "--no-text", "ingest", "--jobs", "1", "--meta", meta};
  args.insert(args.end(), files.begin(), files.end());
  return testing::Spawn(args, "/dev/null", "/dev/null");
}

TEST_F(ServeCrash, SigkillDuringIngestLeavesWholeItems) {
  const std::vector<std::string> files = SharedMediaFiles();
  if (files.empty()) GTEST_SKIP() << MOSAIC_SHARED_DIR "/media is absent: no media to ingest";
  // --meta: KG links for every file, one of them an entity only that file names.
  std::string meta;
  for (size_t i = 0; i < files.size(); ++i) {
    meta += json({{"path", fs::path(files[i]).filename().string()},
                  {"artist", "Crash Artist " + std::to_string(i % 4)},
                  {"genre", testing::SynthGenre(int(i % testing::kServeGenres))},
                  {"tags", {"crash media", "file " + fs::path(files[i]).filename().string()}}})
                .dump() +
            "\n";
  }
  const std::string meta_file = tmp_ / "meta.jsonl";
  WriteFile(meta_file, meta);

  // The reference: the same files ingested uninterrupted into a copy of the store.
  const std::string ref = tmp_ / "reference";
  fs::copy(base_, ref, fs::copy_options::recursive);
  const auto t_ref = std::chrono::steady_clock::now();
  const pid_t ref_pid = StartIngest(ref, meta_file, files);
  int status = 0;
  ASSERT_EQ(waitpid(ref_pid, &status, 0), ref_pid);
  const double full_s = SecondsSince(t_ref);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "the reference ingest " << ServerProcess::DescribeStatus(status);
  std::map<std::string, json> expected;
  {
    auto st = OpenReadOnly(ref);
    ASSERT_TRUE(st);
    auto view = st->NewReadView();
    for (const auto& [key, id] : ItemsWithPrefix(*view, "sha256:")) {
      const Described d = DescribeItem(*view, id);
      ASSERT_TRUE(d.ok) << key << ": " << d.problem;
      ASSERT_FALSE(d.item["links"].empty()) << key << ": --meta gave it links";
      expected[key] = d.item;
    }
  }
  ASSERT_EQ(expected.size(), files.size()) << "every shared media file is one item";
  std::printf("reference ingest of %zu files: %.1f s\n", files.size(), full_s);

  // The runs: each continues the store of the run before (files already in are skipped), so that the
  // kills land in later and later files; a run that completes resets the store to the base copy.
  const std::string dir = tmp_ / "crash";
  fs::copy(base_, dir, fs::copy_options::recursive);
  std::mt19937 rng(20261124);
  std::set<std::string> had;  // items in the store after the previous run (that must stay)
  int landed = 0, grew = 0;
  for (int run = 0; run < kRuns; ++run) {
    SCOPED_TRACE("ingest run " + std::to_string(run));
    const double left = std::max(0.3, full_s * double(expected.size() - had.size()) / double(expected.size()));
    const int delay = int(std::uniform_real_distribution<double>(0.05, left)(rng) * 1000);
    const pid_t pid = StartIngest(dir, meta_file, files);
    ASSERT_GT(pid, 0);
    const auto start = std::chrono::steady_clock::now();
    bool finished = false;
    while (SecondsSince(start) * 1000 < delay) {
      if (waitpid(pid, &status, WNOHANG) == pid) {
        finished = true;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    if (!finished) {
      kill(pid, SIGKILL);
      ASSERT_EQ(waitpid(pid, &status, 0), pid);
      finished = !WIFSIGNALED(status);  // it may have exited just before the signal
    }
    if (finished) {
      EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << ServerProcess::DescribeStatus(status);
    }
    landed += !finished;

    ASSERT_TRUE(CheckPasses(dir)) << "after run " << run;
    std::set<std::string> now;
    {
      auto st = OpenReadOnly(dir);
      ASSERT_TRUE(st);
      auto view = st->NewReadView();
      for (const auto& [key, id] : ItemsWithPrefix(*view, "sha256:")) {
        now.insert(key);
        auto it = expected.find(key);
        if (it == expected.end()) {
          ADD_FAILURE() << "an item no reference file made: " << key;
          continue;
        }
        const Described d = DescribeItem(*view, id);
        EXPECT_TRUE(d.ok) << key << ": " << d.problem;
        EXPECT_TRUE(d.item == it->second) << key << " differs from the uninterrupted ingest's: " << DiffItems(d.item, it->second);
      }
    }
    for (const auto& key : had) EXPECT_TRUE(now.count(key)) << key << " was in the store before run " << run << " and is gone";
    std::printf("run %d: %s after %d ms; %zu of %zu items in the store\n", run,
                finished ? "finished before the kill" : "killed", delay, now.size(), expected.size());
    grew += now.size() > had.size();
    if (finished) {
      EXPECT_EQ(now.size(), expected.size()) << "a finished ingest left files out";
    }
    had = now;
    if (now.size() == expected.size()) {  // start over, so that the next kill has writes to land in
      fs::remove_all(dir);
      fs::copy(base_, dir, fs::copy_options::recursive);
      had.clear();
    }
    if (HasFatalFailure()) return;
  }
  EXPECT_GE(landed, kRuns / 2) << "most runs finished before their kill";
  EXPECT_GE(grew, kRuns / 3) << "few kills landed after a write";
}

}  // namespace
}  // namespace mosaic
