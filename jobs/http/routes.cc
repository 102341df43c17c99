#include "jobs/http/routes.h"

#include "jobs/service/query.h"

namespace mosaic::jobs::http {

const std::vector<Route>& Routes() {
  static const std::vector<Route> routes = [] {
    std::vector<Route> r = {{"/health", Method::kGet}, {"/metrics", Method::kGet}};
    for (service::QueryKind kind : service::kQueryKinds) {
      r.push_back({std::string("/") + service::QueryKindName(kind), Method::kGet});
    }
    // The dashboard: its files (jobs/http/dashboard.h) and the read-only endpoints its pages load.
    for (const char* path : {"/", "/dashboard.js", "/dashboard.css", "/catalogue", "/item", "/graph", "/user", "/versions"}) {
      r.push_back({path, Method::kGet});
    }
    r.push_back({"/items", Method::kPost});
    r.push_back({"/interactions", Method::kPost});
    r.push_back({"/impressions", Method::kPost});
    return r;
  }();
  return routes;
}

const Route* FindRoute(const std::string& path) {
  for (const Route& route : Routes()) {
    if (route.path == path) return &route;
  }
  return nullptr;
}

std::string EndpointLabel(const std::string& path) { return FindRoute(path) ? path : "other"; }

bool TakesMethod(const Route& route, const std::string& method) {
  if (method == MethodName(route.method)) return true;
  return route.method == Method::kGet && method == "HEAD";
}

const char* MethodName(Method method) { return method == Method::kGet ? "GET" : "POST"; }

}  // namespace mosaic::jobs::http
