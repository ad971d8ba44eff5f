// The spend checker's schedule, with injected time: recently used keys are due at the short
// interval, idle ones only at the long one; jitter stretches each interval within its bounds.
#include "billing/spend_schedule.h"

#include <gtest/gtest.h>

namespace keygate::billing {
namespace {

constexpr int64_t kT0 = 1'700'000'000'000;

keypool::KeyView Key(int64_t id) {
  keypool::KeyView k;
  k.id = id;
  k.health = std::make_shared<keypool::KeyHealth>();
  return k;
}

SpendIntervals Exact() {
  return {.active_ms = 10'000, .idle_ms = 3'600'000, .idle_after_ms = 300'000, .jitter = 0};
}

TEST(SpendScheduleTest, RecentKeysAtTheShortIntervalIdleOnesAtTheLong) {
  SpendSchedule schedule(1);
  keypool::KeyView busy = Key(1), idle = Key(2), stale = Key(3);
  // Never checked: due at once, used or not.
  EXPECT_TRUE(schedule.Due(Exact(), busy, kT0));
  EXPECT_TRUE(schedule.Due(Exact(), idle, kT0));
  for (const auto* k : {&busy, &idle, &stale}) schedule.Checked(Exact(), k->id, kT0);

  busy.health->last_used_ms = kT0 + 3'000;           // used since the check
  stale.health->last_used_ms = kT0 - 290'001;        // 300.001 s before kT0 + 10 s
  EXPECT_FALSE(schedule.Due(Exact(), busy, kT0 + 9'999));
  EXPECT_TRUE(schedule.Due(Exact(), busy, kT0 + 10'000)) << "used recently: every 10 s";
  EXPECT_FALSE(schedule.Due(Exact(), idle, kT0 + 10'000)) << "never used: hourly";
  EXPECT_FALSE(schedule.Due(Exact(), stale, kT0 + 10'000)) << "last used > idle_after ago";
  EXPECT_FALSE(schedule.Due(Exact(), idle, kT0 + 3'599'999));
  EXPECT_TRUE(schedule.Due(Exact(), idle, kT0 + 3'600'000));

  // Checked again: the interval counts from the latest check.
  schedule.Checked(Exact(), busy.id, kT0 + 10'000);
  EXPECT_FALSE(schedule.Due(Exact(), busy, kT0 + 19'999));
  EXPECT_TRUE(schedule.Due(Exact(), busy, kT0 + 20'000));
  // Unused for idle_after: the key falls back to the long interval.
  EXPECT_FALSE(schedule.Due(Exact(), busy, kT0 + 3'000 + 300'001));

  schedule.Clear();
  EXPECT_TRUE(schedule.Due(Exact(), idle, kT0 + 1)) << "a cleared schedule checks every key once";
}

// Traffic this instance cannot see (another instance's): the key's spend moved between two
// readings, so it is busy until a reading shows it still.
TEST(SpendScheduleTest, UseSeenInTheStoreMakesAKeyBusyLikeLocalUse) {
  SpendSchedule schedule(1);
  keypool::KeyView elsewhere = Key(1), idle = Key(2);
  for (const auto* k : {&elsewhere, &idle}) schedule.Checked(Exact(), k->id, kT0);
  schedule.SawUse(elsewhere.id, kT0 + 2'000);  // another instance's usage record
  schedule.SawUse(elsewhere.id, kT0 + 1'000);  // an older one read later changes nothing
  EXPECT_TRUE(schedule.Due(Exact(), elsewhere, kT0 + 10'000)) << "busy on another instance";
  EXPECT_FALSE(schedule.Due(Exact(), idle, kT0 + 10'000));
  EXPECT_FALSE(schedule.Due(Exact(), elsewhere, kT0 + 2'000 + 300'001))
      << "idle again once idle_after has passed since that use";
}

TEST(SpendScheduleTest, SpendThatMovesMakesAKeyBusy) {
  SpendSchedule schedule(1);
  keypool::KeyView k = Key(1);
  schedule.Checked(Exact(), k.id, kT0, 1'000'000);
  EXPECT_FALSE(schedule.Due(Exact(), k, kT0 + 10'000)) << "one reading: idle";
  schedule.Checked(Exact(), k.id, kT0 + 3'600'000, 1'500'000);
  EXPECT_TRUE(schedule.Due(Exact(), k, kT0 + 3'610'000)) << "spend moved: every 10 s";
  schedule.Checked(Exact(), k.id, kT0 + 3'610'000);  // the probe failed: still busy
  EXPECT_TRUE(schedule.Due(Exact(), k, kT0 + 3'620'000));
  schedule.Checked(Exact(), k.id, kT0 + 3'620'000, 1'500'000);
  EXPECT_FALSE(schedule.Due(Exact(), k, kT0 + 3'630'000)) << "spend still: idle again";
}

TEST(SpendScheduleTest, JitterStaysWithinItsBoundsAndSpreadsKeys) {
  SpendIntervals j = Exact();
  j.jitter = 0.2;
  SpendSchedule schedule(42);
  std::vector<keypool::KeyView> keys;
  for (int i = 0; i < 200; ++i) {
    keys.push_back(Key(i + 1));
    keys.back().health->last_used_ms = kT0;
    schedule.Checked(j, keys.back().id, kT0);
  }
  int due_early = 0, due_late = 0;
  for (const auto& k : keys) {
    EXPECT_FALSE(schedule.Due(j, k, kT0 + 8'000 - 1)) << "never before interval x (1 - jitter)";
    EXPECT_TRUE(schedule.Due(j, k, kT0 + 12'000)) << "always by interval x (1 + jitter)";
    due_early += schedule.Due(j, k, kT0 + 9'000);
    due_late += !schedule.Due(j, k, kT0 + 11'000);
  }
  // Keys checked together come due at different times (200 draws from [0.8, 1.2]).
  EXPECT_GT(due_early, 0);
  EXPECT_GT(due_late, 0);
}

TEST(SpendScheduleTest, PoolOverridesTheGlobalIntervals) {
  config::SpendCheckerConfig global;
  global.interval_active_ms = 10'000;
  global.interval_idle_ms = 3'600'000;
  config::PoolConfig pool;
  SpendIntervals i = IntervalsFor(global, pool);
  EXPECT_EQ(i.active_ms, 10'000);
  EXPECT_EQ(i.idle_ms, 3'600'000);
  pool.spend_interval_active_ms = 2'000;
  pool.spend_interval_idle_ms = 60'000;
  i = IntervalsFor(global, pool);
  EXPECT_EQ(i.active_ms, 2'000);
  EXPECT_EQ(i.idle_ms, 60'000);
  EXPECT_EQ(i.idle_after_ms, global.idle_after_ms);
}

}  // namespace
}  // namespace keygate::billing
