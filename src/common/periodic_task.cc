#include "common/periodic_task.h"

#include <random>

#include "common/thread_name.h"

namespace keygate {

PeriodicTask::PeriodicTask(std::string name, std::chrono::milliseconds period,
                           std::function<void()> job, double jitter)
    : name_(std::move(name)), period_(period), job_(std::move(job)), jitter_(jitter) {}

PeriodicTask::~PeriodicTask() { Stop(); }

void PeriodicTask::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  stopping_ = false;
  thread_ = std::thread([this] {
    NameThisThread("kg-" + name_);
    Run();
  });
}

void PeriodicTask::Poke() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    poked_ = true;
  }
  cv_.notify_one();
}

void PeriodicTask::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

void PeriodicTask::Run() {
  std::mt19937_64 rng(std::random_device{}());
  std::uniform_real_distribution<double> spread(1.0 - jitter_, 1.0 + jitter_);
  while (true) {
    job_();
    std::unique_lock<std::mutex> lock(mu_);
    auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(period_ * spread(rng));
    cv_.wait_for(lock, wait, [&] { return stopping_ || poked_; });
    poked_ = false;
    if (stopping_) return;
  }
}

}  // namespace keygate
