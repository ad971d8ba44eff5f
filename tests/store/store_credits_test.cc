// Conformance tests of credit reservations and settlement (Store::ReserveCredits, InsertUsage
// with settle, ReleaseExpiredReservations), on SQLite and a real PostgreSQL.
#include <atomic>
#include <map>
#include <thread>

#include "tests/store/store_test_util.h"

namespace keygate::testing {
namespace {

using store::NewClientKey;
using store::ReserveRequest;
using store::ReserveVerdict;
using store::UsageRecord;

class StoreCreditsTest : public StoreTest {
 protected:
  int64_t Key(const std::string& name, std::optional<int64_t> credits,
              std::optional<int64_t> parent = std::nullopt, std::vector<store::ModelCap> caps = {}) {
    auto k = store_->CreateClientKey(NewClientKey{.name = name,
                                                  .key_hash = "h-" + name,
                                                  .parent_id = parent,
                                                  .credits_micros = credits,
                                                  .caps = std::move(caps)});
    EXPECT_TRUE(k.ok()) << k.status().ToString();
    return k.ok() ? k->id : 0;
  }
  std::optional<int64_t> Balance(int64_t id) { return store_->GetClientKey(id)->credits_micros; }
  ReserveRequest Req(const std::string& rid, int64_t key, int64_t amount,
                     const std::string& model = "m") {
    return {.request_id = rid,
            .client_key_id = key,
            .model = model,
            .amount_micros = amount,
            .owner = "test",
            .expires_at_ms = clock_.NowMs() + 60'000};
  }
  UsageRecord Usage(const std::string& rid, int64_t key, int64_t cost,
                    const std::string& model = "m") {
    return {.request_id = rid, .client_key_id = key, .model = model, .cost_micros = cost,
            .settle = true};
  }
};

TEST_P(StoreCreditsTest, ReserveSettleGivesBackTheRest) {
  int64_t k = Key("k", 1'000);
  auto r = store_->ReserveCredits(Req("r1", k, 600));
  ASSERT_OK(r);
  EXPECT_EQ(r->verdict, ReserveVerdict::kReserved);
  EXPECT_EQ(r->balance_micros, 400);
  EXPECT_EQ(store_->ReserveCredits(Req("r2", k, 500))->verdict, ReserveVerdict::kNoCredits)
      << "400 left cannot cover 500";
  EXPECT_EQ(Balance(k), 400) << "a refusal changes nothing";
  EXPECT_EQ(*store_->CountReservations(), 1);

  EXPECT_EQ(*store_->InsertUsage({Usage("r1", k, 250)}), 1);
  EXPECT_EQ(Balance(k), 750) << "600 reserved, 250 spent: 350 given back";
  EXPECT_EQ(*store_->CountReservations(), 0);
  EXPECT_EQ(*store_->InsertUsage({Usage("r1", k, 250)}), 0) << "settled once";
  EXPECT_EQ(Balance(k), 750);

  // The actual cost may exceed the estimate: it is billed in full (the stated overspend bound).
  ASSERT_EQ(store_->ReserveCredits(Req("r3", k, 700))->verdict, ReserveVerdict::kReserved);
  EXPECT_EQ(*store_->InsertUsage({Usage("r3", k, 800)}), 1);
  EXPECT_EQ(Balance(k), -50);
  EXPECT_EQ(store_->ReserveCredits(Req("r4", k, 0))->verdict, ReserveVerdict::kNoCredits);

  // A record without settle, or of an unlimited key, moves no credits.
  UsageRecord plain = Usage("p1", k, 5);
  plain.settle = false;
  EXPECT_EQ(*store_->InsertUsage({plain}), 1);
  EXPECT_EQ(Balance(k), -50);
  int64_t unlimited = Key("u", std::nullopt);
  EXPECT_EQ(store_->ReserveCredits(Req("u1", unlimited, 1'000'000))->verdict,
            ReserveVerdict::kReserved);
  EXPECT_EQ(*store_->InsertUsage({Usage("u1", unlimited, 9)}), 1);
  EXPECT_FALSE(Balance(unlimited).has_value());
  EXPECT_EQ(store_->ReserveCredits(Req("x", 9999, 1))->verdict, ReserveVerdict::kUnknownKey);
  ASSERT_EQ(store_->ReserveCredits(Req("u2", unlimited, 1))->verdict, ReserveVerdict::kReserved);
  EXPECT_EQ(store_->ReserveCredits(Req("u2", unlimited, 1)).status().code(),
            StatusCode::kAlreadyExists)
      << "a request id is reserved once";
}

TEST_P(StoreCreditsTest, SubKeysSpendTheParentUnderTheirCaps) {
  int64_t parent = Key("parent", 10'000);
  int64_t sub = Key("sub", std::nullopt, parent,
                    {{.model = "gpt", .cap_micros = 3'000}, {.model = "*", .cap_micros = 500}});
  ASSERT_EQ(store_->ReserveCredits(Req("a", sub, 2'000, "gpt"))->verdict,
            ReserveVerdict::kReserved);
  EXPECT_EQ(Balance(parent), 8'000) << "the parent pays";
  EXPECT_EQ(store_->ReserveCredits(Req("b", sub, 1'500, "gpt"))->verdict,
            ReserveVerdict::kCapReached);
  EXPECT_EQ(store_->ReserveCredits(Req("c", sub, 600, "other"))->verdict,
            ReserveVerdict::kCapReached)
      << "the '*' cap covers models without a cap of their own";
  ASSERT_EQ(store_->ReserveCredits(Req("d", sub, 400, "other"))->verdict,
            ReserveVerdict::kReserved);
  EXPECT_EQ(*store_->InsertUsage({Usage("a", sub, 1'200, "gpt"), Usage("d", sub, 100, "other")}),
            2);
  EXPECT_EQ(Balance(parent), 10'000 - 1'300);
  auto caps = store_->GetClientKey(sub)->caps;
  ASSERT_EQ(caps.size(), 2u);
  EXPECT_EQ(caps[0].spent_micros, 100);    // "*"
  EXPECT_EQ(caps[1].spent_micros, 1'200);  // "gpt"

  // A capped sub-key cannot take a parent's balance below what it covers either.
  ASSERT_OK(store_->UpdateClientKey(parent, {.credits_micros = std::optional<int64_t>(50)}));
  EXPECT_EQ(store_->ReserveCredits(Req("e", sub, 100, "gpt"))->verdict, ReserveVerdict::kNoCredits);
  EXPECT_EQ(store_->GetClientKey(sub)->caps[1].spent_micros, 1'200) << "the cap share was undone";
}

TEST_P(StoreCreditsTest, ExpiredReservationsAreReleasedAndLateSettlementStillBills) {
  int64_t k = Key("k", 1'000);
  ASSERT_EQ(store_->ReserveCredits(Req("dead", k, 300))->verdict, ReserveVerdict::kReserved);
  ASSERT_EQ(store_->ReserveCredits(Req("slow", k, 300))->verdict, ReserveVerdict::kReserved);
  EXPECT_EQ(*store_->ReleaseExpiredReservations(), 0) << "not expired yet";
  clock_.AdvanceMs(60'000);
  EXPECT_EQ(*store_->ReleaseExpiredReservations(), 2);
  EXPECT_EQ(Balance(k), 1'000) << "both amounts given back";
  EXPECT_EQ(*store_->ReleaseExpiredReservations(), 0) << "released once";
  // A request that finished after its reservation was released is still billed, once.
  EXPECT_EQ(*store_->InsertUsage({Usage("slow", k, 120)}), 1);
  EXPECT_EQ(Balance(k), 880);
}

// The writer's batches mix records that settle nothing (written several per statement) with
// billed ones (written one by one, each settling its request). Each record is stored once, each
// new billed one settles exactly once, and records already stored (a batch re-written after an
// unknown outcome) change nothing.
TEST_P(StoreCreditsTest, MixedBatchStoresEachRecordOnceAndSettlesNewBilledOnes) {
  int64_t k = Key("k", 100'000);
  auto plain = [&](const std::string& rid) {
    UsageRecord u = Usage(rid, k, 7);
    u.settle = false;
    return u;
  };
  // Already stored: 10 plain records and one billed (its 500 reserved, 300 spent).
  std::vector<UsageRecord> first;
  for (int i = 0; i < 10; ++i) first.push_back(plain("old-" + std::to_string(i)));
  ASSERT_EQ(store_->ReserveCredits(Req("old-billed", k, 500))->verdict, ReserveVerdict::kReserved);
  first.push_back(Usage("old-billed", k, 300));
  ASSERT_EQ(*store_->InsertUsage(first), 11);
  ASSERT_EQ(Balance(k), 99'700);

  // 150 new plain records (more than two statements' worth), the 10 old ones again, a plain
  // record twice, and billed ones between them: 3 new (reserved) and the old one again.
  std::vector<UsageRecord> batch;
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(store_->ReserveCredits(Req("billed-" + std::to_string(i), k, 1'000))->verdict,
              ReserveVerdict::kReserved);
  }
  ASSERT_EQ(Balance(k), 96'700);
  for (int i = 0; i < 150; ++i) {
    batch.push_back(plain("new-" + std::to_string(i)));
    if (i % 15 == 0) batch.push_back(plain("old-" + std::to_string(i / 15)));
    if (i == 70) batch.push_back(plain("new-3"));
    if (i == 20 || i == 100 || i == 149) {
      batch.push_back(Usage("billed-" + std::to_string(i == 20 ? 0 : i == 100 ? 1 : 2), k, 100));
    }
    if (i == 64) batch.push_back(Usage("old-billed", k, 300));
  }
  UsageRecord detailed = plain("detailed");  // every column, to check the multi-row parameters
  detailed.upstream_key_id = 41;
  detailed.pool_id = 42;
  detailed.model = "gpt-x";
  detailed.input_tokens = 1;
  detailed.output_tokens = 2;
  detailed.cache_read_tokens = 3;
  detailed.cache_write_tokens = 4;
  detailed.cost_micros = 5;
  detailed.latency_ms = 6;
  detailed.ttfb_ms = 7;
  detailed.status = 429;
  detailed.attempts = 2;
  detailed.created_at_ms = 1'234'567;
  batch.insert(batch.begin() + 40, detailed);

  EXPECT_EQ(*store_->InsertUsage(batch), 150 + 3 + 1) << "new plain, new billed, detailed";
  EXPECT_EQ(Balance(k), 100'000 - 300 - 3 * 100) << "each new billed record settled once";
  EXPECT_EQ(*store_->CountReservations(), 0);
  EXPECT_EQ(*store_->InsertUsage(batch), 0) << "the whole batch again stores nothing";
  EXPECT_EQ(Balance(k), 99'400) << "and settles nothing";

  auto stored = store_->ListUsage({.limit = 1'000});
  ASSERT_OK(stored);
  std::map<std::string, int> seen;
  for (const UsageRecord& u : *stored) ++seen[u.request_id];
  EXPECT_EQ(seen.size(), 11u + 154u);
  for (const auto& [rid, n] : seen) EXPECT_EQ(n, 1) << rid;
  for (const UsageRecord& u : *stored) {
    if (u.request_id != "detailed") continue;
    EXPECT_EQ(u.client_key_id, k);
    EXPECT_EQ(u.upstream_key_id, 41);
    EXPECT_EQ(u.pool_id, 42);
    EXPECT_EQ(u.model, "gpt-x");
    EXPECT_EQ(u.input_tokens, 1);
    EXPECT_EQ(u.output_tokens, 2);
    EXPECT_EQ(u.cache_read_tokens, 3);
    EXPECT_EQ(u.cache_write_tokens, 4);
    EXPECT_EQ(u.cost_micros, 5);
    EXPECT_EQ(u.latency_ms, 6);
    EXPECT_EQ(u.ttfb_ms, 7);
    EXPECT_EQ(u.status, 429);
    EXPECT_EQ(u.attempts, 2);
    EXPECT_EQ(u.created_at_ms, 1'234'567);
  }
}

// Threads (each with its own Store, i.e. its own connections, as instances would) race to
// reserve on a balance that covers exactly kCovered of them: exactly kCovered win.
TEST_P(StoreCreditsTest, ConcurrentReservationsNeverOverdraw) {
  constexpr int kThreads = 8, kEach = 10, kCovered = 23, kAmount = 100;
  int64_t k = Key("k", kCovered * kAmount);
  std::vector<std::unique_ptr<store::Store>> stores;
  for (int i = 0; i < kThreads; ++i) {
    auto s = OpenTestStore(location_->url(), &clock_);
    ASSERT_OK(s);
    stores.push_back(std::move(s).value());
  }
  std::atomic<int> reserved{0}, refused{0}, errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        auto r = stores[t]->ReserveCredits(
            Req("t" + std::to_string(t) + "-" + std::to_string(i), k, kAmount));
        if (!r.ok()) {
          errors++;
        } else if (r->verdict == ReserveVerdict::kReserved) {
          reserved++;
        } else {
          refused++;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(reserved.load(), kCovered);
  EXPECT_EQ(refused.load(), kThreads * kEach - kCovered);
  EXPECT_EQ(Balance(k), 0);
  EXPECT_EQ(*store_->CountReservations(), kCovered);
}

TEST_P(StoreCreditsTest, RateLimitsAreCheckedInTheReservation) {
  clock_.SetMs(60'000 * 1000 + 15'000);  // 15 s into a minute
  auto k = store_->CreateClientKey(NewClientKey{.name = "limited", .key_hash = "h-l",
                                                .rpm_limit = 3, .tpm_limit = 100,
                                                .concurrency_limit = 2});
  ASSERT_OK(k);
  EXPECT_EQ(store_->ReserveCredits(Req("a", k->id, 0))->verdict, ReserveVerdict::kReserved);
  EXPECT_EQ(store_->ReserveCredits(Req("b", k->id, 0))->verdict, ReserveVerdict::kReserved);
  auto busy = store_->ReserveCredits(Req("c", k->id, 0));
  EXPECT_EQ(busy->verdict, ReserveVerdict::kRateLimited);
  EXPECT_EQ(busy->limit, "concurrency");
  EXPECT_EQ(busy->retry_after_ms, 1000);
  UsageRecord a = Usage("a", k->id, 0);
  a.input_tokens = 30;
  a.output_tokens = 20;
  ASSERT_EQ(*store_->InsertUsage({a}), 1);  // frees a slot; 50 tokens this minute
  EXPECT_EQ(store_->ReserveCredits(Req("c", k->id, 0))->verdict, ReserveVerdict::kReserved);
  ASSERT_EQ(*store_->InsertUsage({Usage("b", k->id, 0), Usage("c", k->id, 0)}), 2);
  auto rpm = store_->ReserveCredits(Req("d", k->id, 0));
  EXPECT_EQ(rpm->verdict, ReserveVerdict::kRateLimited) << "the 4th request of the minute";
  EXPECT_EQ(rpm->limit, "rpm");
  EXPECT_EQ(rpm->retry_after_ms, 45'000) << "truthful: when the window resets";
  EXPECT_EQ(*store_->CountReservations(), 0) << "a refusal leaves nothing behind";

  clock_.AdvanceMs(45'000);  // the next minute
  ASSERT_EQ(store_->ReserveCredits(Req("e", k->id, 0))->verdict, ReserveVerdict::kReserved);
  UsageRecord e = Usage("e", k->id, 0);
  e.input_tokens = 100;
  ASSERT_EQ(*store_->InsertUsage({e}), 1);
  auto tpm = store_->ReserveCredits(Req("f", k->id, 0));
  EXPECT_EQ(tpm->verdict, ReserveVerdict::kRateLimited);
  EXPECT_EQ(tpm->limit, "tpm");
  EXPECT_EQ(tpm->retry_after_ms, 60'000);
}

TEST_P(StoreCreditsTest, UsageIsSummarizedByKeyModelAndDay) {
  const int64_t day = 20'000;
  auto rec = [&](const std::string& rid, std::optional<int64_t> key, const std::string& model,
                 int64_t at_ms, int64_t cost) {
    return UsageRecord{.request_id = rid, .client_key_id = key, .model = model,
                       .input_tokens = 10, .output_tokens = 5, .cost_micros = cost,
                       .created_at_ms = at_ms};
  };
  const int64_t d0 = day * 86'400'000, d1 = (day + 1) * 86'400'000;
  ASSERT_OK(store_->InsertUsage({rec("1", 1, "a", d0 + 5, 100), rec("2", 1, "a", d0 + 86'399'999, 50),
                                 rec("3", 1, "b", d0, 7), rec("4", 2, "a", d1, 3),
                                 rec("5", std::nullopt, "a", d1 + 1, 1)}));
  auto all = store_->SummarizeUsage({});
  ASSERT_OK(all);
  ASSERT_EQ(all->size(), 4u);
  EXPECT_EQ(all->at(0).day, day);
  EXPECT_EQ(all->at(0).client_key_id, 1);
  EXPECT_EQ(all->at(0).model, "a");
  EXPECT_EQ(all->at(0).requests, 2);
  EXPECT_EQ(all->at(0).input_tokens, 20);
  EXPECT_EQ(all->at(0).output_tokens, 10);
  EXPECT_EQ(all->at(0).cost_micros, 150);
  EXPECT_EQ(all->at(1).model, "b");
  EXPECT_EQ(all->at(2).day, day + 1);
  EXPECT_EQ(all->at(2).client_key_id, 2);
  EXPECT_FALSE(all->at(3).client_key_id.has_value()) << "records without a key come last";
  EXPECT_EQ(store_->SummarizeUsage({.client_key_id = 1})->size(), 2u);
  EXPECT_EQ(store_->SummarizeUsage({.model = "b"})->size(), 1u);
  EXPECT_EQ(store_->SummarizeUsage({.since_ms = d1})->size(), 2u);
  // `until_ms` is exclusive: the record at d1 is out, the one a millisecond before is in.
  auto before = store_->SummarizeUsage({.until_ms = d1});
  ASSERT_OK(before);
  ASSERT_EQ(before->size(), 2u);
  EXPECT_EQ(before->at(0).requests, 2);
  EXPECT_EQ(store_->SummarizeUsage({.since_ms = d0 + 6, .until_ms = d1 + 1})->size(), 2u);
}

KG_INSTANTIATE_STORE_TEST(StoreCreditsTest);

}  // namespace
}  // namespace keygate::testing
