#include "jobs/service/version.h"

#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "fusion/trainer.h"

namespace mosaic::jobs::service {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "reps and nodes records are stored as native little-endian");

namespace {

std::string ChunkName(size_t i, const char* prefix = "reps") {
  char name[32];
  std::snprintf(name, sizeof name, "%s/%06zu", prefix, i);
  return name;
}

// Records above this many bytes in one batch commit before more are added.
constexpr size_t kBatchBytes = size_t(64) << 20;

}  // namespace

int64_t LoadedModel::ModelRelation(store::RelationId relation, bool reverse) const {
  if (has_interacted && relation == interacted) {
    return reverse ? fusion::InteractedByRelation(num_kg_relations) : fusion::InteractedRelation(num_kg_relations);
  }
  auto it = kg_relation.find(relation);
  if (it == kg_relation.end()) return -1;
  return reverse ? fusion::InverseRelation(it->second, num_kg_relations) : it->second;
}

nlohmann::json VersionRelations(const Snapshot& snap) {
  const int64_t R = int64_t(snap.kg_relations.size());
  nlohmann::json relations = nlohmann::json::array();
  for (bool inverse : {false, true}) {
    for (int64_t r = 0; r < R; ++r) {
      relations.push_back({{"index", inverse ? fusion::InverseRelation(r, R) : r},
                           {"store_id", snap.kg_relations[size_t(r)]},
                           {"name", snap.kg_relation_names[size_t(r)]},
                           {"inverse", inverse}});
    }
  }
  for (bool inverse : {false, true}) {
    nlohmann::json r = {{"index", inverse ? fusion::InteractedByRelation(R) : fusion::InteractedRelation(R)},
                        {"name", std::string(store::kInteractedRelation)}, {"inverse", inverse}};
    r["store_id"] = snap.has_interacted ? nlohmann::json(snap.interacted) : nlohmann::json(nullptr);
    relations.push_back(r);
  }
  return relations;
}

std::vector<uint32_t> VersionHistory(const Snapshot& snap) {
  const uint32_t users = snap.data.num_users;
  std::vector<uint32_t> counts(size_t(users) + 1, 0);
  for (const auto& x : snap.data.interactions) ++counts[size_t(x.user) + 1];
  for (size_t u = 1; u < counts.size(); ++u) counts[u] += counts[u - 1];
  std::vector<uint32_t> out(counts);
  out.resize(counts.size() + snap.data.interactions.size());
  std::vector<uint32_t> next(counts.begin(), counts.end() - 1);
  for (const auto& x : snap.data.interactions) out[counts.size() + next[x.user]++] = x.item;
  for (uint32_t u = 0; u < users; ++u) {
    std::sort(out.begin() + long(counts.size() + counts[u]), out.begin() + long(counts.size() + counts[u + 1]));
  }
  return out;
}

Status WriteModelVersion(store::Store* store, uint64_t version, ModelVersionData data,
                         const std::function<Status(store::Batch*)>& last_batch) {
  at::Tensor reps = data.reps.to(torch::kCPU, torch::kFloat).contiguous();
  const char* bytes = static_cast<const char*>(reps.data_ptr());
  const size_t total = size_t(reps.numel()) * sizeof(float);
  const size_t row_bytes = size_t(reps.size(1)) * sizeof(float);
  // Whole rows per chunk, so each chunk can be read alone.
  const size_t rows_per_chunk = std::max<size_t>(1, kRepsChunkBytes / std::max<size_t>(row_bytes, 1));
  const size_t chunk_bytes = rows_per_chunk * row_bytes;

  std::unique_ptr<store::Batch> batch;
  MOSAIC_RETURN_IF_ERROR(store->BeginBatch(&batch));
  size_t pending = 0;
  auto put = [&](const std::string& name, std::string_view blob) -> Status {
    if (pending > 0 && pending + blob.size() > kBatchBytes) {
      MOSAIC_RETURN_IF_ERROR(batch->Commit());
      pending = 0;
    }
    MOSAIC_RETURN_IF_ERROR(batch->PutModelRecord(version, name, blob));
    pending += blob.size();
    return Status::OK();
  };
  MOSAIC_RETURN_IF_ERROR(put("config", fusion::ConfigToJson(data.config)));
  MOSAIC_RETURN_IF_ERROR(put("weights", data.weights));
  size_t chunks = 0;
  for (size_t offset = 0; offset < total || (total == 0 && chunks == 0); offset += chunk_bytes) {
    const size_t n = std::min(chunk_bytes, total - offset);
    MOSAIC_RETURN_IF_ERROR(put(ChunkName(chunks++), std::string_view(bytes + offset, n)));
    if (total == 0) break;
  }
  std::string nodes(data.nodes.size() * 4, '\0');
  if (!data.nodes.empty()) std::memcpy(nodes.data(), data.nodes.data(), nodes.size());
  MOSAIC_RETURN_IF_ERROR(put("nodes", nodes));
  MOSAIC_RETURN_IF_ERROR(put("relations", data.relations.dump()));
  size_t history_chunks = 0;
  const size_t history_bytes = data.history.size() * sizeof(uint32_t);
  const char* history = reinterpret_cast<const char*>(data.history.data());
  for (size_t offset = 0; offset < history_bytes; offset += kRepsChunkBytes) {
    const size_t n = std::min(kRepsChunkBytes, history_bytes - offset);
    MOSAIC_RETURN_IF_ERROR(put(ChunkName(history_chunks++, "history"), std::string_view(history + offset, n)));
  }
  size_t hnsw_chunks = 0;
  for (size_t offset = 0; offset < data.hnsw.size(); offset += kRepsChunkBytes) {
    const size_t n = std::min(kRepsChunkBytes, data.hnsw.size() - offset);
    MOSAIC_RETURN_IF_ERROR(put(ChunkName(hnsw_chunks++, "hnsw"), std::string_view(data.hnsw.data() + offset, n)));
  }
  // The last batch: anything the caller adds, the manifest, and the switch.
  if (last_batch) MOSAIC_RETURN_IF_ERROR(last_batch(batch.get()));
  data.manifest["reps_chunks"] = chunks;
  data.manifest["reps_rows"] = reps.size(0);
  data.manifest["reps_dim"] = reps.size(1);
  data.manifest["hnsw_chunks"] = hnsw_chunks;
  data.manifest["history_chunks"] = history_chunks;
  MOSAIC_RETURN_IF_ERROR(batch->PutModelRecord(version, "manifest", data.manifest.dump()));
  MOSAIC_RETURN_IF_ERROR(batch->SetCurrentModel(version));
  return batch->Commit();
}

Status CurrentModelVersion(const store::ReadView& view, uint64_t* version, bool* found) {
  Status s = view.GetCurrentModel(version);
  *found = s.ok();
  if (s.IsNotFound()) return Status::OK();
  return s;
}

Status LoadCurrentModel(const store::ReadView& view, LoadedModel* m) {
  Status s = view.GetCurrentModel(&m->version);
  if (s.IsNotFound()) return Status::NotFound("no model yet: run `mosaic rebuild`");
  MOSAIC_RETURN_IF_ERROR(s);
  const std::string where = "model version " + std::to_string(m->version) + ": ";
  auto record = [&](const std::string& name, std::string* blob) -> Status {
    Status r = view.GetModelRecord(m->version, name, blob);
    if (r.IsNotFound()) return Status::Corruption(where + "record '" + name + "' is missing");
    return r;
  };
  std::string blob;
  MOSAIC_RETURN_IF_ERROR(record("manifest", &blob));
  m->manifest = nlohmann::json::parse(blob, nullptr, false);
  if (!m->manifest.is_object()) return Status::Corruption(where + "manifest is not a JSON object");
  MOSAIC_RETURN_IF_ERROR(record("config", &blob));
  try {
    m->config = fusion::ConfigFromJson(blob);
  } catch (const std::exception& e) {
    return Status::Corruption(where + "config: " + e.what());
  }
  MOSAIC_RETURN_IF_ERROR(record("relations", &blob));
  m->relations = nlohmann::json::parse(blob, nullptr, false);
  if (!m->relations.is_array()) return Status::Corruption(where + "relations is not a JSON array");
  MOSAIC_RETURN_IF_ERROR(record("weights", &m->weights));

  const int64_t rows = m->manifest.value("reps_rows", int64_t(-1));
  const int64_t dim = m->manifest.value("reps_dim", int64_t(-1));
  const size_t chunks = m->manifest.value("reps_chunks", size_t(0));
  const int64_t num_nodes = m->config.num_users + m->config.num_items + m->config.num_entities;
  if (rows != num_nodes || dim <= 0) return Status::Corruption(where + "manifest reps_rows/reps_dim do not fit the config");
  m->reps = torch::empty({rows, dim}, torch::kFloat);
  char* out = static_cast<char*>(m->reps.data_ptr());
  const size_t total = size_t(rows) * size_t(dim) * sizeof(float);
  size_t offset = 0;
  for (size_t i = 0; i < chunks; ++i) {
    MOSAIC_RETURN_IF_ERROR(record(ChunkName(i), &blob));
    if (offset + blob.size() > total) return Status::Corruption(where + "reps chunks hold more than reps_rows rows");
    std::memcpy(out + offset, blob.data(), blob.size());
    offset += blob.size();
  }
  if (offset != total) return Status::Corruption(where + "reps chunks hold fewer than reps_rows rows");

  m->hnsw.clear();
  const size_t hnsw_chunks = m->manifest.value("hnsw_chunks", size_t(0));
  for (size_t i = 0; i < hnsw_chunks; ++i) {
    MOSAIC_RETURN_IF_ERROR(record(ChunkName(i, "hnsw"), &blob));
    m->hnsw += blob;
  }

  m->history_offsets.clear();
  m->history_items.clear();
  std::string history;
  for (size_t i = 0, n = m->manifest.value("history_chunks", size_t(0)); i < n; ++i) {
    MOSAIC_RETURN_IF_ERROR(record(ChunkName(i, "history"), &blob));
    history += blob;
  }
  if (!history.empty()) {
    const size_t users = size_t(m->config.num_users), values = history.size() / 4;
    if (history.size() % 4 != 0 || values < users + 1) return Status::Corruption(where + "history is too short");
    std::vector<uint32_t> all(values);
    std::memcpy(all.data(), history.data(), history.size());
    m->history_offsets.assign(all.begin(), all.begin() + long(users + 1));
    m->history_items.assign(all.begin() + long(users + 1), all.end());
    for (size_t u = 0; u < users; ++u) {
      if (m->history_offsets[u] > m->history_offsets[u + 1]) return Status::Corruption(where + "history offsets decrease");
    }
    if (m->history_offsets[0] != 0 || m->history_offsets[users] != m->history_items.size()) {
      return Status::Corruption(where + "history offsets do not span its items");
    }
    for (uint32_t item : m->history_items) {
      if (int64_t(item) >= m->config.num_items) return Status::Corruption(where + "history names an item out of range");
    }
  }

  MOSAIC_RETURN_IF_ERROR(record("nodes", &blob));
  if (blob.size() != size_t(rows) * 4) return Status::Corruption(where + "nodes does not have one id per row");
  m->nodes.resize(size_t(rows));
  if (rows > 0) std::memcpy(m->nodes.data(), blob.data(), blob.size());
  m->second.reset();
  const std::string kind = m->manifest.value("kind", std::string("v1"));
  if (kind == "v2") {
    fusion::SecondVersion v;
    try {
      v = fusion::SecondVersion::Load(m->weights);
    } catch (const std::exception& e) {  // fusion reports a damaged record by exception
      return Status::Corruption(where + "weights: " + e.what());
    }
    if (int64_t(v.num_items) != m->config.num_items || int64_t(v.dim()) != dim) {
      return Status::Corruption(where + "the second version's model does not fit its reps");
    }
    // Its item vectors are the reps' item rows, and the record is parsed: neither is kept twice.
    v.items.clear();
    v.items.shrink_to_fit();
    std::string().swap(m->weights);
    m->second = std::make_shared<const fusion::SecondVersion>(std::move(v));
  } else if (kind != "v1") {
    return Status::Corruption(where + "unknown model kind '" + kind + "'");
  }
  m->Index();
  return Status::OK();
}

void LoadedModel::Index() {
  row_of.clear();
  row_of.reserve(nodes.size());
  for (size_t r = 0; r < nodes.size(); ++r) row_of.emplace(nodes[r], int64_t(r));
  num_kg_relations = (config.num_relations - 2) / 2;
  kg_relation.clear();
  has_interacted = false;
  for (const auto& r : relations) {
    const int64_t index = r.value("index", int64_t(-1));
    if (!r.contains("store_id") || !r["store_id"].is_number()) continue;  // no such relation in the store
    const auto id = r["store_id"].get<store::RelationId>();
    if (index >= 0 && index < num_kg_relations) kg_relation[id] = index;
    if (index == fusion::InteractedRelation(num_kg_relations)) {
      has_interacted = true;
      interacted = id;
    }
  }
  kg_feature.clear();
  if (second) {
    const std::vector<fusion::KgFeatureKey>& keys = second->content.kg_keys;
    kg_feature.reserve(keys.size());
    for (size_t k = 0; k < keys.size(); ++k) {
      kg_feature.emplace(KgFeatureKeyOf(keys[k].relation, keys[k].node, keys[k].backward), uint32_t(k));
    }
  }
}

Status LoadModelWeights(const LoadedModel& m, std::unique_ptr<fusion::Kgat>* kgat) {
  if (m.is_second_version()) {
    kgat->reset();
    return Status::OK();
  }
  try {
    *kgat = std::make_unique<fusion::Kgat>(fusion::LoadWeights(m.config, m.weights, "cpu"));
  } catch (const std::exception& e) {  // fusion reports weights that do not fit by exception
    return Status::Corruption("model version " + std::to_string(m.version) + ": weights: " + e.what());
  }
  (**kgat)->eval();
  return Status::OK();
}

Status PutPlacement(store::Batch* batch, store::NodeId item, uint64_t version, std::vector<float> values,
                    const char* source) {
  return batch->PutFeature(item, kModelFeature, {kModelExtractor, uint32_t(version), std::move(values), source});
}

}  // namespace mosaic::jobs::service
