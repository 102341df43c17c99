// Status: the result of every fallible call in Mosaic, in the style of rocksdb::Status.
// Expected failures (a missing key, a malformed input line, a damaged stored record, a media file
// that cannot be decoded, a missing model file) are Statuses; only broken preconditions throw.
//
// This header depends on the standard library alone, so that every folder (fusion/, modalities/
// and encoders/ included, which depend on no other folder of Mosaic) can use it through the CMake
// target mosaic_status. It lives in store/ because the top-level layout is fixed.
#pragma once

#include <string>
#include <utility>

namespace mosaic {

class [[nodiscard]] Status {
 public:
  enum class Code {
    kOk = 0,
    kNotFound,         ///< the requested record or file does not exist
    kInvalidArgument,  ///< the caller's input is wrong (bad line, bad flag value)
    kCorruption,       ///< stored data violates an invariant
    kIOError,          ///< the file system or RocksDB failed
    kVersionMismatch,  ///< the store was written with another schema version
    kBusy,             ///< the store is locked by another process
    kInternal,         ///< a bug or an unexpected exception, caught at an API boundary
  };

  Status() = default;
  static Status OK() { return Status(); }
  static Status NotFound(std::string msg) { return Status(Code::kNotFound, std::move(msg)); }
  static Status InvalidArgument(std::string msg) { return Status(Code::kInvalidArgument, std::move(msg)); }
  static Status Corruption(std::string msg) { return Status(Code::kCorruption, std::move(msg)); }
  static Status IOError(std::string msg) { return Status(Code::kIOError, std::move(msg)); }
  static Status VersionMismatch(std::string msg) { return Status(Code::kVersionMismatch, std::move(msg)); }
  static Status Busy(std::string msg) { return Status(Code::kBusy, std::move(msg)); }
  static Status Internal(std::string msg) { return Status(Code::kInternal, std::move(msg)); }

  bool ok() const { return code_ == Code::kOk; }
  bool IsNotFound() const { return code_ == Code::kNotFound; }
  bool IsInvalidArgument() const { return code_ == Code::kInvalidArgument; }
  bool IsCorruption() const { return code_ == Code::kCorruption; }
  bool IsVersionMismatch() const { return code_ == Code::kVersionMismatch; }
  bool IsInternal() const { return code_ == Code::kInternal; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }

  // The message alone for errors (it already says what went wrong and where), "OK" otherwise.
  std::string ToString() const { return ok() ? "OK" : message_; }

  // Returns a copy whose message is prefixed with `context` ("file.tsv:12: " + message).
  Status WithContext(const std::string& context) const {
    return ok() ? *this : Status(code_, context + message_);
  }

 private:
  Status(Code code, std::string msg) : code_(code), message_(std::move(msg)) {}
  Code code_ = Code::kOk;
  std::string message_;
};

}  // namespace mosaic

// Returns the status from the enclosing function when it is not OK.
#define MOSAIC_RETURN_IF_ERROR(expr)        \
  do {                                      \
    ::mosaic::Status _mosaic_s = (expr);    \
    if (!_mosaic_s.ok()) return _mosaic_s;  \
  } while (0)
