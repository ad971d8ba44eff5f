#include "common/plain_http.h"

#include <cstring>
#include <optional>

#include "common/strings.h"

namespace keygate::plain_http {

using namespace std::string_view_literals;

namespace {

// RFC 9110 tchar: a field name's bytes.
constexpr ByteSet kTchar(
    "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz");

// Whether `s` holds no control byte but tab (none below 0x20, no DEL): what Beast takes in a
// field value or a reason, and in a target with no tab. Eight bytes at a time, the last few
// padded with spaces; a word with a byte below 0x20 is looked at byte by byte (it may be a tab).
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

// The head, line by line: each ended by a CR that must be followed by its LF, within `room`
// (the data up to the head's size limit). A bare LF inside a line is a control byte, and
// declined with the others where the line's parts are checked.
class Lines {
 public:
  explicit Lines(std::string_view room) : room_(room) {}
  // The next line, without its CRLF; false when there is none whole in the room.
  bool Next(std::string_view& line) {
    const size_t cr = room_.find('\r', at_);
    if (cr == std::string_view::npos || cr + 1 == room_.size() || room_[cr + 1] != '\n') {
      return false;
    }
    line = room_.substr(at_, cr - at_);
    at_ = cr + 2;
    return true;
  }
  size_t at() const { return at_; }  // bytes read so far

 private:
  std::string_view room_;
  size_t at_ = 0;
};

// "HTTP/1.1" or "HTTP/1.0".
bool Version(std::string_view v, bool& http11) {
  if (v == "HTTP/1.1"sv) {
    http11 = true;
  } else if (v == "HTTP/1.0"sv) {
    http11 = false;
  } else {
    return false;
  }
  return true;
}

// The field lines up to the empty line that ends the head; then the Content-Length body, whole
// in `data`, and the keep-alive Beast would decide. `length_required`: a message without
// Content-Length is declined (a response would then run to the connection's end).
bool FieldsAndBody(std::string_view data, Lines& lines, uint64_t max_body, bool length_required,
                   Message& out) {
  std::optional<uint64_t> length;
  bool connection = false, close = false, keep_alive = false;
  out.field_count = 0;
  std::string_view line;
  while (true) {
    if (!lines.Next(line)) return false;
    if (line.empty()) break;  // the end of the head
    if (out.field_count == Message::kMaxFields) return false;
    // header-field = field-name ":" OWS field-value OWS. A name is one or more tchar: a line
    // that starts with a space or tab (obs-fold, the previous value continued) is declined.
    size_t colon = 0;
    while (colon < line.size() && kTchar.Has(line[colon])) ++colon;
    if (colon == 0 || colon == line.size() || line[colon] != ':') return false;
    const std::string_view name = line.substr(0, colon);
    std::string_view value = line.substr(colon + 1);
    if (!NoControls(value)) return false;
    value = Trim(value);  // spaces and tabs: NoControls let no CR or LF through
    out.fields[out.field_count++] = {name.data(), value.data(), name.size(), value.size()};
    // The fields that frame the message or the connection: only their plainest forms.
    if (EqualsIgnoreCase(name, "content-length")) {
      if (length || value.empty() || value.size() > 18) return false;
      uint64_t n = 0;
      for (char c : value) {
        if (c < '0' || c > '9') return false;
        n = n * 10 + static_cast<uint64_t>(c - '0');
      }
      length = n;
    } else if (EqualsIgnoreCase(name, "transfer-encoding") || EqualsIgnoreCase(name, "upgrade")) {
      return false;
    } else if (EqualsIgnoreCase(name, "connection") || EqualsIgnoreCase(name, "proxy-connection")) {
      if (connection) return false;
      connection = true;
      if (EqualsIgnoreCase(value, "close")) {
        close = true;
      } else if (EqualsIgnoreCase(value, "keep-alive")) {
        keep_alive = true;
      } else {
        return false;
      }
    }
  }
  if (length_required && !length) return false;
  const size_t head_size = lines.at();
  const uint64_t body_size = length.value_or(0);
  if (body_size > max_body || data.size() - head_size < body_size) return false;
  out.body = data.substr(head_size, static_cast<size_t>(body_size));
  out.size = head_size + static_cast<size_t>(body_size);
  out.keep_alive = out.http11 ? !close : keep_alive;
  return true;
}

}  // namespace

bool TakeRequest(std::string_view data, size_t max_head, uint64_t max_body, Message& out) {
  Lines lines(data.substr(0, max_head));
  // request-line = method SP request-target SP HTTP-version
  std::string_view line;
  if (!lines.Next(line)) return false;
  size_t sp = 0;
  while (sp < line.size() && line[sp] >= 'A' && line[sp] <= 'Z') ++sp;
  if (sp == 0 || sp == line.size() || line[sp] != ' ') return false;
  const size_t target_end = line.find(' ', sp + 1);
  if (target_end == std::string_view::npos || target_end == sp + 1) return false;
  out.method = line.substr(0, sp);
  out.target = line.substr(sp + 1, target_end - sp - 1);
  if (!NoControls(out.target) || out.target.find('\t') != std::string_view::npos) return false;
  if (!Version(line.substr(target_end + 1), out.http11)) return false;
  out.status = 0;
  return FieldsAndBody(data, lines, max_body, /*length_required=*/false, out);
}

bool TakeResponse(std::string_view data, size_t max_head, Message& out) {
  Lines lines(data.substr(0, max_head));
  // status-line = HTTP-version SP status-code SP [ reason-phrase ]
  std::string_view line;
  if (!lines.Next(line) || line.size() < 13 || line[8] != ' ' || line[12] != ' ') return false;
  if (!Version(line.substr(0, 8), out.http11)) return false;
  int status = 0;
  for (char c : line.substr(9, 3)) {
    if (c < '0' || c > '9') return false;
    status = status * 10 + (c - '0');
  }
  if (status < 200 || status > 599 || status == 204 || status == 304) return false;
  if (!NoControls(line.substr(13))) return false;
  out.status = status;
  out.method = out.target = {};
  return FieldsAndBody(data, lines, UINT64_MAX, /*length_required=*/true, out);
}

}  // namespace keygate::plain_http
