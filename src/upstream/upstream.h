// Outbound HTTP for the data plane: libcurl's multi_socket interface driven by one Asio event
// loop. HTTP/1.1 and HTTP/2 (ALPN), TLS with verification, connection reuse per (egress proxy,
// origin), egress through http:// (CONNECT), https://, socks5:// and socks5h:// proxies with
// credentials, connect / first-byte / idle timeouts (never a total one: streams may run for
// hours), and backpressure: a body the caller does not read pauses the transfer.
//
// This module knows no keys and no providers: requests arrive with their headers already set.
//
// Thread safety: a Client and its Exchanges belong to the thread running their io_context;
// create, use and destroy them there only (one CURLM per thread).
#ifndef KEYGATE_UPSTREAM_UPSTREAM_H_
#define KEYGATE_UPSTREAM_UPSTREAM_H_

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace keygate::upstream {

struct Request {
  std::string method = "POST";
  std::string url;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  // "" = direct. Else a full proxy URL with credentials (common/proxy_url.h FullUrl()).
  std::string proxy_url;
  int64_t connect_timeout_ms = 10'000;
  int64_t first_byte_timeout_ms = 120'000;  // from the request being sent to the status line
  int64_t idle_timeout_ms = 300'000;        // between two pieces of the body
  size_t max_buffered_bytes = 256 << 10;    // body bytes held for a slow reader before pausing
};

struct ResponseHead {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased, in order
  // The first value of a header (name lower-case), or "" when absent.
  std::string_view Header(std::string_view lower_name) const;
};

enum class ErrorKind {
  kNone,
  kConnect,    // could not reach the upstream (refused, DNS, unreachable)
  kProxy,      // the egress proxy failed: refused/failed CONNECT, proxy auth, SOCKS errors
  kTls,        // TLS handshake or certificate verification failed
  kTimeout,    // connect, first-byte or idle timeout
  kReset,      // the connection broke after the request was sent
  kCancelled,  // Cancel() was called
  kOther,
};
std::string_view ErrorKindName(ErrorKind kind);

struct Failure {
  ErrorKind kind = ErrorKind::kNone;
  std::string message;   // for logs; never contains proxy credentials
  int proxy_status = 0;  // the proxy's answer to CONNECT (e.g. 407, 401) when it gave one
};

// One request in flight. Destroying it cancels the transfer.
class Exchange {
 public:
  virtual ~Exchange() = default;
  // Completes when the status line and headers arrived (true), or on failure (false; failure()).
  virtual boost::asio::awaitable<bool> ReadHead() = 0;
  virtual const ResponseHead& head() const = 0;
  // Appends the next body bytes (at least one) to `out` and returns true; returns false at the end
  // of the body (failure().kind == kNone) or on failure.
  virtual boost::asio::awaitable<bool> ReadBody(std::string& out) = 0;
  virtual const Failure& failure() const = 0;
  // Aborts the transfer; pending and later reads complete with kCancelled.
  virtual void Cancel() = 0;
};

struct ClientOptions {
  std::string ca_file;          // "" = the system trust store
  bool verify_tls = true;
  int64_t max_idle_connections = 256;
};

class Client {
 public:
  virtual ~Client() = default;
  static std::unique_ptr<Client> Create(boost::asio::io_context& io, const ClientOptions& options);
  // Starts a request. The returned Exchange must not outlive this Client.
  virtual std::unique_ptr<Exchange> Start(Request request) = 0;
  virtual size_t in_flight() const = 0;
};

}  // namespace keygate::upstream

#endif  // KEYGATE_UPSTREAM_UPSTREAM_H_
