#include "tests/race/process_group.h"

#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>

namespace keygate::testing {

namespace {

using Clock = std::chrono::steady_clock;

void CloseFd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

void MakePipe(int fds[2]) {
  if (::pipe(fds) != 0) {
    std::perror("pipe");
    std::abort();
  }
}

// Writes all of `data`, retrying on EINTR and short writes. False when the reader is gone.
bool WriteAll(int fd, const void* data, size_t n) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

// Waits until `fd` is readable or `deadline` passes. True when readable (or at EOF).
bool PollReadable(int fd, Clock::time_point deadline) {
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() < 0) return false;
    pollfd p{fd, POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(left.count()) + 1);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return false;
    if (r > 0) return true;
  }
}

// Reads up to `n` bytes before `deadline`. Returns the bytes read (fewer at EOF), or -1 on
// timeout or error.
ssize_t ReadFull(int fd, void* data, size_t n, Clock::time_point deadline) {
  char* p = static_cast<char*>(data);
  size_t got = 0;
  while (got < n) {
    if (!PollReadable(fd, deadline)) return -1;
    ssize_t r = ::read(fd, p + got, n - got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return -1;
    if (r == 0) break;  // EOF: every writer closed its end
    got += static_cast<size_t>(r);
  }
  return static_cast<ssize_t>(got);
}

}  // namespace

void ChildReport::AddError(std::string_view message) {
  if (errors++ == 0) {
    size_t n = std::min(message.size(), sizeof(first_error) - 1);
    std::memcpy(first_error, message.data(), n);
    first_error[n] = '\0';
  }
}

bool ChildContext::ArriveAndWait() {
  char byte = 'r';
  if (!WriteAll(ready_fd_, &byte, 1)) return false;
  // Blocks until the parent closes the write end: read() then returns 0 in every child at once.
  while (true) {
    ssize_t r = ::read(go_fd_, &byte, 1);
    if (r < 0 && errno == EINTR) continue;
    return r == 0;
  }
}

ProcessGroup::ProcessGroup() {
  MakePipe(ready_);
  MakePipe(go_);
  MakePipe(reports_);
}

ProcessGroup::~ProcessGroup() {
  for (size_t i = 0; i < pids_.size(); ++i) {
    if (statuses_[i] == -1) {
      ::kill(pids_[i], SIGKILL);
      int status = 0;
      while (::waitpid(pids_[i], &status, 0) < 0 && errno == EINTR) {
      }
    }
  }
  for (int* fds : {ready_, go_, reports_}) {
    CloseFd(fds[0]);
    CloseFd(fds[1]);
  }
}

int ProcessGroup::Spawn(const std::function<void(ChildContext&)>& body) {
  int index = static_cast<int>(pids_.size());
  // Flush before fork so buffered output is not printed twice (once by the child).
  std::fflush(stdout);
  std::fflush(stderr);
  pid_t pid = ::fork();
  if (pid < 0) {
    std::perror("fork");
    std::abort();
  }
  if (pid == 0) {
    // The child keeps only the ends it writes (ready, reports) and reads (go). Closing its copy
    // of go's write end matters: otherwise the go pipe never reaches EOF.
    ::close(ready_[0]);
    ::close(go_[1]);
    ::close(reports_[0]);
    int code = 0;
    ChildContext ctx(index, ready_[1], go_[0]);
    ctx.report().child = index;
    try {
      body(ctx);
      ctx.report().done = 1;
    } catch (const std::exception& e) {
      ctx.report().AddError(std::string("exception: ") + e.what());
      code = 3;
    } catch (...) {
      ctx.report().AddError("unknown exception");
      code = 3;
    }
    WriteAll(reports_[1], &ctx.report(), sizeof(ChildReport));
    // _exit, not exit or return: no gtest teardown, no atexit handlers, no LeakSanitizer pass
    // over memory the parent owns, no flushing of stdio buffers inherited from the parent.
    ::_exit(code);
  }
  pids_.push_back(pid);
  statuses_.push_back(-1);
  return index;
}

void ProcessGroup::CloseParentWriteEnds() {
  if (write_ends_closed_) return;
  // Once only the children hold the write ends, EOF on ready/reports means "every child is gone".
  CloseFd(ready_[1]);
  CloseFd(reports_[1]);
  CloseFd(go_[0]);
  write_ends_closed_ = true;
}

Status ProcessGroup::WaitReady(std::chrono::milliseconds timeout) {
  CloseParentWriteEnds();
  auto deadline = Clock::now() + timeout;
  std::vector<char> bytes(pids_.size());
  ssize_t got = ReadFull(ready_[0], bytes.data(), bytes.size(), deadline);
  if (got < 0) return UnavailableError("children did not reach the barrier in time");
  if (static_cast<size_t>(got) < pids_.size()) {
    return InternalError("only " + std::to_string(got) + " of " + std::to_string(pids_.size()) +
                         " children reached the barrier (the others died)");
  }
  return OkStatus();
}

void ProcessGroup::Release() { CloseFd(go_[1]); }

StatusOr<std::vector<ChildReport>> ProcessGroup::CollectReports(std::chrono::milliseconds timeout) {
  CloseParentWriteEnds();
  auto deadline = Clock::now() + timeout;
  std::vector<ChildReport> out;
  while (true) {
    ChildReport r;
    ssize_t got = ReadFull(reports_[0], &r, sizeof(r), deadline);
    if (got < 0) return UnavailableError("children did not finish in time");
    if (got == 0) return out;  // EOF
    if (static_cast<size_t>(got) != sizeof(r)) return InternalError("torn child report");
    out.push_back(r);
  }
}

bool ProcessGroup::AllExited() {
  bool all = true;
  for (size_t i = 0; i < pids_.size(); ++i) {
    if (statuses_[i] != -1) continue;
    int status = 0;
    pid_t r = ::waitpid(pids_[i], &status, WNOHANG);
    if (r == pids_[i]) {
      statuses_[i] = status;
    } else {
      all = false;
    }
  }
  return all;
}

Status ProcessGroup::WaitAll(std::chrono::milliseconds timeout) {
  CloseParentWriteEnds();
  auto deadline = Clock::now() + timeout;
  Status result;
  // Every child holds the report pipe's write end until it exits (or is killed), so EOF on the
  // read end means every child is gone; unread reports are discarded on the way.
  char sink[sizeof(ChildReport)];
  while (true) {
    ssize_t got = ReadFull(reports_[0], sink, sizeof(sink), deadline);
    if (got == 0) break;
    if (got < 0) {
      result = UnavailableError("children did not exit in time; killed them");
      for (size_t i = 0; i < pids_.size(); ++i) Kill(static_cast<int>(i));
      break;
    }
  }
  // All exited or SIGKILLed: these waits return at once.
  for (size_t i = 0; i < pids_.size(); ++i) {
    if (statuses_[i] != -1) continue;
    int status = 0;
    while (::waitpid(pids_[i], &status, 0) < 0 && errno == EINTR) {
    }
    statuses_[i] = status;
  }
  return result;
}

void ProcessGroup::Kill(int index) {
  if (statuses_[index] == -1) ::kill(pids_[index], SIGKILL);
}

std::string ProcessGroup::DescribeWaitStatus(int status) {
  if (status == -1) return "still running";
  if (WIFEXITED(status)) return "exited with code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "killed by signal " + std::to_string(WTERMSIG(status));
  return "stopped (status " + std::to_string(status) + ")";
}

void* MapShared(size_t bytes) {
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    std::perror("mmap");
    std::abort();
  }
  return p;
}

void UnmapShared(void* p, size_t bytes) { ::munmap(p, bytes); }

}  // namespace keygate::testing
