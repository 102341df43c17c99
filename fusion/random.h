// Seeded random numbers whose every output is fixed by the seed on every platform and standard
// library: SplitMix64 (Steele, Lea & Flood 2014), one unbiased bounded draw, uniform reals and a
// Fisher-Yates shuffle built on it. The std distributions and std::shuffle are avoided on purpose:
// their algorithms are implementation-defined, so splits and samples would differ between libraries.
//
// Independent purposes draw from independent streams: StreamSeed(seed, stream, index) seeds one
// generator per (run seed, purpose, index), so adding a draw for one purpose (or one user, or one
// epoch) never shifts the draws of another.
#pragma once

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <utility>

namespace mosaic::fusion {

// SplitMix64's finaliser applied after the golden-ratio increment: a bijection of 64-bit values
// that spreads every input bit over the output.
constexpr uint64_t Mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

// The seed of one generator for purpose `stream` (a small constant naming it) and `index` (a user,
// an epoch; 0 when there is one) of a run seeded with `seed`. Depends on nothing else; distinct
// (stream, index) pairs of one seed give unrelated generators.
constexpr uint64_t StreamSeed(uint64_t seed, uint64_t stream, uint64_t index) {
  return Mix64(Mix64(Mix64(seed) ^ stream) ^ index);
}

// SplitMix64: the state advances by the golden-ratio increment and each output is its finaliser.
// Small (8 bytes), fast, and passes BigCrush; not for cryptography.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}

  // The next 64 uniform bits.
  uint64_t Next() {
    const uint64_t x = state_;
    state_ += 0x9E3779B97F4A7C15ULL;
    return Mix64(x);
  }

  // Uniform in [0, bound); bound must be > 0. Lemire's multiply-shift (2019) with rejection: the
  // high half of Next() * bound, discarding the 2^64 mod bound draws that would favour small
  // values, so there is no modulo bias and the rejection costs a division only rarely.
  uint64_t Below(uint64_t bound) {
    unsigned __int128 m = static_cast<unsigned __int128>(Next()) * bound;
    if (uint64_t(m) < bound) {
      const uint64_t threshold = (0 - bound) % bound;  // 2^64 mod bound
      while (uint64_t(m) < threshold) m = static_cast<unsigned __int128>(Next()) * bound;
    }
    return uint64_t(m >> 64);
  }

  // Uniform in [0, 1) from the top 53 bits, so every value is exact in a double.
  double UniformDouble() { return double(Next() >> 11) * 0x1.0p-53; }

  // Uniform in [0, 1) from the top 24 bits, so every value is exact in a float.
  float UniformFloat() { return float(Next() >> 40) * 0x1.0p-24f; }

 private:
  uint64_t state_;  ///< advanced by the golden-ratio increment per draw
};

// Fisher-Yates over the first `take` positions of [first, last): they become a uniform random
// sample without replacement, in random order; the rest keep the other elements in some order.
// take >= last - first shuffles everything. Draws only while more than one element is left.
template <typename RandomIt>
void PartialShuffle(RandomIt first, RandomIt last, size_t take, SplitMix64& rng) {
  const size_t n = size_t(std::distance(first, last));
  for (size_t i = 0; i < take && i + 1 < n; ++i) {
    const size_t j = i + size_t(rng.Below(n - i));
    using std::swap;
    swap(first[i], first[j]);
  }
}

// A uniform random permutation of [first, last) (Fisher-Yates).
template <typename RandomIt>
void Shuffle(RandomIt first, RandomIt last, SplitMix64& rng) {
  PartialShuffle(first, last, size_t(std::distance(first, last)), rng);
}

}  // namespace mosaic::fusion
