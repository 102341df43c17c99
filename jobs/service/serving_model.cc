#include "jobs/serving.h"

#include <torch/torch.h>

#include <algorithm>
#include <optional>

#include "fusion/trainer.h"
#include "graph/catalogue.h"
#include "jobs/model_jobs.h"

namespace mosaic::jobs {

using store::NodeId;
using store::NodeKind;

namespace {

Status HasInteractions(const store::ReadView& view, const LoadedModel& m, NodeId item, bool* has) {
  *has = false;
  store::RelationId interacted = m.interacted;  // the store may have gained the relation since the rebuild
  if (!m.has_interacted && !view.FindRelation(store::kInteractedRelation, &interacted).ok()) return Status::OK();
  return view.ForEachInEdge(item, [&](const store::Edge& e) {
    if (e.relation == interacted) *has = true;
    return !*has && e.relation < interacted;  // in-edges come ordered by relation
  });
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

// Rows of `t` as a contiguous CPU float tensor (the ItemIndex reads raw rows).
at::Tensor Rows(const at::Tensor& t) { return t.to(torch::kCPU, torch::kFloat).contiguous(); }

at::Tensor Normalised(const at::Tensor& t) {
  return torch::nn::functional::normalize(t, torch::nn::functional::NormalizeFuncOptions().dim(1));
}

}  // namespace

ServingModel::~ServingModel() = default;

Status ServingModel::Load(const store::ReadView& view, std::unique_ptr<ServingModel>* out) {
  std::unique_ptr<ServingModel> s(new ServingModel());
  LoadedModel& m = s->m_;
  MOSAIC_RETURN_IF_ERROR(LoadCurrentModel(view, &m));
  s->kgat_ = std::make_unique<fusion::Kgat>(fusion::LoadWeights(m.config, m.weights, "cpu"));
  (*s->kgat_)->eval();
  const int64_t U = m.num_users(), I = m.num_items(), dim = m.reps.size(1);
  s->items_ = std::make_unique<fusion::ItemIndex>(dim);
  s->normed_ = std::make_unique<fusion::ItemIndex>(dim);
  s->users_ = std::make_unique<fusion::ItemIndex>(dim);
  const at::Tensor users = Rows(m.reps.narrow(0, 0, U));
  s->users_->Add(users.data_ptr<float>(), U);

  // Cold candidates: the version's items without interactions at its snapshot (the others can
  // only have more now), checked again against the store.
  std::vector<NodeId> version_items(m.nodes.begin() + U, m.nodes.begin() + U + I);
  std::vector<char> cold(size_t(I), 0);
  std::unordered_map<NodeId, int64_t> version_column;
  for (int64_t c = 0; c < I; ++c) version_column.emplace(version_items[size_t(c)], c);
  for (NodeId id : m.manifest.value("cold_items", std::vector<NodeId>())) {
    auto c = version_column.find(id);
    if (c == version_column.end()) continue;
    bool has = false;
    MOSAIC_RETURN_IF_ERROR(HasInteractions(view, m, id, &has));
    cold[size_t(c->second)] = !has;
  }
  MOSAIC_RETURN_IF_ERROR(s->AddColumns(version_items, m.reps.narrow(0, U, I), false));
  s->cold_ = std::move(cold);
  if (!m.hnsw.empty()) {
    s->items_->LoadHnsw(m.hnsw, fusion::HnswOptions());
  } else if (I >= kHnswMinItems) {
    s->items_->BuildHnsw(fusion::HnswOptions());
  }

  // Items created after the snapshot: those placed by this version, then the others.
  NodeId limit = 0;
  MOSAIC_RETURN_IF_ERROR(view.NodeIdLimit(&limit));
  std::vector<NodeId> created;
  MOSAIC_RETURN_IF_ERROR(graph::ItemsCreatedSince(view, m.manifest.value("node_id_limit", NodeId(0)), &created));
  std::vector<NodeId> placed, unplaced;
  std::vector<float> values;
  for (NodeId id : created) {
    if (m.row_of.count(id)) continue;
    store::FeatureVector f;
    Status st = view.GetFeature(id, kModelFeature, &f);
    if (!st.ok() && !st.IsNotFound()) return st;
    if (st.ok() && f.extractor == kModelExtractor && f.version == m.version && int64_t(f.values.size()) == dim) {
      placed.push_back(id);
      values.insert(values.end(), f.values.begin(), f.values.end());
    } else {
      unplaced.push_back(id);
    }
  }
  if (!placed.empty()) {
    at::Tensor reps = torch::from_blob(values.data(), {int64_t(placed.size()), dim}, torch::kFloat);
    MOSAIC_RETURN_IF_ERROR(s->AddColumns(placed, reps, true));
    for (size_t i = 0; i < placed.size(); ++i) {
      bool has = false;
      MOSAIC_RETURN_IF_ERROR(HasInteractions(view, m, placed[i], &has));
      if (has) s->cold_[size_t(I) + i] = 0;
    }
  }
  if (!unplaced.empty()) MOSAIC_RETURN_IF_ERROR(s->Place(view, unplaced, nullptr));
  *out = std::move(s);
  return Status::OK();
}

Status ServingModel::AddColumns(const std::vector<NodeId>& items, const at::Tensor& reps, bool cold) {
  if (items.empty()) return Status::OK();
  const at::Tensor rows = Rows(reps);
  const at::Tensor normed = Rows(Normalised(rows));
  const int64_t d = m_.config.dim;
  {
    // Metadata first: a search can only return a column once the index publishes it.
    std::lock_guard<std::mutex> lock(meta_mu_);
    for (NodeId id : items) {
      column_of_.emplace(id, int64_t(columns_.size()));
      columns_.push_back(id);
      cold_.push_back(cold);
    }
    if (cold) {
      const at::Tensor layer0 = rows.narrow(1, 0, d).contiguous();
      placed_layer0_.insert(placed_layer0_.end(), layer0.data_ptr<float>(), layer0.data_ptr<float>() + layer0.numel());
    }
  }
  normed_->Add(normed.data_ptr<float>(), rows.size(0));
  items_->Add(rows.data_ptr<float>(), rows.size(0));
  return Status::OK();
}

bool ServingModel::HasColumn(NodeId item) const {
  std::lock_guard<std::mutex> lock(meta_mu_);
  return column_of_.count(item) > 0;
}

Status ServingModel::Place(const store::ReadView& view, const std::vector<NodeId>& items,
                           std::vector<std::pair<NodeId, std::vector<float>>>* placed) {
  std::vector<NodeId> todo;
  for (NodeId id : items) {
    store::NodeRecord r;
    if (HasColumn(id) || !view.GetNode(id, &r).ok() || r.kind != NodeKind::kItem) continue;
    if (std::find(todo.begin(), todo.end(), id) == todo.end()) todo.push_back(id);
  }
  if (todo.empty()) return Status::OK();
  at::Tensor reps;
  {
    std::lock_guard<std::mutex> lock(kgat_mu_);
    MOSAIC_RETURN_IF_ERROR(InferNewItems(view, m_, *kgat_, todo, &reps));
  }
  reps = Rows(reps);
  if (placed) {
    for (size_t i = 0; i < todo.size(); ++i) {
      const float* row = reps[int64_t(i)].data_ptr<float>();
      placed->emplace_back(todo[i], std::vector<float>(row, row + reps.size(1)));
    }
  }
  return AddColumns(todo, reps, true);
}

void ServingModel::MarkInteracted(const std::vector<NodeId>& items) {
  std::lock_guard<std::mutex> lock(meta_mu_);
  for (NodeId id : items) {
    auto c = column_of_.find(id);
    if (c != column_of_.end()) cold_[size_t(c->second)] = 0;
  }
}

std::vector<int64_t> ServingModel::ColdColumns() const {
  const int64_t published = items_->size();
  std::lock_guard<std::mutex> lock(meta_mu_);
  std::vector<int64_t> cold;
  for (int64_t c = 0; c < published; ++c) {
    if (cold_[size_t(c)]) cold.push_back(c);
  }
  return cold;
}

Status ServingModel::Query(const store::ReadView& view, const std::string& query, const QueryArgs& args,
                           nlohmann::json* result) {
  if (query != "recommend" && query != "audience" && query != "similar") {
    return Status::InvalidArgument("unknown model query '" + query + "'");
  }
  if (args.k == 0 || args.k > kMaxQueryK) {
    return Status::InvalidArgument("k must be between 1 and " + std::to_string(kMaxQueryK));
  }
  const LoadedModel& m = m_;
  const int64_t k = int64_t(args.k);
  nlohmann::json out = {{"query", query}, {"model_version", m.version}, {"k", args.k}};
  fusion::TopK top;
  NodeId subject = 0;                        // the user (recommend) or the item (audience, similar)
  std::unordered_map<NodeId, double> plays;  // recommend: the user's items and play counts
  if (query == "recommend") {
    if (args.user.empty()) return Status::InvalidArgument("recommend needs a user");
    Status s = view.FindNode(NodeKind::kUser, args.user, &subject);
    if (s.IsNotFound()) return Status::NotFound("unknown user '" + args.user + "'");
    MOSAIC_RETURN_IF_ERROR(s);
    auto row = m.row_of.find(subject);
    if (row == m.row_of.end() || !m.IsUserRow(row->second)) {
      return Status::NotFound("user '" + args.user + "' has no representation in model v" + std::to_string(m.version) +
                              " (no plays when it was trained): it gets one at the next `mosaic rebuild`");
    }
    std::vector<NodeId> seen_items;
    if (m.has_interacted) {
      MOSAIC_RETURN_IF_ERROR(view.ForEachOutEdge(subject, [&](const store::Edge& e) {
        if (e.relation != m.interacted) return true;
        plays[e.dst] = e.weight;
        seen_items.push_back(e.dst);
        return true;
      }));
    }
    std::vector<int64_t> seen, allowed;
    {
      std::lock_guard<std::mutex> lock(meta_mu_);
      for (NodeId id : seen_items) {
        auto c = column_of_.find(id);
        if (c != column_of_.end()) seen.push_back(c->second);
      }
    }
    std::sort(seen.begin(), seen.end());
    if (args.new_only) allowed = ColdColumns();
    out["user"] = Describe(view, subject);
    out["new_only"] = args.new_only;
    out["exclude_seen"] = args.exclude_seen;
    if (!args.new_only || !allowed.empty()) {
      fusion::SearchFilter filter;
      if (args.new_only) filter.allowed = &allowed;
      if (args.exclude_seen) filter.excluded = &seen;
      const at::Tensor q = Rows(m.reps[row->second]);
      top = items_->Search(q.data_ptr<float>(), k, filter);
    }
  } else {
    if (args.item.empty()) return Status::InvalidArgument(query + " needs an item");
    Status s = graph::FindItemByKeyOrTitle(view, args.item, &subject);
    if (s.IsNotFound()) return Status::NotFound("unknown item '" + args.item + "': no item has that id or title");
    MOSAIC_RETURN_IF_ERROR(s);
    int64_t column = -1;
    {
      std::lock_guard<std::mutex> lock(meta_mu_);
      auto c = column_of_.find(subject);
      if (c != column_of_.end() && c->second < items_->size()) column = c->second;
    }
    if (column < 0) {
      return Status::NotFound("item '" + args.item + "' has no representation in model v" + std::to_string(m.version) +
                              " (added after it and not placed): run `mosaic rebuild`");
    }
    out["item"] = Describe(view, subject);
    std::vector<float> q(size_t(items_->dim()));
    if (query == "audience") {
      items_->Row(column, q.data());
      top = users_->SearchExact(q.data(), k);
    } else {
      // Cosine: representations do not all have the same length.
      normed_->Row(column, q.data());
      const std::vector<int64_t> self = {column};
      fusion::SearchFilter filter;
      filter.excluded = &self;
      top = normed_->Search(q.data(), k, filter);
    }
  }

  ExplainContext ex;
  std::unique_lock<std::mutex> kgat_lock(kgat_mu_, std::defer_lock);
  std::unordered_map<int64_t, NodeId> column_ids;
  {
    std::lock_guard<std::mutex> lock(meta_mu_);
    for (int64_t c : top.ids) {
      if (query != "audience") column_ids[c] = columns_[size_t(c)];
    }
    if (args.explain) {
      const int64_t d = m.config.dim;
      const int64_t placed = int64_t(placed_layer0_.size()) / d;
      at::Tensor extra = torch::from_blob(placed_layer0_.data(), {placed, d}, torch::kFloat).clone();
      ex.layer0 = torch::cat({m.reps.narrow(1, 0, d), extra}, 0);
      for (int64_t p = 0; p < placed; ++p) {
        ex.extra_rows[columns_[size_t(m.num_items() + p)]] = int64_t(m.nodes.size()) + p;
      }
    }
  }
  if (args.explain) {
    kgat_lock.lock();
    ex.view = &view;
    ex.model = &m;
    ex.kgat = kgat_.get();
  }

  nlohmann::json results = nlohmann::json::array();
  for (size_t r = 0; r < top.ids.size(); ++r) {
    const int64_t c = top.ids[r];
    const NodeId id = query == "audience" ? m.nodes[size_t(c)] : column_ids.at(c);
    nlohmann::json j = Describe(view, id);
    j["rank"] = r + 1;
    j["score"] = top.scores[r];
    if (query != "audience") j["placed"] = c >= m.num_items();
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
  out["results"] = std::move(results);
  *result = std::move(out);
  return Status::OK();
}

}  // namespace mosaic::jobs
