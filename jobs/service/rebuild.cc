#include "jobs/service/rebuild.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>

#include "fusion/fold_in.h"
#include "fusion/item_index.h"
#include "fusion/second_version.h"
#include "fusion/trainer.h"
#include "fusion/training_group.h"
#include "graph/catalogue.h"
#include "jobs/service/placement.h"
#include "jobs/service/snapshot.h"
#include "jobs/service/version.h"

namespace mosaic::jobs::service {

namespace fs = std::filesystem;
using store::NodeId;

namespace {

using Clock = std::chrono::steady_clock;
double Since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// The checkpoint file: u64 header length, the JSON header {fingerprint, seed, epochs, losses...}, then
// Trainer::SaveCheckpoint's bytes.
fs::path CheckpointFile(const std::string& store_dir) { return fs::path(store_dir) / "rebuild-checkpoint" / "checkpoint.bin"; }

Status WriteCheckpoint(const std::string& store_dir, const nlohmann::json& header, const std::string& blob) {
  const fs::path file = CheckpointFile(store_dir);
  std::error_code ec;
  fs::create_directories(file.parent_path(), ec);
  if (ec) return Status::IOError("cannot create '" + file.parent_path().string() + "': " + ec.message());
  const fs::path tmp = file.string() + ".tmp";
  const std::string head = header.dump();
  const uint64_t n = head.size();
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(&n), sizeof n);
    out.write(head.data(), std::streamsize(head.size()));
    out.write(blob.data(), std::streamsize(blob.size()));
    out.flush();
    if (!out) return Status::IOError("cannot write the rebuild checkpoint '" + tmp.string() + "'");
  }
  fs::rename(tmp, file, ec);  // atomic: a reader sees the previous checkpoint or this one
  if (ec) return Status::IOError("cannot rename '" + tmp.string() + "': " + ec.message());
  return Status::OK();
}

Status ReadCheckpoint(const std::string& store_dir, nlohmann::json* header, std::string* blob) {
  const fs::path file = CheckpointFile(store_dir);
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    return Status::NotFound("no rebuild checkpoint in '" + file.parent_path().string() +
                            "' to resume from: run `mosaic rebuild` without --resume");
  }
  std::string all((std::istreambuf_iterator<char>(in)), {});
  uint64_t n = 0;
  if (all.size() < sizeof n) return Status::Corruption("rebuild checkpoint '" + file.string() + "' is truncated");
  std::memcpy(&n, all.data(), sizeof n);
  if (all.size() < sizeof n + n) return Status::Corruption("rebuild checkpoint '" + file.string() + "' is truncated");
  *header = nlohmann::json::parse(all.substr(sizeof n, n), nullptr, false);
  if (!header->is_object()) return Status::Corruption("rebuild checkpoint '" + file.string() + "' has a malformed header");
  *blob = all.substr(sizeof n + n);
  return Status::OK();
}

std::string IsoTime() {
  std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}


// The run being trained: where it starts and what it has done.
struct Run {
  fusion::TrainOptions options;
  int epochs = 0;
  int first_epoch = 0;
  nlohmann::json losses = nlohmann::json::array();
  std::string resume_blob;
  int64_t kg_triples = 0;
  double epoch_seconds = 0;  // TransR runs inside every step, so its rate is over whole epochs
  int64_t steps = 0;              // run in this process
  int64_t bytes_allreduced = 0;   // by this rank, in a group
  double allreduce_seconds = 0;
};

// The seed, epochs and losses of the run: the options', or the interrupted run's when resuming.
Status PlanRun(const std::string& store_dir, const RebuildOptions& o, uint64_t fingerprint, Run* run) {
  run->options.seed = o.seed;
  run->epochs = o.epochs > 0 ? o.epochs : run->options.epochs;
  if (o.resume) {
    nlohmann::json header;
    MOSAIC_RETURN_IF_ERROR(ReadCheckpoint(store_dir, &header, &run->resume_blob));
    if (header.value("fingerprint", std::string()) != std::to_string(fingerprint)) {
      return Status::InvalidArgument(
          "the store changed since the interrupted rebuild started (its graph fingerprint differs): "
          "run `mosaic rebuild` without --resume");
    }
    run->options.seed = header.value("seed", run->options.seed);  // the run being resumed decides
    if (o.epochs == 0) run->epochs = header.value("epochs", run->epochs);
    run->losses = header.value("losses", nlohmann::json::array());
  }
  try {
    run->options.device = fusion::ResolveDevice(o.device);
  } catch (const std::invalid_argument& e) {  // fusion reports an unusable device by exception
    return Status::InvalidArgument(std::string("--device: ") + e.what());
  }
  return Status::OK();
}

// Trains the remaining epochs, writing a checkpoint after each.
Status Train(const std::string& store_dir, const RebuildOptions& o, uint64_t fingerprint, bool writes_checkpoints,
             fusion::Trainer* trainer, Run* run) {
  if (!run->resume_blob.empty()) trainer->LoadCheckpoint(run->resume_blob);
  run->first_epoch = trainer->epochs_done();
  if (run->first_epoch > run->epochs) {
    return Status::InvalidArgument("the checkpoint already has " + std::to_string(run->first_epoch) +
                                   " epochs, more than --epochs " + std::to_string(run->epochs));
  }
  for (int e = run->first_epoch; e < run->epochs; ++e) {
    const double loss_so_far = run->losses.empty() ? 0.0 : run->losses.back()["bpr"].get<double>();
    const fusion::EpochReport rep = trainer->RunEpoch([&](int64_t step, int64_t steps) {
      if (o.on_step) o.on_step(e, run->epochs, step, steps, loss_so_far);
    });
    run->losses.push_back({{"epoch", rep.epoch}, {"bpr", rep.bpr_loss}, {"kg", rep.kg_loss}, {"seconds", rep.seconds}});
    run->kg_triples += rep.kg_triples;
    run->epoch_seconds += rep.seconds;
    run->steps += rep.steps;
    run->bytes_allreduced += rep.bytes_allreduced;
    run->allreduce_seconds += rep.allreduce_seconds;
    if (!writes_checkpoints) continue;
    const nlohmann::json header = {{"fingerprint", std::to_string(fingerprint)}, {"seed", run->options.seed},
                                   {"epochs", run->epochs}, {"epochs_done", trainer->epochs_done()},
                                   {"losses", run->losses}};
    MOSAIC_RETURN_IF_ERROR(WriteCheckpoint(store_dir, header, trainer->SaveCheckpoint()));
  }
  return Status::OK();
}

// The HNSW graph over the item rows, stored with the version so that servers load it instead of
// building it. Returns its manifest entry (null when none is built).
nlohmann::json BuildHnsw(const RebuildOptions& o, ModelVersionData* data) {
  const int64_t num_items = data->config.num_items;
  const bool build = o.hnsw == HnswMode::kOn || (o.hnsw == HnswMode::kAuto && num_items >= kHnswMinItems);
  if (!build || num_items == 0) return nullptr;
  const at::Tensor items =
      data->reps.narrow(0, data->config.num_users, num_items).to(torch::kCPU, torch::kFloat).contiguous();
  fusion::ItemIndex index(items.size(1));
  index.Add(items.data_ptr<float>(), num_items);
  fusion::HnswOptions hnsw;
  index.BuildHnsw(hnsw, [&](int64_t done) {
    if (o.on_hnsw) o.on_hnsw(done, num_items);
  });
  data->hnsw = index.SaveHnsw();
  const char* modes[] = {"auto", "on", "off"};
  return {{"items", num_items}, {"m", hnsw.m}, {"ef_construction", hnsw.ef_construction},
          {"metric", hnsw.metric == fusion::HnswMetric::kInnerProduct ? "inner_product" : "lifted_l2"},
          {"bytes", data->hnsw.size()}, {"mode", modes[int(o.hnsw)]}};
}

// The fold-in settings for users who arrive after this version (fusion/fold_in.h): those that best
// predict held-out plays of up to 500 of the users it was trained with (~10 s on Last.FM).
nlohmann::json ChooseFoldIn(const Snapshot& snap, const ModelVersionData& data, uint64_t seed) {
  const int64_t users = data.config.num_users, items = data.config.num_items;
  const at::Tensor item_rows = data.reps.narrow(0, users, items).contiguous().to(torch::kFloat);
  fusion::UserFoldIn fold_in(item_rows.data_ptr<float>(), size_t(items), size_t(item_rows.size(1)));
  std::vector<std::vector<uint32_t>> interactions_of(static_cast<size_t>(users));
  for (const auto& x : snap.data.interactions) interactions_of[x.user].push_back(x.item);
  const fusion::Tuning tuning = fusion::TuneFoldInOnHeldOutPlays(interactions_of, seed, 500, &fold_in);
  return {{"alpha", fold_in.settings().alpha},
          {"lambda", fold_in.settings().lambda},
          {"holdout_recall20", tuning.grid[tuning.chosen].valid_recall20}};
}

// Writes `data` as the next version and makes it current, in the same last batch as the placements
// of the items created since the snapshot (they are not rows of the new version). *version and
// *late receive what was written.
Status WriteVersion(const std::string& store_dir, const RebuildOptions& o, const Snapshot& snap,
                    fusion::Kgat* model, std::shared_ptr<const fusion::SecondVersion> second, ModelVersionData* data,
                    uint64_t* version, size_t* late) {
  store::OpenOptions open;
  open.wait_for_lock_ms = o.write_lock_wait_ms;
  open.on_wait = o.on_wait_for_lock;
  std::unique_ptr<store::Store> store;
  MOSAIC_RETURN_IF_ERROR(store::Store::Open(store_dir, open, &store));
  auto view = store->NewReadView();
  uint64_t current = 0;
  bool has_current = false;
  MOSAIC_RETURN_IF_ERROR(CurrentModelVersion(*view, &current, &has_current));
  *version = has_current ? current + 1 : 1;

  std::vector<NodeId> late_items;
  MOSAIC_RETURN_IF_ERROR(graph::ItemsCreatedSince(*view, snap.node_id_limit, &late_items));
  std::vector<Placement> placements;
  if (!late_items.empty()) {
    LoadedModel m;
    m.version = *version;
    m.config = data->config;
    m.reps = data->reps;
    m.nodes = data->nodes;
    m.relations = data->relations;
    m.second = second;
    m.Index();
    if (model) (*model)->to(torch::kCPU);
    at::Tensor reps;
    MOSAIC_RETURN_IF_ERROR(InferItems(*view, m, model, late_items, &reps));
    placements = ToPlacements(late_items, reps);
  }
  *late = late_items.size();
  data->manifest["late_items_placed"] = late_items.size();
  const uint64_t v = *version;
  return WriteModelVersion(store.get(), v, std::move(*data), [&](store::Batch* batch) -> Status {
    for (Placement& p : placements) {
      MOSAIC_RETURN_IF_ERROR(PutPlacement(batch, p.item, v, std::move(p.values), "rebuild"));
    }
    return Status::OK();
  });
}

// Joins the training group and checks that every rank read the same snapshot (all ranks fail alike
// when one differs).
Status JoinGroup(const DistributedRebuild& d, uint64_t fingerprint, std::shared_ptr<fusion::TrainingGroup>* out) {
  fusion::TrainingGroupOptions g;
  g.master_addr = d.master_addr;
  g.master_port = d.master_port;
  g.rank = d.rank;
  g.world_size = d.world_size;
  g.timeout = std::chrono::milliseconds(d.timeout_ms);
  try {
    *out = fusion::TrainingGroup::Join(g);
    const std::string mine = std::to_string(fingerprint);
    const std::string rank0 = (*out)->BroadcastBytes(mine);
    const double differing = (*out)->Sum({mine == rank0 ? 0.0 : 1.0})[0];
    if (differing > 0) {
      return Status::InvalidArgument(std::to_string(int(differing)) + " of " + std::to_string(d.world_size) +
                                     " ranks read another snapshot of the store than rank 0 (their graph fingerprints "
                                     "differ): rebuild while nothing writes to it, or from a checkpoint of it");
    }
  } catch (const std::invalid_argument& e) {
    return Status::InvalidArgument(e.what());
  } catch (const std::runtime_error& e) {
    return Status::IOError(e.what());
  }
  return Status::OK();
}

// PlanRun on rank 0, its outcome sent to every rank: the same seed, epochs, losses and checkpoint, or
// the same error everywhere.
Status PlanGroupRun(const std::string& store_dir, const RebuildOptions& o, uint64_t fingerprint,
                    fusion::TrainingGroup& group, Run* run) {
  try {
    std::string plan;
    if (group.rank() == 0) {
      const Status s = PlanRun(store_dir, o, fingerprint, run);
      plan = nlohmann::json{{"ok", s.ok()},
                            {"message", s.ok() ? "" : s.message()},
                            {"seed", run->options.seed},
                            {"epochs", run->epochs},
                            {"losses", run->losses}}
                 .dump();
    }
    plan = group.BroadcastBytes(plan);
    const std::string blob = group.BroadcastBytes(run->resume_blob);
    const nlohmann::json p = nlohmann::json::parse(plan);
    if (!p["ok"].get<bool>()) return Status::InvalidArgument(p["message"].get<std::string>());
    if (group.rank() != 0) {
      RebuildOptions fresh = o;
      fresh.resume = false;  // rank 0 read the checkpoint; this rank takes its plan
      MOSAIC_RETURN_IF_ERROR(PlanRun(store_dir, fresh, fingerprint, run));
      run->options.seed = p["seed"].get<uint64_t>();
      run->epochs = p["epochs"].get<int>();
      run->losses = p["losses"];
      run->resume_blob = blob;
    }
  } catch (const std::runtime_error& e) {
    return Status::IOError(std::string(e.what()) + "; nothing was written, the current version stays");
  }
  return Status::OK();
}

// The second version: fitted on every play of the snapshot, written as a version queries use as
// they use the first (jobs/service/version.h).
Status RebuildSecondVersion(const std::string& store_dir, const RebuildOptions& o, const Snapshot& snap,
                            Clock::time_point start, double snapshot_seconds, const nlohmann::json& counts,
                            RebuildReport* report) {
  const fusion::EvalData& d = snap.data;
  const auto fit_start = Clock::now();
  fusion::SecondVersionOptions options;
  options.seed = o.seed;
  options.on_stage = o.on_fit_stage;
  fusion::SecondVersionReport fitted;
  auto second = std::make_shared<fusion::SecondVersion>();
  try {
    *second = fusion::FitSecondVersion(d, fusion::AllInteractions(d), {}, options, &fitted);
  } catch (const std::invalid_argument& e) {  // data the second version cannot take
    return Status::InvalidArgument(std::string(e.what()) + "; nothing was written, the current version stays");
  } catch (const std::exception& e) {  // fusion reports a failed factorisation by exception
    return Status::Internal(std::string("second version: ") + e.what() + "; nothing was written, the current version stays");
  }
  const double fit_seconds = Since(fit_start);

  const auto reps_start = Clock::now();
  const int64_t U = d.num_users, I = d.num_items, dim = int64_t(second->dim());
  // Its KG features keyed by store ids: a node n of EvalData (item, then entity) is row U + n.
  for (fusion::KgFeatureKey& key : second->content.kg_keys) {
    key.relation = snap.kg_relations[key.relation];
    key.node = snap.nodes[size_t(U) + key.node];
  }
  ModelVersionData data;
  data.config.num_users = U;
  data.config.num_items = I;
  data.config.num_entities = 0;
  data.config.num_relations = 2 * int64_t(snap.kg_relations.size()) + 2;
  data.config.dim = dim;
  data.config.layer_dims = {};
  data.config.seed = o.seed;
  for (const auto& [name, m] : d.modalities) data.config.modality_dims[name] = m.dim;
  data.reps = torch::empty({U + I, dim}, torch::kFloat);
  {
    std::vector<std::vector<uint32_t>> items_of(static_cast<size_t>(U));
    for (const auto& x : d.interactions) items_of[x.user].push_back(x.item);
    const size_t pd = second->projection_dim();
    std::vector<float> rows;
    for (int64_t u = 0; u < U; ++u) {
      std::vector<uint32_t>& items = items_of[size_t(u)];
      std::sort(items.begin(), items.end());
      items.erase(std::unique(items.begin(), items.end()), items.end());
      rows.resize(items.size() * pd);
      for (size_t x = 0; x < items.size(); ++x) std::copy_n(&second->projection[size_t(items[x]) * pd], pd, &rows[x * pd]);
      const std::vector<float> user = second->User(rows.data(), items.size());
      std::copy(user.begin(), user.end(), data.reps[u].data_ptr<float>());
    }
    if (I > 0) std::memcpy(data.reps[U].data_ptr<float>(), second->items.data(), second->items.size() * sizeof(float));
  }
  data.weights = second->Save();
  data.nodes.assign(snap.nodes.begin(), snap.nodes.begin() + U + I);
  data.relations = VersionRelations(snap);
  data.history = VersionHistory(snap);
  const double reps_seconds = Since(reps_start);

  const auto hnsw_start = Clock::now();
  const nlohmann::json hnsw = BuildHnsw(o, &data);
  const double hnsw_seconds = Since(hnsw_start);

  auto chosen = [](const fusion::Tuning& t) {
    return nlohmann::json{{"setting", t.grid[t.chosen].setting}, {"recall20", t.grid[t.chosen].valid_recall20}};
  };
  const fusion::KernelPoint& p = second->content.point;
  const nlohmann::json about = {
      {"ease_lambda", second->ease_lambda},
      {"blend_weight", second->blend_weight},
      {"cold_weight", second->cold_weight},
      {"count_k", second->count_k},
      {"offset_weight", second->offset_weight},
      {"ease_rank", second->ease_rank},
      {"content", {{"g", p.g}, {"w_text", p.w_text}, {"lambda", p.lambda}, {"rank", p.rank}, {"pop", p.pop}}},
      {"validation", {{"ease", chosen(fitted.ease)},
                      {"content", chosen(fitted.content)},
                      {"blend", chosen(fitted.blend)},
                      {"few_plays", fitted.few_plays.grid.empty() ? nlohmann::json() : [&] {
                         const fusion::FewPlayPoint& p = fitted.few_plays.grid[fitted.few_plays.chosen];
                         return nlohmann::json{{"setting", p.setting},
                                               {"few_recall20", p.few_recall20},
                                               {"warm_recall20", p.warm_recall20},
                                               {"warm_ndcg20", p.warm_ndcg20}};
                       }()}}},
      {"fit_stages", [&] {
         nlohmann::json stages = nlohmann::json::array();
         for (const auto& [name, seconds] : fitted.stages) stages.push_back({{"stage", name}, {"seconds", seconds}});
         return stages;
       }()}};
  data.manifest = {{"kind", "v2"},
                   {"created", IsoTime()},
                   {"seed", o.seed},
                   {"counts", counts},
                   {"node_id_limit", snap.node_id_limit},
                   {"cold_items", snap.cold_items},
                   {"second_version", about}};
  if (!hnsw.is_null()) data.manifest["hnsw"] = hnsw;
  const auto write_start = Clock::now();
  uint64_t version = 0;
  size_t late = 0;
  MOSAIC_RETURN_IF_ERROR(WriteVersion(store_dir, o, snap, nullptr, second, &data, &version, &late));
  const double write_seconds = Since(write_start);
  *report = {{"version", version},
             {"kind", "v2"},
             {"seed", o.seed},
             {"seconds", Since(start)},
             {"stages",
              {{"snapshot", snapshot_seconds}, {"fit", fit_seconds}, {"representations", reps_seconds},
               {"hnsw", hnsw_seconds}, {"write", write_seconds}}},
             {"hnsw", hnsw},
             {"second_version", about},
             {"counts", counts},
             {"late_items_placed", late}};
  return Status::OK();
}

}  // namespace

Status TakeTrainingGraph(const store::ReadView& view, Snapshot* snapshot, fusion::TrainingGraph* graph) {
  MOSAIC_RETURN_IF_ERROR(TakeSnapshot(view, snapshot));
  *graph = fusion::BuildTrainingGraph(snapshot->data, fusion::AllInteractions(snapshot->data));
  return Status::OK();
}

Status Rebuild(const std::string& store_dir, const RebuildOptions& o, RebuildReport* report) {
  if (o.epochs < 0) return Status::InvalidArgument("--epochs must not be negative (0 = the default)");
  if (o.model_kind != "v1" && o.model_kind != "v2" && o.model_kind != "auto") {
    return Status::InvalidArgument("--model-kind must be v1, v2 or auto, not '" + o.model_kind + "'");
  }
  bool second = o.model_kind == "v2";
  if (second && (o.resume || o.epochs > 0 || o.distributed.enabled)) {
    return Status::InvalidArgument(
        "--model-kind v2 is fitted in closed form: it has no epochs, so no --epochs, --resume or --distributed");
  }
  const auto start = Clock::now();
  Snapshot snap;
  fusion::TrainingGraph graph;
  {
    std::unique_ptr<store::Store> store;
    store::OpenOptions read_only;
    read_only.read_only = true;
    MOSAIC_RETURN_IF_ERROR(store::Store::Open(store_dir, read_only, &store));
    MOSAIC_RETURN_IF_ERROR(TakeTrainingGraph(*store->NewReadView(), &snap, &graph));
  }
  const uint64_t fingerprint = Fingerprint(snap, graph);
  const double snapshot_seconds = Since(start);
  if (graph.interactions.empty()) {
    return Status::InvalidArgument("nothing to train on: the store has no interactions (import plays or ratings first)");
  }
  const nlohmann::json counts = {{"users", graph.num_users},          {"items", graph.num_items},
                                 {"entities", graph.num_entities},    {"interactions", graph.interactions.size()},
                                 {"kg_triples", graph.triples.size()}, {"kg_relations", graph.num_kg_relations}};
  std::string first_because;  // auto: why the first version
  if (o.model_kind == "auto") {
    first_because = fusion::SecondVersionFits(snap.data, fusion::AllInteractions(snap.data), fusion::SecondVersionOptions());
    second = first_because.empty();
  }
  if (second) return RebuildSecondVersion(store_dir, o, snap, start, snapshot_seconds, counts, report);

  Run run;
  std::shared_ptr<fusion::TrainingGroup> group;
  if (o.distributed.enabled && o.distributed.world_size > 1) {
    MOSAIC_RETURN_IF_ERROR(JoinGroup(o.distributed, fingerprint, &group));
    MOSAIC_RETURN_IF_ERROR(PlanGroupRun(store_dir, o, fingerprint, *group, &run));
  } else {
    MOSAIC_RETURN_IF_ERROR(PlanRun(store_dir, o, fingerprint, &run));
  }
  run.options.group = group;
  const bool writer = !group || group->rank() == 0;
  const auto train_start = Clock::now();
  std::unique_ptr<fusion::Trainer> trainer_ptr;
  try {
    trainer_ptr = std::make_unique<fusion::Trainer>(std::move(graph), run.options);
    MOSAIC_RETURN_IF_ERROR(Train(store_dir, o, fingerprint, writer, trainer_ptr.get(), &run));
  } catch (const std::runtime_error& e) {
    if (!group) throw;
    return Status::IOError(std::string(e.what()) + "; nothing was written, the current version stays");
  }
  fusion::Trainer& trainer = *trainer_ptr;
  const double training_seconds = Since(train_start);
  const int ran_here = run.epochs - run.first_epoch;
  nlohmann::json distributed = nullptr;
  if (group) {
    distributed = {{"rank", group->rank()},
                   {"world_size", group->world_size()},
                   {"bytes_allreduced_per_step", run.steps > 0 ? run.bytes_allreduced / run.steps : 0},
                   {"allreduce_seconds", run.allreduce_seconds}};
  }
  if (!writer) {  // the other ranks trained their shares; rank 0 writes the version
    *report = {{"version", 0},
               {"rank", group->rank()},
               {"world_size", group->world_size()},
               {"epochs", run.epochs},
               {"epochs_run", ran_here},
               {"resumed_from_epoch", run.first_epoch},
               {"seconds", Since(start)},
               {"seconds_per_epoch", ran_here > 0 ? run.epoch_seconds / ran_here : 0.0},
               {"distributed", distributed}};
    return Status::OK();
  }

  const auto reps_start = Clock::now();
  ModelVersionData data;
  data.reps = trainer.Representations();
  data.config = trainer.model()->config();
  data.weights = fusion::SaveWeights(trainer.model());
  data.nodes = snap.nodes;
  data.relations = VersionRelations(snap);
  data.history = VersionHistory(snap);
  const double reps_seconds = Since(reps_start);

  const auto hnsw_start = Clock::now();
  const nlohmann::json hnsw = BuildHnsw(o, &data);
  const double hnsw_seconds = Since(hnsw_start);

  const auto fold_in_start = Clock::now();
  const nlohmann::json fold_in = ChooseFoldIn(snap, data, run.options.seed);
  const double fold_in_seconds = Since(fold_in_start);

  data.manifest = {{"created", IsoTime()},
                   {"seed", run.options.seed},
                   {"epochs", run.epochs},
                   {"device", run.options.device},
                   {"losses", run.losses},
                   {"counts", counts},
                   {"node_id_limit", snap.node_id_limit},
                   {"cold_items", snap.cold_items},
                   {"fingerprint", std::to_string(fingerprint)},
                   {"resumed_from_epoch", run.first_epoch},
                   {"fold_in", fold_in}};
  if (!hnsw.is_null()) data.manifest["hnsw"] = hnsw;
  const auto write_start = Clock::now();
  uint64_t version = 0;
  size_t late = 0;
  MOSAIC_RETURN_IF_ERROR(WriteVersion(store_dir, o, snap, &trainer.model(), nullptr, &data, &version, &late));
  const double write_seconds = Since(write_start);
  std::error_code ec;
  fs::remove_all(CheckpointFile(store_dir).parent_path(), ec);  // the version is written: nothing to resume

  const int ran = run.epochs - run.first_epoch;
  *report = {{"version", version},
             {"epochs", run.epochs},
             {"epochs_run", ran},
             {"resumed_from_epoch", run.first_epoch},
             {"seed", run.options.seed},
             {"device", run.options.device},
             {"seconds", Since(start)},
             {"stages",
              {{"snapshot", snapshot_seconds}, {"training", training_seconds}, {"representations", reps_seconds},
               {"hnsw", hnsw_seconds}, {"fold_in", fold_in_seconds}, {"write", write_seconds}}},
             {"hnsw", hnsw},
             {"fold_in", fold_in},
             {"seconds_per_epoch", ran > 0 ? run.epoch_seconds / ran : 0.0},
             {"transr_triples", run.kg_triples},
             {"transr_triples_per_second", run.epoch_seconds > 0 ? double(run.kg_triples) / run.epoch_seconds : 0.0},
             {"final_loss", run.losses.empty() ? nlohmann::json(nullptr) : run.losses.back()},
             {"losses", run.losses},
             {"counts", counts},
             {"late_items_placed", late}};
  if (group) (*report)["distributed"] = distributed;
  (*report)["kind"] = "v1";
  if (!first_because.empty()) (*report)["kind_reason"] = "the second version does not fit: " + first_because;
  return Status::OK();
}

}  // namespace mosaic::jobs::service
