// Spend stats per pool: how many in-service keys (active and cooling) sit in each spend band —
// under 50 %, 50-85 %, 85-95 %, 95 % and over of their budget, or unknown — from the last known
// spend the checker stored (UpdateSpend) and the budget it decides against (the key's own, else
// the pool's `budget`). The one computation behind `keygate spend stats`, the
// `keygate_spend_keys{pool,band}` gauges and the dashboard.
//
// Thread safety: a free function; blocks on the store.
#ifndef KEYGATE_BILLING_SPEND_STATS_H_
#define KEYGATE_BILLING_SPEND_STATS_H_

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "billing/spend_policy.h"
#include "common/status.h"
#include "config/config.h"
#include "store/store.h"

namespace keygate::billing {

// One in-service key's last known spend against the budget it is judged by.
struct KeySpend {
  int64_t key_id = 0;
  std::string masked;  // never the secret
  std::string label;
  store::KeyState state = store::KeyState::kActive;
  int64_t spend_micros = 0;
  std::optional<int64_t> budget_micros;  // the key's own, else the pool's; nullopt = unknown
  bool pool_budget = false;              // budget_micros came from the pool's config
  SpendBand band = SpendBand::kUnknown;
};

struct PoolSpendStats {
  std::string pool;
  int64_t keys = 0;  // in service: active + cooling
  std::array<int64_t, std::size(kAllSpendBands)> by_band{};  // indexed like kAllSpendBands
  int64_t spend_micros = 0;  // the sum of their last known spend
  std::vector<KeySpend> key_spend;  // the same keys one by one, by id
  int64_t Count(SpendBand band) const { return by_band[static_cast<size_t>(band)]; }
};

// Every pool of the store (or only `pool`), in name order. NotFound for an unknown `pool`;
// a store error otherwise.
StatusOr<std::vector<PoolSpendStats>> ComputeSpendStats(store::Store& store,
                                                        const config::Config& config,
                                                        std::string_view pool = "");

}  // namespace keygate::billing

#endif  // KEYGATE_BILLING_SPEND_STATS_H_
