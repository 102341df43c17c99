// The HTTP edge's vocabulary: a refusal (HttpError), the request parameters and JSON bodies read
// with the checks every endpoint shares, and JSON replies.
#pragma once

#include <nlohmann/json.hpp>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "store/status.h"

namespace mosaic::jobs::http {

// A refusal: status 0 means none (the handler went on); otherwise the HTTP status, the message and
// the parameter or field at fault (empty when no one field is).
struct HttpError {
  int status = 0;
  std::string message;
  std::string field;
  bool ok() const { return status == 0; }
};

// A request as the handlers see it, read whole and within the limits by the transport
// (jobs/http/transport.h).
struct Request {
  std::string method;                                        ///< "GET", as sent
  std::string target;                                        ///< "/recommend?user=7", as sent
  std::string path;                                          ///< the target's path, percent-decoded
  std::multimap<std::string, std::string> params;            ///< the target's query, decoded
  std::vector<std::pair<std::string, std::string>> headers;  ///< as sent, in order
  std::string body;

  // The value of header `name` (any case); the first when sent more than once; "" when absent.
  std::string Header(const std::string& name) const;
  bool HasParam(const std::string& name) const { return params.count(name) > 0; }
};

// A reply: status, content and extra headers (Content-Type and Content-Length come from the fields).
struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  bool close = false;  ///< close the connection after this reply

  void SetHeader(const std::string& name, const std::string& value) { headers.emplace_back(name, value); }
};

// Splits `target` into req->path and req->params, percent-decoding both ('+' is a space in the query).
// 400 when the target is not origin-form (does not start with '/').
HttpError DecodeTarget(const std::string& target, Request* req);

// Returns the refusal from the enclosing handler when there is one.
#define MOSAIC_HTTP_RETURN_IF_ERROR(expr)               \
  do {                                                  \
    ::mosaic::jobs::http::HttpError _mosaic_e = (expr); \
    if (!_mosaic_e.ok()) return _mosaic_e;              \
  } while (0)

// A Status from the store or the model as a refusal: InvalidArgument 400, NotFound 404, Busy 503,
// anything else 500 (its message kept: it names the store's or the model's problem).
HttpError FromStatus(const Status& s, const std::string& field = "");

void SendJson(Response& res, int status, const nlohmann::json& body);
void SendError(Response& res, const HttpError& e);

// Query parameter `name` into *value: `fallback` when absent; 400 when it is not UTF-8.
HttpError Param(const Request& req, const std::string& name, const std::string& fallback, std::string* value);
// A parameter that must be present and non-empty.
HttpError RequiredParam(const Request& req, const std::string& name, std::string* value);
// 0, 1, true, false (present and empty: true); absent: false.
HttpError FlagParam(const Request& req, const std::string& name, bool* value);
// An integer in [min, max]; absent: fallback.
HttpError IntParam(const Request& req, const std::string& name, long long fallback, long long min,
                   long long max, long long* value);

// The deepest nesting of arrays and objects a JSON body may have.
constexpr int kMaxJsonDepth = 64;

// The body as JSON: 415 unless sent as application/json; 400 when malformed, nested deeper than
// kMaxJsonDepth (checked before parsing) or holding a number beyond a double's range.
HttpError JsonBody(const Request& req, const std::string& body, nlohmann::json* json);

}  // namespace mosaic::jobs::http
