// The endpoints of `mosaic serve`, listed once: the server registers its handlers from this table,
// and the metrics' endpoint labels and the 405 replies (with their Allow header) derive from it.
#pragma once

#include <string>
#include <vector>

namespace mosaic::jobs::http {

enum class Method { kGet, kPost };

struct Route {
  std::string path;  ///< "/recommend"
  Method method;     ///< the one method it takes
};

// Every endpoint: /health, /metrics, one per query kind (/recommend, /audience, /similar), the
// dashboard's files and endpoints (/, /dashboard.js, /dashboard.css, /catalogue, /item, /graph, /user,
// /versions), /items, /interactions, /impressions.
const std::vector<Route>& Routes();

// The metrics label of `path`: the path of a known endpoint, else "other" (a client must not be able
// to add series).
std::string EndpointLabel(const std::string& path);

const char* MethodName(Method method);

// The route of `path`; null when none (404).
const Route* FindRoute(const std::string& path);

// Whether `route` takes `method` (as sent: "GET"). HEAD is taken where GET is (answered without a body).
// When not, the reply is 405 with an Allow header naming MethodName(route.method).
bool TakesMethod(const Route& route, const std::string& method);

}  // namespace mosaic::jobs::http
