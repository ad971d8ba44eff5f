#include "provider/json_text.h"

#include <cstdint>
#include <cstring>

namespace keygate::provider::internal {
namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

bool IsCont(unsigned char c) { return (c & 0xC0) == 0x80; }

void AppendUtf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

std::optional<uint32_t> Hex4(std::string_view s, size_t i) {
  if (i + 4 > s.size()) return std::nullopt;
  uint32_t v = 0;
  for (size_t k = 0; k < 4; ++k) {
    char c = s[i + k];
    v <<= 4;
    if (c >= '0' && c <= '9')
      v |= c - '0';
    else if (c >= 'a' && c <= 'f')
      v |= c - 'a' + 10;
    else if (c >= 'A' && c <= 'F')
      v |= c - 'A' + 10;
    else
      return std::nullopt;
  }
  return v;
}

}  // namespace

size_t ValidUtf8Length(std::string_view s, size_t i) {
  const unsigned char c = static_cast<unsigned char>(s[i]);
  const size_t left = s.size() - i;
  auto at = [&](size_t k) { return static_cast<unsigned char>(s[i + k]); };
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) return left >= 2 && IsCont(at(1)) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (left < 3 || !IsCont(at(1)) || !IsCont(at(2))) return 0;
    if (c == 0xE0 && at(1) < 0xA0) return 0;  // overlong
    if (c == 0xED && at(1) > 0x9F) return 0;  // UTF-16 surrogates
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (left < 4 || !IsCont(at(1)) || !IsCont(at(2)) || !IsCont(at(3))) return 0;
    if (c == 0xF0 && at(1) < 0x90) return 0;  // overlong
    if (c == 0xF4 && at(1) > 0x8F) return 0;  // above U+10FFFF
    return 4;
  }
  return 0;
}

void AppendJsonString(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.reserve(out.size() + s.size() + 2);
  out.push_back('"');
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      size_t n = ValidUtf8Length(s, i);
      if (n == 0) {
        out.append(kReplacement);
        ++i;
      } else {
        out.append(s.substr(i, n));
        i += n;
      }
      continue;
    }
    switch (c) {
      case '"':
        out.append("\\\"");
        break;
      case '\\':
        out.append("\\\\");
        break;
      case '\n':
        out.append("\\n");
        break;
      case '\r':
        out.append("\\r");
        break;
      case '\t':
        out.append("\\t");
        break;
      case '\b':
        out.append("\\b");
        break;
      case '\f':
        out.append("\\f");
        break;
      default:
        if (c < 0x20) {
          out.append("\\u00");
          out.push_back(kHex[c >> 4]);
          out.push_back(kHex[c & 0xF]);
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
    ++i;
  }
  out.push_back('"');
}

size_t CountCodePoints(std::string_view utf8) {
  // Every byte but the continuation bytes (10xxxxxx, as signed bytes -128..-65) starts a code
  // point. Sixteen bytes at a time with GCC's portable vectors (SSE2 on x86-64, NEON on arm64):
  // a comparison sets a lane to -1 where a continuation byte is, and each lane subtracts its
  // marks for at most 255 rounds before the lanes are added up. The byte loop was a quarter of
  // InspectRequest on a 64 KB prompt.
  using Bytes = int8_t __attribute__((vector_size(16)));
  using Counts = uint8_t __attribute__((vector_size(16)));
  const char* p = utf8.data();
  size_t left = utf8.size(), continuation = 0;
  while (left >= 16) {
    Counts counts{};
    for (int round = 0; round < 255 && left >= 16; ++round, p += 16, left -= 16) {
      Bytes v;
      std::memcpy(&v, p, 16);
      counts -= reinterpret_cast<Counts>(v < -64);
    }
    uint64_t half[2];
    std::memcpy(half, &counts, 16);
    for (uint64_t x : half) {  // the sum of eight byte lanes: pairs into 16-bit lanes, then one
      x = (x & 0x00FF00FF00FF00FFULL) + ((x >> 8) & 0x00FF00FF00FF00FFULL);
      continuation += (x * 0x0001000100010001ULL) >> 48;
    }
  }
  for (; left > 0; ++p, --left) continuation += IsCont(static_cast<unsigned char>(*p));
  return utf8.size() - continuation;
}

size_t SkipWs(std::string_view s, size_t i) {
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) ++i;
  return i;
}

size_t SkipString(std::string_view s, size_t i) {
  ++i;  // the opening quote
  // memchr jumps: strings are most of a request body. The next quote is remembered while it lies
  // ahead, so a long string full of escapes is still scanned once (linear, not quadratic).
  size_t quote = std::string_view::npos;
  while (i < s.size()) {
    if (quote == std::string_view::npos || quote < i) {
      const void* q = std::memchr(s.data() + i, '"', s.size() - i);
      if (q == nullptr) return s.size();
      quote = static_cast<const char*>(q) - s.data();
    }
    const void* b = std::memchr(s.data() + i, '\\', quote - i);
    if (b == nullptr) return quote + 1;
    i = static_cast<const char*>(b) - s.data() + 2;  // skip the backslash and the escaped byte
  }
  return s.size();
}

size_t SkipValue(std::string_view s, size_t i) {
  if (i >= s.size()) return s.size();
  char c = s[i];
  if (c == '"') return SkipString(s, i);
  if (c == '{' || c == '[') {
    int depth = 0;
    while (i < s.size()) {
      char d = s[i];
      if (d == '"') {
        i = SkipString(s, i);
        continue;
      }
      if (d == '{' || d == '[') ++depth;
      if (d == '}' || d == ']') {
        if (--depth == 0) return i + 1;
      }
      ++i;
    }
    return s.size();
  }
  // A number or a literal (true, false, null): runs to the next delimiter.
  while (i < s.size()) {
    c = s[i];
    if (c == ',' || c == '}' || c == ']' || c == ' ' || c == '\t' || c == '\n' || c == '\r') break;
    ++i;
  }
  return i;
}

std::optional<std::string> DecodeJsonString(std::string_view token) {
  if (token.size() < 2 || token.front() != '"' || token.back() != '"') return std::nullopt;
  std::string_view s = token.substr(1, token.size() - 2);
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c != '\\') {
      out.push_back(c);
      continue;
    }
    if (++i >= s.size()) return std::nullopt;
    switch (s[i]) {
      case '"':
        out.push_back('"');
        break;
      case '\\':
        out.push_back('\\');
        break;
      case '/':
        out.push_back('/');
        break;
      case 'b':
        out.push_back('\b');
        break;
      case 'f':
        out.push_back('\f');
        break;
      case 'n':
        out.push_back('\n');
        break;
      case 'r':
        out.push_back('\r');
        break;
      case 't':
        out.push_back('\t');
        break;
      case 'u': {
        std::optional<uint32_t> cp = Hex4(s, i + 1);
        if (!cp) return std::nullopt;
        i += 4;
        if (*cp >= 0xD800 && *cp <= 0xDBFF) {
          // A high surrogate counts only with a low surrogate escape right after it.
          std::optional<uint32_t> lo;
          if (i + 2 < s.size() && s[i + 1] == '\\' && s[i + 2] == 'u') lo = Hex4(s, i + 3);
          if (lo && *lo >= 0xDC00 && *lo <= 0xDFFF) {
            AppendUtf8(out, 0x10000 + ((*cp - 0xD800) << 10) + (*lo - 0xDC00));
            i += 6;
          } else {
            out.append(kReplacement);
          }
        } else if (*cp >= 0xDC00 && *cp <= 0xDFFF) {
          out.append(kReplacement);
        } else {
          AppendUtf8(out, *cp);
        }
        break;
      }
      default:
        return std::nullopt;
    }
  }
  return out;
}

bool JsonStringEquals(std::string_view token, std::string_view plain) {
  if (token.size() < 2) return false;
  std::string_view inner = token.substr(1, token.size() - 2);
  if (inner.find('\\') == std::string_view::npos) return inner == plain;
  std::optional<std::string> decoded = DecodeJsonString(token);
  return decoded && *decoded == plain;
}

}  // namespace keygate::provider::internal
