// mosaic recommend / audience / similar (printing; the queries are ServingModel's), and the placement of
// new items with the current model.
#include <torch/torch.h>

#include <algorithm>
#include <optional>
#include <cstdio>
#include <set>

#include "fusion/retrieval.h"
#include "fusion/trainer.h"
#include "graph/catalogue.h"
#include "graph/text.h"
#include "jobs/model_jobs.h"
#include "jobs/progress.h"
#include "jobs/serving.h"

namespace mosaic::jobs {

using store::NodeId;
using store::NodeKind;

namespace {

std::string Name(const nlohmann::json& j) {
  const std::string label = j.value("label", "");
  return label.empty() ? j.value("key", "?") : label;
}

}  // namespace

Status RunModelQuery(const Context& ctx, const std::string& query, const QueryArgs& args, nlohmann::json* result) {
  try {
    std::unique_ptr<store::Store> store;
    MOSAIC_RETURN_IF_ERROR(OpenModelStore(ctx, /*read_only=*/true, &store));
    auto view = store->NewReadView();
    std::unique_ptr<ServingModel> model;
    MOSAIC_RETURN_IF_ERROR(ServingModel::Load(*view, &model));
    return model->Query(*view, query, args, result);
  } catch (const std::exception& e) {
    return Status::InvalidArgument(query + ": " + e.what());
  }
}

void PrintModelQuery(const nlohmann::json& r) {
  const std::string query = r["query"];
  if (query == "recommend") {
    std::printf("recommendations for user %s (model v%llu%s%s)\n", Name(r["user"]).c_str(),
                r["model_version"].get<unsigned long long>(), r.value("new_only", false) ? ", new items only" : "",
                r.value("exclude_seen", false) ? ", unseen only" : "");
  } else if (query == "audience") {
    std::printf("listeners most likely to enjoy %s (model v%llu)\n", Name(r["item"]).c_str(),
                r["model_version"].get<unsigned long long>());
  } else {
    std::printf("items most like %s (model v%llu)\n", Name(r["item"]).c_str(),
                r["model_version"].get<unsigned long long>());
  }
  if (r["results"].empty()) {
    std::printf("  no results%s\n", r.value("new_only", false) ? " (no item without interactions)" : "");
    return;
  }
  std::printf("%4s  %9s  %-40s %s\n", "rank", "score", query == "audience" ? "user" : "item", "key");
  for (const auto& x : r["results"]) {
    const std::string name = FitColumn(Name(x), 40);
    std::string note;
    if (x.value("placed", false)) note += "  (new, placed)";
    if (x.contains("plays")) note += "  (played " + std::to_string(int64_t(x["plays"].get<double>())) + "x)";
    std::printf("%4d  %9.4f  %s %s%s\n", x["rank"].get<int>(), x["score"].get<double>(), name.c_str(),
                ShortKey(x.value("key", "")).c_str(), note.c_str());
    if (x.contains("explain")) {
      for (const auto& t : x["explain"]) std::printf("%17s- %s\n", "", t.get<std::string>().c_str());
    }
  }
}

Status InferNewItems(const store::ReadView& view, const LoadedModel& m, fusion::Kgat& kgat,
                     const std::vector<NodeId>& items, at::Tensor* reps) {
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

Status PlaceNewItems(const Context& ctx, store::Store* store, const std::vector<uint32_t>& items, size_t* placed) {
  (void)ctx;
  *placed = 0;
  try {
    auto view = store->NewReadView();
    uint64_t version = 0;
    bool found = false;
    MOSAIC_RETURN_IF_ERROR(CurrentModelVersion(*view, &version, &found));
    if (!found || items.empty()) return Status::OK();
    LoadedModel m;
    MOSAIC_RETURN_IF_ERROR(LoadCurrentModel(*view, &m));
    std::vector<NodeId> todo;
    for (NodeId id : items) {
      store::NodeRecord r;
      if (m.row_of.count(id) || !view->GetNode(id, &r).ok() || r.kind != NodeKind::kItem) continue;
      todo.push_back(id);
    }
    if (todo.empty()) return Status::OK();
    fusion::Kgat kgat = fusion::LoadWeights(m.config, m.weights, "cpu");
    at::Tensor reps;
    MOSAIC_RETURN_IF_ERROR(InferNewItems(*view, m, kgat, todo, &reps));
    std::unique_ptr<store::Batch> batch;
    MOSAIC_RETURN_IF_ERROR(store->BeginBatch(&batch));
    for (size_t i = 0; i < todo.size(); ++i) {
      at::Tensor row = reps[int64_t(i)].contiguous();
      std::vector<float> values(row.data_ptr<float>(), row.data_ptr<float>() + row.numel());
      MOSAIC_RETURN_IF_ERROR(PutPlacement(batch.get(), todo[i], m.version, std::move(values), "placed"));
    }
    MOSAIC_RETURN_IF_ERROR(batch->Commit());
    *placed = todo.size();
    return Status::OK();
  } catch (const std::exception& e) {
    return Status::InvalidArgument(std::string("placing new items with the current model: ") + e.what());
  }
}

}  // namespace mosaic::jobs
