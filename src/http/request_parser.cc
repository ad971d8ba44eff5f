#include "http/request_parser.h"

#include <strings.h>

#include <cstring>
#include <tuple>

#include "common/strings.h"

namespace keygate::http {

using namespace std::string_view_literals;

namespace {

// RFC 9110 tchar: a field name's bytes.
constexpr ByteSet kTchar(
    "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz");
// Whether `s` holds no control byte but tab (none below 0x20, no DEL): what Beast takes in a
// field value, and in a target with no tab. Eight bytes at a time, the last few padded with
// spaces; a word with a byte below 0x20 is looked at byte by byte (it may be a tab).
bool NoControls(std::string_view s) {
  constexpr uint64_t kOnes = 0x0101010101010101ULL, kHighs = 0x8080808080808080ULL;
  auto word_ok = [](uint64_t w) {
    const uint64_t del = w ^ (kOnes * 0x7F);
    // A byte below 0x20, or a zero byte of `del` (a DEL in `w`): exact for "any" (the
    // bit-twiddling "has less" and "has zero" tests).
    if (((((w - kOnes * 0x20) & ~w) | ((del - kOnes) & ~del)) & kHighs) == 0) return true;
    for (int i = 0; i < 8; ++i, w >>= 8) {
      const auto c = static_cast<unsigned char>(w);
      if ((c < 0x20 && c != '\t') || c == 0x7F) return false;
    }
    return true;
  };
  size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, s.data() + i, 8);
    if (!word_ok(w)) return false;
  }
  if (i == s.size()) return true;
  uint64_t w = kOnes * ' ';
  std::memcpy(&w, s.data() + i, s.size() - i);
  return word_ok(w);
}

// More fields than this go to Beast (which has only the head's size limit).
constexpr size_t kMaxFields = 64;
// Fields a Beast parse reserves room for: one allocation instead of a growth per doubling.
constexpr size_t kUsualFields = 16;

bool IEquals(std::string_view s, std::string_view lower) {
  return s.size() == lower.size() && strncasecmp(s.data(), lower.data(), s.size()) == 0;
}

std::string_view TrimSpaceTab(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

std::optional<WholeRequest> TakeWholeRequest(std::string_view data, size_t max_head,
                                             uint64_t max_body, Request& req) {
  // Line by line, each ended by a CR that must be followed by its LF; an empty line ends the
  // head, within max_head bytes (Beast reports header_limit otherwise). A bare LF inside a line
  // is a control byte, and declined with the others.
  const std::string_view room = data.substr(0, max_head);
  size_t p = 0;
  auto next_line = [&](std::string_view& line) {
    const size_t cr = room.find('\r', p);
    if (cr == std::string_view::npos || cr + 1 == room.size() || room[cr + 1] != '\n') {
      return false;
    }
    line = room.substr(p, cr - p);
    p = cr + 2;
    return true;
  };

  // request-line = method SP request-target SP HTTP-version CRLF
  std::string_view line;
  if (!next_line(line)) return std::nullopt;
  size_t sp = 0;
  while (sp < line.size() && line[sp] >= 'A' && line[sp] <= 'Z') ++sp;
  if (sp == 0 || sp == line.size() || line[sp] != ' ') return std::nullopt;
  const std::string_view method = line.substr(0, sp);
  const size_t target_end = line.find(' ', sp + 1);
  if (target_end == std::string_view::npos || target_end == sp + 1) return std::nullopt;
  const std::string_view target = line.substr(sp + 1, target_end - sp - 1);
  if (!NoControls(target) || target.find('\t') != std::string_view::npos) return std::nullopt;
  const std::string_view version = line.substr(target_end + 1);
  bool http11;
  if (version == "HTTP/1.1"sv) {
    http11 = true;
  } else if (version == "HTTP/1.0"sv) {
    http11 = false;
  } else {
    return std::nullopt;
  }

  struct Field {  // no initializers: an array of them costs nothing until used
    const char* name;
    const char* value;
    size_t name_size, value_size;
  };
  Field fields[kMaxFields];
  size_t count = 0;
  std::optional<uint64_t> length;
  bool connection = false, close = false, keep_alive = false;
  while (true) {
    if (!next_line(line)) return std::nullopt;
    if (line.empty()) break;  // the end of the head
    if (count == kMaxFields) return std::nullopt;
    // header-field = field-name ":" OWS field-value OWS. A name is one or more tchar: a line
    // that starts with a space or tab (obs-fold, the previous value continued) is declined.
    size_t colon = 0;
    while (colon < line.size() && kTchar.Has(line[colon])) ++colon;
    if (colon == 0 || colon == line.size() || line[colon] != ':') return std::nullopt;
    const std::string_view name = line.substr(0, colon);
    std::string_view value = line.substr(colon + 1);
    if (!NoControls(value)) return std::nullopt;
    value = TrimSpaceTab(value);
    fields[count++] = {name.data(), value.data(), name.size(), value.size()};
    // The fields that frame the message or the connection: only their plainest forms.
    if (IEquals(name, "content-length")) {
      if (length || value.empty() || value.size() > 18) return std::nullopt;
      uint64_t n = 0;
      for (char c : value) {
        if (c < '0' || c > '9') return std::nullopt;
        n = n * 10 + static_cast<uint64_t>(c - '0');
      }
      length = n;
    } else if (IEquals(name, "transfer-encoding") || IEquals(name, "upgrade")) {
      return std::nullopt;
    } else if (IEquals(name, "connection") || IEquals(name, "proxy-connection")) {
      if (connection) return std::nullopt;
      connection = true;
      if (IEquals(value, "close")) {
        close = true;
      } else if (IEquals(value, "keep-alive")) {
        keep_alive = true;
      } else {
        return std::nullopt;
      }
    }
  }
  const size_t head_size = p;
  const uint64_t body_size = length.value_or(0);
  if (body_size > max_body || data.size() - head_size < body_size) return std::nullopt;

  req.method.assign(method);
  req.target.assign(target);
  req.headers.clear();
  req.headers.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    const Field& f = fields[i];
    ToLowerInPlace(req.headers
                       .emplace_back(std::piecewise_construct,
                                     std::forward_as_tuple(f.name, f.name_size),
                                     std::forward_as_tuple(f.value, f.value_size))
                       .first);
  }
  req.body.assign(data.substr(head_size, static_cast<size_t>(body_size)));
  return WholeRequest{head_size + static_cast<size_t>(body_size), http11 ? !close : keep_alive};
}

void RequestParser::on_request_impl(boost::beast::http::verb, string_view method,
                                    string_view target, int, error_code&) {
  req_.method.assign(method.data(), method.size());
  req_.target.assign(target.data(), target.size());
  req_.headers.reserve(kUsualFields);
}

void RequestParser::on_field_impl(boost::beast::http::field, string_view name, string_view value,
                                  error_code&) {
  req_.headers.emplace_back(ToLower(std::string_view(name.data(), name.size())),
                            std::string(value.data(), value.size()));
}

void RequestParser::on_body_init_impl(const boost::optional<std::uint64_t>& length, error_code&) {
  // Within body_limit: the parser refused a larger Content-Length before this.
  if (length) req_.body.reserve(static_cast<size_t>(*length));
}

size_t RequestParser::on_body_impl(string_view body, error_code&) {
  req_.body.append(body.data(), body.size());
  return body.size();
}

}  // namespace keygate::http
