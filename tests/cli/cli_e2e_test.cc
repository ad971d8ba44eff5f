// End-to-end tests of the real `keygate` binary on a temporary SQLite store (and, in the tests
// whose names contain "postgres", on the throw-away PostgreSQL): stdout, stderr, exit codes, and
// the state of the store afterwards. Includes the "bad input" list of issue 2.
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <poll.h>

#include "cli/commands.h"
#include "common/strings.h"
#include "tests/cli/run_binary.h"
#include "tests/testing/store_env.h"

namespace keygate::testing {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using cli::kExitAlreadyRotated;
using cli::kExitConflict;
using cli::kExitError;
using cli::kExitNoBackup;
using cli::kExitNotFound;
using cli::kExitOk;
using cli::kExitStoreUnusable;
using cli::kExitUsage;

const std::string kOtherMasterKey(64, 'e');

std::string Fixture(const std::string& name) { return std::string(KEYGATE_TESTDATA) + "/" + name; }

// Prints a failed run in full, so a failure explains itself.
std::string Describe(const RunResult& r) {
  return "exit " + std::to_string(r.exit_code) + "\n--- stdout\n" + r.out + "--- stderr\n" + r.err;
}

json::value ParseJson(const std::string& text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  EXPECT_FALSE(ec) << "not JSON: " << text;
  return v;
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto loc = StoreLocation::Create(StoreKind::kSqlite);
    ASSERT_TRUE(loc.ok()) << loc.status().ToString();
    location_ = std::move(loc).value();
    store_ = location_->url();
    env_["KEYGATE_MASTER_KEY"] = TestMasterKeyHex();
  }

  // Runs `keygate --store <store_> args...` with env_ (plus `extra`).
  RunResult Run(std::vector<std::string> args, const std::string& stdin_data = "",
                std::map<std::string, std::string> extra = {}) {
    RunOptions options;
    options.env = env_;
    for (auto& [k, v] : extra) options.env[k] = v;
    options.stdin_data = stdin_data;
    options.cwd = location_->dir();
    args.insert(args.begin(), {"--store", store_});
    return RunBinary(KEYGATE_BIN, args, options);
  }

  RunResult MustRun(std::vector<std::string> args, const std::string& stdin_data = "") {
    RunResult r = Run(std::move(args), stdin_data);
    EXPECT_EQ(r.exit_code, kExitOk) << Describe(r);
    return r;
  }

  json::value RunJson(std::vector<std::string> args) {
    args.push_back("--json");
    RunResult r = MustRun(std::move(args));
    return ParseJson(r.out);
  }

  // Total keys in the store, by state, read through the binary.
  json::object Counts(const std::string& pool = "") {
    std::vector<std::string> args{"keys", "list"};
    if (!pool.empty()) args.insert(args.end(), {"--pool", pool});
    return RunJson(args).at("counts").as_object();
  }
  int64_t TotalKeys() { return Counts().at("total").as_int64(); }

  std::string WriteFile(const std::string& name, const std::string& text) {
    std::string path = location_->dir() + "/" + name;
    std::ofstream(path) << text;
    return path;
  }

  // Runs SQL on the SQLite file directly (to set up states the CLI cannot reach).
  void Sql(const std::string& sql) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(fs::path(store_).c_str(), &db), SQLITE_OK);
    char* err = nullptr;
    int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
    EXPECT_EQ(rc, SQLITE_OK) << (err ? err : "");
    sqlite3_free(err);
    sqlite3_close(db);
  }

  std::unique_ptr<StoreLocation> location_;
  std::string store_;
  std::map<std::string, std::string> env_;
};

// Keys used across tests; none may ever appear whole in output (except where imported from).
const std::vector<std::string> kSecrets = {
    "sk-test-0123456789abcdef0123456789a0001", "sk-test-0123456789abcdef0123456789a0002",
    "sk-test-0123456789abcdef0123456789a0003", "sk-test-0123456789abcdef0123456789a0004"};

void ExpectNoSecret(const RunResult& r, const std::vector<std::string>& secrets) {
  for (const std::string& s : secrets) {
    EXPECT_EQ(r.out.find(s), std::string::npos) << "secret in stdout: " << Describe(r);
    EXPECT_EQ(r.err.find(s), std::string::npos) << "secret in stderr: " << Describe(r);
  }
}

std::string Lines(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) out += l + "\n";
  return out;
}

// ---------------------------------------------------------------- basics

TEST_F(CliTest, VersionAndHelp) {
  RunResult v = Run({"version"});
  EXPECT_EQ(v.exit_code, kExitOk) << Describe(v);
  EXPECT_NE(v.out.find("keygate "), std::string::npos);
  EXPECT_FALSE(fs::exists(store_)) << "version must not create a store";
  RunResult h = Run({"--help"});
  EXPECT_EQ(h.exit_code, kExitOk);
  EXPECT_NE(h.out.find("rotate"), std::string::npos);
}

TEST_F(CliTest, UsageErrorsExit2) {
  for (std::vector<std::string> args : std::vector<std::vector<std::string>>{
           {},
           {"bogus"},
           {"pool", "create", "p"},  // --provider missing
           {"keys", "list", "--state", "sleepy"},
           {"rotate", "--pool", "p", "--key", "zero"},
           {"keys", "restore", "--key", "1", "--as", "retired"}}) {
    RunResult r = Run(args);
    EXPECT_EQ(r.exit_code, kExitUsage) << Describe(r);
    EXPECT_EQ(r.err.rfind("keygate: error: ", 0), 0u) << Describe(r);
  }
}

TEST_F(CliTest, ReadingCommandsDoNotCreateAStore) {
  RunResult r = Run({"pool", "list"});
  EXPECT_EQ(r.exit_code, kExitNotFound) << Describe(r);
  EXPECT_NE(r.err.find("no keygate store"), std::string::npos);
  EXPECT_FALSE(fs::exists(store_));
}

TEST_F(CliTest, PoolCreateAndList) {
  RunResult c = MustRun({"pool", "create", "factory", "--provider", "openai"});
  EXPECT_NE(c.out.find("created pool factory"), std::string::npos);
  MustRun({"pool", "create", "openhands", "--provider", "litellm", "--settings",
           R"({"budget_usd": 10})"});
  RunResult dup = Run({"pool", "create", "factory", "--provider", "openai"});
  EXPECT_EQ(dup.exit_code, kExitConflict) << Describe(dup);
  EXPECT_NE(dup.err.find("already exists"), std::string::npos);
  RunResult bad = Run({"pool", "create", "x", "--provider", "openai", "--settings", "[1]"});
  EXPECT_EQ(bad.exit_code, kExitUsage) << Describe(bad);

  MustRun({"keys", "import", "--pool", "factory"}, Lines({kSecrets[0], kSecrets[1]}));
  MustRun({"keys", "import", "--pool", "factory", "--backup"}, Lines({kSecrets[2]}));

  RunResult text = MustRun({"pool", "list"});
  EXPECT_NE(text.out.find("factory"), std::string::npos);
  EXPECT_NE(text.out.find("ACTIVE"), std::string::npos);
  json::value list = RunJson({"pool", "list"});
  const json::array& pools = list.at("pools").as_array();
  ASSERT_EQ(pools.size(), 2u);
  EXPECT_EQ(pools[0].at("name"), "factory");
  EXPECT_EQ(pools[0].at("counts").at("active"), 2);
  EXPECT_EQ(pools[0].at("counts").at("backup"), 1);
  EXPECT_EQ(pools[0].at("counts").at("total"), 3);
  EXPECT_EQ(pools[1].at("settings").at("budget_usd"), 10);
  EXPECT_EQ(pools[1].at("counts").at("total"), 0);
}

// ---------------------------------------------------------------- keys import and list

TEST_F(CliTest, KeysImportPlainFromFileAndStdinReportsDuplicates) {
  MustRun({"pool", "create", "p", "--provider", "openai"});
  std::string file = WriteFile("keys.txt", "# two keys\n" + Lines({kSecrets[0], kSecrets[1]}));
  RunResult a = MustRun({"keys", "import", "--pool", "p", "--file", file});
  EXPECT_NE(a.out.find("imported 2 keys"), std::string::npos) << Describe(a);
  ExpectNoSecret(a, kSecrets);

  // A duplicate (already stored) and a repeat within the input: nothing written, exit 4, both
  // listed masked with the existing key's id.
  RunResult dup = Run({"keys", "import", "--pool", "p", "--file", "-"},
                      Lines({kSecrets[2], kSecrets[1], kSecrets[3], kSecrets[3]}));
  EXPECT_EQ(dup.exit_code, kExitConflict) << Describe(dup);
  EXPECT_NE(dup.err.find("line 2: sk-…0002 is already stored as key 2"), std::string::npos)
      << Describe(dup);
  EXPECT_NE(dup.err.find("line 4: sk-…0004 repeats line 3"), std::string::npos) << Describe(dup);
  EXPECT_NE(dup.err.find("nothing was imported"), std::string::npos);
  ExpectNoSecret(dup, kSecrets);
  EXPECT_EQ(TotalKeys(), 2);

  // --skip-duplicates: the new ones go in, the duplicates are reported and not inserted twice.
  RunResult skip = Run({"keys", "import", "--pool", "p", "--skip-duplicates", "--json"},
                       Lines({kSecrets[2], kSecrets[1], kSecrets[3], kSecrets[3]}));
  ASSERT_EQ(skip.exit_code, kExitOk) << Describe(skip);
  json::value report = ParseJson(skip.out);
  EXPECT_EQ(report.at("inserted"), 2);
  const json::array& dups = report.at("duplicates").as_array();
  ASSERT_EQ(dups.size(), 2u);
  EXPECT_EQ(dups[0].at("line"), 2);
  EXPECT_EQ(dups[0].at("existing_key_id"), 2);
  EXPECT_EQ(dups[0].at("key"), "sk-…0002");
  ExpectNoSecret(skip, kSecrets);
  EXPECT_EQ(TotalKeys(), 4);

  // Importing everything again inserts nothing.
  RunResult again = Run({"keys", "import", "--pool", "p", "--skip-duplicates"}, Lines(kSecrets));
  EXPECT_EQ(again.exit_code, kExitOk) << Describe(again);
  EXPECT_NE(again.out.find("imported 0 keys"), std::string::npos);
  EXPECT_EQ(TotalKeys(), 4);
}

TEST_F(CliTest, KeysImportCsvWithBudgetPriorityProxyLabel) {
  MustRun({"pool", "create", "p", "--provider", "openai"});
  std::string csv = WriteFile(
      "keys.csv",
      "key,budget,priority,proxy,label\n" + kSecrets[0] +
          ",12.5,3,socks5h://alice:pr0xy-pa55@10.0.0.7:1080,first\n" + kSecrets[1] +
          ",,,socks5h://alice:pr0xy-pa55@10.0.0.7:1080,\n" + kSecrets[2] + ",0.25,,,\"third, b\"\n");
  RunResult r = MustRun({"keys", "import", "--pool", "p", "--backup", "--file", csv});
  EXPECT_NE(r.out.find("imported 3 keys into pool p as backup"), std::string::npos) << Describe(r);
  EXPECT_NE(r.out.find("1 proxies added"), std::string::npos) << Describe(r);

  json::value keys = RunJson({"keys", "list", "--pool", "p"});
  const json::array& arr = keys.at("keys").as_array();
  ASSERT_EQ(arr.size(), 3u);
  EXPECT_EQ(arr[0].at("state"), "backup");
  EXPECT_EQ(arr[0].at("budget_micros"), 12'500'000);
  EXPECT_EQ(arr[0].at("priority"), 3);
  EXPECT_EQ(arr[0].at("label"), "first");
  EXPECT_EQ(arr[0].at("proxies").as_array().size(), 1u);
  EXPECT_EQ(arr[1].at("proxies").as_array().size(), 1u);
  EXPECT_EQ(arr[2].at("label"), "third, b");
  EXPECT_EQ(arr[2].at("budget_micros"), 250'000);
  EXPECT_TRUE(arr[2].at("proxies").as_array().empty());

  RunResult proxies = MustRun({"proxies", "list"});
  EXPECT_NE(proxies.out.find("socks5h://alice@10.0.0.7:1080"), std::string::npos);
  EXPECT_EQ(proxies.out.find("pr0xy-pa55"), std::string::npos) << proxies.out;
}

TEST_F(CliTest, CorruptLineWritesNothing) {
  MustRun({"pool", "create", "p", "--provider", "openai"});
  // Line 4 is corrupt: nothing of lines 2-3 may be written, nor the proxy of line 2.
  std::string csv = WriteFile("bad.csv", "key,budget,proxy\n" + kSecrets[0] +
                                             ",1,http://u:hunter2@proxy.example:3128\n" +
                                             kSecrets[1] + ",2,\n" + kSecrets[2] + ",two,\n");
  RunResult r = Run({"keys", "import", "--pool", "p", "--file", csv});
  EXPECT_EQ(r.exit_code, kExitUsage) << Describe(r);
  EXPECT_NE(r.err.find("bad.csv: line 4: budget 'two'"), std::string::npos) << Describe(r);
  ExpectNoSecret(r, kSecrets);
  EXPECT_EQ(TotalKeys(), 0);
  json::value proxies = RunJson({"proxies", "list"});
  EXPECT_TRUE(proxies.at("proxies").as_array().empty());

  // A plain list with a key holding a space: the message masks it.
  RunResult plain = Run({"keys", "import", "--pool", "p"},
                        kSecrets[0] + "\nsk-test-has space-0123456789abcdefXYZW\n");
  EXPECT_EQ(plain.exit_code, kExitUsage) << Describe(plain);
  EXPECT_NE(plain.err.find("stdin: line 2: key sk-…XYZW contains whitespace"), std::string::npos)
      << Describe(plain);
  EXPECT_EQ(TotalKeys(), 0);

  // A missing file.
  RunResult missing = Run({"keys", "import", "--pool", "p", "--file", "/nonexistent/keys.txt"});
  EXPECT_EQ(missing.exit_code, kExitNotFound) << Describe(missing);
}

TEST_F(CliTest, UnknownPool) {
  MustRun({"pool", "create", "p", "--provider", "openai"});
  RunResult r = Run({"keys", "import", "--pool", "nope"}, Lines({kSecrets[0]}));
  EXPECT_EQ(r.exit_code, kExitNotFound) << Describe(r);
  EXPECT_NE(r.err.find("pool 'nope' does not exist"), std::string::npos) << Describe(r);
  EXPECT_EQ(TotalKeys(), 0);
  EXPECT_EQ(Run({"keys", "list", "--pool", "nope"}).exit_code, kExitNotFound);
  EXPECT_EQ(Run({"rotate", "--pool", "nope", "--key", "1"}).exit_code, kExitNotFound);
  EXPECT_EQ(Run({"history", "rotations", "--pool", "nope"}).exit_code, kExitNotFound);
}

TEST_F(CliTest, KeysListNeverShowsASecret) {
  MustRun({"pool", "create", "p", "--provider", "openai"});
  MustRun({"keys", "import", "--pool", "p"}, Lines({kSecrets[0], kSecrets[1]}));
  MustRun({"keys", "import", "--pool", "p", "--backup"}, Lines({kSecrets[2], kSecrets[3]}));
  RunResult text = MustRun({"keys", "list"});
  ExpectNoSecret(text, kSecrets);
  EXPECT_NE(text.out.find("sk-…0001"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("4 keys: 2 active, 2 backup, 0 cooling, 0 exhausted, 0 retired"),
            std::string::npos)
      << text.out;
  RunResult j = MustRun({"keys", "list", "--json"});
  ExpectNoSecret(j, kSecrets);
  RunResult backups = MustRun({"keys", "list", "--state", "backup", "--json"});
  EXPECT_EQ(ParseJson(backups.out).at("keys").as_array().size(), 2u);
  // The fingerprint is not a secret, but the listing has no reason to carry it either.
  EXPECT_EQ(j.out.find("fingerprint"), std::string::npos);
}

TEST_F(CliTest, KeyStateCommands) {
  MustRun({"pool", "create", "p", "--provider", "openai"});
  MustRun({"keys", "import", "--pool", "p"}, Lines({kSecrets[0], kSecrets[1]}));
  RunResult cool = MustRun({"keys", "cooldown", "--key", "1", "--seconds", "600"});
  EXPECT_NE(cool.out.find("cooling until"), std::string::npos);
  EXPECT_EQ(Counts().at("cooling"), 1);
  MustRun({"keys", "exhaust", "--key", "2"});
  EXPECT_EQ(Counts().at("exhausted"), 1);
  RunResult again = Run({"keys", "exhaust", "--key", "2"});
  EXPECT_EQ(again.exit_code, kExitConflict) << Describe(again);
  EXPECT_NE(again.err.find("key 2 is exhausted"), std::string::npos) << Describe(again);
  RunResult cool_exhausted = Run({"keys", "cooldown", "--key", "2", "--seconds", "5"});
  EXPECT_EQ(cool_exhausted.exit_code, kExitConflict) << Describe(cool_exhausted);
  MustRun({"keys", "restore", "--key", "2", "--as", "backup"});
  MustRun({"keys", "restore", "--key", "1"});
  json::object counts = Counts();
  EXPECT_EQ(counts.at("active"), 1);
  EXPECT_EQ(counts.at("backup"), 1);
  EXPECT_EQ(Run({"keys", "restore", "--key", "1"}).exit_code, kExitConflict);
  EXPECT_EQ(Run({"keys", "cooldown", "--key", "99", "--seconds", "5"}).exit_code, kExitNotFound);
  MustRun({"keys", "delete", "--key", "2"});
  EXPECT_EQ(Run({"keys", "delete", "--key", "2"}).exit_code, kExitNotFound);
  EXPECT_EQ(TotalKeys(), 1);
}

// ---------------------------------------------------------------- proxies and bindings

TEST_F(CliTest, ProxiesNeverPrintThePassword) {
  RunResult add = MustRun({"proxies", "add", "http://bob:s3cr3t-Pa55w0rd@proxy.example:3128"});
  EXPECT_NE(add.out.find("added proxy 1: http://bob@proxy.example:3128"), std::string::npos)
      << Describe(add);
  MustRun({"proxies", "add", "socks5://10.1.1.1:1080"});
  RunResult again = MustRun({"proxies", "add", "http://bob:n3w-Pa55w0rd@proxy.example:3128"});
  EXPECT_NE(again.out.find("already exists"), std::string::npos);
  for (const RunResult& r : {add, again, MustRun({"proxies", "list"}),
                             MustRun({"proxies", "list", "--json"})}) {
    EXPECT_EQ(r.out.find("s3cr3t"), std::string::npos) << Describe(r);
    EXPECT_EQ(r.out.find("n3w-Pa55"), std::string::npos) << Describe(r);
    EXPECT_EQ(r.err.find("Pa55w0rd"), std::string::npos) << Describe(r);
  }
  json::value list = RunJson({"proxies", "list"});
  const json::array& arr = list.at("proxies").as_array();
  ASSERT_EQ(arr.size(), 2u);
  EXPECT_EQ(arr[0].at("has_password"), true);
  EXPECT_EQ(arr[1].at("has_password"), false);
  RunResult bad = Run({"proxies", "add", "ftp://u:hunter2@h:21"});
  EXPECT_EQ(bad.exit_code, kExitUsage) << Describe(bad);
  EXPECT_EQ(bad.err.find("hunter2"), std::string::npos) << Describe(bad);
  MustRun({"proxies", "delete", "--id", "2"});
  EXPECT_EQ(Run({"proxies", "delete", "--id", "2"}).exit_code, kExitNotFound);
}

TEST_F(CliTest, BindAndUnbind) {
  MustRun({"pool", "create", "p", "--provider", "openai"});
  MustRun({"keys", "import", "--pool", "p"}, Lines({kSecrets[0]}));
  MustRun({"proxies", "add", "socks5://10.1.1.1:1080"});
  RunResult b = MustRun({"bind", "--key", "1", "--proxy", "1", "--priority", "5"});
  EXPECT_NE(b.out.find("bound key 1 to proxy 1 (priority 5)"), std::string::npos);
  RunResult u = MustRun({"bind", "--key", "1", "--proxy", "1", "--priority", "7"});
  EXPECT_NE(u.out.find("updated binding"), std::string::npos);
  json::value keys = RunJson({"keys", "list"});
  EXPECT_EQ(keys.at("keys").as_array()[0].at("proxies").as_array().size(), 1u);
  EXPECT_EQ(RunJson({"proxies", "list"}).at("proxies").as_array()[0].at("bound_keys"), 1);
  MustRun({"unbind", "--key", "1", "--proxy", "1"});
  EXPECT_TRUE(RunJson({"keys", "list"}).at("keys").as_array()[0].at("proxies").as_array().empty());
  RunResult again = Run({"unbind", "--key", "1", "--proxy", "1"});
  EXPECT_EQ(again.exit_code, kExitNotFound) << Describe(again);
  EXPECT_EQ(Run({"bind", "--key", "42", "--proxy", "1"}).exit_code, kExitNotFound);
  EXPECT_EQ(Run({"bind", "--key", "1", "--proxy", "42"}).exit_code, kExitNotFound);
}

// ---------------------------------------------------------------- rotation and history

TEST_F(CliTest, RotateThreeOutcomesAndHistory) {
  MustRun({"pool", "create", "p", "--provider", "openai"});
  MustRun({"keys", "import", "--pool", "p"}, Lines({kSecrets[0]}));            // key 1
  MustRun({"keys", "import", "--pool", "p", "--backup"}, Lines({kSecrets[1]}));  // key 2
  MustRun({"proxies", "add", "socks5://10.1.1.1:1080"});
  MustRun({"bind", "--key", "1", "--proxy", "1"});

  RunResult rotated = Run({"rotate", "--pool", "p", "--key", "1", "--reason", "401", "--json"});
  ASSERT_EQ(rotated.exit_code, kExitOk) << Describe(rotated);
  json::value r1 = ParseJson(rotated.out);
  EXPECT_EQ(r1.at("outcome"), "rotated");
  EXPECT_EQ(r1.at("new_key_id"), 2);
  EXPECT_EQ(r1.at("rotation_id"), 1);
  // The replacement inherited the binding.
  json::value keys = RunJson({"keys", "list"});
  EXPECT_EQ(keys.at("keys").as_array()[1].at("proxies").as_array().size(), 1u);
  EXPECT_EQ(keys.at("keys").as_array()[0].at("replaced_by"), 2);

  RunResult already = Run({"rotate", "--pool", "p", "--key", "1", "--reason", "401", "--json"});
  EXPECT_EQ(already.exit_code, kExitAlreadyRotated) << Describe(already);
  EXPECT_EQ(ParseJson(already.out), json::parse(R"({"outcome":"already_rotated"})"));

  RunResult none = Run({"rotate", "--pool", "p", "--key", "2", "--reason", "budget", "--json"});
  EXPECT_EQ(none.exit_code, kExitNoBackup) << Describe(none);
  json::value r3 = ParseJson(none.out);
  EXPECT_EQ(r3.at("outcome"), "no_backup");
  EXPECT_EQ(r3.at("rotation_id"), 2);
  json::object counts = Counts();
  EXPECT_EQ(counts.at("retired"), 1);
  EXPECT_EQ(counts.at("exhausted"), 1);

  RunResult text = Run({"rotate", "--pool", "p", "--key", "2"});
  EXPECT_EQ(text.exit_code, kExitAlreadyRotated);
  EXPECT_NE(text.out.find("already rotated"), std::string::npos);

  json::value history = RunJson({"history", "rotations", "--pool", "p"});
  const json::array& recs = history.at("rotations").as_array();
  ASSERT_EQ(recs.size(), 2u);
  EXPECT_EQ(recs[0].at("outcome"), "no_backup");  // newest first
  EXPECT_EQ(recs[1].at("outcome"), "rotated");
  EXPECT_EQ(recs[1].at("new_key_id"), 2);
  EXPECT_EQ(recs[1].at("reason"), "401");
  EXPECT_EQ(recs[1].at("actor"), "cli");
  json::value by_key = RunJson({"history", "rotations", "--key", "1"});
  EXPECT_EQ(by_key.at("rotations").as_array().size(), 1u);
  json::value limited = RunJson({"history", "rotations", "--limit", "1"});
  EXPECT_EQ(limited.at("rotations").as_array().size(), 1u);
  RunResult table = MustRun({"history", "rotations"});
  EXPECT_NE(table.out.find("no_backup"), std::string::npos);

  // A key of another pool is a usage error, not an outcome.
  MustRun({"pool", "create", "q", "--provider", "openai"});
  RunResult wrong = Run({"rotate", "--pool", "q", "--key", "2"});
  EXPECT_NE(wrong.exit_code, kExitOk);
  EXPECT_NE(wrong.exit_code, kExitAlreadyRotated);
  EXPECT_EQ(Run({"rotate", "--pool", "p", "--key", "77"}).exit_code, kExitNotFound);
}

// ---------------------------------------------------------------- client keys

TEST_F(CliTest, ClientKeyIsPrintedOnceAndNeverListed) {
  RunResult c = MustRun({"clients", "create", "alice"});
  std::string token(Trim(c.out));
  ASSERT_EQ(token.size(), 3u + 64u) << c.out;
  EXPECT_EQ(token.rfind("kg-", 0), 0u);
  EXPECT_EQ(c.err.find(token), std::string::npos) << "the key goes to stdout only";
  EXPECT_NE(c.err.find("shown only this once"), std::string::npos);
  RunResult j = MustRun({"clients", "create", "bob", "--json"});
  std::string token2 = std::string(ParseJson(j.out).at("key").as_string());
  EXPECT_NE(token, token2);

  for (const RunResult& r : {MustRun({"clients", "list"}), MustRun({"clients", "list", "--json"})}) {
    EXPECT_EQ(r.out.find(token), std::string::npos) << r.out;
    EXPECT_EQ(r.out.find(token2), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("alice"), std::string::npos);
    EXPECT_NE(r.out.find("kg-…" + token.substr(token.size() - 4)), std::string::npos) << r.out;
  }
}

TEST_F(CliTest, ClientKeyCreditsLimitsSubKeysAndLifecycle) {
  json::value acme = RunJson({"clients", "create", "acme", "--credits", "25.5", "--models",
                              "gpt-4o,claude-sonnet", "--rpm", "60", "--tpm", "100000",
                              "--concurrency", "4", "--expires", "2030-01-01"});
  const int64_t id = acme.at("id").as_int64();
  EXPECT_EQ(acme.at("credits_micros").as_int64(), 25'500'000);
  EXPECT_EQ(acme.at("credits_usd").as_string(), "25.5");
  EXPECT_EQ(acme.at("models").as_array().size(), 2u);
  EXPECT_EQ(acme.at("rpm").as_int64(), 60);
  EXPECT_EQ(acme.at("expires_at").as_string(), "2030-01-01T00:00:00.000Z");
  const std::string token(acme.at("key").as_string());

  // A sub-key spends the parent's credits under its own caps.
  json::value sub = RunJson({"clients", "create", "friend", "--parent", std::to_string(id),
                             "--cap", "gpt-4o=2", "--cap", "*=0.5"});
  const int64_t sub_id = sub.at("id").as_int64();
  EXPECT_EQ(sub.at("parent_id").as_int64(), id);
  EXPECT_TRUE(sub.at("credits_micros").is_null());
  EXPECT_EQ(sub.at("caps").as_array().size(), 2u);
  RunResult bad_sub = Run({"clients", "create", "x", "--parent", std::to_string(id), "--credits", "1"});
  EXPECT_EQ(bad_sub.exit_code, kExitUsage) << Describe(bad_sub);
  EXPECT_EQ(Run({"clients", "create", "x", "--parent", "999"}).exit_code, kExitNotFound);
  EXPECT_EQ(Run({"clients", "create", "x", "--credits", "lots"}).exit_code, kExitUsage);
  EXPECT_EQ(Run({"clients", "create", "x", "--expires", "soon"}).exit_code, kExitUsage);
  EXPECT_EQ(Run({"clients", "create", "x", "--cap", "gpt-4o"}).exit_code, kExitUsage);

  // Credits are added atomically; limits cleared with none/never/*.
  json::value up = RunJson({"clients", "update", std::to_string(id), "--add-credits", "4.5",
                            "--rpm", "none", "--models", "*", "--expires", "never"});
  EXPECT_EQ(up.at("credits_micros").as_int64(), 30'000'000);
  EXPECT_TRUE(up.at("rpm").is_null());
  EXPECT_TRUE(up.at("models").as_array().empty());
  EXPECT_TRUE(up.at("expires_at").is_null());
  RunResult sub_credit = Run({"clients", "update", std::to_string(sub_id), "--add-credits", "1"});
  EXPECT_EQ(sub_credit.exit_code, kExitConflict) << Describe(sub_credit);
  json::value capped = RunJson({"clients", "update", std::to_string(sub_id), "--cap", "*=none"});
  EXPECT_EQ(capped.at("caps").as_array().size(), 1u);

  MustRun({"clients", "disable", std::to_string(id)});
  EXPECT_FALSE(RunJson({"clients", "list"}).at("clients").as_array()[0].at("enabled").as_bool());
  MustRun({"clients", "enable", std::to_string(id)});

  // Rolling prints a new secret once; neither the old nor the new one is ever listed.
  RunResult roll = MustRun({"clients", "roll", std::to_string(id)});
  std::string rolled(Trim(roll.out));
  EXPECT_NE(rolled, token);
  EXPECT_EQ(rolled.size(), token.size());
  RunResult list = MustRun({"clients", "list"});
  EXPECT_EQ(list.out.find(token), std::string::npos);
  EXPECT_EQ(list.out.find(rolled), std::string::npos);
  EXPECT_NE(list.out.find("$30"), std::string::npos) << list.out;
  EXPECT_NE(list.out.find("gpt-4o=0/2"), std::string::npos) << list.out;

  RunResult del_parent = Run({"clients", "delete", std::to_string(id)});
  EXPECT_EQ(del_parent.exit_code, kExitConflict) << Describe(del_parent);
  MustRun({"clients", "delete", std::to_string(sub_id)});
  MustRun({"clients", "delete", std::to_string(id)});
  EXPECT_EQ(Run({"clients", "delete", std::to_string(id)}).exit_code, kExitNotFound);
  EXPECT_EQ(Run({"clients", "roll", "77"}).exit_code, kExitNotFound);
}

TEST_F(CliTest, UsageReportByDayKeyAndModel) {
  json::value k = RunJson({"clients", "create", "acme"});
  EXPECT_EQ(MustRun({"usage"}).out, "no usage\n");
  const int64_t id = k.at("id").as_int64();
  // 2026-11-27 and 2026-11-28 (UTC), as the gateway would have written them.
  Sql("INSERT INTO usage_records (request_id, client_key_id, model, input_tokens, output_tokens,"
      " cost_micros, created_at) VALUES"
      " ('r1', " + std::to_string(id) + ", 'gpt-4o', 100, 10, 1500, 1795737600000),"
      " ('r2', " + std::to_string(id) + ", 'gpt-4o', 50, 5, 750, 1795737600001),"
      " ('r3', " + std::to_string(id) + ", 'claude', 7, 3, 20, 1795824000000),"
      " ('r4', 999, 'gpt-4o', 1, 1, 1, 1795824000000)");
  json::value all = RunJson({"usage"});
  const json::array& rows = all.at("usage").as_array();
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].at("day").as_string(), "2026-11-27");
  EXPECT_EQ(rows[0].at("name").as_string(), "acme");
  EXPECT_EQ(rows[0].at("requests").as_int64(), 2);
  EXPECT_EQ(rows[0].at("input_tokens").as_int64(), 150);
  EXPECT_EQ(rows[0].at("cost_usd").as_string(), "0.00225");
  EXPECT_EQ(rows[1].at("day").as_string(), "2026-11-28");
  EXPECT_EQ(rows[1].at("model").as_string(), "claude");
  EXPECT_EQ(rows[2].at("name").as_string(), "(deleted 999)");
  EXPECT_EQ(all.at("total").at("cost_micros").as_int64(), 2271);

  EXPECT_EQ(RunJson({"usage", "--key", std::to_string(id)}).at("usage").as_array().size(), 2u);
  EXPECT_EQ(RunJson({"usage", "--model", "claude"}).at("usage").as_array().size(), 1u);
  EXPECT_EQ(RunJson({"usage", "--since", "2026-11-28"}).at("usage").as_array().size(), 2u);
  RunResult text = MustRun({"usage"});
  EXPECT_NE(text.out.find("total"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("0.002271"), std::string::npos) << text.out;
  EXPECT_EQ(Run({"usage", "--since", "yesterday"}).exit_code, kExitUsage);
}

// ---------------------------------------------------------------- import mongo

TEST_F(CliTest, MongoImportTwiceChangesNothing) {
  RunResult first = Run({"import", "mongo", Fixture("mongo"), "--json"});
  ASSERT_EQ(first.exit_code, kExitOk) << Describe(first);
  json::value r1 = ParseJson(first.out);
  EXPECT_EQ(r1.at("pools").at("factory").at("created"), true);
  EXPECT_EQ(r1.at("pools").at("factory").at("inserted"), 8);
  EXPECT_EQ(r1.at("pools").at("factory").at("duplicates"), 1);  // the used backup now active
  EXPECT_EQ(r1.at("pools").at("factory").at("bindings_created"), 2);
  EXPECT_EQ(r1.at("pools").at("factory").at("bindings_inactive"), 1);
  EXPECT_EQ(r1.at("pools").at("openhands").at("inserted"), 3);
  EXPECT_EQ(r1.at("pools").at("openhands").at("bindings_dangling"), 1);
  EXPECT_EQ(r1.at("proxies").at("created"), 2);
  EXPECT_NE(first.err.find("openhands_bindings.json:2"), std::string::npos) << first.err;
  EXPECT_EQ(first.out.find("sk-fac-9f2c1d7e4b8a6035c1e2d3f4a5b60001"), std::string::npos);
  EXPECT_EQ(first.out.find("pr0xy-Secret!"), std::string::npos);

  json::object factory = Counts("factory");
  EXPECT_EQ(factory.at("active"), 3);
  EXPECT_EQ(factory.at("backup"), 2);
  EXPECT_EQ(factory.at("exhausted"), 1);
  EXPECT_EQ(factory.at("retired"), 2);
  json::object openhands = Counts("openhands");
  EXPECT_EQ(openhands.at("active"), 1);
  EXPECT_EQ(openhands.at("exhausted"), 1);
  EXPECT_EQ(openhands.at("backup"), 1);
  json::value pools = RunJson({"pool", "list"});
  EXPECT_EQ(pools.at("pools").as_array()[0].at("provider"), "factory");
  EXPECT_EQ(pools.at("pools").as_array()[1].at("provider"), "litellm");
  json::value keys = RunJson({"keys", "list", "--pool", "factory"});
  const json::object& k1 = keys.at("keys").as_array()[0].as_object();
  EXPECT_EQ(k1.at("label"), "mongo:65a1f0c2e4b0a1b2c3d4e501");
  EXPECT_EQ(k1.at("spend_micros"), 3'250'000);
  EXPECT_EQ(k1.at("proxies").as_array().size(), 1u);
  json::value proxies = RunJson({"proxies", "list"});
  EXPECT_EQ(proxies.at("proxies").as_array()[1].at("healthy"), false);

  const std::string keys_before = MustRun({"keys", "list", "--json"}).out;
  const std::string pools_before = MustRun({"pool", "list", "--json"}).out;
  const std::string proxies_before = MustRun({"proxies", "list", "--json"}).out;

  RunResult second = Run({"import", "mongo", Fixture("mongo"), "--json"});
  ASSERT_EQ(second.exit_code, kExitOk) << Describe(second);
  json::value r2 = ParseJson(second.out);
  EXPECT_EQ(r2.at("pools").at("factory").at("created"), false);
  EXPECT_EQ(r2.at("pools").at("factory").at("inserted"), 0);
  EXPECT_EQ(r2.at("pools").at("factory").at("bindings_created"), 0);
  EXPECT_EQ(r2.at("pools").at("factory").at("bindings_updated"), 0);
  EXPECT_EQ(r2.at("proxies").at("created"), 0);
  EXPECT_EQ(r2.at("proxies").at("updated"), 0);
  // Nothing changed: not a key, not a timestamp, not a pool version, not a proxy.
  EXPECT_EQ(MustRun({"keys", "list", "--json"}).out, keys_before);
  EXPECT_EQ(MustRun({"pool", "list", "--json"}).out, pools_before);
  EXPECT_EQ(MustRun({"proxies", "list", "--json"}).out, proxies_before);

  RunResult text = MustRun({"import", "mongo", Fixture("mongo")});
  EXPECT_NE(text.out.find("pool factory (existing): 0 keys inserted"), std::string::npos)
      << text.out;
}

TEST_F(CliTest, MongoImportCorruptLineWritesNothing) {
  std::string dir = location_->dir() + "/export";
  fs::copy(Fixture("mongo"), dir);
  // Corrupt the last file read (bindings), so that every earlier file was already parsed.
  std::ofstream(dir + "/openhands_bindings.json", std::ios::app) << "{\"proxyId\": \n";
  RunResult r = Run({"import", "mongo", dir});
  EXPECT_EQ(r.exit_code, kExitUsage) << Describe(r);
  EXPECT_NE(r.err.find("openhands_bindings.json:3"), std::string::npos) << Describe(r);
  EXPECT_TRUE(RunJson({"pool", "list"}).at("pools").as_array().empty());
  EXPECT_TRUE(RunJson({"proxies", "list"}).at("proxies").as_array().empty());

  // An unknown status is refused the same way.
  fs::remove(dir + "/openhands_bindings.json");
  std::ofstream(dir + "/openhands_keys.jsonl", std::ios::app)
      << R"({"_id":{"$oid":"65b2a0c1e4b0a1b2c3d4e7aa"},"apiKey":"sk-oh-zzzz","status":"sleepy"})"
      << "\n";
  RunResult status = Run({"import", "mongo", dir});
  EXPECT_EQ(status.exit_code, kExitUsage) << Describe(status);
  EXPECT_NE(status.err.find("openhands_keys.jsonl:3: unknown status 'sleepy'"), std::string::npos)
      << Describe(status);
  EXPECT_EQ(TotalKeys(), 0);

  RunResult missing = Run({"import", "mongo", dir + "/nope"});
  EXPECT_EQ(missing.exit_code, kExitNotFound) << Describe(missing);
}

// ---------------------------------------------------------------- master key

TEST_F(CliTest, MasterKeyFileIsCreatedOnlyForANewStoreAndAnnounced) {
  env_.erase("KEYGATE_MASTER_KEY");
  const std::string key_file = store_ + ".masterkey";
  RunResult c = MustRun({"pool", "create", "p", "--provider", "openai"});
  ASSERT_TRUE(fs::exists(key_file));
  struct stat st {};
  ASSERT_EQ(::stat(key_file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);
  EXPECT_NE(c.err.find("A NEW MASTER KEY was created at " + key_file), std::string::npos) << c.err;
  EXPECT_NE(c.err.find("BACK IT UP"), std::string::npos);
  // The next run uses the file, quietly.
  RunResult again = MustRun({"keys", "import", "--pool", "p"}, Lines({kSecrets[0]}));
  EXPECT_EQ(again.err.find("MASTER KEY"), std::string::npos) << again.err;
  // KEYGATE_MASTER_KEY_FILE names a key file explicitly.
  RunResult via_file = Run({"keys", "list"}, "", {{"KEYGATE_MASTER_KEY_FILE", key_file}});
  EXPECT_EQ(via_file.exit_code, kExitOk) << Describe(via_file);
  // ...and a missing one is an error, never a new key.
  RunResult no_file = Run({"keys", "list"}, "", {{"KEYGATE_MASTER_KEY_FILE", key_file + ".x"}});
  EXPECT_EQ(no_file.exit_code, kExitStoreUnusable) << Describe(no_file);
  EXPECT_FALSE(fs::exists(key_file + ".x"));
}

TEST_F(CliTest, MissingMasterKeyForAnExistingStore) {
  // The store was created with KEYGATE_MASTER_KEY: no key file beside it.
  MustRun({"pool", "create", "p", "--provider", "openai"});
  MustRun({"keys", "import", "--pool", "p"}, Lines({kSecrets[0]}));
  env_.erase("KEYGATE_MASTER_KEY");
  RunResult r = Run({"keys", "import", "--pool", "p"}, Lines({kSecrets[1]}));
  EXPECT_EQ(r.exit_code, kExitStoreUnusable) << Describe(r);
  EXPECT_NE(r.err.find("KEYGATE_MASTER_KEY is not set"), std::string::npos) << Describe(r);
  EXPECT_FALSE(fs::exists(store_ + ".masterkey")) << "no key may be invented for an existing store";
  env_["KEYGATE_MASTER_KEY"] = TestMasterKeyHex();
  EXPECT_EQ(TotalKeys(), 1);
}

TEST_F(CliTest, WrongMasterKey) {
  MustRun({"pool", "create", "p", "--provider", "openai"});
  MustRun({"keys", "import", "--pool", "p"}, Lines({kSecrets[0]}));
  RunResult r = Run({"keys", "import", "--pool", "p"}, Lines({kSecrets[1]}),
                    {{"KEYGATE_MASTER_KEY", kOtherMasterKey}});
  EXPECT_EQ(r.exit_code, kExitStoreUnusable) << Describe(r);
  EXPECT_NE(r.err.find("master key does not match"), std::string::npos) << Describe(r);
  RunResult malformed = Run({"keys", "list"}, "", {{"KEYGATE_MASTER_KEY", "not-hex"}});
  EXPECT_EQ(malformed.exit_code, kExitUsage) << Describe(malformed);
  EXPECT_NE(malformed.err.find("64 hexadecimal"), std::string::npos);
  EXPECT_EQ(TotalKeys(), 1);
}

// ---------------------------------------------------------------- bad stores

TEST_F(CliTest, ReadOnlyDatabaseFile) {
  MustRun({"pool", "create", "p", "--provider", "openai"});
  MustRun({"keys", "import", "--pool", "p"}, Lines({kSecrets[0]}));
  // chmod 0444 does not stop root, and the tests run as root: the child drops to `nobody`
  // before exec, for whom the 0444 file really is read-only. The directory stays writable so
  // that only the database file is read-only (the -shm/-wal files can be created).
  ASSERT_EQ(::chmod(location_->dir().c_str(), 0777), 0);
  ASSERT_EQ(::chmod(store_.c_str(), 0444), 0);
  RunOptions options;
  options.env = env_;
  options.env["ASAN_OPTIONS"] = "detect_leaks=0";  // LSan cannot ptrace as nobody
  options.stdin_data = Lines({kSecrets[1]});
  std::string bin = KEYGATE_BIN;
  if (::geteuid() == 0) {
    options.run_as_uid = 65534;
    // `nobody` must reach the binary, and the checkout may sit below a directory only root can
    // enter (a `mktemp -d` clone is 0700): run a link to it (or a copy) from the store's directory.
    bin = location_->dir() + "/keygate";
    std::error_code ec;
    std::filesystem::create_hard_link(KEYGATE_BIN, bin, ec);
    if (ec) std::filesystem::copy_file(KEYGATE_BIN, bin, ec);
    ASSERT_FALSE(ec) << ec.message();
  }
  RunResult r = RunBinary(bin, {"--store", store_, "keys", "import", "--pool", "p"}, options);
  EXPECT_NE(r.exit_code, kExitOk) << Describe(r);
  EXPECT_EQ(r.exit_code, kExitStoreUnusable) << Describe(r);
  EXPECT_NE(r.err.find("readonly"), std::string::npos) << Describe(r);
  ASSERT_EQ(::chmod(store_.c_str(), 0644), 0);
  EXPECT_EQ(TotalKeys(), 1);
}

TEST_F(CliTest, LockedDatabase) {
  MustRun({"pool", "create", "p", "--provider", "openai"});
  MustRun({"keys", "import", "--pool", "p"}, Lines({kSecrets[0]}));
  // Another connection holds the write lock for the whole command.
  sqlite3* holder = nullptr;
  ASSERT_EQ(sqlite3_open(store_.c_str(), &holder), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(holder, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr), SQLITE_OK);
  RunResult r = Run({"keys", "import", "--pool", "p"}, Lines({kSecrets[1]}),
                    {{"KEYGATE_SQLITE_BUSY_TIMEOUT_MS", "200"}});
  EXPECT_EQ(r.exit_code, kExitError) << Describe(r);
  EXPECT_NE(r.err.find("locked"), std::string::npos) << Describe(r);
  EXPECT_LT(r.seconds, 10.0);
  RunResult rotate = Run({"rotate", "--pool", "p", "--key", "1"}, "",
                         {{"KEYGATE_SQLITE_BUSY_TIMEOUT_MS", "200"}});
  EXPECT_EQ(rotate.exit_code, kExitError) << Describe(rotate);
  sqlite3_exec(holder, "ROLLBACK", nullptr, nullptr, nullptr);
  sqlite3_close(holder);
  EXPECT_EQ(TotalKeys(), 1);
  EXPECT_EQ(Counts().at("active"), 1);
  RunResult bad_timeout =
      Run({"keys", "list"}, "", {{"KEYGATE_SQLITE_BUSY_TIMEOUT_MS", "soon"}});
  EXPECT_EQ(bad_timeout.exit_code, kExitUsage) << Describe(bad_timeout);
}

TEST_F(CliTest, StoreFromANewerSchemaVersion) {
  MustRun({"pool", "create", "p", "--provider", "openai"});
  Sql("INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'future', 0)");
  for (std::vector<std::string> args : std::vector<std::vector<std::string>>{
           {"pool", "list"}, {"keys", "import", "--pool", "p"}, {"serve"}}) {
    RunResult r = Run(args, Lines({kSecrets[0]}));
    EXPECT_EQ(r.exit_code, kExitStoreUnusable) << Describe(r);
    EXPECT_NE(r.err.find("schema version 999, newer than this keygate"), std::string::npos)
        << Describe(r);
  }
  Sql("DELETE FROM schema_migrations WHERE version = 999");
  EXPECT_EQ(TotalKeys(), 0);
}

TEST_F(CliTest, NotADatabase) {
  std::ofstream(store_) << "this is not a database, just a text file that happens to be here\n";
  RunResult r = Run({"pool", "list"});
  EXPECT_NE(r.exit_code, kExitOk) << Describe(r);
  EXPECT_EQ(r.err.rfind("keygate: error: ", 0), 0u) << Describe(r);
}

TEST_F(CliTest, UnreachablePostgres) {
  store_ = "postgresql://postgres@127.0.0.1:1/keygate";
  RunResult r = Run({"pool", "list"});
  EXPECT_EQ(r.exit_code, kExitError) << Describe(r);
  EXPECT_NE(r.err.find("cannot connect to PostgreSQL"), std::string::npos) << Describe(r);
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "one line: " << r.err;
  EXPECT_LT(r.seconds, 10.0);
  // Without a master key a PostgreSQL store has no default key file: a clear error first.
  env_.erase("KEYGATE_MASTER_KEY");
  RunResult nokey = Run({"pool", "list"});
  EXPECT_EQ(nokey.exit_code, kExitStoreUnusable) << Describe(nokey);
  EXPECT_NE(nokey.err.find("KEYGATE_MASTER_KEY_FILE"), std::string::npos);
}

// ---------------------------------------------------------------- serve

TEST_F(CliTest, ServeListensAndExitsZeroOnSigterm) {
  MustRun({"pool", "create", "p", "--provider", "openai"});
  MustRun({"keys", "import", "--pool", "p"}, Lines({kSecrets[0], kSecrets[1]}));
  RunOptions options;
  options.env = env_;
  int err_fd = -1;
  pid_t pid = StartBinary(KEYGATE_BIN, {"--store", store_, "serve", "--listen", "127.0.0.1:0"},
                          options, &err_fd);
  ASSERT_GT(pid, 0);
  std::string err;
  char buf[4096];
  // Wait (bounded) for the ready line.
  for (int i = 0; i < 300 && err.find("no client keys yet") == std::string::npos; ++i) {
    pollfd p{err_fd, POLLIN, 0};
    if (::poll(&p, 1, 100) > 0) {
      ssize_t n = ::read(err_fd, buf, sizeof buf);
      if (n <= 0) break;
      err.append(buf, n);
    }
  }
  ASSERT_NE(err.find("keygate: listening on http://127.0.0.1:"), std::string::npos) << err;
  EXPECT_NE(err.find("1 pools, 2 active keys"), std::string::npos) << err;
  EXPECT_NE(err.find("no client keys yet"), std::string::npos) << err;
  ASSERT_EQ(::kill(pid, SIGTERM), 0);
  EXPECT_EQ(WaitForExit(pid), 0);
  ::close(err_fd);
}

// ---------------------------------------------------------------- PostgreSQL

class CliPgTest : public CliTest {
 protected:
  void SetUp() override {
    auto loc = StoreLocation::Create(StoreKind::kPostgres);
    ASSERT_TRUE(loc.ok()) << loc.status().ToString();
    location_ = std::move(loc).value();
    store_ = location_->url();
    env_["KEYGATE_MASTER_KEY"] = TestMasterKeyHex();
  }
};

TEST_F(CliPgTest, postgres_ImportRotateHistoryMongo) {
  MustRun({"pool", "create", "p", "--provider", "openai"});
  MustRun({"keys", "import", "--pool", "p"}, Lines({kSecrets[0]}));
  MustRun({"keys", "import", "--pool", "p", "--backup"}, Lines({kSecrets[1]}));
  RunResult dup = Run({"keys", "import", "--pool", "p"}, Lines({kSecrets[0]}));
  EXPECT_EQ(dup.exit_code, kExitConflict) << Describe(dup);
  RunResult r = Run({"rotate", "--pool", "p", "--key", "1", "--reason", "401", "--json"});
  ASSERT_EQ(r.exit_code, kExitOk) << Describe(r);
  EXPECT_EQ(ParseJson(r.out).at("outcome"), "rotated");
  EXPECT_EQ(Run({"rotate", "--pool", "p", "--key", "1"}).exit_code, kExitAlreadyRotated);
  EXPECT_EQ(Run({"rotate", "--pool", "p", "--key", "2"}).exit_code, kExitNoBackup);
  json::value history = RunJson({"history", "rotations"});
  EXPECT_EQ(history.at("rotations").as_array().size(), 2u);
  RunResult list = MustRun({"keys", "list"});
  ExpectNoSecret(list, kSecrets);

  MustRun({"import", "mongo", Fixture("mongo")});
  const std::string before = MustRun({"keys", "list", "--json"}).out;
  MustRun({"import", "mongo", Fixture("mongo")});
  EXPECT_EQ(MustRun({"keys", "list", "--json"}).out, before);
  EXPECT_EQ(Counts("factory").at("total"), 8);

  RunResult wrong = Run({"pool", "list"}, "", {{"KEYGATE_MASTER_KEY", kOtherMasterKey}});
  EXPECT_EQ(wrong.exit_code, kExitStoreUnusable) << Describe(wrong);
}

}  // namespace
}  // namespace keygate::testing
