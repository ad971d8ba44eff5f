#include "billing/spend_schedule.h"

#include <algorithm>

namespace keygate::billing {

SpendIntervals IntervalsFor(const config::SpendCheckerConfig& global,
                            const config::PoolConfig& pool) {
  SpendIntervals i;
  i.active_ms = pool.spend_interval_active_ms.value_or(global.interval_active_ms);
  i.idle_ms = pool.spend_interval_idle_ms.value_or(global.interval_idle_ms);
  i.idle_after_ms = global.idle_after_ms;
  i.jitter = global.jitter;
  return i;
}

SpendSchedule::SpendSchedule(uint64_t seed) : rng_(seed) {}

bool SpendSchedule::Due(const SpendIntervals& intervals, const keypool::KeyView& key,
                        int64_t now_ms) const {
  auto it = last_.find(key.id);
  if (it == last_.end()) return true;
  int64_t used = key.health->last_used_ms.load(std::memory_order_relaxed);
  if (auto u = used_.find(key.id); u != used_.end()) used = std::max(used, u->second);
  const bool busy =
      (used > 0 && now_ms - used <= intervals.idle_after_ms) || it->second.spend_moved;
  const int64_t interval = busy ? intervals.active_ms : intervals.idle_ms;
  return now_ms - it->second.checked_ms >= static_cast<int64_t>(interval * it->second.stretch);
}

void SpendSchedule::SawUse(int64_t key_id, int64_t used_ms) {
  int64_t& newest = used_[key_id];
  newest = std::max(newest, used_ms);
}

void SpendSchedule::Checked(const SpendIntervals& intervals, int64_t key_id, int64_t now_ms,
                            std::optional<int64_t> spend_micros) {
  const double j = std::clamp(intervals.jitter, 0.0, 0.5);
  std::uniform_real_distribution<double> spread(1.0 - j, 1.0 + j);
  Last& last = last_[key_id];
  last.checked_ms = now_ms;
  last.stretch = j > 0 ? spread(rng_) : 1.0;
  if (spend_micros) {
    last.spend_moved = last.spend_micros && *last.spend_micros != *spend_micros;
    last.spend_micros = spend_micros;
  }
}

}  // namespace keygate::billing
