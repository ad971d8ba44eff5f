// AnthropicToOpenAIStream on recorded streams: golden output event by event (compared as parsed
// JSON), tool-call indexes, usage, endings (error event, truncation, oversized event), and
// chunk-boundary invariance (every split point, byte at a time, random splits).
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "provider/provider.h"
#include "tests/translate/json_testing.h"
#include "tests/translate/stream_testing.h"
#include "translate/translate.h"

namespace keygate::translate {
namespace {

using testing::JsonEq;

std::string Join(const std::vector<std::string>& events, bool crlf = false) {
  std::string s;
  for (const std::string& e : events) {
    for (char c : e) {
      if (c == '\n' && crlf) s += '\r';
      s += c;
    }
    s += crlf ? "\r\n\r\n" : "\n\n";
  }
  return s;
}

// Thinking, text, and two tool calls (Anthropic content indexes 0..3), as the API streams them.
const std::vector<std::string> kToolStream = {
    "event: message_start\n"
    R"(data: {"type":"message_start","message":{"id":"msg_01ABC","type":"message","role":"assistant","content":[],"model":"claude-sonnet-4-5-20250929","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,"cache_creation_input_tokens":40,"cache_read_input_tokens":1000,"output_tokens":1}}})",
    "event: ping\n"
    R"(data: {"type": "ping"})",
    "event: content_block_start\n"
    R"(data: {"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}})",
    "event: content_block_delta\n"
    R"(data: {"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"Two cities."}})",
    "event: content_block_delta\n"
    R"(data: {"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EqQBCgIYAhIM"}})",
    "event: content_block_stop\n"
    R"(data: {"type":"content_block_stop","index":0})",
    "event: content_block_start\n"
    R"(data: {"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}})",
    "event: content_block_delta\n"
    R"(data: {"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"Checking \u2603 "}})",
    "event: content_block_delta\n"
    R"(data: {"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"both."}})",
    "event: content_block_stop\n"
    R"(data: {"type":"content_block_stop","index":1})",
    "event: content_block_start\n"
    R"(data: {"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"toolu_A","name":"get_weather","input":{}}})",
    "event: content_block_delta\n"
    R"(data: {"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":""}})",
    "event: content_block_delta\n"
    R"(data: {"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{\"city\": \"Pa"}})",
    "event: content_block_delta\n"
    R"(data: {"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"ris\"}"}})",
    "event: content_block_stop\n"
    R"(data: {"type":"content_block_stop","index":2})",
    "event: content_block_start\n"
    R"(data: {"type":"content_block_start","index":3,"content_block":{"type":"tool_use","id":"toolu_B","name":"get_weather","input":{}}})",
    "event: content_block_delta\n"
    R"(data: {"type":"content_block_delta","index":3,"delta":{"type":"input_json_delta","partial_json":"{\"city\": \"Rome\"}"}})",
    "event: content_block_stop\n"
    R"(data: {"type":"content_block_stop","index":3})",
    "event: message_delta\n"
    R"(data: {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":89}})",
    "event: message_stop\n"
    R"(data: {"type":"message_stop"})",
};

constexpr const char* kHead =
    R"("id":"msg_01ABC","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o")";

std::string Chunk(const std::string& delta, const std::string& finish = "null",
                  bool usage_null = true) {
  return std::string("{") + kHead + R"(,"choices":[{"index":0,"delta":)" + delta +
         R"(,"logprobs":null,"finish_reason":)" + finish + "}]" +
         (usage_null ? R"(,"usage":null)" : "") + "}";
}

// The expected data of each output event (with include_usage).
std::vector<std::string> ExpectedToolStream(bool include_usage) {
  std::vector<std::string> e = {
      Chunk(R"({"role":"assistant","content":""})", "null", include_usage),
      Chunk(R"({"reasoning_content":"Two cities."})", "null", include_usage),
      Chunk(R"({"content":"Checking ☃ "})", "null", include_usage),
      Chunk(R"({"content":"both."})", "null", include_usage),
      Chunk(
          R"({"tool_calls":[{"index":0,"id":"toolu_A","type":"function","function":{"name":"get_weather","arguments":""}}]})",
          "null", include_usage),
      Chunk(R"({"tool_calls":[{"index":0,"function":{"arguments":"{\"city\": \"Pa"}}]})", "null",
            include_usage),
      Chunk(R"({"tool_calls":[{"index":0,"function":{"arguments":"ris\"}"}}]})", "null",
            include_usage),
      Chunk(
          R"({"tool_calls":[{"index":1,"id":"toolu_B","type":"function","function":{"name":"get_weather","arguments":""}}]})",
          "null", include_usage),
      Chunk(R"({"tool_calls":[{"index":1,"function":{"arguments":"{\"city\": \"Rome\"}"}}]})",
            "null", include_usage),
      Chunk("{}", R"("tool_calls")", include_usage),
  };
  if (include_usage) {
    e.push_back(
        std::string("{") + kHead +
        R"(,"choices":[],"usage":{"prompt_tokens":1065,"completion_tokens":89,"total_tokens":1154,"prompt_tokens_details":{"cached_tokens":1000}}})");
  }
  e.push_back("[DONE]");
  return e;
}

AnthropicToOpenAIStream::Options Opts(bool include_usage = true) {
  return {.client_model = "gpt-4o", .created = 1700000000, .include_usage = include_usage};
}

// Splits translated output into the data of each event, checking the SSE framing on the way.
std::vector<std::string> DataOf(const std::string& out) {
  std::vector<std::string> data;
  size_t i = 0;
  while (i < out.size()) {
    size_t end = out.find("\n\n", i);
    EXPECT_NE(end, std::string::npos) << "unterminated event at " << i;
    if (end == std::string::npos) break;
    std::string event = out.substr(i, end - i);
    EXPECT_EQ(event.rfind("data: ", 0), 0u) << event;
    EXPECT_EQ(event.find('\n'), std::string::npos) << event;
    data.push_back(event.substr(6));
    i = end + 2;
  }
  return data;
}

void ExpectEvents(const std::string& out, const std::vector<std::string>& expected) {
  std::vector<std::string> got = DataOf(out);
  ASSERT_EQ(got.size(), expected.size()) << out;
  for (size_t i = 0; i < got.size(); ++i) {
    if (expected[i] == "[DONE]") {
      EXPECT_EQ(got[i], "[DONE]");
    } else {
      EXPECT_TRUE(JsonEq(got[i], expected[i])) << "event " << i;
    }
  }
}

std::string Translate(std::string_view input, const std::vector<size_t>& cuts,
                      AnthropicToOpenAIStream::Options options = Opts()) {
  return testing::TranslateCut<AnthropicToOpenAIStream>(input, cuts, options);
}

TEST(AnthropicStream, ToolStreamGolden) {
  AnthropicToOpenAIStream stream(Opts());
  std::string out;
  stream.Feed(Join(kToolStream), out);
  EXPECT_TRUE(stream.done());
  stream.Finish(out);
  EXPECT_TRUE(stream.status().ok()) << stream.status().ToString();
  ExpectEvents(out, ExpectedToolStream(true));
}

TEST(AnthropicStream, WithoutIncludeUsageNoUsageChunk) {
  ExpectEvents(Translate(Join(kToolStream), {}, Opts(false)), ExpectedToolStream(false));
}

TEST(AnthropicStream, CrlfStreamGivesTheSameOutput) {
  EXPECT_EQ(Translate(Join(kToolStream, true), {}), Translate(Join(kToolStream), {}));
}

TEST(AnthropicStream, UsageMatchesTheProviderFilter) {
  const std::string input = Join(kToolStream);
  AnthropicToOpenAIStream stream(Opts());
  std::string out;
  stream.Feed(input, out);
  stream.Finish(out);
  provider::SseUsageFilter filter(config::Format::kAnthropicMessages, false);
  std::string ignored;
  filter.Feed(input, ignored);
  filter.Finish(ignored);
  const provider::Usage& a = stream.usage();
  const provider::Usage& b = filter.usage();
  EXPECT_TRUE(a.present);
  EXPECT_EQ(a.input_tokens, b.input_tokens);
  EXPECT_EQ(a.output_tokens, b.output_tokens);
  EXPECT_EQ(a.cache_read_tokens, b.cache_read_tokens);
  EXPECT_EQ(a.cache_write_tokens, b.cache_write_tokens);
  EXPECT_EQ(a.input_tokens, 1065);
  EXPECT_EQ(a.output_tokens, 89);
  // And an OpenAI-format filter reads the same from the translated stream's usage chunk.
  provider::SseUsageFilter openai(config::Format::kOpenAIChat, false);
  openai.Feed(out, ignored);
  openai.Finish(ignored);
  EXPECT_EQ(openai.usage().input_tokens, a.input_tokens);
  EXPECT_EQ(openai.usage().output_tokens, a.output_tokens);
  EXPECT_EQ(openai.usage().cache_read_tokens, a.cache_read_tokens);
  EXPECT_TRUE(openai.saw_done());
}

// ---------------------------------------------------------------- chunk-boundary invariance

TEST(AnthropicStream, OutputDoesNotDependOnChunking) {
  for (bool crlf : {false, true}) {
    SCOPED_TRACE(crlf ? "CRLF" : "LF");
    testing::ExpectChunkingInvariant<AnthropicToOpenAIStream>(Join(kToolStream, crlf), Opts(),
                                                               20250611);
  }
}

// ---------------------------------------------------------------- endings and edge cases

TEST(AnthropicStream, UpstreamErrorEventBecomesAnOpenAIError) {
  std::vector<std::string> events = {
      kToolStream[0],
      "event: error\n"
      R"(data: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})",
      kToolStream[6],  // ignored after the error
  };
  AnthropicToOpenAIStream stream(Opts());
  std::string out;
  stream.Feed(Join(events), out);
  stream.Finish(out);
  ExpectEvents(
      out,
      {Chunk(R"({"role":"assistant","content":""})"),
       R"({"error":{"message":"Overloaded","type":"overloaded_error","param":null,"code":null}})"});
  EXPECT_FALSE(stream.done());
  EXPECT_EQ(stream.status().code(), StatusCode::kUnavailable);
}

TEST(AnthropicStream, TruncatedStreamEndsWithAnErrorNotDone) {
  std::vector<std::string> events(kToolStream.begin(), kToolStream.begin() + 9);
  AnthropicToOpenAIStream stream(Opts());
  std::string out;
  stream.Feed(Join(events), out);
  stream.Finish(out);
  std::vector<std::string> data = DataOf(out);
  ASSERT_FALSE(data.empty());
  EXPECT_NE(data.back().find("\"error\""), std::string::npos) << data.back();
  EXPECT_EQ(out.find("[DONE]"), std::string::npos);
  EXPECT_FALSE(stream.done());
  EXPECT_FALSE(stream.status().ok());
  EXPECT_EQ(stream.usage().input_tokens, 1065);  // what was read still bills
}

TEST(AnthropicStream, FinalEventWithoutBlankLineIsTranslatedAtFinish) {
  std::string input = Join(kToolStream);
  input.resize(input.size() - 2);  // no blank line after message_stop
  AnthropicToOpenAIStream stream(Opts());
  std::string out;
  stream.Feed(input, out);
  EXPECT_FALSE(stream.done());
  stream.Finish(out);
  EXPECT_TRUE(stream.done());
  ExpectEvents(out, ExpectedToolStream(true));
}

TEST(AnthropicStream, OversizedEventEndsTheStreamWithBoundedMemory) {
  AnthropicToOpenAIStream::Options options = Opts();
  options.max_event_bytes = 1024;
  std::string big =
      "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
      "\"delta\":{\"type\":\"text_delta\",\"text\":\"" +
      std::string(4096, 'x') + "\"}}\n\n";
  for (std::vector<size_t> cuts : {std::vector<size_t>{}, std::vector<size_t>{100, 900, 1500}}) {
    std::string input = Join({kToolStream[0]}) + big + Join({kToolStream.back()});
    std::string out = Translate(input, cuts, options);
    std::vector<std::string> data = DataOf(out);
    ASSERT_EQ(data.size(), 2u) << out;
    EXPECT_NE(data[1].find("longer than 1024"), std::string::npos) << data[1];
  }
}

TEST(AnthropicStream, ToolIndexesCountOnlyToolBlocks) {
  // A text block at Anthropic index 0 and a tool at index 1: the tool is OpenAI index 0.
  std::vector<std::string> events = {
      kToolStream[0],
      R"(data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":"Hi"}})",
      R"(data: {"type":"content_block_stop","index":0})",
      R"(data: {"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"t1","name":"f","input":{"a":1}}})",
      R"(data: {"type":"content_block_stop","index":1})",
      R"(data: {"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":3}})",
      R"(data: {"type":"message_stop"})",
  };
  ExpectEvents(
      Translate(Join(events), {}, Opts(false)),
      {Chunk(R"({"role":"assistant","content":""})", "null", false),
       Chunk(R"({"content":"Hi"})", "null", false),
       Chunk(
           R"({"tool_calls":[{"index":0,"id":"t1","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}}]})",
           "null", false),
       Chunk("{}", R"("tool_calls")", false), "[DONE]"});
}

TEST(AnthropicStream, StructuredOutputToolStreamsAsContent) {
  std::vector<std::string> events = {
      kToolStream[0],
      R"(data: {"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"t1","name":"keygate_json_response","input":{}}})",
      R"(data: {"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\"name\":"}})",
      R"(data: {"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":" \"Paris\"}"}})",
      R"(data: {"type":"content_block_stop","index":0})",
      R"(data: {"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":3}})",
      R"(data: {"type":"message_stop"})",
  };
  ExpectEvents(Translate(Join(events), {}, Opts(false)),
               {Chunk(R"({"role":"assistant","content":""})", "null", false),
                Chunk(R"({"content":"{\"name\":"})", "null", false),
                Chunk(R"({"content":" \"Paris\"}"})", "null", false),
                Chunk("{}", R"("stop")", false), "[DONE]"});
}

TEST(AnthropicStream, StopReasonsMapToFinishReasons) {
  for (auto [stop, finish] :
       std::vector<std::pair<std::string, std::string>>{{"end_turn", "stop"},
                                                        {"max_tokens", "length"},
                                                        {"stop_sequence", "stop"},
                                                        {"tool_use", "tool_calls"},
                                                        {"refusal", "content_filter"}}) {
    std::vector<std::string> events = {
        kToolStream[0],
        R"(data: {"type":"message_delta","delta":{"stop_reason":")" + stop +
            R"("},"usage":{"output_tokens":3}})",
        R"(data: {"type":"message_stop"})",
    };
    std::vector<std::string> data = DataOf(Translate(Join(events), {}, Opts(false)));
    ASSERT_EQ(data.size(), 3u);
    EXPECT_TRUE(JsonEq(data[1], Chunk("{}", "\"" + finish + "\"", false))) << stop;
  }
}

TEST(AnthropicStream, CommentsPingsAndGarbagePassQuietly) {
  std::vector<std::string> events = {": keep-alive",   kToolStream[0],
                                     "data: not json", "event: ping\ndata: {\"type\":\"ping\"}",
                                     "data: [DONE]",   kToolStream.back()};
  ExpectEvents(Translate(Join(events), {}, Opts(false)),
               {Chunk(R"({"role":"assistant","content":""})", "null", false), "[DONE]"});
}

TEST(AnthropicStream, InputAfterTheEndIsIgnored) {
  AnthropicToOpenAIStream stream(Opts(false));
  std::string out;
  stream.Feed(Join(kToolStream), out);
  size_t size = out.size();
  stream.Feed(Join({kToolStream[7]}), out);
  stream.Finish(out);
  EXPECT_EQ(out.size(), size);
  EXPECT_TRUE(stream.done());
}

// Mutated streams (bytes flipped, ranges cut or repeated): no crash (ASan/UBSan), well-framed
// output whose events are JSON or [DONE], and still independent of the chunking.
TEST(AnthropicStream, MutatedStreamsAreSafeAndChunkingInvariant) {
  std::mt19937 rng(6);
  const std::string base = Join(kToolStream);
  for (int round = 0; round < 400; ++round) {
    const std::string input = testing::Mutate(rng, base);
    AnthropicToOpenAIStream::Options options = Opts(rng() % 2 == 0);
    options.max_event_bytes = 256 + rng() % 1024;
    const std::string whole = Translate(input, {}, options);
    ASSERT_EQ(Translate(input, testing::RandomCuts(rng, input.size(), 50), options), whole)
        << "round " << round;
    for (const std::string& data : DataOf(whole)) {
      if (data == "[DONE]") continue;
      boost::system::error_code ec;
      boost::json::parse(data, ec);
      ASSERT_FALSE(ec) << data;
    }
  }
}

}  // namespace
}  // namespace keygate::translate
