// Text-encoder throughput: reads texts (one per line), encodes them all in length-bucketed
// batches, then times single-text calls, and prints one JSON line:
//   {"texts":N, "batched_s":..., "texts_per_s":..., "single_p50_ms":..., "single_p99_ms":...}
//
//   text_bench MODEL_DIR TEXTS_FILE [SINGLE_SAMPLES]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "encoders/text_encoder.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: text_bench MODEL_DIR TEXTS_FILE [SINGLE_SAMPLES]\n");
    return 2;
  }
  std::ifstream in(argv[2]);
  if (!in) {
    std::fprintf(stderr, "text_bench: cannot read %s\n", argv[2]);
    return 1;
  }
  std::vector<std::string> texts;
  for (std::string line; std::getline(in, line);) texts.push_back(line);
  const size_t samples = argc > 3 ? std::stoul(argv[3]) : 300;
  std::unique_ptr<mosaic::encoders::TextEncoder> encoder;
  const mosaic::Status loaded = mosaic::encoders::TextEncoder::Load(argv[1], "cpu", &encoder);
  if (!loaded.ok()) {
    std::fprintf(stderr, "text_bench: %s\n", loaded.ToString().c_str());
    return 1;
  }
  try {
    using Clock = std::chrono::steady_clock;
    encoder->Encode({"warm up"});
    const auto t0 = Clock::now();
    const auto vectors = encoder->Encode(texts);
    const double batched = std::chrono::duration<double>(Clock::now() - t0).count();
    std::vector<double> single_ms;
    for (size_t i = 0; i < std::min(samples, texts.size()); ++i) {
      const auto s0 = Clock::now();
      encoder->Encode({texts[(i * 7919) % texts.size()]});
      single_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - s0).count());
    }
    std::sort(single_ms.begin(), single_ms.end());
    auto pct = [&](double p) { return single_ms.empty() ? 0.0 : single_ms[size_t(p * double(single_ms.size() - 1))]; };
    std::printf("{\"texts\":%zu,\"batched_s\":%.3f,\"texts_per_s\":%.1f,\"single_p50_ms\":%.3f,\"single_p99_ms\":%.3f}\n",
                vectors.size(), batched, double(vectors.size()) / batched, pct(0.5), pct(0.99));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "text_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
