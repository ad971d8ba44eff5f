// HTTP/1.1 messages in their plainest form, read in one pass without Beast: the fast path of the
// inbound server (a client's request, http/request_parser.h) and of the upstream HTTP/1.1 engine
// (an upstream's non-streamed answer, upstream/http1_client.cc).
//
// A message is taken only when it is whole in `data` (head and body) and uses the plain forms:
// CRLF line ends; an upper-case method, or a three-digit status; no control bytes but tabs in
// a reason or field value (none in a target); Content-Length framing (one field, digits only),
// no obs-fold, no Transfer-Encoding or Upgrade, at most one Connection (or Proxy-Connection)
// field saying "close" or "keep-alive". Anything else is declined, and the caller parses the
// same bytes with Beast, which takes the rest of HTTP/1.1 and rejects what is malformed. What is
// taken here Beast takes too, with the same fields, body and keep-alive
// (tests/http/request_parser_test.cc and tests/common/plain_http_test.cc check it on mutated
// messages), so the callers accept and reject exactly what Beast does.
//
// Thread safety: pure functions.
#ifndef KEYGATE_COMMON_PLAIN_HTTP_H_
#define KEYGATE_COMMON_PLAIN_HTTP_H_

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace keygate::plain_http {

struct Field {
  const char* name_data;
  const char* value_data;
  size_t name_size, value_size;
  std::string_view name() const { return {name_data, name_size}; }
  std::string_view value() const { return {value_data, value_size}; }  // without OWS
};

// A message taken from `data`; its views point into `data`.
struct Message {
  static constexpr size_t kMaxFields = 64;  // more go to Beast (it has only the size limit)

  std::string_view method, target;  // a request's
  int status = 0;                   // a response's
  bool http11 = false;              // HTTP/1.1, else HTTP/1.0
  Field fields[kMaxFields];         // the first `field_count`, in order; no initializers: an
  size_t field_count = 0;           // array of them costs nothing until used
  std::string_view body;
  size_t size = 0;          // bytes of `data` the message took (head and body)
  bool keep_alive = false;  // the connection may carry another message after it
};

// A request at the front of `data`, its head at most `max_head` bytes and its body at most
// `max_body` (Beast reports header_limit and body_limit beyond). False: declined, `out` holds
// nothing meaningful.
bool TakeRequest(std::string_view data, size_t max_head, uint64_t max_body, Message& out);

// A response at the front of `data` that has a Content-Length body: a status from 200 to 599
// but 204 and 304, and not the answer to a HEAD request (those have no body, which Beast
// handles). Its head is at most `max_head` bytes.
bool TakeResponse(std::string_view data, size_t max_head, Message& out);

}  // namespace keygate::plain_http

#endif  // KEYGATE_COMMON_PLAIN_HTTP_H_
