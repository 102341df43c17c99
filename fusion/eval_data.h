// The data one evaluation works on: users, items and interactions renumbered densely, with the
// items' knowledge-graph entities and text vectors. Plain arrays: no store, no LibTorch, so
// splits, baselines and metrics can be tested on hand-made data.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace mosaic::fusion {

struct Interaction {
  uint32_t user = 0;    ///< dense user index
  uint32_t item = 0;    ///< dense item index
  float weight = 1.0f;  ///< play count or rating
  int64_t timestamp = 0;  ///< seconds since the epoch; 0 when unknown (the temporal protocol needs it)
};

// One modality of the items' content.
struct ModalityMatrix {
  int64_t dim = 0;               ///< width of a vector
  std::vector<float> values;     ///< num_items * dim, row-major; rows of absent items are zero
  std::vector<uint8_t> present;  ///< num_items flags

  const float* Row(uint32_t item) const { return values.data() + size_t(item) * size_t(dim); }
};

struct EvalData {
  uint32_t num_users = 0;
  uint32_t num_items = 0;
  uint32_t num_entities = 0;                          ///< KG entities (not items), dense
  std::vector<Interaction> interactions;              ///< every observed (user, item), unique pairs
  std::vector<std::vector<uint32_t>> item_entities;   ///< per item: the KG entities it links to (num_items rows)
  std::map<std::string, ModalityMatrix> modalities;   ///< item content by modality name ("text", "visual", "audio")
  std::vector<bool> item_in_kg;                       ///< per item: linked to the KG (the KGCN CTR protocol's items)
  // The KG's triples among items and entities, forward direction: a node is an item index i (< num_items)
  // or an entity index e written num_items + e. Relation types are dense in [0, num_kg_relations).
  struct KgTriple {
    uint32_t head = 0, relation = 0, tail = 0;
  };
  std::vector<KgTriple> kg_triples;
  uint32_t num_kg_relations = 0;
  std::vector<std::string> user_keys, item_keys;      ///< external keys, for dumps
};

// A split of EvalData::interactions by index.
struct Split {
  std::vector<uint32_t> train, valid, test;  ///< indices into EvalData::interactions
  std::vector<uint32_t> cold_items;          ///< cold protocol: the held-out items (sorted); empty otherwise
};

// One labelled (user, item) pair of the CTR protocol.
struct CtrExample {
  uint32_t user = 0;
  uint32_t item = 0;
  int label = 0;  ///< 1 = listened, 0 = sampled negative
};

struct CtrSplit {
  std::vector<CtrExample> train, valid, test;
};

}  // namespace mosaic::fusion
