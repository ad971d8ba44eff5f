// Deadlines for the I/O operations of one event loop, enforced by one timer.
//
// Whatever may wait on a peer (a read of a client's request, a write to a client that stopped
// reading) is an Entry: Watch(entry, timeout) before the wait, Done(entry) after it. When a
// deadline passes first, the entry is taken off and told (Entry::Expired), which typically
// closes its socket so the pending operation completes with an error.
//
// Cheap per operation, which is the point (beast::tcp_stream arms a timer for every read and
// write, with its composed operations): entries with the same timeout are kept in one FIFO
// queue, and since a deadline is always now + timeout, each queue is in deadline order. Watch
// and Done are a clock read and a few pointer moves; the timer is re-armed only for a deadline
// earlier than the one it is set for. When it fires, it takes off the expired entries from the
// queues' fronts and sleeps until the earliest deadline left. There are as many queues as
// distinct timeouts in use (a handful).
//
// An entry stays watched across several operations of one phase (all the reads of a request's
// head): a deadline for the whole phase, which a client trickling bytes cannot push back.
//
// One thread: every call on the loop's thread.
#ifndef KEYGATE_COMMON_IO_WATCHDOG_H_
#define KEYGATE_COMMON_IO_WATCHDOG_H_

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

namespace keygate {

class IoWatchdog {
 public:
  using Clock = std::chrono::steady_clock;

  class Entry {
   public:
    Entry() = default;
    Entry(const Entry&) = delete;
    Entry& operator=(const Entry&) = delete;
    bool watched() const { return owner_ != nullptr; }

   protected:
    // Leaves the watchdog when destroyed while watched.
    ~Entry();
    // The deadline passed. The entry is no longer watched when this runs; it may Watch again.
    virtual void Expired() = 0;

   private:
    friend class IoWatchdog;
    IoWatchdog* owner_ = nullptr;
    Entry* prev_ = nullptr;
    Entry* next_ = nullptr;
    size_t queue_ = 0;
    Clock::time_point deadline_;
  };

  explicit IoWatchdog(boost::asio::io_context& io);
  ~IoWatchdog();  // entries still watched are let go (never told)
  IoWatchdog(const IoWatchdog&) = delete;
  IoWatchdog& operator=(const IoWatchdog&) = delete;

  // (Re)starts `e`'s deadline: now + timeout.
  void Watch(Entry& e, std::chrono::milliseconds timeout);
  // Stops watching `e` (no-op when it is not watched).
  void Done(Entry& e);
  // Cancels the timer when nothing is watched, so that a loop run to completion can end (an
  // armed timer is work for the loop). For an owner that knows it went idle; the timer is
  // re-armed by the next Watch.
  void DisarmIfIdle();
  // Cancels the timer and never arms it again: nothing expires any more, and a loop with nothing
  // else to do can end. For a loop that is shutting down.
  void Stop();

 private:
  struct Queue {
    std::chrono::milliseconds timeout;
    Entry* head = nullptr;
    Entry* tail = nullptr;
  };
  void Unlink(Entry& e);
  void Arm(Clock::time_point at);
  void OnTimer();

  std::vector<Queue> queues_;
  size_t watched_ = 0;
  boost::asio::steady_timer timer_;
  Clock::time_point armed_at_ = Clock::time_point::max();  // max: not armed
  bool stopped_ = false;
  // The timer's handler holds a weak_ptr to this: it may run after the watchdog is gone.
  std::shared_ptr<IoWatchdog*> self_;
};

}  // namespace keygate

#endif  // KEYGATE_COMMON_IO_WATCHDOG_H_
