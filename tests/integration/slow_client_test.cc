// A slow client on a fast, long stream: the real `keygate serve` holds a bounded amount of it
// (server.max_stream_buffer_bytes, then the upstream transfer is paused), so its memory stays flat
// while the upstream has 20 MB to send and the client takes 1 byte every 10 ms. When the client
// leaves, the upstream request is cancelled.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "tests/integration/deployment.h"
#include "tests/testing/http_client.h"
#include "tests/testing/store_env.h"

namespace keygate::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// One IPv4 TCP socket of /proc/net/tcp.
struct TcpSocket {
  uint16_t local_port = 0, remote_port = 0;
  int state = 0;  // 1 = ESTABLISHED
  uint64_t tx_queue = 0, rx_queue = 0;
};

std::vector<TcpSocket> TcpSockets() {
  std::vector<TcpSocket> out;
  std::ifstream in("/proc/net/tcp");
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::istringstream ss(line);
    std::string sl, local, remote, st, queues;
    ss >> sl >> local >> remote >> st >> queues;
    TcpSocket s;
    s.local_port =
        static_cast<uint16_t>(std::stoul(local.substr(local.find(':') + 1), nullptr, 16));
    s.remote_port =
        static_cast<uint16_t>(std::stoul(remote.substr(remote.find(':') + 1), nullptr, 16));
    s.state = std::stoi(st, nullptr, 16);
    s.tx_queue = std::stoull(queues.substr(0, queues.find(':')), nullptr, 16);
    s.rx_queue = std::stoull(queues.substr(queues.find(':') + 1), nullptr, 16);
    out.push_back(s);
  }
  return out;
}

// A client socket with a small receive buffer, connected to 127.0.0.1:`port`; -1 on failure.
int SlowSocket(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  int rcvbuf = 4096;  // the kernel doubles it and keeps it small: the client window stays tiny
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
  timeval tv{.tv_sec = 2, .tv_usec = 0};  // a read never blocks the test for long
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

TEST(SlowClientTest, OneByteEvery10MsFromA20MbStreamKeepsMemoryBounded) {
  constexpr int64_t kMaxGrowthKiB = 16 << 10;  // 16 MB: less than the stream, far more than needed
  constexpr auto kReadFor = seconds(6);

  auto location = std::move(StoreLocation::Create(StoreKind::kSqlite)).value();
  const std::string& url = location->url();
  const std::string dir = location->dir();
  StubProcess stub(dir + "/stub.log");
  ASSERT_TRUE(stub.ok()) << stub.Log();
  MustCli(url, {"pool", "create", "main", "--provider", "stub"});
  MustCli(url, {"pool", "create", "claude", "--provider", "anth"});
  // "-big-": the stub streams 20,000 events of ~1 KB (~20 MB) as fast as it may.
  MustCli(url, {"keys", "import", "--pool", "main"}, "sk-client-big-aaaaaaaaaaaaaa\n");
  MustCli(url, {"keys", "import", "--pool", "claude"}, "sk-ant-warm-ok-bbbbbbbbbbbb\n");
  std::string client_key = CreateClientKey(url, "slow");
  ASSERT_FALSE(client_key.empty());
  ASSERT_TRUE(WriteFile(dir + "/keygate.toml",
                        ConfigText(stub.base_url(), "max_stream_buffer_bytes = 262144\n")));
  KeygateProcess keygate(url, dir + "/keygate.toml", dir + "/keygate.log");
  ASSERT_TRUE(keygate.ok()) << keygate.Log();

  // Warm up the paths the big stream takes (client, routing, upstream client, SSE), with short
  // answers, before the baseline.
  for (int i = 0; i < 5; ++i) {
    HttpResponse r = HttpRequest("POST", keygate.base_url() + "/v1/messages",
                                 {{"x-api-key", client_key}, {"content-type", "application/json"}},
                                 R"({"model":"claude-sdk","max_tokens":8,"stream":)" +
                                     std::string(i % 2 ? "true" : "false") +
                                     R"(,"messages":[{"role":"user","content":"hi"}]})");
    ASSERT_EQ(r.status, 200) << r.body;
  }
  std::this_thread::sleep_for(milliseconds(300));
  const int64_t baseline = RssKiB(keygate.pid());
  ASSERT_GT(baseline, 0);

  int fd = SlowSocket(keygate.port());
  ASSERT_GE(fd, 0);
  std::string body =
      R"({"model":"gpt-sdk","stream":true,"messages":[{"role":"user","content":"a long one"}]})";
  std::string request =
      "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
      "Authorization: Bearer " +
      client_key +
      "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
      "\r\n\r\n" + body;
  ASSERT_EQ(::send(fd, request.data(), request.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(request.size()));

  std::string got;
  int64_t peak = baseline;
  auto start = std::chrono::steady_clock::now();
  auto next_sample = start;
  while (std::chrono::steady_clock::now() - start < kReadFor) {
    char c;
    ssize_t n = ::recv(fd, &c, 1, 0);
    if (n != 1) break;
    got.push_back(c);
    if (std::chrono::steady_clock::now() >= next_sample) {
      peak = std::max(peak, RssKiB(keygate.pid()));
      next_sample += milliseconds(100);
    }
    std::this_thread::sleep_for(milliseconds(10));
  }
  peak = std::max(peak, RssKiB(keygate.pid()));
  // Where the rest of the stream is: in the kernel buffers between the stub and keygate, and in
  // the stub (blocked in send), never in keygate's memory.
  uint64_t keygate_unread = 0, stub_unsent = 0;
  std::set<uint16_t> stream_ports;  // keygate's end of the big stream's upstream connection
  for (const TcpSocket& s : TcpSockets()) {
    if (s.state != 1) continue;
    if (s.remote_port == stub.port()) keygate_unread += s.rx_queue;
    if (s.local_port == stub.port() && s.tx_queue > 0) {
      stub_unsent += s.tx_queue;
      stream_ports.insert(s.remote_port);
    }
  }
  const int64_t growth = peak - baseline;
  std::printf(
      "slow client: read %zu bytes in %.1f s; keygate RSS baseline %lld KiB, peak %lld KiB, "
      "growth %lld KiB (bound %lld KiB); upstream bytes unread by keygate %llu, unsent by the "
      "stub %llu; the stream is ~20 MB\n",
      got.size(), std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(),
      static_cast<long long>(baseline), static_cast<long long>(peak),
      static_cast<long long>(growth), static_cast<long long>(kMaxGrowthKiB),
      static_cast<unsigned long long>(keygate_unread),
      static_cast<unsigned long long>(stub_unsent));

  ASSERT_TRUE(got.rfind("HTTP/1.1 200", 0) == 0) << got;
  EXPECT_GT(got.size(), 200u) << "the client kept reading throughout";
  EXPECT_LT(got.size(), 2000u) << "the client was not slow";
  EXPECT_LT(growth, kMaxGrowthKiB) << "keygate buffered the stream for the slow client";
  // The stub is blocked on a full connection: keygate stopped taking the stream from it.
  EXPECT_GT(stub_unsent, 1u << 20) << "keygate kept reading the upstream: no backpressure";

  // The client leaves: keygate cancels the upstream request (its connection to the stub closes)
  // and goes on serving.
  ::close(fd);
  // (Other connections to the stub, idle in keygate's pool since the warm-up, may stay open.)
  auto upstream_open = [&] {
    for (const TcpSocket& s : TcpSockets()) {
      if (s.state == 1 && s.remote_port == stub.port() && stream_ports.count(s.local_port)) {
        return true;
      }
    }
    return false;
  };
  auto closed_at = std::chrono::steady_clock::now();
  EXPECT_TRUE(WaitFor([&] { return !upstream_open(); }, seconds(10)))
      << "the upstream stream outlived its client";
  std::printf("slow client: the upstream connection closed %.3f s after the client left\n",
              std::chrono::duration<double>(std::chrono::steady_clock::now() - closed_at).count());
  EXPECT_EQ(HttpRequest("GET", keygate.base_url() + "/healthz", {}, "").status, 200);

  keygate.Signal(SIGTERM);
  auto term_at = std::chrono::steady_clock::now();
  ASSERT_EQ(keygate.Wait(seconds(30)), 0) << keygate.Log();
  std::printf("slow client: keygate exited %.3f s after SIGTERM\n",
              std::chrono::duration<double>(std::chrono::steady_clock::now() - term_at).count());
  auto store = std::move(OpenTestStore(url)).value();
  auto usage = store->ListUsage({.limit = 100});
  ASSERT_TRUE(usage.ok());
  int disconnected = 0;
  for (const auto& u : *usage) disconnected += u.status == 499 ? 1 : 0;
  EXPECT_EQ(disconnected, 1) << "the slow client's request is recorded as a client disconnect";
}

}  // namespace
}  // namespace keygate::testing
