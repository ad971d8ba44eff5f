// Clock: the only source of "now" for keygate code, so tests can inject time.
//
// Thread safety: all implementations are safe to call from any thread.
#ifndef KEYGATE_COMMON_CLOCK_H_
#define KEYGATE_COMMON_CLOCK_H_

#include <atomic>
#include <cstdint>

namespace keygate {

class Clock {
 public:
  virtual ~Clock() = default;
  // Wall-clock time in milliseconds since the Unix epoch.
  virtual int64_t NowMs() const = 0;
};

// The system clock. RealClock::Get() lives forever.
class RealClock : public Clock {
 public:
  static const Clock& Get();
  int64_t NowMs() const override;
};

// A clock that moves only when told (tests).
class ManualClock : public Clock {
 public:
  explicit ManualClock(int64_t now_ms = 1'700'000'000'000) : now_ms_(now_ms) {}
  int64_t NowMs() const override { return now_ms_.load(std::memory_order_relaxed); }
  void AdvanceMs(int64_t delta) { now_ms_.fetch_add(delta, std::memory_order_relaxed); }
  void SetMs(int64_t now) { now_ms_.store(now, std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> now_ms_;
};

}  // namespace keygate

#endif  // KEYGATE_COMMON_CLOCK_H_
