#include "billing/spend_checker.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <algorithm>
#include <chrono>
#include <variant>

#include "billing/spend_policy.h"
#include "common/log.h"
#include "common/strings.h"
#include "provider/spend_probe.h"

namespace keygate::billing {

namespace asio = boost::asio;

struct SpendChecker::Job {
  KeyCheck check;
  double threshold = kDefaultSpendThreshold;
  std::optional<int64_t> pool_budget;
  std::optional<int64_t> key_budget;  // the store's
  provider::SpendProbeSpec spec;
  std::optional<upstream::Request> request;  // HTTP probes (nullopt: ledger, or no way out)
  StatusOr<provider::SpendReading> reading = UnavailableError("not probed");
};

namespace {

// A response read to the end (or cut at the cap), or why there is none.
struct Fetched {
  int status = 0;
  std::string body;
};

// Shared by a probe and its deadline timer: the timer may fire after the probe ended (its
// completion already queued), so it checks `done` before touching the exchange.
struct Deadline {
  upstream::Exchange* exchange = nullptr;
  bool done = false;
  bool fired = false;
};

asio::awaitable<StatusOr<Fetched>> Fetch(upstream::Client& client, upstream::Request request,
                                         int64_t timeout_ms, size_t max_body) {
  std::unique_ptr<upstream::Exchange> ex = client.Start(std::move(request));
  auto deadline = std::make_shared<Deadline>();
  deadline->exchange = ex.get();
  asio::steady_timer timer(co_await asio::this_coro::executor);
  timer.expires_after(std::chrono::milliseconds(timeout_ms));
  timer.async_wait([deadline](const boost::system::error_code& ec) {
    if (ec || deadline->done) return;
    deadline->fired = true;
    deadline->exchange->Cancel();
  });
  struct Finish {  // the exchange dies with this frame: the timer must never reach it after
    std::shared_ptr<Deadline> d;
    asio::steady_timer& t;
    ~Finish() {
      d->done = true;
      t.cancel();
    }
  } finish{deadline, timer};

  auto failed = [&](const upstream::Failure& f) -> Status {
    if (deadline->fired) {
      return UnavailableError("the spend probe timed out after " + std::to_string(timeout_ms) +
                              " ms");
    }
    return UnavailableError("the spend probe failed (" +
                            std::string(upstream::ErrorKindName(f.kind)) + "): " + f.message);
  };
  // g++ 12 miscompiles `co_await` inside conditions: results go into variables first.
  bool got_head = co_await ex->ReadHead();
  if (!got_head) co_return failed(ex->failure());
  Fetched out;
  out.status = ex->head().status;
  while (out.body.size() < max_body) {
    bool more = co_await ex->ReadBody(out.body);
    if (!more) break;
  }
  if (ex->failure().kind != upstream::ErrorKind::kNone) co_return failed(ex->failure());
  co_return out;
}

// Takes the next job until none is left: `workers` of these run at once.
asio::awaitable<void> ProbeWorker(upstream::Client* client, std::vector<SpendChecker::Job*>* jobs,
                                  size_t* next, int64_t timeout_ms, size_t max_body) {
  while (*next < jobs->size()) {
    SpendChecker::Job* job = (*jobs)[(*next)++];
    StatusOr<Fetched> fetched = co_await Fetch(*client, *job->request, timeout_ms, max_body);
    if (!fetched.ok()) {
      job->reading = fetched.status();
      continue;
    }
    job->reading = provider::ParseSpendResponse(job->spec, fetched->status, fetched->body);
  }
}

// The key's way out for a probe: its first healthy route, else direct when it has none or the
// pool allows direct. nullopt: no way out now (a failed check, not the key's fault).
std::optional<std::string> ProxyFor(const keypool::KeyView& key, bool allow_direct,
                                    int64_t now_ms) {
  for (const keypool::Route& r : key.routes) {
    if (r.health->down_until_ms.load(std::memory_order_relaxed) <= now_ms) return r.url;
  }
  if (key.routes.empty() || allow_direct) return std::string();
  return std::nullopt;
}

}  // namespace

SpendChecker::SpendChecker(store::Store& store, keypool::KeyPool& keys, const Clock& clock,
                           SpendCheckerOptions options)
    : store_(store), keys_(keys), clock_(clock), options_(std::move(options)) {}

void SpendChecker::Configure(std::shared_ptr<const config::Config> config) {
  std::lock_guard<std::mutex> lock(mu_);
  config_ = std::move(config);
}

StatusOr<PassReport> SpendChecker::RunPass(const PassOptions& pass) {
  std::shared_ptr<const config::Config> cfg;
  {
    std::lock_guard<std::mutex> lock(mu_);
    cfg = config_;
  }
  if (cfg == nullptr) return FailedPreconditionError("the spend checker has no config");
  if (!pass.pool.empty()) {
    const config::PoolConfig* p = cfg->FindPool(pass.pool);
    if (p == nullptr || p->spend_probe.empty()) {
      return InvalidArgumentError("pool " + pass.pool + " names no spend_probe in the config");
    }
  }
  KG_RETURN_IF_ERROR(keys_.Refresh().status().WithContext("refreshing the key pools"));
  std::shared_ptr<const keypool::PoolSet> view = keys_.Snapshot();
  const int64_t now = clock_.NowMs();

  std::vector<Job> jobs;
  for (const auto& [name, pool_cfg] : cfg->pools) {
    if (pool_cfg.spend_probe.empty() || (!pass.pool.empty() && name != pass.pool)) continue;
    auto kind = provider::ParseSpendProbeKind(pool_cfg.spend_probe);
    const config::ProviderConfig* provider_cfg = cfg->FindProvider(pool_cfg.provider);
    if (!kind || provider_cfg == nullptr) continue;  // Validate() rules both out
    const keypool::PoolView* pool_view = view->Find(name);
    if (pool_view == nullptr) {
      if (!pass.pool.empty()) return NotFoundError("pool " + name + " does not exist");
      continue;  // not in the store yet
    }
    KG_ASSIGN_OR_RETURN(
        std::vector<store::UpstreamKey> active,
        store_.ListKeys({.pool_id = pool_view->id, .state = store::KeyState::kActive}));
    provider::SpendProbeSpec spec{.kind = *kind,
                                  .base_url = provider_cfg->base_url,
                                  .auth = provider_cfg->auth,
                                  .url_template = pool_cfg.spend_url,
                                  .spend_pointer = pool_cfg.spend_pointer,
                                  .budget_pointer = pool_cfg.budget_pointer};
    for (const store::UpstreamKey& k : active) {
      auto it = std::find_if(pool_view->keys.begin(), pool_view->keys.end(),
                             [&](const keypool::KeyView& v) { return v.id == k.id; });
      if (it == pool_view->keys.end()) continue;  // activated after the refresh: next pass
      if (pass.due && !pass.due(pool_cfg, *it)) continue;
      Job job;
      job.check.key_id = k.id;
      job.check.pool_id = pool_view->id;
      job.check.pool = name;
      job.check.masked = k.masked;
      job.check.probe = pool_cfg.spend_probe;
      job.threshold = pool_cfg.spend_threshold;
      job.pool_budget = pool_cfg.budget_micros;
      job.key_budget = k.budget_micros;
      job.spec = spec;
      if (*kind != provider::SpendProbeKind::kLedger) {
        auto built = provider::BuildSpendRequest(spec, it->secret);
        std::optional<std::string> proxy = ProxyFor(*it, pool_view->allow_direct, now);
        if (!built.ok()) {
          job.reading = built.status();
        } else if (!proxy) {
          job.reading = UnavailableError("no healthy egress proxy for the spend probe");
        } else {
          upstream::Request req;
          req.method = built->method;
          req.url = std::move(built->url);
          req.headers = std::move(built->headers);
          req.proxy_url = std::move(*proxy);
          req.connect_timeout_ms = options_.probe_timeout_ms;
          req.first_byte_timeout_ms = options_.probe_timeout_ms;
          req.idle_timeout_ms = options_.probe_timeout_ms;
          job.request = std::move(req);
        }
      }
      jobs.push_back(std::move(job));
    }
  }

  Probe(jobs);

  PassReport report;
  bool rotated_any = false;
  for (Job& job : jobs) {
    KeyCheck c = Decide(job);
    if (c.action == "rotated") ++report.rotated, rotated_any = true;
    if (c.action == "already_rotated") ++report.already_rotated, rotated_any = true;
    if (c.action == "no_backup") ++report.no_backup, rotated_any = true;
    if (c.action == "failed") ++report.failed;
    report.checks.push_back(std::move(c));
  }
  // The retired keys leave the view now rather than at the next poll.
  if (rotated_any) (void)keys_.Refresh();
  return report;
}

void SpendChecker::Probe(std::vector<Job>& jobs) {
  std::vector<Job*> http;
  for (Job& j : jobs) {
    if (j.request) http.push_back(&j);
  }
  if (http.empty()) return;
  // The checker's own loop, on the calling thread: the gateway's loops never wait for a probe.
  asio::io_context io;
  {
    std::unique_ptr<upstream::Client> client = upstream::Client::Create(io, options_.client);
    size_t next = 0;
    const size_t workers =
        std::min(http.size(), static_cast<size_t>(std::max(1, options_.max_in_flight)));
    for (size_t i = 0; i < workers; ++i) {
      asio::co_spawn(io,
                     ProbeWorker(client.get(), &http, &next, options_.probe_timeout_ms,
                                 options_.max_body_bytes),
                     asio::detached);
    }
    io.run();
    io.restart();
    client.reset();  // on the loop's thread, before the io_context goes
    io.poll();
  }
}

KeyCheck SpendChecker::Decide(Job& job) {
  KeyCheck c = std::move(job.check);
  if (job.spec.kind == provider::SpendProbeKind::kLedger) {
    auto spent = store_.LedgerSpendMicros(c.key_id);
    if (spent.ok()) {
      job.reading = provider::SpendReading{.spend_micros = *spent};
    } else {
      job.reading = spent.status();
    }
  }
  auto record = [&](KeyCheck& check) {
    store::SpendRecord r{.key_id = check.key_id,
                         .pool_id = check.pool_id,
                         .spend_micros = check.spend_micros,
                         .budget_micros = check.budget_micros,
                         .action = check.action,
                         .reason = check.action == "rotated" ? check.reason : "",
                         .new_key_id = check.new_key_id,
                         .error = check.error};
    auto added = store_.AddSpendRecord(r);
    if (!added.ok()) {
      Log(LogLevel::kWarn, "spend record not written key=" + std::to_string(check.key_id) + ": " +
                               added.status().ToString());
    }
  };

  if (!job.reading.ok()) {
    c.action = "failed";
    c.error = job.reading.status().message();
    c.budget_micros = job.key_budget ? job.key_budget : job.pool_budget;
    Log(LogLevel::kWarn, "spend probe failed pool=" + c.pool + " key=" + c.masked + " probe=" +
                             c.probe + " error=" + c.error);
    record(c);
    return c;
  }
  const provider::SpendReading& reading = *job.reading;
  // The upstream's budget first, then the key's own, then the pool's default.
  c.budget_micros = reading.budget_micros ? reading.budget_micros
                    : job.key_budget      ? job.key_budget
                                          : job.pool_budget;
  c.spend_micros = reading.spend_micros;
  // "Exceeded" means spend >= budget, whatever the message said.
  if (reading.exceeded && c.budget_micros) {
    c.spend_micros = std::max(c.spend_micros, *c.budget_micros);
  }

  Status updated = store_.UpdateSpend(c.key_id, c.spend_micros, reading.budget_micros);
  if (!updated.ok()) {
    Log(LogLevel::kWarn, "spend not stored key=" + c.masked + ": " + updated.ToString());
  }
  SpendDecision d = DecideSpend(c.spend_micros, c.budget_micros, job.threshold, reading.exceeded);
  if (!d.rotate) {
    c.action = "none";
    record(c);
    return c;
  }
  c.reason = std::string(d.reason);
  auto outcome = store_.Rotate(c.pool_id, c.key_id, d.reason, options_.actor);
  if (!outcome.ok()) {
    // Unknown whether it rotated (the store failed): the next pass sees the truth.
    c.action = "failed";
    c.error = "rotate: " + outcome.status().message();
    Log(LogLevel::kError, "spend rotation failed pool=" + c.pool + " key=" + c.masked + ": " +
                              outcome.status().ToString());
    record(c);
    return c;
  }
  std::visit(
      [&](const auto& o) {
        using T = std::decay_t<decltype(o)>;
        if constexpr (std::is_same_v<T, store::Rotated>) {
          c.action = "rotated";
          c.new_key_id = o.new_key_id;
          Log(LogLevel::kInfo, "spend rotation pool=" + c.pool + " key=" + c.masked + " reason=" +
                                   c.reason + " spend=" + FormatMicrosAsUsd(c.spend_micros) +
                                   " budget=" + FormatMicrosAsUsd(*c.budget_micros) +
                                   " new_key=" + std::to_string(o.new_key_id));
        } else if constexpr (std::is_same_v<T, store::AlreadyRotated>) {
          c.action = "already_rotated";  // someone else did it: no rotation of ours to record
        } else {
          c.action = "no_backup";
          Log(LogLevel::kError, "ALERT: spend checker found no backup pool=" + c.pool + " key=" +
                                    c.masked + " reason=" + c.reason +
                                    "; the key is now exhausted: import backups");
        }
      },
      *outcome);
  record(c);
  return c;
}

}  // namespace keygate::billing
