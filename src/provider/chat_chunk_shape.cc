#include "provider/chat_chunk_shape.h"

#include <cstdint>
#include <cstring>

#include "provider/json_text.h"

namespace keygate::provider::internal {
namespace {

constexpr size_t kNone = std::string_view::npos;

// The escapes a body may have for Match to count it: each decodes to one character.
constexpr std::array<bool, 256> kOneLetterEscapes = [] {
  std::array<bool, 256> t{};
  for (unsigned char c : std::string_view("\"\\/bfnrt")) t[c] = true;
  return t;
}();

// The string body starting at s[i], up to its closing quote: the quote's index, with the body's
// characters in `chars`; kNone when the body ends early, has a control byte, an escape other than
// the one-letter ones or invalid UTF-8. The JSON parsers accept every body this accepts and
// decode it to `chars` code points.
size_t ScanBody(std::string_view s, size_t i, size_t& chars) {
  constexpr uint64_t kOnes = 0x0101010101010101ULL, kHighs = 0x8080808080808080ULL;
  size_t n = 0;
  while (i < s.size()) {
    // Eight plain bytes at a time (ASCII from 0x20 but '"' and '\\': a character each). The
    // "has less" and "has zero" bit tests are exact for whether any byte of a word is special.
    for (; i + 8 <= s.size(); i += 8, n += 8) {
      uint64_t w;
      std::memcpy(&w, s.data() + i, 8);
      const uint64_t quote = w ^ (kOnes * '"');
      const uint64_t backslash = w ^ (kOnes * '\\');
      const uint64_t special = ((w - kOnes * 0x20) & ~w) | ((quote - kOnes) & ~quote) |
                               ((backslash - kOnes) & ~backslash) | w;
      if ((special & kHighs) != 0) break;
    }
    if (i >= s.size()) break;
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '"') {
      chars = n;
      return i;
    }
    if (c < 0x20) return kNone;
    if (c == '\\') {
      if (i + 1 >= s.size() || !kOneLetterEscapes[static_cast<unsigned char>(s[i + 1])]) {
        return kNone;
      }
      i += 2;
    } else if (c < 0x80) {
      ++i;
    } else {
      const size_t len = ValidUtf8Length(s, i);
      if (len == 0) return kNone;
      i += len;
    }
    ++n;
  }
  return kNone;
}

}  // namespace

void ChatChunkShape::Clear() {
  text_.clear();
  strings_.clear();
}

bool ChatChunkShape::Learn(std::string_view data, const ChatChunk& read, bool strings_may_differ) {
  Clear();
  if (!read.valid || read.has_usage || read.counted_overflow || data.size() > kMaxBytes) {
    return false;
  }
  auto fail = [this] {
    strings_.clear();
    return false;
  };
  strings_.reserve(8);  // a chunk's usual count: id, object, model, fingerprint, content, …
  size_t next_counted = 0;
  size_t counted_chars = 0;
  for (size_t i = 0; i < data.size();) {
    const void* quote = std::memchr(data.data() + i, '"', data.size() - i);
    if (quote == nullptr) break;
    const size_t open = static_cast<const char*>(quote) - data.data();
    i = SkipString(data, open);  // just after the closing quote
    // Unterminated, or the text's last byte: not in a chunk ReadChatChunk took (an object).
    if (i >= data.size()) return fail();
    const size_t begin = open + 1, end = i - 1;
    const size_t after = SkipWs(data, i);
    if (after < data.size() && data[after] == ':') continue;  // a key: compared byte for byte
    String s{.begin = static_cast<uint32_t>(begin),
             .end = static_cast<uint32_t>(end),
             .counted = false,
             .varies = false,
             .chars = 0};
    const bool counted = next_counted < read.counted_size && read.counted[next_counted] == begin;
    if (!counted && !strings_may_differ) continue;  // compared byte for byte, like a key
    if (counted) {
      ++next_counted;
      size_t chars = 0;
      if (ScanBody(data, begin, chars) != end) return fail();  // Match could not count it either
      s.counted = true;
      s.varies = true;  // the content: most chunks have their own
      s.chars = static_cast<uint32_t>(chars);
      counted_chars += chars;
    }
    if (strings_.size() == kMaxStrings) return fail();
    strings_.push_back(s);
  }
  // Every counted string found among the values, with the parser's count.
  if (next_counted != read.counted_size || counted_chars != read.output_chars) return fail();
  text_.assign(data);
  return true;
}

std::optional<size_t> ChatChunkShape::Match(std::string_view data) {
  if (text_.empty()) return std::nullopt;
  if (std::optional<size_t> chars = Walk(data, /*any=*/false)) return chars;
  return Walk(data, /*any=*/true);
}

std::optional<size_t> ChatChunkShape::Walk(std::string_view data, bool any) {
  const std::string_view text = text_;
  size_t at_text = 0;
  size_t at_data = 0;
  size_t chars = 0;
  auto same = [&](size_t len) {  // the next `len` bytes of both are equal
    return data.size() - at_data >= len &&
           std::memcmp(data.data() + at_data, text.data() + at_text, len) == 0;
  };
  for (String& s : strings_) {
    if (!any && !s.varies) continue;           // compared with the bytes around it
    const size_t literal = s.begin - at_text;  // up to the body, its opening quote included
    if (!same(literal)) return std::nullopt;
    at_data += literal;
    at_text = s.begin;
    const size_t body = s.end - s.begin;
    if (same(body) && data.size() - at_data > body && data[at_data + body] == '"') {
      at_data += body;  // the same body
      if (s.counted) chars += s.chars;
    } else {
      size_t body_chars = 0;
      const size_t end = ScanBody(data, at_data, body_chars);
      if (end == kNone) return std::nullopt;
      at_data = end;
      if (s.counted) chars += body_chars;
      s.varies = true;
    }
    at_text = s.end;
  }
  const size_t rest = text.size() - at_text;
  if (data.size() - at_data != rest || !same(rest)) return std::nullopt;
  return chars;
}

}  // namespace keygate::provider::internal
