// Classification: one case (at least) per table row, with bodies the providers really send, and a
// check that no row of any table goes untested.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>

#include "provider/classifier_table.h"
#include "provider/provider.h"

namespace keygate::provider {
namespace {

struct Case {
  const char* name;  // test name
  Classifier classifier;
  int status;
  std::string_view body;
  std::optional<int64_t> retry_after_ms;
  Action action;
  std::string_view reason;
  std::string_view row;  // the table row expected to decide
  int64_t cooldown_ms = 0;
};

constexpr Classifier kO = Classifier::kOpenAI;
constexpr Classifier kA = Classifier::kAnthropic;
constexpr Classifier kL = Classifier::kLiteLLM;

// ---- bodies as the providers send them

constexpr std::string_view kOpenAIOk =
    R"({"id":"chatcmpl-9x","object":"chat.completion","created":1700000000,"model":"gpt-4o-mini",)"
    R"("choices":[{"index":0,"message":{"role":"assistant","content":"Hi"},"finish_reason":"stop"}],)"
    R"("usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11}})";
constexpr std::string_view kOpenAIInvalidKey =
    R"({"error":{"message":"Incorrect API key provided: sk-proj-****abcd. You can find your API )"
    R"(key at https://platform.openai.com/account/api-keys.","type":"invalid_request_error",)"
    R"("param":null,"code":"invalid_api_key"}})";
constexpr std::string_view kOpenAIDeactivated =
    R"({"error":{"message":"Your OpenAI account has been deactivated, please check your email )"
    R"(for more information.","type":"invalid_request_error","code":"account_deactivated",)"
    R"("param":null}})";
constexpr std::string_view kOpenAIRegion =
    R"({"error":{"code":"unsupported_country_region_territory","message":"Country, region, or )"
    R"(territory not supported","param":null,"type":"request_forbidden"}})";
constexpr std::string_view kOpenAIProjectNoModel =
    R"({"error":{"message":"Project `proj_abc123` does not have access to model `gpt-4o`",)"
    R"("type":"invalid_request_error","param":null,"code":"model_not_found"}})";
constexpr std::string_view kOpenAIScopes =
    R"({"error":{"message":"You have insufficient permissions for this operation. Missing )"
    R"(scopes: model.request.","type":"invalid_request_error","param":null,"code":null}})";
constexpr std::string_view kOpenRouterCredits =
    R"({"error":{"message":"Insufficient credits. Add more using )"
    R"(https://openrouter.ai/settings/credits","code":402}})";
constexpr std::string_view kOpenAIQuota =
    R"({"error":{"message":"You exceeded your current quota, please check your plan and billing )"
    R"(details. For more information on this error, read the docs: )"
    R"(https://platform.openai.com/docs/guides/error-codes/api-errors.","type":"insufficient_quota",)"
    R"("param":null,"code":"insufficient_quota"}})";
constexpr std::string_view kOpenAIRateLimit =
    R"({"error":{"message":"Rate limit reached for gpt-4o in organization org-abc on tokens per )"
    R"(min (TPM): Limit 30000, Used 29000, Requested 1500. Please try again in 1.0s.",)"
    R"("type":"tokens","param":null,"code":"rate_limit_exceeded"}})";
constexpr std::string_view kOpenAIBillingHardLimit =
    R"({"error":{"code":"billing_hard_limit_reached","message":"Billing hard limit has been )"
    R"(reached","param":null,"type":"invalid_request_error"}})";
constexpr std::string_view kOpenAI500 =
    R"({"error":{"message":"The server had an error while processing your request. Sorry about )"
    R"(that!","type":"server_error","param":null,"code":null}})";
constexpr std::string_view kOpenAI503 =
    R"({"error":{"message":"The engine is currently overloaded, please try again later",)"
    R"("type":"server_error","param":null,"code":null}})";
constexpr std::string_view kCloudflare502 =
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad "
    "Gateway</h1></center>\r\n<hr><center>cloudflare</center>\r\n</body>\r\n</html>\r\n";
constexpr std::string_view kOpenAIContext =
    R"({"error":{"message":"This model's maximum context length is 128000 tokens. However, your )"
    R"(messages resulted in 130001 tokens. Please reduce the length of the messages.",)"
    R"("type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}})";
constexpr std::string_view kOpenAIModel404 =
    R"({"error":{"message":"The model `gpt-9` does not exist or you do not have access to it.",)"
    R"("type":"invalid_request_error","param":null,"code":"model_not_found"}})";

constexpr std::string_view kAnthropicOk =
    R"({"id":"msg_01","type":"message","role":"assistant","model":"claude-sonnet-4-5",)"
    R"("content":[{"type":"text","text":"Hi"}],"stop_reason":"end_turn","stop_sequence":null,)"
    R"("usage":{"input_tokens":10,"output_tokens":3}})";
constexpr std::string_view kAnthropicAuth =
    R"({"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"},)"
    R"("request_id":"req_011CSHoEeqs5C35K2UUqR7Fy"})";
constexpr std::string_view kAnthropicPermission =
    R"({"type":"error","error":{"type":"permission_error","message":"Your API key does not have )"
    R"(permission to use the specified resource."}})";
constexpr std::string_view kAnthropicBilling =
    R"({"type":"error","error":{"type":"billing_error","message":"There is an issue with your )"
    R"(billing or payment information."}})";
constexpr std::string_view kAnthropicCredit =
    R"({"type":"error","error":{"type":"invalid_request_error","message":"Your credit balance is )"
    R"(too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase )"
    R"(credits."},"request_id":"req_011CbrFTcXhtiMzr3s6EocF7"})";
constexpr std::string_view kAnthropicUsageLimit =
    R"({"type":"error","error":{"type":"invalid_request_error","message":"You have reached your )"
    R"(specified API usage limits. You will regain access on 2026-04-01 at 00:00 UTC."},)"
    R"("request_id":"req_011CZLrUfBVkVHn5T6EqQaf7"})";
constexpr std::string_view kAnthropicOrgDisabled =
    R"({"type":"error","error":{"type":"invalid_request_error","message":"This organization has )"
    R"(been disabled."},"request_id":"req_011CXF1SZ3S3oXChsdxhoUwV"})";
constexpr std::string_view kAnthropicRateLimit =
    R"({"type":"error","error":{"type":"rate_limit_error","message":"This request would exceed )"
    R"(your account's rate limit. Please try again later."},"request_id":"req_011CcR9mkMvXdaiWP"})";
constexpr std::string_view kAnthropicOverloaded =
    R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})";
constexpr std::string_view kAnthropicApiError =
    R"({"type":"error","error":{"type":"api_error","message":"Internal server error"}})";
constexpr std::string_view kAnthropicBadRequest =
    R"({"type":"error","error":{"type":"invalid_request_error","message":"messages: roles must )"
    R"(alternate between \"user\" and \"assistant\", but found multiple \"user\" roles in a row"}})";
constexpr std::string_view kAnthropicTooLarge =
    R"({"type":"error","error":{"type":"request_too_large","message":"Request exceeds the maximum )"
    R"(allowed number of bytes."}})";

constexpr std::string_view kLiteLLMOk = kOpenAIOk;
constexpr std::string_view kLiteLLMBudget =
    R"({"error":{"message":"Budget has been exceeded! Current cost: 10.000532, Max budget: 10.0",)"
    R"("type":"budget_exceeded","param":null,"code":"400"}})";
constexpr std::string_view kLiteLLMBudget429 =
    R"({"error":{"message":"Budget has been exceeded! Current cost: 5.0, Max budget: 1.0",)"
    R"("type":"budget_exceeded","param":null,"code":"429"}})";
constexpr std::string_view kLiteLLMBudgetUntyped =
    R"({"error":{"message":"litellm.BudgetExceededError: Budget has been exceeded! Current cost: )"
    R"(12.3, Max budget: 12.0","type":null,"param":null,"code":"400"}})";
constexpr std::string_view kLiteLLMBudgetWrapped429 =
    R"({"error":{"message":"litellm.RateLimitError: Budget has been exceeded! Current cost: )"
    R"(2043.1, Max budget: 2042.8","type":"None","param":"None","code":"429"}})";
constexpr std::string_view kLiteLLMExceededBudget =
    R"({"error":{"message":"ExceededBudget: User=u-42 over budget. Spend=20.1, Budget=20.0",)"
    R"("type":"auth_error","param":"None","code":"400"}})";
constexpr std::string_view kLiteLLMExpired =
    R"({"error":{"message":"Authentication Error - Expired Key. Key Expiry time 2026-01-01 )"
    R"(00:00:00 and current time 2026-02-01 10:00:00","type":"expired_key","param":"None",)"
    R"("code":"400"}})";
constexpr std::string_view kLiteLLMKeyModel =
    R"({"error":{"message":"key not allowed to access model. This key can only access )"
    R"(models=['gpt-4o-mini']. Tried to access gpt-4o","type":"key_model_access_denied",)"
    R"("param":"model","code":"401"}})";
constexpr std::string_view kLiteLLMTeamModel =
    R"({"error":{"message":"team not allowed to access model. This team can only access )"
    R"(models=['gpt-4o-mini']. Tried to access gpt-4o","type":"team_model_access_denied",)"
    R"("param":"model","code":"401"}})";
constexpr std::string_view kLiteLLMUserModel =
    R"({"error":{"message":"user not allowed to access model.","type":"user_model_access_denied",)"
    R"("param":"model","code":"401"}})";
constexpr std::string_view kLiteLLMOrgModel =
    R"({"error":{"message":"organization not allowed to access model.",)"
    R"("type":"org_model_access_denied","param":"model","code":"401"}})";
constexpr std::string_view kLiteLLMAuth =
    R"({"error":{"message":"Authentication Error, Invalid proxy server token passed. Received API )"
    R"(Key = sk-...abcd, Key Hash (Token) =3b1f. Unable to find token in cache or )"
    R"(`LiteLLM_VerificationTokenTable`","type":"auth_error","param":"None","code":"401"}})";
constexpr std::string_view kLiteLLMBlocked =
    R"({"error":{"message":"Authentication Error, Key is blocked. Update via `/key/unblock` if )"
    R"(you're an admin.","type":"auth_error","param":"None","code":"403"}})";
constexpr std::string_view kLiteLLMParallel =
    R"({"error":{"message":"Max parallel request limit reached. Hit limit for api_key: )"
    R"(hashed-key. tpm_limit: 100, current_tpm: 120, rpm_limit: 10, current_rpm: 11.",)"
    R"("type":"None","param":"None","code":"429"}})";
constexpr std::string_view kLiteLLMBadModel =
    R"({"error":{"message":"{'error': '/chat/completions: Invalid model name passed in )"
    R"(model=gpt-9. Call `/v1/models` to view available models for your key.'}",)"
    R"("type":"None","param":"None","code":"400"}})";
constexpr std::string_view kLiteLLM500 =
    R"({"error":{"message":"litellm.InternalServerError: AnthropicException - Overloaded.",)"
    R"("type":null,"param":null,"code":"500"}})";

const Case kCases[] = {
    // ---- OpenAI
    {"OpenAI_200", kO, 200, kOpenAIOk, {}, Action::kPass, "ok", "ok"},
    {"OpenAI_201Empty", kO, 201, "", {}, Action::kPass, "ok", "ok"},
    {"OpenAI_407", kO, 407, "", {}, Action::kProxy, "proxy_failed", "proxy_auth"},
    {"OpenAI_401InvalidKey",
     kO,
     401,
     kOpenAIInvalidKey,
     {},
     Action::kRotate,
     "invalid_key",
     "unauthorized"},
    {"OpenAI_401Deactivated",
     kO,
     401,
     kOpenAIDeactivated,
     {},
     Action::kRotate,
     "invalid_key",
     "unauthorized"},
    {"OpenAI_403Region",
     kO,
     403,
     kOpenAIRegion,
     {},
     Action::kProxy,
     "region_blocked",
     "region_blocked"},
    {"OpenAI_403ProjectModel",
     kO,
     403,
     kOpenAIProjectNoModel,
     {},
     Action::kPass,
     "model_access_denied",
     "model_access_denied"},
    {"OpenAI_403Scopes", kO, 403, kOpenAIScopes, {}, Action::kRotate, "key_forbidden", "forbidden"},
    {"OpenAI_402Credits",
     kO,
     402,
     kOpenRouterCredits,
     {},
     Action::kRotate,
     "payment_required",
     "payment_required"},
    {"OpenAI_429Quota", kO, 429, kOpenAIQuota, 20'000, Action::kRotate, "insufficient_quota",
     "insufficient_quota"},
    {"OpenAI_429RateLimit", kO, 429, kOpenAIRateLimit, 1'000, Action::kCooldown, "rate_limited",
     "rate_limited", 1'000},
    {"OpenAI_429NoRetryAfter",
     kO,
     429,
     kOpenAIRateLimit,
     {},
     Action::kCooldown,
     "rate_limited",
     "rate_limited",
     0},
    {"OpenAI_400BillingHardLimit",
     kO,
     400,
     kOpenAIBillingHardLimit,
     {},
     Action::kRotate,
     "billing_limit_reached",
     "billing_hard_limit"},
    {"OpenAI_408", kO, 408, "", {}, Action::kRetry, "request_timeout", "request_timeout"},
    {"OpenAI_500", kO, 500, kOpenAI500, {}, Action::kRetry, "upstream_5xx", "server_error"},
    {"OpenAI_503", kO, 503, kOpenAI503, {}, Action::kRetry, "upstream_5xx", "server_error"},
    {"OpenAI_502Html", kO, 502, kCloudflare502, {}, Action::kRetry, "upstream_5xx", "server_error"},
    {"OpenAI_400Context",
     kO,
     400,
     kOpenAIContext,
     {},
     Action::kPass,
     "client_error",
     "client_error"},
    {"OpenAI_404Model",
     kO,
     404,
     kOpenAIModel404,
     {},
     Action::kPass,
     "client_error",
     "client_error"},
    {"OpenAI_302", kO, 302, "", {}, Action::kRetry, "unexpected_status", "unexpected_status"},
    {"OpenAI_Status0", kO, 0, "", {}, Action::kRetry, "unexpected_status", "unexpected_status"},
    // Truncated or non-JSON bodies classify by status alone.
    {"OpenAI_429QuotaTruncated", kO, 429, kOpenAIQuota.substr(0, 60), 5'000, Action::kCooldown,
     "rate_limited", "rate_limited", 5'000},
    {"OpenAI_403RegionAsText",
     kO,
     403,
     "Country, region, or territory not supported",
     {},
     Action::kRotate,
     "key_forbidden",
     "forbidden"},
    {"OpenAI_401Html",
     kO,
     401,
     "<html><body>401 Authorization Required</body></html>",
     {},
     Action::kRotate,
     "invalid_key",
     "unauthorized"},

    // ---- Anthropic
    {"Anthropic_200", kA, 200, kAnthropicOk, {}, Action::kPass, "ok", "ok"},
    {"Anthropic_407", kA, 407, "", {}, Action::kProxy, "proxy_failed", "proxy_auth"},
    {"Anthropic_401", kA, 401, kAnthropicAuth, {}, Action::kRotate, "invalid_key", "unauthorized"},
    {"Anthropic_403",
     kA,
     403,
     kAnthropicPermission,
     {},
     Action::kRotate,
     "key_forbidden",
     "forbidden"},
    {"Anthropic_402",
     kA,
     402,
     kAnthropicBilling,
     {},
     Action::kRotate,
     "payment_required",
     "payment_required"},
    {"Anthropic_400BillingError",
     kA,
     400,
     kAnthropicBilling,
     {},
     Action::kRotate,
     "payment_required",
     "billing_error"},
    {"Anthropic_400CreditBalance",
     kA,
     400,
     kAnthropicCredit,
     {},
     Action::kRotate,
     "credit_balance_too_low",
     "credit_balance_message"},
    {"Anthropic_400UsageLimit",
     kA,
     400,
     kAnthropicUsageLimit,
     {},
     Action::kRotate,
     "usage_limit_reached",
     "usage_limit_message"},
    {"Anthropic_400OrgDisabled",
     kA,
     400,
     kAnthropicOrgDisabled,
     {},
     Action::kRotate,
     "key_disabled",
     "organization_disabled_message"},
    {"Anthropic_429", kA, 429, kAnthropicRateLimit, 15'000, Action::kCooldown, "rate_limited",
     "rate_limited", 15'000},
    {"Anthropic_529",
     kA,
     529,
     kAnthropicOverloaded,
     {},
     Action::kRetry,
     "overloaded",
     "overloaded"},
    {"Anthropic_503Overloaded",
     kA,
     503,
     kAnthropicOverloaded,
     {},
     Action::kRetry,
     "overloaded",
     "overloaded_error"},
    {"Anthropic_408", kA, 408, "", {}, Action::kRetry, "request_timeout", "request_timeout"},
    {"Anthropic_500",
     kA,
     500,
     kAnthropicApiError,
     {},
     Action::kRetry,
     "upstream_5xx",
     "server_error"},
    {"Anthropic_400BadRequest",
     kA,
     400,
     kAnthropicBadRequest,
     {},
     Action::kPass,
     "client_error",
     "client_error"},
    {"Anthropic_413",
     kA,
     413,
     kAnthropicTooLarge,
     {},
     Action::kPass,
     "client_error",
     "client_error"},
    {"Anthropic_101", kA, 101, "", {}, Action::kRetry, "unexpected_status", "unexpected_status"},
    // A credit-balance body cut before its message is an ordinary 400: nothing tells it apart.
    {"Anthropic_400CreditTruncated",
     kA,
     400,
     kAnthropicCredit.substr(0, 70),
     {},
     Action::kPass,
     "client_error",
     "client_error"},
    // The message row matches only on 400, not on any status that happens to say it.
    {"Anthropic_500CreditMessage",
     kA,
     500,
     kAnthropicCredit,
     {},
     Action::kRetry,
     "upstream_5xx",
     "server_error"},

    // ---- LiteLLM
    {"LiteLLM_200", kL, 200, kLiteLLMOk, {}, Action::kPass, "ok", "ok"},
    {"LiteLLM_407", kL, 407, "", {}, Action::kProxy, "proxy_failed", "proxy_auth"},
    {"LiteLLM_400Budget",
     kL,
     400,
     kLiteLLMBudget,
     {},
     Action::kRotate,
     "budget_exceeded",
     "budget_exceeded"},
    {"LiteLLM_429Budget", kL, 429, kLiteLLMBudget429, 60'000, Action::kRotate, "budget_exceeded",
     "budget_exceeded"},
    {"LiteLLM_400BudgetUntyped",
     kL,
     400,
     kLiteLLMBudgetUntyped,
     {},
     Action::kRotate,
     "budget_exceeded",
     "budget_exceeded_message"},
    {"LiteLLM_429BudgetWrapped",
     kL,
     429,
     kLiteLLMBudgetWrapped429,
     {},
     Action::kRotate,
     "budget_exceeded",
     "budget_exceeded_message"},
    {"LiteLLM_400ExceededBudget",
     kL,
     400,
     kLiteLLMExceededBudget,
     {},
     Action::kRotate,
     "budget_exceeded",
     "exceeded_budget_message"},
    {"LiteLLM_400Expired",
     kL,
     400,
     kLiteLLMExpired,
     {},
     Action::kRotate,
     "key_expired",
     "expired_key"},
    {"LiteLLM_401KeyModel",
     kL,
     401,
     kLiteLLMKeyModel,
     {},
     Action::kPass,
     "model_access_denied",
     "key_model_access_denied"},
    {"LiteLLM_401TeamModel",
     kL,
     401,
     kLiteLLMTeamModel,
     {},
     Action::kPass,
     "model_access_denied",
     "team_model_access_denied"},
    {"LiteLLM_401UserModel",
     kL,
     401,
     kLiteLLMUserModel,
     {},
     Action::kPass,
     "model_access_denied",
     "user_model_access_denied"},
    {"LiteLLM_401OrgModel",
     kL,
     401,
     kLiteLLMOrgModel,
     {},
     Action::kPass,
     "model_access_denied",
     "org_model_access_denied"},
    {"LiteLLM_401Auth", kL, 401, kLiteLLMAuth, {}, Action::kRotate, "invalid_key", "unauthorized"},
    {"LiteLLM_403Blocked",
     kL,
     403,
     kLiteLLMBlocked,
     {},
     Action::kRotate,
     "key_forbidden",
     "forbidden"},
    {"LiteLLM_402", kL, 402, "", {}, Action::kRotate, "payment_required", "payment_required"},
    {"LiteLLM_429Parallel", kL, 429, kLiteLLMParallel, 2'000, Action::kCooldown, "rate_limited",
     "rate_limited", 2'000},
    // A provider's quota error behind LiteLLM is LiteLLM's deployment, not our key: cool down.
    {"LiteLLM_429WrappedQuota",
     kL,
     429,
     kOpenAIQuota,
     {},
     Action::kCooldown,
     "rate_limited",
     "rate_limited"},
    {"LiteLLM_408", kL, 408, "", {}, Action::kRetry, "request_timeout", "request_timeout"},
    {"LiteLLM_500", kL, 500, kLiteLLM500, {}, Action::kRetry, "upstream_5xx", "server_error"},
    {"LiteLLM_400BadModel",
     kL,
     400,
     kLiteLLMBadModel,
     {},
     Action::kPass,
     "client_error",
     "client_error"},
    {"LiteLLM_304", kL, 304, "", {}, Action::kRetry, "unexpected_status", "unexpected_status"},
    {"LiteLLM_400BudgetAsPlainError",
     kL,
     400,
     R"({"error":"Budget has been exceeded! Current cost: 3.2, Max budget: 3.0"})",
     {},
     Action::kRotate,
     "budget_exceeded",
     "budget_exceeded_message"},
    {"LiteLLM_400BudgetInDetail",
     kL,
     400,
     R"({"detail":{"error":"Budget has been exceeded! Current cost: 3.2, Max budget: 3.0"}})",
     {},
     Action::kRotate,
     "budget_exceeded",
     "budget_exceeded_message"},
    {"LiteLLM_400BudgetNotJson",
     kL,
     400,
     "Budget has been exceeded! Current cost: 3.2",
     {},
     Action::kPass,
     "client_error",
     "client_error"},
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

class ClassifierTableTest : public testing::TestWithParam<Case> {};

TEST_P(ClassifierTableTest, Classifies) {
  const Case& c = GetParam();
  UpstreamOutcome outcome;
  outcome.status = c.status;
  outcome.body = c.body;
  outcome.retry_after_ms = c.retry_after_ms;
  Verdict v = Classify(c.classifier, outcome);
  EXPECT_EQ(ActionName(v.action), ActionName(c.action));
  EXPECT_EQ(v.reason, c.reason);
  EXPECT_EQ(v.cooldown_ms, c.cooldown_ms);
  EXPECT_EQ(internal::MatchRow(c.classifier, c.status, c.body)->name, c.row);
}

INSTANTIATE_TEST_SUITE_P(Rows, ClassifierTableTest, testing::ValuesIn(kCases),
                         [](const testing::TestParamInfo<Case>& info) {
                           return std::string(info.param.name);
                         });

TEST(ClassifierTable, EveryRowIsExercised) {
  std::map<Classifier, std::set<std::string_view>> hit;
  for (const Case& c : kCases) hit[c.classifier].insert(c.row);
  for (Classifier cl : {kO, kA, kL}) {
    for (const internal::ClassifierRow& row : internal::ClassifierTable(cl)) {
      EXPECT_TRUE(hit[cl].count(row.name)) << "row without a test: " << row.name;
    }
  }
}

TEST(ClassifierTable, RowNamesAreUniqueAndTablesEndWithCatchAll) {
  for (Classifier cl : {kO, kA, kL}) {
    std::set<std::string_view> names;
    auto table = internal::ClassifierTable(cl);
    for (const internal::ClassifierRow& row : table) {
      EXPECT_TRUE(names.insert(row.name).second) << row.name;
      EXPECT_LE(row.status_min, row.status_max) << row.name;
      EXPECT_FALSE(row.reason.empty()) << row.name;
    }
    ASSERT_FALSE(table.empty());
    EXPECT_EQ(table.back().status_min, 0);
    EXPECT_EQ(table.back().status_max, 999);
    EXPECT_TRUE(table.back().id.empty() && table.back().message.empty());
  }
}

TEST(ClassifierTable, MessageRowsAreCaseInsensitive) {
  Verdict v = Classify(kA, {Transport::kOk, 400,
                            R"({"type":"error","error":{"type":"invalid_request_error",)"
                            R"("message":"YOUR CREDIT BALANCE IS TOO LOW to access the API"}})",
                            std::nullopt});
  EXPECT_EQ(v.action, Action::kRotate);
  EXPECT_EQ(v.reason, "credit_balance_too_low");
}

TEST(ClassifierTable, IdMatchesCodeAsWellAsType) {
  // insufficient_quota only in error.code (type is something else) still rotates.
  Verdict v = Classify(
      kO, {Transport::kOk, 429,
           R"({"error":{"message":"quota","type":"requests","code":"insufficient_quota"}})",
           std::nullopt});
  EXPECT_EQ(v.reason, "insufficient_quota");
  // … and only in error.type.
  v = Classify(kO, {Transport::kOk, 429,
                    R"({"error":{"message":"quota","type":"insufficient_quota","code":null}})",
                    std::nullopt});
  EXPECT_EQ(v.reason, "insufficient_quota");
}

TEST(ClassifierTable, IdMustMatchExactly) {
  Verdict v =
      Classify(kO, {Transport::kOk, 429,
                    R"({"error":{"message":"x","type":"tokens","code":"insufficient_quota_soon"}})",
                    std::nullopt});
  EXPECT_EQ(v.reason, "rate_limited");
}

TEST(ClassifierTable, CooldownOnlyForCooldownRowsAndNeverNegative) {
  Verdict v = Classify(kO, {Transport::kOk, 500, kOpenAI500, 30'000});
  EXPECT_EQ(v.action, Action::kRetry);
  EXPECT_EQ(v.cooldown_ms, 0);
  v = Classify(kO, {Transport::kOk, 429, kOpenAIRateLimit, -5});
  EXPECT_EQ(v.action, Action::kCooldown);
  EXPECT_EQ(v.cooldown_ms, 0);
}

// ---- transport failures: decided before any status or body is looked at

struct TransportCase {
  Transport transport;
  Action action;
  std::string_view reason;
};

TEST(ClassifyTransport, EachFailureForEveryClassifier) {
  const TransportCase cases[] = {
      {Transport::kConnect, Action::kRetry, "connect_failed"},
      {Transport::kProxy, Action::kProxy, "proxy_failed"},
      {Transport::kTls, Action::kRetry, "tls_failed"},
      {Transport::kTimeout, Action::kRetry, "timeout"},
      {Transport::kReset, Action::kRetry, "connection_reset"},
      {Transport::kOther, Action::kRetry, "transport_failed"},
  };
  for (Classifier cl : {kO, kA, kL}) {
    for (const TransportCase& c : cases) {
      // A proxy that refused with 401 (tinyproxy) must never read as the key's 401.
      Verdict v = Classify(cl, {c.transport, 401, kOpenAIInvalidKey, 1000});
      EXPECT_EQ(v.action, c.action) << c.reason;
      EXPECT_EQ(v.reason, c.reason);
      EXPECT_EQ(v.cooldown_ms, 0);
    }
  }
}

TEST(Classifier, ParseAndNames) {
  EXPECT_EQ(ParseClassifier("openai"), Classifier::kOpenAI);
  EXPECT_EQ(ParseClassifier("anthropic"), Classifier::kAnthropic);
  EXPECT_EQ(ParseClassifier("litellm"), Classifier::kLiteLLM);
  EXPECT_EQ(ParseClassifier("OpenAI"), std::nullopt);
  EXPECT_EQ(ParseClassifier(""), std::nullopt);
  EXPECT_EQ(ActionName(Action::kPass), "pass");
  EXPECT_EQ(ActionName(Action::kRetry), "retry");
  EXPECT_EQ(ActionName(Action::kCooldown), "cooldown");
  EXPECT_EQ(ActionName(Action::kRotate), "rotate");
  EXPECT_EQ(ActionName(Action::kProxy), "proxy");
}

TEST(ReadErrorFields, Shapes) {
  internal::ErrorFields f = internal::ReadErrorFields(kOpenAIQuota);
  EXPECT_EQ(f.type, "insufficient_quota");
  EXPECT_EQ(f.code, "insufficient_quota");
  EXPECT_NE(f.message.find("exceeded your current quota"), std::string::npos);

  f = internal::ReadErrorFields(kAnthropicCredit);
  EXPECT_EQ(f.type, "invalid_request_error");
  EXPECT_EQ(f.code, "");
  EXPECT_NE(f.message.find("credit balance"), std::string::npos);

  f = internal::ReadErrorFields(kOpenRouterCredits);
  EXPECT_EQ(f.code, "402");

  f = internal::ReadErrorFields(R"({"message":"plain"})");
  EXPECT_EQ(f.message, "plain");

  f = internal::ReadErrorFields(R"({"detail":"Not authenticated"})");
  EXPECT_EQ(f.message, "Not authenticated");

  for (std::string_view junk : {"", "null", "[]", "{", "<html>", "{\"error\":null}",
                                "{\"error\":{\"type\":7,\"message\":[1]}}"}) {
    f = internal::ReadErrorFields(junk);
    EXPECT_EQ(f.type, "") << junk;
    EXPECT_EQ(f.code, "") << junk;
    EXPECT_EQ(f.message, "") << junk;
  }
}

// ---- Retry-After

constexpr int64_t kRfcExampleMs = 784'111'777'000;  // Sun, 06 Nov 1994 08:49:37 GMT

struct RetryAfterCase {
  std::string_view value;
  int64_t now_ms;
  std::optional<int64_t> want;
};

TEST(ParseRetryAfterMs, Table) {
  const RetryAfterCase cases[] = {
      {"30", 0, 30'000},
      {"0", 0, 0},
      {" 120 ", 0, 120'000},
      {"\t7", 0, 7'000},
      // Fractions are outside RFC 7231, but unambiguous: honoured, rounded up to the ms.
      {"1.5", 0, 1'500},
      {"0.25", 0, 250},
      {"0.0001", 0, 1},
      {"2.0009", 0, 2'001},
      {".5", 0, 500},
      // Negative means "now".
      {"-5", 0, 0},
      {"999999999999", 0, 999'999'999'999'000},
      {"9999999999999", 0, std::nullopt},  // 13 digits: garbage, not an overflow
      {"", 0, std::nullopt},
      {"   ", 0, std::nullopt},
      {"abc", 0, std::nullopt},
      {"30s", 0, std::nullopt},
      {"1e3", 0, std::nullopt},
      {"5.", 0, std::nullopt},
      {"1.2.3", 0, std::nullopt},
      {"-", 0, std::nullopt},
      {"+5", 0, std::nullopt},
      // HTTP dates, relative to now.
      {"Sun, 06 Nov 1994 08:49:37 GMT", kRfcExampleMs - 30'000, 30'000},
      {"Sun, 06 Nov 1994 08:49:37 GMT", kRfcExampleMs, 0},
      {"Sun, 06 Nov 1994 08:49:37 GMT", kRfcExampleMs + 5'000, 0},  // in the past: clamp
      {"Sun, 06 Nov 1994 08:49:37 GMT", kRfcExampleMs - 1, 1},
      {"Sunday, 06-Nov-94 08:49:37 GMT", kRfcExampleMs - 2'000, 2'000},  // RFC 850
      {"Sun Nov  6 08:49:37 1994", kRfcExampleMs - 3'000, 3'000},        // asctime
      {"Wed, 01 Jan 2031 00:00:00 GMT", 1'924'992'000'000 - 60'000, 60'000},
      {"Thu, 29 Feb 2024 12:00:00 GMT", 1'709'208'000'000 - 1'000, 1'000},  // leap day
      {"Wed, 29 Feb 2023 12:00:00 GMT", 0, std::nullopt},                   // no such day
      {"Sun, 31 Nov 1994 08:49:37 GMT", 0, std::nullopt},
      {"Sun, 06 Nov 1994 24:49:37 GMT", 0, std::nullopt},
      {"Sun, 06 Nov 1994 08:49:37 UTC", 0, std::nullopt},
      {"Sun, 06 nov 1994 08:49:37 GMT", 0, std::nullopt},
      {"Sun, 6 Nov 1994 08:49:37 GMT", 0, std::nullopt},
      {"Sun, 06 Nov 1994 08:49:37 GMT trailing", 0, std::nullopt},
      {"2026-01-01T00:00:00Z", 0, std::nullopt},
  };
  for (const RetryAfterCase& c : cases) {
    EXPECT_EQ(ParseRetryAfterMs(c.value, c.now_ms), c.want) << "'" << c.value << "'";
  }
}

}  // namespace
}  // namespace keygate::provider
