#include "fusion/item_index.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <random>
#include <set>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

#include "tests/exact_topk.h"
#include "tests/test_util.h"

namespace mosaic::fusion {
namespace {

// Small integer entries: every dot product is exact in float whatever the summation order, and
// equal scores are common (so ties straddle the k-th place).
std::vector<float> IntegerData(int64_t rows, int64_t d, std::mt19937& rng) {
  std::uniform_int_distribution<int> value(-2, 2);
  std::vector<float> out(size_t(rows * d));
  for (float& x : out) x = float(value(rng));
  return out;
}

at::Tensor AsTensor(const std::vector<float>& values, int64_t d) {
  return at::from_blob(const_cast<float*>(values.data()), {int64_t(values.size()) / d, d}, at::kFloat).clone();
}

std::vector<int64_t> RandomSubset(int64_t n, double share, std::mt19937& rng) {
  std::bernoulli_distribution pick(share);
  std::vector<int64_t> out;
  for (int64_t i = 0; i < n; ++i) {
    if (pick(rng)) out.push_back(i);
  }
  return out;
}

void ExpectSame(const TopK& got, const TopK& want, const std::string& what) {
  EXPECT_EQ(got.ids, want.ids) << what;
  EXPECT_EQ(got.scores, want.scores) << what;
}

// A Corruption status whose message contains `mentions`.
void ExpectCorruption(const Status& s, const std::string& mentions) {
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  EXPECT_NE(s.message().find(mentions), std::string::npos) << s.ToString();
}

TEST(ItemIndex, ExactEqualsExactTopKWithTiesAndFilters) {
  std::mt19937 rng(11);
  // 70,000 rows cross a storage block (65,536 rows).
  for (auto [n, d] : {std::pair<int64_t, int64_t>{1, 3}, {7, 5}, {300, 4}, {5000, 9}, {70000, 3}}) {
    const std::vector<float> rows = IntegerData(n, d, rng);
    const std::vector<float> queries = IntegerData(6, d, rng);
    ItemIndex index(d);
    // Added in uneven pieces.
    for (int64_t begin = 0; begin < n;) {
      const int64_t take = std::min<int64_t>(n - begin, 1 + begin % 977);
      index.Add(rows.data() + begin * d, take);
      begin += take;
    }
    ASSERT_EQ(index.size(), n);
    const at::Tensor items = AsTensor(rows, d);
    for (int64_t q = 0; q < 6; ++q) {
      const at::Tensor query = AsTensor(std::vector<float>(queries.begin() + q * d, queries.begin() + (q + 1) * d), d);
      const float* qp = queries.data() + q * d;
      for (int64_t k : {int64_t{1}, int64_t{5}, int64_t{50}, n + 3}) {
        const std::string what = "n " + std::to_string(n) + " q " + std::to_string(q) + " k " + std::to_string(k);
        ExpectSame(index.SearchExact(qp, k), ExactTopK(query, items, k)[0], what);
        ExpectSame(index.Search(qp, k), ExactTopK(query, items, k)[0], what + " (Search without a graph)");
        const std::vector<int64_t> excluded = RandomSubset(n, 0.3, rng);
        std::vector<int64_t> allowed = RandomSubset(n, 0.2, rng);
        if (allowed.empty()) allowed.push_back(n - 1);
        SearchFilter ex;
        ex.excluded = &excluded;
        ExpectSame(index.SearchExact(qp, k, ex), ExactTopK(query, items, k, {excluded})[0], what + " excluded");
        SearchFilter al;
        al.allowed = &allowed;
        ExpectSame(index.SearchExact(qp, k, al), ExactTopK(query, items, k, {}, allowed)[0], what + " allowed");
        SearchFilter both;
        both.allowed = &allowed;
        both.excluded = &excluded;
        ExpectSame(index.Search(qp, k, both), ExactTopK(query, items, k, {excluded}, allowed)[0], what + " both");
      }
    }
  }
}

TEST(ItemIndex, EmptyAllowedListAndEmptyIndexGiveNothing) {
  ItemIndex index(2);
  const float q[2] = {1, 1};
  EXPECT_TRUE(index.SearchExact(q, 3).ids.empty());
  const float rows[4] = {1, 0, 0, 1};
  index.Add(rows, 2);
  const std::vector<int64_t> none;
  SearchFilter f;
  f.allowed = &none;
  EXPECT_TRUE(index.Search(q, 3, f).ids.empty());
  const std::vector<int64_t> dup = {1, 1, 1};
  f.allowed = &dup;
  EXPECT_EQ(index.Search(q, 3, f).ids, std::vector<int64_t>{1});
}

TEST(ItemIndex, NanScoresAreNeverReturned) {
  ItemIndex index(2);
  const float rows[6] = {1, 2, 2, -2, 3, 0};
  index.Add(rows, 3);
  const float big = std::numeric_limits<float>::max();
  const float q[2] = {big, big};  // row 1 scores inf - inf = NaN; rows 0 and 2 score +inf
  const TopK top = index.SearchExact(q, 3);
  EXPECT_EQ(top.ids, (std::vector<int64_t>{0, 2}));
  const float nan_query[2] = {std::nanf(""), 1};
  EXPECT_TRUE(index.SearchExact(nan_query, 3).ids.empty());
}

TEST(ItemIndex, BadInputThrows) {
  EXPECT_THROW(ItemIndex(0), std::invalid_argument);
  ItemIndex index(3);
  const float rows[6] = {1, 2, 3, 4, 5, std::numeric_limits<float>::infinity()};
  EXPECT_THROW(index.Add(rows, 2), std::invalid_argument);
  EXPECT_EQ(index.size(), 0);  // nothing of a refused Add is kept
  index.Add(rows, 1);
  EXPECT_THROW(index.Add(rows, -1), std::invalid_argument);
  const float q[3] = {1, 0, 0};
  EXPECT_THROW(index.SearchExact(q, 0), std::invalid_argument);
  EXPECT_THROW(index.Search(q, -2), std::invalid_argument);
  EXPECT_THROW(index.Search(nullptr, 1), std::invalid_argument);
  const std::vector<int64_t> outside = {0, 1};
  const std::vector<int64_t> unsorted = {0, 0};  // fine (duplicates)
  SearchFilter f;
  f.excluded = &outside;
  EXPECT_THROW(index.Search(q, 1, f), std::invalid_argument);
  f.excluded = &unsorted;
  EXPECT_NO_THROW(index.Search(q, 1, f));
  ItemIndex two(1);
  const float r2[2] = {1, 2};
  two.Add(r2, 2);
  const std::vector<int64_t> descending = {1, 0};
  SearchFilter g;
  g.allowed = &descending;
  EXPECT_THROW(two.Search(r2, 1, g), std::invalid_argument);
  HnswOptions bad;
  bad.m = 1;
  EXPECT_THROW(index.BuildHnsw(bad), std::invalid_argument);
  EXPECT_EQ(index.SaveHnsw(), "");  // no graph
  EXPECT_TRUE(index.LoadHnsw("not a graph", {}).IsCorruption());
  EXPECT_TRUE(index.LoadHnsw("", {}).IsCorruption());
  HnswOptions no_ef;
  no_ef.ef_search = 0;
  EXPECT_THROW((void)index.LoadHnsw("", no_ef), std::invalid_argument);
}

// Clustered, non-normalised rows: cluster centres of differing norms (a factor of 1.6 apart), points
// spread around them, each with its own scale (a factor of 1.6 again). Queries come from the same
// clusters (users live in the items' space).
struct Clusters {
  Clusters(int count, int64_t d, std::mt19937& rng) : d(d) {
    std::normal_distribution<float> gauss(0.0f, 1.0f);
    std::uniform_real_distribution<float> scale(0.8f, 1.25f);
    centres.resize(size_t(count * d));
    for (int c = 0; c < count; ++c) {
      const float s = 2 * scale(rng);
      for (int64_t j = 0; j < d; ++j) centres[size_t(c * d + j)] = gauss(rng) * s;
    }
  }
  std::vector<float> Draw(int64_t rows, std::mt19937& rng) const {
    std::normal_distribution<float> gauss(0.0f, 1.0f);
    std::uniform_real_distribution<float> scale(0.8f, 1.25f);
    std::uniform_int_distribution<int64_t> which(0, int64_t(centres.size()) / d - 1);
    std::vector<float> out(size_t(rows * d));
    for (int64_t i = 0; i < rows; ++i) {
      const int64_t c = which(rng);
      const float s = scale(rng);
      for (int64_t j = 0; j < d; ++j) out[size_t(i * d + j)] = s * (centres[size_t(c * d + j)] + gauss(rng));
    }
    return out;
  }
  int64_t d;
  std::vector<float> centres;
};

std::vector<float> ClusteredData(int64_t rows, int64_t d, int clusters, std::mt19937& rng) {
  return Clusters(clusters, d, rng).Draw(rows, rng);
}

double Recall(const ItemIndex& index, const std::vector<float>& queries, int64_t d, int64_t k) {
  const int64_t nq = int64_t(queries.size()) / d;
  double hit = 0, total = 0;
  for (int64_t q = 0; q < nq; ++q) {
    const TopK exact = index.SearchExact(queries.data() + q * d, k);
    const TopK approx = index.Search(queries.data() + q * d, k);
    const std::set<int64_t> want(exact.ids.begin(), exact.ids.end());
    for (int64_t id : approx.ids) hit += want.count(id);
    total += double(exact.ids.size());
  }
  return hit / total;
}

class ItemIndexMetric : public ::testing::TestWithParam<HnswMetric> {};

TEST_P(ItemIndexMetric, HnswRecallOnClusteredData) {
  std::mt19937 rng(3);
  const int64_t n = 20000, d = 48;
  const Clusters clusters(40, d, rng);
  const std::vector<float> rows = clusters.Draw(n, rng);
  const std::vector<float> queries = clusters.Draw(300, rng);
  ItemIndex index(d);
  index.Add(rows.data(), n);
  HnswOptions options;
  options.threads = 2;
  options.metric = GetParam();
  int64_t last_progress = 0;
  index.BuildHnsw(options, [&](int64_t done) { last_progress = done; });
  EXPECT_EQ(last_progress, n);
  ASSERT_TRUE(index.has_hnsw());
  const double recall = Recall(index, queries, d, 20);
  EXPECT_GE(recall, 0.95);
  // Scores of graph results are the true dot products, best first.
  const TopK top = index.Search(queries.data(), 20);
  ASSERT_EQ(top.ids.size(), 20u);
  for (size_t r = 0; r < top.ids.size(); ++r) {
    double s = 0;
    for (int64_t j = 0; j < d; ++j) s += double(queries[size_t(j)]) * rows[size_t(top.ids[r] * d + j)];
    EXPECT_NEAR(top.scores[r], s, 1e-4 * (1 + std::abs(s)));
    if (r > 0) {
      EXPECT_GE(top.scores[r - 1], top.scores[r]);
    }
  }
  const TopK exact = index.SearchExact(queries.data(), 20);
  // Exclusions hold through the graph too.
  std::vector<int64_t> excluded(exact.ids.begin(), exact.ids.begin() + 5);
  std::sort(excluded.begin(), excluded.end());
  SearchFilter f;
  f.excluded = &excluded;
  const TopK without = index.Search(queries.data(), 20, f);
  EXPECT_EQ(without.ids.size(), 20u);
  for (int64_t id : without.ids) EXPECT_FALSE(std::binary_search(excluded.begin(), excluded.end(), id));
}

TEST_P(ItemIndexMetric, SaveLoadRoundTripGivesIdenticalResults) {
  std::mt19937 rng(5);
  const int64_t n = 6000, d = 24;
  const Clusters clusters(20, d, rng);
  const std::vector<float> rows = clusters.Draw(n, rng);
  const std::vector<float> queries = clusters.Draw(50, rng);
  ItemIndex index(d);
  index.Add(rows.data(), n);
  HnswOptions options;
  options.threads = 2;
  options.ef_search = 40;
  options.metric = GetParam();
  index.BuildHnsw(options);
  const std::string bytes = index.SaveHnsw();
  ASSERT_FALSE(bytes.empty());

  ItemIndex loaded(d);
  loaded.Add(rows.data(), n);
  ASSERT_OK(loaded.LoadHnsw(bytes, options));
  ASSERT_TRUE(loaded.has_hnsw());
  for (int64_t q = 0; q < 50; ++q) {
    ExpectSame(loaded.Search(queries.data() + q * d, 20), index.Search(queries.data() + q * d, 20), "query " + std::to_string(q));
  }
  EXPECT_EQ(loaded.SaveHnsw(), bytes);

  // An index with more rows than the saved graph: the rest are inserted on load.
  ItemIndex longer(d);
  longer.Add(rows.data(), n);
  longer.Add(rows.data(), 100);  // rows n..n+99 repeat rows 0..99
  ASSERT_OK(longer.LoadHnsw(bytes, options));
  double hits = 0, total = 0;
  int64_t copies_found = 0;  // reachable only through the graph: proof they were inserted
  for (int64_t x = 0; x < 100; ++x) {
    const TopK exact = longer.SearchExact(rows.data() + x * d, 20);
    const TopK approx = longer.Search(rows.data() + x * d, 20);
    const std::set<int64_t> want(exact.ids.begin(), exact.ids.end());
    for (int64_t id : approx.ids) {
      hits += double(want.count(id));
      copies_found += id >= n;
    }
    total += double(exact.ids.size());
  }
  EXPECT_GE(hits / total, 0.9);
  EXPECT_GT(copies_found, 0);

  // Not this index's graph: another width, other rows, fewer rows, damaged bytes. Each is
  // Corruption naming the fault, and leaves the index as it was.
  ItemIndex narrow(d - 1);
  ExpectCorruption(narrow.LoadHnsw(bytes, options), "width");
  ItemIndex other(d);
  std::vector<float> changed = rows;
  changed[size_t(3 * d)] += 1.0f;
  other.Add(changed.data(), n);
  ExpectCorruption(other.LoadHnsw(bytes, options), "vector of row 3 differs");
  EXPECT_FALSE(other.has_hnsw());
  ItemIndex shorter(d);
  shorter.Add(rows.data(), n - 1);
  ExpectCorruption(shorter.LoadHnsw(bytes, options), "rows");
  ItemIndex same(d);
  same.Add(rows.data(), n);
  std::string corrupt = bytes;
  corrupt[80] ^= 0x55;  // inside hnswlib's header fields
  const std::vector<std::pair<std::string, std::string>> damaged = {
      {bytes.substr(0, bytes.size() - 3), "truncated"},
      {bytes.substr(0, 20), "truncated"},
      {bytes + "x", "trailing bytes"},
      {corrupt, ""}};
  for (const auto& [damage, mentions] : damaged) {
    ExpectCorruption(same.LoadHnsw(damage, options), mentions);
    EXPECT_FALSE(same.has_hnsw());
  }
  ASSERT_OK(same.LoadHnsw(bytes, options));
  for (const auto& [damage, mentions] : damaged) {
    ExpectCorruption(same.LoadHnsw(damage, options), mentions);
    EXPECT_TRUE(same.has_hnsw());
    EXPECT_EQ(same.SaveHnsw(), bytes);  // the graph loaded before is kept
  }
}

INSTANTIATE_TEST_SUITE_P(Metrics, ItemIndexMetric,
                         ::testing::Values(HnswMetric::kInnerProduct, HnswMetric::kLiftedL2),
                         [](const auto& info) { return info.param == HnswMetric::kInnerProduct ? "InnerProduct" : "LiftedL2"; });

TEST(ItemIndex, AnEmptyGraphSavesLoadsAndGrows) {
  ItemIndex empty(4);
  empty.BuildHnsw({});
  const std::string bytes = empty.SaveHnsw();
  ASSERT_FALSE(bytes.empty());
  ItemIndex loaded(4);
  ASSERT_OK(loaded.LoadHnsw(bytes, {}));
  ASSERT_TRUE(loaded.has_hnsw());
  const float rows[12] = {1, 0, 0, 0, 0, 2, 0, 0, 0, 0, 3, 0};
  loaded.Add(rows, 3);
  const float q[4] = {0, 1, 1, 0};
  EXPECT_EQ(loaded.Search(q, 2).ids, (std::vector<int64_t>{2, 1}));
}

TEST(ItemIndex, RowsAddedAfterTheGraphAreFound) {
  std::mt19937 rng(9);
  const int64_t n = 2000, d = 16;
  const std::vector<float> rows = ClusteredData(n, d, 10, rng);
  ItemIndex index(d);
  index.Add(rows.data(), n);
  HnswOptions options;
  options.threads = 2;
  options.ef_search = 24;  // few enough candidates that the graph is used at this size
  index.BuildHnsw(options);
  // Each new row points along one query, at the norm of the longest existing row: the best item
  // for that query. 3,000 of them exceed the graph's initial capacity (it grows).
  double max_norm = 0;
  for (int64_t i = 0; i < n; ++i) {
    double s = 0;
    for (int64_t j = 0; j < d; ++j) s += double(rows[size_t(i * d + j)]) * rows[size_t(i * d + j)];
    max_norm = std::max(max_norm, std::sqrt(s));
  }
  std::normal_distribution<float> gauss(0.0f, 1.0f);
  const int64_t added = 3000;
  std::vector<float> queries(size_t(added * d)), fresh(size_t(added * d));
  for (int64_t i = 0; i < added; ++i) {
    double s = 0;
    for (int64_t j = 0; j < d; ++j) {
      queries[size_t(i * d + j)] = gauss(rng);
      s += double(queries[size_t(i * d + j)]) * queries[size_t(i * d + j)];
    }
    for (int64_t j = 0; j < d; ++j) fresh[size_t(i * d + j)] = float(queries[size_t(i * d + j)] / std::sqrt(s) * max_norm * 0.999);
  }
  for (int64_t i = 0; i < added; i += 100) index.Add(fresh.data() + i * d, 100);
  ASSERT_EQ(index.size(), n + added);
  int64_t found = 0;
  for (int64_t i = 0; i < added; ++i) {
    const TopK top = index.Search(queries.data() + i * d, 1);
    if (!top.ids.empty() && top.ids[0] == n + i) ++found;
    ASSERT_EQ(index.SearchExact(queries.data() + i * d, 1).ids, std::vector<int64_t>{n + i});
  }
  EXPECT_GE(found, added * 99 / 100);
  // The saved graph now holds them too.
  ItemIndex copy(d);
  copy.Add(rows.data(), n);
  copy.Add(fresh.data(), added);
  ASSERT_OK(copy.LoadHnsw(index.SaveHnsw(), options));
  EXPECT_EQ(copy.Search(queries.data() + 5 * d, 1).ids, std::vector<int64_t>{n + 5});
}

// One thread adds rows while others search: a search never returns an id at or beyond the size
// seen after it, always returns something, sees the rows published before it began (exact), and
// reads whole rows (every score is the row's true dot product). With the graph, the newest rows are
// the best for half the queries: they are found while they are being inserted.
void ConcurrentAddAndSearch(bool graph) {
  const int64_t d = 8, first = 1000, batches = 300, batch = 20;
  const int64_t total = first + batches * batch;
  // Row i = (i + 1) * e_0 + small noise: along the query e_0 the newest row is always the best.
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> noise(-0.1f, 0.1f);
  std::vector<float> rows(size_t(total * d));
  for (int64_t i = 0; i < total; ++i) {
    for (int64_t j = 0; j < d; ++j) rows[size_t(i * d + j)] = j == 0 ? float(i + 1) : noise(rng);
  }
  ItemIndex index(d);
  index.Add(rows.data(), first);
  if (graph) {
    HnswOptions options;
    options.threads = 2;
    options.ef_search = 10;  // few enough candidates that the graph is used at this size
    index.BuildHnsw(options);
  }
  std::atomic<bool> stop{false};
  std::atomic<int64_t> failures{0}, searches{0};
  auto searcher = [&](int seed) {
    std::mt19937 local(seed);
    std::normal_distribution<float> gauss(0.0f, 1.0f);
    std::vector<float> q(static_cast<size_t>(d));
    while (!stop.load()) {
      const bool along = local() % 2 == 0;
      for (int64_t j = 0; j < d; ++j) q[size_t(j)] = along ? (j == 0 ? 1.0f : 0.0f) : gauss(local);
      const int64_t before = index.size();
      const TopK top = index.Search(q.data(), 10);
      const int64_t after = index.size();
      if (top.ids.empty()) ++failures;
      for (size_t r = 0; r < top.ids.size(); ++r) {
        const int64_t id = top.ids[r];
        if (id < 0 || id >= after) {
          ++failures;
          continue;
        }
        double s = 0;
        for (int64_t j = 0; j < d; ++j) s += double(q[size_t(j)]) * rows[size_t(id * d + j)];
        if (std::abs(s - top.scores[r]) > 1e-3 * (1 + std::abs(s))) ++failures;
      }
      if (along && !graph && !top.ids.empty() && top.ids[0] < before - 1) ++failures;
      ++searches;
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) threads.emplace_back(searcher, t);
  // On a loaded machine the adds could all finish before a searcher is scheduled: the adding starts
  // once searches do.
  while (searches.load() < 3) std::this_thread::yield();
  for (int64_t b = 0; b < batches; ++b) {
    index.Add(rows.data() + (first + b * batch) * d, batch);
    std::this_thread::yield();
  }
  stop = true;
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_GT(searches.load(), 0);
  EXPECT_EQ(index.size(), total);
}

TEST(ItemIndex, ConcurrentAddAndExactSearch) { ConcurrentAddAndSearch(false); }
TEST(ItemIndex, ConcurrentAddAndGraphSearch) { ConcurrentAddAndSearch(true); }

}  // namespace
}  // namespace mosaic::fusion
