// Client requests: validated once with the simdjson DOM (which checks UTF-8 and structure), then
// the parser's structural index locates the top-level fields keygate rewrites, so the rewrite
// splices bytes instead of re-encoding the body: unknown fields survive byte for byte.
#include <algorithm>
#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "provider/dom.h"
#include "provider/json_text.h"
#include "provider/provider.h"

namespace keygate::provider {
namespace {

using internal::DomParser;
using internal::JsonStringEquals;

std::string ParseErrorMessage(simdjson::error_code err) {
  switch (err) {
    case simdjson::EMPTY:
      return "request body is empty";
    case simdjson::UTF8_ERROR:
      return "request body is not valid JSON (invalid UTF-8)";
    case simdjson::DEPTH_ERROR:
      return "request body is not valid JSON (nested too deeply)";
    case simdjson::UNCLOSED_STRING:
      return "request body is not valid JSON (unterminated string)";
    case simdjson::STRING_ERROR:
      return "request body is not valid JSON (malformed string)";
    case simdjson::UNESCAPED_CHARS:
      return "request body is not valid JSON (unescaped control character in a string)";
    case simdjson::NUMBER_ERROR:
    case simdjson::NUMBER_OUT_OF_RANGE:
      // simdjson 3.0 also refuses integers beyond 64 bits here; no upstream takes those either.
      return "request body is not valid JSON (malformed or out-of-range number)";
    case simdjson::T_ATOM_ERROR:
    case simdjson::F_ATOM_ERROR:
    case simdjson::N_ATOM_ERROR:
      return "request body is not valid JSON (malformed literal)";
    default:
      return "request body is not valid JSON";
  }
}

// Characters of prompt text in a content-like value: a string; an array of strings or of parts
// ({"type":"text","text":…}, Responses {"type":"input_text","text":…}); an object with "text" or
// with "content" (a message, an Anthropic tool_result). Depth-limited: it is an estimate, and the
// shapes that carry text are shallow.
size_t TextChars(simdjson::dom::element e, int depth = 0) {
  if (depth > 4) return 0;
  std::string_view s;
  if (e.get_string().get(s) == simdjson::SUCCESS) return internal::CountCodePoints(s);
  simdjson::dom::array arr;
  if (e.get_array().get(arr) == simdjson::SUCCESS) {
    size_t n = 0;
    for (simdjson::dom::element x : arr) n += TextChars(x, depth + 1);
    return n;
  }
  simdjson::dom::object obj;
  if (e.get_object().get(obj) == simdjson::SUCCESS) {
    // One pass over the members for the first "text" and the first "content" (as at_key finds
    // them); a string "text" wins.
    std::optional<simdjson::dom::element> text, content;
    for (simdjson::dom::key_value_pair kv : obj) {
      if (!text && kv.key == "text") {
        text = kv.value;
      } else if (!content && kv.key == "content") {
        content = kv.value;
      }
    }
    if (text && text->get_string().get(s) == simdjson::SUCCESS) {
      return internal::CountCodePoints(s);
    }
    if (content) return TextChars(*content, depth + 1);
  }
  return 0;
}

bool IsWs(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// internal::ForEachMember over the root object of a body the DOM parser accepted, read from the
// parser's structural index instead of the bytes: a member costs a few steps whatever the length
// of its strings (the byte scan was a third of InspectRequest on a long prompt). The same calls
// in the same order: fn(key token, value span) for each member; returns the closing '}' offset.
// In a valid document a key is the string before a ':' at depth 1, its value runs from the
// structural after the ':' to the ',' or '}' that follows at depth 1, less whitespace. Anything
// unexpected (no index, a root that is not an object) falls back to the byte scan.
template <typename Fn>
size_t ForEachRootMember(std::string_view body, std::span<const uint32_t> at, Fn&& fn) {
  if (at.empty() || at[0] >= body.size() || body[at[0]] != '{') {
    return internal::ForEachMember(body, internal::SkipWs(body, 0), fn);
  }
  static constexpr auto kNesting = [] {  // +1 opens a container, -1 closes one
    std::array<int8_t, 256> t{};
    t['{'] = t['['] = 1;
    t['}'] = t[']'] = -1;
    return t;
  }();
  auto trimmed_end = [&](size_t end) {
    while (end > 0 && IsWs(body[end - 1])) --end;
    return end;
  };
  std::string_view key;  // the current member's key token, once its ':' is seen
  size_t value = 0;      // and where its value begins
  for (size_t i = 1; i < at.size(); ++i) {
    const size_t pos = at[i];
    const char c = body[pos];
    if (c == '{' || c == '[') {  // a member's value: skip to the structural that closes it
      for (int depth = 1; depth > 0 && i + 1 < at.size();) {
        depth += kNesting[static_cast<unsigned char>(body[at[++i]])];
      }
    } else if (c == ':') {
      key = body.substr(at[i - 1], trimmed_end(pos) - at[i - 1]);
      if (i + 1 < at.size()) value = at[i + 1];
    } else if (c == ',' || c == '}') {
      if (!key.empty()) fn(key, Span{value, trimmed_end(pos)});
      key = {};
      if (c == '}') return pos;
    }
  }
  return body.size();
}

}  // namespace

StatusOr<RequestInfo> InspectRequest(std::string_view body) {
  DomParser parser(body.size());
  simdjson::dom::element root;
  if (simdjson::error_code err = parser.Parse(body, root); err != simdjson::SUCCESS) {
    return InvalidArgumentError(ParseErrorMessage(err));
  }
  if (!root.is_object()) return InvalidArgumentError("request body must be a JSON object");

  // The DOM keeps duplicate keys and answers lookups with the first, while many upstreams (Python,
  // JavaScript) take the last: a body with two "model" keys could be routed and billed as one
  // model and served as another. Keys are compared decoded ("mod\u0065l" is "model").
  RequestInfo info;
  int models = 0, streams = 0, stream_options = 0;
  info.object_end =
      ForEachRootMember(body, parser.Structurals(), [&](std::string_view key, Span value) {
        if (JsonStringEquals(key, "model")) {
          ++models;
          info.model_value = value;
        } else if (JsonStringEquals(key, "stream")) {
          ++streams;
        } else if (JsonStringEquals(key, "stream_options")) {
          ++stream_options;
          info.stream_options_value = value;
        }
      });
  // Unreachable for text the DOM accepted; kept so a scanner bug is a 400, not a bad splice.
  if (info.object_end >= body.size() || body[info.object_end] != '}') {
    return InvalidArgumentError("request body is not valid JSON");
  }
  if (models > 1) return InvalidArgumentError("duplicate key 'model' in request body");
  if (streams > 1) return InvalidArgumentError("duplicate key 'stream' in request body");
  if (stream_options > 1) {
    return InvalidArgumentError("duplicate key 'stream_options' in request body");
  }

  auto model = internal::Field(root, "model");
  if (!model) return InvalidArgumentError("missing required field 'model'");
  std::string_view model_name;
  if (model->get_string().get(model_name) != simdjson::SUCCESS) {
    return InvalidArgumentError("'model' must be a string");
  }
  if (model_name.empty()) return InvalidArgumentError("'model' must not be empty");
  info.model = std::string(model_name);

  // OpenAI documents "stream" and "stream_options" as nullable: null means absent.
  if (auto stream = internal::Field(root, "stream"); stream && !stream->is_null()) {
    if (stream->get_bool().get(info.stream) != simdjson::SUCCESS) {
      return InvalidArgumentError("'stream' must be a boolean");
    }
  }
  if (auto so = internal::Field(root, "stream_options"); so && !so->is_null()) {
    simdjson::dom::object obj;
    if (so->get_object().get(obj) != simdjson::SUCCESS) {
      return InvalidArgumentError("'stream_options' must be an object");
    }
    for (simdjson::dom::key_value_pair kv : obj) {
      // The last of duplicate keys wins, as in the upstreams' parsers.
      if (kv.key == "include_usage") {
        bool b = false;
        info.include_usage = kv.value.get_bool().get(b) == simdjson::SUCCESS && b;
      }
    }
  }

  for (std::string_view key : {"max_tokens", "max_completion_tokens", "max_output_tokens"}) {
    if (auto v = internal::IntField(root, key)) {
      info.max_tokens = *v;
      break;
    }
  }

  size_t chars = 0;
  for (std::string_view key : {"messages", "system", "prompt", "input"}) {
    if (auto v = internal::Field(root, key)) chars += TextChars(*v);
  }
  info.approx_prompt_chars = chars;
  return info;
}

std::string RewriteRequest(std::string_view body, const RequestInfo& info,
                           std::string_view upstream_model, bool add_include_usage) {
  struct Edit {
    size_t begin, end;  // the bytes [begin, end) are replaced by text
    std::string text;
  };
  std::vector<Edit> edits;
  auto valid = [&](Span s) { return s.present() && s.end <= body.size(); };

  if (valid(info.model_value)) {
    std::string token;
    internal::AppendJsonString(token, upstream_model);
    edits.push_back({info.model_value.begin, info.model_value.end, std::move(token)});
  }

  if (add_include_usage) {
    const Span so = info.stream_options_value;
    if (!so.present()) {
      if (info.object_end < body.size() && body[info.object_end] == '}') {
        // Insert after the last member, before any whitespace that precedes the closing brace.
        size_t at = info.object_end;
        while (at > 0 && IsWs(body[at - 1])) --at;
        const bool empty = at > 0 && body[at - 1] == '{';
        edits.push_back(
            {at, at,
             std::string(empty ? "" : ",") + "\"stream_options\":{\"include_usage\":true}"});
      }
    } else if (valid(so) && body[so.begin] == '{') {
      bool found = false;
      internal::ForEachMember(body.substr(0, so.end), so.begin,
                              [&](std::string_view key, Span value) {
                                if (JsonStringEquals(key, "include_usage")) {
                                  // Every duplicate is set, so no parser can read false.
                                  found = true;
                                  edits.push_back({value.begin, value.end, "true"});
                                }
                              });
      if (!found) {
        const size_t first = internal::SkipWs(body, so.begin + 1);
        const bool empty = first < body.size() && body[first] == '}';
        edits.push_back({so.begin + 1, so.begin + 1,
                         empty ? "\"include_usage\":true" : "\"include_usage\":true,"});
      }
    } else if (valid(so)) {
      // "stream_options": null
      edits.push_back({so.begin, so.end, "{\"include_usage\":true}"});
    }
  }

  std::sort(edits.begin(), edits.end(),
            [](const Edit& a, const Edit& b) { return a.begin < b.begin; });
  std::string out;
  size_t extra = 0;
  for (const Edit& e : edits) extra += e.text.size();
  out.reserve(body.size() + extra);
  size_t pos = 0;
  for (const Edit& e : edits) {
    if (e.begin < pos) continue;  // overlapping spans: a broken precondition; keep the bytes
    out.append(body.substr(pos, e.begin - pos));
    out.append(e.text);
    pos = e.end;
  }
  out.append(body.substr(pos));
  return out;
}

}  // namespace keygate::provider
