// Audio features on signals synthesised here: tones, noise, silence, click tracks.
#include "modalities/audio_features.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <random>
#include <set>
#include <thread>
#include <vector>

namespace mosaic::modalities {
namespace {

constexpr double kPi = 3.14159265358979323846;
constexpr int kRate = kAudioSampleRate;

// Vector indices (docs/features.md).
constexpr int kLogMelMean = 0, kMfccMean = 128, kCentroidMean = 154, kBandwidthMean = 156, kRolloffMean = 158;
constexpr int kFlatnessMean = 162, kZcrMean = 164, kRmsMean = 166, kSilence = 168, kOnsetRate = 169;
constexpr int kTempo = 170, kTempoConfidence = 171, kLogDuration = 172;

std::vector<float> Sine(double hz, double seconds, float amplitude) {
  std::vector<float> s(size_t(seconds * kRate));
  for (size_t i = 0; i < s.size(); ++i) s[i] = amplitude * float(std::sin(2 * kPi * hz * double(i) / kRate));
  return s;
}

std::vector<float> WhiteNoise(double seconds, float sigma, unsigned seed) {
  std::vector<float> s(size_t(seconds * kRate));
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, sigma);
  for (float& v : s) v = normal(rng);
  return s;
}

// 5 ms bursts of white noise every 60 / bpm seconds from 0.1 s on, silence in between.
std::vector<float> ClickTrack(double bpm, double seconds, unsigned seed = 7) {
  std::vector<float> s(size_t(seconds * kRate), 0.0f);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> uniform(-0.8f, 0.8f);
  for (int beat = 0;; ++beat) {
    const size_t start = size_t(std::llround((0.1 + beat * 60.0 / bpm) * kRate));
    if (start >= s.size()) break;
    for (size_t i = start; i < std::min(s.size(), start + kRate / 200); ++i) s[i] = uniform(rng);
  }
  return s;
}

AudioFeatures Extract(const std::vector<float>& s) { return ExtractAudioFeatures(s.data(), s.size()); }

// Length, finiteness and ranges every result must have.
void ExpectWellFormed(const AudioFeatures& f) {
  ASSERT_EQ(f.vector.size(), size_t(kAudioFeatureDim));
  for (int i = 0; i < kAudioFeatureDim; ++i) {
    EXPECT_TRUE(std::isfinite(f.vector[i])) << i << " " << AudioFeatureNames()[i] << " = " << f.vector[i];
  }
  for (double x : {f.duration_s, f.tempo_bpm, f.tempo_confidence, f.onset_rate, f.silence_ratio, f.rms_db,
                   f.spectral_centroid_hz}) {
    EXPECT_TRUE(std::isfinite(x));
  }
  EXPECT_GE(f.silence_ratio, 0);
  EXPECT_LE(f.silence_ratio, 1);
  EXPECT_GE(f.tempo_confidence, 0);
  EXPECT_LE(f.tempo_confidence, 1);
  EXPECT_TRUE(f.tempo_bpm == 0 || (f.tempo_bpm >= 40 && f.tempo_bpm <= 240)) << f.tempo_bpm;
  EXPECT_GE(f.onset_rate, 0);
  EXPECT_FLOAT_EQ(f.vector[kSilence], float(f.silence_ratio));
  EXPECT_FLOAT_EQ(f.vector[kOnsetRate], float(f.onset_rate));
  EXPECT_FLOAT_EQ(f.vector[kTempo], float(f.tempo_bpm / 200));
  EXPECT_FLOAT_EQ(f.vector[kTempoConfidence], float(f.tempo_confidence));
  EXPECT_FLOAT_EQ(f.vector[kLogDuration], float(std::log1p(f.duration_s)));
}

// What too short an input gives: every statistic 0, silence_ratio 1.
void ExpectNothingAnalysed(const AudioFeatures& f, size_t count) {
  ExpectWellFormed(f);
  EXPECT_DOUBLE_EQ(f.duration_s, double(count) / kRate);
  EXPECT_EQ(f.silence_ratio, 1);
  EXPECT_EQ(f.tempo_bpm, 0);
  EXPECT_EQ(f.tempo_confidence, 0);
  EXPECT_EQ(f.onset_rate, 0);
  EXPECT_EQ(f.rms_db, 0);
  EXPECT_EQ(f.spectral_centroid_hz, 0);
  for (int i = 0; i < kAudioFeatureDim; ++i) {
    if (i == kSilence || i == kLogDuration) continue;
    EXPECT_EQ(f.vector[i], 0.0f) << AudioFeatureNames()[i];
  }
  EXPECT_EQ(f.vector[kSilence], 1.0f);
}

TEST(AudioFeaturesTest, NamesMatchTheLayout) {
  const auto& names = AudioFeatureNames();
  ASSERT_EQ(names.size(), size_t(kAudioFeatureDim));
  EXPECT_EQ(std::set<std::string>(names.begin(), names.end()).size(), names.size());
  EXPECT_EQ(names[0], "logmel_mean[0]");
  EXPECT_EQ(names[63], "logmel_mean[63]");
  EXPECT_EQ(names[64], "logmel_std[0]");
  EXPECT_EQ(names[128], "mfcc_mean[0]");
  EXPECT_EQ(names[141], "mfcc_std[0]");
  EXPECT_EQ(names[153], "mfcc_std[12]");
  EXPECT_EQ(names[kCentroidMean], "centroid_mean");
  EXPECT_EQ(names[155], "centroid_std");
  EXPECT_EQ(names[kBandwidthMean], "bandwidth_mean");
  EXPECT_EQ(names[kRolloffMean], "rolloff_mean");
  EXPECT_EQ(names[160], "flux_mean");
  EXPECT_EQ(names[kFlatnessMean], "flatness_mean");
  EXPECT_EQ(names[kZcrMean], "zcr_mean");
  EXPECT_EQ(names[kRmsMean], "rms_db_mean");
  EXPECT_EQ(names[167], "rms_db_std");
  EXPECT_EQ(names[kSilence], "silence_ratio");
  EXPECT_EQ(names[kOnsetRate], "onset_rate");
  EXPECT_EQ(names[kTempo], "tempo_bpm");
  EXPECT_EQ(names[kTempoConfidence], "tempo_confidence");
  EXPECT_EQ(names[kLogDuration], "log_duration");
  EXPECT_STREQ(kAudioModality.extractor, "mosaic-audio");
  EXPECT_EQ(kAudioModality.version, 1u);
}

TEST(AudioFeaturesTest, EmptyInput) {
  ExpectNothingAnalysed(ExtractAudioFeatures(nullptr, 0), 0);
  const float one = 0.5f;
  ExpectNothingAnalysed(ExtractAudioFeatures(&one, 0), 0);
  EXPECT_EQ(ExtractAudioFeatures(nullptr, 0).vector[kLogDuration], 0.0f);
}

TEST(AudioFeaturesTest, ShorterThanOneWindow) {
  const std::vector<float> s = Sine(440, 100.0 / kRate, 0.5f);
  ASSERT_EQ(s.size(), 100u);
  const AudioFeatures f = Extract(s);
  ExpectNothingAnalysed(f, 100);
  EXPECT_NEAR(f.duration_s, 0.00625, 1e-12);
  ExpectNothingAnalysed(ExtractAudioFeatures(s.data(), 1), 1);
  const std::vector<float> almost = Sine(440, 399.0 / kRate, 0.5f);
  ExpectNothingAnalysed(Extract(almost), 399);
}

TEST(AudioFeaturesTest, OneWindow) {
  const std::vector<float> s = Sine(1000, 400.0 / kRate, 0.5f);
  const AudioFeatures f = Extract(s);
  ExpectWellFormed(f);
  EXPECT_EQ(f.silence_ratio, 0);
  EXPECT_NEAR(f.spectral_centroid_hz, 1000, 60);
  EXPECT_EQ(f.tempo_bpm, 0);
}

TEST(AudioFeaturesTest, SineHasItsCentroidAtItsFrequency) {
  const AudioFeatures f = Extract(Sine(1000, 5, 0.5f));
  ExpectWellFormed(f);
  EXPECT_NEAR(f.spectral_centroid_hz, 1000, 30);
  EXPECT_NEAR(f.vector[kCentroidMean], 1000.0 / 8000, 30.0 / 8000);
  EXPECT_LT(f.vector[kCentroidMean + 1], 1e-3);         // steady
  EXPECT_LT(f.vector[kBandwidthMean] * 8000, 200);      // narrow
  EXPECT_NEAR(f.vector[kRolloffMean] * 8000, 1000, 40);
  EXPECT_LT(f.vector[kFlatnessMean], 0.01);             // tonal
  EXPECT_NEAR(f.vector[kZcrMean], 2000.0 / kRate, 0.005);  // two crossings a period
  EXPECT_NEAR(f.rms_db, 20 * std::log10(0.5 / std::sqrt(2.0)), 0.3);
  EXPECT_NEAR(f.vector[kRmsMean], f.rms_db / 100, 1e-6);
  EXPECT_EQ(f.silence_ratio, 0);
  EXPECT_EQ(f.tempo_bpm, 0);
  EXPECT_NEAR(f.duration_s, 5, 1e-12);
  // The loudest mel band is one centred near 1 kHz (the 64 HTK-mel bands are 2840 / 65 mel
  // apart: band 21 is centred at 943 Hz, band 22 at 1007 Hz).
  const int loudest = int(std::max_element(f.vector.begin(), f.vector.begin() + 64) - f.vector.begin());
  EXPECT_GE(loudest, 21);
  EXPECT_LE(loudest, 22);
}

TEST(AudioFeaturesTest, CentroidFollowsFrequency) {
  const AudioFeatures low = Extract(Sine(300, 2, 0.5f));
  const AudioFeatures high = Extract(Sine(5000, 2, 0.5f));
  EXPECT_NEAR(low.spectral_centroid_hz, 300, 30);
  EXPECT_NEAR(high.spectral_centroid_hz, 5000, 30);
}

TEST(AudioFeaturesTest, WhiteNoiseIsFlat) {
  const AudioFeatures f = Extract(WhiteNoise(10, 0.3f, 42));
  ExpectWellFormed(f);
  EXPECT_GT(f.vector[kFlatnessMean], 0.45);  // exp(-Euler's gamma) = 0.56 in theory
  EXPECT_NEAR(f.spectral_centroid_hz, 4000, 200);
  EXPECT_NEAR(f.vector[kZcrMean], 0.5, 0.02);
  EXPECT_NEAR(f.rms_db, 20 * std::log10(0.3), 0.3);
  EXPECT_EQ(f.silence_ratio, 0);
  EXPECT_EQ(f.tempo_bpm, 0) << "noise has no beat (confidence " << f.tempo_confidence << ")";
  EXPECT_GT(f.onset_rate, 0);
}

TEST(AudioFeaturesTest, SilenceIsSilent) {
  const std::vector<float> s(5 * kRate, 0.0f);
  const AudioFeatures f = Extract(s);
  ExpectWellFormed(f);
  EXPECT_EQ(f.silence_ratio, 1);
  EXPECT_EQ(f.tempo_bpm, 0);
  EXPECT_EQ(f.tempo_confidence, 0);
  EXPECT_EQ(f.onset_rate, 0);
  EXPECT_NEAR(f.rms_db, -200, 1e-6);
  EXPECT_EQ(f.spectral_centroid_hz, 0);
  // Every frame silent: statistics over all frames, log-mel at its floor.
  EXPECT_NEAR(f.vector[kLogMelMean], std::log(1e-6), 1e-4);
  EXPECT_NEAR(f.vector[kMfccMean], 8 * std::log(1e-6), 1e-3);  // sqrt(64) * the constant
  for (int c = 1; c < 13; ++c) EXPECT_NEAR(f.vector[kMfccMean + c], 0, 1e-4) << c;
}

TEST(AudioFeaturesTest, QuietButNotSilent) {
  std::vector<float> s = Sine(440, 3, 1e-4f);  // -83 dBFS
  EXPECT_EQ(Extract(s).silence_ratio, 1);
  s = Sine(440, 3, 1e-2f);  // -43 dBFS
  EXPECT_EQ(Extract(s).silence_ratio, 0);
  // Half silence, half tone: spectral statistics come from the tone alone.
  std::vector<float> half(4 * kRate, 0.0f);
  const std::vector<float> tone = Sine(2000, 2, 0.5f);
  std::copy(tone.begin(), tone.end(), half.begin() + 2 * kRate);
  const AudioFeatures f = Extract(half);
  EXPECT_NEAR(f.silence_ratio, 0.5, 0.01);
  EXPECT_NEAR(f.spectral_centroid_hz, 2000, 30);
}

// The MFCC means are the orthonormal DCT-II of the log-mel means (the DCT is linear).
TEST(AudioFeaturesTest, MfccIsOrthonormalDctOfLogMel) {
  for (const std::vector<float>& s : {Sine(700, 3, 0.3f), WhiteNoise(3, 0.1f, 3), ClickTrack(100, 5)}) {
    const AudioFeatures f = Extract(s);
    for (int k = 0; k < 13; ++k) {
      double sum = 0;
      for (int n = 0; n < 64; ++n) sum += f.vector[kLogMelMean + n] * std::cos(kPi * (2 * n + 1) * k / 128.0);
      const double expected = sum * std::sqrt((k == 0 ? 1.0 : 2.0) / 64);
      EXPECT_NEAR(f.vector[kMfccMean + k], expected, 1e-3 * (1 + std::fabs(expected))) << k;
    }
  }
}

TEST(AudioFeaturesTest, ClickTrackAt120Bpm) {
  const AudioFeatures f = Extract(ClickTrack(120, 20));
  ExpectWellFormed(f);
  EXPECT_NEAR(f.tempo_bpm, 120, 2);
  EXPECT_GT(f.tempo_confidence, 0.5);
  EXPECT_NEAR(f.onset_rate, 2.0, 0.1);
  EXPECT_GT(f.silence_ratio, 0.8);
}

TEST(AudioFeaturesTest, ClickTrackAt90Bpm) {
  const AudioFeatures f = Extract(ClickTrack(90, 20));
  ExpectWellFormed(f);
  EXPECT_NEAR(f.tempo_bpm, 90, 2);
  EXPECT_GT(f.tempo_confidence, 0.5);
  EXPECT_NEAR(f.onset_rate, 1.5, 0.1);
}

// Periods of a whole number of frames or not, either side of the prior's 120 BPM; no
// octave errors. (Above about 170 BPM the prior prefers half the tempo, which a click track
// fits as well.)
TEST(AudioFeaturesTest, ClickTracksAtOtherTempos) {
  for (double bpm : {60.0, 75.0, 100.0, 110.0, 140.0, 160.0}) {
    const AudioFeatures f = Extract(ClickTrack(bpm, 20));
    EXPECT_NEAR(f.tempo_bpm, bpm, 2) << bpm;
    EXPECT_NEAR(f.onset_rate, bpm / 60, 0.1) << bpm;
  }
}

// A steady tone has no rhythm: its frame-to-hop phase ripple must not read as onsets or a beat.
TEST(AudioFeaturesTest, SteadyToneHasNoOnsetsNorTempo) {
  const AudioFeatures f = Extract(Sine(440, 20, 0.5f));
  EXPECT_LT(f.onset_rate, 0.2);
  EXPECT_EQ(f.tempo_bpm, 0.0);
}

TEST(AudioFeaturesTest, NoTempoUnderTwoSeconds) {
  const AudioFeatures f = Extract(ClickTrack(120, 1.9));
  ExpectWellFormed(f);
  EXPECT_EQ(f.tempo_bpm, 0);
  EXPECT_GT(f.onset_rate, 1);
}

TEST(AudioFeaturesTest, Deterministic) {
  const std::vector<float> s = ClickTrack(128, 8);
  const AudioFeatures a = Extract(s), b = Extract(s);
  EXPECT_EQ(a.vector, b.vector);
  EXPECT_EQ(a.tempo_bpm, b.tempo_bpm);
  EXPECT_EQ(a.tempo_confidence, b.tempo_confidence);
  EXPECT_EQ(a.onset_rate, b.onset_rate);
  EXPECT_EQ(a.rms_db, b.rms_db);
  EXPECT_EQ(a.spectral_centroid_hz, b.spectral_centroid_hz);
}

TEST(AudioFeaturesTest, ThreadSafe) {
  const std::vector<std::vector<float>> inputs = {ClickTrack(120, 6), WhiteNoise(6, 0.2f, 1), Sine(440, 6, 0.4f),
                                                  ClickTrack(90, 6)};
  std::vector<AudioFeatures> expected;
  for (const auto& s : inputs) expected.push_back(Extract(s));
  std::vector<std::vector<AudioFeatures>> got(8);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < got.size(); ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 3; ++round) {
        for (size_t i = 0; i < inputs.size(); ++i) got[t].push_back(Extract(inputs[(i + t) % inputs.size()]));
      }
    });
  }
  for (auto& th : threads) th.join();
  for (size_t t = 0; t < got.size(); ++t) {
    ASSERT_EQ(got[t].size(), 3 * inputs.size());
    for (size_t k = 0; k < got[t].size(); ++k) {
      EXPECT_EQ(got[t][k].vector, expected[(k % inputs.size() + t) % inputs.size()].vector) << t << " " << k;
    }
  }
}

TEST(AudioFeaturesTest, NonFiniteSamplesReadAsZero) {
  std::vector<float> s = ClickTrack(120, 3);
  std::vector<float> zeroed = s;
  for (size_t i : {size_t(1000), size_t(20000), size_t(30001)}) zeroed[i] = 0;
  s[1000] = std::numeric_limits<float>::quiet_NaN();
  s[20000] = std::numeric_limits<float>::infinity();
  s[30001] = -std::numeric_limits<float>::infinity();
  const AudioFeatures f = Extract(s);
  ExpectWellFormed(f);
  EXPECT_EQ(f.vector, Extract(zeroed).vector);
  // Absurdly large samples overflow nothing either.
  std::vector<float> huge = Sine(440, 1, 1e30f);
  ExpectWellFormed(Extract(huge));
}

TEST(AudioFeaturesTest, VectorIsFiniteForEverySignal) {
  for (const std::vector<float>& s :
       {Sine(50, 2.5, 1.0f), Sine(7990, 2.5, 1.0f), WhiteNoise(2.5, 1.0f, 9), ClickTrack(200, 2.5),
        std::vector<float>(401, 1.0f), std::vector<float>(kRate, -1.0f), WhiteNoise(2.5, 1e-7f, 9)}) {
    ExpectWellFormed(Extract(s));
  }
}

}  // namespace
}  // namespace mosaic::modalities
