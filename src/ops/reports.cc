// Reports for operators: usage by day, client key and model; spend against budget per pool and
// per key. Shared by `keygate usage` / `keygate spend stats` and the admin API.
#include <algorithm>
#include <boost/json.hpp>
#include <limits>
#include <map>
#include <tuple>

#include "billing/spend_stats.h"
#include "common/strings.h"
#include "ops/ops.h"

namespace keygate::ops {

namespace {

constexpr int64_t kDayMs = 86'400'000;

json::value JsonOpt(std::optional<int64_t> v) { return v ? json::value(*v) : json::value(nullptr); }

void Add(store::UsageSummary& into, const store::UsageSummary& u) {
  into.requests += u.requests;
  into.input_tokens += u.input_tokens;
  into.output_tokens += u.output_tokens;
  into.cache_read_tokens += u.cache_read_tokens;
  into.cache_write_tokens += u.cache_write_tokens;
  into.cost_micros += u.cost_micros;
}

void PutSums(json::object& o, const store::UsageSummary& u) {
  o["requests"] = u.requests;
  o["input_tokens"] = u.input_tokens;
  o["output_tokens"] = u.output_tokens;
  o["cache_read_tokens"] = u.cache_read_tokens;
  o["cache_write_tokens"] = u.cache_write_tokens;
  o["cost_micros"] = u.cost_micros;
  o["cost_usd"] = FormatMicrosAsUsd(u.cost_micros);
}

}  // namespace

StatusOr<std::vector<std::string>> ParseUsageGroup(std::string_view text) {
  std::vector<std::string> out;
  for (std::string_view part : Split(text, ',')) {
    std::string d(Trim(part));
    if (d.empty()) continue;
    if (d != "day" && d != "client_key" && d != "model") {
      return InvalidArgumentError("group must list day, client_key and/or model, not '" +
                                  d.substr(0, 40) + "'");
    }
    if (std::find(out.begin(), out.end(), d) == out.end()) out.push_back(std::move(d));
  }
  return out;
}

std::optional<int64_t> ParseUsageUntil(std::string_view text) {
  auto t = ParseTimeMs(text);
  if (!t) return std::nullopt;
  // A bare date names a whole day: include it.
  if (Trim(text).size() == 10) return *t + kDayMs;
  return t;
}

StatusOr<json::object> UsageReport(store::Store& store, const UsageReportQuery& q) {
  const auto has = [&](std::string_view d) {
    return std::find(q.group.begin(), q.group.end(), d) != q.group.end();
  };
  for (const std::string& d : q.group) {
    if (d != "day" && d != "client_key" && d != "model") {
      return InvalidArgumentError("unknown usage group '" + d + "'");
    }
  }
  if (q.from_ms && q.to_ms && *q.to_ms <= *q.from_ms) {
    return InvalidArgumentError("'to' must be after 'from'");
  }
  // The store sums by day, client key and model; coarser groups fold those rows here.
  store::UsageQuery sq{.client_key_id = q.client_key_id,
                       .model = q.model,
                       .since_ms = q.from_ms,
                       .until_ms = q.to_ms};
  KG_ASSIGN_OR_RETURN(std::vector<store::UsageSummary> rows, store.SummarizeUsage(sq));
  KG_ASSIGN_OR_RETURN(std::vector<store::ClientKey> keys, store.ListClientKeys());
  std::map<int64_t, std::string> names;
  for (const store::ClientKey& k : keys) names[k.id] = k.name;

  // Ordered like the store's rows: day, client key (none last), model.
  using Key = std::tuple<int64_t, int64_t, std::string>;
  constexpr int64_t kNoKey = std::numeric_limits<int64_t>::max();
  std::map<Key, store::UsageSummary> folded;
  store::UsageSummary total;
  for (const store::UsageSummary& u : rows) {
    Key k{has("day") ? u.day : 0, has("client_key") ? u.client_key_id.value_or(kNoKey) : 0,
          has("model") ? u.model : std::string()};
    store::UsageSummary& into = folded[k];
    into.client_key_id = u.client_key_id;
    into.day = u.day;
    into.model = u.model;
    Add(into, u);
    Add(total, u);
  }
  json::array arr;
  for (const auto& [k, u] : folded) {
    json::object o;
    if (has("day")) o["day"] = FormatTimeMs(u.day * kDayMs).substr(0, 10);
    if (has("client_key")) {
      o["client_key_id"] = JsonOpt(u.client_key_id);
      std::string name = "-";
      if (u.client_key_id) {
        auto it = names.find(*u.client_key_id);
        name =
            it != names.end() ? it->second : "(deleted " + std::to_string(*u.client_key_id) + ")";
      }
      o["name"] = name;
    }
    if (has("model")) o["model"] = u.model;
    PutSums(o, u);
    arr.push_back(std::move(o));
  }
  json::array group;
  for (std::string_view d : {"day", "client_key", "model"}) {
    if (has(d)) group.push_back(json::value(d));
  }
  json::object total_doc;
  PutSums(total_doc, total);
  return json::object{
      {"group", std::move(group)}, {"usage", std::move(arr)}, {"total", std::move(total_doc)}};
}

StatusOr<json::object> SpendStats(store::Store& store, const config::Config& config,
                                  const std::string& pool) {
  KG_ASSIGN_OR_RETURN(std::vector<billing::PoolSpendStats> stats,
                      billing::ComputeSpendStats(store, config, pool));
  json::array pools;
  for (const billing::PoolSpendStats& s : stats) {
    json::object bands;
    for (billing::SpendBand b : billing::kAllSpendBands)
      bands[billing::SpendBandName(b)] = s.Count(b);
    // When each key was last checked: the newest spend record of the pool's recent ones.
    std::map<int64_t, int64_t> checked;
    if (!s.key_spend.empty()) {
      KG_ASSIGN_OR_RETURN(store::Pool p, store.GetPool(s.pool));
      KG_ASSIGN_OR_RETURN(std::vector<store::SpendRecord> records,
                          store.ListSpendRecords({.pool_id = p.id, .limit = 1000}));
      for (const store::SpendRecord& r : records) checked.emplace(r.key_id, r.created_at_ms);
    }
    json::array keys;
    for (const billing::KeySpend& k : s.key_spend) {
      json::value percent = nullptr;
      if (k.budget_micros && *k.budget_micros > 0) {
        // Tenths of a percent, for display; the band is decided exactly in micro-USD.
        percent = static_cast<double>(k.spend_micros * 1000 / *k.budget_micros) / 10.0;
      }
      auto at = checked.find(k.key_id);
      keys.push_back(json::object{
          {"key_id", k.key_id},
          {"key", k.masked},
          {"label", k.label},
          {"state", store::KeyStateName(k.state)},
          {"spend_usd", FormatMicrosAsUsd(k.spend_micros)},
          {"spend_micros", k.spend_micros},
          {"budget_usd", k.budget_micros ? json::value(FormatMicrosAsUsd(*k.budget_micros))
                                         : json::value(nullptr)},
          {"budget_micros", JsonOpt(k.budget_micros)},
          {"budget_source", !k.budget_micros ? "none" : (k.pool_budget ? "pool" : "key")},
          {"band", billing::SpendBandName(k.band)},
          {"percent", percent},
          {"checked_at",
           at != checked.end() ? json::value(FormatTimeMs(at->second)) : json::value(nullptr)}});
    }
    pools.push_back(json::object{{"pool", s.pool},
                                 {"keys", s.keys},
                                 {"spend_usd", FormatMicrosAsUsd(s.spend_micros)},
                                 {"spend_micros", s.spend_micros},
                                 {"bands", std::move(bands)},
                                 {"key_spend", std::move(keys)}});
  }
  return json::object{{"pools", std::move(pools)}};
}

}  // namespace keygate::ops
