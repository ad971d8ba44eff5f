// The store conformance suite: one set of tests, run against SQLite and a real PostgreSQL.
#include <set>
#include <variant>

#include "common/strings.h"
#include "tests/store/store_test_util.h"

namespace keygate::testing {
namespace {

using store::AlreadyRotated;
using store::KeyState;
using store::NewKey;
using store::NoBackup;
using store::Rotated;

TEST_P(StoreTest, SchemaIsMigratedToLatest) {
  auto v = store_->SchemaVersion();
  ASSERT_OK(v);
  EXPECT_GE(*v, 1);
}

TEST_P(StoreTest, CreateAndListPools) {
  auto a = store_->CreatePool("factory", "openai");
  ASSERT_OK(a);
  auto dup = store_->CreatePool("factory", "openai");
  EXPECT_EQ(dup.status().code(), StatusCode::kAlreadyExists);
  auto b = store_->CreatePool("openhands", "litellm", R"({"budget":10})");
  ASSERT_OK(b);
  auto pools = store_->ListPools();
  ASSERT_OK(pools);
  ASSERT_EQ(pools->size(), 2u);
  EXPECT_EQ((*pools)[0].name, "factory");
  EXPECT_EQ((*pools)[1].settings_json, R"({"budget":10})");
  EXPECT_EQ(store_->GetPool("nope").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->CreatePool("", "openai").status().code(), StatusCode::kInvalidArgument);
}

TEST_P(StoreTest, ImportDetectsDuplicatesAndSealsSecrets) {
  auto pool = store_->CreatePool("p", "openai");
  ASSERT_OK(pool);
  std::vector<NewKey> keys(3);
  keys[0].secret = "sk-aaaaaaaaaaaaaaaaaaaa1111";
  keys[1].secret = "sk-bbbbbbbbbbbbbbbbbbbb2222";
  keys[1].state = KeyState::kBackup;
  keys[2].secret = "sk-aaaaaaaaaaaaaaaaaaaa1111";  // duplicate within the batch
  auto r = store_->ImportKeys(pool->id, keys);
  ASSERT_OK(r);
  EXPECT_EQ(r->inserted, 2);
  EXPECT_EQ(r->duplicates, 1);
  EXPECT_EQ(r->key_ids[0], r->key_ids[2]);
  EXPECT_EQ(r->duplicate, (std::vector<bool>{false, false, true}));

  // Importing again inserts nothing.
  auto again = store_->ImportKeys(pool->id, keys);
  ASSERT_OK(again);
  EXPECT_EQ(again->inserted, 0);
  EXPECT_EQ(again->duplicates, 3);

  auto listed = store_->ListKeys({.pool_id = pool->id});
  ASSERT_OK(listed);
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_TRUE((*listed)[0].secret.empty()) << "secrets only when asked";
  EXPECT_EQ((*listed)[0].masked, MaskSecret(keys[0].secret));
  auto with = store_->GetKey(r->key_ids[1], true);
  ASSERT_OK(with);
  EXPECT_EQ(with->secret, keys[1].secret);
  EXPECT_EQ(with->state, KeyState::kBackup);

  auto counts = store_->CountKeys(pool->id);
  ASSERT_OK(counts);
  EXPECT_EQ(counts->active, 1);
  EXPECT_EQ(counts->backup, 1);
}

TEST_P(StoreTest, ImportIsAllOrNothing) {
  auto pool = store_->CreatePool("p", "openai");
  ASSERT_OK(pool);
  std::vector<NewKey> keys(2);
  keys[0].secret = "sk-good-key-0123456789";
  keys[1].secret = "sk-bad key\n";
  EXPECT_EQ(store_->ImportKeys(pool->id, keys).status().code(), StatusCode::kInvalidArgument);
  keys[1].secret = "sk-other-key-0123456789";
  keys[1].proxy_id = 999;  // unknown proxy: fails inside the transaction, after key 0 was written
  EXPECT_EQ(store_->ImportKeys(pool->id, keys).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->CountKeys(pool->id)->total(), 0);
  EXPECT_EQ(store_->ImportKeys(424242, {}).status().code(), StatusCode::kNotFound);
}

TEST_P(StoreTest, RotateActivatesOneBackupAndMovesBindings) {
  int64_t pool = MakePool("p", 2, 2);
  auto keys = store_->ListKeys({.pool_id = pool});
  ASSERT_OK(keys);
  int64_t failed = (*keys)[0].id;
  bool created = false;
  auto proxy = store_->AddProxy(*ParseProxyUrl("socks5://user:pw@127.0.0.1:1080"), &created);
  ASSERT_OK(proxy);
  EXPECT_TRUE(created);
  ASSERT_OK(store_->Bind(failed, proxy->id, 5));
  int64_t version_before = store_->GetPool("p")->version;

  auto out = store_->Rotate(pool, failed, "upstream_401", "test");
  ASSERT_OK(out);
  ASSERT_TRUE(std::holds_alternative<Rotated>(*out));
  int64_t new_id = std::get<Rotated>(*out).new_key_id;
  EXPECT_EQ(new_id, (*keys)[2].id) << "backups are claimed in priority, then id, order";

  auto old_key = store_->GetKey(failed, false);
  EXPECT_EQ(old_key->state, KeyState::kRetired);
  EXPECT_EQ(old_key->replaced_by, new_id);
  auto new_key = store_->GetKey(new_id, false);
  EXPECT_EQ(new_key->state, KeyState::kActive);
  EXPECT_EQ(new_key->replaces, failed);

  auto bindings = store_->ListBindings(pool);
  ASSERT_OK(bindings);
  ASSERT_EQ(bindings->size(), 1u);
  EXPECT_EQ((*bindings)[0].key_id, new_id);
  EXPECT_EQ((*bindings)[0].priority, 5);

  auto counts = store_->CountKeys(pool);
  EXPECT_EQ(counts->active, 2);
  EXPECT_EQ(counts->backup, 1);
  EXPECT_EQ(counts->retired, 1);
  EXPECT_GT(store_->GetPool("p")->version, version_before);

  // The same failed key again: AlreadyRotated, nothing else changes.
  auto again = store_->Rotate(pool, failed, "upstream_401", "test");
  ASSERT_OK(again);
  EXPECT_TRUE(std::holds_alternative<AlreadyRotated>(*again));
  EXPECT_EQ(store_->CountKeys(pool)->backup, 1);
  auto history = store_->ListRotations({.pool_id = pool});
  ASSERT_OK(history);
  ASSERT_EQ(history->size(), 1u);
  EXPECT_EQ((*history)[0].failed_key_id, failed);
  EXPECT_EQ((*history)[0].new_key_id, new_id);
  EXPECT_EQ((*history)[0].reason, "upstream_401");
  EXPECT_EQ((*history)[0].outcome, "rotated");
}

TEST_P(StoreTest, RotateWithoutBackupExhaustsTheKey) {
  int64_t pool = MakePool("p", 1, 0);
  int64_t failed = store_->ListKeys({.pool_id = pool})->at(0).id;
  auto out = store_->Rotate(pool, failed, "budget_exceeded");
  ASSERT_OK(out);
  ASSERT_TRUE(std::holds_alternative<NoBackup>(*out));
  EXPECT_EQ(store_->GetKey(failed, false)->state, KeyState::kExhausted);
  auto again = store_->Rotate(pool, failed, "budget_exceeded");
  ASSERT_OK(again);
  EXPECT_TRUE(std::holds_alternative<AlreadyRotated>(*again));
  EXPECT_EQ(store_->ListRotations({.pool_id = pool})->size(), 1u);
}

TEST_P(StoreTest, RotateRejectsUnknownKeyAndWrongPool) {
  int64_t a = MakePool("a", 1, 1);
  int64_t b = MakePool("b", 1, 1);
  int64_t key_a = store_->ListKeys({.pool_id = a})->at(0).id;
  EXPECT_EQ(store_->Rotate(a, 999999, "x").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->Rotate(b, key_a, "x").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->CountKeys(a)->active, 1);
}

TEST_P(StoreTest, CoolDownKeepsTheLaterDeadline) {
  int64_t pool = MakePool("p", 1, 0);
  int64_t key = store_->ListKeys({.pool_id = pool})->at(0).id;
  int64_t now = clock_.NowMs();
  ASSERT_TRUE(*store_->CoolDown(key, now + 60'000, "429"));
  ASSERT_TRUE(*store_->CoolDown(key, now + 10'000, "429"));
  auto k = store_->GetKey(key, false);
  EXPECT_EQ(k->state, KeyState::kCooling);
  EXPECT_EQ(k->cooldown_until_ms, now + 60'000);
  ASSERT_TRUE(*store_->CoolDown(key, now + 90'000, "429"));
  EXPECT_EQ(store_->GetKey(key, false)->cooldown_until_ms, now + 90'000);

  EXPECT_EQ(*store_->ReactivateCooled(), 0);
  clock_.AdvanceMs(90'000);
  EXPECT_EQ(*store_->ReactivateCooled(), 1);
  EXPECT_EQ(store_->GetKey(key, false)->state, KeyState::kActive);
}

TEST_P(StoreTest, CoolingKeyCanBeRotated) {
  int64_t pool = MakePool("p", 1, 1);
  int64_t key = store_->ListKeys({.pool_id = pool})->at(0).id;
  ASSERT_TRUE(*store_->CoolDown(key, clock_.NowMs() + 1000, "429"));
  auto out = store_->Rotate(pool, key, "upstream_401");
  ASSERT_OK(out);
  EXPECT_TRUE(std::holds_alternative<Rotated>(*out));
}

TEST_P(StoreTest, ExhaustAndRestore) {
  int64_t pool = MakePool("p", 1, 0);
  int64_t key = store_->ListKeys({.pool_id = pool})->at(0).id;
  EXPECT_TRUE(*store_->MarkExhausted(key, "quota"));
  EXPECT_FALSE(*store_->MarkExhausted(key, "quota"));
  EXPECT_EQ(store_->GetKey(key, false)->state, KeyState::kExhausted);
  EXPECT_TRUE(*store_->Restore(key, KeyState::kBackup));
  EXPECT_EQ(store_->GetKey(key, false)->state, KeyState::kBackup);
  EXPECT_FALSE(*store_->Restore(key, KeyState::kActive)) << "a backup is not restorable";
  EXPECT_EQ(store_->Restore(key, KeyState::kRetired).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->Restore(777777, KeyState::kActive).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->MarkExhausted(777777, "x").status().code(), StatusCode::kNotFound);
}

TEST_P(StoreTest, ProxiesAndBindings) {
  bool created = false;
  auto p = store_->AddProxy(*ParseProxyUrl("http://alice:s3cret@10.0.0.1:3128"), &created);
  ASSERT_OK(p);
  EXPECT_TRUE(created);
  EXPECT_TRUE(p->has_password);
  EXPECT_TRUE(p->url.password.empty());
  EXPECT_EQ(p->url.DisplayUrl(), "http://alice@10.0.0.1:3128");
  auto same = store_->AddProxy(*ParseProxyUrl("http://alice:n3w@10.0.0.1:3128"), &created);
  ASSERT_OK(same);
  EXPECT_FALSE(created);
  EXPECT_EQ(same->id, p->id);
  auto full = store_->GetProxy(p->id, true);
  ASSERT_OK(full);
  EXPECT_EQ(full->url.password, "n3w");

  int64_t pool = MakePool("p", 1, 0);
  int64_t key = store_->ListKeys({.pool_id = pool})->at(0).id;
  EXPECT_TRUE(*store_->Bind(key, p->id, 1));
  EXPECT_FALSE(*store_->Bind(key, p->id, 7)) << "re-binding updates the priority";
  EXPECT_EQ(store_->ListBindings(pool)->at(0).priority, 7);
  EXPECT_EQ(store_->Bind(key, 4242, 0).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->Bind(4242, p->id, 0).status().code(), StatusCode::kNotFound);

  ASSERT_OK(store_->SetProxyHealth(p->id, false, "connect refused"));
  EXPECT_FALSE(store_->GetProxy(p->id, false)->healthy);
  // Observations that race settle on the latest, whatever order they are written in.
  int64_t t = clock_.NowMs() + 1000;
  ASSERT_OK(store_->SetProxyHealth(p->id, true, "", t + 10));
  ASSERT_OK(store_->SetProxyHealth(p->id, false, "late report of an old failure", t));
  EXPECT_TRUE(store_->GetProxy(p->id, false)->healthy);
  EXPECT_EQ(store_->SetProxyHealth(4242, true, "").code(), StatusCode::kNotFound);
  EXPECT_TRUE(*store_->Unbind(key, p->id));
  EXPECT_FALSE(*store_->Unbind(key, p->id));
  EXPECT_TRUE(*store_->DeleteProxy(p->id));
  EXPECT_FALSE(*store_->DeleteProxy(p->id));
}

TEST_P(StoreTest, ImportWithProxyBinds) {
  bool created;
  auto p = store_->AddProxy(*ParseProxyUrl("socks5h://127.0.0.1:9050"), &created);
  ASSERT_OK(p);
  auto pool = store_->CreatePool("p", "openai");
  NewKey k;
  k.secret = "sk-bound-key-0123456789";
  k.proxy_id = p->id;
  auto r = store_->ImportKeys(pool->id, {k});
  ASSERT_OK(r);
  auto b = store_->ListBindings(pool->id);
  ASSERT_EQ(b->size(), 1u);
  EXPECT_EQ(b->at(0).key_id, r->key_ids[0]);
  EXPECT_EQ(b->at(0).proxy_id, p->id);
}

TEST_P(StoreTest, DeleteKeyRemovesBindings) {
  int64_t pool = MakePool("p", 1, 0);
  int64_t key = store_->ListKeys({.pool_id = pool})->at(0).id;
  bool created;
  auto p = store_->AddProxy(*ParseProxyUrl("http://127.0.0.1:3128"), &created);
  ASSERT_OK(store_->Bind(key, p->id, 0));
  EXPECT_TRUE(*store_->DeleteKey(key));
  EXPECT_FALSE(*store_->DeleteKey(key));
  EXPECT_TRUE(store_->ListBindings(pool)->empty());
}

TEST_P(StoreTest, SpendUsageAndClientKeys) {
  int64_t pool = MakePool("p", 1, 0);
  int64_t key = store_->ListKeys({.pool_id = pool})->at(0).id;
  ASSERT_OK(store_->UpdateSpend(key, 9'500'000, 10'000'000));
  auto k = store_->GetKey(key, false);
  EXPECT_EQ(k->spend_micros, 9'500'000);
  EXPECT_EQ(k->budget_micros, 10'000'000);
  ASSERT_OK(store_->UpdateSpend(key, 9'600'000, std::nullopt));
  EXPECT_EQ(store_->GetKey(key, false)->budget_micros, 10'000'000) << "unknown budget kept";

  store::SpendRecord s{.key_id = key, .pool_id = pool, .spend_micros = 9'600'000, .action = "none"};
  ASSERT_OK(store_->AddSpendRecord(s));
  auto spends = store_->ListSpendRecords({.key_id = key});
  ASSERT_OK(spends);
  ASSERT_EQ(spends->size(), 1u);
  EXPECT_FALSE(spends->at(0).new_key_id.has_value());

  std::vector<store::UsageRecord> batch(3);
  for (int i = 0; i < 3; ++i) {
    batch[i].request_id = "req-" + std::to_string(i);
    batch[i].model = "gpt-4o";
    batch[i].upstream_key_id = key;
    batch[i].input_tokens = 10 * i;
  }
  EXPECT_EQ(*store_->InsertUsage(batch), 3);
  EXPECT_EQ(*store_->InsertUsage(batch), 0) << "a re-written batch never duplicates";
  EXPECT_EQ(store_->ListUsage({.key_id = key})->size(), 3u);

  auto ck = store_->CreateClientKey("alice", "hash-1", "kg-…abcd");
  ASSERT_OK(ck);
  EXPECT_EQ(store_->CreateClientKey("bob", "hash-1", "x").status().code(),
            StatusCode::kAlreadyExists);
  EXPECT_EQ(store_->ListClientKeys()->size(), 1u);
}

TEST_P(StoreTest, HistoryPaging) {
  int64_t pool = MakePool("p", 5, 5);
  auto keys = store_->ListKeys({.pool_id = pool, .state = KeyState::kActive});
  for (const auto& k : *keys) ASSERT_OK(store_->Rotate(pool, k.id, "r"));
  auto page1 = store_->ListRotations({.pool_id = pool, .limit = 3});
  ASSERT_EQ(page1->size(), 3u);
  auto page2 = store_->ListRotations({.pool_id = pool, .before_id = page1->back().id, .limit = 3});
  ASSERT_EQ(page2->size(), 2u);
  EXPECT_LT(page2->front().id, page1->back().id);
  auto by_key = store_->ListRotations({.key_id = keys->at(0).id});
  EXPECT_EQ(by_key->size(), 1u);
}

TEST_P(StoreTest, WrongMasterKeyIsRejected) {
  store::StoreOptions options;
  options.url = location_->url();
  MasterKey other = TestMasterKey();
  other[0] ^= 0xFF;
  options.secrets = std::make_shared<const SecretBox>(other);
  auto s = store::OpenStore(options);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.status().message().find("master key"), std::string::npos);
}

TEST_P(StoreTest, ReopenKeepsEverything) {
  int64_t pool = MakePool("p", 2, 1);
  store_.reset();
  auto s = OpenTestStore(location_->url(), &clock_);
  ASSERT_OK(s);
  EXPECT_EQ((*s)->CountKeys(pool)->total(), 3);
}

KG_INSTANTIATE_STORE_TEST(StoreTest);

}  // namespace
}  // namespace keygate::testing
