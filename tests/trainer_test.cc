#include "fusion/trainer.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "fusion/cpu_memory.h"
#include "tests/test_util.h"

namespace mosaic::fusion {
namespace {

// A planted two-group world: users 0-9 play items of group 0 (items 0-14), users 10-19 group 1
// (items 15-29). Items of group g link to "artist" entities 2g, 2g+1 (relation 0) and "genre" entity
// 4 + g (relation 1). Item 29 has no interactions (cold) but its KG links.
constexpr int64_t kUsers = 20, kItems = 30, kEntities = 6, kCold = 29;

int64_t Group(int64_t item) { return item < 15 ? 0 : 1; }
uint32_t ItemNode(int64_t i) { return static_cast<uint32_t>(kUsers + i); }
uint32_t EntityNode(int64_t e) { return static_cast<uint32_t>(kUsers + kItems + e); }

TrainingGraph World(bool with_kg = true, bool with_text = true) {
  TrainingGraph g;
  g.num_users = kUsers;
  g.num_items = kItems;
  g.num_entities = kEntities;
  for (int64_t u = 0; u < kUsers; ++u)
    for (int64_t i = 0; i < kItems; ++i)
      if (i != kCold && Group(i) == u / 10 && (i + u) % 3 != 0) g.interactions.emplace_back(u, i);
  if (with_kg) {
    g.num_kg_relations = 2;
    for (int64_t i = 0; i < kItems; ++i) {
      g.triples.push_back({ItemNode(i), 0, EntityNode(2 * Group(i) + i % 2)});
      g.triples.push_back({ItemNode(i), 1, EntityNode(4 + Group(i))});
    }
  }
  if (with_text) {
    ModalityMatrix text;
    text.dim = 4;
    text.present.assign(kItems, 1);
    text.present[3] = 0;  // one item without text
    for (int64_t i = 0; i < kItems; ++i)
      for (int64_t d = 0; d < 4; ++d) text.values.push_back(std::sin(float(i * 4 + d)));
    g.modalities["text"] = text;
  }
  return g;
}

TrainOptions SmallOptions(uint64_t seed = 7) {
  TrainOptions o;
  o.dim = 16;
  o.relation_dim = 8;
  o.layer_dims = {16, 8};
  o.batch_size = 64;
  o.kg_batch_size = 32;
  o.max_neighbours = 6;  // below the busiest degrees, so sampling is exercised
  o.learning_rate = 0.02;
  o.seed = seed;
  return o;
}

torch::Tensor TrainFor(Trainer& t, int epochs) {
  for (int e = 0; e < epochs; ++e) t.RunEpoch();
  return t.Representations();
}

float Dot(const torch::Tensor& reps, int64_t a, int64_t b) { return (reps[a] * reps[b]).sum().item<float>(); }

TEST(TrainerTest, SameSeedSameRepresentations) {
  Trainer a(World(), SmallOptions()), b(World(), SmallOptions());
  EXPECT_TRUE(torch::equal(TrainFor(a, 3), TrainFor(b, 3)));
  Trainer c(World(), SmallOptions(8));
  EXPECT_FALSE(torch::equal(TrainFor(c, 3), TrainFor(a, 0)));
}

TEST(TrainerTest, ResumedRunEqualsUninterruptedRun) {
  Trainer straight(World(), SmallOptions());
  const auto expected = TrainFor(straight, 4);

  Trainer first(World(), SmallOptions());
  TrainFor(first, 2);
  const std::string checkpoint = first.SaveCheckpoint();
  Trainer resumed(World(), SmallOptions());
  resumed.LoadCheckpoint(checkpoint);
  EXPECT_EQ(resumed.epochs_done(), 2);
  EXPECT_TRUE(torch::allclose(TrainFor(resumed, 2), expected, 0, 0));
  EXPECT_EQ(resumed.epochs_done(), 4);
}

TEST(TrainerTest, LearnsThePlantedPreference) {
  Trainer t(World(), SmallOptions());
  const auto reps = TrainFor(t, 30);
  int correct = 0, total = 0;
  for (int64_t u = 0; u < kUsers; ++u)
    for (int64_t i = 0; i < kItems; ++i)
      for (int64_t j = 0; j < kItems; ++j) {
        if (Group(i) != u / 10 || Group(j) == u / 10) continue;
        correct += Dot(reps, u, kUsers + i) > Dot(reps, u, kUsers + j);
        ++total;
      }
  EXPECT_GT(double(correct) / total, 0.9);
}

// The cold item's row of Representations() is what InferItems computes from its content, its edges
// and the other nodes' stored rows: the path a newly ingested item takes.
TEST(TrainerTest, InferItemsReproducesTheColdItemsRepresentation) {
  Trainer t(World(), SmallOptions());
  const auto reps = TrainFor(t, 5);
  const auto& full = t.FullGraph();
  const auto from_cold = (full.edge_head == kUsers + kCold).nonzero().squeeze(1);
  GraphTensors edges{torch::zeros({from_cold.size(0)}, torch::kLong), full.edge_rel.index_select(0, from_cold),
                     full.edge_tail.index_select(0, from_cold)};
  ModalityTensors m;
  const auto& text = t.graph().modalities.at("text");
  m.vectors["text"] = torch::tensor(std::vector<float>(text.values.end() - 4, text.values.end())).view({1, 4});
  m.mask = torch::ones({1, 1}, torch::kBool);
  torch::NoGradGuard no_grad;
  const auto inferred = t.model()->InferItems(m, edges, reps);
  EXPECT_TRUE(torch::allclose(inferred[0], reps[kUsers + kCold], 1e-5, 1e-6))
      << inferred[0] << "\n" << reps[kUsers + kCold];
}

// Cold start goes through the graph: the same new item without its KG edges gets another
// representation, and ranks lower for a user whose items share its artist and genre.
TEST(TrainerTest, NewItemRanksHigherThroughItsKgNeighbours) {
  Trainer t(World(), SmallOptions());
  const auto reps = TrainFor(t, 30);
  ModalityTensors m;
  m.vectors["text"] = torch::tensor({0.3f, -0.2f, 0.1f, 0.5f}).view({1, 4});
  m.mask = torch::ones({1, 1}, torch::kBool);
  GraphTensors linked{torch::zeros({2}, torch::kLong), torch::tensor({0, 1}, torch::kLong),
                      torch::tensor({int64_t(EntityNode(0)), int64_t(EntityNode(4))}, torch::kLong)};
  GraphTensors unlinked{torch::zeros({0}, torch::kLong), torch::zeros({0}, torch::kLong),
                        torch::zeros({0}, torch::kLong)};
  torch::NoGradGuard no_grad;
  const auto with = t.model()->InferItems(m, linked, reps)[0];
  const auto without = t.model()->InferItems(m, unlinked, reps)[0];
  EXPECT_FALSE(torch::allclose(with, without));
  // Rank among the group-0 items for user 0 (who plays group 0): higher with the edges.
  auto rank = [&](const torch::Tensor& item) {
    const float s = (reps[0] * item).sum().item<float>();
    int above = 0;
    for (int64_t i = 0; i < kItems; ++i) above += Dot(reps, 0, kUsers + i) > s;
    return above;
  };
  EXPECT_LT(rank(with), rank(without));
}

// A trainer installs the huge-page allocator: large tensors start on a huge page, small ones keep
// LibTorch's alignment, and both hold what is written to them.
TEST(TrainerTest, LargeCpuTensorsStartOnAHugePage) {
  Trainer trainer(World(), SmallOptions());
  for (int round = 0; round < 3; ++round) {  // freed and allocated again, as steps do
    auto large = torch::full({int64_t(kHugePageTensorBytes / sizeof(float)) + 12345}, float(round));
    auto small = torch::full({1000}, 2.0f);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(large.data_ptr()) % kHugePageBytes, 0u);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(small.data_ptr()) % 64, 0u);
    EXPECT_EQ(large.sum().item<double>(), double(round) * double(large.numel()));
    EXPECT_EQ(small.sum().item<float>(), 2000.0f);
  }
  UseHugePagesForLargeCpuTensors();  // a second call changes nothing
  auto after = torch::empty({int64_t(kHugePageTensorBytes)}, torch::kUInt8);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(after.data_ptr()) % kHugePageBytes, 0u);
}

TEST(TrainerTest, RejectsInconsistentGraphs) {
  auto bad_item = World();
  bad_item.interactions.emplace_back(0, kItems);
  EXPECT_THROW(Trainer(bad_item, SmallOptions()), std::invalid_argument);
  auto bad_triple = World();
  bad_triple.triples.push_back({0, 0, EntityNode(0)});  // a user as a KG head
  EXPECT_THROW(Trainer(bad_triple, SmallOptions()), std::invalid_argument);
  auto bad_relation = World();
  bad_relation.triples.push_back({ItemNode(0), 2, EntityNode(0)});
  EXPECT_THROW(Trainer(bad_relation, SmallOptions()), std::invalid_argument);
  auto bad_text = World();
  bad_text.modalities["text"].values.pop_back();
  EXPECT_THROW(Trainer(bad_text, SmallOptions()), std::invalid_argument);
  auto options = SmallOptions();
  options.device = "tpu";
  EXPECT_THROW(Trainer(World(), options), std::invalid_argument);
}

TEST(TrainerTest, CheckpointOfAnotherModelIsRejected) {
  Trainer small(World(), SmallOptions());
  auto other = SmallOptions();
  other.dim = 8;
  Trainer different(World(), other);
  EXPECT_THROW(different.LoadCheckpoint(small.SaveCheckpoint()), std::invalid_argument);
  EXPECT_THROW(different.LoadCheckpoint("not a checkpoint"), std::invalid_argument);
}

TEST(TrainerTest, ModalityWidthsComeFromTheGraph) {
  EXPECT_EQ(Trainer::ModelConfig(World(), SmallOptions()).modality_dims, (std::map<std::string, int64_t>{{"text", 4}}));
  EXPECT_TRUE(Trainer::ModelConfig(World(true, false), SmallOptions()).modality_dims.empty());
}

TEST(TrainerTest, ConfigRoundTripsThroughJson) {
  const auto c = Trainer::ModelConfig(World(), SmallOptions());
  const auto back = ConfigFromJson(ConfigToJson(c));
  EXPECT_EQ(back.num_users, c.num_users);
  EXPECT_EQ(back.num_relations, c.num_relations);
  EXPECT_EQ(back.layer_dims, c.layer_dims);
  EXPECT_EQ(back.modality_dims, c.modality_dims);
  EXPECT_EQ(back.seed, c.seed);
  EXPECT_THROW(ConfigFromJson("{}"), std::invalid_argument);
}

// Data-parallel training (TrainOptions::group): two ranks, each a thread with its own Trainer, split
// every step's pairs and triples and average their gradients. The halves' mean gradients average to
// the whole batch's, so both ranks hold the same weights as each other, and the weights of one
// trainer alone up to float rounding.
TEST(TrainerTest, TwoRanksTrainTheModelOneTrainerTrains) {
  Trainer alone(World(), SmallOptions());
  const auto expected = TrainFor(alone, 3);
  const int port = testing::FreePort();
  std::vector<torch::Tensor> reps(2);
  std::vector<EpochReport> last(2);
  std::vector<std::thread> ranks;
  for (int r = 0; r < 2; ++r) {
    ranks.emplace_back([&, r] {
      TrainingGroupOptions g;
      g.master_port = port;
      g.rank = r;
      g.world_size = 2;
      TrainOptions o = SmallOptions();
      o.group = TrainingGroup::Join(g);
      Trainer t(World(), o);
      for (int e = 0; e < 3; ++e) last[size_t(r)] = t.RunEpoch();
      reps[size_t(r)] = t.Representations();
    });
  }
  for (auto& t : ranks) t.join();
  ASSERT_TRUE(reps[0].defined() && reps[1].defined());
  EXPECT_TRUE(torch::equal(reps[0], reps[1]));
  EXPECT_TRUE(torch::allclose(reps[0], expected, 1e-3, 1e-4)) << (reps[0] - expected).abs().max().item<float>();
  EXPECT_GT(last[0].bytes_allreduced, 0);
  EXPECT_EQ(last[0].bytes_allreduced, last[1].bytes_allreduced);
  EXPECT_EQ(last[0].bpr_loss, last[1].bpr_loss);  // the ranks' shares, summed over the group
}

}  // namespace
}  // namespace mosaic::fusion
