// The pure parts of the client-key and report operations: settings as typed (CLI flags and API
// fields alike) to a store update, usage groups and bounds. The operations themselves run against
// real stores in tests/admin and tests/cli.
#include <gtest/gtest.h>

#include "common/strings.h"
#include "ops/ops.h"

namespace keygate::ops {
namespace {

TEST(ClientSettingsTest, AmountsAreIntegerMicroUsdAndClearsAreExplicit) {
  auto u = ParseClientSettings({.credits = "12.345678",
                                .add_credits = "-0.5",
                                .models = "a, b,,",
                                .rpm = "60",
                                .tpm = "none",
                                .expires = "2030-01-01",
                                .caps = {"gpt=2", "*=none"}},
                               "--");
  ASSERT_TRUE(u.ok()) << u.status().ToString();
  EXPECT_EQ(u->credits_micros, std::optional<std::optional<int64_t>>(12'345'678));
  EXPECT_EQ(u->add_credits_micros, -500'000);
  EXPECT_EQ(*u->allowed_models, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(u->rpm_limit, std::optional<std::optional<int64_t>>(60));
  ASSERT_TRUE(u->tpm_limit.has_value());
  EXPECT_FALSE(u->tpm_limit->has_value()) << "none clears the limit";
  EXPECT_FALSE(u->concurrency_limit.has_value()) << "not given: unchanged";
  EXPECT_EQ(**u->expires_at_ms, *ParseTimeMs("2030-01-01"));
  ASSERT_EQ(u->caps.size(), 2u);
  EXPECT_EQ(u->caps[0].cap_micros, 2'000'000);
  EXPECT_LT(u->caps[1].cap_micros, 0) << "MODEL=none removes the cap";

  auto unlimited = ParseClientSettings({.credits = "unlimited", .models = "*"}, "");
  ASSERT_TRUE(unlimited.ok());
  ASSERT_TRUE(unlimited->credits_micros.has_value()) << "given";
  EXPECT_FALSE(unlimited->credits_micros->has_value()) << "unlimited";
  EXPECT_TRUE(unlimited->allowed_models->empty()) << "* = every model";
}

TEST(ClientSettingsTest, ErrorsNameTheSettingTheWayItWasGiven) {
  auto flag = ParseClientSettings({.credits = "lots"}, "--");
  EXPECT_EQ(flag.status().message(), "--credits must be an amount in USD, not 'lots'");
  auto field = ParseClientSettings({.rpm = "-1"}, "");
  EXPECT_EQ(field.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(field.status().message().rfind("rpm must be", 0), 0u) << field.status().message();
  EXPECT_FALSE(ParseClientSettings({.expires = "soon"}, "").ok());
  EXPECT_FALSE(ParseClientSettings({.caps = {"=1"}}, "").ok());
  EXPECT_FALSE(ParseClientSettings({.caps = {"gpt"}}, "").ok());
  EXPECT_FALSE(ParseClientSettings({.caps = {"gpt=-1"}}, "").ok());
}

TEST(UsageReportParamsTest, GroupsAndBounds) {
  EXPECT_EQ(*ParseUsageGroup("model, day,model"), (std::vector<std::string>{"model", "day"}));
  EXPECT_TRUE(ParseUsageGroup("")->empty());
  EXPECT_FALSE(ParseUsageGroup("day,colour").ok());
  // A date includes its whole day; a time is the exclusive bound itself.
  EXPECT_EQ(*ParseUsageUntil("2026-11-30"), *ParseTimeMs("2026-12-01"));
  EXPECT_EQ(*ParseUsageUntil("2026-11-30T12:00:00Z"), *ParseTimeMs("2026-11-30T12:00:00Z"));
  EXPECT_FALSE(ParseUsageUntil("tomorrow").has_value());
}

TEST(TrafficParamsTest, DurationsWindowsAndErrorsNamedAsGiven) {
  EXPECT_EQ(ParseDurationMs("90s"), 90'000);
  EXPECT_EQ(ParseDurationMs("15m"), 900'000);
  EXPECT_EQ(ParseDurationMs("6h"), 21'600'000);
  EXPECT_EQ(ParseDurationMs("1d"), 86'400'000);
  EXPECT_EQ(ParseDurationMs("500ms"), 500);
  for (const char* bad : {"", "0s", "-1m", "1", "m", "1w", "1.5h"}) {
    EXPECT_FALSE(ParseDurationMs(bad).has_value()) << bad;
  }
  const int64_t now = *ParseTimeMs("2026-11-28T12:34:56Z");
  auto def = ParseTrafficParams({}, now, "");
  ASSERT_TRUE(def.ok());
  EXPECT_EQ(def->to_ms, now);
  EXPECT_EQ(def->from_ms, now - 3'600'000) << "the last hour";
  EXPECT_EQ(def->bucket_ms, 60'000);
  auto q = ParseTrafficParams(
      {.since = "15m", .bucket = "10s", .pool = "main", .client_key_id = "7", .model = "gpt"}, now,
      "");
  ASSERT_TRUE(q.ok()) << q.status().ToString();
  EXPECT_EQ(q->from_ms, now - 900'000);
  EXPECT_EQ(q->bucket_ms, 10'000);
  EXPECT_EQ(q->pool, "main");
  EXPECT_EQ(q->client_key_id, 7);
  EXPECT_EQ(q->model, "gpt");
  auto fixed = ParseTrafficParams({.from = "2026-11-01", .to = "2026-11-02"}, now, "");
  ASSERT_TRUE(fixed.ok());
  EXPECT_EQ(fixed->to_ms - fixed->from_ms, 86'400'000);
  EXPECT_EQ(ParseTrafficParams({.bucket = "often"}, now, "--")
                .status()
                .message()
                .rfind("--bucket must be", 0),
            0u);
  EXPECT_EQ(ParseTrafficParams({.since = "1h", .from = "2026-11-01"}, now, "").status().message(),
            "give since or from, not both");
  EXPECT_FALSE(ParseTrafficParams({.to = "later"}, now, "").ok());
  EXPECT_FALSE(ParseTrafficParams({.upstream_key_id = "x"}, now, "").ok());
}

}  // namespace
}  // namespace keygate::ops
