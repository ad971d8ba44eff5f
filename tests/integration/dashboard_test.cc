// The dashboard in a real browser: tests/dashboard/dashboard.test.mjs (playwright-core driving
// Debian's headless chromium, axe-core for accessibility; installed by `npm ci --prefix
// tests/dashboard` in scripts/test.sh) against the real `keygate serve`, whose provider is the
// upstream stub binary. Screenshots are left in <build>/dashboard-artifacts.
#include <gtest/gtest.h>

#include <filesystem>
#include <regex>

#include "tests/integration/deployment.h"
#include "tests/testing/store_env.h"

namespace keygate::testing {
namespace {

TEST(DashboardTest, SignInImportRotateClientKeysUsageSpendAndAccessibilityInChromium) {
  ASSERT_STRNE(NODE_BIN, "") << "node was not found when the build was configured";
  ASSERT_TRUE(std::filesystem::exists(std::string(DASHBOARD_TEST_DIR) +
                                      "/node_modules/playwright-core"))
      << "run `npm ci --prefix tests/dashboard` (test.sh does)";
  ASSERT_TRUE(std::filesystem::exists("/usr/bin/chromium"))
      << "install Debian's chromium (scripts/install-deps.sh --test)";

  auto location = std::move(StoreLocation::Create(StoreKind::kSqlite)).value();
  const std::string& url = location->url();
  const std::string dir = location->dir();
  StubProcess stub(dir + "/stub.log");
  ASSERT_TRUE(stub.ok()) << stub.Log();

  // One active key the stub answers 401 for: the first client request rotates it.
  MustCli(url, {"pool", "create", "main", "--provider", "stub"});
  MustCli(url, {"keys", "import", "--pool", "main"}, "sk-dash-dead-s401-aaaaaaaaaa\n");
  const std::string client_key = CreateClientKey(url, "dashboard-client");
  ASSERT_FALSE(client_key.empty());
  // Keys with budgets in pool `claude` (not used by the requests here), with the spend the
  // checker would have stored (Store::UpdateSpend, its own call): the spend page has bars in
  // three bands and one key without a budget.
  MustCli(url, {"pool", "create", "claude", "--provider", "anth"});
  MustCli(url, {"keys", "import", "--pool", "claude"},
          "key,budget\nsk-dash-spend-low-cccccccccc,10\nsk-dash-spend-mid-dddddddddd,10\n"
          "sk-dash-spend-hot-eeeeeeeeee,10\nsk-dash-spend-nob-ffffffffff,\n");
  {
    auto store = OpenTestStore(url);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    auto claude = (*store)->GetPool("claude");
    ASSERT_TRUE(claude.ok());
    auto keys = (*store)->ListKeys({.pool_id = claude->id});
    ASSERT_TRUE(keys.ok());
    ASSERT_EQ(keys->size(), 4u);
    const int64_t spend[] = {2'000'000, 7'000'000, 9'700'000, 1'000'000};
    for (size_t i = 0; i < keys->size(); ++i) {
      ASSERT_TRUE((*store)->UpdateSpend(keys->at(i).id, spend[i], std::nullopt).ok());
    }
  }
  RunResult admin = MustCli(url, {"admin-key", "create", "dashboard-test"});
  std::smatch m;
  ASSERT_TRUE(std::regex_search(admin.out, m, std::regex("kga-[0-9a-f]{64}"))) << admin.out;
  const std::string admin_key = m.str();

  ASSERT_TRUE(WriteFile(dir + "/keygate.toml", ConfigText(stub.base_url())));
  KeygateProcess keygate(url, dir + "/keygate.toml", dir + "/keygate.log");
  ASSERT_TRUE(keygate.ok()) << keygate.Log();

  RunOptions node;
  node.cwd = DASHBOARD_TEST_DIR;
  node.env = {{"KEYGATE_URL", keygate.base_url()},
              {"KEYGATE_ADMIN_KEY", admin_key},
              {"KEYGATE_CLIENT_KEY", client_key},
              {"KEYGATE_BACKUP_KEY", "sk-dash-spare-ok-bbbbbbbbbbbb"},
              {"KEYGATE_ARTIFACTS", DASHBOARD_ARTIFACTS},
              {"KEYGATE_LOG", dir + "/keygate.log"}};
  RunResult r = RunBinary(NODE_BIN,
                          {"--test", "--test-reporter=spec", "--test-timeout=180000",
                           "dashboard.test.mjs"},
                          node);
  EXPECT_EQ(r.exit_code, 0) << "node --test failed:\n"
                            << r.out << r.err << "\nkeygate log:\n"
                            << keygate.Log();
  std::printf("node --test: %.1f s (screenshots in %s)\n%s", r.seconds, DASHBOARD_ARTIFACTS,
              r.out.c_str());
  // Neither the admin key nor the backup key typed into the page reached keygate's log (the
  // client keys the page made are checked by the node test, which alone saw them).
  EXPECT_EQ(keygate.Log().find(admin_key), std::string::npos);
  EXPECT_EQ(keygate.Log().find("sk-dash-spare-ok-bbbbbbbbbbbb"), std::string::npos);
}

}  // namespace
}  // namespace keygate::testing
