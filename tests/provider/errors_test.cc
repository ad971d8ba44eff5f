// Error JSON for clients, the auth header, and the JSON text helpers underneath. Outputs are parsed
// back with Boost.JSON (which validates UTF-8), an implementation independent of ours.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <random>
#include <string>

#include "provider/json_text.h"
#include "provider/provider.h"

namespace keygate::provider {
namespace {

namespace json = boost::json;

json::value MustParse(std::string_view text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  EXPECT_FALSE(ec) << ec.message() << ": " << text;
  return v;
}

const std::string_view kHardMessages[] = {
    "plain",
    "",
    "model 'gpt-9' not found",
    "with \"double quotes\" and \\backslash\\",
    "multi\nline\r\nwith\ttabs",
    std::string_view("nul\0inside", 10),
    "\x01\x02\x1f control",
    "caf\xC3\xA9 \xE2\x98\x83 \xF0\x9F\x98\x80",
    "</script><script>alert(1)</script>",
    "\\u0000 looks like an escape",
};

TEST(OpenAIErrorJson, ParsesAndRoundTrips) {
  for (std::string_view m : kHardMessages) {
    std::string s = OpenAIErrorJson(m, "invalid_request_error", "model_not_found");
    json::value v = MustParse(s);
    const json::object& err = v.at("error").as_object();
    EXPECT_EQ(err.at("message").as_string(), m);
    EXPECT_EQ(err.at("type").as_string(), "invalid_request_error");
    EXPECT_EQ(err.at("code").as_string(), "model_not_found");
    EXPECT_TRUE(err.at("param").is_null());
    EXPECT_EQ(v.as_object().size(), 1u);
  }
}

TEST(OpenAIErrorJson, ExactShapeAndNullCode) {
  EXPECT_EQ(
      OpenAIErrorJson("Invalid API key", "invalid_request_error", ""),
      R"({"error":{"message":"Invalid API key","type":"invalid_request_error","param":null,"code":null}})");
  EXPECT_EQ(OpenAIErrorJson("a\"b", "t", "c"),
            R"({"error":{"message":"a\"b","type":"t","param":null,"code":"c"}})");
}

TEST(AnthropicErrorJson, ParsesAndRoundTrips) {
  for (std::string_view m : kHardMessages) {
    std::string s = AnthropicErrorJson(m, "authentication_error");
    json::value v = MustParse(s);
    EXPECT_EQ(v.at("type").as_string(), "error");
    EXPECT_EQ(v.at("error").at("type").as_string(), "authentication_error");
    EXPECT_EQ(v.at("error").at("message").as_string(), m);
  }
  EXPECT_EQ(
      AnthropicErrorJson("invalid x-api-key", "authentication_error"),
      R"({"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}})");
}

TEST(ErrorJson, InvalidUtf8IsReplacedNotPassedOn) {
  // Upstream text quoted into a message may be anything; the output must stay valid UTF-8.
  std::string s = OpenAIErrorJson("bad \xff\xfe byte \xC3", "upstream_error", "");
  json::value v = MustParse(s);
  EXPECT_EQ(v.at("error").at("message").as_string(),
            "bad \xEF\xBF\xBD\xEF\xBF\xBD byte \xEF\xBF\xBD");
  std::string a = AnthropicErrorJson("\xED\xA0\x80 surrogate", "api_error");
  EXPECT_EQ(MustParse(a).at("error").at("message").as_string(),
            "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD surrogate");
}

TEST(AuthHeader, BearerAndXApiKey) {
  EXPECT_EQ(AuthHeader(AuthStyle::kBearer, "sk-proj-abc"),
            (std::pair<std::string, std::string>{"authorization", "Bearer sk-proj-abc"}));
  EXPECT_EQ(AuthHeader(AuthStyle::kXApiKey, "sk-ant-api03-xyz"),
            (std::pair<std::string, std::string>{"x-api-key", "sk-ant-api03-xyz"}));
}

// ---------------------------------------------------------------- json_text internals

TEST(AppendJsonString, EveryAsciiByteRoundTrips) {
  std::string all;
  for (int c = 0; c < 0x80; ++c) all.push_back(static_cast<char>(c));
  std::string out;
  internal::AppendJsonString(out, all);
  EXPECT_EQ(MustParse(out).as_string(), all);
  // And our own decoder agrees.
  EXPECT_EQ(internal::DecodeJsonString(out), all);
}

TEST(AppendJsonString, ValidUtf8PassesUnchanged) {
  std::string out;
  internal::AppendJsonString(
      out, "\xC2\x80 \xDF\xBF \xE0\xA0\x80 \xEF\xBF\xBF \xF0\x90\x80\x80 \xF4\x8F\xBF\xBF");
  EXPECT_EQ(out,
            "\"\xC2\x80 \xDF\xBF \xE0\xA0\x80 \xEF\xBF\xBF \xF0\x90\x80\x80 \xF4\x8F\xBF\xBF\"");
}

TEST(AppendJsonString, InvalidUtf8Forms) {
  const std::pair<std::string_view, std::string_view> cases[] = {
      {"\x80", "\xEF\xBF\xBD"},                                  // lone continuation
      {"\xC0\xAF", "\xEF\xBF\xBD\xEF\xBF\xBD"},                  // overlong '/'
      {"\xE0\x80\xAF", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"},  // overlong
      {"\xF4\x90\x80\x80", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"},  // > U+10FFFF
      {"\xF5", "\xEF\xBF\xBD"},
      {"a\xE2\x98", "a\xEF\xBF\xBD\xEF\xBF\xBD"},  // truncated at the end
  };
  for (const auto& [in, want] : cases) {
    std::string out;
    internal::AppendJsonString(out, in);
    EXPECT_EQ(out, "\"" + std::string(want) + "\"");
  }
}

TEST(DecodeJsonString, Escapes) {
  EXPECT_EQ(internal::DecodeJsonString(R"("a\"b\\c\/d\b\f\n\r\t")"), "a\"b\\c/d\b\f\n\r\t");
  EXPECT_EQ(internal::DecodeJsonString(R"("\u0041\u00e9\u2603")"), "A\xC3\xA9\xE2\x98\x83");
  EXPECT_EQ(internal::DecodeJsonString(R"("\ud83d\ude00")"), "\xF0\x9F\x98\x80");
  EXPECT_EQ(internal::DecodeJsonString(R"("\uD83D\uDE00")"), "\xF0\x9F\x98\x80");
  EXPECT_EQ(internal::DecodeJsonString(R"("\ud83dx")"), "\xEF\xBF\xBDx");  // lone high
  EXPECT_EQ(internal::DecodeJsonString(R"("\ude00")"), "\xEF\xBF\xBD");    // lone low
  EXPECT_EQ(internal::DecodeJsonString(R"("")"), "");
  EXPECT_EQ(internal::DecodeJsonString(R"("\x")"), std::nullopt);
  EXPECT_EQ(internal::DecodeJsonString(R"("\u12")"), std::nullopt);
  EXPECT_EQ(internal::DecodeJsonString(R"(abc)"), std::nullopt);
  EXPECT_EQ(internal::DecodeJsonString("\""), std::nullopt);
}

TEST(JsonStringEquals, FastAndEscapedPaths) {
  EXPECT_TRUE(internal::JsonStringEquals("\"model\"", "model"));
  EXPECT_FALSE(internal::JsonStringEquals("\"models\"", "model"));
  EXPECT_TRUE(internal::JsonStringEquals(R"("mod\u0065l")", "model"));
  EXPECT_TRUE(internal::JsonStringEquals(R"("\u006d\u006f\u0064\u0065\u006c")", "model"));
  EXPECT_FALSE(internal::JsonStringEquals(R"("model\u0000")", "model"));
  EXPECT_FALSE(internal::JsonStringEquals("\"\"", "model"));
}

TEST(Scanner, SkipValueAndMembers) {
  constexpr std::string_view s =
      R"({"a" : "x\"}" , "b":[1,{"c":"]"}], "d":-1.5e3,"e":true ,"f":null,"g":{}})";
  std::vector<std::pair<std::string, std::string>> members;
  size_t end = internal::ForEachMember(s, 0, [&](std::string_view key, Span v) {
    members.emplace_back(std::string(key), std::string(s.substr(v.begin, v.end - v.begin)));
  });
  EXPECT_EQ(end, s.size() - 1);
  ASSERT_EQ(members.size(), 6u);
  EXPECT_EQ(members[0], (std::pair<std::string, std::string>{"\"a\"", R"("x\"}")"}));
  EXPECT_EQ(members[1].second, R"([1,{"c":"]"}])");
  EXPECT_EQ(members[2].second, "-1.5e3");
  EXPECT_EQ(members[3].second, "true");
  EXPECT_EQ(members[4].second, "null");
  EXPECT_EQ(members[5], (std::pair<std::string, std::string>{"\"g\"", "{}"}));
}

TEST(Scanner, StringsFullOfEscapesAreLinear) {
  // 1 MiB of "\n" escapes inside one string: the scanner must not rescan to the closing quote
  // for every escape (that would be ~10^11 steps and time out).
  std::string s = "\"";
  for (int i = 0; i < (1 << 19); ++i) s += "\\n";
  s += "\"";
  EXPECT_EQ(internal::SkipString(s, 0), s.size());
  EXPECT_EQ(internal::SkipString(R"("a\\")", 0), 5u);
  EXPECT_EQ(internal::SkipString(R"("a\\\"b")", 0), 8u);
}

TEST(Scanner, TruncatedTextStaysInBounds) {
  for (std::string_view s : {"\"abc", "{\"a\":", "{\"a\":[1,2", "[\"]", "{\"a\"", "{"}) {
    EXPECT_LE(internal::SkipValue(s, 0), s.size()) << s;
    EXPECT_EQ(internal::ForEachMember(s, 0, [](std::string_view, Span) {}), s.size()) << s;
  }
}

TEST(CountCodePoints, Utf8) {
  EXPECT_EQ(internal::CountCodePoints(""), 0u);
  EXPECT_EQ(internal::CountCodePoints("abc"), 3u);
  EXPECT_EQ(internal::CountCodePoints("caf\xC3\xA9"), 4u);
  EXPECT_EQ(internal::CountCodePoints("\xF0\x9F\x98\x80\xE2\x98\x83"), 2u);
}

// The word-at-a-time count against the definition (bytes that are not 10xxxxxx), on every byte
// value at every position of the words and of the tail: random text, lengths 0 to 40.
TEST(CountCodePoints, CountsEveryByteButContinuationBytes) {
  std::mt19937 rng(7);
  int continuation = 0;
  for (int round = 0; round < 20'000; ++round) {
    std::string s(rng() % 41, '\0');
    for (char& c : s) c = static_cast<char>(rng() % 256);
    size_t expected = 0;
    for (char c : s) {
      const bool cont = (static_cast<unsigned char>(c) & 0xC0) == 0x80;
      expected += !cont;
      continuation += cont;
    }
    ASSERT_EQ(internal::CountCodePoints(s), expected) << round;
  }
  EXPECT_GT(continuation, 50'000);  // a quarter of the random bytes
  // Long runs, where a lane's count would wrap past 255 rounds of 16 bytes.
  for (size_t n : {4095, 4096, 4097, 8191, 100'000}) {
    EXPECT_EQ(internal::CountCodePoints(std::string(n, '\x80')), 0u) << n;
    std::string e_acute;
    for (size_t i = 0; i < n; ++i) e_acute += "\xC3\xA9";
    EXPECT_EQ(internal::CountCodePoints(e_acute), n) << n;
  }
}

}  // namespace
}  // namespace keygate::provider
