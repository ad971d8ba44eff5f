#include "provider/spend_probe.h"

#include <cmath>
#include <cstdlib>

#include "common/strings.h"
#include "provider/dom.h"
#include "provider/provider.h"

namespace keygate::provider {

namespace {

using internal::DomParser;
using internal::Field;

constexpr double kMaxUsd = 1e12;

// A money value in USD: a JSON number, or a decimal string ("12.5"). nullopt for anything else
// (null included: the caller decides what a missing value means).
std::optional<int64_t> MoneyValue(simdjson::dom::element v) {
  double d;
  int64_t i;
  uint64_t u;
  std::string_view s;
  if (v.get_int64().get(i) == simdjson::SUCCESS) return UsdToMicros(static_cast<double>(i));
  if (v.get_uint64().get(u) == simdjson::SUCCESS) return UsdToMicros(static_cast<double>(u));
  if (v.get_double().get(d) == simdjson::SUCCESS) return UsdToMicros(d);
  if (v.get_string().get(s) == simdjson::SUCCESS) return ParseUsdToMicros(Trim(s));
  return std::nullopt;
}

std::optional<simdjson::dom::element> AtPointer(simdjson::dom::element root,
                                                std::string_view pointer) {
  simdjson::dom::element v;
  if (root.at_pointer(pointer).get(v) != simdjson::SUCCESS) return std::nullopt;
  return v;
}

// Reads spend (required) and budget (optional; null or absent = unknown) at two locations.
StatusOr<SpendReading> ReadMoney(std::optional<simdjson::dom::element> spend,
                                 std::optional<simdjson::dom::element> budget,
                                 std::string_view spend_name, std::string_view budget_name) {
  if (!spend || spend->is_null()) {
    return InvalidArgumentError("the spend probe's response has no " + std::string(spend_name));
  }
  SpendReading out;
  auto s = MoneyValue(*spend);
  if (!s) {
    return InvalidArgumentError("the spend probe's " + std::string(spend_name) +
                                " is not a non-negative amount");
  }
  out.spend_micros = *s;
  if (budget && !budget->is_null()) {
    auto b = MoneyValue(*budget);
    if (!b) {
      return InvalidArgumentError("the spend probe's " + std::string(budget_name) +
                                  " is not a non-negative amount");
    }
    out.budget_micros = *b;
  }
  return out;
}

// "…Current cost: 10.01, Max budget: 10.0" (LiteLLM's budget_exceeded message): the amount after
// `label`, when there is one.
std::optional<int64_t> AmountAfter(std::string_view text, std::string_view label) {
  size_t p = text.find(label);
  if (p == std::string_view::npos) return std::nullopt;
  std::string rest(text.substr(p + label.size(), 32));
  char* end = nullptr;
  double d = std::strtod(rest.c_str(), &end);
  if (end == rest.c_str()) return std::nullopt;
  return UsdToMicros(d);
}

Status UnexpectedStatus(int status) {
  return UnavailableError("the spend probe answered HTTP " + std::to_string(status));
}

StatusOr<simdjson::dom::element> ParseBody(DomParser& parser, std::string_view body) {
  simdjson::dom::element root;
  if (parser.Parse(body, root) != simdjson::SUCCESS) {
    return InvalidArgumentError("the spend probe's response is not JSON");
  }
  return root;
}

StatusOr<SpendReading> ParseLiteLLM(int status, std::string_view body) {
  if (status >= 400 && status < 500) {
    // LiteLLM's own error table decides what a 4xx means (a named row: budget_exceeded).
    Verdict v = Classify(Classifier::kLiteLLM, {.status = status, .body = body});
    if (v.reason != "budget_exceeded") return UnexpectedStatus(status);
    SpendReading out;
    out.exceeded = true;
    out.spend_micros = AmountAfter(body, "Current cost:").value_or(0);
    out.budget_micros = AmountAfter(body, "Max budget:");
    return out;
  }
  if (status != 200) return UnexpectedStatus(status);
  DomParser parser(body.size());
  KG_ASSIGN_OR_RETURN(simdjson::dom::element root, ParseBody(parser, body));
  auto info = Field(root, "info");
  if (!info || !info->is_object()) {
    return InvalidArgumentError("the spend probe's response has no info object");
  }
  return ReadMoney(Field(*info, "spend"), Field(*info, "max_budget"), "info.spend",
                   "info.max_budget");
}

StatusOr<SpendReading> ParseOpenRouter(int status, std::string_view body) {
  if (status != 200) return UnexpectedStatus(status);
  DomParser parser(body.size());
  KG_ASSIGN_OR_RETURN(simdjson::dom::element root, ParseBody(parser, body));
  auto data = Field(root, "data");
  if (!data || !data->is_object()) {
    return InvalidArgumentError("the spend probe's response has no data object");
  }
  return ReadMoney(Field(*data, "usage"), Field(*data, "limit"), "data.usage", "data.limit");
}

StatusOr<SpendReading> ParseHttp(const SpendProbeSpec& spec, int status, std::string_view body) {
  if (status != 200) return UnexpectedStatus(status);
  DomParser parser(body.size());
  KG_ASSIGN_OR_RETURN(simdjson::dom::element root, ParseBody(parser, body));
  std::optional<simdjson::dom::element> budget;
  if (!spec.budget_pointer.empty()) budget = AtPointer(root, spec.budget_pointer);
  return ReadMoney(AtPointer(root, spec.spend_pointer), budget, spec.spend_pointer,
                   spec.budget_pointer);
}

}  // namespace

std::string_view SpendProbeKindName(SpendProbeKind kind) {
  switch (kind) {
    case SpendProbeKind::kLiteLLM: return "litellm";
    case SpendProbeKind::kOpenRouter: return "openrouter";
    case SpendProbeKind::kHttp: return "http";
    case SpendProbeKind::kLedger: return "ledger";
  }
  return "unknown";
}

std::optional<SpendProbeKind> ParseSpendProbeKind(std::string_view name) {
  for (SpendProbeKind k : {SpendProbeKind::kLiteLLM, SpendProbeKind::kOpenRouter,
                           SpendProbeKind::kHttp, SpendProbeKind::kLedger}) {
    if (name == SpendProbeKindName(k)) return k;
  }
  return std::nullopt;
}

std::optional<int64_t> UsdToMicros(double usd) {
  if (!std::isfinite(usd) || usd < 0 || usd > kMaxUsd) return std::nullopt;
  return static_cast<int64_t>(std::llround(usd * 1e6));
}

StatusOr<ProbeRequest> BuildSpendRequest(const SpendProbeSpec& spec, std::string_view secret) {
  ProbeRequest req;
  req.headers.emplace_back("accept", "application/json");
  switch (spec.kind) {
    case SpendProbeKind::kLiteLLM:
      req.url = spec.base_url + "/key/info";
      req.headers.push_back(AuthHeader(config::AuthStyle::kBearer, secret));
      return req;
    case SpendProbeKind::kOpenRouter:
      // OpenRouter's chat base is usually configured as https://openrouter.ai/api.
      req.url = spec.base_url + (spec.base_url.ends_with("/api") ? "/v1/key" : "/api/v1/key");
      req.headers.push_back(AuthHeader(config::AuthStyle::kBearer, secret));
      return req;
    case SpendProbeKind::kHttp: {
      std::string url = spec.url_template;
      for (size_t p = url.find("{base}"); p != std::string::npos; p = url.find("{base}", p)) {
        url.replace(p, 6, spec.base_url);
        p += spec.base_url.size();
      }
      if (!url.starts_with("http://") && !url.starts_with("https://")) {
        return InvalidArgumentError("the spend URL '" + url + "' is not an http(s) URL");
      }
      req.url = std::move(url);
      req.headers.push_back(AuthHeader(spec.auth, secret));
      return req;
    }
    case SpendProbeKind::kLedger:
      return InvalidArgumentError("the ledger spend probe sends no request");
  }
  return InvalidArgumentError("unknown spend probe");
}

StatusOr<SpendReading> ParseSpendResponse(const SpendProbeSpec& spec, int status,
                                          std::string_view body) {
  switch (spec.kind) {
    case SpendProbeKind::kLiteLLM: return ParseLiteLLM(status, body);
    case SpendProbeKind::kOpenRouter: return ParseOpenRouter(status, body);
    case SpendProbeKind::kHttp: return ParseHttp(spec, status, body);
    case SpendProbeKind::kLedger: break;
  }
  return InvalidArgumentError("the ledger spend probe has no response to parse");
}

}  // namespace keygate::provider
