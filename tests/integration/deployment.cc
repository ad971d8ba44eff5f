#include "tests/integration/deployment.h"

#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <sstream>

#include "tests/testing/store_env.h"

namespace keygate::testing {

const char* KeygateBin() { return KEYGATE_BIN; }
const char* StubBin() { return UPSTREAM_STUB_BIN; }

RunResult Cli(const std::string& store_url, const std::vector<std::string>& args,
              const std::string& stdin_data) {
  std::vector<std::string> full{"--store", store_url};
  full.insert(full.end(), args.begin(), args.end());
  RunOptions options;
  options.env["KEYGATE_MASTER_KEY"] = TestMasterKeyHex();
  options.stdin_data = stdin_data;
  return RunBinary(KeygateBin(), full, options);
}

RunResult MustCli(const std::string& store_url, const std::vector<std::string>& args,
                  const std::string& stdin_data) {
  RunResult r = Cli(store_url, args, stdin_data);
  if (r.exit_code != 0) {
    std::string line;
    for (const auto& a : args) line += " " + a;
    ADD_FAILURE() << "keygate" << line << " exited " << r.exit_code << "\nstdout: " << r.out
                  << "\nstderr: " << r.err;
  }
  return r;
}

std::string CreateClientKey(const std::string& store_url, const std::string& name) {
  RunResult r = MustCli(store_url, {"clients", "create", name});
  std::smatch m;
  static const std::regex kKey("kg-[0-9a-f]{64}");
  if (!std::regex_search(r.out, m, kKey)) {
    ADD_FAILURE() << "no client key in the output of `clients create`: " << r.out << r.err;
    return "";
  }
  return m.str();
}

StubProcess::StubProcess(const std::string& log_path) {
  port_ = FreePort();
  child_ = std::make_unique<ChildProcess>(
      std::vector<std::string>{StubBin(), "--port", std::to_string(port_)}, log_path);
  ok_ = WaitForPort(port_, std::chrono::seconds(20));
}

KeygateProcess::KeygateProcess(const std::string& store_url, const std::string& config_path,
                               const std::string& log_path,
                               std::chrono::milliseconds ready_timeout) {
  port_ = FreePort();
  child_ = std::make_unique<ChildProcess>(
      std::vector<std::string>{KeygateBin(), "--store", store_url, "serve", "--config", config_path,
                               "--listen", "127.0.0.1:" + std::to_string(port_)},
      log_path, std::map<std::string, std::string>{{"KEYGATE_MASTER_KEY", TestMasterKeyHex()}});
  const std::string ready = "keygate: listening on http://127.0.0.1:" + std::to_string(port_);
  ok_ = WaitFor([&] { return !child_->running() || Log().find(ready) != std::string::npos; },
                ready_timeout) &&
        child_->running();
}

std::string ConfigText(const std::string& upstream_base_url, const std::string& server_extra,
                       const std::string& store_extra, const std::string& models_extra) {
  return "[server]\nworkers = 2\n" + server_extra +
         "\n[store]\npool_refresh_ms = 200\nusage_flush_ms = 50\n" + store_extra +
         "\n[upstream]\nmax_attempts = 3\nfirst_byte_timeout_ms = 10000\n"
         "[providers.stub]\nbase_url = \"" +
         upstream_base_url +
         "\"\n"
         "[providers.anth]\nbase_url = \"" +
         upstream_base_url +
         "\"\n"
         "auth = \"x-api-key\"\nformat = \"anthropic-messages\"\nclassifier = \"anthropic\"\n"
         "headers = { \"anthropic-version\" = \"2023-06-01\" }\n"
         "[pools.main]\nprovider = \"stub\"\n"
         "[pools.claude]\nprovider = \"anth\"\n"
         "[[models]]\nid = \"gpt-sdk\"\naliases = [\"gpt-sdk-alias\"]\npool = \"main\"\n"
         "upstream = \"gpt-upstream\"\nprice = { input = 2, output = 10 }\n"
         "[[models]]\nid = \"embed-sdk\"\npool = \"main\"\nprice = { input = 1, output = 0 }\n"
         "[[models]]\nid = \"claude-sdk\"\npool = \"claude\"\nupstream = \"claude-upstream\"\n"
         "price = { input = 3, output = 15 }\n" +
         models_extra;
}

bool WriteFile(const std::string& path, const std::string& text) {
  // Write beside, then rename: a reader (keygate on SIGHUP) never sees half a file.
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << text;
    if (!out.good()) return false;
  }
  return std::rename(tmp.c_str(), path.c_str()) == 0;
}

int64_t RssKiB(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6));
  }
  return -1;
}

double MetricValue(const std::string& metrics, const std::string& series) {
  std::istringstream in(metrics);
  std::string line;
  while (std::getline(in, line)) {
    if (line.size() > series.size() && line.compare(0, series.size(), series) == 0 &&
        line[series.size()] == ' ') {
      return std::stod(line.substr(series.size() + 1));
    }
  }
  return -1;
}

}  // namespace keygate::testing
