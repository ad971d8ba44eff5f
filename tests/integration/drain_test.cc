// SIGTERM during 100 in-flight streams: the real `keygate serve` stops accepting at once, lets
// every stream finish (server.drain_timeout_ms), writes every usage record, and exits 0.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <thread>

#include "tests/fakes/upstream_stub.h"
#include "tests/integration/deployment.h"
#include "tests/testing/http_client.h"
#include "tests/testing/store_env.h"

namespace keygate::testing {
namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// True when a TCP connect to 127.0.0.1:`port` is refused right now.
bool ConnectRefused(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int r = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  int err = errno;
  ::close(fd);
  return r != 0 && err == ECONNREFUSED;
}

struct ClientStream {
  std::atomic<bool> first_bytes{false};
  double first_byte_s = 0;
  std::atomic<bool> done{false};
  HttpResponse response;
  std::string body;  // what arrived, in order
  double seconds = 0;
};

TEST(DrainTest, SigtermDuring100StreamsCompletesThemAllAndLosesNoUsage) {
  constexpr int kStreams = 100;
  constexpr int kEvents = 300;  // 300 events 20 ms apart: each stream lasts 6 s
  constexpr int kDrainTimeoutMs = 15000;

  auto location = std::move(StoreLocation::Create(StoreKind::kSqlite)).value();
  const std::string& url = location->url();
  const std::string dir = location->dir();
  // The stub runs in this process: its script sets the pace, its records count the requests.
  UpstreamStub stub;
  ASSERT_TRUE(stub.Start());
  const std::vector<std::string> keys = {"sk-drain-ok-aaaaaaaaaaaaaaaa",
                                         "sk-drain-ok-bbbbbbbbbbbbbbbb"};
  for (const auto& k : keys) stub.Script(k, {.stream_events = kEvents, .event_interval_ms = 20});

  MustCli(url, {"pool", "create", "main", "--provider", "stub"});
  MustCli(url, {"keys", "import", "--pool", "main"}, keys[0] + "\n" + keys[1] + "\n");
  std::string client_key = CreateClientKey(url, "drain");
  ASSERT_FALSE(client_key.empty());
  ASSERT_TRUE(WriteFile(
      dir + "/keygate.toml",
      ConfigText(stub.base_url(), "drain_timeout_ms = " + std::to_string(kDrainTimeoutMs))));
  KeygateProcess keygate(url, dir + "/keygate.toml", dir + "/keygate.log");
  ASSERT_TRUE(keygate.ok()) << keygate.Log();

  std::vector<std::unique_ptr<ClientStream>> streams;
  std::vector<std::thread> threads;
  for (int i = 0; i < kStreams; ++i) {
    streams.push_back(std::make_unique<ClientStream>());
    ClientStream* s = streams.back().get();
    threads.emplace_back([s, &keygate, &client_key] {
      auto start = Clock::now();
      s->response = HttpRequest(
          "POST", keygate.base_url() + "/v1/chat/completions",
          {{"Authorization", "Bearer " + client_key}, {"Content-Type", "application/json"}},
          R"({"model":"gpt-sdk","stream":true,"messages":[{"role":"user","content":"hi"}]})",
          [s, start](std::string_view data) {
            s->body.append(data);
            if (!s->first_bytes.load()) s->first_byte_s = SecondsSince(start);
            s->first_bytes.store(true);
            return true;
          },
          /*timeout_ms=*/40'000);
      s->seconds = SecondsSince(start);
      s->done.store(true);
    });
  }
  auto count = [&](auto pred) {
    int n = 0;
    for (const auto& s : streams) n += pred(*s) ? 1 : 0;
    return n;
  };
  bool all_started = WaitFor(
      [&] { return count([](const ClientStream& s) { return s.first_bytes.load(); }) == kStreams; },
      std::chrono::seconds(20));
  int finished_before = count([](const ClientStream& s) { return s.done.load(); });

  auto sigterm_at = Clock::now();
  keygate.Signal(SIGTERM);
  // New connections are refused once the signal is handled (the listeners close at once).
  bool refused = WaitFor([&] { return ConnectRefused(keygate.port()); }, std::chrono::seconds(5));
  double refused_after = SecondsSince(sigterm_at);
  int exit_code = keygate.Wait(std::chrono::milliseconds(kDrainTimeoutMs + 10'000));
  double exited_after = SecondsSince(sigterm_at);
  for (auto& t : threads) t.join();  // each bounded by its 40 s timeout
  double last_stream_end = 0;
  for (const auto& s : streams) last_stream_end = std::max(last_stream_end, s->seconds);
  std::vector<double> ttfb;
  for (const auto& s : streams) ttfb.push_back(s->first_byte_s);
  std::sort(ttfb.begin(), ttfb.end());

  ASSERT_TRUE(all_started) << "not every stream got its first bytes";
  EXPECT_EQ(finished_before, 0) << "streams ended before SIGTERM: the test did not drain them";
  EXPECT_TRUE(refused) << "a new connection was still accepted after SIGTERM";
  EXPECT_EQ(exit_code, 0) << keygate.Log();
  EXPECT_LT(exited_after, kDrainTimeoutMs / 1000.0) << "exit came after the drain deadline";
  int complete = 0;
  for (const auto& s : streams) {
    const std::string& b = s->body;
    bool ok = s->response.status == 200 && b.size() >= 14 &&
              b.compare(b.size() - 14, 14, "data: [DONE]\n\n") == 0 &&
              b.find("\"tok" + std::to_string(kEvents - 1) + " \"") != std::string::npos;
    complete += ok ? 1 : 0;
    EXPECT_TRUE(ok) << "status " << s->response.status << " error '" << s->response.error
                    << "' after " << s->seconds
                    << " s; body ends with: " << b.substr(b.size() > 200 ? b.size() - 200 : 0);
  }
  EXPECT_EQ(stub.request_count(), static_cast<size_t>(kStreams));

  // Every stream was billed once, after the process ended: the records were flushed on exit.
  auto store = std::move(OpenTestStore(url)).value();
  auto usage = store->ListUsage({.limit = 10 * kStreams});
  ASSERT_TRUE(usage.ok()) << usage.status().ToString();
  EXPECT_EQ(usage->size(), static_cast<size_t>(kStreams));
  int billed = 0;
  for (const auto& u : *usage) {
    billed += (u.status == 200 && u.input_tokens == 11 && u.output_tokens == 7) ? 1 : 0;
  }
  EXPECT_EQ(billed, kStreams) << "every record carries the stream's usage and status 200";
  std::printf(
      "drain: first bytes after %.3f s (median) / %.3f s (max); %d streams in flight at SIGTERM; "
      "connections refused after %.3f s; %d/%d streams "
      "complete; last stream ended %.2f s after its start; keygate exited %d after %.2f s "
      "(deadline %d ms); %zu usage records\n",
      ttfb[kStreams / 2], ttfb.back(), kStreams - finished_before, refused_after, complete,
      kStreams, last_stream_end, exit_code, exited_after, kDrainTimeoutMs, usage->size());
  stub.Stop();
}

// Streams longer than the drain deadline are cut at it: every client sees its connection end (no
// hang), keygate still exits 0 soon after the deadline, and every cut request is still recorded.
TEST(DrainTest, StreamsOutlivingTheDrainDeadlineAreCutCleanlyAndStillRecorded) {
  constexpr int kStreams = 20;
  constexpr int kDrainTimeoutMs = 1000;

  auto location = std::move(StoreLocation::Create(StoreKind::kSqlite)).value();
  const std::string& url = location->url();
  const std::string dir = location->dir();
  UpstreamStub stub;
  ASSERT_TRUE(stub.Start());
  const std::string key = "sk-cut-ok-aaaaaaaaaaaaaaaaaa";
  stub.Script(key, {.stream_events = 1000, .event_interval_ms = 20});  // 20 s
  MustCli(url, {"pool", "create", "main", "--provider", "stub"});
  MustCli(url, {"keys", "import", "--pool", "main"}, key + "\n");
  std::string client_key = CreateClientKey(url, "cut");
  ASSERT_FALSE(client_key.empty());
  ASSERT_TRUE(WriteFile(
      dir + "/keygate.toml",
      ConfigText(stub.base_url(), "drain_timeout_ms = " + std::to_string(kDrainTimeoutMs))));
  KeygateProcess keygate(url, dir + "/keygate.toml", dir + "/keygate.log");
  ASSERT_TRUE(keygate.ok()) << keygate.Log();

  std::vector<std::unique_ptr<ClientStream>> streams;
  std::vector<std::thread> threads;
  for (int i = 0; i < kStreams; ++i) {
    streams.push_back(std::make_unique<ClientStream>());
    ClientStream* s = streams.back().get();
    threads.emplace_back([s, &keygate, &client_key] {
      auto start = Clock::now();
      s->response = HttpRequest(
          "POST", keygate.base_url() + "/v1/chat/completions",
          {{"Authorization", "Bearer " + client_key}, {"Content-Type", "application/json"}},
          R"({"model":"gpt-sdk","stream":true,"messages":[]})",
          [s](std::string_view data) {
            s->body.append(data);
            s->first_bytes.store(true);
            return true;
          },
          /*timeout_ms=*/40'000);
      s->seconds = SecondsSince(start);
      s->done.store(true);
    });
  }
  bool all_started = WaitFor(
      [&] {
        for (const auto& s : streams) {
          if (!s->first_bytes.load()) return false;
        }
        return true;
      },
      std::chrono::seconds(20));
  auto sigterm_at = Clock::now();
  keygate.Signal(SIGTERM);
  int exit_code = keygate.Wait(std::chrono::milliseconds(kDrainTimeoutMs + 10'000));
  double exited_after = SecondsSince(sigterm_at);
  bool clients_ended = WaitFor(
      [&] {
        for (const auto& s : streams) {
          if (!s->done.load()) return false;
        }
        return true;
      },
      std::chrono::seconds(5));
  double clients_ended_after = SecondsSince(sigterm_at);
  for (auto& t : threads) t.join();

  ASSERT_TRUE(all_started);
  EXPECT_EQ(exit_code, 0) << keygate.Log();
  // The deadline, then up to 5 s for handlers to unwind (http::Server::Drain), is the bound.
  EXPECT_LT(exited_after, kDrainTimeoutMs / 1000.0 + 5) << keygate.Log();
  EXPECT_TRUE(clients_ended) << "a client still hangs after keygate exited";
  for (const auto& s : streams) {
    EXPECT_EQ(s->body.find("[DONE]"), std::string::npos) << "a 20 s stream cannot have completed";
    EXPECT_LT(s->seconds, 20.0);
  }
  auto store = std::move(OpenTestStore(url)).value();
  auto usage = store->ListUsage({.limit = 10 * kStreams});
  ASSERT_TRUE(usage.ok()) << usage.status().ToString();
  EXPECT_EQ(usage->size(), static_cast<size_t>(kStreams)) << "a cut request was not recorded";
  std::map<int64_t, int> by_status;
  for (const auto& u : *usage) by_status[u.status]++;
  std::string statuses;
  for (const auto& [status, n] : by_status) {
    statuses += " " + std::to_string(n) + "x" + std::to_string(status);
  }
  std::printf(
      "drain deadline: %d streams cut; keygate exited %d after %.2f s (deadline %d ms); clients "
      "ended within %.2f s; usage records by status:%s\n",
      kStreams, exit_code, exited_after, kDrainTimeoutMs, clients_ended_after, statuses.c_str());
  stub.Stop();
}

}  // namespace
}  // namespace keygate::testing
