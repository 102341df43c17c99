// Request counts and latency histograms per endpoint, in Prometheus text format (GET /metrics).
#pragma once

#include <array>
#include <cstdint>
#include <cstdio>
#include <map>
#include <mutex>
#include <string>

namespace mosaic::jobs::http {

// Series are keyed by endpoint label (jobs/http/routes.h: a known path or "other"), so a client cannot add any.
class Metrics {
 public:
  static constexpr std::array<double, 13> kBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                      0.1,    0.25,  0.5,    1,     2.5,  5};
  void Record(const std::string& endpoint, int code, double seconds) {
    std::lock_guard<std::mutex> lock(mu_);
    Series& s = series_[endpoint];
    s.codes[code]++;
    for (size_t b = 0; b < kBuckets.size(); ++b) {
      if (seconds <= kBuckets[b]) s.buckets[b]++;
    }
    s.count++;
    s.sum += seconds;
  }
  std::string Text(uint64_t version, int64_t items, int64_t placed) const {
    std::lock_guard<std::mutex> lock(mu_);
    std::string out;
    out += "# HELP mosaic_requests_total HTTP requests by endpoint and status code.\n";
    out += "# TYPE mosaic_requests_total counter\n";
    for (const auto& [endpoint, s] : series_) {
      for (const auto& [code, n] : s.codes) {
        out += "mosaic_requests_total{endpoint=\"" + endpoint + "\",code=\"" + std::to_string(code) + "\"} " +
               std::to_string(n) + "\n";
      }
    }
    out += "# HELP mosaic_request_duration_seconds Time to answer a request, by endpoint.\n";
    out += "# TYPE mosaic_request_duration_seconds histogram\n";
    char number[64];
    for (const auto& [endpoint, s] : series_) {
      const std::string label = "endpoint=\"" + endpoint + "\"";
      for (size_t b = 0; b < kBuckets.size(); ++b) {
        std::snprintf(number, sizeof number, "%g", kBuckets[b]);
        out += "mosaic_request_duration_seconds_bucket{" + label + ",le=\"" + number + "\"} " +
               std::to_string(s.buckets[b]) + "\n";
      }
      out += "mosaic_request_duration_seconds_bucket{" + label + ",le=\"+Inf\"} " + std::to_string(s.count) + "\n";
      std::snprintf(number, sizeof number, "%.9g", s.sum);
      out += "mosaic_request_duration_seconds_sum{" + label + "} " + number + "\n";
      out += "mosaic_request_duration_seconds_count{" + label + "} " + std::to_string(s.count) + "\n";
    }
    out += "# HELP mosaic_model_version The model version queries use (0: none yet).\n";
    out += "# TYPE mosaic_model_version gauge\nmosaic_model_version " + std::to_string(version) + "\n";
    out += "# HELP mosaic_items Items queries can return.\n";
    out += "# TYPE mosaic_items gauge\nmosaic_items " + std::to_string(items) + "\n";
    out += "# HELP mosaic_placed_items Items placed after the current version was trained.\n";
    out += "# TYPE mosaic_placed_items gauge\nmosaic_placed_items " + std::to_string(placed) + "\n";
    return out;
  }

 private:
  struct Series {
    std::map<int, uint64_t> codes;
    std::array<uint64_t, kBuckets.size()> buckets{};
    uint64_t count = 0;
    double sum = 0;
  };
  mutable std::mutex mu_;
  std::map<std::string, Series> series_;
};

}  // namespace mosaic::jobs::http
