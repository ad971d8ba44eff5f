// The in-memory view of the key pools that the data plane reads on every request.
//
// Views are immutable and swapped whole: a request loads the current PoolSet (one atomic
// shared_ptr load) and picks from it without locks. What changes per request — in-flight counts,
// cooldowns, consecutive failures, ejections, "rotation requested" — lives in KeyHealth and
// ProxyHealth objects made of atomics, shared by every view in which the key (proxy) appears, so a
// refresh never resets them.
//
// Refresh() (blocking, on a store thread) reads the store's pool versions and reloads only the
// pools that changed: a rotation by any instance is seen within one refresh period.
//
// Thread safety: Snapshot(), Pick() and the Report*() calls are safe from any thread and never
// block. Refresh() and Rotate() block on the store; call them from store threads only; they are
// serialized internally.
#ifndef KEYGATE_KEYPOOL_KEYPOOL_H_
#define KEYGATE_KEYPOOL_KEYPOOL_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/clock.h"
#include "common/published.h"
#include "common/status.h"
#include "config/config.h"
#include "store/store.h"

namespace keygate::keypool {

// Runtime health of one upstream key. All fields are atomics: written by request threads.
struct KeyHealth {
  std::atomic<int64_t> in_flight{0};
  std::atomic<int64_t> cooldown_until_ms{0};  // local cooldown (429); the later deadline wins
  std::atomic<int> consecutive_failures{0};
  std::atomic<int> ejections{0};              // how many times ejected (drives the backoff)
  std::atomic<int64_t> ejected_until_ms{0};
  std::atomic<bool> rotation_requested{false};  // dead: skip until a view without it arrives
  std::atomic<int64_t> last_used_ms{0};  // the last attempt sent with the key (spend schedule)
};

struct ProxyHealth {
  std::atomic<int64_t> down_until_ms{0};
  std::atomic<int> consecutive_failures{0};
};

struct Route {
  int64_t proxy_id = 0;
  std::string url;          // full URL with credentials: for the upstream client only
  std::string display_url;  // without password: for logs
  int64_t priority = 0;
  std::shared_ptr<ProxyHealth> health;
};

struct KeyView {
  int64_t id = 0;
  int64_t pool_id = 0;
  std::string secret;
  std::string masked;
  int64_t weight = 1;            // max(priority, 1), for the weighted strategy
  int64_t cooldown_until_ms = 0; // from the store (state cooling)
  std::vector<Route> routes;     // highest priority first; empty = direct
  std::shared_ptr<KeyHealth> health;
};

struct PoolView {
  int64_t id = 0;
  std::string name;
  std::string provider;
  int64_t version = 0;
  config::Strategy strategy = config::Strategy::kRoundRobin;
  bool allow_direct = false;
  std::vector<KeyView> keys;  // keys in state active or cooling
  // Weighted strategy: cumulative_weight[i] = weight of keys[0..i] (prefix sums), so a pick is a
  // binary search: O(log keys).
  std::vector<int64_t> cumulative_weight;
  store::StateCounts counts;  // all states, for metrics and /readyz
  std::shared_ptr<std::atomic<uint64_t>> cursor;  // round-robin position, survives refreshes
};

struct PoolSet {
  std::map<std::string, std::shared_ptr<const PoolView>, std::less<>> pools;
  const PoolView* Find(std::string_view name) const;
};

// A picked key and the way out for this attempt.
struct Pick {
  const KeyView* key = nullptr;
  const Route* route = nullptr;  // nullptr = direct
};

struct Options {
  int eject_after_failures = 5;
  int64_t eject_base_ms = 30'000;
  int64_t eject_max_ms = 600'000;
  int64_t proxy_down_ms = 30'000;
};

class KeyPool {
 public:
  // `store` and `clock` must outlive the KeyPool.
  KeyPool(store::Store& store, const Clock& clock, Options options);

  // Replaces the per-pool settings (strategy, allow_direct) used for the next views; pools not in
  // `pools` use the defaults. Takes effect at the next Refresh (which it forces).
  void Configure(std::map<std::string, config::PoolConfig> pools);

  // Reloads the pools whose store version changed (all of them the first time) and swaps the
  // view. Returns the number of pools reloaded. On a store error the current view stays.
  StatusOr<int> Refresh();

  std::shared_ptr<const PoolSet> Snapshot() const { return view_.Get(); }

  // Picks a key of `pool` for one attempt, skipping `exclude` (keys already tried for this
  // request), keys cooling down, ejected or awaiting rotation, and keys whose every proxy is down
  // (unless the pool allows direct). Returns a Pick with key == nullptr when none is usable.
  Pick Choose(const PoolView& pool, std::span<const int64_t> exclude) const;

  // ---- outcomes reported by the data plane (never block)
  // An attempt is about to be sent with the key: its last use is now (one relaxed store; the
  // spend checker probes recently used keys more often).
  void ReportUse(const KeyView& key) const;
  void ReportSuccess(const KeyView& key) const;
  // A transient failure (5xx, timeout): counts toward ejection after N in a row.
  void ReportFailure(const KeyView& key) const;
  // 429: local cooldown until now + cooldown_ms (the later deadline wins).
  void ReportCooldown(const KeyView& key, int64_t cooldown_ms) const;
  // The key is dead: stop using it at once; the caller then runs Rotate() on a store thread.
  void ReportDead(const KeyView& key) const;
  // The egress proxy failed: mark it down for a while (never counts against the key).
  void ReportProxyFailure(const Route& route) const;
  // Returns true when the proxy had failed before (it has recovered: tell the store).
  bool ReportProxySuccess(const Route& route) const;

  // Blocking: rotates the key in the store, then refreshes the view. All three outcomes are
  // returned to the caller; AlreadyRotated also refreshes (another instance rotated it).
  StatusOr<store::RotateOutcome> Rotate(int64_t pool_id, int64_t key_id, std::string_view reason);

 private:
  StatusOr<std::shared_ptr<const PoolView>> LoadPool(const store::Pool& pool);

  store::Store& store_;
  const Clock& clock_;
  const Options options_;

  std::mutex refresh_mu_;  // serializes Refresh/Rotate; guards the fields below
  std::map<std::string, config::PoolConfig> pool_configs_;  // GUARDED_BY(refresh_mu_)
  bool force_reload_ = true;                                 // GUARDED_BY(refresh_mu_)
  std::unordered_map<int64_t, std::shared_ptr<KeyHealth>> key_health_;      // GUARDED_BY
  std::unordered_map<int64_t, std::shared_ptr<ProxyHealth>> proxy_health_;  // GUARDED_BY
  std::unordered_map<int64_t, std::shared_ptr<std::atomic<uint64_t>>> cursors_;  // GUARDED_BY

  Published<PoolSet> view_;
};

}  // namespace keygate::keypool

#endif  // KEYGATE_KEYPOOL_KEYPOOL_H_
