#include "jobs/service/placement.h"

#include <torch/torch.h>

#include <unordered_map>

namespace mosaic::jobs::service {

using store::NodeId;
using store::NodeKind;

namespace {

// The second version's placement: its content kernel on the item's modality vectors and on its KG
// features, (relation, neighbour, direction) in store ids as the version keyed them.
Status PlaceByContent(const store::ReadView& view, const LoadedModel& m, const std::vector<NodeId>& items,
                      at::Tensor* reps) {
  const fusion::SecondVersion& v = *m.second;
  const fusion::ContentKernelState& state = v.content;
  *reps = torch::zeros({int64_t(items.size()), int64_t(v.dim())}, torch::kFloat);
  std::vector<float> item, projection;
  for (size_t i = 0; i < items.size(); ++i) {
    std::vector<store::FeatureVector> vectors(state.modalities.size());
    std::vector<const float*> rows(state.modalities.size(), nullptr);
    for (size_t m = 0; m < state.modalities.size(); ++m) {
      Status s = view.GetFeature(items[i], state.modalities[m], &vectors[m]);
      if (s.IsNotFound()) continue;
      MOSAIC_RETURN_IF_ERROR(s);
      if (vectors[m].values.size() != state.dims[m]) continue;  // another extractor version: absent, not wrong
      rows[m] = vectors[m].values.data();
    }
    std::vector<uint32_t> kg;
    auto add = [&](NodeId other, store::RelationId relation, bool backward) {
      auto f = m.kg_feature.find(LoadedModel::KgFeatureKeyOf(relation, other, backward));
      if (f != m.kg_feature.end()) kg.push_back(f->second);
      return true;
    };
    MOSAIC_RETURN_IF_ERROR(view.ForEachOutEdge(items[i], [&](const store::Edge& e) { return add(e.dst, e.relation, false); }));
    MOSAIC_RETURN_IF_ERROR(view.ForEachInEdge(items[i], [&](const store::Edge& e) { return add(e.src, e.relation, true); }));
    v.Place(rows, kg, &item, &projection);
    std::copy(item.begin(), item.end(), (*reps)[int64_t(i)].data_ptr<float>());
  }
  return Status::OK();
}

}  // namespace

Status InferItems(const store::ReadView& view, const LoadedModel& m, fusion::Kgat* kgat_module,
                  const std::vector<NodeId>& items, at::Tensor* reps) {
  if (m.is_second_version()) return PlaceByContent(view, m, items, reps);
  if (kgat_module == nullptr) return Status::InvalidArgument("placement: the version's module is not loaded");
  fusion::Kgat& kgat = *kgat_module;
  const int64_t n = int64_t(items.size());
  fusion::ModalityTensors mt;
  const auto names = kgat->ModalityNames();
  mt.mask = torch::zeros({n, int64_t(names.size())}, torch::kBool);
  for (size_t k = 0; k < names.size(); ++k) {
    const int64_t dim = m.config.modality_dims.at(names[k]);
    at::Tensor v = torch::zeros({n, dim}, torch::kFloat);
    for (int64_t i = 0; i < n; ++i) {
      store::FeatureVector f;
      Status s = view.GetFeature(items[size_t(i)], names[k], &f);
      if (s.IsNotFound()) continue;
      MOSAIC_RETURN_IF_ERROR(s);
      if (int64_t(f.values.size()) != dim) continue;  // another extractor version: absent, not wrong
      v[i].copy_(torch::from_blob(f.values.data(), {dim}, torch::kFloat));
      mt.mask[i][int64_t(k)] = true;
    }
    mt.vectors[names[k]] = v;
  }
  std::vector<int64_t> head, rel, tail;
  for (int64_t i = 0; i < n; ++i) {
    auto add = [&](NodeId other, store::RelationId relation, bool reverse) {
      auto row = m.row_of.find(other);
      const int64_t r = m.ModelRelation(relation, reverse);
      if (row == m.row_of.end() || r < 0) return true;
      head.push_back(i);
      rel.push_back(r);
      tail.push_back(row->second);
      return true;
    };
    MOSAIC_RETURN_IF_ERROR(
        view.ForEachOutEdge(items[size_t(i)], [&](const store::Edge& e) { return add(e.dst, e.relation, false); }));
    MOSAIC_RETURN_IF_ERROR(
        view.ForEachInEdge(items[size_t(i)], [&](const store::Edge& e) { return add(e.src, e.relation, true); }));
  }
  auto index = [](const std::vector<int64_t>& v) {
    return torch::tensor(v.empty() ? std::vector<int64_t>{} : v, torch::kLong);
  };
  fusion::GraphTensors g{index(head), index(rel), index(tail)};
  torch::NoGradGuard no_grad;
  kgat->eval();
  *reps = kgat->InferItems(mt, g, m.reps).to(torch::kCPU).contiguous();
  return Status::OK();
}

std::vector<Placement> ToPlacements(const std::vector<NodeId>& items, const at::Tensor& reps) {
  const at::Tensor rows = reps.to(torch::kCPU, torch::kFloat).contiguous();
  std::vector<Placement> out;
  out.reserve(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    const float* row = rows[int64_t(i)].data_ptr<float>();
    out.push_back({items[i], std::vector<float>(row, row + rows.size(1))});
  }
  return out;
}

Status PersistPlacements(store::Store* store, uint64_t version, const std::vector<Placement>& placements,
                         const char* source) {
  if (placements.empty()) return Status::OK();
  std::unique_ptr<store::Batch> batch;
  MOSAIC_RETURN_IF_ERROR(store->BeginBatch(&batch));
  for (const Placement& p : placements) {
    MOSAIC_RETURN_IF_ERROR(PutPlacement(batch.get(), p.item, version, p.values, source));
  }
  return batch->Commit();
}

StoredModelPlacer::StoredModelPlacer() = default;
StoredModelPlacer::~StoredModelPlacer() = default;

Status StoredModelPlacer::Place(store::Store* store, const std::vector<NodeId>& items, PlaceReport* report) {
  *report = PlaceReport();
  auto view = store->NewReadView();
  if (!model_) {
    uint64_t version = 0;
    bool found = false;
    MOSAIC_RETURN_IF_ERROR(CurrentModelVersion(*view, &version, &found));
    if (!found) return Status::OK();
    auto model = std::make_unique<LoadedModel>();
    MOSAIC_RETURN_IF_ERROR(LoadCurrentModel(*view, model.get()));
    MOSAIC_RETURN_IF_ERROR(LoadModelWeights(*model, &kgat_));
    model_ = std::move(model);
  }
  report->model_version = model_->version;
  std::vector<NodeId> todo;
  for (NodeId id : items) {
    store::NodeRecord r;
    if (model_->row_of.count(id) || !view->GetNode(id, &r).ok() || r.kind != NodeKind::kItem) continue;
    todo.push_back(id);
  }
  if (todo.empty()) return Status::OK();
  at::Tensor reps;
  MOSAIC_RETURN_IF_ERROR(InferItems(*view, *model_, kgat_.get(), todo, &reps));
  MOSAIC_RETURN_IF_ERROR(PersistPlacements(store, model_->version, ToPlacements(todo, reps), "placed"));
  report->placed = todo.size();
  return Status::OK();
}

}  // namespace mosaic::jobs::service
