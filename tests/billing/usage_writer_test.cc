// The usage writer against a real SQLite store, with "store down" made real by another
// connection holding the write lock.
#include "billing/usage_writer.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <chrono>
#include <thread>

#include "tests/testing/store_env.h"

namespace keygate::billing {
namespace {

using testing::StoreKind;
using testing::StoreLocation;

class UsageWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    location_ = std::move(StoreLocation::Create(StoreKind::kSqlite)).value();
    store::StoreOptions options;
    options.url = location_->url();
    options.secrets = testing::TestSecrets();
    options.busy_timeout_ms = 20;
    store_ = std::move(store::OpenStore(options)).value();
  }
  store::UsageRecord Record(int i) {
    store::UsageRecord r;
    r.request_id = "req-" + std::to_string(i);
    r.model = "gpt-4o";
    r.input_tokens = i;
    return r;
  }
  int64_t Stored() { return static_cast<int64_t>(store_->ListUsage({.limit = 100000})->size()); }

  // Holds SQLite's write lock from another connection: to keygate, the store is down.
  void LockStore() {
    ASSERT_EQ(sqlite3_open(location_->url().c_str(), &holder_), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(holder_, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr), SQLITE_OK);
  }
  void UnlockStore() {
    sqlite3_exec(holder_, "ROLLBACK", nullptr, nullptr, nullptr);
    sqlite3_close(holder_);
    holder_ = nullptr;
  }

  std::unique_ptr<StoreLocation> location_;
  std::unique_ptr<store::Store> store_;
  sqlite3* holder_ = nullptr;
};

TEST_F(UsageWriterTest, EverythingQueuedIsWrittenByStop) {
  UsageWriter w(*store_, {.batch_size = 64, .flush_ms = 1000});
  w.Start();
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(w.Enqueue(Record(i)));
  EXPECT_EQ(w.Stop(5000), 0);
  EXPECT_EQ(Stored(), 1000);
  EXPECT_EQ(w.written(), 1000);
  EXPECT_EQ(w.dropped(), 0);
}

TEST_F(UsageWriterTest, StoreDownKeepsRecordsAndWritesThemLater) {
  UsageWriter w(*store_, {.batch_size = 8, .flush_ms = 5, .max_backoff_ms = 50});
  LockStore();
  w.Start();
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(w.Enqueue(Record(i)));
  // Wait until the writer has demonstrably failed against the locked store.
  for (int i = 0; i < 500 && w.write_errors() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_GT(w.write_errors(), 0);
  EXPECT_EQ(w.depth(), 50) << "nothing lost while the store is down";
  UnlockStore();
  EXPECT_EQ(w.Stop(10'000), 0);
  EXPECT_EQ(Stored(), 50);
}

TEST_F(UsageWriterTest, BeyondTheBoundRecordsAreDroppedAndCounted) {
  int drops_seen = 0;
  UsageWriter w(*store_, {.batch_size = 100, .flush_ms = 5, .queue_limit = 10},
                [&](const store::UsageRecord&) { ++drops_seen; });
  LockStore();
  for (int i = 0; i < 15; ++i) w.Enqueue(Record(i));
  EXPECT_EQ(w.dropped(), 5);
  EXPECT_EQ(drops_seen, 5);
  EXPECT_EQ(w.depth(), 10);
  EXPECT_FALSE(w.FlushForTest().ok());
  UnlockStore();
  EXPECT_TRUE(w.FlushForTest().ok());
  EXPECT_EQ(Stored(), 10);
}

// Billed records carry money: never dropped. Past the bound they are still queued, and the writer
// reports itself backlogged so the data path admits no new billed request.
TEST_F(UsageWriterTest, BilledRecordsAreNeverDroppedAndBacklogIsReported) {
  UsageWriter w(*store_, {.batch_size = 100, .flush_ms = 5, .queue_limit = 10});
  LockStore();
  for (int i = 0; i < 9; ++i) w.Enqueue(Record(i));
  EXPECT_FALSE(w.backlogged());
  for (int i = 9; i < 15; ++i) {
    store::UsageRecord r = Record(i);
    r.settle = true;
    EXPECT_TRUE(w.Enqueue(r)) << "a billed record is always queued";
  }
  EXPECT_TRUE(w.backlogged());
  EXPECT_FALSE(w.Enqueue(Record(99))) << "an unbilled one beyond the bound is dropped";
  EXPECT_EQ(w.dropped(), 1);
  EXPECT_EQ(w.depth(), 15);
  UnlockStore();
  EXPECT_TRUE(w.FlushForTest().ok());
  EXPECT_FALSE(w.backlogged());
  EXPECT_EQ(Stored(), 15);
}

TEST_F(UsageWriterTest, StopGivesUpAtTheDeadlineAndReportsWhatIsLeft) {
  UsageWriter w(*store_, {.batch_size = 4, .flush_ms = 5, .max_backoff_ms = 20});
  LockStore();
  w.Start();
  for (int i = 0; i < 6; ++i) w.Enqueue(Record(i));
  EXPECT_EQ(w.Stop(200), 6);
  UnlockStore();
}

}  // namespace
}  // namespace keygate::billing
