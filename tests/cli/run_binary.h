// Runs the real `keygate` binary (KEYGATE_BIN) as a child process, the way an operator does.
#ifndef KEYGATE_TESTS_CLI_RUN_BINARY_H_
#define KEYGATE_TESTS_CLI_RUN_BINARY_H_

#include <sys/types.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace keygate::testing {

struct RunOptions {
  // Added to (or, with an empty value, removed from) the child's environment. The child never
  // inherits KEYGATE_STORE, KEYGATE_MASTER_KEY, KEYGATE_MASTER_KEY_FILE or
  // KEYGATE_SQLITE_BUSY_TIMEOUT_MS from the test process: only what is given here.
  std::map<std::string, std::string> env;
  std::string stdin_data;
  std::string cwd;                  // "" = the test's working directory
  std::optional<uid_t> run_as_uid;  // drop to this uid/gid before exec (tests run as root)
};

struct RunResult {
  int exit_code = -1;  // the exit status, or 128 + signal when killed by one
  std::string out;
  std::string err;
  double seconds = 0;  // wall time
};

// Runs `binary args...` to completion, feeding stdin_data and capturing stdout and stderr.
RunResult RunBinary(const std::string& binary, const std::vector<std::string>& args,
                    const RunOptions& options = {});

// Starts `binary args...` with stderr on a pipe and returns at once; *stderr_fd is the read end.
pid_t StartBinary(const std::string& binary, const std::vector<std::string>& args,
                  const RunOptions& options, int* stderr_fd);
// Waits for `pid`; returns the exit code as RunResult::exit_code does.
int WaitForExit(pid_t pid);

}  // namespace keygate::testing

#endif  // KEYGATE_TESTS_CLI_RUN_BINARY_H_
