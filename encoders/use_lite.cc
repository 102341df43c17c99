#include "encoders/use_lite.h"

#include <torch/torch.h>

#include <cmath>
#include <sstream>
#include <vector>

#include "encoders/model_error.h"

namespace mosaic::encoders {
namespace {

constexpr int64_t kHeads = 4;
constexpr int64_t kFfn = 1536;
constexpr int64_t kTimescales = 128;    // kUseLiteEmbeddingDim / 2 (sin, then cos)
constexpr double kLayerNormEps = 1e-6;
constexpr double kPaddingBias = -1e9;   // added to the attention logits of padded keys
constexpr double kNormFloor = 1e-12;    // of the sum of squares, in the L2 normalisation

// Prefixes of the weight names in the TF.js export (SPEC.md).
const std::string kA = "module_apply_default/Encoder_en/KonaTransformer/Encode/";
const std::string kS = kA + "TransformerStack/";
const std::string kM = "module/Encoder_en/KonaTransformer/Encode/";

std::string ShapeString(at::IntArrayRef shape) {
  std::ostringstream out;
  out << '[';
  for (size_t i = 0; i < shape.size(); ++i) out << (i ? "," : "") << shape[i];
  out << ']';
  return out.str();
}

// The tensor `name` of `weights`, checked to have `shape` and to be float32.
const at::Tensor& Find(const std::map<std::string, at::Tensor>& weights, const std::string& name,
                       std::vector<int64_t> shape, const std::string& purpose) {
  auto it = weights.find(name);
  if (it == weights.end())
    throw ModelError("USE-lite weights: tensor '" + name + "' (" + purpose + ", shape " + ShapeString(shape) +
                     ") is missing from model.json");
  if (it->second.sizes() != at::IntArrayRef(shape))
    throw ModelError("USE-lite weights: tensor '" + name + "' (" + purpose + ") has shape " +
                     ShapeString(it->second.sizes()) + ", expected " + ShapeString(shape));
  if (it->second.scalar_type() != at::kFloat)
    throw ModelError("USE-lite weights: tensor '" + name + "' (" + purpose + ") is " +
                     std::string(c10::toString(it->second.scalar_type())) + ", expected float32");
  return it->second;
}

void Assign(torch::Tensor& target, const at::Tensor& value) {
  target.copy_(value.to(target.device()).reshape(target.sizes()));
}

// A TF kernel [in,out] (or [1,1,in,out], a 1x1 convolution) into a torch Linear [out,in].
void LoadLinear(torch::nn::Linear& linear, const std::map<std::string, at::Tensor>& weights,
                const std::string& kernel, const std::string& bias, const std::string& purpose,
                bool conv) {
  const int64_t in = linear->options.in_features(), out = linear->options.out_features();
  std::vector<int64_t> kshape = conv ? std::vector<int64_t>{1, 1, in, out} : std::vector<int64_t>{in, out};
  const at::Tensor& k = Find(weights, kernel, kshape, purpose + " kernel");
  const at::Tensor& b = Find(weights, bias, {out}, purpose + " bias");
  Assign(linear->weight, k.reshape({in, out}).t().contiguous());
  Assign(linear->bias, b);
}

void LoadLayerNorm(torch::nn::LayerNorm& norm, const std::map<std::string, at::Tensor>& weights,
                   const std::string& prefix, const std::string& purpose) {
  const int64_t dim = norm->options.normalized_shape()[0];
  Assign(norm->weight, Find(weights, prefix + "layer_norm_scale/ConcatPartitions/concat", {dim}, purpose + " scale"));
  Assign(norm->bias, Find(weights, prefix + "layer_norm_bias/ConcatPartitions/concat", {dim}, purpose + " bias"));
}

torch::nn::LayerNorm MakeNorm(int64_t dim) {
  return torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim}).eps(kLayerNormEps).elementwise_affine(true));
}

}  // namespace

UseLiteLayerImpl::UseLiteLayerImpl(int64_t in, int64_t width, int64_t heads, int64_t ffn) : heads_(heads) {
  attention_norm = register_module("attention_norm", MakeNorm(in));
  qkv = register_module("qkv", torch::nn::Linear(in, 3 * in));
  output = register_module("output", torch::nn::Linear(in, width));
  if (in != width) residual = register_module("residual", torch::nn::Linear(in, width));
  ffn_norm = register_module("ffn_norm", MakeNorm(width));
  ffn_in = register_module("ffn_in", torch::nn::Linear(width, ffn));
  ffn_out = register_module("ffn_out", torch::nn::Linear(ffn, width));
}

torch::Tensor UseLiteLayerImpl::forward(const torch::Tensor& x, const torch::Tensor& key_bias) {
  const int64_t batch = x.size(0), time = x.size(1), dim = x.size(2), head_dim = dim / heads_;
  // Multi-head self-attention, q|k|v in that order, heads split from the last dimension.
  std::vector<torch::Tensor> parts = qkv(attention_norm(x)).chunk(3, -1);
  auto split = [&](const torch::Tensor& t) { return t.view({batch, time, heads_, head_dim}).transpose(1, 2); };
  torch::Tensor q = split(parts[0]) * (1.0 / std::sqrt(double(head_dim)));
  torch::Tensor k = split(parts[1]), v = split(parts[2]);
  torch::Tensor weights = torch::softmax(torch::matmul(q, k.transpose(-1, -2)) + key_bias, -1);
  torch::Tensor attended = torch::matmul(weights, v).transpose(1, 2).reshape({batch, time, dim});
  torch::Tensor h = (residual ? residual(x) : x) + output(attended);
  // Feed-forward.
  return h + ffn_out(torch::relu(ffn_in(ffn_norm(h))));
}

UseLiteImpl::UseLiteImpl() {
  embeddings = register_module("embeddings", torch::nn::Embedding(kUseLiteVocab, kUseLiteEmbeddingDim));
  layer0 = register_module("layer0", UseLiteLayer(kUseLiteEmbeddingDim, kUseLiteDim, kHeads, kFfn));
  layer1 = register_module("layer1", UseLiteLayer(kUseLiteDim, kUseLiteDim, kHeads, kFfn));
  head = register_module("head", torch::nn::Linear(kUseLiteDim, kUseLiteDim));
  inv_timescales = register_buffer("inv_timescales", torch::zeros({kTimescales}));
}

Status UseLiteImpl::LoadWeights(const std::map<std::string, at::Tensor>& weights) {
  try {
    CopyWeights(weights);
  } catch (const ModelError& e) {
    return e.status();
  }
  return Status::OK();
}

void UseLiteImpl::CopyWeights(const std::map<std::string, at::Tensor>& weights) {
  torch::NoGradGuard no_grad;
  Assign(embeddings->weight,
         Find(weights, "module/Embeddings_en", {kUseLiteVocab, kUseLiteEmbeddingDim}, "token embedding"));
  Assign(inv_timescales, Find(weights, kS + "Layer_0/AddTimingSignal/TimingSignal/ExpandDims_1", {1, kTimescales},
                              "inverse timescales"));
  UseLiteLayer layers[2] = {layer0, layer1};
  for (int i = 0; i < 2; ++i) {
    UseLiteLayerImpl& l = *layers[i];
    const std::string layer = "Layer_" + std::to_string(i) + "/TransformerLayer/";
    const std::string what = "layer " + std::to_string(i) + " ";
    LoadLayerNorm(l.attention_norm, weights, kA + layer + "layer_prepostprocess/layer_norm/", what + "attention LayerNorm");
    LoadLinear(l.qkv, weights, kM + layer + "MultiheadAttention/qkv_transform_single/kernel/part_0",
               kA + layer + "MultiheadAttention/qkv_transform_single/bias/ConcatPartitions/concat", what + "qkv", true);
    LoadLinear(l.output, weights, kM + layer + "MultiheadAttention/output_transform_single/kernel/part_0",
               kA + layer + "MultiheadAttention/output_transform_single/bias/ConcatPartitions/concat",
               what + "attention output", true);
    if (l.residual)
      LoadLinear(l.residual, weights, kA + layer + "dense/kernel/ConcatPartitions/concat",
                 kA + layer + "dense/bias/ConcatPartitions/concat", what + "residual projection", false);
    LoadLayerNorm(l.ffn_norm, weights, kA + layer + "FFN/layer_prepostprocess/layer_norm/", what + "FFN LayerNorm");
    LoadLinear(l.ffn_in, weights, kS + layer + "FFN/conv1/Tensordot/Reshape_1",
               kA + layer + "FFN/conv1/bias/ConcatPartitions/concat", what + "FFN conv1", false);
    LoadLinear(l.ffn_out, weights, kS + layer + "FFN/conv2/Tensordot/Reshape_1",
               kA + layer + "FFN/conv2/bias/ConcatPartitions/concat", what + "FFN conv2", false);
  }
  LoadLinear(head, weights, "module/Encoder_en/hidden_layers/tanh_layer_0/weights",
             "module/Encoder_en/hidden_layers/tanh_layer_0/bias", "tanh head", false);
}

torch::Tensor UseLiteImpl::forward(torch::Tensor ids, torch::Tensor mask) {
  if (ids.dim() != 2 || mask.sizes() != ids.sizes())
    throw ModelError("USE-lite forward: ids and mask must both be [B,T]; got ids " + ShapeString(ids.sizes()) +
                     " and mask " + ShapeString(mask.sizes()));
  if (!at::isIntegralType(ids.scalar_type(), /*includeBool=*/false))
    throw ModelError("USE-lite forward: ids must be integers, got " + std::string(c10::toString(ids.scalar_type())));
  const torch::Device device = inv_timescales.device();
  ids = ids.to(device, torch::kLong);
  if (ids.numel() > 0) {
    const int64_t lo = ids.min().item<int64_t>(), hi = ids.max().item<int64_t>();
    if (lo < 0 || hi >= kUseLiteVocab)
      throw ModelError("USE-lite forward: token id " + std::to_string(lo < 0 ? lo : hi) + " outside 0.." +
                       std::to_string(kUseLiteVocab - 1));
  }
  const torch::Tensor maskf = mask.to(device).to(torch::kBool).to(torch::kFloat);  // [B,T]
  const int64_t batch = ids.size(0), time = ids.size(1);

  // Token embedding (counted twice, as in the graph) plus the sinusoid timing signal.
  const torch::Tensor positions = torch::arange(time, torch::TensorOptions().dtype(torch::kFloat).device(device));
  const torch::Tensor scaled = positions.unsqueeze(1) * inv_timescales.unsqueeze(0);  // [T,128]
  const torch::Tensor x0 = 2 * embeddings(ids) + torch::cat({torch::sin(scaled), torch::cos(scaled)}, 1);

  const torch::Tensor key_bias = ((1 - maskf) * kPaddingBias).view({batch, 1, 1, time});
  torch::Tensor h = layer1(layer0(x0, key_bias), key_bias);  // [B,T,512]

  const torch::Tensor length = maskf.sum(1, /*keepdim=*/true).clamp_min(1);  // [B,1]
  const torch::Tensor pooled = (h * maskf.unsqueeze(-1)).sum(1) / length;   // [B,512]
  const torch::Tensor y = torch::tanh(head(pooled));
  return y / torch::sqrt(y.pow(2).sum(-1, /*keepdim=*/true).clamp_min(kNormFloor));
}

}  // namespace mosaic::encoders
