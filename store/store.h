// Store: one RocksDB database per store folder holding the collaborative knowledge graph
// (users, items, entities, typed relations stored in both directions), interactions,
// item features, model versions and metadata.
//
// Writers go through a Batch: every record of one logical update (an imported chunk, an
// ingested item) lands in one RocksDB WriteBatch, all or nothing. Readers take a ReadView,
// a consistent snapshot that later writes never change.
//
// Thread safety: a Store may be shared by threads. At most one Batch is open at a time
// (BeginBatch blocks until the previous one is committed or dropped); ReadViews are
// independent of each other and of the writer.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "store/status.h"

namespace rocksdb {
class DB;
class ColumnFamilyHandle;
class Snapshot;
class WriteBatch;
}  // namespace rocksdb

namespace mosaic::store {

// Version of the on-disk layout. Bump it whenever a key or value encoding changes.
inline constexpr uint32_t kSchemaVersion = 1;

using NodeId = uint32_t;
using RelationId = uint32_t;

enum class NodeKind : uint8_t { kUser = 1, kItem = 2, kEntity = 3 };

// Returns "user", "item" or "entity".
const char* NodeKindName(NodeKind kind);

// Kinds of interaction record; a (user, item) pair holds at most one of each (per tag).
enum class InteractionKind : uint8_t {
  kConsumption = 0,     ///< a play, view, rating or click; weight is its strength
  kTagApplication = 1,  ///< the user put a tag (an entity) on the item
};

struct NodeRecord {
  NodeKind kind = NodeKind::kEntity;  ///< user, item or entity
  std::string key;                    ///< primary external key, unique within its kind
  std::string label;                  ///< human-readable name; may be empty
  std::string attributes;             ///< JSON object of extra fields (title, year, ...); may be empty
};

struct Edge {
  NodeId src = 0;          ///< head of the triple
  RelationId relation = 0; ///< relation id
  NodeId dst = 0;          ///< tail of the triple
  float weight = 1.0f;     ///< strength (play count for `interacted`, 1 for KG triples)
};

struct Interaction {
  NodeId user = 0;
  NodeId item = 0;
  InteractionKind kind = InteractionKind::kConsumption;
  NodeId tag = 0;          ///< tag entity, only for kTagApplication
  double weight = 1.0;     ///< play count, rating or 1
  int64_t timestamp = 0;   ///< seconds since the epoch; 0 when unknown
};

// A content feature vector of an item (text, visual, audio), tagged with the extractor that
// made it so that a changed extractor re-computes instead of mixing versions.
struct FeatureVector {
  std::string extractor;     ///< e.g. "mosaic-visual"
  uint32_t version = 0;      ///< the extractor's version
  std::vector<float> values; ///< the vector
  std::string source;        ///< what it was computed from (the text encoded, a content hash), to skip unchanged inputs
};

// How often an item was shown and played, for exploration: impressions posted for it
// (POST /impressions) and plays posted through the server (POST /interactions) since the counters
// began. Both only grow.
struct Exposure {
  uint64_t impressions = 0;  ///< times it was in a list a user was shown
  uint64_t plays = 0;        ///< plays of it posted to the server
};

// Name of the relation joining users to the items they interacted with (KGAT's CKG).
inline constexpr std::string_view kInteractedRelation = "interacted";

// Record counts kept up to date by every Batch, so that `stats` never scans.
struct Counters {
  std::map<NodeKind, uint64_t> nodes;             ///< nodes per kind
  std::map<RelationId, uint64_t> edges;           ///< triples per relation (each counted once)
  uint64_t interactions = 0;                      ///< kConsumption records
  uint64_t tag_applications = 0;                  ///< kTagApplication records
  uint64_t items_with_interactions = 0;           ///< items with at least one `interacted` edge
  uint64_t items_linked = 0;                      ///< items aliased to a KG entity
};

struct OpenOptions {
  bool create_if_missing = false;  ///< create an empty store when the folder holds none
  bool read_only = false;          ///< open without the write lock (no Batch allowed)
  // Open as a follower: a read-only RocksDB secondary instance that sees later writes of the
  // process holding the store (or of the next one) each time CatchUp() is called. A follower's
  // ReadViews read the state of the last CatchUp, not a snapshot: the caller must not CatchUp
  // while a view is being read. Implies read_only.
  bool follower = false;
  // Writers only: while another process holds the write lock, wait up to this long for it
  // instead of returning Busy at once. While waiting, a marker file in the folder tells the
  // holder that a writer waits (see WriterWaiting); `on_wait` is called once when waiting starts.
  int wait_for_lock_ms = 0;
  std::function<void()> on_wait;
};

class ReadView;
class Batch;

class Store {
 public:
  // Opens the store in folder `dir`. On success stores it in *store and returns OK.
  // Returns NotFound when there is no store there (and create_if_missing is false),
  // VersionMismatch when it was written with another schema version, InvalidArgument when
  // the folder holds something else, Busy when another process has it open for writing.
  // A read-only or follower open that races a writer's compaction (a table file deleted between
  // reading the MANIFEST and opening it) is retried for up to about 1.6 s.
  static Status Open(const std::string& dir, const OpenOptions& options,
                     std::unique_ptr<Store>* store);

  // Whether a process is waiting in Open (wait_for_lock_ms) for the write lock of the store in
  // `dir`: a holder that can pause its writes should close the store soon. Markers whose process
  // is no longer alive (kill(pid, 0) fails with ESRCH) do not count, and are removed.
  static bool WriterWaiting(const std::string& dir);

  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  const std::string& dir() const { return dir_; }

  // Returns a consistent snapshot of the whole store.
  std::unique_ptr<ReadView> NewReadView() const;

  // Starts a batch of writes; blocks while another batch is open. Returns InvalidArgument
  // on a read-only store.
  Status BeginBatch(std::unique_ptr<Batch>* batch);

  // Follower only: applies what the writers committed since the last call. Returns
  // InvalidArgument on a store that is not a follower.
  Status CatchUp();

  // The sequence number of the last write this handle sees; a change means new writes.
  uint64_t LatestSequence() const;

  // Reads every block of every table file of every column family and verifies its checksum (RocksDB's
  // VerifyChecksum). Returns Corruption naming the file and what failed, IOError when a file cannot be
  // read, OK when every block is intact. Reads the whole store: as slow as a full scan.
  Status VerifyChecksums() const;

 private:
  friend class ReadView;
  friend class Batch;
  Store() = default;
  // True when no column family holds a key (a creation cut off before its first write).
  bool IsEmpty() const;
  static Status OpenOnce(const std::string& dir, const OpenOptions& options, std::unique_ptr<Store>* store);

  std::string dir_;
  bool read_only_ = false;
  std::string follower_dir_;  // the secondary instance's private folder (its LOG); empty unless a follower
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;  // indexed by the Cf enum in store.cc
  std::mutex writer_mutex_;
};

// A snapshot of the store. Every read sees the store as it was when the view was made.
class ReadView {
 public:
  ~ReadView();

  // On success stores the id of the node with primary key or alias (kind, key) in *id.
  // Returns NotFound if there is none.
  Status FindNode(NodeKind kind, std::string_view key, NodeId* id) const;

  // Returns NotFound if `id` is not a node.
  Status GetNode(NodeId id, NodeRecord* record) const;

  // Returns NotFound if no relation has this name.
  Status FindRelation(std::string_view name, RelationId* id) const;

  // Returns NotFound if `id` is not a relation.
  Status GetRelationName(RelationId id, std::string* name) const;

  // All relations, by id.
  Status ListRelations(std::map<RelationId, std::string>* relations) const;

  // One past the largest node id ever assigned (ids are dense from 0).
  Status NodeIdLimit(NodeId* limit) const;

  Status GetCounters(Counters* counters) const;

  // Calls fn for each node in id order until it returns false.
  Status ForEachNode(const std::function<bool(NodeId, const NodeRecord&)>& fn) const;

  // Calls fn for each edge leaving `src` (ordered by relation, then tail) until it returns false.
  Status ForEachOutEdge(NodeId src, const std::function<bool(const Edge&)>& fn) const;

  // Calls fn for each edge entering `dst` (ordered by relation, then head) until it returns false.
  Status ForEachInEdge(NodeId dst, const std::function<bool(const Edge&)>& fn) const;

  // Calls fn for every edge of the graph (forward direction) until it returns false.
  Status ForEachEdge(const std::function<bool(const Edge&)>& fn) const;

  // Calls fn for every interaction record, ordered by user then item, until it returns false.
  Status ForEachInteraction(const std::function<bool(const Interaction&)>& fn) const;

  // On success stores the item's `modality` vector ("visual", "audio", "text") in *feature.
  // Returns NotFound when the item has none.
  Status GetFeature(NodeId item, std::string_view modality, FeatureVector* feature) const;

  // Calls fn(modality, feature) for each feature vector of `item`, by modality name.
  Status ForEachFeature(NodeId item,
                        const std::function<bool(const std::string&, const FeatureVector&)>& fn) const;

  // The item's exposure counters; zeros when it has none.
  Status GetExposure(NodeId item, Exposure* exposure) const;

  // Calls fn for each item with exposure counters, in id order, until it returns false.
  Status ForEachExposure(const std::function<bool(NodeId, const Exposure&)>& fn) const;

  // The model version queries should use (set by Batch::SetCurrentModel); NotFound before the
  // first rebuild.
  Status GetCurrentModel(uint64_t* version) const;

  // On success stores record `name` of model `version` in *blob. NotFound if absent.
  Status GetModelRecord(uint64_t version, std::string_view name, std::string* blob) const;

  // Names of the records of model `version`, in order.
  Status ListModelRecords(uint64_t version, std::vector<std::string>* names) const;

  // Verifies the store's invariants: every forward edge has its reverse and vice versa,
  // every edge's endpoints and relation exist, every node has its dictionary entry, every
  // dictionary entry points to a node of its kind, every interaction has its `interacted`
  // edge, every feature vector belongs to an item and decodes, and the counters match. Returns Corruption naming the first few
  // violations.
  Status CheckConsistency() const;

 private:
  friend class Store;
  ReadView(const Store* store);
  const Store* store_;
  const rocksdb::Snapshot* snapshot_;
};

// A set of writes that commits atomically. Reads through a Batch see its own pending writes.
// Dropping a Batch without Commit discards everything it holds.
class Batch {
 public:
  ~Batch();

  // Looks up (kind, key), including pending writes. Returns NotFound if absent.
  Status FindNode(NodeKind kind, std::string_view key, NodeId* id);

  // Returns the node (kind, key), creating it when absent. A non-empty `label` replaces the
  // stored one. *created, when given, tells whether the node is new.
  Status UpsertNode(NodeKind kind, std::string_view key, std::string_view label, NodeId* id,
                    bool* created = nullptr);

  // Replaces the node's attributes (a JSON object as text).
  Status SetNodeAttributes(NodeId id, std::string_view attributes_json);

  Status GetNode(NodeId id, NodeRecord* record);

  // Makes (kind, key) another name of node `id`; an existing identical alias is a no-op.
  // Returns InvalidArgument when (kind, key) already names a different node.
  Status AddAlias(NodeKind kind, std::string_view key, NodeId id);

  // Returns NotFound if `id` is not a relation.
  Status GetRelationName(RelationId id, std::string* name);

  // Returns the relation named `name`, creating it when absent.
  Status UpsertRelation(std::string_view name, RelationId* id);

  // Adds the triple in both directions. Adding an existing triple updates its weight only.
  Status AddEdge(NodeId src, RelationId relation, NodeId dst, float weight = 1.0f);

  // Calls fn for each edge leaving `src`, committed or pending in this batch, until it
  // returns false (committed edges first, in key order, then pending ones).
  Status ForEachOutEdge(NodeId src, const std::function<bool(const Edge&)>& fn);

  // The item's stored `modality` vector, as committed (NotFound when none).
  Status GetFeature(NodeId item, std::string_view modality, FeatureVector* feature);

  // Stores the interaction (replacing one with the same user, item, kind and tag) and, for
  // consumption, the `interacted` edge from user to item with the same weight.
  Status PutInteraction(const Interaction& interaction);

  // Stores (replaces) the item's feature vector for `modality`.
  Status PutFeature(NodeId item, std::string_view modality, const FeatureVector& feature);

  // Adds to the item's exposure counters, at Commit, atomically with the rest of the batch.
  void AddExposure(NodeId item, uint64_t impressions, uint64_t plays);

  // Marks the impressions of request `request` (an id a /recommend reply carried) as counted.
  // *first tells whether they were not yet (committed or pending): a repeated POST counts nothing.
  Status MarkImpressionsCounted(std::string_view request, bool* first);

  // Marks entry `entry` of stream `stream` (`mosaic consume`) as applied, with the rest of the batch.
  // *first tells whether it was not yet (committed or pending): an entry delivered again changes nothing.
  Status MarkStreamEntry(std::string_view stream, std::string_view entry, bool* first);

  // Stores record `name` (weights, representations, ...) of model `version`. Versions are
  // immutable by convention: a rebuild writes a new one, in as many batches as it needs, and
  // only then points queries at it with SetCurrentModel.
  Status PutModelRecord(uint64_t version, std::string_view name, std::string_view blob);

  // Points queries at model `version`, which must hold a record named "manifest" (written last
  // by a rebuild, so that a half-written version can never become current).
  Status SetCurrentModel(uint64_t version);

  // Number of RocksDB records written so far (to bound a batch's size).
  size_t pending_records() const;

  // Writes everything atomically with the WAL synced. After Commit the Batch is empty and
  // may be reused.
  Status Commit();

 private:
  friend class Store;
  explicit Batch(Store* store);
  Status Load();
  Status Get(int cf, const std::string& key, std::string* value, bool* found);
  Status ItemHasInteractions(NodeId item, bool* found);
  // Puts meta key `key` unless it is there (committed or pending); *first: it was not.
  Status MarkOnce(const std::string& key, bool* first);
  void Put(int cf, const std::string& key, const std::string& value);
  void AddToCounter(const std::string& key, int64_t delta);

  Store* store_;
  std::unique_lock<std::mutex> lock_;
  std::unique_ptr<rocksdb::WriteBatch> wb_;
  // What wb_ holds, per column family, so that reads see pending writes in O(1).
  std::vector<std::unordered_map<std::string, std::string>> pending_;
  // Items known to have an `interacted` edge (committed or pending); such facts never expire.
  std::unordered_set<NodeId> items_with_interactions_;
  // Edges added by this batch that were not committed before, by head, for ForEachOutEdge.
  std::unordered_map<NodeId, std::vector<Edge>> pending_out_edges_;
  NodeId next_node_id_ = 0;
  RelationId next_relation_id_ = 0;
  std::map<std::string, int64_t> counter_deltas_;
  size_t pending_records_ = 0;
  RelationId interacted_ = 0;
  bool interacted_known_ = false;
};

}  // namespace mosaic::store
