// Metrics on small examples worked out by hand in the comments.
#include "fusion/metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <stdexcept>
#include <vector>

namespace mosaic::fusion {
namespace {

double InvLog2(double rank0) { return 1.0 / std::log2(rank0 + 2.0); }

// Scores 0.9, 0.5, 0.5, 0.1 for items 0..3. The tie between items 1 and 2 is broken by index, so
// the ranking is 0, 1, 2, 3 and item 1 sits at rank 1 (0-based), item 2 at rank 2.
TEST(RankingEvaluatorTest, TiesBrokenByItemIndexAscending) {
  const std::vector<float> scores = {0.9f, 0.5f, 0.5f, 0.1f};
  const std::vector<uint32_t> candidates = {3, 2, 1, 0};  // order given must not matter

  // Relevant {2}: top 2 = {0, 1} has no hit -> Recall@2 = 0, NDCG@2 = 0.
  // Top 3 = {0, 1, 2}: hit at rank 2 -> Recall@3 = 1, NDCG@3 = (1/log2 4) / 1 = 0.5.
  RankingEvaluator low({2, 3});
  low.AddUser(scores, candidates, {2});
  EXPECT_DOUBLE_EQ(low.Recall(2), 0.0);
  EXPECT_DOUBLE_EQ(low.Ndcg(2), 0.0);
  EXPECT_DOUBLE_EQ(low.Recall(3), 1.0);
  EXPECT_DOUBLE_EQ(low.Ndcg(3), 0.5);

  // Relevant {1}, the same score as item 2 but the lower index: hit at rank 1 ->
  // Recall@2 = 1, NDCG@2 = 1/log2 3 = 0.6309298. Had ties gone the other way, the two users'
  // numbers would swap: the rule matters.
  RankingEvaluator high({2, 3});
  high.AddUser(scores, candidates, {1});
  EXPECT_DOUBLE_EQ(high.Recall(2), 1.0);
  EXPECT_NEAR(high.Ndcg(2), 0.6309297535714575, 1e-12);
}

// All scores equal: the ranking is plain index order, so items 0..K-1 are the top K.
TEST(RankingEvaluatorTest, AllEqualScoresRankByIndex) {
  const std::vector<float> scores(30, 1.0f);
  std::vector<uint32_t> candidates;
  for (uint32_t i = 0; i < 30; ++i) candidates.push_back(29 - i);
  RankingEvaluator eval;  // K = 10, 20
  eval.AddUser(scores, candidates, {9, 10});
  // Item 9 at rank 9 is in the top 10, item 10 at rank 10 is not.
  // Recall@10 = 1/2; NDCG@10 = (1/log2 11) / (1 + 1/log2 3).
  // Recall@20 = 1;   NDCG@20 = (1/log2 11 + 1/log2 12) / (1 + 1/log2 3).
  const RankingMetrics m = eval.Result();
  EXPECT_EQ(m.users, 1u);
  EXPECT_DOUBLE_EQ(m.recall10, 0.5);
  EXPECT_NEAR(m.ndcg10, InvLog2(9) / (1 + InvLog2(1)), 1e-12);
  EXPECT_DOUBLE_EQ(m.recall20, 1.0);
  EXPECT_NEAR(m.ndcg20, (InvLog2(9) + InvLog2(10)) / (1 + InvLog2(1)), 1e-12);
}

// Fewer relevant items than K: IDCG stops at |relevant|.
// Items 0..4 scored 5..1, relevant {0, 2}, K = 3: top 3 = {0, 1, 2}, hits at ranks 0 and 2.
// Recall@3 = 2/2 = 1. DCG = 1/log2 2 + 1/log2 4 = 1.5; IDCG = 1 + 1/log2 3 = 1.6309298
// (two ideal hits, not three); NDCG@3 = 1.5 / 1.6309298 = 0.9197208.
TEST(RankingEvaluatorTest, FewerRelevantThanK) {
  const std::vector<float> scores = {5, 4, 3, 2, 1};
  RankingEvaluator eval({3});
  eval.AddUser(scores, {0, 1, 2, 3, 4}, {2, 0, 2});  // the duplicate 2 counts once
  EXPECT_DOUBLE_EQ(eval.Recall(3), 1.0);
  EXPECT_NEAR(eval.Ndcg(3), 0.9197207891481876, 1e-12);
}

// Fewer candidates than K, and a relevant item that is not a candidate (seen in training, say):
// candidates {0, 1, 2}, relevant {0, 4}. Hit at rank 0 only: Recall@10 = 1/2;
// NDCG@10 = 1 / (1 + 1/log2 3) = 0.6131472.
TEST(RankingEvaluatorTest, RelevantOutsideCandidatesStillCounts) {
  const std::vector<float> scores = {3, 2, 1, 0, 9};
  RankingEvaluator eval({10});
  eval.AddUser(scores, {0, 1, 2}, {0, 4});
  EXPECT_DOUBLE_EQ(eval.Recall(10), 0.5);
  EXPECT_NEAR(eval.Ndcg(10), 1.0 / (1 + InvLog2(1)), 1e-12);
}

// A user with no relevant items is skipped: neither a zero nor a one in the mean.
// User A: relevant {0} at rank 0 -> Recall@1 = 1. User B: relevant {2} at rank 2 -> 0.
// Mean over A and B = 0.5, with the empty user C not counted.
TEST(RankingEvaluatorTest, UsersWithoutRelevantItemsAreSkipped) {
  const std::vector<float> scores = {3, 2, 1};
  RankingEvaluator eval({1});
  eval.AddUser(scores, {0, 1, 2}, {0});
  eval.AddUser(scores, {0, 1, 2}, {});
  eval.AddUser(scores, {0, 1, 2}, {2});
  EXPECT_EQ(eval.users(), 2u);
  EXPECT_DOUBLE_EQ(eval.Recall(1), 0.5);
  EXPECT_DOUBLE_EQ(eval.Ndcg(1), 0.5);

  RankingEvaluator empty;
  empty.AddUser(scores, {0, 1, 2}, {});
  const RankingMetrics m = empty.Result();
  EXPECT_EQ(m.users, 0u);
  EXPECT_EQ(m.recall20, 0.0);
}

TEST(RankingEvaluatorTest, RejectsBadInput) {
  RankingEvaluator eval;
  EXPECT_THROW(eval.AddUser({1, 2}, {0, 2}, {0}), std::invalid_argument);  // no score for 2
  EXPECT_THROW(eval.AddUser({1, NAN}, {0, 1}, {0}), std::invalid_argument);
  EXPECT_THROW(eval.Recall(5), std::invalid_argument);  // not a measured cutoff
  EXPECT_THROW(RankingEvaluator({0}), std::invalid_argument);
}


// Scores {0.5, 0.5, 0.2, 0.8}, labels {1, 0, 0, 1}. Ascending: 0.2 (neg) rank 1, the two 0.5s
// share ranks 2 and 3 -> 2.5 each, 0.8 (pos) rank 4. Positive rank sum = 2.5 + 4 = 6.5;
// AUC = (6.5 - 2*3/2) / (2*2) = 3.5 / 4 = 0.875. Pairwise: (0.8 beats both) 2 + (0.5 beats 0.2)
// 1 + (0.5 ties 0.5) 1/2 = 3.5 of 4 pairs.
TEST(AucTest, TiesCountHalf) {
  EXPECT_DOUBLE_EQ(Auc({0.5f, 0.5f, 0.2f, 0.8f}, {1, 0, 0, 1}), 0.875);
}

TEST(AucTest, AllEqualIsHalf) { EXPECT_DOUBLE_EQ(Auc({1, 1, 1, 1, 1}, {1, 0, 0, 1, 0}), 0.5); }

TEST(AucTest, PerfectAndReversed) {
  EXPECT_DOUBLE_EQ(Auc({0.1f, 0.2f, 0.8f, 0.9f}, {0, 0, 1, 1}), 1.0);
  EXPECT_DOUBLE_EQ(Auc({0.1f, 0.2f, 0.8f, 0.9f}, {1, 1, 0, 0}), 0.0);
  // One inversion of 2*2 pairs: 3/4.
  EXPECT_DOUBLE_EQ(Auc({0.1f, 0.8f, 0.2f, 0.9f}, {0, 0, 1, 1}), 0.75);
}

TEST(AucTest, GroupAucWeighsUsersByExamplesAndIgnoresCrossUserOrder) {
  // User 7 ranks backwards, user 3 perfectly; user 9 has a positive only and is left out. Group AUC
  // never compares user 7's low scores with user 3's high ones.
  const std::vector<float> scores = {0.01f, 0.02f, 0.9f, 0.8f, 0.7f, 0.5f};
  const std::vector<int> labels = {1, 0, 1, 1, 0, 1};
  const std::vector<uint32_t> groups = {7, 7, 3, 3, 3, 9};
  EXPECT_DOUBLE_EQ(GroupAuc(scores, labels, groups), (2 * 0.0 + 3 * 1.0) / 5);
  EXPECT_DOUBLE_EQ(GroupAuc({0.1f, 0.2f, 0.3f}, {1, 0, 0}, {1, 1, 1}), 0.0);
  EXPECT_THROW(GroupAuc({0.1f, 0.2f}, {1, 1}, {1, 2}), std::invalid_argument);  // no group with both
  EXPECT_THROW(GroupAuc({0.1f, 0.2f}, {1, 0}, {1}), std::invalid_argument);
}

TEST(AucTest, RejectsBadInput) {
  EXPECT_THROW(Auc({0.1f, 0.2f}, {1}), std::invalid_argument);
  EXPECT_THROW(Auc({0.1f, 0.2f}, {1, 1}), std::invalid_argument);  // no negatives
  EXPECT_THROW(Auc({0.1f, 0.2f}, {1, 2}), std::invalid_argument);
  EXPECT_THROW(Auc({0.1f, NAN}, {1, 0}), std::invalid_argument);
}

// probabilities {0.9, 0.6, 0.4, 0.5, 0.1}, labels {1, 0, 1, 1, 0}.
// threshold 0.5 (>=): predicted {0.9, 0.6, 0.5} -> TP 2 (0.9, 0.5), FP 1 (0.6), FN 1 (0.4):
//   F1 = 2*2 / (2*2 + 1 + 1) = 4/6.
// threshold 0.55: predicted {0.9, 0.6} -> TP 1, FP 1, FN 2: F1 = 2 / (2 + 1 + 2) = 0.4.
TEST(F1Test, HandComputed) {
  const std::vector<float> p = {0.9f, 0.6f, 0.4f, 0.5f, 0.1f};
  const std::vector<int> y = {1, 0, 1, 1, 0};
  EXPECT_DOUBLE_EQ(F1(p, y), 4.0 / 6.0);
  EXPECT_DOUBLE_EQ(F1(p, y, 0.55), 0.4);
  EXPECT_DOUBLE_EQ(F1(p, y, 0.0), 2.0 * 3 / (2 * 3 + 2));  // everything positive: TP 3, FP 2
  EXPECT_DOUBLE_EQ(F1({0.1f, 0.2f}, {0, 0}), 0.0);          // 0/0 -> 0
  EXPECT_DOUBLE_EQ(F1({0.9f, 0.2f}, {1, 0}), 1.0);
  EXPECT_THROW(F1({0.9f}, {1, 0}), std::invalid_argument);
}

// Raw scores 10..12 are negatives and 14..16 positives: every raw score is >= 0.5, so read as
// probabilities they would call everything positive (F1 = 6/9). Platt scaling learns a > 0
// and, the set being symmetric about 13 with symmetric smoothed targets (4/5 and 1/5), puts
// p = 1/2 at 13, so the 0.5 threshold separates the classes: F1 = 1.
TEST(PlattScalerTest, SeparatesASeparableSet) {
  const std::vector<float> s = {10, 11, 12, 14, 15, 16};
  const std::vector<int> y = {0, 0, 0, 1, 1, 1};
  EXPECT_DOUBLE_EQ(F1(s, y), 6.0 / 9.0);
  PlattScaler platt;
  platt.Fit(s, y);
  EXPECT_GT(platt.a, 0);
  EXPECT_TRUE(std::isfinite(platt.a) && std::isfinite(platt.b));
  EXPECT_NEAR(platt(13), 0.5, 1e-6);
  std::vector<float> p;
  for (float x : s) p.push_back(platt(x));
  for (size_t i = 0; i < 3; ++i) EXPECT_LT(p[i], 0.5f);
  for (size_t i = 3; i < 6; ++i) EXPECT_GT(p[i], 0.5f);
  EXPECT_DOUBLE_EQ(F1(p, y), 1.0);
  EXPECT_DOUBLE_EQ(Auc(p, y), 1.0);  // monotone: ranking unchanged

  PlattScaler again;  // deterministic
  again.Fit(s, y);
  EXPECT_EQ(again.a, platt.a);
  EXPECT_EQ(again.b, platt.b);
}

// All scores equal: only the smoothed base rate is left, (P + 1) / (N_total + 2) = 2/6 = 1/3.
TEST(PlattScalerTest, AllEqualScoresGiveTheBaseRate) {
  PlattScaler platt;
  platt.Fit({2, 2, 2, 2}, {1, 0, 0, 0});
  EXPECT_EQ(platt.a, 0);
  EXPECT_NEAR(platt(2), 1.0 / 3.0, 1e-6);
  EXPECT_NEAR(platt(-100), 1.0 / 3.0, 1e-6);
}

// Overlapping classes: the fit is a proper probability, increasing in the score.
TEST(PlattScalerTest, NoisyDataIsMonotone) {
  const std::vector<float> s = {-2, -1, -1, 0, 0, 1, 1, 2, 3};
  const std::vector<int> y = {0, 0, 1, 0, 1, 0, 1, 1, 1};
  PlattScaler platt;
  platt.Fit(s, y);
  EXPECT_GT(platt.a, 0);
  EXPECT_LT(platt(-2), platt(0));
  EXPECT_LT(platt(0), platt(3));
  EXPECT_GT(platt(-2), 0.0f);
  EXPECT_LT(platt(3), 1.0f);
  EXPECT_THROW(platt.Fit({}, {}), std::invalid_argument);
  EXPECT_THROW(platt.Fit({1, 2}, {1, 0, 1}), std::invalid_argument);
}

// The per-user Recall of the last user added, for paired statistics.
TEST(RankingEvaluatorTest, LastRecallIsTheLastUsers) {
  RankingEvaluator ev({10, 20});
  EXPECT_TRUE(std::isnan(ev.LastRecall(20)));
  // Item 2 ranks first of 3; relevant {2, 0}: item 0 ranks third, still within 10: recall 1.
  ev.AddUser({0.1f, 0.5f, 0.9f}, {0, 1, 2}, {2, 0});
  EXPECT_DOUBLE_EQ(ev.LastRecall(20), 1.0);
  // Relevant {7} is not a candidate: recall 0 (it still counts).
  ev.AddUser({0.1f, 0.5f, 0.9f}, {0, 1, 2}, {7});
  EXPECT_DOUBLE_EQ(ev.LastRecall(10), 0.0);
  ev.AddUser({0.1f, 0.5f, 0.9f}, {0, 1, 2}, {});  // skipped
  EXPECT_TRUE(std::isnan(ev.LastRecall(20)));
  EXPECT_EQ(ev.users(), 2u);
  EXPECT_THROW(ev.LastRecall(5), std::invalid_argument);
}

// Student's t quantiles: the table's values, and the normal's 1.96 approached for many runs.
TEST(StudentTTest, KnownQuantiles) {
  EXPECT_DOUBLE_EQ(StudentT975(1), 12.706);
  EXPECT_DOUBLE_EQ(StudentT975(4), 2.776);  // 5 runs
  EXPECT_DOUBLE_EQ(StudentT975(30), 2.042);
  EXPECT_NEAR(StudentT975(40), 2.021, 0.001);
  EXPECT_NEAR(StudentT975(120), 1.980, 0.001);
  EXPECT_NEAR(StudentT975(100000), 1.960, 0.001);
  EXPECT_THROW(StudentT975(0), std::invalid_argument);
}

// The paired bootstrap of a ratio of means: exact where every resample gives the same ratio, a
// proper interval around the estimate otherwise, NaN pairs left out, reproducible for a seed.
TEST(PairedBootstrapTest, RatioOfMeans) {
  // a = 2 b for every user: every resample's ratio is 2.
  const std::vector<double> b = {0.1, 0.4, 0.0, 0.25, 0.5};
  std::vector<double> a;
  for (double x : b) a.push_back(2 * x);
  RatioInterval r = PairedBootstrapRatio(a, b, 500, 7);
  EXPECT_DOUBLE_EQ(r.ratio, 2.0);
  EXPECT_NEAR(r.low, 2.0, 1e-12);
  EXPECT_NEAR(r.high, 2.0, 1e-12);
  EXPECT_EQ(r.users, 5u);

  // Noisy pairs: mean(a) / mean(b) = (1+0+1+1+0+1+1+1) / (1+1+0+1+1+1+0+1) = 6/6 = 1; the interval
  // brackets it and is not degenerate. A NaN in either side removes the pair.
  const std::vector<double> x = {1, 0, 1, 1, 0, 1, 1, 1, std::nan("")};
  const std::vector<double> y = {1, 1, 0, 1, 1, 1, 0, 1, 1};
  r = PairedBootstrapRatio(x, y, 2000, 11);
  EXPECT_DOUBLE_EQ(r.ratio, 1.0);
  EXPECT_EQ(r.users, 8u);
  EXPECT_LT(r.low, 1.0);
  EXPECT_GT(r.high, 1.0);
  EXPECT_LE(r.low, r.high);
  const RatioInterval again = PairedBootstrapRatio(x, y, 2000, 11);
  EXPECT_EQ(again.low, r.low);
  EXPECT_EQ(again.high, r.high);

  EXPECT_THROW(PairedBootstrapRatio({1, 2}, {1}, 10, 1), std::invalid_argument);
  EXPECT_THROW(PairedBootstrapRatio({std::nan("")}, {1}, 10, 1), std::invalid_argument);
  EXPECT_THROW(PairedBootstrapRatio({1}, {1}, 0, 1), std::invalid_argument);
}

}  // namespace
}  // namespace mosaic::fusion
