// A scriptable HTTP/1.1 upstream on 127.0.0.1 for tests: it answers by path and records every
// request and connection it saw. Runs its own thread and io_context.
//
// Paths (query parameters are integers):
//   /echo                     200, Content-Length, the request body echoed back
//   /status?code=C            status C with a small JSON body
//   /sse?events=N&size=B&delay_ms=D
//                             200 text/event-stream, chunked; event i is "data: <i> <pad>\n\n",
//                             about B bytes; D ms between events (0: written in 64 KiB batches)
//   /delay?ms=D               waits D ms before the head, then as /echo
//   /stall?bytes=N            head (chunked) and N body bytes, then silence until the client leaves
//   /reset?bytes=N            head (Content-Length 10 MiB) and N body bytes, 100 ms later a TCP RST
//   /forever                  chunked events every 5 ms until the client leaves
// Every response carries "x-stub-connection: <id>" (1, 2, ... in accept order).
//
// Thread safety: all methods may be called from any thread.
#ifndef KEYGATE_TESTS_UPSTREAM_UPSTREAM_STUB_H_
#define KEYGATE_TESTS_UPSTREAM_UPSTREAM_STUB_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace keygate::testing {

struct StubRequest {
  std::string method;
  std::string target;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string body;
  int connection_id = 0;
  uint16_t peer_port = 0;  // the TCP peer of the connection (the client, or the proxy)
  // The first value of `lower_name`, or "".
  std::string Header(std::string_view lower_name) const;
};

class UpstreamStub {
 public:
  UpstreamStub();  // listening when constructed
  ~UpstreamStub();
  UpstreamStub(const UpstreamStub&) = delete;
  UpstreamStub& operator=(const UpstreamStub&) = delete;

  uint16_t port() const;
  std::string Url(std::string_view target) const;  // "http://127.0.0.1:<port><target>"

  std::vector<StubRequest> requests() const;
  int connections_accepted() const;
  int connections_closed() const;
  // Body bytes of /sse responses handed to the kernel so far (all connections).
  int64_t sse_bytes_written() const;
  // Waits until at least `n` connections were closed by the client (or broke); false on timeout.
  bool WaitForClosed(int n, std::chrono::milliseconds timeout) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace keygate::testing

#endif  // KEYGATE_TESTS_UPSTREAM_UPSTREAM_STUB_H_
