// ReadBuffer and IoWatchdog: the read buffer and the deadlines of the inbound server and the
// upstream HTTP/1.1 engine. The watchdog runs on a real io_context and a real timer.
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <chrono>
#include <string>
#include <vector>

#include "common/io_watchdog.h"
#include "common/read_buffer.h"

namespace keygate {
namespace {

using std::chrono::milliseconds;

void Put(ReadBuffer& b, std::string_view bytes) {
  std::span<char> room = b.Space(8);
  ASSERT_GE(room.size(), bytes.size());
  std::copy(bytes.begin(), bytes.end(), room.begin());
  b.Commit(bytes.size());
}

TEST(ReadBuffer, AllocatesOnFirstUseAndFreesWhenEmpty) {
  ReadBuffer b;
  EXPECT_EQ(b.capacity(), 0u);
  Put(b, "abc");
  EXPECT_EQ(b.capacity(), 8u);
  EXPECT_EQ(b.data(), "abc");
  b.Release();  // holds data: kept
  EXPECT_EQ(b.data(), "abc");
  b.Consume(3);
  EXPECT_TRUE(b.empty());
  b.Release();
  EXPECT_EQ(b.capacity(), 0u);
}

TEST(ReadBuffer, MovesUnconsumedBytesToTheFrontWhenFull) {
  ReadBuffer b;
  Put(b, "12345678");
  b.Consume(5);
  std::span<char> room = b.Space(8);  // full at the end: "678" moves to the front
  EXPECT_EQ(room.size(), 5u);
  EXPECT_EQ(b.data(), "678");
  Put(b, "9ab");
  EXPECT_EQ(b.data(), "6789ab");
  b.Consume(6);
  EXPECT_EQ(b.Space(8).size(), 8u) << "an emptied buffer starts at the front";
}

TEST(ReadBuffer, FullOfDataHasNoRoomUntilItGrows) {
  ReadBuffer b;
  Put(b, "abcdefgh");
  EXPECT_TRUE(b.Space(8).empty());
  b.Grow(32);
  EXPECT_EQ(b.capacity(), 32u);
  EXPECT_EQ(b.data(), "abcdefgh");
  EXPECT_EQ(b.Space(8).size(), 24u);
  b.Grow(16);  // never shrinks
  EXPECT_EQ(b.capacity(), 32u);
}

TEST(ReadBuffer, SpaceGrowsAFullBlockUpToTheGivenSize) {
  ReadBuffer b;
  Put(b, "abcdefgh");
  EXPECT_EQ(b.Space(8, 20).size(), 12u);  // full of data: grown to 20
  EXPECT_EQ(b.data(), "abcdefgh");
  b.Commit(12);
  EXPECT_TRUE(b.Space(8, 20).empty()) << "already that large";
  b.Consume(4);
  EXPECT_EQ(b.Space(8, 20).size(), 4u) << "room by moving the data to the front first";
  EXPECT_EQ(b.capacity(), 20u);
}

// An entry that records when it expired (ms after the start) and may watch itself again.
struct Probe final : IoWatchdog::Entry {
  Probe(std::vector<std::string>& log, std::string name) : log(log), name(std::move(name)) {}
  void Expired() override {
    log.push_back(name);
    if (rewatch) {
      IoWatchdog* w = rewatch;
      rewatch = nullptr;
      w->Watch(*this, milliseconds(30));
    }
  }
  std::vector<std::string>& log;
  std::string name;
  IoWatchdog* rewatch = nullptr;
};

TEST(IoWatchdog, ExpiresInDeadlineOrderAcrossTimeouts) {
  boost::asio::io_context io;
  IoWatchdog w(io);
  std::vector<std::string> log;
  Probe slow(log, "slow"), fast(log, "fast"), mid(log, "mid");
  w.Watch(slow, milliseconds(90));
  w.Watch(fast, milliseconds(10));
  w.Watch(mid, milliseconds(40));
  io.run();  // ends once nothing is watched: the timer is not re-armed
  EXPECT_EQ(log, (std::vector<std::string>{"fast", "mid", "slow"}));
  EXPECT_FALSE(slow.watched());
}

TEST(IoWatchdog, DoneAndRewatchMoveTheDeadline) {
  boost::asio::io_context io;
  IoWatchdog w(io);
  std::vector<std::string> log;
  Probe a(log, "a"), b(log, "b"), c(log, "c");
  w.Watch(a, milliseconds(20));
  w.Watch(b, milliseconds(20));
  w.Watch(c, milliseconds(20));
  w.Done(b);                     // never expires
  w.Done(b);                     // twice is harmless
  w.Watch(a, milliseconds(20));  // later than c now
  io.run();
  EXPECT_EQ(log, (std::vector<std::string>{"c", "a"}));
}

TEST(IoWatchdog, OneDeadlineForAWholePhase) {
  // Watching once and staying watched: the deadline does not move however long the phase runs.
  boost::asio::io_context io;
  IoWatchdog w(io);
  std::vector<std::string> log;
  Probe p(log, "p");
  const auto t0 = IoWatchdog::Clock::now();
  w.Watch(p, milliseconds(50));
  io.run();
  EXPECT_EQ(log, std::vector<std::string>{"p"});
  EXPECT_GE(IoWatchdog::Clock::now() - t0, milliseconds(50));
}

TEST(IoWatchdog, ExpiredMayWatchAgain) {
  boost::asio::io_context io;
  IoWatchdog w(io);
  std::vector<std::string> log;
  Probe p(log, "p");
  p.rewatch = &w;
  w.Watch(p, milliseconds(10));
  io.run();
  EXPECT_EQ(log, (std::vector<std::string>{"p", "p"}));
}

TEST(IoWatchdog, StopLetsTheLoopEndAndNothingExpires) {
  boost::asio::io_context io;
  IoWatchdog w(io);
  std::vector<std::string> log;
  Probe p(log, "p");
  w.Watch(p, milliseconds(60'000));
  boost::asio::post(io, [&] { w.Stop(); });
  const auto t0 = IoWatchdog::Clock::now();
  io.run();  // would wait a minute with the timer armed
  EXPECT_LT(IoWatchdog::Clock::now() - t0, std::chrono::seconds(10));
  w.Watch(p, milliseconds(1));  // after Stop: never armed
  io.restart();
  io.run();
  EXPECT_TRUE(log.empty());
}

TEST(IoWatchdog, DisarmIfIdleLetsALoopRunToCompletionEnd) {
  boost::asio::io_context io;
  IoWatchdog w(io);
  std::vector<std::string> log;
  Probe a(log, "a"), b(log, "b");
  w.Watch(a, milliseconds(60'000));
  w.Watch(b, milliseconds(60'000));
  boost::asio::post(io, [&] {
    w.Done(a);
    w.Done(b);
    w.DisarmIfIdle();
  });
  const auto t0 = IoWatchdog::Clock::now();
  io.run();
  EXPECT_LT(IoWatchdog::Clock::now() - t0, std::chrono::seconds(10));
  w.Watch(a, milliseconds(5));  // armed again
  io.restart();
  io.run();
  EXPECT_EQ(log, std::vector<std::string>{"a"});
}

TEST(IoWatchdog, EntriesAndWatchdogMayGoInEitherOrder) {
  boost::asio::io_context io;
  std::vector<std::string> log;
  {
    IoWatchdog w(io);
    Probe p(log, "p");
    w.Watch(p, milliseconds(10));
  }  // the entry leaves first
  {
    auto p = std::make_unique<Probe>(log, "q");
    {
      IoWatchdog w(io);
      w.Watch(*p, milliseconds(10));
    }  // the watchdog goes first; the entry is let go
    EXPECT_FALSE(p->watched());
  }
  io.run();  // the cancelled waits complete without touching either
  EXPECT_TRUE(log.empty());
}

}  // namespace
}  // namespace keygate
