#include "fusion/baselines.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <numeric>
#include <stdexcept>
#include <thread>
#include <type_traits>
#include <utility>

#include "fusion/metrics.h"
#include "fusion/random.h"

// LAPACK's Fortran interface (liblapack-dev; OpenBLAS's LAPACK on Debian through the liblapack.so.3
// alternative). Declared here rather than through LAPACKE, which would be one more package for
// four functions. Column-major; a symmetric matrix is its own transpose, so row-major arrays pass as they are.
extern "C" {
void spotrf_(const char* uplo, const int* n, float* a, const int* lda, int* info);
void spotri_(const char* uplo, const int* n, float* a, const int* lda, int* info);
void dpotrf_(const char* uplo, const int* n, double* a, const int* lda, int* info);
void dpotri_(const char* uplo, const int* n, double* a, const int* lda, int* info);
}

namespace mosaic::fusion {
namespace {

// Users' training items as compressed rows, sorted by item: the shape every baseline starts from.
struct UserRows {
  std::vector<uint32_t> offsets;  ///< user u's items are items[offsets[u] .. offsets[u + 1])
  std::vector<uint32_t> items;    ///< item indices, ascending within a user
  std::vector<float> weights;     ///< the interactions' weights, parallel to items

  size_t begin(uint32_t user) const { return offsets[user]; }
  size_t end(uint32_t user) const { return offsets[user + 1]; }
};

// Checks that `indices` address interactions of `data` with in-range users and items; throws
// std::invalid_argument naming `what` otherwise. Bad input must fail loudly, not read out of bounds.
void CheckIndices(const EvalData& data, const std::vector<uint32_t>& indices, const char* what) {
  for (uint32_t index : indices) {
    if (index >= data.interactions.size()) {
      throw std::invalid_argument(std::string(what) + " index " + std::to_string(index) + " >= " +
                                  std::to_string(data.interactions.size()) + " interactions");
    }
    const Interaction& x = data.interactions[index];
    if (x.user >= data.num_users || x.item >= data.num_items) {
      throw std::invalid_argument(std::string(what) + " interaction " + std::to_string(index) +
                                  " names user " + std::to_string(x.user) + " / item " + std::to_string(x.item) +
                                  " out of range");
    }
  }
}

UserRows BuildUserRows(const EvalData& data, const std::vector<uint32_t>& train) {
  CheckIndices(data, train, "train");
  UserRows rows;
  rows.offsets.assign(size_t(data.num_users) + 1, 0);
  for (uint32_t index : train) ++rows.offsets[data.interactions[index].user + 1];
  std::partial_sum(rows.offsets.begin(), rows.offsets.end(), rows.offsets.begin());
  std::vector<std::pair<uint32_t, float>> slots(train.size());
  std::vector<uint32_t> fill(rows.offsets.begin(), rows.offsets.end() - 1);
  for (uint32_t index : train) {
    const Interaction& x = data.interactions[index];
    slots[fill[x.user]++] = {x.item, x.weight};
  }
  // Sorted rows make scoring order (and so float sums) independent of the order of `train`.
  for (uint32_t u = 0; u < data.num_users; ++u) {
    std::sort(slots.begin() + rows.offsets[u], slots.begin() + rows.offsets[u + 1]);
  }
  rows.items.resize(slots.size());
  rows.weights.resize(slots.size());
  for (size_t k = 0; k < slots.size(); ++k) {
    rows.items[k] = slots[k].first;
    rows.weights[k] = slots[k].second;
  }
  return rows;
}

// Play counts are heavy-tailed (a few artists get thousands of plays), so raw weights would let one
// item drown the rest of a user's history; log1p keeps the order but compresses the tail.
float DampedWeight(float weight) { return std::log1p(std::max(weight, 0.0f)); }

// Each item's entities, sorted and deduplicated, with entity ids checked against num_entities.
std::vector<std::vector<uint32_t>> CleanEntities(const EvalData& data) {
  if (!data.item_entities.empty() && data.item_entities.size() != data.num_items) {
    throw std::invalid_argument("item_entities has " + std::to_string(data.item_entities.size()) +
                                " rows, expected num_items = " + std::to_string(data.num_items));
  }
  std::vector<std::vector<uint32_t>> entities(data.num_items);
  for (size_t i = 0; i < data.item_entities.size(); ++i) {
    entities[i] = data.item_entities[i];
    for (uint32_t e : entities[i]) {
      if (e >= data.num_entities) {
        throw std::invalid_argument("item " + std::to_string(i) + " links entity " + std::to_string(e) +
                                    " >= num_entities = " + std::to_string(data.num_entities));
      }
    }
    std::sort(entities[i].begin(), entities[i].end());
    entities[i].erase(std::unique(entities[i].begin(), entities[i].end()), entities[i].end());
  }
  return entities;
}

// Dot product with eight independent partial sums: without -ffast-math the compiler may not
// reorder a single float accumulator, so this is what lets it use SIMD lanes (scoring all items
// is the hot loop of BPR-MF and TextKNN). The summation order is fixed, so results stay deterministic.
float Dot(const float* a, const float* b, size_t n) {
  float partial[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  size_t k = 0;
  for (; k + 8 <= n; k += 8) {
    for (size_t l = 0; l < 8; ++l) partial[l] += a[k + l] * b[k + l];
  }
  float sum = 0.0f;
  for (; k < n; ++k) sum += a[k] * b[k];
  for (float p : partial) sum += p;
  return sum;
}

// A hyper-parameter as it is written in names and settings: 100, 0.5, 1e-05.
std::string FormatNumber(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", v);
  return text;
}

// The transpose of UserRows: each item's training users, ascending.
struct ItemColumns {
  std::vector<uint32_t> offsets;  ///< item i's users are users[offsets[i] .. offsets[i + 1])
  std::vector<uint32_t> users;

  size_t begin(uint32_t item) const { return offsets[item]; }
  size_t end(uint32_t item) const { return offsets[item + 1]; }
  size_t count(uint32_t item) const { return offsets[item + 1] - offsets[item]; }
};

ItemColumns BuildItemColumns(const UserRows& rows, uint32_t num_users, uint32_t num_items) {
  ItemColumns cols;
  cols.offsets.assign(size_t(num_items) + 1, 0);
  for (uint32_t item : rows.items) ++cols.offsets[item + 1];
  std::partial_sum(cols.offsets.begin(), cols.offsets.end(), cols.offsets.begin());
  cols.users.resize(rows.items.size());
  std::vector<uint32_t> fill(cols.offsets.begin(), cols.offsets.end() - 1);
  for (uint32_t u = 0; u < num_users; ++u) {
    for (size_t k = rows.begin(u); k < rows.end(u); ++k) cols.users[fill[rows.items[k]]++] = u;
  }
  return cols;
}

// ---------------------------------------------------------------------------------------------

class MostPopular : public Baseline {
 public:
  std::string name() const override { return "MostPopular"; }

  void Fit(const EvalData& data, const std::vector<uint32_t>& train, const std::vector<uint32_t>&) override {
    CheckIndices(data, train, "train");
    counts_.assign(data.num_items, 0.0f);
    for (uint32_t index : train) counts_[data.interactions[index].item] += 1.0f;
  }

  void ScoreUser(uint32_t, std::vector<float>* scores) const override { *scores = counts_; }

 private:
  std::vector<float> counts_;  ///< training interactions per item
};

// ---------------------------------------------------------------------------------------------

class ItemKnn : public Baseline {
 public:
  ItemKnn(size_t neighbours, double shrink) : neighbours_(neighbours), shrink_(shrink) {
    if (!(shrink >= 0)) throw std::invalid_argument("ItemKNN: shrink must be >= 0");
  }

  std::string name() const override {
    std::string n = "ItemKNN (top-" + std::to_string(neighbours_);
    if (shrink_ > 0) n += ", shrink " + FormatNumber(shrink_);
    return n + ")";
  }

  void Fit(const EvalData& data, const std::vector<uint32_t>& train, const std::vector<uint32_t>&) override {
    num_items_ = data.num_items;
    user_rows_ = BuildUserRows(data, train);
    const UserRows& rows = user_rows_;

    // Item -> users (the transpose), for co-occurrence counting.
    std::vector<uint32_t> item_offsets(size_t(num_items_) + 1, 0);
    for (uint32_t item : rows.items) ++item_offsets[item + 1];
    std::partial_sum(item_offsets.begin(), item_offsets.end(), item_offsets.begin());
    std::vector<uint32_t> item_users(rows.items.size());
    std::vector<uint32_t> fill(item_offsets.begin(), item_offsets.end() - 1);
    for (uint32_t u = 0; u < data.num_users; ++u) {
      for (size_t k = rows.begin(u); k < rows.end(u); ++k) item_users[fill[rows.items[k]]++] = u;
    }

    // Per item i: co-counts with every item sharing a user (dense scratch + touched list, so the
    // cost is sum over users of |items(u)|^2, not num_items^2), cosine, keep the top neighbours.
    // Kept as i's row; scoring needs the transpose (j -> the items i that kept j), built after.
    std::vector<uint32_t> co(num_items_, 0);
    std::vector<uint32_t> touched;
    std::vector<std::pair<float, uint32_t>> candidates;  // (-sim, j): ascending = best first, low j on ties
    std::vector<std::vector<std::pair<uint32_t, float>>> kept(num_items_);  // i -> (j, sim)
    for (uint32_t i = 0; i < num_items_; ++i) {
      touched.clear();
      for (size_t a = item_offsets[i]; a < item_offsets[i + 1]; ++a) {
        const uint32_t u = item_users[a];
        for (size_t k = rows.begin(u); k < rows.end(u); ++k) {
          const uint32_t j = rows.items[k];
          if (j == i) continue;
          if (co[j]++ == 0) touched.push_back(j);
        }
      }
      candidates.clear();
      const double n_i = double(item_offsets[i + 1] - item_offsets[i]);
      for (uint32_t j : touched) {
        const double n_j = double(item_offsets[j + 1] - item_offsets[j]);
        candidates.emplace_back(-float(co[j] / (std::sqrt(n_i * n_j) + shrink_)), j);
        co[j] = 0;
      }
      const size_t keep = std::min(neighbours_, candidates.size());
      std::partial_sort(candidates.begin(), candidates.begin() + keep, candidates.end());
      kept[i].reserve(keep);
      for (size_t k = 0; k < keep; ++k) kept[i].emplace_back(candidates[k].second, -candidates[k].first);
    }

    reverse_offsets_.assign(size_t(num_items_) + 1, 0);
    for (const auto& row : kept) {
      for (const auto& [j, sim] : row) ++reverse_offsets_[j + 1];
    }
    std::partial_sum(reverse_offsets_.begin(), reverse_offsets_.end(), reverse_offsets_.begin());
    reverse_.resize(reverse_offsets_.back());
    fill.assign(reverse_offsets_.begin(), reverse_offsets_.end() - 1);
    for (uint32_t i = 0; i < num_items_; ++i) {
      for (const auto& [j, sim] : kept[i]) reverse_[fill[j]++] = {i, sim};
    }
  }

  void ScoreUser(uint32_t user, std::vector<float>* scores) const override {
    scores->assign(num_items_, 0.0f);
    for (size_t k = user_rows_.begin(user); k < user_rows_.end(user); ++k) {
      const uint32_t j = user_rows_.items[k];
      for (uint32_t r = reverse_offsets_[j]; r < reverse_offsets_[j + 1]; ++r) {
        (*scores)[reverse_[r].first] += reverse_[r].second;
      }
    }
  }

 private:
  size_t neighbours_;                                    ///< top-k similar items kept per item
  double shrink_;                                        ///< added to the cosine's denominator
  uint32_t num_items_ = 0;                               ///< scores' length
  UserRows user_rows_;                                   ///< each user's training items
  std::vector<uint32_t> reverse_offsets_;                ///< j's entries are reverse_[reverse_offsets_[j] ..]
  std::vector<std::pair<uint32_t, float>> reverse_;      ///< (i, sim(i, j)) for each i that kept j
};

// ---------------------------------------------------------------------------------------------

class BprMf : public Baseline {
 public:
  BprMf(uint32_t factors, uint64_t seed) : factors_(std::max<uint32_t>(factors, 1)), seed_(seed) {}

  std::string name() const override { return "BPR-MF"; }

  void Fit(const EvalData& data, const std::vector<uint32_t>& train, const std::vector<uint32_t>& valid) override {
    CheckIndices(data, valid, "valid");
    num_items_ = data.num_items;
    const UserRows rows = BuildUserRows(data, train);
    SplitMix64 rng(seed_);

    // Uniform init with std 0.1. Much smaller and the factors need many epochs to outgrow the
    // item biases, so validation recall sits on a popularity plateau and patience stops training
    // before any personalisation (seen on Last.FM-sized synthetic data); much larger is noise.
    user_factors_.resize(size_t(data.num_users) * factors_);
    item_factors_.resize(size_t(num_items_) * factors_);
    for (float& v : user_factors_) v = kInitScale * (2.0f * rng.UniformFloat() - 1.0f);
    for (float& v : item_factors_) v = kInitScale * (2.0f * rng.UniformFloat() - 1.0f);
    item_bias_.assign(num_items_, 0.0f);

    const ValidationSet validation = SampleValidation(data, rows, valid, &rng);
    const bool early_stopping = !validation.users.empty();
    const int max_epochs = early_stopping ? kMaxEpochs : kEpochsWithoutValid;

    // Training pairs in user-sorted order (from rows), so the draws depend on the seed, not on `train`'s order.
    std::vector<uint32_t> pair_user(rows.items.size());
    for (uint32_t u = 0; u < data.num_users; ++u) {
      for (size_t k = rows.begin(u); k < rows.end(u); ++k) pair_user[k] = u;
    }

    double best_recall = -1.0;
    int since_best = 0;
    std::vector<float> best_users, best_items, best_bias;
    std::vector<float> old_user(factors_);
    for (int epoch = 0; epoch < max_epochs && !rows.items.empty() && num_items_ > 1; ++epoch) {
      for (size_t step = 0; step < rows.items.size(); ++step) {
        const size_t k = rng.Below(rows.items.size());
        const uint32_t u = pair_user[k];
        const uint32_t i = rows.items[k];
        uint32_t j = 0;
        if (!DrawNegative(rows, u, &rng, &j)) continue;
        float* pu = &user_factors_[size_t(u) * factors_];
        float* qi = &item_factors_[size_t(i) * factors_];
        float* qj = &item_factors_[size_t(j) * factors_];
        const float x = item_bias_[i] - item_bias_[j] + Dot(pu, qi, factors_) - Dot(pu, qj, factors_);
        const float g = 1.0f / (1.0f + std::exp(x));  // d/dx log sigmoid(x) = sigmoid(-x)
        std::copy(pu, pu + factors_, old_user.begin());
        for (uint32_t f = 0; f < factors_; ++f) {
          pu[f] += kLearningRate * (g * (qi[f] - qj[f]) - kL2 * pu[f]);
          qi[f] += kLearningRate * (g * old_user[f] - kL2 * qi[f]);
          qj[f] += kLearningRate * (-g * old_user[f] - kL2 * qj[f]);
        }
        item_bias_[i] += kLearningRate * (g - kL2 * item_bias_[i]);
        item_bias_[j] += kLearningRate * (-g - kL2 * item_bias_[j]);
      }
      // Sparse catalogues need many cheap epochs (an epoch is one pass over the training pairs,
      // few updates per item); validating every kValidateEvery epochs keeps the checks cheap.
      if (!early_stopping || (epoch + 1) % kValidateEvery != 0) continue;
      const double recall = ValidationRecall(rows, validation);
      if (recall > best_recall) {
        best_recall = recall;
        since_best = 0;
        best_users = user_factors_;
        best_items = item_factors_;
        best_bias = item_bias_;
      } else if (++since_best >= kPatience) {
        break;
      }
    }
    if (early_stopping && !best_users.empty()) {
      user_factors_ = std::move(best_users);
      item_factors_ = std::move(best_items);
      item_bias_ = std::move(best_bias);
    }
  }

  void ScoreUser(uint32_t user, std::vector<float>* scores) const override {
    scores->resize(num_items_);
    const float* pu = &user_factors_[size_t(user) * factors_];
    for (uint32_t i = 0; i < num_items_; ++i) {
      const float* qi = &item_factors_[size_t(i) * factors_];
      (*scores)[i] = item_bias_[i] + Dot(pu, qi, factors_);
    }
  }

 private:
  static constexpr float kLearningRate = 0.05f;
  static constexpr float kL2 = 1e-4f;
  static constexpr float kInitScale = 0.17f;       ///< uniform in [-0.17, 0.17]: std 0.1
  static constexpr int kMaxEpochs = 400;
  static constexpr int kValidateEvery = 5;         ///< epochs between validation checks
  static constexpr int kPatience = 4;              ///< checks without a better validation recall before stopping
  static constexpr int kEpochsWithoutValid = 30;   ///< fixed budget when there is nothing to stop on
  static constexpr size_t kValidationUsers = 500;  ///< users sampled for the per-epoch check (speed)
  static constexpr size_t kTopK = 20;

  // The users the per-epoch validation looks at, with their validation items.
  struct ValidationSet {
    std::vector<uint32_t> users;                 ///< sampled users with >= 1 validation item
    std::vector<std::vector<uint32_t>> items;    ///< per sampled user: validation items, sorted
  };

  ValidationSet SampleValidation(const EvalData& data, const UserRows& rows, const std::vector<uint32_t>& valid,
                                 SplitMix64* rng) const {
    std::vector<std::vector<uint32_t>> by_user(data.num_users);
    for (uint32_t index : valid) {
      const Interaction& x = data.interactions[index];
      // An item already in training is masked out of the ranking, so it could never be a hit.
      if (!std::binary_search(rows.items.begin() + rows.begin(x.user), rows.items.begin() + rows.end(x.user), x.item)) {
        by_user[x.user].push_back(x.item);
      }
    }
    std::vector<uint32_t> candidates;
    for (uint32_t u = 0; u < data.num_users; ++u) {
      if (!by_user[u].empty()) candidates.push_back(u);
    }
    // The first kValidationUsers entries become a uniform sample.
    PartialShuffle(candidates.begin(), candidates.end(), kValidationUsers, *rng);
    candidates.resize(std::min(kValidationUsers, candidates.size()));
    std::sort(candidates.begin(), candidates.end());
    ValidationSet set;
    set.users = candidates;
    for (uint32_t u : candidates) {
      std::sort(by_user[u].begin(), by_user[u].end());
      set.items.push_back(std::move(by_user[u]));
    }
    return set;
  }

  // Mean over the sampled users of |top-20 (training items masked) ∩ valid(u)| / |valid(u)|.
  double ValidationRecall(const UserRows& rows, const ValidationSet& set) const {
    std::vector<float> scores;
    std::vector<uint32_t> order(num_items_);
    double total = 0.0;
    for (size_t s = 0; s < set.users.size(); ++s) {
      const uint32_t u = set.users[s];
      ScoreUser(u, &scores);
      for (size_t k = rows.begin(u); k < rows.end(u); ++k) scores[rows.items[k]] = -INFINITY;
      std::iota(order.begin(), order.end(), 0u);
      const size_t top = std::min<size_t>(kTopK, order.size());
      std::partial_sort(order.begin(), order.begin() + top, order.end(), [&](uint32_t a, uint32_t b) {
        return scores[a] != scores[b] ? scores[a] > scores[b] : a < b;
      });
      size_t hits = 0;
      const auto& relevant = set.items[s];
      for (size_t k = 0; k < top; ++k) {
        if (scores[order[k]] != -INFINITY && std::binary_search(relevant.begin(), relevant.end(), order[k])) ++hits;
      }
      total += double(hits) / double(set.items[s].size());
    }
    return total / double(set.users.size());
  }

  // Uniform item the user has not interacted with in training. Rejection sampling: users hold a
  // tiny share of the catalogue, so it almost always succeeds at once; gives up (false) after a
  // bounded number of tries so a user who has played everything cannot stall training.
  bool DrawNegative(const UserRows& rows, uint32_t user, SplitMix64* rng, uint32_t* item) const {
    const auto first = rows.items.begin() + rows.begin(user);
    const auto last = rows.items.begin() + rows.end(user);
    for (int attempt = 0; attempt < 64; ++attempt) {
      const uint32_t j = uint32_t(rng->Below(num_items_));
      if (!std::binary_search(first, last, j)) {
        *item = j;
        return true;
      }
    }
    return false;
  }

  uint32_t factors_;                  ///< latent dimensions
  uint64_t seed_;                     ///< seeds init, pair and negative draws, validation sample
  uint32_t num_items_ = 0;            ///< scores' length
  std::vector<float> user_factors_;   ///< num_users x factors_, row-major
  std::vector<float> item_factors_;   ///< num_items x factors_, row-major
  std::vector<float> item_bias_;      ///< per item: popularity-like offset shared by all users
};

// ---------------------------------------------------------------------------------------------

class AttributePopularity : public Baseline {
 public:
  std::string name() const override { return "AttributePopularity"; }

  void Fit(const EvalData& data, const std::vector<uint32_t>& train, const std::vector<uint32_t>&) override {
    CheckIndices(data, train, "train");
    const auto entities = CleanEntities(data);
    std::vector<double> popularity(data.num_entities, 0.0);
    for (uint32_t index : train) {
      for (uint32_t e : entities[data.interactions[index].item]) popularity[e] += 1.0;
    }
    scores_.assign(data.num_items, 0.0f);
    for (uint32_t i = 0; i < data.num_items; ++i) {
      double s = 0.0;
      for (uint32_t e : entities[i]) s += popularity[e];
      scores_[i] = float(s);
    }
  }

  void ScoreUser(uint32_t, std::vector<float>* scores) const override { *scores = scores_; }

 private:
  std::vector<float> scores_;  ///< per item: summed popularity of its entities (user-independent)
};

// ---------------------------------------------------------------------------------------------

class KgOverlap : public Baseline {
 public:
  std::string name() const override { return "KGOverlap"; }

  void Fit(const EvalData& data, const std::vector<uint32_t>& train, const std::vector<uint32_t>&) override {
    num_items_ = data.num_items;
    user_rows_ = BuildUserRows(data, train);
    item_entities_ = CleanEntities(data);
    // Entity -> items, so a user's score touches only the items sharing an entity with their history.
    entity_offsets_.assign(size_t(data.num_entities) + 1, 0);
    for (const auto& row : item_entities_) {
      for (uint32_t e : row) ++entity_offsets_[e + 1];
    }
    std::partial_sum(entity_offsets_.begin(), entity_offsets_.end(), entity_offsets_.begin());
    entity_items_.resize(entity_offsets_.back());
    std::vector<uint32_t> fill(entity_offsets_.begin(), entity_offsets_.end() - 1);
    for (uint32_t i = 0; i < num_items_; ++i) {
      for (uint32_t e : item_entities_[i]) entity_items_[fill[e]++] = i;
    }
  }

  // sum_j w(u,j) |E(i) ∩ E(j)| = sum over e in E(i) of W_u(e), W_u(e) = sum of w(u,j) over u's
  // items j linked to e: gather W_u sparsely, then scatter it over each entity's items.
  void ScoreUser(uint32_t user, std::vector<float>* scores) const override {
    scores->assign(num_items_, 0.0f);
    std::vector<std::pair<uint32_t, float>> weights;  // (entity, w), merged below
    for (size_t k = user_rows_.begin(user); k < user_rows_.end(user); ++k) {
      const float w = DampedWeight(user_rows_.weights[k]);
      for (uint32_t e : item_entities_[user_rows_.items[k]]) weights.emplace_back(e, w);
    }
    std::sort(weights.begin(), weights.end());
    for (size_t a = 0; a < weights.size();) {
      const uint32_t e = weights[a].first;
      float w = 0.0f;
      for (; a < weights.size() && weights[a].first == e; ++a) w += weights[a].second;
      for (uint32_t r = entity_offsets_[e]; r < entity_offsets_[e + 1]; ++r) (*scores)[entity_items_[r]] += w;
    }
  }

 private:
  uint32_t num_items_ = 0;                            ///< scores' length
  UserRows user_rows_;                                ///< each user's training items and weights
  std::vector<std::vector<uint32_t>> item_entities_;  ///< per item: its entities, sorted, unique
  std::vector<uint32_t> entity_offsets_;              ///< e's items are entity_items_[entity_offsets_[e] ..]
  std::vector<uint32_t> entity_items_;                ///< items per entity
};

// ---------------------------------------------------------------------------------------------

class TextKnn : public Baseline {
 public:
  std::string name() const override { return "TextKNN"; }

  void Fit(const EvalData& data, const std::vector<uint32_t>& train, const std::vector<uint32_t>&) override {
    num_items_ = data.num_items;
    user_rows_ = BuildUserRows(data, train);
    // Unit rows in one dense block: cosine becomes a dot product, and scoring streams memory once.
    const auto text = data.modalities.find("text");
    dim_ = text == data.modalities.end() ? 0 : size_t(text->second.dim);
    unit_text_.assign(size_t(num_items_) * dim_, 0.0f);
    has_text_.assign(num_items_, 0);
    if (dim_ == 0) return;
    const ModalityMatrix& m = text->second;
    if (m.values.size() != size_t(num_items_) * dim_ || m.present.size() != num_items_) {
      throw std::invalid_argument("the text modality has " + std::to_string(m.present.size()) +
                                  " rows, expected num_items = " + std::to_string(num_items_));
    }
    for (uint32_t i = 0; i < num_items_; ++i) {
      if (!m.present[i]) continue;
      const float* row = m.Row(i);
      double norm = 0.0;
      for (size_t d = 0; d < dim_; ++d) norm += double(row[d]) * row[d];
      if (norm <= 0.0) continue;  // a zero vector has no direction: treated as no text
      const float inv = float(1.0 / std::sqrt(norm));
      for (size_t d = 0; d < dim_; ++d) unit_text_[i * dim_ + d] = row[d] * inv;
      has_text_[i] = 1;
    }
  }

  void ScoreUser(uint32_t user, std::vector<float>* scores) const override {
    // The mean's scale does not change a cosine, so the weighted sum of unit vectors is enough.
    std::vector<float> profile(dim_, 0.0f);
    for (size_t k = user_rows_.begin(user); k < user_rows_.end(user); ++k) {
      const uint32_t j = user_rows_.items[k];
      if (!has_text_[j]) continue;
      const float w = DampedWeight(user_rows_.weights[k]);
      const float* t = &unit_text_[size_t(j) * dim_];
      for (size_t d = 0; d < dim_; ++d) profile[d] += w * t[d];
    }
    double norm = 0.0;
    for (float v : profile) norm += double(v) * v;
    const float inv = norm > 0.0 ? float(1.0 / std::sqrt(norm)) : 0.0f;
    for (float& v : profile) v *= inv;
    scores->resize(num_items_);
    for (uint32_t i = 0; i < num_items_; ++i) {
      if (!has_text_[i]) {
        (*scores)[i] = kUnscorable;
        continue;
      }
      (*scores)[i] = Dot(profile.data(), &unit_text_[size_t(i) * dim_], dim_);
    }
  }

 private:
  uint32_t num_items_ = 0;          ///< scores' length
  size_t dim_ = 0;                  ///< text vector length (0 when no item has text)
  UserRows user_rows_;              ///< each user's training items and weights
  std::vector<float> unit_text_;    ///< num_items x dim_, unit-normalised, zero rows for no text
  std::vector<uint8_t> has_text_;   ///< per item: 1 when it has a usable text vector
};


// ---------------------------------------------------------------------------------------------

class Ease : public Baseline {
 public:
  Ease(double lambda, EaseSolve solve) : lambda_(lambda), solve_(solve) {
    if (!(lambda > 0)) throw std::invalid_argument("EASE: lambda must be > 0");
  }

  std::string name() const override { return "EASE"; }

  void Fit(const EvalData& data, const std::vector<uint32_t>& train, const std::vector<uint32_t>&) override {
    num_users_ = data.num_users;
    num_items_ = data.num_items;
    user_rows_ = BuildUserRows(data, train);
    users_space_ = solve_ == EaseSolve::kUsers || (solve_ == EaseSolve::kAuto && num_users_ < num_items_);
    dense_.clear();
    dense_.shrink_to_fit();
    kernel_.clear();
    kernel_.shrink_to_fit();
    if (users_space_) {
      FitUsers();
    } else {
      FitItems();
    }
  }

  void ScoreUser(uint32_t user, std::vector<float>* scores) const override {
    scores->assign(num_items_, 0.0f);
    if (!users_space_) {
      // x_u B: the sum of B's rows of u's training items.
      for (size_t k = user_rows_.begin(user); k < user_rows_.end(user); ++k) {
        const float* row = &dense_[size_t(user_rows_.items[k]) * num_items_];
        for (uint32_t j = 0; j < num_items_; ++j) (*scores)[j] += row[j];
      }
      return;
    }
    // x_u B = x_u - (x_u P) diag(1 / diag P), and x_u P = K_u X (K = (X X^T + lambda I)^-1).
    std::vector<double> t(num_items_, 0.0);
    const double* k_row = &kernel_[size_t(user) * num_users_];
    for (uint32_t v = 0; v < num_users_; ++v) {
      const double w = k_row[v];
      for (size_t k = user_rows_.begin(v); k < user_rows_.end(v); ++k) t[user_rows_.items[k]] += w;
    }
    for (uint32_t j = 0; j < num_items_; ++j) (*scores)[j] = float(-t[j] / diag_p_[j]);
    for (size_t k = user_rows_.begin(user); k < user_rows_.end(user); ++k) (*scores)[user_rows_.items[k]] += 1.0f;
  }

 private:
  // Item space: G = X^T X + lambda I (float32, dense), P = G^-1 by Cholesky, then B in place.
  void FitItems() {
    const size_t n = num_items_;
    dense_.assign(n * n, 0.0f);
    for (uint32_t u = 0; u < num_users_; ++u) {
      for (size_t a = user_rows_.begin(u); a < user_rows_.end(u); ++a) {
        float* row = &dense_[size_t(user_rows_.items[a]) * n];
        for (size_t b = user_rows_.begin(u); b < user_rows_.end(u); ++b) row[user_rows_.items[b]] += 1.0f;
      }
    }
    for (size_t i = 0; i < n; ++i) dense_[i * n + i] += float(lambda_);
    if (n > 0) Invert(dense_.data(), n);
    // B(i, j) = -P(i, j) / P(j, j) for i != j, B(j, j) = 0.
    std::vector<float> inv_diag(n);
    for (size_t j = 0; j < n; ++j) inv_diag[j] = 1.0f / dense_[j * n + j];
    for (size_t i = 0; i < n; ++i) {
      float* row = &dense_[i * n];
      for (size_t j = 0; j < n; ++j) row[j] = -row[j] * inv_diag[j];
      row[i] = 0.0f;
    }
  }

  // User space: K = (X X^T + lambda I)^-1 (float64), diag(P)_j = (1 - x_j^T K x_j) / lambda with
  // x_j item j's column, from P = (I - X^T K X) / lambda (Woodbury).
  void FitUsers() {
    const size_t m = num_users_;
    const ItemColumns cols = BuildItemColumns(user_rows_, num_users_, num_items_);
    kernel_.assign(m * m, 0.0);
    for (uint32_t j = 0; j < num_items_; ++j) {
      for (size_t a = cols.begin(j); a < cols.end(j); ++a) {
        double* row = &kernel_[size_t(cols.users[a]) * m];
        for (size_t b = cols.begin(j); b < cols.end(j); ++b) row[cols.users[b]] += 1.0;
      }
    }
    for (size_t u = 0; u < m; ++u) kernel_[u * m + u] += lambda_;
    if (m > 0) Invert(kernel_.data(), m);
    diag_p_.assign(num_items_, 0.0);
    for (uint32_t j = 0; j < num_items_; ++j) {
      double quad = 0.0;
      for (size_t a = cols.begin(j); a < cols.end(j); ++a) {
        const double* row = &kernel_[size_t(cols.users[a]) * m];
        for (size_t b = cols.begin(j); b < cols.end(j); ++b) quad += row[cols.users[b]];
      }
      diag_p_[j] = (1.0 - quad) / lambda_;
    }
  }

  // Inverts the symmetric positive definite n x n matrix `a` in place (both triangles).
  template <typename T>
  static void Invert(T* a, size_t n) {
    if (n > size_t(INT32_MAX) / n) throw std::runtime_error("EASE: matrix too large for LAPACK's int indices");
    const int size = int(n);
    int info = 0;
    const char uplo = 'L';  // column-major lower = row-major upper
    if constexpr (std::is_same_v<T, float>) {
      spotrf_(&uplo, &size, a, &size, &info);
      if (info == 0) spotri_(&uplo, &size, a, &size, &info);
    } else {
      dpotrf_(&uplo, &size, a, &size, &info);
      if (info == 0) dpotri_(&uplo, &size, a, &size, &info);
    }
    if (info != 0) throw std::runtime_error("EASE: LAPACK potrf/potri failed, info " + std::to_string(info));
    // Row-major upper triangle holds the inverse: mirror it into the lower one.
    for (size_t i = 0; i < n; ++i) {
      for (size_t j = 0; j < i; ++j) a[i * n + j] = a[j * n + i];
    }
  }

  double lambda_;                   ///< L2 weight on B
  EaseSolve solve_;                 ///< which side to factor
  bool users_space_ = false;        ///< the side the last Fit factored
  uint32_t num_users_ = 0;
  uint32_t num_items_ = 0;          ///< scores' length
  UserRows user_rows_;              ///< each user's training items
  std::vector<float> dense_;        ///< item space: B, num_items^2, row-major
  std::vector<double> kernel_;      ///< user space: K = (X X^T + lambda I)^-1, num_users^2
  std::vector<double> diag_p_;      ///< user space: diag(P), per item
};

// ---------------------------------------------------------------------------------------------

class Rp3Beta : public Baseline {
 public:
  Rp3Beta(double alpha, double beta, size_t neighbours) : alpha_(alpha), beta_(beta), neighbours_(neighbours) {
    if (neighbours == 0) throw std::invalid_argument("RP3beta: neighbours must be > 0");
  }

  std::string name() const override { return "RP3beta"; }

  void Fit(const EvalData& data, const std::vector<uint32_t>& train, const std::vector<uint32_t>&) override {
    num_items_ = data.num_items;
    user_rows_ = BuildUserRows(data, train);
    const UserRows& rows = user_rows_;
    const ItemColumns cols = BuildItemColumns(rows, data.num_users, num_items_);
    // P(j|u)^alpha per user, P(u|i)^alpha and the popularity penalty |U(j)|^-beta per item.
    std::vector<double> user_step(data.num_users, 0.0);
    for (uint32_t u = 0; u < data.num_users; ++u) {
      const size_t d = rows.end(u) - rows.begin(u);
      if (d > 0) user_step[u] = std::pow(1.0 / double(d), alpha_);
    }
    std::vector<double> item_step(num_items_, 0.0), penalty(num_items_, 0.0);
    for (uint32_t i = 0; i < num_items_; ++i) {
      const size_t p = cols.count(i);
      if (p == 0) continue;
      item_step[i] = std::pow(1.0 / double(p), alpha_);
      penalty[i] = std::pow(double(p), -beta_);
    }

    offsets_.assign(size_t(num_items_) + 1, 0);
    neighbours_of_.clear();
    std::vector<double> acc(num_items_, 0.0);
    std::vector<uint32_t> touched;
    std::vector<std::pair<double, uint32_t>> candidates;  // (-W, j): ascending = best first, low j on ties
    for (uint32_t i = 0; i < num_items_; ++i) {
      touched.clear();
      for (size_t a = cols.begin(i); a < cols.end(i); ++a) {
        const uint32_t u = cols.users[a];
        for (size_t k = rows.begin(u); k < rows.end(u); ++k) {
          const uint32_t j = rows.items[k];
          if (acc[j] == 0.0) touched.push_back(j);
          acc[j] += user_step[u];
        }
      }
      candidates.clear();
      for (uint32_t j : touched) {
        if (j != i) candidates.emplace_back(-(item_step[i] * acc[j] * penalty[j]), j);
        acc[j] = 0.0;
      }
      const size_t keep = std::min(neighbours_, candidates.size());
      std::partial_sort(candidates.begin(), candidates.begin() + keep, candidates.end());
      for (size_t k = 0; k < keep; ++k) neighbours_of_.emplace_back(candidates[k].second, float(-candidates[k].first));
      offsets_[i + 1] = neighbours_of_.size();
    }
  }

  void ScoreUser(uint32_t user, std::vector<float>* scores) const override {
    scores->assign(num_items_, 0.0f);
    for (size_t k = user_rows_.begin(user); k < user_rows_.end(user); ++k) {
      const uint32_t i = user_rows_.items[k];
      for (size_t r = offsets_[i]; r < offsets_[i + 1]; ++r) (*scores)[neighbours_of_[r].first] += neighbours_of_[r].second;
    }
  }

 private:
  double alpha_;                                          ///< exponent on the transition probabilities
  double beta_;                                           ///< popularity penalty exponent
  size_t neighbours_;                                     ///< top-k kept per item row
  uint32_t num_items_ = 0;                                ///< scores' length
  UserRows user_rows_;                                    ///< each user's training items
  std::vector<size_t> offsets_;                           ///< item i's row is neighbours_of_[offsets_[i] ..]
  std::vector<std::pair<uint32_t, float>> neighbours_of_; ///< (j, W(i, j)), best first
};

// ---------------------------------------------------------------------------------------------

// The warm protocol on the validation split: candidates are the items not in the user's training set.
RankingMetrics MeasureOnValidation(const Baseline& model, uint32_t num_items, const UserRows& rows,
                                   const std::vector<std::vector<uint32_t>>& relevant) {
  return RankUsers(
      model, uint32_t(relevant.size()),
      [&](uint32_t u, std::vector<uint32_t>* candidates) {
        candidates->clear();
        size_t s = rows.begin(u);
        for (uint32_t i = 0; i < num_items; ++i) {
          while (s < rows.end(u) && rows.items[s] < i) ++s;
          if (s < rows.end(u) && rows.items[s] == i) continue;
          candidates->push_back(i);
        }
      },
      [&](uint32_t u) -> const std::vector<uint32_t>& { return relevant[u]; });
}

class Blend : public Baseline {
 public:
  Blend(std::string name, const Baseline* first, const Baseline* second, std::vector<double> weights)
      : name_(std::move(name)), first_(first), second_(second), weights_(std::move(weights)) {
    if (weights_.empty()) throw std::invalid_argument("MakeBlend: the weights of '" + name_ + "' are empty");
  }

  std::string name() const override { return name_; }

  void Fit(const EvalData& data, const std::vector<uint32_t>& train, const std::vector<uint32_t>& valid) override {
    CheckIndices(data, valid, "valid");
    tuning_ = Tuning{};
    weight_ = weights_.front();
    const UserRows rows = BuildUserRows(data, train);
    std::vector<std::vector<uint32_t>> relevant(data.num_users);
    for (uint32_t index : valid) relevant[data.interactions[index].user].push_back(data.interactions[index].item);
    double best_recall = -1.0;
    for (size_t g = 0; g < weights_.size(); ++g) {
      weight_ = weights_[g];
      const RankingMetrics r = valid.empty() ? RankingMetrics{} : MeasureOnValidation(*this, data.num_items, rows, relevant);
      tuning_.grid.push_back({"weight=" + FormatNumber(weights_[g]), r.recall20, r.ndcg20});
      if (r.recall20 > best_recall) {
        best_recall = r.recall20;
        tuning_.chosen = g;
      }
      if (valid.empty()) break;
    }
    weight_ = weights_[tuning_.chosen];
    fitted_ = true;
  }

  void ScoreUser(uint32_t user, std::vector<float>* scores) const override {
    std::vector<float> second;
    first_->ScoreUser(user, scores);
    Standardise(scores);
    if (weight_ == 0) return;
    second_->ScoreUser(user, &second);
    Standardise(&second);
    for (size_t i = 0; i < scores->size(); ++i) (*scores)[i] += float(weight_) * second[i];
  }

  const Tuning* tuning() const override { return fitted_ ? &tuning_ : nullptr; }

 private:
  std::string name_;
  const Baseline* first_;
  const Baseline* second_;
  std::vector<double> weights_;  ///< candidates, in the order tried
  double weight_ = 0;            ///< the chosen one (during Fit: the one measured)
  bool fitted_ = false;
  Tuning tuning_;
};

class Tuned : public Baseline {
 public:
  Tuned(std::string name, std::vector<GridCandidate> grid) : name_(std::move(name)), grid_(std::move(grid)) {
    if (grid_.empty()) throw std::invalid_argument("MakeTuned: the grid of '" + name_ + "' is empty");
  }

  std::string name() const override { return name_; }

  void Fit(const EvalData& data, const std::vector<uint32_t>& train, const std::vector<uint32_t>& valid) override {
    CheckIndices(data, valid, "valid");
    best_.reset();
    tuning_ = Tuning{};
    if (valid.empty()) {
      best_ = grid_.front().make();
      best_->Fit(data, train, valid);
      tuning_.grid.push_back({grid_.front().setting, 0, 0});
      return;
    }
    const UserRows rows = BuildUserRows(data, train);
    std::vector<std::vector<uint32_t>> relevant(data.num_users);
    for (uint32_t index : valid) relevant[data.interactions[index].user].push_back(data.interactions[index].item);
    double best_recall = -1.0;
    for (size_t g = 0; g < grid_.size(); ++g) {
      std::unique_ptr<Baseline> model = grid_[g].make();
      model->Fit(data, train, valid);
      const RankingMetrics r = MeasureOnValidation(*model, data.num_items, rows, relevant);
      tuning_.grid.push_back({grid_[g].setting, r.recall20, r.ndcg20});
      if (r.recall20 > best_recall) {
        best_recall = r.recall20;
        best_ = std::move(model);  // the previous best is freed here
        tuning_.chosen = g;
      }
    }
  }

  void ScoreUser(uint32_t user, std::vector<float>* scores) const override {
    if (!best_) throw std::logic_error(name_ + ": ScoreUser before Fit");
    best_->ScoreUser(user, scores);
  }

  const Tuning* tuning() const override { return best_ ? &tuning_ : nullptr; }

 private:
  std::string name_;                   ///< row name
  std::vector<GridCandidate> grid_;    ///< the candidates, in the order tried
  std::unique_ptr<Baseline> best_;     ///< the chosen candidate, fitted on train
  Tuning tuning_;                      ///< the last Fit's grid and choice
};

}  // namespace

RankingMetrics RankUsers(const Baseline& model, uint32_t num_users,
                         const std::function<void(uint32_t, std::vector<uint32_t>*)>& candidates,
                         const std::function<const std::vector<uint32_t>&(uint32_t)>& relevant,
                         std::vector<double>* per_user_recall20) {
  if (per_user_recall20) per_user_recall20->assign(num_users, std::nan(""));
  const unsigned threads = std::max(1u, std::thread::hardware_concurrency());
  std::vector<RankingEvaluator> parts(threads);
  std::vector<std::thread> pool;
  for (unsigned t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      std::vector<float> scores;
      std::vector<uint32_t> list;
      for (uint32_t u = t; u < num_users; u += threads) {
        const std::vector<uint32_t>& rel = relevant(u);
        if (rel.empty()) continue;
        candidates(u, &list);
        model.ScoreUser(u, &scores);
        parts[t].AddUser(scores, list, rel);
        if (per_user_recall20) (*per_user_recall20)[u] = parts[t].LastRecall(20);  // each thread its own users
      }
    });
  }
  for (auto& th : pool) th.join();
  return RankingEvaluator::Merge(parts).Result();
}

void Standardise(std::vector<float>* scores) {
  double sum = 0, squares = 0;
  for (float x : *scores) sum += x;
  const double mean = scores->empty() ? 0 : sum / double(scores->size());
  for (float x : *scores) squares += (x - mean) * (x - mean);
  const double sd = scores->empty() ? 0 : std::sqrt(squares / double(scores->size()));
  for (float& x : *scores) x = sd > 0 ? float((x - mean) / sd) : 0.0f;
}

std::unique_ptr<Baseline> MakeMostPopular() { return std::make_unique<MostPopular>(); }
std::unique_ptr<Baseline> MakeItemKnn(size_t neighbours, double shrink) {
  return std::make_unique<ItemKnn>(neighbours, shrink);
}
std::unique_ptr<Baseline> MakeEase(double lambda, EaseSolve solve) { return std::make_unique<Ease>(lambda, solve); }
std::unique_ptr<Baseline> MakeRp3Beta(double alpha, double beta, size_t neighbours) {
  return std::make_unique<Rp3Beta>(alpha, beta, neighbours);
}
std::unique_ptr<Baseline> MakeBlend(std::string name, const Baseline* first, const Baseline* second,
                                    std::vector<double> weights) {
  return std::make_unique<Blend>(std::move(name), first, second, std::move(weights));
}
std::unique_ptr<Baseline> MakeTuned(std::string name, std::vector<GridCandidate> grid) {
  return std::make_unique<Tuned>(std::move(name), std::move(grid));
}

std::unique_ptr<Baseline> MakeTunedEase() {
  std::vector<GridCandidate> grid;
  for (double lambda : {10.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0}) {
    grid.push_back({"lambda=" + FormatNumber(lambda), [lambda] { return MakeEase(lambda); }});
  }
  return MakeTuned("EASE", std::move(grid));
}

std::unique_ptr<Baseline> MakeTunedRp3Beta() {
  std::vector<GridCandidate> grid;
  for (double alpha : {0.5, 1.0}) {
    for (double beta : {0.0, 0.2, 0.4, 0.6}) {
      for (size_t k : {50, 100, 200}) {
        grid.push_back({"alpha=" + FormatNumber(alpha) + " beta=" + FormatNumber(beta) + " k=" + std::to_string(k),
                        [alpha, beta, k] { return MakeRp3Beta(alpha, beta, k); }});
      }
    }
  }
  return MakeTuned("RP3beta", std::move(grid));
}

std::unique_ptr<Baseline> MakeTunedItemKnn() {
  std::vector<GridCandidate> grid;
  for (size_t k : {50, 100, 200, 500}) {
    for (double shrink : {0.0, 10.0, 50.0, 100.0}) {
      grid.push_back({"k=" + std::to_string(k) + " shrink=" + FormatNumber(shrink),
                      [k, shrink] { return MakeItemKnn(k, shrink); }});
    }
  }
  return MakeTuned("ItemKNN (tuned)", std::move(grid));
}
std::unique_ptr<Baseline> MakeBprMf(uint32_t factors, uint64_t seed) { return std::make_unique<BprMf>(factors, seed); }
std::unique_ptr<Baseline> MakeAttributePopularity() { return std::make_unique<AttributePopularity>(); }
std::unique_ptr<Baseline> MakeKgOverlap() { return std::make_unique<KgOverlap>(); }
std::unique_ptr<Baseline> MakeTextKnn() { return std::make_unique<TextKnn>(); }

}  // namespace mosaic::fusion
