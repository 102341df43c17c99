#include "fusion/training_graph.h"

#include <numeric>
#include <stdexcept>
#include <unordered_set>

namespace mosaic::fusion {

TrainingGraph BuildTrainingGraph(const EvalData& data, const std::vector<uint32_t>& train, bool use_kg) {
  TrainingGraph g;
  g.num_users = data.num_users;
  g.num_items = data.num_items;
  g.num_entities = data.num_entities;
  std::unordered_set<uint64_t> pairs;
  g.cold.assign(data.num_items, 1);
  for (uint32_t index : train) {
    if (index >= data.interactions.size()) throw std::invalid_argument("train index out of range");
    const auto& x = data.interactions[index];
    if (pairs.insert((uint64_t(x.user) << 32) | x.item).second) g.interactions.emplace_back(x.user, x.item);
    g.cold.at(x.item) = 0;
  }
  if (use_kg) {
    g.num_kg_relations = data.num_kg_relations;
    const uint32_t base = data.num_users;
    g.triples.reserve(data.kg_triples.size());
    for (const auto& t : data.kg_triples) g.triples.push_back({base + t.head, t.relation, base + t.tail});
  }
  g.modalities = data.modalities;
  return g;
}

std::vector<uint32_t> AllInteractions(const EvalData& data) {
  std::vector<uint32_t> all(data.interactions.size());
  std::iota(all.begin(), all.end(), 0u);
  return all;
}

}  // namespace mosaic::fusion
