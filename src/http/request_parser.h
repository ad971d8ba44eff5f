// Parsing one HTTP/1.1 request from a connection's buffer, two ways:
//
// - TakeWholeRequest: a request whose head and body are in the buffer already and that uses
//   only the plain forms (common/plain_http.h): nearly every request an API client sends, in
//   one pass over the bytes.
// - RequestParser: Beast's parser for everything else (a request arriving in parts, chunked
//   bodies, obs-fold, every malformed request, which it rejects with its own error).
//
// What TakeWholeRequest takes, RequestParser takes too, with the same fields, body and
// keep-alive (tests/http/request_parser_test.cc checks this on mutated requests); what it does
// not take, the server gives to RequestParser from the same bytes. So the server accepts and
// rejects exactly what Beast does.
//
// Thread safety: pure functions; a RequestParser belongs to one request.
#ifndef KEYGATE_HTTP_REQUEST_PARSER_H_
#define KEYGATE_HTTP_REQUEST_PARSER_H_

#include <boost/beast/http/basic_parser.hpp>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "http/server.h"

namespace keygate::http {

struct WholeRequest {
  size_t size = 0;          // bytes of `data` the request took (head and body)
  bool keep_alive = false;  // the connection may carry another request after it
};

// Takes the request at the front of `data` into `req` when it is whole and plain (above), its
// head at most `max_head` bytes and its body at most `max_body`; nullopt otherwise, and then
// `req` is untouched. `req` may hold an earlier request: method, target, fields and body are
// replaced (their strings' room reused); path and remote are the caller's.
std::optional<WholeRequest> TakeWholeRequest(std::string_view data, size_t max_head,
                                             uint64_t max_body, Request& req);

// Beast's parser, writing straight into a Request: method, target, header fields (names
// lower-cased) and body. Beast's request_parser<string_body> built a message first (a node
// allocation per field) that was then copied field by field into the Request.
class RequestParser final : public boost::beast::http::basic_parser<true> {
 public:
  explicit RequestParser(Request& req) : req_(req) {}

 private:
  using string_view = boost::beast::string_view;
  using error_code = boost::system::error_code;

  void on_request_impl(boost::beast::http::verb, string_view method, string_view target, int,
                       error_code&) override;
  void on_response_impl(int, string_view, int, error_code&) override {}
  void on_field_impl(boost::beast::http::field, string_view name, string_view value,
                     error_code&) override;
  void on_header_impl(error_code&) override {}
  void on_body_init_impl(const boost::optional<std::uint64_t>& length, error_code&) override;
  size_t on_body_impl(string_view body, error_code&) override;
  void on_chunk_header_impl(std::uint64_t, string_view, error_code&) override {}
  size_t on_chunk_body_impl(std::uint64_t, string_view body, error_code& ec) override {
    return on_body_impl(body, ec);
  }
  void on_finish_impl(error_code&) override {}

  Request& req_;
};

}  // namespace keygate::http

#endif  // KEYGATE_HTTP_REQUEST_PARSER_H_
