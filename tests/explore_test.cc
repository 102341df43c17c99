// Exploration by Thompson sampling (fusion/explore.h): the calibration's closed form on a hand-made
// sample, the posterior's mean, and how explored items enter a list.
#include "fusion/explore.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

namespace mosaic::fusion {
namespace {

// Played pairs score {1, 1, 1, 0}, unplayed {0, 0, 0, 1}: P(played | score 1) = 3/4 and
// P(played | score 0) = 1/4 in the sample, so the maximum-likelihood fit is exact there:
// slope = logit(3/4) - logit(1/4) = 2 ln 3, intercept = logit(1/4) = -ln 3. The sample holds played
// pairs at 1/2; with a base rate of 1/10 the intercept moves by logit(1/10) - logit(1/2) = -ln 9.
TEST(ExploreTest, CalibrationWorkedExample) {
  const std::vector<float> played = {1, 1, 1, 0}, unplayed = {0, 0, 0, 1};
  const PlayCalibration even = FitPlayCalibration(played, unplayed, 0.5);
  EXPECT_NEAR(even.slope, 2 * std::log(3.0), 1e-4);
  EXPECT_NEAR(even.intercept, -std::log(3.0), 1e-4);
  EXPECT_NEAR(even.Probability(1), 0.75, 1e-4);
  EXPECT_NEAR(even.Probability(0), 0.25, 1e-4);
  const PlayCalibration rare = FitPlayCalibration(played, unplayed, 0.1);
  EXPECT_NEAR(rare.slope, even.slope, 1e-6);
  EXPECT_NEAR(rare.intercept, -std::log(3.0) - std::log(9.0), 1e-4);
  EXPECT_NEAR(rare.Probability(1), 0.25, 1e-4);  // sigmoid(ln 3 - ln 9) = 1 / (1 + 3)
  // Nothing to fit: every score gets the base rate.
  EXPECT_NEAR(FitPlayCalibration({}, unplayed, 0.2).Probability(5), 0.2, 1e-9);
  EXPECT_NEAR(FitPlayCalibration({2, 2}, {2, 2}, 0.2).Probability(2), 0.2, 1e-9);
}

// prior 0.1 worth 20 impressions, then 30 plays in 80 impressions: Beta(2 + 30, 18 + 50), mean
// 32 / 100 = 0.32, variance 32 * 68 / (100^2 * 101) = 0.00215 (sd 0.046).
TEST(ExploreTest, DrawsFollowThePosterior) {
  std::mt19937_64 rng(7);
  const ExploreCandidate c{0, 0.1, 80, 30};
  double sum = 0, sum2 = 0;
  const int n = 20000;
  for (int i = 0; i < n; ++i) {
    const double p = DrawPlayProbability(c, {20.0}, &rng);
    ASSERT_GT(p, 0.0);
    ASSERT_LT(p, 1.0);
    sum += p;
    sum2 += p * p;
  }
  const double mean = sum / n, var = sum2 / n - mean * mean;
  EXPECT_NEAR(PosteriorMean(c, {20.0}), 0.32, 1e-12);
  EXPECT_NEAR(mean, 0.32, 0.002);
  EXPECT_NEAR(var, 32.0 * 68 / (100.0 * 100 * 101), 0.0003);
}

TEST(ExploreTest, ExploredItemsReplaceTheLastGreedyOnesOnlyWhenTheirDrawIsHigher) {
  const std::vector<double> greedy = {0.5, 0.4, 0.3};
  std::mt19937_64 rng(1);
  // No slots, or no candidates: the greedy list exactly.
  for (const auto& list : {MergeExplored(greedy, {{7, 0.9, 0, 0}}, 0, {}, &rng), MergeExplored(greedy, {}, 2, {}, &rng)}) {
    ASSERT_EQ(list.size(), 3u);
    for (size_t i = 0; i < 3; ++i) EXPECT_FALSE(list[i].explored);
    for (size_t i = 0; i < 3; ++i) EXPECT_EQ(list[i].index, i);
  }
  // A candidate played nearly every time it was shown draws near 1 and leads; one never played in
  // 10,000 impressions draws near 0 and stays out, although two slots were offered.
  const std::vector<ExploreCandidate> candidates = {{10, 0.2, 10000, 0}, {11, 0.2, 1000, 990}};
  const auto list = MergeExplored(greedy, candidates, 2, {20.0}, &rng);
  ASSERT_EQ(list.size(), 3u);
  EXPECT_TRUE(list[0].explored);
  EXPECT_EQ(list[0].index, 1u);
  EXPECT_GT(list[0].value, 0.9);
  EXPECT_FALSE(list[1].explored);
  EXPECT_EQ(list[1].index, 0u);  // 0.5
  EXPECT_FALSE(list[2].explored);
  EXPECT_EQ(list[2].index, 1u);  // 0.4; 0.3 gave its place
}

// Posterior means (n0 = 2): id 1 (2 * 0.5 + 0) / 2 = 0.5; id 2 (2 * 0.1 + 9) / (2 + 10) = 0.767;
// id 3 (2 * 0.3 + 0) / (2 + 50) = 0.0115. The best two are kept; with room for all, all are.
TEST(ExploreTest, KeepMostPromisingKeepsTheBestPosteriorMeans) {
  const std::vector<ExploreCandidate> all = {{1, 0.5, 0, 0}, {2, 0.1, 10, 9}, {3, 0.3, 50, 0}};
  std::vector<ExploreCandidate> kept = all;
  KeepMostPromising(2, {2.0}, &kept);
  ASSERT_EQ(kept.size(), 2u);
  std::vector<int64_t> ids = {kept[0].id, kept[1].id};
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(ids, (std::vector<int64_t>{1, 2}));
  kept = all;
  KeepMostPromising(5, {2.0}, &kept);
  EXPECT_EQ(kept.size(), 3u);
}

// With a seed the draws repeat; over many lists, an item the model rates higher is explored more.
TEST(ExploreTest, HigherPriorIsExploredMoreOftenAndSeedsRepeat) {
  const std::vector<double> greedy(20, 0.05);
  const std::vector<ExploreCandidate> candidates = {{1, 0.10, 0, 0}, {2, 0.01, 0, 0}};
  int high = 0, low = 0;
  std::mt19937_64 rng(2026);
  for (int round = 0; round < 2000; ++round) {
    for (const ListEntry& e : MergeExplored(greedy, candidates, 2, {20.0}, &rng)) {
      if (e.explored) (e.index == 0 ? high : low)++;
    }
  }
  EXPECT_GT(high, 2 * low) << "high " << high << ", low " << low;
  EXPECT_GT(low, 0) << "a low prior is still explored now and then";
  std::mt19937_64 a(5), b(5);
  const auto first = MergeExplored(greedy, candidates, 2, {20.0}, &a);
  const auto again = MergeExplored(greedy, candidates, 2, {20.0}, &b);
  ASSERT_EQ(first.size(), again.size());
  for (size_t i = 0; i < first.size(); ++i) EXPECT_EQ(first[i].value, again[i].value);
}

}  // namespace
}  // namespace mosaic::fusion
