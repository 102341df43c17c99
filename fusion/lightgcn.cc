#include "fusion/lightgcn.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <stdexcept>

#include "fusion/metrics.h"
#include "fusion/random.h"
#include "fusion/trainer.h"

namespace mosaic::fusion {
namespace {

constexpr double kInitStd = 0.1;           ///< the paper's initialisation
constexpr int kEpochsWithoutValid = 100;   ///< training length when Fit gets no validation interactions
constexpr uint64_t kStreamEpoch = 0x4C47;  ///< random stream of epoch e: the order of its triples and their negatives

// The inner loops (the propagation's rows, the batch's scores, Adam, a user's scores) are compiled
// twice, for AVX2 + FMA (x86-64-v3: ~1.5x faster propagation) and for the baseline, and the loader
// picks the one the CPU runs, so that the library stays portable. FMA rounds differently: results
// are reproducible on one machine, not across CPUs of different levels.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define MOSAIC_LIGHTGCN_SIMD __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define MOSAIC_LIGHTGCN_SIMD
#endif

// A coalesced sparse COO adjacency with its CSR arrays on the CPU, for the CPU product.
struct Csr {
  at::Tensor coo;     ///< [n, n] sparse COO, on the device the product runs on
  at::Tensor rowptr;  ///< int64 [n + 1], CPU
  at::Tensor col;     ///< int64 [nnz], CPU
  at::Tensor val;     ///< float32 [nnz], CPU
};

Csr ToCsr(const at::Tensor& adjacency) {
  if (!adjacency.defined() || !adjacency.is_sparse() || adjacency.dim() != 2 ||
      adjacency.size(0) != adjacency.size(1) || adjacency.scalar_type() != torch::kFloat) {
    throw std::invalid_argument("LightGCN: the adjacency must be a square float32 sparse COO matrix");
  }
  Csr csr;
  csr.coo = adjacency.coalesce();  // a no-op for NormalisedAdjacency's tensor
  const auto cpu = csr.coo.to(torch::kCPU);
  const auto indices = cpu.indices();
  const auto rows = indices[0].contiguous();
  csr.col = indices[1].contiguous();
  csr.val = cpu.values().contiguous();
  const int64_t n = adjacency.size(0), nnz = rows.size(0);
  csr.rowptr = torch::zeros({n + 1}, torch::kLong);
  int64_t* rp = csr.rowptr.data_ptr<int64_t>();
  const int64_t* r = rows.data_ptr<int64_t>();
  for (int64_t k = 0; k < nnz; ++k) ++rp[r[k] + 1];  // coalesced: sorted by row, then column
  for (int64_t k = 0; k < n; ++k) rp[k + 1] += rp[k];
  return csr;
}

// For rows [begin, end): next[r] = sum over the stored entries (r, c, v) of v x[c], summed in column
// order (so the result does not depend on how rows are shared among threads), and sum[r] += next[r].
// `next` may be null (the last layer, which only the sum needs).
MOSAIC_LIGHTGCN_SIMD
void LayerRows(const int64_t* rowptr, const int64_t* col, const float* val, const float* x, float* next, float* sum,
               int64_t d, int64_t begin, int64_t end, float* scratch) {
  for (int64_t r = begin; r < end; ++r) {
    float* __restrict o = next ? next + r * d : scratch;
    std::fill(o, o + d, 0.0f);
    for (int64_t p = rowptr[r]; p < rowptr[r + 1]; ++p) {
      const float w = val[p];
      const float* __restrict xr = x + col[p] * d;
      for (int64_t k = 0; k < d; ++k) o[k] += w * xr[k];
    }
    float* __restrict s = sum + r * d;
    for (int64_t k = 0; k < d; ++k) s[k] += o[k];
  }
}

// The mean of x, A x, ..., A^layers x: ((x + A x) + A^2 x) + ... divided by layers + 1. On the CPU
// by LayerRows (each layer's product fused with the running sum; LibTorch's COO product is ~2x
// slower, and the chain of products and sums under autograd costs as much again), over rows shared
// among LibTorch's intra-op threads (at::get_num_threads(): OMP_NUM_THREADS or at::set_num_threads),
// with the two intermediate layers in `work` ([2, n, d], reused between calls) when it is defined.
// Elsewhere, torch::mm of the sparse tensor.
at::Tensor MeanOfLayers(const Csr& a, const at::Tensor& x, int layers, at::Tensor work = {}) {
  if (!x.device().is_cpu()) {
    at::Tensor layer = x, sum = x.clone();
    for (int k = 0; k < layers; ++k) {
      layer = torch::mm(a.coo, layer);
      sum.add_(layer);
    }
    return sum.div_(double(layers + 1));
  }
  const auto x0 = x.contiguous();
  auto sum = x0.clone();
  const int64_t n = a.rowptr.size(0) - 1, d = x0.size(1);
  if (layers >= 2 &&
      (!work.defined() || work.dim() != 3 || work.size(0) != 2 || work.size(1) != n || work.size(2) != d)) {
    work = torch::empty({2, n, d}, x0.options());
  }
  const int64_t* rowptr = a.rowptr.data_ptr<int64_t>();
  const int64_t* col = a.col.data_ptr<int64_t>();
  const float* val = a.val.data_ptr<float>();
  // Rows per task: about 64k stored entries' worth, so that small graphs stay on one thread.
  const int64_t grain = std::max<int64_t>(1, n * 65536 / std::max<int64_t>(1, rowptr[n]));
  for (int k = 0; k < layers; ++k) {
    const float* in = k == 0 ? x0.data_ptr<float>() : work[(k - 1) % 2].data_ptr<float>();
    float* out = k + 1 == layers ? nullptr : work[k % 2].data_ptr<float>();  // the last layer only adds
    float* s = sum.data_ptr<float>();
    at::parallel_for(0, n, grain, [&](int64_t begin, int64_t end) {
      std::vector<float> scratch(size_t(out ? 0 : d));
      LayerRows(rowptr, col, val, in, out, s, d, begin, end, scratch.data());
    });
  }
  return sum.div_(double(layers + 1));
}

// The adjacency and the layers' scratch, kept by an autograd Function's forward for its backward.
void SaveCsr(torch::autograd::AutogradContext* ctx, const Csr& a, const at::Tensor& work) {
  ctx->saved_data["coo"] = a.coo;
  ctx->saved_data["rowptr"] = a.rowptr;
  ctx->saved_data["col"] = a.col;
  ctx->saved_data["val"] = a.val;
  ctx->saved_data["work"] = work;
}
Csr SavedCsr(torch::autograd::AutogradContext* ctx) {
  return Csr{ctx->saved_data["coo"].toTensor(), ctx->saved_data["rowptr"].toTensor(),
             ctx->saved_data["col"].toTensor(), ctx->saved_data["val"].toTensor()};
}

// e = M e0 with M = (I + A + ... + A^layers) / (layers + 1). A is symmetric, so M is, and the
// backward is the same operator: dL/de0 = M^T dL/de = M dL/de. `work` as MeanOfLayers's.
class LayerMean : public torch::autograd::Function<LayerMean> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, at::Tensor x, at::Tensor coo, at::Tensor rowptr,
                            at::Tensor col, at::Tensor val, at::Tensor work, int64_t layers) {
    SaveCsr(ctx, Csr{coo, rowptr, col, val}, work);
    ctx->saved_data["layers"] = layers;
    return MeanOfLayers(Csr{coo, rowptr, col, val}, x, int(layers), work);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const Csr a = SavedCsr(ctx);
    const auto layers = int(ctx->saved_data["layers"].toInt());
    return {MeanOfLayers(a, grads[0], layers, ctx->saved_data["work"].toTensor()),
            at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

// The final embeddings of e0, differentiable; `work` ([2, n, d] on the CPU, or undefined) holds the
// intermediate layers, so one Fit allocates them once.
at::Tensor Propagate(const Csr& a, const at::Tensor& e0, int layers, const at::Tensor& work = {}) {
  // apply() takes no undefined tensor: an empty one stands for "allocate per call".
  return LayerMean::apply(e0, a.coo, a.rowptr, a.col, a.val, work.defined() ? work : torch::empty({0}),
                          int64_t(layers));
}

// For each of the b triples (t[k], t[b + k], t[2b + k]) of rows of e ([n, d]): x[k] = <e_u, e_j> -
// <e_u, e_i>, and the sum over the triples of |w_u|^2 + |w_i|^2 + |w_j|^2 for the rows of w. Eight
// partial sums per dot product, so that the loop vectorises.
MOSAIC_LIGHTGCN_SIMD
double TripleScores(const float* e, const float* w, const int64_t* t, int64_t b, int64_t d, float* x) {
  constexpr int kLanes = 8;
  double squares = 0;
  for (int64_t k = 0; k < b; ++k) {
    const float* eu = e + t[k] * d;
    const float* ei = e + t[b + k] * d;
    const float* ej = e + t[2 * b + k] * d;
    const float* wu = w + t[k] * d;
    const float* wi = w + t[b + k] * d;
    const float* wj = w + t[2 * b + k] * d;
    float pos[kLanes] = {}, neg[kLanes] = {}, sq[kLanes] = {};
    int64_t c = 0;
    for (; c + kLanes <= d; c += kLanes) {
      for (int l = 0; l < kLanes; ++l) {
        pos[l] += eu[c + l] * ei[c + l];
        neg[l] += eu[c + l] * ej[c + l];
        sq[l] += wu[c + l] * wu[c + l] + wi[c + l] * wi[c + l] + wj[c + l] * wj[c + l];
      }
    }
    for (; c < d; ++c) {
      pos[0] += eu[c] * ei[c];
      neg[0] += eu[c] * ej[c];
      sq[0] += wu[c] * wu[c] + wi[c] * wi[c] + wj[c] * wj[c];
    }
    float p = 0, n = 0, q = 0;
    for (int l = 0; l < kLanes; ++l) p += pos[l], n += neg[l], q += sq[l];
    x[k] = n - p;
    squares += q;
  }
  return squares;
}

// One Adam step in one pass: LibTorch's formula (no weight decay), m and v the moments, step_size =
// lr / (1 - beta1^t), correction2 = sqrt(1 - beta2^t).
MOSAIC_LIGHTGCN_SIMD
void AdamRows(float* p, const float* g, float* m, float* v, int64_t n, float beta1, float beta2, float step_size,
              float correction2, float eps) {
  for (int64_t k = 0; k < n; ++k) {
    m[k] = m[k] * beta1 + g[k] * (1 - beta1);
    v[k] = v[k] * beta2 + g[k] * g[k] * (1 - beta2);
    p[k] -= step_size * m[k] / (std::sqrt(v[k]) / correction2 + eps);
  }
}

// The loss of one mini-batch on the CPU, in one pass each way (LibTorch's index_select and its
// backward allocate and sum a full-size gradient per gather, which costs as much as the products):
// forward e = MeanOfLayers(e0) and the loss; backward G = dL/de by hand (non-zero on the batch's
// rows only), dL/de0 = MeanOfLayers(G) (M is symmetric) plus the L2 term's l2 e0 / B on each
// occurrence of a row in the batch. `triples` is [3, B] int64: user, positive, negative nodes.
class FusedBatchLoss : public torch::autograd::Function<FusedBatchLoss> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, at::Tensor e0, at::Tensor coo, at::Tensor rowptr,
                            at::Tensor col, at::Tensor val, at::Tensor work, at::Tensor triples, int64_t layers,
                            double l2) {
    const Csr a{coo, rowptr, col, val};
    const auto x0 = e0.contiguous();
    const auto e = MeanOfLayers(a, x0, int(layers), work);
    const int64_t b = triples.size(1), d = x0.size(1);
    const int64_t* t = triples.data_ptr<int64_t>();
    const float* ev = e.data_ptr<float>();
    const float* e0v = x0.data_ptr<float>();
    auto sigma = torch::empty({b}, torch::kFloat);  // sigmoid(s_neg - s_pos): the softplus's derivative
    float* sg = sigma.data_ptr<float>();
    const double reg = TripleScores(ev, e0v, t, b, d, sg);
    double bpr = 0;
    for (int64_t k = 0; k < b; ++k) {
      const float x = sg[k];
      bpr += x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x));  // softplus(x), stable
      sg[k] = 1.0f / (1.0f + std::exp(-x));
    }
    SaveCsr(ctx, Csr{coo, rowptr, col, val}, work);
    ctx->saved_data["triples"] = triples;
    ctx->saved_data["e"] = e;
    ctx->saved_data["e0"] = x0;
    ctx->saved_data["sigma"] = sigma;
    ctx->saved_data["layers"] = layers;
    ctx->saved_data["l2"] = l2;
    return torch::full({}, bpr / double(b) + l2 * reg / (2.0 * double(b)), torch::kFloat);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const Csr a = SavedCsr(ctx);
    const auto triples = ctx->saved_data["triples"].toTensor();
    const auto e = ctx->saved_data["e"].toTensor(), e0 = ctx->saved_data["e0"].toTensor();
    const auto sigma = ctx->saved_data["sigma"].toTensor();
    const auto layers = int(ctx->saved_data["layers"].toInt());
    const double l2 = ctx->saved_data["l2"].toDouble();
    const float g = grads[0].item<float>();
    const int64_t b = triples.size(1), d = e.size(1);
    const int64_t* t = triples.data_ptr<int64_t>();
    const float* ev = e.data_ptr<float>();
    const float* sg = sigma.data_ptr<float>();
    auto grad_e = torch::zeros_like(e);
    float* ge = grad_e.data_ptr<float>();
    for (int64_t k = 0; k < b; ++k) {
      const float c = g * sg[k] / float(b);  // d loss / d (s_neg - s_pos)
      const float* eu = ev + t[k] * d;
      const float* ei = ev + t[b + k] * d;
      const float* ej = ev + t[2 * b + k] * d;
      float* gu = ge + t[k] * d;
      float* gi = ge + t[b + k] * d;
      float* gj = ge + t[2 * b + k] * d;
      for (int64_t q = 0; q < d; ++q) {
        gu[q] += c * (ej[q] - ei[q]);
        gi[q] -= c * eu[q];
        gj[q] += c * eu[q];
      }
    }
    auto grad_e0 = MeanOfLayers(a, grad_e, layers, ctx->saved_data["work"].toTensor());
    float* g0 = grad_e0.data_ptr<float>();
    const float* e0v = e0.data_ptr<float>();
    const float r = float(double(g) * l2 / double(b));
    for (int64_t k = 0; k < 3 * b; ++k) {
      const float* w = e0v + t[k] * d;
      float* o = g0 + t[k] * d;
      for (int64_t q = 0; q < d; ++q) o[q] += r * w[q];
    }
    return {grad_e0,      at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(),
            at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

// Fit's loss on the batch of user nodes u, positive item nodes i and negative item nodes j (int64,
// on e0's device): fused on the CPU, LibTorch operations elsewhere.
at::Tensor BatchLoss(const Csr& a, const at::Tensor& e0, int layers, double l2, const at::Tensor& u,
                     const at::Tensor& i, const at::Tensor& j, const at::Tensor& work = {}) {
  if (e0.device().is_cpu()) {
    return FusedBatchLoss::apply(e0, a.coo, a.rowptr, a.col, a.val, work.defined() ? work : torch::empty({0}),
                                 torch::stack({u, i, j}).contiguous(), int64_t(layers), l2);
  }
  const auto e = Propagate(a, e0, layers, work);
  const auto eu = e.index_select(0, u), ei = e.index_select(0, i), ej = e.index_select(0, j);
  const auto bpr = torch::softplus((eu * ej).sum(1) - (eu * ei).sum(1)).mean();
  const auto reg = (e0.index_select(0, u).pow(2).sum() + e0.index_select(0, i).pow(2).sum() +
                    e0.index_select(0, j).pow(2).sum()) /
                   (2.0 * static_cast<double>(u.size(0)));
  return bpr + l2 * reg;
}

// Throws std::invalid_argument unless `indices` address interactions of `data` with in-range users and items.
void CheckIndices(const EvalData& data, const std::vector<uint32_t>& indices, const char* what) {
  for (uint32_t index : indices) {
    if (index >= data.interactions.size()) {
      throw std::invalid_argument(std::string("LightGCN: ") + what + " index " + std::to_string(index) + " >= " +
                                  std::to_string(data.interactions.size()) + " interactions");
    }
    const Interaction& x = data.interactions[index];
    if (x.user >= data.num_users || x.item >= data.num_items) {
      throw std::invalid_argument(std::string("LightGCN: ") + what + " interaction " + std::to_string(index) +
                                  " names user " + std::to_string(x.user) + " / item " + std::to_string(x.item) +
                                  " out of range");
    }
  }
}

// scores[i] = <user, item i> for every item, item embeddings stored transposed ([dim, num_items]),
// so that the loop runs along items (vectorised) while each score is still summed in dim order.
MOSAIC_LIGHTGCN_SIMD
void Scores(const float* user, const float* items_t, int64_t dim, uint32_t num_items, std::vector<float>* scores) {
  scores->assign(num_items, 0.0f);
  float* __restrict s = scores->data();
  for (int64_t d = 0; d < dim; ++d) {
    const float w = user[d];
    const float* __restrict row = items_t + d * int64_t(num_items);
    for (uint32_t i = 0; i < num_items; ++i) s[i] += w * row[i];
  }
}

class LightGcn : public Baseline {
 public:
  explicit LightGcn(LightGcnOptions options) : options_(std::move(options)) {
    const auto& o = options_;
    if (o.dim <= 0) throw std::invalid_argument("LightGCN: dim must be > 0");
    if (o.layers < 0) throw std::invalid_argument("LightGCN: layers must be >= 0");
    if (!(o.lr > 0)) throw std::invalid_argument("LightGCN: lr must be > 0");
    if (!(o.l2 >= 0)) throw std::invalid_argument("LightGCN: l2 must be >= 0");
    if (o.batch <= 0) throw std::invalid_argument("LightGCN: batch must be > 0");
    if (o.max_epochs <= 0) throw std::invalid_argument("LightGCN: max_epochs must be > 0");
    if (o.eval_every <= 0) throw std::invalid_argument("LightGCN: eval_every must be > 0");
    if (o.patience <= 0) throw std::invalid_argument("LightGCN: patience must be > 0");
    ResolveDevice(o.device);  // throws for an unknown device or cuda without one
  }

  std::string name() const override { return "LightGCN"; }

  void Fit(const EvalData& data, const std::vector<uint32_t>& train, const std::vector<uint32_t>& valid) override {
    CheckIndices(data, train, "train");
    CheckIndices(data, valid, "valid");
    fitted_ = false;
    tuning_ = Tuning{};
    const uint32_t num_users = data.num_users, num_items = data.num_items;
    const int64_t users = num_users, items = num_items, dim = options_.dim;

    // The binary training matrix as sorted rows, and its pairs in (user, item) order.
    std::vector<std::vector<uint32_t>> rows(num_users);
    for (uint32_t index : train) rows[data.interactions[index].user].push_back(data.interactions[index].item);
    std::vector<std::pair<uint32_t, uint32_t>> pairs;
    for (uint32_t u = 0; u < num_users; ++u) {
      std::sort(rows[u].begin(), rows[u].end());
      rows[u].erase(std::unique(rows[u].begin(), rows[u].end()), rows[u].end());
      for (uint32_t i : rows[u]) pairs.emplace_back(u, i);
    }

    const torch::Device device(ResolveDevice(options_.device));
    Csr a = ToCsr(NormalisedAdjacency(num_users, num_items, pairs));
    a.coo = a.coo.to(device);
    const at::Tensor work =
        device.is_cpu() && options_.layers >= 2 ? torch::empty({2, users + items, dim}) : at::Tensor();

    at::Tensor e0 = torch::empty({users + items, dim}, torch::kFloat);
    {
      torch::NoGradGuard no_grad;
      auto generator = at::detail::createCPUGenerator(options_.seed);
      e0.normal_(0.0, kInitStd, generator);
    }
    e0 = e0.to(device).requires_grad_(true);
    LightGcnAdam adam(e0, options_.lr);

    // Validation: the warm protocol's ranking (every item not in the user's training set).
    std::vector<std::vector<uint32_t>> relevant(num_users);
    for (uint32_t index : valid) relevant[data.interactions[index].user].push_back(data.interactions[index].item);
    const bool validate = !valid.empty();
    const int epochs = validate ? options_.max_epochs : std::min(kEpochsWithoutValid, options_.max_epochs);

    const bool verbose = std::getenv("MOSAIC_TRAIN_LOG") != nullptr;
    double best_recall = -1;
    int since_best = 0, epochs_timed = 0;
    double loss_sum = 0, seconds = 0;
    int64_t steps = 0;
    for (int epoch = 1; epoch <= epochs; ++epoch) {
      const auto start = std::chrono::steady_clock::now();
      // One triple per training pair in a random order; the negative is uniform over the items not
      // in the user's training set (users who have every item yield none).
      SplitMix64 rng(StreamSeed(options_.seed, kStreamEpoch, uint64_t(epoch)));
      std::vector<uint32_t> order(pairs.size());
      std::iota(order.begin(), order.end(), 0u);
      Shuffle(order.begin(), order.end(), rng);
      std::vector<int64_t> u_idx, i_idx, j_idx;
      u_idx.reserve(order.size()), i_idx.reserve(order.size()), j_idx.reserve(order.size());
      for (uint32_t k : order) {
        const auto [u, i] = pairs[k];
        const auto& row = rows[u];
        if (row.size() >= num_items) continue;
        uint32_t j;
        do j = uint32_t(rng.Below(num_items));
        while (std::binary_search(row.begin(), row.end(), j));
        u_idx.push_back(u), i_idx.push_back(users + i), j_idx.push_back(users + j);
      }
      const auto n = static_cast<int64_t>(u_idx.size());
      const auto u_all = torch::tensor(u_idx, torch::kLong).to(device);
      const auto i_all = torch::tensor(i_idx, torch::kLong).to(device);
      const auto j_all = torch::tensor(j_idx, torch::kLong).to(device);
      for (int64_t b = 0; b < n; b += options_.batch) {
        const int64_t size = std::min<int64_t>(options_.batch, n - b);
        const auto ub = u_all.narrow(0, b, size), ib = i_all.narrow(0, b, size), jb = j_all.narrow(0, b, size);
        const auto loss = BatchLoss(a, e0, options_.layers, options_.l2, ub, ib, jb, work);
        e0.mutable_grad() = at::Tensor();  // so that backward hands over its gradient without a copy
        loss.backward();
        adam.Step(e0.detach(), e0.grad());
        loss_sum += loss.item<double>();
        ++steps;
      }
      seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      ++epochs_timed;

      const bool last = epoch == epochs;
      if (validate && epoch % options_.eval_every != 0 && !last) continue;
      if (!validate && !last) continue;
      Keep(a, e0, work, num_users, num_items);  // the candidate embeddings, into users_ / items_t_
      if (!validate) {
        best_users_.swap(users_), best_items_t_.swap(items_t_);
        tuning_.grid.push_back({"epoch=" + std::to_string(epoch), 0, 0});
        break;
      }
      const RankingMetrics r = Validate(rows, relevant);
      tuning_.grid.push_back({"epoch=" + std::to_string(epoch), r.recall20, r.ndcg20});
      if (verbose) {
        std::fprintf(stderr, "[LightGCN] epoch %d loss %.4f %.3fs/epoch valid R@20 %.4f N@20 %.4f\n", epoch,
                     steps ? loss_sum / double(steps) : 0.0, seconds / epochs_timed, r.recall20, r.ndcg20);
      }
      loss_sum = 0, steps = 0;
      if (r.recall20 > best_recall) {
        best_recall = r.recall20;
        tuning_.chosen = tuning_.grid.size() - 1;
        best_users_.swap(users_), best_items_t_.swap(items_t_);
        since_best = 0;
      } else if (++since_best >= options_.patience) {
        break;
      }
    }
    users_.swap(best_users_), items_t_.swap(best_items_t_);
    best_users_ = {}, best_items_t_ = {};
    num_users_ = num_users, num_items_ = num_items;
    fitted_ = true;
  }

  void ScoreUser(uint32_t user, std::vector<float>* scores) const override {
    if (!fitted_) throw std::logic_error("LightGCN: ScoreUser before Fit");
    if (user >= num_users_) throw std::invalid_argument("LightGCN: user " + std::to_string(user) + " out of range");
    Scores(users_.data() + size_t(user) * size_t(options_.dim), items_t_.data(), options_.dim, num_items_, scores);
  }

  const Tuning* tuning() const override { return fitted_ ? &tuning_ : nullptr; }

 private:
  // The final embeddings of e0 as plain floats: users_ [num_users, dim], items_t_ [dim, num_items].
  void Keep(const Csr& a, const at::Tensor& e0, const at::Tensor& work, uint32_t num_users, uint32_t num_items) {
    torch::NoGradGuard no_grad;
    const auto e = Propagate(a, e0.detach(), options_.layers, work).to(torch::kCPU);
    const auto u = e.narrow(0, 0, num_users).contiguous();
    const auto it = e.narrow(0, num_users, num_items).t().contiguous();
    users_.assign(u.data_ptr<float>(), u.data_ptr<float>() + u.numel());
    items_t_.assign(it.data_ptr<float>(), it.data_ptr<float>() + it.numel());
  }

  // Recall@20 / NDCG@20 of users_ / items_t_ on the validation items, scored as ScoreUser scores.
  RankingMetrics Validate(const std::vector<std::vector<uint32_t>>& rows,
                          const std::vector<std::vector<uint32_t>>& relevant) const {
    const auto num_items = static_cast<uint32_t>(items_t_.size() / size_t(options_.dim));
    RankingEvaluator evaluator;
    std::vector<float> scores;
    std::vector<uint32_t> candidates;
    for (uint32_t u = 0; u < rows.size(); ++u) {
      if (relevant[u].empty()) continue;
      Scores(users_.data() + size_t(u) * size_t(options_.dim), items_t_.data(), options_.dim, num_items, &scores);
      candidates.clear();
      auto seen = rows[u].begin();
      for (uint32_t i = 0; i < num_items; ++i) {
        if (seen != rows[u].end() && *seen == i) {
          ++seen;
          continue;
        }
        candidates.push_back(i);
      }
      evaluator.AddUser(scores, candidates, relevant[u]);
    }
    return evaluator.Result();
  }

  LightGcnOptions options_;
  std::vector<float> users_;         ///< final user embeddings [num_users, dim] (the kept epoch's after Fit)
  std::vector<float> items_t_;       ///< final item embeddings, transposed [dim, num_items]
  std::vector<float> best_users_;    ///< during Fit: the best check's users_
  std::vector<float> best_items_t_;  ///< during Fit: the best check's items_t_
  uint32_t num_users_ = 0, num_items_ = 0;
  Tuning tuning_;
  bool fitted_ = false;
};

}  // namespace

at::Tensor NormalisedAdjacency(uint32_t num_users, uint32_t num_items,
                               const std::vector<std::pair<uint32_t, uint32_t>>& user_items) {
  std::vector<std::pair<uint32_t, uint32_t>> edges = user_items;
  for (const auto& [u, i] : edges) {
    if (u >= num_users || i >= num_items) {
      throw std::invalid_argument("NormalisedAdjacency: pair (" + std::to_string(u) + ", " + std::to_string(i) +
                                  ") out of range for " + std::to_string(num_users) + " users, " +
                                  std::to_string(num_items) + " items");
    }
  }
  std::sort(edges.begin(), edges.end());
  edges.erase(std::unique(edges.begin(), edges.end()), edges.end());
  std::vector<double> user_degree(num_users, 0), item_degree(num_items, 0);
  for (const auto& [u, i] : edges) ++user_degree[u], ++item_degree[i];
  const auto m = static_cast<int64_t>(edges.size());
  auto indices = torch::empty({2, 2 * m}, torch::kLong);
  auto values = torch::empty({2 * m}, torch::kFloat);
  int64_t* head = indices.data_ptr<int64_t>();
  int64_t* tail = head + 2 * m;
  float* v = values.data_ptr<float>();
  for (int64_t k = 0; k < m; ++k) {
    const auto [u, i] = edges[size_t(k)];
    const float w = float(1.0 / std::sqrt(user_degree[u] * item_degree[i]));
    head[2 * k] = u, tail[2 * k] = int64_t(num_users) + i, v[2 * k] = w;
    head[2 * k + 1] = int64_t(num_users) + i, tail[2 * k + 1] = u, v[2 * k + 1] = w;
  }
  const int64_t n = int64_t(num_users) + int64_t(num_items);
  return torch::sparse_coo_tensor(indices, values, {n, n}).coalesce();
}

at::Tensor LightGcnPropagate(const at::Tensor& adjacency, const at::Tensor& embeddings, int layers) {
  if (layers < 0) throw std::invalid_argument("LightGcnPropagate: layers must be >= 0");
  Csr a = ToCsr(adjacency);
  if (embeddings.dim() != 2 || embeddings.size(0) != adjacency.size(0) || embeddings.scalar_type() != torch::kFloat)
    throw std::invalid_argument("LightGcnPropagate: embeddings must be float32 [nodes, dim]");
  a.coo = a.coo.to(embeddings.device());
  return Propagate(a, embeddings, layers);
}

at::Tensor LightGcnBatchLoss(const at::Tensor& adjacency, const at::Tensor& embeddings, int layers, double l2,
                             const at::Tensor& users, const at::Tensor& positives, const at::Tensor& negatives) {
  if (layers < 0) throw std::invalid_argument("LightGcnBatchLoss: layers must be >= 0");
  Csr a = ToCsr(adjacency);
  if (embeddings.dim() != 2 || embeddings.size(0) != adjacency.size(0) || embeddings.scalar_type() != torch::kFloat)
    throw std::invalid_argument("LightGcnBatchLoss: embeddings must be float32 [nodes, dim]");
  const int64_t n = adjacency.size(0);
  for (const at::Tensor* t : {&users, &positives, &negatives}) {
    if (t->dim() != 1 || t->scalar_type() != torch::kLong || t->size(0) != users.size(0) || t->size(0) == 0 ||
        t->min().item<int64_t>() < 0 || t->max().item<int64_t>() >= n)
      throw std::invalid_argument(
          "LightGcnBatchLoss: users, positives and negatives must be int64 node indices of one non-zero length");
  }
  a.coo = a.coo.to(embeddings.device());
  const auto dev = embeddings.device();
  return BatchLoss(a, embeddings, layers, l2, users.to(dev), positives.to(dev), negatives.to(dev));
}

LightGcnAdam::LightGcnAdam(const at::Tensor& param, double lr)
    : m_(torch::zeros_like(param, at::MemoryFormat::Contiguous)),
      v_(torch::zeros_like(param, at::MemoryFormat::Contiguous)),
      lr_(lr) {}

void LightGcnAdam::Step(const at::Tensor& param, const at::Tensor& grad) {
  constexpr double kBeta1 = 0.9, kBeta2 = 0.999, kEps = 1e-8;
  if (!grad.defined() || grad.sizes() != param.sizes() || grad.device() != param.device())
    throw std::invalid_argument("LightGcnAdam: the gradient must have the parameter's shape and device");
  ++steps_;
  const double correction1 = 1 - std::pow(kBeta1, double(steps_)), correction2 = 1 - std::pow(kBeta2, double(steps_));
  torch::NoGradGuard no_grad;
  if (param.device().is_cpu()) {
    if (!param.is_contiguous() || !grad.is_contiguous() || param.scalar_type() != torch::kFloat ||
        grad.scalar_type() != torch::kFloat)
      throw std::invalid_argument("LightGcnAdam: CPU tensors must be contiguous float32");
    AdamRows(param.data_ptr<float>(), grad.data_ptr<float>(), m_.data_ptr<float>(), v_.data_ptr<float>(),
             param.numel(), float(kBeta1), float(kBeta2), float(lr_ / correction1), float(std::sqrt(correction2)),
             float(kEps));
    return;
  }
  m_.mul_(kBeta1).add_(grad, 1 - kBeta1);
  v_.mul_(kBeta2).addcmul_(grad, grad, 1 - kBeta2);
  param.addcdiv_(m_, (v_.sqrt() / std::sqrt(correction2)).add_(kEps), -lr_ / correction1);
}

std::unique_ptr<Baseline> MakeLightGcn(const LightGcnOptions& options) { return std::make_unique<LightGcn>(options); }

}  // namespace mosaic::fusion
