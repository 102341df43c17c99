// Media analysis: demuxes and decodes a file in-process with FFmpeg (libavformat,
// libavcodec, libswscale, libswresample) and measures it: container facts and tags, a visual
// feature vector from frames sampled across the whole duration, an audio feature vector from
// the whole track resampled to mono 16 kHz.
//
// Decoding is strict: a demuxer or decoder error (bad CRC, corrupt bitstream) or a stream
// that ends well before its declared duration fails the file, because a damaged upload should
// be re-sent, not half-indexed.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "modalities/audio_features.h"
#include "modalities/video_features.h"
#include "store/status.h"

namespace mosaic::modalities {

struct MediaInfo {
  std::string container;        ///< demuxer name, e.g. "ogg", "mov,mp4,m4a,3gp,3g2,mj2"
  double duration_s = 0;        ///< container duration, else the longest decoded stream
  int64_t size_bytes = 0;       ///< file size
  bool has_video = false;       ///< a video stream (cover art excluded)
  bool has_audio = false;       ///< an audio stream
  std::string video_codec;      ///< e.g. "h264"
  int width = 0, height = 0;    ///< display size (after rotation)
  double fps = 0;               ///< average frame rate
  int rotation = 0;             ///< clockwise degrees applied to display the frames (0, 90, 180, 270)
  std::string audio_codec;      ///< e.g. "vorbis"
  int sample_rate = 0;          ///< of the source stream
  int channels = 0;             ///< of the source stream
  std::map<std::string, std::string> tags;  ///< container and stream tags, keys lower-case
};

struct MediaAnalysis {
  MediaInfo info;
  std::optional<VisualFeatures> visual;  ///< absent without a video stream
  std::optional<AudioFeatures> audio;    ///< absent without an audio stream
  int keyframes_decoded = 0;             ///< video frames decoded by keyframe-only decoding
  int frames_decoded_for_gaps = 0;       ///< video frames decoded after seeking into long GOPs
};

struct AnalyzeOptions {
  double sample_interval_s = 2.0;  ///< at least one video sample per this much content
  int max_samples = 150;           ///< cap for long videos (the interval then grows)
  int analysis_width = 320;        ///< frames are scaled to this width (aspect kept) for measuring
  int decoder_threads = 1;         ///< threads per video decoder (0 = FFmpeg's choice)
};

// Analyses the file at `path`. On success stores the result in *analysis and returns OK. On
// failure leaves *analysis as it was and returns NotFound (no such file), IOError (the file cannot
// be read), InvalidArgument (a folder, an empty file, not media FFmpeg can decode, or damaged) or
// Internal (out of memory). The message is the reason, with FFmpeg's words when it had any, but
// not the path: the caller names the file (Status::WithContext).
Status AnalyzeMedia(const std::string& path, const AnalyzeOptions& options, MediaAnalysis* analysis);

// Hex SHA-256 of the file's bytes (libavutil's hash), the content identity of an ingested item.
// On success stores it in *hash and returns OK; otherwise returns the statuses AnalyzeMedia does
// for a file that is missing, unreadable, a folder or empty, and leaves *hash as it was.
Status ContentHash(const std::string& path, std::string* hash);

}  // namespace mosaic::modalities
