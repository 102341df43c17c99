// Visual features of a video from frames sampled across its duration, measured with OpenCV.
// Per frame: HSV colour histograms, colourfulness, brightness, contrast, edge density and
// texture; between consecutive samples: motion energy and content changes (shot cuts, by
// histogram distance). Aggregated to a fixed-length vector whose layout is in docs/features.md.
#pragma once

#include <opencv2/core.hpp>
#include <string>
#include <vector>

#include "modalities/registry.h"

namespace mosaic::modalities {

inline constexpr int kVisualFeatureDim = kVisualModality.width;

struct VisualFeatures {
  std::vector<float> vector;     ///< kVisualFeatureDim values
  int samples = 0;               ///< frames measured
  int cuts = 0;                  ///< content changes between consecutive samples
  double cut_rate_per_min = 0;   ///< cuts per minute of content
  double brightness = 0;         ///< mean V in 0..1
  double colourfulness = 0;      ///< Hasler-Süsstrunk colourfulness, mean
  double motion = 0;             ///< mean absolute difference of consecutive samples, 0..1
};

// Accumulates sampled frames (in any time order) and aggregates them.
class VisualFeatureAccumulator {
 public:
  // Measures one frame: 8-bit BGR, any size (the caller scales it down first).
  void AddFrame(const cv::Mat& bgr, double time_s);

  int samples() const { return int(frames_.size()); }

  // Aggregates the frames. `duration_s` is the content's duration (for the cut rate);
  // `aspect` its display aspect ratio.
  VisualFeatures Finish(double duration_s, double aspect) const;

 private:
  struct Frame {
    double time_s;
    float hue[12], sat[4], val[4];
    float colourfulness, brightness, contrast, edges, texture;
    cv::Mat hs_hist;    // 16x4 hue-saturation histogram, for content changes
    cv::Mat thumbnail;  // 64x64 grey, for motion
  };
  std::vector<Frame> frames_;
};

// Name of each index of the visual vector ("hue_hist[0]", ..., "dark_frame_ratio").
const std::vector<std::string>& VisualFeatureNames();

}  // namespace mosaic::modalities
