#include "fusion/item_index.h"

// hnswlib's header defines non-inline functions (cpuid, xgetbv, AVXCapable): include it in this one
// translation unit only.
#include <cblas.h>
#include <hnswlib/hnswlib.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <exception>
#include <limits>
#include <mutex>
#include <random>
#include <stdexcept>
#include <thread>

namespace mosaic::fusion {

namespace {

using Graph = hnswlib::HierarchicalNSW<float>;

// Rows scored by one sgemv before selection: 16384 scores (64 KiB) stay in L2 while they are selected,
// and few calls per scan (OpenBLAS may split each call across its threads).
constexpr int64_t kChunkRows = 16384;

constexpr char kMagic[8] = {'M', 'O', 'S', 'H', 'N', 'S', 'W', '\0'};
constexpr uint32_t kFormatVersion = 1;

struct Entry {
  float score;
  int64_t id;
};
// Best first: higher score, then lower id.
inline bool Better(const Entry& a, const Entry& b) { return a.score != b.score ? a.score > b.score : a.id < b.id; }

// The k best entries seen so far; the heap's top is the worst of them.
class Selector {
 public:
  explicit Selector(int64_t k) : k_(size_t(k)) { heap_.reserve(std::min<size_t>(k_, 1 << 16)); }

  // Scores at or below this can never enter when candidates arrive in ascending id order.
  float threshold() const { return threshold_; }

  // Offers a candidate whose id is larger than every id offered before (scans in id order).
  void OfferAscending(float score, int64_t id) {
    if (!(score > threshold_)) return;  // NaN, -inf, and no better than the worst kept
    Push({score, id});
  }
  // Offers a candidate in any id order.
  void Offer(float score, int64_t id) {
    if (std::isnan(score) || score == -std::numeric_limits<float>::infinity()) return;
    const Entry e{score, id};
    if (heap_.size() == k_ && !Better(e, heap_.front())) return;
    Push(e);
  }

  TopK Finish() {
    std::sort(heap_.begin(), heap_.end(), Better);
    TopK out;
    out.ids.reserve(heap_.size());
    out.scores.reserve(heap_.size());
    for (const Entry& e : heap_) {
      out.ids.push_back(e.id);
      out.scores.push_back(e.score);
    }
    return out;
  }

 private:
  void Push(const Entry& e) {
    if (heap_.size() == k_) {
      std::pop_heap(heap_.begin(), heap_.end(), Better);
      heap_.back() = e;
    } else {
      heap_.push_back(e);
    }
    std::push_heap(heap_.begin(), heap_.end(), Better);
    if (heap_.size() == k_) threshold_ = heap_.front().score;
  }

  const size_t k_;
  std::vector<Entry> heap_;
  float threshold_ = -std::numeric_limits<float>::infinity();
};

// Checks that a filter list is ascending (duplicates allowed) within [0, n).
void CheckList(const std::vector<int64_t>* list, int64_t n, const char* what) {
  if (!list) return;
  int64_t previous = -1;
  for (int64_t id : *list) {
    if (id < 0 || id >= n) {
      throw std::invalid_argument(std::string("ItemIndex: ") + what + " id " + std::to_string(id) + " outside [0, " +
                                  std::to_string(n) + ")");
    }
    if (id < previous) throw std::invalid_argument(std::string("ItemIndex: ") + what + " ids are not ascending");
    previous = id;
  }
}

bool Contains(const std::vector<int64_t>* sorted, int64_t id) {
  return sorted && std::binary_search(sorted->begin(), sorted->end(), id);
}

double SquaredNorm(const float* x, int64_t d) {
  double s = 0;
  for (int64_t j = 0; j < d; ++j) s += double(x[j]) * double(x[j]);
  return s;
}

// x -> [x, sqrt(M^2 - |x|^2)] (0 when |x| > M).
void Lift(const float* x, int64_t d, double norm, float* out) {
  std::memcpy(out, x, size_t(d) * sizeof(float));
  out[d] = float(std::sqrt(std::max(0.0, norm * norm - SquaredNorm(x, d))));
}

// Per-thread scratch (scores of a chunk, gathered rows, lifted query), reused across searches.
struct Scratch {
  std::vector<float> approx;  // SearchExactByCodes: approximate scores
  std::vector<float> bound;   // and their error bounds (negative: excluded row)
  std::vector<float> scores;
  std::vector<float> rows;
  std::vector<int64_t> ids;
  std::vector<float> lifted;
};
Scratch& ThreadScratch() {
  thread_local Scratch scratch;
  return scratch;
}

template <typename T>
void Append(std::string* out, const T& value) {
  out->append(reinterpret_cast<const char*>(&value), sizeof value);
}

// Reads fixed-size values in order. Reading past the end yields zeros and marks the reader
// truncated, so the parser checks truncated() once per section rather than after every field.
class Reader {
 public:
  explicit Reader(const std::string& bytes) : bytes_(bytes) {}
  template <typename T>
  T Get() {
    T value{};
    Take(&value, sizeof value);
    return value;
  }
  void Take(void* out, size_t n) {
    if (n > remaining()) {
      truncated_ = true;
      pos_ = bytes_.size();
      std::memset(out, 0, n);
      return;
    }
    std::memcpy(out, bytes_.data() + pos_, n);
    pos_ += n;
  }
  size_t remaining() const { return bytes_.size() - pos_; }
  bool truncated() const { return truncated_; }

 private:
  const std::string& bytes_;
  size_t pos_ = 0;
  bool truncated_ = false;  ///< a read went past the end
};

}  // namespace

struct ItemIndex::Hnsw {
  Hnsw(int64_t dim, HnswMetric metric)
      : lifted_l2(metric == HnswMetric::kLiftedL2), l2(size_t(dim + 1)), ip(size_t(dim)) {}
  hnswlib::SpaceInterface<float>* space() { return lifted_l2 ? static_cast<hnswlib::SpaceInterface<float>*>(&l2) : &ip; }
  // The graph's vector of a row: the row lifted to dim + 1 (lifted L2), or the row itself.
  void Vector(const float* row, int64_t d, float* out) const {
    if (lifted_l2) {
      Lift(row, d, norm, out);
    } else {
      std::memcpy(out, row, size_t(d) * sizeof(float));
    }
  }
  const bool lifted_l2;
  hnswlib::L2Space l2;         // over lifted vectors (dim + 1)
  hnswlib::InnerProductSpace ip;  // over the rows (distance 1 - dot)
  std::unique_ptr<Graph> graph;
  double norm = 0;             // M of the lift (lifted L2)
  int ef_search = 128;
  std::vector<float> lifted;   // Add's scratch (Add runs on one thread at a time)
};

ItemIndex::ItemIndex(int64_t dim)
    : dim_(dim),
      blocks_(new std::unique_ptr<float[]>[kMaxBlocks]),
      code_blocks_(new std::unique_ptr<int8_t[]>[kMaxBlocks]),
      code_meta_(new std::unique_ptr<float[]>[kMaxBlocks]) {
  if (dim <= 0) throw std::invalid_argument("ItemIndex: the width must be positive");
}

ItemIndex::~ItemIndex() = default;

int64_t ItemIndex::size() const { return size_.load(std::memory_order_acquire); }

bool ItemIndex::has_hnsw() const {
  std::shared_lock<std::shared_mutex> lock(graph_mutex_);
  return hnsw_ != nullptr;
}

void ItemIndex::Add(const float* rows, int64_t n) {
  if (n < 0) throw std::invalid_argument("ItemIndex::Add: negative row count");
  if (n == 0) return;
  if (!rows) throw std::invalid_argument("ItemIndex::Add: null rows");
  const int64_t values = n * dim_;
  for (int64_t i = 0; i < values; ++i) {
    if (!std::isfinite(rows[i])) {
      throw std::invalid_argument("ItemIndex::Add: row " + std::to_string(i / dim_) + " has a non-finite value");
    }
  }
  const int64_t first = size_.load(std::memory_order_relaxed);  // the only writer
  if (first + n > kMaxBlocks * kBlockRows) throw std::length_error("ItemIndex::Add: more rows than the index holds");
  for (int64_t done = 0; done < n;) {
    const int64_t id = first + done;
    const int64_t b = id / kBlockRows, offset = id % kBlockRows;
    if (!blocks_[b]) blocks_[b].reset(new float[size_t(kBlockRows * dim_)]);  // untouched pages cost no memory
    const int64_t take = std::min(n - done, kBlockRows - offset);
    std::memcpy(blocks_[b].get() + offset * dim_, rows + done * dim_, size_t(take * dim_) * sizeof(float));
    if (!code_blocks_[b]) {
      code_blocks_[b].reset(new int8_t[size_t(kBlockRows * dim_)]);
      code_meta_[b].reset(new float[size_t(kBlockRows * 3)]);
    }
    for (int64_t j = 0; j < take; ++j) Encode(id + j);
    done += take;
  }
  size_.store(first + n, std::memory_order_release);
  if (hnsw_) {
    for (int64_t id = first; id < first + n; ++id) InsertIntoGraph(id);
  }
}

void ItemIndex::InsertIntoGraph(int64_t id) {
  Hnsw& h = *hnsw_;
  Graph& g = *h.graph;
  if (g.cur_element_count >= g.max_elements_) {
    std::unique_lock<std::shared_mutex> lock(graph_mutex_);
    g.resizeIndex(std::max<size_t>(g.max_elements_ * 2, g.max_elements_ + 1024));
  }
  h.lifted.resize(size_t(dim_ + 1));
  h.Vector(Row(id), dim_, h.lifted.data());
  // hnswlib draws the new element's level first thing in addPoint; draw it from a copy to know
  // whether this insertion will raise the top level (and move the entry point).
  std::default_random_engine generator = g.level_generator_;
  std::uniform_real_distribution<double> distribution(0.0, 1.0);
  const int level = int(-std::log(distribution(generator)) * g.mult_);
  if (level > g.maxlevel_) {
    std::unique_lock<std::shared_mutex> lock(graph_mutex_);
    g.addPoint(h.lifted.data(), size_t(id));
  } else {
    std::shared_lock<std::shared_mutex> lock(graph_mutex_);
    g.addPoint(h.lifted.data(), size_t(id));
  }
}

void ItemIndex::BuildHnsw(const HnswOptions& options, const std::function<void(int64_t)>& progress) {
  if (options.m < 2 || options.ef_construction < 1 || options.ef_search < 1) {
    throw std::invalid_argument("BuildHnsw: m must be >= 2, ef_construction and ef_search >= 1");
  }
  const int64_t n = size();
  auto h = std::make_unique<Hnsw>(dim_, options.metric);
  h->ef_search = options.ef_search;
  double max_sq = 0;
  if (h->lifted_l2) {
    for (int64_t i = 0; i < n; ++i) max_sq = std::max(max_sq, SquaredNorm(Row(i), dim_));
  }
  h->norm = std::sqrt(max_sq);
  const size_t capacity = size_t(n + std::max<int64_t>(n / 4, 1024));
  h->graph = std::make_unique<Graph>(h->space(), capacity, size_t(options.m), size_t(options.ef_construction));
  h->graph->setEf(size_t(options.ef_search));

  Graph& g = *h->graph;
  const Hnsw& space = *h;
  const int64_t d = dim_;
  auto insert = [&](int64_t id, std::vector<float>& lifted) {
    space.Vector(Row(id), d, lifted.data());
    g.addPoint(lifted.data(), size_t(id));
  };
  std::vector<float> lifted(size_t(dim_ + 1));
  if (n > 0) insert(0, lifted);  // the entry point, alone
  const int threads = options.threads > 0 ? options.threads : int(std::max(1u, std::thread::hardware_concurrency()));
  std::atomic<int64_t> next{1}, done{n > 0 ? 1 : 0};
  std::exception_ptr error;
  std::mutex error_mutex;
  constexpr int64_t kGrain = 256;
  auto work = [&](bool report) {
    std::vector<float> buffer(size_t(d + 1));
    int64_t last_report = 0;
    try {
      for (;;) {
        const int64_t begin = next.fetch_add(kGrain);
        if (begin >= n) break;
        const int64_t end = std::min(n, begin + kGrain);
        for (int64_t id = begin; id < end; ++id) insert(id, buffer);
        const int64_t total = done.fetch_add(end - begin) + (end - begin);
        if (report && progress && total - last_report >= 8192) {
          progress(total);
          last_report = total;
        }
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex);
      if (!error) error = std::current_exception();
      next.store(n);  // the others stop too
    }
  };
  std::vector<std::thread> workers;
  for (int t = 1; t < threads; ++t) workers.emplace_back(work, false);
  work(true);
  for (auto& w : workers) w.join();
  if (error) std::rethrow_exception(error);
  if (progress) progress(n);

  std::unique_lock<std::shared_mutex> lock(graph_mutex_);
  hnsw_ = std::move(h);
}

std::string ItemIndex::SaveHnsw() const {
  std::shared_lock<std::shared_mutex> lock(graph_mutex_);
  if (!hnsw_) return {};
  const Graph& g = *hnsw_->graph;
  const size_t count = g.cur_element_count;
  std::string out;
  size_t links = 0;
  for (size_t i = 0; i < count; ++i) links += sizeof(uint32_t) + size_t(g.element_levels_[i]) * g.size_links_per_element_;
  out.reserve(64 + 128 + count * g.size_data_per_element_ + links);
  out.append(kMagic, sizeof kMagic);
  Append(&out, kFormatVersion);
  Append(&out, uint32_t(hnsw_->lifted_l2 ? HnswMetric::kLiftedL2 : HnswMetric::kInnerProduct));
  Append(&out, int64_t(dim_));
  Append(&out, int64_t(count));
  Append(&out, hnsw_->norm);
  // Then the fields and layout of hnswlib's HierarchicalNSW::saveIndex (with max_elements = count).
  Append(&out, g.offsetLevel0_);
  Append(&out, count);
  Append(&out, count);
  Append(&out, g.size_data_per_element_);
  Append(&out, g.label_offset_);
  Append(&out, g.offsetData_);
  Append(&out, g.maxlevel_);
  Append(&out, g.enterpoint_node_);
  Append(&out, g.maxM_);
  Append(&out, g.maxM0_);
  Append(&out, g.M_);
  Append(&out, g.mult_);
  Append(&out, g.ef_construction_);
  out.append(g.data_level0_memory_, count * g.size_data_per_element_);
  for (size_t i = 0; i < count; ++i) {
    const uint32_t size = g.element_levels_[i] > 0 ? uint32_t(g.size_links_per_element_ * size_t(g.element_levels_[i])) : 0;
    Append(&out, size);
    if (size) out.append(g.linkLists_[i], size);
  }
  return out;
}

Status ItemIndex::LoadHnsw(const std::string& bytes, const HnswOptions& options) {
  if (options.ef_search < 1) throw std::invalid_argument("LoadHnsw: ef_search must be >= 1");
  const Status truncated = Status::Corruption("the graph bytes are truncated");
  Reader in(bytes);
  char magic[sizeof kMagic];
  in.Take(magic, sizeof magic);
  if (in.truncated()) return truncated;
  if (std::memcmp(magic, kMagic, sizeof kMagic) != 0) return Status::Corruption("not an HNSW graph of Mosaic");
  if (in.Get<uint32_t>() != kFormatVersion) return Status::Corruption("unknown graph format version");
  const auto metric = in.Get<uint32_t>();
  if (metric != uint32_t(HnswMetric::kInnerProduct) && metric != uint32_t(HnswMetric::kLiftedL2)) {
    return Status::Corruption("unknown graph metric");
  }
  const int64_t dim = in.Get<int64_t>(), rows = in.Get<int64_t>();
  const double norm = in.Get<double>();
  if (in.truncated()) return truncated;
  if (dim != dim_) {
    return Status::Corruption("the graph is of width " + std::to_string(dim) + ", the index " + std::to_string(dim_));
  }
  const int64_t n = size();
  if (rows < 0 || rows > n) {
    return Status::Corruption("the graph holds " + std::to_string(rows) + " rows, the index " + std::to_string(n));
  }
  if (!std::isfinite(norm) || norm < 0) return Status::Corruption("bad lift norm");

  const auto offset_level0 = in.Get<size_t>();
  in.Get<size_t>();  // max_elements
  const auto count = in.Get<size_t>();
  const auto size_data_per_element = in.Get<size_t>();
  const auto label_offset = in.Get<size_t>();
  const auto offset_data = in.Get<size_t>();
  const auto maxlevel = in.Get<int>();
  const auto enterpoint = in.Get<hnswlib::tableint>();
  const auto max_m = in.Get<size_t>();
  const auto max_m0 = in.Get<size_t>();
  const auto m = in.Get<size_t>();
  const auto mult = in.Get<double>();
  const auto ef_construction = in.Get<size_t>();
  if (in.truncated()) return truncated;
  if (count != size_t(rows)) return Status::Corruption("the graph's element count differs from its header");
  if (m < 2 || m > 10000 || max_m != m || max_m0 != 2 * m || ef_construction < 1 || ef_construction > (size_t(1) << 24)) {
    return Status::Corruption("bad graph parameters");
  }

  auto h = std::make_unique<Hnsw>(dim_, HnswMetric(metric));
  h->norm = norm;
  h->ef_search = options.ef_search;
  const size_t capacity = size_t(n + std::max<int64_t>(n / 4, 1024));
  h->graph = std::make_unique<Graph>(h->space(), capacity, m, ef_construction);
  Graph& g = *h->graph;
  if (offset_level0 != g.offsetLevel0_ || size_data_per_element != g.size_data_per_element_ ||
      label_offset != g.label_offset_ || offset_data != g.offsetData_ || mult != g.mult_) {
    return Status::Corruption("the graph's layout does not fit hnswlib's for this width and M");
  }
  if (count > 0 ? (enterpoint >= count || maxlevel < 0) : (enterpoint != hnswlib::tableint(-1) || maxlevel != -1)) {
    return Status::Corruption("bad entry point");
  }
  in.Take(g.data_level0_memory_, count * size_data_per_element);
  if (in.truncated()) return truncated;
  g.cur_element_count = count;  // from here on the destructor frees the link lists read so far
  for (size_t i = 0; i < count; ++i) g.element_levels_[i] = 0;
  for (size_t i = 0; i < count; ++i) {
    const auto size = in.Get<uint32_t>();
    if (size % g.size_links_per_element_ != 0) return Status::Corruption("bad link list size");
    const size_t levels = size / g.size_links_per_element_;
    if (int64_t(levels) > maxlevel) return Status::Corruption("an element above the top level");
    if (size > in.remaining()) return truncated;  // before allocating what a damaged size asks for
    if (levels > 0) {
      g.linkLists_[i] = static_cast<char*>(std::malloc(size));
      if (!g.linkLists_[i]) throw std::bad_alloc();
      in.Take(g.linkLists_[i], size);
      g.element_levels_[i] = int(levels);
    } else {
      g.linkLists_[i] = nullptr;
    }
  }
  if (in.truncated()) return truncated;
  if (in.remaining() > 0) return Status::Corruption("trailing bytes after the graph");
  if (count > 0 && g.element_levels_[enterpoint] != maxlevel) {
    return Status::Corruption("the entry point is not on the top level");
  }
  // Every neighbour list within bounds, every label a row of this index holding that row's vector.
  auto check_list = [&](const uint32_t* list, size_t max) {
    const uint32_t k = *list;  // hnswlib's list count (low 16 bits used)
    if ((k & 0xFFFF) > max || (k >> 16) != 0) return Status::Corruption("bad neighbour list");
    for (uint32_t j = 0; j < k; ++j) {
      if (list[1 + j] >= count) return Status::Corruption("a neighbour outside the graph");
    }
    return Status::OK();
  };
  std::vector<uint8_t> seen(count, 0);
  for (size_t i = 0; i < count; ++i) {
    const char* element = g.data_level0_memory_ + i * g.size_data_per_element_;
    MOSAIC_RETURN_IF_ERROR(check_list(reinterpret_cast<const uint32_t*>(element + g.offsetLevel0_), g.maxM0_));
    for (int l = 1; l <= g.element_levels_[i]; ++l) {
      MOSAIC_RETURN_IF_ERROR(check_list(
          reinterpret_cast<const uint32_t*>(g.linkLists_[i] + size_t(l - 1) * g.size_links_per_element_), g.maxM_));
    }
    const hnswlib::labeltype label = g.getExternalLabel(hnswlib::tableint(i));
    if (label >= count || seen[label]) {
      return Status::Corruption("the graph's labels are not the ids 0.." + std::to_string(count));
    }
    seen[label] = 1;
    if (std::memcmp(element + g.offsetData_, Row(int64_t(label)), size_t(dim_) * sizeof(float)) != 0) {
      return Status::Corruption("the graph's vector of row " + std::to_string(label) + " differs from the index's");
    }
    g.label_lookup_[label] = hnswlib::tableint(i);
  }
  g.enterpoint_node_ = enterpoint;
  g.maxlevel_ = maxlevel;
  g.setEf(size_t(options.ef_search));

  {
    std::unique_lock<std::shared_mutex> lock(graph_mutex_);
    hnsw_ = std::move(h);
  }
  for (int64_t id = rows; id < n; ++id) InsertIntoGraph(id);  // rows added after the graph was saved
  return Status::OK();
}

void ItemIndex::SetEfSearch(int ef) {
  if (ef < 1) throw std::invalid_argument("ItemIndex: ef_search must be >= 1");
  std::unique_lock<std::shared_mutex> lock(graph_mutex_);
  if (hnsw_) {
    hnsw_->ef_search = ef;
    hnsw_->graph->setEf(size_t(ef));
  }
}

void ItemIndex::Encode(int64_t id) {
  const float* x = Row(id);
  int8_t* code = code_blocks_[id / kBlockRows].get() + (id % kBlockRows) * dim_;
  float* meta = code_meta_[id / kBlockRows].get() + (id % kBlockRows) * 3;
  float largest = 0;
  for (int64_t j = 0; j < dim_; ++j) largest = std::max(largest, std::fabs(x[j]));
  const float scale = largest > 0 ? largest / 127.0f : 1.0f;
  double residual = 0, coded = 0;
  for (int64_t j = 0; j < dim_; ++j) {
    const long c = std::clamp(std::lround(x[j] / scale), -127L, 127L);
    code[j] = int8_t(c);
    const double r = double(x[j]) - double(scale) * double(c);
    residual += r * r;
    coded += double(scale) * double(c) * double(scale) * double(c);
  }
  meta[0] = scale;
  meta[1] = float(std::sqrt(residual));
  meta[2] = float(std::sqrt(coded));
}

bool ItemIndex::SearchExactByCodes(const float* query, int64_t k, int64_t n, const std::vector<int64_t>* excluded,
                                   TopK* out) const {
  const int64_t d = dim_;
  float largest = 0;
  for (int64_t j = 0; j < d; ++j) {
    if (!std::isfinite(query[j])) return false;
    largest = std::max(largest, std::fabs(query[j]));
  }
  if (!(largest > 0)) return false;
  const float query_scale = largest / 127.0f;
  std::vector<int16_t> query_code(size_t(d), 0);
  double residual = 0, coded = 0;
  for (int64_t j = 0; j < d; ++j) {
    const long c = std::clamp(std::lround(query[j] / query_scale), -127L, 127L);
    query_code[size_t(j)] = int16_t(c);
    const double r = double(query[j]) - double(query_scale) * double(c);
    residual += r * r;
    coded += double(query_scale) * double(c) * double(query_scale) * double(c);
  }
  // A margin over the bound for the float arithmetic of the approximations and of the exact scores.
  constexpr float kMargin = 1.001f, kRelative = 1e-4f;
  const float query_residual = float(std::sqrt(residual)), query_coded = float(std::sqrt(coded));
  if (!std::isfinite(query_coded) || !std::isfinite(query_residual)) return false;  // beyond float: no bound

  Scratch& scratch = ThreadScratch();
  scratch.approx.resize(size_t(n));
  scratch.bound.resize(size_t(n));
  float* approx = scratch.approx.data();
  float* error = scratch.bound.data();
  const bool has_excluded = excluded && !excluded->empty();
  auto is_excluded = [&, ex = has_excluded ? excluded->begin() : std::vector<int64_t>::const_iterator()](int64_t id) mutable {
    if (!has_excluded) return false;
    ex = std::lower_bound(ex, excluded->end(), id);
    return ex != excluded->end() && *ex == id;
  };
  std::vector<float> floor;  // min-heap of the k largest lower bounds
  floor.reserve(size_t(k));
  const int16_t* q = query_code.data();
  for (int64_t id = 0; id < n; ++id) {
    const int8_t* code = code_blocks_[id / kBlockRows].get() + (id % kBlockRows) * d;
    const float* meta = code_meta_[id / kBlockRows].get() + (id % kBlockRows) * 3;
    int32_t dot = 0;
    for (int64_t j = 0; j < d; ++j) dot += int32_t(int16_t(code[j]) * q[j]);
    const float a = float(dot) * meta[0] * query_scale;
    const float bound = (query_coded * meta[1] + query_residual * meta[2] + query_residual * meta[1]) * kMargin;
    approx[id] = a;
    error[id] = bound + kRelative * (std::fabs(a) + bound);
    if (is_excluded(id)) {
      error[id] = -1;  // marks the row as never a candidate
      continue;
    }
    const float low = a - error[id];
    if (int64_t(floor.size()) < k) {
      floor.push_back(low);
      std::push_heap(floor.begin(), floor.end(), std::greater<float>());
    } else if (low > floor.front()) {
      std::pop_heap(floor.begin(), floor.end(), std::greater<float>());
      floor.back() = low;
      std::push_heap(floor.begin(), floor.end(), std::greater<float>());
    }
  }
  // Fewer than k admissible rows: every one of them is a candidate.
  const float threshold = int64_t(floor.size()) < k ? -std::numeric_limits<float>::infinity() : floor.front();
  Selector selector(k);
  for (int64_t id = 0; id < n; ++id) {
    if (error[id] < 0 || approx[id] + error[id] < threshold) continue;
    selector.OfferAscending(cblas_sdot(int(d), Row(id), 1, query, 1), id);
  }
  *out = selector.Finish();
  return true;
}

TopK ItemIndex::SearchExact(const float* query, int64_t k, const SearchFilter& filter) const {
  if (k <= 0) throw std::invalid_argument("ItemIndex: k must be positive");
  if (!query) throw std::invalid_argument("ItemIndex: null query");
  const int64_t n = size();
  CheckList(filter.allowed, n, "allowed");
  CheckList(filter.excluded, n, "excluded");
  TopK by_codes;
  if (!filter.allowed && SearchExactByCodes(query, k, n, filter.excluded, &by_codes)) return by_codes;
  // An allowed list (short: gathered and scanned), or a query the codes cannot bound: float32 scan.
  Selector selector(k);
  Scratch& scratch = ThreadScratch();
  scratch.scores.resize(size_t(kChunkRows));
  float* scores = scratch.scores.data();
  const int d = int(dim_);

  if (filter.allowed) {
    // Gather the admissible rows chunk by chunk, then one sgemv per chunk.
    scratch.rows.resize(size_t(kChunkRows * dim_));
    scratch.ids.resize(size_t(kChunkRows));
    const std::vector<int64_t>* excluded = filter.excluded;
    auto ex = excluded ? excluded->begin() : std::vector<int64_t>::const_iterator();
    int64_t filled = 0, previous = -1;
    auto flush = [&] {
      if (filled == 0) return;
      cblas_sgemv(CblasRowMajor, CblasNoTrans, int(filled), d, 1.0f, scratch.rows.data(), d, query, 1, 0.0f, scores, 1);
      for (int64_t j = 0; j < filled; ++j) selector.OfferAscending(scores[j], scratch.ids[size_t(j)]);
      filled = 0;
    };
    for (int64_t id : *filter.allowed) {
      if (id == previous) continue;
      previous = id;
      if (excluded) {
        while (ex != excluded->end() && *ex < id) ++ex;
        if (ex != excluded->end() && *ex == id) continue;
      }
      std::memcpy(scratch.rows.data() + filled * dim_, Row(id), size_t(dim_) * sizeof(float));
      scratch.ids[size_t(filled++)] = id;
      if (filled == kChunkRows) flush();
    }
    flush();
    return selector.Finish();
  }

  const std::vector<int64_t>* excluded = filter.excluded;
  const bool has_excluded = excluded && !excluded->empty();
  auto ex = has_excluded ? excluded->begin() : std::vector<int64_t>::const_iterator();
  for (int64_t begin = 0; begin < n;) {
    const int64_t offset = begin % kBlockRows;
    const int64_t rows = std::min({kChunkRows, n - begin, kBlockRows - offset});
    cblas_sgemv(CblasRowMajor, CblasNoTrans, int(rows), d, 1.0f, Row(begin), d, query, 1, 0.0f, scores, 1);
    for (int64_t j = 0; j < rows; ++j) {
      const float s = scores[j];
      if (!(s > selector.threshold())) continue;
      const int64_t id = begin + j;
      if (has_excluded) {
        ex = std::lower_bound(ex, excluded->end(), id);
        if (ex != excluded->end() && *ex == id) continue;
      }
      selector.OfferAscending(s, id);
    }
    begin += rows;
  }
  return selector.Finish();
}

TopK ItemIndex::Search(const float* query, int64_t k, const SearchFilter& filter) const {
  if (filter.allowed) return SearchExact(query, k, filter);
  std::shared_lock<std::shared_mutex> lock(graph_mutex_);
  if (!hnsw_) {
    lock.unlock();
    return SearchExact(query, k, filter);
  }
  if (k <= 0) throw std::invalid_argument("ItemIndex: k must be positive");
  if (!query) throw std::invalid_argument("ItemIndex: null query");
  const int64_t n = size();
  CheckList(filter.excluded, n, "excluded");
  const Graph& g = *hnsw_->graph;
  const size_t excluded = filter.excluded ? filter.excluded->size() : 0;
  const size_t candidates = std::max<size_t>(size_t(hnsw_->ef_search), size_t(k) + excluded);
  // A graph search visits about 2M neighbours per candidate: with that many candidates a scan is cheaper.
  if (candidates * 2 * g.maxM0_ >= size_t(n)) {
    lock.unlock();
    return SearchExact(query, k, filter);
  }
  Scratch& scratch = ThreadScratch();
  const float* graph_query = query;
  if (hnsw_->lifted_l2) {  // [q, 0]
    scratch.lifted.resize(size_t(dim_ + 1));
    std::memcpy(scratch.lifted.data(), query, size_t(dim_) * sizeof(float));
    scratch.lifted[size_t(dim_)] = 0.0f;
    graph_query = scratch.lifted.data();
  }
  // searchKnn's candidate list is max(ef, k): asking for `candidates` results is a per-query ef.
  auto found = g.searchKnn(graph_query, candidates);
  lock.unlock();  // rows are read without the graph
  // Rows are published before they enter the graph, so every id found is below the size now (rows
  // added while the graph was searched may be among them).
  const int64_t published = size();
  Selector selector(k);
  while (!found.empty()) {
    const auto id = int64_t(found.top().second);
    found.pop();
    if (id >= published || Contains(filter.excluded, id)) continue;
    selector.Offer(cblas_sdot(int(dim_), query, 1, Row(id), 1), id);
  }
  return selector.Finish();
}

float ItemIndex::Score(const float* query, int64_t id) const {
  if (id < 0 || id >= size()) throw std::invalid_argument("ItemIndex::Score: id " + std::to_string(id) + " out of range");
  return cblas_sdot(int(dim_), query, 1, Row(id), 1);
}

void ItemIndex::Row(int64_t id, float* out) const {
  if (id < 0 || id >= size()) throw std::invalid_argument("ItemIndex::Row: id " + std::to_string(id) + " out of range");
  std::memcpy(out, blocks_[id / kBlockRows].get() + (id % kBlockRows) * dim_, size_t(dim_) * sizeof(float));
}

}  // namespace mosaic::fusion
