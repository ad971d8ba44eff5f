#include "config/config.h"

#include <fstream>
#include <set>
#include <sstream>
#include <toml++/toml.h>

#include "common/strings.h"

namespace keygate::config {

namespace {

std::string Where(const toml::node& node) {
  const auto& src = node.source();
  if (src.begin.line == 0) return "";
  return " (line " + std::to_string(src.begin.line) + ")";
}

// Reads one table with a fixed set of keys; every accessor records the key as known, and Finish()
// reports the first unknown key, so typos are errors rather than silently ignored settings.
class TableReader {
 public:
  TableReader(const toml::table& table, std::string path) : table_(table), path_(std::move(path)) {}

  Status Int(const char* key, int64_t& out, int64_t min, int64_t max) {
    known_.insert(key);
    const toml::node* n = table_.get(key);
    if (n == nullptr) return OkStatus();
    auto v = n->value<int64_t>();
    if (!v || *v < min || *v > max) {
      return Error(key, *n, "must be an integer from " + std::to_string(min) + " to " +
                                std::to_string(max));
    }
    out = *v;
    return OkStatus();
  }
  Status Int(const char* key, int& out, int64_t min, int64_t max) {
    int64_t v = out;
    KG_RETURN_IF_ERROR(Int(key, v, min, max));
    out = static_cast<int>(v);
    return OkStatus();
  }
  Status Double(const char* key, double& out, double min) {
    known_.insert(key);
    const toml::node* n = table_.get(key);
    if (n == nullptr) return OkStatus();
    auto v = n->value<double>();  // integers convert too
    if (!v || *v < min) return Error(key, *n, "must be a number >= " + std::to_string(min));
    out = *v;
    return OkStatus();
  }
  Status Bool(const char* key, bool& out) {
    known_.insert(key);
    const toml::node* n = table_.get(key);
    if (n == nullptr) return OkStatus();
    auto v = n->value<bool>();
    if (!v) return Error(key, *n, "must be true or false");
    out = *v;
    return OkStatus();
  }
  Status String(const char* key, std::string& out, bool required = false) {
    known_.insert(key);
    const toml::node* n = table_.get(key);
    if (n == nullptr) {
      return required ? InvalidArgumentError(Qualified(key) + " is required") : OkStatus();
    }
    auto v = n->value<std::string>();
    if (!v) return Error(key, *n, "must be a string");
    out = *v;
    return OkStatus();
  }
  Status StringList(const char* key, std::vector<std::string>& out) {
    known_.insert(key);
    const toml::node* n = table_.get(key);
    if (n == nullptr) return OkStatus();
    const toml::array* arr = n->as_array();
    if (arr == nullptr) return Error(key, *n, "must be an array of strings");
    out.clear();
    for (const toml::node& item : *arr) {
      auto v = item.value<std::string>();
      if (!v) return Error(key, item, "must contain strings only");
      out.push_back(*v);
    }
    return OkStatus();
  }
  const toml::node* Node(const char* key) {
    known_.insert(key);
    return table_.get(key);
  }
  Status Finish() const {
    for (const auto& [k, v] : table_) {
      if (!known_.count(std::string(k.str()))) {
        return InvalidArgumentError("unknown setting " + Qualified(std::string(k.str())) +
                                    Where(v));
      }
    }
    return OkStatus();
  }
  Status Error(const char* key, const toml::node& n, const std::string& what) const {
    return InvalidArgumentError(Qualified(key) + " " + what + Where(n));
  }
  std::string Qualified(const std::string& key) const {
    return path_.empty() ? key : path_ + "." + key;
  }
  const std::string& path() const { return path_; }

 private:
  const toml::table& table_;
  std::string path_;
  std::set<std::string> known_;
};

constexpr int64_t kMaxMs = 24LL * 3600 * 1000;

Status ReadServer(const toml::table& t, ServerConfig& s) {
  TableReader r(t, "server");
  KG_RETURN_IF_ERROR(r.String("listen", s.listen));
  KG_RETURN_IF_ERROR(r.Int("workers", s.workers, 0, 256));
  KG_RETURN_IF_ERROR(r.Int("max_body_bytes", s.max_body_bytes, 1024, 1LL << 30));
  KG_RETURN_IF_ERROR(r.Int("max_header_bytes", s.max_header_bytes, 1024, 1 << 20));
  KG_RETURN_IF_ERROR(r.Int("header_timeout_ms", s.header_timeout_ms, 100, kMaxMs));
  KG_RETURN_IF_ERROR(r.Int("drain_timeout_ms", s.drain_timeout_ms, 0, kMaxMs));
  KG_RETURN_IF_ERROR(r.Int("max_stream_buffer_bytes", s.max_stream_buffer_bytes, 4096, 1LL << 30));
  KG_RETURN_IF_ERROR(r.Int("busy_poll_us", s.busy_poll_us, 0, 100'000));
  return r.Finish();
}

Status ReadStore(const toml::table& t, StoreConfig& s) {
  TableReader r(t, "store");
  KG_RETURN_IF_ERROR(r.String("url", s.url));
  KG_RETURN_IF_ERROR(r.Int("connections", s.connections, 1, 64));
  KG_RETURN_IF_ERROR(r.Int("pool_refresh_ms", s.pool_refresh_ms, 10, kMaxMs));
  KG_RETURN_IF_ERROR(r.Int("usage_batch_size", s.usage_batch_size, 1, 100'000));
  KG_RETURN_IF_ERROR(r.Int("usage_flush_ms", s.usage_flush_ms, 1, kMaxMs));
  KG_RETURN_IF_ERROR(r.Int("usage_queue_limit", s.usage_queue_limit, 1, 100'000'000));
  KG_RETURN_IF_ERROR(r.Int("reservation_ttl_ms", s.reservation_ttl_ms, 1000, kMaxMs));
  KG_RETURN_IF_ERROR(r.Int("reservation_sweep_ms", s.reservation_sweep_ms, 100, kMaxMs));
  return r.Finish();
}

Status ReadAdmin(const toml::table& t, AdminConfig& a) {
  TableReader r(t, "admin");
  KG_RETURN_IF_ERROR(r.StringList("cors_origins", a.cors_origins));
  for (const std::string& o : a.cors_origins) {
    if (o == "*") {
      return InvalidArgumentError(
          "admin.cors_origins must list exact origins, not \"*\": admin keys are credentials");
    }
    bool scheme = o.rfind("http://", 0) == 0 || o.rfind("https://", 0) == 0;
    size_t host = o.find("://") + 3;
    if (!scheme || o.size() <= host || o.find('/', host) != std::string::npos) {
      return InvalidArgumentError("admin.cors_origins: '" + o +
                                  "' is not an origin (scheme://host[:port], no path)");
    }
  }
  return r.Finish();
}

Status ReadUpstream(const toml::table& t, UpstreamConfig& u) {
  TableReader r(t, "upstream");
  KG_RETURN_IF_ERROR(r.Int("connect_timeout_ms", u.connect_timeout_ms, 1, kMaxMs));
  KG_RETURN_IF_ERROR(r.Int("first_byte_timeout_ms", u.first_byte_timeout_ms, 1, kMaxMs));
  KG_RETURN_IF_ERROR(r.Int("idle_timeout_ms", u.idle_timeout_ms, 1, kMaxMs));
  KG_RETURN_IF_ERROR(r.String("ca_file", u.ca_file));
  KG_RETURN_IF_ERROR(r.Int("max_attempts", u.max_attempts, 1, 20));
  KG_RETURN_IF_ERROR(r.Int("default_cooldown_ms", u.default_cooldown_ms, 1, kMaxMs));
  KG_RETURN_IF_ERROR(r.Int("max_cooldown_ms", u.max_cooldown_ms, 1, kMaxMs));
  KG_RETURN_IF_ERROR(r.Int("eject_after_failures", u.eject_after_failures, 1, 1000));
  KG_RETURN_IF_ERROR(r.Int("eject_base_ms", u.eject_base_ms, 1, kMaxMs));
  KG_RETURN_IF_ERROR(r.Int("proxy_recheck_ms", u.proxy_recheck_ms, 100, kMaxMs));
  return r.Finish();
}

Status ReadSpendChecker(const toml::table& t, SpendCheckerConfig& s) {
  TableReader r(t, "spend_checker");
  KG_RETURN_IF_ERROR(r.Bool("enabled", s.enabled));
  KG_RETURN_IF_ERROR(r.Int("interval_active_ms", s.interval_active_ms, 100, kMaxMs));
  KG_RETURN_IF_ERROR(r.Int("interval_idle_ms", s.interval_idle_ms, 100, kMaxMs));
  KG_RETURN_IF_ERROR(r.Int("idle_after_ms", s.idle_after_ms, 0, kMaxMs));
  KG_RETURN_IF_ERROR(r.Double("jitter", s.jitter, 0));
  if (s.jitter > 0.5) return InvalidArgumentError("spend_checker.jitter must be from 0 to 0.5");
  KG_RETURN_IF_ERROR(r.Int("lease_ttl_ms", s.lease_ttl_ms, 300, kMaxMs));
  KG_RETURN_IF_ERROR(r.Int("max_in_flight", s.max_in_flight, 1, 1024));
  KG_RETURN_IF_ERROR(r.Int("probe_timeout_ms", s.probe_timeout_ms, 100, kMaxMs));
  return r.Finish();
}

Status ReadProvider(const std::string& name, const toml::table& t, ProviderConfig& p) {
  TableReader r(t, "providers." + name);
  p.name = name;
  KG_RETURN_IF_ERROR(r.String("base_url", p.base_url, p.base_url.empty()));
  while (!p.base_url.empty() && p.base_url.back() == '/') p.base_url.pop_back();
  if (!p.base_url.starts_with("http://") && !p.base_url.starts_with("https://")) {
    return InvalidArgumentError(r.path() + ".base_url must start with http:// or https://");
  }
  std::string auth = p.auth == AuthStyle::kBearer ? "bearer" : "x-api-key";
  KG_RETURN_IF_ERROR(r.String("auth", auth));
  if (auth == "bearer") {
    p.auth = AuthStyle::kBearer;
  } else if (auth == "x-api-key") {
    p.auth = AuthStyle::kXApiKey;
  } else {
    return InvalidArgumentError(r.path() + ".auth must be \"bearer\" or \"x-api-key\"");
  }
  std::string format(FormatName(p.format));
  KG_RETURN_IF_ERROR(r.String("format", format));
  auto f = ParseFormat(format);
  if (!f) {
    return InvalidArgumentError(r.path() +
                                ".format must be openai-chat, anthropic-messages or openai-responses");
  }
  p.format = *f;
  KG_RETURN_IF_ERROR(r.String("classifier", p.classifier));
  if (p.classifier.empty()) p.classifier = p.format == Format::kAnthropicMessages ? "anthropic" : "openai";
  if (p.classifier != "openai" && p.classifier != "anthropic" && p.classifier != "litellm") {
    return InvalidArgumentError(r.path() + ".classifier must be openai, anthropic or litellm");
  }
  if (const toml::node* h = r.Node("headers")) {
    const toml::table* ht = h->as_table();
    if (ht == nullptr) return r.Error("headers", *h, "must be a table of strings");
    p.headers.clear();
    for (const auto& [k, v] : *ht) {
      auto s = v.value<std::string>();
      if (!s) return r.Error("headers", v, "values must be strings");
      std::string key(k.str());
      // Header injection guard: no CR/LF anywhere, and keygate owns the auth headers.
      if (key.find_first_of("\r\n:") != std::string::npos ||
          s->find_first_of("\r\n") != std::string::npos) {
        return r.Error("headers", v, "must not contain CR, LF or ':' in names");
      }
      std::string lower = ToLower(key);
      if (lower == "authorization" || lower == "x-api-key" || lower == "host" ||
          lower == "content-length") {
        return r.Error("headers", v, "must not set " + key + " (keygate sets it)");
      }
      p.headers.emplace_back(key, *s);
    }
  }
  return r.Finish();
}

// The spend checker's settings of a pool.
Status ReadPoolSpend(TableReader& r, PoolConfig& p) {
  KG_RETURN_IF_ERROR(r.String("spend_probe", p.spend_probe));
  if (!p.spend_probe.empty() && p.spend_probe != "litellm" && p.spend_probe != "openrouter" &&
      p.spend_probe != "ledger" && p.spend_probe != "http") {
    return InvalidArgumentError(r.path() +
                                ".spend_probe must be litellm, openrouter, ledger or http");
  }
  KG_RETURN_IF_ERROR(r.Double("spend_threshold", p.spend_threshold, 0));
  if (!(p.spend_threshold > 0 && p.spend_threshold <= 1)) {
    return InvalidArgumentError(r.path() + ".spend_threshold must be a fraction in (0, 1]");
  }
  if (const toml::node* b = r.Node("budget")) {
    std::optional<int64_t> micros;
    if (auto s = b->value_exact<std::string>()) {
      micros = ParseUsdToMicros(Trim(*s));
    } else if (auto d = b->value<double>(); d && *d >= 0 && *d < 1e12) {
      micros = ParseUsdToMicros(std::to_string(*d));
    }
    if (!micros || *micros <= 0) {
      return r.Error("budget", *b, "must be a positive amount of USD, e.g. \"10.00\"");
    }
    p.budget_micros = micros;
  }
  for (auto [key, out] : {std::pair{"spend_interval_active_ms", &p.spend_interval_active_ms},
                          std::pair{"spend_interval_idle_ms", &p.spend_interval_idle_ms}}) {
    int64_t v = 0;
    if (r.Node(key) == nullptr) continue;
    KG_RETURN_IF_ERROR(r.Int(key, v, 100, kMaxMs));
    *out = v;
  }
  KG_RETURN_IF_ERROR(r.String("spend_url", p.spend_url));
  KG_RETURN_IF_ERROR(r.String("spend_pointer", p.spend_pointer));
  KG_RETURN_IF_ERROR(r.String("budget_pointer", p.budget_pointer));
  const bool http = p.spend_probe == "http";
  if (!http && (!p.spend_url.empty() || !p.spend_pointer.empty() || !p.budget_pointer.empty())) {
    return InvalidArgumentError(r.path() +
                                ".spend_url, spend_pointer and budget_pointer apply only to "
                                "spend_probe = \"http\"");
  }
  if (http) {
    if (!p.spend_url.starts_with("http://") && !p.spend_url.starts_with("https://") &&
        !p.spend_url.starts_with("{base}")) {
      return InvalidArgumentError(r.path() +
                                  ".spend_url must start with http://, https:// or {base}");
    }
    if (!p.spend_pointer.starts_with("/")) {
      return InvalidArgumentError(r.path() +
                                  ".spend_pointer must be a JSON pointer such as \"/data/spend\"");
    }
    if (!p.budget_pointer.empty() && !p.budget_pointer.starts_with("/")) {
      return InvalidArgumentError(r.path() +
                                  ".budget_pointer must be a JSON pointer such as \"/data/limit\"");
    }
  }
  return OkStatus();
}

Status ReadPool(const std::string& name, const toml::table& t, PoolConfig& p) {
  TableReader r(t, "pools." + name);
  p.name = name;
  KG_RETURN_IF_ERROR(r.String("provider", p.provider, true));
  std::string strategy(StrategyName(p.strategy));
  KG_RETURN_IF_ERROR(r.String("strategy", strategy));
  if (strategy == "round-robin") {
    p.strategy = Strategy::kRoundRobin;
  } else if (strategy == "weighted") {
    p.strategy = Strategy::kWeighted;
  } else if (strategy == "least-in-flight") {
    p.strategy = Strategy::kLeastInFlight;
  } else {
    return InvalidArgumentError(r.path() +
                                ".strategy must be round-robin, weighted or least-in-flight");
  }
  KG_RETURN_IF_ERROR(r.Bool("allow_direct", p.allow_direct));
  KG_RETURN_IF_ERROR(r.StringList("models", p.model_patterns));
  KG_RETURN_IF_ERROR(ReadPoolSpend(r, p));
  return r.Finish();
}

Status ReadModel(size_t index, const toml::table& t, ModelConfig& m) {
  TableReader r(t, "models[" + std::to_string(index) + "]");
  KG_RETURN_IF_ERROR(r.String("id", m.id, true));
  KG_RETURN_IF_ERROR(r.StringList("aliases", m.aliases));
  KG_RETURN_IF_ERROR(r.String("pool", m.pool, true));
  if (const toml::node* u = r.Node("upstream")) {
    if (auto s = u->value<std::string>()) {
      m.upstream.push_back({*s, 1});
    } else if (const toml::array* arr = u->as_array()) {
      for (const toml::node& item : *arr) {
        const toml::table* it = item.as_table();
        if (it == nullptr) return r.Error("upstream", item, "entries must be {id, weight} tables");
        TableReader ur(*it, r.path() + ".upstream");
        UpstreamModel um;
        KG_RETURN_IF_ERROR(ur.String("id", um.id, true));
        KG_RETURN_IF_ERROR(ur.Int("weight", um.weight, 1, 1'000'000));
        KG_RETURN_IF_ERROR(ur.Finish());
        m.upstream.push_back(um);
      }
    } else {
      return r.Error("upstream", *u, "must be a model id or an array of {id, weight}");
    }
  }
  std::string format;
  KG_RETURN_IF_ERROR(r.String("format", format));
  if (!format.empty()) {
    m.format = ParseFormat(format);
    if (!m.format) {
      return InvalidArgumentError(r.path() +
                                  ".format must be openai-chat, anthropic-messages or openai-responses");
    }
  }
  if (const toml::node* p = r.Node("price")) {
    const toml::table* pt = p->as_table();
    if (pt == nullptr) return r.Error("price", *p, "must be a table");
    TableReader pr(*pt, r.path() + ".price");
    KG_RETURN_IF_ERROR(pr.Double("input", m.price.input, 0));
    KG_RETURN_IF_ERROR(pr.Double("output", m.price.output, 0));
    KG_RETURN_IF_ERROR(pr.Double("cache_write", m.price.cache_write, 0));
    KG_RETURN_IF_ERROR(pr.Double("cache_read", m.price.cache_read, 0));
    KG_RETURN_IF_ERROR(pr.Finish());
  }
  KG_RETURN_IF_ERROR(r.Double("multiplier", m.multiplier, 0));
  KG_RETURN_IF_ERROR(r.Int("max_tokens", m.max_tokens, 1, 10'000'000));
  if (const toml::node* t = r.Node("thinking")) {
    const toml::table* tt = t->as_table();
    if (tt == nullptr) return r.Error("thinking", *t, "must be a table");
    TableReader tr(*tt, r.path() + ".thinking");
    KG_RETURN_IF_ERROR(tr.Int("low", m.thinking.low, 1024, 10'000'000));
    KG_RETURN_IF_ERROR(tr.Int("medium", m.thinking.medium, 1024, 10'000'000));
    KG_RETURN_IF_ERROR(tr.Int("high", m.thinking.high, 1024, 10'000'000));
    KG_RETURN_IF_ERROR(tr.Finish());
    if (!(m.thinking.low <= m.thinking.medium && m.thinking.medium <= m.thinking.high)) {
      return InvalidArgumentError(r.path() + ".thinking must have low <= medium <= high");
    }
  }
  return r.Finish();
}

Status Validate(const Config& c) {
  for (const auto& [name, pool] : c.pools) {
    if (c.FindProvider(pool.provider) == nullptr) {
      return InvalidArgumentError("pools." + name + ".provider names unknown provider '" +
                                  pool.provider + "'");
    }
  }
  std::set<std::string> names;
  for (const ModelConfig& m : c.models) {
    if (!names.insert(m.id).second) {
      return InvalidArgumentError("model '" + m.id + "' is defined twice (id or alias)");
    }
    for (const std::string& a : m.aliases) {
      if (!names.insert(a).second) {
        return InvalidArgumentError("model alias '" + a + "' is defined twice (id or alias)");
      }
    }
    if (c.FindPool(m.pool) == nullptr) {
      return InvalidArgumentError("model '" + m.id + "' names pool '" + m.pool +
                                  "', which has no [pools." + m.pool + "] section");
    }
  }
  if (c.store.url.empty()) return InvalidArgumentError("store.url must not be empty");
  return OkStatus();
}

}  // namespace

std::string_view FormatName(Format f) {
  switch (f) {
    case Format::kOpenAIChat: return "openai-chat";
    case Format::kAnthropicMessages: return "anthropic-messages";
    case Format::kOpenAIResponses: return "openai-responses";
  }
  return "openai-chat";
}

std::optional<Format> ParseFormat(std::string_view name) {
  for (Format f : {Format::kOpenAIChat, Format::kAnthropicMessages, Format::kOpenAIResponses}) {
    if (FormatName(f) == name) return f;
  }
  return std::nullopt;
}

std::string_view StrategyName(Strategy s) {
  switch (s) {
    case Strategy::kRoundRobin: return "round-robin";
    case Strategy::kWeighted: return "weighted";
    case Strategy::kLeastInFlight: return "least-in-flight";
  }
  return "round-robin";
}

const ProviderConfig* Config::FindProvider(std::string_view name) const {
  auto it = providers.find(std::string(name));
  return it == providers.end() ? nullptr : &it->second;
}

const PoolConfig* Config::FindPool(std::string_view name) const {
  auto it = pools.find(std::string(name));
  return it == pools.end() ? nullptr : &it->second;
}

Config Defaults() {
  Config c;
  c.source = "defaults";
  ProviderConfig openai;
  openai.name = "openai";
  openai.base_url = "https://api.openai.com";
  openai.auth = AuthStyle::kBearer;
  openai.format = Format::kOpenAIChat;
  openai.classifier = "openai";
  c.providers["openai"] = openai;
  ProviderConfig anthropic;
  anthropic.name = "anthropic";
  anthropic.base_url = "https://api.anthropic.com";
  anthropic.auth = AuthStyle::kXApiKey;
  anthropic.format = Format::kAnthropicMessages;
  anthropic.classifier = "anthropic";
  anthropic.headers.emplace_back("anthropic-version", "2023-06-01");
  c.providers["anthropic"] = anthropic;
  return c;
}

StatusOr<Config> ParseConfig(std::string_view toml_text, std::string_view source_name) {
  Config c = Defaults();
  c.source = source_name;
  toml::table root;
  try {
    root = toml::parse(toml_text, source_name);
  } catch (const toml::parse_error& e) {
    return InvalidArgumentError(std::string(source_name) + ": " + std::string(e.description()) +
                                " (line " + std::to_string(e.source().begin.line) + ")");
  }
  TableReader top(root, "");
  auto section = [&](const char* key) -> StatusOr<const toml::table*> {
    const toml::node* n = top.Node(key);
    if (n == nullptr) return static_cast<const toml::table*>(nullptr);
    if (!n->is_table()) return InvalidArgumentError(std::string(key) + " must be a table" + Where(*n));
    return n->as_table();
  };
  KG_ASSIGN_OR_RETURN(const toml::table* server, section("server"));
  if (server) KG_RETURN_IF_ERROR(ReadServer(*server, c.server));
  KG_ASSIGN_OR_RETURN(const toml::table* store, section("store"));
  if (store) KG_RETURN_IF_ERROR(ReadStore(*store, c.store));
  KG_ASSIGN_OR_RETURN(const toml::table* admin, section("admin"));
  if (admin) KG_RETURN_IF_ERROR(ReadAdmin(*admin, c.admin));
  KG_ASSIGN_OR_RETURN(const toml::table* upstream, section("upstream"));
  if (upstream) KG_RETURN_IF_ERROR(ReadUpstream(*upstream, c.upstream));
  KG_ASSIGN_OR_RETURN(const toml::table* spend, section("spend_checker"));
  if (spend) KG_RETURN_IF_ERROR(ReadSpendChecker(*spend, c.spend_checker));
  KG_ASSIGN_OR_RETURN(const toml::table* providers, section("providers"));
  if (providers) {
    for (const auto& [k, v] : *providers) {
      std::string name(k.str());
      const toml::table* t = v.as_table();
      if (t == nullptr) return InvalidArgumentError("providers." + name + " must be a table");
      ProviderConfig p = c.providers.count(name) ? c.providers[name] : ProviderConfig{};
      KG_RETURN_IF_ERROR(ReadProvider(name, *t, p));
      c.providers[name] = p;
    }
  }
  KG_ASSIGN_OR_RETURN(const toml::table* pools, section("pools"));
  if (pools) {
    for (const auto& [k, v] : *pools) {
      std::string name(k.str());
      const toml::table* t = v.as_table();
      if (t == nullptr) return InvalidArgumentError("pools." + name + " must be a table");
      PoolConfig p;
      KG_RETURN_IF_ERROR(ReadPool(name, *t, p));
      c.pools[name] = p;
    }
  }
  if (const toml::node* models = top.Node("models")) {
    const toml::array* arr = models->as_array();
    if (arr == nullptr) return InvalidArgumentError("models must be an array of tables ([[models]])");
    for (size_t i = 0; i < arr->size(); ++i) {
      const toml::table* t = (*arr)[i].as_table();
      if (t == nullptr) return InvalidArgumentError("models entries must be tables ([[models]])");
      ModelConfig m;
      KG_RETURN_IF_ERROR(ReadModel(i, *t, m));
      c.models.push_back(std::move(m));
    }
  }
  KG_RETURN_IF_ERROR(top.Finish());
  KG_RETURN_IF_ERROR(Validate(c));
  return c;
}

StatusOr<Config> LoadConfigFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return NotFoundError("cannot read config file " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseConfig(ss.str(), path);
}

}  // namespace keygate::config
