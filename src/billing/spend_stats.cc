#include "billing/spend_stats.h"

#include <algorithm>
#include <map>

namespace keygate::billing {

StatusOr<std::vector<PoolSpendStats>> ComputeSpendStats(store::Store& store,
                                                        const config::Config& config,
                                                        std::string_view pool) {
  std::vector<store::Pool> pools;
  if (pool.empty()) {
    KG_ASSIGN_OR_RETURN(pools, store.ListPools());
  } else {
    KG_ASSIGN_OR_RETURN(store::Pool p, store.GetPool(pool));
    pools.push_back(std::move(p));
  }
  std::map<std::string, PoolSpendStats> by_name;
  for (const store::Pool& p : pools) {
    const config::PoolConfig* pc = config.FindPool(p.name);
    const std::optional<int64_t> pool_budget = pc ? pc->budget_micros : std::nullopt;
    PoolSpendStats& s = by_name[p.name];
    s.pool = p.name;
    for (store::KeyState state : {store::KeyState::kActive, store::KeyState::kCooling}) {
      KG_ASSIGN_OR_RETURN(std::vector<store::UpstreamKey> keys,
                          store.ListKeys({.pool_id = p.id, .state = state}));
      for (const store::UpstreamKey& k : keys) {
        const std::optional<int64_t> budget = k.budget_micros ? k.budget_micros : pool_budget;
        const SpendBand band = BandOf(k.spend_micros, budget);
        ++s.by_band[static_cast<size_t>(band)];
        ++s.keys;
        s.spend_micros += k.spend_micros;
        s.key_spend.push_back({.key_id = k.id,
                               .masked = k.masked,
                               .label = k.label,
                               .state = k.state,
                               .spend_micros = k.spend_micros,
                               .budget_micros = budget,
                               .pool_budget = !k.budget_micros && budget.has_value(),
                               .band = band});
      }
    }
    std::sort(s.key_spend.begin(), s.key_spend.end(),
              [](const KeySpend& a, const KeySpend& b) { return a.key_id < b.key_id; });
  }
  std::vector<PoolSpendStats> out;
  for (auto& [name, s] : by_name) out.push_back(std::move(s));
  return out;
}

}  // namespace keygate::billing
