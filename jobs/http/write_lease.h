// The store's write lock as `mosaic serve` holds it: a lease taken for writes and given back when
// idle or when another command waits, so that ingest, import and rebuild can write beside the server.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "store/store.h"

namespace mosaic::jobs::http {

using Clock = std::chrono::steady_clock;

inline constexpr auto kLeaseIdle = std::chrono::milliseconds(1000);  ///< given back after this long unused
inline constexpr auto kLeaseWait = std::chrono::seconds(10);         ///< longest wait for another writer

// The store's write lock, held while writes come and given back after kLeaseIdle without any (or
// as soon as another command waits for it). While it is held nobody else can write, so the primary
// also serves reads (real snapshots, our writes included at once); readers share it, and the last
// one closes it.
class WriteLease {
 public:
  explicit WriteLease(std::string dir) : dir_(std::move(dir)) {}

  // Runs `fn` with the primary store open for writing, opening it (waiting up to kLeaseWait for
  // another writer to finish) when needed. `reopened` tells whether it was opened for this call (so
  // others may have written since the lease was last held).
  Status With(const std::function<Status(store::Store*, bool reopened)>& fn) {
    std::lock_guard<std::mutex> lock(mu_);
    std::shared_ptr<store::Store> primary = Reader();
    bool reopened = false;
    if (!primary) {
      const auto deadline = Clock::now() + kLeaseWait;
      // A command waiting for the lock (it left a marker) goes first.
      while (store::Store::WriterWaiting(dir_) && Clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      std::unique_ptr<store::Store> opened;
      for (;;) {
        Status s = store::Store::Open(dir_, store::OpenOptions(), &opened);
        if (s.ok()) break;
        if (s.code() != Status::Code::kBusy) return s;
        if (Clock::now() > deadline) {
          return Status::Busy("the store stayed busy (another process writing) for " +
                              std::to_string(kLeaseWait.count()) + " s; try again");
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      primary = std::move(opened);
      reopened = true;
    }
    last_use_ = Clock::now();
    Status s = fn(primary.get(), reopened);
    last_use_ = Clock::now();
    if (reopened) {
      std::lock_guard<std::mutex> handle(handle_mu_);
      primary_ = primary;  // readers use it from now on: the caller has made the follower current
    }
    return s;
  }

  // The primary while the lease is held, else null.
  std::shared_ptr<store::Store> Reader() const {
    std::lock_guard<std::mutex> handle(handle_mu_);
    return primary_;
  }

  // Whether the lease should be given back: unused for kLeaseIdle, or another command waits for it.
  bool ShouldRelease() {
    std::lock_guard<std::mutex> lock(mu_);
    return Reader() && (Clock::now() - last_use_ > kLeaseIdle || store::Store::WriterWaiting(dir_));
  }

  // Gives the lock back (when the last reader lets go of the primary). The caller has caught the
  // follower up with everything written through it.
  void Release() {
    std::lock_guard<std::mutex> lock(mu_);
    std::lock_guard<std::mutex> handle(handle_mu_);
    primary_.reset();
  }

 private:
  const std::string dir_;
  std::mutex mu_;                          // one writer
  mutable std::mutex handle_mu_;           // guards primary_
  std::shared_ptr<store::Store> primary_;  // null when the lease is not held
  Clock::time_point last_use_;
};

}  // namespace mosaic::jobs::http
