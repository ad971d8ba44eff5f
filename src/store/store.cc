#include "store/store.h"

#include <algorithm>
#include <cmath>

#include "store/postgres/pg_driver.h"
#include "store/sql/sql_store.h"
#include "store/sqlite/sqlite_driver.h"

namespace keygate::store {

std::string_view KeyStateName(KeyState state) {
  switch (state) {
    case KeyState::kActive: return "active";
    case KeyState::kBackup: return "backup";
    case KeyState::kCooling: return "cooling";
    case KeyState::kExhausted: return "exhausted";
    case KeyState::kRetired: return "retired";
  }
  return "unknown";
}

std::optional<KeyState> ParseKeyState(std::string_view name) {
  for (KeyState s : kAllKeyStates) {
    if (KeyStateName(s) == name) return s;
  }
  return std::nullopt;
}

int64_t& StateCounts::operator[](KeyState s) {
  switch (s) {
    case KeyState::kActive: return active;
    case KeyState::kBackup: return backup;
    case KeyState::kCooling: return cooling;
    case KeyState::kExhausted: return exhausted;
    case KeyState::kRetired: return retired;
  }
  return retired;
}

std::string_view RotateOutcomeName(const RotateOutcome& o) {
  struct Namer {
    std::string_view operator()(const Rotated&) const { return "rotated"; }
    std::string_view operator()(const AlreadyRotated&) const { return "already_rotated"; }
    std::string_view operator()(const NoBackup&) const { return "no_backup"; }
  };
  return std::visit(Namer{}, o);
}

void LatencyHistogram::Add(const LatencyHistogram& other) {
  count += other.count;
  sum_ms += other.sum_ms;
  max_ms = std::max(max_ms, other.max_ms);
  for (size_t i = 0; i < kTrafficBounds; ++i) below[i] += other.below[i];
}

double LatencyHistogram::AverageMs() const {
  return count > 0 ? static_cast<double>(sum_ms) / static_cast<double>(count) : 0.0;
}

double LatencyHistogram::Percentile(double q) const {
  if (count <= 0) return 0.0;
  q = std::clamp(q, 0.0, 1.0);
  // The nearest rank (1-based); the epsilon keeps 0.95 * 100 at 95, not 96.
  const int64_t rank =
      std::max<int64_t>(1, static_cast<int64_t>(std::ceil(q * static_cast<double>(count) - 1e-9)));
  int64_t before = 0;  // values below the current bucket
  double lower = 0.0;  // the current bucket's lower bound
  for (size_t i = 0; i <= kTrafficBounds; ++i) {
    const bool open = i == kTrafficBounds;
    const int64_t upto = open ? count : below[i];
    // The open bucket ends at the largest value seen.
    const double upper = open ? std::max(lower, static_cast<double>(max_ms))
                              : static_cast<double>(kTrafficBoundsMs[i]);
    if (upto >= rank && upto > before) {
      const double within = static_cast<double>(rank - before) / static_cast<double>(upto - before);
      return std::min(lower + (upper - lower) * within, static_cast<double>(max_ms));
    }
    before = upto;
    lower = upper;
  }
  return static_cast<double>(max_ms);
}

void TrafficBucket::Add(const TrafficBucket& other) {
  requests += other.requests;
  errors_4xx += other.errors_4xx;
  errors_5xx += other.errors_5xx;
  no_answer += other.no_answer;
  input_tokens += other.input_tokens;
  output_tokens += other.output_tokens;
  cost_micros += other.cost_micros;
  latency.Add(other.latency);
  ttfb.Add(other.ttfb);
}

bool IsPostgresUrl(std::string_view url) {
  return url.starts_with("postgres://") || url.starts_with("postgresql://");
}

std::string SqlitePath(std::string_view url) {
  if (IsPostgresUrl(url)) return {};
  if (url.starts_with("sqlite://")) return std::string(url.substr(9));
  if (url.starts_with("sqlite:")) return std::string(url.substr(7));
  return std::string(url);
}

StatusOr<std::unique_ptr<Store>> OpenStore(const StoreOptions& options) {
  std::unique_ptr<sql::Driver> driver;
  if (IsPostgresUrl(options.url)) {
    driver = postgres::NewPostgresDriver(options.url);
  } else {
    std::string path = SqlitePath(options.url);
    if (path.empty()) return InvalidArgumentError("empty store path");
    driver = sqlite::NewSqliteDriver(path, options.busy_timeout_ms, options.read_only);
  }
  return sql::NewSqlStore(std::move(driver), options);
}

}  // namespace keygate::store
