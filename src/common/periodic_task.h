// A background job run every `period` (with ±jitter) on its own thread, until Stop(). Stop() is
// called by the owner before the things the job touches are destroyed; RunOnceForTest() runs one
// step on the caller's thread.
//
// Thread safety: Start/Stop from the owner thread; the job runs on the task's thread only.
#ifndef KEYGATE_COMMON_PERIODIC_TASK_H_
#define KEYGATE_COMMON_PERIODIC_TASK_H_

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace keygate {

class PeriodicTask {
 public:
  // `jitter` is a fraction of the period (0.1 = ±10 %).
  PeriodicTask(std::string name, std::chrono::milliseconds period, std::function<void()> job,
               double jitter = 0.1);
  ~PeriodicTask();  // Stop()

  void Start();
  // Wakes the task now instead of at the end of its period.
  void Poke();
  // Waits for a running step to end and joins. Idempotent.
  void Stop();
  void RunOnceForTest() { job_(); }

 private:
  void Run();

  std::string name_;
  std::chrono::milliseconds period_;
  std::function<void()> job_;
  double jitter_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;  // GUARDED_BY(mu_)
  bool poked_ = false;     // GUARDED_BY(mu_)
  std::thread thread_;
};

}  // namespace keygate

#endif  // KEYGATE_COMMON_PERIODIC_TASK_H_
