#include "common/clock.h"

#include <chrono>

namespace keygate {

const Clock& RealClock::Get() {
  static const RealClock clock;
  return clock;
}

int64_t RealClock::NowMs() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace keygate
