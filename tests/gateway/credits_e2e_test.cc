// Credits end to end, in-process: the real gateway (App) on a SQLite store, a real upstream stub
// on loopback and real HTTP clients (libcurl), many at once. Shows: reservation before
// forwarding, 402 in each provider's shape, exact settlement (balance spent = Σ usage costs),
// streams billed from reported usage or, when broken, from what was delivered, the overspend
// bound, and that 200 concurrent requests on a balance covering 20 admit exactly 20.
#include <gtest/gtest.h>

#include <atomic>
#include <sstream>
#include <thread>

#include "config/config.h"
#include "server/server.h"
#include "tests/fakes/upstream_stub.h"
#include "tests/testing/http_client.h"
#include "tests/testing/store_env.h"

namespace keygate::testing {
namespace {

constexpr char kUpstreamKey[] = "sk-credit-ok-aaaaaaaaaaaa";
// The request every test sends unless it says otherwise: 2 prompt code points, max_tokens 100.
// The reservation is (2 + 64 framing) input tokens × $2/MTok + 100 output tokens × $10/MTok
// = 132 + 1000 = 1132 µUSD.
constexpr char kChat[] =
    R"({"model":"gpt-test","max_tokens":100,"messages":[{"role":"user","content":"hi"}]})";
constexpr int64_t kEstimate = 1132;

class CreditsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(stub_.Start());
    location_ = std::move(StoreLocation::Create(StoreKind::kSqlite)).value();
    store_ = std::move(OpenTestStore(location_->url())).value();
    auto pool = store_->CreatePool("main", "stub");
    ASSERT_TRUE(pool.ok());
    ASSERT_TRUE(store_->ImportKeys(pool->id, {{.secret = kUpstreamKey}}).ok());
    auto anth = store_->CreatePool("claude", "anth");
    ASSERT_TRUE(store_->ImportKeys(anth->id, {{.secret = "sk-anth-ok-bbbbbbbbbbbb"}}).ok());
  }
  void TearDown() override {
    if (app_) app_->Shutdown();
    app_.reset();
    stub_.Stop();
  }

  // A client key; returns its token.
  std::string Client(const std::string& name, store::NewClientKey k) {
    std::string token = "kg-" + name + "-token-0123456789abcdef";
    k.name = name;
    k.key_hash = TestSecrets()->HashClientKey(token);
    k.hint = "kg-…" + name;
    auto created = store_->CreateClientKey(k);
    EXPECT_TRUE(created.ok()) << created.status().ToString();
    ids_[token] = created.ok() ? created->id : 0;
    return token;
  }

  void StartGateway() { StartGatewayWith(""); }
  void StartGatewayWith(const std::string& extra) {
    std::string text =
        "[server]\nlisten = \"127.0.0.1:0\"\nworkers = 2\n"
        "[store]\npool_refresh_ms = 100\nusage_flush_ms = 20\n"
        "[upstream]\nmax_attempts = 3\nfirst_byte_timeout_ms = 5000\n"
        "[providers.stub]\nbase_url = \"" + stub_.base_url() + "\"\n"
        "[providers.anth]\nbase_url = \"" + stub_.base_url() +
        "\"\nauth = \"x-api-key\"\nformat = \"anthropic-messages\"\n"
        "[pools.main]\nprovider = \"stub\"\n[pools.claude]\nprovider = \"anth\"\n"
        "[[models]]\nid = \"gpt-test\"\npool = \"main\"\nprice = { input = 2, output = 10 }\n"
        "[[models]]\nid = \"claude-test\"\npool = \"claude\"\nmax_tokens = 50\n"
        "price = { input = 2, output = 10 }\n"
        "[[models]]\nid = \"other\"\npool = \"main\"\nprice = { input = 2, output = 10 }\n" +
        extra;
    auto cfg = config::ParseConfig(text, "test.toml");
    ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
    std::ostringstream out;
    auto app = server::App::Start(std::move(cfg).value(), {}, *store_, TestSecrets(), out);
    ASSERT_TRUE(app.ok()) << app.status().ToString();
    app_ = std::move(app).value();
    base_ = "http://127.0.0.1:" + std::to_string(app_->port());
  }

  HttpResponse Chat(const std::string& token, const std::string& body = kChat) {
    return HttpPost(base_ + "/v1/chat/completions", token, body);
  }
  int64_t Balance(const std::string& token) {
    return store_->GetClientKey(ids_[token])->credits_micros.value_or(-1);
  }
  // Σ cost of the usage records of a client key (after Shutdown flushed them).
  int64_t Spent(const std::string& token, int* records = nullptr) {
    int64_t sum = 0;
    int n = 0;
    const std::vector<store::UsageRecord> all = *store_->ListUsage({.limit = 1'000'000});
    for (const auto& u : all) {
      if (u.client_key_id == ids_[token]) {
        sum += u.cost_micros;
        ++n;
      }
    }
    if (records) *records = n;
    return sum;
  }

  UpstreamStub stub_;
  std::unique_ptr<StoreLocation> location_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<server::App> app_;
  std::string base_;
  std::map<std::string, int64_t> ids_;
};

TEST_F(CreditsTest, ReservesSettlesExactlyAndRefusesWith402InEachShape) {
  std::string rich = Client("rich", {.credits_micros = 1'000'000});
  std::string poor = Client("poor", {.credits_micros = kEstimate - 1});
  StartGateway();

  HttpResponse ok = Chat(rich);
  ASSERT_EQ(ok.status, 200) << ok.body;
  HttpResponse refused = Chat(poor);
  EXPECT_EQ(refused.status, 402) << refused.body;
  EXPECT_NE(refused.body.find("\"type\":\"insufficient_quota\""), std::string::npos)
      << refused.body;
  EXPECT_NE(refused.body.find("insufficient credits"), std::string::npos);
  HttpResponse anth = HttpRequest(
      "POST", base_ + "/v1/messages", {{"x-api-key", poor}, {"content-type", "application/json"}},
      R"({"model":"claude-test","max_tokens":100,"messages":[{"role":"user","content":"hi"}]})");
  EXPECT_EQ(anth.status, 402) << anth.body;
  EXPECT_NE(anth.body.find("\"type\":\"error\""), std::string::npos) << anth.body;
  EXPECT_NE(anth.body.find("\"billing_error\""), std::string::npos) << anth.body;
  EXPECT_EQ(stub_.request_count(), 1u) << "refused requests never reach the upstream";

  app_->Shutdown();
  int records = 0;
  EXPECT_EQ(Spent(rich, &records), 11 * 2 + 7 * 10) << "the stub's usage, priced";
  EXPECT_EQ(store_->ListUsage({.limit = 1})->at(0).request_id, ok.headers["x-keygate-request-id"])
      << "the client's request id names its usage record";
  EXPECT_EQ(records, 1);
  EXPECT_EQ(Balance(rich), 1'000'000 - 92) << "the reservation was settled to the actual cost";
  EXPECT_EQ(Balance(poor), kEstimate - 1) << "a refusal costs nothing";
  EXPECT_EQ(*store_->CountReservations(), 0);
}

TEST_F(CreditsTest, ModelsExpiryAndSubKeys) {
  std::string parent = Client("parent", {.credits_micros = 100'000, .allowed_models = {"gpt-test"}});
  std::string expired = Client("old", {.expires_at_ms = 1000});
  std::string sub = Client("friend", {.parent_id = ids_[parent],
                                      .caps = {{.model = "gpt-test", .cap_micros = 2 * kEstimate}}});
  StartGateway();

  HttpResponse other = Chat(parent, R"({"model":"other","messages":[]})");
  EXPECT_EQ(other.status, 403) << other.body;
  EXPECT_NE(other.body.find("may not use model 'other'"), std::string::npos) << other.body;
  // The models it may not use are not listed for it, nor found one by one.
  HttpResponse list = HttpRequest("GET", base_ + "/v1/models", {{"x-api-key", parent}}, "");
  ASSERT_EQ(list.status, 200) << list.body;
  EXPECT_NE(list.body.find("\"gpt-test\""), std::string::npos) << list.body;
  EXPECT_EQ(list.body.find("\"other\""), std::string::npos) << list.body;
  EXPECT_EQ(list.body.find("\"claude-test\""), std::string::npos) << list.body;
  EXPECT_EQ(HttpRequest("GET", base_ + "/v1/models/gpt-test", {{"x-api-key", parent}}, "").status,
            200);
  EXPECT_EQ(HttpRequest("GET", base_ + "/v1/models/other", {{"x-api-key", parent}}, "").status,
            404);
  HttpResponse all = HttpRequest("GET", base_ + "/v1/models", {{"x-api-key", expired}}, "");
  EXPECT_EQ(all.status, 401) << "an expired key lists nothing";
  HttpResponse old = Chat(expired);
  EXPECT_EQ(old.status, 401) << old.body;
  EXPECT_NE(old.body.find("expired"), std::string::npos);

  // The sub-key spends the parent's credits under its own cap: two estimates fit, a third
  // (while the first two are settled to 92 each) fits too; the cap is what stops it.
  int ok = 0, capped = 0;
  for (int i = 0; i < 30; ++i) {
    HttpResponse r = Chat(sub);
    if (r.status == 200) ++ok;
    if (r.status == 402) ++capped;
  }
  EXPECT_EQ(ok + capped, 30);
  EXPECT_GT(capped, 0) << "the cap stops the sub-key";
  app_->Shutdown();
  EXPECT_EQ(Balance(parent), 100'000 - Spent(sub)) << "the parent paid for the sub-key";
  auto caps = store_->GetClientKey(ids_[sub])->caps;
  ASSERT_EQ(caps.size(), 1u);
  EXPECT_EQ(caps[0].spent_micros, Spent(sub));
  EXPECT_LE(caps[0].spent_micros, caps[0].cap_micros);
  EXPECT_EQ(Spent(sub), ok * 92);
}

// Streams: billed from the usage they report; one that breaks before its usage is billed from
// what it delivered; a client that leaves mid-stream likewise.
TEST_F(CreditsTest, StreamsAreBilledFromUsageOrFromWhatWasDelivered) {
  std::string token = Client("streamer", {.credits_micros = 1'000'000});
  StartGateway();
  std::string stream = R"({"model":"gpt-test","stream":true,"max_tokens":100,)"
                       R"("messages":[{"role":"user","content":"hi"}]})";
  HttpResponse full = Chat(token, stream);
  ASSERT_EQ(full.status, 200);
  app_->Shutdown();
  EXPECT_EQ(Spent(token), 92) << "reported usage";
  app_.reset();

  // The upstream breaks after two content events, before its usage.
  stub_.Script(kUpstreamKey, {.reset_after_events = 2});
  StartGateway();
  HttpResponse broken = Chat(token, stream);
  EXPECT_EQ(broken.status, 200) << "the stream had started";
  app_->Shutdown();
  auto usage = *store_->ListUsage({.limit = 1});
  ASSERT_EQ(usage.size(), 1u);
  // Delivered: 2 content events "tok0 ", "tok1 " (10 code points) → max(2 events, ceil(10/4))
  // = 3 output tokens; input: the estimate, 2 + 64.
  EXPECT_EQ(usage[0].output_tokens, 3);
  EXPECT_EQ(usage[0].input_tokens, 66);
  EXPECT_EQ(usage[0].cost_micros, 66 * 2 + 3 * 10);
  EXPECT_GT(usage[0].cost_micros, 0) << "never $0";
  EXPECT_LT(usage[0].cost_micros, kEstimate) << "never the whole reservation";
  app_.reset();

  // The client leaves after its first bytes of a long stream.
  stub_.Script(kUpstreamKey, {.stream_events = 200, .event_interval_ms = 5});
  StartGateway();
  HttpResponse left = HttpRequest(
      "POST", base_ + "/v1/chat/completions",
      {{"Authorization", "Bearer " + token}, {"Content-Type", "application/json"}}, stream,
      [](std::string_view) { return false; });
  app_->Shutdown();
  usage = *store_->ListUsage({.limit = 1});
  ASSERT_EQ(usage.size(), 1u);
  EXPECT_EQ(usage[0].status, 499);
  EXPECT_GT(usage[0].output_tokens, 0);
  EXPECT_GT(usage[0].cost_micros, 0);
  EXPECT_LT(usage[0].cost_micros, kEstimate);
  EXPECT_EQ(Balance(token), 1'000'000 - Spent(token)) << "every settlement adds up";
  EXPECT_EQ(*store_->CountReservations(), 0);
}

// 200 concurrent requests on a balance that covers 20: the stub reports exactly the estimated
// usage, so each admitted request costs its reservation and exactly 20 are admitted, whatever
// the interleaving; the other 180 get 402; the balance ends at exactly 0.
TEST_F(CreditsTest, TwoHundredConcurrentRequestsOnABalanceForTwenty) {
  stub_.Script(kUpstreamKey, {.first_byte_delay_ms = 200, .prompt_tokens = 66,
                              .completion_tokens = 100});
  std::string token = Client("crowd", {.credits_micros = 20 * kEstimate});
  StartGateway();
  constexpr int kRequests = 200;
  std::atomic<int> ok{0}, refused{0}, other{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kRequests; ++i) {
    threads.emplace_back([&] {
      HttpResponse r = Chat(token);
      if (r.status == 200) {
        ok++;
      } else if (r.status == 402 && r.body.find("insufficient_quota") != std::string::npos) {
        refused++;
      } else {
        other++;
      }
    });
  }
  for (auto& t : threads) t.join();
  app_->Shutdown();
  EXPECT_EQ(ok.load(), 20);
  EXPECT_EQ(refused.load(), 180);
  EXPECT_EQ(other.load(), 0);
  int records = 0;
  EXPECT_EQ(Spent(token, &records), 20 * kEstimate);
  EXPECT_EQ(Balance(token), 0);
  EXPECT_EQ(records, 20) << "one usage record per admitted request";
  EXPECT_EQ(*store_->CountReservations(), 0);
}

// The one way a balance goes below zero: the prompt estimate was too low (it counts prompt text
// only). The bound: each admitted request overspends by at most (actual input − estimated
// input) × input price. Here the upstream reports 500 input tokens more than estimated.
TEST_F(CreditsTest, OverspendIsBoundedByThePromptEstimate) {
  constexpr int64_t kOverrun = 500 * 2;  // 500 tokens × $2/MTok
  stub_.Script(kUpstreamKey, {.first_byte_delay_ms = 100, .prompt_tokens = 66 + 500,
                              .completion_tokens = 100});
  std::string token = Client("under", {.credits_micros = 10 * kEstimate});
  StartGateway();
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 50; ++i) {
    threads.emplace_back([&] { ok += Chat(token).status == 200 ? 1 : 0; });
  }
  for (auto& t : threads) t.join();
  app_->Shutdown();
  EXPECT_GE(ok.load(), 1);
  const int64_t balance = Balance(token);
  EXPECT_EQ(balance, 10 * kEstimate - ok.load() * (kEstimate + kOverrun)) << "ledger";
  EXPECT_EQ(Spent(token), 10 * kEstimate - balance);
  EXPECT_GE(balance, -ok.load() * kOverrun) << "within the stated bound";
  EXPECT_LE(ok.load(), 10) << "never more admitted than the balance covered at estimate";
}

// Rate limits are checked in the reservation: 429 in the OpenAI shape with a truthful
// Retry-After (the end of the current minute for RPM), and no credits are taken.
TEST_F(CreditsTest, RateLimitedWith429AndRetryAfter) {
  std::string token = Client("limited", {.credits_micros = 1'000'000, .rpm_limit = 2});
  StartGateway();
  ASSERT_EQ(Chat(token).status, 200);
  ASSERT_EQ(Chat(token).status, 200);
  HttpResponse r = Chat(token);
  // A minute boundary may pass between the requests (then the third passes): rare, and then the
  // next two requests of the new minute show the same.
  for (int i = 0; i < 2 && r.status == 200; ++i) r = Chat(token);
  ASSERT_EQ(r.status, 429) << r.body;
  EXPECT_NE(r.body.find("\"type\":\"rate_limit_exceeded\""), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("(rpm)"), std::string::npos) << r.body;
  const int64_t retry = std::stoll(r.headers["retry-after"]);
  EXPECT_GE(retry, 1);
  EXPECT_LE(retry, 60) << "the window is one minute";
  app_->Shutdown();
  EXPECT_EQ(Balance(token), 1'000'000 - Spent(token)) << "a 429 costs nothing";
  EXPECT_EQ(*store_->CountReservations(), 0);
}

// Token counting is free at Anthropic, and Claude Code calls it every turn: it needs no credits,
// reserves nothing, spends no rate limit and settles nothing. With rpm_limit 1 and no credits,
// three counts pass; the chat after them is refused for credits (402), not for the rate (429):
// the counts took none of the minute's one request.
TEST_F(CreditsTest, CountingTokensNeedsNoCreditsAndSpendsNoRateLimit) {
  std::string token = Client("counter", {.credits_micros = 0, .rpm_limit = 1});
  StartGateway();
  for (int i = 0; i < 3; ++i) {
    HttpResponse r =
        HttpRequest("POST", base_ + "/v1/messages/count_tokens",
                    {{"x-api-key", token}, {"content-type", "application/json"}},
                    R"({"model":"claude-test","messages":[{"role":"user","content":"hi"}]})");
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.body, R"({"input_tokens":11})");
  }
  HttpResponse chat = Chat(token);
  EXPECT_EQ(chat.status, 402) << chat.body;
  EXPECT_EQ(*store_->CountReservations(), 0);
  app_->Shutdown();
  int records = 0;
  EXPECT_EQ(Spent(token, &records), 0);
  EXPECT_EQ(records, 3) << "each count is recorded";
  EXPECT_EQ(Balance(token), 0);
}

TEST_F(CreditsTest, UnmeteredKeysNeverReserve) {
  std::string token = Client("free", {});
  StartGateway();
  for (int i = 0; i < 5; ++i) ASSERT_EQ(Chat(token).status, 200);
  EXPECT_EQ(*store_->CountReservations(), 0);
  app_->Shutdown();
  EXPECT_EQ(Spent(token), 5 * 92) << "usage still recorded and priced";
}

}  // namespace
}  // namespace keygate::testing

namespace keygate::testing {
namespace {

// The audit: 5,000 requests from 16 real clients at once, mixed — plain and streamed, streams the
// upstream breaks, clients that leave mid-stream, upstream errors retried on another key and
// upstream failures on every key, sub-keys under caps, a key with a concurrency limit, a balance
// that runs out. Afterwards, to the micro-dollar: for every payer, credits spent = Σ cost of the
// usage records of it and its sub-keys; Σ over everything the same; every admitted request has
// exactly one record; no reservation is left.
TEST_F(CreditsTest, AuditFiveThousandMixedRequests) {
  // Pools: "main" (an -ok- key and a -s500- key: retried on the other key), "brk" (streams reset
  // after two events), "long" (long streams, for clients that leave), "dead" (only -s500- keys).
  auto pool = [&](const std::string& name, const std::vector<std::string>& keys) {
    auto p = store_->CreatePool(name, "stub");
    ASSERT_TRUE(p.ok());
    std::vector<store::NewKey> nk;
    for (const auto& k : keys) nk.push_back({.secret = k});
    ASSERT_TRUE(store_->ImportKeys(p->id, nk).ok());
  };
  ASSERT_TRUE(store_->ImportKeys(store_->GetPool("main")->id, {{.secret = "sk-audit-s500-aaaaaaaa"}})
                  .ok());
  pool("brk", {"sk-audit-brk-ok-aaaaaaaa"});
  pool("long", {"sk-audit-lng-ok-aaaaaaaa"});
  pool("dead", {"sk-audit-s500-bbbbbbbb", "sk-audit-s500-cccccccc"});
  stub_.Script("sk-audit-brk-ok-aaaaaaaa", {.reset_after_events = 2});
  stub_.Script("sk-audit-lng-ok-aaaaaaaa", {.stream_events = 40, .event_interval_ms = 1});

  const std::vector<std::string> payers = {"p-rich", "p-poor", "p-limited"};
  std::vector<std::string> tokens;
  tokens.push_back(Client("p-rich", {.credits_micros = 50'000'000}));
  tokens.push_back(Client("p-poor", {.credits_micros = 60'000}));  // runs out: 402s
  tokens.push_back(Client("p-limited", {.credits_micros = 50'000'000, .concurrency_limit = 2}));
  tokens.push_back(Client("s-friend", {.parent_id = ids_[tokens[0]],
                                       .caps = {{.model = "gpt-test", .cap_micros = 40'000},
                                                {.model = "*", .cap_micros = 5'000'000}}}));
  tokens.push_back(Client("s-poor", {.parent_id = ids_[tokens[1]]}));
  std::map<int64_t, int64_t> initial;  // payer id -> balance
  for (const auto& name : payers) {
    for (const auto& [t, id] : ids_) {
      if (t.find(name) != std::string::npos) initial[id] = *store_->GetClientKey(id)->credits_micros;
    }
  }

  // The config of StartGateway plus the three pools' models.
  std::string extra_models =
      "[pools.brk]\nprovider = \"stub\"\n[pools.long]\nprovider = \"stub\"\n"
      "[pools.dead]\nprovider = \"stub\"\n"
      "[[models]]\nid = \"gpt-brk\"\npool = \"brk\"\nprice = { input = 2, output = 10 }\n"
      "[[models]]\nid = \"gpt-long\"\npool = \"long\"\nprice = { input = 3, output = 7 }\n"
      "[[models]]\nid = \"gpt-dead\"\npool = \"dead\"\nprice = { input = 2, output = 10 }\n";
  StartGatewayWith(extra_models);

  constexpr int kClients = 16, kEach = 5000 / kClients + 1;
  std::atomic<int> sent{0}, refused{0}, other_errors{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      for (int i = 0; i < kEach; ++i) {
        const int n = sent.fetch_add(1);
        if (n >= 5000) return;
        const std::string& token = tokens[(n / 7 + c) % tokens.size()];
        std::string body;
        bool leave = false;
        switch (n % 6) {
          case 0: body = kChat; break;
          case 1: body = R"({"model":"gpt-test","stream":true,"max_tokens":100,"messages":[{"role":"user","content":"hi"}]})"; break;
          case 2: body = R"({"model":"gpt-brk","stream":true,"max_tokens":100,"messages":[{"role":"user","content":"hello"}]})"; break;
          case 3: body = R"({"model":"gpt-long","stream":true,"max_tokens":200,"messages":[{"role":"user","content":"go"}]})"; leave = true; break;
          case 4: body = R"({"model":"gpt-dead","max_tokens":50,"messages":[{"role":"user","content":"x"}]})"; break;
          default: body = R"({"model":"gpt-long","max_tokens":80,"messages":[{"role":"user","content":"plain"}]})"; break;
        }
        HttpResponse r;
        if (leave) {
          size_t seen = 0;
          r = HttpRequest("POST", base_ + "/v1/chat/completions",
                          {{"Authorization", "Bearer " + token},
                           {"Content-Type", "application/json"}},
                          body, [&](std::string_view d) { return (seen += d.size()) < 300; });
        } else {
          r = Chat(token, body);
        }
        if (r.status == 402 || r.status == 429) {
          refused++;
        } else if (r.status != 200 && r.status != 502 && r.status != 503) {
          if (other_errors.fetch_add(1) < 3) ADD_FAILURE() << r.status << " " << r.body << r.error;
        }
      }
    });
  }
  for (auto& t : clients) t.join();
  app_->Shutdown();

  // The ledger.
  const std::vector<store::UsageRecord> records = *store_->ListUsage({.limit = 1'000'000});
  const std::vector<store::ClientKey> keys = *store_->ListClientKeys();
  std::map<int64_t, int64_t> payer_of, spent_by_payer, spent_by_key;
  for (const auto& k : keys) payer_of[k.id] = k.parent_id.value_or(k.id);
  int64_t total_records = 0, total_cost = 0;
  for (const auto& u : records) {
    ASSERT_TRUE(u.client_key_id.has_value());
    spent_by_payer[payer_of[*u.client_key_id]] += u.cost_micros;
    spent_by_key[*u.client_key_id] += u.cost_micros;
    total_cost += u.cost_micros;
    ++total_records;
  }
  int64_t total_spent = 0;
  for (const auto& [payer, before] : initial) {
    const int64_t after = *store_->GetClientKey(payer)->credits_micros;
    EXPECT_EQ(before - after, spent_by_payer[payer]) << "payer " << payer;
    EXPECT_GE(after, 0) << "the stub never reports more than the estimate";
    total_spent += before - after;
  }
  EXPECT_EQ(total_spent, total_cost) << "Σ settled = Σ usage records = credits spent";
  for (const auto& k : keys) {
    for (const auto& cap : k.caps) {
      if (cap.model == "gpt-test") {
        EXPECT_LE(cap.spent_micros, cap.cap_micros);
      }
    }
    int64_t capped = 0;
    for (const auto& cap : k.caps) capped += cap.spent_micros;
    if (!k.caps.empty()) {
      EXPECT_EQ(capped, spent_by_key[k.id]) << "caps add up for " << k.name;
    }
  }
  EXPECT_EQ(total_records, 5000 - refused.load()) << "one record per admitted request";
  EXPECT_GT(refused.load(), 0) << "the poor payer ran out, the limited key was busy";
  EXPECT_EQ(other_errors.load(), 0);
  EXPECT_EQ(*store_->CountReservations(), 0);
  std::printf("audit: %lld records, %d refused, %lld µUSD settled\n",
              static_cast<long long>(total_records), refused.load(),
              static_cast<long long>(total_cost));
}

}  // namespace
}  // namespace keygate::testing
