// Helpers shared by the test suites: temporary folders, file writing, running the CLI.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "store/status.h"

#define ASSERT_OK(expr)                                   \
  do {                                                    \
    ::mosaic::Status _s = (expr);                         \
    ASSERT_TRUE(_s.ok()) << _s.ToString();                \
  } while (0)
#define EXPECT_OK(expr)                                   \
  do {                                                    \
    ::mosaic::Status _s = (expr);                         \
    EXPECT_TRUE(_s.ok()) << _s.ToString();                \
  } while (0)

namespace mosaic::testing {

// A fresh folder removed when the object goes away.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "mosaic-test-XXXXXX").string();
    if (!mkdtemp(pattern.data())) std::abort();
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

inline void WriteFile(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary);
  out << content;
}

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Folder of the shared datasets, or empty when they are absent (tests then skip).
inline std::string SharedDatasets() {
  std::filesystem::path p = std::filesystem::path(MOSAIC_SHARED_DIR) / "datasets";
  return std::filesystem::exists(p) ? p.string() : "";
}

struct CommandResult {
  int exit_code = -1;
  std::string out;  ///< stdout
  std::string err;  ///< stderr
};

// Runs the mosaic binary with `args` (already shell-quoted) and captures its output.
inline CommandResult RunMosaic(const std::string& args) {
  static int counter = 0;
  const std::string base = (std::filesystem::temp_directory_path() /
                            ("mosaic-cli-" + std::to_string(getpid()) + "-" + std::to_string(counter++))).string();
  const std::string cmd = std::string(MOSAIC_BINARY) + " " + args + " >" + base + ".out 2>" + base + ".err";
  const int status = std::system(cmd.c_str());
  CommandResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = ReadFile(base + ".out");
  r.err = ReadFile(base + ".err");
  std::remove((base + ".out").c_str());
  std::remove((base + ".err").c_str());
  return r;
}

}  // namespace mosaic::testing
