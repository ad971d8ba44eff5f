// Internal to provider/: small helpers over JSON *text* (no DOM): writing string literals, and a
// scanner that finds the byte spans of members and values in text that a validating parser has
// already accepted. Nothing here allocates except AppendJsonString and DecodeJsonString.
//
// Thread safety: pure functions.
#ifndef KEYGATE_PROVIDER_JSON_TEXT_H_
#define KEYGATE_PROVIDER_JSON_TEXT_H_

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "provider/provider.h"

namespace keygate::provider::internal {

// Appends `s` as a JSON string literal, quotes included. Escapes '"', '\\' and every control
// character below 0x20; passes valid UTF-8 through unchanged and replaces each byte of an invalid
// UTF-8 sequence with U+FFFD, so the output is always valid JSON in valid UTF-8.
void AppendJsonString(std::string& out, std::string_view s);

// Length of the valid UTF-8 sequence starting at s[i] (i < s.size()), or 0 when it is invalid
// (overlong forms, surrogates and code points above U+10FFFF are invalid, as in RFC 3629).
size_t ValidUtf8Length(std::string_view s, size_t i);

// Unicode code points in `utf8` (bytes that are not continuation bytes); for estimates.
size_t CountCodePoints(std::string_view utf8);

// ---- scanner. Preconditions: `s` is valid JSON text (checked before by a validating parser).
// Every function is bounds-checked anyway and returns s.size() when the text ends early, so a
// broken precondition yields wrong spans, never an out-of-bounds read.

// Index of the first non-whitespace byte at or after `i`.
size_t SkipWs(std::string_view s, size_t i);
// s[i] is '"': the index just after the closing quote.
size_t SkipString(std::string_view s, size_t i);
// s[i] starts a value: the index just after it.
size_t SkipValue(std::string_view s, size_t i);

// Visits the members of the object that starts at s[i] == '{'. For each member calls
// fn(key_token, value_span) where key_token is the raw string token (quotes included, escapes not
// decoded). Returns the index of the object's closing '}' (s.size() if malformed).
template <typename Fn>
size_t ForEachMember(std::string_view s, size_t i, Fn&& fn) {
  if (i >= s.size() || s[i] != '{') return s.size();
  i = SkipWs(s, i + 1);
  if (i < s.size() && s[i] == '}') return i;
  while (i < s.size()) {
    if (s[i] != '"') return s.size();
    size_t key_end = SkipString(s, i);
    std::string_view key = s.substr(i, key_end - i);
    i = SkipWs(s, key_end);
    if (i >= s.size() || s[i] != ':') return s.size();
    i = SkipWs(s, i + 1);
    size_t value_end = SkipValue(s, i);
    fn(key, Span{i, value_end});
    i = SkipWs(s, value_end);
    if (i >= s.size()) return s.size();
    if (s[i] == '}') return i;
    if (s[i] != ',') return s.size();
    i = SkipWs(s, i + 1);
  }
  return s.size();
}

// Decodes a JSON string token (quotes included) into UTF-8. nullopt if it is not a well-formed
// token. A lone surrogate escape decodes to U+FFFD.
std::optional<std::string> DecodeJsonString(std::string_view token);

// True when the string token (quotes included) decodes to exactly `plain`. Fast when the token has
// no escapes (the usual case); decodes otherwise, so "mod\u0065l" equals "model".
bool JsonStringEquals(std::string_view token, std::string_view plain);

}  // namespace keygate::provider::internal

#endif  // KEYGATE_PROVIDER_JSON_TEXT_H_
