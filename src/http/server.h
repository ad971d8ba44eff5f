// The inbound HTTP/1.1 server: Boost.Beast on C++20 coroutines, one event loop per worker thread,
// one SO_REUSEPORT listener per worker (the kernel spreads connections; no cross-thread hand-off),
// keep-alive, header/body limits, and a graceful drain.
//
// The handler sees a parsed Request and a ResponseWriter that can send a whole response or a
// chunked stream (SSE) with backpressure: each WriteChunk completes only when the bytes are in the
// socket, so a slow client slows the producer instead of growing a buffer.
//
// Thread safety: Start/Stop/Drain from one control thread. Handlers run on their connection's
// worker thread; per-worker state is reached through Worker::index().
#ifndef KEYGATE_HTTP_SERVER_H_
#define KEYGATE_HTTP_SERVER_H_

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "common/status.h"

namespace keygate::http {

using Headers = std::vector<std::pair<std::string, std::string>>;
// A response's header field as views, for the writer's calls (the strings outlive the call; the
// writer serializes them before it returns): no copy of a name or value into a Headers.
struct HeaderRef {
  std::string_view name;
  std::string_view value;
};
using HeaderRefs = std::span<const HeaderRef>;

struct Request {
  std::string method;
  std::string target;  // path and query as sent
  std::string path;    // target without the query
  Headers headers;     // names lower-cased
  std::string body;
  std::string remote;  // "127.0.0.1:5555"
  // The first value of a header (lower-case name), or "" when absent.
  std::string_view Header(std::string_view lower_name) const;
};

class ResponseWriter {
 public:
  virtual ~ResponseWriter() = default;
  // Sends a complete response (head and body in one write). Returns false when the client is
  // gone. The writer owns the framing: Content-Length, Transfer-Encoding and Connection in
  // `headers` are ignored.
  virtual boost::asio::awaitable<bool> Send(int status, HeaderRefs headers,
                                            std::string_view body) = 0;
  boost::asio::awaitable<bool> Send(int status, const Headers& headers, std::string_view body);
  // Starts a chunked response; then WriteChunk* and EndStream. Each returns false when the client
  // is gone (the handler should then stop and release upstream resources).
  // With `hold`, the head is not written now but goes out with the next WriteChunk or EndStream,
  // in the same write: for a caller that has body bytes at hand already (one system call, and
  // one TCP segment to the client, instead of two). Such a caller must write next without
  // waiting for anything else.
  virtual boost::asio::awaitable<bool> StartStream(int status, HeaderRefs headers,
                                                   bool hold = false) = 0;
  boost::asio::awaitable<bool> StartStream(int status, const Headers& headers, bool hold = false);
  // Writes `data` as one chunk. An empty `data` writes nothing but a held head.
  virtual boost::asio::awaitable<bool> WriteChunk(std::string_view data) = 0;
  // Ends the body: `last` as a chunk (unless empty), then the terminating chunk; with a held
  // head, all in one write.
  virtual boost::asio::awaitable<bool> EndStream(std::string_view last = {}) = 0;
  // True once a response has begun (Send or StartStream was called).
  virtual bool started() const = 0;
};

class Worker {
 public:
  virtual ~Worker() = default;
  virtual int index() const = 0;
  virtual boost::asio::io_context& io() = 0;
};

using Handler = std::function<boost::asio::awaitable<void>(Worker&, Request&, ResponseWriter&)>;

// Answers requests the server rejects before the handler (oversized, malformed, timeouts):
// returns {content-type, body} in the right error shape for the path.
using ErrorBody = std::function<std::pair<std::string, std::string>(
    std::string_view path, int status, std::string_view message)>;

struct Options {
  std::string listen = "127.0.0.1:8080";  // "host:port"; port 0 picks a free one
  int workers = 1;
  int64_t max_body_bytes = 10 << 20;
  int64_t max_header_bytes = 64 << 10;
  int64_t header_timeout_ms = 30'000;   // to receive a request's headers (and an idle keep-alive)
  int64_t body_timeout_ms = 120'000;    // to receive the body
  int64_t write_timeout_ms = 300'000;   // one write to a client that stopped reading
  // After its last event, a worker keeps polling for this long before it sleeps in the kernel
  // (0: it sleeps at once). See RunLoop in server.cc.
  int64_t busy_poll_us = 0;
};

// Per-worker lifecycle hooks, each run on the worker's own thread.
struct Hooks {
  std::function<void(Worker&)> on_start;  // before serving: create per-thread state here
  std::function<void(Worker&)> on_abort;  // drain deadline passed: cancel work the handlers await
  std::function<void(Worker&)> on_stop;   // after the loop ended: destroy per-thread state
};

class Server {
 public:
  Server(Options options, Handler handler, ErrorBody error_body, Hooks hooks = {});
  ~Server();

  // Binds the listeners and starts the workers. InvalidArgument for a bad address; Unavailable
  // when the port cannot be bound.
  Status Start();
  uint16_t port() const { return port_; }  // the bound port (useful with port 0)

  // Stops accepting, lets in-flight requests finish (responses carry Connection: close) for up to
  // `deadline_ms`, then closes what remains and joins the workers. Returns the number of
  // connections that were still open at the deadline.
  int Drain(int64_t deadline_ms);

  int64_t active_connections() const { return active_connections_.load(); }
  int64_t active_requests() const { return active_requests_.load(); }

 private:
  class WorkerImpl;
  Options options_;
  Handler handler_;
  ErrorBody error_body_;
  Hooks hooks_;
  std::vector<std::unique_ptr<WorkerImpl>> workers_;
  uint16_t port_ = 0;
  std::atomic<bool> draining_{false};
  std::atomic<int64_t> active_connections_{0};
  std::atomic<int64_t> active_requests_{0};
  bool stopped_ = false;
};

}  // namespace keygate::http

#endif  // KEYGATE_HTTP_SERVER_H_
