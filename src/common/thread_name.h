// Names the calling thread for ps/top -H, perf and /proc/PID/task/TID/comm ("kg-worker-0",
// "kg-usage", ...). Linux keeps 15 bytes; longer names are cut.
//
// Thread safety: affects only the calling thread.
#ifndef KEYGATE_COMMON_THREAD_NAME_H_
#define KEYGATE_COMMON_THREAD_NAME_H_

#include <string_view>

namespace keygate {

void NameThisThread(std::string_view name);

}  // namespace keygate

#endif  // KEYGATE_COMMON_THREAD_NAME_H_
