#include "fusion/kgat_ranker.h"

#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <stdexcept>

namespace mosaic::fusion {
namespace {

class KgatRanker : public Baseline {
 public:
  explicit KgatRanker(KgatRankerOptions options) : options_(std::move(options)) {}

  std::string name() const override { return options_.name; }

  void Fit(const EvalData& data, const std::vector<uint32_t>& train, const std::vector<uint32_t>& valid) override {
    TrainingGraph graph = BuildTrainingGraph(data, train, options_.use_kg);
    const TrainOptions& o = options_.train;
    Trainer trainer(std::move(graph), o);
    const auto users = static_cast<int64_t>(data.num_users), items = static_cast<int64_t>(data.num_items);

    // Validation: Recall@20 over every item not in the user's training set.
    std::vector<std::vector<int64_t>> seen(data.num_users), relevant(data.num_users);
    for (uint32_t i : train) seen[data.interactions.at(i).user].push_back(data.interactions[i].item);
    for (uint32_t i : valid) relevant[data.interactions.at(i).user].push_back(data.interactions[i].item);
    std::vector<int64_t> valid_users;
    for (uint32_t u = 0; u < data.num_users; ++u)
      if (!relevant[u].empty()) valid_users.push_back(u);
    auto validation_recall = [&](const torch::Tensor& reps) {
      const auto user_reps = reps.narrow(0, 0, users);
      const auto item_reps = reps.narrow(0, users, items);
      double total = 0;
      constexpr int64_t kBlock = 512;
      for (size_t b = 0; b < valid_users.size(); b += kBlock) {
        const size_t e = std::min(valid_users.size(), b + kBlock);
        std::vector<int64_t> block(valid_users.begin() + static_cast<long>(b), valid_users.begin() + static_cast<long>(e));
        auto scores = user_reps.index_select(0, torch::tensor(block, torch::kLong)).matmul(item_reps.t());
        auto* row = scores.data_ptr<float>();
        for (size_t k = 0; k < block.size(); ++k)
          for (int64_t i : seen[block[k]]) row[static_cast<int64_t>(k) * items + i] = -std::numeric_limits<float>::infinity();
        const auto top = std::get<1>(scores.topk(std::min<int64_t>(20, items), 1)).contiguous();
        const auto* t = top.data_ptr<int64_t>();
        for (size_t k = 0; k < block.size(); ++k) {
          const auto& rel = relevant[block[k]];
          int hits = 0;
          for (int64_t j = 0; j < top.size(1); ++j)
            hits += std::find(rel.begin(), rel.end(), t[static_cast<int64_t>(k) * top.size(1) + j]) != rel.end();
          total += static_cast<double>(hits) / static_cast<double>(rel.size());
        }
      }
      return valid_users.empty() ? 0.0 : total / static_cast<double>(valid_users.size());
    };

    const bool verbose = std::getenv("MOSAIC_TRAIN_LOG") != nullptr;
    torch::Tensor best;
    double best_recall = -1;
    int since_best = 0;
    for (int epoch = 1; epoch <= o.epochs; ++epoch) {
      const EpochReport r = trainer.RunEpoch();
      const bool last = epoch == o.epochs;
      if (epoch % options_.validate_every != 0 && !last) continue;
      auto reps = trainer.Representations();
      const double recall = validation_recall(reps);
      if (verbose)
        std::fprintf(stderr, "[%s] epoch %d bpr %.4f kg %.4f %.1fs valid R@20 %.4f\n", options_.name.c_str(), epoch,
                     r.bpr_loss, r.kg_loss, r.seconds, recall);
      if (recall > best_recall || valid_users.empty()) {
        best_recall = recall;
        best = reps;
        since_best = 0;
      } else if (++since_best >= options_.patience) {
        break;
      }
    }
    dim_ = best.size(1);
    reps_.assign(best.data_ptr<float>(), best.data_ptr<float>() + best.numel());
    num_users_ = data.num_users;
    num_items_ = data.num_items;
  }

  ItemFactors Factors() const override {
    if (reps_.empty()) return {};
    return {reps_.data() + size_t(num_users_) * size_t(dim_), num_items_, size_t(dim_)};
  }

  void ScoreUser(uint32_t user, std::vector<float>* scores) const override {
    if (user >= num_users_) throw std::invalid_argument("user " + std::to_string(user) + " out of range");
    scores->assign(num_items_, 0.0f);
    const float* u = reps_.data() + static_cast<size_t>(user) * static_cast<size_t>(dim_);
    for (uint32_t i = 0; i < num_items_; ++i) {
      const float* v = reps_.data() + (static_cast<size_t>(num_users_) + i) * static_cast<size_t>(dim_);
      float s = 0;
      for (int64_t d = 0; d < dim_; ++d) s += u[d] * v[d];
      (*scores)[i] = s;
    }
  }

 private:
  KgatRankerOptions options_;
  std::vector<float> reps_;  // [num_users + num_items, dim_] rows of the best validated epoch
  int64_t dim_ = 0;
  uint32_t num_users_ = 0, num_items_ = 0;
};

}  // namespace

std::unique_ptr<Baseline> MakeKgatRanker(const KgatRankerOptions& options) {
  return std::make_unique<KgatRanker>(options);
}

}  // namespace mosaic::fusion
