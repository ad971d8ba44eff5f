// Egress through real proxies from Debian: tinyproxy (HTTP CONNECT + Basic auth) and microsocks
// (SOCKS5 + username/password). Each key is bound to its own proxy; the test proves from the
// kernel's socket table that the connection the stub accepted for a key belongs to that key's
// proxy process.
#include <dirent.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "config/config.h"
#include "server/server.h"
#include "tests/fakes/upstream_stub.h"
#include "tests/testing/child_process.h"
#include "tests/testing/http_client.h"
#include "tests/testing/store_env.h"

namespace keygate::testing {
namespace {

constexpr char kClientToken[] = "kg-proxy-test-client-0123456789";

// The inode of the TCP socket whose local port is `port` on 127.0.0.1 (/proc/net/tcp), or 0.
uint64_t SocketInodeForLocalPort(uint16_t port) {
  std::ifstream in("/proc/net/tcp");
  std::string line;
  std::getline(in, line);  // header
  char want[16];
  std::snprintf(want, sizeof(want), ":%04X", port);
  while (std::getline(in, line)) {
    std::istringstream ss(line);
    std::string sl, local, remote, st, queues, tr, retr, uid, timeout, inode;
    ss >> sl >> local >> remote >> st >> queues >> tr >> retr >> uid >> timeout >> inode;
    // Skip closed leftovers of an earlier connection on the same port (TIME_WAIT: inode 0).
    if (local.size() > 5 && local.substr(local.size() - 5) == want && st == "01" &&
        inode != "0") {
      return std::stoull(inode);
    }
  }
  return 0;
}

// True when process `pid` holds the socket with `inode`.
bool ProcessOwnsSocket(pid_t pid, uint64_t inode) {
  std::string dir = "/proc/" + std::to_string(pid) + "/fd";
  std::string want = "socket:[" + std::to_string(inode) + "]";
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    char buf[128];
    ssize_t n = ::readlink(entry.path().c_str(), buf, sizeof(buf) - 1);
    if (n > 0 && std::string(buf, n) == want) return true;
  }
  return false;
}

class ProxyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(stub_.Start());
    location_ = std::move(StoreLocation::Create(StoreKind::kSqlite)).value();
    store_ = std::move(OpenTestStore(location_->url())).value();
    ASSERT_TRUE(store_->CreateClientKey("t", TestSecrets()->HashClientKey(kClientToken), "x").ok());
    dir_ = location_->dir();

    tiny_port_ = FreePort();
    std::ofstream(dir_ + "/tinyproxy.conf")
        << "Port " << tiny_port_ << "\nListen 127.0.0.1\nTimeout 60\nMaxClients 50\n"
        << "Allow 127.0.0.1\nBasicAuth tinyuser tinypass\nDisableViaHeader Yes\n"
        << "LogFile \"" << dir_ << "/tinyproxy.log\"\nLogLevel Connect\n";
    tiny_ = std::make_unique<ChildProcess>(
        std::vector<std::string>{"/usr/bin/tinyproxy", "-d", "-c", dir_ + "/tinyproxy.conf"},
        dir_ + "/tinyproxy.out");
    socks_port_ = FreePort();
    socks_ = std::make_unique<ChildProcess>(
        std::vector<std::string>{"/usr/bin/microsocks", "-i", "127.0.0.1", "-p",
                                 std::to_string(socks_port_), "-u", "socksuser", "-P",
                                 "sockspass"},
        dir_ + "/microsocks.out");
    ASSERT_TRUE(WaitForPort(tiny_port_, std::chrono::seconds(10))) << tiny_->Log();
    ASSERT_TRUE(WaitForPort(socks_port_, std::chrono::seconds(10))) << socks_->Log();
  }
  void TearDown() override {
    if (app_) app_->Shutdown();
    stub_.Stop();
  }

  void Start(bool allow_direct = false, int recheck_ms = 60000) {
    std::string toml =
        "[server]\nlisten = \"127.0.0.1:0\"\nworkers = 1\n"
        "[upstream]\nmax_attempts = 3\nproxy_recheck_ms = " + std::to_string(recheck_ms) + "\n"
        "[providers.stub]\nbase_url = \"" + stub_.base_url() + "\"\n"
        "[pools.main]\nprovider = \"stub\"\nstrategy = \"round-robin\"\nallow_direct = " +
        (allow_direct ? "true" : "false") + "\n"
        "[[models]]\nid = \"m\"\npool = \"main\"\n";
    auto cfg = config::ParseConfig(toml, "proxy.toml");
    ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
    std::ostringstream out;
    auto app = server::App::Start(std::move(cfg).value(), {}, *store_, TestSecrets(), out);
    ASSERT_TRUE(app.ok()) << app.status().ToString();
    app_ = std::move(app).value();
  }

  // Adds a key bound to `proxy_url` (or direct when empty); returns its id.
  int64_t Key(const std::string& secret, const std::string& proxy_url) {
    auto pool = store_->GetPool("main");
    int64_t pool_id = pool.ok() ? pool->id : store_->CreatePool("main", "stub")->id;
    int64_t id = store_->ImportKeys(pool_id, {{.secret = secret}})->key_ids[0];
    if (!proxy_url.empty()) {
      bool created;
      auto proxy = store_->AddProxy(*ParseProxyUrl(proxy_url), &created);
      EXPECT_TRUE(store_->Bind(id, proxy->id, 0).ok());
    }
    return id;
  }

  HttpResponse Chat() {
    return HttpPost("http://127.0.0.1:" + std::to_string(app_->port()) + "/v1/chat/completions",
                    kClientToken, R"({"model":"m","messages":[]})");
  }

  // The pid of the process whose socket is the stub connection's client end.
  bool CameThrough(const StubRequest& r, const ChildProcess& proxy) {
    uint16_t port = static_cast<uint16_t>(std::stoi(r.peer.substr(r.peer.rfind(':') + 1)));
    // The kernel table is read while the tunnel is kept alive; allow it a moment under load.
    return WaitFor(
        [&] {
          uint64_t inode = SocketInodeForLocalPort(port);
          return inode != 0 && ProcessOwnsSocket(proxy.pid(), inode);
        },
        std::chrono::milliseconds(500));
  }

  UpstreamStub stub_;
  std::unique_ptr<StoreLocation> location_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<server::App> app_;
  std::string dir_;
  uint16_t tiny_port_ = 0, socks_port_ = 0;
  std::unique_ptr<ChildProcess> tiny_, socks_;
};

TEST_F(ProxyTest, EachKeysTrafficLeavesThroughItsOwnProxy) {
  std::string http_proxy = "http://tinyuser:tinypass@127.0.0.1:" + std::to_string(tiny_port_);
  std::string socks_proxy = "socks5://socksuser:sockspass@127.0.0.1:" + std::to_string(socks_port_);
  Key("sk-main-ok-via-http-xxxxxx", http_proxy);
  Key("sk-main-ok-via-socks-xxxxx", socks_proxy);
  Start();
  for (int i = 0; i < 4; ++i) {
    HttpResponse r = Chat();
    ASSERT_EQ(r.status, 200) << r.body;
    StubRequest last = stub_.requests().back();
    if (last.key == "sk-main-ok-via-http-xxxxxx") {
      EXPECT_TRUE(CameThrough(last, *tiny_)) << "key A's request did not come from tinyproxy";
      EXPECT_FALSE(CameThrough(last, *socks_));
    } else {
      ASSERT_EQ(last.key, "sk-main-ok-via-socks-xxxxx");
      EXPECT_TRUE(CameThrough(last, *socks_)) << "key B's request did not come from microsocks";
      EXPECT_FALSE(CameThrough(last, *tiny_));
    }
  }
  EXPECT_EQ(stub_.CountForKey("sk-main-ok-via-http-xxxxxx"), 2u);
  EXPECT_EQ(stub_.CountForKey("sk-main-ok-via-socks-xxxxx"), 2u);
  std::ifstream log(dir_ + "/tinyproxy.log");
  std::stringstream ss;
  ss << log.rdbuf();
  EXPECT_NE(ss.str().find("CONNECT"), std::string::npos) << "tinyproxy only tunnels";
}

TEST_F(ProxyTest, ABadProxyPasswordIsTheProxysFaultNotTheKeys) {
  std::string wrong = "http://tinyuser:WRONG@127.0.0.1:" + std::to_string(tiny_port_);
  int64_t id = Key("sk-main-ok-bad-proxy-xxxx", wrong);
  Key("sk-main-ok-direct-xxxxxxxx", "");
  Start();
  for (int i = 0; i < 4; ++i) {
    HttpResponse r = Chat();
    EXPECT_EQ(r.status, 200) << r.body;
  }
  EXPECT_EQ(stub_.CountForKey("sk-main-ok-bad-proxy-xxxx"), 0u);
  EXPECT_EQ(store_->GetKey(id, false)->state, store::KeyState::kActive) << "never rotated";
  EXPECT_TRUE(store_->ListRotations({})->empty());
  // The proxy is marked unhealthy in the store (asynchronously).
  bool down = WaitFor([&] { return !store_->ListProxies(false)->at(0).healthy; },
                      std::chrono::seconds(5));
  EXPECT_TRUE(down);
}

TEST_F(ProxyTest, ADeadProxyFallsBackToTheNextBinding) {
  int64_t id = Key("sk-main-ok-two-routes-xxxx", "");
  bool created;
  auto dead = store_->AddProxy(*ParseProxyUrl("socks5h://127.0.0.1:" + std::to_string(FreePort())),
                               &created);
  auto good = store_->AddProxy(
      *ParseProxyUrl("socks5://socksuser:sockspass@127.0.0.1:" + std::to_string(socks_port_)),
      &created);
  ASSERT_TRUE(store_->Bind(id, dead->id, 10).ok());
  ASSERT_TRUE(store_->Bind(id, good->id, 1).ok());
  Start();
  for (int i = 0; i < 3; ++i) EXPECT_EQ(Chat().status, 200);
  auto reqs = stub_.requests();
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_TRUE(CameThrough(reqs.back(), *socks_));
  EXPECT_EQ(store_->GetKey(id, false)->state, store::KeyState::kActive);
}

TEST_F(ProxyTest, AProxyThatComesBackIsUsedAgainAndMarkedHealthy) {
  std::string socks = "socks5://socksuser:sockspass@127.0.0.1:" + std::to_string(socks_port_);
  int64_t id = Key("sk-main-ok-recover-xxxxxxx", socks);
  Start(/*allow_direct=*/false, /*recheck_ms=*/300);
  ASSERT_EQ(Chat().status, 200);
  socks_.reset();  // the proxy dies
  HttpResponse down = Chat();
  EXPECT_NE(down.status, 200);
  EXPECT_TRUE(WaitFor([&] { return !store_->ListProxies(false)->at(0).healthy; },
                      std::chrono::seconds(5)));
  socks_ = std::make_unique<ChildProcess>(
      std::vector<std::string>{"/usr/bin/microsocks", "-i", "127.0.0.1", "-p",
                               std::to_string(socks_port_), "-u", "socksuser", "-P", "sockspass"},
      dir_ + "/microsocks2.out");
  ASSERT_TRUE(WaitForPort(socks_port_, std::chrono::seconds(10)));
  // After proxy_recheck_ms the proxy gets traffic again; success marks it healthy in the store.
  bool back = WaitFor([&] { return Chat().status == 200; }, std::chrono::seconds(5));
  EXPECT_TRUE(back);
  EXPECT_TRUE(WaitFor([&] { return store_->ListProxies(false)->at(0).healthy; },
                      std::chrono::seconds(5)));
  EXPECT_EQ(store_->GetKey(id, false)->state, store::KeyState::kActive) << "never the key's fault";
}

}  // namespace
}  // namespace keygate::testing
