// The data-parallel training group (fusion/training_group.h): ranks as threads of this process on
// loopback, joined through a real TCPStore and Gloo. Collectives give every rank the same values,
// and a rank that leaves makes the others' next collective fail with a message, not hang.
#include "fusion/training_group.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <chrono>
#include <functional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "tests/test_util.h"

namespace mosaic::fusion {
namespace {

// Runs body(group) on `world` threads, one rank each, joined at a fresh port.
void OnRanks(int world, const std::function<void(TrainingGroup&)>& body, int timeout_ms = 20000) {
  const int port = testing::FreePort();
  std::vector<std::thread> threads;
  std::vector<std::string> errors(static_cast<size_t>(world));
  for (int r = 0; r < world; ++r) {
    threads.emplace_back([&, r] {
      try {
        TrainingGroupOptions o;
        o.master_port = port;
        o.rank = r;
        o.world_size = world;
        o.timeout = std::chrono::milliseconds(timeout_ms);
        auto group = TrainingGroup::Join(o);
        body(*group);
      } catch (const std::exception& e) {
        errors[size_t(r)] = e.what();
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int r = 0; r < world; ++r) EXPECT_EQ(errors[size_t(r)], "") << "rank " << r;
}

TEST(TrainingGroupTest, CollectivesAgreeOnEveryRank) {
  for (int world : {2, 3}) {
    OnRanks(world, [world](TrainingGroup& g) {
      EXPECT_EQ(g.world_size(), world);
      const std::vector<double> sum = g.Sum({double(g.rank()), 1.5});
      EXPECT_DOUBLE_EQ(sum[0], world * (world - 1) / 2.0);
      EXPECT_DOUBLE_EQ(sum[1], 1.5 * world);
      EXPECT_EQ(g.BroadcastBytes(g.rank() == 0 ? std::string("rank zero's\0bytes", 17) : "ignored"),
                std::string("rank zero's\0bytes", 17));
      EXPECT_EQ(g.BroadcastBytes(""), "");

      // Gradients: rank r holds r + 1 everywhere (and one parameter without a gradient on rank 0).
      auto a = torch::zeros({3, 2}, torch::requires_grad());
      auto b = torch::zeros({4}, torch::requires_grad());
      (a.sum() * double(g.rank() + 1)).backward();
      if (g.rank() > 0) (b.sum() * double(g.rank() + 1)).backward();
      const int64_t bytes = g.AverageGradients({a, b});
      EXPECT_EQ(bytes, 10 * 4);
      const double mean_a = (world + 1) / 2.0;
      double sum_b = 0;
      for (int r = 1; r < world; ++r) sum_b += r + 1;
      EXPECT_TRUE(torch::allclose(a.grad(), torch::full({3, 2}, mean_a)));
      EXPECT_TRUE(torch::allclose(b.grad(), torch::full({4}, sum_b / world)));
      EXPECT_EQ(g.bytes_allreduced(), 40);

      std::vector<at::Tensor> t{torch::full({5}, double(g.rank()))};
      g.Broadcast(t);
      EXPECT_TRUE(torch::equal(t[0], torch::zeros({5})));
      g.Barrier();
    });
  }
}

TEST(TrainingGroupTest, ARankThatLeavesStopsTheOthersWithAnError) {
  const int port = testing::FreePort();
  std::string error;
  std::thread leaver([&] {
    TrainingGroupOptions o;
    o.master_port = port;
    o.rank = 1;
    o.world_size = 2;
    o.timeout = std::chrono::milliseconds(5000);
    auto group = TrainingGroup::Join(o);
    group->Sum({1});
    // Leaves: the group is destroyed, its connections close.
  });
  TrainingGroupOptions o;
  o.master_port = port;
  o.world_size = 2;
  o.timeout = std::chrono::milliseconds(5000);
  auto group = TrainingGroup::Join(o);
  group->Sum({1});
  leaver.join();
  const auto start = std::chrono::steady_clock::now();
  try {
    group->Sum({1});
  } catch (const std::runtime_error& e) {
    error = e.what();
  }
  EXPECT_NE(error.find("training group (rank 0 of 2): allreduce failed"), std::string::npos) << error;
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(30));
}

TEST(TrainingGroupTest, RefusesBadRanksAndAnAbsentMaster) {
  TrainingGroupOptions o;
  o.world_size = 2;
  o.rank = 2;
  EXPECT_THROW(TrainingGroup::Join(o), std::invalid_argument);
  o.rank = 0;
  o.master_port = 70000;
  EXPECT_THROW(TrainingGroup::Join(o), std::invalid_argument);
  // Rank 1 of a group whose rank 0 never comes: a clear error within the timeout.
  o.rank = 1;
  o.master_port = testing::FreePort();
  o.timeout = std::chrono::milliseconds(1500);
  try {
    TrainingGroup::Join(o);
    ADD_FAILURE() << "joined a group with no rank 0";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("could not join 2 ranks at 127.0.0.1:"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace mosaic::fusion
