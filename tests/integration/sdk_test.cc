// The official SDKs as clients: `openai` and `@anthropic-ai/sdk` from npm (tests/integration/sdk,
// installed by `npm ci` in scripts/test.sh) run their own test files under `node --test` against
// the real `keygate serve`, whose providers point at the upstream stub binary.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>

#include "tests/integration/deployment.h"
#include "tests/testing/store_env.h"

namespace keygate::testing {
namespace {

TEST(SdkTest, OfficialOpenAIAndAnthropicSdks) {
  ASSERT_STRNE(NODE_BIN, "") << "node was not found when the build was configured";
  ASSERT_TRUE(std::filesystem::exists(std::string(SDK_TEST_DIR) + "/node_modules/openai"))
      << "the SDKs are not installed: run `npm ci --prefix tests/integration/sdk` (test.sh does)";

  auto location = std::move(StoreLocation::Create(StoreKind::kSqlite)).value();
  const std::string& url = location->url();
  const std::string dir = location->dir();
  StubProcess stub(dir + "/stub.log");
  ASSERT_TRUE(stub.ok()) << stub.Log();

  MustCli(url, {"pool", "create", "main", "--provider", "stub"});
  MustCli(url, {"pool", "create", "claude", "--provider", "anth"});
  MustCli(url, {"keys", "import", "--pool", "main"},
          "sk-sdk-ok-aaaaaaaaaaaaaaaa\nsk-sdk-ok-bbbbbbbbbbbbbbbb\n");
  MustCli(url, {"keys", "import", "--pool", "claude"}, "sk-ant-sdk-ok-cccccccccccc\n");
  MustCli(url, {"pool", "create", "resp", "--provider", "respapi"});
  MustCli(url, {"keys", "import", "--pool", "resp"}, "sk-resp-sdk-ok-dddddddddd\n");
  std::string client_key = CreateClientKey(url, "sdk-tests");
  ASSERT_FALSE(client_key.empty());

  // A model whose upstream speaks the OpenAI Responses API (translate.test.mjs).
  const std::string responses_model =
      "[providers.respapi]\nbase_url = \"" + stub.base_url() +
      "\"\nformat = \"openai-responses\"\n[pools.resp]\nprovider = \"respapi\"\n"
      "[[models]]\nid = \"resp-sdk\"\npool = \"resp\"\nupstream = \"o-upstream\"\n"
      "price = { input = 1, output = 4 }\n";
  ASSERT_TRUE(WriteFile(dir + "/keygate.toml", ConfigText(stub.base_url(), "", "", responses_model)));
  KeygateProcess keygate(url, dir + "/keygate.toml", dir + "/keygate.log");
  ASSERT_TRUE(keygate.ok()) << keygate.Log();

  RunOptions node;
  node.cwd = SDK_TEST_DIR;
  node.env = {{"KEYGATE_URL", keygate.base_url()}, {"KEYGATE_KEY", client_key}};
  // Each SDK call has its own 20 s timeout (sdk/common.mjs); each test file at most 60 s.
  RunResult r = RunBinary(NODE_BIN,
                          {"--test", "--test-reporter=spec", "--test-timeout=60000",
                           "openai.test.mjs", "anthropic.test.mjs", "translate.test.mjs",
                           "responses.test.mjs"},
                          node);
  EXPECT_EQ(r.exit_code, 0) << "node --test failed:\n"
                            << r.out << r.err << "\nkeygate log:\n"
                            << keygate.Log();
  std::printf("node --test: %.1f s\n%s", r.seconds, r.out.c_str());

  // Stop keygate the operator's way; its usage records are flushed before it exits.
  keygate.Signal(SIGTERM);
  ASSERT_EQ(keygate.Wait(std::chrono::seconds(30)), 0) << keygate.Log();
  auto store = std::move(OpenTestStore(url)).value();
  auto usage = store->ListUsage({.limit = 1000});
  ASSERT_TRUE(usage.ok()) << usage.status().ToString();
  // One record per SDK call that reached an upstream: 7 OpenAI (chat, alias, 3 streams,
  // 2 embeddings), 5 Anthropic (create, 2 streams, 2 token counts, which cost nothing), 13
  // translated (translate.test.mjs: 4 with the openai SDK and 4 with the Anthropic SDK across chat
  // and Anthropic formats, 2 structured outputs, 3 against the Responses model) and 13 Responses
  // calls (responses.test.mjs: 6 on each of the chat and Anthropic models, 1 structured output);
  // models lists, bad keys and unknown models never reach a pool. One Responses request is refused
  // (400, no upstream call: no tokens).
  EXPECT_EQ(usage->size(), 39u);
  int refused = 0, counts = 0;
  for (const auto& u : *usage) {
    if (u.status == 400) {
      ++refused;
      EXPECT_EQ(u.input_tokens, 0) << u.model << ": a refused request reached no upstream";
      continue;
    }
    if (u.model == "claude-sdk" && u.input_tokens == 0) {
      ++counts;
      EXPECT_EQ(u.output_tokens, 0) << "a token count consumes no tokens";
      EXPECT_EQ(u.cost_micros, 0);
      continue;
    }
    EXPECT_EQ(u.status, 200) << u.model;
    EXPECT_EQ(u.input_tokens, 11) << u.model << ": usage read from every response and stream";
    EXPECT_EQ(u.output_tokens, u.model == "embed-sdk" ? 0 : 7) << u.model;
  }
  EXPECT_EQ(refused, 1);
  EXPECT_EQ(counts, 2);
}

}  // namespace
}  // namespace keygate::testing
