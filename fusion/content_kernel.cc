#include "fusion/content_kernel.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "fusion/content_regression_internal.h"
#include "fusion/metrics.h"
#include "fusion/random.h"

extern "C" {
void dpotrf_(const char* uplo, const int* n, double* a, const int* lda, int* info);
void dpotrs_(const char* uplo, const int* n, const int* nrhs, const double* a, const int* lda, double* b,
             const int* ldb, int* info);
void spotrf_(const char* uplo, const int* n, float* a, const int* lda, int* info);
void spotrs_(const char* uplo, const int* n, const int* nrhs, const float* a, const int* lda, float* b,
             const int* ldb, int* info);
void dsyrk_(const char* uplo, const char* trans, const int* n, const int* k, const double* alpha, const double* a,
            const int* lda, const double* beta, double* c, const int* ldc);
void dgemm_(const char* transa, const char* transb, const int* m, const int* n, const int* k, const double* alpha,
            const double* a, const int* lda, const double* b, const int* ldb, const double* beta, double* c,
            const int* ldc);
}

namespace mosaic::fusion {
namespace {

using namespace content_internal;

// A matrix dimension as BLAS's int.
int BlasSize(size_t n) {
  if (n > size_t(INT_MAX)) throw std::runtime_error("content kernel: matrix too large for BLAS");
  return int(n);
}

// LAPACK's Cholesky factorisation and solve, in either precision.
int Potrf(int n, double* a) {
  int info = 0;
  dpotrf_("L", &n, a, &n, &info);
  return info;
}
int Potrf(int n, float* a) {
  int info = 0;
  spotrf_("L", &n, a, &n, &info);
  return info;
}
int Potrs(int n, int nrhs, const double* a, double* b) {
  int info = 0;
  dpotrs_("L", &n, &nrhs, a, &n, b, &n, &info);
  return info;
}
int Potrs(int n, int nrhs, const float* a, float* b) {
  int info = 0;
  spotrs_("L", &n, &nrhs, a, &n, b, &n, &info);
  return info;
}

// Row-major C [m x n] = A [m x k] . op(B): B row-major [k x n], or with `transposed_b` [n x k].
void Gemm(const double* a, const double* b, double* c, size_t m, size_t n, size_t k, bool transposed_b = false) {
  if (m == 0 || n == 0) return;
  if (k == 0) {
    std::fill(c, c + m * n, 0.0);
    return;
  }
  const int im = BlasSize(m), in = BlasSize(n), ik = BlasSize(k);
  const double one = 1.0, zero = 0.0;
  // Column-major, C^T [n x m] = op(B)^T A^T; a row-major array is its transpose column-major.
  dgemm_(transposed_b ? "T" : "N", "N", &in, &im, &ik, &one, b, transposed_b ? &ik : &in, a, &ik, &zero, c, &in);
}

// Copies a row-major n x n matrix's upper triangle onto its lower one.
void MirrorUpper(double* c, size_t n) {
  ParallelRows(n, [&](size_t r) {
    for (size_t x = 0; x < r; ++x) c[r * n + x] = c[x * n + r];
  });
}

// Row-major C [n x n] = A A^T for row-major A [n x k]: one triangle by BLAS (half a product's work), then
// mirrored.
void Gram(const double* a, double* c, size_t n, size_t k) {
  if (n == 0) return;
  if (k == 0) {
    std::fill(c, c + n * n, 0.0);
    return;
  }
  const int in = BlasSize(n), ik = BlasSize(k);
  const double one = 1.0, zero = 0.0;
  // Column-major, C = A'^T A' with A' [k x n] = A^T: its lower triangle is row-major C's upper one.
  dsyrk_("L", "T", &in, &ik, &one, a, &ik, &zero, c, &in);
  MirrorUpper(c, n);
}

// The KG's one-hot features with inverse-item-frequency weights; item i's features are
// ids[offsets[i] .. offsets[i + 1]) with values value[same range] (its row L2-normalised).
struct WeightedKg : KgOneHots {
  std::vector<double> value;  ///< parallel to ids
};

WeightedKg BuildWeightedKg(const EvalData& data) {
  WeightedKg f;
  static_cast<KgOneHots&>(f) = BuildKgOneHots(data);
  std::vector<uint32_t> df(f.num_features, 0);
  for (uint32_t id : f.ids) ++df[id];
  size_t linked = 0;
  for (uint32_t i = 0; i < data.num_items; ++i) linked += f.offsets[i + 1] > f.offsets[i];
  f.value.resize(f.ids.size());
  for (uint32_t i = 0; i < data.num_items; ++i) {
    double norm2 = 0.0;
    for (size_t k = f.offsets[i]; k < f.offsets[i + 1]; ++k) {
      f.value[k] = std::log(1.0 + double(linked) / double(df[f.ids[k]]));
      norm2 += f.value[k] * f.value[k];
    }
    for (size_t k = f.offsets[i]; k < f.offsets[i + 1]; ++k) f.value[k] /= std::sqrt(norm2);
  }
  return f;
}

// What every grid point shares: the training matrix, the content, and the kernel's parts over the
// support (training items with a feature), n x n row-major each.
struct Parts {
  Interactions x;
  std::vector<DenseFeatures> modal;
  WeightedKg kg;                      ///< num_features 0 without the KG
  std::vector<uint32_t> train_items;  ///< items with a training interaction
  std::vector<uint32_t> support;      ///< train items with a feature, ascending
  std::vector<std::vector<double>> support_rows;  ///< per modality: the support's rows, n x dim
  std::vector<std::vector<double>> cosine;  ///< per modality: cos over support (0 where one lacks it)
  std::vector<std::vector<uint8_t>> has;    ///< per modality: support position has it
  std::vector<double> kg_gram;              ///< <kg(a), kg(b)> over support; empty without the KG
};

// The dense rows of `items` of a modality, [items x dim].
std::vector<double> Rows(const DenseFeatures& m, const std::vector<uint32_t>& items) {
  std::vector<double> out(items.size() * m.dim);
  for (size_t a = 0; a < items.size(); ++a) {
    std::copy_n(&m.rows[size_t(items[a]) * m.dim], m.dim, &out[a * m.dim]);
  }
  return out;
}

// K_kg(rows, support) for arbitrary item rows: <kg(r), kg(s)>, through the support's inverted index.
// `upper`: rows are the support itself, and only positions >= the row's are added (the Gram's upper
// triangle, for MirrorUpper; holders are in ascending position).
void KgBlock(const WeightedKg& kg, const std::vector<std::vector<std::pair<uint32_t, double>>>& holders,
             const std::vector<uint32_t>& rows, size_t n, double weight, double* out, bool upper = false) {
  ParallelRows(rows.size(), [&](size_t r) {
    const uint32_t i = rows[r];
    double* o = out + r * n;
    for (size_t k = kg.offsets[i]; k < kg.offsets[i + 1]; ++k) {
      const double v = weight * kg.value[k];
      const auto& list = holders[kg.ids[k]];
      auto from = list.begin();
      if (upper) {
        from = std::lower_bound(list.begin(), list.end(), uint32_t(r),
                                [](const std::pair<uint32_t, double>& h, uint32_t at) { return h.first < at; });
      }
      for (auto h = from; h != list.end(); ++h) o[h->first] += v * h->second;
    }
  });
}

double ModalKernel(double cosine, double g) { return g == 0 ? cosine : std::exp(g * (cosine - 1.0)); }

class KernelImpl : public ContentKernel {
 public:
  KernelImpl(std::string name, bool use_kg, uint64_t seed, KernelGrid grid)
      : name_(std::move(name)), use_kg_(use_kg), seed_(seed), grid_(std::move(grid)),
        refit_single_(grid_.refit_single_precision) {}
  KernelImpl(std::string name, bool use_kg, const KernelPoint& point, bool single_precision)
      : name_(std::move(name)), use_kg_(use_kg), seed_(0), fixed_(true), refit_single_(single_precision) {
    chosen_ = {point.g, point.w_text, point.lambda};
    rank_ = point.rank;
    pop_weight_ = point.pop;
  }

  const ContentKernelState& state() const override { return Fitted(), state_; }
  const std::vector<double>& cf_items() const override { return Fitted(), q_; }
  const std::vector<double>& predicted() const override { return Fitted(), qhat_; }
  const std::vector<double>& pop_z() const override { return Fitted(), pop_z_; }

  std::string name() const override { return name_; }

  void Fit(const EvalData& data, const std::vector<uint32_t>& train, const std::vector<uint32_t>&) override {
    fitted_ = false;
    tuning_ = Tuning{};
    CheckTrain(data, train);
    CheckContent(data);
    num_users_ = data.num_users;
    num_items_ = data.num_items;
    Parts p = Prepare(data, train);
    if (fixed_) {
      if (!use_kg_ || p.kg_gram.empty()) chosen_.w_text = 1.0;
      tuning_.grid.push_back({Setting(chosen_, rank_, pop_weight_), 0, 0});
    } else {
      Tune(data, train, p);
    }
    Refit(data, p);
    fitted_ = true;
  }

  void ScoreUser(uint32_t user, std::vector<float>* scores) const override {
    Fitted();
    if (user >= num_users_) {
      throw std::invalid_argument(name_ + ": user " + std::to_string(user) + " >= " + std::to_string(num_users_));
    }
    std::vector<double> base(num_items_);
    const double* pu = &users_[size_t(user) * rank_];
    double sum = 0, sum2 = 0;
    for (uint32_t i = 0; i < num_items_; ++i) {
      base[i] = Dot(pu, &qhat_[size_t(i) * rank_], rank_);
      sum += base[i];
      sum2 += base[i] * base[i];
    }
    const double mean = sum / num_items_;
    double sd = std::sqrt(std::max(0.0, sum2 / num_items_ - mean * mean));
    if (!(sd > 0)) sd = 1;
    scores->resize(num_items_);
    for (uint32_t i = 0; i < num_items_; ++i) (*scores)[i] = float(base[i] / sd + pop_weight_ * pop_z_[i]);
  }

  const Tuning* tuning() const override { return fitted_ ? &tuning_ : nullptr; }

 private:
  struct Point {
    double g, w_text, lambda;
  };

  Parts Prepare(const EvalData& data, const std::vector<uint32_t>& train) const {
    Parts p;
    p.x = BuildInteractions(data, train, {});
    for (const auto& [name, m] : data.modalities) p.modal.push_back(BuildDense(m, data.num_items));
    if (use_kg_) p.kg = BuildWeightedKg(data);
    else p.kg.offsets.assign(size_t(data.num_items) + 1, 0);
    for (uint32_t i = 0; i < data.num_items; ++i) {
      if (p.x.users_of[i].empty()) continue;
      p.train_items.push_back(i);
      bool any = p.kg.offsets[i + 1] > p.kg.offsets[i];
      for (const auto& m : p.modal) any = any || m.has[i];
      if (any) p.support.push_back(i);
    }
    const size_t n = p.support.size();
    for (const auto& m : p.modal) {
      const std::vector<double>& rows = p.support_rows.emplace_back(Rows(m, p.support));
      p.cosine.push_back(LargeZeros<double>(n * n));
      Gram(rows.data(), p.cosine.back().data(), n, m.dim);
      std::vector<uint8_t> has(n);
      for (size_t a = 0; a < n; ++a) has[a] = m.has[p.support[a]];
      p.has.push_back(std::move(has));
    }
    if (p.kg.num_features > 0) {
      p.kg_gram = LargeZeros<double>(n * n);
      KgBlock(p.kg, Holders(p, p.support), p.support, n, 1.0, p.kg_gram.data(), /*upper=*/true);
      MirrorUpper(p.kg_gram.data(), n);
    }
    return p;
  }

  // Per KG feature: (position in `items`, value) of the items of `items` that have it.
  std::vector<std::vector<std::pair<uint32_t, double>>> Holders(const Parts& p, const std::vector<uint32_t>& items) const {
    std::vector<std::vector<std::pair<uint32_t, double>>> holders(p.kg.num_features);
    for (size_t a = 0; a < items.size(); ++a) {
      const uint32_t i = items[a];
      for (size_t k = p.kg.offsets[i]; k < p.kg.offsets[i + 1]; ++k) {
        holders[p.kg.ids[k]].emplace_back(uint32_t(a), p.kg.value[k]);
      }
    }
    return holders;
  }

  bool HasKg(const Parts& p) const { return !p.kg_gram.empty(); }

  std::vector<double> WTexts(const Parts& p) const {
    // w_text 1 leaves the KG out: the KG must earn its weight on validation.
    return HasKg(p) ? std::vector<double>{0.5, 0.75, 0.9, 1.0} : std::vector<double>{1.0};
  }

  void Fitted() const {
    if (!fitted_) throw std::logic_error(name_ + ": used before Fit");
  }

  static std::string Setting(const Point& at, uint32_t rank, double pop) {
    return "g=" + FormatNumber(at.g) + " w_text=" + FormatNumber(at.w_text) + " lambda=" + FormatNumber(at.lambda) +
           " rank=" + std::to_string(rank) + " pop=" + FormatNumber(pop);
  }

  // K(rows, cols) from the support Grams, positions into the support; row-major |rows| x |cols|.
  template <typename T = double>
  std::vector<T> KernelBlock(const Parts& p, const std::vector<size_t>& rows, const std::vector<size_t>& cols,
                             const Point& at) const {
    const size_t n = p.support.size();
    std::vector<T> k = LargeZeros<T>(rows.size() * cols.size());
    ParallelRows(rows.size(), [&](size_t r) {
      const size_t pr = rows[r];
      T* out = &k[r * cols.size()];
      for (size_t m = 0; m < p.cosine.size(); ++m) {
        if (!p.has[m][pr]) continue;
        const double* c = &p.cosine[m][pr * n];
        for (size_t x = 0; x < cols.size(); ++x) {
          if (p.has[m][cols[x]]) out[x] += T(at.w_text * ModalKernel(c[cols[x]], at.g));
        }
      }
      if (HasKg(p)) {
        const double* g = &p.kg_gram[pr * n];
        for (size_t x = 0; x < cols.size(); ++x) out[x] += T((1.0 - at.w_text) * g[cols[x]]);
      }
    });
    return k;
  }

  // A = (K(S, S) + lambda I)^-1 Y, S the support positions, Y row-major |S| x cols -> |S| x cols,
  // factorised in T (KernelGrid::single_precision).
  template <typename T = double>
  std::vector<double> Solve(const Parts& p, const std::vector<size_t>& positions, const Point& at,
                            const std::vector<double>& y, size_t cols) const {
    const size_t s = positions.size();
    if (s == 0) return {};  // no training item with content: every prediction is 0
    std::vector<T> m = KernelBlock<T>(p, positions, positions, at);
    for (size_t x = 0; x < s; ++x) m[x * s + x] += T(at.lambda);
    std::vector<T> b(s * cols);
    for (size_t x = 0; x < s; ++x) {
      for (size_t k = 0; k < cols; ++k) b[k * s + x] = T(y[x * cols + k]);
    }
    const int size = LapackSize(s), nrhs = int(cols);
    int info = Potrf(size, m.data());
    if (info != 0) throw std::runtime_error(name_ + ": potrf failed, info " + std::to_string(info));
    info = Potrs(size, nrhs, m.data(), b.data());
    if (info != 0) throw std::runtime_error(name_ + ": potrs failed, info " + std::to_string(info));
    std::vector<double> a(s * cols);
    for (size_t x = 0; x < s; ++x) {
      for (size_t k = 0; k < cols; ++k) a[x * cols + k] = double(b[k * s + x]);
    }
    return a;
  }

  // Targets of the support positions: the first `rank` columns of the items' factors, then pop.
  static std::vector<double> Targets(const Parts& p, const std::vector<size_t>& positions, const CfFactors& cf,
                                     const Interactions& x) {
    const size_t cols = cf.rank + 1;
    std::vector<double> y(positions.size() * cols);
    for (size_t a = 0; a < positions.size(); ++a) {
      const uint32_t i = p.support[positions[a]];
      std::copy_n(&cf.items[size_t(i) * cf.rank], cf.rank, &y[a * cols]);
      y[a * cols + cf.rank] = std::log1p(double(x.users_of[i].size()));
    }
    return y;
  }

  void Tune(const EvalData& data, const std::vector<uint32_t>& train, const Parts& p) {
    const std::vector<uint32_t> ranks = RankGrid(p.x, p.train_items.size());
    auto or_default = [](const std::vector<double>& given, std::vector<double> otherwise) {
      return given.empty() ? otherwise : given;
    };
    const std::vector<double> gs = or_default(grid_.gs, {0, 4, 8}), lambdas = or_default(grid_.lambdas, {0.1, 1, 10}),
                              pops = or_default(grid_.pops, {0, 0.25, 0.5, 1, 2});
    std::vector<double> w_texts = WTexts(p);
    if (!grid_.w_texts.empty() && HasKg(p)) w_texts = grid_.w_texts;
    const auto& setting = Setting;
    const size_t m = p.train_items.size();
    const size_t hold = size_t(std::llround(0.2 * double(m)));
    if (hold == 0 || hold >= m) {
      chosen_ = {gs.front(), w_texts.front(), lambdas.front()};
      rank_ = ranks.front();
      pop_weight_ = pops.front();
      tuning_.grid.push_back({setting(chosen_, rank_, pop_weight_), 0, 0});
      return;
    }
    // Fold 0 holds out the items of MakeContentRidge for the same seed; each further fold the next
    // disjoint block of the same permutation. Each point's metrics are summed over the folds.
    const uint32_t max_rank = ranks.back();
    const size_t folds = std::max<size_t>(1, std::min<size_t>(grid_.folds, m / hold));
    std::vector<double> recall_sum, ndcg_sum;
    std::vector<std::pair<Point, std::pair<uint32_t, double>>> points;  // in grid order
    for (size_t fold = 0; fold < folds; ++fold) {
      const PseudoCold pc = HoldOut(data, train, p.x, p.train_items, hold, seed_, max_rank, fold);
      std::vector<size_t> fit_positions, held_positions;
      std::vector<uint32_t> scored;  // held items with content, in held_positions' order
      for (size_t a = 0; a < p.support.size(); ++a) {
        if (pc.is_held[p.support[a]]) {
          held_positions.push_back(a);
          scored.push_back(p.support[a]);
        } else {
          fit_positions.push_back(a);
        }
      }
      const std::vector<double> y = Targets(p, fit_positions, pc.cf, pc.rest);
      const size_t cols = max_rank + 1;
      size_t index = 0;
      for (double g : gs) {
        for (double w_text : w_texts) {
          for (double lambda : lambdas) {
            const Point at{g, w_text, lambda};
            const std::vector<double> a = grid_.single_precision ? Solve<float>(p, fit_positions, at, y, cols)
                                                                 : Solve(p, fit_positions, at, y, cols);
            const std::vector<double> k = KernelBlock(p, held_positions, fit_positions, at);
            std::vector<double> pred(held_positions.size() * cols);
            Gemm(k.data(), a.data(), pred.data(), held_positions.size(), cols, fit_positions.size());
            const std::vector<RankingMetrics> results =
                RankHeld(pc.cf, scored, pc.held, pc.relevant, pred, cols, ranks, pops);
            for (size_t r = 0; r < ranks.size(); ++r) {
              for (size_t q = 0; q < pops.size(); ++q, ++index) {
                const RankingMetrics& m = results[r * pops.size() + q];
                if (fold == 0) {
                  points.push_back({at, {ranks[r], pops[q]}});
                  recall_sum.push_back(0);
                  ndcg_sum.push_back(0);
                }
                recall_sum[index] += m.recall20;
                ndcg_sum[index] += m.ndcg20;
              }
            }
          }
        }
      }
    }
    double best = -1.0;
    for (size_t x = 0; x < points.size(); ++x) {
      const double recall = recall_sum[x] / double(folds);
      const auto& [at, rank_pop] = points[x];
      tuning_.grid.push_back({setting(at, rank_pop.first, rank_pop.second), recall, ndcg_sum[x] / double(folds)});
      if (recall > best) {
        best = recall;
        tuning_.chosen = x;
        chosen_ = at;
        rank_ = rank_pop.first;
        pop_weight_ = rank_pop.second;
      }
    }
  }

  void Refit(const EvalData& data, const Parts& p) {
    const CfFactors cf = Svd(p.x, num_users_, num_items_, rank_);
    const size_t n = p.support.size(), cols = rank_ + 1;
    std::vector<size_t> all(n);
    for (size_t a = 0; a < n; ++a) all[a] = a;
    const std::vector<double> y = Targets(p, all, cf, p.x);
    const std::vector<double> a = refit_single_ ? Solve<float>(p, all, chosen_, y, cols) : Solve(p, all, chosen_, y, cols);
    // Every item's kernel row against the support, in chunks (cosines by BLAS, then the RBF).
    std::vector<double> pred(size_t(num_items_) * cols, 0.0);
    const auto holders = Holders(p, p.support);
    constexpr size_t kChunk = 1024;
    const size_t chunk_cells = std::min<size_t>(kChunk, num_items_) * n;  // k and c keep this capacity
    std::vector<double> k = LargeZeros<double>(chunk_cells), c = LargeZeros<double>(chunk_cells);
    for (size_t begin = 0; begin < num_items_; begin += kChunk) {
      const size_t end = std::min<size_t>(num_items_, begin + kChunk), rows = end - begin;
      std::vector<uint32_t> items(rows);
      for (size_t r = 0; r < rows; ++r) items[r] = uint32_t(begin + r);
      k.assign(rows * n, 0.0);
      for (size_t m = 0; m < p.modal.size(); ++m) {
        const DenseFeatures& f = p.modal[m];
        const std::vector<double> left = Rows(f, items);
        c.assign(rows * n, 0.0);
        Gemm(left.data(), p.support_rows[m].data(), c.data(), rows, n, f.dim, /*transposed_b=*/true);
        ParallelRows(rows, [&](size_t r) {
          if (!f.has[items[r]]) return;
          for (size_t x = 0; x < n; ++x) {
            if (p.has[m][x]) k[r * n + x] += chosen_.w_text * ModalKernel(c[r * n + x], chosen_.g);
          }
        });
      }
      if (HasKg(p)) KgBlock(p.kg, holders, items, n, 1.0 - chosen_.w_text, k.data());
      Gemm(k.data(), a.data(), &pred[begin * cols], rows, cols, n);
    }
    users_ = cf.users;  // num_users x rank_: the SVD was taken at rank_
    q_ = cf.items;
    qhat_.assign(size_t(num_items_) * rank_, 0.0);
    std::vector<double> pop(num_items_);
    for (uint32_t i = 0; i < num_items_; ++i) {
      std::copy_n(&pred[size_t(i) * cols], rank_, &qhat_[size_t(i) * rank_]);
      pop[i] = pred[size_t(i) * cols + rank_];
    }
    double mean = 0, sd = 1;
    pop_z_ = Standardised(pop, &mean, &sd);
    KeepState(data, p, a, mean, sd);
  }

  // What PlaceByContent needs, from the refit.
  void KeepState(const EvalData& data, const Parts& p, const std::vector<double>& a, double pop_mean, double pop_sd) {
    ContentKernelState& s = state_;
    s = ContentKernelState{};
    s.point = {chosen_.g, chosen_.w_text, chosen_.lambda, rank_, pop_weight_};
    const size_t n = p.support.size();
    size_t m = 0;
    for (const auto& [name, matrix] : data.modalities) {
      s.modalities.push_back(name);
      s.dims.push_back(uint32_t(matrix.dim));
      s.support_rows.emplace_back(p.support_rows[m].begin(), p.support_rows[m].end());
      s.support_has.push_back(p.has[m]);
      ++m;
    }
    const uint64_t nodes = uint64_t(data.num_items) + data.num_entities;
    std::vector<uint32_t> df(p.kg.num_features, 0);
    for (uint32_t id : p.kg.ids) ++df[id];
    size_t linked = 0;
    for (uint32_t i = 0; i < data.num_items; ++i) linked += p.kg.offsets[i + 1] > p.kg.offsets[i];
    for (size_t f = 0; f < p.kg.num_features; ++f) {
      const uint64_t key = p.kg.keys[f];
      s.kg_keys.push_back({uint32_t(key / 2 / nodes), uint32_t((key / 2) % nodes), uint8_t(key & 1)});
      s.kg_idf.push_back(float(std::log(1.0 + double(linked) / double(df[f]))));
    }
    s.support_kg_offsets.push_back(0);
    for (uint32_t i : p.support) {
      for (size_t k = p.kg.offsets[i]; k < p.kg.offsets[i + 1]; ++k) {
        s.support_kg_ids.push_back(p.kg.ids[k]);
        s.support_kg_values.push_back(float(p.kg.value[k]));
      }
      s.support_kg_offsets.push_back(uint32_t(s.support_kg_ids.size()));
    }
    if (!HasKg(p)) {  // the KG is left out: no feature of it counts
      s.kg_keys.clear();
      s.kg_idf.clear();
      s.support_kg_ids.clear();
      s.support_kg_values.clear();
      s.support_kg_offsets.assign(n + 1, 0);
    }
    s.coefficients = a;
    s.pop_mean = pop_mean;
    s.pop_sd = pop_sd;
  }

  static std::vector<double> Standardised(const std::vector<double>& v, double* mean_out = nullptr,
                                          double* sd_out = nullptr) {
    double sum = 0, sum2 = 0;
    for (double x : v) {
      sum += x;
      sum2 += x * x;
    }
    const double mean = v.empty() ? 0 : sum / double(v.size());
    double sd = v.empty() ? 1 : std::sqrt(std::max(0.0, sum2 / double(v.size()) - mean * mean));
    if (!(sd > 0)) sd = 1;
    std::vector<double> z(v.size());
    for (size_t i = 0; i < v.size(); ++i) z[i] = (v[i] - mean) / sd;
    if (mean_out) *mean_out = mean;
    if (sd_out) *sd_out = sd;
    return z;
  }

  // The pseudo-cold items' held-out plays ranked among the held items, per (rank, pop) of a grid
  // point's predictions, row-major [ranks x pops]. A user's score of a held item with content is the
  // standardised P_u . pred_h over the first `rank` columns (standardised over those items, as
  // ScoreUser standardises over all) plus pop times the standardised predicted popularity; held items
  // without content are unscorable. Each user's dot products are taken once per rank and shared by
  // every pop.
  std::vector<RankingMetrics> RankHeld(const CfFactors& cf, const std::vector<uint32_t>& scored,
                                       const std::vector<uint32_t>& held,
                                       const std::vector<std::vector<uint32_t>>& relevant,
                                       const std::vector<double>& pred, size_t cols, const std::vector<uint32_t>& ranks,
                                       const std::vector<double>& pops) const {
    std::vector<double> popularity(scored.size());
    for (size_t h = 0; h < scored.size(); ++h) popularity[h] = pred[h * cols + cols - 1];
    const std::vector<double> pop_z = Standardised(popularity);
    const size_t points = ranks.size() * pops.size();
    const size_t threads = std::max(1u, std::thread::hardware_concurrency());
    std::vector<std::vector<RankingEvaluator>> parts(points, std::vector<RankingEvaluator>(threads));
    std::vector<std::thread> pool;
    for (size_t t = 0; t < threads; ++t) {
      pool.emplace_back([&, t] {
        std::vector<float> scores(num_items_, kUnscorable);  // only `scored` positions are ever written
        std::vector<double> base(scored.size());
        for (uint32_t u = uint32_t(t); u < num_users_; u += uint32_t(threads)) {
          if (relevant[u].empty()) continue;
          const double* pu = &cf.users[size_t(u) * cf.rank];
          for (size_t r = 0; r < ranks.size(); ++r) {
            for (size_t h = 0; h < scored.size(); ++h) base[h] = Dot(pu, &pred[h * cols], ranks[r]);
            const std::vector<double> z = Standardised(base);
            for (size_t q = 0; q < pops.size(); ++q) {
              for (size_t h = 0; h < scored.size(); ++h) scores[scored[h]] = float(z[h] + pops[q] * pop_z[h]);
              parts[r * pops.size() + q][t].AddUser(scores, held, relevant[u]);
            }
          }
        }
      });
    }
    for (auto& th : pool) th.join();
    std::vector<RankingMetrics> out;
    for (const auto& p : parts) out.push_back(RankingEvaluator::Merge(p).Result());
    return out;
  }

  std::string name_;
  bool use_kg_;
  uint64_t seed_;
  KernelGrid grid_;             ///< the search's grid (empty members: the defaults)
  bool fixed_ = false;          ///< fitted at a given point, no grid search
  bool refit_single_ = false;   ///< the refit's solve in single precision (a fit that only chooses)
  bool fitted_ = false;
  uint32_t num_users_ = 0, num_items_ = 0;
  Point chosen_{0, 1, 1};     ///< the kernel and ridge of the last tuning
  uint32_t rank_ = 16;        ///< factor columns scored
  double pop_weight_ = 0;     ///< c
  std::vector<double> users_;  ///< P, num_users x rank_
  std::vector<double> q_;      ///< Q of the refit's SVD, num_items x rank_
  std::vector<double> qhat_;   ///< predicted item factors, num_items x rank_
  std::vector<double> pop_z_;  ///< standardised predicted popularity, per item
  ContentKernelState state_;
  Tuning tuning_;
};

}  // namespace

std::unique_ptr<ContentKernel> MakeContentKernel(std::string name, bool use_kg, uint64_t seed, KernelGrid grid) {
  return std::make_unique<KernelImpl>(std::move(name), use_kg, seed, std::move(grid));
}

std::unique_ptr<ContentKernel> MakeContentKernelAt(std::string name, bool use_kg, KernelPoint point,
                                                   bool single_precision) {
  return std::make_unique<KernelImpl>(std::move(name), use_kg, point, single_precision);
}

void PlaceByContent(const ContentKernelState& state, const std::vector<const float*>& modality_rows,
                    const std::vector<uint32_t>& kg, std::vector<double>* factors, double* pop_z) {
  if (modality_rows.size() != state.modalities.size()) {
    throw std::invalid_argument("content kernel: " + std::to_string(modality_rows.size()) + " modality rows for " +
                                std::to_string(state.modalities.size()) + " modalities");
  }
  const size_t n = state.support(), rank = state.point.rank, cols = rank + 1;
  std::vector<double> k(n, 0.0);
  for (size_t m = 0; m < state.modalities.size(); ++m) {
    const float* row = modality_rows[m];
    if (row == nullptr) continue;
    const size_t dim = state.dims[m];
    double norm2 = 0;
    for (size_t d = 0; d < dim; ++d) norm2 += double(row[d]) * row[d];
    if (!(norm2 > 0) || !std::isfinite(norm2)) continue;
    const double inv = 1.0 / std::sqrt(norm2);
    for (size_t x = 0; x < n; ++x) {
      if (!state.support_has[m][x]) continue;
      const float* s = &state.support_rows[m][x * dim];
      double c = 0;
      for (size_t d = 0; d < dim; ++d) c += double(row[d]) * s[d];
      k[x] += state.point.w_text * ModalKernel(c * inv, state.point.g);
    }
  }
  std::vector<uint32_t> ids(kg);
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  double norm2 = 0;
  for (uint32_t id : ids) {
    if (id >= state.kg_idf.size()) throw std::invalid_argument("content kernel: KG feature " + std::to_string(id) + " out of range");
    norm2 += double(state.kg_idf[id]) * state.kg_idf[id];
  }
  if (norm2 > 0 && state.point.w_text < 1.0) {
    std::vector<double> mine(state.kg_idf.size(), 0.0);  // sparse in practice; dense for a simple lookup
    for (uint32_t id : ids) mine[id] = state.kg_idf[id] / std::sqrt(norm2);
    for (size_t x = 0; x < n; ++x) {
      double dot = 0;
      for (size_t e = state.support_kg_offsets[x]; e < state.support_kg_offsets[x + 1]; ++e) {
        dot += mine[state.support_kg_ids[e]] * state.support_kg_values[e];
      }
      k[x] += (1.0 - state.point.w_text) * dot;
    }
  }
  factors->assign(rank, 0.0);
  double pop = 0;
  for (size_t x = 0; x < n; ++x) {
    if (k[x] == 0) continue;
    const double* a = &state.coefficients[x * cols];
    for (size_t c = 0; c < rank; ++c) (*factors)[c] += k[x] * a[c];
    pop += k[x] * a[rank];
  }
  *pop_z = (pop - state.pop_mean) / state.pop_sd;
}

}  // namespace mosaic::fusion
