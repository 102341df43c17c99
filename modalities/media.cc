#include "modalities/media.h"

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/display.h>
#include <libavutil/hash.h>
#include <libswresample/swresample.h>
#include <libswscale/swscale.h>
}

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <opencv2/core.hpp>
#include <stdexcept>
#include <utility>
#include <vector>

#include "modalities/ffmpeg_log.h"

namespace mosaic::modalities {

namespace {

struct FormatCloser {
  void operator()(AVFormatContext* f) const { avformat_close_input(&f); }
};
struct CodecFreer {
  void operator()(AVCodecContext* c) const { avcodec_free_context(&c); }
};
struct PacketFreer {
  void operator()(AVPacket* p) const { av_packet_free(&p); }
};
struct FrameFreer {
  void operator()(AVFrame* f) const { av_frame_free(&f); }
};
struct SwrFreer {
  void operator()(SwrContext* s) const { swr_free(&s); }
};
struct SwsFreer {
  void operator()(SwsContext* s) const { sws_freeContext(s); }
};
using FormatPtr = std::unique_ptr<AVFormatContext, FormatCloser>;
using CodecPtr = std::unique_ptr<AVCodecContext, CodecFreer>;
using PacketPtr = std::unique_ptr<AVPacket, PacketFreer>;
using FramePtr = std::unique_ptr<AVFrame, FrameFreer>;

// Strict error detection: a damaged file fails instead of decoding to glitches.
constexpr int kErrorDetection = AV_EF_CRCCHECK | AV_EF_BITSTREAM | AV_EF_EXPLODE;

std::string AvError(int err) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {0};
  av_strerror(err, buf, sizeof buf);
  return buf;
}

// Ends an analysis that cannot go on. AnalyzeMedia and ContentHash catch it and return its status,
// whose message is the reason alone (their caller names the file).
class MediaError : public std::runtime_error {
 public:
  explicit MediaError(Status status) : std::runtime_error(status.message()), status_(std::move(status)) {}
  const Status& status() const { return status_; }

 private:
  Status status_;
};

// The file is not media Mosaic can decode, or it is damaged.
[[noreturn]] void Unusable(const std::string& reason) { throw MediaError(Status::InvalidArgument(reason)); }

[[noreturn]] void OutOfMemory() { throw MediaError(Status::Internal("out of memory")); }

// "what: FFmpeg's error (FFmpeg's last log line)".
[[noreturn]] void Fail(const std::string& what, int err) {
  std::string reason = what + ": " + AvError(err);
  const std::string logged = FirstFfmpegError();
  if (!logged.empty()) reason += " (" + logged + ")";
  Unusable(reason);
}

void CheckReadable(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const auto status = fs::status(path, ec);
  if (!fs::exists(status)) throw MediaError(Status::NotFound("no such file"));
  if (fs::is_directory(status)) Unusable("is a folder, not a media file");
  std::ifstream probe(path, std::ios::binary);
  if (!probe) throw MediaError(Status::IOError(std::string("cannot read: ") + std::strerror(errno)));
  if (fs::file_size(path, ec) == 0) Unusable("empty file (0 bytes)");
}

CodecPtr OpenDecoder(AVStream* st, int threads) {
  const AVCodec* codec = avcodec_find_decoder(st->codecpar->codec_id);
  if (!codec) Unusable(std::string("unsupported codec '") + avcodec_get_name(st->codecpar->codec_id) + "'");
  CodecPtr ctx(avcodec_alloc_context3(codec));
  if (!ctx) OutOfMemory();
  int err = avcodec_parameters_to_context(ctx.get(), st->codecpar);
  if (err < 0) Fail("reading codec parameters", err);
  ctx->pkt_timebase = st->time_base;
  ctx->err_recognition = kErrorDetection;
  ctx->thread_count = threads;
  err = avcodec_open2(ctx.get(), codec, nullptr);
  if (err < 0) Fail(std::string("opening the ") + codec->name + " decoder", err);
  return ctx;
}

// Clockwise rotation, in degrees, that displays the stream upright (from its display matrix).
int StreamRotation(const AVStream* st) {
  const uint8_t* matrix = av_stream_get_side_data(st, AV_PKT_DATA_DISPLAYMATRIX, nullptr);
  if (!matrix) return 0;
  double theta = -std::round(av_display_rotation_get(reinterpret_cast<const int32_t*>(matrix)));
  theta -= 360 * std::floor(theta / 360 + 0.9 / 360);
  const int quarter = int(std::lround(theta / 90)) % 4;
  return quarter * 90;
}

void CollectTags(const AVDictionary* dict, std::map<std::string, std::string>* tags) {
  const AVDictionaryEntry* e = nullptr;
  while ((e = av_dict_get(dict, "", e, AV_DICT_IGNORE_SUFFIX))) {
    std::string key = e->key;
    std::transform(key.begin(), key.end(), key.begin(), [](unsigned char c) { return char(std::tolower(c)); });
    if (e->value && *e->value) tags->emplace(key, e->value);  // the container's value wins
  }
}

// The analysis of one file: owns the FFmpeg state of both decoders.
class Analyzer {
 public:
  Analyzer(const std::string& path, const AnalyzeOptions& options) : path_(path), options_(options) {}
  ~Analyzer() { av_channel_layout_uninit(&swr_layout_); }

  MediaAnalysis Run() {
    CheckReadable(path_);
    ClearFfmpegMessage();
    Open();
    ReadAll();
    if (video_) FillGaps();
    return Finish();
  }

 private:
  void Open() {
    AVFormatContext* raw = avformat_alloc_context();
    if (!raw) OutOfMemory();
    raw->error_recognition = kErrorDetection;
    int err = avformat_open_input(&raw, path_.c_str(), nullptr, nullptr);
    if (err < 0) Fail("not a readable media file", err);
    fmt_.reset(raw);
    err = avformat_find_stream_info(fmt_.get(), nullptr);
    if (err < 0) Fail("reading stream information", err);

    MediaInfo& info = result_.info;
    info.container = fmt_->iformat->name;
    std::error_code ec;
    info.size_bytes = int64_t(std::filesystem::file_size(path_, ec));
    CollectTags(fmt_->metadata, &info.tags);
    if (fmt_->duration != AV_NOPTS_VALUE && fmt_->duration > 0) declared_duration_ = fmt_->duration / double(AV_TIME_BASE);
    // A duration guessed from the bitrate (MP3 without a Xing header) says nothing about truncation.
    duration_is_declared_ = fmt_->duration_estimation_method != AVFMT_DURATION_FROM_BITRATE;
    start_time_ = fmt_->start_time != AV_NOPTS_VALUE ? fmt_->start_time / double(AV_TIME_BASE) : 0.0;

    for (unsigned i = 0; i < fmt_->nb_streams; ++i) {
      AVStream* st = fmt_->streams[i];
      const auto type = st->codecpar->codec_type;
      if (type == AVMEDIA_TYPE_VIDEO && !(st->disposition & AV_DISPOSITION_ATTACHED_PIC) && video_index_ < 0) {
        video_index_ = int(i);
      } else if (type == AVMEDIA_TYPE_AUDIO && audio_index_ < 0) {
        audio_index_ = int(i);
      }
      st->discard = AVDISCARD_ALL;
    }
    if (video_index_ < 0 && audio_index_ < 0) Unusable("no audio or video stream");

    if (video_index_ >= 0) {
      AVStream* st = fmt_->streams[video_index_];
      st->discard = AVDISCARD_DEFAULT;
      video_ = OpenDecoder(st, options_.decoder_threads);
      video_->skip_frame = AVDISCARD_NONKEY;  // keyframes only; long GOPs are filled in later
      CollectTags(st->metadata, &info.tags);
      info.has_video = true;
      info.video_codec = avcodec_get_name(st->codecpar->codec_id);
      info.rotation = StreamRotation(st);
      const AVRational sar = st->codecpar->sample_aspect_ratio;
      const double sar_value = sar.num > 0 && sar.den > 0 ? av_q2d(sar) : 1.0;
      int w = int(std::lround(st->codecpar->width * sar_value)), h = st->codecpar->height;
      if (info.rotation % 180 != 0) std::swap(w, h);
      info.width = w;
      info.height = h;
      const AVRational rate = st->avg_frame_rate.num ? st->avg_frame_rate : st->r_frame_rate;
      info.fps = rate.num && rate.den ? av_q2d(rate) : 0.0;
    }
    if (audio_index_ >= 0) {
      AVStream* st = fmt_->streams[audio_index_];
      st->discard = AVDISCARD_DEFAULT;
      audio_ = OpenDecoder(st, 1);
      CollectTags(st->metadata, &info.tags);
      info.has_audio = true;
      info.audio_codec = avcodec_get_name(st->codecpar->codec_id);
      info.sample_rate = st->codecpar->sample_rate;
      info.channels = st->codecpar->ch_layout.nb_channels;
    }
    interval_ = options_.sample_interval_s;
    if (declared_duration_ > 0 && options_.max_samples > 0) {
      interval_ = std::max(interval_, declared_duration_ / options_.max_samples);
    }
  }

  double Seconds(int64_t ts, const AVStream* st) const { return ts * av_q2d(st->time_base) - start_time_; }

  // Demuxes the whole file once, feeding keyframes to the video decoder and everything to the
  // audio decoder.
  void ReadAll() {
    PacketPtr pkt(av_packet_alloc());
    for (;;) {
      int err = av_read_frame(fmt_.get(), pkt.get());
      if (err == AVERROR_EOF) break;
      if (err < 0) Fail("reading the file", err);
      const AVStream* st = fmt_->streams[pkt->stream_index];
      const bool ours = pkt->stream_index == video_index_ || pkt->stream_index == audio_index_;
      if (ours && (pkt->flags & AV_PKT_FLAG_CORRUPT)) {
        Unusable("corrupt packet at " + std::to_string(pkt->pos) + " bytes (the file is damaged or truncated)");
      }
      if (pkt->pts != AV_NOPTS_VALUE) {
        const double end = Seconds(pkt->pts + std::max<int64_t>(pkt->duration, 0), st);
        if (pkt->stream_index == video_index_ || pkt->stream_index == audio_index_) {
          content_end_ = std::max(content_end_, end);
        }
      }
      if (pkt->stream_index == video_index_) {
        SendVideo(pkt.get());
      } else if (pkt->stream_index == audio_index_) {
        SendAudio(pkt.get());
      }
      av_packet_unref(pkt.get());
    }
    if (video_) SendVideo(nullptr);
    if (audio_) {
      SendAudio(nullptr);
      FlushResampler();
    }
    CheckNoErrorsLogged();
    CheckComplete();
    if (result_.info.container == "ogg") CheckOggEnd();
  }

  void SendVideo(const AVPacket* pkt) {
    int err = avcodec_send_packet(video_.get(), pkt);
    if (err < 0 && err != AVERROR_EOF) Fail("decoding video", err);
    ReceiveVideo(/*target_s=*/-1);
  }

  // Takes every frame the video decoder has ready. In the keyframe pass (target < 0) a frame is
  // sampled when far enough from the previous sample; when filling a gap, the first frame at or
  // after the target is sampled and true returned.
  bool ReceiveVideo(double target_s) {
    for (;;) {
      int err = avcodec_receive_frame(video_.get(), frame_.get());
      if (err == AVERROR(EAGAIN) || err == AVERROR_EOF) return false;
      if (err < 0) Fail("decoding video", err);
      const AVStream* st = fmt_->streams[video_index_];
      const int64_t ts = frame_->best_effort_timestamp != AV_NOPTS_VALUE ? frame_->best_effort_timestamp : frame_->pts;
      const double t = ts != AV_NOPTS_VALUE ? Seconds(ts, st) : last_video_time_ + interval_;
      last_video_time_ = t;
      bool take;
      if (target_s < 0) {
        ++result_.keyframes_decoded;
        take = sample_times_.empty() || t - sample_times_.back() >= 0.75 * interval_;
      } else {
        ++result_.frames_decoded_for_gaps;
        take = t >= target_s - 1e-3;
      }
      if (take) Sample(t);
      av_frame_unref(frame_.get());
      if (take && target_s >= 0) return true;
    }
  }

  void Sample(double t) {
    const int w = frame_->width, h = frame_->height;
    if (w <= 0 || h <= 0) return;
    // Scale to the analysis width, in display proportions (sample aspect ratio applied).
    const AVRational sar = frame_->sample_aspect_ratio;
    const double display_w = w * (sar.num > 0 && sar.den > 0 ? av_q2d(sar) : 1.0);
    const int out_w = std::max(2, std::min(options_.analysis_width, int(std::lround(display_w))) & ~1);
    const int out_h = std::max(2, int(std::lround(out_w * double(h) / display_w)) & ~1);
    sws_.reset(sws_getCachedContext(sws_.release(), w, h, AVPixelFormat(frame_->format), out_w, out_h,
                                    AV_PIX_FMT_BGR24, SWS_BILINEAR, nullptr, nullptr, nullptr));
    if (!sws_) Unusable("cannot convert video frames of pixel format " + std::to_string(frame_->format));
    cv::Mat bgr(out_h, out_w, CV_8UC3);
    uint8_t* dst[4] = {bgr.data, nullptr, nullptr, nullptr};
    int dst_stride[4] = {int(bgr.step), 0, 0, 0};
    sws_scale(sws_.get(), frame_->data, frame_->linesize, 0, h, dst, dst_stride);
    const int rotation = result_.info.rotation;
    if (rotation != 0) {
      cv::Mat turned;
      cv::rotate(bgr, turned, rotation == 90 ? cv::ROTATE_90_CLOCKWISE
                              : rotation == 180 ? cv::ROTATE_180 : cv::ROTATE_90_COUNTERCLOCKWISE);
      bgr = turned;
    }
    visual_.AddFrame(bgr, t);
    sample_times_.push_back(t);
  }

  void SendAudio(const AVPacket* pkt) {
    int err = avcodec_send_packet(audio_.get(), pkt);
    if (err < 0 && err != AVERROR_EOF) Fail("decoding audio", err);
    for (;;) {
      err = avcodec_receive_frame(audio_.get(), frame_.get());
      if (err == AVERROR(EAGAIN) || err == AVERROR_EOF) return;
      if (err < 0) Fail("decoding audio", err);
      Resample(frame_.get());
      av_frame_unref(frame_.get());
    }
  }

  // Converts a decoded frame to mono float at 16 kHz and appends it to pcm_.
  void Resample(const AVFrame* f) {
    if (!swr_ || f->sample_rate != swr_rate_ || f->format != swr_format_ ||
        av_channel_layout_compare(&f->ch_layout, &swr_layout_) != 0) {
      if (swr_) FlushResampler();
      AVChannelLayout in_layout;
      if (f->ch_layout.order == AV_CHANNEL_ORDER_UNSPEC) {
        av_channel_layout_default(&in_layout, f->ch_layout.nb_channels);
      } else if (av_channel_layout_copy(&in_layout, &f->ch_layout) < 0) {
        OutOfMemory();
      }
      AVChannelLayout mono = AV_CHANNEL_LAYOUT_MONO;
      SwrContext* swr = nullptr;
      int err = swr_alloc_set_opts2(&swr, &mono, AV_SAMPLE_FMT_FLT, kAudioSampleRate, &in_layout,
                                    AVSampleFormat(f->format), f->sample_rate, 0, nullptr);
      av_channel_layout_uninit(&in_layout);
      if (err < 0 || !swr) Fail("setting up the resampler", err < 0 ? err : AVERROR(ENOMEM));
      swr_.reset(swr);
      err = swr_init(swr_.get());
      if (err < 0) Fail("setting up the resampler", err);
      swr_rate_ = f->sample_rate;
      swr_format_ = f->format;
      av_channel_layout_uninit(&swr_layout_);
      if (av_channel_layout_copy(&swr_layout_, &f->ch_layout) < 0) OutOfMemory();
    }
    const int capacity = swr_get_out_samples(swr_.get(), f->nb_samples);
    if (capacity <= 0) return;
    const size_t at = pcm_.size();
    pcm_.resize(at + size_t(capacity));
    uint8_t* out = reinterpret_cast<uint8_t*>(pcm_.data() + at);
    const int n = swr_convert(swr_.get(), &out, capacity, const_cast<const uint8_t**>(f->extended_data), f->nb_samples);
    if (n < 0) Fail("resampling audio", n);
    pcm_.resize(at + size_t(n));
  }

  void FlushResampler() {
    if (!swr_) return;
    for (;;) {
      const size_t at = pcm_.size();
      pcm_.resize(at + 4096);
      uint8_t* out = reinterpret_cast<uint8_t*>(pcm_.data() + at);
      const int n = swr_convert(swr_.get(), &out, 4096, nullptr, 0);
      pcm_.resize(at + size_t(std::max(n, 0)));
      if (n <= 0) break;
    }
  }

  // A stream that stops well short of the duration its container declares was cut off.
  void CheckComplete() {
    if (declared_duration_ <= 0 || !duration_is_declared_) return;
    double decoded = content_end_;
    if (audio_) decoded = std::max(decoded, pcm_.size() / double(kAudioSampleRate));
    const double missing = declared_duration_ - decoded;
    if (missing > std::max(0.25, 0.01 * declared_duration_)) {
      char buf[160];
      std::snprintf(buf, sizeof buf, "truncated: its streams end at %.2f s of the %.2f s the container declares",
                    decoded, declared_duration_);
      Unusable(buf);
    }
  }

  // Damage FFmpeg only logs (and skips) fails the file all the same.
  void CheckNoErrorsLogged() {
    const int errors = FfmpegErrorCount();
    if (errors == 0) return;
    Unusable("damaged: FFmpeg reported " + std::to_string(errors) + " error" + (errors > 1 ? "s" : "") +
                                " while reading it, the first: " + FirstFfmpegError());
  }

  // An Ogg stream ends with a complete end-of-stream page. FFmpeg takes an Ogg file's duration
  // from its last complete page and reads a cut-off page as a clean end, so a truncated Ogg file
  // decodes without a word; the missing final page is what gives it away.
  void CheckOggEnd() {
    std::ifstream in(path_, std::ios::binary);
    constexpr std::streamoff kMaxPage = 27 + 255 + 255 * 255;
    in.seekg(0, std::ios::end);
    const std::streamoff size = in.tellg();
    const std::streamoff start = std::max<std::streamoff>(0, size - kMaxPage);
    std::string tail(size_t(size - start), '\0');
    in.seekg(start);
    in.read(tail.data(), std::streamsize(tail.size()));
    if (!in) throw MediaError(Status::IOError("cannot read the end of the file"));
    const size_t page = tail.rfind("OggS");
    bool complete = false;
    if (page != std::string::npos && page + 27 <= tail.size()) {
      const auto* p = reinterpret_cast<const unsigned char*>(tail.data() + page);
      const size_t segments = p[26];
      if (page + 27 + segments <= tail.size()) {
        size_t body = 0;
        for (size_t i = 0; i < segments; ++i) body += p[27 + i];
        complete = (p[5] & 0x04) && page + 27 + segments + body == tail.size();
      }
    }
    if (!complete) Unusable("truncated: the Ogg stream does not end with a complete end-of-stream page");
  }

  // Where keyframes are further apart than the sampling interval, seeks and decodes forward to
  // the missing sample times, so that every stretch of content is measured.
  void FillGaps() {
    // One slot per interval of content; a slot without a sample gets one at its middle.
    const double duration = declared_duration_ > 0 ? declared_duration_ : content_end_;
    const int slots = int(std::ceil(duration / interval_ - 1e-9));
    std::vector<bool> covered(size_t(std::max(slots, 0)), false);
    for (double t : sample_times_) {
      const int slot = int(t / interval_);
      if (slot >= 0 && slot < slots) covered[size_t(slot)] = true;
    }
    std::vector<double> targets;
    for (int k = 0; k < slots; ++k) {
      if (!covered[size_t(k)]) targets.push_back(std::min((k + 0.5) * interval_, duration - 1e-3));
    }
    const std::vector<double>& have = sample_times_;
    if (targets.empty()) return;
    const size_t budget = size_t(std::max(0, options_.max_samples - int(have.size())));
    if (targets.size() > budget) targets.resize(budget);
    std::sort(targets.begin(), targets.end());

    AVStream* st = fmt_->streams[video_index_];
    if (audio_index_ >= 0) fmt_->streams[audio_index_]->discard = AVDISCARD_ALL;
    video_->skip_frame = AVDISCARD_DEFAULT;
    PacketPtr pkt(av_packet_alloc());
    double position = 1e300;  // time of the last decoded frame; huge = must seek
    for (double target : targets) {
      bool need_keyframe = false;
      if (target < position || target - position > 10.0) {
        const int64_t ts = int64_t((target + start_time_) / av_q2d(st->time_base));
        if (av_seek_frame(fmt_.get(), video_index_, ts, AVSEEK_FLAG_BACKWARD) < 0) return;  // unseekable: keep what we have
        avcodec_flush_buffers(video_.get());
        need_keyframe = true;  // a seek may land between keyframes: decoding starts at the next one
      }
      bool found = false;
      int frames_left = 1000;  // bound the work for one sample in pathological files
      while (!found && frames_left-- > 0) {
        int err = av_read_frame(fmt_.get(), pkt.get());
        if (err == AVERROR_EOF) {
          avcodec_send_packet(video_.get(), nullptr);
          found = ReceiveVideo(target);
          position = 1e300;
          break;
        }
        if (err < 0) Fail("reading the file", err);
        if (pkt->stream_index == video_index_ && need_keyframe && !(pkt->flags & AV_PKT_FLAG_KEY)) {
          av_packet_unref(pkt.get());
          continue;
        }
        if (pkt->stream_index == video_index_) {
          need_keyframe = false;
          err = avcodec_send_packet(video_.get(), pkt.get());
          if (err < 0 && err != AVERROR_EOF) Fail("decoding video", err);
          found = ReceiveVideo(target);
        }
        av_packet_unref(pkt.get());
      }
      if (found) position = last_video_time_;
    }
  }

  MediaAnalysis Finish() {
    MediaInfo& info = result_.info;
    info.duration_s = declared_duration_ > 0 ? declared_duration_ : content_end_;
    if (audio_) {
      info.duration_s = std::max(info.duration_s, pcm_.size() / double(kAudioSampleRate));
      result_.audio = ExtractAudioFeatures(pcm_.data(), pcm_.size());
    }
    if (video_) {
      if (visual_.samples() == 0) Unusable("the video stream has no decodable frame");
      const double aspect = info.height > 0 ? double(info.width) / info.height : 1.0;
      result_.visual = visual_.Finish(info.duration_s, aspect);
    }
    return std::move(result_);
  }

  const std::string path_;
  const AnalyzeOptions options_;
  FormatPtr fmt_;
  CodecPtr video_, audio_;
  int video_index_ = -1, audio_index_ = -1;
  FramePtr frame_{av_frame_alloc()};
  std::unique_ptr<SwsContext, SwsFreer> sws_;
  std::unique_ptr<SwrContext, SwrFreer> swr_;
  int swr_rate_ = 0, swr_format_ = -1;
  AVChannelLayout swr_layout_{};  // freed by the destructor
  bool duration_is_declared_ = false;
  double declared_duration_ = 0, start_time_ = 0, content_end_ = 0, interval_ = 2.0, last_video_time_ = 0;
  std::vector<double> sample_times_;
  std::vector<float> pcm_;
  VisualFeatureAccumulator visual_;
  MediaAnalysis result_;
};

}  // namespace

Status AnalyzeMedia(const std::string& path, const AnalyzeOptions& options, MediaAnalysis* analysis) {
  InstallFfmpegLogHandler();
  try {
    Analyzer analyzer(path, options);
    *analysis = analyzer.Run();
  } catch (const MediaError& e) {
    return e.status();
  }
  return Status::OK();
}

Status ContentHash(const std::string& path, std::string* hash) {
  try {
    CheckReadable(path);
  } catch (const MediaError& e) {
    return e.status();
  }
  std::ifstream in(path, std::ios::binary);
  AVHashContext* ctx = nullptr;
  if (av_hash_alloc(&ctx, "SHA256") < 0) return Status::Internal("SHA-256 is unavailable");
  std::unique_ptr<AVHashContext, void (*)(AVHashContext*)> guard(ctx, [](AVHashContext* c) { av_hash_freep(&c); });
  av_hash_init(ctx);
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), std::streamsize(buf.size()));
    if (in.gcount() > 0) av_hash_update(ctx, reinterpret_cast<const uint8_t*>(buf.data()), size_t(in.gcount()));
  }
  if (in.bad()) return Status::IOError(std::string("cannot read: ") + std::strerror(errno));
  uint8_t hex[2 * AV_HASH_MAX_SIZE + 1];
  av_hash_final_hex(ctx, hex, sizeof hex);
  *hash = reinterpret_cast<const char*>(hex);
  return Status::OK();
}

}  // namespace mosaic::modalities
