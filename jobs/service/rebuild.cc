// mosaic rebuild: trains the graph-attention model on a snapshot of the store, then writes it as a new
// model version (jobs/model_version.h) and switches queries to it.
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "fusion/item_index.h"
#include "fusion/trainer.h"
#include "graph/catalogue.h"
#include "jobs/model_jobs.h"
#include "jobs/progress.h"

namespace mosaic::jobs {

namespace fs = std::filesystem;
using store::NodeId;
using store::NodeKind;

namespace {

using Clock = std::chrono::steady_clock;
double Since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// FNV-1a, 64 bits: a fingerprint of the training graph (not for security).
struct Hasher {
  uint64_t h = 1469598103934665603ull;
  void Bytes(const void* p, size_t n) {
    const auto* b = static_cast<const unsigned char*>(p);
    for (size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 1099511628211ull;
  }
  template <typename T>
  void Value(const T& v) { Bytes(&v, sizeof v); }
};

// The training graph of a store snapshot and how its rows map back to the store.
struct Snapshot {
  fusion::TrainingGraph graph;
  std::vector<NodeId> nodes;        // row -> store id (users | items | entities)
  nlohmann::json relations;         // model relation -> store relation
  NodeId node_id_limit = 0;
  std::vector<NodeId> cold_items;   // store ids
  uint64_t fingerprint = 0;
};

Status BuildSnapshot(const store::ReadView& view, Snapshot* out) {
  MOSAIC_RETURN_IF_ERROR(view.NodeIdLimit(&out->node_id_limit));
  std::set<NodeId> users;
  std::set<std::pair<NodeId, NodeId>> pairs;
  MOSAIC_RETURN_IF_ERROR(view.ForEachInteraction([&](const store::Interaction& x) {
    if (x.kind == store::InteractionKind::kConsumption) {
      users.insert(x.user);
      pairs.emplace(x.user, x.item);
    }
    return true;
  }));
  std::vector<NodeId> items, entities;
  MOSAIC_RETURN_IF_ERROR(view.ForEachNode([&](NodeId id, const store::NodeRecord& r) {
    if (r.kind == NodeKind::kItem) items.push_back(id);
    if (r.kind == NodeKind::kEntity) entities.push_back(id);
    return true;
  }));
  auto& g = out->graph;
  g.num_users = int64_t(users.size());
  g.num_items = int64_t(items.size());
  g.num_entities = int64_t(entities.size());
  std::unordered_map<NodeId, uint32_t> row;
  out->nodes.assign(users.begin(), users.end());
  out->nodes.insert(out->nodes.end(), items.begin(), items.end());
  out->nodes.insert(out->nodes.end(), entities.begin(), entities.end());
  for (size_t r = 0; r < out->nodes.size(); ++r) row[out->nodes[r]] = uint32_t(r);
  const auto U = uint32_t(g.num_users), I = uint32_t(g.num_items);
  auto is_item_or_entity = [&](uint32_t r) { return r >= U; };

  std::vector<uint8_t> has_interaction(items.size(), 0);
  for (const auto& [u, i] : pairs) {
    auto it = row.find(i);
    if (it == row.end() || it->second < U || it->second >= U + I) continue;  // not an item node
    g.interactions.emplace_back(row.at(u), it->second - U);
    has_interaction[it->second - U] = 1;
  }

  // KG triples: every edge between items and entities except `interacted`, relations numbered densely
  // in store id order.
  std::map<store::RelationId, std::string> names;
  MOSAIC_RETURN_IF_ERROR(view.ListRelations(&names));
  std::vector<store::Edge> kg_edges;
  std::set<store::RelationId> used;
  store::RelationId interacted = 0;
  const bool has_interacted = view.FindRelation(store::kInteractedRelation, &interacted).ok();
  MOSAIC_RETURN_IF_ERROR(view.ForEachEdge([&](const store::Edge& e) {
    if (has_interacted && e.relation == interacted) return true;
    auto h = row.find(e.src), t = row.find(e.dst);
    if (h == row.end() || t == row.end() || !is_item_or_entity(h->second) || !is_item_or_entity(t->second)) return true;
    kg_edges.push_back(e);
    used.insert(e.relation);
    return true;
  }));
  std::map<store::RelationId, uint32_t> dense;
  for (store::RelationId r : used) dense.emplace(r, uint32_t(dense.size()));
  g.num_kg_relations = int64_t(dense.size());
  for (const auto& e : kg_edges) g.triples.push_back({row.at(e.src), dense.at(e.relation), row.at(e.dst)});

  const int64_t R = g.num_kg_relations;
  out->relations = nlohmann::json::array();
  for (const auto& [store_id, index] : dense) {
    out->relations.push_back({{"index", index}, {"store_id", store_id}, {"name", names[store_id]}, {"inverse", false}});
  }
  for (const auto& [store_id, index] : dense) {
    out->relations.push_back({{"index", fusion::InverseRelation(index, R)}, {"store_id", store_id},
                              {"name", names[store_id]}, {"inverse", true}});
  }
  for (bool inverse : {false, true}) {
    nlohmann::json r = {{"index", inverse ? fusion::InteractedByRelation(R) : fusion::InteractedRelation(R)},
                        {"name", std::string(store::kInteractedRelation)}, {"inverse", inverse}};
    r["store_id"] = has_interacted ? nlohmann::json(interacted) : nlohmann::json(nullptr);
    out->relations.push_back(r);
  }

  // Content: the text, visual and audio features; a vector of another width than the first one seen
  // for its modality is treated as absent (an extractor changed half-way).
  for (size_t i = 0; i < items.size(); ++i) {
    MOSAIC_RETURN_IF_ERROR(view.ForEachFeature(items[i], [&](const std::string& name, const store::FeatureVector& f) {
      if (name != "text" && name != "visual" && name != "audio") return true;
      if (f.values.empty()) return true;
      auto& m = g.modalities[name];
      if (m.dim == 0) {
        m.dim = int64_t(f.values.size());
        m.values.assign(size_t(g.num_items) * size_t(m.dim), 0.0f);
        m.present.assign(size_t(g.num_items), 0);
      }
      if (int64_t(f.values.size()) != m.dim) return true;
      std::copy(f.values.begin(), f.values.end(), m.values.begin() + int64_t(i) * m.dim);
      m.present[i] = 1;
      return true;
    }));
  }
  g.cold.assign(items.size(), 0);
  for (size_t i = 0; i < items.size(); ++i) {
    g.cold[i] = has_interaction[i] ? 0 : 1;
    if (!has_interaction[i]) out->cold_items.push_back(items[i]);
  }

  Hasher h;
  h.Value(g.num_users);
  h.Value(g.num_items);
  h.Value(g.num_entities);
  h.Value(g.num_kg_relations);
  h.Bytes(out->nodes.data(), out->nodes.size() * sizeof(NodeId));
  for (const auto& [u, i] : g.interactions) {
    h.Value(u);
    h.Value(i);
  }
  for (const auto& t : g.triples) {
    h.Value(t.head);
    h.Value(t.relation);
    h.Value(t.tail);
  }
  for (const auto& [name, m] : g.modalities) {
    h.Bytes(name.data(), name.size());
    h.Value(m.dim);
    h.Bytes(m.present.data(), m.present.size());
    h.Bytes(m.values.data(), m.values.size() * sizeof(float));
  }
  out->fingerprint = h.h;
  return Status::OK();
}

// The checkpoint file: u64 header length, the JSON header {fingerprint, seed, epochs, losses...}, then
// Trainer::SaveCheckpoint's bytes.
fs::path CheckpointFile(const Context& ctx) { return fs::path(ctx.store_dir) / "rebuild-checkpoint" / "checkpoint.bin"; }

Status WriteCheckpoint(const Context& ctx, const nlohmann::json& header, const std::string& blob) {
  const fs::path file = CheckpointFile(ctx);
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

Status ReadCheckpoint(const Context& ctx, nlohmann::json* header, std::string* blob) {
  const fs::path file = CheckpointFile(ctx);
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

// Opens the store for writing, waiting while another process holds it.
Status OpenForWriting(const Context& ctx, std::unique_ptr<store::Store>* store) {
  store::OpenOptions options;
  options.wait_for_lock_ms = kWriteLockWaitMs;
  options.on_wait = [&ctx] {
    if (!ctx.json) std::fprintf(stderr, "the store is busy (another process is writing); waiting to write the model...\n");
  };
  return store::Store::Open(ctx.store_dir, options, store);
}

std::string IsoTime() {
  std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

}  // namespace

Status RunRebuild(const Context& ctx, const RebuildArgs& args) {
  if (args.epochs < 0) return Status::InvalidArgument("--epochs must not be negative (0 = the default)");
  if (args.hnsw != "auto" && args.hnsw != "on" && args.hnsw != "off") {
    return Status::InvalidArgument("--hnsw must be auto, on or off, not '" + args.hnsw + "'");
  }
  const auto start = Clock::now();
  Snapshot snap;
  {
    std::unique_ptr<store::Store> store;
    MOSAIC_RETURN_IF_ERROR(OpenModelStore(ctx, /*read_only=*/true, &store));
    MOSAIC_RETURN_IF_ERROR(BuildSnapshot(*store->NewReadView(), &snap));
  }
  const double snapshot_seconds = Since(start);
  if (snap.graph.interactions.empty()) {
    return Status::InvalidArgument("nothing to train on: the store has no interactions (import plays or ratings first)");
  }

  fusion::TrainOptions options;
  options.seed = args.seed;
  int epochs = args.epochs > 0 ? args.epochs : options.epochs;
  nlohmann::json losses = nlohmann::json::array();
  std::string resume_blob;
  if (args.resume) {
    nlohmann::json header;
    MOSAIC_RETURN_IF_ERROR(ReadCheckpoint(ctx, &header, &resume_blob));
    if (header.value("fingerprint", std::string()) != std::to_string(snap.fingerprint)) {
      return Status::InvalidArgument(
          "the store changed since the interrupted rebuild started (its graph fingerprint differs): "
          "run `mosaic rebuild` without --resume");
    }
    options.seed = header.value("seed", options.seed);  // the run being resumed decides
    if (args.epochs == 0) epochs = header.value("epochs", epochs);
    losses = header.value("losses", nlohmann::json::array());
  }
  options.device = fusion::ResolveDevice(ctx.device);

  const auto train_start = Clock::now();
  fusion::Trainer trainer(snap.graph, options);
  if (args.resume) trainer.LoadCheckpoint(resume_blob);
  const int first_epoch = trainer.epochs_done();
  if (first_epoch > epochs) {
    return Status::InvalidArgument("the checkpoint already has " + std::to_string(first_epoch) +
                                   " epochs, more than --epochs " + std::to_string(epochs));
  }
  Progress progress(ctx.progress, "rebuild");
  int64_t kg_triples = 0;
  double epoch_seconds = 0;  // TransR runs inside every step, so its rate is over whole epochs
  for (int e = first_epoch; e < epochs; ++e) {
    const double loss_so_far = losses.empty() ? 0.0 : losses.back()["bpr"].get<double>();
    const fusion::EpochReport rep = trainer.RunEpoch([&](int64_t step, int64_t steps) {
      char detail[96];
      std::snprintf(detail, sizeof detail, "epoch %d/%d  step %lld/%lld  loss %.4f", e + 1, epochs,
                    static_cast<long long>(step), static_cast<long long>(steps), loss_so_far);
      progress.Update(double(e - first_epoch) + double(step) / double(std::max<int64_t>(steps, 1)),
                      double(epochs - first_epoch), detail);
    });
    losses.push_back({{"epoch", rep.epoch}, {"bpr", rep.bpr_loss}, {"kg", rep.kg_loss}, {"seconds", rep.seconds}});
    kg_triples += rep.kg_triples;
    epoch_seconds += rep.seconds;
    const nlohmann::json header = {{"fingerprint", std::to_string(snap.fingerprint)}, {"seed", options.seed},
                                   {"epochs", epochs}, {"epochs_done", trainer.epochs_done()}, {"losses", losses}};
    MOSAIC_RETURN_IF_ERROR(WriteCheckpoint(ctx, header, trainer.SaveCheckpoint()));
  }
  progress.Finish();
  const double training_seconds = Since(train_start);

  const auto reps_start = Clock::now();
  ModelVersionData data;
  data.reps = trainer.Representations();
  data.config = trainer.model()->config();
  data.weights = fusion::SaveWeights(trainer.model());
  data.nodes = snap.nodes;
  data.relations = snap.relations;
  const double reps_seconds = Since(reps_start);

  // The HNSW graph over the item rows, stored with the version so that servers load it instead of
  // building it (auto: from kHnswMinItems items on).
  const int64_t num_items = data.config.num_items;
  const bool build_hnsw = args.hnsw == "on" || (args.hnsw == "auto" && num_items >= kHnswMinItems);
  const auto hnsw_start = Clock::now();
  nlohmann::json hnsw_manifest;
  if (build_hnsw && num_items > 0) {
    const at::Tensor items = data.reps.narrow(0, data.config.num_users, num_items).to(torch::kCPU, torch::kFloat).contiguous();
    fusion::ItemIndex index(items.size(1));
    index.Add(items.data_ptr<float>(), num_items);
    fusion::HnswOptions hnsw_options;
    Progress hnsw_progress(ctx.progress, "hnsw");
    index.BuildHnsw(hnsw_options, [&](int64_t done) {
      hnsw_progress.Update(double(done), double(num_items), "items in the graph");
    });
    hnsw_progress.Finish();
    data.hnsw = index.SaveHnsw();
    hnsw_manifest = {{"items", num_items}, {"m", hnsw_options.m}, {"ef_construction", hnsw_options.ef_construction},
                     {"metric", hnsw_options.metric == fusion::HnswMetric::kInnerProduct ? "inner_product" : "lifted_l2"},
                     {"bytes", data.hnsw.size()}, {"mode", args.hnsw}};
  }
  const double hnsw_seconds = Since(hnsw_start);

  // Write: a new version, made current in its last batch together with the representations of items
  // ingested while this rebuild trained (they are not rows of the new version).
  const auto write_start = Clock::now();
  std::unique_ptr<store::Store> store;
  MOSAIC_RETURN_IF_ERROR(OpenForWriting(ctx, &store));
  auto view = store->NewReadView();
  uint64_t current = 0;
  bool has_current = false;
  MOSAIC_RETURN_IF_ERROR(CurrentModelVersion(*view, &current, &has_current));
  const uint64_t version = has_current ? current + 1 : 1;

  std::vector<NodeId> late_items;
  MOSAIC_RETURN_IF_ERROR(graph::ItemsCreatedSince(*view, snap.node_id_limit, &late_items));
  at::Tensor late_reps;
  if (!late_items.empty()) {
    LoadedModel m;
    m.version = version;
    m.config = data.config;
    m.reps = data.reps;
    m.nodes = data.nodes;
    m.relations = snap.relations;
    m.Index();
    trainer.model()->to(torch::kCPU);
    MOSAIC_RETURN_IF_ERROR(InferNewItems(*view, m, trainer.model(), late_items, &late_reps));
  }

  data.manifest = {{"created", IsoTime()},
                   {"seed", options.seed},
                   {"epochs", epochs},
                   {"device", options.device},
                   {"losses", losses},
                   {"counts",
                    {{"users", snap.graph.num_users},
                     {"items", snap.graph.num_items},
                     {"entities", snap.graph.num_entities},
                     {"interactions", snap.graph.interactions.size()},
                     {"kg_triples", snap.graph.triples.size()},
                     {"kg_relations", snap.graph.num_kg_relations}}},
                   {"node_id_limit", snap.node_id_limit},
                   {"cold_items", snap.cold_items},
                   {"late_items_placed", late_items.size()},
                   {"fingerprint", std::to_string(snap.fingerprint)},
                   {"resumed_from_epoch", first_epoch}};
  if (!hnsw_manifest.is_null()) data.manifest["hnsw"] = hnsw_manifest;
  const auto& late = late_items;
  Status s = WriteModelVersion(store.get(), version, data, [&](store::Batch* batch) -> Status {
    for (size_t i = 0; i < late.size(); ++i) {
      at::Tensor row = late_reps[int64_t(i)].contiguous();
      std::vector<float> values(row.data_ptr<float>(), row.data_ptr<float>() + row.numel());
      MOSAIC_RETURN_IF_ERROR(PutPlacement(batch, late[i], version, std::move(values), "rebuild"));
    }
    return Status::OK();
  });
  MOSAIC_RETURN_IF_ERROR(s);
  const double write_seconds = Since(write_start);
  std::error_code ec;
  fs::remove_all(CheckpointFile(ctx).parent_path(), ec);  // the version is written: nothing to resume

  const int ran = epochs - first_epoch;
  nlohmann::json summary = {
      {"version", version},
      {"epochs", epochs},
      {"epochs_run", ran},
      {"resumed_from_epoch", first_epoch},
      {"seed", options.seed},
      {"device", options.device},
      {"seconds", Since(start)},
      {"stages",
       {{"snapshot", snapshot_seconds}, {"training", training_seconds}, {"representations", reps_seconds},
        {"hnsw", hnsw_seconds}, {"write", write_seconds}}},
      {"hnsw", hnsw_manifest.is_null() ? nlohmann::json(nullptr) : hnsw_manifest},
      {"seconds_per_epoch", ran > 0 ? epoch_seconds / ran : 0.0},
      {"transr_triples", kg_triples},
      {"transr_triples_per_second", epoch_seconds > 0 ? double(kg_triples) / epoch_seconds : 0.0},
      {"final_loss", losses.empty() ? nlohmann::json(nullptr) : losses.back()},
      {"counts", data.manifest["counts"]},
      {"late_items_placed", late_items.size()}};
  if (args.summary) {
    *args.summary = summary;
  } else if (ctx.json) {
    std::printf("%s\n", summary.dump().c_str());
  } else {
    const auto& c = summary["counts"];
    std::printf("trained model v%llu: %d epochs%s on %s users, %s items, %s entities, %s interactions, %s KG triples (%s)\n",
                static_cast<unsigned long long>(version), epochs,
                first_epoch > 0 ? (" (resumed after epoch " + std::to_string(first_epoch) + ")").c_str() : "",
                WithThousands(c["users"]).c_str(), WithThousands(c["items"]).c_str(),
                WithThousands(c["entities"]).c_str(), WithThousands(c["interactions"]).c_str(),
                WithThousands(c["kg_triples"]).c_str(), options.device.c_str());
    if (!losses.empty()) {
      std::printf("loss: BPR %.4f -> %.4f, TransR %.4f -> %.4f\n", losses.front()["bpr"].get<double>(),
                  losses.back()["bpr"].get<double>(), losses.front()["kg"].get<double>(),
                  losses.back()["kg"].get<double>());
    }
    char hnsw_time[48] = "";
    if (!hnsw_manifest.is_null()) std::snprintf(hnsw_time, sizeof hnsw_time, ", HNSW graph %.2f", hnsw_seconds);
    std::printf("time: %.2f s (snapshot %.2f, training %.2f = %.3f s/epoch, representations %.2f%s, write %.2f); "
                "TransR %s triples/s\n",
                summary["seconds"].get<double>(), snapshot_seconds, training_seconds,
                summary["seconds_per_epoch"].get<double>(), reps_seconds, hnsw_time, write_seconds,
                WithThousands(uint64_t(summary["transr_triples_per_second"].get<double>())).c_str());
    if (!hnsw_manifest.is_null()) {
      std::printf("HNSW graph over %s items (M %d, ef_construction %d): %.1f MiB, stored with the version\n",
                  WithThousands(uint64_t(num_items)).c_str(), hnsw_manifest["m"].get<int>(),
                  hnsw_manifest["ef_construction"].get<int>(), double(data.hnsw.size()) / (1 << 20));
    }
    if (!late_items.empty()) std::printf("placed %zu items ingested during the rebuild\n", late_items.size());
    std::printf("queries now use model v%llu\n", static_cast<unsigned long long>(version));
  }
  return Status::OK();
}

}  // namespace mosaic::jobs
