#include "fusion/explore.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace mosaic::fusion {

namespace {

double Logit(double p) { return std::log(p / (1.0 - p)); }

double Sigmoid(double z) { return z >= 0 ? 1.0 / (1.0 + std::exp(-z)) : std::exp(z) / (1.0 + std::exp(z)); }

// Impressions without a play (plays may exceed impressions: plays that no shown list led to).
double Misses(const ExploreCandidate& c) { return c.impressions > c.plays ? double(c.impressions - c.plays) : 0.0; }

// A Gamma(shape, 1) draw; shape > 0.
double DrawGamma(double shape, std::mt19937_64* rng) { return std::gamma_distribution<double>(shape, 1.0)(*rng); }

}  // namespace

double PlayCalibration::Probability(double score) const { return Sigmoid(slope * score + intercept); }

PlayCalibration FitPlayCalibration(const std::vector<float>& played, const std::vector<float>& unplayed,
                                   double base_rate) {
  const double rate = std::clamp(base_rate, 1e-9, 1.0 - 1e-9);
  if (played.empty() || unplayed.empty() || !(base_rate > 0 && base_rate < 1)) return {0.0, Logit(rate)};
  // Standardise so that Newton starts near the optimum whatever the scores' scale.
  const size_t n = played.size() + unplayed.size();
  double mean = 0, var = 0;
  for (float s : played) mean += s;
  for (float s : unplayed) mean += s;
  mean /= double(n);
  for (float s : played) var += (s - mean) * (s - mean);
  for (float s : unplayed) var += (s - mean) * (s - mean);
  const double sd = std::sqrt(var / double(n));
  if (!(sd > 0)) return {0.0, Logit(rate)};

  // Logistic regression on (z, label), z = (s - mean) / sd, with a small ridge on the slope so that
  // separable samples stay finite. Newton on two parameters: a 2x2 solve per step.
  double a = 0, b = 0;
  for (int step = 0; step < 50; ++step) {
    double g_a = -1e-6 * a, g_b = 0, h_aa = 1e-6, h_ab = 0, h_bb = 0;
    auto add = [&](float s, double label) {
      const double z = (s - mean) / sd, p = Sigmoid(a * z + b), w = p * (1 - p);
      g_a += (label - p) * z;
      g_b += label - p;
      h_aa += w * z * z;
      h_ab += w * z;
      h_bb += w;
    };
    for (float s : played) add(s, 1.0);
    for (float s : unplayed) add(s, 0.0);
    const double det = h_aa * h_bb - h_ab * h_ab;
    if (!(det > 0)) break;
    const double da = (h_bb * g_a - h_ab * g_b) / det, db = (h_aa * g_b - h_ab * g_a) / det;
    a += da;
    b += db;
    if (std::abs(da) + std::abs(db) < 1e-10) break;
  }
  // Prior correction: the sample holds played pairs at share pi, the population at `rate`.
  const double sample_rate = double(played.size()) / double(n);
  b += Logit(rate) - Logit(sample_rate);
  return {a / sd, b - a * mean / sd};
}

double PosteriorMean(const ExploreCandidate& c, const ExploreSettings& settings) {
  const double p0 = std::clamp(c.prior, 1e-6, 1.0 - 1e-6);
  const double n0 = std::max(settings.prior_strength, 1e-6);
  return (n0 * p0 + double(c.plays)) / (n0 + double(c.plays) + Misses(c));
}

void KeepMostPromising(size_t most, const ExploreSettings& settings, std::vector<ExploreCandidate>* candidates) {
  if (candidates->size() <= most) return;
  std::vector<double> mean(candidates->size());
  for (size_t j = 0; j < mean.size(); ++j) mean[j] = PosteriorMean((*candidates)[j], settings);
  std::vector<size_t> order(candidates->size());
  std::iota(order.begin(), order.end(), size_t(0));
  std::nth_element(order.begin(), order.begin() + long(most), order.end(),
                   [&](size_t a, size_t b) { return mean[a] > mean[b]; });
  std::vector<ExploreCandidate> kept;
  kept.reserve(most);
  for (size_t j = 0; j < most; ++j) kept.push_back((*candidates)[order[j]]);
  *candidates = std::move(kept);
}

double DrawPlayProbability(const ExploreCandidate& c, const ExploreSettings& settings, std::mt19937_64* rng) {
  const double p0 = std::clamp(c.prior, 1e-6, 1.0 - 1e-6);
  const double n0 = std::max(settings.prior_strength, 1e-6);
  const double x = DrawGamma(n0 * p0 + double(c.plays), rng);
  const double y = DrawGamma(n0 * (1 - p0) + Misses(c), rng);
  return x + y > 0 ? x / (x + y) : p0;
}

std::vector<ListEntry> MergeExplored(const std::vector<double>& greedy, const std::vector<ExploreCandidate>& candidates,
                                     size_t slots, const ExploreSettings& settings, std::mt19937_64* rng) {
  std::vector<ListEntry> list;
  for (size_t i = 0; i < greedy.size(); ++i) list.push_back({false, i, greedy[i]});
  if (slots == 0 || candidates.empty() || greedy.empty()) return list;
  std::vector<ListEntry> draws;
  draws.reserve(candidates.size());
  for (size_t j = 0; j < candidates.size(); ++j) draws.push_back({true, j, DrawPlayProbability(candidates[j], settings, rng)});
  const size_t best = std::min({slots, draws.size(), greedy.size()});
  std::partial_sort(draws.begin(), draws.begin() + long(best), draws.end(),
                    [](const ListEntry& x, const ListEntry& y) { return x.value > y.value; });
  size_t taken = 0;
  while (taken < best && draws[taken].value > list[list.size() - 1 - taken].value) ++taken;
  list.resize(list.size() - taken);
  list.insert(list.end(), draws.begin(), draws.begin() + long(taken));
  std::stable_sort(list.begin(), list.end(), [](const ListEntry& x, const ListEntry& y) { return x.value > y.value; });
  return list;
}

}  // namespace mosaic::fusion
