// argv -> a command: CLI11 wiring only (CLI11 lives in this one translation unit; it costs ~7 s to
// compile). The commands themselves are in commands.cc; opening the store in store_open.cc.
#include "cli/cli.h"

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <fstream>
#include <exception>
#include <functional>
#include <iostream>
#include <vector>

#include "cli/commands.h"
#include "cli/store_open.h"
#include "common/strings.h"
#include "config/config.h"
#include "server/server.h"
#include "store/migrations.h"

#ifndef KEYGATE_VERSION
#define KEYGATE_VERSION "unknown"
#endif

namespace keygate::cli {

namespace {

// One leaf command: what to run once argv selected it.
struct Leaf {
  CLI::App* app;
  bool may_create;  // may create a new SQLite store (commands that write)
  std::function<int(Context&)> run;
};

// IDs, counts and durations: whole numbers > 0, with a readable message (CLI11's own
// PositiveNumber prints the range of a double).
const CLI::Validator kPositive(
    [](std::string& value) -> std::string {
      auto n = ParseInt64(value);
      return n && *n > 0 ? std::string() : "must be a whole number greater than 0, not '" + value + "'";
    },
    "POSITIVE");

// The config file of `serve` and `spend check`: --config, else $KEYGATE_CONFIG, else
// ./keygate.toml when present; "" = none (the defaults).
std::string ConfigPath(const std::string& given) {
  if (!given.empty()) return given;
  const char* env = std::getenv("KEYGATE_CONFIG");
  if (env != nullptr && *env != '\0') return env;
  if (std::ifstream("keygate.toml").good()) return "keygate.toml";
  return "";
}

int RunWithStore(const std::string& store_url, bool json, const Leaf& leaf) {
  auto opened = OpenCliStore(store_url, leaf.may_create, std::cerr);
  if (!opened.ok()) return ReportError(std::cerr, opened.status());
  Context ctx{*opened->store, *opened->secrets, std::cin, std::cout, std::cerr, json};
  return leaf.run(ctx);
}

}  // namespace

int Main(int argc, char** argv) {
  CLI::App app{"keygate: an LLM API gateway over a self-healing pool of upstream keys.\n"
               "Exit codes: 0 ok, 1 runtime/storage error, 2 usage or corrupt input, 3 not found,\n"
               "4 conflict, 5 store unusable (master key, schema, read-only), 10 already_rotated,\n"
               "11 no_backup. See docs/cli.md."};
  app.name("keygate");
  app.require_subcommand(1);
  app.fallthrough();  // global options may follow the subcommand

  std::string store_url = DefaultStoreUrl();
  bool json = false;
  app.add_option("--store", store_url,
                 "SQLite path or postgres:// URL (default: $KEYGATE_STORE or keygate.db)");
  app.add_flag("--json", json, "print JSON instead of text");

  std::vector<Leaf> leaves;
  auto leaf = [&](CLI::App* parent, const std::string& name, const std::string& help,
                  bool may_create, std::function<int(Context&)> run) {
    CLI::App* sub = parent->add_subcommand(name, help);
    leaves.push_back({sub, may_create, std::move(run)});
    return sub;
  };

  // ---- version and serve (special: no Context)
  CLI::App* version = app.add_subcommand("version", "print the version and exit");
  server::ServeOptions serve_options;
  CLI::App* serve = app.add_subcommand("serve", "run the gateway");
  serve->add_option("--config", serve_options.config_path,
                    "TOML config file (default: $KEYGATE_CONFIG, else ./keygate.toml if present)");
  serve->add_option("--listen", serve_options.listen, "HOST:PORT to listen on (overrides the config)");

  // ---- pool
  CLI::App* pool = app.add_subcommand("pool", "manage pools");
  pool->require_subcommand(1);
  PoolCreateOptions pool_create;
  CLI::App* c = leaf(pool, "create", "create a pool", true,
                     [&](Context& ctx) { return PoolCreate(ctx, pool_create); });
  c->add_option("name", pool_create.name, "pool name")->required();
  c->add_option("--provider", pool_create.provider, "provider, e.g. openai, anthropic, litellm")
      ->required();
  c->add_option("--settings", pool_create.settings_json, "pool settings as a JSON object");
  leaf(pool, "list", "list pools with counts of keys by state", false,
       [&](Context& ctx) { return PoolList(ctx); });

  // ---- keys
  CLI::App* keys = app.add_subcommand("keys", "manage upstream keys");
  keys->require_subcommand(1);
  KeysImportOptions import_options;
  c = leaf(keys, "import", "import keys (one per line, or CSV with a header)", true,
           [&](Context& ctx) { return KeysImport(ctx, import_options); });
  c->add_option("--pool", import_options.pool, "target pool")->required();
  c->add_flag("--backup", import_options.backup, "import as backup (reserve) keys");
  c->add_option("--file", import_options.file, "input file; - or none = stdin");
  c->add_flag("--skip-duplicates", import_options.skip_duplicates,
              "import the new keys even when some are duplicates (reported, not inserted)");
  KeysListOptions list_options;
  c = leaf(keys, "list", "list keys (masked) with counts by state", false,
           [&](Context& ctx) { return KeysList(ctx, list_options); });
  c->add_option("--pool", list_options.pool, "only this pool");
  c->add_option("--state", list_options.state, "only this state")
      ->check(CLI::IsMember({"active", "backup", "cooling", "exhausted", "retired"}));
  int64_t key_id = 0;
  int64_t seconds = 0;
  std::string reason;
  c = leaf(keys, "cooldown", "skip a key until a deadline", false,
           [&](Context& ctx) { return KeysCooldown(ctx, key_id, seconds, reason); });
  c->add_option("--key", key_id, "key id")->required()->check(kPositive);
  c->add_option("--seconds", seconds, "cooldown length")->required()->check(kPositive);
  c->add_option("--reason", reason, "why")->default_val("manual cooldown");
  c = leaf(keys, "exhaust", "mark an active or cooling key exhausted", false,
           [&](Context& ctx) { return KeysExhaust(ctx, key_id, reason); });
  c->add_option("--key", key_id, "key id")->required()->check(kPositive);
  c->add_option("--reason", reason, "why")->default_val("marked exhausted by hand");
  std::string restore_as = "active";
  c = leaf(keys, "restore", "return a cooling, exhausted or retired key to service", false,
           [&](Context& ctx) { return KeysRestore(ctx, key_id, restore_as); });
  c->add_option("--key", key_id, "key id")->required()->check(kPositive);
  c->add_option("--as", restore_as, "active or backup")
      ->capture_default_str()
      ->check(CLI::IsMember({"active", "backup"}));
  c = leaf(keys, "delete", "delete a key and its bindings", false,
           [&](Context& ctx) { return KeysDelete(ctx, key_id); });
  c->add_option("--key", key_id, "key id")->required()->check(kPositive);

  // ---- proxies and bindings
  CLI::App* proxies = app.add_subcommand("proxies", "manage egress proxies");
  proxies->require_subcommand(1);
  std::string proxy_url;
  c = leaf(proxies, "add", "add an egress proxy (or update its password)", true,
           [&](Context& ctx) { return ProxiesAdd(ctx, proxy_url); });
  c->add_option("url", proxy_url, "http|https|socks5|socks5h://[user[:password]@]host[:port]")
      ->required();
  leaf(proxies, "list", "list proxies (passwords never shown)", false,
       [&](Context& ctx) { return ProxiesList(ctx); });
  int64_t proxy_id = 0;
  c = leaf(proxies, "delete", "delete a proxy and its bindings", false,
           [&](Context& ctx) { return ProxiesDelete(ctx, proxy_id); });
  c->add_option("--id", proxy_id, "proxy id")->required()->check(kPositive);
  int64_t priority = 0;
  c = leaf(&app, "bind", "send a key's requests through a proxy", false,
           [&](Context& ctx) { return Bind(ctx, key_id, proxy_id, priority); });
  c->add_option("--key", key_id, "key id")->required()->check(kPositive);
  c->add_option("--proxy", proxy_id, "proxy id")->required()->check(kPositive);
  c->add_option("--priority", priority, "higher is tried first")->capture_default_str();
  c = leaf(&app, "unbind", "remove a key-proxy binding", false,
           [&](Context& ctx) { return Unbind(ctx, key_id, proxy_id); });
  c->add_option("--key", key_id, "key id")->required()->check(kPositive);
  c->add_option("--proxy", proxy_id, "proxy id")->required()->check(kPositive);

  // ---- rotation and history
  RotateOptions rotate_options;
  c = leaf(&app, "rotate", "retire a failed key and activate a backup in its place", false,
           [&](Context& ctx) { return Rotate(ctx, rotate_options); });
  c->add_option("--pool", rotate_options.pool, "pool of the key")->required();
  c->add_option("--key", rotate_options.key_id, "the failed key")
      ->required()
      ->check(kPositive);
  c->add_option("--reason", rotate_options.reason, "why")->capture_default_str();
  CLI::App* history = app.add_subcommand("history", "show history");
  history->require_subcommand(1);
  HistoryOptions history_options;
  int64_t history_key = 0;
  c = leaf(history, "rotations", "rotation records, newest first", false,
           [&](Context& ctx) {
             if (history_key > 0) history_options.key_id = history_key;
             return HistoryRotations(ctx, history_options);
           });
  c->add_option("--pool", history_options.pool, "only this pool");
  c->add_option("--key", history_key, "only rotations of this key (failed or new)")
      ->check(kPositive);
  c->add_option("--limit", history_options.limit, "at most this many")
      ->capture_default_str()
      ->check(kPositive);

  HistoryOptions spend_history;
  int64_t spend_history_key = 0;
  c = leaf(history, "spend", "spend records (one per spend check), newest first", false,
           [&](Context& ctx) {
             if (spend_history_key > 0) spend_history.key_id = spend_history_key;
             return HistorySpend(ctx, spend_history);
           });
  c->add_option("--pool", spend_history.pool, "only this pool");
  c->add_option("--key", spend_history_key, "only this key")->check(kPositive);
  c->add_option("--limit", spend_history.limit, "at most this many")
      ->capture_default_str()
      ->check(kPositive);

  // ---- spend checker
  CLI::App* spend = app.add_subcommand("spend", "the spend checker");
  spend->require_subcommand(1);
  SpendCheckOptions spend_check;
  std::string spend_config;
  // Both spend commands read the config (probes, providers, pool budgets) before running.
  auto with_spend_config = [&](int (*command)(Context&, const SpendCheckOptions&)) {
    return [&, command](Context& ctx) {
      config::Config cfg = config::Defaults();
      std::string path = ConfigPath(spend_config);
      if (!path.empty()) {
        auto loaded = config::LoadConfigFile(path);
        if (!loaded.ok()) {
          ctx.err << "keygate: error: " << loaded.status().message() << '\n';
          return loaded.status().code() == StatusCode::kNotFound ? kExitNotFound : kExitUsage;
        }
        cfg = std::move(loaded).value();
      }
      spend_check.config = &cfg;
      return command(ctx, spend_check);
    };
  };
  c = leaf(spend, "check",
           "probe the spend of every active key of the pools with a spend_probe, once; rotate "
           "at budget or threshold",
           false, with_spend_config(&SpendCheck));
  c->add_option("--pool", spend_check.pool, "only this pool");
  c->add_option("--config", spend_config,
                "TOML config file naming the probes (default: $KEYGATE_CONFIG, else "
                "./keygate.toml if present)");
  c = leaf(spend, "stats",
           "in-service keys per pool by spend band (under 50 %, 50-85 %, 85-95 %, 95 % and "
           "over of their budget), from the last known spend",
           false, with_spend_config(&SpendStats));
  c->add_option("--pool", spend_check.pool, "only this pool");
  c->add_option("--config", spend_config,
                "TOML config file with the pools' budgets (default: $KEYGATE_CONFIG, else "
                "./keygate.toml if present)");

  // ---- client keys
  CLI::App* clients = app.add_subcommand("clients", "manage client keys");
  clients->require_subcommand(1);
  std::string client_name;
  int64_t client_id = 0;
  ClientSettings client_settings;
  auto settings_flags = [&](CLI::App* cmd) {
    cmd->add_option("--credits", client_settings.credits,
                    "balance in USD (e.g. 25 or 0.5), or 'unlimited' (the default)");
    cmd->add_option("--models", client_settings.models,
                    "comma-separated catalog ids the key may use, or '*' (every model)");
    cmd->add_option("--rpm", client_settings.rpm, "requests per minute, or 'none'");
    cmd->add_option("--tpm", client_settings.tpm, "tokens per minute, or 'none'");
    cmd->add_option("--concurrency", client_settings.concurrency,
                    "requests in flight at once, or 'none'");
    cmd->add_option("--expires", client_settings.expires,
                    "UTC date or time (2026-12-31, 2026-12-31T12:00:00Z), or 'never'");
    cmd->add_option("--cap", client_settings.caps,
                    "MODEL=USD: what the key may spend on MODEL ('*' = any model without a cap "
                    "of its own); repeatable")
        ->take_first();
  };
  c = leaf(clients, "create", "create a client key (printed once)", true,
           [&](Context& ctx) { return ClientsCreate(ctx, client_name, client_settings); });
  c->add_option("name", client_name, "who the key is for")->required();
  settings_flags(c);
  c->add_option("--parent", client_settings.parent,
                "make a sub-key spending this key's credits (under its own --cap)")
      ->check(kPositive);
  leaf(clients, "list", "list client keys (hints only)", false,
       [&](Context& ctx) { return ClientsList(ctx); });
  c = leaf(clients, "update", "change a client key's credits, models, limits, expiry or caps",
           false, [&](Context& ctx) { return ClientsUpdate(ctx, client_id, client_settings); });
  c->add_option("id", client_id, "client key id")->required()->check(kPositive);
  settings_flags(c);
  c->add_option("--add-credits", client_settings.add_credits,
                "USD to add to the balance (negative takes back), atomically");
  for (bool enable : {true, false}) {
    c = leaf(clients, enable ? "enable" : "disable",
             enable ? "let a disabled client key in again" : "refuse a client key (401)", false,
             [&, enable](Context& ctx) { return ClientsEnable(ctx, client_id, enable); });
    c->add_option("id", client_id, "client key id")->required()->check(kPositive);
  }
  c = leaf(clients, "roll", "give a client key a new secret (printed once); the old one stops",
           false, [&](Context& ctx) { return ClientsRoll(ctx, client_id); });
  c->add_option("id", client_id, "client key id")->required()->check(kPositive);
  c = leaf(clients, "delete", "delete a client key (its usage records stay)", false,
           [&](Context& ctx) { return ClientsDelete(ctx, client_id); });
  c->add_option("id", client_id, "client key id")->required()->check(kPositive);

  // ---- usage reports
  UsageOptions usage;
  c = leaf(&app, "usage", "requests, tokens and cost by day, client key and model", false,
           [&](Context& ctx) { return UsageReport(ctx, usage); });
  c->add_option("--key", usage.key_id, "only this client key id")->check(kPositive);
  c->add_option("--model", usage.model, "only this model (catalog id)");
  c->add_option("--since", usage.since, "from this UTC date or time (2026-11-01)");
  c->add_option("--until", usage.until,
                "before this UTC time, or up to the end of this UTC date (2026-11-30)");

  // ---- traffic over time
  ops::TrafficParams traffic;
  c = leaf(&app, "traffic",
           "requests, errors, latency and time to first byte per time bucket (every instance)",
           false, [&](Context& ctx) { return Traffic(ctx, traffic); });
  c->add_option("--since", traffic.since, "this long back from now (15m, 6h, 1d; default 1h)");
  c->add_option("--from", traffic.from, "from this UTC date or time instead of --since");
  c->add_option("--to", traffic.to, "before this UTC date or time (default now)");
  c->add_option("--bucket", traffic.bucket, "bucket size, 10s to 1d (default 1m)");
  c->add_option("--pool", traffic.pool, "only this pool");
  c->add_option("--key", traffic.client_key_id, "only this client key id")->check(kPositive);
  c->add_option("--upstream-key", traffic.upstream_key_id, "only this upstream key id")
      ->check(kPositive);
  c->add_option("--model", traffic.model, "only this model (catalog id)");

  // ---- admin keys and the audit log
  CLI::App* admin_key = app.add_subcommand("admin-key", "manage admin API keys");
  admin_key->require_subcommand(1);
  std::string admin_name;
  c = leaf(admin_key, "create", "create an admin key (printed once)", true,
           [&](Context& ctx) { return AdminKeyCreate(ctx, admin_name); });
  c->add_option("name", admin_name, "who the key is for (unique)")->required();
  leaf(admin_key, "list", "list admin keys (hints only)", false,
       [&](Context& ctx) { return AdminKeyList(ctx); });
  c = leaf(admin_key, "delete", "delete an admin key (it stops working at once)", true,
           [&](Context& ctx) { return AdminKeyDelete(ctx, admin_name); });
  c->add_option("name", admin_name, "the admin key's name")->required();
  CLI::App* audit = app.add_subcommand("audit", "the audit log of admin actions");
  audit->require_subcommand(1);
  int64_t audit_limit = 100;
  c = leaf(audit, "list", "list admin actions, newest first", false,
           [&](Context& ctx) { return AuditList(ctx, audit_limit); });
  c->add_option("--limit", audit_limit, "at most this many records")->check(kPositive);

  // ---- migration
  CLI::App* import = app.add_subcommand("import", "import from other systems");
  import->require_subcommand(1);
  std::string mongo_dir;
  c = leaf(import, "mongo", "import a mongoexport directory of the old MongoDB system", true,
           [&](Context& ctx) { return ImportMongo(ctx, mongo_dir); });
  c->add_option("dir", mongo_dir, "directory of <collection>.json files")->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help
    std::cerr << "keygate: error: " << e.what() << " (see keygate --help)\n";
    return kExitUsage;
  }

  try {
    if (version->parsed()) {
      std::cout << "keygate " << KEYGATE_VERSION << " (schema version "
                << store::LatestSchemaVersion() << ")\n";
      return kExitOk;
    }
    if (serve->parsed()) {
      // Before the store starts any thread, so that only sigwait() sees SIGINT/SIGTERM/SIGHUP.
      server::BlockSignals();
      serve_options.config_path = ConfigPath(serve_options.config_path);
      config::Config cfg = config::Defaults();
      if (!serve_options.config_path.empty()) {
        auto loaded = config::LoadConfigFile(serve_options.config_path);
        if (!loaded.ok()) {
          std::cerr << "keygate: error: " << loaded.status().message() << '\n';
          return loaded.status().code() == StatusCode::kNotFound ? kExitNotFound : kExitUsage;
        }
        cfg = std::move(loaded).value();
      }
      // The store: --store, else $KEYGATE_STORE, else the config's store.url.
      const char* env_store = std::getenv("KEYGATE_STORE");
      bool store_given = app.get_option("--store")->count() > 0 ||
                         (env_store != nullptr && *env_store != '\0');
      if (store_given) cfg.store.url = store_url;
      auto opened = OpenCliStore(cfg.store.url, /*may_create=*/true, std::cerr);
      if (!opened.ok()) return ReportError(std::cerr, opened.status());
      Status s = server::Serve(std::move(cfg), serve_options, *opened->store, opened->secrets,
                               std::cerr);
      return s.ok() ? kExitOk : ReportError(std::cerr, s);
    }
    for (const Leaf& l : leaves) {
      if (l.app->parsed()) return RunWithStore(store_url, json, l);
    }
    std::cerr << "keygate: error: no command given (see keygate --help)\n";
    return kExitUsage;
  } catch (const std::exception& e) {
    // Third-party code (Boost.JSON, the standard library) may throw; stop at the edge.
    std::cerr << "keygate: error: internal error: " << e.what() << '\n';
    return kExitError;
  }
}

}  // namespace keygate::cli
