// The spend checker's decision, pure: given what a key has spent and its budget, rotate it or not,
// and why.
//
//   exceeded reported, or spend >= budget      -> rotate, reason "budget_exceeded"
//   spend >= threshold x budget                -> rotate, reason "proactive_threshold"
//   otherwise, or the budget is unknown        -> nothing
//
// Thread safety: pure functions.
#ifndef KEYGATE_BILLING_SPEND_POLICY_H_
#define KEYGATE_BILLING_SPEND_POLICY_H_

#include <cstdint>
#include <optional>
#include <string_view>

namespace keygate::billing {

inline constexpr double kDefaultSpendThreshold = 0.95;
inline constexpr std::string_view kReasonBudgetExceeded = "budget_exceeded";
inline constexpr std::string_view kReasonProactiveThreshold = "proactive_threshold";

struct SpendDecision {
  bool rotate = false;
  std::string_view reason;  // one of the kReason* constants when rotate; empty otherwise
};

// `threshold` is a fraction of the budget in (0, 1]; values outside are clamped into it. The
// comparison is exact in micro-USD: spend * 1e6 >= round(threshold * 1e6) * budget, so a spend
// exactly at the threshold rotates and one micro-dollar below does not. `exceeded` is the
// upstream saying so (LiteLLM's budget_exceeded), which decides even when the budget is unknown.
SpendDecision DecideSpend(int64_t spend_micros, std::optional<int64_t> budget_micros,
                          double threshold, bool exceeded = false);

// The band a key's spend falls in, as a fraction of its budget: for the per-pool stats.
enum class SpendBand { kUnder50, k50To85, k85To95, kOver95, kUnknown };
inline constexpr SpendBand kAllSpendBands[] = {SpendBand::kUnder50, SpendBand::k50To85,
                                               SpendBand::k85To95, SpendBand::kOver95,
                                               SpendBand::kUnknown};
std::string_view SpendBandName(SpendBand band);  // "lt50", "50-85", "85-95", "ge95", "unknown"
SpendBand BandOf(int64_t spend_micros, std::optional<int64_t> budget_micros);

}  // namespace keygate::billing

#endif  // KEYGATE_BILLING_SPEND_POLICY_H_
