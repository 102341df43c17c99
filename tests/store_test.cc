#include "store/store.h"

#include <rocksdb/db.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <chrono>
#include <thread>
#include <tuple>
#include <vector>

#include "store/keys.h"
#include "tests/test_util.h"

namespace mosaic::store {
namespace {

using mosaic::testing::TempDir;

std::unique_ptr<Store> OpenNew(const std::string& dir) {
  std::unique_ptr<Store> s;
  OpenOptions o;
  o.create_if_missing = true;
  Status st = Store::Open(dir, o, &s);
  EXPECT_TRUE(st.ok()) << st.ToString();
  return s;
}

// Opens the closed store at `dir` with RocksDB alone and applies `edit` to one column family,
// as another program (or a newer Mosaic) could.
void WithRawColumnFamily(const std::string& dir, const std::string& cf_name,
                         const std::function<rocksdb::Status(rocksdb::DB*, rocksdb::ColumnFamilyHandle*)>& edit) {
  std::vector<std::string> names;
  ASSERT_TRUE(rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), dir, &names).ok());
  std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
  for (auto& n : names) cfs.emplace_back(n, rocksdb::ColumnFamilyOptions());
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* db = nullptr;
  ASSERT_TRUE(rocksdb::DB::Open(rocksdb::DBOptions(), dir, cfs, &handles, &db).ok());
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] == cf_name) {
      EXPECT_TRUE(edit(db, handles[i]).ok());
    }
  }
  for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
  delete db;
}

TEST(StoreTest, OpenMissingStoreIsNotFoundAndCreatesNothing) {
  TempDir tmp;
  std::unique_ptr<Store> s;
  Status st = Store::Open(tmp / "absent", OpenOptions(), &s);
  EXPECT_TRUE(st.IsNotFound()) << st.ToString();
  EXPECT_NE(st.message().find("no Mosaic store"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(tmp / "absent"));
}

TEST(StoreTest, RefusesNonEmptyForeignFolder) {
  TempDir tmp;
  mosaic::testing::WriteFile(tmp / "notes.txt", "hello");
  std::unique_ptr<Store> s;
  OpenOptions o;
  o.create_if_missing = true;
  Status st = Store::Open(tmp.path().string(), o, &s);
  EXPECT_TRUE(st.IsInvalidArgument()) << st.ToString();
}

TEST(StoreTest, SchemaVersionIsCheckedOnOpen) {
  TempDir tmp;
  const std::string dir = tmp / "s";
  OpenNew(dir).reset();
  // Rewrite the version with RocksDB directly, as a future build would.
  WithRawColumnFamily(dir, "meta", [](rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf) {
    return db->Put(rocksdb::WriteOptions(), cf, "schema_version", "99");
  });
  std::unique_ptr<Store> s;
  Status st = Store::Open(dir, OpenOptions(), &s);
  EXPECT_TRUE(st.IsVersionMismatch()) << st.ToString();
  EXPECT_NE(st.message().find("schema version 99"), std::string::npos) << st.ToString();
}

TEST(StoreTest, NodesEdgesAndInteractionsAreStoredBothWays) {
  TempDir tmp;
  auto store = OpenNew(tmp / "s");
  std::unique_ptr<Batch> b;
  ASSERT_OK(store->BeginBatch(&b));
  NodeId user, item, genre;
  bool created = false;
  ASSERT_OK(b->UpsertNode(NodeKind::kUser, "u1", "", &user, &created));
  EXPECT_TRUE(created);
  ASSERT_OK(b->UpsertNode(NodeKind::kItem, "i1", "Sintel", &item));
  ASSERT_OK(b->UpsertNode(NodeKind::kEntity, "genre:fantasy", "Fantasy", &genre));
  NodeId again;
  ASSERT_OK(b->UpsertNode(NodeKind::kItem, "i1", "", &again, &created));
  EXPECT_EQ(again, item);
  EXPECT_FALSE(created);
  RelationId rel;
  ASSERT_OK(b->UpsertRelation("genre", &rel));
  ASSERT_OK(b->AddEdge(item, rel, genre));
  ASSERT_OK(b->AddEdge(item, rel, genre));  // duplicate: no second triple
  Interaction x;
  x.user = user;
  x.item = item;
  x.weight = 7;
  x.timestamp = 1700000000;
  ASSERT_OK(b->PutInteraction(x));

  // Not visible before commit.
  NodeId found;
  EXPECT_TRUE(store->NewReadView()->FindNode(NodeKind::kItem, "i1", &found).IsNotFound());
  ASSERT_OK(b->Commit());
  b.reset();

  auto view = store->NewReadView();
  ASSERT_OK(view->FindNode(NodeKind::kItem, "i1", &found));
  EXPECT_EQ(found, item);
  NodeRecord r;
  ASSERT_OK(view->GetNode(item, &r));
  EXPECT_EQ(r.label, "Sintel");
  std::vector<Edge> out, in;
  ASSERT_OK(view->ForEachOutEdge(item, [&](const Edge& e) { out.push_back(e); return true; }));
  ASSERT_OK(view->ForEachInEdge(genre, [&](const Edge& e) { in.push_back(e); return true; }));
  ASSERT_EQ(out.size(), 1u);
  ASSERT_EQ(in.size(), 1u);
  EXPECT_EQ(in[0].src, item);
  EXPECT_EQ(in[0].dst, genre);
  std::vector<Edge> into_item;
  ASSERT_OK(view->ForEachInEdge(item, [&](const Edge& e) { into_item.push_back(e); return true; }));
  ASSERT_EQ(into_item.size(), 1u);
  EXPECT_EQ(into_item[0].src, user);
  EXPECT_FLOAT_EQ(into_item[0].weight, 7.0f);

  Counters c;
  ASSERT_OK(view->GetCounters(&c));
  EXPECT_EQ(c.nodes[NodeKind::kUser], 1u);
  EXPECT_EQ(c.nodes[NodeKind::kItem], 1u);
  EXPECT_EQ(c.nodes[NodeKind::kEntity], 1u);
  EXPECT_EQ(c.edges[rel], 1u);
  EXPECT_EQ(c.interactions, 1u);
  EXPECT_EQ(c.items_with_interactions, 1u);
  ASSERT_OK(view->CheckConsistency());
}

TEST(StoreTest, ReadViewIsASnapshot) {
  TempDir tmp;
  auto store = OpenNew(tmp / "s");
  std::unique_ptr<Batch> b;
  ASSERT_OK(store->BeginBatch(&b));
  NodeId a;
  ASSERT_OK(b->UpsertNode(NodeKind::kItem, "a", "", &a));
  ASSERT_OK(b->Commit());
  auto before = store->NewReadView();
  NodeId c;
  ASSERT_OK(b->UpsertNode(NodeKind::kItem, "c", "", &c));
  ASSERT_OK(b->Commit());
  NodeId found;
  EXPECT_TRUE(before->FindNode(NodeKind::kItem, "c", &found).IsNotFound());
  EXPECT_OK(store->NewReadView()->FindNode(NodeKind::kItem, "c", &found));
  Counters counters;
  ASSERT_OK(before->GetCounters(&counters));
  EXPECT_EQ(counters.nodes[NodeKind::kItem], 1u);
}

TEST(StoreTest, DroppedBatchWritesNothing) {
  TempDir tmp;
  auto store = OpenNew(tmp / "s");
  {
    std::unique_ptr<Batch> b;
    ASSERT_OK(store->BeginBatch(&b));
    NodeId a;
    ASSERT_OK(b->UpsertNode(NodeKind::kItem, "a", "", &a));
  }
  NodeId found, limit;
  auto view = store->NewReadView();
  EXPECT_TRUE(view->FindNode(NodeKind::kItem, "a", &found).IsNotFound());
  ASSERT_OK(view->NodeIdLimit(&limit));
  EXPECT_EQ(limit, 0u);
}

// Issue 17: exposure counters add up across batches, commit with their batch (a dropped batch adds
// nothing), and a request's impressions are counted once.
TEST(StoreTest, ExposureCountersAddUpAndRequestsCountOnce) {
  TempDir tmp;
  auto store = OpenNew(tmp / "s");
  std::unique_ptr<Batch> b;
  ASSERT_OK(store->BeginBatch(&b));
  NodeId a, c;
  ASSERT_OK(b->UpsertNode(NodeKind::kItem, "a", "", &a));
  ASSERT_OK(b->UpsertNode(NodeKind::kItem, "c", "", &c));
  bool first = false;
  ASSERT_OK(b->MarkImpressionsCounted("r1", &first));
  EXPECT_TRUE(first);
  ASSERT_OK(b->MarkImpressionsCounted("r1", &first));
  EXPECT_FALSE(first) << "pending marks count";
  b->AddExposure(a, 3, 0);
  b->AddExposure(c, 1, 1);
  b->AddExposure(a, 2, 1);
  ASSERT_OK(b->Commit());
  ASSERT_OK(b->MarkImpressionsCounted("r1", &first));
  EXPECT_FALSE(first) << "committed marks count";
  b->AddExposure(a, 0, 4);
  ASSERT_OK(b->Commit());
  b.reset();
  {
    std::unique_ptr<Batch> dropped;
    ASSERT_OK(store->BeginBatch(&dropped));
    dropped->AddExposure(a, 100, 100);
  }
  auto view = store->NewReadView();
  Exposure e;
  ASSERT_OK(view->GetExposure(a, &e));
  EXPECT_EQ(e.impressions, 5u);  // 3 + 2
  EXPECT_EQ(e.plays, 5u);        // 1 + 4
  ASSERT_OK(view->GetExposure(c + 1, &e));
  EXPECT_EQ(e.impressions + e.plays, 0u) << "no counters: zeros";
  std::vector<std::tuple<NodeId, uint64_t, uint64_t>> all;
  ASSERT_OK(view->ForEachExposure([&](NodeId item, const Exposure& x) {
    all.emplace_back(item, x.impressions, x.plays);
    return true;
  }));
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0], std::make_tuple(a, uint64_t(5), uint64_t(5)));
  EXPECT_EQ(all[1], std::make_tuple(c, uint64_t(1), uint64_t(1)));
  EXPECT_OK(view->CheckConsistency());
}

TEST(StoreTest, AliasesLinkEntitiesToItems) {
  TempDir tmp;
  auto store = OpenNew(tmp / "s");
  std::unique_ptr<Batch> b;
  ASSERT_OK(store->BeginBatch(&b));
  NodeId item, other;
  ASSERT_OK(b->UpsertNode(NodeKind::kItem, "51", "", &item));
  ASSERT_OK(b->UpsertNode(NodeKind::kEntity, "9", "", &other));
  ASSERT_OK(b->AddAlias(NodeKind::kEntity, "0", item));
  ASSERT_OK(b->AddAlias(NodeKind::kEntity, "0", item));  // idempotent
  EXPECT_TRUE(b->AddAlias(NodeKind::kEntity, "9", item).IsInvalidArgument());
  EXPECT_TRUE(b->AddAlias(NodeKind::kUser, "x", item).IsInvalidArgument());
  ASSERT_OK(b->Commit());
  auto view = store->NewReadView();
  NodeId found;
  ASSERT_OK(view->FindNode(NodeKind::kEntity, "0", &found));
  EXPECT_EQ(found, item);
  Counters c;
  ASSERT_OK(view->GetCounters(&c));
  EXPECT_EQ(c.items_linked, 1u);
  ASSERT_OK(view->CheckConsistency());
}

TEST(StoreTest, EdgesToMissingNodesAreRejected) {
  TempDir tmp;
  auto store = OpenNew(tmp / "s");
  std::unique_ptr<Batch> b;
  ASSERT_OK(store->BeginBatch(&b));
  RelationId rel;
  ASSERT_OK(b->UpsertRelation("r", &rel));
  EXPECT_TRUE(b->AddEdge(0, rel, 1).IsInvalidArgument());
}

TEST(StoreTest, ConsistencyCheckFindsAMissingReverseEdge) {
  TempDir tmp;
  const std::string dir = tmp / "s";
  {
    auto store = OpenNew(dir);
    std::unique_ptr<Batch> b;
    ASSERT_OK(store->BeginBatch(&b));
    NodeId a, c;
    RelationId rel;
    ASSERT_OK(b->UpsertNode(NodeKind::kItem, "a", "", &a));
    ASSERT_OK(b->UpsertNode(NodeKind::kEntity, "c", "", &c));
    ASSERT_OK(b->UpsertRelation("r", &rel));
    ASSERT_OK(b->AddEdge(a, rel, c));
    ASSERT_OK(b->Commit());
  }
  WithRawColumnFamily(dir, "edges_in", [](rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf) {
    return db->Delete(rocksdb::WriteOptions(), cf, keys::EdgeKey(1, 0, 0));
  });
  std::unique_ptr<Store> s;
  ASSERT_OK(Store::Open(dir, OpenOptions(), &s));
  Status st = s->NewReadView()->CheckConsistency();
  EXPECT_TRUE(st.IsCorruption());
  EXPECT_NE(st.message().find("has no reverse twin"), std::string::npos) << st.ToString();
}

TEST(StoreTest, ModelVersionsSwitchInOneWrite) {
  TempDir tmp;
  auto store = OpenNew(tmp / "s");
  uint64_t current = 0;
  EXPECT_TRUE(store->NewReadView()->GetCurrentModel(&current).IsNotFound());
  std::unique_ptr<Batch> b;
  ASSERT_OK(store->BeginBatch(&b));
  ASSERT_OK(b->PutModelRecord(1, "weights", std::string(1000, 'w')));
  EXPECT_TRUE(b->SetCurrentModel(1).IsInvalidArgument());  // no manifest yet: not complete
  ASSERT_OK(b->PutModelRecord(1, "manifest", "{}"));
  ASSERT_OK(b->SetCurrentModel(1));
  ASSERT_OK(b->Commit());
  auto before = store->NewReadView();

  // Version 2 is written, then made current; a reader holding the older snapshot keeps version 1.
  ASSERT_OK(b->PutModelRecord(2, "weights", "new"));
  ASSERT_OK(b->PutModelRecord(2, "manifest", "{}"));
  ASSERT_OK(b->Commit());
  ASSERT_OK(b->SetCurrentModel(2));
  ASSERT_OK(b->Commit());
  ASSERT_OK(before->GetCurrentModel(&current));
  EXPECT_EQ(current, 1u);
  auto after = store->NewReadView();
  ASSERT_OK(after->GetCurrentModel(&current));
  EXPECT_EQ(current, 2u);
  std::string blob;
  ASSERT_OK(after->GetModelRecord(1, "weights", &blob));
  EXPECT_EQ(blob.size(), 1000u);
  std::vector<std::string> names;
  ASSERT_OK(after->ListModelRecords(2, &names));
  EXPECT_EQ(names, (std::vector<std::string>{"manifest", "weights"}));
  ASSERT_OK(after->CheckConsistency());
}

TEST(StoreTest, ReadOnlyStoreRefusesBatches) {
  TempDir tmp;
  OpenNew(tmp / "s").reset();
  std::unique_ptr<Store> s;
  OpenOptions o;
  o.read_only = true;
  ASSERT_OK(Store::Open(tmp / "s", o, &s));
  std::unique_ptr<Batch> b;
  EXPECT_TRUE(s->BeginBatch(&b).IsInvalidArgument());
}

TEST(StoreTest, SecondWriterIsBusy) {
  TempDir tmp;
  auto first = OpenNew(tmp / "s");
  std::unique_ptr<Store> second;
  Status st = Store::Open(tmp / "s", OpenOptions(), &second);
  EXPECT_EQ(st.code(), Status::Code::kBusy) << st.ToString();
}

// A follower (`mosaic serve`'s reader) sees what primaries opened after it commit, once it catches up.
TEST(StoreTest, FollowerSeesWritesOfLaterPrimariesAfterCatchUp) {
  TempDir tmp;
  const std::string dir = tmp / "s";
  auto write_item = [&](const std::string& key) {
    std::unique_ptr<Store> primary = OpenNew(dir);
    ASSERT_TRUE(primary);
    std::unique_ptr<Batch> b;
    ASSERT_OK(primary->BeginBatch(&b));
    NodeId id = 0;
    ASSERT_OK(b->UpsertNode(NodeKind::kItem, key, key, &id));
    ASSERT_OK(b->Commit());
  };
  auto has_item = [](Store* s, const std::string& key) {
    NodeId id = 0;
    return s->NewReadView()->FindNode(NodeKind::kItem, key, &id).ok();
  };
  write_item("a");
  // The folder a killed follower left behind (its process is gone) is removed by the next one.
  const pid_t dead = ::fork();
  if (dead == 0) ::_exit(0);
  ::waitpid(dead, nullptr, 0);
  const std::filesystem::path left =
      std::filesystem::temp_directory_path() / ("mosaic-follower-" + std::to_string(dead) + "-0");
  std::filesystem::create_directories(left);
  std::unique_ptr<Store> follower;
  OpenOptions o;
  o.follower = true;
  ASSERT_OK(Store::Open(dir, o, &follower));
  EXPECT_FALSE(std::filesystem::exists(left));
  EXPECT_TRUE(has_item(follower.get(), "a"));
  std::unique_ptr<Batch> refused;
  EXPECT_TRUE(follower->BeginBatch(&refused).IsInvalidArgument());

  const uint64_t before = follower->LatestSequence();
  write_item("b");  // a second primary, opened and closed while the follower is open
  EXPECT_FALSE(has_item(follower.get(), "b"));
  ASSERT_OK(follower->CatchUp());
  EXPECT_TRUE(has_item(follower.get(), "b"));
  EXPECT_GT(follower->LatestSequence(), before);
  write_item("c");
  ASSERT_OK(follower->CatchUp());
  EXPECT_TRUE(has_item(follower.get(), "c"));
  EXPECT_TRUE(has_item(follower.get(), "a"));
}

TEST(StoreTest, WriterWaitsForTheLockAndSaysSo) {
  TempDir tmp;
  const std::string dir = tmp / "s";
  std::unique_ptr<Store> holder = OpenNew(dir);
  ASSERT_TRUE(holder);
  EXPECT_FALSE(Store::WriterWaiting(dir));
  std::atomic<bool> told{false};
  Status opened;
  std::unique_ptr<Store> waiter;
  std::thread t([&] {
    OpenOptions o;
    o.wait_for_lock_ms = 20000;
    o.on_wait = [&] { told = true; };
    opened = Store::Open(dir, o, &waiter);
  });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!Store::WriterWaiting(dir) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_TRUE(Store::WriterWaiting(dir));
  holder.reset();  // gives the lock back
  t.join();
  ASSERT_OK(opened);
  EXPECT_TRUE(told);
  EXPECT_FALSE(Store::WriterWaiting(dir));

  // Without waiting, Busy at once.
  std::unique_ptr<Store> second;
  OpenOptions o;
  EXPECT_EQ(Store::Open(dir, o, &second).code(), Status::Code::kBusy);
}


// Writers' opens race in other processes (an import waiting for the lock while the server takes and
// gives back its write lease): RocksDB sets up its info LOG before it takes the lock, so that step
// must not fail when another process rotates or removes the same LOG files at the same moment.
TEST(StoreTest, ManyProcessesOpeningAtOnceNeverFail) {
  TempDir tmp;
  const std::string dir = tmp / "s";
  OpenNew(dir).reset();
  constexpr int kProcesses = 4;
  constexpr int kOpens = 60;
  std::vector<pid_t> children;
  for (int p = 0; p < kProcesses; ++p) {
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      int failures = 0;
      for (int i = 0; i < kOpens; ++i) {
        std::unique_ptr<Store> s;
        OpenOptions o;
        const Status st = Store::Open(dir, o, &s);
        if (!st.ok() && st.code() != Status::Code::kBusy) {
          std::fprintf(stderr, "process %d, open %d: %s\n", p, i, st.ToString().c_str());
          ++failures;
        }
      }
      ::_exit(failures == 0 ? 0 : 1);
    }
    children.push_back(pid);
  }
  for (pid_t pid : children) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "a process saw an open fail (its stderr says which)";
  }
  std::unique_ptr<Store> after;
  ASSERT_OK(Store::Open(dir, OpenOptions(), &after));
}

// A query opens the store read-only while a writer (a rebuild) flushes and compacts. RocksDB's
// read-only open reads the MANIFEST, then the table files it names; a compaction may delete one in
// between, and the open then fails with a missing file although the store is whole. Such opens are
// retried: none of many may fail while the writer churns its files.
TEST(StoreTest, ReadOnlyOpensDuringCompactionsNeverFail) {
  TempDir tmp;
  const std::string dir = tmp / "s";
  OpenNew(dir).reset();
  // The writer is a thread of this process (a forked child would have no RocksDB background threads
  // to flush with); read-only opens take no lock, so they run beside it as another process's would.
  rocksdb::DBOptions db_options;
  std::vector<std::string> names;
  ASSERT_TRUE(rocksdb::DB::ListColumnFamilies(db_options, dir, &names).ok());
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (const auto& n : names) descriptors.emplace_back(n, rocksdb::ColumnFamilyOptions());
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  ASSERT_TRUE(rocksdb::DB::Open(db_options, dir, descriptors, &handles, &raw).ok());
  std::unique_ptr<rocksdb::DB> db(raw);
  std::atomic<bool> stop{false};
  std::thread writer([&] {  // new table files every few milliseconds, and the old ones deleted
    for (int i = 0; !stop.load(); ++i) {
      rocksdb::ColumnFamilyHandle* cf = handles[size_t(i) % handles.size()];
      for (int k = 0; k < 4; ++k) db->Put(rocksdb::WriteOptions(), cf, "churn-" + std::to_string(k), std::to_string(i));
      db->Flush(rocksdb::FlushOptions(), cf);
      db->CompactRange(rocksdb::CompactRangeOptions(), cf, nullptr, nullptr);
      std::this_thread::sleep_for(std::chrono::milliseconds(50));  // still far more often than a rebuild
    }
  });
  int failures = 0, opens = 0;
  std::string first;
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  while (std::chrono::steady_clock::now() < end) {
    std::unique_ptr<Store> s;
    OpenOptions o;
    o.read_only = true;
    const Status st = Store::Open(dir, o, &s);
    ++opens;
    if (!st.ok() && failures++ == 0) first = st.ToString();
  }
  stop = true;
  writer.join();
  for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
  db.reset();
  EXPECT_GT(opens, 10);
  EXPECT_EQ(failures, 0) << failures << " of " << opens << " read-only opens failed, first: " << first;
}

// A marker left by a writer that died while waiting (an import killed by a signal) names a process
// that is gone: it must not make the holder give the lock back forever.
TEST(StoreTest, MarkerOfADeadWriterIsIgnoredAndRemoved) {
  TempDir tmp;
  const std::string dir = tmp / "s";
  std::unique_ptr<Store> holder = OpenNew(dir);
  ASSERT_TRUE(holder);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) ::_exit(0);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);  // reaped: the pid names no process now
  const std::string dead = dir + "/WRITER-WAITING-" + std::to_string(child);
  mosaic::testing::WriteFile(dead, "");
  const std::string garbled = dir + "/WRITER-WAITING-x";
  mosaic::testing::WriteFile(garbled, "");
  EXPECT_FALSE(Store::WriterWaiting(dir));
  EXPECT_FALSE(std::filesystem::exists(dead));
  EXPECT_FALSE(std::filesystem::exists(garbled));

  // A live process's marker still counts.
  const std::string live = dir + "/WRITER-WAITING-" + std::to_string(::getpid());
  mosaic::testing::WriteFile(live, "");
  EXPECT_TRUE(Store::WriterWaiting(dir));
  EXPECT_TRUE(std::filesystem::exists(live));
}

// Flushes every column family of the closed store at `dir` to table files (a store's writes may sit
// in the WAL alone).
void FlushAll(const std::string& dir) {
  std::vector<std::string> names;
  ASSERT_TRUE(rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), dir, &names).ok());
  for (const std::string& name : names) {
    WithRawColumnFamily(dir, name, [](rocksdb::DB* db, rocksdb::ColumnFamilyHandle* h) {
      return db->Flush(rocksdb::FlushOptions(), h);
    });
  }
}

// Overwrites 64 bytes in the middle of the largest table file of `dir`; returns its name.
std::string CorruptLargestTable(const std::string& dir) {
  std::filesystem::path largest;
  uintmax_t size = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().extension() == ".sst" && e.file_size() > size) {
      size = e.file_size();
      largest = e.path();
    }
  }
  if (largest.empty()) return "";
  std::fstream f(largest, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(std::streamoff(size / 2));
  char bytes[64];
  f.read(bytes, sizeof bytes);
  for (char& c : bytes) c = char(~c);
  f.seekp(std::streamoff(size / 2));
  f.write(bytes, sizeof bytes);
  return largest.filename().string();
}

TEST(StoreTest, VerifyChecksumsFindsACorruptedModelBlock) {
  TempDir tmp;
  const std::string dir = tmp / "s";
  {
    auto store = OpenNew(dir);
    ASSERT_TRUE(store);
    std::unique_ptr<Batch> b;
    ASSERT_OK(store->BeginBatch(&b));
    NodeId item = 0;
    ASSERT_OK(b->UpsertNode(NodeKind::kItem, "i1", "One", &item));
    // Chunks of incompressible weights, as a model version stores them: the middle of the table file
    // falls in a block of its own, away from the manifest's.
    uint32_t x = 12345;
    for (int chunk = 0; chunk < 8; ++chunk) {
      std::string weights(64 * 1024, '\0');
      for (char& c : weights) c = char((x = x * 1664525u + 1013904223u) >> 24);
      ASSERT_OK(b->PutModelRecord(1, "weights/" + std::to_string(chunk), weights));
    }
    ASSERT_OK(b->PutModelRecord(1, "manifest", "{}"));
    ASSERT_OK(b->SetCurrentModel(1));
    ASSERT_OK(b->Commit());
    ASSERT_OK(store->VerifyChecksums());
  }
  FlushAll(dir);
  const std::string file = CorruptLargestTable(dir);
  ASSERT_FALSE(file.empty());
  std::unique_ptr<Store> store;
  OpenOptions o;
  o.read_only = true;
  ASSERT_OK(Store::Open(dir, o, &store));
  // The invariants read the manifest, not the weights' blocks; the checksums read every block.
  EXPECT_OK(store->NewReadView()->CheckConsistency());
  Status st = store->VerifyChecksums();
  EXPECT_TRUE(st.IsCorruption()) << st.ToString();
  EXPECT_NE(st.message().find(file), std::string::npos) << st.ToString();
}

// A creation killed half-way leaves a RocksDB database with some of Mosaic's column families and no
// schema version: no store yet for readers, finished by the next creating open; a database with a
// column family of someone else's is still refused.
TEST(StoreTest, InterruptedCreationIsNoStoreAndIsFinishedLater) {
  TempDir tmp;
  const std::string dir = tmp / "store";
  {
    rocksdb::Options options;
    options.create_if_missing = true;
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(options, dir, &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    rocksdb::ColumnFamilyHandle* dict = nullptr;
    ASSERT_TRUE(db->CreateColumnFamily(rocksdb::ColumnFamilyOptions(), keys::kCfNames[keys::kDict], &dict).ok());
    ASSERT_TRUE(db->DestroyColumnFamilyHandle(dict).ok());
  }
  std::unique_ptr<Store> store;
  EXPECT_TRUE(Store::Open(dir, OpenOptions(), &store).IsNotFound());
  OpenOptions read_only;
  read_only.read_only = true;
  EXPECT_TRUE(Store::Open(dir, read_only, &store).IsNotFound());
  OpenOptions create;
  create.create_if_missing = true;
  ASSERT_OK(Store::Open(dir, create, &store));
  ASSERT_OK(store->NewReadView()->CheckConsistency());
  store.reset();
  ASSERT_OK(Store::Open(dir, OpenOptions(), &store));
  store.reset();

  const std::string foreign = tmp / "foreign";
  {
    rocksdb::Options options;
    options.create_if_missing = true;
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(options, foreign, &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    rocksdb::ColumnFamilyHandle* other = nullptr;
    ASSERT_TRUE(db->CreateColumnFamily(rocksdb::ColumnFamilyOptions(), "someone-elses", &other).ok());
    ASSERT_TRUE(db->DestroyColumnFamilyHandle(other).ok());
  }
  EXPECT_TRUE(Store::Open(foreign, create, &store).IsInvalidArgument());
}

}  // namespace
}  // namespace mosaic::store
