// When the background spend checker probes each key: keys the gateway used recently are checked
// often (spend moves only when a key carries traffic), idle keys rarely.
//
//   interval = interval_active when the key is busy, else interval_idle; busy = it carried a
//              request in the last idle_after_ms — of this instance (KeyHealth::last_used_ms, set
//              by the data plane) or of any instance (the store's usage records, read by the
//              service each pass: SawUse) — or its spend moved between its last two readings;
//   a key is due when it was never checked by this schedule, or its last check is older than
//   its interval x a stretch drawn at that check from [1 - jitter, 1 + jitter] (so keys checked
//   together drift apart instead of probing in bursts).
//
// The schedule lives in the leader's memory: a new leader checks every key once, then settles.
//
// Thread safety: none; the checker's pass thread owns it.
#ifndef KEYGATE_BILLING_SPEND_SCHEDULE_H_
#define KEYGATE_BILLING_SPEND_SCHEDULE_H_

#include <cstdint>
#include <optional>
#include <random>
#include <unordered_map>

#include "config/config.h"
#include "keypool/keypool.h"

namespace keygate::billing {

struct SpendIntervals {
  int64_t active_ms = 10'000;
  int64_t idle_ms = 3'600'000;
  int64_t idle_after_ms = 300'000;
  double jitter = 0.1;
};

// The [spend_checker] intervals with the pool's overrides.
SpendIntervals IntervalsFor(const config::SpendCheckerConfig& global,
                            const config::PoolConfig& pool);

class SpendSchedule {
 public:
  explicit SpendSchedule(uint64_t seed = std::random_device{}());

  // True when `key` should be probed at `now_ms` (see the header comment).
  bool Due(const SpendIntervals& intervals, const keypool::KeyView& key, int64_t now_ms) const;
  // The key was checked at `now_ms` (whatever the outcome: a failing probe is not retried at
  // once); `spend_micros` is what it read (nullopt when the probe failed: the key stays as busy
  // as it was). Draws the stretch of its next interval.
  void Checked(const SpendIntervals& intervals, int64_t key_id, int64_t now_ms,
               std::optional<int64_t> spend_micros = std::nullopt);
  // Some instance used `key_id` at `used_ms` (from the store's usage records).
  void SawUse(int64_t key_id, int64_t used_ms);
  // Forgets every key (a checker that lost the lease starts afresh when it regains it).
  void Clear() {
    last_.clear();
    used_.clear();
  }

 private:
  struct Last {
    int64_t checked_ms = 0;
    double stretch = 1.0;
    std::optional<int64_t> spend_micros;  // the last reading
    bool spend_moved = false;             // it differed from the one before
  };
  std::unordered_map<int64_t, Last> last_;
  std::unordered_map<int64_t, int64_t> used_;  // key id -> newest use seen in the store
  std::mt19937_64 rng_;
};

}  // namespace keygate::billing

#endif  // KEYGATE_BILLING_SPEND_SCHEDULE_H_
