// OpenAIChatToAnthropicRequest: golden cases per feature (input -> expected, compared as parsed
// JSON), and refusals that name the field.
#include <gtest/gtest.h>

#include <string>

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

// Every case runs with default_max_tokens = 1000 and the default thinking budgets.
const Golden kGoldens[] = {
    {"minimal_uses_default_max_tokens",
     R"({"model":"claude-x","messages":[{"role":"user","content":"Hi"}]})",
     R"({"model":"claude-x","max_tokens":1000,"messages":[{"role":"user","content":"Hi"}]})"},

    {"max_tokens_and_sampling",
     R"({"model":"m","max_tokens":50,"temperature":0.5,"top_p":0.9,"stream":false,
         "messages":[{"role":"user","content":"Hi"}]})",
     R"({"model":"m","max_tokens":50,"temperature":0.5,"top_p":0.9,
         "messages":[{"role":"user","content":"Hi"}]})"},

    {"max_completion_tokens_wins",
     R"({"model":"m","max_tokens":50,"max_completion_tokens":70,
         "messages":[{"role":"user","content":"Hi"}]})",
     R"({"model":"m","max_tokens":70,"messages":[{"role":"user","content":"Hi"}]})"},

    {"system_prompt_is_hoisted",
     R"({"model":"m","messages":[{"role":"system","content":"Be terse."},
                                 {"role":"user","content":"Hi"}]})",
     R"({"model":"m","max_tokens":1000,"system":"Be terse.",
         "messages":[{"role":"user","content":"Hi"}]})"},

    {"several_system_and_developer_messages_become_blocks",
     R"({"model":"m","messages":[{"role":"system","content":"A"},
                                 {"role":"developer","content":[{"type":"text","text":"B"}]},
                                 {"role":"user","content":"Hi"},
                                 {"role":"system","content":"C"}]})",
     R"({"model":"m","max_tokens":1000,
         "system":[{"type":"text","text":"A"},{"type":"text","text":"B"},{"type":"text","text":"C"}],
         "messages":[{"role":"user","content":"Hi"}]})"},

    {"cache_control_is_carried",
     R"({"model":"m","messages":[
         {"role":"system","content":[{"type":"text","text":"Long doc","cache_control":{"type":"ephemeral"}}]},
         {"role":"user","content":[{"type":"text","text":"Q","cache_control":{"type":"ephemeral","ttl":"1h"}}]}]})",
     R"({"model":"m","max_tokens":1000,
         "system":[{"type":"text","text":"Long doc","cache_control":{"type":"ephemeral"}}],
         "messages":[{"role":"user","content":[{"type":"text","text":"Q","cache_control":{"type":"ephemeral","ttl":"1h"}}]}]})"},

    {"multipart_text_and_images",
     R"({"model":"m","messages":[{"role":"user","content":[
         {"type":"text","text":"What is this?"},
         {"type":"image_url","image_url":{"url":"https://example.com/cat.png","detail":"high"}},
         {"type":"image_url","image_url":{"url":"data:image/jpeg;base64,/9j/4AAQ"}},
         {"type":"text","text":""}]}]})",
     R"({"model":"m","max_tokens":1000,"messages":[{"role":"user","content":[
         {"type":"text","text":"What is this?"},
         {"type":"image","source":{"type":"url","url":"https://example.com/cat.png"}},
         {"type":"image","source":{"type":"base64","media_type":"image/jpeg","data":"/9j/4AAQ"}}]}]})"},

    {"tools_and_tool_choice_auto",
     R"({"model":"m","messages":[{"role":"user","content":"Weather?"}],
         "tools":[{"type":"function","function":{"name":"get_weather","description":"Get weather",
                   "parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]},
                   "strict":true}},
                  {"type":"function","function":{"name":"now"}}],
         "tool_choice":"auto"})",
     R"({"model":"m","max_tokens":1000,"messages":[{"role":"user","content":"Weather?"}],
         "tools":[{"name":"get_weather","description":"Get weather",
                   "input_schema":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}},
                  {"name":"now","input_schema":{"type":"object","properties":{}}}],
         "tool_choice":{"type":"auto"}})"},

    {"tool_choice_none",
     R"({"model":"m","messages":[{"role":"user","content":"x"}],
         "tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"none"})",
     R"({"model":"m","max_tokens":1000,"messages":[{"role":"user","content":"x"}],
         "tools":[{"name":"f","input_schema":{"type":"object","properties":{}}}],
         "tool_choice":{"type":"none"}})"},

    {"tool_choice_required_is_any",
     R"({"model":"m","messages":[{"role":"user","content":"x"}],
         "tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"required"})",
     R"({"model":"m","max_tokens":1000,"messages":[{"role":"user","content":"x"}],
         "tools":[{"name":"f","input_schema":{"type":"object","properties":{}}}],
         "tool_choice":{"type":"any"}})"},

    {"tool_choice_function_is_tool",
     R"({"model":"m","messages":[{"role":"user","content":"x"}],
         "tools":[{"type":"function","function":{"name":"f"}}],
         "tool_choice":{"type":"function","function":{"name":"f"}}})",
     R"({"model":"m","max_tokens":1000,"messages":[{"role":"user","content":"x"}],
         "tools":[{"name":"f","input_schema":{"type":"object","properties":{}}}],
         "tool_choice":{"type":"tool","name":"f"}})"},

    {"parallel_tool_calls_false",
     R"({"model":"m","messages":[{"role":"user","content":"x"}],
         "tools":[{"type":"function","function":{"name":"f"}}],"parallel_tool_calls":false})",
     R"({"model":"m","max_tokens":1000,"messages":[{"role":"user","content":"x"}],
         "tools":[{"name":"f","input_schema":{"type":"object","properties":{}}}],
         "tool_choice":{"type":"auto","disable_parallel_tool_use":true}})"},

    {"parallel_tool_calls_false_with_required",
     R"({"model":"m","messages":[{"role":"user","content":"x"}],"tool_choice":"required",
         "tools":[{"type":"function","function":{"name":"f"}}],"parallel_tool_calls":false})",
     R"({"model":"m","max_tokens":1000,"messages":[{"role":"user","content":"x"}],
         "tools":[{"name":"f","input_schema":{"type":"object","properties":{}}}],
         "tool_choice":{"type":"any","disable_parallel_tool_use":true}})"},

    {"tool_round_trip_with_merged_results",
     R"({"model":"m","messages":[
         {"role":"user","content":"Weather in Paris and Rome?"},
         {"role":"assistant","content":"Let me check.","tool_calls":[
           {"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}},
           {"id":"call_2","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Rome\"}"}}]},
         {"role":"tool","tool_call_id":"call_1","content":"21C"},
         {"role":"tool","tool_call_id":"call_2","content":[{"type":"text","text":"25C"}]},
         {"role":"user","content":"Thanks"}]})",
     R"({"model":"m","max_tokens":1000,"messages":[
         {"role":"user","content":"Weather in Paris and Rome?"},
         {"role":"assistant","content":[
           {"type":"text","text":"Let me check."},
           {"type":"tool_use","id":"call_1","name":"get_weather","input":{"city":"Paris"}},
           {"type":"tool_use","id":"call_2","name":"get_weather","input":{"city":"Rome"}}]},
         {"role":"user","content":[
           {"type":"tool_result","tool_use_id":"call_1","content":"21C"},
           {"type":"tool_result","tool_use_id":"call_2","content":[{"type":"text","text":"25C"}]},
           {"type":"text","text":"Thanks"}]}]})"},

    {"assistant_null_content_and_empty_arguments",
     R"({"model":"m","messages":[{"role":"user","content":"x"},
         {"role":"assistant","content":null,"tool_calls":[
           {"id":"t1","type":"function","function":{"name":"now","arguments":""}}]},
         {"role":"tool","tool_call_id":"t1","content":"noon"}]})",
     R"({"model":"m","max_tokens":1000,"messages":[{"role":"user","content":"x"},
         {"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"now","input":{}}]},
         {"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":"noon"}]}]})"},

    {"assistant_text_stays_a_string",
     R"({"model":"m","messages":[{"role":"user","content":"a"},{"role":"assistant","content":"b"},
                                 {"role":"user","content":"c"}]})",
     R"({"model":"m","max_tokens":1000,"messages":[{"role":"user","content":"a"},
         {"role":"assistant","content":"b"},{"role":"user","content":"c"}]})"},

    {"consecutive_user_messages_merge",
     R"({"model":"m","messages":[{"role":"user","content":"a"},{"role":"user","content":"b"}]})",
     R"({"model":"m","max_tokens":1000,"messages":[{"role":"user","content":[
         {"type":"text","text":"a"},{"type":"text","text":"b"}]}]})"},

    {"stop_string", R"({"model":"m","messages":[{"role":"user","content":"x"}],"stop":"END"})",
     R"({"model":"m","max_tokens":1000,"messages":[{"role":"user","content":"x"}],
         "stop_sequences":["END"]})"},

    {"stop_array", R"({"model":"m","messages":[{"role":"user","content":"x"}],"stop":["A","B"]})",
     R"({"model":"m","max_tokens":1000,"messages":[{"role":"user","content":"x"}],
         "stop_sequences":["A","B"]})"},

    {"stream_and_user",
     R"({"model":"m","messages":[{"role":"user","content":"x"}],"stream":true,
         "stream_options":{"include_usage":true},"user":"u-42"})",
     R"({"model":"m","max_tokens":1000,"messages":[{"role":"user","content":"x"}],
         "metadata":{"user_id":"u-42"},"stream":true})"},

    {"reasoning_effort_medium",
     R"({"model":"m","max_completion_tokens":8000,"reasoning_effort":"medium",
         "messages":[{"role":"user","content":"x"}]})",
     R"({"model":"m","max_tokens":8000,"messages":[{"role":"user","content":"x"}],
         "thinking":{"type":"enabled","budget_tokens":2048}})"},

    {"reasoning_effort_budget_kept_below_max_tokens",
     R"({"model":"m","max_tokens":3000,"reasoning_effort":"high",
         "messages":[{"role":"user","content":"x"}]})",
     R"({"model":"m","max_tokens":3000,"messages":[{"role":"user","content":"x"}],
         "thinking":{"type":"enabled","budget_tokens":2999}})"},

    {"response_format_json_schema_is_a_forced_tool",
     R"({"model":"m","messages":[{"role":"user","content":"x"}],
         "response_format":{"type":"json_schema","json_schema":{"name":"city","description":"A city.",
           "schema":{"type":"object","properties":{"name":{"type":"string"}},"required":["name"]},"strict":true}}})",
     R"({"model":"m","max_tokens":1000,"messages":[{"role":"user","content":"x"}],
         "tools":[{"name":"keygate_json_response",
                   "description":"Give your answer by calling this tool: its input is the answer. A city.",
                   "input_schema":{"type":"object","properties":{"name":{"type":"string"}},"required":["name"]}}],
         "tool_choice":{"type":"tool","name":"keygate_json_response"}})"},

    {"response_format_json_object_is_a_forced_tool",
     R"({"model":"m","messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_object"}})",
     R"({"model":"m","max_tokens":1000,"messages":[{"role":"user","content":"x"}],
         "tools":[{"name":"keygate_json_response",
                   "description":"Give your answer by calling this tool: its input is the answer.",
                   "input_schema":{"type":"object"}}],
         "tool_choice":{"type":"tool","name":"keygate_json_response"}})"},

    {"reasoning_effort_none",
     R"({"model":"m","reasoning_effort":"none","messages":[{"role":"user","content":"x"}]})",
     R"({"model":"m","max_tokens":1000,"messages":[{"role":"user","content":"x"}]})"},

    {"neutral_values_and_ignored_fields",
     R"({"model":"m","messages":[{"role":"user","content":"x","name":"alice"}],"n":1,
         "logprobs":false,"presence_penalty":0,"frequency_penalty":0.0,"logit_bias":{},
         "seed":7,"metadata":{"k":"v"},"store":false,"service_tier":"auto",
         "response_format":{"type":"text"},"modalities":["text"],"parallel_tool_calls":true,
         "prompt_cache_key":"p","top_logprobs":null,"tools":null,"tool_choice":null})",
     R"({"model":"m","max_tokens":1000,"messages":[{"role":"user","content":"x"}]})"},
};

class GoldenTest : public ::testing::TestWithParam<Golden> {};

TEST_P(GoldenTest, TranslatesToExpected) {
  TranslateOptions options;
  options.default_max_tokens = 1000;
  StatusOr<std::string> out = OpenAIChatToAnthropicRequest(GetParam().input, options);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_TRUE(JsonEq(*out, GetParam().expected));
}

INSTANTIATE_TEST_SUITE_P(Request, GoldenTest, ::testing::ValuesIn(kGoldens),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(Request, UpstreamModelReplacesTheClientsModel) {
  TranslateOptions options;
  options.upstream_model = "claude-sonnet-4-5-20250929";
  auto out = OpenAIChatToAnthropicRequest(
      R"({"model":"gpt-4o","max_tokens":5,"messages":[{"role":"user","content":"x"}]})", options);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_TRUE(JsonEq(*out, R"({"model":"claude-sonnet-4-5-20250929","max_tokens":5,
                               "messages":[{"role":"user","content":"x"}]})"));
}

TEST(Request, ThinkingBudgetsComeFromOptions) {
  TranslateOptions options;
  options.thinking_budgets = {.low = 1500, .medium = 5000, .high = 20000};
  auto out = OpenAIChatToAnthropicRequest(
      R"({"model":"m","max_tokens":30000,"reasoning_effort":"low",
          "messages":[{"role":"user","content":"x"}]})",
      options);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_TRUE(JsonEq(*out, R"({"model":"m","max_tokens":30000,
      "messages":[{"role":"user","content":"x"}],"thinking":{"type":"enabled","budget_tokens":1500}})"));
}

TEST(Request, UnicodeAndEscapesSurvive) {
  auto out = OpenAIChatToAnthropicRequest(
      R"({"model":"m","messages":[{"role":"user","content":"caf\u00e9 \ud83d\ude00 \"q\" \\ \n"}]})",
      TranslateOptions{});
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_TRUE(JsonEq(*out,
                     "{\"model\":\"m\",\"max_tokens\":4096,\"messages\":[{\"role\":\"user\","
                     "\"content\":\"caf\xc3\xa9 \xf0\x9f\x98\x80 \\\"q\\\" \\\\ \\n\"}]}"));
}

// ---------------------------------------------------------------- refusals

struct Refusal {
  const char* name;
  const char* input;
  const char* message_part;  // the field the message must name
};

const Refusal kRefusals[] = {
    {"not_json", R"({"model":)", "not valid JSON"},
    {"not_object", R"([1,2])", "must be a JSON object"},
    {"duplicate_key", R"({"model":"m","model":"n","messages":[]})", "duplicate key 'model'"},
    {"no_model", R"({"messages":[{"role":"user","content":"x"}]})", "'model'"},
    {"no_messages", R"({"model":"m"})", "'messages'"},
    {"empty_messages", R"({"model":"m","messages":[]})", "'messages'"},
    {"n_2", R"({"model":"m","n":2,"messages":[{"role":"user","content":"x"}]})", "'n'"},
    {"logprobs", R"({"model":"m","logprobs":true,"messages":[{"role":"user","content":"x"}]})",
     "'logprobs'"},
    {"top_logprobs", R"({"model":"m","top_logprobs":3,"messages":[{"role":"user","content":"x"}]})",
     "'top_logprobs'"},
    {"presence_penalty",
     R"({"model":"m","presence_penalty":0.5,"messages":[{"role":"user","content":"x"}]})",
     "'presence_penalty'"},
    {"frequency_penalty",
     R"({"model":"m","frequency_penalty":1,"messages":[{"role":"user","content":"x"}]})",
     "'frequency_penalty'"},
    {"logit_bias",
     R"({"model":"m","logit_bias":{"50256":-100},"messages":[{"role":"user","content":"x"}]})",
     "'logit_bias'"},
    {"response_format_json_schema_not_an_object",
     R"({"model":"m","response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{}}},
         "messages":[{"role":"user","content":"x"}]})",
     "'response_format.json_schema.schema'"},
    {"response_format_with_tools",
     R"({"model":"m","response_format":{"type":"json_object"},"messages":[{"role":"user","content":"x"}],
         "tools":[{"type":"function","function":{"name":"f"}}]})",
     "'response_format'"},
    {"response_format_with_reasoning",
     R"({"model":"m","max_tokens":5000,"reasoning_effort":"low","response_format":{"type":"json_object"},
         "messages":[{"role":"user","content":"x"}]})",
     "'response_format'"},
    {"reserved_tool_name",
     R"({"model":"m","messages":[{"role":"user","content":"x"}],
         "tools":[{"type":"function","function":{"name":"keygate_json_response"}}]})",
     "'tools[0].function.name'"},
    {"audio",
     R"({"model":"m","audio":{"voice":"alloy"},"messages":[{"role":"user","content":"x"}]})",
     "'audio'"},
    {"modalities_audio",
     R"({"model":"m","modalities":["text","audio"],"messages":[{"role":"user","content":"x"}]})",
     "'modalities'"},
    {"functions", R"({"model":"m","functions":[],"messages":[{"role":"user","content":"x"}]})",
     "'functions'"},
    {"unknown_field", R"({"model":"m","top_k":5,"messages":[{"role":"user","content":"x"}]})",
     "'top_k'"},
    {"temperature_above_1",
     R"({"model":"m","temperature":1.5,"messages":[{"role":"user","content":"x"}]})",
     "'temperature'"},
    {"temperature_string",
     R"({"model":"m","temperature":"hot","messages":[{"role":"user","content":"x"}]})",
     "'temperature' must be a number"},
    {"max_tokens_zero",
     R"({"model":"m","max_tokens":0,"messages":[{"role":"user","content":"x"}]})", "'max_tokens'"},
    {"max_completion_tokens_fraction",
     R"({"model":"m","max_completion_tokens":1.5,"messages":[{"role":"user","content":"x"}]})",
     "'max_completion_tokens'"},
    {"stop_number", R"({"model":"m","stop":[1],"messages":[{"role":"user","content":"x"}]})",
     "'stop[0]'"},
    {"invalid_arguments",
     R"({"model":"m","messages":[{"role":"user","content":"x"},{"role":"assistant","tool_calls":[
         {"id":"c","type":"function","function":{"name":"f","arguments":"{\"a\":"}}]}]})",
     "'messages[1].tool_calls[0].function.arguments' is not valid JSON"},
    {"array_arguments",
     R"({"model":"m","messages":[{"role":"user","content":"x"},{"role":"assistant","tool_calls":[
         {"id":"c","type":"function","function":{"name":"f","arguments":"[1]"}}]}]})",
     "'messages[1].tool_calls[0].function.arguments' must encode a JSON object"},
    {"tool_call_without_id",
     R"({"model":"m","messages":[{"role":"assistant","tool_calls":[
         {"type":"function","function":{"name":"f","arguments":"{}"}}]}]})",
     "'messages[0].tool_calls[0].id'"},
    {"tool_message_without_id", R"({"model":"m","messages":[{"role":"tool","content":"x"}]})",
     "'messages[0].tool_call_id'"},
    {"function_role", R"({"model":"m","messages":[{"role":"function","name":"f","content":"x"}]})",
     "'messages[0].role'"},
    {"unknown_role", R"({"model":"m","messages":[{"role":"robot","content":"x"}]})",
     "'messages[0].role'"},
    {"audio_part",
     R"({"model":"m","messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{}}]}]})",
     "'messages[0].content[0].type'"},
    {"image_in_system",
     R"({"model":"m","messages":[{"role":"system","content":[{"type":"image_url","image_url":{"url":"https://x"}}]},
         {"role":"user","content":"x"}]})",
     "'messages[0].content[0].type'"},
    {"image_bad_url",
     R"({"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"ftp://x"}}]}]})",
     "'messages[0].content[0].image_url.url'"},
    {"image_data_url_not_base64",
     R"({"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png,abc"}}]}]})",
     "'messages[0].content[0].image_url.url'"},
    {"message_audio", R"({"model":"m","messages":[{"role":"assistant","audio":{"id":"a"}}]})",
     "'messages[0].audio'"},
    {"empty_assistant", R"({"model":"m","messages":[{"role":"assistant","content":null}]})",
     "'messages[0]'"},
    {"tool_type_custom",
     R"({"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"type":"custom","custom":{}}]})",
     "'tools[0].type'"},
    {"tool_without_name",
     R"({"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{}}]})",
     "'tools[0].function.name'"},
    {"tool_choice_bad",
     R"({"model":"m","messages":[{"role":"user","content":"x"}],"tool_choice":"sometimes"})",
     "'tool_choice'"},
    {"reasoning_effort_bad",
     R"({"model":"m","reasoning_effort":"extreme","messages":[{"role":"user","content":"x"}]})",
     "'reasoning_effort'"},
    {"reasoning_with_temperature",
     R"({"model":"m","reasoning_effort":"low","temperature":0.2,"max_tokens":5000,
         "messages":[{"role":"user","content":"x"}]})",
     "'temperature'"},
    {"reasoning_with_forced_tool",
     R"({"model":"m","reasoning_effort":"low","max_tokens":5000,"tool_choice":"required",
         "tools":[{"type":"function","function":{"name":"f"}}],"messages":[{"role":"user","content":"x"}]})",
     "'tool_choice'"},
    {"reasoning_without_room",
     R"({"model":"m","reasoning_effort":"low","max_tokens":500,"messages":[{"role":"user","content":"x"}]})",
     "'max_tokens' (500)"},
    {"user_not_string", R"({"model":"m","user":5,"messages":[{"role":"user","content":"x"}]})",
     "'user'"},
};

class RefusalTest : public ::testing::TestWithParam<Refusal> {};

TEST_P(RefusalTest, NamesTheField) {
  StatusOr<std::string> out = OpenAIChatToAnthropicRequest(GetParam().input, TranslateOptions{});
  ASSERT_FALSE(out.ok()) << *out;
  EXPECT_EQ(out.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(out.status().message().find(GetParam().message_part), std::string::npos)
      << out.status().message();
}

INSTANTIATE_TEST_SUITE_P(Request, RefusalTest, ::testing::ValuesIn(kRefusals),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace keygate::translate
