#include "billing/usage_writer.h"

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "common/thread_name.h"

namespace keygate::billing {

namespace {
int64_t SteadyMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
}  // namespace

UsageWriter::UsageWriter(store::Store& store, UsageWriterOptions options,
                         std::function<void(const store::UsageRecord&)> on_drop)
    : store_(store), options_(options), on_drop_(std::move(on_drop)) {}

UsageWriter::~UsageWriter() {
  if (thread_.joinable()) Stop(0);
}

void UsageWriter::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  stopping_ = false;
  thread_ = std::thread([this] {
    NameThisThread("kg-usage");
    Run();
  });
}

bool UsageWriter::Enqueue(store::UsageRecord record) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (record.settle || static_cast<int64_t>(queue_.size() + writing_) < options_.queue_limit) {
      queue_.push_back(std::move(record));
      if (static_cast<int64_t>(queue_.size()) >= options_.batch_size) cv_.notify_one();
      return true;
    }
  }
  int64_t n = dropped_.fetch_add(1) + 1;
  // Log the first drop and then every 1000th: loud enough to notice, bounded in volume.
  if (n == 1 || n % 1000 == 0) {
    std::fprintf(stderr,
                 "keygate: usage queue full (%lld records): dropped usage record %s "
                 "(%lld dropped so far)\n",
                 static_cast<long long>(options_.queue_limit), record.request_id.c_str(),
                 static_cast<long long>(n));
  }
  if (on_drop_) on_drop_(record);
  return false;
}

bool UsageWriter::backlogged() const { return depth() >= options_.queue_limit; }

int64_t UsageWriter::depth() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int64_t>(queue_.size() + writing_);
}

Status UsageWriter::WriteBatch(std::unique_lock<std::mutex>& lock) {
  size_t n = std::min<size_t>(queue_.size(), static_cast<size_t>(options_.batch_size));
  // Moved out, not copied (a copy cost each record its strings' allocations); a failed write
  // puts the batch back at the front, ahead of what arrived meanwhile, for the next attempt.
  std::vector<store::UsageRecord> batch(std::make_move_iterator(queue_.begin()),
                                        std::make_move_iterator(queue_.begin() + n));
  queue_.erase(queue_.begin(), queue_.begin() + n);
  writing_ += n;
  lock.unlock();
  auto result = store_.InsertUsage(batch);
  lock.lock();
  writing_ -= n;
  if (!result.ok()) {
    queue_.insert(queue_.begin(), std::make_move_iterator(batch.begin()),
                  std::make_move_iterator(batch.end()));
    write_errors_.fetch_add(1);
    return result.status();
  }
  written_.fetch_add(static_cast<int64_t>(n));
  batches_.fetch_add(1);
  return OkStatus();
}

Status UsageWriter::FlushForTest() {
  std::unique_lock<std::mutex> lock(mu_);
  if (queue_.empty()) return OkStatus();
  return WriteBatch(lock);
}

void UsageWriter::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  int64_t backoff_ms = 0;
  int64_t last_error_log = 0;
  while (true) {
    if (queue_.empty()) {
      if (stopping_) return;
      cv_.wait_for(lock, std::chrono::milliseconds(options_.flush_ms));
      continue;
    }
    if (!stopping_ && static_cast<int64_t>(queue_.size()) < options_.batch_size) {
      // A partial batch waits up to flush_ms for company.
      cv_.wait_for(lock, std::chrono::milliseconds(options_.flush_ms), [&] {
        return stopping_ || static_cast<int64_t>(queue_.size()) >= options_.batch_size;
      });
    }
    Status s = WriteBatch(lock);
    if (s.ok()) {
      backoff_ms = 0;
      continue;
    }
    if (stopping_ && SteadyMs() >= stop_deadline_ms_) return;
    backoff_ms = std::min(options_.max_backoff_ms, std::max<int64_t>(50, backoff_ms * 2));
    if (SteadyMs() - last_error_log > 10'000) {
      last_error_log = SteadyMs();
      std::fprintf(stderr, "keygate: usage write failed (%zu queued, retrying): %s\n",
                   queue_.size(), s.ToString().c_str());
    }
    cv_.wait_for(lock, std::chrono::milliseconds(backoff_ms), [&] { return stopping_; });
  }
}

int64_t UsageWriter::Stop(int64_t deadline_ms) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    stop_deadline_ms_ = SteadyMs() + deadline_ms;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  std::lock_guard<std::mutex> lock(mu_);
  int64_t left = static_cast<int64_t>(queue_.size());
  if (left > 0) {
    std::fprintf(stderr, "keygate: %lld usage records could not be written before shutdown\n",
                 static_cast<long long>(left));
  }
  return left;
}

}  // namespace keygate::billing
