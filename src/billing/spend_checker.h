// The spend checker: asks upstreams what each in-service key has spent, records it, and rotates a
// key at its budget ("budget_exceeded") or just under it ("proactive_threshold"), so budgeted keys
// (OpenHands keys behind a LiteLLM proxy carry about $10 each) are replaced before they fail
// mid-request. docs/design.md, "Triggers for rotation".
//
// One pass (RunPass):
//   1. refresh the key pool view; for every pool whose config names a `spend_probe`, take its
//      active keys (store) with their secret and egress routes (view);
//   2. probe them: HTTP probes go out through the key's first healthy egress proxy (direct when
//      the key has none, or when all are down and the pool allows direct), with the upstream
//      client on an io_context run by the calling thread, at most `max_in_flight` at a time, each
//      cut at `probe_timeout_ms`; the ledger probe reads the cost of the key's usage recorded
//      since its activation;
//   3. per key, on the calling thread: UpdateSpend; decide (billing/spend_policy.h); Rotate when
//      told to; and always one spend record: action none | rotated | already_rotated |
//      no_backup | failed, with the rotation's reason and new key only when it Rotated.
// A probe that fails never rotates, cools or disables a key: it is counted, logged and recorded
// (action "failed"), because probe APIs change and disappear.
//
// Thread safety: Configure() from any thread. RunPass() from one thread at a time (the periodic
// task, or `keygate spend check`); it blocks on the store and the network.
#ifndef KEYGATE_BILLING_SPEND_CHECKER_H_
#define KEYGATE_BILLING_SPEND_CHECKER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "config/config.h"
#include "keypool/keypool.h"
#include "store/store.h"
#include "upstream/upstream.h"

namespace keygate::billing {

struct SpendCheckerOptions {
  int max_in_flight = 8;             // probes at once
  int64_t probe_timeout_ms = 10'000;  // per probe, from start to the last byte of the answer
  size_t max_body_bytes = 256 << 10;  // a longer answer is cut there (and fails to parse)
  upstream::ClientOptions client;     // CA file, TLS verification
  std::string actor = "spend-checker";  // rotation records name it
};

// One check of one key: what was read and what was done.
struct KeyCheck {
  int64_t key_id = 0;
  int64_t pool_id = 0;
  std::string pool;
  std::string masked;
  std::string probe;  // litellm | openrouter | http | ledger
  int64_t spend_micros = 0;
  std::optional<int64_t> budget_micros;  // the budget decided against (upstream, key or pool)
  std::string action;  // none | rotated | already_rotated | no_backup | failed
  std::string reason;  // budget_exceeded | proactive_threshold, when the policy asked to rotate
  std::optional<int64_t> new_key_id;  // action == rotated
  std::string error;   // action == failed: the probe's (or the store's) error
};

struct PassReport {
  std::vector<KeyCheck> checks;  // in pool, then key order
  int64_t rotated = 0, already_rotated = 0, no_backup = 0, failed = 0;
};

struct PassOptions {
  std::string pool;  // "" = every pool with a spend probe
  // When set, only keys for which it returns true are checked (the schedule,
  // billing/spend_schedule.h). Called on the calling thread, with the key's pool settings.
  std::function<bool(const config::PoolConfig&, const keypool::KeyView&)> due;
};

class SpendChecker {
 public:
  // `store`, `keys` and `clock` must outlive the checker. `keys` is the gateway's KeyPool in
  // `serve` (its rotations refresh the gateway's view), or one of its own in the CLI.
  SpendChecker(store::Store& store, keypool::KeyPool& keys, const Clock& clock,
               SpendCheckerOptions options);

  // The config whose pools name the probes (and whose providers give their base URLs). Takes
  // effect at the next pass.
  void Configure(std::shared_ptr<const config::Config> config);

  // Runs one pass (see the header comment). Errors: the key pool view or the key list could not
  // be read (nothing was checked), InvalidArgument / NotFound when `options.pool` names a pool
  // without a spend probe or unknown to the store. Failures of single checks are in the report.
  StatusOr<PassReport> RunPass(const PassOptions& options = {});

  struct Job;  // one key's check in a pass; internal to spend_checker.cc

 private:
  void Probe(std::vector<Job>& jobs);
  KeyCheck Decide(Job& job);

  store::Store& store_;
  keypool::KeyPool& keys_;
  const Clock& clock_;
  const SpendCheckerOptions options_;
  std::mutex mu_;
  std::shared_ptr<const config::Config> config_;  // GUARDED_BY(mu_)
};

}  // namespace keygate::billing

#endif  // KEYGATE_BILLING_SPEND_CHECKER_H_
