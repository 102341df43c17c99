// `mosaic serve` over HTTP, against the contract in docs/serving.md. The server runs as a child
// process (`--port 0 --json`, its port read from its first stdout line) on a copy of a small
// synthetic store with a model (imported with --no-text, rebuilt with a few epochs).
//
// The bad-input suite sends every kind of refused request (malformed JSON, bodies over --max-body,
// unknown users and items, bad k, text that is not UTF-8 in bodies and query strings, wrong
// Content-Type, wrong method, unknown path, arrays for objects, missing and mistyped fields): each
// must be a 4xx with a JSON body holding "error"; the server must still answer /health, stop cleanly
// on SIGTERM, and leave the store exactly as it was (compared as full dumps) and consistent.
// The positive tests: a posted item is in new_only recommendations at once; a posted interaction is
// excluded by exclude_seen; /metrics in Prometheus text format; a rebuild in another process while
// a client queries (no failed request, the version goes from 1 to 2); an import by another process
// is picked up.
#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "store/store.h"
#include "tests/serve_util.h"

namespace mosaic {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::ClosedByServer;
using testing::CommandResult;
using testing::Connect;
using testing::Describe;
using testing::DumpStore;
using testing::Escape;
using testing::Quote;
using testing::RawHttp;
using testing::RawResponse;
using testing::RunJson;
using testing::RunMosaic;
using testing::SecondsSince;
using testing::ServerProcess;
using testing::SynthArtist;
using testing::SynthGenre;
using testing::SynthSong;
using testing::TempDir;
using testing::WriteFile;

// One HTTP exchange, whatever the transport did.
struct Reply {
  int status = 0;  ///< 0: no response (error says why)
  std::string body;
  std::string content_type;
  std::string csp;  ///< Content-Security-Policy
  std::string error;
  json Json() const { return json::parse(body, nullptr, false); }
};

std::string Show(const Reply& r) {
  if (r.status == 0) return "no response: " + r.error;
  return std::to_string(r.status) + " (" + r.content_type + ") " + Escape(r.body.substr(0, 400));
}

Reply Send(int port, const std::string& method, const std::string& path, const std::string& body = "",
           const std::string& content_type = "application/json") {
  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(5, 0);
  client.set_read_timeout(60, 0);
  client.set_write_timeout(60, 0);
  httplib::Request req;
  req.method = method;
  req.path = path;
  if (!body.empty() || method == "POST" || method == "PUT") {
    req.body = body;
    if (!content_type.empty()) req.headers.emplace("Content-Type", content_type);
  }
  Reply r;
  httplib::Result res = client.send(req);
  if (!res) {
    r.error = httplib::to_string(res.error());
    return r;
  }
  r.status = res->status;
  r.body = res->body;
  r.content_type = res->get_header_value("Content-Type");
  r.csp = res->get_header_value("Content-Security-Policy");
  return r;
}
Reply Get(int port, const std::string& path) { return Send(port, "GET", path); }
Reply Post(int port, const std::string& path, const std::string& body, const std::string& content_type = "application/json") {
  return Send(port, "POST", path, body, content_type);
}

// A refused request: a 4xx (exactly `want` when not 0) whose body is a JSON object with a non-empty
// string "error" (and "field" == `field` when `field` is given).
::testing::AssertionResult IsJsonError(int status, const std::string& body, const std::string& content_type, int want,
                                       const std::string& field = "") {
  if (status < 400 || status > 499) return ::testing::AssertionFailure() << "status " << status << " is not a 4xx";
  if (want != 0 && status != want) return ::testing::AssertionFailure() << "status " << status << ", expected " << want;
  const json j = json::parse(body, nullptr, false);
  if (!j.is_object()) return ::testing::AssertionFailure() << "the body is not a JSON object: " << Escape(body.substr(0, 300));
  if (!j.contains("error") || !j["error"].is_string() || j["error"].get<std::string>().empty()) {
    return ::testing::AssertionFailure() << "the body has no \"error\" string: " << j.dump();
  }
  if (content_type.rfind("application/json", 0) != 0) {
    return ::testing::AssertionFailure() << "Content-Type is '" << content_type << "', not application/json";
  }
  // The field may be named by its path in the body ("[1].weight" in an array of interactions).
  const std::string got_field = j.contains("field") && j["field"].is_string() ? j["field"].get<std::string>() : "";
  const bool field_ok = got_field == field || (got_field.size() > field.size() &&
                                               got_field.compare(got_field.size() - field.size(), field.size(), field) == 0 &&
                                               got_field[got_field.size() - field.size() - 1] == '.');
  if (!field.empty() && !field_ok) {
    return ::testing::AssertionFailure() << "\"field\" is " << (j.contains("field") ? j["field"].dump() : "absent")
                                         << ", expected \"" << field << "\": " << j.dump();
  }
  return ::testing::AssertionSuccess();
}
::testing::AssertionResult IsJsonError(const Reply& r, int want, const std::string& field = "") {
  if (r.status == 0) return ::testing::AssertionFailure() << "no response: " << r.error;
  return IsJsonError(r.status, r.body, r.content_type, want, field);
}
::testing::AssertionResult IsJsonError(const RawResponse& r, int want, const std::string& field = "") {
  if (r.status == 0) return ::testing::AssertionFailure() << "no response: " << r.error;
  std::string content_type;
  std::string lower = r.headers;
  for (auto& c : lower) c = char(std::tolower(static_cast<unsigned char>(c)));
  const size_t at = lower.find("\r\ncontent-type:");
  if (at != std::string::npos) {
    size_t start = at + 15;
    while (start < lower.size() && lower[start] == ' ') ++start;
    content_type = lower.substr(start, lower.find("\r\n", start) - start);
  }
  return IsJsonError(r.status, r.body, content_type, want, field);
}

// The keys of a query result's "results".
std::vector<std::string> Keys(const json& j) {
  std::vector<std::string> keys;
  if (!j.is_object() || !j.contains("results")) return keys;
  for (const auto& r : j["results"]) keys.push_back(r.value("key", std::string()));
  return keys;
}
bool Contains(const std::vector<std::string>& v, const std::string& s) { return std::find(v.begin(), v.end(), s) != v.end(); }

class ServeTest : public ::testing::Test {
 protected:
  // One store with a model for the whole suite; each test serves a copy of it.
  static void SetUpTestSuite() {
    base_ = new TempDir;
    const auto made = testing::MakeSyntheticStore(*base_ / "model", base_->path().string(), 5);
    base_ok_ = bool(made);
    if (!made) base_error_ = made.message();
  }
  static void TearDownTestSuite() {
    delete base_;
    base_ = nullptr;
  }
  void SetUp() override { ASSERT_TRUE(base_ok_) << "could not make the synthetic store:\n" << base_error_; }

  // A copy of the suite's store (with model version 1), or, when !with_model, a fresh one without.
  std::string Store(const std::string& name, bool with_model = true) {
    const std::string dir = tmp_ / name;
    if (with_model) {
      fs::copy(*base_ / "model", dir, fs::copy_options::recursive);
    } else {
      EXPECT_TRUE(testing::MakeSyntheticStore(dir, tmp_.path().string(), 0));
    }
    return dir;
  }

  void ExpectCheckPasses(const std::string& store) {
    CommandResult r = RunMosaic("--store " + Quote(store) + " check");
    EXPECT_EQ(r.exit_code, 0) << "mosaic check after serving:\n" << Describe(r);
  }

  // Polls /health until `pred` holds (up to timeout_s); returns the seconds it took, or -1.
  double WaitForHealth(int port, const std::function<bool(const json&)>& pred, double timeout_s) {
    const auto start = std::chrono::steady_clock::now();
    while (SecondsSince(start) < timeout_s) {
      const Reply r = Get(port, "/health");
      if (r.status == 200 && pred(r.Json())) return SecondsSince(start);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return -1;
  }

  static TempDir* base_;
  static bool base_ok_;
  static std::string base_error_;
  TempDir tmp_;
};
TempDir* ServeTest::base_ = nullptr;
bool ServeTest::base_ok_ = false;
std::string ServeTest::base_error_;

// ---------------------------------------------------------------------------------------------
// Startup, /health, SIGTERM

TEST_F(ServeTest, ListensPrintsItsPortAndStopsCleanly) {
  const std::string store = Store("s");
  ServerProcess server;
  ASSERT_TRUE(server.Start(store));
  const json& hello = server.hello();
  EXPECT_EQ(hello.value("model_version", -1), 1) << hello.dump();
  EXPECT_EQ(hello.value("listening", std::string()), "http://127.0.0.1:" + std::to_string(server.port())) << hello.dump();
  const Reply health = Get(server.port(), "/health");
  ASSERT_EQ(health.status, 200) << Show(health);
  EXPECT_EQ(health.content_type.rfind("application/json", 0), 0u) << health.content_type;
  const json h = health.Json();
  EXPECT_EQ(h.value("status", std::string()), "ok") << h.dump();
  EXPECT_EQ(h.value("model_version", -1), 1) << h.dump();
  EXPECT_EQ(h.value("items", -1), testing::kServeGenres * testing::kServeArtists * testing::kServeSongs) << h.dump();
  EXPECT_EQ(h.value("users", -1), testing::kServeUsers) << h.dump();
  EXPECT_TRUE(h.contains("placed")) << h.dump();
  std::printf("server ready %.2f s after it was started\n", server.startup_seconds());
  EXPECT_TRUE(server.Stop());
  ExpectCheckPasses(store);
}

TEST_F(ServeTest, WithoutAModelQueriesAre503AndHealthSaysVersion0) {
  const std::string store = Store("bare", /*with_model=*/false);
  ServerProcess server;
  ASSERT_TRUE(server.Start(store));
  EXPECT_EQ(server.hello().value("model_version", -1), 0) << server.hello().dump();
  const Reply health = Get(server.port(), "/health");
  ASSERT_EQ(health.status, 200) << Show(health);
  EXPECT_EQ(health.Json().value("model_version", -1), 0) << Show(health);
  for (const std::string& path : std::vector<std::string>{"/recommend?user=u0", "/audience?item=" + SynthSong(0, 0, 0),
                                                          "/similar?item=" + SynthSong(0, 0, 0)}) {
    const Reply r = Get(server.port(), path);
    EXPECT_EQ(r.status, 503) << path << ": " << Show(r);
    const json j = r.Json();
    EXPECT_TRUE(j.is_object() && j.contains("error")) << path << ": " << Show(r);
  }
  EXPECT_TRUE(server.Stop());
  ExpectCheckPasses(store);
}

// ---------------------------------------------------------------------------------------------
// Bad input

struct BadRequest {
  std::string what;
  std::string method, path, body, content_type;
  int want;           ///< expected status (0: any 4xx)
  std::string field;  ///< expected "field" ("" = not checked)
};

std::vector<BadRequest> BadRequests() {
  const std::string song = SynthSong(0, 0, 0);
  const std::string J = "application/json";
  std::string big_description(2 * 1024 * 1024, 'a');
  std::vector<BadRequest> cases = {
      // Malformed JSON and bodies that are not what the endpoint takes.
      {"truncated JSON", "POST", "/items", R"({"id": "x", "title": )", J, 400, ""},
      {"JSON with trailing garbage", "POST", "/items", R"({"id": "x"} {"id": "y"})", J, 400, ""},
      {"not JSON at all", "POST", "/items", "id=x&title=y", J, 400, ""},
      {"empty body", "POST", "/items", "", J, 400, ""},
      {"single quotes", "POST", "/items", "{'id': 'x'}", J, 400, ""},
      {"an array for an item", "POST", "/items", R"([{"id": "x", "title": "X"}])", J, 400, ""},
      {"an empty array for an item", "POST", "/items", "[]", J, 400, ""},
      {"a string for an item", "POST", "/items", R"("x")", J, 400, ""},
      {"a number for an item", "POST", "/items", "42", J, 400, ""},
      {"null for an item", "POST", "/items", "null", J, 400, ""},
      {"malformed interactions", "POST", "/interactions", R"([{"user": "u0", "item": )", J, 400, ""},
      {"a string for interactions", "POST", "/interactions", R"("u0 played it")", J, 400, ""},
      {"an array of numbers for interactions", "POST", "/interactions", "[1, 2]", J, 400, ""},
      {"an array of arrays for interactions", "POST", "/interactions", R"([["u0", ")" + song + R"("]])", J, 400, ""},
      // Missing and mistyped fields.
      {"item without id", "POST", "/items", R"({"title": "No Id", "kind": "music"})", J, 400, "id"},
      {"empty object", "POST", "/items", "{}", J, 400, "id"},
      {"id true", "POST", "/items", R"({"id": true, "title": "T"})", J, 400, "id"},
      {"id 1.5", "POST", "/items", R"({"id": 1.5, "title": "T"})", J, 400, "id"},
      {"id an array", "POST", "/items", R"({"id": ["a"], "title": "T"})", J, 400, "id"},
      {"id an object", "POST", "/items", R"({"id": {"a": 1}, "title": "T"})", J, 400, "id"},
      {"empty id", "POST", "/items", R"({"id": "", "title": "T"})", J, 400, "id"},
      {"title a number", "POST", "/items", R"({"id": "bad-title", "title": 5})", J, 400, "title"},
      {"empty title", "POST", "/items", R"({"id": "bad-title", "title": "  "})", J, 400, "title"},
      {"kind podcast", "POST", "/items", R"({"id": "bad-kind", "title": "T", "kind": "podcast"})", J, 400, "kind"},
      {"tags with a number", "POST", "/items", R"({"id": "bad-tags", "title": "T", "tags": ["ok", 1]})", J, 400, "tags"},
      {"a field holding an object", "POST", "/items", R"({"id": "bad-obj", "title": "T", "artist": {"name": "A"}})", J, 400, "artist"},
      {"year 1.5", "POST", "/items", R"({"id": "bad-year", "title": "T", "year": 1.5})", J, 400, "year"},
      {"reserved relation", "POST", "/items", R"({"id": "bad-rel", "title": "T", "interacted": "u0"})", J, 400, "interacted"},
      {"interaction without item", "POST", "/interactions", R"({"user": "u0"})", J, 400, "item"},
      {"interaction without user", "POST", "/interactions", R"({"item": ")" + song + R"("})", J, 400, "user"},
      {"weight a string", "POST", "/interactions", R"({"user": "u0", "item": ")" + song + R"(", "weight": "heavy"})", J, 400, "weight"},
      {"timestamp a string", "POST", "/interactions", R"({"user": "u0", "item": ")" + song + R"(", "timestamp": "yesterday"})", J, 400, "timestamp"},
      {"user an object", "POST", "/interactions", R"({"user": {"id": "u0"}, "item": ")" + song + R"("})", J, 400, "user"},
      {"one bad interaction among good ones", "POST", "/interactions",
       R"([{"user": "u0", "item": ")" + SynthSong(0, 0, 1) + R"(", "weight": 2}, {"user": "u0", "item": ")" + SynthSong(0, 0, 2) +
           R"(", "weight": "x"}])",
       J, 400, "weight"},
      {"interaction with an unknown item", "POST", "/interactions", R"({"user": "u0", "item": "no-such-song", "weight": 1})", J, 404, ""},
      // Text that is not UTF-8.
      {"id with bytes FF FE", "POST", "/items", "{\"id\": \"bad-\xff\xfe\", \"title\": \"T\"}", J, 400, ""},
      {"title with an overlong encoding", "POST", "/items", "{\"id\": \"bad-utf8\", \"title\": \"\xc0\xaf\"}", J, 400, ""},
      {"tag with a truncated sequence", "POST", "/items", "{\"id\": \"bad-utf8\", \"title\": \"T\", \"tags\": [\"\xe2\x82\"]}", J, 400, ""},
      {"lone surrogate escape", "POST", "/items", R"({"id": "bad-surrogate", "title": "\ud800"})", J, 400, ""},
      {"user with byte FF", "POST", "/interactions", "{\"user\": \"u\xff\", \"item\": \"" + song + "\"}", J, 400, ""},
      {"user %FF in the query", "GET", "/recommend?user=%FF%FE", "", "", 400, "user"},
      {"item %C3%28 in the query", "GET", "/similar?item=%C3%28", "", "", 400, "item"},
      {"item %ED%A0%80 (a surrogate) in the query", "GET", "/audience?item=%ED%A0%80", "", "", 400, "item"},
      // Unknown users and items.
      {"unknown user", "GET", "/recommend?user=nobody", "", "", 404, ""},
      {"unknown item (similar)", "GET", "/similar?item=no-such-song", "", "", 404, ""},
      {"unknown item (audience)", "GET", "/audience?item=no-such-song", "", "", 404, ""},
      {"missing user", "GET", "/recommend", "", "", 400, "user"},
      {"empty user", "GET", "/recommend?user=", "", "", 400, "user"},
      {"missing item", "GET", "/similar?k=5", "", "", 400, "item"},
      {"missing item (audience)", "GET", "/audience", "", "", 400, "item"},
      // k.
      {"k=0", "GET", "/recommend?user=u0&k=0", "", "", 400, "k"},
      {"k=-1", "GET", "/recommend?user=u0&k=-1", "", "", 400, "k"},
      {"k=1001", "GET", "/recommend?user=u0&k=1001", "", "", 400, "k"},
      {"k huge", "GET", "/recommend?user=u0&k=99999999999999999999999999", "", "", 400, "k"},
      {"k=2^64+5", "GET", "/recommend?user=u0&k=18446744073709551621", "", "", 400, "k"},
      {"k=abc", "GET", "/recommend?user=u0&k=abc", "", "", 400, "k"},
      {"k=10abc", "GET", "/recommend?user=u0&k=10abc", "", "", 400, "k"},
      {"k=1.5", "GET", "/recommend?user=u0&k=1.5", "", "", 400, "k"},
      {"k=1e2", "GET", "/recommend?user=u0&k=1e2", "", "", 400, "k"},
      {"k empty", "GET", "/recommend?user=u0&k=", "", "", 400, "k"},
      {"k=0x10", "GET", "/recommend?user=u0&k=0x10", "", "", 400, "k"},
      {"k=-0", "GET", "/similar?item=" + song + "&k=-0", "", "", 400, "k"},
      {"k=0 (similar)", "GET", "/similar?item=" + song + "&k=0", "", "", 400, "k"},
      {"k=-5 (audience)", "GET", "/audience?item=" + song + "&k=-5", "", "", 400, "k"},
      {"k=abc (audience)", "GET", "/audience?item=" + song + "&k=abc", "", "", 400, "k"},
      {"new_only=maybe", "GET", "/recommend?user=u0&new_only=maybe", "", "", 400, "new_only"},
      {"exclude_seen=2", "GET", "/recommend?user=u0&exclude_seen=2", "", "", 400, "exclude_seen"},
      {"explain=yes", "GET", "/recommend?user=u0&explain=yes", "", "", 400, "explain"},
      // Content-Type.
      {"item as text/plain", "POST", "/items", R"({"id": "plain", "title": "Plain"})", "text/plain", 415, ""},
      {"item as a form", "POST", "/items", R"({"id": "form", "title": "Form"})", "application/x-www-form-urlencoded", 415, ""},
      {"interaction as text/plain", "POST", "/interactions", R"({"user": "u0", "item": ")" + song + R"("})", "text/plain", 415, ""},
      {"item as application/jsonx", "POST", "/items", R"({"id": "jsonx", "title": "X"})", "application/jsonx", 415, ""},
      // Methods and paths.
      {"GET /items", "GET", "/items", "", "", 405, ""},
      {"DELETE /items", "DELETE", "/items", "", "", 405, ""},
      {"PUT /items", "PUT", "/items", R"({"id": "put", "title": "Put"})", J, 405, ""},
      {"GET /interactions", "GET", "/interactions", "", "", 405, ""},
      {"POST /recommend", "POST", "/recommend?user=u0", R"({"user": "u0"})", J, 405, ""},
      {"POST /health", "POST", "/health", "{}", J, 405, ""},
      {"DELETE /similar", "DELETE", "/similar?item=" + song, "", "", 405, ""},
      {"PATCH /audience", "PATCH", "/audience?item=" + song, "{}", J, 405, ""},
      {"POST /metrics", "POST", "/metrics", "{}", J, 405, ""},
      {"POST / (the dashboard)", "POST", "/", "{}", J, 405, ""},
      {"GET /dashboard.js/x", "GET", "/dashboard.js/x", "", "", 404, ""},
      {"GET /nope", "GET", "/nope", "", "", 404, ""},
      {"GET /recommend/u0", "GET", "/recommend/u0", "", "", 404, ""},
      {"POST /item (not /items)", "POST", "/item", R"({"id": "x", "title": "X"})", J, 405, ""},
      {"GET /item without an item", "GET", "/item", "", "", 400, "item"},
      {"GET /catalogue?kind=podcast", "GET", "/catalogue?kind=podcast", "", "", 400, "kind"},
      {"GET /graph?node=abc", "GET", "/graph?node=abc", "", "", 400, "node"},
      {"GET /user?limit=0", "GET", "/user?user=u0&limit=0", "", "", 400, "limit"},
      {"GET /health/", "GET", "/health/extra", "", "", 404, ""},
      // Hostile input (issue 13): numbers beyond range, weights above the ceiling, control characters.
      {"year 1e400", "POST", "/items", R"({"id": "big-year", "title": "T", "year": 1e400})", J, 400, ""},
      {"year beyond 9999", "POST", "/items", R"({"id": "big-year", "title": "T", "year": 123456789})", J, 400, "year"},
      {"a 5000-digit id", "POST", "/items", R"({"id": )" + std::string(5000, '9') + R"(, "title": "T"})", J, 400, ""},
      {"a 5000-digit user", "POST", "/interactions", R"({"user": )" + std::string(5000, '9') + R"(, "item": ")" + song + R"("})", J, 400, ""},
      {"weight 1e400", "POST", "/interactions", R"({"user": "u0", "item": ")" + song + R"(", "weight": 1e400})", J, 400, ""},
      {"weight 1e308", "POST", "/interactions", R"({"user": "u0", "item": ")" + song + R"(", "weight": 1e308})", J, 400, "weight"},
      {"weight just above 1e9", "POST", "/interactions", R"({"user": "u0", "item": ")" + song + R"(", "weight": 1000000001})", J, 400, "weight"},
      {"timestamp above 2^63-1", "POST", "/interactions", R"({"user": "u0", "item": ")" + song + R"(", "timestamp": 18446744073709551615})", J, 400, "timestamp"},
      {"user 2^64 (a double)", "POST", "/interactions", R"({"user": 18446744073709551616, "item": ")" + song + R"("})", J, 400, "user"},
      // (JSON escapes: a raw control character is malformed JSON already.)
      {"ESC in an item id", "POST", "/items", "{\"id\": \"evil\\u001b[31m\", \"title\": \"T\"}", J, 400, "id"},
      {"NUL in a title", "POST", "/items", "{\"id\": \"nul-title\", \"title\": \"Before\\u0000After\"}", J, 400, "title"},
      {"C1 CSI in a title", "POST", "/items", "{\"id\": \"csi-title\", \"title\": \"A\\u009b31mB\"}", J, 400, "title"},
      {"ESC in a tag", "POST", "/items", "{\"id\": \"esc-tag\", \"title\": \"T\", \"tags\": [\"x\\u001b]0;pwned\\u0007\"]}", J, 400, "tags"},
      {"ESC in a user", "POST", "/interactions", "{\"user\": \"u\\u001b[2J\", \"item\": \"" + song + "\"}", J, 400, "user"},
      {"NUL in an item", "POST", "/interactions", "[{\"user\": \"u0\", \"item\": \"a\\u0000b\"}]", J, 400, "item"},
      {"OPTIONS /recommend", "OPTIONS", "/recommend?user=u0", "", "", 405, ""},
      {"OPTIONS /items", "OPTIONS", "/items", "", "", 405, ""},
      // Size.
      {"a 2 MiB body", "POST", "/items", R"({"id": "big", "title": "Big", "description": ")" + big_description + R"("})", J, 413, ""},
  };
  return cases;
}

TEST_F(ServeTest, BadInputIsRefusedWithJsonAndChangesNothing) {
  const std::string store = Store("s");
  const std::string before = DumpStore(store);
  ASSERT_FALSE(before.empty());
  ServerProcess server;
  ASSERT_TRUE(server.Start(store));
  const int port = server.port();

  int refused = 0;
  for (const BadRequest& c : BadRequests()) {
    const Reply r = Send(port, c.method, c.path, c.body, c.content_type);
    EXPECT_TRUE(IsJsonError(r, c.want, c.field)) << c.what << ": " << c.method << " " << Escape(c.path) << " "
                                                 << Escape(c.body.substr(0, 120)) << "\n  got " << Show(r);
    ++refused;
  }

  // What httplib::Client will not send: a lying Content-Length, a chunked body over the limit, no
  // Content-Type, raw bytes that are not UTF-8 in the request line.
  const std::string host = "Host: 127.0.0.1:" + std::to_string(port) + "\r\n";
  {
    SCOPED_TRACE("a body declared as 100 MiB, 64 KiB of it sent, then the client's half of the connection closed");
    const RawResponse r = RawHttp(port,
                                  "POST /items HTTP/1.1\r\n" + host +
                                      "Content-Type: application/json\r\nContent-Length: 104857600\r\n\r\n",
                                  64 * 1024, /*half_close=*/true);
    // The body can never be complete: a 413, or the connection closed with no answer.
    if (r.status != 0) {
      EXPECT_TRUE(IsJsonError(r, 413)) << r.headers << "\n" << Escape(r.body.substr(0, 300));
    } else {
      std::printf("a body declared as 100 MiB and cut short: no answer (%s)\n", r.error.c_str());
    }
    ++refused;
  }
  {
    SCOPED_TRACE("a body declared as 100 MiB, 2 MiB of it sent");
    const RawResponse r = RawHttp(port,
                                  "POST /items HTTP/1.1\r\n" + host +
                                      "Content-Type: application/json\r\nContent-Length: 104857600\r\n\r\n",
                                  2 * 1024 * 1024, /*half_close=*/false, /*timeout_s=*/20);
    EXPECT_TRUE(IsJsonError(r, 413)) << r.headers << "\n" << Escape(r.body.substr(0, 300));
    ++refused;
  }
  {
    SCOPED_TRACE("a body declared as 100 MiB, the connection left open");
    const RawResponse r = RawHttp(port,
                                  "POST /interactions HTTP/1.1\r\n" + host +
                                      "Content-Type: application/json\r\nContent-Length: 104857600\r\n\r\n[",
                                  0, /*half_close=*/false, /*timeout_s=*/20);
    EXPECT_TRUE(IsJsonError(r, 413)) << r.headers << "\n" << Escape(r.body.substr(0, 300));
    ++refused;
  }
  {
    SCOPED_TRACE("a chunked body of 2 MiB");
    std::string request = "POST /items HTTP/1.1\r\n" + host + "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
    const std::string chunk(64 * 1024, 'x');
    char size[32];
    const std::string head = "{\"id\": \"chunked\", \"title\": \"Chunked\", \"description\": \"";
    std::snprintf(size, sizeof size, "%zx\r\n", head.size());
    request += size + head + "\r\n";
    for (int i = 0; i < 32; ++i) {
      std::snprintf(size, sizeof size, "%zx\r\n", chunk.size());
      request += size + chunk + "\r\n";
    }
    request += "2\r\n\"}\r\n0\r\n\r\n";
    const RawResponse r = RawHttp(port, request);
    EXPECT_TRUE(IsJsonError(r, 413)) << r.headers << "\n" << Escape(r.body.substr(0, 300));
    ++refused;
  }
  {
    SCOPED_TRACE("a POST without Content-Type");
    const std::string body = R"({"id": "untyped", "title": "Untyped"})";
    const RawResponse r = RawHttp(port, "POST /items HTTP/1.1\r\n" + host + "Content-Length: " + std::to_string(body.size()) +
                                            "\r\nConnection: close\r\n\r\n" + body);
    EXPECT_TRUE(IsJsonError(r, 415)) << r.headers << "\n" << Escape(r.body.substr(0, 300));
    ++refused;
  }
  {
    SCOPED_TRACE("raw bytes FF FE in the query string");
    const RawResponse r = RawHttp(port, "GET /recommend?user=\xff\xfe HTTP/1.1\r\n" + host + "Connection: close\r\n\r\n");
    EXPECT_TRUE(IsJsonError(r, 400)) << r.headers << "\n" << Escape(r.body.substr(0, 300));
    ++refused;
  }
  {
    SCOPED_TRACE("a request line that is not HTTP");
    const RawResponse r = RawHttp(port, "HELLO THERE\r\n\r\n", 0, /*half_close=*/true, 10);
    // The server may answer 400 or just close; either way it must live on (checked below).
    if (r.status != 0) {
      EXPECT_GE(r.status, 400) << r.headers;
    }
  }

  // Still serving, nothing written.
  const Reply health = Get(port, "/health");
  EXPECT_EQ(health.status, 200) << Show(health);
  const Reply rec = Get(port, "/recommend?user=u0&k=3");
  EXPECT_EQ(rec.status, 200) << Show(rec);
  std::printf("%d refused requests sent\n", refused);
  EXPECT_TRUE(server.Stop());
  ExpectCheckPasses(store);
  const std::string after = DumpStore(store);
  EXPECT_TRUE(after == before) << "refused requests changed the store:\n" << testing::DiffLines(before, after);
}

// Issue 13, 1: a body nested 200,000 levels deep crashed the server (a recursive copy of the parsed
// body overflowed the stack). Bodies are refused beyond 64 levels, before they are parsed.
TEST_F(ServeTest, DeeplyNestedJsonIsRefusedAndTheServerLivesOn) {
  const std::string store = Store("s");
  ServerProcess server;
  ASSERT_TRUE(server.Start(store));
  const int port = server.port();
  const std::string arrays = std::string(200000, '[') + std::string(200000, ']');
  std::string objects;
  for (int i = 0; i < 100000; ++i) objects += "{\"a\":";
  objects += "1" + std::string(100000, '}');
  for (const char* path : {"/interactions", "/items"}) {
    for (const std::string* body : std::vector<const std::string*>{&arrays, &objects}) {
      const Reply r = Post(port, path, *body);
      EXPECT_TRUE(IsJsonError(r, 400)) << path << ": " << Show(r);
      EXPECT_NE(r.body.find("deeper than 64"), std::string::npos) << Show(r);
    }
  }
  // 64 levels are parsed (and refused for what they are); 65 are not. Brackets in strings do not count.
  const std::string at_limit = std::string(64, '[') + std::string(64, ']');
  const Reply r64 = Post(port, "/interactions", at_limit);
  EXPECT_TRUE(IsJsonError(r64, 400)) << Show(r64);
  EXPECT_EQ(r64.body.find("deeper than"), std::string::npos) << Show(r64);
  const Reply r65 = Post(port, "/interactions", "[" + at_limit + "]");
  EXPECT_NE(r65.body.find("deeper than 64"), std::string::npos) << Show(r65);
  const Reply in_string = Post(port, "/items", R"({"id": "brackets", "title": ")" + std::string(1000, '[') + R"("})");
  EXPECT_EQ(in_string.status, 201) << Show(in_string);
  const Reply health = Get(port, "/health");
  EXPECT_EQ(health.status, 200) << Show(health);
  EXPECT_TRUE(server.Stop());
}

// Issue 13, 2: 2,600 ranges in a Range header made httplib answer a multipart response 2,600 times
// the size of the reply. API responses ignore Range.
TEST_F(ServeTest, RangeHeadersAreIgnored) {
  const std::string store = Store("s");
  ServerProcess server;
  ASSERT_TRUE(server.Start(store));
  const std::string path = "/recommend?user=u0&k=1000&explain=1";
  const Reply plain = Get(server.port(), path);
  ASSERT_EQ(plain.status, 200) << Show(plain);
  std::string ranges = "bytes=0-";
  for (int i = 1; i < 2600; ++i) ranges += ",0-";
  for (const std::string& range : {ranges, std::string("bytes=0-10"), std::string("bytes=5-")}) {
    httplib::Client client("127.0.0.1", server.port());
    client.set_read_timeout(60, 0);
    httplib::Result res = client.Get(path.c_str(), httplib::Headers{{"Range", range}});
    ASSERT_TRUE(res) << httplib::to_string(res.error());
    EXPECT_EQ(res->status, 200) << range.substr(0, 40);
    EXPECT_EQ(res->body.size(), plain.body.size()) << range.substr(0, 40);
    EXPECT_EQ(res->get_header_value("Content-Type").rfind("application/json", 0), 0u) << res->get_header_value("Content-Type");
    EXPECT_FALSE(res->has_header("Content-Range"));
  }
  EXPECT_TRUE(server.Stop());
}

// Issue 13, 8: integer ids above 2^63-1 wrapped to -1 in /interactions.
TEST_F(ServeTest, IntegerIdsAbove2To63AreKeptExactly) {
  const std::string store = Store("s");
  ServerProcess server;
  ASSERT_TRUE(server.Start(store));
  const int port = server.port();
  const Reply item = Post(port, "/items", R"({"id": 18446744073709551614, "kind": "music", "title": "Big Id"})");
  ASSERT_EQ(item.status, 201) << Show(item);
  EXPECT_EQ(item.Json()["item"].value("key", std::string()), "18446744073709551614") << Show(item);
  const Reply posted = Post(port, "/interactions",
                            R"([{"user": 18446744073709551615, "item": 18446744073709551614},
                                {"user": 9223372036854775808, "item": ")" + SynthSong(0, 0, 0) + R"("}])");
  ASSERT_EQ(posted.status, 200) << Show(posted);
  EXPECT_EQ(posted.Json().value("stored", 0), 2) << Show(posted);
  EXPECT_TRUE(server.Stop());
  ExpectCheckPasses(store);
  // The users are stored under their exact decimal ids, not wrapped ones.
  std::unique_ptr<store::Store> opened;
  store::OpenOptions read_only;
  read_only.read_only = true;
  ASSERT_TRUE(store::Store::Open(store, read_only, &opened).ok());
  auto view = opened->NewReadView();
  store::NodeId id = 0;
  EXPECT_TRUE(view->FindNode(store::NodeKind::kUser, "18446744073709551615", &id).ok());
  EXPECT_TRUE(view->FindNode(store::NodeKind::kUser, "9223372036854775808", &id).ok());
  EXPECT_TRUE(view->FindNode(store::NodeKind::kUser, "-1", &id).IsNotFound());
  EXPECT_TRUE(view->FindNode(store::NodeKind::kUser, "-9223372036854775808", &id).IsNotFound());
}

// Issue 13, 11: writes from the network need a bearer token; Host can be checked.
TEST_F(ServeTest, WritesFromTheNetworkNeedTheToken) {
  const std::string store = Store("s");
  // A non-loopback host without a token: refused at start, saying what to do.
  const CommandResult refused = RunMosaic("--store " + Quote(store) + " --no-text serve --host 0.0.0.0 --port 0 --json");
  EXPECT_EQ(refused.exit_code, 1) << Describe(refused);
  EXPECT_NE(refused.err.find("--token-file"), std::string::npos) << Describe(refused);
  EXPECT_NE(refused.err.find("--insecure-writes"), std::string::npos) << Describe(refused);
  {
    ServerProcess insecure;
    ASSERT_TRUE(insecure.Start(store, {"--host", "0.0.0.0", "--insecure-writes"}));
    EXPECT_NE(insecure.Stderr().find("WARNING"), std::string::npos) << insecure.Stderr();
    EXPECT_EQ(Post(insecure.port(), "/items", R"({"id": "open-1", "title": "Open"})").status, 201);
    EXPECT_TRUE(insecure.Stop());
  }
  const std::string token_file = tmp_ / "token";
  WriteFile(token_file, "s3cret-Token_42\n");
  ServerProcess server;
  ASSERT_TRUE(server.Start(store, {"--host", "0.0.0.0", "--token-file", token_file}));
  const int port = server.port();
  const int items = Get(port, "/health").Json().value("items", -1);
  auto post = [&](const std::string& authorization) {
    httplib::Client client("127.0.0.1", port);
    httplib::Headers headers;
    if (!authorization.empty()) headers.emplace("Authorization", authorization);
    return client.Post("/items", headers, R"({"id": "guarded", "title": "Guarded"})", "application/json");
  };
  for (const std::string& wrong : {std::string(), std::string("Bearer"), std::string("Bearer s3cret-Token_41"),
                                   std::string("Bearer s3cret-Token_42x"), std::string("Basic czNjcmV0"),
                                   std::string("Bearer s3cret")}) {
    const httplib::Result r = post(wrong);
    ASSERT_TRUE(r) << httplib::to_string(r.error());
    EXPECT_TRUE(IsJsonError(r->status, r->body, r->get_header_value("Content-Type"), 401)) << "'" << wrong << "': " << r->body;
    EXPECT_EQ(r->get_header_value("WWW-Authenticate"), "Bearer");
  }
  EXPECT_EQ(Get(port, "/health").Json().value("items", -1), items);  // refused: nothing written
  const httplib::Result ok = post("Bearer s3cret-Token_42");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 201) << ok->body;
  EXPECT_EQ(Get(port, "/recommend?user=u0").status, 200);  // reads need no token
  EXPECT_TRUE(server.Stop());

  // --allowed-host: other Host headers get 403 (a DNS-rebinding page sends its own name).
  ServerProcess hosted;
  ASSERT_TRUE(hosted.Start(store, {"--allowed-host", "mosaic.example", "--allowed-host", "127.0.0.1"}));
  const RawResponse evil = RawHttp(hosted.port(), "GET /health HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n");
  EXPECT_TRUE(IsJsonError(evil, 403)) << evil.headers << evil.body;
  const RawResponse named = RawHttp(hosted.port(), "GET /health HTTP/1.1\r\nHost: Mosaic.Example:8080\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(named.status, 200) << named.headers << named.body;
  EXPECT_EQ(Get(hosted.port(), "/health").status, 200);
  EXPECT_TRUE(hosted.Stop());
}

TEST_F(ServeTest, MaxBodyOptionSetsTheLimit) {
  const std::string store = Store("s");
  ServerProcess server;
  ASSERT_TRUE(server.Start(store, {"--max-body", "2000"}));
  const std::string small = json({{"id", "small-one"}, {"kind", "music"}, {"title", "Small One"}}).dump();
  const std::string large = json({{"id", "large-one"}, {"kind", "music"}, {"title", "Large One"},
                                  {"description", std::string(3000, 'd')}}).dump();
  const Reply too_big = Post(server.port(), "/items", large);
  EXPECT_TRUE(IsJsonError(too_big, 413)) << Show(too_big);
  const Reply fine = Post(server.port(), "/items", small);
  EXPECT_EQ(fine.status, 201) << Show(fine);
  EXPECT_TRUE(server.Stop());
  ExpectCheckPasses(store);
}

// Issue 13, 3: with a thread per connection, 40 clients sending a header byte a second left /health
// unanswered for 20 s, and 200 idle keep-alive connections delayed it by 12 s. Connections now wait
// without a thread, and --header-timeout closes those that do not send a whole request head in time.
TEST_F(ServeTest, SlowAndIdleClientsNeitherStarveOthersNorStayOpen) {
  const std::string store = Store("s");
  ServerProcess server;
  ASSERT_TRUE(server.Start(store, {"--header-timeout", "3", "--threads", "4"}));
  const int port = server.port();
  std::vector<int> trickling, idle;
  for (int i = 0; i < 150; ++i) {
    const int fd = Connect(port);
    ASSERT_GE(fd, 0);
    ASSERT_GT(send(fd, "GET /health HTTP/1.1\r\n", 22, MSG_NOSIGNAL), 0);
    trickling.push_back(fd);
  }
  for (int i = 0; i < 150; ++i) {
    const int fd = Connect(port);
    ASSERT_GE(fd, 0);
    idle.push_back(fd);
  }
  // Keep-alive connections that made a request and went quiet.
  for (int i = 0; i < 50; ++i) {
    const int fd = Connect(port);
    ASSERT_GE(fd, 0);
    const std::string request = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    ASSERT_EQ(send(fd, request.data(), request.size(), MSG_NOSIGNAL), ssize_t(request.size()));
    char buf[4096];
    ASSERT_GT(recv(fd, buf, sizeof buf, 0), 0);
    idle.push_back(fd);
  }
  std::atomic<bool> done{false};
  std::thread trickle([&] {
    while (!done) {
      for (int fd : trickling) (void)send(fd, "X", 1, MSG_NOSIGNAL);
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
  });
  // Meanwhile the well-behaved clients are answered, every time.
  for (int i = 0; i < 20; ++i) {
    const Reply health = Get(port, "/health");
    EXPECT_EQ(health.status, 200) << Show(health);
    const Reply rec = Get(port, "/recommend?user=u0&k=3");
    EXPECT_EQ(rec.status, 200) << Show(rec);
  }
  // And the slow ones are closed once their head is overdue (3 s), trickling or not.
  int still_open = 0;
  for (int fd : trickling) still_open += ClosedByServer(fd, 10) ? 0 : 1;
  for (int fd : idle) still_open += ClosedByServer(fd, 10) ? 0 : 1;
  done = true;
  trickle.join();
  EXPECT_EQ(still_open, 0) << "of " << trickling.size() + idle.size() << " slow or idle connections";
  for (int fd : trickling) close(fd);
  for (int fd : idle) close(fd);
  // Each is counted just after the close the client sees: the count may lag by a moment.
  Reply metrics;
  int timed_out = -1;
  for (int attempt = 0; attempt < 50 && timed_out < 350; ++attempt) {
    if (attempt > 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    metrics = Get(port, "/metrics");
    ASSERT_EQ(metrics.status, 200);
    std::smatch m;
    ASSERT_TRUE(std::regex_search(metrics.body, m, std::regex("mosaic_connections_total\\{outcome=\"timed_out\"\\} (\\d+)")))
        << metrics.body;
    timed_out = std::stoi(m[1]);
  }
  EXPECT_GE(timed_out, 350) << metrics.body;
  // SIGTERM with a connection waiting for its next request: it is closed and the server exits 0 at once.
  const int waiting = Connect(port);
  ASSERT_GE(waiting, 0);
  const auto stop_start = std::chrono::steady_clock::now();
  EXPECT_TRUE(server.Stop());
  EXPECT_TRUE(ClosedByServer(waiting, 1));
  std::printf("stopped %.2f s after SIGTERM with an idle connection open\n", SecondsSince(stop_start));
  close(waiting);
}

// --max-connections: one connection more is answered 503 (JSON, Retry-After) and closed; when some
// close, new ones are served again.
TEST_F(ServeTest, ConnectionsBeyondTheLimitGet503) {
  const std::string store = Store("s");
  ServerProcess server;
  ASSERT_TRUE(server.Start(store, {"--max-connections", "20"}));
  const int port = server.port();
  std::vector<int> held;
  for (int i = 0; i < 20; ++i) {
    held.push_back(Connect(port));
    ASSERT_GE(held.back(), 0);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // all 20 accepted
  const RawResponse over = RawHttp(port, "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 0, false, 10);
  EXPECT_EQ(over.status, 503) << over.headers << "\n" << over.body << over.error;
  EXPECT_TRUE(json::parse(over.body, nullptr, false).contains("error")) << over.body;
  EXPECT_NE(over.headers.find("Retry-After: 1"), std::string::npos) << over.headers;
  for (int fd : held) close(fd);
  Reply health;
  for (int attempt = 0; attempt < 50 && health.status != 200; ++attempt) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    health = Get(port, "/health");
  }
  EXPECT_EQ(health.status, 200) << Show(health);
  EXPECT_TRUE(server.Stop());
}

// Heads are bounded in bytes and in fields (431), and HEAD is answered as GET without the body.
TEST_F(ServeTest, HeadersAreBoundedInSizeAndCount) {
  const std::string store = Store("s");
  ServerProcess server;
  ASSERT_TRUE(server.Start(store));
  const int port = server.port();
  const std::string start = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  std::string many = start;
  for (int i = 0; i < 150; ++i) many += "X-Field-" + std::to_string(i) + ": " + std::to_string(i) + "\r\n";
  const RawResponse too_many = RawHttp(port, many + "\r\n");
  EXPECT_TRUE(IsJsonError(too_many, 431)) << too_many.headers << "\n" << too_many.body;
  EXPECT_NE(too_many.body.find("more than 100 header fields"), std::string::npos) << too_many.body;
  const RawResponse too_long = RawHttp(port, start + "X-Long: " + std::string(20000, 'a') + "\r\n\r\n");
  EXPECT_TRUE(IsJsonError(too_long, 431)) << too_long.headers << "\n" << too_long.body;
  std::string fine = start;
  for (int i = 0; i < 90; ++i) fine += "X-Field-" + std::to_string(i) + ": " + std::to_string(i) + "\r\n";
  EXPECT_EQ(RawHttp(port, fine + "Connection: close\r\n\r\n").status, 200);
  const RawResponse head = RawHttp(port, "HEAD /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(head.status, 200) << head.headers;
  EXPECT_TRUE(head.body.empty()) << head.body;
  EXPECT_NE(head.headers.find("Content-Length: "), std::string::npos) << head.headers;
  EXPECT_EQ(Get(port, "/health").status, 200);
  EXPECT_TRUE(server.Stop());
}

// ---------------------------------------------------------------------------------------------
// Writes

TEST_F(ServeTest, PostedItemIsRecommendedAsNewAtOnce) {
  const std::string store = Store("s");
  ServerProcess server;
  ASSERT_TRUE(server.Start(store));
  const int port = server.port();
  const json health_before = Get(port, "/health").Json();

  const json item = {{"id", "fresh-song"}, {"kind", "music"}, {"title", "Fresh Song"}, {"description", "A new song by Artist 01"},
                     {"artist", SynthArtist(0, 1)}, {"genre", SynthGenre(0)}, {"tags", {"bright", "brand new"}}, {"year", 2026}};
  const Reply created = Post(port, "/items", item.dump(), "application/json; charset=utf-8");
  ASSERT_EQ(created.status, 201) << Show(created);
  const json c = created.Json();
  EXPECT_EQ(c.value("created", false), true) << c.dump();
  EXPECT_EQ(c.value("placed", false), true) << c.dump();
  EXPECT_EQ(c.value("model_version", -1), 1) << c.dump();
  ASSERT_TRUE(c.contains("item") && c["item"].is_object()) << c.dump();
  EXPECT_EQ(c["item"].value("key", std::string()), "fresh-song") << c.dump();
  EXPECT_EQ(c["item"].value("label", std::string()), "Fresh Song") << c.dump();
  EXPECT_TRUE(c["item"].contains("id")) << c.dump();

  // In new_only for every user at once (no waiting), for listeners of its genre among the first.
  for (int u = 0; u < testing::kServeUsers; u += 3) {
    const std::string user = "u" + std::to_string(u);
    const Reply r = Get(port, "/recommend?user=" + user + "&new_only=1&k=100");
    ASSERT_EQ(r.status, 200) << user << ": " << Show(r);
    const auto keys = Keys(r.Json());
    EXPECT_TRUE(Contains(keys, "fresh-song")) << user << ": " << r.body;
  }
  const Reply rec = Get(port, "/recommend?user=u0&new_only=true&k=4");
  ASSERT_EQ(rec.status, 200) << Show(rec);
  EXPECT_TRUE(Contains(Keys(rec.Json()), "fresh-song")) << "a genre-0 listener's 4 best new items: " << rec.body;
  // The query endpoints know it too.
  const Reply similar = Get(port, "/similar?item=fresh-song&k=5");
  EXPECT_EQ(similar.status, 200) << Show(similar);
  const Reply by_title = Get(port, "/similar?item=Fresh%20Song&k=5");
  EXPECT_EQ(by_title.status, 200) << Show(by_title);
  const Reply audience = Get(port, "/audience?item=fresh-song&k=5");
  EXPECT_EQ(audience.status, 200) << Show(audience);
  const json h = Get(port, "/health").Json();
  EXPECT_EQ(h.value("items", 0), health_before.value("items", 0) + 1) << h.dump();
  EXPECT_EQ(h.value("placed", 0), health_before.value("placed", 0) + 1) << h.dump();

  // The same id again: 200, created false.
  const Reply again = Post(port, "/items", item.dump());
  EXPECT_EQ(again.status, 200) << Show(again);
  EXPECT_EQ(again.Json().value("created", true), false) << Show(again);
  EXPECT_EQ(Get(port, "/health").Json().value("items", 0), health_before.value("items", 0) + 1);

  // An integer id, as catalogue lines allow.
  const Reply numeric = Post(port, "/items", R"({"id": 777, "kind": "video", "title": "Numbered"})");
  EXPECT_EQ(numeric.status, 201) << Show(numeric);

  ASSERT_TRUE(server.Stop());
  ExpectCheckPasses(store);
  // Stored whole: attributes and KG links, as `mosaic show` reads them.
  const json shown = RunJson("--store " + Quote(store) + " --json show fresh-song");
  EXPECT_EQ(shown["attributes"].value("description", std::string()), "A new song by Artist 01") << shown.dump();
  EXPECT_EQ(shown["attributes"].value("year", 0), 2026) << shown.dump();
  std::set<std::string> links;
  for (const auto& l : shown["links"]) links.insert(l["relation"].get<std::string>() + "=" + l["node"]["key"].get<std::string>());
  EXPECT_EQ(links, (std::set<std::string>{"artist=artist:artist 01", "genre=genre:genre 0", "tag=tag:bright", "tag=tag:brand new"}))
      << shown.dump();
}

TEST_F(ServeTest, PostedInteractionsAreExcludedFromSeen) {
  const std::string store = Store("s");
  ServerProcess server;
  ASSERT_TRUE(server.Start(store));
  const int port = server.port();

  const Reply first = Get(port, "/recommend?user=u0&exclude_seen=1&k=5");
  ASSERT_EQ(first.status, 200) << Show(first);
  const auto top = Keys(first.Json());
  ASSERT_GE(top.size(), 3u) << first.body;
  const std::string x = top[0];

  const Reply stored = Post(port, "/interactions", json({{"user", "u0"}, {"item", x}, {"weight", 3}}).dump());
  ASSERT_EQ(stored.status, 200) << Show(stored);
  EXPECT_EQ(stored.Json().value("stored", -1), 1) << Show(stored);
  const Reply after = Get(port, "/recommend?user=u0&exclude_seen=1&k=100");
  ASSERT_EQ(after.status, 200) << Show(after);
  EXPECT_FALSE(Contains(Keys(after.Json()), x)) << x << " was played by u0 a moment ago: " << after.body;

  // An array: both left out for u1.
  const Reply u1 = Get(port, "/recommend?user=u1&exclude_seen=true&k=5");
  ASSERT_EQ(u1.status, 200) << Show(u1);
  const auto u1_top = Keys(u1.Json());
  ASSERT_GE(u1_top.size(), 2u);
  const json two = json::array({{{"user", "u1"}, {"item", u1_top[0]}},
                                {{"user", "u1"}, {"item", u1_top[1]}, {"weight", 2.5}, {"timestamp", 1700000000}}});
  const Reply both = Post(port, "/interactions", two.dump());
  ASSERT_EQ(both.status, 200) << Show(both);
  EXPECT_EQ(both.Json().value("stored", -1), 2) << Show(both);
  const auto u1_after = Keys(Get(port, "/recommend?user=u1&exclude_seen=1&k=100").Json());
  EXPECT_FALSE(Contains(u1_after, u1_top[0])) << u1_top[0];
  EXPECT_FALSE(Contains(u1_after, u1_top[1])) << u1_top[1];
  ASSERT_FALSE(u1_after.empty());

  ASSERT_TRUE(server.Stop());
  ExpectCheckPasses(store);
  // In the store: the plays as interactions (show counts the interacting users).
  const json before_x = RunJson("--store " + Quote(*base_ / "model") + " --json show " + Quote(x));
  const json after_x = RunJson("--store " + Quote(store) + " --json show " + Quote(x));
  EXPECT_EQ(after_x.value("interacting_users", 0), before_x.value("interacting_users", 0) + 1) << after_x.dump();
}

// Issues 15 and 16: a listener who signs up while the server runs is served after their first play,
// from it (no 400 until the next rebuild), and each further play moves the next list.
TEST_F(ServeTest, NewListenerIsServedFromTheFirstPlay) {
  const std::string store = Store("s");
  ServerProcess server;
  ASSERT_TRUE(server.Start(store));
  const int port = server.port();
  const Reply unknown = Get(port, "/recommend?user=zoe");
  EXPECT_EQ(unknown.status, 404) << Show(unknown);

  ASSERT_EQ(Post(port, "/interactions", json({{"user", "zoe"}, {"item", SynthSong(2, 1, 0)}}).dump()).status, 200);
  const Reply first = Get(port, "/recommend?user=zoe&exclude_seen=1&k=5");
  ASSERT_EQ(first.status, 200) << Show(first);
  EXPECT_TRUE(first.Json().value("user_from_history", false)) << first.body;
  EXPECT_EQ(first.Json().value("plays_since_version", 0), 1) << first.body;
  const auto top = Keys(first.Json());
  ASSERT_FALSE(top.empty()) << first.body;
  EXPECT_EQ(top[0].rfind("song-2-", 0), 0u) << "the first song is not of the genre zoe played: " << first.body;

  // A second play, of another genre: the list changes, and excludes both plays.
  ASSERT_EQ(Post(port, "/interactions", json({{"user", "zoe"}, {"item", SynthSong(0, 2, 1)}}).dump()).status, 200);
  const Reply second = Get(port, "/recommend?user=zoe&exclude_seen=1&k=5");
  ASSERT_EQ(second.status, 200) << Show(second);
  EXPECT_EQ(second.Json().value("plays_since_version", 0), 2) << second.body;
  EXPECT_NE(Keys(second.Json()), top);
  EXPECT_FALSE(Contains(Keys(second.Json()), SynthSong(2, 1, 0)));
  EXPECT_FALSE(Contains(Keys(second.Json()), SynthSong(0, 2, 1)));
  ASSERT_TRUE(server.Stop());
  ExpectCheckPasses(store);
}

// Issue 15: the second version behind the same endpoints. After `rebuild --model-kind v2` a POSTed
// song is placed by the content kernel and leads a listener of its genre's new items, a listener
// who arrives with one play is served from it, and explanations name that play.
TEST_F(ServeTest, SecondVersionPlacesPostedItemsAndServesNewListeners) {
  const std::string store = Store("s");
  const json rebuilt = RunJson("--store " + Quote(store) + " rebuild --model-kind v2 --json");
  ASSERT_EQ(rebuilt.value("kind", std::string()), "v2") << rebuilt.dump();
  ServerProcess server;
  ASSERT_TRUE(server.Start(store));
  const int port = server.port();
  const json item = {{"id", "fresh-song"}, {"kind", "music"}, {"title", "Fresh Song"},
                     {"artist", SynthArtist(0, 1)}, {"genre", SynthGenre(0)}};
  const Reply created = Post(port, "/items", item.dump());
  ASSERT_EQ(created.status, 201) << Show(created);
  EXPECT_EQ(created.Json().value("model_version", -1), 2) << created.body;
  EXPECT_TRUE(created.Json().value("placed", false)) << created.body;
  const Reply fresh = Get(port, "/recommend?user=u0&new_only=1&k=4&explain=1");
  ASSERT_EQ(fresh.status, 200) << Show(fresh);
  EXPECT_TRUE(Contains(Keys(fresh.Json()), "fresh-song")) << "a genre-0 listener's 4 best new items: " << fresh.body;

  ASSERT_EQ(Post(port, "/interactions", json({{"user", "zoe"}, {"item", SynthSong(2, 1, 0)}}).dump()).status, 200);
  const Reply first = Get(port, "/recommend?user=zoe&exclude_seen=1&k=5&explain=1");
  ASSERT_EQ(first.status, 200) << Show(first);
  EXPECT_TRUE(first.Json().value("user_from_history", false)) << first.body;
  const auto top = Keys(first.Json());
  ASSERT_FALSE(top.empty()) << first.body;
  EXPECT_EQ(top[0].rfind("song-2-", 0), 0u) << "the first song is not of the genre zoe played: " << first.body;
  EXPECT_NE(first.body.find("you played"), std::string::npos) << first.body;
  EXPECT_EQ(Get(port, "/similar?item=fresh-song&k=5&explain=1").status, 200);
  ASSERT_TRUE(server.Stop());
  ExpectCheckPasses(store);
}

// Issue 16: more connections posting plays at once than the server has threads. Plays wait for the
// writer without a thread, so every one is stored and acknowledged (no 503), reads go on meanwhile,
// and a request naming an unknown item is refused whole while the requests committed with it are not.
TEST_F(ServeTest, ManyConnectionsPostingPlaysAreAllStored) {
  const std::string store = Store("s");
  ServerProcess server;
  ASSERT_TRUE(server.Start(store, {"--threads", "2"}));
  const int port = server.port();
  const std::string played = SynthSong(1, 1, 1);
  constexpr int kPosters = 12, kPlaysEach = 30;
  std::atomic<int> acknowledged{0}, impressions_acknowledged{0}, failed_reads{0}, reads{0};
  std::atomic<bool> posting{true};
  std::mutex mu;
  std::vector<std::string> refusals;
  std::vector<std::thread> posters;
  for (int t = 0; t < kPosters; ++t) {
    posters.emplace_back([&, t] {
      for (int i = 0; i < kPlaysEach; ++i) {
        const std::string user = "burst-" + std::to_string(t) + "-" + std::to_string(i);
        const Reply r = Post(port, "/interactions", json({{"user", user}, {"item", played}}).dump());
        if (r.status == 200 && r.Json().value("stored", 0) == 1) {
          ++acknowledged;
        } else {
          std::lock_guard<std::mutex> lock(mu);
          refusals.push_back(Show(r));
        }
        // Each play was shown first (its own request id): the impressions count exactly too.
        const json shown = {{"request", "burst-" + std::to_string(t) + "-" + std::to_string(i)}, {"user", user},
                            {"items", {played, SynthSong(1, 1, 2)}}};
        const Reply s = Post(port, "/impressions", shown.dump());
        if (s.status == 200 && s.Json().value("recorded", 0) == 2) {
          ++impressions_acknowledged;
        } else {
          std::lock_guard<std::mutex> lock(mu);
          refusals.push_back(Show(s));
        }
      }
    });
  }
  std::thread refused_whole([&] {
    const json mixed = json::array({{{"user", "ghost"}, {"item", played}}, {{"user", "ghost"}, {"item", "no-such-song"}}});
    const Reply r = Post(port, "/interactions", mixed.dump());
    EXPECT_EQ(r.status, 404) << Show(r);
    EXPECT_EQ(r.Json().value("field", std::string()), "[1].item") << Show(r);
  });
  std::thread reader([&] {
    while (posting) {
      ++reads;
      if (Get(port, "/recommend?user=u3&k=5").status != 200) ++failed_reads;
    }
  });
  for (auto& p : posters) p.join();
  refused_whole.join();
  posting = false;
  reader.join();
  EXPECT_EQ(acknowledged.load(), kPosters * kPlaysEach) << (refusals.empty() ? "" : refusals[0]);
  EXPECT_EQ(failed_reads.load(), 0) << "of " << reads.load() << " reads";
  EXPECT_EQ(Get(port, "/recommend?user=ghost").status, 404) << "a refused request created its user";
  ASSERT_TRUE(server.Stop());
  ExpectCheckPasses(store);
  const json before = RunJson("--store " + Quote(*base_ / "model") + " --json show " + Quote(played));
  const json after = RunJson("--store " + Quote(store) + " --json show " + Quote(played));
  EXPECT_EQ(after.value("interacting_users", 0), before.value("interacting_users", 0) + kPosters * kPlaysEach)
      << after.dump();
  EXPECT_EQ(impressions_acknowledged.load(), kPosters * kPlaysEach);
  EXPECT_EQ(after["exposure"].value("impressions", 0), kPosters * kPlaysEach) << after.dump();
  EXPECT_EQ(after["exposure"].value("plays", 0), kPosters * kPlaysEach) << after.dump();
  const json other = RunJson("--store " + Quote(store) + " --json show " + Quote(SynthSong(1, 1, 2)));
  EXPECT_EQ(other["exposure"].value("impressions", 0), kPosters * kPlaysEach) << other.dump();
  EXPECT_EQ(other["exposure"].value("plays", 0), 0) << other.dump();
}

// Issue 16: a listener with nothing played yet gets a list, not an error: the songs played most
// lately, marked "personalised": false; their first play makes it theirs.
TEST_F(ServeTest, ListenerWithNoPlaysGetsAListUntilTheirFirstPlay) {
  const std::string store = Store("s");
  ASSERT_TRUE(testing::AddUserWithoutPlays(store, "newcomer"));
  ServerProcess server;
  ASSERT_TRUE(server.Start(store));
  const int port = server.port();
  const Reply popular = Get(port, "/recommend?user=newcomer&k=5");
  ASSERT_EQ(popular.status, 200) << Show(popular);
  EXPECT_FALSE(popular.Json().value("personalised", true)) << popular.body;
  EXPECT_EQ(Keys(popular.Json()).size(), 5u) << popular.body;
  EXPECT_EQ(Get(port, "/recommend?user=never-heard-of").status, 404);

  ASSERT_EQ(Post(port, "/interactions", json({{"user", "newcomer"}, {"item", SynthSong(3, 1, 0)}}).dump()).status, 200);
  const Reply own = Get(port, "/recommend?user=newcomer&k=5&exclude_seen=1");
  ASSERT_EQ(own.status, 200) << Show(own);
  EXPECT_TRUE(own.Json().value("personalised", false)) << own.body;
  EXPECT_TRUE(own.Json().value("user_from_history", false)) << own.body;
  ASSERT_TRUE(server.Stop());
  ExpectCheckPasses(store);
}

// Issue 17: exploration. explore=0 is the greedy list exactly; with explore=2 new items enter lists,
// marked "explored", one the model rates high for the user more often than one it rates low; the
// impressions of a list count once per request id, in the store and in /metrics.
TEST_F(ServeTest, NewItemsAreExploredAndImpressionsCountOnce) {
  const std::string store = Store("s");
  ServerProcess server;
  ASSERT_TRUE(server.Start(store));
  const int port = server.port();
  const std::string greedy_url = "/recommend?user=u0&k=5&exclude_seen=1";
  const Reply greedy = Get(port, greedy_url);
  ASSERT_EQ(greedy.status, 200) << Show(greedy);
  // u0 listens to genre 0: a new genre-0 song by a genre-0 artist is near them, a genre-3 one far.
  const json near = {{"id", "near-song"}, {"kind", "music"}, {"title", "Near Song"}, {"artist", SynthArtist(0, 1)},
                     {"genre", SynthGenre(0)}};
  const json far = {{"id", "far-song"}, {"kind", "music"}, {"title", "Far Song"}, {"artist", SynthArtist(3, 2)},
                    {"genre", SynthGenre(3)}};
  ASSERT_EQ(Post(port, "/items", near.dump()).status, 201);
  ASSERT_EQ(Post(port, "/items", far.dump()).status, 201);
  const Reply same = Get(port, greedy_url + "&explore=0");
  ASSERT_EQ(same.status, 200) << Show(same);
  const auto greedy_keys = Keys(same.Json());
  for (const auto& r : same.Json()["results"]) EXPECT_FALSE(r.value("explored", true)) << same.body;
  EXPECT_EQ(same.Json().value("explore", -1), 0) << same.body;

  // Over 200 seeds: explored results are items the version has no plays of (the two new ones, or
  // songs nobody played), never the greedy list's, each with its reason; the item the model rates
  // highest for u0 (its own estimate, in the reason) is explored at least as often as the lowest.
  std::map<std::string, int> explored;
  std::map<std::string, double> estimate;
  for (int seed = 1; seed <= 200; ++seed) {
    const Reply r = Get(port, greedy_url + "&explore=2&explain=1&seed=" + std::to_string(seed));
    ASSERT_EQ(r.status, 200) << Show(r);
    const json j = r.Json();
    ASSERT_EQ(j["results"].size(), 5u) << r.body;
    for (const auto& hit : j["results"]) {
      if (!hit.value("explored", false)) continue;
      const std::string key = hit["key"];
      ++explored[key];
      EXPECT_FALSE(Contains(greedy_keys, key)) << r.body;
      ASSERT_FALSE(hit["explain"].empty()) << r.body;
      const std::string why = hit["explain"][0];
      ASSERT_EQ(why.rfind("explored:", 0), 0u) << why;
      estimate[key] = std::stod(why.substr(why.rfind(' ') + 1));
    }
    // The same seed draws the same list.
    if (seed == 7) {
      EXPECT_EQ(Keys(j), Keys(Get(port, greedy_url + "&explore=2&seed=7").Json()));
    }
  }
  ASSERT_FALSE(explored.empty()) << "nothing was explored in 200 lists";
  std::string highest = explored.begin()->first, lowest = highest;
  for (const auto& [key, n] : explored) {
    if (estimate[key] > estimate[highest]) highest = key;
    if (estimate[key] < estimate[lowest]) lowest = key;
  }
  EXPECT_GE(explored[highest], explored[lowest]) << highest << " (estimate " << estimate[highest] << ") against "
                                                  << lowest << " (estimate " << estimate[lowest] << ")";
  const Reply bad = Get(port, "/recommend?user=u0&k=5&explore=6");
  EXPECT_EQ(bad.status, 400) << Show(bad);

  // One list shown: its impressions count once, however often they are posted.
  const Reply list = Get(port, greedy_url + "&explore=2&seed=3");
  const std::string request = list.Json().value("request", std::string());
  ASSERT_FALSE(request.empty()) << list.body;
  const json shown = {{"request", request}, {"user", "u0"}, {"items", Keys(list.Json())}};
  const Reply first = Post(port, "/impressions", shown.dump());
  ASSERT_EQ(first.status, 200) << Show(first);
  EXPECT_EQ(first.Json().value("recorded", 0), 5) << first.body;
  const Reply again = Post(port, "/impressions", shown.dump());
  ASSERT_EQ(again.status, 200) << Show(again);
  EXPECT_EQ(again.Json().value("recorded", -1), 0) << again.body;
  EXPECT_TRUE(again.Json().value("duplicate", false)) << again.body;
  const Reply unknown = Post(port, "/impressions", json({{"request", "x"}, {"user", "u0"}, {"items", {"no-such"}}}).dump());
  EXPECT_EQ(unknown.status, 404) << Show(unknown);
  EXPECT_NE(Get(port, "/metrics").body.find("mosaic_impressions_total 5\n"), std::string::npos);
  ASSERT_TRUE(server.Stop());
  ExpectCheckPasses(store);
  for (const std::string& key : Keys(list.Json())) {
    const json item = RunJson("--store " + Quote(store) + " --json show " + Quote(key));
    EXPECT_EQ(item["exposure"].value("impressions", 0), 1) << item.dump();
  }
}

// A posted item that then gets an interaction leaves new_only (it is no longer new).
// ---------------------------------------------------------------------------------------------
// The dashboard: its files and the read-only endpoints its pages load (the pages themselves are
// tested in a browser: tests/browser/dashboard_test.mjs).
TEST_F(ServeTest, DashboardFilesAndDataEndpoints) {
  const std::string store = Store("s");
  ServerProcess server;
  ASSERT_TRUE(server.Start(store));
  const int port = server.port();

  const Reply index = Get(port, "/");
  ASSERT_EQ(index.status, 200) << Show(index);
  EXPECT_EQ(index.content_type, "text/html; charset=utf-8");
  EXPECT_NE(index.body.find("<script src=\"/dashboard.js\""), std::string::npos) << index.body.substr(0, 400);
  EXPECT_NE(index.csp.find("script-src 'self'"), std::string::npos) << "CSP: " << index.csp;
  EXPECT_EQ(Get(port, "/dashboard.js").content_type, "text/javascript; charset=utf-8");
  EXPECT_EQ(Get(port, "/dashboard.css").content_type, "text/css; charset=utf-8");
  EXPECT_TRUE(IsJsonError(Post(port, "/", "{}"), 405));

  const json item = {{"id", "fresh-song"}, {"kind", "music"}, {"title", "Fresh Song"},
                     {"artist", SynthArtist(0, 1)}, {"genre", SynthGenre(0)}};
  ASSERT_EQ(Post(port, "/items", item.dump()).status, 201);

  // Search: by title, then by a linked entity's name (newest first), filtered by kind.
  json found = Get(port, "/catalogue?q=fresh").Json();
  ASSERT_FALSE(found["items"].empty()) << found.dump();
  EXPECT_EQ(found["items"][0].value("key", ""), "fresh-song") << found.dump();
  EXPECT_EQ(found["items"][0].value("match", ""), "title") << found.dump();
  found = Get(port, "/catalogue?q=Artist%2001").Json();  // SynthArtist(0, 1)
  ASSERT_FALSE(found["items"].empty()) << found.dump();
  EXPECT_EQ(found["items"][0].value("key", ""), "fresh-song") << "the newest linked item first: " << found.dump();
  EXPECT_EQ(found["items"][0].value("match", ""), "linked") << found.dump();
  EXPECT_EQ(found.value("total", 0), testing::kServeSongs + 1) << found.dump();
  EXPECT_TRUE(Get(port, "/catalogue?q=fresh&kind=video").Json()["items"].empty());
  EXPECT_TRUE(IsJsonError(Get(port, "/catalogue?kind=podcast"), 400, "kind"));
  EXPECT_TRUE(IsJsonError(Get(port, "/catalogue?limit=0"), 400, "limit"));

  // The item page in one reply: placement, KG graph, audience with explanations, similar items.
  const Reply page = Get(port, "/item?item=fresh-song");
  ASSERT_EQ(page.status, 200) << Show(page);
  const json p = page.Json();
  EXPECT_EQ(p["item"].value("key", ""), "fresh-song");
  ASSERT_TRUE(p["placement"].is_object()) << p.dump();
  EXPECT_EQ(p["placement"].value("model_version", 0), 1);
  std::set<std::string> relations;
  for (const auto& e : p["graph"]["edges"]) relations.insert(e.value("relation", ""));
  EXPECT_TRUE(relations.count("artist") && relations.count("genre")) << p["graph"].dump();
  ASSERT_FALSE(p["audience"].empty()) << p.dump();
  EXPECT_FALSE(p["audience"][0]["explain"].empty()) << p["audience"].dump();
  EXPECT_FALSE(p["similar"].empty()) << p.dump();
  EXPECT_EQ(p["exposure"].value("plays", -1), 0);
  EXPECT_TRUE(IsJsonError(Get(port, "/item?item=no-such-song"), 404, "item"));
  EXPECT_TRUE(IsJsonError(Get(port, "/item"), 400, "item"));

  // Walking to the genre: a hub's neighbours are bounded, its degree says how many there are.
  uint64_t genre = 0;
  for (const auto& n : p["graph"]["nodes"]) {
    if (n.value("label", "") == SynthGenre(0)) genre = n["id"].get<uint64_t>();
  }
  ASSERT_NE(genre, 0u) << p["graph"].dump();
  const json walked = Get(port, "/graph?node=" + std::to_string(genre) + "&hops=1").Json();
  EXPECT_EQ(walked.value("center", 0u), genre) << walked.dump();
  size_t first_hop = 0;
  for (const auto& n : walked["nodes"]) first_hop += n.value("hops", -1) == 1;
  EXPECT_EQ(first_hop, 12u) << "at most GraphLimits::per_node neighbours: " << walked.dump();
  EXPECT_GE(walked["nodes"][0].value("degree", 0), testing::kServeArtists * testing::kServeSongs + 1)
      << "every song of the genre, the fresh one included: " << walked["nodes"][0].dump();
  EXPECT_TRUE(IsJsonError(Get(port, "/graph?node=" + std::to_string(genre) + "&hops=3"), 400, "hops"));
  EXPECT_TRUE(IsJsonError(Get(port, "/graph?node=999999999"), 404, "node"));

  // A user's history, most played first; the model versions.
  const json history = Get(port, "/user?user=u0&limit=3").Json();
  ASSERT_EQ(history["items"].size(), 3u) << history.dump();
  EXPECT_GE(history["items"][0]["plays"].get<double>(), history["items"][2]["plays"].get<double>());
  EXPECT_GE(history.value("total", 0), 3);
  EXPECT_TRUE(IsJsonError(Get(port, "/user?user=nobody"), 404, "user"));
  const json versions = Get(port, "/versions").Json();
  EXPECT_EQ(versions.value("current", 0), 1) << versions.dump();
  ASSERT_EQ(versions["versions"].size(), 1u) << versions.dump();
  EXPECT_TRUE(versions["versions"][0].value("current", false));
  EXPECT_TRUE(versions["versions"][0]["cold_items"].is_number()) << "the list of cold items is counted, not sent";

  ASSERT_TRUE(server.Stop());
  ExpectCheckPasses(store);
}

// ---------------------------------------------------------------------------------------------
// Read replicas (issue 19): a server that follows the primary's store and forwards writes to it.
TEST_F(ServeTest, ReplicaForwardsWritesAndFollowsThePrimary) {
  const std::string store = Store("s");
  ServerProcess primary;
  ASSERT_TRUE(primary.Start(store));
  const std::string primary_url = "http://127.0.0.1:" + std::to_string(primary.port());
  ServerProcess replica, lone;
  ASSERT_TRUE(replica.Start(store, {"--replica-of", store, "--primary", primary_url}));
  ASSERT_TRUE(lone.Start(store, {"--replica-of", store}));
  EXPECT_EQ(Get(replica.port(), "/health").Json().value("role", ""), "replica");
  EXPECT_EQ(Get(primary.port(), "/health").Json().value("role", ""), "primary");

  // A replica without a primary refuses writes, saying where they go.
  const Reply refused = Post(lone.port(), "/interactions", R"({"user": "u1", "item": "x"})");
  EXPECT_EQ(refused.status, 503) << Show(refused);
  EXPECT_NE(refused.body.find("read replica"), std::string::npos) << refused.body;

  // A POST to the replica is the primary's: visible on both (within a second on a quiet machine).
  const json item = {{"id", "via-replica"}, {"kind", "music"}, {"title", "Via Replica"}, {"genre", SynthGenre(0)}};
  const auto posted_at = std::chrono::steady_clock::now();
  const Reply created = Post(replica.port(), "/items", item.dump());
  ASSERT_EQ(created.status, 201) << Show(created);
  auto visible = [&](int port) {
    return Contains(Keys(Get(port, "/recommend?user=u0&new_only=1&k=100").Json()), "via-replica");
  };
  EXPECT_TRUE(visible(primary.port())) << "the primary wrote it";
  double seen = -1;
  while (SecondsSince(posted_at) < 5) {
    if (visible(replica.port())) {
      seen = SecondsSince(posted_at);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  // Liveness only (no timing bar in tests: a loaded machine stretches it); the figure is printed below
  // and docs/results.md records it from a quiet run (issue 19's bound is 1 s).
  EXPECT_GE(seen, 0) << "the replica never served the item posted through it within 5 s";
  // Plays too, with the primary's answer relayed.
  const Reply played = Post(replica.port(), "/interactions", R"({"user": "replica-fan", "item": "via-replica"})");
  EXPECT_EQ(played.status, 200) << Show(played);
  const Reply unknown = Post(replica.port(), "/interactions", R"({"user": "u1", "item": "no-such-item"})");
  EXPECT_TRUE(IsJsonError(unknown, 404, "item")) << "the primary's refusal, relayed";

  // A rebuild on the primary's store: the replica follows the switch (within a second on a quiet
  // machine: it catches up every 250 ms; the test only bounds it loosely, as above).
  testing::CommandResult rebuilt;
  std::thread rebuild([&] { rebuilt = RunMosaic("--store " + Quote(store) + " rebuild --epochs 2"); });
  double primary_switch = -1, replica_switch = -1;
  const auto start = std::chrono::steady_clock::now();
  while (SecondsSince(start) < 300 && (primary_switch < 0 || replica_switch < 0)) {
    if (primary_switch < 0 && Get(primary.port(), "/health").Json().value("model_version", 0) == 2) primary_switch = SecondsSince(start);
    if (replica_switch < 0 && Get(replica.port(), "/health").Json().value("model_version", 0) == 2) replica_switch = SecondsSince(start);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  rebuild.join();
  ASSERT_EQ(rebuilt.exit_code, 0) << testing::Describe(rebuilt);
  ASSERT_GE(primary_switch, 0);
  ASSERT_GE(replica_switch, 0);
  EXPECT_LE(replica_switch - primary_switch, 5.0) << "primary at " << primary_switch << " s, replica at " << replica_switch << " s";
  std::printf("a POST through the replica was served by it after %.3f s; the rebuild's version %.3f s after the primary\n",
              seen, replica_switch - primary_switch);
  EXPECT_EQ(Get(replica.port(), "/similar?item=via-replica&k=3").status, 200) << "the new version has the item";

  ASSERT_TRUE(replica.Stop());
  ASSERT_TRUE(lone.Stop());
  ASSERT_TRUE(primary.Stop());
  ExpectCheckPasses(store);
}

TEST_F(ServeTest, NewItemLeavesNewOnlyOnceItIsPlayed) {
  const std::string store = Store("s");
  ServerProcess server;
  ASSERT_TRUE(server.Start(store));
  const int port = server.port();
  ASSERT_EQ(Post(port, "/items", R"({"id": "soon-played", "kind": "music", "title": "Soon Played", "genre": "Genre 1"})").status, 201);
  EXPECT_TRUE(Contains(Keys(Get(port, "/recommend?user=u2&new_only=1&k=100").Json()), "soon-played"));
  const Reply played = Post(port, "/interactions", R"({"user": "u1", "item": "soon-played", "weight": 4})");
  ASSERT_EQ(played.status, 200) << Show(played);
  const Reply r = Get(port, "/recommend?user=u2&new_only=1&k=100");
  ASSERT_EQ(r.status, 200) << Show(r);
  EXPECT_FALSE(Contains(Keys(r.Json()), "soon-played")) << "played items are not new: " << r.body;
  EXPECT_TRUE(server.Stop());
  ExpectCheckPasses(store);
}

// ---------------------------------------------------------------------------------------------
// /metrics

// A sample line of the Prometheus text format 0.0.4: name, labels, value.
struct Sample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

::testing::AssertionResult ParseMetrics(const std::string& text, std::vector<Sample>* samples,
                                        std::map<std::string, std::string>* types) {
  static const std::regex sample_re(R"re(^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?[ \t]+([^ \t]+)([ \t]+-?[0-9]+)?$)re");
  static const std::regex label_re(R"re(^\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(,|$))re");
  static const std::regex type_re(R"re(^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$)re");
  size_t start = 0;
  int line_no = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(start, end - start);
    start = end + 1;
    ++line_no;
    if (line.empty()) continue;
    std::smatch m;
    if (line.rfind("# TYPE ", 0) == 0) {
      if (!std::regex_match(line, m, type_re)) return ::testing::AssertionFailure() << "line " << line_no << ": bad TYPE: " << line;
      (*types)[m[1]] = m[2];
      continue;
    }
    if (line[0] == '#') continue;  // HELP and comments
    if (!std::regex_match(line, m, sample_re)) return ::testing::AssertionFailure() << "line " << line_no << ": not a sample: " << line;
    Sample s;
    s.name = m[1];
    std::string labels = m[3];
    while (!labels.empty()) {
      std::smatch lm;
      if (!std::regex_search(labels, lm, label_re)) {
        return ::testing::AssertionFailure() << "line " << line_no << ": bad labels: " << line;
      }
      s.labels[lm[1]] = lm[2];
      labels = lm.suffix();
    }
    const std::string v = m[4];
    if (v == "+Inf") {
      s.value = HUGE_VAL;
    } else if (v == "-Inf") {
      s.value = -HUGE_VAL;
    } else if (v == "NaN") {
      s.value = NAN;
    } else {
      char* stop = nullptr;
      s.value = std::strtod(v.c_str(), &stop);
      if (*stop != '\0') return ::testing::AssertionFailure() << "line " << line_no << ": bad value: " << line;
    }
    samples->push_back(std::move(s));
  }
  return ::testing::AssertionSuccess();
}

TEST_F(ServeTest, MetricsCountRequestsPerEndpointInPrometheusFormat) {
  const std::string store = Store("s");
  ServerProcess server;
  ASSERT_TRUE(server.Start(store));
  const int port = server.port();
  for (int i = 0; i < 2; ++i) ASSERT_EQ(Get(port, "/health").status, 200);
  for (int i = 0; i < 3; ++i) ASSERT_EQ(Get(port, "/recommend?user=u" + std::to_string(i) + "&k=5").status, 200);
  ASSERT_EQ(Get(port, "/recommend?user=nobody").status, 404);
  ASSERT_EQ(Get(port, "/similar?item=" + SynthSong(1, 1, 1)).status, 200);
  ASSERT_EQ(Post(port, "/items", R"({"id": "metered", "kind": "music", "title": "Metered"})").status, 201);

  const Reply metrics = Get(port, "/metrics");
  ASSERT_EQ(metrics.status, 200) << Show(metrics);
  EXPECT_EQ(metrics.content_type.rfind("text/plain", 0), 0u) << metrics.content_type;
  EXPECT_NE(metrics.content_type.find("version=0.0.4"), std::string::npos) << metrics.content_type;
  std::vector<Sample> samples;
  std::map<std::string, std::string> types;
  ASSERT_TRUE(ParseMetrics(metrics.body, &samples, &types)) << metrics.body;

  EXPECT_EQ(types["mosaic_requests_total"], "counter") << metrics.body;
  EXPECT_EQ(types["mosaic_request_duration_seconds"], "histogram") << metrics.body;
  for (const char* gauge : {"mosaic_model_version", "mosaic_items", "mosaic_placed_items"}) {
    EXPECT_EQ(types[gauge], "gauge") << gauge << "\n" << metrics.body;
  }
  auto find = [&](const std::string& name, const std::map<std::string, std::string>& labels) -> const Sample* {
    for (const auto& s : samples) {
      if (s.name != name) continue;
      bool all = true;
      for (const auto& [k, v] : labels) all = all && s.labels.count(k) && s.labels.at(k) == v;
      if (all) return &s;
    }
    return nullptr;
  };
  auto value = [&](const std::string& name, const std::map<std::string, std::string>& labels) {
    const Sample* s = find(name, labels);
    EXPECT_NE(s, nullptr) << name << " with the given labels is missing:\n" << metrics.body;
    return s ? s->value : -1;
  };
  EXPECT_GE(value("mosaic_requests_total", {{"endpoint", "/health"}, {"code", "200"}}), 2);
  EXPECT_GE(value("mosaic_requests_total", {{"endpoint", "/recommend"}, {"code", "200"}}), 3);
  EXPECT_GE(value("mosaic_requests_total", {{"endpoint", "/recommend"}, {"code", "404"}}), 1);
  EXPECT_GE(value("mosaic_requests_total", {{"endpoint", "/similar"}, {"code", "200"}}), 1);
  EXPECT_GE(value("mosaic_requests_total", {{"endpoint", "/items"}, {"code", "201"}}), 1);
  for (const std::string endpoint : {"/health", "/recommend", "/similar", "/items"}) {
    SCOPED_TRACE(endpoint);
    // Buckets: ascending le, non-decreasing counts, +Inf equal to _count.
    std::vector<std::pair<double, double>> buckets;
    for (const auto& s : samples) {
      if (s.name == "mosaic_request_duration_seconds_bucket" && s.labels.count("endpoint") && s.labels.at("endpoint") == endpoint) {
        ASSERT_TRUE(s.labels.count("le")) << "a bucket without le";
        const std::string le = s.labels.at("le");
        buckets.emplace_back(le == "+Inf" ? HUGE_VAL : std::strtod(le.c_str(), nullptr), s.value);
      }
    }
    ASSERT_GE(buckets.size(), 2u) << metrics.body;
    for (size_t i = 1; i < buckets.size(); ++i) {
      EXPECT_LT(buckets[i - 1].first, buckets[i].first) << "le values not ascending";
      EXPECT_LE(buckets[i - 1].second, buckets[i].second) << "bucket counts decrease";
    }
    EXPECT_EQ(buckets.back().first, HUGE_VAL) << "no le=\"+Inf\" bucket";
    const double count = value("mosaic_request_duration_seconds_count", {{"endpoint", endpoint}});
    EXPECT_EQ(buckets.back().second, count);
    EXPECT_GE(count, 1);
    EXPECT_GT(value("mosaic_request_duration_seconds_sum", {{"endpoint", endpoint}}), 0);
  }
  EXPECT_GE(value("mosaic_request_duration_seconds_count", {{"endpoint", "/recommend"}}), 3);
  const json h = Get(port, "/health").Json();
  EXPECT_EQ(value("mosaic_model_version", {}), 1);
  EXPECT_EQ(value("mosaic_items", {}), h.value("items", -2));
  EXPECT_EQ(value("mosaic_placed_items", {}), h.value("placed", -2));
  // The scrape itself is counted by the next one.
  const Reply again = Get(port, "/metrics");
  EXPECT_NE(again.body.find("endpoint=\"/metrics\""), std::string::npos) << again.body;
  EXPECT_TRUE(server.Stop());
}

// ---------------------------------------------------------------------------------------------
// Other processes writing beside the server

TEST_F(ServeTest, RebuildInAnotherProcessWhileQueryingFailsNothingAndSwitchesVersion) {
  const std::string store = Store("s");
  ServerProcess server;
  ASSERT_TRUE(server.Start(store));
  const int port = server.port();

  std::atomic<bool> stop{false};
  std::mutex mu;
  std::vector<std::string> failures;
  std::vector<int> versions;  // in the order the answers came
  std::thread client([&] {
    httplib::Client c("127.0.0.1", port);
    c.set_read_timeout(60, 0);
    int i = 0;
    while (!stop.load()) {
      const std::string user = "u" + std::to_string(i++ % testing::kServeUsers);
      auto res = c.Get(("/recommend?user=" + user + "&k=5" + (i % 3 == 0 ? "&new_only=1" : "")).c_str());
      std::lock_guard<std::mutex> lock(mu);
      if (!res) {
        failures.push_back(user + ": " + httplib::to_string(res.error()));
        continue;
      }
      const json j = json::parse(res->body, nullptr, false);
      if (res->status != 200 || !j.is_object() || !j.contains("model_version")) {
        failures.push_back(user + ": " + std::to_string(res->status) + " " + res->body.substr(0, 300));
        continue;
      }
      versions.push_back(j["model_version"].get<int>());
    }
  });
  // Issue 16: listeners sign up and play during the rebuild; each is served from the play at once,
  // before and after the switch (folded in under version 1, then a row of version 2 or folded in again).
  std::vector<std::string> players;  // whose play was acknowledged
  std::thread player([&] {
    httplib::Client c("127.0.0.1", port);
    c.set_read_timeout(60, 0);
    for (int n = 0; !stop.load(); ++n) {
      const std::string user = "stream-" + std::to_string(n);
      const std::string song = SynthSong(n % testing::kServeGenres, n % testing::kServeArtists, n % 4);
      auto posted = c.Post("/interactions", json({{"user", user}, {"item", song}}).dump(), "application/json");
      auto listed = c.Get(("/recommend?user=" + user + "&k=5").c_str());
      std::lock_guard<std::mutex> lock(mu);
      if (!posted || posted->status != 200) {
        failures.push_back("POST " + user + ": " + (posted ? std::to_string(posted->status) + " " + posted->body
                                                          : httplib::to_string(posted.error())));
        continue;
      }
      players.push_back(user);
      if (!listed || listed->status != 200) {
        failures.push_back("GET " + user + ": " + (listed ? std::to_string(listed->status) + " " + listed->body
                                                         : httplib::to_string(listed.error())));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });

  const auto t0 = std::chrono::steady_clock::now();
  CommandResult rebuild = RunMosaic("--store " + Quote(store) + " rebuild --epochs 80 --seed 2 --json");
  const double rebuild_s = SecondsSince(t0);
  EXPECT_EQ(rebuild.exit_code, 0) << Describe(rebuild);
  const json rebuilt = json::parse(rebuild.out, nullptr, false);
  EXPECT_EQ(rebuilt.is_object() ? rebuilt.value("version", -1) : -1, 2) << rebuild.out;
  const double picked_up = WaitForHealth(port, [](const json& h) { return h.value("model_version", 0) == 2; }, 10);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // more queries on the new version
  stop = true;
  client.join();
  player.join();

  std::printf("rebuild %.1f s beside %zu queries and %zu new listeners' plays; the server used version 2 %.2f s after "
              "the rebuild ended\n", rebuild_s, versions.size() + failures.size(), players.size(), picked_up);
  EXPECT_GT(players.size(), 10u);
  for (const std::string& user : players) {  // every acknowledged play is there, under version 2
    const Reply r = Get(port, "/recommend?user=" + user + "&k=5");
    EXPECT_EQ(r.status, 200) << user << ": " << Show(r);
  }
  EXPECT_TRUE(failures.empty()) << failures.size() << " failed queries, the first: " << failures.front();
  ASSERT_GE(picked_up, 0) << "the server never switched to version 2";
  EXPECT_LE(picked_up, 3.0) << "the server took " << picked_up << " s to switch to version 2";
  ASSERT_FALSE(versions.empty());
  EXPECT_EQ(versions.front(), 1);
  EXPECT_EQ(versions.back(), 2);
  const auto first2 = std::find(versions.begin(), versions.end(), 2);
  EXPECT_TRUE(std::all_of(first2, versions.end(), [](int v) { return v == 2; })) << "a query used version 1 after one used 2";
  EXPECT_TRUE(std::all_of(versions.begin(), versions.end(), [](int v) { return v == 1 || v == 2; }));
  const Reply health = Get(port, "/health");
  EXPECT_EQ(health.Json().value("model_version", 0), 2) << Show(health);
  EXPECT_TRUE(server.Stop());
  ExpectCheckPasses(store);
}

TEST_F(ServeTest, ItemImportedByAnotherProcessIsPickedUp) {
  const std::string store = Store("s");
  ServerProcess server;
  ASSERT_TRUE(server.Start(store));
  const int port = server.port();
  // A POST first, so that the server has had the write lock (and must give it back).
  ASSERT_EQ(Post(port, "/items", R"({"id": "posted-first", "kind": "music", "title": "Posted First"})").status, 201);
  const int items = Get(port, "/health").Json().value("items", 0);
  WriteFile(tmp_ / "late.jsonl", json({{"id", "imported-late"}, {"kind", "music"}, {"title", "Imported Late"},
                                       {"artist", SynthArtist(2, 0)}, {"genre", SynthGenre(2)}}).dump() + "\n");
  CommandResult imported = RunMosaic("--store " + Quote(store) + " --no-text import --format jsonl " + Quote(tmp_ / "late.jsonl"));
  ASSERT_EQ(imported.exit_code, 0) << "import beside the server:\n" << Describe(imported);
  const double seen = WaitForHealth(port, [&](const json& h) { return h.value("items", 0) == items + 1; }, 10);
  ASSERT_GE(seen, 0) << "the server never saw the imported item";
  EXPECT_LE(seen, 3.0);
  std::printf("the imported item was served %.2f s after the import ended\n", seen);
  const Reply r = Get(port, "/recommend?user=u2&new_only=1&k=100");
  ASSERT_EQ(r.status, 200) << Show(r);
  EXPECT_TRUE(Contains(Keys(r.Json()), "imported-late")) << r.body;
  EXPECT_EQ(Get(port, "/similar?item=imported-late&k=3").status, 200);
  // And the server can still write after the other process had the lock.
  EXPECT_EQ(Post(port, "/items", R"({"id": "posted-after", "kind": "music", "title": "Posted After"})").status, 201);
  EXPECT_TRUE(server.Stop());
  ExpectCheckPasses(store);
}

}  // namespace
}  // namespace mosaic
