// The one handler for FFmpeg's own log. Nothing FFmpeg says reaches stderr raw: messages
// at error level or worse are kept per thread (so a failed file's report can quote FFmpeg's
// reason) and passed to an optional sink (e.g. `--verbose`).
#pragma once

#include <functional>
#include <string>

namespace mosaic::modalities {

// Installs the handler (idempotent, thread-safe).
void InstallFfmpegLogHandler();

// Sets where FFmpeg's messages at AV_LOG_WARNING or worse go, already formatted and without
// the trailing newline; an empty sink (the default) drops them.
void SetFfmpegLogSink(std::function<void(const std::string&)> sink);

// The first error-level message FFmpeg logged on this thread since ClearFfmpegMessage, or "".
std::string FirstFfmpegError();

// How many error-level messages FFmpeg logged on this thread since ClearFfmpegMessage. Some
// damage (an Ogg page failing its CRC, a Matroska element overrunning its parent) is only
// logged: the demuxer drops the bad part and goes on returning packets.
int FfmpegErrorCount();

void ClearFfmpegMessage();

}  // namespace mosaic::modalities
