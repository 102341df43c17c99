// How LibTorch's CPU tensors get their memory while the first version trains. Every training step
// allocates and frees tensors of tens of MiB; glibc serves blocks of 32 MiB and more with fresh
// mmap pages and returns them on free, so each step faults those pages in again 4 KiB at a time.
// On the build machine that was over half of an epoch (docs/results.md: 2.3 million page faults in
// a 2-epoch Last.FM rebuild).
#pragma once

#include <cstddef>

namespace mosaic::fusion {

inline constexpr size_t kHugePageBytes = size_t(2) << 20;       ///< a transparent huge page on x86-64
inline constexpr size_t kHugePageTensorBytes = size_t(4) << 20;  ///< from here on a tensor's memory is huge-page aligned

// Installs, once per process (later calls do nothing), a CPU allocator for LibTorch that gives every
// block of at least kHugePageTensorBytes huge-page-aligned memory advised MADV_HUGEPAGE before its
// first touch (the kernel then faults it in 2 MiB at a time where transparent huge pages are in
// `madvise` or `always` mode; elsewhere the advice is ignored), and keeps glibc from returning the
// smaller blocks to the kernel between steps. Tensors allocated before the call keep their own
// deleters. Values are unaffected: only where memory comes from changes.
void UseHugePagesForLargeCpuTensors();

}  // namespace mosaic::fusion
