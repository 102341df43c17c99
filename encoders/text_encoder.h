// TextEncoder: the pretrained USE-lite sentence encoder (tokenizer + LibTorch module) behind a
// header that does not include LibTorch, for callers that must compile fast (jobs/). The model is
// in shared/models/use-lite/SPEC.md; encoders/use_lite.h is the module itself, for training.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "encoders/text_model.h"
#include "store/status.h"

namespace mosaic::encoders {

class TextEncoder {
 public:
  // Loads model.json, its weight shards and vocab.json from `model_dir` onto `device`: "cpu",
  // "cuda" or "auto" (cuda when available, else cpu). On success stores the encoder in *encoder and
  // returns OK. On error leaves *encoder as it was and returns InvalidArgument for an unknown
  // device, or cuda without a GPU LibTorch can see; NotFound when a model file is missing, the
  // message then saying how to get them ("run scripts/fetch-model (or scripts/setup), or set
  // MOSAIC_MODEL_DIR"); IOError or Corruption, naming the file or tensor, for one that cannot be
  // read or is damaged (see Tokenizer::Load, LoadTfjsWeights, UseLite's LoadWeights).
  // The first call sets the threads for the process: LibTorch's intra-op pool 1 thread and
  // OpenBLAS one a core (two pools of one thread a core each thrash: see SetThreadsOnce in
  // text_encoder.cc); MOSAIC_TORCH_THREADS=N gives LibTorch N threads and OpenBLAS 1 instead.
  static Status Load(const std::string& model_dir, const std::string& device, std::unique_ptr<TextEncoder>* encoder);
  ~TextEncoder();
  TextEncoder(const TextEncoder&) = delete;
  TextEncoder& operator=(const TextEncoder&) = delete;

  // The token ids the model sees for `text`: at most kMaxTokens (later ones are dropped).
  std::vector<int64_t> Tokenize(std::string_view text) const;

  // Embeds every text: one L2-normalised kTextDim vector each, in input order. Texts are sorted by
  // token count and batched by similar lengths (`batch_size` texts a batch, at least 1) so that
  // little padding is computed; the result does not depend on the batching (beyond float
  // rounding, ~1e-7). Empty text works (no tokens: the mean over zero tokens is 0, giving the
  // normalised tanh of the head's bias).
  // Runs under torch::NoGradGuard. The model is read-only after Load: Encode may be called from
  // one thread at a time (use one TextEncoder a thread otherwise); LibTorch parallelises inside.
  std::vector<std::vector<float>> Encode(const std::vector<std::string>& texts, size_t batch_size = 64) const;

  const std::string& device() const;  ///< "cpu" or "cuda", after resolving "auto"

 private:
  struct Impl;
  explicit TextEncoder(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mosaic::encoders
