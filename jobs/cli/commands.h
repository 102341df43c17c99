// The `mosaic` subcommands: thin layers that parse nothing (main.cc does) and print what the
// components and the model-service layer (jobs/service/) return. Each returns a Status; main.cc is
// the one place that turns a Status into a message on stderr and an exit code.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "fusion/explore.h"
#include "graph/import.h"
#include "jobs/service/add_items.h"
#include "jobs/service/query.h"
#include "jobs/service/rebuild.h"
#include "store/status.h"

namespace mosaic::store {
class Store;
class ReadView;
}  // namespace mosaic::store
namespace mosaic::encoders {
class TextModel;
}
namespace mosaic::graph {
struct TextFeatureHook;
}
namespace mosaic::fusion {
struct EvalData;
}

namespace mosaic::jobs {

// How long a command that writes waits for another process's write lock.
inline constexpr int kWriteLockWaitMs = 30000;

struct Context {
  std::string store_dir;   ///< --store
  bool json = false;       ///< --json: machine-readable output on stdout, no progress line
  bool progress = false;   ///< draw progress lines on stderr
  std::string model_dir;   ///< --model: folder of the USE-lite text model
  std::string device = "cpu";  ///< --device for models: auto, cpu or cuda
  bool no_text = false;    ///< --no-text: import/ingest without text embeddings
};

// The text model's folder unless --model says otherwise: $MOSAIC_MODEL_DIR, else where
// scripts/fetch-model puts it.
std::string DefaultModelDir();

// Loads the text encoder; NotFound (saying how to fetch it) when its files are missing.
Status LoadTextModel(const Context& ctx, std::shared_ptr<const encoders::TextModel>* encoder);

// The hook through which imports and ingests keep items' text embeddings current.
graph::TextFeatureHook MakeTextHook(std::shared_ptr<const encoders::TextModel> encoder);

// Unless --no-text: loads the model into *encoder and makes *hook; otherwise leaves both empty.
Status LoadTextHook(const Context& ctx, std::shared_ptr<const encoders::TextModel>* encoder,
                    std::unique_ptr<graph::TextFeatureHook>* hook);

// mosaic embed: prints the embeddings (and token ids with --json) of each text.
Status RunEmbed(const Context& ctx, const std::vector<std::string>& texts);

// mosaic similar-text: ranks stored items by the cosine similarity of their text embedding.
Status CollectSimilarText(const store::ReadView& view, const encoders::TextModel& encoder, const std::string& query,
                          size_t k, nlohmann::json* result);
void PrintSimilarText(const nlohmann::json& result);
Status RunSimilarText(const Context& ctx, const std::string& query, size_t k);

// Opens the store of `ctx` (creating it when `create`), read-only when `read_only`.
Status OpenStore(const Context& ctx, bool create, bool read_only, std::unique_ptr<store::Store>* store);

// mosaic import: imports the request into `store` and describes what it did in *result.
Status ImportInto(const Context& ctx, store::Store* store, const graph::ImportRequest& request,
                  nlohmann::json* result);
Status RunImport(const Context& ctx, const graph::ImportRequest& request);

// mosaic stats
Status CollectStats(const store::ReadView& view, nlohmann::json* stats);
void PrintStats(const nlohmann::json& stats);
Status RunStats(const Context& ctx);

// mosaic neighbors
struct NeighborsArgs {
  std::string item;                    ///< item id or exact title (case-insensitive)
  int hops = 2;                        ///< walk this far
  std::vector<std::string> relations;  ///< walk only these; empty = all but `interacted`
  size_t limit = 20;                   ///< nodes shown per hop; 0 = all
};
Status CollectNeighbors(const store::ReadView& view, const NeighborsArgs& args, nlohmann::json* result);
void PrintNeighbors(const nlohmann::json& result);
Status RunNeighbors(const Context& ctx, const NeighborsArgs& args);

// mosaic ingest
struct IngestArgs {
  std::vector<std::string> paths;  ///< files and folders (scanned recursively for media extensions)
  std::string meta_file;           ///< --meta: JSONL of per-file metadata, matched by path or file name
  int jobs = 0;                    ///< files analysed in parallel; 0 = all cores
  bool verbose = false;            ///< print FFmpeg's warnings
};
// `text`, when given, also computes the items' text embeddings in the same write.
Status IngestInto(const Context& ctx, store::Store* store, const IngestArgs& args, const graph::TextFeatureHook* text,
                  nlohmann::json* result);
void PrintIngest(const nlohmann::json& result);
Status RunIngest(const Context& ctx, const IngestArgs& args);

// mosaic consume: applies a Redis stream's entries (items, plays, media paths) as a consumer group member.
struct ConsumeArgs {
  std::string host = "127.0.0.1";    ///< --redis HOST:PORT
  int port = 6379;
  std::string stream;                ///< --stream
  std::string group = "mosaic";      ///< --group
  std::string consumer = "mosaic";   ///< --consumer: stable across restarts (its pending entries are taken back)
  int batch = 500;                   ///< entries per read and per commit
  int block_ms = 2000;               ///< how long one read waits for entries
  long long claim_idle_ms = 60000;   ///< at start, claim other consumers' entries pending this long
  double until_idle_s = 0;           ///< stop after this long without entries; 0: run until SIGINT/SIGTERM
};
Status RunConsume(const Context& ctx, const ConsumeArgs& args);

// mosaic show: an item's metadata, KG links and feature summary.
Status CollectShow(const store::ReadView& view, const std::string& item, nlohmann::json* result);
void PrintShow(const nlohmann::json& result);
Status RunShow(const Context& ctx, const std::string& item);

// --distributed's settings: each from its option, else from torchrun's variable.
struct GroupArgs {
  std::string master_addr;    ///< empty: $MASTER_ADDR, else 127.0.0.1
  int master_port = -1;       ///< -1: $MASTER_PORT
  int rank = -1;              ///< -1: $RANK
  int world_size = -1;        ///< -1: $WORLD_SIZE
  int timeout_s = 120;        ///< rendezvous and each collective
};
// The group of `args` and the environment; InvalidArgument naming what is missing or out of range.
Status ResolveGroup(const GroupArgs& args, service::DistributedRebuild* group);

// mosaic eval: a protocol on a dataset, with every baseline in the same run.
struct EvalArgs {
  std::string data;        ///< dataset folder (lastfm-kgcn: kg.txt, item_index2entity_id.txt, user_artists.dat)
  std::string dataset;     ///< lastfm-kgcn or movielens
  std::string protocol;    ///< warm, cold or ctr
  std::string kg, links;   ///< another KG (head<TAB>relation<TAB>tail) and its item<TAB>entity links
  std::string names;       ///< lastfm-kgcn: HetRec artists.dat for names (default: beside --data)
  uint64_t seed = 2026;    ///< split and model seed
  std::string dump_split;  ///< folder to write the split to (TSV)
  int runs = 1;            ///< repeat with seeds seed, seed+1, ... and report the mean (and spread) of each row
  int epochs = 0;          ///< the model's epoch limit (0 = its default)
  bool no_model = false;   ///< no LibTorch rows (the first model version and LightGCN)
  std::string model_kind = "both";  ///< v1|v2|both|served: which versions of the model have rows (served: that row alone)
  bool only_model = false;  ///< the model's rows alone, no peer
  bool distributed = false;  ///< the first version's "Mosaic" row trained in a group of ranks
  GroupArgs group;
  bool ablation = false;   ///< also the model with its KG removed and shuffled (always on for the cold protocol)
  std::string kg_control = "intact";  ///< intact|removed|shuffled: the KG every KG-using row fits on (fusion/kg_control.h)
};
Status RunEval(const Context& ctx, const EvalArgs& args);
// The data eval splits: the snapshot `mosaic rebuild` trains on (jobs/service/snapshot.h).
Status LoadEvalData(const store::ReadView& view, fusion::EvalData* data);

// mosaic rebuild
struct RebuildArgs {
  std::string model_kind = "v1";  ///< v1, v2 or auto (service::RebuildOptions); the CLI's default is auto
  int epochs = 0;             ///< 0 = the trainer's default
  uint64_t seed = 2026;       ///< initialisation, sampling and dropout seed
  bool resume = false;        ///< continue from the last checkpoint of an interrupted rebuild
  std::string hnsw = "auto";  ///< auto|on|off: store an HNSW graph of the items with the version
  bool distributed = false;   ///< train in a group of ranks (torchrun's conventions)
  GroupArgs group;
  nlohmann::json* summary = nullptr;  ///< when set, receives the summary instead of stdout (the demo)
};
Status RunRebuild(const Context& ctx, const RebuildArgs& args);

// mosaic serve (docs/serving.md)
struct ServeArgs {
  std::string host = "127.0.0.1";  ///< address to listen on
  int port = 8080;                 ///< 0: any free port (printed)
  int threads = 0;                 ///< request threads; 0 = 4 x cores, at least 8
  size_t max_body = size_t(1) << 20;  ///< largest request body, bytes
  size_t max_connections = 4096;     ///< open client connections at once (503 beyond)
  int header_timeout_s = 10;         ///< seconds a connection may take to send a request's head, idle time included
  bool frozen_users = false;         ///< serve users as the version has them: no fold-in (for comparisons)
  size_t explore = 0;                ///< /recommend positions explored when a request does not say
  double explore_prior = fusion::ExploreSettings().prior_strength;  ///< impressions the model's prior is worth
  std::string token_file;            ///< file holding the bearer token POSTs need; empty: none
  bool insecure_writes = false;      ///< serve writes on a non-loopback host without a token (warned)
  std::vector<std::string> allowed_hosts;  ///< Host header values accepted (port ignored); empty: any
  const graph::TextFeatureHook* text = nullptr;  ///< encodes the text of POSTed items; null: none
  std::string replica_of;            ///< --replica-of STORE: a read replica that follows STORE and never writes
  std::string primary;               ///< --primary URL: where a replica forwards writes; empty: it refuses them (503)
};

Status RunServe(const Context& ctx, const ServeArgs& args);

// mosaic recommend / audience / similar: the answer (QueryModel), printed as a table or JSON.
Status QueryModel(const Context& ctx, const service::Query& query, service::QueryResult* result);
void PrintQueryResult(const service::QueryResult& result);
Status RunModelQuery(const Context& ctx, const service::Query& query);

// What import and ingest placed: a "placed" entry of their JSON result, and a line for people.
void AddPlacement(const service::PlaceReport& report, nlohmann::json* result);
void PrintPlacement(const service::PlaceReport& report);

// mosaic check: verifies the store's invariants.
Status RunCheck(const Context& ctx);

// mosaic demo: builds a store from the catalogue embedded in the binary and tours it.
struct DemoArgs {
  std::string dir;  ///< fresh folder for the demo's store and data; empty = a new temporary folder
};
Status RunDemo(const Context& ctx, const DemoArgs& args);

}  // namespace mosaic::jobs
