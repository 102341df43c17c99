// mosaic: the command-line entry point. This is the one boundary where a Status or an
// exception becomes a message on stderr and an exit code:
//   0 success, 1 the command failed (bad input data, missing store, I/O), 2 bad usage.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <exception>

#include "graph/text_features.h"
#include "jobs/commands.h"
#include "jobs/model_plugin.h"
#include "jobs/progress.h"

namespace {

std::string DefaultStore() {
  const char* env = std::getenv("MOSAIC_STORE");
  return env && *env ? env : "mosaic-store";
}

std::string FormatHelp() {
  std::string help = "input format, one of:";
  for (const auto& f : mosaic::graph::ImportFormats()) help += std::string("\n  ") + f.name + ": " + f.description;
  return help;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace mosaic;
  CLI::App app{"Mosaic: knowledge-graph and multimodal recommendations for video and music catalogues"};
  app.require_subcommand(1);
  app.fallthrough();  // --store and --json may also follow the subcommand
  app.set_help_all_flag("--help-all", "Show help for every command");
  jobs::Context ctx;
  ctx.store_dir = DefaultStore();
  app.add_option("--store", ctx.store_dir, "Store folder (default: $MOSAIC_STORE or ./mosaic-store)");
  app.add_flag("--json", ctx.json, "Print machine-readable JSON on stdout; no progress line");
  ctx.model_dir = jobs::DefaultModelDir();
  app.add_option("--model", ctx.model_dir, "Folder of the USE-lite text model (default: $MOSAIC_MODEL_DIR or the one scripts/setup fetches)");
  app.add_option("--device", ctx.device, "Where models run: auto, cpu or cuda")->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  app.add_flag("--no-text", ctx.no_text, "Import and ingest without text embeddings (no text model needed)");

  graph::ImportRequest import_request;
  std::string format_name;
  auto* import_cmd = app.add_subcommand("import", "Import catalogue, interaction or knowledge-graph files");
  import_cmd->add_option("--format", format_name, FormatHelp())->required();
  import_cmd->add_option("files", import_request.files, "Input files, imported in order")->required();
  import_cmd->add_option("--links", import_request.links_file,
                         "With --format kg: item<TAB>entity file aligning items with KG entities");

  auto* stats_cmd = app.add_subcommand("stats", "Count users, items, entities, relations and interactions");

  jobs::NeighborsArgs neighbors_args;
  auto* neighbors_cmd = app.add_subcommand("neighbors", "Show an item's knowledge-graph neighbourhood");
  neighbors_cmd->add_option("item", neighbors_args.item, "Item id, or its exact title")->required();
  neighbors_cmd->add_option("--hops", neighbors_args.hops, "Walk this many hops (1-4, default 2)");
  neighbors_cmd->add_option("--relation", neighbors_args.relations,
                            "Walk only this relation (repeatable; default: all but interacted)");
  neighbors_cmd->add_option("--limit", neighbors_args.limit, "Nodes shown per hop (0 = all, default 20)");

  jobs::IngestArgs ingest_args;
  auto* ingest_cmd = app.add_subcommand("ingest", "Analyse media files (video, music) and add them as items");
  ingest_cmd->add_option("paths", ingest_args.paths, "Media files or folders (scanned recursively)")->required();
  ingest_cmd->add_option("--meta", ingest_args.meta_file,
                         "JSONL of per-file metadata {path, title, description, tags, artist, album, genre, kind}");
  ingest_cmd->add_option("--jobs", ingest_args.jobs, "Files analysed in parallel (default: all cores)");
  ingest_cmd->add_flag("--verbose", ingest_args.verbose, "Print FFmpeg's warnings");

  std::string show_item;
  auto* show_cmd = app.add_subcommand("show", "Print an item's metadata, KG links and features");
  show_cmd->add_option("item", show_item, "Item id, media file path, or exact title")->required();

  std::vector<std::string> embed_texts;
  auto* embed_cmd = app.add_subcommand("embed", "Print the USE-lite embedding of each text (--json adds token ids)");
  embed_cmd->add_option("texts", embed_texts, "Texts to embed")->required();

  std::string similar_query;
  size_t similar_k = 10;
  auto* similar_text_cmd = app.add_subcommand("similar-text", "Rank stored items by text similarity to a query");
  similar_text_cmd->add_option("query", similar_query, "Query text")->required();
  similar_text_cmd->add_option("-k", similar_k, "How many items (default 10)");

  jobs::EvalArgs eval_args;
  auto* eval_cmd = app.add_subcommand("eval", "Measure the model beside the baselines by a published protocol");
  eval_cmd->add_option("--data", eval_args.data, "Dataset folder")->required();
  eval_cmd->add_option("--dataset", eval_args.dataset, "lastfm-kgcn or movielens")->required();
  eval_cmd->add_option("--protocol", eval_args.protocol, "warm, cold or ctr")->required();
  eval_cmd->add_option("--kg", eval_args.kg, "KG triples head<TAB>relation<TAB>tail to use instead");
  eval_cmd->add_option("--links", eval_args.links, "item<TAB>entity links for --kg");
  eval_cmd->add_option("--names", eval_args.names, "lastfm-kgcn: HetRec artists.dat (default: beside --data)");
  eval_cmd->add_option("--seed", eval_args.seed, "Seed of the split and the models (default 2026)");
  eval_cmd->add_option("--runs", eval_args.runs, "Repeat with seeds seed, seed+1, ... and report means (default 1)");
  eval_cmd->add_option("--epochs", eval_args.epochs, "The model's epoch limit (default: its own)");
  eval_cmd->add_flag("--no-model", eval_args.no_model, "Baselines only");
  eval_cmd->add_flag("--ablation", eval_args.ablation, "Also the model without its KG (always on for cold)");
  eval_cmd->add_option("--dump-split", eval_args.dump_split, "Write the split as TSV files into this folder");

  jobs::RebuildArgs rebuild_args;
  auto* rebuild_cmd = app.add_subcommand(
      "rebuild", "Train the graph-attention model on a snapshot of the store and switch queries to the new version");
  rebuild_cmd->add_option("--epochs", rebuild_args.epochs, "Training epochs (default 30)");
  rebuild_cmd->add_option("--seed", rebuild_args.seed, "Seed of initialisation, sampling and dropout (default 2026)");
  rebuild_cmd->add_flag("--resume", rebuild_args.resume,
                        "Continue an interrupted rebuild from its last checkpoint (its seed and epochs; "
                        "refused when the store changed since)");
  rebuild_cmd->add_option("--hnsw", rebuild_args.hnsw,
                          "Store an HNSW graph of the items with the version: auto (from 200,000 items on), on, off")
      ->check(CLI::IsMember({"auto", "on", "off"}));

  jobs::QueryArgs recommend_args, audience_args, similar_args;
  auto* recommend_cmd = app.add_subcommand("recommend", "Top items for a user, from the current model");
  recommend_cmd->add_option("--user", recommend_args.user, "User id")->required();
  recommend_cmd->add_flag("--new-only", recommend_args.new_only, "Only items nobody has played yet (cold start)");
  recommend_cmd->add_flag("--exclude-seen", recommend_args.exclude_seen, "Leave out items the user has played");
  auto* audience_cmd = app.add_subcommand("audience", "Users most likely to enjoy an item, from the current model");
  audience_cmd->add_option("--item", audience_args.item, "Item id, or its exact title")->required();
  auto* similar_cmd = app.add_subcommand("similar", "Items most like an item in the model's representation space");
  similar_cmd->add_option("--item", similar_args.item, "Item id, or its exact title")->required();
  for (auto [cmd, args] : {std::pair{recommend_cmd, &recommend_args}, std::pair{audience_cmd, &audience_args},
                           std::pair{similar_cmd, &similar_args}}) {
    cmd->add_option("-k", args->k, "How many results (default 10)");
    cmd->add_flag("--explain", args->explain, "Say which graph paths contributed most, by attention weight");
  }

  jobs::ServeArgs serve_args;
  auto* serve_cmd = app.add_subcommand("serve", "Answer recommendation queries and take new items over HTTP/JSON");
  serve_cmd->add_option("--host", serve_args.host, "Address to listen on (default 127.0.0.1)");
  serve_cmd->add_option("--port", serve_args.port, "Port (default 8080; 0 picks a free one)")->check(CLI::Range(0, 65535));
  serve_cmd->add_option("--threads", serve_args.threads, "Request threads, one per open connection (default 8 x cores, at least 32)")
      ->check(CLI::Range(0, 1024));
  serve_cmd->add_option("--max-body", serve_args.max_body, "Largest request body in bytes (default 1 MiB)")
      ->check(CLI::Range(size_t(1024), size_t(1) << 30));

  auto* check_cmd = app.add_subcommand("check", "Verify the store's invariants (edges both ways, dictionary, counters)");

  jobs::DemoArgs demo_args;
  auto* demo_cmd = app.add_subcommand("demo", "Build a store from the embedded demo catalogue and tour it");
  demo_cmd->add_option("--dir", demo_args.dir, "New folder for the demo (default: a fresh temporary folder)");

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
    if (*import_cmd) {
      s = graph::ParseImportFormat(format_name, &import_request.format);
      if (s.ok()) s = jobs::RunImport(ctx, import_request);
    } else if (*stats_cmd) {
      s = jobs::RunStats(ctx);
    } else if (*neighbors_cmd) {
      s = jobs::RunNeighbors(ctx, neighbors_args);
    } else if (*ingest_cmd) {
      s = jobs::RunIngest(ctx, ingest_args);
    } else if (*show_cmd) {
      s = jobs::RunShow(ctx, show_item);
    } else if (*embed_cmd) {
      s = jobs::RunEmbed(ctx, embed_texts);
    } else if (*similar_text_cmd) {
      s = jobs::RunSimilarText(ctx, similar_query, similar_k);
    } else if (*eval_cmd) {
      s = jobs::RunEval(ctx, eval_args);
    } else if (*rebuild_cmd) {
      s = jobs::LoadModelPlugin().rebuild(ctx, rebuild_args);
    } else if (*recommend_cmd || *audience_cmd || *similar_cmd) {
      const char* query = *recommend_cmd ? "recommend" : *audience_cmd ? "audience" : "similar";
      const jobs::QueryArgs& args = *recommend_cmd ? recommend_args : *audience_cmd ? audience_args : similar_args;
      const jobs::ModelPlugin& plugin = jobs::LoadModelPlugin();
      nlohmann::json result;
      s = plugin.query(ctx, query, args, &result);
      if (s.ok()) {
        if (ctx.json) {
          std::printf("%s\n", result.dump().c_str());
        } else {
          plugin.print_query(result);
        }
      }
    } else if (*serve_cmd) {
      std::shared_ptr<const encoders::TextModel> encoder;
      std::unique_ptr<graph::TextFeatureHook> text;
      if (!ctx.no_text) s = jobs::LoadTextHook(ctx, &encoder, &text);
      serve_args.text = text.get();
      if (s.ok()) s = jobs::LoadModelPlugin().serve(ctx, serve_args);
    } else if (*check_cmd) {
      s = jobs::RunCheck(ctx);
    } else if (*demo_cmd) {
      s = jobs::RunDemo(ctx, demo_args);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mosaic: error: %s\n", e.what());
    return 1;
  }
  if (!s.ok()) {
    std::fprintf(stderr, "mosaic: error: %s\n", s.ToString().c_str());
    return 1;
  }
  return 0;
}
