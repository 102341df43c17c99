// What each endpoint of `mosaic serve` reads from a request, checked, without a store or a model:
// the query parameters of /recommend, /audience and /similar, and the JSON bodies of POST /items and
// /interactions. The server calls these before it touches the store; the fuzzers (tests/fuzz/) call
// them on arbitrary input. Each returns a refusal (4xx, with the parameter or field at fault) or none.
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "graph/catalogue.h"
#include "jobs/http/request.h"
#include "jobs/service/query.h"

namespace mosaic::jobs::http {

// The most interactions one POST /interactions may carry (413 beyond).
constexpr size_t kMaxInteractionsPerPost = 10000;

// The query of a GET on a query endpoint: the kind from req.path ("/recommend", "/audience",
// "/similar"; any other path leaves query->kind as it is), k (1..kMaxQueryK, default 20), explain,
// and the subject: user (with new_only, exclude_seen, explore (0..k, default `explore`) and seed) or
// item. 400 naming the parameter otherwise.
HttpError ParseQuery(const Request& req, service::Query* query, size_t explore = 0);

// The body of POST /items: one JSON object read as a catalogue line (graph::ParseCatalogueObject,
// keyed by "id"). 400 naming the field at fault.
HttpError ParseItem(const nlohmann::json& body, graph::CatalogueItem* item);

// One interaction of POST /interactions, checked.
struct InteractionRow {
  std::string user, item;  ///< keys: strings, or integer ids written exactly (never wrapped)
  double weight = 1;       ///< in (0, graph::kMaxWeight]
  int64_t timestamp = 0;   ///< seconds since the epoch, 0..2^63-1
};

// The body of POST /interactions: one object {user, item[, weight][, timestamp]} or an array of
// 1..kMaxInteractionsPerPost of them, read in place (never copied). On success stores the rows, in
// order, in *rows. 400 naming the field ("[i].weight" in an array), 413 for too many.
HttpError ParseInteractions(const nlohmann::json& body, std::vector<InteractionRow>* rows);

// The most items one POST /impressions may name, and the longest request id.
constexpr size_t kMaxImpressionItems = 1000;
constexpr size_t kMaxRequestIdBytes = 128;

// The body of POST /impressions: {"request": id a /recommend reply carried, "user": U, "items": [I,
// ...]} (1..kMaxImpressionItems items: strings or integer ids). 400 naming the field.
struct Impressions {
  std::string request, user;
  std::vector<std::string> items;
};
HttpError ParseImpressions(const nlohmann::json& body, Impressions* out);

}  // namespace mosaic::jobs::http
