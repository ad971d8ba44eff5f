// The usage queue: request threads enqueue one record per request (a mutex push, never a store
// call); one writer thread writes batches to the store. When the store is down the queue holds
// records and the writer retries with backoff. Stop() flushes what is queued before returning.
//
// Billed records (`settle`: they carry a credit settlement) are never dropped: they are always
// queued, and backlogged() tells the data path to refuse new billed requests (503) until the
// writer caught up — backpressure at admission, since a billed request first reserved credits in
// the store, no billed request starts while the store is unreachable. Unbilled records beyond the
// bound are dropped, counted and logged — never silently.
//
// Re-writing a batch after an unknown outcome is safe: records carry a unique request_id and the
// store skips ids it already has.
//
// Thread safety: Enqueue() from any thread; Start()/Stop()/FlushForTest() from one owner thread.
#ifndef KEYGATE_BILLING_USAGE_WRITER_H_
#define KEYGATE_BILLING_USAGE_WRITER_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

#include "common/status.h"
#include "store/store.h"

namespace keygate::billing {

struct UsageWriterOptions {
  int64_t batch_size = 256;
  int64_t flush_ms = 200;        // a partial batch waits at most this long
  int64_t queue_limit = 100'000;  // records held while the store is down
  int64_t max_backoff_ms = 5'000;
};

class UsageWriter {
 public:
  // `store` must outlive the writer. `on_drop` (optional) is called for each dropped record.
  UsageWriter(store::Store& store, UsageWriterOptions options,
              std::function<void(const store::UsageRecord&)> on_drop = nullptr);
  ~UsageWriter();  // calls Stop(0) if still running

  void Start();
  // Queues a record. Returns false when the queue is full and the (unbilled) record was dropped;
  // a billed record is always queued.
  bool Enqueue(store::UsageRecord record);
  // True while the queue is at or over its bound: admit no new billed request.
  bool backlogged() const;
  // Stops accepting the writer's pace: writes everything queued, retrying store failures until
  // `deadline_ms` has passed, then joins the thread. Returns how many records could not be written.
  int64_t Stop(int64_t deadline_ms);
  // Writes one batch now on the calling thread (tests, and `keygate` one-shot commands).
  Status FlushForTest();

  int64_t depth() const;
  int64_t written() const { return written_.load(); }
  // Store transactions that wrote records: written() / batches() is the mean batch size.
  int64_t batches() const { return batches_.load(); }
  int64_t dropped() const { return dropped_.load(); }
  int64_t write_errors() const { return write_errors_.load(); }

 private:
  void Run();
  Status WriteBatch(std::unique_lock<std::mutex>& lock);

  store::Store& store_;
  const UsageWriterOptions options_;
  std::function<void(const store::UsageRecord&)> on_drop_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<store::UsageRecord> queue_;  // GUARDED_BY(mu_)
  size_t writing_ = 0;  // records moved out of queue_ for the write in progress; GUARDED_BY(mu_)
  bool stopping_ = false;                 // GUARDED_BY(mu_)
  int64_t stop_deadline_ms_ = 0;          // GUARDED_BY(mu_), steady clock
  std::thread thread_;

  std::atomic<int64_t> written_{0}, batches_{0}, dropped_{0}, write_errors_{0};
};

}  // namespace keygate::billing

#endif  // KEYGATE_BILLING_USAGE_WRITER_H_
