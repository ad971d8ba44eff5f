#include "gateway/gateway.h"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/container/small_vector.hpp>
#include <chrono>
#include <optional>
#include <random>
#include <unordered_map>
#include <unordered_set>
#include <functional>
#include <boost/asio/post.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/async_result.hpp>
#include <variant>

#include "common/log.h"
#include "billing/price.h"
#include "common/strings.h"
#include "provider/provider.h"
#include "translate/translate.h"
#include "upstream/upstream.h"

namespace keygate::gateway {

namespace asio = boost::asio;
using http::Headers;

namespace {

constexpr size_t kMaxErrorBodyBytes = 64 << 10;  // what the classifier reads of an error response
// How long a request whose last usable key just died waits for the rotation to bring a backup.
constexpr int64_t kRotationWaitMs = 3000;

enum class ClientFormat { kOpenAI, kAnthropic };

struct Endpoint {
  std::string_view path;
  ClientFormat client;
  // false for a call the upstream does not charge for (Anthropic's token counting, which Claude
  // Code makes every turn): no credits reserved, no rate limit spent, a usage record of $0.
  bool billed = true;
};

constexpr Endpoint kEndpoints[] = {
    {"/v1/chat/completions", ClientFormat::kOpenAI},
    {"/v1/completions", ClientFormat::kOpenAI},
    {"/v1/embeddings", ClientFormat::kOpenAI},
    {"/v1/responses", ClientFormat::kOpenAI},
    {"/v1/messages", ClientFormat::kAnthropic},
    {"/v1/messages/count_tokens", ClientFormat::kAnthropic, /*billed=*/false},
};

const Endpoint* FindEndpoint(std::string_view path) {
  for (const Endpoint& e : kEndpoints) {
    if (e.path == path) return &e;
  }
  return nullptr;
}

// The error shape of a path: Anthropic's on its endpoints, OpenAI's everywhere else.
ClientFormat FormatForPath(std::string_view path) {
  const Endpoint* e = FindEndpoint(path);
  return e != nullptr ? e->client : ClientFormat::kOpenAI;
}

// The shape a request is answered in (its errors, and the models list): its endpoint's; elsewhere
// (the models list, an unknown path) Anthropic's when the request carries anthropic-version,
// which Anthropic's SDKs and Claude Code send on every request and OpenAI's clients never do
// (Claude Code's model picker reads only Anthropic's list).
constexpr std::string_view kModelsPath = "/v1/models";
constexpr std::string_view kModelPrefix = "/v1/models/";  // + an id: one model

// `ep` is FindEndpoint(req.path).
ClientFormat FormatFor(const http::Request& req, const Endpoint* ep) {
  if (ep != nullptr) return ep->client;
  return req.Header("anthropic-version").empty() ? ClientFormat::kOpenAI : ClientFormat::kAnthropic;
}

// How a client path reaches a model's upstream format (docs/translation.md has the matrix).
enum class Mode {
  kPassThrough,          // same format: bytes pass, only the model is rewritten
  kChatToAnthropic,      // /v1/chat/completions -> an anthropic-messages upstream (and back)
  kMessagesToChat,       // /v1/messages -> an openai-chat upstream (and back)
  kChatToResponses,      // /v1/chat/completions -> an openai-responses upstream (and back)
  kMessagesToResponses,  // /v1/messages -> an openai-responses upstream, through chat (and back)
  kResponsesToChat,      // /v1/responses -> an openai-chat upstream (and back)
  kResponsesToAnthropic,  // /v1/responses -> an anthropic-messages upstream, through chat
  kUnsupported,
};

Mode ModeFor(std::string_view path, config::Format upstream, bool stream) {
  using config::Format;
  if (path == "/v1/messages") {
    switch (upstream) {
      case Format::kAnthropicMessages: return Mode::kPassThrough;
      case Format::kOpenAIChat: return Mode::kMessagesToChat;
      case Format::kOpenAIResponses: return Mode::kMessagesToResponses;
    }
    return Mode::kUnsupported;
  }
  if (path == "/v1/messages/count_tokens") {
    // Only Anthropic counts tokens this way; a client of another model's upstream gets an
    // error, and Claude Code then counts them itself (a made-up count would mislead it).
    return upstream == Format::kAnthropicMessages ? Mode::kPassThrough : Mode::kUnsupported;
  }
  if (path == "/v1/chat/completions") {
    switch (upstream) {
      case Format::kAnthropicMessages: return Mode::kChatToAnthropic;
      case Format::kOpenAIChat: return Mode::kPassThrough;
      case Format::kOpenAIResponses: return Mode::kChatToResponses;
    }
    return Mode::kUnsupported;
  }
  if (path == "/v1/responses") {
    switch (upstream) {
      case Format::kAnthropicMessages: return Mode::kResponsesToAnthropic;
      case Format::kOpenAIChat: return Mode::kResponsesToChat;
      case Format::kOpenAIResponses: return Mode::kPassThrough;
    }
    return Mode::kUnsupported;
  }
  return upstream == Format::kOpenAIChat || upstream == Format::kOpenAIResponses
             ? Mode::kPassThrough
             : Mode::kUnsupported;
}

// The translated request body for `mode` (not kPassThrough), and the upstream path.
StatusOr<std::string> TranslateRequest(Mode mode, std::string_view body,
                                       const translate::TranslateOptions& options) {
  switch (mode) {
    case Mode::kChatToAnthropic:
      return translate::OpenAIChatToAnthropicRequest(body, options);
    case Mode::kMessagesToChat:
      return translate::AnthropicToOpenAIChatRequest(body, options);
    case Mode::kChatToResponses:
      return translate::OpenAIChatToResponsesRequest(body, options);
    case Mode::kMessagesToResponses: {
      KG_ASSIGN_OR_RETURN(std::string chat, translate::AnthropicToOpenAIChatRequest(body, options));
      return translate::OpenAIChatToResponsesRequest(chat, options);
    }
    case Mode::kResponsesToChat:
      return translate::ResponsesToOpenAIChatRequest(body, options);
    case Mode::kResponsesToAnthropic: {
      KG_ASSIGN_OR_RETURN(std::string chat, translate::ResponsesToOpenAIChatRequest(body, options));
      return translate::OpenAIChatToAnthropicRequest(chat, options);
    }
    default:
      return InternalError("no request translation for this mode");
  }
}
std::string_view UpstreamPath(Mode mode, std::string_view client_path) {
  switch (mode) {
    case Mode::kChatToAnthropic:
    case Mode::kResponsesToAnthropic: return "/v1/messages";
    case Mode::kMessagesToChat:
    case Mode::kResponsesToChat: return "/v1/chat/completions";
    case Mode::kChatToResponses:
    case Mode::kMessagesToResponses: return "/v1/responses";
    default: return client_path;
  }
}

// The translated (2xx, non-streaming) response body for `mode` (not kPassThrough).
StatusOr<std::string> TranslateResponse(Mode mode, std::string_view body,
                                        const translate::ResponseOptions& options) {
  switch (mode) {
    case Mode::kChatToAnthropic:
      return translate::AnthropicToOpenAIChatResponse(body, options);
    case Mode::kMessagesToChat:
      return translate::OpenAIChatToAnthropicResponse(body, options);
    case Mode::kChatToResponses:
      return translate::ResponsesToOpenAIChatResponse(body, options);
    case Mode::kMessagesToResponses: {
      KG_ASSIGN_OR_RETURN(std::string chat, translate::ResponsesToOpenAIChatResponse(body, options));
      return translate::OpenAIChatToAnthropicResponse(chat, options);
    }
    case Mode::kResponsesToChat:
      return translate::OpenAIChatToResponsesResponse(body, options);
    case Mode::kResponsesToAnthropic: {
      KG_ASSIGN_OR_RETURN(std::string chat, translate::AnthropicToOpenAIChatResponse(body, options));
      return translate::OpenAIChatToResponsesResponse(chat, options);
    }
    default:
      return InternalError("no response translation for this mode");
  }
}

// Turns upstream SSE bytes into what the client receives, reading usage on the way: the
// pass-through filter, or a stream translator (one per translated Mode). A translator lives on
// the heap: the variant of all of them is ~600 bytes, and a pass-through stream (the common
// case) needs none, for as long as it stays open.
class StreamOut {
 public:
  StreamOut(Mode mode, config::Format format, bool drop_usage_chunk, std::string_view client_model,
            int64_t created, bool include_usage)
      : filter_(format, Translates(mode) ? false : drop_usage_chunk) {
    if (mode == Mode::kChatToAnthropic) {
      translator_ = std::make_unique<Translator>(
          std::in_place_type<translate::AnthropicToOpenAIStream>,
          translate::AnthropicToOpenAIStream::Options{
              .client_model = client_model, .created = created, .include_usage = include_usage});
    } else if (mode == Mode::kMessagesToChat) {
      translator_ = std::make_unique<Translator>(
          std::in_place_type<translate::OpenAIToAnthropicStream>,
          translate::OpenAIToAnthropicStream::Options{.client_model = client_model});
    } else if (mode == Mode::kChatToResponses) {
      translator_ = std::make_unique<Translator>(
          std::in_place_type<translate::ResponsesToOpenAIStream>,
          translate::ResponsesToOpenAIStream::Options{
              .client_model = client_model, .created = created, .include_usage = include_usage});
    } else if (mode == Mode::kMessagesToResponses) {
      translator_ = std::make_unique<Translator>(
          std::in_place_type<translate::ResponsesToAnthropicStream>,
          translate::ResponsesToAnthropicStream::Options{.client_model = client_model});
    } else if (mode == Mode::kResponsesToChat) {
      translator_ = std::make_unique<Translator>(
          std::in_place_type<translate::OpenAIToResponsesStream>,
          translate::OpenAIToResponsesStream::Options{.client_model = client_model,
                                                      .created = created});
    } else if (mode == Mode::kResponsesToAnthropic) {
      translator_ = std::make_unique<Translator>(
          std::in_place_type<translate::AnthropicToResponsesStream>,
          translate::AnthropicToResponsesStream::Options{.client_model = client_model,
                                                         .created = created});
    }
  }
  // `in` may be taken (its buffer reused by the filter); the caller clears it before reuse.
  void Feed(std::string& in, std::string& out) {
    if (!translator_) {
      filter_.FeedOwned(std::move(in), out);
      return;
    }
    std::visit([&](auto& t) { t.Feed(in, out); }, *translator_);
    scratch_.clear();
    filter_.FeedOwned(std::move(in), scratch_);  // counts what was delivered (upstream format)
  }
  void Finish(std::string& out) {
    if (!translator_) {
      filter_.Finish(out);
      return;
    }
    std::visit([&](auto& t) { t.Finish(out); }, *translator_);
  }
  provider::Usage usage() const {
    if (!translator_) return filter_.usage();
    return std::visit([](const auto& t) { return t.usage(); }, *translator_);
  }
  // What was delivered, for billing a stream that broke before its usage arrived: code points
  // of content deltas and events, counted on the upstream bytes (translated streams feed the
  // filter, in the upstream format, beside the translator).
  size_t output_chars() const { return filter_.output_chars(); }
  size_t events() const { return filter_.events(); }

 private:
  using Translator =
      std::variant<translate::AnthropicToOpenAIStream, translate::OpenAIToAnthropicStream,
                   translate::ResponsesToOpenAIStream, translate::ResponsesToAnthropicStream,
                   translate::OpenAIToResponsesStream, translate::AnthropicToResponsesStream>;
  static bool Translates(Mode m) {
    return m == Mode::kChatToAnthropic || m == Mode::kMessagesToChat ||
           m == Mode::kChatToResponses || m == Mode::kMessagesToResponses ||
           m == Mode::kResponsesToChat || m == Mode::kResponsesToAnthropic;
  }

  // Pass-through: the stream's filter. Translated: counts the upstream bytes.
  provider::SseUsageFilter filter_;
  std::unique_ptr<Translator> translator_;  // null for pass-through
  std::string scratch_;
};

// The client-facing error type for a status, in each shape.
std::string_view OpenAIType(int status) {
  switch (status) {
    case 400: case 404: case 413: case 422: return "invalid_request_error";
    case 401: return "authentication_error";
    case 402: return "insufficient_quota";
    case 403: return "permission_error";
    case 429: return "rate_limit_exceeded";
    default: return status >= 500 ? "server_error" : "invalid_request_error";
  }
}
std::string_view AnthropicType(int status) {
  switch (status) {
    case 400: case 413: case 422: return "invalid_request_error";
    case 401: return "authentication_error";
    case 402: return "billing_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 429: return "rate_limit_error";
    case 529: return "overloaded_error";
    default: return status >= 500 ? "api_error" : "invalid_request_error";
  }
}

std::string ErrorJson(ClientFormat f, int status, std::string_view message,
                      std::string_view code = "") {
  if (f == ClientFormat::kAnthropic) return provider::AnthropicErrorJson(message, AnthropicType(status));
  return provider::OpenAIErrorJson(message, OpenAIType(status), code);
}

// The upstream response's header fields the gateway reads (Proxy, Relay); the rest are not
// kept (upstream::Request::response_headers).
constexpr std::string_view kUpstreamHeadersRead[] = {"content-type", "retry-after"};

// "kg-" + 12 hex digits of the wall-clock millisecond + 12 random hex digits. The time comes
// first so that ids grow: usage_records' unique index on request_id then takes every insert at
// its right edge, as for an auto-increment key. With random ids each row of a 256-row batch
// dirtied its own index page, and SQLite wrote each to the WAL (bench/: ~1 page per record).
// Unique across instances: 48 random bits within one millisecond.
std::string NewRequestId(int64_t now_ms) {
  thread_local std::mt19937_64 rng(std::random_device{}());
  std::string id = "kg-000000000000000000000000";
  // Each of the two 48-bit fields as 12 hex digits: its 6 bytes, most significant first.
  auto put = [&](uint64_t v, size_t at) {
    char bytes[6];
    for (int i = 5; i >= 0; --i, v >>= 8) bytes[i] = static_cast<char>(v & 0xFF);
    HexEncodeTo(std::string_view(bytes, sizeof(bytes)), id.data() + at);
  };
  put(static_cast<uint64_t>(now_ms), 3);
  put(rng(), 15);
  return id;
}

int64_t SteadyMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

provider::Transport TransportOf(upstream::ErrorKind k) {
  switch (k) {
    case upstream::ErrorKind::kNone: return provider::Transport::kOk;
    case upstream::ErrorKind::kConnect: return provider::Transport::kConnect;
    case upstream::ErrorKind::kProxy: return provider::Transport::kProxy;
    case upstream::ErrorKind::kTls: return provider::Transport::kTls;
    case upstream::ErrorKind::kTimeout: return provider::Transport::kTimeout;
    case upstream::ErrorKind::kReset: return provider::Transport::kReset;
    default: return provider::Transport::kOther;
  }
}

// Keeps a key's in-flight count right however the attempt ends.
class InFlight {
 public:
  InFlight() = default;
  explicit InFlight(const keypool::KeyView& k) : health_(k.health) { health_->in_flight++; }
  InFlight(InFlight&& o) noexcept : health_(std::move(o.health_)) {}
  InFlight& operator=(InFlight&& o) noexcept {
    Release();
    health_ = std::move(o.health_);
    return *this;
  }
  ~InFlight() { Release(); }

 private:
  void Release() {
    if (health_) health_->in_flight--;
    health_.reset();
  }
  std::shared_ptr<keypool::KeyHealth> health_;
};

// An upstream exchange listed in its worker's live set (which OnWorkerAbort cancels) for as
// long as it exists.
class LiveExchange {
 public:
  LiveExchange() = default;
  LiveExchange(std::unique_ptr<upstream::Exchange> ex,
               std::unordered_set<upstream::Exchange*>& live)
      : ex_(std::move(ex)), live_(&live) {
    live_->insert(ex_.get());
  }
  LiveExchange(LiveExchange&& o) noexcept : ex_(std::move(o.ex_)), live_(o.live_) {}
  LiveExchange& operator=(LiveExchange&& o) noexcept {
    Unlist();
    ex_ = std::move(o.ex_);
    live_ = o.live_;
    return *this;
  }
  ~LiveExchange() { Unlist(); }

  explicit operator bool() const { return ex_ != nullptr; }
  upstream::Exchange* operator->() const { return ex_.get(); }

 private:
  void Unlist() {
    if (ex_) live_->erase(ex_.get());
    ex_.reset();
  }
  std::unique_ptr<upstream::Exchange> ex_;
  std::unordered_set<upstream::Exchange*>* live_ = nullptr;
};

// Runs `fn` (a blocking store call) on a store thread and resumes the awaiting coroutine on its
// own executor with the result: the event loop never blocks on the store.
// `fn` is taken by reference and copied before the first suspension: g++ 12 mishandles
// temporaries (and by-value parameters built from them) across co_await (docs/design.md).
template <typename T>
asio::awaitable<T> OnStoreThread(TaskPool& pool, const std::function<T()>& job) {
  auto initiate = [&pool, fn = job](auto handler) mutable {
    auto ex = asio::get_associated_executor(handler);
    auto h = std::make_shared<decltype(handler)>(std::move(handler));
    auto work = asio::make_work_guard(ex);
    bool posted = pool.Post([fn, h, work]() mutable {
      auto result = std::make_shared<T>(fn());
      asio::post(work.get_executor(), [h, result] { (*h)(std::move(*result)); });
    });
    if (!posted) {
      auto result = std::make_shared<T>(UnavailableError("the gateway is shutting down"));
      asio::post(ex, [h, result] { (*h)(std::move(*result)); });
    }
  };
  co_return co_await asio::async_initiate<decltype(asio::use_awaitable), void(T)>(
      std::move(initiate), asio::use_awaitable);
}

// One model object of a models answer: OpenAI's {id, object, created, owned_by (its pool)} or
// Anthropic's {type, id, display_name, created_at}. Neither API's fields for a model's age mean
// anything here: the epoch, as `created` 0 and as an RFC 3339 time.
void AppendModel(std::string& out, std::string_view name, std::string_view pool, ClientFormat f) {
  // Model names come from the operator's config or the client; escape them like any JSON string.
  const std::string id = provider::JsonString(name);
  if (f == ClientFormat::kAnthropic) {
    AppendPieces(out, {"{\"type\":\"model\",\"id\":", id, ",\"display_name\":", id,
                       ",\"created_at\":\"1970-01-01T00:00:00Z\"}"});
  } else {
    AppendPieces(out, {"{\"id\":", id, ",\"object\":\"model\",\"created\":0,\"owned_by\":",
                       provider::JsonString(pool), "}"});
  }
}

// The catalog's ids and aliases that `who` may use, in OpenAI's list shape or Anthropic's (one
// page: has_more is false, whatever `limit` asked for).
std::string ModelsList(const Catalog& catalog, const ClientIdentity& who, ClientFormat f) {
  const bool anthropic = f == ClientFormat::kAnthropic;
  std::string body = anthropic ? "{\"data\":[" : "{\"object\":\"list\",\"data\":[";
  std::string_view first, last;
  for (const Catalog::Listed& m : catalog.listed()) {
    std::shared_ptr<const ModelRoute> route = catalog.Resolve(m.id);
    if (route == nullptr || !who.Allows(route->id)) continue;
    if (!first.empty()) body += ',';
    AppendModel(body, m.id, m.owned_by, f);
    if (first.empty()) first = m.id;
    last = m.id;
  }
  body += ']';
  if (anthropic) {
    const std::string first_id = first.empty() ? "null" : provider::JsonString(first);
    const std::string last_id = last.empty() ? "null" : provider::JsonString(last);
    AppendPieces(body, {",\"has_more\":false,\"first_id\":", first_id, ",\"last_id\":", last_id});
  }
  body += '}';
  return body;
}

// Tokens a request may use, estimated before it is forwarded. Input: one token per code point of
// prompt text (tokenizers produce fewer tokens than code points for text) plus kFramingTokens for
// message framing; output: the request's max_tokens, else the model's configured max_tokens.
constexpr int64_t kFramingTokens = 64;
int64_t EstimatedInputTokens(const provider::RequestInfo& info) {
  return static_cast<int64_t>(info.approx_prompt_chars) + kFramingTokens;
}

// The reservation: the estimate priced with the dearest input price (the upstream may report
// input as cache writes or reads).
int64_t EstimateMicros(const ModelRoute& route, const provider::RequestInfo& info) {
  billing::Price p = route.price;
  p.input = std::max({p.input, p.cache_write, p.cache_read});
  int64_t output = info.max_tokens && *info.max_tokens > 0 ? *info.max_tokens : route.max_tokens;
  return billing::CostMicros(p, {.input = EstimatedInputTokens(info), .output = output});
}

}  // namespace

// ------------------------------------------------------------------------------------------------

class Gateway::Impl {
 public:
  Impl(Gateway& owner, GatewayDeps deps) : owner_(owner), d_(deps) {
    stats::Registry& r = *d_.stats;
    requests_ = &r.AddCounter("keygate_requests_total", "Requests answered, by pool, model and status.",
                              {"pool", "model", "status"});
    latency_ = &r.AddHistogram("keygate_request_duration_seconds",
                               "Time from request to the last byte of the response.",
                               {"pool", "model"});
    ttfb_ = &r.AddHistogram("keygate_time_to_first_byte_seconds",
                            "Time from request to the first response byte sent to the client.",
                            {"pool", "model"});
    upstream_errors_ = &r.AddCounter("keygate_upstream_errors_total",
                                     "Upstream failures by pool and class (classifier reason).",
                                     {"pool", "class"});
    retries_ = &r.AddCounter("keygate_retries_total",
                             "Attempts retried on another key before any byte reached the client.",
                             {"pool"});
    rotations_ = &r.AddCounter("keygate_rotations_total", "Rotations requested by the data path.",
                               {"pool", "reason", "outcome"});
    proxy_failures_ = &r.AddCounter("keygate_proxy_failures_total",
                                    "Egress proxy failures (never counted against keys).",
                                    {"proxy"});
  }

  asio::awaitable<void> Handle(http::Worker& worker, http::Request& req, http::ResponseWriter& w);

  // What Handle needs to serve one /v1 request, or why it is refused. Decided by Admit, a plain
  // function: the refusals' message strings would otherwise each keep a slot in Handle's
  // coroutine frame for as long as a stream runs.
  struct Admission {
    int status = 0;  // a refusal when not 0: answer it with `message` and `code`
    std::string message, code;
    std::shared_ptr<const ClientIdentity> who;
    std::shared_ptr<const Catalog> catalog;
    provider::RequestInfo info;
    std::shared_ptr<const ModelRoute> route;  // null for GET /v1/models
    bool billed = true;                       // Endpoint::billed
    // GET /v1/models/{id}: the id asked (percent-decoded), which `route` serves.
    std::string retrieved;
  };
  // `ep` is FindEndpoint(req.path), looked up once by Handle.
  Admission Admit(const http::Request& req, const Endpoint* ep) const;

  std::pair<std::string, std::string> ErrorBody(std::string_view path, int status,
                                                std::string_view message) {
    return {"application/json", ErrorJson(FormatForPath(path), status, message)};
  }

  void OnWorkerStart(http::Worker& w) {
    clients_[w.index()] = upstream::Client::Create(w.io(), client_options_);
  }
  // The drain deadline passed: cancel every upstream exchange of this worker so the handlers
  // awaiting them finish, then drop the client (exchanges that outlive it fail as cancelled).
  void OnWorkerAbort(http::Worker& w) {
    for (upstream::Exchange* e : live_[w.index()]) e->Cancel();
    clients_[w.index()].reset();
  }
  void OnWorkerStop(http::Worker& w) { clients_[w.index()].reset(); }

  void SizeFor(int workers, const config::Config& c) {
    clients_.resize(workers);
    live_.resize(workers);
    metrics_.resize(workers);
    client_options_.ca_file = c.upstream.ca_file;
  }

 private:
  struct Attempted {
    int status = 0;          // final status to report
    int attempts = 0;
    int64_t key_id = 0;      // last key tried
    provider::Usage usage;
    bool delivered = false;  // bytes reached the client
    std::string error;       // why it failed (for logs)
    // What a stream delivered (for billing one that broke before its usage arrived).
    size_t streamed_chars = 0, streamed_events = 0;
  };

  asio::awaitable<void> Reply(http::ResponseWriter& w, ClientFormat f, int status,
                              std::string_view message, std::string_view code = "",
                              int64_t retry_after_s = 0) {
    Headers h{{"content-type", "application/json"}};
    if (retry_after_s > 0) h.emplace_back("retry-after", std::to_string(retry_after_s));
    co_await w.Send(status, h, ErrorJson(f, status, message, code));
  }

  asio::awaitable<void> Local(http::Request& req, http::ResponseWriter& w);
  // Answers GET /v1/models (the list) and GET /v1/models/{id} (one model).
  asio::awaitable<void> Models(http::ResponseWriter& w, const Admission& ad, ClientFormat f);

  // A 2xx event stream that Proxy accepted and Relay forwards. Relay runs after Proxy returned:
  // a stream may stay open for hours, and Proxy's coroutine frame (g++ gives every local of
  // every branch of the attempts loop a slot of its own) is ~4 KiB.
  struct Accepted {
    LiveExchange ex;
    std::shared_ptr<const keypool::PoolSet> pools;  // keeps *key valid
    const keypool::KeyView* key = nullptr;
    InFlight in_flight;
    Mode mode = Mode::kPassThrough;
    bool add_usage = false;
    int64_t created_s = 0;
  };

  // Runs the attempts loop for one routed request and answers the client, except for a 2xx
  // event stream: that one it leaves in `*accepted` (with a.status set) for Relay. `billed`:
  // the endpoint's (Endpoint::billed).
  asio::awaitable<Attempted> Proxy(http::Worker& worker, http::Request& req,
                                   http::ResponseWriter& w, ClientFormat cf,
                                   const ModelRoute& route, const provider::RequestInfo& info,
                                   const config::Config& cfg, int64_t start_us,
                                   int64_t* first_byte_us, const std::string& request_id,
                                   bool billed, Accepted* accepted);
  // Forwards the accepted stream `s` to the client and records in `a` what it delivered.
  asio::awaitable<void> Relay(http::ResponseWriter& w, Accepted& s, const ModelRoute& route,
                              const provider::RequestInfo& info, const std::string& request_id,
                              int64_t* first_byte_us, Attempted& a);

  // Applies a classifier verdict to the key (and proxy); never blocks.
  void Apply(const keypool::PoolView& pool, const keypool::Pick& pick,
             const provider::Verdict& v, const config::UpstreamConfig& ucfg);

  void RequestRotation(const keypool::PoolView& pool, const keypool::KeyView& key,
                       const std::string& reason);

  // Dead keys do not spend the request's transient-failure budget; everything else does.
  static void Spend(const provider::Verdict& v, int* transient_left, bool* rotation_seen) {
    if (v.action == provider::Action::kRotate) {
      *rotation_seen = true;
    } else {
      --*transient_left;
    }
  }

  // Counts the request in the metrics and queues its usage record: priced from the usage the
  // upstream reported (or, for a broken stream, from what was delivered); settled against the
  // reservation for a metered key. An unbilled call (`billed` false) records $0 and settles
  // nothing.
  void Record(http::Worker& worker, const Catalog& catalog, const ClientIdentity& who,
              const ModelRoute& route, const provider::RequestInfo& info, std::string request_id,
              int64_t pool_id, const Attempted& a, int64_t start_us, int64_t first_byte_us,
              bool billed);

  // A worker's metric children of one route, resolved on first use: a request then costs no
  // label lookup and no lock shared with other workers.
  struct RouteMetrics {
    stats::Histogram* latency = nullptr;
    stats::Histogram* ttfb = nullptr;
    std::vector<std::pair<int, stats::Counter*>> requests;  // by status, few
  };
  struct WorkerMetrics {
    uint64_t catalog_generation = 0;  // the catalog whose ModelRoute::index `routes` follows
    std::vector<RouteMetrics> routes;
  };
  RouteMetrics& MetricsOf(http::Worker& worker, const Catalog& catalog, const ModelRoute& route) {
    WorkerMetrics& m = metrics_[worker.index()];
    if (m.catalog_generation != catalog.generation()) {
      m.catalog_generation = catalog.generation();
      m.routes.assign(catalog.metric_slots(), RouteMetrics{});
    }
    RouteMetrics& r = m.routes.at(route.index);
    if (r.latency == nullptr) {
      r.latency = &latency_->With({route.pool, route.metrics_model});
      r.ttfb = &ttfb_->With({route.pool, route.metrics_model});
    }
    return r;
  }
  stats::Counter& RequestsOf(RouteMetrics& r, const ModelRoute& route, int status) {
    for (const auto& [s, counter] : r.requests) {
      if (s == status) return *counter;
    }
    stats::Counter* c = &requests_->With({route.pool, route.metrics_model, std::to_string(status)});
    r.requests.emplace_back(status, c);
    return *c;
  }

  // Reserves the request's estimated cost for a metered key (on a store thread; the loop never
  // blocks). Answers the client and returns false when the request must not go on.
  asio::awaitable<bool> Reserve(http::ResponseWriter& w, ClientFormat cf, const ClientIdentity& who,
                                const ModelRoute& route, const provider::RequestInfo& info,
                                const config::Config& cfg, const std::string& request_id);

  // The usage of a stream that broke before its usage arrived, counted from what was delivered:
  // output = max(events delivered, ceil(content code points / 4)); input = the estimate used for
  // the reservation. Never $0 for a stream that delivered content, never the whole reservation.
  static provider::Usage CountedUsage(const provider::RequestInfo& info, const Attempted& a) {
    provider::Usage u;
    u.input_tokens = EstimatedInputTokens(info);
    u.output_tokens = std::max<int64_t>(static_cast<int64_t>(a.streamed_events),
                                        static_cast<int64_t>((a.streamed_chars + 3) / 4));
    return u;
  }

  Gateway& owner_;
  GatewayDeps d_;
  upstream::ClientOptions client_options_;
  std::vector<std::unique_ptr<upstream::Client>> clients_;           // per worker
  std::vector<std::unordered_set<upstream::Exchange*>> live_;        // per worker, its thread only
  std::vector<WorkerMetrics> metrics_;                               // per worker, its thread only
  stats::Family<stats::Counter>* requests_;
  stats::Family<stats::Histogram>* latency_;
  stats::Family<stats::Histogram>* ttfb_;
  stats::Family<stats::Counter>* upstream_errors_;
  stats::Family<stats::Counter>* retries_;
  stats::Family<stats::Counter>* rotations_;
  stats::Family<stats::Counter>* proxy_failures_;
};

asio::awaitable<void> Gateway::Impl::Local(http::Request& req, http::ResponseWriter& w) {
  Headers text{{"content-type", "text/plain; charset=utf-8"}};
  if (req.path == "/healthz") {
    co_await w.Send(200, text, "ok\n");
  } else if (req.path == "/readyz") {
    bool ready = owner_.ready_.load();
    co_await w.Send(ready ? 200 : 503, text, ready ? "ready\n" : "not ready: store unreachable\n");
  } else {
    Headers prom{{"content-type", "text/plain; version=0.0.4; charset=utf-8"}};
    co_await w.Send(200, prom, d_.stats->RenderPrometheus());
  }
}

asio::awaitable<void> Gateway::Impl::Models(http::ResponseWriter& w, const Admission& ad,
                                            ClientFormat f) {
  std::string body;
  if (ad.retrieved.empty()) {
    body = ModelsList(*ad.catalog, *ad.who, f);
  } else {
    AppendModel(body, ad.retrieved, ad.route->pool, f);
  }
  Headers h{{"content-type", "application/json"}};
  co_await w.Send(200, h, body);
}

Gateway::Impl::Admission Gateway::Impl::Admit(const http::Request& req, const Endpoint* ep) const {
  Admission ad;
  auto refuse = [&ad](int status, std::string message, std::string code) {
    ad.status = status;
    ad.message = std::move(message);
    ad.code = std::move(code);
    return std::move(ad);
  };
  const bool one_model =
      req.path.size() > kModelPrefix.size() && req.path.starts_with(kModelPrefix);
  const bool models = req.path == kModelsPath || one_model;
  if (ep == nullptr && !models) {
    return refuse(404, "unknown endpoint " + std::string(req.method) + " " + req.path,
                  "not_found");
  }
  if ((models && req.method != "GET") || (ep != nullptr && req.method != "POST")) {
    return refuse(405, "method " + req.method + " is not allowed on " + req.path, "");
  }

  std::string_view token =
      ClientAuth::ExtractToken(req.Header("authorization"), req.Header("x-api-key"));
  if (token.empty()) {
    return refuse(401, "missing API key: send it as 'Authorization: Bearer <key>' or 'x-api-key'",
                  "missing_api_key");
  }
  ad.who = d_.clients->Authenticate(token);
  if (!ad.who) return refuse(401, "invalid API key " + MaskSecret(token), "invalid_api_key");
  if (ad.who->expires_at_ms && d_.clock->NowMs() >= *ad.who->expires_at_ms) {
    return refuse(401, "API key " + MaskSecret(token) + " expired at " +
                           FormatTimeMs(*ad.who->expires_at_ms), "expired_api_key");
  }

  ad.catalog = owner_.catalog();
  if (one_model) {
    std::optional<std::string> id = PercentDecode(req.path.substr(kModelPrefix.size()));
    if (!id) return refuse(400, "malformed model id in " + req.path, "invalid_request");
    ad.route = ad.catalog->Resolve(*id);
    // A model this key may not use is not there for it, as in the list.
    if (!ad.route || !ad.who->Allows(ad.route->id)) {
      return refuse(404, "The model '" + *id + "' does not exist", "model_not_found");
    }
    ad.retrieved = std::move(*id);
  }
  if (models) return ad;
  ad.billed = ep->billed;

  auto info = provider::InspectRequest(req.body);
  if (!info.ok()) return refuse(400, std::string(info.status().message()), "invalid_request");
  ad.info = std::move(info).value();
  const provider::RequestInfo& i = ad.info;
  std::shared_ptr<const ModelRoute> route = ad.catalog->Resolve(i.model);
  if (!route) {
    return refuse(404, "The model '" + i.model + "' does not exist", "model_not_found");
  }
  if (ModeFor(req.path, route->format, i.stream) == Mode::kUnsupported) {
    return refuse(400,
                  "model '" + i.model + "' is served in the " +
                      std::string(config::FormatName(route->format)) + " format, which " +
                      req.path + " cannot reach",
                  "unsupported_format");
  }
  if (!ad.who->Allows(route->id)) {
    return refuse(403, "this API key may not use model '" + i.model + "'", "model_not_allowed");
  }
  ad.route = std::move(route);
  return ad;
}

asio::awaitable<void> Gateway::Impl::Handle(http::Worker& worker, http::Request& req,
                                            http::ResponseWriter& w) {
  const int64_t start_us = SteadyMicros();
  if (req.method == "GET" && (req.path == "/healthz" || req.path == "/readyz" ||
                              req.path == "/metrics")) {
    co_await Local(req, w);
    co_return;
  }
  const Endpoint* ep = FindEndpoint(req.path);
  const ClientFormat cf = FormatFor(req, ep);
  Admission ad = Admit(req, ep);
  if (ad.status != 0) {
    co_await Reply(w, cf, ad.status, ad.message, ad.code);
    co_return;
  }
  if (!ad.route || !ad.retrieved.empty()) {
    co_await Models(w, ad, cf);
    co_return;
  }
  const ClientIdentity* who = ad.who.get();
  const Catalog* catalog = ad.catalog.get();
  const ModelRoute* route = ad.route.get();
  const provider::RequestInfo* info = &ad.info;

  const config::Config& cfg = catalog->config();
  std::string request_id = NewRequestId(d_.clock->NowMs());  // moved into the usage record
  const bool billed = ad.billed;
  if (who->metered && billed) {
    bool admitted = co_await Reserve(w, cf, *who, *route, *info, cfg, request_id);
    if (!admitted) co_return;
  }
  int64_t first_byte_us = 0;
  Accepted accepted;
  Attempted a = co_await Proxy(worker, req, w, cf, *route, *info, cfg, start_us, &first_byte_us,
                               request_id, billed, &accepted);
  if (accepted.ex) {
    co_await Relay(w, accepted, *route, *info, request_id, &first_byte_us, a);
    accepted = Accepted{};  // the exchange ends (and the key's in-flight count) before Record
  }
  auto pools = d_.keys->Snapshot();
  const keypool::PoolView* pv = pools->Find(route->pool);
  Record(worker, *catalog, *who, *route, *info, std::move(request_id), pv ? pv->id : 0, a, start_us,
         first_byte_us, billed);
}

asio::awaitable<bool> Gateway::Impl::Reserve(http::ResponseWriter& w, ClientFormat cf,
                                             const ClientIdentity& who, const ModelRoute& route,
                                             const provider::RequestInfo& info,
                                             const config::Config& cfg,
                                             const std::string& request_id) {
  if (d_.usage->backlogged()) {
    // Billed records are never dropped; while they pile up, no new billed request starts.
    co_await Reply(w, cf, 503, "billing is catching up; retry shortly", "billing_unavailable", 1);
    co_return false;
  }
  store::ReserveRequest q;
  q.request_id = request_id;
  q.client_key_id = who.id;
  q.model = route.id;
  q.amount_micros = EstimateMicros(route, info);
  q.owner = d_.instance;
  q.expires_at_ms = d_.clock->NowMs() + cfg.store.reservation_ttl_ms;
  store::Store* store = d_.store;
  const std::function<StatusOr<store::ReserveOutcome>()> job = [store, q] {
    return store->ReserveCredits(q);
  };
  StatusOr<store::ReserveOutcome> out =
      co_await OnStoreThread<StatusOr<store::ReserveOutcome>>(*d_.store_tasks, job);
  if (!out.ok()) {
    Log(LogLevel::kWarn, "credit reservation failed for client key " + std::to_string(who.id) +
                             ": " + out.status().ToString());
    co_await Reply(w, cf, 503, "billing is unavailable right now; retry shortly",
                   "billing_unavailable", 1);
    co_return false;
  }
  switch (out->verdict) {
    case store::ReserveVerdict::kReserved:
      co_return true;
    case store::ReserveVerdict::kNoCredits:
      co_await Reply(w, cf, 402,
                     "insufficient credits: this request may cost up to $" +
                         FormatMicrosAsUsd(q.amount_micros) + " and the balance is $" +
                         FormatMicrosAsUsd(out->balance_micros.value_or(0)),
                     "insufficient_quota");
      co_return false;
    case store::ReserveVerdict::kCapReached:
      co_await Reply(w, cf, 402,
                     "this API key's spending cap for model '" + route.id +
                         "' cannot cover this request (up to $" +
                         FormatMicrosAsUsd(q.amount_micros) + ")",
                     "insufficient_quota");
      co_return false;
    case store::ReserveVerdict::kUnknownKey:
      co_await Reply(w, cf, 401, "this API key no longer exists", "invalid_api_key");
      co_return false;
    case store::ReserveVerdict::kRateLimited: {
      // Retry-After: when the window resets (RPM/TPM), or a second for concurrency.
      const int64_t retry_s = std::max<int64_t>(1, (out->retry_after_ms + 999) / 1000);
      std::string message = "rate limit reached for this API key (" + out->limit + "); retry in " +
                            std::to_string(retry_s) + " s";
      co_await Reply(w, cf, 429, message, "rate_limit_exceeded", retry_s);
      co_return false;
    }
  }
  co_return false;
}

asio::awaitable<Gateway::Impl::Attempted> Gateway::Impl::Proxy(
    http::Worker& worker, http::Request& req, http::ResponseWriter& w, ClientFormat cf,
    const ModelRoute& route, const provider::RequestInfo& info, const config::Config& cfg,
    int64_t start_us, int64_t* first_byte_us, const std::string& request_id, bool billed,
    Accepted* accepted) {
  Attempted a;
  std::shared_ptr<const keypool::PoolSet> pools = d_.keys->Snapshot();
  const keypool::PoolView* pool = pools->Find(route.pool);  // valid while `pools` is held
  if (pool == nullptr || route.provider == nullptr) {
    a.status = 503;
    a.error = "pool '" + route.pool + "' does not exist in the store";
    co_await Reply(w, cf, 503, "no upstream keys: pool '" + route.pool + "' has no keys",
                   "no_upstream_key");
    co_return a;
  }
  upstream::Client* client = clients_[worker.index()].get();
  if (client == nullptr) {
    a.status = 503;
    co_await Reply(w, cf, 503, "the gateway is shutting down");
    co_return a;
  }

  const config::UpstreamConfig& ucfg = cfg.upstream;
  const Mode mode = ModeFor(req.path, route.format, info.stream);
  const bool add_usage = mode == Mode::kPassThrough && info.stream && !info.include_usage &&
                         route.format == config::Format::kOpenAIChat &&
                         req.path == "/v1/chat/completions";
  thread_local std::mt19937_64 pick_rng(std::random_device{}());
  const std::string& upstream_model = Catalog::PickUpstream(route, pick_rng());
  // The upstream path is the same for every attempt: built once.
  std::string translated_path;               // set when the upstream's route differs
  std::string_view upstream_path = req.path;  // `req` outlives every attempt
  if (mode != Mode::kPassThrough) {
    translated_path = UpstreamPath(mode, req.path);
    upstream_path = translated_path;
  }
  // The upstream body is moved into the first attempt; an attempt after it gets it built again
  // (cheaper than a copy of a long prompt for every attempt, when most requests make one).
  auto build_body = [&]() -> StatusOr<std::string> {
    if (mode == Mode::kPassThrough) {
      return provider::RewriteRequest(req.body, info, upstream_model, add_usage);
    }
    translate::TranslateOptions topts;
    topts.upstream_model = upstream_model;
    topts.default_max_tokens = route.max_tokens;
    topts.thinking_budgets = route.thinking;
    return TranslateRequest(mode, req.body, topts);
  };
  StatusOr<std::string> first_body = build_body();
  if (!first_body.ok()) {
    a.status = 400;
    co_await Reply(w, cf, 400, first_body.status().message(), "unsupported_parameter");
    co_return a;
  }
  std::string upstream_body = std::move(first_body).value();
  const int64_t created_s = d_.clock->NowMs() / 1000;
  // Inline for the usual few attempts: no allocation per request.
  boost::container::small_vector<int64_t, 8> tried;
  int64_t min_cooldown_ms = 0;
  bool all_cooling = true;
  std::string last_reason = "no usable key";

  // Attempts are bounded two ways: transient failures (5xx, timeouts, rate limits, proxies) spend
  // max_attempts; dead keys (rotated) do not — a pool with many dead keys must still serve — but
  // no request tries more than max_attempts + kMaxDeadKeySkips keys.
  constexpr int kMaxDeadKeySkips = 16;
  int transient_left = ucfg.max_attempts;
  int keys_left = ucfg.max_attempts + kMaxDeadKeySkips;
  bool rotation_seen = false;
  const int64_t wait_deadline_us = start_us + kRotationWaitMs * 1000;
  // Made only when a request has to wait for a rotation: an I/O object costs a service lookup
  // (under the io_context's mutex) to make and a reactor lock to destroy, on every request.
  std::optional<asio::steady_timer> pause;

  while (transient_left > 0 && keys_left > 0) {
    keypool::Pick pick = d_.keys->Choose(*pool, tried);
    if (pick.key == nullptr) {
      // Every usable key is gone. If a key died during this request, its replacement is on the
      // way (the rotation runs on a store thread and then refreshes the view): wait for the new
      // view, briefly, rather than fail a request that a backup can serve.
      if (!rotation_seen || pool->counts.backup == 0 || SteadyMicros() >= wait_deadline_us) break;
      if (!pause) {
        auto ex = co_await asio::this_coro::executor;
        pause.emplace(std::move(ex));
      }
      pause->expires_after(std::chrono::milliseconds(10));
      co_await pause->async_wait(asio::use_awaitable);
      pools = d_.keys->Snapshot();
      pool = pools->Find(route.pool);
      if (pool == nullptr) break;
      tried.clear();  // a fresh view: keys tried before were rotated out or are skipped by health
      continue;
    }
    if (a.attempts > 0) retries_->With({pool->name}).Inc();
    const keypool::KeyView& key = *pick.key;
    tried.push_back(key.id);
    --keys_left;
    a.attempts++;
    a.key_id = key.id;

    upstream::Request ureq;
    ureq.method = "POST";
    AppendPieces(ureq.url, {route.provider->base_url, upstream_path});
    ureq.response_headers = kUpstreamHeadersRead;
    ureq.headers.reserve(6 + route.provider->headers.size());
    auto auth = provider::AuthHeader(route.provider->auth, key.secret);
    ureq.headers.push_back(std::move(auth));
    ureq.headers.emplace_back("content-type", "application/json");
    ureq.headers.emplace_back("accept", info.stream ? "text/event-stream" : "application/json");
    ureq.headers.emplace_back("user-agent", "keygate/0.1");
    for (const auto& [k, v] : route.provider->headers) {
      // A client's own anthropic-version / anthropic-beta win over the provider default.
      if (!req.Header(ToLower(k)).empty()) continue;
      ureq.headers.emplace_back(k, v);
    }
    for (std::string_view pass : {"anthropic-version", "anthropic-beta"}) {
      if (route.format != config::Format::kAnthropicMessages) break;
      std::string_view v = req.Header(pass);
      if (!v.empty()) ureq.headers.emplace_back(std::string(pass), std::string(v));
    }
    if (a.attempts > 1) {
      // An attempt before this one took the body: the same input built the same way (it
      // succeeded the first time).
      StatusOr<std::string> again = build_body();
      if (!again.ok()) {
        last_reason = std::string(again.status().message());
        break;
      }
      upstream_body = std::move(again).value();
    }
    ureq.body = std::move(upstream_body);
    ureq.proxy_url = pick.route ? pick.route->url : "";
    ureq.connect_timeout_ms = ucfg.connect_timeout_ms;
    ureq.first_byte_timeout_ms = ucfg.first_byte_timeout_ms;
    ureq.idle_timeout_ms = ucfg.idle_timeout_ms;
    ureq.max_buffered_bytes = static_cast<size_t>(cfg.server.max_stream_buffer_bytes);

    InFlight in_flight(key);
    d_.keys->ReportUse(key);
    LiveExchange ex(client->Start(std::move(ureq)), live_[worker.index()]);

    bool got_head = co_await ex->ReadHead();
    if (!got_head) {
      provider::UpstreamOutcome o;
      o.transport = TransportOf(ex->failure().kind);
      if (ex->failure().kind == upstream::ErrorKind::kCancelled) {
        a.status = 499;
        a.error = "cancelled";
        co_return a;
      }
      provider::Verdict v = provider::Classify(route.classifier, o);
      Apply(*pool, pick, v, ucfg);
      Spend(v, &transient_left, &rotation_seen);
      if (v.action == provider::Action::kProxy && pick.route != nullptr) {
        // The key is fine: let it go out again through its next proxy (the failed one is down).
        tried.pop_back();
      }
      all_cooling = false;
      last_reason = v.reason;  // clients get the class; the log gets the details
      Log(LogLevel::kWarn, "upstream attempt failed pool=" + pool->name + " key=" + key.masked +
                               (pick.route ? " proxy=" + pick.route->display_url : "") +
                               " reason=" + v.reason + " detail=" + ex->failure().message);
      continue;
    }
    const upstream::ResponseHead& head = ex->head();
    if (head.status >= 400) {
      std::string body;
      while (body.size() < kMaxErrorBodyBytes) {
        // g++ 12 miscompiles `co_await` inside a loop condition or `if (!co_await …)`: read the
        // result into a variable first (see docs/design.md, pitfalls).
        bool more = co_await ex->ReadBody(body);
        if (!more) break;
      }
      provider::UpstreamOutcome o;
      o.status = head.status;
      o.body = body;
      std::string_view ra = head.Header("retry-after");
      if (!ra.empty()) o.retry_after_ms = provider::ParseRetryAfterMs(ra, d_.clock->NowMs());
      provider::Verdict v = provider::Classify(route.classifier, o);
      if (!billed && v.action == provider::Action::kCooldown) {
        // An unbilled call's limits are its own (Anthropic limits token counting apart from
        // messages): the client gets the 429 (and counts for itself); the key is not cooled
        // down for the traffic that pays. A burst of counts, as Claude Code sends at start,
        // would otherwise put a small pool out of service for messages.
        v.action = provider::Action::kPass;
      }
      if (v.action == provider::Action::kPass) {
        // The client's own error: hand it over as the provider sent it.
        Headers h{{"content-type", std::string(head.Header("content-type").empty()
                                                   ? "application/json"
                                                   : head.Header("content-type"))}};
        if (!ra.empty()) h.emplace_back("retry-after", std::string(ra));
        *first_byte_us = SteadyMicros();
        if (mode == Mode::kPassThrough) {
          co_await w.Send(head.status, h, body);
        } else {
          // The upstream's error is in its own format: restate its message, and its type or
          // code (OpenAI's "code"), in the client's shape, with the client format's type.
          // (No ?: with temporaries here: g++ 12 double-frees them in a coroutine.)
          provider::ErrorFields e = provider::ReadErrorFields(body);
          std::string message = std::move(e.message);
          if (message.empty()) message = "the upstream answered HTTP " + std::to_string(head.status);
          std::string code = std::move(e.code);
          if (code.empty()) code = std::move(e.type);
          if (code.empty()) code = "upstream_error";
          co_await Reply(w, cf, head.status, message, code);
        }
        d_.keys->ReportSuccess(key);
        a.status = head.status;
        a.delivered = true;
        co_return a;
      }
      Apply(*pool, pick, v, ucfg);
      Spend(v, &transient_left, &rotation_seen);
      if (v.action == provider::Action::kCooldown) {
        int64_t ms = v.cooldown_ms > 0 ? v.cooldown_ms : ucfg.default_cooldown_ms;
        min_cooldown_ms = min_cooldown_ms == 0 ? ms : std::min(min_cooldown_ms, ms);
      } else {
        all_cooling = false;
      }
      last_reason = v.reason + " (HTTP " + std::to_string(head.status) + ")";
      Log(LogLevel::kWarn, "upstream attempt failed pool=" + pool->name + " key=" + key.masked +
                               " status=" + std::to_string(head.status) + " action=" +
                               std::string(provider::ActionName(v.action)) + " reason=" + v.reason);
      continue;
    }

    // Success: from here on, bytes go to the client and the request is never retried.
    if (pick.route && d_.keys->ReportProxySuccess(*pick.route)) {
      // A proxy that failed before carried traffic again (after proxy_recheck_ms): healthy.
      int64_t pid = pick.route->proxy_id;
      store::Store* store = d_.store;
      int64_t at = d_.clock->NowMs();  // store tasks may run out of order: the latest wins
      d_.store_tasks->Post([store, pid, at] { (void)store->SetProxyHealth(pid, true, "", at); });
    }
    std::string_view ctype = head.Header("content-type");
    a.status = head.status;
    if (ctype.starts_with("text/event-stream")) {
      // No attempt follows a stream's start: the client's request body and headers are not
      // needed again, and the stream may stay open for hours.
      std::string().swap(req.body);
      decltype(req.headers)().swap(req.headers);
      accepted->ex = std::move(ex);
      accepted->pools = pools;
      accepted->key = &key;
      accepted->in_flight = std::move(in_flight);
      accepted->mode = mode;
      accepted->add_usage = add_usage;
      accepted->created_s = created_s;
      co_return a;
    }

    std::string body;
    while (true) {
      bool more = co_await ex->ReadBody(body);
      if (!more) break;
    }
    if (ex->failure().kind != upstream::ErrorKind::kNone) {
      // Nothing reached the client yet: this attempt failed like a transport error.
      provider::UpstreamOutcome o;
      o.transport = TransportOf(ex->failure().kind);
      provider::Verdict v = provider::Classify(route.classifier, o);
      Apply(*pool, pick, v, ucfg);
      Spend(v, &transient_left, &rotation_seen);
      all_cooling = false;
      last_reason = v.reason;
      Log(LogLevel::kWarn, "upstream body failed pool=" + pool->name + " key=" + key.masked +
                               " reason=" + v.reason + " detail=" + ex->failure().message);
      continue;
    }
    a.usage = provider::ParseResponseUsage(route.format, body);
    if (mode != Mode::kPassThrough) {
      translate::ResponseOptions ropts{.client_model = info.model, .created = created_s};
      auto back = TranslateResponse(mode, body, ropts);
      if (!back.ok()) {
        // A 2xx we cannot translate is the upstream's fault; the client gets a clear 502.
        a.status = 502;
        a.error = back.status().message();
        co_await Reply(w, cf, 502, "the upstream's response could not be translated: " +
                                       back.status().message(), "upstream_error");
        co_return a;
      }
      body = std::move(back).value();
      ctype = "application/json";
    }
    const http::HeaderRef h[] = {{"content-type", ctype.empty() ? "application/json" : ctype},
                                 {"x-keygate-request-id", request_id}};
    *first_byte_us = SteadyMicros();
    co_await w.Send(head.status, h, body);
    a.delivered = true;
    d_.keys->ReportSuccess(key);
    co_return a;
  }

  // Every attempt failed (or no key was usable) and nothing reached the client.
  if (a.attempts > 0 && all_cooling && min_cooldown_ms > 0) {
    a.status = 429;
    a.error = last_reason;
    co_await Reply(w, cf, 429, "every upstream key of this model is rate limited; retry later",
                   "rate_limited", (min_cooldown_ms + 999) / 1000);
  } else if (a.attempts == 0) {
    a.status = 503;
    a.error = "no usable key";
    co_await Reply(w, cf, 503,
                   "no upstream key is available for model '" + route.id + "' right now",
                   "no_upstream_key");
  } else {
    a.status = 502;
    a.error = last_reason;
    co_await Reply(w, cf, 502,
                   "the upstream failed after " + std::to_string(a.attempts) +
                       " attempt(s): " + last_reason,
                   "upstream_error");
  }
  co_return a;
}

asio::awaitable<void> Gateway::Impl::Relay(http::ResponseWriter& w, Accepted& s,
                                           const ModelRoute& route,
                                           const provider::RequestInfo& info,
                                           const std::string& request_id, int64_t* first_byte_us,
                                           Attempted& a) {
  StreamOut filter(s.mode, route.format, s.add_usage, info.model, s.created_s,
                   info.include_usage);
  *first_byte_us = SteadyMicros();
  bool client_ok = false;
  {
    // The head's fields are serialized by StartStream: not kept for the stream's life.
    const upstream::ResponseHead& head = s.ex->head();
    const http::HeaderRef h[] = {{"content-type", head.Header("content-type")},
                                 {"cache-control", "no-cache"},
                                 {"x-keygate-request-id", request_id}};
    // Body bytes that came with the head (often the whole stream, from a fast upstream) go out
    // in the same write as the response head, and the last piece with the end of the body:
    // a short stream costs one write to the client instead of three.
    const bool hold = s.ex->BodyReady();
    client_ok = co_await w.StartStream(head.status, h, hold);
  }
  a.delivered = true;
  std::string in, out;
  while (client_ok) {
    in.clear();
    bool more = co_await s.ex->ReadBody(in);
    if (!more) break;
    filter.Feed(in, out);  // may take `in`'s buffer: it is cleared before the next read
    if (s.ex->BodyComplete()) break;         // `out` goes with EndStream below
    client_ok = co_await w.WriteChunk(out);  // an empty `out` still sends a held head
    out.clear();
  }
  if (client_ok) filter.Finish(out);
  a.usage = filter.usage();
  a.streamed_chars = filter.output_chars();
  a.streamed_events = filter.events();
  if (!client_ok) {
    s.ex->Cancel();  // the client left: stop the upstream work it was paying for
    a.status = 499;
    a.error = "client disconnected mid-stream";
  } else if (s.ex->failure().kind != upstream::ErrorKind::kNone) {
    // The upstream broke mid-stream. Bytes already reached the client: no retry; end the
    // chunked body so the client sees a clean end rather than a hung connection.
    a.error = std::string("upstream stream broke: ") + s.ex->failure().message;
    a.status = 502;
    co_await w.EndStream(out);
    d_.keys->ReportFailure(*s.key);
  } else {
    client_ok = co_await w.EndStream(out);
    if (!client_ok) {
      a.status = 499;
      a.error = "client disconnected mid-stream";
    }
    d_.keys->ReportSuccess(*s.key);
  }
}

void Gateway::Impl::Apply(const keypool::PoolView& pool, const keypool::Pick& pick,
                          const provider::Verdict& v, const config::UpstreamConfig& ucfg) {
  const keypool::KeyView& key = *pick.key;
  upstream_errors_->With({pool.name, v.reason}).Inc();
  switch (v.action) {
    case provider::Action::kPass:
      return;
    case provider::Action::kRetry:
      d_.keys->ReportFailure(key);
      return;
    case provider::Action::kCooldown: {
      int64_t ms = v.cooldown_ms > 0 ? v.cooldown_ms : ucfg.default_cooldown_ms;
      ms = std::min(ms, ucfg.max_cooldown_ms);
      d_.keys->ReportCooldown(key, ms);
      // Tell the other instances too (off the loop); the later deadline wins in the store.
      int64_t until = d_.clock->NowMs() + ms;
      int64_t id = key.id;
      store::Store* store = d_.store;
      std::string reason = v.reason;
      d_.store_tasks->Post([store, id, until, reason] {
        auto r = store->CoolDown(id, until, reason);
        if (!r.ok()) Log(LogLevel::kWarn, "cooldown not stored: " + r.status().ToString());
      });
      return;
    }
    case provider::Action::kRotate:
      RequestRotation(pool, key, v.reason);
      return;
    case provider::Action::kProxy:
      if (pick.route != nullptr) {
        d_.keys->ReportProxyFailure(*pick.route);
        proxy_failures_->With({pick.route->display_url}).Inc();
        int64_t pid = pick.route->proxy_id;
        store::Store* store = d_.store;
        int64_t at = d_.clock->NowMs();
        std::string why = v.reason;
        d_.store_tasks->Post(
            [store, pid, at, why] { (void)store->SetProxyHealth(pid, false, why, at); });
      }
      return;
  }
}

void Gateway::Impl::RequestRotation(const keypool::PoolView& pool, const keypool::KeyView& key,
                                    const std::string& reason) {
  // Only the first request to see the key die asks for the rotation; the others just skip it.
  if (key.health->rotation_requested.exchange(true)) return;
  keypool::KeyPool* keys = d_.keys;
  auto* rotations = rotations_;
  int64_t pool_id = pool.id, key_id = key.id;
  std::string pool_name = pool.name, masked = key.masked;
  std::shared_ptr<keypool::KeyHealth> health = key.health;
  d_.store_tasks->Post([=] {
    auto out = keys->Rotate(pool_id, key_id, reason);
    if (!out.ok()) {
      // A storage error is not an outcome: let the next request that meets the key try again.
      health->rotation_requested.store(false);
      rotations->With({pool_name, reason, "error"}).Inc();
      Log(LogLevel::kError, "rotation failed pool=" + pool_name + " key=" + masked + ": " +
                                out.status().ToString());
      return;
    }
    std::string outcome(store::RotateOutcomeName(*out));
    rotations->With({pool_name, reason, outcome}).Inc();
    if (std::holds_alternative<store::NoBackup>(*out)) {
      Log(LogLevel::kError, "ALERT no backup key left: pool=" + pool_name + " key=" + masked +
                                " is exhausted (" + reason + ")");
    } else if (const auto* r = std::get_if<store::Rotated>(&*out)) {
      Log(LogLevel::kInfo, "rotated pool=" + pool_name + " key=" + masked + " reason=" + reason +
                               " new_key_id=" + std::to_string(r->new_key_id));
    } else {
      Log(LogLevel::kInfo, "already rotated pool=" + pool_name + " key=" + masked);
    }
  });
}

void Gateway::Impl::Record(http::Worker& worker, const Catalog& catalog, const ClientIdentity& who,
                           const ModelRoute& route, const provider::RequestInfo& info,
                           std::string request_id, int64_t pool_id, const Attempted& a,
                           int64_t start_us, int64_t first_byte_us, bool billed) {
  int64_t now_us = SteadyMicros();
  RouteMetrics& metrics = MetricsOf(worker, catalog, route);
  RequestsOf(metrics, route, a.status).Inc();
  metrics.latency->ObserveMicros(now_us - start_us);
  if (first_byte_us > 0) metrics.ttfb->ObserveMicros(first_byte_us - start_us);
  store::UsageRecord u;
  u.request_id = std::move(request_id);
  u.client_key_id = who.id;
  if (a.key_id != 0) u.upstream_key_id = a.key_id;
  if (pool_id != 0) u.pool_id = pool_id;
  u.model = route.id;
  provider::Usage usage = a.usage;
  if (!usage.present && a.streamed_events > 0) usage = CountedUsage(info, a);
  if (!billed) usage = provider::Usage{};  // whatever the answer held, nothing was spent
  u.input_tokens = usage.input_tokens;
  u.output_tokens = usage.output_tokens;
  u.cache_read_tokens = usage.cache_read_tokens;
  u.cache_write_tokens = usage.cache_write_tokens;
  int64_t uncached = std::max<int64_t>(
      0, usage.input_tokens - usage.cache_read_tokens - usage.cache_write_tokens);
  u.cost_micros = billing::CostMicros(route.price, {.input = uncached,
                                                    .output = usage.output_tokens,
                                                    .cache_read = usage.cache_read_tokens,
                                                    .cache_write = usage.cache_write_tokens});
  u.latency_ms = (now_us - start_us) / 1000;
  u.ttfb_ms = first_byte_us > 0 ? (first_byte_us - start_us) / 1000 : 0;
  u.status = a.status;
  u.attempts = a.attempts;
  u.created_at_ms = d_.clock->NowMs();
  u.settle = who.metered && billed;  // an unbilled call reserved nothing
  d_.usage->Enqueue(std::move(u));
}

// ------------------------------------------------------------------------------------------------

Gateway::Gateway(GatewayDeps deps, std::shared_ptr<const Catalog> catalog)
    : impl_(std::make_unique<Impl>(*this, deps)), catalog_(std::move(catalog)) {}

Gateway::~Gateway() = default;

void Gateway::SetCatalog(std::shared_ptr<const Catalog> catalog) {
  catalog_.Store(std::move(catalog));
}

http::Handler Gateway::Handler() {
  return [this](http::Worker& worker, http::Request& req,
                http::ResponseWriter& w) -> asio::awaitable<void> {
    co_await impl_->Handle(worker, req, w);
  };
}

http::ErrorBody Gateway::ErrorBody() {
  return [this](std::string_view path, int status, std::string_view message) {
    return impl_->ErrorBody(path, status, message);
  };
}

http::Hooks Gateway::Hooks(int workers) {
  impl_->SizeFor(workers, catalog()->config());
  http::Hooks h;
  h.on_start = [this](http::Worker& w) { impl_->OnWorkerStart(w); };
  h.on_abort = [this](http::Worker& w) { impl_->OnWorkerAbort(w); };
  h.on_stop = [this](http::Worker& w) { impl_->OnWorkerStop(w); };
  return h;
}

}  // namespace keygate::gateway
