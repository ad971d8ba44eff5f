#include "billing/spend_policy.h"

#include <algorithm>
#include <cmath>

namespace keygate::billing {

namespace {

// spend >= parts_per_million / 1e6 * budget, exactly, in 128-bit integers (spend and budget are
// micro-USD up to ~9.2e18; their product with 1e6 does not fit 64 bits).
bool AtLeast(int64_t spend, int64_t budget, int64_t parts_per_million) {
  return static_cast<__int128>(spend) * 1'000'000 >=
         static_cast<__int128>(budget) * parts_per_million;
}

}  // namespace

SpendDecision DecideSpend(int64_t spend_micros, std::optional<int64_t> budget_micros,
                          double threshold, bool exceeded) {
  if (exceeded) return {true, kReasonBudgetExceeded};
  // An unknown budget, or a zero one (nothing to compare against: "no limit" upstream), decides
  // nothing: a probe must never rotate a key on a guess.
  if (!budget_micros || *budget_micros <= 0) return {};
  if (spend_micros >= *budget_micros) return {true, kReasonBudgetExceeded};
  if (!std::isfinite(threshold)) threshold = kDefaultSpendThreshold;
  threshold = std::clamp(threshold, 1e-6, 1.0);
  const int64_t ppm = std::llround(threshold * 1e6);
  if (AtLeast(spend_micros, *budget_micros, ppm)) return {true, kReasonProactiveThreshold};
  return {};
}

std::string_view SpendBandName(SpendBand band) {
  switch (band) {
    case SpendBand::kUnder50: return "lt50";
    case SpendBand::k50To85: return "50-85";
    case SpendBand::k85To95: return "85-95";
    case SpendBand::kOver95: return "ge95";
    case SpendBand::kUnknown: return "unknown";
  }
  return "unknown";
}

SpendBand BandOf(int64_t spend_micros, std::optional<int64_t> budget_micros) {
  if (!budget_micros || *budget_micros <= 0) return SpendBand::kUnknown;
  if (AtLeast(spend_micros, *budget_micros, 950'000)) return SpendBand::kOver95;
  if (AtLeast(spend_micros, *budget_micros, 850'000)) return SpendBand::k85To95;
  if (AtLeast(spend_micros, *budget_micros, 500'000)) return SpendBand::k50To85;
  return SpendBand::kUnder50;
}

}  // namespace keygate::billing
