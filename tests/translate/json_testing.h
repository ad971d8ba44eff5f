// Test helpers: JSON compared as parsed values (Boost.JSON), so key order and whitespace do not
// matter, with both documents printed on a mismatch.
#ifndef KEYGATE_TESTS_TRANSLATE_JSON_TESTING_H_
#define KEYGATE_TESTS_TRANSLATE_JSON_TESTING_H_

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <string>
#include <string_view>

#include "translate/translate.h"

namespace keygate::translate::testing {

inline boost::json::value ParseJson(std::string_view text) {
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(text, ec);
  EXPECT_FALSE(ec) << "not valid JSON: " << ec.message() << "\n" << text;
  return v;
}

inline ::testing::AssertionResult JsonEq(std::string_view actual, std::string_view expected) {
  boost::json::value a = ParseJson(actual), e = ParseJson(expected);
  if (a == e) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "\n  actual:   " << boost::json::serialize(a)
                                       << "\n  expected: " << boost::json::serialize(e);
}

// A long chat conversation (~300 KB) for round trips: a system prompt, then 600 turns of text with
// escapes and non-ASCII, user parts with an image (with `detail` when `image_detail`), and tool
// calls with their results (each followed by an assistant turn, so no two user turns meet).
inline boost::json::array LongConversation(bool image_detail) {
  boost::json::array messages;
  messages.push_back({{"role", "system"}, {"content", "You are terse. \"Quoted\" rules \u00e9."}});
  for (int i = 0; i < 600; ++i) {
    const std::string n = std::to_string(i);
    const std::string text = "Turn " + n + ": d\u00e9j\u00e0 vu, \"quotes\", a tab\t, " +
                             std::string(static_cast<size_t>(200 + i % 300), 'x');
    switch (i % 4) {
      case 0:
        messages.push_back({{"role", "user"}, {"content", text}});
        break;
      case 1:
        messages.push_back({{"role", "assistant"}, {"content", text}});
        break;
      case 2:
        messages.push_back(
            {{"role", "user"},
             {"content",
              boost::json::array{
                  boost::json::object{{"type", "text"}, {"text", text}},
                  boost::json::object{
                      {"type", "image_url"},
                      {"image_url",
                       image_detail
                           ? boost::json::object{{"url", "https://img.example/" + n},
                                                 {"detail", "auto"}}
                           : boost::json::object{{"url", "https://img.example/" + n}}}}}}});
        break;
      default:
        messages.push_back(
            {{"role", "assistant"},
             {"content", nullptr},
             {"tool_calls",
              boost::json::array{boost::json::object{
                  {"id", "call_" + n},
                  {"type", "function"},
                  {"function", {{"name", "lookup"}, {"arguments", "{\"q\":\"" + n + "\"}"}}}}}}});
        messages.push_back({{"role", "tool"}, {"tool_call_id", "call_" + n}, {"content", text}});
        // A tool result is a user turn for Anthropic: the next user turn would merge into it.
        messages.push_back({{"role", "assistant"}, {"content", "Looked up " + n + "."}});
    }
  }
  return messages;
}

// `body`'s "messages" equal `want`, message by message (the first difference printed).
inline ::testing::AssertionResult SameMessages(std::string_view body,
                                               const boost::json::array& want) {
  boost::json::value got = ParseJson(body);
  if (!got.is_object() || !got.as_object()["messages"].is_array()) {
    return ::testing::AssertionFailure() << "no messages array in " << body.substr(0, 200);
  }
  const boost::json::array& out = got.as_object()["messages"].as_array();
  if (out.size() != want.size()) {
    return ::testing::AssertionFailure() << out.size() << " messages, want " << want.size();
  }
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i] != want[i]) {
      return ::testing::AssertionFailure()
             << "message " << i << ": " << boost::json::serialize(out[i]) << "\n  want "
             << boost::json::serialize(want[i]);
    }
  }
  return ::testing::AssertionSuccess();
}

// `request` (a chat request) through the request translator `there` and back through `back`
// (both called with default TranslateOptions): the messages that come back are its messages.
// Fails also when the request is shorter than `min_bytes` (the round trips of LongConversation
// are there to grow the translators' arenas).
template <typename There, typename Back>
::testing::AssertionResult MessagesRoundTrip(const boost::json::object& request, There there,
                                             Back back, size_t min_bytes) {
  const std::string body = boost::json::serialize(request);
  if (body.size() <= min_bytes) {
    return ::testing::AssertionFailure()
           << "the request is " << body.size() << " bytes, want more than " << min_bytes;
  }
  auto out = there(body, TranslateOptions{});
  if (!out.ok()) return ::testing::AssertionFailure() << "there: " << out.status().ToString();
  auto returned = back(*out, TranslateOptions{});
  if (!returned.ok()) {
    return ::testing::AssertionFailure() << "back: " << returned.status().ToString();
  }
  return SameMessages(*returned, request.at("messages").as_array());
}

}  // namespace keygate::translate::testing

#endif  // KEYGATE_TESTS_TRANSLATE_JSON_TESTING_H_
