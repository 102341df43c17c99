// Users folded in from their history (fusion/fold_in.h), on hand-made item representations with the
// answers worked out in the comments.
#include "fusion/fold_in.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <vector>

#include "tests/eval_fixtures.h"

namespace mosaic::fusion {
namespace {

// Two items along the axes: v0 = (1, 0), v1 = (0, 1). G = I / 2, s = trace(G) / 2 = 1/2. A user who
// played item 0 (|P| = 1), alpha 1, lambda 0.1: A = v0 v0^T + (G + 0.1 s I) = diag(1 + 0.55, 0.55),
// b = v0, so x = (1 / 1.55, 0).
TEST(FoldInTest, OrthogonalItemsWorkedExample) {
  const std::vector<float> items = {1, 0, 0, 1};
  UserFoldIn fold_in(items.data(), 2, 2, {1.0, 0.1});
  const std::vector<float> x = fold_in.User({0});
  ASSERT_EQ(x.size(), 2u);
  EXPECT_NEAR(x[0], 1 / 1.55, 1e-6);
  EXPECT_NEAR(x[1], 0.0, 1e-7);
  // Repeats count once; the order does not matter.
  EXPECT_EQ(fold_in.User({0, 0}), x);
}

// Items v0 = (1, 0), v1 = (1, 1); a user who played item 1, alpha 1, lambda 0.
// G = ((1,0;0,0) + (1,1;1,1)) / 2 = (1, .5; .5, .5). A = v1 v1^T + G = (2, 1.5; 1.5, 1.5), det 0.75,
// b = (1, 1): x = A^-1 b = (1.5 - 1.5, -1.5 + 2) / 0.75 = (0, 2/3). Item 1 scores 2/3, item 0 scores 0:
// the played item is pulled toward 1 and every item toward 0.
TEST(FoldInTest, CorrelatedItemsWorkedExample) {
  const std::vector<float> items = {1, 0, 1, 1};
  UserFoldIn fold_in(items.data(), 2, 2, {1.0, 0.0});
  const std::vector<float> x = fold_in.User({1});
  EXPECT_NEAR(x[0], 0.0, 1e-6);
  EXPECT_NEAR(x[1], 2.0 / 3.0, 1e-6);
}

TEST(FoldInTest, EmptyHistoryIsZeroAndBadIndexThrows) {
  const std::vector<float> items = {1, 0, 0, 1};
  UserFoldIn fold_in(items.data(), 2, 2);
  EXPECT_EQ(fold_in.User({}), std::vector<float>(2, 0.0f));
  EXPECT_THROW(fold_in.User({2}), std::invalid_argument);
}

// A dot-product model with two tastes: items 0-2 along (1, 0), items 3-5 along (0, 1) (each with a
// small distinct second coordinate, so no two items tie). Users 0-1 play the first three, 2-3 the last.
class TwoTastes : public Baseline {
 public:
  std::string name() const override { return "two tastes"; }
  void Fit(const EvalData&, const std::vector<uint32_t>&, const std::vector<uint32_t>&) override {
    items_ = {1, .01f, 1, .02f, 1, .03f, .01f, 1, .02f, 1, .03f, 1};
  }
  void ScoreUser(uint32_t, std::vector<float>*) const override {}
  ItemFactors Factors() const override { return {items_.data(), 6, 2}; }

 private:
  std::vector<float> items_;
};

// Each user, folded in from two training plays, ranks the third item of the same taste first among the
// items not played; the grid is searched on the validation play and reported.
TEST(FoldInTest, UsersFromHistoryRankTheirTasteFirst) {
  EvalData data = Empty(4, 6);
  for (uint32_t u = 0; u < 4; ++u) {
    const uint32_t first = u < 2 ? 0 : 3;
    for (uint32_t i = first; i < first + 3; ++i) data.interactions.push_back({u, i});
  }
  // Users 0 and 2 keep their third item for validation.
  std::vector<uint32_t> train, valid;
  for (uint32_t i = 0; i < data.interactions.size(); ++i) {
    const auto& x = data.interactions[i];
    ((x.user == 0 && x.item == 2) || (x.user == 2 && x.item == 5) ? valid : train).push_back(i);
  }
  TwoTastes trained;
  trained.Fit(data, train, valid);
  auto model = MakeUsersFromHistory(&trained, "from history");
  model->Fit(data, train, valid);
  const std::vector<float> s0 = Score(*model, 0), s2 = Score(*model, 2);
  for (uint32_t other : {3u, 4u, 5u}) EXPECT_GT(s0[2], s0[other]);
  for (uint32_t other : {0u, 1u, 2u}) EXPECT_GT(s2[5], s2[other]);
  ASSERT_NE(model->tuning(), nullptr);
  EXPECT_EQ(model->tuning()->grid.size(), FoldInGrid().size());
  EXPECT_DOUBLE_EQ(model->tuning()->grid[model->tuning()->chosen].valid_recall20, 1.0);
}

TEST(FoldInTest, UnfittedModelIsRefused) {
  TwoTastes unfitted;  // its Factors() claim 6 items where the data has 3
  EvalData data = Empty(1, 3);
  auto model = MakeUsersFromHistory(&unfitted, "from history");
  EXPECT_THROW(model->Fit(data, {}, {}), std::logic_error);
}

}  // namespace
}  // namespace mosaic::fusion
