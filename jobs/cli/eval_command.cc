// mosaic eval: builds a temporary store from a dataset's raw files (with the normal importers),
// splits it by a published protocol, fits the baselines on the training part and measures
// them on the test part, all in one run, so that every number is comparable.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <thread>
#include <unordered_map>

#include "fusion/baselines.h"
#include "fusion/content_kernel.h"
#include "fusion/content_regression.h"
#include "fusion/eval_data.h"
#include "fusion/fold_in.h"
#include "fusion/kg_control.h"
#include "fusion/metrics.h"
#include "fusion/second_version.h"
#include "fusion/split.h"
#include "graph/text_features.h"
#include "jobs/service/snapshot.h"
#include "jobs/cli/commands.h"
#include "jobs/cli/model_plugin.h"
#include "jobs/cli/progress.h"
#include "store/store.h"

namespace mosaic::jobs {

namespace fs = std::filesystem;
using store::NodeId;
using store::NodeKind;

namespace {

double SecondsSince(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// The raw files of a dataset, as `import` reads them.
struct DatasetFiles {
  std::vector<graph::ImportRequest> requests;
};

Status FindDataset(const EvalArgs& args, DatasetFiles* files) {
  const fs::path dir = args.data;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return Status::NotFound("--data '" + args.data + "' is not a folder");
  auto need = [&](const fs::path& p) -> Status {
    return fs::exists(p, ec) ? Status::OK() : Status::NotFound("'" + p.string() + "' is missing (--data " + args.data + ")");
  };
  auto request = [](graph::ImportFormat f, const fs::path& p, const std::string& links = "") {
    graph::ImportRequest r;
    r.format = f;
    r.files = {p.string()};
    r.links_file = links;
    return r;
  };
  if (args.dataset == "lastfm-kgcn") {
    // Artist names (for the text baseline) come from HetRec's artists.dat beside the KGCN folder.
    const fs::path names = args.names.empty() ? dir.parent_path() / "hetrec2011-lastfm-2k" / "artists.dat" : fs::path(args.names);
    if (fs::exists(names, ec)) files->requests.push_back(request(graph::ImportFormat::kHetrecArtists, names));
    const fs::path kg = args.kg.empty() ? dir / "kg.txt" : fs::path(args.kg);
    const fs::path links = args.links.empty() ? dir / "item_index2entity_id.txt" : fs::path(args.links);
    MOSAIC_RETURN_IF_ERROR(need(kg));
    MOSAIC_RETURN_IF_ERROR(need(links));
    MOSAIC_RETURN_IF_ERROR(need(dir / "user_artists.dat"));
    files->requests.push_back(request(graph::ImportFormat::kKgTriples, kg, links.string()));
    files->requests.push_back(request(graph::ImportFormat::kLastfmPlays, dir / "user_artists.dat"));
  } else if (args.dataset == "movielens") {
    MOSAIC_RETURN_IF_ERROR(need(dir / "movies.csv"));
    MOSAIC_RETURN_IF_ERROR(need(dir / "ratings.csv"));
    files->requests.push_back(request(graph::ImportFormat::kMovielensMovies, dir / "movies.csv"));
    if (args.kg.empty() && fs::exists(dir / "tags.csv", ec)) {
      files->requests.push_back(request(graph::ImportFormat::kMovielensTags, dir / "tags.csv"));
    }
    if (!args.kg.empty()) {
      files->requests.push_back(request(graph::ImportFormat::kKgTriples, args.kg, args.links));
    }
    files->requests.push_back(request(graph::ImportFormat::kMovielensRatings, dir / "ratings.csv"));
  } else {
    return Status::InvalidArgument("unknown --dataset '" + args.dataset + "' (lastfm-kgcn or movielens)");
  }
  return Status::OK();
}

// items.tsv: every item's key in dense index order (the ranking's tie order), for outside checks.
void WriteItems(const fusion::EvalData& data, const std::string& dir) {
  auto open = [&](const char* name, const char* mode) {
    const std::string path = (fs::path(dir) / name).string();
    FILE* f = std::fopen(path.c_str(), mode);
    if (!f) throw std::runtime_error("cannot write '" + path + "'");
    return std::make_pair(f, path);
  };
  auto close = [](std::pair<FILE*, std::string> f) {
    if (std::fclose(f.first) != 0) throw std::runtime_error("cannot write '" + f.second + "'");
  };
  auto items = open("items.tsv", "w");
  std::fprintf(items.first, "item\n");
  for (const auto& key : data.item_keys) std::fprintf(items.first, "%s\n", key.c_str());
  close(items);
  // The content the content-aware models see, for tools outside the harness: each modality as
  // raw float32 rows (<name>.f32, num_items x dim, zero rows where absent, <name>.present one
  // byte per item) and the KG triples by dense index (kg.tsv; tails >= num_items are entities).
  for (const auto& [name, m] : data.modalities) {
    auto values = open((name + ".f32").c_str(), "wb");
    if (!m.values.empty() && std::fwrite(m.values.data(), sizeof(float), m.values.size(), values.first) != m.values.size()) {
      throw std::runtime_error("cannot write '" + values.second + "'");
    }
    close(values);
    auto present = open((name + ".present").c_str(), "wb");
    if (!m.present.empty() && std::fwrite(m.present.data(), 1, m.present.size(), present.first) != m.present.size()) {
      throw std::runtime_error("cannot write '" + present.second + "'");
    }
    close(present);
  }
  auto kg = open("kg.tsv", "w");
  std::fprintf(kg.first, "head\trelation\ttail\n");
  for (const auto& t : data.kg_triples) std::fprintf(kg.first, "%u\t%u\t%u\n", t.head, t.relation, t.tail);
  close(kg);
}

struct Row {
  std::string model;
  std::map<std::string, double> metrics;
  double seconds = 0;
  nlohmann::json tuning;  ///< tuned peers: per run, the validation grid and the point chosen; null otherwise
  nlohmann::json vs_best_peer;  ///< the model's rows: per run, its Recall@20 over the best peer's (BestPeerRatio)
};

// Paired per-user bootstrap resamples behind each ratio's interval.
constexpr size_t kBootstrapResamples = 1000;

// Whether `model` names a row of Mosaic's own model (its KG controls included), not a peer.
bool IsOwnModel(const std::string& model) { return model.rfind("Mosaic", 0) == 0; }

// For each row of the model: its `metric` (a Recall@20) over that of the best peer of the same run
// (the other row with the highest `metric`), with a paired per-user bootstrap 95% interval, appended
// to the row's vs_best_peer. `per_user[i]` holds rows[i]'s per-user values of `metric`.
void BestPeerRatio(const std::string& metric, const std::vector<std::vector<double>>& per_user, uint64_t seed,
                   std::vector<Row>* rows) {
  int best = -1;
  for (size_t i = 0; i < rows->size(); ++i) {
    if (IsOwnModel((*rows)[i].model) || per_user[i].empty()) continue;
    if (best < 0 || (*rows)[i].metrics.at(metric) > (*rows)[size_t(best)].metrics.at(metric)) best = int(i);
  }
  if (best < 0) return;
  for (size_t i = 0; i < rows->size(); ++i) {
    if (!IsOwnModel((*rows)[i].model) || per_user[i].empty()) continue;
    const bool measured = std::any_of(per_user[i].begin(), per_user[i].end(), [](double x) { return !std::isnan(x); });
    if (!measured) continue;  // no user had a test item: nothing to compare
    const fusion::RatioInterval r =
        fusion::PairedBootstrapRatio(per_user[i], per_user[size_t(best)], kBootstrapResamples, seed);
    (*rows)[i].vs_best_peer.push_back({{"seed", seed},       {"peer", (*rows)[size_t(best)].model},
                                       {"metric", metric},   {"ratio", r.ratio},
                                       {"low", r.low},       {"high", r.high},
                                       {"users", r.users},   {"resamples", r.resamples}});
  }
}

// A tuned peer's grid search as JSON: {"seed", "chosen", "valid_recall20", "grid": [{"setting",
// "valid_recall20", "valid_ndcg20"}]}.
nlohmann::json TuningJson(const fusion::Tuning& tuning, uint64_t seed) {
  nlohmann::json grid = nlohmann::json::array();
  for (const auto& g : tuning.grid) {
    grid.push_back({{"setting", g.setting}, {"valid_recall20", g.valid_recall20}, {"valid_ndcg20", g.valid_ndcg20}});
  }
  const auto& chosen = tuning.grid.at(tuning.chosen);
  return {{"seed", seed}, {"chosen", chosen.setting}, {"valid_recall20", chosen.valid_recall20}, {"grid", grid}};
}

// A model fitted on data of its own (the KG-shuffled control of the model) instead of the data the
// other rows fit on; it scores and names itself as `inner` would, under `name`.
class OwnDataModel : public fusion::Baseline {
 public:
  OwnDataModel(std::string name, std::unique_ptr<fusion::Baseline> inner, std::shared_ptr<const fusion::EvalData> data)
      : name_(std::move(name)), inner_(std::move(inner)), data_(std::move(data)) {}
  std::string name() const override { return name_; }
  void Fit(const fusion::EvalData&, const std::vector<uint32_t>& train, const std::vector<uint32_t>& valid) override {
    inner_->Fit(*data_, train, valid);
  }
  void ScoreUser(uint32_t user, std::vector<float>* scores) const override { inner_->ScoreUser(user, scores); }
  const fusion::Tuning* tuning() const override { return inner_->tuning(); }

 private:
  std::string name_;
  std::unique_ptr<fusion::Baseline> inner_;
  std::shared_ptr<const fusion::EvalData> data_;
};

// The rows of the model's second version (issue 15), appended to `models` after the peers: its
// content kernel (fusion/content_kernel.h) and, where warm items are ranked, the blend of EASE^R's
// item-item scores with it (the weight chosen on validation). Its KG controls beside it: on the
// cold and few-shot protocols, and with --ablation.
void AddSecondVersion(const EvalArgs& args, const fusion::EvalData& data, uint64_t seed, bool content_peers,
                      std::vector<std::unique_ptr<fusion::Baseline>>* models) {
  const fusion::Baseline* ease = nullptr;
  for (const auto& peer : *models) {
    if (peer->name() == "EASE") ease = peer.get();
  }
  fusion::SecondVersionOptions served;
  served.seed = seed;
  if (args.model_kind == "served") {  // the product alone: the cheapest way to repeat its measurement
    models->push_back(fusion::MakeServedSecondVersion("Mosaic v2 (served)", served));
    return;
  }
  const std::vector<double> weights = {0, 0.05, 0.1, 0.25, 0.5, 1};
  auto add = [&](const std::string& suffix, bool use_kg, bool shuffled) {
    const std::string content_name = ease ? "Mosaic v2 content" + suffix : "Mosaic v2" + suffix;
    std::unique_ptr<fusion::Baseline> content = fusion::MakeContentKernel(content_name, use_kg, seed);
    if (shuffled) {
      auto own = std::make_shared<const fusion::EvalData>(fusion::WithKgControl(data, fusion::KgControl::kShuffled, seed));
      content = std::make_unique<OwnDataModel>(content_name, std::move(content), std::move(own));
    }
    const fusion::Baseline* fitted_first = content.get();
    models->push_back(std::move(content));
    if (ease) models->push_back(fusion::MakeBlend("Mosaic v2" + suffix, ease, fitted_first, weights));
  };
  // Where warm items are ranked and no EASE^R peer is fitted (--only-model) the content alone is no
  // form of the model: the served row is.
  if (ease || content_peers) add("", true, false);
  // What `mosaic rebuild --model-kind v2` builds and serves (fusion/second_version.h): it chooses its
  // own EASE^R lambda and blend weight on the validation split, searches the content kernel's
  // smaller product grid, and scores by dot products.
  models->push_back(fusion::MakeServedSecondVersion("Mosaic v2 (served)", served));
  if (args.ablation || content_peers) {
    add(" (no KG)", false, false);
    if (args.kg_control == "intact") add(" (KG shuffled)", true, true);
  }
}

// The models of one protocol, in table order: the baselines, then the graph-attention model (and
// its KG ablations: no KG, and for an intact KG the KG shuffled) from the model library. `data` is
// the run's data with its KG intact; the KG-shuffled model fits on WithKgControl(data, shuffled, seed).
Status MakeModels(const Context& ctx, const EvalArgs& args, const fusion::EvalData& data, uint64_t seed,
                  bool have_text, std::vector<std::unique_ptr<fusion::Baseline>>* models) {
  // Few-shot items have a few interactions and their content: both kinds of peers apply.
  const bool warm_peers = args.protocol != "cold", content_peers = args.protocol == "cold" || args.protocol == "fewshot";
  if (warm_peers && !args.only_model) {
    models->push_back(fusion::MakeMostPopular());
    models->push_back(fusion::MakeItemKnn());
    models->push_back(fusion::MakeBprMf(64, seed));
    // The peers tuned on the validation split (issue 14); on CTR, on the validation positives.
    models->push_back(fusion::MakeTunedItemKnn());
    models->push_back(fusion::MakeTunedRp3Beta());
    models->push_back(fusion::MakeTunedEase());
  }
  if (content_peers && !args.only_model) {
    models->push_back(fusion::MakeAttributePopularity());
    models->push_back(fusion::MakeKgOverlap());
    if (have_text) models->push_back(fusion::MakeTextKnn());
    // Content to collaborative factors by ridge regression (issue 14), tuned on pseudo-cold items.
    if (have_text) models->push_back(fusion::MakeContentRidge(fusion::ContentParts::kAll, seed));
    if (have_text) models->push_back(fusion::MakeContentRidge(fusion::ContentParts::kText, seed));
    models->push_back(fusion::MakeContentRidge(fusion::ContentParts::kKg, seed));
  }
  if (args.model_kind != "v1") AddSecondVersion(args, data, seed, content_peers, models);
  // LibTorch's rows come from the model library: --no-model leaves them all out, LightGCN too.
  if (args.no_model || args.model_kind == "v2" || args.model_kind == "served") return Status::OK();
  const ModelPlugin* plugin = nullptr;
  MOSAIC_RETURN_IF_ERROR(LoadModelPlugin(&plugin));
  std::unique_ptr<fusion::Baseline> ranker;
  if (warm_peers && args.protocol != "ctr" && !args.only_model) {
    // The graph-CF peer (issue 14), early-stopped on the validation split.
    MOSAIC_RETURN_IF_ERROR(plugin->new_ranker({{"model", "lightgcn"}, {"seed", seed}, {"device", ctx.device}}, &ranker));
    models->push_back(std::move(ranker));
  }
  nlohmann::json options = {{"seed", seed}, {"kg", true}, {"device", ctx.device}};
  if (args.epochs > 0) options["epochs"] = args.epochs;
  if (args.distributed) {  // this row alone: the others train in this process
    service::DistributedRebuild group;
    MOSAIC_RETURN_IF_ERROR(ResolveGroup(args.group, &group));
    nlohmann::json with_group = options;
    with_group["distributed"] = {{"master_addr", group.master_addr}, {"master_port", group.master_port},
                                 {"rank", group.rank},               {"world_size", group.world_size},
                                 {"timeout_ms", group.timeout_ms}};
    MOSAIC_RETURN_IF_ERROR(plugin->new_ranker(with_group, &ranker));
  } else {
    MOSAIC_RETURN_IF_ERROR(plugin->new_ranker(options, &ranker));
  }
  models->push_back(std::move(ranker));
  if (args.protocol != "ctr") {
    // The model as a user who arrived after training gets it: folded in from their plays (issue 15).
    const fusion::Baseline* mosaic = models->back().get();
    models->push_back(fusion::MakeUsersFromHistory(mosaic, "Mosaic (users from history)"));
    // A candidate for the model's second version (issue 15): EASE's item-item term beside the graph's
    // score, the graph's weight chosen on validation (0: EASE alone).
    const fusion::Baseline* ease = nullptr;
    for (const auto& peer : *models) {
      if (peer->name() == "EASE") ease = peer.get();
    }
    if (ease) models->push_back(fusion::MakeBlend("Mosaic + EASE (blend)", ease, mosaic, {0, 0.1, 0.25, 0.5, 1, 2, 4}));
  }
  if (args.ablation || content_peers) {
    options["kg"] = false;
    MOSAIC_RETURN_IF_ERROR(plugin->new_ranker(options, &ranker));
    models->push_back(std::move(ranker));
    if (args.kg_control == "intact") {  // under another control the "Mosaic" row already is one
      options["kg"] = true;
      MOSAIC_RETURN_IF_ERROR(plugin->new_ranker(options, &ranker));
      auto shuffled = std::make_shared<const fusion::EvalData>(
          fusion::WithKgControl(data, fusion::KgControl::kShuffled, seed));
      models->push_back(std::make_unique<OwnDataModel>("Mosaic (KG shuffled)", std::move(ranker), std::move(shuffled)));
    }
  }
  return Status::OK();
}

// The CTR protocol on one split: AUC and F1 of each model, and beside them F1 calibrated on the
// validation examples and the group AUC (per user).
// `data` is the intact data the split is drawn from, `fit` the data the models see (the KG control).
Status RunCtr(const EvalArgs& args, const fusion::EvalData& data, const fusion::EvalData& fit, uint64_t seed, bool dump,
              const std::vector<std::unique_ptr<fusion::Baseline>>& models, nlohmann::json* split_sizes,
              std::vector<Row>* rows) {
  const fusion::CtrSplit split = fusion::KgcnCtrSplit(data, seed);
  if (dump) {
    fusion::WriteCtrSplit(data, split, args.dump_split);
    WriteItems(data, args.dump_split);
  }
  *split_sizes = {{"train", split.train.size()}, {"valid", split.valid.size()}, {"test", split.test.size()}};
  // Models fit on the training positives, as interaction indices.
  std::unordered_map<uint64_t, uint32_t> index;
  for (uint32_t i = 0; i < data.interactions.size(); ++i) {
    index[(uint64_t(data.interactions[i].user) << 32) | data.interactions[i].item] = i;
  }
  std::vector<uint32_t> train, valid;
  for (const auto& x : split.train) {
    if (x.label) train.push_back(index.at((uint64_t(x.user) << 32) | x.item));
  }
  for (const auto& x : split.valid) {
    if (x.label) valid.push_back(index.at((uint64_t(x.user) << 32) | x.item));
  }
  for (auto& m : models) {
    const auto t0 = std::chrono::steady_clock::now();
    m->Fit(fit, train, valid);
    std::vector<float> user_scores;
    auto score_of = [&](const std::vector<fusion::CtrExample>& xs, std::vector<float>* out, std::vector<int>* labels,
                        std::vector<uint32_t>* users) {
      std::vector<std::vector<size_t>> by_user(data.num_users);
      for (size_t i = 0; i < xs.size(); ++i) by_user[xs[i].user].push_back(i);
      out->assign(xs.size(), 0.0f);
      labels->resize(xs.size());
      for (uint32_t u = 0; u < data.num_users; ++u) {
        if (by_user[u].empty()) continue;
        m->ScoreUser(u, &user_scores);
        for (size_t i : by_user[u]) (*out)[i] = user_scores[xs[i].item];
      }
      users->resize(xs.size());
      for (size_t i = 0; i < xs.size(); ++i) {
        (*labels)[i] = xs[i].label;
        (*users)[i] = xs[i].user;
      }
    };
    std::vector<float> train_scores, valid_scores, test_scores;
    std::vector<int> train_labels, valid_labels, test_labels;
    std::vector<uint32_t> train_users, valid_users, test_users;
    score_of(split.train, &train_scores, &train_labels, &train_users);
    score_of(split.valid, &valid_scores, &valid_labels, &valid_users);
    score_of(split.test, &test_scores, &test_labels, &test_users);
    // The protocol's F1 calibrates on the training examples. A model that scores its own training
    // plays high (item-item terms of a played item) is then calibrated on scores the test examples
    // never get; Platt (1999) fits on held-out outputs for that reason, so F1 with the scaler fitted
    // on the validation examples is reported beside it.
    auto f1_with = [&](const std::vector<float>& scores, const std::vector<int>& labels) {
      fusion::PlattScaler platt;
      platt.Fit(scores, labels);
      std::vector<float> probabilities(test_scores.size());
      for (size_t i = 0; i < test_scores.size(); ++i) probabilities[i] = platt(test_scores[i]);
      return fusion::F1(probabilities, test_labels);
    };
    rows->push_back({m->name(),
                     {{"AUC", fusion::Auc(test_scores, test_labels)},
                      {"F1", f1_with(train_scores, train_labels)},
                      {"F1 (Platt on valid)", f1_with(valid_scores, valid_labels)},
                      {"GAUC", fusion::GroupAuc(test_scores, test_labels, test_users)}},
                     SecondsSince(t0),
                     nullptr,
                     nullptr});
  }
  return Status::OK();
}

// Fits and measures every model on one split (seed), appending a row per model. The split, the
// test sets and the KG-linked subset come from `data` as it is; the models fit on `data` under
// --kg-control (seeded by the run's seed).
// Progress over a whole eval: one unit per model fit (and measured) on one split.
struct FitProgress {
  Progress bar;
  int runs = 1;
  int run = 0;  ///< the run under way, 0-based
  void Update(size_t done_in_run, size_t per_run, const std::string& model) {
    const double total = double(per_run) * runs;
    bar.Update(double(run) * double(per_run) + double(done_in_run), total,
               "run " + std::to_string(run + 1) + "/" + std::to_string(runs) + ": " + model);
  }
};

Status RunOnce(const Context& ctx, const EvalArgs& args, const fusion::EvalData& data, uint64_t seed, bool have_text,
               bool dump, FitProgress* progress, nlohmann::json* split_sizes, std::vector<Row>* rows) {
  std::vector<std::unique_ptr<fusion::Baseline>> models;
  MOSAIC_RETURN_IF_ERROR(MakeModels(ctx, args, data, seed, have_text, &models));
  fusion::KgControl control = fusion::KgControl::kIntact;
  fusion::ParseKgControl(args.kg_control, &control);  // checked by RunEval
  std::unique_ptr<const fusion::EvalData> controlled;
  if (control != fusion::KgControl::kIntact) {
    controlled = std::make_unique<const fusion::EvalData>(fusion::WithKgControl(data, control, seed));
  }
  const fusion::EvalData& fit = controlled ? *controlled : data;
  if (args.protocol == "ctr") return RunCtr(args, data, fit, seed, dump, models, split_sizes, rows);
  // The splits measured: one, or one per few-shot setting (suffix " 1-shot" on its metrics).
  struct Setting {
    std::string suffix;
    fusion::Split split;
  };
  std::vector<Setting> settings;
  if (args.protocol == "fewshot") {
    for (size_t shots : {1, 3, 5}) settings.push_back({" " + std::to_string(shots) + "-shot", fusion::FewShotSplit(data, seed, shots)});
  } else if (args.protocol == "temporal") {
    settings.push_back({"", fusion::TemporalSplit(data)});
  } else {
    settings.push_back({"", args.protocol == "cold" ? fusion::ColdSplit(data, seed) : fusion::WarmSplit(data, seed)});
  }
  if (dump) {
    fusion::WriteSplit(data, settings.front().split, args.dump_split);
    WriteItems(data, args.dump_split);
  }
  for (const Setting& setting : settings) {
    const fusion::Split& split = setting.split;
    nlohmann::json sizes = {{"train", split.train.size()}, {"valid", split.valid.size()}, {"test", split.test.size()}};
    if (!split.cold_items.empty()) sizes[args.protocol == "cold" ? "cold_items" : "fewshot_items"] = split.cold_items.size();
    if (setting.suffix.empty()) {
      *split_sizes = sizes;
    } else {
      (*split_sizes)[setting.suffix.substr(1)] = sizes;
    }
  }

  for (auto& m : models) rows->push_back({m->name(), {}, 0, nullptr, nullptr});
  const size_t fits_per_run = settings.size() * models.size();
  size_t fits_done = 0;
  for (const Setting& setting : settings) {
    const fusion::Split& split = setting.split;
    const std::string& sfx = setting.suffix;
    const bool cold = args.protocol == "cold", fewshot = args.protocol == "fewshot";
    // Cold: the subset of cold items with at least one KG link (item_in_kg of the intact data, so the
    // subset is the same under every control), and each user's test items among them.
    std::vector<uint32_t> linked_cold;
    std::vector<std::vector<uint32_t>> linked_test(data.num_users);
    if (cold) {
      for (uint32_t i : split.cold_items) {
        if (i < data.item_in_kg.size() && data.item_in_kg[i]) linked_cold.push_back(i);
      }
      (*split_sizes)["cold_items_linked"] = linked_cold.size();
    }
    std::vector<std::vector<uint32_t>> train_items(data.num_users), test_items(data.num_users);
    std::vector<bool> item_trained(data.num_items, false);
    for (uint32_t i : split.train) {
      train_items[data.interactions[i].user].push_back(data.interactions[i].item);
      item_trained[data.interactions[i].item] = true;
    }
    // Temporal: the users first seen in the test period, and each user's test items first seen then.
    std::vector<std::vector<uint32_t>> new_user_test(data.num_users), new_item_test(data.num_users);
    for (uint32_t i : split.test) {
      const auto& x = data.interactions[i];
      test_items[x.user].push_back(x.item);
      if (cold && x.item < data.item_in_kg.size() && data.item_in_kg[x.item]) linked_test[x.user].push_back(x.item);
      if (!item_trained[x.item]) new_item_test[x.user].push_back(x.item);
    }
    for (uint32_t u = 0; u < data.num_users; ++u) {
      std::sort(train_items[u].begin(), train_items[u].end());
      if (train_items[u].empty()) new_user_test[u] = test_items[u];
    }
    // Candidates: the cold items (nobody trained on them); the few-shot items the user has not
    // trained on; otherwise every item not in the user's training set.
    auto candidates = [&](uint32_t u, std::vector<uint32_t>* cand) {
      if (cold) {
        *cand = split.cold_items;
        return;
      }
      cand->clear();
      const auto& seen = train_items[u];
      auto unseen = [&](uint32_t i) { return !std::binary_search(seen.begin(), seen.end(), i); };
      if (fewshot) {
        for (uint32_t i : split.cold_items) {
          if (unseen(i)) cand->push_back(i);
        }
        return;
      }
      for (uint32_t i = 0; i < data.num_items; ++i) {
        if (unseen(i)) cand->push_back(i);
      }
    };
    std::vector<std::vector<double>> per_user;  // per row: each user's Recall@20
    for (size_t k = 0; k < models.size(); ++k) {
      fusion::Baseline& m = *models[k];
      Row& row = (*rows)[k];
      progress->Update(fits_done++, fits_per_run, m.name() + sfx);
      const auto t0 = std::chrono::steady_clock::now();
      m.Fit(fit, split.train, split.valid);
      per_user.emplace_back();
      const fusion::RankingMetrics r = fusion::RankUsers(
          m, data.num_users, candidates, [&](uint32_t u) -> const std::vector<uint32_t>& { return test_items[u]; },
          &per_user.back());
      if (const fusion::Tuning* tuning = m.tuning()) {
        nlohmann::json t = TuningJson(*tuning, seed);
        if (!sfx.empty()) t["setting"] = sfx.substr(1);
        if (settings.size() > 1) {
          if (!row.tuning.is_array()) row.tuning = nlohmann::json::array();
          row.tuning.push_back(t);
        } else {
          row.tuning = t;
        }
      }
      if (!cold && !fewshot) {
        row.metrics["Recall@10" + sfx] = r.recall10;
        row.metrics["NDCG@10" + sfx] = r.ndcg10;
      }
      row.metrics["Recall@20" + sfx] = r.recall20;
      row.metrics["NDCG@20" + sfx] = r.ndcg20;
      row.metrics["users" + sfx] = double(r.users);
      auto subset = [&](const std::vector<std::vector<uint32_t>>& relevant, const std::string& name,
                        const std::function<void(uint32_t, std::vector<uint32_t>*)>& cand) {
        const fusion::RankingMetrics l = fusion::RankUsers(
            m, data.num_users, cand, [&](uint32_t u) -> const std::vector<uint32_t>& { return relevant[u]; });
        row.metrics["Recall@20 " + name] = l.recall20;
        row.metrics["NDCG@20 " + name] = l.ndcg20;
        row.metrics["users " + name] = double(l.users);
      };
      if (cold) {  // the KG-linked cold items only, ranked among themselves
        subset(linked_test, "linked", [&](uint32_t, std::vector<uint32_t>* cand) { *cand = linked_cold; });
      }
      if (args.protocol == "temporal") {
        subset(new_user_test, "new users", candidates);
        subset(new_item_test, "new items", candidates);
      }
      row.seconds += SecondsSince(t0);
    }
    BestPeerRatio("Recall@20" + sfx, per_user, seed, rows);
  }
  return Status::OK();
}

// Per model (in first-seen order): the mean of each metric and of the seconds over the runs, the
// sample standard deviation of each metric ("<metric> sd") and the half-width of its 95% interval,
// t(0.975, runs - 1) sd / sqrt(runs) ("<metric> ci95"); the runs' tunings and best-peer ratios.
std::vector<Row> MeanRows(const std::vector<std::vector<Row>>& runs) {
  std::vector<Row> out;
  for (const auto& first : runs.front()) {
    Row mean{first.model, {}, 0, nullptr, nullptr};
    std::map<std::string, std::vector<double>> values;
    for (const auto& run : runs) {
      for (const auto& r : run) {
        if (r.model != first.model) continue;
        for (const auto& [k, v] : r.metrics) values[k].push_back(v);
        mean.seconds += r.seconds / double(runs.size());
        // One entry per run (per run and few-shot setting).
        for (const nlohmann::json* part : {&r.tuning, &r.vs_best_peer}) {
          nlohmann::json& into = part == &r.tuning ? mean.tuning : mean.vs_best_peer;
          if (part->is_array()) {
            for (const auto& e : *part) into.push_back(e);
          } else if (!part->is_null()) {
            into.push_back(*part);
          }
        }
      }
    }
    for (const auto& [k, v] : values) {
      double sum = 0;
      for (double x : v) sum += x;
      const double m = sum / double(v.size());
      mean.metrics[k] = m;
      if (runs.size() > 1 && k.rfind("users", 0) != 0) {
        double ss = 0;
        for (double x : v) ss += (x - m) * (x - m);
        const double sd = std::sqrt(ss / double(v.size() - 1));
        mean.metrics[k + " sd"] = sd;
        mean.metrics[k + " ci95"] = fusion::StudentT975(v.size() - 1) * sd / std::sqrt(double(v.size()));
      }
    }
    out.push_back(std::move(mean));
  }
  return out;
}

// The Markdown table of `rows` (docs/results.md takes it as it is).
void PrintEvalTable(const EvalArgs& args, const fusion::EvalData& data, const nlohmann::json& header,
                    const std::vector<Row>& rows) {
  std::printf("### %s, %s protocol, KG %s (", args.dataset.c_str(), args.protocol.c_str(), args.kg_control.c_str());
  if (args.runs == 1) {
    std::printf("seed %llu)\n\n", static_cast<unsigned long long>(args.seed));
  } else {
    std::printf("mean ± half-width of its 95%% interval (Student's t) over %d runs, seeds %llu-%llu)\n\n", args.runs, static_cast<unsigned long long>(args.seed),
                static_cast<unsigned long long>(args.seed + uint64_t(args.runs) - 1));
  }
  std::printf("%s users, %s items, %s entities, %s KG triples, %s interactions; split %s\n\n",
              WithThousands(data.num_users).c_str(), WithThousands(data.num_items).c_str(),
              WithThousands(data.num_entities).c_str(), WithThousands(data.kg_triples.size()).c_str(),
              WithThousands(data.interactions.size()).c_str(), header["split"].dump().c_str());
  std::vector<std::string> columns;
  for (const auto& [k, v] : rows.front().metrics) {
    const bool spread = k.size() > 3 && (k.compare(k.size() - 3, 3, " sd") == 0 || k.find(" ci95") != std::string::npos);
    if (k.rfind("users", 0) != 0 && !spread) columns.push_back(k);
  }
  std::sort(columns.begin(), columns.end(), [](const std::string& a, const std::string& b) {
    auto rank = [](const std::string& c) { return c.find("@10") != std::string::npos ? 0 : c.find("@20") != std::string::npos ? 1 : 2; };
    if (rank(a) != rank(b)) return rank(a) < rank(b);
    const std::string base_a = a.substr(0, a.find(' ')), base_b = b.substr(0, b.find(' '));
    if (rank(a) < 2 && base_a != base_b) return base_a > base_b;  // Recall before NDCG
    return a < b;  // all before linked; AUC before F1
  });
  std::printf("| model |");
  for (const auto& c : columns) std::printf(" %s |", c.c_str());
  std::printf(" seconds |\n|---|");
  for (size_t i = 0; i < columns.size(); ++i) std::printf("---:|");
  std::printf("---:|\n");
  for (const auto& r : rows) {
    std::printf("| %s |", r.model.c_str());
    for (const auto& c : columns) {
      auto ci = r.metrics.find(c + " ci95");
      if (ci == r.metrics.end()) {
        std::printf(" %.4f |", r.metrics.at(c));
      } else {
        std::printf(" %.4f ± %.4f |", r.metrics.at(c), ci->second);
      }
    }
    std::printf(" %.1f |\n", r.seconds);
  }
  std::printf("\nimport %.1f s, total %.1f s\n", header["import_seconds"].get<double>(), header["seconds"].get<double>());
  bool first_ratio = true;
  for (const auto& r : rows) {
    if (r.vs_best_peer.is_null()) continue;
    if (first_ratio) {
      std::printf("\nthe model against the best peer of the same run: Recall@20 ratio, paired per-user bootstrap 95%% "
                  "interval (%zu resamples):\n", kBootstrapResamples);
    }
    first_ratio = false;
    for (const auto& v : r.vs_best_peer) {
      std::printf("- %s / %s, %s, seed %llu: %.3f [%.3f, %.3f] (%zu users)\n", r.model.c_str(),
                  v["peer"].get<std::string>().c_str(), v["metric"].get<std::string>().c_str(),
                  static_cast<unsigned long long>(v["seed"].get<uint64_t>()),
                  v["ratio"].get<double>(), v["low"].get<double>(), v["high"].get<double>(), v["users"].get<size_t>());
    }
  }
  bool first = true;
  for (const auto& r : rows) {
    if (r.tuning.is_null()) continue;
    if (first) std::printf("\nhyper-parameters chosen on the validation split (Recall@20), per run:\n");
    first = false;
    for (const auto& t : r.tuning) {
      std::printf("- %s, seed %llu%s%s: %s (validation %.4f); grid:", r.model.c_str(),
                  static_cast<unsigned long long>(t["seed"].get<uint64_t>()), t.contains("setting") ? ", " : "",
                  t.value("setting", std::string()).c_str(), t["chosen"].get<std::string>().c_str(),
                  t["valid_recall20"].get<double>());
      for (const auto& g : t["grid"]) {
        std::printf(" %s %.4f;", g["setting"].get<std::string>().c_str(), g["valid_recall20"].get<double>());
      }
      std::printf("\n");
    }
  }
}

}  // namespace

Status LoadEvalData(const store::ReadView& view, fusion::EvalData* data) {
  service::Snapshot snapshot;
  MOSAIC_RETURN_IF_ERROR(service::TakeSnapshot(view, &snapshot));
  *data = std::move(snapshot.data);
  return Status::OK();
}

namespace {

// Imports the dataset's files into the (new) store of `ctx` with the normal importers, then takes the
// snapshot that rebuild would train on.
Status ImportDataset(const Context& ctx, DatasetFiles* files, const graph::TextFeatureHook* text,
                     fusion::EvalData* data) {
  std::unique_ptr<store::Store> store;
  MOSAIC_RETURN_IF_ERROR(OpenStore(ctx, true, false, &store));
  for (auto& request : files->requests) {
    request.text_features = text;
    nlohmann::json imported;
    MOSAIC_RETURN_IF_ERROR(ImportInto(ctx, store.get(), request, &imported));
  }
  return LoadEvalData(*store->NewReadView(), data);
}

}  // namespace

Status RunEval(const Context& base_ctx, const EvalArgs& args) {
  if (args.protocol != "warm" && args.protocol != "cold" && args.protocol != "ctr" && args.protocol != "fewshot" &&
      args.protocol != "temporal") {
    return Status::InvalidArgument("unknown --protocol '" + args.protocol + "' (warm, cold, fewshot, temporal or ctr)");
  }
  if (args.runs < 1 || args.runs > 100) return Status::InvalidArgument("--runs must be in [1, 100]");
  if (args.epochs < 0) return Status::InvalidArgument("--epochs must not be negative");
  if (args.ablation && args.model_kind == "served") {
    return Status::InvalidArgument("--ablation has no rows with --model-kind served (the served row alone); use "
                                   "--model-kind v2 for the KG controls, or --kg-control for the whole run");
  }
  fusion::KgControl control;
  if (!fusion::ParseKgControl(args.kg_control, &control)) {
    return Status::InvalidArgument("unknown --kg-control '" + args.kg_control + "' (intact, removed or shuffled)");
  }
  DatasetFiles files;
  MOSAIC_RETURN_IF_ERROR(FindDataset(args, &files));
  const auto start = std::chrono::steady_clock::now();

  // A temporary store, built with the importers and removed at the end.
  std::string tmp = (fs::temp_directory_path() / "mosaic-eval-XXXXXX").string();
  if (!mkdtemp(tmp.data())) return Status::IOError("cannot create a temporary folder");
  struct Cleanup {
    std::string dir;
    ~Cleanup() {
      std::error_code ec;
      fs::remove_all(dir, ec);
    }
  } cleanup{tmp};
  Context ctx = base_ctx;
  ctx.store_dir = (fs::path(tmp) / "store").string();
  ctx.progress = ctx.progress && !ctx.json;
  std::shared_ptr<const encoders::TextModel> encoder;
  std::unique_ptr<graph::TextFeatureHook> text;
  // The text baseline and the model read the items' text vectors.
  const bool want_text = args.protocol == "cold" || args.protocol == "fewshot" || !args.no_model;
  if (want_text) MOSAIC_RETURN_IF_ERROR(LoadTextHook(ctx, &encoder, &text));
  fusion::EvalData data;
  MOSAIC_RETURN_IF_ERROR(ImportDataset(ctx, &files, text.get(), &data));
  const double import_seconds = SecondsSince(start);
  if (args.protocol == "temporal" &&
      std::none_of(data.interactions.begin(), data.interactions.end(), [](const fusion::Interaction& x) { return x.timestamp != 0; })) {
    return Status::InvalidArgument("--protocol temporal needs timestamps, and the interactions of --dataset " +
                                   args.dataset + " have none (movielens has them)");
  }

  nlohmann::json header = {{"dataset", args.dataset}, {"protocol", args.protocol}, {"seed", args.seed},
                           {"runs", args.runs}, {"kg_control", args.kg_control}, {"users", data.num_users}, {"items", data.num_items},
                           {"entities", data.num_entities}, {"kg_triples", data.kg_triples.size()},
                           {"interactions", data.interactions.size()}, {"import_seconds", import_seconds}};
  std::vector<std::vector<Row>> runs;
  FitProgress progress{Progress(ctx.progress, "eval"), args.runs, 0};
  for (int run = 0; run < args.runs; ++run) {
    nlohmann::json split;
    runs.emplace_back();
    progress.run = run;
    MOSAIC_RETURN_IF_ERROR(RunOnce(ctx, args, data, args.seed + uint64_t(run), encoder != nullptr,
                                   run == 0 && !args.dump_split.empty(), &progress, &split, &runs.back()));
    if (run == 0) header["split"] = split;
  }
  progress.bar.Finish();
  const std::vector<Row> rows = MeanRows(runs);
  header["seconds"] = SecondsSince(start);

  nlohmann::json table = nlohmann::json::array();
  // A tuned peer's row carries "tuning" beside model/metrics/seconds: an array with one grid per
  // run in "rows", that run's grid in "runs"; the model's rows carry "vs_best_peer" likewise.
  auto row_json = [](const Row& r) {
    nlohmann::json j = {{"model", r.model}, {"metrics", r.metrics}, {"seconds", r.seconds}};
    if (!r.tuning.is_null()) j["tuning"] = r.tuning;
    if (!r.vs_best_peer.is_null()) j["vs_best_peer"] = r.vs_best_peer;
    return j;
  };
  for (const auto& r : rows) table.push_back(row_json(r));
  if (ctx.json) {
    nlohmann::json per_run = nlohmann::json::array();
    for (const auto& run : runs) {
      nlohmann::json t = nlohmann::json::array();
      for (const auto& r : run) t.push_back(row_json(r));
      per_run.push_back(t);
    }
    std::printf("%s\n", nlohmann::json({{"run", header}, {"rows", table}, {"runs", per_run}}).dump().c_str());
    return Status::OK();
  }
  PrintEvalTable(args, data, header, rows);
  return Status::OK();
}

}  // namespace mosaic::jobs
