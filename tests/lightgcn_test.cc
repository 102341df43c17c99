#include "fusion/lightgcn.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "fusion/random.h"

namespace mosaic::fusion {
namespace {

// The normalised adjacency of `pairs` random (user, item) pairs over `users` x `items`, drawn with `seed`.
at::Tensor RandomAdjacency(uint64_t seed, int pairs, uint32_t users, uint32_t items) {
  SplitMix64 rng(seed);
  std::vector<std::pair<uint32_t, uint32_t>> drawn;
  for (int k = 0; k < pairs; ++k) drawn.emplace_back(uint32_t(rng.Below(users)), uint32_t(rng.Below(items)));
  return NormalisedAdjacency(users, items, drawn);
}

// 2 users x 3 items: user 0 has items 0 and 1, user 1 has items 1 and 2 (the pair (0, 1) given twice
// counts once). Nodes: u0 = 0, u1 = 1, i0 = 2, i1 = 3, i2 = 4. Degrees: u0 2, u1 2, i0 1, i1 2, i2 1,
// so A(u, i) = 1 / sqrt(deg u * deg i):
//   (u0, i0) = 1/sqrt(2) = 0.70711   (u0, i1) = 1/sqrt(4) = 0.5
//   (u1, i1) = 0.5                   (u1, i2) = 1/sqrt(2) = 0.70711
// and the same values at the transposed positions; everything else is 0.
TEST(LightGcnTest, NormalisedAdjacencyOfAHandMadeMatrix) {
  const auto a = NormalisedAdjacency(2, 3, {{0, 0}, {0, 1}, {0, 1}, {1, 1}, {1, 2}});
  ASSERT_TRUE(a.is_sparse());
  EXPECT_TRUE(a.is_coalesced());
  EXPECT_EQ(a.scalar_type(), torch::kFloat);
  EXPECT_EQ(a._nnz(), 8);
  const float r = float(1 / std::sqrt(2.0));
  const auto expected = torch::tensor({0.f, 0.f, r, 0.5f, 0.f,  //
                                       0.f, 0.f, 0.f, 0.5f, r,  //
                                       r, 0.f, 0.f, 0.f, 0.f,   //
                                       0.5f, 0.5f, 0.f, 0.f, 0.f,  //
                                       0.f, r, 0.f, 0.f, 0.f})
                            .view({5, 5});
  EXPECT_TRUE(torch::allclose(a.to_dense(), expected, 1e-6, 1e-7)) << a.to_dense();

  EXPECT_THROW(NormalisedAdjacency(2, 3, {{2, 0}}), std::invalid_argument);
  EXPECT_THROW(NormalisedAdjacency(2, 3, {{0, 3}}), std::invalid_argument);
}

// One layer on e = (1, 2, 3, 4, 5) (one column), by hand from the matrix above:
//   A e = (0.70711*3 + 0.5*4, 0.5*4 + 0.70711*5, 0.70711*1, 0.5*1 + 0.5*2, 0.70711*2)
//       = (4.12132, 5.53553, 0.70711, 1.5, 1.41421)
// and the final embedding is the mean of e and A e. Three layers match the dense computation, and the
// gradient (through the symmetric product's own backward) matches dense autograd.
TEST(LightGcnTest, PropagationMeansTheLayers) {
  const auto a = NormalisedAdjacency(2, 3, {{0, 0}, {0, 1}, {1, 1}, {1, 2}});
  const auto e = torch::tensor({1.f, 2.f, 3.f, 4.f, 5.f}).view({5, 1});
  const auto one = LightGcnPropagate(a, e, 1);
  const auto by_hand = torch::tensor({(1 + 4.12132f) / 2, (2 + 5.53553f) / 2, (3 + 0.70711f) / 2, (4 + 1.5f) / 2,
                                      (5 + 1.41421f) / 2})
                           .view({5, 1});
  EXPECT_TRUE(torch::allclose(one, by_hand, 1e-5, 1e-5)) << one;
  EXPECT_TRUE(torch::equal(LightGcnPropagate(a, e, 0), e));

  const auto dense = a.to_dense();
  auto x = torch::randn({5, 4}).requires_grad_(true);
  auto y = LightGcnPropagate(a, x, 3);
  const auto x1 = dense.mm(x), x2 = dense.mm(x1), x3 = dense.mm(x2);
  EXPECT_TRUE(torch::allclose(y, (x + x1 + x2 + x3) / 4, 1e-5, 1e-6));
  const auto w = torch::randn({5, 4});
  (y * w).sum().backward();
  const auto m = (torch::eye(5) + dense + dense.mm(dense) + dense.mm(dense).mm(dense)) / 4;
  EXPECT_TRUE(torch::allclose(x.grad(), m.t().mm(w), 1e-5, 1e-6)) << x.grad();
}

// A graph big enough for the multi-threaded CPU product: the same values and gradient as LibTorch's
// sparse mm.
TEST(LightGcnTest, LargeProductMatchesSparseMm) {
  const auto a = RandomAdjacency(7, 30000, 1500, 2500);
  torch::manual_seed(3);
  auto x = torch::randn({4000, 64}).requires_grad_(true);
  auto y = LightGcnPropagate(a, x, 2);
  const auto x1 = torch::mm(a, x.detach()), x2 = torch::mm(a, x1);
  EXPECT_TRUE(torch::allclose(y, (x.detach() + x1 + x2) / 3, 1e-5, 1e-6));
  y.sum().backward();
  const auto g1 = torch::mm(a, torch::ones({4000, 64})), g2 = torch::mm(a, g1);
  EXPECT_TRUE(torch::allclose(x.grad(), (torch::ones({4000, 64}) + g1 + g2) / 3, 1e-5, 1e-6));
}

// The fused CPU loss and its gradient against the same formula in LibTorch operations (autograd).
TEST(LightGcnTest, BatchLossMatchesAutograd) {
  const auto a = RandomAdjacency(5, 300, 30, 50);
  torch::manual_seed(4);
  const auto e0 = torch::randn({80, 8}) * 0.3;
  const auto u = torch::randint(0, 30, {64}, torch::kLong);
  const auto i = torch::randint(30, 80, {64}, torch::kLong), j = torch::randint(30, 80, {64}, torch::kLong);
  const double l2 = 0.05;

  auto x = e0.clone().requires_grad_(true);
  const auto fused = LightGcnBatchLoss(a, x, 3, l2, u, i, j);
  fused.backward();

  auto y = e0.clone().requires_grad_(true);
  const auto e = LightGcnPropagate(a, y, 3);
  const auto eu = e.index_select(0, u), ei = e.index_select(0, i), ej = e.index_select(0, j);
  const auto reference = torch::softplus((eu * ej).sum(1) - (eu * ei).sum(1)).mean() +
                         l2 * (y.index_select(0, u).pow(2).sum() + y.index_select(0, i).pow(2).sum() +
                               y.index_select(0, j).pow(2).sum()) / (2.0 * 64);
  reference.backward();
  EXPECT_NEAR(fused.item<double>(), reference.item<double>(), 1e-5);
  EXPECT_TRUE(torch::allclose(x.grad(), y.grad(), 1e-4, 1e-7)) << (x.grad() - y.grad()).abs().max();

  EXPECT_THROW(LightGcnBatchLoss(a, x, 3, l2, u, i, torch::full({64}, 80, torch::kLong)), std::invalid_argument);
}

// The fused Adam against torch::optim::Adam over a few steps.
TEST(LightGcnTest, AdamMatchesLibTorch) {
  torch::manual_seed(9);
  const auto start = torch::randn({50, 16});
  auto p = start.clone().requires_grad_(true);
  torch::optim::Adam reference({p}, torch::optim::AdamOptions(1e-2));
  auto q = start.clone();
  LightGcnAdam fused(q, 1e-2);
  for (int step = 0; step < 5; ++step) {
    const auto grad = torch::randn({50, 16});
    p.mutable_grad() = grad.clone();
    reference.step();
    fused.Step(q, grad);
  }
  EXPECT_TRUE(torch::allclose(p.detach(), q, 1e-5, 1e-6)) << (p.detach() - q).abs().max();
  EXPECT_FALSE(torch::allclose(q, start));
  EXPECT_THROW(fused.Step(q, torch::zeros({50, 8})), std::invalid_argument);
}

// Two planted groups: users 0-19 play items 0-19, users 20-39 items 20-39. Of a user's 20 group items,
// those with (7u + i) % 4 == 0 are held out, alternately to validation and test; the rest train.
struct World {
  EvalData data;
  std::vector<uint32_t> train, valid, test;
};

World TwoGroups() {
  World w;
  w.data.num_users = 40;
  w.data.num_items = 40;
  w.data.item_entities.assign(40, {});
  int held = 0;
  for (uint32_t u = 0; u < 40; ++u) {
    for (uint32_t i = 0; i < 40; ++i) {
      if (u / 20 != i / 20) continue;
      const auto index = uint32_t(w.data.interactions.size());
      w.data.interactions.push_back({u, i, 1.0f});
      if ((7 * u + i) % 4 != 0) {
        w.train.push_back(index);
      } else {
        (held++ % 2 == 0 ? w.valid : w.test).push_back(index);
      }
    }
  }
  return w;
}

LightGcnOptions SmallOptions(uint64_t seed = 1) {
  LightGcnOptions o;
  o.dim = 16;
  o.lr = 0.01;
  o.max_epochs = 40;
  o.eval_every = 2;
  o.patience = 3;
  o.seed = seed;
  return o;
}

std::vector<std::vector<float>> AllScores(const Baseline& model, uint32_t users) {
  std::vector<std::vector<float>> scores(users);
  for (uint32_t u = 0; u < users; ++u) model.ScoreUser(u, &scores[u]);
  return scores;
}

TEST(LightGcnTest, RanksTheUsersGroupAboveTheOtherGroup) {
  const World w = TwoGroups();
  auto model = MakeLightGcn(SmallOptions());
  EXPECT_EQ(model->name(), "LightGCN");
  EXPECT_EQ(model->tuning(), nullptr);
  std::vector<float> scores;
  EXPECT_THROW(model->ScoreUser(0, &scores), std::logic_error);
  // A fixed length (no validation): on this tiny world validation Recall@20 saturates within a few
  // epochs, before the groups are far apart.
  model->Fit(w.data, w.train, {});
  for (uint32_t index : w.test) {
    const Interaction& x = w.data.interactions[index];
    model->ScoreUser(x.user, &scores);
    ASSERT_EQ(scores.size(), 40u);
    const uint32_t other = x.user < 20 ? 20 : 0;
    const float best_other = *std::max_element(scores.begin() + other, scores.begin() + other + 20);
    EXPECT_GT(scores[x.item], best_other) << "user " << x.user << " held-out item " << x.item;
  }
  EXPECT_THROW(model->ScoreUser(40, &scores), std::invalid_argument);
}

TEST(LightGcnTest, SameSeedSameScores) {
  const World w = TwoGroups();
  auto a = MakeLightGcn(SmallOptions(5)), b = MakeLightGcn(SmallOptions(5)), c = MakeLightGcn(SmallOptions(6));
  a->Fit(w.data, w.train, w.valid);
  b->Fit(w.data, w.train, w.valid);
  c->Fit(w.data, w.train, w.valid);
  EXPECT_EQ(AllScores(*a, 40), AllScores(*b, 40));
  EXPECT_NE(AllScores(*a, 40), AllScores(*c, 40));
  // A refit starts from scratch.
  a->Fit(w.data, w.train, w.valid);
  EXPECT_EQ(AllScores(*a, 40), AllScores(*b, 40));
}

TEST(LightGcnTest, EarlyStoppingKeepsTheBestCheck) {
  const World w = TwoGroups();
  LightGcnOptions o = SmallOptions();
  o.lr = 0.003;  // slow enough for a curve that rises, then stalls
  o.max_epochs = 60;
  auto model = MakeLightGcn(o);
  model->Fit(w.data, w.train, w.valid);
  const Tuning* t = model->tuning();
  ASSERT_NE(t, nullptr);
  ASSERT_FALSE(t->grid.empty());
  ASSERT_LT(t->chosen, t->grid.size());
  for (size_t k = 0; k < t->grid.size(); ++k) {
    const int epoch = std::min(o.eval_every * int(k + 1), o.max_epochs);
    EXPECT_EQ(t->grid[k].setting, "epoch=" + std::to_string(epoch));
    // The chosen check is the first with the best validation Recall@20.
    if (k < t->chosen) {
      EXPECT_LT(t->grid[k].valid_recall20, t->grid[t->chosen].valid_recall20);
    } else if (k > t->chosen) {
      EXPECT_LE(t->grid[k].valid_recall20, t->grid[t->chosen].valid_recall20);
    }
  }
  // It stopped after `patience` checks without improvement, or at the epoch limit.
  const bool patience_ran_out = t->grid.size() - 1 - t->chosen == size_t(o.patience);
  EXPECT_TRUE(patience_ran_out || t->grid.back().setting == "epoch=60") << t->grid.back().setting;
  std::printf("validation curve:");
  for (const auto& g : t->grid) std::printf(" %s:%.3f", g.setting.c_str(), g.valid_recall20);
  std::printf(" (chosen %s)\n", t->grid[t->chosen].setting.c_str());

  // The kept model is the chosen check's: the warm protocol on the validation split measures the
  // Recall@20 and NDCG@20 tuning() reports for it.
  std::vector<std::vector<uint32_t>> seen(40), relevant(40);
  for (uint32_t index : w.train) seen[w.data.interactions[index].user].push_back(w.data.interactions[index].item);
  for (uint32_t index : w.valid) relevant[w.data.interactions[index].user].push_back(w.data.interactions[index].item);
  const RankingMetrics r = RankUsers(
      *model, 40,
      [&](uint32_t u, std::vector<uint32_t>* candidates) {
        candidates->clear();
        for (uint32_t i = 0; i < 40; ++i)
          if (std::find(seen[u].begin(), seen[u].end(), i) == seen[u].end()) candidates->push_back(i);
      },
      [&](uint32_t u) -> const std::vector<uint32_t>& { return relevant[u]; });
  EXPECT_NEAR(r.recall20, t->grid[t->chosen].valid_recall20, 1e-12);
  EXPECT_NEAR(r.ndcg20, t->grid[t->chosen].valid_ndcg20, 1e-12);
}

TEST(LightGcnTest, WithoutValidationTrainsAFixedLength) {
  const World w = TwoGroups();
  LightGcnOptions o = SmallOptions();
  o.max_epochs = 7;  // min(100, max_epochs)
  auto model = MakeLightGcn(o);
  model->Fit(w.data, w.train, {});
  ASSERT_NE(model->tuning(), nullptr);
  ASSERT_EQ(model->tuning()->grid.size(), 1u);
  EXPECT_EQ(model->tuning()->grid[0].setting, "epoch=7");
}

TEST(LightGcnTest, RefusesBadOptionsAndIndices) {
  LightGcnOptions o;
  o.dim = 0;
  EXPECT_THROW(MakeLightGcn(o), std::invalid_argument);
  o = LightGcnOptions{};
  o.batch = 0;
  EXPECT_THROW(MakeLightGcn(o), std::invalid_argument);
  o = LightGcnOptions{};
  o.device = "tpu";
  EXPECT_THROW(MakeLightGcn(o), std::invalid_argument);
  const World w = TwoGroups();
  auto model = MakeLightGcn(SmallOptions());
  EXPECT_THROW(model->Fit(w.data, {uint32_t(w.data.interactions.size())}, {}), std::invalid_argument);
}

// The size of `mosaic eval`'s Last.FM warm split (1,892 users, 17,632 items, 74,262 training pairs,
// here drawn at random): the time of an epoch of the default options (dim 64, 3 layers, batches of
// 2,048), printed. Two epochs.
TEST(LightGcnTest, EpochTimeAtLastFmScale) {
  EvalData data;
  data.num_users = 1892;
  data.num_items = 17632;
  data.item_entities.assign(data.num_items, {});
  SplitMix64 rng(11);
  std::vector<std::vector<bool>> taken(data.num_users, std::vector<bool>(data.num_items));
  std::vector<uint32_t> train;
  while (train.size() < 74262) {
    const auto u = uint32_t(rng.Below(data.num_users)), i = uint32_t(rng.Below(data.num_items));
    if (taken[u][i]) continue;
    taken[u][i] = true;
    train.push_back(uint32_t(data.interactions.size()));
    data.interactions.push_back({u, i, 1.0f});
  }
  LightGcnOptions o;
  o.max_epochs = 2;
  auto model = MakeLightGcn(o);
  const auto start = std::chrono::steady_clock::now();
  model->Fit(data, train, {});
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("Last.FM-sized epoch: %.3f s (2 epochs and setup in %.3f s)\n", seconds / 2, seconds);
  std::vector<float> scores;
  model->ScoreUser(0, &scores);
  EXPECT_EQ(scores.size(), data.num_items);
}

}  // namespace
}  // namespace mosaic::fusion
