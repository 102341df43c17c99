#include "jobs/service/serving_model.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <functional>
#include <random>

#include "fusion/trainer.h"
#include "graph/catalogue.h"

namespace mosaic::jobs::service {

using store::NodeId;
using store::NodeKind;

namespace {

// The most items a query folds in (~5 ms at Last.FM's width, d = 176).
constexpr size_t kMaxFoldInItems = 2000;

// The most plays the second version sums for a user (the last columns: items placed since the version,
// then the version's in row order): ~10 ms at Last.FM's width.
constexpr size_t kMaxHistoryItems = 20000;

// Popularity for users with no plays: a play counts half as much per this much time before the
// latest (30 days: a catalogue's "popular lately"). Plays without a time count as the latest.
constexpr double kPopularityHalfLifeSeconds = 30.0 * 24 * 3600;

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
  if (!m.is_second_version()) {  // the second version computes users from their plays itself
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
    MOSAIC_RETURN_IF_ERROR(InferItems(view, m_, kgat_.get(), todo, &reps));
  }
  reps = Rows(reps);
  if (placed) *placed = ToPlacements(todo, reps);
  return AddColumns(todo, reps, true);
}

void ServingModel::MarkInteracted(const std::vector<NodeId>& items, const std::vector<int64_t>& timestamps) {
  std::vector<int64_t> columns(items.size(), -1);
  {
    std::lock_guard<std::mutex> lock(meta_mu_);
    for (size_t i = 0; i < items.size(); ++i) {
      auto c = column_of_.find(items[i]);
      if (c == column_of_.end()) continue;
      cold_[size_t(c->second)] = 0;
      columns[i] = c->second;
    }
  }
  std::lock_guard<std::mutex> lock(popularity_mu_);
  if (!popularity_ready_) return;  // counted from the store when first needed
  for (size_t i = 0; i < items.size(); ++i) {
    if (columns[i] < 0) continue;
    if (size_t(columns[i]) >= popularity_.size()) popularity_.resize(size_t(columns[i]) + 1, 0.0);
    popularity_[size_t(columns[i])] += PlayWeight(i < timestamps.size() ? timestamps[i] : 0);
  }
}

double ServingModel::PlayWeight(int64_t timestamp) const {
  if (timestamp <= 0) timestamp = std::max<int64_t>(popularity_epoch_, std::time(nullptr));
  // Bounded exponent: plays years apart stay finite and ordered.
  const double halvings = std::clamp(double(timestamp - popularity_epoch_) / kPopularityHalfLifeSeconds, -1000.0, 1000.0);
  return std::exp2(halvings);
}

Status ServingModel::EnsurePopularity(const store::ReadView& view) {
  std::lock_guard<std::mutex> lock(popularity_mu_);
  if (popularity_ready_) return Status::OK();
  std::vector<std::pair<NodeId, int64_t>> played;
  int64_t latest = 0;
  MOSAIC_RETURN_IF_ERROR(view.ForEachInteraction([&](const store::Interaction& x) {
    if (x.kind != store::InteractionKind::kConsumption) return true;
    played.emplace_back(x.item, x.timestamp);
    latest = std::max(latest, x.timestamp);
    return true;
  }));
  popularity_epoch_ = latest > 0 ? latest : std::time(nullptr);
  std::vector<double> popularity;
  {
    std::lock_guard<std::mutex> meta(meta_mu_);
    popularity.assign(columns_.size(), 0.0);
    for (const auto& [item, timestamp] : played) {
      auto c = column_of_.find(item);
      if (c != column_of_.end()) popularity[size_t(c->second)] += PlayWeight(timestamp > 0 ? timestamp : popularity_epoch_);
    }
  }
  popularity_ = std::move(popularity);
  popularity_ready_ = true;
  return Status::OK();
}

Status ServingModel::SearchPopular(const store::ReadView& view, size_t k, const std::vector<int64_t>* allowed,
                                   fusion::TopK* top) {
  MOSAIC_RETURN_IF_ERROR(EnsurePopularity(view));
  const int64_t published = items_->size();
  std::vector<int64_t> candidates;
  if (allowed) {
    candidates = *allowed;
  } else {
    candidates.resize(size_t(published));
    for (int64_t c = 0; c < published; ++c) candidates[size_t(c)] = c;
  }
  std::lock_guard<std::mutex> lock(popularity_mu_);
  auto weight = [&](int64_t c) { return size_t(c) < popularity_.size() ? popularity_[size_t(c)] : 0.0; };
  const auto better = [&](int64_t a, int64_t b) { return weight(a) != weight(b) ? weight(a) > weight(b) : a > b; };
  const size_t n = std::min(k, candidates.size());
  std::partial_sort(candidates.begin(), candidates.begin() + long(n), candidates.end(), better);
  const double best = n > 0 && weight(candidates[0]) > 0 ? weight(candidates[0]) : 1.0;
  *top = fusion::TopK();
  for (size_t r = 0; r < n; ++r) {
    top->ids.push_back(candidates[r]);
    top->scores.push_back(float(weight(candidates[r]) / best));
  }
  return Status::OK();
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

bool ServingModel::IsColdColumn(int64_t column) const {
  if (column >= m_.num_items()) return true;  // placed since the version
  return m_.is_second_version() && !m_.second->has_plays[size_t(column)];
}

int64_t ServingModel::ColumnOf(NodeId item) const {
  std::lock_guard<std::mutex> lock(meta_mu_);
  auto c = column_of_.find(item);
  return c != column_of_.end() && c->second < items_->size() ? c->second : -1;
}

Status ServingModel::Run(const store::ReadView& view, const Query& query, QueryResult* result,
                         const ExposureBoard* exposure) {
  MOSAIC_RETURN_IF_ERROR(query.Validate());
  const LoadedModel& m = m_;
  QueryResult out;
  out.query = query;
  out.model_version = m.version;
  fusion::TopK top;
  UserSearch user;  // recommend: the user's plays, columns and vector
  std::vector<char> explored;
  std::vector<std::string> why_explored;
  NodeId subject = 0;
  if (AsksAboutUser(query.kind)) {
    Status s = view.FindNode(NodeKind::kUser, query.user, &subject);
    if (s.IsNotFound()) return Status::NotFound("unknown user '" + query.user + "'");
    MOSAIC_RETURN_IF_ERROR(s);
    MOSAIC_RETURN_IF_ERROR(SearchForUser(view, query, subject, &user, &top));
    out.user_from_history = user.from_history;
    out.plays_since_version = user.since_version;
    out.personalised = user.personalised;
    if (exposure) MOSAIC_RETURN_IF_ERROR(Explore(view, query, user, *exposure, &top, &explored, &why_explored));
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
      hit.explored = r < explored.size() && explored[r];
      if (auto p = user.plays.find(id); p != user.plays.end()) hit.plays = p->second;
      out.hits.push_back(std::move(hit));
    }
  }
  for (Hit& hit : out.hits) hit.node = Describe(view, hit.node.id);
  if (query.explain) {
    MOSAIC_RETURN_IF_ERROR(m.is_second_version() ? AddSecondVersionReasons(view, query, subject, user, &out)
                                                 : AddReasons(view, query, subject, &out));
    for (size_t r = 0; r < out.hits.size() && r < why_explored.size(); ++r) {
      if (!why_explored[r].empty()) out.hits[r].reasons.insert(out.hits[r].reasons.begin(), why_explored[r]);
    }
  }
  *result = std::move(out);
  return Status::OK();
}

Status ServingModel::SearchForUser(const store::ReadView& view, const Query& query, NodeId user, UserSearch* found,
                                   fusion::TopK* top) {
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
      found->plays[e.dst] = e.weight;
      seen_items.push_back(e.dst);
      return true;
    }));
  }
  std::vector<int64_t>& seen = found->seen;
  std::vector<int64_t> allowed;
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
  if (m.is_second_version() && !frozen_users_) {
    // Every user from their plays as the store has them now: exact, no fold-in.
    if (seen.empty()) {
      found->personalised = false;
      return SearchPopular(view, query.k, query.new_only ? &allowed : nullptr, top);
    }
    const size_t trained_items =
        trained && m.has_history()
            ? size_t(m.history_offsets[size_t(row->second) + 1] - m.history_offsets[size_t(row->second)])
            : 0;
    const std::vector<int64_t> used =
        seen.size() > kMaxHistoryItems ? std::vector<int64_t>(seen.end() - long(kMaxHistoryItems), seen.end()) : seen;
    const std::vector<float> rows = ProjectionRows(used);
    std::vector<double> own;
    q = m.second->User(rows.data(), used.size(), &own);
    found->from_history = !trained;
    found->since_version = seen.size() > trained_items ? seen.size() - trained_items : 0;
    if (!query.exclude_seen) {
      // Played items' dot products overstate their scores by their own terms: search past them, take
      // the terms off, and keep the best k (a played item can only fall).
      *top = items_->Search(q.data(), int64_t(query.k + used.size()), filter);
      for (size_t r = 0; r < top->ids.size(); ++r) {
        const auto at = std::lower_bound(used.begin(), used.end(), top->ids[r]);
        if (at != used.end() && *at == top->ids[r]) top->scores[r] -= float(own[size_t(at - used.begin())]);
      }
      std::vector<size_t> order(top->ids.size());
      for (size_t r = 0; r < order.size(); ++r) order[r] = r;
      std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return top->scores[a] > top->scores[b]; });
      fusion::TopK kept;
      for (size_t r = 0; r < order.size() && r < query.k; ++r) {
        kept.ids.push_back(top->ids[order[r]]);
        kept.scores.push_back(top->scores[order[r]]);
      }
      *top = std::move(kept);
      found->vector = std::move(q);
      return Status::OK();
    }
  } else if (trained) {
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
        found->since_version = seen.size() - trained_items;
      }
    }
  } else {
    // A user who arrived after the version: folded in from their plays, placed items included.
    if (seen.empty()) {
      // Known to the catalogue (a tag, a sign-up) but nothing played: what is played most lately.
      found->personalised = false;
      return SearchPopular(view, query.k, query.new_only ? &allowed : nullptr, top);
    }
    // The fold-in's cost grows with the history: a long one is cut to its first kMaxFoldInItems.
    q = FoldIn(seen.size() > kMaxFoldInItems ? std::vector<int64_t>(seen.begin(), seen.begin() + long(kMaxFoldInItems)) : seen);
    found->from_history = true;
    found->since_version = seen.size();
  }
  *top = items_->Search(q.data(), int64_t(query.k), filter);
  found->vector = std::move(q);
  return Status::OK();
}

Status ServingModel::EnsureCalibration(const store::ReadView& view) {
  std::lock_guard<std::mutex> lock(calibration_mu_);
  if (calibrated_) return Status::OK();
  const LoadedModel& m = m_;
  const int64_t num_items = m.num_items();
  std::vector<float> played, unplayed;
  double base_rate = 0;
  if (m.has_history() && num_items > 0) {
    // Scores of up to 10 played and 10 random items of up to 500 trained users: enough for two
    // parameters, and ~20 ms once per version.
    constexpr int64_t kUsers = 500, kPerUser = 10;
    std::mt19937_64 rng(m.version);
    const int64_t users = m.num_users();
    const int64_t step = std::max<int64_t>(1, users / kUsers);
    for (int64_t u = 0; u < users; u += step) {
      const uint32_t begin = m.history_offsets[size_t(u)], end = m.history_offsets[size_t(u) + 1];
      if (begin == end) continue;
      const at::Tensor user = Rows(m.reps[u]);
      std::uniform_int_distribution<uint32_t> pick_played(begin, end - 1);
      std::uniform_int_distribution<int64_t> pick_any(0, num_items - 1);
      for (int64_t x = 0; x < kPerUser; ++x) {
        played.push_back(items_->Score(user.data_ptr<float>(), int64_t(m.history_items[pick_played(rng)])));
        // A random item: played by chance only at base_rate.
        unplayed.push_back(items_->Score(user.data_ptr<float>(), pick_any(rng)));
      }
    }
    base_rate = double(m.history_items.size()) / (double(std::max<int64_t>(1, users)) * double(num_items));
  } else {
    // A version without history: every candidate gets the catalogue's share of played pairs.
    store::Counters counters;
    MOSAIC_RETURN_IF_ERROR(view.GetCounters(&counters));
    const double pairs = double(counters.nodes[NodeKind::kUser]) * double(counters.nodes[NodeKind::kItem]);
    base_rate = pairs > 0 ? double(counters.interactions) / pairs : 0.01;
  }
  calibration_ = fusion::FitPlayCalibration(played, unplayed, base_rate);
  calibrated_ = true;
  return Status::OK();
}

Status ServingModel::Explore(const store::ReadView& view, const Query& query, const UserSearch& user,
                             const ExposureBoard& exposure, fusion::TopK* top, std::vector<char>* explored,
                             std::vector<std::string>* why) {
  explored->assign(top->ids.size(), 0);
  why->assign(top->ids.size(), "");
  if (query.explore == 0 || user.vector.empty() || top->ids.empty()) return Status::OK();
  MOSAIC_RETURN_IF_ERROR(EnsureCalibration(view));
  const fusion::PlayCalibration calibration = [&] {
    std::lock_guard<std::mutex> lock(calibration_mu_);
    return calibration_;
  }();
  // Candidates: items the version has no plays of (placed since, or cold in it) that this user has not
  // played, not in the list, and shown fewer than kExploreUntil times (past that, their counts speak).
  constexpr uint64_t kExploreUntil = 1000;
  constexpr size_t kMostCandidates = 256;
  const int64_t trained_items = m_.num_items();
  std::vector<int64_t> columns;
  std::vector<NodeId> ids;
  {
    std::lock_guard<std::mutex> lock(meta_mu_);
    const int64_t published = std::min<int64_t>(items_->size(), int64_t(columns_.size()));
    for (int64_t c = 0; c < published; ++c) {
      if (c < trained_items && !cold_[size_t(c)]) continue;
      if (std::binary_search(user.seen.begin(), user.seen.end(), c)) continue;
      if (query.new_only && !cold_[size_t(c)]) continue;
      if (std::find(top->ids.begin(), top->ids.end(), c) != top->ids.end()) continue;
      columns.push_back(c);
      ids.push_back(columns_[size_t(c)]);
    }
  }
  // Each candidate's id is its index in `columns`; scores[j] is the model's score of columns[j].
  std::vector<fusion::ExploreCandidate> candidates;
  std::vector<float> scores(columns.size());
  const fusion::ExploreSettings settings = explore_settings_;
  for (size_t j = 0; j < columns.size(); ++j) {
    const store::Exposure e = exposure.Get(ids[j]);
    if (e.impressions >= kExploreUntil) continue;
    scores[j] = items_->Score(user.vector.data(), columns[j]);
    candidates.push_back({int64_t(j), calibration.Probability(scores[j]), e.impressions, e.plays});
  }
  fusion::KeepMostPromising(kMostCandidates, settings, &candidates);
  std::vector<double> greedy;
  for (float score : top->scores) greedy.push_back(calibration.Probability(score));
  std::mt19937_64 rng;
  if (query.seeded) {
    rng.seed(query.seed ^ (0x9e3779b97f4a7c15ULL * (uint64_t(std::hash<std::string>()(query.user)) | 1)));
  } else {
    thread_local std::mt19937_64 fresh(std::random_device{}());
    rng.seed(fresh());
  }
  const std::vector<fusion::ListEntry> merged = fusion::MergeExplored(greedy, candidates, query.explore, settings, &rng);
  fusion::TopK out;
  explored->clear();
  why->clear();
  const double last_greedy = greedy.back();
  for (const fusion::ListEntry& entry : merged) {
    if (!entry.explored) {
      out.ids.push_back(top->ids[entry.index]);
      out.scores.push_back(top->scores[entry.index]);
      explored->push_back(0);
      why->push_back("");
      continue;
    }
    const fusion::ExploreCandidate& c = candidates[entry.index];
    const size_t j = size_t(c.id);
    out.ids.push_back(columns[j]);
    out.scores.push_back(scores[j]);
    explored->push_back(1);
    char text[200];
    std::snprintf(text, sizeof text,
                  "explored: shown %llu times, played %llu; its draw %.3f beat the list's last item (%.3f); the "
                  "model's own estimate %.3g",
                  static_cast<unsigned long long>(c.impressions), static_cast<unsigned long long>(c.plays), entry.value,
                  last_greedy, c.prior);
    why->push_back(text);
  }
  *top = std::move(out);
  return Status::OK();
}

std::vector<float> ServingModel::ProjectionRows(const std::vector<int64_t>& columns) const {
  const fusion::SecondVersion& v = *m_.second;
  const size_t pd = v.projection_dim(), d = v.dim(), er = v.ease_rank, cr = v.content_rank;
  std::vector<float> rows(columns.size() * pd, 0.0f), item(d);
  for (size_t x = 0; x < columns.size(); ++x) {
    const int64_t c = columns[x];
    float* row = &rows[x * pd];
    if (c < m_.num_items()) {
      std::copy_n(&v.projection[size_t(c) * pd], pd, row);
      continue;
    }
    // Placed since the version: [0 | Qhat | 0], Qhat read back from its vector (centred and weighted there).
    items_->Row(c, item.data());
    for (size_t k = 0; k < cr; ++k) row[er + k] = float(item[er + k] / v.cold_weight) + v.content_mean[k];
  }
  return rows;
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
  } else if (m_.is_second_version() && IsColdColumn(column)) {
    // Nobody has played it: the items whose listeners its content predicts, by cosine of the content
    // factors (each item's SVD factors Q_j, or Qhat_j where it has no plays).
    const fusion::SecondVersion& v = *m_.second;
    const size_t er = v.ease_rank, cr = v.content_rank, pd = v.projection_dim();
    const int64_t published = items_->size();
    std::vector<float> rows;
    for (int64_t c = 0; c < published; ++c) {
      if (c < m_.num_items()) {
        rows.insert(rows.end(), v.projection.begin() + long(size_t(c) * pd + er), v.projection.begin() + long(size_t(c) * pd + er + cr));
      } else {
        const std::vector<float> r = ProjectionRows({c});
        rows.insert(rows.end(), r.begin() + long(er), r.begin() + long(er + cr));
      }
    }
    auto norm = [&](int64_t c) {
      double s = 0;
      for (size_t k = 0; k < cr; ++k) s += double(rows[size_t(c) * cr + k]) * rows[size_t(c) * cr + k];
      return std::sqrt(s);
    };
    const double self_norm = norm(column);
    std::vector<std::pair<float, int64_t>> scored;
    for (int64_t c = 0; c < published; ++c) {
      if (c == column) continue;
      double dot = 0;
      for (size_t k = 0; k < cr; ++k) dot += double(rows[size_t(column) * cr + k]) * rows[size_t(c) * cr + k];
      const double n = norm(c) * self_norm;
      scored.push_back({float(n > 0 ? dot / n : 0.0), c});
    }
    const size_t n = std::min<size_t>(size_t(k), scored.size());
    std::partial_sort(scored.begin(), scored.begin() + long(n), scored.end(),
                      [](const auto& a, const auto& b) { return a.first != b.first ? a.first > b.first : a.second < b.second; });
    *top = fusion::TopK();
    for (size_t r = 0; r < n; ++r) {
      top->ids.push_back(scored[r].second);
      top->scores.push_back(scored[r].first);
    }
  } else if (m_.is_second_version()) {
    // The list of a listener who played this item alone: EASE^R's column for it, and its content.
    const std::vector<float> row = ProjectionRows({column});
    q = m_.second->User(row.data(), 1);
    const std::vector<int64_t> self = {column};
    fusion::SearchFilter filter;
    filter.excluded = &self;
    *top = items_->Search(q.data(), k, filter);
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

Status ServingModel::AddSecondVersionReasons(const store::ReadView& view, const Query& query, NodeId subject,
                                             const UserSearch& user, QueryResult* result) {
  const fusion::SecondVersion& v = *m_.second;
  const size_t d = v.dim();
  std::vector<float> item(d);
  const fusion::KernelPoint& point = v.content.point;
  char text[256];
  const std::string placement =
      point.w_text >= 1 ? "placed by its content alone (text; this version gives the KG no weight: validation "
                          "found it did not help)"
                        : "placed by its content: text " + std::to_string(int(std::lround(point.w_text * 100))) +
                              "%, KG links " + std::to_string(int(std::lround((1 - point.w_text) * 100))) + "%";
  if (query.kind != QueryKind::kRecommend) {
    // similar: what a listener of the subject alone would get, part by part; audience: the placement.
    const int64_t self = ColumnOf(subject);
    const std::vector<float> row = self >= 0 ? ProjectionRows({self}) : std::vector<float>();
    for (Hit& hit : result->hits) {
      const int64_t c = query.kind == QueryKind::kSimilar ? ColumnOf(hit.node.id) : -1;
      if (c >= 0 && self >= 0 && IsColdColumn(self)) {
        std::snprintf(text, sizeof text, "the listeners its content predicts: cosine %.2f with this item's", hit.score);
        hit.reasons.push_back(text);
      } else if (c >= 0 && self >= 0) {
        items_->Row(c, item.data());
        const auto parts = v.Contributions(row.data(), 1, item.data());
        std::snprintf(text, sizeof text, "its listeners also play this: %+.2f; alike in content: %+.2f", parts[0].ease,
                      parts[0].content);
        hit.reasons.push_back(text);
      }
      if (hit.placed) hit.reasons.push_back("new: " + placement);
    }
    return Status::OK();
  }
  if (user.vector.empty() || user.seen.empty()) return Status::OK();
  const std::vector<int64_t>& seen = user.seen;
  const std::vector<float> rows = ProjectionRows(seen);
  std::vector<NodeId> seen_ids(seen.size());
  {
    std::lock_guard<std::mutex> lock(meta_mu_);
    for (size_t x = 0; x < seen.size(); ++x) seen_ids[x] = columns_[size_t(seen[x])];
  }
  constexpr size_t kReasonsPerHit = 3;
  for (Hit& hit : result->hits) {
    const int64_t c = ColumnOf(hit.node.id);
    if (c < 0) continue;
    items_->Row(c, item.data());
    auto parts = v.Contributions(rows.data(), seen.size(), item.data());
    const auto self = std::lower_bound(seen.begin(), seen.end(), c);
    if (self != seen.end() && *self == c) parts[size_t(self - seen.begin())].ease = 0;  // not in its score (B_jj = 0)
    std::vector<size_t> order(parts.size());
    for (size_t x = 0; x < order.size(); ++x) order[x] = x;
    auto total = [&](size_t x) { return parts[x].ease + parts[x].content; };
    const size_t n = std::min(kReasonsPerHit, order.size());
    std::partial_sort(order.begin(), order.begin() + long(n), order.end(),
                      [&](size_t a, size_t b) { return total(a) > total(b); });
    for (size_t r = 0; r < n && total(order[r]) > 0; ++r) {
      const size_t x = order[r];
      const NodeRef played = Describe(view, seen_ids[x]);
      const std::string name = played.label.empty() ? played.key : played.label;
      std::snprintf(text, sizeof text, "you played %s: +%.2f (listeners in common %+.2f, content %+.2f)", name.c_str(),
                    total(x), parts[x].ease, parts[x].content);
      hit.reasons.push_back(text);
    }
    if (hit.placed || !v.has_plays[size_t(std::min<int64_t>(c, int64_t(v.num_items) - 1))] || c >= int64_t(v.num_items)) {
      hit.reasons.push_back("new: " + placement);
    }
  }
  return Status::OK();
}

Status ServingModel::AddReasons(const store::ReadView& view, const Query& query, NodeId subject, QueryResult* result) {
  const LoadedModel& m = m_;
  ExplainContext ex;
  std::lock_guard<std::mutex> kgat_lock(kgat_mu_);
  {
    std::lock_guard<std::mutex> lock(meta_mu_);
    const int64_t d = m.config.dim;
    const int64_t version_rows = int64_t(m.nodes.size());
    const int64_t rows = version_rows + int64_t(placed_layer0_.size()) / d;
    // Copying every row for each query costs more than the explanation: the rows are kept, and
    // items placed since the last query appended.
    if (!explain_layer0_.defined() || rows > explain_layer0_.size(0)) {
      at::Tensor grown = torch::empty({rows + rows / 2 + 64, d}, torch::kFloat);
      if (explain_layer0_.defined()) {
        grown.narrow(0, 0, explain_layer0_rows_).copy_(explain_layer0_.narrow(0, 0, explain_layer0_rows_));
      } else {
        grown.narrow(0, 0, version_rows).copy_(m.reps.narrow(1, 0, d));
        explain_layer0_rows_ = version_rows;
      }
      explain_layer0_ = grown;
    }
    if (rows > explain_layer0_rows_) {
      const int64_t from = explain_layer0_rows_ - version_rows;
      explain_layer0_.narrow(0, explain_layer0_rows_, rows - explain_layer0_rows_)
          .copy_(torch::from_blob(placed_layer0_.data() + from * d, {rows - explain_layer0_rows_, d}, torch::kFloat));
      for (int64_t p = from; p < rows - version_rows; ++p) {
        explain_extra_rows_[columns_[size_t(m.num_items() + p)]] = version_rows + p;
      }
      explain_layer0_rows_ = rows;
    }
    ex.layer0 = explain_layer0_.narrow(0, 0, rows);
    ex.extra_rows = &explain_extra_rows_;
  }
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
