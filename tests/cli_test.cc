// End-to-end tests of the `mosaic` binary: exit codes (0 ok, 1 failure, 2 bad usage), what it
// prints, and acceptance runs on the shared datasets (skipped when they are absent).
#include <filesystem>
#include <fstream>
#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "store/store.h"
#include "tests/test_util.h"

namespace mosaic {
namespace {

namespace fs = std::filesystem;
using testing::CommandResult;
using testing::Describe;
using testing::ReadFile;
using testing::RunJson;
using testing::RunMosaic;
using testing::SharedDatasets;
using testing::TempDir;
using testing::WriteFile;

// Single-quotes `s` for the shell.
std::string Q(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out.push_back(c);
    }
  }
  return out + "'";
}

const char kPlays[] = "userID\tartistID\tweight\n2\t51\t13883\n2\t52\t11690\n3\t51\t7\n";

// ---------------------------------------------------------------------------------------------
// demo

TEST(CliDemo, PrintsStatsAndNeighbourhood) {
  TempDir tmp;
  const std::string dir = tmp / "demo";
  CommandResult r = RunMosaic("demo --dir " + Q(dir));
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_NE(r.out.find("== stats"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("users"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("== ingest media"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(" 0 failed"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("its knowledge-graph neighbourhood, no plays needed"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("KG triples"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("neighbourhood of 'clair-de-lune'"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("1 hop"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("2 hops"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("every edge has its reverse"), std::string::npos) << r.out;
  EXPECT_TRUE(fs::exists(fs::path(dir) / "store" / "CURRENT"));

  // The store it leaves behind is usable by the other commands.
  const std::string store = Q((fs::path(dir) / "store").string());
  CommandResult check = RunMosaic("--store " + store + " check");
  EXPECT_EQ(check.exit_code, 0) << Describe(check);
  nlohmann::json stats = RunJson("--store " + store + " stats --json");
  EXPECT_GE(stats["items"].get<int>(), 42 + 3);  // the catalogue, then at least the generated clips
}

TEST(CliDemo, JsonIsOneObject) {
  TempDir tmp;
  const std::string dir = tmp / "demo-json";
  CommandResult r = RunMosaic("demo --json --dir " + Q(dir));
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  nlohmann::json j = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << "stdout is not one JSON object:\n" << r.out;
  ASSERT_TRUE(j.is_object());
  // The 42 catalogue items, then every media file the demo ingested (its 3 generated clips and
  // the Debian packages' music and sounds that setup installs).
  EXPECT_EQ(j["ingest"]["failed"], 0);
  EXPECT_GE(j["ingest"]["ingested"].get<int>(), 3);
  EXPECT_EQ(j["stats"]["items"].get<int>(), 42 + j["ingest"]["ingested"].get<int>());
  EXPECT_EQ(j["show"]["attributes"]["kind"], "video") << j["show"].dump(2);
  EXPECT_EQ(j["consistent"], true);
  EXPECT_GT(j["stats"]["users"].get<int>(), 0);
  EXPECT_GT(j["stats"]["interactions"].get<int>(), 0);
  EXPECT_GT(j["stats"]["kg_triples"].get<int>(), 0);
  EXPECT_TRUE(j["neighbors"].contains("clair-de-lune")) << j.dump(2);
  EXPECT_EQ(j["imports"].size(), 3u);
}

TEST(CliDemo, NonEmptyFolderFails) {
  TempDir tmp;
  const std::string dir = tmp / "busy";
  fs::create_directories(dir);
  WriteFile((fs::path(dir) / "something.txt").string(), "keep me");
  CommandResult r = RunMosaic("demo --dir " + Q(dir));
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_NE(r.err.find("not empty"), std::string::npos) << r.err;
  EXPECT_TRUE(fs::exists(fs::path(dir) / "something.txt"));
  EXPECT_FALSE(fs::exists(fs::path(dir) / "store"));
}

// ---------------------------------------------------------------------------------------------
// Missing store, failed imports, bad usage

TEST(Cli, StatsOnMissingStoreFailsAndCreatesNothing) {
  TempDir tmp;
  const std::string store = tmp / "nowhere";
  for (const char* cmd : {" stats", " stats --json", " check", " neighbors 1"}) {
    CommandResult r = RunMosaic("--store " + Q(store) + cmd);
    EXPECT_EQ(r.exit_code, 1) << cmd << "\n" << Describe(r);
    EXPECT_NE(r.err.find("no Mosaic store"), std::string::npos) << cmd << ": " << r.err;
    EXPECT_FALSE(fs::exists(store)) << cmd << " created the store folder";
  }
}

// Text embeddings follow the text: computed with the item, redone only when its text changes.
TEST(CliText, ImportEncodesChangedTextsOnly) {
  if (!std::filesystem::exists(std::filesystem::path(MOSAIC_MODEL_DIR) / "model.json")) {
    GTEST_SKIP() << "USE-lite model absent from " << MOSAIC_MODEL_DIR << " (scripts/fetch-model)";
  }
  TempDir tmp;
  const std::string store = Q(tmp / "store");
  const std::string catalogue = tmp / "catalogue.jsonl";
  WriteFile(catalogue,
            "{\"id\": \"a\", \"title\": \"Clair de lune\", \"tags\": [\"piano\"]}\n"
            "{\"id\": \"b\", \"title\": \"Big Buck Bunny\", \"genre\": \"Animation\"}\n");
  nlohmann::json j = RunJson("--store " + store + " --json import --format jsonl " + Q(catalogue));
  EXPECT_EQ(j["text_features"], 2);
  j = RunJson("--store " + store + " --json import --format jsonl " + Q(catalogue));
  EXPECT_EQ(j["text_features"], 0) << "an unchanged text was encoded again";
  WriteFile(catalogue,
            "{\"id\": \"a\", \"title\": \"Clair de lune\", \"tags\": [\"piano\"]}\n"
            "{\"id\": \"b\", \"title\": \"Big Buck Bunny\", \"genre\": \"Animation\", \"tags\": [\"rabbit\"]}\n");
  j = RunJson("--store " + store + " --json import --format jsonl " + Q(catalogue));
  EXPECT_EQ(j["text_features"], 1);
  nlohmann::json shown = RunJson("--store " + store + " show b --json");
  EXPECT_EQ(shown["features"]["text"]["text"], "Big Buck Bunny. rabbit. Animation");
  EXPECT_EQ(shown["features"]["text"]["dims"], 512);
  nlohmann::json similar = RunJson("--store " + store + " --json similar-text \"moonlight piano\" -k 1");
  EXPECT_EQ(similar["results"][0]["item"], "a");

  // Without the model, commands that need it say how to get it.
  CommandResult r = RunMosaic("--store " + Q(tmp / "other") + " --model " + Q(tmp / "nomodel") +
                              " import --format jsonl " + Q(catalogue));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("scripts/fetch-model"), std::string::npos) << r.err;
  r = RunMosaic("--store " + Q(tmp / "other") + " --model " + Q(tmp / "nomodel") + " --no-text import --format jsonl " +
                Q(catalogue));
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

// A small MovieLens-shaped dataset: 40 users, 30 movies in 3 genres, users keen on one genre.
std::string WriteTinyMovieLens(const TempDir& tmp) {
  const std::string dir = tmp / "ml";
  std::filesystem::create_directories(dir);
  std::string movies = "movieId,title,genres\n", ratings = "userId,movieId,rating,timestamp\n";
  const char* genres[] = {"Comedy", "Horror", "Sci-Fi"};
  for (int m = 1; m <= 30; ++m) movies += std::to_string(m) + ",Movie " + std::to_string(m) + " (2000)," + genres[m % 3] + "\n";
  for (int u = 1; u <= 40; ++u) {
    for (int m = 1; m <= 30; ++m) {
      if (m % 3 == u % 3 || (m + u) % 7 == 0) ratings += std::to_string(u) + "," + std::to_string(m) + ",4.0," + std::to_string(1000 + m) + "\n";
    }
  }
  WriteFile(dir + "/movies.csv", movies);
  WriteFile(dir + "/ratings.csv", ratings);
  return dir;
}

TEST(CliEval, ProtocolsPrintEveryBaselineAndDumpRepeatableSplits) {
  TempDir tmp;
  const std::string data = WriteTinyMovieLens(tmp);
  for (const std::string protocol : {"warm", "cold", "ctr", "fewshot", "temporal"}) {
    SCOPED_TRACE(protocol);
    nlohmann::json j = RunJson("--json --no-text eval --data " + Q(data) + " --dataset movielens --protocol " + protocol +
                               " --seed 3 --dump-split " + Q(tmp / ("a-" + protocol)));
    ASSERT_TRUE(j.contains("rows")) << j.dump();
    EXPECT_EQ(j["run"]["users"], 40);
    EXPECT_EQ(j["run"]["items"], 30);
    EXPECT_GE(j["rows"].size(), 2u);
    for (const auto& row : j["rows"]) {
      for (const auto& [name, value] : row["metrics"].items()) {
        EXPECT_GE(value.get<double>(), 0.0) << row["model"] << " " << name;
      }
      // The model's rows: Recall@20 over the best peer's, with a paired bootstrap interval.
      if (row["model"] == "Mosaic" && protocol != "ctr") {
        ASSERT_TRUE(row.contains("vs_best_peer")) << row.dump();
        for (const auto& v : row["vs_best_peer"]) {
          EXPECT_EQ(v["metric"].get<std::string>().rfind("Recall@20", 0), 0u) << v.dump();
          if (v["ratio"].is_number() && v["low"].is_number()) {
            EXPECT_LE(v["low"].get<double>(), v["high"].get<double>()) << v.dump();
          }
        }
      }
    }
    if (protocol == "fewshot") {
      EXPECT_TRUE(j["rows"][0]["metrics"].contains("Recall@20 1-shot")) << j["rows"][0].dump();
      EXPECT_TRUE(j["rows"][0]["metrics"].contains("Recall@20 5-shot")) << j["rows"][0].dump();
    }
    if (protocol == "temporal") {
      EXPECT_TRUE(j["rows"][0]["metrics"].contains("Recall@20 new users")) << j["rows"][0].dump();
      EXPECT_TRUE(j["rows"][0]["metrics"].contains("Recall@20 new items")) << j["rows"][0].dump();
    }
    RunJson("--json --no-text eval --data " + Q(data) + " --dataset movielens --protocol " + protocol +
            " --seed 3 --dump-split " + Q(tmp / ("b-" + protocol)));
    for (const char* file : {"train.tsv", "valid.tsv", "test.tsv", "items.tsv"}) {
      EXPECT_EQ(ReadFile(tmp / ("a-" + protocol + "/" + file)), ReadFile(tmp / ("b-" + protocol + "/" + file))) << file;
    }
  }
  CommandResult r = RunMosaic("eval --data " + Q(data) + " --dataset movielens --protocol sideways");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("warm, cold, fewshot, temporal or ctr"), std::string::npos) << r.err;
  r = RunMosaic("eval --data " + Q(tmp / "nope") + " --dataset movielens --protocol warm");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("nope"), std::string::npos) << r.err;
}

// --kg-control: the split and the KG-linked subset stay those of the intact data; the KG rows fit
// on the controlled KG, so KGOverlap ranks differently with its KG removed; the cold rows carry the
// linked subset's figures beside the others.
// --model-kind picks the model versions' rows, --only-model leaves the peers out.
TEST(CliEval, ModelKindAndOnlyModelChooseTheRows) {
  TempDir tmp;
  const std::string data = WriteTinyMovieLens(tmp);
  auto rows = [&](const std::string& args) {
    nlohmann::json j = RunJson("--json --no-text eval --data " + Q(data) + " --dataset movielens --seed 3 " + args);
    std::vector<std::string> names;
    for (const auto& row : j["rows"]) names.push_back(row["model"]);
    return names;
  };
  EXPECT_EQ(rows("--protocol cold --model-kind v2 --only-model"),
            (std::vector<std::string>{"Mosaic v2", "Mosaic v2 (served)", "Mosaic v2 (no KG)", "Mosaic v2 (KG shuffled)"}));
  // Warm: the content kernel beside EASE^R, their blend, and what `rebuild --model-kind v2` serves,
  // after the peers; no LibTorch row.
  const auto warm = rows("--protocol warm --model-kind v2 --no-model");
  ASSERT_GE(warm.size(), 4u);
  EXPECT_EQ(std::vector<std::string>(warm.end() - 3, warm.end()),
            (std::vector<std::string>{"Mosaic v2 content", "Mosaic v2", "Mosaic v2 (served)"}));
  EXPECT_NE(std::find(warm.begin(), warm.end(), "EASE"), warm.end());
  EXPECT_EQ(std::find(warm.begin(), warm.end(), "Mosaic"), warm.end());
  // Warm with the peers left out: the served row alone (the content is no form of the model there).
  EXPECT_EQ(rows("--protocol warm --model-kind v2 --only-model"), (std::vector<std::string>{"Mosaic v2 (served)"}));
  // served: that row alone, even on cold, where v2 adds its KG controls.
  EXPECT_EQ(rows("--protocol cold --model-kind served --only-model"), (std::vector<std::string>{"Mosaic v2 (served)"}));
  CommandResult r = RunMosaic("eval --data " + Q(data) + " --dataset movielens --protocol warm --model-kind v3");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("--model-kind"), std::string::npos) << r.err;
  r = RunMosaic("eval --data " + Q(data) + " --dataset movielens --protocol warm --model-kind served --ablation");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("--ablation"), std::string::npos) << r.err;
}

TEST(CliEval, KgControlKeepsTheSplitAndChangesTheKgRows) {
  TempDir tmp;
  const std::string data = WriteTinyMovieLens(tmp);
  std::map<std::string, nlohmann::json> by_control;
  for (const std::string control : {"intact", "removed", "shuffled"}) {
    SCOPED_TRACE(control);
    nlohmann::json j = RunJson("--json --no-text eval --data " + Q(data) + " --dataset movielens --protocol cold" +
                               " --no-model --seed 3 --kg-control " + control + " --dump-split " + Q(tmp / control));
    ASSERT_TRUE(j.contains("rows")) << j.dump();
    EXPECT_EQ(j["run"]["kg_control"], control);
    EXPECT_EQ(j["run"]["split"]["cold_items_linked"], j["run"]["split"]["cold_items"]);  // every movie has a genre
    for (const auto& row : j["rows"]) {
      for (const char* metric : {"Recall@20", "NDCG@20", "Recall@20 linked", "NDCG@20 linked"}) {
        ASSERT_TRUE(row["metrics"].contains(metric)) << row["model"] << " " << metric;
      }
    }
    by_control[control] = j;
    EXPECT_EQ(ReadFile(tmp / (control + "/test.tsv")), ReadFile(tmp / "intact/test.tsv"));
  }
  auto ndcg = [&](const std::string& control, const std::string& model) {
    for (const auto& row : by_control[control]["rows"]) {
      if (row["model"] == model) return row["metrics"]["NDCG@20"].get<double>();
    }
    ADD_FAILURE() << model << " missing under " << control;
    return -1.0;
  };
  EXPECT_NE(ndcg("intact", "KGOverlap"), ndcg("removed", "KGOverlap"));
  CommandResult r = RunMosaic("eval --data " + Q(data) + " --dataset movielens --protocol cold --kg-control sideways");
  EXPECT_NE(r.exit_code, 0);
}

TEST(Cli, ImportPrintsRowsAndJson) {
  TempDir tmp;
  const std::string store = tmp / "store";
  const std::string plays = tmp / "plays.dat";
  WriteFile(plays, kPlays);
  CommandResult r = RunMosaic("--store " + Q(store) + " import --format lastfm-plays " + Q(plays));
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_NE(r.out.find("imported 3 rows"), std::string::npos) << r.out;
  nlohmann::json j = RunJson("--store " + Q(store) + " --json import --format lastfm-plays " + Q(plays));
  EXPECT_EQ(j["rows"], 3);
  nlohmann::json stats = RunJson("--store " + Q(store) + " stats --json");
  EXPECT_EQ(stats["users"], 2);
  EXPECT_EQ(stats["items"], 2);
  EXPECT_EQ(stats["interactions"], 3);
}

TEST(Cli, MalformedImportIntoNewStoreLeavesNoStore) {
  TempDir tmp;
  const std::string store = tmp / "new-store";
  const std::string bad = tmp / "bad plays.dat";  // a space in the name: quoting matters
  WriteFile(bad, "userID\tartistID\tweight\n2\t51\t3\n2\tfifty\t1\n");
  CommandResult r = RunMosaic("--store " + Q(store) + " import --format lastfm-plays " + Q(bad));
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_NE(r.err.find(bad + ":3:"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("artistID 'fifty'"), std::string::npos) << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
  EXPECT_FALSE(fs::exists(store)) << "a failed import left a store folder behind";
}

TEST(Cli, MalformedImportIntoExistingStoreChangesNothing) {
  TempDir tmp;
  const std::string store = tmp / "store";
  const std::string plays = tmp / "plays.dat";
  WriteFile(plays, kPlays);
  CommandResult r = RunMosaic("--store " + Q(store) + " import --format lastfm-plays " + Q(plays));
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  const CommandResult before = RunMosaic("--store " + Q(store) + " stats --json");
  ASSERT_EQ(before.exit_code, 0) << Describe(before);

  const std::string bad = tmp / "more.dat";
  WriteFile(bad, "userID\tartistID\tweight\n8\t80\t1\n9\t90\t1\n9\t91\n");
  r = RunMosaic("--store " + Q(store) + " import --format lastfm-plays " + Q(bad));
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_NE(r.err.find(bad + ":4:"), std::string::npos) << r.err;

  const std::string bad_kg = tmp / "kg.txt";
  WriteFile(bad_kg, "a\tr\tb\nc\tinteracted\td\n");
  r = RunMosaic("--store " + Q(store) + " import --format kg " + Q(bad_kg));
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_NE(r.err.find(bad_kg + ":2:"), std::string::npos) << r.err;

  const CommandResult after = RunMosaic("--store " + Q(store) + " stats --json");
  EXPECT_EQ(after.exit_code, 0) << Describe(after);
  EXPECT_EQ(before.out, after.out);
  EXPECT_TRUE(fs::exists(fs::path(store) / "CURRENT"));
  EXPECT_EQ(RunMosaic("--store " + Q(store) + " check").exit_code, 0);
}

TEST(Cli, ImportOfMissingFileFails) {
  TempDir tmp;
  const std::string store = tmp / "store";
  const std::string missing = tmp / "missing.dat";
  CommandResult r = RunMosaic("--store " + Q(store) + " import --format lastfm-plays " + Q(missing));
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_NE(r.err.find(missing), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(store));
}

TEST(Cli, BadUsageExitsTwo) {
  TempDir tmp;
  const std::string store = tmp / "store";
  const std::string plays = tmp / "plays.dat";
  WriteFile(plays, kPlays);
  const std::string prefix = "--store " + Q(store) + " ";
  for (const std::string& args : {std::string("frobnicate"), std::string(""),
                                  "import " + Q(plays),              // no --format
                                  std::string("import --format kg"),  // no file
                                  std::string("neighbors"),           // no item
                                  std::string("neighbors 1 --hops many"), std::string("stats --bogus")}) {
    CommandResult r = RunMosaic(prefix + args);
    EXPECT_EQ(r.exit_code, 2) << args << "\n" << Describe(r);
    EXPECT_FALSE(r.err.empty()) << args;
  }
  EXPECT_FALSE(fs::exists(store));
}

TEST(Cli, UnknownFormatNameFails) {
  TempDir tmp;
  const std::string store = tmp / "store";
  const std::string plays = tmp / "plays.dat";
  WriteFile(plays, kPlays);
  CommandResult r = RunMosaic("--store " + Q(store) + " import --format netflix " + Q(plays));
  EXPECT_NE(r.exit_code, 0) << Describe(r);
  EXPECT_NE(r.err.find("netflix"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("lastfm-plays"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(store));
}

// A demo store shared by the neighbour tests.
class CliNeighbors : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    tmp_ = new TempDir();
    CommandResult r = RunMosaic("demo --json --dir " + Q(*tmp_ / "demo"));
    ASSERT_EQ(r.exit_code, 0) << Describe(r);
  }
  static void TearDownTestSuite() {
    delete tmp_;
    tmp_ = nullptr;
  }
  static std::string Store() { return Q((tmp_->path() / "demo" / "store").string()); }
  static TempDir* tmp_;
};
TempDir* CliNeighbors::tmp_ = nullptr;

TEST_F(CliNeighbors, KnownItem) {
  nlohmann::json j = RunJson("--store " + Store() + " neighbors clair-de-lune --hops 2 --json");
  EXPECT_EQ(j["item"]["key"], "clair-de-lune");
  EXPECT_EQ(j["hops"], 2);
  EXPECT_FALSE(j["neighbors"].empty());
  for (const auto& n : j["neighbors"]) {
    EXPECT_NE(n["relation"], "interacted") << n.dump();
    EXPECT_GE(n["hops"].get<int>(), 1);
    EXPECT_LE(n["hops"].get<int>(), 2);
  }
  // By exact title, case-insensitive.
  CommandResult r = RunMosaic("--store " + Store() + " neighbors " + Q("CLAIR DE LUNE") + " --hops 1");
  EXPECT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_NE(r.out.find("Clair de lune"), std::string::npos) << r.out;
}

TEST_F(CliNeighbors, UnknownItemFails) {
  CommandResult r = RunMosaic("--store " + Store() + " neighbors no-such-item-xyz");
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_NE(r.err.find("no-such-item-xyz"), std::string::npos) << r.err;
}

TEST_F(CliNeighbors, HopsOutOfRangeFails) {
  for (const char* hops : {"9", "0", "-1"}) {
    CommandResult r = RunMosaic("--store " + Store() + " neighbors clair-de-lune --hops " + hops);
    EXPECT_EQ(r.exit_code, 1) << hops << "\n" << Describe(r);
    EXPECT_NE(r.err.find("--hops"), std::string::npos) << r.err;
  }
}

TEST_F(CliNeighbors, UnknownRelationFails) {
  CommandResult r = RunMosaic("--store " + Store() + " neighbors clair-de-lune --relation no_such_relation");
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_NE(r.err.find("no_such_relation"), std::string::npos) << r.err;
}

// ---------------------------------------------------------------------------------------------
// A damaged store, hostile names (issue 13)

// Flushes every column family of the closed store at `dir` to table files.
void FlushAll(const std::string& dir) {
  std::vector<std::string> names;
  ASSERT_TRUE(rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), dir, &names).ok());
  std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
  for (auto& n : names) cfs.emplace_back(n, rocksdb::ColumnFamilyOptions());
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* db = nullptr;
  ASSERT_TRUE(rocksdb::DB::Open(rocksdb::DBOptions(), dir, cfs, &handles, &db).ok());
  for (auto* h : handles) {
    EXPECT_TRUE(db->Flush(rocksdb::FlushOptions(), h).ok());
    db->DestroyColumnFamilyHandle(h);
  }
  delete db;
}

// Issue 13, 6: `check` said "consistent" on a store whose model column family had a corrupted block.
TEST(Cli, CheckFindsACorruptedBlockOfTheModel) {
  TempDir tmp;
  const std::string dir = tmp / "s";
  {
    std::unique_ptr<store::Store> s;
    store::OpenOptions o;
    o.create_if_missing = true;
    ASSERT_OK(store::Store::Open(dir, o, &s));
    std::unique_ptr<store::Batch> b;
    ASSERT_OK(s->BeginBatch(&b));
    store::NodeId item = 0;
    ASSERT_OK(b->UpsertNode(store::NodeKind::kItem, "i1", "One", &item));
    // Chunks of incompressible weights: the middle of the table file falls in a block of its own,
    // which the invariants never read (they read the manifest).
    uint32_t x = 7;
    for (int chunk = 0; chunk < 8; ++chunk) {
      std::string weights(64 * 1024, '\0');
      for (char& c : weights) c = char((x = x * 1664525u + 1013904223u) >> 24);
      ASSERT_OK(b->PutModelRecord(1, "weights/" + std::to_string(chunk), weights));
    }
    ASSERT_OK(b->PutModelRecord(1, "manifest", "{}"));
    ASSERT_OK(b->SetCurrentModel(1));
    ASSERT_OK(b->Commit());
  }
  FlushAll(dir);
  EXPECT_EQ(RunMosaic("--store " + Q(dir) + " check").exit_code, 0);

  // 64 bytes flipped in the middle of the largest table file (the model's).
  fs::path largest;
  uintmax_t size = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() == ".sst" && e.file_size() > size) size = e.file_size(), largest = e.path();
  }
  ASSERT_FALSE(largest.empty());
  {
    std::fstream f(largest, std::ios::in | std::ios::out | std::ios::binary);
    char bytes[64];
    f.seekg(std::streamoff(size / 2));
    f.read(bytes, sizeof bytes);
    for (char& c : bytes) c = char(~c);
    f.seekp(std::streamoff(size / 2));
    f.write(bytes, sizeof bytes);
  }
  const CommandResult r = RunMosaic("--store " + Q(dir) + " check");
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_EQ(r.out.find("consistent"), std::string::npos) << Describe(r);
  EXPECT_NE(r.err.find("Corruption"), std::string::npos) << Describe(r);
  EXPECT_NE(r.err.find(largest.filename().string()), std::string::npos) << Describe(r);
}

// Issue 13, 12: names with control characters (from a store written before they were refused) are
// printed escaped, never raw.
TEST(Cli, ControlCharactersInNamesArePrintedEscaped) {
  TempDir tmp;
  const std::string dir = tmp / "s";
  {
    std::unique_ptr<store::Store> s;
    store::OpenOptions o;
    o.create_if_missing = true;
    ASSERT_OK(store::Store::Open(dir, o, &s));
    std::unique_ptr<store::Batch> b;
    ASSERT_OK(s->BeginBatch(&b));
    store::NodeId item = 0;
    ASSERT_OK(b->UpsertNode(store::NodeKind::kItem, "evil\x1b[2J", "Title\x1b]0;pwned\x07", &item));
    ASSERT_OK(b->SetNodeAttributes(item, nlohmann::json({{"title", "Title\x1b]0;pwned\x07"}, {"description", "a\x1b[31mb"}}).dump()));
    ASSERT_OK(b->Commit());
  }
  const CommandResult show = RunMosaic("--store " + Q(dir) + " show " + Q("evil\x1b[2J"));
  EXPECT_EQ(show.exit_code, 0) << Describe(show);
  EXPECT_EQ(show.out.find('\x1b'), std::string::npos) << Describe(show);
  EXPECT_EQ(show.out.find('\x07'), std::string::npos) << Describe(show);
  EXPECT_NE(show.out.find("Title\\x1b]0;pwned\\x07"), std::string::npos) << Describe(show);
  EXPECT_NE(show.out.find("evil\\x1b[2J"), std::string::npos) << Describe(show);
  const CommandResult missing = RunMosaic("--store " + Q(dir) + " show " + Q("nothing\x1b[2J"));
  EXPECT_EQ(missing.exit_code, 1) << Describe(missing);
  EXPECT_EQ(missing.err.find('\x1b'), std::string::npos) << Describe(missing);
}

// ---------------------------------------------------------------------------------------------
// Acceptance on the shared datasets

// True when some hop-2 neighbour is an item with a label.
bool HasLabelledItemAtHop2(const nlohmann::json& neighbors) {
  for (const auto& n : neighbors["neighbors"]) {
    if (n["hops"] == 2 && n["kind"] == "item" && n.contains("label") && !n["label"].get<std::string>().empty()) {
      return true;
    }
  }
  return false;
}

TEST(CliAcceptance, LastfmKgcn) {
  const std::string data = SharedDatasets();
  if (data.empty()) GTEST_SKIP() << "shared datasets absent (../shared/datasets): skipping the Last.FM acceptance run";
  const fs::path d(data);
  TempDir tmp;
  const std::string store = "--store " + Q(tmp / "lastfm") + " ";

  CommandResult r = RunMosaic(store + "import --format hetrec-artists " +
                              Q((d / "hetrec2011-lastfm-2k" / "artists.dat").string()));
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  r = RunMosaic(store + "import --format kg " + Q((d / "lastfm-kgcn" / "kg.txt").string()) + " --links " +
                Q((d / "lastfm-kgcn" / "item_index2entity_id.txt").string()));
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  r = RunMosaic(store + "import --format lastfm-plays " + Q((d / "lastfm-kgcn" / "user_artists.dat").string()));
  ASSERT_EQ(r.exit_code, 0) << Describe(r);

  nlohmann::json s = RunJson(store + "stats --json");
  EXPECT_EQ(s["users"], 1892);
  EXPECT_EQ(s["items"], 17632);
  EXPECT_EQ(s["items_with_interactions"], 17632);
  EXPECT_EQ(s["items_linked_to_kg"], 3846);
  EXPECT_EQ(s["interactions"], 92834);
  EXPECT_EQ(s["kg_triples"], 15518);
  EXPECT_EQ(s["kg_relations"], 60);

  r = RunMosaic(store + "check");
  EXPECT_EQ(r.exit_code, 0) << Describe(r);

  nlohmann::json n = RunJson(store + "neighbors 2 --hops 2 --json");
  EXPECT_EQ(n["item"]["key"], "2");
  EXPECT_EQ(n["item"]["label"], "Diary of Dreams");
  EXPECT_TRUE(HasLabelledItemAtHop2(n)) << n.dump(2);
}

TEST(CliAcceptance, MovielensLatestSmall) {
  const std::string data = SharedDatasets();
  if (data.empty()) GTEST_SKIP() << "shared datasets absent (../shared/datasets): skipping the MovieLens acceptance run";
  const fs::path d = fs::path(data) / "ml-latest-small";
  TempDir tmp;
  const std::string store = "--store " + Q(tmp / "ml") + " ";

  for (const auto& [format, file] : {std::pair<const char*, const char*>{"movielens-movies", "movies.csv"},
                                     {"movielens-ratings", "ratings.csv"},
                                     {"movielens-tags", "tags.csv"}}) {
    CommandResult r = RunMosaic(store + "import --format " + format + " " + Q((d / file).string()));
    ASSERT_EQ(r.exit_code, 0) << format << "\n" << Describe(r);
  }
  nlohmann::json s = RunJson(store + "stats --json");
  EXPECT_EQ(s["users"], 610);
  EXPECT_EQ(s["items"], 9742);
  EXPECT_EQ(s["interactions"], 100836);
  EXPECT_EQ(s["tag_applications"], 3683);
  EXPECT_GT(s["relations"]["genre"].get<int>(), 0);
  EXPECT_GT(s["relations"]["tag"].get<int>(), 0);

  CommandResult r = RunMosaic(store + "check");
  EXPECT_EQ(r.exit_code, 0) << Describe(r);

  nlohmann::json n = RunJson(store + "neighbors 1 --hops 2 --json");
  EXPECT_EQ(n["item"]["label"], "Toy Story (1995)");
  EXPECT_TRUE(HasLabelledItemAtHop2(n)) << n.dump(2);
}

}  // namespace
}  // namespace mosaic
