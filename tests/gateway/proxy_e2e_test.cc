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
#include "tests/testing/real_proxies.h"
#include "tests/testing/store_env.h"

namespace keygate::testing {
namespace {

constexpr char kClientToken[] = "kg-proxy-test-client-0123456789";

class ProxyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(stub_.Start());
    location_ = std::move(StoreLocation::Create(StoreKind::kSqlite)).value();
    store_ = std::move(OpenTestStore(location_->url())).value();
    ASSERT_TRUE(store_->CreateClientKey("t", TestSecrets()->HashClientKey(kClientToken), "x").ok());
    std::string error;
    proxies_ = RealProxies::Start(location_->dir(), &error);
    ASSERT_TRUE(proxies_) << error;
  }
  void TearDown() override {
    if (app_) app_->Shutdown();
    stub_.Stop();
  }

  void Start(bool allow_direct = false, int recheck_ms = 60000) {
    std::string toml =
        // Busy polling on (the other end-to-end suites run without): curl's sockets and timers
        // through real proxies are driven by a loop that polls instead of sleeping.
        "[server]\nlisten = \"127.0.0.1:0\"\nworkers = 1\nbusy_poll_us = 100\n"
        "[upstream]\nmax_attempts = 3\nproxy_recheck_ms = " +
        std::to_string(recheck_ms) +
        "\n"
        "[providers.stub]\nbase_url = \"" +
        stub_.base_url() +
        "\"\n"
        "[pools.main]\nprovider = \"stub\"\nstrategy = \"round-robin\"\nallow_direct = " +
        (allow_direct ? "true" : "false") +
        "\n"
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

  // True when the stub accepted `r`'s connection from `proxy`'s process.
  static bool CameThrough(const StubRequest& r, const ChildProcess& proxy) {
    uint16_t port = static_cast<uint16_t>(std::stoi(r.peer.substr(r.peer.rfind(':') + 1)));
    return ConnectionOwnedBy(port, proxy.pid());
  }

  UpstreamStub stub_;
  std::unique_ptr<StoreLocation> location_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<server::App> app_;
  std::unique_ptr<RealProxies> proxies_;
};

TEST_F(ProxyTest, EachKeysTrafficLeavesThroughItsOwnProxy) {
  Key("sk-main-ok-via-http-xxxxxx", proxies_->HttpUrl());
  Key("sk-main-ok-via-socks-xxxxx", proxies_->SocksUrl());
  Start();
  for (int i = 0; i < 4; ++i) {
    HttpResponse r = Chat();
    ASSERT_EQ(r.status, 200) << r.body;
    StubRequest last = stub_.requests().back();
    if (last.key == "sk-main-ok-via-http-xxxxxx") {
      EXPECT_TRUE(CameThrough(last, proxies_->tinyproxy()))
          << "key A's request did not come from tinyproxy";
      EXPECT_FALSE(CameThrough(last, proxies_->microsocks()));
    } else {
      ASSERT_EQ(last.key, "sk-main-ok-via-socks-xxxxx");
      EXPECT_TRUE(CameThrough(last, proxies_->microsocks()))
          << "key B's request did not come from microsocks";
      EXPECT_FALSE(CameThrough(last, proxies_->tinyproxy()));
    }
  }
  EXPECT_EQ(stub_.CountForKey("sk-main-ok-via-http-xxxxxx"), 2u);
  EXPECT_EQ(stub_.CountForKey("sk-main-ok-via-socks-xxxxx"), 2u);
  EXPECT_NE(proxies_->TinyproxyLog().find("CONNECT"), std::string::npos)
      << "tinyproxy only tunnels";
}

TEST_F(ProxyTest, ABadProxyPasswordIsTheProxysFaultNotTheKeys) {
  int64_t id = Key("sk-main-ok-bad-proxy-xxxx", proxies_->HttpUrl("WRONG"));
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
  bool down =
      WaitFor([&] { return !store_->ListProxies(false)->at(0).healthy; }, std::chrono::seconds(5));
  EXPECT_TRUE(down);
}

TEST_F(ProxyTest, ADeadProxyFallsBackToTheNextBinding) {
  int64_t id = Key("sk-main-ok-two-routes-xxxx", "");
  bool created;
  ClosedPort closed;  // the dead proxy: refuses connections for the whole test
  auto dead = store_->AddProxy(
      *ParseProxyUrl("socks5h://127.0.0.1:" + std::to_string(closed.port())), &created);
  auto good = store_->AddProxy(*ParseProxyUrl(proxies_->SocksUrl()), &created);
  ASSERT_TRUE(store_->Bind(id, dead->id, 10).ok());
  ASSERT_TRUE(store_->Bind(id, good->id, 1).ok());
  Start();
  for (int i = 0; i < 3; ++i) EXPECT_EQ(Chat().status, 200);
  auto reqs = stub_.requests();
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_TRUE(CameThrough(reqs.back(), proxies_->microsocks()));
  EXPECT_EQ(store_->GetKey(id, false)->state, store::KeyState::kActive);
}

TEST_F(ProxyTest, AProxyThatComesBackIsUsedAgainAndMarkedHealthy) {
  int64_t id = Key("sk-main-ok-recover-xxxxxxx", proxies_->SocksUrl());
  Start(/*allow_direct=*/false, /*recheck_ms=*/300);
  ASSERT_EQ(Chat().status, 200);
  proxies_->KillMicrosocks();  // the proxy dies
  HttpResponse down = Chat();
  EXPECT_NE(down.status, 200);
  EXPECT_TRUE(
      WaitFor([&] { return !store_->ListProxies(false)->at(0).healthy; }, std::chrono::seconds(5)));
  ASSERT_TRUE(proxies_->RestartMicrosocks());
  // After proxy_recheck_ms the proxy gets traffic again; success marks it healthy in the store.
  bool back = WaitFor([&] { return Chat().status == 200; }, std::chrono::seconds(5));
  EXPECT_TRUE(back);
  EXPECT_TRUE(
      WaitFor([&] { return store_->ListProxies(false)->at(0).healthy; }, std::chrono::seconds(5)));
  EXPECT_EQ(store_->GetKey(id, false)->state, store::KeyState::kActive) << "never the key's fault";
}

}  // namespace
}  // namespace keygate::testing
