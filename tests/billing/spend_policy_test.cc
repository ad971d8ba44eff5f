// The spend checker's decision: boundaries, unknown budgets, and a key hovering at the threshold.
#include <gtest/gtest.h>

#include <cmath>

#include "billing/spend_policy.h"

namespace keygate::billing {
namespace {

TEST(SpendPolicy, Table) {
  struct Case {
    int64_t spend;
    std::optional<int64_t> budget;
    double threshold;
    bool exceeded;
    bool rotate;
    std::string_view reason;
  } cases[] = {
      {0, 10'000'000, 0.95, false, false, ""},
      {9'499'999, 10'000'000, 0.95, false, false, ""},                       // just below
      {9'500'000, 10'000'000, 0.95, false, true, kReasonProactiveThreshold},  // at the threshold
      {9'999'999, 10'000'000, 0.95, false, true, kReasonProactiveThreshold},
      {10'000'000, 10'000'000, 0.95, false, true, kReasonBudgetExceeded},  // at the budget
      {12'000'000, 10'000'000, 0.95, false, true, kReasonBudgetExceeded},
      {10'000'000, std::nullopt, 0.95, false, false, ""},  // unknown budget: nothing
      {10'000'000, 0, 0.95, false, false, ""},             // zero budget: no limit
      {0, std::nullopt, 0.95, true, true, kReasonBudgetExceeded},  // the upstream said so
      {1, 10'000'000, 0.95, true, true, kReasonBudgetExceeded},
      {9'999'999, 10'000'000, 1.0, false, false, ""},  // threshold 1: only at the budget
      {8'999'999, 10'000'000, 0.9, false, false, ""},
      {9'000'000, 10'000'000, 0.9, false, true, kReasonProactiveThreshold},
      {3, 3, 0.95, false, true, kReasonBudgetExceeded},  // tiny budgets
      {2, 3, 0.95, false, false, ""},                    // 2 < 2.85
      // Huge values do not overflow the comparison.
      {INT64_MAX - 1, INT64_MAX, 0.95, false, true, kReasonProactiveThreshold},
      {INT64_MAX / 2, INT64_MAX, 0.95, false, false, ""},
  };
  for (const Case& c : cases) {
    SpendDecision d = DecideSpend(c.spend, c.budget, c.threshold, c.exceeded);
    EXPECT_EQ(d.rotate, c.rotate) << c.spend << " of " << c.budget.value_or(-1);
    EXPECT_EQ(d.reason, c.reason) << c.spend << " of " << c.budget.value_or(-1);
  }
}

TEST(SpendPolicy, ThresholdOutOfRangeIsClamped) {
  EXPECT_TRUE(DecideSpend(10, 10, 7.0).rotate);
  EXPECT_FALSE(DecideSpend(9, 10, 7.0).rotate) << "clamped to 1";
  EXPECT_TRUE(DecideSpend(1, 1'000'000, -1).rotate) << "clamped to the smallest fraction";
  EXPECT_EQ(DecideSpend(9'500'000, 10'000'000, std::nan("")).reason, kReasonProactiveThreshold)
      << "NaN falls back to the default";
}

// A key whose spend wobbles around 95 % decides the same way each time for the same numbers: the
// decision is a function of the reading, so only the checker's state (the key is retired after
// the first rotation) keeps it from being rotated twice. See spend_checker_test.
TEST(SpendPolicy, HoveringAtTheThresholdIsStable) {
  const int64_t budget = 10'000'000;
  for (int64_t spend : {9'499'990, 9'500'000, 9'499'999, 9'500'001, 9'500'000}) {
    SpendDecision d = DecideSpend(spend, budget, 0.95);
    EXPECT_EQ(d.rotate, spend >= 9'500'000) << spend;
  }
}

TEST(SpendPolicy, Bands) {
  EXPECT_EQ(BandOf(0, 100), SpendBand::kUnder50);
  EXPECT_EQ(BandOf(49, 100), SpendBand::kUnder50);
  EXPECT_EQ(BandOf(50, 100), SpendBand::k50To85);
  EXPECT_EQ(BandOf(85, 100), SpendBand::k85To95);
  EXPECT_EQ(BandOf(94, 100), SpendBand::k85To95);
  EXPECT_EQ(BandOf(95, 100), SpendBand::kOver95);
  EXPECT_EQ(BandOf(200, 100), SpendBand::kOver95);
  EXPECT_EQ(BandOf(5, std::nullopt), SpendBand::kUnknown);
  EXPECT_EQ(SpendBandName(SpendBand::k85To95), "85-95");
}

}  // namespace
}  // namespace keygate::billing
