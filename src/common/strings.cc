#include "common/strings.h"

#include <array>
#include <charconv>
#include <cmath>
#include <ctime>

namespace keygate {

std::string MaskSecret(std::string_view secret) {
  static constexpr std::string_view kEllipsis = "\xE2\x80\xA6";  // "…"
  if (secret.size() <= 12) {
    std::string out(kEllipsis);
    if (secret.size() >= 6) out += secret.substr(secret.size() - 2);
    return out;
  }
  std::string out;
  size_t dash = secret.substr(0, 8).find('-');
  if (dash != std::string_view::npos) out += secret.substr(0, dash + 1);
  out += kEllipsis;
  out += secret.substr(secret.size() - 4);
  return out;
}

void HexEncodeTo(std::string_view bytes, char* out) {
  static constexpr char kDigits[] = "0123456789abcdef";
  for (unsigned char c : bytes) {
    *out++ = kDigits[c >> 4];
    *out++ = kDigits[c & 0xF];
  }
}

std::string HexEncode(std::string_view bytes) {
  std::string out(bytes.size() * 2, '\0');
  HexEncodeTo(bytes, out.data());
  return out;
}

static int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<std::string> HexDecode(std::string_view hex) {
  if (hex.size() % 2 != 0) return std::nullopt;
  std::string out;
  out.reserve(hex.size() / 2);
  for (size_t i = 0; i < hex.size(); i += 2) {
    int hi = HexValue(hex[i]), lo = HexValue(hex[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += static_cast<char>((hi << 4) | lo);
  }
  return out;
}

std::optional<std::string> PercentDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    if (i + 2 >= s.size()) return std::nullopt;
    int hi = HexValue(s[i + 1]), lo = HexValue(s[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += static_cast<char>((hi << 4) | lo);
    i += 2;
  }
  return out;
}

std::string_view Trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && (s[b] == ' ' || s[b] == '\t' || s[b] == '\r' || s[b] == '\n')) ++b;
  while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t' || s[e - 1] == '\r' || s[e - 1] == '\n')) --e;
  return s.substr(b, e - b);
}

std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    size_t pos = s.find(sep, start);
    if (pos == std::string_view::npos) {
      out.push_back(s.substr(start));
      return out;
    }
    out.push_back(s.substr(start, pos - start));
    start = pos + 1;
  }
}

std::string ToLower(std::string_view s) {
  std::string out(s);
  ToLowerInPlace(out);
  return out;
}

namespace {

// Each byte's lower case (ASCII capitals only). A table look-up per byte: no branch, and no
// vector loop, whose set-up costs more than a header name (a dozen bytes, lowered for every
// field of every request) takes to lower.
constexpr auto kLower = [] {
  std::array<char, 256> t{};
  for (int i = 0; i < 256; ++i) t[i] = static_cast<char>(i >= 'A' && i <= 'Z' ? i + 32 : i);
  return t;
}();

char Lower(char c) { return kLower[static_cast<unsigned char>(c)]; }

}  // namespace

void ToLowerInPlace(std::string& s) {
  for (char& c : s) c = Lower(c);
}

namespace internal {

bool SameIgnoringCase(const char* a, const char* b, size_t n) {
  // Not strncasecmp: it stops at a NUL byte, so "a\0b" would equal "a\0c".
  for (size_t i = 0; i < n; ++i) {
    if (Lower(a[i]) != Lower(b[i])) return false;
  }
  return true;
}

}  // namespace internal

std::optional<int64_t> ParseInt64(std::string_view s) {
  if (s.empty()) return std::nullopt;
  int64_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size()) return std::nullopt;
  return v;
}

std::optional<int64_t> ParseUsdToMicros(std::string_view s) {
  s = Trim(s);
  if (!s.empty() && s.front() == '$') s.remove_prefix(1);
  if (s.empty()) return std::nullopt;
  bool negative = false;
  if (s.front() == '-') {
    negative = true;
    s.remove_prefix(1);
  }
  size_t dot = s.find('.');
  std::string_view whole = s.substr(0, dot);
  std::string_view frac = dot == std::string_view::npos ? std::string_view() : s.substr(dot + 1);
  if (whole.empty() && frac.empty()) return std::nullopt;
  for (char c : whole) if (c < '0' || c > '9') return std::nullopt;
  for (char c : frac) if (c < '0' || c > '9') return std::nullopt;
  if (dot != std::string_view::npos && frac.empty()) return std::nullopt;
  int64_t w = 0;
  if (!whole.empty()) {
    auto w_opt = ParseInt64(whole);
    if (!w_opt || *w_opt > 9'000'000'000'000) return std::nullopt;
    w = *w_opt;
  }
  int64_t micros = 0;
  for (size_t i = 0; i < 6; ++i) micros = micros * 10 + (i < frac.size() ? frac[i] - '0' : 0);
  if (frac.size() > 6 && frac[6] >= '5') ++micros;  // half away from zero
  int64_t total = w * 1'000'000 + micros;
  return negative ? -total : total;
}

std::string FormatMicrosAsUsd(int64_t micros) {
  bool negative = micros < 0;
  uint64_t m = negative ? -static_cast<uint64_t>(micros) : static_cast<uint64_t>(micros);
  std::string out = negative ? "-" : "";
  out += std::to_string(m / 1'000'000);
  uint64_t frac = m % 1'000'000;
  if (frac != 0) {
    std::string f = std::to_string(frac);
    f.insert(0, 6 - f.size(), '0');
    while (!f.empty() && f.back() == '0') f.pop_back();
    out += '.';
    out += f;
  }
  return out;
}

std::string FormatTimeMs(int64_t epoch_ms) {
  std::time_t secs = static_cast<std::time_t>(epoch_ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[96];  // generous: the compiler cannot prove the fields' ranges
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(epoch_ms % 1000));
  return buf;
}

namespace {
// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
int64_t DaysFromCivil(int64_t y, int64_t m, int64_t d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

std::optional<int64_t> Digits(std::string_view s, size_t pos, size_t n) {
  if (pos + n > s.size()) return std::nullopt;
  int64_t v = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return std::nullopt;
    v = v * 10 + (s[i] - '0');
  }
  return v;
}
}  // namespace

std::optional<int64_t> ParseTimeMs(std::string_view s) {
  auto y = Digits(s, 0, 4), mo = Digits(s, 5, 2), d = Digits(s, 8, 2);
  if (!y || !mo || !d || s[4] != '-' || s[7] != '-') return std::nullopt;
  if (*mo < 1 || *mo > 12 || *d < 1 || *d > 31) return std::nullopt;
  int64_t ms = DaysFromCivil(*y, *mo, *d) * 86'400'000;
  if (s.size() == 10) return ms;
  if (s[10] != 'T' && s[10] != ' ') return std::nullopt;
  auto h = Digits(s, 11, 2), mi = Digits(s, 14, 2), sec = Digits(s, 17, 2);
  if (!h || !mi || !sec || s[13] != ':' || s[16] != ':') return std::nullopt;
  if (*h > 23 || *mi > 59 || *sec > 60) return std::nullopt;
  ms += ((*h * 60 + *mi) * 60 + *sec) * 1000;
  size_t pos = 19;
  if (pos < s.size() && s[pos] == '.') {
    int64_t frac = 0, scale = 100;
    const size_t start = ++pos;
    for (; pos < s.size() && s[pos] >= '0' && s[pos] <= '9'; ++pos) {
      frac += (s[pos] - '0') * scale;
      scale /= 10;
    }
    if (pos == start) return std::nullopt;
    ms += frac;
  }
  std::string_view zone = s.substr(pos);
  if (zone == "Z" || zone == "z") {
    pos = s.size();
  } else if (zone.size() == 6 && (zone[0] == '+' || zone[0] == '-') && zone[3] == ':') {
    auto oh = Digits(s, pos + 1, 2), om = Digits(s, pos + 4, 2);
    if (!oh || !om) return std::nullopt;
    ms -= (*oh * 60 + *om) * 60'000 * (zone[0] == '-' ? -1 : 1);
    pos = s.size();
  }
  if (pos != s.size()) return std::nullopt;
  return ms;
}

}  // namespace keygate
