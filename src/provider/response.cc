// Upstream responses: usage from bodies and SSE streams, and the error fields the classifier
// matches on. The second of the two TUs that include simdjson.
//
// Upstream JSON is parsed with the DOM, which validates it whole, with one exception: OpenAI chat
// chunks without a usage object, most of a stream, are read on demand (ReadChatChunk). A chunk
// keygate may drop (the usage-only chunk) is always read completely and exactly, with the DOM.
#include <algorithm>
#include <cstring>
#include <string>

#include "provider/chat_chunk_shape.h"
#include "provider/classifier_table.h"
#include "provider/dom.h"
#include "provider/json_text.h"
#include "provider/provider.h"

namespace keygate::provider {
namespace {

using internal::Field;
using internal::IntField;
using internal::IsObject;
using internal::StringField;
using Element = simdjson::dom::element;

int64_t NonNegative(std::optional<int64_t> v) { return v ? std::max<int64_t>(0, *v) : 0; }

size_t Chars(std::optional<std::string_view> s) { return s ? internal::CountCodePoints(*s) : 0; }

// The value of the first member named `name` of the object at data[object_at]: the one the DOM
// lookups find.
Span FirstMember(std::string_view data, size_t object_at, std::string_view name) {
  Span found;
  internal::ForEachMember(data, object_at, [&](std::string_view key, Span value) {
    if (!found.present() && internal::JsonStringEquals(key, name)) found = value;
  });
  return found;
}

}  // namespace

namespace internal {

// Read on demand, without building the DOM: 20 of a stream's 22 chunks carry only a few
// characters, and the DOM built every field of each (micro_bench SseUsageFilter). As with the DOM
// lookups, the first of duplicate keys counts. A chunk with a usage object is read again with the
// DOM, which validates it whole before its usage is taken or the chunk dropped.
ChatChunk ReadChatChunk(std::string_view data) {
  namespace od = simdjson::ondemand;
  using simdjson::SUCCESS;
  ChatChunk out;
  internal::OnDemandParser parser(data.size());
  od::document doc;
  od::object root;
  if (parser.Iterate(data, doc) != SUCCESS || doc.get_object().get(root) != SUCCESS) return out;
  // The characters of a string value; false when the value is malformed.
  auto add_chars = [&](od::value v) {
    std::string_view text;
    auto type = v.type();
    if (type.error() != SUCCESS) return false;
    if (type.value_unsafe() != od::json_type::string) return true;
    // Where the body starts (the token is peeked, not consumed), for ChatChunkShape.
    const size_t at = v.raw_json_token().data() + 1 - parser.data();
    if (v.get_string().get(text) != SUCCESS) return false;
    out.AddCounted(at);
    out.output_chars += internal::CountCodePoints(text);
    return true;
  };
  // Calls fn(key, value) for each member of `obj` whose key is in `keys`, the first of each only.
  auto members = [](od::object obj, std::initializer_list<std::string_view> keys, auto&& fn) {
    uint32_t seen = 0;
    for (auto field : obj) {
      std::string_view key;
      if (field.unescaped_key().get(key) != SUCCESS) return false;
      uint32_t bit = 1;
      for (std::string_view k : keys) {
        if (key == k && (seen & bit) == 0) {
          seen |= bit;
          if (!fn(k, field.value())) return false;
          break;
        }
        bit <<= 1;
      }
    }
    return true;
  };
  // Each choice's delta: {"content", "reasoning_content", "tool_calls": [{"function":
  // {"arguments"}}]}.
  auto read_delta = [&](od::value v) {
    od::object delta;
    if (v.get_object().get(delta) != SUCCESS) return true;  // not an object: nothing to count
    return members(delta, {"content", "reasoning_content", "tool_calls"},
                   [&](std::string_view key, od::value field) {
                     if (key != "tool_calls") return add_chars(field);
                     od::array calls;
                     if (field.get_array().get(calls) != SUCCESS) return true;
                     for (auto call : calls) {
                       od::object c;
                       if (call.get_object().get(c) != SUCCESS) continue;
                       bool ok = members(c, {"function"}, [&](std::string_view, od::value fn) {
                         od::object f;
                         if (fn.get_object().get(f) != SUCCESS) return true;
                         return members(f, {"arguments"},
                                        [&](std::string_view, od::value a) { return add_chars(a); });
                       });
                       if (!ok) return false;
                     }
                     return true;
                   });
  };
  bool ok = members(root, {"usage", "choices"}, [&](std::string_view key, od::value v) {
    if (key == "usage") {
      auto type = v.type();
      out.has_usage = type.error() == SUCCESS && type.value_unsafe() == od::json_type::object;
      return true;
    }
    od::array choices;
    if (v.get_array().get(choices) != SUCCESS) return false;
    for (auto choice : choices) {
      od::object c;
      if (choice.get_object().get(c) != SUCCESS) continue;
      auto read_choice = [&](std::string_view key, od::value v) {
        if (key == "delta") return read_delta(v);
        auto type = v.type();  // finish_reason: a string ends the choice
        if (type.error() == SUCCESS && type.value_unsafe() == od::json_type::string) {
          out.finishes = true;
        }
        return true;
      };
      if (!members(c, {"delta", "finish_reason"}, read_choice)) return false;
    }
    return true;
  });
  out.valid = ok;
  return out;
}

}  // namespace internal

namespace {

using internal::ChatChunk;
using internal::ReadChatChunk;

// OpenAI usage, either naming: chat/completions/embeddings say prompt_tokens/completion_tokens and
// prompt_tokens_details; Responses says input_tokens/output_tokens and input_tokens_details.
// Both count cached tokens inside the prompt total.
Usage ReadOpenAIUsage(Element u) {
  Usage out;
  std::optional<int64_t> in = IntField(u, "prompt_tokens");
  std::optional<int64_t> o = IntField(u, "completion_tokens");
  std::optional<Element> details = Field(u, "prompt_tokens_details");
  if (!in && !o) {
    in = IntField(u, "input_tokens");
    o = IntField(u, "output_tokens");
    details = Field(u, "input_tokens_details");
  }
  if (!in && !o) return out;
  out.present = true;
  out.input_tokens = NonNegative(in);
  out.output_tokens = NonNegative(o);
  if (IsObject(details)) out.cache_read_tokens = NonNegative(IntField(*details, "cached_tokens"));
  return out;
}

// Anthropic's counts, each only when the object carries it (message_delta may carry only
// output_tokens). Returns false when it carries none.
struct AnthropicCounts {
  std::optional<int64_t> input, output, cache_read, cache_write;
};
AnthropicCounts ReadAnthropicCounts(Element u) {
  AnthropicCounts c;
  c.input = IntField(u, "input_tokens");
  c.output = IntField(u, "output_tokens");
  c.cache_read = IntField(u, "cache_read_input_tokens");
  c.cache_write = IntField(u, "cache_creation_input_tokens");
  return c;
}

Usage AnthropicUsage(int64_t input, int64_t output, int64_t cache_read, int64_t cache_write) {
  Usage u;
  u.present = true;
  u.input_tokens = input + cache_read + cache_write;
  u.output_tokens = output;
  u.cache_read_tokens = cache_read;
  u.cache_write_tokens = cache_write;
  return u;
}

}  // namespace

ErrorFields ReadErrorFields(std::string_view body) {
  ErrorFields f;
  internal::DomParser parser(body.size());
  Element root;
  if (parser.Parse(body, root) != simdjson::SUCCESS || !root.is_object()) return f;
  if (std::optional<Element> err = Field(root, "error")) {
    std::string_view s;
    if (err->get_string().get(s) == simdjson::SUCCESS) {  // {"error": "…"}
      f.message = std::string(s);
      return f;
    }
    if (auto type = StringField(*err, "type")) f.type = std::string(*type);
    if (auto message = StringField(*err, "message")) f.message = std::string(*message);
    if (auto code = StringField(*err, "code")) {
      f.code = std::string(*code);
    } else if (auto n = IntField(*err, "code")) {
      f.code = std::to_string(*n);
    }
    return f;
  }
  // FastAPI-style {"detail": "…"} or {"detail": {"error": "…"}}, and a bare {"message": "…"}.
  if (std::optional<Element> detail = Field(root, "detail")) {
    std::string_view s;
    if (detail->get_string().get(s) == simdjson::SUCCESS) {
      f.message = std::string(s);
    } else if (auto inner = StringField(*detail, "error")) {
      f.message = std::string(*inner);
    } else if (auto inner_message = StringField(*detail, "message")) {
      f.message = std::string(*inner_message);
    }
    return f;
  }
  if (auto message = StringField(root, "message")) f.message = std::string(*message);
  return f;
}


Usage ParseResponseUsage(Format format, std::string_view body) {
  internal::DomParser parser(body.size());
  Element root;
  if (parser.Parse(body, root) != simdjson::SUCCESS) return {};
  std::optional<Element> u = Field(root, "usage");
  if (!IsObject(u)) return {};
  if (format == Format::kAnthropicMessages) {
    AnthropicCounts c = ReadAnthropicCounts(*u);
    if (!c.input && !c.output) return {};
    return AnthropicUsage(NonNegative(c.input), NonNegative(c.output), NonNegative(c.cache_read),
                          NonNegative(c.cache_write));
  }
  return ReadOpenAIUsage(*u);
}

// ---------------------------------------------------------------- SseSplitter

size_t SseSplitter::FindBoundary(size_t pos) {
  std::string_view s = pending_;
  while (pos < s.size()) {
    if (scan_ == ScanState::kInLine) {
      // Inside a line only LF matters: jump to it.
      const void* lf = std::memchr(s.data() + pos, '\n', s.size() - pos);
      if (lf == nullptr) return std::string_view::npos;
      pos = static_cast<const char*>(lf) - s.data() + 1;
      scan_ = ScanState::kLineStart;
      continue;
    }
    const char c = s[pos++];
    if (c == '\n') {  // an empty line: LF LF, or LF CR LF
      scan_ = ScanState::kLineStart;
      return pos;
    }
    scan_ = (c == '\r' && scan_ == ScanState::kLineStart) ? ScanState::kLineStartCr
                                                          : ScanState::kInLine;
  }
  return std::string_view::npos;
}

void SseSplitter::Append(std::string_view bytes) {
  // Drop what was handed out; what stays is at most max_event_bytes_ (see Next()).
  pending_.erase(0, consumed_);
  scanned_ -= consumed_;
  consumed_ = 0;
  pending_.append(bytes);
}

void SseSplitter::AppendOwned(std::string&& bytes) {
  if (consumed_ < pending_.size()) {  // part of an event is held: it goes first
    Append(std::string_view(bytes));
    return;
  }
  pending_.swap(bytes);
  consumed_ = scanned_ = 0;
}

bool SseSplitter::IsWholeBuffer(std::string_view run) const {
  return !pending_.empty() && run.data() == pending_.data() && run.size() == pending_.size();
}

void SseSplitter::TakeBuffer(std::string& out) {
  out.swap(pending_);
  pending_.clear();
  consumed_ = scanned_ = 0;
}

SseSplitter::Piece SseSplitter::Next(std::string_view& piece, bool& ended) {
  std::string_view all = pending_;
  ended = false;
  if (oversized_) {
    if (consumed_ == all.size()) return Piece::kNone;
    size_t end = FindBoundary(consumed_);
    ended = end != std::string_view::npos;
    if (!ended) end = all.size();
    piece = all.substr(consumed_, end - consumed_);
    consumed_ = scanned_ = end;
    oversized_ = !ended;
    return Piece::kOversized;
  }
  size_t end = FindBoundary(scanned_);
  if (end != std::string_view::npos) {
    piece = all.substr(consumed_, end - consumed_);
    consumed_ = scanned_ = end;
    if (piece.size() <= max_event_bytes_) return Piece::kEvent;
    ended = true;  // longer than the limit, complete in one Append(): the same verdict
    return Piece::kOversized;
  }
  scanned_ = all.size();
  if (all.size() - consumed_ <= max_event_bytes_) return Piece::kNone;
  // This event can only end up longer than the limit: hand it on instead of holding it.
  piece = all.substr(consumed_);
  consumed_ = scanned_ = all.size();
  oversized_ = true;
  return Piece::kOversized;
}

namespace {

// A line of an event without the '\r' of a CRLF line end.
std::string_view WithoutCr(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

// A field's value: what follows the colon at `colon` (npos: none), less the one space the
// format allows after it.
std::string_view FieldValue(std::string_view line, size_t colon) {
  std::string_view value =
      colon == std::string_view::npos ? std::string_view() : line.substr(colon + 1);
  if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  return value;
}

}  // namespace

bool SseEventData(std::string_view event, std::string& storage, std::string_view& data,
                  bool& has_content) {
  // The usual event, one "data:" line and the blank line after it, read without the loop below
  // (which reads it the same way).
  if (event.starts_with("data:")) {
    const size_t lf = event.find('\n');
    const std::string_view after = lf == std::string_view::npos ? "" : event.substr(lf + 1);
    if (after == "\n" || after == "\r\n") {
      has_content = true;
      data = FieldValue(WithoutCr(event.substr(0, lf)), 4);
      return true;
    }
  }
  int data_lines = 0;
  size_t i = 0;
  while (i < event.size()) {
    size_t nl = event.find('\n', i);
    size_t end = nl == std::string_view::npos ? event.size() : nl;
    const std::string_view line = WithoutCr(event.substr(i, end - i));
    i = end + 1;
    if (line.empty()) continue;
    has_content = true;
    if (line.front() == ':') continue;  // a comment
    size_t colon = line.find(':');
    std::string_view field = line.substr(0, colon);
    if (field != "data") continue;
    const std::string_view value = FieldValue(line, colon);
    if (data_lines == 0) {
      data = value;
    } else {
      if (data_lines == 1) storage.assign(data);
      storage.push_back('\n');
      storage.append(value);
      data = storage;
    }
    ++data_lines;
  }
  return data_lines > 0;
}

// ---------------------------------------------------------------- SseUsageFilter

void SseUsageFilter::Feed(std::string_view bytes, std::string& out) {
  splitter_.Append(bytes);
  Drain(out);
}

SseUsageFilter::SseUsageFilter(Format format, bool drop_usage_chunk, size_t max_event_bytes)
    : format_(format), drop_usage_chunk_(drop_usage_chunk), splitter_(max_event_bytes) {}
SseUsageFilter::~SseUsageFilter() = default;
SseUsageFilter::SseUsageFilter(SseUsageFilter&&) noexcept = default;
SseUsageFilter& SseUsageFilter::operator=(SseUsageFilter&&) noexcept = default;

void SseUsageFilter::FeedOwned(std::string&& bytes, std::string& out) {
  splitter_.AppendOwned(std::move(bytes));
  Drain(out);
}

void SseUsageFilter::Drain(std::string& out) {
  // The events passed on lie back to back in the splitter's buffer until one is dropped: each run
  // of them is appended at once, and a buffer passed on whole into an empty `out` is handed over
  // instead of copied (the usual case: a read of whole events, none dropped).
  std::string_view run;
  auto flush = [&] {
    out.append(run);
    run = {};
  };
  std::string_view piece;
  bool ended = false;
  for (;;) {
    SseSplitter::Piece kind = splitter_.Next(piece, ended);
    if (kind == SseSplitter::Piece::kNone) break;
    if (kind == SseSplitter::Piece::kEvent) {
      if (!Keep(piece, /*may_drop=*/true)) {
        flush();
      } else if (run.data() + run.size() == piece.data()) {
        run = std::string_view(run.data(), run.size() + piece.size());
      } else {
        flush();
        run = piece;
      }
    } else {
      // Too long to hold: passed on unparsed (so its usage, if any, is not read).
      flush();
      out.append(piece);
      if (ended) ++events_;
    }
  }
  if (out.empty() && splitter_.IsWholeBuffer(run)) {
    splitter_.TakeBuffer(out);
  } else {
    flush();
  }
}

void SseUsageFilter::Finish(std::string& out) {
  if (splitter_.in_oversized()) {
    ++events_;
  } else if (!splitter_.rest().empty()) {
    if (Keep(splitter_.rest(), /*may_drop=*/false)) out.append(splitter_.rest());
  }
}

bool SseUsageFilter::Keep(std::string_view event, bool may_drop) {
  std::string storage;
  std::string_view data;
  bool has_content = false;
  bool has_data = SseEventData(event, storage, data, has_content);
  if (has_content) ++events_;
  bool drop = has_data && OnData(data);
  return !(drop && may_drop);
}

void SseUsageFilter::LearnAnthropicShape(std::string_view data, std::string_view field,
                                         size_t chars) {
  // The string the DOM lookups read: the first "delta" member's first `field` member.
  const Span delta = FirstMember(data, internal::SkipWs(data, 0), "delta");
  if (!delta.present()) return;
  const Span text = FirstMember(data, delta.begin, field);
  if (!text.present() || data[text.begin] != '"') return;
  ChatChunk chunk;
  chunk.valid = true;
  chunk.output_chars = chars;
  chunk.AddCounted(text.begin + 1);
  // The reader looks at the "type" strings: only the counted one may differ.
  LearnShape(data, chunk, {.strings = false});
}

void SseUsageFilter::LearnResponsesShape(std::string_view data, bool counted, size_t chars) {
  // The strings the DOM lookups read: the first "type" member, compared, and the first "delta"
  // member, when `counted` a string of `chars` characters.
  const size_t root = internal::SkipWs(data, 0);
  const Span type = FirstMember(data, root, "type");
  if (!type.present() || data[type.begin] != '"') return;
  ChatChunk chunk;
  chunk.valid = true;
  chunk.output_chars = chars;
  chunk.fixed = static_cast<uint32_t>(type.begin + 1);
  if (counted) {
    const Span delta = FirstMember(data, root, "delta");
    if (!delta.present() || data[delta.begin] != '"') return;
    chunk.AddCounted(delta.begin + 1);
  }
  // Other strings (item_id, the obfuscation padding) and the integers (sequence_number, the
  // indexes) are not read.
  LearnShape(data, chunk, {.strings = true, .integers = true});
}

void SseUsageFilter::LearnShape(std::string_view data, const ChatChunk& chunk,
                                internal::MayDiffer may_differ) {
  // A few learns without a match in between (a stream whose chunks each have a shape of their
  // own) and the stream is read in full from then on.
  constexpr int kMaxLearnsWithoutMatch = 4;
  if (chunk.finishes) return;  // a choice's last chunk: its shape is not seen again
  if (shape_learns_ == kMaxLearnsWithoutMatch) {
    shape_.reset();
    return;
  }
  ++shape_learns_;
  if (shape_ == nullptr) shape_ = std::make_unique<internal::ChatChunkShape>();
  shape_->Learn(data, chunk, may_differ);
}

void SseUsageFilter::SetAnthropicUsage() {
  usage_ = AnthropicUsage(anthropic_input_, usage_.output_tokens, anthropic_cache_read_,
                          anthropic_cache_write_);
}

bool SseUsageFilter::OnData(std::string_view data) {
  if (data == "[DONE]") {
    saw_done_ = true;
    return false;
  }
  // Cheap pre-check: only objects are of interest ("[DONE]" and pings are not JSON objects).
  size_t first = internal::SkipWs(data, 0);
  if (first >= data.size() || data[first] != '{') return false;
  // Most chunks of a stream differ from the one before only in their content (learned for OpenAI
  // chat, Anthropic and Responses streams).
  if (shape_ != nullptr) {
    if (std::optional<size_t> chars = shape_->Match(data)) {
      output_chars_ += *chars;
      shape_learns_ = 0;
      ++shape_matches_;
      return false;
    }
  }
  if (format_ == Format::kOpenAIChat) {
    ChatChunk chunk = ReadChatChunk(data);
    if (!chunk.valid) return false;
    output_chars_ += chunk.output_chars;
    if (!chunk.has_usage) {
      LearnShape(data, chunk, {.strings = true});
      return false;
    }
  }
  internal::DomParser parser(data.size());
  Element root;
  if (parser.Parse(data, root) != simdjson::SUCCESS || !root.is_object()) return false;

  switch (format_) {
    case Format::kOpenAIChat: {
      // Only chunks with a usage object get here; ReadChatChunk counted their characters.
      std::optional<Element> u = Field(root, "usage");
      if (!IsObject(u)) return false;
      Usage read = ReadOpenAIUsage(*u);
      if (read.present) usage_ = read;
      // Only the usage-only chunk that include_usage adds: no choices, a usage object.
      simdjson::dom::array choices;
      std::optional<Element> c = Field(root, "choices");
      if (!c || c->get_array().get(choices) != simdjson::SUCCESS) return false;
      return drop_usage_chunk_ && choices.size() == 0;
    }
    case Format::kAnthropicMessages: {
      std::optional<std::string_view> type = StringField(root, "type");
      if (!type) return false;
      std::optional<Element> u;
      if (*type == "message_start") {
        if (auto message = Field(root, "message")) u = Field(*message, "usage");
      } else if (*type == "message_delta") {
        u = Field(root, "usage");
      } else if (*type == "message_stop") {
        saw_done_ = true;
      } else if (*type == "content_block_delta") {
        if (std::optional<Element> delta = Field(root, "delta")) {
          std::optional<std::string_view> dt = StringField(*delta, "type");
          std::string_view field;
          if (dt == "text_delta") field = "text";
          if (dt == "input_json_delta") field = "partial_json";
          if (dt == "thinking_delta") field = "thinking";
          std::optional<std::string_view> text;
          if (!field.empty()) text = StringField(*delta, field);
          if (text) {
            const size_t chars = internal::CountCodePoints(*text);
            output_chars_ += chars;
            LearnAnthropicShape(data, field, chars);
          }
        }
      }
      if (IsObject(u)) {
        // Counts are cumulative: each one present replaces the earlier value.
        AnthropicCounts c = ReadAnthropicCounts(*u);
        if (c.input || c.output || c.cache_read || c.cache_write) {
          if (c.input) anthropic_input_ = NonNegative(c.input);
          if (c.cache_read) anthropic_cache_read_ = NonNegative(c.cache_read);
          if (c.cache_write) anthropic_cache_write_ = NonNegative(c.cache_write);
          if (c.output) usage_.output_tokens = NonNegative(c.output);
          SetAnthropicUsage();
        }
      }
      return false;
    }
    case Format::kOpenAIResponses: {
      std::optional<std::string_view> type = StringField(root, "type");
      if (!type) return false;
      if (*type == "response.completed" || *type == "response.incomplete" ||
          *type == "response.failed") {
        saw_done_ = true;
        if (auto response = Field(root, "response")) {
          std::optional<Element> u = Field(*response, "usage");
          if (IsObject(u)) {
            Usage read = ReadOpenAIUsage(*u);
            if (read.present) usage_ = read;
          }
        }
      } else if (type->ends_with(".delta")) {
        // The events of a stream's bulk, learned to match the next ones: text and call arguments
        // are counted; the rest (reasoning summaries, refusals, audio) are read for nothing.
        const bool counted = *type == "response.output_text.delta" ||
                             *type == "response.function_call_arguments.delta";
        const size_t chars = counted ? Chars(StringField(root, "delta")) : 0;
        output_chars_ += chars;
        LearnResponsesShape(data, counted, chars);
      }
      return false;
    }
  }
  return false;
}

}  // namespace keygate::provider
