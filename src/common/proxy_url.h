// Egress proxy URLs: http://, https://, socks5://, socks5h://, with optional credentials.
//
// Thread safety: pure functions.
#ifndef KEYGATE_COMMON_PROXY_URL_H_
#define KEYGATE_COMMON_PROXY_URL_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace keygate {

struct ProxyUrl {
  std::string scheme;    // "http", "https", "socks5" or "socks5h" (lower case)
  std::string host;      // no brackets for IPv6
  uint16_t port = 0;     // defaulted per scheme when the URL has none (http 80, https 443, socks 1080)
  std::string username;  // percent-decoded; empty when none
  std::string password;  // percent-decoded; empty when none (a secret)

  // "socks5h://user@host:1080": never contains the password.
  std::string DisplayUrl() const;
  // The full URL with percent-encoded credentials, for handing to an HTTP client.
  std::string FullUrl() const;
};

// Parses `url`. InvalidArgument for an unknown scheme, a missing host, a bad port, a path or
// query, or malformed syntax. The error message never repeats the password.
StatusOr<ProxyUrl> ParseProxyUrl(std::string_view url);

}  // namespace keygate

#endif  // KEYGATE_COMMON_PROXY_URL_H_
