// Progress: a one-line progress report with rate and ETA on stderr, shown only on a terminal
// and never in --json mode.
#pragma once

#include <chrono>
#include <string>

namespace mosaic::jobs {

class Progress {
 public:
  // `enabled` false makes every call a no-op (pipes, --json).
  Progress(bool enabled, std::string what);
  ~Progress();

  // Reports `done` of `total` units (bytes or items); `detail` is appended as is.
  // Redraws at most ten times a second.
  void Update(double done, double total, const std::string& detail = "");

  // Clears the line.
  void Finish();

 private:
  bool enabled_;
  std::string what_;
  std::chrono::steady_clock::time_point start_, last_draw_;
  bool drawn_ = false;
};

// True when stderr is a terminal.
bool StderrIsTerminal();

// "1,234,567"
std::string WithThousands(uint64_t n);

// An item key for people to read: content hashes ("sha256:...") cut to their first 12 digits.
std::string ShortKey(const std::string& key);

// `text` (UTF-8) cut or padded with spaces to `width` characters (code points, not bytes), so that
// table columns line up with accented names; a cut ends in "...". Never splits a character.
std::string FitColumn(const std::string& text, size_t width);

}  // namespace mosaic::jobs
