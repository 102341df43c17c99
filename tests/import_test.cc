// Tests of graph::Import: every input format on tiny files written by the tests, the counters
// and graph that result, idempotency (a second import leaves a byte-identical store), and
// malformed input (a "file:line: reason" error and an untouched store).
#include <rocksdb/db.h>
#include <rocksdb/options.h>

#include <algorithm>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "graph/import.h"
#include "store/store.h"
#include "tests/test_util.h"

namespace mosaic {
namespace {

using graph::Import;
using graph::ImportFormat;
using graph::ImportReport;
using graph::ImportRequest;
using store::Counters;
using store::NodeId;
using store::NodeKind;
using store::NodeRecord;
using store::RelationId;
using testing::TempDir;
using testing::WriteFile;
using testing::DumpStore;

// ---------------------------------------------------------------------------------------------
// Store dump: every key and value of every column family (meta included), read straight from
// RocksDB with the store closed. Two stores with equal dumps hold byte-identical records.



// ---------------------------------------------------------------------------------------------
// Fixture: a store in a temporary folder and helpers to import into it and look at it.

class ImportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = tmp_ / "store";
    Reopen();
  }

  void Reopen() {
    store_.reset();
    store::OpenOptions options;
    options.create_if_missing = true;
    ASSERT_OK(store::Store::Open(dir_, options, &store_));
  }

  // Closes the store, dumps it and opens it again.
  std::string Dump() {
    store_.reset();
    std::string d = DumpStore(dir_);
    Reopen();
    return d;
  }

  std::string Write(const std::string& name, const std::string& content) {
    const std::string path = tmp_ / name;
    WriteFile(path, content);
    return path;
  }

  Status Run(ImportFormat format, const std::vector<std::string>& files, const std::string& links = "",
             size_t rows_per_batch = 20000, ImportReport* report = nullptr) {
    ImportRequest request;
    request.format = format;
    request.files = files;
    request.links_file = links;
    request.rows_per_batch = rows_per_batch;
    ImportReport local;
    return Import(store_.get(), request, {}, report ? report : &local);
  }

  // Imports and checks the store's invariants afterwards.
  void ImportOk(ImportFormat format, const std::vector<std::string>& files, const std::string& links = "",
                size_t rows_per_batch = 20000, ImportReport* report = nullptr) {
    ASSERT_OK(Run(format, files, links, rows_per_batch, report));
    ASSERT_OK(store_->NewReadView()->CheckConsistency());
  }

  Counters Counts() {
    Counters c;
    EXPECT_OK(store_->NewReadView()->GetCounters(&c));
    return c;
  }
  uint64_t Nodes(NodeKind kind) {
    Counters c = Counts();
    return c.nodes.count(kind) ? c.nodes.at(kind) : 0;
  }
  // Triples of relation `name` (0 when the relation does not exist).
  uint64_t EdgesOf(const std::string& name) {
    auto view = store_->NewReadView();
    RelationId rel = 0;
    if (!view->FindRelation(name, &rel).ok()) return 0;
    Counters c;
    EXPECT_OK(view->GetCounters(&c));
    return c.edges.count(rel) ? c.edges.at(rel) : 0;
  }
  size_t RelationCount() {
    std::map<RelationId, std::string> rels;
    EXPECT_OK(store_->NewReadView()->ListRelations(&rels));
    return rels.size();
  }

  // Id of (kind, key); fails the test when absent.
  NodeId Find(NodeKind kind, const std::string& key) {
    NodeId id = 0;
    Status s = store_->NewReadView()->FindNode(kind, key, &id);
    EXPECT_TRUE(s.ok()) << NodeKindName(kind) << " '" << key << "': " << s.ToString();
    return id;
  }
  bool Has(NodeKind kind, const std::string& key) {
    NodeId id = 0;
    return store_->NewReadView()->FindNode(kind, key, &id).ok();
  }
  NodeRecord Get(NodeId id) {
    NodeRecord r;
    EXPECT_OK(store_->NewReadView()->GetNode(id, &r));
    return r;
  }
  nlohmann::json Attributes(NodeId id) {
    const NodeRecord r = Get(id);
    return r.attributes.empty() ? nlohmann::json::object() : nlohmann::json::parse(r.attributes);
  }

  // Edges leaving `id`, as "relation -> kind:key" (all relations, `interacted` included).
  std::set<std::string> Out(NodeId id) {
    auto view = store_->NewReadView();
    std::set<std::string> out;
    EXPECT_OK(view->ForEachOutEdge(id, [&](const store::Edge& e) {
      std::string rel;
      EXPECT_OK(view->GetRelationName(e.relation, &rel));
      NodeRecord r;
      EXPECT_OK(view->GetNode(e.dst, &r));
      out.insert(rel + " -> " + NodeKindName(r.kind) + ":" + r.key);
      return true;
    }));
    return out;
  }
  std::set<std::string> In(NodeId id) {
    auto view = store_->NewReadView();
    std::set<std::string> in;
    EXPECT_OK(view->ForEachInEdge(id, [&](const store::Edge& e) {
      std::string rel;
      EXPECT_OK(view->GetRelationName(e.relation, &rel));
      NodeRecord r;
      EXPECT_OK(view->GetNode(e.src, &r));
      in.insert(std::string(NodeKindName(r.kind)) + ":" + r.key + " -" + rel + "->");
      return true;
    }));
    return in;
  }

  std::vector<store::Interaction> Interactions() {
    std::vector<store::Interaction> v;
    EXPECT_OK(store_->NewReadView()->ForEachInteraction([&](const store::Interaction& x) {
      v.push_back(x);
      return true;
    }));
    return v;
  }

  TempDir tmp_;
  std::string dir_;
  std::unique_ptr<store::Store> store_;
};

const char kPlays[] = "userID\tartistID\tweight\n2\t51\t13883\n2\t52\t11690\n3\t51\t7\n";

// ---------------------------------------------------------------------------------------------
// Formats

TEST_F(ImportTest, ParseImportFormatKnowsEveryName) {
  for (const auto& f : graph::ImportFormats()) {
    ImportFormat parsed = ImportFormat::kKgTriples;
    ASSERT_OK(graph::ParseImportFormat(f.name, &parsed));
    EXPECT_EQ(parsed, f.format) << f.name;
  }
  EXPECT_EQ(graph::ImportFormats().size(), 9u);
}

TEST_F(ImportTest, UnknownFormatNameListsKnownFormats) {
  ImportFormat format = ImportFormat::kKgTriples;
  Status s = graph::ParseImportFormat("netflix-prize", &format);
  ASSERT_TRUE(s.IsInvalidArgument()) << s.ToString();
  EXPECT_NE(s.message().find("netflix-prize"), std::string::npos) << s.message();
  for (const auto& f : graph::ImportFormats()) {
    EXPECT_NE(s.message().find(f.name), std::string::npos) << f.name << " missing from: " << s.message();
  }
}

TEST_F(ImportTest, KgTriplesWithLinksAlignItemsWithEntities) {
  const std::string links = Write("item_index2entity_id.txt", "2\t0\n3\t1\n");
  const std::string kg = Write("kg.txt",
                               "0\tmusic.artist.genre\t10\n"
                               "1\tmusic.artist.genre\t10\n"
                               "10\tmusic.genre.parent_genre\t11\n"
                               "0\tmusic.artist.origin\t12\n"
                               "artist:Claude  Debussy\tnationality\tcountry:France\n");
  ImportReport report;
  ImportOk(ImportFormat::kKgTriples, {kg}, links, 20000, &report);
  EXPECT_EQ(report.rows, 7u);  // 2 links + 5 triples
  EXPECT_EQ(report.batches, 1u);

  Counters c = Counts();
  EXPECT_EQ(Nodes(NodeKind::kItem), 2u);
  EXPECT_EQ(Nodes(NodeKind::kEntity), 5u);  // 10, 11, 12, artist:..., country:...
  EXPECT_EQ(Nodes(NodeKind::kUser), 0u);
  EXPECT_EQ(c.items_linked, 2u);
  EXPECT_EQ(c.interactions, 0u);
  EXPECT_EQ(EdgesOf("music.artist.genre"), 2u);
  EXPECT_EQ(EdgesOf("music.genre.parent_genre"), 1u);
  EXPECT_EQ(EdgesOf("music.artist.origin"), 1u);
  EXPECT_EQ(EdgesOf("nationality"), 1u);
  EXPECT_EQ(RelationCount(), 4u);

  // The item is the entity: the KG edges of entity 0 are the item's.
  const NodeId item2 = Find(NodeKind::kItem, "2");
  EXPECT_EQ(Find(NodeKind::kEntity, "0"), item2);
  EXPECT_EQ(Find(NodeKind::kEntity, "1"), Find(NodeKind::kItem, "3"));
  EXPECT_EQ(Get(item2).kind, NodeKind::kItem);
  EXPECT_EQ(Out(item2), (std::set<std::string>{"music.artist.genre -> entity:10", "music.artist.origin -> entity:12"}));
  EXPECT_EQ(In(Find(NodeKind::kEntity, "10")), (std::set<std::string>{"item:2 -music.artist.genre->",
                                                                        "item:3 -music.artist.genre->"}));
  EXPECT_EQ(Out(Find(NodeKind::kEntity, "10")), (std::set<std::string>{"music.genre.parent_genre -> entity:11"}));
  EXPECT_EQ(Get(Find(NodeKind::kEntity, "10")).label, "");  // bare KGCN ids get no label

  // "ns:Value" tokens: the key is normalised, the label is the value.
  const NodeId debussy = Find(NodeKind::kEntity, "artist:claude debussy");
  EXPECT_EQ(Get(debussy).label, "Claude Debussy");
  EXPECT_EQ(Out(debussy), (std::set<std::string>{"nationality -> entity:country:france"}));
  EXPECT_EQ(Get(Find(NodeKind::kEntity, "country:france")).label, "France");
}

TEST_F(ImportTest, KgLinksAlone) {
  const std::string links = Write("links.tsv", "5\t100\n6\tEntity  X\n5\t100\n\n");
  ImportReport report;
  ImportOk(ImportFormat::kKgLinks, {links}, "", 20000, &report);
  EXPECT_EQ(report.rows, 3u);
  Counters c = Counts();
  EXPECT_EQ(Nodes(NodeKind::kItem), 2u);
  EXPECT_EQ(Nodes(NodeKind::kEntity), 0u);
  EXPECT_EQ(c.items_linked, 2u);
  EXPECT_EQ(Find(NodeKind::kEntity, "100"), Find(NodeKind::kItem, "5"));
  EXPECT_EQ(Find(NodeKind::kEntity, "entity x"), Find(NodeKind::kItem, "6"));  // entity keys are normalised

  // Triples imported later reach the linked item.
  ImportOk(ImportFormat::kKgTriples, {Write("kg.tsv", "100\tmusic.artist.genre\t200\n")});
  EXPECT_EQ(Out(Find(NodeKind::kItem, "5")), (std::set<std::string>{"music.artist.genre -> entity:200"}));
  EXPECT_EQ(Counts().items_linked, 2u);
  EXPECT_EQ(Nodes(NodeKind::kEntity), 1u);
}

TEST_F(ImportTest, LastfmPlays) {
  ImportReport report;
  ImportOk(ImportFormat::kLastfmPlays, {Write("user_artists.dat", kPlays)}, "", 20000, &report);
  EXPECT_EQ(report.rows, 3u);
  EXPECT_EQ(report.bytes, sizeof(kPlays) - 1);
  Counters c = Counts();
  EXPECT_EQ(Nodes(NodeKind::kUser), 2u);
  EXPECT_EQ(Nodes(NodeKind::kItem), 2u);
  EXPECT_EQ(c.interactions, 3u);
  EXPECT_EQ(c.items_with_interactions, 2u);
  EXPECT_EQ(c.tag_applications, 0u);
  EXPECT_EQ(EdgesOf("interacted"), 3u);
  const NodeId u2 = Find(NodeKind::kUser, "2");
  EXPECT_EQ(Out(u2), (std::set<std::string>{"interacted -> item:51", "interacted -> item:52"}));
  auto view = store_->NewReadView();
  float weight = 0;
  ASSERT_OK(view->ForEachOutEdge(u2, [&](const store::Edge& e) {
    if (e.dst == Find(NodeKind::kItem, "51")) weight = e.weight;
    return true;
  }));
  EXPECT_FLOAT_EQ(weight, 13883.0f);
  bool found = false;
  for (const auto& x : Interactions()) {
    if (x.user == Find(NodeKind::kUser, "3")) {
      found = true;
      EXPECT_EQ(x.item, Find(NodeKind::kItem, "51"));
      EXPECT_EQ(x.kind, store::InteractionKind::kConsumption);
      EXPECT_DOUBLE_EQ(x.weight, 7.0);
      EXPECT_EQ(x.timestamp, 0);
    }
  }
  EXPECT_TRUE(found);
}

TEST_F(ImportTest, LastfmPlaysWithCrlfAndPaddedIds) {
  // Windows line endings, and ids written with leading zeros: ids are canonical integers.
  const std::string path = Write("user_artists.dat", "userID\tartistID\tweight\r\n2\t51\t13883\r\n02\t0052\t11690\r\n\r\n3\t51\t7\r\n");
  ImportOk(ImportFormat::kLastfmPlays, {path});
  Counters c = Counts();
  EXPECT_EQ(Nodes(NodeKind::kUser), 2u);
  EXPECT_EQ(Nodes(NodeKind::kItem), 2u);
  EXPECT_EQ(c.interactions, 3u);
  EXPECT_TRUE(Has(NodeKind::kItem, "52"));
  EXPECT_FALSE(Has(NodeKind::kItem, "0052"));
  EXPECT_FALSE(Has(NodeKind::kItem, "52\r"));
}

TEST_F(ImportTest, MovielensRatings) {
  const std::string path =
      Write("ratings.csv", "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,3,4.5,964981247\n2,1,0.5,100\n");
  ImportOk(ImportFormat::kMovielensRatings, {path});
  Counters c = Counts();
  EXPECT_EQ(Nodes(NodeKind::kUser), 2u);
  EXPECT_EQ(Nodes(NodeKind::kItem), 2u);
  EXPECT_EQ(c.interactions, 3u);
  EXPECT_EQ(c.items_with_interactions, 2u);
  const NodeId u1 = Find(NodeKind::kUser, "1"), m3 = Find(NodeKind::kItem, "3");
  bool found = false;
  for (const auto& x : Interactions()) {
    if (x.user == u1 && x.item == m3) {
      found = true;
      EXPECT_DOUBLE_EQ(x.weight, 4.5);
      EXPECT_EQ(x.timestamp, 964981247);
    }
  }
  EXPECT_TRUE(found);
  EXPECT_EQ(In(Find(NodeKind::kItem, "1")), (std::set<std::string>{"user:1 -interacted->", "user:2 -interacted->"}));
}

TEST_F(ImportTest, GenericInteractionsTsv) {
  const std::string path = Write("plays.tsv",
                                 "user\titem\tweight\ttimestamp\n"
                                 "ana\tclair-de-lune\t48\t1771222600\n"
                                 "ana\treverie\t22\t1777945720\n"
                                 "bo\tclair-de-lune\t3\t1777945721\n");
  ImportOk(ImportFormat::kInteractions, {path});
  Counters c = Counts();
  EXPECT_EQ(Nodes(NodeKind::kUser), 2u);
  EXPECT_EQ(Nodes(NodeKind::kItem), 2u);
  EXPECT_EQ(c.interactions, 3u);
  EXPECT_EQ(c.items_with_interactions, 2u);
  EXPECT_EQ(Out(Find(NodeKind::kUser, "ana")),
            (std::set<std::string>{"interacted -> item:clair-de-lune", "interacted -> item:reverie"}));
  for (const auto& x : Interactions()) {
    if (x.user == Find(NodeKind::kUser, "bo")) {
      EXPECT_DOUBLE_EQ(x.weight, 3.0);
      EXPECT_EQ(x.timestamp, 1777945721);
    }
  }
}

TEST_F(ImportTest, GenericInteractionsColumnsInAnyOrderWeightOptional) {
  ImportOk(ImportFormat::kInteractions, {Write("clicks.tsv", "item\tuser\nsong-1\tana\nsong-2\tana\n")});
  EXPECT_EQ(Counts().interactions, 2u);
  EXPECT_EQ(Out(Find(NodeKind::kUser, "ana")),
            (std::set<std::string>{"interacted -> item:song-1", "interacted -> item:song-2"}));
  for (const auto& x : Interactions()) {
    EXPECT_DOUBLE_EQ(x.weight, 1.0);
    EXPECT_EQ(x.timestamp, 0);
  }
}

TEST_F(ImportTest, GenericInteractionsCsvWithQuotedComma) {
  const std::string path = Write("plays.csv",
                                 "user,item,weight,timestamp\n"
                                 "\"smith, john\",song-1,2,100\n"
                                 "ana,\"Song \"\"Two\"\", live\",5,200\n");
  ImportOk(ImportFormat::kInteractions, {path});
  EXPECT_EQ(Counts().interactions, 2u);
  EXPECT_EQ(Out(Find(NodeKind::kUser, "smith, john")), (std::set<std::string>{"interacted -> item:song-1"}));
  EXPECT_TRUE(Has(NodeKind::kItem, "Song \"Two\", live"));
  EXPECT_FALSE(Has(NodeKind::kUser, "\"smith"));
}

TEST_F(ImportTest, HetrecArtists) {
  const std::string path = Write("artists.dat",
                                 "id\tname\turl\tpictureURL\n"
                                 "1\tMALICE MIZER\thttp://www.last.fm/music/MALICE+MIZER\thttp://x/1.jpg\n"
                                 "2\t  Diary  of Dreams \t\t\n");
  ImportOk(ImportFormat::kHetrecArtists, {path});
  EXPECT_EQ(Nodes(NodeKind::kItem), 2u);
  EXPECT_EQ(Nodes(NodeKind::kEntity), 0u);
  EXPECT_EQ(Counts().interactions, 0u);
  const NodeId a1 = Find(NodeKind::kItem, "1"), a2 = Find(NodeKind::kItem, "2");
  EXPECT_EQ(Get(a1).label, "MALICE MIZER");
  EXPECT_EQ(Get(a2).label, "Diary of Dreams");
  nlohmann::json attrs = Attributes(a1);
  EXPECT_EQ(attrs["title"], "MALICE MIZER");
  EXPECT_EQ(attrs["kind"], "music");
  EXPECT_EQ(attrs["url"], "http://www.last.fm/music/MALICE+MIZER");
  EXPECT_FALSE(Attributes(a2).contains("url"));
  EXPECT_TRUE(Out(a1).empty());

  // Plays imported afterwards land on the labelled items, which keep their labels.
  ImportOk(ImportFormat::kLastfmPlays, {Write("user_artists.dat", "userID\tartistID\tweight\n7\t2\t10\n")});
  EXPECT_EQ(Nodes(NodeKind::kItem), 2u);
  EXPECT_EQ(Get(a2).label, "Diary of Dreams");
  EXPECT_EQ(Counts().items_with_interactions, 1u);
}

TEST_F(ImportTest, MovielensMovies) {
  const std::string path = Write("movies.csv",
                                 "movieId,title,genres\n"
                                 "1,Toy Story (1995),Adventure|Animation|Children\n"
                                 "11,\"American President, The (1995)\",Comedy|Drama|Romance\n"
                                 "999,Nothing Here (2000),(no genres listed)\n");
  ImportOk(ImportFormat::kMovielensMovies, {path});
  EXPECT_EQ(Nodes(NodeKind::kItem), 3u);
  EXPECT_EQ(Nodes(NodeKind::kEntity), 6u);
  EXPECT_EQ(EdgesOf("genre"), 6u);
  EXPECT_EQ(RelationCount(), 1u);
  const NodeId m11 = Find(NodeKind::kItem, "11");
  EXPECT_EQ(Get(m11).label, "American President, The (1995)");
  EXPECT_EQ(Attributes(m11)["kind"], "video");
  EXPECT_EQ(Out(m11), (std::set<std::string>{"genre -> entity:genre:comedy", "genre -> entity:genre:drama",
                                             "genre -> entity:genre:romance"}));
  EXPECT_TRUE(Out(Find(NodeKind::kItem, "999")).empty());
  EXPECT_FALSE(Has(NodeKind::kEntity, "genre:(no genres listed)"));
  EXPECT_EQ(Get(Find(NodeKind::kEntity, "genre:adventure")).label, "Adventure");
}

TEST_F(ImportTest, MovielensTags) {
  const std::string path = Write("tags.csv",
                                 "userId,movieId,tag,timestamp\n"
                                 "2,60756,funny,1445714994\n"
                                 "2,60756,Highly quotable,1445714996\n"
                                 "3,60756,Funny,1445715000\n"
                                 "2,89774,Boxing  story,1445715207\n");
  ImportOk(ImportFormat::kMovielensTags, {path});
  Counters c = Counts();
  EXPECT_EQ(c.tag_applications, 4u);
  EXPECT_EQ(c.interactions, 0u);
  EXPECT_EQ(c.items_with_interactions, 0u);
  EXPECT_EQ(Nodes(NodeKind::kUser), 2u);
  EXPECT_EQ(Nodes(NodeKind::kItem), 2u);
  EXPECT_EQ(Nodes(NodeKind::kEntity), 3u);  // funny, highly quotable, boxing story
  EXPECT_EQ(EdgesOf("tag"), 3u);
  EXPECT_EQ(Out(Find(NodeKind::kItem, "60756")),
            (std::set<std::string>{"tag -> entity:tag:funny", "tag -> entity:tag:highly quotable"}));
  EXPECT_EQ(Get(Find(NodeKind::kEntity, "tag:boxing story")).label, "Boxing story");
  size_t tagged = 0;
  for (const auto& x : Interactions()) {
    EXPECT_EQ(x.kind, store::InteractionKind::kTagApplication);
    if (x.tag == Find(NodeKind::kEntity, "tag:funny")) ++tagged;
  }
  EXPECT_EQ(tagged, 2u);
}

TEST_F(ImportTest, CatalogueJsonl) {
  const std::string path = Write(
      "catalogue.jsonl",
      "{\"id\": \"clair-de-lune\", \"kind\": \"music\", \"title\": \"Clair de lune\", \"artist\": \"Claude Debussy\","
      " \"year\": 1905, \"tags\": [\"piano\", \"impressionism\"], \"genre\": [\"Classical\"]}\n"
      "\n"
      "{\"id\": 42, \"kind\": \"video\", \"title\": \"Amélie — Le  Fabuleux Destin\", \"description\": \"Paris, café,"
      " «joie»\", \"tags\": [\"Comédie\", \"Paris\", \"  \"], \"year\": 2001, \"rating\": 8.5, \"director\": "
      "\"Jean-Pierre Jeunet\", \"studio\": null}\n");
  ImportReport report;
  ImportOk(ImportFormat::kCatalogueJsonl, {path}, "", 20000, &report);
  EXPECT_EQ(report.rows, 2u);
  EXPECT_EQ(Nodes(NodeKind::kItem), 2u);
  // artist, piano, impressionism, classical, comédie, paris, jean-pierre jeunet
  EXPECT_EQ(Nodes(NodeKind::kEntity), 7u);
  EXPECT_EQ(EdgesOf("tag"), 4u);
  EXPECT_EQ(EdgesOf("tags"), 0u);
  EXPECT_EQ(EdgesOf("artist"), 1u);
  EXPECT_EQ(EdgesOf("genre"), 1u);
  EXPECT_EQ(EdgesOf("director"), 1u);
  EXPECT_EQ(RelationCount(), 4u);

  const NodeId amelie = Find(NodeKind::kItem, "42");
  NodeRecord r = Get(amelie);
  EXPECT_EQ(r.label, "Amélie — Le Fabuleux Destin");
  nlohmann::json a = Attributes(amelie);
  EXPECT_EQ(a["year"], 2001);
  EXPECT_EQ(a["kind"], "video");
  EXPECT_EQ(a["description"], "Paris, café, «joie»");
  EXPECT_DOUBLE_EQ(a["rating"].get<double>(), 8.5);
  EXPECT_FALSE(a.contains("tags"));
  EXPECT_FALSE(a.contains("studio"));
  EXPECT_EQ(Out(amelie), (std::set<std::string>{"tag -> entity:tag:comédie", "tag -> entity:tag:paris",
                                                "director -> entity:director:jean-pierre jeunet"}));
  EXPECT_EQ(Get(Find(NodeKind::kEntity, "tag:comédie")).label, "Comédie");

  const NodeId clair = Find(NodeKind::kItem, "clair-de-lune");
  EXPECT_EQ(Attributes(clair)["year"], 1905);
  EXPECT_EQ(Out(clair), (std::set<std::string>{"artist -> entity:artist:claude debussy", "tag -> entity:tag:piano",
                                               "tag -> entity:tag:impressionism", "genre -> entity:genre:classical"}));

  // KG triples with "ns:Value" tokens reach the entities the catalogue created.
  ImportOk(ImportFormat::kKgTriples, {Write("kg.tsv", "artist:Claude Debussy\tnationality\tcountry:France\n")});
  EXPECT_EQ(Out(Find(NodeKind::kEntity, "artist:claude debussy")),
            (std::set<std::string>{"nationality -> entity:country:france"}));
  EXPECT_EQ(Get(Find(NodeKind::kEntity, "artist:claude debussy")).label, "Claude Debussy");
}

TEST_F(ImportTest, MovielensMoviesRatingsAndTagsTogether) {
  ImportOk(ImportFormat::kMovielensMovies,
           {Write("movies.csv", "movieId,title,genres\n1,Toy Story (1995),Animation|Comedy\n2,Jumanji (1995),Fantasy\n")});
  ImportOk(ImportFormat::kMovielensRatings,
           {Write("ratings.csv", "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,2,3.0,964982704\n")});
  ImportOk(ImportFormat::kMovielensTags, {Write("tags.csv", "userId,movieId,tag,timestamp\n1,1,comedy,1\n")});
  Counters c = Counts();
  EXPECT_EQ(Nodes(NodeKind::kItem), 2u);
  EXPECT_EQ(Nodes(NodeKind::kUser), 1u);
  EXPECT_EQ(c.interactions, 2u);
  EXPECT_EQ(c.tag_applications, 1u);
  EXPECT_EQ(c.items_with_interactions, 2u);
  EXPECT_EQ(Get(Find(NodeKind::kItem, "1")).label, "Toy Story (1995)");
}

// The limits' other side: a weight of exactly 1e9 is accepted, and a description may hold tabs and
// line breaks (ids, titles, entities and tags may not: see kBadInputs).
TEST_F(ImportTest, WeightAtTheCeilingAndDescriptionWithLineBreaksAreAccepted) {
  ImportOk(ImportFormat::kLastfmPlays, {Write("plays.dat", "userID\tartistID\tweight\n2\t51\t1000000000\n")});
  ImportOk(ImportFormat::kCatalogueJsonl,
           {Write("c.jsonl", "{\"id\": \"d\", \"title\": \"D\", \"description\": \"one\\ttwo\\nthree\\r\"}\n")});
  EXPECT_EQ(Nodes(NodeKind::kItem), 2u);
}

TEST_F(ImportTest, ReportAndBatches) {
  std::string content = "user\titem\n";
  for (int i = 0; i < 10; ++i) content += "u" + std::to_string(i % 3) + "\ti" + std::to_string(i) + "\n";
  const std::string path = Write("x.tsv", content);
  ImportReport report;
  ImportOk(ImportFormat::kInteractions, {path}, "", 4, &report);
  EXPECT_EQ(report.rows, 10u);
  EXPECT_EQ(report.bytes, content.size());
  EXPECT_EQ(report.batches, 3u);  // 4 + 4 + 2
  EXPECT_EQ(Counts().interactions, 10u);
}

TEST_F(ImportTest, ProgressEndsAtTotal) {
  const std::string path = Write("user_artists.dat", kPlays);
  ImportRequest request;
  request.format = ImportFormat::kLastfmPlays;
  request.files = {path};
  std::vector<graph::ImportProgress> seen;
  ImportReport report;
  ASSERT_OK(Import(store_.get(), request, [&](const graph::ImportProgress& p) { seen.push_back(p); }, &report));
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen.back().pass, 2);
  EXPECT_EQ(seen.back().bytes_total, 2 * (sizeof(kPlays) - 1));
  EXPECT_EQ(seen.back().bytes_done, seen.back().bytes_total);
  EXPECT_EQ(seen.back().rows, 3u);
}

// A last line without a newline must not push progress past its total.
TEST_F(ImportTest, ProgressEndsAtTotalWithoutFinalNewline) {
  const std::string content = "userID\tartistID\tweight\n2\t51\t13883";  // no newline at the end
  const std::string path = Write("user_artists.dat", content);
  ImportRequest request;
  request.format = ImportFormat::kLastfmPlays;
  request.files = {path};
  graph::ImportProgress last;
  ImportReport report;
  ASSERT_OK(Import(store_.get(), request, [&](const graph::ImportProgress& p) { last = p; }, &report));
  EXPECT_EQ(report.rows, 1u);
  EXPECT_EQ(last.bytes_total, 2 * content.size());
  EXPECT_LE(last.bytes_done, last.bytes_total) << "progress goes past 100%";
}

// ---------------------------------------------------------------------------------------------
// Idempotency: a second import of the same files leaves a byte-identical store.

struct Source {
  ImportFormat format;
  std::vector<std::string> files;
  std::string links = "";
};

class IdempotencyTest : public ImportTest {
 protected:
  // One tiny file per format, in an order where each builds on the previous ones.
  std::vector<Source> AllFormats() {
    return {
        {ImportFormat::kCatalogueJsonl,
         {Write("c.jsonl",
                "{\"id\": \"a\", \"title\": \"Ä  title\", \"kind\": \"music\", \"tags\": [\"x\", \"y\"], \"year\": 1999}\n"
                "{\"id\": 7, \"title\": \"Seven\", \"artist\": \"Somebody\"}\n")}},
        {ImportFormat::kHetrecArtists, {Write("artists.dat", "id\tname\turl\tpictureURL\n51\tBand\thttp://u\tp\n")}},
        {ImportFormat::kKgTriples, {Write("kg.txt", "0\tr.one\t10\n10\tr.two\t11\nartist:Somebody\tborn_in\tcity:Paris\n")},
         Write("links.txt", "51\t0\n")},
        {ImportFormat::kKgLinks, {Write("more-links.txt", "7\t300\n")}},
        {ImportFormat::kLastfmPlays, {Write("plays.dat", kPlays)}},
        {ImportFormat::kMovielensMovies,
         {Write("movies.csv", "movieId,title,genres\n1,\"Film, The (1995)\",Comedy|Drama\n2,Other,(no genres listed)\n")}},
        {ImportFormat::kMovielensRatings, {Write("ratings.csv", "userId,movieId,rating,timestamp\n1,1,4.0,5\n2,1,2.5,6\n")}},
        {ImportFormat::kMovielensTags, {Write("tags.csv", "userId,movieId,tag,timestamp\n1,1,Funny,5\n1,2,funny,6\n")}},
        {ImportFormat::kInteractions, {Write("i.tsv", "user\titem\tweight\nana\ta\t3\nana\t7\t1\n")}},
        {ImportFormat::kInteractions, {Write("i.csv", "user,item\n\"b, c\",a\n")}},
    };
  }
};

TEST_F(IdempotencyTest, EachFormatTwiceIsByteIdentical) {
  for (const Source& src : AllFormats()) {
    SCOPED_TRACE(src.files[0]);
    ImportOk(src.format, src.files, src.links);
    const std::string once = Dump();
    ImportOk(src.format, src.files, src.links);
    const std::string twice = Dump();
    EXPECT_EQ(once, twice);
  }
  // The last dump holds everything: make sure it is not trivially empty.
  EXPECT_GT(Counts().interactions, 0u);
  EXPECT_GT(Counts().tag_applications, 0u);
  EXPECT_GT(Counts().items_linked, 0u);
}

TEST_F(IdempotencyTest, WholeSequenceTwiceIsByteIdentical) {
  const auto sources = AllFormats();
  for (const Source& src : sources) ImportOk(src.format, src.files, src.links);
  const std::string once = Dump();
  for (const Source& src : sources) ImportOk(src.format, src.files, src.links);
  EXPECT_EQ(once, Dump());
}

TEST_F(IdempotencyTest, BatchSizeDoesNotChangeTheResult) {
  const auto sources = AllFormats();
  for (const Source& src : sources) ImportOk(src.format, src.files, src.links, 20000);
  const std::string big_batches = Dump();

  TempDir other;
  store_.reset();
  dir_ = other / "store";
  Reopen();
  for (const Source& src : sources) ImportOk(src.format, src.files, src.links, 1);
  EXPECT_EQ(big_batches, Dump());
}

// ---------------------------------------------------------------------------------------------
// Malformed input: "file:line: reason", and the store exactly as it was.

struct BadInput {
  const char* name;        ///< test name
  ImportFormat format;
  const char* file;        ///< file name
  std::string content;     ///< file content
  size_t line;             ///< line the error names
  const char* phrase;      ///< must appear in the message
  const char* links = "";  ///< links file content (kg only), written as links.txt
  bool error_in_links = false;  ///< the error names the links file
};

// Names the case in gtest's output instead of dumping the struct's bytes.
void PrintTo(const BadInput& bad, std::ostream* os) { *os << bad.name; }

std::string ManyPlaysThen(const std::string& last) {
  std::string s = "userID\tartistID\tweight\n";
  for (int i = 0; i < 50; ++i) s += std::to_string(1000 + i) + "\t" + std::to_string(2000 + i) + "\t" + std::to_string(i) + "\n";
  return s + last;
}

const BadInput kBadInputs[] = {
    {"WrongColumnCount", ImportFormat::kLastfmPlays, "plays.dat", "userID\tartistID\tweight\n2\t51\t3\n4\t5\n", 3,
     "expected 3 columns"},
    {"TooManyColumns", ImportFormat::kKgTriples, "kg.txt", "a\tr\tb\na\tr\tb\tc\n", 2, "expected 3 columns"},
    {"NonNumericId", ImportFormat::kLastfmPlays, "plays.dat", "userID\tartistID\tweight\n2\t51\t3\nx7\t5\t1\n", 3,
     "userID 'x7' is not a non-negative integer"},
    {"NegativeId", ImportFormat::kMovielensRatings, "ratings.csv", "userId,movieId,rating,timestamp\n1,-5,3,1\n", 2,
     "movieId '-5' is not a non-negative integer"},
    {"NegativeWeight", ImportFormat::kLastfmPlays, "plays.dat", "userID\tartistID\tweight\n2\t51\t3\n2\t52\t-4\n", 3,
     "weight '-4' is negative"},
    {"NonNumericRating", ImportFormat::kMovielensRatings, "ratings.csv",
     "userId,movieId,rating,timestamp\n1,5,3,1\n1,6,good,2\n", 3, "rating 'good' is not a number"},
    {"BadTimestamp", ImportFormat::kInteractions, "i.tsv", "user\titem\ttimestamp\nana\tx\tyesterday\n", 2,
     "timestamp 'yesterday' is not an integer timestamp"},
    {"BadHeaderTsv", ImportFormat::kLastfmPlays, "plays.dat", "user\tartist\tweight\n2\t51\t3\n", 1,
     "expected the header 'userID\\tartistID\\tweight'"},
    {"BadHeaderCsv", ImportFormat::kMovielensRatings, "ratings.csv", "1,1,4.0,964982703\n", 1,
     "expected the header 'userId,movieId,rating,timestamp'"},
    {"HeadlessArtists", ImportFormat::kHetrecArtists, "artists.dat", "1\tA\tu\tp\n", 1,
     "expected the header 'id\\tname\\turl\\tpictureURL'"},
    {"GenericHeaderUnknownColumn", ImportFormat::kInteractions, "i.tsv", "user\tsong\nana\tx\n", 1,
     "unknown column 'song'"},
    {"GenericHeaderWithoutItem", ImportFormat::kInteractions, "i.tsv", "user\tweight\nana\t1\n", 1,
     "must name a 'user' and an 'item'"},
    {"RelationWithSpace", ImportFormat::kKgTriples, "kg.txt", "a\tr\tb\nc\thas genre\td\n", 2,
     "'has genre' is not a relation name"},
    // Issue 13: import took negative timestamps that POST /interactions refuses.
    {"NegativeTimestamp", ImportFormat::kMovielensRatings, "ratings.csv",
     "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,2,3.0,-5\n", 3, "timestamp '-5' is negative"},
    {"NegativeTimestampGeneric", ImportFormat::kInteractions, "plays.tsv",
     "user\titem\tweight\ttimestamp\nu\ti\t1\t-1\n", 2, "timestamp '-1' is negative"},
    {"ReservedRelation", ImportFormat::kKgTriples, "kg.txt", "a\tr\tb\nc\tinteracted\td\n", 2,
     "relation 'interacted' is reserved"},
    {"EmptyHead", ImportFormat::kKgTriples, "kg.txt", "a\tr\tb\n \tr\td\n", 2, "head is empty"},
    {"NonUtf8", ImportFormat::kHetrecArtists, "artists.dat",
     "id\tname\turl\tpictureURL\n1\tA\tu\tp\n2\tB\xff\xfe\tu\tp\n", 3, "invalid UTF-8 (byte 0xFF at column 4)"},
    {"NonUtf8InCsv", ImportFormat::kMovielensMovies, "movies.csv", "movieId,title,genres\n1,Caf\xe9,Drama\n", 2,
     "invalid UTF-8"},
    {"InvalidJson", ImportFormat::kCatalogueJsonl, "c.jsonl", "{\"id\": \"a\"}\n{\"id\": \"b\",}\n", 2,
     "invalid JSON"},
    {"JsonNotAnObject", ImportFormat::kCatalogueJsonl, "c.jsonl", "[1, 2]\n", 1, "expected a JSON object"},
    {"JsonlWithoutId", ImportFormat::kCatalogueJsonl, "c.jsonl", "{\"id\": \"a\"}\n{\"title\": \"No id\"}\n", 2,
     "field 'id' is missing"},
    {"JsonlNestedObject", ImportFormat::kCatalogueJsonl, "c.jsonl",
     "{\"id\": \"a\", \"meta\": {\"x\": 1}}\n", 1, "field 'meta' is an object"},
    {"JsonlArrayOfObjects", ImportFormat::kCatalogueJsonl, "c.jsonl",
     "{\"id\": \"a\", \"tags\": [\"ok\", {\"x\": 1}]}\n", 1, "field 'tags' must hold only strings"},
    {"JsonlBadKind", ImportFormat::kCatalogueJsonl, "c.jsonl", "{\"id\": \"a\", \"kind\": \"book\"}\n", 1,
     "field 'kind' must be"},
    {"JsonlFractionalYear", ImportFormat::kCatalogueJsonl, "c.jsonl", "{\"id\": \"a\", \"year\": 1999.5}\n", 1,
     "field 'year' must be an integer"},
    {"JsonlReservedField", ImportFormat::kCatalogueJsonl, "c.jsonl", "{\"id\": \"a\", \"interacted\": \"x\"}\n", 1,
     "reserved"},
    {"UnterminatedQuote", ImportFormat::kMovielensMovies, "movies.csv",
     "movieId,title,genres\n1,Fine (1995),Drama\n2,\"Toy Story,Comedy\n", 3, "unterminated quoted CSV field"},
    {"StrayQuote", ImportFormat::kMovielensMovies, "movies.csv", "movieId,title,genres\n1,Bad \"Quote\",Drama\n", 2,
     "malformed CSV"},
    {"ErrorOnLastLine", ImportFormat::kLastfmPlays, "plays.dat", ManyPlaysThen("9\t9\tlots\n"), 52,
     "weight 'lots' is not a number"},
    {"ErrorOnLastLineWithoutNewline", ImportFormat::kLastfmPlays, "plays.dat", ManyPlaysThen("9\t9"), 52,
     "expected 3 columns"},
    {"LinkToExistingEntity", ImportFormat::kKgTriples, "kg.txt", "900\tr.x\t901\n", 1,
     "entity '500' is already a separate node", "9\t500\n", true},
    {"LinkEntityToTwoItems", ImportFormat::kKgLinks, "links.txt", "8\t777\n9\t777\n", 2,
     "is linked to item '8' earlier in the file and to item '9' here"},
    {"LinksFileMalformed", ImportFormat::kKgTriples, "kg.txt", "900\tr.x\t901\n", 2, "expected 2 columns",
     "9\t600\n9\n", true},
    // Issue 13, 9: a weight ceiling (1e9), named with file, line and field.
    {"WeightAboveTheCeiling", ImportFormat::kLastfmPlays, "plays.dat", "userID\tartistID\tweight\n2\t51\t3\n2\t52\t1e308\n",
     3, "weight '1e308' is above the largest weight, 1e9"},
    {"RatingAboveTheCeiling", ImportFormat::kMovielensRatings, "ratings.csv",
     "userId,movieId,rating,timestamp\n1,5,1000000001,1\n", 2, "rating '1000000001' is above the largest weight"},
    {"GenericWeightAboveTheCeiling", ImportFormat::kInteractions, "i.tsv", "user\titem\tweight\nana\tx\t2e9\n", 2,
     "weight '2e9' is above the largest weight"},
    // Issue 13, 7: numbers beyond a double's range in a catalogue line are malformed lines, not crashes.
    {"JsonlYear1e400", ImportFormat::kCatalogueJsonl, "c.jsonl", "{\"id\": \"a\", \"year\": 1e400}\n", 1, "invalid JSON"},
    {"Jsonl5000DigitId", ImportFormat::kCatalogueJsonl, "c.jsonl", "{\"id\": " + std::string(5000, '7') + "}\n", 1,
     "invalid JSON"},
    {"JsonlYearOutOfRange", ImportFormat::kCatalogueJsonl, "c.jsonl", "{\"id\": \"a\", \"year\": 99999}\n", 1,
     "field 'year' must be an integer between -9999 and 9999"},
    // Issue 13, 12: control characters in ids, titles, entities and tags are refused where they enter.
    {"EscInJsonlTitle", ImportFormat::kCatalogueJsonl, "c.jsonl", "{\"id\": \"a\", \"title\": \"x\\u001b[31m\"}\n", 1,
     "field 'title' contains a control character (U+001B at byte 1)"},
    {"NulInJsonlId", ImportFormat::kCatalogueJsonl, "c.jsonl", "{\"id\": \"a\\u0000b\"}\n", 1,
     "field 'id' contains a control character (U+0000"},
    {"C1InJsonlGenre", ImportFormat::kCatalogueJsonl, "c.jsonl", "{\"id\": \"a\", \"genre\": \"x\\u009by\"}\n", 1,
     "field 'genre' contains a control character (U+009B"},
    {"EscInArtistName", ImportFormat::kHetrecArtists, "artists.dat", "id\tname\turl\tpictureURL\n1\tA\x1b]0;x\x07\tu\tp\n",
     2, "name contains a control character (U+001B"},
    {"EscInMovieTitle", ImportFormat::kMovielensMovies, "movies.csv", "movieId,title,genres\n1,A\x1b[2J,Drama\n", 2,
     "title contains a control character"},
    {"EscInTag", ImportFormat::kMovielensTags, "tags.csv", "userId,movieId,tag,timestamp\n1,2,fun\x1b,3\n", 2,
     "tag contains a control character"},
    {"EscInUser", ImportFormat::kInteractions, "i.tsv", "user\titem\nan\x1b" "a\tx\n", 2, "user contains a control character"},
    {"EscInKgHead", ImportFormat::kKgTriples, "kg.txt", "a\x1b\tr\tb\n", 1, "head contains a control character"},
};

class MalformedTest : public ImportTest, public ::testing::WithParamInterface<BadInput> {
 protected:
  void SetUp() override {
    ImportTest::SetUp();
    // Some data already there: plays, a catalogue, and KG entities 500/501 with no item.
    ImportOk(ImportFormat::kLastfmPlays, {Write("existing-plays.dat", kPlays)});
    ImportOk(ImportFormat::kCatalogueJsonl,
             {Write("existing.jsonl", "{\"id\": \"x1\", \"title\": \"X One\", \"tags\": [\"t\"]}\n")});
    ImportOk(ImportFormat::kKgTriples, {Write("existing-kg.txt", "500\tr.x\t501\n")});
  }
};

TEST_P(MalformedTest, FailsWithLineAndLeavesStoreUntouched) {
  const BadInput& bad = GetParam();
  const std::string before = Dump();
  const std::string path = Write(bad.file, bad.content);
  const std::string links = *bad.links ? Write("links.txt", bad.links) : "";
  // rows_per_batch 1: every error must stop the import in the checking pass, before the
  // first commit.
  for (size_t rows_per_batch : {size_t(20000), size_t(1)}) {
    SCOPED_TRACE("rows_per_batch " + std::to_string(rows_per_batch));
    Status s = Run(bad.format, {path}, links, rows_per_batch);
    ASSERT_FALSE(s.ok());
    EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
    const std::string where = (bad.error_in_links ? links : path) + ":" + std::to_string(bad.line) + ": ";
    EXPECT_EQ(s.message().rfind(where, 0), 0u) << "expected to start with '" << where << "': " << s.message();
    EXPECT_NE(s.message().find(bad.phrase), std::string::npos) << s.message();
    EXPECT_EQ(before, Dump());
    ASSERT_OK(store_->NewReadView()->CheckConsistency());
  }
}

INSTANTIATE_TEST_SUITE_P(Import, MalformedTest, ::testing::ValuesIn(kBadInputs),
                         [](const ::testing::TestParamInfo<BadInput>& info) { return info.param.name; });

TEST_F(ImportTest, MissingFileIsNotFoundWithItsPath) {
  ImportOk(ImportFormat::kLastfmPlays, {Write("plays.dat", kPlays)});
  const std::string before = Dump();
  const std::string missing = tmp_ / "no-such-file.dat";
  Status s = Run(ImportFormat::kLastfmPlays, {missing});
  EXPECT_TRUE(s.IsNotFound()) << s.ToString();
  EXPECT_NE(s.message().find(missing), std::string::npos) << s.message();
  EXPECT_EQ(before, Dump());

  // Missing links file too.
  s = Run(ImportFormat::kKgTriples, {Write("kg.txt", "a\tr\tb\n")}, missing);
  EXPECT_TRUE(s.IsNotFound()) << s.ToString();
  EXPECT_NE(s.message().find(missing), std::string::npos) << s.message();
  EXPECT_EQ(before, Dump());
}

TEST_F(ImportTest, FolderGivenAsFile) {
  ImportOk(ImportFormat::kLastfmPlays, {Write("plays.dat", kPlays)});
  const std::string before = Dump();
  const std::string folder = tmp_ / "a-folder";
  std::filesystem::create_directories(folder);
  Status s = Run(ImportFormat::kKgTriples, {folder});
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find(folder), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("folder"), std::string::npos) << s.message();
  EXPECT_EQ(before, Dump());
}

TEST_F(ImportTest, ErrorInSecondFileWritesNothingFromTheFirst) {
  ImportOk(ImportFormat::kLastfmPlays, {Write("plays.dat", kPlays)});
  const std::string before = Dump();
  const std::string good = Write("good.dat", "userID\tartistID\tweight\n90\t91\t1\n");
  const std::string bad = Write("bad.dat", "userID\tartistID\tweight\n92\t93\t1\n92\t93\n");
  Status s = Run(ImportFormat::kLastfmPlays, {good, bad}, "", 1);
  EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
  EXPECT_EQ(s.message().rfind(bad + ":3: ", 0), 0u) << s.message();
  EXPECT_EQ(before, Dump());
  EXPECT_FALSE(Has(NodeKind::kUser, "90"));
}

TEST_F(ImportTest, RequestErrors) {
  Status s = Run(ImportFormat::kKgTriples, {});
  EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
  s = Run(ImportFormat::kLastfmPlays, {Write("plays.dat", kPlays)}, Write("links.txt", "1\t2\n"));
  EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
  EXPECT_NE(s.message().find("--links"), std::string::npos) << s.message();
  EXPECT_EQ(Counts().interactions, 0u);
}

// A link whose entity already names another node is caught by the checking pass, so the
// batches before it are never written, however small the batches.
TEST_F(ImportTest, LinkConflictAfterSeveralBatchesWritesNothing) {
  ImportOk(ImportFormat::kKgTriples, {Write("existing-kg.txt", "500\tr.x\t501\n")});
  const std::string before = Dump();
  std::string links = "";
  for (int i = 0; i < 10; ++i) links += std::to_string(i) + "\t" + std::to_string(100 + i) + "\n";
  links += "77\t500\n";  // entity 500 is already a separate node
  const std::string path = Write("links.txt", links);
  Status s = Run(ImportFormat::kKgLinks, {path}, "", 4);
  EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
  EXPECT_EQ(s.message().rfind(path + ":11: ", 0), 0u) << s.message();
  EXPECT_EQ(before, Dump()) << "rows before the conflicting link were committed";
}

// A KG token of Unicode white space only (U+00A0) is empty, and caught by the checking pass.
TEST_F(ImportTest, KgTokenOfOnlyUnicodeSpacesIsRejectedBeforeWriting) {
  ImportOk(ImportFormat::kLastfmPlays, {Write("plays.dat", kPlays)});
  const std::string before = Dump();
  const std::string path = Write("kg.txt", "a\tr\tb\nc\tr\td\n\xC2\xA0\tr\te\n");
  Status s = Run(ImportFormat::kKgTriples, {path}, "", 1);
  EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
  EXPECT_EQ(s.message().rfind(path + ":3: ", 0), 0u) << s.message();
  EXPECT_EQ(before, Dump()) << "rows before the bad token were committed";
}

// An unterminated quote swallows the following lines; the error names the line it opened on.
TEST_F(ImportTest, UnterminatedQuoteMidFileNamesTheOpeningLine) {
  const std::string path = Write("movies.csv",
                                 "movieId,title,genres\n"
                                 "1,\"Toy Story,Comedy\n"  // line 2: the quote is never closed
                                 "2,Jumanji (1995),Fantasy\n"
                                 "3,Heat (1995),Action\n");
  Status s = Run(ImportFormat::kMovielensMovies, {path});
  EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
  EXPECT_EQ(s.message().rfind(path + ":2: ", 0), 0u) << s.message();
}

// CheckImportText (the fuzzers' entry): the first pass over text in memory, no store, same errors.
TEST(CheckImportTextTest, ChecksTextAsImportChecksAFile) {
  uint64_t rows = 0;
  ASSERT_OK(graph::CheckImportText(ImportFormat::kLastfmPlays, "userID\tartistID\tweight\n2\t51\t3\n\n3\t51\t7",
                                   "plays.dat", &rows));
  EXPECT_EQ(rows, 2u);
  Status s = graph::CheckImportText(ImportFormat::kLastfmPlays, "userID\tartistID\tweight\n2\t51\t3\n4\t5\n",
                                    "plays.dat", &rows);
  EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
  EXPECT_EQ(s.message().rfind("plays.dat:3: expected 3 columns", 0), 0u) << s.message();
  // The name's extension picks CSV or TSV for the generic format, as a file's does.
  ASSERT_OK(graph::CheckImportText(ImportFormat::kInteractions, "user,item\n\"b, c\",a\n", "i.csv", &rows));
  EXPECT_EQ(rows, 1u);
  EXPECT_TRUE(graph::CheckImportText(ImportFormat::kInteractions, "user,item\nb,a\n", "i.tsv", &rows).IsInvalidArgument());
  s = graph::CheckImportText(ImportFormat::kMovielensMovies, "movieId,title,genres\n1,\"Toy Story,Comedy\n", "m.csv", &rows);
  EXPECT_EQ(s.message().rfind("m.csv:2: unterminated quoted CSV field", 0), 0u) << s.message();
}

}  // namespace
}  // namespace mosaic
