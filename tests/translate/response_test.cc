// AnthropicToOpenAIChatResponse: golden cases per feature, and usage that agrees with
// provider::ParseResponseUsage on both sides of the translation.
#include <gtest/gtest.h>

#include <string>

#include "provider/provider.h"
#include "tests/translate/json_testing.h"
#include "translate/translate.h"

namespace keygate::translate {
namespace {

using testing::JsonEq;

struct Golden {
  const char* name;
  const char* input;
  const char* expected;
};

const Golden kGoldens[] = {
    {"text",
     R"({"id":"msg_01","type":"message","role":"assistant","model":"claude-sonnet-4-5",
         "content":[{"type":"text","text":"Hello"},{"type":"text","text":" world"}],
         "stop_reason":"end_turn","stop_sequence":null,
         "usage":{"input_tokens":10,"output_tokens":5}})",
     R"({"id":"msg_01","object":"chat.completion","created":1700000000,"model":"gpt-4o",
         "choices":[{"index":0,"message":{"role":"assistant","content":"Hello world","refusal":null},
                     "logprobs":null,"finish_reason":"stop"}],
         "usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15,
                  "prompt_tokens_details":{"cached_tokens":0}}})"},

    {"tool_use",
     R"({"id":"msg_02","type":"message","role":"assistant","model":"claude",
         "content":[{"type":"text","text":"Checking."},
                    {"type":"tool_use","id":"toolu_1","name":"get_weather","input":{"city":"Paris","days":2}},
                    {"type":"tool_use","id":"toolu_2","name":"now","input":{}}],
         "stop_reason":"tool_use","usage":{"input_tokens":3,"output_tokens":4}})",
     R"({"id":"msg_02","object":"chat.completion","created":1700000000,"model":"gpt-4o",
         "choices":[{"index":0,"message":{"role":"assistant","content":"Checking.",
            "tool_calls":[
              {"id":"toolu_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\",\"days\":2}"}},
              {"id":"toolu_2","type":"function","function":{"name":"now","arguments":"{}"}}],
            "refusal":null},
           "logprobs":null,"finish_reason":"tool_calls"}],
         "usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7,
                  "prompt_tokens_details":{"cached_tokens":0}}})"},

    {"tool_use_only_has_null_content",
     R"({"id":"m","type":"message","content":[{"type":"tool_use","id":"t","name":"f","input":{"a":[1,null,true]}}],
         "stop_reason":"tool_use"})",
     R"({"id":"m","object":"chat.completion","created":1700000000,"model":"gpt-4o",
         "choices":[{"index":0,"message":{"role":"assistant","content":null,
            "tool_calls":[{"id":"t","type":"function","function":{"name":"f","arguments":"{\"a\":[1,null,true]}"}}],
            "refusal":null},"logprobs":null,"finish_reason":"tool_calls"}]})"},

    {"thinking_becomes_reasoning_content",
     R"({"id":"m","type":"message","content":[
          {"type":"thinking","thinking":"Let me think.","signature":"sig"},
          {"type":"redacted_thinking","data":"xyz"},
          {"type":"text","text":"42"}],
         "stop_reason":"max_tokens","usage":{"input_tokens":1,"output_tokens":2}})",
     R"({"id":"m","object":"chat.completion","created":1700000000,"model":"gpt-4o",
         "choices":[{"index":0,"message":{"role":"assistant","content":"42",
            "reasoning_content":"Let me think.","refusal":null},
           "logprobs":null,"finish_reason":"length"}],
         "usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3,
                  "prompt_tokens_details":{"cached_tokens":0}}})"},

    {"cache_usage",
     R"({"id":"m","type":"message","content":[{"type":"text","text":"x"}],"stop_reason":"stop_sequence",
         "usage":{"input_tokens":25,"cache_creation_input_tokens":40,"cache_read_input_tokens":1000,
                  "output_tokens":7}})",
     R"({"id":"m","object":"chat.completion","created":1700000000,"model":"gpt-4o",
         "choices":[{"index":0,"message":{"role":"assistant","content":"x","refusal":null},
                     "logprobs":null,"finish_reason":"stop"}],
         "usage":{"prompt_tokens":1065,"completion_tokens":7,"total_tokens":1072,
                  "prompt_tokens_details":{"cached_tokens":1000}}})"},

    {"empty_content", R"({"id":"m","type":"message","content":[],"stop_reason":"end_turn"})",
     R"({"id":"m","object":"chat.completion","created":1700000000,"model":"gpt-4o",
         "choices":[{"index":0,"message":{"role":"assistant","content":"","refusal":null},
                     "logprobs":null,"finish_reason":"stop"}]})"},

    {"structured_output_tool_becomes_content",
     R"({"id":"m","type":"message","content":[{"type":"tool_use","id":"toolu_1",
         "name":"keygate_json_response","input":{"name":"Paris"}}],"stop_reason":"tool_use"})",
     R"({"id":"m","object":"chat.completion","created":1700000000,"model":"gpt-4o",
         "choices":[{"index":0,"message":{"role":"assistant","content":"{\"name\":\"Paris\"}","refusal":null},
                     "logprobs":null,"finish_reason":"stop"}]})"},

    {"refusal_stop_reason", R"({"id":"m","type":"message","content":[],"stop_reason":"refusal"})",
     R"({"id":"m","object":"chat.completion","created":1700000000,"model":"gpt-4o",
         "choices":[{"index":0,"message":{"role":"assistant","content":"","refusal":null},
                     "logprobs":null,"finish_reason":"content_filter"}]})"},
};

class ResponseGoldenTest : public ::testing::TestWithParam<Golden> {};

TEST_P(ResponseGoldenTest, TranslatesToExpected) {
  ResponseOptions options{.client_model = "gpt-4o", .created = 1700000000};
  StatusOr<std::string> out = AnthropicToOpenAIChatResponse(GetParam().input, options);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_TRUE(JsonEq(*out, GetParam().expected));
}

INSTANTIATE_TEST_SUITE_P(Response, ResponseGoldenTest, ::testing::ValuesIn(kGoldens),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(Response, FinishReasonTable) {
  EXPECT_EQ(FinishReasonFromAnthropic("end_turn"), "stop");
  EXPECT_EQ(FinishReasonFromAnthropic("stop_sequence"), "stop");
  EXPECT_EQ(FinishReasonFromAnthropic("pause_turn"), "stop");
  EXPECT_EQ(FinishReasonFromAnthropic("max_tokens"), "length");
  EXPECT_EQ(FinishReasonFromAnthropic("model_context_window_exceeded"), "length");
  EXPECT_EQ(FinishReasonFromAnthropic("tool_use"), "tool_calls");
  EXPECT_EQ(FinishReasonFromAnthropic("refusal"), "content_filter");
  EXPECT_EQ(FinishReasonFromAnthropic("something_new"), "stop");
}

// Billing reads provider::Usage: the translated body must read as the same usage as the upstream
// body (except cache writes, which OpenAI's format has no place for; they stay in prompt_tokens).
TEST(Response, UsageAgreesWithProviderNormalization) {
  const char* body = kGoldens[4].input;  // cache_usage
  provider::Usage upstream = provider::ParseResponseUsage(config::Format::kAnthropicMessages, body);
  auto out = AnthropicToOpenAIChatResponse(body, ResponseOptions{.client_model = "gpt-4o"});
  ASSERT_TRUE(out.ok());
  provider::Usage translated = provider::ParseResponseUsage(config::Format::kOpenAIChat, *out);
  ASSERT_TRUE(upstream.present && translated.present);
  EXPECT_EQ(translated.input_tokens, upstream.input_tokens);
  EXPECT_EQ(translated.output_tokens, upstream.output_tokens);
  EXPECT_EQ(translated.cache_read_tokens, upstream.cache_read_tokens);
  EXPECT_EQ(upstream.cache_write_tokens, 40);
}

TEST(Response, UpstreamGarbageIsInternal) {
  for (const char* body :
       {"", "not json", "[]", R"({"type":"error","error":{}})", R"({"type":"message"})"}) {
    auto out = AnthropicToOpenAIChatResponse(body, ResponseOptions{});
    ASSERT_FALSE(out.ok()) << body;
    EXPECT_EQ(out.status().code(), StatusCode::kInternal) << body;
  }
}

}  // namespace
}  // namespace keygate::translate
