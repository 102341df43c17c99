// The USE-lite text encoder: the LibTorch module against the reference runtime's golden vectors,
// the TextEncoder facade (tokenize, batch, encode) and the text Mosaic composes for an item.
#include "encoders/item_text.h"
#include "encoders/text_encoder.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "encoders/model_error.h"
#include "encoders/tfjs_weights.h"
#include "encoders/use_lite.h"
#include "modalities/registry.h"
#include "tests/test_util.h"

namespace mosaic::encoders {
namespace {

namespace fs = std::filesystem;
using mosaic::testing::TempDir;
using mosaic::testing::ModelDir;

bool ModelPresent() {
  const fs::path dir = ModelDir();
  return !dir.empty() && fs::exists(dir / "model.json") && fs::exists(dir / "vocab.json");
}

#define SKIP_WITHOUT_MODEL()                                                                 \
  if (!ModelPresent())                                                                       \
  GTEST_SKIP() << "USE-lite model absent from '" << ModelDir()                               \
               << "' (run scripts/fetch-model or set MOSAIC_MODEL_DIR)"

struct Golden {
  std::vector<std::string> sentences;
  std::vector<std::vector<int64_t>> ids;
  std::vector<std::vector<float>> vectors;
};

// shared/models/use-lite/golden_embeddings.json (from the reference JavaScript runtime), or
// nothing when the shared folder is absent.
const Golden* LoadGolden() {
  static const Golden* golden = []() -> const Golden* {
    const fs::path path = fs::path(MOSAIC_SHARED_DIR) / "models" / "use-lite" / "golden_embeddings.json";
    std::ifstream in(path);
    if (!in) return nullptr;
    const nlohmann::json j = nlohmann::json::parse(in);
    auto* g = new Golden;
    g->sentences = j.at("sentences").get<std::vector<std::string>>();
    g->ids = j.at("ids").get<std::vector<std::vector<int64_t>>>();
    g->vectors = j.at("embeddings").get<std::vector<std::vector<float>>>();
    return g;
  }();
  return golden;
}

#define SKIP_WITHOUT_GOLDEN()                                                                    \
  if (!LoadGolden())                                                                             \
  GTEST_SKIP() << "golden_embeddings.json absent from " << MOSAIC_SHARED_DIR << "/models/use-lite"

double MaxAbsDiff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double m = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) m = std::max(m, std::abs(double(a[i]) - double(b[i])));
  return m;
}

std::vector<float> Row(const torch::Tensor& t, int64_t r) {
  torch::Tensor row = t[r].contiguous();
  return std::vector<float>(row.data_ptr<float>(), row.data_ptr<float>() + row.numel());
}

constexpr double kTolerance = 1e-5;

// One module for the suite (loading takes ~0.1 s).
class UseLiteTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!ModelPresent()) return;
    weights_ = new std::map<std::string, at::Tensor>();
    model_ = new UseLite();
    Status s = LoadTfjsWeights(ModelDir(), weights_);
    if (s.ok()) s = (*model_)->LoadWeights(*weights_);
    if (!s.ok()) throw std::runtime_error(s.ToString());  // fails the suite
    (*model_)->eval();
  }
  static void TearDownTestSuite() {
    delete model_;
    delete weights_;
    model_ = nullptr;
    weights_ = nullptr;
  }
  static std::map<std::string, at::Tensor>* weights_;
  static UseLite* model_;
};
std::map<std::string, at::Tensor>* UseLiteTest::weights_ = nullptr;
UseLite* UseLiteTest::model_ = nullptr;

TEST_F(UseLiteTest, GoldenIdsOneByOne) {
  SKIP_WITHOUT_MODEL();
  SKIP_WITHOUT_GOLDEN();
  const Golden& g = *LoadGolden();
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < g.sentences.size(); ++i) {
    const auto n = int64_t(g.ids[i].size());
    torch::Tensor ids = torch::tensor(g.ids[i], torch::kLong).view({1, n});
    torch::Tensor out = (*model_)->forward(ids, torch::ones({1, n}, torch::kBool));
    ASSERT_EQ(out.sizes(), at::IntArrayRef({1, 512}));
    EXPECT_LT(MaxAbsDiff(Row(out, 0), g.vectors[i]), kTolerance) << g.sentences[i];
  }
}

TEST_F(UseLiteTest, GoldenIdsBatchedWithPadding) {
  SKIP_WITHOUT_MODEL();
  SKIP_WITHOUT_GOLDEN();
  const Golden& g = *LoadGolden();
  const auto rows = int64_t(g.sentences.size());
  const int64_t cols = 20;  // longer than any sentence: every row has padding
  torch::Tensor ids = torch::full({rows, cols}, 77, torch::kLong);  // padding with a real token: masking must hide it
  torch::Tensor mask = torch::zeros({rows, cols}, torch::kBool);
  for (int64_t r = 0; r < rows; ++r)
    for (size_t c = 0; c < g.ids[size_t(r)].size(); ++c) {
      ids[r][int64_t(c)] = g.ids[size_t(r)][c];
      mask[r][int64_t(c)] = true;
    }
  torch::NoGradGuard no_grad;
  torch::Tensor out = (*model_)->forward(ids, mask);
  ASSERT_EQ(out.sizes(), at::IntArrayRef({rows, 512}));
  for (int64_t r = 0; r < rows; ++r)
    EXPECT_LT(MaxAbsDiff(Row(out, r), g.vectors[size_t(r)]), kTolerance) << g.sentences[size_t(r)];
}

TEST_F(UseLiteTest, NoTokensGivesNormalisedTanhOfHeadBias) {
  SKIP_WITHOUT_MODEL();
  torch::NoGradGuard no_grad;
  torch::Tensor out = (*model_)->forward(torch::zeros({2, 3}, torch::kLong), torch::zeros({2, 3}, torch::kBool));
  torch::Tensor y = torch::tanh((*model_)->head->bias);
  torch::Tensor expected = y / y.norm();
  EXPECT_TRUE(torch::allclose(out[0], expected, 0, 1e-6));
  EXPECT_TRUE(torch::allclose(out[1], expected, 0, 1e-6));
  EXPECT_NEAR(out[0].norm().item<double>(), 1.0, 1e-5);
}

TEST_F(UseLiteTest, ParametersAreTrainable) {
  SKIP_WITHOUT_MODEL();
  // Every weight is a parameter (the timescales a buffer): 6,975,877 float values in the export
  // minus the 128 timescales and the 5 graph constants.
  int64_t count = 0;
  for (const auto& p : (*model_)->parameters()) count += p.numel();
  EXPECT_EQ(count, 6975744);
  EXPECT_EQ((*model_)->buffers().size(), 1u);
  // A gradient reaches the embedding from the output.
  UseLite copy;
  ASSERT_OK(copy->LoadWeights(*weights_));
  torch::Tensor out = copy->forward(torch::tensor({{16, 241, 2460}}, torch::kLong), torch::ones({1, 3}, torch::kBool));
  out.sum().backward();
  ASSERT_TRUE(copy->embeddings->weight.grad().defined());
  EXPECT_GT(copy->embeddings->weight.grad()[241].abs().sum().item<float>(), 0.f);
}

TEST_F(UseLiteTest, MissingOrMisshapedWeightNamesTheTensor) {
  SKIP_WITHOUT_MODEL();
  const std::string qkv =
      "module/Encoder_en/KonaTransformer/Encode/Layer_1/TransformerLayer/MultiheadAttention/qkv_transform_single/"
      "kernel/part_0";
  {
    auto w = *weights_;
    w.erase(qkv);
    UseLite m;
    const Status s = m->LoadWeights(w);
    EXPECT_TRUE(s.IsCorruption()) << s.ToString();
    EXPECT_NE(s.message().find("'" + qkv + "'"), std::string::npos) << s.ToString();
    EXPECT_NE(s.message().find("missing"), std::string::npos) << s.ToString();
  }
  {
    auto w = *weights_;
    w["module/Embeddings_en"] = torch::zeros({8000, 256});
    UseLite m;
    const Status s = m->LoadWeights(w);
    EXPECT_TRUE(s.IsCorruption()) << s.ToString();
    EXPECT_NE(s.message().find("'module/Embeddings_en'"), std::string::npos) << s.ToString();
    EXPECT_NE(s.message().find("[8000,256]"), std::string::npos) << s.ToString();
    EXPECT_NE(s.message().find("[8002,256]"), std::string::npos) << s.ToString();
  }
}

TEST_F(UseLiteTest, BadInputsThrow) {
  SKIP_WITHOUT_MODEL();
  torch::NoGradGuard no_grad;
  EXPECT_THROW((*model_)->forward(torch::zeros({3}, torch::kLong), torch::ones({3}, torch::kBool)), ModelError);
  EXPECT_THROW((*model_)->forward(torch::zeros({1, 3}, torch::kLong), torch::ones({1, 2}, torch::kBool)), ModelError);
  EXPECT_THROW((*model_)->forward(torch::full({1, 2}, 8002, torch::kLong), torch::ones({1, 2}, torch::kBool)),
               ModelError);
  EXPECT_THROW((*model_)->forward(torch::zeros({1, 2}, torch::kFloat), torch::ones({1, 2}, torch::kBool)), ModelError);
}

// --- TextEncoder -----------------------------------------------------------------------------

class TextEncoderTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!ModelPresent()) return;
    std::unique_ptr<TextEncoder> encoder;
    const Status s = TextEncoder::Load(ModelDir(), "cpu", &encoder);
    if (!s.ok()) throw std::runtime_error(s.ToString());  // fails the suite
    encoder_ = encoder.release();
  }
  static void TearDownTestSuite() {
    delete encoder_;
    encoder_ = nullptr;
  }
  static TextEncoder* encoder_;
};
TextEncoder* TextEncoderTest::encoder_ = nullptr;

TEST_F(TextEncoderTest, GoldenSentences) {
  SKIP_WITHOUT_MODEL();
  SKIP_WITHOUT_GOLDEN();
  const Golden& g = *LoadGolden();
  for (size_t i = 0; i < g.sentences.size(); ++i) EXPECT_EQ(encoder_->Tokenize(g.sentences[i]), g.ids[i]) << g.sentences[i];
  for (size_t batch : {size_t{1}, size_t{2}, size_t{64}}) {
    const auto vectors = encoder_->Encode(g.sentences, batch);
    ASSERT_EQ(vectors.size(), g.sentences.size());
    for (size_t i = 0; i < g.sentences.size(); ++i)
      EXPECT_LT(MaxAbsDiff(vectors[i], g.vectors[i]), kTolerance) << g.sentences[i] << " (batch " << batch << ")";
  }
}

// Our own goldens from the reference runtime (scripts/make-text-goldens.sh): NFKC, CJK, emoji,
// runs of spaces, a single character, a text over 128 tokens... The runtime embeds "" not at all
// (it throws), so the empty sentence has no vector to compare.
TEST_F(TextEncoderTest, ExtraGoldenSentencesFromTheReferenceRuntime) {
  SKIP_WITHOUT_MODEL();
  std::ifstream in(fs::path(MOSAIC_TEST_DATA_DIR) / "use_lite_golden_extra.json");
  ASSERT_TRUE(in) << "tests/data/use_lite_golden_extra.json is committed and must be there";
  const nlohmann::json j = nlohmann::json::parse(in);
  const auto sentences = j.at("sentences").get<std::vector<std::string>>();
  const auto vectors = j.at("embeddings").get<std::vector<std::vector<float>>>();
  ASSERT_EQ(sentences.size(), vectors.size());
  const auto ours = encoder_->Encode(sentences);
  size_t compared = 0;
  for (size_t i = 0; i < sentences.size(); ++i) {
    if (vectors[i].empty()) continue;
    EXPECT_LT(MaxAbsDiff(ours[i], vectors[i]), kTolerance) << "'" << sentences[i] << "'";
    ++compared;
  }
  EXPECT_GE(compared, sentences.size() - 1);
}

TEST_F(TextEncoderTest, BatchingDoesNotChangeVectorsAndKeepsInputOrder) {
  SKIP_WITHOUT_MODEL();
  std::string long_text;
  for (int i = 0; i < 60; ++i) long_text += "the quick brown fox jumps over the lazy dog ";
  const std::vector<std::string> texts = {"Kind of Blue", "", long_text, "Miles Davis", "日本語のテキスト",
                                          "a", "Relaxing piano music for sleep", ""};
  const auto one = encoder_->Encode(texts, 1);
  const auto all = encoder_->Encode(texts, 64);
  const auto three = encoder_->Encode(texts, 3);
  ASSERT_EQ(one.size(), texts.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    ASSERT_EQ(one[i].size(), size_t(kTextDim));
    double norm = 0;
    for (float v : one[i]) norm += double(v) * v;
    EXPECT_NEAR(std::sqrt(norm), 1.0, 1e-5) << i;
    EXPECT_LT(MaxAbsDiff(one[i], all[i]), kTolerance) << i;
    EXPECT_LT(MaxAbsDiff(one[i], three[i]), kTolerance) << i;
  }
  EXPECT_EQ(one[1], one[7]);  // both empty
  EXPECT_GT(MaxAbsDiff(one[0], one[3]), 0.1);
  EXPECT_TRUE(encoder_->Encode({}).empty());
}

TEST_F(TextEncoderTest, TokenizeKeepsTheFirst128Tokens) {
  SKIP_WITHOUT_MODEL();
  std::string text;
  for (int i = 0; i < 100; ++i) text += "piano music ";
  const auto ids = encoder_->Tokenize(text);
  EXPECT_EQ(ids.size(), size_t(kMaxTokens));
  const auto head = encoder_->Tokenize("piano music piano music");
  ASSERT_GE(head.size(), 2u);
  EXPECT_TRUE(std::equal(head.begin(), head.end(), ids.begin()));
  EXPECT_TRUE(encoder_->Tokenize("").empty());
  // Text past the cut changes nothing.
  const auto a = encoder_->Encode({text, text + " heavy metal guitar solo"});
  EXPECT_EQ(a[0], a[1]);
}

TEST(TextEncoderLoadTest, MissingModelSaysHowToGetIt) {
  TempDir dir;
  std::unique_ptr<TextEncoder> encoder;
  const Status s = TextEncoder::Load(dir.path().string(), "cpu", &encoder);
  EXPECT_TRUE(s.IsNotFound()) << s.ToString();
  EXPECT_NE(s.message().find("model.json"), std::string::npos) << s.ToString();
  EXPECT_NE(s.message().find("run scripts/fetch-model (or scripts/setup), or set MOSAIC_MODEL_DIR"), std::string::npos)
      << s.ToString();
  EXPECT_EQ(encoder, nullptr);
}

TEST(TextEncoderLoadTest, MissingShardSaysHowToGetIt) {
  SKIP_WITHOUT_MODEL();
  TempDir dir;
  for (const char* name : {"model.json", "vocab.json", "group1-shard1of7", "group1-shard2of7"})
    fs::copy_file(fs::path(ModelDir()) / name, dir.path() / name);
  std::unique_ptr<TextEncoder> encoder;
  const Status s = TextEncoder::Load(dir.path().string(), "cpu", &encoder);
  EXPECT_TRUE(s.IsNotFound()) << s.ToString();
  EXPECT_NE(s.message().find("group1-shard3of7"), std::string::npos) << s.ToString();
  EXPECT_NE(s.message().find("scripts/fetch-model"), std::string::npos) << s.ToString();
}

TEST(TextEncoderLoadTest, Devices) {
  SKIP_WITHOUT_MODEL();
  std::unique_ptr<TextEncoder> encoder, cpu;
  EXPECT_TRUE(TextEncoder::Load(ModelDir(), "tpu", &encoder).IsInvalidArgument());
  ASSERT_OK(TextEncoder::Load(ModelDir(), "auto", &encoder));
  EXPECT_EQ(encoder->device(), torch::cuda::is_available() ? "cuda" : "cpu");
  if (!torch::cuda::is_available()) {
    EXPECT_TRUE(TextEncoder::Load(ModelDir(), "cuda", &cpu).IsInvalidArgument());
    return;
  }
  // On a GPU the vectors match the CPU's.
  ASSERT_OK(TextEncoder::Load(ModelDir(), "cpu", &cpu));
  const std::vector<std::string> texts = {"I love dogs", "", "Heavy metal guitar solo live concert"};
  const auto a = encoder->Encode(texts), b = cpu->Encode(texts);
  for (size_t i = 0; i < texts.size(); ++i) EXPECT_LT(MaxAbsDiff(a[i], b[i]), 1e-4) << texts[i];
}

// modalities/registry.h writes the text row out (modalities/ may not include encoders/): it must be
// what this encoder produces and stores.
TEST(TextModalityTest, RegistryRowIsThisEncoders) {
  static_assert(modalities::kTextModality.width == kUseLiteDim);
  EXPECT_STREQ(modalities::kTextModality.extractor, kTextModelName);
  EXPECT_EQ(modalities::kTextModality.version, uint32_t(kTextModelVersion));
}

// --- ComposeItemText -------------------------------------------------------------------------

TEST(ComposeItemTextTest, OrderAndSeparators) {
  ItemText item{"Blue Train", {"hard bop", "jazz"}, {"John Coltrane"}, {"Jazz"}, "Recorded in 1957."};
  EXPECT_EQ(ComposeItemText(item), "Blue Train. hard bop, jazz. John Coltrane. Recorded in 1957.");
  EXPECT_EQ(ComposeItemText({}), "");
  EXPECT_EQ(ComposeItemText({"", {}, {}, {"rock"}, ""}), "rock");
  EXPECT_EQ(ComposeItemText({"Alien", {"space", "horror"}, {"Ridley Scott", "Sigourney Weaver"}, {"Sci-Fi"}, ""}),
            "Alien. space, horror. Ridley Scott, Sigourney Weaver. Sci-Fi");
}

TEST(ComposeItemTextTest, WhitespaceDuplicatesAndEndPunctuation) {
  ItemText item{"  Help!  ", {"beatles", " ", "Help!", "BEATLES"}, {"The\tBeatles"}, {"pop", "Pop "},
                "A film\n\nand an   album "};
  EXPECT_EQ(ComposeItemText(item), "Help! beatles. The Beatles. pop. A film and an album");
  EXPECT_EQ(ComposeItemText({"Why?", {}, {}, {}, "Because."}), "Why? Because.");
}

}  // namespace
}  // namespace mosaic::encoders
