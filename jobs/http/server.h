// mosaic serve: the HTTP/JSON API (docs/serving.md) over the model-service layer.
#pragma once

#include "jobs/cli/commands.h"
#include "store/status.h"

namespace mosaic::jobs::http {

// Answers HTTP requests on args.host:args.port until SIGINT or SIGTERM. IOError when it cannot
// listen; the store's errors when it cannot open the store or load its model.
Status RunServer(const Context& ctx, const ServeArgs& args);

}  // namespace mosaic::jobs::http
