// The request path of `mosaic serve` without a network: bytes as a client sends them are parsed as a
// connection parses them (ParseRequest: Beast's parser under the server's limits), routed by the route
// table as Server::Serve routes them, and read as the endpoint's handler reads them before it touches
// the store or the model: ParseQuery for the query endpoints, JsonBody and ParseItem, ParseInteractions
// or ParseImpressions for the POSTs.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_check.h"
#include "graph/text.h"
#include "jobs/http/parse.h"
#include "jobs/http/routes.h"
#include "jobs/http/transport.h"

using namespace mosaic::jobs;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  http::TransportLimits limits;
  limits.max_body = 64 * 1024;  // smaller than the server's default, so that the fuzzer reaches it
  http::Request req;
  http::HttpError e = http::ParseRequest(std::string(reinterpret_cast<const char*>(data), size), limits, &req);
  if (!e.ok()) {
    FUZZ_CHECK(e.status == 400 || e.status == 413 || e.status == 431, "the transport refuses with 400, 413 or 431");
    return 0;
  }
  FUZZ_CHECK(req.headers.size() <= limits.max_header_fields, "the header fields are bounded");
  FUZZ_CHECK(req.body.size() <= limits.max_body, "the body is bounded");
  FUZZ_CHECK(!req.target.empty() && req.target[0] == '/', "an accepted target is a path");

  const http::Route* route = http::FindRoute(req.path);
  const std::string label = http::EndpointLabel(req.path);
  FUZZ_CHECK(route ? label == req.path : label == "other", "the metrics label is a known path or 'other'");
  if (!route || !http::TakesMethod(*route, req.method)) return 0;
  if (route->method == http::Method::kPost) {
    nlohmann::json body;
    e = http::JsonBody(req, req.body, &body);
    if (!e.ok()) {
      FUZZ_CHECK(e.status == 400 || e.status == 415, "a body is refused with 400 or 415");
      return 0;
    }
    if (req.path == "/items") {
      mosaic::graph::CatalogueItem item;
      e = http::ParseItem(body, &item);
    } else if (req.path == "/impressions") {
      http::Impressions shown;
      e = http::ParseImpressions(body, &shown);
    } else {
      std::vector<http::InteractionRow> rows;
      e = http::ParseInteractions(body, &rows);
    }
    FUZZ_CHECK(e.ok() || e.status == 400 || e.status == 413, "a POST is accepted or refused with 400 or 413");
    return 0;
  }
  // Beyond the query kinds' endpoints, GETs read no parameters here (the dashboard's need a store).
  bool is_query = false;
  for (service::QueryKind kind : service::kQueryKinds) is_query |= req.path == std::string("/") + service::QueryKindName(kind);
  if (!is_query) return 0;

  service::Query query;
  e = http::ParseQuery(req, &query);
  if (!e.ok()) {
    FUZZ_CHECK(e.status == 400, "a query is refused with 400");
    FUZZ_CHECK(e.field == "k" || e.field == "explain" || e.field == "user" || e.field == "new_only" ||
                   e.field == "exclude_seen" || e.field == "item" || e.field == "explore" || e.field == "seed",
               "a refusal names the parameter at fault");
    return 0;
  }
  FUZZ_CHECK(query.k >= 1 && query.k <= service::kMaxQueryK, "k is in range");
  FUZZ_CHECK(query.explore <= query.k, "explore is at most k");
  FUZZ_CHECK(query.Validate().ok(), "an accepted query validates");
  const std::string& subject = service::AsksAboutUser(query.kind) ? query.user : query.item;
  FUZZ_CHECK(!subject.empty(), "the subject is given");
  FUZZ_CHECK(mosaic::graph::FindInvalidUtf8(subject) == std::string::npos, "the subject is UTF-8");
  return 0;
}
