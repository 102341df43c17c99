// Hand-made EvalData for the tests of fusion/'s peers (baselines_test, content_regression_test, content_kernel_test):
// an empty dataset of a given size, modalities from rows, every interaction as training, scores,
// and a synthetic catalogue of taste groups with cold items.
#pragma once

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <string>
#include <vector>

#include "fusion/baselines.h"
#include "fusion/eval_data.h"
#include "fusion/random.h"

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

// `groups` taste groups: user u and item i belong to group u % groups and i % groups. Each user
// plays about two thirds of its group's items and two items of other groups. Every fifth item of
// a group is cold (its interactions are left out of *train and listed in *cold). Content follows
// the group: the KG links item i to entity (i % groups) by relation 0, to a noise entity by
// relation 1, and to the next item of its group by relation 2 (an item-item triple); the text is
// the group's one-hot plus uniform noise in [-0.4, 0.4) over 6 dimensions.
inline EvalData Synthetic(uint32_t users, uint32_t items, uint32_t groups, std::vector<uint32_t>* train,
                   std::vector<uint32_t>* cold) {
  EvalData data = Empty(users, items, groups + 5);
  std::vector<uint8_t> is_cold(items, 0);
  cold->clear();
  for (uint32_t i = 0; i < items; ++i) {
    if ((i / groups) % 5 == 4) {
      is_cold[i] = 1;
      cold->push_back(i);
    }
  }
  for (uint32_t u = 0; u < users; ++u) {
    SplitMix64 rng(StreamSeed(11, 1, u));
    for (uint32_t i = 0; i < items; ++i) {
      if (i % groups == u % groups && rng.Below(3) != 0) data.interactions.push_back({u, i, 1});
    }
    for (int extra = 0; extra < 2; ++extra) {
      const uint32_t i = uint32_t(rng.Below(items));
      if (i % groups != u % groups) data.interactions.push_back({u, i, 1});
    }
  }
  // The two extra draws may repeat an item: keep pairs unique, as EvalData promises.
  std::sort(data.interactions.begin(), data.interactions.end(), [](const Interaction& a, const Interaction& b) {
    return a.user != b.user ? a.user < b.user : a.item < b.item;
  });
  data.interactions.erase(std::unique(data.interactions.begin(), data.interactions.end(),
                                      [](const Interaction& a, const Interaction& b) {
                                        return a.user == b.user && a.item == b.item;
                                      }),
                          data.interactions.end());
  train->clear();
  for (uint32_t k = 0; k < data.interactions.size(); ++k) {
    if (!is_cold[data.interactions[k].item]) train->push_back(k);
  }
  data.num_kg_relations = 3;
  std::vector<std::vector<float>> text(items);
  SplitMix64 noise(StreamSeed(11, 2, 0));
  for (uint32_t i = 0; i < items; ++i) {
    data.kg_triples.push_back({i, 0, items + i % groups});
    data.kg_triples.push_back({i, 1, items + groups + uint32_t(noise.Below(5))});
    data.kg_triples.push_back({i, 2, (i + groups) % items});
    text[i].resize(6);
    for (uint32_t d = 0; d < 6; ++d) text[i][d] = (d == i % groups ? 1.0f : 0.0f) + 0.8f * noise.UniformFloat() - 0.4f;
  }
  SetModality(&data, "text", text);
  return data;
}

}  // namespace mosaic::fusion
