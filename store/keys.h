// On-disk layout of a Mosaic store: column families and key encodings.
// Integers in keys are big-endian so that RocksDB's bytewise order is numeric order and a
// prefix scan on a node id yields its edges grouped by relation, then by neighbour.
//
//   cf            key                                         value
//   dict          kind:u8 . external key                      node id:u32
//                 0x10 . relation name                        relation id:u32
//                 0x11 . relation id:u32                      relation name
//   nodes         node id:u32                                 NodeRecord (see EncodeNode)
//   edges_out     src:u32 . relation:u32 . dst:u32            weight:f32
//   edges_in      dst:u32 . relation:u32 . src:u32            weight:f32
//   interactions  user:u32 . item:u32 . kind:u8 [. tag:u32]   weight:f64 . timestamp:i64
//   features      item:u32 . modality name                    FeatureVector (see EncodeFeature)
//   models        version:u64 . record name                   model blob (records listed in jobs/model_version.h)
//   meta          "schema_version", "next_node_id", "next_relation_id", "count/..."
//                 "exposure/" . item:u32 . 'i' | 'p'              impressions | plays:u64
//                 "shown/" . request id                          (empty): impressions of it counted
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "store/store.h"

namespace mosaic::store::keys {

enum Cf : int {
  kDefault = 0,
  kDict,
  kNodes,
  kEdgesOut,
  kEdgesIn,
  kInteractions,
  kFeatures,
  kModels,
  kMeta,
  kNumCfs,
};

// Column family names, indexed by Cf.
extern const char* const kCfNames[kNumCfs];

inline constexpr uint8_t kRelationByName = 0x10;
inline constexpr uint8_t kRelationById = 0x11;

inline constexpr const char* kSchemaVersionKey = "schema_version";
inline constexpr const char* kNextNodeIdKey = "next_node_id";
inline constexpr const char* kNextRelationIdKey = "next_relation_id";
inline constexpr const char* kCurrentModelKey = "current_model";
inline constexpr const char* kModelManifest = "manifest";


inline void AppendU32(std::string* out, uint32_t v) {
  char b[4] = {char(v >> 24), char(v >> 16), char(v >> 8), char(v)};
  out->append(b, 4);
}

inline void AppendU64(std::string* out, uint64_t v) {
  AppendU32(out, uint32_t(v >> 32));
  AppendU32(out, uint32_t(v));
}

// Reads a big-endian u32 at p (the caller checks the length).
inline uint32_t ReadU32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return (uint32_t(u[0]) << 24) | (uint32_t(u[1]) << 16) | (uint32_t(u[2]) << 8) | uint32_t(u[3]);
}

inline uint64_t ReadU64(const char* p) { return (uint64_t(ReadU32(p)) << 32) | ReadU32(p + 4); }

inline std::string U32(uint32_t v) {
  std::string s;
  AppendU32(&s, v);
  return s;
}

inline std::string ModelKey(uint64_t version, std::string_view name) {
  std::string s;
  AppendU64(&s, version);
  s.append(name);
  return s;
}

inline std::string DictKey(NodeKind kind, std::string_view key) {
  std::string s(1, char(kind));
  s.append(key);
  return s;
}

inline std::string RelationNameKey(std::string_view name) {
  std::string s(1, char(kRelationByName));
  s.append(name);
  return s;
}

inline std::string RelationIdKey(RelationId id) {
  std::string s(1, char(kRelationById));
  AppendU32(&s, id);
  return s;
}

// Edge key as stored in edges_out (a, b = src, dst) or edges_in (a, b = dst, src).
inline std::string EdgeKey(NodeId a, RelationId relation, NodeId b) {
  std::string s;
  s.reserve(12);
  AppendU32(&s, a);
  AppendU32(&s, relation);
  AppendU32(&s, b);
  return s;
}

inline std::string EncodeWeight(float w) {
  uint32_t bits;
  std::memcpy(&bits, &w, 4);
  return U32(bits);
}

inline float DecodeWeight(std::string_view v) {
  if (v.size() != 4) return 1.0f;
  uint32_t bits = ReadU32(v.data());
  float w;
  std::memcpy(&w, &bits, 4);
  return w;
}

inline std::string InteractionKey(const Interaction& x) {
  std::string s;
  AppendU32(&s, x.user);
  AppendU32(&s, x.item);
  s.push_back(char(x.kind));
  if (x.kind == InteractionKind::kTagApplication) AppendU32(&s, x.tag);
  return s;
}

inline std::string InteractionValue(const Interaction& x) {
  uint64_t bits;
  std::memcpy(&bits, &x.weight, 8);
  std::string s;
  AppendU64(&s, bits);
  AppendU64(&s, uint64_t(x.timestamp));
  return s;
}

// Parses an interactions record; returns false if it is malformed.
bool DecodeInteraction(std::string_view key, std::string_view value, Interaction* x);

// Node value: kind:u8 . u32 len . key . u32 len . label . attributes (rest).
std::string EncodeNode(const NodeRecord& record);
bool DecodeNode(std::string_view value, NodeRecord* record);

// Feature value: u32 len . extractor . u32 version . u32 count . count x f32 (big-endian bits)
//                . u32 len . source.
std::string FeatureKey(NodeId item, std::string_view modality);
std::string EncodeFeature(const FeatureVector& feature);
bool DecodeFeature(std::string_view value, FeatureVector* feature);

// Counter keys in meta; values are u64.
std::string NodeCountKey(NodeKind kind);
std::string EdgeCountKey(RelationId relation);
inline constexpr const char* kInteractionCountKey = "count/interactions";
inline constexpr const char* kTagApplicationCountKey = "count/tag_applications";
inline constexpr const char* kItemsWithInteractionsKey = "count/items_with_interactions";
inline constexpr const char* kItemsLinkedKey = "count/items_linked";

// Exposure counters of an item (impressions 'i', plays 'p') in meta; values are u64.
inline constexpr std::string_view kExposurePrefix = "exposure/";
std::string ExposureKey(NodeId item, char which);
// Marks in meta of the requests whose impressions were counted.
inline constexpr std::string_view kShownPrefix = "shown/";
// Marks in meta of the stream entries applied (`mosaic consume`): "stream/" + stream + "/" + entry id.
inline constexpr std::string_view kStreamEntryPrefix = "stream/";

}  // namespace mosaic::store::keys
