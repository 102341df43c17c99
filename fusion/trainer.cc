#include "fusion/trainer.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <mutex>
#include <numeric>
#include <sstream>
#include <stdexcept>

#include "fusion/cpu_memory.h"
#include "fusion/random.h"

namespace mosaic::fusion {
namespace {

void Check(bool ok, const std::string& message) {
  if (!ok) throw std::invalid_argument("Trainer: " + message);
}

// The seed of one purpose (`stream`) in one epoch: a resumed run draws what an uninterrupted one would.
uint64_t EpochSeed(uint64_t seed, int epoch, uint64_t stream) { return StreamSeed(seed, stream, uint64_t(epoch)); }

// Shapes of every parameter and buffer: Module::load replaces tensors wholesale (set_), so a
// checkpoint of another configuration would load silently without this comparison.
std::vector<std::vector<int64_t>> Shapes(torch::nn::Module& module) {
  std::vector<std::vector<int64_t>> shapes;
  for (const auto& p : module.named_parameters()) shapes.push_back(p.value().sizes().vec());
  for (const auto& b : module.named_buffers()) shapes.push_back(b.value().sizes().vec());
  return shapes;
}

torch::Tensor LongTensor(const std::vector<int64_t>& v) {
  return torch::from_blob(const_cast<int64_t*>(v.data()), {static_cast<int64_t>(v.size())}, torch::kLong).clone();
}

}  // namespace

std::string ResolveDevice(const std::string& device) {
  if (device == "cpu") return "cpu";
  if (device == "auto") return torch::cuda::is_available() ? "cuda" : "cpu";
  if (device == "cuda") {
    if (!torch::cuda::is_available())
      throw std::invalid_argument("--device cuda: this LibTorch has no CUDA or no GPU is present (use cpu or auto)");
    return "cuda";
  }
  throw std::invalid_argument("unknown device '" + device + "' (auto, cpu or cuda)");
}

namespace {
// Rank `rank`'s contiguous share [from, to) of n items split over `world` ranks (sizes differ by at most 1).
std::pair<int64_t, int64_t> Share(int64_t n, int rank, int world) {
  return {n * rank / world, n * (rank + 1) / world};
}
}  // namespace

struct Trainer::State {
  TrainingGraph graph;
  TrainOptions options;
  torch::Device device{torch::kCPU};
  Kgat model{nullptr};
  std::unique_ptr<torch::optim::Adam> optimizer;
  int epochs_done = 0;

  ModalityTensors modalities;
  GraphTensors full;                 // every edge, both directions, ordered by head
  std::vector<int64_t> head_offset;  // full-graph edges of node n: [head_offset[n], head_offset[n+1])
  torch::Tensor full_attention;
  std::vector<std::vector<uint32_t>> user_items;  // sorted positives per user, for negative draws
  int64_t kg_nodes_begin = 0, kg_nodes_count = 0;  // items and entities: where corrupted tails come from
};

KgatConfig Trainer::ModelConfig(const TrainingGraph& graph, const TrainOptions& options) {
  KgatConfig c;
  c.num_users = graph.num_users;
  c.num_items = graph.num_items;
  c.num_entities = graph.num_entities;
  c.num_relations = 2 * graph.num_kg_relations + 2;
  c.dim = options.dim;
  c.relation_dim = options.relation_dim;
  c.layer_dims = options.layer_dims;
  for (const auto& [name, m] : graph.modalities) c.modality_dims[name] = m.dim;
  c.id_dropout = options.id_dropout;
  c.message_dropout = options.message_dropout;
  c.l2 = options.l2;
  c.seed = options.seed;
  return c;
}

Trainer::Trainer(TrainingGraph graph, const TrainOptions& options) : state_(std::make_unique<State>()) {
  auto& s = *state_;
  s.graph = std::move(graph);
  s.options = options;
  const auto& g = s.graph;
  Check(g.num_users >= 0 && g.num_items >= 0 && g.num_entities >= 0 && g.num_kg_relations >= 0, "negative count");
  Check(options.batch_size > 0 && options.kg_batch_size > 0, "batch sizes must be positive");
  Check(options.max_neighbours > 0, "max_neighbours must be positive");
  Check(options.negatives > 0, "negatives must be positive");
  Check(options.cold_share >= 0 && options.cold_share < 1, "cold_share must be in [0, 1)");
  Check(options.learning_rate > 0, "learning_rate must be positive");
  s.device = torch::Device(ResolveDevice(options.device));
  UseHugePagesForLargeCpuTensors();
  const int64_t users = g.num_users, items = g.num_items;
  const int64_t nodes = users + items + g.num_entities;

  // Modalities and the cold mask.
  std::vector<std::string> names;
  for (const auto& [name, m] : g.modalities) names.push_back(name);
  auto mask = torch::zeros({items, static_cast<int64_t>(names.size())}, torch::kBool);
  for (size_t j = 0; j < names.size(); ++j) {
    const auto& m = g.modalities.at(names[j]);
    Check(m.dim > 0, "modality '" + names[j] + "' has no width");
    Check(static_cast<int64_t>(m.values.size()) == items * m.dim, "modality '" + names[j] + "' has the wrong size");
    Check(static_cast<int64_t>(m.present.size()) == items, "modality '" + names[j] + "' needs one flag per item");
    auto x = torch::from_blob(const_cast<float*>(m.values.data()), {items, m.dim}, torch::kFloat).clone();
    auto present = torch::from_blob(const_cast<uint8_t*>(m.present.data()), {items}, torch::kUInt8).to(torch::kBool);
    mask.select(1, static_cast<int64_t>(j)).copy_(present);
    s.modalities.vectors[names[j]] = x.to(s.device);
  }
  s.modalities.mask = mask.to(s.device);
  std::vector<uint8_t> cold = g.cold;
  if (cold.empty()) {
    cold.assign(static_cast<size_t>(items), 1);
    for (const auto& [u, i] : g.interactions) {
      Check(i < items, "interaction item out of range");
      cold[i] = 0;
    }
  }
  Check(static_cast<int64_t>(cold.size()) == items, "cold needs one flag per item");
  s.modalities.cold = torch::from_blob(cold.data(), {items}, torch::kUInt8).to(torch::kBool).clone();

  // The full graph, both directions, grouped by head (counting sort keeps it deterministic).
  const int64_t r = g.num_kg_relations;
  std::vector<int64_t> heads, rels, tails;
  heads.reserve(2 * (g.interactions.size() + g.triples.size()));
  rels.reserve(heads.capacity());
  tails.reserve(heads.capacity());
  s.user_items.assign(static_cast<size_t>(users), {});
  for (const auto& [u, i] : g.interactions) {
    Check(u < users && i < items, "interaction (" + std::to_string(u) + ", " + std::to_string(i) + ") out of range");
    const int64_t item_node = users + i;
    heads.push_back(u), rels.push_back(InteractedRelation(r)), tails.push_back(item_node);
    heads.push_back(item_node), rels.push_back(InteractedByRelation(r)), tails.push_back(u);
    s.user_items[u].push_back(i);
  }
  for (auto& v : s.user_items) {
    std::sort(v.begin(), v.end());
    v.erase(std::unique(v.begin(), v.end()), v.end());
  }
  for (const auto& t : g.triples) {
    Check(t.head >= users && t.head < nodes && t.tail >= users && t.tail < nodes,
          "triple node out of range (items and entities only)");
    Check(t.relation < r, "triple relation out of range");
    heads.push_back(t.head), rels.push_back(t.relation), tails.push_back(t.tail);
    heads.push_back(t.tail), rels.push_back(InverseRelation(t.relation, r)), tails.push_back(t.head);
  }
  s.head_offset.assign(static_cast<size_t>(nodes) + 1, 0);
  for (int64_t h : heads) ++s.head_offset[static_cast<size_t>(h) + 1];
  for (size_t n = 0; n < static_cast<size_t>(nodes); ++n) s.head_offset[n + 1] += s.head_offset[n];
  std::vector<int64_t> fill(s.head_offset.begin(), s.head_offset.end() - 1);
  std::vector<int64_t> sh(heads.size()), sr(heads.size()), st(heads.size());
  for (size_t e = 0; e < heads.size(); ++e) {
    const int64_t at = fill[static_cast<size_t>(heads[e])]++;
    sh[at] = heads[e], sr[at] = rels[e], st[at] = tails[e];
  }
  s.full = {LongTensor(sh), LongTensor(sr), LongTensor(st)};
  s.kg_nodes_begin = users;
  s.kg_nodes_count = items + g.num_entities;

  s.model = Kgat(ModelConfig(s.graph, options));
  s.model->to(s.device);
  if (options.group && options.group->world_size() > 1) {
    // Same seed, same initial weights on every rank; rank 0's are broadcast all the same, so that a
    // rank cannot start from another state unnoticed.
    torch::NoGradGuard no_grad;
    std::vector<at::Tensor> params;
    for (auto& p : s.model->parameters()) params.push_back(p.data());
    std::vector<at::Tensor> cpu;
    for (auto& p : params) cpu.push_back(p.to(torch::kCPU).contiguous());
    options.group->Broadcast(cpu);
    for (size_t k = 0; k < params.size(); ++k) params[k].copy_(cpu[k]);
  }
  s.optimizer = std::make_unique<torch::optim::Adam>(s.model->parameters(),
                                                     torch::optim::AdamOptions(options.learning_rate));
}

Trainer::~Trainer() = default;

int Trainer::epochs_done() const { return state_->epochs_done; }
const TrainingGraph& Trainer::graph() const { return state_->graph; }
Kgat& Trainer::model() { return state_->model; }
const GraphTensors& Trainer::FullGraph() const { return state_->full; }
at::Tensor Trainer::Attention() const { return state_->full_attention; }

EpochReport Trainer::RunEpoch(const std::function<void(int64_t, int64_t)>& on_step) {
  auto& s = *state_;
  const auto start = std::chrono::steady_clock::now();
  const int epoch = s.epochs_done + 1;
  const auto& g = s.graph;
  const uint64_t seed = s.options.seed;
  s.model->Reseed(EpochSeed(seed, epoch, 1));
  s.model->train();

  // (1) Items made cold for this epoch, then neighbour sampling: heads with more than
  // max_neighbours edges keep a random subset.
  SplitMix64 sample_rng(EpochSeed(seed, epoch, 2));
  const int64_t users = g.num_users;
  std::vector<uint8_t> cold(static_cast<size_t>(g.num_items), 0);
  const auto* base_cold = s.modalities.cold.data_ptr<bool>();
  for (int64_t i = 0; i < g.num_items; ++i)
    cold[i] = base_cold[i] || (s.options.cold_share > 0 && sample_rng.UniformDouble() < s.options.cold_share);
  const auto* rel_of = s.full.edge_rel.data_ptr<int64_t>();
  const auto* tail_of = s.full.edge_tail.data_ptr<int64_t>();
  const int64_t interacted = InteractedRelation(g.num_kg_relations);
  const int64_t interacted_by = InteractedByRelation(g.num_kg_relations);
  auto dropped = [&](int64_t head, int64_t e) {
    if (rel_of[e] == interacted) return cold[tail_of[e] - users] != 0;
    if (rel_of[e] == interacted_by) return cold[head - users] != 0;
    return false;
  };
  const int64_t cap = s.options.max_neighbours;
  const int64_t nodes = static_cast<int64_t>(s.head_offset.size()) - 1;
  std::vector<int64_t> keep;
  keep.reserve(static_cast<size_t>(s.full.edge_head.size(0)));
  std::vector<int64_t> scratch;
  for (int64_t n = 0; n < nodes; ++n) {
    scratch.clear();
    for (int64_t e = s.head_offset[n]; e < s.head_offset[n + 1]; ++e)
      if (!dropped(n, e)) scratch.push_back(e);
    const int64_t degree = static_cast<int64_t>(scratch.size());
    if (degree <= cap) {
      keep.insert(keep.end(), scratch.begin(), scratch.end());
      continue;
    }
    PartialShuffle(scratch.begin(), scratch.end(), static_cast<size_t>(cap), sample_rng);
    std::sort(scratch.begin(), scratch.begin() + cap);
    keep.insert(keep.end(), scratch.begin(), scratch.begin() + cap);
  }
  const auto kept = LongTensor(keep);
  GraphTensors sampled{s.full.edge_head.index_select(0, kept).to(s.device),
                       s.full.edge_rel.index_select(0, kept).to(s.device),
                       s.full.edge_tail.index_select(0, kept).to(s.device)};

  ModalityTensors modalities = s.modalities;
  modalities.cold = torch::from_blob(cold.data(), {g.num_items}, torch::kUInt8).to(torch::kBool).clone();

  // (2) Attention of the sampled edges, once per epoch and without a gradient.
  torch::Tensor attention;
  {
    torch::NoGradGuard no_grad;
    attention = s.model->Attention(s.model->Layer0(modalities, /*training=*/false), sampled);
  }

  // (3) Mini-batches of interactions (BPR) and KG triples (TransR).
  const int64_t positives = static_cast<int64_t>(g.interactions.size());
  const int64_t steps = std::max<int64_t>(1, (positives + s.options.batch_size - 1) / s.options.batch_size);
  std::vector<size_t> order(g.interactions.size());
  std::iota(order.begin(), order.end(), size_t{0});
  SplitMix64 order_rng(EpochSeed(seed, epoch, 3));
  Shuffle(order.begin(), order.end(), order_rng);
  SplitMix64 draw(EpochSeed(seed, epoch, 4));
  const int64_t items = g.num_items;
  const int64_t triples = static_cast<int64_t>(g.triples.size());
  TrainingGroup* group = s.options.group && s.options.group->world_size() > 1 ? s.options.group.get() : nullptr;
  EpochReport report;
  report.epoch = epoch;
  for (int64_t step = 0; step < steps; ++step) {
    const int64_t begin = step * s.options.batch_size;
    const int64_t end = std::min(positives, begin + s.options.batch_size);
    std::vector<int64_t> users, pos, neg;
    for (int64_t k = begin; k < end; ++k) {
      const auto& [u, i] = g.interactions[order[static_cast<size_t>(k)]];
      const auto& seen = s.user_items[u];
      for (int64_t n = 0; n < s.options.negatives; ++n) {
        int64_t j = 0;
        for (int tries = 0; tries < 32; ++tries) {  // a negative the user has not interacted with
          j = static_cast<int64_t>(draw.Below(static_cast<uint64_t>(items)));
          if (!std::binary_search(seen.begin(), seen.end(), static_cast<uint32_t>(j))) break;
        }
        users.push_back(u), pos.push_back(i), neg.push_back(j);
      }
    }
    if (group) {  // this rank's contiguous share of the step's pairs
      const auto [from, to] = Share(int64_t(users.size()), group->rank(), group->world_size());
      users = std::vector<int64_t>(users.begin() + from, users.begin() + to);
      pos = std::vector<int64_t>(pos.begin() + from, pos.begin() + to);
      neg = std::vector<int64_t>(neg.begin() + from, neg.begin() + to);
    }
    s.optimizer->zero_grad();
    auto reps = s.model->Forward(sampled, modalities, /*training=*/true, attention);
    torch::Tensor loss = torch::zeros({}, reps.options());
    if (!users.empty()) {
      auto bpr = s.model->BprLoss(reps, LongTensor(users), LongTensor(pos), LongTensor(neg));
      report.bpr_loss += bpr.item<double>();
      loss = loss + bpr;
    }
    if (triples > 0 && s.options.kg_weight > 0) {
      std::vector<int64_t> h, r, t, tn;
      const int64_t n = std::min(triples, s.options.kg_batch_size);
      for (int64_t k = 0; k < n; ++k) {
        const auto& x = g.triples[draw.Below(static_cast<uint64_t>(triples))];
        h.push_back(x.head), r.push_back(x.relation), t.push_back(x.tail);
        tn.push_back(s.kg_nodes_begin + static_cast<int64_t>(draw.Below(static_cast<uint64_t>(s.kg_nodes_count))));
      }
      if (group) {
        const auto [from, to] = Share(n, group->rank(), group->world_size());
        for (auto* v : {&h, &r, &t, &tn}) *v = std::vector<int64_t>(v->begin() + from, v->begin() + to);
      }
      auto kg = s.model->TransRLoss(LongTensor(h), LongTensor(r), LongTensor(t), LongTensor(tn));
      report.kg_loss += kg.item<double>();
      report.kg_triples += n;
      loss = loss + s.options.kg_weight * kg;
    }
    if (group) {
      // Every rank joins every allreduce, with zero gradients when its share was empty.
      if (loss.requires_grad()) loss.backward();
      const auto reduce_start = std::chrono::steady_clock::now();
      report.bytes_allreduced += group->AverageGradients(s.model->parameters());
      report.allreduce_seconds +=
          std::chrono::duration<double>(std::chrono::steady_clock::now() - reduce_start).count();
      s.optimizer->step();
    } else if (loss.requires_grad()) {
      loss.backward();
      s.optimizer->step();
    }
    if (on_step) on_step(step + 1, steps);
  }
  report.steps = steps;
  if (group) {  // the losses over every rank's share (each rank's mean weighed alike)
    const std::vector<double> sums = group->Sum({report.bpr_loss, report.kg_loss, double(report.kg_triples)});
    report.bpr_loss = sums[0] / group->world_size();
    report.kg_loss = sums[1] / group->world_size();
    report.kg_triples = int64_t(sums[2]);
  }
  report.bpr_loss /= static_cast<double>(steps);
  report.kg_loss /= static_cast<double>(steps);
  s.epochs_done = epoch;
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

at::Tensor Trainer::Representations() {
  auto& s = *state_;
  torch::NoGradGuard no_grad;
  s.model->eval();
  GraphTensors full{s.full.edge_head.to(s.device), s.full.edge_rel.to(s.device), s.full.edge_tail.to(s.device)};
  auto reps = s.model->Forward(full, s.modalities, /*training=*/false);
  s.full_attention = s.model->AttentionWeights().to(torch::kCPU);
  return reps.to(torch::kCPU).contiguous();
}

std::string Trainer::SaveCheckpoint() {
  auto& s = *state_;
  torch::serialize::OutputArchive archive;
  torch::serialize::OutputArchive model_archive, optimizer_archive;
  s.model->save(model_archive);
  s.optimizer->save(optimizer_archive);
  archive.write("model", model_archive);
  archive.write("optimizer", optimizer_archive);
  archive.write("epochs_done", torch::tensor(static_cast<int64_t>(s.epochs_done)));
  std::ostringstream out;
  archive.save_to(out);
  return out.str();
}

void Trainer::LoadCheckpoint(const std::string& blob) {
  auto& s = *state_;
  try {
    std::istringstream in(blob);
    torch::serialize::InputArchive archive;
    archive.load_from(in, s.device);
    torch::serialize::InputArchive model_archive, optimizer_archive;
    archive.read("model", model_archive);
    archive.read("optimizer", optimizer_archive);
    torch::Tensor epochs;
    archive.read("epochs_done", epochs);
    const auto shapes = Shapes(*s.model);
    s.model->load(model_archive);
    if (Shapes(*s.model) != shapes) throw std::invalid_argument("checkpoint of a model of another configuration");
    s.optimizer->load(optimizer_archive);
    s.epochs_done = static_cast<int>(epochs.item<int64_t>());
  } catch (const c10::Error& e) {
    throw std::invalid_argument(std::string("checkpoint does not fit this model: ") + e.what_without_backtrace());
  }
}

std::string SaveWeights(Kgat& model) {
  torch::serialize::OutputArchive archive;
  model->save(archive);
  std::ostringstream out;
  archive.save_to(out);
  return out.str();
}

Kgat LoadWeights(const KgatConfig& config, const std::string& blob, const std::string& device) {
  Kgat model(config);
  const torch::Device dev(ResolveDevice(device));
  try {
    std::istringstream in(blob);
    torch::serialize::InputArchive archive;
    archive.load_from(in, dev);
    const auto shapes = Shapes(*model);
    model->load(archive);
    if (Shapes(*model) != shapes) throw std::invalid_argument("model weights of another configuration");
  } catch (const c10::Error& e) {
    throw std::invalid_argument(std::string("model weights do not fit their configuration: ") +
                                e.what_without_backtrace());
  }
  model->to(dev);
  model->eval();
  return model;
}

std::string ConfigToJson(const KgatConfig& c) {
  nlohmann::json j = {{"num_users", c.num_users},
                      {"num_items", c.num_items},
                      {"num_entities", c.num_entities},
                      {"num_relations", c.num_relations},
                      {"dim", c.dim},
                      {"relation_dim", c.relation_dim},
                      {"layer_dims", c.layer_dims},
                      {"modality_dims", c.modality_dims},
                      {"id_dropout", c.id_dropout},
                      {"message_dropout", c.message_dropout},
                      {"l2", c.l2},
                      {"seed", c.seed}};
  return j.dump();
}

KgatConfig ConfigFromJson(const std::string& text) {
  KgatConfig c;
  try {
    const auto j = nlohmann::json::parse(text);
    c.num_users = j.at("num_users").get<int64_t>();
    c.num_items = j.at("num_items").get<int64_t>();
    c.num_entities = j.at("num_entities").get<int64_t>();
    c.num_relations = j.at("num_relations").get<int64_t>();
    c.dim = j.at("dim").get<int64_t>();
    c.relation_dim = j.at("relation_dim").get<int64_t>();
    c.layer_dims = j.at("layer_dims").get<std::vector<int64_t>>();
    c.modality_dims = j.at("modality_dims").get<std::map<std::string, int64_t>>();
    c.id_dropout = j.at("id_dropout").get<double>();
    c.message_dropout = j.at("message_dropout").get<double>();
    c.l2 = j.at("l2").get<double>();
    c.seed = j.at("seed").get<uint64_t>();
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(std::string("model config: ") + e.what());
  }
  return c;
}

}  // namespace mosaic::fusion
