#include "billing/spend_service.h"

#include <algorithm>
#include <chrono>

#include "billing/spend_stats.h"
#include "common/log.h"

namespace keygate::billing {

namespace {

bool AnyProbe(const config::Config& cfg) {
  for (const auto& [name, pool] : cfg.pools) {
    if (!pool.spend_probe.empty()) return true;
  }
  return false;
}

// The pass task's tick: half the shortest active interval, at most a second, so a due key waits
// for its check at most that long.
std::chrono::milliseconds PassPeriod(const config::Config& cfg) {
  int64_t shortest = cfg.spend_checker.interval_active_ms;
  for (const auto& [name, pool] : cfg.pools) {
    shortest = std::min(shortest, pool.spend_interval_active_ms.value_or(shortest));
  }
  return std::chrono::milliseconds(std::clamp<int64_t>(shortest / 2, 50, 1000));
}

SpendCheckerOptions CheckerOptions(const config::Config& cfg) {
  SpendCheckerOptions o;
  o.max_in_flight = cfg.spend_checker.max_in_flight;
  o.probe_timeout_ms = cfg.spend_checker.probe_timeout_ms;
  o.client.ca_file = cfg.upstream.ca_file;
  return o;
}

}  // namespace

SpendService::SpendService(store::Store& store, keypool::KeyPool& keys, const Clock& clock,
                           stats::Registry& stats, std::shared_ptr<const config::Config> config,
                           std::string holder)
    : store_(store),
      clock_(clock),
      holder_(std::move(holder)),
      lease_ttl_ms_(config->spend_checker.lease_ttl_ms),
      checker_(store, keys, clock, CheckerOptions(*config)),
      stats_(stats),
      lease_task_("spend-lease", std::chrono::milliseconds(std::max<int64_t>(lease_ttl_ms_ / 3, 1)),
                  [this] { LeaseStep(); }),
      pass_task_("spend-checker", PassPeriod(*config), [this] { PassStep(); }) {
  RegisterMetrics();
  Configure(std::move(config));
}

SpendService::~SpendService() { Stop(); }

void SpendService::Start() {
  lease_task_.Start();
  pass_task_.Start();
}

void SpendService::Configure(std::shared_ptr<const config::Config> config) {
  checker_.Configure(config);
  std::lock_guard<std::mutex> lock(mu_);
  config_ = std::move(config);
}

std::shared_ptr<const config::Config> SpendService::config() const {
  std::lock_guard<std::mutex> lock(mu_);
  return config_;
}

void SpendService::Stop() {
  if (stopped_) return;
  stopped_ = true;
  lease_task_.Stop();
  pass_task_.Stop();  // waits for a running pass
  // Always (the last renewal may have succeeded in the store but failed on the way back): a
  // standby takes over at its next lease tick instead of waiting for the ttl.
  Status released = store_.ReleaseLease(kSpendLeaseName, holder_);
  if (!released.ok()) {
    Log(LogLevel::kWarn, "spend checker: lease not released: " + released.ToString());
  } else if (leading_.load()) {
    Log(LogLevel::kInfo, "spend checker: lease released (holder " + holder_ + ")");
  }
  leading_.store(false);
  leader_->Set(0);
}

bool SpendService::Leading(int64_t now_ms) const {
  return leading_.load() && now_ms < leading_until_ms_.load();
}

void SpendService::LeaseStep() {
  std::shared_ptr<const config::Config> cfg = config();
  if (!cfg->spend_checker.enabled || !AnyProbe(*cfg)) {
    if (leading_.exchange(false)) {
      (void)store_.ReleaseLease(kSpendLeaseName, holder_);
      Log(LogLevel::kInfo, "spend checker: disabled or no pool has a spend_probe; lease released");
    }
    leader_->Set(0);
    return;
  }
  const int64_t asked_at = clock_.NowMs();
  StatusOr<bool> got = store_.TryAcquireLease(kSpendLeaseName, holder_, lease_ttl_ms_);
  const bool lead = got.ok() && *got;
  // Counted from before the call: the store's expiry is at least this late.
  if (lead) leading_until_ms_.store(asked_at + lease_ttl_ms_);
  if (!got.ok()) {
    Log(LogLevel::kWarn, "spend checker: lease not renewed (standing by): " +
                             got.status().ToString());
  }
  if (lead != leading_.exchange(lead)) {
    Log(LogLevel::kInfo, lead ? "spend checker: leading (holder " + holder_ + ")"
                              : "spend checker: standing by (holder " + holder_ + ")");
    if (lead) pass_task_.Poke();
  }
  leader_->Set(lead ? 1 : 0);
}

void SpendService::PassStep() {
  const int64_t now = clock_.NowMs();
  std::shared_ptr<const config::Config> cfg = config();
  const bool lead = Leading(now) && cfg->spend_checker.enabled;
  if (!lead) {
    // A new term starts with every key due: another leader checked them meanwhile.
    if (was_leading_) {
      schedule_.Clear();
      usage_cursor_ = 0;  // the next term reads the last idle_after_ms of usage afresh
    }
    was_leading_ = false;
  } else {
    was_leading_ = true;
    ReadKeysUsed(*cfg, now);
    PassOptions pass;
    pass.due = [&](const config::PoolConfig& pool, const keypool::KeyView& key) {
      return schedule_.Due(IntervalsFor(cfg->spend_checker, pool), key, now);
    };
    StatusOr<PassReport> report = checker_.RunPass(pass);
    if (!report.ok()) {
      Log(LogLevel::kWarn, "spend checker: pass failed: " + report.status().ToString());
    } else {
      for (const KeyCheck& c : report->checks) {
        const config::PoolConfig* pool = cfg->FindPool(c.pool);
        if (pool == nullptr) continue;
        schedule_.Checked(IntervalsFor(cfg->spend_checker, *pool), c.key_id, now,
                          c.action == "failed" ? std::nullopt : std::optional(c.spend_micros));
      }
      RecordMetrics(*report);
      // Rotations change the bands at once; spend alone waits for the next refresh.
      if (report->rotated + report->no_backup > 0) bands_at_ms_ = 0;
    }
  }
  if (AnyProbe(*cfg) && now - bands_at_ms_ >= cfg->spend_checker.interval_active_ms) {
    bands_at_ms_ = now;
    RefreshBands(*cfg);
  }
}

// Every instance's traffic, from the usage records written since the last pass: keys another
// instance uses are checked as often as the ones this instance uses.
void SpendService::ReadKeysUsed(const config::Config& cfg, int64_t now) {
  StatusOr<store::KeysUsed> used =
      store_.KeysUsedAfter(usage_cursor_, now - cfg.spend_checker.idle_after_ms);
  if (!used.ok()) return;  // the store is down: the pass that follows says so
  usage_cursor_ = used->max_record_id;
  for (const store::KeyUse& u : used->keys) schedule_.SawUse(u.key_id, u.last_used_ms);
}

void SpendService::RegisterMetrics() {
  probes_ = &stats_.AddCounter("keygate_spend_probes_total",
                               "Spend checks by pool and outcome: none, rotated, already_rotated, "
                               "no_backup, failed (the probe or the store failed).",
                               {"pool", "outcome"});
  rotations_ = &stats_.AddCounter("keygate_spend_rotations_total",
                                  "Keys the spend checker rotated, by pool and reason.",
                                  {"pool", "reason"});
  no_backup_ = &stats_.AddCounter(
      "keygate_spend_no_backup_total",
      "ALERT: keys at their budget that the spend checker could not replace (no backup left); "
      "they are now exhausted.",
      {"pool"});
  leader_ = &stats_.AddGauge("keygate_spend_checker_leader",
                             "1 while this instance holds the spend checker's lease.", {})
                 .With({});
  bands_ = &stats_.AddGauge("keygate_spend_keys",
                            "In-service keys by pool and spend band (fraction of the budget: "
                            "lt50, 50-85, 85-95, ge95, unknown), from the last known spend.",
                            {"pool", "band"});
}

void SpendService::RecordMetrics(const PassReport& report) {
  for (const KeyCheck& c : report.checks) {
    probes_->With({c.pool, c.action}).Inc();
    if (c.action == "rotated") rotations_->With({c.pool, c.reason}).Inc();
    if (c.action == "no_backup") no_backup_->With({c.pool}).Inc();
  }
}

void SpendService::RefreshBands(const config::Config& cfg) {
  StatusOr<std::vector<PoolSpendStats>> stats = ComputeSpendStats(store_, cfg);
  if (!stats.ok()) {
    Log(LogLevel::kWarn, "spend checker: spend bands not refreshed: " + stats.status().ToString());
    return;
  }
  for (const PoolSpendStats& s : *stats) {
    for (SpendBand band : kAllSpendBands) {
      bands_->With({s.pool, std::string(SpendBandName(band))}).Set(s.Count(band));
    }
  }
}

}  // namespace keygate::billing
