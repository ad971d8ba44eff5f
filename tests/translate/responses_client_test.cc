// Responses clients on chat and Anthropic upstreams: Responses request -> chat (goldens, the
// second turn of a tool call, on through chat to Anthropic), refusals naming the field,
// chat.completion -> response object, and the chunk stream -> Responses events (golden, output
// indexes with interleaved parallel calls, sequence numbers, endings, chunk-boundary invariance,
// a streamed answer's response.completed equal to the whole translation, the Anthropic chain).
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "provider/provider.h"
#include "tests/translate/json_testing.h"
#include "tests/translate/stream_testing.h"
#include "translate/translate.h"

namespace keygate::translate {
namespace {

namespace json = boost::json;
using testing::JsonEq;
using testing::ParseJson;

// ---------------------------------------------------------------- requests

TEST(ResponsesClientRequest, Golden) {
  TranslateOptions options;
  options.upstream_model = "up-model";
  auto r = ResponsesToOpenAIChatRequest(
      R"({"model":"gpt","instructions":"Be brief.",
          "input":[
            {"role":"user","content":"Weather?"},
            {"type":"message","role":"user","content":[
               {"type":"input_text","text":"Look:"},
               {"type":"input_image","image_url":"https://x/y.png","detail":"low"},
               {"type":"input_image","image_url":"data:image/png;base64,iVBO"}]},
            {"type":"reasoning","id":"rs_1","summary":[{"type":"summary_text","text":"hm"}]},
            {"type":"message","id":"msg_1","status":"completed","role":"assistant",
             "content":[{"type":"output_text","text":"Checking.","annotations":[],"logprobs":[]}]},
            {"type":"function_call","id":"fc_1","status":"completed","call_id":"call_1",
             "name":"get_weather","arguments":"{\"city\":\"Paris\"}"},
            {"type":"function_call","call_id":"call_2","name":"get_weather","arguments":"{\"city\":\"Rome\"}"},
            {"type":"function_call_output","call_id":"call_1","output":"18 C"},
            {"type":"function_call_output","call_id":"call_2","output":[{"type":"input_text","text":"21 C"}]}],
          "tools":[{"type":"function","name":"get_weather","description":"d",
                    "parameters":{"type":"object"},"strict":true}],
          "tool_choice":{"type":"function","name":"get_weather"},
          "parallel_tool_calls":false,"max_output_tokens":100,"temperature":0.5,"top_p":0.9,
          "stream":true,"stream_options":{"include_obfuscation":false},
          "text":{"format":{"type":"json_schema","name":"w","schema":{"type":"object"},"strict":true},
                  "verbosity":"low"},
          "reasoning":{"effort":"low","summary":"auto"},
          "user":"u1","metadata":{"k":"v"},"store":false,"background":false,
          "truncation":"disabled","include":[],"previous_response_id":null})",
      options);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(JsonEq(*r, R"({"model":"up-model",
      "messages":[
        {"role":"system","content":"Be brief."},
        {"role":"user","content":"Weather?"},
        {"role":"user","content":[{"type":"text","text":"Look:"},
           {"type":"image_url","image_url":{"url":"https://x/y.png","detail":"low"}},
           {"type":"image_url","image_url":{"url":"data:image/png;base64,iVBO"}}]},
        {"role":"assistant","content":"Checking.","tool_calls":[
           {"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}},
           {"id":"call_2","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Rome\"}"}}]},
        {"role":"tool","tool_call_id":"call_1","content":"18 C"},
        {"role":"tool","tool_call_id":"call_2","content":"21 C"}],
      "tools":[{"type":"function","function":{"name":"get_weather","description":"d",
                "parameters":{"type":"object"},"strict":true}}],
      "tool_choice":{"type":"function","function":{"name":"get_weather"}},
      "parallel_tool_calls":false,"max_completion_tokens":100,"temperature":0.5,"top_p":0.9,
      "stream":true,"stream_options":{"include_usage":true},
      "response_format":{"type":"json_schema","json_schema":{"name":"w","schema":{"type":"object"},"strict":true}},
      "verbosity":"low","reasoning_effort":"low","user":"u1","metadata":{"k":"v"}})"));
}

TEST(ResponsesClientRequest, StringInputAndModes) {
  auto r = ResponsesToOpenAIChatRequest(
      R"({"model":"m","input":"Hi","tool_choice":"required","text":{"format":{"type":"json_object"}}})",
      {});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(JsonEq(*r, R"({"model":"m","messages":[{"role":"user","content":"Hi"}],
      "tool_choice":"required","response_format":{"type":"json_object"}})"));
  // A call with no assistant message before it gets one with null content.
  r = ResponsesToOpenAIChatRequest(
      R"({"model":"m","input":[{"role":"user","content":"Hi"},
          {"type":"function_call","call_id":"c","name":"f","arguments":"{}"},
          {"type":"function_call_output","call_id":"c","output":"ok"}]})",
      {});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(JsonEq(*r, R"({"model":"m","messages":[{"role":"user","content":"Hi"},
      {"role":"assistant","content":null,"tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]},
      {"role":"tool","tool_call_id":"c","content":"ok"}]})"));
}

// The second turn of a tool call through chat to Anthropic: the ids survive both steps.
TEST(ResponsesClientRequest, SecondTurnReachesAnthropic) {
  auto chat = ResponsesToOpenAIChatRequest(
      R"({"model":"claude","max_output_tokens":64,"input":[{"role":"user","content":"Weather?"},
          {"type":"function_call","id":"fc_toolu_1","call_id":"toolu_1","name":"get_weather","arguments":"{\"city\":\"Paris\"}","status":"completed"},
          {"type":"function_call_output","call_id":"toolu_1","output":"18 C"}],
          "tools":[{"type":"function","name":"get_weather","parameters":{"type":"object"}}]})",
      {});
  ASSERT_TRUE(chat.ok()) << chat.status().ToString();
  auto anthropic = OpenAIChatToAnthropicRequest(*chat, {});
  ASSERT_TRUE(anthropic.ok()) << anthropic.status().ToString();
  EXPECT_TRUE(JsonEq(*anthropic, R"({"model":"claude","max_tokens":64,
      "messages":[{"role":"user","content":"Weather?"},
        {"role":"assistant","content":[{"type":"tool_use","id":"toolu_1","name":"get_weather","input":{"city":"Paris"}}]},
        {"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":"18 C"}]}],
      "tools":[{"name":"get_weather","input_schema":{"type":"object"}}]})"));
}

TEST(ResponsesClientRequest, RefusesWhatCannotMapNamingTheField) {
  for (
      auto [body, field] : std::vector<std::pair<std::string, std::string>>{
          {R"({"model":"m","input":"x","previous_response_id":"resp_1"})",
           "'previous_response_id'"},
          {R"({"model":"m","input":"x","conversation":"conv_1"})", "'conversation'"},
          {R"({"model":"m","input":"x","store":true})", "'store'"},
          {R"({"model":"m","input":"x","background":true})", "'background'"},
          {R"({"model":"m","input":"x","truncation":"auto"})", "'truncation'"},
          {R"({"model":"m","input":"x","include":["reasoning.encrypted_content"]})", "'include'"},
          {R"({"model":"m","input":"x","top_logprobs":3})", "'top_logprobs'"},
          {R"({"model":"m","input":"x","prompt":{"id":"p"}})", "'prompt'"},
          {R"({"model":"m","input":"x","max_tool_calls":2})", "'max_tool_calls'"},
          {R"({"model":"m","input":"x","bogus":1})", "'bogus'"},
          {R"({"model":"m","input":"x","input":"y"})", "duplicate key 'input'"},
          {R"({"model":"m","input":"x","tools":[{"type":"web_search"}]})", "'tools[0].type'"},
          {R"({"model":"m","input":"x","tools":[{"type":"function","name":"f"},{"type":"file_search"}]})",
           "'tools[1].type'"},
          {R"({"model":"m","input":"x","tool_choice":{"type":"web_search_preview"}})",
           "'tool_choice'"},
          {R"({"model":"m","input":"x","text":{"format":{"type":"grammar"}}})",
           "'text.format.type'"},
          {R"({"model":"m","input":"x","reasoning":{"effort":"low","foo":1}})", "'reasoning.foo'"},
          {R"({"model":"m","input":[{"type":"item_reference","id":"msg_1"}]})", "'input[0].type'"},
          {R"({"model":"m","input":[{"role":"user","content":"a"},{"type":"web_search_call","id":"w"}]})",
           "'input[1].type'"},
          {R"({"model":"m","input":[{"role":"user","content":[{"type":"input_file","file_id":"f"}]}]})",
           "'input[0].content[0].type'"},
          {R"({"model":"m","input":[{"role":"user","content":[{"type":"input_image","file_id":"f"}]}]})",
           "'input[0].content[0].file_id'"},
          {R"({"model":"m","input":[{"role":"user","content":"a","phase":"x"}]})",
           "'input[0].phase'"},
          {R"({"model":"m","input":[{"type":"function_call_output","call_id":"c",
                "output":[{"type":"input_image","image_url":"https://x"}]}]})",
           "'input[0].output[0].type'"},
      }) {
    auto r = ResponsesToOpenAIChatRequest(body, {});
    ASSERT_FALSE(r.ok()) << body;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << body;
    EXPECT_NE(r.status().message().find(field), std::string::npos) << r.status().message();
  }
  EXPECT_EQ(ResponsesToOpenAIChatRequest("not json", {}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ResponsesToOpenAIChatRequest(R"({"model":"m"})", {}).status().code(),
            StatusCode::kInvalidArgument);
}

// ---------------------------------------------------------------- responses

constexpr const char* kCompletion =
    R"({"id":"chatcmpl-9x","object":"chat.completion","created":1700000000,
    "model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":"Checking both.",
      "reasoning_content":"Two cities.","tool_calls":[
        {"id":"call_A","type":"function","function":{"name":"get_weather","arguments":"{\"city\": \"Paris\"}"}},
        {"id":"call_B","type":"function","function":{"name":"get_weather","arguments":"{\"city\": \"Rome\"}"}}]},
      "logprobs":null,"finish_reason":"tool_calls"}],
    "usage":{"prompt_tokens":1065,"completion_tokens":89,"total_tokens":1154,
             "prompt_tokens_details":{"cached_tokens":1000},"completion_tokens_details":{"reasoning_tokens":12}}})";

constexpr const char* kResponse =
    R"({"id":"resp_chatcmpl-9x","object":"response","created_at":1700000000,
    "status":"completed","background":false,"error":null,"incomplete_details":null,"model":"gpt-client",
    "output":[
      {"id":"rs_chatcmpl-9x_0","type":"reasoning","summary":[{"type":"summary_text","text":"Two cities."}]},
      {"id":"msg_chatcmpl-9x_1","type":"message","status":"completed","role":"assistant",
       "content":[{"type":"output_text","text":"Checking both.","annotations":[],"logprobs":[]}]},
      {"id":"fc_call_A","type":"function_call","status":"completed","arguments":"{\"city\": \"Paris\"}",
       "call_id":"call_A","name":"get_weather"},
      {"id":"fc_call_B","type":"function_call","status":"completed","arguments":"{\"city\": \"Rome\"}",
       "call_id":"call_B","name":"get_weather"}],
    "store":false,
    "usage":{"input_tokens":1065,"input_tokens_details":{"cached_tokens":1000},"output_tokens":89,
             "output_tokens_details":{"reasoning_tokens":12},"total_tokens":1154}})";

TEST(ResponsesClientResponse, Golden) {
  auto r = OpenAIChatToResponsesResponse(kCompletion, {.client_model = "gpt-client", .created = 5});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(JsonEq(*r, kResponse));
}

TEST(ResponsesClientResponse, LengthIsIncompleteAndRefusalIsAPart) {
  auto r = OpenAIChatToResponsesResponse(
      R"({"id":"c1","choices":[{"index":0,"message":{"role":"assistant","content":"Half"},"finish_reason":"length"}]})",
      {.client_model = "m", .created = 7});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(
      JsonEq(*r, R"({"id":"resp_c1","object":"response","created_at":7,"status":"incomplete",
      "background":false,"error":null,"incomplete_details":{"reason":"max_output_tokens"},"model":"m",
      "output":[{"id":"msg_c1_0","type":"message","status":"incomplete","role":"assistant",
                 "content":[{"type":"output_text","text":"Half","annotations":[],"logprobs":[]}]}],
      "store":false,"usage":null})"));

  r = OpenAIChatToResponsesResponse(
      R"({"id":"c2","choices":[{"index":0,"message":{"role":"assistant","content":null,"refusal":"No."},"finish_reason":"stop"}]})",
      {.client_model = "m", .created = 7});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  json::value v = ParseJson(*r);
  EXPECT_EQ(v.at("status"), "completed");
  EXPECT_TRUE(JsonEq(json::serialize(v.at("output")),
                     R"([{"id":"msg_c2_0","type":"message","status":"completed","role":"assistant",
                          "content":[{"type":"refusal","refusal":"No."}]}])"));
  EXPECT_EQ(OpenAIChatToResponsesResponse(R"({"id":"x"})", {}).status().code(),
            StatusCode::kInternal);
  EXPECT_EQ(OpenAIChatToResponsesResponse("nope", {}).status().code(), StatusCode::kInternal);
}

// Through chat from Anthropic: usage keeps every prompt token (cache reads and writes included).
TEST(ResponsesClientResponse, FromAnthropicThroughChat) {
  auto chat = AnthropicToOpenAIChatResponse(
      R"({"id":"msg_01","type":"message","role":"assistant","model":"claude","stop_reason":"tool_use",
          "content":[{"type":"text","text":"Let me check."},
                     {"type":"tool_use","id":"toolu_1","name":"get_weather","input":{"city":"Paris"}}],
          "usage":{"input_tokens":10,"cache_read_input_tokens":5,"cache_creation_input_tokens":2,"output_tokens":7}})",
      {.client_model = "claude-client", .created = 9});
  ASSERT_TRUE(chat.ok()) << chat.status().ToString();
  auto r = OpenAIChatToResponsesResponse(*chat, {.client_model = "claude-client", .created = 9});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  json::value v = ParseJson(*r);
  EXPECT_EQ(v.at("id"), "resp_msg_01");
  EXPECT_TRUE(
      JsonEq(json::serialize(v.at("output")),
             R"([{"id":"msg_msg_01_0","type":"message","status":"completed","role":"assistant",
                          "content":[{"type":"output_text","text":"Let me check.","annotations":[],"logprobs":[]}]},
                         {"id":"fc_toolu_1","type":"function_call","status":"completed",
                          "arguments":"{\"city\":\"Paris\"}","call_id":"toolu_1","name":"get_weather"}])"));
  EXPECT_TRUE(
      JsonEq(json::serialize(v.at("usage")),
             R"({"input_tokens":17,"input_tokens_details":{"cached_tokens":5},"output_tokens":7,
                         "output_tokens_details":{"reasoning_tokens":0},"total_tokens":24})"));
}

// ---------------------------------------------------------------- streams

std::string Join(const std::vector<std::string>& data, bool crlf = false) {
  std::string s;
  for (const std::string& d : data) s += "data: " + d + (crlf ? "\r\n\r\n" : "\n\n");
  return s;
}

constexpr const char* kHead =
    R"("id":"chatcmpl-9x","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o")";
std::string C(const std::string& rest) { return std::string("{") + kHead + "," + rest + "}"; }

// Reasoning, text, then two parallel calls whose argument fragments interleave; the usage chunk
// and [DONE] (the same answer as kCompletion).
const std::vector<std::string> kToolStream = {
    C(R"("choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}],"usage":null)"),
    C(R"("choices":[{"index":0,"delta":{"reasoning_content":"Two cities."},"finish_reason":null}],"usage":null)"),
    C(R"("choices":[{"index":0,"delta":{"content":"Checking "},"finish_reason":null}],"usage":null)"),
    C(R"("choices":[{"index":0,"delta":{"content":"both."},"finish_reason":null}],"usage":null)"),
    C(R"("choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_A","type":"function","function":{"name":"get_weather","arguments":""}}]},"finish_reason":null}],"usage":null)"),
    C(R"("choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\": \"Pa"}}]},"finish_reason":null}],"usage":null)"),
    C(R"("choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_B","type":"function","function":{"name":"get_weather","arguments":"{\"city\":"}}]},"finish_reason":null}],"usage":null)"),
    C(R"("choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"ris\"}"}}]},"finish_reason":null}],"usage":null)"),
    C(R"("choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"function":{"arguments":" \"Rome\"}"}}]},"finish_reason":null}],"usage":null)"),
    C(R"("choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}],"usage":null)"),
    C(R"("choices":[],"usage":{"prompt_tokens":1065,"completion_tokens":89,"total_tokens":1154,"prompt_tokens_details":{"cached_tokens":1000},"completion_tokens_details":{"reasoning_tokens":12}})"),
    "[DONE]",
};

using Events = std::vector<std::pair<std::string, std::string>>;  // (event name, data)

// Splits translated output into (event name, data), checking the SSE framing, that the data's
// "type" is the event name and that sequence_number counts 0, 1, … on every event.
Events EventsOf(const std::string& out) {
  Events events;
  size_t i = 0;
  while (i < out.size()) {
    size_t end = out.find("\n\n", i);
    EXPECT_NE(end, std::string::npos) << "unterminated event at " << i;
    if (end == std::string::npos) break;
    std::string event = out.substr(i, end - i);
    size_t nl = event.find('\n');
    EXPECT_EQ(event.rfind("event: ", 0), 0u) << event;
    if (nl == std::string::npos) break;
    EXPECT_EQ(event.compare(nl + 1, 6, "data: "), 0) << event;
    std::string name = event.substr(7, nl - 7), data = event.substr(nl + 7);
    json::value v = ParseJson(data);
    EXPECT_EQ(v.at("type"), name.c_str());
    EXPECT_EQ(v.at("sequence_number"), static_cast<int64_t>(events.size())) << event;
    events.emplace_back(std::move(name), std::move(data));
    i = end + 2;
  }
  return events;
}

// The data's members other than "type" and "sequence_number" (checked by EventsOf).
std::string Body(const std::string& data) {
  json::object o = ParseJson(data).as_object();
  o.erase("type");
  o.erase("sequence_number");
  return json::serialize(o);
}

std::string ResponseIn(const std::string& data) {
  return json::serialize(ParseJson(data).at("response"));
}

OpenAIToResponsesStream::Options Opts() { return {.client_model = "gpt-client", .created = 5}; }

TEST(ResponsesClientStream, ToolStreamGolden) {
  OpenAIToResponsesStream stream(Opts());
  std::string out;
  stream.Feed(Join(kToolStream), out);
  EXPECT_TRUE(stream.done());
  stream.Finish(out);
  EXPECT_TRUE(stream.status().ok()) << stream.status().ToString();
  const Events events = EventsOf(out);
  const Events expected = {
      {"response.created", ""},
      {"response.in_progress", ""},
      {"response.output_item.added",
       R"({"output_index":0,"item":{"id":"rs_chatcmpl-9x_0","type":"reasoning","summary":[]}})"},
      {"response.reasoning_summary_part.added",
       R"({"item_id":"rs_chatcmpl-9x_0","output_index":0,"summary_index":0,"part":{"type":"summary_text","text":""}})"},
      {"response.reasoning_summary_text.delta",
       R"({"item_id":"rs_chatcmpl-9x_0","output_index":0,"summary_index":0,"delta":"Two cities."})"},
      {"response.reasoning_summary_text.done",
       R"({"item_id":"rs_chatcmpl-9x_0","output_index":0,"summary_index":0,"text":"Two cities."})"},
      {"response.reasoning_summary_part.done",
       R"({"item_id":"rs_chatcmpl-9x_0","output_index":0,"summary_index":0,"part":{"type":"summary_text","text":"Two cities."}})"},
      {"response.output_item.done",
       R"({"output_index":0,"item":{"id":"rs_chatcmpl-9x_0","type":"reasoning","summary":[{"type":"summary_text","text":"Two cities."}]}})"},
      {"response.output_item.added",
       R"({"output_index":1,"item":{"id":"msg_chatcmpl-9x_1","type":"message","status":"in_progress","role":"assistant","content":[]}})"},
      {"response.content_part.added",
       R"({"item_id":"msg_chatcmpl-9x_1","output_index":1,"content_index":0,"part":{"type":"output_text","text":"","annotations":[],"logprobs":[]}})"},
      {"response.output_text.delta",
       R"({"item_id":"msg_chatcmpl-9x_1","output_index":1,"content_index":0,"delta":"Checking ","logprobs":[]})"},
      {"response.output_text.delta",
       R"({"item_id":"msg_chatcmpl-9x_1","output_index":1,"content_index":0,"delta":"both.","logprobs":[]})"},
      {"response.output_text.done",
       R"({"item_id":"msg_chatcmpl-9x_1","output_index":1,"content_index":0,"text":"Checking both.","logprobs":[]})"},
      {"response.content_part.done",
       R"({"item_id":"msg_chatcmpl-9x_1","output_index":1,"content_index":0,"part":{"type":"output_text","text":"Checking both.","annotations":[],"logprobs":[]}})"},
      {"response.output_item.done",
       R"({"output_index":1,"item":{"id":"msg_chatcmpl-9x_1","type":"message","status":"completed","role":"assistant","content":[{"type":"output_text","text":"Checking both.","annotations":[],"logprobs":[]}]}})"},
      {"response.output_item.added",
       R"({"output_index":2,"item":{"id":"fc_call_A","type":"function_call","status":"in_progress","arguments":"","call_id":"call_A","name":"get_weather"}})"},
      {"response.function_call_arguments.delta",
       R"({"item_id":"fc_call_A","output_index":2,"delta":"{\"city\": \"Pa"})"},
      {"response.output_item.added",
       R"({"output_index":3,"item":{"id":"fc_call_B","type":"function_call","status":"in_progress","arguments":"","call_id":"call_B","name":"get_weather"}})"},
      {"response.function_call_arguments.delta",
       R"({"item_id":"fc_call_B","output_index":3,"delta":"{\"city\":"})"},
      {"response.function_call_arguments.delta",
       R"({"item_id":"fc_call_A","output_index":2,"delta":"ris\"}"})"},
      {"response.function_call_arguments.delta",
       R"({"item_id":"fc_call_B","output_index":3,"delta":" \"Rome\"}"})"},
      {"response.function_call_arguments.done",
       R"({"item_id":"fc_call_A","output_index":2,"name":"get_weather","arguments":"{\"city\": \"Paris\"}"})"},
      {"response.output_item.done",
       R"({"output_index":2,"item":{"id":"fc_call_A","type":"function_call","status":"completed","arguments":"{\"city\": \"Paris\"}","call_id":"call_A","name":"get_weather"}})"},
      {"response.function_call_arguments.done",
       R"({"item_id":"fc_call_B","output_index":3,"name":"get_weather","arguments":"{\"city\": \"Rome\"}"})"},
      {"response.output_item.done",
       R"({"output_index":3,"item":{"id":"fc_call_B","type":"function_call","status":"completed","arguments":"{\"city\": \"Rome\"}","call_id":"call_B","name":"get_weather"}})"},
      {"response.completed", ""},
  };
  ASSERT_EQ(events.size(), expected.size()) << out;
  for (size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i].first, expected[i].first) << "event " << i;
    if (!expected[i].second.empty()) {
      EXPECT_TRUE(JsonEq(Body(events[i].second), expected[i].second)) << "event " << i;
    }
  }
  // created / in_progress: the response so far; completed: the whole one, exactly what the
  // non-streaming translation gives for the same answer.
  const std::string in_progress =
      R"({"id":"resp_chatcmpl-9x","object":"response","created_at":1700000000,
      "status":"in_progress","background":false,"error":null,"incomplete_details":null,
      "model":"gpt-client","output":[],"store":false,"usage":null})";
  EXPECT_TRUE(JsonEq(ResponseIn(events[0].second), in_progress));
  EXPECT_TRUE(JsonEq(ResponseIn(events[1].second), in_progress));
  EXPECT_TRUE(JsonEq(ResponseIn(events.back().second), kResponse));

  EXPECT_TRUE(stream.usage().present);
  EXPECT_EQ(stream.usage().input_tokens, 1065);
  EXPECT_EQ(stream.usage().cache_read_tokens, 1000);
  EXPECT_EQ(stream.usage().output_tokens, 89);
}

TEST(ResponsesClientStream, UsageMatchesTheProviderFilter) {
  testing::ExpectUsageMatchesTheFilter<OpenAIToResponsesStream>(
      Join(kToolStream), config::Format::kOpenAIChat, Opts());
}

TEST(ResponsesClientStream, RefusalAfterTextIsASecondPart) {
  OpenAIToResponsesStream stream(Opts());
  std::string out;
  stream.Feed(
      Join({C(R"("choices":[{"index":0,"delta":{"content":"I "},"finish_reason":null}])"),
            C(R"("choices":[{"index":0,"delta":{"refusal":"can't."},"finish_reason":null}])"),
            C(R"("choices":[{"index":0,"delta":{},"finish_reason":"stop"}])"), "[DONE]"}),
      out);
  stream.Finish(out);
  const Events events = EventsOf(out);
  std::vector<std::string> names;
  for (const auto& [name, data] : events) names.push_back(name);
  EXPECT_EQ(names,
            (std::vector<std::string>{
                "response.created", "response.in_progress", "response.output_item.added",
                "response.content_part.added", "response.output_text.delta",
                "response.output_text.done", "response.content_part.done",
                "response.content_part.added", "response.refusal.delta", "response.refusal.done",
                "response.content_part.done", "response.output_item.done", "response.completed"}));
  EXPECT_TRUE(JsonEq(
      Body(events[8].second),
      R"({"item_id":"msg_chatcmpl-9x_0","output_index":0,"content_index":1,"delta":"can't."})"));
  EXPECT_TRUE(
      JsonEq(json::serialize(ParseJson(events.back().second).at("response").at("output")),
             R"([{"id":"msg_chatcmpl-9x_0","type":"message","status":"completed","role":"assistant",
                          "content":[{"type":"output_text","text":"I ","annotations":[],"logprobs":[]},
                                     {"type":"refusal","refusal":"can't."}]}])"));
  // No usage chunk: the usage is null, and billing sees none.
  EXPECT_TRUE(ParseJson(events.back().second).at("response").at("usage").is_null());
  EXPECT_FALSE(stream.usage().present);
}

TEST(ResponsesClientStream, Endings) {
  auto last = [](const std::string& out) {
    const Events events = EventsOf(out);
    return events.empty() ? Events::value_type{} : events.back();
  };
  {  // length -> response.incomplete, the cut item incomplete
    std::string out = testing::TranslateCut<OpenAIToResponsesStream>(
        Join({C(R"("choices":[{"index":0,"delta":{"content":"Half"},"finish_reason":null}])"),
              C(R"("choices":[{"index":0,"delta":{},"finish_reason":"length"}])"), "[DONE]"}),
        {}, Opts());
    auto [name, data] = last(out);
    EXPECT_EQ(name, "response.incomplete");
    json::value r = ParseJson(data).at("response");
    EXPECT_EQ(r.at("status"), "incomplete");
    EXPECT_TRUE(
        JsonEq(json::serialize(r.at("incomplete_details")), R"({"reason":"max_output_tokens"})"));
    EXPECT_EQ(r.at("output").at(0).at("status"), "incomplete");
  }
  {  // a finish_reason but no [DONE]: complete
    OpenAIToResponsesStream stream(Opts());
    std::string out;
    stream.Feed(
        Join({C(R"("choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":"stop"}])")}),
        out);
    stream.Finish(out);
    EXPECT_TRUE(stream.done());
    EXPECT_EQ(last(out).first, "response.completed");
  }
  {  // cut short: response.failed, saying why, with what arrived
    OpenAIToResponsesStream stream(Opts());
    std::string out;
    stream.Feed(
        Join({C(R"("choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}])")}), out);
    stream.Finish(out);
    EXPECT_FALSE(stream.done());
    EXPECT_EQ(stream.status().code(), StatusCode::kUnavailable);
    auto [name, data] = last(out);
    EXPECT_EQ(name, "response.failed");
    json::value r = ParseJson(data).at("response");
    EXPECT_EQ(r.at("status"), "failed");
    EXPECT_EQ(r.at("error").at("code"), "server_error");
    EXPECT_NE(json::serialize(r.at("error").at("message")).find("finish_reason"),
              std::string::npos);
    EXPECT_EQ(r.at("output").at(0).at("content").at(0).at("text"), "Hi");
  }
  {  // an upstream error chunk first: created, in_progress, failed with its message
    OpenAIToResponsesStream stream(Opts());
    std::string out;
    stream.Feed(Join({R"({"error":{"message":"overloaded","type":"server_error"}})",
                      C(R"("choices":[{"index":0,"delta":{"content":"late"}}])")}),
                out);
    stream.Finish(out);
    const Events events = EventsOf(out);
    ASSERT_EQ(events.size(), 3u) << out;
    EXPECT_EQ(events[2].first, "response.failed");
    EXPECT_EQ(ParseJson(events[2].second).at("response").at("error").at("message"), "overloaded");
  }
  {  // an oversized event ends the translation
    OpenAIToResponsesStream stream({.client_model = "m", .max_event_bytes = 64});
    std::string out;
    stream.Feed(Join({C(R"("choices":[{"index":0,"delta":{"content":")" + std::string(200, 'x') +
                        R"("}}])")}),
                out);
    stream.Finish(out);
    EXPECT_EQ(last(out).first, "response.failed");
    EXPECT_EQ(stream.status().code(), StatusCode::kInternal);
  }
}

TEST(ResponsesClientStream, ChunkingInvariance) {
  testing::ExpectChunkingInvariant<OpenAIToResponsesStream>(Join(kToolStream), Opts(), 11);
  testing::ExpectChunkingInvariant<OpenAIToResponsesStream>(Join(kToolStream, /*crlf=*/true),
                                                            Opts(), 12);
  // LF and CRLF framing give the same translation.
  EXPECT_EQ(testing::TranslateCut<OpenAIToResponsesStream>(Join(kToolStream, true), {}, Opts()),
            testing::TranslateCut<OpenAIToResponsesStream>(Join(kToolStream), {}, Opts()));
}

TEST(ResponsesClientStream, MutatedInputStaysWholeEvents) {
  std::mt19937 rng(7);
  const std::string base = Join(kToolStream);
  for (int round = 0; round < 300; ++round) {
    const std::string input = testing::Mutate(rng, base);
    const std::string whole = testing::TranslateCut<OpenAIToResponsesStream>(input, {}, Opts());
    ASSERT_EQ(testing::TranslateCut<OpenAIToResponsesStream>(
                  input, testing::RandomCuts(rng, input.size(), 50), Opts()),
              whole);
    EventsOf(whole);  // framing, JSON and sequence numbers
  }
}

// Anthropic SSE -> Responses events, through chat chunks.
const char* const kAnthropicStream =
    "event: message_start\n"
    R"(data: {"type":"message_start","message":{"id":"msg_01","type":"message","role":"assistant","content":[],"model":"claude","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,"cache_creation_input_tokens":40,"cache_read_input_tokens":1000,"output_tokens":1}}})"
    "\n\nevent: content_block_start\n"
    R"(data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}})"
    "\n\nevent: content_block_delta\n"
    R"(data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Let me check."}})"
    "\n\nevent: content_block_stop\n"
    R"(data: {"type":"content_block_stop","index":0})"
    "\n\nevent: content_block_start\n"
    R"(data: {"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_1","name":"get_weather","input":{}}})"
    "\n\nevent: content_block_delta\n"
    R"(data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"city\":"}})"
    "\n\nevent: content_block_delta\n"
    R"(data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":" \"Paris\"}"}})"
    "\n\nevent: content_block_stop\n"
    R"(data: {"type":"content_block_stop","index":1})"
    "\n\nevent: message_delta\n"
    R"(data: {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":30}})"
    "\n\nevent: message_stop\n"
    R"(data: {"type":"message_stop"})"
    "\n\n";

TEST(ResponsesClientStream, FromAnthropicThroughChat) {
  AnthropicToResponsesStream::Options options{.client_model = "claude-client", .created = 5};
  AnthropicToResponsesStream stream(options);
  std::string out;
  stream.Feed(kAnthropicStream, out);
  stream.Finish(out);
  EXPECT_TRUE(stream.done());
  const Events events = EventsOf(out);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().first, "response.completed");
  json::value r = ParseJson(events.back().second).at("response");
  EXPECT_EQ(r.at("id"), "resp_msg_01");
  EXPECT_TRUE(
      JsonEq(json::serialize(r.at("output")),
             R"([{"id":"msg_msg_01_0","type":"message","status":"completed","role":"assistant",
                          "content":[{"type":"output_text","text":"Let me check.","annotations":[],"logprobs":[]}]},
                         {"id":"fc_toolu_1","type":"function_call","status":"completed",
                          "arguments":"{\"city\": \"Paris\"}","call_id":"toolu_1","name":"get_weather"}])"));
  EXPECT_TRUE(JsonEq(
      json::serialize(r.at("usage")),
      R"({"input_tokens":1065,"input_tokens_details":{"cached_tokens":1000},"output_tokens":30,
                         "output_tokens_details":{"reasoning_tokens":0},"total_tokens":1095})"));
  // Billing reads the Anthropic usage, cache writes included.
  EXPECT_EQ(stream.usage().input_tokens, 1065);
  EXPECT_EQ(stream.usage().cache_write_tokens, 40);
  EXPECT_EQ(stream.usage().cache_read_tokens, 1000);
  EXPECT_EQ(stream.usage().output_tokens, 30);
  testing::ExpectChunkingInvariant<AnthropicToResponsesStream>(kAnthropicStream, options, 13);
}

// A long conversation through both Responses translators (chat -> Responses -> chat), whose trees
// grow their arenas many times over, comes back whole and in order.
TEST(ResponsesClientRequest, LongConversationRoundTripsThroughBothArenas) {
  const boost::json::object request{{"model", "m"},
                                    {"messages", testing::LongConversation(/*image_detail=*/true)}};
  EXPECT_TRUE(testing::MessagesRoundTrip(request, OpenAIChatToResponsesRequest,
                                         ResponsesToOpenAIChatRequest, 250'000));
}

}  // namespace
}  // namespace keygate::translate
