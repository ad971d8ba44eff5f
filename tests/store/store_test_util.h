// Shared fixture of the store conformance suite: every test runs once per store kind.
#ifndef KEYGATE_TESTS_STORE_STORE_TEST_UTIL_H_
#define KEYGATE_TESTS_STORE_STORE_TEST_UTIL_H_

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "tests/testing/store_env.h"

namespace keygate::testing {

#define ASSERT_OK(expr)                                   \
  do {                                                    \
    const auto& kg_s_ = (expr);                           \
    ASSERT_TRUE(kg_s_.ok()) << StatusOf(kg_s_).ToString(); \
  } while (0)
#define EXPECT_OK(expr)                                   \
  do {                                                    \
    const auto& kg_s_ = (expr);                           \
    EXPECT_TRUE(kg_s_.ok()) << StatusOf(kg_s_).ToString(); \
  } while (0)

inline const Status& StatusOf(const Status& s) { return s; }
template <typename T>
const Status& StatusOf(const StatusOr<T>& s) {
  return s.status();
}

class StoreTest : public ::testing::TestWithParam<StoreKind> {
 protected:
  void SetUp() override {
    auto loc = StoreLocation::Create(GetParam());
    ASSERT_TRUE(loc.ok()) << loc.status().ToString();
    location_ = std::move(loc).value();
    auto s = OpenTestStore(location_->url(), &clock_);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
  }
  void TearDown() override {
    store_.reset();
    location_.reset();
  }

  // Creates a pool with `active` active keys and `backup` backups; returns the pool id.
  int64_t MakePool(const std::string& name, int active, int backup) {
    auto pool = store_->CreatePool(name, "openai");
    EXPECT_TRUE(pool.ok()) << pool.status().ToString();
    std::vector<store::NewKey> keys;
    for (int i = 0; i < active + backup; ++i) {
      store::NewKey k;
      k.secret = "sk-" + name + "-key-" + std::to_string(i) + "-0123456789abcdef";
      k.state = i < active ? store::KeyState::kActive : store::KeyState::kBackup;
      keys.push_back(k);
    }
    auto r = store_->ImportKeys(pool->id, keys);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return pool->id;
  }

  ManualClock clock_;
  std::unique_ptr<StoreLocation> location_;
  std::unique_ptr<store::Store> store_;
};

inline std::string StoreParamName(const ::testing::TestParamInfo<StoreKind>& info) {
  return StoreKindName(info.param);
}

#define KG_INSTANTIATE_STORE_TEST(fixture)                                              \
  INSTANTIATE_TEST_SUITE_P(Stores, fixture,                                             \
                           ::testing::Values(::keygate::testing::StoreKind::kSqlite,   \
                                             ::keygate::testing::StoreKind::kPostgres), \
                           ::keygate::testing::StoreParamName)

}  // namespace keygate::testing

#endif  // KEYGATE_TESTS_STORE_STORE_TEST_UTIL_H_
