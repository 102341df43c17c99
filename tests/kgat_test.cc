#include "fusion/kgat.h"

#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>
#include <utility>
#include <vector>

namespace mosaic::fusion {
namespace {

// 6 users, 8 items, 5 entities; relation 0 = interaction (both directions), 1 = item -> entity,
// 2 = entity -> item. Users 0-2 like items 0-3 (which have entities 0, 1); users 3-5 like items 4-7
// (entities 2, 3). Entity 4 has no edge.
constexpr int64_t kUsers = 6, kItems = 8, kEntities = 5, kRelations = 3;

KgatConfig TinyConfig(uint64_t seed = 1) {
  KgatConfig c;
  c.num_users = kUsers;
  c.num_items = kItems;
  c.num_entities = kEntities;
  c.num_relations = kRelations;
  c.dim = 16;
  c.relation_dim = 8;
  c.layer_dims = {16, 8};
  c.modality_dims = {{"text", 6}, {"visual", 3}};  // mask columns: text, visual
  c.seed = seed;
  return c;
}

struct Edges {
  std::vector<int64_t> head, rel, tail;
  void Add(int64_t h, int64_t r_forward, int64_t r_backward, int64_t t) {
    head.push_back(h), rel.push_back(r_forward), tail.push_back(t);
    head.push_back(t), rel.push_back(r_backward), tail.push_back(h);
  }
  GraphTensors Tensors() const {
    auto t = [](const std::vector<int64_t>& v) { return torch::tensor(v, torch::kLong); };
    return {t(head), t(rel), t(tail)};
  }
};

int64_t Item(int64_t i) { return kUsers + i; }
int64_t Entity(int64_t e) { return kUsers + kItems + e; }
int64_t Group(int64_t item) { return item < 4 ? 0 : 1; }

// Interactions of the planted preference, skipping `skip_item` (e.g. a cold item).
std::vector<std::pair<int64_t, int64_t>> Interactions(int64_t skip_item = -1) {
  std::vector<std::pair<int64_t, int64_t>> out;
  for (int64_t u = 0; u < kUsers; ++u)
    for (int64_t i = 0; i < kItems; ++i)
      if (i != skip_item && Group(i) == u / 3) out.emplace_back(u, i);
  return out;
}

// Item-entity links: items of group 0 have entities 0 and 1, group 1 entities 2 and 3.
std::vector<std::pair<int64_t, int64_t>> Links(int64_t skip_item = -1) {
  std::vector<std::pair<int64_t, int64_t>> out;
  for (int64_t i = 0; i < kItems; ++i)
    if (i != skip_item)
      for (int64_t k = 0; k < 2; ++k) out.emplace_back(i, 2 * Group(i) + k);
  return out;
}

GraphTensors Graph(int64_t skip_interactions_of = -1, int64_t skip_links_of = -1) {
  Edges e;
  for (auto [u, i] : Interactions(skip_interactions_of)) e.Add(u, 0, 0, Item(i));
  for (auto [i, k] : Links(skip_links_of)) e.Add(Item(i), 1, 2, Entity(k));
  return e.Tensors();
}

// Every item has text; items 0-4 visual except item 3; item 5 has nothing. Absent rows hold NaN.
ModalityTensors Modalities() {
  ModalityTensors m;
  auto gen = at::detail::createCPUGenerator(99);
  auto text = torch::randn({kItems, 6}, gen);
  auto visual = torch::randn({kItems, 3}, gen);
  auto mask = torch::ones({kItems, 2}, torch::kBool);
  for (int64_t i : {3, 5, 6, 7}) mask.index_put_({i, 1}, false);
  mask.index_put_({5, 0}, false);
  for (int64_t i = 0; i < kItems; ++i) {
    if (!mask[i][0].item<bool>()) text[i].fill_(std::numeric_limits<float>::quiet_NaN());
    if (!mask[i][1].item<bool>()) visual[i].fill_(std::numeric_limits<float>::quiet_NaN());
  }
  m.vectors = {{"text", text}, {"visual", visual}};
  m.mask = mask;
  return m;
}

// Runs `steps` Adam steps of BPR + TransR on the planted preference (skipping `cold_item`'s
// interactions) and returns the eval-mode loss before and after.
std::pair<double, double> Train(Kgat& model, const GraphTensors& g, const ModalityTensors& m, int steps,
                                int64_t cold_item = -1) {
  std::vector<int64_t> users, pos, neg, h, r, tp, tn;
  for (auto [u, i] : Interactions(cold_item)) {
    users.push_back(u), pos.push_back(i);
    int64_t n = Group(i) == 0 ? 4 + (i + u) % 4 : (i + u) % 4;  // an item of the other group
    if (n == cold_item) n = Group(i) == 0 ? 4 : 0;
    neg.push_back(n);
  }
  for (auto [i, k] : Links()) h.push_back(Item(i)), r.push_back(1), tp.push_back(Entity(k)), tn.push_back(Entity(4));
  auto t = [](const std::vector<int64_t>& v) { return torch::tensor(v, torch::kLong); };
  auto loss = [&](bool training) {
    auto reps = model->Forward(g, m, training);
    return model->BprLoss(reps, t(users), t(pos), t(neg)) + model->TransRLoss(t(h), t(r), t(tp), t(tn));
  };
  double before;
  {
    torch::NoGradGuard no_grad;
    before = loss(false).item<double>();
  }
  torch::optim::Adam adam(model->parameters(), torch::optim::AdamOptions(0.01));
  for (int s = 0; s < steps; ++s) {
    adam.zero_grad();
    auto l = loss(true);
    EXPECT_TRUE(std::isfinite(l.item<double>()));
    l.backward();
    adam.step();
  }
  torch::NoGradGuard no_grad;
  return {before, loss(false).item<double>()};
}

TEST(KgatTest, OutputShapes) {
  Kgat model(TinyConfig());
  EXPECT_EQ(model->num_nodes(), kUsers + kItems + kEntities);
  EXPECT_EQ(model->total_dim(), 16 + 16 + 8);
  EXPECT_EQ(model->ModalityNames(), (std::vector<std::string>{"text", "visual"}));
  auto g = Graph();
  auto reps = model->Forward(g, Modalities(), false);
  EXPECT_EQ(reps.sizes(), (std::vector<int64_t>{kUsers + kItems + kEntities, 40}));
  EXPECT_FALSE(torch::isnan(reps).any().item<bool>());
  auto score = model->Score(reps, torch::tensor({0, 1, 2}, torch::kLong), torch::tensor({0, 5, 7}, torch::kLong));
  EXPECT_EQ(score.sizes(), (std::vector<int64_t>{3}));
  EXPECT_EQ(model->AttentionWeights().sizes(), (std::vector<int64_t>{g.edge_head.size(0)}));
  // Each propagated layer is L2-normalised (entity 4 has no edge but still a bias-driven output).
  auto layer1 = reps.slice(1, 16, 32);
  EXPECT_TRUE(torch::allclose(layer1.norm(2, 1), torch::ones({reps.size(0)}), 1e-5, 1e-5));
}

TEST(KgatTest, EmptyGraph) {
  Kgat model(TinyConfig());
  GraphTensors g{torch::zeros({0}, torch::kLong), torch::zeros({0}, torch::kLong), torch::zeros({0}, torch::kLong)};
  auto reps = model->Forward(g, Modalities(), true);
  EXPECT_EQ(reps.sizes(), (std::vector<int64_t>{kUsers + kItems + kEntities, 40}));
  EXPECT_FALSE(torch::isnan(reps).any().item<bool>());
}

TEST(KgatTest, AttentionSumsToOnePerHead) {
  Kgat model(TinyConfig());
  auto g = Graph();
  model->Forward(g, Modalities(), false);
  auto pi = model->AttentionWeights();
  EXPECT_TRUE((pi >= 0).all().item<bool>());
  auto sums = torch::zeros({model->num_nodes()}).index_add(0, g.edge_head, pi);
  auto counts = torch::zeros({model->num_nodes()}).index_add(0, g.edge_head, torch::ones_like(pi));
  for (int64_t n = 0; n < model->num_nodes(); ++n) {
    if (counts[n].item<float>() > 0) {
      EXPECT_NEAR(sums[n].item<float>(), 1.0f, 1e-5) << "node " << n;
    } else {
      EXPECT_EQ(sums[n].item<float>(), 0.0f) << "node " << n;
    }
  }
  EXPECT_EQ(counts[Entity(4)].item<float>(), 0.0f);
}

TEST(KgatTest, AbsentModalityHasNoInfluence) {
  Kgat model(TinyConfig());
  auto m = Modalities();
  torch::NoGradGuard no_grad;
  auto before = model->ItemLayer0(m, false).clone();
  EXPECT_FALSE(torch::isnan(before).any().item<bool>());
  model->modality_projection[1]->weight.add_(1.0);  // visual
  model->modality_projection[1]->bias.add_(0.5);
  auto after = model->ItemLayer0(m, false);
  EXPECT_TRUE(torch::equal(before[3], after[3]));  // item 3 has no visual vector
  EXPECT_TRUE(torch::equal(before[5], after[5]));
  EXPECT_FALSE(torch::equal(before[0], after[0]));  // item 0 has one
  // An item with no modality gets only its id part; a cold one with no modality is zero.
  EXPECT_TRUE(torch::equal(after[5], model->item_embedding->weight[5]));
  m.cold = torch::zeros({kItems}, torch::kBool);
  m.cold.index_put_({5}, true);
  EXPECT_TRUE(torch::equal(model->ItemLayer0(m, false)[5], torch::zeros({16})));
}

TEST(KgatTest, GradientsAreFiniteWithNanInAbsentRows) {
  Kgat model(TinyConfig());
  auto reps = model->Forward(Graph(), Modalities(), true);
  auto loss = model->BprLoss(reps, torch::tensor({0, 3}, torch::kLong), torch::tensor({3, 5}, torch::kLong),
                             torch::tensor({5, 3}, torch::kLong));
  loss.backward();
  for (const auto& p : model->named_parameters()) {
    if (p.value().grad().defined()) {
      EXPECT_TRUE(torch::isfinite(p.value().grad()).all().item<bool>()) << p.key();
    }
  }
}

TEST(KgatTest, TrainingReducesLoss) {
  Kgat model(TinyConfig());
  auto [before, after] = Train(model, Graph(), Modalities(), 60);
  EXPECT_LT(after, before * 0.7) << before << " -> " << after;
  // The planted preference: users 0-2 score group-0 items above group-1 items.
  torch::NoGradGuard no_grad;
  auto reps = model->Forward(Graph(), Modalities(), false);
  auto s = model->Score(reps, torch::tensor({0, 0}, torch::kLong), torch::tensor({1, 6}, torch::kLong));
  EXPECT_GT(s[0].item<float>(), s[1].item<float>());
}

TEST(KgatTest, SameSeedSameOutputs) {
  Kgat a(TinyConfig(7)), b(TinyConfig(7)), c(TinyConfig(8));
  auto g = Graph();
  auto m = Modalities();
  auto ra = a->Forward(g, m, true), rb = b->Forward(g, m, true), rc = c->Forward(g, m, true);
  EXPECT_TRUE(torch::equal(ra, rb));
  EXPECT_FALSE(torch::equal(ra, rc));
  EXPECT_TRUE(torch::equal(a->Forward(g, m, false), b->Forward(g, m, false)));
}

TEST(KgatTest, ColdItemBenefitsFromSharedEntities) {
  // Item 7 is cold: no interactions, no id embedding, no modality; it links to entities 0 and 1,
  // which user 0's items (0-3) share.
  constexpr int64_t kCold = 7;
  auto m = Modalities();
  m.cold = torch::zeros({kItems}, torch::kBool);
  m.cold.index_put_({kCold}, true);
  Edges e;
  for (auto [u, i] : Interactions(kCold)) e.Add(u, 0, 0, Item(i));
  for (auto [i, k] : Links(kCold)) e.Add(Item(i), 1, 2, Entity(k));
  auto without = e.Tensors();
  for (int64_t k : {0, 1}) e.Add(Item(kCold), 1, 2, Entity(k));
  auto with = e.Tensors();

  Kgat model(TinyConfig(3));
  Train(model, with, m, 60, kCold);
  torch::NoGradGuard no_grad;
  auto user = torch::tensor({0}, torch::kLong), item = torch::tensor({kCold}, torch::kLong);
  const float linked = model->Score(model->Forward(with, m, false), user, item).item<float>();
  const float unlinked = model->Score(model->Forward(without, m, false), user, item).item<float>();
  EXPECT_GT(linked, unlinked);
}

TEST(KgatTest, RejectsBadInputs) {
  Kgat model(TinyConfig());
  auto g = Graph();
  g.edge_rel = g.edge_rel.clone();
  g.edge_rel.index_put_({0}, kRelations);
  EXPECT_THROW(model->Forward(g, Modalities(), false), std::invalid_argument);
  auto m = Modalities();
  m.mask = m.mask.slice(1, 0, 1);
  EXPECT_THROW(model->Forward(Graph(), m, false), std::invalid_argument);
  EXPECT_THROW(model->TransRLoss(torch::tensor({0}, torch::kLong), torch::tensor({0}, torch::kLong),
                                 torch::tensor({1}, torch::kLong), torch::tensor({2}, torch::kLong)),
               std::logic_error);
}

}  // namespace
}  // namespace mosaic::fusion
