// Universal Sentence Encoder Lite (USE-lite, TF-Hub, Cer et al. 2018) as a LibTorch module: the
// pretrained 2-layer transformer Mosaic embeds text with. The architecture and the names of its
// weights in the TF.js export are in shared/models/use-lite/SPEC.md:
//
//   x0  = 2*E[ids] + concat(sin(p*inv), cos(p*inv))            token embedding + timing signal, 256
//   h   = dense(x0) + MHA0(LN(x0));  h = h + FFN0(LN(h))         layer 0 widens 256 -> 512
//   h   = h + MHA1(LN(h));           h = h + FFN1(LN(h))         layer 1, 512
//   u   = masked mean of h over the tokens (0 when there are none)
//   out = L2-normalise(tanh(head(u)))                            512
//
// Every weight is a parameter of the module (the timescales a buffer), so it can be fine-tuned,
// saved with torch::save and moved with .to(device).
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include <map>
#include <string>

#include "store/status.h"

namespace mosaic::encoders {

inline constexpr int64_t kUseLiteVocab = 8002;       ///< embedding rows (ids 0..8001; 0 = unknown)
inline constexpr int64_t kUseLiteEmbeddingDim = 256;
inline constexpr int64_t kUseLiteDim = 512;          ///< width of layer 1 and of the output

// One pre-norm transformer layer: h = R(x) + MHA(LN(x)); h = h + FFN(LN(h)), where R is the
// identity, or a dense projection when the layer widens (in != width).
class UseLiteLayerImpl : public torch::nn::Module {
 public:
  UseLiteLayerImpl(int64_t in, int64_t width, int64_t heads, int64_t ffn);
  // x [B,T,in] float, key_bias [B,1,1,T] (0 for tokens, -1e9 for padding) -> [B,T,width].
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& key_bias);

  torch::nn::LayerNorm attention_norm{nullptr}, ffn_norm{nullptr};
  torch::nn::Linear qkv{nullptr}, output{nullptr}, residual{nullptr}, ffn_in{nullptr}, ffn_out{nullptr};

 private:
  int64_t heads_;
};
TORCH_MODULE(UseLiteLayer);

class UseLiteImpl : public torch::nn::Module {
 public:
  // The architecture with uninitialised weights: call LoadWeights next.
  UseLiteImpl();

  // Copies the pretrained weights in (as LoadTfjsWeights returns them), by the names of the TF.js
  // export (converting TF's [in,out] kernels to torch's [out,in]); tensors not used are ignored.
  // Returns OK, or Corruption naming the tensor when one is missing, has the wrong shape or is not
  // float32; the module's weights are then partly overwritten (load into a fresh module).
  Status LoadWeights(const std::map<std::string, at::Tensor>& weights);

  // ids [B,T] int64 in 0..kUseLiteVocab-1, mask [B,T] bool (true = a token, false = padding;
  // padding may be anywhere but is usually at the end) -> [B,512] float, L2-normalised rows.
  // T may exceed 128 (the timing signal has no length limit) but the model was trained on at most
  // 128 tokens. A row without tokens gives the normalised tanh(head bias). Throws ModelError on
  // bad shapes or dtypes.
  torch::Tensor forward(torch::Tensor ids, torch::Tensor mask);

  torch::nn::Embedding embeddings{nullptr};  ///< E [8002,256]
  UseLiteLayer layer0{nullptr}, layer1{nullptr};
  torch::nn::Linear head{nullptr};           ///< tanh layer, 512 -> 512
  torch::Tensor inv_timescales;              ///< buffer [128]

 private:
  void CopyWeights(const std::map<std::string, at::Tensor>& weights);  ///< LoadWeights' work; throws ModelError
};
TORCH_MODULE(UseLite);

}  // namespace mosaic::encoders
