#include "keypool/keypool.h"

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <variant>

#include "tests/testing/store_env.h"

namespace keygate::keypool {
namespace {

using testing::OpenTestStore;
using testing::StoreKind;
using testing::StoreLocation;

class KeyPoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    location_ = std::move(StoreLocation::Create(StoreKind::kSqlite)).value();
    store_ = std::move(OpenTestStore(location_->url(), &clock_)).value();
    pool_id_ = store_->CreatePool("p", "openai")->id;
  }

  std::vector<int64_t> AddKeys(int active, int backup, int64_t priority = 0) {
    std::vector<store::NewKey> keys;
    for (int i = 0; i < active + backup; ++i) {
      keys.push_back({.secret = "sk-test-" + std::to_string(next_++) + "-abcdefghijkl",
                      .state = i < active ? store::KeyState::kActive : store::KeyState::kBackup,
                      .priority = priority});
    }
    return store_->ImportKeys(pool_id_, keys)->key_ids;
  }

  std::unique_ptr<KeyPool> MakePool(config::Strategy strategy, bool allow_direct = false) {
    auto kp = std::make_unique<KeyPool>(*store_, clock_, Options{.eject_after_failures = 3});
    config::PoolConfig pc{.name = "p", .provider = "openai", .strategy = strategy,
                          .allow_direct = allow_direct};
    kp->Configure({{"p", pc}});
    EXPECT_TRUE(kp->Refresh().ok());
    return kp;
  }

  ManualClock clock_;
  std::unique_ptr<StoreLocation> location_;
  std::unique_ptr<store::Store> store_;
  int64_t pool_id_ = 0;
  int next_ = 0;
};

TEST_F(KeyPoolTest, ViewHoldsActiveKeysWithSecrets) {
  AddKeys(3, 2);
  auto kp = MakePool(config::Strategy::kRoundRobin);
  auto snap = kp->Snapshot();
  const PoolView* pool = snap->Find("p");
  ASSERT_NE(pool, nullptr);
  EXPECT_EQ(pool->keys.size(), 3u);
  EXPECT_EQ(pool->counts.backup, 2);
  for (const KeyView& k : pool->keys) EXPECT_FALSE(k.secret.empty());
}

TEST_F(KeyPoolTest, RoundRobinVisitsEveryKeyEvenly) {
  AddKeys(4, 0);
  auto kp = MakePool(config::Strategy::kRoundRobin);
  auto snap = kp->Snapshot();
  std::map<int64_t, int> hits;
  for (int i = 0; i < 400; ++i) hits[kp->Choose(*snap->Find("p"), {}).key->id]++;
  ASSERT_EQ(hits.size(), 4u);
  for (auto& [id, n] : hits) EXPECT_EQ(n, 100);
}

TEST_F(KeyPoolTest, WeightedFollowsPriority) {
  AddKeys(1, 0, 1);
  AddKeys(1, 0, 9);
  auto kp = MakePool(config::Strategy::kWeighted);
  auto snap = kp->Snapshot();
  std::map<int64_t, int> hits;
  for (int i = 0; i < 5000; ++i) hits[kp->Choose(*snap->Find("p"), {}).key->weight]++;
  EXPECT_GT(hits[9], hits[1] * 5);
  EXPECT_GT(hits[1], 200);
}

// The weighted pick draws by binary search over all keys and rejects unusable ones, with an
// exact pass when most of the weight is unusable: either way only usable keys, still by weight.
TEST_F(KeyPoolTest, WeightedSkipsUnusableKeysAndKeepsTheWeights) {
  AddKeys(1, 0, 1);
  AddKeys(1, 0, 9);
  AddKeys(1, 0, 90);
  auto kp = MakePool(config::Strategy::kWeighted);
  auto snap = kp->Snapshot();
  const PoolView& pool = *snap->Find("p");
  ASSERT_EQ(pool.cumulative_weight, (std::vector<int64_t>{1, 10, 100}));
  const KeyView* heavy = nullptr;
  for (const KeyView& k : pool.keys) {
    if (k.weight == 90) heavy = &k;
  }
  ASSERT_NE(heavy, nullptr);
  kp->ReportCooldown(*heavy, 10'000);  // 90 % of the weight is unusable: draws are often rejected
  std::map<int64_t, int> hits;
  for (int i = 0; i < 5000; ++i) hits[kp->Choose(pool, {}).key->weight]++;
  EXPECT_EQ(hits.count(90), 0u);
  EXPECT_GT(hits[9], hits[1] * 5);
  EXPECT_GT(hits[1], 200);

  // Only the lightest key usable (99 % of the weight not): the exact pass finds it every time.
  std::vector<int64_t> exclude;
  for (const KeyView& k : pool.keys) {
    if (k.weight == 9) exclude.push_back(k.id);
  }
  for (int i = 0; i < 200; ++i) EXPECT_EQ(kp->Choose(pool, exclude).key->weight, 1);
  for (const KeyView& k : pool.keys) {
    if (k.weight == 1) exclude.push_back(k.id);
  }
  EXPECT_EQ(kp->Choose(pool, exclude).key, nullptr);
}

TEST_F(KeyPoolTest, LeastInFlightPrefersIdleKeys) {
  AddKeys(2, 0);
  auto kp = MakePool(config::Strategy::kLeastInFlight);
  auto snap = kp->Snapshot();
  const PoolView& pool = *snap->Find("p");
  pool.keys[0].health->in_flight = 50;
  int idle = 0;
  for (int i = 0; i < 200; ++i) idle += kp->Choose(pool, {}).key->id == pool.keys[1].id;
  EXPECT_EQ(idle, 200) << "two distinct choices of two keys always find the idle one";
}

TEST_F(KeyPoolTest, ExcludeCooldownEjectionAndDeadKeysAreSkipped) {
  AddKeys(4, 0);
  auto kp = MakePool(config::Strategy::kRoundRobin);
  auto snap = kp->Snapshot();
  const PoolView& pool = *snap->Find("p");
  kp->ReportCooldown(pool.keys[0], 10'000);
  kp->ReportDead(pool.keys[1]);
  for (int i = 0; i < 3; ++i) kp->ReportFailure(pool.keys[2]);  // ejected after 3
  std::vector<int64_t> exclude{pool.keys[3].id};
  EXPECT_EQ(kp->Choose(pool, exclude).key, nullptr);
  EXPECT_EQ(kp->Choose(pool, {}).key->id, pool.keys[3].id);
  clock_.AdvanceMs(11'000);
  std::set<int64_t> seen;
  for (int i = 0; i < 8; ++i) seen.insert(kp->Choose(pool, exclude).key->id);
  EXPECT_EQ(seen, std::set<int64_t>{pool.keys[0].id}) << "cooled key back; ejected still out";
  clock_.AdvanceMs(60'000);
  seen.clear();
  for (int i = 0; i < 8; ++i) seen.insert(kp->Choose(pool, exclude).key->id);
  EXPECT_EQ(seen, (std::set<int64_t>{pool.keys[0].id, pool.keys[2].id}));
}

TEST_F(KeyPoolTest, SuccessResetsTheFailureStreak) {
  AddKeys(1, 0);
  auto kp = MakePool(config::Strategy::kRoundRobin);
  auto snap = kp->Snapshot();
  const PoolView& pool = *snap->Find("p");
  kp->ReportFailure(pool.keys[0]);
  kp->ReportFailure(pool.keys[0]);
  kp->ReportSuccess(pool.keys[0]);
  kp->ReportFailure(pool.keys[0]);
  EXPECT_NE(kp->Choose(pool, {}).key, nullptr);
}

TEST_F(KeyPoolTest, RoutesFollowBindingsAndProxyHealth) {
  auto ids = AddKeys(1, 0);
  bool created;
  auto a = store_->AddProxy(*ParseProxyUrl("socks5://u:pw@127.0.0.1:1081"), &created);
  auto b = store_->AddProxy(*ParseProxyUrl("http://127.0.0.1:3128"), &created);
  ASSERT_TRUE(store_->Bind(ids[0], a->id, 10).ok());
  ASSERT_TRUE(store_->Bind(ids[0], b->id, 1).ok());
  auto kp = MakePool(config::Strategy::kRoundRobin);
  auto snap = kp->Snapshot();
  const PoolView& pool = *snap->Find("p");
  Pick p = kp->Choose(pool, {});
  ASSERT_NE(p.route, nullptr);
  EXPECT_EQ(p.route->proxy_id, a->id);
  EXPECT_EQ(p.route->url, "socks5://u:pw@127.0.0.1:1081");
  EXPECT_EQ(p.route->display_url, "socks5://u@127.0.0.1:1081");
  kp->ReportProxyFailure(*p.route);
  p = kp->Choose(pool, {});
  ASSERT_NE(p.route, nullptr);
  EXPECT_EQ(p.route->proxy_id, b->id) << "next binding by priority";
  kp->ReportProxyFailure(*p.route);
  EXPECT_EQ(kp->Choose(pool, {}).key, nullptr) << "no proxy up, direct not allowed";

  auto direct = MakePool(config::Strategy::kRoundRobin, /*allow_direct=*/true);
  auto snap2 = direct->Snapshot();
  const PoolView& pool2 = *snap2->Find("p");
  for (const Route& r : pool2.keys[0].routes) direct->ReportProxyFailure(r);
  p = direct->Choose(pool2, {});
  ASSERT_NE(p.key, nullptr);
  EXPECT_EQ(p.route, nullptr) << "direct when the pool allows it";
}

TEST_F(KeyPoolTest, RefreshSeesAnotherInstancesRotationAndKeepsHealth) {
  auto ids = AddKeys(2, 1);
  auto kp = MakePool(config::Strategy::kRoundRobin);
  auto before = kp->Snapshot();
  const PoolView& pool = *before->Find("p");
  kp->ReportCooldown(pool.keys[1], 5'000);

  // Another "instance": its own Store on the same file.
  auto other = std::move(OpenTestStore(location_->url(), &clock_)).value();
  auto out = other->Rotate(pool_id_, ids[0], "upstream_401");
  ASSERT_TRUE(out.ok());
  ASSERT_TRUE(std::holds_alternative<store::Rotated>(*out));

  EXPECT_EQ(*kp->Refresh(), 1);
  auto after = kp->Snapshot();
  const PoolView& pool2 = *after->Find("p");
  std::set<int64_t> ids_after;
  for (const KeyView& k : pool2.keys) ids_after.insert(k.id);
  EXPECT_EQ(ids_after, (std::set<int64_t>{ids[1], ids[2]}));
  const KeyView* kept = nullptr;
  for (const KeyView& k : pool2.keys) if (k.id == ids[1]) kept = &k;
  EXPECT_GT(kept->health->cooldown_until_ms.load(), clock_.NowMs()) << "health survives refresh";
  EXPECT_EQ(*kp->Refresh(), 0) << "unchanged version: nothing reloaded";
  EXPECT_EQ(before->Find("p")->keys.size(), 2u) << "old snapshots stay valid";
}

// A key's health (cooldown, failure streak, in-flight count) lives while some view has the key:
// kept across refreshes that change nothing and across reloads of its pool, dropped once the key
// is gone (Refresh skips that cleanup when no pool was reloaded).
TEST_F(KeyPoolTest, HealthLivesWhileAViewHasTheKey) {
  auto ids = AddKeys(2, 0);
  auto kp = MakePool(config::Strategy::kRoundRobin);
  auto health_of = [&](int64_t id) -> std::shared_ptr<KeyHealth> {
    for (const KeyView& k : kp->Snapshot()->Find("p")->keys) {
      if (k.id == id) return k.health;
    }
    return nullptr;
  };
  std::shared_ptr<KeyHealth> h0 = health_of(ids[0]);
  ASSERT_NE(h0, nullptr);
  EXPECT_EQ(*kp->Refresh(), 0);
  EXPECT_EQ(health_of(ids[0]), h0) << "unchanged pool: the same health";
  AddKeys(1, 0);
  EXPECT_EQ(*kp->Refresh(), 1);
  EXPECT_EQ(health_of(ids[0]), h0) << "reloaded pool: the same health";
  ASSERT_TRUE(*store_->DeleteKey(ids[0]));
  EXPECT_EQ(*kp->Refresh(), 1);
  EXPECT_EQ(health_of(ids[0]), nullptr);
  EXPECT_EQ(h0.use_count(), 1) << "nothing but this test holds the deleted key's health";
}

TEST_F(KeyPoolTest, RotateThroughThePoolHandlesAllOutcomes) {
  auto ids = AddKeys(2, 1);
  auto kp = MakePool(config::Strategy::kRoundRobin);
  auto r1 = kp->Rotate(pool_id_, ids[0], "invalid_key");
  ASSERT_TRUE(r1.ok());
  EXPECT_TRUE(std::holds_alternative<store::Rotated>(*r1));
  auto r2 = kp->Rotate(pool_id_, ids[0], "invalid_key");
  EXPECT_TRUE(std::holds_alternative<store::AlreadyRotated>(*r2));
  auto r3 = kp->Rotate(pool_id_, ids[1], "invalid_key");
  EXPECT_TRUE(std::holds_alternative<store::NoBackup>(*r3));
  EXPECT_EQ(kp->Snapshot()->Find("p")->keys.size(), 1u);
  EXPECT_EQ(kp->Snapshot()->Find("p")->counts.exhausted, 1);
}

}  // namespace
}  // namespace keygate::keypool
