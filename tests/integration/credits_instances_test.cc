// Credits and limits with real processes on one PostgreSQL: two `keygate serve` instances share
// a client key's RPM limit exactly (the reservation transaction locks the key's row), and an
// instance killed with SIGKILL while holding reservations leaves them to the other instance's
// sweep: every reserved amount comes back, no usage record appears for the killed requests,
// nothing is billed twice.
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <regex>
#include <thread>

#include "tests/fakes/upstream_stub.h"
#include "tests/integration/deployment.h"
#include "tests/testing/http_client.h"
#include "tests/testing/store_env.h"

namespace keygate::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr char kChat[] =
    R"({"model":"gpt-sdk","max_tokens":100,"messages":[{"role":"user","content":"hi"}]})";
// (2 + 64) input tokens × $2/MTok + 100 output tokens × $10/MTok.
constexpr int64_t kEstimate = 66 * 2 + 100 * 10;

class CreditsInstancesTest : public ::testing::TestWithParam<StoreKind> {
 protected:
  void SetUp() override {
    auto location = StoreLocation::Create(GetParam());
    ASSERT_TRUE(location.ok()) << location.status().ToString();
    location_ = std::move(location).value();
    ASSERT_TRUE(stub_.Start());
    store_ = std::move(OpenTestStore(location_->url())).value();
  }
  void TearDown() override {
    a_.reset();
    b_.reset();
    stub_.Stop();
  }

  // `keygate clients create NAME FLAGS...`: the key it printed.
  std::string Client(const std::string& name, std::vector<std::string> flags) {
    flags.insert(flags.begin(), {"clients", "create", name});
    RunResult r = MustCli(location_->url(), flags);
    std::smatch m;
    static const std::regex kKey("kg-[0-9a-f]{64}");
    EXPECT_TRUE(std::regex_search(r.out, m, kKey)) << r.out << r.err;
    return m.str();
  }

  void StartBoth(const std::string& store_extra) {
    const std::string dir = location_->dir();
    ASSERT_TRUE(WriteFile(dir + "/kg.toml", ConfigText(stub_.base_url(), "", store_extra)));
    a_ = std::make_unique<KeygateProcess>(location_->url(), dir + "/kg.toml", dir + "/a.log");
    b_ = std::make_unique<KeygateProcess>(location_->url(), dir + "/kg.toml", dir + "/b.log");
    ASSERT_TRUE(a_->ok()) << a_->Log();
    ASSERT_TRUE(b_->ok()) << b_->Log();
  }

  int64_t Balance(const std::string& name) {
    const std::vector<store::ClientKey> keys = *store_->ListClientKeys();
    for (const auto& k : keys) {
      if (k.name == name) return k.credits_micros.value_or(-1);
    }
    return -1;
  }

  std::unique_ptr<StoreLocation> location_;
  UpstreamStub stub_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<KeygateProcess> a_, b_;
};

// 40 requests, 20 through each instance at once, on a key allowed 10 per minute: exactly 10
// pass, 30 get 429 with a Retry-After of at most a minute.
TEST_P(CreditsInstancesTest, RpmLimitHoldsAcrossTwoInstances) {
  MustCli(location_->url(), {"pool", "create", "main", "--provider", "stub"});
  MustCli(location_->url(), {"keys", "import", "--pool", "main"}, "sk-inst-ok-aaaaaaaaaaaa\n");
  std::string token = Client("shared", {"--rpm", "10", "--credits", "5"});
  StartBoth("");
  // The limit is per fixed minute: start well inside one, so the run cannot straddle two.
  auto ms_into_minute = [] {
    return std::chrono::duration_cast<milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
               .count() %
           60'000;
  };
  if (ms_into_minute() > 40'000) {
    std::this_thread::sleep_for(milliseconds(60'000 - ms_into_minute() + 200));
  }
  std::atomic<int> ok{0}, limited{0}, other{0};
  std::atomic<int64_t> max_retry{0};
  std::vector<std::thread> threads;
  for (KeygateProcess* kg : {a_.get(), b_.get()}) {
    for (int i = 0; i < 20; ++i) {
      threads.emplace_back([&, kg] {
        HttpResponse r = HttpPost(kg->base_url() + "/v1/chat/completions", token, kChat);
        if (r.status == 200) {
          ok++;
        } else if (r.status == 429 && r.body.find("(rpm)") != std::string::npos) {
          limited++;
          int64_t retry = std::stoll(r.headers["retry-after"]);
          int64_t prev = max_retry.load();
          while (retry > prev && !max_retry.compare_exchange_weak(prev, retry)) {
          }
        } else {
          other++;
        }
      });
    }
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 10);
  EXPECT_EQ(limited.load(), 30);
  EXPECT_EQ(other.load(), 0);
  EXPECT_LE(max_retry.load(), 60);
  EXPECT_GE(max_retry.load(), 1);
}

// Instance A is killed (SIGKILL) while five requests hold reservations (the upstream delays its
// first byte). Instance B's sweep releases them once expired: the balance is whole again, no
// usage record exists for them, and B then bills new requests normally.
TEST_P(CreditsInstancesTest, KilledInstanceReservationsAreReleasedNotBilled) {
  MustCli(location_->url(), {"pool", "create", "main", "--provider", "stub"});
  // "-slow-": the stub holds the first byte 1.5 s, time enough to kill A with requests in flight.
  MustCli(location_->url(), {"keys", "import", "--pool", "main"}, "sk-inst-slow-aaaaaaaaaaa\n");
  std::string token = Client("victim", {"--credits", "1"});
  StartBoth("reservation_ttl_ms = 3000\nreservation_sweep_ms = 200\n");
  ASSERT_EQ(Balance("victim"), 1'000'000);

  std::vector<std::thread> threads;
  for (int i = 0; i < 5; ++i) {
    threads.emplace_back([&] {
      (void)HttpPost(a_->base_url() + "/v1/chat/completions", token, kChat);  // cut by the kill
    });
  }
  ASSERT_TRUE(WaitFor([&] { return *store_->CountReservations() == 5; }, seconds(30)))
      << "reservations: " << *store_->CountReservations();
  a_->Signal(SIGKILL);
  EXPECT_EQ(a_->Wait(seconds(10)), 128 + SIGKILL);
  for (auto& t : threads) t.join();
  EXPECT_EQ(Balance("victim"), 1'000'000 - 5 * kEstimate) << "held by the dead instance";

  ASSERT_TRUE(WaitFor([&] { return *store_->CountReservations() == 0; }, seconds(30)))
      << "B's sweep releases them after reservation_ttl_ms";
  EXPECT_EQ(Balance("victim"), 1'000'000) << "every reserved amount came back";
  EXPECT_EQ(store_->ListUsage({.limit = 100})->size(), 0u) << "no killed request was billed";

  // B bills as usual: 11 + 7 tokens of the stub at $2 / $10.
  HttpResponse r = HttpPost(b_->base_url() + "/v1/chat/completions", token, kChat);
  ASSERT_EQ(r.status, 200) << r.body;
  ASSERT_TRUE(WaitFor([&] { return store_->ListUsage({.limit = 100})->size() == 1; }, seconds(10)));
  EXPECT_EQ(Balance("victim"), 1'000'000 - (11 * 2 + 7 * 10));
  EXPECT_EQ(*store_->CountReservations(), 0);
}

INSTANTIATE_TEST_SUITE_P(Stores, CreditsInstancesTest,
                         ::testing::Values(StoreKind::kPostgres, StoreKind::kSqlite),
                         [](const auto& info) { return StoreKindName(info.param); });

}  // namespace
}  // namespace keygate::testing
