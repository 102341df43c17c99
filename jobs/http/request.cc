#include "jobs/http/request.h"

#include <httplib.h>  // its URL decoding only (the client is used by tests and tools)

#include <algorithm>
#include <cctype>
#include <strings.h>

#include "graph/text.h"

namespace mosaic::jobs::http {

HttpError FromStatus(const Status& s, const std::string& field) {
  switch (s.code()) {
    case Status::Code::kOk: return {};
    case Status::Code::kInvalidArgument: return {400, s.message(), field};
    case Status::Code::kNotFound: return {404, s.message(), field};
    case Status::Code::kBusy: return {503, s.message(), ""};
    default: return {500, s.ToString(), ""};
  }
}

std::string Request::Header(const std::string& name) const {
  for (const auto& [key, value] : headers) {
    if (key.size() == name.size() && ::strncasecmp(key.data(), name.data(), name.size()) == 0) return value;
  }
  return "";
}

HttpError DecodeTarget(const std::string& target, Request* req) {
  if (target.empty() || target[0] != '/') return {400, "the request target must be a path starting with '/'", ""};
  const size_t question = target.find('?');
  req->path = httplib::detail::decode_url(target.substr(0, question), false);
  req->params.clear();
  if (question != std::string::npos) httplib::detail::parse_query_text(target.substr(question + 1), req->params);
  return {};
}

void SendJson(Response& res, int status, const nlohmann::json& body) {
  res.status = status;
  res.content_type = "application/json";
  res.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

void SendError(Response& res, const HttpError& e) {
  nlohmann::json body = {{"error", e.message}};
  if (!e.field.empty()) body["field"] = e.field;
  SendJson(res, e.status, body);
}

HttpError Param(const Request& req, const std::string& name, const std::string& fallback, std::string* value) {
  const auto found = req.params.lower_bound(name);  // the first one when sent more than once
  if (found == req.params.end() || found->first != name) {
    *value = fallback;
    return {};
  }
  *value = found->second;
  if (graph::FindInvalidUtf8(*value) != std::string::npos) return {400, "parameter '" + name + "' is not UTF-8", name};
  return {};
}

HttpError RequiredParam(const Request& req, const std::string& name, std::string* value) {
  MOSAIC_HTTP_RETURN_IF_ERROR(Param(req, name, "", value));
  if (value->empty()) return {400, "parameter '" + name + "' is required", name};
  return {};
}

HttpError FlagParam(const Request& req, const std::string& name, bool* value) {
  std::string v;
  MOSAIC_HTTP_RETURN_IF_ERROR(Param(req, name, "0", &v));
  if (v == "1" || v == "true" || v.empty()) return *value = true, HttpError{};
  if (v == "0" || v == "false") return *value = false, HttpError{};
  return {400, "parameter '" + name + "' must be 0, 1, true or false, not '" + v + "'", name};
}

HttpError IntParam(const Request& req, const std::string& name, long long fallback, long long min,
                   long long max, long long* value) {
  std::string v;
  MOSAIC_HTTP_RETURN_IF_ERROR(Param(req, name, std::to_string(fallback), &v));
  size_t used = 0;
  try {
    *value = std::stoll(v, &used);
  } catch (const std::exception&) {  // std::stoll reports "not a number" and "too large" by exception
    used = 0;
  }
  if (used == 0 || used != v.size()) return {400, "parameter '" + name + "' must be an integer, not '" + v + "'", name};
  if (*value < min || *value > max) {
    return {400, "parameter '" + name + "' must be between " + std::to_string(min) + " and " + std::to_string(max) +
                     ", not " + v,
            name};
  }
  return {};
}

namespace {

// Whether `body` nests arrays and objects deeper than `limit` (brackets inside strings do not count).
// One pass, no recursion: run before parsing, so that no later step (a parse, a copy, a dump) sees
// a deeper value.
bool NestedDeeperThan(const std::string& body, int limit) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (char c : body) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > limit) return true;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return false;
}

}  // namespace

HttpError JsonBody(const Request& req, const std::string& body, nlohmann::json* json) {
  const std::string type = req.Header("Content-Type");
  std::string media = type.substr(0, type.find(';'));
  media.erase(0, media.find_first_not_of(" \t"));
  media.erase(media.find_last_not_of(" \t") + 1);
  std::transform(media.begin(), media.end(), media.begin(), [](unsigned char c) { return std::tolower(c); });
  if (media != "application/json") {
    return {415, "the body must be JSON, sent with Content-Type: application/json (got '" + type + "')", ""};
  }
  if (NestedDeeperThan(body, kMaxJsonDepth)) {
    return {400, "the JSON nests arrays and objects deeper than " + std::to_string(kMaxJsonDepth) + " levels", ""};
  }
  // Parsed once; nlohmann reports a malformed body and a number beyond a double's range (1e400, an
  // integer of 400 digits) by exception, each a refusal here.
  try {
    *json = nlohmann::json::parse(body);
  } catch (const nlohmann::json::parse_error& e) {
    return {400, std::string("malformed JSON: ") + e.what(), ""};
  } catch (const nlohmann::json::out_of_range& e) {
    return {400, std::string("a number is out of range: ") + e.what(), ""};
  } catch (const nlohmann::json::exception& e) {
    return {400, std::string("malformed JSON: ") + e.what(), ""};
  }
  return {};
}

}  // namespace mosaic::jobs::http
