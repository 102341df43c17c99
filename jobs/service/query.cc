#include "jobs/service/query.h"

namespace mosaic::jobs::service {

const char* QueryKindName(QueryKind kind) {
  switch (kind) {
    case QueryKind::kRecommend: return "recommend";
    case QueryKind::kAudience: return "audience";
    case QueryKind::kSimilar: return "similar";
  }
  return "?";
}

Status Query::Validate() const {
  if (k == 0 || k > kMaxQueryK) return Status::InvalidArgument("k must be between 1 and " + std::to_string(kMaxQueryK));
  if (AsksAboutUser(kind) && user.empty()) return Status::InvalidArgument("recommend needs a user");
  if (explore > k) return Status::InvalidArgument("explore must be between 0 and k (" + std::to_string(k) + ")");
  if (!AsksAboutUser(kind) && item.empty()) {
    return Status::InvalidArgument(std::string(QueryKindName(kind)) + " needs an item");
  }
  return Status::OK();
}

namespace {

nlohmann::json NodeJson(const NodeRef& n) {
  nlohmann::json j = {{"id", n.id}};
  if (!n.key.empty()) {
    j["key"] = n.key;
    j["label"] = n.label;
  }
  return j;
}

}  // namespace

nlohmann::json ToJson(const QueryResult& r) {
  const Query& q = r.query;
  nlohmann::json out = {{"query", QueryKindName(q.kind)}, {"model_version", r.model_version}, {"k", q.k}};
  out[AsksAboutUser(q.kind) ? "user" : "item"] = NodeJson(r.subject);
  if (q.kind == QueryKind::kRecommend) {
    out["new_only"] = q.new_only;
    out["exclude_seen"] = q.exclude_seen;
    out["user_from_history"] = r.user_from_history;
    out["plays_since_version"] = r.plays_since_version;
    out["personalised"] = r.personalised;
    out["explore"] = q.explore;
    if (!r.request.empty()) out["request"] = r.request;
  }
  nlohmann::json hits = nlohmann::json::array();
  for (size_t i = 0; i < r.hits.size(); ++i) {
    const Hit& h = r.hits[i];
    nlohmann::json j = NodeJson(h.node);
    j["rank"] = i + 1;
    j["score"] = h.score;
    if (q.kind != QueryKind::kAudience) j["placed"] = h.placed;
    if (q.kind == QueryKind::kRecommend) j["explored"] = h.explored;
    if (h.plays) j["plays"] = *h.plays;
    if (q.explain) j["explain"] = h.reasons;
    hits.push_back(std::move(j));
  }
  out["results"] = std::move(hits);
  return out;
}

}  // namespace mosaic::jobs::service
