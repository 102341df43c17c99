// mosaic recommend / audience / similar, and the placement of new items with the current model.
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

namespace mosaic::jobs {

using store::NodeId;
using store::NodeKind;

namespace {

// Items created after the version's snapshot whose "model" feature was made by this version.
struct Placed {
  std::vector<NodeId> items;
  at::Tensor reps;  // [n, total_dim]
};

Status CollectPlaced(const store::ReadView& view, const LoadedModel& m, Placed* out) {
  NodeId limit = 0;
  MOSAIC_RETURN_IF_ERROR(view.NodeIdLimit(&limit));
  const NodeId from = m.manifest.value("node_id_limit", NodeId(0));
  const int64_t dim = m.reps.size(1);
  std::vector<float> values;
  for (NodeId id = from; id < limit; ++id) {
    store::FeatureVector f;
    Status s = view.GetFeature(id, kModelFeature, &f);
    if (s.IsNotFound()) continue;
    MOSAIC_RETURN_IF_ERROR(s);
    if (f.extractor != kModelExtractor || f.version != m.version || int64_t(f.values.size()) != dim) continue;
    if (m.row_of.count(id)) continue;
    out->items.push_back(id);
    values.insert(values.end(), f.values.begin(), f.values.end());
  }
  out->reps = out->items.empty() ? torch::zeros({0, dim}, torch::kFloat)
                                 : torch::from_blob(values.data(), {int64_t(out->items.size()), dim}, torch::kFloat).clone();
  return Status::OK();
}

Status HasInteractions(const store::ReadView& view, const LoadedModel& m, NodeId item, bool* has) {
  *has = false;
  store::RelationId interacted = m.interacted;  // the store may have gained the relation since the rebuild
  if (!m.has_interacted && !view.FindRelation(store::kInteractedRelation, &interacted).ok()) return Status::OK();
  return view.ForEachInEdge(item, [&](const store::Edge& e) {
    if (e.relation == interacted) *has = true;
    return !*has && e.relation < interacted;  // in-edges come ordered by relation
  });
}

// Resolves an item by id (key), else by exact title (case- and space-insensitive).
Status ResolveItem(const store::ReadView& view, const std::string& text, NodeId* id) {
  Status s = graph::FindItemByKeyOrTitle(view, text, id);
  if (s.IsNotFound()) return Status::InvalidArgument("unknown item '" + text + "': no item has that id or title");
  return s;
}

nlohmann::json Describe(const store::ReadView& view, NodeId id) {
  store::NodeRecord r;
  nlohmann::json j = {{"id", id}};
  if (view.GetNode(id, &r).ok()) {
    j["key"] = r.key;
    j["label"] = r.label;
  }
  return j;
}

Status Query(const Context& ctx, const std::string& query, const QueryArgs& args, nlohmann::json* result) {
  if (query != "recommend" && query != "audience" && query != "similar") {
    return Status::InvalidArgument("unknown model query '" + query + "'");
  }
  if (args.k == 0) return Status::InvalidArgument("-k must be at least 1");
  std::unique_ptr<store::Store> store;
  MOSAIC_RETURN_IF_ERROR(OpenModelStore(ctx, /*read_only=*/true, &store));
  auto view = store->NewReadView();
  LoadedModel m;
  MOSAIC_RETURN_IF_ERROR(LoadCurrentModel(*view, &m));
  Placed placed;
  MOSAIC_RETURN_IF_ERROR(CollectPlaced(*view, m, &placed));
  const int64_t U = m.num_users(), I = m.num_items();
  // Item columns: the version's item rows, then the placed items.
  std::vector<NodeId> columns(m.nodes.begin() + U, m.nodes.begin() + U + I);
  columns.insert(columns.end(), placed.items.begin(), placed.items.end());
  std::unordered_map<NodeId, int64_t> column_of;
  for (size_t c = 0; c < columns.size(); ++c) column_of.emplace(columns[c], int64_t(c));
  at::Tensor items = torch::cat({m.reps.narrow(0, U, I), placed.reps}, 0);
  auto rep_of_item = [&](NodeId id) { return items[column_of.at(id)]; };

  nlohmann::json out = {{"query", query}, {"model_version", m.version}, {"k", args.k}};
  std::vector<fusion::TopK> top;
  NodeId subject = 0;  // the user (recommend) or the item (audience, similar)
  std::unordered_map<NodeId, double> plays;  // recommend: the user's items and play counts
  if (query == "recommend") {
    if (args.user.empty()) return Status::InvalidArgument("recommend needs --user");
    Status s = view->FindNode(NodeKind::kUser, args.user, &subject);
    if (s.IsNotFound()) return Status::InvalidArgument("unknown user '" + args.user + "'");
    MOSAIC_RETURN_IF_ERROR(s);
    auto row = m.row_of.find(subject);
    if (row == m.row_of.end() || !m.IsUserRow(row->second)) {
      return Status::InvalidArgument("user '" + args.user + "' has no representation in model v" +
                                     std::to_string(m.version) + " (no plays when it was trained): it gets one at the "
                                     "next `mosaic rebuild`");
    }
    std::vector<int64_t> seen;
    if (m.has_interacted) {
      MOSAIC_RETURN_IF_ERROR(view->ForEachOutEdge(subject, [&](const store::Edge& e) {
        if (e.relation != m.interacted) return true;
        plays[e.dst] = e.weight;
        auto c = column_of.find(e.dst);
        if (c != column_of.end()) seen.push_back(c->second);
        return true;
      }));
    }
    std::vector<int64_t> allowed;
    if (args.new_only) {
      std::vector<NodeId> candidates = m.manifest.value("cold_items", std::vector<NodeId>());
      candidates.insert(candidates.end(), placed.items.begin(), placed.items.end());
      for (NodeId id : candidates) {
        auto c = column_of.find(id);
        if (c == column_of.end()) continue;
        bool has = false;
        MOSAIC_RETURN_IF_ERROR(HasInteractions(*view, m, id, &has));
        if (!has) allowed.push_back(c->second);
      }
      std::sort(allowed.begin(), allowed.end());
    }
    out["user"] = Describe(*view, subject);
    out["new_only"] = args.new_only;
    out["exclude_seen"] = args.exclude_seen;
    if (!args.new_only || !allowed.empty()) {
      std::vector<std::vector<int64_t>> exclude;
      if (args.exclude_seen) exclude.push_back(seen);
      top = fusion::ExactTopK(m.reps[row->second].unsqueeze(0), items, int64_t(args.k), exclude, allowed);
    }
  } else {
    if (args.item.empty()) return Status::InvalidArgument(query + " needs --item");
    MOSAIC_RETURN_IF_ERROR(ResolveItem(*view, args.item, &subject));
    if (!column_of.count(subject)) {
      return Status::InvalidArgument("item '" + args.item + "' has no representation in model v" +
                                     std::to_string(m.version) + " (added after it and not placed): run `mosaic rebuild`");
    }
    out["item"] = Describe(*view, subject);
    at::Tensor q = rep_of_item(subject).unsqueeze(0);
    if (query == "audience") {
      top = fusion::ExactTopK(q, m.reps.narrow(0, 0, U), int64_t(args.k));
    } else {
      // Cosine: every representation has the same norm structure but not the same length.
      at::Tensor normed = torch::nn::functional::normalize(items, torch::nn::functional::NormalizeFuncOptions().dim(1));
      top = fusion::ExactTopK(normed[column_of.at(subject)].unsqueeze(0), normed, int64_t(args.k),
                              {{column_of.at(subject)}});
    }
  }

  ExplainContext ex;
  std::optional<fusion::Kgat> kgat;
  if (args.explain) {
    kgat.emplace(fusion::LoadWeights(m.config, m.weights, "cpu"));
    (*kgat)->eval();
    ex.view = view.get();
    ex.model = &m;
    ex.kgat = &*kgat;
    const int64_t d = m.config.dim;
    ex.layer0 = torch::cat({m.reps.narrow(1, 0, d), placed.reps.narrow(1, 0, d)}, 0);
    for (size_t p = 0; p < placed.items.size(); ++p) ex.extra_rows[placed.items[p]] = int64_t(m.nodes.size() + p);
  }

  nlohmann::json results = nlohmann::json::array();
  if (!top.empty()) {
    for (size_t r = 0; r < top[0].ids.size(); ++r) {
      const int64_t c = top[0].ids[r];
      const NodeId id = query == "audience" ? m.nodes[size_t(c)] : columns[size_t(c)];
      nlohmann::json j = Describe(*view, id);
      j["rank"] = r + 1;
      j["score"] = top[0].scores[r];
      if (query != "audience") j["placed"] = c >= I;
      if (query == "recommend" && plays.count(id)) j["plays"] = plays[id];
      if (args.explain) {
        std::vector<std::string> texts;
        if (query == "recommend") MOSAIC_RETURN_IF_ERROR(ExplainRecommend(ex, subject, id, 3, &texts));
        if (query == "audience") MOSAIC_RETURN_IF_ERROR(ExplainAudience(ex, subject, id, 3, &texts));
        if (query == "similar") MOSAIC_RETURN_IF_ERROR(ExplainSimilar(ex, subject, id, 3, &texts));
        j["explain"] = texts;
      }
      results.push_back(std::move(j));
    }
  }
  // Put rank first for readers of the JSON.
  out["results"] = results;
  *result = std::move(out);
  return Status::OK();
}

std::string Name(const nlohmann::json& j) {
  const std::string label = j.value("label", "");
  return label.empty() ? j.value("key", "?") : label;
}

}  // namespace

Status RunModelQuery(const Context& ctx, const std::string& query, const QueryArgs& args, nlohmann::json* result) {
  try {
    return Query(ctx, query, args, result);
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
      MOSAIC_RETURN_IF_ERROR(batch->PutFeature(todo[i], kModelFeature,
                                               {kModelExtractor, uint32_t(m.version), std::move(values), "placed"}));
    }
    MOSAIC_RETURN_IF_ERROR(batch->Commit());
    *placed = todo.size();
    return Status::OK();
  } catch (const std::exception& e) {
    return Status::InvalidArgument(std::string("placing new items with the current model: ") + e.what());
  }
}

}  // namespace mosaic::jobs
