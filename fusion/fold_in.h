// Users from their history: the representation of a user the model was not trained with (or whose
// plays changed since), computed at query time from the items they played against the model's fixed
// item representations. No per-user parameter is needed, so a user who arrives after a rebuild is
// served at once, with no retraining.
//
// It is the fold-in of implicit ALS (Hu, Koren & Volinsky, ICDM 2008) with the item representations
// as the fixed factors: played items pulled toward score 1, every item toward score 0 with weight
// alpha, and a ridge term:
//
//   x = argmin_x  sum_{i in P} (1 - x.v_i)^2 + |P| alpha x^T G x + |P| lambda s |x|^2
//     = (V_P^T V_P + |P| (alpha G + lambda s I))^-1 V_P^T 1
//
// with G = (1/n) sum_j v_j v_j^T over all n items and s = trace(G) / dim. Both terms scale with |P|
// and with the representations' scale, so alpha and lambda are dimensionless: the same values suit
// a user with 3 plays or 3,000, and any model. A ranking depends only on x's direction.
//
// Plain arrays and LAPACK (no LibTorch), like the baselines.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "fusion/baselines.h"

namespace mosaic::fusion {

struct FoldInSettings {
  double alpha = 1.0;   ///< weight of "every item scores 0" against "played items score 1"
  double lambda = 0.1;  ///< ridge, relative to the representations' mean squared norm per dimension
};

// The settings tried when they are chosen on held-out plays (TuneFoldIn), in this order.
std::vector<FoldInSettings> FoldInGrid();

class UserFoldIn {
 public:
  // `items`: row-major [num_items, dim] item representations, not copied: they must outlive the
  // fold-in (User and Item read them). Computes G once (O(n dim^2)).
  UserFoldIn(const float* items, size_t num_items, size_t dim, FoldInSettings settings = {});

  size_t dim() const { return dim_; }
  size_t num_items() const { return num_items_; }
  const FoldInSettings& settings() const { return settings_; }
  void set_settings(const FoldInSettings& s) { settings_ = s; }

  // The representation of a user who played `played` (indices < num_items; repeats count once),
  // [dim]. All zeros for an empty history. Thread-safe (const, no shared scratch). Throws
  // std::invalid_argument for an index out of range.
  std::vector<float> User(const std::vector<uint32_t>& played) const;

  // The same from the played items' representations themselves, row-major [count, dim] (items the
  // model was not trained with, placed since, included; each row once).
  std::vector<float> FromRows(const float* rows, size_t count) const;

  // Row `item` of the representations given at construction.
  const float* Item(uint32_t item) const { return &items_[size_t(item) * dim_]; }

 private:
  size_t num_items_, dim_;
  FoldInSettings settings_;
  const float* items_;            // [num_items, dim], the caller's
  std::vector<double> gram_;      // G, [dim, dim]
  double mean_square_ = 0;        // s = trace(G) / dim
};

// Chooses alpha and lambda among FoldInGrid(): for each user with held-out items, the user is folded
// in from `known` and its top 20 over the items not in `known` is compared with `held_out`;
// the setting with the highest mean Recall@20 is kept in *fold_in. known[u] and held_out[u] are
// item indices (users with no held-out item are skipped). Returns the grid with what each point scored
// (valid_ndcg20 is filled too).
Tuning TuneFoldIn(const std::vector<std::vector<uint32_t>>& known, const std::vector<std::vector<uint32_t>>& held_out,
                  UserFoldIn* fold_in);

// The same choice where no validation split exists (a rebuild trains on every play): up to
// `max_users` users (drawn with `seed`) with at least 5 distinct items hold out a fifth of them,
// drawn with `seed`, and are folded in from the rest. interactions_of[u] lists user u's items.
Tuning TuneFoldInOnHeldOutPlays(const std::vector<std::vector<uint32_t>>& interactions_of, uint64_t seed,
                                size_t max_users, UserFoldIn* fold_in);

// A model's ranker with every user folded in from their training interactions instead of their
// trained vector: what a user who arrived after training gets from the model. `trained` must be a
// dot-product model (Baseline::Factors) and fitted before this row's Fit, which chooses alpha and
// lambda on the validation interactions. Named `name`.
std::unique_ptr<Baseline> MakeUsersFromHistory(const Baseline* trained, std::string name);

}  // namespace mosaic::fusion
