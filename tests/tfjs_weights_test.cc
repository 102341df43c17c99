// LoadTfjsWeights: TF.js weight manifests and shards, on synthetic files and on the real USE-lite model.
#include "encoders/tfjs_weights.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/test_util.h"

namespace mosaic::encoders {
namespace {

using mosaic::testing::TempDir;
using mosaic::testing::WriteFile;
using mosaic::testing::ModelDir;
using nlohmann::json;

// The installed USE-lite model: $MOSAIC_MODEL_DIR, else the build's .cache/models/use-lite.

template <typename T>
std::string Bytes(const std::vector<T>& values) {
  std::string out(values.size() * sizeof(T), '\0');
  std::memcpy(out.data(), values.data(), out.size());
  return out;
}

// A model.json with one group of three tensors over two shards, and the shards (the split falls
// inside tensor "b"). Tests then break one thing.
struct Fixture {
  TempDir dir;
  json manifest = json::array({{
      {"paths", {"shard1", "shard2"}},
      {"weights",
       {{{"name", "a"}, {"shape", {2, 3}}, {"dtype", "float32"}},
        {{"name", "b"}, {"shape", {3}}, {"dtype", "int32"}},
        {{"name", "c"}, {"shape", json::array()}, {"dtype", "float32"}}}},
  }});
  std::string payload = Bytes<float>({1, 2, 3, 4, 5, 6}) + Bytes<int32_t>({-7, 8, 1 << 30}) + Bytes<float>({0.5f});

  void Write(const std::string& data) {
    WriteFile(dir / "model.json", json{{"modelTopology", json::object()}, {"weightsManifest", manifest}}.dump());
    WriteFile(dir / "shard1", data.substr(0, 30));
    WriteFile(dir / "shard2", data.size() > 30 ? data.substr(30) : "");
  }
  void Write() { Write(payload); }
  std::string path() const { return dir.path().string(); }
};

// The message of the error LoadTfjsWeights(dir) returns ("" if none), which must leave the
// weights alone.
std::string ErrorOf(const std::string& dir) {
  std::map<std::string, at::Tensor> w = {{"kept", at::Tensor()}};
  const Status s = LoadTfjsWeights(dir, &w);
  if (s.ok()) return "";
  EXPECT_EQ(w.size(), 1u) << s.ToString();
  return s.message();
}

// The code of the status LoadTfjsWeights(dir) returns.
Status::Code CodeOf(const std::string& dir) {
  std::map<std::string, at::Tensor> w;
  return LoadTfjsWeights(dir, &w).code();
}

TEST(TfjsWeightsTest, ReadsTensorsAcrossShardsInManifestOrder) {
  Fixture f;
  f.manifest.push_back({{"paths", {"shard3"}}, {"weights", {{{"name", "flags"}, {"shape", {2}}, {"dtype", "bool"}}}}});
  f.Write();
  WriteFile(f.dir / "shard3", std::string("\x01\x00", 2));
  std::map<std::string, at::Tensor> w;
  ASSERT_OK(LoadTfjsWeights(f.path(), &w));
  ASSERT_EQ(w.size(), 4u);
  EXPECT_EQ(w["a"].sizes(), at::IntArrayRef({2, 3}));
  EXPECT_EQ(w["a"].scalar_type(), at::kFloat);
  EXPECT_TRUE(torch::equal(w["a"], torch::tensor({1.f, 2.f, 3.f, 4.f, 5.f, 6.f}).view({2, 3})));
  EXPECT_EQ(w["b"].scalar_type(), at::kInt);
  EXPECT_TRUE(torch::equal(w["b"], torch::tensor({-7, 8, 1 << 30}, torch::kInt)));
  EXPECT_EQ(w["c"].dim(), 0);
  EXPECT_EQ(w["c"].item<float>(), 0.5f);
  EXPECT_TRUE(torch::equal(w["flags"], torch::tensor({true, false})));
}

TEST(TfjsWeightsTest, MissingModelJson) {
  TempDir dir;
  const std::string e = ErrorOf(dir.path().string());
  EXPECT_NE(e.find("model.json"), std::string::npos) << e;
  EXPECT_NE(e.find("missing"), std::string::npos) << e;
  EXPECT_EQ(CodeOf(dir.path().string()), Status::Code::kNotFound);
}

TEST(TfjsWeightsTest, MalformedJson) {
  TempDir dir;
  WriteFile(dir / "model.json", "{\"weightsManifest\": [");
  const std::string e = ErrorOf(dir.path().string());
  EXPECT_NE(e.find("model.json"), std::string::npos) << e;
  EXPECT_NE(e.find("malformed JSON"), std::string::npos) << e;
  EXPECT_EQ(CodeOf(dir.path().string()), Status::Code::kCorruption);
}

TEST(TfjsWeightsTest, NoManifest) {
  TempDir dir;
  WriteFile(dir / "model.json", "{\"modelTopology\": {}}");
  const std::string e = ErrorOf(dir.path().string());
  EXPECT_NE(e.find("weightsManifest"), std::string::npos) << e;
}

TEST(TfjsWeightsTest, MissingShard) {
  Fixture f;
  f.Write();
  std::filesystem::remove(f.dir / "shard2");
  const std::string e = ErrorOf(f.path());
  EXPECT_NE(e.find("shard2"), std::string::npos) << e;
  EXPECT_NE(e.find("missing"), std::string::npos) << e;
  EXPECT_EQ(CodeOf(f.path()), Status::Code::kNotFound);
}

TEST(TfjsWeightsTest, ShortShardNamesTheShardAndTheTensor) {
  Fixture f;
  f.Write(f.payload.substr(0, f.payload.size() - 2));  // "c" lacks 2 bytes
  const std::string e = ErrorOf(f.path());
  EXPECT_NE(e.find("shard2"), std::string::npos) << e;
  EXPECT_NE(e.find("tensor 'c'"), std::string::npos) << e;
  EXPECT_NE(e.find("too few"), std::string::npos) << e;
}

TEST(TfjsWeightsTest, LongShard) {
  Fixture f;
  f.Write(f.payload + "xyzw");
  const std::string e = ErrorOf(f.path());
  EXPECT_NE(e.find("shard2"), std::string::npos) << e;
  EXPECT_NE(e.find("more bytes"), std::string::npos) << e;
}

TEST(TfjsWeightsTest, QuantizedEntry) {
  Fixture f;
  f.manifest[0]["weights"][1]["quantization"] = {{"dtype", "uint8"}, {"min", -1.0}, {"scale", 0.01}};
  f.Write();
  const std::string e = ErrorOf(f.path());
  EXPECT_NE(e.find("tensor 'b'"), std::string::npos) << e;
  EXPECT_NE(e.find("quantized"), std::string::npos) << e;
}

TEST(TfjsWeightsTest, UnknownDtype) {
  Fixture f;
  f.manifest[0]["weights"][0]["dtype"] = "complex64";
  f.Write();
  const std::string e = ErrorOf(f.path());
  EXPECT_NE(e.find("tensor 'a'"), std::string::npos) << e;
  EXPECT_NE(e.find("complex64"), std::string::npos) << e;
}

TEST(TfjsWeightsTest, BadShapeAndRepeatedName) {
  {
    Fixture f;
    f.manifest[0]["weights"][0]["shape"] = {2, -3};
    f.Write();
    const std::string e = ErrorOf(f.path());
    EXPECT_NE(e.find("tensor 'a'"), std::string::npos) << e;
    EXPECT_NE(e.find("bad shape"), std::string::npos) << e;
  }
  {
    Fixture f;
    f.manifest[0]["weights"][2]["name"] = "a";
    f.Write();
    const std::string e = ErrorOf(f.path());
    EXPECT_NE(e.find("tensor 'a'"), std::string::npos) << e;
    EXPECT_NE(e.find("twice"), std::string::npos) << e;
  }
}

TEST(TfjsWeightsTest, RealUseLiteModel) {
  const std::string dir = ModelDir();
  if (dir.empty() || !std::filesystem::exists(std::filesystem::path(dir) / "model.json"))
    GTEST_SKIP() << "USE-lite model absent from '" << dir << "' (run scripts/fetch-model or set MOSAIC_MODEL_DIR)";
  std::map<std::string, at::Tensor> w;
  ASSERT_OK(LoadTfjsWeights(dir, &w));
  EXPECT_EQ(w.size(), 61u);
  int64_t bytes = 0;
  for (const auto& [name, t] : w) bytes += t.numel() * int64_t(t.element_size());
  EXPECT_EQ(bytes, 27903656);  // the 7 shards, to the byte
  const at::Tensor& e = w.at("module/Embeddings_en");
  EXPECT_EQ(e.sizes(), at::IntArrayRef({8002, 256}));
  EXPECT_TRUE(torch::isfinite(e).all().item<bool>());
  // Constants of the graph that SPEC.md's architecture relies on.
  const std::string s = "module_apply_default/Encoder_en/KonaTransformer/Encode/TransformerStack/";
  EXPECT_FLOAT_EQ(w.at(s + "Layer_0/TransformerLayer/MultiheadAttention/mul/y").item<float>(), 0.125f);
  EXPECT_FLOAT_EQ(w.at(s + "Layer_1/TransformerLayer/MultiheadAttention/mul/y").item<float>(), 0.08838835f);
  EXPECT_FLOAT_EQ(w.at(s + "Layer_1/TransformerLayer/MultiheadAttention/DotProductAttention/"
                           "attention_bias_ignore_padding/mul/y").item<float>(), -1e9f);
  EXPECT_FLOAT_EQ(w.at(s + "Layer_1/TransformerLayer/FFN/layer_prepostprocess/layer_norm/Cast/x").item<float>(), 1e-6f);
}

}  // namespace
}  // namespace mosaic::encoders
