// SIGHUP reloads the config file of the real `keygate serve`: an alias added to the file is served
// within moments, while a stream that was open before the reload runs on to its end. A file that
// no longer parses is refused and the running config kept.
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <thread>

#include "tests/integration/deployment.h"
#include "tests/testing/http_client.h"
#include "tests/testing/store_env.h"

namespace keygate::testing {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

TEST(ReloadTest, SighupAddsAnAliasWithoutDroppingAnOpenStream) {
  auto location = std::move(StoreLocation::Create(StoreKind::kSqlite)).value();
  const std::string& url = location->url();
  const std::string dir = location->dir();
  StubProcess stub(dir + "/stub.log");
  ASSERT_TRUE(stub.ok()) << stub.Log();
  MustCli(url, {"pool", "create", "main", "--provider", "stub"});
  // "-long-": the stub streams 200 events 20 ms apart (4 s).
  MustCli(url, {"keys", "import", "--pool", "main"}, "sk-reload-long-aaaaaaaaaaaa\n");
  std::string client_key = CreateClientKey(url, "reload");
  ASSERT_FALSE(client_key.empty());

  const std::string config = dir + "/keygate.toml";
  const std::string before =
      "[[models]]\nid = \"gpt-reload\"\npool = \"main\"\naliases = [\"r1\"]\n";
  const std::string after =
      "[[models]]\nid = \"gpt-reload\"\npool = \"main\"\naliases = [\"r1\", \"r2\"]\n";
  ASSERT_TRUE(WriteFile(config, ConfigText(stub.base_url(), "", "", before)));
  KeygateProcess keygate(url, config, dir + "/keygate.log");
  ASSERT_TRUE(keygate.ok()) << keygate.Log();
  auto chat = [&](const std::string& model) {
    return HttpPost(keygate.base_url() + "/v1/chat/completions", client_key,
                    R"({"model":")" + model + R"(","messages":[]})");
  };
  ASSERT_EQ(chat("r1").status, 200);
  ASSERT_EQ(chat("r2").status, 404) << "the alias is not there yet";

  // A stream, open across the reload.
  std::atomic<bool> first_bytes{false};
  HttpResponse stream;
  Clock::time_point stream_end;
  std::thread streamer([&] {
    stream = HttpRequest(
        "POST", keygate.base_url() + "/v1/chat/completions",
        {{"Authorization", "Bearer " + client_key}, {"Content-Type", "application/json"}},
        R"({"model":"gpt-reload","stream":true,"messages":[]})",
        [&](std::string_view) {
          first_bytes.store(true);
          return true;
        },
        /*timeout_ms=*/30'000);
    stream_end = Clock::now();
  });
  ASSERT_TRUE(WaitFor([&] { return first_bytes.load(); }, seconds(10)));

  ASSERT_TRUE(WriteFile(config, ConfigText(stub.base_url(), "", "", after)));
  auto sighup_at = Clock::now();
  keygate.Signal(SIGHUP);
  bool served = WaitFor([&] { return chat("r2").status == 200; }, seconds(10));
  double reload_s = std::chrono::duration<double>(Clock::now() - sighup_at).count();
  EXPECT_TRUE(served) << keygate.Log();
  EXPECT_EQ(chat("r1").status, 200) << "the old alias stays";

  // A broken file is refused; the running config stays.
  ASSERT_TRUE(WriteFile(config, "[server\nthis is not toml"));
  keygate.Signal(SIGHUP);
  EXPECT_TRUE(WaitFor(
      [&] { return keygate.Log().find("config not reloaded") != std::string::npos; }, seconds(10)))
      << keygate.Log();
  EXPECT_EQ(chat("r2").status, 200);
  EXPECT_TRUE(keygate.running());

  streamer.join();
  EXPECT_EQ(stream.status, 200) << stream.error;
  EXPECT_GT(stream_end, sighup_at) << "the stream ended before the reload: it proved nothing";
  EXPECT_NE(stream.body.find("\"tok199 \""), std::string::npos) << "the stream was cut";
  EXPECT_TRUE(stream.body.ends_with("data: [DONE]\n\n")) << stream.body.substr(0, 300);
  EXPECT_NE(keygate.Log().find("SIGHUP: config reloaded"), std::string::npos);
  std::printf(
      "reload: the new alias served %.3f s after SIGHUP; the open stream ran on %.2f s "
      "after it and ended complete\n",
      reload_s, std::chrono::duration<double>(stream_end - sighup_at).count());

  keygate.Signal(SIGTERM);
  EXPECT_EQ(keygate.Wait(seconds(30)), 0) << keygate.Log();
}

}  // namespace
}  // namespace keygate::testing
