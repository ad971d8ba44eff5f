// The spend checker against a real stub on loopback (LiteLLM /key/info, OpenRouter /api/v1/key)
// and a real store (SQLite and PostgreSQL), with injected time.
#include "billing/spend_checker.h"

#include <variant>

#include "billing/spend_policy.h"
#include "billing/spend_service.h"
#include "stats/stats.h"
#include "tests/fakes/upstream_stub.h"
#include "tests/store/store_test_util.h"
#include "tests/testing/real_proxies.h"

namespace keygate::testing {
namespace {

using billing::KeyCheck;
using billing::PassReport;
using store::KeyState;

class SpendCheckerTest : public ::testing::TestWithParam<StoreKind> {
 protected:
  void SetUp() override {
    ASSERT_TRUE(stub_.Start());
    auto loc = StoreLocation::Create(GetParam());
    ASSERT_OK(loc);
    location_ = std::move(loc).value();
    auto s = OpenTestStore(location_->url(), &clock_);
    ASSERT_OK(s);
    store_ = std::move(s).value();
    keys_ = std::make_unique<keypool::KeyPool>(*store_, clock_, keypool::Options{});
  }
  void TearDown() override {
    checker_.reset();
    keys_.reset();
    store_.reset();
    stub_.Stop();
  }

  // Pools: "oh" (litellm, budget default $10), "or" (openrouter), "led" (ledger, $1).
  void Configure(const std::string& extra = "", int probe_timeout_ms = 400) {
    auto cfg = config::ParseConfig(
        "[providers.oh]\nbase_url = \"" + stub_.base_url() +
            "\"\nclassifier = \"litellm\"\n"
            "[pools.oh]\nprovider = \"oh\"\nspend_probe = \"litellm\"\nbudget = \"10.00\"\n"
            "[pools.or]\nprovider = \"oh\"\nspend_probe = \"openrouter\"\n"
            "[pools.led]\nprovider = \"oh\"\nspend_probe = \"ledger\"\nbudget = \"1.00\"\n"
            "spend_threshold = 0.9\n" +
            extra,
        "test.toml");
    ASSERT_OK(cfg);
    config_ = std::make_shared<const config::Config>(std::move(cfg).value());
    keys_->Configure(config_->pools);
    checker_ = std::make_unique<billing::SpendChecker>(
        *store_, *keys_, clock_,
        billing::SpendCheckerOptions{.max_in_flight = 3, .probe_timeout_ms = probe_timeout_ms});
    checker_->Configure(config_);
  }

  // Creates `pool` with active keys named by `active` and `backups` backups; returns the secrets
  // of the active keys in order.
  std::vector<std::string> MakePool(const std::string& pool, const std::vector<std::string>& active,
                                    int backups) {
    auto p = store_->CreatePool(pool, "oh");
    EXPECT_OK(p);
    pool_ids_[pool] = p->id;
    std::vector<store::NewKey> keys;
    std::vector<std::string> secrets;
    for (const std::string& name : active) {
      secrets.push_back("sk-" + pool + "-" + name + "-0123456789abcdef");
      keys.push_back({.secret = secrets.back(), .state = KeyState::kActive});
    }
    for (int i = 0; i < backups; ++i) {
      std::string secret = "sk-" + pool + "-backup" + std::to_string(i) + "-0123456789abcdef";
      keys.push_back({.secret = secret, .state = KeyState::kBackup});
      stub_.SetSpend(secret, {.spend_usd = 0, .budget_usd = 10});
    }
    auto r = store_->ImportKeys(p->id, keys);
    EXPECT_OK(r);
    for (size_t i = 0; i < active.size(); ++i) ids_[secrets[i]] = r->key_ids[i];
    return secrets;
  }

  PassReport Pass(const billing::PassOptions& options = {}) {
    auto r = checker_->RunPass(options);
    EXPECT_OK(r);
    return r.ok() ? std::move(r).value() : PassReport{};
  }

  const KeyCheck* Find(const PassReport& r, const std::string& secret) {
    for (const KeyCheck& c : r.checks) {
      if (c.key_id == ids_[secret]) return &c;
    }
    return nullptr;
  }

  KeyState StateOf(const std::string& secret) { return store_->GetKey(ids_[secret], false)->state; }

  std::vector<store::RotationRecord> Rotations(const std::string& pool) {
    return *store_->ListRotations({.pool_id = pool_ids_[pool]});
  }

  // Two keys of pool "oh" (spend $1 of $10), a schedule without jitter (active 10 s, idle 1 h,
  // idle after 5 min) and a spend service alone on the store; step(ms) advances the clock and
  // runs one lease tick and one pass.
  struct ScheduleRig {
    std::vector<std::string> secrets;
    stats::Registry registry;
    std::unique_ptr<billing::SpendService> service;
  };
  std::unique_ptr<ScheduleRig> MakeScheduleRig(const std::vector<std::string>& names) {
    auto rig = std::make_unique<ScheduleRig>();
    rig->secrets = MakePool("oh", names, 0);
    Configure(
        "[spend_checker]\njitter = 0\ninterval_active_ms = 10000\ninterval_idle_ms = 3600000\n"
        "idle_after_ms = 300000\n");
    for (const std::string& secret : rig->secrets) {
      stub_.SetSpend(secret, {.spend_usd = 1, .budget_usd = 10});
    }
    rig->service = std::make_unique<billing::SpendService>(*store_, *keys_, clock_, rig->registry,
                                                           config_, "instance");
    return rig;
  }
  void Step(ScheduleRig& rig, int64_t advance_ms) {
    clock_.AdvanceMs(advance_ms);
    rig.service->LeaseStepForTest();
    rig.service->PassStepForTest();
  }

  UpstreamStub stub_;
  ManualClock clock_;
  std::unique_ptr<StoreLocation> location_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<keypool::KeyPool> keys_;
  std::shared_ptr<const config::Config> config_;
  std::unique_ptr<billing::SpendChecker> checker_;
  std::map<std::string, int64_t> pool_ids_;
  std::map<std::string, int64_t> ids_;
};

TEST_P(SpendCheckerTest, RotatesAtThresholdAndAtBudgetOnce) {
  auto s = MakePool("oh", {"near", "over", "fine", "unlimited"}, 4);
  Configure();
  stub_.SetSpend(s[0], {.spend_usd = 9.6, .budget_usd = 10});
  stub_.SetSpend(s[1], {.spend_usd = 10.0, .budget_usd = 10});
  stub_.SetSpend(s[2], {.spend_usd = 2.5, .budget_usd = 10});
  stub_.SetSpend(s[3], {.spend_usd = 9.99, .budget_usd = std::nullopt});  // pool default: $10

  PassReport r = Pass();
  ASSERT_EQ(r.checks.size(), 4u);
  EXPECT_EQ(r.rotated, 3);
  EXPECT_EQ(r.failed, 0);
  EXPECT_EQ(Find(r, s[0])->action, "rotated");
  EXPECT_EQ(Find(r, s[0])->reason, billing::kReasonProactiveThreshold);
  EXPECT_EQ(Find(r, s[1])->action, "rotated");
  EXPECT_EQ(Find(r, s[1])->reason, billing::kReasonBudgetExceeded);
  EXPECT_EQ(Find(r, s[2])->action, "none");
  EXPECT_EQ(Find(r, s[3])->action, "rotated") << "the pool's budget stands in for an unknown one";
  EXPECT_EQ(Find(r, s[3])->budget_micros, 10'000'000);
  EXPECT_EQ(StateOf(s[0]), KeyState::kRetired);
  EXPECT_EQ(StateOf(s[2]), KeyState::kActive);
  EXPECT_EQ(store_->GetKey(ids_[s[2]], false)->spend_micros, 2'500'000) << "spend stored";
  EXPECT_EQ(store_->GetKey(ids_[s[2]], false)->budget_micros, 10'000'000);
  EXPECT_FALSE(store_->GetKey(ids_[s[3]], false)->budget_micros.has_value())
      << "the pool default is not written into the key";

  // The probe went to /key/info with the key as Bearer.
  bool seen = false;
  for (const StubRequest& q : stub_.requests()) {
    if (q.key == s[0]) {
      EXPECT_EQ(q.method, "GET");
      EXPECT_EQ(q.path, "/key/info");
      seen = true;
    }
  }
  EXPECT_TRUE(seen);

  // Rotation records: one per rotated key, reason given; spend records: one per check, rotation
  // fields only on the rotated ones.
  auto rotations = Rotations("oh");
  ASSERT_EQ(rotations.size(), 3u);
  for (const auto& rec : rotations) EXPECT_EQ(rec.actor, "spend-checker");
  auto spends = store_->ListSpendRecords({.pool_id = pool_ids_["oh"]});
  ASSERT_OK(spends);
  ASSERT_EQ(spends->size(), 4u);
  for (const store::SpendRecord& sr : *spends) {
    if (sr.key_id == ids_[s[2]]) {
      EXPECT_EQ(sr.action, "none");
      EXPECT_EQ(sr.reason, "");
      EXPECT_FALSE(sr.new_key_id.has_value());
      EXPECT_EQ(sr.spend_micros, 2'500'000);
    } else {
      EXPECT_EQ(sr.action, "rotated");
      EXPECT_TRUE(sr.new_key_id.has_value());
      EXPECT_FALSE(sr.reason.empty());
    }
  }

  // Second pass: the replacements (spend 0) are checked, the retired keys are not probed again.
  size_t before = stub_.CountForKey(s[0]);
  r = Pass();
  EXPECT_EQ(r.rotated, 0);
  EXPECT_EQ(r.checks.size(), 4u) << "fine + three replacements";
  EXPECT_EQ(stub_.CountForKey(s[0]), before);
  EXPECT_EQ(Rotations("oh").size(), 3u);
}

TEST_P(SpendCheckerTest, HoveringAtTheThresholdIsRotatedOnce) {
  auto s = MakePool("oh", {"hover"}, 2);
  Configure();
  stub_.SetSpend(s[0], {.spend_usd = 9.5, .budget_usd = 10});
  PassReport r = Pass();
  ASSERT_EQ(r.checks.size(), 1u);
  EXPECT_EQ(r.checks[0].action, "rotated");
  int64_t replacement = *r.checks[0].new_key_id;
  for (int i = 0; i < 3; ++i) {
    clock_.AdvanceMs(10'000);
    stub_.SetSpend(s[0], {.spend_usd = i % 2 ? 9.5 : 9.49, .budget_usd = 10});
    r = Pass();
    ASSERT_EQ(r.checks.size(), 1u);
    EXPECT_EQ(r.checks[0].key_id, replacement) << "the second pass sees the replacement";
    EXPECT_EQ(r.checks[0].action, "none");
  }
  EXPECT_EQ(StateOf(s[0]), KeyState::kRetired);
  EXPECT_EQ(Rotations("oh").size(), 1u);
  EXPECT_EQ(store_->CountKeys(pool_ids_["oh"])->backup, 1) << "one backup consumed";
}

TEST_P(SpendCheckerTest, ProbeErrorsRotateNothing) {
  auto s = MakePool("oh", {"e500", "garbage", "slow", "unknown", "truncated"}, 5);
  Configure();
  stub_.SetSpend(s[0], {.spend_usd = 50, .budget_usd = 10, .status = 500});
  stub_.SetSpend(s[1], {.raw_body = "<html>502 Bad Gateway</html>"});
  stub_.SetSpend(s[2], {.spend_usd = 50, .budget_usd = 10, .delay_ms = 1500});  // > 400 ms
  // s[3] has no script: the stub answers 401 invalid key, which is not a budget verdict.
  stub_.SetSpend(s[4], {.raw_body = R"({"info":{"spend":99.0,"max_bud)"});

  PassReport r = Pass();
  ASSERT_EQ(r.checks.size(), 5u);
  EXPECT_EQ(r.failed, 5);
  EXPECT_EQ(r.rotated, 0);
  for (const KeyCheck& c : r.checks) {
    EXPECT_EQ(c.action, "failed");
    EXPECT_FALSE(c.error.empty());
  }
  EXPECT_NE(Find(r, s[0])->error.find("HTTP 500"), std::string::npos) << Find(r, s[0])->error;
  EXPECT_NE(Find(r, s[1])->error.find("not JSON"), std::string::npos) << Find(r, s[1])->error;
  EXPECT_NE(Find(r, s[2])->error.find("timed out"), std::string::npos) << Find(r, s[2])->error;
  for (const std::string& secret : s) {
    EXPECT_EQ(StateOf(secret), KeyState::kActive) << "a failing probe never rotates or disables";
    EXPECT_EQ(store_->GetKey(ids_[secret], false)->spend_micros, 0)
        << "nothing read, nothing stored";
  }
  EXPECT_TRUE(Rotations("oh").empty());
  auto spends = store_->ListSpendRecords({.pool_id = pool_ids_["oh"]});
  ASSERT_EQ(spends->size(), 5u);
  for (const auto& sr : *spends) {
    EXPECT_EQ(sr.action, "failed");
    EXPECT_FALSE(sr.error.empty());
    EXPECT_FALSE(sr.new_key_id.has_value());
  }
}

TEST_P(SpendCheckerTest, LiteLLMBudgetExceededErrorRotates) {
  auto s = MakePool("oh", {"refused"}, 1);
  Configure();
  stub_.SetSpend(s[0], {.spend_usd = 10.02, .budget_usd = 10, .budget_exceeded = true});
  PassReport r = Pass();
  ASSERT_EQ(r.checks.size(), 1u);
  EXPECT_EQ(r.checks[0].action, "rotated");
  EXPECT_EQ(r.checks[0].reason, billing::kReasonBudgetExceeded);
  EXPECT_EQ(r.checks[0].spend_micros, 10'020'000) << "read from LiteLLM's message";
}

TEST_P(SpendCheckerTest, NoBackupExhaustsAndAlreadyRotatedIsNoted) {
  auto s = MakePool("oh", {"lonely", "raced"}, 0);
  Configure();
  stub_.SetSpend(s[0], {.spend_usd = 11, .budget_usd = 10});
  stub_.SetSpend(s[1], {.spend_usd = 11, .budget_usd = 10});
  // The data plane rotates "raced" between the checker's key list and its decision.
  billing::PassOptions options;
  options.due = [&](const config::PoolConfig&, const keypool::KeyView& k) {
    if (k.id == ids_[s[1]]) {
      auto o = store_->Rotate(k.pool_id, k.id, "invalid_key", "gateway");
      EXPECT_OK(o);
    }
    return true;
  };
  PassReport r = Pass(options);
  ASSERT_EQ(r.checks.size(), 2u);
  EXPECT_EQ(Find(r, s[0])->action, "no_backup");
  EXPECT_EQ(StateOf(s[0]), KeyState::kExhausted);
  EXPECT_EQ(Find(r, s[1])->action, "already_rotated");
  EXPECT_EQ(r.no_backup, 1);
  EXPECT_EQ(r.already_rotated, 1);
  auto rotations = Rotations("oh");
  ASSERT_EQ(rotations.size(), 2u) << "the gateway's no_backup and ours; none for already_rotated";
  int ours = 0;
  for (const auto& rec : rotations) ours += rec.actor == "spend-checker";
  EXPECT_EQ(ours, 1);
  auto spends = store_->ListSpendRecords({.pool_id = pool_ids_["oh"]});
  ASSERT_OK(spends);
  ASSERT_EQ(spends->size(), 2u);
  for (const auto& sr : *spends) {
    EXPECT_FALSE(sr.new_key_id.has_value());
    EXPECT_EQ(sr.reason, "") << "rotation fields only when rotated";
  }
}

TEST_P(SpendCheckerTest, OpenRouterAndLedgerProbes) {
  auto o = MakePool("or", {"a", "b"}, 1);
  auto l = MakePool("led", {"x", "y"}, 1);
  Configure();
  stub_.SetSpend(o[0], {.spend_usd = 4.8, .budget_usd = 5});
  stub_.SetSpend(o[1], {.spend_usd = 40, .budget_usd = std::nullopt});  // no limit: never rotated
  // Ledger: x spent $0.95 of $1 since activation (threshold 0.9), y $0.30: the $5 it spent
  // before its last activation (recorded, then the key cooled down and was restored) does not
  // count.
  int n = 0;
  auto add = [&](int64_t key, int64_t cost) {
    store::UsageRecord u;
    u.request_id = "r" + std::to_string(n++);
    u.model = "m";
    u.upstream_key_id = key;
    u.cost_micros = cost;
    u.created_at_ms = clock_.NowMs();
    ASSERT_OK(store_->InsertUsage({u}));
  };
  add(ids_[l[1]], 5'000'000);
  ASSERT_TRUE(*store_->CoolDown(ids_[l[1]], clock_.NowMs() + 60'000, "429"));
  ASSERT_TRUE(*store_->Restore(ids_[l[1]], KeyState::kActive));
  add(ids_[l[0]], 500'000);
  add(ids_[l[0]], 450'000);
  add(ids_[l[1]], 300'000);

  PassReport r = Pass();
  ASSERT_EQ(r.checks.size(), 4u);
  EXPECT_EQ(Find(r, o[0])->action, "rotated");
  EXPECT_EQ(Find(r, o[0])->reason, billing::kReasonProactiveThreshold);
  EXPECT_EQ(Find(r, o[1])->action, "none");
  EXPECT_EQ(Find(r, l[0])->action, "rotated");
  EXPECT_EQ(Find(r, l[0])->spend_micros, 950'000);
  EXPECT_EQ(Find(r, l[1])->action, "none");
  EXPECT_EQ(Find(r, l[1])->spend_micros, 300'000);
  bool openrouter_path = false;
  for (const StubRequest& q : stub_.requests()) openrouter_path |= q.path == "/api/v1/key";
  EXPECT_TRUE(openrouter_path);

  // --pool restricts the pass; a pool without a probe is refused.
  r = Pass({.pool = "led"});
  EXPECT_EQ(r.checks.size(), 2u);
  EXPECT_EQ(checker_->RunPass({.pool = "nope"}).status().code(), StatusCode::kInvalidArgument);
}

TEST_P(SpendCheckerTest, ProbeGoesThroughTheKeysProxyAndNeverDirectWhenItIsDown) {
  auto s = MakePool("oh", {"proxied"}, 1);
  bool created = false;
  auto proxy = store_->AddProxy(*ParseProxyUrl("http://127.0.0.1:9"), &created);  // nothing there
  ASSERT_OK(proxy);
  ASSERT_OK(store_->Bind(ids_[s[0]], proxy->id, 0));
  Configure();
  stub_.SetSpend(s[0], {.spend_usd = 20, .budget_usd = 10});
  PassReport r = Pass();
  ASSERT_EQ(r.checks.size(), 1u);
  EXPECT_EQ(r.checks[0].action, "failed") << "the proxy refuses: a failed check, not a rotation";
  EXPECT_EQ(stub_.CountForKey(s[0]), 0u) << "never sent direct";

  // Marked down: no way out at all.
  auto view = keys_->Snapshot();
  keys_->ReportProxyFailure(view->Find("oh")->keys.at(0).routes.at(0));
  r = Pass();
  EXPECT_NE(r.checks.at(0).error.find("no healthy egress proxy"), std::string::npos);
  EXPECT_EQ(StateOf(s[0]), KeyState::kActive);
}

// Probes leave like the key's traffic: through its own egress proxy, proven from the kernel's
// socket table (the stub's connection belongs to the real tinyproxy / microsocks process), and
// the probe's Bearer key stays inside the tunnel (tinyproxy logs only the CONNECT).
TEST_P(SpendCheckerTest, ProbesLeaveThroughEachKeysRealProxy) {
  std::string error;
  auto proxies = RealProxies::Start(location_->dir() + "/proxies", &error);
  ASSERT_TRUE(proxies) << error;
  auto s = MakePool("oh", {"via-http", "via-socks"}, 2);
  bool created = false;
  auto http = store_->AddProxy(*ParseProxyUrl(proxies->HttpUrl()), &created);
  auto socks = store_->AddProxy(*ParseProxyUrl(proxies->SocksUrl("socks5h")), &created);
  ASSERT_OK(http);
  ASSERT_OK(socks);
  ASSERT_OK(store_->Bind(ids_[s[0]], http->id, 0));
  ASSERT_OK(store_->Bind(ids_[s[1]], socks->id, 0));
  Configure("", /*probe_timeout_ms=*/30'000);
  // The stub holds both answers, so the probes' connections are open while the kernel's socket
  // table is read (the checker does not keep its connections afterwards).
  stub_.SetSpend(s[0], {.spend_usd = 9.7, .budget_usd = 10, .hold = true});
  stub_.SetSpend(s[1], {.spend_usd = 1.0, .budget_usd = 10, .hold = true});
  PassReport r;
  std::thread pass([&] { r = Pass(); });
  bool both_held = WaitFor([&] { return stub_.held() == 2; }, std::chrono::seconds(10));
  const ChildProcess* expected_by_key[] = {&proxies->tinyproxy(), &proxies->microsocks()};
  if (both_held) {
    auto requests = stub_.requests();
    for (int i = 0; i < 2; ++i) {
      const StubRequest* probe = nullptr;
      for (const StubRequest& q : requests) {
        if (q.key == s[i] && q.path == "/key/info") probe = &q;
      }
      EXPECT_NE(probe, nullptr) << s[i] << " was not probed";
      if (probe == nullptr) continue;
      auto port = static_cast<uint16_t>(std::stoi(probe->peer.substr(probe->peer.rfind(':') + 1)));
      EXPECT_TRUE(ConnectionOwnedBy(port, expected_by_key[i]->pid()))
          << s[i] << "'s probe did not come out of its proxy";
    }
  }
  stub_.ReleaseHeld();
  pass.join();
  ASSERT_TRUE(both_held) << "the probes did not arrive";
  ASSERT_EQ(r.checks.size(), 2u);
  EXPECT_EQ(Find(r, s[0])->action, "rotated") << Find(r, s[0])->error;
  EXPECT_EQ(Find(r, s[0])->reason, billing::kReasonProactiveThreshold);
  EXPECT_EQ(Find(r, s[1])->action, "none") << Find(r, s[1])->error;
  std::string log = proxies->TinyproxyLog();
  EXPECT_NE(log.find("CONNECT 127.0.0.1:" + std::to_string(stub_.port())), std::string::npos)
      << log;
  EXPECT_EQ(log.find(s[0]), std::string::npos) << "the key crossed the proxy in the clear";
}

// A Prometheus sample of `registry`: the value rendered for `series`, or -1 when absent.
int64_t Sample(const stats::Registry& registry, const std::string& series) {
  const std::string text = "\n" + registry.RenderPrometheus();
  size_t at = text.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::stoll(text.substr(at + series.size() + 2));
}

// Two checker services (two instances) on one store: only the lease holder probes; when it stops
// renewing, the other takes over once the lease expired, and the old one stops probing by itself;
// a graceful Stop() hands the lease over at once.
TEST_P(SpendCheckerTest, OnlyTheLeaseHolderProbesAndAStandbyTakesOver) {
  auto s = MakePool("oh", {"a", "b"}, 1);
  Configure("[spend_checker]\nlease_ttl_ms = 3000\njitter = 0\n");
  stub_.SetSpend(s[0], {.spend_usd = 1, .budget_usd = 10});
  stub_.SetSpend(s[1], {.spend_usd = 1, .budget_usd = 10});
  auto probes = [&] { return stub_.CountForKey(s[0]) + stub_.CountForKey(s[1]); };
  keypool::KeyPool keys_b(*store_, clock_, keypool::Options{});
  keys_b.Configure(config_->pools);
  stats::Registry reg_a, reg_b;
  billing::SpendService a(*store_, *keys_, clock_, reg_a, config_, "instance-a");
  billing::SpendService b(*store_, keys_b, clock_, reg_b, config_, "instance-b");

  a.LeaseStepForTest();
  b.LeaseStepForTest();
  EXPECT_TRUE(a.leading());
  EXPECT_FALSE(b.leading());
  EXPECT_EQ(Sample(reg_a, "keygate_spend_checker_leader"), 1);
  EXPECT_EQ(Sample(reg_b, "keygate_spend_checker_leader"), 0);
  b.PassStepForTest();
  EXPECT_EQ(probes(), 0u) << "a standby never probes";
  a.PassStepForTest();
  EXPECT_EQ(probes(), 2u);
  EXPECT_EQ(Sample(reg_a, "keygate_spend_probes_total{pool=\"oh\",outcome=\"none\"}"), 2);
  EXPECT_EQ(Sample(reg_b, "keygate_spend_probes_total{pool=\"oh\",outcome=\"none\"}"), -1);

  // A stops renewing (as if killed): B stands by until the lease expires, then leads.
  clock_.AdvanceMs(2'999);
  b.LeaseStepForTest();
  EXPECT_FALSE(b.leading());
  clock_.AdvanceMs(1);
  b.LeaseStepForTest();
  EXPECT_TRUE(b.leading());
  a.PassStepForTest();
  EXPECT_EQ(probes(), 2u) << "A's lease ran out: it stops probing without being told";
  b.PassStepForTest();
  EXPECT_EQ(probes(), 4u) << "a new leader checks every key once";
  a.LeaseStepForTest();
  EXPECT_FALSE(a.leading());
  EXPECT_EQ(Sample(reg_a, "keygate_spend_checker_leader"), 0);

  // A graceful stop releases the lease: A takes over without waiting for the ttl.
  b.Stop();
  EXPECT_EQ(Sample(reg_b, "keygate_spend_checker_leader"), 0);
  a.LeaseStepForTest();
  EXPECT_TRUE(a.leading());
}

// Reload: a config that disables the checker makes the leader give the lease up at its next
// lease tick (so another instance, still enabled, takes over at once) and stop probing.
TEST_P(SpendCheckerTest, DisablingTheCheckerOnReloadReleasesTheLease) {
  auto s = MakePool("oh", {"a"}, 0);
  Configure();
  stub_.SetSpend(s[0], {.spend_usd = 1, .budget_usd = 10});
  stats::Registry reg_a, reg_b;
  billing::SpendService a(*store_, *keys_, clock_, reg_a, config_, "instance-a");
  billing::SpendService b(*store_, *keys_, clock_, reg_b, config_, "instance-b");
  a.LeaseStepForTest();
  b.LeaseStepForTest();
  ASSERT_TRUE(a.leading());
  auto off = std::make_shared<config::Config>(*config_);
  off->spend_checker.enabled = false;
  a.Configure(off);
  a.PassStepForTest();
  EXPECT_EQ(stub_.CountForKey(s[0]), 0u) << "disabled: no pass even before the lease tick";
  a.LeaseStepForTest();
  EXPECT_FALSE(a.leading());
  EXPECT_EQ(Sample(reg_a, "keygate_spend_checker_leader"), 0);
  b.LeaseStepForTest();
  EXPECT_TRUE(b.leading()) << "released, not left to expire";
  a.Configure(config_);  // enabled again: A stands by behind B
  a.LeaseStepForTest();
  EXPECT_FALSE(a.leading());
}

// The schedule through the service: a key the gateway uses is checked every interval_active, an
// idle one only at interval_idle.
TEST_P(SpendCheckerTest, UsedKeysAreCheckedOftenIdleKeysRarely) {
  auto rig = MakeScheduleRig({"busy", "idle"});
  const std::vector<std::string>& s = rig->secrets;
  auto step = [&](int64_t advance_ms) { Step(*rig, advance_ms); };
  step(0);
  EXPECT_EQ(stub_.CountForKey(s[0]), 1u) << "every key once at the start";
  EXPECT_EQ(stub_.CountForKey(s[1]), 1u);

  // The data plane sends a request with "busy" (what the gateway does before each attempt).
  for (const keypool::KeyView& k : keys_->Snapshot()->Find("oh")->keys) {
    if (k.id == ids_[s[0]]) keys_->ReportUse(k);
  }
  step(5'000);
  EXPECT_EQ(stub_.CountForKey(s[0]), 1u) << "not before its interval";
  for (int i = 0; i < 6; ++i) step(i == 0 ? 5'000 : 10'000);
  EXPECT_EQ(stub_.CountForKey(s[0]), 7u) << "used recently: every 10 s";
  EXPECT_EQ(stub_.CountForKey(s[1]), 1u) << "idle: not within the hour";

  // Five minutes without use: "busy" is idle too; both come due at the hour.
  step(300'000);
  EXPECT_EQ(stub_.CountForKey(s[0]), 7u);
  step(3'600'000);
  EXPECT_EQ(stub_.CountForKey(s[0]), 8u);
  EXPECT_EQ(stub_.CountForKey(s[1]), 2u);
}

// A key only another instance uses (its usage records reach the store, its KeyHealth here stays
// untouched) is checked at the short interval too.
TEST_P(SpendCheckerTest, KeysOtherInstancesUseAreCheckedOften) {
  auto rig = MakeScheduleRig({"elsewhere", "idle"});
  const std::vector<std::string>& s = rig->secrets;
  auto step = [&](int64_t advance_ms) { Step(*rig, advance_ms); };
  step(0);
  ASSERT_EQ(stub_.CountForKey(s[0]), 1u) << "every key once at the start";
  int n = 0;
  auto other_instance_uses = [&](const std::string& secret) {
    store::UsageRecord u;
    u.request_id = "other-" + std::to_string(n++);
    u.model = "m";
    u.upstream_key_id = ids_[secret];
    u.created_at_ms = clock_.NowMs();
    ASSERT_OK(store_->InsertUsage({u}));
  };
  for (int i = 0; i < 6; ++i) {
    other_instance_uses(s[0]);
    step(10'000);
  }
  EXPECT_EQ(stub_.CountForKey(s[0]), 7u) << "used by another instance: every 10 s";
  EXPECT_EQ(stub_.CountForKey(s[1]), 1u) << "idle everywhere: hourly";
}

// Outcomes, rotations, the no-backup alert and the spend bands in the service's metrics.
TEST_P(SpendCheckerTest, ServiceMetricsCountOutcomesAndBands) {
  auto s = MakePool("oh", {"near", "over", "mid", "broken"}, 1);
  Configure();
  stub_.SetSpend(s[0], {.spend_usd = 9.6, .budget_usd = 10});   // rotated (takes the backup)
  stub_.SetSpend(s[1], {.spend_usd = 10.5, .budget_usd = 10});  // no backup left
  stub_.SetSpend(s[2], {.spend_usd = 6, .budget_usd = 10});
  stub_.SetSpend(s[3], {.status = 500});
  stats::Registry reg;
  billing::SpendService svc(*store_, *keys_, clock_, reg, config_, "instance");
  svc.LeaseStepForTest();
  svc.PassStepForTest();
  auto probes = [&](const std::string& outcome) {
    return Sample(reg, "keygate_spend_probes_total{pool=\"oh\",outcome=\"" + outcome + "\"}");
  };
  EXPECT_EQ(probes("rotated"), 1);
  EXPECT_EQ(probes("no_backup"), 1);
  EXPECT_EQ(probes("none"), 1);
  EXPECT_EQ(probes("failed"), 1);
  EXPECT_EQ(
      Sample(reg, "keygate_spend_rotations_total{pool=\"oh\",reason=\"proactive_threshold\"}"), 1);
  EXPECT_EQ(Sample(reg, "keygate_spend_no_backup_total{pool=\"oh\"}"), 1);
  EXPECT_EQ(StateOf(s[1]), KeyState::kExhausted);
  // In service now: mid ($6 of $10), broken (nothing known: $0 of the pool's $10) and the
  // replacement (not checked yet: $0 of the pool's $10).
  auto band = [&](const std::string& b) {
    return Sample(reg, "keygate_spend_keys{pool=\"oh\",band=\"" + b + "\"}");
  };
  EXPECT_EQ(band("lt50"), 2);
  EXPECT_EQ(band("50-85"), 1);
  EXPECT_EQ(band("85-95"), 0);
  EXPECT_EQ(band("ge95"), 0);
  EXPECT_EQ(band("unknown"), 0);
}

KG_INSTANTIATE_STORE_TEST(SpendCheckerTest);

}  // namespace
}  // namespace keygate::testing
