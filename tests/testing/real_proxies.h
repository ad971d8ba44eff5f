// Real egress proxies from Debian for tests: tinyproxy (HTTP CONNECT with Basic auth) and
// microsocks (SOCKS5 with username/password), each on a free loopback port, with its config and
// logs in a directory of the caller's; both are killed when the object goes. Also the kernel-level
// proof that a connection came out of a given process (not merely "the request arrived").
#ifndef KEYGATE_TESTS_TESTING_REAL_PROXIES_H_
#define KEYGATE_TESTS_TESTING_REAL_PROXIES_H_

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "tests/testing/child_process.h"

namespace keygate::testing {

class RealProxies {
 public:
  static constexpr char kUser[] = "user";
  static constexpr char kTinyPassword[] = "s3cr3t-Pw";   // tinyproxy's config syntax rejects "@:%"
  static constexpr char kSocksPassword[] = "p@ss:w%rd";  // percent-encoded in URLs
  static constexpr char kSocksPasswordEncoded[] = "p%40ss%3Aw%25rd";

  // Starts both in `dir` (created if missing) and waits until they accept connections; nullptr
  // when either did not come up (`*error` says which, with its output).
  static std::unique_ptr<RealProxies> Start(const std::filesystem::path& dir, std::string* error);

  // http://user:<password>@127.0.0.1:<port> (the right password unless one is given).
  std::string HttpUrl(const std::string& password = kTinyPassword) const;
  // <scheme>://user:<encoded password>@127.0.0.1:<port>; scheme socks5 or socks5h.
  std::string SocksUrl(const std::string& scheme = "socks5",
                       const std::string& encoded_password = kSocksPasswordEncoded) const;

  const ChildProcess& tinyproxy() const { return *tiny_; }
  const ChildProcess& microsocks() const { return *socks_; }
  uint16_t tinyproxy_port() const { return tiny_port_; }
  uint16_t microsocks_port() const { return socks_port_; }
  // tinyproxy's log so far (LogLevel Connect: one line per CONNECT).
  std::string TinyproxyLog() const;

  // microsocks dies (SIGKILL), and comes back on the same port: a proxy outage and its recovery.
  void KillMicrosocks() { socks_.reset(); }
  bool RestartMicrosocks();

 private:
  RealProxies() = default;
  void SpawnMicrosocks();
  std::filesystem::path dir_;
  uint16_t tiny_port_ = 0, socks_port_ = 0;
  std::unique_ptr<ChildProcess> tiny_, socks_;
};

// True when the established TCP connection whose local end is 127.0.0.1:`local_port` belongs to
// process `pid` (from /proc/net/tcp and /proc/<pid>/fd), waiting up to `timeout` for the kernel's
// table to show it. Used to prove a request reached the stub out of a given proxy process.
bool ConnectionOwnedBy(uint16_t local_port, pid_t pid,
                       std::chrono::milliseconds timeout = std::chrono::milliseconds(500));

}  // namespace keygate::testing

#endif  // KEYGATE_TESTS_TESTING_REAL_PROXIES_H_
