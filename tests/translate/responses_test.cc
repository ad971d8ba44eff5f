// Chat Completions <-> OpenAI Responses: request and response goldens, refusals naming the field,
// and the stream translator (golden, usage, endings, chunk-boundary invariance), plus the
// Responses -> Anthropic chain.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "tests/translate/json_testing.h"
#include "tests/translate/stream_testing.h"
#include "translate/translate.h"

namespace keygate::translate {
namespace {

using testing::JsonEq;

TEST(ResponsesRequest, Golden) {
  TranslateOptions options;
  options.upstream_model = "o-up";
  auto r = OpenAIChatToResponsesRequest(
      R"({"model":"gpt","messages":[
           {"role":"system","content":"Be brief."},
           {"role":"user","content":[{"type":"text","text":"Weather?"},
                                     {"type":"image_url","image_url":{"url":"https://x/y.png"}}]},
           {"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function",
              "function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},
           {"role":"tool","tool_call_id":"call_1","content":"18 C"}],
          "max_completion_tokens":100,"temperature":0.5,"stream":true,
          "stream_options":{"include_usage":true},"reasoning_effort":"low",
          "tools":[{"type":"function","function":{"name":"get_weather","description":"d",
                    "parameters":{"type":"object"}}}],
          "tool_choice":{"type":"function","function":{"name":"get_weather"}},
          "response_format":{"type":"json_schema","json_schema":{"name":"w","schema":{"type":"object"},"strict":true}},
          "n":1})",
      options);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(JsonEq(*r, R"({"model":"o-up",
      "max_output_tokens":100,"temperature":0.5,"stream":true,"reasoning":{"effort":"low"},
      "tools":[{"type":"function","name":"get_weather","description":"d","parameters":{"type":"object"}}],
      "tool_choice":{"type":"function","name":"get_weather"},
      "text":{"format":{"type":"json_schema","name":"w","schema":{"type":"object"},"strict":true}},
      "input":[
        {"type":"message","role":"system","content":"Be brief."},
        {"type":"message","role":"user","content":[{"type":"input_text","text":"Weather?"},
          {"type":"input_image","image_url":"https://x/y.png","detail":"auto"}]},
        {"type":"function_call","call_id":"call_1","name":"get_weather","arguments":"{\"city\":\"Paris\"}"},
        {"type":"function_call_output","call_id":"call_1","output":"18 C"}],
      "store":false})"));
}

TEST(ResponsesRequest, RefusesWhatHasNoCounterpartNamingTheField) {
  for (auto [body, field] : std::vector<std::pair<std::string, std::string>>{
           {R"({"model":"m","messages":[],"stop":["x"]})", "'stop'"},
           {R"({"model":"m","messages":[],"n":2})", "'n'"},
           {R"({"model":"m","messages":[],"seed":1})", "'seed'"},
           {R"({"model":"m","messages":[],"frequency_penalty":1})", "'frequency_penalty'"},
           {R"({"model":"m","messages":[],"bogus":1})", "'bogus'"},
           {R"({"model":"m","messages":[{"role":"user","content":[{"type":"input_audio"}]}]})",
            "'messages[0].content[0].type'"}}) {
    auto r = OpenAIChatToResponsesRequest(body, {});
    ASSERT_FALSE(r.ok()) << body;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find(field), std::string::npos) << r.status().message();
  }
  EXPECT_EQ(OpenAIChatToResponsesRequest("not json", {}).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(ResponsesResponse, Golden) {
  auto r = ResponsesToOpenAIChatResponse(
      R"({"id":"resp_1","object":"response","created_at":1700000000,"status":"completed","model":"o",
          "output":[{"type":"reasoning","summary":[{"type":"summary_text","text":"Think."}]},
                    {"type":"message","role":"assistant","content":[{"type":"output_text","text":"Hi "},
                                                                   {"type":"output_text","text":"there"}]},
                    {"type":"function_call","id":"fc_1","call_id":"call_1","name":"f","arguments":"{}"}],
          "usage":{"input_tokens":20,"input_tokens_details":{"cached_tokens":5},"output_tokens":7,
                   "output_tokens_details":{"reasoning_tokens":3},"total_tokens":27}})",
      {.client_model = "gpt", .created = 1});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(JsonEq(*r, R"({"id":"resp_1","object":"chat.completion","created":1700000000,"model":"gpt",
      "choices":[{"index":0,"message":{"role":"assistant","content":"Hi there","reasoning_content":"Think.",
        "tool_calls":[{"id":"call_1","type":"function","function":{"name":"f","arguments":"{}"}}]},
        "logprobs":null,"finish_reason":"tool_calls"}],
      "usage":{"prompt_tokens":20,"completion_tokens":7,"total_tokens":27,
               "prompt_tokens_details":{"cached_tokens":5},"completion_tokens_details":{"reasoning_tokens":3}}})"));
  auto incomplete = ResponsesToOpenAIChatResponse(
      R"({"id":"r","status":"incomplete","incomplete_details":{"reason":"max_output_tokens"},"output":[]})",
      {.client_model = "gpt"});
  ASSERT_TRUE(incomplete.ok());
  EXPECT_NE(incomplete->find(R"("finish_reason":"length")"), std::string::npos) << *incomplete;
  EXPECT_EQ(ResponsesToOpenAIChatResponse(R"({"id":"r"})", {}).status().code(), StatusCode::kInternal);
}

std::string Event(const std::string& type, const std::string& fields) {
  return "event: " + type + "\ndata: {\"type\":\"" + type + "\"," + fields + "}\n\n";
}

const std::string kStream =
    Event("response.created", R"("response":{"id":"resp_1","status":"in_progress","output":[]})") +
    Event("response.reasoning_summary_text.delta", R"("item_id":"rs","delta":"Think.")") +
    Event("response.output_text.delta", R"("item_id":"m","output_index":1,"delta":"Hi \u2603")") +
    Event("response.output_item.added",
          R"("output_index":2,"item":{"type":"function_call","id":"fc_1","call_id":"call_1","name":"f","arguments":""})") +
    Event("response.output_item.added",
          R"("output_index":3,"item":{"type":"function_call","id":"fc_2","call_id":"call_2","name":"g","arguments":""})") +
    Event("response.function_call_arguments.delta", R"("item_id":"fc_1","delta":"{\"a\":")") +
    Event("response.function_call_arguments.delta", R"("item_id":"fc_2","delta":"{}")") +
    Event("response.function_call_arguments.delta", R"("item_id":"fc_1","delta":"1}")") +
    Event("response.completed",
          R"("response":{"id":"resp_1","status":"completed","usage":{"input_tokens":20,"input_tokens_details":{"cached_tokens":5},"output_tokens":7}})");

ResponsesToOpenAIStream::Options Opts() {
  return {.client_model = "gpt", .created = 1, .include_usage = true};
}

TEST(ResponsesStream, Golden) {
  std::string out = testing::TranslateCut<ResponsesToOpenAIStream>(kStream, {}, Opts());
  const std::string head = R"(data: {"id":"resp_1","object":"chat.completion.chunk","created":1,"model":"gpt",)";
  auto chunk = [&](const std::string& delta, const std::string& finish = "null") {
    return head + R"("choices":[{"index":0,"delta":)" + delta + R"(,"logprobs":null,"finish_reason":)" +
           finish + "}],\"usage\":null}\n\n";
  };
  EXPECT_EQ(out,
            chunk(R"({"role":"assistant","content":""})") +
                chunk(R"({"reasoning_content":"Think."})") + chunk(R"({"content":"Hi ☃"})") +
                chunk(R"({"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"f","arguments":""}}]})") +
                chunk(R"({"tool_calls":[{"index":1,"id":"call_2","type":"function","function":{"name":"g","arguments":""}}]})") +
                chunk(R"({"tool_calls":[{"index":0,"function":{"arguments":"{\"a\":"}}]})") +
                chunk(R"({"tool_calls":[{"index":1,"function":{"arguments":"{}"}}]})") +
                chunk(R"({"tool_calls":[{"index":0,"function":{"arguments":"1}"}}]})") +
                chunk("{}", R"("tool_calls")") + head +
                R"("choices":[],"usage":{"prompt_tokens":20,"completion_tokens":7,"total_tokens":27,"prompt_tokens_details":{"cached_tokens":5},"completion_tokens_details":{"reasoning_tokens":0}}})"
                "\n\ndata: [DONE]\n\n");
  ResponsesToOpenAIStream s(Opts());
  std::string ignored;
  s.Feed(kStream, ignored);
  EXPECT_TRUE(s.done());
  EXPECT_EQ(s.usage().input_tokens, 20);
  EXPECT_EQ(s.usage().cache_read_tokens, 5);
  EXPECT_EQ(s.usage().output_tokens, 7);
}

TEST(ResponsesStream, OutputDoesNotDependOnChunking) {
  testing::ExpectChunkingInvariant<ResponsesToOpenAIStream>(kStream, Opts(), 77);
  testing::ExpectChunkingInvariant<ResponsesToAnthropicStream>(kStream, {.client_model = "claude"}, 78,
                                                               100);
}

TEST(ResponsesStream, EndingsAndFailures) {
  std::string truncated = testing::TranslateCut<ResponsesToOpenAIStream>(
      kStream.substr(0, kStream.find("event: response.completed")), {}, Opts());
  EXPECT_NE(truncated.find("ended before response.completed"), std::string::npos) << truncated;
  EXPECT_EQ(truncated.find("[DONE]"), std::string::npos);
  std::string failed = testing::TranslateCut<ResponsesToOpenAIStream>(
      Event("response.failed", R"("response":{"id":"r","status":"failed","error":{"code":"server_error","message":"boom"}})"),
      {}, Opts());
  EXPECT_NE(failed.find(R"("message":"boom")"), std::string::npos) << failed;
}

TEST(ResponsesStream, ChainToAnthropicEvents) {
  std::string out =
      testing::TranslateCut<ResponsesToAnthropicStream>(kStream, {}, {.client_model = "claude"});
  for (const char* want :
       {"event: message_start", R"("type":"thinking_delta","thinking":"Think.")",
        R"("type":"text_delta","text":"Hi ☃")",
        R"("content_block":{"type":"tool_use","id":"call_1","name":"f","input":{}})",
        R"("content_block":{"type":"tool_use","id":"call_2","name":"g","input":{}})",
        R"("stop_reason":"tool_use")",
        R"("usage":{"input_tokens":15,"cache_creation_input_tokens":0,"cache_read_input_tokens":5,"output_tokens":7})",
        "event: message_stop"}) {
    EXPECT_NE(out.find(want), std::string::npos) << want << "\n" << out;
  }
}

}  // namespace
}  // namespace keygate::translate
