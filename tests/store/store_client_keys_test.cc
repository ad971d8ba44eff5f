// Conformance tests of client keys (credits, limits, sub-keys with caps), on SQLite and a real
// PostgreSQL like the rest of the suite.
#include "tests/store/store_test_util.h"

namespace keygate::testing {
namespace {

using store::ClientKeyUpdate;
using store::ModelCap;
using store::NewClientKey;

class StoreClientKeysTest : public StoreTest {};

TEST_P(StoreClientKeysTest, CreateWithEverythingAndReadBack) {
  clock_.SetMs(1'000'000);
  NewClientKey nk{.name = "acme",
                  .key_hash = "h-acme",
                  .hint = "kg-…acme",
                  .credits_micros = 5'000'000,
                  .allowed_models = {"gpt-4o", "claude-sonnet"},
                  .rpm_limit = 60,
                  .tpm_limit = 100'000,
                  .concurrency_limit = 4,
                  .expires_at_ms = 2'000'000};
  auto k = store_->CreateClientKey(nk);
  ASSERT_OK(k);
  EXPECT_EQ(k->name, "acme");
  EXPECT_EQ(k->hint, "kg-…acme");
  EXPECT_TRUE(k->enabled);
  EXPECT_EQ(k->credits_micros, 5'000'000);
  EXPECT_EQ(k->allowed_models, (std::vector<std::string>{"gpt-4o", "claude-sonnet"}));
  EXPECT_EQ(k->rpm_limit, 60);
  EXPECT_EQ(k->tpm_limit, 100'000);
  EXPECT_EQ(k->concurrency_limit, 4);
  EXPECT_EQ(k->expires_at_ms, 2'000'000);
  EXPECT_FALSE(k->parent_id.has_value());
  EXPECT_EQ(k->created_at_ms, 1'000'000);

  // The plain form (the hash only) is an unlimited key without limits.
  auto plain = store_->CreateClientKey("plain", "h-plain", "kg-…lain");
  ASSERT_OK(plain);
  EXPECT_FALSE(plain->credits_micros.has_value());
  EXPECT_TRUE(plain->allowed_models.empty());
  EXPECT_FALSE(plain->rpm_limit || plain->tpm_limit || plain->concurrency_limit ||
               plain->expires_at_ms);

  auto all = store_->ListClientKeys();
  ASSERT_OK(all);
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ(all->at(0).id, k->id);
  EXPECT_EQ(all->at(0).credits_micros, 5'000'000);
  EXPECT_EQ(store_->GetClientKey(k->id)->tpm_limit, 100'000);
  EXPECT_EQ(store_->GetClientKey(9999).status().code(), StatusCode::kNotFound);
}

TEST_P(StoreClientKeysTest, InvalidInputIsRejected) {
  EXPECT_EQ(store_->CreateClientKey(NewClientKey{.name = " ", .key_hash = "h"}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->CreateClientKey(NewClientKey{.name = "a", .key_hash = "h",
                                                 .credits_micros = -1})
                .status()
                .code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->CreateClientKey(NewClientKey{.name = "a", .key_hash = "h",
                                                 .allowed_models = {"a,b"}})
                .status()
                .code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->CreateClientKey(NewClientKey{.name = "a", .key_hash = "h", .rpm_limit = -5})
                .status()
                .code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->CreateClientKey(NewClientKey{.name = "a", .key_hash = "h", .parent_id = 77})
                .status()
                .code(),
            StatusCode::kNotFound);
  EXPECT_EQ(store_->ListClientKeys()->size(), 0u) << "nothing was written";
}

TEST_P(StoreClientKeysTest, SubKeysSpendTheParentsCreditsUnderCaps) {
  auto parent = store_->CreateClientKey(
      NewClientKey{.name = "parent", .key_hash = "h-p", .credits_micros = 10'000'000});
  ASSERT_OK(parent);
  auto sub = store_->CreateClientKey(
      NewClientKey{.name = "friend",
                   .key_hash = "h-f",
                   .parent_id = parent->id,
                   .caps = {{.model = "gpt-4o", .cap_micros = 1'000'000},
                            {.model = "*", .cap_micros = 200'000}}});
  ASSERT_OK(sub);
  EXPECT_EQ(sub->parent_id, parent->id);
  EXPECT_FALSE(sub->credits_micros.has_value());
  ASSERT_EQ(sub->caps.size(), 2u);
  EXPECT_EQ(sub->caps[0].model, "*");
  EXPECT_EQ(sub->caps[0].cap_micros, 200'000);
  EXPECT_EQ(sub->caps[1].model, "gpt-4o");
  EXPECT_EQ(sub->caps[1].spent_micros, 0);
  EXPECT_EQ(store_->ListClientKeys()->at(1).caps.size(), 2u);

  // A sub-key has no credits of its own and no sub-keys.
  EXPECT_EQ(store_->CreateClientKey(NewClientKey{.name = "x", .key_hash = "h-x",
                                                 .parent_id = parent->id, .credits_micros = 5})
                .status()
                .code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->CreateClientKey(
                    NewClientKey{.name = "x", .key_hash = "h-x", .parent_id = sub->id})
                .status()
                .code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->UpdateClientKey(sub->id, {.add_credits_micros = 5}).status().code(),
            StatusCode::kFailedPrecondition);

  // Caps change by model; a negative cap removes one.
  auto changed = store_->UpdateClientKey(
      sub->id, {.caps = {{.model = "gpt-4o", .cap_micros = 3'000'000}, {.model = "*", .cap_micros = -1}}});
  ASSERT_OK(changed);
  ASSERT_EQ(changed->caps.size(), 1u);
  EXPECT_EQ(changed->caps[0].cap_micros, 3'000'000);

  // The parent cannot go while it has sub-keys.
  EXPECT_EQ(store_->DeleteClientKey(parent->id).status().code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(*store_->DeleteClientKey(sub->id));
  EXPECT_TRUE(*store_->DeleteClientKey(parent->id));
  EXPECT_FALSE(*store_->DeleteClientKey(parent->id));
  EXPECT_EQ(store_->ListClientKeys()->size(), 0u);
}

TEST_P(StoreClientKeysTest, UpdateDisableRollAndCredits) {
  auto k = store_->CreateClientKey(NewClientKey{.name = "k", .key_hash = "h1", .hint = "a"});
  ASSERT_OK(k);
  EXPECT_EQ(store_->UpdateClientKey(k->id, {.add_credits_micros = 100}).status().code(),
            StatusCode::kFailedPrecondition)
      << "credits cannot be added to an unlimited key";

  ClientKeyUpdate u;
  u.enabled = false;
  u.credits_micros = std::optional<int64_t>(1'000);
  u.rpm_limit = std::optional<int64_t>(10);
  u.allowed_models = std::vector<std::string>{"m1"};
  u.expires_at_ms = std::optional<int64_t>(123);
  auto after = store_->UpdateClientKey(k->id, u);
  ASSERT_OK(after);
  EXPECT_FALSE(after->enabled);
  EXPECT_EQ(after->credits_micros, 1'000);
  EXPECT_EQ(after->rpm_limit, 10);
  EXPECT_EQ(after->allowed_models, std::vector<std::string>{"m1"});
  EXPECT_EQ(after->expires_at_ms, 123);

  EXPECT_EQ(store_->UpdateClientKey(k->id, {.add_credits_micros = 500})->credits_micros, 1'500);
  EXPECT_EQ(store_->UpdateClientKey(k->id, {.add_credits_micros = -2'000})->credits_micros, -500)
      << "an operator may take credits back below zero";

  // Clearing: inner nullopt = no limit, unlimited, never expires.
  ClientKeyUpdate clear;
  clear.enabled = true;
  clear.rpm_limit = std::optional<int64_t>();
  clear.credits_micros = std::optional<int64_t>();
  clear.expires_at_ms = std::optional<int64_t>();
  clear.allowed_models = std::vector<std::string>{};
  auto cleared = store_->UpdateClientKey(k->id, clear);
  ASSERT_OK(cleared);
  EXPECT_TRUE(cleared->enabled);
  EXPECT_FALSE(cleared->rpm_limit || cleared->credits_micros || cleared->expires_at_ms);
  EXPECT_TRUE(cleared->allowed_models.empty());

  // Rolling replaces the hash and hint; a taken hash is a conflict.
  ASSERT_OK(store_->CreateClientKey("other", "h-other", "o"));
  EXPECT_TRUE(*store_->RollClientKey(k->id, "h2", "b"));
  auto rolled = store_->GetClientKey(k->id);
  EXPECT_EQ(rolled->key_hash, "h2");
  EXPECT_EQ(rolled->hint, "b");
  EXPECT_EQ(store_->RollClientKey(k->id, "h-other", "x").status().code(),
            StatusCode::kAlreadyExists);
  EXPECT_FALSE(*store_->RollClientKey(9999, "h3", "c"));
  EXPECT_EQ(store_->UpdateClientKey(9999, {.enabled = true}).status().code(),
            StatusCode::kNotFound);
}

KG_INSTANTIATE_STORE_TEST(StoreClientKeysTest);

}  // namespace
}  // namespace keygate::testing
