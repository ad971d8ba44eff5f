// Small string helpers shared by every module: masking secrets, hex, trimming, parsing.
//
// Thread safety: pure functions.
#ifndef KEYGATE_COMMON_STRINGS_H_
#define KEYGATE_COMMON_STRINGS_H_

#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace keygate {

// Masks a secret for display: "sk-proj-abc...wxyz" -> "sk-…wxyz". Keeps a short known prefix
// (up to the first '-' within the first 8 characters, e.g. "sk-") and the last 4 characters;
// secrets of 12 characters or fewer show only "…" and the last 2. Never returns the whole secret.
std::string MaskSecret(std::string_view secret);

std::string HexEncode(std::string_view bytes);
// Writes the 2 * bytes.size() lowercase hex digits of `bytes` to `out` (no terminator).
void HexEncodeTo(std::string_view bytes, char* out);
// Returns nullopt unless `hex` is an even-length string of [0-9a-fA-F].
std::optional<std::string> HexDecode(std::string_view hex);
// Decodes a URL path segment: "%XX" becomes the byte 0xXX ('+' stays '+': that rule is the
// query string's). nullopt for a '%' not followed by two hex digits.
std::optional<std::string> PercentDecode(std::string_view s);

// A set of bytes answered by one table look-up. For the hot paths that scan text for a few
// bytes: std::string_view::find_first_of(const char*) calls memchr over the set once per byte
// of the text (a tenth of the gateway's instructions per request went there; bench/).
class ByteSet {
 public:
  constexpr explicit ByteSet(std::string_view members) {
    for (char c : members) member_[static_cast<unsigned char>(c)] = true;
  }
  constexpr bool Has(char c) const { return member_[static_cast<unsigned char>(c)]; }
  // Whether any byte of `s` is in the set.
  constexpr bool AnyIn(std::string_view s) const { return Find(s) != std::string_view::npos; }
  // Whether every byte of `s` is (true for an empty `s`).
  constexpr bool AllIn(std::string_view s) const {
    for (char c : s) {
      if (!Has(c)) return false;
    }
    return true;
  }
  // The index of the first byte of `s` in the set, or npos (find_first_of without a memchr
  // per byte).
  constexpr size_t Find(std::string_view s) const {
    for (size_t i = 0; i < s.size(); ++i) {
      if (Has(s[i])) return i;
    }
    return std::string_view::npos;
  }

 private:
  // A byte per member, not a bit: the look-up is one load, with no shift and mask per byte.
  bool member_[256] = {};
};

std::string_view Trim(std::string_view s);
std::vector<std::string_view> Split(std::string_view s, char sep);
std::string ToLower(std::string_view s);
// Lower-cases the ASCII capitals of `s` where it is.
void ToLowerInPlace(std::string& s);
namespace internal {
// The `n` bytes at `a` and at `b` are equal but for the case of ASCII letters.
bool SameIgnoringCase(const char* a, const char* b, size_t n);
}  // namespace internal
// Whether `a` and `b` are equal but for the case of ASCII letters (header names, tokens). The
// size check is inline: most comparisons (a name against a list) end there.
inline bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && internal::SameIgnoringCase(a.data(), b.data(), a.size());
}
// Appends the pieces in order with one growth of `out` and a copy per piece: for the HTTP heads
// written on every request, where a chain of append calls checks the capacity and calls into
// the library once per piece ("name", ": ", "value", "\r\n" per header line).
inline void AppendPieces(std::string& out, std::initializer_list<std::string_view> pieces) {
  size_t n = 0;
  for (std::string_view p : pieces) n += p.size();
  const size_t at = out.size();
  out.resize(at + n);
  char* d = out.data() + at;
  for (std::string_view p : pieces) {
    if (!p.empty()) std::memcpy(d, p.data(), p.size());
    d += p.size();
  }
}
// Parses a whole base-10 integer (optional leading '-'); nullopt on anything else or overflow.
std::optional<int64_t> ParseInt64(std::string_view s);
// Parses a decimal amount of US dollars ("12", "12.5", "0.000001") into integer micro-USD,
// rounding half away from zero beyond the sixth decimal. nullopt on anything else.
std::optional<int64_t> ParseUsdToMicros(std::string_view s);
// Formats micro-USD as dollars with up to 6 decimals, trailing zeros trimmed ("12.5").
std::string FormatMicrosAsUsd(int64_t micros);

// Formats epoch milliseconds as an ISO-8601 UTC timestamp "2026-11-28T01:02:03.004Z".
std::string FormatTimeMs(int64_t epoch_ms);
// Parses an ISO-8601 date "2026-12-31" (UTC midnight) or time "2026-12-31T23:59:59" (or with a
// space for the T), with optional fractional seconds and an optional zone ("Z" or "+02:00"; none
// = UTC), into epoch milliseconds. nullopt on anything else.
std::optional<int64_t> ParseTimeMs(std::string_view s);

}  // namespace keygate

#endif  // KEYGATE_COMMON_STRINGS_H_
