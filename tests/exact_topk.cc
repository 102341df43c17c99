#include "tests/exact_topk.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <limits>
#include <stdexcept>
#include <string>

namespace mosaic::fusion {
namespace {

constexpr int64_t kMaxBlockEntries = int64_t{1} << 26;  // scores per query block

at::Tensor LongTensor(const std::vector<int64_t>& values, const at::Device& device) {
  return at::tensor(at::ArrayRef<int64_t>(values), at::TensorOptions().dtype(at::kLong)).to(device);
}

void CheckId(int64_t id, int64_t n, const char* what) {
  if (id < 0 || id >= n) {
    throw std::invalid_argument(std::string("ExactTopK: ") + what + " id " + std::to_string(id) +
                                " outside [0, " + std::to_string(n) + ")");
  }
}

}  // namespace

std::vector<TopK> ExactTopK(const at::Tensor& queries, const at::Tensor& items, int64_t k,
                            const std::vector<std::vector<int64_t>>& exclude,
                            const std::vector<int64_t>& allowed) {
  if (!queries.defined() || !items.defined() || queries.dim() != 2 || items.dim() != 2) {
    throw std::invalid_argument("ExactTopK: queries and items must be 2-D tensors");
  }
  if (!queries.is_floating_point() || !items.is_floating_point()) {
    throw std::invalid_argument("ExactTopK: queries and items must be floating point");
  }
  if (queries.size(1) != items.size(1)) {
    throw std::invalid_argument("ExactTopK: queries have width " + std::to_string(queries.size(1)) +
                                ", items " + std::to_string(items.size(1)));
  }
  if (queries.device() != items.device()) {
    throw std::invalid_argument("ExactTopK: queries and items are on different devices");
  }
  if (k <= 0) throw std::invalid_argument("ExactTopK: k must be positive");
  const int64_t num_queries = queries.size(0);
  const int64_t num_items = items.size(0);
  if (!exclude.empty() && static_cast<int64_t>(exclude.size()) != num_queries) {
    throw std::invalid_argument("ExactTopK: exclude must be empty or hold one list per query");
  }
  for (const auto& list : exclude) {
    for (int64_t id : list) CheckId(id, num_items, "excluded");
  }

  const at::Device device = queries.device();
  const bool restricted = !allowed.empty();
  std::vector<int64_t> candidate_ids;  // position -> item id, ascending (only when restricted)
  at::Tensor candidates = items;
  if (restricted) {
    for (int64_t id : allowed) CheckId(id, num_items, "allowed");
    candidate_ids = allowed;
    std::sort(candidate_ids.begin(), candidate_ids.end());
    candidate_ids.erase(std::unique(candidate_ids.begin(), candidate_ids.end()), candidate_ids.end());
    candidates = items.index_select(0, LongTensor(candidate_ids, device));
  }
  const int64_t num_candidates = candidates.size(0);

  std::vector<TopK> results(static_cast<size_t>(num_queries));
  if (num_queries == 0 || num_candidates == 0) return results;

  const at::ScalarType dtype = at::promote_types(queries.scalar_type(), items.scalar_type());
  const at::Tensor q_all = queries.to(dtype);
  const at::Tensor items_t = candidates.to(dtype).t();  // [d, C]
  const int64_t kk = std::min(k, num_candidates);
  const double neg_inf = -std::numeric_limits<double>::infinity();
  const int64_t block = std::max<int64_t>(1, kMaxBlockEntries / num_candidates);
  // Position of an item id among the candidates, or -1 when it is not one.
  auto position = [&](int64_t id) -> int64_t {
    if (!restricted) return id;
    auto it = std::lower_bound(candidate_ids.begin(), candidate_ids.end(), id);
    return (it != candidate_ids.end() && *it == id) ? it - candidate_ids.begin() : -1;
  };
  auto item_id = [&](int64_t pos) { return restricted ? candidate_ids[static_cast<size_t>(pos)] : pos; };

  for (int64_t begin = 0; begin < num_queries; begin += block) {
    const int64_t rows = std::min(block, num_queries - begin);
    at::Tensor scores = q_all.narrow(0, begin, rows).matmul(items_t);  // [rows, C]
    scores.masked_fill_(scores.isnan(), neg_inf);

    if (!exclude.empty()) {
      std::vector<int64_t> ex_rows, ex_cols;
      for (int64_t r = 0; r < rows; ++r) {
        for (int64_t id : exclude[static_cast<size_t>(begin + r)]) {
          const int64_t pos = position(id);
          if (pos < 0) continue;
          ex_rows.push_back(r);
          ex_cols.push_back(pos);
        }
      }
      if (!ex_rows.empty()) {
        scores.index_put_({LongTensor(ex_rows, device), LongTensor(ex_cols, device)},
                          at::scalar_tensor(neg_inf, scores.options()));
      }
    }

    // Partial selection; only the k-th best value per row is trusted from it (see the header).
    auto [top_values, top_positions] = at::topk(scores, kk, /*dim=*/1, /*largest=*/true, /*sorted=*/false);
    const at::Tensor threshold = std::get<0>(top_values.min(/*dim=*/1, /*keepdim=*/true));  // [rows, 1]
    const at::Tensor at_least = scores.ge(threshold).sum(1).to(at::kCPU, at::kLong).contiguous();
    const at::Tensor values_cpu = top_values.to(at::kCPU, at::kDouble).contiguous();
    const at::Tensor positions_cpu = top_positions.to(at::kCPU, at::kLong).contiguous();
    const at::Tensor threshold_cpu = threshold.to(at::kCPU, at::kDouble).contiguous();
    const double* values = values_cpu.data_ptr<double>();
    const int64_t* positions = positions_cpu.data_ptr<int64_t>();
    const double* thresholds = threshold_cpu.data_ptr<double>();
    const int64_t* counts = at_least.data_ptr<int64_t>();

    struct Entry {
      double score;
      int64_t pos;
    };
    std::vector<Entry> kept;
    for (int64_t r = 0; r < rows; ++r) {
      kept.clear();
      const double t = thresholds[r];
      const double* row_values = values + r * kk;
      const int64_t* row_positions = positions + r * kk;
      if (t == neg_inf || counts[r] > kk) {
        // Keep the strict winners; then, unless the boundary is -inf (excluded), fill the remaining
        // places with the lowest-id candidates scoring exactly t.
        for (int64_t j = 0; j < kk; ++j) {
          if (row_values[j] > t) kept.push_back({row_values[j], row_positions[j]});
        }
        if (t != neg_inf) {
          const at::Tensor tied = scores[r].eq(threshold[r]).nonzero().view(-1).to(at::kCPU).contiguous();
          const int64_t* tied_pos = tied.data_ptr<int64_t>();  // ascending position = ascending id
          const int64_t take = std::min<int64_t>(kk - static_cast<int64_t>(kept.size()), tied.numel());
          for (int64_t j = 0; j < take; ++j) kept.push_back({t, tied_pos[j]});
        }
      } else {
        for (int64_t j = 0; j < kk; ++j) kept.push_back({row_values[j], row_positions[j]});
      }
      std::sort(kept.begin(), kept.end(), [](const Entry& a, const Entry& b) {
        return a.score != b.score ? a.score > b.score : a.pos < b.pos;
      });
      TopK& out = results[static_cast<size_t>(begin + r)];
      out.ids.reserve(kept.size());
      out.scores.reserve(kept.size());
      for (const Entry& e : kept) {
        out.ids.push_back(item_id(e.pos));
        out.scores.push_back(static_cast<float>(e.score));
      }
    }
  }
  return results;
}

}  // namespace mosaic::fusion
