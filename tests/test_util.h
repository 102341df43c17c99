// Helpers shared by the test suites: temporary folders, file writing, running the CLI.
#pragma once

#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>
#include <rocksdb/db.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <vector>

#include "store/status.h"
#include "store/store.h"

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

// Starts `args` (args[0]: the program's path) in a child process, its stdout to `out_path` and its
// stderr to `err_path` (they may be the same file, or "/dev/null"); `append` keeps what the files
// hold. Returns the child's pid, or -1 when fork fails.
inline pid_t Spawn(std::vector<std::string> args, const std::string& out_path, const std::string& err_path,
                   bool append = false) {
  std::fflush(stdout);  // or the child would write our buffered output again
  std::fflush(stderr);
  const pid_t pid = fork();
  if (pid == 0) {
    const int flags = O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC);
    const int out = open(out_path.c_str(), flags, 0644);
    const int err = err_path == out_path ? out : open(err_path.c_str(), flags, 0644);
    if (out < 0 || err < 0) _exit(126);
    dup2(out, 1);
    dup2(err, 2);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  return pid;
}

inline void WriteFile(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary);
  out << content;
}

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Folder of the shared datasets, or empty when they are absent (tests then skip).
// A TCP port on loopback that nothing listened on a moment ago.
inline int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  const int port = ntohs(addr.sin_port);
  close(fd);
  return port;
}

inline std::string SharedDatasets() {
  std::filesystem::path p = std::filesystem::path(MOSAIC_SHARED_DIR) / "datasets";
  return std::filesystem::exists(p) ? p.string() : "";
}

struct CommandResult {
  int exit_code = -1;
  std::string out;  ///< stdout
  std::string err;  ///< stderr
};

// Runs the mosaic binary with `args` (already shell-quoted) and captures its output. With
// `timeout_seconds` > 0 it is ended by `timeout` after that long (exit code 124 then), stdin empty.
inline CommandResult RunMosaic(const std::string& args, int timeout_seconds = 0) {
  static std::atomic<int> counter{0};  // tests run commands from several threads
  const std::string base = (std::filesystem::temp_directory_path() /
                            ("mosaic-cli-" + std::to_string(getpid()) + "-" + std::to_string(counter++))).string();
  const std::string prefix = timeout_seconds > 0 ? "timeout " + std::to_string(timeout_seconds) + " " : "";
  const std::string cmd = prefix + MOSAIC_BINARY + " " + args + (timeout_seconds > 0 ? " </dev/null" : "") + " >" +
                          base + ".out 2>" + base + ".err";
  const int status = std::system(cmd.c_str());
  CommandResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = ReadFile(base + ".out");
  r.err = ReadFile(base + ".err");
  std::remove((base + ".out").c_str());
  std::remove((base + ".err").c_str());
  return r;
}

// A command's exit code and output, for failure messages.
inline std::string Describe(const CommandResult& r) {
  return "exit " + std::to_string(r.exit_code) + "\n--- stdout:\n" + r.out + "\n--- stderr:\n" + r.err;
}

// Runs `args`, expects exit 0, and parses stdout as one JSON value (discarded when it is not).
inline nlohmann::json RunJson(const std::string& args) {
  CommandResult r = RunMosaic(args);
  EXPECT_EQ(r.exit_code, 0) << args << "\n" << Describe(r);
  nlohmann::json j = nlohmann::json::parse(r.out, nullptr, /*allow_exceptions=*/false);
  EXPECT_FALSE(j.is_discarded()) << args << ": stdout is not one JSON value:\n" << r.out;
  return j;
}

// True when the ffmpeg CLI is on PATH (tests that make media with it skip otherwise).
inline bool HaveFfmpeg() { return std::system("command -v ffmpeg >/dev/null 2>&1") == 0; }

// `s` quoted for the shell.
// Makes `key` a user of the store in `dir` with nothing played (as a sign-up would): the node only.
inline ::testing::AssertionResult AddUserWithoutPlays(const std::string& dir, const std::string& key) {
  std::unique_ptr<store::Store> st;
  Status s = store::Store::Open(dir, store::OpenOptions(), &st);
  std::unique_ptr<store::Batch> batch;
  if (s.ok()) s = st->BeginBatch(&batch);
  store::NodeId id = 0;
  if (s.ok()) s = batch->UpsertNode(store::NodeKind::kUser, key, "", &id);
  if (s.ok()) s = batch->Commit();
  if (!s.ok()) return ::testing::AssertionFailure() << s.ToString();
  return ::testing::AssertionSuccess();
}

inline std::string Quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// The USE-lite model folder: $MOSAIC_MODEL_DIR, else the one scripts/fetch-model fills.
inline std::string ModelDir() {
  if (const char* env = std::getenv("MOSAIC_MODEL_DIR"); env && *env) return env;
  return MOSAIC_MODEL_DIR;
}

inline std::string Escape(const std::string& s) {
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out.push_back(char(c));
    } else {
      out += "\\x";
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 15]);
    }
  }
  return out;
}

// One line per record, "cf | key | value" with non-printable bytes escaped, so that a failing
// comparison shows which records differ.
inline std::string DumpStore(const std::string& dir) {
  rocksdb::Options options;
  std::vector<std::string> names;
  rocksdb::Status s = rocksdb::DB::ListColumnFamilies(options, dir, &names);
  if (!s.ok()) {
    ADD_FAILURE() << "ListColumnFamilies(" << dir << "): " << s.ToString();
    return "";
  }
  std::sort(names.begin(), names.end());
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (const auto& n : names) descriptors.emplace_back(n, rocksdb::ColumnFamilyOptions());
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  s = rocksdb::DB::OpenForReadOnly(rocksdb::DBOptions(options), dir, descriptors, &handles, &raw);
  if (!s.ok()) {
    ADD_FAILURE() << "OpenForReadOnly(" << dir << "): " << s.ToString();
    return "";
  }
  std::unique_ptr<rocksdb::DB> db(raw);
  std::string dump;
  for (size_t i = 0; i < handles.size(); ++i) {
    dump += "== " + names[i] + "\n";
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), handles[i]));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      dump += names[i] + " | " + Escape(it->key().ToString()) + " | " + Escape(it->value().ToString()) + "\n";
    }
    EXPECT_TRUE(it->status().ok()) << it->status().ToString();
  }
  for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
  db->Close();
  return dump;
}

}  // namespace mosaic::testing
