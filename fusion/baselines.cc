#include "fusion/baselines.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>
#include <utility>

#include "fusion/random.h"

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
  explicit ItemKnn(size_t neighbours) : neighbours_(neighbours) {}

  std::string name() const override { return "ItemKNN"; }

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
        candidates.emplace_back(-float(co[j] / std::sqrt(n_i * n_j)), j);
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

}  // namespace

std::unique_ptr<Baseline> MakeMostPopular() { return std::make_unique<MostPopular>(); }
std::unique_ptr<Baseline> MakeItemKnn(size_t neighbours) { return std::make_unique<ItemKnn>(neighbours); }
std::unique_ptr<Baseline> MakeBprMf(uint32_t factors, uint64_t seed) { return std::make_unique<BprMf>(factors, seed); }
std::unique_ptr<Baseline> MakeAttributePopularity() { return std::make_unique<AttributePopularity>(); }
std::unique_ptr<Baseline> MakeKgOverlap() { return std::make_unique<KgOverlap>(); }
std::unique_ptr<Baseline> MakeTextKnn() { return std::make_unique<TextKnn>(); }

}  // namespace mosaic::fusion
