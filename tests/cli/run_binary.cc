#include "tests/cli/run_binary.h"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

extern char** environ;

namespace keygate::testing {

namespace {

constexpr const char* kScrubbed[] = {"KEYGATE_STORE", "KEYGATE_MASTER_KEY",
                                     "KEYGATE_MASTER_KEY_FILE", "KEYGATE_SQLITE_BUSY_TIMEOUT_MS"};

std::vector<std::string> ChildEnv(const RunOptions& options) {
  std::map<std::string, std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string kv(*e);
    size_t eq = kv.find('=');
    if (eq == std::string::npos) continue;
    env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  for (const char* name : kScrubbed) env.erase(name);
  for (const auto& [k, v] : options.env) {
    if (v.empty()) {
      env.erase(k);
    } else {
      env[k] = v;
    }
  }
  std::vector<std::string> out;
  for (const auto& [k, v] : env) out.push_back(k + "=" + v);
  return out;
}

// In the child after fork: only async-signal-safe calls until exec.
[[noreturn]] void ExecChild(const std::string& binary, const std::vector<std::string>& args,
                            const RunOptions& options, char** argv, char** envp) {
  if (!options.cwd.empty() && ::chdir(options.cwd.c_str()) != 0) _exit(126);
  if (options.run_as_uid) {
    gid_t gid = *options.run_as_uid;
    if (::setgroups(0, nullptr) != 0 || ::setgid(gid) != 0 || ::setuid(*options.run_as_uid) != 0) {
      _exit(126);
    }
  }
  ::execve(binary.c_str(), argv, envp);
  _exit(127);
}

struct Argv {
  std::vector<std::string> storage;
  std::vector<char*> ptrs;
  Argv(std::vector<std::string> s) : storage(std::move(s)) {
    for (auto& x : storage) ptrs.push_back(x.data());
    ptrs.push_back(nullptr);
  }
};

int DecodeStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

}  // namespace

int WaitForExit(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  return DecodeStatus(status);
}

RunResult RunBinary(const std::string& binary, const std::vector<std::string>& args,
                    const RunOptions& options) {
  auto start = std::chrono::steady_clock::now();
  std::vector<std::string> argv_s{binary};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  Argv argv(argv_s);
  Argv envp(ChildEnv(options));
  int in[2], out[2], err[2];
  if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0 ||
      ::pipe2(err, O_CLOEXEC) != 0) {
    return {};
  }
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(in[0], 0);
    ::dup2(out[1], 1);
    ::dup2(err[1], 2);
    ExecChild(binary, args, options, argv.ptrs.data(), envp.ptrs.data());
  }
  ::close(in[0]);
  ::close(out[1]);
  ::close(err[1]);
  ::signal(SIGPIPE, SIG_IGN);
  RunResult result;
  size_t written = 0;
  int in_fd = in[1];
  if (options.stdin_data.empty()) {
    ::close(in_fd);
    in_fd = -1;
  }
  bool out_open = true, err_open = true;
  char buf[65536];
  while (out_open || err_open) {
    pollfd fds[3];
    int n = 0;
    int out_i = -1, err_i = -1, in_i = -1;
    if (out_open) { fds[n] = {out[0], POLLIN, 0}; out_i = n++; }
    if (err_open) { fds[n] = {err[0], POLLIN, 0}; err_i = n++; }
    if (in_fd >= 0) { fds[n] = {in_fd, POLLOUT, 0}; in_i = n++; }
    if (::poll(fds, n, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    auto drain = [&](int idx, int fd, std::string& sink, bool& open) {
      if (idx < 0 || fds[idx].revents == 0) return;
      ssize_t r = ::read(fd, buf, sizeof buf);
      if (r > 0) {
        sink.append(buf, r);
      } else if (r == 0 || errno != EINTR) {
        open = false;
      }
    };
    drain(out_i, out[0], result.out, out_open);
    drain(err_i, err[0], result.err, err_open);
    if (in_i >= 0 && fds[in_i].revents != 0) {
      ssize_t w = ::write(in_fd, options.stdin_data.data() + written,
                          options.stdin_data.size() - written);
      if (w > 0) written += w;
      if (w < 0 || written == options.stdin_data.size()) {
        ::close(in_fd);
        in_fd = -1;
      }
    }
  }
  if (in_fd >= 0) ::close(in_fd);
  ::close(out[0]);
  ::close(err[0]);
  result.exit_code = WaitForExit(pid);
  result.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

pid_t StartBinary(const std::string& binary, const std::vector<std::string>& args,
                  const RunOptions& options, int* stderr_fd) {
  std::vector<std::string> argv_s{binary};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  Argv argv(argv_s);
  Argv envp(ChildEnv(options));
  int err[2];
  if (::pipe2(err, O_CLOEXEC) != 0) return -1;
  pid_t pid = ::fork();
  if (pid == 0) {
    int devnull = ::open("/dev/null", O_RDWR);
    ::dup2(devnull, 0);
    ::dup2(devnull, 1);
    ::dup2(err[1], 2);
    ExecChild(binary, args, options, argv.ptrs.data(), envp.ptrs.data());
  }
  ::close(err[1]);
  *stderr_fd = err[0];
  return pid;
}

}  // namespace keygate::testing
