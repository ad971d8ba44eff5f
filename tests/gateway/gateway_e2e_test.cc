// The data path end to end, in-process: the real gateway (App: HTTP server, key pools, upstream
// client, usage writer) on a SQLite store, a real upstream stub on loopback, and a real HTTP
// client (libcurl).
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <atomic>
#include <set>
#include <sstream>
#include <thread>

#include "common/strings.h"
#include "config/config.h"
#include "gateway/client_auth.h"
#include "server/server.h"
#include "tests/fakes/upstream_stub.h"
#include "tests/testing/child_process.h"
#include "tests/testing/http_client.h"
#include "tests/testing/store_env.h"

namespace keygate::testing {
namespace {

constexpr char kClientToken[] = "kg-test-client-token-0123456789";

class GatewayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(stub_.Start());
    location_ = std::move(StoreLocation::Create(StoreKind::kSqlite)).value();
    store_ = std::move(OpenTestStore(location_->url())).value();
    ASSERT_TRUE(store_->CreateClientKey("tester", TestSecrets()->HashClientKey(kClientToken),
                                        "kg-…6789").ok());
  }
  void TearDown() override {
    if (app_) app_->Shutdown();
    app_.reset();
    stub_.Stop();
  }

  std::string ConfigText(const std::string& extra = "") {
    return "[server]\nlisten = \"127.0.0.1:0\"\nworkers = 2\n"
           "[store]\npool_refresh_ms = 100\nusage_flush_ms = 20\n"
           "[upstream]\nmax_attempts = 4\nfirst_byte_timeout_ms = 1000\n"
           "[providers.stub]\nbase_url = \"" + stub_.base_url() + "\"\n"
           "[providers.anth]\nbase_url = \"" + stub_.base_url() +
           "\"\nauth = \"x-api-key\"\nformat = \"anthropic-messages\"\n"
           "headers = { \"anthropic-version\" = \"2023-06-01\" }\n"
           "[providers.llm]\nbase_url = \"" + stub_.base_url() + "\"\nclassifier = \"litellm\"\n"
           "[pools.main]\nprovider = \"stub\"\n"
           "[pools.claude]\nprovider = \"anth\"\n"
           "[pools.budget]\nprovider = \"llm\"\n"
           "[[models]]\nid = \"gpt-test\"\naliases = [\"gpt-alias\"]\npool = \"main\"\n"
           "upstream = \"gpt-upstream\"\nprice = { input = 2, output = 10 }\n"
           "[[models]]\nid = \"claude-test\"\npool = \"claude\"\n"
           "[[models]]\nid = \"budget-test\"\npool = \"budget\"\n" + extra;
  }

  void StartGateway(const std::string& extra = "") {
    auto cfg = config::ParseConfig(ConfigText(extra), "test.toml");
    ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
    std::ostringstream out;
    auto app = server::App::Start(std::move(cfg).value(), {}, *store_, TestSecrets(), out);
    ASSERT_TRUE(app.ok()) << app.status().ToString();
    app_ = std::move(app).value();
    base_ = "http://127.0.0.1:" + std::to_string(app_->port());
  }

  // Imports keys into a pool (creating it when missing); returns their ids.
  std::vector<int64_t> Keys(const std::string& pool, const std::vector<std::string>& secrets,
                            store::KeyState state = store::KeyState::kActive) {
    auto p = store_->GetPool(pool);
    int64_t id = p.ok() ? p->id : store_->CreatePool(pool, "stub")->id;
    std::vector<store::NewKey> keys;
    for (const auto& s : secrets) keys.push_back({.secret = s, .state = state});
    return store_->ImportKeys(id, keys)->key_ids;
  }

  HttpResponse Chat(const std::string& body) {
    return HttpPost(base_ + "/v1/chat/completions", kClientToken, body);
  }

  UpstreamStub stub_;
  std::unique_ptr<StoreLocation> location_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<server::App> app_;
  std::string base_;
};

TEST_F(GatewayTest, ChatPassesThroughFaithfullyWithTheModelMapped) {
  Keys("main", {"sk-main-ok-aaaaaaaaaaaa"});
  StartGateway();
  std::string body =
      R"({"model":"gpt-alias","messages":[{"role":"user","content":"h\u00e9llo \"q\""}],)"
      R"("tool_choice":"auto","stop":["\n"],"response_format":{"type":"json_object"},)"
      R"("x_unknown":{"nested":[1,2,{"a":null}]}})";
  HttpResponse r = Chat(body);
  ASSERT_EQ(r.status, 200) << r.body << r.error;
  EXPECT_NE(r.body.find("Hello from the stub"), std::string::npos);
  auto seen = stub_.requests();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].key, "sk-main-ok-aaaaaaaaaaaa");
  EXPECT_EQ(seen[0].path, "/v1/chat/completions");
  std::string expected = body;
  expected.replace(expected.find("\"gpt-alias\""), 11, "\"gpt-upstream\"");
  EXPECT_EQ(seen[0].body, expected) << "every byte but the model survives";
  EXPECT_EQ(seen[0].headers.count("x-api-key"), 0u);
}

TEST_F(GatewayTest, StreamingAddsAndHidesTheUsageChunkAndRecordsUsage) {
  Keys("main", {"sk-main-ok-bbbbbbbbbbbb"});
  StartGateway();
  HttpResponse r = Chat(R"({"model":"gpt-test","stream":true,"messages":[]})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.headers["content-type"], "text/event-stream");
  EXPECT_NE(r.body.find("tok0"), std::string::npos);
  EXPECT_NE(r.body.find("data: [DONE]"), std::string::npos);
  EXPECT_EQ(r.body.find("\"usage\""), std::string::npos) << "the client did not ask for usage";
  ASSERT_EQ(stub_.request_count(), 1u);
  EXPECT_NE(stub_.requests()[0].body.find("\"include_usage\":true"), std::string::npos);

  // A client that asks for usage gets it.
  HttpResponse r2 = Chat(
      R"({"model":"gpt-test","stream":true,"stream_options":{"include_usage":true},"messages":[]})");
  EXPECT_NE(r2.body.find("\"usage\""), std::string::npos);

  app_->Shutdown();  // flushes usage
  auto usage = store_->ListUsage({});
  ASSERT_TRUE(usage.ok());
  ASSERT_EQ(usage->size(), 2u);
  for (const auto& u : *usage) {
    EXPECT_EQ(u.model, "gpt-test");
    EXPECT_EQ(u.input_tokens, 11);
    EXPECT_EQ(u.output_tokens, 7);
    EXPECT_EQ(u.status, 200);
    EXPECT_EQ(u.cost_micros, 11 * 2 + 7 * 10);
  }
}

TEST(ClientAuthToken, BearerInAnyCaseElseTheApiKeyHeader) {
  using gateway::ClientAuth;
  EXPECT_EQ(ClientAuth::ExtractToken("Bearer kg-abc", ""), "kg-abc");
  EXPECT_EQ(ClientAuth::ExtractToken("bearer kg-abc", ""), "kg-abc");
  EXPECT_EQ(ClientAuth::ExtractToken("BEARER  kg-abc ", ""), "kg-abc");
  EXPECT_EQ(ClientAuth::ExtractToken("  Bearer kg-abc", "kg-other"), "kg-abc");
  EXPECT_EQ(ClientAuth::ExtractToken("Basic dXNlcjpw", "kg-key"), "kg-key");
  EXPECT_EQ(ClientAuth::ExtractToken("Bearer ", "kg-key"), "kg-key");  // no token after it
  EXPECT_EQ(ClientAuth::ExtractToken("Bearerkg-abc", ""), "");
  EXPECT_EQ(ClientAuth::ExtractToken("", " kg-key "), "kg-key");
  EXPECT_EQ(ClientAuth::ExtractToken("", ""), "");
}

TEST_F(GatewayTest, AuthErrorsUseEachProvidersShape) {
  Keys("main", {"sk-main-ok-cccccccccccc"});
  StartGateway();
  HttpResponse none = HttpRequest("POST", base_ + "/v1/chat/completions", {}, "{}");
  EXPECT_EQ(none.status, 401);
  EXPECT_NE(none.body.find("\"error\":{"), std::string::npos) << none.body;
  HttpResponse bad = HttpPost(base_ + "/v1/chat/completions", "kg-wrong-token-000000000", "{}");
  EXPECT_EQ(bad.status, 401);
  EXPECT_NE(bad.body.find("invalid_api_key"), std::string::npos);
  EXPECT_EQ(bad.body.find("kg-wrong-token-000000000"), std::string::npos) << "never echoed whole";
  HttpResponse anth = HttpRequest("POST", base_ + "/v1/messages",
                                  {{"x-api-key", "kg-wrong-token-000000000"}}, "{}");
  EXPECT_EQ(anth.status, 401);
  EXPECT_NE(anth.body.find("\"type\":\"error\""), std::string::npos) << anth.body;
  EXPECT_NE(anth.body.find("authentication_error"), std::string::npos);
  EXPECT_EQ(stub_.request_count(), 0u);
}

TEST_F(GatewayTest, BadRequestsAreClearClientErrors) {
  Keys("main", {"sk-main-ok-dddddddddddd"});
  StartGateway();
  HttpResponse unknown = Chat(R"({"model":"nope","messages":[]})");
  EXPECT_EQ(unknown.status, 404);
  EXPECT_NE(unknown.body.find("model_not_found"), std::string::npos) << unknown.body;
  EXPECT_EQ(Chat(R"({"model":"gpt-test",)").status, 400);
  EXPECT_EQ(Chat("{\"model\":\"gpt-test\",\"x\":\"\xff\xfe\"}").status, 400);
  EXPECT_EQ(Chat(R"(["not an object"])").status, 400);
  EXPECT_EQ(Chat(R"({"messages":[]})").status, 400);
  HttpResponse big = Chat("{\"model\":\"gpt-test\",\"p\":\"" + std::string(11 << 20, 'a') + "\"}");
  EXPECT_EQ(big.status, 413);
  HttpResponse wrong_path = HttpPost(base_ + "/v1/nothing", kClientToken, "{}");
  EXPECT_EQ(wrong_path.status, 404);
  EXPECT_EQ(stub_.request_count(), 0u);
  EXPECT_EQ(Chat(R"({"model":"gpt-test","messages":[]})").status, 200) << "still serving";
}

// GET /v1/models answers in Anthropic's list shape when asked with anthropic-version (Claude
// Code's model picker reads only that shape), in OpenAI's otherwise; its errors follow suit, as
// do those of paths keygate does not serve.
TEST_F(GatewayTest, ModelsListInAnthropicsShapeForAnthropicClients) {
  StartGateway();
  HttpResponse r =
      HttpRequest("GET", base_ + "/v1/models",
                  {{"x-api-key", kClientToken}, {"anthropic-version", "2023-06-01"}}, "");
  ASSERT_EQ(r.status, 200) << r.body;
  boost::json::object list = boost::json::parse(r.body).as_object();
  EXPECT_EQ(list.count("object"), 0u) << r.body;
  EXPECT_EQ(list.at("has_more"), false);
  const boost::json::array& data = list.at("data").as_array();
  ASSERT_FALSE(data.empty());
  std::set<std::string> ids;
  for (const boost::json::value& v : data) {
    const boost::json::object& m = v.as_object();
    EXPECT_EQ(m.at("type"), "model") << boost::json::serialize(m);
    EXPECT_EQ(m.at("display_name"), m.at("id"));
    EXPECT_EQ(m.at("created_at"), "1970-01-01T00:00:00Z");
    ids.insert(std::string(m.at("id").as_string()));
  }
  EXPECT_TRUE(ids.count("gpt-test") && ids.count("gpt-alias") && ids.count("claude-test"))
      << r.body;
  EXPECT_EQ(list.at("first_id"), data.front().at("id"));
  EXPECT_EQ(list.at("last_id"), data.back().at("id"));

  HttpResponse openai = HttpRequest("GET", base_ + "/v1/models",
                                    {{"Authorization", std::string("Bearer ") + kClientToken}}, "");
  ASSERT_EQ(openai.status, 200) << openai.body;
  boost::json::object olist = boost::json::parse(openai.body).as_object();
  EXPECT_EQ(olist.at("object"), "list");
  EXPECT_EQ(olist.at("data").as_array().size(), data.size());
  EXPECT_EQ(olist.at("data").as_array()[0].at("object"), "model");

  HttpResponse bad = HttpRequest(
      "GET", base_ + "/v1/models",
      {{"x-api-key", "kg-not-a-key-000000000000"}, {"anthropic-version", "2023-06-01"}}, "");
  EXPECT_EQ(bad.status, 401);
  EXPECT_NE(bad.body.find("\"authentication_error\""), std::string::npos) << bad.body;
  // Any path that is not an endpoint of its own answers an Anthropic client in its shape.
  HttpResponse unknown =
      HttpRequest("POST", base_ + "/v1/messages/batches",
                  {{"x-api-key", kClientToken}, {"anthropic-version", "2023-06-01"}}, "{}");
  EXPECT_EQ(unknown.status, 404);
  EXPECT_NE(unknown.body.find("\"not_found_error\""), std::string::npos) << unknown.body;
  HttpResponse openai_unknown =
      HttpRequest("POST", base_ + "/v1/assistants", {{"Authorization", "Bearer x"}}, "{}");
  EXPECT_EQ(openai_unknown.status, 404);
  EXPECT_EQ(openai_unknown.body.find("\"type\":\"error\""), std::string::npos)
      << openai_unknown.body;
}

// GET /v1/models/{id}, as the SDKs' models.retrieve sends it: the model object in the shape the
// client speaks, for an id or an alias (percent-decoded: ids may hold a '/'); 404 in that shape
// for a model keygate does not serve.
TEST_F(GatewayTest, OneModelIsRetrievedByIdOrAlias) {
  StartGateway("[[models]]\nid = \"vendor/model-x\"\npool = \"main\"\n");
  const std::vector<std::pair<std::string, std::string>> openai = {
      {"Authorization", std::string("Bearer ") + kClientToken}};
  const std::vector<std::pair<std::string, std::string>> anthropic = {
      {"x-api-key", kClientToken}, {"anthropic-version", "2023-06-01"}};
  HttpResponse r = HttpRequest("GET", base_ + "/v1/models/gpt-test", openai, "");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, R"({"id":"gpt-test","object":"model","created":0,"owned_by":"main"})");
  r = HttpRequest("GET", base_ + "/v1/models/gpt-alias", anthropic, "");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, R"({"type":"model","id":"gpt-alias","display_name":"gpt-alias",)"
                    R"("created_at":"1970-01-01T00:00:00Z"})");
  r = HttpRequest("GET", base_ + "/v1/models/vendor%2Fmodel-x", openai, "");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.body.find("\"id\":\"vendor/model-x\""), std::string::npos) << r.body;

  r = HttpRequest("GET", base_ + "/v1/models/nope", openai, "");
  EXPECT_EQ(r.status, 404) << r.body;
  EXPECT_NE(r.body.find("\"model_not_found\""), std::string::npos) << r.body;
  r = HttpRequest("GET", base_ + "/v1/models/nope", anthropic, "");
  EXPECT_EQ(r.status, 404) << r.body;
  EXPECT_NE(r.body.find("\"not_found_error\""), std::string::npos) << r.body;
  EXPECT_EQ(HttpRequest("GET", base_ + "/v1/models/bad%zz", openai, "").status, 400);
  EXPECT_EQ(HttpRequest("POST", base_ + "/v1/models/gpt-test", openai, "{}").status, 405);
  EXPECT_EQ(HttpRequest("GET", base_ + "/v1/models/gpt-test", {}, "").status, 401);
  EXPECT_EQ(stub_.request_count(), 0u) << "answered by keygate itself";
}

TEST_F(GatewayTest, ModelsHealthAndMetrics) {
  Keys("main", {"sk-main-ok-eeeeeeeeeeee"});
  StartGateway();
  HttpResponse models = HttpRequest("GET", base_ + "/v1/models",
                                    {{"Authorization", std::string("Bearer ") + kClientToken}}, "");
  ASSERT_EQ(models.status, 200);
  EXPECT_NE(models.body.find("\"gpt-test\""), std::string::npos);
  EXPECT_NE(models.body.find("\"gpt-alias\""), std::string::npos);
  EXPECT_EQ(HttpRequest("GET", base_ + "/healthz", {}, "").status, 200);
  EXPECT_EQ(HttpRequest("GET", base_ + "/readyz", {}, "").status, 200);
  ASSERT_EQ(Chat(R"({"model":"gpt-test","messages":[]})").status, 200);
  // The request is counted just after its response went out: poll briefly.
  HttpResponse metrics;
  const std::string counted =
      "keygate_requests_total{pool=\"main\",model=\"gpt-test\",status=\"200\"} 1";
  for (int i = 0; i < 200; ++i) {
    metrics = HttpRequest("GET", base_ + "/metrics", {}, "");
    // Record() counts, then observes latency and time to first byte: wait for all of them.
    if (metrics.body.find(counted) != std::string::npos &&
        metrics.body.find("keygate_time_to_first_byte_seconds_count") != std::string::npos) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_NE(metrics.body.find(counted), std::string::npos) << metrics.body;
  EXPECT_NE(metrics.body.find("keygate_time_to_first_byte_seconds_count"), std::string::npos);
  EXPECT_NE(metrics.body.find("keygate_keys{pool=\"main\",state=\"active\"} 1"), std::string::npos);
}

// Models served through a pool's pattern are counted under the pattern: clients' made-up model
// names must not create metric series without bound. Their usage records keep the name asked.
TEST_F(GatewayTest, PatternModelsShareOneMetricSeries) {
  Keys("pat", {"sk-pat-ok-000000000000"});
  StartGateway("[pools.pat]\nprovider = \"stub\"\nmodels = [\"free-*\"]\n");
  for (const char* model : {"free-a", "free-b", "free-c"}) {
    ASSERT_EQ(Chat(std::string(R"({"model":")") + model + R"(","messages":[]})").status, 200);
  }
  const std::string counted = "keygate_requests_total{pool=\"pat\",model=\"free-*\",status=\"200\"} 3";
  HttpResponse metrics;
  bool seen = WaitFor(
      [&] {
        metrics = HttpRequest("GET", base_ + "/metrics", {}, "");
        return metrics.body.find(counted) != std::string::npos;
      },
      std::chrono::seconds(5));
  EXPECT_TRUE(seen) << metrics.body;
  EXPECT_EQ(metrics.body.find("model=\"free-a\""), std::string::npos) << metrics.body;
  std::set<std::string> models;
  EXPECT_TRUE(WaitFor(
      [&] {
        auto usage = store_->ListUsage({});
        models.clear();
        for (const auto& r : *usage) models.insert(r.model);
        return models.size() == 3;
      },
      std::chrono::seconds(5)));
  EXPECT_EQ(models, (std::set<std::string>{"free-a", "free-b", "free-c"}));
}

TEST_F(GatewayTest, AnthropicMessagesPassThrough) {
  Keys("claude", {"sk-ant-ok-ffffffffffff"});
  StartGateway();
  HttpResponse r = HttpRequest(
      "POST", base_ + "/v1/messages",
      {{"x-api-key", kClientToken}, {"anthropic-version", "2023-06-01"}},
      R"({"model":"claude-test","max_tokens":10,"stream":true,"messages":[]})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.body.find("message_stop"), std::string::npos);
  auto seen = stub_.requests();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].headers["x-api-key"], "sk-ant-ok-ffffffffffff");
  EXPECT_EQ(seen[0].headers["anthropic-version"], "2023-06-01");
  EXPECT_EQ(seen[0].headers.count("authorization"), 0u);
  EXPECT_EQ(seen[0].body.find("include_usage"), std::string::npos);
  app_->Shutdown();
  auto usage = store_->ListUsage({});
  ASSERT_EQ(usage->size(), 1u);
  EXPECT_EQ(usage->at(0).input_tokens, 11);
  EXPECT_EQ(usage->at(0).output_tokens, 7);
}

// Anthropic's token counting (Claude Code calls it every turn, with ?beta=true): passed to an
// Anthropic upstream with the model mapped and the client's beta header, answered as the upstream
// answered, recorded at no cost. A model of another format cannot count this way: an error in
// Anthropic's shape and no upstream call (a made-up count would mislead the client).
TEST_F(GatewayTest, CountTokensPassesToAnthropicAndIsRecordedAtNoCost) {
  Keys("claude", {"sk-ant-ok-cntcntcntcnt"});
  Keys("main", {"sk-main-ok-cntcntcntcnt"});
  StartGateway(
      "[[models]]\nid = \"claude-priced\"\npool = \"claude\"\nupstream = \"claude-up\"\n"
      "price = { input = 3, output = 15 }\n");
  const std::string body =
      R"({"model":"claude-priced","system":"be brief","messages":[{"role":"user","content":"hi"}],)"
      R"("tools":[{"name":"get_weather","input_schema":{"type":"object"}}]})";
  HttpResponse r = HttpRequest("POST", base_ + "/v1/messages/count_tokens?beta=true",
                               {{"x-api-key", kClientToken},
                                {"anthropic-beta", "token-counting-2024-11-01"},
                                {"content-type", "application/json"}},
                               body);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, R"({"input_tokens":11})");
  auto seen = stub_.requests();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].path, "/v1/messages/count_tokens");
  EXPECT_EQ(seen[0].key, "sk-ant-ok-cntcntcntcnt");
  EXPECT_EQ(seen[0].headers["anthropic-beta"], "token-counting-2024-11-01");
  std::string expected = body;
  expected.replace(expected.find("\"claude-priced\""), 15, "\"claude-up\"");
  EXPECT_EQ(seen[0].body, expected) << "every byte but the model survives";

  HttpResponse other =
      HttpRequest("POST", base_ + "/v1/messages/count_tokens", {{"x-api-key", kClientToken}},
                  R"({"model":"gpt-test","messages":[]})");
  EXPECT_EQ(other.status, 400) << other.body;
  EXPECT_NE(other.body.find("\"type\":\"error\""), std::string::npos) << other.body;
  EXPECT_NE(other.body.find("/v1/messages/count_tokens cannot reach"), std::string::npos)
      << other.body;
  HttpResponse get =
      HttpRequest("GET", base_ + "/v1/messages/count_tokens", {{"x-api-key", kClientToken}}, "");
  EXPECT_EQ(get.status, 405) << get.body;
  EXPECT_NE(get.body.find("\"type\":\"error\""), std::string::npos) << get.body;
  EXPECT_EQ(stub_.request_count(), 1u) << "refused requests never reach the upstream";

  // An upstream that reports usage with its count (no Anthropic answer does) still charges
  // nothing: the call is free whatever the answer holds.
  StubBehavior with_usage;
  with_usage.ok_body = R"({"input_tokens":11,"usage":{"input_tokens":11,"output_tokens":5}})";
  stub_.Script("sk-ant-ok-cntcntcntcnt", with_usage);
  HttpResponse odd =
      HttpRequest("POST", base_ + "/v1/messages/count_tokens", {{"x-api-key", kClientToken}}, body);
  ASSERT_EQ(odd.status, 200) << odd.body;
  EXPECT_EQ(odd.body, with_usage.ok_body);

  app_->Shutdown();
  auto usage = store_->ListUsage({});
  ASSERT_EQ(usage->size(), 2u);
  for (const store::UsageRecord& u : *usage) {
    EXPECT_EQ(u.model, "claude-priced");
    EXPECT_EQ(u.status, 200);
    EXPECT_EQ(u.input_tokens, 0) << "counting tokens consumes none";
    EXPECT_EQ(u.output_tokens, 0);
    EXPECT_EQ(u.cost_micros, 0);
  }
}

// Token counting has its own rate limits at Anthropic. A count's 429 goes to the client as sent
// and does not cool the key down: the paid traffic after it still reaches the key.
TEST_F(GatewayTest, CountTokensRateLimitLeavesTheKeyInService) {
  Keys("claude", {"sk-ant-s429-onlykey-xxxx"});
  StartGateway();
  HttpResponse count =
      HttpRequest("POST", base_ + "/v1/messages/count_tokens", {{"x-api-key", kClientToken}},
                  R"({"model":"claude-test","messages":[]})");
  EXPECT_EQ(count.status, 429) << count.body;
  EXPECT_NE(count.body.find("\"rate_limit_error\""), std::string::npos) << count.body;
  EXPECT_EQ(stub_.request_count(), 1u) << "one key, one attempt: not cooled, not retried";
  HttpResponse messages = HttpRequest("POST", base_ + "/v1/messages", {{"x-api-key", kClientToken}},
                                      R"({"model":"claude-test","max_tokens":10,"messages":[]})");
  EXPECT_EQ(messages.status, 429) << messages.body;
  EXPECT_EQ(stub_.request_count(), 2u) << "the key was still in service for the messages call";
}

// Half of the pool is dead (401). Every request succeeds for the client; each dead key is rotated
// exactly once; the backups consumed equal the dead keys.
TEST_F(GatewayTest, FailoverWithHalfThePoolDead) {
  std::vector<std::string> active, backups;
  for (int i = 0; i < 5; ++i) active.push_back("sk-main-s401-dead" + std::to_string(i) + "-xxxxxxx");
  for (int i = 0; i < 5; ++i) active.push_back("sk-main-ok-live" + std::to_string(i) + "-xxxxxxxx");
  for (int i = 0; i < 8; ++i) backups.push_back("sk-main-ok-spare" + std::to_string(i) + "-xxxxxxx");
  auto dead_ids = Keys("main", active);
  Keys("main", backups, store::KeyState::kBackup);
  StartGateway();
  int64_t pool = store_->GetPool("main")->id;

  constexpr int kThreads = 4, kPerThread = 250;
  std::atomic<int> ok{0}, failed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kPerThread; ++i) {
        HttpResponse r = Chat(R"({"model":"gpt-test","messages":[]})");
        (r.status == 200 ? ok : failed)++;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), kThreads * kPerThread);
  EXPECT_EQ(failed.load(), 0);

  // Rotations run on store threads: wait for them to land (bounded).
  for (int i = 0; i < 200 && store_->ListRotations({.pool_id = pool})->size() < 5; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  auto rotations = store_->ListRotations({.pool_id = pool, .limit = 100});
  ASSERT_TRUE(rotations.ok());
  EXPECT_EQ(rotations->size(), 5u);
  std::set<int64_t> failed_keys;
  for (const auto& r : *rotations) {
    EXPECT_EQ(r.outcome, "rotated");
    EXPECT_EQ(r.reason, "invalid_key");
    failed_keys.insert(r.failed_key_id);
  }
  EXPECT_EQ(failed_keys, std::set<int64_t>(dead_ids.begin(), dead_ids.begin() + 5));
  auto counts = store_->CountKeys(pool);
  EXPECT_EQ(counts->active, 10);
  EXPECT_EQ(counts->retired, 5);
  EXPECT_EQ(counts->backup, 3) << "backups consumed = dead keys";
}

TEST_F(GatewayTest, RateLimitedKeyCoolsDownAndTheRequestMovesOn) {
  auto ids = Keys("main", {"sk-main-s429-rl-xxxxxxxx", "sk-main-ok-fine-xxxxxxxx"});
  StartGateway();
  for (int i = 0; i < 6; ++i) {
    HttpResponse r = Chat(R"({"model":"gpt-test","messages":[]})");
    ASSERT_EQ(r.status, 200) << r.body;
  }
  EXPECT_EQ(stub_.CountForKey("sk-main-s429-rl-xxxxxxxx"), 1u) << "cooling: tried once only";
  for (int i = 0; i < 100 && store_->GetKey(ids[0], false)->state != store::KeyState::kCooling;
       ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(store_->GetKey(ids[0], false)->state, store::KeyState::kCooling);
}

TEST_F(GatewayTest, EveryKeyRateLimitedGives429WithRetryAfter) {
  Keys("main", {"sk-main-s429-a-xxxxxxxxx", "sk-main-s429-b-xxxxxxxxx"});
  StartGateway();
  HttpResponse r = Chat(R"({"model":"gpt-test","messages":[]})");
  EXPECT_EQ(r.status, 429) << r.body;
  EXPECT_EQ(r.headers["retry-after"], "1");
  EXPECT_NE(r.body.find("rate limited"), std::string::npos);
}

TEST_F(GatewayTest, ServerErrorsAreRetriedOnAnotherKey) {
  Keys("main", {"sk-main-s500-x-xxxxxxxxx", "sk-main-ok-y-xxxxxxxxxxx"});
  StartGateway();
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(Chat(R"({"model":"gpt-test","messages":[]})").status, 200);
  }
  EXPECT_GE(stub_.CountForKey("sk-main-s500-x-xxxxxxxxx"), 1u);
  app_->Shutdown();
  auto usage = store_->ListUsage({});
  int retried = 0;
  for (const auto& u : *usage) retried += u.attempts > 1;
  EXPECT_GE(retried, 1);
}

// The body built for the upstream goes to the first attempt and is built again for the next:
// every attempt carries the same bytes, rewritten (model) or translated (an Anthropic route).
TEST_F(GatewayTest, EveryAttemptSendsTheSameUpstreamBody) {
  Keys("main",
       {"sk-main-s500-p-xxxxxxxxx", "sk-main-s500-q-xxxxxxxxx", "sk-main-ok-r-xxxxxxxxxxx"});
  Keys("claude",
       {"sk-ant-s500-a-xxxxxxxxxx", "sk-ant-s500-b-xxxxxxxxxx", "sk-ant-ok-c-xxxxxxxxxxx"});
  StartGateway();
  struct Case {
    std::string model, path;
  };
  for (const Case& c :
       {Case{"gpt-test", "/v1/chat/completions"}, Case{"claude-test", "/v1/messages"}}) {
    stub_.ClearRequests();
    HttpResponse r = Chat(R"({"model":")" + c.model +
                          R"(","messages":[{"role":"user","content":"the same each time"}]})");
    ASSERT_EQ(r.status, 200) << r.body;
    const auto seen = stub_.requests();
    // Round robin (the default) takes the keys in the order they were imported.
    ASSERT_EQ(seen.size(), 3u) << c.model << ": two keys fail with 500, the third answers";
    EXPECT_EQ(seen[0].path, c.path);
    EXPECT_NE(seen[0].body.find("the same each time"), std::string::npos) << seen[0].body;
    for (const StubRequest& q : seen) EXPECT_EQ(q.body, seen[0].body) << c.model;
  }
}

TEST_F(GatewayTest, ClientErrorsPassThroughWithoutRetry) {
  auto ids = Keys("main", {"sk-main-ok-z-xxxxxxxxxxx"});
  StubBehavior bad;
  bad.status = 400;
  bad.error_type = "invalid_request_error";
  bad.error_message = "messages: field required";
  stub_.Script("sk-main-ok-z-xxxxxxxxxxx", bad);
  StartGateway();
  HttpResponse r = Chat(R"({"model":"gpt-test"})");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("messages: field required"), std::string::npos);
  EXPECT_EQ(stub_.request_count(), 1u);
  EXPECT_EQ(store_->GetKey(ids[0], false)->state, store::KeyState::kActive);
}

TEST_F(GatewayTest, LiteLLMBudgetExceededRotates) {
  auto ids = Keys("budget", {"sk-llm-budget-xxxxxxxxxx"});
  Keys("budget", {"sk-llm-ok-spare-xxxxxxxx"}, store::KeyState::kBackup);
  StartGateway();
  HttpResponse r = HttpPost(base_ + "/v1/chat/completions", kClientToken,
                            R"({"model":"budget-test","messages":[]})");
  EXPECT_EQ(r.status, 200) << "the only active key died; the request waits for its replacement: "
                           << r.body;
  EXPECT_EQ(stub_.CountForKey("sk-llm-ok-spare-xxxxxxxx"), 1u);
  int64_t pool = store_->GetPool("budget")->id;
  for (int i = 0; i < 200 && store_->ListRotations({.pool_id = pool})->empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  auto rot = store_->ListRotations({.pool_id = pool});
  ASSERT_EQ(rot->size(), 1u);
  EXPECT_EQ(rot->at(0).reason, "budget_exceeded");
  EXPECT_EQ(store_->GetKey(ids[0], false)->state, store::KeyState::kRetired);
  HttpResponse after = HttpPost(base_ + "/v1/chat/completions", kClientToken,
                                R"({"model":"budget-test","messages":[]})");
  EXPECT_EQ(after.status, 200) << "the replacement serves";
}

TEST_F(GatewayTest, ResetMidStreamIsNeverRetried) {
  Keys("main", {"sk-main-reset-xxxxxxxxxxx", "sk-main-ok-other-xxxxxxx"});
  StubBehavior reset = stub_.BehaviorFor("sk-main-reset-xxxxxxxxxxx");
  StartGateway();
  int resets = 0;
  for (int i = 0; i < 2; ++i) {
    HttpResponse r = Chat(R"({"model":"gpt-test","stream":true,"messages":[]})");
    if (r.body.find("tok0") != std::string::npos && r.body.find("[DONE]") == std::string::npos) {
      ++resets;
    }
  }
  EXPECT_EQ(resets, 1) << "one of two round-robin picks hit the resetting key";
  EXPECT_EQ(stub_.request_count(), 2u) << "no retry once bytes reached the client";
}

// Format translation through the gateway: an OpenAI client reaching an Anthropic-format model.
TEST_F(GatewayTest, OpenAIClientReachesAnAnthropicModel) {
  Keys("claude", {"sk-ant-ok-translate-xxxxx"});
  StartGateway();
  HttpResponse r = Chat(
      R"({"model":"claude-test","messages":[{"role":"system","content":"Be brief."},)"
      R"({"role":"user","content":"Hi"}]})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.body.find("\"object\":\"chat.completion\""), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("Hello from the stub"), std::string::npos);
  EXPECT_NE(r.body.find("\"finish_reason\":\"stop\""), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("\"prompt_tokens\":11"), std::string::npos) << r.body;
  auto seen = stub_.requests();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].path, "/v1/messages");
  EXPECT_EQ(seen[0].headers["x-api-key"], "sk-ant-ok-translate-xxxxx");
  EXPECT_EQ(seen[0].headers["anthropic-version"], "2023-06-01");
  EXPECT_NE(seen[0].body.find("\"system\""), std::string::npos) << seen[0].body;
  EXPECT_NE(seen[0].body.find("\"max_tokens\":4096"), std::string::npos) << seen[0].body;

  HttpResponse stream = Chat(
      R"({"model":"claude-test","stream":true,"stream_options":{"include_usage":true},)"
      R"("messages":[{"role":"user","content":"Hi"}]})");
  ASSERT_EQ(stream.status, 200) << stream.body;
  EXPECT_NE(stream.body.find("chat.completion.chunk"), std::string::npos) << stream.body;
  EXPECT_NE(stream.body.find("tok0"), std::string::npos);
  EXPECT_NE(stream.body.find("\"usage\""), std::string::npos) << "asked for usage";
  EXPECT_NE(stream.body.find("data: [DONE]"), std::string::npos);
  EXPECT_EQ(stream.body.find("message_start"), std::string::npos) << "no Anthropic events leak";

  HttpResponse refused = Chat(R"({"model":"claude-test","n":3,"messages":[]})");
  EXPECT_EQ(refused.status, 400) << refused.body;
  EXPECT_NE(refused.body.find("n"), std::string::npos);

  app_->Shutdown();
  auto usage = store_->ListUsage({});
  ASSERT_EQ(usage->size(), 3u);
  int with_tokens = 0;
  for (const auto& u : *usage) with_tokens += (u.input_tokens == 11 && u.output_tokens == 7);
  EXPECT_EQ(with_tokens, 2) << "both translated requests billed from the upstream's usage";
}

TEST_F(GatewayTest, AnthropicClientReachesAnOpenAIModel) {
  Keys("main", {"sk-main-ok-reverse-xxxxxx"});
  StartGateway();
  HttpResponse r = HttpRequest(
      "POST", base_ + "/v1/messages", {{"x-api-key", kClientToken}},
      R"({"model":"gpt-test","max_tokens":64,"messages":[{"role":"user","content":"Hi"}]})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.body.find("\"type\":\"message\""), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("Hello from the stub"), std::string::npos);
  auto seen = stub_.requests();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].path, "/v1/chat/completions");
  EXPECT_NE(seen[0].body.find("\"gpt-upstream\""), std::string::npos) << seen[0].body;
  HttpResponse stream = HttpRequest(
      "POST", base_ + "/v1/messages", {{"x-api-key", kClientToken}},
      R"({"model":"gpt-test","max_tokens":64,"stream":true,)"
      R"("messages":[{"role":"user","content":"Hi"}]})");
  ASSERT_EQ(stream.status, 200) << stream.body;
  EXPECT_NE(stream.body.find("event: message_start"), std::string::npos) << stream.body;
  EXPECT_NE(stream.body.find(R"("text_delta","text":"tok0 ")"), std::string::npos) << stream.body;
  EXPECT_NE(stream.body.find(R"("stop_reason":"end_turn")"), std::string::npos) << stream.body;
  EXPECT_NE(stream.body.find(R"("input_tokens":11)"), std::string::npos) << stream.body;
  EXPECT_NE(stream.body.find("event: message_stop"), std::string::npos) << stream.body;
  EXPECT_EQ(stream.body.find("chat.completion.chunk"), std::string::npos) << "no OpenAI chunks leak";
  EXPECT_EQ(stream.body.find("[DONE]"), std::string::npos);
  seen = stub_.requests();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[1].path, "/v1/chat/completions");
  EXPECT_NE(seen[1].body.find(R"("include_usage":true)"), std::string::npos) << seen[1].body;

  app_->Shutdown();
  auto usage = store_->ListUsage({});
  ASSERT_EQ(usage->size(), 2u);
  for (const auto& u : *usage) {
    EXPECT_EQ(u.input_tokens, 11);
    EXPECT_EQ(u.output_tokens, 7);
  }
}

// A model whose upstream speaks the OpenAI Responses API: chat and messages clients reach it,
// whole and streamed, with tool calls; usage is billed from the Responses usage.
TEST_F(GatewayTest, ChatAndMessagesClientsReachAResponsesModel) {
  Keys("resp", {"sk-resp-ok-xxxxxxxxxxxx"});
  StartGateway(
      "[providers.respapi]\nbase_url = \"" + stub_.base_url() + "\"\nformat = \"openai-responses\"\n"
      "[pools.resp]\nprovider = \"respapi\"\n"
      "[[models]]\nid = \"resp-test\"\npool = \"resp\"\nupstream = \"o-upstream\"\n");
  const std::string tools =
      R"("tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}])";

  HttpResponse chat = Chat(
      R"({"model":"resp-test","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi"}]})");
  ASSERT_EQ(chat.status, 200) << chat.body;
  EXPECT_NE(chat.body.find(R"("content":"Hello from the stub")"), std::string::npos) << chat.body;
  EXPECT_NE(chat.body.find(R"("finish_reason":"stop")"), std::string::npos) << chat.body;
  EXPECT_NE(chat.body.find(R"("prompt_tokens":11)"), std::string::npos) << chat.body;

  HttpResponse chat_tools =
      Chat(R"({"model":"resp-test","messages":[{"role":"user","content":"Weather?"}],)" + tools + "}");
  ASSERT_EQ(chat_tools.status, 200) << chat_tools.body;
  EXPECT_NE(chat_tools.body.find(R"("id":"call_stub")"), std::string::npos) << chat_tools.body;
  EXPECT_NE(chat_tools.body.find(R"("finish_reason":"tool_calls")"), std::string::npos);

  HttpResponse chat_stream = Chat(
      R"({"model":"resp-test","stream":true,"stream_options":{"include_usage":true},)"
      R"("messages":[{"role":"user","content":"Weather?"}],)" + tools + "}");
  ASSERT_EQ(chat_stream.status, 200) << chat_stream.body;
  EXPECT_NE(chat_stream.body.find(R"("tool_calls":[{"index":0,"id":"call_stub")"), std::string::npos)
      << chat_stream.body;
  EXPECT_NE(chat_stream.body.find(R"("arguments":" \"Paris\"}")"), std::string::npos) << chat_stream.body;
  EXPECT_NE(chat_stream.body.find(R"("choices":[],"usage":{"prompt_tokens":11)"), std::string::npos)
      << chat_stream.body;
  EXPECT_NE(chat_stream.body.find("data: [DONE]"), std::string::npos);
  EXPECT_EQ(chat_stream.body.find("response."), std::string::npos) << "no Responses events leak";

  HttpResponse messages = HttpRequest(
      "POST", base_ + "/v1/messages", {{"x-api-key", kClientToken}},
      R"({"model":"resp-test","max_tokens":64,"messages":[{"role":"user","content":"Hi"}]})");
  ASSERT_EQ(messages.status, 200) << messages.body;
  EXPECT_NE(messages.body.find(R"("type":"text","text":"Hello from the stub")"), std::string::npos)
      << messages.body;
  EXPECT_NE(messages.body.find(R"("input_tokens":11)"), std::string::npos) << messages.body;

  HttpResponse messages_stream = HttpRequest(
      "POST", base_ + "/v1/messages", {{"x-api-key", kClientToken}},
      R"({"model":"resp-test","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"Hi"}]})");
  ASSERT_EQ(messages_stream.status, 200) << messages_stream.body;
  EXPECT_NE(messages_stream.body.find(R"("text_delta","text":"tok0 ")"), std::string::npos)
      << messages_stream.body;
  EXPECT_NE(messages_stream.body.find(R"("input_tokens":11)"), std::string::npos) << messages_stream.body;
  EXPECT_NE(messages_stream.body.find("event: message_stop"), std::string::npos) << messages_stream.body;

  HttpResponse refused = Chat(R"({"model":"resp-test","stop":["x"],"messages":[]})");
  EXPECT_EQ(refused.status, 400);
  EXPECT_NE(refused.body.find("'stop'"), std::string::npos) << refused.body;

  auto seen = stub_.requests();
  ASSERT_EQ(seen.size(), 5u);
  for (const auto& r : seen) {
    EXPECT_EQ(r.path, "/v1/responses");
    EXPECT_NE(r.body.find(R"("model":"o-upstream")"), std::string::npos) << r.body;
    EXPECT_NE(r.body.find(R"("input":[)"), std::string::npos) << r.body;
    EXPECT_NE(r.body.find(R"("store":false)"), std::string::npos) << r.body;
  }
  app_->Shutdown();
  auto usage = store_->ListUsage({});
  ASSERT_EQ(usage->size(), 6u);
  int billed = 0;
  for (const auto& u : *usage) billed += u.input_tokens == 11 && u.output_tokens == 7;
  EXPECT_EQ(billed, 5) << "every answered request billed from the Responses usage";
}

// A Responses client (/v1/responses) reaches an openai-chat model and an anthropic-messages model:
// whole and streamed, a function call and its second turn, refusals naming the field, upstream
// errors in OpenAI's shape; usage is billed from the upstream's usage.
TEST_F(GatewayTest, ResponsesClientReachesChatAndAnthropicModels) {
  Keys("main", {"sk-main-ok-respcli-xxxxxx"});
  Keys("claude", {"sk-ant-ok-respcli-xxxxxxx"});
  StartGateway();
  auto post = [&](const std::string& body) {
    return HttpPost(base_ + "/v1/responses", kClientToken, body);
  };
  const std::string tools =
      R"("tools":[{"type":"function","name":"get_weather","parameters":{"type":"object"}}])";
  int answered = 0;
  for (const std::string model : {"gpt-test", "claude-test"}) {
    SCOPED_TRACE(model);
    const bool anthropic = model == "claude-test";
    const std::string call_id = anthropic ? "toolu_stub" : "call_stub";
    const size_t before = stub_.request_count();

    HttpResponse whole =
        post(R"({"model":")" + model +
             R"(","instructions":"Be brief.","input":"Hi","max_output_tokens":64})");
    ASSERT_EQ(whole.status, 200) << whole.body;
    boost::json::value r = boost::json::parse(whole.body);
    EXPECT_EQ(r.at("object"), "response");
    EXPECT_EQ(r.at("status"), "completed");
    EXPECT_EQ(r.at("model"), model.c_str());
    EXPECT_EQ(r.at("output").at(0).at("type"), "message");
    EXPECT_EQ(r.at("output").at(0).at("content").at(0).at("text"), "Hello from the stub");
    EXPECT_EQ(r.at("usage").at("input_tokens"), 11);
    EXPECT_EQ(r.at("usage").at("output_tokens"), 7);

    HttpResponse call = post(R"({"model":")" + model +
                             R"(","input":[{"role":"user","content":"Weather?"}],)" + tools + "}");
    ASSERT_EQ(call.status, 200) << call.body;
    boost::json::value c = boost::json::parse(call.body);
    const boost::json::value& fc = c.at("output").at(0);
    EXPECT_EQ(fc.at("type"), "function_call") << call.body;
    EXPECT_EQ(fc.at("call_id"), call_id.c_str());
    EXPECT_EQ(fc.at("name"), "get_weather");
    EXPECT_EQ(boost::json::parse(fc.at("arguments").as_string()),
              boost::json::parse(R"({"city":"Paris"})"));

    // The second turn: the call echoed back as an item, then its output.
    HttpResponse second =
        post(R"({"model":")" + model + R"(","input":[{"role":"user","content":"Weather?"},)" +
             boost::json::serialize(fc) + R"(,{"type":"function_call_output","call_id":")" +
             call_id + R"(","output":"18 C"}],)" + tools + "}");
    ASSERT_EQ(second.status, 200) << second.body;
    EXPECT_NE(second.body.find(R"("text":"Hello from the stub")"), std::string::npos)
        << second.body;

    HttpResponse stream =
        post(R"({"model":")" + model + R"(","stream":true,"input":"Weather?",)" + tools + "}");
    ASSERT_EQ(stream.status, 200) << stream.body;
    EXPECT_EQ(stream.body.rfind("event: response.created\n", 0), 0u) << stream.body;
    EXPECT_NE(stream.body.find(R"("type":"response.function_call_arguments.delta")"),
              std::string::npos)
        << stream.body;
    EXPECT_NE(stream.body.find("event: response.completed"), std::string::npos) << stream.body;
    EXPECT_NE(stream.body.find(R"("usage":{"input_tokens":11)"), std::string::npos) << stream.body;
    EXPECT_EQ(stream.body.find("chat.completion.chunk"), std::string::npos) << "no chunks leak";
    EXPECT_EQ(stream.body.find("message_start"), std::string::npos) << "no Anthropic events leak";
    EXPECT_EQ(stream.body.find("[DONE]"), std::string::npos);

    HttpResponse text_stream = post(R"({"model":")" + model + R"(","stream":true,"input":"Hi"})");
    ASSERT_EQ(text_stream.status, 200) << text_stream.body;
    EXPECT_NE(text_stream.body.find(R"("type":"response.output_text.delta")"), std::string::npos);
    EXPECT_NE(text_stream.body.find(R"("text":"tok0 tok1 tok2 ")"), std::string::npos)
        << text_stream.body;
    answered += 5;

    HttpResponse refused =
        post(R"({"model":")" + model + R"(","input":"x","previous_response_id":"resp_1"})");
    EXPECT_EQ(refused.status, 400);
    boost::json::value e = boost::json::parse(refused.body);
    EXPECT_EQ(e.at("error").at("type"), "invalid_request_error") << refused.body;
    EXPECT_NE(refused.body.find("'previous_response_id'"), std::string::npos) << refused.body;
    HttpResponse builtin =
        post(R"({"model":")" + model + R"(","input":"x","tools":[{"type":"web_search"}]})");
    EXPECT_EQ(builtin.status, 400);
    EXPECT_NE(builtin.body.find("'tools[0].type'"), std::string::npos) << builtin.body;

    auto seen = stub_.requests();
    ASSERT_EQ(seen.size(), before + 5) << "refused requests never reach the upstream";
    for (size_t i = before; i < seen.size(); ++i) {
      EXPECT_EQ(seen[i].path, anthropic ? "/v1/messages" : "/v1/chat/completions");
    }
    if (anthropic) {
      EXPECT_NE(seen[before].body.find(R"("system":"Be brief.")"), std::string::npos)
          << seen[before].body;
      EXPECT_NE(seen[before].body.find(R"("max_tokens":64)"), std::string::npos)
          << seen[before].body;
      EXPECT_NE(seen[before + 2].body.find(R"("tool_use_id":"toolu_stub")"), std::string::npos)
          << seen[before + 2].body;
    } else {
      EXPECT_NE(seen[before].body.find(R"("model":"gpt-upstream")"), std::string::npos)
          << seen[before].body;
      EXPECT_NE(seen[before].body.find(R"("max_completion_tokens":64)"), std::string::npos);
      EXPECT_NE(seen[before + 2].body.find(R"("tool_call_id":"call_stub")"), std::string::npos)
          << seen[before + 2].body;
      EXPECT_NE(seen[before + 3].body.find(R"("include_usage":true)"), std::string::npos)
          << seen[before + 3].body;
    }
  }

  app_->Shutdown();
  auto usage = store_->ListUsage({});
  int billed = 0;
  for (const auto& u : *usage) billed += u.input_tokens == 11 && u.output_tokens == 7;
  EXPECT_EQ(billed, answered) << "every answered request billed from the upstream's usage";
}

// reasoning_effort reaches an Anthropic model as the thinking budget the catalog sets for it, and
// a thinking budget reaches an OpenAI model as the smallest effort of that model's table covering it.
TEST_F(GatewayTest, ReasoningUsesThePerModelThinkingBudgets) {
  Keys("claude", {"sk-ant-ok-think-xxxxxxx"});
  Keys("main", {"sk-main-ok-think-xxxxxxx"});
  StartGateway(
      "[[models]]\nid = \"claude-think\"\npool = \"claude\"\n"
      "thinking = { low = 2000, medium = 6000, high = 12000 }\n"
      "[[models]]\nid = \"gpt-think\"\npool = \"main\"\n"
      "thinking = { low = 2000, medium = 6000, high = 12000 }\n");
  HttpResponse chat = Chat(
      R"({"model":"claude-think","max_tokens":20000,"reasoning_effort":"medium",)"
      R"("messages":[{"role":"user","content":"Hi"}]})");
  ASSERT_EQ(chat.status, 200) << chat.body;
  HttpResponse messages = HttpRequest(
      "POST", base_ + "/v1/messages", {{"x-api-key", kClientToken}},
      R"({"model":"gpt-think","max_tokens":20000,"thinking":{"type":"enabled","budget_tokens":5000},)"
      R"("messages":[{"role":"user","content":"Hi"}]})");
  ASSERT_EQ(messages.status, 200) << messages.body;
  auto seen = stub_.requests();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_NE(seen[0].body.find(R"("thinking":{"type":"enabled","budget_tokens":6000})"),
            std::string::npos)
      << seen[0].body;
  EXPECT_NE(seen[1].body.find(R"("reasoning_effort":"medium")"), std::string::npos)
      << "5000 <= medium (6000) of this model's table, > low (2000): " << seen[1].body;
}

// An upstream's client error in its own format is restated in the client's: message kept,
// the upstream's type/code in OpenAI's "code", the client format's type for the status.
::testing::AssertionResult JsonBodyEq(std::string_view actual, std::string_view expected) {
  boost::system::error_code ec;
  boost::json::value a = boost::json::parse(actual, ec);
  if (ec) return ::testing::AssertionFailure() << "not JSON: " << actual;
  if (a == boost::json::parse(expected)) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "actual: " << actual << "\nexpected: " << expected;
}

TEST_F(GatewayTest, TranslatedErrorsAnswerInTheClientsShape) {
  Keys("claude", {"sk-ant-ok-err-xxxxxxxxx"});
  Keys("main", {"sk-main-ok-err-xxxxxxxxx"});
  StubBehavior bad;
  bad.status = 400;
  bad.error_message = "prompt is too long: 250000 tokens > 200000 maximum";
  stub_.Script("sk-ant-ok-err-xxxxxxxxx", bad);
  bad.error_type = "context_length_exceeded";
  bad.error_message = "This model's maximum context length is 128000 tokens.";
  stub_.Script("sk-main-ok-err-xxxxxxxxx", bad);
  StartGateway();

  HttpResponse openai = Chat(R"({"model":"claude-test","messages":[{"role":"user","content":"Hi"}]})");
  EXPECT_EQ(openai.status, 400);
  EXPECT_TRUE(JsonBodyEq(openai.body,
                         R"({"error":{"message":"prompt is too long: 250000 tokens > 200000 maximum",)"
                         R"("type":"invalid_request_error","param":null,"code":"invalid_request_error"}})"))
      << openai.body;

  HttpResponse anthropic = HttpRequest(
      "POST", base_ + "/v1/messages", {{"x-api-key", kClientToken}},
      R"({"model":"gpt-test","max_tokens":64,"messages":[{"role":"user","content":"Hi"}]})");
  EXPECT_EQ(anthropic.status, 400);
  EXPECT_TRUE(JsonBodyEq(anthropic.body,
                         R"({"type":"error","error":{"type":"invalid_request_error",)"
                         R"("message":"This model's maximum context length is 128000 tokens."}})"))
      << anthropic.body;
  EXPECT_EQ(stub_.request_count(), 2u) << "a client error is never retried";
}

// An upstream's client error reaches a Responses client in OpenAI's shape, from either format.
TEST_F(GatewayTest, ResponsesClientGetsUpstreamErrorsInOpenAIShape) {
  Keys("claude", {"sk-ant-ok-resperr-xxxxxxx"});
  Keys("main", {"sk-main-ok-resperr-xxxxxx"});
  StubBehavior bad;
  bad.status = 400;
  bad.error_message = "prompt is too long: 250000 tokens > 200000 maximum";
  stub_.Script("sk-ant-ok-resperr-xxxxxxx", bad);
  bad.error_type = "context_length_exceeded";
  bad.error_message = "This model's maximum context length is 128000 tokens.";
  stub_.Script("sk-main-ok-resperr-xxxxxx", bad);
  StartGateway();
  HttpResponse anthropic =
      HttpPost(base_ + "/v1/responses", kClientToken, R"({"model":"claude-test","input":"Hi"})");
  EXPECT_EQ(anthropic.status, 400);
  EXPECT_TRUE(JsonBodyEq(
      anthropic.body,
      R"({"error":{"message":"prompt is too long: 250000 tokens > 200000 maximum",)"
      R"("type":"invalid_request_error","param":null,"code":"invalid_request_error"}})"));
  HttpResponse chat =
      HttpPost(base_ + "/v1/responses", kClientToken, R"({"model":"gpt-test","input":"Hi"})");
  EXPECT_EQ(chat.status, 400);
  EXPECT_TRUE(JsonBodyEq(
      chat.body,
      R"({"error":{"message":"This model's maximum context length is 128000 tokens.",)"
      R"("type":"invalid_request_error","param":null,"code":"context_length_exceeded"}})"));
}

TEST_F(GatewayTest, NoKeysIs503) {
  StartGateway();
  HttpResponse r = Chat(R"({"model":"gpt-test","messages":[]})");
  EXPECT_EQ(r.status, 503);
  EXPECT_NE(r.body.find("no_upstream_key"), std::string::npos) << r.body;
}

TEST_F(GatewayTest, KeysImportedWhileRunningArePickedUp) {
  StartGateway();
  EXPECT_EQ(Chat(R"({"model":"gpt-test","messages":[]})").status, 503);
  Keys("main", {"sk-main-ok-late-xxxxxxxxx"});
  app_->RefreshNowForTest();
  EXPECT_EQ(Chat(R"({"model":"gpt-test","messages":[]})").status, 200);
}

}  // namespace
}  // namespace keygate::testing
