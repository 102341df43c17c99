#include "fusion/fold_in.h"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <stdexcept>

#include "fusion/random.h"

extern "C" {
// BLAS and LAPACK's Fortran interface (OpenBLAS through Debian's libblas.so.3 / liblapack.so.3).
void dsyrk_(const char* uplo, const char* trans, const int* n, const int* k, const double* alpha, const double* a,
            const int* lda, const double* beta, double* c, const int* ldc);
void sgemv_(const char* trans, const int* m, const int* n, const float* alpha, const float* a, const int* lda,
            const float* x, const int* incx, const float* beta, float* y, const int* incy);
void dposv_(const char* uplo, const int* n, const int* nrhs, double* a, const int* lda, double* b, const int* ldb,
            int* info);
}

namespace mosaic::fusion {

std::vector<FoldInSettings> FoldInGrid() {
  std::vector<FoldInSettings> grid;
  // Widened twice: MovieLens chose the grid's corner (alpha 10, lambda 1, then lambda 10).
  for (double alpha : {0.1, 1.0, 10.0, 100.0, 1000.0}) {
    for (double lambda : {0.1, 1.0, 10.0, 100.0}) grid.push_back({alpha, lambda});
  }
  return grid;
}

UserFoldIn::UserFoldIn(const float* items, size_t num_items, size_t dim, FoldInSettings settings)
    : num_items_(num_items), dim_(dim), settings_(settings), items_(items), gram_(dim * dim, 0.0) {
  if (num_items == 0 || dim == 0) return;
  // G = V^T V / n: V row-major [n, dim] is column-major [dim, n], so G = V' V'^T ("N"). Summed over
  // blocks of rows, so that the double copy stays small whatever the catalogue's size.
  constexpr size_t kBlock = 4096;
  std::vector<double> v;
  const int n = int(dim);
  const double scale = 1.0 / double(num_items), accumulate = 1.0;
  const char uplo = 'L', trans = 'N';
  for (size_t first = 0; first < num_items; first += kBlock) {
    const size_t rows = std::min(kBlock, num_items - first);
    v.assign(items + first * dim, items + (first + rows) * dim);
    const int k = int(rows);
    dsyrk_(&uplo, &trans, &n, &k, &scale, v.data(), &n, &accumulate, gram_.data(), &n);
  }
  double trace = 0;
  for (size_t d = 0; d < dim; ++d) trace += gram_[d * dim + d];
  mean_square_ = trace / double(dim);
}

std::vector<float> UserFoldIn::User(const std::vector<uint32_t>& played) const {
  std::vector<uint32_t> p(played);
  std::sort(p.begin(), p.end());
  p.erase(std::unique(p.begin(), p.end()), p.end());
  if (!p.empty() && p.back() >= num_items_) {
    throw std::invalid_argument("fold-in: item " + std::to_string(p.back()) + " out of range");
  }
  std::vector<float> rows(p.size() * dim_);
  for (size_t x = 0; x < p.size(); ++x) std::copy(Item(p[x]), Item(p[x]) + dim_, &rows[x * dim_]);
  return FromRows(rows.data(), p.size());
}

std::vector<float> UserFoldIn::FromRows(const float* rows, size_t num_rows) const {
  std::vector<float> out(dim_, 0.0f);
  if (num_rows == 0 || dim_ == 0 || mean_square_ <= 0) return out;
  const double count = double(num_rows);
  // A = |P| (alpha G + lambda s I) + V_P^T V_P (lower triangle, column-major), b = V_P^T 1.
  std::vector<double> a(dim_ * dim_);
  for (size_t c = 0; c < dim_; ++c) {
    for (size_t r = c; r < dim_; ++r) a[c * dim_ + r] = count * settings_.alpha * gram_[c * dim_ + r];
    a[c * dim_ + c] += count * settings_.lambda * mean_square_;
  }
  std::vector<double> vp(num_rows * dim_), b(dim_, 0.0);
  for (size_t x = 0; x < num_rows; ++x) {
    const float* row = rows + x * dim_;
    for (size_t d = 0; d < dim_; ++d) {
      vp[x * dim_ + d] = row[d];
      b[d] += row[d];
    }
  }
  const int n = int(dim_), k = int(num_rows), one = 1;
  const double unit = 1.0;
  const char uplo = 'L', trans = 'N';
  dsyrk_(&uplo, &trans, &n, &k, &unit, vp.data(), &n, &unit, a.data(), &n);
  int info = 0;
  dposv_(&uplo, &n, &one, a.data(), &n, b.data(), &n, &info);
  // Positive definite whenever lambda > 0 and some item is non-zero; otherwise the user stays at 0.
  if (info != 0) return out;
  for (size_t d = 0; d < dim_; ++d) out[d] = float(b[d]);
  return out;
}

namespace {

// Scores every item for users folded in from `known` (RankUsers' model interface).
class FoldedInScorer : public Baseline {
 public:
  FoldedInScorer(const UserFoldIn* fold_in, const std::vector<std::vector<uint32_t>>* known)
      : fold_in_(fold_in), known_(known) {}
  std::string name() const override { return "fold-in"; }
  void Fit(const EvalData&, const std::vector<uint32_t>&, const std::vector<uint32_t>&) override {}
  void ScoreUser(uint32_t user, std::vector<float>* scores) const override {
    const std::vector<float> x = fold_in_->User((*known_)[user]);
    Score(*fold_in_, x, scores);
  }
  static void Score(const UserFoldIn& fold_in, const std::vector<float>& x, std::vector<float>* scores) {
    scores->assign(fold_in.num_items(), 0.0f);
    if (fold_in.num_items() == 0) return;
    // scores = V x; V row-major [n, dim] is column-major [dim, n]: V'^T x.
    const int d = int(fold_in.dim()), n = int(fold_in.num_items()), one = 1;
    const float unit = 1.0f, zero = 0.0f;
    const char trans = 'T';
    sgemv_(&trans, &d, &n, &unit, fold_in.Item(0), &d, x.data(), &one, &zero, scores->data(), &one);
  }

 private:
  const UserFoldIn* fold_in_;
  const std::vector<std::vector<uint32_t>>* known_;
};

std::string Describe(const FoldInSettings& s) {
  std::ostringstream out;
  out << "alpha=" << s.alpha << " lambda=" << s.lambda;
  return out.str();
}

}  // namespace

Tuning TuneFoldIn(const std::vector<std::vector<uint32_t>>& known, const std::vector<std::vector<uint32_t>>& held_out,
                  UserFoldIn* fold_in) {
  if (known.size() != held_out.size()) throw std::invalid_argument("fold-in tuning: known and held_out differ in size");
  std::vector<std::vector<uint32_t>> sorted_known(known);
  for (auto& k : sorted_known) std::sort(k.begin(), k.end());
  const uint32_t num_items = uint32_t(fold_in->num_items());
  Tuning tuning;
  double best = -1;
  for (const FoldInSettings& s : FoldInGrid()) {
    fold_in->set_settings(s);
    const FoldedInScorer scorer(fold_in, &sorted_known);
    const RankingMetrics m = RankUsers(
        scorer, uint32_t(known.size()),
        [&](uint32_t u, std::vector<uint32_t>* candidates) {
          candidates->clear();
          const auto& k = sorted_known[u];
          for (uint32_t i = 0; i < num_items; ++i) {
            if (!std::binary_search(k.begin(), k.end(), i)) candidates->push_back(i);
          }
        },
        [&](uint32_t u) -> const std::vector<uint32_t>& { return held_out[u]; });
    GridPoint point{Describe(s), m.recall20, m.ndcg20};
    if (point.valid_recall20 > best) {
      best = point.valid_recall20;
      tuning.chosen = tuning.grid.size();
    }
    tuning.grid.push_back(point);
  }
  fold_in->set_settings(FoldInGrid()[tuning.chosen]);
  return tuning;
}

Tuning TuneFoldInOnHeldOutPlays(const std::vector<std::vector<uint32_t>>& interactions_of, uint64_t seed,
                                size_t max_users, UserFoldIn* fold_in) {
  constexpr size_t kMinItems = 5;
  std::vector<uint32_t> eligible;
  std::vector<std::vector<uint32_t>> distinct(interactions_of.size());
  for (uint32_t u = 0; u < interactions_of.size(); ++u) {
    distinct[u] = interactions_of[u];
    std::sort(distinct[u].begin(), distinct[u].end());
    distinct[u].erase(std::unique(distinct[u].begin(), distinct[u].end()), distinct[u].end());
    if (distinct[u].size() >= kMinItems) eligible.push_back(u);
  }
  SplitMix64 rng(StreamSeed(seed, 0xf01d, 0));
  if (eligible.size() > max_users) {
    PartialShuffle(eligible.begin(), eligible.end(), max_users, rng);
    eligible.resize(max_users);
  }
  std::vector<std::vector<uint32_t>> known(interactions_of.size()), held_out(interactions_of.size());
  for (uint32_t u : eligible) {
    std::vector<uint32_t> items = distinct[u];
    const size_t hold = std::max<size_t>(1, items.size() / 5);
    PartialShuffle(items.begin(), items.end(), hold, rng);
    held_out[u].assign(items.begin(), items.begin() + long(hold));
    known[u].assign(items.begin() + long(hold), items.end());
  }
  return TuneFoldIn(known, held_out, fold_in);
}

namespace {

class UsersFromHistory : public Baseline {
 public:
  UsersFromHistory(const Baseline* trained, std::string name) : trained_(trained), name_(std::move(name)) {}

  std::string name() const override { return name_; }

  void Fit(const EvalData& data, const std::vector<uint32_t>& train, const std::vector<uint32_t>& valid) override {
    const ItemFactors f = trained_->Factors();
    if (f.data == nullptr || f.rows != data.num_items) {
      throw std::logic_error(name_ + ": the trained model has no item representations for these items (fit it first)");
    }
    fold_in_ = std::make_unique<UserFoldIn>(f.data, f.rows, f.dim);
    std::vector<std::vector<uint32_t>> known(data.num_users), held_out(data.num_users);
    for (uint32_t i : train) known[data.interactions.at(i).user].push_back(data.interactions[i].item);
    for (uint32_t i : valid) held_out[data.interactions.at(i).user].push_back(data.interactions[i].item);
    tuning_ = TuneFoldIn(known, held_out, fold_in_.get());
    users_.assign(data.num_users, {});
    for (uint32_t u = 0; u < data.num_users; ++u) users_[u] = fold_in_->User(known[u]);
  }

  void ScoreUser(uint32_t user, std::vector<float>* scores) const override {
    if (user >= users_.size()) throw std::invalid_argument("user " + std::to_string(user) + " out of range");
    FoldedInScorer::Score(*fold_in_, users_[user], scores);
  }

  const Tuning* tuning() const override { return fold_in_ ? &tuning_ : nullptr; }

 private:
  const Baseline* trained_;
  std::string name_;
  std::unique_ptr<UserFoldIn> fold_in_;
  std::vector<std::vector<float>> users_;
  Tuning tuning_;
};

}  // namespace

std::unique_ptr<Baseline> MakeUsersFromHistory(const Baseline* trained, std::string name) {
  return std::make_unique<UsersFromHistory>(trained, std::move(name));
}

}  // namespace mosaic::fusion
