// `keygate serve`, until the data plane lands (issue 3): opens the store, says what it found and
// that the gateway is not implemented yet, then waits for SIGINT or SIGTERM and returns.
//
// Signals: BlockShutdownSignals() must run before any thread is started (the store may start
// some) so that every thread inherits the mask and sigwait() in Serve() is the only receiver.
//
// Thread safety: call from the main thread only.
#ifndef KEYGATE_SERVER_SERVE_H_
#define KEYGATE_SERVER_SERVE_H_

#include <ostream>
#include <string>

#include "common/status.h"
#include "store/store.h"

namespace keygate::server {

struct ServeOptions {
  std::string listen = "127.0.0.1:8080";  // HOST:PORT; accepted, not yet used
};

// Blocks SIGINT and SIGTERM in the calling thread (and the threads it starts later).
void BlockShutdownSignals();

// Checks `options`, reports the store to `err` in one line, then blocks until SIGINT or SIGTERM
// arrives. Returns OK on a clean shutdown; InvalidArgument for a malformed --listen; a storage
// error when the store cannot be summarized.
Status Serve(store::Store& store, const ServeOptions& options, std::ostream& err);

}  // namespace keygate::server

#endif  // KEYGATE_SERVER_SERVE_H_
