// The dashboard `mosaic serve` serves at / (docs/serving.md, "Dashboard"): its static files,
// embedded in the library at build time from jobs/http/dashboard/, and the read-only JSON endpoints
// its pages load (/catalogue, /item, /graph, /user, /versions) over jobs/service/browse.h and the
// serving model. Writes from the dashboard go through the API's POST endpoints, token and all.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

#include "jobs/http/request.h"
#include "store/store.h"

namespace mosaic::graph {
struct TextFeatureHook;
}
namespace mosaic::jobs::service {
class ServingModel;
}

namespace mosaic::jobs::http {

// A static file of the dashboard.
struct Asset {
  const char* path;          ///< "/", "/dashboard.js", "/dashboard.css"
  const char* content_type;  ///< with its charset
  const char* body;          ///< NUL-terminated
};

// The asset served at `path`; null when none.
const Asset* FindAsset(const std::string& path);
// Every asset, for the route table.
const std::vector<Asset>& Assets();

// GET /catalogue?q=TEXT&kind=video|music&limit=N (default 50, at most 500): service::SearchItems, with
// `text` for text similarity when the server has the text model.
HttpError CatalogueJson(const Request& req, const store::ReadView& view, const graph::TextFeatureHook* text,
                        nlohmann::json* out);

// GET /item?item=ID|KEY|TITLE&k=N (default 8, at most 50): everything the item page shows, in one
// reply: the item (service::DescribeItem), its KG graph (two hops), and with a model its audience
// with explanations and its similar items (null without a model).
HttpError ItemPageJson(const Request& req, const store::ReadView& view, service::ServingModel* model,
                       nlohmann::json* out);

// GET /graph?node=ID&hops=1|2: the KG around any item or entity (service::NodeGraph), to walk it.
HttpError GraphJson(const Request& req, const store::ReadView& view, nlohmann::json* out);

// GET /user?user=KEY&limit=N (default 50, at most 1000): the user's history (service::UserHistory).
HttpError UserJson(const Request& req, const store::ReadView& view, nlohmann::json* out);

// GET /versions: the model versions (service::ListModelVersions).
HttpError VersionsJson(const Request& req, const store::ReadView& view, nlohmann::json* out);

}  // namespace mosaic::jobs::http
