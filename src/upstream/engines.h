// The engines behind upstream::Client (upstream.h), internal to upstream/.
//
// Client::Create returns a client that sends each request to one of two engines:
//   - the HTTP/1.1 engine (http1_client.cc) for http:// upstreams reached directly: our own
//     HTTP/1.1 on Asio sockets, with Beast's response parser. No TLS, no proxies, no HTTP/2:
//     exactly what a cleartext upstream next to the gateway (a local model server, a LiteLLM or
//     vLLM sidecar) needs, at a fraction of libcurl's cost per request (docs/benchmarks.md);
//   - libcurl (curl_client.cc) for everything else: https:// (TLS, HTTP/2 by ALPN) and every
//     request through an egress proxy (CONNECT, https:// proxies, SOCKS5).
// Both honour the whole Exchange contract of upstream.h; tests/upstream runs it against both.
#ifndef KEYGATE_UPSTREAM_ENGINES_H_
#define KEYGATE_UPSTREAM_ENGINES_H_

#include <boost/asio/io_context.hpp>
#include <memory>

#include "upstream/upstream.h"

namespace keygate::upstream {

// True for the requests the HTTP/1.1 engine takes: an http:// URL (any case) and no proxy. A
// malformed http:// URL is taken too, and fails there (kOther).
bool Http1Handles(const Request& request);

std::unique_ptr<Client> CreateHttp1Client(boost::asio::io_context& io,
                                          const ClientOptions& options);
std::unique_ptr<Client> CreateCurlClient(boost::asio::io_context& io,
                                         const ClientOptions& options);

}  // namespace keygate::upstream

#endif  // KEYGATE_UPSTREAM_ENGINES_H_
