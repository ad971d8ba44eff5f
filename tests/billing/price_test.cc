// The cost rule (billing/price.h): ceil of the exact rational, once per request.
#include "billing/price.h"

#include <gtest/gtest.h>

#include <limits>

namespace keygate::billing {
namespace {

TEST(Price, FromConfigIsExactToSixDecimals) {
  Price p = Price::FromUsdPerMTok(3, 15, 3.75, 0.3, 1.0);
  EXPECT_EQ(p.input, 3'000'000);
  EXPECT_EQ(p.output, 15'000'000);
  EXPECT_EQ(p.cache_write, 3'750'000);
  EXPECT_EQ(p.cache_read, 300'000);
  EXPECT_EQ(p.multiplier_ppm, 1'000'000);
  // 0.075 and 0.1 are not exact in binary; the conversion still lands on the intended value.
  EXPECT_EQ(Price::FromUsdPerMTok(0.075, 0.1, 0, 0, 1.1).input, 75'000);
  EXPECT_EQ(Price::FromUsdPerMTok(0.075, 0.1, 0, 0, 1.1).multiplier_ppm, 1'100'000);
  EXPECT_EQ(Price::FromUsdPerMTok(-1, 0, 0, 0, 1).input, 0);
  EXPECT_TRUE(Price::FromUsdPerMTok(0, 0, 0, 0, 1).free());
  EXPECT_TRUE(Price::FromUsdPerMTok(1, 1, 0, 0, 0).free());
  EXPECT_FALSE(Price::FromUsdPerMTok(0, 0, 0, 0.01, 1).free());
}

TEST(Price, WholeAmountsAreExact) {
  Price p = Price::FromUsdPerMTok(3, 15, 3.75, 0.3, 1.0);
  // $3/MTok = 3 µUSD per token.
  EXPECT_EQ(CostMicros(p, {.input = 1000}), 3000);
  EXPECT_EQ(CostMicros(p, {.input = 1000, .output = 500}), 3000 + 7500);
  EXPECT_EQ(CostMicros(p, {.cache_read = 1000, .cache_write = 1000}), 300 + 3750);
  EXPECT_EQ(CostMicros(p, {}), 0) << "no tokens, no cost";
}

TEST(Price, RoundsUpOncePerRequestNotPerKind) {
  Price p = Price::FromUsdPerMTok(0.15, 0.6, 0, 0, 1.0);
  // 1 input token = 0.15 µUSD: any priced use costs at least 1 µUSD.
  EXPECT_EQ(CostMicros(p, {.input = 1}), 1);
  // 0.15 × 3 + 0.6 × 1 = 1.05 → 2 (per kind rounding would give 1 + 1 = 2 too, but:)
  EXPECT_EQ(CostMicros(p, {.input = 3, .output = 1}), 2);
  // 0.15 × 2 + 0.6 × 1 = 0.9 → 1 (per kind would be 1 + 1 = 2: the rule rounds the sum once).
  EXPECT_EQ(CostMicros(p, {.input = 2, .output = 1}), 1);
  // Exactly on a whole micro-dollar: no rounding up.
  EXPECT_EQ(CostMicros(p, {.input = 20}), 3);
}

TEST(Price, MultiplierIsPartOfTheExactRational) {
  Price p = Price::FromUsdPerMTok(1, 0, 0, 0, 1.5);
  EXPECT_EQ(CostMicros(p, {.input = 3}), 5) << "3 × 1.5 = 4.5 → 5";
  EXPECT_EQ(CostMicros(p, {.input = 4}), 6);
  Price tenth = Price::FromUsdPerMTok(1, 0, 0, 0, 0.1);
  EXPECT_EQ(CostMicros(tenth, {.input = 10}), 1) << "no float drift: 10 × 0.1 is exactly 1";
  EXPECT_EQ(CostMicros(Price::FromUsdPerMTok(1, 1, 1, 1, 0), {.input = 5}), 0);
}

TEST(Price, NegativeCountsAndHugeValues) {
  Price p = Price::FromUsdPerMTok(2, 4, 0, 0, 1);
  EXPECT_EQ(CostMicros(p, {.input = -5, .output = 1}), 4);
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  EXPECT_EQ(CostMicros(p, {.input = kMax, .output = kMax}), kMax) << "saturates";
  // A large but representable total stays exact: 10^12 tokens at $2/MTok = $2 000 000.
  EXPECT_EQ(CostMicros(p, {.input = 1'000'000'000'000}), 2'000'000'000'000);
  Price pricey{.input = kMax, .multiplier_ppm = 1'000'000};
  EXPECT_EQ(CostMicros(pricey, {.input = 1}), 9'223'372'036'855)
      << "one token of the largest price";
}

}  // namespace
}  // namespace keygate::billing
