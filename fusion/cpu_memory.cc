#include "fusion/cpu_memory.h"

#include <c10/core/CPUAllocator.h>
#include <c10/core/alignment.h>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <cstdlib>
#include <mutex>
#include <new>

#include "fusion/content_regression_internal.h"

namespace mosaic::fusion {
namespace {

void FreeBlock(void* data) { std::free(data); }

class HugePageCpuAllocator final : public c10::Allocator {
 public:
  c10::DataPtr allocate(size_t bytes) const override {
    if (bytes == 0) return {nullptr, nullptr, &FreeBlock, c10::Device(c10::DeviceType::CPU)};
    const bool large = bytes >= kHugePageTensorBytes;
    void* data = nullptr;
    if (posix_memalign(&data, large ? kHugePageBytes : c10::gAlignment, bytes) != 0) throw std::bad_alloc();
    // The block starts on a huge page; a tail shorter than one keeps small pages.
    if (large) content_internal::AdviseHugePages(data, bytes);
    return {data, data, &FreeBlock, c10::Device(c10::DeviceType::CPU)};
  }
  c10::DeleterFnPtr raw_deleter() const override { return &FreeBlock; }
};

}  // namespace

void UseHugePagesForLargeCpuTensors() {
  static std::once_flag once;
  std::call_once(once, [] {
#if defined(__GLIBC__)
    mallopt(M_MMAP_THRESHOLD, 32 << 20);  // glibc's maximum; larger blocks still use mmap
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
    mallopt(M_TOP_PAD, 256 << 20);
#endif
    static HugePageCpuAllocator allocator;
    // Above the default allocator's registration (priority 0), so that it is the one used.
    c10::SetCPUAllocator(&allocator, /*priority=*/1);
  });
}

}  // namespace mosaic::fusion
