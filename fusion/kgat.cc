#include "fusion/kgat.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>
#include <stdexcept>
#include <utility>

namespace mosaic::fusion {
namespace {

constexpr double kEmbeddingStd = 0.1;
constexpr double kLeakySlope = 0.2;

void Check(bool ok, const std::string& message) {
  if (!ok) throw std::invalid_argument("Kgat: " + message);
}

// Uniform Xavier initialisation of `t` (any shape) for a map from fan_in to fan_out.
void Xavier(torch::Tensor t, int64_t fan_in, int64_t fan_out, at::Generator& gen) {
  const double bound = std::sqrt(6.0 / static_cast<double>(fan_in + fan_out));
  t.uniform_(-bound, bound, gen);
}

void InitLinear(const torch::nn::Linear& linear, at::Generator& gen) {
  Xavier(linear->weight, linear->options.in_features(), linear->options.out_features(), gen);
  if (linear->bias.defined()) linear->bias.zero_();
}

torch::Tensor Index(const torch::Tensor& t, const torch::Device& device, const char* name) {
  Check(t.defined(), std::string(name) + " is undefined");
  Check(t.dim() == 1, std::string(name) + " must be 1-D");
  Check(t.scalar_type() == torch::kLong, std::string(name) + " must be int64");
  return t.to(device);
}

// Softmax of `logits` [E] over the edges of each head (segment) among n heads. The logits are
// clamped to +-60 instead of shifted by each segment's max: exp stays within float range for up to
// 1e6 edges a head, the result is exact for logits in range, and no scatter-max is needed.
torch::Tensor SegmentSoftmax(const torch::Tensor& logits, const torch::Tensor& head, int64_t n) {
  const auto ex = torch::exp(logits.clamp(-60.0, 60.0));
  const auto sum = torch::zeros({n}, logits.options()).index_add(0, head, ex);
  return ex / sum.index_select(0, head);
}

}  // namespace

KgatImpl::KgatImpl(KgatConfig config)
    : config_(std::move(config)), generator_(at::detail::createCPUGenerator(config_.seed)) {
  Check(config_.num_users >= 0 && config_.num_items >= 0 && config_.num_entities >= 0, "negative node count");
  Check(config_.num_relations >= 1, "num_relations must be at least 1");
  Check(config_.dim > 0 && config_.relation_dim > 0, "dim and relation_dim must be positive");
  for (int64_t d : config_.layer_dims) Check(d > 0, "layer_dims must be positive");
  Check(config_.id_dropout >= 0 && config_.id_dropout < 1, "id_dropout must be in [0, 1)");
  Check(config_.message_dropout >= 0 && config_.message_dropout < 1, "message_dropout must be in [0, 1)");

  const int64_t d = config_.dim;
  torch::NoGradGuard no_grad;
  user_embedding = register_module("user_embedding", torch::nn::Embedding(config_.num_users, d));
  item_embedding = register_module("item_embedding", torch::nn::Embedding(config_.num_items, d));
  entity_embedding = register_module("entity_embedding", torch::nn::Embedding(config_.num_entities, d));
  for (auto* e : {&user_embedding, &item_embedding, &entity_embedding})
    (*e)->weight.normal_(0.0, kEmbeddingStd, generator_);

  for (const auto& [name, in] : config_.modality_dims) {
    Check(in > 0, "modality '" + name + "' has no width");
    modality_names_.push_back(name);
    auto linear = register_module("projection_" + name, torch::nn::Linear(in, d));
    InitLinear(linear, generator_);
    modality_projection.push_back(linear);
  }
  const int64_t m = static_cast<int64_t>(modality_names_.size());
  gate_vector = register_parameter("gate_vector", torch::empty({d}));
  Xavier(gate_vector, d, 1, generator_);
  gate_bias = register_parameter("gate_bias", torch::zeros({m}));

  const int64_t r = config_.num_relations, rd = config_.relation_dim;
  relation_embedding = register_parameter("relation_embedding", torch::empty({r, rd}));
  relation_embedding.normal_(0.0, kEmbeddingStd, generator_);
  relation_projection = register_parameter("relation_projection", torch::empty({r, d, rd}));
  Xavier(relation_projection, d, rd, generator_);

  int64_t in = d;
  for (size_t k = 0; k < config_.layer_dims.size(); ++k) {
    const int64_t out = config_.layer_dims[k];
    auto a = register_module("w1_" + std::to_string(k), torch::nn::Linear(in, out));
    auto b = register_module("w2_" + std::to_string(k), torch::nn::Linear(in, out));
    InitLinear(a, generator_);
    InitLinear(b, generator_);
    w1.push_back(a);
    w2.push_back(b);
    in = out;
  }
}

int64_t KgatImpl::total_dim() const {
  int64_t total = config_.dim;
  for (int64_t d : config_.layer_dims) total += d;
  return total;
}

std::vector<std::string> KgatImpl::ModalityNames() const { return modality_names_; }

torch::Device KgatImpl::device() const { return relation_embedding.device(); }

torch::Tensor KgatImpl::Dropout(const torch::Tensor& x, double p) {
  if (p <= 0) return x;
  auto keep = torch::empty(x.sizes(), torch::kFloat).bernoulli_(1.0 - p, generator_);
  return x * keep.to(x.device(), x.scalar_type()) / (1.0 - p);
}

torch::Tensor KgatImpl::FuseModalities(const ModalityTensors& m, int64_t n) {
  const auto dev = device();
  const int64_t d = config_.dim;
  const int64_t nm = static_cast<int64_t>(modality_names_.size());
  const auto options = relation_embedding.options();
  if (nm == 0) return torch::zeros({n, d}, options);

  Check(m.mask.defined() && m.mask.dim() == 2 && m.mask.size(0) == n && m.mask.size(1) == nm,
        "mask must be [" + std::to_string(n) + ", " + std::to_string(nm) + "]");
  const auto mask = m.mask.to(dev, torch::kBool);
  std::vector<torch::Tensor> projected, scores;
  for (int64_t j = 0; j < nm; ++j) {
    const auto& name = modality_names_[static_cast<size_t>(j)];
    const auto present = mask.select(1, j);
    auto it = m.vectors.find(name);
    if (it == m.vectors.end() || !it->second.defined()) {
      Check(!present.any().item<bool>(), "modality '" + name + "' is marked present but has no vectors");
      projected.push_back(torch::zeros({n, d}, options));
      scores.push_back(torch::zeros({n}, options));
      continue;
    }
    const auto& x = it->second;
    Check(x.dim() == 2 && x.size(0) == n && x.size(1) == config_.modality_dims.at(name),
          "vectors['" + name + "'] must be [" + std::to_string(n) + ", " +
              std::to_string(config_.modality_dims.at(name)) + "]");
    // Absent rows are replaced before the projection so that whatever they hold (even NaN) is never read.
    const auto clean = torch::where(present.unsqueeze(1), x.to(dev, torch::kFloat), torch::zeros({}, options));
    auto p = modality_projection[static_cast<size_t>(j)]->forward(clean);
    projected.push_back(p);
    scores.push_back(torch::tanh(p).matmul(gate_vector) + gate_bias[j]);
  }
  auto p = torch::stack(projected, 1);  // [n, M, d]
  auto s = torch::stack(scores, 1);     // [n, M]
  const auto any = mask.any(1, /*keepdim=*/true);
  // -inf for absent modalities; rows with none get 0 everywhere (any finite value) and a zero gate below.
  s = s.masked_fill(~mask & any, -std::numeric_limits<double>::infinity()).masked_fill(~any, 0.0);
  auto gate = torch::softmax(s, 1).masked_fill(~mask, 0.0);  // exact zeros for absent modalities
  return torch::where(mask.unsqueeze(2), p * gate.unsqueeze(2), torch::zeros({}, p.options())).sum(1);
}

torch::Tensor KgatImpl::ItemLayer0(const ModalityTensors& m, bool training) {
  const auto dev = device();
  const int64_t n = config_.num_items;

  // Id part, zeroed for cold items and (training) for items drawn by id-dropout.
  auto keep = torch::ones({n}, torch::kFloat);
  if (m.cold.defined()) {
    Check(m.cold.dim() == 1 && m.cold.size(0) == n, "cold must be [num_items]");
    keep = keep.masked_fill(m.cold.to(torch::kCPU, torch::kBool), 0.0);
  }
  if (training && config_.id_dropout > 0)
    keep = keep * torch::empty({n}, torch::kFloat).bernoulli_(1.0 - config_.id_dropout, generator_);
  auto ids = item_embedding->weight * keep.to(dev).unsqueeze(1);
  if (modality_names_.empty()) return ids;
  return ids + FuseModalities(m, n);
}

torch::Tensor KgatImpl::Layer0(const ModalityTensors& m, bool training) {
  return torch::cat({user_embedding->weight, ItemLayer0(m, training), entity_embedding->weight}, 0);
}

torch::Tensor KgatImpl::Project(const torch::Tensor& x, const torch::Tensor& r) const {
  auto out = torch::zeros({x.size(0), config_.relation_dim}, x.options());
  for (int64_t k = 0; k < config_.num_relations; ++k) {
    auto idx = (r == k).nonzero().squeeze(1);
    if (idx.numel() == 0) continue;
    out = out.index_copy(0, idx, x.index_select(0, idx).matmul(relation_projection[k]));
  }
  return out;
}

torch::Tensor KgatImpl::Attention(const torch::Tensor& layer0, const GraphTensors& g) {
  const auto dev = device();
  const auto head = Index(g.edge_head, dev, "edge_head");
  const auto rel = Index(g.edge_rel, dev, "edge_rel");
  const auto tail = Index(g.edge_tail, dev, "edge_tail");
  const int64_t e = head.size(0), n = layer0.size(0);
  Check(rel.size(0) == e && tail.size(0) == e, "edge tensors differ in length");
  if (e == 0) return torch::zeros({0}, layer0.options());
  Check(head.min().item<int64_t>() >= 0 && head.max().item<int64_t>() < n && tail.min().item<int64_t>() >= 0 &&
            tail.max().item<int64_t>() < n,
        "edge node index out of range");
  Check(rel.min().item<int64_t>() >= 0 && rel.max().item<int64_t>() < config_.num_relations,
        "edge relation out of range");

  const auto ph = Project(layer0.index_select(0, head), rel);
  const auto pt = Project(layer0.index_select(0, tail), rel);
  const auto logits = (pt * torch::tanh(ph + relation_embedding.index_select(0, rel))).sum(1);  // [E]
  return SegmentSoftmax(logits, head, n);
}

torch::Tensor KgatImpl::Propagate(size_t k, const torch::Tensor& x, const torch::Tensor& neighbours, bool training) {
  auto sum = torch::leaky_relu(w1[k]->forward(x + neighbours), kLeakySlope);
  auto product = torch::leaky_relu(w2[k]->forward(x * neighbours), kLeakySlope);
  auto out = sum + product;
  if (training) out = Dropout(out, config_.message_dropout);
  return torch::nn::functional::normalize(out, torch::nn::functional::NormalizeFuncOptions().dim(1));
}

torch::Tensor KgatImpl::Forward(const GraphTensors& g, const ModalityTensors& m, bool training,
                                const torch::Tensor& attention) {
  auto x0 = Layer0(m, training);
  torch::Tensor pi;
  if (attention.defined()) {
    Check(attention.dim() == 1 && attention.size(0) == g.edge_head.size(0), "attention must be [E]");
    pi = attention.to(device(), torch::kFloat);
  } else {
    pi = Attention(x0, g);
  }
  last_layer0_ = x0;
  last_attention_ = pi.detach();

  const auto dev = device();
  const auto head = Index(g.edge_head, dev, "edge_head");
  const auto tail = Index(g.edge_tail, dev, "edge_tail");
  // With fixed attention the aggregation is a sparse matrix product (no [E, d] intermediate, ~3x
  // faster on the CPU); with attention that needs a gradient it is a gather and an index_add.
  torch::Tensor adjacency;
  if (!pi.requires_grad() && head.size(0) > 0) {
    const int64_t n = x0.size(0);
    adjacency = torch::sparse_coo_tensor(torch::stack({head, tail}), pi, {n, n}).coalesce();
  }
  std::vector<torch::Tensor> layers{x0};
  auto x = x0;
  for (size_t k = 0; k < w1.size(); ++k) {
    auto neighbours = adjacency.defined()
                          ? torch::mm(adjacency, x)
                          : torch::zeros_like(x).index_add(0, head, x.index_select(0, tail) * pi.unsqueeze(1));
    x = Propagate(k, x, neighbours, training);
    layers.push_back(x);
  }
  return torch::cat(layers, 1);
}

torch::Tensor KgatImpl::InferItems(const ModalityTensors& m, const GraphTensors& edges, const torch::Tensor& reps) {
  const auto dev = device();
  Check(reps.dim() == 2 && reps.size(0) == num_nodes() && reps.size(1) == total_dim(),
        "reps must be [num_nodes, total_dim]");
  const int64_t n = m.mask.defined() ? m.mask.size(0) : 0;
  const auto stored = reps.to(dev, torch::kFloat);
  const auto head = Index(edges.edge_head, dev, "edge_head");
  const auto rel = Index(edges.edge_rel, dev, "edge_rel");
  const auto tail = Index(edges.edge_tail, dev, "edge_tail");
  const int64_t e = head.size(0);
  Check(rel.size(0) == e && tail.size(0) == e, "edge tensors differ in length");
  if (e > 0) {
    Check(head.min().item<int64_t>() >= 0 && head.max().item<int64_t>() < n, "edge_head must be a new item");
    Check(tail.min().item<int64_t>() >= 0 && tail.max().item<int64_t>() < num_nodes(), "edge_tail out of range");
    Check(rel.min().item<int64_t>() >= 0 && rel.max().item<int64_t>() < config_.num_relations,
          "edge relation out of range");
  }
  auto x0 = FuseModalities(m, n);
  // Attention of the new items' edges, softmax over each new item's edges, from layer 0 as in Forward.
  torch::Tensor pi = torch::zeros({0}, x0.options());
  if (e > 0) {
    const auto ph = Project(x0.index_select(0, head), rel);
    const auto pt = Project(stored.index_select(0, tail).narrow(1, 0, config_.dim), rel);
    const auto logits = (pt * torch::tanh(ph + relation_embedding.index_select(0, rel))).sum(1);
    pi = SegmentSoftmax(logits, head, n);
  }
  last_attention_ = pi;
  std::vector<torch::Tensor> layers{x0};
  auto x = x0;
  int64_t offset = 0;  // where the neighbours' layer k-1 starts in the stored representation
  int64_t width = config_.dim;
  for (size_t k = 0; k < w1.size(); ++k) {
    const auto previous = stored.narrow(1, offset, width);
    auto neighbours = torch::zeros_like(x).index_add(0, head, previous.index_select(0, tail) * pi.unsqueeze(1));
    x = Propagate(k, x, neighbours, /*training=*/false);
    layers.push_back(x);
    offset += width;
    width = config_.layer_dims[k];
  }
  return torch::cat(layers, 1);
}

void KgatImpl::Reseed(uint64_t seed) { generator_.set_current_seed(seed); }

torch::Tensor KgatImpl::Score(const torch::Tensor& reps, const torch::Tensor& users,
                              const torch::Tensor& items) const {
  const auto dev = reps.device();
  const auto u = Index(users, dev, "users");
  const auto i = Index(items, dev, "items") + config_.num_users;
  Check(u.size(0) == i.size(0), "users and items differ in length");
  return (reps.index_select(0, u) * reps.index_select(0, i)).sum(1);
}

torch::Tensor KgatImpl::BprLoss(const torch::Tensor& reps, const torch::Tensor& users,
                                const torch::Tensor& pos_items, const torch::Tensor& neg_items) const {
  const auto dev = reps.device();
  const auto u = reps.index_select(0, Index(users, dev, "users"));
  const auto p = reps.index_select(0, Index(pos_items, dev, "pos_items") + config_.num_users);
  const auto q = reps.index_select(0, Index(neg_items, dev, "neg_items") + config_.num_users);
  Check(u.size(0) == p.size(0) && u.size(0) == q.size(0), "users and items differ in length");
  const auto diff = (u * p).sum(1) - (u * q).sum(1);
  const auto l2 = (u.pow(2).sum(1) + p.pow(2).sum(1) + q.pow(2).sum(1)).mean() / 2;
  return torch::softplus(-diff).mean() + config_.l2 * l2;
}

torch::Tensor KgatImpl::TransRLoss(const torch::Tensor& layer0, const torch::Tensor& h, const torch::Tensor& r,
                                   const torch::Tensor& t_pos, const torch::Tensor& t_neg) {
  const auto dev = device();
  const auto hi = Index(h, dev, "h"), ri = Index(r, dev, "r"), pi = Index(t_pos, dev, "t_pos"),
             ni = Index(t_neg, dev, "t_neg");
  Check(ri.size(0) == hi.size(0) && pi.size(0) == hi.size(0) && ni.size(0) == hi.size(0),
        "triple tensors differ in length");
  const auto eh = Project(layer0.index_select(0, hi), ri);
  const auto ep = Project(layer0.index_select(0, pi), ri);
  const auto en = Project(layer0.index_select(0, ni), ri);
  const auto er = relation_embedding.index_select(0, ri);
  const auto pos = (eh + er - ep).pow(2).sum(1);
  const auto neg = (eh + er - en).pow(2).sum(1);
  const auto l2 = (eh.pow(2).sum(1) + er.pow(2).sum(1) + ep.pow(2).sum(1) + en.pow(2).sum(1)).mean() / 2;
  return torch::softplus(pos - neg).mean() + config_.l2 * l2;
}

torch::Tensor KgatImpl::TransRLoss(const torch::Tensor& h, const torch::Tensor& r, const torch::Tensor& t_pos,
                                   const torch::Tensor& t_neg) {
  if (!last_layer0_.defined()) throw std::logic_error("Kgat::TransRLoss: no Forward yet");
  return TransRLoss(last_layer0_, h, r, t_pos, t_neg);
}

}  // namespace mosaic::fusion
