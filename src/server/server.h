// `keygate serve`: builds the gateway from a Config and a Store and runs it until SIGTERM/SIGINT.
//
// Start order: pools named in the config exist in the store -> key pool views and client keys
// loaded -> usage writer -> store task pool -> gateway -> HTTP workers -> control task (refresh
// pool views and client keys every store.pool_refresh_ms, reactivate cooled keys) -> spend checker
// (billing/spend_service.h: lease, passes while leading). Stop order: the spend checker first
// (its lease released, so a standby instance takes over at once), then stop accepting and drain
// in-flight requests (up to server.drain_timeout_ms), stop the control task, finish queued store
// tasks, flush usage, return.
//
// SIGHUP reloads the config file (when serve was given one): models, pools' settings (spend
// probes included), upstream settings, [spend_checker] (but its lease ttl, max_in_flight and
// probe timeout); listen address, workers and store are fixed for the life of the process. A config that
// fails to parse is logged and the running one kept. Connections are never dropped by a reload.
//
// Thread safety: call from the main thread, after BlockSignals().
#ifndef KEYGATE_SERVER_SERVER_H_
#define KEYGATE_SERVER_SERVER_H_

#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <string_view>

#include "common/status.h"
#include "config/config.h"
#include "secrets/secrets.h"
#include "store/store.h"

namespace keygate::server {

// Blocks SIGINT, SIGTERM and SIGHUP in the calling thread and every thread it starts later, so the
// main thread's sigwait() is their only receiver. Call before any thread is started.
void BlockSignals();

struct ServeOptions {
  std::string config_path;  // "" = no file (defaults; SIGHUP has nothing to reload)
  std::string listen;       // overrides server.listen when not empty
  // Called once the listener is bound, with "HOST:PORT" (tests use it to learn the port).
  std::function<void(const std::string&)> on_listening;
};

// A running gateway: everything `serve` starts, as an object (tests run it in-process).
class App {
 public:
  // Starts everything (see the start order above). `store` and `secrets` must outlive the App.
  // Errors: the port is taken, the store is unreachable at start.
  static StatusOr<std::unique_ptr<App>> Start(config::Config config, const ServeOptions& options,
                                              store::Store& store,
                                              std::shared_ptr<const SecretBox> secrets,
                                              std::ostream& out);
  ~App();  // Shutdown()

  // Applies a new config (models, pools' settings, upstream settings); server and store sections
  // keep their running values.
  void Reload(config::Config next);
  // Re-reads ServeOptions::config_path and applies it (SIGHUP and POST /admin/v1/reload).
  // FailedPrecondition without a config file; the parse error when it does not load (the running
  // config is kept).
  // `by` names the trigger in the log line ("SIGHUP").
  Status ReloadConfigFile(std::string_view by);
  // Drains, flushes usage and stops everything (the stop order above). Idempotent.
  void Shutdown();

  uint16_t port() const;
  // Forces a refresh of pool views and client keys now (tests; the control task does it
  // periodically).
  void RefreshNowForTest();

  class Impl;

 private:
  explicit App(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Runs the gateway until SIGTERM/SIGINT (SIGHUP reloads options.config_path). `store` and
// `secrets` (for client-key hashes) must outlive the call. Returns OK after a clean shutdown; an
// error when it cannot start.
Status Serve(config::Config config, const ServeOptions& options, store::Store& store,
             std::shared_ptr<const SecretBox> secrets, std::ostream& out);

}  // namespace keygate::server

#endif  // KEYGATE_SERVER_SERVER_H_
