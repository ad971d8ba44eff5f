// ParseResponseUsage on complete (non-streaming) bodies as the providers return them.
#include <gtest/gtest.h>

#include "provider/provider.h"

namespace keygate::provider {
namespace {

using config::Format;

void ExpectUsage(const Usage& u, int64_t in, int64_t out, int64_t cache_read, int64_t cache_write) {
  EXPECT_TRUE(u.present);
  EXPECT_EQ(u.input_tokens, in);
  EXPECT_EQ(u.output_tokens, out);
  EXPECT_EQ(u.cache_read_tokens, cache_read);
  EXPECT_EQ(u.cache_write_tokens, cache_write);
}

TEST(ParseResponseUsage, OpenAIChatWithCachedTokens) {
  constexpr std::string_view body = R"({
    "id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG", "object": "chat.completion",
    "created": 1741570283, "model": "gpt-4o-2024-08-06",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi there",
      "refusal": null, "annotations": []}, "logprobs": null, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 1117, "completion_tokens": 46, "total_tokens": 1163,
      "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 0},
      "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
        "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}},
    "service_tier": "default", "system_fingerprint": "fp_fc9f1d7035"})";
  // prompt_tokens already includes the cached ones: input stays 1117.
  ExpectUsage(ParseResponseUsage(Format::kOpenAIChat, body), 1117, 46, 1024, 0);
}

TEST(ParseResponseUsage, OpenAIChatWithoutDetails) {
  ExpectUsage(ParseResponseUsage(
                  Format::kOpenAIChat,
                  R"({"usage":{"prompt_tokens":9,"completion_tokens":12,"total_tokens":21}})"),
              9, 12, 0, 0);
  // prompt_tokens_details: null, as some compatible servers send.
  ExpectUsage(
      ParseResponseUsage(
          Format::kOpenAIChat,
          R"({"usage":{"prompt_tokens":9,"completion_tokens":1,"prompt_tokens_details":null}})"),
      9, 1, 0, 0);
}

TEST(ParseResponseUsage, OpenAIEmbeddings) {
  constexpr std::string_view body = R"({"object":"list","data":[{"object":"embedding","index":0,
    "embedding":[0.0023064255,-0.009327292]}],"model":"text-embedding-3-small",
    "usage":{"prompt_tokens":8,"total_tokens":8}})";
  ExpectUsage(ParseResponseUsage(Format::kOpenAIChat, body), 8, 0, 0, 0);
}

TEST(ParseResponseUsage, OpenAIResponses) {
  constexpr std::string_view body = R"({"id":"resp_67ccd2bed1ec8190","object":"response",
    "created_at":1741476542,"status":"completed","model":"gpt-4.1-2025-04-14",
    "output":[{"type":"message","id":"msg_1","status":"completed","role":"assistant",
      "content":[{"type":"output_text","text":"In a peaceful grove...","annotations":[]}]}],
    "usage":{"input_tokens":36,"input_tokens_details":{"cached_tokens":12},"output_tokens":87,
      "output_tokens_details":{"reasoning_tokens":0},"total_tokens":123}})";
  ExpectUsage(ParseResponseUsage(Format::kOpenAIResponses, body), 36, 87, 12, 0);
}

TEST(ParseResponseUsage, EitherOpenAINamingForEitherOpenAIFormat) {
  ExpectUsage(
      ParseResponseUsage(Format::kOpenAIChat, R"({"usage":{"input_tokens":5,"output_tokens":6}})"),
      5, 6, 0, 0);
  ExpectUsage(ParseResponseUsage(Format::kOpenAIResponses,
                                 R"({"usage":{"prompt_tokens":5,"completion_tokens":6}})"),
              5, 6, 0, 0);
}

TEST(ParseResponseUsage, AnthropicNormalizesInputToIncludeCache) {
  constexpr std::string_view body = R"({"id":"msg_013Zva2CMHLNnXjNJJKqJ2EF","type":"message",
    "role":"assistant","model":"claude-sonnet-4-5-20250929",
    "content":[{"type":"text","text":"Hi! My name is Claude."}],"stop_reason":"end_turn",
    "stop_sequence":null,"usage":{"input_tokens":21,"cache_creation_input_tokens":188086,
    "cache_read_input_tokens":3,"output_tokens":393,"service_tier":"standard"}})";
  // Anthropic reports uncached input apart: input_tokens = 21 + 3 + 188086.
  ExpectUsage(ParseResponseUsage(Format::kAnthropicMessages, body), 21 + 3 + 188086, 393, 3,
              188086);
}

TEST(ParseResponseUsage, AnthropicWithoutCacheFields) {
  ExpectUsage(
      ParseResponseUsage(Format::kAnthropicMessages,
                         R"({"type":"message","usage":{"input_tokens":10,"output_tokens":3}})"),
      10, 3, 0, 0);
  // null cache fields (older API versions) count as 0.
  ExpectUsage(
      ParseResponseUsage(
          Format::kAnthropicMessages,
          R"({"usage":{"input_tokens":10,"cache_creation_input_tokens":null,"output_tokens":3}})"),
      10, 3, 0, 0);
}

TEST(ParseResponseUsage, AbsentOrInvalidIsNotPresent) {
  const std::string_view bodies[] = {
      "",
      "not json",
      R"({"usage":)",
      R"({"id":"x"})",
      R"({"usage":null})",
      R"({"usage":[]})",
      R"({"usage":{}})",
      R"({"usage":{"prompt_tokens":"9","completion_tokens":"1"}})",
      R"({"usage":{"total_tokens":21}})",
      R"([{"usage":{"prompt_tokens":1}}])",
  };
  for (Format f : {Format::kOpenAIChat, Format::kOpenAIResponses, Format::kAnthropicMessages}) {
    for (std::string_view body : bodies) {
      Usage u = ParseResponseUsage(f, body);
      EXPECT_FALSE(u.present) << body;
      EXPECT_EQ(u.input_tokens, 0);
      EXPECT_EQ(u.output_tokens, 0);
    }
  }
  // Anthropic field names are not read for the OpenAI chat format's prompt tokens, and vice versa.
  EXPECT_FALSE(ParseResponseUsage(Format::kAnthropicMessages,
                                  R"({"usage":{"prompt_tokens":1,"completion_tokens":2}})")
                   .present);
}

// Only the top-level "usage" member counts, wherever it is among the members, and only in a body
// that is one whole object; with two, the first (as a DOM lookup answers).
TEST(ParseResponseUsage, TopLevelUsageOfAWholeObjectOnly) {
  const std::string content(100'000, 'x');
  ExpectUsage(ParseResponseUsage(Format::kOpenAIChat,
                                 R"({"choices":[{"message":{"content":")" + content +
                                     R"("}}],"usage":{"prompt_tokens":3,"completion_tokens":4}})"),
              3, 4, 0, 0);
  ExpectUsage(ParseResponseUsage(Format::kOpenAIChat,
                                 R"({"usage":{"prompt_tokens":1,"completion_tokens":2},)"
                                 R"("usage":{"prompt_tokens":8,"completion_tokens":9}})"),
              1, 2, 0, 0);
  for (std::string_view body : {
           // nested, not top-level
           R"({"choices":[{"usage":{"prompt_tokens":1,"completion_tokens":2}}]})",
           R"({"x":{"usage":{"prompt_tokens":1,"completion_tokens":2}}})",
           // the object does not close
           R"({"usage":{"prompt_tokens":1,"completion_tokens":2},"id":)",
           R"({"usage":{"prompt_tokens":1,"completion_tokens":2})",
           // the usage value itself is broken
           R"({"usage":{"prompt_tokens":1,"completion_tokens":}})",
       }) {
    EXPECT_FALSE(ParseResponseUsage(Format::kOpenAIChat, body).present) << body;
  }
}

TEST(ParseResponseUsage, NegativeCountsReadAsZero) {
  ExpectUsage(ParseResponseUsage(Format::kOpenAIChat,
                                 R"({"usage":{"prompt_tokens":-5,"completion_tokens":7}})"),
              0, 7, 0, 0);
}

}  // namespace
}  // namespace keygate::provider
