// Conformance tests of admin keys (hash only) and the audit log, on SQLite and PostgreSQL.
#include "tests/store/store_test_util.h"

namespace keygate::testing {
namespace {

class StoreAdminTest : public StoreTest {};

TEST_P(StoreAdminTest, AdminKeysCreateListDelete) {
  auto a = store_->CreateAdminKey("alice", "hash-a", "kga-…aaaa");
  ASSERT_OK(a);
  EXPECT_GT(a->id, 0);
  EXPECT_EQ(a->name, "alice");
  ASSERT_OK(store_->CreateAdminKey("bob", "hash-b", "kga-…bbbb"));
  auto dup_name = store_->CreateAdminKey("alice", "hash-c", "kga-…cccc");
  ASSERT_FALSE(dup_name.ok());
  EXPECT_EQ(dup_name.status().code(), StatusCode::kAlreadyExists);
  auto dup_hash = store_->CreateAdminKey("carol", "hash-b", "kga-…bbbb");
  ASSERT_FALSE(dup_hash.ok());
  EXPECT_EQ(dup_hash.status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(store_->CreateAdminKey(" ", "hash-d", "x").status().code(),
            StatusCode::kInvalidArgument);

  auto keys = store_->ListAdminKeys();
  ASSERT_OK(keys);
  ASSERT_EQ(keys->size(), 2u);
  EXPECT_EQ((*keys)[0].name, "alice");
  EXPECT_EQ((*keys)[0].key_hash, "hash-a");
  EXPECT_EQ((*keys)[1].hint, "kga-…bbbb");

  EXPECT_TRUE(*store_->DeleteAdminKey("alice"));
  EXPECT_FALSE(*store_->DeleteAdminKey("alice"));
  ASSERT_EQ(store_->ListAdminKeys()->size(), 1u);
}

TEST_P(StoreAdminTest, AuditRecordsPageNewestFirst) {
  clock_.SetMs(5000);
  for (int i = 0; i < 5; ++i) {
    store::AuditRecord a;
    a.admin = "alice";
    a.action = "keys.cooldown";
    a.target = "key " + std::to_string(i);
    a.result = i % 2 ? "ok" : "409: key is exhausted";
    ASSERT_OK(store_->AddAuditRecord(a));
  }
  auto first = store_->ListAuditRecords({.limit = 2});
  ASSERT_OK(first);
  ASSERT_EQ(first->size(), 2u);
  EXPECT_EQ((*first)[0].target, "key 4");
  EXPECT_EQ((*first)[0].result, "409: key is exhausted");
  EXPECT_EQ((*first)[0].created_at_ms, 5000);
  EXPECT_EQ((*first)[1].target, "key 3");
  auto rest = store_->ListAuditRecords({.before_id = (*first)[1].id, .limit = 10});
  ASSERT_OK(rest);
  ASSERT_EQ(rest->size(), 3u);
  EXPECT_EQ(rest->back().target, "key 0");
  EXPECT_EQ(rest->back().admin, "alice");
}

KG_INSTANTIATE_STORE_TEST(StoreAdminTest);

}  // namespace
}  // namespace keygate::testing
