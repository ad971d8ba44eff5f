#include "common/io_watchdog.h"

#include <algorithm>

namespace keygate {

IoWatchdog::Entry::~Entry() {
  if (owner_ != nullptr) owner_->Done(*this);
}

IoWatchdog::IoWatchdog(boost::asio::io_context& io)
    : timer_(io), self_(std::make_shared<IoWatchdog*>(this)) {}

IoWatchdog::~IoWatchdog() {
  for (Queue& q : queues_) {
    for (Entry* e = q.head; e != nullptr; e = e->next_) e->owner_ = nullptr;
  }
}

void IoWatchdog::Watch(Entry& e, std::chrono::milliseconds timeout) {
  if (e.owner_ != nullptr) Unlink(e);
  size_t qi = 0;
  while (qi < queues_.size() && queues_[qi].timeout != timeout) ++qi;
  if (qi == queues_.size()) queues_.push_back(Queue{timeout});
  Queue& q = queues_[qi];
  e.owner_ = this;
  ++watched_;
  e.queue_ = qi;
  e.deadline_ = Clock::now() + timeout;
  e.prev_ = q.tail;
  e.next_ = nullptr;
  (q.tail != nullptr ? q.tail->next_ : q.head) = &e;
  q.tail = &e;
  if (e.deadline_ < armed_at_) Arm(e.deadline_);
}

void IoWatchdog::Done(Entry& e) {
  if (e.owner_ == this) Unlink(e);
}

void IoWatchdog::Unlink(Entry& e) {
  Queue& q = queues_[e.queue_];
  (e.prev_ != nullptr ? e.prev_->next_ : q.head) = e.next_;
  (e.next_ != nullptr ? e.next_->prev_ : q.tail) = e.prev_;
  e.prev_ = e.next_ = nullptr;
  e.owner_ = nullptr;
  --watched_;
}

void IoWatchdog::DisarmIfIdle() {
  if (watched_ != 0 || stopped_ || armed_at_ == Clock::time_point::max()) return;
  armed_at_ = Clock::time_point::max();
  timer_.cancel();
}

void IoWatchdog::Stop() {
  stopped_ = true;
  armed_at_ = Clock::time_point::min();  // Watch never arms again
  timer_.cancel();
}

void IoWatchdog::Arm(Clock::time_point at) {
  armed_at_ = at;
  timer_.expires_at(at);  // a wait already pending completes with operation_aborted
  std::weak_ptr<IoWatchdog*> owner = self_;
  timer_.async_wait([owner](boost::system::error_code ec) {
    if (ec) return;  // re-armed or stopped (maybe the watchdog is gone)
    if (std::shared_ptr<IoWatchdog*> alive = owner.lock()) (*alive)->OnTimer();
  });
}

void IoWatchdog::OnTimer() {
  if (stopped_) return;
  armed_at_ = Clock::time_point::max();
  const Clock::time_point now = Clock::now();
  // By index, and the front read afresh each time: Expired may Watch or Done other entries
  // (even add a queue).
  for (size_t qi = 0; qi < queues_.size(); ++qi) {
    while (queues_[qi].head != nullptr && queues_[qi].head->deadline_ <= now) {
      Entry& e = *queues_[qi].head;
      Unlink(e);
      e.Expired();
    }
  }
  if (stopped_) return;
  Clock::time_point next = Clock::time_point::max();
  for (const Queue& q : queues_) {
    if (q.head != nullptr) next = std::min(next, q.head->deadline_);
  }
  // An Expired that watched again may have armed the timer already, for the earliest deadline.
  if (next < armed_at_) Arm(next);
}

}  // namespace keygate
