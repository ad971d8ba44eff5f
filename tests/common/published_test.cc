// Published<T>: a thread sees what was stored last, several values per thread do not mix, and
// readers racing a writer see only whole values in the order they were stored (run under
// ThreadSanitizer too).
#include "common/published.h"

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

namespace keygate {
namespace {

TEST(Published, GetSeesTheLastStore) {
  Published<int> p(std::make_shared<const int>(1));
  EXPECT_EQ(*p.Get(), 1);
  p.Store(std::make_shared<const int>(2));
  EXPECT_EQ(*p.Get(), 2);
  EXPECT_EQ(*p.Load(), 2);
  p.Store(nullptr);
  EXPECT_EQ(p.Get(), nullptr);
}

// More values than a thread keeps copies of, read in turns: each read gives its own value.
TEST(Published, ManyValuesOnOneThreadDoNotMix) {
  std::vector<std::unique_ptr<Published<int>>> values;
  for (int i = 0; i < 10; ++i) {
    values.push_back(std::make_unique<Published<int>>(std::make_shared<const int>(i)));
  }
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 10; ++i) {
      ASSERT_EQ(*values[i]->Get(), i + 100 * round);
      values[i]->Store(std::make_shared<const int>(i + 100 * (round + 1)));
    }
  }
  // A value made where a dropped one was (the allocator may reuse the address) starts fresh.
  values[3] = std::make_unique<Published<int>>(std::make_shared<const int>(-3));
  EXPECT_EQ(*values[3]->Get(), -3);
}

// Readers on four threads, a writer storing 1..N: each reader's values never go back, and
// each reader sees N once the writer is done.
TEST(Published, ReadersRacingAWriterSeeWholeValuesInOrder) {
  struct Value {
    explicit Value(int v) : n(v), copy(v) {}
    int n, copy;  // equal in every value ever stored: a torn read would show them apart
  };
  constexpr int kStores = 20000;
  Published<Value> p(std::make_shared<const Value>(0));
  std::atomic<bool> done{false};
  std::atomic<int> failures{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 4; ++r) {
    readers.emplace_back([&] {
      int last = 0;
      while (true) {
        const bool finished = done.load();
        const std::shared_ptr<const Value> v = p.Get();
        if (v->n != v->copy || v->n < last) failures.fetch_add(1);
        last = v->n;
        if (finished) break;
      }
      if (last != kStores) failures.fetch_add(1);
    });
  }
  for (int i = 1; i <= kStores; ++i) p.Store(std::make_shared<const Value>(i));
  done.store(true);
  for (std::thread& t : readers) t.join();
  EXPECT_EQ(failures.load(), 0);
}

}  // namespace
}  // namespace keygate
