// Conformance tests of the ledger spend (Store::LedgerSpendMicros: each upstream key's running
// usage total, kept by InsertUsage, minus its total at its last activation), on SQLite and a real
// PostgreSQL: totals across batches, re-written and mixed batches, activations, concurrent
// writers, and the migration that introduced it (issue 7).
#include <algorithm>
#include <atomic>
#include <map>
#include <thread>

#include "store/migrations.h"
#include "store/postgres/pg_driver.h"
#include "store/sqlite/sqlite_driver.h"
#include "tests/store/store_test_util.h"

namespace keygate::testing {
namespace {

using store::KeyState;
using store::UsageRecord;

class StoreLedgerTest : public StoreTest {
 protected:
  // The ids of the pool's keys, in import order.
  std::vector<int64_t> KeyIds(int64_t pool) {
    std::vector<int64_t> ids;
    auto keys = store_->ListKeys({.pool_id = pool});
    EXPECT_TRUE(keys.ok()) << keys.status().ToString();
    if (keys.ok()) {
      for (const store::UpstreamKey& k : *keys) ids.push_back(k.id);
    }
    return ids;
  }
  static UsageRecord Use(const std::string& request_id, std::optional<int64_t> key, int64_t cost,
                         int64_t created_at_ms = 1000) {
    return {.request_id = request_id,
            .upstream_key_id = key,
            .model = "m",
            .cost_micros = cost,
            .created_at_ms = created_at_ms};
  }
  int64_t Ledger(int64_t key) {
    auto spent = store_->LedgerSpendMicros(key);
    EXPECT_TRUE(spent.ok()) << spent.status().ToString();
    return spent.ok() ? *spent : -1;
  }
};

// 70 keys: more than one upsert statement's worth (64), so the totals of one batch take two
// statements.
TEST_P(StoreLedgerTest, TotalsPerKeyAcrossBatches) {
  std::vector<int64_t> keys = KeyIds(MakePool("p", 70, 0));
  ASSERT_EQ(keys.size(), 70u);
  EXPECT_EQ(Ledger(keys[0]), 0) << "no usage: zero";
  std::map<int64_t, int64_t> expected;
  int next = 0;
  for (int batch = 0; batch < 3; ++batch) {
    std::vector<UsageRecord> records;
    for (int i = 0; i < 150; ++i) {  // three insert statements' worth per batch
      const int64_t key = keys[(i * 7 + batch) % keys.size()];
      const int64_t cost = (next % 5 == 0) ? 0 : 10 + next;  // some records cost nothing
      records.push_back(Use("r" + std::to_string(next++), key, cost));
      expected[key] += cost;
    }
    records.push_back(Use("r" + std::to_string(next++), std::nullopt, 123'456));  // no key
    auto inserted = store_->InsertUsage(records);
    ASSERT_OK(inserted);
    EXPECT_EQ(*inserted, 151);
  }
  for (int64_t key : keys) EXPECT_EQ(Ledger(key), expected[key]) << "key " << key;
  EXPECT_EQ(store_->LedgerSpendMicros(999'999).status().code(), StatusCode::kNotFound);
}

// One batch whose keys are partly known (totals stored) and partly new, more of them than one
// totals statement takes (64): each key's total is its records' sum, on both databases.
TEST_P(StoreLedgerTest, KnownAndNewKeysInOneBatchAddUp) {
  std::vector<int64_t> keys = KeyIds(MakePool("p", 100, 0));
  ASSERT_EQ(keys.size(), 100u);
  std::map<int64_t, int64_t> expected;
  int next = 0;
  auto batch = [&](size_t from, size_t to) {
    std::vector<UsageRecord> records;
    for (size_t k = from; k < to; ++k) {
      for (int j = 0; j < 2; ++j) {
        const int64_t cost = 100 * static_cast<int64_t>(k) + j + 1;
        records.push_back(Use("r" + std::to_string(next++), keys[k], cost));
        expected[keys[k]] += cost;
      }
    }
    auto inserted = store_->InsertUsage(records);
    ASSERT_OK(inserted);
    EXPECT_EQ(*inserted, static_cast<int64_t>(records.size()));
  };
  batch(0, 40);    // 40 new keys
  batch(20, 100);  // 20 known, 60 new: two statements' worth
  batch(0, 100);   // all known
  for (int64_t key : keys) EXPECT_EQ(Ledger(key), expected[key]) << "key " << key;
}

// A flush re-written after an unknown outcome (same request_ids) is skipped by the insert and
// adds nothing, even when the re-written records say something else.
TEST_P(StoreLedgerTest, RetriedBatchAddsNothing) {
  std::vector<int64_t> keys = KeyIds(MakePool("p", 2, 0));
  std::vector<UsageRecord> batch = {Use("a", keys[0], 100), Use("b", keys[1], 20),
                                    Use("c", keys[0], 3)};
  ASSERT_EQ(*store_->InsertUsage(batch), 3);
  EXPECT_EQ(Ledger(keys[0]), 103);
  EXPECT_EQ(Ledger(keys[1]), 20);
  ASSERT_EQ(*store_->InsertUsage(batch), 0) << "every record is stored already";
  batch[0].cost_micros = 5'000;
  ASSERT_EQ(*store_->InsertUsage(batch), 0);
  EXPECT_EQ(Ledger(keys[0]), 103);
  EXPECT_EQ(Ledger(keys[1]), 20);
}

// A batch of stored and new records, some of them settling credits: only the new ones' costs
// count, and only the new billed record settles.
TEST_P(StoreLedgerTest, MixedBatchAddsOnlyTheNewRecords) {
  std::vector<int64_t> keys = KeyIds(MakePool("p", 2, 0));
  auto client = store_->CreateClientKey({.name = "c", .key_hash = "h-c", .credits_micros = 1'000});
  ASSERT_OK(client);
  auto billed = [&](const std::string& rid, int64_t key, int64_t cost) {
    UsageRecord u = Use(rid, key, cost);
    u.client_key_id = client->id;
    u.settle = true;
    return u;
  };
  ASSERT_EQ(*store_->InsertUsage({Use("a", keys[0], 100), billed("s1", keys[0], 50)}), 2);
  EXPECT_EQ(Ledger(keys[0]), 150);
  EXPECT_EQ(store_->GetClientKey(client->id)->credits_micros, 950);

  std::vector<UsageRecord> mixed = {Use("a", keys[0], 7'777),     // stored: skipped
                                    billed("s1", keys[0], 7'777),  // stored: neither counts nor settles
                                    Use("b", keys[1], 30),         // new
                                    billed("s2", keys[1], 20),     // new, settles
                                    Use("c", keys[0], 1)};         // new
  auto inserted = store_->InsertUsage(mixed);
  ASSERT_OK(inserted);
  EXPECT_EQ(*inserted, 3);
  EXPECT_EQ(Ledger(keys[0]), 151);
  EXPECT_EQ(Ledger(keys[1]), 50);
  EXPECT_EQ(store_->GetClientKey(client->id)->credits_micros, 930) << "s2 settled, s1 not again";
}

// Activation starts the ledger over: a backup promoted by Rotate, a key restored (from retired,
// exhausted or cooling). Returning from a cooldown on its own is no activation. A record counts
// by when it was written, not by its created_at.
TEST_P(StoreLedgerTest, RotationAndRestoreStartTheLedgerOver) {
  int64_t pool = MakePool("p", 1, 1);
  std::vector<int64_t> keys = KeyIds(pool);
  const int64_t a = keys[0], b = keys[1];  // active, backup
  ASSERT_EQ(*store_->InsertUsage({Use("a1", a, 400), Use("b1", b, 300)}), 2);
  EXPECT_EQ(Ledger(a), 400);
  EXPECT_EQ(Ledger(b), 300) << "never activated: all of its usage";

  clock_.AdvanceMs(10'000);
  auto rotated = store_->Rotate(pool, a, "test");
  ASSERT_OK(rotated);
  ASSERT_TRUE(std::holds_alternative<store::Rotated>(*rotated));
  ASSERT_EQ(std::get<store::Rotated>(*rotated).new_key_id, b);
  EXPECT_EQ(Ledger(b), 0) << "promoted: starts over";
  EXPECT_EQ(Ledger(a), 400) << "retiring changes nothing";
  // Written after the promotion though created before it (a batch that was still queued).
  ASSERT_EQ(*store_->InsertUsage({Use("b2", b, 50, clock_.NowMs() - 5'000)}), 1);
  EXPECT_EQ(Ledger(b), 50);

  ASSERT_TRUE(*store_->Restore(a, KeyState::kActive));
  EXPECT_EQ(Ledger(a), 0) << "restored: starts over";
  ASSERT_EQ(*store_->InsertUsage({Use("a2", a, 20)}), 1);
  EXPECT_EQ(Ledger(a), 20);

  ASSERT_TRUE(*store_->CoolDown(b, clock_.NowMs() + 1'000, "429"));
  clock_.AdvanceMs(1'000);
  ASSERT_EQ(*store_->ReactivateCooled(), 1);
  EXPECT_EQ(Ledger(b), 50) << "back from a cooldown: the same activation";
  ASSERT_TRUE(*store_->CoolDown(b, clock_.NowMs() + 60'000, "429"));
  ASSERT_TRUE(*store_->Restore(b, KeyState::kActive));
  EXPECT_EQ(Ledger(b), 0) << "restored from cooling: starts over";

  ASSERT_TRUE(*store_->MarkExhausted(a, "budget"));
  ASSERT_TRUE(*store_->Restore(a, KeyState::kBackup));
  EXPECT_EQ(Ledger(a), 0) << "restored as a backup: starts over too";
  ASSERT_EQ(*store_->InsertUsage({Use("a3", a, 5), Use("b3", b, 6)}), 2);
  EXPECT_EQ(Ledger(a), 5);
  EXPECT_EQ(Ledger(b), 6);
}

// Several instances (each a Store of its own) write overlapping batches at once, as writers that
// re-write after an unknown outcome might: each record is inserted once, and counted once.
TEST_P(StoreLedgerTest, ConcurrentWritersCountEachRecordOnce) {
  constexpr int kInstances = 3;
  constexpr int kRecords = 400;
  constexpr int kBatch = 40;
  std::vector<int64_t> keys = KeyIds(MakePool("p", 8, 0));
  std::vector<std::unique_ptr<store::Store>> stores;
  for (int i = 0; i < kInstances; ++i) {
    auto s = OpenTestStore(location_->url(), &clock_);
    ASSERT_OK(s);
    stores.push_back(std::move(s).value());
  }
  auto record = [&](int i) {
    char id[16];
    std::snprintf(id, sizeof(id), "r%04d", i);  // request_id order = i order
    return Use(id, i % 9 == 0 ? std::nullopt : std::optional<int64_t>(keys[i % keys.size()]),
               i + 1);
  };
  std::map<int64_t, int64_t> expected;
  for (int i = 0; i < kRecords; ++i) {
    UsageRecord u = record(i);
    if (u.upstream_key_id) expected[*u.upstream_key_id] += u.cost_micros;
  }
  std::atomic<int64_t> inserted{0};
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kInstances; ++t) {
    threads.emplace_back([&, t] {
      // Each instance starts elsewhere and goes round once. A batch's request_ids ascend (all
      // writers meet the same records in one order, as one writer's batches do in time).
      for (int start = t * 17; start < t * 17 + kRecords; start += kBatch) {
        std::vector<int> ids;
        for (int i = start; i < start + kBatch; ++i) ids.push_back(i % kRecords);
        std::sort(ids.begin(), ids.end());
        std::vector<UsageRecord> batch;
        for (int i : ids) batch.push_back(record(i));
        auto n = stores[t]->InsertUsage(batch);
        if (n.ok()) {
          inserted += *n;
        } else {
          ++errors;
          ADD_FAILURE() << n.status().ToString();
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(inserted.load(), kRecords);
  for (int64_t key : keys) EXPECT_EQ(Ledger(key), expected[key]) << "key " << key;
}

// A store at schema version 5 (the usage index, no totals) migrated to the latest gives each key
// the ledger answer the old sum gave: the cost of its records created at or after its activation
// (its creation when never activated).
TEST_P(StoreLedgerTest, MigrationFromVersion5KeepsTheLedgerAnswer) {
  auto fresh = StoreLocation::Create(GetParam());  // the fixture's store is migrated already
  ASSERT_OK(fresh);
  const std::string url = (*fresh)->url();
  std::unique_ptr<store::sql::Driver> driver =
      store::IsPostgresUrl(url) ? store::postgres::NewPostgresDriver(url)
                                : store::sqlite::NewSqliteDriver(store::SqlitePath(url), 10'000,
                                                                 /*read_only=*/false);
  auto conn_or = driver->Connect();
  ASSERT_OK(conn_or);
  store::sql::Connection& conn = **conn_or;
  auto v5 = store::ApplyMigrationsUpToForTest(*driver, conn, clock_, 5);
  ASSERT_OK(v5);
  ASSERT_EQ(*v5, 5);

  auto exec = [&](const std::string& sql, std::vector<store::sql::Value> params) {
    auto r = conn.Exec(sql, params);
    EXPECT_TRUE(r.ok()) << sql << ": " << r.status().ToString();
    return r.ok() ? std::move(r).value() : store::sql::Result{};
  };
  auto pool = exec("INSERT INTO pools (name, provider, created_at, updated_at)"
                   " VALUES ('p', 'openai', 0, 0) RETURNING id",
                   {});
  ASSERT_EQ(pool.rows.size(), 1u);
  const int64_t pool_id = pool.rows[0].Int(0);
  auto key = [&](const std::string& name, const std::string& state, int64_t created_at,
                 store::sql::Value activated_at) {
    auto r = exec(
        "INSERT INTO upstream_keys (pool_id, secret_sealed, fingerprint, masked, state,"
        " created_at, updated_at, activated_at) VALUES (?, 'sealed', ?, 'sk-x', ?, ?, ?, ?)"
        " RETURNING id",
        {pool_id, "fp-" + name, state, created_at, created_at, activated_at});
    return r.rows.empty() ? int64_t{0} : r.rows[0].Int(0);
  };
  const int64_t activated = key("activated", "active", 1000, int64_t{5000});
  const int64_t never = key("never", "backup", 2000, store::sql::Null());
  const int64_t unused = key("unused", "active", 1000, int64_t{1000});
  const int64_t retired = key("retired", "retired", 1000, int64_t{3000});
  int n = 0;
  auto use = [&](store::sql::Value key_id, int64_t cost, int64_t created_at) {
    exec("INSERT INTO usage_records (request_id, upstream_key_id, model, cost_micros,"
         " created_at) VALUES (?, ?, 'm', ?, ?)",
         {"old-" + std::to_string(n++), key_id, cost, created_at});
  };
  use(activated, 100, 4000);  // before the activation
  use(activated, 200, 4999);
  use(activated, 400, 5000);  // at it: counts
  use(activated, 800, 9000);
  use(never, 10, 1500);  // before the key was created (the old sum left it out too)
  use(never, 20, 2000);
  use(never, 40, 7000);
  use(retired, 1, 2000);
  use(retired, 2, 3000);
  use(retired, 4, 3500);
  use(store::sql::Null(), 99'999, 6000);  // no key

  // The old answer, as SumUsageCostMicros(key, activated_at or created_at) computed it.
  std::map<int64_t, int64_t> before;
  for (int64_t id : {activated, never, unused, retired}) {
    auto r = exec("SELECT COALESCE(SUM(u.cost_micros), 0) FROM usage_records u, upstream_keys k"
                  " WHERE k.id = ? AND u.upstream_key_id = k.id"
                  " AND u.created_at >= COALESCE(k.activated_at, k.created_at)",
                  {id});
    ASSERT_EQ(r.rows.size(), 1u);
    before[id] = r.rows[0].Int(0);
  }
  EXPECT_EQ(before[activated], 1200);
  EXPECT_EQ(before[never], 60);
  EXPECT_EQ(before[unused], 0);
  EXPECT_EQ(before[retired], 6);

  auto migrated = OpenTestStore(url, &clock_);
  ASSERT_OK(migrated);
  store::Store& s = **migrated;
  EXPECT_EQ(*s.SchemaVersion(), store::LatestSchemaVersion());
  for (const auto& [id, sum] : before) EXPECT_EQ(*s.LedgerSpendMicros(id), sum) << "key " << id;

  // The index is gone, and new usage adds to the migrated totals.
  auto index = exec(store::IsPostgresUrl(url)
                        ? "SELECT COUNT(*) FROM pg_indexes WHERE indexname = ?"
                        : "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = ?",
                    {std::string("usage_records_upstream_key")});
  ASSERT_EQ(index.rows.size(), 1u);
  EXPECT_EQ(index.rows[0].Int(0), 0);
  ASSERT_EQ(*s.InsertUsage({Use("new-1", activated, 5), Use("new-2", never, 7)}), 2);
  EXPECT_EQ(*s.LedgerSpendMicros(activated), 1205);
  EXPECT_EQ(*s.LedgerSpendMicros(never), 67);
}

KG_INSTANTIATE_STORE_TEST(StoreLedgerTest);

}  // namespace
}  // namespace keygate::testing
