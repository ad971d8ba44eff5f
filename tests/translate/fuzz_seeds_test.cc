// Replays the fuzzer's seeds (fuzz/seeds/translate) through the fuzz target's entry point in the
// default (g++) build, plus a few thousand seeded mutations of each, so the target and its
// properties (chunking invariance, pass-through identity, whole JSON events) are checked on every
// test run even where clang/libFuzzer is not installed. The target aborts on a broken property.
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

std::string Read(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void RunOne(const std::string& input) {
  LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(input.data()), input.size());
}

TEST(TranslateFuzzSeeds, SeedsAndTheirMutationsKeepTheProperties) {
  int seeds = 0;
  std::mt19937 rng(42);
  for (const auto& entry : std::filesystem::directory_iterator(KG_FUZZ_SEEDS_DIR)) {
    const std::string seed = Read(entry.path());
    SCOPED_TRACE(entry.path().filename().string());
    RunOne(seed);
    ++seeds;
    for (int round = 0; round < 500; ++round) {
      std::string input = seed;
      for (int m = 0, n = 1 + rng() % 8; m < n; ++m) {
        size_t at = rng() % input.size();
        switch (rng() % 3) {
          case 0: input[at] = static_cast<char>(rng()); break;
          case 1: input.erase(at, 1 + rng() % 32); break;
          default: input.insert(at, input.substr(at, 1 + rng() % 64)); break;
        }
        if (input.empty()) input = seed;
      }
      RunOne(input);
    }
  }
  EXPECT_GE(seeds, 9);
}

}  // namespace
