// Baselines on small hand-made EvalData: each one must rank what its definition says it ranks.
#include "fusion/baselines.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>

namespace mosaic::fusion {
namespace {

// Index list 0..n-1: every interaction of a toy dataset is training unless a test says otherwise.
std::vector<uint32_t> AllIndices(const EvalData& data) {
  std::vector<uint32_t> indices(data.interactions.size());
  std::iota(indices.begin(), indices.end(), 0u);
  return indices;
}

// Sets the text modality from one vector per item (an empty vector: no text).
void SetText(EvalData* data, const std::vector<std::vector<float>>& rows) {
  ModalityMatrix m;
  for (const auto& r : rows) m.dim = std::max<int64_t>(m.dim, int64_t(r.size()));
  for (const auto& r : rows) {
    m.present.push_back(!r.empty());
    for (int64_t d = 0; d < m.dim; ++d) m.values.push_back(r.empty() ? 0.0f : r[size_t(d)]);
  }
  data->modalities["text"] = std::move(m);
}

EvalData Empty(uint32_t users, uint32_t items, uint32_t entities = 0) {
  EvalData data;
  data.num_users = users;
  data.num_items = items;
  data.num_entities = entities;
  data.item_entities.assign(items, {});
  data.item_in_kg.assign(items, false);
  return data;
}

std::vector<float> Score(const Baseline& model, uint32_t user) {
  std::vector<float> scores;
  model.ScoreUser(user, &scores);
  return scores;
}

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
  SetText(&data, {{1, 0, 0}, {0.9f, 0.1f, 0}, {0, 0, 1}, {1, 0.05f, 0}, {0, 0.2f, 1}});
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
  SetText(&data, {{1, 0, 0}, {0.9f, 0.1f, 0}, {0, 0, 1}, {1, 0.05f, 0}, {0, 0.2f, 1}, {}});  // item 5: no text
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

TEST(BaselinesTest, EveryBaselineScoresEveryItemAndRejectsBadIndices) {
  const EvalData data = ColdFixture();
  std::vector<std::unique_ptr<Baseline>> models;
  models.push_back(MakeMostPopular());
  models.push_back(MakeItemKnn());
  models.push_back(MakeBprMf(4));
  models.push_back(MakeAttributePopularity());
  models.push_back(MakeKgOverlap());
  models.push_back(MakeTextKnn());
  for (auto& model : models) {
    model->Fit(data, AllIndices(data), {});
    for (uint32_t u = 0; u < data.num_users; ++u) EXPECT_EQ(Score(*model, u).size(), data.num_items) << model->name();
    EXPECT_THROW(model->Fit(data, {99}, {}), std::invalid_argument) << model->name();
  }
}

}  // namespace
}  // namespace mosaic::fusion
