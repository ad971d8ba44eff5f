// Two `keygate serve` processes on one store — PostgreSQL (several machines) and SQLite (several
// processes on one machine) —, both meeting the same dead keys
// (the stub answers 401 for keys named "-s401-"): each dead key is rotated exactly once, one backup
// is consumed per dead key, every client request succeeds, and each instance stops using a key the
// other one rotated — learnt through the store's pool version within store.pool_refresh_ms.
//
// Each instance has its own upstream stub (in this process), so the requests each instance sent
// with each key are counted apart.
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <map>
#include <sstream>
#include <thread>

#include "tests/fakes/upstream_stub.h"
#include "tests/integration/deployment.h"
#include "tests/testing/http_client.h"
#include "tests/testing/store_env.h"

namespace keygate::testing {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr int kRefreshMs = 200;  // store.pool_refresh_ms of ConfigText()

const std::vector<std::string> kLive = {"sk-pg-live-ok-aaaaaaaaaaaa", "sk-pg-live-ok-bbbbbbbbbbbb",
                                        "sk-pg-live-ok-cccccccccccc"};
const std::vector<std::string> kDead = {"sk-pg-dead-s401-aaaaaaaaaa", "sk-pg-dead-s401-bbbbbbbbbb"};
const std::vector<std::string> kSpare = {"sk-pg-spare-ok-aaaaaaaaaaa", "sk-pg-spare-ok-bbbbbbbbbbb",
                                         "sk-pg-spare-ok-ccccccccccc"};
const std::string kLateDead = "sk-pg-late-s401-cccccccccc";

std::string Lines(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += x + "\n";
  return s;
}

class TwoInstancesTest : public ::testing::TestWithParam<StoreKind> {
 protected:
  void SetUp() override {
    auto location = StoreLocation::Create(GetParam());
    ASSERT_TRUE(location.ok()) << location.status().ToString();
    location_ = std::move(location).value();
    ASSERT_TRUE(stub_a_.Start());
    ASSERT_TRUE(stub_b_.Start());
  }
  void TearDown() override {
    a_.reset();
    b_.reset();
    stub_a_.Stop();
    stub_b_.Stop();
  }

  // `threads` clients per instance, `per_thread` chats each, on both instances at once (or on
  // one). Returns how many answers were not 200 (and records the first few).
  int Hammer(const std::vector<KeygateProcess*>& targets, int threads, int per_thread) {
    std::atomic<int> failed{0};
    std::mutex mu;
    std::vector<std::thread> workers;
    for (KeygateProcess* kg : targets) {
      for (int t = 0; t < threads; ++t) {
        workers.emplace_back([&, kg] {
          for (int i = 0; i < per_thread; ++i) {
            HttpResponse r = HttpPost(kg->base_url() + "/v1/chat/completions", client_key_,
                                      R"({"model":"gpt-sdk","messages":[]})");
            if (r.status != 200) {
              if (failed.fetch_add(1) < 5) {
                std::lock_guard<std::mutex> lock(mu);
                ADD_FAILURE() << "status " << r.status << ": " << r.body << r.error;
              }
            }
          }
        });
      }
    }
    for (auto& w : workers) w.join();
    return failed.load();
  }

  double Metric(KeygateProcess& kg, const std::string& series) {
    return MetricValue(HttpRequest("GET", kg.base_url() + "/metrics", {}, "").body, series);
  }
  // The sum of the samples of `name` whose labels contain `label` (e.g. outcome="rotated").
  double MetricSum(KeygateProcess& kg, const std::string& name, const std::string& label) {
    std::istringstream in(HttpRequest("GET", kg.base_url() + "/metrics", {}, "").body);
    double sum = 0;
    for (std::string line; std::getline(in, line);) {
      if (line.rfind(name + "{", 0) == 0 && line.find(label) != std::string::npos) {
        sum += std::stod(line.substr(line.rfind(' ') + 1));
      }
    }
    return sum;
  }
  // Rotations the data path of both instances asked for, by outcome.
  double Rotations(const std::string& outcome) {
    const std::string label = "outcome=\"" + outcome + "\"";
    return MetricSum(*a_, "keygate_rotations_total", label) +
           MetricSum(*b_, "keygate_rotations_total", label);
  }

  std::map<std::string, int64_t> KeyIds(store::Store& store) {
    std::map<std::string, int64_t> ids;
    auto keys = store.ListKeys({.with_secrets = true});
    EXPECT_TRUE(keys.ok());
    for (const auto& k : *keys) ids[k.secret] = k.id;
    return ids;
  }

  std::unique_ptr<StoreLocation> location_;
  UpstreamStub stub_a_, stub_b_;
  std::unique_ptr<KeygateProcess> a_, b_;
  std::string client_key_;
};

TEST_P(TwoInstancesTest, SameDeadKeysAreRotatedOnceAndDroppedByBoth) {
  const std::string& url = location_->url();
  const std::string dir = location_->dir();
  MustCli(url, {"pool", "create", "main", "--provider", "stub"});
  MustCli(url, {"keys", "import", "--pool", "main"}, Lines(kLive) + Lines(kDead));
  MustCli(url, {"keys", "import", "--pool", "main", "--backup"}, Lines(kSpare));
  client_key_ = CreateClientKey(url, "two-instances");
  ASSERT_FALSE(client_key_.empty());
  ASSERT_TRUE(WriteFile(dir + "/a.toml", ConfigText(stub_a_.base_url())));
  ASSERT_TRUE(WriteFile(dir + "/b.toml", ConfigText(stub_b_.base_url())));
  a_ = std::make_unique<KeygateProcess>(url, dir + "/a.toml", dir + "/a.log");
  b_ = std::make_unique<KeygateProcess>(url, dir + "/b.toml", dir + "/b.log");
  ASSERT_TRUE(a_->ok()) << a_->Log();
  ASSERT_TRUE(b_->ok()) << b_->Log();

  auto store = std::move(OpenTestStore(url)).value();
  const int64_t pool_id = store->GetPool("main")->id;
  std::map<std::string, int64_t> id = KeyIds(*store);

  // 1. Both instances at once: each meets both dead keys (round-robin over 5 active keys).
  EXPECT_EQ(Hammer({a_.get(), b_.get()}, 6, 30), 0) << "every client request succeeds";
  for (const auto& dead : kDead) {
    EXPECT_GT(stub_a_.CountForKey(dead), 0u) << "instance A never met " << dead;
    EXPECT_GT(stub_b_.CountForKey(dead), 0u) << "instance B never met " << dead;
  }
  // Rotations run on a store thread after the 401: let them land.
  auto rotations = [&] { return store->ListRotations({.pool_id = pool_id, .limit = 100}).value(); };
  WaitFor([&] { return rotations().size() >= kDead.size(); }, seconds(10));
  std::this_thread::sleep_for(milliseconds(3 * kRefreshMs));  // room for a duplicate to appear
  std::vector<store::RotationRecord> recs = rotations();
  ASSERT_EQ(recs.size(), kDead.size()) << "exactly one rotation per dead key";
  std::set<int64_t> rotated, replacements;
  std::set<int64_t> spare_ids;
  for (const auto& s : kSpare) spare_ids.insert(id[s]);
  for (const auto& r : recs) {
    rotated.insert(r.failed_key_id);
    EXPECT_EQ(r.outcome, "rotated");
    ASSERT_TRUE(r.new_key_id.has_value());
    EXPECT_TRUE(spare_ids.count(*r.new_key_id)) << "the replacement was a backup";
    replacements.insert(*r.new_key_id);
  }
  EXPECT_EQ(rotated, (std::set<int64_t>{id[kDead[0]], id[kDead[1]]}));
  EXPECT_EQ(replacements.size(), kDead.size()) << "one distinct backup per dead key";
  // Both instances asked for both rotations: the store let one of each pair through.
  EXPECT_EQ(Rotations("rotated"), 2);
  EXPECT_EQ(Rotations("already_rotated"), 2) << "each dead key was met by both instances";
  EXPECT_EQ(Rotations("error") + Rotations("no_backup"), 0);
  auto counts = store->CountKeys(pool_id);
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ(counts->active, 5);
  EXPECT_EQ(counts->backup, 1);
  EXPECT_EQ(counts->retired, 2);
  EXPECT_EQ(counts->total(), 8) << "conservation";

  // Both instances now serve without the dead keys.
  std::this_thread::sleep_for(milliseconds(2 * kRefreshMs));
  std::map<std::string, size_t> seen_a, seen_b;
  for (const auto& dead : kDead) {
    seen_a[dead] = stub_a_.CountForKey(dead);
    seen_b[dead] = stub_b_.CountForKey(dead);
  }
  EXPECT_EQ(Hammer({a_.get(), b_.get()}, 4, 15), 0);
  for (const auto& dead : kDead) {
    EXPECT_EQ(stub_a_.CountForKey(dead), seen_a[dead]) << "A still uses " << dead;
    EXPECT_EQ(stub_b_.CountForKey(dead), seen_b[dead]) << "B still uses " << dead;
  }

  // 2. One instance rotates, the other learns it from the store: a dead key imported while both
  // run is seen active by both; A meets it and rotates it; B, idle meanwhile, must drop it from
  // its view within the refresh period and never send it upstream.
  MustCli(url, {"keys", "import", "--pool", "main"}, kLateDead + "\n");
  const std::string active = "keygate_keys{pool=\"main\",state=\"active\"}";
  const std::string retired = "keygate_keys{pool=\"main\",state=\"retired\"}";
  ASSERT_TRUE(
      WaitFor([&] { return Metric(*a_, active) == 6 && Metric(*b_, active) == 6; }, seconds(5)))
      << "the import was not picked up by both instances";
  const int64_t late_id = KeyIds(*store)[kLateDead];
  Clock::time_point rotated_at;
  bool late_rotated = WaitFor(
      [&] {
        HttpResponse r = HttpPost(a_->base_url() + "/v1/chat/completions", client_key_,
                                  R"({"model":"gpt-sdk","messages":[]})");
        EXPECT_EQ(r.status, 200) << r.body;
        for (const auto& rec : rotations()) {
          if (rec.failed_key_id == late_id) return true;
        }
        return false;
      },
      seconds(10));
  rotated_at = Clock::now();
  ASSERT_TRUE(late_rotated) << a_->Log();
  EXPECT_GT(stub_a_.CountForKey(kLateDead), 0u);
  bool picked_up = WaitFor([&] { return Metric(*b_, retired) == 3; }, seconds(5));
  double pickup_s = std::chrono::duration<double>(Clock::now() - rotated_at).count();
  EXPECT_TRUE(picked_up) << "B never saw A's rotation";
  EXPECT_LT(pickup_s, (kRefreshMs + 1000) / 1000.0) << "B saw A's rotation late";
  EXPECT_EQ(Hammer({b_.get()}, 4, 15), 0);
  EXPECT_EQ(stub_b_.CountForKey(kLateDead), 0u) << "B used a key A had rotated";

  recs = rotations();
  EXPECT_EQ(recs.size(), kDead.size() + 1) << "still one rotation per dead key";
  EXPECT_EQ(Rotations("rotated"), 3);
  EXPECT_EQ(Rotations("already_rotated"), 2) << "B never asked to rotate the late key";
  counts = store->CountKeys(pool_id);
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ(counts->active, 6) << "3 live keys, 3 replacements";
  EXPECT_EQ(counts->backup, 0);
  EXPECT_EQ(counts->retired, 3);
  EXPECT_EQ(counts->total(), 9) << "conservation: 8 keys and the one imported";
  std::printf(
      "two instances: %zu rotations for %zu dead keys; B saw A's rotation %.3f s after it "
      "was stored (pool_refresh_ms %d); requests with dead keys: A %zu, B %zu\n",
      recs.size(), kDead.size() + 1, pickup_s, kRefreshMs,
      stub_a_.CountForKey(kDead[0]) + stub_a_.CountForKey(kDead[1]) +
          stub_a_.CountForKey(kLateDead),
      stub_b_.CountForKey(kDead[0]) + stub_b_.CountForKey(kDead[1]));

  a_->Signal(SIGTERM);
  b_->Signal(SIGTERM);
  EXPECT_EQ(a_->Wait(seconds(30)), 0) << a_->Log();
  EXPECT_EQ(b_->Wait(seconds(30)), 0) << b_->Log();
}

// Test names end in /sqlite and /postgres; the PostgreSQL one gets the `pg` fixture.
INSTANTIATE_TEST_SUITE_P(Stores, TwoInstancesTest,
                         ::testing::Values(StoreKind::kSqlite, StoreKind::kPostgres),
                         [](const ::testing::TestParamInfo<StoreKind>& info) {
                           return StoreKindName(info.param);
                         });

}  // namespace
}  // namespace keygate::testing
