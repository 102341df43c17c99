// The model-service layer (jobs/service/) on its own, through neither the CLI nor HTTP: the snapshot
// that rebuild and eval share, the version format's round trip, adding and placing items, one query
// of each kind, and damaged stored data reported as a Status.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <string>

#include "fusion/training_graph.h"
#include "graph/import.h"
#include "jobs/cli/commands.h"
#include "jobs/service/add_items.h"
#include "jobs/service/placement.h"
#include "jobs/service/rebuild.h"
#include "jobs/service/serving_model.h"
#include "jobs/service/snapshot.h"
#include "jobs/service/version.h"
#include "store/store.h"
#include "tests/test_util.h"

namespace mosaic {
namespace {

using jobs::service::LoadedModel;
using jobs::service::Query;
using jobs::service::QueryKind;
using jobs::service::QueryResult;
using jobs::service::ServingModel;
using jobs::service::Snapshot;
using testing::TempDir;
using testing::WriteFile;

// 3 genres x 2 artists x 4 songs; 24 listeners of one genre each, who play songs 0-2 of its artists
// (song 3 of each artist is never played); one song has a visual feature, so masks differ.
class ServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string catalogue, plays = "user\titem\tweight\n";
    for (int g = 0; g < 3; ++g) {
      for (int a = 0; a < 2; ++a) {
        for (int p = 0; p < 4; ++p) {
          nlohmann::json j = {{"id", Song(g, a, p)}, {"kind", "music"}, {"title", "Song " + Song(g, a, p)},
                              {"artist", "Artist " + std::to_string(g) + std::to_string(a)},
                              {"genre", "Genre " + std::to_string(g)}};
          catalogue += j.dump() + "\n";
        }
      }
    }
    for (int u = 0; u < 24; ++u) {
      for (int a = 0; a < 2; ++a) {
        for (int p = 0; p < 3; ++p) {
          if ((u + a + p) % 4 == 0) continue;
          plays += "u" + std::to_string(u) + "\t" + Song(u % 3, a, p) + "\t" + std::to_string(1 + (u * 7 + p) % 9) + "\n";
        }
      }
    }
    dir_ = (dir.path() / "store").string();
    WriteFile((dir.path() / "catalogue.jsonl").string(), catalogue);
    WriteFile((dir.path() / "plays.tsv").string(), plays);
    store::OpenOptions create;
    create.create_if_missing = true;
    std::unique_ptr<store::Store> store;
    ASSERT_OK(store::Store::Open(dir_, create, &store));
    for (auto [format, file] : {std::pair{graph::ImportFormat::kCatalogueJsonl, "catalogue.jsonl"},
                                std::pair{graph::ImportFormat::kInteractions, "plays.tsv"}}) {
      graph::ImportRequest request;
      request.format = format;
      request.files = {(dir.path() / file).string()};
      graph::ImportReport report;
      ASSERT_OK(graph::Import(store.get(), request, {}, &report));
    }
    std::unique_ptr<store::Batch> batch;
    ASSERT_OK(store->BeginBatch(&batch));
    store::NodeId song = 0;
    ASSERT_OK(batch->FindNode(store::NodeKind::kItem, Song(1, 0, 1), &song));
    ASSERT_OK(batch->PutFeature(song, "visual", {"test", 1, std::vector<float>(36, 0.5f), "test"}));
    ASSERT_OK(batch->Commit());
  }

  static std::string Song(int g, int a, int p) {
    return std::to_string(g) + "-" + std::to_string(a) + "-" + std::to_string(p);
  }

  // A rebuild of a few epochs (with an HNSW graph when asked).
  void Rebuild(jobs::service::HnswMode hnsw = jobs::service::HnswMode::kOff) {
    jobs::service::RebuildOptions options;
    options.epochs = 3;
    options.seed = 7;
    options.hnsw = hnsw;
    jobs::service::RebuildReport report;
    ASSERT_OK(jobs::service::Rebuild(dir_, options, &report));
    ASSERT_EQ(report["version"], 1);
  }

  std::unique_ptr<store::Store> Open(bool read_only) {
    store::OpenOptions options;
    options.read_only = read_only;
    std::unique_ptr<store::Store> store;
    EXPECT_TRUE(store::Store::Open(dir_, options, &store).ok());
    return store;
  }

  TempDir dir;
  std::string dir_;
};

// Acceptance: rebuild and eval train on graphs derived by the same function, and they agree.
TEST_F(ServiceTest, RebuildAndEvalDeriveTheSameTrainingGraph) {
  auto store = Open(true);
  auto view = store->NewReadView();
  Snapshot snapshot;
  fusion::TrainingGraph rebuild_graph;
  ASSERT_OK(jobs::service::TakeTrainingGraph(*view, &snapshot, &rebuild_graph));
  fusion::EvalData eval_data;
  ASSERT_OK(jobs::LoadEvalData(*view, &eval_data));
  const fusion::TrainingGraph eval_graph = fusion::BuildTrainingGraph(eval_data, fusion::AllInteractions(eval_data));

  EXPECT_EQ(rebuild_graph.num_users, 24);
  EXPECT_EQ(rebuild_graph.num_items, 24);
  EXPECT_EQ(rebuild_graph.num_entities, 9);  // 6 artists, 3 genres
  EXPECT_EQ(eval_graph.num_users, rebuild_graph.num_users);
  EXPECT_EQ(eval_graph.num_items, rebuild_graph.num_items);
  EXPECT_EQ(eval_graph.num_entities, rebuild_graph.num_entities);
  EXPECT_EQ(eval_graph.num_kg_relations, rebuild_graph.num_kg_relations);
  EXPECT_EQ(eval_graph.interactions, rebuild_graph.interactions);
  ASSERT_EQ(eval_graph.triples.size(), rebuild_graph.triples.size());
  EXPECT_EQ(rebuild_graph.triples.size(), 48u);  // artist and genre of each song
  for (size_t t = 0; t < eval_graph.triples.size(); ++t) {
    EXPECT_EQ(eval_graph.triples[t].head, rebuild_graph.triples[t].head);
    EXPECT_EQ(eval_graph.triples[t].relation, rebuild_graph.triples[t].relation);
    EXPECT_EQ(eval_graph.triples[t].tail, rebuild_graph.triples[t].tail);
  }
  EXPECT_EQ(eval_graph.cold, rebuild_graph.cold);
  ASSERT_EQ(eval_graph.modalities.size(), rebuild_graph.modalities.size());
  ASSERT_EQ(rebuild_graph.modalities.count("visual"), 1u);
  for (const auto& [name, m] : rebuild_graph.modalities) {
    EXPECT_EQ(eval_graph.modalities.at(name).dim, m.dim) << name;
    EXPECT_EQ(eval_graph.modalities.at(name).present, m.present) << name;
    EXPECT_EQ(eval_graph.modalities.at(name).values, m.values) << name;
  }
  int present = 0;
  for (uint8_t p : rebuild_graph.modalities.at("visual").present) present += p;
  EXPECT_EQ(present, 1);
  // The rows map back to the store in the order users | items | entities.
  EXPECT_EQ(snapshot.nodes.size(), size_t(24 + 24 + 9));
  EXPECT_EQ(snapshot.cold_items.size(), 6u);  // song 3 of each artist
}

TEST_F(ServiceTest, VersionRoundTripsThroughTheStore) {
  Rebuild();
  auto store = Open(false);
  LoadedModel first;
  ASSERT_OK(jobs::service::LoadCurrentModel(*store->NewReadView(), &first));
  EXPECT_EQ(first.version, 1u);
  EXPECT_EQ(first.reps.size(0), 24 + 24 + 9);

  jobs::service::ModelVersionData data;
  data.config = first.config;
  data.weights = first.weights;
  data.reps = first.reps.clone();
  data.nodes = first.nodes;
  data.relations = first.relations;
  data.hnsw = "not read unless a server loads it";
  data.manifest = first.manifest;
  ASSERT_OK(jobs::service::WriteModelVersion(store.get(), 2, data));
  LoadedModel second;
  ASSERT_OK(jobs::service::LoadCurrentModel(*store->NewReadView(), &second));
  EXPECT_EQ(second.version, 2u);
  EXPECT_TRUE(second.reps.equal(first.reps));
  EXPECT_EQ(second.nodes, first.nodes);
  EXPECT_EQ(second.relations, first.relations);
  EXPECT_EQ(second.weights, first.weights);
  EXPECT_EQ(second.hnsw, data.hnsw);
  EXPECT_EQ(second.row_of, first.row_of);
  EXPECT_EQ(second.kg_relation, first.kg_relation);
  EXPECT_EQ(second.config.num_relations, first.config.num_relations);
  std::unique_ptr<fusion::Kgat> kgat;
  ASSERT_OK(jobs::service::LoadModelWeights(second, &kgat));
}

TEST_F(ServiceTest, AddedItemIsPlacedAndServed) {
  Rebuild();
  auto store = Open(false);
  jobs::service::NewItem item;
  item.item.id = "new-song";
  item.item.label = "New Song";
  item.item.attributes = {{"title", "New Song"}, {"kind", "music"}};
  item.item.links = {{"artist", "Artist 00"}, {"genre", "Genre 0"}};
  jobs::service::StoredModelPlacer placer;
  std::vector<jobs::service::WrittenItem> written;
  jobs::service::PlaceReport report;
  ASSERT_OK(jobs::service::AddItems(store.get(), {item}, nullptr, &placer, &written, &report));
  ASSERT_EQ(written.size(), 1u);
  EXPECT_TRUE(written[0].created);
  EXPECT_EQ(report.placed, 1u);
  EXPECT_EQ(report.model_version, 1u);
  store::FeatureVector placed;
  ASSERT_OK(store->NewReadView()->GetFeature(written[0].id, jobs::service::kModelFeature, &placed));
  EXPECT_EQ(placed.version, 1u);

  // Adding it again changes nothing and places nothing.
  ASSERT_OK(jobs::service::AddItems(store.get(), {item}, nullptr, &placer, &written, &report));
  EXPECT_FALSE(written[0].created);
  EXPECT_EQ(report.placed, 0u);

  std::unique_ptr<ServingModel> model;
  auto view = store->NewReadView();
  ASSERT_OK(ServingModel::Load(*view, &model));
  EXPECT_TRUE(model->HasColumn(written[0].id));
  EXPECT_EQ(model->num_placed(), 1);
  Query query;
  query.user = "u0";  // a listener of genre 0, so of Artist 00
  query.new_only = true;
  query.k = 7;
  QueryResult result;
  ASSERT_OK(model->Run(*view, query, &result));
  ASSERT_EQ(result.hits.size(), 7u);  // six never-played songs and the new one
  bool found = false;
  for (const auto& hit : result.hits) found = found || (hit.node.key == "new-song" && hit.placed);
  EXPECT_TRUE(found);
}

TEST_F(ServiceTest, AnswersEachKindOfQuery) {
  Rebuild();
  auto store = Open(true);
  auto view = store->NewReadView();
  std::unique_ptr<ServingModel> model;
  ASSERT_OK(ServingModel::Load(*view, &model));
  for (QueryKind kind : jobs::service::kQueryKinds) {
    Query query;
    query.kind = kind;
    query.user = "u3";
    query.item = "Song 0-1-2";  // by title
    query.k = 4;
    query.explain = true;
    QueryResult result;
    SCOPED_TRACE(jobs::service::QueryKindName(kind));
    ASSERT_OK(model->Run(*view, query, &result));
    EXPECT_EQ(result.model_version, 1u);
    ASSERT_EQ(result.hits.size(), 4u) << jobs::service::QueryKindName(kind);
    for (size_t i = 1; i < result.hits.size(); ++i) EXPECT_GE(result.hits[i - 1].score, result.hits[i].score);
    const nlohmann::json json = jobs::service::ToJson(result);
    EXPECT_EQ(json["query"], jobs::service::QueryKindName(kind));
    EXPECT_EQ(json["results"].size(), 4u);
    if (kind == QueryKind::kAudience) {
      EXPECT_EQ(result.subject.key, "0-1-2");
      EXPECT_EQ(result.hits[0].node.key.substr(0, 1), "u");
    } else if (kind == QueryKind::kSimilar) {
      for (const auto& hit : result.hits) EXPECT_NE(hit.node.key, "0-1-2");
    } else {
      EXPECT_EQ(result.subject.key, "u3");
    }
  }
  Query bad;
  bad.user = "u3";
  bad.k = 0;
  QueryResult result;
  EXPECT_TRUE(model->Run(*view, bad, &result).IsInvalidArgument());
  bad.k = 3;
  bad.user = "nobody";
  EXPECT_TRUE(model->Run(*view, bad, &result).IsNotFound());
}

TEST_F(ServiceTest, DamagedStoredHnswGraphIsACorruptionStatus) {
  Rebuild(jobs::service::HnswMode::kOn);
  {
    auto store = Open(true);
    std::unique_ptr<ServingModel> model;
    ASSERT_OK(ServingModel::Load(*store->NewReadView(), &model));
  }
  auto store = Open(false);
  std::string chunk;
  ASSERT_OK(store->NewReadView()->GetModelRecord(1, "hnsw/000000", &chunk));
  ASSERT_GT(chunk.size(), 64u);
  for (size_t i = 0; i < 64; ++i) chunk[i] = char(~chunk[i]);
  std::unique_ptr<store::Batch> batch;
  ASSERT_OK(store->BeginBatch(&batch));
  ASSERT_OK(batch->PutModelRecord(1, "hnsw/000000", chunk));
  ASSERT_OK(batch->Commit());
  std::unique_ptr<ServingModel> model;
  const Status s = ServingModel::Load(*store->NewReadView(), &model);
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  EXPECT_NE(s.message().find("HNSW"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace mosaic
