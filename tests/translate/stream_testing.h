// Test helpers for the stream translators: feed a stream cut at given points, and check that the
// output does not depend on the cuts (every split point, byte at a time, random multi-splits).
#ifndef KEYGATE_TESTS_TRANSLATE_STREAM_TESTING_H_
#define KEYGATE_TESTS_TRANSLATE_STREAM_TESTING_H_

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "provider/provider.h"

namespace keygate::translate::testing {

// `input` fed to a new Stream in pieces cut at `cuts` (ascending offsets), then Finish().
template <typename Stream>
std::string TranslateCut(std::string_view input, const std::vector<size_t>& cuts,
                         const typename Stream::Options& options) {
  Stream stream(options);
  std::string out;
  size_t prev = 0;
  for (size_t cut : cuts) {
    stream.Feed(input.substr(prev, cut - prev), out);
    prev = cut;
  }
  stream.Feed(input.substr(prev), out);
  stream.Finish(out);
  return out;
}

// Ascending cut points in (0, size), steps of 1..max_step.
inline std::vector<size_t> RandomCuts(std::mt19937& rng, size_t size, size_t max_step) {
  std::vector<size_t> cuts;
  for (size_t pos = 1 + rng() % max_step; pos < size; pos += 1 + rng() % max_step) {
    cuts.push_back(pos);
  }
  return cuts;
}

// `base` with 1..6 random edits: a byte replaced by a JSON/SSE-significant one, a run erased, a
// run duplicated.
inline std::string Mutate(std::mt19937& rng, std::string input) {
  static constexpr char kBytes[] = "{}[]\",:\n\r x0";
  for (int m = 0, n = 1 + rng() % 6; m < n && !input.empty(); ++m) {
    size_t at = rng() % input.size();
    switch (rng() % 3) {
      case 0:
        input[at] = kBytes[rng() % (sizeof(kBytes) - 1)];
        break;
      case 1:
        input.erase(at, 1 + rng() % 40);
        break;
      default:
        input.insert(at, input.substr(at, 1 + rng() % 200));
        break;
    }
  }
  return input;
}

// The output for `input` is the same for one split at every point, byte at a time, and for
// `rounds` random multi-splits.
template <typename Stream>
void ExpectChunkingInvariant(std::string_view input, const typename Stream::Options& options,
                             uint32_t seed, int rounds = 300) {
  const std::string whole = TranslateCut<Stream>(input, {}, options);
  for (size_t i = 0; i <= input.size(); ++i) {
    ASSERT_EQ(TranslateCut<Stream>(input, {i}, options), whole) << "split at " << i;
  }
  std::vector<size_t> bytes;
  for (size_t i = 1; i < input.size(); ++i) bytes.push_back(i);
  ASSERT_EQ(TranslateCut<Stream>(input, bytes, options), whole) << "byte at a time";
  std::mt19937 rng(seed);
  for (int round = 0; round < rounds; ++round) {
    ASSERT_EQ(TranslateCut<Stream>(input, RandomCuts(rng, input.size(), 64), options), whole)
        << "random round " << round;
  }
}

// The translator's usage() for `input` equals what provider::SseUsageFilter reads from the same
// upstream bytes (the reader billing uses on pass-through streams).
template <typename Stream>
void ExpectUsageMatchesTheFilter(std::string_view input, config::Format format,
                                 const typename Stream::Options& options) {
  provider::SseUsageFilter filter(format, false);
  std::string ignored;
  filter.Feed(input, ignored);
  filter.Finish(ignored);
  Stream stream(options);
  std::string out;
  stream.Feed(input, out);
  stream.Finish(out);
  EXPECT_TRUE(stream.usage().present);
  EXPECT_EQ(stream.usage().input_tokens, filter.usage().input_tokens);
  EXPECT_EQ(stream.usage().output_tokens, filter.usage().output_tokens);
  EXPECT_EQ(stream.usage().cache_read_tokens, filter.usage().cache_read_tokens);
  EXPECT_EQ(stream.usage().cache_write_tokens, filter.usage().cache_write_tokens);
}

}  // namespace keygate::translate::testing

#endif  // KEYGATE_TESTS_TRANSLATE_STREAM_TESTING_H_
