// The admin API end to end, in-process: the real server (App: HTTP workers, admin API, store
// threads) on a SQLite store, called over loopback with a real HTTP client (libcurl). Every route
// with its success and error cases; 401 without a key, with a wrong key and with a client key;
// and, after every test, no response body and no log line holds a secret whole.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <fstream>
#include <sstream>

#include "cli/commands.h"
#include "common/strings.h"
#include "config/config.h"
#include "ops/ops.h"
#include "server/server.h"
#include "tests/fakes/upstream_stub.h"
#include "tests/store/store_test_util.h"
#include "tests/testing/http_client.h"
#include "tests/testing/store_env.h"

namespace keygate::testing {
namespace {

namespace json = boost::json;

constexpr char kClientToken[] = "kg-admin-test-client-token-0123456789";
constexpr char kWrongToken[] = "kga-wrong-0000000000000000000000000000000000000000";
constexpr char kProxyPassword[] = "proxy-pass-SECRET-9876";
const std::vector<std::string> kUpstreamSecrets = {
    "sk-adm-ok-aaaaaaaaaaaaaaaa", "sk-adm-ok-bbbbbbbbbbbbbbbb", "sk-adm-ok-cccccccccccccccc",
    "sk-adm-ok-dddddddddddddddd"};

class AdminApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(stub_.Start());
    auto location = StoreLocation::Create(Kind());
    ASSERT_TRUE(location.ok()) << location.status().ToString();
    location_ = std::move(location).value();
    store_ = std::move(OpenTestStore(location_->url())).value();
    auto admin = ops::CreateAdminKey(*store_, *TestSecrets(), "alice");
    ASSERT_TRUE(admin.ok()) << admin.status().ToString();
    admin_token_ = admin->secret;
    ASSERT_TRUE(store_->CreateClientKey("app", TestSecrets()->HashClientKey(kClientToken),
                                        "kg-…6789").ok());
    ::testing::internal::CaptureStderr();
    capturing_ = true;
  }

  void TearDown() override {
    if (app_) app_->Shutdown();
    app_.reset();
    stub_.Stop();
    // A SetUp that failed (no store: PostgreSQL tests outside ctest's `pg` fixture) returned
    // before the capture began; reading a capture never started crashes gtest.
    if (!capturing_) return;
    const std::string log = ::testing::internal::GetCapturedStderr();
    std::vector<std::string> secrets = kUpstreamSecrets;
    secrets.push_back(admin_token_);
    secrets.push_back(kWrongToken);
    secrets.push_back(kClientToken);
    secrets.push_back(kProxyPassword);
    for (const std::string& s : secrets) {
      EXPECT_EQ(log.find(s), std::string::npos) << "the log holds a secret: " << s;
      for (const std::string& body : bodies_) {
        EXPECT_EQ(body.find(s), std::string::npos) << "a response holds a secret: " << body;
      }
    }
    // A client key made through the API is in exactly one response, the one that made it.
    for (const std::string& s : one_time_) {
      EXPECT_EQ(log.find(s), std::string::npos) << "the log holds a client key: " << s;
      int seen = 0;
      for (const std::string& body : bodies_) seen += body.find(s) != std::string::npos;
      EXPECT_EQ(seen, 1) << "a client key was shown " << seen << " times: " << s;
    }
  }

  virtual StoreKind Kind() const { return StoreKind::kSqlite; }

  std::string ConfigText(const std::string& extra = "") {
    return "[server]\nlisten = \"127.0.0.1:0\"\nworkers = 2\nmax_body_bytes = 4096\n"
           "[store]\npool_refresh_ms = 100\n"
           "[providers.stub]\nbase_url = \"" +
           stub_.base_url() +
           "\"\n"
           "[pools.main]\nprovider = \"stub\"\n"
           "[[models]]\nid = \"gpt-test\"\npool = \"main\"\nprice = { input = 2, output = 10 }\n"
           "[[models]]\nid = \"gpt-other\"\npool = \"main\"\nprice = { input = 1, output = 4 }\n" +
           extra;
  }

  void Start(const std::string& extra = "", const std::string& config_path = "") {
    auto cfg = config::ParseConfig(ConfigText(extra), "test.toml");
    ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
    std::ostringstream out;
    server::ServeOptions options;
    options.config_path = config_path;
    auto app = server::App::Start(std::move(cfg).value(), options, *store_, TestSecrets(), out);
    ASSERT_TRUE(app.ok()) << app.status().ToString();
    app_ = std::move(app).value();
    base_ = "http://127.0.0.1:" + std::to_string(app_->port());
  }

  HttpResponse Send(const std::string& method, const std::string& path,
                    const std::string& body = "", const std::string& token = "",
                    std::vector<std::pair<std::string, std::string>> headers = {}) {
    std::string t = token.empty() ? admin_token_ : token;
    if (t != "-") headers.emplace_back("Authorization", "Bearer " + t);
    if (!body.empty()) headers.emplace_back("Content-Type", "application/json");
    HttpResponse r = HttpRequest(method, base_ + path, headers, body);
    bodies_.push_back(r.body);
    return r;
  }
  HttpResponse Get(const std::string& path) { return Send("GET", path); }
  HttpResponse Post(const std::string& path, const std::string& body) {
    return Send("POST", path, body);
  }
  HttpResponse Delete(const std::string& path) { return Send("DELETE", path); }

  static json::object Doc(const HttpResponse& r) {
    boost::system::error_code ec;
    json::value v = json::parse(r.body, ec);
    EXPECT_FALSE(ec) << "not JSON: " << r.body;
    return v.is_object() ? v.as_object() : json::object{};
  }

  // Checks the one error shape and returns its message.
  static std::string ErrorOf(const HttpResponse& r, int status) {
    EXPECT_EQ(r.status, status) << r.body;
    EXPECT_EQ(r.headers.count("content-type") ? r.headers.at("content-type") : "",
              "application/json");
    json::object doc = Doc(r);
    const json::value* err = doc.if_contains("error");
    if (err == nullptr || !err->is_object()) {
      ADD_FAILURE() << "no error object: " << r.body;
      return "";
    }
    EXPECT_EQ(err->at("status").as_int64(), status);
    EXPECT_TRUE(err->at("code").is_string());
    return std::string(err->at("message").as_string());
  }

  // Imports `secrets` through the API; returns the inserted ids.
  std::vector<int64_t> Import(const std::vector<std::string>& secrets, const std::string& state) {
    json::array keys;
    for (const auto& s : secrets) keys.push_back(json::value(s));
    HttpResponse r = Post("/admin/v1/pools/main/keys",
                          json::serialize(json::object{{"keys", keys}, {"state", state}}));
    EXPECT_EQ(r.status, 201) << r.body;
    std::vector<int64_t> ids;
    json::object doc = Doc(r);
    for (const auto& v : doc["inserted_ids"].as_array()) ids.push_back(v.as_int64());
    return ids;
  }

  UpstreamStub stub_;
  std::unique_ptr<StoreLocation> location_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<server::App> app_;
  std::string base_;
  std::string admin_token_;
  std::vector<std::string> bodies_;
  std::vector<std::string> one_time_;  // client keys the API handed out (once)
  bool capturing_ = false;  // SetUp got as far as capturing stderr
};

TEST_F(AdminApiTest, EveryRouteNeedsAValidAdminKey) {
  Start();
  const std::vector<std::pair<std::string, std::string>> routes = {
      {"GET", "/admin/v1/pools"},
      {"POST", "/admin/v1/pools"},
      {"GET", "/admin/v1/keys"},
      {"POST", "/admin/v1/keys/1/cooldown"},
      {"DELETE", "/admin/v1/keys/1"},
      {"GET", "/admin/v1/proxies"},
      {"GET", "/admin/v1/rotations"},
      {"GET", "/admin/v1/audit"},
      {"POST", "/admin/v1/reload"},
      {"GET", "/admin/v1/whoami"},
      {"GET", "/admin/v1/client-keys"},
      {"POST", "/admin/v1/client-keys"},
      {"GET", "/admin/v1/client-keys/1"},
      {"DELETE", "/admin/v1/client-keys/1"},
      {"POST", "/admin/v1/client-keys/1/credits"},
      {"POST", "/admin/v1/client-keys/1/limits"},
      {"POST", "/admin/v1/client-keys/1/disable"},
      {"POST", "/admin/v1/client-keys/1/enable"},
      {"POST", "/admin/v1/client-keys/1/roll"},
      {"GET", "/admin/v1/client-keys/1/sub-keys"},
      {"POST", "/admin/v1/client-keys/1/sub-keys"},
      {"DELETE", "/admin/v1/client-keys/1/sub-keys/2"},
      {"GET", "/admin/v1/usage/report"},
      {"GET", "/admin/v1/spend/stats"},
      {"GET", "/admin/v1/traffic"}};
  for (const auto& [method, path] : routes) {
    std::string none = ErrorOf(Send(method, path, "", "-"), 401);
    EXPECT_NE(none.find("admin key is required"), std::string::npos) << none;
    std::string wrong = ErrorOf(Send(method, path, "", kWrongToken), 401);
    EXPECT_NE(wrong.find("invalid admin key kga-…"), std::string::npos) << wrong;
    // A client key is not an admin key (its own hash subkey).
    ErrorOf(Send(method, path, "", kClientToken), 401);
  }
  HttpResponse me = Get("/admin/v1/whoami");
  ASSERT_EQ(me.status, 200) << me.body;
  EXPECT_EQ(Doc(me)["admin"].as_string(), "alice");
  // A deleted admin key stops working at once.
  ASSERT_TRUE(store_->DeleteAdminKey("alice").value());
  ErrorOf(Get("/admin/v1/whoami"), 401);
}

TEST_F(AdminApiTest, PoolsListCreateAndStatus) {
  Start();
  HttpResponse list = Get("/admin/v1/pools");
  ASSERT_EQ(list.status, 200) << list.body;
  ASSERT_EQ(Doc(list)["pools"].as_array().size(), 1u);

  HttpResponse created =
      Post("/admin/v1/pools", R"({"name":"second","provider":"stub","settings":{"a":1}})");
  ASSERT_EQ(created.status, 201) << created.body;
  EXPECT_EQ(Doc(created)["name"].as_string(), "second");
  EXPECT_EQ(Doc(created)["settings"].at("a").as_int64(), 1);
  EXPECT_NE(ErrorOf(Post("/admin/v1/pools", R"({"name":"second","provider":"stub"})"), 409)
                .find("second"),
            std::string::npos);
  EXPECT_NE(ErrorOf(Post("/admin/v1/pools", R"({"name":"x"})"), 400).find("'provider'"),
            std::string::npos);
  EXPECT_NE(ErrorOf(Post("/admin/v1/pools", R"({"name":"x","provider":1})"), 400)
                .find("must be a string"),
            std::string::npos);
  EXPECT_NE(ErrorOf(Post("/admin/v1/pools", "{not json"), 400).find("not valid JSON"),
            std::string::npos);
  ErrorOf(Post("/admin/v1/pools", "[1,2]"), 400);
  ErrorOf(Post("/admin/v1/pools", R"({"name":"y","provider":"stub","settings":[1]})"), 400);

  Import({kUpstreamSecrets[0]}, "active");
  Import({kUpstreamSecrets[1], kUpstreamSecrets[2]}, "backup");
  HttpResponse status = Get("/admin/v1/pools/main");
  ASSERT_EQ(status.status, 200) << status.body;
  json::object counts = Doc(status)["counts"].as_object();
  EXPECT_EQ(counts["active"].as_int64(), 1);
  EXPECT_EQ(counts["backup"].as_int64(), 2);
  EXPECT_EQ(counts["total"].as_int64(), 3);
  ErrorOf(Get("/admin/v1/pools/nope"), 404);
  ErrorOf(Get("/admin/v1/nothing-here"), 404);
  ErrorOf(Get("/admin/v2/pools"), 404);
  ErrorOf(Send("PUT", "/admin/v1/pools"), 405);
}

TEST_F(AdminApiTest, KeysImportListAndStateChanges) {
  Start();
  std::vector<int64_t> active = Import({kUpstreamSecrets[0], kUpstreamSecrets[1]}, "active");
  ASSERT_EQ(active.size(), 2u);
  // A key file (the CLI's formats): CSV with a budget.
  HttpResponse csv = Post("/admin/v1/pools/main/keys",
                          json::serialize(json::object{
                              {"text", "key,budget,label\n" + kUpstreamSecrets[2] + ",5,spare\n"},
                              {"state", "backup"}}));
  ASSERT_EQ(csv.status, 201) << csv.body;
  const int64_t backup = Doc(csv)["inserted_ids"].as_array()[0].as_int64();

  // Duplicates: nothing written, each named masked with the existing key's id.
  HttpResponse dup = Post("/admin/v1/pools/main/keys",
                          json::serialize(json::object{
                              {"keys", json::array{json::value(kUpstreamSecrets[3]),
                                                   json::value(kUpstreamSecrets[0])}}}));
  EXPECT_NE(ErrorOf(dup, 409).find("1 of 2 keys are duplicates"), std::string::npos);
  json::object dup_doc = Doc(dup)["error"].as_object();
  EXPECT_EQ(dup_doc["duplicates"].as_array()[0].at("existing_key_id").as_int64(), active[0]);
  EXPECT_EQ(dup_doc["duplicates"].as_array()[0].at("key").as_string(), "sk-…aaaa");
  HttpResponse skipped = Post("/admin/v1/pools/main/keys",
                              json::serialize(json::object{
                                  {"keys", json::array{json::value(kUpstreamSecrets[3]),
                                                       json::value(kUpstreamSecrets[0])}},
                                  {"skip_duplicates", true}}));
  ASSERT_EQ(skipped.status, 201) << skipped.body;
  EXPECT_EQ(Doc(skipped)["inserted"].as_int64(), 1);
  const int64_t fourth = Doc(skipped)["inserted_ids"].as_array()[0].as_int64();

  ErrorOf(Post("/admin/v1/pools/main/keys", R"({"keys":["a"],"state":"retired"})"), 400);
  ErrorOf(Post("/admin/v1/pools/main/keys", R"({"keys":["a b"]})"), 400);
  ErrorOf(Post("/admin/v1/pools/main/keys", R"({"keys":["a\nb"]})"), 400);
  ErrorOf(Post("/admin/v1/pools/main/keys", R"({})"), 400);
  ErrorOf(Post("/admin/v1/pools/nope/keys", R"({"keys":["sk-zzzzzzzzzzzzzzzz"]})"), 404);

  HttpResponse list = Get("/admin/v1/keys?pool=main&state=active");
  ASSERT_EQ(list.status, 200) << list.body;
  json::object listing = Doc(list);
  EXPECT_EQ(listing["keys"].as_array().size(), 3u);
  EXPECT_EQ(listing["keys"].as_array()[0].at("key").as_string(), "sk-…aaaa");
  EXPECT_EQ(listing["counts"].at("active").as_int64(), 3);
  ErrorOf(Get("/admin/v1/keys?state=sleeping"), 400);
  ErrorOf(Get("/admin/v1/keys?pool=nope"), 404);

  HttpResponse one = Get("/admin/v1/keys/" + std::to_string(backup));
  ASSERT_EQ(one.status, 200) << one.body;
  EXPECT_EQ(Doc(one)["state"].as_string(), "backup");
  EXPECT_EQ(Doc(one)["budget_micros"].as_int64(), 5'000'000);
  ErrorOf(Get("/admin/v1/keys/999"), 404);
  ErrorOf(Get("/admin/v1/keys/abc"), 400);

  const std::string k0 = "/admin/v1/keys/" + std::to_string(active[0]);
  HttpResponse cool = Post(k0 + "/cooldown", R"({"seconds":60,"reason":"test"})");
  ASSERT_EQ(cool.status, 200) << cool.body;
  EXPECT_EQ(Doc(cool)["state"].as_string(), "cooling");
  ErrorOf(Post(k0 + "/cooldown", R"({"reason":"x"})"), 400);
  ErrorOf(Post(k0 + "/cooldown", R"({"seconds":"x"})"), 400);
  ErrorOf(Post("/admin/v1/keys/999/cooldown", R"({"seconds":5})"), 404);
  ASSERT_EQ(Post(k0 + "/exhaust", R"({"reason":"spent"})").status, 200);
  EXPECT_NE(ErrorOf(Post(k0 + "/exhaust", "{}"), 409).find("is exhausted"), std::string::npos);
  EXPECT_NE(ErrorOf(Post(k0 + "/cooldown", R"({"seconds":5})"), 409).find("only active or cooling"),
            std::string::npos);
  ErrorOf(Post(k0 + "/restore", R"({"as":"retired"})"), 400);
  HttpResponse restored = Post(k0 + "/restore", R"({"as":"active"})");
  ASSERT_EQ(restored.status, 200) << restored.body;
  EXPECT_NE(ErrorOf(Post(k0 + "/restore", "{}"), 409).find("already active"), std::string::npos);

  // Manual rotation: the backup takes the key's place; a second one finds it rotated already.
  HttpResponse rotated = Post(k0 + "/rotate", R"({"reason":"leaked"})");
  ASSERT_EQ(rotated.status, 200) << rotated.body;
  EXPECT_EQ(Doc(rotated)["outcome"].as_string(), "rotated");
  EXPECT_EQ(Doc(rotated)["new_key_id"].as_int64(), backup);
  EXPECT_NE(ErrorOf(Post(k0 + "/rotate", R"({"reason":"again"})"), 409).find("already rotated"),
            std::string::npos);
  HttpResponse no_backup =
      Post("/admin/v1/keys/" + std::to_string(fourth) + "/rotate", R"({"reason":"gone"})");
  ASSERT_EQ(no_backup.status, 200) << no_backup.body;
  EXPECT_EQ(Doc(no_backup)["outcome"].as_string(), "no_backup");

  ASSERT_EQ(Delete("/admin/v1/keys/" + std::to_string(active[1])).status, 200);
  ErrorOf(Delete("/admin/v1/keys/" + std::to_string(active[1])), 404);
  ErrorOf(Post("/admin/v1/keys/1/fly", "{}"), 404);
}

TEST_F(AdminApiTest, ProxiesAndBindings) {
  Start();
  std::vector<int64_t> ids = Import({kUpstreamSecrets[0]}, "active");
  HttpResponse added = Post("/admin/v1/proxies",
                            std::string(R"({"url":"http://user:)") + kProxyPassword +
                                R"(@127.0.0.1:3128"})");
  ASSERT_EQ(added.status, 201) << added.body;
  json::object proxy = Doc(added);
  EXPECT_TRUE(proxy["has_password"].as_bool());
  const int64_t proxy_id = proxy["id"].as_int64();
  ErrorOf(Post("/admin/v1/proxies", R"({"url":"ftp://nope"})"), 400);
  ErrorOf(Post("/admin/v1/proxies", R"({})"), 400);

  const std::string bind = json::serialize(
      json::object{{"key_id", ids[0]}, {"proxy_id", proxy_id}, {"priority", 5}});
  ASSERT_EQ(Post("/admin/v1/bindings", bind).status, 201);
  ASSERT_EQ(Post("/admin/v1/bindings", bind).status, 200) << "an update, not a new binding";
  ErrorOf(Post("/admin/v1/bindings", R"({"key_id":999,"proxy_id":1})"), 404);
  ErrorOf(Post("/admin/v1/bindings", R"({"key_id":1})"), 400);
  HttpResponse bindings = Get("/admin/v1/bindings?pool=main");
  ASSERT_EQ(bindings.status, 200) << bindings.body;
  ASSERT_EQ(Doc(bindings)["bindings"].as_array().size(), 1u);
  EXPECT_EQ(Doc(bindings)["bindings"].as_array()[0].at("priority").as_int64(), 5);

  HttpResponse proxies = Get("/admin/v1/proxies");
  ASSERT_EQ(proxies.status, 200) << proxies.body;
  EXPECT_EQ(Doc(proxies)["proxies"].as_array()[0].at("bound_keys").as_int64(), 1);

  const std::string unbind =
      "/admin/v1/bindings/" + std::to_string(ids[0]) + "/" + std::to_string(proxy_id);
  ASSERT_EQ(Delete(unbind).status, 200);
  ErrorOf(Delete(unbind), 404);
  ASSERT_EQ(Delete("/admin/v1/proxies/" + std::to_string(proxy_id)).status, 200);
  ErrorOf(Delete("/admin/v1/proxies/" + std::to_string(proxy_id)), 404);
}

TEST_F(AdminApiTest, HistoriesFilterAndPage) {
  Start();
  std::vector<int64_t> active = Import({kUpstreamSecrets[0], kUpstreamSecrets[1]}, "active");
  Import({kUpstreamSecrets[2], kUpstreamSecrets[3]}, "backup");
  for (int64_t id : active) {
    ASSERT_EQ(Post("/admin/v1/keys/" + std::to_string(id) + "/rotate", R"({"reason":"r"})").status,
              200);
  }
  HttpResponse first = Get("/admin/v1/rotations?pool=main&limit=1");
  ASSERT_EQ(first.status, 200) << first.body;
  json::object page = Doc(first);
  ASSERT_EQ(page["rotations"].as_array().size(), 1u);
  EXPECT_EQ(page["rotations"].as_array()[0].at("failed_key_id").as_int64(), active[1]);
  EXPECT_EQ(page["rotations"].as_array()[0].at("actor").as_string(), "admin:alice");
  const int64_t next = page["next_before_id"].as_int64();
  json::object second =
      Doc(Get("/admin/v1/rotations?pool=main&limit=1&before_id=" + std::to_string(next)));
  ASSERT_EQ(second["rotations"].as_array().size(), 1u);
  EXPECT_EQ(second["rotations"].as_array()[0].at("failed_key_id").as_int64(), active[0]);
  json::object by_key = Doc(Get("/admin/v1/rotations?key_id=" + std::to_string(active[0])));
  EXPECT_EQ(by_key["rotations"].as_array().size(), 1u);
  ErrorOf(Get("/admin/v1/rotations?limit=0"), 400);
  ErrorOf(Get("/admin/v1/rotations?before_id=x"), 400);
  ErrorOf(Get("/admin/v1/rotations?pool=nope"), 404);

  store::SpendRecord spend;
  spend.key_id = active[0];
  spend.pool_id = store_->GetPool("main")->id;
  spend.spend_micros = 1'500'000;
  spend.action = "none";
  ASSERT_TRUE(store_->AddSpendRecord(spend).ok());
  json::object spends = Doc(Get("/admin/v1/spend?pool=main"));
  ASSERT_EQ(spends["spend"].as_array().size(), 1u);
  EXPECT_EQ(spends["spend"].as_array()[0].at("spend_usd").as_string(), FormatMicrosAsUsd(1'500'000));

  std::vector<store::UsageRecord> usage;
  for (int i = 0; i < 3; ++i) {
    store::UsageRecord u;
    u.request_id = "req-" + std::to_string(i);
    u.upstream_key_id = active[0];
    u.pool_id = spend.pool_id;
    u.model = "gpt-test";
    u.input_tokens = 10 + i;
    u.created_at_ms = 1000 + i;
    usage.push_back(u);
  }
  ASSERT_EQ(store_->InsertUsage(usage).value(), 3);
  json::object used = Doc(Get("/admin/v1/usage?limit=2"));
  ASSERT_EQ(used["usage"].as_array().size(), 2u);
  EXPECT_EQ(used["usage"].as_array()[0].at("request_id").as_string(), "req-2");
  json::object rest =
      Doc(Get("/admin/v1/usage?limit=2&before_id=" +
              std::to_string(used["next_before_id"].as_int64())));
  ASSERT_EQ(rest["usage"].as_array().size(), 1u);
  EXPECT_TRUE(rest["next_before_id"].is_null());

  // The audit log: every write, by whom, with its result; never a secret (TearDown checks).
  ErrorOf(Post("/admin/v1/keys/999/exhaust", "{}"), 404);
  json::object audit = Doc(Get("/admin/v1/audit?limit=10"));
  json::array entries = audit["audit"].as_array();
  ASSERT_GE(entries.size(), 5u);
  EXPECT_EQ(entries[0].at("action").as_string(), "keys.exhaust");
  EXPECT_EQ(entries[0].at("target").as_string(), "key 999");
  EXPECT_EQ(entries[0].at("result").as_string().subview().substr(0, 5), "404: ");
  EXPECT_EQ(entries[0].at("admin").as_string(), "alice");
  EXPECT_EQ(entries[1].at("action").as_string(), "keys.rotate");
  EXPECT_EQ(entries[1].at("result").as_string(), "ok");
}

TEST_F(AdminApiTest, ReloadUsesTheSameReloadAsSighup) {
  Start();
  EXPECT_NE(ErrorOf(Post("/admin/v1/reload", ""), 409).find("without a config file"),
            std::string::npos);
  app_->Shutdown();
  app_.reset();

  const std::string path = location_->dir() + "/keygate.toml";
  { std::ofstream(path) << ConfigText(); }
  Start("", path);
  HttpResponse ok = Post("/admin/v1/reload", "");
  ASSERT_EQ(ok.status, 200) << ok.body;
  EXPECT_TRUE(Doc(ok)["reloaded"].as_bool());
  { std::ofstream(path) << "[server\nbroken"; }
  EXPECT_NE(ErrorOf(Post("/admin/v1/reload", ""), 400).find("config not reloaded"),
            std::string::npos);
}

TEST_F(AdminApiTest, CorsIsOffByDefault) {
  Start();
  HttpResponse r = Send("GET", "/admin/v1/pools", "", "", {{"Origin", "https://evil.example"}});
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.headers.count("access-control-allow-origin"), 0u);
  ErrorOf(Send("OPTIONS", "/admin/v1/pools", "", "-", {{"Origin", "https://evil.example"}}), 403);
}

TEST_F(AdminApiTest, CorsEchoesOnlyConfiguredOrigins) {
  Start("[admin]\ncors_origins = [\"https://ops.example.com\"]\n");
  HttpResponse ok = Send("GET", "/admin/v1/pools", "", "", {{"Origin", "https://ops.example.com"}});
  ASSERT_EQ(ok.status, 200);
  EXPECT_EQ(ok.headers["access-control-allow-origin"], "https://ops.example.com");
  EXPECT_EQ(ok.headers.count("access-control-allow-credentials"), 0u);
  HttpResponse preflight = Send("OPTIONS", "/admin/v1/pools", "", "-",
                                {{"Origin", "https://ops.example.com"},
                                 {"Access-Control-Request-Method", "POST"}});
  EXPECT_EQ(preflight.status, 204);
  EXPECT_NE(preflight.headers["access-control-allow-headers"].find("authorization"),
            std::string::npos);
  HttpResponse other = Send("GET", "/admin/v1/pools", "", "", {{"Origin", "https://evil.example"}});
  EXPECT_EQ(other.headers.count("access-control-allow-origin"), 0u);
}

TEST_F(AdminApiTest, CorsWildcardIsRefusedByTheConfig) {
  auto cfg = config::ParseConfig("[admin]\ncors_origins = [\"*\"]\n", "t.toml");
  ASSERT_FALSE(cfg.ok());
  EXPECT_NE(cfg.status().message().find("exact origins"), std::string::npos);
  EXPECT_FALSE(config::ParseConfig("[admin]\ncors_origins = [\"https://a.b/path\"]\n", "t").ok());
  EXPECT_FALSE(config::ParseConfig("[admin]\nunknown = 1\n", "t").ok());
}

TEST_F(AdminApiTest, OversizedBodyIs413InTheAdminShape) {
  Start();
  std::string big = R"({"text":")" + std::string(8192, 'a') + R"("})";
  ErrorOf(Post("/admin/v1/pools/main/keys", big), 413);
}

TEST_F(AdminApiTest, StoreErrorIsAnErrorDocumentNotA401) {
  Start();
  // The admin keys' table vanishes behind keygate's back: the store answers with an error, the
  // API with a 5xx error document (not a crash, not a 401 that would send the operator after
  // their key). An unreachable store is 503 (Unavailable); a broken schema is what SQLite says.
  ASSERT_TRUE(ExecRawSql(*location_, "DROP TABLE admin_keys").ok());
  HttpResponse r = Get("/admin/v1/pools");
  EXPECT_TRUE(r.status == 503 || r.status == 500) << r.status << " " << r.body;
  EXPECT_NE(r.body.find("\"error\""), std::string::npos);
}

// ---- client keys, usage reports, spend against budget

// Runs on SQLite and on the throw-away PostgreSQL (…/postgres).
class AdminApiStoreTest : public AdminApiTest, public ::testing::WithParamInterface<StoreKind> {
 protected:
  StoreKind Kind() const override { return GetParam(); }

  // Creates a client key through the API: 201 with the secret, noted as shown once.
  json::object CreateClient(const std::string& body,
                            const std::string& path = "/admin/v1/client-keys") {
    HttpResponse r = Post(path, body);
    EXPECT_EQ(r.status, 201) << r.body;
    json::object doc = Doc(r);
    if (const json::value* key = doc.if_contains("key"); key && key->is_string()) {
      one_time_.emplace_back(key->as_string());
    }
    return doc;
  }

  // The audit entry of `action` on `target`, newest first; null when there is none.
  json::object AuditEntry(const std::string& action, const std::string& target) {
    json::object audit = Doc(Get("/admin/v1/audit?limit=200"));
    for (const json::value& v : audit["audit"].as_array()) {
      if (v.at("action").as_string() == action && v.at("target").as_string() == target) {
        return v.as_object();
      }
    }
    return {};
  }
};

TEST_P(AdminApiStoreTest, ClientKeysSecretOnceCreditsLimitsSubKeysAndLifecycle) {
  Start();
  json::object acme = CreateClient(
      R"({"name":"acme","credits_usd":"25.5","models":["gpt-test"],"rpm":60,"concurrency":4,)"
      R"("expires_at":"2030-01-01"})");
  ASSERT_TRUE(acme.contains("key"));
  const std::string secret(acme["key"].as_string());
  EXPECT_EQ(secret.rfind("kg-", 0), 0u);
  EXPECT_EQ(acme["hint"].as_string(), MaskSecret(secret));
  EXPECT_EQ(acme["credits_micros"].as_int64(), 25'500'000);
  EXPECT_EQ(acme["credits_usd"].as_string(), "25.5");
  EXPECT_EQ(acme["rpm"].as_int64(), 60);
  EXPECT_TRUE(acme["tpm"].is_null());
  EXPECT_EQ(acme["concurrency"].as_int64(), 4);
  EXPECT_EQ(acme["models"].as_array().size(), 1u);
  EXPECT_EQ(acme["expires_at"].as_string().subview().substr(0, 10), "2030-01-01");
  const int64_t id = acme["id"].as_int64();
  const std::string k = "/admin/v1/client-keys/" + std::to_string(id);
  // Only its hash is stored.
  EXPECT_EQ(store_->GetClientKey(id)->key_hash, TestSecrets()->HashClientKey(secret));

  // Listed and read by hint, never with the secret (TearDown: it is in one response only).
  json::array rows = Doc(Get("/admin/v1/client-keys"))["client_keys"].as_array();
  ASSERT_EQ(rows.size(), 2u);  // "app" (SetUp) and acme
  EXPECT_EQ(rows[1].at("hint"), acme["hint"]);
  EXPECT_FALSE(rows[1].as_object().contains("key"));
  json::object one = Doc(Get(k));
  EXPECT_EQ(one["name"].as_string(), "acme");
  EXPECT_EQ(one["usage"].at("requests").as_int64(), 0);
  ErrorOf(Get("/admin/v1/client-keys/999"), 404);
  ErrorOf(Get("/admin/v1/client-keys/x"), 400);

  // Bad input: one error shape, a message that names the field.
  const std::string create = "/admin/v1/client-keys";
  EXPECT_NE(ErrorOf(Post(create, "{}"), 400).find("'name'"), std::string::npos);
  EXPECT_NE(
      ErrorOf(Post(create, R"({"name":"x","credits_usd":12.5})"), 400).find("string of dollars"),
      std::string::npos);
  EXPECT_NE(ErrorOf(Post(create, R"({"name":"x","credits_usd":"lots"})"), 400)
                .find("credits must be an amount in USD"),
            std::string::npos);
  ErrorOf(Post(create, R"({"name":"x","credits_usd":"1","credits_micros":1})"), 400);
  ErrorOf(Post(create, R"({"name":"x","rpm":"many"})"), 400);
  ErrorOf(Post(create, R"({"name":"x","expires_at":"soon"})"), 400);
  ErrorOf(Post(create, R"({"name":"x","models":"gpt-test"})"), 400);
  EXPECT_NE(
      ErrorOf(Post(create, R"({"name":"x","colour":"red"})"), 400).find("unknown field 'colour'"),
      std::string::npos);
  ErrorOf(Post(create, R"({"name":"x","caps":[{"model":"gpt-test","cap_usd":null}]})"), 400);
  ErrorOf(Post(create, R"({"name":"  "})"), 400);

  // Credits: top up, take back, set, unlimited; integer micro-USD throughout.
  HttpResponse topped = Post(k + "/credits", R"({"add_usd":"4.5"})");
  ASSERT_EQ(topped.status, 200) << topped.body;
  EXPECT_EQ(Doc(topped)["credits_micros"].as_int64(), 30'000'000);
  EXPECT_EQ(Doc(Post(k + "/credits", R"({"add_micros":-1})"))["credits_micros"].as_int64(),
            29'999'999);
  EXPECT_EQ(Doc(Post(k + "/credits", R"({"set_micros":1000000})"))["credits_usd"].as_string(), "1");
  EXPECT_EQ(Doc(Post(k + "/credits", R"({"set_usd":"0.000001"})"))["credits_micros"].as_int64(), 1);
  ErrorOf(Post(k + "/credits", R"({"add_usd":"1","set_usd":"2"})"), 400);
  ErrorOf(Post(k + "/credits", "{}"), 400);
  ErrorOf(Post(k + "/credits", R"({"add_usd":1})"), 400);
  EXPECT_TRUE(Doc(Post(k + "/credits", R"({"set_usd":null})"))["credits_micros"].is_null());
  ErrorOf(Post(k + "/credits", R"({"add_usd":"1"})"), 409);  // unlimited: nothing to add to
  ErrorOf(Post("/admin/v1/client-keys/999/credits", R"({"add_usd":"1"})"), 404);

  // Limits: given fields change, the others stay; null clears.
  HttpResponse limited =
      Post(k + "/limits", R"({"rpm":null,"tpm":1000,"models":null,"expires_at":null})");
  ASSERT_EQ(limited.status, 200) << limited.body;
  json::object lim = Doc(limited);
  EXPECT_TRUE(lim["rpm"].is_null());
  EXPECT_EQ(lim["tpm"].as_int64(), 1000);
  EXPECT_EQ(lim["concurrency"].as_int64(), 4);
  EXPECT_TRUE(lim["models"].as_array().empty());
  EXPECT_TRUE(lim["expires_at"].is_null());
  ErrorOf(Post(k + "/limits", R"({"credits_usd":"1"})"), 400);
  ErrorOf(Post(k + "/limits", R"({"concurrency":-1})"), 400);

  // Sub-keys spend the parent's credits under their own per-model caps.
  json::object sub = CreateClient(
      R"({"name":"friend","caps":[{"model":"gpt-test","cap_usd":"2"},{"model":"*","cap_micros":500000}]})",
      k + "/sub-keys");
  EXPECT_EQ(sub["parent_id"].as_int64(), id);
  ASSERT_EQ(sub["caps"].as_array().size(), 2u);
  const int64_t sub_id = sub["id"].as_int64();
  const std::string sk = k + "/sub-keys/" + std::to_string(sub_id);
  ErrorOf(Post(k + "/sub-keys", R"({"name":"y","credits_usd":"1"})"), 400);
  ErrorOf(Post("/admin/v1/client-keys/999/sub-keys", R"({"name":"y"})"), 404);
  ErrorOf(Get("/admin/v1/client-keys/999/sub-keys"), 404);
  json::array subs = Doc(Get(k + "/sub-keys"))["sub_keys"].as_array();
  ASSERT_EQ(subs.size(), 1u);
  EXPECT_EQ(subs[0].at("name").as_string(), "friend");
  EXPECT_EQ(Doc(Get(sk))["name"].as_string(), "friend");
  json::object capped = Doc(Post(sk + "/limits", R"({"caps":[{"model":"*","cap_usd":null}]})"));
  ASSERT_EQ(capped["caps"].as_array().size(), 1u);
  EXPECT_EQ(capped["caps"].as_array()[0].at("cap_micros").as_int64(), 2'000'000);
  ErrorOf(Post(sk + "/credits", R"({"add_usd":"1"})"), 409);
  ErrorOf(Get("/admin/v1/client-keys/1/sub-keys/" + std::to_string(sub_id)), 404);
  EXPECT_NE(ErrorOf(Delete(k), 409).find("sub-key"), std::string::npos);

  // Disable, enable, roll (a new secret, once).
  EXPECT_FALSE(Doc(Post(k + "/disable", ""))["enabled"].as_bool());
  EXPECT_FALSE(store_->GetClientKey(id)->enabled);
  EXPECT_TRUE(Doc(Post(k + "/enable", ""))["enabled"].as_bool());
  HttpResponse rolled = Post(k + "/roll", "");
  ASSERT_EQ(rolled.status, 200) << rolled.body;
  const std::string fresh(Doc(rolled)["key"].as_string());
  one_time_.push_back(fresh);
  EXPECT_NE(fresh, secret);
  EXPECT_EQ(Doc(rolled)["hint"].as_string(), MaskSecret(fresh));
  EXPECT_EQ(store_->GetClientKey(id)->key_hash, TestSecrets()->HashClientKey(fresh));
  ErrorOf(Post("/admin/v1/client-keys/999/roll", ""), 404);
  ErrorOf(Post(k + "/fly", "{}"), 404);
  ErrorOf(Delete("/admin/v1/client-keys"), 404);
  ErrorOf(Send("DELETE", "/admin/v1/client-keys/"), 404);
  ErrorOf(Get("/admin/v1/usage/report/x"), 404);
  ErrorOf(Post("/admin/v1/spend/stats", "{}"), 404);

  ASSERT_EQ(Delete(sk).status, 200);
  ErrorOf(Get(sk), 404);
  ASSERT_EQ(Delete(k).status, 200);
  ErrorOf(Delete(k), 404);

  // Audited by id and name, never with the secret (TearDown).
  const std::string named = "client key " + std::to_string(id) + " (acme)";
  for (const char* action : {"client_keys.create", "client_keys.credits", "client_keys.limits",
                             "client_keys.disable", "client_keys.roll"}) {
    json::object entry = AuditEntry(action, named);
    ASSERT_FALSE(entry.empty()) << action;
    EXPECT_EQ(entry["result"].as_string(), "ok");
    EXPECT_EQ(entry["admin"].as_string(), "alice");
  }
  EXPECT_FALSE(
      AuditEntry("client_keys.create_sub_key", "client key " + std::to_string(sub_id) + " (friend)")
          .empty());
  EXPECT_EQ(AuditEntry("client_keys.delete", "client key " + std::to_string(id))["result"]
                .as_string()
                .subview()
                .substr(0, 4),
            "404:");  // the newest: deleting it again
}

TEST_P(AdminApiStoreTest, UsageReportIsAggregatedServerSideAndMatchesTheCli) {
  Start();
  Import({kUpstreamSecrets[0]}, "active");
  json::object a = CreateClient(R"({"name":"team-a","credits_usd":"10"})");
  json::object b = CreateClient(R"({"name":"team-b"})");
  const int64_t a_id = a["id"].as_int64(), b_id = b["id"].as_int64();
  app_->RefreshNowForTest();
  // Real requests through the gateway; the stub reports 11 prompt and 7 completion tokens, so
  // gpt-test ($2 / $10 per MTok) costs 22 + 70 = 92 µUSD and gpt-other ($1 / $4) 11 + 28 = 39.
  auto chat = [&](const json::string& key, const std::string& model) {
    return HttpPost(base_ + "/v1/chat/completions", std::string(key),
                    R"({"model":")" + model + R"(","messages":[{"role":"user","content":"hi"}]})")
        .status;
  };
  for (int i = 0; i < 3; ++i) ASSERT_EQ(chat(a["key"].as_string(), "gpt-test"), 200);
  ASSERT_EQ(chat(a["key"].as_string(), "gpt-other"), 200);
  for (int i = 0; i < 2; ++i) ASSERT_EQ(chat(b["key"].as_string(), "gpt-test"), 200);
  // Shutdown flushes the usage queue; a new instance on the same store reads it.
  app_->Shutdown();
  app_.reset();
  Start();

  HttpResponse full = Get("/admin/v1/usage/report");
  ASSERT_EQ(full.status, 200) << full.body;
  json::object report = Doc(full);
  const json::array& rows = report["usage"].as_array();
  ASSERT_EQ(rows.size(), 3u) << full.body;
  EXPECT_EQ(rows[0].at("client_key_id").as_int64(), a_id);
  EXPECT_EQ(rows[0].at("model").as_string(), "gpt-other");
  EXPECT_EQ(rows[0].at("cost_micros").as_int64(), 39);
  EXPECT_EQ(rows[1].at("name").as_string(), "team-a");
  EXPECT_EQ(rows[1].at("requests").as_int64(), 3);
  EXPECT_EQ(rows[1].at("input_tokens").as_int64(), 33);
  EXPECT_EQ(rows[1].at("output_tokens").as_int64(), 21);
  EXPECT_EQ(rows[1].at("cost_micros").as_int64(), 276);
  EXPECT_EQ(rows[2].at("client_key_id").as_int64(), b_id);
  EXPECT_EQ(report["total"].at("requests").as_int64(), 6);
  EXPECT_EQ(report["total"].at("cost_micros").as_int64(), 499);
  EXPECT_EQ(report["total"].at("cost_usd").as_string(), "0.000499");

  // The same numbers as `keygate usage --json` (the CLI calls the same operation).
  std::istringstream in;
  std::ostringstream out, err;
  cli::Context ctx{*store_, *TestSecrets(), in, out, err, /*json=*/true};
  ASSERT_EQ(cli::UsageReport(ctx, {}), 0) << err.str();
  json::object from_cli = json::parse(out.str()).as_object();
  EXPECT_EQ(from_cli["usage"], report["usage"]);
  EXPECT_EQ(from_cli["total"], report["total"]);

  // Coarser groups are folded on the server.
  json::array by_key = Doc(Get("/admin/v1/usage/report?group=client_key"))["usage"].as_array();
  ASSERT_EQ(by_key.size(), 2u);
  EXPECT_EQ(by_key[0].at("requests").as_int64(), 4);
  EXPECT_EQ(by_key[0].at("cost_micros").as_int64(), 315);
  EXPECT_FALSE(by_key[0].as_object().contains("model"));
  EXPECT_FALSE(by_key[0].as_object().contains("day"));
  json::array by_model = Doc(Get("/admin/v1/usage/report?group=model"))["usage"].as_array();
  ASSERT_EQ(by_model.size(), 2u);
  EXPECT_EQ(by_model[1].at("model").as_string(), "gpt-test");
  EXPECT_EQ(by_model[1].at("requests").as_int64(), 5);
  EXPECT_EQ(by_model[1].at("cost_micros").as_int64(), 460);
  json::object only_b =
      Doc(Get("/admin/v1/usage/report?group=day,model&client_key_id=" + std::to_string(b_id)));
  ASSERT_EQ(only_b["usage"].as_array().size(), 1u);
  EXPECT_EQ(only_b["total"].at("cost_micros").as_int64(), 184);
  EXPECT_EQ(Doc(Get("/admin/v1/usage/report?model=gpt-other"))["total"].at("requests").as_int64(),
            1);
  EXPECT_EQ(Doc(Get("/admin/v1/usage/report?group="))["usage"].as_array().size(), 1u);

  // Time bounds: `to` as a date includes that day.
  const std::string day(rows[0].at("day").as_string());
  const int64_t today_ms = *ParseTimeMs(day);
  const std::string tomorrow = FormatTimeMs(today_ms + 86'400'000).substr(0, 10);
  const std::string yesterday = FormatTimeMs(today_ms - 86'400'000).substr(0, 10);
  EXPECT_EQ(Doc(Get("/admin/v1/usage/report?from=" + day + "&to=" + day))["total"]
                .at("requests")
                .as_int64(),
            6);
  EXPECT_EQ(Doc(Get("/admin/v1/usage/report?from=" + tomorrow))["usage"].as_array().size(), 0u);
  EXPECT_EQ(Doc(Get("/admin/v1/usage/report?to=" + yesterday))["total"].at("requests").as_int64(),
            0);
  ErrorOf(Get("/admin/v1/usage/report?from=" + tomorrow + "&to=" + yesterday), 400);
  EXPECT_NE(ErrorOf(Get("/admin/v1/usage/report?group=colour"), 400).find("colour"),
            std::string::npos);
  ErrorOf(Get("/admin/v1/usage/report?from=soon"), 400);
  ErrorOf(Get("/admin/v1/usage/report?client_key_id=0"), 400);

  // A key's own totals; its credits paid exactly what its usage cost.
  json::object team_a = Doc(Get("/admin/v1/client-keys/" + std::to_string(a_id)));
  EXPECT_EQ(team_a["usage"].at("requests").as_int64(), 4);
  EXPECT_EQ(team_a["usage"].at("cost_micros").as_int64(), 315);
  EXPECT_EQ(team_a["credits_micros"].as_int64(), 10'000'000 - 315);
}

TEST_P(AdminApiStoreTest, TrafficIsBucketedServerSideAndMatchesTheCli) {
  Start();
  Import({kUpstreamSecrets[0]}, "active");
  json::object a = CreateClient(R"({"name":"team-a"})");
  json::object b = CreateClient(R"({"name":"team-b"})");
  const int64_t a_id = a["id"].as_int64();
  app_->RefreshNowForTest();
  // Real requests through the gateway, counted from the store whichever instance served them.
  auto chat = [&](const json::string& key) {
    return HttpPost(base_ + "/v1/chat/completions", std::string(key),
                    R"({"model":"gpt-test","messages":[{"role":"user","content":"hi"}]})")
        .status;
  };
  for (int i = 0; i < 3; ++i) ASSERT_EQ(chat(a["key"].as_string()), 200);
  ASSERT_EQ(chat(b["key"].as_string()), 200);
  app_->Shutdown();  // flushes the usage queue
  app_.reset();
  Start();

  HttpResponse recent = Get("/admin/v1/traffic?since=1h&bucket=1m");
  ASSERT_EQ(recent.status, 200) << recent.body;
  json::object doc = Doc(recent);
  EXPECT_EQ(doc["bucket_ms"].as_int64(), 60'000);
  EXPECT_EQ(doc["from_ms"].as_int64() % 60'000, 0) << "buckets start on the minute";
  const size_t buckets = doc["buckets"].as_array().size();
  EXPECT_TRUE(buckets == 60u || buckets == 61u) << buckets;  // every bucket, empty ones too
  EXPECT_EQ(doc["total"].at("requests").as_int64(), 4);
  EXPECT_EQ(doc["total"].at("errors").at("total").as_int64(), 0);
  EXPECT_EQ(doc["total"].at("input_tokens").as_int64(), 44);
  EXPECT_EQ(doc["total"].at("cost_micros").as_int64(), 368);
  EXPECT_EQ(Doc(Get("/admin/v1/traffic?since=1h&client_key_id=" + std::to_string(a_id)))["total"]
                .at("requests")
                .as_int64(),
            3);
  EXPECT_EQ(Doc(Get("/admin/v1/traffic?since=1h&pool=main"))["total"].at("requests").as_int64(), 4);
  EXPECT_EQ(
      Doc(Get("/admin/v1/traffic?since=1h&model=gpt-other"))["total"].at("requests").as_int64(), 0);

  // Known records at a fixed time: errors by class, latency percentiles, the bucket edges.
  const int64_t t0 = *ParseTimeMs("2026-01-05T10:00:00Z");
  std::vector<store::UsageRecord> known;
  const int64_t statuses[] = {200, 200, 429, 500, 0, 200};
  for (int i = 0; i < 6; ++i) {
    known.push_back({.request_id = "known-" + std::to_string(i),
                     .model = "gpt-test",
                     .latency_ms = 100 * (i + 1),
                     .ttfb_ms = i == 4 ? 0 : 10 * (i + 1),
                     .status = statuses[i],
                     .created_at_ms = i < 5 ? t0 + i * 1'000 : t0 + 60'000});
  }
  ASSERT_EQ(*store_->InsertUsage(known), 6);
  const std::string window = "from=2026-01-05T10:00:00Z&to=2026-01-05T10:02:00Z&bucket=1m";
  HttpResponse fixed = Get("/admin/v1/traffic?" + window);
  ASSERT_EQ(fixed.status, 200) << fixed.body;
  json::object f = Doc(fixed);
  const json::array& fb = f["buckets"].as_array();
  ASSERT_EQ(fb.size(), 2u) << fixed.body;
  EXPECT_EQ(fb[0].at("start").as_string(), "2026-01-05T10:00:00.000Z");
  EXPECT_EQ(fb[0].at("requests").as_int64(), 5);
  EXPECT_EQ(fb[0].at("errors").at("4xx").as_int64(), 1);
  EXPECT_EQ(fb[0].at("errors").at("5xx").as_int64(), 1);
  EXPECT_EQ(fb[0].at("errors").at("no_answer").as_int64(), 1);
  EXPECT_EQ(fb[0].at("errors").at("total").as_int64(), 3);
  EXPECT_EQ(fb[0].at("latency_ms").at("max").as_int64(), 500);
  EXPECT_EQ(fb[0].at("latency_ms").at("avg").as_int64(), 300);
  EXPECT_EQ(fb[0].at("ttfb_ms").at("count").as_int64(), 4) << "no first byte: not counted";
  EXPECT_EQ(fb[1].at("requests").as_int64(), 1) << "a record on the edge opens the next bucket";
  EXPECT_EQ(f["total"].at("requests").as_int64(), 6);
  EXPECT_EQ(f["total"].at("latency_ms").at("max").as_int64(), 600);

  // The same document as `keygate traffic --json` (the CLI calls the same operation).
  std::istringstream in;
  std::ostringstream out, err;
  cli::Context ctx{*store_, *TestSecrets(), in, out, err, /*json=*/true};
  ASSERT_EQ(
      cli::Traffic(ctx,
                   {.from = "2026-01-05T10:00:00Z", .to = "2026-01-05T10:02:00Z", .bucket = "1m"}),
      0)
      << err.str();
  EXPECT_EQ(json::parse(out.str()), json::value(f));

  // Parameters: one error shape, naming what was wrong.
  EXPECT_NE(ErrorOf(Get("/admin/v1/traffic?since=1d&bucket=10s"), 400).find("more than 1500"),
            std::string::npos);
  EXPECT_NE(ErrorOf(Get("/admin/v1/traffic?bucket=5s"), 400).find("10 s to 1 day"),
            std::string::npos);
  EXPECT_NE(ErrorOf(Get("/admin/v1/traffic?bucket=often"), 400).find("bucket"), std::string::npos);
  ErrorOf(Get("/admin/v1/traffic?since=1h&from=2026-01-05"), 400);
  ErrorOf(Get("/admin/v1/traffic?since=soon"), 400);
  ErrorOf(Get("/admin/v1/traffic?from=2026-01-05T10:00:00Z&to=2026-01-05T09:00:00Z"), 400);
  ErrorOf(Get("/admin/v1/traffic?client_key_id=0"), 400);
  ErrorOf(Get("/admin/v1/traffic?pool=nope"), 404);
}

TEST_F(AdminApiTest, SpendAgainstBudgetPerKeyAndKeysByBandPerPool) {
  const std::string extra = "[pools.second]\nprovider = \"stub\"\nbudget = 10\n";
  Start(extra);
  HttpResponse csv = Post(
      "/admin/v1/pools/main/keys",
      json::serialize(json::object{
          {"text", "key,budget\n" + kUpstreamSecrets[0] + ",10\n" + kUpstreamSecrets[1] + ",10\n" +
                       kUpstreamSecrets[2] + ",10\n" + kUpstreamSecrets[3] + ",\n"}}));
  ASSERT_EQ(csv.status, 201) << csv.body;
  std::vector<int64_t> ids;
  const json::object inserted = Doc(csv);
  for (const auto& v : inserted.at("inserted_ids").as_array()) ids.push_back(v.as_int64());
  ASSERT_EQ(ids.size(), 4u);
  HttpResponse second =
      Post("/admin/v1/pools/second/keys", R"({"keys":["sk-second-pool-key-eeeeeeee"]})");
  ASSERT_EQ(second.status, 201) << second.body;
  const int64_t second_id = Doc(second)["inserted_ids"].as_array()[0].as_int64();
  // The last known spend, as the spend checker stores it.
  ASSERT_TRUE(store_->UpdateSpend(ids[0], 1'000'000, std::nullopt).ok());     // 10 %
  ASSERT_TRUE(store_->UpdateSpend(ids[1], 6'000'000, std::nullopt).ok());     // 60 %
  ASSERT_TRUE(store_->UpdateSpend(ids[2], 9'600'000, std::nullopt).ok());     // 96 %
  ASSERT_TRUE(store_->UpdateSpend(second_id, 9'000'000, std::nullopt).ok());  // 90 % of the pool's
  store::SpendRecord record{.key_id = ids[2],
                            .pool_id = store_->GetPool("main")->id,
                            .spend_micros = 9'600'000,
                            .budget_micros = 10'000'000,
                            .action = "none"};
  ASSERT_TRUE(store_->AddSpendRecord(record).ok());

  HttpResponse all = Get("/admin/v1/spend/stats");
  ASSERT_EQ(all.status, 200) << all.body;
  json::object doc = Doc(all);
  const json::array& pools = doc["pools"].as_array();
  ASSERT_EQ(pools.size(), 2u);
  const json::object& main = pools[0].as_object();
  EXPECT_EQ(main.at("pool").as_string(), "main");
  EXPECT_EQ(main.at("keys").as_int64(), 4);
  EXPECT_EQ(main.at("spend_micros").as_int64(), 16'600'000);
  const json::object& bands = main.at("bands").as_object();
  EXPECT_EQ(bands.at("lt50").as_int64(), 1);
  EXPECT_EQ(bands.at("50-85").as_int64(), 1);
  EXPECT_EQ(bands.at("85-95").as_int64(), 0);
  EXPECT_EQ(bands.at("ge95").as_int64(), 1);
  EXPECT_EQ(bands.at("unknown").as_int64(), 1);
  const json::array& keys = main.at("key_spend").as_array();
  ASSERT_EQ(keys.size(), 4u);
  const json::object& hot = keys[2].as_object();
  EXPECT_EQ(hot.at("key_id").as_int64(), ids[2]);
  EXPECT_EQ(hot.at("key").as_string(), "sk-…cccc");
  EXPECT_EQ(hot.at("band").as_string(), "ge95");
  EXPECT_EQ(hot.at("spend_usd").as_string(), "9.6");
  EXPECT_EQ(hot.at("budget_usd").as_string(), "10");
  EXPECT_EQ(hot.at("budget_source").as_string(), "key");
  EXPECT_DOUBLE_EQ(hot.at("percent").as_double(), 96.0);
  EXPECT_TRUE(hot.at("checked_at").is_string());
  EXPECT_TRUE(keys[0].at("checked_at").is_null());
  EXPECT_EQ(keys[3].at("band").as_string(), "unknown");
  EXPECT_EQ(keys[3].at("budget_source").as_string(), "none");
  EXPECT_TRUE(keys[3].at("percent").is_null());

  json::object only = Doc(Get("/admin/v1/spend/stats?pool=second"));
  ASSERT_EQ(only["pools"].as_array().size(), 1u);
  const json::object& pk = only["pools"].as_array()[0].at("key_spend").as_array()[0].as_object();
  EXPECT_EQ(pk.at("budget_source").as_string(), "pool");
  EXPECT_EQ(pk.at("band").as_string(), "85-95");
  ErrorOf(Get("/admin/v1/spend/stats?pool=nope"), 404);

  // Pool status carries the same bands.
  json::object status = Doc(Get("/admin/v1/pools/main"));
  EXPECT_EQ(status["bands"], main.at("bands"));

  // The same document as `keygate spend stats --json`.
  auto cfg = config::ParseConfig(ConfigText(extra), "test.toml");
  ASSERT_TRUE(cfg.ok());
  std::istringstream in;
  std::ostringstream out, err;
  cli::Context ctx{*store_, *TestSecrets(), in, out, err, /*json=*/true};
  ASSERT_EQ(cli::SpendStats(ctx, {.config = &*cfg}), 0) << err.str();
  EXPECT_EQ(json::parse(out.str()), json::value(doc));
}

TEST_F(AdminApiTest, EveryShapeOfTheNewRoutesIsAnAnswerNotACrash) {
  Start();
  // Every prefix and over-long variant of the client-key, sub-key and report routes, with every
  // method: each answers in the error shape or succeeds; none reads past the path (ASan).
  const std::vector<std::string> paths = {"/client-keys",
                                          "/client-keys/1",
                                          "/client-keys/1/x",
                                          "/client-keys/1/sub-keys",
                                          "/client-keys/1/sub-keys/x",
                                          "/client-keys/1/sub-keys/2",
                                          "/client-keys/1/sub-keys/2/roll",
                                          "/client-keys/1/sub-keys/2/roll/x",
                                          "/client-keys/1/credits/x",
                                          "/client-keys/0",
                                          "/client-keys/-1",
                                          "/usage/report",
                                          "/usage/report/x",
                                          "/spend/stats",
                                          "/spend/stats/x",
                                          "/usage/x",
                                          "/spend/x",
                                          "/traffic",
                                          "/traffic/x"};
  for (const std::string& path : paths) {
    for (const char* method : {"GET", "POST", "DELETE"}) {
      HttpResponse r = Send(method, "/admin/v1" + path, "");
      ASSERT_NE(r.status, 0) << method << " " << path << ": " << r.error;
      if (r.status >= 400) ErrorOf(r, r.status);
    }
  }
  ASSERT_EQ(Get("/admin/v1/whoami").status, 200) << "still serving";
}

INSTANTIATE_TEST_SUITE_P(Stores, AdminApiStoreTest,
                         ::testing::Values(StoreKind::kSqlite, StoreKind::kPostgres),
                         StoreParamName);

// The store goes away under a running server: the admin API answers 503 in its error shape (not
// a 401 that would send the operator after their key, not a crash), and answers again when the
// store is back, with no restart.
class AdminApiStoreDownTest : public AdminApiStoreTest {};

TEST_P(AdminApiStoreDownTest, Answers503InItsErrorShapeAndRecovers) {
  Start();
  ASSERT_EQ(Get("/admin/v1/client-keys").status, 200);
  ASSERT_TRUE(SetPostgresAccepting(*location_, false).ok());
  for (const char* path :
       {"/admin/v1/client-keys", "/admin/v1/usage/report", "/admin/v1/pools", "/admin/v1/whoami"}) {
    HttpResponse r = Get(path);
    std::string message = ErrorOf(r, 503);
    EXPECT_EQ(Doc(r)["error"].at("code").as_string(), "store_unavailable") << path;
    EXPECT_NE(message.find("PostgreSQL"), std::string::npos) << message;
  }
  ErrorOf(Post("/admin/v1/client-keys", R"({"name":"while-down"})"), 503);
  ASSERT_TRUE(SetPostgresAccepting(*location_, true).ok());
  HttpResponse back = Get("/admin/v1/client-keys");
  ASSERT_EQ(back.status, 200) << back.body;
  EXPECT_EQ(Doc(back)["client_keys"].as_array().size(), 1u);  // nothing was written while down
  CreateClient(R"({"name":"after"})");
}

INSTANTIATE_TEST_SUITE_P(Stores, AdminApiStoreDownTest, ::testing::Values(StoreKind::kPostgres),
                         StoreParamName);

}  // namespace
}  // namespace keygate::testing
