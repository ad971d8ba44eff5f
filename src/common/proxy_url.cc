#include "common/proxy_url.h"

#include <boost/url/encode.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/rfc/unreserved_chars.hpp>
#include <boost/url/url_view.hpp>

#include "common/strings.h"

namespace keygate {

namespace {

std::string EncodeUserinfoPart(std::string_view s) {
  return boost::urls::encode(s, boost::urls::unreserved_chars);
}

std::string HostForUrl(const std::string& host) {
  return host.find(':') != std::string::npos ? "[" + host + "]" : host;
}

}  // namespace

std::string ProxyUrl::DisplayUrl() const {
  std::string out = scheme + "://";
  if (!username.empty()) out += EncodeUserinfoPart(username) + "@";
  out += HostForUrl(host) + ":" + std::to_string(port);
  return out;
}

std::string ProxyUrl::FullUrl() const {
  std::string out = scheme + "://";
  if (!username.empty() || !password.empty()) {
    out += EncodeUserinfoPart(username);
    if (!password.empty()) out += ":" + EncodeUserinfoPart(password);
    out += "@";
  }
  out += HostForUrl(host) + ":" + std::to_string(port);
  return out;
}

StatusOr<ProxyUrl> ParseProxyUrl(std::string_view url) {
  auto parsed = boost::urls::parse_absolute_uri(Trim(url));
  if (!parsed) return InvalidArgumentError("proxy URL is not a valid absolute URL");
  const boost::urls::url_view& u = *parsed;
  ProxyUrl out;
  out.scheme = ToLower(std::string_view(u.scheme()));
  uint16_t default_port = 0;
  if (out.scheme == "http") {
    default_port = 80;
  } else if (out.scheme == "https") {
    default_port = 443;
  } else if (out.scheme == "socks5" || out.scheme == "socks5h") {
    default_port = 1080;
  } else {
    return InvalidArgumentError("proxy URL scheme '" + out.scheme +
                                "' is not one of http, https, socks5, socks5h");
  }
  if (!u.has_authority() || u.encoded_host().empty()) {
    return InvalidArgumentError("proxy URL has no host");
  }
  if (u.host_type() == boost::urls::host_type::ipv6) {
    out.host = u.host_address();
  } else {
    out.host = u.host();
  }
  if (u.has_port()) {
    auto p = ParseInt64(std::string_view(u.port()));
    if (!p || *p <= 0 || *p > 65535) return InvalidArgumentError("proxy URL has a bad port");
    out.port = static_cast<uint16_t>(*p);
  } else {
    out.port = default_port;
  }
  if (!u.encoded_path().empty() && u.encoded_path() != "/") {
    return InvalidArgumentError("proxy URL must not have a path");
  }
  if (u.has_query() || u.has_fragment()) {
    return InvalidArgumentError("proxy URL must not have a query or fragment");
  }
  if (u.has_userinfo()) {
    out.username = u.user();
    out.password = u.password();
  }
  return out;
}

}  // namespace keygate
