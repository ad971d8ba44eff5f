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

// The end of the integer token at s[i] (-?(0|[1-9][0-9]*), at most 18 digits: every such token
// is an int64 to every parser), or kNone, also when a fraction or an exponent follows the digits.
size_t IntegerEnd(std::string_view s, size_t i) {
  const size_t first = i + (i < s.size() && s[i] == '-');
  size_t j = first;
  while (j < s.size() && s[j] >= '0' && s[j] <= '9') ++j;
  const size_t digits = j - first;
  if (digits == 0 || digits > 18 || (digits > 1 && s[first] == '0')) return kNone;
  if (j < s.size() && (s[j] == '.' || s[j] == 'e' || s[j] == 'E')) return kNone;
  return j;
}

bool InNumber(char c) {
  return (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E';
}

}  // namespace

void ChatChunkShape::Clear() {
  text_.clear();
  slots_.clear();
}

bool ChatChunkShape::Learn(std::string_view data, const ChatChunk& read, MayDiffer may_differ) {
  Clear();
  if (!read.valid || read.has_usage || read.counted_overflow || data.size() > kMaxBytes) {
    return false;
  }
  auto fail = [this] {
    slots_.clear();
    return false;
  };
  slots_.reserve(8);  // a chunk's usual count: id, object, model, fingerprint, content, …
  auto add = [this](const Slot& slot) {
    if (slots_.size() == kMaxSlots) return false;
    slots_.push_back(slot);
    return true;
  };
  // The integers of data[from, to), text between strings: structure, numbers and literals, so a
  // '-' or a digit starts a number there.
  auto add_integers = [&](size_t from, size_t to) {
    if (!may_differ.integers) return true;
    for (size_t j = from; j < to; ++j) {
      if (data[j] != '-' && (data[j] < '0' || data[j] > '9')) continue;
      size_t end = j;
      while (end < to && InNumber(data[end])) ++end;
      if (IntegerEnd(data, j) == end && !add({.begin = static_cast<uint32_t>(j),
                                              .end = static_cast<uint32_t>(end),
                                              .integer = true,
                                              .counted = false,
                                              .varies = false,
                                              .chars = 0})) {
        return false;
      }
      j = end;
    }
    return true;
  };
  size_t next_counted = 0;
  size_t counted_chars = 0;
  for (size_t i = 0;;) {
    const void* quote = std::memchr(data.data() + i, '"', data.size() - i);
    const size_t open =
        quote == nullptr ? data.size() : static_cast<const char*>(quote) - data.data();
    if (!add_integers(i, open)) return fail();
    if (quote == nullptr) break;
    i = SkipString(data, open);  // just after the closing quote
    // Unterminated, or the text's last byte: not in a chunk ReadChatChunk took (an object).
    if (i >= data.size()) return fail();
    const size_t begin = open + 1, end = i - 1;
    const size_t after = SkipWs(data, i);
    if (after < data.size() && data[after] == ':') continue;  // a key: compared byte for byte
    Slot s{.begin = static_cast<uint32_t>(begin),
           .end = static_cast<uint32_t>(end),
           .integer = false,
           .counted = false,
           .varies = false,
           .chars = 0};
    const bool counted = next_counted < read.counted_size && read.counted[next_counted] == begin;
    // Compared byte for byte, like a key: a string the reader looks at.
    if (!counted && (!may_differ.strings || begin == read.fixed)) continue;
    if (counted) {
      ++next_counted;
      size_t chars = 0;
      if (ScanBody(data, begin, chars) != end) return fail();  // Match could not count it either
      s.counted = true;
      s.varies = true;  // the content: most chunks have their own
      s.chars = static_cast<uint32_t>(chars);
      counted_chars += chars;
    }
    if (!add(s)) return fail();
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
  for (Slot& s : slots_) {
    if (!any && !s.varies) continue;           // compared with the bytes around it
    const size_t literal = s.begin - at_text;  // up to the value (a string's opening quote too)
    if (!same(literal)) return std::nullopt;
    at_data += literal;
    at_text = s.begin;
    const size_t body = s.end - s.begin;
    if (s.integer) {
      const size_t end = IntegerEnd(data, at_data);
      if (end == kNone) return std::nullopt;
      if (end - at_data != body || !same(body)) s.varies = true;
      at_data = end;
    } else if (same(body) && data.size() - at_data > body && data[at_data + body] == '"') {
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
