// mosaic: the command-line entry point. This is the one boundary where a Status or an
// exception becomes a message on stderr and an exit code:
//   0 success, 1 the command failed (bad input data, missing store, I/O), 2 bad usage.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <vector>

#include "graph/text.h"
#include "graph/text_features.h"
#include "jobs/cli/commands.h"
#include "jobs/cli/model_plugin.h"
#include "jobs/cli/progress.h"

namespace {

using namespace mosaic;

std::string DefaultStore() {
  const char* env = std::getenv("MOSAIC_STORE");
  return env && *env ? env : "mosaic-store";
}

std::string FormatHelp() {
  std::string help = "input format, one of:";
  for (const auto& f : graph::ImportFormats()) help += std::string("\n  ") + f.name + ": " + f.description;
  return help;
}

// Each subcommand and what runs when it is chosen (after parsing, with the parsed options).
struct Command {
  CLI::App* app;
  std::function<Status()> run;
};

void AddGlobalOptions(CLI::App& app, jobs::Context* ctx) {
  ctx->store_dir = DefaultStore();
  app.add_option("--store", ctx->store_dir, "Store folder (default: $MOSAIC_STORE or ./mosaic-store)");
  app.add_flag("--json", ctx->json, "Print machine-readable JSON on stdout; no progress line");
  ctx->model_dir = jobs::DefaultModelDir();
  app.add_option("--model", ctx->model_dir,
                 "Folder of the USE-lite text model (default: $MOSAIC_MODEL_DIR or the one scripts/setup fetches)");
  app.add_option("--device", ctx->device, "Where models run: auto, cpu or cuda")->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  app.add_flag("--no-text", ctx->no_text, "Import and ingest without text embeddings (no text model needed)");
}

// import, ingest, stats, neighbors, show, check: the store and its catalogue.
void AddStoreCommands(CLI::App& app, const jobs::Context& ctx, std::vector<Command>* out) {
  auto request = std::make_shared<graph::ImportRequest>();
  auto format = std::make_shared<std::string>();
  auto* import_cmd = app.add_subcommand("import", "Import catalogue, interaction or knowledge-graph files");
  import_cmd->add_option("--format", *format, FormatHelp())->required();
  import_cmd->add_option("files", request->files, "Input files, imported in order")->required();
  import_cmd->add_option("--links", request->links_file,
                         "With --format kg: item<TAB>entity file aligning items with KG entities");
  out->push_back({import_cmd, [&ctx, request, format] {
                    MOSAIC_RETURN_IF_ERROR(graph::ParseImportFormat(*format, &request->format));
                    return jobs::RunImport(ctx, *request);
                  }});

  auto ingest = std::make_shared<jobs::IngestArgs>();
  auto* ingest_cmd = app.add_subcommand("ingest", "Analyse media files (video, music) and add them as items");
  ingest_cmd->add_option("paths", ingest->paths, "Media files or folders (scanned recursively)")->required();
  ingest_cmd->add_option("--meta", ingest->meta_file,
                         "JSONL of per-file metadata {path, title, description, tags, artist, album, genre, kind}");
  ingest_cmd->add_option("--jobs", ingest->jobs, "Files analysed in parallel (default: all cores)");
  ingest_cmd->add_flag("--verbose", ingest->verbose, "Print FFmpeg's warnings");
  out->push_back({ingest_cmd, [&ctx, ingest] { return jobs::RunIngest(ctx, *ingest); }});

  auto consume = std::make_shared<jobs::ConsumeArgs>();
  auto redis = std::make_shared<std::string>("127.0.0.1:6379");
  auto* consume_cmd = app.add_subcommand("consume", "Apply a Redis stream of items, plays and media paths (consumer group)");
  consume_cmd->add_option("--redis", *redis, "Redis server HOST:PORT")->capture_default_str();
  consume_cmd->add_option("--stream", consume->stream, "Stream key")->required();
  consume_cmd->add_option("--group", consume->group, "Consumer group (created at the stream's start when missing)")
      ->capture_default_str();
  consume_cmd->add_option("--consumer", consume->consumer, "This consumer's name (keep it across restarts)")
      ->capture_default_str();
  consume_cmd->add_option("--batch", consume->batch, "Entries per read and per commit")->capture_default_str();
  consume_cmd->add_option("--block-ms", consume->block_ms, "How long a read waits for entries")->capture_default_str();
  consume_cmd->add_option("--claim-idle-ms", consume->claim_idle_ms,
                          "At start, take over other consumers' entries pending this long")->capture_default_str();
  consume_cmd->add_option("--until-idle", consume->until_idle_s, "Stop after this many seconds without entries (0: never)");
  out->push_back({consume_cmd, [&ctx, consume, redis] {
                    const size_t colon = redis->rfind(':');
                    if (colon == std::string::npos || colon == 0) {
                      return Status::InvalidArgument("--redis must be HOST:PORT, not '" + *redis + "'");
                    }
                    jobs::ConsumeArgs args = *consume;
                    args.host = redis->substr(0, colon);
                    try {
                      size_t used = 0;
                      args.port = std::stoi(redis->substr(colon + 1), &used);
                      if (used != redis->size() - colon - 1 || args.port < 1 || args.port > 65535) throw 0;
                    } catch (...) {
                      return Status::InvalidArgument("--redis port must be 1..65535, not '" + redis->substr(colon + 1) + "'");
                    }
                    return jobs::RunConsume(ctx, args);
                  }});

  auto* stats_cmd = app.add_subcommand("stats", "Count users, items, entities, relations and interactions");
  out->push_back({stats_cmd, [&ctx] { return jobs::RunStats(ctx); }});

  auto neighbors = std::make_shared<jobs::NeighborsArgs>();
  auto* neighbors_cmd = app.add_subcommand("neighbors", "Show an item's knowledge-graph neighbourhood");
  neighbors_cmd->add_option("item", neighbors->item, "Item id, or its exact title")->required();
  neighbors_cmd->add_option("--hops", neighbors->hops, "Walk this many hops (1-4, default 2)");
  neighbors_cmd->add_option("--relation", neighbors->relations,
                            "Walk only this relation (repeatable; default: all but interacted)");
  neighbors_cmd->add_option("--limit", neighbors->limit, "Nodes shown per hop (0 = all, default 20)");
  out->push_back({neighbors_cmd, [&ctx, neighbors] { return jobs::RunNeighbors(ctx, *neighbors); }});

  auto show_item = std::make_shared<std::string>();
  auto* show_cmd = app.add_subcommand("show", "Print an item's metadata, KG links and features");
  show_cmd->add_option("item", *show_item, "Item id, media file path, or exact title")->required();
  out->push_back({show_cmd, [&ctx, show_item] { return jobs::RunShow(ctx, *show_item); }});

  auto* check_cmd = app.add_subcommand("check", "Verify the store's invariants (edges both ways, dictionary, counters)");
  out->push_back({check_cmd, [&ctx] { return jobs::RunCheck(ctx); }});
}

// embed, similar-text: the text model alone.
void AddTextCommands(CLI::App& app, const jobs::Context& ctx, std::vector<Command>* out) {
  auto texts = std::make_shared<std::vector<std::string>>();
  auto* embed_cmd = app.add_subcommand("embed", "Print the USE-lite embedding of each text (--json adds token ids)");
  embed_cmd->add_option("texts", *texts, "Texts to embed")->required();
  out->push_back({embed_cmd, [&ctx, texts] { return jobs::RunEmbed(ctx, *texts); }});

  auto query = std::make_shared<std::string>();
  auto k = std::make_shared<size_t>(10);
  auto* similar_text_cmd = app.add_subcommand("similar-text", "Rank stored items by text similarity to a query");
  similar_text_cmd->add_option("query", *query, "Query text")->required();
  similar_text_cmd->add_option("-k", *k, "How many items (default 10)");
  out->push_back({similar_text_cmd, [&ctx, query, k] { return jobs::RunSimilarText(ctx, *query, *k); }});
}

// --master-addr, --master-port, --rank, --world-size, --group-timeout (torchrun's variables otherwise).
void AddGroupOptions(CLI::App* cmd, jobs::GroupArgs* group) {
  cmd->add_option("--master-addr", group->master_addr, "Rank 0's address (default $MASTER_ADDR, else 127.0.0.1)");
  cmd->add_option("--master-port", group->master_port, "Rendezvous port on rank 0 (default $MASTER_PORT)")
      ->check(CLI::Range(1, 65535));
  cmd->add_option("--rank", group->rank, "This process's rank (default $RANK)")->check(CLI::NonNegativeNumber);
  cmd->add_option("--world-size", group->world_size, "Processes in the group (default $WORLD_SIZE)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--group-timeout", group->timeout_s,
                  "Seconds to wait for the other ranks, at the start and at each step (default 120)")
      ->check(CLI::PositiveNumber);
}

// eval, rebuild, recommend, audience, similar, serve: the model.
void AddModelCommands(CLI::App& app, const jobs::Context& ctx, std::vector<Command>* out) {
  auto eval = std::make_shared<jobs::EvalArgs>();
  auto* eval_cmd = app.add_subcommand("eval", "Measure the model beside the baselines by a published protocol");
  eval_cmd->add_option("--data", eval->data, "Dataset folder")->required();
  eval_cmd->add_option("--dataset", eval->dataset, "lastfm-kgcn or movielens")->required();
  eval_cmd->add_option("--protocol", eval->protocol,
                       "warm, cold, fewshot (1, 3 and 5 interactions of 20% of the items in training), temporal "
                       "(the last 10% by time as test; needs timestamps) or ctr")
      ->required();
  eval_cmd->add_option("--kg", eval->kg, "KG triples head<TAB>relation<TAB>tail to use instead");
  eval_cmd->add_option("--links", eval->links, "item<TAB>entity links for --kg");
  eval_cmd->add_option("--names", eval->names, "lastfm-kgcn: HetRec artists.dat (default: beside --data)");
  eval_cmd->add_option("--seed", eval->seed, "Seed of the split and the models (default 2026)");
  eval_cmd->add_option("--runs", eval->runs, "Repeat with seeds seed, seed+1, ... and report means (default 1)");
  eval_cmd->add_option("--epochs", eval->epochs, "The model's epoch limit (default: its own)");
  eval_cmd->add_flag("--no-model", eval->no_model, "No LibTorch rows: the first model version and LightGCN left out");
  eval_cmd->add_option("--model-kind", eval->model_kind,
                       "Which versions of the model have rows: v1 (graph attention), v2 (EASE^R + content kernel), both, "
                       "or served (the second version as `rebuild` builds it, its row alone)")
      ->check(CLI::IsMember({"v1", "v2", "both", "served"}));
  eval_cmd->add_flag("--only-model", eval->only_model, "The model's rows alone: no peer is fitted");
  eval_cmd->add_flag("--distributed", eval->distributed,
                     "Train the first version's Mosaic row data-parallel in a group of processes (each prints the table)");
  AddGroupOptions(eval_cmd, &eval->group);
  eval_cmd->add_flag("--ablation", eval->ablation, "Also the model with its KG removed and, for an intact KG, shuffled (always on for cold)");
  eval_cmd->add_option("--kg-control", eval->kg_control,
                       "intact, removed (no KG triple or item-entity link) or shuffled (tails redrawn per relation, "
                       "seeded); the split is always drawn from the intact data (default intact)")
      ->check(CLI::IsMember({"intact", "removed", "shuffled"}));
  eval_cmd->add_option("--dump-split", eval->dump_split, "Write the split as TSV files into this folder");
  out->push_back({eval_cmd, [&ctx, eval] { return jobs::RunEval(ctx, *eval); }});

  auto rebuild = std::make_shared<jobs::RebuildArgs>();
  auto* rebuild_cmd = app.add_subcommand(
      "rebuild", "Train the model on a snapshot of the store and switch queries to the new version");
  rebuild->model_kind = "auto";
  auto* model_kind = rebuild_cmd->add_option(
      "--model-kind", rebuild->model_kind,
      "v2: EASE^R's item-item term beside a content kernel for new items, fitted in closed form; v1: the "
      "graph-attention model; auto (default): v2 where it fits in memory (20,000 items with plays), else v1. "
      "--epochs, --resume and --distributed train v1 (docs/results.md says where each wins)")
      ->check(CLI::IsMember({"v1", "v2", "auto"}));
  rebuild_cmd->add_option("--epochs", rebuild->epochs, "Training epochs (default 80; v1 only)");
  rebuild_cmd->add_option("--seed", rebuild->seed, "Seed of initialisation, sampling and dropout (default 2026)");
  rebuild_cmd->add_flag("--resume", rebuild->resume,
                        "Continue an interrupted rebuild from its last checkpoint (its seed and epochs; "
                        "refused when the store changed since)");
  rebuild_cmd->add_option("--hnsw", rebuild->hnsw,
                          "Store an HNSW graph of the items with the version: auto (from 200,000 items on), on, off")
      ->check(CLI::IsMember({"auto", "on", "off"}));
  rebuild_cmd->add_flag("--distributed", rebuild->distributed,
                        "Train data-parallel in a group of processes over Gloo; rank 0 writes the version");
  AddGroupOptions(rebuild_cmd, &rebuild->group);
  out->push_back({rebuild_cmd, [&ctx, rebuild, model_kind] {
                    // Options only the first version has choose it, unless a kind was asked for.
                    if (model_kind->count() == 0 && (rebuild->epochs != 0 || rebuild->resume || rebuild->distributed)) {
                      rebuild->model_kind = "v1";
                    }
                    return jobs::RunRebuild(ctx, *rebuild);
                  }});

  const std::map<jobs::service::QueryKind, const char*> descriptions = {
      {jobs::service::QueryKind::kRecommend, "Top items for a user, from the current model"},
      {jobs::service::QueryKind::kAudience, "Users most likely to enjoy an item, from the current model"},
      {jobs::service::QueryKind::kSimilar, "Items most like an item in the model's representation space"}};
  for (jobs::service::QueryKind kind : jobs::service::kQueryKinds) {
    auto query = std::make_shared<jobs::service::Query>();
    query->kind = kind;
    auto* cmd = app.add_subcommand(jobs::service::QueryKindName(kind), descriptions.at(kind));
    if (jobs::service::AsksAboutUser(kind)) {
      cmd->add_option("--user", query->user, "User id")->required();
      cmd->add_flag("--new-only", query->new_only, "Only items nobody has played yet (cold start)");
      cmd->add_flag("--exclude-seen", query->exclude_seen, "Leave out items the user has played");
      cmd->add_option("--explore", query->explore,
                      "Up to this many positions for new items chosen by Thompson sampling over their impressions "
                      "and plays (default 0: the model's list)");
      cmd->add_option("--seed", query->seed, "Seed of the exploration's draws (default: fresh each time)")
          ->each([query](const std::string&) { query->seeded = true; });
    } else {
      cmd->add_option("--item", query->item, "Item id, or its exact title")->required();
    }
    cmd->add_option("-k", query->k, "How many results (default 10)");
    cmd->add_flag("--explain", query->explain, "Say which graph paths contributed most, by attention weight");
    out->push_back({cmd, [&ctx, query] { return jobs::RunModelQuery(ctx, *query); }});
  }

  auto serve = std::make_shared<jobs::ServeArgs>();
  auto* serve_cmd = app.add_subcommand("serve", "Answer recommendation queries and take new items over HTTP/JSON");
  serve_cmd->add_option("--host", serve->host, "Address to listen on (default 127.0.0.1)");
  serve_cmd->add_option("--port", serve->port, "Port (default 8080; 0 picks a free one)")->check(CLI::Range(0, 65535));
  serve_cmd->add_option("--threads", serve->threads, "Threads that answer requests; connections wait without one (default 4 x cores, at least 8)")
      ->check(CLI::Range(0, 1024));
  serve_cmd->add_option("--max-body", serve->max_body, "Largest request body in bytes (default 1 MiB)")
      ->check(CLI::Range(size_t(1024), size_t(1) << 30));
  serve_cmd->add_option("--max-connections", serve->max_connections,
                        "Client connections open at once; one more is answered 503 and closed (default 4096)")
      ->check(CLI::Range(size_t(1), size_t(1) << 20));
  serve_cmd->add_option("--header-timeout", serve->header_timeout_s,
                        "Seconds a connection may take to send a request's headers, counted from when the server "
                        "waits for it (idle keep-alive time included); then it is closed (default 10)")
      ->check(CLI::Range(1, 3600));
  serve_cmd->add_option("--explore", serve->explore,
                        "Positions of each /recommend list given to new items by Thompson sampling when the "
                        "request does not say (explore=N); 0 turns exploration off (default 0)")
      ->check(CLI::Range(0, int(jobs::service::kMaxQueryK)));
  serve_cmd->add_option("--explore-prior", serve->explore_prior,
                        "Impressions the model's opinion of a new item is worth in exploration: more explores less "
                        "(default 2)")
      ->check(CLI::Range(0.01, 1e6));
  serve_cmd->add_flag("--frozen-users", serve->frozen_users,
                      "Serve users as the model version has them: a user who arrived since gets 404 and new plays "
                      "do not move lists until the next rebuild (the static policy of bench/replay.sh)");
  serve_cmd->add_option("--token-file", serve->token_file,
                        "File holding the bearer token that POST requests must send (Authorization: Bearer TOKEN); "
                        "required with a --host other than loopback");
  serve_cmd->add_flag("--insecure-writes", serve->insecure_writes,
                      "Serve POST requests on a non-loopback --host without a token (a warning is printed)");
  serve_cmd->add_option("--allowed-host", serve->allowed_hosts,
                        "A Host header value to accept (repeatable; the port is ignored); others get 403");
  serve_cmd->add_option("--replica-of", serve->replica_of,
                        "Serve as a read replica of this store (shared storage): follow it, never write to it");
  serve_cmd->add_option("--primary", serve->primary,
                        "With --replica-of: forward POSTs to this primary server (http://HOST:PORT); else refuse them");
  out->push_back({serve_cmd, [&ctx, serve] {
                    if (serve->replica_of.empty()) {
                      if (!serve->primary.empty()) return Status::InvalidArgument("--primary needs --replica-of");
                      return jobs::RunServe(ctx, *serve);
                    }
                    jobs::Context replica = ctx;
                    replica.store_dir = serve->replica_of;  // --replica-of names the store, as --store would
                    return jobs::RunServe(replica, *serve);
                  }});
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Mosaic: knowledge-graph and multimodal recommendations for video and music catalogues"};
  app.require_subcommand(1);
  app.fallthrough();  // --store and --json may also follow the subcommand
  app.set_help_all_flag("--help-all", "Show help for every command");
  jobs::Context ctx;
  AddGlobalOptions(app, &ctx);
  std::vector<Command> commands;
  AddStoreCommands(app, ctx, &commands);
  AddTextCommands(app, ctx, &commands);
  AddModelCommands(app, ctx, &commands);
  auto demo = std::make_shared<jobs::DemoArgs>();
  auto* demo_cmd = app.add_subcommand("demo", "Build a store from the embedded demo catalogue and tour it");
  demo_cmd->add_option("--dir", demo->dir, "New folder for the demo (default: a fresh temporary folder)");
  commands.push_back({demo_cmd, [&ctx, demo] { return jobs::RunDemo(ctx, *demo); }});

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return 2;
  }
  ctx.progress = !ctx.json && jobs::StderrIsTerminal();

  Status s;
  try {
    for (const Command& c : commands) {
      if (*c.app) s = c.run();
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mosaic: error: %s\n", graph::EscapeControl(e.what()).c_str());
    return 1;
  }
  if (!s.ok()) {
    // Messages quote ids, titles and file names: control characters are escaped, never sent to the terminal.
    std::fprintf(stderr, "mosaic: error: %s\n", graph::EscapeControl(s.ToString()).c_str());
    return 1;
  }
  return 0;
}
