// A value one thread replaces now and then (a reload, a refresh) and request threads read on
// every request: the catalog, the client keys, the key pools, the admin API.
//
// Reading takes no lock and writes nothing another thread reads: each thread keeps the last value
// it read (with the version it had) and reads again, under the lock, only when the version moved.
// So a reader sees a new value a moment after Store, never a torn one, and holds what it got as
// long as it needs (in-flight requests finish with the snapshot they started with).
//
// Why not the alternatives: std::atomic_load on a shared_ptr takes one of a few process-wide
// mutexes chosen by the address (every worker reading the same value takes the same one), and
// libstdc++ 12's std::atomic<std::shared_ptr> is reported by ThreadSanitizer (STACK.md).
//
// Thread safety: all members may be called from any thread.
#ifndef KEYGATE_COMMON_PUBLISHED_H_
#define KEYGATE_COMMON_PUBLISHED_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <utility>

namespace keygate {

template <class T>
class Published {
 public:
  explicit Published(std::shared_ptr<const T> value = nullptr) : value_(std::move(value)) {}
  Published(const Published&) = delete;
  Published& operator=(const Published&) = delete;

  void Store(std::shared_ptr<const T> value) {
    {
      std::lock_guard lock(mu_);
      value.swap(value_);
      version_.fetch_add(1, std::memory_order_release);
    }
    // The previous value is released here, outside the lock (its last holder frees it).
  }

  // The current value, read under the lock: for occasional readers.
  std::shared_ptr<const T> Load() const {
    std::lock_guard lock(mu_);
    return value_;
  }

  // The current value as this thread last read it, read again only when a newer one was stored:
  // for the request path.
  std::shared_ptr<const T> Get() const {
    Slot& slot = SlotFor();
    const uint64_t version = version_.load(std::memory_order_acquire);
    if (slot.version != version) {
      slot.value = Load();  // maybe newer still: the next Get reads again, nothing is missed
      slot.version = version;
    }
    return slot.value;
  }

 private:
  // A thread's copy of one Published's value. A thread keeps a few (a process has one Published
  // per kind of value; tests make more): the oldest is replaced when a thread reads another.
  struct Slot {
    uint64_t owner = 0;  // Published::id_, never reused; 0: free
    uint64_t version = 0;
    std::shared_ptr<const T> value;
  };
  static constexpr size_t kSlots = 4;

  Slot& SlotFor() const {
    thread_local std::array<Slot, kSlots> slots;
    thread_local size_t next_victim = 0;
    for (Slot& s : slots) {
      if (s.owner == id_) return s;
    }
    Slot& s = slots[next_victim++ % kSlots];
    s = Slot{id_, 0, nullptr};
    return s;
  }

  static uint64_t NewId() {
    static std::atomic<uint64_t> last{0};
    return last.fetch_add(1, std::memory_order_relaxed) + 1;
  }

  const uint64_t id_ = NewId();
  mutable std::mutex mu_;
  std::shared_ptr<const T> value_;    // GUARDED_BY(mu_)
  std::atomic<uint64_t> version_{1};  // a new slot (version 0) always reads
};

}  // namespace keygate

#endif  // KEYGATE_COMMON_PUBLISHED_H_
