#include "store/store.h"

#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <algorithm>
#include <atomic>
#include <cassert>
#include <chrono>
#include <fstream>
#include <thread>
#include <filesystem>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "store/keys.h"

namespace mosaic::store {

namespace fs = std::filesystem;
using namespace keys;

const char* const keys::kCfNames[kNumCfs] = {
    rocksdb::kDefaultColumnFamilyName.c_str(),
    "dict", "nodes", "edges_out", "edges_in", "interactions", "features", "models", "meta"};

const char* NodeKindName(NodeKind kind) {
  switch (kind) {
    case NodeKind::kUser: return "user";
    case NodeKind::kItem: return "item";
    case NodeKind::kEntity: return "entity";
  }
  return "unknown";
}

namespace {

bool IsNodeKind(uint8_t k) { return k >= 1 && k <= 3; }

Status FromRocks(const rocksdb::Status& s, const std::string& context) {
  if (s.ok()) return Status::OK();
  if (s.IsNotFound()) return Status::NotFound(context + ": " + s.ToString());
  if (s.IsCorruption()) return Status::Corruption(context + ": " + s.ToString());
  if (s.IsIOError() && s.ToString().find("lock") != std::string::npos) {
    return Status::Busy(context + ": the store is open for writing by another process (" +
                        s.ToString() + ")");
  }
  return Status::IOError(context + ": " + s.ToString());
}

void AppendString(std::string* out, std::string_view s) {
  AppendU32(out, uint32_t(s.size()));
  out->append(s);
}

bool ReadString(std::string_view* in, std::string* out) {
  if (in->size() < 4) return false;
  uint32_t n = ReadU32(in->data());
  in->remove_prefix(4);
  if (in->size() < n) return false;
  out->assign(in->data(), n);
  in->remove_prefix(n);
  return true;
}

std::string U64Value(uint64_t v) {
  std::string s;
  AppendU64(&s, v);
  return s;
}

rocksdb::Options MakeOptions() {
  rocksdb::Options o;
  // A size-rolled info LOG trims old LOG files while the store opens, before RocksDB takes the
  // lock: an import waiting beside the server then fails when both remove the same file. Without
  // rolling, old LOGs are removed only by the lock holder (which tolerates a missing one); at WARN
  // level a LOG stays small.
  o.keep_log_file_num = 2;
  o.max_log_file_size = 0;
  o.info_log_level = rocksdb::InfoLogLevel::WARN_LEVEL;
  // Bloom filters make the writers' "does this key exist yet" lookups cheap once data is in SSTs.
  rocksdb::BlockBasedTableOptions table;
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  return o;
}

const std::string kCounterPrefix = "count/";
const std::string kNodeCountPrefix = "count/nodes/";
const std::string kEdgeCountPrefix = "count/edges/";

}  // namespace

// ---------------------------------------------------------------------------------------------
// Encodings

std::string keys::EncodeNode(const NodeRecord& r) {
  std::string s(1, char(r.kind));
  AppendString(&s, r.key);
  AppendString(&s, r.label);
  s.append(r.attributes);
  return s;
}

bool keys::DecodeNode(std::string_view v, NodeRecord* r) {
  if (v.empty() || !IsNodeKind(uint8_t(v[0]))) return false;
  r->kind = NodeKind(uint8_t(v[0]));
  v.remove_prefix(1);
  if (!ReadString(&v, &r->key) || !ReadString(&v, &r->label)) return false;
  r->attributes.assign(v.data(), v.size());
  return true;
}

bool keys::DecodeInteraction(std::string_view key, std::string_view value, Interaction* x) {
  if (key.size() != 9 && key.size() != 13) return false;
  if (value.size() != 16) return false;
  x->user = ReadU32(key.data());
  x->item = ReadU32(key.data() + 4);
  uint8_t kind = uint8_t(key[8]);
  if (kind == uint8_t(InteractionKind::kConsumption) && key.size() == 9) {
    x->kind = InteractionKind::kConsumption;
    x->tag = 0;
  } else if (kind == uint8_t(InteractionKind::kTagApplication) && key.size() == 13) {
    x->kind = InteractionKind::kTagApplication;
    x->tag = ReadU32(key.data() + 9);
  } else {
    return false;
  }
  uint64_t bits = ReadU64(value.data());
  std::memcpy(&x->weight, &bits, 8);
  x->timestamp = int64_t(ReadU64(value.data() + 8));
  return true;
}

std::string keys::FeatureKey(NodeId item, std::string_view modality) {
  std::string s = U32(item);
  s.append(modality);
  return s;
}

std::string keys::EncodeFeature(const FeatureVector& f) {
  std::string s;
  AppendString(&s, f.extractor);
  AppendU32(&s, f.version);
  AppendU32(&s, uint32_t(f.values.size()));
  s.reserve(s.size() + 4 * f.values.size());
  for (float v : f.values) {
    uint32_t bits;
    std::memcpy(&bits, &v, 4);
    AppendU32(&s, bits);
  }
  AppendString(&s, f.source);
  return s;
}

bool keys::DecodeFeature(std::string_view v, FeatureVector* f) {
  if (!ReadString(&v, &f->extractor) || v.size() < 8) return false;
  f->version = ReadU32(v.data());
  const uint32_t n = ReadU32(v.data() + 4);
  v.remove_prefix(8);
  if (v.size() < size_t(n) * 4) return false;
  f->values.resize(n);
  for (uint32_t i = 0; i < n; ++i) {
    const uint32_t bits = ReadU32(v.data() + 4 * i);
    std::memcpy(&f->values[i], &bits, 4);
  }
  v.remove_prefix(size_t(n) * 4);
  return ReadString(&v, &f->source) && v.empty();
}

std::string keys::ExposureKey(NodeId item, char which) {
  std::string k(kExposurePrefix);
  AppendU32(&k, item);
  k.push_back(which);
  return k;
}

std::string keys::NodeCountKey(NodeKind kind) { return kNodeCountPrefix + NodeKindName(kind); }

std::string keys::EdgeCountKey(RelationId relation) { return kEdgeCountPrefix + U32(relation); }

// ---------------------------------------------------------------------------------------------
// Store

Store::~Store() {
  if (db_) {
    // Leave the data in SST files, so that the next open (often read-only, for a query)
    // does not replay the whole write-ahead log.
    if (!read_only_) {
      std::vector<rocksdb::ColumnFamilyHandle*> all;
      for (auto* h : handles_) {
        if (h) all.push_back(h);
      }
      rocksdb::Status flushed = db_->Flush(rocksdb::FlushOptions(), all);
      (void)flushed;  // the WAL still holds everything if the flush fails
    }
    for (auto* h : handles_) {
      if (h) db_->DestroyColumnFamilyHandle(h);
    }
    db_->Close();
  }
  if (!follower_dir_.empty()) {
    std::error_code ec;
    fs::remove_all(follower_dir_, ec);  // only the secondary's own LOG files
  }
}

namespace {
constexpr const char* kWriterWaitingPrefix = "WRITER-WAITING-";  // + pid; RocksDB ignores such files
// Read-only opens that lose a race with a writer's compaction, tried again with growing pauses
// (2 ms more each: at most 1.6 s in all)
constexpr int kOpenRaceAttempts = 40;
}

namespace {
constexpr const char* kFollowerDirPrefix = "mosaic-follower-";  // + pid + "-" + counter, in the temp folder

// A follower's folder outlives a process that was killed; the next follower removes those whose
// process is gone.
void RemoveDeadFollowerDirs() {
  std::error_code ec;
  for (fs::directory_iterator it(fs::temp_directory_path(ec), ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.rfind(kFollowerDirPrefix, 0) != 0) continue;
    const long pid = std::strtol(name.c_str() + std::strlen(kFollowerDirPrefix), nullptr, 10);
    if (pid > 0 && ::kill(pid_t(pid), 0) != 0 && errno == ESRCH) {
      std::error_code ignored;
      fs::remove_all(it->path(), ignored);
    }
  }
}
}  // namespace

bool Store::WriterWaiting(const std::string& dir) {
  std::error_code ec;
  std::vector<fs::path> dead;
  bool waiting = false;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.rfind(kWriterWaitingPrefix, 0) != 0) continue;
    // A marker names its writer's pid; one whose process is gone (an import killed while waiting)
    // waits for nothing and is removed. A marker whose name has no pid counts as dead too.
    const char* digits = name.c_str() + std::strlen(kWriterWaitingPrefix);
    char* end_of_pid = nullptr;
    errno = 0;
    const long pid = std::strtol(digits, &end_of_pid, 10);
    const bool valid = errno == 0 && end_of_pid != digits && *end_of_pid == '\0' && pid > 0 &&
                       pid == long(pid_t(pid));
    if (valid && !(::kill(pid_t(pid), 0) != 0 && errno == ESRCH)) {
      waiting = true;
    } else {
      dead.push_back(it->path());
    }
  }
  for (const fs::path& marker : dead) {
    std::error_code ignored;
    fs::remove(marker, ignored);
  }
  return waiting;
}

Status Store::Open(const std::string& dir, const OpenOptions& options, std::unique_ptr<Store>* out) {
  Status s = OpenOnce(dir, options, out);
  if (s.code() != Status::Code::kBusy || options.wait_for_lock_ms <= 0 || options.read_only || options.follower) {
    return s;
  }
  const fs::path marker = fs::path(dir) / (kWriterWaitingPrefix + std::to_string(::getpid()));
  { std::ofstream touch(marker); }
  if (options.on_wait) options.on_wait();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(options.wait_for_lock_ms);
  while (s.code() == Status::Code::kBusy && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    s = OpenOnce(dir, options, out);
  }
  std::error_code ec;
  fs::remove(marker, ec);
  if (s.code() == Status::Code::kBusy) {
    return s.WithContext("waited " + std::to_string(options.wait_for_lock_ms / 1000) + " s for the write lock: ");
  }
  return s;
}

Status Store::OpenOnce(const std::string& dir, const OpenOptions& options,
                   std::unique_ptr<Store>* out) {
  out->reset();
  std::unique_ptr<Store> store(new Store());
  store->dir_ = dir;
  store->read_only_ = options.read_only || options.follower;
  rocksdb::Options db_options = MakeOptions();

  std::error_code ec;
  const bool has_db = fs::exists(fs::path(dir) / "CURRENT", ec);
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  bool creating = false;
  if (!has_db) {
    if (!options.create_if_missing || options.read_only || options.follower) {
      return Status::NotFound("no Mosaic store at '" + dir +
                              "' (create one with `mosaic import` or `mosaic demo`)");
    }
    if (fs::exists(dir, ec)) {
      if (!fs::is_directory(dir, ec)) {
        return Status::InvalidArgument("'" + dir + "' exists and is not a folder");
      }
      if (!fs::is_empty(dir, ec)) {
        return Status::InvalidArgument("'" + dir +
                                       "' is a non-empty folder that holds no Mosaic store; "
                                       "choose a new or empty folder");
      }
    }
    fs::create_directories(dir, ec);
    if (ec) return Status::IOError("cannot create store folder '" + dir + "': " + ec.message());
    creating = true;
    db_options.create_if_missing = true;
    db_options.create_missing_column_families = true;
    for (int i = 0; i < kNumCfs; ++i) descriptors.emplace_back(kCfNames[i], db_options);
  } else {
    std::vector<std::string> names;
    MOSAIC_RETURN_IF_ERROR(
        FromRocks(rocksdb::DB::ListColumnFamilies(db_options, dir, &names), "opening '" + dir + "'"));
    std::set<std::string> present(names.begin(), names.end());
    const std::set<std::string> ours(std::begin(kCfNames), std::end(kCfNames));
    const bool only_ours = std::includes(ours.begin(), ours.end(), present.begin(), present.end());
    bool complete = true;
    for (int i = 0; i < kNumCfs; ++i) complete = complete && present.count(kCfNames[i]);
    if (!complete && !only_ours) {
      return Status::InvalidArgument("'" + dir + "' holds a RocksDB database that is not a Mosaic store");
    }
    if (!complete) {
      // A creation cut off half-way (RocksDB adds the column families one at a time; the schema
      // version is written last): no store yet, and the next creating open finishes it.
      if (!options.create_if_missing || store->read_only_) {
        return Status::NotFound("no Mosaic store at '" + dir + "' (its creation was interrupted; `mosaic import` creates it)");
      }
      creating = true;
      db_options.create_missing_column_families = true;
      for (int i = 0; i < kNumCfs; ++i) descriptors.emplace_back(kCfNames[i], db_options);
    } else {
      for (const auto& n : names) descriptors.emplace_back(n, db_options);
    }
  }

  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s;
  if (options.follower) {
    // The secondary keeps every table file open (max_open_files -1) so that files the primary
    // deletes after a compaction stay readable until the next CatchUp.
    static std::atomic<uint64_t> followers{0};
    RemoveDeadFollowerDirs();
    store->follower_dir_ = (fs::temp_directory_path() / (kFollowerDirPrefix + std::to_string(::getpid()) + "-" +
                                                         std::to_string(followers++)))
                               .string();
    db_options.max_open_files = -1;
  }
  // A read-only or secondary open reads the MANIFEST, then the table files it names; a writer's
  // compaction may delete one in between. The store is whole and the open merely raced the
  // writer, so it is tried again (a bounded number of times: a file that stays missing is reported).
  for (int attempt = 0;; ++attempt) {
    handles.clear();
    raw = nullptr;
    if (options.follower) {
      s = rocksdb::DB::OpenAsSecondary(db_options, dir, store->follower_dir_, descriptors, &handles, &raw);
    } else if (options.read_only) {
      s = rocksdb::DB::OpenForReadOnly(db_options, dir, descriptors, &handles, &raw);
    } else {
      s = rocksdb::DB::Open(db_options, dir, descriptors, &handles, &raw);
    }
    const bool raced = (options.follower || options.read_only) && !s.ok() &&
                       s.ToString().find("No such file or directory") != std::string::npos;
    if (!raced || attempt + 1 >= kOpenRaceAttempts) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(2 * (attempt + 1)));
  }
  MOSAIC_RETURN_IF_ERROR(FromRocks(s, "opening store '" + dir + "'"));
  store->db_.reset(raw);
  store->handles_.assign(kNumCfs, nullptr);
  std::vector<rocksdb::ColumnFamilyHandle*> extra;
  for (size_t i = 0; i < handles.size(); ++i) {
    int idx = -1;
    for (int c = 0; c < kNumCfs; ++c) {
      if (descriptors[i].name == kCfNames[c]) idx = c;
    }
    if (idx >= 0) {
      store->handles_[idx] = handles[i];
    } else {
      extra.push_back(handles[i]);
    }
  }
  for (auto* h : extra) store->db_->DestroyColumnFamilyHandle(h);

  if (!creating && options.create_if_missing && !store->read_only_) {
    // Every column family there, none written: a creation cut off before its first write, finished now.
    std::string version;
    creating = store->db_->Get(rocksdb::ReadOptions(), store->handles_[kMeta], kSchemaVersionKey, &version)
                   .IsNotFound() &&
               store->IsEmpty();
  }
  if (creating) {
    rocksdb::WriteBatch wb;
    wb.Put(store->handles_[kMeta], kSchemaVersionKey, std::to_string(kSchemaVersion));
    wb.Put(store->handles_[kMeta], kNextNodeIdKey, U32(0));
    wb.Put(store->handles_[kMeta], kNextRelationIdKey, U32(0));
    rocksdb::WriteOptions wo;
    wo.sync = true;
    MOSAIC_RETURN_IF_ERROR(FromRocks(store->db_->Write(wo, &wb), "initialising store '" + dir + "'"));
  }

  std::string version;
  s = store->db_->Get(rocksdb::ReadOptions(), store->handles_[kMeta], kSchemaVersionKey, &version);
  if (s.IsNotFound() && store->IsEmpty()) {
    // Every column family is there and empty: a creation cut off before its first write.
    return Status::NotFound("no Mosaic store at '" + dir + "' (its creation was interrupted; `mosaic import` creates it)");
  }
  if (s.IsNotFound()) {
    return Status::InvalidArgument("'" + dir + "' has no schema version: not a Mosaic store");
  }
  MOSAIC_RETURN_IF_ERROR(FromRocks(s, "reading schema version of '" + dir + "'"));
  if (version != std::to_string(kSchemaVersion)) {
    return Status::VersionMismatch("store '" + dir + "' has schema version " + version +
                                   "; this build of mosaic reads version " +
                                   std::to_string(kSchemaVersion));
  }
  for (int c = 0; c < kNumCfs; ++c) {
    if (!store->handles_[c]) {
      return Status::Corruption("store '" + dir + "' lacks column family '" + kCfNames[c] + "'");
    }
  }
  *out = std::move(store);
  return Status::OK();
}

std::unique_ptr<ReadView> Store::NewReadView() const {
  return std::unique_ptr<ReadView>(new ReadView(this));
}

Status Store::CatchUp() {
  if (follower_dir_.empty()) return Status::InvalidArgument("store '" + dir_ + "' is not open as a follower");
  return FromRocks(db_->TryCatchUpWithPrimary(), "following store '" + dir_ + "'");
}

bool Store::IsEmpty() const {
  for (auto* handle : handles_) {
    if (!handle) continue;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), handle));
    it->SeekToFirst();
    if (it->Valid()) return false;
  }
  return true;
}

Status Store::VerifyChecksums() const {
  rocksdb::ReadOptions options;
  options.verify_checksums = true;
  options.fill_cache = false;
  return FromRocks(db_->VerifyChecksum(options), "store '" + dir_ + "': checksum verification failed");
}

uint64_t Store::LatestSequence() const { return db_->GetLatestSequenceNumber(); }

Status Store::BeginBatch(std::unique_ptr<Batch>* batch) {
  batch->reset();
  if (read_only_) return Status::InvalidArgument("store '" + dir_ + "' is open read-only");
  std::unique_ptr<Batch> b(new Batch(this));
  MOSAIC_RETURN_IF_ERROR(b->Load());
  *batch = std::move(b);
  return Status::OK();
}

// ---------------------------------------------------------------------------------------------
// ReadView

namespace {

// Iterates keys of `cf` starting with `prefix` under the view's snapshot.
template <typename Fn>
Status ScanPrefix(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf, const rocksdb::Snapshot* snap,
                  const std::string& prefix, Fn&& fn) {
  rocksdb::ReadOptions ro;
  ro.snapshot = snap;
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(ro, cf));
  for (it->Seek(prefix); it->Valid(); it->Next()) {
    rocksdb::Slice k = it->key();
    if (!k.starts_with(prefix)) break;
    if (!fn(std::string_view(k.data(), k.size()),
            std::string_view(it->value().data(), it->value().size()))) {
      break;
    }
  }
  return FromRocks(it->status(), "scanning store");
}

Status DecodeEdge(std::string_view k, std::string_view v, bool reverse, Edge* e) {
  if (k.size() != 12) return Status::Corruption("edge key of " + std::to_string(k.size()) + " bytes");
  NodeId a = ReadU32(k.data()), b = ReadU32(k.data() + 8);
  e->relation = ReadU32(k.data() + 4);
  e->src = reverse ? b : a;
  e->dst = reverse ? a : b;
  e->weight = DecodeWeight(v);
  return Status::OK();
}

}  // namespace

// A follower (RocksDB secondary instance) has no snapshots for iterators: its views read the state
// of its last CatchUp.
ReadView::ReadView(const Store* store)
    : store_(store), snapshot_(store->follower_dir_.empty() ? store->db_->GetSnapshot() : nullptr) {}

ReadView::~ReadView() {
  if (snapshot_) store_->db_->ReleaseSnapshot(snapshot_);
}

namespace {
Status GetAt(const Store* store, rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf,
             const rocksdb::Snapshot* snap, const std::string& key, std::string* value) {
  rocksdb::ReadOptions ro;
  ro.snapshot = snap;
  rocksdb::Status s = db->Get(ro, cf, key, value);
  if (s.IsNotFound()) return Status::NotFound("not found");
  return FromRocks(s, "reading store '" + store->dir() + "'");
}
}  // namespace

Status ReadView::FindNode(NodeKind kind, std::string_view key, NodeId* id) const {
  std::string v;
  Status s = GetAt(store_, store_->db_.get(), store_->handles_[kDict], snapshot_, DictKey(kind, key), &v);
  if (s.IsNotFound()) {
    return Status::NotFound(std::string("no ") + NodeKindName(kind) + " '" + std::string(key) + "'");
  }
  MOSAIC_RETURN_IF_ERROR(s);
  if (v.size() != 4) return Status::Corruption("dictionary value of " + std::to_string(v.size()) + " bytes");
  *id = ReadU32(v.data());
  return Status::OK();
}

Status ReadView::GetNode(NodeId id, NodeRecord* record) const {
  std::string v;
  Status s = GetAt(store_, store_->db_.get(), store_->handles_[kNodes], snapshot_, U32(id), &v);
  if (s.IsNotFound()) return Status::NotFound("no node " + std::to_string(id));
  MOSAIC_RETURN_IF_ERROR(s);
  if (!DecodeNode(v, record)) return Status::Corruption("node " + std::to_string(id) + " is malformed");
  return Status::OK();
}

Status ReadView::FindRelation(std::string_view name, RelationId* id) const {
  std::string v;
  Status s = GetAt(store_, store_->db_.get(), store_->handles_[kDict], snapshot_, RelationNameKey(name), &v);
  if (s.IsNotFound()) return Status::NotFound("no relation '" + std::string(name) + "'");
  MOSAIC_RETURN_IF_ERROR(s);
  if (v.size() != 4) return Status::Corruption("relation value of " + std::to_string(v.size()) + " bytes");
  *id = ReadU32(v.data());
  return Status::OK();
}

Status ReadView::GetRelationName(RelationId id, std::string* name) const {
  Status s = GetAt(store_, store_->db_.get(), store_->handles_[kDict], snapshot_, RelationIdKey(id), name);
  if (s.IsNotFound()) return Status::NotFound("no relation " + std::to_string(id));
  return s;
}

Status ReadView::ListRelations(std::map<RelationId, std::string>* relations) const {
  relations->clear();
  return ScanPrefix(store_->db_.get(), store_->handles_[kDict], snapshot_,
                    std::string(1, char(kRelationById)), [&](std::string_view k, std::string_view v) {
                      if (k.size() == 5) (*relations)[ReadU32(k.data() + 1)] = std::string(v);
                      return true;
                    });
}

Status ReadView::NodeIdLimit(NodeId* limit) const {
  std::string v;
  MOSAIC_RETURN_IF_ERROR(GetAt(store_, store_->db_.get(), store_->handles_[kMeta], snapshot_, kNextNodeIdKey, &v));
  if (v.size() != 4) return Status::Corruption("next_node_id is malformed");
  *limit = ReadU32(v.data());
  return Status::OK();
}

Status ReadView::GetCounters(Counters* c) const {
  *c = Counters();
  Status bad;
  Status s = ScanPrefix(
      store_->db_.get(), store_->handles_[kMeta], snapshot_, kCounterPrefix,
      [&](std::string_view k, std::string_view v) {
        if (v.size() != 8) {
          bad = Status::Corruption("counter '" + std::string(k) + "' is malformed");
          return false;
        }
        uint64_t n = ReadU64(v.data());
        if (k.substr(0, kNodeCountPrefix.size()) == kNodeCountPrefix) {
          for (NodeKind kind : {NodeKind::kUser, NodeKind::kItem, NodeKind::kEntity}) {
            if (k == NodeCountKey(kind)) c->nodes[kind] = n;
          }
        } else if (k.substr(0, kEdgeCountPrefix.size()) == kEdgeCountPrefix &&
                   k.size() == kEdgeCountPrefix.size() + 4) {
          c->edges[ReadU32(k.data() + kEdgeCountPrefix.size())] = n;
        } else if (k == kInteractionCountKey) {
          c->interactions = n;
        } else if (k == kTagApplicationCountKey) {
          c->tag_applications = n;
        } else if (k == kItemsWithInteractionsKey) {
          c->items_with_interactions = n;
        } else if (k == kItemsLinkedKey) {
          c->items_linked = n;
        }
        return true;
      });
  MOSAIC_RETURN_IF_ERROR(s);
  return bad;
}

Status ReadView::ForEachNode(const std::function<bool(NodeId, const NodeRecord&)>& fn) const {
  Status bad;
  MOSAIC_RETURN_IF_ERROR(ScanPrefix(store_->db_.get(), store_->handles_[kNodes], snapshot_, "",
                                    [&](std::string_view k, std::string_view v) {
                                      NodeRecord r;
                                      if (k.size() != 4 || !DecodeNode(v, &r)) {
                                        bad = Status::Corruption("malformed node record");
                                        return false;
                                      }
                                      return fn(ReadU32(k.data()), r);
                                    }));
  return bad;
}

namespace {
Status ScanEdges(const Store* store, rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf,
                 const rocksdb::Snapshot* snap, const std::string& prefix, bool reverse,
                 const std::function<bool(const Edge&)>& fn) {
  (void)store;
  Status bad;
  MOSAIC_RETURN_IF_ERROR(ScanPrefix(db, cf, snap, prefix, [&](std::string_view k, std::string_view v) {
    Edge e;
    bad = DecodeEdge(k, v, reverse, &e);
    return bad.ok() && fn(e);
  }));
  return bad;
}
}  // namespace

Status ReadView::ForEachOutEdge(NodeId src, const std::function<bool(const Edge&)>& fn) const {
  return ScanEdges(store_, store_->db_.get(), store_->handles_[kEdgesOut], snapshot_, U32(src), false, fn);
}

Status ReadView::ForEachInEdge(NodeId dst, const std::function<bool(const Edge&)>& fn) const {
  return ScanEdges(store_, store_->db_.get(), store_->handles_[kEdgesIn], snapshot_, U32(dst), true, fn);
}

Status ReadView::ForEachEdge(const std::function<bool(const Edge&)>& fn) const {
  return ScanEdges(store_, store_->db_.get(), store_->handles_[kEdgesOut], snapshot_, "", false, fn);
}

Status ReadView::ForEachInteraction(const std::function<bool(const Interaction&)>& fn) const {
  Status bad;
  MOSAIC_RETURN_IF_ERROR(ScanPrefix(store_->db_.get(), store_->handles_[kInteractions], snapshot_, "",
                                    [&](std::string_view k, std::string_view v) {
                                      Interaction x;
                                      if (!DecodeInteraction(k, v, &x)) {
                                        bad = Status::Corruption("malformed interaction record");
                                        return false;
                                      }
                                      return fn(x);
                                    }));
  return bad;
}

Status ReadView::GetFeature(NodeId item, std::string_view modality, FeatureVector* feature) const {
  std::string v;
  Status s = GetAt(store_, store_->db_.get(), store_->handles_[kFeatures], snapshot_, FeatureKey(item, modality), &v);
  if (s.IsNotFound()) return Status::NotFound("item " + std::to_string(item) + " has no " + std::string(modality) + " feature");
  MOSAIC_RETURN_IF_ERROR(s);
  if (!DecodeFeature(v, feature)) return Status::Corruption("malformed feature record");
  return Status::OK();
}

Status ReadView::ForEachFeature(NodeId item,
                                const std::function<bool(const std::string&, const FeatureVector&)>& fn) const {
  Status bad;
  MOSAIC_RETURN_IF_ERROR(ScanPrefix(store_->db_.get(), store_->handles_[kFeatures], snapshot_, U32(item),
                                    [&](std::string_view k, std::string_view v) {
                                      FeatureVector f;
                                      if (!DecodeFeature(v, &f)) {
                                        bad = Status::Corruption("malformed feature record");
                                        return false;
                                      }
                                      return fn(std::string(k.substr(4)), f);
                                    }));
  return bad;
}

Status ReadView::GetExposure(NodeId item, Exposure* exposure) const {
  *exposure = Exposure();
  for (char which : {'i', 'p'}) {
    std::string v;
    Status s = GetAt(store_, store_->db_.get(), store_->handles_[kMeta], snapshot_, ExposureKey(item, which), &v);
    if (s.IsNotFound()) continue;
    MOSAIC_RETURN_IF_ERROR(s);
    if (v.size() != 8) return Status::Corruption("exposure counter of item " + std::to_string(item) + " is malformed");
    (which == 'i' ? exposure->impressions : exposure->plays) = ReadU64(v.data());
  }
  return Status::OK();
}

Status ReadView::ForEachExposure(const std::function<bool(NodeId, const Exposure&)>& fn) const {
  Status bad;
  bool have = false, stopped = false;
  NodeId item = 0;
  Exposure exposure;
  MOSAIC_RETURN_IF_ERROR(ScanPrefix(
      store_->db_.get(), store_->handles_[kMeta], snapshot_, std::string(kExposurePrefix),
      [&](std::string_view k, std::string_view v) {
        k.remove_prefix(kExposurePrefix.size());
        if (k.size() != 5 || (k[4] != 'i' && k[4] != 'p') || v.size() != 8) {
          bad = Status::Corruption("malformed exposure counter");
          return false;
        }
        const NodeId id = ReadU32(k.data());
        if (have && id != item) {
          if (!fn(item, exposure)) {
            stopped = true;
            return false;
          }
          exposure = Exposure();
        }
        have = true;
        item = id;
        (k[4] == 'i' ? exposure.impressions : exposure.plays) = ReadU64(v.data());
        return true;
      }));
  MOSAIC_RETURN_IF_ERROR(bad);
  if (have && !stopped) fn(item, exposure);
  return Status::OK();
}

Status ReadView::GetCurrentModel(uint64_t* version) const {
  std::string v;
  Status s = GetAt(store_, store_->db_.get(), store_->handles_[kMeta], snapshot_, kCurrentModelKey, &v);
  if (s.IsNotFound()) return Status::NotFound("no model yet (run `mosaic rebuild`)");
  MOSAIC_RETURN_IF_ERROR(s);
  if (v.size() != 8) return Status::Corruption("current_model is malformed");
  *version = ReadU64(v.data());
  return Status::OK();
}

Status ReadView::GetModelRecord(uint64_t version, std::string_view name, std::string* blob) const {
  Status s = GetAt(store_, store_->db_.get(), store_->handles_[kModels], snapshot_, ModelKey(version, name), blob);
  if (s.IsNotFound()) {
    return Status::NotFound("model " + std::to_string(version) + " has no record '" + std::string(name) + "'");
  }
  return s;
}

Status ReadView::ListModelRecords(uint64_t version, std::vector<std::string>* names) const {
  names->clear();
  std::string prefix;
  AppendU64(&prefix, version);
  return ScanPrefix(store_->db_.get(), store_->handles_[kModels], snapshot_, prefix,
                    [&](std::string_view k, std::string_view) {
                      names->emplace_back(k.substr(8));
                      return true;
                    });
}

Status ReadView::CheckConsistency() const {
  std::vector<std::string> problems;
  uint64_t problem_count = 0;
  auto problem = [&](std::string p) {
    if (problems.size() < 10) problems.push_back(std::move(p));
    ++problem_count;
  };
  rocksdb::DB* db = store_->db_.get();
  auto cf = [&](int c) { return store_->handles_[c]; };

  NodeId limit = 0;
  MOSAIC_RETURN_IF_ERROR(NodeIdLimit(&limit));
  std::map<RelationId, std::string> relations;
  MOSAIC_RETURN_IF_ERROR(ListRelations(&relations));
  std::string rel_limit_value;
  MOSAIC_RETURN_IF_ERROR(GetAt(store_, db, cf(kMeta), snapshot_, kNextRelationIdKey, &rel_limit_value));
  const RelationId rel_limit = rel_limit_value.size() == 4 ? ReadU32(rel_limit_value.data()) : 0;

  // Nodes and their primary dictionary entries.
  std::vector<uint8_t> kind_of(limit, 0);
  Counters counted;
  MOSAIC_RETURN_IF_ERROR(ScanPrefix(db, cf(kNodes), snapshot_, "", [&](std::string_view k, std::string_view v) {
    NodeRecord r;
    if (k.size() != 4 || !DecodeNode(v, &r)) {
      problem("malformed node record");
      return true;
    }
    NodeId id = ReadU32(k.data());
    if (id >= limit) {
      problem("node " + std::to_string(id) + " is beyond next_node_id " + std::to_string(limit));
      return true;
    }
    kind_of[id] = uint8_t(r.kind);
    ++counted.nodes[r.kind];
    NodeId found = 0;
    Status s = FindNode(r.kind, r.key, &found);
    if (!s.ok()) {
      problem(std::string(NodeKindName(r.kind)) + " node " + std::to_string(id) + " ('" + r.key +
              "') has no dictionary entry");
    } else if (found != id) {
      problem("dictionary entry of node " + std::to_string(id) + " points to " + std::to_string(found));
    }
    return true;
  }));

  // Dictionary: node keys point to nodes of their kind (entity aliases may point to items).
  MOSAIC_RETURN_IF_ERROR(ScanPrefix(db, cf(kDict), snapshot_, "", [&](std::string_view k, std::string_view v) {
    uint8_t tag = uint8_t(k[0]);
    if (IsNodeKind(tag)) {
      if (v.size() != 4) {
        problem("malformed dictionary value");
        return true;
      }
      NodeId id = ReadU32(v.data());
      if (id >= limit || kind_of[id] == 0) {
        problem("dictionary key '" + std::string(k.substr(1)) + "' points to missing node " + std::to_string(id));
      } else if (kind_of[id] != tag) {
        if (tag == uint8_t(NodeKind::kEntity) && kind_of[id] == uint8_t(NodeKind::kItem)) {
          ++counted.items_linked;
        } else {
          problem("dictionary key '" + std::string(k.substr(1)) + "' points to a node of another kind");
        }
      }
    } else if (tag == kRelationByName) {
      if (v.size() != 4 || !relations.count(ReadU32(v.data())) ||
          relations[ReadU32(v.data())] != k.substr(1)) {
        problem("relation '" + std::string(k.substr(1)) + "' has no matching id entry");
      }
    } else if (tag == kRelationById) {
      if (k.size() != 5 || ReadU32(k.data() + 1) >= rel_limit) problem("relation id beyond next_relation_id");
    } else {
      problem("unknown dictionary record");
    }
    return true;
  }));

  auto node_ok = [&](NodeId id) { return id < limit && kind_of[id] != 0; };
  RelationId interacted = 0;
  bool has_interacted = FindRelation(kInteractedRelation, &interacted).ok();
  std::unordered_set<NodeId> items_with_interactions;

  // Forward edges and their reverses.
  for (bool reverse : {false, true}) {
    const int here = reverse ? kEdgesIn : kEdgesOut, there = reverse ? kEdgesOut : kEdgesIn;
    MOSAIC_RETURN_IF_ERROR(ScanPrefix(db, cf(here), snapshot_, "", [&](std::string_view k, std::string_view v) {
      Edge e;
      if (!DecodeEdge(k, v, reverse, &e).ok()) {
        problem("malformed edge key");
        return true;
      }
      const std::string where = std::to_string(e.src) + " -[" + std::to_string(e.relation) + "]-> " +
                                std::to_string(e.dst);
      if (!node_ok(e.src) || !node_ok(e.dst)) problem("edge " + where + " has a missing endpoint");
      if (!relations.count(e.relation)) problem("edge " + where + " has an unknown relation");
      std::string other_value;
      std::string other_key = reverse ? EdgeKey(e.src, e.relation, e.dst) : EdgeKey(e.dst, e.relation, e.src);
      Status s = GetAt(store_, db, cf(there), snapshot_, other_key, &other_value);
      if (s.IsNotFound()) {
        problem(std::string(reverse ? "reverse" : "forward") + " edge " + where + " has no " +
                (reverse ? "forward" : "reverse") + " twin");
      } else if (!s.ok()) {
        problem(s.ToString());
      } else if (other_value != v) {
        problem("edge " + where + " has different weights in its two directions");
      }
      if (!reverse) {
        ++counted.edges[e.relation];
        if (has_interacted && e.relation == interacted) items_with_interactions.insert(e.dst);
      }
      return true;
    }));
  }
  counted.items_with_interactions = items_with_interactions.size();

  // Interactions.
  MOSAIC_RETURN_IF_ERROR(ScanPrefix(db, cf(kInteractions), snapshot_, "", [&](std::string_view k, std::string_view v) {
    Interaction x;
    if (!DecodeInteraction(k, v, &x)) {
      problem("malformed interaction record");
      return true;
    }
    const std::string where = "interaction " + std::to_string(x.user) + " -> " + std::to_string(x.item);
    if (!node_ok(x.user) || kind_of[x.user] != uint8_t(NodeKind::kUser)) problem(where + ": user is missing");
    if (!node_ok(x.item) || kind_of[x.item] != uint8_t(NodeKind::kItem)) problem(where + ": item is missing");
    if (x.kind == InteractionKind::kConsumption) {
      ++counted.interactions;
      std::string ev;
      if (!has_interacted ||
          !GetAt(store_, db, cf(kEdgesOut), snapshot_, EdgeKey(x.user, interacted, x.item), &ev).ok()) {
        problem(where + " has no `interacted` edge");
      }
    } else {
      ++counted.tag_applications;
      if (!node_ok(x.tag)) problem(where + ": tag entity is missing");
    }
    return true;
  }));

  // Feature vectors belong to items and decode.
  MOSAIC_RETURN_IF_ERROR(ScanPrefix(db, cf(kFeatures), snapshot_, "", [&](std::string_view k, std::string_view v) {
    FeatureVector f;
    if (k.size() <= 4 || !DecodeFeature(v, &f)) {
      problem("malformed feature record");
      return true;
    }
    const NodeId item = ReadU32(k.data());
    if (!node_ok(item) || kind_of[item] != uint8_t(NodeKind::kItem)) {
      problem("feature '" + std::string(k.substr(4)) + "' of missing item " + std::to_string(item));
    }
    return true;
  }));

  // Exposure counters belong to items.
  MOSAIC_RETURN_IF_ERROR(ForEachExposure([&](NodeId item, const Exposure&) {
    if (!node_ok(item) || kind_of[item] != uint8_t(NodeKind::kItem)) {
      problem("exposure counters of missing item " + std::to_string(item));
    }
    return true;
  }));

  // The current model, if any, is a complete version.
  uint64_t current = 0;
  Status has_model = GetCurrentModel(&current);
  if (has_model.ok()) {
    std::string manifest;
    if (!GetModelRecord(current, kModelManifest, &manifest).ok()) {
      problem("current model " + std::to_string(current) + " has no manifest");
    }
  } else if (!has_model.IsNotFound()) {
    problem(has_model.ToString());
  }

  Counters stored;
  MOSAIC_RETURN_IF_ERROR(GetCounters(&stored));
  auto drop_zeros = [](auto m) {
    for (auto it = m.begin(); it != m.end();) it = it->second == 0 ? m.erase(it) : std::next(it);
    return m;
  };
  if (drop_zeros(stored.nodes) != drop_zeros(counted.nodes)) problem("node counters disagree with the records");
  if (drop_zeros(stored.edges) != drop_zeros(counted.edges)) problem("edge counters disagree with the records");
  if (stored.interactions != counted.interactions) problem("interaction counter disagrees with the records");
  if (stored.tag_applications != counted.tag_applications) problem("tag counter disagrees with the records");
  if (stored.items_with_interactions != counted.items_with_interactions) {
    problem("items_with_interactions counter disagrees with the records");
  }
  if (stored.items_linked != counted.items_linked) problem("items_linked counter disagrees with the records");

  if (problem_count == 0) return Status::OK();
  std::string msg = "store '" + store_->dir() + "' is inconsistent (" + std::to_string(problem_count) + " problems):";
  for (const auto& p : problems) msg += "\n  " + p;
  return Status::Corruption(msg);
}

// ---------------------------------------------------------------------------------------------
// Batch

Batch::Batch(Store* store)
    : store_(store),
      lock_(store->writer_mutex_),
      wb_(std::make_unique<rocksdb::WriteBatch>()),
      pending_(kNumCfs) {}

Batch::~Batch() = default;

Status Batch::Load() {
  std::string v;
  bool found = false;
  MOSAIC_RETURN_IF_ERROR(Get(kMeta, kNextNodeIdKey, &v, &found));
  if (!found || v.size() != 4) return Status::Corruption("store '" + store_->dir_ + "' lacks next_node_id");
  next_node_id_ = ReadU32(v.data());
  MOSAIC_RETURN_IF_ERROR(Get(kMeta, kNextRelationIdKey, &v, &found));
  if (!found || v.size() != 4) return Status::Corruption("store '" + store_->dir_ + "' lacks next_relation_id");
  next_relation_id_ = ReadU32(v.data());
  MOSAIC_RETURN_IF_ERROR(Get(kDict, RelationNameKey(kInteractedRelation), &v, &found));
  interacted_known_ = found && v.size() == 4;
  if (interacted_known_) interacted_ = ReadU32(v.data());
  return Status::OK();
}

Status Batch::Get(int cf, const std::string& key, std::string* value, bool* found) {
  auto it = pending_[cf].find(key);
  if (it != pending_[cf].end()) {
    *value = it->second;
    *found = true;
    return Status::OK();
  }
  rocksdb::Status s = store_->db_->Get(rocksdb::ReadOptions(), store_->handles_[cf], key, value);
  *found = s.ok();
  if (s.IsNotFound()) return Status::OK();
  return FromRocks(s, "reading store '" + store_->dir_ + "'");
}

Status Batch::ItemHasInteractions(NodeId item, bool* found) {
  *found = items_with_interactions_.count(item) > 0;
  if (*found || !interacted_known_) return Status::OK();
  // Not seen yet: look for a committed `interacted` in-edge.
  const std::string prefix = U32(item) + U32(interacted_);
  std::unique_ptr<rocksdb::Iterator> it(store_->db_->NewIterator(rocksdb::ReadOptions(), store_->handles_[kEdgesIn]));
  it->Seek(prefix);
  *found = it->Valid() && it->key().starts_with(prefix);
  if (*found) items_with_interactions_.insert(item);
  return FromRocks(it->status(), "scanning store '" + store_->dir_ + "'");
}

void Batch::Put(int cf, const std::string& key, const std::string& value) {
  wb_->Put(store_->handles_[cf], key, value);
  pending_[cf][key] = value;
  ++pending_records_;
}

void Batch::AddToCounter(const std::string& key, int64_t delta) { counter_deltas_[key] += delta; }

size_t Batch::pending_records() const { return pending_records_; }

void Batch::AddExposure(NodeId item, uint64_t impressions, uint64_t plays) {
  if (impressions) AddToCounter(ExposureKey(item, 'i'), int64_t(impressions));
  if (plays) AddToCounter(ExposureKey(item, 'p'), int64_t(plays));
}

Status Batch::MarkImpressionsCounted(std::string_view request, bool* first) {
  return MarkOnce(std::string(kShownPrefix) + std::string(request), first);
}

Status Batch::MarkStreamEntry(std::string_view stream, std::string_view entry, bool* first) {
  return MarkOnce(std::string(kStreamEntryPrefix) + std::string(stream) + "/" + std::string(entry), first);
}

Status Batch::MarkOnce(const std::string& key, bool* first) {
  std::string v;
  bool found = false;
  MOSAIC_RETURN_IF_ERROR(Get(kMeta, key, &v, &found));
  *first = !found;
  if (!found) Put(kMeta, key, "");
  return Status::OK();
}

Status Batch::FindNode(NodeKind kind, std::string_view key, NodeId* id) {
  std::string v;
  bool found = false;
  MOSAIC_RETURN_IF_ERROR(Get(kDict, DictKey(kind, key), &v, &found));
  if (!found) return Status::NotFound(std::string("no ") + NodeKindName(kind) + " '" + std::string(key) + "'");
  if (v.size() != 4) return Status::Corruption("malformed dictionary value");
  *id = ReadU32(v.data());
  return Status::OK();
}

Status Batch::GetNode(NodeId id, NodeRecord* record) {
  std::string v;
  bool found = false;
  MOSAIC_RETURN_IF_ERROR(Get(kNodes, U32(id), &v, &found));
  if (!found) return Status::NotFound("no node " + std::to_string(id));
  if (!DecodeNode(v, record)) return Status::Corruption("node " + std::to_string(id) + " is malformed");
  return Status::OK();
}

Status Batch::UpsertNode(NodeKind kind, std::string_view key, std::string_view label, NodeId* id,
                         bool* created) {
  if (created) *created = false;
  Status s = FindNode(kind, key, id);
  if (s.ok()) {
    if (label.empty()) return Status::OK();
    NodeRecord r;
    MOSAIC_RETURN_IF_ERROR(GetNode(*id, &r));
    if (r.kind != kind) return Status::OK();  // an entity alias of an item keeps the item's label
    if (r.label != label) {
      r.label = std::string(label);
      Put(kNodes, U32(*id), EncodeNode(r));
    }
    return Status::OK();
  }
  if (!s.IsNotFound()) return s;
  if (key.empty()) return Status::InvalidArgument(std::string("empty ") + NodeKindName(kind) + " key");
  if (next_node_id_ == UINT32_MAX) return Status::InvalidArgument("the store is full (2^32 nodes)");
  *id = next_node_id_++;
  NodeRecord r{kind, std::string(key), std::string(label), ""};
  Put(kDict, DictKey(kind, key), U32(*id));
  Put(kNodes, U32(*id), EncodeNode(r));
  AddToCounter(NodeCountKey(kind), 1);
  if (created) *created = true;
  return Status::OK();
}

Status Batch::SetNodeAttributes(NodeId id, std::string_view attributes_json) {
  NodeRecord r;
  MOSAIC_RETURN_IF_ERROR(GetNode(id, &r));
  if (r.attributes == attributes_json) return Status::OK();
  r.attributes = std::string(attributes_json);
  Put(kNodes, U32(id), EncodeNode(r));
  return Status::OK();
}

Status Batch::AddAlias(NodeKind kind, std::string_view key, NodeId id) {
  if (key.empty()) return Status::InvalidArgument(std::string("empty ") + NodeKindName(kind) + " key");
  NodeId existing = 0;
  Status s = FindNode(kind, key, &existing);
  if (s.ok()) {
    if (existing == id) return Status::OK();
    return Status::InvalidArgument(std::string(NodeKindName(kind)) + " '" + std::string(key) +
                                   "' already names another node");
  }
  if (!s.IsNotFound()) return s;
  NodeRecord r;
  MOSAIC_RETURN_IF_ERROR(GetNode(id, &r));
  if (r.kind != kind && !(kind == NodeKind::kEntity && r.kind == NodeKind::kItem)) {
    return Status::InvalidArgument(std::string("a ") + NodeKindName(kind) + " key cannot name a " +
                                   NodeKindName(r.kind));
  }
  Put(kDict, DictKey(kind, key), U32(id));
  if (r.kind != kind) AddToCounter(kItemsLinkedKey, 1);
  return Status::OK();
}

Status Batch::GetRelationName(RelationId id, std::string* name) {
  bool found = false;
  MOSAIC_RETURN_IF_ERROR(Get(kDict, RelationIdKey(id), name, &found));
  if (!found) return Status::NotFound("no relation " + std::to_string(id));
  return Status::OK();
}

Status Batch::UpsertRelation(std::string_view name, RelationId* id) {
  std::string v;
  bool found = false;
  MOSAIC_RETURN_IF_ERROR(Get(kDict, RelationNameKey(name), &v, &found));
  if (found) {
    if (v.size() != 4) return Status::Corruption("malformed relation record");
    *id = ReadU32(v.data());
    return Status::OK();
  }
  if (name.empty()) return Status::InvalidArgument("empty relation name");
  *id = next_relation_id_++;
  Put(kDict, RelationNameKey(name), U32(*id));
  Put(kDict, RelationIdKey(*id), std::string(name));
  if (name == kInteractedRelation) {
    interacted_ = *id;
    interacted_known_ = true;
  }
  return Status::OK();
}

Status Batch::AddEdge(NodeId src, RelationId relation, NodeId dst, float weight) {
  if (src >= next_node_id_ || dst >= next_node_id_ || relation >= next_relation_id_) {
    return Status::InvalidArgument("edge " + std::to_string(src) + " -[" + std::to_string(relation) + "]-> " +
                                   std::to_string(dst) + " refers to a node or relation that does not exist");
  }
  const std::string out_key = EdgeKey(src, relation, dst);
  const std::string value = EncodeWeight(weight);
  std::string old;
  bool found = false;
  MOSAIC_RETURN_IF_ERROR(Get(kEdgesOut, out_key, &old, &found));
  if (found && old == value) return Status::OK();
  if (!found) {
    AddToCounter(EdgeCountKey(relation), 1);
    pending_out_edges_[src].push_back(Edge{src, relation, dst, weight});
  }
  Put(kEdgesOut, out_key, value);
  Put(kEdgesIn, EdgeKey(dst, relation, src), value);
  return Status::OK();
}

Status Batch::PutInteraction(const Interaction& x) {
  if (x.user >= next_node_id_ || x.item >= next_node_id_ ||
      (x.kind == InteractionKind::kTagApplication && x.tag >= next_node_id_)) {
    return Status::InvalidArgument("interaction refers to a node that does not exist");
  }
  const std::string key = InteractionKey(x);
  std::string old;
  bool found = false;
  MOSAIC_RETURN_IF_ERROR(Get(kInteractions, key, &old, &found));
  if (!found) {
    AddToCounter(x.kind == InteractionKind::kConsumption ? kInteractionCountKey : kTagApplicationCountKey, 1);
  }
  Put(kInteractions, key, InteractionValue(x));
  if (x.kind != InteractionKind::kConsumption) return Status::OK();

  if (!interacted_known_) MOSAIC_RETURN_IF_ERROR(UpsertRelation(kInteractedRelation, &interacted_));
  const RelationId interacted = interacted_;
  if (!found) {
    bool item_had_interactions = false;
    MOSAIC_RETURN_IF_ERROR(ItemHasInteractions(x.item, &item_had_interactions));
    if (!item_had_interactions) {
      AddToCounter(kItemsWithInteractionsKey, 1);
      items_with_interactions_.insert(x.item);
    }
  }
  return AddEdge(x.user, interacted, x.item, float(x.weight));
}

Status Batch::ForEachOutEdge(NodeId src, const std::function<bool(const Edge&)>& fn) {
  const std::string prefix = U32(src);
  std::unique_ptr<rocksdb::Iterator> it(store_->db_->NewIterator(rocksdb::ReadOptions(), store_->handles_[kEdgesOut]));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    Edge e;
    MOSAIC_RETURN_IF_ERROR(DecodeEdge(std::string_view(it->key().data(), it->key().size()),
                                      std::string_view(it->value().data(), it->value().size()), false, &e));
    if (!fn(e)) return Status::OK();
  }
  MOSAIC_RETURN_IF_ERROR(FromRocks(it->status(), "scanning store '" + store_->dir_ + "'"));
  auto pending = pending_out_edges_.find(src);
  if (pending == pending_out_edges_.end()) return Status::OK();
  for (const Edge& e : pending->second) {
    if (!fn(e)) break;
  }
  return Status::OK();
}

Status Batch::GetFeature(NodeId item, std::string_view modality, FeatureVector* feature) {
  std::string v;
  bool found = false;
  MOSAIC_RETURN_IF_ERROR(Get(kFeatures, FeatureKey(item, modality), &v, &found));
  if (!found) return Status::NotFound("no " + std::string(modality) + " feature");
  if (!DecodeFeature(v, feature)) return Status::Corruption("malformed feature record");
  return Status::OK();
}

Status Batch::PutFeature(NodeId item, std::string_view modality, const FeatureVector& feature) {
  NodeRecord r;
  MOSAIC_RETURN_IF_ERROR(GetNode(item, &r));
  if (r.kind != NodeKind::kItem) return Status::InvalidArgument("features belong to items; node " + std::to_string(item) + " is a " + NodeKindName(r.kind));
  if (modality.empty()) return Status::InvalidArgument("empty modality name");
  Put(kFeatures, FeatureKey(item, modality), EncodeFeature(feature));
  return Status::OK();
}

Status Batch::PutModelRecord(uint64_t version, std::string_view name, std::string_view blob) {
  if (name.empty()) return Status::InvalidArgument("empty model record name");
  Put(kModels, ModelKey(version, name), std::string(blob));
  return Status::OK();
}

Status Batch::SetCurrentModel(uint64_t version) {
  std::string manifest;
  bool found = false;
  MOSAIC_RETURN_IF_ERROR(Get(kModels, ModelKey(version, kModelManifest), &manifest, &found));
  if (!found) return Status::InvalidArgument("model " + std::to_string(version) + " has no manifest: it is not complete");
  Put(kMeta, kCurrentModelKey, U64Value(version));
  return Status::OK();
}

Status Batch::Commit() {
  rocksdb::DB* db = store_->db_.get();
  rocksdb::ColumnFamilyHandle* meta = store_->handles_[kMeta];
  Put(kMeta, kNextNodeIdKey, U32(next_node_id_));
  Put(kMeta, kNextRelationIdKey, U32(next_relation_id_));
  // Counters are only ever written here, under the writer lock, so the DB value is current.
  for (const auto& [key, delta] : counter_deltas_) {
    if (delta == 0) continue;
    std::string v;
    rocksdb::Status s = db->Get(rocksdb::ReadOptions(), meta, key, &v);
    if (!s.ok() && !s.IsNotFound()) return FromRocks(s, "reading counter");
    uint64_t current = (s.ok() && v.size() == 8) ? ReadU64(v.data()) : 0;
    Put(kMeta, key, U64Value(uint64_t(int64_t(current) + delta)));
  }
  rocksdb::WriteOptions wo;
  wo.sync = true;
  rocksdb::Status s = db->Write(wo, wb_.get());
  wb_->Clear();
  for (auto& p : pending_) p.clear();
  pending_out_edges_.clear();
  counter_deltas_.clear();
  pending_records_ = 0;
  if (!s.ok()) {
    items_with_interactions_.clear();  // may name items of the lost batch
    Status reload = Load();  // forget ids handed out by the failed batch
    (void)reload;
    return FromRocks(s, "writing to store '" + store_->dir_ + "'");
  }
  return Status::OK();
}

}  // namespace mosaic::store
