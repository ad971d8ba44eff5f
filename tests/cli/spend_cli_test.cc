// `keygate spend check` and `keygate history spend` through the real binary, against the upstream
// stub's /key/info on loopback and a temporary SQLite store.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <fstream>

#include "cli/commands.h"
#include "tests/cli/run_binary.h"
#include "tests/fakes/upstream_stub.h"
#include "tests/testing/store_env.h"

namespace keygate::testing {
namespace {

namespace json = boost::json;

const std::vector<std::string> kActive = {"sk-spend-near-0123456789abcdef0001",
                                          "sk-spend-fine-0123456789abcdef0002"};
const std::string kBackup = "sk-spend-backup-0123456789abcdef0003";

class SpendCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(stub_.Start());
    auto loc = StoreLocation::Create(StoreKind::kSqlite);
    ASSERT_TRUE(loc.ok()) << loc.status().ToString();
    location_ = std::move(loc).value();
    env_["KEYGATE_MASTER_KEY"] = TestMasterKeyHex();
    config_ = location_->dir() + "/keygate.toml";
    std::ofstream(config_) << "[providers.oh]\nbase_url = \"" << stub_.base_url()
                           << "\"\nclassifier = \"litellm\"\n"
                              "[pools.oh]\nprovider = \"oh\"\nspend_probe = \"litellm\"\n"
                              "[pools.plain]\nprovider = \"oh\"\n";
    Must({"pool", "create", "oh", "--provider", "oh"});
    Must({"pool", "create", "plain", "--provider", "oh"});
    Must({"keys", "import", "--pool", "oh"}, kActive[0] + "\n" + kActive[1] + "\n");
    Must({"keys", "import", "--pool", "oh", "--backup"}, kBackup + "\n");
    stub_.SetSpend(kActive[0], {.spend_usd = 9.7, .budget_usd = 10});
    stub_.SetSpend(kActive[1], {.spend_usd = 2, .budget_usd = 10});
    stub_.SetSpend(kBackup, {.spend_usd = 0, .budget_usd = 10});
  }

  RunResult Run(std::vector<std::string> args, const std::string& stdin_data = "") {
    RunOptions options;
    options.env = env_;
    options.stdin_data = stdin_data;
    options.cwd = location_->dir();
    args.insert(args.begin(), {"--store", location_->url()});
    return RunBinary(KEYGATE_BIN, args, options);
  }
  RunResult Must(std::vector<std::string> args, const std::string& stdin_data = "") {
    RunResult r = Run(std::move(args), stdin_data);
    EXPECT_EQ(r.exit_code, cli::kExitOk) << r.out << r.err;
    return r;
  }
  json::value Json(std::vector<std::string> args, int want = cli::kExitOk) {
    args.push_back("--json");
    RunResult r = Run(std::move(args));
    EXPECT_EQ(r.exit_code, want) << r.out << r.err;
    boost::system::error_code ec;
    json::value v = json::parse(r.out, ec);
    EXPECT_FALSE(ec) << r.out;
    return v;
  }

  UpstreamStub stub_;
  std::unique_ptr<StoreLocation> location_;
  std::map<std::string, std::string> env_;
  std::string config_;
};

TEST_F(SpendCliTest, CheckRotatesAndHistoryShowsIt) {
  json::value v = Json({"spend", "check", "--config", config_});
  EXPECT_EQ(v.at("checked").as_int64(), 2);
  EXPECT_EQ(v.at("rotated").as_int64(), 1);
  EXPECT_EQ(v.at("failed").as_int64(), 0);
  int64_t near_id = 0;
  for (const json::value& c : v.at("checks").as_array()) {
    if (c.at("action").as_string() == "rotated") {
      EXPECT_EQ(c.at("reason").as_string(), "proactive_threshold");
      EXPECT_EQ(c.at("spend_usd").as_string(), "9.7");
      near_id = c.at("key_id").as_int64();
    }
  }
  ASSERT_GT(near_id, 0);

  json::value h = Json({"history", "spend"});
  EXPECT_EQ(h.at("spend").as_array().size(), 2u);
  h = Json({"history", "spend", "--key", std::to_string(near_id)});
  ASSERT_EQ(h.at("spend").as_array().size(), 1u);
  EXPECT_EQ(h.at("spend").as_array()[0].at("action").as_string(), "rotated");
  EXPECT_FALSE(h.at("spend").as_array()[0].at("new_key_id").is_null());
  json::value rot = Json({"history", "rotations", "--pool", "oh"});
  EXPECT_EQ(rot.at("rotations").as_array().size(), 1u);

  // Text output: a row per key and a summary, never a whole key.
  RunResult r = Run({"spend", "check", "--config", config_, "--pool", "oh"});
  EXPECT_EQ(r.exit_code, cli::kExitOk) << r.err;
  EXPECT_NE(r.out.find("2 keys checked: 0 rotated"), std::string::npos) << r.out;
  for (const std::string& k : kActive) EXPECT_EQ(r.out.find(k), std::string::npos);
  r = Run({"history", "spend", "--pool", "oh", "--limit", "1"});
  EXPECT_EQ(r.exit_code, cli::kExitOk);
  EXPECT_NE(r.out.find("none"), std::string::npos) << r.out;
}

TEST_F(SpendCliTest, StatsShowKeysBySpendBand) {
  // Before any check: spend unknown to keygate is $0 of an unknown budget.
  json::value v = Json({"spend", "stats", "--config", config_, "--pool", "oh"});
  ASSERT_EQ(v.at("pools").as_array().size(), 1u);
  EXPECT_EQ(v.at("pools").as_array()[0].at("bands").at("unknown").as_int64(), 2);

  // A check stores spend and budgets: 9.7 of 10 is rotated (its replacement spent 0), 2 of 10
  // stays under 50 %.
  stub_.SetSpend(kActive[1], {.spend_usd = 6, .budget_usd = 10});
  Json({"spend", "check", "--config", config_});
  v = Json({"spend", "stats", "--config", config_});
  ASSERT_EQ(v.at("pools").as_array().size(), 2u) << "every pool of the store";
  const json::value& oh = v.at("pools").as_array()[0];
  EXPECT_EQ(oh.at("pool").as_string(), "oh");
  EXPECT_EQ(oh.at("keys").as_int64(), 2);
  EXPECT_EQ(oh.at("spend_usd").as_string(), "6");
  EXPECT_EQ(oh.at("bands").at("unknown").as_int64(), 1)
      << "the replacement: not checked yet, and the pool names no budget";
  EXPECT_EQ(oh.at("bands").at("50-85").as_int64(), 1);
  EXPECT_EQ(oh.at("bands").at("ge95").as_int64(), 0) << "the rotated key is out of service";
  EXPECT_EQ(v.at("pools").as_array()[1].at("keys").as_int64(), 0);
  Json({"spend", "check", "--config", config_});
  v = Json({"spend", "stats", "--config", config_, "--pool", "oh"});
  EXPECT_EQ(v.at("pools").as_array()[0].at("bands").at("lt50").as_int64(), 1)
      << "the replacement, checked: $0 of $10";

  RunResult r = Run({"spend", "stats", "--config", config_});
  EXPECT_EQ(r.exit_code, cli::kExitOk) << r.err;
  EXPECT_NE(r.out.find("LT50"), std::string::npos) << r.out;
  EXPECT_EQ(Run({"spend", "stats", "--config", config_, "--pool", "ghost"}).exit_code,
            cli::kExitNotFound);
}

TEST_F(SpendCliTest, ExitCodes) {
  stub_.SetSpend(kActive[1], {.status = 500});
  json::value v = Json({"spend", "check", "--config", config_}, cli::kExitError);
  EXPECT_EQ(v.at("failed").as_int64(), 1);
  EXPECT_EQ(Run({"spend", "check", "--config", config_, "--pool", "plain"}).exit_code,
            cli::kExitUsage)
      << "a pool without a spend_probe";
  EXPECT_EQ(Run({"spend", "check", "--config", config_, "--pool", "ghost"}).exit_code,
            cli::kExitNotFound);
  EXPECT_EQ(Run({"spend", "check", "--config", location_->dir() + "/missing.toml"}).exit_code,
            cli::kExitNotFound);
  EXPECT_EQ(Run({"history", "spend", "--pool", "ghost"}).exit_code, cli::kExitNotFound);
  EXPECT_EQ(Run({"history", "spend", "--limit", "0"}).exit_code, cli::kExitUsage);
}

}  // namespace
}  // namespace keygate::testing
