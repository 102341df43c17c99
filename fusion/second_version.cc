#include "fusion/second_version.h"

#include <algorithm>
#include <chrono>
#include <climits>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "fusion/content_regression_internal.h"
#include "fusion/random.h"

extern "C" {
void dpotrf_(const char* uplo, const int* n, double* a, const int* lda, int* info);
void dpotri_(const char* uplo, const int* n, double* a, const int* lda, int* info);
void dtrsm_(const char* side, const char* uplo, const char* transa, const char* diag, const int* m, const int* n,
            const double* alpha, const double* a, const int* lda, double* b, const int* ldb);
void dsyrk_(const char* uplo, const char* trans, const int* n, const int* k, const double* alpha, const double* a,
            const int* lda, const double* beta, double* c, const int* ldc);
void dsyevr_(const char* jobz, const char* range, const char* uplo, const int* n, double* a, const int* lda,
             const double* vl, const double* vu, const int* il, const int* iu, const double* abstol, int* m, double* w,
             double* z, const int* ldz, int* isuppz, double* work, const int* lwork, int* iwork, const int* liwork,
             int* info);
}

namespace mosaic::fusion {
namespace {

using namespace content_internal;

// The streams of fusion/random.h that draw the blend's hold-out ("Ver2") and the pseudo-few-shot
// one ("Few2").
constexpr uint64_t kHoldOutPlaysStream = 0x56657232;
constexpr uint64_t kFewPlaysStream = 0x46657732;
constexpr uint64_t kFewPlayUsersStream = 0x46657755;
// An item needs more plays than the most a pseudo-few-shot item keeps, so that some are held out.
constexpr size_t kFewPlaysKeptMax = 5;

// Eigenpairs of the symmetric column-major n x n matrix `a` (destroyed), ascending; indices il..iu
// (1-based) or all when il == 0.
void Eigen(std::vector<double>* a, int n, int il, int iu, std::vector<double>* values, std::vector<double>* vectors) {
  const char jobz = 'V', range = il == 0 ? 'A' : 'I', uplo = 'L';
  const double vl = 0, vu = 0, abstol = 0;
  const int count = il == 0 ? n : iu - il + 1;
  int found = 0, info = 0;
  values->assign(size_t(n), 0.0);
  vectors->assign(size_t(n) * size_t(count), 0.0);
  std::vector<int> isuppz(2 * size_t(std::max(count, 1)));
  int lwork = -1, liwork = -1, iwork_query = 0;
  double work_query = 0;
  dsyevr_(&jobz, &range, &uplo, &n, a->data(), &n, &vl, &vu, &il, &iu, &abstol, &found, values->data(),
          vectors->data(), &n, isuppz.data(), &work_query, &lwork, &iwork_query, &liwork, &info);
  if (info != 0) throw std::runtime_error("EASE factors: dsyevr workspace query failed, info " + std::to_string(info));
  lwork = int(work_query);
  liwork = iwork_query;
  std::vector<double> work(size_t(std::max(lwork, 1)));
  std::vector<int> iwork(size_t(std::max(liwork, 1)));
  dsyevr_(&jobz, &range, &uplo, &n, a->data(), &n, &vl, &vu, &il, &iu, &abstol, &found, values->data(),
          vectors->data(), &n, isuppz.data(), work.data(), &lwork, iwork.data(), &liwork, &info);
  if (info != 0 || found != count) throw std::runtime_error("EASE factors: dsyevr failed, info " + std::to_string(info));
}

void Cholesky(std::vector<double>* a, int n) {
  int info = 0;
  dpotrf_("L", &n, a->data(), &n, &info);
  if (info != 0) throw std::runtime_error("EASE factors: dpotrf failed, info " + std::to_string(info));
}

// Fewer active users than items: G = X X^T + lambda I = L L^T, Z = L^-1 X, so X^T G^-1 X = Z^T Z,
// P = (I - Z^T Z) / lambda, D = diag P and B_off = Z^T Z D^-1 / lambda. With Y = Z D^-1 and A_r the
// top-r left singular vectors of Y: W_j = A_r^T Z_j / lambda, E_i = A_r^T Z_i / D_i.
void FactorThroughUsers(const Interactions& x, const std::vector<uint32_t>& users, const std::vector<uint32_t>& items,
                        double lambda, uint32_t max_rank, EaseFactors* f) {
  const size_t nu = users.size(), ni = items.size();
  std::vector<int64_t> slot(x.items_of.size(), -1);
  for (size_t a = 0; a < nu; ++a) slot[users[a]] = int64_t(a);
  const int n = LapackSize(nu);
  std::vector<double> g(nu * nu, 0.0);  // column-major (symmetric)
  for (uint32_t i : items) {
    for (uint32_t a : x.users_of[i]) {
      double* col = &g[size_t(slot[a]) * nu];
      for (uint32_t b : x.users_of[i]) col[slot[b]] += 1.0;
    }
  }
  for (size_t a = 0; a < nu; ++a) g[a * nu + a] += lambda;
  Cholesky(&g, n);
  // Z = L^-1 X, column-major [nu x ni]: column c is item items[c].
  std::vector<double> z(nu * ni, 0.0);
  for (size_t c = 0; c < ni; ++c) {
    for (uint32_t u : x.users_of[items[c]]) z[c * nu + size_t(slot[u])] = 1.0;
  }
  const int m = n, cols = LapackSize(std::max<size_t>(ni, 1));
  const double one = 1.0;
  if (ni > 0) dtrsm_("L", "L", "N", "N", &m, &cols, &one, g.data(), &n, z.data(), &n);
  std::vector<double> d(ni);
  for (size_t c = 0; c < ni; ++c) {
    double s = 0;
    for (size_t a = 0; a < nu; ++a) s += z[c * nu + a] * z[c * nu + a];
    d[c] = (1.0 - s) / lambda;
    if (!(d[c] > 0)) throw std::runtime_error("EASE factors: a diagonal of P is not positive");
  }
  // Y Y^T = Z D^-2 Z^T, then its top-r eigenvectors.
  std::vector<double> y(z);
  for (size_t c = 0; c < ni; ++c) {
    for (size_t a = 0; a < nu; ++a) y[c * nu + a] /= d[c];
  }
  std::vector<double> yy(nu * nu, 0.0);
  const double zero = 0.0;
  dsyrk_("L", "N", &n, &cols, &one, y.data(), &n, &zero, yy.data(), &n);
  const uint32_t r = uint32_t(std::min<size_t>(max_rank, nu));
  std::vector<double> values, vectors;
  Eigen(&yy, n, n - int(r) + 1, n, &values, &vectors);
  f->rank = r;
  const size_t num_items = x.users_of.size();
  f->w.assign(num_items * r, 0.0f);
  f->e.assign(num_items * r, 0.0f);
  for (size_t c = 0; c < ni; ++c) {
    const double* zc = &z[c * nu];
    for (uint32_t k = 0; k < r; ++k) {
      const double* v = &vectors[size_t(r - 1 - k) * nu];  // descending
      double t = 0;
      for (size_t a = 0; a < nu; ++a) t += v[a] * zc[a];
      f->w[size_t(items[c]) * r + k] = float(t / lambda);
      f->e[size_t(items[c]) * r + k] = float(t / d[c]);
    }
  }
}

// Fewer active items than users: P = (X^T X + lambda I)^-1, D = diag P, B = I - P D^-1 (zero
// diagonal). S = D^-1/2 B D^1/2 = I - D^-1/2 P D^-1/2 is symmetric: S = V diag(mu) V^T, and with the
// r eigenpairs of largest |mu|, W_j = D_j^1/2 V_j and E_i = mu (.) V_i D_i^-1/2.
void FactorThroughItems(const Interactions& x, const std::vector<uint32_t>& items, double lambda, uint32_t max_rank,
                        EaseFactors* f) {
  const size_t ni = items.size();
  std::vector<int64_t> slot(x.users_of.size(), -1);
  for (size_t c = 0; c < ni; ++c) slot[items[c]] = int64_t(c);
  const int n = LapackSize(ni);
  std::vector<double> p(ni * ni, 0.0);
  for (const auto& its : x.items_of) {
    for (uint32_t a : its) {
      double* col = &p[size_t(slot[a]) * ni];
      for (uint32_t b : its) col[slot[b]] += 1.0;
    }
  }
  for (size_t c = 0; c < ni; ++c) p[c * ni + c] += lambda;
  Cholesky(&p, n);
  int info = 0;
  dpotri_("L", &n, p.data(), &n, &info);
  if (info != 0) throw std::runtime_error("EASE factors: dpotri failed, info " + std::to_string(info));
  std::vector<double> d(ni), s(ni * ni, 0.0);
  for (size_t c = 0; c < ni; ++c) d[c] = p[c * ni + c];
  for (size_t b = 0; b < ni; ++b) {
    for (size_t a = b; a < ni; ++a) {  // the lower triangle holds P
      s[b * ni + a] = (a == b ? 1.0 : 0.0) - p[b * ni + a] / std::sqrt(d[a] * d[b]);
    }
  }
  std::vector<double> values, vectors;
  Eigen(&s, n, 0, 0, &values, &vectors);
  std::vector<size_t> order(ni);
  for (size_t k = 0; k < ni; ++k) order[k] = k;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return std::fabs(values[a]) > std::fabs(values[b]); });
  const uint32_t r = uint32_t(std::min<size_t>(max_rank, ni));
  f->rank = r;
  const size_t num_items = x.users_of.size();
  f->w.assign(num_items * r, 0.0f);
  f->e.assign(num_items * r, 0.0f);
  for (uint32_t k = 0; k < r; ++k) {
    const double* v = &vectors[order[k] * ni];
    const double mu = values[order[k]];
    for (size_t c = 0; c < ni; ++c) {
      f->w[size_t(items[c]) * r + k] = float(std::sqrt(d[c]) * v[c]);
      f->e[size_t(items[c]) * r + k] = float(mu * v[c] / std::sqrt(d[c]));
    }
  }
}

// The covariance over `rows` rows of width `dim` (row-major, strided by `stride` from `offset`).
std::vector<double> Covariance(const std::vector<float>& rows, size_t count, size_t stride, size_t offset, size_t dim,
                               std::vector<double>* mean_out = nullptr) {
  std::vector<double> mean(dim, 0.0), cov(dim * dim, 0.0);
  if (count == 0) return cov;
  for (size_t i = 0; i < count; ++i) {
    const float* r = &rows[i * stride + offset];
    for (size_t a = 0; a < dim; ++a) mean[a] += r[a];
  }
  for (double& m : mean) m /= double(count);
  std::vector<double> c(dim);
  for (size_t i = 0; i < count; ++i) {
    const float* r = &rows[i * stride + offset];
    for (size_t a = 0; a < dim; ++a) c[a] = r[a] - mean[a];
    for (size_t a = 0; a < dim; ++a) {
      for (size_t b = 0; b <= a; ++b) cov[a * dim + b] += c[a] * c[b];
    }
  }
  for (size_t a = 0; a < dim; ++a) {
    for (size_t b = 0; b <= a; ++b) cov[b * dim + a] = cov[a * dim + b] /= double(count);
  }
  if (mean_out) *mean_out = mean;
  return cov;
}

// sqrt(v^T C v), 1 where that is 0.
double Spread(const std::vector<double>& v, const std::vector<double>& cov) {
  const size_t n = v.size();
  double s = 0;
  for (size_t a = 0; a < n; ++a) {
    double row = 0;
    for (size_t b = 0; b < n; ++b) row += cov[a * n + b] * v[b];
    s += v[a] * row;
  }
  return s > 0 ? std::sqrt(s) : 1.0;
}

// The value after "name=" in a grid setting.
double SettingValue(const std::string& setting, const std::string& name) {
  const size_t at = setting.find(name + "=");
  if (at == std::string::npos) throw std::logic_error("second version: no " + name + " in '" + setting + "'");
  return std::stod(setting.substr(at + name.size() + 1));
}

// A fifth of the items of each user with at least 5 held out of `train` (drawn with `seed`).
void HoldOutPlays(const EvalData& data, const std::vector<uint32_t>& train, uint64_t seed, std::vector<uint32_t>* fit,
                  std::vector<uint32_t>* held) {
  std::vector<std::vector<uint32_t>> of(data.num_users);
  for (uint32_t t : train) of[data.interactions[t].user].push_back(t);
  SplitMix64 rng(StreamSeed(seed, kHoldOutPlaysStream, 0));
  fit->clear();
  held->clear();
  for (auto& list : of) {
    if (list.size() < 5) {
      fit->insert(fit->end(), list.begin(), list.end());
      continue;
    }
    const size_t hold = list.size() / 5;
    for (size_t k = 0; k < hold; ++k) std::swap(list[k], list[k + size_t(rng.Below(uint64_t(list.size() - k)))]);
    held->insert(held->end(), list.begin(), list.begin() + long(hold));
    fit->insert(fit->end(), list.begin() + long(hold), list.end());
  }
  std::sort(fit->begin(), fit->end());
  std::sort(held->begin(), held->end());
}

// The pseudo-few-shot hold-out of `fit`: a `share` of the items with more than kFewPlaysKeptMax
// plays (drawn with `seed`) each keep 0 to kFewPlaysKeptMax of them, drawn uniformly, as an item
// early in its life has; their other plays are `held`.
void HoldOutFewPlays(const EvalData& data, const std::vector<uint32_t>& fit, double share, uint64_t seed,
                     std::vector<uint32_t>* kept, std::vector<uint32_t>* held) {
  std::vector<std::vector<uint32_t>> of(data.num_items);
  for (uint32_t t : fit) of[data.interactions[t].item].push_back(t);
  std::vector<uint32_t> eligible;
  for (uint32_t i = 0; i < data.num_items; ++i) {
    if (of[i].size() > kFewPlaysKeptMax) eligible.push_back(i);
  }
  SplitMix64 pick(StreamSeed(seed, kFewPlaysStream, 0));
  const size_t take = std::min(eligible.size(), size_t(std::llround(share * double(eligible.size()))));
  PartialShuffle(eligible.begin(), eligible.end(), take, pick);
  std::vector<uint8_t> held_out(data.interactions.size(), 0);
  held->clear();
  for (size_t x = 0; x < take; ++x) {
    std::vector<uint32_t>& list = of[eligible[x]];
    SplitMix64 rng(StreamSeed(seed, kFewPlaysStream, uint64_t(eligible[x]) + 1));
    const size_t keep = size_t(rng.Below(kFewPlaysKeptMax + 1));
    PartialShuffle(list.begin(), list.end(), keep, rng);
    for (size_t k = keep; k < list.size(); ++k) {
      held_out[list[k]] = 1;
      held->push_back(list[k]);
    }
  }
  kept->clear();
  for (uint32_t t : fit) {
    if (!held_out[t]) kept->push_back(t);
  }
  std::sort(held->begin(), held->end());
}

// The users of `plays`, ascending; at most `cap` of them, drawn with (seed, purpose) when there are more.
std::vector<uint32_t> UsersToCache(const EvalData& data, const std::vector<uint32_t>& plays, uint32_t cap,
                                   uint64_t seed, uint64_t purpose) {
  std::vector<uint32_t> users;
  for (uint32_t t : plays) users.push_back(data.interactions[t].user);
  std::sort(users.begin(), users.end());
  users.erase(std::unique(users.begin(), users.end()), users.end());
  if (users.size() > cap) {
    SplitMix64 rng(StreamSeed(seed, kFewPlayUsersStream, purpose));
    PartialShuffle(users.begin(), users.end(), cap, rng);
    users.resize(cap);
    std::sort(users.begin(), users.end());
  }
  return users;
}

// Each user's standardised EASE^R and content scores, cached for the users with held-out plays so
// that every (c, k) of the grid is measured without scoring again.
struct CachedParts {
  uint32_t num_items = 0;
  std::vector<int64_t> row_of;  ///< per user: the row in ease and content, -1 when not cached
  std::vector<float> ease, content;
};

CachedParts CacheParts(const Baseline& ease, const Baseline& content, uint32_t num_users, uint32_t num_items,
                       const std::vector<uint32_t>& users) {
  CachedParts parts;
  parts.num_items = num_items;
  parts.row_of.assign(num_users, -1);
  for (size_t r = 0; r < users.size(); ++r) parts.row_of[users[r]] = int64_t(r);
  parts.ease = LargeZeros<float>(users.size() * num_items);
  parts.content = LargeZeros<float>(users.size() * num_items);
  const unsigned threads = std::max(1u, std::thread::hardware_concurrency());
  std::vector<std::thread> pool;
  for (unsigned t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      std::vector<float> scores;
      for (size_t r = t; r < users.size(); r += threads) {
        ease.ScoreUser(users[r], &scores);
        Standardise(&scores);
        std::copy(scores.begin(), scores.end(), parts.ease.begin() + long(r * num_items));
        content.ScoreUser(users[r], &scores);
        Standardise(&scores);
        std::copy(scores.begin(), scores.end(), parts.content.begin() + long(r * num_items));
      }
    });
  }
  for (auto& th : pool) th.join();
  return parts;
}

// z_ease + v_i z_content + o_i over CachedParts, v_i and o_i fixed per item: one point of the
// (c, k, b) grid.
class CountWeightedBlend : public Baseline {
 public:
  CountWeightedBlend(const CachedParts* parts, std::vector<float> weights, std::vector<float> offsets)
      : parts_(parts), weights_(std::move(weights)), offsets_(std::move(offsets)) {}
  std::string name() const override { return "count-weighted blend"; }
  void Fit(const EvalData&, const std::vector<uint32_t>&, const std::vector<uint32_t>&) override {}
  void ScoreUser(uint32_t user, std::vector<float>* scores) const override {
    const int64_t row = user < parts_->row_of.size() ? parts_->row_of[user] : -1;
    if (row < 0) throw std::logic_error("count-weighted blend: user " + std::to_string(user) + " is not cached");
    const size_t n = parts_->num_items;
    const float* e = &parts_->ease[size_t(row) * n];
    const float* c = &parts_->content[size_t(row) * n];
    scores->resize(n);
    for (size_t i = 0; i < n; ++i) (*scores)[i] = e[i] + weights_[i] * c[i] + offsets_[i];
  }

 private:
  const CachedParts* parts_;
  std::vector<float> weights_;  ///< v_i
  std::vector<float> offsets_;  ///< o_i
};

// c, k and b chosen with w fixed, on two sets of held-out plays:
//   * warm: the plays that chose w (`choose`), scored by the models that chose it (`warm`, cached)
//     with v(n) of the items' plays in `fit`, ranked among every item the user did not fit on;
//   * few-play: the pseudo-few-shot items' held-out plays, scored by EASE^R at `lambda` and the
//     kernel at `point` refitted on the plays the hold-out keeps, with v(n) of those, ranked among
//     the pseudo-few-shot items the user did not keep (as the few-shot protocol ranks its items).
// Each (c, k) takes the smallest b of the grid whose warm Recall@20 and NDCG@20 are both within
// `few_play_warm_tolerance` of k = 0's (lifting items with few plays may not cost the others more),
// and the point kept is the best few-play Recall@20 among those that found one. (The mean of the two
// Recalls, tried first, chose the grid's largest c every time; a guard on Recall@20 alone let NDCG@20
// fall 3% on test; with no offset the guard kept c far below what the few-play items want: attempt 5
// in docs/results.md.) k = 0 (v = w for every item with plays, `default_cold` without; b = 0) comes
// first and stays on a tie.
struct FewPlayChoice {
  double cold_weight = 0;
  double k = 0;
  double offset = 0;
  FewPlayTuning tuning;
};

FewPlayChoice ChooseFewPlayWeights(const EvalData& data, const std::vector<uint32_t>& fit,
                                   const std::vector<uint32_t>& choose, const CachedParts& warm, double lambda,
                                   const KernelPoint& point, double w, double default_cold,
                                   const SecondVersionOptions& options) {
  FewPlayChoice choice;
  choice.cold_weight = default_cold;
  std::vector<uint32_t> kept, held;
  HoldOutFewPlays(data, fit, options.few_play_share, options.seed, &kept, &held);
  if (held.empty() || choose.empty()) return choice;
  std::unique_ptr<Baseline> ease = MakeEase(lambda);
  ease->Fit(data, kept, {});
  std::unique_ptr<ContentKernel> kernel =
      MakeContentKernelAt("content kernel", options.use_kg, point, options.kernel_grid.single_precision);
  kernel->Fit(data, kept, {});
  auto items_of = [&](const std::vector<uint32_t>& plays) {
    std::vector<std::vector<uint32_t>> of(data.num_users);
    for (uint32_t t : plays) of[data.interactions[t].user].push_back(data.interactions[t].item);
    for (auto& list : of) std::sort(list.begin(), list.end());
    return of;
  };
  const auto fit_of = items_of(fit), kept_of = items_of(kept);
  auto held_of = items_of(held), choose_of = items_of(choose);
  const CachedParts few = CacheParts(*ease, *kernel, data.num_users, data.num_items,
                                     UsersToCache(data, held, options.few_play_max_users, options.seed, 1));
  ease.reset();
  kernel.reset();
  for (uint32_t u = 0; u < data.num_users; ++u) {  // the users beyond the caps are not measured
    if (few.row_of[u] < 0) held_of[u].clear();
    if (warm.row_of[u] < 0) choose_of[u].clear();
  }
  auto counts = [&](const std::vector<uint32_t>& plays) {
    std::vector<uint64_t> n(data.num_items, 0);
    for (uint32_t t : plays) ++n[data.interactions[t].item];
    return n;
  };
  const std::vector<uint64_t> fit_plays = counts(fit), kept_plays = counts(kept);
  // The candidates a user's held-out plays are ranked among: the items of `among` they did not fit on.
  auto unseen = [](const std::vector<uint32_t>& among, const std::vector<std::vector<uint32_t>>& seen_of) {
    return [&among, &seen_of](uint32_t u, std::vector<uint32_t>* list) {
      list->clear();
      const std::vector<uint32_t>& seen = seen_of[u];
      for (uint32_t i : among) {
        if (!std::binary_search(seen.begin(), seen.end(), i)) list->push_back(i);
      }
    };
  };
  // Warm plays are ranked among every item, as the warm protocol does; the pseudo-few-shot plays
  // among the pseudo-few-shot items, as the few-shot protocol ranks its items.
  std::vector<uint32_t> every_item(data.num_items), few_play_items;
  for (uint32_t i = 0; i < data.num_items; ++i) every_item[i] = i;
  for (uint32_t t : held) few_play_items.push_back(data.interactions[t].item);
  std::sort(few_play_items.begin(), few_play_items.end());
  few_play_items.erase(std::unique(few_play_items.begin(), few_play_items.end()), few_play_items.end());
  SecondVersion curve;  // only its ContentWeight and Offset
  curve.blend_weight = w;
  auto rank = [&](const CachedParts& parts, const std::vector<uint64_t>& plays, const std::vector<uint32_t>& among,
                  const std::vector<std::vector<uint32_t>>& seen_of, const std::vector<std::vector<uint32_t>>& relevant) {
    std::vector<float> weights(data.num_items), offsets(data.num_items);
    for (uint32_t i = 0; i < data.num_items; ++i) {
      const double v = curve.ContentWeight(plays[i]);
      weights[i] = float(v);
      offsets[i] = float(curve.Offset(v));
    }
    const CountWeightedBlend blend(&parts, std::move(weights), std::move(offsets));
    return RankUsers(blend, data.num_users, unseen(among, seen_of),
                     [&](uint32_t u) -> const std::vector<uint32_t>& { return relevant[u]; });
  };
  auto record = [&](const std::string& setting, const RankingMetrics& few_play, const RankingMetrics& warm_plays) {
    choice.tuning.grid.push_back({setting, few_play.recall20, warm_plays.recall20, warm_plays.ndcg20});
  };
  curve.cold_weight = default_cold;
  record("k=0", rank(few, kept_plays, few_play_items, kept_of, held_of),
         rank(warm, fit_plays, every_item, fit_of, choose_of));
  const FewPlayPoint base = choice.tuning.grid[0];
  const double keep = 1 - options.few_play_warm_tolerance;
  const std::vector<double> offsets = options.few_play_offsets.empty() ? std::vector<double>{0} : options.few_play_offsets;
  for (double k : options.few_play_ks) {
    for (double c : options.few_play_weights) {
      curve.cold_weight = c;
      curve.count_k = k;
      RankingMetrics warm_plays;
      bool within = false;
      for (double b : offsets) {  // ascending: the first within the tolerance
        curve.offset_weight = b;
        warm_plays = rank(warm, fit_plays, every_item, fit_of, choose_of);
        within = warm_plays.recall20 >= base.warm_recall20 * keep && warm_plays.ndcg20 >= base.warm_ndcg20 * keep;
        if (within) break;
      }
      const RankingMetrics few_play = rank(few, kept_plays, few_play_items, kept_of, held_of);
      record("k=" + FormatNumber(k) + " c=" + FormatNumber(c) + " b=" + FormatNumber(curve.offset_weight), few_play,
             warm_plays);
      if (within && few_play.recall20 > choice.tuning.grid[choice.tuning.chosen].few_recall20) {
        choice.tuning.chosen = choice.tuning.grid.size() - 1;
        choice.cold_weight = c;
        choice.k = k;
        choice.offset = curve.offset_weight;
      }
    }
  }
  return choice;
}

// Little-endian binary fields, for Save and Load.
class Writer {
 public:
  template <typename T>
  void Put(T v) {
    out_.append(reinterpret_cast<const char*>(&v), sizeof v);
  }
  template <typename T>
  void PutVector(const std::vector<T>& v) {
    Put<uint64_t>(v.size());
    out_.append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
  }
  void PutString(const std::string& s) {
    Put<uint64_t>(s.size());
    out_ += s;
  }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

class Reader {
 public:
  explicit Reader(const std::string& in) : in_(in) {}
  template <typename T>
  T Get() {
    T v;
    Need(sizeof v);
    std::memcpy(&v, in_.data() + at_, sizeof v);
    at_ += sizeof v;
    return v;
  }
  template <typename T>
  std::vector<T> GetVector() {
    const uint64_t n = Get<uint64_t>();
    if (n > (in_.size() - at_) / sizeof(T)) throw std::runtime_error("second version: a field is longer than the record");
    std::vector<T> v(n);
    std::memcpy(v.data(), in_.data() + at_, n * sizeof(T));
    at_ += n * sizeof(T);
    return v;
  }
  std::string GetString() {
    const uint64_t n = Get<uint64_t>();
    Need(n);
    std::string s = in_.substr(at_, n);
    at_ += n;
    return s;
  }
  bool Done() const { return at_ == in_.size(); }

 private:
  void Need(size_t n) const {
    if (n > in_.size() - at_) throw std::runtime_error("second version: the record is truncated");
  }
  const std::string& in_;
  size_t at_ = 0;
};

constexpr uint64_t kMagic = 0x3276434941534f4dULL;            // "MOSAICv2": before count_k (k = 0)
constexpr uint64_t kMagicWithCounts = 0x6b76434941534f4dULL;  // "MOSAICvk": count_k after cold_weight
constexpr uint64_t kMagicWithOffset = 0x6276434941534f4dULL;  // "MOSAICvb": offset_weight after count_k, its column

}  // namespace

EaseFactors FactorEase(const EvalData& data, const std::vector<uint32_t>& train, double lambda, uint32_t max_rank) {
  if (!(lambda > 0)) throw std::invalid_argument("EASE factors: lambda must be positive");
  if (max_rank == 0) throw std::invalid_argument("EASE factors: rank must be positive");
  CheckTrain(data, train);
  const Interactions x = BuildInteractions(data, train, {});
  std::vector<uint32_t> users, items;
  for (uint32_t u = 0; u < data.num_users; ++u) {
    if (!x.items_of[u].empty()) users.push_back(u);
  }
  for (uint32_t i = 0; i < data.num_items; ++i) {
    if (!x.users_of[i].empty()) items.push_back(i);
  }
  EaseFactors f;
  if (items.empty()) {
    f.rank = 1;
    f.w.assign(data.num_items, 0.0f);
    f.e.assign(data.num_items, 0.0f);
  } else if (users.size() < items.size()) {
    FactorThroughUsers(x, users, items, lambda, max_rank, &f);
  } else {
    FactorThroughItems(x, items, lambda, max_rank, &f);
  }
  return f;
}

double SecondVersion::ContentWeight(uint64_t plays) const {
  if (plays == 0) return cold_weight;
  if (count_k <= 0) return blend_weight;
  return blend_weight + (cold_weight - blend_weight) * count_k / (count_k + double(plays));
}

void SecondVersion::Place(const std::vector<const float*>& modality_rows, const std::vector<uint32_t>& kg,
                          std::vector<float>* item, std::vector<float>* projection_row) const {
  std::vector<double> qhat;
  double pop_z = 0;
  PlaceByContent(content, modality_rows, kg, &qhat, &pop_z);
  item->assign(dim(), 0.0f);
  projection_row->assign(projection_dim(), 0.0f);
  for (uint32_t k = 0; k < ease_rank; ++k) (*item)[k] = -ease_mean[k];
  for (uint32_t k = 0; k < content_rank; ++k) {
    (*item)[ease_rank + k] = float(cold_weight * (qhat[k] - content_mean[k]));
    (*projection_row)[ease_rank + k] = float(qhat[k]);
  }
  (*item)[ease_rank + content_rank] = float(cold_weight * pop_z);
  if (offset_column) (*item)[ease_rank + content_rank + 1] = float(Offset(cold_weight));
  (*item)[dim() - 1] = 1.0f;
}

SecondVersion::UserScales SecondVersion::Scales(const float* rows, size_t count) const {
  const size_t pd = projection_dim();
  const uint32_t er = ease_rank, cr = content_rank;
  UserScales u;
  u.a.assign(er, 0.0);
  u.p.assign(cr, 0.0);
  for (size_t r = 0; r < count; ++r) {
    const float* row = rows + r * pd;
    for (uint32_t k = 0; k < er; ++k) u.a[k] += row[k];
    for (uint32_t k = 0; k < cr; ++k) u.p[k] += row[er + k];
  }
  // EASE^R's scores over the n items are s_i = a . E_i, less W_j . E_j for each played j: its mean
  // and variance follow from E's and those terms.
  const double n = double(std::max<uint32_t>(num_items, 1));
  double mean_all = 0;
  for (uint32_t k = 0; k < er; ++k) mean_all += u.a[k] * ease_mean[k];
  double var_all = 0;
  for (uint32_t x = 0; x < er; ++x) {
    for (uint32_t y = 0; y < er; ++y) var_all += u.a[x] * ease_covariance[size_t(x) * er + y] * u.a[y];
  }
  double sum_sq = n * (var_all + mean_all * mean_all), own = 0;
  for (size_t r = 0; r < count; ++r) {
    const float* row = rows + r * pd;
    double s = 0, c = 0;
    for (uint32_t k = 0; k < er; ++k) {
      s += u.a[k] * row[er + cr + k];
      c += double(row[k]) * row[er + cr + k];
    }
    sum_sq -= s * s - (s - c) * (s - c);
    own += c;
  }
  const double mean = mean_all - own / n;
  const double variance = sum_sq / n - mean * mean;
  u.sd_ease = variance > 0 ? std::sqrt(variance) : 1.0;
  u.mean_shift = (mean_all - mean) / u.sd_ease;
  // The content kernel's score, P . Qhat / sd + c popz, then standardised as a whole.
  const size_t cd = size_t(cr) + 1;
  std::vector<double> qq(size_t(cr) * cr);
  for (uint32_t x = 0; x < cr; ++x) {
    for (uint32_t y = 0; y < cr; ++y) qq[x * cr + y] = content_covariance[x * cd + y];
  }
  u.sd_factors = Spread(u.p, qq);
  std::vector<double> v(cd);
  for (uint32_t k = 0; k < cr; ++k) v[k] = u.p[k] / u.sd_factors;
  v[cr] = content.point.pop;
  u.sd_content = Spread(v, content_covariance);
  return u;
}

std::vector<float> SecondVersion::User(const float* rows, size_t count, std::vector<double>* own) const {
  std::vector<float> user(dim(), 0.0f);
  if (own) own->assign(count, 0.0);
  if (count == 0) return user;
  const UserScales u = Scales(rows, count);
  const uint32_t er = ease_rank, cr = content_rank;
  if (own) {
    const size_t pd = projection_dim();
    for (size_t r = 0; r < count; ++r) {
      const float* row = rows + r * pd;
      double c = 0;
      for (uint32_t k = 0; k < er; ++k) c += double(row[k]) * row[er + cr + k];
      (*own)[r] = c / u.sd_ease;
    }
  }
  for (uint32_t k = 0; k < er; ++k) user[k] = float(u.a[k] / u.sd_ease);
  for (uint32_t k = 0; k < cr; ++k) user[er + k] = float(u.p[k] / u.sd_factors / u.sd_content);
  user[er + cr] = float(content.point.pop / u.sd_content);
  if (offset_column) user[er + cr + 1] = 1.0f;  // every item's offset, as it is
  user[dim() - 1] = float(u.mean_shift);  // items with plays: a . (E_i - mean E) less the true mean
  return user;
}

std::vector<SecondVersion::Contribution> SecondVersion::Contributions(const float* rows, size_t count,
                                                                       const float* item) const {
  std::vector<Contribution> out(count);
  if (count == 0) return out;
  const UserScales u = Scales(rows, count);
  const size_t pd = projection_dim();
  const uint32_t er = ease_rank, cr = content_rank;
  for (size_t r = 0; r < count; ++r) {
    const float* row = rows + r * pd;
    double e = 0, c = 0;  // the item vector's EASE^R part is centred: E_i = part + mean
    for (uint32_t k = 0; k < er; ++k) e += double(row[k]) * (double(item[k]) + ease_mean[k]);
    for (uint32_t k = 0; k < cr; ++k) c += double(row[er + k]) * item[er + k];
    out[r] = {e / u.sd_ease, c / u.sd_factors / u.sd_content};
  }
  return out;
}

std::string SecondVersion::Save() const {
  Writer w;
  w.Put(offset_column ? kMagicWithOffset : kMagicWithCounts);  // a record loaded from before the offset keeps its form
  w.Put(num_items);
  w.Put(ease_rank);
  w.Put(content_rank);
  w.Put(ease_lambda);
  w.Put(blend_weight);
  w.Put(cold_weight);
  w.Put(count_k);
  if (offset_column) w.Put(offset_weight);
  w.PutVector(items);
  w.PutVector(projection);
  w.PutVector(has_plays);
  w.PutVector(ease_covariance);
  w.PutVector(ease_mean);
  w.PutVector(content_covariance);
  w.PutVector(content_mean);
  const ContentKernelState& s = content;
  w.Put(s.point.g);
  w.Put(s.point.w_text);
  w.Put(s.point.lambda);
  w.Put(s.point.rank);
  w.Put(s.point.pop);
  w.Put<uint64_t>(s.modalities.size());
  for (size_t m = 0; m < s.modalities.size(); ++m) {
    w.PutString(s.modalities[m]);
    w.Put(s.dims[m]);
    w.PutVector(s.support_rows[m]);
    w.PutVector(s.support_has[m]);
  }
  std::vector<uint32_t> keys;
  for (const KgFeatureKey& k : s.kg_keys) keys.insert(keys.end(), {k.relation, k.node, k.backward});
  w.PutVector(keys);
  w.PutVector(s.kg_idf);
  w.PutVector(s.support_kg_offsets);
  w.PutVector(s.support_kg_ids);
  w.PutVector(s.support_kg_values);
  w.PutVector(s.coefficients);
  w.Put(s.pop_mean);
  w.Put(s.pop_sd);
  return w.Take();
}

SecondVersion SecondVersion::Load(const std::string& bytes) {
  Reader r(bytes);
  const uint64_t magic = r.Get<uint64_t>();
  if (magic != kMagic && magic != kMagicWithCounts && magic != kMagicWithOffset) {
    throw std::runtime_error("second version: not a second-version model");
  }
  SecondVersion v;
  v.num_items = r.Get<uint32_t>();
  v.ease_rank = r.Get<uint32_t>();
  v.content_rank = r.Get<uint32_t>();
  v.ease_lambda = r.Get<double>();
  v.blend_weight = r.Get<double>();
  v.cold_weight = r.Get<double>();
  if (magic != kMagic) v.count_k = r.Get<double>();
  v.offset_column = magic == kMagicWithOffset;
  if (v.offset_column) v.offset_weight = r.Get<double>();
  v.items = r.GetVector<float>();
  v.projection = r.GetVector<float>();
  v.has_plays = r.GetVector<uint8_t>();
  v.ease_covariance = r.GetVector<double>();
  v.ease_mean = r.GetVector<float>();
  v.content_covariance = r.GetVector<double>();
  v.content_mean = r.GetVector<float>();
  ContentKernelState& s = v.content;
  s.point.g = r.Get<double>();
  s.point.w_text = r.Get<double>();
  s.point.lambda = r.Get<double>();
  s.point.rank = r.Get<uint32_t>();
  s.point.pop = r.Get<double>();
  const uint64_t modalities = r.Get<uint64_t>();
  if (modalities > 64) throw std::runtime_error("second version: too many modalities");
  for (uint64_t m = 0; m < modalities; ++m) {
    s.modalities.push_back(r.GetString());
    s.dims.push_back(r.Get<uint32_t>());
    s.support_rows.push_back(r.GetVector<float>());
    s.support_has.push_back(r.GetVector<uint8_t>());
  }
  const std::vector<uint32_t> keys = r.GetVector<uint32_t>();
  if (keys.size() % 3 != 0) throw std::runtime_error("second version: KG keys are not triples");
  for (size_t k = 0; k < keys.size(); k += 3) s.kg_keys.push_back({keys[k], keys[k + 1], uint8_t(keys[k + 2])});
  s.kg_idf = r.GetVector<float>();
  s.support_kg_offsets = r.GetVector<uint32_t>();
  s.support_kg_ids = r.GetVector<uint32_t>();
  s.support_kg_values = r.GetVector<float>();
  s.coefficients = r.GetVector<double>();
  s.pop_mean = r.Get<double>();
  s.pop_sd = r.Get<double>();
  if (!r.Done()) throw std::runtime_error("second version: bytes after the model");
  // Every length must agree, so that no later read runs past an array.
  const size_t n = s.support(), items = v.num_items, d = v.dim(), pd = v.projection_dim(), cd = v.content_rank + 1;
  bool ok = v.items.size() == items * d && v.projection.size() == items * pd && v.has_plays.size() == items &&
            v.ease_covariance.size() == size_t(v.ease_rank) * v.ease_rank && v.ease_mean.size() == v.ease_rank &&
            v.content_covariance.size() == cd * cd &&
            v.content_mean.size() == v.content_rank && s.point.rank == v.content_rank &&
            s.kg_idf.size() == s.kg_keys.size() && s.coefficients.size() == n * cd &&
            s.support_kg_ids.size() == s.support_kg_values.size() && !s.support_kg_offsets.empty() &&
            s.support_kg_offsets.back() == s.support_kg_ids.size() && s.pop_sd > 0 && v.cold_weight > 0 && v.count_k >= 0 &&
            v.offset_weight >= 0;
  for (size_t m = 0; ok && m < s.modalities.size(); ++m) {
    ok = s.support_rows[m].size() == n * s.dims[m] && s.support_has[m].size() == n;
  }
  for (size_t x = 0; ok && x + 1 < s.support_kg_offsets.size(); ++x) ok = s.support_kg_offsets[x] <= s.support_kg_offsets[x + 1];
  for (size_t e = 0; ok && e < s.support_kg_ids.size(); ++e) ok = s.support_kg_ids[e] < s.kg_keys.size();
  if (!ok) throw std::runtime_error("second version: the record's arrays do not fit one another");
  return v;
}

std::string SecondVersionFits(const EvalData& data, const std::vector<uint32_t>& train,
                              const SecondVersionOptions& options) {
  std::vector<uint8_t> user_seen(data.num_users, 0), item_seen(data.num_items, 0);
  size_t users = 0, items = 0;
  for (uint32_t t : train) {
    if (t >= data.interactions.size()) throw std::invalid_argument("second version: a training index is out of range");
    const Interaction& x = data.interactions[t];
    if (x.user >= data.num_users || x.item >= data.num_items) {
      throw std::invalid_argument("second version: a user or item is out of range");
    }
    users += !user_seen[x.user];
    items += !item_seen[x.item];
    user_seen[x.user] = item_seen[x.item] = 1;
  }
  const std::string counts = std::to_string(users) + " users and " + std::to_string(items) + " items with plays";
  if (std::min(users, items) > options.max_ease_side) {
    return "EASE^R needs min(users, items) with plays <= " + std::to_string(options.max_ease_side) + ", and there are " + counts;
  }
  if (items > options.max_kernel_items) {
    return "the content kernel needs at most " + std::to_string(options.max_kernel_items) + " items with plays, and there are " + counts;
  }
  return "";
}

SecondVersion FitSecondVersion(const EvalData& data, const std::vector<uint32_t>& train,
                               const std::vector<uint32_t>& valid, const SecondVersionOptions& options,
                               SecondVersionReport* report) {
  const auto start = std::chrono::steady_clock::now();
  const int stages = (valid.empty() ? 5 : 4) + (options.few_play_share > 0 ? 1 : 0);
  int stage = 0;
  std::vector<std::pair<std::string, double>> timings;
  auto stage_start = start;
  auto next = [&](const char* what) {
    const auto now = std::chrono::steady_clock::now();
    if (!timings.empty()) timings.back().second = std::chrono::duration<double>(now - stage_start).count();
    stage_start = now;
    if (what != nullptr) timings.emplace_back(what, 0.0);
    if (options.on_stage) options.on_stage(stage, stages, what ? what : "done");
    ++stage;
  };
  const std::string too_large = SecondVersionFits(data, train, options);
  if (!too_large.empty()) throw std::invalid_argument("second version: " + too_large);
  std::vector<uint32_t> fit, choose;
  if (valid.empty()) {
    HoldOutPlays(data, train, options.seed, &fit, &choose);
  } else {
    fit = train;
    choose = valid;
  }
  next("EASE^R's lambda on held-out plays");
  std::unique_ptr<Baseline> ease = MakeTunedEase();
  ease->Fit(data, fit, choose);
  const Tuning ease_tuning = *ease->tuning();
  const double lambda = SettingValue(ease_tuning.grid[ease_tuning.chosen].setting, "lambda");

  next("the content kernel's grid on pseudo-cold items");
  KernelGrid grid = options.kernel_grid;
  grid.refit_single_precision = grid.single_precision && valid.empty();  // refitted on every play below
  std::unique_ptr<ContentKernel> kernel = MakeContentKernel("content kernel", options.use_kg, options.seed, grid);
  kernel->Fit(data, fit, {});
  const Tuning content_tuning = *kernel->tuning();
  next("the blend weight on held-out plays");
  std::unique_ptr<Baseline> blend = MakeBlend("blend", ease.get(), kernel.get(), options.blend_weights);
  blend->Fit(data, fit, choose);
  const Tuning blend_tuning = *blend->tuning();
  const double weight = SettingValue(blend_tuning.grid[blend_tuning.chosen].setting, "weight");
  CachedParts warm;  // the validation users' scores by the models that chose w, for the next stage
  if (options.few_play_share > 0) {
    warm = CacheParts(*ease, *kernel, data.num_users, data.num_items,
                      UsersToCache(data, choose, options.few_play_max_users, options.seed, 0));
  }
  blend.reset();
  ease.reset();
  double default_cold = weight;
  if (!(default_cold > 0)) {  // new items keep the content's order: the grid's smallest positive weight
    default_cold = 1.0;
    for (double x : options.blend_weights) {
      if (x > 0) default_cold = std::min(default_cold, x);
    }
  }
  FewPlayChoice few_plays;
  few_plays.cold_weight = default_cold;
  if (options.few_play_share > 0) {
    next("the content's weight by play count on pseudo-few-shot items");
    few_plays = ChooseFewPlayWeights(data, fit, choose, warm, lambda, kernel->state().point, weight, default_cold, options);
    warm = CachedParts();
  }
  if (valid.empty()) {  // refit on every play at the chosen point
    next("the content kernel on every play");
    const KernelPoint point = kernel->state().point;
    kernel = MakeContentKernelAt("content kernel", options.use_kg, point);
    kernel->Fit(data, train, {});
  }
  next("EASE^R's factors on every play");
  const EaseFactors ef = FactorEase(data, train, lambda, options.max_ease_rank);

  SecondVersion v;
  v.num_items = data.num_items;
  v.ease_rank = ef.rank;
  v.content_rank = kernel->state().point.rank;
  v.ease_lambda = lambda;
  v.blend_weight = weight;
  v.cold_weight = few_plays.cold_weight;
  v.count_k = few_plays.k;
  v.offset_weight = few_plays.offset;
  v.content = kernel->state();
  const size_t n = data.num_items, er = v.ease_rank, cr = v.content_rank, d = v.dim(), pd = v.projection_dim();
  v.has_plays.assign(n, 0);
  std::vector<uint64_t> plays(n, 0);
  for (uint32_t t : train) ++plays[data.interactions[t].item];
  for (size_t i = 0; i < n; ++i) v.has_plays[i] = plays[i] > 0;
  const std::vector<double>& qhat = kernel->predicted();
  const std::vector<double>& q = kernel->cf_items();
  const std::vector<double>& popz = kernel->pop_z();
  std::vector<float> content(n * (cr + 1));
  for (size_t i = 0; i < n; ++i) {
    for (size_t k = 0; k < cr; ++k) content[i * (cr + 1) + k] = float(qhat[i * cr + k]);
    content[i * (cr + 1) + cr] = float(popz[i]);
  }
  std::vector<double> content_mean, ease_mean;
  v.content_covariance = Covariance(content, n, cr + 1, 0, cr + 1, &content_mean);
  v.ease_covariance = Covariance(ef.e, n, er, 0, er, &ease_mean);
  v.content_mean.assign(cr, 0.0f);
  for (size_t k = 0; k < cr; ++k) v.content_mean[k] = float(content_mean[k]);
  v.ease_mean.assign(er, 0.0f);
  for (size_t k = 0; k < er; ++k) v.ease_mean[k] = float(ease_mean[k]);
  v.items.assign(n * d, 0.0f);
  v.projection.assign(n * pd, 0.0f);
  for (size_t i = 0; i < n; ++i) {
    float* item = &v.items[i * d];
    float* proj = &v.projection[i * pd];
    const bool played = v.has_plays[i];
    const double s = v.ContentWeight(plays[i]);
    for (size_t k = 0; k < er; ++k) {  // E_i = 0 without plays
      item[k] = float(ef.e[i * er + k] - ease_mean[k]);
      if (!played) continue;
      proj[k] = ef.w[i * er + k];
      proj[er + cr + k] = ef.e[i * er + k];
    }
    item[er + cr + 1] = float(v.Offset(s));  // the last column, 1, follows it
    item[d - 1] = 1.0f;
    for (size_t k = 0; k < cr; ++k) {
      item[er + k] = float(s * (qhat[i * cr + k] - content_mean[k]));
      proj[er + k] = float(played ? q[i * cr + k] : qhat[i * cr + k]);
    }
    item[er + cr] = float(s * popz[i]);
  }
  next(nullptr);
  if (report) {
    report->stages = timings;
    report->ease = ease_tuning;
    report->content = content_tuning;
    report->blend = blend_tuning;
    report->few_plays = few_plays.tuning;
    report->seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  return v;
}

namespace {

class ServedSecondVersion : public Baseline {
 public:
  ServedSecondVersion(std::string name, SecondVersionOptions options) : name_(std::move(name)), options_(options) {}
  std::string name() const override { return name_; }

  void Fit(const EvalData& data, const std::vector<uint32_t>& train, const std::vector<uint32_t>& valid) override {
    SecondVersionReport report;
    model_ = FitSecondVersion(data, train, valid, options_, &report);
    items_of_.assign(data.num_users, {});
    for (uint32_t t : train) items_of_[data.interactions[t].user].push_back(data.interactions[t].item);
    for (auto& list : items_of_) {
      std::sort(list.begin(), list.end());
      list.erase(std::unique(list.begin(), list.end()), list.end());
    }
    const std::string chosen = "lambda=" + FormatNumber(model_.ease_lambda) + " " +
                               report.content.grid[report.content.chosen].setting + " ease_rank=" +
                               std::to_string(model_.ease_rank) + " k=" + FormatNumber(model_.count_k) + " c=" +
                               FormatNumber(model_.cold_weight) + " b=" + FormatNumber(model_.offset_weight) + " ";
    tuning_ = report.blend;
    for (GridPoint& point : tuning_.grid) point.setting = chosen + point.setting;
    // The few-play stage's grid after the blend's, for the record: its validation figures are the
    // warm plays', and the pseudo-few-shot Recall@20 is in the setting.
    for (size_t g = 0; g < report.few_plays.grid.size(); ++g) {
      const FewPlayPoint& p = report.few_plays.grid[g];
      tuning_.grid.push_back({"few-play stage" + std::string(g == report.few_plays.chosen ? " (kept)" : "") + ": " +
                                  p.setting + " few_recall20=" + FormatNumber(p.few_recall20),
                              p.warm_recall20, p.warm_ndcg20});
    }
  }

  void ScoreUser(uint32_t user, std::vector<float>* scores) const override {
    if (user >= items_of_.size()) throw std::invalid_argument(name_ + ": user out of range or not fitted");
    const size_t pd = model_.projection_dim(), d = model_.dim();
    std::vector<float> rows(items_of_[user].size() * pd);
    for (size_t x = 0; x < items_of_[user].size(); ++x) {
      std::copy_n(&model_.projection[size_t(items_of_[user][x]) * pd], pd, &rows[x * pd]);
    }
    const std::vector<float> q = model_.User(rows.data(), items_of_[user].size());
    scores->resize(model_.num_items);
    for (uint32_t i = 0; i < model_.num_items; ++i) {
      const float* item = &model_.items[size_t(i) * d];
      double s = 0;
      for (size_t k = 0; k < d; ++k) s += double(q[k]) * item[k];
      (*scores)[i] = float(s);
    }
  }

  const Tuning* tuning() const override { return items_of_.empty() ? nullptr : &tuning_; }

 private:
  std::string name_;
  SecondVersionOptions options_;
  SecondVersion model_;
  std::vector<std::vector<uint32_t>> items_of_;
  Tuning tuning_;
};

}  // namespace

std::unique_ptr<Baseline> MakeServedSecondVersion(std::string name, SecondVersionOptions options) {
  return std::make_unique<ServedSecondVersion>(std::move(name), std::move(options));
}

}  // namespace mosaic::fusion
