// The admin API under /admin/v1 (docs/admin-api.md): everything an operator does with the CLI,
// over authenticated JSON. Handlers are plain functions of a request to a response; they call the
// same operations as the CLI (ops/ops.h) and write every change to the audit log.
//
// Authentication: `Authorization: Bearer <admin key>`. The key is hashed with the admin subkey
// (never the client-key one) and compared in constant time with every stored admin key hash, so
// client keys never open the admin API and the comparison time does not depend on the secret.
// Keys are re-read from the store on each request: a key deleted on one instance stops working on
// every instance at once.
//
// Errors have one shape: {"error": {"status": 404, "code": "not_found", "message": "…"}}.
// Nothing in a response, log line or audit record holds a secret whole (masked keys only); the
// admin key itself is shown once, by `keygate admin-key create`.
//
// CORS is off unless origins are configured ([admin] cors_origins): an allowed Origin gets
// Access-Control-Allow-Origin echoed back (never `*`, never credentials: the Bearer header is
// the credential).
//
// Thread safety: AdminApi is immutable after construction; Handle() may run on many threads at
// once. Handle() blocks on the store: call it on a store thread (Serve does).
#ifndef KEYGATE_ADMIN_ADMIN_H_
#define KEYGATE_ADMIN_ADMIN_H_

#include <boost/asio/awaitable.hpp>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "common/task_pool.h"
#include "config/config.h"
#include "http/server.h"
#include "secrets/secrets.h"
#include "store/store.h"

namespace keygate::admin {

inline constexpr std::string_view kPrefix = "/admin/";

// True for paths the admin API answers (everything under /admin/).
bool IsAdminPath(std::string_view path);

struct Response {
  int status = 200;
  http::Headers headers;
  std::string body;
};

// The one error document: {"error":{"status":…,"code":"…","message":"…"}}.
std::string ErrorJson(int status, std::string_view message);

struct Deps {
  store::Store* store = nullptr;
  const SecretBox* secrets = nullptr;
  const Clock* clock = nullptr;
  // The running config (pool budgets for spend against budget); may be null in tests.
  std::shared_ptr<const config::Config> config;
  // Reloads the config file, as SIGHUP does. Returns the error when it was not reloaded.
  std::function<Status()> reload;
  // Called after every change that succeeded, so this instance refreshes its pool views and
  // client keys at once (a new client key works on the next request); other instances see the
  // change at their next refresh. May be empty.
  std::function<void()> changed;
};

struct Options {
  std::vector<std::string> cors_origins;  // exact origins ("https://ops.example.com")
};

class AdminApi {
 public:
  AdminApi(Deps deps, Options options);

  // Answers one request under /admin/ (OPTIONS preflights included). Never throws.
  Response Handle(const http::Request& request) const;

 private:
  Deps d_;
  Options options_;
};

// Runs `api.Handle(request)` on `pool` (a store thread) and sends the response on the calling
// coroutine's connection. Answers 503 when the pool is stopping.
boost::asio::awaitable<void> Serve(const AdminApi& api, TaskPool& pool,
                                   const http::Request& request, http::ResponseWriter& writer);

}  // namespace keygate::admin

#endif  // KEYGATE_ADMIN_ADMIN_H_
