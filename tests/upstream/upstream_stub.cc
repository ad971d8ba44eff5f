#include "tests/upstream/upstream_stub.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <map>
#include <mutex>
#include <thread>

namespace keygate::testing {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

// "/sse?events=3&size=10" -> path "/sse", params {events: 3, size: 10}.
struct Target {
  std::string path;
  std::map<std::string, long long> params;
  long long Get(const std::string& key, long long fallback) const {
    auto it = params.find(key);
    return it == params.end() ? fallback : it->second;
  }
};

Target ParseTarget(std::string_view target) {
  Target t;
  size_t q = target.find('?');
  t.path = std::string(target.substr(0, q));
  if (q == std::string_view::npos) return t;
  std::string_view query = target.substr(q + 1);
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    size_t eq = pair.find('=');
    if (eq != std::string_view::npos) {
      t.params[std::string(pair.substr(0, eq))] = std::atoll(std::string(pair.substr(eq + 1)).c_str());
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return t;
}

std::string Chunk(std::string_view data) {
  char size[32];
  std::snprintf(size, sizeof(size), "%zx\r\n", data.size());
  std::string out(size);
  out.append(data).append("\r\n");
  return out;
}

std::string Event(long long i, long long size) {
  std::string e = "data: " + std::to_string(i) + " ";
  if (size > static_cast<long long>(e.size()) + 2) e.append(size - e.size() - 2, 'x');
  e.append("\n\n");
  return e;
}

}  // namespace

std::string StubRequest::Header(std::string_view lower_name) const {
  for (const auto& [name, value] : headers) {
    if (name == lower_name) return value;
  }
  return "";
}

struct UpstreamStub::Impl {
  asio::io_context io;
  tcp::acceptor acceptor{io};
  std::thread thread;
  uint16_t port = 0;

  mutable std::mutex mu;
  mutable std::condition_variable cv;
  std::vector<StubRequest> requests;  // GUARDED_BY(mu)
  int accepted = 0;                   // GUARDED_BY(mu)
  int closed = 0;                     // GUARDED_BY(mu)
  std::atomic<int64_t> sse_written{0};

  asio::awaitable<void> Accept() {
    for (;;) {
      auto [ec, socket] = co_await acceptor.async_accept(kTuple);
      if (ec) co_return;
      int id;
      {
        std::lock_guard<std::mutex> lock(mu);
        id = ++accepted;
      }
      asio::co_spawn(io, Serve(std::move(socket), id), asio::detached);
    }
  }

  asio::awaitable<void> Serve(tcp::socket socket, int id) {
    error_code ignored;
    uint16_t peer_port = socket.remote_endpoint(ignored).port();
    std::string buf;
    for (;;) {
      auto [ec, n] = co_await asio::async_read_until(socket, asio::dynamic_buffer(buf),
                                                     "\r\n\r\n", kTuple);
      if (ec) break;
      StubRequest req;
      req.connection_id = id;
      req.peer_port = peer_port;
      std::string_view head(buf.data(), n);
      size_t eol = head.find("\r\n");
      std::string_view line = head.substr(0, eol);
      size_t sp1 = line.find(' ');
      size_t sp2 = line.find(' ', sp1 + 1);
      req.method = std::string(line.substr(0, sp1));
      req.target = std::string(line.substr(sp1 + 1, sp2 - sp1 - 1));
      head.remove_prefix(eol + 2);
      size_t content_length = 0;
      while (!head.empty()) {
        size_t e = head.find("\r\n");
        std::string_view h = head.substr(0, e);
        head.remove_prefix(e == std::string_view::npos ? head.size() : e + 2);
        size_t colon = h.find(':');
        if (colon == std::string_view::npos) continue;
        std::string name = Lower(Trim(h.substr(0, colon)));
        std::string value(Trim(h.substr(colon + 1)));
        if (name == "content-length") content_length = std::stoul(value);
        req.headers.emplace_back(std::move(name), std::move(value));
      }
      buf.erase(0, n);
      if (buf.size() < content_length) {
        auto [ec2, m] = co_await asio::async_read(
            socket, asio::dynamic_buffer(buf), asio::transfer_exactly(content_length - buf.size()),
            kTuple);
        if (ec2) break;
      }
      req.body = buf.substr(0, content_length);
      buf.erase(0, content_length);
      Target target = ParseTarget(req.target);
      {
        std::lock_guard<std::mutex> lock(mu);
        requests.push_back(req);
      }
      if (!co_await Respond(socket, id, req, target)) break;
    }
    socket.close(ignored);
    {
      std::lock_guard<std::mutex> lock(mu);
      ++closed;
    }
    cv.notify_all();
  }

  static asio::awaitable<bool> Write(tcp::socket& socket, std::string_view data) {
    auto [ec, n] = co_await asio::async_write(socket, asio::buffer(data), kTuple);
    co_return !ec;
  }

  asio::awaitable<void> Sleep(long long ms) {
    asio::steady_timer timer(io, std::chrono::milliseconds(ms));
    co_await timer.async_wait(kTuple);
  }

  // Waits until the client closes the connection (reads and drops anything it sends).
  static asio::awaitable<void> WaitForPeerClose(tcp::socket& socket) {
    char sink[512];
    for (;;) {
      auto [ec, n] = co_await socket.async_read_some(asio::buffer(sink), kTuple);
      if (ec) co_return;
    }
  }

  // Returns false when the connection must end.
  asio::awaitable<bool> Respond(tcp::socket& socket, int id, const StubRequest& req,
                                const Target& target) {
    const std::string conn = "x-stub-connection: " + std::to_string(id) + "\r\n";
    const std::string chunked_head =
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n" +
        conn + "\r\n";
    if (target.path == "/echo" || target.path == "/delay") {
      if (target.path == "/delay") co_await Sleep(target.Get("ms", 0));
      std::string out = "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n" + conn +
                        "X-Multi: a\r\nX-Multi: b\r\nContent-Length: " +
                        std::to_string(req.body.size()) + "\r\n\r\n" + req.body;
      co_return co_await Write(socket, out);
    }
    if (target.path == "/status") {
      long long code = target.Get("code", 500);
      std::string body = R"({"error":{"message":"stub status )" + std::to_string(code) + "\"}}";
      std::string out = "HTTP/1.1 " + std::to_string(code) + " Stub\r\n" + conn +
                        "Content-Type: application/json\r\nContent-Length: " +
                        std::to_string(body.size()) + "\r\n\r\n" + body;
      co_return co_await Write(socket, out);
    }
    if (target.path == "/sse") {
      long long events = target.Get("events", 10), size = target.Get("size", 64);
      long long delay = target.Get("delay_ms", 0);
      if (!co_await Write(socket, chunked_head)) co_return false;
      std::string batch;
      for (long long i = 0; i < events; ++i) {
        batch += Event(i, size);
        if (delay > 0 || batch.size() >= (64 << 10) || i + 1 == events) {
          if (!co_await Write(socket, Chunk(batch))) co_return false;
          sse_written += static_cast<int64_t>(batch.size());
          batch.clear();
          if (delay > 0) co_await Sleep(delay);
        }
      }
      co_return co_await Write(socket, "0\r\n\r\n");
    }
    if (target.path == "/stall") {
      std::string body(target.Get("bytes", 10), 's');
      if (!co_await Write(socket, chunked_head + Chunk(body))) co_return false;
      co_await WaitForPeerClose(socket);
      co_return false;
    }
    if (target.path == "/reset") {
      std::string out = "HTTP/1.1 200 OK\r\n" + conn + "Content-Length: " +
                        std::to_string(10 << 20) + "\r\n\r\n" +
                        std::string(target.Get("bytes", 1000), 'r');
      if (!co_await Write(socket, out)) co_return false;
      co_await Sleep(100);  // let the client read what was sent: an RST may discard unread data
      error_code ignored;
      socket.set_option(tcp::socket::linger(true, 0), ignored);  // close() now sends RST
      socket.close(ignored);
      co_return false;
    }
    if (target.path == "/forever") {
      if (!co_await Write(socket, chunked_head)) co_return false;
      for (long long i = 0;; ++i) {
        if (!co_await Write(socket, Chunk(Event(i, 64)))) co_return false;
        co_await Sleep(5);
      }
    }
    std::string out = "HTTP/1.1 404 Not Found\r\n" + conn + "Content-Length: 0\r\n\r\n";
    co_return co_await Write(socket, out);
  }
};

UpstreamStub::UpstreamStub() : impl_(std::make_unique<Impl>()) {
  tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), 0);
  impl_->acceptor.open(endpoint.protocol());
  impl_->acceptor.set_option(tcp::acceptor::reuse_address(true));
  impl_->acceptor.bind(endpoint);
  impl_->acceptor.listen();
  impl_->port = impl_->acceptor.local_endpoint().port();
  asio::co_spawn(impl_->io, impl_->Accept(), asio::detached);
  impl_->thread = std::thread([this] { impl_->io.run(); });
}

UpstreamStub::~UpstreamStub() {
  impl_->io.stop();
  impl_->thread.join();
}

uint16_t UpstreamStub::port() const { return impl_->port; }

std::string UpstreamStub::Url(std::string_view target) const {
  return "http://127.0.0.1:" + std::to_string(impl_->port) + std::string(target);
}

std::vector<StubRequest> UpstreamStub::requests() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->requests;
}

int UpstreamStub::connections_accepted() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->accepted;
}

int UpstreamStub::connections_closed() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->closed;
}

int64_t UpstreamStub::sse_bytes_written() const { return impl_->sse_written.load(); }

bool UpstreamStub::WaitForClosed(int n, std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> lock(impl_->mu);
  return impl_->cv.wait_for(lock, timeout, [&] { return impl_->closed >= n; });
}

}  // namespace keygate::testing
