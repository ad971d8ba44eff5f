// Provider facts, pure code (no I/O): how a key is sent, how an upstream outcome is classified,
// how a client request is inspected and rewritten, how usage is read from responses and SSE
// streams, and the error JSON each client format expects.
//
// Thread safety: every function here is pure; SseUsageFilter is a value used by one request.
#ifndef KEYGATE_PROVIDER_PROVIDER_H_
#define KEYGATE_PROVIDER_PROVIDER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "config/config.h"

namespace keygate::provider {

namespace internal {
struct ChatChunk;
class ChatChunkShape;
struct MayDiffer;
}  // namespace internal

using config::AuthStyle;
using config::Format;

// ---------------------------------------------------------------- auth

// The header that carries an upstream key: {"authorization", "Bearer sk-…"} or {"x-api-key", …}.
std::pair<std::string, std::string> AuthHeader(AuthStyle style, std::string_view secret);

// ---------------------------------------------------------------- classification

enum class Classifier { kOpenAI, kAnthropic, kLiteLLM };
std::optional<Classifier> ParseClassifier(std::string_view name);  // "openai", "anthropic", "litellm"

// What went wrong below HTTP, as the upstream client reports it.
enum class Transport {
  kOk,        // an HTTP response arrived (see status)
  kConnect,   // could not connect to the upstream (refused, DNS, unreachable)
  kProxy,     // the egress proxy failed: refused CONNECT, proxy auth, SOCKS error
  kTls,       // TLS handshake or certificate failure
  kTimeout,   // connect, first-byte or idle timeout
  kReset,     // the connection broke mid-response
  kOther,
};

struct UpstreamOutcome {
  Transport transport = Transport::kOk;
  int status = 0;                          // HTTP status when transport == kOk
  // The (first bytes of the) response body. Rows that read error.type/code/message need it to be
  // complete JSON; a truncated body classifies by status alone, so pass at least 16 KiB of it.
  std::string_view body;
  std::optional<int64_t> retry_after_ms;   // parsed Retry-After, when present
};

enum class Action {
  kPass,      // hand the response to the client; no key action (success, or the client's error)
  kRetry,     // transient: try another key; counts toward the key's outlier ejection
  kCooldown,  // rate limited: cool the key down for cooldown_ms, try another key
  kRotate,    // the key is dead (revoked, out of budget, out of quota): rotate it, try another key
  kProxy,     // the egress proxy failed (or the upstream refuses its exit region): never the
              // key's fault; mark the proxy, try again
};
std::string_view ActionName(Action a);

struct Verdict {
  Action action = Action::kPass;
  // A short fixed vocabulary, fit for a metric label: "ok", "client_error",
  // "model_access_denied" (kPass); "upstream_5xx", "overloaded", "request_timeout",
  // "unexpected_status", "connect_failed", "tls_failed", "timeout", "connection_reset",
  // "transport_failed" (kRetry); "rate_limited" (kCooldown); "invalid_key", "key_forbidden",
  // "payment_required", "insufficient_quota", "billing_limit_reached", "credit_balance_too_low",
  // "usage_limit_reached", "key_disabled", "budget_exceeded", "key_expired" (kRotate);
  // "proxy_failed", "region_blocked" (kProxy).
  std::string reason;
  int64_t cooldown_ms = 0;  // kCooldown only: Retry-After when given (>= 0), else 0 (caller's backoff)
};

// Classifies one upstream outcome. A transport failure decides alone (status and body unread:
// a proxy's own 401 must never read as the key's). Otherwise the provider's table decides (see
// provider/classifier.cc: one table per classifier, first matching row wins, each row tested);
// a body that is not JSON classifies by status.
Verdict Classify(Classifier classifier, const UpstreamOutcome& outcome);

// Parses a Retry-After header value into milliseconds from `now_ms` (epoch ms). Accepts
// delta-seconds ("30"; also "1.5", rounded up to the ms, and a negative number, read as 0 — not
// RFC 7231, but unambiguous) and HTTP dates (IMF-fixdate "Sun, 06 Nov 1994 08:49:37 GMT", and the
// obsolete RFC 850 and asctime forms); a date in the past gives 0. nullopt for anything else.
std::optional<int64_t> ParseRetryAfterMs(std::string_view value, int64_t now_ms);

// ---------------------------------------------------------------- requests

struct Span {
  size_t begin = 0, end = 0;  // byte offsets into the body; begin == end means absent
  bool present() const { return end > begin; }
};

struct RequestInfo {
  std::string model;          // decoded; never empty
  bool stream = false;        // "stream": true (null or absent: false)
  Span model_value;           // the JSON string token of "model", quotes included
  Span stream_options_value;  // the JSON value of "stream_options" (an object or null), if any
  bool include_usage = false; // stream_options.include_usage == true (the last of duplicates)
  // The first integer of max_tokens / max_completion_tokens / max_output_tokens (12.0 counts).
  std::optional<int64_t> max_tokens;
  size_t object_end = 0;      // offset of the top-level closing '}'
  // Unicode code points of prompt text: messages[*].content (a string, or parts with "text"),
  // system, prompt, input (strings, or items with content/text). For estimates only.
  size_t approx_prompt_chars = 0;
};

// Validates `body` as one JSON object (strict: UTF-8, no trailing data, depth <= 1024) and
// extracts what routing needs. Duplicate top-level "model", "stream" or "stream_options" keys
// are refused (compared decoded: "mod\u0065l" is "model"), since parsers disagree on which wins.
// "model" must be a non-empty string; "stream" a boolean or null; "stream_options" an object or
// null. InvalidArgument with a short message fit for the client ("request body is not valid
// JSON (invalid UTF-8)", "'model' must be a string", "duplicate key 'model' in request body", …).
StatusOr<RequestInfo> InspectRequest(std::string_view body);

// Returns `body` with the model replaced by `upstream_model` (re-encoded as a JSON string;
// invalid UTF-8 becomes U+FFFD) and, when `add_include_usage`, "stream_options":
// {"include_usage": true} set: appended after the last member when absent, replacing a null,
// merged into an existing object (every include_usage in it set to true, else inserted first).
// Every other byte is preserved. Precondition: `info` is InspectRequest(body) of this very body.
std::string RewriteRequest(std::string_view body, const RequestInfo& info,
                           std::string_view upstream_model, bool add_include_usage);

// ---------------------------------------------------------------- usage

// Token counts normalized across formats, so billing reads one shape:
//   input_tokens       every prompt token, cached or not: OpenAI's prompt_tokens / input_tokens
//                      (which include the cached ones); Anthropic's input_tokens +
//                      cache_read_input_tokens + cache_creation_input_tokens (which Anthropic
//                      reports apart). So cache_read_tokens + cache_write_tokens <= input_tokens,
//                      and the uncached prompt is their difference.
//   output_tokens      completion_tokens / output_tokens (reasoning included, as reported).
//   cache_read_tokens  OpenAI prompt_tokens_details / input_tokens_details .cached_tokens;
//                      Anthropic cache_read_input_tokens.
//   cache_write_tokens Anthropic cache_creation_input_tokens (OpenAI has none: 0).
// Negative counts are read as 0.
struct Usage {
  int64_t input_tokens = 0;
  int64_t output_tokens = 0;
  int64_t cache_read_tokens = 0;
  int64_t cache_write_tokens = 0;
  bool present = false;  // the response reported usage (a "usage" object with a token count)
};

// Reads usage from a complete (non-streaming) response body of `format` (chat completions,
// completions and embeddings for kOpenAIChat). present=false when the body is not JSON or has no
// usable "usage" object. Either OpenAI naming (prompt_/completion_tokens or input_/output_tokens)
// is accepted for both OpenAI formats: compatible servers mix them.
Usage ParseResponseUsage(Format format, std::string_view body);

// ---------------------------------------------------------------- SSE

// Splits an SSE byte stream into events: the one splitter every stream reader uses (the usage
// filter here, the translators in translate/), so a stream splits into the same events
// everywhere, however it is chunked.
//
// Events end at a blank line; lines end with LF or CRLF ("\n\n", "\r\n\r\n" and mixes). A lone CR
// is not a line end (no LLM upstream sends one, and treating it as one would make the split
// depend on where a chunk ends). An event is handed out with its terminating blank line.
//
// Memory is bounded: an event longer than max_event_bytes is never held whole. Its bytes are
// handed out as kOversized pieces as they arrive (the first piece carries the held start, at
// most max_event_bytes), so the splitter holds at most max_event_bytes plus one Append(). Whether
// an event is oversized depends only on its length, never on the chunking.
//
// Thread safety: one splitter per stream; not thread-safe.
class SseSplitter {
 public:
  static constexpr size_t kDefaultMaxEventBytes = 8 << 20;

  enum class Piece {
    kNone,       // no complete event: Append() more input
    kEvent,      // a complete event of at most max_event_bytes
    kOversized,  // part of an event longer than max_event_bytes; `ended` on its last part
  };

  explicit SseSplitter(size_t max_event_bytes = kDefaultMaxEventBytes)
      : max_event_bytes_(max_event_bytes) {}

  // Adds input. Pieces handed out before are invalidated.
  void Append(std::string_view bytes);
  // The same, taking the caller's buffer when nothing is held (the usual case between reads: no
  // copy); `bytes` is left with some unspecified content for the caller to reuse.
  void AppendOwned(std::string&& bytes);
  // The next piece of the input given so far; `piece` stays valid until the next Append() (Next
  // never moves the input). Call until it returns kNone.
  Piece Next(std::string_view& piece, bool& ended);
  // Whether `run` is the whole of the buffered input (every byte of it handed out as pieces).
  bool IsWholeBuffer(std::string_view run) const;
  // Hands the buffered input over to an empty `out`, without a copy, when IsWholeBuffer.
  void TakeBuffer(std::string& out);
  // At end of stream: the held start of an unterminated event (may be empty; empty while an
  // oversized event is being passed on, see in_oversized()). Valid until the next Append().
  std::string_view rest() const { return std::string_view(pending_).substr(consumed_); }
  bool in_oversized() const { return oversized_; }

 private:
  // Where the boundary scanner stands: at the start of a line (after LF, or at the start of an
  // event), after a CR that starts a line (a CRLF blank line may follow), or inside a line.
  enum class ScanState : uint8_t { kLineStart, kLineStartCr, kInLine };

  // Returns the index just past the next event boundary at or after `pos`, or npos.
  size_t FindBoundary(size_t pos);

  size_t max_event_bytes_;
  std::string pending_;
  size_t consumed_ = 0;  // bytes of pending_ already handed out
  size_t scanned_ = 0;   // bytes of pending_ already scanned for a boundary
  ScanState scan_ = ScanState::kLineStart;
  bool oversized_ = false;  // passing an oversized event on until its boundary
};

// The data of one SSE event: its "data:" lines joined by LF, each without the one optional space
// after the colon (the SSE rules). `storage` is used only when there are several data lines.
// Returns false when the event has no data line; `has_content` is set when the event has a
// non-empty line (comments included).
bool SseEventData(std::string_view event, std::string& storage, std::string_view& data,
                  bool& has_content);

// Splits an SSE byte stream into events (SseSplitter), reads usage as it passes, and optionally drops the
// usage-only chunk that keygate itself requested (OpenAI: a chunk with "choices": [] and a
// "usage" object) so the client sees exactly what it asked for. Nothing else is ever changed:
// the output is the input minus dropped events, byte for byte, however the input is chunked.
//
// What is read, by format:
//   any          "data: [DONE]" sets saw_done.
//   openai-chat  usage from the last chunk with a "usage" object; output_chars from
//                choices[].delta.content, .reasoning_content and .tool_calls[].function.arguments.
//   anthropic    message_start message.usage and message_delta usage (cumulative; the later wins);
//                message_stop sets saw_done; output_chars from content_block_delta text_delta,
//                input_json_delta and thinking_delta.
//   responses    response.completed / .incomplete / .failed: response.usage, and saw_done;
//                output_chars from response.output_text.delta and .function_call_arguments.delta.
// Events whose data is not JSON (pings, comments, "[DONE]") pass through untouched.
//
// Memory is bounded: an event longer than max_event_bytes is passed through unparsed, its start as
// soon as the limit is crossed and the rest as it arrives (never buffered whole); so the filter
// holds at most max_event_bytes plus one Feed() of input. Such an event is never parsed, whatever
// the chunking, so its usage (if any) is not read.
//
// Thread safety: one filter per stream; not thread-safe.
class SseUsageFilter {
 public:
  static constexpr size_t kDefaultMaxEventBytes = SseSplitter::kDefaultMaxEventBytes;

  SseUsageFilter(Format format, bool drop_usage_chunk,
                 size_t max_event_bytes = kDefaultMaxEventBytes);
  ~SseUsageFilter();
  SseUsageFilter(SseUsageFilter&&) noexcept;
  SseUsageFilter& operator=(SseUsageFilter&&) noexcept;

  // Consumes upstream bytes; appends to `out` the bytes to send to the client: whole events only
  // (a partial event is held until its end arrives, so each write is flushed per event), except
  // for an oversized event, which streams through as it arrives.
  void Feed(std::string_view bytes, std::string& out);
  // The same, taking the buffer (see SseSplitter::AppendOwned).
  void FeedOwned(std::string&& bytes, std::string& out);
  // At end of stream: appends whatever partial event remains (never silently dropped; it is read
  // for usage but never dropped). Call once, last.
  void Finish(std::string& out);

  const Usage& usage() const { return usage_; }
  bool saw_done() const { return saw_done_; }  // "[DONE]", message_stop, response.completed
  size_t events() const { return events_; }    // events with at least one non-empty line
  size_t output_chars() const { return output_chars_; }  // code points of delta text seen
  // Events counted by the shape of one read before (internal::ChatChunkShape), not parsed: for
  // tests and diagnostics.
  size_t shape_matches() const { return shape_matches_; }

 private:
  void Drain(std::string& out);  // hands on every complete piece the splitter holds
  // Reads one event for usage; whether it is passed on (only a droppable one may be dropped).
  bool Keep(std::string_view event, bool may_drop);
  // Reads one event's data; true when the event is to be dropped.
  bool OnData(std::string_view data);
  void SetAnthropicUsage();
  // Learns the shape of a chunk read in full (internal::ChatChunkShape); `may_differ`: what
  // besides the counted strings may differ in the chunks matched.
  void LearnShape(std::string_view data, const internal::ChatChunk& chunk,
                  internal::MayDiffer may_differ);
  // Anthropic: a content_block_delta event whose delta's `field` string has `chars` characters.
  void LearnAnthropicShape(std::string_view data, std::string_view field, size_t chars);
  // Responses: a *.delta event; when `counted` (text, call arguments), its "delta" has `chars`.
  void LearnResponsesShape(std::string_view data, bool counted, size_t chars);

  Format format_;
  bool drop_usage_chunk_;
  SseSplitter splitter_;
  Usage usage_;
  // Anthropic reports these apart; usage_.input_tokens is their sum.
  int64_t anthropic_input_ = 0;
  int64_t anthropic_cache_read_ = 0;
  int64_t anthropic_cache_write_ = 0;
  bool saw_done_ = false;
  size_t events_ = 0;
  size_t output_chars_ = 0;
  // The shape of the last chunk (OpenAI chat), content_block_delta (Anthropic) or *.delta event
  // (Responses) read in full, made at the first one, and the chunks learned since one last
  // matched (a stream whose chunks never match stops learning).
  std::unique_ptr<internal::ChatChunkShape> shape_;
  int shape_learns_ = 0;
  size_t shape_matches_ = 0;
};

// ---------------------------------------------------------------- errors to clients

// What an upstream error body says, read leniently (the classifier reads it the same way): OpenAI
// and LiteLLM write {"error": {"message", "type", "code"}}, Anthropic {"type": "error", "error":
// {"type", "message"}}. A plain-string "error" or "detail" becomes the message. Every field is
// empty when the body is not JSON (truncated, HTML from a load balancer, …) or does not say.
struct ErrorFields {
  std::string type;     // error.type
  std::string code;     // error.code; a number is written in decimal
  std::string message;  // error.message
};
ErrorFields ReadErrorFields(std::string_view body);

// {"error": {"message": …, "type": …, "param": null, "code": …}}
std::string OpenAIErrorJson(std::string_view message, std::string_view type,
                            std::string_view code);
// {"type": "error", "error": {"type": …, "message": …}}
std::string AnthropicErrorJson(std::string_view message, std::string_view type);

// `s` as a JSON string literal, quotes included (escaped; invalid UTF-8 replaced by U+FFFD).
std::string JsonString(std::string_view s);

}  // namespace keygate::provider

#endif  // KEYGATE_PROVIDER_PROVIDER_H_
