// Audio features: a fixed-length description of a mono 16 kHz track (timbre, loudness, rhythm)
// for the fusion model's content input and for `mosaic show`.
//
// Analysis: 25 ms Hann frames (400 samples) every 10 ms (160), frame i covering samples
// [160 i, 160 i + 400) with no padding (a trailing part shorter than a hop is not analysed);
// 512-point real FFT (libavutil av_tx) to a power spectrum; a 64-band HTK-mel filterbank over
// 0..8000 Hz (triangular, Slaney area normalisation), log-mel = ln(mel + 1e-6); MFCC = the first
// 13 coefficients of the orthonormal DCT-II of the log-mel (OpenCV). Per frame also: spectral
// centroid and bandwidth (of the magnitude spectrum), 85% roll-off (of the power spectrum), flux,
// flatness, zero-crossing rate and RMS in dBFS. A frame is silent when its RMS is below -60 dBFS.
// Onsets are peaks of the log-mel onset-strength envelope; tempo comes from its autocorrelation
// (40..240 BPM, log-normal prior around 120 BPM). The vector's layout is in docs/features.md.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "modalities/registry.h"

namespace mosaic::modalities {

inline constexpr int kAudioSampleRate = 16000;                 // input is mono float at this rate
inline constexpr int kAudioFeatureDim = kAudioModality.width;  // length of AudioFeatures::vector

struct AudioFeatures {
  std::vector<float> vector;          ///< kAudioFeatureDim values, layout in AudioFeatureNames() and docs/features.md
  double duration_s = 0;              ///< seconds of audio given (count / kAudioSampleRate)
  double tempo_bpm = 0;               ///< 0 when no beat was found (silence, noise, under 2 s)
  double tempo_confidence = 0;        ///< 0..1: prior-weighted autocorrelation peak / zero-lag autocorrelation
  double onset_rate = 0;              ///< onsets per second
  double silence_ratio = 1;           ///< share of frames below -60 dBFS
  double rms_db = 0;                  ///< mean frame RMS loudness in dBFS (a digitally silent frame is -200)
  double spectral_centroid_hz = 0;    ///< mean over non-silent frames (all frames when every one is silent)
};

// Analyses `count` mono float samples at kAudioSampleRate (nominally in -1..1). Any length is
// accepted: with fewer samples than one window (400, including none; `samples` may then be
// null) no frame is analysed, every statistic is 0 and silence_ratio is 1 (vector[168] = 1;
// vector[172] still holds ln(1 + duration)). Non-finite samples are read as 0 (and, in an input
// holding one or samples so large that the analysis overflows, samples are clipped to ±1e6), so
// the result is always finite. Deterministic, and thread-safe: the only state shared between
// calls is immutable tables built once. Throws std::bad_alloc when libavutil cannot allocate its
// FFT plan. Memory: about 310 bytes per 10 ms frame (19 MB for 10 minutes), besides the input.
AudioFeatures ExtractAudioFeatures(const float* samples, size_t count);

// The name of each index of AudioFeatures::vector ("logmel_mean[0]" … "log_duration"),
// kAudioFeatureDim of them, for docs and `mosaic show`.
const std::vector<std::string>& AudioFeatureNames();

}  // namespace mosaic::modalities
