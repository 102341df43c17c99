// The query endpoints without a network: a request target ("/recommend?user=7&k=5&explain=1") is
// split and decoded as cpp-httplib does it, routed by the route table, and its parameters are read and
// checked by ParseQuery, as Server::Query does before it asks the model.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_check.h"
#include "graph/text.h"
#include "jobs/http/parse.h"
#include "jobs/http/routes.h"

using namespace mosaic::jobs;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string target(reinterpret_cast<const char*>(data), size);
  httplib::Request req;
  req.method = "GET";
  req.target = target;
  const size_t question = target.find('?');
  req.path = httplib::detail::decode_url(target.substr(0, question), false);
  if (question != std::string::npos) httplib::detail::parse_query_text(target.substr(question + 1), req.params);

  const http::Route* route = nullptr;
  for (const http::Route& r : http::Routes()) {
    if (r.path == req.path) route = &r;
  }
  const std::string label = http::EndpointLabel(req.path);
  FUZZ_CHECK(route ? label == req.path : label == "other", "the metrics label is a known path or 'other'");
  if (!route || route->method != http::Method::kGet || req.path == "/health" || req.path == "/metrics") return 0;

  service::Query query;
  const http::HttpError e = http::ParseQuery(req, &query);
  if (!e.ok()) {
    FUZZ_CHECK(e.status == 400, "a query is refused with 400");
    FUZZ_CHECK(e.field == "k" || e.field == "explain" || e.field == "user" || e.field == "new_only" ||
                   e.field == "exclude_seen" || e.field == "item",
               "a refusal names the parameter at fault");
    return 0;
  }
  FUZZ_CHECK(query.k >= 1 && query.k <= service::kMaxQueryK, "k is in range");
  FUZZ_CHECK(query.Validate().ok(), "an accepted query validates");
  const std::string& subject = service::AsksAboutUser(query.kind) ? query.user : query.item;
  FUZZ_CHECK(!subject.empty(), "the subject is given");
  FUZZ_CHECK(mosaic::graph::FindInvalidUtf8(subject) == std::string::npos, "the subject is UTF-8");
  return 0;
}
