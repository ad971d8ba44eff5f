#include "admin/admin.h"

#include <sodium.h>

#include <boost/asio/async_result.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <algorithm>
#include <map>
#include <memory>
#include <optional>

#include "common/log.h"
#include "common/proxy_url.h"
#include "common/strings.h"
#include "ops/ops.h"

namespace keygate::admin {

namespace asio = boost::asio;
namespace json = boost::json;

namespace {

constexpr std::string_view kApi = "/admin/v1";

std::string_view CodeFor(int status) {
  switch (status) {
    case 400: return "invalid_request";
    case 401: return "unauthorized";
    case 403: return "forbidden";
    case 404: return "not_found";
    case 405: return "method_not_allowed";
    case 409: return "conflict";
    case 413: return "payload_too_large";
    case 503: return "store_unavailable";
    default: return status >= 500 ? "internal_error" : "error";
  }
}

int HttpStatusFor(const Status& s) {
  switch (s.code()) {
    case StatusCode::kOk: return 200;
    case StatusCode::kInvalidArgument: return 400;
    case StatusCode::kNotFound: return 404;
    case StatusCode::kAlreadyExists:
    case StatusCode::kFailedPrecondition: return 409;
    case StatusCode::kPermissionDenied: return 403;
    case StatusCode::kUnavailable:
    case StatusCode::kAborted: return 503;
    case StatusCode::kInternal: return 500;
  }
  return 500;
}

json::object ErrorObject(int status, std::string_view message) {
  return json::object{{"status", status}, {"code", CodeFor(status)}, {"message", message}};
}

Response Json(int status, const json::value& v) {
  return Response{status, {{"content-type", "application/json"}}, json::serialize(v)};
}

Response Error(int status, std::string_view message) {
  return Response{status, {{"content-type", "application/json"}}, ErrorJson(status, message)};
}

Response Error(const Status& s) { return Error(HttpStatusFor(s), s.message()); }

// Decodes %XX and '+' (a malformed escape stays as it is).
std::string PercentDecode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size()) {
      auto bytes = HexDecode(s.substr(i + 1, 2));
      if (bytes) {
        out += *bytes;
        i += 2;
      } else {
        out += s[i];
      }
    } else {
      out += s[i];
    }
  }
  return out;
}

std::map<std::string, std::string> ParseQuery(std::string_view target) {
  std::map<std::string, std::string> out;
  size_t q = target.find('?');
  if (q == std::string_view::npos) return out;
  for (std::string_view part : Split(target.substr(q + 1), '&')) {
    if (part.empty()) continue;
    size_t eq = part.find('=');
    std::string name = PercentDecode(part.substr(0, eq));
    std::string value = eq == std::string_view::npos ? "" : PercentDecode(part.substr(eq + 1));
    out.emplace(std::move(name), std::move(value));
  }
  return out;
}

// A request being handled: its parsed parts and who made it.
struct Call {
  const http::Request& req;
  std::vector<std::string> segments;  // path after /admin/v1, split on '/'
  std::map<std::string, std::string> query;
  json::object body;
  std::string admin;  // the admin key's name
};

StatusOr<int64_t> IdParam(std::string_view s, std::string_view what) {
  auto id = ParseInt64(s);
  if (!id || *id <= 0) {
    return InvalidArgumentError(std::string(what) + " must be a whole number > 0, not '" +
                                std::string(s.substr(0, 40)) + "'");
  }
  return *id;
}

// Typed body fields with clear messages.
StatusOr<std::string> StringField(const json::object& o, const char* name, bool required,
                                  std::string fallback = "") {
  const json::value* v = o.if_contains(name);
  if (v == nullptr || v->is_null()) {
    if (required) return InvalidArgumentError(std::string("field '") + name + "' is required");
    return fallback;
  }
  if (!v->is_string()) return InvalidArgumentError(std::string("field '") + name + "' must be a string");
  return std::string(v->as_string());
}

StatusOr<std::optional<int64_t>> IntField(const json::object& o, const char* name) {
  const json::value* v = o.if_contains(name);
  if (v == nullptr || v->is_null()) return std::optional<int64_t>();
  if (v->is_int64()) return std::optional<int64_t>(v->as_int64());
  if (v->is_uint64() && v->as_uint64() <= INT64_MAX) {
    return std::optional<int64_t>(static_cast<int64_t>(v->as_uint64()));
  }
  return InvalidArgumentError(std::string("field '") + name + "' must be a whole number");
}

StatusOr<bool> BoolField(const json::object& o, const char* name, bool fallback) {
  const json::value* v = o.if_contains(name);
  if (v == nullptr || v->is_null()) return fallback;
  if (!v->is_bool()) return InvalidArgumentError(std::string("field '") + name + "' must be true or false");
  return v->as_bool();
}

StatusOr<ops::HistoryQuery> HistoryParams(const std::map<std::string, std::string>& q) {
  ops::HistoryQuery h;
  if (auto it = q.find("pool"); it != q.end()) h.pool = it->second;
  if (auto it = q.find("key_id"); it != q.end()) {
    KG_ASSIGN_OR_RETURN(int64_t id, IdParam(it->second, "key_id"));
    h.key_id = id;
  }
  if (auto it = q.find("before_id"); it != q.end()) {
    KG_ASSIGN_OR_RETURN(int64_t id, IdParam(it->second, "before_id"));
    h.before_id = id;
  }
  if (auto it = q.find("limit"); it != q.end()) {
    auto n = ParseInt64(it->second);
    if (!n || *n <= 0 || *n > 1000) {
      return InvalidArgumentError("limit must be a whole number from 1 to 1000");
    }
    h.limit = *n;
  }
  return h;
}

// ---- client-key settings from a JSON body, as the operator would type them (ops::ClientSettings):
// one parser, one set of rules (USD strings to integer micro-USD) for the CLI and the API.
// A field that is absent is "not given"; null clears the setting.

// An amount: "<name>_usd" as a decimal string (a JSON number is refused: binary floats are not
// exact), or "<name>_micros" as a whole number. Returns "" when neither is given.
StatusOr<std::string> UsdFields(const json::object& o, const std::string& name,
                                const char* null_means) {
  const json::value* usd = o.if_contains(name + "_usd");
  const json::value* micros = o.if_contains(name + "_micros");
  if (usd != nullptr && micros != nullptr) {
    return InvalidArgumentError("give '" + name + "_usd' or '" + name + "_micros', not both");
  }
  if (usd != nullptr) {
    if (usd->is_null() && null_means != nullptr) return std::string(null_means);
    if (!usd->is_string()) {
      return InvalidArgumentError("field '" + name +
                                  "_usd' must be a string of dollars like \"12.50\" (or use '" +
                                  name + "_micros')");
    }
    if (usd->as_string().empty())
      return InvalidArgumentError("field '" + name + "_usd' must not be empty");
    return std::string(usd->as_string());
  }
  if (micros != nullptr) {
    if (micros->is_null() && null_means != nullptr) return std::string(null_means);
    auto n = IntField(o, (name + "_micros").c_str());
    if (!n.ok()) return n.status();
    if (!*n) return InvalidArgumentError("field '" + name + "_micros' must be a whole number");
    return FormatMicrosAsUsd(**n);  // exact: six decimals round-trip to the same micros
  }
  return std::string();
}

// A limit: a whole number, or null for none.
StatusOr<std::string> LimitField(const json::object& o, const char* name) {
  const json::value* v = o.if_contains(name);
  if (v == nullptr) return std::string();
  if (v->is_null()) return std::string("none");
  auto n = IntField(o, name);
  if (!n.ok()) return n.status();
  return std::to_string(**n);
}

// Fills the limit fields of `s` (models, rpm, tpm, concurrency, expires_at, caps).
Status LimitSettings(const json::object& o, ops::ClientSettings& s) {
  if (const json::value* v = o.if_contains("models")) {
    if (v->is_null()) {
      s.models = "*";
    } else if (!v->is_array()) {
      return InvalidArgumentError(
          "field 'models' must be an array of model ids (empty or null: every model)");
    } else {
      std::string list;
      for (const json::value& m : v->as_array()) {
        if (!m.is_string() || m.as_string().empty() ||
            m.as_string().subview().find(',') != std::string_view::npos) {
          return InvalidArgumentError("field 'models' must hold model ids (strings)");
        }
        list += (list.empty() ? "" : ",") + std::string(m.as_string());
      }
      s.models = list.empty() ? "*" : list;
    }
  }
  KG_ASSIGN_OR_RETURN(s.rpm, LimitField(o, "rpm"));
  KG_ASSIGN_OR_RETURN(s.tpm, LimitField(o, "tpm"));
  KG_ASSIGN_OR_RETURN(s.concurrency, LimitField(o, "concurrency"));
  if (const json::value* v = o.if_contains("expires_at")) {
    if (v->is_null()) {
      s.expires = "never";
    } else if (!v->is_string() || v->as_string().empty()) {
      return InvalidArgumentError("field 'expires_at' must be a UTC date or time, or null (never)");
    } else {
      s.expires = v->as_string();
    }
  }
  if (const json::value* v = o.if_contains("caps")) {
    if (!v->is_array())
      return InvalidArgumentError("field 'caps' must be an array of {\"model\", \"cap_usd\"}");
    for (const json::value& c : v->as_array()) {
      if (!c.is_object())
        return InvalidArgumentError("each cap must be an object {\"model\", \"cap_usd\"}");
      auto model = StringField(c.as_object(), "model", true);
      if (!model.ok()) return model.status();
      if (model->empty() || model->find('=') != std::string::npos) {
        return InvalidArgumentError("a cap's 'model' must be a model id or \"*\"");
      }
      KG_ASSIGN_OR_RETURN(std::string amount, UsdFields(c.as_object(), "cap", "none"));
      if (amount.empty()) {
        return InvalidArgumentError("the cap of " + *model +
                                    " needs 'cap_usd' or 'cap_micros' (null removes it)");
      }
      s.caps.push_back(*model + "=" + amount);
    }
  }
  return OkStatus();
}

// The fields a body may hold, so a misspelt one is an error rather than silently ignored.
Status OnlyFields(const json::object& o, std::initializer_list<std::string_view> allowed) {
  for (const auto& [name, value] : o) {
    if (std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
      return InvalidArgumentError("unknown field '" + std::string(name.substr(0, 40)) + "'");
    }
  }
  return OkStatus();
}

// The outcome of one routed handler, with what the audit log records for writes.
struct Outcome {
  Response response;
  std::string action;  // "" for reads (not audited)
  std::string target;
};

Outcome Read(StatusOr<json::object> doc) {
  if (!doc.ok()) return {Error(doc.status())};
  return {Json(200, *doc)};
}

}  // namespace

bool IsAdminPath(std::string_view path) {
  return path.substr(0, kPrefix.size()) == kPrefix || path == "/admin";
}

std::string ErrorJson(int status, std::string_view message) {
  return json::serialize(json::object{{"error", ErrorObject(status, message)}});
}

AdminApi::AdminApi(Deps deps, Options options) : d_(std::move(deps)), options_(std::move(options)) {}

namespace {

class Router {
 public:
  Router(const Deps& d, Call& c) : d_(d), c_(c), s_(c.segments) {}

  Outcome Route() {
    const std::string& m = c_.req.method;
    if (s_.empty()) return {Error(404, "unknown admin route " + c_.req.path)};
    const std::string& top = s_[0];
    if (top == "whoami" && s_.size() == 1 && m == "GET") {
      return {Json(200, json::object{{"admin", c_.admin}})};
    }
    if (top == "pools") return Pools(m);
    if (top == "keys") return Keys(m);
    if (top == "proxies") return Proxies(m);
    if (top == "bindings") return Bindings(m);
    if (top == "rotations" && s_.size() == 1 && m == "GET") return History(ops::RotationHistory);
    if (top == "spend" && s_.size() == 1 && m == "GET") return History(ops::SpendHistory);
    if (top == "usage" && s_.size() == 1 && m == "GET") return History(ops::UsageHistory);
    if (top == "usage" && s_.size() == 2 && s_[1] == "report" && m == "GET") return UsageReport();
    if (top == "spend" && s_.size() == 2 && s_[1] == "stats" && m == "GET") return SpendStats();
    if (top == "traffic" && s_.size() == 1 && m == "GET") return Traffic();
    if (top == "client-keys") return ClientKeys(m);
    if (top == "audit" && s_.size() == 1 && m == "GET") return History(ops::AuditHistory);
    if (top == "reload" && s_.size() == 1 && m == "POST") return Reload();
    return Unknown();
  }

 private:
  Outcome Unknown() {
    return {Error(404, "unknown admin route " + c_.req.method + " " + c_.req.path)};
  }

  template <typename Fn>
  Outcome History(Fn fn) {
    auto q = HistoryParams(c_.query);
    if (!q.ok()) return {Error(q.status())};
    return Read(fn(*d_.store, *q));
  }

  // ---- pools
  Outcome Pools(const std::string& m) {
    if (s_.size() == 1 && m == "GET") {
      auto pools = ops::ListPools(*d_.store);
      if (!pools.ok()) return {Error(pools.status())};
      json::array arr;
      for (const auto& p : *pools) arr.push_back(ops::PoolJson(p));
      return {Json(200, json::object{{"pools", std::move(arr)}})};
    }
    if (s_.size() == 1 && m == "POST") {
      Outcome o{.action = "pools.create"};
      auto name = StringField(c_.body, "name", true);
      auto provider = StringField(c_.body, "provider", true);
      if (!name.ok()) return Fail(o, name.status());
      if (!provider.ok()) return Fail(o, provider.status());
      o.target = "pool " + *name;
      std::string settings = "{}";
      if (const json::value* v = c_.body.if_contains("settings"); v && !v->is_null()) {
        if (!v->is_object()) return Fail(o, InvalidArgumentError("field 'settings' must be an object"));
        settings = json::serialize(*v);
      }
      auto pool = ops::CreatePool(*d_.store, *name, *provider, settings);
      if (!pool.ok()) return Fail(o, pool.status());
      o.response = Json(201, ops::PoolJson({*pool, store::StateCounts{}}));
      return o;
    }
    if (s_.size() == 2 && m == "GET") {
      auto status = ops::PoolStatus(*d_.store, s_[1]);
      if (!status.ok()) return {Error(status.status())};
      json::object doc = ops::PoolJson(*status);
      // Keys by budget band, as /spend/stats?pool= has them.
      if (d_.config) {
        auto spend = ops::SpendStats(*d_.store, *d_.config, s_[1]);
        if (!spend.ok()) return {Error(spend.status())};
        const json::array& pools = spend->at("pools").as_array();
        if (!pools.empty()) doc["bands"] = pools[0].at("bands");
      }
      return {Json(200, doc)};
    }
    if (s_.size() == 3 && s_[2] == "keys" && m == "POST") return Import(s_[1]);
    return Unknown();
  }

  Outcome Import(const std::string& pool) {
    Outcome o{.action = "keys.import", .target = "pool " + pool};
    auto state = StringField(c_.body, "state", false, "active");
    if (!state.ok()) return Fail(o, state.status());
    if (*state != "active" && *state != "backup") {
      return Fail(o, InvalidArgumentError("field 'state' must be active or backup"));
    }
    auto skip = BoolField(c_.body, "skip_duplicates", false);
    if (!skip.ok()) return Fail(o, skip.status());
    // Either "keys": ["sk-…", …] (one key each) or "text": a key file (plain list or CSV).
    std::string text;
    const json::value* keys = c_.body.if_contains("keys");
    const json::value* file = c_.body.if_contains("text");
    if ((keys == nullptr) == (file == nullptr)) {
      return Fail(o, InvalidArgumentError("give either 'keys' (an array of keys) or 'text' (a key "
                                          "file: one key per line, or CSV)"));
    }
    if (keys != nullptr) {
      if (!keys->is_array()) return Fail(o, InvalidArgumentError("field 'keys' must be an array of strings"));
      size_t i = 0;
      for (const json::value& k : keys->as_array()) {
        ++i;
        if (!k.is_string()) {
          return Fail(o, InvalidArgumentError("keys[" + std::to_string(i - 1) + "] must be a string"));
        }
        std::string_view s = k.as_string();
        // One key per entry: a line break would smuggle a second key (or a CSV header) in.
        if (s.find_first_of("\r\n") != std::string_view::npos) {
          return Fail(o, InvalidArgumentError("keys[" + std::to_string(i - 1) +
                                              "] must be one key (no line breaks)"));
        }
        text.append(s).push_back('\n');
      }
    } else {
      if (!file->is_string()) return Fail(o, InvalidArgumentError("field 'text' must be a string"));
      text = file->as_string();
    }
    auto report = ops::ImportKeys(*d_.store, *d_.secrets,
                                  {.pool = pool,
                                   .text = std::move(text),
                                   .source = keys != nullptr ? "keys" : "text",
                                   .backup = *state == "backup",
                                   .skip_duplicates = *skip});
    if (!report.ok()) return Fail(o, report.status());
    if (!report->imported) {
      json::object err = ErrorObject(
          409, std::to_string(report->duplicates.size()) + " of " +
                   std::to_string(report->entries) +
                   " keys are duplicates; nothing was imported (set skip_duplicates to import the "
                   "others)");
      err["duplicates"] = report->Json().at("duplicates");
      o.response = Json(409, json::object{{"error", std::move(err)}});
      return o;
    }
    o.response = Json(report->inserted > 0 ? 201 : 200, report->Json());
    return o;
  }

  // ---- keys
  Outcome Keys(const std::string& m) {
    if (s_.size() == 1 && m == "GET") {
      auto pool = c_.query.count("pool") ? c_.query.at("pool") : "";
      auto state = c_.query.count("state") ? c_.query.at("state") : "";
      auto listing = ops::ListKeys(*d_.store, pool, state);
      if (!listing.ok()) return {Error(listing.status())};
      json::array arr;
      for (const auto& row : listing->rows) arr.push_back(ops::KeyJson(row));
      return {Json(200, json::object{{"keys", std::move(arr)},
                                     {"counts", ops::CountsJson(listing->counts)}})};
    }
    if (s_.size() < 2) return Unknown();
    auto id = IdParam(s_[1], "key id");
    if (!id.ok()) return {Error(id.status())};
    const std::string target = "key " + std::to_string(*id);
    if (s_.size() == 2 && m == "GET") {
      auto row = ops::GetKey(*d_.store, *id);
      if (!row.ok()) return {Error(row.status())};
      return {Json(200, ops::KeyJson(*row))};
    }
    if (s_.size() == 2 && m == "DELETE") {
      Outcome o{.action = "keys.delete", .target = target};
      auto deleted = d_.store->DeleteKey(*id);
      if (!deleted.ok()) return Fail(o, deleted.status());
      if (!*deleted) return Fail(o, NotFoundError(target + " does not exist"));
      o.response = Json(200, json::object{{"key_id", *id}, {"deleted", true}});
      return o;
    }
    if (s_.size() != 3 || m != "POST") return Unknown();
    const std::string& verb = s_[2];
    Outcome o{.action = "keys." + verb, .target = target};
    auto reason = StringField(c_.body, "reason", false, "admin");
    if (!reason.ok()) return Fail(o, reason.status());
    if (verb == "cooldown") {
      auto seconds = IntField(c_.body, "seconds");
      if (!seconds.ok()) return Fail(o, seconds.status());
      if (!*seconds) return Fail(o, InvalidArgumentError("field 'seconds' is required"));
      return Changed(o, ops::CoolDownKey(*d_.store, *d_.clock, *id, **seconds, *reason));
    }
    if (verb == "exhaust") return Changed(o, ops::ExhaustKey(*d_.store, *id, *reason));
    if (verb == "restore") {
      auto as = StringField(c_.body, "as", false, "active");
      if (!as.ok()) return Fail(o, as.status());
      return Changed(o, ops::RestoreKey(*d_.store, *id, *as));
    }
    if (verb == "rotate") {
      auto key = d_.store->GetKey(*id, false);
      if (!key.ok()) return Fail(o, key.status());
      auto pools = d_.store->ListPools();
      if (!pools.ok()) return Fail(o, pools.status());
      std::string pool;
      for (const auto& p : *pools) {
        if (p.id == key->pool_id) pool = p.name;
      }
      auto report = ops::RotateKey(*d_.store, pool, *id, *reason, "admin:" + c_.admin);
      if (!report.ok()) return Fail(o, report.status());
      if (std::holds_alternative<store::AlreadyRotated>(report->outcome)) {
        return Fail(o, FailedPreconditionError(report->message));
      }
      o.response = Json(200, report->json);
      return o;
    }
    return Unknown();
  }

  Outcome Changed(Outcome o, const StatusOr<ops::KeyChange>& change) {
    if (!change.ok()) return Fail(o, change.status());
    if (!change->applied) return Fail(o, FailedPreconditionError(change->message));
    o.response = Json(200, change->json);
    return o;
  }

  // ---- proxies and bindings
  Outcome Proxies(const std::string& m) {
    if (s_.size() == 1 && m == "GET") {
      auto rows = ops::ListProxies(*d_.store);
      if (!rows.ok()) return {Error(rows.status())};
      json::array arr;
      for (const auto& r : *rows) arr.push_back(ops::ProxyJson(r));
      return {Json(200, json::object{{"proxies", std::move(arr)}})};
    }
    if (s_.size() == 1 && m == "POST") {
      Outcome o{.action = "proxies.add"};
      auto url = StringField(c_.body, "url", true);
      if (!url.ok()) return Fail(o, url.status());
      auto parsed = ParseProxyUrl(*url);
      if (!parsed.ok()) return Fail(o, parsed.status());
      o.target = "proxy " + parsed->DisplayUrl();
      bool created = false;
      auto proxy = d_.store->AddProxy(*parsed, &created);
      if (!proxy.ok()) return Fail(o, proxy.status());
      json::object doc = ops::ProxyJson({*proxy, 0});
      doc["created"] = created;
      o.response = Json(created ? 201 : 200, doc);
      return o;
    }
    if (s_.size() == 2 && m == "DELETE") {
      auto id = IdParam(s_[1], "proxy id");
      if (!id.ok()) return {Error(id.status())};
      Outcome o{.action = "proxies.delete", .target = "proxy " + std::to_string(*id)};
      auto deleted = d_.store->DeleteProxy(*id);
      if (!deleted.ok()) return Fail(o, deleted.status());
      if (!*deleted) return Fail(o, NotFoundError(o.target + " does not exist"));
      o.response = Json(200, json::object{{"proxy_id", *id}, {"deleted", true}});
      return o;
    }
    return Unknown();
  }

  Outcome Bindings(const std::string& m) {
    if (s_.size() == 1 && m == "GET") {
      std::optional<int64_t> pool_id;
      if (auto it = c_.query.find("pool"); it != c_.query.end()) {
        auto pool = d_.store->GetPool(it->second);
        if (!pool.ok()) return {Error(pool.status())};
        pool_id = pool->id;
      }
      auto bindings = d_.store->ListBindings(pool_id);
      if (!bindings.ok()) return {Error(bindings.status())};
      json::array arr;
      for (const auto& b : *bindings) {
        arr.push_back(json::object{{"key_id", b.key_id}, {"proxy_id", b.proxy_id},
                                   {"priority", b.priority}});
      }
      return {Json(200, json::object{{"bindings", std::move(arr)}})};
    }
    if (s_.size() == 1 && m == "POST") {
      Outcome o{.action = "bindings.bind"};
      auto key = IntField(c_.body, "key_id");
      auto proxy = IntField(c_.body, "proxy_id");
      auto priority = IntField(c_.body, "priority");
      if (!key.ok()) return Fail(o, key.status());
      if (!proxy.ok()) return Fail(o, proxy.status());
      if (!priority.ok()) return Fail(o, priority.status());
      if (!*key || !*proxy) return Fail(o, InvalidArgumentError("fields 'key_id' and 'proxy_id' are required"));
      o.target = "key " + std::to_string(**key) + " proxy " + std::to_string(**proxy);
      auto created = d_.store->Bind(**key, **proxy, priority->value_or(0));
      if (!created.ok()) return Fail(o, created.status());
      o.response = Json(*created ? 201 : 200,
                        json::object{{"key_id", **key}, {"proxy_id", **proxy},
                                     {"priority", priority->value_or(0)}, {"created", *created}});
      return o;
    }
    if (s_.size() == 3 && m == "DELETE") {
      auto key = IdParam(s_[1], "key id");
      auto proxy = IdParam(s_[2], "proxy id");
      if (!key.ok()) return {Error(key.status())};
      if (!proxy.ok()) return {Error(proxy.status())};
      Outcome o{.action = "bindings.unbind",
                .target = "key " + std::to_string(*key) + " proxy " + std::to_string(*proxy)};
      auto removed = d_.store->Unbind(*key, *proxy);
      if (!removed.ok()) return Fail(o, removed.status());
      if (!*removed) {
        return Fail(o, NotFoundError("key " + std::to_string(*key) + " is not bound to proxy " +
                                     std::to_string(*proxy)));
      }
      o.response = Json(200, json::object{{"key_id", *key}, {"proxy_id", *proxy}, {"removed", true}});
      return o;
    }
    return Unknown();
  }

  // ---- client keys and sub-keys
  Outcome ClientKeys(const std::string& m) {
    if (s_.size() == 1 && m == "GET") return ListClients(std::nullopt);
    if (s_.size() == 1 && m == "POST") return CreateClient(0);
    if (s_.size() < 2) return Unknown();
    auto id = IdParam(s_[1], "client key id");
    if (!id.ok()) return {Error(id.status())};
    // /client-keys/{parent}/sub-keys[/{id}[/…]]
    if (s_.size() >= 3 && s_[2] == "sub-keys") {
      if (s_.size() == 3 && m == "GET") {
        auto parent = d_.store->GetClientKey(*id);
        if (!parent.ok()) return {Error(parent.status())};
        return ListClients(*id);
      }
      if (s_.size() == 3 && m == "POST") return CreateClient(*id);
      if (s_.size() < 4) return Unknown();
      auto sub = IdParam(s_[3], "sub-key id");
      if (!sub.ok()) return {Error(sub.status())};
      auto key = d_.store->GetClientKey(*sub);
      if (!key.ok()) return {Error(key.status())};
      if (key->parent_id != *id) {
        return {Error(NotFoundError("client key " + std::to_string(*sub) +
                                    " is not a sub-key of client key " + std::to_string(*id)))};
      }
      return OneClient(m, *sub, 4);
    }
    return OneClient(m, *id, 2);
  }

  Outcome ListClients(std::optional<int64_t> parent) {
    auto keys = d_.store->ListClientKeys();
    if (!keys.ok()) return {Error(keys.status())};
    json::array arr;
    for (const store::ClientKey& k : *keys) {
      if (parent && k.parent_id != *parent) continue;
      arr.push_back(ops::ClientJson(k));
    }
    return {Json(200, json::object{{parent ? "sub_keys" : "client_keys", std::move(arr)}})};
  }

  // The new key's document with its secret: the one response that ever holds it.
  static Response WithSecret(int status, const ops::NewClientSecret& created) {
    json::object doc = ops::ClientJson(created.key);
    doc["key"] = created.secret;
    return Json(status, doc);
  }

  static std::string ClientTarget(const store::ClientKey& k) {
    return "client key " + std::to_string(k.id) + " (" + k.name + ")";
  }

  Outcome CreateClient(int64_t parent) {
    Outcome o{.action = parent ? "client_keys.create_sub_key" : "client_keys.create",
              .target = parent ? "sub-key of client key " + std::to_string(parent) : "client key"};
    Status fields =
        parent ? OnlyFields(c_.body,
                            {"name", "models", "rpm", "tpm", "concurrency", "expires_at", "caps"})
               : OnlyFields(c_.body, {"name", "credits_usd", "credits_micros", "models", "rpm",
                                      "tpm", "concurrency", "expires_at", "caps"});
    if (!fields.ok()) return Fail(o, fields);
    auto name = StringField(c_.body, "name", true);
    if (!name.ok()) return Fail(o, name.status());
    o.target += " " + *name;
    ops::ClientSettings s;
    s.parent = parent;
    auto credits = UsdFields(c_.body, "credits", "unlimited");
    if (!credits.ok()) return Fail(o, credits.status());
    s.credits = *credits;
    Status limits = LimitSettings(c_.body, s);
    if (!limits.ok()) return Fail(o, limits);
    auto created = ops::CreateClientKey(*d_.store, *d_.secrets, *name, s, "");
    if (!created.ok()) return Fail(o, created.status());
    o.target = ClientTarget(created->key);
    o.response = WithSecret(201, *created);
    return o;
  }

  // /client-keys/{id}… with the verb at segment `at`.
  Outcome OneClient(const std::string& m, int64_t id, size_t at) {
    const std::string target = "client key " + std::to_string(id);
    if (s_.size() == at && m == "GET") {
      auto key = d_.store->GetClientKey(id);
      if (!key.ok()) return {Error(key.status())};
      json::object doc = ops::ClientJson(*key);
      // Its usage all time (the same sums as /usage/report).
      auto usage = ops::UsageReport(*d_.store, {.group = {}, .client_key_id = id});
      if (!usage.ok()) return {Error(usage.status())};
      doc["usage"] = usage->at("total");
      return {Json(200, doc)};
    }
    if (s_.size() == at && m == "DELETE") {
      Outcome o{.action = "client_keys.delete", .target = target};
      Status st = ops::DeleteClientKey(*d_.store, id);
      if (!st.ok()) return Fail(o, st);
      o.response = Json(200, json::object{{"client_key_id", id}, {"deleted", true}});
      return o;
    }
    if (s_.size() != at + 1 || m != "POST") return Unknown();
    const std::string& verb = s_[at];
    Outcome o{.action = "client_keys." + verb, .target = target};
    ops::ClientSettings s;
    if (verb == "credits") {
      Status fields = OnlyFields(c_.body, {"add_usd", "add_micros", "set_usd", "set_micros"});
      if (!fields.ok()) return Fail(o, fields);
      auto add = UsdFields(c_.body, "add", nullptr);
      auto set = UsdFields(c_.body, "set", "unlimited");
      if (!add.ok()) return Fail(o, add.status());
      if (!set.ok()) return Fail(o, set.status());
      if (add->empty() == set->empty()) {
        return Fail(o, InvalidArgumentError("give one of 'add_usd' / 'add_micros' (a top-up; "
                                            "negative takes back) or 'set_usd' / 'set_micros' "
                                            "(the new balance; null: unlimited)"));
      }
      s.add_credits = *add;
      s.credits = *set;
    } else if (verb == "limits") {
      Status fields =
          OnlyFields(c_.body, {"models", "rpm", "tpm", "concurrency", "expires_at", "caps"});
      if (!fields.ok()) return Fail(o, fields);
      Status limits = LimitSettings(c_.body, s);
      if (!limits.ok()) return Fail(o, limits);
    } else if (verb == "enable" || verb == "disable") {
      auto key = d_.store->UpdateClientKey(id, {.enabled = verb == "enable"});
      if (!key.ok()) return Fail(o, key.status());
      o.target = ClientTarget(*key);
      o.response = Json(200, ops::ClientJson(*key));
      return o;
    } else if (verb == "roll") {
      auto rolled = ops::RollClientKey(*d_.store, *d_.secrets, id);
      if (!rolled.ok()) return Fail(o, rolled.status());
      o.target = ClientTarget(rolled->key);
      o.response = WithSecret(200, *rolled);
      return o;
    } else {
      return Unknown();
    }
    auto key = ops::UpdateClientKey(*d_.store, id, s, "");
    if (!key.ok()) return Fail(o, key.status());
    o.target = ClientTarget(*key);
    o.response = Json(200, ops::ClientJson(*key));
    return o;
  }

  // ---- reports
  Outcome UsageReport() {
    ops::UsageReportQuery q;
    if (auto it = c_.query.find("group"); it != c_.query.end()) {
      auto group = ops::ParseUsageGroup(it->second);
      if (!group.ok()) return {Error(group.status())};
      q.group = std::move(group).value();
    }
    if (auto it = c_.query.find("client_key_id"); it != c_.query.end()) {
      auto id = IdParam(it->second, "client_key_id");
      if (!id.ok()) return {Error(id.status())};
      q.client_key_id = *id;
    }
    if (auto it = c_.query.find("model"); it != c_.query.end() && !it->second.empty()) {
      q.model = it->second;
    }
    if (auto it = c_.query.find("from"); it != c_.query.end() && !it->second.empty()) {
      auto t = ParseTimeMs(it->second);
      if (!t)
        return {Error(400, "from must be a UTC date or time like 2026-11-01, not '" +
                               it->second.substr(0, 40) + "'")};
      q.from_ms = *t;
    }
    if (auto it = c_.query.find("to"); it != c_.query.end() && !it->second.empty()) {
      auto t = ops::ParseUsageUntil(it->second);
      if (!t)
        return {Error(400, "to must be a UTC date or time like 2026-11-30, not '" +
                               it->second.substr(0, 40) + "'")};
      q.to_ms = *t;
    }
    return Read(ops::UsageReport(*d_.store, q));
  }

  Outcome SpendStats() {
    if (!d_.config) return {Error(FailedPreconditionError("this server has no config"))};
    const std::string pool = c_.query.count("pool") ? c_.query.at("pool") : "";
    return Read(ops::SpendStats(*d_.store, *d_.config, pool));
  }

  Outcome Traffic() {
    auto param = [&](const char* name) {
      auto it = c_.query.find(name);
      return it == c_.query.end() ? std::string() : it->second;
    };
    ops::TrafficParams p{.since = param("since"),
                         .from = param("from"),
                         .to = param("to"),
                         .bucket = param("bucket"),
                         .pool = param("pool"),
                         .client_key_id = param("client_key_id"),
                         .upstream_key_id = param("upstream_key_id"),
                         .model = param("model")};
    auto q = ops::ParseTrafficParams(p, d_.clock->NowMs(), "");
    if (!q.ok()) return {Error(q.status())};
    return Read(ops::TrafficReport(*d_.store, *q));
  }

  Outcome Reload() {
    Outcome o{.action = "config.reload", .target = "config"};
    if (!d_.reload) return Fail(o, FailedPreconditionError("this server cannot reload its config"));
    Status st = d_.reload();
    if (!st.ok()) return Fail(o, st);
    o.response = Json(200, json::object{{"reloaded", true}});
    return o;
  }

  static Outcome Fail(Outcome o, const Status& st) {
    o.response = Error(st);
    return o;
  }

  const Deps& d_;
  Call& c_;
  const std::vector<std::string>& s_;
};

// The admin key's name for the bearer token, or nullopt. Every stored hash is compared (in
// constant time), whether or not an earlier one matched.
StatusOr<std::optional<std::string>> Authenticate(store::Store& store, const SecretBox& secrets,
                                                  std::string_view token) {
  KG_ASSIGN_OR_RETURN(std::vector<store::AdminKey> keys, store.ListAdminKeys());
  const std::string hash = secrets.HashAdminKey(token);
  std::optional<std::string> who;
  for (const store::AdminKey& k : keys) {
    bool same = k.key_hash.size() == hash.size() &&
                sodium_memcmp(k.key_hash.data(), hash.data(), hash.size()) == 0;
    if (same && !who) who = k.name;
  }
  return who;
}

std::string_view BearerToken(std::string_view authorization) {
  authorization = Trim(authorization);
  if (authorization.size() < 7 || ToLower(authorization.substr(0, 7)) != "bearer ") return {};
  return Trim(authorization.substr(7));
}

}  // namespace

Response AdminApi::Handle(const http::Request& req) const {
  // CORS: only configured origins, echoed exactly (never `*`).
  std::string_view origin = req.Header("origin");
  bool allowed_origin = !origin.empty() && std::find(options_.cors_origins.begin(),
                                                     options_.cors_origins.end(),
                                                     origin) != options_.cors_origins.end();
  auto with_cors = [&](Response r) {
    if (allowed_origin) {
      r.headers.emplace_back("access-control-allow-origin", std::string(origin));
      r.headers.emplace_back("vary", "Origin");
    }
    r.headers.emplace_back("cache-control", "no-store");
    return r;
  };
  if (req.method == "OPTIONS") {
    if (!allowed_origin) return with_cors(Error(403, "this origin is not allowed (admin.cors_origins)"));
    Response r{204, {}, ""};
    r.headers = {{"access-control-allow-methods", "GET, POST, DELETE, OPTIONS"},
                 {"access-control-allow-headers", "authorization, content-type"},
                 {"access-control-max-age", "600"}};
    return with_cors(std::move(r));
  }

  std::string_view token = BearerToken(req.Header("authorization"));
  if (token.empty()) {
    return with_cors(Error(401, "an admin key is required: Authorization: Bearer <admin key>"));
  }
  auto who = Authenticate(*d_.store, *d_.secrets, token);
  if (!who.ok()) return with_cors(Error(who.status()));
  if (!*who) {
    Log(LogLevel::kWarn, "admin: rejected key " + MaskSecret(token) + " from " + req.remote);
    return with_cors(Error(401, "invalid admin key " + MaskSecret(token)));
  }

  std::string_view path = req.path;
  if (path.substr(0, kApi.size()) != kApi ||
      (path.size() > kApi.size() && path[kApi.size()] != '/')) {
    return with_cors(Error(404, "unknown admin route " + req.path + " (the API is under /admin/v1)"));
  }
  Call call{.req = req, .admin = **who};
  for (std::string_view seg : Split(path.substr(kApi.size()), '/')) {
    if (!seg.empty()) call.segments.push_back(PercentDecode(seg));
  }
  call.query = ParseQuery(req.target);
  if (req.method == "POST") {
    if (!Trim(req.body).empty()) {
      boost::system::error_code ec;
      json::value v = json::parse(req.body, ec);
      if (ec) return with_cors(Error(400, "the body is not valid JSON: " + ec.message()));
      if (!v.is_object()) return with_cors(Error(400, "the body must be a JSON object"));
      call.body = std::move(v.as_object());
    }
  } else if (req.method != "GET" && req.method != "DELETE") {
    return with_cors(Error(405, "method " + req.method + " is not allowed on the admin API"));
  }

  Outcome out;
  try {
    out = Router(d_, call).Route();
  } catch (const std::exception& e) {  // Boost.JSON at() and the like: never unwind further
    out.response = Error(500, std::string("internal error: ") + e.what());
  }
  if (!out.action.empty()) {
    store::AuditRecord a;
    a.admin = call.admin;
    a.action = out.action;
    a.target = out.target;
    a.result = out.response.status < 400 ? "ok" : std::to_string(out.response.status);
    if (out.response.status >= 400) {
      boost::system::error_code ec;
      json::value doc = json::parse(out.response.body, ec);
      if (!ec && doc.is_object() && doc.as_object().contains("error")) {
        a.result += ": " + std::string(doc.at("error").at("message").as_string());
      }
    }
    auto written = d_.store->AddAuditRecord(a);
    if (!written.ok()) {
      Log(LogLevel::kWarn, "admin: audit record not written: " + written.status().ToString());
    }
    Log(LogLevel::kInfo, "admin: " + a.admin + " " + a.action + " " + a.target + ": " + a.result);
    if (out.response.status < 400 && d_.changed) d_.changed();
  }
  return with_cors(std::move(out.response));
}

asio::awaitable<void> Serve(const AdminApi& api, TaskPool& pool, const http::Request& request,
                            http::ResponseWriter& writer) {
  auto ex = co_await asio::this_coro::executor;
  // Keeps the worker's loop running while the store thread works.
  auto tracked = asio::prefer(ex, asio::execution::outstanding_work.tracked);
  auto handler_fn = [&api, &pool, request, tracked](auto handler) mutable {
    auto h = std::make_shared<decltype(handler)>(std::move(handler));
    bool posted = pool.Post([&api, request = std::move(request), tracked, h]() {
      Response r = api.Handle(request);
      asio::post(tracked, [h, r = std::move(r)]() mutable { (*h)(std::move(r)); });
    });
    if (!posted) {
      asio::post(tracked, [h]() mutable { (*h)(Error(503, "the server is shutting down")); });
    }
  };
  Response r = co_await asio::async_initiate<const asio::use_awaitable_t<>&, void(Response)>(
      std::move(handler_fn), asio::use_awaitable);
  co_await writer.Send(r.status, r.headers, r.body);
}

}  // namespace keygate::admin
