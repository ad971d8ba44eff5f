// OpenAIToAnthropicStream on recorded streams: golden output event by event (event names checked,
// data compared as parsed JSON), block indexes when thinking, text and several tool calls
// interleave, usage, endings (error chunk, truncation, missing [DONE], oversized event), and
// chunk-boundary invariance (every split point, byte at a time, random multi-splits, LF and CRLF).
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <utility>
#include <vector>

#include "tests/translate/json_testing.h"
#include "tests/translate/stream_testing.h"
#include "translate/translate.h"

namespace keygate::translate {
namespace {

using testing::JsonEq;

std::string Join(const std::vector<std::string>& data, bool crlf = false) {
  std::string s;
  for (const std::string& d : data) s += "data: " + d + (crlf ? "\r\n\r\n" : "\n\n");
  return s;
}

constexpr const char* kHead =
    R"("id":"chatcmpl-9x","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-2024-08-06","system_fingerprint":"fp_1")";

std::string C(const std::string& rest) { return std::string("{") + kHead + "," + rest + "}"; }

// Reasoning, text, then two parallel tool calls whose argument fragments interleave; the usage
// chunk (stream_options.include_usage) and [DONE], as an OpenAI-compatible server streams them.
const std::vector<std::string> kToolStream = {
    C(R"("choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}],"usage":null)"),
    C(R"("choices":[{"index":0,"delta":{"reasoning_content":"Two cities."},"finish_reason":null}],"usage":null)"),
    C(R"("choices":[{"index":0,"delta":{"content":"Checking \u2603 "},"finish_reason":null}],"usage":null)"),
    C(R"("choices":[{"index":0,"delta":{"content":"both."},"finish_reason":null}],"usage":null)"),
    C(R"("choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_A","type":"function","function":{"name":"get_weather","arguments":""}}]},"finish_reason":null}],"usage":null)"),
    C(R"("choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\": \"Pa"}}]},"finish_reason":null}],"usage":null)"),
    C(R"("choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_B","type":"function","function":{"name":"get_weather","arguments":"{\"city\":"}}]},"finish_reason":null}],"usage":null)"),
    C(R"("choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"ris\"}"}}]},"finish_reason":null}],"usage":null)"),
    C(R"("choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"function":{"arguments":" \"Rome\"}"}}]},"finish_reason":null}],"usage":null)"),
    C(R"("choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"tool_calls"}],"usage":null)"),
    C(R"("choices":[],"usage":{"prompt_tokens":1065,"completion_tokens":89,"total_tokens":1154,"prompt_tokens_details":{"cached_tokens":1000,"audio_tokens":0}})"),
    "[DONE]",
};

using Events = std::vector<std::pair<std::string, std::string>>;  // (event name, data)

Events ExpectedToolStream() {
  return {
      {"message_start",
       R"({"type":"message_start","message":{"id":"chatcmpl-9x","type":"message","role":"assistant","model":"claude-sonnet","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":0,"output_tokens":0}}})"},
      {"content_block_start",
       R"({"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}})"},
      {"content_block_delta",
       R"({"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"Two cities."}})"},
      {"content_block_stop", R"({"type":"content_block_stop","index":0})"},
      {"content_block_start",
       R"({"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}})"},
      {"content_block_delta",
       R"({"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"Checking ☃ "}})"},
      {"content_block_delta",
       R"({"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"both."}})"},
      {"content_block_stop", R"({"type":"content_block_stop","index":1})"},
      {"content_block_start",
       R"({"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"call_A","name":"get_weather","input":{}}})"},
      {"content_block_delta",
       R"({"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{\"city\": \"Pa"}})"},
      {"content_block_start",
       R"({"type":"content_block_start","index":3,"content_block":{"type":"tool_use","id":"call_B","name":"get_weather","input":{}}})"},
      {"content_block_delta",
       R"({"type":"content_block_delta","index":3,"delta":{"type":"input_json_delta","partial_json":"{\"city\":"}})"},
      {"content_block_delta",
       R"({"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"ris\"}"}})"},
      {"content_block_delta",
       R"({"type":"content_block_delta","index":3,"delta":{"type":"input_json_delta","partial_json":" \"Rome\"}"}})"},
      {"content_block_stop", R"({"type":"content_block_stop","index":2})"},
      {"content_block_stop", R"({"type":"content_block_stop","index":3})"},
      {"message_delta",
       R"({"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"input_tokens":65,"cache_creation_input_tokens":0,"cache_read_input_tokens":1000,"output_tokens":89}})"},
      {"message_stop", R"({"type":"message_stop"})"},
  };
}

OpenAIToAnthropicStream::Options Opts() { return {.client_model = "claude-sonnet"}; }

// Splits translated output into (event name, data), checking the SSE framing on the way.
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
    EXPECT_NE(nl, std::string::npos) << event;
    if (nl == std::string::npos) break;
    EXPECT_EQ(event.compare(nl + 1, 6, "data: "), 0) << event;
    EXPECT_EQ(event.find('\n', nl + 1), std::string::npos) << event;
    events.emplace_back(event.substr(7, nl - 7), event.substr(nl + 7));
    i = end + 2;
  }
  return events;
}

void ExpectEvents(const std::string& out, const Events& expected) {
  Events got = EventsOf(out);
  ASSERT_EQ(got.size(), expected.size()) << out;
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].first, expected[i].first) << "event " << i;
    EXPECT_TRUE(JsonEq(got[i].second, expected[i].second)) << "event " << i;
  }
}

std::string Translate(std::string_view input, const std::vector<size_t>& cuts,
                      OpenAIToAnthropicStream::Options options = Opts()) {
  return testing::TranslateCut<OpenAIToAnthropicStream>(input, cuts, options);
}

TEST(OpenAIStream, ToolStreamGolden) {
  OpenAIToAnthropicStream stream(Opts());
  std::string out;
  stream.Feed(Join(kToolStream), out);
  EXPECT_TRUE(stream.done());
  stream.Finish(out);
  EXPECT_TRUE(stream.status().ok()) << stream.status().ToString();
  ExpectEvents(out, ExpectedToolStream());
  EXPECT_TRUE(stream.usage().present);
  EXPECT_EQ(stream.usage().input_tokens, 1065);
  EXPECT_EQ(stream.usage().cache_read_tokens, 1000);
  EXPECT_EQ(stream.usage().output_tokens, 89);
}

TEST(OpenAIStream, UsageMatchesTheProviderFilter) {
  testing::ExpectUsageMatchesTheFilter<OpenAIToAnthropicStream>(
      Join(kToolStream), config::Format::kOpenAIChat, Opts());
}

TEST(OpenAIStream, CrlfStreamGivesTheSameOutput) {
  EXPECT_EQ(Translate(Join(kToolStream, true), {}), Translate(Join(kToolStream), {}));
}

TEST(OpenAIStream, OutputDoesNotDependOnChunking) {
  for (bool crlf : {false, true}) {
    SCOPED_TRACE(crlf ? "CRLF" : "LF");
    testing::ExpectChunkingInvariant<OpenAIToAnthropicStream>(Join(kToolStream, crlf), Opts(),
                                                               20251128);
  }
}

TEST(OpenAIStream, TextAfterAToolCallOpensANewBlock) {
  const std::vector<std::string> chunks = {
      C(R"("choices":[{"index":0,"delta":{"content":"a"},"finish_reason":null}])"),
      C(R"("choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c1","function":{"name":"f","arguments":"{}"}}]},"finish_reason":null}])"),
      C(R"("choices":[{"index":0,"delta":{"content":"b"},"finish_reason":"stop"}])"),
      "[DONE]",
  };
  Events got = EventsOf(Translate(Join(chunks), {}));
  std::vector<std::string> names;
  for (const auto& [name, data] : got) names.push_back(name);
  EXPECT_EQ(names, (std::vector<std::string>{
                       "message_start", "content_block_start", "content_block_delta",
                       "content_block_stop", "content_block_start", "content_block_delta",
                       "content_block_start", "content_block_delta", "content_block_stop",
                       "content_block_stop", "message_delta", "message_stop"}));
  EXPECT_TRUE(JsonEq(got[6].second,
                     R"({"type":"content_block_start","index":2,"content_block":{"type":"text","text":""}})"));
  EXPECT_TRUE(JsonEq(got[8].second, R"({"type":"content_block_stop","index":1})"));
  EXPECT_TRUE(JsonEq(got[9].second, R"({"type":"content_block_stop","index":2})"));
  // No usage chunk (the upstream was not asked): zero counts, end_turn.
  EXPECT_TRUE(JsonEq(
      got[10].second,
      R"({"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"input_tokens":0,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":0}})"));
}

TEST(OpenAIStream, FinishReasonsMapToStopReasons) {
  for (auto [finish, stop] : std::vector<std::pair<std::string, std::string>>{
           {"stop", "end_turn"},
           {"length", "max_tokens"},
           {"tool_calls", "tool_use"},
           {"content_filter", "refusal"}}) {
    Events got = EventsOf(Translate(
        Join({C(R"("choices":[{"index":0,"delta":{"content":"x"},"finish_reason":")" + finish +
                R"("}])"),
              "[DONE]"}),
        {}));
    ASSERT_GE(got.size(), 2u);
    EXPECT_NE(got[got.size() - 2].second.find("\"stop_reason\":\"" + stop + "\""),
              std::string::npos)
        << finish;
  }
}

TEST(OpenAIStream, UpstreamErrorChunkBecomesAnAnthropicError) {
  OpenAIToAnthropicStream stream(Opts());
  std::string out;
  stream.Feed(Join({kToolStream[0], kToolStream[2],
                    R"({"error":{"message":"The server had an error","type":"server_error"}})",
                    kToolStream[3]}),
              out);
  stream.Finish(out);
  Events got = EventsOf(out);
  ASSERT_EQ(got.size(), 4u) << out;
  EXPECT_EQ(got[3].first, "error");
  EXPECT_TRUE(JsonEq(
      got[3].second,
      R"({"type":"error","error":{"type":"api_error","message":"The server had an error"}})"));
  EXPECT_FALSE(stream.done());
  EXPECT_FALSE(stream.status().ok());
}

TEST(OpenAIStream, TruncatedStreamEndsWithAnErrorNotMessageStop) {
  std::string out = Translate(Join({kToolStream[0], kToolStream[2]}), {});
  Events got = EventsOf(out);
  ASSERT_FALSE(got.empty());
  EXPECT_EQ(got.back().first, "error");
  EXPECT_EQ(out.find("message_stop"), std::string::npos);
}

TEST(OpenAIStream, MissingDoneAfterAFinishReasonStillEndsTheMessage) {
  std::vector<std::string> chunks(kToolStream.begin(), kToolStream.end() - 1);  // no [DONE]
  std::string input = Join(chunks);
  input.resize(input.size() - 2);  // and the last event lacks its blank line
  ExpectEvents(Translate(input, {}), ExpectedToolStream());
}

TEST(OpenAIStream, OversizedEventEndsTheStreamWithBoundedMemory) {
  OpenAIToAnthropicStream stream({.client_model = "m", .max_event_bytes = 256});
  std::string out;
  stream.Feed(Join({kToolStream[0]}), out);
  std::string big = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"";
  for (int i = 0; i < 100; ++i) stream.Feed(big + std::string(64, 'x'), out);  // no boundary
  stream.Finish(out);
  Events got = EventsOf(out);
  ASSERT_EQ(got.size(), 2u) << out;
  EXPECT_EQ(got[1].first, "error");
  EXPECT_NE(got[1].second.find("longer than 256 bytes"), std::string::npos);
}

TEST(OpenAIStream, CommentsKeepAlivesAndOtherChoicesPassQuietly) {
  std::string input = ": keep-alive\n\n" + Join({kToolStream[0]}) + "data: not json\n\n" +
                      Join({C(R"("choices":[{"index":1,"delta":{"content":"other"}}])"),
                            C(R"("choices":[{"index":0,"delta":{"content":"mine"},"finish_reason":"stop"}])"),
                            "[DONE]"});
  std::string out = Translate(input, {});
  EXPECT_EQ(out.find("other"), std::string::npos);
  EXPECT_NE(out.find("mine"), std::string::npos);
  EXPECT_NE(out.find("message_stop"), std::string::npos);
}

TEST(OpenAIStream, InputAfterTheEndIsIgnored) {
  std::string input = Join(kToolStream);
  EXPECT_EQ(Translate(input + Join({kToolStream[2]}), {}), Translate(input, {}));
}

TEST(OpenAIStream, MutatedStreamsAreSafeAndChunkingInvariant) {
  std::mt19937 rng(11);
  const std::string base = Join(kToolStream);
  for (int round = 0; round < 400; ++round) {
    const std::string input = testing::Mutate(rng, base);
    OpenAIToAnthropicStream::Options options = Opts();
    options.max_event_bytes = 256 + rng() % 1024;
    const std::string whole = Translate(input, {}, options);
    ASSERT_EQ(Translate(input, testing::RandomCuts(rng, input.size(), 50), options), whole)
        << "round " << round;
    for (const auto& [name, data] : EventsOf(whole)) {
      boost::system::error_code ec;
      boost::json::parse(data, ec);
      ASSERT_FALSE(ec) << name << ": " << data;
    }
  }
}

}  // namespace
}  // namespace keygate::translate
