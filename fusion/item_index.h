// ItemIndex: the item vectors a server scores against, growing while it is queried.
//
// Exact search scans every admissible item (BLAS matrix-vector products over fixed-size blocks,
// then a bounded heap), so it is exact by construction and needs no index: the choice for
// catalogues up to ~200k items. For larger catalogues an HNSW graph (hnswlib) proposes candidates,
// which are then re-scored exactly. The graph's space is hnswlib's inner product by default (see
// HnswMetric); it can instead be L2 over vectors lifted to d + 1 dimensions (x -> [x, sqrt(M^2 -
// |x|^2)], query -> [q, 0]) where L2 order equals inner-product order (Bachrach et al., 2014). M is
// fixed when the graph is built; items added later with a larger norm are clamped to M in the
// lifted coordinate, which only weakens their recall in the graph, never their exact score.
//
// Ordering: best score first, equal scores by lower id first; NaN scores never returned. Ids are
// insertion order: the i-th row ever added has id i.
//
// Thread safety: Search*, size(), dim() and has_hnsw() may run concurrently with each other and
// with one thread calling Add (rows are published only once written: a search sees at least the
// rows published when it starts, and never returns an id at or beyond size() as read after it). BuildHnsw, LoadHnsw and SaveHnsw may
// run beside searches (the finished graph is swapped in under a lock) but not beside Add or each
// other.
//
// Storage: rows live in blocks of kBlockRows rows that are allocated once and never move, so
// readers need no lock: the atomic size (release on Add, acquire on search) publishes them.
//
// Exact search without an `allowed` list reads a quarter of the bytes: a first pass over int8 codes
// of the rows (per-row scale) gives each row an approximate score and a proven bound on its error
// (|q.x - approx| <= |q8||r| + |rq||x8| + |rq||r|, from the residuals of the row and of the
// quantised query, with a safety margin for float rounding); the k-th largest lower bound is a floor
// under the k-th best score, and only rows whose upper bound reaches it are scored exactly (with
// cblas_sdot). So the result is the exact one; on real model vectors tens of rows are re-scored.
// The graph: hnswlib's insertion is safe beside its searches, except for growing its capacity
// (resizeIndex) and for the rare insertion that raises the graph's top level (hnswlib 0.6.2 then
// writes the entry point and the top level without synchronisation). Searches therefore hold a
// shared lock on the graph; Add inserts under the shared lock too, and takes it exclusively only
// to grow the capacity (doubling it; BuildHnsw and LoadHnsw leave 25% headroom) or for an insertion
// that will raise the top level (predicted from a copy of hnswlib's level generator). So readers
// wait only for those rare moments. (glibc's rwlock prefers readers: under a saturating stream of
// searches such an Add may wait for a gap.)
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <shared_mutex>
#include <string>
#include <vector>

#include "store/status.h"

namespace mosaic::fusion {

// The k best items of one search.
struct TopK {
  std::vector<int64_t> ids;   ///< item ids, best first
  std::vector<float> scores;  ///< their dot products with the query
};

// The graph's space. kInnerProduct: hnswlib's InnerProductSpace over the rows (distance 1 - dot; not
// a metric, but the graph then links the large-norm rows that win inner products, ip-NSW, Morozov &
// Babenko 2018). kLiftedL2: L2Space over the lifted rows (see above). On the item vectors of a real
// Last.FM model tiled to 200k rows (bench/query.sh; M 16, ef_construction 100), recall@20 at ef 64
// was 0.975 for kInnerProduct and 0.74 for kLiftedL2 (which reached 0.97 only at ef 256); at 1M rows
// inner product gave 0.93 at ef 96 and the lifted graph 0.15 at ef 192: the items that win inner
// products are the extreme ones, which the lift puts far from all others. Hence the default.
enum class HnswMetric : uint32_t { kLiftedL2 = 0, kInnerProduct = 1 };

struct HnswOptions {
  int m = 16;                ///< graph degree (hnswlib M)
  int ef_construction = 100; ///< candidate list while inserting
  int ef_search = 128;       ///< candidate list while searching (raised to the number of candidates needed)
  int threads = 0;           ///< insertion threads for BuildHnsw; 0 = hardware concurrency
  HnswMetric metric = HnswMetric::kInnerProduct;  ///< BuildHnsw's space (LoadHnsw takes the saved one)
};

// Restrictions of one search. Both lists hold ids in [0, size()), sorted ascending.
struct SearchFilter {
  const std::vector<int64_t>* allowed = nullptr;   ///< when set, only these ids are candidates
  const std::vector<int64_t>* excluded = nullptr;  ///< when set, these ids are never returned
};

class ItemIndex {
 public:
  explicit ItemIndex(int64_t dim);
  ~ItemIndex();
  ItemIndex(const ItemIndex&) = delete;
  ItemIndex& operator=(const ItemIndex&) = delete;

  int64_t dim() const { return dim_; }       ///< vector width
  int64_t size() const;                      ///< rows published so far
  bool has_hnsw() const;                     ///< whether Search uses the HNSW graph

  // Copies row `id` (in [0, size())) into `out` (dim() floats).
  void Row(int64_t id, float* out) const;
  // The dot product of `query` (dim() floats) with row `id` (in [0, size())), as exact search scores it.
  float Score(const float* query, int64_t id) const;

  // Appends `n` rows of dim() floats; their ids are size() .. size() + n - 1. When the HNSW graph
  // exists the rows are inserted into it too. Throws std::invalid_argument on a non-finite value.
  void Add(const float* rows, int64_t n);

  // Builds the HNSW graph over every row added so far (later Adds extend it). `progress`, when
  // set, is called now and then with the number of rows inserted.
  void BuildHnsw(const HnswOptions& options, const std::function<void(int64_t)>& progress = {});

  // The graph as bytes (hnswlib's format after a small header: magic, format version, metric,
  // width, rows, lift norm M); an empty string when there is no graph.
  std::string SaveHnsw() const;

  // Replaces the graph with the one SaveHnsw wrote as `bytes` and returns OK; rows added after the
  // graph was saved (the bytes hold fewer rows than size()) are inserted into it. Returns
  // Corruption, naming what is wrong, when the bytes are damaged or not a graph of this index's
  // width and of its first rows (every stored vector is compared with its row); the index is then
  // left as it was. From `options` only ef_search applies (the rest is in the bytes); ef_search < 1
  // throws std::invalid_argument.
  Status LoadHnsw(const std::string& bytes, const HnswOptions& options);

  // The candidate list of graph searches from now on (BuildHnsw's and LoadHnsw's ef_search until
  // then); ef < 1 throws std::invalid_argument. Safe beside searches.
  void SetEfSearch(int ef);

  // Exact top-k of one query (dim() floats). k <= 0, a null query, or a filter list that is not
  // ascending within [0, size()) throws std::invalid_argument. Duplicates in a list are harmless.
  TopK SearchExact(const float* query, int64_t k, const SearchFilter& filter = {}) const;

  // Top-k of one query: through the HNSW graph with exact re-scoring when it exists, except when
  // `filter.allowed` is set (a short list, scanned exactly); exact otherwise. The graph proposes
  // max(ef_search, k + |excluded|) candidates (that is the search's ef), which are scored by their
  // true dot products; when that many candidates would cost about as much as a scan (candidates x 4M
  // >= size()), the index is scanned exactly instead.
  TopK Search(const float* query, int64_t k, const SearchFilter& filter = {}) const;

 private:
  struct Hnsw;
  const int64_t dim_;
  static constexpr int64_t kBlockRows = int64_t{1} << 16;      ///< rows per storage block
  static constexpr int64_t kMaxBlocks = int64_t{1} << 12;      ///< up to 268M rows
  std::unique_ptr<std::unique_ptr<float[]>[]> blocks_;          ///< never moved once allocated
  // SearchExact's first pass: each row as int8 codes (x ~ scale * code) beside the same blocks, with
  // per row {scale, |x - scale * code|, |scale * code|} for its error bound.
  std::unique_ptr<std::unique_ptr<int8_t[]>[]> code_blocks_;
  std::unique_ptr<std::unique_ptr<float[]>[]> code_meta_;
  std::atomic<int64_t> size_{0};
  std::unique_ptr<Hnsw> hnsw_;             ///< guarded by graph_mutex_ (see above)
  mutable std::shared_mutex graph_mutex_;

  const float* Row(int64_t id) const {
    return blocks_[id / kBlockRows].get() + (id % kBlockRows) * dim_;
  }
  void InsertIntoGraph(int64_t id);          ///< Add's insertion of a published row
  void Encode(int64_t id);                   ///< Add's int8 codes of a written row
  // Exact top-k by the int8 first pass and exact re-scoring of the rows it cannot rule out; false
  // (nothing done) for a query it cannot bound (zero or non-finite).
  bool SearchExactByCodes(const float* query, int64_t k, int64_t n, const std::vector<int64_t>* excluded,
                          TopK* out) const;
};

}  // namespace mosaic::fusion
