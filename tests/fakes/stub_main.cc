// upstream_stub: the test upstream as a standalone process (for SDK tests and benchmarks).
//   upstream_stub [--port N]   prints "listening on PORT" and serves until SIGTERM/SIGINT.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "tests/fakes/upstream_stub.h"

int main(int argc, char** argv) {
  uint16_t port = 0;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--port") == 0) port = static_cast<uint16_t>(std::atoi(argv[i + 1]));
  }
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  keygate::testing::UpstreamStub stub;
  if (!stub.Start(port)) {
    std::fprintf(stderr, "upstream_stub: cannot listen on port %u\n", port);
    return 1;
  }
  std::printf("listening on %u\n", stub.port());
  std::fflush(stdout);
  int sig = 0;
  sigwait(&set, &sig);
  stub.Stop();
  return 0;
}
