// Unit tests for the MongoDB export reader (src/cli/mongo_import.h): extended JSON, the status
// table, validation with file:line, and the plan built from the fixture in testdata/mongo.
#include "cli/mongo_import.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

namespace keygate::cli {
namespace {

using store::KeyState;

TEST(MongoImportTest, StatusTable) {
  EXPECT_EQ(MapMongoKeyStatus("active"), KeyState::kActive);
  EXPECT_EQ(MapMongoKeyStatus(""), KeyState::kActive);
  EXPECT_EQ(MapMongoKeyStatus(" Active "), KeyState::kActive);
  EXPECT_EQ(MapMongoKeyStatus("rate-limited"), KeyState::kActive);
  EXPECT_EQ(MapMongoKeyStatus("exhausted"), KeyState::kExhausted);
  EXPECT_EQ(MapMongoKeyStatus("Budget_Exceeded"), KeyState::kExhausted);
  EXPECT_EQ(MapMongoKeyStatus("insufficient_quota"), KeyState::kExhausted);
  EXPECT_EQ(MapMongoKeyStatus("inactive"), KeyState::kRetired);
  EXPECT_EQ(MapMongoKeyStatus("disabled"), KeyState::kRetired);
  EXPECT_EQ(MapMongoKeyStatus("revoked"), KeyState::kRetired);
  EXPECT_EQ(MapMongoKeyStatus("sleepy"), std::nullopt);
}

TEST(MongoImportTest, KeyLineWithExtendedJson) {
  auto k = ParseMongoKeyLine(
      R"({"_id":{"$oid":"65a1f0c2e4b0a1b2c3d4e501"},"apiKey":"sk-fac-000000000000000000001",)"
      R"("status":"active","totalSpend":{"$numberDouble":"3.25"},"budget":{"$numberLong":"20"},)"
      R"("priority":{"$numberInt":"7"},"createdAt":{"$date":{"$numberLong":"1705047330123"}}})",
      MongoKeyKind::kPrimary, "factory_keys.json:1");
  ASSERT_TRUE(k.ok()) << k.status().ToString();
  EXPECT_EQ(k->oid, "65a1f0c2e4b0a1b2c3d4e501");
  EXPECT_EQ(k->secret, "sk-fac-000000000000000000001");
  EXPECT_EQ(k->state, KeyState::kActive);
  EXPECT_EQ(k->spend_micros, 3'250'000);
  EXPECT_EQ(k->budget_micros, 20'000'000);
  EXPECT_EQ(k->priority, 7);
}

TEST(MongoImportTest, NumbersInEveryShape) {
  for (const char* spend : {"1.5", R"({"$numberDouble":"1.5"})", R"({"$numberDecimal":"1.500000"})",
                            R"("1.5")"}) {
    std::string line = std::string(R"({"_id":"x1","apiKey":"sk-a-00000000000000001","totalSpend":)") +
                       spend + "}";
    auto k = ParseMongoKeyLine(line, MongoKeyKind::kPrimary, "f:1");
    ASSERT_TRUE(k.ok()) << spend << ": " << k.status().ToString();
    EXPECT_EQ(k->spend_micros, 1'500'000) << spend;
  }
  auto big = ParseMongoKeyLine(
      R"({"_id":"x2","apiKey":"sk-a-00000000000000002","totalSpend":{"$numberLong":"12"}})",
      MongoKeyKind::kPrimary, "f:2");
  ASSERT_TRUE(big.ok());
  EXPECT_EQ(big->spend_micros, 12'000'000);
}

TEST(MongoImportTest, DatesInEveryShape) {
  for (const char* date :
       {R"({"$date":"2024-01-12T08:15:30.123Z"})", R"({"$date":"2024-01-12T08:15:30Z"})",
        R"({"$date":"2024-01-12T10:15:30.123+02:00"})", R"({"$date":{"$numberLong":"1705047330123"}})",
        R"({"$date":1705047330123})"}) {
    std::string line =
        std::string(R"({"_id":"d","apiKey":"sk-a-00000000000000003","createdAt":)") + date + "}";
    EXPECT_TRUE(ParseMongoKeyLine(line, MongoKeyKind::kPrimary, "f:1").ok()) << date;
  }
  auto bad = ParseMongoKeyLine(
      R"({"_id":"d","apiKey":"sk-a-00000000000000003","createdAt":{"$date":"yesterday"}})",
      MongoKeyKind::kPrimary, "factory_keys.json:9");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("factory_keys.json:9"), std::string::npos);
  EXPECT_NE(bad.status().message().find("createdAt"), std::string::npos);
}

TEST(MongoImportTest, BackupKeysUsedBecomeRetired) {
  auto unused = ParseMongoKeyLine(R"({"_id":{"$oid":"b1"},"apiKey":"sk-b-000000000000000001"})",
                                  MongoKeyKind::kBackup, "backup_keys.json:1");
  ASSERT_TRUE(unused.ok());
  EXPECT_EQ(unused->state, KeyState::kBackup);
  auto used = ParseMongoKeyLine(
      R"({"_id":{"$oid":"b2"},"apiKey":"sk-b-000000000000000002","isUsed":true})",
      MongoKeyKind::kBackup, "backup_keys.json:2");
  ASSERT_TRUE(used.ok());
  EXPECT_EQ(used->state, KeyState::kRetired);
}

TEST(MongoImportTest, BadKeyLinesNameTheLineAndNeverTheKey) {
  const char* cases[] = {
      R"({"_id":{"$oid":"a"},"apiKey":"sk-secret-ABCDEFGH12345678","status":"sleepy"})",
      R"({"_id":{"$oid":"a"},"apiKey":"sk-secret-ABCDEFGH12345678","totalSpend":"lots"})",
      R"({"_id":{"$oid":"a"},"apiKey":"sk-secret-ABCDEFGH 12345678"})",
      R"({"_id":{"$oid":"a"},"apiKey":"sk-secret-ABCDEFGH12345678", )",
      R"({"_id":{"$oid":"a"}})",
      R"(["sk-secret-ABCDEFGH12345678"])",
  };
  for (const char* line : cases) {
    auto k = ParseMongoKeyLine(line, MongoKeyKind::kPrimary, "factory_keys.json:4");
    ASSERT_FALSE(k.ok()) << line;
    EXPECT_EQ(k.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(k.status().message().find("factory_keys.json:4"), std::string::npos);
    EXPECT_EQ(k.status().message().find("ABCDEFGH"), std::string::npos) << k.status().message();
  }
}

TEST(MongoImportTest, ProxyLines) {
  auto p = ParseMongoProxyLine(
      R"({"_id":{"$oid":"p1"},"type":"SOCKS5","host":"10.0.0.9","port":{"$numberInt":"1080"},)"
      R"("username":"u@x","password":"p:w/d","isActive":false})",
      "proxies.json:1");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->url.scheme, "socks5");
  EXPECT_EQ(p->url.port, 1080);
  EXPECT_EQ(p->url.username, "u@x");
  EXPECT_EQ(p->url.password, "p:w/d");
  EXPECT_FALSE(p->healthy);
  auto bad_type = ParseMongoProxyLine(
      R"({"_id":"p2","type":"ftp","host":"h","port":21,"password":"hunter2"})", "proxies.json:2");
  ASSERT_FALSE(bad_type.ok());
  EXPECT_NE(bad_type.status().message().find("proxies.json:2"), std::string::npos);
  EXPECT_EQ(bad_type.status().message().find("hunter2"), std::string::npos);
  auto bad_port =
      ParseMongoProxyLine(R"({"_id":"p3","type":"http","host":"h","port":70000})", "proxies.json:3");
  ASSERT_FALSE(bad_port.ok());
}

TEST(MongoImportTest, BindingLines) {
  auto b = ParseMongoBindingLine(
      R"({"proxyId":{"$oid":"p1"},"factoryKeyId":{"$oid":"k1"},"priority":3,"isActive":true})",
      "factoryKeyId", "proxy_key_bindings.json:1");
  ASSERT_TRUE(b.ok());
  ASSERT_TRUE(b->has_value());
  EXPECT_EQ((*b)->proxy_oid, "p1");
  EXPECT_EQ((*b)->key_oid, "k1");
  EXPECT_EQ((*b)->priority, 3);
  auto inactive = ParseMongoBindingLine(
      R"({"proxyId":{"$oid":"p1"},"factoryKeyId":{"$oid":"k1"},"isActive":false})", "factoryKeyId",
      "proxy_key_bindings.json:2");
  ASSERT_TRUE(inactive.ok());
  EXPECT_FALSE(inactive->has_value());
  auto wrong_field = ParseMongoBindingLine(R"({"proxyId":"p1","factoryKeyId":"k1"})",
                                           "openhandsKeyId", "openhands_bindings.json:7");
  ASSERT_FALSE(wrong_field.ok());
  EXPECT_NE(wrong_field.status().message().find("openhands_bindings.json:7"), std::string::npos);
}

TEST(MongoImportTest, FixturePlan) {
  auto plan = ReadMongoExport(KEYGATE_TESTDATA "/mongo");
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  ASSERT_EQ(plan->pools.size(), 2u);
  const MongoPoolPlan& factory = plan->pools[0];
  EXPECT_EQ(factory.pool, "factory");
  EXPECT_EQ(factory.provider, "factory");
  EXPECT_EQ(factory.keys.size(), 9u);  // 5 primaries, then 4 backups
  EXPECT_EQ(factory.keys[0].state, KeyState::kActive);
  EXPECT_EQ(factory.keys[5].state, KeyState::kBackup);
  EXPECT_EQ(factory.bindings.size(), 2u);
  EXPECT_EQ(factory.inactive_bindings, 1);
  const MongoPoolPlan& openhands = plan->pools[1];
  EXPECT_EQ(openhands.provider, "litellm");
  EXPECT_EQ(openhands.keys.size(), 3u);
  EXPECT_EQ(plan->proxies.size(), 2u);
  for (const MongoFileInfo& f : plan->files) EXPECT_FALSE(f.path.empty()) << f.collection;
}

class MongoDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "mongo_dir_" + std::to_string(::getpid()) + "_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void Write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ + "/" + name) << text;
  }
  std::string dir_;
};

TEST_F(MongoDirTest, MissingFilesAreSkipped) {
  Write("factory_keys.jsonl", R"({"_id":"k1","apiKey":"sk-only-000000000000001"})" "\n");
  auto plan = ReadMongoExport(dir_);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  int present = 0;
  for (const MongoFileInfo& f : plan->files) present += !f.path.empty();
  EXPECT_EQ(present, 1);
  EXPECT_EQ(plan->pools[0].keys.size(), 1u);
}

TEST_F(MongoDirTest, CorruptLineNamesFileAndLine) {
  Write("factory_keys.json", R"({"_id":"k1","apiKey":"sk-only-000000000000001"})" "\n\n"
                             R"({"_id":"k2","apiKey":)" "\n");
  auto plan = ReadMongoExport(dir_);
  ASSERT_FALSE(plan.ok());
  EXPECT_NE(plan.status().message().find("factory_keys.json:3"), std::string::npos)
      << plan.status().message();
}

TEST_F(MongoDirTest, RepeatedIdAndJsonArrayAndBothExtensionsAreErrors) {
  Write("backup_keys.json", R"({"_id":"k1","apiKey":"sk-a-000000000000000001"})" "\n"
                            R"({"_id":"k1","apiKey":"sk-a-000000000000000002"})" "\n");
  auto repeated = ReadMongoExport(dir_);
  ASSERT_FALSE(repeated.ok());
  EXPECT_NE(repeated.status().message().find("backup_keys.json:2"), std::string::npos);
  std::filesystem::remove(dir_ + "/backup_keys.json");

  Write("proxies.json", "[\n{}\n]\n");
  auto array = ReadMongoExport(dir_);
  ASSERT_FALSE(array.ok());
  EXPECT_NE(array.status().message().find("jsonArray"), std::string::npos);
  std::filesystem::remove(dir_ + "/proxies.json");

  Write("proxies.json", "");
  Write("proxies.jsonl", "");
  EXPECT_FALSE(ReadMongoExport(dir_).ok());
}

TEST_F(MongoDirTest, NotADirectory) {
  auto plan = ReadMongoExport(dir_ + "/nope");
  EXPECT_EQ(plan.status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace keygate::cli
