#include "upstream/http_text.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <strings.h>
#include <iterator>

#include "upstream/upstream.h"

namespace keygate::upstream {

std::string_view ResponseHead::Header(std::string_view lower_name) const {
  for (const auto& [name, value] : headers) {
    if (name == lower_name) return value;
  }
  return {};
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
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
  return s.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos;
}

bool IsToken(std::string_view s) {
  if (s.empty()) return false;
  for (unsigned char c : s) {
    if (c <= 32 || c >= 127 || std::strchr("()<>@,;:\\\"/[]?={}", c) != nullptr) return false;
  }
  return true;
}

bool IsDroppedHeader(std::string_view name) {
  static constexpr std::string_view kDropped[] = {
      "host", "content-length", "transfer-encoding", "connection", "keep-alive",
      "proxy-connection", "te", "upgrade", "expect"};
  return std::any_of(std::begin(kDropped), std::end(kDropped), [&](std::string_view dropped) {
    return dropped.size() == name.size() &&
           strncasecmp(dropped.data(), name.data(), name.size()) == 0;
  });
}

}  // namespace keygate::upstream
