#include "http/request_parser.h"

#include <tuple>

#include "common/plain_http.h"
#include "common/strings.h"

namespace keygate::http {

namespace {

// Fields a Beast parse reserves room for: one allocation instead of a growth per doubling.
constexpr size_t kUsualFields = 16;

}  // namespace

std::optional<WholeRequest> TakeWholeRequest(std::string_view data, size_t max_head,
                                             uint64_t max_body, Request& req) {
  plain_http::Message m;
  if (!plain_http::TakeRequest(data, max_head, max_body, m)) return std::nullopt;
  req.method.assign(m.method);
  req.target.assign(m.target);
  // Assigned into the fields a reused Request holds: their strings keep their room.
  req.headers.resize(m.field_count);
  for (size_t i = 0; i < m.field_count; ++i) {
    const plain_http::Field& f = m.fields[i];
    auto& [name, value] = req.headers[i];
    name.assign(f.name_data, f.name_size);
    ToLowerInPlace(name);
    value.assign(f.value_data, f.value_size);
  }
  req.body.assign(m.body);
  return WholeRequest{m.size, m.keep_alive};
}

void RequestParser::on_request_impl(boost::beast::http::verb, string_view method,
                                    string_view target, int, error_code&) {
  req_.method.assign(method.data(), method.size());
  req_.target.assign(target.data(), target.size());
  req_.headers.clear();  // the Request may hold an earlier request's
  req_.body.clear();
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
