// The spend checker as a background service of `keygate serve`, with one leader across instances.
//
// Two periodic tasks, each on its own thread (never on an I/O loop):
//   - the lease task, every lease_ttl_ms / 3: TryAcquireLease("spend-checker", holder,
//     lease_ttl_ms) — acquires the lease when it is free or expired, renews it when held. An
//     instance leads while its last successful acquire is younger than the ttl; a store error or
//     another holder makes it stand by (and retry at the next tick). Stop() releases the lease
//     so a standby takes over at its next tick instead of after the ttl.
//   - the pass task, every min(1 s, interval_active / 2): while leading, one SpendChecker pass
//     over the keys the schedule says are due (billing/spend_schedule.h), then metrics; every
//     instance (leader or not) refreshes the spend-band gauges every interval_active.
// If the leader dies, its lease expires and a standby takes over within lease_ttl_ms (plus one
// lease tick). Two leaders cannot overlap by more than one pass: a pass that started while
// leading finishes its decisions, which stay correct because Rotate is idempotent.
//
// Metrics (declared once, in RegisterMetrics): keygate_spend_probes_total{pool,outcome}
// (outcome = the check's action: none | rotated | already_rotated | no_backup | failed),
// keygate_spend_rotations_total{pool,reason}, keygate_spend_no_backup_total{pool} (the alert),
// keygate_spend_checker_leader (1 on the leader), keygate_spend_keys{pool,band}.
//
// Thread safety: Start/Stop from the owner thread; Configure from any thread.
#ifndef KEYGATE_BILLING_SPEND_SERVICE_H_
#define KEYGATE_BILLING_SPEND_SERVICE_H_

#include <atomic>
#include <memory>
#include <mutex>
#include <string>

#include "billing/spend_checker.h"
#include "billing/spend_schedule.h"
#include "common/clock.h"
#include "common/periodic_task.h"
#include "config/config.h"
#include "keypool/keypool.h"
#include "stats/stats.h"
#include "store/store.h"

namespace keygate::billing {

inline constexpr std::string_view kSpendLeaseName = "spend-checker";

class SpendService {
 public:
  // `store`, `keys`, `clock` and `stats` must outlive the service. `holder` names this instance
  // in the lease (unique per process). The [spend_checker] lease_ttl_ms, max_in_flight and
  // probe_timeout_ms of `config` are fixed for the life of the service; the rest follows
  // Configure().
  SpendService(store::Store& store, keypool::KeyPool& keys, const Clock& clock,
               stats::Registry& stats, std::shared_ptr<const config::Config> config,
               std::string holder);
  ~SpendService();  // Stop()

  void Start();
  // Pools, probes, budgets, thresholds, intervals, enabled: from the next tick.
  void Configure(std::shared_ptr<const config::Config> config);
  // Stops both tasks (waiting for a running pass) and releases the lease if held. Idempotent.
  void Stop();

  bool leading() const { return leading_.load(); }
  const std::string& holder() const { return holder_; }

  // One step of each task on the caller's thread (tests).
  void LeaseStepForTest() { LeaseStep(); }
  void PassStepForTest() { PassStep(); }

 private:
  std::shared_ptr<const config::Config> config() const;
  bool Leading(int64_t now_ms) const;
  void LeaseStep();
  void PassStep();
  void RecordMetrics(const PassReport& report);
  void RefreshBands(const config::Config& cfg);
  void ReadKeysUsed(const config::Config& cfg, int64_t now);
  void RegisterMetrics();

  store::Store& store_;
  const Clock& clock_;
  const std::string holder_;
  const int64_t lease_ttl_ms_;
  SpendChecker checker_;
  mutable std::mutex mu_;
  std::shared_ptr<const config::Config> config_;  // GUARDED_BY(mu_)

  std::atomic<bool> leading_{false};
  std::atomic<int64_t> leading_until_ms_{0};  // the held lease's expiry as this instance saw it
  SpendSchedule schedule_;                     // pass thread only
  int64_t usage_cursor_ = 0;                   // pass thread only: KeysUsedAfter's cursor
  bool was_leading_ = false;                   // pass thread only
  int64_t bands_at_ms_ = 0;                    // pass thread only

  stats::Registry& stats_;
  stats::Family<stats::Counter>* probes_ = nullptr;
  stats::Family<stats::Counter>* rotations_ = nullptr;
  stats::Family<stats::Counter>* no_backup_ = nullptr;
  stats::Gauge* leader_ = nullptr;
  stats::Family<stats::Gauge>* bands_ = nullptr;

  PeriodicTask lease_task_;
  PeriodicTask pass_task_;
  bool stopped_ = false;
};

}  // namespace keygate::billing

#endif  // KEYGATE_BILLING_SPEND_SERVICE_H_
