#include "billing/price.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace keygate::billing {

namespace {
int64_t ToMillionths(double v) {
  if (!(v > 0)) return 0;  // also NaN
  long double scaled = std::llround(static_cast<long double>(v) * 1'000'000.0L);
  return scaled >= static_cast<long double>(std::numeric_limits<int64_t>::max())
             ? std::numeric_limits<int64_t>::max()
             : static_cast<int64_t>(scaled);
}
}  // namespace

Price Price::FromUsdPerMTok(double input, double output, double cache_write, double cache_read,
                            double multiplier) {
  return Price{.input = ToMillionths(input),
               .output = ToMillionths(output),
               .cache_write = ToMillionths(cache_write),
               .cache_read = ToMillionths(cache_read),
               .multiplier_ppm = ToMillionths(multiplier)};
}

int64_t CostMicros(const Price& price, const Tokens& tokens) {
  using u128 = unsigned __int128;
  auto term = [](int64_t n, int64_t p) -> u128 {
    return static_cast<u128>(std::max<int64_t>(n, 0)) * static_cast<u128>(std::max<int64_t>(p, 0));
  };
  // Σ tokens × µUSD/MTok: < 4 × 2^63 × 2^63 would overflow only for absurd inputs; each factor
  // is at most 2^63, so a term fits in 126 bits and the sum of four in 128.
  u128 sum = term(tokens.input, price.input) + term(tokens.output, price.output) +
             term(tokens.cache_read, price.cache_read) + term(tokens.cache_write, price.cache_write);
  const u128 mult = static_cast<u128>(std::max<int64_t>(price.multiplier_ppm, 0));
  constexpr u128 kScale = 1'000'000'000'000ULL;  // 10^6 (per MTok) × 10^6 (ppm)
  const u128 kMax = static_cast<u128>(std::numeric_limits<int64_t>::max());
  if (sum == 0 || mult == 0) return 0;
  // ceil(sum × mult / 10^12) without overflowing: split sum = q × 10^12 + r.
  u128 q = sum / kScale, r = sum % kScale;
  if (q != 0 && q > kMax / mult) return std::numeric_limits<int64_t>::max();
  u128 whole = q * mult;                      // ≤ INT64_MAX
  u128 part = (r * mult + kScale - 1) / kScale;  // r × mult < 10^12 × 2^63: fits
  u128 total = whole + part;
  return total > kMax ? std::numeric_limits<int64_t>::max() : static_cast<int64_t>(total);
}

}  // namespace keygate::billing
