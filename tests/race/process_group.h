// Test support for multi-process races: a group of fork()ed children that are released together
// by one barrier made of pipes, report a fixed-size record back through a pipe, and can be killed
// at chosen moments. Waits are bounded by deadlines, never by sleeps.
//
// The barrier: every child writes one byte to the `ready` pipe and then blocks reading the `go`
// pipe. The parent reads one ready byte per child, then closes its (the only remaining) write end
// of `go`: every child's read() returns 0 (EOF) at once.
//
// Children must not use anything the parent had open (a Store, a database connection) and must
// end with _exit(), never by returning into gtest; ProcessGroup::Spawn does both.
//
// Thread safety: a ProcessGroup is used by one thread (the test's).
#ifndef KEYGATE_TESTS_RACE_PROCESS_GROUP_H_
#define KEYGATE_TESTS_RACE_PROCESS_GROUP_H_

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace keygate::testing {

// What a child tells the parent. Written with one write() of sizeof(ChildReport) bytes, below
// PIPE_BUF, so reports of concurrent children never interleave.
struct ChildReport {
  int32_t child = -1;  // the index given to Spawn's body
  int32_t done = 0;    // 1 when the body ran to its end (a report with 0 is never sent)
  int64_t rotated = 0;
  int64_t already_rotated = 0;
  int64_t no_backup = 0;
  int64_t errors = 0;
  int64_t last_new_key_id = 0;  // the new key of the last Rotated outcome
  char first_error[256] = {};   // the first error, truncated, NUL-terminated

  void AddError(std::string_view message);
};

// Handed to a child's body.
class ChildContext {
 public:
  ChildContext(int index, int ready_fd, int go_fd)
      : index_(index), ready_fd_(ready_fd), go_fd_(go_fd) {}
  int index() const { return index_; }
  // Tells the parent this child is ready and blocks until the parent releases the group.
  // Returns false when the parent went away (the child should then give up).
  bool ArriveAndWait();
  ChildReport& report() { return report_; }

 private:
  int index_;
  int ready_fd_;
  int go_fd_;
  ChildReport report_;
};

class ProcessGroup {
 public:
  ProcessGroup();
  // Kills (SIGKILL) and reaps every child still running, so a failed test leaves no orphans.
  ~ProcessGroup();
  ProcessGroup(const ProcessGroup&) = delete;
  ProcessGroup& operator=(const ProcessGroup&) = delete;

  // Forks a child that runs body(ctx), sends ctx.report() and _exit(0)s (exit code 3 when the
  // body threw). The body must call ctx.ArriveAndWait() exactly once. Returns the child's index.
  int Spawn(const std::function<void(ChildContext&)>& body);

  // Waits until every spawned child has called ArriveAndWait(). Unavailable on timeout, Internal
  // when a child died before arriving.
  Status WaitReady(std::chrono::milliseconds timeout);
  // Releases every child at once (closes the go pipe).
  void Release();
  // Reads reports until every child has closed its end of the report pipe (exited or was
  // killed). Children that died without reporting simply have no report.
  StatusOr<std::vector<ChildReport>> CollectReports(std::chrono::milliseconds timeout);
  // Reaps children that have exited, without blocking. True when none is left running.
  bool AllExited();
  // Blocks until every child has exited (SIGKILLs the rest after `timeout`, and says so).
  // Reports not collected before are discarded.
  Status WaitAll(std::chrono::milliseconds timeout);
  void Kill(int index);

  size_t size() const { return pids_.size(); }
  // The raw wait status of a reaped child (see waitpid(2)); -1 while it runs.
  int wait_status(int index) const { return statuses_[index]; }
  // "child 3 was killed by signal 9" style description of a wait status.
  static std::string DescribeWaitStatus(int status);

 private:
  void CloseParentWriteEnds();

  int ready_[2] = {-1, -1};
  int go_[2] = {-1, -1};
  int reports_[2] = {-1, -1};
  bool write_ends_closed_ = false;
  std::vector<pid_t> pids_;
  std::vector<int> statuses_;
};

// An array of T in memory shared (MAP_SHARED) between the parent and the children it forks
// afterwards, for facts a killed child can no longer report. T must be trivially copyable;
// use std::atomic members for anything written while others read.
template <typename T>
class SharedArray {
 public:
  explicit SharedArray(size_t n);
  ~SharedArray();
  SharedArray(const SharedArray&) = delete;
  SharedArray& operator=(const SharedArray&) = delete;
  T& operator[](size_t i) { return data_[i]; }
  size_t size() const { return n_; }

 private:
  T* data_;
  size_t n_;
};

// Maps shared anonymous memory; aborts when the kernel refuses (nothing sensible to do in a test).
void* MapShared(size_t bytes);
void UnmapShared(void* p, size_t bytes);

template <typename T>
SharedArray<T>::SharedArray(size_t n) : data_(static_cast<T*>(MapShared(sizeof(T) * n))), n_(n) {
  for (size_t i = 0; i < n_; ++i) new (&data_[i]) T();
}

template <typename T>
SharedArray<T>::~SharedArray() {
  for (size_t i = 0; i < n_; ++i) data_[i].~T();
  UnmapShared(data_, sizeof(T) * n_);
}

}  // namespace keygate::testing

#endif  // KEYGATE_TESTS_RACE_PROCESS_GROUP_H_
