#include "graph/csr.h"
#include "graph/import.h"
#include "graph/text.h"
#include "tests/test_util.h"

namespace mosaic::graph {
namespace {

using store::NodeId;
using store::NodeKind;

TEST(TextTest, NormalizeKeyFoldsCaseAndSpaces) {
  EXPECT_EQ(NormalizeKey("  Hip \t Hop "), "hip hop");
  EXPECT_EQ(NormalizeKey("DVOŘÁK"), "dvořák");
  EXPECT_EQ(NormalizeKey("Straße"), "strasse");
  EXPECT_EQ(CollapseSpaces("  Clair   de lune "), "Clair de lune");
  EXPECT_EQ(EntityKey("genre", "Science  Fiction"), "genre:science fiction");
}

TEST(TextTest, FindInvalidUtf8) {
  EXPECT_EQ(FindInvalidUtf8("plain"), std::string::npos);
  EXPECT_EQ(FindInvalidUtf8("Gymnopédie 日本"), std::string::npos);
  EXPECT_EQ(FindInvalidUtf8("ab\xff"), 2u);
  EXPECT_EQ(FindInvalidUtf8("\xc3"), 0u);          // truncated sequence
  EXPECT_EQ(FindInvalidUtf8("x\xc0\xaf"), 1u);     // overlong encoding
}

TEST(ImportFormatTest, RelationNames) {
  EXPECT_OK(ValidateRelationName("music.artist.origin"));
  EXPECT_TRUE(ValidateRelationName("has genre").IsInvalidArgument());
  EXPECT_TRUE(ValidateRelationName("").IsInvalidArgument());
  EXPECT_TRUE(ValidateRelationName("interacted").IsInvalidArgument());
  EXPECT_EQ(RelationForField("tags"), "tag");
}

// A small graph: two items sharing a genre, one with an artist, one user.
class CsrTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store::OpenOptions o;
    o.create_if_missing = true;
    ASSERT_OK(store::Store::Open(tmp_ / "s", o, &store_));
    std::unique_ptr<store::Batch> b;
    ASSERT_OK(store_->BeginBatch(&b));
    ASSERT_OK(b->UpsertNode(NodeKind::kItem, "a", "A", &a_));
    ASSERT_OK(b->UpsertNode(NodeKind::kItem, "b", "B", &b_));
    ASSERT_OK(b->UpsertNode(NodeKind::kItem, "c", "C", &c_));
    ASSERT_OK(b->UpsertNode(NodeKind::kEntity, "genre:x", "X", &genre_));
    ASSERT_OK(b->UpsertNode(NodeKind::kEntity, "artist:y", "Y", &artist_));
    ASSERT_OK(b->UpsertNode(NodeKind::kUser, "u", "", &user_));
    ASSERT_OK(b->UpsertRelation("genre", &genre_rel_));
    ASSERT_OK(b->UpsertRelation("artist", &artist_rel_));
    ASSERT_OK(b->AddEdge(a_, genre_rel_, genre_));
    ASSERT_OK(b->AddEdge(b_, genre_rel_, genre_));
    ASSERT_OK(b->AddEdge(a_, artist_rel_, artist_));
    ASSERT_OK(b->AddEdge(b_, artist_rel_, artist_));
    ASSERT_OK(b->AddEdge(c_, artist_rel_, artist_));
    store::Interaction x;
    x.user = user_;
    x.item = a_;
    ASSERT_OK(b->PutInteraction(x));
    ASSERT_OK(b->Commit());
    ASSERT_OK(CsrGraph::Build(*store_->NewReadView(), &csr_));
    ASSERT_OK(store_->NewReadView()->FindRelation("interacted", &interacted_));
  }

  mosaic::testing::TempDir tmp_;
  std::unique_ptr<store::Store> store_;
  CsrGraph csr_;
  NodeId a_, b_, c_, genre_, artist_, user_;
  store::RelationId genre_rel_, artist_rel_, interacted_;
};

TEST_F(CsrTest, EveryTripleIsWalkableBothWays) {
  EXPECT_EQ(csr_.num_nodes(), 6u);
  EXPECT_EQ(csr_.num_edges(), 12u);  // 6 triples, each twice
  EXPECT_EQ(csr_.Degree(a_), 3u);
  EXPECT_EQ(csr_.Degree(genre_), 2u);
  int reverse = 0;
  csr_.ForEachNeighbor(genre_, [&](NodeId to, const CsrEdge& e) {
    EXPECT_TRUE(to == a_ || to == b_);
    EXPECT_EQ(e.relation, genre_rel_);
    reverse += e.reverse;
  });
  EXPECT_EQ(reverse, 2);
}

TEST_F(CsrTest, NeighborhoodRanksByPaths) {
  NeighborhoodOptions o;
  o.hops = 2;
  o.excluded = {interacted_};
  auto r = Neighborhood(csr_, a_, o);
  ASSERT_EQ(r.size(), 4u);
  EXPECT_EQ(r[0].hops, 1);
  EXPECT_EQ(r[1].hops, 1);
  EXPECT_EQ(r[2].node, b_);  // shares genre and artist: two paths
  EXPECT_EQ(r[2].paths, 2u);
  EXPECT_EQ(r[3].node, c_);
  EXPECT_EQ(r[3].paths, 1u);
}

TEST_F(CsrTest, NeighborhoodFiltersRelations) {
  NeighborhoodOptions o;
  o.hops = 2;
  o.relations = {genre_rel_};
  auto r = Neighborhood(csr_, a_, o);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].node, genre_);
  EXPECT_EQ(r[1].node, b_);
  NeighborhoodOptions with_users;
  with_users.hops = 1;
  auto u = Neighborhood(csr_, a_, with_users);
  EXPECT_EQ(u.size(), 3u);  // genre, artist and the user
}

}  // namespace
}  // namespace mosaic::graph
