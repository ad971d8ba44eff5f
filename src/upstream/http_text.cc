#include "upstream/http_text.h"

#include <algorithm>
#include <cstring>

#include "common/strings.h"
#include "upstream/upstream.h"

namespace keygate::upstream {

std::string_view ResponseHead::Header(std::string_view lower_name) const {
  for (const auto& [name, value] : headers) {
    if (name == lower_name) return value;
  }
  return {};
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' ||
                        s.back() == '\n')) {
    s.remove_suffix(1);
  }
  return s;
}

bool HasControlChars(std::string_view s) {
  // memchr per byte sought (three scans), not find_first_of: that one calls memchr over the set
  // for every byte of the value.
  if (s.empty()) return false;
  return std::memchr(s.data(), '\r', s.size()) != nullptr ||
         std::memchr(s.data(), '\n', s.size()) != nullptr ||
         std::memchr(s.data(), '\0', s.size()) != nullptr;
}

bool IsToken(std::string_view s) {
  // RFC 9110 tchar: visible ASCII but the delimiters.
  static constexpr ByteSet kTchar(
      "!#$%&'*+-.^_`|~0123456789"
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz");
  if (s.empty()) return false;
  for (char c : s) {
    if (!kTchar.Has(c)) return false;
  }
  return true;
}

namespace {

// Whether `name` is one of `names`, in any case.
bool NamedIn(std::span<const std::string_view> names, std::string_view name) {
  return std::any_of(names.begin(), names.end(),
                     [&](std::string_view n) { return EqualsIgnoreCase(n, name); });
}

}  // namespace

bool IsDroppedHeader(std::string_view name) {
  static constexpr std::string_view kDropped[] = {
      "host", "content-length", "transfer-encoding", "connection", "keep-alive",
      "proxy-connection", "te", "upgrade", "expect"};
  return NamedIn(kDropped, name);
}

bool WantsHeader(std::span<const std::string_view> wanted, std::string_view name) {
  return wanted.empty() || NamedIn(wanted, name);
}

}  // namespace keygate::upstream
