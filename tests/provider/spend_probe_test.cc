// Spend probes: requests built per kind, and responses read from realistic bodies (table-driven).
#include <gtest/gtest.h>

#include <cmath>

#include "provider/spend_probe.h"

namespace keygate::provider {
namespace {

std::string Header(const ProbeRequest& r, const std::string& name) {
  for (const auto& [k, v] : r.headers) {
    if (k == name) return v;
  }
  return "";
}

TEST(SpendProbe, KindNames) {
  for (auto k : {SpendProbeKind::kLiteLLM, SpendProbeKind::kOpenRouter, SpendProbeKind::kHttp,
                 SpendProbeKind::kLedger}) {
    EXPECT_EQ(ParseSpendProbeKind(SpendProbeKindName(k)), k);
  }
  EXPECT_FALSE(ParseSpendProbeKind("LiteLLM").has_value());
}

TEST(SpendProbe, Requests) {
  SpendProbeSpec litellm{.kind = SpendProbeKind::kLiteLLM, .base_url = "https://llm.example"};
  auto r = BuildSpendRequest(litellm, "sk-abc");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->method, "GET");
  EXPECT_EQ(r->url, "https://llm.example/key/info");
  EXPECT_EQ(Header(*r, "authorization"), "Bearer sk-abc");

  SpendProbeSpec orouter{.kind = SpendProbeKind::kOpenRouter, .base_url = "https://openrouter.ai"};
  EXPECT_EQ(BuildSpendRequest(orouter, "k")->url, "https://openrouter.ai/api/v1/key");
  orouter.base_url = "https://openrouter.ai/api";  // the usual chat base
  EXPECT_EQ(BuildSpendRequest(orouter, "k")->url, "https://openrouter.ai/api/v1/key");

  SpendProbeSpec http{.kind = SpendProbeKind::kHttp,
                      .base_url = "https://api.example",
                      .auth = config::AuthStyle::kXApiKey,
                      .url_template = "{base}/v1/credits?x={base}"};
  r = BuildSpendRequest(http, "sk-x");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->url, "https://api.example/v1/credits?x=https://api.example");
  EXPECT_EQ(Header(*r, "x-api-key"), "sk-x");
  EXPECT_EQ(Header(*r, "authorization"), "");
  http.url_template = "ftp://nope";
  EXPECT_EQ(BuildSpendRequest(http, "k").status().code(), StatusCode::kInvalidArgument);

  SpendProbeSpec ledger{.kind = SpendProbeKind::kLedger};
  EXPECT_FALSE(BuildSpendRequest(ledger, "k").ok()) << "the ledger sends nothing";
}

struct ResponseCase {
  const char* name;
  SpendProbeKind kind;
  int status;
  const char* body;
  bool ok;
  int64_t spend = 0;
  std::optional<int64_t> budget;
  bool exceeded = false;
  StatusCode error = StatusCode::kOk;
};

TEST(SpendProbe, Responses) {
  const ResponseCase cases[] = {
      {"litellm key info", SpendProbeKind::kLiteLLM, 200,
       R"({"key":"88dc28d0f030c55ed4ab77ed8faf098196cb1c05df778539800c9f1243fe6b4b","info":{"key_name":"sk-...abcd","key_alias":null,"soft_budget_cooldown":false,"spend":9.512345,"expires":null,"models":[],"aliases":{},"config":{},"user_id":"u1","team_id":null,"max_parallel_requests":null,"metadata":{},"tpm_limit":null,"rpm_limit":null,"max_budget":10.0,"budget_duration":null,"budget_reset_at":null,"allowed_cache_controls":[],"permissions":{},"model_spend":{},"model_max_budget":{},"soft_budget":null}})",
       true, 9'512'345, 10'000'000},
      {"litellm no max_budget", SpendProbeKind::kLiteLLM, 200,
       R"({"key":"x","info":{"spend":0,"max_budget":null}})", true, 0, std::nullopt},
      {"litellm integer spend", SpendProbeKind::kLiteLLM, 200,
       R"({"info":{"spend":3,"max_budget":10}})", true, 3'000'000, 10'000'000},
      {"litellm budget exceeded 400", SpendProbeKind::kLiteLLM, 400,
       R"({"error":{"message":"Budget has been exceeded! Current cost: 10.0123, Max budget: 10.0","type":"budget_exceeded","param":null,"code":"400"}})",
       true, 10'012'300, 10'000'000, true},
      {"litellm budget exceeded 401, type only", SpendProbeKind::kLiteLLM, 401,
       R"({"error":{"message":"Authentication Error, ExceededBudget","type":"budget_exceeded","param":"None","code":"401"}})",
       true, 0, std::nullopt, true},
      {"litellm invalid key 401", SpendProbeKind::kLiteLLM, 401,
       R"({"error":{"message":"Authentication Error, Invalid proxy server token passed.","type":"auth_error","param":"None","code":"401"}})",
       false, 0, std::nullopt, false, StatusCode::kUnavailable},
      {"litellm 500", SpendProbeKind::kLiteLLM, 500, R"({"error":{"message":"db down"}})", false,
       0, std::nullopt, false, StatusCode::kUnavailable},
      {"litellm garbage", SpendProbeKind::kLiteLLM, 200, "<html>Bad gateway</html>", false, 0,
       std::nullopt, false, StatusCode::kInvalidArgument},
      {"litellm no info", SpendProbeKind::kLiteLLM, 200, R"({"key":"x"})", false, 0, std::nullopt,
       false, StatusCode::kInvalidArgument},
      {"litellm negative spend", SpendProbeKind::kLiteLLM, 200,
       R"({"info":{"spend":-1,"max_budget":10}})", false, 0, std::nullopt, false,
       StatusCode::kInvalidArgument},
      {"litellm spend null", SpendProbeKind::kLiteLLM, 200,
       R"({"info":{"spend":null,"max_budget":10}})", false, 0, std::nullopt, false,
       StatusCode::kInvalidArgument},
      {"openrouter key", SpendProbeKind::kOpenRouter, 200,
       R"({"data":{"label":"sk-or-v1-0e6...1c2","usage":4.25,"limit":5,"is_free_tier":false,"limit_remaining":0.75,"rate_limit":{"requests":50,"interval":"10s"}}})",
       true, 4'250'000, 5'000'000},
      {"openrouter unlimited", SpendProbeKind::kOpenRouter, 200,
       R"({"data":{"label":"x","usage":12.5,"limit":null,"is_free_tier":false}})", true,
       12'500'000, std::nullopt},
      {"openrouter 401", SpendProbeKind::kOpenRouter, 401,
       R"({"error":{"message":"No auth credentials found","code":401}})", false, 0, std::nullopt,
       false, StatusCode::kUnavailable},
      {"openrouter no data", SpendProbeKind::kOpenRouter, 200, R"({"usage":1})", false, 0,
       std::nullopt, false, StatusCode::kInvalidArgument},
  };
  for (const ResponseCase& tc : cases) {
    SpendProbeSpec spec{.kind = tc.kind, .base_url = "http://x"};
    auto r = ParseSpendResponse(spec, tc.status, tc.body);
    ASSERT_EQ(r.ok(), tc.ok) << tc.name << ": " << r.status().ToString();
    if (!tc.ok) {
      EXPECT_EQ(r.status().code(), tc.error) << tc.name;
      continue;
    }
    EXPECT_EQ(r->spend_micros, tc.spend) << tc.name;
    EXPECT_EQ(r->budget_micros, tc.budget) << tc.name;
    EXPECT_EQ(r->exceeded, tc.exceeded) << tc.name;
  }
}

TEST(SpendProbe, HttpPointers) {
  SpendProbeSpec spec{.kind = SpendProbeKind::kHttp,
                      .base_url = "http://x",
                      .url_template = "{base}/credits",
                      .spend_pointer = "/data/total_usage",
                      .budget_pointer = "/data/grants/0/amount"};
  auto r = ParseSpendResponse(
      spec, 200, R"({"data":{"total_usage":"7.5","grants":[{"amount":20.0}],"a/b":1}})");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->spend_micros, 7'500'000) << "a decimal string counts";
  EXPECT_EQ(r->budget_micros, 20'000'000);

  r = ParseSpendResponse(spec, 200, R"({"data":{"total_usage":1}})");
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->budget_micros.has_value()) << "budget pointer missing: unknown";

  spec.budget_pointer.clear();
  r = ParseSpendResponse(spec, 200, R"({"data":{"total_usage":2,"limit":3}})");
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->budget_micros.has_value()) << "no budget pointer: unknown";

  spec.spend_pointer = "/data/a~1b";  // RFC 6901 escape of '/'
  r = ParseSpendResponse(spec, 200, R"({"data":{"a/b":0.000001}})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->spend_micros, 1);

  EXPECT_EQ(ParseSpendResponse(spec, 200, R"({"data":{}})").status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseSpendResponse(spec, 200, R"({"data":{"a/b":"lots"}})").status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseSpendResponse(spec, 503, "").status().code(), StatusCode::kUnavailable);
}

TEST(SpendProbe, UsdToMicros) {
  EXPECT_EQ(UsdToMicros(0), 0);
  EXPECT_EQ(UsdToMicros(9.5), 9'500'000);
  EXPECT_EQ(UsdToMicros(0.0000004), 0);
  EXPECT_EQ(UsdToMicros(0.0000006), 1) << "nearest";
  EXPECT_FALSE(UsdToMicros(-0.01).has_value());
  EXPECT_FALSE(UsdToMicros(std::nan("")).has_value());
  EXPECT_FALSE(UsdToMicros(1e13).has_value());
}

}  // namespace
}  // namespace keygate::provider
