#include "ops/ops.h"

#include <boost/json.hpp>
#include <algorithm>
#include <unordered_map>
#include <variant>

#include "common/proxy_url.h"
#include "common/strings.h"
#include "ops/key_list.h"

namespace keygate::ops {

using store::KeyState;

namespace {

json::value JsonOpt(std::optional<int64_t> v) { return v ? json::value(*v) : json::value(nullptr); }
json::value JsonTime(std::optional<int64_t> ms) {
  return ms ? json::value(FormatTimeMs(*ms)) : json::value(nullptr);
}

StatusOr<std::map<int64_t, std::string>> PoolNames(store::Store& store) {
  KG_ASSIGN_OR_RETURN(std::vector<store::Pool> pools, store.ListPools());
  std::map<int64_t, std::string> names;
  for (const auto& p : pools) names[p.id] = p.name;
  return names;
}

// The store filter of a history query; NotFound for an unknown pool.
StatusOr<store::HistoryFilter> Filter(store::Store& store, const HistoryQuery& q) {
  if (q.limit <= 0) return InvalidArgumentError("limit must be > 0");
  store::HistoryFilter f;
  f.limit = std::min<int64_t>(q.limit, 1000);
  f.key_id = q.key_id;
  f.before_id = q.before_id;
  if (!q.pool.empty()) {
    KG_ASSIGN_OR_RETURN(store::Pool pool, store.GetPool(q.pool));
    f.pool_id = pool.id;
  }
  return f;
}

// {"<kind>": items, "next_before_id": the last id when the page is full (more may follow)}.
template <typename Record, typename ToJson>
json::object Page(const char* kind, const std::vector<Record>& records, int64_t limit,
                  ToJson to_json) {
  json::array arr;
  for (const Record& r : records) arr.push_back(to_json(r));
  json::value next = nullptr;
  if (!records.empty() && static_cast<int64_t>(records.size()) >= limit) next = records.back().id;
  return json::object{{kind, std::move(arr)}, {"next_before_id", next}};
}

std::string StateName(KeyState s) { return std::string(store::KeyStateName(s)); }

}  // namespace

json::object CountsJson(const store::StateCounts& c) {
  return json::object{{"active", c.active},   {"backup", c.backup},   {"cooling", c.cooling},
                      {"exhausted", c.exhausted}, {"retired", c.retired}, {"total", c.total()}};
}

// ---------------------------------------------------------------- pools

StatusOr<store::Pool> CreatePool(store::Store& store, const std::string& name,
                                 const std::string& provider, const std::string& settings_json) {
  std::string settings = settings_json.empty() ? "{}" : settings_json;
  boost::system::error_code ec;
  json::value parsed = json::parse(settings, ec);
  if (ec || !parsed.is_object()) return InvalidArgumentError("settings must be a JSON object");
  return store.CreatePool(name, provider, json::serialize(parsed));
}

StatusOr<std::vector<PoolSummary>> ListPools(store::Store& store) {
  KG_ASSIGN_OR_RETURN(std::vector<store::Pool> pools, store.ListPools());
  std::vector<PoolSummary> out;
  for (store::Pool& p : pools) {
    KG_ASSIGN_OR_RETURN(store::StateCounts c, store.CountKeys(p.id));
    out.push_back({std::move(p), c});
  }
  return out;
}

StatusOr<PoolSummary> PoolStatus(store::Store& store, const std::string& name) {
  KG_ASSIGN_OR_RETURN(store::Pool pool, store.GetPool(name));
  KG_ASSIGN_OR_RETURN(store::StateCounts c, store.CountKeys(pool.id));
  return PoolSummary{std::move(pool), c};
}

json::object PoolJson(const PoolSummary& s) {
  const store::Pool& p = s.pool;
  boost::system::error_code ec;
  json::value settings = json::parse(p.settings_json, ec);
  if (ec) settings = json::value(p.settings_json);
  return json::object{{"id", p.id},
                      {"name", p.name},
                      {"provider", p.provider},
                      {"settings", settings},
                      {"version", p.version},
                      {"created_at", FormatTimeMs(p.created_at_ms)},
                      {"counts", CountsJson(s.counts)}};
}

// ---------------------------------------------------------------- key import

json::object ImportReport::Json() const {
  json::array dups;
  for (const ImportDuplicate& d : duplicates) {
    json::object o{{"line", d.line}, {"key", d.masked}};
    if (d.existing_key_id) o["existing_key_id"] = *d.existing_key_id;
    if (d.repeats_line) o["repeats_line"] = *d.repeats_line;
    dups.push_back(std::move(o));
  }
  json::array ids;
  for (int64_t id : inserted_ids) ids.push_back(id);
  return json::object{{"pool", pool},
                      {"state", store::KeyStateName(state)},
                      {"inserted", inserted},
                      {"inserted_ids", std::move(ids)},
                      {"duplicates", std::move(dups)},
                      {"proxies_added", proxies_added},
                      {"imported", imported}};
}

StatusOr<ImportReport> ImportKeys(store::Store& store, const SecretBox& secrets,
                                  const ImportRequest& req) {
  KG_ASSIGN_OR_RETURN(store::Pool pool, store.GetPool(req.pool));
  // Parse everything before writing anything: a corrupt line writes nothing.
  auto entries = ParseKeyList(req.text);
  if (!entries.ok()) return entries.status().WithContext(req.source);
  ImportReport report;
  report.pool = pool.name;
  report.state = req.backup ? KeyState::kBackup : KeyState::kActive;
  report.entries = entries->size();

  // Duplicates, before any write: against every stored key (fingerprints are unique across
  // pools) and within the input. The store dedupes again inside its transaction, so a key
  // stored concurrently by another process is still never inserted twice.
  KG_ASSIGN_OR_RETURN(std::vector<store::UpstreamKey> stored, store.ListKeys({}));
  std::unordered_map<std::string, const store::UpstreamKey*> by_fingerprint;
  for (const auto& k : stored) by_fingerprint[k.fingerprint] = &k;
  KG_ASSIGN_OR_RETURN(auto names, PoolNames(store));
  std::unordered_map<std::string, int> first_line;  // fingerprint -> line in the input
  for (const KeyListEntry& e : *entries) {
    std::string fp = secrets.Fingerprint(e.secret);
    ImportDuplicate d{.line = e.line, .masked = MaskSecret(e.secret)};
    std::string where = "line " + std::to_string(e.line) + ": " + d.masked;
    if (auto it = by_fingerprint.find(fp); it != by_fingerprint.end()) {
      const store::UpstreamKey& k = *it->second;
      d.existing_key_id = k.id;
      d.text = where + " is already stored as key " + std::to_string(k.id) + " (pool " +
               names[k.pool_id] + ", " + StateName(k.state) + ")";
      report.duplicates.push_back(std::move(d));
    } else if (auto [fit, fresh] = first_line.emplace(fp, e.line); !fresh) {
      d.repeats_line = fit->second;
      d.text = where + " repeats line " + std::to_string(fit->second);
      report.duplicates.push_back(std::move(d));
    }
  }
  if (!report.duplicates.empty() && !req.skip_duplicates) return report;  // nothing written
  report.duplicates.clear();
  report.imported = true;
  if (entries->empty()) return report;

  // Proxies named in a CSV: reuse a stored one with the same URL and password, else add it.
  std::map<std::string, int64_t> proxy_ids;  // full URL -> id
  bool any_proxy = std::any_of(entries->begin(), entries->end(),
                               [](const KeyListEntry& e) { return e.proxy.has_value(); });
  if (any_proxy) {
    KG_ASSIGN_OR_RETURN(std::vector<store::Proxy> existing, store.ListProxies(true));
    for (const auto& p : existing) proxy_ids[p.url.FullUrl()] = p.id;
    for (const KeyListEntry& e : *entries) {
      if (!e.proxy || proxy_ids.count(e.proxy->FullUrl())) continue;
      bool created = false;
      KG_ASSIGN_OR_RETURN(store::Proxy added, store.AddProxy(*e.proxy, &created));
      report.proxies_added += created;
      proxy_ids[e.proxy->FullUrl()] = added.id;
    }
  }

  std::vector<store::NewKey> keys;
  keys.reserve(entries->size());
  for (const KeyListEntry& e : *entries) {
    store::NewKey k;
    k.secret = e.secret;
    k.state = report.state;
    k.priority = e.priority.value_or(0);
    k.budget_micros = e.budget_micros;
    k.label = e.label;
    if (e.proxy) k.proxy_id = proxy_ids[e.proxy->FullUrl()];
    keys.push_back(std::move(k));
  }
  auto result = store.ImportKeys(pool.id, keys);
  if (!result.ok()) {
    // Name the input only when the input is at fault; a storage error is about the store.
    Status st = result.status();
    return st.code() == StatusCode::kInvalidArgument ? st.WithContext(req.source) : st;
  }
  // Report what the store did (it is the authority on duplicates).
  report.inserted = result->inserted;
  for (size_t i = 0; i < entries->size(); ++i) {
    const KeyListEntry& e = (*entries)[i];
    if (!result->duplicate[i]) {
      report.inserted_ids.push_back(result->key_ids[i]);
      continue;
    }
    ImportDuplicate d{.line = e.line, .masked = MaskSecret(e.secret),
                      .existing_key_id = result->key_ids[i]};
    d.text = "line " + std::to_string(e.line) + ": " + d.masked + " is key " +
             std::to_string(result->key_ids[i]);
    report.duplicates.push_back(std::move(d));
  }
  // Only a concurrent import can leave duplicates the pre-check did not see.
  if (!req.skip_duplicates) report.concurrent_duplicates = result->duplicates;
  return report;
}

// ---------------------------------------------------------------- key listing

namespace {

StatusOr<KeyListing> Rows(store::Store& store, const store::KeyFilter& filter,
                          std::optional<int64_t> pool_id,
                          std::vector<store::UpstreamKey> keys) {
  KG_ASSIGN_OR_RETURN(auto names, PoolNames(store));
  KG_ASSIGN_OR_RETURN(std::vector<store::Binding> bindings, store.ListBindings(pool_id));
  std::map<int64_t, std::vector<int64_t>> proxies_of;  // key -> proxies, by priority
  for (const auto& b : bindings) proxies_of[b.key_id].push_back(b.proxy_id);
  KeyListing out;
  for (store::UpstreamKey& k : keys) {
    ++out.counts[k.state];
    KeyRow row;
    row.pool = names[k.pool_id];
    row.proxies = proxies_of[k.id];
    std::string& note = row.note;
    if (k.state == KeyState::kCooling) note = "until " + FormatTimeMs(k.cooldown_until_ms);
    if (k.replaced_by) note = "replaced by " + std::to_string(*k.replaced_by);
    if (k.replaces) note += (note.empty() ? "" : "; ") + ("replaces " + std::to_string(*k.replaces));
    if (!k.last_error.empty()) note += (note.empty() ? "" : "; ") + k.last_error;
    k.secret.clear();
    row.key = std::move(k);
    out.rows.push_back(std::move(row));
  }
  return out;
}

}  // namespace

StatusOr<KeyListing> ListKeys(store::Store& store, const std::string& pool,
                              const std::string& state) {
  store::KeyFilter filter;
  if (!state.empty()) {
    filter.state = store::ParseKeyState(state);
    if (!filter.state) {
      return InvalidArgumentError("unknown state '" + state +
                                  "' (active, backup, cooling, exhausted, retired)");
    }
  }
  std::optional<int64_t> pool_id;
  if (!pool.empty()) {
    KG_ASSIGN_OR_RETURN(store::Pool p, store.GetPool(pool));
    pool_id = p.id;
    filter.pool_id = pool_id;
  }
  KG_ASSIGN_OR_RETURN(std::vector<store::UpstreamKey> keys, store.ListKeys(filter));
  return Rows(store, filter, pool_id, std::move(keys));
}

StatusOr<KeyRow> GetKey(store::Store& store, int64_t key_id) {
  KG_ASSIGN_OR_RETURN(store::UpstreamKey key, store.GetKey(key_id, /*with_secret=*/false));
  int64_t pool_id = key.pool_id;
  std::vector<store::UpstreamKey> one;
  one.push_back(std::move(key));
  KG_ASSIGN_OR_RETURN(KeyListing listing, Rows(store, {}, pool_id, std::move(one)));
  return std::move(listing.rows.front());
}

json::object KeyJson(const KeyRow& row) {
  const store::UpstreamKey& k = row.key;
  json::array proxies;
  for (int64_t p : row.proxies) proxies.push_back(p);
  return json::object{
      {"id", k.id},
      {"pool", row.pool},
      {"pool_id", k.pool_id},
      {"state", store::KeyStateName(k.state)},
      {"key", k.masked},
      {"priority", k.priority},
      {"budget_micros", JsonOpt(k.budget_micros)},
      {"spend_micros", k.spend_micros},
      {"proxies", std::move(proxies)},
      {"label", k.label},
      {"cooldown_until",
       k.state == KeyState::kCooling ? JsonTime(k.cooldown_until_ms) : json::value(nullptr)},
      {"last_error", k.last_error},
      {"replaced_by", JsonOpt(k.replaced_by)},
      {"replaces", JsonOpt(k.replaces)},
      {"created_at", FormatTimeMs(k.created_at_ms)},
      {"updated_at", FormatTimeMs(k.updated_at_ms)},
      {"activated_at", JsonTime(k.activated_at_ms)},
      {"retired_at", JsonTime(k.retired_at_ms)}};
}

// ---------------------------------------------------------------- key state changes

namespace {

KeyChange NotApplied(std::string message) { return KeyChange{.applied = false, .message = std::move(message)}; }

std::string KeyIs(int64_t key_id, KeyState s) {
  return "key " + std::to_string(key_id) + " is " + StateName(s);
}

}  // namespace

StatusOr<KeyChange> CoolDownKey(store::Store& store, const Clock& clock, int64_t key_id,
                                int64_t seconds, const std::string& reason) {
  if (seconds <= 0) return InvalidArgumentError("seconds must be > 0");
  KG_ASSIGN_OR_RETURN(store::UpstreamKey key, store.GetKey(key_id, false));
  int64_t until = clock.NowMs() + seconds * 1000;
  KG_ASSIGN_OR_RETURN(bool changed, store.CoolDown(key_id, until, reason));
  if (!changed) {
    return NotApplied(KeyIs(key_id, key.state) +
                      "; only active or cooling keys can be cooled down");
  }
  KG_ASSIGN_OR_RETURN(store::UpstreamKey after, store.GetKey(key_id, false));
  std::string until_text = FormatTimeMs(after.cooldown_until_ms);
  return KeyChange{.applied = true,
                   .message = "key " + std::to_string(key_id) + " is cooling until " + until_text,
                   .json = {{"key_id", key_id}, {"state", "cooling"}, {"cooldown_until", until_text}}};
}

StatusOr<KeyChange> ExhaustKey(store::Store& store, int64_t key_id, const std::string& reason) {
  KG_ASSIGN_OR_RETURN(store::UpstreamKey key, store.GetKey(key_id, false));
  KG_ASSIGN_OR_RETURN(bool changed, store.MarkExhausted(key_id, reason));
  if (!changed) {
    return NotApplied(KeyIs(key_id, key.state) +
                      "; only active or cooling keys can be marked exhausted");
  }
  return KeyChange{.applied = true,
                   .message = "key " + std::to_string(key_id) + " is exhausted",
                   .json = {{"key_id", key_id}, {"state", "exhausted"}}};
}

StatusOr<KeyChange> RestoreKey(store::Store& store, int64_t key_id, const std::string& as_state) {
  auto target = store::ParseKeyState(as_state);
  if (!target || (*target != KeyState::kActive && *target != KeyState::kBackup)) {
    return InvalidArgumentError("the target state must be active or backup");
  }
  KG_ASSIGN_OR_RETURN(store::UpstreamKey key, store.GetKey(key_id, false));
  KG_ASSIGN_OR_RETURN(bool changed, store.Restore(key_id, *target));
  if (!changed) {
    return NotApplied("key " + std::to_string(key_id) + " is already " + StateName(key.state) +
                      "; only cooling, exhausted or retired keys can be restored");
  }
  return KeyChange{.applied = true,
                   .message = "key " + std::to_string(key_id) + " is " + as_state + " again",
                   .json = {{"key_id", key_id}, {"state", store::KeyStateName(*target)}}};
}

// ---------------------------------------------------------------- rotation

StatusOr<RotateReport> RotateKey(store::Store& store, const std::string& pool_name,
                                 int64_t key_id, const std::string& reason,
                                 const std::string& actor) {
  KG_ASSIGN_OR_RETURN(store::Pool pool, store.GetPool(pool_name));
  if (Trim(reason).empty()) return InvalidArgumentError("the reason must not be empty");
  KG_ASSIGN_OR_RETURN(store::RotateOutcome outcome, store.Rotate(pool.id, key_id, reason, actor));
  const std::string key = "key " + std::to_string(key_id);
  RotateReport r{.outcome = outcome};
  // All three outcomes, each explicitly (DESIGN.md: never confused).
  if (const auto* rotated = std::get_if<store::Rotated>(&outcome)) {
    r.message = "rotated: " + key + " retired, key " + std::to_string(rotated->new_key_id) +
                " active in its place (rotation " + std::to_string(rotated->rotation_id) + ")";
    r.json = {{"outcome", "rotated"},
              {"new_key_id", rotated->new_key_id},
              {"rotation_id", rotated->rotation_id}};
  } else if (const auto* none = std::get_if<store::NoBackup>(&outcome)) {
    r.message = "no backup: " + key + " is now exhausted (rotation " +
                std::to_string(none->rotation_id) +
                "); the pool has no backup key left — import some with "
                "`keygate keys import --backup`";
    r.json = {{"outcome", "no_backup"}, {"rotation_id", none->rotation_id}};
  } else {
    r.message = "already rotated: " + key +
                " is no longer active (rotated by someone else, or retired); nothing changed";
    r.json = {{"outcome", "already_rotated"}};
  }
  return r;
}

// ---------------------------------------------------------------- proxies

StatusOr<std::vector<ProxyRow>> ListProxies(store::Store& store) {
  KG_ASSIGN_OR_RETURN(std::vector<store::Proxy> proxies, store.ListProxies(false));
  KG_ASSIGN_OR_RETURN(std::vector<store::Binding> bindings, store.ListBindings(std::nullopt));
  std::map<int64_t, int64_t> bound;
  for (const auto& b : bindings) ++bound[b.proxy_id];
  std::vector<ProxyRow> out;
  for (store::Proxy& p : proxies) {
    int64_t n = bound[p.id];
    out.push_back({std::move(p), n});
  }
  return out;
}

json::object ProxyJson(const ProxyRow& row) {
  const store::Proxy& p = row.proxy;
  return json::object{{"id", p.id},
                      {"url", p.url.DisplayUrl()},
                      {"scheme", p.url.scheme},
                      {"host", p.url.host},
                      {"port", p.url.port},
                      {"username", p.url.username},
                      {"has_password", p.has_password},
                      {"healthy", p.healthy},
                      {"last_error", p.last_error},
                      {"checked_at", p.checked_at_ms ? json::value(FormatTimeMs(p.checked_at_ms))
                                                     : json::value(nullptr)},
                      {"bound_keys", row.bound_keys},
                      {"created_at", FormatTimeMs(p.created_at_ms)}};
}

// ---------------------------------------------------------------- history

StatusOr<json::object> RotationHistory(store::Store& store, const HistoryQuery& q) {
  KG_ASSIGN_OR_RETURN(store::HistoryFilter f, Filter(store, q));
  KG_ASSIGN_OR_RETURN(std::vector<store::RotationRecord> records, store.ListRotations(f));
  KG_ASSIGN_OR_RETURN(auto names, PoolNames(store));
  return Page("rotations", records, f.limit, [&](const store::RotationRecord& r) {
    return json::object{{"id", r.id},
                        {"time", FormatTimeMs(r.created_at_ms)},
                        {"time_ms", r.created_at_ms},
                        {"pool", names[r.pool_id]},
                        {"failed_key_id", r.failed_key_id},
                        {"new_key_id", JsonOpt(r.new_key_id)},
                        {"outcome", r.outcome},
                        {"reason", r.reason},
                        {"actor", r.actor}};
  });
}

StatusOr<json::object> SpendHistory(store::Store& store, const HistoryQuery& q) {
  KG_ASSIGN_OR_RETURN(store::HistoryFilter f, Filter(store, q));
  KG_ASSIGN_OR_RETURN(std::vector<store::SpendRecord> records, store.ListSpendRecords(f));
  KG_ASSIGN_OR_RETURN(auto names, PoolNames(store));
  return Page("spend", records, f.limit, [&](const store::SpendRecord& r) {
    return json::object{{"id", r.id},
                        {"time", FormatTimeMs(r.created_at_ms)},
                        {"time_ms", r.created_at_ms},
                        {"pool", names[r.pool_id]},
                        {"key_id", r.key_id},
                        {"spend_usd", FormatMicrosAsUsd(r.spend_micros)},
                        {"budget_usd", r.budget_micros
                                           ? json::value(FormatMicrosAsUsd(*r.budget_micros))
                                           : json::value(nullptr)},
                        {"action", r.action},
                        {"reason", r.reason},
                        {"new_key_id", JsonOpt(r.new_key_id)},
                        {"error", r.error}};
  });
}

StatusOr<json::object> UsageHistory(store::Store& store, const HistoryQuery& q) {
  KG_ASSIGN_OR_RETURN(store::HistoryFilter f, Filter(store, q));
  KG_ASSIGN_OR_RETURN(std::vector<store::UsageRecord> records, store.ListUsage(f));
  KG_ASSIGN_OR_RETURN(auto names, PoolNames(store));
  return Page("usage", records, f.limit, [&](const store::UsageRecord& u) {
    return json::object{{"id", u.id},
                        {"time", FormatTimeMs(u.created_at_ms)},
                        {"time_ms", u.created_at_ms},
                        {"request_id", u.request_id},
                        {"client_key_id", JsonOpt(u.client_key_id)},
                        {"upstream_key_id", JsonOpt(u.upstream_key_id)},
                        {"pool", u.pool_id ? json::value(names[*u.pool_id]) : json::value(nullptr)},
                        {"model", u.model},
                        {"input_tokens", u.input_tokens},
                        {"output_tokens", u.output_tokens},
                        {"cache_read_tokens", u.cache_read_tokens},
                        {"cache_write_tokens", u.cache_write_tokens},
                        {"cost_usd", FormatMicrosAsUsd(u.cost_micros)},
                        {"latency_ms", u.latency_ms},
                        {"ttfb_ms", u.ttfb_ms},
                        {"status", u.status},
                        {"attempts", u.attempts}};
  });
}

StatusOr<json::object> AuditHistory(store::Store& store, const HistoryQuery& q) {
  KG_ASSIGN_OR_RETURN(store::HistoryFilter f, Filter(store, q));
  KG_ASSIGN_OR_RETURN(std::vector<store::AuditRecord> records, store.ListAuditRecords(f));
  return Page("audit", records, f.limit, [&](const store::AuditRecord& a) {
    return json::object{{"id", a.id},
                        {"time", FormatTimeMs(a.created_at_ms)},
                        {"time_ms", a.created_at_ms},
                        {"admin", a.admin},
                        {"action", a.action},
                        {"target", a.target},
                        {"result", a.result}};
  });
}

// ---------------------------------------------------------------- admin keys

StatusOr<NewAdminKey> CreateAdminKey(store::Store& store, const SecretBox& secrets,
                                     const std::string& name) {
  if (Trim(name).empty()) return InvalidArgumentError("the admin key name must not be empty");
  NewAdminKey out;
  out.secret = RandomToken("kga-");
  KG_ASSIGN_OR_RETURN(out.key, store.CreateAdminKey(name, secrets.HashAdminKey(out.secret),
                                                    MaskSecret(out.secret)));
  return out;
}

}  // namespace keygate::ops
