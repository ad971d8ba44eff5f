// The settings of a client key as an operator types them, by flag (`keygate clients`) or by
// field (/admin/v1/client-keys); parsed by ops::ParseClientSettings (ops/ops.h). A header of its
// own so the command-line parser (cli.cc) need not include the JSON headers of ops.h.
#ifndef KEYGATE_OPS_CLIENT_SETTINGS_H_
#define KEYGATE_OPS_CLIENT_SETTINGS_H_

#include <cstdint>
#include <string>
#include <vector>

namespace keygate::ops {

// The settings of a client key as typed, by flag (CLI) or field (API); "" = not given. Amounts
// are USD decimals turned into integer micro-USD by ParseUsdToMicros (one rounding rule);
// "unlimited" / "none" / "never" / "*" clear a setting (update).
struct ClientSettings {
  std::string credits;                // balance in USD, or "unlimited"
  std::string add_credits;            // update: USD to add (negative takes back)
  std::string models;                 // "gpt-4o,claude-sonnet", or "*" for every model
  std::string rpm, tpm, concurrency;  // whole numbers, or "none"
  std::string expires;                // "2026-12-31" or "2026-12-31T12:00:00Z", or "never"
  int64_t parent = 0;                 // create: make a sub-key of this key
  std::vector<std::string> caps;      // "MODEL=USD" (MODEL may be "*"), or "MODEL=none" (update)
};

}  // namespace keygate::ops

#endif  // KEYGATE_OPS_CLIENT_SETTINGS_H_
