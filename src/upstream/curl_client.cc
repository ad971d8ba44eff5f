// libcurl's multi_socket interface on an Asio io_context.
//
// Shape: a CurlClient owns one CURLM and the glue (socket and timer callbacks). Each request is a
// Transfer (one easy handle) shared by the Exchange handle the caller holds and by the coroutines
// reading from it, so a read that is pending when the Exchange is destroyed still finds its state.
// curl callbacks only ever touch a Transfer that is attached to the multi, and every path that
// ends a Transfer removes its easy handle first.
//
// Re-entrancy rule: nothing here calls back into curl (remove_handle, pause, socket_action) from
// inside a curl callback. Callbacks record state and wake readers through a timer cancel, whose
// completion Asio always posts: a reader's coroutine never resumes inside a curl callback.
#include <curl/curl.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "common/proxy_url.h"
#include "common/strings.h"
#include "upstream/engines.h"
#include "upstream/curl_failure.h"
#include "upstream/http_text.h"
#include "upstream/upstream.h"

namespace keygate::upstream {

namespace {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;
using boost::system::error_code;

constexpr int kRead = 0;
constexpr int kWrite = 1;

bool CurlReady() {
  // Thread-safe one-time init (a function-local static); curl 7.84+ is itself thread-safe here.
  static const bool ok = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
  return ok;
}

// A socket curl asked us to watch. Shared with the pending wait handlers, which may run after
// curl said CURL_POLL_REMOVE (and even after the fd number was reused by a new socket): they
// check `removed` before anything else.
//
// Sockets curl opens through our OPENSOCKETFUNCTION are `owned`: registered with the reactor once
// when opened and dropped when curl closes them (CLOSESOCKETFUNCTION), so a connection reused
// from curl's cache keeps its registration. Registering per transfer cost an epoll_ctl ADD, a
// DEL and Asio's FIONBIO ioctl per request (bench/cpu_per_request.sh --syscalls). curl's
// CURL_POLL_REMOVE then only clears `want`.
struct Socket {
  Socket(asio::io_context& io, curl_socket_t fd) : descriptor(io), fd(fd) {}
  asio::posix::stream_descriptor descriptor;
  curl_socket_t fd;
  int want = 0;  // CURL_POLL_IN / CURL_POLL_OUT bits
  bool pending[2] = {false, false};
  bool removed = false;
  bool owned = false;  // opened by OnOpenSocket: lives until OnCloseSocket
};

class CurlClient;

class Transfer : public std::enable_shared_from_this<Transfer> {
 public:
  Transfer(CurlClient* client, std::weak_ptr<CurlClient*> owner, asio::io_context& io,
           Request request)
      : client_(client),
        owner_(std::move(owner)),
        io_(io),
        request_(std::move(request)),
        wake_(io),
        deadline_(io) {
    errbuf_[0] = '\0';
  }
  ~Transfer();

  // Configures the easy handle and adds it to the multi; on error the Transfer is failed.
  void Begin(CURLM* multi);

  static asio::awaitable<bool> ReadHead(std::shared_ptr<Transfer> t);
  static asio::awaitable<bool> ReadBody(std::shared_ptr<Transfer> t, std::string& out);

  // Ends the transfer with `kind` unless it already failed; removes the easy handle.
  void Fail(ErrorKind kind, std::string message, int proxy_status = 0);
  void Cancel(std::string_view why);
  // CURLMSG_DONE for this transfer (called outside curl callbacks).
  void OnDone(CURLcode code);
  // The Client is going away: fail and forget it.
  void DetachFromClient();

  const ResponseHead& head() const { return head_; }
  const Failure& failure() const { return failure_; }
  bool body_ready() const { return !buffer_.empty() || done_; }
  bool body_complete() const {
    return done_ && buffer_.empty() && failure_.kind == ErrorKind::kNone;
  }

 private:
  enum class Phase { kConnecting, kWaitingHead, kBody, kDone };

  static size_t OnWrite(char* data, size_t size, size_t n, void* user);
  static size_t OnHeader(char* data, size_t size, size_t n, void* user);
  static int OnPrereq(void* user, char*, char*, int, int);

  // Waits for Notify(); false when the awaiting coroutine was cancelled.
  static asio::awaitable<bool> WaitForChange(std::shared_ptr<Transfer> t);
  void Notify() { wake_.cancel(); }
  void RemoveHandle();
  void ArmDeadline(Clock::time_point at);
  void OnDeadline();
  void ScheduleUnpause();
  void Unpause();
  // Configures easy_ from request_. kNone on success; kProxy for a bad proxy URL (the proxy's
  // fault, not the key's), kOther for a bad request.
  Failure SetUp();

  CurlClient* client_;  // null once the Client is gone (DetachFromClient)
  // Expires when the Client is destroyed. A Transfer that is not attached to the multi any more
  // is not detached (client_ stays set) and may outlive the Client: its destructor hands the
  // easy handle back only through this.
  std::weak_ptr<CurlClient*> owner_;
  asio::io_context& io_;
  Request request_;
  CURL* easy_ = nullptr;
  // The parsed URL easy_ has as CURLOPT_CURLU (null when it has CURLOPT_URL). Held here because
  // the Client's cache may drop it first; ~Transfer resets or cleans up easy_ in its body, so
  // easy_ never outlives it.
  std::shared_ptr<CURLU> url_;
  curl_slist* header_list_ = nullptr;
  bool attached_ = false;
  bool via_proxy_ = false;
  std::string proxy_secret_;   // the proxy password, scrubbed from messages
  std::string proxy_display_;  // the proxy URL without password
  char errbuf_[CURL_ERROR_SIZE];

  Phase phase_ = Phase::kConnecting;
  bool request_started_ = false;  // PREREQFUNCTION ran: tunnel and TLS are up
  ResponseHead head_;
  bool head_complete_ = false;
  bool field_kept_ = false;  // the last header field line was kept (an obs-fold continues it)
  std::string buffer_;
  bool paused_ = false;
  bool unpause_posted_ = false;
  bool done_ = false;
  Failure failure_;

  asio::steady_timer wake_;  // a condition variable: readers wait, Notify() cancels
  asio::steady_timer deadline_;
  uint64_t deadline_generation_ = 0;
  Clock::time_point head_deadline_;
  Clock::time_point last_activity_;
};

class ExchangeImpl final : public Exchange {
 public:
  explicit ExchangeImpl(std::shared_ptr<Transfer> t) : t_(std::move(t)) {}
  ~ExchangeImpl() override { t_->Cancel("exchange destroyed"); }
  asio::awaitable<bool> ReadHead() override { return Transfer::ReadHead(t_); }
  const ResponseHead& head() const override { return t_->head(); }
  asio::awaitable<bool> ReadBody(std::string& out) override {
    return Transfer::ReadBody(t_, out);
  }
  bool BodyReady() const override { return t_->body_ready(); }
  bool BodyComplete() const override { return t_->body_complete(); }
  const Failure& failure() const override { return t_->failure(); }
  void Cancel() override { t_->Cancel("cancelled"); }

 private:
  std::shared_ptr<Transfer> t_;
};

class CurlClient final : public Client {
 public:
  CurlClient(asio::io_context& io, const ClientOptions& options);
  ~CurlClient() override;

  std::unique_ptr<Exchange> Start(Request request) override;
  size_t in_flight() const override { return attached_.size(); }

  const ClientOptions& options() const { return options_; }
  CURLM* multi() { return multi_; }
  // Easy handles are reused (curl_easy_reset between transfers): curl_easy_init and
  // curl_easy_cleanup were ~7 % of the instructions per request (bench/cpu_per_request.sh).
  // Acquire returns null when curl cannot make one; Release takes a handle no multi holds.
  CURL* AcquireEasy();
  void ReleaseEasy(CURL* easy);
  // The parsed form of `url`, for CURLOPT_CURLU: curl otherwise parses the URL string again for
  // every transfer. Null when curl's parser rejects it (the caller sets CURLOPT_URL, so the
  // transfer fails as it always did). Cached per distinct URL, up to kMaxCachedUrls; a handle
  // dropped from the cache lives on in the Transfers that hold it.
  std::shared_ptr<CURLU> ParsedUrl(const std::string& url);
  // The easy handles' CURLOPT_OPENSOCKETFUNCTION / CURLOPT_CLOSESOCKETFUNCTION (see Socket).
  static curl_socket_t OnOpenSocket(void* user, curlsocktype purpose, curl_sockaddr* address);
  static int OnCloseSocket(void* user, curl_socket_t fd);
  void Attached(Transfer* t) { attached_.insert(t); }
  void Detached(Transfer* t) { attached_.erase(t); }

 private:
  static int OnSocket(CURL* easy, curl_socket_t fd, int what, void* user, void* socketp);
  static int OnTimer(CURLM* multi, long timeout_ms, void* user);
  void ArmTimer(Clock::time_point at);
  void OnTimerFired();
  static void OnReady(const std::weak_ptr<CurlClient*>& owner, const std::shared_ptr<Socket>& s,
                      int dir, error_code ec);
  void ArmWait(const std::shared_ptr<Socket>& s, int dir);
  void Forget(std::unordered_map<curl_socket_t, std::shared_ptr<Socket>>::iterator it);
  void Action(curl_socket_t fd, int event_mask);
  void ProcessMessages();

  asio::io_context& io_;
  ClientOptions options_;
  CURLM* multi_ = nullptr;
  asio::steady_timer timer_;  // curl's timeout; see OnTimer
  bool timer_armed_ = false;   // a wait on timer_ is pending
  bool timeout_posted_ = false;  // a 0 ms timeout is queued on the loop
  // Handlers hold a weak_ptr to this: a completion already queued when the Client dies (e.g. a
  // timer that expired) must find out without touching the Client.
  std::shared_ptr<CurlClient*> self_;
  std::unordered_map<curl_socket_t, std::shared_ptr<Socket>> sockets_;
  std::unordered_set<Transfer*> attached_;
  // Reset easy handles ready for the next transfer, at most kMaxIdleEasy (each keeps its 16 KiB
  // receive buffer: the cap bounds what a burst of streams leaves behind).
  static constexpr size_t kMaxIdleEasy = 128;
  std::vector<CURL*> idle_easy_;
  // Upstream URLs are few (a pool's base URL and a handful of paths): when the cache is full it
  // is emptied and refilled, which only costs a parse per URL.
  static constexpr size_t kMaxCachedUrls = 64;
  std::unordered_map<std::string, std::shared_ptr<CURLU>> urls_;
};

// ---------------------------------------------------------------------------------------------
// CurlClient

CurlClient::CurlClient(asio::io_context& io, const ClientOptions& options)
    : io_(io), options_(options), timer_(io), self_(std::make_shared<CurlClient*>(this)) {
  if (!CurlReady()) return;
  multi_ = curl_multi_init();
  if (multi_ == nullptr) return;
  curl_multi_setopt(multi_, CURLMOPT_SOCKETFUNCTION, &CurlClient::OnSocket);
  curl_multi_setopt(multi_, CURLMOPT_SOCKETDATA, this);
  curl_multi_setopt(multi_, CURLMOPT_TIMERFUNCTION, &CurlClient::OnTimer);
  curl_multi_setopt(multi_, CURLMOPT_TIMERDATA, this);
  curl_multi_setopt(multi_, CURLMOPT_MAX_HOST_CONNECTIONS, 0L);  // unlimited
  curl_multi_setopt(multi_, CURLMOPT_MAXCONNECTS, static_cast<long>(options_.max_idle_connections));
  curl_multi_setopt(multi_, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
}

CurlClient::~CurlClient() {
  // First: handlers and Transfers that outlive us find the owner expired.
  self_.reset();
  // Exchanges that outlive us are failed and detached first, so curl_multi_cleanup sees no easy
  // handles and no callback can reach a Transfer.
  std::vector<Transfer*> left(attached_.begin(), attached_.end());
  for (Transfer* t : left) t->DetachFromClient();
  for (CURL* easy : idle_easy_) curl_easy_cleanup(easy);
  idle_easy_.clear();
  if (multi_ != nullptr) curl_multi_cleanup(multi_);  // may still report CURL_POLL_REMOVE
  for (auto& [fd, s] : sockets_) {
    s->removed = true;
    // curl owns the fd (an owned one it closed through OnCloseSocket, which already dropped
    // it from sockets_): never close it here.
    s->descriptor.release();
  }
  sockets_.clear();
}

std::unique_ptr<Exchange> CurlClient::Start(Request request) {
  auto t = std::make_shared<Transfer>(this, self_, io_, std::move(request));
  t->Begin(multi_);
  return std::make_unique<ExchangeImpl>(std::move(t));
}

CURL* CurlClient::AcquireEasy() {
  if (idle_easy_.empty()) return curl_easy_init();
  CURL* easy = idle_easy_.back();
  idle_easy_.pop_back();
  return easy;
}

std::shared_ptr<CURLU> CurlClient::ParsedUrl(const std::string& url) {
  if (auto it = urls_.find(url); it != urls_.end()) return it->second;
  std::shared_ptr<CURLU> parsed(curl_url(), &curl_url_cleanup);
  if (parsed == nullptr) return nullptr;
  // The flags curl itself parses CURLOPT_URL with (lib/url.c, parseurlandfillconn, 7.88), so a
  // URL means the same either way.
  if (curl_url_set(parsed.get(), CURLUPART_URL, url.c_str(),
                   CURLU_GUESS_SCHEME | CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK) {
    return nullptr;
  }
  if (urls_.size() >= kMaxCachedUrls) urls_.clear();
  urls_.emplace(url, parsed);
  return parsed;
}

void CurlClient::ReleaseEasy(CURL* easy) {
  if (idle_easy_.size() >= kMaxIdleEasy) {
    curl_easy_cleanup(easy);
    return;
  }
  // Back to the defaults: no option (callbacks, user pointers, headers, body) of the last
  // transfer survives; the connection it used stays in the multi's cache.
  curl_easy_reset(easy);
  idle_easy_.push_back(easy);
}

curl_socket_t CurlClient::OnOpenSocket(void* user, curlsocktype purpose, curl_sockaddr* address) {
  auto* self = static_cast<CurlClient*>(user);
  if (purpose != CURLSOCKTYPE_IPCXN) return CURL_SOCKET_BAD;
  curl_socket_t fd = ::socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
  if (fd == CURL_SOCKET_BAD) return CURL_SOCKET_BAD;
  auto it = self->sockets_.find(fd);
  if (it != self->sockets_.end()) self->Forget(it);  // a stale entry under a reused number
  auto s = std::make_shared<Socket>(self->io_, fd);
  error_code ec;
  s->descriptor.assign(fd, ec);
  if (ec) {
    ::close(fd);
    return CURL_SOCKET_BAD;  // curl fails the connect
  }
  s->owned = true;
  self->sockets_.emplace(fd, std::move(s));
  return fd;
}

int CurlClient::OnCloseSocket(void* user, curl_socket_t fd) {
  auto* self = static_cast<CurlClient*>(user);
  auto it = self->sockets_.find(fd);
  if (it != self->sockets_.end()) self->Forget(it);
  return ::close(fd);
}

int CurlClient::OnSocket(CURL* /*easy*/, curl_socket_t fd, int what, void* user, void* socketp) {
  auto* self = static_cast<CurlClient*>(user);
  auto it = self->sockets_.find(fd);
  if (what == CURL_POLL_REMOVE) {
    if (it == self->sockets_.end()) return 0;
    if (it->second->owned) {
      // The connection goes back to curl's cache (or is about to be closed, which
      // OnCloseSocket sees): stay registered. A wait still pending finds `want` empty.
      it->second->want = 0;
    } else {
      self->Forget(it);
    }
    return 0;
  }
  std::shared_ptr<Socket> s;
  if (it != self->sockets_.end() &&
      (it->second.get() == socketp || (it->second->owned && socketp == nullptr))) {
    // Ours since OnOpenSocket: curl forgets its socketp at each CURL_POLL_REMOVE.
    s = it->second;
    if (socketp == nullptr) curl_multi_assign(self->multi_, fd, s.get());
  } else {
    // A new socket. An entry under the same fd that curl does not know (socketp differs) is
    // stale: the number was reused after a close we were not told about. Drop it before
    // registering the new descriptor with the reactor.
    if (it != self->sockets_.end()) self->Forget(it);
    s = std::make_shared<Socket>(self->io_, fd);
    error_code ec;
    s->descriptor.assign(fd, ec);
    if (ec) return -1;  // curl fails the transfers on this socket
    self->sockets_.emplace(fd, s);
    curl_multi_assign(self->multi_, fd, s.get());
  }
  s->want = what;
  self->ArmWait(s, kRead);
  self->ArmWait(s, kWrite);
  return 0;
}

void CurlClient::Forget(std::unordered_map<curl_socket_t, std::shared_ptr<Socket>>::iterator it) {
  std::shared_ptr<Socket> s = std::move(it->second);
  sockets_.erase(it);
  s->removed = true;
  // release(), not close(): curl owns the fd. Pending waits complete with operation_aborted.
  s->descriptor.release();
}

void CurlClient::ArmWait(const std::shared_ptr<Socket>& s, int dir) {
  const int bit = dir == kRead ? CURL_POLL_IN : CURL_POLL_OUT;
  if (s->removed || (s->want & bit) == 0 || s->pending[dir]) return;
  s->pending[dir] = true;
  // curl's contract is level-triggered readiness, and Asio's epoll reactor is edge-triggered: a
  // socket that is already readable/writable when we start waiting (curl stopped before EAGAIN)
  // produces no new edge. Asio covers it: a wait (never speculative) on a descriptor with no
  // queued wait re-arms it with EPOLL_CTL_MOD, and the kernel re-checks readiness on MOD and
  // reports a socket that is ready now. (A poll() here before each wait used to close the same
  // window; it was one system call per wait: bench/cpu_per_request.sh --syscalls.)
  std::weak_ptr<CurlClient*> owner = self_;
  s->descriptor.async_wait(
      dir == kRead ? asio::posix::descriptor_base::wait_read
                   : asio::posix::descriptor_base::wait_write,
      [owner, s, dir](error_code ec) { OnReady(owner, s, dir, ec); });
}

void CurlClient::OnReady(const std::weak_ptr<CurlClient*>& owner, const std::shared_ptr<Socket>& s,
                         int dir, error_code ec) {
  s->pending[dir] = false;
  // Checked before touching the Client: a removed socket's fd may belong to someone else now.
  if (s->removed || ec == asio::error::operation_aborted) return;
  std::shared_ptr<CurlClient*> alive = owner.lock();
  if (!alive) return;
  CurlClient* self = *alive;
  const int bit = dir == kRead ? CURL_POLL_IN : CURL_POLL_OUT;
  if ((s->want & bit) == 0) return;  // curl changed its mind while we waited
  int mask = ec ? CURL_CSELECT_ERR : (dir == kRead ? CURL_CSELECT_IN : CURL_CSELECT_OUT);
  self->Action(s->fd, mask);
  self->ArmWait(s, dir);  // no-op if curl removed the socket or no longer wants this direction
}

int CurlClient::OnTimer(CURLM* /*multi*/, long timeout_ms, void* user) {
  auto* self = static_cast<CurlClient*>(user);
  // Re-arming a timer costs a timerfd_settime() whenever it becomes the reactor's earliest, and
  // that syscall is expensive under virtualization (bench/: it was a quarter of the CPU per
  // request, as curl asks for a 0 ms timeout on every new transfer). So: a 0 ms timeout is a
  // post(), not a timer; a later deadline than the armed one keeps the armed one (firing early
  // is harmless: OnTimerFired runs socket_action and re-arms from curl_multi_timeout, since
  // curl calls us only when its earliest deadline changes). A cancel (-1) is left to expire.
  if (timeout_ms < 0) return 0;
  if (timeout_ms == 0) {
    // Never call socket_action from here (we may be inside curl): run it from the loop.
    if (!self->timeout_posted_) {
      self->timeout_posted_ = true;
      std::weak_ptr<CurlClient*> owner = self->self_;
      asio::post(self->io_, [owner] {
        std::shared_ptr<CurlClient*> alive = owner.lock();
        if (!alive) return;
        (*alive)->timeout_posted_ = false;
        (*alive)->OnTimerFired();
      });
    }
    return 0;
  }
  self->ArmTimer(Clock::now() + std::chrono::milliseconds(timeout_ms));
  return 0;
}

void CurlClient::ArmTimer(Clock::time_point at) {
  if (timer_armed_ && timer_.expiry() <= at) return;  // fires first; re-armed then
  timer_armed_ = true;
  timer_.expires_at(at);
  std::weak_ptr<CurlClient*> owner = self_;
  timer_.async_wait([owner](error_code ec) {
    if (ec) return;  // re-armed (a newer wait is pending) or the client is going away
    std::shared_ptr<CurlClient*> alive = owner.lock();
    if (!alive) return;
    (*alive)->timer_armed_ = false;
    (*alive)->OnTimerFired();
  });
}

void CurlClient::OnTimerFired() {
  Action(CURL_SOCKET_TIMEOUT, 0);
  // curl tells OnTimer only about changes of its earliest deadline; after an early wake-up
  // (see OnTimer) that deadline may be unchanged and still ahead: ask for it.
  long next_ms = -1;
  if (curl_multi_timeout(multi_, &next_ms) != CURLM_OK || next_ms < 0) return;
  if (next_ms == 0) {
    OnTimer(multi_, 0, this);
  } else {
    ArmTimer(Clock::now() + std::chrono::milliseconds(next_ms));
  }
}

void CurlClient::Action(curl_socket_t fd, int event_mask) {
  int running = 0;
  curl_multi_socket_action(multi_, fd, event_mask, &running);
  ProcessMessages();
}

void CurlClient::ProcessMessages() {
  int left = 0;
  while (CURLMsg* msg = curl_multi_info_read(multi_, &left)) {
    if (msg->msg != CURLMSG_DONE) continue;
    // Copy out before OnDone removes the handle: the message dies with it.
    CURL* easy = msg->easy_handle;
    CURLcode result = msg->data.result;
    Transfer* t = nullptr;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, &t);
    if (t != nullptr) {
      std::shared_ptr<Transfer> keep = t->shared_from_this();
      keep->OnDone(result);
    } else {
      curl_multi_remove_handle(multi_, easy);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Transfer

Transfer::~Transfer() {
  RemoveHandle();
  if (easy_ != nullptr) {
    std::shared_ptr<CurlClient*> alive = owner_.lock();
    if (alive && client_ != nullptr) {
      (*alive)->ReleaseEasy(easy_);  // reset there, before header_list_ goes
    } else {
      curl_easy_cleanup(easy_);
    }
  }
  if (header_list_ != nullptr) curl_slist_free_all(header_list_);
}

void Transfer::Begin(CURLM* multi) {
  if (multi == nullptr) {
    Fail(ErrorKind::kOther, "curl could not be initialized");
    return;
  }
  easy_ = client_->AcquireEasy();
  if (easy_ == nullptr) {
    Fail(ErrorKind::kOther, "curl_easy_init failed");
    return;
  }
  Failure error = SetUp();
  if (error.kind != ErrorKind::kNone) {
    Fail(error.kind, std::move(error.message));
    return;
  }
  CURLMcode rc = curl_multi_add_handle(multi, easy_);
  if (rc != CURLM_OK) {
    Fail(ErrorKind::kOther, std::string("curl_multi_add_handle: ") + curl_multi_strerror(rc));
    return;
  }
  attached_ = true;
  client_->Attached(this);
}

Failure Transfer::SetUp() {
  const Request& r = request_;
  const ClientOptions& opt = client_->options();
  CURL* e = easy_;
  auto bad_request = [](std::string message) { return Failure{ErrorKind::kOther, message, 0}; };
  if (!IsToken(r.method)) return bad_request("invalid method");

  curl_easy_setopt(e, CURLOPT_PRIVATE, this);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf_);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  // CURLOPT_CURLU, when set, is what curl uses (it takes a copy per transfer); curl_easy_reset
  // in ReleaseEasy clears it again.
  url_ = client_->ParsedUrl(r.url);
  if (url_ != nullptr) {
    if (curl_easy_setopt(e, CURLOPT_CURLU, url_.get()) != CURLE_OK) return bad_request("invalid URL");
  } else if (curl_easy_setopt(e, CURLOPT_URL, r.url.c_str()) != CURLE_OK) {
    return bad_request("invalid URL");
  }
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
  // h2 through ALPN on https, HTTP/1.1 on http. PIPEWAIT (https only): a second request to the
  // same origin waits for the first connection's ALPN answer instead of opening another
  // connection. Never on http, where no answer can allow multiplexing: libcurl (7.88) parks such a
  // request (MSTATE_PENDING) while another connection to the origin is in use and wakes it only
  // when some transfer completes — a burst of streams then waited for the first streams to end
  // (tests/integration/drain_test.cc found it: 92 of 100 streams started 6 s late).
  curl_easy_setopt(e, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_2TLS));
  const bool tls = r.url.size() >= 8 && strncasecmp(r.url.c_str(), "https://", 8) == 0;
  curl_easy_setopt(e, CURLOPT_PIPEWAIT, tls ? 1L : 0L);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(r.connect_timeout_ms));
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 0L);  // no total timeout: streams may run for hours
  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(e, CURLOPT_TCP_KEEPIDLE, 30L);
  curl_easy_setopt(e, CURLOPT_TCP_KEEPINTVL, 15L);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, opt.verify_tls ? 1L : 0L);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, opt.verify_tls ? 2L : 0L);
  if (!opt.ca_file.empty()) curl_easy_setopt(e, CURLOPT_CAINFO, opt.ca_file.c_str());

  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &Transfer::OnWrite);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, this);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, &Transfer::OnHeader);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, this);
  curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, &Transfer::OnPrereq);
  curl_easy_setopt(e, CURLOPT_PREREQDATA, this);
  // The connection keeps these (and the Client pointer) for its whole life in the multi's cache;
  // the Client outlives its multi, and ~CurlClient closes the cache before it goes.
  curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, &CurlClient::OnOpenSocket);
  curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, client_);
  curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, &CurlClient::OnCloseSocket);
  curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, client_);
  // The proxy's "HTTP/1.1 200 Connection established" must never reach OnHeader as if it were
  // the upstream's head (OnHeader also ignores everything before PREREQFUNCTION).
  curl_easy_setopt(e, CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);

  if (r.proxy_url.empty()) {
    // "" disables proxies, including the http_proxy/https_proxy environment variables.
    curl_easy_setopt(e, CURLOPT_PROXY, "");
  } else {
    StatusOr<ProxyUrl> proxy = ParseProxyUrl(r.proxy_url);
    if (!proxy.ok()) {
      return Failure{ErrorKind::kProxy, "invalid proxy URL: " + proxy.status().message(), 0};
    }
    via_proxy_ = true;
    proxy_secret_ = proxy->password;
    proxy_display_ = proxy->DisplayUrl();
    // The full URL, credentials percent-encoded: curl 7.88 percent-decodes the user and password
    // of a proxy URL for HTTP Basic and for SOCKS5 (checked by the microsocks test with "@:%").
    curl_easy_setopt(e, CURLOPT_PROXY, r.proxy_url.c_str());
    if (proxy->scheme == "http" || proxy->scheme == "https") {
      // A tunnel also for http:// upstreams: the proxy sees only CONNECT host:port and never the
      // request (its headers carry the provider key).
      curl_easy_setopt(e, CURLOPT_HTTPPROXYTUNNEL, 1L);
      curl_easy_setopt(e, CURLOPT_PROXYAUTH, static_cast<long>(CURLAUTH_BASIC));
    }
    if (proxy->scheme == "https") {
      curl_easy_setopt(e, CURLOPT_PROXY_SSL_VERIFYPEER, opt.verify_tls ? 1L : 0L);
      curl_easy_setopt(e, CURLOPT_PROXY_SSL_VERIFYHOST, opt.verify_tls ? 2L : 0L);
      if (!opt.ca_file.empty()) curl_easy_setopt(e, CURLOPT_PROXY_CAINFO, opt.ca_file.c_str());
    }
  }

  bool has_content_type = false;
  for (const auto& [name, value] : r.headers) {
    if (!IsToken(name) || HasControlChars(value)) return bad_request("invalid header");
    std::string lower = ToLower(name);
    if (IsDroppedHeader(lower)) continue;
    if (lower == "content-type") has_content_type = true;
    // "Name:" would delete a header in curl's syntax; "Name;" sends it with an empty value.
    std::string line = value.empty() ? name + ";" : name + ": " + value;
    curl_slist* next = curl_slist_append(header_list_, line.c_str());
    if (next == nullptr) return bad_request("out of memory");
    header_list_ = next;
  }
  // Disable "Expect: 100-continue" (a round trip, and some upstreams mishandle it), and curl's
  // default form Content-Type when the caller gave none.
  header_list_ = curl_slist_append(header_list_, "Expect:");
  if (!has_content_type) header_list_ = curl_slist_append(header_list_, "Content-Type:");
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, header_list_);

  if (r.method == "GET" && r.body.empty()) {
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
  } else if (r.method == "HEAD") {
    curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
  } else {
    // request_.body is owned by this Transfer and outlives the easy handle's use of it.
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, request_.body.data());
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(r.body.size()));
    if (r.method != "POST") curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, r.method.c_str());
  }
  return {};
}

void Transfer::RemoveHandle() {
  if (!attached_) return;
  attached_ = false;
  if (client_ != nullptr) {
    curl_multi_remove_handle(client_->multi(), easy_);
    client_->Detached(this);
  }
}

void Transfer::Fail(ErrorKind kind, std::string message, int proxy_status) {
  // The first failure sticks; a transfer that ended well can still be cancelled (its unread
  // body is dropped), but not time out or break afterwards.
  if (failure_.kind == ErrorKind::kNone && !(done_ && kind != ErrorKind::kCancelled)) {
    failure_.kind = kind;
    failure_.message = ScrubSecret(std::move(message), proxy_secret_);
    failure_.proxy_status = proxy_status;
  }
  RemoveHandle();
  done_ = true;
  phase_ = Phase::kDone;
  ++deadline_generation_;
  deadline_.cancel();
  Notify();
}

void Transfer::Cancel(std::string_view why) {
  if (failure_.kind == ErrorKind::kNone) buffer_.clear();
  Fail(ErrorKind::kCancelled, std::string(why));
}

void Transfer::DetachFromClient() {
  Fail(ErrorKind::kCancelled, "upstream client destroyed");
  client_ = nullptr;
}

void Transfer::OnDone(CURLcode code) {
  CurlOutcome o;
  o.code = code;
  curl_easy_getinfo(easy_, CURLINFO_HTTP_CONNECTCODE, &o.connect_code);
  curl_easy_getinfo(easy_, CURLINFO_PROXY_ERROR, &o.proxy_error);
  o.via_proxy = via_proxy_;
  o.request_started = request_started_;
  o.detail = errbuf_;
  o.proxy_display = proxy_display_;
  Failure f = ClassifyCurlOutcome(o, proxy_secret_);
  if (f.kind == ErrorKind::kNone && !head_complete_) {
    f.kind = ErrorKind::kOther;
    f.message = "the transfer ended without a response head";
  }
  RemoveHandle();  // the connection goes back to the multi's cache
  if (f.kind == ErrorKind::kNone) {
    done_ = true;
    phase_ = Phase::kDone;
    ++deadline_generation_;
    deadline_.cancel();
    Notify();
  } else {
    Fail(f.kind, std::move(f.message), f.proxy_status);
  }
}

int Transfer::OnPrereq(void* user, char*, char*, int, int) {
  auto* t = static_cast<Transfer*>(user);
  t->request_started_ = true;
  t->phase_ = Phase::kWaitingHead;
  t->head_deadline_ = Clock::now() + std::chrono::milliseconds(t->request_.first_byte_timeout_ms);
  t->ArmDeadline(t->head_deadline_);
  return CURL_PREREQFUNC_OK;
}

size_t Transfer::OnHeader(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t len = size * n;
  // Trailers after the head, and anything before the request went out (a proxy's CONNECT
  // answer), are not the upstream's head.
  if (t->head_complete_ || !t->request_started_) return len;
  std::string_view line(data, len);
  if (line.rfind("HTTP/", 0) == 0) {
    // A status line starts a new head (after a 1xx the headers start over).
    t->head_.headers.clear();
    std::string_view rest = line.substr(5);
    size_t sp = rest.find(' ');
    std::string_view version = rest.substr(0, sp);
    t->head_.http_version = version == "2"     ? 20
                            : version == "1.0" ? 10
                            : version == "3"   ? 30
                                               : 11;
    int status = 0;
    if (sp != std::string_view::npos) {
      for (char c : rest.substr(sp + 1, 3)) {
        if (c < '0' || c > '9') break;
        status = status * 10 + (c - '0');
      }
    }
    t->head_.status = status;
    if (t->phase_ == Phase::kWaitingHead) {
      t->phase_ = Phase::kBody;
      t->last_activity_ = Clock::now();
      t->ArmDeadline(t->last_activity_ + std::chrono::milliseconds(t->request_.idle_timeout_ms));
    }
    return len;
  }
  std::string_view trimmed = Trim(line);
  if (trimmed.empty()) {
    // The empty line ends a header block; a 1xx block is followed by another one.
    if (t->head_.status >= 200 || t->head_.status == 101) {
      t->head_complete_ = true;
      t->Notify();
    }
    return len;
  }
  if (line.front() == ' ' || line.front() == '\t') {
    // obs-fold: a continuation of the previous value (if that field was kept).
    if (t->field_kept_ && !t->head_.headers.empty()) {
      t->head_.headers.back().second.append(" ").append(trimmed);
    }
    return len;
  }
  size_t colon = trimmed.find(':');
  t->field_kept_ = false;
  if (colon == std::string_view::npos) return len;
  const std::string_view name = Trim(trimmed.substr(0, colon));
  if (!WantsHeader(t->request_.response_headers, name)) return len;
  t->head_.headers.emplace_back(ToLower(name), std::string(Trim(trimmed.substr(colon + 1))));
  t->field_kept_ = true;
  return len;
}

size_t Transfer::OnWrite(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t len = size * n;
  if (t->done_) return CURL_WRITEFUNC_ERROR;
  // Accept into an empty buffer always (progress even if one write exceeds the bound), else only
  // up to the bound. A pause leaves this write with curl, which delivers it again on unpause.
  if (!t->buffer_.empty() && t->buffer_.size() + len > t->request_.max_buffered_bytes) {
    t->paused_ = true;
    return CURL_WRITEFUNC_PAUSE;
  }
  t->buffer_.append(data, len);
  t->last_activity_ = Clock::now();
  t->Notify();
  return len;
}

void Transfer::ArmDeadline(Clock::time_point at) {
  uint64_t generation = ++deadline_generation_;
  deadline_.expires_at(at);
  std::weak_ptr<Transfer> weak = weak_from_this();
  deadline_.async_wait([weak, generation](error_code ec) {
    if (ec) return;
    std::shared_ptr<Transfer> t = weak.lock();
    if (t && t->deadline_generation_ == generation) t->OnDeadline();
  });
}

void Transfer::OnDeadline() {
  Clock::time_point now = Clock::now();
  switch (phase_) {
    case Phase::kWaitingHead:
      if (now >= head_deadline_) {
        Fail(ErrorKind::kTimeout, "no response head within " +
                                      std::to_string(request_.first_byte_timeout_ms) + " ms");
      } else {
        ArmDeadline(head_deadline_);
      }
      return;
    case Phase::kBody: {
      if (paused_) return;  // the reader is slow, not the upstream; Unpause() re-arms
      Clock::time_point due = last_activity_ + std::chrono::milliseconds(request_.idle_timeout_ms);
      if (now >= due) {
        Fail(ErrorKind::kTimeout, "no body data for " +
                                      std::to_string(request_.idle_timeout_ms) + " ms");
      } else {
        // Lazy re-arm: writes only bump last_activity_, the timer catches up here.
        ArmDeadline(due);
      }
      return;
    }
    case Phase::kConnecting:
    case Phase::kDone:
      return;
  }
}

void Transfer::ScheduleUnpause() {
  if (!paused_ || unpause_posted_ || !attached_) return;
  unpause_posted_ = true;
  // Pitfall: curl_easy_pause must not run inside a curl callback; posting guarantees that.
  std::weak_ptr<Transfer> weak = weak_from_this();
  asio::post(io_, [weak] {
    std::shared_ptr<Transfer> t = weak.lock();
    if (!t) return;
    t->unpause_posted_ = false;
    t->Unpause();
  });
}

void Transfer::Unpause() {
  if (!paused_ || !attached_) return;
  paused_ = false;  // before the call: it may re-enter OnWrite, which may pause again
  last_activity_ = Clock::now();
  if (phase_ == Phase::kBody) {
    ArmDeadline(last_activity_ + std::chrono::milliseconds(request_.idle_timeout_ms));
  }
  // curl re-delivers the paused write now and then asks for a 0 ms timeout through OnTimer,
  // whose socket_action reads the rest.
  CURLcode rc = curl_easy_pause(easy_, CURLPAUSE_CONT);
  if (rc != CURLE_OK) {
    Fail(ErrorKind::kOther, std::string("curl_easy_pause: ") + curl_easy_strerror(rc));
  }
}

asio::awaitable<bool> Transfer::WaitForChange(std::shared_ptr<Transfer> t) {
  t->wake_.expires_at(Clock::time_point::max());
  try {
    co_await t->wake_.async_wait(asio::as_tuple(asio::use_awaitable));
  } catch (const boost::system::system_error&) {
    // With throw_if_cancelled (Asio's default) a cancelled coroutine throws here; handled below.
  }
  asio::cancellation_state state = co_await asio::this_coro::cancellation_state;
  if (state.cancelled() != asio::cancellation_type::none) {
    t->Cancel("the reading coroutine was cancelled");
    co_return false;
  }
  co_return true;
}

asio::awaitable<bool> Transfer::ReadHead(std::shared_ptr<Transfer> t) {
  for (;;) {
    if (t->failure_.kind == ErrorKind::kCancelled) co_return false;
    if (t->head_complete_) co_return true;
    if (t->done_) {
      if (t->failure_.kind == ErrorKind::kNone) {
        t->failure_ = {ErrorKind::kOther, "the transfer ended without a response head", 0};
      }
      co_return false;
    }
    // (Not `if (!co_await ...)`: g++ 12 miscompiles a co_await in that position here.)
    bool changed = co_await WaitForChange(t);
    if (!changed) co_return false;
  }
  co_return false;  // unreachable
}

asio::awaitable<bool> Transfer::ReadBody(std::shared_ptr<Transfer> t, std::string& out) {
  for (;;) {
    if (t->failure_.kind == ErrorKind::kCancelled) co_return false;
    if (!t->buffer_.empty()) {
      if (out.empty()) {
        out.swap(t->buffer_);  // no copy; our buffer takes the caller's (empty) capacity
      } else {
        out.append(t->buffer_);
      }
      t->buffer_.clear();
      t->ScheduleUnpause();
      co_return true;
    }
    if (t->done_) co_return false;
    // (Not `if (!co_await ...)`: g++ 12 miscompiles a co_await in that position here.)
    bool changed = co_await WaitForChange(t);
    if (!changed) co_return false;
  }
  co_return false;  // unreachable
}

}  // namespace

std::unique_ptr<Client> CreateCurlClient(asio::io_context& io, const ClientOptions& options) {
  return std::make_unique<CurlClient>(io, options);
}

}  // namespace keygate::upstream
