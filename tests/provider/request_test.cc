// InspectRequest and RewriteRequest. Rewritten bodies are checked two ways: byte for byte against
// the original with only the edited spans changed, and semantically with an independent parser
// (Boost.JSON): the same document with exactly the intended fields changed.
#include <gtest/gtest.h>
#include <simdjson.h>

#include <boost/json.hpp>
#include <random>
#include <string>
#include <thread>

#include "provider/json_text.h"
#include "provider/provider.h"

namespace keygate::provider {
namespace {

namespace json = boost::json;

RequestInfo MustInspect(std::string_view body) {
  auto info = InspectRequest(body);
  EXPECT_TRUE(info.ok()) << info.status().ToString() << "\n" << body;
  return info.ok() ? *info : RequestInfo{};
}

std::string Slice(std::string_view body, Span s) {
  return std::string(body.substr(s.begin, s.end - s.begin));
}

json::value Parse(std::string_view text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  EXPECT_FALSE(ec) << "not valid JSON: " << ec.message() << "\n" << text;
  return v;
}

// A realistic chat request with fields keygate knows nothing about.
constexpr std::string_view kChatBody = R"({
  "model": "gpt-4o",
  "messages": [
    {"role": "system", "content": "You are terse. Use \"quotes\" and \\backslashes\\ freely.\n"},
    {"role": "user", "content": [
      {"type": "text", "text": "Hello, snowman \u2603 and caf\u00e9 \ud83d\ude00!"},
      {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    ]},
    {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
      "function": {"name": "get_weather", "arguments": "{\"city\":\"Zürich\"}"}}]},
    {"role": "tool", "tool_call_id": "call_1", "content": "{\"temp\": 21}"}
  ],
  "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
    "required": ["city"], "additionalProperties": false}, "strict": true}}],
  "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
  "stop": ["\n\nUser:", "END"],
  "response_format": {"type": "json_schema", "json_schema": {"name": "w", "schema": {"type": "object"}}},
  "temperature": 0.2,
  "top_p": 1e-1,
  "seed": -12345678901,
  "logit_bias": {"50256": -100},
  "user": "user-\u00e9\t42",
  "metadata": {"model": "not-this-one", "stream": "nor this"},
  "stream": true,
  "max_completion_tokens": 512
}
)";

// ---------------------------------------------------------------- InspectRequest

TEST(InspectRequest, RealisticChatRequest) {
  RequestInfo info = MustInspect(kChatBody);
  EXPECT_EQ(info.model, "gpt-4o");
  EXPECT_TRUE(info.stream);
  EXPECT_EQ(Slice(kChatBody, info.model_value), "\"gpt-4o\"");
  EXPECT_FALSE(info.stream_options_value.present());
  EXPECT_FALSE(info.include_usage);
  EXPECT_EQ(info.max_tokens, 512);
  EXPECT_EQ(kChatBody[info.object_end], '}');
  EXPECT_EQ(info.object_end, kChatBody.rfind('}'));
  // system text (55 chars incl. decoded escapes) + the text part (35 code points) + the tool
  // message (12); the image and the null content count nothing.
  const size_t system_chars =
      std::string_view("You are terse. Use \"quotes\" and \\backslashes\\ freely.\n").size();
  const size_t part_chars = std::string_view("Hello, snowman X and cafX X!").size();
  const size_t tool_chars = std::string_view("{\"temp\": 21}").size();
  EXPECT_EQ(info.approx_prompt_chars, system_chars + part_chars + tool_chars);
}

TEST(InspectRequest, MinimalAndSpacing) {
  constexpr std::string_view body = " \r\n{ \"model\" :\t\"m-1\" , \"stream\" : false }\n ";
  RequestInfo info = MustInspect(body);
  EXPECT_EQ(info.model, "m-1");
  EXPECT_FALSE(info.stream);
  EXPECT_EQ(Slice(body, info.model_value), "\"m-1\"");
  EXPECT_EQ(body[info.object_end], '}');
  EXPECT_EQ(info.object_end, body.rfind('}'));
  EXPECT_EQ(info.max_tokens, std::nullopt);
  EXPECT_EQ(info.approx_prompt_chars, 0u);
}

TEST(InspectRequest, ModelEscapesAreDecoded) {
  constexpr std::string_view body = R"({"model":"gpt-4o\u002dmini\/x \"q\" \u00e9"})";
  RequestInfo info = MustInspect(body);
  EXPECT_EQ(info.model, "gpt-4o-mini/x \"q\" \xC3\xA9");
  EXPECT_EQ(Slice(body, info.model_value), R"("gpt-4o\u002dmini\/x \"q\" \u00e9")");
}

TEST(InspectRequest, StreamOptions) {
  constexpr std::string_view body =
      R"({"model":"m","stream":true,"stream_options":{"include_usage":true}})";
  RequestInfo info = MustInspect(body);
  EXPECT_TRUE(info.include_usage);
  EXPECT_EQ(Slice(body, info.stream_options_value), R"({"include_usage":true})");

  EXPECT_FALSE(
      MustInspect(R"({"model":"m","stream_options":{"include_usage":false}})").include_usage);
  EXPECT_FALSE(MustInspect(R"({"model":"m","stream_options":{}})").include_usage);
  EXPECT_FALSE(
      MustInspect(R"({"model":"m","stream_options":{"include_usage":"yes"}})").include_usage);
  // Duplicates inside stream_options: the last wins, as in the upstreams' parsers.
  EXPECT_FALSE(
      MustInspect(R"({"model":"m","stream_options":{"include_usage":true,"include_usage":false}})")
          .include_usage);
  EXPECT_TRUE(
      MustInspect(R"({"model":"m","stream_options":{"include_usage":false,"include_usage":true}})")
          .include_usage);
}

TEST(InspectRequest, NullableStreamFields) {
  constexpr std::string_view body = R"({"model":"m","stream":null,"stream_options":null})";
  RequestInfo info = MustInspect(body);
  EXPECT_FALSE(info.stream);
  EXPECT_FALSE(info.include_usage);
  EXPECT_EQ(Slice(body, info.stream_options_value), "null");
}

TEST(InspectRequest, MaxTokensAliases) {
  EXPECT_EQ(MustInspect(R"({"model":"m","max_tokens":100})").max_tokens, 100);
  EXPECT_EQ(MustInspect(R"({"model":"m","max_completion_tokens":200})").max_tokens, 200);
  EXPECT_EQ(MustInspect(R"({"model":"m","max_output_tokens":300})").max_tokens, 300);
  EXPECT_EQ(MustInspect(R"({"model":"m","max_output_tokens":3,"max_tokens":1})").max_tokens, 1);
  EXPECT_EQ(MustInspect(R"({"model":"m","max_tokens":64.0})").max_tokens, 64);
  EXPECT_EQ(MustInspect(R"({"model":"m","max_tokens":"100"})").max_tokens, std::nullopt);
  EXPECT_EQ(MustInspect(R"({"model":"m","max_tokens":1.5})").max_tokens, std::nullopt);
  EXPECT_EQ(MustInspect(R"({"model":"m","max_tokens":null})").max_tokens, std::nullopt);
}

TEST(InspectRequest, PromptCharsAcrossFormats) {
  // Anthropic: system as blocks, content blocks, tool_result content.
  EXPECT_EQ(MustInspect(R"({"model":"m","system":[{"type":"text","text":"abc"}],
      "messages":[{"role":"user","content":[{"type":"text","text":"de"},
      {"type":"tool_result","tool_use_id":"t","content":"fgh"}]}]})")
                .approx_prompt_chars,
            8u);
  // Completions: prompt string or array of strings.
  EXPECT_EQ(MustInspect(R"({"model":"m","prompt":"hello"})").approx_prompt_chars, 5u);
  EXPECT_EQ(MustInspect(R"({"model":"m","prompt":["ab","cd"]})").approx_prompt_chars, 4u);
  // Responses: input string, or items with input_text parts.
  EXPECT_EQ(MustInspect(R"({"model":"m","input":"\u00e9t\u00e9"})").approx_prompt_chars, 3u);
  EXPECT_EQ(MustInspect(R"({"model":"m","instructions":"ignored","input":[{"role":"user",
      "content":[{"type":"input_text","text":"four"}]},{"role":"user","content":"two"}]})")
                .approx_prompt_chars,
            7u);
  // Embeddings with token arrays: no text.
  EXPECT_EQ(MustInspect(R"({"model":"m","input":[[1,2,3]]})").approx_prompt_chars, 0u);
  // Code points, not bytes: an emoji is one.
  EXPECT_EQ(MustInspect("{\"model\":\"m\",\"prompt\":\"\xF0\x9F\x98\x80\"}").approx_prompt_chars,
            1u);
  // A string "text" wins over "content", whichever comes first; a "text" that is not a string
  // leaves "content" to count; of duplicate keys the first one counts (as simdjson's at_key).
  auto chars = [](std::string_view messages) {
    return MustInspect("{\"model\":\"m\",\"messages\":" + std::string(messages) + "}")
        .approx_prompt_chars;
  };
  EXPECT_EQ(chars(R"([{"content":"xxxxx","text":"ab"}])"), 2u);
  EXPECT_EQ(chars(R"([{"text":"ab","content":"xxxxx"}])"), 2u);
  EXPECT_EQ(chars(R"([{"text":7,"content":"abc"}])"), 3u);
  EXPECT_EQ(chars(R"([{"text":"a","text":"bcd"}])"), 1u);
  EXPECT_EQ(chars(R"([{"content":"a","content":"bcd"}])"), 1u);
  EXPECT_EQ(chars(R"([{"text":7,"text":"bcd","content":"ef"}])"), 2u);
}

TEST(InspectRequest, NestedModelKeysAreNotDuplicates) {
  constexpr std::string_view body =
      R"({"metadata":{"model":"b","stream":1},"messages":[{"role":"user",)"
      R"("content":"\"model\": \"c\", \"stream\": true"}],"model":"a"})";
  RequestInfo info = MustInspect(body);
  EXPECT_EQ(info.model, "a");
  EXPECT_FALSE(info.stream);
  EXPECT_EQ(Slice(body, info.model_value), "\"a\"");
}

struct BadBody {
  std::string_view body;
  std::string_view message;
};

TEST(InspectRequest, RejectsWithClientFacingMessages) {
  const BadBody cases[] = {
      {"", "request body is empty"},
      {"   ", "request body is empty"},
      {"{", "request body is not valid JSON"},
      {R"({"model":"m",})", "request body is not valid JSON"},
      {R"({'model':'m'})", "request body is not valid JSON"},
      {R"({"model":"m"} {"model":"n"})", "request body is not valid JSON"},
      {R"({"model":"m"} x)", "request body is not valid JSON"},
      {R"({"model":"m)", "request body is not valid JSON (unterminated string)"},
      {"{\"model\":\"a\x01\"}",
       "request body is not valid JSON (unescaped control character in a string)"},
      {R"({"model":"m","n":01})",
       "request body is not valid JSON (malformed or out-of-range number)"},
      {R"({"model":"m","n":tru})", "request body is not valid JSON (malformed literal)"},
      {"{\"model\":\"gpt\xff\"}", "request body is not valid JSON (invalid UTF-8)"},
      {"{\"model\":\"gpt\xC0\xAF\"}",
       "request body is not valid JSON (invalid UTF-8)"},  // overlong
      {"{\"model\":\"gpt\xED\xA0\x80\"}",
       "request body is not valid JSON (invalid UTF-8)"},  // surrogate
      {"{\"model\":\"gpt\xE2\x98\"}",
       "request body is not valid JSON (invalid UTF-8)"},  // truncated
      {R"(["model","m"])", "request body must be a JSON object"},
      {R"("model")", "request body must be a JSON object"},
      {"null", "request body must be a JSON object"},
      {"{}", "missing required field 'model'"},
      {R"({"Model":"m"})", "missing required field 'model'"},
      {R"({"model":null})", "'model' must be a string"},
      {R"({"model":42})", "'model' must be a string"},
      {R"({"model":["m"]})", "'model' must be a string"},
      {R"({"model":""})", "'model' must not be empty"},
      {R"({"model":"m","stream":"true"})", "'stream' must be a boolean"},
      {R"({"model":"m","stream":1})", "'stream' must be a boolean"},
      {R"({"model":"m","stream_options":"include_usage"})", "'stream_options' must be an object"},
      {R"({"model":"m","stream_options":[]})", "'stream_options' must be an object"},
      // Ambiguity is refused: a parser taking the first and one taking the last would disagree.
      {R"({"model":"cheap","model":"expensive"})", "duplicate key 'model' in request body"},
      {R"({"model":"a","mod\u0065l":"b"})", "duplicate key 'model' in request body"},
      {R"({"model":"a","stream":false,"stream":true})", "duplicate key 'stream' in request body"},
      {R"({"model":"a","stream_options":{},"stream_options":null})",
       "duplicate key 'stream_options' in request body"},
  };
  for (const BadBody& c : cases) {
    auto info = InspectRequest(c.body);
    ASSERT_FALSE(info.ok()) << c.body;
    EXPECT_EQ(info.status().code(), StatusCode::kInvalidArgument) << c.body;
    EXPECT_EQ(info.status().message(), c.message) << c.body;
  }
}

TEST(InspectRequest, RejectsDeepNesting) {
  std::string body = R"({"model":"m","x":)" + std::string(5000, '[') + std::string(5000, ']') + "}";
  auto info = InspectRequest(body);
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.status().message(), "request body is not valid JSON (nested too deeply)");
}

TEST(InspectRequest, LargeBodyUsesItsOwnParser) {
  // Over the per-thread parser's limit (1 MiB): parsed by a parser of its own, same result.
  std::string big(3 << 20, 'a');
  std::string body = R"({"messages":[{"role":"user","content":")" + big + R"("}],"model":"m"})";
  RequestInfo info = MustInspect(body);
  EXPECT_EQ(info.model, "m");
  EXPECT_EQ(info.approx_prompt_chars, big.size());
  // The small-body path still works afterwards on this thread.
  EXPECT_EQ(MustInspect(R"({"model":"small"})").model, "small");
}

// ---------------------------------------------------------------- RewriteRequest

TEST(RewriteRequest, OnlyTheModelTokenChanges) {
  RequestInfo info = MustInspect(kChatBody);
  std::string out = RewriteRequest(kChatBody, info, "gpt-4o-2024-11-20", false);
  std::string expected = std::string(kChatBody.substr(0, info.model_value.begin)) +
                         "\"gpt-4o-2024-11-20\"" +
                         std::string(kChatBody.substr(info.model_value.end));
  EXPECT_EQ(out, expected);

  json::value before = Parse(kChatBody);
  json::value after = Parse(out);
  before.as_object()["model"] = "gpt-4o-2024-11-20";
  EXPECT_EQ(before, after);
}

TEST(RewriteRequest, AddsStreamOptionsAfterTheLastMember) {
  RequestInfo info = MustInspect(kChatBody);
  std::string out = RewriteRequest(kChatBody, info, "gpt-4o", true);
  // The last member is followed by "\n}\n": the insertion goes right after its value.
  size_t last_value_end = kChatBody.rfind("512") + 3;
  std::string expected = std::string(kChatBody.substr(0, last_value_end)) +
                         R"(,"stream_options":{"include_usage":true})" +
                         std::string(kChatBody.substr(last_value_end));
  EXPECT_EQ(out, expected);

  json::value before = Parse(kChatBody);
  json::value after = Parse(out);
  before.as_object()["stream_options"] = json::object{{"include_usage", true}};
  EXPECT_EQ(before, after);

  RequestInfo again = MustInspect(out);
  EXPECT_TRUE(again.include_usage);
  EXPECT_TRUE(again.stream);
}

TEST(RewriteRequest, ModelIsEscapedProperly) {
  const std::string_view models[] = {
      "plain",
      "with \"quotes\" and \\ backslash",
      "new\nline\ttab\r\b\f",
      std::string_view("nul\0byte", 8),
      "ctrl \x01\x1f",
      "unicode \xE2\x98\x83 \xF0\x9F\x98\x80 caf\xC3\xA9",
      "slash/and</script>",
  };
  constexpr std::string_view body = R"({"model":"x","messages":[]})";
  RequestInfo info = MustInspect(body);
  for (std::string_view m : models) {
    std::string out = RewriteRequest(body, info, m, false);
    json::value v = Parse(out);
    ASSERT_TRUE(v.is_object());
    EXPECT_EQ(v.at("model").as_string(), m);
    RequestInfo again = MustInspect(out);
    EXPECT_EQ(again.model, m);
  }
}

TEST(RewriteRequest, InvalidUtf8InModelBecomesReplacementCharacter) {
  constexpr std::string_view body = R"({"model":"x"})";
  std::string out = RewriteRequest(body, MustInspect(body), "bad\xff", false);
  EXPECT_EQ(out, "{\"model\":\"bad\xEF\xBF\xBD\"}");
}

struct StreamOptionsCase {
  std::string_view name;
  std::string_view body;
  std::string_view want;
};

TEST(RewriteRequest, StreamOptionsMerging) {
  const StreamOptionsCase cases[] = {
      {"absent", R"({"model":"a","stream":true})",
       R"({"model":"b","stream":true,"stream_options":{"include_usage":true}})"},
      {"absent, whitespace before brace", "{\"model\":\"a\" \n\t}",
       "{\"model\":\"b\",\"stream_options\":{\"include_usage\":true} \n\t}"},
      {"empty object", R"({"model":"a","stream_options":{}})",
       R"({"model":"b","stream_options":{"include_usage":true}})"},
      {"empty object with spaces", R"({"model":"a","stream_options":{  }})",
       R"({"model":"b","stream_options":{"include_usage":true  }})"},
      {"false", R"({"model":"a","stream_options":{"include_usage":false}})",
       R"({"model":"b","stream_options":{"include_usage":true}})"},
      {"already true", R"({"model":"a","stream_options":{"include_usage": true}})",
       R"({"model":"b","stream_options":{"include_usage": true}})"},
      {"other member", R"({"model":"a","stream_options":{"continuous_usage_stats":true}})",
       R"({"model":"b","stream_options":{"include_usage":true,"continuous_usage_stats":true}})"},
      {"escaped key", R"({"model":"a","stream_options":{"include\u005fusage":null}})",
       R"({"model":"b","stream_options":{"include\u005fusage":true}})"},
      {"duplicates all set",
       R"({"model":"a","stream_options":{"include_usage":false,"x":{"include_usage":0},"include_usage":0}})",
       R"({"model":"b","stream_options":{"include_usage":true,"x":{"include_usage":0},"include_usage":true}})"},
      {"null", R"({"stream_options":null,"model":"a"})",
       R"({"stream_options":{"include_usage":true},"model":"b"})"},
      {"before model", R"({"stream_options":{"a":1},"model":"a"})",
       R"({"stream_options":{"include_usage":true,"a":1},"model":"b"})"},
  };
  for (const StreamOptionsCase& c : cases) {
    RequestInfo info = MustInspect(c.body);
    std::string out = RewriteRequest(c.body, info, "b", true);
    EXPECT_EQ(out, c.want) << c.name;
    Parse(out);
    RequestInfo again = MustInspect(out);
    EXPECT_TRUE(again.include_usage) << c.name;
  }
}

TEST(RewriteRequest, WithoutIncludeUsageStreamOptionsAreUntouched) {
  constexpr std::string_view body =
      R"({"model":"a","stream":true,"stream_options":{"include_usage":false}})";
  EXPECT_EQ(RewriteRequest(body, MustInspect(body), "b", false),
            R"({"model":"b","stream":true,"stream_options":{"include_usage":false}})");
}

// The oracle: for every body, the rewrite parses to the original document with exactly the model
// set and (when asked) stream_options.include_usage set, other members merged in.
TEST(RewriteRequest, SemanticOracleOverACorpus) {
  const std::string_view bodies[] = {
      kChatBody,
      R"({"model":"claude-sonnet","max_tokens":1024,"system":"Be brief.","messages":[{"role":"user","content":"Hi"}],"stream":true})",
      R"({"input":["a","b"],"model":"text-embedding-3-small","encoding_format":"float"})",
      R"({"model":"o3","input":[{"role":"user","content":[{"type":"input_text","text":"x"}]}],"reasoning":{"effort":"high"},"stream":true})",
      "{\n\t\"model\"\t:\t\"m\"\t,\n\t\"stream_options\"\t:\t{\t\"x\"\t:\t[1,{\"y\":\"}\"}]\t}\n}",
      R"({"model":"m","stream_options":{"include_usage":false,"continuous_usage_stats":true},"n":2})",
      R"({"\u006dodel":"m","k\"ey":"v\\","emoji":"\ud83d\ude00","nested":{"a":[[[]]],"b":{}}})",
  };
  for (std::string_view body : bodies) {
    RequestInfo info = MustInspect(body);
    for (bool add : {false, true}) {
      std::string out = RewriteRequest(body, info, "up/\"stream\"-model", add);
      json::value want = Parse(body);
      json::object& o = want.as_object();
      // Boost.JSON keeps the first of duplicate keys; the corpus has none at the top level.
      o["model"] = "up/\"stream\"-model";
      if (add) {
        json::value& so = o["stream_options"];
        if (!so.is_object()) so = json::object{};
        so.as_object()["include_usage"] = true;
      }
      json::value got = Parse(out);
      EXPECT_EQ(got, want) << body << "\n=> " << out;
    }
  }
}

}  // namespace
}  // namespace keygate::provider

namespace keygate::provider {
namespace {

// Property: whatever body InspectRequest accepts, the rewrite is valid JSON that inspects again
// to the new model (and include_usage when asked). Bodies are random mutations of real requests,
// biased toward the bytes that matter to the scanner.
TEST(RewriteRequest, RandomMutationsOfAcceptedBodiesStayValid) {
  const std::string_view seeds[] = {
      kChatBody,
      R"({"model":"m","stream":true,"stream_options":{"include_usage":false,"x":[1,{"y":"}"}]}})",
      R"({ "stream_options" : null , "model" : "a\"b" , "k" : { "model" : 1 } })",
      R"({"model":"m","messages":[{"role":"user","content":"\\\"\u00e9\ud83d\ude00"}]})",
  };
  constexpr std::string_view kAlphabet = "{}[]\":,\\ \n\tabmodelstream_optionsinclude_usage01-.enu";
  std::mt19937 rng(7);
  int accepted = 0;
  for (int iter = 0; iter < 20000; ++iter) {
    std::string body(seeds[iter % std::size(seeds)]);
    const int edits = 1 + static_cast<int>(rng() % 3);
    for (int e = 0; e < edits && !body.empty(); ++e) {
      size_t at = rng() % body.size();
      char c = kAlphabet[rng() % kAlphabet.size()];
      switch (rng() % 3) {
        case 0:
          body[at] = c;
          break;
        case 1:
          body.insert(body.begin() + at, c);
          break;
        case 2:
          body.erase(at, 1);
          break;
      }
    }
    auto info = InspectRequest(body);
    if (!info.ok()) continue;
    ++accepted;
    for (bool add : {false, true}) {
      std::string out = RewriteRequest(body, *info, "new\"model", add);
      boost::system::error_code ec;
      json::value v = json::parse(out, ec);
      ASSERT_FALSE(ec) << body << "\n=> " << out;
      auto again = InspectRequest(out);
      ASSERT_TRUE(again.ok()) << again.status().ToString() << "\n" << body << "\n=> " << out;
      EXPECT_EQ(again->model, "new\"model");
      if (add) {
        EXPECT_TRUE(again->include_usage) << body << "\n=> " << out;
      }
    }
  }
  EXPECT_GT(accepted, 1000);  // the property was exercised, not vacuously true
}

// InspectRequest finds the top-level members from simdjson's structural index, not from the
// bytes. Differential: on every accepted mutation of bodies with whitespace everywhere it may
// be, nested containers, strings holding structural characters and escapes, its spans equal those
// of the byte scanner (internal::ForEachMember) over the same body.
void ExpectSpansOfTheByteScanner() {
  const std::string_view seeds[] = {
      kChatBody,
      " {\n \"model\" :\t\"m\" ,\r\n\"stream_options\" : { \"include_usage\" : true } ,"
      " \"x\" : [ 1 , { \"y\" : \"}],:\\\"\" } ] , \"stream\" : false \n}\t",
      R"({"a":{"model":"inner"},"model":"m","b":[[],[{}],"[{"],"stream_options":null,"c":-1.5e3})",
      R"({"stream_options":{},"model":"m\u0022x","z":"\\","messages":[{"content":"\"}"}]})",
  };
  constexpr std::string_view kAlphabet = "{}[]\":,\\ \n\t\rmodelstream_options01-.enull";
  std::mt19937 rng(11);
  int accepted = 0, with_stream_options = 0;
  for (int iter = 0; iter < 30000; ++iter) {
    std::string body(seeds[iter % std::size(seeds)]);
    const int edits = static_cast<int>(rng() % 3);
    for (int e = 0; e < edits && !body.empty(); ++e) {
      const size_t at = rng() % body.size();
      const char c = kAlphabet[rng() % kAlphabet.size()];
      if (rng() % 2) {
        body.insert(body.begin() + at, c);
      } else {
        body.erase(at, 1);
      }
    }
    auto info = InspectRequest(body);
    if (!info.ok()) continue;
    ++accepted;
    Span model, stream_options;
    const size_t end = internal::ForEachMember(
        body, internal::SkipWs(body, 0), [&](std::string_view key, Span value) {
          if (internal::JsonStringEquals(key, "model")) model = value;
          if (internal::JsonStringEquals(key, "stream_options")) stream_options = value;
        });
    ASSERT_EQ(info->object_end, end) << body;
    ASSERT_EQ(info->model_value.begin, model.begin) << body;
    ASSERT_EQ(info->model_value.end, model.end) << body;
    ASSERT_EQ(info->stream_options_value.begin, stream_options.begin) << body;
    ASSERT_EQ(info->stream_options_value.end, stream_options.end) << body;
    with_stream_options += stream_options.present();
  }
  EXPECT_GT(accepted, 8000);
  EXPECT_GT(with_stream_options, 3000);
}

TEST(InspectRequest, SpansEqualTheByteScannersOnMutatedBodies) { ExpectSpansOfTheByteScanner(); }

// simdjson picks a kernel for the CPU it runs on (icelake, haswell, westmere, or the portable
// fallback), and each fills the structural index its own way: the same differential on every one
// this machine can run. Each runs on a thread of its own, whose per-thread parser is made with it.
TEST(InspectRequest, SpansEqualTheByteScannersOnEverySimdjsonKernel) {
  const simdjson::implementation* active = simdjson::get_active_implementation();
  int kernels = 0;
  for (const simdjson::implementation* impl : simdjson::get_available_implementations()) {
    if (!impl->supported_by_runtime_system()) continue;
    SCOPED_TRACE(impl->name());
    ++kernels;
    simdjson::get_active_implementation() = impl;
    std::thread([] { ExpectSpansOfTheByteScanner(); }).join();
  }
  simdjson::get_active_implementation() = active;
  EXPECT_GE(kernels, 2);  // the fallback and at least one SIMD kernel
}

}  // namespace
}  // namespace keygate::provider
