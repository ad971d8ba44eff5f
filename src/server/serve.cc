#include "server/serve.h"

#include <signal.h>

#include <cerrno>
#include <cstring>

#include "common/strings.h"

namespace keygate::server {

namespace {

sigset_t ShutdownSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  return set;
}

Status CheckListen(std::string_view listen) {
  size_t colon = listen.rfind(':');
  if (colon == std::string_view::npos || colon == 0) {
    return InvalidArgumentError("--listen must be HOST:PORT (e.g. 127.0.0.1:8080)");
  }
  auto port = ParseInt64(listen.substr(colon + 1));
  if (!port || *port < 0 || *port > 65535) {
    return InvalidArgumentError("--listen: the port must be 0..65535");
  }
  return OkStatus();
}

}  // namespace

void BlockShutdownSignals() {
  sigset_t set = ShutdownSignals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

Status Serve(store::Store& store, const ServeOptions& options, std::ostream& err) {
  KG_RETURN_IF_ERROR(CheckListen(options.listen));
  KG_ASSIGN_OR_RETURN(int64_t schema, store.SchemaVersion());
  KG_ASSIGN_OR_RETURN(std::vector<store::Pool> pools, store.ListPools());
  int64_t active = 0;
  for (const store::Pool& pool : pools) {
    KG_ASSIGN_OR_RETURN(store::StateCounts counts, store.CountKeys(pool.id));
    active += counts.active;
  }
  err << "keygate: store " << store.Describe() << " ready (schema v" << schema << ", "
      << pools.size() << (pools.size() == 1 ? " pool, " : " pools, ") << active
      << (active == 1 ? " active key" : " active keys")
      << "); the data plane is not implemented yet (issue 3), --listen " << options.listen
      << " is noted but not opened — waiting for SIGINT/SIGTERM" << std::endl;

  sigset_t set = ShutdownSignals();
  // The caller blocked these before starting threads; block again in case it did not, so the
  // signal is queued for sigwait rather than killing the process.
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  while (true) {
    int sig = 0;
    int rc = sigwait(&set, &sig);
    if (rc == 0) {
      err << "keygate: received " << (sig == SIGINT ? "SIGINT" : "SIGTERM") << ", stopping"
          << std::endl;
      return OkStatus();
    }
    if (rc != EINTR) return InternalError(std::string("sigwait: ") + std::strerror(rc));
  }
}

}  // namespace keygate::server
