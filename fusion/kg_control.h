// KG controls (KG4RecEval, Zhang et al., TOIS 2025): the same evaluation with the knowledge graph
// intact, removed, or with its facts randomised, so that a KG model's figures can be read against
// what the KG itself contributes. A pure transformation of EvalData: no store, no LibTorch.
#pragma once

#include <cstdint>
#include <string>

#include "fusion/eval_data.h"

namespace mosaic::fusion {

enum class KgControl {
  kIntact,    ///< the data as it is
  kRemoved,   ///< every KG triple and item-entity link dropped
  kShuffled,  ///< each triple's tail redrawn at random among its relation's tails
};

// "intact", "removed", "shuffled".
const char* KgControlName(KgControl control);
// Parses a name of KgControlName; false (and *control untouched) for any other string.
bool ParseKgControl(const std::string& name, KgControl* control);

// `data` with its KG controlled:
// - kIntact: a copy.
// - kRemoved: kg_triples empty, every item_entities row empty (num_items rows kept), num_kg_relations 0.
// - kShuffled: every triple keeps its head and relation, so each relation's triple count and each
//   head's out-degree per relation are unchanged; its tail is drawn uniformly (SplitMix64, one
//   stream per relation seeded by StreamSeed(seed, ...)) among the distinct nodes that are tails of
//   that relation in `data`. Repeated (head, relation, tail) draws are kept, so counts hold exactly.
//   item_entities is rebuilt from the shuffled triples as the snapshot builds it: an item's entities
//   are the entities at the other end of its triples, sorted and unique.
// Everything else, item_in_kg included (protocol data: the CTR split's items), is left as it is.
// Deterministic in (data, control, seed).
EvalData WithKgControl(const EvalData& data, KgControl control, uint64_t seed);

}  // namespace mosaic::fusion
