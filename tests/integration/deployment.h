// A keygate deployment made of real processes, the way an operator runs it: the upstream stub
// binary (or an in-process UpstreamStub), `keygate serve` started from the real binary with a
// config file, and `keygate` CLI commands on the same store for pools, keys and client keys.
//
// Every process is a ChildProcess: killed (SIGKILL) when its object dies, and when the test
// process dies. Every wait is bounded.
//
// Thread safety: none; use from the test's main thread (client threads only talk HTTP).
#ifndef KEYGATE_TESTS_INTEGRATION_DEPLOYMENT_H_
#define KEYGATE_TESTS_INTEGRATION_DEPLOYMENT_H_

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tests/cli/run_binary.h"
#include "tests/testing/child_process.h"

namespace keygate::testing {

// Paths of the binaries under test (compile definitions of the test target).
const char* KeygateBin();
const char* StubBin();

// Runs `keygate --store URL args...` with the test master key; returns what it did.
RunResult Cli(const std::string& store_url, const std::vector<std::string>& args,
              const std::string& stdin_data = "");
// Like Cli(), but a failure (exit code != 0) fails the current test (ADD_FAILURE) with the output.
RunResult MustCli(const std::string& store_url, const std::vector<std::string>& args,
                  const std::string& stdin_data = "");
// `keygate clients create NAME`: the client key it printed (kg-<64 hex>), or "" (test failed).
std::string CreateClientKey(const std::string& store_url, const std::string& name);

// The upstream stub binary (tests/fakes/stub_main.cc) on a free port of 127.0.0.1.
class StubProcess {
 public:
  // Starts it and waits until it accepts connections. Check ok().
  explicit StubProcess(const std::string& log_path);
  bool ok() const { return ok_; }
  uint16_t port() const { return port_; }
  std::string base_url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::string Log() const { return child_->Log(); }

 private:
  uint16_t port_ = 0;
  bool ok_ = false;
  std::unique_ptr<ChildProcess> child_;
};

// `keygate --store URL serve --config FILE --listen 127.0.0.1:PORT` on a free port.
class KeygateProcess {
 public:
  // Starts it and waits (up to `ready_timeout`) for the "keygate: listening on" line. Check ok();
  // Log() says why it is not.
  KeygateProcess(const std::string& store_url, const std::string& config_path,
                 const std::string& log_path,
                 std::chrono::milliseconds ready_timeout = std::chrono::seconds(60));
  bool ok() const { return ok_; }
  pid_t pid() const { return child_->pid(); }
  uint16_t port() const { return port_; }
  std::string base_url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::string Log() const { return child_->Log(); }
  bool running() { return child_->running(); }
  void Signal(int sig) { child_->Signal(sig); }
  // The exit code (128+signal when killed), or -1 when it is still running after `timeout`.
  int Wait(std::chrono::milliseconds timeout) { return child_->Wait(timeout); }

 private:
  uint16_t port_ = 0;
  bool ok_ = false;
  std::unique_ptr<ChildProcess> child_;
};

// The config file text every integration test starts from: two providers pointing at
// `upstream_base_url` — `stub` (OpenAI format, Bearer) and `anth` (Anthropic format, x-api-key,
// anthropic-version) —, the pools `main` (stub) and `claude` (anth), and the models
//   gpt-sdk (alias gpt-sdk-alias) and embed-sdk on `main`, claude-sdk on `claude`.
// `server_extra` lines go into [server], `store_extra` into [store]; `models_extra` is appended.
std::string ConfigText(const std::string& upstream_base_url, const std::string& server_extra = "",
                       const std::string& store_extra = "", const std::string& models_extra = "");

// Writes `text` to `path` (replacing it). False on an I/O error.
bool WriteFile(const std::string& path, const std::string& text);

// The resident set size of process `pid` in KiB (VmRSS of /proc/PID/status), or -1.
int64_t RssKiB(pid_t pid);

// A Prometheus sample of `metrics` text: the value of the line that starts with `series` (the
// metric name with its labels, exactly as rendered), or -1 when there is none.
double MetricValue(const std::string& metrics, const std::string& series);

}  // namespace keygate::testing

#endif  // KEYGATE_TESTS_INTEGRATION_DEPLOYMENT_H_
