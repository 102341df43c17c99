// ExactTopK: the reference the tests hold fusion::ItemIndex to (production searches with ItemIndex).
// Scores queries against items by one matrix product and keeps the k best per query. Tensors in (on
// any device), plain vectors out (on the CPU).
//
// Ordering: best score first; equal scores are ordered by lower item id first, and when equal scores
// straddle the k-th place the lowest ids among them are the ones kept. at::topk gives no such promise,
// so it is used only to find each row's k-th best score t; every candidate scoring above t is in the
// result, and when more candidates score >= t than there are places left, the ties at t are listed
// explicitly (ascending id) and the lowest ids fill the remaining places. The k kept are then sorted by
// (score descending, id ascending).
//
// Excluded items (and NaN scores) are set to -inf before selection and are never returned, so a query
// with fewer than k admissible candidates gets fewer than k results. (A finite query against an
// infinite item can also score -inf; such an item is treated as excluded.)
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

#include "fusion/item_index.h"

namespace mosaic::fusion {

// Exact top-k of `queries` [Q, d] against `items` [N, d] (floating point, same device; differing
// dtypes are promoted). One result per query row.
//  * exclude: empty, or Q lists; exclude[q] holds item ids in [0, N) to leave out for query q (seen
//    items). Ids outside `allowed` are ignored; duplicates are harmless.
//  * allowed: when non-empty, only these ids in [0, N) are candidates (duplicates are merged); their
//    rows are gathered before the product.
//  * k larger than the number of candidates returns all of them.
// Queries are scored in blocks so that one block's score matrix stays around 64 Mi entries.
// Throws std::invalid_argument when a tensor is not 2-D floating point, the widths or devices differ,
// k <= 0, exclude has neither 0 nor Q lists, or an id in exclude/allowed is outside [0, N).
std::vector<TopK> ExactTopK(const at::Tensor& queries, const at::Tensor& items, int64_t k,
                            const std::vector<std::vector<int64_t>>& exclude = {},
                            const std::vector<int64_t>& allowed = {});

}  // namespace mosaic::fusion
