// The spend checker in real `keygate serve` processes on one store (PostgreSQL: several
// machines; SQLite: several processes on one machine), with a 2 s lease:
//   - the first instance leads (its /metrics: keygate_spend_checker_leader 1) and probes; the
//     second stands by (leader 0, no probes);
//   - the leader's background checker rotates a key whose spend crosses the threshold, once;
//   - kill -9 the leader: the standby takes over within the lease time (+ one renewal period and
//     a margin), probes, and rotates the next key crossing the threshold; no key is rotated twice;
//   - with no backup left, a key at its budget is exhausted and alerted (log, metric), masked.
// One in-process upstream stub answers both instances' probes (LiteLLM /key/info).
#include <gtest/gtest.h>
#include <signal.h>

#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "tests/fakes/upstream_stub.h"
#include "tests/integration/deployment.h"
#include "tests/testing/http_client.h"
#include "tests/testing/store_env.h"

namespace keygate::testing {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr int kLeaseMs = 2000;
const std::vector<std::string> kActive = {"sk-lead-one-ok-aaaaaaaaaaaa",
                                          "sk-lead-two-ok-bbbbbbbbbbbb",
                                          "sk-lead-three-ok-cccccccccc"};
const std::vector<std::string> kSpare = {"sk-lead-spare-ok-aaaaaaaaaa",
                                         "sk-lead-spare-ok-bbbbbbbbbb"};

std::string SpendConfig(const std::string& base_url) {
  // Idle keys every 300 ms here (an hour by default): the test sends no traffic.
  return ConfigText(base_url, "", "",
                    "[providers.llm]\nbase_url = \"" + base_url +
                        "\"\nclassifier = \"litellm\"\n"
                        "[pools.budget]\nprovider = \"llm\"\nspend_probe = \"litellm\"\n"
                        "[spend_checker]\nlease_ttl_ms = " +
                        std::to_string(kLeaseMs) +
                        "\ninterval_active_ms = 300\ninterval_idle_ms = 300\n"
                        "probe_timeout_ms = 2000\n");
}

class SpendLeaderTest : public ::testing::TestWithParam<StoreKind> {
 protected:
  void SetUp() override {
    auto location = StoreLocation::Create(GetParam());
    ASSERT_TRUE(location.ok()) << location.status().ToString();
    location_ = std::move(location).value();
    ASSERT_TRUE(stub_.Start());
  }
  void TearDown() override {
    a_.reset();
    b_.reset();
    stub_.Stop();
  }

  std::string Metrics(KeygateProcess& kg) {
    return HttpRequest("GET", kg.base_url() + "/metrics", {}, "").body;
  }
  double Leader(KeygateProcess& kg) {
    return MetricValue(Metrics(kg), "keygate_spend_checker_leader");
  }
  // The instance's spend checks, all outcomes.
  double Probes(KeygateProcess& kg) {
    std::istringstream in(Metrics(kg));
    double sum = 0;
    for (std::string line; std::getline(in, line);) {
      if (line.rfind("keygate_spend_probes_total{", 0) == 0) {
        sum += std::stod(line.substr(line.rfind(' ') + 1));
      }
    }
    return sum;
  }
  size_t StubProbes() {
    size_t n = 0;
    for (const StubRequest& r : stub_.requests()) n += r.path == "/key/info";
    return n;
  }

  std::unique_ptr<StoreLocation> location_;
  UpstreamStub stub_;
  std::unique_ptr<KeygateProcess> a_, b_;
};

TEST_P(SpendLeaderTest, OneLeaderProbesAndAStandbyTakesOverAfterKill9) {
  const std::string& url = location_->url();
  const std::string dir = location_->dir();
  MustCli(url, {"pool", "create", "budget", "--provider", "llm"});
  std::string lines;
  for (const auto& k : kActive) lines += k + "\n";
  MustCli(url, {"keys", "import", "--pool", "budget"}, lines);
  lines.clear();
  for (const auto& k : kSpare) lines += k + "\n";
  MustCli(url, {"keys", "import", "--pool", "budget", "--backup"}, lines);
  for (const auto& k : kActive) stub_.SetSpend(k, {.spend_usd = 1, .budget_usd = 10});
  for (const auto& k : kSpare) stub_.SetSpend(k, {.spend_usd = 0, .budget_usd = 10});
  ASSERT_TRUE(WriteFile(dir + "/kg.toml", SpendConfig(stub_.base_url())));

  auto store = std::move(OpenTestStore(url)).value();
  const int64_t pool_id = store->GetPool("budget")->id;
  std::map<std::string, int64_t> id;
  const std::vector<store::UpstreamKey> all = store->ListKeys({.with_secrets = true}).value();
  for (const auto& k : all) id[k.secret] = k.id;
  auto rotations = [&] { return store->ListRotations({.pool_id = pool_id}).value(); };

  // 1. A starts alone and leads; B starts and stands by.
  a_ = std::make_unique<KeygateProcess>(url, dir + "/kg.toml", dir + "/a.log");
  ASSERT_TRUE(a_->ok()) << a_->Log();
  ASSERT_TRUE(WaitFor([&] { return Leader(*a_) == 1; }, seconds(10))) << a_->Log();
  b_ = std::make_unique<KeygateProcess>(url, dir + "/kg.toml", dir + "/b.log");
  ASSERT_TRUE(b_->ok()) << b_->Log();
  ASSERT_TRUE(WaitFor([&] { return Probes(*a_) >= 9; }, seconds(15))) << a_->Log();
  // B has had several lease ticks (every 667 ms) meanwhile.
  ASSERT_TRUE(WaitFor([&] { return Probes(*a_) >= 18; }, seconds(15)));
  EXPECT_EQ(Leader(*b_), 0) << b_->Log();
  EXPECT_EQ(Probes(*b_), 0) << "a standby never probes";
  EXPECT_EQ(Leader(*a_), 1);

  // 2. A's background checker rotates a key crossing the threshold (0.95 x $10), once.
  stub_.SetSpend(kActive[0], {.spend_usd = 9.6, .budget_usd = 10});
  ASSERT_TRUE(WaitFor([&] { return rotations().size() == 1; }, seconds(10))) << a_->Log();
  auto recs = rotations();
  EXPECT_EQ(recs[0].failed_key_id, id[kActive[0]]);
  EXPECT_EQ(recs[0].reason, "proactive_threshold");
  EXPECT_EQ(recs[0].actor, "spend-checker");
  // Its replacement gets probed too (a fresh key in the view).
  ASSERT_TRUE(WaitFor(
      [&] {
        return stub_.CountForKey(kSpare[0]) + stub_.CountForKey(kSpare[1]) > 0;
      },
      seconds(10)));

  // 3. kill -9 the leader: no release, the lease must expire. B takes over and probes.
  const size_t probes_before = StubProbes();
  a_->Signal(SIGKILL);
  const Clock::time_point killed = Clock::now();
  EXPECT_EQ(a_->Wait(seconds(10)), 128 + SIGKILL);
  ASSERT_TRUE(WaitFor([&] { return Leader(*b_) == 1; }, seconds(3 * kLeaseMs / 1000 + 10)))
      << b_->Log();
  const double takeover_s = std::chrono::duration<double>(Clock::now() - killed).count();
  // Lease time + one renewal period (ttl/3) + a margin for a loaded machine.
  EXPECT_LT(takeover_s, (kLeaseMs + kLeaseMs / 3 + 2000) / 1000.0) << "B took over late";
  ASSERT_TRUE(WaitFor([&] { return Probes(*b_) >= 3 && StubProbes() > probes_before; },
                      seconds(10)))
      << b_->Log();

  // 4. B rotates the next key crossing the threshold; the first one is never rotated again.
  stub_.SetSpend(kActive[1], {.spend_usd = 10, .budget_usd = 10});
  ASSERT_TRUE(WaitFor([&] { return rotations().size() == 2; }, seconds(10))) << b_->Log();
  const double b_probes = Probes(*b_);
  ASSERT_TRUE(WaitFor([&] { return Probes(*b_) >= b_probes + 6; }, seconds(10)));
  recs = rotations();
  ASSERT_EQ(recs.size(), 2u) << "one rotation per key crossing its threshold";
  std::set<int64_t> failed;
  for (const auto& r : recs) failed.insert(r.failed_key_id);
  EXPECT_EQ(failed, (std::set<int64_t>{id[kActive[0]], id[kActive[1]]})) << "no key twice";
  auto counts = store->CountKeys(pool_id);
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ(counts->active, 3);
  EXPECT_EQ(counts->backup, 0) << "two backups consumed, one per rotation";
  EXPECT_EQ(counts->retired, 2);
  const std::string m = Metrics(*b_);
  EXPECT_EQ(MetricValue(m, "keygate_spend_rotations_total{pool=\"budget\",reason=\"budget_exceeded\"}"),
            1)
      << m;
  // The bands follow within a refresh (every interval_active), once the replacement was probed.
  EXPECT_TRUE(WaitFor(
      [&] {
        return MetricValue(Metrics(*b_), "keygate_spend_keys{pool=\"budget\",band=\"lt50\"}") ==
               3;
      },
      seconds(10)))
      << Metrics(*b_);
  // 5. No backup left: the next key at its budget is exhausted, with an alert (log + metric)
  // that names it masked, never whole.
  stub_.SetSpend(kActive[2], {.spend_usd = 11, .budget_usd = 10});
  ASSERT_TRUE(WaitFor(
      [&] {
        return MetricValue(Metrics(*b_), "keygate_spend_no_backup_total{pool=\"budget\"}") == 1;
      },
      seconds(10)))
      << b_->Log();
  EXPECT_EQ(store->GetKey(id[kActive[2]], false)->state, store::KeyState::kExhausted);
  const std::string log = b_->Log();
  EXPECT_NE(log.find("ALERT"), std::string::npos) << log;
  EXPECT_NE(log.find("sk-…cccc"), std::string::npos) << log;
  for (const auto& k : kActive) EXPECT_EQ(log.find(k), std::string::npos) << "a whole key in the log";
  std::printf("spend leader: standby took over %.3f s after kill -9 (lease %d ms)\n", takeover_s,
              kLeaseMs);

  b_->Signal(SIGTERM);
  EXPECT_EQ(b_->Wait(seconds(30)), 0) << b_->Log();
  // A clean shutdown released the lease: any holder may take it at once.
  EXPECT_TRUE(store->TryAcquireLease("spend-checker", "test", 1000).value());
}

// The schedule end to end: the gateway marks the keys it uses; the checker in the same `serve`
// probes a key carrying traffic at the short interval and leaves an idle one for the long one.
TEST(SpendScheduleE2ETest, AKeyCarryingTrafficIsProbedOftenAnIdleOneOnce) {
  UpstreamStub stub;
  ASSERT_TRUE(stub.Start());
  auto location = std::move(StoreLocation::Create(StoreKind::kSqlite)).value();
  const std::string& url = location->url();
  const std::string busy = "sk-sched-busy-ok-aaaaaaaaaa", idle = "sk-sched-idle-ok-bbbbbbbbbb";
  MustCli(url, {"pool", "create", "busy", "--provider", "llm"});
  MustCli(url, {"pool", "create", "quiet", "--provider", "llm"});
  MustCli(url, {"keys", "import", "--pool", "busy"}, busy + "\n");
  MustCli(url, {"keys", "import", "--pool", "quiet"}, idle + "\n");
  const std::string client_key = CreateClientKey(url, "sched");
  ASSERT_FALSE(client_key.empty());
  stub.SetSpend(busy, {.spend_usd = 1, .budget_usd = 10});
  stub.SetSpend(idle, {.spend_usd = 1, .budget_usd = 10});
  ASSERT_TRUE(WriteFile(
      location->dir() + "/kg.toml",
      ConfigText(stub.base_url(), "", "",
                 "[providers.llm]\nbase_url = \"" + stub.base_url() +
                     "\"\nclassifier = \"litellm\"\n"
                     "[pools.busy]\nprovider = \"llm\"\nspend_probe = \"litellm\"\n"
                     "[pools.quiet]\nprovider = \"llm\"\nspend_probe = \"litellm\"\n"
                     "[[models]]\nid = \"busy-model\"\npool = \"busy\"\n"
                     "[spend_checker]\ninterval_active_ms = 200\n")));  // idle: 1 h
  KeygateProcess kg(url, location->dir() + "/kg.toml", location->dir() + "/kg.log");
  ASSERT_TRUE(kg.ok()) << kg.Log();
  ASSERT_TRUE(WaitFor([&] { return stub.CountForKey(idle) == 1; }, seconds(10)))
      << "every key is checked once at the start";
  auto probes = [&](const std::string& key) {
    size_t n = 0;
    for (const StubRequest& r : stub.requests()) n += r.key == key && r.path == "/key/info";
    return n;
  };
  ASSERT_TRUE(WaitFor(
      [&] {
        HttpResponse r = HttpPost(kg.base_url() + "/v1/chat/completions", client_key,
                                  R"({"model":"busy-model","messages":[]})");
        EXPECT_EQ(r.status, 200) << r.body;
        return probes(busy) >= 5;
      },
      seconds(20)))
      << kg.Log();
  EXPECT_EQ(probes(idle), 1u) << "an idle key waits for interval_idle_ms (1 h)";
  kg.Signal(SIGTERM);
  EXPECT_EQ(kg.Wait(seconds(30)), 0) << kg.Log();
  stub.Stop();
}

INSTANTIATE_TEST_SUITE_P(Stores, SpendLeaderTest,
                         ::testing::Values(StoreKind::kSqlite, StoreKind::kPostgres),
                         [](const ::testing::TestParamInfo<StoreKind>& info) {
                           return StoreKindName(info.param);
                         });

}  // namespace
}  // namespace keygate::testing
