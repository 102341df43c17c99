// Baselines on small hand-made EvalData: each one must rank what its definition says it ranks.
#include "fusion/baselines.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>

#include "tests/eval_fixtures.h"

namespace mosaic::fusion {
namespace {

TEST(BaselinesTest, MostPopularRanksMostPlayedFirst) {
  EvalData data = Empty(4, 3);
  // Item 2 has three users, item 0 two, item 1 one.
  data.interactions = {{0, 2, 1}, {1, 2, 1}, {2, 2, 1}, {0, 0, 1}, {3, 0, 1}, {1, 1, 50}};
  auto model = MakeMostPopular();
  model->Fit(data, AllIndices(data), {});
  const auto scores = Score(*model, 3);
  ASSERT_EQ(scores.size(), 3u);
  EXPECT_GT(scores[2], scores[0]);
  EXPECT_GT(scores[0], scores[1]);
  EXPECT_EQ(scores, Score(*model, 0));  // not personalised
}

// Fixed scores per item, the same for every user.
class FixedScores : public Baseline {
 public:
  explicit FixedScores(std::vector<float> scores) : scores_(std::move(scores)) {}
  std::string name() const override { return "fixed"; }
  void Fit(const EvalData&, const std::vector<uint32_t>&, const std::vector<uint32_t>&) override {}
  void ScoreUser(uint32_t, std::vector<float>* scores) const override { *scores = scores_; }

 private:
  std::vector<float> scores_;
};

// 21 items, one user whose validation item is 20. `first` scores item i < 20 with 20 - i and item 20
// with 0 (21st: out of the top 20); `second` scores item 20 with 1, the rest 0. Standardised: z1 of
// items 0..20 is (20 - i - 10) / sqrt(770 / 21) (sd 6.055), so item 19 has -1.486 and item 20 -1.651;
// z2 is 4.472 for item 20 and -0.224 for the rest (sd sqrt(20) / 21). Item 20 overtakes item 19, and
// enters the top 20, when -1.651 + 4.472 w > -1.486 - 0.224 w, i.e. w > 0.035: of the weights
// {0, 0.01, 1} only 1 finds the validation item, and is kept.
TEST(BaselinesTest, BlendChoosesTheWeightOnValidation) {
  std::vector<float> a(21, 0.0f), b(21, 0.0f);
  for (int i = 0; i < 20; ++i) a[size_t(i)] = float(20 - i);
  b[20] = 1;
  FixedScores first(a), second(b);
  EvalData data = Empty(1, 21);
  data.interactions = {{0, 20, 1}};
  auto blend = MakeBlend("blend", &first, &second, {0, 0.01, 1});
  blend->Fit(data, {}, {0});
  ASSERT_NE(blend->tuning(), nullptr);
  ASSERT_EQ(blend->tuning()->grid.size(), 3u);
  EXPECT_EQ(blend->tuning()->grid[0].valid_recall20, 0.0);
  EXPECT_EQ(blend->tuning()->grid[1].valid_recall20, 0.0);
  EXPECT_EQ(blend->tuning()->grid[2].valid_recall20, 1.0);
  EXPECT_EQ(blend->tuning()->chosen, 2u);
  EXPECT_EQ(blend->tuning()->grid[2].setting, "weight=1");
  // Weight 0 keeps `first`'s ranking exactly.
  auto alone = MakeBlend("alone", &first, &second, {0});
  alone->Fit(data, {}, {0});
  const auto z = Score(*alone, 0);
  for (size_t i = 1; i < a.size(); ++i) EXPECT_EQ(a[i - 1] > a[i], z[i - 1] > z[i]) << i;
}

TEST(BaselinesTest, ItemKnnRecommendsCoConsumedItem) {
  // Items 0 and 1 are always consumed together; items 2 and 3 together. User 4 has only item 0.
  EvalData data = Empty(5, 4);
  data.interactions = {{0, 0, 1}, {0, 1, 1}, {1, 0, 1}, {1, 1, 1}, {2, 2, 1}, {2, 3, 1}, {3, 2, 1}, {3, 3, 1},
                       {4, 0, 1}};
  auto model = MakeItemKnn(10);
  model->Fit(data, AllIndices(data), {});
  const auto scores = Score(*model, 4);
  ASSERT_EQ(scores.size(), 4u);
  EXPECT_GT(scores[1], scores[2]);
  EXPECT_GT(scores[1], scores[3]);
  EXPECT_GT(scores[1], 0.0f);
}

TEST(BaselinesTest, ItemKnnKeepsOnlyTopNeighbours) {
  // sim(0, 1) = 2 / sqrt(3 * 2) beats sim(0, 2) = 1 / sqrt(3 * 2). With one neighbour kept, item 0
  // keeps only item 1, so a user holding item 2 alone gets nothing for item 0; with two, it does.
  EvalData data = Empty(4, 3);
  data.interactions = {{0, 0, 1}, {0, 1, 1}, {1, 0, 1}, {1, 1, 1}, {2, 0, 1}, {2, 2, 1}, {3, 2, 1}};
  auto pruned = MakeItemKnn(1);
  pruned->Fit(data, AllIndices(data), {});
  EXPECT_EQ(Score(*pruned, 3)[0], 0.0f);
  EXPECT_NEAR(Score(*pruned, 2)[1], 2 / std::sqrt(6.0f), 1e-6);  // item 1 keeps item 0
  auto full = MakeItemKnn(2);
  full->Fit(data, AllIndices(data), {});
  EXPECT_NEAR(Score(*full, 3)[0], 1 / std::sqrt(6.0f), 1e-6);
}

// Two clusters of users and items: users 0..n/2 play items 0..m/2 only, the rest the other half.
// Each user plays a random half of their cluster's items; the other half is held out and must be
// ranked above the other cluster's items.
EvalData TwoClusters(uint32_t users, uint32_t items, std::vector<uint32_t>* train, std::vector<uint32_t>* valid) {
  EvalData data = Empty(users, items);
  uint64_t state = 12345;
  auto next = [&state] {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  };
  for (uint32_t u = 0; u < users; ++u) {
    const uint32_t first = u < users / 2 ? 0 : items / 2;
    for (uint32_t i = first; i < first + items / 2; ++i) {
      const uint64_t r = next() % 10;
      if (r >= 5) continue;  // not played
      (r == 0 ? valid : train)->push_back(uint32_t(data.interactions.size()));
      data.interactions.push_back({u, i, 1.0f});
    }
  }
  return data;
}

TEST(BaselinesTest, BprMfSeparatesPlantedClustersAndIsDeterministic) {
  std::vector<uint32_t> train, valid;
  const EvalData data = TwoClusters(60, 40, &train, &valid);
  auto model = MakeBprMf(16, 7);
  model->Fit(data, train, valid);

  uint32_t separated = 0;
  for (uint32_t u = 0; u < data.num_users; ++u) {
    const auto scores = Score(*model, u);
    ASSERT_EQ(scores.size(), data.num_items);
    const uint32_t first = u < data.num_users / 2 ? 0 : data.num_items / 2;
    float worst_in = 1e30f, best_out = -1e30f;
    for (uint32_t i = 0; i < data.num_items; ++i) {
      const bool in = i >= first && i < first + data.num_items / 2;
      if (in) worst_in = std::min(worst_in, scores[i]);
      else best_out = std::max(best_out, scores[i]);
    }
    if (worst_in > best_out) ++separated;
  }
  EXPECT_GE(separated, data.num_users * 9 / 10) << separated << " of " << data.num_users << " users separated";

  auto again = MakeBprMf(16, 7);
  again->Fit(data, train, valid);
  for (uint32_t u = 0; u < data.num_users; ++u) EXPECT_EQ(Score(*model, u), Score(*again, u)) << "user " << u;

  // Without validation it trains a fixed number of epochs and still separates the clusters.
  auto fixed = MakeBprMf(16, 7);
  fixed->Fit(data, train, {});
  const auto scores = Score(*fixed, 0);
  EXPECT_GT(*std::min_element(scores.begin(), scores.begin() + 20),
            *std::max_element(scores.begin() + 20, scores.end()));
}

TEST(BaselinesTest, BprMfDiffersAcrossSeeds) {
  std::vector<uint32_t> train, valid;
  const EvalData data = TwoClusters(20, 10, &train, &valid);
  auto a = MakeBprMf(8, 1);
  auto b = MakeBprMf(8, 2);
  a->Fit(data, train, valid);
  b->Fit(data, train, valid);
  EXPECT_NE(Score(*a, 0), Score(*b, 0));
}

// Cold-start fixture: items 0..2 are warm (played), item 3 (cold) shares entity 0 and text with
// the user's items, item 4 (cold) shares nothing.
EvalData ColdFixture() {
  EvalData data = Empty(3, 5, 3);
  data.item_entities = {{0}, {0, 1}, {2}, {0, 1}, {2}};
  SetModality(&data, "text", {{1, 0, 0}, {0.9f, 0.1f, 0}, {0, 0, 1}, {1, 0.05f, 0}, {0, 0.2f, 1}});
  // User 0 plays items 0 and 1; user 1 plays item 0 a lot; user 2 plays item 2 once.
  data.interactions = {{0, 0, 10}, {0, 1, 3}, {1, 0, 200}, {2, 2, 1}};
  return data;
}

TEST(BaselinesTest, AttributePopularityFavoursPopularEntities) {
  const EvalData data = ColdFixture();
  auto model = MakeAttributePopularity();
  model->Fit(data, AllIndices(data), {});
  const auto scores = Score(*model, 2);
  // Entity 0: 3 plays (items 0, 0, 1); entity 1: 1; entity 2: 1. Item 3 = 4, item 4 = 1.
  EXPECT_FLOAT_EQ(scores[3], 4.0f);
  EXPECT_FLOAT_EQ(scores[4], 1.0f);
  EXPECT_EQ(scores, Score(*model, 0));
}

TEST(BaselinesTest, KgOverlapRanksColdItemSharingEntitiesFirst) {
  const EvalData data = ColdFixture();
  auto model = MakeKgOverlap();
  model->Fit(data, AllIndices(data), {});
  const auto user0 = Score(*model, 0);
  EXPECT_GT(user0[3], user0[4]);
  EXPECT_EQ(user0[4], 0.0f);
  // Item 3 shares {0} with item 0 (log1p 10) and {0, 1} with item 1 (log1p 3).
  EXPECT_NEAR(user0[3], std::log1p(10.0f) + 2 * std::log1p(3.0f), 1e-5);
  const auto user2 = Score(*model, 2);  // user 2's only item is linked to entity 2
  EXPECT_GT(user2[4], user2[3]);
}

TEST(BaselinesTest, TextKnnRanksSimilarTextFirstAndUnscorableLast) {
  EvalData data = ColdFixture();
  SetModality(&data, "text", {{1, 0, 0}, {0.9f, 0.1f, 0}, {0, 0, 1}, {1, 0.05f, 0}, {0, 0.2f, 1}, {}});  // item 5: no text
  data.item_entities.push_back({});
  data.num_items = 6;
  auto model = MakeTextKnn();
  model->Fit(data, AllIndices(data), {});
  const auto user0 = Score(*model, 0);
  ASSERT_EQ(user0.size(), 6u);
  EXPECT_GT(user0[3], user0[4]);
  EXPECT_LE(user0[3], 1.0f + 1e-6f);
  EXPECT_EQ(user0[5], kUnscorable);
  const auto user2 = Score(*model, 2);
  EXPECT_GT(user2[4], user2[3]);
}

TEST(BaselinesTest, ItemKnnShrinkDividesTheCosine) {
  // Users 0 and 1 hold items 0 and 1, user 2 items 0 and 2, user 3 item 0 alone, so |U(0)| = 4,
  // |U(1)| = 2, |U(2)| = 1, co(0, 1) = 2, co(0, 2) = 1, co(1, 2) = 0.
  // sim(i, j) = co / (sqrt(|U(i)| |U(j)|) + shrink):
  //   shrink 0:  sim(1, 0) = 2 / sqrt(8) = 0.70711, sim(2, 0) = 1 / sqrt(4) = 0.5
  //   shrink 10: sim(1, 0) = 2 / (sqrt(8) + 10) = 0.15591, sim(2, 0) = 1 / (2 + 10) = 0.083333
  // User 3 (item 0 alone) scores item j with sim(j, 0); item 0 itself gets nothing (no self-similarity).
  EvalData data = Empty(4, 3);
  data.interactions = {{0, 0, 1}, {0, 1, 1}, {1, 0, 1}, {1, 1, 1}, {2, 0, 1}, {2, 2, 1}, {3, 0, 1}};
  auto plain = MakeItemKnn(10, 0);
  plain->Fit(data, AllIndices(data), {});
  const auto s0 = Score(*plain, 3);
  EXPECT_EQ(s0[0], 0.0f);
  EXPECT_NEAR(s0[1], 0.70711f, 1e-5);
  EXPECT_NEAR(s0[2], 0.5f, 1e-6);
  auto shrunk = MakeItemKnn(10, 10);
  EXPECT_EQ(shrunk->name(), "ItemKNN (top-10, shrink 10)");
  EXPECT_EQ(MakeItemKnn()->name(), "ItemKNN (top-100)");
  shrunk->Fit(data, AllIndices(data), {});
  const auto s10 = Score(*shrunk, 3);
  EXPECT_NEAR(s10[1], 0.155913f, 1e-5);
  EXPECT_NEAR(s10[2], 0.0833333f, 1e-6);
  EXPECT_THROW(MakeItemKnn(10, -1), std::invalid_argument);
}

// Three users over three items, lambda = 1:
//   user 0: items 0, 1      X^T X = | 2 2 1 |    A = X^T X + I = | 3 2 1 |
//   user 1: items 1, 2              | 2 3 2 |                    | 2 4 2 |
//   user 2: items 0, 1, 2           | 1 2 2 |                    | 1 2 3 |
// det A = 3 (12 - 4) - 2 (6 - 2) + 1 (4 - 4) = 16; the cofactors give
//   P = A^-1 = | 0.5  -0.25  0    |     B = I - P diag(1 / diag P) = | 0    0.5  0   |
//              | -0.25  0.5 -0.25 |     (B_ij = -P_ij / P_jj,         | 0.5  0    0.5 |
//              | 0    -0.25  0.5  |      diag B = 0)                  | 0    0.5  0   |
// Scores x_u B: user 0 = B_0 + B_1 = (0.5, 0.5, 0.5), user 1 = B_1 + B_2 = (0.5, 0.5, 0.5),
// user 2 = B_0 + B_1 + B_2 = (0.5, 1, 0.5). Both ways of solving must give them.
TEST(BaselinesTest, EaseSolvesTheClosedFormOnA3x3Example) {
  EvalData data = Empty(3, 3);
  data.interactions = {{0, 0, 5}, {0, 1, 1}, {1, 1, 1}, {1, 2, 1}, {2, 0, 1}, {2, 1, 1}, {2, 2, 1}};  // weights ignored
  for (EaseSolve solve : {EaseSolve::kItems, EaseSolve::kUsers, EaseSolve::kAuto}) {
    auto model = MakeEase(1.0, solve);
    model->Fit(data, AllIndices(data), {});
    const std::vector<std::vector<float>> expected = {{0.5f, 0.5f, 0.5f}, {0.5f, 0.5f, 0.5f}, {0.5f, 1.0f, 0.5f}};
    for (uint32_t u = 0; u < 3; ++u) {
      const auto s = Score(*model, u);
      ASSERT_EQ(s.size(), 3u);
      for (uint32_t j = 0; j < 3; ++j) EXPECT_NEAR(s[j], expected[u][j], 1e-5) << "user " << u << " item " << j;
    }
  }
  EXPECT_THROW(MakeEase(0.0), std::invalid_argument);
}

TEST(BaselinesTest, EaseItemAndUserSpacesAgree) {
  // A random 30 x 50 binary matrix (some items never played): the push-through identity must give
  // the item-space B's scores, items without plays scoring 0.
  std::vector<uint32_t> train, valid;
  const EvalData data = TwoClusters(30, 50, &train, &valid);
  auto items = MakeEase(7.0, EaseSolve::kItems);
  auto users = MakeEase(7.0, EaseSolve::kUsers);
  items->Fit(data, train, valid);
  users->Fit(data, train, valid);
  for (uint32_t u = 0; u < data.num_users; ++u) {
    const auto a = Score(*items, u);
    const auto b = Score(*users, u);
    for (uint32_t j = 0; j < data.num_items; ++j) EXPECT_NEAR(a[j], b[j], 1e-4) << "user " << u << " item " << j;
  }
}

// Users 0: items 0, 1; user 1: items 0, 2; user 2: item 1. So |U(0)| = 2, |U(1)| = 2, |U(2)| = 1 and
// |I(0)| = 2, |I(1)| = 2, |I(2)| = 1. Transition probabilities (alpha = 1):
//   P(u|0) = 1/2 for u0, u1;  P(u|1) = 1/2 for u0, u2;  P(u|2) = 1 for u1;  P(j|u0) = P(j|u1) = 1/2, P(1|u2) = 1.
//   W(0,1) = P(u0|0) P(1|u0) = 1/4      W(0,2) = P(u1|0) P(2|u1) = 1/4
//   W(1,0) = P(u0|1) P(0|u0) = 1/4      W(1,2) = 0 (no shared user)
//   W(2,0) = P(u1|2) P(0|u1) = 1/2      W(2,1) = 0
// beta = 0.5 divides column j by sqrt(|U(j)|): W(0,1) = 0.25/sqrt2 = 0.176777, W(0,2) = 0.25,
// W(1,0) = 0.176777, W(2,0) = 0.5/sqrt2 = 0.353553. Scores x_u W:
//   user 0 (items 0, 1): (W(1,0), W(0,1), W(0,2)) = (0.176777, 0.176777, 0.25)
//   user 1 (items 0, 2): (W(2,0), W(0,1), W(0,2)) = (0.353553, 0.176777, 0.25)
// With k = 1, row 0 keeps only W(0,2) = 0.25 > W(0,1), so user 0 gets (0.176777, 0, 0.25).
// alpha = 0.5 (beta 0) takes square roots of the probabilities: W(2,0) = sqrt(1) sqrt(1/2) = 0.707107.
TEST(BaselinesTest, Rp3BetaFollowsTheTransitionProbabilities) {
  EvalData data = Empty(3, 3);
  data.interactions = {{0, 0, 1}, {0, 1, 9}, {1, 0, 1}, {1, 2, 1}, {2, 1, 1}};
  auto model = MakeRp3Beta(1.0, 0.5, 10);
  model->Fit(data, AllIndices(data), {});
  auto s = Score(*model, 0);
  EXPECT_NEAR(s[0], 0.176777f, 1e-6);
  EXPECT_NEAR(s[1], 0.176777f, 1e-6);
  EXPECT_NEAR(s[2], 0.25f, 1e-6);
  s = Score(*model, 1);
  EXPECT_NEAR(s[0], 0.353553f, 1e-6);
  EXPECT_NEAR(s[1], 0.176777f, 1e-6);
  EXPECT_NEAR(s[2], 0.25f, 1e-6);
  auto top1 = MakeRp3Beta(1.0, 0.5, 1);
  top1->Fit(data, AllIndices(data), {});
  s = Score(*top1, 0);
  EXPECT_NEAR(s[0], 0.176777f, 1e-6);
  EXPECT_EQ(s[1], 0.0f);
  EXPECT_NEAR(s[2], 0.25f, 1e-6);
  auto root = MakeRp3Beta(0.5, 0.0, 10);
  root->Fit(data, AllIndices(data), {});
  EXPECT_NEAR(Score(*root, 1)[0], 0.707107f, 1e-6);  // W(2,0) only: user 1 holds items 0 and 2, W(0,0) = 0
  EXPECT_THROW(MakeRp3Beta(1.0, 0.0, 0), std::invalid_argument);
}

TEST(BaselinesTest, TunedPeerKeepsTheBestValidationPoint) {
  std::vector<uint32_t> train, valid;
  const EvalData data = TwoClusters(60, 40, &train, &valid);
  // MostPopular cannot tell the clusters apart; ItemKNN can: the grid must choose ItemKNN, and
  // the kept model is the candidate fitted on train.
  std::vector<GridCandidate> grid = {{"model=popular", [] { return MakeMostPopular(); }},
                                     {"model=knn k=5", [] { return MakeItemKnn(5); }},
                                     {"model=knn k=5 again", [] { return MakeItemKnn(5); }}};
  auto tuned = MakeTuned("Tuned", grid);
  EXPECT_EQ(tuned->tuning(), nullptr);
  tuned->Fit(data, train, valid);
  const Tuning* tuning = tuned->tuning();
  ASSERT_NE(tuning, nullptr);
  ASSERT_EQ(tuning->grid.size(), 3u);
  EXPECT_EQ(tuning->chosen, 1u);  // the earlier of two equal points
  EXPECT_GT(tuning->grid[1].valid_recall20, tuning->grid[0].valid_recall20);
  EXPECT_EQ(tuning->grid[1].valid_recall20, tuning->grid[2].valid_recall20);
  auto direct = MakeItemKnn(5);
  direct->Fit(data, train, valid);
  for (uint32_t u = 0; u < data.num_users; ++u) EXPECT_EQ(Score(*tuned, u), Score(*direct, u));
  tuned->Fit(data, train, {});  // nothing to choose on: the first point
  EXPECT_EQ(tuned->tuning()->chosen, 0u);
  auto popular = MakeMostPopular();
  popular->Fit(data, train, {});
  EXPECT_EQ(Score(*tuned, 0), Score(*popular, 0));
  EXPECT_THROW(MakeTuned("Empty", {}), std::invalid_argument);
  EXPECT_EQ(MakeTunedEase()->name(), "EASE");
  EXPECT_EQ(MakeTunedRp3Beta()->name(), "RP3beta");
  EXPECT_EQ(MakeTunedItemKnn()->name(), "ItemKNN (tuned)");
}

TEST(BaselinesTest, EveryBaselineScoresEveryItemAndRejectsBadIndices) {
  const EvalData data = ColdFixture();
  std::vector<std::unique_ptr<Baseline>> models;
  models.push_back(MakeMostPopular());
  models.push_back(MakeItemKnn());
  models.push_back(MakeBprMf(4));
  models.push_back(MakeAttributePopularity());
  models.push_back(MakeKgOverlap());
  models.push_back(MakeTextKnn());
  models.push_back(MakeEase(10.0));
  models.push_back(MakeEase(10.0, EaseSolve::kItems));
  models.push_back(MakeRp3Beta(0.5, 0.2, 10));
  models.push_back(MakeTunedEase());
  for (auto& model : models) {
    model->Fit(data, AllIndices(data), {});
    for (uint32_t u = 0; u < data.num_users; ++u) EXPECT_EQ(Score(*model, u).size(), data.num_items) << model->name();
    EXPECT_THROW(model->Fit(data, {99}, {}), std::invalid_argument) << model->name();
  }
}

}  // namespace
}  // namespace mosaic::fusion
