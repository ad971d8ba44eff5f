// ChatChunkShape: a chunk that differs from the learned one only inside string values (and, where
// allowed, integers) is counted without a parse, with exactly the reader's answer; anything else
// is left to the parse.
#include "provider/chat_chunk_shape.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "provider/provider.h"
#include "tests/testing/mutator.h"

namespace keygate::provider::internal {
namespace {

// An OpenAI content chunk with `content` as the raw JSON string body.
std::string Content(std::string_view body, std::string_view finish = "null") {
  return R"({"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,)"
         R"("model":"gpt-4o","choices":[{"index":0,"delta":{"content":")" +
         std::string(body) + R"("},"logprobs":null,"finish_reason":)" + std::string(finish) + "}]}";
}

// Learns `chunk` as the usage filter does: from ReadChatChunk's reading of it.
ChatChunkShape Learned(std::string_view chunk) {
  ChatChunkShape shape;
  EXPECT_TRUE(shape.Learn(chunk, ReadChatChunk(chunk))) << chunk;
  return shape;
}

TEST(ChatChunkShape, CountsTheContentOfAChunkOfTheSameShape) {
  ChatChunkShape shape = Learned(Content("Hello"));
  EXPECT_EQ(shape.Match(Content("Hello")), 5u);
  EXPECT_EQ(shape.Match(Content(" world, and more")), 16u);
  EXPECT_EQ(shape.Match(Content("")), 0u);
}

TEST(ChatChunkShape, CountsOneLetterEscapesAndUtf8AsTheParserDecodesThem) {
  ChatChunkShape shape = Learned(Content("x"));
  // a, newline, quote, backslash, slash, tab: 6 characters.
  EXPECT_EQ(shape.Match(Content(R"(a\n\"\\\/\t)")), 6u);
  EXPECT_EQ(shape.Match(Content("h\xC3\xA9llo \xE2\x98\x83 \xF0\x9F\x98\x80")), 9u);  // é ☃ 😀
  for (std::string_view body : {R"(a\n\"\\\/\t)", "h\xC3\xA9llo \xE2\x98\x83 \xF0\x9F\x98\x80"}) {
    EXPECT_EQ(shape.Match(Content(body)), ReadChatChunk(Content(body)).output_chars) << body;
  }
}

TEST(ChatChunkShape, LearnsStringsEndingInEscapedBackslashesAndQuotes) {
  for (std::string_view body : {R"(a\\)", R"(x\\\"y)", R"(\")", R"(\\\\)"}) {
    ChatChunkShape shape = Learned(Content(body));
    EXPECT_EQ(shape.Match(Content(body)), ReadChatChunk(Content(body)).output_chars) << body;
    EXPECT_EQ(shape.Match(Content("b")), 1u) << body;
  }
}

TEST(ChatChunkShape, LeavesToTheParserWhatItCannotDecideAlone) {
  ChatChunkShape shape = Learned(Content("Hello"));
  EXPECT_EQ(shape.Match(Content(R"(caf\u00e9)")), std::nullopt);        // a \u escape
  EXPECT_EQ(shape.Match(Content(R"(a\x)")), std::nullopt);              // not an escape
  EXPECT_EQ(shape.Match(Content("a\tb")), std::nullopt);                // a control byte
  EXPECT_EQ(shape.Match(Content("a\xC3")), std::nullopt);               // UTF-8 cut short
  EXPECT_EQ(shape.Match(Content("\xED\xA0\x80")), std::nullopt);        // a surrogate
  EXPECT_EQ(shape.Match(Content("\xC0\xAF")), std::nullopt);            // overlong
  EXPECT_EQ(shape.Match(Content("Hello", R"("stop")")), std::nullopt);  // another value
  std::string other_key = Content("Hello");
  other_key.replace(other_key.find("content"), 7, "refusal");
  EXPECT_EQ(shape.Match(other_key), std::nullopt);
  std::string other_number = Content("Hello");
  other_number.replace(other_number.find("\"index\":0"), 9, "\"index\":1");
  EXPECT_EQ(shape.Match(other_number), std::nullopt);
  EXPECT_EQ(shape.Match(Content("Hello") + " "), std::nullopt);
  EXPECT_EQ(shape.Match(Content("Hello").substr(1)), std::nullopt);
  EXPECT_EQ(shape.Match(""), std::nullopt);
  std::string cut = Content("Hello");
  EXPECT_EQ(shape.Match(cut.substr(0, cut.find("Hello") + 3)), std::nullopt);
}

TEST(ChatChunkShape, OtherStringValuesMayDifferAndAreNotCounted) {
  // OpenAI pads each chunk with an "obfuscation" string of its own length.
  auto padded = [](std::string_view content, std::string_view pad) {
    return R"({"id":"c","choices":[{"index":0,"delta":{"content":")" + std::string(content) +
           R"("}}],"obfuscation":")" + std::string(pad) + R"("})";
  };
  ChatChunkShape shape = Learned(padded("Hi", "k3J"));
  EXPECT_EQ(shape.Match(padded("there", "Zx81yQ")), 5u);
  EXPECT_EQ(shape.Match(padded("!", "")), 1u);
  EXPECT_EQ(shape.Match(padded("again", "Zx81yQ")), 5u);  // now compared as varying
  EXPECT_EQ(shape.Match(padded("x", "a\tb")), std::nullopt);
}

TEST(ChatChunkShape, CountsEveryCountedString) {
  const std::string tool =
      R"({"choices":[{"index":0,"delta":{"reasoning_content":"think","tool_calls":[)"
      R"({"index":0,"function":{"arguments":"{\"a\":"}}]}},)"
      R"({"index":1,"delta":{"content":"two"}}]})";
  ChatChunk read = ReadChatChunk(tool);
  ASSERT_TRUE(read.valid);
  EXPECT_EQ(read.output_chars, 5u + 5u + 3u);
  ChatChunkShape shape = Learned(tool);
  std::string next = tool;
  next.replace(next.find("think"), 5, "more thought");
  next.replace(next.find(R"({\"a\":)"), 7, R"(1}\n)");
  EXPECT_EQ(shape.Match(next), 12u + 3u + 3u);
  EXPECT_EQ(shape.Match(next), ReadChatChunk(next).output_chars);
}

TEST(ChatChunkShape, ReadChatChunkTellsAChoicesLastChunk) {
  EXPECT_FALSE(ReadChatChunk(Content("a")).finishes);
  EXPECT_TRUE(ReadChatChunk(Content("a", R"("stop")")).finishes);
  EXPECT_TRUE(ReadChatChunk(Content("", R"("tool_calls")")).finishes);
  EXPECT_FALSE(ReadChatChunk(Content("a", "7")).finishes);
}

TEST(ChatChunkShape, LearnsOnlyWhatItCanMatch) {
  ChatChunkShape shape;
  const std::string usage = R"({"choices":[],"usage":{"prompt_tokens":1}})";
  EXPECT_FALSE(shape.Learn(usage, ReadChatChunk(usage)));
  EXPECT_TRUE(shape.empty());
  const std::string escaped = Content(R"(caf\u00e9)");
  EXPECT_FALSE(shape.Learn(escaped, ReadChatChunk(escaped)));
  EXPECT_EQ(shape.Match(Content("Hello")), std::nullopt);
  const std::string broken = R"({"choices":{"index":0}})";  // choices not an array
  EXPECT_FALSE(shape.Learn(broken, ReadChatChunk(broken)));
  const std::string long_chunk = Content(std::string(ChatChunkShape::kMaxBytes, 'a'));
  EXPECT_FALSE(shape.Learn(long_chunk, ReadChatChunk(long_chunk)));
  std::string many = R"({"choices":[],"x":[)";
  for (size_t i = 0; i <= ChatChunkShape::kMaxSlots; ++i) many += i ? ",\"s\"" : "\"s\"";
  many += "]}";
  EXPECT_FALSE(shape.Learn(many, ReadChatChunk(many)));
  // A learned shape is replaced by the next Learn, or cleared by one that fails.
  ASSERT_TRUE(shape.Learn(Content("a"), ReadChatChunk(Content("a"))));
  EXPECT_EQ(shape.Match(Content("bc")), 2u);
  EXPECT_FALSE(shape.Learn(usage, ReadChatChunk(usage)));
  EXPECT_EQ(shape.Match(Content("bc")), std::nullopt);
}

// What the differential tests insert: bytes that matter to a string body (quotes, escapes,
// control bytes, UTF-8 whole and broken) and to the structure, and `extra`.
std::vector<std::string> Pieces(std::initializer_list<std::string> extra) {
  std::vector<std::string> out = {
      "a", " ",  "\"", "\\",       "\\n",  "\\u0041",          ":",   ",", "{",
      "}", "\t", "\n", "\xC3\xA9", "\xC3", "\xF0\x9F\x98\x80", "null"};
  out.insert(out.end(), extra);
  return out;
}

// The bodies of the string values in `chunk` (a string after a ':'), as [begin, end) offsets.
std::vector<std::pair<size_t, size_t>> ValueBodies(std::string_view chunk) {
  std::vector<std::pair<size_t, size_t>> out;
  char last = 0;  // the last byte outside strings that is not a space
  for (size_t i = 0; i < chunk.size(); ++i) {
    if (chunk[i] != '"') {
      if (chunk[i] != ' ') last = chunk[i];
      continue;
    }
    size_t end = i + 1;
    while (end < chunk.size() && chunk[end] != '"') end += chunk[end] == '\\' ? 2 : 1;
    if (last == ':') out.emplace_back(i + 1, end);
    last = '"';
    i = end;
  }
  return out;
}

// The [begin, end) of each number token outside strings.
std::vector<std::pair<size_t, size_t>> NumberTokens(std::string_view chunk) {
  std::vector<std::pair<size_t, size_t>> out;
  for (size_t i = 0; i < chunk.size(); ++i) {
    if (chunk[i] == '"') {
      for (++i; i < chunk.size() && chunk[i] != '"';) i += chunk[i] == '\\' ? 2 : 1;
    } else if (chunk[i] == '-' || (chunk[i] >= '0' && chunk[i] <= '9')) {
      size_t end = i;
      while (end < chunk.size() &&
             std::string_view("0123456789-+.eE").find(chunk[end]) != std::string_view::npos) {
        ++end;
      }
      out.emplace_back(i, end);
      i = end - 1;
    }
  }
  return out;
}

// Differential: chunks mutated from realistic seeds, each matched against a shape learned from
// its seed; every chunk Match decides must be one ReadChatChunk reads as valid, without usage,
// with the same count. Half the chunks are the Mutator's (edits anywhere), half have the body of
// one or two string values replaced by a few pieces (what a stream's chunks look like).
TEST(ChatChunkShape, AgreesWithTheParserOnMutatedChunks) {
  const std::vector<std::string> seeds = {
      Content("Hello"),
      Content(R"(line\nbreak \"q\")"),
      Content("\xE2\x98\x83 snow"),
      R"({"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":)"
      R"({"role":"assistant","content":""},"finish_reason":null}]})",
      R"({"choices":[{"index":0,"delta":{"content":"a"}}],"obfuscation":"Qz"})",
      R"({"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":)"
      R"({"arguments":"{\"city\""}}]}}]})",
      R"({"choices":[{"delta":{"reasoning_content":"hm","content":"x"}},)"
      R"({"delta":{"content":"y"}}],"usage":null})",
      R"( { "choices" : [ { "delta" : { "content" : "spaced" } } ] } )",
      R"({"choices":[{"delta":{"content":"dup","content":"second"}}]})",
  };
  std::vector<ChatChunkShape> shapes(seeds.size());
  for (size_t i = 0; i < seeds.size(); ++i) {
    ASSERT_TRUE(shapes[i].Learn(seeds[i], ReadChatChunk(seeds[i]))) << seeds[i];
  }
  const std::vector<std::string> pieces = Pieces({"\\x", "[", "]", "0", "\xE2\x98", "\xED\xA0\x80",
                                                  "\x7F", "\"content\":\"z\"", "\"usage\":{}"});
  size_t matched = 0, changed = 0;
  for (size_t s = 0; s < seeds.size(); ++s) {
    keygate::testing::Mutator mutator(std::span(&seeds[s], 1), pieces, 1000 + s);
    const auto bodies = ValueBodies(seeds[s]);
    ASSERT_FALSE(bodies.empty()) << seeds[s];
    for (int n = 0; n < 8000; ++n) {
      std::string chunk = mutator.Next();
      if (n % 2 == 1) {
        chunk = seeds[s];
        auto random_body = [&] {
          std::string body;
          for (size_t p = mutator.Pick(5); p > 0; --p) body += pieces[mutator.Pick(pieces.size())];
          return body;
        };
        // One string value's body, and sometimes an earlier one's (offsets before it stay right).
        const size_t k = mutator.Pick(bodies.size());
        chunk.replace(bodies[k].first, bodies[k].second - bodies[k].first, random_body());
        if (k > 0 && mutator.Pick(2) == 0) {
          const size_t j = mutator.Pick(k);
          chunk.replace(bodies[j].first, bodies[j].second - bodies[j].first, random_body());
        }
      }
      std::optional<size_t> fast = shapes[s].Match(chunk);
      if (!fast) continue;
      ++matched;
      changed += chunk != seeds[s];
      ChatChunk read = ReadChatChunk(chunk);
      ASSERT_TRUE(read.valid) << chunk;
      ASSERT_FALSE(read.has_usage) << chunk;
      ASSERT_EQ(*fast, read.output_chars) << chunk;
    }
  }
  // Not vacuous: a good share of the mutations land inside string values and are decided.
  EXPECT_GT(matched, 12000u);
  EXPECT_GT(changed, 11500u);
}

TEST(ChatChunkShape, OnlyTheCountedStringMayDifferWhenOthersAreRead) {
  const std::string delta =
      R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}})";
  ChatChunk read;
  read.valid = true;
  read.output_chars = 2;
  read.AddCounted(delta.find("Hi"));
  ChatChunkShape shape;
  ASSERT_TRUE(shape.Learn(delta, read, {.strings = false}));
  std::string other = delta;
  other.replace(other.find("Hi"), 2, "there");
  EXPECT_EQ(shape.Match(other), 5u);
  std::string thinking = delta;
  thinking.replace(thinking.find("text_delta"), 10, "thinking_xx");
  EXPECT_EQ(shape.Match(thinking), std::nullopt);
}

// A Responses delta: integers may differ, strings too but the "type" the reader compares.
TEST(ChatChunkShape, IntegersMayDifferWhenAllowedAndOnlyWellFormedOnes) {
  auto delta = [](std::string_view seq, std::string_view type = "response.output_text.delta",
                  std::string_view text = "Hi") {
    return R"({"type":")" + std::string(type) + R"(","sequence_number":)" + std::string(seq) +
           R"(,"output_index":0,"delta":")" + std::string(text) + R"(","obfuscation":"Qz"})";
  };
  const std::string seed = delta("4");
  ChatChunk read;
  read.valid = true;
  read.output_chars = 2;
  read.AddCounted(seed.find("Hi"));
  read.fixed = static_cast<uint32_t>(seed.find("response."));
  ChatChunkShape shape;
  ASSERT_TRUE(shape.Learn(seed, read, {.strings = true, .integers = true}));
  EXPECT_EQ(shape.Match(delta("5")), 2u);
  EXPECT_EQ(shape.Match(delta("123456789012345678", "response.output_text.delta", "abc")), 3u);
  EXPECT_EQ(shape.Match(delta("-0")), 2u);
  std::string other_index = delta("6");
  other_index.replace(other_index.find("\"output_index\":0"), 16, "\"output_index\":17");
  EXPECT_EQ(shape.Match(other_index), 2u);
  std::string padded = delta("7");
  padded.replace(padded.find("Qz"), 2, "a longer pad");
  EXPECT_EQ(shape.Match(padded), 2u);
  // Left to the parser: what is no integer of at most 18 digits, and another type.
  for (std::string_view seq :
       {"1234567890123456789", "01", "-", "1.5", "1e3", "2E1", "-x", "", "true", "\"5\""}) {
    EXPECT_EQ(shape.Match(delta(seq)), std::nullopt) << seq;
  }
  EXPECT_EQ(shape.Match(delta("8", "response.refusal.delta")), std::nullopt);
  // Without `integers`, an integer is compared byte for byte.
  ASSERT_TRUE(shape.Learn(seed, read, {.strings = true}));
  EXPECT_EQ(shape.Match(delta("4", "response.output_text.delta", "abc")), 3u);
  EXPECT_EQ(shape.Match(delta("5")), std::nullopt);
}

// What a usage filter makes of SSE events whose data are `data`, one read each.
struct Filtered {
  std::string out;
  size_t chars = 0, events = 0, matches = 0;
  bool done = false;
  int64_t input_tokens = 0, output_tokens = 0;
};
Filtered Filter(config::Format format, std::initializer_list<std::string_view> data) {
  SseUsageFilter filter(format, /*drop_usage_chunk=*/false);
  Filtered r;
  for (std::string_view d : data) {
    std::string in = "data: " + std::string(d) + "\n\n";
    filter.FeedOwned(std::move(in), r.out);
  }
  filter.Finish(r.out);
  r.chars = filter.output_chars();
  r.events = filter.events();
  r.matches = filter.shape_matches();
  r.done = filter.saw_done();
  r.input_tokens = filter.usage().input_tokens;
  r.output_tokens = filter.usage().output_tokens;
  return r;
}

TEST(ChatChunkShape, TheFilterCountsAnthropicDeltasByTheirShape) {
  auto text = [](std::string_view t) {
    return R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":")" +
           std::string(t) + R"("}})";
  };
  const Filtered r = Filter(
      config::Format::kAnthropicMessages,
      {R"({"type":"message_start","message":{"usage":{"input_tokens":7,"output_tokens":1}}})",
       text("Hello"), text(R"(, w\u00f6rld)"), text(R"( and \"more\"\n)"), text("!"), text("?"),
       R"({"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"hm"}})",
       R"({"type":"message_delta","usage":{"output_tokens":9}})", R"({"type":"message_stop"})"});
  EXPECT_EQ(r.chars, 5u + 7u + 12u + 1u + 1u + 2u);
  // "Hello" is learned; the \u escape is parsed and cannot be learned (the shape is dropped); the
  // next is learned, and "!" and "?" match it; the thinking delta has another "type".
  EXPECT_EQ(r.matches, 2u);
  EXPECT_EQ(r.input_tokens, 7);
  EXPECT_EQ(r.output_tokens, 9);
  EXPECT_TRUE(r.done);
}

TEST(ChatChunkShape, TheFilterCountsResponsesDeltasByTheirShape) {
  int seq = 0;
  auto event = [&](std::string_view type, std::string_view delta, std::string_view pad = "Qz") {
    return R"({"type":")" + std::string(type) + R"(","sequence_number":)" + std::to_string(seq++) +
           R"(,"item_id":"msg_1","output_index":0,"content_index":0,)" + R"("delta":")" +
           std::string(delta) + R"(","logprobs":[],"obfuscation":")" + std::string(pad) + R"("})";
  };
  const std::string created = R"({"type":"response.created","sequence_number":0})";
  const std::string e1 = event("response.output_text.delta", "Hello");
  const std::string e2 = event("response.output_text.delta", R"(, w\u00f6rld)", "kP8x");
  const std::string e3 = event("response.output_text.delta", "!", "a9Jd2");
  const std::string e4 = event("response.output_text.delta", "?");
  const std::string e5 = event("response.refusal.delta", "no");
  const std::string e6 = event("response.reasoning_summary_text.delta", "think");
  const std::string e7 = event("response.reasoning_summary_text.delta", "ing");
  const std::string done =
      R"({"type":"response.completed","sequence_number":99,"response":{"usage":)"
      R"({"input_tokens":7,"output_tokens":9,"total_tokens":16}}})";
  const Filtered r =
      Filter(config::Format::kOpenAIResponses, {created, e1, e2, e3, e4, e5, e6, e7, done});
  // Counted: the text deltas only (not the refusal, nor the reasoning summary).
  EXPECT_EQ(r.chars, 5u + 7u + 1u + 1u);
  // "Hello" is learned; the \u escape is parsed, its shape dropped; the next is learned, "?"
  // matches it; the refusal has another type, is parsed and learned; the first reasoning delta
  // is parsed (another type) and learned, the second matches it.
  EXPECT_EQ(r.matches, 2u);
  EXPECT_EQ(r.input_tokens, 7);
  EXPECT_EQ(r.output_tokens, 9);
  EXPECT_TRUE(r.done);
}

// Differential through the filter, for the three formats that learn shapes: an event after a
// learned one gives what it gives read alone by a fresh filter (which parses it).
TEST(ChatChunkShape, TheFilterCountsAMatchedEventAsAParsedOne) {
  const std::vector<std::pair<config::Format, std::string>> seeds = {
      {config::Format::kAnthropicMessages,
       R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}})"},
      {config::Format::kAnthropicMessages,
       R"({"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta",)"
       R"("partial_json":"{\"city\": \"Pa"}})"},
      {config::Format::kAnthropicMessages,
       R"({"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta",)"
       R"("thinking":"so","signature":"x"}})"},
      {config::Format::kAnthropicMessages,
       R"({"type":"content_block_delta","delta":{"type":"text_delta","text":"ab","text":"cd"}})"},
      {config::Format::kAnthropicMessages,
       R"( { "type" : "content_block_delta" , "delta" : { "type" : "text_delta" , "text" : "x" } } )"},
      {config::Format::kOpenAIChat, Content("Hello")},
      {config::Format::kOpenAIChat,
       R"({"choices":[{"index":0,"delta":{"content":"a"}}],"obfuscation":"Qz"})"},
      {config::Format::kOpenAIResponses,
       R"({"type":"response.output_text.delta","sequence_number":4,"item_id":"msg_1",)"
       R"("output_index":0,"content_index":0,"delta":"Hi","logprobs":[],"obfuscation":"Qz"})"},
      {config::Format::kOpenAIResponses,
       R"({"type":"response.function_call_arguments.delta","sequence_number":12,)"
       R"("item_id":"fc_1","output_index":1,"delta":"{\"city\":","type":"x"})"},
      {config::Format::kOpenAIResponses,
       R"({"type":"response.reasoning_summary_text.delta","sequence_number":-3,)"
       R"("output_index":0,"summary_index":0,"delta":"hm"})"},
      {config::Format::kOpenAIResponses,
       R"( { "type" : "response.output_text.delta" , "sequence_number" : 1 , "delta" : "x" ,)"
       R"( "n" : [ 1 , 2.5 , 300 ] } )"},
  };
  const std::vector<std::string> pieces =
      Pieces({"text", "delta", "message_stop", "response.completed", "7", "-", "0", ".5", "e3",
              "123456789012345678", "9"});
  const std::vector<std::string> numbers = {"0",
                                            "-0",
                                            "5",
                                            "42",
                                            "-17",
                                            "01",
                                            "-",
                                            "1.5",
                                            "1e3",
                                            "123456789012345678",
                                            "1234567890123456789",
                                            "",
                                            "x",
                                            "null",
                                            "\"3\""};
  size_t matched = 0;
  for (size_t s = 0; s < seeds.size(); ++s) {
    const auto& [format, seed] = seeds[s];
    keygate::testing::Mutator mutator(std::span(&seed, 1), pieces, 2000 + s);
    const auto bodies = ValueBodies(seed);
    ASSERT_FALSE(bodies.empty()) << seed;
    const auto integers = NumberTokens(seed);
    const Filtered alone_seed = Filter(format, {seed});
    for (int n = 0; n < 3000; ++n) {
      std::string event = mutator.Next();
      if (n % 2 == 1) {  // a string value's body replaced
        event = seed;
        const auto [begin, end] = bodies[mutator.Pick(bodies.size())];
        std::string body;
        for (size_t p = mutator.Pick(4); p > 0; --p) body += pieces[mutator.Pick(pieces.size())];
        event.replace(begin, end - begin, body);
      }
      if (n % 4 == 1 && !integers.empty()) {  // and a number replaced
        const auto [begin, end] = integers[mutator.Pick(integers.size())];
        if (end <= event.size()) {
          event.replace(begin, end - begin, numbers[mutator.Pick(numbers.size())]);
        }
      }
      const Filtered after = Filter(format, {seed, event});
      const Filtered alone = Filter(format, {event});
      matched += after.matches;
      ASSERT_EQ(after.chars, alone_seed.chars + alone.chars) << event;
      ASSERT_EQ(after.events, alone_seed.events + alone.events) << event;
      ASSERT_EQ(after.out, alone_seed.out + alone.out) << event;
      ASSERT_EQ(after.done, alone.done) << event;
      ASSERT_EQ(after.input_tokens, alone.input_tokens) << event;
      ASSERT_EQ(after.output_tokens, alone.output_tokens) << event;
    }
  }
  EXPECT_GT(matched, 2500u);  // not vacuous: many events are decided by the shape
}

}  // namespace
}  // namespace keygate::provider::internal
