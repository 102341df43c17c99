#include "jobs/service/explain.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <optional>
#include <unordered_map>


namespace mosaic::jobs::service {

using store::NodeId;
using store::NodeKind;

std::string RelationWords(const std::string& name) {
  std::string s = name;
  const size_t dot = s.rfind('.');
  if (dot != std::string::npos && dot + 1 < s.size()) s = s.substr(dot + 1);
  std::replace(s.begin(), s.end(), '_', ' ');
  return s;
}

namespace {

struct GraphEdge {
  NodeId head = 0, tail = 0;            // store ids
  store::RelationId relation = 0;       // store relation
  bool reverse = false;                 // walks the stored triple from tail to head
  int64_t head_row = 0, tail_row = 0, model_relation = 0;
};

// Paths from `source` to the nodes of `targets` (one or two hops) with their attention weights.
struct Path {
  double weight = 0;
  NodeId target = 0;
  bool direct = true;
  GraphEdge first, second;  // second only when !direct
};

// Everything walked from one source: its edges, and the edges of the first-hop nodes expanded, with
// their attention.
struct Walk {
  std::vector<GraphEdge> first, second;
  std::vector<float> a1, a2;
  // Edge positions by tail, so that each result looks up its own targets instead of scanning the walk.
  std::unordered_map<NodeId, std::vector<size_t>> first_by_tail, second_by_tail;
};

}  // namespace

struct ExplainWalks {
  std::unordered_map<NodeId, Walk> by_source;
};

namespace {

// A second hop goes through at most this many first-hop nodes, those of highest attention: a hub
// (an artist with thousands of listeners) is explained by its strongest links in bounded time. Below
// it (every artist of Last.FM) the "N listeners also played" counts are exact.
constexpr size_t kMostExpanded = 4096;

class Walker {
 public:
  explicit Walker(ExplainContext& ctx) : ctx_(ctx) {}

  int64_t Row(NodeId id) const {
    auto r = ctx_.model->row_of.find(id);
    if (r != ctx_.model->row_of.end()) return r->second;
    if (!ctx_.extra_rows) return -1;
    auto e = ctx_.extra_rows->find(id);
    return e == ctx_.extra_rows->end() ? -1 : e->second;
  }

  // Every edge whose head is `node`, in the model's terms (both directions of the stored triples).
  Status EdgesOf(NodeId node, std::vector<GraphEdge>* out) const {
    const int64_t head_row = Row(node);
    if (head_row < 0) return Status::OK();
    auto add = [&](NodeId other, store::RelationId relation, bool reverse) {
      const int64_t tail_row = Row(other);
      const int64_t r = ctx_.model->ModelRelation(relation, reverse);
      if (tail_row >= 0 && r >= 0) out->push_back({node, other, relation, reverse, head_row, tail_row, r});
      return true;
    };
    MOSAIC_RETURN_IF_ERROR(ctx_.view->ForEachOutEdge(node, [&](const store::Edge& e) { return add(e.dst, e.relation, false); }));
    MOSAIC_RETURN_IF_ERROR(ctx_.view->ForEachInEdge(node, [&](const store::Edge& e) { return add(e.src, e.relation, true); }));
    return Status::OK();
  }

  // pi of each edge (softmax over each head's edges, which are all present).
  std::vector<float> Attention(const std::vector<GraphEdge>& edges) const {
    if (edges.empty()) return {};
    std::vector<int64_t> h, r, t;
    for (const auto& e : edges) {
      h.push_back(e.head_row);
      r.push_back(e.model_relation);
      t.push_back(e.tail_row);
    }
    fusion::GraphTensors g{torch::tensor(h, torch::kLong), torch::tensor(r, torch::kLong), torch::tensor(t, torch::kLong)};
    torch::NoGradGuard no_grad;
    at::Tensor pi = (*ctx_.kgat)->Attention(ctx_.layer0, g).to(torch::kCPU, torch::kFloat).contiguous();
    return std::vector<float>(pi.data_ptr<float>(), pi.data_ptr<float>() + pi.numel());
  }

  // The walk from `source`, made once per query (the results of an audience query share their item).
  Status WalkFrom(NodeId source, const Walk** out) const {
    if (!ctx_.walks) ctx_.walks = std::make_shared<ExplainWalks>();
    auto found = ctx_.walks->by_source.find(source);
    if (found != ctx_.walks->by_source.end()) {
      *out = &found->second;
      return Status::OK();
    }
    Walk walk;
    MOSAIC_RETURN_IF_ERROR(EdgesOf(source, &walk.first));
    walk.a1 = Attention(walk.first);
    std::vector<size_t> order(walk.first.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return walk.a1[a] > walk.a1[b]; });
    std::unordered_map<NodeId, bool> expanded;
    for (size_t i : order) {
      const NodeId m = walk.first[i].tail;
      if (expanded.count(m)) continue;
      if (expanded.size() >= kMostExpanded) break;
      expanded[m] = true;
      MOSAIC_RETURN_IF_ERROR(EdgesOf(m, &walk.second));
    }
    walk.a2 = Attention(walk.second);
    for (size_t i = 0; i < walk.first.size(); ++i) walk.first_by_tail[walk.first[i].tail].push_back(i);
    for (size_t j = 0; j < walk.second.size(); ++j) walk.second_by_tail[walk.second[j].tail].push_back(j);
    *out = &(ctx_.walks->by_source[source] = std::move(walk));
    return Status::OK();
  }

  // Paths source -> target and source -> m -> target for targets in `targets` (value: a factor).
  // Never through `skip` (the user a recommendation is for: "listeners who also played" are others).
  Status Paths(NodeId source, const std::unordered_map<NodeId, double>& targets, NodeId skip, bool has_skip,
               std::vector<Path>* paths) const {
    const Walk* walk = nullptr;
    MOSAIC_RETURN_IF_ERROR(WalkFrom(source, &walk));
    const std::vector<GraphEdge>& first = walk->first;
    const std::vector<GraphEdge>& second = walk->second;
    // The edges ending at a target, in walk order (ties among reasons keep the order of the edges).
    std::vector<size_t> direct, indirect;
    for (const auto& [target, factor] : targets) {
      if (target == source) continue;
      if (auto f = walk->first_by_tail.find(target); f != walk->first_by_tail.end()) {
        direct.insert(direct.end(), f->second.begin(), f->second.end());
      }
      if (auto e = walk->second_by_tail.find(target); e != walk->second_by_tail.end()) {
        indirect.insert(indirect.end(), e->second.begin(), e->second.end());
      }
    }
    std::sort(direct.begin(), direct.end());
    std::sort(indirect.begin(), indirect.end());
    for (size_t i : direct) {
      paths->push_back({walk->a1[i] * targets.at(first[i].tail), first[i].tail, true, first[i], {}});
    }
    // The weight of m -> t must combine with every edge source -> m (several relations may join them).
    for (size_t j : indirect) {
      if (has_skip && second[j].head == skip) continue;
      auto via = walk->first_by_tail.find(second[j].head);
      if (via == walk->first_by_tail.end()) continue;
      for (size_t i : via->second) {
        paths->push_back({double(walk->a1[i]) * walk->a2[j] * targets.at(second[j].tail), second[j].tail, false,
                          first[i], second[j]});
      }
    }
    return Status::OK();
  }

  std::string Name(NodeId id) const {
    const store::NodeRecord* r = Node(id);
    if (!r) return "node " + std::to_string(id);
    if (!r->label.empty()) return r->label;
    const size_t colon = r->key.find(':');
    if (r->kind == NodeKind::kEntity && colon != std::string::npos && colon + 1 < r->key.size()) return r->key.substr(colon + 1);
    return r->key;
  }
  bool IsUser(NodeId id) const {
    const store::NodeRecord* r = Node(id);
    return r && r->kind == NodeKind::kUser;
  }
  std::string Relation(const GraphEdge& e) const {
    std::string name;
    if (!ctx_.view->GetRelationName(e.relation, &name).ok()) name = "relation " + std::to_string(e.relation);
    return RelationWords(name);
  }

 private:
  // The node's record, read once per walker (paths pass through the same nodes many times); null when
  // it cannot be read.
  const store::NodeRecord* Node(NodeId id) const {
    auto found = nodes_.find(id);
    if (found == nodes_.end()) {
      store::NodeRecord r;
      found = nodes_.emplace(id, ctx_.view->GetNode(id, &r).ok() ? std::optional<store::NodeRecord>(std::move(r))
                                                                  : std::nullopt).first;
    }
    return found->second ? &*found->second : nullptr;
  }

  ExplainContext& ctx_;
  mutable std::unordered_map<NodeId, std::optional<store::NodeRecord>> nodes_;
};

// One explanation: its weight and its words.
struct Reason {
  double weight = 0;
  std::string text;
  std::string via;  // the node in the middle: one reason per node keeps the list varied
};

std::string Times(double plays) {
  const auto n = int64_t(std::llround(plays));
  return std::to_string(n) + (n == 1 ? " time" : " times");
}

enum class Voice { kRecommend, kAudience, kSimilar };

// Turns paths into reasons: paths through users are summed per target ("N listeners"), the others
// are one reason each.
std::vector<Reason> Word(const Walker& w, const std::vector<Path>& paths, Voice voice,
                         const std::unordered_map<NodeId, double>& plays, size_t limit) {
  std::vector<Reason> reasons;
  std::map<NodeId, std::pair<double, int>> via_users;  // target -> (weight, users)
  for (const auto& p : paths) {
    if (!p.direct && w.IsUser(p.first.tail)) {
      auto& v = via_users[p.target];
      v.first += p.weight;
      v.second += 1;
      continue;
    }
    const double played = plays.count(p.target) ? plays.at(p.target) : 0;
    const std::string target = w.Name(p.target);
    std::string text;
    if (p.direct) {
      const std::string rel = w.Relation(p.first);
      if (voice == Voice::kRecommend) text = "linked to " + target + " by " + rel + ", which you played " + Times(played);
      if (voice == Voice::kAudience) text = "played " + target + " (" + Times(played) + "), linked to it by " + rel;
      if (voice == Voice::kSimilar) text = "linked by " + rel;
    } else {
      const std::string m = w.Name(p.first.tail);
      const std::string r1 = w.Relation(p.first), r2 = w.Relation(p.second);
      // Both items point at m by the same relation: "shares artist X".
      const bool shared = p.first.relation == p.second.relation && p.first.reverse != p.second.reverse;
      const std::string link = shared ? "shares " + r1 + " " + m : "is linked to " + m + " (" + r1 + "/" + r2 + ")";
      if (voice == Voice::kRecommend) text = (shared ? "shares " + r1 + " " + m + " with " : "linked through " + m + " (" + r1 + ", " + r2 + ") to ") + target + ", which you played " + Times(played);
      if (voice == Voice::kAudience) text = "played " + target + " (" + Times(played) + "), which " + link;
      if (voice == Voice::kSimilar) text = shared ? "both have " + r1 + " " + m : "both linked to " + m + " (" + r1 + ", " + r2 + ")";
    }
    reasons.push_back({p.weight, std::move(text), p.direct ? "" : "node " + std::to_string(p.first.tail)});
  }
  for (const auto& [target, v] : via_users) {
    const double played = plays.count(target) ? plays.at(target) : 0;
    const std::string n = std::to_string(v.second) + (v.second == 1 ? " listener" : " listeners");
    std::string text;
    if (voice == Voice::kRecommend) text = n + " also played " + w.Name(target) + ", which you played " + Times(played);
    if (voice == Voice::kAudience) text = "played " + w.Name(target) + " (" + Times(played) + "), played together with it by " + n;
    if (voice == Voice::kSimilar) text = "listened together by " + n;
    reasons.push_back({v.first, std::move(text), "users to " + std::to_string(target)});
  }
  std::stable_sort(reasons.begin(), reasons.end(), [](const Reason& a, const Reason& b) { return a.weight > b.weight; });
  // Identical words are one reason, and each middle node gives its best reason only.
  std::vector<Reason> unique;
  for (auto& r : reasons) {
    if (std::none_of(unique.begin(), unique.end(),
                     [&](const Reason& u) { return u.text == r.text || (!r.via.empty() && u.via == r.via); })) {
      unique.push_back(r);
    }
    if (unique.size() == limit) break;
  }
  return unique;
}

Status UserPlays(const ExplainContext& ctx, NodeId user, std::unordered_map<NodeId, double>* plays) {
  if (!ctx.model->has_interacted) return Status::OK();
  return ctx.view->ForEachOutEdge(user, [&](const store::Edge& e) {
    if (e.relation == ctx.model->interacted) (*plays)[e.dst] = e.weight;
    return true;
  });
}

std::vector<std::string> Texts(const std::vector<Reason>& reasons) {
  std::vector<std::string> out;
  for (const auto& r : reasons) out.push_back(r.text);
  return out;
}

// The paths from `item` to what `user` played, each weighted by log1p of the plays at its end.
Status PathsToPlays(ExplainContext& ctx, Walker& w, NodeId user, NodeId item,
                    std::unordered_map<NodeId, double>* plays, std::vector<Path>* paths) {
  MOSAIC_RETURN_IF_ERROR(UserPlays(ctx, user, plays));
  std::unordered_map<NodeId, double> factor;
  for (const auto& [j, n] : *plays) factor[j] = std::log1p(n);
  return w.Paths(item, factor, user, true, paths);
}

// recommend: paths from the item to what the user played.
Status ExplainRecommend(ExplainContext& ctx, NodeId user, NodeId item, size_t limit, std::vector<std::string>* texts) {
  Walker w(ctx);
  std::unordered_map<NodeId, double> plays;
  std::vector<Path> paths;
  MOSAIC_RETURN_IF_ERROR(PathsToPlays(ctx, w, user, item, &plays, &paths));
  *texts = Texts(Word(w, paths, Voice::kRecommend, plays, limit));
  return Status::OK();
}

Status ExplainAudience(ExplainContext& ctx, NodeId item, NodeId user, size_t limit, std::vector<std::string>* texts) {
  Walker w(ctx);
  std::unordered_map<NodeId, double> plays;
  std::vector<Path> paths;
  MOSAIC_RETURN_IF_ERROR(PathsToPlays(ctx, w, user, item, &plays, &paths));
  std::vector<Reason> reasons = Word(w, paths, Voice::kAudience, plays, limit);
  if (plays.count(item)) {
    reasons.insert(reasons.begin(), {0, "played it " + Times(plays.at(item)), ""});
    if (reasons.size() > limit) reasons.pop_back();
  }
  *texts = Texts(reasons);
  return Status::OK();
}

Status ExplainSimilar(ExplainContext& ctx, NodeId item, NodeId other, size_t limit, std::vector<std::string>* texts) {
  Walker w(ctx);
  std::vector<Path> paths;
  MOSAIC_RETURN_IF_ERROR(w.Paths(item, {{other, 1.0}}, 0, false, &paths));
  *texts = Texts(Word(w, paths, Voice::kSimilar, {}, limit));
  return Status::OK();
}

}  // namespace

Status Explain(ExplainContext& ctx, QueryKind kind, NodeId subject, NodeId result, size_t limit,
               std::vector<std::string>* texts) {
  switch (kind) {
    case QueryKind::kRecommend: return ExplainRecommend(ctx, subject, result, limit, texts);
    case QueryKind::kAudience: return ExplainAudience(ctx, subject, result, limit, texts);
    case QueryKind::kSimilar: return ExplainSimilar(ctx, subject, result, limit, texts);
  }
  return Status::InvalidArgument("unknown query kind");
}

}  // namespace mosaic::jobs::service
