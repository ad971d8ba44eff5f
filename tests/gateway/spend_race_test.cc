// Issue 5: the race between the spend checker and the data plane, for real. The gateway's own
// background checker (in-process `serve`) probes key X; the stub holds X's /key/info answer
// while the test drives a chat request for X through the gateway, which gets a 401 and rotates
// X on the request path; then the stub answers the held probe with spend >= budget. The checker
// must find X already rotated: AlreadyRotated, one rotation record (the gateway's), one backup
// consumed, and a spend record without rotation fields.
#include <gtest/gtest.h>

#include <sstream>

#include "config/config.h"
#include "server/server.h"
#include "tests/fakes/upstream_stub.h"
#include "tests/testing/child_process.h"
#include "tests/testing/http_client.h"
#include "tests/testing/store_env.h"

namespace keygate::testing {
namespace {

using std::chrono::seconds;

constexpr char kClientToken[] = "kg-test-client-token-0123456789";
// "-s401-": the stub answers chat requests with this key 401 (a dead key).
const std::string kX = "sk-race-x-s401-0123456789abcdef";
const std::vector<std::string> kBackups = {"sk-race-spare-ok-0123456789abcd1",
                                           "sk-race-spare-ok-0123456789abcd2"};

TEST(Issue5SpendRaceTest, RequestPathRotationBetweenProbeAndDecisionIsAlreadyRotated) {
  UpstreamStub stub;
  ASSERT_TRUE(stub.Start());
  auto location = std::move(StoreLocation::Create(StoreKind::kSqlite)).value();
  auto store = std::move(OpenTestStore(location->url())).value();
  ASSERT_TRUE(
      store->CreateClientKey("tester", TestSecrets()->HashClientKey(kClientToken), "kg-…6789").ok());
  const int64_t pool_id = store->CreatePool("budget", "llm")->id;
  std::vector<store::NewKey> keys = {{.secret = kX, .state = store::KeyState::kActive}};
  for (const auto& b : kBackups) keys.push_back({.secret = b, .state = store::KeyState::kBackup});
  const int64_t x_id = store->ImportKeys(pool_id, keys)->key_ids[0];
  for (const auto& b : kBackups) stub.SetSpend(b, {.spend_usd = 0, .budget_usd = 10});
  // X's probe is held: the checker waits for it, between its key list and its decision.
  stub.SetSpend(kX, {.spend_usd = 1, .budget_usd = 10, .hold = true});

  auto cfg = config::ParseConfig(
      "[server]\nlisten = \"127.0.0.1:0\"\nworkers = 2\n"
      "[store]\npool_refresh_ms = 100\nusage_flush_ms = 20\n"
      "[spend_checker]\nprobe_timeout_ms = 60000\n"
      "[providers.llm]\nbase_url = \"" + stub.base_url() + "\"\nclassifier = \"litellm\"\n"
      "[pools.budget]\nprovider = \"llm\"\nspend_probe = \"litellm\"\n"
      "[[models]]\nid = \"budget-test\"\npool = \"budget\"\n",
      "race.toml");
  ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
  std::ostringstream out;
  auto app = server::App::Start(std::move(cfg).value(), {}, *store, TestSecrets(), out);
  ASSERT_TRUE(app.ok()) << app.status().ToString();
  const std::string base = "http://127.0.0.1:" + std::to_string((*app)->port());

  // 1. The checker (leader: it is alone) has sent X's probe; the stub holds the answer.
  ASSERT_TRUE(WaitFor([&] { return stub.held() == 1; }, seconds(30))) << "X was never probed";

  // 2. The data plane: a chat request meets X's 401, rotates X, and is served by the backup.
  HttpResponse r = HttpPost(base + "/v1/chat/completions", kClientToken,
                            R"({"model":"budget-test","messages":[]})");
  EXPECT_EQ(r.status, 200) << r.body;
  auto rotations = [&] { return store->ListRotations({.pool_id = pool_id}).value(); };
  ASSERT_TRUE(WaitFor([&] { return rotations().size() == 1; }, seconds(10)));
  EXPECT_EQ(store->GetKey(x_id, false)->state, store::KeyState::kRetired);
  EXPECT_EQ(stub.held(), 1) << "the probe was still in flight while the gateway rotated X";

  // 3. The held probe now answers: X is at its budget. The checker decides on a stale reading.
  stub.SetSpend(kX, {.spend_usd = 10.5, .budget_usd = 10});
  stub.ReleaseHeld();
  auto x_checks = [&] {
    return store->ListSpendRecords({.key_id = x_id}).value();
  };
  ASSERT_TRUE(WaitFor([&] { return !x_checks().empty(); }, seconds(30)));

  const std::vector<store::SpendRecord> checks = x_checks();
  ASSERT_EQ(checks.size(), 1u);
  EXPECT_EQ(checks[0].action, "already_rotated");
  EXPECT_EQ(checks[0].spend_micros, 10'500'000);
  EXPECT_EQ(checks[0].reason, "") << "rotation fields only when the checker rotated";
  EXPECT_FALSE(checks[0].new_key_id.has_value());
  const std::vector<store::RotationRecord> recs = rotations();
  ASSERT_EQ(recs.size(), 1u) << "one rotation record: the gateway's";
  EXPECT_NE(recs[0].actor, "spend-checker");
  EXPECT_EQ(recs[0].failed_key_id, x_id);
  auto counts = store->CountKeys(pool_id);
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ(counts->backup, 1) << "one backup consumed";
  EXPECT_EQ(counts->active, 1);
  EXPECT_EQ(counts->retired, 1);
  const std::string metrics = HttpRequest("GET", base + "/metrics", {}, "").body;
  EXPECT_NE(metrics.find("keygate_spend_probes_total{pool=\"budget\",outcome=\"already_rotated\"} 1"),
            std::string::npos)
      << metrics;
  EXPECT_EQ(metrics.find("keygate_spend_rotations_total{pool=\"budget\""), std::string::npos)
      << "the checker rotated nothing";
  (*app)->Shutdown();
  stub.Stop();
}

}  // namespace
}  // namespace keygate::testing
