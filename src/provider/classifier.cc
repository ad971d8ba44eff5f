// The classification tables: one per classifier, as data. Read a table top to bottom: the first
// row that matches decides. Each row is exercised by tests/provider/classifier_test.cc with a body
// the provider really sends.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <optional>

#include "common/strings.h"
#include "provider/classifier_table.h"
#include "provider/provider.h"

namespace keygate::provider {
namespace internal {
namespace {

constexpr Action kPass = Action::kPass;
constexpr Action kRetry = Action::kRetry;
constexpr Action kCooldown = Action::kCooldown;
constexpr Action kRotate = Action::kRotate;
constexpr Action kProxy = Action::kProxy;

// OpenAI (and OpenAI-compatible upstreams): {"error": {"message", "type", "param", "code"}}.
constexpr ClassifierRow kOpenAITable[] = {
    {"ok", 200, 299, "", "", kPass, "ok"},
    // A plain-HTTP forward proxy answers for itself with 407; never the key's fault.
    {"proxy_auth", 407, 407, "", "", kProxy, "proxy_failed"},
    // invalid_api_key, account_deactivated, …: the key is dead.
    {"unauthorized", 401, 401, "", "", kRotate, "invalid_key"},
    // OpenAI refuses the egress IP's country: the proxy (its exit region) is at fault, not the key.
    {"region_blocked", 403, 403, "unsupported_country_region_territory", "", kProxy,
     "region_blocked"},
    // "Project `proj_…` does not have access to model `…`": the project's model list, a catalog
    // mistake rather than a dead key (see the LiteLLM access rows for why this is not a retry).
    {"model_access_denied", 403, 403, "model_not_found", "", kPass, "model_access_denied"},
    {"forbidden", 403, 403, "", "", kRotate, "key_forbidden"},
    {"payment_required", 402, 402, "", "", kRotate, "payment_required"},
    // "You exceeded your current quota…": a 429 that waiting does not cure.
    {"insufficient_quota", 429, 429, "insufficient_quota", "", kRotate, "insufficient_quota"},
    {"rate_limited", 429, 429, "", "", kCooldown, "rate_limited"},
    // "Billing hard limit has been reached" (a 400 on some endpoints).
    {"billing_hard_limit", 400, 499, "billing_hard_limit_reached", "", kRotate,
     "billing_limit_reached"},
    {"request_timeout", 408, 408, "", "", kRetry, "request_timeout"},
    {"server_error", 500, 599, "", "", kRetry, "upstream_5xx"},
    {"client_error", 400, 499, "", "", kPass, "client_error"},
    // 1xx/3xx or nonsense: not the client's fault, and the key may be fine; try another.
    {"unexpected_status", 0, 999, "", "", kRetry, "unexpected_status"},
};

// Anthropic: {"type": "error", "error": {"type", "message"}}.
constexpr ClassifierRow kAnthropicTable[] = {
    {"ok", 200, 299, "", "", kPass, "ok"},
    {"proxy_auth", 407, 407, "", "", kProxy, "proxy_failed"},
    {"unauthorized", 401, 401, "", "", kRotate, "invalid_key"},           // authentication_error
    {"forbidden", 403, 403, "", "", kRotate, "key_forbidden"},            // permission_error
    {"payment_required", 402, 402, "", "", kRotate, "payment_required"},  // billing_error
    {"billing_error", 400, 499, "billing_error", "", kRotate, "payment_required"},
    // Anthropic reports these as a plain 400 invalid_request_error; only the message tells them
    // apart from a malformed request.
    {"credit_balance_message", 400, 400, "", "credit balance is too low", kRotate,
     "credit_balance_too_low"},
    {"usage_limit_message", 400, 400, "", "reached your specified API usage limits", kRotate,
     "usage_limit_reached"},
    {"organization_disabled_message", 400, 400, "", "organization has been disabled", kRotate,
     "key_disabled"},
    {"rate_limited", 429, 429, "", "", kCooldown, "rate_limited"},
    {"overloaded", 529, 529, "", "", kRetry, "overloaded"},
    {"overloaded_error", 500, 599, "overloaded_error", "", kRetry, "overloaded"},
    {"request_timeout", 408, 408, "", "", kRetry, "request_timeout"},
    {"server_error", 500, 599, "", "", kRetry, "upstream_5xx"},
    {"client_error", 400, 499, "", "", kPass, "client_error"},
    {"unexpected_status", 0, 999, "", "", kRetry, "unexpected_status"},
};

// A LiteLLM proxy (also OpenHands' and other LiteLLM-based gateways) in front of the providers:
// OpenAI's error shape, with LiteLLM's own error.type values (ProxyErrorTypes) and error.code as a
// string ("400"). Its 429s may wrap a provider's quota error of LiteLLM's own deployment: that is
// not our key's quota, so a 429 only cools the key down.
constexpr ClassifierRow kLiteLLMTable[] = {
    {"ok", 200, 299, "", "", kPass, "ok"},
    {"proxy_auth", 407, 407, "", "", kProxy, "proxy_failed"},
    // Key, user or team over its max_budget: 400 (newer versions 429) with type budget_exceeded.
    {"budget_exceeded", 400, 499, "budget_exceeded", "", kRotate, "budget_exceeded"},
    // Older versions and wrapped errors carry only the message: "Budget has been exceeded! Current
    // cost: 10.2, Max budget: 10.0", "ExceededBudget: User=… over budget. Spend=…, Budget=…".
    {"budget_exceeded_message", 400, 499, "", "Budget has been exceeded", kRotate,
     "budget_exceeded"},
    {"exceeded_budget_message", 400, 499, "", "ExceededBudget", kRotate, "budget_exceeded"},
    {"expired_key", 400, 499, "expired_key", "", kRotate, "key_expired"},
    // The key may not use this model: a catalog mistake, not a dead key. Rotating would burn a good
    // key, and retrying would let one client asking for such a model eject every key of the pool.
    {"key_model_access_denied", 400, 499, "key_model_access_denied", "", kPass,
     "model_access_denied"},
    {"team_model_access_denied", 400, 499, "team_model_access_denied", "", kPass,
     "model_access_denied"},
    {"user_model_access_denied", 400, 499, "user_model_access_denied", "", kPass,
     "model_access_denied"},
    {"org_model_access_denied", 400, 499, "org_model_access_denied", "", kPass,
     "model_access_denied"},
    {"unauthorized", 401, 401, "", "", kRotate, "invalid_key"},  // auth_error, token not found
    {"forbidden", 403, 403, "", "", kRotate, "key_forbidden"},
    {"payment_required", 402, 402, "", "", kRotate, "payment_required"},
    {"rate_limited", 429, 429, "", "", kCooldown, "rate_limited"},
    {"request_timeout", 408, 408, "", "", kRetry, "request_timeout"},
    {"server_error", 500, 599, "", "", kRetry, "upstream_5xx"},
    {"client_error", 400, 499, "", "", kPass, "client_error"},
    {"unexpected_status", 0, 999, "", "", kRetry, "unexpected_status"},
};

bool ContainsIgnoreCase(std::string_view haystack, std::string_view needle) {
  auto it = std::search(haystack.begin(), haystack.end(), needle.begin(), needle.end(),
                        [](char a, char b) {
                          return std::tolower(static_cast<unsigned char>(a)) ==
                                 std::tolower(static_cast<unsigned char>(b));
                        });
  return it != haystack.end();
}

}  // namespace

std::span<const ClassifierRow> ClassifierTable(Classifier classifier) {
  switch (classifier) {
    case Classifier::kOpenAI:
      return kOpenAITable;
    case Classifier::kAnthropic:
      return kAnthropicTable;
    case Classifier::kLiteLLM:
      return kLiteLLMTable;
  }
  return kOpenAITable;
}

const ClassifierRow* MatchRow(Classifier classifier, int status, std::string_view body) {
  std::span<const ClassifierRow> table = ClassifierTable(classifier);
  // The body is parsed at most once, and only when a row that looks into it is reached: a 200 or
  // a bare 500 costs no parse.
  std::optional<ErrorFields> fields;
  for (const ClassifierRow& row : table) {
    if (status < row.status_min || status > row.status_max) continue;
    if (!row.id.empty() || !row.message.empty()) {
      if (!fields) fields = ReadErrorFields(body);
      if (!row.id.empty() && fields->type != row.id && fields->code != row.id) continue;
      if (!row.message.empty() && !ContainsIgnoreCase(fields->message, row.message)) continue;
    }
    return &row;
  }
  return &table.back();  // unreachable: every table ends with a catch-all
}

}  // namespace internal

namespace {

// ---- HTTP dates (RFC 7231 section 7.1.1.1): IMF-fixdate, and the two obsolete forms a recipient
// must still accept (RFC 850, asctime).

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

class Cursor {
 public:
  explicit Cursor(std::string_view s) : s_(s) {}
  bool Lit(std::string_view lit) {
    if (s_.substr(i_, lit.size()) != lit) return false;
    i_ += lit.size();
    return true;
  }
  // Exactly `n` digits.
  std::optional<int> Digits(size_t n) {
    if (i_ + n > s_.size()) return std::nullopt;
    int v = 0;
    for (size_t k = 0; k < n; ++k) {
      char c = s_[i_ + k];
      if (c < '0' || c > '9') return std::nullopt;
      v = v * 10 + (c - '0');
    }
    i_ += n;
    return v;
  }
  // One of `names`; returns its index.
  template <size_t N>
  std::optional<int> OneOf(const std::string_view (&names)[N]) {
    for (size_t k = 0; k < N; ++k) {
      if (Lit(names[k])) return static_cast<int>(k);
    }
    return std::nullopt;
  }
  bool AtEnd() const { return i_ == s_.size(); }

 private:
  std::string_view s_;
  size_t i_ = 0;
};

constexpr std::string_view kDays[] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
constexpr std::string_view kLongDays[] = {"Monday", "Tuesday",  "Wednesday", "Thursday",
                                          "Friday", "Saturday", "Sunday"};
constexpr std::string_view kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

std::optional<int64_t> ToEpochMs(int year, int month0, int day, int h, int m, int s) {
  static constexpr int kMonthDays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (day < 1 || day > kMonthDays[month0] || h > 23 || m > 59 || s > 60) return std::nullopt;
  const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  if (month0 == 1 && day == 29 && !leap) return std::nullopt;
  int64_t days = DaysFromCivil(year, static_cast<unsigned>(month0 + 1), static_cast<unsigned>(day));
  return ((days * 24 + h) * 60 + m) * 60'000 + static_cast<int64_t>(s) * 1000;
}

// "HH:MM:SS"
bool Clock(Cursor& c, int& h, int& m, int& s) {
  auto hh = c.Digits(2);
  if (!hh || !c.Lit(":")) return false;
  auto mm = c.Digits(2);
  if (!mm || !c.Lit(":")) return false;
  auto ss = c.Digits(2);
  if (!ss) return false;
  h = *hh, m = *mm, s = *ss;
  return true;
}

std::optional<int64_t> ParseHttpDateMs(std::string_view v) {
  int h, m, s;
  {  // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT"
    Cursor c(v);
    std::optional<int> day, month, year;
    if (c.OneOf(kDays) && c.Lit(", ") && (day = c.Digits(2)) && c.Lit(" ") &&
        (month = c.OneOf(kMonths)) && c.Lit(" ") && (year = c.Digits(4)) && c.Lit(" ") &&
        Clock(c, h, m, s) && c.Lit(" GMT") && c.AtEnd()) {
      return ToEpochMs(*year, *month, *day, h, m, s);
    }
  }
  {  // RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT". A two-digit year is read as 1970–2069.
    Cursor c(v);
    std::optional<int> day, month, yy;
    if (c.OneOf(kLongDays) && c.Lit(", ") && (day = c.Digits(2)) && c.Lit("-") &&
        (month = c.OneOf(kMonths)) && c.Lit("-") && (yy = c.Digits(2)) && c.Lit(" ") &&
        Clock(c, h, m, s) && c.Lit(" GMT") && c.AtEnd()) {
      return ToEpochMs(*yy < 70 ? 2000 + *yy : 1900 + *yy, *month, *day, h, m, s);
    }
  }
  {  // asctime: "Sun Nov  6 08:49:37 1994" (the day is space-padded)
    Cursor c(v);
    std::optional<int> day, month, year;
    if (c.OneOf(kDays) && c.Lit(" ") && (month = c.OneOf(kMonths)) && c.Lit(" ")) {
      if (c.Lit(" ")) {
        day = c.Digits(1);
      } else {
        day = c.Digits(2);
      }
      if (day && c.Lit(" ") && Clock(c, h, m, s) && c.Lit(" ") && (year = c.Digits(4)) &&
          c.AtEnd()) {
        return ToEpochMs(*year, *month, *day, h, m, s);
      }
    }
  }
  return std::nullopt;
}

// delta-seconds. RFC 7231 allows only digits; fractions ("1.5") and a leading '-' are accepted
// too: a number can never be mistaken for a date, and honouring what a server meant beats
// ignoring it. Fractions round up to the next millisecond (never cool down shorter than asked);
// negatives mean "now".
std::optional<int64_t> ParseDeltaSecondsMs(std::string_view v) {
  bool negative = false;
  if (!v.empty() && v.front() == '-') {
    negative = true;
    v.remove_prefix(1);
  }
  size_t dot = v.find('.');
  std::string_view whole = v.substr(0, dot);
  std::string_view frac = dot == std::string_view::npos ? "" : v.substr(dot + 1);
  if (whole.empty() && frac.empty()) return std::nullopt;
  if (dot != std::string_view::npos && frac.empty()) return std::nullopt;  // "5."
  // 12 digits of seconds is 31,000 years: anything longer is garbage, and would overflow.
  if (whole.size() > 12) return std::nullopt;
  int64_t ms = 0;
  for (char c : whole) {
    if (c < '0' || c > '9') return std::nullopt;
    ms = ms * 10 + (c - '0');
  }
  ms *= 1000;
  bool round_up = false;
  for (size_t k = 0; k < frac.size(); ++k) {
    char c = frac[k];
    if (c < '0' || c > '9') return std::nullopt;
    if (k < 3) {
      static constexpr int kScale[] = {100, 10, 1};
      ms += (c - '0') * kScale[k];
    } else if (c != '0') {
      round_up = true;
    }
  }
  if (round_up) ++ms;
  return negative ? 0 : ms;
}

}  // namespace

std::optional<Classifier> ParseClassifier(std::string_view name) {
  if (name == "openai") return Classifier::kOpenAI;
  if (name == "anthropic") return Classifier::kAnthropic;
  if (name == "litellm") return Classifier::kLiteLLM;
  return std::nullopt;
}

std::string_view ActionName(Action a) {
  switch (a) {
    case Action::kPass:
      return "pass";
    case Action::kRetry:
      return "retry";
    case Action::kCooldown:
      return "cooldown";
    case Action::kRotate:
      return "rotate";
    case Action::kProxy:
      return "proxy";
  }
  return "unknown";
}

Verdict Classify(Classifier classifier, const UpstreamOutcome& outcome) {
  switch (outcome.transport) {
    case Transport::kOk:
      break;
    // Below HTTP nothing was said about the key: try another one (counts toward ejection), except
    // when the egress proxy failed, which is never the key's fault.
    case Transport::kConnect:
      return {Action::kRetry, "connect_failed", 0};
    case Transport::kProxy:
      return {Action::kProxy, "proxy_failed", 0};
    case Transport::kTls:
      return {Action::kRetry, "tls_failed", 0};
    case Transport::kTimeout:
      return {Action::kRetry, "timeout", 0};
    case Transport::kReset:
      return {Action::kRetry, "connection_reset", 0};
    case Transport::kOther:
      return {Action::kRetry, "transport_failed", 0};
  }
  const internal::ClassifierRow* row = internal::MatchRow(classifier, outcome.status, outcome.body);
  Verdict v{row->action, std::string(row->reason), 0};
  if (v.action == Action::kCooldown && outcome.retry_after_ms) {
    v.cooldown_ms = std::max<int64_t>(0, *outcome.retry_after_ms);
  }
  return v;
}

std::optional<int64_t> ParseRetryAfterMs(std::string_view value, int64_t now_ms) {
  std::string_view v = Trim(value);
  if (v.empty()) return std::nullopt;
  const char c = v.front();
  if ((c >= '0' && c <= '9') || c == '-' || c == '.') return ParseDeltaSecondsMs(v);
  std::optional<int64_t> at = ParseHttpDateMs(v);
  if (!at) return std::nullopt;
  return std::max<int64_t>(0, *at - now_ms);
}

}  // namespace keygate::provider
