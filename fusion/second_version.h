// The model's second version (issue 15) in the form it is served: every score a dot product of a
// user vector computed at query time from the user's plays and a fixed item vector, so that the
// server's item index, HNSW graph, similar-items and audience queries work on it unchanged, and a
// user who arrived after the rebuild (or played since) is served exactly, with no fold-in.
//
// It blends, as `mosaic eval --model-kind v2` measured them:
//   * EASE^R's item-item term (Steck, WWW 2019) for items with plays. Its off-diagonal part has
//     rank at most min(users, items), so it is factored exactly, then cut to `max_ease_rank`:
//     x_u B(., i) = sum over u's items j of W_j . E_i (items u did not play);
//   * the content kernel (fusion/content_kernel.h) for every item: predicted SVD factors Qhat_i and
//     popularity; a user's SVD factors are the sum of their items' Q_j (P = X Q).
// Each part's scores are standardised over the items for the user, as MakeBlend does, and
//   score(u, i) = z_ease(u, i) + v(n_i) z_content(u, i),
//   v(n) = w + (c - w) k / (k + n) for an item with n training plays, v(0) = c,
// w chosen on validation as the blend `mosaic eval` measures; c and k on a pseudo-few-shot hold-out,
// as long as the validation plays lose no more than a tolerance (DropoutNet's point: an item with
// one play is known mostly by its content, and EASE^R's scores of it are noise; the validation plays
// say what lifting such items costs the others). k = 0 keeps w for every item with plays; then c is w, or the grid's smallest
// positive weight where w = 0, so that new items (EASE^R score 0 for all of them) keep the
// content's order.
// An item whose content weight is lifted above w also carries an offset -b (v(n_i) - w), b chosen
// with c and k: the few-play items' order among themselves is theirs, and the offset keeps the lift
// from pushing them above the others' (attempt 5f).
// Item vector, centred over the fitted items so that a dot product is the standardised score itself:
// [E_i - mean E | v (Qhat_i - mean Qhat) | v popz_i | -b (v - w) | 1], v = v(n_i).
// User vector from the played items' projection rows [W_j | Q_j | E_j] ([0 | Qhat_j | 0] for an item
// without plays) and the covariances of both parts; the last column corrects EASE^R's mean and
// spread for the played items' own terms W_j . E_j (B has a zero diagonal), so that the blend is the
// one measured, not an approximation of it (up to the cut of EASE^R's rank).
//
// Plain arrays, LAPACK and BLAS, no store and no LibTorch.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "fusion/baselines.h"
#include "fusion/content_kernel.h"
#include "fusion/eval_data.h"

namespace mosaic::fusion {

// EASE^R's off-diagonal B factored as W E^T, W and E [num_items x rank] row-major: for an item i
// that user u did not play, x_u B(., i) = sum over u's items j of W_j . E_i. Exact at rank
// min(active users, active items); cut to `max_rank` by the top singular directions. Items without
// training interactions have zero rows.
struct EaseFactors {
  uint32_t rank = 0;
  std::vector<float> w;  ///< projection rows
  std::vector<float> e;  ///< item rows
};

// Fits EASE^R at `lambda` on the binary matrix of data.interactions[train] and factors it as above
// (through the users x users system when there are fewer active users than items, else the items x
// items one). Throws std::invalid_argument for lambda <= 0 or max_rank == 0, std::runtime_error when
// LAPACK fails.
EaseFactors FactorEase(const EvalData& data, const std::vector<uint32_t>& train, double lambda, uint32_t max_rank);

struct SecondVersionOptions {
  uint64_t seed = 2026;                 ///< hold-outs
  bool use_kg = true;                   ///< the content kernel may use the KG (validation decides its weight)
  uint32_t max_ease_rank = 512;         ///< where EASE^R's factors are cut (screened on validation)
  uint32_t max_ease_side = 20000;       ///< EASE^R solves a min(users, items)-sized system: refused beyond
  uint32_t max_kernel_items = 20000;    ///< the kernel's Grams are items-with-plays squared: refused beyond
  std::vector<double> blend_weights = {0, 0.05, 0.1, 0.25, 0.5, 1};  ///< w, chosen on validation
  /// The pseudo-few-shot hold-out that chooses c and k: this share of the items with at least 6
  /// plays keeps 0 to 5 of them (uniformly drawn), the rest held out. 0 skips the stage (k = 0).
  double few_play_share = 0.2;
  std::vector<double> few_play_ks = {1, 3, 10, 30};                   ///< k, beside k = 0
  std::vector<double> few_play_weights = {0.1, 0.25, 0.5, 1, 2, 4};   ///< c
  /// b, ascending: per (c, k) the first that keeps the warm plays within the tolerance
  std::vector<double> few_play_offsets = {0, 0.5, 1, 2, 4, 8};
  /// What lifting few-play items may cost the plays that chose w, relative, on Recall@20 and on NDCG@20 alike
  double few_play_warm_tolerance = 0.01;
  /// The stage caches every item's scores per user it measures: at most this many users on each set of
  /// held-out plays (a seeded draw beyond it), so its memory stays bounded for catalogues with many listeners
  uint32_t few_play_max_users = 4000;
  /// The content kernel's grid: 12 (g, w_text, lambda) around the points validation chose most
  /// often in the harness's runs of the full 36 (docs/results.md), a third of its cost, so that a
  /// Last.FM rebuild stays within 5 minutes; the popularity weights and ranks as the full grid's; its
  /// solves in single precision, and so the few-play stage's (the served refit is in double); two
  /// pseudo-cold folds, since one fold's choice varied from run to run (attempt 6, docs/results.md).
  KernelGrid kernel_grid = {{4, 8}, {0.75, 0.9, 1}, {1, 10}, {}, /*single_precision=*/true,
                            /*refit_single_precision=*/false, /*folds=*/2};
  /// Before each stage of the fit (done of total stages) and once at the end (total of total).
  std::function<void(int done, int total, const char* stage)> on_stage;
};

// One (c, k) of the few-play stage, with its b, and what it scored.
struct FewPlayPoint {
  std::string setting;       ///< "k=0", or "k=K c=C b=B"
  double few_recall20 = 0;   ///< the pseudo-few-shot items' held-out plays, ranked among those items
  double warm_recall20 = 0;  ///< the plays that chose w
  double warm_ndcg20 = 0;    ///< the same plays' NDCG@20
};

// The few-play stage's grid, in the order tried (k = 0 first), and the point kept.
struct FewPlayTuning {
  std::vector<FewPlayPoint> grid;
  size_t chosen = 0;
};

// What the fit chose, and what it scored on validation.
struct SecondVersionReport {
  Tuning ease;     ///< lambda
  Tuning content;  ///< the content kernel's grid on its pseudo-cold hold-out
  Tuning blend;    ///< w
  FewPlayTuning few_plays;  ///< c, k and b (empty when skipped)
  double seconds = 0;
  std::vector<std::pair<std::string, double>> stages;  ///< each stage's name and seconds, in order
};

class SecondVersion {
 public:
  uint32_t num_items = 0;
  uint32_t ease_rank = 0;                ///< columns of the EASE^R part
  uint32_t content_rank = 0;             ///< columns of Qhat
  double ease_lambda = 0;
  double blend_weight = 0;               ///< w
  double cold_weight = 0;                ///< c, the content's weight for items without plays (> 0)
  double count_k = 0;                    ///< k: how fast the weight moves from c to w with plays (0: at once)
  double offset_weight = 0;              ///< b: the item offset per unit of lifted weight, -b (v(n) - w)
  bool offset_column = true;             ///< false in records saved before the offset (one column fewer)
  std::vector<float> items;              ///< [num_items x dim()]
  std::vector<float> projection;         ///< [num_items x projection_dim()]: [W_j | Q_j | E_j]
  std::vector<uint8_t> has_plays;        ///< per item: trained with plays (else placed by content alone)
  std::vector<double> ease_covariance;   ///< [ease_rank^2]: of E_i over the fitted items
  std::vector<float> ease_mean;          ///< [ease_rank]: the mean E_i
  std::vector<double> content_covariance;  ///< [(content_rank + 1)^2]: of [Qhat_i | popz_i]
  std::vector<float> content_mean;       ///< [content_rank]: the mean Qhat_i, taken off every item vector
  ContentKernelState content;            ///< places items it was not fitted with

 private:
  // A history's sums and the spreads that standardise its two parts.
  struct UserScales {
    std::vector<double> a, p;   ///< sums of W_j and of Q_j
    double sd_ease = 1, sd_factors = 1, sd_content = 1;
    double mean_shift = 0;      ///< EASE^R's mean over the items less its centred mean, in sd_ease units
  };
  UserScales Scales(const float* rows, size_t count) const;

 public:

  size_t dim() const { return size_t(ease_rank) + content_rank + 2 + (offset_column ? 1 : 0); }
  // v(n): the content's weight in the vector of an item with n training plays.
  double ContentWeight(uint64_t plays) const;
  // The offset column of an item with content weight v: -b (v - w).
  double Offset(double weight) const { return -offset_weight * (weight - blend_weight); }
  size_t projection_dim() const { return 2 * size_t(ease_rank) + content_rank; }

  // The item vector and projection row of an item placed by its content (PlaceByContent's
  // arguments): [-mean E | c (Qhat - mean Qhat) | c popz | -b (c - w) | 1] and [0 | Qhat | 0].
  void Place(const std::vector<const float*>& modality_rows, const std::vector<uint32_t>& kg, std::vector<float>* item,
             std::vector<float>* projection_row) const;

  // A user's vector from the projection rows of their played items (row-major [count x
  // projection_dim()], each item once). Zeros for an empty history. The dot product scores the items
  // the user did not play exactly; a played item's own term W_j . E_j is in it too (B's diagonal is
  // zero, the factors' is not): `own` (optional) receives, per row, what to take off that item's
  // dot product to get its score.
  std::vector<float> User(const float* rows, size_t count, std::vector<double>* own = nullptr) const;

  // How much each played item (a row as User takes them) adds to `item`'s score (an item vector): its
  // EASE^R term and its content term. The score is their sum plus the history's popularity and mean
  // terms and the item's offset, which no single play owns.
  struct Contribution {
    double ease = 0;
    double content = 0;
  };
  std::vector<Contribution> Contributions(const float* rows, size_t count, const float* item) const;

  // Binary serialisation (the version's "weights" record). Load throws std::runtime_error for
  // bytes that are not a whole, consistent model.
  std::string Save() const;
  static SecondVersion Load(const std::string& bytes);
};

// Whether the second version can be fitted on data.interactions[train] in memory: EASE^R's dense
// system (8 bytes times min(users, items with plays) squared) within max_ease_side, and the kernel's
// Grams (items with plays squared) within max_kernel_items. Empty when it fits, else the reason.
// Throws std::invalid_argument for an index, user or item out of range.
std::string SecondVersionFits(const EvalData& data, const std::vector<uint32_t>& train,
                              const SecondVersionOptions& options);

// Fits the second version on data.interactions[train]. `valid` chooses lambda and w; when empty, a
// fifth of the items of each user with at least 5 (drawn with the seed) is held out of `train` for
// the choice, and every model is refitted on the whole of `train` at the chosen points. The content
// kernel chooses its own point on its pseudo-cold hold-out; c and k on a pseudo-few-shot hold-out of
// the plays that fit (both models refitted without it at their chosen points; its plays ranked among
// its items, as the few-shot protocol ranks), among the points that, with the smallest b of the grid
// that does, cost the plays that chose w at most few_play_warm_tolerance of their Recall@20 and
// NDCG@20. Throws
// std::invalid_argument with SecondVersionFits' reason when the data is too large, and as the models
// it fits do.
SecondVersion FitSecondVersion(const EvalData& data, const std::vector<uint32_t>& train,
                               const std::vector<uint32_t>& valid, const SecondVersionOptions& options,
                               SecondVersionReport* report);

// The served second version as a peer of the harness ("Mosaic v2 (served)"): Fit is FitSecondVersion,
// ScoreUser the served dot products (a user from their training items).
std::unique_ptr<Baseline> MakeServedSecondVersion(std::string name, SecondVersionOptions options);

}  // namespace mosaic::fusion
