// Spend probes, pure (no I/O): how to ask an upstream what a key has spent and what its budget
// is, and how to read the answer. The spend checker (billing/spend_checker.h) sends the request
// through the key's egress proxy and hands the response back here.
//
//   litellm     GET {base}/key/info, the key as Bearer -> info.spend, info.max_budget (USD).
//               A 4xx that LiteLLM's error table classifies as budget_exceeded means the key is
//               at or over its budget (exceeded = true; spend and budget read from the message
//               "Current cost: X, Max budget: Y" when it carries them).
//   openrouter  GET {base}/api/v1/key (or {base}/v1/key when base already ends in /api), Bearer
//               -> data.usage, data.limit (USD; limit null = no limit, budget unknown).
//   http        GET of a URL template ("{base}" is the provider's base URL), the key sent the
//               provider's way (Authorization: Bearer or x-api-key); spend and budget read at JSON
//               pointers (RFC 6901), in USD, as numbers or decimal strings.
//   ledger      no request: keygate's own usage records (Store::LedgerSpendMicros: their costs
//               recorded since the key was activated); the budget comes from the key or the pool.
//
// Thread safety: pure functions.
#ifndef KEYGATE_PROVIDER_SPEND_PROBE_H_
#define KEYGATE_PROVIDER_SPEND_PROBE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "config/config.h"

namespace keygate::provider {

enum class SpendProbeKind { kLiteLLM, kOpenRouter, kHttp, kLedger };
std::string_view SpendProbeKindName(SpendProbeKind kind);  // "litellm", "openrouter", ...
std::optional<SpendProbeKind> ParseSpendProbeKind(std::string_view name);

struct SpendProbeSpec {
  SpendProbeKind kind = SpendProbeKind::kLiteLLM;
  std::string base_url;  // the provider's base URL, no trailing slash
  config::AuthStyle auth = config::AuthStyle::kBearer;  // http only (the others use Bearer)
  std::string url_template;    // http only: "{base}/v1/credits"
  std::string spend_pointer;   // http only: "/data/total_usage"
  std::string budget_pointer;  // http only, optional: "/data/total_credits"
};

struct ProbeRequest {
  std::string method = "GET";
  std::string url;
  std::vector<std::pair<std::string, std::string>> headers;  // the key's auth header included
};

// The request that asks for the spend of the key `secret`. InvalidArgument for the ledger kind
// (it sends nothing) and for an http template that yields no http(s) URL.
StatusOr<ProbeRequest> BuildSpendRequest(const SpendProbeSpec& spec, std::string_view secret);

struct SpendReading {
  int64_t spend_micros = 0;
  std::optional<int64_t> budget_micros;  // nullopt = the upstream did not say
  // The upstream refused with "budget exceeded": spend >= budget whatever the numbers say.
  bool exceeded = false;
};

// Reads a probe's response (`status`, the complete `body`). Errors (the check failed, nothing is
// known; never a reason to rotate): Unavailable for an unexpected status, InvalidArgument for a
// body that does not carry the spend (not JSON, field missing, negative or not a number).
StatusOr<SpendReading> ParseSpendResponse(const SpendProbeSpec& spec, int status,
                                          std::string_view body);

// USD as a JSON number -> micro-USD, rounded to the nearest. nullopt for negative, NaN or
// absurd (> 1e12 USD) values.
std::optional<int64_t> UsdToMicros(double usd);

}  // namespace keygate::provider

#endif  // KEYGATE_PROVIDER_SPEND_PROBE_H_
