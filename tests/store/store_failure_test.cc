// Storage failures are errors, never rotation outcomes; bad stores are refused with a clear
// message. Each test checks that nothing was half-written.
#include <sqlite3.h>

#include <chrono>
#include <variant>

#include "tests/store/store_test_util.h"

namespace keygate::testing {
namespace {

using store::KeyState;

// Its own fixture name, so this file instantiates only its own tests.
class StoreFailureTest : public StoreTest {};

TEST_P(StoreFailureTest, NewerSchemaVersionIsRefused) {
  ASSERT_OK(ExecRawSql(*location_,
                       "INSERT INTO schema_migrations (version, name, applied_at) "
                       "VALUES (999, 'from the future', 0)"));
  store_.reset();
  auto s = OpenTestStore(location_->url(), &clock_);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.status().message().find("999"), std::string::npos) << s.status().ToString();
  EXPECT_NE(s.status().message().find("upgrade keygate"), std::string::npos);
}

TEST_P(StoreFailureTest, SecondOpenDoesNotMigrateAgain) {
  store_.reset();
  auto again = OpenTestStore(location_->url(), &clock_);
  ASSERT_OK(again);
  auto third = OpenTestStore(location_->url(), &clock_);
  ASSERT_OK(third);
  EXPECT_EQ(*(*third)->SchemaVersion(), *(*again)->SchemaVersion());
}

TEST_P(StoreFailureTest, CorruptedSecretIsAnErrorNotGarbage) {
  int64_t pool = MakePool("p", 1, 0);
  int64_t key = store_->ListKeys({.pool_id = pool})->at(0).id;
  // Flip the first byte (to a value it surely is not), leaving the rest intact.
  ASSERT_OK(ExecRawSql(*location_,
                       "UPDATE upstream_keys SET secret_sealed = CASE WHEN "
                       "substr(secret_sealed, 1, 2) = '00' THEN 'ff' ELSE '00' END || "
                       "substr(secret_sealed, 3) WHERE id = " + std::to_string(key)));
  auto k = store_->GetKey(key, true);
  ASSERT_FALSE(k.ok());
  EXPECT_EQ(k.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(store_->GetKey(key, false).ok()) << "masked listing still works";
}

KG_INSTANTIATE_STORE_TEST(StoreFailureTest);

TEST(StoreFailure, UnreachablePostgresIsUnavailableAndQuick) {
  store::StoreOptions options;
  options.url = "postgresql://postgres:hunter2@127.0.0.1:1/keygate";
  options.secrets = TestSecrets();
  auto start = std::chrono::steady_clock::now();
  auto s = store::OpenStore(options);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(s.status().message().find("hunter2"), std::string::npos) << s.status().ToString();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
}

TEST(StoreFailure, NotADatabaseFileIsRefused) {
  auto loc = StoreLocation::Create(StoreKind::kSqlite);
  ASSERT_OK(loc);
  FILE* f = std::fopen((*loc)->url().c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::fputs("this is not a database, just some text that is long enough to be a header....", f);
  std::fclose(f);
  auto s = OpenTestStore((*loc)->url());
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kFailedPrecondition) << s.status().ToString();
}

TEST(StoreFailure, ReadOnlyStoreRefusesWritesAndMigrations) {
  auto loc = StoreLocation::Create(StoreKind::kSqlite);
  ASSERT_OK(loc);
  store::StoreOptions options;
  options.url = (*loc)->url();
  options.secrets = TestSecrets();
  options.read_only = true;
  auto fresh = store::OpenStore(options);
  ASSERT_FALSE(fresh.ok()) << "a read-only open cannot create or migrate a store";
  {
    auto rw = OpenTestStore((*loc)->url());
    ASSERT_OK(rw);
    ASSERT_OK((*rw)->CreatePool("p", "openai"));
  }
  auto ro = store::OpenStore(options);
  ASSERT_OK(ro);
  EXPECT_EQ((*ro)->ListPools()->size(), 1u);
  auto w = (*ro)->CreatePool("q", "openai");
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.status().code(), StatusCode::kFailedPrecondition) << w.status().ToString();
}

// A writer holding the SQLite lock longer than the busy timeout: Rotate reports Unavailable —
// a storage error, never AlreadyRotated or NoBackup — and the pool is unchanged.
TEST(StoreFailure, LockedSqliteRotateIsAnErrorNotAnOutcome) {
  auto loc = StoreLocation::Create(StoreKind::kSqlite);
  ASSERT_OK(loc);
  store::StoreOptions options;
  options.url = (*loc)->url();
  options.secrets = TestSecrets();
  options.busy_timeout_ms = 100;
  auto st = store::OpenStore(options);
  ASSERT_OK(st);
  auto& store = **st;
  auto pool = store.CreatePool("p", "openai");
  store::NewKey a{.secret = "sk-active-0123456789abc", .state = KeyState::kActive};
  store::NewKey b{.secret = "sk-backup-0123456789abc", .state = KeyState::kBackup};
  auto ids = store.ImportKeys(pool->id, {a, b});
  ASSERT_OK(ids);

  sqlite3* holder = nullptr;
  ASSERT_EQ(sqlite3_open((*loc)->url().c_str(), &holder), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(holder, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr), SQLITE_OK);
  auto out = store.Rotate(pool->id, ids->key_ids[0], "upstream_401");
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), StatusCode::kUnavailable) << out.status().ToString();
  sqlite3_exec(holder, "ROLLBACK", nullptr, nullptr, nullptr);
  sqlite3_close(holder);

  auto counts = store.CountKeys(pool->id);
  EXPECT_EQ(counts->active, 1);
  EXPECT_EQ(counts->backup, 1);
  EXPECT_TRUE(store.ListRotations({})->empty());
  auto after = store.Rotate(pool->id, ids->key_ids[0], "upstream_401");
  ASSERT_OK(after);
  EXPECT_TRUE(std::holds_alternative<store::Rotated>(*after));
}

}  // namespace
}  // namespace keygate::testing
