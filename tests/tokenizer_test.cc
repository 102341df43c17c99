// The USE-lite tokenizer: ids equal to the reference JavaScript runtime's on golden files, and its exact rules
// (null scores, ties, unknowns, unreachable positions) on tiny vocabularies written by the tests.
#include "encoders/tokenizer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "tests/test_util.h"

namespace mosaic::encoders {
namespace {

using Ids = std::vector<int64_t>;
using ::mosaic::testing::TempDir;
using ::mosaic::testing::WriteFile;
using ::mosaic::testing::ModelDir;

// Folder of the committed test data: $MOSAIC_TEST_DATA_DIR, else the build's MOSAIC_TEST_DATA_DIR.
std::string TestDataDir() {
  if (const char* env = std::getenv("MOSAIC_TEST_DATA_DIR"); env && *env) return env;
#ifdef MOSAIC_TEST_DATA_DIR
  return MOSAIC_TEST_DATA_DIR;
#else
  return "";
#endif
}

std::string SharedGoldenPath() {
  return (std::filesystem::path(MOSAIC_SHARED_DIR) / "models" / "use-lite" / "golden_embeddings.json").string();
}

// Tokenizer::Load; throws (failing the test) when it returns an error.
Tokenizer LoadOrThrow(const std::string& path) {
  std::unique_ptr<Tokenizer> t;
  const Status s = Tokenizer::Load(path, &t);
  if (!s.ok()) throw std::runtime_error(s.ToString());
  return std::move(*t);
}

nlohmann::json ReadJson(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return nlohmann::json::parse(in);
}

// ---------------------------------------------------------------------------------------------------------------
// The real vocabulary, against the runtime's ids.

class RealVocabTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string path = (std::filesystem::path(ModelDir()) / "vocab.json").string();
    if (ModelDir().empty() || !std::filesystem::exists(path)) return;
    tokenizer_ = std::make_unique<Tokenizer>(LoadOrThrow(path));
  }
  static void TearDownTestSuite() { tokenizer_.reset(); }
  void SetUp() override {
    if (!tokenizer_) {
      GTEST_SKIP() << "USE-lite vocab.json not found in '" << ModelDir()
                   << "' (run scripts/fetch-model, or set MOSAIC_MODEL_DIR)";
    }
  }
  static const Tokenizer& tok() { return *tokenizer_; }

  // Checks every sentence's ids of a golden file {"sentences": [...], "ids": [[...]], ...}.
  static void ExpectIdsOf(const nlohmann::json& golden) {
    ASSERT_TRUE(golden.contains("sentences") && golden.contains("ids"));
    ASSERT_EQ(golden["sentences"].size(), golden["ids"].size());
    for (size_t i = 0; i < golden["sentences"].size(); ++i) {
      const std::string sentence = golden["sentences"][i].get<std::string>();
      const Ids expected = golden["ids"][i].get<Ids>();
      EXPECT_EQ(tok().Encode(sentence), expected) << "sentence " << i << ": \"" << sentence << "\"";
    }
  }

 private:
  static std::unique_ptr<Tokenizer> tokenizer_;
};
std::unique_ptr<Tokenizer> RealVocabTest::tokenizer_;

TEST_F(RealVocabTest, HasTheWholeVocabulary) { EXPECT_EQ(tok().vocab_size(), 8000u); }

// The 5 sentences of the shared golden file: exact ids, untruncated.
TEST_F(RealVocabTest, MatchesSharedGoldenIds) {
  const std::string path = SharedGoldenPath();
  if (!std::filesystem::exists(path)) GTEST_SKIP() << path << " is absent";
  ExpectIdsOf(ReadJson(path));
}

// The corner cases of tests/data/use_lite_golden_extra.json (scripts/make-text-goldens.sh): NFKC, CJK, emoji,
// space runs, a single character, the empty string, a text over 128 tokens, accents, punctuation, real titles.
// The runtime feeds the tokenizer's ids untruncated (its graph keeps the first 128), so all ids are compared.
TEST_F(RealVocabTest, MatchesRuntimeGoldenIdsOfCornerCases) {
  if (TestDataDir().empty()) GTEST_SKIP() << "MOSAIC_TEST_DATA_DIR is not set";
  const std::string path = (std::filesystem::path(TestDataDir()) / "use_lite_golden_extra.json").string();
  ASSERT_TRUE(std::filesystem::exists(path)) << path << " is missing (it is committed)";
  const nlohmann::json golden = ReadJson(path);
  ExpectIdsOf(golden);
  // The file does cover what it claims to.
  size_t longest = 0;
  bool has_empty = false;
  for (const auto& ids : golden["ids"]) {
    longest = std::max(longest, ids.size());
    has_empty = has_empty || ids.empty();
  }
  EXPECT_GT(longest, 128u);
  EXPECT_TRUE(has_empty);
  ASSERT_EQ(golden["embeddings"].size(), golden["ids"].size());
  for (size_t i = 0; i < golden["ids"].size(); ++i) {
    EXPECT_EQ(golden["embeddings"][i].size(), golden["ids"][i].empty() ? 0u : 512u) << "sentence " << i;
  }
}

TEST_F(RealVocabTest, EmptyTextHasNoIds) { EXPECT_TRUE(tok().Encode("").empty()); }

TEST_F(RealVocabTest, ReservedEntriesAreNeverMatched) {
  for (const int64_t id : tok().Encode("<s> </s> extra_token_id_1 \xEF\xBF\xBD")) {
    EXPECT_TRUE(id == kUnknownId || id >= Tokenizer::kReserved) << id;
  }
}

TEST_F(RealVocabTest, NormalisesWithNfkc) {
  EXPECT_EQ(tok().Encode("\xEF\xAC\x81nal"), tok().Encode("final"));             // U+FB01 ligature
  EXPECT_EQ(tok().Encode("\xEF\xBC\xA1\xEF\xBC\xA2\xEF\xBC\xA3"), tok().Encode("ABC"));  // full-width
  EXPECT_EQ(tok().Encode("a\xC2\xA0" "b"), tok().Encode("a b"));                    // no-break space
  EXPECT_EQ(tok().Encode("Gymnope\xCC\x81" "die"), tok().Encode("Gymnop\xC3\xA9" "die"));  // composes
}

TEST_F(RealVocabTest, InvalidUtf8ReadsAsReplacementCharacter) {
  const std::string fffd = "\xEF\xBF\xBD";
  EXPECT_EQ(tok().Encode("jazz\xFF" "club"), tok().Encode("jazz" + fffd + "club"));
  EXPECT_EQ(tok().Encode("jazz\xF0\x9F\x8E" "club"), tok().Encode("jazz" + fffd + "club"));  // cut-off emoji
  EXPECT_EQ(tok().Encode("\xC0\xAF"), tok().Encode(fffd + fffd));  // overlong: two ill-formed bytes
}

// "”5" is listed three times in vocab.json (230, 238, 4464); the runtime's trie keeps the last.
TEST_F(RealVocabTest, DuplicatePieceTakesItsLastIndex) {
  const Ids ids = tok().Encode("\xE2\x80\x9D" "5");
  EXPECT_EQ(ids, (Ids{30, 4464}));
}

TEST_F(RealVocabTest, IsSafeToShareBetweenThreads) {
  const std::string a = "Gymnop\xC3\xA9" "die No. 1 \xE2\x80\x94 \xC3\x89rik Satie", b = "The Shawshank Redemption (1994)";
  const Ids ea = tok().Encode(a), eb = tok().Encode(b);
  std::vector<std::thread> threads;
  std::vector<int> bad(8, 0);
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 2000; ++i) bad[t] += (tok().Encode(i % 2 ? a : b) != (i % 2 ? ea : eb));
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < 8; ++t) EXPECT_EQ(bad[t], 0) << "thread " << t;
}

// ---------------------------------------------------------------------------------------------------------------
// Tiny vocabularies written by the tests: the runtime's exact rules. Every expectation below was checked against
// the runtime's own Tokenizer class (@energetic-ai/embeddings 0.2.0) on the same vocabulary.

// A vocabulary whose entries 0-5 are the reserved ones, followed by `pieces` (ids 6, 7, ...). Entry 0 is "\uFFFD" as in
// vocab.json: the runtime backtracks over an unknown by the length of entry 0's text, which is then 1.
// An unknown symbol (a position where no piece starts) scores 0, above any piece, so most cases give every
// character a piece.
Tokenizer TinyVocab(const TempDir& dir, const std::string& pieces) {
  const std::string path = dir / "vocab.json";
  WriteFile(path, R"([["\uFFFD",0],["<s>",0],["</s>",0],["r3",0],["r4",0],["r5",0])" +
                      (pieces.empty() ? "" : "," + pieces) + "]");
  return LoadOrThrow(path);
}

TEST(TokenizerRulesTest, NullScoreCountsAsZero) {
  TempDir dir;
  // "▁xab" (6) scores -1.2; "▁x" (7) -1 then "ab" (8) null = 0 scores -1, which wins.
  const Tokenizer t = TinyVocab(dir, R"(["▁xab",-1.2],["▁x",-1],["ab",null],["x",-5],["b",-5])");
  EXPECT_EQ(t.vocab_size(), 11u);
  EXPECT_EQ(t.Encode("xab"), (Ids{7, 8}));
}

TEST(TokenizerRulesTest, TiesGoToTheLaterCandidate) {
  TempDir dir;
  // "▁a b" = "▁a"(6) + "b"(7) and "▁"(8) + "ab"(9) both score -2; the path whose last piece starts later wins.
  const Tokenizer t = TinyVocab(dir, R"(["▁a",-1],["b",-1],["▁",-1],["ab",-1])");
  EXPECT_EQ(t.Encode("ab"), (Ids{6, 7}));
  // The same with the ids swapped: still the split whose last piece starts later, whatever the ids.
  const Tokenizer u = TinyVocab(dir, R"(["▁",-1],["ab",-1],["▁a",-1],["b",-1])");
  EXPECT_EQ(u.Encode("ab"), (Ids{8, 9}));
}

TEST(TokenizerRulesTest, ScoreOfExactlyZeroCountsAsUnset) {
  TempDir dir;
  // "▁ab" (6) scores 0, which the runtime reads as "no path yet": the later "▁a"(7) + "b"(8) = -3 replaces it.
  const Tokenizer t = TinyVocab(dir, R"(["▁ab",0],["▁a",-1],["b",-2],["a",-5])");
  EXPECT_EQ(t.Encode("ab"), (Ids{7, 8}));
}

TEST(TokenizerRulesTest, RunsOfUnknownsMerge) {
  TempDir dir;
  const Tokenizer t = TinyVocab(dir, R"(["▁a",-1],["▁",-1],["a",-1])");
  EXPECT_EQ(t.Encode("a xyz a"), (Ids{6, 7, 0, 6}));
  EXPECT_EQ(t.Encode("a x a y"), (Ids{6, 7, 0, 6, 7, 0}));
  EXPECT_EQ(t.Encode("zzz"), (Ids{7, 0}));
  EXPECT_EQ(t.Encode("\xE6\x9D\xB1\xE4\xBA\xAC"), (Ids{7, 0}));  // 東京
}

TEST(TokenizerRulesTest, UnknownSymbolScoresZeroAndBeatsPieces) {
  TempDir dir;
  // Only "▁a" (6): "x", "a" and the second "▁" have no piece, and their unknowns (score 0) win over "▁a" too.
  const Tokenizer t = TinyVocab(dir, R"(["▁a",-1])");
  EXPECT_EQ(t.Encode("a xyz a"), (Ids{0}));
  EXPECT_EQ(t.Encode("aa"), (Ids{0}));
}

TEST(TokenizerRulesTest, UnreachablePositionIsOneUnknown) {
  TempDir dir;
  // "▁abc": "▁"(6) ends at 1, "ab"(7) at 3, "bc"(8) starts at 2, which no piece reaches; "c" has no piece.
  const Tokenizer t = TinyVocab(dir, R"(["▁",-1],["ab",-1],["bc",-1])");
  EXPECT_EQ(t.Encode("abc"), (Ids{6, 0, 8}));
}

TEST(TokenizerRulesTest, SpacesBecomeMarksWithoutCollapsing) {
  TempDir dir;
  const Tokenizer t = TinyVocab(dir, R"(["▁",-1],["a",-1],["▁a",-1.5])");
  EXPECT_EQ(t.Encode("a  a"), (Ids{8, 6, 8}));
  EXPECT_EQ(t.Encode(" a "), (Ids{6, 8, 6}));
  EXPECT_EQ(t.Encode(" "), (Ids{6, 6}));
}

TEST(TokenizerRulesTest, EmptyTextHasNoIds) {
  TempDir dir;
  const Tokenizer t = TinyVocab(dir, R"(["▁",-1])");
  EXPECT_TRUE(t.Encode("").empty());
}

TEST(TokenizerRulesTest, ReservedEntriesAndEmptyPiecesAreNeverMatched) {
  TempDir dir;
  const std::string path = dir / "vocab.json";
  WriteFile(path, R"([["\uFFFD",0],["▁a",-1],["</s>",0],["r3",0],["r4",0],["r5",0],["",-1],["b",-1]])");
  const Tokenizer t = LoadOrThrow(path);
  EXPECT_EQ(t.Encode("ab"), (Ids{0, 7}));
}

TEST(TokenizerRulesTest, DuplicatePieceTakesItsLastIndexAndScore) {
  TempDir dir;
  // "x" is 6 (-1) and 8 (-9); the second one is kept, so "▁x" (7, -5) now beats "▁" + "x".
  const Tokenizer t = TinyVocab(dir, R"(["x",-1],["▁x",-5],["x",-9],["▁",-1])");
  EXPECT_EQ(t.Encode("x"), (Ids{7}));
  EXPECT_EQ(t.Encode("xx"), (Ids{7, 8}));
}

// ---------------------------------------------------------------------------------------------------------------
// Load failures name the file.

void ExpectLoadFails(const std::string& path, Status::Code code, const std::string& what) {
  std::unique_ptr<Tokenizer> t;
  const Status s = Tokenizer::Load(path, &t);
  EXPECT_EQ(s.code(), code) << what << ": " << s.ToString();
  EXPECT_NE(s.message().find(path), std::string::npos) << what << ": " << s.ToString();
  EXPECT_EQ(t, nullptr) << what;
}

TEST(TokenizerLoadTest, MissingFileIsNotFoundNamingIt) {
  TempDir dir;
  ExpectLoadFails(dir / "no-such-vocab.json", Status::Code::kNotFound, "missing file");
  ExpectLoadFails(dir.path().string(), Status::Code::kCorruption, "a folder");
}

TEST(TokenizerLoadTest, MalformedJsonIsCorruptionNamingTheFile) {
  TempDir dir;
  const std::string path = dir / "vocab.json";
  for (const char* bad : {"", "[[", "[[\"a\", -1],]", "not json"}) {
    WriteFile(path, bad);
    ExpectLoadFails(path, Status::Code::kCorruption, std::string("malformed: ") + bad);
  }
  WriteFile(path, "[[\"\xFF\", -1]]");  // invalid UTF-8 in a piece
  ExpectLoadFails(path, Status::Code::kCorruption, "invalid UTF-8");
}

TEST(TokenizerLoadTest, WrongShapeIsCorruptionNamingTheFile) {
  TempDir dir;
  const std::string path = dir / "vocab.json";
  const std::string reserved = R"(["<unk>",0],["<s>",0],["</s>",0],["r3",0],["r4",0],["r5",0])";
  for (const std::string& bad : {
           std::string(R"({"pieces": []})"),         // not an array
           std::string(R"([["<unk>",0]])"),          // fewer entries than the reserved ones
           "[" + reserved + R"(,["a"]])",             // not a pair
           "[" + reserved + R"(,["a",-1,0]])",        // three items
           "[" + reserved + R"(,["a","-1"]])",        // score a string
           "[" + reserved + R"(,[1,-1]])",            // piece a number
           "[" + reserved + R"(,{"a":-1}])",          // an object
       }) {
    WriteFile(path, bad);
    ExpectLoadFails(path, Status::Code::kCorruption, "wrong shape: " + bad);
  }
}

}  // namespace
}  // namespace mosaic::encoders
