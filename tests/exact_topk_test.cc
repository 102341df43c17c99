#include "tests/exact_topk.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <stdexcept>
#include <vector>

namespace mosaic::fusion {
namespace {

// Brute force: every admissible candidate, scored in double, sorted by (score desc, id asc).
TopK Reference(const at::Tensor& queries, const at::Tensor& items, int64_t q, int64_t k,
               const std::vector<int64_t>& exclude, const std::vector<int64_t>& allowed) {
  const at::Tensor qt = queries.to(at::kDouble).contiguous();
  const at::Tensor it = items.to(at::kDouble).contiguous();
  const auto qd = qt.accessor<double, 2>();
  const auto id = it.accessor<double, 2>();
  const int64_t n = items.size(0), d = items.size(1);
  const std::set<int64_t> excluded(exclude.begin(), exclude.end());
  std::set<int64_t> candidates(allowed.begin(), allowed.end());
  if (allowed.empty()) {
    for (int64_t i = 0; i < n; ++i) candidates.insert(i);
  }
  std::vector<std::pair<double, int64_t>> scored;
  for (int64_t i : candidates) {
    if (excluded.count(i)) continue;
    double s = 0;
    for (int64_t j = 0; j < d; ++j) s += qd[q][j] * id[i][j];
    scored.push_back({s, i});
  }
  std::sort(scored.begin(), scored.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  });
  TopK out;
  for (size_t j = 0; j < scored.size() && static_cast<int64_t>(j) < k; ++j) {
    out.ids.push_back(scored[j].second);
    out.scores.push_back(static_cast<float>(scored[j].first));
  }
  return out;
}

// Small integer entries: every dot product is exact in float, and equal scores are common.
at::Tensor IntegerData(int64_t rows, int64_t d, at::Generator& gen) {
  return at::randint(-2, 3, {rows, d}, gen, at::TensorOptions().dtype(at::kFloat));
}

void ExpectEqual(const TopK& got, const TopK& want) {
  EXPECT_EQ(got.ids, want.ids);
  ASSERT_EQ(got.scores.size(), want.scores.size());
  for (size_t j = 0; j < got.scores.size(); ++j) EXPECT_NEAR(got.scores[j], want.scores[j], 1e-4);
}

TEST(ExactTopK, MatchesBruteForceOnIntegerData) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(7);
  for (int64_t q : {1, 3, 17}) {
    for (int64_t n : {1, 5, 64, 300}) {
      for (int64_t k : {1, 4, 20, 64}) {
        const at::Tensor queries = IntegerData(q, 6, gen);
        const at::Tensor items = IntegerData(n, 6, gen);
        const auto got = ExactTopK(queries, items, k);
        ASSERT_EQ(got.size(), static_cast<size_t>(q));
        for (int64_t r = 0; r < q; ++r) {
          SCOPED_TRACE(testing::Message() << "Q=" << q << " N=" << n << " k=" << k << " row " << r);
          ExpectEqual(got[r], Reference(queries, items, r, k, {}, {}));
        }
      }
    }
  }
}

TEST(ExactTopK, MatchesBruteForceOnGaussianData) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(11);
  const at::Tensor queries = at::randn({8, 32}, gen);
  const at::Tensor items = at::randn({2000, 32}, gen);
  const auto got = ExactTopK(queries, items, 25);
  for (int64_t r = 0; r < 8; ++r) ExpectEqual(got[r], Reference(queries, items, r, 25, {}, {}));
}

TEST(ExactTopK, DoubleInputsAndOddLayouts) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(5);
  const at::Tensor queries = IntegerData(4, 9, gen).to(at::kDouble);
  const at::Tensor items = IntegerData(9, 120, gen).t();  // non-contiguous [120, 9]
  const auto got = ExactTopK(queries, items, 10);
  for (int64_t r = 0; r < 4; ++r) ExpectEqual(got[r], Reference(queries, items, r, 10, {}, {}));
}

TEST(ExactTopK, ExcludesSeenItems) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(3);
  const at::Tensor queries = IntegerData(5, 6, gen);
  const at::Tensor items = IntegerData(200, 6, gen);
  std::vector<std::vector<int64_t>> exclude(5);
  // Exclude each row's own best items (and some duplicates) so the exclusion matters.
  const auto plain = ExactTopK(queries, items, 8);
  for (int64_t r = 0; r < 5; ++r) {
    exclude[r] = {plain[r].ids[0], plain[r].ids[2], plain[r].ids[2], r * 30};
  }
  exclude[4].clear();
  const auto got = ExactTopK(queries, items, 8, exclude);
  for (int64_t r = 0; r < 5; ++r) {
    ExpectEqual(got[r], Reference(queries, items, r, 8, exclude[r], {}));
    for (int64_t id : exclude[r]) {
      EXPECT_EQ(std::count(got[r].ids.begin(), got[r].ids.end(), id), 0);
    }
  }
}

TEST(ExactTopK, ExcludedItemsAreNeverReturnedEvenWhenKIsLarge) {
  const at::Tensor queries = at::ones({1, 2});
  const at::Tensor items = at::arange(10, at::kFloat).view({5, 2});
  const auto got = ExactTopK(queries, items, 10, {{0, 3}});
  EXPECT_EQ(got[0].ids, (std::vector<int64_t>{4, 2, 1}));
}

TEST(ExactTopK, AllowedSubset) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(9);
  const at::Tensor queries = IntegerData(6, 6, gen);
  const at::Tensor items = IntegerData(150, 6, gen);
  const std::vector<int64_t> allowed{149, 3, 77, 10, 11, 12, 3, 90, 0, 140, 141, 55};
  std::vector<std::vector<int64_t>> exclude(6);
  exclude[1] = {77, 5, 149};  // 5 is not allowed: ignored
  exclude[2] = {0};
  for (int64_t k : {1, 3, 11, 50}) {
    const auto got = ExactTopK(queries, items, k, exclude, allowed);
    for (int64_t r = 0; r < 6; ++r) {
      SCOPED_TRACE(testing::Message() << "k=" << k << " row " << r);
      ExpectEqual(got[r], Reference(queries, items, r, k, exclude[r], allowed));
    }
  }
}

TEST(ExactTopK, TiesGoToLowerIds) {
  // Every item scores the same: the lowest ids win, in id order.
  const at::Tensor queries = at::ones({2, 3});
  const at::Tensor items = at::ones({1000, 3});
  const auto got = ExactTopK(queries, items, 5);
  for (const auto& row : got) EXPECT_EQ(row.ids, (std::vector<int64_t>{0, 1, 2, 3, 4}));

  // A strict winner, then a tie straddling the k-th place.
  at::Tensor mixed = at::zeros({50, 1});
  mixed[40][0] = 2;
  mixed[7][0] = 1;
  mixed[30][0] = 1;
  mixed[3][0] = 1;
  mixed[45][0] = 1;
  const auto tied = ExactTopK(at::ones({1, 1}), mixed, 4);
  EXPECT_EQ(tied[0].ids, (std::vector<int64_t>{40, 3, 7, 30}));
  EXPECT_EQ(tied[0].scores, (std::vector<float>{2, 1, 1, 1}));

  // Ties with exclusion and an allowed subset: ids, not positions, decide.
  const auto sub = ExactTopK(queries, items, 3, {{500}, {}}, {900, 500, 20, 700});
  EXPECT_EQ(sub[0].ids, (std::vector<int64_t>{20, 700, 900}));
  EXPECT_EQ(sub[1].ids, (std::vector<int64_t>{20, 500, 700}));
}

TEST(ExactTopK, KLargerThanCandidatesReturnsAll) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(1);
  const at::Tensor queries = IntegerData(3, 4, gen);
  const at::Tensor items = IntegerData(7, 4, gen);
  const auto got = ExactTopK(queries, items, 100);
  for (int64_t r = 0; r < 3; ++r) {
    EXPECT_EQ(got[r].ids.size(), 7u);
    ExpectEqual(got[r], Reference(queries, items, r, 100, {}, {}));
  }
  const auto sub = ExactTopK(queries, items, 100, {}, {6, 2});
  for (const auto& row : sub) EXPECT_EQ(row.ids.size(), 2u);
}

TEST(ExactTopK, EmptyInputs) {
  EXPECT_TRUE(ExactTopK(at::zeros({0, 4}), at::zeros({5, 4}), 3).empty());
  const auto none = ExactTopK(at::zeros({2, 4}), at::zeros({0, 4}), 3);
  ASSERT_EQ(none.size(), 2u);
  EXPECT_TRUE(none[0].ids.empty());
}

TEST(ExactTopK, NanScoresAreDropped) {
  at::Tensor items = at::ones({4, 2});
  items[1][0] = std::nan("");
  const auto got = ExactTopK(at::ones({1, 2}), items, 4);
  EXPECT_EQ(got[0].ids, (std::vector<int64_t>{0, 2, 3}));
}

TEST(ExactTopK, BadArgumentsThrow) {
  const at::Tensor queries = at::zeros({2, 4});
  const at::Tensor items = at::zeros({5, 4});
  EXPECT_THROW(ExactTopK(queries, at::zeros({5, 3}), 1), std::invalid_argument);
  EXPECT_THROW(ExactTopK(at::zeros({4}), items, 1), std::invalid_argument);
  EXPECT_THROW(ExactTopK(queries, at::zeros({5, 4, 1}), 1), std::invalid_argument);
  EXPECT_THROW(ExactTopK(queries, items, 0), std::invalid_argument);
  EXPECT_THROW(ExactTopK(queries, items, -1), std::invalid_argument);
  EXPECT_THROW(ExactTopK(queries.to(at::kLong), items, 1), std::invalid_argument);
  EXPECT_THROW(ExactTopK(queries, items, 1, {{0}}), std::invalid_argument);  // 1 list for 2 queries
  EXPECT_THROW(ExactTopK(queries, items, 1, {{0}, {5}}), std::invalid_argument);
  EXPECT_THROW(ExactTopK(queries, items, 1, {}, {0, -1}), std::invalid_argument);
  EXPECT_THROW(ExactTopK(queries, items, 1, {}, {5}), std::invalid_argument);
}

}  // namespace
}  // namespace mosaic::fusion
