#include "store/store.h"

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
