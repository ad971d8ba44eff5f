// The PostgreSQL driver prepares a statement once it has run a few times on a connection, and
// keeps working when the server forgets it (a pooler or DEALLOCATE reset the session) or when a
// table it reads changes shape. Run on the throw-away PostgreSQL of the `pg` fixture.
#include <memory>
#include <string>
#include <vector>

#include "store/postgres/pg_driver.h"
#include "tests/store/store_test_util.h"

namespace keygate::testing {
namespace {

using store::sql::Connection;
using store::sql::Result;
using store::sql::Value;

class PgPreparedTest : public ::testing::TestWithParam<StoreKind> {
 protected:
  void SetUp() override {
    auto loc = StoreLocation::Create(GetParam());
    ASSERT_OK(loc);
    location_ = std::move(loc).value();
    driver_ = store::postgres::NewPostgresDriver(location_->url());
    auto conn = driver_->Connect();
    ASSERT_OK(conn);
    conn_ = std::move(conn).value();
  }

  Result Exec(const std::string& sql, std::vector<Value> params = {}) {
    auto r = conn_->Exec(sql, params);
    EXPECT_TRUE(r.ok()) << sql << ": " << r.status().ToString();
    return r.ok() ? std::move(r).value() : Result{};
  }
  // How many statements the server holds prepared for this connection whose text contains
  // `fragment` (read with a statement text no other test line uses, so never prepared itself).
  int64_t PreparedLike(const std::string& fragment) {
    Result r = Exec("SELECT count(*) FROM pg_prepared_statements WHERE strpos(statement, ?) > 0",
                    {fragment});
    return r.rows.empty() ? -1 : r.rows[0].Int(0);
  }

  std::unique_ptr<StoreLocation> location_;
  std::unique_ptr<store::sql::Driver> driver_;
  std::unique_ptr<Connection> conn_;
};

TEST_P(PgPreparedTest, AStatementRunRepeatedlyIsPreparedOnceAndAnswersAlike) {
  for (int64_t i = 0; i < 6; ++i) {
    Result r = Exec("SELECT ? + 1000", {i});
    ASSERT_EQ(r.rows.size(), 1u);
    EXPECT_EQ(r.rows[0].Int(0), i + 1000);
  }
  EXPECT_EQ(PreparedLike("$1 + 1000"), 1);
  Exec("SELECT ? + 2000", {int64_t{1}});  // run once: not prepared
  EXPECT_EQ(PreparedLike("$1 + 2000"), 0);
}

TEST_P(PgPreparedTest, AStatementTheServerForgotRunsAgain) {
  for (int i = 0; i < 4; ++i) Exec("SELECT ?::bigint * 3", {int64_t{7}});
  ASSERT_EQ(PreparedLike("$1::bigint * 3"), 1);
  ASSERT_OK(conn_->ExecScript("DEALLOCATE ALL"));  // what a pooler's session reset does

  // Outside a transaction the driver runs it again at once.
  Result r = Exec("SELECT ?::bigint * 3", {int64_t{5}});
  ASSERT_EQ(r.rows.size(), 1u);
  EXPECT_EQ(r.rows[0].Int(0), 15);

  // Inside one, the error has aborted the transaction: Aborted tells the store to rerun it, and
  // the rerun succeeds.
  for (int i = 0; i < 4; ++i) Exec("SELECT ?::bigint * 3", {int64_t{7}});
  ASSERT_EQ(PreparedLike("$1::bigint * 3"), 1);
  ASSERT_OK(conn_->ExecScript("DEALLOCATE ALL"));
  ASSERT_OK(conn_->BeginWrite());
  auto in_txn = conn_->Exec("SELECT ?::bigint * 3", std::vector<Value>{int64_t{2}});
  EXPECT_EQ(in_txn.status().code(), StatusCode::kAborted) << in_txn.status().ToString();
  ASSERT_OK(conn_->Rollback());
  ASSERT_OK(conn_->BeginWrite());
  auto rerun = conn_->Exec("SELECT ?::bigint * 3", std::vector<Value>{int64_t{2}});
  ASSERT_OK(rerun);
  EXPECT_EQ(rerun->rows[0].Int(0), 6);
  ASSERT_OK(conn_->Commit());

  // Forgotten twice (a transaction-pooling proxy in front of the server would do it again and
  // again): from then on it goes with its text and is not prepared any more.
  for (int i = 0; i < 6; ++i) Exec("SELECT ?::bigint * 3", {int64_t{7}});
  EXPECT_EQ(PreparedLike("$1::bigint * 3"), 0);
  EXPECT_EQ(Exec("SELECT ?::bigint * 3", {int64_t{4}}).rows[0].Int(0), 12);
}

TEST_P(PgPreparedTest, ATableChangingShapeUnderAPreparedSelectIsReadAgain) {
  Exec("CREATE TABLE shapes (a BIGINT)");
  Exec("INSERT INTO shapes (a) VALUES (?)", {int64_t{1}});
  for (int i = 0; i < 4; ++i)
    EXPECT_EQ(Exec("SELECT * FROM shapes WHERE a = ?", {int64_t{1}}).rows.size(), 1u);
  ASSERT_EQ(PreparedLike("FROM shapes WHERE"), 1);
  Exec("ALTER TABLE shapes ADD COLUMN b BIGINT DEFAULT 9");
  Result r = Exec("SELECT * FROM shapes WHERE a = ?", {int64_t{1}});
  ASSERT_EQ(r.rows.size(), 1u);
  ASSERT_EQ(r.rows[0].size(), 2u);
  EXPECT_EQ(r.rows[0].Int(1), 9);
}

INSTANTIATE_TEST_SUITE_P(Stores, PgPreparedTest, ::testing::Values(StoreKind::kPostgres),
                         StoreParamName);

}  // namespace
}  // namespace keygate::testing
