#include "jobs/service/serving_model.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "fusion/trainer.h"
#include "graph/catalogue.h"

namespace mosaic::jobs::service {

using store::NodeId;
using store::NodeKind;

namespace {

// The most items a query folds in (~5 ms at Last.FM's width, d = 176).
constexpr size_t kMaxFoldInItems = 2000;

Status HasInteractions(const store::ReadView& view, const LoadedModel& m, NodeId item, bool* has) {
  *has = false;
  store::RelationId interacted = m.interacted;  // the store may have gained the relation since the rebuild
  if (!m.has_interacted && !view.FindRelation(store::kInteractedRelation, &interacted).ok()) return Status::OK();
  return view.ForEachInEdge(item, [&](const store::Edge& e) {
    if (e.relation == interacted) *has = true;
    return !*has && e.relation < interacted;  // in-edges come ordered by relation
  });
}

NodeRef Describe(const store::ReadView& view, NodeId id) {
  store::NodeRecord r;
  NodeRef ref;
  ref.id = id;
  if (view.GetNode(id, &r).ok()) {
    ref.key = r.key;
    ref.label = r.label;
  }
  return ref;
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
  MOSAIC_RETURN_IF_ERROR(LoadCurrentModel(view, &s->m_));
  MOSAIC_RETURN_IF_ERROR(LoadModelWeights(s->m_, &s->kgat_));
  MOSAIC_RETURN_IF_ERROR(s->LoadColumns(view));
  *out = std::move(s);
  return Status::OK();
}

Status ServingModel::LoadColumns(const store::ReadView& view) {
  const LoadedModel& m = m_;
  const int64_t U = m.num_users(), I = m.num_items(), dim = m.reps.size(1);
  items_ = std::make_unique<fusion::ItemIndex>(dim);
  normed_ = std::make_unique<fusion::ItemIndex>(dim);
  users_ = std::make_unique<fusion::ItemIndex>(dim);
  const at::Tensor users = Rows(m.reps.narrow(0, 0, U));
  users_->Add(users.data_ptr<float>(), U);

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
  MOSAIC_RETURN_IF_ERROR(AddColumns(version_items, m.reps.narrow(0, U, I), false));
  cold_ = std::move(cold);
  {
    // The fold-in reads the version's item rows in place (LoadCurrentModel's reps: CPU float, contiguous).
    const float* item_rows = m.reps.data_ptr<float>() + U * dim;
    fusion::FoldInSettings settings;  // versions written before the fold-in was tuned keep the defaults
    const nlohmann::json chosen = m.manifest.value("fold_in", nlohmann::json::object());
    settings.alpha = chosen.value("alpha", settings.alpha);
    settings.lambda = chosen.value("lambda", settings.lambda);
    fold_in_ = std::make_unique<fusion::UserFoldIn>(item_rows, size_t(I), size_t(dim), settings);
  }
  if (!m.hnsw.empty()) {
    Status loaded = items_->LoadHnsw(m.hnsw, fusion::HnswOptions());
    if (!loaded.ok()) return loaded.WithContext("model version " + std::to_string(m.version) + ": HNSW graph: ");
  } else if (I >= kHnswMinItems) {
    items_->BuildHnsw(fusion::HnswOptions());
  }

  // Items created after the snapshot: those placed by this version, then the others.
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
    MOSAIC_RETURN_IF_ERROR(AddColumns(placed, reps, true));
    for (size_t i = 0; i < placed.size(); ++i) {
      bool has = false;
      MOSAIC_RETURN_IF_ERROR(HasInteractions(view, m, placed[i], &has));
      if (has) cold_[size_t(I) + i] = 0;
    }
  }
  if (!unplaced.empty()) MOSAIC_RETURN_IF_ERROR(Place(view, unplaced, nullptr));
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
                           std::vector<Placement>* placed) {
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
    MOSAIC_RETURN_IF_ERROR(InferItems(view, m_, *kgat_, todo, &reps));
  }
  reps = Rows(reps);
  if (placed) *placed = ToPlacements(todo, reps);
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

int64_t ServingModel::ColumnOf(NodeId item) const {
  std::lock_guard<std::mutex> lock(meta_mu_);
  auto c = column_of_.find(item);
  return c != column_of_.end() && c->second < items_->size() ? c->second : -1;
}

Status ServingModel::Run(const store::ReadView& view, const Query& query, QueryResult* result) {
  MOSAIC_RETURN_IF_ERROR(query.Validate());
  const LoadedModel& m = m_;
  QueryResult out;
  out.query = query;
  out.model_version = m.version;
  fusion::TopK top;
  std::unordered_map<NodeId, double> plays;  // recommend: the user's items and play counts
  NodeId subject = 0;
  if (AsksAboutUser(query.kind)) {
    Status s = view.FindNode(NodeKind::kUser, query.user, &subject);
    if (s.IsNotFound()) return Status::NotFound("unknown user '" + query.user + "'");
    MOSAIC_RETURN_IF_ERROR(s);
    MOSAIC_RETURN_IF_ERROR(
        SearchForUser(view, query, subject, &plays, &top, &out.user_from_history, &out.plays_since_version));
  } else {
    Status s = graph::FindItemByKeyOrTitle(view, query.item, &subject);
    if (s.IsNotFound()) return Status::NotFound("unknown item '" + query.item + "': no item has that id or title");
    MOSAIC_RETURN_IF_ERROR(s);
    const int64_t column = ColumnOf(subject);
    if (column < 0) {
      return Status::NotFound("item '" + query.item + "' has no representation in model v" + std::to_string(m.version) +
                              " (added after it and not placed): run `mosaic rebuild`");
    }
    MOSAIC_RETURN_IF_ERROR(SearchForItem(query, column, &top));
  }
  out.subject = Describe(view, subject);
  {
    std::lock_guard<std::mutex> lock(meta_mu_);
    for (size_t r = 0; r < top.ids.size(); ++r) {
      const int64_t c = top.ids[r];
      Hit hit;
      const NodeId id = query.kind == QueryKind::kAudience ? m.nodes[size_t(c)] : columns_[size_t(c)];
      hit.node.id = id;
      hit.score = top.scores[r];
      hit.placed = query.kind != QueryKind::kAudience && c >= m.num_items();
      if (auto p = plays.find(id); p != plays.end()) hit.plays = p->second;
      out.hits.push_back(std::move(hit));
    }
  }
  for (Hit& hit : out.hits) hit.node = Describe(view, hit.node.id);
  if (query.explain) MOSAIC_RETURN_IF_ERROR(AddReasons(view, query, subject, &out));
  *result = std::move(out);
  return Status::OK();
}

Status ServingModel::SearchForUser(const store::ReadView& view, const Query& query, NodeId user,
                                   std::unordered_map<NodeId, double>* plays, fusion::TopK* top, bool* from_history,
                                   size_t* since_version) {
  const LoadedModel& m = m_;
  auto row = m.row_of.find(user);
  const bool trained = row != m.row_of.end() && m.IsUserRow(row->second);
  if (!trained && frozen_users_) {
    return Status::NotFound("user '" + query.user + "' has no representation in model v" + std::to_string(m.version) +
                            " (served with --frozen-users)");
  }
  std::vector<NodeId> seen_items;
  if (m.has_interacted) {
    MOSAIC_RETURN_IF_ERROR(view.ForEachOutEdge(user, [&](const store::Edge& e) {
      if (e.relation != m.interacted) return true;
      (*plays)[e.dst] = e.weight;
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
  if (query.new_only) {
    allowed = ColdColumns();
    if (allowed.empty()) return Status::OK();  // no item without interactions: no result
  }
  fusion::SearchFilter filter;
  if (query.new_only) filter.allowed = &allowed;
  if (query.exclude_seen) filter.excluded = &seen;
  std::vector<float> q(size_t(items_->dim()));
  if (trained) {
    const at::Tensor r = Rows(m.reps[row->second]);
    std::copy(r.data_ptr<float>(), r.data_ptr<float>() + r.numel(), q.begin());
    if (m.has_history() && !frozen_users_) {
      const uint32_t* begin = m.history_items.data() + m.history_offsets[size_t(row->second)];
      const uint32_t* end = m.history_items.data() + m.history_offsets[size_t(row->second) + 1];
      const size_t trained_items = size_t(end - begin);
      // Plays are never removed: more items means new ones. Past kMaxFoldInItems a query would spend
      // tens of milliseconds on the fold-ins: such a user keeps the trained vector.
      if (seen.size() > trained_items && seen.size() <= kMaxFoldInItems) {
        const std::vector<int64_t> before(begin, end);  // the version's item rows are columns 0..I-1
        FoldInNewPlays(before, seen, &q);
        *since_version = seen.size() - trained_items;
      }
    }
  } else {
    // A user who arrived after the version: folded in from their plays, placed items included.
    if (seen.empty()) {
      return Status::NotFound("user '" + query.user + "' has no plays yet: a list for them needs at least one");
    }
    // The fold-in's cost grows with the history: a long one is cut to its first kMaxFoldInItems.
    q = FoldIn(seen.size() > kMaxFoldInItems ? std::vector<int64_t>(seen.begin(), seen.begin() + long(kMaxFoldInItems)) : seen);
    *from_history = true;
    *since_version = seen.size();
  }
  *top = items_->Search(q.data(), int64_t(query.k), filter);
  return Status::OK();
}

std::vector<float> ServingModel::FoldIn(const std::vector<int64_t>& columns) const {
  const size_t d = size_t(items_->dim());
  std::vector<float> rows(columns.size() * d);
  for (size_t x = 0; x < columns.size(); ++x) items_->Row(columns[x], &rows[x * d]);
  return fold_in_->FromRows(rows.data(), columns.size());
}

void ServingModel::FoldInNewPlays(const std::vector<int64_t>& before, const std::vector<int64_t>& now,
                                  std::vector<float>* q) const {
  // The trained vector moves as the fold-in of the user's history moves from what the version saw to
  // what the store holds now, scaled to the trained vector's length (fold-ins and trained vectors
  // differ in scale). With no new play nothing moves.
  const std::vector<float> then = FoldIn(before), current = FoldIn(now);
  double trained_norm = 0, then_norm = 0;
  for (size_t d = 0; d < q->size(); ++d) {
    trained_norm += double((*q)[d]) * (*q)[d];
    then_norm += double(then[d]) * then[d];
  }
  const double scale = then_norm > 0 ? std::sqrt(trained_norm / then_norm) : 1.0;
  for (size_t d = 0; d < q->size(); ++d) (*q)[d] += float(scale * (double(current[d]) - then[d]));
}

Status ServingModel::SearchForItem(const Query& query, int64_t column, fusion::TopK* top) {
  std::vector<float> q(size_t(items_->dim()));
  const int64_t k = int64_t(query.k);
  if (query.kind == QueryKind::kAudience) {
    items_->Row(column, q.data());
    *top = users_->SearchExact(q.data(), k);
  } else {
    // Cosine: representations do not all have the same length.
    normed_->Row(column, q.data());
    const std::vector<int64_t> self = {column};
    fusion::SearchFilter filter;
    filter.excluded = &self;
    *top = normed_->Search(q.data(), k, filter);
  }
  return Status::OK();
}

Status ServingModel::AddReasons(const store::ReadView& view, const Query& query, NodeId subject, QueryResult* result) {
  const LoadedModel& m = m_;
  ExplainContext ex;
  {
    std::lock_guard<std::mutex> lock(meta_mu_);
    const int64_t d = m.config.dim;
    const int64_t placed = int64_t(placed_layer0_.size()) / d;
    at::Tensor extra = torch::from_blob(placed_layer0_.data(), {placed, d}, torch::kFloat).clone();
    ex.layer0 = torch::cat({m.reps.narrow(1, 0, d), extra}, 0);
    for (int64_t p = 0; p < placed; ++p) {
      ex.extra_rows[columns_[size_t(m.num_items() + p)]] = int64_t(m.nodes.size()) + p;
    }
  }
  std::lock_guard<std::mutex> kgat_lock(kgat_mu_);
  ex.view = &view;
  ex.model = &m;
  ex.kgat = kgat_.get();
  constexpr size_t kReasonsPerHit = 3;
  for (Hit& hit : result->hits) {
    MOSAIC_RETURN_IF_ERROR(Explain(ex, query.kind, subject, hit.node.id, kReasonsPerHit, &hit.reasons));
  }
  return Status::OK();
}

}  // namespace mosaic::jobs::service
