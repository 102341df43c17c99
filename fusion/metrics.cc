#include "fusion/metrics.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>
#include <string>
#include <utility>

#include "fusion/random.h"

namespace mosaic::fusion {

RankingEvaluator::RankingEvaluator(std::vector<size_t> ks) : ks_(std::move(ks)) {
  for (size_t k : ks_) {
    if (k == 0) throw std::invalid_argument("RankingEvaluator: a cutoff K must be positive");
    max_k_ = std::max(max_k_, k);
  }
  recall_sum_.assign(ks_.size(), 0.0);
  ndcg_sum_.assign(ks_.size(), 0.0);
  last_recall_.assign(ks_.size(), std::nan(""));
}

void RankingEvaluator::AddUser(const std::vector<float>& scores,
                               const std::vector<uint32_t>& candidates,
                               const std::vector<uint32_t>& relevant) {
  for (uint32_t c : candidates) {
    if (c >= scores.size()) {
      throw std::invalid_argument("RankingEvaluator: candidate " + std::to_string(c) +
                                  " has no score (" + std::to_string(scores.size()) + " scores)");
    }
    if (std::isnan(scores[c])) {
      throw std::invalid_argument("RankingEvaluator: NaN score for item " + std::to_string(c));
    }
  }
  relevant_.assign(relevant.begin(), relevant.end());
  std::sort(relevant_.begin(), relevant_.end());
  relevant_.erase(std::unique(relevant_.begin(), relevant_.end()), relevant_.end());
  last_recall_.assign(ks_.size(), std::nan(""));
  if (relevant_.empty()) return;

  // Only the top max_k_ need ordering: partial_sort is O(n log K), not O(n log n).
  ranked_.assign(candidates.begin(), candidates.end());
  const size_t top = std::min(max_k_, ranked_.size());
  std::partial_sort(ranked_.begin(), ranked_.begin() + top, ranked_.end(),
                    [&scores](uint32_t x, uint32_t y) {
                      return scores[x] > scores[y] || (scores[x] == scores[y] && x < y);
                    });

  for (size_t s = 0; s < ks_.size(); ++s) {
    const size_t k = ks_[s];
    double hits = 0, dcg = 0, idcg = 0;
    for (size_t r = 0; r < std::min(k, top); ++r) {
      if (std::binary_search(relevant_.begin(), relevant_.end(), ranked_[r])) {
        hits += 1;
        dcg += 1.0 / std::log2(static_cast<double>(r) + 2.0);
      }
    }
    for (size_t r = 0; r < std::min(k, relevant_.size()); ++r) {
      idcg += 1.0 / std::log2(static_cast<double>(r) + 2.0);
    }
    last_recall_[s] = hits / static_cast<double>(relevant_.size());
    recall_sum_[s] += last_recall_[s];
    ndcg_sum_[s] += dcg / idcg;
  }
  ++users_;
}

size_t RankingEvaluator::Slot(size_t k) const {
  for (size_t s = 0; s < ks_.size(); ++s) {
    if (ks_[s] == k) return s;
  }
  throw std::invalid_argument("RankingEvaluator: cutoff " + std::to_string(k) + " not measured");
}

double RankingEvaluator::Recall(size_t k) const {
  const size_t s = Slot(k);
  return users_ == 0 ? 0.0 : recall_sum_[s] / static_cast<double>(users_);
}

double RankingEvaluator::LastRecall(size_t k) const { return last_recall_[Slot(k)]; }

double RankingEvaluator::Ndcg(size_t k) const {
  const size_t s = Slot(k);
  return users_ == 0 ? 0.0 : ndcg_sum_[s] / static_cast<double>(users_);
}

RankingMetrics RankingEvaluator::Result() const {
  RankingMetrics m;
  m.users = users_;
  const bool has10 = std::find(ks_.begin(), ks_.end(), size_t{10}) != ks_.end();
  const bool has20 = std::find(ks_.begin(), ks_.end(), size_t{20}) != ks_.end();
  if (has10) {
    m.recall10 = Recall(10);
    m.ndcg10 = Ndcg(10);
  }
  if (has20) {
    m.recall20 = Recall(20);
    m.ndcg20 = Ndcg(20);
  }
  return m;
}

double StudentT975(size_t df) {
  static constexpr double kTable[] = {12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
                                      2.201,  2.179, 2.160,         2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
                                      2.080,  2.074, 2.069,         2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042};
  if (df == 0) throw std::invalid_argument("StudentT975: no degrees of freedom (one run has no interval)");
  if (df <= 30) return kTable[df - 1];
  // Beyond the table: the Cornish-Fisher expansion's first terms around the normal quantile.
  const double z = 1.959964, n = static_cast<double>(df);
  return z + (z * z * z + z) / (4 * n) + (5 * std::pow(z, 5) + 16 * z * z * z + 3 * z) / (96 * n * n);
}

RatioInterval PairedBootstrapRatio(const std::vector<double>& a, const std::vector<double>& b, size_t resamples,
                                   uint64_t seed) {
  if (a.size() != b.size()) throw std::invalid_argument("PairedBootstrapRatio: the two sides differ in length");
  if (resamples == 0) throw std::invalid_argument("PairedBootstrapRatio: no resamples");
  std::vector<double> x, y;
  for (size_t u = 0; u < a.size(); ++u) {
    if (std::isnan(a[u]) || std::isnan(b[u])) continue;
    x.push_back(a[u]);
    y.push_back(b[u]);
  }
  if (x.empty()) throw std::invalid_argument("PairedBootstrapRatio: no user measured by both");
  RatioInterval out;
  out.users = x.size();
  const double sum_y = std::accumulate(y.begin(), y.end(), 0.0);
  out.ratio = sum_y == 0 ? std::nan("") : std::accumulate(x.begin(), x.end(), 0.0) / sum_y;
  std::vector<double> ratios;
  ratios.reserve(resamples);
  SplitMix64 rng(StreamSeed(seed, 0xB007, 0));
  for (size_t r = 0; r < resamples; ++r) {
    double sx = 0, sy = 0;
    for (size_t i = 0; i < x.size(); ++i) {
      const size_t pick = rng.Below(x.size());
      sx += x[pick];
      sy += y[pick];
    }
    if (sy > 0) ratios.push_back(sx / sy);
  }
  out.resamples = ratios.size();
  if (ratios.empty()) {
    out.low = out.high = std::nan("");
    return out;
  }
  std::sort(ratios.begin(), ratios.end());
  // The percentile interval, by the nearest-rank rule on the sorted ratios.
  auto at = [&](double q) { return ratios[std::min(ratios.size() - 1, size_t(q * double(ratios.size())))]; };
  out.low = at(0.025);
  out.high = at(0.975);
  return out;
}

namespace {

void CheckLabels(size_t n_scores, const std::vector<int>& labels, const char* who) {
  if (n_scores != labels.size()) {
    throw std::invalid_argument(std::string(who) + ": " + std::to_string(n_scores) +
                                " scores for " + std::to_string(labels.size()) + " labels");
  }
  for (int l : labels) {
    if (l != 0 && l != 1) {
      throw std::invalid_argument(std::string(who) + ": label " + std::to_string(l) +
                                  " is not 0 or 1");
    }
  }
}

// log(1 + e^u) without overflow.
double Softplus(double u) { return u > 0 ? u + std::log1p(std::exp(-u)) : std::log1p(std::exp(u)); }

double Sigmoid(double u) {
  if (u >= 0) return 1.0 / (1.0 + std::exp(-u));
  const double e = std::exp(u);
  return e / (1.0 + e);
}

}  // namespace

void RankingEvaluator::Merge(const RankingEvaluator& other) {
  if (other.ks_ != ks_) throw std::invalid_argument("RankingEvaluator::Merge: different cutoffs");
  for (size_t i = 0; i < ks_.size(); ++i) {
    recall_sum_[i] += other.recall_sum_[i];
    ndcg_sum_[i] += other.ndcg_sum_[i];
  }
  users_ += other.users_;
}

RankingEvaluator RankingEvaluator::Merge(const std::vector<RankingEvaluator>& parts) {
  if (parts.empty()) throw std::invalid_argument("RankingEvaluator::Merge: no parts");
  RankingEvaluator all = parts.front();
  for (size_t i = 1; i < parts.size(); ++i) all.Merge(parts[i]);
  return all;
}

double Auc(const std::vector<float>& scores, const std::vector<int>& labels) {
  CheckLabels(scores.size(), labels, "Auc");
  for (float s : scores) {
    if (std::isnan(s)) throw std::invalid_argument("Auc: NaN score");
  }
  std::vector<size_t> order(scores.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(),
            [&scores](size_t x, size_t y) { return scores[x] < scores[y]; });

  // Sum of the positives' 1-based ranks, a run of equal scores sharing its average rank.
  double positive_rank_sum = 0;
  size_t positives = 0;
  for (size_t i = 0; i < order.size();) {
    size_t j = i;
    size_t run_positives = 0;
    while (j < order.size() && scores[order[j]] == scores[order[i]]) {
      run_positives += static_cast<size_t>(labels[order[j]]);
      ++j;
    }
    const double average_rank = (static_cast<double>(i + 1) + static_cast<double>(j)) / 2.0;
    positive_rank_sum += average_rank * static_cast<double>(run_positives);
    positives += run_positives;
    i = j;
  }
  const size_t negatives = scores.size() - positives;
  if (positives == 0 || negatives == 0) {
    throw std::invalid_argument("Auc: needs at least one positive and one negative");
  }
  const double p = static_cast<double>(positives), n = static_cast<double>(negatives);
  return (positive_rank_sum - p * (p + 1) / 2) / (p * n);
}

double GroupAuc(const std::vector<float>& scores, const std::vector<int>& labels, const std::vector<uint32_t>& groups) {
  CheckLabels(scores.size(), labels, "GroupAuc");
  if (groups.size() != scores.size()) throw std::invalid_argument("GroupAuc: groups and scores differ in size");
  std::vector<size_t> order(scores.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&groups](size_t x, size_t y) { return groups[x] < groups[y]; });
  double weighted = 0, weight = 0;
  std::vector<float> s;
  std::vector<int> l;
  for (size_t i = 0; i < order.size();) {
    size_t j = i;
    s.clear();
    l.clear();
    int positives = 0;
    for (; j < order.size() && groups[order[j]] == groups[order[i]]; ++j) {
      s.push_back(scores[order[j]]);
      l.push_back(labels[order[j]]);
      positives += labels[order[j]];
    }
    if (positives > 0 && size_t(positives) < s.size()) {
      weighted += double(s.size()) * Auc(s, l);
      weight += double(s.size());
    }
    i = j;
  }
  if (weight == 0) throw std::invalid_argument("GroupAuc: no group has both a positive and a negative");
  return weighted / weight;
}

double F1(const std::vector<float>& probabilities, const std::vector<int>& labels,
          double threshold) {
  CheckLabels(probabilities.size(), labels, "F1");
  size_t tp = 0, fp = 0, fn = 0;
  for (size_t i = 0; i < labels.size(); ++i) {
    const bool predicted = static_cast<double>(probabilities[i]) >= threshold;
    if (predicted && labels[i] == 1) ++tp;
    if (predicted && labels[i] == 0) ++fp;
    if (!predicted && labels[i] == 1) ++fn;
  }
  const size_t denominator = 2 * tp + fp + fn;
  return denominator == 0 ? 0.0 : 2.0 * static_cast<double>(tp) / static_cast<double>(denominator);
}

void PlattScaler::Fit(const std::vector<float>& scores, const std::vector<int>& labels) {
  CheckLabels(scores.size(), labels, "PlattScaler");
  if (scores.empty()) throw std::invalid_argument("PlattScaler: no examples");
  const size_t n = scores.size();
  double mean = 0, positives = 0;
  for (size_t i = 0; i < n; ++i) {
    if (!std::isfinite(scores[i])) throw std::invalid_argument("PlattScaler: non-finite score");
    mean += scores[i];
    positives += labels[i];
  }
  mean /= static_cast<double>(n);
  double var = 0;
  for (float s : scores) var += (s - mean) * (s - mean);
  const double sd = std::sqrt(var / static_cast<double>(n));
  const double negatives = static_cast<double>(n) - positives;
  const double hi = (positives + 1) / (positives + 2);  // Platt's smoothed targets
  const double lo = 1 / (negatives + 2);
  const double prior = (positives + 1) / (static_cast<double>(n) + 2);

  if (!(sd > 0)) {  // all scores equal: nothing to learn but the base rate
    a = 0;
    b = std::log(prior / (1 - prior));
    return;
  }

  std::vector<double> z(n), t(n);
  for (size_t i = 0; i < n; ++i) {
    z[i] = (scores[i] - mean) / sd;
    t[i] = labels[i] == 1 ? hi : lo;
  }
  auto loss = [&](double A, double B) {
    double sum = 0;
    for (size_t i = 0; i < n; ++i) {
      const double u = A * z[i] + B;
      sum += Softplus(u) - t[i] * u;
    }
    return sum;
  };

  // Newton on (A, B) for p = sigmoid(A z + B); the tiny ridge keeps the Hessian invertible.
  constexpr double kRidge = 1e-12;
  double A = 0, B = std::log(prior / (1 - prior));
  double f = loss(A, B);
  for (int iter = 0; iter < 100; ++iter) {
    double ga = 0, gb = 0, haa = kRidge, hab = 0, hbb = kRidge;
    for (size_t i = 0; i < n; ++i) {
      const double p = Sigmoid(A * z[i] + B);
      const double d = p - t[i];
      const double w = p * (1 - p);
      ga += d * z[i];
      gb += d;
      haa += w * z[i] * z[i];
      hab += w * z[i];
      hbb += w;
    }
    if (std::fabs(ga) < 1e-9 * static_cast<double>(n) && std::fabs(gb) < 1e-9 * static_cast<double>(n)) {
      break;
    }
    const double det = haa * hbb - hab * hab;
    if (!(det > 0)) break;
    const double da = -(hbb * ga - hab * gb) / det;
    const double db = -(-hab * ga + haa * gb) / det;
    const double slope = ga * da + gb * db;  // directional derivative, < 0 for a descent step
    double step = 1;
    bool moved = false;
    while (step >= 1e-10) {
      const double na = A + step * da, nb = B + step * db;
      const double nf = loss(na, nb);
      if (nf <= f + 1e-4 * step * slope) {
        A = na;
        B = nb;
        f = nf;
        moved = true;
        break;
      }
      step /= 2;
    }
    if (!moved) break;
  }
  a = A / sd;
  b = B - A * mean / sd;
}

float PlattScaler::operator()(float score) const {
  return static_cast<float>(Sigmoid(a * static_cast<double>(score) + b));
}

}  // namespace mosaic::fusion
