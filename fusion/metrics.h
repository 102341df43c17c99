// Evaluation metrics: top-K ranking (Recall@K, NDCG@K) for the warm and cold protocols, and AUC,
// F1 and Platt scaling for KGCN's CTR protocol. Deterministic: fixed tie rules, fixed summation
// order, no randomness, so two runs over the same scores print the same numbers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace mosaic::fusion {

// Means over the users evaluated (those with at least one relevant item).
struct RankingMetrics {
  double recall10 = 0, ndcg10 = 0, recall20 = 0, ndcg20 = 0;
  size_t users = 0;  ///< users that counted
};

// Accumulates Recall@K and NDCG@K user by user.
//
// Ranking: candidates are ordered by score descending; equal scores are ordered by item index
// ascending. The tie rule is part of the metric: a model that gives every item the same score
// is credited with exactly the hits that the lowest-indexed candidates happen to be, never
// with an optimistic or random placement, and the numbers are reproducible.
//
// Recall@K = |relevant ∩ top K| / |relevant|. NDCG@K = DCG@K / IDCG@K with binary gains,
// DCG@K = sum over hits at 0-based rank r < K of 1 / log2(r + 2), and IDCG@K the same sum over
// ranks r < min(K, |relevant|). A relevant item that is not among the candidates (for example
// one the caller excluded as seen in training) can never be a hit but still counts in
// |relevant|. Users with no relevant items are skipped.
//
// Not thread-safe; use one evaluator per thread and add up afterwards if needed.
class RankingEvaluator {
 public:
  // ks: the cutoffs to measure; Result() reports 10 and 20 when they are among them.
  explicit RankingEvaluator(std::vector<size_t> ks = {10, 20});

  // scores: one score per item, indexed by item index (scores[i] is item i's score); every
  //         candidate must be < scores.size(). NaN scores are rejected.
  // candidates: the item indices ranked among (e.g. all items not in the user's training set).
  // relevant: the user's held-out items; duplicates count once.
  // Throws std::invalid_argument on an out-of-range candidate or a NaN score.
  void AddUser(const std::vector<float>& scores, const std::vector<uint32_t>& candidates,
               const std::vector<uint32_t>& relevant);

  // Means over the users added so far; 0 for a cutoff not measured, all 0 when no user counted.
  RankingMetrics Result() const;

  // Mean Recall@k / NDCG@k over the users so far; k must be one of ks, else invalid_argument.
  double Recall(size_t k) const;
  double Ndcg(size_t k) const;

  size_t users() const { return users_; }

  // Recall@k of the user of the last AddUser (k one of ks); NaN when that user had no relevant
  // item (skipped) or before any AddUser. For per-user statistics (PairedBootstrapRatio).
  double LastRecall(size_t k) const;

  // Adds the users counted by `other` (same cutoffs), so that threads can evaluate apart.
  void Merge(const RankingEvaluator& other);

  // One evaluator holding all of `parts` (at least one).
  static RankingEvaluator Merge(const std::vector<RankingEvaluator>& parts);

 private:
  size_t Slot(size_t k) const;

  std::vector<size_t> ks_;             ///< cutoffs, as given
  size_t max_k_ = 0;                   ///< largest cutoff: how much of each ranking to sort
  std::vector<double> recall_sum_;     ///< per cutoff, summed over users in the order added
  std::vector<double> ndcg_sum_;       ///< per cutoff
  std::vector<double> last_recall_;    ///< per cutoff, the last user's (NaN when skipped)
  size_t users_ = 0;                   ///< users that counted
  std::vector<uint32_t> ranked_;       ///< scratch: the candidates being ranked, reused
  std::vector<uint32_t> relevant_;     ///< scratch: sorted unique relevant items
};

// The 0.975 quantile of Student's t with `df` degrees of freedom (df >= 1): the factor of a
// two-sided 95% interval of a mean from df + 1 runs, mean ± t sd / sqrt(n). Exact to 3 decimals
// (a table for df <= 30, the normal's 1.960 approached beyond). Throws std::invalid_argument for 0.
double StudentT975(size_t df);

// A paired, per-user bootstrap interval of the ratio of two means.
struct RatioInterval {
  double ratio = 0;       ///< mean(a) / mean(b) over every user
  double low = 0;         ///< 2.5th percentile of the resampled ratios
  double high = 0;        ///< 97.5th percentile
  size_t users = 0;       ///< users measured by both (the pairs resampled)
  size_t resamples = 0;
};

// Resamples the users (the pairs a[u], b[u] together, entries NaN in either are left out) with
// replacement `resamples` times, each time computing mean(a) / mean(b); the interval is the
// percentile one (2.5%, 97.5%). Seeded (fusion/random.h), so reproducible. A resample whose b
// mean is 0 is skipped. Throws std::invalid_argument on size mismatch, no pair left, or
// resamples == 0.
RatioInterval PairedBootstrapRatio(const std::vector<double>& a, const std::vector<double>& b, size_t resamples,
                                   uint64_t seed);

// Area under the ROC curve by the Mann–Whitney rank statistic: the probability that a random
// positive scores above a random negative, a tie counting 1/2 (tied scores get their average
// rank). labels are 0 or 1. Throws std::invalid_argument on size mismatch, a label other than
// 0/1, a NaN score, or when there are no positives or no negatives (AUC is undefined).
double Auc(const std::vector<float>& scores, const std::vector<int>& labels);

// Group AUC (DIN, KDD 2018): Auc within each group (a user's examples), averaged with each group
// weighted by its number of examples; groups without both labels are left out. Unlike Auc over
// the pooled examples it asks nothing of how scores compare across users. `groups[i]` names
// example i's group. Throws std::invalid_argument as Auc does, on a groups size mismatch, and
// when no group has both labels.
double GroupAuc(const std::vector<float>& scores, const std::vector<int>& labels, const std::vector<uint32_t>& groups);

// F1 of the positive class with prediction "positive" when probability >= threshold:
// 2 TP / (2 TP + FP + FN), and 0 when that is 0/0 (nothing predicted or actually positive,
// as scikit-learn's default). Throws std::invalid_argument on size mismatch or a label not 0/1.
double F1(const std::vector<float>& probabilities, const std::vector<int>& labels,
          double threshold = 0.5);

// Platt scaling: p = 1 / (1 + exp(-(a s + b))), fitted to (score, label) pairs so that a
// baseline's raw scores (dot products, counts) become probabilities that F1's 0.5 threshold
// means something for. Fitted by Newton's method with backtracking on the log loss against
// Platt's smoothed targets ((P+1)/(P+2) for positives, 1/(N+2) for negatives), which keeps a and
// b finite even on separable data; scores are standardised first for conditioning.
// All-equal scores give a = 0 and b = logit of the smoothed positive rate. Deterministic.
struct PlattScaler {
  double a = 1;  ///< slope; before Fit the scaler is the plain logistic function
  double b = 0;  ///< intercept

  // Throws std::invalid_argument on size mismatch, no examples, a label not 0/1 or a
  // non-finite score.
  void Fit(const std::vector<float>& scores, const std::vector<int>& labels);

  float operator()(float score) const;
};

}  // namespace mosaic::fusion
