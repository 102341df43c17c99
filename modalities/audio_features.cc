// Audio features: see audio_features.h. One pass over the frames computes the per-frame
// quantities into flat arrays (no allocation per frame, one FFT plan per call); statistics,
// MFCCs, onsets and tempo are computed from those arrays afterwards.
#include "modalities/audio_features.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <opencv2/core.hpp>
#include <opencv2/core/hal/hal.hpp>

extern "C" {
#include <libavutil/mem.h>
#include <libavutil/tx.h>
}

namespace mosaic::modalities {
namespace {

constexpr int kWindow = 400;                 // 25 ms
constexpr int kHop = 160;                    // 10 ms
constexpr int kFftSize = 512;
constexpr int kBins = kFftSize / 2 + 1;      // 257
constexpr int kLanes = 8;                    // independent partial sums, for the vectoriser
constexpr int kPaddedBins = (kBins + kLanes - 1) / kLanes * kLanes;  // 264, the pad holding zeros
static_assert(kWindow % kLanes == 0, "window in lanes");
constexpr int kMelBands = 64;
constexpr int kMfcc = 13;
constexpr double kFrameRate = double(kAudioSampleRate) / kHop;  // 100 frames per second
constexpr double kBinHz = double(kAudioSampleRate) / kFftSize;  // 31.25 Hz
constexpr double kNyquistHz = kAudioSampleRate / 2.0;           // 8000 Hz, the scale of the Hz features
constexpr double kPi = 3.14159265358979323846;
constexpr double kLn2 = 0.69314718055994530942;
constexpr float kLogMelFloor = 1e-6f;
constexpr double kRmsFloor = 1e-10;
constexpr double kSilenceDb = -60.0;
constexpr float kFlatnessFloor = 1e-10f;     // power floor for the flatness means (librosa's amin)
constexpr double kRolloffShare = 0.85;
constexpr int kOnsetMinGapFrames = 5;        // 50 ms
constexpr double kOnsetThresholdStd = 1.0;
// Onset strength (summed positive log-mel rises, natural-log units) that any onset must reach,
// and the envelope spread below which there is no rhythm to measure: a steady tone's
// frame-to-hop phase ripple (envelope std ~1.4, peaks ~4) and a codec's frame-boundary noise
// stay under both, while music's envelopes spread an order of magnitude wider (std ~30 on the
// neverball tracks).
constexpr double kMinOnsetStrength = 8.0;
constexpr double kMinEnvelopeStd = 2.5;
constexpr double kMinTempoBpm = 40, kMaxTempoBpm = 240, kPriorBpm = 120, kPriorOctaves = 1;
constexpr double kMinTempoDurationS = 2.0;
// No tempo is reported below a confidence of kMinTempoConfidence, nor below
// kNoiseTempoConfidence / sqrt(frames): white noise's confidence falls as 1 / sqrt(frames),
// averaging about 1.7 / sqrt(frames) and staying under 3.9 / sqrt(frames) in 750 trials of
// 2 to 30 s (the threshold is 0.28 for 2 s of audio, 0.13 for 10 s, 0.1 from 16 s on).
constexpr double kMinTempoConfidence = 0.1;
constexpr double kNoiseTempoConfidence = 4.0;
// Samples are clipped to this magnitude when the input must be cleaned (see below).
constexpr float kMaxSample = 1e6f;

// Per-frame scalar features, stored kScalarCount per frame.
enum Scalar { kCentroid, kBandwidth, kRolloff, kFlux, kFlatness, kZcr, kRmsDb, kScalarCount };

// Vector layout.
constexpr int kLogMelMeanAt = 0, kLogMelStdAt = 64, kMfccMeanAt = 128, kMfccStdAt = 141;
constexpr int kCentroidAt = 154, kBandwidthAt = 156, kRolloffAt = 158, kFluxAt = 160, kFlatnessAt = 162;
constexpr int kZcrAt = 164, kRmsAt = 166, kSilenceAt = 168, kOnsetRateAt = 169, kTempoAt = 170;
constexpr int kTempoConfidenceAt = 171, kDurationAt = 172;
static_assert(kDurationAt + 1 == kAudioFeatureDim, "vector layout");

double HzToMel(double hz) { return 2595.0 * std::log10(1.0 + hz / 700.0); }
double MelToHz(double mel) { return 700.0 * (std::pow(10.0, mel / 2595.0) - 1.0); }

// Immutable tables shared by every call (built once, thread-safely, on first use).
struct Tables {
  std::array<float, kWindow> window;          // periodic Hann
  std::array<float, kPaddedBins> bin_hz{};  // 0 in the pad
  struct Filter {
    int first = 0;                            // first FFT bin with a nonzero weight
    int count = 0;                            // number of consecutive nonzero weights
    int offset = 0;                           // where they start in `weights`
  };
  std::array<Filter, kMelBands> filters;
  std::vector<float> weights;

  Tables() {
    for (int i = 0; i < kWindow; ++i) {
      window[i] = float(0.5 - 0.5 * std::cos(2.0 * kPi * i / kWindow));
    }
    for (int k = 0; k < kBins; ++k) bin_hz[k] = float(k * kBinHz);
    // HTK mel scale, kMelBands triangles between kMelBands + 2 equally spaced mel points,
    // each scaled to unit area (Slaney normalisation: 2 / width in Hz).
    std::array<double, kMelBands + 2> edge_hz;
    const double mel_lo = HzToMel(0), mel_hi = HzToMel(kNyquistHz);
    for (int i = 0; i < kMelBands + 2; ++i) {
      edge_hz[i] = MelToHz(mel_lo + (mel_hi - mel_lo) * i / (kMelBands + 1));
    }
    for (int m = 0; m < kMelBands; ++m) {
      const double lo = edge_hz[m], mid = edge_hz[m + 1], hi = edge_hz[m + 2];
      const double area_norm = 2.0 / (hi - lo);
      Filter& f = filters[m];
      f.offset = int(weights.size());
      for (int k = 0; k < kBins; ++k) {
        const double hz = k * kBinHz;
        const double w = std::max(0.0, std::min((hz - lo) / (mid - lo), (hi - hz) / (hi - mid)));
        if (w <= 0) continue;
        if (f.count == 0) f.first = k;
        // Nonzero weights of a triangle are consecutive bins.
        weights.push_back(float(w * area_norm));
        ++f.count;
      }
      // Every band is at least a bin wide (band 0 spans 0..56 Hz, the bins are 31.25 Hz apart).
      if (f.count == 0) std::abort();
    }
  }
};

const Tables& GetTables() {
  static const Tables tables;
  return tables;
}

struct AvFree {
  void operator()(float* p) const { av_free(p); }
};
using AvFloats = std::unique_ptr<float[], AvFree>;

AvFloats AllocFloats(size_t n) {
  AvFloats p(static_cast<float*>(av_malloc(n * sizeof(float))));
  if (!p) throw std::bad_alloc();
  std::memset(p.get(), 0, n * sizeof(float));
  return p;
}

// A forward 512-point real FFT plan.
class RealFft {
 public:
  RealFft() {
    const float scale = 1.0f;
    if (av_tx_init(&ctx_, &fn_, AV_TX_FLOAT_RDFT, /*inv=*/0, kFftSize, &scale, 0) < 0 || !ctx_) {
      throw std::bad_alloc();
    }
  }
  ~RealFft() { av_tx_uninit(&ctx_); }
  RealFft(const RealFft&) = delete;
  RealFft& operator=(const RealFft&) = delete;

  // in: kFftSize floats; out: kBins interleaved complex values (2 * kBins floats).
  void Run(float* in, float* out) { fn_(ctx_, out, in, sizeof(float)); }

 private:
  AVTXContext* ctx_ = nullptr;
  av_tx_fn fn_ = nullptr;
};

// Mean and population standard deviation of `cols` columns of a row-major table with `stride`
// floats per row, over the rows listed in `rows` (0 when none), written to mean[] and sd[].
void ColumnStats(const float* data, int stride, int cols, const std::vector<int>& rows, double* mean, double* sd) {
  std::fill(mean, mean + cols, 0.0);
  std::fill(sd, sd + cols, 0.0);
  if (rows.empty()) return;
  for (int r : rows) {
    const float* row = data + size_t(r) * stride;
    for (int c = 0; c < cols; ++c) mean[c] += row[c];
  }
  for (int c = 0; c < cols; ++c) mean[c] /= double(rows.size());
  for (int r : rows) {
    const float* row = data + size_t(r) * stride;
    for (int c = 0; c < cols; ++c) {
      const double d = row[c] - mean[c];
      sd[c] += d * d;
    }
  }
  for (int c = 0; c < cols; ++c) sd[c] = std::sqrt(sd[c] / double(rows.size()));
}

// Number of peaks of `env` above mean + kOnsetThresholdStd * std, at least kOnsetMinGapFrames
// apart (of two closer peaks the higher one is kept).
int CountOnsets(const std::vector<float>& env) {
  const int n = int(env.size());
  if (n < 2) return 0;
  double mean = 0, var = 0;
  for (float v : env) mean += v;
  mean /= n;
  for (float v : env) var += (v - mean) * (v - mean);
  const double threshold = std::max(mean + kOnsetThresholdStd * std::sqrt(var / n), kMinOnsetStrength);
  int count = 0, last = -1;
  for (int t = 1; t < n; ++t) {
    const float v = env[t];
    if (!(v > threshold) || !(v > env[t - 1]) || (t + 1 < n && v < env[t + 1])) continue;
    if (last >= 0 && t - last < kOnsetMinGapFrames) {
      if (v > env[last]) last = t;  // replaces the previous, lower peak
      continue;
    }
    last = t;
    ++count;
  }
  return count;
}

// Tempo from the autocorrelation of the mean-removed onset envelope. Each lag L in 40..240 BPM
// is scored by the autocorrelation summed over L-1..L+1, weighted by a log-normal prior around
// kPriorBpm: a beat period that falls between two frame lags splits its peak between them,
// and the sum keeps that from losing against the unsplit peak at twice the period (an octave
// error). The period is then refined by parabolic interpolation of the weighted autocorrelation
// around its highest lag next to the winner; the confidence is that interpolated peak over the
// zero-lag autocorrelation. Below kMinTempoConfidence, or below what white noise of the same
// length reaches, no tempo is reported (the confidence is still returned).
void EstimateTempo(const std::vector<float>& env, double duration_s, double* bpm, double* confidence) {
  *bpm = 0;
  *confidence = 0;
  const int n = int(env.size());
  const int min_lag = int(std::floor(kFrameRate * 60.0 / kMaxTempoBpm));  // 25
  const int max_lag = int(std::ceil(kFrameRate * 60.0 / kMinTempoBpm));   // 150
  if (duration_s < kMinTempoDurationS || n < max_lag + 4) return;
  std::vector<double> x(env.begin(), env.end());
  double mean = 0;
  for (double v : x) mean += v;
  mean /= n;
  for (double& v : x) v -= mean;
  auto autocorrelation = [&](int lag) {
    return cv::Mat(1, n - lag, CV_64F, x.data()).dot(cv::Mat(1, n - lag, CV_64F, x.data() + lag));
  };
  const double r0 = autocorrelation(0);
  if (!(r0 > kMinEnvelopeStd * kMinEnvelopeStd * n)) return;  // a (nearly) flat envelope has no beat
  // y: prior-weighted, normalised autocorrelation at lags min_lag - 2 .. max_lag + 2.
  std::vector<double> y(max_lag + 3, 0.0);
  for (int lag = min_lag - 2; lag <= max_lag + 2; ++lag) {
    const double octaves = std::log2(kFrameRate * 60.0 / lag / kPriorBpm) / kPriorOctaves;
    y[lag] = std::exp(-0.5 * octaves * octaves) * autocorrelation(lag) / r0;
  }
  int chosen = min_lag;
  double chosen_score = -1e300;
  for (int lag = min_lag; lag <= max_lag; ++lag) {
    const double score = y[lag - 1] + y[lag] + y[lag + 1];
    if (score > chosen_score) {
      chosen_score = score;
      chosen = lag;
    }
  }
  int best = chosen;
  if (y[chosen - 1] > y[best]) best = chosen - 1;
  if (y[chosen + 1] > y[best]) best = chosen + 1;
  if (!(y[best] > 0)) return;
  const double a = y[best - 1], b = y[best], c = y[best + 1];
  const double den = a - 2 * b + c;
  double delta = 0, peak = b;
  if (den < 0) {
    delta = std::clamp(0.5 * (a - c) / den, -0.5, 0.5);
    peak = b - 0.25 * (a - c) * delta;
  }
  *confidence = std::clamp(peak, 0.0, 1.0);
  if (*confidence < std::max(kMinTempoConfidence, kNoiseTempoConfidence / std::sqrt(double(n)))) return;
  *bpm = std::clamp(kFrameRate * 60.0 / (best + delta), kMinTempoBpm, kMaxTempoBpm);
}

template <typename T>
double LaneSum(const T (&lanes)[kLanes]) {
  double sum = 0;
  for (T v : lanes) sum += v;
  return sum;
}

// The analysis proper; the result is not finite when a sample is not (or is absurdly large).
AudioFeatures Analyse(const float* samples, size_t count) {
  AudioFeatures out;
  out.vector.assign(kAudioFeatureDim, 0.0f);
  out.duration_s = double(count) / kAudioSampleRate;
  out.silence_ratio = 1;
  out.vector[kSilenceAt] = 1;
  out.vector[kDurationAt] = float(std::log1p(out.duration_s));
  if (samples == nullptr || count < size_t(kWindow)) return out;

  const Tables& tables = GetTables();
  const int frames = int(1 + (count - kWindow) / kHop);
  cv::Mat logmel(frames, kMelBands, CV_32F);
  std::vector<float> scalars(size_t(frames) * kScalarCount);
  std::vector<int> spectral_frames, all_frames(frames);
  spectral_frames.reserve(frames);

  RealFft fft;
  AvFloats fft_in = AllocFloats(kFftSize);
  AvFloats fft_out = AllocFloats(2 * kPaddedBins);
  alignas(32) std::array<float, kPaddedBins> power, magnitude, norm_prev;
  norm_prev.fill(0);

  for (int t = 0; t < frames; ++t) {
    all_frames[t] = t;
    const float* x = samples + size_t(t) * kHop;
    float* s = &scalars[size_t(t) * kScalarCount];

    // Time domain: energy and zero crossings (a crossing is a change of `sample < 0`).
    float energy[kLanes] = {};
    int crossings[kLanes] = {};
    for (int i = 0; i < kWindow; i += kLanes) {
      for (int j = 0; j < kLanes; ++j) energy[j] += x[i + j] * x[i + j];
    }
    for (int i = 0; i + kLanes < kWindow; i += kLanes) {
      for (int j = 0; j < kLanes; ++j) crossings[j] += int((x[i + j] < 0) != (x[i + j + 1] < 0));
    }
    for (int i = kWindow - kLanes; i + 1 < kWindow; ++i) crossings[0] += int((x[i] < 0) != (x[i + 1] < 0));
    const double rms_db = 20.0 * std::log10(std::sqrt(LaneSum(energy) / kWindow) + kRmsFloor);
    s[kRmsDb] = float(rms_db);
    s[kZcr] = float(LaneSum(crossings)) / kWindow;
    if (!(rms_db < kSilenceDb)) spectral_frames.push_back(t);

    // Power and magnitude spectra of the Hann-windowed, zero-padded frame (bins kBins ..
    // kPaddedBins - 1 stay 0).
    // (Blocks of kLanes computed into a local array, then stored: with the stores after all the
    // loads, GCC's -O2 vectorises without having to prove that the buffers never overlap.)
    float* in = fft_in.get();
    for (int i = 0; i < kWindow; i += kLanes) {
      float block[kLanes];
      for (int j = 0; j < kLanes; ++j) block[j] = x[i + j] * tables.window[i + j];
      std::copy(block, block + kLanes, in + i);
    }
    std::fill(in + kWindow, in + kFftSize, 0.0f);
    float* spec = fft_out.get();
    fft.Run(in, spec);
    std::fill(spec + 2 * kBins, spec + 2 * kPaddedBins, 0.0f);
    for (int k = 0; k < kPaddedBins; k += kLanes) {
      float block[kLanes];
      for (int j = 0; j < kLanes; ++j) {
        const float re = spec[2 * (k + j)], im = spec[2 * (k + j) + 1];
        block[j] = re * re + im * im;
      }
      std::copy(block, block + kLanes, power.data() + k);
    }
    cv::hal::sqrt32f(power.data(), magnitude.data(), kPaddedBins);  // vectorised, unlike std::sqrt

    // Mel energies through the sparse filters (their logs are taken for all frames at once below).
    float* mel_row = logmel.ptr<float>(t);
    for (int m = 0; m < kMelBands; ++m) {
      const Tables::Filter& f = tables.filters[m];
      const float* w = tables.weights.data() + f.offset;
      const float* p = &power[f.first];
      float even = 0, odd = 0;  // two chains, half the latency
      int j = 0;
      for (; j + 1 < f.count; j += 2) {
        even += w[j] * p[j];
        odd += w[j + 1] * p[j + 1];
      }
      if (j < f.count) even += w[j] * p[j];
      mel_row[m] = even + odd + kLogMelFloor;
    }

    // Centroid and bandwidth of the magnitude spectrum (two passes, for an exact bandwidth).
    float m0[kLanes] = {}, m1[kLanes] = {};
    for (int k = 0; k < kPaddedBins; k += kLanes) {
      for (int j = 0; j < kLanes; ++j) {
        m0[j] += magnitude[k + j];
        m1[j] += magnitude[k + j] * tables.bin_hz[k + j];
      }
    }
    const double mag_sum = LaneSum(m0);
    const float centroid = mag_sum > 0 ? float(LaneSum(m1) / mag_sum) : 0.0f;
    float m2[kLanes] = {};
    for (int k = 0; k < kPaddedBins; k += kLanes) {
      for (int j = 0; j < kLanes; ++j) {
        const float d = tables.bin_hz[k + j] - centroid;
        m2[j] += magnitude[k + j] * d * d;
      }
    }
    s[kCentroid] = centroid;
    s[kBandwidth] = mag_sum > 0 ? float(std::sqrt(LaneSum(m2) / mag_sum)) : 0.0f;

    // Roll-off: the first bin where the cumulative power reaches kRolloffShare of the total,
    // found block by block (the sums of kLanes bins) and then bin by bin in that block.
    float block_power[kPaddedBins / kLanes];
    float power_sum = 0;
    for (int b = 0; b < kPaddedBins / kLanes; ++b) {
      float sum = 0;
      for (int j = 0; j < kLanes; ++j) sum += power[b * kLanes + j];
      block_power[b] = sum;
    }
    for (float sum : block_power) power_sum += sum;
    float rolloff = 0;
    if (power_sum > 0) {
      const float target = float(kRolloffShare) * power_sum;
      float cumulative = 0;
      int b = 0;
      while (b + 1 < kPaddedBins / kLanes && cumulative + block_power[b] < target) cumulative += block_power[b++];
      int k = b * kLanes;
      while (k + 1 < std::min(b * kLanes + kLanes, kBins) && (cumulative += power[k]) < target) ++k;
      rolloff = tables.bin_hz[k];
    }
    s[kRolloff] = rolloff;

    // Flatness: geometric / arithmetic mean of the floored power. ln p = e ln 2 + ln mantissa
    // with p = mantissa * 2^e, mantissa in [1, 2); 32 mantissas multiply to under 2^32, so
    // each lane keeps one running product and the frame needs one log, not one per bin.
    int exponents[kLanes] = {};
    float mantissas[kLanes] = {1, 1, 1, 1, 1, 1, 1, 1};
    float floored_sum[kLanes] = {};
    static_assert((kBins - 1) % kLanes == 0 && (kBins - 1) / kLanes <= 32, "flatness lanes");
    for (int k = 0; k < kBins - 1; k += kLanes) {
      for (int j = 0; j < kLanes; ++j) {
        const float p = std::max(power[k + j], kFlatnessFloor);
        uint32_t bits;
        std::memcpy(&bits, &p, sizeof bits);
        exponents[j] += int(bits >> 23) - 127;
        bits = (bits & 0x007fffffu) | 0x3f800000u;
        float mantissa;
        std::memcpy(&mantissa, &bits, sizeof mantissa);
        mantissas[j] *= mantissa;
        floored_sum[j] += p;
      }
    }
    const float last = std::max(power[kBins - 1], kFlatnessFloor);
    double mantissa_product = 1;
    for (int j = 0; j < kLanes; ++j) mantissa_product *= mantissas[j];
    const double log_sum = LaneSum(exponents) * kLn2 + std::log(mantissa_product) + std::log(double(last));
    const double arithmetic = (LaneSum(floored_sum) + last) / kBins;
    s[kFlatness] = float(std::min(1.0, std::exp(log_sum / kBins) / arithmetic));

    // Flux: L2 norm of the positive change of the L1-normalised magnitude spectrum.
    const float inv = mag_sum > 0 ? float(1.0 / mag_sum) : 0.0f;
    float flux[kLanes] = {};
    for (int k = 0; k < kPaddedBins; k += kLanes) {
      for (int j = 0; j < kLanes; ++j) {
        const float normalised = magnitude[k + j] * inv;
        const float d = normalised - norm_prev[k + j];
        const float rise = 0.5f * (d + std::fabs(d));  // max(d, 0) without a branch
        flux[j] += rise * rise;
        norm_prev[k + j] = normalised;
      }
    }
    s[kFlux] = t > 0 ? float(std::sqrt(LaneSum(flux))) : 0.0f;
  }

  cv::hal::log32f(logmel.ptr<float>(), logmel.ptr<float>(), frames * kMelBands);  // vectorised

  // Spectral statistics over the non-silent frames (all frames when every one is silent).
  const double silence_ratio = 1.0 - double(spectral_frames.size()) / frames;
  if (spectral_frames.empty()) spectral_frames = all_frames;
  std::vector<int> flux_frames;
  flux_frames.reserve(spectral_frames.size());
  for (int t : spectral_frames) {
    if (t > 0) flux_frames.push_back(t);  // frame 0 has no predecessor
  }

  float* v = out.vector.data();
  double mean[kMelBands], sd[kMelBands];
  ColumnStats(logmel.ptr<float>(), kMelBands, kMelBands, spectral_frames, mean, sd);
  for (int m = 0; m < kMelBands; ++m) {
    v[kLogMelMeanAt + m] = float(mean[m]);
    v[kLogMelStdAt + m] = float(sd[m]);
  }

  // Onset strength: summed positive first difference of the log-mel (0 for the first frame),
  // with the log-mel floored 80 dB below the track's peak so that the codec noise of near-empty
  // bands (huge swings in log terms, inaudible) does not read as onsets.
  double peak_logmel = 0;
  cv::minMaxLoc(logmel.rowRange(0, frames), nullptr, &peak_logmel);
  const float floor_logmel = float(peak_logmel - std::log(1e8));
  std::vector<float> envelope(frames, 0.0f);
  for (int t = 1; t < frames; ++t) {
    const float* cur = logmel.ptr<float>(t);
    const float* prev = logmel.ptr<float>(t - 1);
    float sum = 0;
    for (int m = 0; m < kMelBands; ++m) {
      const float d = std::max(cur[m], floor_logmel) - std::max(prev[m], floor_logmel);
      sum += 0.5f * (d + std::fabs(d));  // max(d, 0) without a branch
    }
    envelope[t] = sum;
  }

  // MFCC: the orthonormal DCT-II of each frame's log-mel, in place (the log-mel is not needed
  // after this).
  cv::dct(logmel, logmel, cv::DCT_ROWS);
  ColumnStats(logmel.ptr<float>(), kMelBands, kMfcc, spectral_frames, mean, sd);
  for (int c = 0; c < kMfcc; ++c) {
    v[kMfccMeanAt + c] = float(mean[c]);
    v[kMfccStdAt + c] = float(sd[c]);
  }

  auto scalar_stats = [&](Scalar which, const std::vector<int>& rows, int at, double scale) {
    double column_mean, column_sd;
    ColumnStats(scalars.data() + which, kScalarCount, 1, rows, &column_mean, &column_sd);
    v[at] = float(column_mean * scale);
    v[at + 1] = float(column_sd * scale);
    return column_mean;
  };
  out.spectral_centroid_hz = scalar_stats(kCentroid, spectral_frames, kCentroidAt, 1.0 / kNyquistHz);
  scalar_stats(kBandwidth, spectral_frames, kBandwidthAt, 1.0 / kNyquistHz);
  scalar_stats(kRolloff, spectral_frames, kRolloffAt, 1.0 / kNyquistHz);
  scalar_stats(kFlux, flux_frames, kFluxAt, 1.0);
  scalar_stats(kFlatness, spectral_frames, kFlatnessAt, 1.0);
  scalar_stats(kZcr, all_frames, kZcrAt, 1.0);
  out.rms_db = scalar_stats(kRmsDb, all_frames, kRmsAt, 1.0 / 100.0);

  out.onset_rate = CountOnsets(envelope) / out.duration_s;
  EstimateTempo(envelope, out.duration_s, &out.tempo_bpm, &out.tempo_confidence);
  out.silence_ratio = silence_ratio;

  v[kSilenceAt] = float(silence_ratio);
  v[kOnsetRateAt] = float(out.onset_rate);
  v[kTempoAt] = float(out.tempo_bpm / 200.0);
  v[kTempoConfidenceAt] = float(out.tempo_confidence);
  return out;
}

}  // namespace

AudioFeatures ExtractAudioFeatures(const float* samples, size_t count) {
  AudioFeatures out = Analyse(samples, count);
  // A non-finite sample in an analysed frame makes that frame's RMS, and so the mean RMS, not
  // finite; only then is a cleaned copy analysed (checking every sample first would cost a
  // tenth of the analysis).
  if (std::isfinite(out.rms_db)) return out;
  std::vector<float> cleaned(samples, samples + count);
  for (float& v : cleaned) v = std::isfinite(v) ? std::clamp(v, -kMaxSample, kMaxSample) : 0.0f;
  return Analyse(cleaned.data(), cleaned.size());
}

const std::vector<std::string>& AudioFeatureNames() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> n;
    n.reserve(kAudioFeatureDim);
    for (int i = 0; i < kMelBands; ++i) n.push_back("logmel_mean[" + std::to_string(i) + "]");
    for (int i = 0; i < kMelBands; ++i) n.push_back("logmel_std[" + std::to_string(i) + "]");
    for (int i = 0; i < kMfcc; ++i) n.push_back("mfcc_mean[" + std::to_string(i) + "]");
    for (int i = 0; i < kMfcc; ++i) n.push_back("mfcc_std[" + std::to_string(i) + "]");
    for (const char* s : {"centroid", "bandwidth", "rolloff", "flux", "flatness", "zcr", "rms_db"}) {
      n.push_back(std::string(s) + "_mean");
      n.push_back(std::string(s) + "_std");
    }
    for (const char* s : {"silence_ratio", "onset_rate", "tempo_bpm", "tempo_confidence", "log_duration"}) {
      n.push_back(s);
    }
    return n;
  }();
  return names;
}

}  // namespace mosaic::modalities
