#include "jobs/cli/progress.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "graph/text.h"

namespace mosaic::jobs {

bool StderrIsTerminal() { return isatty(STDERR_FILENO) == 1; }

std::string WithThousands(uint64_t n) {
  std::string digits = std::to_string(n), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out.push_back(',');
    out.push_back(digits[i]);
  }
  return out;
}

std::string ShortKey(const std::string& key) {
  return key.rfind("sha256:", 0) == 0 && key.size() > 19 ? key.substr(0, 19) + "…" : graph::EscapeControl(key);
}

Progress::Progress(bool enabled, std::string what)
    : enabled_(enabled), what_(std::move(what)), start_(std::chrono::steady_clock::now()) {}

Progress::~Progress() { Finish(); }

void Progress::Update(double done, double total, const std::string& detail) {
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  if (drawn_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  drawn_ = true;
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const double fraction = total > 0 ? std::min(1.0, done / total) : 0.0;
  std::string eta = "--";
  if (fraction > 0.01 && elapsed > 0.5) {
    const double left = elapsed * (1.0 - fraction) / fraction;
    char buf[32];
    if (left >= 60) {
      std::snprintf(buf, sizeof buf, "%dm%02ds", int(left) / 60, int(left) % 60);
    } else {
      std::snprintf(buf, sizeof buf, "%.0fs", std::ceil(left));
    }
    eta = buf;
  }
  std::fprintf(stderr, "\r\033[K%s %5.1f%%  %s  ETA %s", what_.c_str(), 100.0 * fraction, detail.c_str(), eta.c_str());
  std::fflush(stderr);
}

void Progress::Finish() {
  if (enabled_ && drawn_) {
    std::fprintf(stderr, "\r\033[K");
    std::fflush(stderr);
  }
  drawn_ = false;
}

std::string FitColumn(const std::string& text, size_t width) {
  auto is_start = [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; };
  std::vector<size_t> starts;  // byte offset of each character
  for (size_t i = 0; i < text.size(); ++i)
    if (is_start(text[i])) starts.push_back(i);
  if (starts.size() > width) {
    const size_t keep = width >= 3 ? width - 3 : 0;
    return text.substr(0, starts[keep]) + std::string(width - keep, '.');
  }
  return text + std::string(width - starts.size(), ' ');
}

}  // namespace mosaic::jobs
