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
#include "cli/key_list.h"
#include "cli/mongo_import.h"
#include "common/clock.h"
#include "common/proxy_url.h"
#include "common/strings.h"
#include "keypool/keypool.h"

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
json::value JsonTime(std::optional<int64_t> ms) {
  return ms ? json::value(FormatTimeMs(*ms)) : json::value(nullptr);
}

json::object CountsJson(const store::StateCounts& c) {
  return json::object{{"active", c.active},   {"backup", c.backup},   {"cooling", c.cooling},
                      {"exhausted", c.exhausted}, {"retired", c.retired}, {"total", c.total()}};
}

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

StatusOr<std::map<int64_t, std::string>> PoolNames(store::Store& store) {
  KG_ASSIGN_OR_RETURN(std::vector<store::Pool> pools, store.ListPools());
  std::map<int64_t, std::string> names;
  for (const auto& p : pools) names[p.id] = p.name;
  return names;
}

// Fetches a key for a state-changing command; NotFound names the id.
StatusOr<store::UpstreamKey> RequireKey(Context& ctx, int64_t key_id) {
  return ctx.store.GetKey(key_id, /*with_secret=*/false);
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
  std::string settings = o.settings_json.empty() ? "{}" : o.settings_json;
  boost::system::error_code ec;
  json::value parsed = json::parse(settings, ec);
  if (ec || !parsed.is_object()) {
    return ReportError(ctx.err, InvalidArgumentError("--settings must be a JSON object"));
  }
  auto pool = ctx.store.CreatePool(o.name, o.provider, json::serialize(parsed));
  if (!pool.ok()) return ReportError(ctx.err, pool.status());
  return Done(ctx, "created pool " + pool->name + " (id " + std::to_string(pool->id) +
                       ", provider " + pool->provider + ")",
              {{"id", pool->id}, {"name", pool->name}, {"provider", pool->provider}});
}

int PoolList(Context& ctx) {
  auto pools = ctx.store.ListPools();
  if (!pools.ok()) return ReportError(ctx.err, pools.status());
  json::array arr;
  Table table({"ID", "NAME", "PROVIDER", "VERSION", "ACTIVE", "BACKUP", "COOLING", "EXHAUSTED",
               "RETIRED", "TOTAL"});
  for (const store::Pool& p : *pools) {
    auto c = ctx.store.CountKeys(p.id);
    if (!c.ok()) return ReportError(ctx.err, c.status());
    boost::system::error_code ec;
    json::value settings = json::parse(p.settings_json, ec);
    if (ec) settings = json::value(p.settings_json);
    arr.push_back(json::object{{"id", p.id},
                               {"name", p.name},
                               {"provider", p.provider},
                               {"settings", settings},
                               {"version", p.version},
                               {"created_at", FormatTimeMs(p.created_at_ms)},
                               {"counts", CountsJson(*c)}});
    table.Add({std::to_string(p.id), p.name, p.provider, std::to_string(p.version),
               std::to_string(c->active), std::to_string(c->backup), std::to_string(c->cooling),
               std::to_string(c->exhausted), std::to_string(c->retired),
               std::to_string(c->total())});
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
  // Parse everything before writing anything: a corrupt line writes nothing.
  auto entries = ParseKeyList(*text);
  if (!entries.ok()) return ReportError(ctx.err, entries.status().WithContext(source));
  const KeyState state = o.backup ? KeyState::kBackup : KeyState::kActive;

  // Duplicates, before any write: against every stored key (fingerprints are unique across
  // pools) and within the input. The store dedupes again inside its transaction, so a key
  // stored concurrently by another process is still never inserted twice.
  auto stored = ctx.store.ListKeys({});
  if (!stored.ok()) return ReportError(ctx.err, stored.status());
  std::unordered_map<std::string, const store::UpstreamKey*> by_fingerprint;
  for (const auto& k : *stored) by_fingerprint[k.fingerprint] = &k;
  auto names = PoolNames(ctx.store);
  if (!names.ok()) return ReportError(ctx.err, names.status());
  std::unordered_map<std::string, int> first_line;  // fingerprint -> line in the input
  json::array dup_json;
  std::vector<std::string> dup_text;
  for (const KeyListEntry& e : *entries) {
    std::string fp = ctx.secrets.Fingerprint(e.secret);
    std::string where = "line " + std::to_string(e.line) + ": " + MaskSecret(e.secret);
    if (auto it = by_fingerprint.find(fp); it != by_fingerprint.end()) {
      const store::UpstreamKey& k = *it->second;
      dup_text.push_back(where + " is already stored as key " + std::to_string(k.id) +
                         " (pool " + (*names)[k.pool_id] + ", " +
                         std::string(store::KeyStateName(k.state)) + ")");
      dup_json.push_back(json::object{{"line", e.line},
                                      {"key", MaskSecret(e.secret)},
                                      {"existing_key_id", k.id}});
    } else if (auto [fit, fresh] = first_line.emplace(fp, e.line); !fresh) {
      dup_text.push_back(where + " repeats line " + std::to_string(fit->second));
      dup_json.push_back(json::object{{"line", e.line},
                                      {"key", MaskSecret(e.secret)},
                                      {"repeats_line", fit->second}});
    }
  }
  if (!dup_text.empty() && !o.skip_duplicates) {
    if (ctx.json) {
      PrintJson(ctx, json::object{{"pool", pool->name},
                                  {"inserted", 0},
                                  {"duplicates", std::move(dup_json)},
                                  {"imported", false}});
    }
    for (const auto& d : dup_text) ctx.err << "keygate: duplicate: " << d << '\n';
    return ReportError(
        ctx.err, AlreadyExistsError(
                     std::to_string(dup_text.size()) + " of " + std::to_string(entries->size()) +
                     " keys in " + source +
                     " are duplicates; nothing was imported (use --skip-duplicates to import the "
                     "others)"));
  }
  if (entries->empty()) {
    return Done(ctx, "no keys in " + source + "; nothing imported",
                {{"pool", pool->name}, {"inserted", 0}, {"duplicates", json::array()}});
  }

  // Proxies named in a CSV: reuse a stored one with the same URL and password, else add it.
  int64_t proxies_added = 0;
  std::map<std::string, int64_t> proxy_ids;  // full URL -> id
  bool any_proxy = std::any_of(entries->begin(), entries->end(),
                               [](const KeyListEntry& e) { return e.proxy.has_value(); });
  if (any_proxy) {
    auto existing = ctx.store.ListProxies(true);
    if (!existing.ok()) return ReportError(ctx.err, existing.status());
    for (const auto& p : *existing) proxy_ids[p.url.FullUrl()] = p.id;
    for (const KeyListEntry& e : *entries) {
      if (!e.proxy || proxy_ids.count(e.proxy->FullUrl())) continue;
      bool created = false;
      auto added = ctx.store.AddProxy(*e.proxy, &created);
      if (!added.ok()) return ReportError(ctx.err, added.status());
      proxies_added += created;
      proxy_ids[e.proxy->FullUrl()] = added->id;
    }
  }

  std::vector<store::NewKey> keys;
  keys.reserve(entries->size());
  for (const KeyListEntry& e : *entries) {
    store::NewKey k;
    k.secret = e.secret;
    k.state = state;
    k.priority = e.priority.value_or(0);
    k.budget_micros = e.budget_micros;
    k.label = e.label;
    if (e.proxy) k.proxy_id = proxy_ids[e.proxy->FullUrl()];
    keys.push_back(std::move(k));
  }
  auto result = ctx.store.ImportKeys(pool->id, keys);
  if (!result.ok()) {
    // Name the input only when the input is at fault; a storage error is about the store.
    Status st = result.status();
    return ReportError(ctx.err,
                       st.code() == StatusCode::kInvalidArgument ? st.WithContext(source) : st);
  }

  // Report what the store did (it is the authority on duplicates).
  json::array dups;
  std::vector<std::string> lines;
  for (size_t i = 0; i < entries->size(); ++i) {
    if (!result->duplicate[i]) continue;
    const KeyListEntry& e = (*entries)[i];
    dups.push_back(json::object{{"line", e.line},
                                {"key", MaskSecret(e.secret)},
                                {"existing_key_id", result->key_ids[i]}});
    lines.push_back("  duplicate skipped: line " + std::to_string(e.line) + ": " +
                    MaskSecret(e.secret) + " is key " + std::to_string(result->key_ids[i]));
  }
  json::array ids;
  for (size_t i = 0; i < entries->size(); ++i) {
    if (!result->duplicate[i]) ids.push_back(result->key_ids[i]);
  }
  if (ctx.json) {
    PrintJson(ctx, json::object{{"pool", pool->name},
                                {"state", store::KeyStateName(state)},
                                {"inserted", result->inserted},
                                {"inserted_ids", std::move(ids)},
                                {"duplicates", std::move(dups)},
                                {"proxies_added", proxies_added},
                                {"imported", true}});
  } else {
    ctx.out << "imported " << result->inserted << (result->inserted == 1 ? " key" : " keys")
            << " into pool " << pool->name << " as " << store::KeyStateName(state) << " ("
            << result->duplicates << (result->duplicates == 1 ? " duplicate" : " duplicates")
            << " skipped";
    if (proxies_added > 0) ctx.out << ", " << proxies_added << " proxies added";
    ctx.out << ")\n";
    for (const auto& l : lines) ctx.out << l << '\n';
  }
  if (result->duplicates > 0 && !o.skip_duplicates) {
    // Only a concurrent import can get here: the pre-check saw no duplicates.
    return ReportError(ctx.err, AlreadyExistsError(std::to_string(result->duplicates) +
                                                   " keys were stored concurrently by another "
                                                   "process and were skipped"));
  }
  return kExitOk;
}

int KeysList(Context& ctx, const KeysListOptions& o) {
  store::KeyFilter filter;
  if (!o.state.empty()) {
    filter.state = store::ParseKeyState(o.state);
    if (!filter.state) {
      return ReportError(ctx.err, InvalidArgumentError("unknown state '" + o.state +
                                                       "' (active, backup, cooling, exhausted, "
                                                       "retired)"));
    }
  }
  std::optional<int64_t> pool_id;
  if (!o.pool.empty()) {
    auto pool = ctx.store.GetPool(o.pool);
    if (!pool.ok()) return ReportError(ctx.err, pool.status());
    pool_id = pool->id;
    filter.pool_id = pool_id;
  }
  auto keys = ctx.store.ListKeys(filter);
  if (!keys.ok()) return ReportError(ctx.err, keys.status());
  auto names = PoolNames(ctx.store);
  if (!names.ok()) return ReportError(ctx.err, names.status());
  auto bindings = ctx.store.ListBindings(pool_id);
  if (!bindings.ok()) return ReportError(ctx.err, bindings.status());
  std::map<int64_t, std::vector<int64_t>> proxies_of;  // key -> proxies, by priority
  for (const auto& b : *bindings) proxies_of[b.key_id].push_back(b.proxy_id);

  store::StateCounts counts;
  json::array arr;
  Table table({"ID", "POOL", "STATE", "KEY", "PRIORITY", "BUDGET", "SPEND", "PROXIES", "LABEL",
               "NOTE"});
  for (const store::UpstreamKey& k : *keys) {
    ++counts[k.state];
    json::array proxies;
    std::string proxies_text;
    for (int64_t p : proxies_of[k.id]) {
      proxies.push_back(p);
      proxies_text += (proxies_text.empty() ? "" : ",") + std::to_string(p);
    }
    std::string note;
    if (k.state == KeyState::kCooling) note = "until " + FormatTimeMs(k.cooldown_until_ms);
    if (k.replaced_by) note = "replaced by " + std::to_string(*k.replaced_by);
    if (k.replaces) note += (note.empty() ? "" : "; ") + ("replaces " + std::to_string(*k.replaces));
    if (!k.last_error.empty()) note += (note.empty() ? "" : "; ") + k.last_error;
    arr.push_back(json::object{
        {"id", k.id},
        {"pool", (*names)[k.pool_id]},
        {"pool_id", k.pool_id},
        {"state", store::KeyStateName(k.state)},
        {"key", k.masked},
        {"priority", k.priority},
        {"budget_micros", JsonOpt(k.budget_micros)},
        {"spend_micros", k.spend_micros},
        {"proxies", std::move(proxies)},
        {"label", k.label},
        {"cooldown_until", k.state == KeyState::kCooling ? JsonTime(k.cooldown_until_ms)
                                                          : json::value(nullptr)},
        {"last_error", k.last_error},
        {"replaced_by", JsonOpt(k.replaced_by)},
        {"replaces", JsonOpt(k.replaces)},
        {"created_at", FormatTimeMs(k.created_at_ms)},
        {"updated_at", FormatTimeMs(k.updated_at_ms)},
        {"activated_at", JsonTime(k.activated_at_ms)},
        {"retired_at", JsonTime(k.retired_at_ms)}});
    table.Add({std::to_string(k.id), (*names)[k.pool_id], std::string(store::KeyStateName(k.state)),
               k.masked, std::to_string(k.priority),
               k.budget_micros ? "$" + FormatMicrosAsUsd(*k.budget_micros) : "-",
               "$" + FormatMicrosAsUsd(k.spend_micros), OrDash(proxies_text), OrDash(k.label),
               OrDash(note)});
  }
  if (ctx.json) {
    PrintJson(ctx, json::object{{"keys", std::move(arr)}, {"counts", CountsJson(counts)}});
  } else {
    if (!keys->empty()) table.Print(ctx.out);
    ctx.out << CountsText(counts) << '\n';
  }
  return kExitOk;
}

int KeysCooldown(Context& ctx, int64_t key_id, int64_t seconds, const std::string& reason) {
  if (seconds <= 0) return ReportError(ctx.err, InvalidArgumentError("--seconds must be > 0"));
  auto key = RequireKey(ctx, key_id);
  if (!key.ok()) return ReportError(ctx.err, key.status());
  int64_t until = RealClock::Get().NowMs() + seconds * 1000;
  auto changed = ctx.store.CoolDown(key_id, until, reason);
  if (!changed.ok()) return ReportError(ctx.err, changed.status());
  if (!*changed) {
    return NotApplied(ctx, "key " + std::to_string(key_id) + " is " +
                               std::string(store::KeyStateName(key->state)) +
                               "; only active or cooling keys can be cooled down");
  }
  auto after = RequireKey(ctx, key_id);
  if (!after.ok()) return ReportError(ctx.err, after.status());
  return Done(ctx, "key " + std::to_string(key_id) + " is cooling until " +
                       FormatTimeMs(after->cooldown_until_ms),
              {{"key_id", key_id},
               {"state", "cooling"},
               {"cooldown_until", FormatTimeMs(after->cooldown_until_ms)}});
}

int KeysExhaust(Context& ctx, int64_t key_id, const std::string& reason) {
  auto key = RequireKey(ctx, key_id);
  if (!key.ok()) return ReportError(ctx.err, key.status());
  auto changed = ctx.store.MarkExhausted(key_id, reason);
  if (!changed.ok()) return ReportError(ctx.err, changed.status());
  if (!*changed) {
    return NotApplied(ctx, "key " + std::to_string(key_id) + " is " +
                               std::string(store::KeyStateName(key->state)) +
                               "; only active or cooling keys can be marked exhausted");
  }
  return Done(ctx, "key " + std::to_string(key_id) + " is exhausted",
              {{"key_id", key_id}, {"state", "exhausted"}});
}

int KeysRestore(Context& ctx, int64_t key_id, const std::string& as_state) {
  auto target = store::ParseKeyState(as_state);
  if (!target || (*target != KeyState::kActive && *target != KeyState::kBackup)) {
    return ReportError(ctx.err, InvalidArgumentError("--as must be active or backup"));
  }
  auto key = RequireKey(ctx, key_id);
  if (!key.ok()) return ReportError(ctx.err, key.status());
  auto changed = ctx.store.Restore(key_id, *target);
  if (!changed.ok()) return ReportError(ctx.err, changed.status());
  if (!*changed) {
    return NotApplied(ctx, "key " + std::to_string(key_id) + " is already " +
                               std::string(store::KeyStateName(key->state)) +
                               "; only cooling, exhausted or retired keys can be restored");
  }
  return Done(ctx, "key " + std::to_string(key_id) + " is " + as_state + " again",
              {{"key_id", key_id}, {"state", store::KeyStateName(*target)}});
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
  auto proxies = ctx.store.ListProxies(/*with_secrets=*/false);
  if (!proxies.ok()) return ReportError(ctx.err, proxies.status());
  auto bindings = ctx.store.ListBindings(std::nullopt);
  if (!bindings.ok()) return ReportError(ctx.err, bindings.status());
  std::map<int64_t, int64_t> bound;
  for (const auto& b : *bindings) ++bound[b.proxy_id];
  json::array arr;
  Table table({"ID", "URL", "PASSWORD", "HEALTHY", "KEYS", "LAST_ERROR"});
  for (const store::Proxy& p : *proxies) {
    arr.push_back(json::object{{"id", p.id},
                               {"url", p.url.DisplayUrl()},
                               {"scheme", p.url.scheme},
                               {"host", p.url.host},
                               {"port", p.url.port},
                               {"username", p.url.username},
                               {"has_password", p.has_password},
                               {"healthy", p.healthy},
                               {"last_error", p.last_error},
                               {"bound_keys", bound[p.id]},
                               {"created_at", FormatTimeMs(p.created_at_ms)}});
    table.Add({std::to_string(p.id), p.url.DisplayUrl(), p.has_password ? "yes" : "no",
               p.healthy ? "yes" : "no", std::to_string(bound[p.id]), OrDash(p.last_error)});
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
  auto pool = ctx.store.GetPool(o.pool);
  if (!pool.ok()) return ReportError(ctx.err, pool.status());
  if (Trim(o.reason).empty()) {
    return ReportError(ctx.err, InvalidArgumentError("--reason must not be empty"));
  }
  auto outcome = ctx.store.Rotate(pool->id, o.key_id, o.reason, "cli");
  if (!outcome.ok()) return ReportError(ctx.err, outcome.status());
  const std::string key = "key " + std::to_string(o.key_id);
  // All three outcomes, each explicitly (DESIGN.md: never confused).
  struct Visitor {
    Context& ctx;
    const std::string& key;
    int operator()(const store::Rotated& r) const {
      if (ctx.json) {
        PrintJson(ctx, json::object{{"outcome", "rotated"},
                                    {"new_key_id", r.new_key_id},
                                    {"rotation_id", r.rotation_id}});
      } else {
        ctx.out << "rotated: " << key << " retired, key " << r.new_key_id
                << " active in its place (rotation " << r.rotation_id << ")\n";
      }
      return kExitOk;
    }
    int operator()(const store::AlreadyRotated&) const {
      if (ctx.json) {
        PrintJson(ctx, json::object{{"outcome", "already_rotated"}});
      } else {
        ctx.out << "already rotated: " << key
                << " is no longer active (rotated by someone else, or retired); nothing changed\n";
      }
      return kExitAlreadyRotated;
    }
    int operator()(const store::NoBackup& n) const {
      if (ctx.json) {
        PrintJson(ctx, json::object{{"outcome", "no_backup"}, {"rotation_id", n.rotation_id}});
      } else {
        ctx.out << "no backup: " << key << " is now exhausted (rotation " << n.rotation_id
                << "); the pool has no backup key left — import some with "
                   "`keygate keys import --backup`\n";
      }
      return kExitNoBackup;
    }
  };
  return std::visit(Visitor{ctx, key}, *outcome);
}

int HistoryRotations(Context& ctx, const HistoryOptions& o) {
  store::HistoryFilter filter;
  if (o.limit <= 0) return ReportError(ctx.err, InvalidArgumentError("--limit must be > 0"));
  filter.limit = o.limit;
  filter.key_id = o.key_id;
  if (!o.pool.empty()) {
    auto pool = ctx.store.GetPool(o.pool);
    if (!pool.ok()) return ReportError(ctx.err, pool.status());
    filter.pool_id = pool->id;
  }
  auto records = ctx.store.ListRotations(filter);
  if (!records.ok()) return ReportError(ctx.err, records.status());
  auto names = PoolNames(ctx.store);
  if (!names.ok()) return ReportError(ctx.err, names.status());
  json::array arr;
  Table table({"ID", "TIME", "POOL", "FAILED_KEY", "NEW_KEY", "OUTCOME", "REASON", "ACTOR"});
  for (const store::RotationRecord& r : *records) {
    arr.push_back(json::object{{"id", r.id},
                               {"time", FormatTimeMs(r.created_at_ms)},
                               {"pool", (*names)[r.pool_id]},
                               {"failed_key_id", r.failed_key_id},
                               {"new_key_id", JsonOpt(r.new_key_id)},
                               {"outcome", r.outcome},
                               {"reason", r.reason},
                               {"actor", r.actor}});
    table.Add({std::to_string(r.id), FormatTimeMs(r.created_at_ms), (*names)[r.pool_id],
               std::to_string(r.failed_key_id),
               r.new_key_id ? std::to_string(*r.new_key_id) : "-", r.outcome, OrDash(r.reason),
               OrDash(r.actor)});
  }
  if (ctx.json) {
    PrintJson(ctx, json::object{{"rotations", std::move(arr)}});
  } else if (records->empty()) {
    ctx.out << "no rotations\n";
  } else {
    table.Print(ctx.out);
  }
  return kExitOk;
}

int HistorySpend(Context& ctx, const HistoryOptions& o) {
  store::HistoryFilter filter;
  if (o.limit <= 0) return ReportError(ctx.err, InvalidArgumentError("--limit must be > 0"));
  filter.limit = o.limit;
  filter.key_id = o.key_id;
  if (!o.pool.empty()) {
    auto pool = ctx.store.GetPool(o.pool);
    if (!pool.ok()) return ReportError(ctx.err, pool.status());
    filter.pool_id = pool->id;
  }
  auto records = ctx.store.ListSpendRecords(filter);
  if (!records.ok()) return ReportError(ctx.err, records.status());
  auto names = PoolNames(ctx.store);
  if (!names.ok()) return ReportError(ctx.err, names.status());
  json::array arr;
  Table table({"ID", "TIME", "POOL", "KEY", "SPEND", "BUDGET", "ACTION", "REASON", "NEW_KEY",
               "ERROR"});
  for (const store::SpendRecord& r : *records) {
    arr.push_back(json::object{{"id", r.id},
                               {"time", FormatTimeMs(r.created_at_ms)},
                               {"pool", (*names)[r.pool_id]},
                               {"key_id", r.key_id},
                               {"spend_usd", FormatMicrosAsUsd(r.spend_micros)},
                               {"budget_usd", r.budget_micros
                                                  ? json::value(FormatMicrosAsUsd(*r.budget_micros))
                                                  : json::value(nullptr)},
                               {"action", r.action},
                               {"reason", r.reason},
                               {"new_key_id", JsonOpt(r.new_key_id)},
                               {"error", r.error}});
    table.Add({std::to_string(r.id), FormatTimeMs(r.created_at_ms), (*names)[r.pool_id],
               std::to_string(r.key_id), "$" + FormatMicrosAsUsd(r.spend_micros),
               r.budget_micros ? "$" + FormatMicrosAsUsd(*r.budget_micros) : "-", r.action,
               OrDash(r.reason), r.new_key_id ? std::to_string(*r.new_key_id) : "-",
               OrDash(r.error)});
  }
  if (ctx.json) {
    PrintJson(ctx, json::object{{"spend", std::move(arr)}});
  } else if (records->empty()) {
    ctx.out << "no spend records\n";
  } else {
    table.Print(ctx.out);
  }
  return kExitOk;
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
  auto stats = billing::ComputeSpendStats(ctx.store, *o.config, o.pool);
  if (!stats.ok()) return ReportError(ctx.err, stats.status());
  std::vector<std::string> head = {"POOL", "KEYS", "SPEND"};
  for (billing::SpendBand b : billing::kAllSpendBands) {
    std::string name(billing::SpendBandName(b));
    for (char& ch : name) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    head.push_back(name);
  }
  Table table(head);
  json::array arr;
  for (const billing::PoolSpendStats& s : *stats) {
    std::vector<std::string> row = {s.pool, std::to_string(s.keys),
                                    "$" + FormatMicrosAsUsd(s.spend_micros)};
    json::object bands;
    for (billing::SpendBand b : billing::kAllSpendBands) {
      row.push_back(std::to_string(s.Count(b)));
      bands[billing::SpendBandName(b)] = s.Count(b);
    }
    table.Add(row);
    arr.push_back(json::object{{"pool", s.pool},
                               {"keys", s.keys},
                               {"spend_usd", FormatMicrosAsUsd(s.spend_micros)},
                               {"bands", std::move(bands)}});
  }
  if (ctx.json) {
    PrintJson(ctx, json::object{{"pools", std::move(arr)}});
  } else {
    table.Print(ctx.out);
  }
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

StatusOr<std::optional<int64_t>> ParseLimit(const char* flag, const std::string& v) {
  if (v == "none") return std::optional<int64_t>();
  auto n = ParseInt64(v);
  if (!n || *n < 0) {
    return InvalidArgumentError(std::string("--") + flag +
                                " must be a whole number >= 0 or 'none', not '" + v + "'");
  }
  return std::optional<int64_t>(*n);
}

StatusOr<int64_t> ParseUsd(const char* flag, const std::string& v) {
  auto micros = ParseUsdToMicros(v);
  if (!micros) {
    return InvalidArgumentError(std::string("--") + flag + " must be an amount in USD, not '" +
                                v + "'");
  }
  return *micros;
}

// ClientSettings (as typed) -> a store update. Create uses it too, so both parse alike.
StatusOr<store::ClientKeyUpdate> ToUpdate(const ClientSettings& s) {
  store::ClientKeyUpdate u;
  if (!s.credits.empty()) {
    if (s.credits == "unlimited") {
      u.credits_micros = std::optional<int64_t>();
    } else {
      KG_ASSIGN_OR_RETURN(int64_t c, ParseUsd("credits", s.credits));
      u.credits_micros = std::optional<int64_t>(c);
    }
  }
  if (!s.add_credits.empty()) {
    KG_ASSIGN_OR_RETURN(int64_t c, ParseUsd("add-credits", s.add_credits));
    u.add_credits_micros = c;
  }
  if (!s.models.empty()) {
    std::vector<std::string> models;
    if (s.models != "*") {
      for (std::string_view m : Split(s.models, ',')) {
        if (!Trim(m).empty()) models.emplace_back(Trim(m));
      }
    }
    u.allowed_models = std::move(models);
  }
  if (!s.rpm.empty()) {
    KG_ASSIGN_OR_RETURN(u.rpm_limit, ParseLimit("rpm", s.rpm));
  }
  if (!s.tpm.empty()) {
    KG_ASSIGN_OR_RETURN(u.tpm_limit, ParseLimit("tpm", s.tpm));
  }
  if (!s.concurrency.empty()) {
    KG_ASSIGN_OR_RETURN(u.concurrency_limit, ParseLimit("concurrency", s.concurrency));
  }
  if (!s.expires.empty()) {
    if (s.expires == "never") {
      u.expires_at_ms = std::optional<int64_t>();
    } else {
      auto t = ParseTimeMs(s.expires);
      if (!t) {
        return InvalidArgumentError("--expires must be a UTC date or time like 2026-12-31 or "
                                    "2026-12-31T12:00:00Z, or 'never', not '" + s.expires + "'");
      }
      u.expires_at_ms = std::optional<int64_t>(*t);
    }
  }
  for (const std::string& cap : s.caps) {
    size_t eq = cap.find('=');
    if (eq == std::string::npos || eq == 0) {
      return InvalidArgumentError("--cap must be MODEL=USD or MODEL=none, not '" + cap + "'");
    }
    store::ModelCap c{.model = cap.substr(0, eq)};
    std::string amount = cap.substr(eq + 1);
    if (amount == "none") {
      c.cap_micros = -1;
    } else {
      KG_ASSIGN_OR_RETURN(c.cap_micros, ParseUsd("cap", amount));
      if (c.cap_micros < 0) return InvalidArgumentError("--cap must not be negative");
    }
    u.caps.push_back(std::move(c));
  }
  return u;
}

std::string LimitText(const std::optional<int64_t>& v) { return v ? std::to_string(*v) : "-"; }

json::object ClientJson(const store::ClientKey& c) {
  json::array models, caps;
  for (const std::string& m : c.allowed_models) models.push_back(json::value(m));
  for (const store::ModelCap& cap : c.caps) {
    caps.push_back(json::object{{"model", cap.model},
                                {"cap_usd", FormatMicrosAsUsd(cap.cap_micros)},
                                {"spent_usd", FormatMicrosAsUsd(cap.spent_micros)}});
  }
  return json::object{
      {"id", c.id},
      {"name", c.name},
      {"hint", c.hint},
      {"enabled", c.enabled},
      {"parent_id", JsonOpt(c.parent_id)},
      {"credits_usd", c.credits_micros ? json::value(FormatMicrosAsUsd(*c.credits_micros))
                                       : json::value(nullptr)},
      {"credits_micros", JsonOpt(c.credits_micros)},
      {"models", std::move(models)},
      {"rpm", JsonOpt(c.rpm_limit)},
      {"tpm", JsonOpt(c.tpm_limit)},
      {"concurrency", JsonOpt(c.concurrency_limit)},
      {"expires_at", JsonTime(c.expires_at_ms)},
      {"caps", std::move(caps)},
      {"created_at", FormatTimeMs(c.created_at_ms)}};
}

// Prints a freshly made secret once (create, roll).
void PrintNewSecret(Context& ctx, const store::ClientKey& k, const std::string& token,
                    std::string_view verb) {
  if (ctx.json) {
    json::object o = ClientJson(k);
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
  if (Trim(name).empty()) {
    return ReportError(ctx.err, InvalidArgumentError("the client name must not be empty"));
  }
  if (!settings.add_credits.empty()) {
    return ReportError(ctx.err, InvalidArgumentError("--add-credits is for update; use --credits"));
  }
  auto u = ToUpdate(settings);
  if (!u.ok()) return ReportError(ctx.err, u.status());
  store::NewClientKey nk;
  nk.name = name;
  if (settings.parent > 0) nk.parent_id = settings.parent;
  if (u->credits_micros) nk.credits_micros = *u->credits_micros;
  if (u->allowed_models) nk.allowed_models = *u->allowed_models;
  if (u->rpm_limit) nk.rpm_limit = *u->rpm_limit;
  if (u->tpm_limit) nk.tpm_limit = *u->tpm_limit;
  if (u->concurrency_limit) nk.concurrency_limit = *u->concurrency_limit;
  if (u->expires_at_ms) nk.expires_at_ms = *u->expires_at_ms;
  for (const store::ModelCap& c : u->caps) {
    if (c.cap_micros < 0) return ReportError(ctx.err, InvalidArgumentError("--cap MODEL=none is for update"));
    nk.caps.push_back(c);
  }
  const std::string token = RandomToken("kg-");
  nk.hint = MaskSecret(token);
  nk.key_hash = ctx.secrets.HashClientKey(token);
  auto client = ctx.store.CreateClientKey(nk);
  if (!client.ok()) return ReportClientError(ctx, client.status());
  // The one place a secret is printed whole: the client key exists nowhere else in plaintext.
  PrintNewSecret(ctx, *client, token, "created");
  return kExitOk;
}

int ClientsList(Context& ctx) {
  auto clients = ctx.store.ListClientKeys();
  if (!clients.ok()) return ReportError(ctx.err, clients.status());
  json::array arr;
  Table table({"ID", "NAME", "KEY", "ENABLED", "PARENT", "CREDITS", "MODELS", "RPM", "TPM",
               "CONC", "EXPIRES", "CAPS"});
  for (const store::ClientKey& c : *clients) {
    arr.push_back(ClientJson(c));
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
  if (settings.parent > 0) {
    return ReportError(ctx.err, InvalidArgumentError("a key's parent cannot change"));
  }
  auto u = ToUpdate(settings);
  if (!u.ok()) return ReportError(ctx.err, u.status());
  auto k = ctx.store.UpdateClientKey(id, *u);
  if (!k.ok()) return ReportClientError(ctx, k.status());
  if (ctx.json) {
    PrintJson(ctx, ClientJson(*k));
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
    PrintJson(ctx, ClientJson(*k));
  } else {
    ctx.out << "client key " << id << " (" << k->name << ") " << (enabled ? "enabled" : "disabled")
            << '\n';
  }
  return kExitOk;
}

int ClientsRoll(Context& ctx, int64_t id) {
  const std::string token = RandomToken("kg-");
  auto rolled = ctx.store.RollClientKey(id, ctx.secrets.HashClientKey(token), MaskSecret(token));
  if (!rolled.ok()) return ReportClientError(ctx, rolled.status());
  if (!*rolled) {
    return ReportError(ctx.err, NotFoundError("client key " + std::to_string(id) +
                                              " does not exist"));
  }
  auto k = ctx.store.GetClientKey(id);
  if (!k.ok()) return ReportError(ctx.err, k.status());
  PrintNewSecret(ctx, *k, token, "rolled");
  return kExitOk;
}

int ClientsDelete(Context& ctx, int64_t id) {
  auto deleted = ctx.store.DeleteClientKey(id);
  if (!deleted.ok()) return ReportClientError(ctx, deleted.status());
  if (!*deleted) {
    return ReportError(ctx.err, NotFoundError("client key " + std::to_string(id) +
                                              " does not exist"));
  }
  if (ctx.json) {
    PrintJson(ctx, json::object{{"deleted", id}});
  } else {
    ctx.out << "client key " << id << " deleted\n";
  }
  return kExitOk;
}

// ---------------------------------------------------------------- usage reports

int UsageReport(Context& ctx, const UsageOptions& o) {
  store::UsageQuery q;
  if (o.key_id > 0) q.client_key_id = o.key_id;
  if (!o.model.empty()) q.model = o.model;
  if (!o.since.empty()) {
    auto t = ParseTimeMs(o.since);
    if (!t) {
      return ReportError(ctx.err, InvalidArgumentError("--since must be a UTC date or time like "
                                                       "2026-11-01 or 2026-11-01T12:00:00Z, not '" +
                                                       o.since + "'"));
    }
    q.since_ms = *t;
  }
  auto rows = ctx.store.SummarizeUsage(q);
  if (!rows.ok()) return ReportError(ctx.err, rows.status());
  auto keys = ctx.store.ListClientKeys();
  if (!keys.ok()) return ReportError(ctx.err, keys.status());
  std::map<int64_t, std::string> names;
  for (const store::ClientKey& k : *keys) names[k.id] = k.name;
  auto key_name = [&](const std::optional<int64_t>& id) -> std::string {
    if (!id) return "-";
    auto it = names.find(*id);
    return it != names.end() ? it->second : "(deleted " + std::to_string(*id) + ")";
  };
  json::array arr;
  Table table({"DAY", "KEY", "NAME", "MODEL", "REQUESTS", "INPUT", "OUTPUT", "CACHE_READ",
               "CACHE_WRITE", "COST_USD"});
  store::UsageSummary total;
  for (const store::UsageSummary& u : *rows) {
    const std::string day = FormatTimeMs(u.day * 86'400'000).substr(0, 10);
    arr.push_back(json::object{{"day", day},
                               {"client_key_id", JsonOpt(u.client_key_id)},
                               {"name", key_name(u.client_key_id)},
                               {"model", u.model},
                               {"requests", u.requests},
                               {"input_tokens", u.input_tokens},
                               {"output_tokens", u.output_tokens},
                               {"cache_read_tokens", u.cache_read_tokens},
                               {"cache_write_tokens", u.cache_write_tokens},
                               {"cost_micros", u.cost_micros},
                               {"cost_usd", FormatMicrosAsUsd(u.cost_micros)}});
    table.Add({day, u.client_key_id ? std::to_string(*u.client_key_id) : "-",
               key_name(u.client_key_id), u.model, std::to_string(u.requests),
               std::to_string(u.input_tokens), std::to_string(u.output_tokens),
               std::to_string(u.cache_read_tokens), std::to_string(u.cache_write_tokens),
               FormatMicrosAsUsd(u.cost_micros)});
    total.requests += u.requests;
    total.input_tokens += u.input_tokens;
    total.output_tokens += u.output_tokens;
    total.cache_read_tokens += u.cache_read_tokens;
    total.cache_write_tokens += u.cache_write_tokens;
    total.cost_micros += u.cost_micros;
  }
  if (ctx.json) {
    PrintJson(ctx, json::object{{"usage", std::move(arr)},
                                {"total", json::object{{"requests", total.requests},
                                                       {"input_tokens", total.input_tokens},
                                                       {"output_tokens", total.output_tokens},
                                                       {"cost_micros", total.cost_micros},
                                                       {"cost_usd", FormatMicrosAsUsd(
                                                                        total.cost_micros)}}}});
  } else if (rows->empty()) {
    ctx.out << "no usage\n";
  } else {
    table.Add({"total", "", "", "", std::to_string(total.requests),
               std::to_string(total.input_tokens), std::to_string(total.output_tokens),
               std::to_string(total.cache_read_tokens), std::to_string(total.cache_write_tokens),
               FormatMicrosAsUsd(total.cost_micros)});
    table.Print(ctx.out);
  }
  return kExitOk;
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
