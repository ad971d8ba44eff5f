// Prices and the cost of a request, in integer micro-USD.
//
// A price is kept as integer micro-USD per million tokens (exact for prices given with up to six
// decimals of a dollar per MTok; the config's decimal numbers are rounded to that once, at load)
// and the multiplier as integer parts per million. The cost of a request is then an exact
// rational, and the ONE rounding rule is applied once per request:
//
//   cost_micros = ceil( Σ_kind tokens_kind × price_kind × multiplier_ppm / 10^12 )
//
// (tokens × µUSD/MTok / 10^6 = µUSD, × ppm / 10^6 = the multiplier.) Rounding up means a request
// that used any priced token costs at least one micro-dollar, and no sum of rounded costs is ever
// below the exact total. Intermediate products use 128-bit integers; the result saturates at
// INT64_MAX.
//
// Thread safety: pure values and functions.
#ifndef KEYGATE_BILLING_PRICE_H_
#define KEYGATE_BILLING_PRICE_H_

#include <cstdint>

namespace keygate::billing {

struct Price {
  // Micro-USD per million tokens (= USD per MTok × 10^6).
  int64_t input = 0, output = 0, cache_write = 0, cache_read = 0;
  int64_t multiplier_ppm = 1'000'000;  // 1.0

  // From the config's USD per MTok and multiplier (each rounded to the nearest 10^-6).
  static Price FromUsdPerMTok(double input, double output, double cache_write, double cache_read,
                              double multiplier);
  bool free() const {
    return multiplier_ppm == 0 || (input == 0 && output == 0 && cache_write == 0 && cache_read == 0);
  }
};

struct Tokens {
  int64_t input = 0;  // uncached input (cached tokens are counted below, not here)
  int64_t output = 0;
  int64_t cache_read = 0;
  int64_t cache_write = 0;
};

// The rule above. Negative token counts count as 0.
int64_t CostMicros(const Price& price, const Tokens& tokens);

}  // namespace keygate::billing

#endif  // KEYGATE_BILLING_PRICE_H_
