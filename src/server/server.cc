#include "server/server.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>

#include "admin/admin.h"
#include "admin/dashboard.h"
#include "billing/spend_service.h"
#include "billing/usage_writer.h"
#include "common/log.h"
#include "common/periodic_task.h"
#include "common/published.h"
#include "common/task_pool.h"
#include "gateway/catalog.h"
#include "gateway/client_auth.h"
#include "gateway/gateway.h"
#include "http/server.h"
#include "keypool/keypool.h"
#include "stats/stats.h"

namespace keygate::server {

namespace {

// Pools named in the config but missing in the store are created, so a config is enough to start.
void EnsurePools(store::Store& store, const config::Config& config) {
  for (const auto& [name, pool] : config.pools) {
    auto existing = store.GetPool(name);
    if (existing.ok()) continue;
    auto created = store.CreatePool(name, pool.provider);
    if (created.ok()) {
      Log(LogLevel::kInfo, "created pool " + name + " (provider " + pool.provider + ")");
    } else if (created.status().code() != StatusCode::kAlreadyExists) {
      Log(LogLevel::kWarn, "cannot create pool " + name + ": " + created.status().ToString());
    }
  }
}

keypool::Options KeyPoolOptions(const config::Config& c) {
  keypool::Options o;
  o.eject_after_failures = c.upstream.eject_after_failures;
  o.eject_base_ms = c.upstream.eject_base_ms;
  o.eject_max_ms = c.upstream.max_cooldown_ms;
  o.proxy_down_ms = c.upstream.proxy_recheck_ms;
  return o;
}

// This process's name in the spend checker's lease and on its credit reservations: host, pid and
// a random suffix (a restarted process with a reused pid is another holder).
std::string InstanceId() {
  char host[256] = {0};
  if (gethostname(host, sizeof(host) - 1) != 0) host[0] = 0;
  std::mt19937_64 rng(std::random_device{}());
  char suffix[9];
  std::snprintf(suffix, sizeof(suffix), "%08x", static_cast<unsigned>(rng()));
  return std::string(host[0] ? host : "keygate") + ":" + std::to_string(getpid()) + ":" + suffix;
}

}  // namespace

void BlockSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  // A client that disappears must never kill the process (Beast and curl never rely on SIGPIPE).
  signal(SIGPIPE, SIG_IGN);
}

class App::Impl {
 public:
  Impl(std::shared_ptr<const config::Config> cfg, const ServeOptions& options,
       store::Store& store, std::shared_ptr<const SecretBox> secrets)
      : cfg_(std::move(cfg)),
        options_(options),
        store_(store),
        secrets_(secrets),
        keys_(store, RealClock::Get(), KeyPoolOptions(*cfg_)),
        clients_(std::move(secrets)),
        usage_(store, {.batch_size = cfg_->store.usage_batch_size,
                       .flush_ms = cfg_->store.usage_flush_ms,
                       .queue_limit = cfg_->store.usage_queue_limit}),
        store_tasks_(2),
        gateway_({.store = &store,
                  .keys = &keys_,
                  .clients = &clients_,
                  .usage = &usage_,
                  .store_tasks = &store_tasks_,
                  .stats = &registry_,
                  .clock = &RealClock::Get(),
                  .instance = instance_},
                 std::make_shared<const gateway::Catalog>(cfg_)),
        control_("control", std::chrono::milliseconds(cfg_->store.pool_refresh_ms),
                 [this] { ControlStep(); }),
        sweep_("reservations", std::chrono::milliseconds(cfg_->store.reservation_sweep_ms),
               [this] { Sweep(); }) {}

  Status Start(std::ostream& out) {
    EnsurePools(store_, *cfg_);
    keys_.Configure(cfg_->pools);
    KG_RETURN_IF_ERROR(keys_.Refresh().status().WithContext("loading the key pools"));
    KG_RETURN_IF_ERROR(clients_.Refresh(store_).WithContext("loading the client keys"));
    RegisterMetrics();
    spend_ = std::make_unique<billing::SpendService>(store_, keys_, RealClock::Get(), registry_,
                                                     cfg_, instance_);
    usage_.Start();
    gateway_.SetReady(true);

    int workers = cfg_->server.workers > 0
                      ? cfg_->server.workers
                      : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
    http::Options hopts;
    hopts.listen = cfg_->server.listen;
    hopts.workers = workers;
    hopts.max_body_bytes = cfg_->server.max_body_bytes;
    hopts.max_header_bytes = cfg_->server.max_header_bytes;
    hopts.header_timeout_ms = cfg_->server.header_timeout_ms;
    hopts.busy_poll_us = cfg_->server.busy_poll_us;
    SetAdmin();
    http_ = std::make_unique<http::Server>(hopts, Handler(), ErrorBody(), gateway_.Hooks(workers));
    Status started = http_->Start();
    if (!started.ok()) {
      http_.reset();
      spend_.reset();
      store_tasks_.Stop();
      admin_tasks_.Stop();
      usage_.Stop(5000);
      stopped_ = true;
      return started;
    }
    control_.Start();
    spend_->Start();
    sweep_.Start();

    std::string host = cfg_->server.listen.substr(0, cfg_->server.listen.rfind(':'));
    std::string where = host + ":" + std::to_string(http_->port());
    auto snap = keys_.Snapshot();
    size_t active = 0;
    for (const auto& [name, view] : snap->pools) active += view->keys.size();
    // Composed first and written at once: the threads started above log to the same stream, and
    // a line written in pieces could be cut by one of theirs (tests wait for this line whole).
    std::ostringstream lines;
    lines << "keygate: listening on http://" << where << " (" << workers << " workers"
          << (hopts.busy_poll_us > 0
                  ? ", busy polling " + std::to_string(hopts.busy_poll_us) + " us after each event"
                  : std::string())
          << "); store " << store_.Describe() << "; " << snap->pools.size() << " pools, " << active
          << " active keys, " << cfg_->models.size() << " models (config: " << cfg_->source
          << ")\n";
    if (clients_.size() == 0) {
      lines << "keygate: no client keys yet: create one with `keygate clients create NAME`\n";
    }
    if (active == 0) {
      lines << "keygate: no active upstream keys: add some with `keygate pool create NAME "
               "--provider P` and `keygate keys import --pool NAME`\n";
    }
    out << lines.str();
    out.flush();
    if (options_.on_listening) options_.on_listening(where);
    return OkStatus();
  }

  void Reload(config::Config next) {
    next.server = cfg_->server;  // listen, workers and limits are fixed for this process
    next.store = cfg_->store;
    cfg_ = std::make_shared<const config::Config>(std::move(next));
    EnsurePools(store_, *cfg_);
    keys_.Configure(cfg_->pools);
    spend_->Configure(cfg_);
    control_.Poke();
    gateway_.SetCatalog(std::make_shared<const gateway::Catalog>(cfg_));
    SetAdmin();
  }

  // The one reload path of SIGHUP and POST /admin/v1/reload.
  Status ReloadFile(std::string_view by) {
    if (options_.config_path.empty()) {
      return FailedPreconditionError("keygate was started without a config file: nothing to reload");
    }
    auto next = config::LoadConfigFile(options_.config_path);
    if (!next.ok()) {
      return next.status().WithContext("config not reloaded, keeping the running one");
    }
    size_t models = next->models.size();
    std::lock_guard<std::mutex> lock(reload_mu_);
    Reload(std::move(next).value());
    Log(LogLevel::kInfo, std::string(by) + ": config reloaded from " + options_.config_path + " (" +
                             std::to_string(models) + " models)");
    return OkStatus();
  }

  void Shutdown() {
    if (stopped_) return;
    stopped_ = true;
    // First, so a standby instance takes the spend checker's lease over at once.
    spend_->Stop();
    Log(LogLevel::kInfo, "shutting down: draining in-flight requests");
    int left = http_->Drain(cfg_->server.drain_timeout_ms);
    if (left > 0) {
      Log(LogLevel::kWarn, std::to_string(left) + " connections cut at the drain deadline");
    }
    control_.Stop();
    sweep_.Stop();
    store_tasks_.Stop();
    admin_tasks_.Stop();
    int64_t unwritten = usage_.Stop(cfg_->server.drain_timeout_ms);
    Log(LogLevel::kInfo, "stopped; usage records written: " + std::to_string(usage_.written()) +
                             " in " + std::to_string(usage_.batches()) + " batches" +
                             (unwritten > 0 ? ", NOT written: " + std::to_string(unwritten) : ""));
  }

  uint16_t port() const { return http_ ? http_->port() : 0; }
  // Safe beside the control task: each refresh reads the store and publishes under its own lock,
  // so the later of two overlapping refreshes publishes the newer view.
  void RefreshNow() {
    (void)keys_.Refresh();
    (void)clients_.Refresh(store_);
  }
  const config::Config& config() const { return *cfg_; }

 private:
  // Other instances' rotations and imports, new client keys, expired cooldowns.
  void ControlStep() {
    auto refreshed = keys_.Refresh();
    Status c = clients_.Refresh(store_);
    bool ok = refreshed.ok() && c.ok();
    if (++ticks_ % 10 == 0) ok = store_.ReactivateCooled().ok() && ok;
    gateway_.SetReady(ok);
    if (!refreshed.ok()) {
      Log(LogLevel::kWarn, "pool refresh failed: " + refreshed.status().ToString());
    }
  }

  // Releases the credit reservations of dead instances (any instance may: expiry decides).
  void Sweep() {
    auto released = store_.ReleaseExpiredReservations();
    if (!released.ok()) {
      Log(LogLevel::kWarn, "reservation sweep failed: " + released.status().ToString());
    } else if (*released > 0) {
      Log(LogLevel::kWarn, "released " + std::to_string(*released) +
                               " expired credit reservation(s) (an instance died or hung)");
    }
  }

  // /dashboard serves the embedded dashboard files; /admin/ goes to the admin API (on its own
  // store thread, so a slow admin listing never delays
  // the data path's store work); everything else to the gateway.
  http::Handler Handler() {
    http::Handler gateway = gateway_.Handler();
    return [this, gateway](http::Worker& worker, http::Request& req,
                           http::ResponseWriter& w) -> boost::asio::awaitable<void> {
      if (admin::IsDashboardPath(req.path)) {
        admin::Response r = admin::DashboardResponse(req);
        co_await w.Send(r.status, r.headers, r.body);
        co_return;
      }
      if (admin::IsAdminPath(req.path)) {
        std::shared_ptr<const admin::AdminApi> api = admin_.Load();  // not per request: no cache
        co_await admin::Serve(*api, admin_tasks_, req, w);
        co_return;
      }
      co_await gateway(worker, req, w);
    };
  }

  http::ErrorBody ErrorBody() {
    http::ErrorBody gateway = gateway_.ErrorBody();
    return [gateway](std::string_view path, int status, std::string_view message) {
      if (admin::IsAdminPath(path)) {
        return std::make_pair(std::string("application/json"), admin::ErrorJson(status, message));
      }
      return gateway(path, status, message);
    };
  }

  void SetAdmin() {
    auto api = std::make_shared<const admin::AdminApi>(
        admin::Deps{.store = &store_,
                    .secrets = secrets_.get(),
                    .clock = &RealClock::Get(),
                    .config = cfg_,
                    .reload = [this] { return ReloadFile("admin API"); },
                    .changed = [this] { control_.Poke(); }},
        admin::Options{.cors_origins = cfg_->admin.cors_origins});
    admin_.Store(std::move(api));
  }

  void RegisterMetrics() {
    auto& dropped = registry_.AddGauge("keygate_usage_dropped_total",
                                       "Usage records dropped because the queue was full.", {});
    auto& depth = registry_.AddGauge("keygate_usage_queue_depth",
                                     "Usage records waiting to be written.", {});
    auto& written = registry_.AddGauge("keygate_usage_written_total",
                                       "Usage records written to the store.", {});
    auto& batches = registry_.AddGauge("keygate_usage_batches_total",
                                       "Store transactions that wrote usage records.", {});
    auto& keys = registry_.AddGauge("keygate_keys", "Upstream keys by pool and state.",
                                    {"pool", "state"});
    registry_.AddCollector([this, &dropped, &depth, &written, &batches, &keys] {
      depth.With({}).Set(usage_.depth());
      written.With({}).Set(usage_.written());
      batches.With({}).Set(usage_.batches());
      dropped.With({}).Set(usage_.dropped());
      auto snap = keys_.Snapshot();
      for (const auto& [name, view] : snap->pools) {
        store::StateCounts c = view->counts;
        for (store::KeyState s : store::kAllKeyStates) {
          keys.With({name, std::string(store::KeyStateName(s))}).Set(c[s]);
        }
      }
    });
  }

  std::shared_ptr<const config::Config> cfg_;
  ServeOptions options_;
  store::Store& store_;
  const std::string instance_ = InstanceId();  // before gateway_: one name for the whole process
  std::shared_ptr<const SecretBox> secrets_;
  stats::Registry registry_;
  keypool::KeyPool keys_;
  gateway::ClientAuth clients_;
  billing::UsageWriter usage_;
  TaskPool store_tasks_;
  TaskPool admin_tasks_{1};
  Published<admin::AdminApi> admin_;  // replaced on reload
  std::mutex reload_mu_;                          // one reload at a time (SIGHUP, admin API)
  gateway::Gateway gateway_;
  std::unique_ptr<http::Server> http_;
  PeriodicTask control_;
  std::unique_ptr<billing::SpendService> spend_;  // built in Start (after the metrics)
  PeriodicTask sweep_;
  int64_t ticks_ = 0;  // control task thread only
  bool stopped_ = false;
};

App::App(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
App::~App() { Shutdown(); }

StatusOr<std::unique_ptr<App>> App::Start(config::Config config, const ServeOptions& options,
                                          store::Store& store,
                                          std::shared_ptr<const SecretBox> secrets,
                                          std::ostream& out) {
  if (!options.listen.empty()) config.server.listen = options.listen;
  auto impl = std::make_unique<Impl>(std::make_shared<const config::Config>(std::move(config)),
                                     options, store, std::move(secrets));
  KG_RETURN_IF_ERROR(impl->Start(out));
  return std::unique_ptr<App>(new App(std::move(impl)));
}

void App::Reload(config::Config next) { impl_->Reload(std::move(next)); }
Status App::ReloadConfigFile(std::string_view by) { return impl_->ReloadFile(by); }
void App::Shutdown() {
  if (impl_) impl_->Shutdown();
}
uint16_t App::port() const { return impl_->port(); }
void App::RefreshNowForTest() { impl_->RefreshNow(); }

Status Serve(config::Config config, const ServeOptions& options, store::Store& store,
             std::shared_ptr<const SecretBox> secrets, std::ostream& out) {
  KG_ASSIGN_OR_RETURN(std::unique_ptr<App> app,
                      App::Start(std::move(config), options, store, std::move(secrets), out));
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  while (true) {
    int sig = 0;
    if (sigwait(&set, &sig) != 0) continue;
    if (sig != SIGHUP) break;
    Status reloaded = app->ReloadConfigFile("SIGHUP");
    if (!reloaded.ok()) Log(LogLevel::kError, "SIGHUP: " + reloaded.ToString());
  }
  app->Shutdown();
  return OkStatus();
}

}  // namespace keygate::server
