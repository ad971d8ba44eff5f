// The rotation invariants of docs/design.md under real concurrency: OS processes (fork, never
// threads), each with its own Store, racing on one SQLite file or one PostgreSQL database.
//
//  - Race:  16 processes released by one barrier rotate the same active key, 50 rounds.
//  - Storm: 8 processes rotate random keys of one pool until the backups run out, while the
//           parent checks every invariant on consistent snapshots.
//  - Crash: rotating processes are SIGKILLed at random moments (often inside a write
//           transaction); the reopened store must be exactly "before" or "after" each rotation.
//
// Random choices come from one seed, printed by every test; KG_RACE_SEED=<n> replays them
// (the interleavings themselves are up to the kernel).
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <map>
#include <random>
#include <thread>
#include <variant>

#include "tests/race/pool_invariants.h"
#include "tests/race/process_group.h"
#include "tests/store/store_test_util.h"
#include "tests/testing/store_env.h"

namespace keygate::testing {
namespace {

using std::chrono::milliseconds;
using store::AlreadyRotated;
using store::KeyState;
using store::NoBackup;
using store::Rotated;
using store::RotateOutcome;
using SteadyClock = std::chrono::steady_clock;

constexpr int kRaceProcs = 16;
constexpr int kRaceRounds = 50;
constexpr int kRaceActive = 4;
constexpr int kRaceBackups = kRaceRounds + 10;

constexpr int kStormProcs = 8;
constexpr int kStormActive = 24;
constexpr int kStormBackups = 600;

constexpr int kCrashIterations = 30;
constexpr int kCrashProcs = 4;
constexpr int kCrashActive = 8;
constexpr int kCrashMaxKillDelayMs = 50;
// Backups are topped up to kCrashBackupTarget before an iteration when fewer than kCrashBackupLow
// remain; children stop above kCrashBackupReserve, so NoBackup never happens and every key stays
// either active or retired.
constexpr int kCrashBackupTarget = 1200;
constexpr int kCrashBackupLow = 600;
constexpr int kCrashBackupReserve = 100;
constexpr int kMaxAcks = 4096;

// Generous bounds: they only fire when something hangs.
constexpr milliseconds kReadyTimeout{60'000};
constexpr milliseconds kFinishTimeout{120'000};

uint32_t BaseSeed() {
  static const uint32_t seed = [] {
    if (const char* env = std::getenv("KG_RACE_SEED"); env != nullptr && *env != '\0') {
      return static_cast<uint32_t>(std::strtoul(env, nullptr, 10));
    }
    return std::random_device{}();
  }();
  return seed;
}

// Folds one outcome (or error) into the child's report.
void Tally(const StatusOr<RotateOutcome>& out, ChildReport& report) {
  if (!out.ok()) {
    report.AddError(out.status().ToString());
    return;
  }
  if (const auto* r = std::get_if<Rotated>(&*out)) {
    ++report.rotated;
    report.last_new_key_id = r->new_key_id;
  } else if (std::holds_alternative<AlreadyRotated>(*out)) {
    ++report.already_rotated;
  } else {
    ++report.no_backup;
  }
}

struct Totals {
  int64_t rotated = 0, already_rotated = 0, no_backup = 0, errors = 0;
  std::string first_error;
};

Totals Sum(const std::vector<ChildReport>& reports) {
  Totals t;
  for (const ChildReport& r : reports) {
    t.rotated += r.rotated;
    t.already_rotated += r.already_rotated;
    t.no_backup += r.no_backup;
    t.errors += r.errors;
    if (t.first_error.empty() && r.errors > 0) {
      t.first_error = "child " + std::to_string(r.child) + ": " + r.first_error;
    }
  }
  return t;
}

double SecondsSince(SteadyClock::time_point start) {
  return std::chrono::duration<double>(SteadyClock::now() - start).count();
}

// Opens the store in a child. Every child opens its own: nothing opened by the parent crosses
// fork (SQLite file locks and libpq sockets must not be shared between processes).
std::unique_ptr<store::Store> OpenInChild(const std::string& url, ChildReport& report) {
  auto s = OpenTestStore(url);
  if (!s.ok()) {
    report.AddError("open: " + s.status().ToString());
    return nullptr;
  }
  return std::move(s).value();
}

// What a crash-test child leaves behind for the parent, in shared memory: a SIGKILLed child
// cannot report.
struct AckLog {
  std::atomic<int32_t> in_rotate{0};  // 1 while inside Store::Rotate
  std::atomic<int32_t> count{0};      // valid entries in `acks`
  struct Ack {
    int64_t failed_key_id;
    int64_t new_key_id;
  } acks[kMaxAcks];
};

class RotationRaceTest : public ::testing::TestWithParam<StoreKind> {
 protected:
  void SetUp() override {
    auto loc = StoreLocation::Create(GetParam());
    ASSERT_TRUE(loc.ok()) << loc.status().ToString();
    location_ = std::move(loc).value();
    std::cout << "[race] " << StoreKindName(GetParam()) << " seed=" << BaseSeed()
              << " (KG_RACE_SEED to replay)" << std::endl;
  }

  const std::string& url() const { return location_->url(); }
  std::string kind() const { return StoreKindName(GetParam()); }

  // Opens the store in the parent. The caller closes it (lets it go out of scope) before the
  // next fork.
  std::unique_ptr<store::Store> OpenParent() {
    auto s = OpenTestStore(url());
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::move(s).value() : nullptr;
  }

  // Imports `n` keys in `state` into the pool; records their ids in expect_.
  void Import(store::Store& store, int n, KeyState state) {
    std::vector<store::NewKey> keys(n);
    for (int i = 0; i < n; ++i) {
      keys[i].secret = "sk-race-" + std::to_string(next_secret_++) + "-0123456789abcdef";
      keys[i].state = state;
    }
    auto r = store.ImportKeys(pool_id_, keys);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_EQ(r->inserted, n);
    for (int64_t id : r->key_ids) {
      expect_.imported.insert(id);
      if (state == KeyState::kActive) expect_.initial_active.insert(id);
    }
  }

  // Creates the pool: `active` keys, each bound to a proxy of its own, and `backups` backups.
  void MakePool(int active, int backups) {
    auto store = OpenParent();
    ASSERT_NE(store, nullptr);
    auto pool = store->CreatePool("race", "openai");
    ASSERT_TRUE(pool.ok()) << pool.status().ToString();
    pool_id_ = pool->id;
    ASSERT_NO_FATAL_FAILURE(Import(*store, active, KeyState::kActive));
    ASSERT_NO_FATAL_FAILURE(Import(*store, backups, KeyState::kBackup));
    int port = 10000;
    for (int64_t key : expect_.initial_active) {
      auto url = ParseProxyUrl("http://proxy.test:" + std::to_string(port++));
      ASSERT_TRUE(url.ok()) << url.status().ToString();
      bool created = false;
      auto proxy = store->AddProxy(*url, &created);
      ASSERT_TRUE(proxy.ok()) << proxy.status().ToString();
      ASSERT_TRUE(store->Bind(key, proxy->id, 0).ok());
      expect_.initial_key_of_proxy[proxy->id] = key;
    }
  }

  // Reads the pool through the Store interface (nothing else is running) and checks every
  // invariant.
  PoolSnapshot CheckQuiescent(const std::string& when) {
    auto store = OpenParent();
    if (store == nullptr) return {};
    auto snap = ReadSnapshot(*store, pool_id_);
    EXPECT_TRUE(snap.ok()) << snap.status().ToString();
    if (!snap.ok()) return {};
    auto violations = CheckPool(*snap, expect_);
    EXPECT_TRUE(violations.empty()) << when << ":" << JoinViolations(violations);
    return std::move(snap).value();
  }

  std::unique_ptr<StoreLocation> location_;
  int64_t pool_id_ = 0;
  PoolExpectation expect_;
  int next_secret_ = 0;
};

// ---------------------------------------------------------------- the race

TEST_P(RotationRaceTest, SixteenProcessesRotateTheSameKeyExactlyOnce) {
  ASSERT_NO_FATAL_FAILURE(MakePool(kRaceActive, kRaceBackups));
  const auto start = SteadyClock::now();
  Totals all;
  for (int round = 0; round < kRaceRounds; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    PoolSnapshot before = CheckQuiescent("before round " + std::to_string(round));
    store::StateCounts before_counts = before.Counts();
    // A different active key each round: the active keys in id order, cycled.
    std::vector<int64_t> active;
    for (const KeyRow& k : before.keys) {
      if (k.state == "active") active.push_back(k.id);
    }
    ASSERT_EQ(active.size(), static_cast<size_t>(kRaceActive));
    const int64_t target = active[round % active.size()];

    ProcessGroup group;
    for (int i = 0; i < kRaceProcs; ++i) {
      group.Spawn([&](ChildContext& ctx) {
        auto store = OpenInChild(url(), ctx.report());
        // Arrive even when the open failed, so the barrier never waits for a broken child.
        if (!ctx.ArriveAndWait() || store == nullptr) return;
        Tally(store->Rotate(pool_id_, target, "race", "race-" + std::to_string(ctx.index())),
              ctx.report());
      });
    }
    ASSERT_TRUE(group.WaitReady(kReadyTimeout).ok());
    group.Release();
    auto reports = group.CollectReports(kFinishTimeout);
    ASSERT_TRUE(reports.ok()) << reports.status().ToString();
    ASSERT_TRUE(group.WaitAll(kFinishTimeout).ok());
    for (size_t i = 0; i < group.size(); ++i) {
      const int status = group.wait_status(static_cast<int>(i));
      EXPECT_EQ(status, 0) << "child " << i << " " << ProcessGroup::DescribeWaitStatus(status);
    }
    ASSERT_EQ(reports->size(), static_cast<size_t>(kRaceProcs));

    Totals t = Sum(*reports);
    EXPECT_EQ(t.errors, 0) << t.first_error;
    EXPECT_EQ(t.rotated, 1);
    EXPECT_EQ(t.already_rotated, kRaceProcs - 1);
    EXPECT_EQ(t.no_backup, 0);
    int64_t winner_new_key = 0;
    for (const ChildReport& r : *reports) {
      if (r.rotated == 1) winner_new_key = r.last_new_key_id;
    }

    PoolSnapshot after = CheckQuiescent("after round " + std::to_string(round));
    store::StateCounts after_counts = after.Counts();
    EXPECT_EQ(after_counts.active, before_counts.active) << "active count changed";
    EXPECT_EQ(after_counts.backup, before_counts.backup - 1) << "not exactly one backup consumed";
    EXPECT_EQ(after_counts.retired, before_counts.retired + 1);
    ASSERT_EQ(after.rotations.size(), before.rotations.size() + 1)
        << "not exactly one new rotation record";
    const RotationRow& record = after.rotations.back();
    EXPECT_EQ(record.failed_key_id, target);
    EXPECT_EQ(record.new_key_id, winner_new_key);
    EXPECT_EQ(record.outcome, "rotated");

    all.rotated += t.rotated;
    all.already_rotated += t.already_rotated;
    all.errors += t.errors;
    if (HasFailure()) break;  // one broken round says it all; don't bury it under 49 more
  }
  std::cout << "[race] " << kind() << ": " << kRaceRounds << " rounds x " << kRaceProcs
            << " processes on one key: rotated=" << all.rotated
            << " already_rotated=" << all.already_rotated << " errors=" << all.errors << " in "
            << SecondsSince(start) << " s" << std::endl;
}

// ---------------------------------------------------------------- the storm

TEST_P(RotationRaceTest, StormOfRandomRotationsKeepsEveryInvariant) {
  ASSERT_NO_FATAL_FAILURE(MakePool(kStormActive, kStormBackups));
  CheckQuiescent("before the storm");
  const auto start = SteadyClock::now();

  ProcessGroup group;
  for (int i = 0; i < kStormProcs; ++i) {
    group.Spawn([&](ChildContext& ctx) {
      std::mt19937 rng(BaseSeed() + 1000 + ctx.index());
      auto store = OpenInChild(url(), ctx.report());
      if (!ctx.ArriveAndWait() || store == nullptr) return;
      while (true) {
        auto counts = store->CountKeys(pool_id_);
        if (!counts.ok()) return ctx.report().AddError(counts.status().ToString());
        if (counts->backup == 0) return;  // the backups ran out
        // A fresh list each time: the pick may still be stale by the time Rotate runs, which
        // is the point (AlreadyRotated).
        auto active = store->ListKeys({.pool_id = pool_id_, .state = KeyState::kActive});
        if (!active.ok()) return ctx.report().AddError(active.status().ToString());
        if (active->empty()) return;
        int64_t key = (*active)[rng() % active->size()].id;
        auto out = store->Rotate(pool_id_, key, "storm", "storm-" + std::to_string(ctx.index()));
        Tally(out, ctx.report());
        if (!out.ok() || std::holds_alternative<NoBackup>(*out)) return;
      }
    });
  }
  ASSERT_TRUE(group.WaitReady(kReadyTimeout).ok());
  group.Release();

  // The invariants during the storm, on consistent snapshots, strictly: SQLite commits are
  // serial, and on PostgreSQL a rotation that finds only locked backups waits for them before
  // it may answer NoBackup (see locked_backup_test.cc), so no committed state shows a key
  // exhausted beside a backup.
  int64_t checks = 0;
  std::vector<std::string> violations;
  // The children's reports (a few hundred bytes) fit the pipe buffer, so they can exit while
  // nobody reads; AllExited() only reaps.
  while (!group.AllExited() && violations.empty()) {
    auto snap = ReadRawSnapshot(url(), pool_id_);
    ASSERT_TRUE(snap.ok()) << snap.status().ToString();
    violations = CheckPool(*snap, expect_);
    ++checks;
  }
  EXPECT_TRUE(violations.empty()) << "during the storm, check " << checks << ":"
                                  << JoinViolations(violations);
  auto reports = group.CollectReports(kFinishTimeout);
  ASSERT_TRUE(reports.ok()) << reports.status().ToString();
  ASSERT_TRUE(group.WaitAll(kFinishTimeout).ok());
  ASSERT_EQ(reports->size(), static_cast<size_t>(kStormProcs));
  double seconds = SecondsSince(start);

  Totals t = Sum(*reports);
  EXPECT_EQ(t.errors, 0) << t.first_error;
  PoolSnapshot after = CheckQuiescent("after the storm");
  store::StateCounts c = after.Counts();
  EXPECT_EQ(c.backup, 0) << "the storm stops only when the backups ran out";
  EXPECT_EQ(t.rotated, kStormBackups) << "each backup activated exactly once";
  EXPECT_EQ(c.retired, kStormBackups);
  EXPECT_EQ(t.no_backup, c.exhausted);
  EXPECT_GT(checks, 0);
  std::cout << "[storm] " << kind() << ": " << kStormProcs << " processes, " << kStormActive
            << " active + " << kStormBackups << " backups: rotated=" << t.rotated
            << " already_rotated=" << t.already_rotated << " no_backup=" << t.no_backup
            << " errors=" << t.errors << "; invariants checked " << checks
            << " times during the storm; " << seconds << " s" << std::endl;
}

// ---------------------------------------------------------------- the crash

TEST_P(RotationRaceTest, KilledRotatorsLeaveThePoolBeforeOrAfter) {
  ASSERT_NO_FATAL_FAILURE(MakePool(kCrashActive, kCrashBackupTarget));
  std::mt19937 rng(BaseSeed());
  std::uniform_int_distribution<int> delay_ms(0, kCrashMaxKillDelayMs);
  SharedArray<AckLog> logs(kCrashProcs);
  const auto start = SteadyClock::now();
  int64_t kills = 0, kills_in_rotate = 0, acked = 0;
  size_t rotations_before = CheckQuiescent("before the crashes").rotations.size();

  for (int iter = 0; iter < kCrashIterations; ++iter) {
    SCOPED_TRACE("iteration " + std::to_string(iter));
    {
      auto store = OpenParent();
      ASSERT_NE(store, nullptr);
      auto counts = store->CountKeys(pool_id_);
      ASSERT_TRUE(counts.ok());
      if (counts->backup < kCrashBackupLow) {
        ASSERT_NO_FATAL_FAILURE(
            Import(*store, kCrashBackupTarget - static_cast<int>(counts->backup), KeyState::kBackup));
      }
    }  // closed before fork
    for (int i = 0; i < kCrashProcs; ++i) {
      logs[i].in_rotate.store(0);
      logs[i].count.store(0);
    }

    ProcessGroup group;
    for (int i = 0; i < kCrashProcs; ++i) {
      group.Spawn([&](ChildContext& ctx) {
        AckLog& log = logs[ctx.index()];
        std::mt19937 child_rng(BaseSeed() + 7919 * (iter + 1) + ctx.index());
        auto store = OpenInChild(url(), ctx.report());
        if (!ctx.ArriveAndWait() || store == nullptr) return;
        while (true) {  // until killed
          auto counts = store->CountKeys(pool_id_);
          if (!counts.ok() || counts->backup <= kCrashBackupReserve) return;
          auto active = store->ListKeys({.pool_id = pool_id_, .state = KeyState::kActive});
          if (!active.ok() || active->empty()) return;
          int64_t key = (*active)[child_rng() % active->size()].id;
          log.in_rotate.store(1);
          auto out = store->Rotate(pool_id_, key, "crash", "crash");
          log.in_rotate.store(0);
          if (!out.ok()) return ctx.report().AddError(out.status().ToString());
          if (const auto* r = std::get_if<Rotated>(&*out)) {
            int32_t n = log.count.load(std::memory_order_relaxed);
            if (n < kMaxAcks) {
              log.acks[n] = {key, r->new_key_id};
              // Publish the entry before the count: the parent reads entries [0, count).
              log.count.store(n + 1, std::memory_order_release);
            }
          }
        }
      });
    }
    ASSERT_TRUE(group.WaitReady(kReadyTimeout).ok());
    // Kill moments are drawn before the release so the draw costs nothing after it.
    std::vector<int> delays(kCrashProcs);
    for (int& d : delays) d = delay_ms(rng);
    std::vector<int> order(kCrashProcs);
    for (int i = 0; i < kCrashProcs; ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](int a, int b) { return delays[a] < delays[b]; });
    const auto released = SteadyClock::now();
    group.Release();
    for (int i : order) {
      // The random moment of the kill: this wait is the experiment, not a synchronization.
      std::this_thread::sleep_until(released + milliseconds(delays[i]));
      if (logs[i].in_rotate.load()) ++kills_in_rotate;
      group.Kill(i);
      ++kills;
    }
    ASSERT_TRUE(group.WaitAll(kFinishTimeout).ok());
    for (int i = 0; i < kCrashProcs; ++i) {
      int status = group.wait_status(i);
      // A child that returned early (its Rotate failed) exits with code 0 before the kill;
      // anything but SIGKILL or a clean exit is a crash of our own.
      EXPECT_TRUE(WIFSIGNALED(status) ? WTERMSIG(status) == SIGKILL : status == 0)
          << "child " << i << " " << ProcessGroup::DescribeWaitStatus(status);
    }

    PoolSnapshot after = CheckQuiescent("after kill iteration " + std::to_string(iter));
    // Durability: every Rotated a killed process was told about is in the store.
    std::map<int64_t, int64_t> new_of_failed;
    for (const RotationRow& r : after.rotations) {
      if (r.new_key_id) new_of_failed[r.failed_key_id] = *r.new_key_id;
    }
    for (int i = 0; i < kCrashProcs; ++i) {
      int32_t n = logs[i].count.load(std::memory_order_acquire);
      acked += n;
      for (int32_t j = 0; j < n; ++j) {
        const AckLog::Ack& a = logs[i].acks[j];
        auto it = new_of_failed.find(a.failed_key_id);
        EXPECT_TRUE(it != new_of_failed.end() && it->second == a.new_key_id)
            << "acknowledged rotation " << a.failed_key_id << " -> " << a.new_key_id
            << " is not in the store";
      }
    }
    if (HasFailure()) break;
  }
  size_t rotations = CheckQuiescent("after the crashes").rotations.size() - rotations_before;
  EXPECT_GT(kills_in_rotate, 0) << "no kill landed inside Rotate(); the test proves little";
  std::cout << "[crash] " << kind() << ": " << kCrashIterations << " iterations x "
            << kCrashProcs << " processes: kills=" << kills
            << " kills_inside_rotate=" << kills_in_rotate << " rotations_committed=" << rotations
            << " acknowledged=" << acked << "; " << SecondsSince(start) << " s" << std::endl;
}

KG_INSTANTIATE_STORE_TEST(RotationRaceTest);

}  // namespace
}  // namespace keygate::testing
