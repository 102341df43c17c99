#include "modalities/ffmpeg_log.h"

extern "C" {
#include <libavutil/log.h>
}

#include <cstdio>
#include <mutex>

namespace mosaic::modalities {

namespace {

std::mutex sink_mutex;
std::function<void(const std::string&)>& Sink() {
  static std::function<void(const std::string&)> sink;
  return sink;
}
thread_local std::string first_error;
thread_local int error_count = 0;

void Handler(void* avcl, int level, const char* fmt, va_list args) {
  if (level > AV_LOG_WARNING) return;
  char line[1024];
  int print_prefix = 1;
  av_log_format_line2(avcl, level, fmt, args, line, sizeof line, &print_prefix);
  std::string message(line);
  while (!message.empty() && (message.back() == '\n' || message.back() == '\r')) message.pop_back();
  if (message.empty()) return;
  if (level <= AV_LOG_ERROR) {
    if (error_count++ == 0) first_error = message;
  }
  std::lock_guard<std::mutex> lock(sink_mutex);
  if (Sink()) Sink()(message);
}

}  // namespace

void InstallFfmpegLogHandler() {
  static std::once_flag once;
  std::call_once(once, [] { av_log_set_callback(Handler); });
}

void SetFfmpegLogSink(std::function<void(const std::string&)> sink) {
  InstallFfmpegLogHandler();
  std::lock_guard<std::mutex> lock(sink_mutex);
  Sink() = std::move(sink);
}

std::string FirstFfmpegError() { return first_error; }

int FfmpegErrorCount() { return error_count; }

void ClearFfmpegMessage() {
  first_error.clear();
  error_count = 0;
}

}  // namespace mosaic::modalities
