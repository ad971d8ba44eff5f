// Outbound HTTP for the data plane, on one Asio event loop: HTTP/1.1 and HTTP/2 (ALPN), TLS with
// verification, connection reuse per (egress proxy, origin), egress through http:// (CONNECT),
// https://, socks5:// and socks5h:// proxies with credentials, connect / first-byte / idle
// timeouts (never a total one: streams may run for hours), and backpressure: a body the caller
// does not read is not read from the upstream either. Two engines behind one Client (engines.h):
// our own HTTP/1.1 for direct http:// upstreams, libcurl's multi_socket for the rest.
//
// This module knows no keys and no providers: requests arrive with their headers already set.
//
// Thread safety: a Client and its Exchanges belong to the thread running their io_context;
// create, use and destroy them there only (one CURLM and one connection cache per thread).
#ifndef KEYGATE_UPSTREAM_UPSTREAM_H_
#define KEYGATE_UPSTREAM_UPSTREAM_H_

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace keygate::upstream {

struct Request {
  std::string method = "POST";
  std::string url;  // http:// or https:// only
  // Sent as given, except the framing and hop-by-hop headers the client owns, which are dropped:
  // Host, Content-Length, Transfer-Encoding, Connection, Keep-Alive, Proxy-Connection, TE,
  // Upgrade, Expect. A name or value containing CR, LF or NUL fails the exchange (kOther) before
  // anything is sent. Without a Content-Type none is sent.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;  // sent with Content-Length (also for an empty POST)
  // "" = direct (proxy environment variables are ignored). Else a full proxy URL with
  // percent-encoded credentials (common/proxy_url.h FullUrl()); http:// and https:// proxies
  // are always used as CONNECT tunnels, also for http:// upstreams.
  std::string proxy_url;
  int64_t connect_timeout_ms = 10'000;      // TCP + proxy handshake + TLS
  // From the connection being ready (tunnel and TLS up, new or reused; the request and its body
  // are about to be sent) to the status line.
  int64_t first_byte_timeout_ms = 120'000;
  int64_t idle_timeout_ms = 300'000;        // between two pieces of the body; not while paused
  size_t max_buffered_bytes = 256 << 10;    // body bytes held for a slow reader before pausing
  // The response header fields the caller reads (lower-case names); ResponseHead::headers
  // keeps only those. Empty: every field. A provider answers with a score of fields (rate
  // limits, tracing, cookies) that the gateway never reads, and each kept one is two strings.
  // The names' storage must outlive the exchange (a static array).
  std::span<const std::string_view> response_headers;
};

struct ResponseHead {
  int status = 0;
  int http_version = 0;  // 10, 11 or 20, from the status line
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased, in order
  // The first value of a header (name lower-case), or "" when absent.
  std::string_view Header(std::string_view lower_name) const;
};

enum class ErrorKind {
  kNone,
  kConnect,    // could not reach the upstream (refused, DNS, unreachable)
  kProxy,      // the egress proxy failed: unreachable proxy, refused/failed CONNECT, proxy auth,
               // SOCKS errors (including "the proxy could not reach the upstream"), bad proxy URL.
               // Never the key's fault.
  kTls,        // TLS handshake or certificate verification failed
  kTimeout,    // connect, first-byte or idle timeout
  kReset,      // the connection broke after the request was sent (also: closed before a response)
  kCancelled,  // Cancel() was called, the Exchange was destroyed, or the reading coroutine was
               // cancelled (e.g. lost an `||` race)
  kOther,      // invalid request, malformed response, internal curl errors
};
std::string_view ErrorKindName(ErrorKind kind);

struct Failure {
  ErrorKind kind = ErrorKind::kNone;
  std::string message;   // for logs; never contains proxy credentials
  int proxy_status = 0;  // the proxy's answer to CONNECT (e.g. 407, 401) when it gave one
};

// One request in flight. Destroying it cancels the transfer (an unfinished HTTP/1.1 connection
// is closed, an HTTP/2 stream reset); a read still pending then completes with false, and the
// Exchange must not be touched again. At most one ReadHead/ReadBody may be pending at a time.
class Exchange {
 public:
  virtual ~Exchange() = default;
  // Completes when the status line and headers of the final (non-1xx) response arrived (true),
  // or on failure (false; failure()). A proxy's CONNECT response is never taken for the head.
  virtual boost::asio::awaitable<bool> ReadHead() = 0;
  virtual const ResponseHead& head() const = 0;
  // Appends all body bytes buffered so far (at least one) to `out` and returns true; returns
  // false at the end of the body (failure().kind == kNone) or on failure. Bytes that arrived
  // before a failure are still returned first. The buffer holds at most
  // max(max_buffered_bytes, one network read of <= 16 KiB): beyond that the transfer pauses
  // until the next ReadBody drains it, so one read never returns more than that.
  // If the awaiting coroutine is cancelled (per-operation cancellation), the exchange is
  // cancelled and this returns false.
  virtual boost::asio::awaitable<bool> ReadBody(std::string& out) = 0;
  // True when ReadBody would complete without waiting: body bytes are buffered, or the transfer
  // is over (ended or failed).
  virtual bool BodyReady() const = 0;
  // True when the whole body arrived and all of it was read: the next ReadBody returns false with
  // failure().kind == kNone.
  virtual bool BodyComplete() const = 0;
  virtual const Failure& failure() const = 0;
  // Aborts the transfer; pending and later reads complete with kCancelled (unless another
  // failure came first). Idempotent.
  virtual void Cancel() = 0;
};

struct ClientOptions {
  std::string ca_file;          // "" = the system trust store; also used for https:// proxies
  bool verify_tls = true;
  int64_t max_idle_connections = 256;  // the connection cache of this Client
};

class Client {
 public:
  virtual ~Client() = default;
  // Never fails: a curl that cannot be initialized yields exchanges failing with kOther.
  static std::unique_ptr<Client> Create(boost::asio::io_context& io, const ClientOptions& options);
  // Starts a request. The returned Exchange should not outlive this Client; if it does, it is
  // failed with kCancelled when the Client is destroyed. Errors surface through the Exchange.
  virtual std::unique_ptr<Exchange> Start(Request request) = 0;
  // Exchanges whose transfer is still running.
  virtual size_t in_flight() const = 0;
};

}  // namespace keygate::upstream

#endif  // KEYGATE_UPSTREAM_UPSTREAM_H_
