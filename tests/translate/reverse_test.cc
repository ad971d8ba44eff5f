// The reverse direction: AnthropicToOpenAIChatRequest and OpenAIChatToAnthropicResponse goldens,
// refusals naming the field, and round trips through both directions.
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

const Golden kRequestGoldens[] = {
    {"minimal",
     R"({"model":"gpt-4o","max_tokens":100,"messages":[{"role":"user","content":"Hi"}]})",
     R"({"model":"gpt-4o","messages":[{"role":"user","content":"Hi"}],"max_completion_tokens":100})"},

    {"system_sampling_stop_stream_user",
     R"({"model":"m","max_tokens":10,"system":[{"type":"text","text":"Be terse.","cache_control":{"type":"ephemeral"}}],
         "temperature":0.5,"top_p":0.9,"stop_sequences":["END"],"stream":true,
         "metadata":{"user_id":"u-1"},"messages":[{"role":"user","content":"Hi"}]})",
     R"({"model":"m","messages":[{"role":"system","content":[{"type":"text","text":"Be terse."}]},
                                 {"role":"user","content":"Hi"}],
         "max_completion_tokens":10,"temperature":0.5,"top_p":0.9,"stop":["END"],"stream":true,
         "stream_options":{"include_usage":true},"user":"u-1"})"},

    {"images",
     R"({"model":"m","max_tokens":10,"messages":[{"role":"user","content":[
         {"type":"text","text":"What?"},
         {"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBOR"}},
         {"type":"image","source":{"type":"url","url":"https://x/y.png"}}]}]})",
     R"({"model":"m","messages":[{"role":"user","content":[
         {"type":"text","text":"What?"},
         {"type":"image_url","image_url":{"url":"data:image/png;base64,iVBOR"}},
         {"type":"image_url","image_url":{"url":"https://x/y.png"}}]}],"max_completion_tokens":10})"},

    {"tools_round_trip",
     R"({"model":"m","max_tokens":10,
         "tools":[{"name":"get_weather","description":"Weather","input_schema":{"type":"object","properties":{"city":{"type":"string"}}}}],
         "tool_choice":{"type":"any","disable_parallel_tool_use":true},
         "messages":[{"role":"user","content":"Weather?"},
                     {"role":"assistant","content":[{"type":"thinking","thinking":"hm","signature":"s"},
                                                    {"type":"text","text":"Checking."},
                                                    {"type":"tool_use","id":"toolu_1","name":"get_weather","input":{"city":"Paris"}}]},
                     {"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":"21C"},
                                               {"type":"text","text":"And?"}]}]})",
     R"({"model":"m","messages":[{"role":"user","content":"Weather?"},
         {"role":"assistant","content":"Checking.","tool_calls":[
           {"id":"toolu_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},
         {"role":"tool","tool_call_id":"toolu_1","content":"21C"},
         {"role":"user","content":[{"type":"text","text":"And?"}]}],
         "max_completion_tokens":10,
         "tools":[{"type":"function","function":{"name":"get_weather","description":"Weather",
                   "parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}],
         "tool_choice":"required","parallel_tool_calls":false})"},

    {"tool_choice_tool_and_thinking",
     R"({"model":"m","max_tokens":9000,"thinking":{"type":"enabled","budget_tokens":2000},
         "tools":[{"name":"f","input_schema":{"type":"object"}}],"tool_choice":{"type":"tool","name":"f"},
         "messages":[{"role":"user","content":"x"}]})",
     R"({"model":"m","messages":[{"role":"user","content":"x"}],"max_completion_tokens":9000,
         "tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],
         "tool_choice":{"type":"function","function":{"name":"f"}},"reasoning_effort":"medium"})"},
};

class ReverseRequestTest : public ::testing::TestWithParam<Golden> {};

TEST_P(ReverseRequestTest, TranslatesToExpected) {
  StatusOr<std::string> out = AnthropicToOpenAIChatRequest(GetParam().input, TranslateOptions{});
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_TRUE(JsonEq(*out, GetParam().expected));
}

INSTANTIATE_TEST_SUITE_P(Reverse, ReverseRequestTest, ::testing::ValuesIn(kRequestGoldens),
                         [](const auto& info) { return std::string(info.param.name); });

struct Refusal {
  const char* name;
  const char* input;
  const char* message_part;
};

const Refusal kRefusals[] = {
    {"top_k",
     R"({"model":"m","max_tokens":5,"top_k":5,"messages":[{"role":"user","content":"x"}]})",
     "'top_k'"},
    {"no_max_tokens", R"({"model":"m","messages":[{"role":"user","content":"x"}]})",
     "'max_tokens'"},
    {"server_tool",
     R"({"model":"m","max_tokens":5,"tools":[{"type":"web_search_20250305","name":"web_search"}],
         "messages":[{"role":"user","content":"x"}]})",
     "'tools[0].type'"},
    {"document_block",
     R"({"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"document","source":{}}]}]})",
     "'messages[0].content[0].type'"},
    {"unknown_field",
     R"({"model":"m","max_tokens":5,"container":"c","messages":[{"role":"user","content":"x"}]})",
     "'container'"},
    {"system_role_in_messages",
     R"({"model":"m","max_tokens":5,"messages":[{"role":"system","content":"x"}]})",
     "'messages[0].role'"},
};

class ReverseRefusalTest : public ::testing::TestWithParam<Refusal> {};

TEST_P(ReverseRefusalTest, NamesTheField) {
  StatusOr<std::string> out = AnthropicToOpenAIChatRequest(GetParam().input, TranslateOptions{});
  ASSERT_FALSE(out.ok()) << *out;
  EXPECT_EQ(out.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(out.status().message().find(GetParam().message_part), std::string::npos)
      << out.status().message();
}

INSTANTIATE_TEST_SUITE_P(Reverse, ReverseRefusalTest, ::testing::ValuesIn(kRefusals),
                         [](const auto& info) { return std::string(info.param.name); });

const Golden kResponseGoldens[] = {
    {"text_with_cache",
     R"({"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o-2024",
         "choices":[{"index":0,"message":{"role":"assistant","content":"Hello","refusal":null},
                     "logprobs":null,"finish_reason":"stop"}],
         "usage":{"prompt_tokens":1065,"completion_tokens":7,"total_tokens":1072,
                  "prompt_tokens_details":{"cached_tokens":1000}}})",
     R"({"id":"chatcmpl-1","type":"message","role":"assistant","model":"claude-x",
         "content":[{"type":"text","text":"Hello"}],"stop_reason":"end_turn","stop_sequence":null,
         "usage":{"input_tokens":65,"cache_creation_input_tokens":0,"cache_read_input_tokens":1000,
                  "output_tokens":7}})"},

    {"tool_calls_and_reasoning",
     R"({"id":"c2","choices":[{"index":0,"message":{"role":"assistant","content":null,
            "reasoning_content":"Think.",
            "tool_calls":[{"id":"call_1","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}},
                          {"id":"call_2","type":"function","function":{"name":"g","arguments":""}}]},
          "finish_reason":"tool_calls"}],
         "usage":{"prompt_tokens":5,"completion_tokens":3}})",
     R"({"id":"c2","type":"message","role":"assistant","model":"claude-x",
         "content":[{"type":"thinking","thinking":"Think.","signature":""},
                    {"type":"tool_use","id":"call_1","name":"f","input":{"a":1}},
                    {"type":"tool_use","id":"call_2","name":"g","input":{}}],
         "stop_reason":"tool_use","stop_sequence":null,
         "usage":{"input_tokens":5,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,
                  "output_tokens":3}})"},

    {"length",
     R"({"id":"c3","choices":[{"index":0,"message":{"role":"assistant","content":"Trunc"},"finish_reason":"length"}]})",
     R"({"id":"c3","type":"message","role":"assistant","model":"claude-x",
         "content":[{"type":"text","text":"Trunc"}],"stop_reason":"max_tokens","stop_sequence":null,
         "usage":{"input_tokens":0,"output_tokens":0}})"},
};

class ReverseResponseTest : public ::testing::TestWithParam<Golden> {};

TEST_P(ReverseResponseTest, TranslatesToExpected) {
  StatusOr<std::string> out =
      OpenAIChatToAnthropicResponse(GetParam().input, ResponseOptions{.client_model = "claude-x"});
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_TRUE(JsonEq(*out, GetParam().expected));
}

INSTANTIATE_TEST_SUITE_P(Reverse, ReverseResponseTest, ::testing::ValuesIn(kResponseGoldens),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(Reverse, ResponseUsageAgreesWithProviderNormalization) {
  const char* body = kResponseGoldens[0].input;
  provider::Usage upstream = provider::ParseResponseUsage(config::Format::kOpenAIChat, body);
  auto out = OpenAIChatToAnthropicResponse(body, ResponseOptions{.client_model = "c"});
  ASSERT_TRUE(out.ok());
  provider::Usage translated =
      provider::ParseResponseUsage(config::Format::kAnthropicMessages, *out);
  EXPECT_EQ(translated.input_tokens, upstream.input_tokens);
  EXPECT_EQ(translated.output_tokens, upstream.output_tokens);
  EXPECT_EQ(translated.cache_read_tokens, upstream.cache_read_tokens);
}

TEST(Reverse, BrokenToolArgumentsFromUpstreamAreInternal) {
  auto out = OpenAIChatToAnthropicResponse(
      R"({"id":"c","choices":[{"message":{"role":"assistant","tool_calls":[
          {"id":"x","type":"function","function":{"name":"f","arguments":"{oops"}}]},"finish_reason":"tool_calls"}]})",
      ResponseOptions{});
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), StatusCode::kInternal);
}

// OpenAI request -> Anthropic -> OpenAI keeps what both formats can say.
TEST(Reverse, RequestRoundTrip) {
  const char* openai = R"({"model":"m","max_completion_tokens":50,"messages":[
      {"role":"system","content":"S"},
      {"role":"user","content":"Weather?"},
      {"role":"assistant","content":null,"tool_calls":[
        {"id":"call_1","type":"function","function":{"name":"w","arguments":"{\"c\":\"P\"}"}}]},
      {"role":"tool","tool_call_id":"call_1","content":"21C"}],
      "tools":[{"type":"function","function":{"name":"w","parameters":{"type":"object"}}}],
      "tool_choice":"auto","stop":["X"],"temperature":0.5})";
  auto anthropic = OpenAIChatToAnthropicRequest(openai, TranslateOptions{});
  ASSERT_TRUE(anthropic.ok()) << anthropic.status().ToString();
  auto back = AnthropicToOpenAIChatRequest(*anthropic, TranslateOptions{});
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_TRUE(JsonEq(*back, R"({"model":"m","messages":[
      {"role":"system","content":"S"},
      {"role":"user","content":"Weather?"},
      {"role":"assistant","content":null,"tool_calls":[
        {"id":"call_1","type":"function","function":{"name":"w","arguments":"{\"c\":\"P\"}"}}]},
      {"role":"tool","tool_call_id":"call_1","content":"21C"}],
      "max_completion_tokens":50,"temperature":0.5,"stop":["X"],
      "tools":[{"type":"function","function":{"name":"w","parameters":{"type":"object"}}}],
      "tool_choice":"auto"})"));
}

// A long conversation (~300 KB: many times the first block of the arena a translation builds its
// tree in, so the arena grows) goes through both directions and comes back whole and in order.
TEST(Reverse, LongConversationRoundTripsThroughBothArenas) {
  const boost::json::object request{
      {"model", "m"},
      {"max_completion_tokens", 50},
      {"messages", testing::LongConversation(/*image_detail=*/false)}};
  EXPECT_TRUE(testing::MessagesRoundTrip(request, OpenAIChatToAnthropicRequest,
                                         AnthropicToOpenAIChatRequest, 250'000));
}

}  // namespace
}  // namespace keygate::translate
