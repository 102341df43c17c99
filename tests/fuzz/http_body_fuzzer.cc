// The JSON bodies of POST /items, /interactions and /impressions without a network: the body is read
// by JsonBody (Content-Type application/json, depth bound, parse) and then by ParseItem, or by
// ParseImpressions and ParseInteractions, as the server does before it queues a write. Built twice:
// MOSAIC_FUZZ_ITEMS picks /items, otherwise /interactions and /impressions.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_check.h"
#include "graph/import.h"
#include "jobs/http/parse.h"

using namespace mosaic::jobs;

namespace {

bool Clean(const std::string& s, bool allow_line_breaks = false) {
  return mosaic::graph::RefuseControlCharacters(s, "", allow_line_breaks).ok();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string raw(reinterpret_cast<const char*>(data), size);
  http::Request req;
  req.method = "POST";
  req.headers.emplace_back("Content-Type", "application/json");
  nlohmann::json body;
  http::HttpError e = http::JsonBody(req, raw, &body);
  if (!e.ok()) {
    FUZZ_CHECK(e.status == 400, "a body that is not JSON is refused with 400");
    return 0;
  }
  // The server's replies dump what it read (invalid UTF-8 replaced): that must not throw.
  (void)body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
#ifdef MOSAIC_FUZZ_ITEMS
  mosaic::graph::CatalogueItem item;
  e = http::ParseItem(body, &item);
  if (!e.ok()) {
    FUZZ_CHECK(e.status == 400, "an item is refused with 400");
    return 0;
  }
  FUZZ_CHECK(!item.id.empty() && Clean(item.id), "an accepted item has a clean id");
  FUZZ_CHECK(Clean(item.label), "an accepted item has a clean title");
  for (const auto& [relation, value] : item.links) {
    FUZZ_CHECK(mosaic::graph::ValidateRelationName(relation).ok(), "a link's relation is a usable name");
    FUZZ_CHECK(Clean(value), "a link's value is clean");
  }
  (void)item.attributes.dump(-1, ' ', false, nlohmann::json::error_handler_t::strict);
#else
  http::Impressions shown;
  const http::HttpError refused = http::ParseImpressions(body, &shown);
  if (refused.ok()) {
    FUZZ_CHECK(!shown.request.empty() && shown.request.size() <= http::kMaxRequestIdBytes && Clean(shown.request),
               "an accepted impression has a clean request id");
    FUZZ_CHECK(!shown.user.empty() && Clean(shown.user), "an accepted impression has a clean user");
    FUZZ_CHECK(!shown.items.empty() && shown.items.size() <= http::kMaxImpressionItems, "1..1,000 items shown");
    for (const std::string& item : shown.items) FUZZ_CHECK(!item.empty() && Clean(item), "clean item ids");
  } else {
    FUZZ_CHECK(refused.status == 400 || refused.status == 413, "impressions are refused with 400 or 413");
  }
  std::vector<http::InteractionRow> rows;
  e = http::ParseInteractions(body, &rows);
  if (!e.ok()) {
    FUZZ_CHECK(e.status == 400 || e.status == 413, "interactions are refused with 400 or 413");
    return 0;
  }
  FUZZ_CHECK(!rows.empty() && rows.size() <= http::kMaxInteractionsPerPost, "1..10,000 rows");
  for (const http::InteractionRow& r : rows) {
    FUZZ_CHECK(!r.user.empty() && Clean(r.user) && !r.item.empty() && Clean(r.item), "clean ids");
    FUZZ_CHECK(std::isfinite(r.weight) && r.weight > 0 && r.weight <= mosaic::graph::kMaxWeight, "weight in range");
    FUZZ_CHECK(r.timestamp >= 0, "timestamp in range");
  }
#endif
  return 0;
}
