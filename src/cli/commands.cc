#include "cli/commands.h"

#include <boost/json.hpp>
#include <algorithm>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <unordered_map>
#include <variant>

#include "billing/spend_checker.h"
#include "billing/spend_stats.h"
#include "cli/mongo_import.h"
#include "common/clock.h"
#include "common/proxy_url.h"
#include "common/strings.h"
#include "keypool/keypool.h"
#include "ops/ops.h"

namespace keygate::cli {

namespace json = boost::json;
using store::KeyState;

namespace {

// ---------------------------------------------------------------- output helpers

// A left-aligned text table: columns as wide as their widest cell, two spaces apart.
class Table {
 public:
  explicit Table(std::vector<std::string> header) : rows_{std::move(header)} {}
  void Add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  void Print(std::ostream& out) const {
    std::vector<size_t> width;
    for (const auto& row : rows_) {
      width.resize(std::max(width.size(), row.size()), 0);
      for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], DisplayWidth(row[i]));
    }
    for (const auto& row : rows_) {
      std::string line;
      for (size_t i = 0; i < row.size(); ++i) {
        line += row[i];
        if (i + 1 < row.size()) line.append(width[i] - DisplayWidth(row[i]) + 2, ' ');
      }
      out << Trim(line) << '\n';
    }
  }

 private:
  // Counts UTF-8 code points, so "sk-…abcd" lines up.
  static size_t DisplayWidth(const std::string& s) {
    size_t n = 0;
    for (unsigned char c : s) n += (c & 0xC0) != 0x80;
    return n;
  }
  std::vector<std::vector<std::string>> rows_;
};

void PrintJson(Context& ctx, const json::value& v) { ctx.out << json::serialize(v) << '\n'; }

std::string OrDash(const std::string& s) { return s.empty() ? "-" : s; }
json::value JsonOpt(std::optional<int64_t> v) { return v ? json::value(*v) : json::value(nullptr); }
std::string CountsText(const store::StateCounts& c) {
  return std::to_string(c.total()) + (c.total() == 1 ? " key: " : " keys: ") +
         std::to_string(c.active) + " active, " + std::to_string(c.backup) + " backup, " +
         std::to_string(c.cooling) + " cooling, " + std::to_string(c.exhausted) + " exhausted, " +
         std::to_string(c.retired) + " retired";
}

// Reads a whole file, or ctx.in for "" and "-".
StatusOr<std::string> ReadInput(Context& ctx, const std::string& file) {
  std::stringstream ss;
  if (file.empty() || file == "-") {
    ss << ctx.in.rdbuf();
    return ss.str();
  }
  std::ifstream in(file, std::ios::binary);
  if (!in) return NotFoundError("cannot read " + file);
  ss << in.rdbuf();
  if (in.bad()) return UnavailableError("error reading " + file);
  return ss.str();
}

int Done(Context& ctx, const std::string& text, json::object obj) {
  if (ctx.json) {
    PrintJson(ctx, obj);
  } else {
    ctx.out << text << '\n';
  }
  return kExitOk;
}

// A state change that did not apply: the key exists but its state does not allow it.
int NotApplied(Context& ctx, const std::string& message) {
  ReportError(ctx.err, FailedPreconditionError(message));
  return kExitConflict;
}

// Prints the outcome of a key state change (ops/ops.h): the result, or why it did not apply.
int Changed(Context& ctx, const StatusOr<ops::KeyChange>& change) {
  if (!change.ok()) return ReportError(ctx.err, change.status());
  if (!change->applied) return NotApplied(ctx, change->message);
  return Done(ctx, change->message, change->json);
}

// A table cell from a listing document: strings as they are, numbers in decimal, null and ""
// as "-".
std::string Cell(const json::object& o, const char* field) {
  const json::value* v = o.if_contains(field);
  if (v == nullptr || v->is_null()) return "-";
  if (v->is_string()) return v->as_string().empty() ? "-" : std::string(v->as_string());
  if (v->is_int64()) return std::to_string(v->as_int64());
  return json::serialize(*v);
}

// A history page: its JSON document, or the table (or `empty_text` when there are no rows).
int PrintPage(Context& ctx, json::object page, const char* kind, bool empty,
              const char* empty_text, const Table& table) {
  if (ctx.json) {
    PrintJson(ctx, json::object{{kind, std::move(page.at(kind))}});
  } else if (empty) {
    ctx.out << empty_text << '\n';
  } else {
    table.Print(ctx.out);
  }
  return kExitOk;
}

}  // namespace

// ---------------------------------------------------------------- exit codes

int ExitCodeFor(const Status& status) {
  switch (status.code()) {
    case StatusCode::kOk: return kExitOk;
    case StatusCode::kInvalidArgument: return kExitUsage;
    case StatusCode::kNotFound: return kExitNotFound;
    case StatusCode::kAlreadyExists: return kExitConflict;
    case StatusCode::kFailedPrecondition:
    case StatusCode::kPermissionDenied: return kExitStoreUnusable;
    case StatusCode::kUnavailable:
    case StatusCode::kAborted:
    case StatusCode::kInternal: return kExitError;
  }
  return kExitError;
}

int ReportError(std::ostream& err, const Status& status) {
  // One line, always: drivers (libpq) report several lines with tabs.
  std::string message;
  for (char ch : status.message()) {
    if (ch == '\n' || ch == '\r' || ch == '\t') ch = ' ';
    if (ch == ' ' && !message.empty() && message.back() == ' ') continue;
    message += ch;
  }
  err << "keygate: error: " << Trim(message) << '\n';
  return ExitCodeFor(status);
}

// ---------------------------------------------------------------- pools

int PoolCreate(Context& ctx, const PoolCreateOptions& o) {
  auto pool = ops::CreatePool(ctx.store, o.name, o.provider, o.settings_json);
  if (!pool.ok()) {
    Status st = pool.status();
    if (st.code() == StatusCode::kInvalidArgument && st.message() == "settings must be a JSON object") {
      st = InvalidArgumentError("--settings must be a JSON object");
    }
    return ReportError(ctx.err, st);
  }
  return Done(ctx, "created pool " + pool->name + " (id " + std::to_string(pool->id) +
                       ", provider " + pool->provider + ")",
              {{"id", pool->id}, {"name", pool->name}, {"provider", pool->provider}});
}

int PoolList(Context& ctx) {
  auto pools = ops::ListPools(ctx.store);
  if (!pools.ok()) return ReportError(ctx.err, pools.status());
  json::array arr;
  Table table({"ID", "NAME", "PROVIDER", "VERSION", "ACTIVE", "BACKUP", "COOLING", "EXHAUSTED",
               "RETIRED", "TOTAL"});
  for (const ops::PoolSummary& s : *pools) {
    const store::Pool& p = s.pool;
    const store::StateCounts& c = s.counts;
    arr.push_back(ops::PoolJson(s));
    table.Add({std::to_string(p.id), p.name, p.provider, std::to_string(p.version),
               std::to_string(c.active), std::to_string(c.backup), std::to_string(c.cooling),
               std::to_string(c.exhausted), std::to_string(c.retired), std::to_string(c.total())});
  }
  if (ctx.json) {
    PrintJson(ctx, json::object{{"pools", std::move(arr)}});
  } else if (pools->empty()) {
    ctx.out << "no pools (create one: keygate pool create NAME --provider P)\n";
  } else {
    table.Print(ctx.out);
  }
  return kExitOk;
}

// ---------------------------------------------------------------- keys

int KeysImport(Context& ctx, const KeysImportOptions& o) {
  auto pool = ctx.store.GetPool(o.pool);
  if (!pool.ok()) return ReportError(ctx.err, pool.status());
  const std::string source = (o.file.empty() || o.file == "-") ? "stdin" : o.file;
  auto text = ReadInput(ctx, o.file);
  if (!text.ok()) return ReportError(ctx.err, text.status());
  auto report = ops::ImportKeys(ctx.store, ctx.secrets,
                                {.pool = o.pool,
                                 .text = std::move(text).value(),
                                 .source = source,
                                 .backup = o.backup,
                                 .skip_duplicates = o.skip_duplicates});
  if (!report.ok()) return ReportError(ctx.err, report.status());
  if (!report->imported) {
    if (ctx.json) PrintJson(ctx, report->Json());
    for (const auto& d : report->duplicates) ctx.err << "keygate: duplicate: " << d.text << '\n';
    return ReportError(
        ctx.err, AlreadyExistsError(
                     std::to_string(report->duplicates.size()) + " of " +
                     std::to_string(report->entries) + " keys in " + source +
                     " are duplicates; nothing was imported (use --skip-duplicates to import the "
                     "others)"));
  }
  if (report->entries == 0) {
    return Done(ctx, "no keys in " + source + "; nothing imported",
                {{"pool", report->pool}, {"inserted", 0}, {"duplicates", json::array()}});
  }
  if (ctx.json) {
    PrintJson(ctx, report->Json());
  } else {
    const int64_t dups = static_cast<int64_t>(report->duplicates.size());
    ctx.out << "imported " << report->inserted << (report->inserted == 1 ? " key" : " keys")
            << " into pool " << report->pool << " as " << store::KeyStateName(report->state)
            << " (" << dups << (dups == 1 ? " duplicate" : " duplicates") << " skipped";
    if (report->proxies_added > 0) ctx.out << ", " << report->proxies_added << " proxies added";
    ctx.out << ")\n";
    for (const auto& d : report->duplicates) ctx.out << "  duplicate skipped: " << d.text << '\n';
  }
  if (report->concurrent_duplicates > 0) {
    return ReportError(ctx.err, AlreadyExistsError(std::to_string(report->concurrent_duplicates) +
                                                   " keys were stored concurrently by another "
                                                   "process and were skipped"));
  }
  return kExitOk;
}

int KeysList(Context& ctx, const KeysListOptions& o) {
  auto listing = ops::ListKeys(ctx.store, o.pool, o.state);
  if (!listing.ok()) return ReportError(ctx.err, listing.status());
  json::array arr;
  Table table({"ID", "POOL", "STATE", "KEY", "PRIORITY", "BUDGET", "SPEND", "PROXIES", "LABEL",
               "NOTE"});
  for (const ops::KeyRow& row : listing->rows) {
    const store::UpstreamKey& k = row.key;
    std::string proxies_text;
    for (int64_t p : row.proxies) {
      proxies_text += (proxies_text.empty() ? "" : ",") + std::to_string(p);
    }
    arr.push_back(ops::KeyJson(row));
    table.Add({std::to_string(k.id), row.pool, std::string(store::KeyStateName(k.state)),
               k.masked, std::to_string(k.priority),
               k.budget_micros ? "$" + FormatMicrosAsUsd(*k.budget_micros) : "-",
               "$" + FormatMicrosAsUsd(k.spend_micros), OrDash(proxies_text), OrDash(k.label),
               OrDash(row.note)});
  }
  if (ctx.json) {
    PrintJson(ctx, json::object{{"keys", std::move(arr)},
                                {"counts", ops::CountsJson(listing->counts)}});
  } else {
    if (!listing->rows.empty()) table.Print(ctx.out);
    ctx.out << CountsText(listing->counts) << '\n';
  }
  return kExitOk;
}

int KeysCooldown(Context& ctx, int64_t key_id, int64_t seconds, const std::string& reason) {
  if (seconds <= 0) return ReportError(ctx.err, InvalidArgumentError("--seconds must be > 0"));
  return Changed(ctx, ops::CoolDownKey(ctx.store, RealClock::Get(), key_id, seconds, reason));
}

int KeysExhaust(Context& ctx, int64_t key_id, const std::string& reason) {
  return Changed(ctx, ops::ExhaustKey(ctx.store, key_id, reason));
}

int KeysRestore(Context& ctx, int64_t key_id, const std::string& as_state) {
  auto target = store::ParseKeyState(as_state);
  if (!target || (*target != KeyState::kActive && *target != KeyState::kBackup)) {
    return ReportError(ctx.err, InvalidArgumentError("--as must be active or backup"));
  }
  return Changed(ctx, ops::RestoreKey(ctx.store, key_id, as_state));
}

int KeysDelete(Context& ctx, int64_t key_id) {
  auto deleted = ctx.store.DeleteKey(key_id);
  if (!deleted.ok()) return ReportError(ctx.err, deleted.status());
  if (!*deleted) {
    return ReportError(ctx.err, NotFoundError("key " + std::to_string(key_id) + " does not exist"));
  }
  return Done(ctx, "deleted key " + std::to_string(key_id) + " and its bindings",
              {{"key_id", key_id}, {"deleted", true}});
}

// ---------------------------------------------------------------- proxies

int ProxiesAdd(Context& ctx, const std::string& url) {
  auto parsed = ParseProxyUrl(url);
  if (!parsed.ok()) return ReportError(ctx.err, parsed.status());
  bool created = false;
  auto proxy = ctx.store.AddProxy(*parsed, &created);
  if (!proxy.ok()) return ReportError(ctx.err, proxy.status());
  std::string display = proxy->url.DisplayUrl();
  return Done(ctx,
              created ? "added proxy " + std::to_string(proxy->id) + ": " + display
                      : "proxy " + std::to_string(proxy->id) + " already exists: " + display +
                            (parsed->password.empty() ? "" : " (password updated)"),
              {{"id", proxy->id},
               {"url", display},
               {"created", created},
               {"has_password", proxy->has_password}});
}

int ProxiesList(Context& ctx) {
  auto proxies = ops::ListProxies(ctx.store);
  if (!proxies.ok()) return ReportError(ctx.err, proxies.status());
  json::array arr;
  Table table({"ID", "URL", "PASSWORD", "HEALTHY", "KEYS", "LAST_ERROR"});
  for (const ops::ProxyRow& row : *proxies) {
    const store::Proxy& p = row.proxy;
    arr.push_back(ops::ProxyJson(row));
    table.Add({std::to_string(p.id), p.url.DisplayUrl(), p.has_password ? "yes" : "no",
               p.healthy ? "yes" : "no", std::to_string(row.bound_keys), OrDash(p.last_error)});
  }
  if (ctx.json) {
    PrintJson(ctx, json::object{{"proxies", std::move(arr)}});
  } else if (proxies->empty()) {
    ctx.out << "no proxies\n";
  } else {
    table.Print(ctx.out);
  }
  return kExitOk;
}

int ProxiesDelete(Context& ctx, int64_t proxy_id) {
  auto deleted = ctx.store.DeleteProxy(proxy_id);
  if (!deleted.ok()) return ReportError(ctx.err, deleted.status());
  if (!*deleted) {
    return ReportError(ctx.err,
                       NotFoundError("proxy " + std::to_string(proxy_id) + " does not exist"));
  }
  return Done(ctx, "deleted proxy " + std::to_string(proxy_id) + " and its bindings",
              {{"proxy_id", proxy_id}, {"deleted", true}});
}

int Bind(Context& ctx, int64_t key_id, int64_t proxy_id, int64_t priority) {
  auto created = ctx.store.Bind(key_id, proxy_id, priority);
  if (!created.ok()) return ReportError(ctx.err, created.status());
  return Done(ctx,
              (*created ? "bound key " : "updated binding of key ") + std::to_string(key_id) +
                  " to proxy " + std::to_string(proxy_id) + " (priority " +
                  std::to_string(priority) + ")",
              {{"key_id", key_id},
               {"proxy_id", proxy_id},
               {"priority", priority},
               {"created", *created}});
}

int Unbind(Context& ctx, int64_t key_id, int64_t proxy_id) {
  auto removed = ctx.store.Unbind(key_id, proxy_id);
  if (!removed.ok()) return ReportError(ctx.err, removed.status());
  if (!*removed) {
    return ReportError(ctx.err, NotFoundError("key " + std::to_string(key_id) +
                                              " is not bound to proxy " +
                                              std::to_string(proxy_id)));
  }
  return Done(ctx, "unbound key " + std::to_string(key_id) + " from proxy " +
                       std::to_string(proxy_id),
              {{"key_id", key_id}, {"proxy_id", proxy_id}, {"removed", true}});
}

// ---------------------------------------------------------------- rotation

int Rotate(Context& ctx, const RotateOptions& o) {
  if (Trim(o.reason).empty()) {
    auto pool = ctx.store.GetPool(o.pool);
    if (!pool.ok()) return ReportError(ctx.err, pool.status());
    return ReportError(ctx.err, InvalidArgumentError("--reason must not be empty"));
  }
  auto report = ops::RotateKey(ctx.store, o.pool, o.key_id, o.reason, "cli");
  if (!report.ok()) return ReportError(ctx.err, report.status());
  if (ctx.json) {
    PrintJson(ctx, report->json);
  } else {
    ctx.out << report->message << '\n';
  }
  if (std::holds_alternative<store::AlreadyRotated>(report->outcome)) return kExitAlreadyRotated;
  if (std::holds_alternative<store::NoBackup>(report->outcome)) return kExitNoBackup;
  return kExitOk;
}

int HistoryRotations(Context& ctx, const HistoryOptions& o) {
  if (o.limit <= 0) return ReportError(ctx.err, InvalidArgumentError("--limit must be > 0"));
  auto page = ops::RotationHistory(ctx.store, {.pool = o.pool, .key_id = o.key_id, .limit = o.limit});
  if (!page.ok()) return ReportError(ctx.err, page.status());
  Table table({"ID", "TIME", "POOL", "FAILED_KEY", "NEW_KEY", "OUTCOME", "REASON", "ACTOR"});
  const json::array& rows = page->at("rotations").as_array();
  for (const json::value& v : rows) {
    const json::object& r = v.as_object();
    table.Add({Cell(r, "id"), Cell(r, "time"), Cell(r, "pool"), Cell(r, "failed_key_id"),
               Cell(r, "new_key_id"), Cell(r, "outcome"), Cell(r, "reason"), Cell(r, "actor")});
  }
  return PrintPage(ctx, std::move(page).value(), "rotations", rows.empty(), "no rotations", table);
}

int HistorySpend(Context& ctx, const HistoryOptions& o) {
  if (o.limit <= 0) return ReportError(ctx.err, InvalidArgumentError("--limit must be > 0"));
  auto page = ops::SpendHistory(ctx.store, {.pool = o.pool, .key_id = o.key_id, .limit = o.limit});
  if (!page.ok()) return ReportError(ctx.err, page.status());
  Table table({"ID", "TIME", "POOL", "KEY", "SPEND", "BUDGET", "ACTION", "REASON", "NEW_KEY",
               "ERROR"});
  const json::array& rows = page->at("spend").as_array();
  for (const json::value& v : rows) {
    const json::object& r = v.as_object();
    std::string budget = Cell(r, "budget_usd");
    table.Add({Cell(r, "id"), Cell(r, "time"), Cell(r, "pool"), Cell(r, "key_id"),
               "$" + Cell(r, "spend_usd"), budget == "-" ? budget : "$" + budget,
               Cell(r, "action"), Cell(r, "reason"), Cell(r, "new_key_id"), Cell(r, "error")});
  }
  return PrintPage(ctx, std::move(page).value(), "spend", rows.empty(), "no spend records", table);
}

// ---------------------------------------------------------------- spend checker

int SpendCheck(Context& ctx, const SpendCheckOptions& o) {
  if (o.config == nullptr) return ReportError(ctx.err, InternalError("no config"));
  if (!o.pool.empty()) {
    auto pool = ctx.store.GetPool(o.pool);
    if (!pool.ok()) return ReportError(ctx.err, pool.status());
  }
  keypool::KeyPool keys(ctx.store, RealClock::Get(), keypool::Options{});
  keys.Configure(o.config->pools);
  billing::SpendCheckerOptions options;
  options.client.ca_file = o.config->upstream.ca_file;
  billing::SpendChecker checker(ctx.store, keys, RealClock::Get(), options);
  checker.Configure(std::make_shared<const config::Config>(*o.config));
  auto report = checker.RunPass({.pool = o.pool});
  if (!report.ok()) return ReportError(ctx.err, report.status());
  json::array arr;
  Table table({"POOL", "KEY", "MASKED", "PROBE", "SPEND", "BUDGET", "ACTION", "REASON", "NEW_KEY",
               "ERROR"});
  for (const billing::KeyCheck& c : report->checks) {
    json::value budget = c.budget_micros ? json::value(FormatMicrosAsUsd(*c.budget_micros))
                                         : json::value(nullptr);
    arr.push_back(json::object{{"pool", c.pool},
                               {"key_id", c.key_id},
                               {"masked", c.masked},
                               {"probe", c.probe},
                               {"spend_usd", FormatMicrosAsUsd(c.spend_micros)},
                               {"budget_usd", budget},
                               {"action", c.action},
                               {"reason", c.reason},
                               {"new_key_id", JsonOpt(c.new_key_id)},
                               {"error", c.error}});
    table.Add({c.pool, std::to_string(c.key_id), c.masked, c.probe,
               c.action == "failed" ? "-" : "$" + FormatMicrosAsUsd(c.spend_micros),
               c.budget_micros ? "$" + FormatMicrosAsUsd(*c.budget_micros) : "-", c.action,
               OrDash(c.reason), c.new_key_id ? std::to_string(*c.new_key_id) : "-",
               OrDash(c.error)});
  }
  const int64_t checked = static_cast<int64_t>(report->checks.size());
  if (ctx.json) {
    PrintJson(ctx, json::object{{"checks", std::move(arr)},
                                {"checked", checked},
                                {"rotated", report->rotated},
                                {"already_rotated", report->already_rotated},
                                {"no_backup", report->no_backup},
                                {"failed", report->failed}});
  } else {
    if (checked > 0) table.Print(ctx.out);
    ctx.out << checked << " keys checked: " << report->rotated << " rotated, "
            << report->already_rotated << " already rotated, " << report->no_backup
            << " without backup, " << report->failed << " failed\n";
  }
  return report->failed > 0 ? kExitError : kExitOk;
}

int SpendStats(Context& ctx, const SpendCheckOptions& o) {
  if (o.config == nullptr) return ReportError(ctx.err, InternalError("no config"));
  auto stats = ops::SpendStats(ctx.store, *o.config, o.pool);
  if (!stats.ok()) return ReportError(ctx.err, stats.status());
  if (ctx.json) {
    PrintJson(ctx, *stats);
    return kExitOk;
  }
  std::vector<std::string> head = {"POOL", "KEYS", "SPEND"};
  for (billing::SpendBand b : billing::kAllSpendBands) {
    std::string name(billing::SpendBandName(b));
    for (char& ch : name) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    head.push_back(name);
  }
  Table table(head);
  for (const json::value& v : stats->at("pools").as_array()) {
    const json::object& p = v.as_object();
    std::vector<std::string> row = {Cell(p, "pool"), Cell(p, "keys"), "$" + Cell(p, "spend_usd")};
    const json::object& bands = p.at("bands").as_object();
    for (billing::SpendBand b : billing::kAllSpendBands) {
      row.push_back(Cell(bands, std::string(billing::SpendBandName(b)).c_str()));
    }
    table.Add(row);
  }
  table.Print(ctx.out);
  return kExitOk;
}

// ---------------------------------------------------------------- client keys

namespace {

// Client-key operations refuse a state (sub-keys present, credits on an unlimited key) with
// FailedPrecondition: for the CLI that is a conflict, not an unusable store.
int ReportClientError(Context& ctx, const Status& status) {
  int code = ReportError(ctx.err, status);
  return status.code() == StatusCode::kFailedPrecondition ? kExitConflict : code;
}

std::string LimitText(const std::optional<int64_t>& v) { return v ? std::to_string(*v) : "-"; }

// Prints a freshly made secret once (create, roll).
void PrintNewSecret(Context& ctx, const store::ClientKey& k, const std::string& token,
                    std::string_view verb) {
  if (ctx.json) {
    json::object o = ops::ClientJson(k);
    o["key"] = token;
    PrintJson(ctx, o);
  } else {
    ctx.out << token << '\n';
  }
  ctx.err << "keygate: " << verb << " client key " << k.id << " (" << k.name << ", " << k.hint
          << "); it is shown only this once: hand it over now, keygate keeps only its hash\n";
}

}  // namespace

int ClientsCreate(Context& ctx, const std::string& name, const ClientSettings& settings) {
  auto created = ops::CreateClientKey(ctx.store, ctx.secrets, name, settings, "--");
  if (!created.ok()) return ReportClientError(ctx, created.status());
  // The one place a secret is printed whole: the client key exists nowhere else in plaintext.
  PrintNewSecret(ctx, created->key, created->secret, "created");
  return kExitOk;
}

int ClientsList(Context& ctx) {
  auto clients = ctx.store.ListClientKeys();
  if (!clients.ok()) return ReportError(ctx.err, clients.status());
  json::array arr;
  Table table({"ID", "NAME", "KEY", "ENABLED", "PARENT", "CREDITS", "MODELS", "RPM", "TPM",
               "CONC", "EXPIRES", "CAPS"});
  for (const store::ClientKey& c : *clients) {
    arr.push_back(ops::ClientJson(c));
    std::string models, caps;
    for (const std::string& m : c.allowed_models) models += (models.empty() ? "" : ",") + m;
    for (const store::ModelCap& cap : c.caps) {
      caps += (caps.empty() ? "" : ",") + cap.model + "=" + FormatMicrosAsUsd(cap.spent_micros) +
              "/" + FormatMicrosAsUsd(cap.cap_micros);
    }
    table.Add({std::to_string(c.id), c.name, c.hint, c.enabled ? "yes" : "no",
               c.parent_id ? std::to_string(*c.parent_id) : "-",
               c.parent_id ? "(parent)"
                           : (c.credits_micros ? "$" + FormatMicrosAsUsd(*c.credits_micros)
                                               : "unlimited"),
               models.empty() ? "*" : models, LimitText(c.rpm_limit), LimitText(c.tpm_limit),
               LimitText(c.concurrency_limit),
               c.expires_at_ms ? FormatTimeMs(*c.expires_at_ms) : "never", OrDash(caps)});
  }
  if (ctx.json) {
    PrintJson(ctx, json::object{{"clients", std::move(arr)}});
  } else if (clients->empty()) {
    ctx.out << "no client keys\n";
  } else {
    table.Print(ctx.out);
  }
  return kExitOk;
}

int ClientsUpdate(Context& ctx, int64_t id, const ClientSettings& settings) {
  auto k = ops::UpdateClientKey(ctx.store, id, settings, "--");
  if (!k.ok()) return ReportClientError(ctx, k.status());
  if (ctx.json) {
    PrintJson(ctx, ops::ClientJson(*k));
  } else {
    ctx.out << "client key " << id << " (" << k->name << ") updated";
    if (k->credits_micros) ctx.out << "; balance $" << FormatMicrosAsUsd(*k->credits_micros);
    ctx.out << '\n';
  }
  return kExitOk;
}

int ClientsEnable(Context& ctx, int64_t id, bool enabled) {
  auto k = ctx.store.UpdateClientKey(id, {.enabled = enabled});
  if (!k.ok()) return ReportClientError(ctx, k.status());
  if (ctx.json) {
    PrintJson(ctx, ops::ClientJson(*k));
  } else {
    ctx.out << "client key " << id << " (" << k->name << ") " << (enabled ? "enabled" : "disabled")
            << '\n';
  }
  return kExitOk;
}

int ClientsRoll(Context& ctx, int64_t id) {
  auto rolled = ops::RollClientKey(ctx.store, ctx.secrets, id);
  if (!rolled.ok()) return ReportClientError(ctx, rolled.status());
  PrintNewSecret(ctx, rolled->key, rolled->secret, "rolled");
  return kExitOk;
}

int ClientsDelete(Context& ctx, int64_t id) {
  Status deleted = ops::DeleteClientKey(ctx.store, id);
  if (!deleted.ok()) return ReportClientError(ctx, deleted);
  if (ctx.json) {
    PrintJson(ctx, json::object{{"deleted", id}});
  } else {
    ctx.out << "client key " << id << " deleted\n";
  }
  return kExitOk;
}

// ---------------------------------------------------------------- usage reports

int UsageReport(Context& ctx, const UsageOptions& o) {
  ops::UsageReportQuery q;
  if (o.key_id > 0) q.client_key_id = o.key_id;
  if (!o.model.empty()) q.model = o.model;
  if (!o.since.empty()) {
    auto t = ParseTimeMs(o.since);
    if (!t) {
      return ReportError(ctx.err, InvalidArgumentError("--since must be a UTC date or time like "
                                                       "2026-11-01 or 2026-11-01T12:00:00Z, not '" +
                                                       o.since + "'"));
    }
    q.from_ms = *t;
  }
  if (!o.until.empty()) {
    auto t = ops::ParseUsageUntil(o.until);
    if (!t) {
      return ReportError(ctx.err, InvalidArgumentError("--until must be a UTC date or time like "
                                                       "2026-11-30 or 2026-11-30T12:00:00Z, not '" +
                                                       o.until + "'"));
    }
    q.to_ms = *t;
  }
  auto report = ops::UsageReport(ctx.store, q);
  if (!report.ok()) return ReportError(ctx.err, report.status());
  if (ctx.json) {
    PrintJson(ctx, json::object{{"usage", report->at("usage")}, {"total", report->at("total")}});
    return kExitOk;
  }
  const json::array& rows = report->at("usage").as_array();
  if (rows.empty()) {
    ctx.out << "no usage\n";
    return kExitOk;
  }
  Table table({"DAY", "KEY", "NAME", "MODEL", "REQUESTS", "INPUT", "OUTPUT", "CACHE_READ",
               "CACHE_WRITE", "COST_USD"});
  for (const json::value& v : rows) {
    const json::object& r = v.as_object();
    table.Add({Cell(r, "day"), Cell(r, "client_key_id"), Cell(r, "name"), Cell(r, "model"),
               Cell(r, "requests"), Cell(r, "input_tokens"), Cell(r, "output_tokens"),
               Cell(r, "cache_read_tokens"), Cell(r, "cache_write_tokens"), Cell(r, "cost_usd")});
  }
  const json::object& t = report->at("total").as_object();
  table.Add({"total", "", "", "", Cell(t, "requests"), Cell(t, "input_tokens"),
             Cell(t, "output_tokens"), Cell(t, "cache_read_tokens"), Cell(t, "cache_write_tokens"),
             Cell(t, "cost_usd")});
  table.Print(ctx.out);
  return kExitOk;
}

// ---------------------------------------------------------------- traffic

int Traffic(Context& ctx, const ops::TrafficParams& params) {
  auto query = ops::ParseTrafficParams(params, RealClock::Get().NowMs(), "--");
  if (!query.ok()) return ReportError(ctx.err, query.status());
  auto report = ops::TrafficReport(ctx.store, *query);
  if (!report.ok()) return ReportError(ctx.err, report.status());
  if (ctx.json) {
    PrintJson(ctx, *report);
    return kExitOk;
  }
  Table table({"START", "REQUESTS", "4XX", "5XX", "NO_ANSWER", "P50_MS", "P95_MS", "P99_MS",
               "TTFB_P50", "TTFB_P95", "INPUT", "OUTPUT", "COST_USD"});
  auto add = [&](std::string start, const json::object& b) {
    const json::object& e = b.at("errors").as_object();
    const json::object& l = b.at("latency_ms").as_object();
    const json::object& t = b.at("ttfb_ms").as_object();
    table.Add({std::move(start), Cell(b, "requests"), Cell(e, "4xx"), Cell(e, "5xx"),
               Cell(e, "no_answer"), Cell(l, "p50"), Cell(l, "p95"), Cell(l, "p99"), Cell(t, "p50"),
               Cell(t, "p95"), Cell(b, "input_tokens"), Cell(b, "output_tokens"),
               Cell(b, "cost_usd")});
  };
  for (const json::value& v : report->at("buckets").as_array()) {
    add(Cell(v.as_object(), "start"), v.as_object());
  }
  add("total", report->at("total").as_object());
  table.Print(ctx.out);
  return kExitOk;
}

// ---------------------------------------------------------------- admin keys and audit

int AdminKeyCreate(Context& ctx, const std::string& name) {
  auto created = ops::CreateAdminKey(ctx.store, ctx.secrets, name);
  if (!created.ok()) return ReportError(ctx.err, created.status());
  const store::AdminKey& k = created->key;
  // The one place an admin key is printed whole: it exists nowhere else in plaintext.
  if (ctx.json) {
    PrintJson(ctx, json::object{{"id", k.id}, {"name", k.name}, {"key", created->secret},
                                {"hint", k.hint}});
  } else {
    ctx.out << created->secret << '\n';
  }
  ctx.err << "keygate: created admin key " << k.id << " (" << k.name << ", " << k.hint
          << "); it is shown only this once: keygate keeps only its hash\n";
  return kExitOk;
}

int AdminKeyList(Context& ctx) {
  auto keys = ctx.store.ListAdminKeys();
  if (!keys.ok()) return ReportError(ctx.err, keys.status());
  json::array arr;
  Table table({"ID", "NAME", "KEY", "CREATED"});
  for (const store::AdminKey& k : *keys) {
    arr.push_back(json::object{{"id", k.id}, {"name", k.name}, {"hint", k.hint},
                               {"created_at", FormatTimeMs(k.created_at_ms)}});
    table.Add({std::to_string(k.id), k.name, k.hint, FormatTimeMs(k.created_at_ms)});
  }
  if (ctx.json) {
    PrintJson(ctx, json::object{{"admin_keys", std::move(arr)}});
  } else if (keys->empty()) {
    ctx.out << "no admin keys (create one: keygate admin-key create NAME)\n";
  } else {
    table.Print(ctx.out);
  }
  return kExitOk;
}

int AdminKeyDelete(Context& ctx, const std::string& name) {
  auto deleted = ctx.store.DeleteAdminKey(name);
  if (!deleted.ok()) return ReportError(ctx.err, deleted.status());
  if (!*deleted) return ReportError(ctx.err, NotFoundError("no admin key named '" + name + "'"));
  return Done(ctx, "deleted admin key " + name, {{"name", name}, {"deleted", true}});
}

int AuditList(Context& ctx, int64_t limit) {
  auto page = ops::AuditHistory(ctx.store, {.limit = limit});
  if (!page.ok()) return ReportError(ctx.err, page.status());
  Table table({"ID", "TIME", "ADMIN", "ACTION", "TARGET", "RESULT"});
  const json::array& rows = page->at("audit").as_array();
  for (const json::value& v : rows) {
    const json::object& r = v.as_object();
    table.Add({Cell(r, "id"), Cell(r, "time"), Cell(r, "admin"), Cell(r, "action"),
               Cell(r, "target"), Cell(r, "result")});
  }
  return PrintPage(ctx, std::move(page).value(), "audit", rows.empty(), "no admin actions", table);
}

// ---------------------------------------------------------------- import mongo

int ImportMongo(Context& ctx, const std::string& dir) {
  // Validate every file before the first write.
  auto plan = ReadMongoExport(dir);
  if (!plan.ok()) return ReportError(ctx.err, plan.status());
  auto report = ApplyMongoImport(ctx.store, *plan);
  if (!report.ok()) {
    return ReportError(ctx.err, report.status().WithContext(
                                    "import stopped (running it again resumes where it stopped)"));
  }
  for (const std::string& w : report->warnings) ctx.err << "keygate: warning: " << w << '\n';
  if (ctx.json) {
    json::object files;
    for (const MongoFileInfo& f : report->files) {
      files[f.collection] =
          f.path.empty() ? json::value(nullptr)
                         : json::value(json::object{{"path", f.path}, {"documents", f.documents}});
    }
    json::object pools;
    for (const MongoPoolReport& p : report->pools) {
      pools[p.pool] = json::object{{"created", p.created},
                                   {"documents", p.documents},
                                   {"inserted", p.inserted},
                                   {"duplicates", p.duplicates},
                                   {"bindings_created", p.bindings_created},
                                   {"bindings_updated", p.bindings_updated},
                                   {"bindings_unchanged", p.bindings_unchanged},
                                   {"bindings_inactive", p.bindings_inactive},
                                   {"bindings_dangling", p.bindings_dangling}};
    }
    json::array warnings;
    for (const auto& w : report->warnings) warnings.push_back(json::string(w));
    PrintJson(ctx, json::object{{"dir", dir},
                                {"files", std::move(files)},
                                {"pools", std::move(pools)},
                                {"proxies", json::object{{"created", report->proxies_created},
                                                         {"updated", report->proxies_updated},
                                                         {"unchanged", report->proxies_unchanged}}},
                                {"warnings", std::move(warnings)}});
    return kExitOk;
  }
  ctx.out << "imported MongoDB export from " << dir << '\n';
  for (const MongoFileInfo& f : report->files) {
    if (f.path.empty()) {
      ctx.out << "  " << f.collection << ": no file, skipped\n";
    } else {
      ctx.out << "  " << f.collection << ": " << f.documents << " documents\n";
    }
  }
  for (const MongoPoolReport& p : report->pools) {
    ctx.out << "  pool " << p.pool << (p.created ? " (created)" : " (existing)") << ": "
            << p.inserted << " keys inserted, " << p.duplicates << " already stored; bindings "
            << p.bindings_created << " created, " << p.bindings_updated << " updated, "
            << p.bindings_unchanged << " unchanged, " << p.bindings_inactive
            << " inactive skipped, " << p.bindings_dangling << " dangling skipped\n";
  }
  ctx.out << "  proxies: " << report->proxies_created << " created, " << report->proxies_updated
          << " updated, " << report->proxies_unchanged << " unchanged\n";
  return kExitOk;
}

}  // namespace keygate::cli
