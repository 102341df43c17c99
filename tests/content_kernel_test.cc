// The content kernel of the model's second version (fusion/content_kernel.h) on hand-made data:
// cold items of a user's taste group ranked first, the grid search on the content ridge's
// pseudo-cold items (in either precision), inverse item frequency at work, determinism, and the
// refusals.
#include "fusion/content_kernel.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <limits>
#include <stdexcept>

#include "fusion/content_regression_internal.h"
#include "fusion/metrics.h"
#include "tests/eval_fixtures.h"

namespace mosaic::fusion {
namespace {

// Recall@20 of ranking the cold items for every user who played one.
double ColdRecall(const Baseline& model, const EvalData& data, const std::vector<uint32_t>& cold) {
  std::vector<uint8_t> is_cold(data.num_items, 0);
  for (uint32_t i : cold) is_cold[i] = 1;
  std::vector<std::vector<uint32_t>> relevant(data.num_users);
  for (const Interaction& x : data.interactions) {
    if (is_cold[x.item]) relevant[x.user].push_back(x.item);
  }
  RankingEvaluator evaluator;
  for (uint32_t u = 0; u < data.num_users; ++u) evaluator.AddUser(Score(model, u), cold, relevant[u]);
  return evaluator.Recall(20);
}

TEST(ContentKernelTest, TunesOnPseudoColdItemsAndRanksTheUsersGroupFirst) {
  std::vector<uint32_t> train, cold;
  const EvalData data = Synthetic(30, 200, 3, &train, &cold);
  auto model = MakeContentKernel("Mosaic v2", true, 7);
  EXPECT_EQ(model->name(), "Mosaic v2");
  EXPECT_EQ(model->tuning(), nullptr);
  EXPECT_THROW(Score(*model, 0), std::logic_error);
  model->Fit(data, train, {});
  const Tuning* tuning = model->tuning();
  ASSERT_NE(tuning, nullptr);
  // 3 g x 4 w_text x 3 lambda x ranks {16, 29} (capped at 30 users - 1) x 5 popularity weights.
  ASSERT_EQ(tuning->grid.size(), 360u);
  EXPECT_EQ(tuning->grid.front().setting, "g=0 w_text=0.5 lambda=0.1 rank=16 pop=0");
  EXPECT_EQ(tuning->grid.back().setting, "g=8 w_text=1 lambda=10 rank=29 pop=2");
  double best = -1;
  size_t first_best = 0;
  for (size_t g = 0; g < tuning->grid.size(); ++g) {
    if (tuning->grid[g].valid_recall20 > best) {
      best = tuning->grid[g].valid_recall20;
      first_best = g;
    }
  }
  EXPECT_EQ(tuning->chosen, first_best);
  EXPECT_GT(best, 0.5);
  std::printf("  chosen: %s (validation Recall@20 %.4f)\n", tuning->grid[tuning->chosen].setting.c_str(), best);

  // On average, every user's own-group cold items above the other groups' (the content follows
  // the group, with noise: a single item may cross).
  for (uint32_t u = 0; u < data.num_users; ++u) {
    const auto s = Score(*model, u);
    double own = 0, other = 0;
    size_t own_n = 0, other_n = 0;
    for (uint32_t i : cold) {
      if (i % 3 == u % 3) {
        own += s[i];
        ++own_n;
      } else {
        other += s[i];
        ++other_n;
      }
    }
    EXPECT_GT(own / double(own_n), other / double(other_n)) << "user " << u;
  }
  EXPECT_GT(ColdRecall(*model, data, cold), 0.8);

  // Deterministic: a second model with the same seed gives the same grid and scores.
  auto again = MakeContentKernel("Mosaic v2", true, 7);
  again->Fit(data, train, {});
  ASSERT_EQ(again->tuning()->grid.size(), tuning->grid.size());
  for (size_t g = 0; g < tuning->grid.size(); ++g) {
    EXPECT_EQ(again->tuning()->grid[g].valid_recall20, tuning->grid[g].valid_recall20);
  }
  EXPECT_EQ(Score(*again, 4), Score(*model, 4));

  // Without the KG, only the text is searched (w_text = 1).
  auto text = MakeContentKernel("Mosaic v2 (no KG)", false, 7);
  text->Fit(data, train, {});
  ASSERT_EQ(text->tuning()->grid.size(), 90u);
  EXPECT_EQ(text->tuning()->grid.front().setting, "g=0 w_text=1 lambda=0.1 rank=16 pop=0");
  EXPECT_GT(ColdRecall(*text, data, cold), 0.8);
}

// The search in single precision measures what it does in double (to the ranking), so it keeps the
// same point; the refit stays in double unless asked, and then scores as the double one does.
TEST(ContentKernelTest, TheSearchInSinglePrecisionKeepsTheDoublePoint) {
  std::vector<uint32_t> train, cold;
  const EvalData data = Synthetic(30, 200, 3, &train, &cold);
  const KernelGrid grid = {{0, 4}, {0.75, 1}, {1, 10}, {}};
  KernelGrid single = grid;
  single.single_precision = true;
  auto twice = MakeContentKernel("double", true, 7, grid), once = MakeContentKernel("single", true, 7, single);
  twice->Fit(data, train, {});
  once->Fit(data, train, {});
  ASSERT_EQ(once->tuning()->grid.size(), twice->tuning()->grid.size());
  for (size_t g = 0; g < twice->tuning()->grid.size(); ++g) {
    EXPECT_NEAR(once->tuning()->grid[g].valid_recall20, twice->tuning()->grid[g].valid_recall20, 1e-9) << g;
  }
  EXPECT_EQ(once->tuning()->chosen, twice->tuning()->chosen);
  EXPECT_EQ(Score(*once, 3), Score(*twice, 3));  // both refitted in double
  single.refit_single_precision = true;
  auto quick = MakeContentKernel("single refit", true, 7, single);
  quick->Fit(data, train, {});
  const auto fast = Score(*quick, 3), exact = Score(*twice, 3);
  for (size_t i = 0; i < exact.size(); ++i) EXPECT_NEAR(fast[i], exact[i], 1e-3) << i;
  auto at = MakeContentKernelAt("at, single", true, twice->state().point, /*single_precision=*/true);
  at->Fit(data, train, {});
  const auto fixed = Score(*at, 3);
  for (size_t i = 0; i < exact.size(); ++i) EXPECT_NEAR(fixed[i], exact[i], 1e-3) << i;
}

// Two folds: the first is the one-fold search's hold-out, the second a disjoint fifth of the same
// permutation; each point's validation figure is the mean of its two, and the best mean is kept.
TEST(ContentKernelTest, TwoFoldsAverageDisjointHoldOuts) {
  std::vector<uint32_t> train, cold;
  const EvalData data = Synthetic(30, 200, 3, &train, &cold);
  const KernelGrid grid = {{0, 4}, {0.75, 1}, {1, 10}, {}};
  KernelGrid second_fold_too = grid;
  second_fold_too.folds = 2;
  auto one = MakeContentKernel("one fold", true, 7, grid), two = MakeContentKernel("two folds", true, 7, second_fold_too);
  one->Fit(data, train, {});
  two->Fit(data, train, {});
  const Tuning &a = *one->tuning(), &b = *two->tuning();
  ASSERT_EQ(a.grid.size(), b.grid.size());
  bool differs = false;
  double best = -1;
  size_t first_best = 0;
  for (size_t g = 0; g < b.grid.size(); ++g) {
    EXPECT_EQ(a.grid[g].setting, b.grid[g].setting);
    differs = differs || a.grid[g].valid_recall20 != b.grid[g].valid_recall20;
    if (b.grid[g].valid_recall20 > best) {
      best = b.grid[g].valid_recall20;
      first_best = g;
    }
  }
  EXPECT_TRUE(differs);  // the second fold's items are others
  EXPECT_EQ(b.chosen, first_best);
  EXPECT_GT(ColdRecall(*two, data, cold), 0.8);

  // The folds themselves: fold 1 disjoint from fold 0, both of the same size; none beyond the items.
  const content_internal::Interactions x = content_internal::BuildInteractions(data, train, {});
  std::vector<uint32_t> items;
  for (uint32_t i = 0; i < data.num_items; ++i) {
    if (!x.users_of[i].empty()) items.push_back(i);
  }
  const size_t hold = items.size() / 5;
  const auto f0 = content_internal::HoldOut(data, train, x, items, hold, 7, 4, 0);
  const auto f1 = content_internal::HoldOut(data, train, x, items, hold, 7, 4, 1);
  ASSERT_EQ(f0.held.size(), hold);
  ASSERT_EQ(f1.held.size(), hold);
  for (uint32_t i : f1.held) EXPECT_FALSE(f0.is_held[i]) << i;
  EXPECT_THROW(content_internal::HoldOut(data, train, x, items, hold, 7, 4, 5), std::invalid_argument);
}

// Cold items known through the KG alone. Entity 0 (a hub) is linked to every item; entity 1 to the
// items of group 0 only, entity 2 to those of group 1. The hub's inverse item frequency is
// ln(1 + 8/8) against ln(1 + 8/4) for a group's entity, so it weighs less in every item's row, and
// a cold item ranks by its group's entity: above the other group's cold item for the group's users.
TEST(ContentKernelTest, HubEntitiesWeighLessThanSpecificOnes) {
  EvalData data = Empty(4, 8, 3);
  data.num_kg_relations = 1;
  for (uint32_t i = 0; i < 8; ++i) {
    data.kg_triples.push_back({i, 0, 8});
    data.kg_triples.push_back({i, 0, 8 + 1 + i % 2});
  }
  // Users 0, 1 play group 0's warm items (0, 2, 4); users 2, 3 group 1's (1, 3, 5); 6 and 7 are cold.
  for (uint32_t u = 0; u < 4; ++u) {
    for (uint32_t i = u / 2; i < 6; i += 2) data.interactions.push_back({u, i, 1});
  }
  auto model = MakeContentKernel("Mosaic v2", true, 1);
  model->Fit(data, AllIndices(data), {});
  for (uint32_t u = 0; u < 4; ++u) {
    const auto s = Score(*model, u);
    const uint32_t own = 6 + u / 2, other = 7 - u / 2;
    EXPECT_GT(s[own], s[other]) << "user " << u;
  }
}

TEST(ContentKernelTest, RejectsInvalidInput) {
  EvalData data = Empty(2, 3);
  data.interactions = {{0, 0, 1}, {1, 1, 1}};
  SetModality(&data, "text", {{1, 0}, {0, 1}, {1, 1}});
  auto model = MakeContentKernel("Mosaic v2", true, 1);
  EXPECT_THROW(model->Fit(data, {5}, {}), std::invalid_argument);
  EvalData bad = data;
  bad.modalities["text"].values[0] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THROW(model->Fit(bad, AllIndices(bad), {}), std::invalid_argument);
  bad = data;
  bad.kg_triples.push_back({0, 0, 99});
  EXPECT_THROW(model->Fit(bad, AllIndices(bad), {}), std::invalid_argument);
  // Too few training items to hold any out: the first grid point, unmeasured.
  model->Fit(data, AllIndices(data), {});
  ASSERT_EQ(model->tuning()->grid.size(), 1u);
  EXPECT_EQ(Score(*model, 1).size(), 3u);
  EXPECT_THROW(Score(*model, 2), std::invalid_argument);

  // No content at all (no modality, no KG): nothing to regress from, every item scores alike.
  EvalData bare = Empty(3, 12);
  for (uint32_t u = 0; u < 3; ++u) {
    for (uint32_t i = u; i < 12; i += 2) bare.interactions.push_back({u, i, 1});
  }
  auto blind = MakeContentKernel("Mosaic v2", true, 1);
  blind->Fit(bare, AllIndices(bare), {});
  const auto s = Score(*blind, 0);
  ASSERT_EQ(s.size(), 12u);
  for (float x : s) EXPECT_EQ(x, s[0]);
}

}  // namespace
}  // namespace mosaic::fusion
