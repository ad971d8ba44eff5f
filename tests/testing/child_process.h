// A real child process for tests (proxies, the keygate binary, the upstream stub binary):
// fork/exec with stdout+stderr to a file, SIGKILL (or a chosen signal) on destruction. The child
// also gets SIGKILL when the thread that started it ends (PR_SET_PDEATHSIG), so a crashed or
// timed-out test leaves nothing behind: start children from the test's main thread.
#ifndef KEYGATE_TESTS_TESTING_CHILD_PROCESS_H_
#define KEYGATE_TESTS_TESTING_CHILD_PROCESS_H_

#include <sys/types.h>

#include <chrono>
#include <map>
#include <string>
#include <vector>

namespace keygate::testing {

class ChildProcess {
 public:
  // Starts argv[0] (a path) with `argv`; output goes to `log_path`; `env` entries are added to
  // (or replace in) the environment.
  ChildProcess(std::vector<std::string> argv, std::string log_path,
               std::map<std::string, std::string> env = {});
  ~ChildProcess();  // SIGKILL + reap, if still running
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  bool running();
  void Signal(int sig);
  // Waits for exit; returns the exit code (128+signal when killed), or -1 on timeout.
  int Wait(std::chrono::milliseconds timeout);
  std::string Log() const;  // what it printed so far

 private:
  pid_t pid_ = -1;
  std::string log_path_;
  int status_ = -1;
  bool reaped_ = false;
};

// Waits until something accepts TCP connections on 127.0.0.1:`port`.
bool WaitForPort(uint16_t port, std::chrono::milliseconds timeout);
// A port that was free a moment ago (bind to 0, read it, close).
uint16_t FreePort();

// A loopback port that refuses connections for as long as this object lives: it is bound (so no
// other process can listen on it and the kernel never picks it as a connection's source port,
// which could make a connection to it connect to itself) but never listens. Use it for "a dead
// server": FreePort() can be taken by someone else between the pick and the use.
class ClosedPort {
 public:
  ClosedPort();
  ~ClosedPort();
  ClosedPort(const ClosedPort&) = delete;
  ClosedPort& operator=(const ClosedPort&) = delete;
  uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};
// Waits until `pred()` holds, polling every 5 ms; false on timeout.
template <typename Pred>
bool WaitFor(Pred pred, std::chrono::milliseconds timeout);

}  // namespace keygate::testing

#include <thread>

template <typename Pred>
bool keygate::testing::WaitFor(Pred pred, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

#endif  // KEYGATE_TESTS_TESTING_CHILD_PROCESS_H_
