#include "cli/store_open.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "common/strings.h"

namespace keygate::cli {

namespace {

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? std::string() : std::string(v);
}

constexpr int kDefaultBusyTimeoutMs = 10000;

}  // namespace

std::string DefaultStoreUrl() {
  std::string url = Env("KEYGATE_STORE");
  return url.empty() ? "keygate.db" : url;
}

StatusOr<CliStore> OpenCliStore(const std::string& url, bool may_create, std::ostream& err) {
  if (Trim(url).empty()) return InvalidArgumentError("--store must not be empty");
  const bool postgres = store::IsPostgresUrl(url);
  const std::string db_path = store::SqlitePath(url);
  std::error_code ec;
  const bool db_exists = !postgres && std::filesystem::exists(db_path, ec);
  if (!postgres && !db_exists && !may_create) {
    return NotFoundError("no keygate store at " + db_path +
                         " (commands that write, such as `keygate pool create`, create one)");
  }

  // Where the master key comes from (see the header).
  std::string env_key = Env("KEYGATE_MASTER_KEY");
  std::string key_file = Env("KEYGATE_MASTER_KEY_FILE");
  bool allow_create = false;
  if (env_key.empty() && key_file.empty()) {
    if (postgres) {
      return FailedPreconditionError(
          "a PostgreSQL store needs its master key in KEYGATE_MASTER_KEY (64 hex characters) or "
          "in the file named by KEYGATE_MASTER_KEY_FILE");
    }
    key_file = db_path + ".masterkey";
    // A fresh key only for a fresh store: for an existing store a new key could never decrypt
    // what is stored, so a missing key file is an error.
    allow_create = !db_exists;
  }
  KG_ASSIGN_OR_RETURN(MasterKeySource source,
                      LoadOrCreateMasterKey(env_key, key_file, allow_create));

  store::StoreOptions options;
  options.url = url;
  options.secrets = std::make_shared<const SecretBox>(source.key);
  options.max_connections = 2;
  options.busy_timeout_ms = kDefaultBusyTimeoutMs;
  if (std::string t = Env("KEYGATE_SQLITE_BUSY_TIMEOUT_MS"); !t.empty()) {
    auto ms = ParseInt64(t);
    if (!ms || *ms < 0 || *ms > 3'600'000) {
      return InvalidArgumentError("KEYGATE_SQLITE_BUSY_TIMEOUT_MS must be 0..3600000 (ms)");
    }
    options.busy_timeout_ms = static_cast<int>(*ms);
  }
  auto opened = store::OpenStore(options);
  if (!opened.ok()) {
    // Do not leave a key file behind for a store that was never created.
    if (source.created && !std::filesystem::exists(db_path, ec)) ::unlink(key_file.c_str());
    return opened.status();
  }
  if (source.created) {
    err << "keygate: *******************************************************************\n"
        << "keygate: A NEW MASTER KEY was created at " << key_file << " (mode 0600).\n"
        << "keygate: It encrypts every upstream key and proxy password in this store.\n"
        << "keygate: BACK IT UP NOW: without it the stored keys cannot be decrypted.\n"
        << "keygate: (or manage it yourself: KEYGATE_MASTER_KEY / KEYGATE_MASTER_KEY_FILE)\n"
        << "keygate: *******************************************************************\n";
  }
  return CliStore{std::move(opened).value(), std::move(options.secrets)};
}

}  // namespace keygate::cli
