// HTTP/1.1 text helpers the upstream engines share (internal to upstream/).
#ifndef KEYGATE_UPSTREAM_HTTP_TEXT_H_
#define KEYGATE_UPSTREAM_HTTP_TEXT_H_

#include <span>
#include <string>
#include <string_view>

namespace keygate::upstream {

// Without leading/trailing spaces, tabs, CR and LF.
std::string_view Trim(std::string_view s);
// CR, LF or NUL: a header value holding one could inject a header or end the head.
bool HasControlChars(std::string_view s);
// An RFC 9110 token (method, header name).
bool IsToken(std::string_view s);
// Headers the client owns (framing, hop-by-hop), in any case: dropped from Request::headers.
bool IsDroppedHeader(std::string_view name);
// Whether a response header field `name` (any case) is kept for a request that reads `wanted`
// (Request::response_headers: lower-case names; empty: every field).
bool WantsHeader(std::span<const std::string_view> wanted, std::string_view name);

}  // namespace keygate::upstream

#endif  // KEYGATE_UPSTREAM_HTTP_TEXT_H_
