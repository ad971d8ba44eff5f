#include "http/server.h"

#include <sched.h>

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/status.hpp>
#include <chrono>
#include <cstdio>
#include <list>
#include <optional>

#include "common/io_watchdog.h"
#include "common/read_buffer.h"
#include "common/strings.h"
#include "common/thread_name.h"
#include "http/request_parser.h"
#include "http/socket_write.h"

namespace keygate::http {

using namespace std::string_view_literals;

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using asio::ip::tcp;

namespace {

constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);

StatusOr<tcp::endpoint> ParseListen(const std::string& listen) {
  size_t colon = listen.rfind(':');
  if (colon == std::string::npos) return InvalidArgumentError("listen address must be HOST:PORT");
  std::string host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  auto port = ParseInt64(listen.substr(colon + 1));
  if (!port || *port < 0 || *port > 65535) return InvalidArgumentError("bad port in " + listen);
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(host.empty() ? "0.0.0.0" : host, ec);
  if (ec) return InvalidArgumentError("bad listen host '" + host + "' (use an IP address)");
  return tcp::endpoint(addr, static_cast<uint16_t>(*port));
}

std::string_view FindHeader(const Headers& headers, std::string_view lower_name) {
  for (const auto& [k, v] : headers) {
    if (k == lower_name) return v;
  }
  return {};
}

}  // namespace

std::string_view Request::Header(std::string_view lower_name) const {
  return FindHeader(headers, lower_name);
}

namespace {
std::vector<HeaderRef> Refs(const Headers& headers) {
  std::vector<HeaderRef> refs;
  refs.reserve(headers.size());
  for (const auto& [name, value] : headers) refs.push_back({name, value});
  return refs;
}
}  // namespace

asio::awaitable<bool> ResponseWriter::Send(int status, const Headers& headers,
                                           std::string_view body) {
  const std::vector<HeaderRef> refs = Refs(headers);
  co_return co_await Send(status, HeaderRefs(refs), body);
}

asio::awaitable<bool> ResponseWriter::StartStream(int status, const Headers& headers, bool hold) {
  const std::vector<HeaderRef> refs = Refs(headers);
  co_return co_await StartStream(status, HeaderRefs(refs), hold);
}

namespace {

// One client connection, on its worker's thread: the socket, the bytes received and not parsed
// yet, and its place in the worker's watchdog (at most one deadline at a time: a session reads
// or writes, never both at once).
struct Connection final : IoWatchdog::Entry {
  Connection(tcp::socket s, IoWatchdog& w) : socket(std::move(s)), watchdog(w) {}

  // The deadline of what the session waits for passed: the pending operation fails.
  void Expired() override {
    timed_out = true;
    boost::system::error_code ignored;
    socket.close(ignored);
  }

  // Writes all of `buffers`; false when the client is gone or stopped reading for `timeout`.
  // The deadline is started only when the write has to wait (http/socket_write.h).
  template <size_t N>
  asio::awaitable<bool> Write(const std::array<asio::const_buffer, N>& buffers,
                              std::chrono::milliseconds timeout) {
    bool waited = false;
    const boost::system::error_code ec = co_await WriteAll(socket, buffers, [&] {
      watchdog.Watch(*this, timeout);
      waited = true;
    });
    if (waited) watchdog.Done(*this);
    co_return !ec;
  }

  tcp::socket socket;
  IoWatchdog& watchdog;
  ReadBuffer in;
  bool busy = false;       // a request is being served (a drain lets it finish)
  bool timed_out = false;  // the watchdog closed the socket
  std::string head;        // the response head being written (its room kept for the next one)
};

// Runs `io` until it stops or runs out of work, as io.run() does. With `busy_poll` > 0, after each
// event the loop keeps asking the kernel for ready events without blocking (epoll_wait with a zero
// timeout), yielding the core to any other runnable thread between polls, and only sleeps once
// `busy_poll` has passed without one. A request's next event (the upstream's answer, the client's
// next request) usually comes within ~100 µs; a thread asleep in epoll_wait is woken by an
// interrupt, and on a virtual machine whose idle vCPU halts that wake-up alone costs tens of µs
// (docs/benchmarks.md, "Busy polling"). The price is CPU: a worker with events more often than
// every `busy_poll` never sleeps.
void RunLoop(asio::io_context& io, std::chrono::microseconds busy_poll) {
  if (busy_poll.count() <= 0) {
    io.run();
    return;
  }
  using Clock = std::chrono::steady_clock;
  Clock::time_point last = Clock::now();
  while (!io.stopped()) {
    if (io.poll() > 0) {
      last = Clock::now();
    } else if (Clock::now() - last < busy_poll) {
      sched_yield();  // the usage writer and the other threads sharing this core go first
    } else {
      io.run_one();  // sleeps until the next event
      last = Clock::now();
    }
  }
}

}  // namespace

// One worker: an event loop on its own thread with its own listener.
class Server::WorkerImpl final : public Worker {
 public:
  WorkerImpl(Server& server, int index) : server_(server), index_(index), acceptor_(io_) {}

  int index() const override { return index_; }
  asio::io_context& io() override { return io_; }

  Status Listen(const tcp::endpoint& ep) {
    boost::system::error_code ec;
    acceptor_.open(ep.protocol(), ec);
    if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    // SO_REUSEPORT: every worker binds the same port; the kernel balances new connections.
    using reuse_port = asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;
    if (!ec) acceptor_.set_option(reuse_port(true), ec);
    if (!ec) acceptor_.bind(ep, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      return UnavailableError("cannot listen on " + ep.address().to_string() + ":" +
                              std::to_string(ep.port()) + ": " + ec.message());
    }
    return OkStatus();
  }
  uint16_t bound_port() const { return acceptor_.local_endpoint().port(); }

  void Run() {
    thread_ = std::thread([this] {
      NameThisThread("kg-worker-" + std::to_string(index_));
      if (server_.hooks_.on_start) server_.hooks_.on_start(*this);
      asio::co_spawn(io_, AcceptLoop(), asio::detached);
      RunLoop(io_, std::chrono::microseconds(server_.options_.busy_poll_us));
      if (server_.hooks_.on_stop) server_.hooks_.on_stop(*this);
    });
  }

  // Stop accepting and close idle keep-alive connections; busy ones close after their response.
  void BeginDrain() {
    asio::post(io_, [this] {
      boost::system::error_code ec;
      acceptor_.close(ec);
      for (Connection* c : conns_) {
        if (!c->busy) c->socket.close(ec);
      }
    });
  }

  // Close everything still open (the drain deadline passed), cancel what handlers await, and let
  // the loop end by itself once every session has unwound.
  void ForceClose() {
    asio::post(io_, [this] {
      boost::system::error_code ec;
      acceptor_.close(ec);
      for (Connection* c : conns_) c->socket.close(ec);
      watchdog_.Stop();  // its timer would keep the loop alive
      if (server_.hooks_.on_abort) server_.hooks_.on_abort(*this);
      work_.reset();
    });
  }

  void Join() {
    if (thread_.joinable()) thread_.join();
  }
  void StopLoop() {
    work_.reset();
    io_.stop();
  }

 private:
  asio::awaitable<void> AcceptLoop() {
    while (true) {
      auto [ec, socket] = co_await acceptor_.async_accept(kUseTuple);
      if (ec) {
        if (ec == asio::error::operation_aborted || !acceptor_.is_open()) co_return;
        continue;  // e.g. EMFILE: keep serving the connections we have
      }
      socket.set_option(tcp::no_delay(true), ec);
      asio::co_spawn(io_, Session(std::move(socket)), asio::detached);
    }
  }

  asio::awaitable<void> Session(tcp::socket socket);

  Server& server_;
  const int index_;
  asio::io_context io_{1};
  asio::executor_work_guard<asio::io_context::executor_type> work_{io_.get_executor()};
  IoWatchdog watchdog_{io_};  // the deadlines of the sessions' reads and writes
  tcp::acceptor acceptor_;
  std::list<Connection*> conns_;  // only touched on this worker's thread
  std::thread thread_;

  friend class Server;
};

namespace {

// The response head, serialized by hand: "HTTP/1.1 <status> <reason>\r\n", the caller's fields,
// then the framing fields the writer owns. Beast's serializer cost ~40k instructions per small
// response (its composed write operation and buffer views; bench/cpu_per_request.sh --callgrind);
// a head in one string and a gathered asio::async_write do the same in one sendmsg.
enum class Framing {
  kLength,   // Content-Length: the body follows whole
  kChunked,  // Transfer-Encoding: chunked
  kNone,     // a status that never has a body (1xx, 204, 304)
};
void AppendHead(std::string& out, int status, HeaderRefs headers, bool keep_alive, Framing framing,
                size_t content_length) {
  // One allocation for the whole head (appending grew a new string 3-4 times).
  size_t size = 96;  // status line, framing fields, blank line
  for (const auto& [name, value] : headers) size += name.size() + value.size() + 4;
  out.reserve(out.size() + size);
  const beast::string_view reason = bhttp::obsolete_reason(static_cast<bhttp::status>(status));
  AppendPieces(out, {"HTTP/1.1 "sv, std::to_string(status), " "sv,
                     std::string_view(reason.data(), reason.size()), "\r\n"sv});
  static constexpr ByteSet kBadInName("\r\n:"), kBadInValue("\r\n");
  for (const auto& [name, value] : headers) {
    // Framing is ours; a CR or LF would split the head (header injection): never sent.
    if (beast::iequals(name, "content-length") || beast::iequals(name, "transfer-encoding") ||
        beast::iequals(name, "connection") || kBadInName.AnyIn(name) || kBadInValue.AnyIn(value)) {
      continue;
    }
    AppendPieces(out, {name, ": "sv, value, "\r\n"sv});
  }
  if (framing == Framing::kLength) {
    AppendPieces(out, {"Content-Length: "sv, std::to_string(content_length), "\r\n"sv});
  } else if (framing == Framing::kChunked) {
    out.append("Transfer-Encoding: chunked\r\n"sv);
  }
  if (!keep_alive) out.append("Connection: close\r\n"sv);
  out.append("\r\n"sv);
}

// A status whose response never has a body (RFC 9110 6.4.1).
bool Bodyless(int status) { return status < 200 || status == 204 || status == 304; }

// "<size in hex>\r\n": the line before a chunk's data.
std::string_view ChunkSizeLine(size_t n, char (&buf)[24]) {
  static constexpr char kDigits[] = "0123456789abcdef";
  char* end = buf + sizeof(buf);
  char* p = end;
  *--p = '\n';
  *--p = '\r';
  do {
    *--p = kDigits[n & 0xF];
    n >>= 4;
  } while (n != 0);
  return {p, static_cast<size_t>(end - p)};
}

constexpr std::string_view kCrLf = "\r\n";
constexpr std::string_view kLastChunk = "0\r\n\r\n";

class WriterImpl final : public ResponseWriter {
 public:
  // `draining` (may be null) is read when the response starts: a drain that began while the
  // request was in flight still closes the connection after it.
  WriterImpl(Connection& conn, bool keep_alive, int64_t write_timeout_ms,
             const std::atomic<bool>* draining = nullptr)
      : conn_(conn),
        head_(conn.head),
        keep_alive_(keep_alive),
        write_timeout_(write_timeout_ms),
        draining_(draining) {}

  using ResponseWriter::Send;
  using ResponseWriter::StartStream;

  asio::awaitable<bool> Send(int status, HeaderRefs headers, std::string_view body) override {
    if (gone_ || started_) co_return false;
    if (draining_ != nullptr && draining_->load()) keep_alive_ = false;
    Framing framing = Framing::kLength;
    if (Bodyless(status)) {
      framing = Framing::kNone;
      body = {};
    }
    head_.clear();
    AppendHead(head_, status, headers, keep_alive_, framing, body.size());
    started_ = true;
    std::array<asio::const_buffer, 2> buffers{asio::buffer(head_), asio::buffer(body)};
    if (SentNow(buffers)) co_return true;
    co_return co_await Write(buffers);
  }

  asio::awaitable<bool> StartStream(int status, HeaderRefs headers, bool hold) override {
    if (gone_ || started_) co_return false;
    if (draining_ != nullptr && draining_->load()) keep_alive_ = false;
    head_.clear();
    AppendHead(head_, status, headers, keep_alive_, Framing::kChunked, 0);
    started_ = true;
    streaming_ = true;
    if (hold) {
      held_ = true;
      co_return true;
    }
    std::array<asio::const_buffer, 1> buffers{asio::buffer(head_)};
    if (SentNow(buffers)) co_return true;
    co_return co_await Write(buffers);
  }

  asio::awaitable<bool> WriteChunk(std::string_view data) override {
    if (gone_ || !streaming_ || ended_) co_return false;
    if (data.empty() && !held_) co_return true;  // an empty chunk would end the body
    std::array<asio::const_buffer, 4> buffers{HeldHead()};
    if (!data.empty()) {
      buffers[1] = asio::buffer(ChunkSizeLine(data.size(), size_line_));
      buffers[2] = asio::buffer(data);
      buffers[3] = asio::buffer(kCrLf);
    }
    if (SentNow(buffers)) co_return true;
    co_return co_await Write(buffers);
  }

  asio::awaitable<bool> EndStream(std::string_view last) override {
    if (gone_ || !streaming_ || ended_) co_return false;
    std::array<asio::const_buffer, 5> buffers{HeldHead()};
    if (!last.empty()) {
      buffers[1] = asio::buffer(ChunkSizeLine(last.size(), size_line_));
      buffers[2] = asio::buffer(last);
      buffers[3] = asio::buffer(kCrLf);
    }
    buffers[4] = asio::buffer(kLastChunk);
    ended_ = true;
    if (SentNow(buffers)) co_return true;
    co_return co_await Write(buffers);
  }

  // A head the handler held and never wrote (it returned without writing): sent now, so the
  // client sees the response start; the body never ended, so the connection then closes.
  asio::awaitable<void> FlushHeld() {
    if (!held_ || gone_) co_return;
    const std::array<asio::const_buffer, 1> buffers{HeldHead()};
    co_await Write(buffers);
  }

  bool started() const override { return started_; }
  // Whether the connection can carry another request.
  bool reusable() const { return keep_alive_ && !gone_ && (!streaming_ || ended_); }

 private:
  // The held head (once: the next write carries it), or an empty buffer.
  asio::const_buffer HeldHead() {
    if (!held_) return {};
    held_ = false;
    return asio::buffer(head_);
  }

  // Sends all of `buffers` at once if the socket has room (http/socket_write.h): the usual
  // response or chunk then costs no coroutine frame below the caller's (Write, the
  // connection's Write and WriteAll are three). False when something is left: `buffers` hold
  // the rest, for Write, which also reports a send that failed here.
  template <size_t N>
  bool SentNow(std::array<asio::const_buffer, N>& buffers) {
    if (!conn_.socket.is_open()) return false;
    boost::system::error_code ec;
    return SendNow(conn_.socket, buffers, ec) == 0 && !ec;
  }

  template <size_t N>
  asio::awaitable<bool> Write(const std::array<asio::const_buffer, N>& buffers) {
    // Not `if (!co_await ...)`: g++ 12 miscompiles a co_await there (SIGILL under UBSan).
    const bool written = co_await conn_.Write(buffers, write_timeout_);
    if (!written) gone_ = true;
    co_return written;
  }

  Connection& conn_;
  std::string& head_;  // the serialized head (the connection's); lives until its write completed
  bool keep_alive_;
  std::chrono::milliseconds write_timeout_;
  const std::atomic<bool>* draining_;
  char size_line_[24];  // a chunk's size line, for the write in progress
  bool started_ = false, streaming_ = false, ended_ = false, gone_ = false, held_ = false;
};

constexpr size_t kReadSize = 4 << 10;        // a read buffer's first size: a usual request
constexpr size_t kBodyReadSize = 64 << 10;   // a body larger than what is buffered reads in these
// The room an idle kept-alive connection keeps for its next request's body, and for its header
// fields: a usual small request's. Thousands of idle connections must not each hold the room of
// the long prompt (or the large cookie) they sent last.
constexpr size_t kKeptRoom = 4 << 10;

// One read into `room` (the connection's buffer's space). Errors as Beast's reads gave them:
// end_of_stream (closed before a byte of this request, unless `got_some`), partial_message
// (closed halfway), timeout, or the socket's.
asio::awaitable<boost::system::error_code> ReadOnce(Connection& c, std::span<char> room,
                                                    bool got_some) {
  auto [ec, n] =
      co_await c.socket.async_read_some(asio::buffer(room.data(), room.size()), kUseTuple);
  if (c.timed_out) co_return beast::error::timeout;
  if (ec == asio::error::eof) {
    co_return got_some ? bhttp::error::partial_message : bhttp::error::end_of_stream;
  }
  if (!ec) c.in.Commit(n);
  co_return ec;
}

// Reads from the connection and parses until the parser has the head (`head_only`) or the
// whole request. The deadline is the caller's (the watchdog's, for the whole phase). Errors as
// Beast's reads gave them: end_of_stream (closed before a byte of this request), partial_message
// (closed halfway), timeout, the parser's own (header_limit, body_limit, bad syntax).
asio::awaitable<boost::system::error_code> ReadRequest(Connection& c, RequestParser& parser,
                                                       bool head_only, size_t max_head) {
  using boost::system::error_code;
  auto finished = [&] { return head_only ? parser.is_header_done() : parser.is_done(); };
  while (true) {
    while (!c.in.empty() && !finished()) {
      error_code ec;
      const std::string_view data = c.in.data();
      const size_t n = parser.put(asio::buffer(data.data(), data.size()), ec);
      c.in.Consume(n);
      if (ec == bhttp::error::need_more) break;
      if (ec) co_return ec;
    }
    if (finished()) co_return error_code{};
    // The head must be whole in the buffer: it grows up to the limit (the parser reports
    // header_limit once the buffer holds that much without the head's end).
    std::span<char> room = c.in.Space(kReadSize, parser.is_header_done() ? 0 : max_head);
    if (parser.is_header_done() && room.size() < kBodyReadSize &&
        parser.content_length_remaining() &&
        *parser.content_length_remaining() > room.size()) {
      c.in.Grow(kBodyReadSize);  // a large body: fewer, larger reads
      room = c.in.Space(kReadSize);
    }
    if (room.empty()) co_return bhttp::error::buffer_overflow;  // a chunk line longer than that
    const boost::system::error_code ec = co_await ReadOnce(c, room, parser.got_some());
    if (ec) co_return ec;
  }
}

}  // namespace

asio::awaitable<void> Server::WorkerImpl::Session(tcp::socket socket) {
  Server& s = server_;
  s.active_connections_.fetch_add(1);
  Connection conn(std::move(socket), watchdog_);
  auto self = conns_.insert(conns_.end(), &conn);
  std::string remote;
  {
    boost::system::error_code ec;
    auto ep = conn.socket.remote_endpoint(ec);
    if (!ec) remote = ep.address().to_string() + ":" + std::to_string(ep.port());
  }
  const auto ms = [](int64_t v) { return std::chrono::milliseconds(v); };

  auto reject = [&](std::string_view path, int status,
                    std::string_view message) -> asio::awaitable<void> {
    auto [ctype, body] = s.error_body_(path, status, message);
    WriterImpl w(conn, /*keep_alive=*/false, s.options_.write_timeout_ms);
    // A named Headers: g++ 12 cannot hold a braced initializer list across co_await.
    Headers headers{{"content-type", ctype}};
    co_await w.Send(status, headers, body);
    // Lingering close: the client may still be sending the body we refused. Closing with unread
    // input makes the kernel send a RST that can destroy our response before the client reads
    // it, so stop sending, then read and discard for a bounded time and amount.
    boost::system::error_code ec;
    conn.socket.shutdown(tcp::socket::shutdown_send, ec);
    watchdog_.Watch(conn, std::chrono::seconds(2));
    size_t discarded = 0;
    char sink[16384];
    while (discarded < (8u << 20)) {
      auto [rec, n] = co_await conn.socket.async_read_some(asio::buffer(sink), kUseTuple);
      if (rec) break;
      discarded += n;
    }
    watchdog_.Done(conn);
  };

  auto too_large = [&s] {
    return "request body is larger than " + std::to_string(s.options_.max_body_bytes) + " bytes";
  };
  const size_t max_head = static_cast<size_t>(s.options_.max_header_bytes);
  const uint64_t max_body = static_cast<uint64_t>(s.options_.max_body_bytes);
  // One Request for all of the connection's requests: each one's strings reuse the room of the
  // one before (its target, header fields and body were allocated afresh for every request).
  Request req;
  req.remote = remote;
  while (!s.draining_.load()) {
    conn.busy = false;
    // One deadline for the whole head (and the wait for it on a kept-alive connection).
    watchdog_.Watch(conn, ms(s.options_.header_timeout_ms));
    boost::system::error_code hec;
    if (conn.in.empty()) hec = co_await ReadOnce(conn, conn.in.Space(kReadSize, max_head), false);
    // A request that came whole and plain is taken from the buffer as it is; any other goes to
    // Beast's parser from the same bytes (http/request_parser.h).
    std::optional<WholeRequest> whole;
    if (!hec) whole = TakeWholeRequest(conn.in.data(), max_head, max_body, req);
    std::optional<RequestParser> parsing;
    if (whole) {
      watchdog_.Done(conn);
      conn.in.Consume(whole->size);
      conn.busy = true;
      req.path.assign(req.target, 0, req.target.find('?'));
    } else {
      RequestParser& parser = parsing.emplace(req);
      parser.header_limit(static_cast<uint32_t>(s.options_.max_header_bytes));
      parser.body_limit(max_body);
      if (!hec) hec = co_await ReadRequest(conn, parser, true, max_head);
      if (hec) {
        watchdog_.Done(conn);
        if (hec == bhttp::error::header_limit) {
          co_await reject("", 431, "request headers are too large");
        } else if (hec == bhttp::error::body_limit) {
          co_await reject(req.target.substr(0, req.target.find('?')), 413, too_large());
        } else if (hec != bhttp::error::end_of_stream && hec != beast::error::timeout &&
                   hec != asio::error::operation_aborted && hec != asio::error::connection_reset &&
                   hec != asio::error::bad_descriptor) {
          co_await reject("", 400, "malformed HTTP request: " + hec.message());
        }
        break;
      }
      conn.busy = true;
      req.path.assign(req.target, 0, req.target.find('?'));
      const std::string& path = req.path;
      if (parser.content_length() && *parser.content_length() > max_body) {
        watchdog_.Done(conn);
        co_await reject(path, 413, too_large());
        break;
      }
      if (!parser.is_done() && beast::iequals(req.Header("expect"), "100-continue")) {
        static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
        const std::array<asio::const_buffer, 1> cont{asio::buffer(kContinue)};
        const bool sent = co_await conn.Write(cont, ms(s.options_.write_timeout_ms));
        if (!sent) break;
      }
      // One deadline for the whole body.
      watchdog_.Watch(conn, ms(s.options_.body_timeout_ms));
      const boost::system::error_code bec = co_await ReadRequest(conn, parser, false, max_head);
      watchdog_.Done(conn);
      if (bec) {
        if (bec == bhttp::error::body_limit) {
          co_await reject(path, 413, too_large());
        } else if (bec != bhttp::error::end_of_stream && bec != beast::error::timeout &&
                   bec != asio::error::connection_reset) {
          co_await reject(path, 400, "malformed HTTP request body: " + bec.message());
        }
        break;
      }
    }

    const bool keep_alive =
        (whole ? whole->keep_alive : parsing->keep_alive()) && !s.draining_.load();
    parsing.reset();
    // Unless a pipelined request already waits in it, give the read buffer back for the
    // handler's (maybe long) run: an open stream holds no read buffer.
    conn.in.Release();

    WriterImpl writer(conn, keep_alive, s.options_.write_timeout_ms, &s.draining_);
    s.active_requests_.fetch_add(1);
    try {
      co_await s.handler_(*this, req, writer);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "keygate: handler error on %s: %s\n", req.path.c_str(), e.what());
    }
    s.active_requests_.fetch_sub(1);
    if (!writer.started()) {
      auto [ctype, body] = s.error_body_(req.path, 500, "internal error: no response produced");
      Headers headers{{"content-type", ctype}};
      co_await writer.Send(500, headers, body);
    }
    co_await writer.FlushHeld();
    if (!writer.reusable()) break;
    // An idle connection does not keep a large request's room for its next one.
    if (req.body.capacity() > kKeptRoom) std::string().swap(req.body);
    size_t header_room = 0;
    for (const auto& [name, value] : req.headers) header_room += name.capacity() + value.capacity();
    if (header_room > kKeptRoom) Headers().swap(req.headers);
    // The response went out with a synchronous send, and the client's next request cannot be
    // there yet: reading now would cost an EAGAIN recv whenever the reactor thinks the socket
    // may have data. Let the loop run the other ready work first.
    co_await asio::post(io_, asio::use_awaitable);
  }
  watchdog_.Done(conn);
  boost::system::error_code ec;
  conn.socket.shutdown(tcp::socket::shutdown_both, ec);
  conn.socket.close(ec);
  conns_.erase(self);
  s.active_connections_.fetch_sub(1);
}

Server::Server(Options options, Handler handler, ErrorBody error_body, Hooks hooks)
    : options_(std::move(options)),
      handler_(std::move(handler)),
      error_body_(std::move(error_body)),
      hooks_(std::move(hooks)) {}

Server::~Server() {
  if (!stopped_ && !workers_.empty()) Drain(0);
}

Status Server::Start() {
  KG_ASSIGN_OR_RETURN(tcp::endpoint ep, ParseListen(options_.listen));
  int n = options_.workers < 1 ? 1 : options_.workers;
  for (int i = 0; i < n; ++i) {
    auto w = std::make_unique<WorkerImpl>(*this, i);
    KG_RETURN_IF_ERROR(w->Listen(ep));
    if (i == 0) {
      port_ = w->bound_port();
      ep.port(port_);  // with port 0, the other workers join the port the first one got
    }
    workers_.push_back(std::move(w));
  }
  for (auto& w : workers_) w->Run();
  return OkStatus();
}

int Server::Drain(int64_t deadline_ms) {
  if (stopped_) return 0;
  draining_.store(true);
  for (auto& w : workers_) w->BeginDrain();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(deadline_ms);
  // The control thread polls the counters; request threads are never blocked by it.
  while (active_connections_.load() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  int left = static_cast<int>(active_connections_.load());
  for (auto& w : workers_) w->ForceClose();
  // The loops end by themselves once the closed sessions have unwound; a loop still running after
  // a grace period (a handler ignoring cancellation) is stopped hard.
  auto unwind = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (active_connections_.load() > 0 && std::chrono::steady_clock::now() < unwind) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (active_connections_.load() > 0) {
    for (auto& w : workers_) w->StopLoop();
  }
  for (auto& w : workers_) w->Join();
  stopped_ = true;
  return left;
}

}  // namespace keygate::http
