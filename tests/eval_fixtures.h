// Hand-made EvalData for the tests of fusion/'s peers (baselines_test, content_regression_test):
// an empty dataset of a given size, modalities from rows, every interaction as training, scores.
#pragma once

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <string>
#include <vector>

#include "fusion/baselines.h"
#include "fusion/eval_data.h"

namespace mosaic::fusion {

// `users` users and `items` items (none in the KG), no interactions yet.
inline EvalData Empty(uint32_t users, uint32_t items, uint32_t entities = 0) {
  EvalData data;
  data.num_users = users;
  data.num_items = items;
  data.num_entities = entities;
  data.item_entities.assign(items, {});
  data.item_in_kg.assign(items, false);
  return data;
}

// Index list 0..n-1: every interaction of a toy dataset is training unless a test says otherwise.
inline std::vector<uint32_t> AllIndices(const EvalData& data) {
  std::vector<uint32_t> indices(data.interactions.size());
  std::iota(indices.begin(), indices.end(), 0u);
  return indices;
}

// Sets modality `name` from one vector per item (an empty vector: absent).
inline void SetModality(EvalData* data, const std::string& name, const std::vector<std::vector<float>>& rows) {
  ModalityMatrix m;
  for (const auto& r : rows) m.dim = std::max<int64_t>(m.dim, int64_t(r.size()));
  for (const auto& r : rows) {
    m.present.push_back(!r.empty());
    for (int64_t d = 0; d < m.dim; ++d) m.values.push_back(r.empty() ? 0.0f : r[size_t(d)]);
  }
  data->modalities[name] = std::move(m);
}

// Every item's score for `user`.
inline std::vector<float> Score(const Baseline& model, uint32_t user) {
  std::vector<float> scores;
  model.ScoreUser(user, &scores);
  return scores;
}

}  // namespace mosaic::fusion
