// mosaic rebuild / recommend / audience / similar: arguments in, the model library's service calls,
// results printed (or their JSON with --json).
#include <cstdio>
#include <cstdlib>

#include "jobs/cli/commands.h"
#include "jobs/cli/model_plugin.h"
#include "jobs/cli/progress.h"
#include "graph/text.h"
#include "graph/text_features.h"

namespace mosaic::jobs {

namespace {

// A node's label (else its key) for a terminal: control characters escaped.
std::string Name(const service::NodeRef& n) {
  return graph::EscapeControl(n.label.empty() ? (n.key.empty() ? "?" : n.key) : n.label);
}

void PrintSecondVersion(const service::RebuildReport& r) {
  const auto& c = r["counts"];
  const auto& v = r["second_version"];
  const auto& k = v["content"];
  std::printf("fitted model v%llu (second version) on %s users, %s items, %s interactions, %s KG triples\n",
              r["version"].get<unsigned long long>(), WithThousands(c["users"]).c_str(),
              WithThousands(c["items"]).c_str(), WithThousands(c["interactions"]).c_str(),
              WithThousands(c["kg_triples"]).c_str());
  std::printf("EASE^R lambda %g at rank %d, blend weight %g (%g without plays, k %g, offset %g); content kernel g %g, "
              "w_text %g%s, lambda %g, rank %d, popularity %g\n",
              v["ease_lambda"].get<double>(), v["ease_rank"].get<int>(), v["blend_weight"].get<double>(),
              v["cold_weight"].get<double>(), v["count_k"].get<double>(), v["offset_weight"].get<double>(),
              k["g"].get<double>(), k["w_text"].get<double>(), k["w_text"].get<double>() >= 1 ? " (the KG left out)" : "",
              k["lambda"].get<double>(), k["rank"].get<int>(), k["pop"].get<double>());
  const auto& stages = r["stages"];
  std::printf("time: %.2f s (snapshot %.2f, fit %.2f, representations %.2f, write %.2f)\n", r["seconds"].get<double>(),
              stages["snapshot"].get<double>(), stages["fit"].get<double>(), stages["representations"].get<double>(),
              stages["write"].get<double>());
  const size_t late = r["late_items_placed"];
  if (late > 0) std::printf("placed %zu items ingested during the rebuild\n", late);
  std::printf("queries now use model v%llu\n", r["version"].get<unsigned long long>());
}

void PrintRebuild(const service::RebuildReport& r) {
  if (r.value("kind", std::string("v1")) == "v2") return PrintSecondVersion(r);
  if (r.contains("kind_reason")) std::printf("first version: %s\n", r["kind_reason"].get<std::string>().c_str());
  const auto& c = r["counts"];
  const int first = r["resumed_from_epoch"];
  std::printf("trained model v%llu: %d epochs%s on %s users, %s items, %s entities, %s interactions, %s KG triples (%s)\n",
              r["version"].get<unsigned long long>(), r["epochs"].get<int>(),
              first > 0 ? (" (resumed after epoch " + std::to_string(first) + ")").c_str() : "",
              WithThousands(c["users"]).c_str(), WithThousands(c["items"]).c_str(),
              WithThousands(c["entities"]).c_str(), WithThousands(c["interactions"]).c_str(),
              WithThousands(c["kg_triples"]).c_str(), r["device"].get<std::string>().c_str());
  const auto& losses = r["losses"];
  if (!losses.empty()) {
    std::printf("loss: BPR %.4f -> %.4f, TransR %.4f -> %.4f\n", losses.front()["bpr"].get<double>(),
                losses.back()["bpr"].get<double>(), losses.front()["kg"].get<double>(),
                losses.back()["kg"].get<double>());
  }
  const auto& stages = r["stages"];
  const auto& hnsw = r["hnsw"];
  char hnsw_time[48] = "";
  if (!hnsw.is_null()) std::snprintf(hnsw_time, sizeof hnsw_time, ", HNSW graph %.2f", stages["hnsw"].get<double>());
  std::printf("time: %.2f s (snapshot %.2f, training %.2f = %.3f s/epoch, representations %.2f%s, write %.2f); "
              "TransR %s triples/s\n",
              r["seconds"].get<double>(), stages["snapshot"].get<double>(), stages["training"].get<double>(),
              r["seconds_per_epoch"].get<double>(), stages["representations"].get<double>(), hnsw_time,
              stages["write"].get<double>(),
              WithThousands(uint64_t(r["transr_triples_per_second"].get<double>())).c_str());
  if (!hnsw.is_null()) {
    std::printf("HNSW graph over %s items (M %d, ef_construction %d): %.1f MiB, stored with the version\n",
                WithThousands(hnsw["items"].get<uint64_t>()).c_str(), hnsw["m"].get<int>(),
                hnsw["ef_construction"].get<int>(), hnsw["bytes"].get<double>() / (1 << 20));
  }
  const size_t late = r["late_items_placed"];
  if (late > 0) std::printf("placed %zu items ingested during the rebuild\n", late);
  if (r.contains("distributed")) {
    const auto& d = r["distributed"];
    std::printf("trained in a group of %d ranks: %s bytes allreduced per step, %.1f s in allreduces\n",
                d["world_size"].get<int>(), WithThousands(d["bytes_allreduced_per_step"].get<uint64_t>()).c_str(),
                d["allreduce_seconds"].get<double>());
  }
  std::printf("queries now use model v%llu\n", r["version"].get<unsigned long long>());
}

}  // namespace

Status ResolveGroup(const GroupArgs& args, service::DistributedRebuild* d) {
  auto from_env = [](const char* name, std::string* value) {
    const char* v = std::getenv(name);
    if (v == nullptr || *v == 0) return false;
    *value = v;
    return true;
  };
  auto number = [&](const char* option, const char* env, int given, int* out) -> Status {
    if (given >= 0) return *out = given, Status::OK();
    std::string text;
    if (!from_env(env, &text)) {
      return Status::InvalidArgument(std::string("--distributed needs ") + option + " or $" + env);
    }
    char* end = nullptr;
    const long v = std::strtol(text.c_str(), &end, 10);
    if (*end != 0 || v < 0 || v > 65535) {
      return Status::InvalidArgument(std::string("$") + env + " must be a number, not '" + text + "'");
    }
    *out = int(v);
    return Status::OK();
  };
  d->enabled = true;
  d->master_addr = args.master_addr;
  if (d->master_addr.empty() && !from_env("MASTER_ADDR", &d->master_addr)) d->master_addr = "127.0.0.1";
  MOSAIC_RETURN_IF_ERROR(number("--master-port", "MASTER_PORT", args.master_port, &d->master_port));
  MOSAIC_RETURN_IF_ERROR(number("--rank", "RANK", args.rank, &d->rank));
  MOSAIC_RETURN_IF_ERROR(number("--world-size", "WORLD_SIZE", args.world_size, &d->world_size));
  if (d->master_port < 1) return Status::InvalidArgument("the master port must be in [1, 65535]");
  if (d->world_size < 1 || d->rank >= d->world_size) {
    return Status::InvalidArgument("rank " + std::to_string(d->rank) + " is not in [0, world size " +
                                   std::to_string(d->world_size) + ")");
  }
  d->timeout_ms = args.timeout_s * 1000;
  return Status::OK();
}

Status RunRebuild(const Context& ctx, const RebuildArgs& args) {
  service::RebuildOptions options;
  options.model_kind = args.model_kind;
  options.epochs = args.epochs;
  options.seed = args.seed;
  options.resume = args.resume;
  options.device = ctx.device;
  options.write_lock_wait_ms = kWriteLockWaitMs;
  MOSAIC_RETURN_IF_ERROR(service::ParseHnswMode(args.hnsw, &options.hnsw));
  if (args.distributed) MOSAIC_RETURN_IF_ERROR(ResolveGroup(args.group, &options.distributed));
  Progress training(ctx.progress, "rebuild"), hnsw(ctx.progress, "hnsw");
  int first_epoch = -1;
  options.on_step = [&](int epoch, int epochs, int64_t step, int64_t steps, double loss) {
    if (first_epoch < 0) first_epoch = epoch;
    char detail[96];
    std::snprintf(detail, sizeof detail, "epoch %d/%d  step %lld/%lld  loss %.4f", epoch + 1, epochs,
                  static_cast<long long>(step), static_cast<long long>(steps), loss);
    training.Update(double(epoch - first_epoch) + double(step) / double(std::max<int64_t>(steps, 1)),
                    double(epochs - first_epoch), detail);
  };
  options.on_fit_stage = [&](int done, int total, const char* stage) {
    training.Update(double(done), double(total), stage);
  };
  options.on_hnsw = [&](int64_t done, int64_t total) {
    training.Finish();
    hnsw.Update(double(done), double(total), "items in the graph");
  };
  options.on_wait_for_lock = [&ctx] {
    if (!ctx.json) std::fprintf(stderr, "the store is busy (another process is writing); waiting to write the model...\n");
  };
  const ModelPlugin* plugin = nullptr;
  MOSAIC_RETURN_IF_ERROR(LoadModelPlugin(&plugin));
  service::RebuildReport report;
  Status s = plugin->rebuild(ctx.store_dir, options, &report);
  training.Finish();
  hnsw.Finish();
  MOSAIC_RETURN_IF_ERROR(s);
  if (args.summary) {
    *args.summary = report;
  } else if (ctx.json) {
    report.erase("losses");
    std::printf("%s\n", report.dump().c_str());
  } else if (report.contains("rank")) {
    std::printf("rank %d of %d: trained %d epochs (%.1f s per epoch); rank 0 writes the version\n",
                report["rank"].get<int>(), report["world_size"].get<int>(), report["epochs_run"].get<int>(),
                report["seconds_per_epoch"].get<double>());
  } else {
    PrintRebuild(report);
  }
  return Status::OK();
}

Status RunServe(const Context& ctx, const ServeArgs& base_args) {
  ServeArgs args = base_args;
  std::shared_ptr<const encoders::TextModel> encoder;
  std::unique_ptr<graph::TextFeatureHook> text;
  if (!ctx.no_text) MOSAIC_RETURN_IF_ERROR(LoadTextHook(ctx, &encoder, &text));
  args.text = text.get();
  const ModelPlugin* plugin = nullptr;
  MOSAIC_RETURN_IF_ERROR(LoadModelPlugin(&plugin));
  return plugin->serve(ctx, args);
}

void AddPlacement(const service::PlaceReport& report, nlohmann::json* result) {
  if (report.model_version > 0) {
    (*result)["placed"] = {{"items", report.placed}, {"model_version", report.model_version}};
  }
}

void PrintPlacement(const service::PlaceReport& report) {
  if (report.placed > 0) {
    std::printf("placed %zu new items with model v%llu\n", report.placed,
                static_cast<unsigned long long>(report.model_version));
  }
}

void PrintQueryResult(const service::QueryResult& r) {
  const service::Query& q = r.query;
  const auto version = static_cast<unsigned long long>(r.model_version);
  switch (q.kind) {
    case service::QueryKind::kRecommend:
      std::printf("recommendations for user %s (model v%llu%s%s%s)\n", Name(r.subject).c_str(), version,
                  !r.personalised ? ": no plays yet, so the items most played lately (not personalised)"
                  : r.user_from_history ? ", from their plays: new since the version"
                  : r.plays_since_version ? (", with " + std::to_string(r.plays_since_version) +
                                             " items played since").c_str()
                                          : "",
                  q.new_only ? ", new items only" : "", q.exclude_seen ? ", unseen only" : "");
      break;
    case service::QueryKind::kAudience:
      std::printf("listeners most likely to enjoy %s (model v%llu)\n", Name(r.subject).c_str(), version);
      break;
    case service::QueryKind::kSimilar:
      std::printf("items most like %s (model v%llu)\n", Name(r.subject).c_str(), version);
      break;
  }
  if (r.hits.empty()) {
    std::printf("  no results%s\n", q.new_only ? " (no item without interactions)" : "");
    return;
  }
  std::printf("%4s  %9s  %-40s %s\n", "rank", "score", q.kind == service::QueryKind::kAudience ? "user" : "item", "key");
  for (size_t i = 0; i < r.hits.size(); ++i) {
    const service::Hit& h = r.hits[i];
    std::string note;
    if (h.placed) note += "  (new, placed)";
    if (h.explored) note += "  (explored)";
    if (h.plays) {
      char plays[48];
      std::snprintf(plays, sizeof plays, "%.0f", double(*h.plays));  // a sum of weights: no integer cast to wrap
      note += "  (played " + std::string(plays) + "x)";
    }
    std::printf("%4zu  %9.4f  %s %s%s\n", i + 1, double(h.score), FitColumn(Name(h.node), 40).c_str(),
                ShortKey(h.node.key).c_str(), note.c_str());
    for (const auto& t : h.reasons) std::printf("%17s- %s\n", "", graph::EscapeControl(t).c_str());
  }
}

Status QueryModel(const Context& ctx, const service::Query& query, service::QueryResult* result) {
  const ModelPlugin* plugin = nullptr;
  MOSAIC_RETURN_IF_ERROR(LoadModelPlugin(&plugin));
  return plugin->query(ctx.store_dir, query, result);
}

Status RunModelQuery(const Context& ctx, const service::Query& query) {
  service::QueryResult result;
  MOSAIC_RETURN_IF_ERROR(QueryModel(ctx, query, &result));
  if (ctx.json) {
    std::printf("%s\n", service::ToJson(result).dump().c_str());
  } else {
    PrintQueryResult(result);
  }
  return Status::OK();
}

}  // namespace mosaic::jobs
