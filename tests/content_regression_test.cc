// The content-to-collaborative ridge regression (fusion/content_regression.h) on hand-made data:
// its closed form worked out by hand, the SVD's factors, cold items ranked by content, the grid
// search on pseudo-cold items, and the refusals.
#include "fusion/content_regression.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numeric>
#include <stdexcept>

#include "fusion/metrics.h"
#include "fusion/random.h"
#include "tests/eval_fixtures.h"

namespace mosaic::fusion {
namespace {

// One user who played items 0, 1 and 2 (weights are ignored): X = [1 1 1], so the rank-1 SVD is
// sigma = sqrt(3), P = sqrt(3), Q = (1, 1, 1) / sqrt(3), and every score is
// P Qhat(i) = K(i, T) (K + I)^-1 (1, 1, 1)^T with lambda = 1.
//
// Text, L2-normalised: t0 = (2, 0) -> (1, 0), t1 = (0, 3) -> (0, 1), t2 = (3, 4) -> (0.6, 0.8),
// cold item 3: (4, 3) -> (0.8, 0.6); item 4 has no text.
//   K + I = | 2    0    0.6 |    (K + I) a = 1:  a0 = (1 - 0.6 a2) / 2, a1 = (1 - 0.8 a2) / 2,
//           | 0    2    0.8 |    0.6 a0 + 0.8 a1 + 2 a2 = 0.7 + 1.5 a2 = 1, so a2 = 0.2,
//           | 0.6  0.8  2   |    a0 = 0.44, a1 = 0.42.
//   K(3, T) = (0.8, 0.6, 0.96): Qhat(3) = (0.352 + 0.252 + 0.192) / sqrt(3) = 0.796 / sqrt(3).
//   The warm items get predicted factors too: K(0, T) a = 0.44 + 0.12 = 0.56,
//   K(1, T) a = 0.42 + 0.16 = 0.58, K(2, T) a = 0.264 + 0.336 + 0.2 = 0.8; item 4 gets 0.
TEST(ContentRegressionTest, TextRidgeMatchesTheClosedForm) {
  EvalData data = Empty(1, 5);
  data.interactions = {{0, 0, 5}, {0, 1, 1}, {0, 2, 1}};
  SetModality(&data, "text", {{2, 0}, {0, 3}, {3, 4}, {4, 3}, {}});
  const double root3 = std::sqrt(3.0);

  const ContentRidgeFactors f = FitContentRidge(data, AllIndices(data), ContentParts::kText, 1, 1.0);
  ASSERT_EQ(f.cf.rank, 1u);
  ASSERT_EQ(f.cf.users.size(), 1u);
  ASSERT_EQ(f.predicted.size(), 5u);
  EXPECT_NEAR(f.cf.users[0], root3, 1e-12);
  const std::vector<double> q = {1 / root3, 1 / root3, 1 / root3, 0, 0};
  const std::vector<double> qhat = {0.56 / root3, 0.58 / root3, 0.8 / root3, 0.796 / root3, 0};
  for (size_t i = 0; i < 5; ++i) {
    EXPECT_NEAR(f.cf.items[i], q[i], 1e-12) << "item " << i;
    EXPECT_NEAR(f.predicted[i], qhat[i], 1e-12) << "item " << i;
  }

  auto model = MakeContentRidgeFixed(ContentParts::kText, 1, 1.0);
  EXPECT_EQ(model->name(), "Content ridge (text)");
  EXPECT_EQ(model->tuning(), nullptr);
  model->Fit(data, AllIndices(data), {});
  const auto s = Score(*model, 0);
  ASSERT_EQ(s.size(), 5u);
  const std::vector<float> expected = {0.56f, 0.58f, 0.8f, 0.796f, 0.0f};
  for (size_t i = 0; i < 5; ++i) EXPECT_NEAR(s[i], expected[i], 1e-6) << "item " << i;
  EXPECT_EQ(s[4], 0.0f);  // no content: Qhat = 0

  // With no KG, "all" at w_text = 1 is the text model; the KG-only model has nothing to go on.
  const ContentRidgeFactors all = FitContentRidge(data, AllIndices(data), ContentParts::kAll, 1, 1.0, 1.0);
  for (size_t i = 0; i < 5; ++i) EXPECT_NEAR(all.predicted[i], qhat[i], 1e-12);
  const ContentRidgeFactors kg = FitContentRidge(data, AllIndices(data), ContentParts::kKg, 1, 1.0);
  for (size_t i = 0; i < 5; ++i) EXPECT_EQ(kg.predicted[i], 0.0);
}

// The same user and training items, KG content only (entities 0 and 1 are nodes 4 and 5):
//   (0, r0, 4), (1, r0, 4) twice, (2, r0, 5), (3, r0, 4), and the item-item triple (0, r1, 3).
// Features: item 0 {(r0, 4, fwd), (r1, 3, fwd)}, item 1 {(r0, 4, fwd)}, item 2 {(r0, 5, fwd)},
// item 3 {(r0, 4, fwd), (r1, 0, bwd)}; normalised, items 0 and 3 weigh 1/sqrt(2) = s per feature.
//   K(T, T) = | 1 s 0 |   (K + I) a = 1 gives a0 = a1 = 1 / (2 + s), a2 = 1/2.
//             | s 1 0 |
//             | 0 0 1 |
//   K(3, T) = (1/2, s, 0): score(3) = (1/2 + s) / (2 + s) = 0.445903...;
//   score(0) = score(1) = (1 + s) / (2 + s), score(2) = 1/2.
TEST(ContentRegressionTest, KgRidgeMatchesTheClosedForm) {
  EvalData data = Empty(1, 4, 2);
  data.interactions = {{0, 0, 1}, {0, 1, 1}, {0, 2, 1}};
  data.num_kg_relations = 2;
  data.kg_triples = {{0, 0, 4}, {1, 0, 4}, {1, 0, 4}, {2, 0, 5}, {3, 0, 4}, {0, 1, 3}};
  const double s = 1 / std::sqrt(2.0), root3 = std::sqrt(3.0);
  const std::vector<double> score = {(1 + s) / (2 + s), (1 + s) / (2 + s), 0.5, (0.5 + s) / (2 + s)};
  for (ContentParts parts : {ContentParts::kKg, ContentParts::kAll}) {
    // "all" at w_text = 0 is the KG model.
    const ContentRidgeFactors f = FitContentRidge(data, AllIndices(data), parts, 1, 1.0, 0.0);
    for (size_t i = 0; i < 4; ++i) EXPECT_NEAR(f.predicted[i], score[i] / root3, 1e-12) << "item " << i;
  }
  auto model = MakeContentRidgeFixed(ContentParts::kKg, 1, 1.0);
  EXPECT_EQ(model->name(), "Content ridge (KG)");
  model->Fit(data, AllIndices(data), {});
  const auto got = Score(*model, 0);
  for (size_t i = 0; i < 4; ++i) EXPECT_NEAR(got[i], score[i], 1e-6) << "item " << i;
}

// Checks that P Q^T reproduces `x` (users x items, 0/1) to 1e-12.
void ExpectReproduces(const CfFactors& f, const std::vector<std::vector<int>>& x) {
  for (size_t u = 0; u < x.size(); ++u) {
    for (size_t i = 0; i < x[u].size(); ++i) {
      double v = 0;
      for (uint32_t k = 0; k < f.rank; ++k) v += f.users[u * f.rank + k] * f.items[i * f.rank + k];
      EXPECT_NEAR(v, x[u][i], 1e-12) << "user " << u << " item " << i;
    }
  }
}

EvalData FromMatrix(const std::vector<std::vector<int>>& x) {
  EvalData data = Empty(uint32_t(x.size()), uint32_t(x[0].size()));
  for (uint32_t u = 0; u < x.size(); ++u) {
    for (uint32_t i = 0; i < x[u].size(); ++i) {
      if (x[u][i]) data.interactions.push_back({u, i, 1});
    }
  }
  return data;
}

TEST(ContentRegressionTest, SvdReproducesLowRankMatrices) {
  // Rank 1 with fewer users than items (X X^T is factored), and its transpose (X^T X is); a user
  // and an item without interactions get zero factors, and columns beyond the rank are zero.
  const std::vector<std::vector<int>> wide = {{1, 0, 1, 1, 0}, {1, 0, 1, 1, 0}, {0, 0, 0, 0, 0}, {1, 0, 1, 1, 0}};
  std::vector<std::vector<int>> tall(5, std::vector<int>(4));
  for (size_t u = 0; u < 4; ++u) {
    for (size_t i = 0; i < 5; ++i) tall[i][u] = wide[u][i];
  }
  for (const std::vector<std::vector<int>>* x : {&wide, static_cast<const std::vector<std::vector<int>>*>(&tall)}) {
    const EvalData data = FromMatrix(*x);
    const CfFactors f1 = TruncatedSvd(data, AllIndices(data), 1);
    ASSERT_EQ(f1.rank, 1u);
    ExpectReproduces(f1, *x);
    const CfFactors f3 = TruncatedSvd(data, AllIndices(data), 3);
    ExpectReproduces(f3, *x);
    for (size_t u = 0; u < data.num_users; ++u) {
      for (size_t k = 1; k < 3; ++k) EXPECT_EQ(f3.users[u * 3 + k], 0.0);
    }
    // A 3 x 3 block of ones: sigma_1 = 3, P = sigma u with u = (1, 1, 1) / sqrt(3) on the active users.
    double norm2 = 0;
    for (size_t i = 0; i < data.num_items; ++i) norm2 += f1.items[i] * f1.items[i];
    if (x == &wide) {
      EXPECT_NEAR(norm2, 1.0, 1e-12);  // Q = V, unit columns
      EXPECT_NEAR(f1.users[0], std::sqrt(3.0), 1e-12);
      EXPECT_EQ(f1.users[2 * 1], 0.0);
      EXPECT_EQ(f1.items[1], 0.0);
    }
  }

  // Rank 2 (two blocks of different sizes, so distinct singular values) is exact at rank 2 but not 1;
  // Q's columns are orthonormal and P's columns orthogonal with norms sigma_1 >= sigma_2.
  const std::vector<std::vector<int>> blocks = {{1, 1, 1, 0, 0, 0}, {1, 1, 1, 0, 0, 0}, {0, 0, 0, 1, 1, 0},
                                                {0, 0, 0, 1, 1, 0}, {0, 0, 0, 0, 0, 0}};
  const EvalData data = FromMatrix(blocks);
  const CfFactors f = TruncatedSvd(data, AllIndices(data), 2);
  ExpectReproduces(f, blocks);
  double qq[2][2] = {{0, 0}, {0, 0}}, pp[2][2] = {{0, 0}, {0, 0}};
  for (size_t a = 0; a < 2; ++a) {
    for (size_t b = 0; b < 2; ++b) {
      for (size_t i = 0; i < data.num_items; ++i) qq[a][b] += f.items[i * 2 + a] * f.items[i * 2 + b];
      for (size_t u = 0; u < data.num_users; ++u) pp[a][b] += f.users[u * 2 + a] * f.users[u * 2 + b];
    }
  }
  EXPECT_NEAR(qq[0][0], 1, 1e-12);
  EXPECT_NEAR(qq[1][1], 1, 1e-12);
  EXPECT_NEAR(qq[0][1], 0, 1e-12);
  EXPECT_NEAR(pp[0][1], 0, 1e-12);
  EXPECT_NEAR(pp[0][0], 6.0, 1e-12);  // sigma^2 of the 2 x 3 block of ones
  EXPECT_NEAR(pp[1][1], 4.0, 1e-12);  // and of the 2 x 2 block
}

TEST(ContentRegressionTest, ColdItemsOfTheUsersGroupRankFirst) {
  std::vector<uint32_t> train, cold;
  const EvalData data = Synthetic(12, 60, 3, &train, &cold);
  ASSERT_EQ(cold.size(), 12u);
  for (ContentParts parts : {ContentParts::kAll, ContentParts::kText, ContentParts::kKg}) {
    auto model = MakeContentRidgeFixed(parts, 3, 1.0, 0.5);
    model->Fit(data, train, {});
    for (uint32_t u = 0; u < data.num_users; ++u) {
      const auto s = Score(*model, u);
      float worst_own = std::numeric_limits<float>::infinity(), best_other = -worst_own;
      for (uint32_t i : cold) {
        if (i % 3 == u % 3) {
          worst_own = std::min(worst_own, s[i]);
        } else {
          best_other = std::max(best_other, s[i]);
        }
      }
      EXPECT_GT(worst_own, best_other) << model->name() << " user " << u;
    }
  }
}

TEST(ContentRegressionTest, TunedPeerKeepsTheBestPseudoColdPointAndRefits) {
  std::vector<uint32_t> train, cold;
  const EvalData data = Synthetic(30, 200, 3, &train, &cold);
  auto model = MakeContentRidge(ContentParts::kAll, 7);
  EXPECT_EQ(model->name(), "Content ridge (all)");
  EXPECT_EQ(model->tuning(), nullptr);
  model->Fit(data, train, {});
  const Tuning* tuning = model->tuning();
  ASSERT_NE(tuning, nullptr);
  // 30 active users and 160 training items: ranks capped at 29, so {16, 29} x 5 lambdas x 3 weights.
  ASSERT_EQ(tuning->grid.size(), 30u);
  EXPECT_EQ(tuning->grid.front().setting, "rank=16 lambda=0.1 w_text=0.25");
  EXPECT_EQ(tuning->grid[1].setting, "rank=16 lambda=0.1 w_text=0.5");
  EXPECT_EQ(tuning->grid.back().setting, "rank=29 lambda=1000 w_text=0.75");
  ASSERT_LT(tuning->chosen, tuning->grid.size());
  double best = -1;
  size_t first_best = 0;
  for (size_t g = 0; g < tuning->grid.size(); ++g) {
    EXPECT_GE(tuning->grid[g].valid_recall20, 0.0);
    EXPECT_LE(tuning->grid[g].valid_recall20, 1.0);
    if (tuning->grid[g].valid_recall20 > best) {
      best = tuning->grid[g].valid_recall20;
      first_best = g;
    }
  }
  EXPECT_EQ(tuning->chosen, first_best);
  EXPECT_GT(best, 0.5);  // 32 pseudo-cold items, about a third of them the user's group
  for (const GridPoint& p : tuning->grid) {
    std::printf("  %-32s recall@20 %.4f ndcg@20 %.4f\n", p.setting.c_str(), p.valid_recall20, p.valid_ndcg20);
  }
  std::printf("  chosen: %s\n", tuning->grid[tuning->chosen].setting.c_str());

  // The refit is the fixed model at the chosen point, fitted on all of train.
  unsigned rank = 0;
  double lambda = 0, w_text = 0;
  ASSERT_EQ(std::sscanf(tuning->grid[tuning->chosen].setting.c_str(), "rank=%u lambda=%lf w_text=%lf", &rank, &lambda,
                        &w_text),
            3);
  auto fixed = MakeContentRidgeFixed(ContentParts::kAll, rank, lambda, w_text);
  fixed->Fit(data, train, {});
  for (uint32_t u = 0; u < data.num_users; ++u) EXPECT_EQ(Score(*model, u), Score(*fixed, u)) << "user " << u;

  // It ranks the real cold items well, and a second Fit gives the same grid and scores.
  std::vector<std::vector<uint32_t>> relevant(data.num_users);
  std::vector<uint8_t> is_cold(data.num_items, 0);
  for (uint32_t i : cold) is_cold[i] = 1;
  for (const Interaction& x : data.interactions) {
    if (is_cold[x.item]) relevant[x.user].push_back(x.item);
  }
  RankingEvaluator evaluator;
  for (uint32_t u = 0; u < data.num_users; ++u) evaluator.AddUser(Score(*model, u), cold, relevant[u]);
  EXPECT_GT(evaluator.Recall(20), 0.8);
  auto again = MakeContentRidge(ContentParts::kAll, 7);
  again->Fit(data, train, {});
  ASSERT_EQ(again->tuning()->grid.size(), tuning->grid.size());
  for (size_t g = 0; g < tuning->grid.size(); ++g) {
    EXPECT_EQ(again->tuning()->grid[g].valid_recall20, tuning->grid[g].valid_recall20);
    EXPECT_EQ(again->tuning()->grid[g].valid_ndcg20, tuning->grid[g].valid_ndcg20);
  }
  EXPECT_EQ(Score(*again, 3), Score(*model, 3));

  // The single-part versions search rank and lambda only.
  auto kg = MakeContentRidge(ContentParts::kKg, 7);
  EXPECT_EQ(kg->name(), "Content ridge (KG)");
  kg->Fit(data, train, {});
  ASSERT_EQ(kg->tuning()->grid.size(), 10u);
  EXPECT_EQ(kg->tuning()->grid.front().setting, "rank=16 lambda=0.1");
  EXPECT_EQ(MakeContentRidge(ContentParts::kText, 1)->name(), "Content ridge (text)");
}

TEST(ContentRegressionTest, TunedPeerWithTooFewItemsKeepsTheFirstPoint) {
  EvalData data = Empty(2, 3);
  data.interactions = {{0, 0, 1}, {1, 1, 1}};  // two training items: round(0.4) = 0 held out
  SetModality(&data, "text", {{1, 0}, {0, 1}, {1, 1}});
  auto model = MakeContentRidge(ContentParts::kText, 3);
  model->Fit(data, AllIndices(data), {});
  ASSERT_EQ(model->tuning()->grid.size(), 1u);
  EXPECT_EQ(model->tuning()->grid[0].setting, "rank=1 lambda=0.1");
  EXPECT_EQ(Score(*model, 0).size(), 3u);
}

TEST(ContentRegressionTest, RejectsInvalidInput) {
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  EXPECT_THROW(MakeContentRidgeFixed(ContentParts::kAll, 0, 1.0), std::invalid_argument);
  for (double lambda : {0.0, -1.0, nan, inf}) {
    EXPECT_THROW(MakeContentRidgeFixed(ContentParts::kAll, 4, lambda), std::invalid_argument);
  }
  for (double w : {-0.1, 1.5, nan}) {
    EXPECT_THROW(MakeContentRidgeFixed(ContentParts::kAll, 4, 1.0, w), std::invalid_argument);
  }
  EXPECT_THROW(MakeContentRidgeFixed(ContentParts(7), 4, 1.0), std::invalid_argument);
  EXPECT_THROW(MakeContentRidge(ContentParts(7), 1), std::invalid_argument);

  EvalData good = Empty(2, 3, 1);
  good.interactions = {{0, 0, 1}, {1, 1, 1}, {1, 2, 1}};
  SetModality(&good, "text", {{1, 0}, {0, 1}, {}});
  good.num_kg_relations = 1;
  good.kg_triples = {{0, 0, 3}};
  auto model = MakeContentRidgeFixed(ContentParts::kAll, 2, 1.0);
  std::vector<float> scores;
  EXPECT_THROW(model->ScoreUser(0, &scores), std::logic_error);  // before Fit
  EXPECT_NO_THROW(model->Fit(good, AllIndices(good), {}));
  EXPECT_THROW(model->ScoreUser(2, &scores), std::invalid_argument);
  EXPECT_THROW(model->Fit(good, {3}, {}), std::invalid_argument);

  EvalData bad = good;
  bad.interactions.push_back({2, 0, 1});  // user out of range
  EXPECT_THROW(model->Fit(bad, AllIndices(bad), {}), std::invalid_argument);
  bad = good;
  bad.modalities["text"].values.pop_back();
  EXPECT_THROW(model->Fit(bad, AllIndices(bad), {}), std::invalid_argument);
  bad = good;
  bad.modalities["visual"].dim = 2;  // no rows at all
  EXPECT_THROW(model->Fit(bad, AllIndices(bad), {}), std::invalid_argument);
  bad = good;
  bad.modalities["text"].values[1] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THROW(model->Fit(bad, AllIndices(bad), {}), std::invalid_argument);
  bad = good;
  bad.kg_triples.push_back({0, 0, 4});  // node 4 >= 3 items + 1 entity
  EXPECT_THROW(model->Fit(bad, AllIndices(bad), {}), std::invalid_argument);
  bad = good;
  bad.kg_triples.push_back({0, 1, 3});  // relation 1 >= 1
  EXPECT_THROW(model->Fit(bad, AllIndices(bad), {}), std::invalid_argument);

  EXPECT_THROW(TruncatedSvd(good, AllIndices(good), 0), std::invalid_argument);
  EXPECT_THROW(TruncatedSvd(good, {9}, 1), std::invalid_argument);
  EXPECT_THROW(FitContentRidge(good, AllIndices(good), ContentParts::kKg, 1, -1.0), std::invalid_argument);
}

}  // namespace
}  // namespace mosaic::fusion
