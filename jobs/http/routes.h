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

// Every endpoint: /health, /metrics, one per query kind (/recommend, /audience, /similar), /items,
// /interactions.
const std::vector<Route>& Routes();

// The metrics label of `path`: the path of a known endpoint, else "other" (a client must not be able
// to add series).
std::string EndpointLabel(const std::string& path);

const char* MethodName(Method method);

}  // namespace mosaic::jobs::http
