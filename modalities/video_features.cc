#include "modalities/video_features.h"

#include <algorithm>
#include <cmath>
#include <opencv2/imgproc.hpp>

namespace mosaic::modalities {

namespace {

// Histogram of one 8-bit channel of `img` into `bins` bins over [0, range), normalised to sum 1.
void ChannelHistogram(const cv::Mat& img, int channel, int bins, float range, float* out) {
  cv::Mat hist;
  const int channels[] = {channel};
  const int sizes[] = {bins};
  const float r[] = {0, range};
  const float* ranges[] = {r};
  cv::calcHist(&img, 1, channels, cv::Mat(), hist, 1, sizes, ranges);
  const double total = std::max(1.0, cv::sum(hist)[0]);
  for (int i = 0; i < bins; ++i) out[i] = float(hist.at<float>(i) / total);
}

// Bhattacharyya distance between consecutive samples above which the content changed.
constexpr double kCutDistance = 0.45;

void MeanStd(const std::vector<double>& v, float* mean, float* std) {
  if (v.empty()) {
    *mean = *std = 0;
    return;
  }
  double m = 0;
  for (double x : v) m += x;
  m /= double(v.size());
  double var = 0;
  for (double x : v) var += (x - m) * (x - m);
  *mean = float(m);
  *std = float(std::sqrt(var / double(v.size())));
}

}  // namespace

void VisualFeatureAccumulator::AddFrame(const cv::Mat& bgr, double time_s) {
  CV_Assert(bgr.type() == CV_8UC3 && !bgr.empty());
  Frame f;
  f.time_s = time_s;
  cv::Mat hsv, grey;
  cv::cvtColor(bgr, hsv, cv::COLOR_BGR2HSV);
  cv::cvtColor(bgr, grey, cv::COLOR_BGR2GRAY);
  ChannelHistogram(hsv, 0, 12, 180, f.hue);
  ChannelHistogram(hsv, 1, 4, 256, f.sat);
  ChannelHistogram(hsv, 2, 4, 256, f.val);
  {
    const int channels[] = {0, 1};
    const int sizes[] = {16, 4};
    const float h[] = {0, 180}, s[] = {0, 256};
    const float* ranges[] = {h, s};
    cv::calcHist(&hsv, 1, channels, cv::Mat(), f.hs_hist, 2, sizes, ranges);
    cv::normalize(f.hs_hist, f.hs_hist, 1, 0, cv::NORM_L1);
  }
  // Colourfulness (Hasler and Süsstrunk 2003) on the opponent channels rg and yb.
  cv::Mat channels[3];
  cv::Mat bgr_f;
  bgr.convertTo(bgr_f, CV_32FC3);
  cv::split(bgr_f, channels);
  cv::Mat rg = channels[2] - channels[1];
  cv::Mat yb = 0.5 * (channels[2] + channels[1]) - channels[0];
  cv::Scalar rg_mean, rg_std, yb_mean, yb_std;
  cv::meanStdDev(rg, rg_mean, rg_std);
  cv::meanStdDev(yb, yb_mean, yb_std);
  f.colourfulness = float(std::hypot(rg_std[0], yb_std[0]) + 0.3 * std::hypot(rg_mean[0], yb_mean[0])) / 100.0f;

  cv::Scalar grey_mean, grey_std;
  cv::meanStdDev(grey, grey_mean, grey_std);
  f.brightness = float(cv::mean(hsv)[2] / 255.0);
  f.contrast = float(grey_std[0] / 255.0);
  cv::Mat edges;
  cv::Canny(grey, edges, 100, 200);
  f.edges = float(cv::countNonZero(edges)) / float(edges.total());
  cv::Mat lap;
  cv::Laplacian(grey, lap, CV_32F);
  cv::Scalar lap_mean, lap_std;
  cv::meanStdDev(lap, lap_mean, lap_std);
  f.texture = float(std::log1p(lap_std[0] * lap_std[0]) / 10.0);
  cv::resize(grey, f.thumbnail, cv::Size(64, 64), 0, 0, cv::INTER_AREA);
  frames_.push_back(std::move(f));
}

VisualFeatures VisualFeatureAccumulator::Finish(double duration_s, double aspect) const {
  VisualFeatures out;
  out.vector.assign(kVisualFeatureDim, 0.0f);
  out.samples = int(frames_.size());
  if (frames_.empty()) return out;
  std::vector<const Frame*> order;
  for (const auto& f : frames_) order.push_back(&f);
  std::sort(order.begin(), order.end(), [](const Frame* a, const Frame* b) { return a->time_s < b->time_s; });

  float* v = out.vector.data();
  const float n = float(order.size());
  for (const Frame* f : order) {
    for (int i = 0; i < 12; ++i) v[i] += f->hue[i] / n;
    for (int i = 0; i < 4; ++i) v[12 + i] += f->sat[i] / n;
    for (int i = 0; i < 4; ++i) v[16 + i] += f->val[i] / n;
  }
  std::vector<double> colour, bright, contrast, edges, texture, motion, distance;
  int dark = 0;
  for (size_t i = 0; i < order.size(); ++i) {
    const Frame* f = order[i];
    colour.push_back(f->colourfulness);
    bright.push_back(f->brightness);
    contrast.push_back(f->contrast);
    edges.push_back(f->edges);
    texture.push_back(f->texture);
    dark += f->brightness < 0.05f;
    if (i > 0) {
      const Frame* p = order[i - 1];
      cv::Mat diff;
      cv::absdiff(f->thumbnail, p->thumbnail, diff);
      motion.push_back(cv::mean(diff)[0] / 255.0);
      const double d = cv::compareHist(p->hs_hist, f->hs_hist, cv::HISTCMP_BHATTACHARYYA);
      distance.push_back(d);
      out.cuts += d > kCutDistance;
    }
  }
  MeanStd(colour, &v[20], &v[21]);
  MeanStd(bright, &v[22], &v[23]);
  MeanStd(contrast, &v[24], &v[25]);
  MeanStd(edges, &v[26], &v[27]);
  MeanStd(texture, &v[28], &v[29]);
  MeanStd(motion, &v[30], &v[31]);
  out.cut_rate_per_min = duration_s > 0 ? out.cuts / (duration_s / 60.0) : 0.0;
  v[32] = float(out.cut_rate_per_min / 10.0);
  float distance_std;
  MeanStd(distance, &v[33], &distance_std);
  v[34] = aspect > 0 ? float(std::log(aspect)) : 0.0f;
  v[35] = float(dark) / n;
  out.brightness = v[22];
  out.colourfulness = v[20] * 100.0;
  out.motion = v[30];
  return out;
}

const std::vector<std::string>& VisualFeatureNames() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> n;
    for (int i = 0; i < 12; ++i) n.push_back("hue_hist[" + std::to_string(i) + "]");
    for (int i = 0; i < 4; ++i) n.push_back("saturation_hist[" + std::to_string(i) + "]");
    for (int i = 0; i < 4; ++i) n.push_back("value_hist[" + std::to_string(i) + "]");
    for (const char* s : {"colourfulness", "brightness", "contrast", "edge_density", "texture", "motion"}) {
      n.push_back(std::string(s) + "_mean");
      n.push_back(std::string(s) + "_std");
    }
    n.push_back("cut_rate");
    n.push_back("histogram_distance_mean");
    n.push_back("log_aspect_ratio");
    n.push_back("dark_frame_ratio");
    return n;
  }();
  return names;
}

}  // namespace mosaic::modalities
