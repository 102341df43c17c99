// KG controls: removed leaves no KG, shuffled keeps each relation's triple count and each head's
// out-degree per relation, draws tails only among the relation's own tails, rebuilds item_entities
// from its triples, leaves item_in_kg alone, and is fixed by the seed.
#include "fusion/kg_control.h"

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <tuple>
#include <vector>

namespace mosaic::fusion {
namespace {

// 4 items (nodes 0-3), 6 entities (nodes 4-9), 2 relations. Relation 0 (item -> entity): tails
// {4, 5, 6, 7}; relation 1 (item -> item or entity): tails {1, 2, 8, 9}. Item 3 has no link but is
// flagged in item_in_kg, so the flag must survive every control untouched.
EvalData Data() {
  EvalData d;
  d.num_users = 2;
  d.num_items = 4;
  d.num_entities = 6;
  d.num_kg_relations = 2;
  d.interactions = {{0, 0, 1}, {1, 1, 1}};
  d.kg_triples = {{0, 0, 4}, {0, 0, 5}, {1, 0, 6}, {2, 0, 7}, {0, 1, 1}, {1, 1, 2}, {2, 1, 8}, {2, 1, 9}, {1, 1, 9}};
  d.item_in_kg = {true, true, true, true};
  // More of relation 0 (heads items 0-2, tails entities 0-3), so that two seeds' draws differ.
  for (uint32_t k = 0; k < 40; ++k) d.kg_triples.push_back({k % 3, 0, 4 + (k * 3) % 4});
  d.item_entities = {{0, 1, 2, 3}, {0, 1, 2, 3, 5}, {0, 1, 2, 3, 4, 5}, {}};  // as the snapshot reads them
  return d;
}

std::map<uint32_t, size_t> CountPerRelation(const EvalData& d) {
  std::map<uint32_t, size_t> n;
  for (const auto& t : d.kg_triples) ++n[t.relation];
  return n;
}

std::map<std::pair<uint32_t, uint32_t>, size_t> OutDegrees(const EvalData& d) {
  std::map<std::pair<uint32_t, uint32_t>, size_t> n;
  for (const auto& t : d.kg_triples) ++n[{t.head, t.relation}];
  return n;
}

std::vector<std::tuple<uint32_t, uint32_t, uint32_t>> Triples(const EvalData& d) {
  std::vector<std::tuple<uint32_t, uint32_t, uint32_t>> v;
  for (const auto& t : d.kg_triples) v.emplace_back(t.head, t.relation, t.tail);
  return v;
}

TEST(KgControlTest, ParsesTheThreeNames) {
  KgControl c = KgControl::kIntact;
  EXPECT_TRUE(ParseKgControl("removed", &c));
  EXPECT_EQ(c, KgControl::kRemoved);
  EXPECT_TRUE(ParseKgControl("shuffled", &c));
  EXPECT_EQ(c, KgControl::kShuffled);
  EXPECT_TRUE(ParseKgControl("intact", &c));
  EXPECT_EQ(c, KgControl::kIntact);
  EXPECT_FALSE(ParseKgControl("random", &c));
  EXPECT_EQ(c, KgControl::kIntact);
}

TEST(KgControlTest, IntactIsACopy) {
  const EvalData d = Data();
  const EvalData out = WithKgControl(d, KgControl::kIntact, 1);
  EXPECT_EQ(Triples(out), Triples(d));
  EXPECT_EQ(out.item_entities, d.item_entities);
}

TEST(KgControlTest, RemovedLeavesNoTripleAndNoLinkButKeepsTheProtocolFlags) {
  const EvalData d = Data();
  const EvalData out = WithKgControl(d, KgControl::kRemoved, 1);
  EXPECT_TRUE(out.kg_triples.empty());
  EXPECT_EQ(out.num_kg_relations, 0u);
  ASSERT_EQ(out.item_entities.size(), d.num_items);
  for (const auto& row : out.item_entities) EXPECT_TRUE(row.empty());
  EXPECT_EQ(out.item_in_kg, d.item_in_kg);
  EXPECT_EQ(out.num_entities, d.num_entities);
  EXPECT_EQ(out.interactions.size(), d.interactions.size());
}

TEST(KgControlTest, ShuffledKeepsCountsPerRelationAndTheDegreeProfile) {
  const EvalData d = Data();
  const EvalData out = WithKgControl(d, KgControl::kShuffled, 7);
  EXPECT_EQ(out.num_kg_relations, d.num_kg_relations);
  EXPECT_EQ(CountPerRelation(out), CountPerRelation(d));
  EXPECT_EQ(OutDegrees(out), OutDegrees(d));
  EXPECT_EQ(out.item_in_kg, d.item_in_kg);
  // Heads and relations stay in place; tails come from the relation's own tails.
  std::map<uint32_t, std::set<uint32_t>> tails;
  for (const auto& t : d.kg_triples) tails[t.relation].insert(t.tail);
  ASSERT_EQ(out.kg_triples.size(), d.kg_triples.size());
  for (size_t k = 0; k < d.kg_triples.size(); ++k) {
    EXPECT_EQ(out.kg_triples[k].head, d.kg_triples[k].head);
    EXPECT_EQ(out.kg_triples[k].relation, d.kg_triples[k].relation);
    EXPECT_TRUE(tails[out.kg_triples[k].relation].count(out.kg_triples[k].tail)) << k;
  }
}

TEST(KgControlTest, ShuffledRebuildsItemEntitiesFromItsTriples) {
  const EvalData d = Data();
  const EvalData out = WithKgControl(d, KgControl::kShuffled, 7);
  std::vector<std::set<uint32_t>> expected(d.num_items);
  for (const auto& t : out.kg_triples) {
    if (t.head < d.num_items && t.tail >= d.num_items) expected[t.head].insert(t.tail - d.num_items);
    if (t.tail < d.num_items && t.head >= d.num_items) expected[t.tail].insert(t.head - d.num_items);
  }
  ASSERT_EQ(out.item_entities.size(), d.num_items);
  for (uint32_t i = 0; i < d.num_items; ++i) {
    EXPECT_EQ(std::vector<uint32_t>(expected[i].begin(), expected[i].end()), out.item_entities[i]) << i;
  }
  EXPECT_TRUE(out.item_entities[3].empty());  // no triple of item 3, before or after
}

TEST(KgControlTest, ShuffledIsFixedBySeedAndDiffersBetweenSeeds) {
  const EvalData d = Data();
  EXPECT_EQ(Triples(WithKgControl(d, KgControl::kShuffled, 7)), Triples(WithKgControl(d, KgControl::kShuffled, 7)));
  EXPECT_NE(Triples(WithKgControl(d, KgControl::kShuffled, 7)), Triples(WithKgControl(d, KgControl::kShuffled, 8)));
  EXPECT_NE(Triples(WithKgControl(d, KgControl::kShuffled, 7)), Triples(d));
}

TEST(KgControlTest, ShuffledRefusesATripleOutOfRange) {
  EvalData d = Data();
  d.kg_triples.push_back({0, 2, 4});  // relation 2 of 2
  EXPECT_THROW(WithKgControl(d, KgControl::kShuffled, 1), std::invalid_argument);
}

}  // namespace
}  // namespace mosaic::fusion
