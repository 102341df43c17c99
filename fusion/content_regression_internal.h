// Internals of the content ridge (fusion/content_regression.cc) shared with the content kernel of
// the model's second version (fusion/content_kernel.cc): the training matrix, the truncated SVD and
// the normalised content rows. Not a public interface: plain arrays in double, no checks beyond
// those documented at each function.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "fusion/content_regression.h"
#include "fusion/eval_data.h"

namespace mosaic::fusion::content_internal {

// Asks the kernel for transparent huge pages over [data, data + bytes) (the 2 MiB pages inside it),
// before it is first touched: the fits' matrices run to gigabytes, and faulting them in 4 KiB at a
// time cost a third of a rebuild's time on a virtual machine. Advice only: nothing changes where it
// is refused.
void AdviseHugePages(const void* data, size_t bytes);

// n zeros in a vector whose pages are advised as above before they are zeroed.
template <typename T>
std::vector<T> LargeZeros(size_t n) {
  std::vector<T> v;
  v.reserve(n);
  AdviseHugePages(v.data(), n * sizeof(T));
  v.resize(n);
  return v;
}

// The stream of fusion/random.h that draws the pseudo-cold validation items ("CRdg").
constexpr uint64_t kHoldOutStream = 0x43526467;

// "%g" of v.
std::string FormatNumber(double v);

// n as LAPACK's int, throwing std::runtime_error when n * n does not fit one.
int LapackSize(size_t n);

// Runs body(row) for row in [0, n) on hardware_concurrency() threads, rows strided over threads.
// Each row is computed by one thread alone, so results do not depend on the thread count.
template <typename Body>
void ParallelRows(size_t n, const Body& body) {
  const size_t threads = std::min<size_t>(std::max(1u, std::thread::hardware_concurrency()), std::max<size_t>(n, 1));
  if (threads <= 1) {
    for (size_t r = 0; r < n; ++r) body(r);
    return;
  }
  std::vector<std::thread> pool;
  for (size_t t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      for (size_t r = t; r < n; r += threads) body(r);
    });
  }
  for (auto& th : pool) th.join();
}

// Dot product in double with four partial sums (a fixed order, so results are reproducible).
double Dot(const double* a, const double* b, size_t n);

// The binary training matrix both ways: each user's items and each item's users, ascending, unique.
struct Interactions {
  std::vector<std::vector<uint32_t>> items_of;  ///< per user
  std::vector<std::vector<uint32_t>> users_of;  ///< per item
};

// Throws std::invalid_argument when a train index, user or item is out of range of `data`.
void CheckTrain(const EvalData& data, const std::vector<uint32_t>& train);

// The matrix of data.interactions[train] without the items flagged in `drop` (empty: none).
Interactions BuildInteractions(const EvalData& data, const std::vector<uint32_t>& train,
                               const std::vector<uint8_t>& drop);

// TruncatedSvd's factors of `x` (see fusion/content_regression.h).
CfFactors Svd(const Interactions& x, uint32_t num_users, uint32_t num_items, uint32_t rank);

// One modality, its present rows L2-normalised in double.
struct DenseFeatures {
  size_t dim = 0;
  std::vector<double> rows;  ///< num_items x dim; zero where !has
  std::vector<uint8_t> has;  ///< per item: a non-zero present row
};

// The KG's (relation, neighbour, direction) one-hot features of the items: a triple (h, r, t) gives
// an item h the feature (r, t, forward) and an item t the feature (r, h, backward). Item i's
// features are ids[offsets[i] .. offsets[i + 1]), ascending; ids are dense in [0, num_features).
struct KgOneHots {
  size_t num_features = 0;
  std::vector<uint64_t> keys;  ///< per feature: (relation * nodes + neighbour) * 2 + backward, ascending
  std::vector<uint32_t> offsets;
  std::vector<uint32_t> ids;
};
KgOneHots BuildKgOneHots(const EvalData& data);

// Throws std::invalid_argument when a modality's arrays are out of line with num_items or hold a
// non-finite value, or a KG triple is out of range.
void CheckContent(const EvalData& data);

// The modality's present, non-zero rows L2-normalised.
DenseFeatures BuildDense(const ModalityMatrix& m, uint32_t num_items);

// The rank grid of the content models: {16, 32, 64, 128}, each capped at max(1, min(active users,
// training items) - 1), duplicates after capping dropped.
std::vector<uint32_t> RankGrid(const Interactions& x, size_t train_items);

// The pseudo-cold validation of the content models (MakeContentRidge, MakeContentKernel): `hold` of
// the training items drawn by a partial Fisher-Yates shuffle seeded from (seed, kHoldOutStream), the
// training matrix without them and its SVD at `max_rank`, and each user's held-out training items.
struct PseudoCold {
  std::vector<uint32_t> held;                   ///< ascending
  std::vector<uint8_t> is_held;                 ///< per item
  Interactions rest;                            ///< the training matrix without the held-out items
  CfFactors cf;                                 ///< Svd(rest, max_rank)
  std::vector<std::vector<uint32_t>> relevant;  ///< per user: held-out items of theirs
};
// Fold f holds out the f-th block of `hold` items of one seeded permutation of train_items, so the
// folds are disjoint and fold 0 is the same for every number of folds. Needs (f + 1) hold <= items.
PseudoCold HoldOut(const EvalData& data, const std::vector<uint32_t>& train, const Interactions& x,
                   const std::vector<uint32_t>& train_items, size_t hold, uint64_t seed, uint32_t max_rank,
                   size_t fold = 0);

}  // namespace mosaic::fusion::content_internal
