#include "tests/testing/real_proxies.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>

namespace keygate::testing {
namespace {

// The inode of the established TCP socket whose local port is `port` (/proc/net/tcp), or 0.
uint64_t SocketInodeForLocalPort(uint16_t port) {
  std::ifstream in("/proc/net/tcp");
  std::string line;
  std::getline(in, line);  // header
  char want[16];
  std::snprintf(want, sizeof(want), ":%04X", port);
  while (std::getline(in, line)) {
    std::istringstream ss(line);
    std::string sl, local, remote, st, queues, tr, retr, uid, timeout, inode;
    ss >> sl >> local >> remote >> st >> queues >> tr >> retr >> uid >> timeout >> inode;
    // Skip closed leftovers of an earlier connection on the same port (TIME_WAIT: inode 0).
    if (local.size() > 5 && local.substr(local.size() - 5) == want && st == "01" && inode != "0") {
      return std::stoull(inode);
    }
  }
  return 0;
}

bool ProcessOwnsSocket(pid_t pid, uint64_t inode) {
  std::error_code ec;
  std::string want = "socket:[" + std::to_string(inode) + "]";
  for (const auto& entry :
       std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec)) {
    char buf[128];
    ssize_t n = ::readlink(entry.path().c_str(), buf, sizeof(buf) - 1);
    if (n > 0 && std::string(buf, n) == want) return true;
  }
  return false;
}

}  // namespace

std::unique_ptr<RealProxies> RealProxies::Start(const std::filesystem::path& dir,
                                                std::string* error) {
  std::unique_ptr<RealProxies> p(new RealProxies());
  p->dir_ = dir;
  std::filesystem::create_directories(dir);
  p->tiny_port_ = FreePort();
  std::ofstream(dir / "tinyproxy.conf")
      << "Port " << p->tiny_port_ << "\nListen 127.0.0.1\nTimeout 60\nMaxClients 50\n"
      << "Allow 127.0.0.1\nBasicAuth " << kUser << " " << kTinyPassword
      << "\nDisableViaHeader Yes\nLogFile \"" << (dir / "tinyproxy.log").string()
      << "\"\nLogLevel Connect\n";
  p->tiny_ = std::make_unique<ChildProcess>(
      std::vector<std::string>{"/usr/bin/tinyproxy", "-d", "-c", (dir / "tinyproxy.conf").string()},
      (dir / "tinyproxy.out").string());
  p->socks_port_ = FreePort();
  p->SpawnMicrosocks();
  if (!WaitForPort(p->tiny_port_, std::chrono::seconds(10))) {
    *error =
        "tinyproxy did not start (scripts/install-deps.sh --test installs it): " + p->tiny_->Log();
    return nullptr;
  }
  if (!WaitForPort(p->socks_port_, std::chrono::seconds(10))) {
    *error = "microsocks did not start (scripts/install-deps.sh --test installs it): " +
             p->socks_->Log();
    return nullptr;
  }
  return p;
}

void RealProxies::SpawnMicrosocks() {
  static int generation = 0;
  socks_ = std::make_unique<ChildProcess>(
      std::vector<std::string>{"/usr/bin/microsocks", "-i", "127.0.0.1", "-p",
                               std::to_string(socks_port_), "-u", kUser, "-P", kSocksPassword},
      (dir_ / ("microsocks" + std::to_string(generation++) + ".out")).string());
}

bool RealProxies::RestartMicrosocks() {
  SpawnMicrosocks();
  return WaitForPort(socks_port_, std::chrono::seconds(10));
}

std::string RealProxies::HttpUrl(const std::string& password) const {
  return "http://" + std::string(kUser) + ":" + password +
         "@127.0.0.1:" + std::to_string(tiny_port_);
}

std::string RealProxies::SocksUrl(const std::string& scheme,
                                  const std::string& encoded_password) const {
  return scheme + "://" + std::string(kUser) + ":" + encoded_password +
         "@127.0.0.1:" + std::to_string(socks_port_);
}

std::string RealProxies::TinyproxyLog() const {
  std::ifstream in(dir_ / "tinyproxy.log");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool ConnectionOwnedBy(uint16_t local_port, pid_t pid, std::chrono::milliseconds timeout) {
  return WaitFor(
      [&] {
        uint64_t inode = SocketInodeForLocalPort(local_port);
        return inode != 0 && ProcessOwnsSocket(pid, inode);
      },
      timeout);
}

}  // namespace keygate::testing
