// A real HTTP/1.1 upstream on loopback for end-to-end tests and benchmarks: speaks enough of the
// OpenAI (chat, completions, embeddings, responses) and Anthropic (messages, count_tokens) APIs,
// streaming and not, and can be scripted per upstream key. It records every request it receives.
//
// Behaviour per key: an explicit Script() for that key, else one read from the key itself —
// a key containing "-ok-" (or anything else) answers normally; "-s401-", "-s402-", "-s403-",
// "-s429-", "-s500-", "-s529-" answer that status with the provider's error body ("-s429-" sends
// Retry-After: 1); "-budget-" answers LiteLLM's 400 budget_exceeded; "-slow-" delays the first
// byte by 1.5 s; "-reset-" resets the connection mid-stream; "-long-" streams 200 events 20 ms
// apart; "-big-" streams 20,000 events of about 1 KB each (~20 MB) as fast as the reader takes
// them. A chat or messages request that offers tools and carries no tool result yet gets a call
// of its first tool with the arguments {"city": "Paris"} (streamed in two fragments) instead of
// text, in the request's format. A script can also change the number of stream events, their pace
// and their size. The spend routes (GET /key/info, GET /api/v1/key) answer from SetSpend().
//
// Wire-level routes, for tests of the HTTP client itself (query parameters are integers; every
// answer carries "x-stub-connection: <id>", 1, 2, ... in accept order):
//   /echo                     200, Content-Length, the request body echoed back (and X-Multi twice)
//   /fold                     200 "ok" with X-Other: c and an obs-folded X-Fold ("a", then " b")
//   /status?code=C            status C with a small JSON body
//   /sse?events=N&size=B&delay_ms=D
//                             200 text/event-stream, chunked; event i is "data: <i> <pad>\n\n",
//                             about B bytes; D ms between events (0: written in 64 KiB batches)
//   /delay?ms=D               waits D ms before the head, then as /echo
//   /stall?bytes=N            head (chunked) and N body bytes, then silence until the client leaves
//   /reset?bytes=N            head (Content-Length 10 MiB) and N body bytes, 100 ms later a TCP RST
//   /forever                  chunked events every 5 ms until the client leaves
//
// Thread safety: one thread accepts, one thread serves each connection; the public methods are
// safe from any thread.
#ifndef KEYGATE_TESTS_FAKES_UPSTREAM_STUB_H_
#define KEYGATE_TESTS_FAKES_UPSTREAM_STUB_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace keygate::testing {

struct StubBehavior {
  int status = 200;                // non-200: an error response of the provider's shape
  std::string error_type;          // error.type / error.code override
  std::string error_message;       // error message override
  int retry_after_s = -1;          // >= 0: send Retry-After
  int first_byte_delay_ms = 0;
  int stream_events = 3;           // content events in a stream
  int event_interval_ms = 0;
  int event_padding_bytes = 0;     // extra bytes of text in each content event
  int reset_after_events = -1;     // >= 0: reset the connection after that many events
  int prompt_tokens = 11;
  int completion_tokens = 7;
  std::string ok_body;  // non-empty: a non-streamed 200's body, sent as is
};

// The answer of the spend routes, LiteLLM's GET /key/info and OpenRouter's GET /api/v1/key, for
// one key (sent as Bearer). A key without one gets 401.
struct StubSpend {
  double spend_usd = 0;
  std::optional<double> budget_usd;  // null in the answer when absent
  int status = 200;                  // non-200: an error body
  bool budget_exceeded = false;      // LiteLLM's 400 budget_exceeded error instead
  std::string raw_body;              // sent as is when not empty (garbage, truncated JSON)
  int delay_ms = 0;                  // before the status line
  // The answer waits until ReleaseHeld() (or Stop()), and is then made from the key's script
  // current at that moment: a test can act while a probe is in flight, then decide what it reads.
  bool hold = false;
};

struct StubRequest {
  std::string method, path, key, body;         // path: the request target, query included
  std::map<std::string, std::string> headers;  // lower-cased names
  int connection_id = 0;
  std::string peer;        // "127.0.0.1:port"
  uint16_t peer_port = 0;  // the TCP peer of the connection (the client, or its proxy)
  // The value of header `lower_name`, or "".
  std::string Header(const std::string& lower_name) const;
};

class UpstreamStub {
 public:
  UpstreamStub();
  ~UpstreamStub();
  // Listens on 127.0.0.1:`port` (0 = any free port). Returns false when it cannot bind.
  bool Start(uint16_t port = 0);
  void Stop();
  uint16_t port() const { return port_; }
  std::string base_url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::string Url(const std::string& target) const { return base_url() + target; }

  void Script(const std::string& key, StubBehavior behavior);
  void ClearScripts();
  // Scripts the spend routes for `key` (replacing an earlier script).
  void SetSpend(const std::string& key, StubSpend spend);
  // Spend requests waiting on a `hold` script right now.
  int held() const;
  // Lets every held spend request answer (from the scripts current now).
  void ReleaseHeld();
  std::vector<StubRequest> requests() const;
  size_t request_count() const;
  size_t CountForKey(const std::string& key) const;
  void ClearRequests();
  int connections_accepted() const { return connections_.load(); }
  int connections_closed() const;
  // Waits until at least `n` connections were closed by the client (or broke); false on timeout.
  bool WaitForClosed(int n, std::chrono::milliseconds timeout) const;
  // Body bytes of /sse answers handed to the kernel so far (all connections).
  int64_t sse_bytes_written() const { return sse_written_.load(); }

  // The behaviour for a key (scripts, then the key's name).
  StubBehavior BehaviorFor(const std::string& key) const;

 private:
  void AcceptLoop();
  void Serve(int fd, int connection_id, std::string peer);
  std::string SpendResponse(const StubRequest& req) const;  // the whole HTTP response
  enum class Wire { kNotWire, kKeepAlive, kClose };
  Wire ServeWireRoute(int fd, const StubRequest& req);

  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> connections_{0};
  std::atomic<int64_t> sse_written_{0};
  mutable std::condition_variable closed_cv_;
  int closed_ = 0;                               // GUARDED_BY(mu_)
  std::thread acceptor_;
  mutable std::mutex mu_;
  std::map<std::string, StubBehavior> scripts_;  // GUARDED_BY(mu_)
  std::map<std::string, StubSpend> spends_;      // GUARDED_BY(mu_)
  mutable std::condition_variable released_cv_;
  mutable int held_ = 0;                         // GUARDED_BY(mu_)
  uint64_t releases_ = 0;                        // GUARDED_BY(mu_)
  std::vector<StubRequest> requests_;            // GUARDED_BY(mu_)
  std::vector<std::thread> workers_;             // GUARDED_BY(mu_)
  std::vector<int> open_fds_;                    // GUARDED_BY(mu_)
};

}  // namespace keygate::testing

#endif  // KEYGATE_TESTS_FAKES_UPSTREAM_STUB_H_
