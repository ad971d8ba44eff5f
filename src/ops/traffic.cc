// The traffic report: requests, errors, tokens, cost, latency and time to first byte per time
// bucket, for every instance on the store. Shared by `keygate traffic` and GET /admin/v1/traffic.
#include <boost/json.hpp>
#include <cmath>

#include "common/strings.h"
#include "ops/ops.h"

namespace keygate::ops {

namespace {

constexpr int64_t kDefaultWindowMs = 3'600'000;

// Whole milliseconds: finer than any percentile's error bound, and plain integers in JSON.
int64_t Ms(double ms) { return std::llround(ms); }

json::object LatencyJson(const store::LatencyHistogram& h, bool with_count) {
  json::object o;
  if (with_count) o["count"] = h.count;
  o["avg"] = Ms(h.AverageMs());
  o["max"] = h.max_ms;
  o["p50"] = Ms(h.Percentile(0.50));
  o["p95"] = Ms(h.Percentile(0.95));
  o["p99"] = Ms(h.Percentile(0.99));
  return o;
}

void PutFigures(json::object& o, const store::TrafficBucket& b) {
  o["requests"] = b.requests;
  o["errors"] = json::object{{"total", b.errors_4xx + b.errors_5xx + b.no_answer},
                             {"4xx", b.errors_4xx},
                             {"5xx", b.errors_5xx},
                             {"no_answer", b.no_answer}};
  o["input_tokens"] = b.input_tokens;
  o["output_tokens"] = b.output_tokens;
  o["cost_micros"] = b.cost_micros;
  o["cost_usd"] = FormatMicrosAsUsd(b.cost_micros);
  o["latency_ms"] = LatencyJson(b.latency, false);
  o["ttfb_ms"] = LatencyJson(b.ttfb, true);
}

StatusOr<std::optional<int64_t>> OptId(const std::string& text, std::string_view name) {
  if (text.empty()) return std::optional<int64_t>();
  auto id = ParseInt64(text);
  if (!id || *id <= 0) {
    return InvalidArgumentError(std::string(name) + " must be a whole number > 0, not '" +
                                text.substr(0, 40) + "'");
  }
  return std::optional<int64_t>(*id);
}

StatusOr<int64_t> Time(const std::string& text, std::string_view name) {
  auto t = ParseTimeMs(text);
  if (!t) {
    return InvalidArgumentError(std::string(name) +
                                " must be a UTC date or time like 2026-11-28T12:00:00Z, not '" +
                                text.substr(0, 40) + "'");
  }
  return *t;
}

json::value OptJson(const std::optional<int64_t>& v) {
  return v ? json::value(*v) : json::value(nullptr);
}

}  // namespace

std::optional<int64_t> ParseDurationMs(std::string_view text) {
  text = Trim(text);
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  if (digits == 0 || digits > 12) return std::nullopt;
  auto n = ParseInt64(text.substr(0, digits));
  if (!n || *n <= 0) return std::nullopt;
  std::string_view unit = text.substr(digits);
  int64_t scale = 0;
  if (unit == "ms") {
    scale = 1;
  } else if (unit == "s") {
    scale = 1'000;
  } else if (unit == "m") {
    scale = 60'000;
  } else if (unit == "h") {
    scale = 3'600'000;
  } else if (unit == "d") {
    scale = 86'400'000;
  } else {
    return std::nullopt;
  }
  return *n * scale;
}

StatusOr<TrafficReportQuery> ParseTrafficParams(const TrafficParams& p, int64_t now_ms,
                                                std::string_view prefix) {
  const std::string pre(prefix);
  TrafficReportQuery q;
  if (!p.bucket.empty()) {
    auto b = ParseDurationMs(p.bucket);
    if (!b) {
      return InvalidArgumentError(pre + "bucket must be a duration like 10s, 1m, 1h or 1d, not '" +
                                  p.bucket.substr(0, 40) + "'");
    }
    q.bucket_ms = *b;
  }
  q.to_ms = now_ms;
  if (!p.to.empty()) {
    KG_ASSIGN_OR_RETURN(q.to_ms, Time(p.to, pre + "to"));
  }
  if (!p.since.empty() && !p.from.empty()) {
    return InvalidArgumentError("give " + pre + "since or " + pre + "from, not both");
  }
  if (!p.since.empty()) {
    auto d = ParseDurationMs(p.since);
    if (!d) {
      return InvalidArgumentError(pre + "since must be a duration like 15m, 6h or 1d, not '" +
                                  p.since.substr(0, 40) + "'");
    }
    q.from_ms = q.to_ms - *d;
  } else if (!p.from.empty()) {
    KG_ASSIGN_OR_RETURN(q.from_ms, Time(p.from, pre + "from"));
  } else {
    q.from_ms = q.to_ms - kDefaultWindowMs;
  }
  q.pool = p.pool;
  KG_ASSIGN_OR_RETURN(q.client_key_id, OptId(p.client_key_id, pre + "client_key_id"));
  KG_ASSIGN_OR_RETURN(q.upstream_key_id, OptId(p.upstream_key_id, pre + "upstream_key_id"));
  if (!p.model.empty()) q.model = p.model;
  return q;
}

StatusOr<json::object> TrafficReport(store::Store& store, const TrafficReportQuery& q) {
  if (q.bucket_ms <= 0) return InvalidArgumentError("the bucket must be positive");
  store::TrafficQuery sq{.from_ms = q.from_ms,
                         .to_ms = q.to_ms,
                         .bucket_ms = q.bucket_ms,
                         .client_key_id = q.client_key_id,
                         .upstream_key_id = q.upstream_key_id,
                         .model = q.model};
  // Buckets on multiples of their size (UTC), so a report refreshed a little later draws the
  // same buckets, and minutes start on the minute.
  const int64_t rem = sq.from_ms % q.bucket_ms;
  sq.from_ms -= rem < 0 ? rem + q.bucket_ms : rem;
  if (!q.pool.empty()) {
    KG_ASSIGN_OR_RETURN(store::Pool pool, store.GetPool(q.pool));
    sq.pool_id = pool.id;
  }
  KG_ASSIGN_OR_RETURN(std::vector<store::TrafficBucket> rows, store.TrafficSeries(sq));

  json::array buckets;
  store::TrafficBucket total;
  size_t next = 0;  // the next stored (non-empty) bucket
  for (int64_t start = sq.from_ms; start < sq.to_ms; start += q.bucket_ms) {
    store::TrafficBucket b;
    if (next < rows.size() && rows[next].start_ms == start) b = rows[next++];
    b.start_ms = start;
    total.Add(b);
    json::object o{{"start", FormatTimeMs(start)}, {"start_ms", start}};
    PutFigures(o, b);
    buckets.push_back(std::move(o));
  }
  json::object total_doc;
  PutFigures(total_doc, total);
  return json::object{
      {"from", FormatTimeMs(sq.from_ms)},
      {"from_ms", sq.from_ms},
      {"to", FormatTimeMs(sq.to_ms)},
      {"to_ms", sq.to_ms},
      {"bucket_ms", q.bucket_ms},
      {"pool", q.pool.empty() ? json::value(nullptr) : json::value(q.pool)},
      {"client_key_id", OptJson(q.client_key_id)},
      {"upstream_key_id", OptJson(q.upstream_key_id)},
      {"model", q.model ? json::value(*q.model) : json::value(nullptr)},
      {"buckets", std::move(buckets)},
      {"total", std::move(total_doc)},
  };
}

}  // namespace keygate::ops
