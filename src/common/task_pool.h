// A fixed set of threads running posted tasks in FIFO order: where blocking calls (SQLite, libpq)
// run, never on an event-loop thread. Stop() runs what is queued, then joins.
//
// Thread safety: Post() from any thread; Stop() from the owner.
#ifndef KEYGATE_COMMON_TASK_POOL_H_
#define KEYGATE_COMMON_TASK_POOL_H_

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace keygate {

class TaskPool {
 public:
  explicit TaskPool(int threads);
  ~TaskPool();
  TaskPool(const TaskPool&) = delete;
  TaskPool& operator=(const TaskPool&) = delete;

  // Queues `task`. Returns false (and drops it) once Stop() has begun.
  bool Post(std::function<void()> task);
  // Runs every queued task, then joins the threads. Idempotent.
  void Stop();
  size_t queued() const;

 private:
  void Run();

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;  // GUARDED_BY(mu_)
  bool stopping_ = false;                     // GUARDED_BY(mu_)
  std::vector<std::thread> threads_;
};

}  // namespace keygate

#endif  // KEYGATE_COMMON_TASK_POOL_H_
