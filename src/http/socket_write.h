// Writing a gathered buffer to a stream socket from a coroutine, the cheap way first.
//
// One sendmsg(MSG_DONTWAIT) straight away: a peer that reads has room in the socket buffer for
// a request, a response or a chunk, so the usual write is one system call and no suspension
// (asio::async_write would post its completion and resume the coroutine through the loop).
// Only what did not fit is written by asio::async_write, waiting for room.
//
// Not for a write that a read of the same socket follows at once (a request to an upstream):
// the read then finds nothing yet and costs an EAGAIN recv. The server yields to the loop
// after a response for the same reason. Header-only, for a translation unit that holds Asio.
#ifndef KEYGATE_HTTP_SOCKET_WRITE_H_
#define KEYGATE_HTTP_SOCKET_WRITE_H_

#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <cerrno>
#include <cstddef>
#include <tuple>

namespace keygate::http {

// Sends what fits now and advances the buffers past it. Returns the bytes left to send (0: all
// sent); `ec` is set when the connection failed.
template <size_t N>
size_t SendNow(boost::asio::ip::tcp::socket& socket,
               std::array<boost::asio::const_buffer, N>& buffers, boost::system::error_code& ec) {
  iovec iov[N];
  size_t total = 0;
  for (size_t i = 0; i < N; ++i) {
    iov[i] = {const_cast<void*>(buffers[i].data()), buffers[i].size()};
    total += buffers[i].size();
  }
  if (total == 0) return 0;
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = N;
  ssize_t sent;
  do {
    sent = ::sendmsg(socket.native_handle(), &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
  } while (sent < 0 && errno == EINTR);
  if (sent < 0) {
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      ec.assign(errno, boost::asio::error::get_system_category());
    }
    return total;
  }
  size_t skip = static_cast<size_t>(sent);
  for (boost::asio::const_buffer& b : buffers) {
    const size_t n = std::min(skip, b.size());
    b += n;
    skip -= n;
  }
  return total - static_cast<size_t>(sent);
}

// Writes all of `buffers`: SendNow, then asio::async_write for the rest. `before_wait` runs
// only when the write must wait (to start a deadline, say). The error, or none.
template <size_t N, typename BeforeWait>
boost::asio::awaitable<boost::system::error_code> WriteAll(
    boost::asio::ip::tcp::socket& socket, std::array<boost::asio::const_buffer, N> buffers,
    BeforeWait before_wait) {
  boost::system::error_code ec;
  if (!socket.is_open()) co_return boost::asio::error::bad_descriptor;
  if (SendNow(socket, buffers, ec) == 0 || ec) co_return ec;
  before_wait();
  std::tie(ec, std::ignore) = co_await boost::asio::async_write(
      socket, buffers, boost::asio::as_tuple(boost::asio::use_awaitable));
  co_return ec;
}

}  // namespace keygate::http

#endif  // KEYGATE_HTTP_SOCKET_WRITE_H_
