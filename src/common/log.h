// Logging: one line per event on stderr, "2026-11-28T01:02:03.004Z level message key=value …".
// Secrets never go in: callers pass masked keys (MaskSecret) and proxy display URLs.
//
// Thread safety: Log() may be called from any thread; lines are written whole.
#ifndef KEYGATE_COMMON_LOG_H_
#define KEYGATE_COMMON_LOG_H_

#include <string_view>

namespace keygate {

enum class LogLevel { kDebug, kInfo, kWarn, kError };

// Lines below this level are dropped. Default: kInfo (KEYGATE_LOG_LEVEL=debug|info|warn|error).
void SetLogLevel(LogLevel level);
bool LogEnabled(LogLevel level);
void Log(LogLevel level, std::string_view message);

}  // namespace keygate

#endif  // KEYGATE_COMMON_LOG_H_
