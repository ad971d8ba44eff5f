// SseUsageFilter on recorded streams: what it reads, what it drops (only keygate's own usage
// chunk), and that neither depends on how the bytes were chunked.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <utility>
#include <string>
#include <vector>

#include "provider/provider.h"

namespace keygate::provider {
namespace {

using config::Format;

std::string Join(const std::vector<std::string>& events, std::string_view sep) {
  std::string s;
  for (const std::string& e : events) {
    std::string ev = e;
    if (sep != "\n\n") {  // CRLF streams: every line end is CRLF
      std::string crlf;
      for (char c : ev) {
        if (c == '\n')
          crlf += "\r\n";
        else
          crlf += c;
      }
      ev = crlf;
    }
    s += ev;
    s += sep;
  }
  return s;
}

// OpenAI chat stream with stream_options.include_usage, as api.openai.com sends it.
const std::vector<std::string> kChatEvents = {
    R"(data: {"id":"chatcmpl-AX1","object":"chat.completion.chunk","created":1732000000,"model":"gpt-4o-mini-2024-07-18","system_fingerprint":"fp_0ba0d124f1","choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null})",
    R"(data: {"id":"chatcmpl-AX1","object":"chat.completion.chunk","created":1732000000,"model":"gpt-4o-mini-2024-07-18","system_fingerprint":"fp_0ba0d124f1","choices":[{"index":0,"delta":{"content":"Hello"},"logprobs":null,"finish_reason":null}],"usage":null})",
    R"(data: {"id":"chatcmpl-AX1","object":"chat.completion.chunk","created":1732000000,"model":"gpt-4o-mini-2024-07-18","system_fingerprint":"fp_0ba0d124f1","choices":[{"index":0,"delta":{"content":"! Caf\u00e9 \u2603?"},"logprobs":null,"finish_reason":null}],"usage":null})",
    R"(data: {"id":"chatcmpl-AX1","object":"chat.completion.chunk","created":1732000000,"model":"gpt-4o-mini-2024-07-18","system_fingerprint":"fp_0ba0d124f1","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null})",
    R"(data: {"id":"chatcmpl-AX1","object":"chat.completion.chunk","created":1732000000,"model":"gpt-4o-mini-2024-07-18","system_fingerprint":"fp_0ba0d124f1","choices":[],"usage":{"prompt_tokens":19,"completion_tokens":10,"total_tokens":29,"prompt_tokens_details":{"cached_tokens":6,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}})",
    "data: [DONE]",
};
constexpr size_t kChatUsageEvent = 4;
constexpr size_t kChatOutputChars = 5 + 9;  // "Hello" + "! Café ☃?" (code points)

const std::vector<std::string> kAnthropicEvents = {
    "event: message_start\n"
    R"(data: {"type":"message_start","message":{"id":"msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY","type":"message","role":"assistant","content":[],"model":"claude-sonnet-4-5-20250929","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,"cache_creation_input_tokens":40,"cache_read_input_tokens":1000,"output_tokens":1}}})",
    "event: content_block_start\n"
    R"(data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}})",
    "event: ping\n"
    R"(data: {"type": "ping"})",
    "event: content_block_delta\n"
    R"(data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}})",
    "event: content_block_delta\n"
    R"(data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"! \u2603"}})",
    "event: content_block_stop\n"
    R"(data: {"type":"content_block_stop","index":0})",
    "event: content_block_start\n"
    R"(data: {"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_01T1x1fJ34qAmk2tNTrN7Up6","name":"get_weather","input":{}}})",
    "event: content_block_delta\n"
    R"(data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"city\": \"Paris\"}"}})",
    "event: content_block_stop\n"
    R"(data: {"type":"content_block_stop","index":1})",
    "event: message_delta\n"
    R"(data: {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":89}})",
    "event: message_stop\n"
    R"(data: {"type":"message_stop"})",
};

const std::vector<std::string> kResponsesEvents = {
    "event: response.created\n"
    R"(data: {"type":"response.created","sequence_number":0,"response":{"id":"resp_67c9fdcecf","object":"response","created_at":1741290958,"status":"in_progress","model":"gpt-4.1-2025-04-14","output":[],"usage":null}})",
    "event: response.output_text.delta\n"
    R"(data: {"type":"response.output_text.delta","sequence_number":4,"item_id":"msg_67c9fdcf37","output_index":0,"content_index":0,"delta":"Hi"})",
    "event: response.output_text.delta\n"
    R"(data: {"type":"response.output_text.delta","sequence_number":5,"item_id":"msg_67c9fdcf37","output_index":0,"content_index":0,"delta":" there!"})",
    "event: response.output_text.done\n"
    R"(data: {"type":"response.output_text.done","sequence_number":6,"item_id":"msg_67c9fdcf37","output_index":0,"content_index":0,"text":"Hi there!"})",
    "event: response.completed\n"
    R"(data: {"type":"response.completed","sequence_number":9,"response":{"id":"resp_67c9fdcecf","object":"response","status":"completed","usage":{"input_tokens":37,"input_tokens_details":{"cached_tokens":5},"output_tokens":11,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":48}}})",
};

struct Result {
  std::string out;
  Usage usage;
  bool saw_done = false;
  size_t events = 0;
  size_t output_chars = 0;
};

void ExpectSame(const Result& a, const Result& b, const std::string& where) {
  EXPECT_EQ(a.out, b.out) << where;
  EXPECT_EQ(a.usage.present, b.usage.present) << where;
  EXPECT_EQ(a.usage.input_tokens, b.usage.input_tokens) << where;
  EXPECT_EQ(a.usage.output_tokens, b.usage.output_tokens) << where;
  EXPECT_EQ(a.usage.cache_read_tokens, b.usage.cache_read_tokens) << where;
  EXPECT_EQ(a.usage.cache_write_tokens, b.usage.cache_write_tokens) << where;
  EXPECT_EQ(a.saw_done, b.saw_done) << where;
  EXPECT_EQ(a.events, b.events) << where;
  EXPECT_EQ(a.output_chars, b.output_chars) << where;
}

// `by_buffer`: each chunk goes in through FeedOwned (the filter may take the buffer) into an
// empty output, as the gateway's relay feeds it (the filter may hand a buffer over whole);
// otherwise as a view.
Result RunChunks(Format f, bool drop, const std::vector<std::string_view>& chunks,
                 size_t max_event = SseUsageFilter::kDefaultMaxEventBytes, bool by_buffer = false) {
  SseUsageFilter filter(f, drop, max_event);
  Result r;
  std::string buffer, out;
  for (std::string_view c : chunks) {
    if (by_buffer) {
      buffer.assign(c);
      out.clear();
      filter.FeedOwned(std::move(buffer), out);
      r.out += out;
      buffer.clear();
    } else {
      filter.Feed(c, r.out);
    }
  }
  filter.Finish(r.out);
  r.usage = filter.usage();
  r.saw_done = filter.saw_done();
  r.events = filter.events();
  r.output_chars = filter.output_chars();
  return r;
}

Result RunWhole(Format f, bool drop, std::string_view s,
                size_t max_event = SseUsageFilter::kDefaultMaxEventBytes) {
  return RunChunks(f, drop, {s}, max_event);
}

// Every split point, byte-at-a-time, and random chunkings all give what feeding it whole gives.
void ExpectChunkingInvariant(Format f, bool drop, std::string_view s,
                             size_t max_event = SseUsageFilter::kDefaultMaxEventBytes) {
  const Result whole = RunWhole(f, drop, s, max_event);
  for (size_t i = 0; i <= s.size(); ++i) {
    ExpectSame(RunChunks(f, drop, {s.substr(0, i), s.substr(i)}, max_event), whole,
               "split at " + std::to_string(i));
    ExpectSame(RunChunks(f, drop, {s.substr(0, i), s.substr(i)}, max_event, /*by_buffer=*/true),
               whole, "split at " + std::to_string(i) + ", by buffer");
    if (testing::Test::HasFailure()) return;
  }
  std::vector<std::string_view> bytes;
  for (size_t i = 0; i < s.size(); ++i) bytes.push_back(s.substr(i, 1));
  ExpectSame(RunChunks(f, drop, bytes, max_event), whole, "byte at a time");
  ExpectSame(RunChunks(f, drop, bytes, max_event, /*by_buffer=*/true), whole,
             "byte at a time, by buffer");

  std::mt19937 rng(20240611);
  for (int iter = 0; iter < 300 && !testing::Test::HasFailure(); ++iter) {
    std::vector<std::string_view> chunks;
    std::uniform_int_distribution<size_t> len(0, iter % 2 ? 8 : 200);
    for (size_t i = 0; i < s.size();) {
      size_t n = std::min(len(rng), s.size() - i);
      chunks.push_back(s.substr(i, n));  // empty chunks included: Feed("") must be harmless
      i += n;
    }
    ExpectSame(RunChunks(f, drop, chunks, max_event), whole,
               "random chunking " + std::to_string(iter));
  }
}

// ---------------------------------------------------------------- OpenAI chat

// ---------------------------------------------------------------- SseSplitter

// Runs `input` through a splitter cut at `cuts`; returns each piece tagged: "E:" a complete
// event, "O:" part of an oversized event ("O$:" its last part), and "R:" the rest at the end.
std::vector<std::string> Split(std::string_view input, const std::vector<size_t>& cuts,
                               size_t max_event_bytes, size_t* max_held = nullptr,
                               bool by_buffer = false) {
  SseSplitter splitter(max_event_bytes);
  std::vector<std::string> pieces;
  std::string oversized;
  auto drain = [&] {
    std::string_view piece;
    bool ended = false;
    for (;;) {
      SseSplitter::Piece kind = splitter.Next(piece, ended);
      if (kind == SseSplitter::Piece::kNone) break;
      if (kind == SseSplitter::Piece::kEvent) {
        pieces.push_back("E:" + std::string(piece));
      } else {
        oversized += piece;  // joined, so the pieces compare whatever the chunking
        if (ended) pieces.push_back("O:" + std::exchange(oversized, ""));
      }
    }
    if (max_held != nullptr) *max_held = std::max(*max_held, splitter.rest().size());
  };
  auto append = [&](std::string_view part) {
    if (by_buffer) {
      splitter.AppendOwned(std::string(part));
    } else {
      splitter.Append(part);
    }
  };
  size_t prev = 0;
  for (size_t cut : cuts) {
    append(input.substr(prev, cut - prev));
    drain();
    prev = cut;
  }
  append(input.substr(prev));
  drain();
  if (splitter.in_oversized()) pieces.push_back("O~:" + oversized);
  if (!splitter.rest().empty()) pieces.push_back("R:" + std::string(splitter.rest()));
  return pieces;
}

TEST(SseSplitter, LfCrlfAndMixedBoundaries) {
  const std::string input = "data: a\n\ndata: b\r\n\r\ndata: c\r\n\ndata: d\n\r\nevent: x\ndata: e";
  EXPECT_EQ(Split(input, {}, 1024),
            (std::vector<std::string>{"E:data: a\n\n", "E:data: b\r\n\r\n", "E:data: c\r\n\n",
                                      "E:data: d\n\r\n", "R:event: x\ndata: e"}));
  // A lone CR is no line end: "a\r\rb" stays one line.
  EXPECT_EQ(Split("data: a\r\rb\n\n", {}, 1024),
            (std::vector<std::string>{"E:data: a\r\rb\n\n"}));
}

TEST(SseSplitter, EverySplitPointAndRandomSplitsGiveTheSameEvents) {
  const std::string big(300, 'x');
  const std::string input = "data: a\n\ndata: " + big + "\r\n\r\n: c\r\n\ndata: " + big + big +
                            "\n\ndata: d\n\r\ndata: " + big + big + "tail";
  const auto whole = Split(input, {}, 400);
  ASSERT_EQ(whole.size(), 6u);
  EXPECT_EQ(whole[3].substr(0, 2), "O:") << "an event over the cap is handed on in pieces";
  EXPECT_EQ(whole[5].substr(0, 3), "O~:") << "an unterminated one too";
  for (size_t i = 0; i <= input.size(); ++i) {
    size_t held = 0;
    ASSERT_EQ(Split(input, {i}, 400, &held), whole) << "split at " << i;
    EXPECT_LE(held, 400u);
    ASSERT_EQ(Split(input, {i}, 400, nullptr, /*by_buffer=*/true), whole)
        << "split at " << i << ", by buffer";
  }
  std::mt19937 rng(7);
  for (int round = 0; round < 300; ++round) {
    std::vector<size_t> cuts;
    for (size_t pos = 1 + rng() % 50; pos < input.size(); pos += 1 + rng() % 50) cuts.push_back(pos);
    ASSERT_EQ(Split(input, cuts, 400), whole) << "round " << round;
    ASSERT_EQ(Split(input, cuts, 400, nullptr, /*by_buffer=*/true), whole)
        << "round " << round << ", by buffer";
  }
}

// A read of whole events, none dropped, into an empty output: the buffer itself is handed on.
TEST(SseUsageFilter, WholeEventsPassOnWithoutACopy) {
  SseUsageFilter filter(Format::kOpenAIChat, /*drop_usage_chunk=*/true);
  std::string in = kChatEvents[0] + "\n\n" + kChatEvents[1] + "\n\n";
  const std::string copy = in;
  const char* bytes = in.data();
  std::string out;
  filter.FeedOwned(std::move(in), out);
  EXPECT_EQ(out, copy);
  EXPECT_EQ(out.data(), bytes);
  // Not when part of an event stays behind, nor into an output that holds something.
  in = copy + "data: {\"cho";
  out.clear();
  filter.FeedOwned(std::move(in), out);
  EXPECT_EQ(out, copy);
  in = "ices\":[]}\n\n";
  out = "x";
  filter.FeedOwned(std::move(in), out);
  EXPECT_EQ(out, "xdata: {\"choices\":[]}\n\n");
}

// Events that start with "data:" read as they do behind a comment line, which keeps them off the
// one-data-line shortcut: random lines of a small alphabet, each way.
TEST(SseSplitter, EventDataReadsOneDataLineAsTheGeneralLoopDoes) {
  const std::vector<std::string_view> pieces = {"data", ":", " ", "\r", "\n", "x", "id", "\r\n"};
  std::mt19937 rng(11);
  size_t shortcut = 0;
  for (int round = 0; round < 20000; ++round) {
    std::string event = "data:";
    for (size_t n = rng() % 6; n > 0; --n) event += pieces[rng() % pieces.size()];
    event += rng() % 2 ? "\n\n" : "\r\n\r\n";
    std::string storage, storage2;
    std::string_view data, data2;
    bool content = false, content2 = false;
    const bool has = SseEventData(event, storage, data, content);
    const std::string behind_comment = ": c\n" + event;
    const bool has2 = SseEventData(behind_comment, storage2, data2, content2);
    ASSERT_EQ(has, has2) << event;
    ASSERT_EQ(data, data2) << event;
    ASSERT_EQ(content, content2) << event;
    shortcut += event.find('\n') + 2 >= event.size() - 1;
  }
  EXPECT_GT(shortcut, 2000u);
}

TEST(SseSplitter, EventDataJoinsDataLinesAndSkipsComments) {
  std::string storage;
  std::string_view data;
  bool has_content = false;
  EXPECT_TRUE(SseEventData("event: x\r\n: note\ndata: a\ndata:b\nid: 1\n\n", storage, data,
                           has_content));
  EXPECT_EQ(data, "a\nb");
  EXPECT_TRUE(has_content);
  has_content = false;
  EXPECT_FALSE(SseEventData(": only a comment\n\n", storage, data, has_content));
  EXPECT_TRUE(has_content);
}

TEST(SseUsageFilter, OpenAIChatReadsUsageAndPassesEverything) {
  const std::string stream = Join(kChatEvents, "\n\n");
  Result r = RunWhole(Format::kOpenAIChat, false, stream);
  EXPECT_EQ(r.out, stream);
  EXPECT_TRUE(r.usage.present);
  EXPECT_EQ(r.usage.input_tokens, 19);
  EXPECT_EQ(r.usage.output_tokens, 10);
  EXPECT_EQ(r.usage.cache_read_tokens, 6);
  EXPECT_EQ(r.usage.cache_write_tokens, 0);
  EXPECT_TRUE(r.saw_done);
  EXPECT_EQ(r.events, kChatEvents.size());
  EXPECT_EQ(r.output_chars, kChatOutputChars);
}

TEST(SseUsageFilter, OpenAIChatDropsOnlyTheUsageChunk) {
  const std::string stream = Join(kChatEvents, "\n\n");
  std::vector<std::string> without = kChatEvents;
  without.erase(without.begin() + kChatUsageEvent);
  Result r = RunWhole(Format::kOpenAIChat, true, stream);
  EXPECT_EQ(r.out, Join(without, "\n\n"));
  EXPECT_EQ(r.usage.input_tokens, 19);
  EXPECT_EQ(r.usage.output_tokens, 10);
  EXPECT_TRUE(r.saw_done);
}

TEST(SseUsageFilter, OpenAIChatCrlfStream) {
  const std::string stream = Join(kChatEvents, "\r\n\r\n");
  std::vector<std::string> without = kChatEvents;
  without.erase(without.begin() + kChatUsageEvent);
  Result r = RunWhole(Format::kOpenAIChat, true, stream);
  EXPECT_EQ(r.out, Join(without, "\r\n\r\n"));
  EXPECT_EQ(r.usage.output_tokens, 10);
  EXPECT_EQ(r.output_chars, kChatOutputChars);
  EXPECT_TRUE(r.saw_done);
}

TEST(SseUsageFilter, MixedLineEndings) {
  // LF CRLF, CRLF LF, and an event made of several lines ended differently.
  const std::string stream =
      "data: {\"choices\":[{\"delta\":{\"content\":\"ab\"}}]}\n\r\n"
      "data: {\"choices\":[{\"delta\":{\"content\":\"c\"}}]}\r\n\n"
      "event: x\r\nid: 7\n"
      "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4}}\r\n\r\n"
      "data: [DONE]\n\n";
  Result r = RunWhole(Format::kOpenAIChat, true, stream);
  EXPECT_EQ(r.out,
            "data: {\"choices\":[{\"delta\":{\"content\":\"ab\"}}]}\n\r\n"
            "data: {\"choices\":[{\"delta\":{\"content\":\"c\"}}]}\r\n\n"
            "data: [DONE]\n\n");
  EXPECT_EQ(r.usage.input_tokens, 3);
  EXPECT_EQ(r.usage.output_tokens, 4);
  EXPECT_EQ(r.output_chars, 3u);
  EXPECT_EQ(r.events, 4u);
  ExpectChunkingInvariant(Format::kOpenAIChat, true, stream);
}

TEST(SseUsageFilter, OpenAIChatChunkingInvariant) {
  for (bool drop : {false, true}) {
    for (std::string_view sep : {"\n\n", "\r\n\r\n"}) {
      ExpectChunkingInvariant(Format::kOpenAIChat, drop, Join(kChatEvents, sep));
    }
  }
}

TEST(SseUsageFilter, KeepsChunksThatOnlyLookLikeTheUsageChunk) {
  const std::string stream =
      // choices empty but usage null: Azure's content-filter preamble.
      "data: "
      "{\"id\":\"\",\"choices\":[],\"prompt_filter_results\":[{\"prompt_index\":0}],\"usage\":null}"
      "\n\n"
      // usage on a chunk that still has a choice (some compatible servers): not keygate's chunk.
      "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],"
      "\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":2}}\n\n"
      // usage but no choices key at all.
      "data: {\"usage\":{\"prompt_tokens\":8,\"completion_tokens\":3}}\n\n"
      "data: [DONE]\n\n";
  Result r = RunWhole(Format::kOpenAIChat, true, stream);
  EXPECT_EQ(r.out, stream);
  EXPECT_EQ(r.usage.input_tokens, 8);  // the last usage seen
  EXPECT_EQ(r.usage.output_tokens, 3);
}

TEST(SseUsageFilter, WithoutDropTheUsageChunkReachesTheClient) {
  const std::string stream = Join(kChatEvents, "\n\n");
  EXPECT_EQ(RunWhole(Format::kOpenAIChat, false, stream).out, stream);
}

TEST(SseUsageFilter, MultiLineDataIsJoined) {
  const std::string stream =
      "data: {\"choices\":[],\n"
      "data: \"usage\":{\"prompt_tokens\":11,\"completion_tokens\":12}}\n\n"
      "data:[DONE]\n\n";
  Result r = RunWhole(Format::kOpenAIChat, true, stream);
  EXPECT_EQ(r.out, "data:[DONE]\n\n");
  EXPECT_EQ(r.usage.input_tokens, 11);
  EXPECT_EQ(r.usage.output_tokens, 12);
  EXPECT_TRUE(r.saw_done);
}

TEST(SseUsageFilter, ToolCallArgumentsAndReasoningCountAsOutput) {
  const std::string stream =
      "data: {\"choices\":[{\"index\":0,\"delta\":{\"reasoning_content\":\"think\"}}]}\n\n"
      "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_1\","
      "\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"a\\\":1}\"}}]}}]}"
      "\n\n";
  Result r = RunWhole(Format::kOpenAIChat, false, stream);
  EXPECT_EQ(r.output_chars, 5u + 7u);
  EXPECT_FALSE(r.usage.present);
  EXPECT_FALSE(r.saw_done);
}

// What the usage filter reads of an OpenAI chat chunk: decoded code points of the first of
// duplicate keys, several choices, and nothing from a chunk that is not one whole object or
// from a usage object that does not parse (all passed on untouched).
TEST(SseUsageFilter, OpenAIChatChunksAsTheScannerReadsThem) {
  const std::string stream =
      "data: {\"choices\":[{\"delta\":{\"content\":\"ab\",\"content\":\"cdefg\"}},"
      "{\"delta\":{\"content\":\"a\\u00e9\\n\"},\"delta\":{\"content\":\"xxxx\"}}]}\n\n"
      "data: {\"choices\":[{\"delta\":{\"content\":\"unclosed\"}}]\n\n"
      "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":}}\n\n"
      "data: {\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":5},\"choices\":[],"
      "\"usage\":{\"prompt_tokens\":40,\"completion_tokens\":50}}\n\n";
  Result r = RunWhole(Format::kOpenAIChat, /*drop=*/true, stream);
  EXPECT_EQ(r.output_chars, 2u + 3u);  // "ab", then "a", "é", "\n"
  EXPECT_TRUE(r.usage.present);
  EXPECT_EQ(r.usage.input_tokens, 4);
  EXPECT_EQ(r.usage.output_tokens, 5);
  // Only the last chunk is the usage-only chunk: the one with the broken usage stays.
  EXPECT_EQ(r.out, stream.substr(0, stream.rfind("data: ")));
}

// Chunks are read on demand and a chunk with a usage object again with the DOM: its output
// counts once; escaped keys are decoded; a value after the counted ones that is malformed makes
// the whole chunk count nothing when the reader reaches it (here: a broken delta in choice 2).
TEST(SseUsageFilter, OpenAIChatOnDemandReadingCountsEachChunkOnce) {
  const std::string stream =
      "data: {\"choices\":[{\"delta\":{\"cont\\u0065nt\":\"abc\"}}]}\n\n"
      "data: {\"choices\":[{\"delta\":{\"content\":\"xy\"}},{\"delta\":{\"content\":7,"
      "\"tool_calls\":[{\"function\":{\"arguments\":\"\\uZZZZ\"}}]}}]}\n\n"
      "data: {\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2},"
      "\"choices\":[{\"delta\":{\"content\":\"hello\"}}]}\n\n";
  Result r = RunWhole(Format::kOpenAIChat, /*drop=*/true, stream);
  EXPECT_EQ(r.output_chars, 3u + 5u);
  EXPECT_EQ(r.usage.output_tokens, 2);
  EXPECT_EQ(r.out, stream) << "a usage chunk with a choice is not the usage-only chunk";
}

TEST(SseUsageFilter, NonJsonAndCommentsPassUntouched) {
  const std::string stream =
      ": OPENROUTER PROCESSING\n\n"
      "data: not json at all\n\n"
      "data: {\"choices\":[], \"usage\": {broken\n\n"
      "event: ping\n\n"
      "retry: 3000\n\n"
      "data: [\"choices\",\"usage\"]\n\n";
  Result r = RunWhole(Format::kOpenAIChat, true, stream);
  EXPECT_EQ(r.out, stream);
  EXPECT_FALSE(r.usage.present);
  EXPECT_FALSE(r.saw_done);
  EXPECT_EQ(r.events, 6u);
}

TEST(SseUsageFilter, BlankLinesBetweenEventsPassThrough) {
  const std::string stream = "\n\ndata: [DONE]\n\n\n";
  Result r = RunWhole(Format::kOpenAIChat, true, stream);
  EXPECT_EQ(r.out, stream);
  EXPECT_TRUE(r.saw_done);
  EXPECT_EQ(r.events, 1u);
  ExpectChunkingInvariant(Format::kOpenAIChat, true, stream);
}

TEST(SseUsageFilter, HoldsAPartialEventUntilItsEnd) {
  SseUsageFilter filter(Format::kOpenAIChat, false);
  std::string out;
  filter.Feed("data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n", out);
  EXPECT_EQ(out, "");  // one LF: the event is not over yet
  filter.Feed("\ndata: [DO", out);
  EXPECT_EQ(out, "data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\n");
  EXPECT_FALSE(filter.saw_done());
  filter.Feed("NE]\n\n", out);
  EXPECT_TRUE(filter.saw_done());
  EXPECT_EQ(out, "data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\ndata: [DONE]\n\n");
}

TEST(SseUsageFilter, FinishFlushesATrailingPartialEvent) {
  SseUsageFilter filter(Format::kOpenAIChat, true);
  std::string out;
  filter.Feed("data: {\"choices\":[],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2}}\n",
              out);
  EXPECT_EQ(out, "");
  filter.Finish(out);
  // Read for usage, but never dropped: the stream ended without its blank line.
  EXPECT_EQ(out,
            "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2}}\n");
  EXPECT_EQ(filter.usage().output_tokens, 2);

  SseUsageFilter f2(Format::kOpenAIChat, false);
  std::string out2;
  f2.Feed("data: [DONE]", out2);
  f2.Finish(out2);
  EXPECT_EQ(out2, "data: [DONE]");
  EXPECT_TRUE(f2.saw_done());
}

TEST(SseUsageFilter, EmptyStream) {
  Result r = RunChunks(Format::kOpenAIChat, true, {});
  EXPECT_EQ(r.out, "");
  EXPECT_FALSE(r.usage.present);
  EXPECT_EQ(r.events, 0u);
}

// ---------------------------------------------------------------- Anthropic

TEST(SseUsageFilter, AnthropicStream) {
  const std::string stream = Join(kAnthropicEvents, "\n\n");
  Result r = RunWhole(Format::kAnthropicMessages, true, stream);
  EXPECT_EQ(r.out, stream);  // nothing is ever dropped from an Anthropic stream
  EXPECT_TRUE(r.usage.present);
  EXPECT_EQ(r.usage.input_tokens, 25 + 40 + 1000);
  EXPECT_EQ(r.usage.cache_read_tokens, 1000);
  EXPECT_EQ(r.usage.cache_write_tokens, 40);
  EXPECT_EQ(r.usage.output_tokens, 89);  // message_delta's cumulative count replaces the 1
  EXPECT_TRUE(r.saw_done);
  EXPECT_EQ(r.events, kAnthropicEvents.size());
  EXPECT_EQ(r.output_chars, 5u + 3u + 17u);  // "Hello", "! ☃", {"city": "Paris"}
}

TEST(SseUsageFilter, AnthropicUsageBeforeMessageStop) {
  // Cut after message_start: input known, output the provisional 1, not done.
  std::vector<std::string> first(kAnthropicEvents.begin(), kAnthropicEvents.begin() + 1);
  Result r = RunWhole(Format::kAnthropicMessages, false, Join(first, "\n\n"));
  EXPECT_TRUE(r.usage.present);
  EXPECT_EQ(r.usage.input_tokens, 1065);
  EXPECT_EQ(r.usage.output_tokens, 1);
  EXPECT_FALSE(r.saw_done);
}

TEST(SseUsageFilter, AnthropicMessageDeltaWithFullUsage) {
  // Newer API versions repeat input and cache counts in message_delta: they replace the earlier.
  const std::string stream =
      "event: message_start\n"
      "data: "
      "{\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":10,\"output_tokens\":1}"
      "}}\n\n"
      "event: message_delta\n"
      "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":"
      "{\"input_tokens\":12,\"cache_read_input_tokens\":100,\"output_tokens\":30}}\n\n"
      "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
  Result r = RunWhole(Format::kAnthropicMessages, false, stream);
  EXPECT_EQ(r.usage.input_tokens, 112);
  EXPECT_EQ(r.usage.cache_read_tokens, 100);
  EXPECT_EQ(r.usage.output_tokens, 30);
  EXPECT_TRUE(r.saw_done);
}

TEST(SseUsageFilter, AnthropicThinkingCountsAsOutput) {
  const std::string stream =
      "event: content_block_delta\n"
      "data: "
      "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\","
      "\"thinking\":\"hmm\"}}\n\n"
      "event: content_block_delta\n"
      "data: "
      "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"signature_delta\","
      "\"signature\":\"EqQBCgIYAhIM\"}}\n\n";
  EXPECT_EQ(RunWhole(Format::kAnthropicMessages, false, stream).output_chars, 3u);
}

TEST(SseUsageFilter, AnthropicChunkingInvariant) {
  for (std::string_view sep : {"\n\n", "\r\n\r\n"}) {
    ExpectChunkingInvariant(Format::kAnthropicMessages, true, Join(kAnthropicEvents, sep));
  }
}

TEST(SseUsageFilter, AnthropicFilterIgnoresOpenAIChunks) {
  Result a = RunWhole(Format::kAnthropicMessages, true, Join(kChatEvents, "\n\n"));
  EXPECT_FALSE(a.usage.present);
  EXPECT_EQ(a.output_chars, 0u);
  EXPECT_EQ(a.out, Join(kChatEvents, "\n\n"));  // drop applies to OpenAI chat streams only
  EXPECT_TRUE(a.saw_done);                      // "[DONE]" counts for every format
}

// ---------------------------------------------------------------- OpenAI Responses

TEST(SseUsageFilter, ResponsesStream) {
  const std::string stream = Join(kResponsesEvents, "\n\n");
  Result r = RunWhole(Format::kOpenAIResponses, true, stream);
  EXPECT_EQ(r.out, stream);
  EXPECT_TRUE(r.usage.present);
  EXPECT_EQ(r.usage.input_tokens, 37);
  EXPECT_EQ(r.usage.output_tokens, 11);
  EXPECT_EQ(r.usage.cache_read_tokens, 5);
  EXPECT_TRUE(r.saw_done);
  EXPECT_EQ(r.output_chars, 2u + 7u);  // the .done event's full text is not counted again
  ExpectChunkingInvariant(Format::kOpenAIResponses, true, stream);
}

TEST(SseUsageFilter, ResponsesIncomplete) {
  const std::string stream =
      "event: response.incomplete\n"
      "data: {\"type\":\"response.incomplete\",\"response\":{\"status\":\"incomplete\","
      "\"incomplete_details\":{\"reason\":\"max_output_tokens\"},\"usage\":{\"input_tokens\":5,"
      "\"output_tokens\":16}}}\n\n";
  Result r = RunWhole(Format::kOpenAIResponses, false, stream);
  EXPECT_TRUE(r.saw_done);
  EXPECT_EQ(r.usage.output_tokens, 16);
}

// ---------------------------------------------------------------- bounded memory

std::string BigEvent(size_t payload) {
  // Valid JSON carrying usage: if it were parsed, the usage would show.
  return "data: {\"choices\":[],\"pad\":\"" + std::string(payload, 'x') +
         "\",\"usage\":{\"prompt_tokens\":999,\"completion_tokens\":999}}\n\n";
}

TEST(SseUsageFilter, OversizedEventPassesThroughUnparsed) {
  const std::string small_usage =
      "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2}}\n\n";
  const std::string stream = "data: [DONE]\n\n" + BigEvent(200) + small_usage;
  Result r = RunWhole(Format::kOpenAIChat, true, stream, /*max_event=*/128);
  // The big event is neither parsed (its usage of 999 is not read) nor dropped; the small usage
  // chunk after it is read and dropped as usual.
  EXPECT_EQ(r.out, "data: [DONE]\n\n" + BigEvent(200));
  EXPECT_EQ(r.usage.input_tokens, 1);
  EXPECT_EQ(r.usage.output_tokens, 2);
  EXPECT_EQ(r.events, 3u);
  ExpectChunkingInvariant(Format::kOpenAIChat, true, stream, 128);
}

TEST(SseUsageFilter, OversizedEventStreamsInsteadOfBuffering) {
  const std::string big = BigEvent(10'000);
  SseUsageFilter filter(Format::kOpenAIChat, true, /*max_event_bytes=*/1024);
  std::string out;
  size_t fed = 0;
  for (; fed + 100 <= big.size() - 10; fed += 100) {
    filter.Feed(std::string_view(big).substr(fed, 100), out);
    // Never more than the limit plus one chunk held back.
    EXPECT_GE(out.size() + 1024 + 100, fed + 100);
  }
  filter.Feed(std::string_view(big).substr(fed), out);
  filter.Feed("data: [DONE]\n\n", out);
  filter.Finish(out);
  EXPECT_EQ(out, big + "data: [DONE]\n\n");
  EXPECT_FALSE(filter.usage().present);
  EXPECT_TRUE(filter.saw_done());
  EXPECT_EQ(filter.events(), 2u);
}

TEST(SseUsageFilter, OversizedTrailingEventAtFinish) {
  const std::string big = "data: " + std::string(500, 'y');  // never terminated
  Result r = RunChunks(Format::kOpenAIChat, false, {big.substr(0, 300), big.substr(300)}, 256);
  EXPECT_EQ(r.out, big);
  EXPECT_EQ(r.events, 1u);
}

TEST(SseUsageFilter, DefaultLimitIsEightMiB) {
  EXPECT_EQ(SseUsageFilter::kDefaultMaxEventBytes, size_t{8} << 20);
  // A 9 MiB event with the default limit, fed in 64 KiB chunks: streamed, not parsed.
  const std::string big = BigEvent(9 << 20);
  SseUsageFilter filter(Format::kOpenAIChat, true);
  std::string out;
  for (size_t i = 0; i < big.size(); i += 64 << 10) {
    filter.Feed(std::string_view(big).substr(i, 64 << 10), out);
    EXPECT_GE(out.size() + (8 << 20) + (64 << 10), std::min(big.size(), i + (64 << 10)));
  }
  filter.Finish(out);
  EXPECT_EQ(out.size(), big.size());
  EXPECT_TRUE(out == big);
  EXPECT_FALSE(filter.usage().present);
  // Just under the limit: parsed, and dropped as keygate's usage chunk.
  const std::string under = BigEvent((8 << 20) - 200);
  ASSERT_LE(under.size(), SseUsageFilter::kDefaultMaxEventBytes);
  Result r = RunWhole(Format::kOpenAIChat, true, under);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.usage.output_tokens, 999);
}

}  // namespace
}  // namespace keygate::provider

namespace keygate::provider {
namespace {

// Property: on any byte soup (made of SSE-ish pieces and real events), without dropping the
// output is the input, and with dropping the result does not depend on the chunking.
TEST(SseUsageFilter, RandomStreamsPassThroughAndAreChunkingInvariant) {
  const std::vector<std::string> pieces = {
      "\n",
      "\r\n",
      "\r",
      "data: ",
      "data:",
      ": c",
      "event: x",
      "{",
      "}",
      "[DONE]",
      "\n\n",
      "\r\n\r\n",
      kChatEvents[1],
      kChatEvents[kChatUsageEvent],
      kAnthropicEvents[0],
      kAnthropicEvents[9],
      "\xff\xfe",
      std::string(1, '\0'),
  };
  std::mt19937 rng(99);
  for (int iter = 0; iter < 400; ++iter) {
    std::string stream;
    const int n = 1 + static_cast<int>(rng() % 30);
    for (int k = 0; k < n; ++k) stream += pieces[rng() % pieces.size()];
    for (Format f : {Format::kOpenAIChat, Format::kAnthropicMessages, Format::kOpenAIResponses}) {
      EXPECT_EQ(RunWhole(f, false, stream).out, stream);
      EXPECT_EQ(RunWhole(f, false, stream, 64).out, stream);
    }
    // Chunking invariance with dropping, at a few random split patterns (every split point is
    // covered by the recorded-stream tests).
    const Result whole = RunWhole(Format::kOpenAIChat, true, stream, 300);
    for (int c = 0; c < 5; ++c) {
      std::vector<std::string_view> chunks;
      for (size_t i = 0; i < stream.size();) {
        size_t len = std::min<size_t>(1 + rng() % 40, stream.size() - i);
        chunks.push_back(std::string_view(stream).substr(i, len));
        i += len;
      }
      ExpectSame(RunChunks(Format::kOpenAIChat, true, chunks, 300), whole, "random stream");
    }
    if (testing::Test::HasFailure()) return;
  }
}

}  // namespace
}  // namespace keygate::provider
