#include "fusion/content_regression.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>

#include <sys/mman.h>

#include "fusion/content_regression_internal.h"
#include "fusion/metrics.h"
#include "fusion/random.h"

// LAPACK's Fortran interface, declared as fusion/baselines.cc declares EASE's (no LAPACKE).
// Column-major; the matrices passed here are symmetric, so row-major arrays pass as they are.
extern "C" {
void dpotrf_(const char* uplo, const int* n, double* a, const int* lda, int* info);
void dpotrs_(const char* uplo, const int* n, const int* nrhs, const double* a, const int* lda, double* b,
             const int* ldb, int* info);
void dsyevr_(const char* jobz, const char* range, const char* uplo, const int* n, double* a, const int* lda,
             const double* vl, const double* vu, const int* il, const int* iu, const double* abstol, int* m,
             double* w, double* z, const int* ldz, int* isuppz, double* work, const int* lwork, int* iwork,
             const int* liwork, int* info);
}

namespace mosaic::fusion {
namespace content_internal {


std::string FormatNumber(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", v);
  return text;
}

std::string PartsName(ContentParts parts) {
  switch (parts) {
    case ContentParts::kAll: return "all";
    case ContentParts::kText: return "text";
    case ContentParts::kKg: return "KG";
  }
  throw std::invalid_argument("content ridge: unknown ContentParts " + std::to_string(int(parts)));
}

// LAPACK takes int sizes and indexes n x n arrays with them.
int LapackSize(size_t n) {
  if (n > 0 && n > size_t(INT_MAX) / n) throw std::runtime_error("content ridge: matrix too large for LAPACK");
  return int(n);
}


void AdviseHugePages(const void* data, size_t bytes) {
#ifdef MADV_HUGEPAGE
  constexpr uintptr_t kHuge = uintptr_t(2) << 20;
  const uintptr_t begin = (reinterpret_cast<uintptr_t>(data) + kHuge - 1) & ~(kHuge - 1);
  const uintptr_t end = (reinterpret_cast<uintptr_t>(data) + bytes) & ~(kHuge - 1);
  if (data != nullptr && end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
#else
  (void)data;
  (void)bytes;
#endif
}

double Dot(const double* a, const double* b, size_t n) {
  double p0 = 0, p1 = 0, p2 = 0, p3 = 0;
  size_t k = 0;
  for (; k + 4 <= n; k += 4) {
    p0 += a[k] * b[k];
    p1 += a[k + 1] * b[k + 1];
    p2 += a[k + 2] * b[k + 2];
    p3 += a[k + 3] * b[k + 3];
  }
  double sum = (p0 + p1) + (p2 + p3);
  for (; k < n; ++k) sum += a[k] * b[k];
  return sum;
}

// ---------------------------------------------------------------------------------------------
// Training interactions.


void CheckTrain(const EvalData& data, const std::vector<uint32_t>& train) {
  for (uint32_t index : train) {
    if (index >= data.interactions.size()) {
      throw std::invalid_argument("content ridge: train index " + std::to_string(index) + " >= " +
                                  std::to_string(data.interactions.size()) + " interactions");
    }
    const Interaction& x = data.interactions[index];
    if (x.user >= data.num_users || x.item >= data.num_items) {
      throw std::invalid_argument("content ridge: train interaction " + std::to_string(index) + " names user " +
                                  std::to_string(x.user) + " / item " + std::to_string(x.item) + " out of range");
    }
  }
}

Interactions BuildInteractions(const EvalData& data, const std::vector<uint32_t>& train,
                               const std::vector<uint8_t>& drop) {
  Interactions x;
  x.items_of.assign(data.num_users, {});
  x.users_of.assign(data.num_items, {});
  for (uint32_t index : train) {
    const Interaction& e = data.interactions[index];
    if (!drop.empty() && drop[e.item]) continue;
    x.items_of[e.user].push_back(e.item);
  }
  for (uint32_t u = 0; u < data.num_users; ++u) {
    auto& row = x.items_of[u];
    std::sort(row.begin(), row.end());
    row.erase(std::unique(row.begin(), row.end()), row.end());
    for (uint32_t i : row) x.users_of[i].push_back(u);  // users ascending: u grows
  }
  return x;
}

// ---------------------------------------------------------------------------------------------
// The truncated SVD.

CfFactors Svd(const Interactions& x, uint32_t num_users, uint32_t num_items, uint32_t rank) {
  CfFactors f;
  f.rank = rank;
  f.users.assign(size_t(num_users) * rank, 0.0);
  f.items.assign(size_t(num_items) * rank, 0.0);
  // Dense indices of the users and items with training interactions.
  std::vector<uint32_t> active_users, active_items;
  std::vector<int64_t> user_slot(num_users, -1), item_slot(num_items, -1);
  for (uint32_t u = 0; u < num_users; ++u) {
    if (!x.items_of[u].empty()) {
      user_slot[u] = int64_t(active_users.size());
      active_users.push_back(u);
    }
  }
  for (uint32_t i = 0; i < num_items; ++i) {
    if (!x.users_of[i].empty()) {
      item_slot[i] = int64_t(active_items.size());
      active_items.push_back(i);
    }
  }
  const bool users_side = active_users.size() <= active_items.size();
  const size_t side = users_side ? active_users.size() : active_items.size();
  const size_t k = std::min<size_t>(rank, side);
  if (k == 0) return f;

  // C = X X^T (users side) or X^T X (items side): integer counts, exact in double.
  const int n = LapackSize(side);
  std::vector<double> c(side * side, 0.0);
  if (users_side) {
    for (uint32_t i : active_items) {
      const auto& us = x.users_of[i];
      for (uint32_t a : us) {
        double* row = &c[size_t(user_slot[a]) * side];
        for (uint32_t b : us) row[user_slot[b]] += 1.0;
      }
    }
  } else {
    for (uint32_t u : active_users) {
      const auto& is = x.items_of[u];
      for (uint32_t a : is) {
        double* row = &c[size_t(item_slot[a]) * side];
        for (uint32_t b : is) row[item_slot[b]] += 1.0;
      }
    }
  }

  // The top k eigenpairs (dsyevr returns them in ascending order of eigenvalue).
  const char jobz = 'V', range = 'I', uplo = 'L';
  const int il = n - int(k) + 1, iu = n;
  const double vl = 0, vu = 0, abstol = 0;
  int found = 0, info = 0;
  std::vector<double> w(side), z(side * k);
  std::vector<int> isuppz(2 * k);
  int lwork = -1, liwork = -1, iwork_query = 0;
  double work_query = 0;
  dsyevr_(&jobz, &range, &uplo, &n, c.data(), &n, &vl, &vu, &il, &iu, &abstol, &found, w.data(), z.data(), &n,
          isuppz.data(), &work_query, &lwork, &iwork_query, &liwork, &info);
  if (info != 0) throw std::runtime_error("content ridge: dsyevr workspace query failed, info " + std::to_string(info));
  lwork = int(work_query);
  liwork = iwork_query;
  std::vector<double> work(size_t(std::max(lwork, 1)));
  std::vector<int> iwork(size_t(std::max(liwork, 1)));
  dsyevr_(&jobz, &range, &uplo, &n, c.data(), &n, &vl, &vu, &il, &iu, &abstol, &found, w.data(), z.data(), &n,
          isuppz.data(), work.data(), &lwork, iwork.data(), &liwork, &info);
  if (info != 0 || found != int(k)) {
    throw std::runtime_error("content ridge: dsyevr failed, info " + std::to_string(info) + ", " +
                             std::to_string(found) + " of " + std::to_string(k) + " eigenpairs");
  }

  const double top = w[k - 1];
  for (size_t col = 0; col < k; ++col) {
    const size_t e = k - 1 - col;  // descending
    const double lambda = w[e];
    if (!(lambda > 1e-10 * top)) continue;  // beyond the matrix's rank: a zero column
    const double sigma = std::sqrt(lambda);
    const double* v = &z[e * side];
    if (users_side) {
      for (size_t a = 0; a < side; ++a) f.users[size_t(active_users[a]) * rank + col] = sigma * v[a];
      for (uint32_t i : active_items) {
        double sum = 0.0;
        for (uint32_t u : x.users_of[i]) sum += v[user_slot[u]];
        f.items[size_t(i) * rank + col] = sum / sigma;
      }
    } else {
      for (size_t b = 0; b < side; ++b) f.items[size_t(active_items[b]) * rank + col] = v[b];
      for (uint32_t u : active_users) {
        double sum = 0.0;
        for (uint32_t i : x.items_of[u]) sum += v[item_slot[i]];
        f.users[size_t(u) * rank + col] = sum;
      }
    }
    // Sign: the largest-magnitude user entry (first on a tie) positive.
    double biggest = 0.0;
    for (uint32_t u : active_users) {
      const double p = f.users[size_t(u) * rank + col];
      if (std::fabs(p) > std::fabs(biggest)) biggest = p;
    }
    if (biggest < 0) {
      for (uint32_t u : active_users) f.users[size_t(u) * rank + col] *= -1.0;
      for (uint32_t i : active_items) f.items[size_t(i) * rank + col] *= -1.0;
    }
  }
  return f;
}

// ---------------------------------------------------------------------------------------------
// Content features.


// The KG's one-hot features, each item's row L2-normalised: every feature of item i has value[i].
struct KgFeatures : KgOneHots {
  std::vector<double> value;  ///< per item: 1 / sqrt(its feature count), 0 without features
};

// The parts a model regresses from, with their kernel weights.
struct Content {
  std::vector<DenseFeatures> modal;  ///< the allowed modalities, in name order; weight w_modal each
  KgFeatures kg;                     ///< empty (num_features 0) when the KG is not allowed
  std::vector<uint8_t> has_any;      ///< per item: a feature in some allowed part
};

struct Weights {
  double modal = 0, kg = 0;
};

Weights PartWeights(ContentParts parts, double w_text) {
  switch (parts) {
    case ContentParts::kAll: return {w_text, 1.0 - w_text};
    case ContentParts::kText: return {1.0, 0.0};
    case ContentParts::kKg: return {0.0, 1.0};
  }
  throw std::invalid_argument("content ridge: unknown ContentParts");
}

void CheckContent(const EvalData& data) {
  for (const auto& [name, m] : data.modalities) {
    if (m.dim < 0 || m.present.size() != data.num_items ||
        m.values.size() != size_t(data.num_items) * size_t(m.dim)) {
      throw std::invalid_argument("content ridge: modality '" + name + "' has " + std::to_string(m.present.size()) +
                                  " presence flags and " + std::to_string(m.values.size()) + " values for " +
                                  std::to_string(data.num_items) + " items of width " + std::to_string(m.dim));
    }
    for (uint32_t i = 0; i < data.num_items; ++i) {
      if (!m.present[i]) continue;
      const float* row = m.Row(i);
      for (int64_t d = 0; d < m.dim; ++d) {
        if (!std::isfinite(row[d])) {
          throw std::invalid_argument("content ridge: modality '" + name + "' item " + std::to_string(i) +
                                      " holds a non-finite value");
        }
      }
    }
  }
  const uint64_t nodes = uint64_t(data.num_items) + data.num_entities;
  for (const auto& t : data.kg_triples) {
    if (t.head >= nodes || t.tail >= nodes || t.relation >= data.num_kg_relations) {
      throw std::invalid_argument("content ridge: KG triple (" + std::to_string(t.head) + ", " +
                                  std::to_string(t.relation) + ", " + std::to_string(t.tail) + ") out of range (" +
                                  std::to_string(nodes) + " nodes, " + std::to_string(data.num_kg_relations) +
                                  " relations)");
    }
  }
}

DenseFeatures BuildDense(const ModalityMatrix& m, uint32_t num_items) {
  DenseFeatures f;
  f.dim = size_t(m.dim);
  f.rows.assign(size_t(num_items) * f.dim, 0.0);
  f.has.assign(num_items, 0);
  for (uint32_t i = 0; i < num_items; ++i) {
    if (!m.present[i]) continue;
    const float* in = m.Row(i);
    double* out = &f.rows[size_t(i) * f.dim];
    double norm2 = 0.0;
    for (size_t d = 0; d < f.dim; ++d) {
      out[d] = double(in[d]);
      norm2 += out[d] * out[d];
    }
    if (!(norm2 > 0)) continue;
    const double inv = 1.0 / std::sqrt(norm2);
    for (size_t d = 0; d < f.dim; ++d) out[d] *= inv;
    f.has[i] = 1;
  }
  return f;
}

KgOneHots BuildKgOneHots(const EvalData& data) {
  KgOneHots f;
  const uint64_t nodes = uint64_t(data.num_items) + data.num_entities;
  // (item, key), key = (relation * nodes + neighbour) * 2 + direction (0 forward, 1 backward).
  std::vector<std::pair<uint32_t, uint64_t>> pairs;
  for (const auto& t : data.kg_triples) {
    if (t.head < data.num_items) pairs.emplace_back(t.head, (uint64_t(t.relation) * nodes + t.tail) * 2);
    if (t.tail < data.num_items) pairs.emplace_back(t.tail, (uint64_t(t.relation) * nodes + t.head) * 2 + 1);
  }
  std::sort(pairs.begin(), pairs.end());
  pairs.erase(std::unique(pairs.begin(), pairs.end()), pairs.end());
  std::vector<uint64_t> keys;
  keys.reserve(pairs.size());
  for (const auto& p : pairs) keys.push_back(p.second);
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  f.num_features = keys.size();
  f.keys = keys;
  f.offsets.assign(size_t(data.num_items) + 1, 0);
  f.ids.reserve(pairs.size());
  for (const auto& p : pairs) {  // sorted by item, then key: ids ascend within an item
    ++f.offsets[p.first + 1];
    f.ids.push_back(uint32_t(std::lower_bound(keys.begin(), keys.end(), p.second) - keys.begin()));
  }
  for (uint32_t i = 0; i < data.num_items; ++i) f.offsets[i + 1] += f.offsets[i];
  return f;
}

KgFeatures BuildKg(const EvalData& data) {
  KgFeatures f;
  static_cast<KgOneHots&>(f) = BuildKgOneHots(data);
  f.value.assign(data.num_items, 0.0);
  for (uint32_t i = 0; i < data.num_items; ++i) {
    const size_t count = f.offsets[i + 1] - f.offsets[i];
    if (count > 0) f.value[i] = 1.0 / std::sqrt(double(count));
  }
  return f;
}

Content BuildContent(const EvalData& data, ContentParts parts) {
  Content c;
  for (const auto& [name, m] : data.modalities) {
    if (parts == ContentParts::kAll || (parts == ContentParts::kText && name == "text")) {
      c.modal.push_back(BuildDense(m, data.num_items));
    }
  }
  if (parts == ContentParts::kAll || parts == ContentParts::kKg) {
    c.kg = BuildKg(data);
  } else {
    c.kg.offsets.assign(size_t(data.num_items) + 1, 0);
    c.kg.value.assign(data.num_items, 0.0);
  }
  c.has_any.assign(data.num_items, 0);
  for (uint32_t i = 0; i < data.num_items; ++i) {
    bool any = c.kg.offsets[i + 1] > c.kg.offsets[i];
    for (const auto& m : c.modal) any = any || m.has[i];
    c.has_any[i] = any;
  }
  return c;
}

std::vector<uint32_t> RankGrid(const Interactions& x, size_t train_items) {
  size_t active_users = 0;
  for (const auto& row : x.items_of) active_users += !row.empty();
  const uint32_t cap = uint32_t(std::max<size_t>(1, std::min(active_users, train_items)) - 1);
  std::vector<uint32_t> ranks;
  for (uint32_t r : {16u, 32u, 64u, 128u}) {
    const uint32_t capped = std::max(1u, std::min(r, cap));
    if (ranks.empty() || ranks.back() != capped) ranks.push_back(capped);
  }
  return ranks;
}

PseudoCold HoldOut(const EvalData& data, const std::vector<uint32_t>& train, const Interactions& x,
                   const std::vector<uint32_t>& train_items, size_t hold, uint64_t seed, uint32_t max_rank,
                   size_t fold) {
  if ((fold + 1) * hold > train_items.size()) throw std::invalid_argument("HoldOut: fold beyond the items");
  PseudoCold pc;
  pc.held = train_items;
  SplitMix64 rng(StreamSeed(seed, kHoldOutStream, 0));
  PartialShuffle(pc.held.begin(), pc.held.end(), (fold + 1) * hold, rng);
  pc.held.erase(pc.held.begin(), pc.held.begin() + fold * hold);
  pc.held.resize(hold);
  std::sort(pc.held.begin(), pc.held.end());
  pc.is_held.assign(data.num_items, 0);
  for (uint32_t i : pc.held) pc.is_held[i] = 1;
  pc.rest = BuildInteractions(data, train, pc.is_held);
  pc.cf = Svd(pc.rest, data.num_users, data.num_items, max_rank);
  pc.relevant.assign(data.num_users, {});
  for (uint32_t u = 0; u < data.num_users; ++u) {
    for (uint32_t i : x.items_of[u]) {
      if (pc.is_held[i]) pc.relevant[u].push_back(i);
    }
  }
  return pc;
}

}  // namespace content_internal

namespace {
using namespace content_internal;

// ---------------------------------------------------------------------------------------------
// Kernels and the ridge.

// The per-part Gram matrices over a list of items (ascending), n x n row-major each: `modal` sums
// the modalities' inner products, `kg` the KG's. A part that is not allowed stays empty (zero).
struct Grams {
  std::vector<uint32_t> items;
  std::vector<double> modal, kg;
};

Grams BuildGrams(const Content& c, std::vector<uint32_t> items) {
  Grams g;
  g.items = std::move(items);
  const size_t n = g.items.size();
  if (!c.modal.empty()) {
    g.modal.assign(n * n, 0.0);
    ParallelRows(n, [&](size_t a) {
      const uint32_t ia = g.items[a];
      for (size_t b = 0; b <= a; ++b) {
        const uint32_t ib = g.items[b];
        double sum = 0.0;
        for (const auto& m : c.modal) {
          if (m.has[ia] && m.has[ib]) sum += Dot(&m.rows[size_t(ia) * m.dim], &m.rows[size_t(ib) * m.dim], m.dim);
        }
        g.modal[a * n + b] = sum;
      }
    });
    for (size_t a = 0; a < n; ++a) {
      for (size_t b = 0; b < a; ++b) g.modal[b * n + a] = g.modal[a * n + b];
    }
  }
  if (c.kg.num_features > 0) {
    // Shared-feature counts through the inverted index (exact integers), then the normalisation.
    std::vector<std::vector<uint32_t>> holders(c.kg.num_features);
    for (size_t a = 0; a < n; ++a) {
      const uint32_t i = g.items[a];
      for (size_t k = c.kg.offsets[i]; k < c.kg.offsets[i + 1]; ++k) holders[c.kg.ids[k]].push_back(uint32_t(a));
    }
    g.kg.assign(n * n, 0.0);
    for (const auto& list : holders) {
      for (uint32_t a : list) {
        double* row = &g.kg[size_t(a) * n];
        for (uint32_t b : list) row[b] += 1.0;
      }
    }
    for (size_t a = 0; a < n; ++a) {
      const double va = c.kg.value[g.items[a]];
      for (size_t b = 0; b < n; ++b) g.kg[a * n + b] *= va * c.kg.value[g.items[b]];
    }
  }
  return g;
}

// A = (K(S, S) + lambda I)^-1 Q(S) for S = the grams' items at `positions` (ascending), K the
// weighted sum of the grams; q holds each of S's items' `cols` target factors (row stride `stride`,
// indexed by item). Returns A, |S| x cols row-major.
std::vector<double> RidgeSolve(const Grams& g, const std::vector<size_t>& positions, Weights w, double lambda,
                               const std::vector<double>& q, size_t stride, size_t cols) {
  const size_t n = g.items.size(), s = positions.size();
  std::vector<double> a(s * cols, 0.0);
  if (s == 0 || cols == 0) return a;
  const int size = LapackSize(s);
  std::vector<double> m(s * s);
  for (size_t x = 0; x < s; ++x) {
    const size_t px = positions[x] * n;
    for (size_t y = 0; y < s; ++y) {
      double v = 0.0;
      if (!g.modal.empty()) v += w.modal * g.modal[px + positions[y]];
      if (!g.kg.empty()) v += w.kg * g.kg[px + positions[y]];
      m[x * s + y] = v;
    }
    m[x * s + x] += lambda;
  }
  // Right-hand sides column-major (s x cols), as dpotrs wants them.
  std::vector<double> b(s * cols);
  for (size_t x = 0; x < s; ++x) {
    const double* row = &q[size_t(g.items[positions[x]]) * stride];
    for (size_t k = 0; k < cols; ++k) b[k * s + x] = row[k];
  }
  const char uplo = 'L';
  const int nrhs = int(cols);
  int info = 0;
  dpotrf_(&uplo, &size, m.data(), &size, &info);
  if (info != 0) throw std::runtime_error("content ridge: dpotrf failed, info " + std::to_string(info));
  dpotrs_(&uplo, &size, &nrhs, m.data(), &size, b.data(), &size, &info);
  if (info != 0) throw std::runtime_error("content ridge: dpotrs failed, info " + std::to_string(info));
  for (size_t x = 0; x < s; ++x) {
    for (size_t k = 0; k < cols; ++k) a[x * cols + k] = b[k * s + x];
  }
  return a;
}

// Qhat(t) = K(t, S) A for each target item t, through the features: K(t, S) A = sum over parts of
// w_p f_p(t)^T (F_p(S)^T A). `support` are S's items (A's rows); returns |targets| x cols.
std::vector<double> Predict(const Content& c, Weights w, const std::vector<uint32_t>& support,
                            const std::vector<double>& a, size_t cols, const std::vector<uint32_t>& targets) {
  std::vector<double> out(targets.size() * cols, 0.0);
  if (support.empty() || cols == 0) return out;
  std::vector<double> z;
  for (const auto& m : c.modal) {
    // Z = F_m(S)^T A, dim x cols.
    z.assign(m.dim * cols, 0.0);
    for (size_t x = 0; x < support.size(); ++x) {
      const uint32_t i = support[x];
      if (!m.has[i]) continue;
      const double* f = &m.rows[size_t(i) * m.dim];
      const double* ax = &a[x * cols];
      for (size_t d = 0; d < m.dim; ++d) {
        double* zd = &z[d * cols];
        for (size_t k = 0; k < cols; ++k) zd[k] += f[d] * ax[k];
      }
    }
    ParallelRows(targets.size(), [&](size_t t) {
      const uint32_t i = targets[t];
      if (!m.has[i]) return;
      const double* f = &m.rows[size_t(i) * m.dim];
      double* o = &out[t * cols];
      for (size_t d = 0; d < m.dim; ++d) {
        const double fd = w.modal * f[d];
        const double* zd = &z[d * cols];
        for (size_t k = 0; k < cols; ++k) o[k] += fd * zd[k];
      }
    });
  }
  if (c.kg.num_features > 0 && w.kg != 0) {
    z.assign(c.kg.num_features * cols, 0.0);
    for (size_t x = 0; x < support.size(); ++x) {
      const uint32_t i = support[x];
      const double v = c.kg.value[i];
      const double* ax = &a[x * cols];
      for (size_t k2 = c.kg.offsets[i]; k2 < c.kg.offsets[i + 1]; ++k2) {
        double* zf = &z[size_t(c.kg.ids[k2]) * cols];
        for (size_t k = 0; k < cols; ++k) zf[k] += v * ax[k];
      }
    }
    for (size_t t = 0; t < targets.size(); ++t) {
      const uint32_t i = targets[t];
      const double v = w.kg * c.kg.value[i];
      double* o = &out[t * cols];
      for (size_t k2 = c.kg.offsets[i]; k2 < c.kg.offsets[i + 1]; ++k2) {
        const double* zf = &z[size_t(c.kg.ids[k2]) * cols];
        for (size_t k = 0; k < cols; ++k) o[k] += v * zf[k];
      }
    }
  }
  return out;
}

// Everything a fit needs that does not depend on the hyper-parameters: the training matrix, the
// content, the training items and the Grams over the regression's support (the training items
// with content).
struct Prepared {
  Interactions x;
  Content content;
  std::vector<uint32_t> train_items;  ///< items with a training interaction, ascending
  Grams grams;                        ///< over the train items with content
};

Prepared Prepare(const EvalData& data, const std::vector<uint32_t>& train, ContentParts parts) {
  CheckTrain(data, train);
  CheckContent(data);
  Prepared p;
  p.x = BuildInteractions(data, train, {});
  p.content = BuildContent(data, parts);
  std::vector<uint32_t> support;
  for (uint32_t i = 0; i < data.num_items; ++i) {
    if (p.x.users_of[i].empty()) continue;
    p.train_items.push_back(i);
    if (p.content.has_any[i]) support.push_back(i);
  }
  p.grams = BuildGrams(p.content, std::move(support));
  return p;
}

void CheckParams(ContentParts parts, uint32_t rank, double lambda, double w_text) {
  PartsName(parts);
  if (rank == 0) throw std::invalid_argument("content ridge: rank must be > 0");
  if (!(lambda > 0) || !std::isfinite(lambda)) throw std::invalid_argument("content ridge: lambda must be > 0");
  if (!(w_text >= 0 && w_text <= 1)) throw std::invalid_argument("content ridge: w_text must be in [0, 1]");
}

// The SVD of the whole training matrix and the ridge over the whole support.
ContentRidgeFactors FitPrepared(const Prepared& p, uint32_t num_users, uint32_t num_items, ContentParts parts,
                                uint32_t rank, double lambda, double w_text) {
  ContentRidgeFactors f;
  f.cf = Svd(p.x, num_users, num_items, rank);
  std::vector<size_t> all(p.grams.items.size());
  for (size_t k = 0; k < all.size(); ++k) all[k] = k;
  const Weights w = PartWeights(parts, w_text);
  const std::vector<double> a = RidgeSolve(p.grams, all, w, lambda, f.cf.items, rank, rank);
  std::vector<uint32_t> every(num_items);
  for (uint32_t i = 0; i < num_items; ++i) every[i] = i;
  f.predicted = Predict(p.content, w, p.grams.items, a, rank, every);
  return f;
}

// Scores the pseudo-cold items of the validation with the first `rank` factor columns (others 0),
// so that RankUsers can measure one grid point.
class HeldOutScorer : public Baseline {
 public:
  HeldOutScorer(const CfFactors& cf, const std::vector<uint32_t>& held, const std::vector<double>& qhat,
                size_t cols, size_t rank, uint32_t num_items)
      : cf_(cf), held_(held), qhat_(qhat), cols_(cols), rank_(rank), num_items_(num_items) {}

  std::string name() const override { return "content ridge validation"; }
  void Fit(const EvalData&, const std::vector<uint32_t>&, const std::vector<uint32_t>&) override {
    throw std::logic_error("content ridge: the validation scorer is not fitted");
  }
  void ScoreUser(uint32_t user, std::vector<float>* scores) const override {
    scores->assign(num_items_, 0.0f);
    const double* p = &cf_.users[size_t(user) * cf_.rank];
    for (size_t h = 0; h < held_.size(); ++h) (*scores)[held_[h]] = float(Dot(p, &qhat_[h * cols_], rank_));
  }

 private:
  const CfFactors& cf_;
  const std::vector<uint32_t>& held_;
  const std::vector<double>& qhat_;
  size_t cols_, rank_;
  uint32_t num_items_;
};

// ---------------------------------------------------------------------------------------------

class ContentRidge : public Baseline {
 public:
  // Fixed hyper-parameters.
  ContentRidge(ContentParts parts, uint32_t rank, double lambda, double w_text)
      : parts_(parts), tune_(false), rank_(rank), lambda_(lambda), w_text_(w_text) {
    CheckParams(parts, rank, lambda, w_text);
  }
  // Tuned on a pseudo-cold validation.
  ContentRidge(ContentParts parts, uint64_t seed) : parts_(parts), tune_(true), seed_(seed) { PartsName(parts); }

  std::string name() const override { return "Content ridge (" + PartsName(parts_) + ")"; }

  void Fit(const EvalData& data, const std::vector<uint32_t>& train, const std::vector<uint32_t>&) override {
    fitted_ = false;
    tuning_ = Tuning{};
    const Prepared p = Prepare(data, train, parts_);
    num_users_ = data.num_users;
    num_items_ = data.num_items;
    if (tune_) Tune(data, train, p);
    ContentRidgeFactors f = FitPrepared(p, num_users_, num_items_, parts_, rank_, lambda_, w_text_);
    users_ = std::move(f.cf.users);
    qhat_ = std::move(f.predicted);
    fitted_ = true;
  }

  void ScoreUser(uint32_t user, std::vector<float>* scores) const override {
    if (!fitted_) throw std::logic_error(name() + ": ScoreUser before Fit");
    if (user >= num_users_) {
      throw std::invalid_argument(name() + ": user " + std::to_string(user) + " >= " + std::to_string(num_users_));
    }
    scores->resize(num_items_);
    const double* p = &users_[size_t(user) * rank_];
    for (uint32_t i = 0; i < num_items_; ++i) (*scores)[i] = float(Dot(p, &qhat_[size_t(i) * rank_], rank_));
  }

  const Tuning* tuning() const override { return tune_ && fitted_ ? &tuning_ : nullptr; }

 private:
  // Chooses rank_, lambda_ and w_text_ on pseudo-cold items held out of the training items.
  void Tune(const EvalData& data, const std::vector<uint32_t>& train, const Prepared& p) {
    const Interactions& x = p.x;
    const std::vector<uint32_t>& train_items = p.train_items;
    const Content& content = p.content;
    const Grams& grams = p.grams;
    const std::vector<uint32_t> ranks = RankGrid(x, train_items.size());
    const std::vector<double> lambdas = {0.1, 1.0, 10.0, 100.0, 1000.0};
    const std::vector<double> w_texts =
        parts_ == ContentParts::kAll ? std::vector<double>{0.25, 0.5, 0.75} : std::vector<double>{0.5};
    auto setting = [&](uint32_t r, double lambda, double w_text) {
      std::string s = "rank=" + std::to_string(r) + " lambda=" + FormatNumber(lambda);
      if (parts_ == ContentParts::kAll) s += " w_text=" + FormatNumber(w_text);
      return s;
    };

    const size_t m = train_items.size();
    const size_t hold = size_t(std::llround(0.2 * double(m)));
    if (hold == 0 || hold >= m) {  // too few items to hold any out: the first point, unmeasured
      rank_ = ranks.front();
      lambda_ = lambdas.front();
      w_text_ = w_texts.front();
      tuning_.grid.push_back({setting(rank_, lambda_, w_text_), 0, 0});
      tuning_.chosen = 0;
      return;
    }
    // The pseudo-train: the SVD once at the largest rank, truncated for the smaller ones.
    const uint32_t max_rank = ranks.back();
    const PseudoCold pc = HoldOut(data, train, x, train_items, hold, seed_, max_rank);
    const std::vector<uint32_t>& held = pc.held;
    const std::vector<uint8_t>& is_held = pc.is_held;
    const CfFactors& cf = pc.cf;
    const std::vector<std::vector<uint32_t>>& relevant = pc.relevant;
    std::vector<size_t> positions;  // the support without the held-out items
    std::vector<uint32_t> support;
    for (size_t k = 0; k < grams.items.size(); ++k) {
      if (is_held[grams.items[k]]) continue;
      positions.push_back(k);
      support.push_back(grams.items[k]);
    }

    // results[((r * lambdas) + l) * w_texts + t], factored once per (weights, lambda).
    std::vector<RankingMetrics> results(ranks.size() * lambdas.size() * w_texts.size());
    for (size_t t = 0; t < w_texts.size(); ++t) {
      const Weights w = PartWeights(parts_, w_texts[t]);
      for (size_t l = 0; l < lambdas.size(); ++l) {
        const std::vector<double> a = RidgeSolve(grams, positions, w, lambdas[l], cf.items, max_rank, max_rank);
        const std::vector<double> qhat = Predict(content, w, support, a, max_rank, held);
        for (size_t r = 0; r < ranks.size(); ++r) {
          const HeldOutScorer scorer(cf, held, qhat, max_rank, ranks[r], num_items_);
          results[(r * lambdas.size() + l) * w_texts.size() + t] = RankUsers(
              scorer, num_users_, [&](uint32_t, std::vector<uint32_t>* cand) { *cand = held; },
              [&](uint32_t u) -> const std::vector<uint32_t>& { return relevant[u]; });
        }
      }
    }
    double best = -1.0;
    for (size_t r = 0; r < ranks.size(); ++r) {
      for (size_t l = 0; l < lambdas.size(); ++l) {
        for (size_t t = 0; t < w_texts.size(); ++t) {
          const RankingMetrics& res = results[(r * lambdas.size() + l) * w_texts.size() + t];
          tuning_.grid.push_back({setting(ranks[r], lambdas[l], w_texts[t]), res.recall20, res.ndcg20});
          if (res.recall20 > best) {
            best = res.recall20;
            tuning_.chosen = tuning_.grid.size() - 1;
            rank_ = ranks[r];
            lambda_ = lambdas[l];
            w_text_ = w_texts[t];
          }
        }
      }
    }
  }

  ContentParts parts_;
  bool tune_;
  uint64_t seed_ = 0;            ///< tuned: the hold-out's seed
  uint32_t rank_ = 0;            ///< fixed, or the last tuning's choice
  double lambda_ = 0;
  double w_text_ = 0.5;
  bool fitted_ = false;
  uint32_t num_users_ = 0, num_items_ = 0;
  std::vector<double> users_;    ///< P, num_users x rank_
  std::vector<double> qhat_;     ///< predicted item factors, num_items x rank_
  Tuning tuning_;                ///< tuned: the last Fit's grid
};

}  // namespace

ContentRidgeFactors FitContentRidge(const EvalData& data, const std::vector<uint32_t>& train, ContentParts parts,
                                    uint32_t rank, double lambda, double w_text) {
  CheckParams(parts, rank, lambda, w_text);
  return FitPrepared(Prepare(data, train, parts), data.num_users, data.num_items, parts, rank, lambda, w_text);
}

CfFactors TruncatedSvd(const EvalData& data, const std::vector<uint32_t>& train, uint32_t rank) {
  if (rank == 0) throw std::invalid_argument("TruncatedSvd: rank must be > 0");
  CheckTrain(data, train);
  return Svd(BuildInteractions(data, train, {}), data.num_users, data.num_items, rank);
}

std::unique_ptr<Baseline> MakeContentRidgeFixed(ContentParts parts, uint32_t rank, double lambda, double w_text) {
  return std::make_unique<ContentRidge>(parts, rank, lambda, w_text);
}

std::unique_ptr<Baseline> MakeContentRidge(ContentParts parts, uint64_t seed) {
  return std::make_unique<ContentRidge>(parts, seed);
}

}  // namespace mosaic::fusion
