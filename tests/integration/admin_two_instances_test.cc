// Changes made through the admin API of one instance reach another instance on the same
// PostgreSQL store, with no restart, within store.pool_refresh_ms (left at its default, 500 ms):
// a key imported through instance A serves clients of instance B; a key exhausted through A stops
// being used by B; a client key made through A is accepted by B, and refused once disabled. Two
// real `keygate serve` processes, the upstream stub binary, the real CLI for the admin key.
#include <gtest/gtest.h>

#include <chrono>
#include <regex>
#include <thread>

#include "tests/integration/deployment.h"
#include "tests/testing/http_client.h"
#include "tests/testing/store_env.h"

namespace keygate::testing {
namespace {

using SteadyClock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr char kKey[] = "sk-admin-2i-ok-aaaaaaaaaaaa";

// Polls `ok` every 20 ms for up to 10 s; returns how long it took to become true, or -1.
int64_t MillisUntil(const std::function<bool()>& ok) {
  auto start = SteadyClock::now();
  while (SteadyClock::now() - start < std::chrono::seconds(10)) {
    if (ok()) {
      return std::chrono::duration_cast<milliseconds>(SteadyClock::now() - start).count();
    }
    std::this_thread::sleep_for(milliseconds(20));
  }
  return -1;
}

TEST(AdminTwoInstancesTest, ApiChangesReachTheOtherInstance_postgres) {
  auto location = StoreLocation::Create(StoreKind::kPostgres);
  ASSERT_TRUE(location.ok()) << location.status().ToString();
  const std::string url = (*location)->url();
  const std::string dir = (*location)->dir();
  StubProcess stub(dir + "/stub.log");
  ASSERT_TRUE(stub.ok()) << stub.Log();

  // The shared config, with store.pool_refresh_ms at its default.
  std::string config = ConfigText(stub.base_url());
  const std::string refresh = "pool_refresh_ms = 200\n";
  ASSERT_NE(config.find(refresh), std::string::npos);
  config.erase(config.find(refresh), refresh.size());
  ASSERT_TRUE(WriteFile(dir + "/keygate.toml", config));

  RunResult created = MustCli(url, {"admin-key", "create", "ops"});
  std::smatch m;
  ASSERT_TRUE(std::regex_search(created.out, m, std::regex("kga-[0-9a-f]{64}"))) << created.out;
  const std::string admin = m.str();
  const std::string client = CreateClientKey(url, "app");
  MustCli(url, {"pool", "create", "main", "--provider", "stub"});

  KeygateProcess a(url, dir + "/keygate.toml", dir + "/a.log");
  ASSERT_TRUE(a.ok()) << a.Log();
  KeygateProcess b(url, dir + "/keygate.toml", dir + "/b.log");
  ASSERT_TRUE(b.ok()) << b.Log();

  auto chat_on_b = [&] {
    return HttpPost(b.base_url() + "/v1/chat/completions", client,
                    R"({"model":"gpt-sdk","messages":[{"role":"user","content":"hi"}]})")
        .status;
  };
  ASSERT_EQ(chat_on_b(), 503) << "no keys yet";

  // Import through A; B serves with the key without a restart.
  HttpResponse imported = HttpPost(a.base_url() + "/admin/v1/pools/main/keys", admin,
                                   std::string(R"({"keys":[")") + kKey + R"("]})");
  ASSERT_EQ(imported.status, 201) << imported.body;
  const int64_t seen_ms = MillisUntil([&] { return chat_on_b() == 200; });
  ASSERT_GE(seen_ms, 0) << "instance B never used the imported key\n" << b.Log();
  std::printf("[ measured ] import on A -> served by B after %lld ms (pool_refresh_ms 500)\n",
              static_cast<long long>(seen_ms));

  // Exhaust through A; B stops using it.
  HttpResponse keys = HttpRequest("GET", a.base_url() + "/admin/v1/keys?pool=main",
                                  {{"Authorization", "Bearer " + admin}}, "");
  ASSERT_EQ(keys.status, 200) << keys.body;
  std::smatch id;
  ASSERT_TRUE(std::regex_search(keys.body, id, std::regex("\"id\":([0-9]+)"))) << keys.body;
  HttpResponse exhausted =
      HttpPost(a.base_url() + "/admin/v1/keys/" + id[1].str() + "/exhaust", admin,
               R"({"reason":"admin test"})");
  ASSERT_EQ(exhausted.status, 200) << exhausted.body;
  const int64_t gone_ms = MillisUntil([&] { return chat_on_b() == 503; });
  ASSERT_GE(gone_ms, 0) << "instance B kept using the exhausted key\n" << b.Log();
  std::printf("[ measured ] exhaust on A -> dropped by B after %lld ms\n",
              static_cast<long long>(gone_ms));

  // Client keys: one made through A works on B within a refresh; disabled through A, B refuses it.
  ASSERT_EQ(HttpPost(a.base_url() + "/admin/v1/keys/" + id[1].str() + "/restore", admin,
                     R"({"as":"active"})")
                .status,
            200);
  ASSERT_GE(MillisUntil([&] { return chat_on_b() == 200; }), 0) << b.Log();
  HttpResponse made =
      HttpPost(a.base_url() + "/admin/v1/client-keys", admin, R"({"name":"made-on-a"})");
  ASSERT_EQ(made.status, 201) << made.body;
  std::smatch secret, client_id;
  ASSERT_TRUE(std::regex_search(made.body, secret, std::regex("\"key\":\"(kg-[0-9a-f]{64})\"")));
  ASSERT_TRUE(std::regex_search(made.body, client_id, std::regex("\"id\":([0-9]+)")));
  const std::string fresh = secret[1].str();
  auto chat_on_b_as = [&](const std::string& key) {
    return HttpPost(b.base_url() + "/v1/chat/completions", key,
                    R"({"model":"gpt-sdk","messages":[{"role":"user","content":"hi"}]})")
        .status;
  };
  const int64_t client_ms = MillisUntil([&] { return chat_on_b_as(fresh) == 200; });
  ASSERT_GE(client_ms, 0) << "instance B never accepted the client key made on A\n" << b.Log();
  ASSERT_EQ(
      HttpPost(a.base_url() + "/admin/v1/client-keys/" + client_id[1].str() + "/disable", admin, "")
          .status,
      200);
  const int64_t disabled_ms = MillisUntil([&] { return chat_on_b_as(fresh) == 401; });
  ASSERT_GE(disabled_ms, 0) << "instance B kept accepting the disabled client key\n" << b.Log();
  std::printf(
      "[ measured ] client key made on A -> accepted by B after %lld ms; disabled on A "
      "-> refused by B after %lld ms\n",
      static_cast<long long>(client_ms), static_cast<long long>(disabled_ms));

  // Every write is in the audit log, by the admin key's name, and no log holds a secret.
  RunResult audit = MustCli(url, {"audit", "list"});
  EXPECT_NE(audit.out.find("keys.import"), std::string::npos) << audit.out;
  EXPECT_NE(audit.out.find("keys.exhaust"), std::string::npos) << audit.out;
  EXPECT_NE(audit.out.find("client_keys.create"), std::string::npos) << audit.out;
  EXPECT_NE(audit.out.find("ops"), std::string::npos) << audit.out;
  for (const std::string& log : {a.Log(), b.Log()}) {
    EXPECT_EQ(log.find(admin), std::string::npos);
    EXPECT_EQ(log.find(kKey), std::string::npos);
    EXPECT_EQ(log.find(fresh), std::string::npos);
  }
}

}  // namespace
}  // namespace keygate::testing
