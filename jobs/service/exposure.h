// How often each item was shown and played (the store's exposure counters), in memory for the
// exploration of every query: loaded from the store, then kept current by whoever commits new counts
// (the server's writer, after each commit). Thread-safe: reads beside one writer.
#pragma once

#include <shared_mutex>
#include <unordered_map>

#include "store/store.h"

namespace mosaic::jobs::service {

class ExposureBoard {
 public:
  // Replaces the counts with the store's.
  Status Load(const store::ReadView& view);
  // The item's counts; zeros when it has none.
  store::Exposure Get(store::NodeId item) const;
  // Adds counts that were committed to the store.
  void Add(store::NodeId item, uint64_t impressions, uint64_t plays);
  // The sums over every item.
  store::Exposure Total() const;

 private:
  mutable std::shared_mutex mu_;                             // guards the two below
  std::unordered_map<store::NodeId, store::Exposure> counts_;  // items with counts
  store::Exposure total_;
};

}  // namespace mosaic::jobs::service
