// keygate's configuration: TOML -> immutable, validated structs. Everything has a default, so an
// empty (or absent) file is a valid configuration: the embedded store on 127.0.0.1:8080 with the
// OpenAI and Anthropic providers.
//
// Thread safety: a Config is immutable after Load; share it as shared_ptr<const Config>.
#ifndef KEYGATE_CONFIG_CONFIG_H_
#define KEYGATE_CONFIG_CONFIG_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"

namespace keygate::config {

// The wire format a model speaks upstream (and a client speaks on a route).
enum class Format { kOpenAIChat, kAnthropicMessages, kOpenAIResponses };
std::string_view FormatName(Format f);  // "openai-chat", "anthropic-messages", "openai-responses"
std::optional<Format> ParseFormat(std::string_view name);

enum class AuthStyle { kBearer, kXApiKey };
enum class Strategy { kRoundRobin, kWeighted, kLeastInFlight };
std::string_view StrategyName(Strategy s);

struct ServerConfig {
  std::string listen = "127.0.0.1:8080";
  int workers = 0;                        // 0 = one per core
  int64_t max_body_bytes = 10 << 20;      // 413 beyond
  int64_t max_header_bytes = 64 << 10;    // 431 beyond
  int64_t header_timeout_ms = 30'000;     // a client must send its headers within this
  int64_t drain_timeout_ms = 30'000;      // SIGTERM: in-flight requests get this long
  int64_t max_stream_buffer_bytes = 256 << 10;  // per request: beyond, the upstream is paused
  int64_t busy_poll_us = 0;  // a worker polls this long after an event before it sleeps
};

struct StoreConfig {
  std::string url = "keygate.db";
  int connections = 4;
  int64_t pool_refresh_ms = 500;  // how often pool versions are polled
  int64_t usage_batch_size = 256;
  int64_t usage_flush_ms = 200;
  // Beyond, unbilled records are dropped (counted, logged); billed ones are kept and new billed
  // requests get 503 until the queue is back under.
  int64_t usage_queue_limit = 100'000;
  // A credit reservation not settled within this is released by the sweep (its instance died).
  // Longer than any request may last: a request settled after its release is still billed, but
  // no longer bounded by the balance.
  int64_t reservation_ttl_ms = 3'600'000;
  int64_t reservation_sweep_ms = 10'000;  // how often each instance sweeps
};

struct UpstreamConfig {
  int64_t connect_timeout_ms = 10'000;
  int64_t first_byte_timeout_ms = 120'000;
  int64_t idle_timeout_ms = 300'000;  // between two chunks of a stream; no total limit
  std::string ca_file;                // empty = the system store
  int max_attempts = 3;               // keys tried per request before giving up
  int64_t default_cooldown_ms = 30'000;  // 429 without Retry-After: first backoff step
  int64_t max_cooldown_ms = 600'000;
  int eject_after_failures = 5;       // consecutive 5xx/timeouts before a key is ejected
  int64_t eject_base_ms = 30'000;
  int64_t proxy_recheck_ms = 30'000;
};

// The background spend checker of `serve` (billing/spend_service.h; docs/config.md
// "Spend checker"). Which pools are probed, how, and their budgets are pool settings.
struct SpendCheckerConfig {
  bool enabled = true;                     // false: `serve` runs no checker (the CLI still can)
  int64_t interval_active_ms = 10'000;     // keys used in the last idle_after_ms
  int64_t interval_idle_ms = 3'600'000;    // the others
  int64_t idle_after_ms = 300'000;         // a key unused this long counts as idle
  double jitter = 0.1;                     // each interval is stretched by a random +-fraction
  int64_t lease_ttl_ms = 15'000;           // leader lease; renewed every ttl/3
  int max_in_flight = 8;                   // probes at once
  int64_t probe_timeout_ms = 10'000;       // per probe
};

struct ProviderConfig {
  std::string name;
  std::string base_url;  // "https://api.openai.com" (no trailing slash)
  AuthStyle auth = AuthStyle::kBearer;
  Format format = Format::kOpenAIChat;  // the default format of this provider's models
  std::string classifier;               // error table: "openai", "anthropic", "litellm"
  std::vector<std::pair<std::string, std::string>> headers;  // extra request headers
};

struct PoolConfig {
  std::string name;
  std::string provider;  // a ProviderConfig name
  Strategy strategy = Strategy::kRoundRobin;
  bool allow_direct = false;  // keys whose proxies are all down may go direct
  std::vector<std::string> model_patterns;  // models served when not in the catalog ("gpt-*")
  // The spend checker (billing/spend_checker.h; docs/config.md). Empty = keys are not probed.
  std::string spend_probe;         // "litellm" | "openrouter" | "ledger" | "http"
  double spend_threshold = 0.95;   // rotate at this fraction of the budget, in (0, 1]
  std::optional<int64_t> budget_micros;  // `budget` (USD): for keys whose budget is unknown
  std::string spend_url;           // http: URL template, "{base}" = the provider's base_url
  std::string spend_pointer;       // http: JSON pointer of the spend (USD); required
  std::string budget_pointer;      // http: JSON pointer of the budget (USD); optional
  // Overrides of [spend_checker] interval_active_ms / interval_idle_ms for this pool.
  std::optional<int64_t> spend_interval_active_ms;
  std::optional<int64_t> spend_interval_idle_ms;
};

struct Price {  // USD per million tokens
  double input = 0, output = 0, cache_write = 0, cache_read = 0;
};

struct UpstreamModel {
  std::string id;
  int weight = 1;
};

// Thinking budgets (Anthropic budget_tokens) for OpenAI's reasoning_effort values, per model:
// "minimal" uses `low`, "none" means no thinking. Translation uses them both ways (docs/
// translation.md, "Reasoning"). Defaults follow LiteLLM's table; Anthropic's minimum is 1024.
struct ThinkingBudgets {
  int64_t low = 1024;
  int64_t medium = 2048;
  int64_t high = 4096;
};

struct ModelConfig {
  std::string id;
  std::vector<std::string> aliases;
  std::string pool;
  std::vector<UpstreamModel> upstream;  // empty = same id
  std::optional<Format> format;         // default: the pool's provider's format
  Price price;
  double multiplier = 1.0;
  int64_t max_tokens = 4096;  // default max_tokens where a format requires one
  ThinkingBudgets thinking;   // reasoning_effort <-> thinking budget_tokens
};

struct AdminConfig {
  // Browser origins allowed to call the admin API ("https://ops.example.com"); empty = CORS off.
  // Exact origins only: "*" is refused (admin keys are credentials).
  std::vector<std::string> cors_origins;
};

struct Config {
  ServerConfig server;
  StoreConfig store;
  AdminConfig admin;
  UpstreamConfig upstream;
  SpendCheckerConfig spend_checker;
  std::map<std::string, ProviderConfig> providers;
  std::map<std::string, PoolConfig> pools;
  std::vector<ModelConfig> models;
  std::string source;  // the file it came from, or "defaults"

  const ProviderConfig* FindProvider(std::string_view name) const;
  const PoolConfig* FindPool(std::string_view name) const;
};

// The built-in defaults (also the base every file is layered on).
Config Defaults();

// Parses TOML text. InvalidArgument naming the key and line for anything malformed or inconsistent
// (unknown keys are errors too: a typo must not silently change behaviour).
StatusOr<Config> ParseConfig(std::string_view toml_text, std::string_view source_name);
// Reads and parses a file. NotFound when it does not exist.
StatusOr<Config> LoadConfigFile(const std::string& path);

}  // namespace keygate::config

#endif  // KEYGATE_CONFIG_CONFIG_H_
