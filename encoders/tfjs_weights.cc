#include "encoders/tfjs_weights.h"

#include <torch/torch.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <utility>
#include <vector>


#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "LoadTfjsWeights copies little-endian shards as they are: port it before building on a big-endian machine"
#endif

namespace mosaic::encoders {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct DtypeInfo {
  at::ScalarType type;
  size_t bytes;  // per value
};

bool DtypeOf(const std::string& name, DtypeInfo* out) {
  if (name == "float32") *out = {at::kFloat, 4};
  else if (name == "int32") *out = {at::kInt, 4};
  else if (name == "bool") *out = {at::kBool, 1};
  else return false;
  return true;
}

// Appends the bytes of the file at `path` to *data.
Status ReadWhole(const fs::path& path, const std::string& what, std::string* data) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::IOError(path.string() + ": cannot open " + what);
  data->append(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  if (in.bad()) return Status::IOError(path.string() + ": cannot read " + what);
  return Status::OK();
}

// One manifest entry, checked, with where its bytes lie in its group's shards.
struct Entry {
  std::string name;
  std::vector<int64_t> shape;
  DtypeInfo dtype;
  size_t offset = 0;
  size_t bytes = 0;
};

}  // namespace

Status LoadTfjsWeights(const std::string& model_dir, std::map<std::string, at::Tensor>* weights) {
  const fs::path dir(model_dir);
  const fs::path model_json = dir / "model.json";
  std::error_code ec;
  if (!fs::is_regular_file(model_json, ec)) return Status::NotFound(model_json.string() + ": missing");
  std::string text;
  MOSAIC_RETURN_IF_ERROR(ReadWhole(model_json, "the model description", &text));
  json model;
  try {
    model = json::parse(text);
  } catch (const json::parse_error& e) {
    return Status::Corruption(model_json.string() + ": malformed JSON: " + e.what());
  }
  const std::string where = model_json.string() + ": ";
  if (!model.is_object() || !model.contains("weightsManifest") || !model["weightsManifest"].is_array())
    return Status::Corruption(where + "no \"weightsManifest\" array (not a TF.js model?)");

  std::map<std::string, at::Tensor> tensors;
  const json& manifest = model["weightsManifest"];
  for (size_t g = 0; g < manifest.size(); ++g) {
    const json& group = manifest[g];
    const std::string gname = "weightsManifest[" + std::to_string(g) + "]";
    if (!group.is_object() || !group.contains("paths") || !group["paths"].is_array() ||
        !group.contains("weights") || !group["weights"].is_array())
      return Status::Corruption(where + gname + " needs a \"paths\" array and a \"weights\" array");

    // The entries, checked before any shard is read.
    std::vector<Entry> entries;
    size_t needed = 0;
    for (const json& w : group["weights"]) {
      if (!w.is_object() || !w.contains("name") || !w["name"].is_string())
        return Status::Corruption(where + gname + " has a weight without a \"name\"");
      Entry e;
      e.name = w["name"].get<std::string>();
      const std::string culprit = where + "tensor '" + e.name + "': ";
      if (w.contains("quantization"))
        return Status::Corruption(culprit + "quantized weights are not supported (export the model unquantized)");
      if (!w.contains("dtype") || !w["dtype"].is_string()) return Status::Corruption(culprit + "no \"dtype\"");
      const std::string dtype = w["dtype"].get<std::string>();
      if (!DtypeOf(dtype, &e.dtype))
        return Status::Corruption(culprit + "unknown dtype \"" + dtype + "\" (float32, int32 and bool are read)");
      if (!w.contains("shape") || !w["shape"].is_array()) return Status::Corruption(culprit + "no \"shape\" array");
      size_t count = 1;
      for (const json& d : w["shape"]) {
        if (!d.is_number_integer() || d.get<int64_t>() < 0)
          return Status::Corruption(culprit + "bad shape " + w["shape"].dump());
        const auto dim = d.get<int64_t>();
        if (dim != 0 && count > std::numeric_limits<size_t>::max() / 16 / size_t(dim))
          return Status::Corruption(culprit + "shape " + w["shape"].dump() + " is too large");
        count *= size_t(dim);
        e.shape.push_back(dim);
      }
      e.offset = needed;
      e.bytes = count * e.dtype.bytes;
      needed += e.bytes;
      if (tensors.count(e.name)) return Status::Corruption(culprit + "named twice in the manifest");
      tensors.emplace(e.name, at::Tensor());  // reserved, filled below
      entries.push_back(std::move(e));
    }

    // The group's shards, concatenated.
    std::string data;
    std::string last_shard = "(no shard)";
    for (const json& p : group["paths"]) {
      if (!p.is_string()) return Status::Corruption(where + gname + ".paths holds a non-string");
      const fs::path shard = dir / p.get<std::string>();
      last_shard = shard.string();
      if (!fs::is_regular_file(shard, ec)) return Status::NotFound(shard.string() + ": missing weight shard");
      MOSAIC_RETURN_IF_ERROR(ReadWhole(shard, "weight shard", &data));
      if (data.size() > needed) break;  // reported below, without reading the rest
    }
    if (data.size() < needed) {
      for (const Entry& e : entries) {
        if (e.offset + e.bytes > data.size())
          return Status::Corruption(last_shard + ": the shards of " + gname + " hold " + std::to_string(data.size()) +
                           " bytes, too few: tensor '" + e.name + "' needs bytes " + std::to_string(e.offset) +
                           ".." + std::to_string(e.offset + e.bytes) + " (" + std::to_string(needed) +
                           " in all); is a shard truncated?");
      }
    }
    if (data.size() > needed)
      return Status::Corruption(last_shard + ": the shards of " + gname + " hold more bytes than the manifest's " +
                       std::to_string(entries.size()) + " tensors need (" + std::to_string(needed) +
                       "); shards and model.json do not match");

    for (const Entry& e : entries) {
      at::Tensor t = at::empty(e.shape, at::TensorOptions().dtype(e.dtype.type).device(at::kCPU));
      if (e.bytes) std::memcpy(t.data_ptr(), data.data() + e.offset, e.bytes);
      tensors[e.name] = std::move(t);
    }
  }
  *weights = std::move(tensors);
  return Status::OK();
}

}  // namespace mosaic::encoders
