// PostgreSQL claims backups with FOR UPDATE SKIP LOCKED. A backup row that another transaction
// has locked (an in-flight rotation that may still roll back, a spend update, a binding change)
// is skipped; when it is the last backup, a rotation that gives up at that point exhausts its key
// with NoBackup although a backup remains once the other transaction ends: the active count
// drops with a backup available (invariant 3). NoBackup must mean "none is left".
//
// PostgreSQL only: SQLite serializes writers, so there is no row lock to skip.
#include <gtest/gtest.h>

#include <chrono>
#include <variant>

#include "store/postgres/pg_driver.h"
#include "store/sql/sql.h"
#include "tests/race/process_group.h"
#include "tests/store/store_test_util.h"

namespace keygate::testing {
namespace {

using std::chrono::milliseconds;
using store::KeyState;

class LockedBackupTest : public StoreTest {};

// True once some backend of `db` other than `conn`'s waits on a lock.
StatusOr<bool> SomeoneWaitsOnALock(store::sql::Connection& conn) {
  KG_ASSIGN_OR_RETURN(store::sql::Result r,
                      conn.Exec("SELECT COUNT(*) FROM pg_stat_activity WHERE datname ="
                                " current_database() AND wait_event_type = 'Lock'",
                                {}));
  return r.rows[0].Int(0) > 0;
}

TEST_P(LockedBackupTest, LockedLastBackupIsWaitedForNotSkipped) {
  int64_t pool = MakePool("p", 2, 1);
  auto active = store_->ListKeys({.pool_id = pool, .state = KeyState::kActive});
  auto backups = store_->ListKeys({.pool_id = pool, .state = KeyState::kBackup});
  ASSERT_OK(active);
  ASSERT_OK(backups);
  ASSERT_EQ(backups->size(), 1u);
  const int64_t failed = (*active)[0].id;
  const int64_t backup = (*backups)[0].id;
  store_.reset();  // nothing crosses the fork

  // Another writer holds the only backup's row, as UpdateSpend or a rotation that will roll
  // back would.
  auto driver = store::postgres::NewPostgresDriver(location_->url());
  auto locker = driver->Connect();
  ASSERT_OK(locker);
  ASSERT_OK((*locker)->ExecScript("BEGIN"));
  const store::sql::Value params[] = {backup};
  ASSERT_OK((*locker)->Exec("UPDATE upstream_keys SET spend_micros = spend_micros WHERE id = ?",
                            params));

  ProcessGroup group;
  const std::string url = location_->url();
  group.Spawn([&](ChildContext& ctx) {
    auto s = OpenTestStore(url);
    if (!ctx.ArriveAndWait()) return;
    if (!s.ok()) return ctx.report().AddError(s.status().ToString());
    auto out = (*s)->Rotate(pool, failed, "locked");
    if (!out.ok()) return ctx.report().AddError(out.status().ToString());
    if (const auto* r = std::get_if<store::Rotated>(&*out)) {
      ++ctx.report().rotated;
      ctx.report().last_new_key_id = r->new_key_id;
    } else if (std::holds_alternative<store::NoBackup>(*out)) {
      ++ctx.report().no_backup;
    } else {
      ++ctx.report().already_rotated;
    }
  });
  ASSERT_OK(group.WaitReady(milliseconds(60'000)));
  group.Release();
  // Wait (bounded) until the rotation either blocks on the locked row or has already answered.
  auto observer = driver->Connect();
  ASSERT_OK(observer);
  const auto deadline = std::chrono::steady_clock::now() + milliseconds(30'000);
  while (!group.AllExited()) {
    auto waiting = SomeoneWaitsOnALock(**observer);
    ASSERT_OK(waiting);
    if (*waiting) break;
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "the rotation neither blocked nor ended";
  }
  // The other writer ends without taking the backup: it is still there for the rotation.
  ASSERT_OK((*locker)->ExecScript("ROLLBACK"));

  auto reports = group.CollectReports(milliseconds(60'000));
  ASSERT_OK(reports);
  ASSERT_OK(group.WaitAll(milliseconds(60'000)));
  ASSERT_EQ(reports->size(), 1u);
  const ChildReport& r = (*reports)[0];
  EXPECT_EQ(r.errors, 0) << r.first_error;
  EXPECT_EQ(r.no_backup, 0) << "NoBackup although a backup was left: the key was exhausted";
  EXPECT_EQ(r.rotated, 1);
  EXPECT_EQ(r.last_new_key_id, backup);

  auto reopened = OpenTestStore(location_->url());
  ASSERT_OK(reopened);
  auto counts = (*reopened)->CountKeys(pool);
  ASSERT_OK(counts);
  EXPECT_EQ(counts->active, 2);
  EXPECT_EQ(counts->exhausted, 0);
  EXPECT_EQ(counts->backup, 0);
}

INSTANTIATE_TEST_SUITE_P(Stores, LockedBackupTest,
                         ::testing::Values(StoreKind::kPostgres), StoreParamName);

}  // namespace
}  // namespace keygate::testing
