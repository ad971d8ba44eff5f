#include "cli/mongo_import.h"

#include <boost/json.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <unordered_map>
#include <utility>

#include "common/strings.h"

namespace keygate::cli {

namespace json = boost::json;
using store::KeyState;

namespace {

// ---------------------------------------------------------------- extended JSON

// Returns the payload of a one-member wrapper object {"$<tag>": payload}, or null.
const json::value* Wrapped(const json::value& v, std::string_view tag) {
  const json::object* o = v.if_object();
  if (o == nullptr || o->size() != 1) return nullptr;
  auto it = o->find(tag);
  return it == o->end() ? nullptr : &it->value();
}

// Strings, {"$oid": "..."}, and integers as text (some exports use numeric ids).
std::optional<std::string> AsText(const json::value& v) {
  if (const json::string* s = v.if_string()) return std::string(*s);
  if (const json::value* oid = Wrapped(v, "$oid")) {
    if (const json::string* s = oid->if_string()) return std::string(*s);
    return std::nullopt;
  }
  if (v.is_int64()) return std::to_string(v.get_int64());
  if (v.is_uint64()) return std::to_string(v.get_uint64());
  return std::nullopt;
}

// A number in any of its extended-JSON spellings, as a decimal string (exact for integers and
// decimals) or a double.
struct Number {
  std::optional<std::string> text;  // exact decimal text when the source had one
  double value = 0;
};

std::optional<Number> AsNumber(const json::value& v) {
  if (v.is_int64()) return Number{std::to_string(v.get_int64()), double(v.get_int64())};
  if (v.is_uint64()) return Number{std::to_string(v.get_uint64()), double(v.get_uint64())};
  if (v.is_double()) return Number{std::nullopt, v.get_double()};
  for (std::string_view tag : {"$numberLong", "$numberInt", "$numberDouble", "$numberDecimal"}) {
    const json::value* inner = Wrapped(v, tag);
    if (inner == nullptr) continue;
    if (const json::string* s = inner->if_string()) {
      std::string text(*s);
      char* end = nullptr;
      double d = std::strtod(text.c_str(), &end);
      if (text.empty() || end != text.c_str() + text.size()) return std::nullopt;
      return Number{text, d};
    }
    return AsNumber(*inner);  // relaxed forms sometimes carry a bare number
  }
  return std::nullopt;
}

std::optional<int64_t> AsInt(const json::value& v) {
  auto n = AsNumber(v);
  if (!n) return std::nullopt;
  if (n->text) {
    if (auto i = ParseInt64(*n->text)) return i;
  }
  if (!std::isfinite(n->value) || std::trunc(n->value) != n->value ||
      std::fabs(n->value) > 9.0e15) {
    return std::nullopt;
  }
  return static_cast<int64_t>(n->value);
}

// US dollars -> micro-USD.
std::optional<int64_t> AsMicros(const json::value& v) {
  auto n = AsNumber(v);
  if (!n) {
    if (const json::string* s = v.if_string()) return ParseUsdToMicros(std::string_view(*s));
    return std::nullopt;
  }
  if (n->text) {
    if (auto m = ParseUsdToMicros(*n->text)) return m;
  }
  if (!std::isfinite(n->value) || std::fabs(n->value) > 9.0e9) return std::nullopt;
  return static_cast<int64_t>(std::llround(n->value * 1e6));
}

std::optional<bool> AsBool(const json::value& v) {
  if (v.is_bool()) return v.get_bool();
  if (auto i = AsInt(v)) {
    if (*i == 0 || *i == 1) return *i == 1;
  }
  if (const json::string* s = v.if_string()) {
    std::string t = ToLower(std::string_view(*s));
    if (t == "true") return true;
    if (t == "false") return false;
  }
  return std::nullopt;
}

// {"$date": "ISO"}, {"$date": {"$numberLong": "ms"}}, {"$date": ms}, or a bare ISO string.
std::optional<int64_t> AsDateMs(const json::value& v) {
  const json::value* inner = Wrapped(v, "$date");
  const json::value& d = inner != nullptr ? *inner : v;
  if (const json::string* s = d.if_string()) return ParseTimeMs(std::string_view(*s));
  return AsInt(d);
}

// ---------------------------------------------------------------- documents

class Document {
 public:
  Document(const json::object& o, const std::string& origin) : o_(o), origin_(origin) {}

  const json::value* Find(std::string_view field) const {
    auto it = o_.find(field);
    if (it == o_.end() || it->value().is_null()) return nullptr;
    return &it->value();
  }
  Status Error(std::string_view what) const {
    return InvalidArgumentError(origin_ + ": " + std::string(what));
  }
  StatusOr<std::string> RequiredText(std::string_view field) const {
    const json::value* v = Find(field);
    if (v == nullptr) return Error("missing field '" + std::string(field) + "'");
    auto t = AsText(*v);
    if (!t || t->empty()) return Error("field '" + std::string(field) + "' is not a string or id");
    return *t;
  }
  StatusOr<std::string> OptionalText(std::string_view field) const {
    const json::value* v = Find(field);
    if (v == nullptr) return std::string();
    auto t = AsText(*v);
    if (!t) return Error("field '" + std::string(field) + "' is not a string");
    return *t;
  }
  StatusOr<std::optional<int64_t>> OptionalInt(std::string_view field) const {
    const json::value* v = Find(field);
    if (v == nullptr) return std::optional<int64_t>();
    auto i = AsInt(*v);
    if (!i) return Error("field '" + std::string(field) + "' is not an integer");
    return std::optional<int64_t>(*i);
  }
  StatusOr<std::optional<int64_t>> OptionalMicros(std::string_view field) const {
    const json::value* v = Find(field);
    if (v == nullptr) return std::optional<int64_t>();
    auto m = AsMicros(*v);
    if (!m || *m < 0) {
      return Error("field '" + std::string(field) + "' is not a non-negative amount of dollars");
    }
    return std::optional<int64_t>(*m);
  }
  StatusOr<bool> OptionalBool(std::string_view field, bool absent) const {
    const json::value* v = Find(field);
    if (v == nullptr) return absent;
    auto b = AsBool(*v);
    if (!b) return Error("field '" + std::string(field) + "' is not a boolean");
    return *b;
  }
  Status CheckDate(std::string_view field) const {
    const json::value* v = Find(field);
    if (v != nullptr && !AsDateMs(*v)) {
      return Error("field '" + std::string(field) + "' is not a date");
    }
    return OkStatus();
  }

 private:
  const json::object& o_;
  const std::string& origin_;
};

StatusOr<json::value> ParseLine(std::string_view line, const std::string& origin) {
  boost::system::error_code ec;
  json::value v = json::parse(line, ec);
  // The parser's message names the problem without repeating the input (which may hold a key).
  if (ec) return InvalidArgumentError(origin + ": malformed JSON (" + ec.message() + ")");
  if (!v.is_object()) return InvalidArgumentError(origin + ": not a JSON object");
  return v;
}

Status CheckSecret(const Document& doc, const std::string& secret) {
  for (unsigned char ch : secret) {
    if (ch <= 0x20 || ch == 0x7F) {
      return doc.Error("apiKey " + MaskSecret(secret) + " contains whitespace or a control character");
    }
  }
  return OkStatus();
}

// The status table (docs/cli.md, "import mongo"). Keys not serving in the old system are never
// activated: statuses that mean "spent" become exhausted, administrative or dead ones retired.
struct StatusRow {
  std::string_view status;
  KeyState state;
};
constexpr StatusRow kStatusTable[] = {
    {"active", KeyState::kActive},
    {"enabled", KeyState::kActive},
    {"ok", KeyState::kActive},
    {"cooling", KeyState::kActive},       // a cooldown is transient; keygate's own applies
    {"cooldown", KeyState::kActive},
    {"rate_limited", KeyState::kActive},
    {"exhausted", KeyState::kExhausted},
    {"budget_exceeded", KeyState::kExhausted},
    {"over_budget", KeyState::kExhausted},
    {"quota_exceeded", KeyState::kExhausted},
    {"insufficient_quota", KeyState::kExhausted},
    {"depleted", KeyState::kExhausted},
    {"limit_reached", KeyState::kExhausted},
    {"inactive", KeyState::kRetired},
    {"disabled", KeyState::kRetired},
    {"paused", KeyState::kRetired},
    {"suspended", KeyState::kRetired},
    {"revoked", KeyState::kRetired},
    {"invalid", KeyState::kRetired},
    {"banned", KeyState::kRetired},
    {"expired", KeyState::kRetired},
    {"error", KeyState::kRetired},
    {"failed", KeyState::kRetired},
    {"deleted", KeyState::kRetired},
    {"rotated", KeyState::kRetired},
    {"replaced", KeyState::kRetired},
    {"retired", KeyState::kRetired},
    {"used", KeyState::kRetired},
};

// ---------------------------------------------------------------- files

struct CollectionSpec {
  std::string_view name;
  int family;  // 0 factory, 1 openhands, -1 proxies
  enum { kPrimaryKeys, kBackupKeys, kProxies, kBindings } type;
  std::string_view key_field;  // bindings only
};
constexpr CollectionSpec kCollections[] = {
    {"factory_keys", 0, CollectionSpec::kPrimaryKeys, ""},
    {"backup_keys", 0, CollectionSpec::kBackupKeys, ""},
    {"openhands_keys", 1, CollectionSpec::kPrimaryKeys, ""},
    {"openhands_backup_keys", 1, CollectionSpec::kBackupKeys, ""},
    {"proxies", -1, CollectionSpec::kProxies, ""},
    {"proxy_key_bindings", 0, CollectionSpec::kBindings, "factoryKeyId"},
    {"openhands_bindings", 1, CollectionSpec::kBindings, "openhandsKeyId"},
};
constexpr std::pair<std::string_view, std::string_view> kFamilies[] = {
    {"factory", "factory"}, {"openhands", "litellm"}};

// Reads `path` and calls `fn(line_text, origin)` for each non-blank line.
template <typename Fn>
Status ForEachLine(const std::filesystem::path& path, const std::string& file_name, Fn fn) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return UnavailableError("cannot read " + path.string());
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  std::string_view view(text);
  if (view.starts_with("\xEF\xBB\xBF")) view.remove_prefix(3);
  std::string_view trimmed = Trim(view);
  if (trimmed.starts_with("[")) {
    return InvalidArgumentError(file_name +
                                ": looks like a JSON array (mongoexport --jsonArray); export "
                                "one document per line instead (without --jsonArray)");
  }
  int number = 0;
  for (std::string_view line : Split(view, '\n')) {
    ++number;
    line = Trim(line);
    if (line.empty()) continue;
    KG_RETURN_IF_ERROR(fn(line, file_name + ":" + std::to_string(number)));
  }
  return OkStatus();
}

}  // namespace

std::optional<KeyState> MapMongoKeyStatus(std::string_view status) {
  std::string s = ToLower(Trim(status));
  if (s.empty()) return KeyState::kActive;
  for (char& c : s) {
    if (c == '-' || c == ' ') c = '_';
  }
  for (const StatusRow& row : kStatusTable) {
    if (row.status == s) return row.state;
  }
  return std::nullopt;
}

StatusOr<MongoKey> ParseMongoKeyLine(std::string_view line, MongoKeyKind kind,
                                     const std::string& origin) {
  KG_ASSIGN_OR_RETURN(json::value v, ParseLine(line, origin));
  Document doc(v.as_object(), origin);
  MongoKey key;
  key.origin = origin;
  KG_ASSIGN_OR_RETURN(key.oid, doc.RequiredText("_id"));
  KG_ASSIGN_OR_RETURN(key.secret, doc.RequiredText("apiKey"));
  KG_RETURN_IF_ERROR(CheckSecret(doc, key.secret));
  if (kind == MongoKeyKind::kPrimary) {
    KG_ASSIGN_OR_RETURN(std::string status, doc.OptionalText("status"));
    auto state = MapMongoKeyStatus(status);
    if (!state) {
      return doc.Error("unknown status '" + status +
                       "' (see the status table in docs/cli.md; fix the export or extend the table)");
    }
    key.state = *state;
  } else {
    KG_ASSIGN_OR_RETURN(bool used, doc.OptionalBool("isUsed", false));
    key.state = used ? KeyState::kRetired : KeyState::kBackup;
  }
  KG_ASSIGN_OR_RETURN(std::optional<int64_t> priority, doc.OptionalInt("priority"));
  key.priority = priority.value_or(0);
  KG_ASSIGN_OR_RETURN(key.spend_micros, doc.OptionalMicros("totalSpend"));
  KG_ASSIGN_OR_RETURN(key.budget_micros, doc.OptionalMicros("budget"));
  if (!key.budget_micros) {
    KG_ASSIGN_OR_RETURN(key.budget_micros, doc.OptionalMicros("maxBudget"));
  }
  KG_RETURN_IF_ERROR(doc.CheckDate("createdAt"));
  KG_RETURN_IF_ERROR(doc.CheckDate("updatedAt"));
  return key;
}

StatusOr<MongoProxy> ParseMongoProxyLine(std::string_view line, const std::string& origin) {
  KG_ASSIGN_OR_RETURN(json::value v, ParseLine(line, origin));
  Document doc(v.as_object(), origin);
  MongoProxy p;
  p.origin = origin;
  KG_ASSIGN_OR_RETURN(p.oid, doc.RequiredText("_id"));
  KG_ASSIGN_OR_RETURN(std::string type, doc.RequiredText("type"));
  KG_ASSIGN_OR_RETURN(std::string host, doc.RequiredText("host"));
  KG_ASSIGN_OR_RETURN(std::optional<int64_t> port, doc.OptionalInt("port"));
  if (!port) {
    // Some exports keep the port as a string.
    KG_ASSIGN_OR_RETURN(std::string port_text, doc.OptionalText("port"));
    port = ParseInt64(port_text);
  }
  if (!port || *port < 1 || *port > 65535) return doc.Error("field 'port' is not a port number");
  ProxyUrl url;
  url.scheme = ToLower(type);
  url.host = host;
  url.port = static_cast<uint16_t>(*port);
  KG_ASSIGN_OR_RETURN(url.username, doc.OptionalText("username"));
  KG_ASSIGN_OR_RETURN(url.password, doc.OptionalText("password"));
  // Round-trip through the URL parser: one definition of a valid proxy (scheme, host syntax).
  auto parsed = ParseProxyUrl(url.FullUrl());
  if (!parsed.ok()) return doc.Error("invalid proxy: " + parsed.status().message());
  p.url = std::move(parsed).value();
  KG_ASSIGN_OR_RETURN(p.healthy, doc.OptionalBool("isActive", true));
  return p;
}

StatusOr<std::optional<MongoBinding>> ParseMongoBindingLine(std::string_view line,
                                                            std::string_view key_field,
                                                            const std::string& origin) {
  KG_ASSIGN_OR_RETURN(json::value v, ParseLine(line, origin));
  Document doc(v.as_object(), origin);
  MongoBinding b;
  b.origin = origin;
  KG_ASSIGN_OR_RETURN(b.proxy_oid, doc.RequiredText("proxyId"));
  KG_ASSIGN_OR_RETURN(b.key_oid, doc.RequiredText(key_field));
  KG_ASSIGN_OR_RETURN(std::optional<int64_t> priority, doc.OptionalInt("priority"));
  b.priority = priority.value_or(0);
  KG_ASSIGN_OR_RETURN(bool active, doc.OptionalBool("isActive", true));
  if (!active) return std::optional<MongoBinding>();
  return std::optional<MongoBinding>(std::move(b));
}

StatusOr<MongoExportPlan> ReadMongoExport(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return NotFoundError("no such directory: " + dir);
  MongoExportPlan plan;
  plan.dir = dir;
  for (const auto& [pool, provider] : kFamilies) {
    MongoPoolPlan p;
    p.pool = pool;
    p.provider = provider;
    plan.pools.push_back(std::move(p));
  }
  std::vector<MongoKey> backups[2];
  std::set<std::string> key_oids[2];
  std::map<std::string, const MongoProxy*> proxy_by_url;
  std::set<std::string> proxy_oids;

  for (const CollectionSpec& spec : kCollections) {
    MongoFileInfo info;
    info.collection = spec.name;
    fs::path json_path = fs::path(dir) / (std::string(spec.name) + ".json");
    fs::path jsonl_path = fs::path(dir) / (std::string(spec.name) + ".jsonl");
    bool has_json = fs::is_regular_file(json_path, ec);
    bool has_jsonl = fs::is_regular_file(jsonl_path, ec);
    if (has_json && has_jsonl) {
      return InvalidArgumentError("both " + json_path.filename().string() + " and " +
                                  jsonl_path.filename().string() + " exist; keep one");
    }
    if (!has_json && !has_jsonl) {
      plan.files.push_back(std::move(info));
      continue;
    }
    fs::path path = has_json ? json_path : jsonl_path;
    info.path = path.string();
    const std::string file_name = path.filename().string();
    Status s;
    switch (spec.type) {
      case CollectionSpec::kPrimaryKeys:
      case CollectionSpec::kBackupKeys: {
        MongoKeyKind kind = spec.type == CollectionSpec::kPrimaryKeys ? MongoKeyKind::kPrimary
                                                                      : MongoKeyKind::kBackup;
        auto& target = kind == MongoKeyKind::kPrimary ? plan.pools[spec.family].keys
                                                      : backups[spec.family];
        s = ForEachLine(path, file_name, [&](std::string_view line, const std::string& origin) {
          KG_ASSIGN_OR_RETURN(MongoKey k, ParseMongoKeyLine(line, kind, origin));
          if (!key_oids[spec.family].insert(k.oid).second) {
            return InvalidArgumentError(origin + ": _id " + k.oid + " appears twice");
          }
          target.push_back(std::move(k));
          ++info.documents;
          return OkStatus();
        });
        break;
      }
      case CollectionSpec::kProxies:
        s = ForEachLine(path, file_name, [&](std::string_view line, const std::string& origin) {
          KG_ASSIGN_OR_RETURN(MongoProxy p, ParseMongoProxyLine(line, origin));
          if (!proxy_oids.insert(p.oid).second) {
            return InvalidArgumentError(origin + ": _id " + p.oid + " appears twice");
          }
          plan.proxies.push_back(std::move(p));
          ++info.documents;
          return OkStatus();
        });
        break;
      case CollectionSpec::kBindings: {
        MongoPoolPlan& pool = plan.pools[spec.family];
        s = ForEachLine(path, file_name, [&](std::string_view line, const std::string& origin) {
          KG_ASSIGN_OR_RETURN(std::optional<MongoBinding> b,
                              ParseMongoBindingLine(line, spec.key_field, origin));
          ++info.documents;
          if (!b) {
            ++pool.inactive_bindings;
          } else {
            pool.bindings.push_back(std::move(*b));
          }
          return OkStatus();
        });
        break;
      }
    }
    KG_RETURN_IF_ERROR(s);
    plan.files.push_back(std::move(info));
  }
  // Two proxy documents with one URL but different passwords would make every run flip the
  // stored password: refuse rather than be non-idempotent.
  for (const MongoProxy& p : plan.proxies) {
    auto [it, inserted] = proxy_by_url.emplace(p.url.DisplayUrl(), &p);
    if (!inserted && it->second->url.password != p.url.password) {
      return InvalidArgumentError(p.origin + ": proxy " + p.url.DisplayUrl() +
                                  " also appears at " + it->second->origin +
                                  " with another password");
    }
  }
  for (int f = 0; f < 2; ++f) {
    auto& keys = plan.pools[f].keys;
    keys.insert(keys.end(), std::make_move_iterator(backups[f].begin()),
                std::make_move_iterator(backups[f].end()));
  }
  return plan;
}

StatusOr<MongoImportReport> ApplyMongoImport(store::Store& store, const MongoExportPlan& plan) {
  MongoImportReport report;
  report.files = plan.files;

  // Proxies first: keys and bindings refer to them.
  std::unordered_map<std::string, int64_t> proxy_ids;  // mongo oid -> proxy id
  if (!plan.proxies.empty()) {
    KG_ASSIGN_OR_RETURN(std::vector<store::Proxy> existing, store.ListProxies(true));
    std::map<std::string, store::Proxy> by_url;
    for (store::Proxy& p : existing) by_url.emplace(p.url.DisplayUrl(), std::move(p));
    for (const MongoProxy& mp : plan.proxies) {
      std::string display = mp.url.DisplayUrl();
      auto it = by_url.find(display);
      if (it != by_url.end() && it->second.url.password == mp.url.password) {
        proxy_ids[mp.oid] = it->second.id;
        ++report.proxies_unchanged;
        continue;
      }
      bool created = false;
      KG_ASSIGN_OR_RETURN(store::Proxy added, store.AddProxy(mp.url, &created));
      if (created) {
        ++report.proxies_created;
        if (!mp.healthy) {
          KG_RETURN_IF_ERROR(
              store.SetProxyHealth(added.id, false, "inactive in the MongoDB export"));
        }
      } else {
        ++report.proxies_updated;
      }
      proxy_ids[mp.oid] = added.id;
      added.url.password = mp.url.password;
      by_url[display] = added;
    }
  }

  for (const MongoPoolPlan& pp : plan.pools) {
    if (pp.keys.empty() && pp.bindings.empty() && pp.inactive_bindings == 0) continue;
    MongoPoolReport pr;
    pr.pool = pp.pool;
    pr.documents = static_cast<int64_t>(pp.keys.size());
    pr.bindings_inactive = pp.inactive_bindings;

    auto pool = store.GetPool(pp.pool);
    if (!pool.ok() && pool.status().code() == StatusCode::kNotFound) {
      pool = store.CreatePool(pp.pool, pp.provider);
      if (pool.ok()) {
        pr.created = true;
      } else if (pool.status().code() == StatusCode::kAlreadyExists) {
        pool = store.GetPool(pp.pool);  // another process created it meanwhile
      }
    }
    if (!pool.ok()) return pool.status();
    if (!pr.created && pool->provider != pp.provider) {
      report.warnings.push_back("pool " + pp.pool + " already exists with provider " +
                                pool->provider + " (the export's keys are added to it)");
    }
    const int64_t pool_id = pool->id;

    std::unordered_map<std::string, int64_t> key_ids;  // mongo oid -> key id
    if (!pp.keys.empty()) {
      std::vector<store::NewKey> keys;
      keys.reserve(pp.keys.size());
      for (const MongoKey& mk : pp.keys) {
        store::NewKey k;
        k.secret = mk.secret;
        k.state = mk.state;
        k.priority = mk.priority;
        k.budget_micros = mk.budget_micros;
        k.label = "mongo:" + mk.oid;
        keys.push_back(std::move(k));
      }
      KG_ASSIGN_OR_RETURN(store::ImportResult r, store.ImportKeys(pool_id, keys));
      pr.inserted = r.inserted;
      pr.duplicates = r.duplicates;
      for (size_t i = 0; i < pp.keys.size(); ++i) {
        const MongoKey& mk = pp.keys[i];
        key_ids[mk.oid] = r.key_ids[i];
        // Spend only for keys this run inserted: a second run must not touch anything.
        if (!r.duplicate[i] && mk.spend_micros && *mk.spend_micros > 0) {
          KG_RETURN_IF_ERROR(store.UpdateSpend(r.key_ids[i], *mk.spend_micros, mk.budget_micros));
        }
      }
      // Keys that the export holds but that deduped onto a key of another pool cannot carry
      // this pool's bindings; they are reported as dangling below.
      KG_ASSIGN_OR_RETURN(std::vector<store::UpstreamKey> in_pool,
                          store.ListKeys({.pool_id = pool_id}));
      std::set<int64_t> ids_in_pool;
      for (const auto& k : in_pool) ids_in_pool.insert(k.id);
      for (auto it = key_ids.begin(); it != key_ids.end();) {
        it = ids_in_pool.count(it->second) ? std::next(it) : key_ids.erase(it);
      }
    }

    // Desired bindings, collapsed: the same (key, proxy) named twice keeps the higher priority,
    // so the result does not depend on document order.
    std::map<std::pair<int64_t, int64_t>, int64_t> desired;
    for (const MongoBinding& b : pp.bindings) {
      auto k = key_ids.find(b.key_oid);
      auto p = proxy_ids.find(b.proxy_oid);
      if (k == key_ids.end() || p == proxy_ids.end()) {
        ++pr.bindings_dangling;
        report.warnings.push_back(b.origin + ": binding skipped: " +
                                  (k == key_ids.end() ? "key " + b.key_oid
                                                      : "proxy " + b.proxy_oid) +
                                  " is not in the export (or belongs to another pool)");
        continue;
      }
      auto [it, inserted] = desired.emplace(std::make_pair(k->second, p->second), b.priority);
      if (!inserted) it->second = std::max(it->second, b.priority);
    }
    if (!desired.empty()) {
      KG_ASSIGN_OR_RETURN(std::vector<store::Binding> existing, store.ListBindings(pool_id));
      std::map<std::pair<int64_t, int64_t>, int64_t> have;
      for (const auto& b : existing) have[{b.key_id, b.proxy_id}] = b.priority;
      for (const auto& [kp, priority] : desired) {
        auto it = have.find(kp);
        if (it != have.end() && it->second == priority) {
          ++pr.bindings_unchanged;
          continue;
        }
        KG_ASSIGN_OR_RETURN(bool created, store.Bind(kp.first, kp.second, priority));
        ++(created ? pr.bindings_created : pr.bindings_updated);
      }
    }
    report.pools.push_back(std::move(pr));
  }
  return report;
}

}  // namespace keygate::cli
