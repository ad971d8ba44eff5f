// The HTTP/1.1 engine for direct http:// upstreams (engines.h says which requests come here).
//
// Pull, not push: an exchange does its I/O inside the caller's ReadHead/ReadBody, on the
// caller's coroutine. Nothing runs between reads, so backpressure is TCP's own (a reader that
// does not read leaves the bytes in the kernel), and a fast JSON answer costs the system calls
// it must: one write of the request (head and body gathered), one read of the response.
//
// Connections: kept per origin (host:port) after a response that allows it (complete body,
// keep-alive, no stray bytes), up to ClientOptions::max_idle_connections per Client, for at
// most kMaxIdleAge. A kept connection the server closed meanwhile shows only when it is used
// (no poll per request, unlike curl): a request whose reused connection ends before any byte
// of an answer is sent once more on a new connection, as curl does.
//
// Deadlines: an exchange's I/O in progress has a deadline (connect, first byte, idle), kept by
// one IoWatchdog per Client (common/io_watchdog.h: no timer work per operation under load).
// The first-byte deadline covers the request's write and every read until the head is whole;
// the idle deadline each body read. The watchdog is disarmed when no exchange is in flight, so
// a loop run to completion (the spend checker's) ends.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <strings.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/error.hpp>
#include <charconv>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/io_watchdog.h"
#include "common/plain_http.h"
#include "common/read_buffer.h"
#include "common/strings.h"
#include "upstream/engines.h"
#include "upstream/http_text.h"

namespace keygate::upstream {

using namespace std::string_view_literals;
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using boost::system::error_code;

constexpr size_t kReadBuffer = 16 << 10;  // one read; grows only for a larger response head
constexpr size_t kMaxHead = 64 << 10;
constexpr auto kMaxIdleAge = std::chrono::seconds(60);
constexpr size_t kMaxCachedUrls = 64;

bool StartsWithHttp(std::string_view url) {
  return url.size() >= 7 && strncasecmp(url.data(), "http://", 7) == 0;
}

// An http:// URL split for the request: where to connect, the Host header, the request target.
struct Target {
  std::string host;       // a name, or an address (IPv6 without brackets)
  uint16_t port = 80;
  std::string authority;  // host[:port] as written: the Host header and the pool's key
  std::string target;     // path and query ("/" when empty); the fragment is dropped
};

std::optional<Target> ParseHttpUrl(std::string_view url) {
  if (!StartsWithHttp(url)) return std::nullopt;
  for (unsigned char c : url) {
    if (c <= 32 || c >= 127) return std::nullopt;  // spaces, controls, raw non-ASCII
  }
  static constexpr ByteSet kAuthorityEnd("/?#");
  static constexpr ByteSet kIpv6("0123456789abcdefABCDEF:.");
  static constexpr ByteSet kHostName(
      "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_~");
  std::string_view rest = url.substr(7);
  const size_t end = std::min(kAuthorityEnd.Find(rest), rest.size());
  std::string_view authority = rest.substr(0, end);
  std::string_view tail = rest.substr(end);
  if (authority.empty() || authority.find('@') != std::string_view::npos) return std::nullopt;
  Target t;
  std::string_view host = authority, port;
  if (host.front() == '[') {
    const size_t close = host.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    port = host.substr(close + 1);
    host = host.substr(1, close - 1);
    if (!port.empty() && port.front() != ':') return std::nullopt;
    if (!port.empty()) port.remove_prefix(1);
    if (host.empty() || !kIpv6.AllIn(host)) return std::nullopt;
  } else {
    const size_t colon = host.rfind(':');
    if (colon != std::string_view::npos) {
      port = host.substr(colon + 1);
      host = host.substr(0, colon);
    }
    if (host.empty() || !kHostName.AllIn(host)) return std::nullopt;
  }
  if (!port.empty()) {
    unsigned value = 0;
    auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc() || p != port.data() + port.size() || value == 0 || value > 65535) {
      return std::nullopt;
    }
    t.port = static_cast<uint16_t>(value);
  }
  t.host = std::string(host);
  t.authority = std::string(authority);
  tail = tail.substr(0, std::min(tail.find('#'), tail.size()));
  t.target = tail.empty() || tail.front() != '/' ? "/" + std::string(tail) : std::string(tail);
  return t;
}

// ---------------------------------------------------------------------------------------------
// A connection

struct Conn {
  explicit Conn(asio::io_context& io) : socket(io) {}

  // Pending operations complete with operation_aborted.
  void Close() {
    if (closed) return;
    closed = true;
    error_code ignored;
    if (resolver != nullptr) resolver->cancel();
    socket.close(ignored);
  }

  tcp::socket socket;
  tcp::resolver* resolver = nullptr;  // while resolving the host
  bool closed = false;
  ReadBuffer in;  // received bytes not parsed yet
  int served = 0;  // responses read on this connection
  Clock::time_point idle_since;
};

// ---------------------------------------------------------------------------------------------
// One exchange

class Http1Client;
struct State;

// Beast's HTTP/1.1 response parser (chunked, Content-Length, read-until-close, obs-fold, limits),
// writing the head and body pieces into the exchange.
class ResponseParser final : public http::basic_parser<false> {
 public:
  explicit ResponseParser(State* s);

 private:
  void on_request_impl(http::verb, beast::string_view, beast::string_view, int,
                       error_code&) override {}
  void on_response_impl(int code, beast::string_view, int version, error_code&) override;
  void on_field_impl(http::field, beast::string_view name, beast::string_view value,
                     error_code&) override;
  void on_header_impl(error_code&) override {}
  void on_body_init_impl(const boost::optional<std::uint64_t>&, error_code&) override {}
  size_t on_body_impl(beast::string_view body, error_code&) override;
  void on_chunk_header_impl(std::uint64_t, beast::string_view, error_code&) override {}
  size_t on_chunk_body_impl(std::uint64_t, beast::string_view body, error_code&) override;
  void on_finish_impl(error_code&) override {}

  State* s_;
};

struct State final : IoWatchdog::Entry {
  // Set from Start until the exchange ends (complete, failed, cancelled, or the Client went
  // away): the exchange is in the Client's list exactly while this is set.
  Http1Client* client = nullptr;
  bool ended() const { return client == nullptr; }
  State* prev = nullptr;          // the Client's list of exchanges in flight
  State* next = nullptr;

  std::shared_ptr<const Target> target;  // null: the URL was rejected
  std::string head_text;         // request line and headers, ready to send
  std::string body;
  bool is_head = false;
  std::span<const std::string_view> response_headers;  // Request::response_headers
  int64_t connect_timeout_ms = 0, first_byte_timeout_ms = 0, idle_timeout_ms = 0;

  ResponseHead head;
  bool head_complete = false;
  std::string pending;    // body bytes parsed and not read yet
  bool complete = false;  // the whole body arrived
  Failure failure;
  std::shared_ptr<Conn> conn;
  std::optional<ResponseParser> parser;

  bool timed_out = false;  // the watchdog closed the connection under it

  // The deadline of the I/O in progress passed: the coroutine awaiting it resumes with
  // operation_aborted and fails the exchange with kTimeout (FailIo).
  void Expired() override {
    timed_out = true;
    if (conn != nullptr) conn->Close();
  }
};

ResponseParser::ResponseParser(State* s) : s_(s) {
  header_limit(kMaxHead);
  body_limit(boost::none);
  eager(true);
  if (s->is_head) skip(true);
}

void ResponseParser::on_response_impl(int code, beast::string_view, int version, error_code&) {
  s_->head.status = code;
  s_->head.http_version = version;
  s_->head.headers.clear();
}

// A response header field, kept when the request reads it (Request::response_headers).
void AddField(State& s, std::string_view name, std::string_view value) {
  if (!WantsHeader(s.response_headers, name)) return;
  s.head.headers.emplace_back(ToLower(name), std::string(value));
}

void ResponseParser::on_field_impl(http::field, beast::string_view name, beast::string_view value,
                                   error_code&) {
  AddField(*s_, std::string_view(name.data(), name.size()),
           std::string_view(value.data(), value.size()));
}

size_t ResponseParser::on_body_impl(beast::string_view body, error_code&) {
  s_->pending.append(body.data(), body.size());
  return body.size();
}

size_t ResponseParser::on_chunk_body_impl(std::uint64_t, beast::string_view body,
                                          error_code& ec) {
  return on_body_impl(body, ec);
}

class Http1Client final : public Client {
 public:
  Http1Client(asio::io_context& io, const ClientOptions& options)
      : io_(io), options_(options), watchdog_(io) {}
  ~Http1Client() override;

  std::unique_ptr<Exchange> Start(Request request) override;
  size_t in_flight() const override { return in_flight_; }

  asio::io_context& io() { return io_; }
  // The parsed form of `url`, null when it is rejected. Cached per distinct URL, up to
  // kMaxCachedUrls (the gateway sends every request of a route to one URL); a Target dropped
  // from the cache lives on in the exchanges that hold it.
  std::shared_ptr<const Target> ParsedUrl(const std::string& url);
  // A kept connection to `authority`, or null.
  std::shared_ptr<Conn> TakeIdle(const std::string& authority);
  void Keep(const std::string& authority, std::shared_ptr<Conn> c);
  void Link(State* s);
  void Unlink(State* s);
  // `s` waits for I/O that must end within `timeout_ms` from now; Done() when it ended.
  void Watch(State& s, int64_t timeout_ms) {
    watchdog_.Watch(s, std::chrono::milliseconds(timeout_ms));
  }
  void Done(State& s) { watchdog_.Done(s); }

 private:
  asio::io_context& io_;
  ClientOptions options_;
  std::unordered_map<std::string, std::shared_ptr<const Target>> urls_;
  std::unordered_map<std::string, std::vector<std::shared_ptr<Conn>>> idle_;
  size_t idle_count_ = 0;
  State* live_ = nullptr;  // exchanges in flight (intrusive list)
  size_t in_flight_ = 0;
  IoWatchdog watchdog_;
};

// Ends the exchange: out of the Client's count, its connection kept (when `keep`) or closed.
void End(State& s, bool keep) {
  if (s.ended()) return;
  std::shared_ptr<Conn> c = std::move(s.conn);
  if (c != nullptr) {
    if (keep && !c->closed) {
      s.client->Keep(s.target->authority, std::move(c));
    } else {
      c->Close();
    }
  }
  s.client->Unlink(&s);
  s.client = nullptr;
}

void Fail(State& s, ErrorKind kind, std::string message) {
  if (s.ended()) return;
  s.failure = {kind, std::move(message), 0};
  if (kind == ErrorKind::kCancelled) s.pending.clear();
  End(s, false);
}

// The failure an I/O error means, once the exchange was not cancelled meanwhile.
void FailIo(State& s, error_code ec, const char* phase, int64_t timeout_ms) {
  if (s.timed_out) {
    Fail(s, ErrorKind::kTimeout,
         std::string("no ") + phase + " within " + std::to_string(timeout_ms) + " ms");
  } else if (ec == asio::error::operation_aborted) {
    Fail(s, ErrorKind::kCancelled, "the reading coroutine was cancelled");
  } else {
    Fail(s, ErrorKind::kReset, std::string("connection broke (") + phase + "): " + ec.message());
  }
}

// A response whole in the connection's buffer and plain (common/plain_http.h: the usual
// non-streamed answer), taken without Beast; the exchange is then complete. False: Beast parses
// the same bytes (Parse).
bool TakeWhole(State& s, Conn& c) {
  if (s.is_head) return false;
  plain_http::Message m;
  if (!plain_http::TakeResponse(c.in.data(), kMaxHead, m)) return false;
  s.head.status = m.status;
  s.head.http_version = m.http11 ? 11 : 10;
  s.head.headers.clear();
  for (size_t i = 0; i < m.field_count; ++i) AddField(s, m.fields[i].name(), m.fields[i].value());
  s.pending.assign(m.body);
  c.in.Consume(m.size);  // the views into the buffer end here
  s.head_complete = true;
  s.complete = true;
  // Reusable only when nothing follows the response and both sides keep the connection.
  End(s, c.in.empty() && m.keep_alive);
  return true;
}

// Parses what the connection holds. Returns false on a malformed response (the exchange failed).
bool Parse(State& s, Conn& c) {
  if (!s.parser) s.parser.emplace(&s);
  // The body decoded from these bytes is at most as long: one allocation for it, not a string
  // doubling once per chunk of a stream that arrives whole.
  s.pending.reserve(s.pending.size() + c.in.data().size());
  while (!c.in.empty() && !s.complete) {
    error_code ec;
    const std::string_view data = c.in.data();
    const size_t n = s.parser->put(asio::buffer(data.data(), data.size()), ec);
    c.in.Consume(n);
    const bool need_more = ec == http::error::need_more;
    if (ec && !need_more) {
      Fail(s, ErrorKind::kOther, "malformed response: " + ec.message());
      return false;
    }
    // (A put that needs more may still have finished the head and parsed some body.)
    if (s.parser->is_header_done() && !s.head_complete) {
      if (s.head.status >= 200 || s.head.status == 101) {
        s.head_complete = true;
      } else if (s.parser->is_done()) {
        s.parser.emplace(&s);  // a 1xx: the final head follows
        continue;
      }
    }
    if (need_more) break;
    if (s.parser->is_done()) {
      s.complete = true;
    } else if (n == 0) {
      break;
    }
  }
  if (s.complete) {
    // Reusable only when nothing follows the response and both sides keep the connection.
    const bool keep = c.in.empty() && s.parser->keep_alive() && !s.parser->need_eof();
    End(s, keep);
  }
  return true;
}

// Reads once into the connection's buffer (under the deadline the caller set). {error, bytes}.
// A head must be whole in the buffer: it grows to kMaxHead for one.
asio::awaitable<std::pair<error_code, size_t>> ReadSome(std::shared_ptr<State> s,
                                                        std::shared_ptr<Conn> c) {
  error_code ec = asio::error::no_buffer_space;
  size_t n = 0;
  std::span<char> room = c->in.Space(kReadBuffer, s->head_complete ? 0 : kMaxHead);
  if (!room.empty()) {
    try {
      std::tie(ec, n) = co_await c->socket.async_read_some(
          asio::buffer(room.data(), room.size()), asio::as_tuple(asio::use_awaitable));
    } catch (const boost::system::system_error&) {
      ec = asio::error::operation_aborted;  // the awaiting coroutine was cancelled
    }
    c->in.Commit(n);
  }
  co_return std::make_pair(ec, n);
}

// A new connection to the exchange's target, or null (the exchange failed).
asio::awaitable<std::shared_ptr<Conn>> Connect(std::shared_ptr<State> s) {
  auto c = std::make_shared<Conn>(s->client->io());
  s->conn = c;  // so Cancel() and the watchdog close it
  s->client->Watch(*s, s->connect_timeout_ms);
  const Target& t = *s->target;
  error_code ec;
  tcp::resolver::results_type endpoints;
  asio::ip::address address = asio::ip::make_address(t.host, ec);
  if (!ec) {
    endpoints = tcp::resolver::results_type::create(tcp::endpoint(address, t.port), t.host,
                                                    std::to_string(t.port));
  } else {
    tcp::resolver resolver(s->client->io());
    c->resolver = &resolver;
    try {
      std::tie(ec, endpoints) = co_await resolver.async_resolve(
          t.host, std::to_string(t.port), asio::as_tuple(asio::use_awaitable));
    } catch (const boost::system::system_error&) {
      ec = asio::error::operation_aborted;
    }
    c->resolver = nullptr;
  }
  std::string failed_to = "resolve " + t.host;  // for the message, when ec is set
  if (!ec) {
    failed_to = "connect to " + t.authority;
    ec = asio::error::host_not_found;
  }
  // Each address in turn (not asio::async_connect over the range: it reports a socket that
  // could not be opened, e.g. out of descriptors, as operation_aborted, which reads as a
  // cancelled exchange).
  for (const auto& entry : endpoints) {
    if (s->ended() || c->closed) break;
    error_code ignored;
    c->socket.close(ignored);
    if (c->socket.open(entry.endpoint().protocol(), ec)) continue;
    try {
      std::tie(ec) = co_await c->socket.async_connect(entry.endpoint(),
                                                      asio::as_tuple(asio::use_awaitable));
    } catch (const boost::system::system_error&) {
      ec = asio::error::operation_aborted;
    }
    if (!ec || ec == asio::error::operation_aborted) break;
  }
  if (!s->ended()) s->client->Done(*s);
  if (s->ended()) co_return nullptr;  // cancelled meanwhile
  if (ec) {
    if (s->timed_out || ec == asio::error::operation_aborted) {
      FailIo(*s, ec, "connection", s->connect_timeout_ms);
    } else {
      Fail(*s, ErrorKind::kConnect, "could not " + failed_to + ": " + ec.message());
    }
    co_return nullptr;
  }
  c->socket.set_option(tcp::no_delay(true), ec);
  c->socket.set_option(asio::socket_base::keep_alive(true), ec);
  const int idle_s = 30, interval_s = 15;
  ::setsockopt(c->socket.native_handle(), IPPROTO_TCP, TCP_KEEPIDLE, &idle_s, sizeof(idle_s));
  ::setsockopt(c->socket.native_handle(), IPPROTO_TCP, TCP_KEEPINTVL, &interval_s,
               sizeof(interval_s));
  co_return c;
}

asio::awaitable<bool> DoReadHead(std::shared_ptr<State> s) {
  if (s->head_complete) co_return true;
  if (s->ended()) {
    if (s->failure.kind == ErrorKind::kNone) {
      s->failure = {ErrorKind::kOther, "the transfer ended without a response head", 0};
    }
    co_return false;
  }
  // Twice at most: the second time on a new connection, when a kept one turned out dead.
  for (int attempt = 0; attempt < 2; ++attempt) {
    std::shared_ptr<Conn> c = s->client->TakeIdle(s->target->authority);
    const bool reused = c != nullptr;
    if (reused) {
      s->conn = c;
    } else {
      c = co_await Connect(s);
      if (c == nullptr) co_return false;
    }
    s->client->Watch(*s, s->first_byte_timeout_ms);
    error_code ec;
    try {
      // asio::async_write, not a synchronous send first (http/socket_write.h): the read of the
      // answer follows at once, and after a synchronous send it finds nothing yet (an EAGAIN
      // recv per request, measured); a write completing through the loop gives the upstream
      // that time.
      const std::array<asio::const_buffer, 2> out{asio::buffer(s->head_text),
                                                  asio::buffer(s->body)};
      std::tie(ec, std::ignore) =
          co_await asio::async_write(c->socket, out, asio::as_tuple(asio::use_awaitable));
    } catch (const boost::system::system_error&) {
      ec = asio::error::operation_aborted;
    }
    if (s->ended()) co_return false;
    // A kept connection the server closed while idle: the write or the first read fails before
    // any byte of an answer (not by our deadline or a cancel). Sent once more, afresh.
    auto dead_kept = [&](bool answer_started) {
      return reused && attempt == 0 && !answer_started && !s->timed_out &&
             ec != asio::error::operation_aborted;
    };
    if (ec && !dead_kept(false)) {
      FailIo(*s, ec, "response head", s->first_byte_timeout_ms);
      co_return false;
    }
    if (!ec) {
      s->parser.reset();  // made by Parse, unless the answer is taken whole (TakeWhole)
      // The head's deadline: first_byte after the request went out, for all its reads.
      s->client->Watch(*s, s->first_byte_timeout_ms);
      bool got_bytes = false;
      while (!s->head_complete) {
        auto [read_ec, n] = co_await ReadSome(s, c);
        if (s->ended()) co_return false;
        got_bytes |= n > 0;
        ec = read_ec;
        if (ec) break;
        if (!s->parser && TakeWhole(*s, *c)) break;
        if (!Parse(*s, *c)) co_return false;
      }
      if (!s->ended()) s->client->Done(*s);
      if (s->head_complete) co_return true;
      if (!dead_kept(got_bytes)) {
        if (ec == asio::error::eof) {
          Fail(*s, ErrorKind::kReset, "the connection closed before a response head");
        } else if (ec == asio::error::no_buffer_space) {
          Fail(*s, ErrorKind::kOther, "malformed response: head larger than 64 KiB");
        } else {
          FailIo(*s, ec, "response head", s->first_byte_timeout_ms);
        }
        co_return false;
      }
    }
    c->Close();  // dead_kept: once more on a new connection
    s->conn = nullptr;
    s->head = {};
    s->pending.clear();
  }
  co_return false;  // unreachable: the second attempt returns
}

asio::awaitable<bool> DoReadBody(std::shared_ptr<State> s, std::string& out) {
  for (;;) {
    if (s->failure.kind == ErrorKind::kCancelled) co_return false;
    if (!s->pending.empty()) {
      if (out.empty()) {
        out.swap(s->pending);
      } else {
        out.append(s->pending);
      }
      s->pending.clear();
      co_return true;
    }
    if (s->ended() || !s->head_complete) co_return false;
    std::shared_ptr<Conn> c = s->conn;
    s->client->Watch(*s, s->idle_timeout_ms);
    auto [ec, n] = co_await ReadSome(s, c);
    if (s->ended()) continue;  // cancelled meanwhile
    s->client->Done(*s);
    if (ec == asio::error::eof) {
      error_code parse_ec;
      s->parser->put_eof(parse_ec);
      if (parse_ec) {
        Fail(*s, ErrorKind::kReset, "the connection closed mid-body");
      } else {
        s->complete = true;
        End(*s, false);
      }
      continue;
    }
    if (ec) {
      FailIo(*s, ec, "body data", s->idle_timeout_ms);
      continue;
    }
    Parse(*s, *c);
  }
}

class Http1Exchange final : public Exchange {
 public:
  explicit Http1Exchange(std::shared_ptr<State> s) : s_(std::move(s)) {}
  ~Http1Exchange() override { Cancel(); }
  asio::awaitable<bool> ReadHead() override { return DoReadHead(s_); }
  const ResponseHead& head() const override { return s_->head; }
  asio::awaitable<bool> ReadBody(std::string& out) override {
    return DoReadBody(s_, out);
  }
  bool BodyReady() const override { return !s_->pending.empty() || s_->ended(); }
  bool BodyComplete() const override {
    return s_->complete && s_->pending.empty() && s_->failure.kind == ErrorKind::kNone;
  }
  const Failure& failure() const override { return s_->failure; }
  void Cancel() override {
    if (s_->failure.kind == ErrorKind::kNone) s_->pending.clear();
    if (!s_->ended()) Fail(*s_, ErrorKind::kCancelled, "cancelled");
  }

 private:
  std::shared_ptr<State> s_;
};

// ---------------------------------------------------------------------------------------------
// Http1Client

Http1Client::~Http1Client() {
  while (live_ != nullptr) Fail(*live_, ErrorKind::kCancelled, "upstream client destroyed");
  for (auto& [authority, conns] : idle_) {
    for (auto& c : conns) c->Close();
  }
}

std::unique_ptr<Exchange> Http1Client::Start(Request r) {
  auto s = std::make_shared<State>();
  s->connect_timeout_ms = r.connect_timeout_ms;
  s->first_byte_timeout_ms = r.first_byte_timeout_ms;
  s->idle_timeout_ms = r.idle_timeout_ms;
  s->is_head = r.method == "HEAD";
  s->response_headers = r.response_headers;
  Link(s.get());
  s->target = ParsedUrl(r.url);
  if (!s->target) {
    Fail(*s, ErrorKind::kOther, "invalid URL");
    return std::make_unique<Http1Exchange>(std::move(s));
  }
  if (!IsToken(r.method)) {
    Fail(*s, ErrorKind::kOther, "invalid method");
    return std::make_unique<Http1Exchange>(std::move(s));
  }
  std::string& h = s->head_text;
  h.reserve(128 + r.url.size() + 64 * r.headers.size());
  AppendPieces(h, {r.method, " "sv, s->target->target, " HTTP/1.1\r\nHost: "sv,
                   s->target->authority, "\r\n"sv});
  for (const auto& [name, value] : r.headers) {
    if (!IsToken(name) || HasControlChars(value)) {
      Fail(*s, ErrorKind::kOther, "invalid header");
      return std::make_unique<Http1Exchange>(std::move(s));
    }
    if (IsDroppedHeader(name)) continue;
    AppendPieces(h, {name, ": "sv, value, "\r\n"sv});
  }
  // Framing as curl did it: a Content-Length for every body, also an empty POST's; none for a
  // GET or HEAD without one.
  if (!r.body.empty() || (r.method != "GET" && r.method != "HEAD")) {
    AppendPieces(h, {"Content-Length: "sv, std::to_string(r.body.size()), "\r\n"sv});
  }
  h.append("\r\n"sv);
  s->body = std::move(r.body);
  return std::make_unique<Http1Exchange>(std::move(s));
}

std::shared_ptr<const Target> Http1Client::ParsedUrl(const std::string& url) {
  if (auto it = urls_.find(url); it != urls_.end()) return it->second;
  std::optional<Target> t = ParseHttpUrl(url);
  std::shared_ptr<const Target> parsed =
      t ? std::make_shared<const Target>(std::move(*t)) : nullptr;
  if (urls_.size() >= kMaxCachedUrls) urls_.clear();
  urls_.emplace(url, parsed);
  return parsed;
}

std::shared_ptr<Conn> Http1Client::TakeIdle(const std::string& authority) {
  auto it = idle_.find(authority);
  if (it == idle_.end()) return nullptr;
  const Clock::time_point now = Clock::now();
  while (!it->second.empty()) {
    std::shared_ptr<Conn> c = std::move(it->second.back());
    it->second.pop_back();
    --idle_count_;
    if (now - c->idle_since < kMaxIdleAge) return c;
    c->Close();
  }
  return nullptr;
}

void Http1Client::Keep(const std::string& authority, std::shared_ptr<Conn> c) {
  if (idle_count_ >= static_cast<size_t>(options_.max_idle_connections)) {
    c->Close();
    return;
  }
  ++c->served;
  c->idle_since = Clock::now();
  idle_[authority].push_back(std::move(c));
  ++idle_count_;
}

void Http1Client::Link(State* s) {
  s->client = this;
  s->next = live_;
  if (live_ != nullptr) live_->prev = s;
  live_ = s;
  ++in_flight_;
}

void Http1Client::Unlink(State* s) {
  if (s->prev != nullptr) s->prev->next = s->next;
  if (s->next != nullptr) s->next->prev = s->prev;
  if (live_ == s) live_ = s->next;
  s->prev = s->next = nullptr;
  watchdog_.Done(*s);
  if (--in_flight_ == 0) watchdog_.DisarmIfIdle();
}

}  // namespace

bool Http1Handles(const Request& request) {
  return request.proxy_url.empty() && StartsWithHttp(request.url);
}

std::unique_ptr<Client> CreateHttp1Client(asio::io_context& io, const ClientOptions& options) {
  return std::make_unique<Http1Client>(io, options);
}

}  // namespace keygate::upstream
