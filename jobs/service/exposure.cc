#include "jobs/service/exposure.h"

#include <mutex>

namespace mosaic::jobs::service {

Status ExposureBoard::Load(const store::ReadView& view) {
  std::unordered_map<store::NodeId, store::Exposure> counts;
  store::Exposure total;
  MOSAIC_RETURN_IF_ERROR(view.ForEachExposure([&](store::NodeId item, const store::Exposure& e) {
    counts[item] = e;
    total.impressions += e.impressions;
    total.plays += e.plays;
    return true;
  }));
  std::unique_lock<std::shared_mutex> lock(mu_);
  counts_ = std::move(counts);
  total_ = total;
  return Status::OK();
}

store::Exposure ExposureBoard::Get(store::NodeId item) const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  auto it = counts_.find(item);
  return it == counts_.end() ? store::Exposure() : it->second;
}

void ExposureBoard::Add(store::NodeId item, uint64_t impressions, uint64_t plays) {
  std::unique_lock<std::shared_mutex> lock(mu_);
  store::Exposure& e = counts_[item];
  e.impressions += impressions;
  e.plays += plays;
  total_.impressions += impressions;
  total_.plays += plays;
}

store::Exposure ExposureBoard::Total() const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  return total_;
}

}  // namespace mosaic::jobs::service
