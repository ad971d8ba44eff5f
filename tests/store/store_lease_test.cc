// Conformance tests of the store's leases (leader election across instances) and of the traffic
// read for the spend checker's schedule, run against SQLite and a real PostgreSQL like the rest of
// the suite.
#include <atomic>
#include <barrier>
#include <set>
#include <thread>

#include "tests/store/store_test_util.h"

namespace keygate::testing {
namespace {

class StoreLeaseTest : public StoreTest {};

TEST_P(StoreLeaseTest, AcquireRenewBlockAndTakeOver) {
  auto a = store_->TryAcquireLease("spend", "a", 1000);
  ASSERT_OK(a);
  EXPECT_TRUE(*a) << "a free lease is taken";
  EXPECT_FALSE(*store_->TryAcquireLease("spend", "b", 1000)) << "a running lease blocks others";
  clock_.AdvanceMs(600);
  EXPECT_TRUE(*store_->TryAcquireLease("spend", "a", 1000)) << "the holder renews";
  clock_.AdvanceMs(600);
  EXPECT_FALSE(*store_->TryAcquireLease("spend", "b", 1000))
      << "the renewal moved the expiry: 1200 ms after the first take, still a's";
  clock_.AdvanceMs(400);  // exactly at the renewed expiry: expired
  EXPECT_TRUE(*store_->TryAcquireLease("spend", "b", 1000)) << "an expired lease is taken over";
  EXPECT_FALSE(*store_->TryAcquireLease("spend", "a", 1000)) << "and the old holder lost it";
  EXPECT_TRUE(*store_->TryAcquireLease("other", "a", 1000)) << "leases are independent by name";
}

TEST_P(StoreLeaseTest, ReleaseFreesOnlyForTheHolder) {
  ASSERT_TRUE(*store_->TryAcquireLease("spend", "a", 60'000));
  ASSERT_OK(store_->ReleaseLease("spend", "b"));
  EXPECT_FALSE(*store_->TryAcquireLease("spend", "b", 60'000)) << "a non-holder cannot release";
  ASSERT_OK(store_->ReleaseLease("spend", "a"));
  EXPECT_TRUE(*store_->TryAcquireLease("spend", "b", 60'000)) << "released: free at once";
  ASSERT_OK(store_->ReleaseLease("nothing", "a"));
}

TEST_P(StoreLeaseTest, InvalidArguments) {
  EXPECT_EQ(store_->TryAcquireLease("", "a", 10).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->TryAcquireLease("x", "", 10).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->TryAcquireLease("x", "a", 0).status().code(), StatusCode::kInvalidArgument);
}

// Many instances (each a Store of its own, with its own connections) race for one lease. In each
// round every instance tries several times at the same instant; exactly one holder may win in a
// round, and the next round (same instant) only that holder renews. Then time passes the expiry
// and a new round elects exactly one again.
TEST_P(StoreLeaseTest, ContentionElectsExactlyOneHolder) {
  constexpr int kInstances = 6;
  constexpr int kTries = 5;
  constexpr int kRounds = 6;
  std::vector<std::unique_ptr<store::Store>> stores;
  for (int i = 0; i < kInstances; ++i) {
    auto s = OpenTestStore(location_->url(), &clock_);
    ASSERT_OK(s);
    stores.push_back(std::move(s).value());
  }
  std::mutex mu;
  std::set<int> winners;  // GUARDED_BY(mu): instances that got true in this round
  std::atomic<int> errors{0};
  std::barrier start(kInstances + 1), done(kInstances + 1);
  std::vector<std::thread> threads;
  for (int i = 0; i < kInstances; ++i) {
    threads.emplace_back([&, i] {
      for (int round = 0; round < kRounds; ++round) {
        start.arrive_and_wait();
        for (int t = 0; t < kTries; ++t) {
          auto got = stores[i]->TryAcquireLease("leader", "instance-" + std::to_string(i), 1000);
          if (!got.ok()) {
            ++errors;
          } else if (*got) {
            std::lock_guard<std::mutex> lock(mu);
            winners.insert(i);
          }
        }
        done.arrive_and_wait();
      }
    });
  }
  int previous = -1;
  for (int round = 0; round < kRounds; ++round) {
    start.arrive_and_wait();
    done.arrive_and_wait();
    std::lock_guard<std::mutex> lock(mu);
    ASSERT_EQ(winners.size(), 1u) << "round " << round;
    int winner = *winners.begin();
    if (round % 2 == 1) EXPECT_EQ(winner, previous) << "same instant: only the holder renews";
    previous = winner;
    winners.clear();
    if (round % 2 == 1) clock_.AdvanceMs(1000);  // expire before the next election
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(errors.load(), 0);
}

// The spend checker's leader reads every instance's traffic incrementally: keys with records
// after the cursor and not older than `since`, each with its newest record's time.
TEST_P(StoreLeaseTest, KeysUsedAfterReadsNewRecordsOnce) {
  int64_t pool = MakePool("p", 3, 0);
  auto keys = store_->ListKeys({.pool_id = pool});
  ASSERT_OK(keys);
  int64_t k1 = keys->at(0).id, k2 = keys->at(1).id;
  int next = 0;
  auto insert = [&](std::vector<std::pair<std::optional<int64_t>, int64_t>> uses) {
    std::vector<store::UsageRecord> batch;
    for (auto [key, at] : uses) {
      store::UsageRecord u;
      u.request_id = "u" + std::to_string(next++);
      u.model = "m";
      u.upstream_key_id = key;
      u.created_at_ms = at;
      batch.push_back(u);
    }
    ASSERT_OK(store_->InsertUsage(batch));
  };
  auto none = store_->KeysUsedAfter(0, 0);
  ASSERT_OK(none);
  EXPECT_TRUE(none->keys.empty());
  EXPECT_EQ(none->max_record_id, 0) << "no records: the cursor stays";

  insert({{k1, 1000}, {k1, 5000}, {k2, 500}, {std::nullopt, 6000}});
  auto first = store_->KeysUsedAfter(0, 800);
  ASSERT_OK(first);
  ASSERT_EQ(first->keys.size(), 1u) << "k2's only record is older than since";
  EXPECT_EQ(first->keys[0].key_id, k1);
  EXPECT_EQ(first->keys[0].last_used_ms, 5000);
  EXPECT_GT(first->max_record_id, 0);

  auto again = store_->KeysUsedAfter(first->max_record_id, 800);
  ASSERT_OK(again);
  EXPECT_TRUE(again->keys.empty()) << "nothing new after the cursor";
  EXPECT_EQ(again->max_record_id, first->max_record_id);

  insert({{k2, 7000}});
  auto later = store_->KeysUsedAfter(first->max_record_id, 800);
  ASSERT_OK(later);
  ASSERT_EQ(later->keys.size(), 1u);
  EXPECT_EQ(later->keys[0].key_id, k2);
  EXPECT_EQ(later->keys[0].last_used_ms, 7000);
  EXPECT_GT(later->max_record_id, first->max_record_id);
}

KG_INSTANTIATE_STORE_TEST(StoreLeaseTest);

}  // namespace
}  // namespace keygate::testing
