// Provider facts, pure code (no I/O): how a key is sent, how an upstream outcome is classified,
// how a client request is inspected and rewritten, how usage is read from responses and SSE
// streams, and the error JSON each client format expects.
//
// Thread safety: every function here is pure; SseUsageFilter is a value used by one request.
#ifndef KEYGATE_PROVIDER_PROVIDER_H_
#define KEYGATE_PROVIDER_PROVIDER_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "config/config.h"

namespace keygate::provider {

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
  std::string_view body;                   // the (first bytes of the) response body
  std::optional<int64_t> retry_after_ms;   // parsed Retry-After, when present
};

enum class Action {
  kPass,      // hand the response to the client; no key action (success, or the client's error)
  kRetry,     // transient: try another key; counts toward the key's outlier ejection
  kCooldown,  // rate limited: cool the key down for cooldown_ms, try another key
  kRotate,    // the key is dead (revoked, out of budget, out of quota): rotate it, try another key
  kProxy,     // the egress proxy failed: never the key's fault; mark the proxy, try again
};
std::string_view ActionName(Action a);

struct Verdict {
  Action action = Action::kPass;
  std::string reason;       // e.g. "invalid_key", "insufficient_quota", "budget_exceeded"
  int64_t cooldown_ms = 0;  // kCooldown only: Retry-After when given, else 0 (caller's backoff)
};

// Classifies one upstream outcome with the provider's table (see provider/classifier.cc: one
// table per classifier, first matching row wins, each row tested).
Verdict Classify(Classifier classifier, const UpstreamOutcome& outcome);

// Parses a Retry-After header value (delta-seconds or an HTTP date relative to `now_ms`).
std::optional<int64_t> ParseRetryAfterMs(std::string_view value, int64_t now_ms);

// ---------------------------------------------------------------- requests

struct Span {
  size_t begin = 0, end = 0;  // byte offsets into the body; begin == end means absent
  bool present() const { return end > begin; }
};

struct RequestInfo {
  std::string model;
  bool stream = false;
  Span model_value;           // the JSON string token of "model", quotes included
  Span stream_options_value;  // the JSON value of "stream_options"
  bool include_usage = false; // stream_options.include_usage == true
  std::optional<int64_t> max_tokens;  // max_tokens / max_completion_tokens / max_output_tokens
  size_t object_end = 0;      // offset of the top-level closing '}'
  size_t approx_prompt_chars = 0;  // characters of message/prompt text (for estimates)
};

// Validates `body` as one JSON object (strict: UTF-8, no trailing data, no duplicate top-level
// "model"/"stream") and extracts what routing needs. InvalidArgument with a message fit for the
// client ("request body is not valid JSON", "'model' must be a string", …).
StatusOr<RequestInfo> InspectRequest(std::string_view body);

// Returns `body` with the model replaced by `upstream_model` and, when `add_include_usage`,
// "stream_options": {"include_usage": true} set (merged into an existing stream_options object).
// Every other byte is preserved.
std::string RewriteRequest(std::string_view body, const RequestInfo& info,
                           std::string_view upstream_model, bool add_include_usage);

// ---------------------------------------------------------------- usage

struct Usage {
  int64_t input_tokens = 0;
  int64_t output_tokens = 0;
  int64_t cache_read_tokens = 0;
  int64_t cache_write_tokens = 0;
  bool present = false;  // the response reported usage
};

// Reads usage from a complete (non-streaming) response body of `format`.
Usage ParseResponseUsage(Format format, std::string_view body);

// Splits an SSE byte stream into events, reads usage as it passes, and optionally drops the
// usage-only chunk that keygate itself requested (OpenAI: a chunk with "choices": [] and a
// "usage" object) so the client sees exactly what it asked for.
class SseUsageFilter {
 public:
  SseUsageFilter(Format format, bool drop_usage_chunk)
      : format_(format), drop_usage_chunk_(drop_usage_chunk) {}

  // Consumes upstream bytes; appends to `out` the bytes to send to the client: whole events only
  // (a partial event is held until its end arrives, so each write is flushed per event).
  void Feed(std::string_view bytes, std::string& out);
  // At end of stream: appends whatever partial event remains (never silently dropped).
  void Finish(std::string& out);

  const Usage& usage() const { return usage_; }
  bool saw_done() const { return saw_done_; }  // "[DONE]" or message_stop
  size_t events() const { return events_; }
  size_t output_chars() const { return output_chars_; }  // delta text seen (for estimates)

 private:
  void OnEvent(std::string_view event, std::string& out);

  Format format_;
  bool drop_usage_chunk_;
  std::string pending_;
  Usage usage_;
  bool saw_done_ = false;
  size_t events_ = 0;
  size_t output_chars_ = 0;
};

// ---------------------------------------------------------------- errors to clients

// {"error": {"message": …, "type": …, "param": null, "code": …}}
std::string OpenAIErrorJson(std::string_view message, std::string_view type,
                            std::string_view code);
// {"type": "error", "error": {"type": …, "message": …}}
std::string AnthropicErrorJson(std::string_view message, std::string_view type);

}  // namespace keygate::provider

#endif  // KEYGATE_PROVIDER_PROVIDER_H_
