// Bytes received on a connection and not consumed yet, for a parser that wants what it parses
// in one piece (Beast's basic_parser needs a whole HTTP head contiguous): one heap block, the
// unconsumed bytes are [begin, end) of it. The block is allocated when a read first needs room
// and can be given back when nothing is held (an idle connection keeps no buffer).
//
// Used by the inbound server and the upstream HTTP/1.1 engine. One thread.
#ifndef KEYGATE_COMMON_READ_BUFFER_H_
#define KEYGATE_COMMON_READ_BUFFER_H_

#include <cstddef>
#include <cstring>
#include <memory>
#include <span>
#include <string_view>

namespace keygate {

class ReadBuffer {
 public:
  std::string_view data() const { return {block_.get() + begin_, end_ - begin_}; }
  bool empty() const { return begin_ == end_; }
  size_t capacity() const { return cap_; }

  // The first `n` bytes of data() were parsed. An emptied buffer starts again at the front.
  void Consume(size_t n) {
    begin_ += n;
    if (begin_ == end_) begin_ = end_ = 0;
  }

  // The free room after the data, to read into (then Commit what was read). With no block,
  // allocates one of `initial` bytes; when the data reaches the end of the block, moves it to
  // the front first. When the block is full of unconsumed data, grows it to `grow_to` bytes
  // (a parser that needs more of one piece: an HTTP head up to its limit); empty only when it
  // is that large already.
  std::span<char> Space(size_t initial, size_t grow_to = 0) {
    std::span<char> room = Room(initial);
    if (!room.empty() || cap_ >= grow_to) return room;
    Grow(grow_to);
    return Room(initial);
  }
  void Commit(size_t n) { end_ += n; }

  // Makes the block `cap` bytes when it is smaller, keeping the data (at the front).
  void Grow(size_t cap) {
    if (cap <= cap_) return;
    std::unique_ptr<char[]> bigger(new char[cap]);
    if (!empty()) std::memcpy(bigger.get(), block_.get() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
    block_ = std::move(bigger);
    cap_ = cap;
  }

  // Frees the block when it holds nothing.
  void Release() {
    if (!empty()) return;
    block_.reset();
    cap_ = 0;
  }

 private:
  std::span<char> Room(size_t initial) {
    if (cap_ == 0) {
      block_.reset(new char[initial]);
      cap_ = initial;
    } else if (end_ == cap_ && begin_ > 0) {
      std::memmove(block_.get(), block_.get() + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
    }
    return {block_.get() + end_, cap_ - end_};
  }

  std::unique_ptr<char[]> block_;
  size_t cap_ = 0, begin_ = 0, end_ = 0;
};

}  // namespace keygate

#endif  // KEYGATE_COMMON_READ_BUFFER_H_
