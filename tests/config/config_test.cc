#include <gtest/gtest.h>

#include "config/config.h"

namespace keygate::config {
namespace {

TEST(Config, EmptyFileIsTheDefaults) {
  auto c = ParseConfig("", "empty.toml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->server.listen, "127.0.0.1:8080");
  EXPECT_EQ(c->store.url, "keygate.db");
  ASSERT_NE(c->FindProvider("openai"), nullptr);
  ASSERT_NE(c->FindProvider("anthropic"), nullptr);
  EXPECT_EQ(c->FindProvider("anthropic")->auth, AuthStyle::kXApiKey);
  EXPECT_TRUE(c->models.empty());
}

TEST(Config, FullExample) {
  auto c = ParseConfig(R"(
[server]
listen = "0.0.0.0:9000"
workers = 2
max_body_bytes = 2048
busy_poll_us = 150

[store]
url = "postgresql://kg@db/kg"

[upstream]
max_attempts = 4

[providers.factory]
base_url = "https://factory.example/api/"
auth = "x-api-key"
format = "anthropic-messages"
headers = { "anthropic-version" = "2023-06-01" }

[pools.fac]
provider = "factory"
strategy = "least-in-flight"
models = ["claude-*"]

[[models]]
id = "claude-sonnet"
aliases = ["sonnet"]
pool = "fac"
upstream = [{ id = "claude-sonnet-4-5", weight = 3 }, { id = "claude-sonnet-4", weight = 1 }]
price = { input = 3, output = 15, cache_read = 0.3 }
multiplier = 1.5
)",
                       "full.toml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->server.workers, 2);
  EXPECT_EQ(c->server.busy_poll_us, 150);
  EXPECT_EQ(c->upstream.max_attempts, 4);
  const ProviderConfig* p = c->FindProvider("factory");
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->base_url, "https://factory.example/api");
  EXPECT_EQ(p->format, Format::kAnthropicMessages);
  EXPECT_EQ(p->classifier, "anthropic");
  ASSERT_EQ(p->headers.size(), 1u);
  EXPECT_EQ(c->FindPool("fac")->strategy, Strategy::kLeastInFlight);
  ASSERT_EQ(c->models.size(), 1u);
  EXPECT_EQ(c->models[0].upstream.size(), 2u);
  EXPECT_EQ(c->models[0].upstream[0].weight, 3);
  EXPECT_DOUBLE_EQ(c->models[0].price.cache_read, 0.3);
  EXPECT_DOUBLE_EQ(c->models[0].multiplier, 1.5);
}

TEST(Config, ErrorsNameTheSettingAndLine) {
  struct Case {
    const char* toml;
    const char* expect;
  } cases[] = {
      {"[server]\nlisten = 5\n", "server.listen must be a string (line 2)"},
      {"[server]\nlistn = \"x\"\n", "unknown setting server.listn (line 2)"},
      {"bogus = 1\n", "unknown setting bogus"},
      {"[server]\nworkers = -1\n", "server.workers must be an integer"},
      {"[server]\nbusy_poll_us = 200000\n", "server.busy_poll_us must be an integer"},
      {"[pools.a]\nprovider = \"nope\"\n", "unknown provider 'nope'"},
      {"[pools.a]\nprovider = \"openai\"\nstrategy = \"random\"\n", "strategy must be"},
      {"[[models]]\nid = \"m\"\npool = \"missing\"\n", "names pool 'missing'"},
      {"[pools.a]\nprovider = \"openai\"\n[[models]]\nid = \"m\"\npool = \"a\"\n[[models]]\nid = "
       "\"m\"\npool = \"a\"\n",
       "defined twice"},
      {"[providers.x]\nbase_url = \"ftp://h\"\n", "must start with http"},
      {"[providers.x]\nbase_url = \"http://h\"\nheaders = { Authorization = \"x\" }\n",
       "must not set Authorization"},
      {"[providers.x]\nbase_url = \"http://h\"\nheaders = { \"x-a\" = \"v\\r\\nInjected: 1\" }\n",
       "must not contain CR"},
      {"[server\n", "line 1"},
      {"[pools.a]\nprovider = \"openai\"\n[[models]]\nid = \"m\"\npool = \"a\"\n"
       "thinking = { low = 500 }\n",
       "models[0].thinking.low"},
      {"[pools.a]\nprovider = \"openai\"\n[[models]]\nid = \"m\"\npool = \"a\"\n"
       "thinking = { low = 4000, medium = 2000 }\n",
       "low <= medium <= high"},
      {"[pools.a]\nprovider = \"openai\"\n[[models]]\nid = \"m\"\npool = \"a\"\n"
       "thinking = { huge = 9000 }\n",
       "unknown setting"},
  };
  for (const Case& tc : cases) {
    auto c = ParseConfig(tc.toml, "t.toml");
    ASSERT_FALSE(c.ok()) << tc.toml;
    EXPECT_NE(c.status().message().find(tc.expect), std::string::npos)
        << "got: " << c.status().message() << "\nwanted: " << tc.expect;
  }
}

TEST(Config, PoolSpendSettings) {
  auto c = ParseConfig(R"(
[providers.openhands]
base_url = "https://llm-proxy.example.com"
classifier = "litellm"

[pools.oh]
provider = "openhands"
spend_probe = "litellm"
spend_threshold = 0.9
budget = "10.00"

[pools.custom]
provider = "openai"
spend_probe = "http"
spend_url = "{base}/v1/dashboard/credits"
spend_pointer = "/data/total_usage"
budget_pointer = "/data/total_granted"
budget = 25

[pools.plain]
provider = "openai"
)",
                       "spend.toml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  const PoolConfig* oh = c->FindPool("oh");
  EXPECT_EQ(oh->spend_probe, "litellm");
  EXPECT_DOUBLE_EQ(oh->spend_threshold, 0.9);
  EXPECT_EQ(oh->budget_micros, 10'000'000);
  const PoolConfig* custom = c->FindPool("custom");
  EXPECT_EQ(custom->spend_url, "{base}/v1/dashboard/credits");
  EXPECT_EQ(custom->spend_pointer, "/data/total_usage");
  EXPECT_EQ(custom->budget_pointer, "/data/total_granted");
  EXPECT_EQ(custom->budget_micros, 25'000'000);
  const PoolConfig* plain = c->FindPool("plain");
  EXPECT_TRUE(plain->spend_probe.empty()) << "no probe unless named";
  EXPECT_DOUBLE_EQ(plain->spend_threshold, 0.95);
  EXPECT_FALSE(plain->budget_micros.has_value());
}

TEST(Config, SpendCheckerSettings) {
  auto d = ParseConfig("", "empty.toml");
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE(d->spend_checker.enabled);
  EXPECT_EQ(d->spend_checker.interval_active_ms, 10'000);
  EXPECT_EQ(d->spend_checker.interval_idle_ms, 3'600'000);
  auto c = ParseConfig(R"(
[spend_checker]
enabled = false
interval_active_ms = 2000
interval_idle_ms = 600000
idle_after_ms = 60000
jitter = 0.2
lease_ttl_ms = 2000
max_in_flight = 4
probe_timeout_ms = 3000
[pools.a]
provider = "openai"
spend_probe = "ledger"
spend_interval_active_ms = 500
spend_interval_idle_ms = 60000
[pools.b]
provider = "openai"
)",
                       "s.toml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  const SpendCheckerConfig& s = c->spend_checker;
  EXPECT_FALSE(s.enabled);
  EXPECT_EQ(s.interval_active_ms, 2000);
  EXPECT_EQ(s.interval_idle_ms, 600'000);
  EXPECT_EQ(s.idle_after_ms, 60'000);
  EXPECT_DOUBLE_EQ(s.jitter, 0.2);
  EXPECT_EQ(s.lease_ttl_ms, 2000);
  EXPECT_EQ(s.max_in_flight, 4);
  EXPECT_EQ(s.probe_timeout_ms, 3000);
  EXPECT_EQ(c->FindPool("a")->spend_interval_active_ms, 500);
  EXPECT_EQ(c->FindPool("a")->spend_interval_idle_ms, 60'000);
  EXPECT_FALSE(c->FindPool("b")->spend_interval_active_ms.has_value());
}

TEST(Config, PoolSpendErrors) {
  const std::string pool = "[pools.a]\nprovider = \"openai\"\n";
  struct Case {
    std::string toml;
    const char* expect;
  } cases[] = {
      {pool + "spend_probe = \"magic\"\n", "spend_probe must be litellm, openrouter"},
      {pool + "spend_threshold = 0\n", "spend_threshold must be a fraction in (0, 1]"},
      {pool + "spend_threshold = 1.5\n", "spend_threshold must be a fraction in (0, 1]"},
      {pool + "budget = \"ten\"\n", "pools.a.budget must be a positive amount"},
      {pool + "budget = \"0\"\n", "pools.a.budget must be a positive amount"},
      {pool + "budget = -3\n", "pools.a.budget must be a positive amount"},
      {pool + "spend_probe = \"litellm\"\nspend_pointer = \"/x\"\n", "apply only to"},
      {pool + "spend_probe = \"http\"\nspend_pointer = \"/x\"\n", "spend_url must start"},
      {pool + "spend_probe = \"http\"\nspend_url = \"{base}/x\"\n", "spend_pointer must be"},
      {pool + "spend_probe = \"http\"\nspend_url = \"{base}/x\"\nspend_pointer = \"/s\"\n"
              "budget_pointer = \"b\"\n",
       "budget_pointer must be"},
      {pool + "spend_probes = \"http\"\n", "unknown setting pools.a.spend_probes"},
      {pool + "spend_interval_active_ms = 5\n", "pools.a.spend_interval_active_ms must be"},
      {"[spend_checker]\ninterval_idle = 5\n", "unknown setting spend_checker.interval_idle"},
      {"[spend_checker]\nlease_ttl_ms = 10\n", "spend_checker.lease_ttl_ms must be"},
      {"[spend_checker]\njitter = 0.9\n", "spend_checker.jitter must be from 0 to 0.5"},
      {"[spend_checker]\nenabled = \"yes\"\n", "spend_checker.enabled must be true or false"},
  };
  for (const Case& tc : cases) {
    auto c = ParseConfig(tc.toml, "t.toml");
    ASSERT_FALSE(c.ok()) << tc.toml;
    EXPECT_NE(c.status().message().find(tc.expect), std::string::npos)
        << "got: " << c.status().message() << "\nwanted: " << tc.expect;
  }
}

TEST(Config, ModelThinkingBudgets) {
  auto c = ParseConfig(
      "[pools.a]\nprovider = \"anthropic\"\n"
      "[[models]]\nid = \"m\"\npool = \"a\"\nthinking = { low = 2000, medium = 8000, high = 32000 }\n"
      "[[models]]\nid = \"d\"\npool = \"a\"\n",
      "t.toml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->models[0].thinking.low, 2000);
  EXPECT_EQ(c->models[0].thinking.medium, 8000);
  EXPECT_EQ(c->models[0].thinking.high, 32000);
  EXPECT_EQ(c->models[1].thinking.low, 1024) << "defaults";
  EXPECT_EQ(c->models[1].thinking.high, 4096);
}

TEST(Config, MissingFileIsNotFound) {
  EXPECT_EQ(LoadConfigFile("/nonexistent/keygate.toml").status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace keygate::config
