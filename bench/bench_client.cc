// bench_client: the measurements wrk cannot make, over plain sockets (no HTTP library between
// the clock and the wire).
//
//   bench_client seq --port P --body FILE [--header "K: V"]... [--n 10000] [--expect FILE]
//       One keep-alive connection, N requests one after another. Prints per-request latency
//       (p50/p99/p99.9, µs) and, for streams, the time to the first SSE event. With --expect,
//       every response body (de-chunked) must equal FILE byte for byte: the fidelity check.
//   bench_client streams --port P --body FILE [--header "K: V"]... --n 10000 --pid PID
//       Opens N connections at once, each sending one streaming request, waits until every one
//       has received its first SSE event or failed (or none has for --stall-ms, 3000: those left
//       are `pending`), lets them run --settle-ms (3000), then reads PID's VmRSS: prints RSS
//       before and with the N streams open, and per stream. Then closes them.
//
// Output: one line starting with RESULT, key=value pairs (bench/run.sh parses it).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Args {
  std::string mode;
  int port = 0;
  std::string body;
  std::vector<std::string> headers;
  int n = 10000;
  std::string expect;
  bool has_expect = false;
  int pid = 0;
  int timeout_s = 120;
  int settle_ms = 3000;
  int stall_ms = 3000;
};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "bench_client: cannot read %s\n", path.c_str());
    std::exit(2);
  }
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

Args Parse(int argc, char** argv) {
  Args a;
  if (argc < 2) {
    std::fprintf(stderr, "usage: bench_client seq|streams --port P --body FILE ...\n");
    std::exit(2);
  }
  a.mode = argv[1];
  for (int i = 2; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    const char* v = argv[i + 1];
    if (k == "--port") a.port = std::atoi(v);
    else if (k == "--body") a.body = ReadFile(v);
    else if (k == "--header") a.headers.emplace_back(v);
    else if (k == "--n") a.n = std::atoi(v);
    else if (k == "--expect") a.expect = ReadFile(v), a.has_expect = true;
    else if (k == "--pid") a.pid = std::atoi(v);
    else if (k == "--timeout-s") a.timeout_s = std::atoi(v);
    else if (k == "--settle-ms") a.settle_ms = std::atoi(v);
    else if (k == "--stall-ms") a.stall_ms = std::atoi(v);
    else {
      std::fprintf(stderr, "bench_client: unknown flag %s\n", k.c_str());
      std::exit(2);
    }
  }
  return a;
}

std::string Request(const Args& a) {
  std::string r = "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:" +
                  std::to_string(a.port) + "\r\nContent-Type: application/json\r\n";
  for (const auto& h : a.headers) r += h + "\r\n";
  r += "Content-Length: " + std::to_string(a.body.size()) + "\r\n\r\n" + a.body;
  return r;
}

int Connect(int port, bool nonblocking) {
  int fd = ::socket(AF_INET, SOCK_STREAM | (nonblocking ? SOCK_NONBLOCK : 0), 0);
  if (fd < 0) return -1;
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0 && errno != EINPROGRESS) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Incremental HTTP/1.1 response reader: status, headers, then a Content-Length or chunked body,
// de-chunked into body(). Feed() returns true once the response is complete.
class ResponseReader {
 public:
  bool Feed(const char* p, size_t n) {
    raw_.append(p, n);
    if (!head_done_) {
      size_t e = raw_.find("\r\n\r\n");
      if (e == std::string::npos) return false;
      std::string head = raw_.substr(0, e + 2);
      raw_.erase(0, e + 4);
      head_done_ = true;
      status_ = std::atoi(head.c_str() + 9);
      std::string lower = head;
      std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
      chunked_ = lower.find("transfer-encoding: chunked") != std::string::npos;
      size_t cl = lower.find("content-length:");
      if (cl != std::string::npos) length_ = std::strtoll(lower.c_str() + cl + 15, nullptr, 10);
    }
    if (!chunked_) {
      body_ += raw_;
      raw_.clear();
      return length_ >= 0 && static_cast<int64_t>(body_.size()) >= length_;
    }
    for (;;) {
      if (chunk_left_ == 0) {
        size_t e = raw_.find("\r\n");
        if (e == std::string::npos) return false;
        if (e == 0) {  // the CRLF that ends a chunk's data
          raw_.erase(0, 2);
          continue;
        }
        int64_t size = std::strtoll(raw_.c_str(), nullptr, 16);
        if (size == 0) {
          if (raw_.find("\r\n\r\n") == std::string::npos && raw_.size() < e + 4) return false;
          return true;
        }
        raw_.erase(0, e + 2);
        chunk_left_ = size;
      }
      size_t take = std::min<size_t>(raw_.size(), static_cast<size_t>(chunk_left_));
      body_.append(raw_, 0, take);
      raw_.erase(0, take);
      chunk_left_ -= static_cast<int64_t>(take);
      if (chunk_left_ > 0 || raw_.empty()) return false;
    }
  }
  int status() const { return status_; }
  const std::string& body() const { return body_; }
  bool has_event() const { return body_.find("\n\n") != std::string::npos; }

 private:
  std::string raw_, body_;
  bool head_done_ = false, chunked_ = false;
  int status_ = 0;
  int64_t length_ = -1, chunk_left_ = 0;
};

double Pct(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p / 100.0 * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

int Seq(const Args& a) {
  const std::string req = Request(a);
  int fd = Connect(a.port, false);
  if (fd < 0) {
    std::perror("bench_client: connect");
    return 1;
  }
  std::vector<double> total_us, first_us;
  int ok = 0, bad = 0, mismatch = 0;
  char buf[65536];
  for (int i = 0; i < a.n; ++i) {
    auto t0 = Clock::now();
    if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
      std::perror("bench_client: send");
      return 1;
    }
    ResponseReader rr;
    bool first_seen = false;
    for (;;) {
      ssize_t r = ::recv(fd, buf, sizeof buf, 0);
      if (r <= 0) {
        std::fprintf(stderr, "bench_client: connection closed after %d requests\n", i);
        return 1;
      }
      bool done = rr.Feed(buf, static_cast<size_t>(r));
      if (!first_seen && rr.has_event()) {
        first_seen = true;
        first_us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
      }
      if (done) break;
    }
    total_us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
    if (rr.status() != 200) {
      if (bad++ == 0) std::fprintf(stderr, "bench_client: status %d: %s\n", rr.status(),
                                   rr.body().substr(0, 300).c_str());
    } else if (a.has_expect && rr.body() != a.expect) {
      if (mismatch++ == 0) std::fprintf(stderr, "bench_client: body differs:\n%s\n",
                                        rr.body().substr(0, 2000).c_str());
    } else {
      ++ok;
    }
  }
  ::close(fd);
  std::printf("RESULT n=%d ok=%d bad_status=%d mismatch=%d p50_us=%.1f p99_us=%.1f p999_us=%.1f",
              a.n, ok, bad, mismatch, Pct(total_us, 50), Pct(total_us, 99), Pct(total_us, 99.9));
  if (!first_us.empty()) {
    std::printf(" first_event_p50_us=%.1f first_event_p99_us=%.1f", Pct(first_us, 50),
                Pct(first_us, 99));
  }
  std::printf("\n");
  return bad == 0 && mismatch == 0 ? 0 : 1;
}

long RssKiB(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
  }
  return -1;
}

int Streams(const Args& a) {
  const std::string req = Request(a);
  const long rss_before = RssKiB(a.pid);
  int ep = ::epoll_create1(0);
  struct Stream {
    int fd = -1;
    size_t sent = 0;
    ResponseReader rr;
    bool first = false;
    bool ended = false;  // the whole response arrived: the stream is over
  };
  std::vector<Stream> streams(static_cast<size_t>(a.n));
  int failed = 0;
  for (int i = 0; i < a.n; ++i) {
    int fd = Connect(a.port, true);
    if (fd < 0) {
      ++failed;
      continue;
    }
    streams[static_cast<size_t>(i)].fd = fd;
    epoll_event ev{};
    ev.events = EPOLLOUT | EPOLLIN;
    ev.data.u32 = static_cast<uint32_t>(i);
    ::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
  }
  int with_event = 0;
  const auto deadline = Clock::now() + std::chrono::seconds(a.timeout_s);
  std::vector<epoll_event> events(1024);
  char buf[16384];
  // Waiting for the last few streams ends when none has started or failed for --stall-ms: a
  // stream the proxy keeps retrying (its upstream connect failing at the descriptor limit) would
  // otherwise hold the RSS reading until the others have ended (a stream lasts ~20 s).
  auto last_progress = Clock::now();
  int progress = 0;
  while (with_event + failed < a.n && Clock::now() < deadline &&
         Clock::now() - last_progress < std::chrono::milliseconds(a.stall_ms)) {
    if (with_event + failed != progress) {
      progress = with_event + failed;
      last_progress = Clock::now();
    }
    int n = ::epoll_wait(ep, events.data(), static_cast<int>(events.size()), 200);
    for (int k = 0; k < n; ++k) {
      Stream& s = streams[events[static_cast<size_t>(k)].data.u32];
      if (s.fd < 0) continue;
      if ((events[static_cast<size_t>(k)].events & EPOLLOUT) && s.sent < req.size()) {
        ssize_t w = ::send(s.fd, req.data() + s.sent, req.size() - s.sent, MSG_NOSIGNAL);
        if (w > 0) s.sent += static_cast<size_t>(w);
        if (s.sent == req.size()) {
          epoll_event ev{};
          ev.events = EPOLLIN;
          ev.data.u32 = events[static_cast<size_t>(k)].data.u32;
          ::epoll_ctl(ep, EPOLL_CTL_MOD, s.fd, &ev);
        }
      }
      if (events[static_cast<size_t>(k)].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        ssize_t r = ::recv(s.fd, buf, sizeof buf, 0);
        if (r > 0) {
          if (s.rr.Feed(buf, static_cast<size_t>(r))) s.ended = true;
          if (!s.first && s.rr.status() != 0 && s.rr.status() != 200) {
            // An error answer (no stream will come): count it now rather than wait for the
            // timeout, after which the RSS would be read with the other streams long finished.
            if (failed++ == 0) {
              std::fprintf(stderr, "bench_client: a stream got status %d: %s\n", s.rr.status(),
                           s.rr.body().substr(0, 300).c_str());
            }
            ::close(s.fd);
            s.fd = -1;
            continue;
          }
          if (!s.first && s.rr.has_event()) {
            s.first = true;
            ++with_event;
          }
        } else if (r == 0 || errno != EAGAIN) {
          ::close(s.fd);
          s.fd = -1;
          if (!s.first) ++failed;
        }
      }
    }
  }
  // Let the streams settle (events keep arriving, one per second each) before reading the RSS:
  // read at once, it varies with how many streams are still being set up.
  const auto settle_until = Clock::now() + std::chrono::milliseconds(a.settle_ms);
  while (Clock::now() < settle_until) {
    int n = ::epoll_wait(ep, events.data(), static_cast<int>(events.size()), 100);
    for (int k = 0; k < n; ++k) {
      Stream& s = streams[events[static_cast<size_t>(k)].data.u32];
      if (s.fd < 0) continue;
      ssize_t r = ::recv(s.fd, buf, sizeof buf, 0);
      if (r > 0) {
        if (s.rr.Feed(buf, static_cast<size_t>(r))) s.ended = true;
      } else if (r == 0 || errno != EAGAIN) {
        ::close(s.fd);
        s.fd = -1;
      }
    }
  }
  const long rss_open = RssKiB(a.pid);
  // `ended` counts streams whose response already finished (its connection is still open): when
  // setting the streams up took longer than a stream lasts, the RSS was read with fewer streams
  // open than counted, and the figure is too low — the caller must not use it.
  int open_now = 0, status_ok = 0, ended = 0;
  for (auto& s : streams) {
    if (s.fd >= 0 && !s.ended) ++open_now;
    if (s.rr.status() == 200) ++status_ok;
    if (s.first && s.ended) ++ended;
  }
  for (auto& s : streams) {
    if (s.fd >= 0) ::close(s.fd);
  }
  const double per_stream =
      with_event > 0 ? static_cast<double>(rss_open - rss_before) / with_event : 0;
  std::printf("RESULT streams=%d with_first_event=%d status_200=%d open=%d ended=%d failed=%d "
              "pending=%d rss_before_kib=%ld rss_open_kib=%ld per_stream_kib=%.2f\n",
              a.n, with_event, status_ok, open_now, ended, failed, a.n - with_event - failed,
              rss_before, rss_open, per_stream);
  return with_event == a.n && ended == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Args a = Parse(argc, argv);
  if (a.mode == "seq") return Seq(a);
  if (a.mode == "streams") return Streams(a);
  std::fprintf(stderr, "bench_client: mode must be seq or streams\n");
  return 2;
}
