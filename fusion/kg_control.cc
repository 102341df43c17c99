#include "fusion/kg_control.h"

#include <algorithm>
#include <stdexcept>
#include <vector>

#include "fusion/random.h"

namespace mosaic::fusion {

namespace {

constexpr uint64_t kKgShuffleStream = 0x4B47'5348;  // "KGSH": independent of the splits' streams

}  // namespace

const char* KgControlName(KgControl control) {
  switch (control) {
    case KgControl::kIntact:
      return "intact";
    case KgControl::kRemoved:
      return "removed";
    case KgControl::kShuffled:
      return "shuffled";
  }
  return "?";
}

bool ParseKgControl(const std::string& name, KgControl* control) {
  for (KgControl c : {KgControl::kIntact, KgControl::kRemoved, KgControl::kShuffled}) {
    if (name == KgControlName(c)) return *control = c, true;
  }
  return false;
}

EvalData WithKgControl(const EvalData& data, KgControl control, uint64_t seed) {
  EvalData out = data;
  if (control == KgControl::kIntact) return out;
  if (control == KgControl::kRemoved) {
    out.kg_triples.clear();
    out.kg_triples.shrink_to_fit();
    out.item_entities.assign(data.num_items, {});
    out.num_kg_relations = 0;
    return out;
  }
  const uint64_t nodes = uint64_t(data.num_items) + data.num_entities;
  // The distinct tails of each relation, ascending, so the draws do not depend on triple order.
  std::vector<std::vector<uint32_t>> tails(data.num_kg_relations);
  for (const auto& t : data.kg_triples) {
    if (t.relation >= data.num_kg_relations || t.head >= nodes || t.tail >= nodes) {
      throw std::invalid_argument("kg control: a triple names a relation or node out of range");
    }
    tails[t.relation].push_back(t.tail);
  }
  for (auto& v : tails) {
    std::sort(v.begin(), v.end());
    v.erase(std::unique(v.begin(), v.end()), v.end());
  }
  std::vector<SplitMix64> rngs;
  rngs.reserve(data.num_kg_relations);
  for (uint32_t r = 0; r < data.num_kg_relations; ++r) rngs.emplace_back(StreamSeed(seed, kKgShuffleStream, r));
  for (auto& t : out.kg_triples) {
    const auto& pool = tails[t.relation];
    t.tail = pool[rngs[t.relation].Below(pool.size())];
  }
  // item_entities from the shuffled triples: the entity at the other end of an item's triple.
  out.item_entities.assign(data.num_items, {});
  for (const auto& t : out.kg_triples) {
    if (t.head < data.num_items && t.tail >= data.num_items) out.item_entities[t.head].push_back(t.tail - data.num_items);
    if (t.tail < data.num_items && t.head >= data.num_items) out.item_entities[t.tail].push_back(t.head - data.num_items);
  }
  for (auto& entities : out.item_entities) {
    std::sort(entities.begin(), entities.end());
    entities.erase(std::unique(entities.begin(), entities.end()), entities.end());
  }
  return out;
}

}  // namespace mosaic::fusion
