#include "jobs/http/parse.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <utility>

#include "graph/import.h"

namespace mosaic::jobs::http {

namespace {

// A user or item key: a non-empty string without control characters, or an integer id. `what` names
// it in the message, `field` in the refusal.
HttpError KeyValue(const nlohmann::json& f, const std::string& what, const std::string& field, std::string* key) {
  if (!(f.is_string() || f.is_number_integer())) return HttpError{400, what + " must be a string or an integer id", field};
  // An integer id keeps its exact value: nlohmann holds those above 2^63-1 as unsigned (and those
  // beyond 2^64-1 as doubles, refused above), so neither wraps.
  std::string value = f.is_string()            ? f.get<std::string>()
                      : f.is_number_unsigned() ? std::to_string(f.get<uint64_t>())
                                               : std::to_string(f.get<int64_t>());
  if (value.empty()) return HttpError{400, what + " is empty", field};
  Status clean = graph::RefuseControlCharacters(value, what);
  if (!clean.ok()) return HttpError{400, clean.message(), field};
  *key = std::move(value);
  return {};
}

// The key in field `name` of object `r` (`at`: the object's path in the body, for the refusal).
HttpError KeyField(const nlohmann::json& r, const char* name, const std::string& at, std::string* key) {
  auto f = r.find(name);
  if (f == r.end()) return HttpError{400, std::string("'") + name + "' must be a string or an integer id", at + name};
  return KeyValue(*f, std::string("'") + name + "'", at + name, key);
}

}  // namespace

HttpError ParseQuery(const Request& req, service::Query* query, size_t explore) {
  for (service::QueryKind kind : service::kQueryKinds) {
    if (req.path == std::string("/") + service::QueryKindName(kind)) query->kind = kind;
  }
  long long k = 0;
  MOSAIC_HTTP_RETURN_IF_ERROR(IntParam(req, "k", 20, 1, static_cast<long long>(service::kMaxQueryK), &k));
  query->k = size_t(k);
  MOSAIC_HTTP_RETURN_IF_ERROR(FlagParam(req, "explain", &query->explain));
  if (service::AsksAboutUser(query->kind)) {
    MOSAIC_HTTP_RETURN_IF_ERROR(RequiredParam(req, "user", &query->user));
    MOSAIC_HTTP_RETURN_IF_ERROR(FlagParam(req, "new_only", &query->new_only));
    MOSAIC_HTTP_RETURN_IF_ERROR(FlagParam(req, "exclude_seen", &query->exclude_seen));
    long long slots = 0;
    MOSAIC_HTTP_RETURN_IF_ERROR(IntParam(req, "explore", static_cast<long long>(std::min(explore, query->k)), 0, k, &slots));
    query->explore = size_t(slots);
    std::string seed;
    MOSAIC_HTTP_RETURN_IF_ERROR(Param(req, "seed", "", &seed));
    if (!seed.empty()) {
      long long value = 0;
      MOSAIC_HTTP_RETURN_IF_ERROR(IntParam(req, "seed", 0, 0, std::numeric_limits<long long>::max(), &value));
      query->seeded = true;
      query->seed = uint64_t(value);
    }
  } else {
    MOSAIC_HTTP_RETURN_IF_ERROR(RequiredParam(req, "item", &query->item));
  }
  return {};
}

HttpError ParseItem(const nlohmann::json& body, graph::CatalogueItem* item) {
  if (!body.is_object()) return {400, "the body must be one JSON object (a catalogue item)", ""};
  Status parsed = graph::ParseCatalogueObject(body, "id", item);
  if (!parsed.ok()) {
    // Its messages start with "field 'NAME'".
    const std::string& m = parsed.message();
    const size_t open = m.rfind("field '", 0) == 0 ? 7 : std::string::npos;
    const size_t close = open == std::string::npos ? open : m.find('\'', open);
    return {400, m, close == std::string::npos ? "" : m.substr(open, close - open)};
  }
  return {};
}

HttpError ParseInteractions(const nlohmann::json& body, std::vector<InteractionRow>* rows) {
  if (!body.is_object() && !body.is_array()) {
    return HttpError{400, "the body must be a JSON object or an array of objects {user, item, weight, timestamp}", ""};
  }
  // The rows are read in place: one object, or the elements of the array (never a copy of the body).
  const bool many = body.is_array();
  const size_t count = many ? body.size() : 1;
  auto row_at = [&](size_t i) -> const nlohmann::json& { return many ? body[i] : body; };
  if (count == 0) return HttpError{400, "no interactions in the body", ""};
  if (count > kMaxInteractionsPerPost) {
    return HttpError{413, "at most " + std::to_string(kMaxInteractionsPerPost) + " interactions per request", ""};
  }
  std::vector<InteractionRow> parsed;
  parsed.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    const nlohmann::json& r = row_at(i);
    const std::string at = many ? "[" + std::to_string(i) + "]." : "";
    if (!r.is_object()) return HttpError{400, "interaction " + std::to_string(i) + " is not an object", ""};
    InteractionRow row;
    MOSAIC_HTTP_RETURN_IF_ERROR(KeyField(r, "user", at, &row.user));
    MOSAIC_HTTP_RETURN_IF_ERROR(KeyField(r, "item", at, &row.item));
    if (auto w = r.find("weight"); w != r.end()) {
      if (!w->is_number() || !std::isfinite(w->get<double>()) || w->get<double>() <= 0 ||
          w->get<double>() > graph::kMaxWeight) {
        return HttpError{400, "'weight' must be a positive number of at most 1e9", at + "weight"};
      }
      row.weight = w->get<double>();
    }
    if (auto t = r.find("timestamp"); t != r.end()) {
      const bool fits = t->is_number_unsigned() ? t->get<uint64_t>() <= uint64_t(INT64_MAX)
                                                : t->is_number_integer() && t->get<int64_t>() >= 0;
      if (!fits) {
        return HttpError{400, "'timestamp' must be seconds since the epoch (a non-negative 64-bit integer)",
                         at + "timestamp"};
      }
      row.timestamp = t->get<int64_t>();
    }
    parsed.push_back(std::move(row));
  }
  *rows = std::move(parsed);
  return {};
}

HttpError ParseImpressions(const nlohmann::json& body, Impressions* out) {
  if (!body.is_object()) return HttpError{400, "the body must be a JSON object {request, user, items}", ""};
  Impressions parsed;
  auto request = body.find("request");
  if (request == body.end() || !request->is_string() || request->get<std::string>().empty()) {
    return HttpError{400, "'request' must be the request id a /recommend reply carried", "request"};
  }
  parsed.request = request->get<std::string>();
  if (parsed.request.size() > kMaxRequestIdBytes) {
    return HttpError{400, "'request' is longer than " + std::to_string(kMaxRequestIdBytes) + " bytes", "request"};
  }
  Status clean = graph::RefuseControlCharacters(parsed.request, "'request'");
  if (!clean.ok()) return HttpError{400, clean.message(), "request"};
  MOSAIC_HTTP_RETURN_IF_ERROR(KeyField(body, "user", "", &parsed.user));
  auto items = body.find("items");
  if (items == body.end() || !items->is_array() || items->empty()) {
    return HttpError{400, "'items' must be a non-empty array of the items shown", "items"};
  }
  if (items->size() > kMaxImpressionItems) {
    return HttpError{413, "at most " + std::to_string(kMaxImpressionItems) + " items per impression", "items"};
  }
  for (size_t i = 0; i < items->size(); ++i) {
    const std::string at = "items[" + std::to_string(i) + "]";
    std::string key;
    MOSAIC_HTTP_RETURN_IF_ERROR(KeyValue((*items)[i], "'" + at + "'", at, &key));
    parsed.items.push_back(std::move(key));
  }
  *out = std::move(parsed);
  return {};
}

}  // namespace mosaic::jobs::http
