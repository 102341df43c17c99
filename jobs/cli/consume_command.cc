// mosaic consume: applies a Redis stream of catalogue items, plays and media paths to the store,
// as one member of a consumer group (many producers, any number of consumers).
//
// Delivery: XREADGROUP gives each entry to one consumer; an entry is acknowledged (XACK) only after
// the batch that applied it is committed, so a consumer killed at any point leaves its entries
// pending. On start a consumer first takes back its own pending entries, then claims those other
// consumers left idle longer than --claim-idle-ms (XAUTOCLAIM), then reads new ones.
// Idempotence: the commit that applies a batch's plays also marks each entry of the batch as applied
// (store meta "stream/<stream>/<id>"), so an entry delivered again (committed, then killed before
// XACK) is skipped; items and media are keyed (catalogue id, content hash) and writing one again
// changes nothing.
// Bad entries are normal: each is reported (stderr, or the JSON summary), put with its error into the
// hash "<stream>:rejected" (field: the entry id; before the commit, and idempotent, so exactly once),
// marked and acknowledged, so that it is not delivered forever.
#include <hiredis/hiredis.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <memory>
#include <thread>

#include "graph/import.h"
#include "graph/text.h"
#include "graph/text_features.h"
#include "jobs/cli/commands.h"
#include "jobs/cli/model_plugin.h"
#include "store/store.h"

namespace mosaic::jobs {

namespace {

std::atomic<bool> g_consume_stop{false};
void OnConsumeStop(int) { g_consume_stop = true; }

using Reply = std::unique_ptr<redisReply, decltype(&freeReplyObject)>;

// One connection to Redis; every command's failure is a Status naming the command.
class Redis {
 public:
  Status Connect(const std::string& host, int port) {
    timeval timeout{5, 0};
    context_.reset(redisConnectWithTimeout(host.c_str(), port, timeout));
    if (!context_) return Status::IOError("redis: out of memory");
    if (context_->err) return Status::IOError("redis " + host + ":" + std::to_string(port) + ": " + context_->errstr);
    timeval io{60, 0};  // a BLOCKing read waits at most --block-ms, far less than this
    redisSetTimeout(context_.get(), io);
    return Status::OK();
  }
  // Runs a command given as arguments (binary-safe). An error reply is a Status unless `allowed_error`
  // starts it (then *reply holds it).
  Status Command(const std::vector<std::string>& args, Reply* reply, const char* allowed_error = nullptr) {
    std::vector<const char*> argv;
    std::vector<size_t> lengths;
    for (const auto& a : args) {
      argv.push_back(a.data());
      lengths.push_back(a.size());
    }
    auto* r = static_cast<redisReply*>(redisCommandArgv(context_.get(), int(argv.size()), argv.data(), lengths.data()));
    if (!r) return Status::IOError("redis " + args[0] + ": " + (context_->err ? context_->errstr : "no reply"));
    Reply owned(r, freeReplyObject);
    if (r->type == REDIS_REPLY_ERROR) {
      const std::string error(r->str, r->len);
      if (!allowed_error || error.rfind(allowed_error, 0) != 0) return Status::IOError("redis " + args[0] + ": " + error);
    }
    *reply = std::move(owned);
    return Status::OK();
  }

 private:
  std::unique_ptr<redisContext, decltype(&redisFree)> context_{nullptr, redisFree};
};

std::string Str(const redisReply* r) { return r && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) ? std::string(r->str, r->len) : ""; }

// One stream entry: its id and fields.
struct Entry {
  std::string id;
  std::map<std::string, std::string> fields;
};

// The entries of an XREADGROUP / XAUTOCLAIM entry list ([[id, [field, value, ...]], ...]); an entry
// deleted from the stream while pending comes as [id, nil] and is kept with no fields.
void ReadEntries(const redisReply* list, std::vector<Entry>* out) {
  if (!list || list->type != REDIS_REPLY_ARRAY) return;
  for (size_t i = 0; i < list->elements; ++i) {
    const redisReply* e = list->element[i];
    if (e->type != REDIS_REPLY_ARRAY || e->elements < 2) continue;
    Entry entry;
    entry.id = Str(e->element[0]);
    const redisReply* fields = e->element[1];
    if (fields->type == REDIS_REPLY_ARRAY) {
      for (size_t f = 0; f + 1 < fields->elements; f += 2) entry.fields[Str(fields->element[f])] = Str(fields->element[f + 1]);
    }
    out->push_back(std::move(entry));
  }
}

// A parsed entry: what it asks for, or why it is refused.
struct Parsed {
  enum Kind { kItem, kPlay, kMedia, kRejected } kind = kRejected;
  graph::CatalogueItem item;   // kItem
  std::string user, item_key;  // kPlay
  double weight = 1;
  int64_t timestamp = 0;
  std::string path;            // kMedia
  std::string error;           // kRejected
};

std::string Field(const Entry& e, const std::string& name) {
  auto it = e.fields.find(name);
  return it == e.fields.end() ? "" : it->second;
}

Parsed ParseEntry(const Entry& e) {
  Parsed p;
  const std::string type = Field(e, "type");
  for (const auto& [name, value] : e.fields) {
    if (graph::FindInvalidUtf8(value) != std::string::npos) {
      p.error = "field '" + name + "' is not UTF-8";
      return p;
    }
  }
  if (type == "item") {
    const nlohmann::json j = nlohmann::json::parse(Field(e, "json"), nullptr, false);
    if (!j.is_object()) {
      p.error = "field 'json' must hold one JSON object (a catalogue item, as a line of import --format jsonl)";
      return p;
    }
    Status s = graph::ParseCatalogueObject(j, "id", &p.item);
    if (!s.ok()) {
      p.error = s.message();
      return p;
    }
    p.kind = Parsed::kItem;
  } else if (type == "play") {
    p.user = Field(e, "user");
    p.item_key = Field(e, "item");
    if (p.user.empty() || p.item_key.empty()) {
      p.error = std::string("field '") + (p.user.empty() ? "user" : "item") + "' is required";
      return p;
    }
    const std::string weight = Field(e, "weight"), timestamp = Field(e, "timestamp");
    try {
      size_t used = 0;
      if (!weight.empty()) {
        p.weight = std::stod(weight, &used);
        if (used != weight.size() || !std::isfinite(p.weight) || p.weight <= 0 || p.weight > graph::kMaxWeight) throw 0;
      }
    } catch (...) {
      p.error = "field 'weight' must be a number in (0, 1e9], not '" + weight + "'";
      return p;
    }
    try {
      size_t used = 0;
      if (!timestamp.empty()) {
        p.timestamp = std::stoll(timestamp, &used);
        if (used != timestamp.size() || p.timestamp < 0) throw 0;
      }
    } catch (...) {
      p.error = "field 'timestamp' must be seconds since the epoch, not '" + timestamp + "'";
      return p;
    }
    p.kind = Parsed::kPlay;
  } else if (type == "media") {
    p.path = Field(e, "path");
    if (p.path.empty()) {
      p.error = "field 'path' is required";
      return p;
    }
    p.kind = Parsed::kMedia;
  } else {
    p.error = e.fields.empty() ? "the entry is gone from the stream (deleted while pending)"
                               : "field 'type' must be item, play or media, not '" + type + "'";
  }
  return p;
}

struct Totals {
  uint64_t batches = 0, items = 0, plays = 0, media = 0, duplicates = 0, rejected = 0;
  nlohmann::json rejections = nlohmann::json::array();  // the first few
};

class Consumer {
 public:
  Consumer(const Context& ctx, const ConsumeArgs& args) : ctx_(ctx), args_(args) {}

  Status Run();

 private:
  // Applies `entries` to the store, then acknowledges them.
  Status Apply(const std::vector<Entry>& entries);
  Status Reject(const Entry& e, const std::string& error);
  Status Acknowledge(const std::vector<Entry>& entries);
  // Reads up to --batch entries: `from` "0" (this consumer's pending ones) or ">" (new ones).
  Status Read(const std::string& from, int block_ms, std::vector<Entry>* entries);

  const Context& ctx_;
  const ConsumeArgs& args_;
  Redis redis_;
  std::unique_ptr<store::Store> store_;
  std::shared_ptr<const encoders::TextModel> encoder_;
  std::unique_ptr<graph::TextFeatureHook> text_;
  bool text_loaded_ = false;
  Totals totals_;
};

Status Consumer::Read(const std::string& from, int block_ms, std::vector<Entry>* entries) {
  std::vector<std::string> command = {"XREADGROUP", "GROUP", args_.group, args_.consumer, "COUNT", std::to_string(args_.batch)};
  if (block_ms > 0) {
    command.push_back("BLOCK");
    command.push_back(std::to_string(block_ms));
  }
  command.insert(command.end(), {"STREAMS", args_.stream, from});
  Reply reply(nullptr, freeReplyObject);
  MOSAIC_RETURN_IF_ERROR(redis_.Command(command, &reply));
  if (reply->type != REDIS_REPLY_ARRAY) return Status::OK();  // nil: nothing within the block time
  for (size_t s = 0; s < reply->elements; ++s) {
    const redisReply* stream = reply->element[s];
    if (stream->type == REDIS_REPLY_ARRAY && stream->elements == 2) ReadEntries(stream->element[1], entries);
  }
  return Status::OK();
}

Status Consumer::Reject(const Entry& e, const std::string& error) {
  ++totals_.rejected;
  if (totals_.rejections.size() < 20) totals_.rejections.push_back({{"id", e.id}, {"error", error}});
  if (!ctx_.json) std::fprintf(stderr, "mosaic consume: %s entry %s: %s\n", args_.stream.c_str(), e.id.c_str(), error.c_str());
  const nlohmann::json record = {{"error", error}, {"fields", e.fields}};
  Reply reply(nullptr, freeReplyObject);
  return redis_.Command({"HSET", args_.stream + ":rejected", e.id, record.dump()}, &reply);
}

Status Consumer::Acknowledge(const std::vector<Entry>& entries) {
  std::vector<std::string> command = {"XACK", args_.stream, args_.group};
  for (const Entry& e : entries) command.push_back(e.id);
  Reply reply(nullptr, freeReplyObject);
  return redis_.Command(command, &reply);
}

Status Consumer::Apply(const std::vector<Entry>& entries) {
  if (entries.empty()) return Status::OK();
  std::vector<Parsed> parsed;
  for (const Entry& e : entries) parsed.push_back(ParseEntry(e));

  // Items and media first (each written by the path import and ingest use, keyed, so writing one
  // again changes nothing), so that plays of this batch may name them.
  std::vector<service::NewItem> items;
  std::vector<std::string> media;
  for (const Parsed& p : parsed) {
    if (p.kind == Parsed::kItem) items.push_back({p.item, {}});
    if (p.kind == Parsed::kMedia) media.push_back(p.path);
  }
  if ((!items.empty() || !media.empty()) && !text_loaded_) {
    MOSAIC_RETURN_IF_ERROR(LoadTextHook(ctx_, &encoder_, &text_));
    text_loaded_ = true;
  }
  PluginPlacer placer;
  if (!items.empty()) {
    std::vector<service::WrittenItem> written;
    service::PlaceReport placed;
    MOSAIC_RETURN_IF_ERROR(service::AddItems(store_.get(), items, text_.get(), &placer, &written, &placed));
  }
  std::map<std::string, std::string> media_errors;  // path -> why it was not ingested
  store::NodeId first_new = 0;
  MOSAIC_RETURN_IF_ERROR(store_->NewReadView()->NodeIdLimit(&first_new));
  for (const std::string& path : media) {
    IngestArgs ingest;
    ingest.paths = {path};
    ingest.jobs = 1;
    nlohmann::json result;
    Status s = IngestInto(ctx_, store_.get(), ingest, text_.get(), &result);
    if (s.IsInvalidArgument() || s.IsNotFound()) {  // not a media file, or no such path
      media_errors[path] = s.message();
      continue;
    }
    MOSAIC_RETURN_IF_ERROR(s);
    for (const auto& file : result["files"]) {
      if (file.value("status", "") == "failed") media_errors[path] = file.value("error", "could not be ingested");
    }
  }
  if (!media.empty()) {
    service::PlaceReport placed;
    MOSAIC_RETURN_IF_ERROR(service::PlaceCreatedItems(store_.get(), first_new, &placer, &placed));
  }

  // Plays, and every entry's mark, in one batch.
  std::unique_ptr<store::Batch> batch;
  MOSAIC_RETURN_IF_ERROR(store_->BeginBatch(&batch));
  std::vector<std::pair<const Entry*, std::string>> rejected;
  for (size_t i = 0; i < entries.size(); ++i) {
    const Entry& e = entries[i];
    const Parsed& p = parsed[i];
    bool first = false;
    MOSAIC_RETURN_IF_ERROR(batch->MarkStreamEntry(args_.stream, e.id, &first));
    if (!first) {
      ++totals_.duplicates;
      continue;
    }
    switch (p.kind) {
      case Parsed::kRejected:
        rejected.push_back({&e, p.error});
        break;
      case Parsed::kItem:
        ++totals_.items;
        break;
      case Parsed::kMedia:
        if (media_errors.count(p.path)) {
          rejected.push_back({&e, media_errors[p.path]});
        } else {
          ++totals_.media;
        }
        break;
      case Parsed::kPlay: {
        store::Interaction x;
        Status found = batch->FindNode(store::NodeKind::kItem, p.item_key, &x.item);
        if (found.IsNotFound()) {
          rejected.push_back({&e, "unknown item '" + p.item_key + "' (send the item first)"});
          break;
        }
        MOSAIC_RETURN_IF_ERROR(found);
        MOSAIC_RETURN_IF_ERROR(batch->UpsertNode(store::NodeKind::kUser, p.user, "", &x.user));
        x.weight = p.weight;
        x.timestamp = p.timestamp;
        MOSAIC_RETURN_IF_ERROR(batch->PutInteraction(x));
        ++totals_.plays;
        break;
      }
    }
  }
  // Rejections first: a crash before the commit writes them again, to the same fields.
  for (const auto& [entry, error] : rejected) MOSAIC_RETURN_IF_ERROR(Reject(*entry, error));
  MOSAIC_RETURN_IF_ERROR(batch->Commit());
  MOSAIC_RETURN_IF_ERROR(Acknowledge(entries));
  ++totals_.batches;
  return Status::OK();
}

Status Consumer::Run() {
  MOSAIC_RETURN_IF_ERROR(redis_.Connect(args_.host, args_.port));
  Reply reply(nullptr, freeReplyObject);
  // The group reads the stream from its first entry; one that exists already keeps its place.
  MOSAIC_RETURN_IF_ERROR(redis_.Command({"XGROUP", "CREATE", args_.stream, args_.group, "0", "MKSTREAM"}, &reply, "BUSYGROUP"));
  MOSAIC_RETURN_IF_ERROR(OpenStore(ctx_, /*create=*/true, /*read_only=*/false, &store_));

  struct sigaction action = {};
  action.sa_handler = OnConsumeStop;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);

  // What this consumer was given before it stopped, then what others left idle.
  for (;;) {
    std::vector<Entry> pending;
    MOSAIC_RETURN_IF_ERROR(Read("0", 0, &pending));
    if (pending.empty()) break;
    MOSAIC_RETURN_IF_ERROR(Apply(pending));
  }
  std::string cursor = "0-0";
  do {
    MOSAIC_RETURN_IF_ERROR(redis_.Command({"XAUTOCLAIM", args_.stream, args_.group, args_.consumer,
                                           std::to_string(args_.claim_idle_ms), cursor, "COUNT",
                                           std::to_string(args_.batch)},
                                          &reply));
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 2) break;
    cursor = Str(reply->element[0]);
    std::vector<Entry> claimed;
    ReadEntries(reply->element[1], &claimed);
    MOSAIC_RETURN_IF_ERROR(Apply(claimed));
  } while (cursor != "0-0" && !g_consume_stop);

  auto idle_since = std::chrono::steady_clock::now();
  while (!g_consume_stop) {
    std::vector<Entry> entries;
    MOSAIC_RETURN_IF_ERROR(Read(">", args_.block_ms, &entries));
    if (entries.empty()) {
      const double idle = std::chrono::duration<double>(std::chrono::steady_clock::now() - idle_since).count();
      if (args_.until_idle_s > 0 && idle >= args_.until_idle_s) break;
      continue;
    }
    MOSAIC_RETURN_IF_ERROR(Apply(entries));
    idle_since = std::chrono::steady_clock::now();
    if (ctx_.progress) {
      std::fprintf(stderr, "\rconsumed: %llu plays, %llu items, %llu media, %llu rejected, %llu already applied ",
                   (unsigned long long)totals_.plays, (unsigned long long)totals_.items, (unsigned long long)totals_.media,
                   (unsigned long long)totals_.rejected, (unsigned long long)totals_.duplicates);
    }
  }
  if (ctx_.progress) std::fprintf(stderr, "\n");
  const nlohmann::json summary = {{"stream", args_.stream},     {"group", args_.group},         {"consumer", args_.consumer},
                                  {"batches", totals_.batches}, {"plays", totals_.plays},       {"items", totals_.items},
                                  {"media", totals_.media},     {"rejected", totals_.rejected}, {"already_applied", totals_.duplicates},
                                  {"rejections", totals_.rejections}};
  if (ctx_.json) {
    std::printf("%s\n", summary.dump().c_str());
  } else {
    std::printf("consumed %s: %llu plays, %llu items, %llu media files, %llu rejected (in %s:rejected), %llu delivered again and skipped\n",
                args_.stream.c_str(), (unsigned long long)totals_.plays, (unsigned long long)totals_.items,
                (unsigned long long)totals_.media, (unsigned long long)totals_.rejected, args_.stream.c_str(),
                (unsigned long long)totals_.duplicates);
  }
  return Status::OK();
}

}  // namespace

Status RunConsume(const Context& ctx, const ConsumeArgs& args) {
  if (args.batch < 1 || args.batch > 10000) return Status::InvalidArgument("--batch must be between 1 and 10000");
  // A read that does not block would spin against Redis while the stream is empty.
  if (args.block_ms < 1 || args.block_ms > 60000) return Status::InvalidArgument("--block-ms must be between 1 and 60000");
  if (args.claim_idle_ms < 0) return Status::InvalidArgument("--claim-idle-ms must not be negative");
  if (!(args.until_idle_s >= 0)) return Status::InvalidArgument("--until-idle must not be negative");
  if (args.stream.empty() || args.group.empty() || args.consumer.empty()) {
    return Status::InvalidArgument("--stream, --group and --consumer must not be empty");
  }
  Consumer consumer(ctx, args);
  return consumer.Run();
}

}  // namespace mosaic::jobs
