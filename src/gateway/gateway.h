// The data path: auth -> route -> pick key -> upstream (through the key's egress proxy) -> stream
// back -> usage. A request that fails on a key before any byte reached the client is retried on
// another key (bounded attempts); once bytes reached the client it never is.
//
// Upstream outcomes go through the provider's classifier: cool the key down, rotate it (on a store
// thread; the request goes on at once with another key), eject it after repeated transient
// failures, or blame the egress proxy (never the key).
//
// Thread safety: one Gateway serves every worker. Its request state is per coroutine; shared state
// is immutable snapshots (catalog, pool views, client keys) and atomics. SetCatalog() may be called
// from any thread (SIGHUP).
#ifndef KEYGATE_GATEWAY_GATEWAY_H_
#define KEYGATE_GATEWAY_GATEWAY_H_

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "billing/usage_writer.h"
#include "common/clock.h"
#include "common/published.h"
#include "common/task_pool.h"
#include "gateway/catalog.h"
#include "gateway/client_auth.h"
#include "http/server.h"
#include "keypool/keypool.h"
#include "stats/stats.h"
#include "store/store.h"

namespace keygate::gateway {

struct GatewayDeps {
  store::Store* store = nullptr;
  keypool::KeyPool* keys = nullptr;
  ClientAuth* clients = nullptr;
  billing::UsageWriter* usage = nullptr;
  TaskPool* store_tasks = nullptr;  // where blocking store calls run (rotation, cooldowns)
  stats::Registry* stats = nullptr;
  const Clock* clock = nullptr;
  std::string instance;  // owner of this process's credit reservations
};

class Gateway {
 public:
  Gateway(GatewayDeps deps, std::shared_ptr<const Catalog> catalog);
  ~Gateway();

  // Swaps the catalog (and the config it carries: upstream timeouts, attempts). In-flight requests
  // finish with the one they started with.
  void SetCatalog(std::shared_ptr<const Catalog> catalog);
  std::shared_ptr<const Catalog> catalog() const { return catalog_.Get(); }

  // /readyz answers 200 only when ready (the store was reachable at the last refresh).
  void SetReady(bool ready) { ready_.store(ready); }

  // What the http::Server needs.
  http::Handler Handler();
  http::ErrorBody ErrorBody();
  http::Hooks Hooks(int workers);

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
  Published<Catalog> catalog_;
  std::atomic<bool> ready_{false};
};

}  // namespace keygate::gateway

#endif  // KEYGATE_GATEWAY_GATEWAY_H_
