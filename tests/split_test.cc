// Splits: every interaction lands in exactly one part, the protocol's proportions hold, and a
// fixed seed gives byte-identical files.
#include "fusion/split.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "tests/test_util.h"

namespace mosaic::fusion {
namespace {

using ::mosaic::testing::TempDir;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// 60 users with 0..45 distinct items each out of 300 (a third of them outside the KG), from a
// fixed LCG so the data are the same everywhere. User 59 has listened to almost every KG item,
// so it runs short of negatives.
EvalData MakeData() {
  EvalData d;
  d.num_users = 60;
  d.num_items = 300;
  d.item_in_kg.resize(d.num_items);
  for (uint32_t i = 0; i < d.num_items; ++i) {
    d.item_in_kg[i] = i % 3 != 0;
    d.item_keys.push_back("i" + std::to_string(i));
  }
  for (uint32_t u = 0; u < d.num_users; ++u) d.user_keys.push_back("u" + std::to_string(u));
  uint64_t state = 12345;
  auto next = [&state]() {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<uint32_t>(state >> 33);
  };
  for (uint32_t u = 0; u + 1 < d.num_users; ++u) {
    const uint32_t n = next() % 46;
    std::set<uint32_t> items;
    while (items.size() < n) items.insert(next() % 250);  // items 250..299 never interacted
    for (uint32_t i : items) d.interactions.push_back({u, i, static_cast<float>(1 + next() % 500)});
  }
  for (uint32_t i = 0; i < 240; ++i) {
    if (d.item_in_kg[i]) d.interactions.push_back({59, i, 0.5f});
  }
  return d;
}

// Each interaction index appears exactly once across the parts.
void ExpectPartition(const EvalData& d, const Split& s) {
  std::vector<int> seen(d.interactions.size(), 0);
  for (const auto* part : {&s.train, &s.valid, &s.test}) {
    EXPECT_TRUE(std::is_sorted(part->begin(), part->end()));
    for (uint32_t i : *part) {
      ASSERT_LT(i, d.interactions.size());
      ++seen[i];
    }
  }
  for (size_t i = 0; i < seen.size(); ++i) EXPECT_EQ(seen[i], 1) << "interaction " << i;
}

std::vector<size_t> CountPerUser(const EvalData& d, const std::vector<uint32_t>& part) {
  std::vector<size_t> n(d.num_users, 0);
  for (uint32_t i : part) ++n[d.interactions[i].user];
  return n;
}

TEST(WarmSplitTest, PerUserEightyTenTen) {
  const EvalData d = MakeData();
  const Split s = WarmSplit(d, 42);
  ExpectPartition(d, s);
  EXPECT_TRUE(s.cold_items.empty());
  const auto all = CountPerUser(d, s.train), valid = CountPerUser(d, s.valid),
             test = CountPerUser(d, s.test);
  size_t small_users = 0;
  for (uint32_t u = 0; u < d.num_users; ++u) {
    const size_t n = all[u] + valid[u] + test[u];
    if (n < 3) {  // kept whole in train
      ++small_users;
      EXPECT_EQ(valid[u], 0u);
      EXPECT_EQ(test[u], 0u);
      continue;
    }
    const size_t tenth = std::max<size_t>(1, (n + 5) / 10);  // round(0.1 n), at least 1
    EXPECT_EQ(test[u], tenth) << "user " << u << " n " << n;
    EXPECT_EQ(valid[u], tenth) << "user " << u << " n " << n;
  }
  EXPECT_GT(small_users, 0u);  // the data exercise the rule
  const double total = static_cast<double>(d.interactions.size());
  EXPECT_NEAR(s.test.size() / total, 0.1, 0.02);
  EXPECT_NEAR(s.valid.size() / total, 0.1, 0.02);
}

TEST(WarmSplitTest, DeterministicAndPerUserIndependent) {
  const EvalData d = MakeData();
  const Split a = WarmSplit(d, 42), b = WarmSplit(d, 42), c = WarmSplit(d, 43);
  EXPECT_EQ(a.train, b.train);
  EXPECT_EQ(a.valid, b.valid);
  EXPECT_EQ(a.test, b.test);
  EXPECT_NE(a.test, c.test);

  // Dropping user 0's interactions leaves every other user's test set unchanged.
  EvalData fewer = d;
  fewer.interactions.erase(
      std::remove_if(fewer.interactions.begin(), fewer.interactions.end(),
                     [](const Interaction& x) { return x.user == 0; }),
      fewer.interactions.end());
  const Split f = WarmSplit(fewer, 42);
  std::set<std::pair<uint32_t, uint32_t>> full_test, fewer_test;
  for (uint32_t i : a.test) {
    if (d.interactions[i].user != 0) full_test.insert({d.interactions[i].user, d.interactions[i].item});
  }
  for (uint32_t i : f.test) fewer_test.insert({fewer.interactions[i].user, fewer.interactions[i].item});
  EXPECT_EQ(full_test, fewer_test);
}

TEST(WarmSplitTest, RejectsOutOfRange) {
  EvalData d = MakeData();
  d.interactions.push_back({60, 0, 1});
  EXPECT_THROW(WarmSplit(d, 1), std::invalid_argument);
  d.interactions.back() = {0, 300, 1};
  EXPECT_THROW(ColdSplit(d, 1), std::invalid_argument);
  EXPECT_THROW(KgcnCtrSplit(d, 1), std::invalid_argument);
}

TEST(ColdSplitTest, HeldOutItemsOnlyInTest) {
  const EvalData d = MakeData();
  const Split s = ColdSplit(d, 7);
  ExpectPartition(d, s);

  std::set<uint32_t> interacted;
  for (const Interaction& x : d.interactions) interacted.insert(x.item);
  EXPECT_EQ(s.cold_items.size(), (2 * interacted.size() + 5) / 10);  // round(0.2 m)
  EXPECT_TRUE(std::is_sorted(s.cold_items.begin(), s.cold_items.end()));
  const std::set<uint32_t> cold(s.cold_items.begin(), s.cold_items.end());
  EXPECT_EQ(cold.size(), s.cold_items.size());
  for (uint32_t i : s.cold_items) EXPECT_TRUE(interacted.count(i)) << "item " << i;

  for (uint32_t i : s.train) EXPECT_FALSE(cold.count(d.interactions[i].item));
  for (uint32_t i : s.valid) EXPECT_FALSE(cold.count(d.interactions[i].item));
  for (uint32_t i : s.test) EXPECT_TRUE(cold.count(d.interactions[i].item));
  size_t cold_interactions = 0;
  for (const Interaction& x : d.interactions) cold_interactions += cold.count(x.item);
  EXPECT_EQ(s.test.size(), cold_interactions);

  // The warm remainder is split 90/10 per user.
  const auto train = CountPerUser(d, s.train), valid = CountPerUser(d, s.valid);
  for (uint32_t u = 0; u < d.num_users; ++u) {
    const size_t n = train[u] + valid[u];
    EXPECT_EQ(valid[u], n < 3 ? 0 : std::max<size_t>(1, (n + 5) / 10)) << "user " << u;
  }
  const Split again = ColdSplit(d, 7), other = ColdSplit(d, 8);
  EXPECT_EQ(again.cold_items, s.cold_items);
  EXPECT_EQ(again.valid, s.valid);
  EXPECT_NE(other.cold_items, s.cold_items);
}

// Few-shot: 20% of the played items; each keeps exactly min(shots, n) interactions in train and the
// rest in test; nothing else is in test; the same items and nested kept sets for 1, 3 and 5 shots.
TEST(FewShotSplitTest, KeepsShotsOfTheDrawnItemsNested) {
  const EvalData d = MakeData();
  std::map<uint32_t, size_t> played;
  for (const auto& x : d.interactions) ++played[x.item];
  std::vector<std::set<uint32_t>> kept_by_shots;
  std::vector<uint32_t> items;
  for (size_t shots : {1, 3, 5}) {
    const Split s = FewShotSplit(d, 7, shots);
    ExpectPartition(d, s);
    EXPECT_EQ(s.cold_items.size(), (2 * played.size() + 5) / 10);
    if (items.empty()) items = s.cold_items;
    EXPECT_EQ(s.cold_items, items) << "the few-shot items do not depend on shots";
    const std::set<uint32_t> few(s.cold_items.begin(), s.cold_items.end());
    std::map<uint32_t, size_t> in_train, in_test;
    std::set<uint32_t> kept;
    for (uint32_t k : s.train) {
      if (few.count(d.interactions[k].item)) {
        ++in_train[d.interactions[k].item];
        kept.insert(k);
      }
    }
    for (uint32_t k : s.test) {
      ASSERT_TRUE(few.count(d.interactions[k].item)) << "test holds only the few-shot items";
      ++in_test[d.interactions[k].item];
    }
    for (uint32_t k : s.valid) EXPECT_FALSE(few.count(d.interactions[k].item));
    for (uint32_t i : s.cold_items) {
      EXPECT_EQ(in_train[i], std::min(shots, played[i])) << "item " << i;
      EXPECT_EQ(in_test[i], played[i] - std::min(shots, played[i])) << "item " << i;
    }
    kept_by_shots.push_back(kept);
  }
  for (size_t a = 0; a + 1 < kept_by_shots.size(); ++a) {
    for (uint32_t k : kept_by_shots[a]) EXPECT_TRUE(kept_by_shots[a + 1].count(k)) << "nested: " << k;
  }
  EXPECT_THROW(FewShotSplit(d, 7, 0), std::invalid_argument);
}

// Temporal: the last 10% by time are test, the 10% before valid; ties by index; no timestamps, no split.
TEST(TemporalSplitTest, LastTenthByTimeIsTest) {
  EvalData d = MakeData();
  EXPECT_THROW(TemporalSplit(d), std::invalid_argument);
  for (size_t k = 0; k < d.interactions.size(); ++k) d.interactions[k].timestamp = int64_t((k * 7919) % 1000);
  const Split s = TemporalSplit(d);
  ExpectPartition(d, s);
  const size_t n = d.interactions.size();
  EXPECT_EQ(s.test.size(), (n + 5) / 10);
  EXPECT_EQ(s.valid.size(), (n + 5) / 10);
  int64_t train_max = 0, valid_min = INT64_MAX, valid_max = 0, test_min = INT64_MAX;
  for (uint32_t k : s.train) train_max = std::max(train_max, d.interactions[k].timestamp);
  for (uint32_t k : s.valid) {
    valid_min = std::min(valid_min, d.interactions[k].timestamp);
    valid_max = std::max(valid_max, d.interactions[k].timestamp);
  }
  for (uint32_t k : s.test) test_min = std::min(test_min, d.interactions[k].timestamp);
  EXPECT_LE(train_max, valid_min);
  EXPECT_LE(valid_max, test_min);
  EXPECT_TRUE(s.cold_items.empty());
}

TEST(KgcnCtrSplitTest, BalancedNegativesNeverObserved) {
  const EvalData d = MakeData();
  const CtrSplit s = KgcnCtrSplit(d, 3);
  std::set<std::pair<uint32_t, uint32_t>> observed, kg_observed;
  for (const Interaction& x : d.interactions) {
    observed.insert({x.user, x.item});
    if (d.item_in_kg[x.item]) kg_observed.insert({x.user, x.item});
  }
  std::vector<size_t> pos(d.num_users, 0), neg(d.num_users, 0);
  std::set<std::pair<uint32_t, uint32_t>> positives, negatives;
  for (const auto* part : {&s.train, &s.valid, &s.test}) {
    for (const CtrExample& e : *part) {
      ASSERT_TRUE(e.label == 0 || e.label == 1);
      EXPECT_TRUE(d.item_in_kg[e.item]);
      if (e.label == 1) {
        EXPECT_TRUE(kg_observed.count({e.user, e.item}));
        EXPECT_TRUE(positives.insert({e.user, e.item}).second);
        ++pos[e.user];
      } else {
        EXPECT_FALSE(observed.count({e.user, e.item})) << e.user << " " << e.item;
        EXPECT_TRUE(negatives.insert({e.user, e.item}).second);  // without replacement
        ++neg[e.user];
      }
    }
  }
  EXPECT_EQ(positives, kg_observed);
  size_t kg_items = 0;
  for (uint32_t i = 0; i < d.num_items; ++i) kg_items += d.item_in_kg[i];
  for (uint32_t u = 0; u < d.num_users; ++u) {
    std::set<uint32_t> mine;
    for (const Interaction& x : d.interactions) {
      if (x.user == u && d.item_in_kg[x.item]) mine.insert(x.item);
    }
    EXPECT_EQ(neg[u], std::min(pos[u], kg_items - mine.size())) << "user " << u;
  }
  EXPECT_LT(neg[59], pos[59]);  // the heavy listener ran out of negatives

  const size_t total = s.train.size() + s.valid.size() + s.test.size();
  EXPECT_EQ(s.valid.size(), total * 2 / 10);
  EXPECT_EQ(s.test.size(), total * 2 / 10);
  EXPECT_EQ(s.train.size(), total - 2 * (total * 2 / 10));
}

TEST(KgcnCtrSplitTest, RejectsMissingKgFlags) {
  EvalData d = MakeData();
  d.item_in_kg.pop_back();
  EXPECT_THROW(KgcnCtrSplit(d, 1), std::invalid_argument);
}

TEST(WriteSplitTest, FixedSeedIsByteIdentical) {
  const EvalData d = MakeData();
  TempDir tmp;
  WriteSplit(d, ColdSplit(d, 5), tmp / "a");
  WriteSplit(d, ColdSplit(d, 5), tmp / "b");
  WriteSplit(d, ColdSplit(d, 6), tmp / "c");
  for (const char* name : {"train.tsv", "valid.tsv", "test.tsv", "cold_items.tsv"}) {
    const std::string a = ReadFile(tmp / "a/" + name);
    EXPECT_FALSE(a.empty()) << name;
    EXPECT_EQ(a, ReadFile(tmp / "b/" + name)) << name;
    EXPECT_NE(a, ReadFile(tmp / "c/" + name)) << name;
  }
  const std::string train = ReadFile(tmp / "a/train.tsv");
  EXPECT_EQ(train.rfind("user\titem\tweight\n", 0), 0u);
  const Split s = ColdSplit(d, 5);
  const Interaction& first = d.interactions[s.train[0]];
  std::ostringstream row;
  row << "user\titem\tweight\nu" << first.user << "\ti" << first.item << "\t" << first.weight << "\n";
  EXPECT_EQ(train.rfind(row.str(), 0), 0u);
  EXPECT_EQ(ReadFile(tmp / "a/cold_items.tsv").rfind("item\ni", 0), 0u);
  // Line counts: header + one row per index.
  EXPECT_EQ(static_cast<size_t>(std::count(train.begin(), train.end(), '\n')), s.train.size() + 1);
}

TEST(WriteSplitTest, CtrFilesAndErrors) {
  EvalData d = MakeData();
  TempDir tmp;
  WriteCtrSplit(d, KgcnCtrSplit(d, 9), tmp / "x");
  WriteCtrSplit(d, KgcnCtrSplit(d, 9), tmp / "y");
  WriteCtrSplit(d, KgcnCtrSplit(d, 10), tmp / "z");
  for (const char* name : {"train.tsv", "valid.tsv", "test.tsv"}) {
    const std::string x = ReadFile(tmp / "x/" + name);
    EXPECT_EQ(x.rfind("user\titem\tlabel\n", 0), 0u) << name;
    EXPECT_EQ(x, ReadFile(tmp / "y/" + name)) << name;
    EXPECT_NE(x, ReadFile(tmp / "z/" + name)) << name;
  }

  // A file where the folder should be: the error names the path.
  const std::string blocker = tmp / "blocker";
  std::ofstream(blocker) << "x";
  try {
    WriteSplit(d, WarmSplit(d, 1), blocker + "/sub");
    FAIL() << "expected runtime_error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(blocker), std::string::npos) << e.what();
  }

  d.user_keys.pop_back();
  EXPECT_THROW(WriteSplit(d, WarmSplit(d, 1), tmp / "w"), std::invalid_argument);
  d.user_keys.clear();  // no keys: dense indices stand in
  WriteSplit(d, WarmSplit(d, 1), tmp / "w");
  EXPECT_EQ(ReadFile(tmp / "w/train.tsv").rfind("user\titem\tweight\n0\ti", 0), 0u);
}

}  // namespace
}  // namespace mosaic::fusion
