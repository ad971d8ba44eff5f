// Format translation between client and upstream API formats, pure code (no I/O), each way
// request, whole response and SSE stream (incremental):
//   OpenAI Chat Completions  <-> Anthropic Messages
//   OpenAI Chat Completions  <-> OpenAI Responses (both ways: Responses upstreams, and Responses
//                                clients of chat or Anthropic upstreams; Anthropic via chat)
// The mapping tables, and what is refused and why, are in docs/translation.md.
//
// Contracts shared by every function here:
//   - Inputs are borrowed for the duration of the call; outputs are new strings the caller owns.
//   - Request translation refuses what it cannot map with InvalidArgument whose message names the
//     field ("unsupported parameter 'n': …", "messages[2].tool_calls[0].function.arguments is not
//     valid JSON"), fit to return to the client as a 400. Nothing is dropped silently: the few
//     fields that are accepted and ignored are listed in docs/translation.md.
//   - Response translation of an upstream body that is not the expected JSON returns Internal
//     (the gateway answers 502: the upstream, not the client, is at fault).
//   - Usage for billing is provider::Usage, normalized as in provider/provider.h; the translated
//     output carries the same counts in the client's format (OpenAI has no place for cache
//     writes: prompt_tokens includes them, and only cache reads appear in cached_tokens).
//
// Thread safety: the functions are pure and may run on any thread; the stream classes are values
// owned by one stream, not thread-safe.
#ifndef KEYGATE_TRANSLATE_TRANSLATE_H_
#define KEYGATE_TRANSLATE_TRANSLATE_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"
#include "config/config.h"
#include "provider/provider.h"
#include "translate/chat_chunks.h"

namespace keygate::translate {

// Thinking budgets for reasoning_effort values, per model (config [[models]] thinking).
using ThinkingBudgets = config::ThinkingBudgets;

// response_format json_schema / json_object on an Anthropic upstream: the request gets a tool of
// this name with the schema as its input_schema, forced by tool_choice; the response translators
// turn that tool's input back into message content (finish_reason "stop"). Client tools may not
// use the name.
inline constexpr std::string_view kStructuredOutputTool = "keygate_json_response";

struct TranslateOptions {
  // The upstream model name written into the translated request; empty keeps the client's.
  std::string_view upstream_model;
  // Anthropic requires max_tokens: used when the client sets neither max_tokens nor
  // max_completion_tokens (the catalog's default for the model). Must be > 0.
  int64_t default_max_tokens = 4096;
  ThinkingBudgets thinking_budgets;
};

// Translates an OpenAI Chat Completions request body into an Anthropic Messages request body.
// Returns the new body (compact JSON), or InvalidArgument naming the offending field: the body is
// not a JSON object, a field has the wrong type, or a field has no Anthropic meaning (n > 1,
// logprobs, audio, response_format json_schema, …; see docs/translation.md).
StatusOr<std::string> OpenAIChatToAnthropicRequest(std::string_view body,
                                                   const TranslateOptions& options);

struct ResponseOptions {
  std::string_view client_model;  // the model name the client asked for, echoed back
  int64_t created = 0;  // "created" (Unix seconds): the caller's clock, since this is pure
};

// Translates a successful (2xx) Anthropic Messages response body into an OpenAI chat.completion
// body. text blocks -> message.content (joined), tool_use -> message.tool_calls (ids kept, input
// serialized into arguments), thinking -> message.reasoning_content; stop_reason -> finish_reason;
// usage -> usage. Returns Internal when the body is not an Anthropic message object.
// Error bodies (non-2xx) are not translated here.
StatusOr<std::string> AnthropicToOpenAIChatResponse(std::string_view body,
                                                    const ResponseOptions& options);

// Anthropic stop_reason -> OpenAI finish_reason: end_turn/stop_sequence/pause_turn -> "stop",
// max_tokens/model_context_window_exceeded -> "length", tool_use -> "tool_calls",
// refusal -> "content_filter"; anything else -> "stop".
std::string_view FinishReasonFromAnthropic(std::string_view stop_reason);

// OpenAI finish_reason -> Anthropic stop_reason: length -> max_tokens, tool_calls/function_call
// -> tool_use, content_filter -> refusal; anything else (stop, …) -> end_turn.
std::string_view StopReasonFromOpenAI(std::string_view finish_reason);

// ---- the reverse direction (Anthropic clients, OpenAI-format upstreams); the stream is
// OpenAIToAnthropicStream below.

// Translates an Anthropic Messages request body into an OpenAI Chat Completions request body:
// system -> a system message; tool_result blocks -> tool messages; tool_use -> tool_calls;
// images -> image_url parts (base64 as data URLs); max_tokens -> max_completion_tokens;
// thinking.budget_tokens -> reasoning_effort (the smallest effort in `thinking_budgets` that
// covers it); stream adds stream_options.include_usage. `default_max_tokens` is unused.
// InvalidArgument naming the field for what has no OpenAI counterpart (top_k, server tools,
// document blocks, …; see docs/translation.md).
StatusOr<std::string> AnthropicToOpenAIChatRequest(std::string_view body,
                                                   const TranslateOptions& options);

// Translates a successful OpenAI chat.completion body (its first choice) into an Anthropic
// Messages response body: reasoning_content -> a thinking block (empty signature), content ->
// a text block, tool_calls -> tool_use blocks (arguments parsed), finish_reason -> stop_reason,
// usage split back into input/cache_read/output tokens. Internal when the body is not a
// chat.completion or a tool call's arguments are not a JSON object.
StatusOr<std::string> OpenAIChatToAnthropicResponse(std::string_view body,
                                                    const ResponseOptions& options);

// Translates an Anthropic Messages SSE stream into an OpenAI chat.completion.chunk SSE stream,
// event by event: each complete upstream event is translated as soon as its blank line arrives,
// and only the incomplete tail of the input is held. The output is identical however the input
// bytes are split across Feed() calls.
//
// Output, in order: a first chunk with delta.role (at message_start); delta.content for text;
// delta.tool_calls for tool_use blocks (index 0, 1, … in order of tool blocks, with id, type,
// name and "" arguments at block start, then argument fragments with the same index);
// delta.reasoning_content for thinking; a chunk with finish_reason (at message_delta); at
// message_stop a usage chunk with "choices": [] when `include_usage`, then "data: [DONE]".
// An upstream "error" event becomes one OpenAI error event ({"error": {…}}) and ends the
// translation. A stream that ends (Finish) before message_stop gets an error event instead of
// [DONE], so the client can tell a truncated answer from a complete one.
//
// Memory is bounded: at most max_event_bytes of pending input plus one Feed(); an event longer
// than that ends the translation with an error event (it cannot be translated without holding it).
// Per-block state is kept only for open blocks.
//
// Thread safety: one object per stream; not thread-safe.
class AnthropicToOpenAIStream {
 public:
  static constexpr size_t kDefaultMaxEventBytes = provider::SseSplitter::kDefaultMaxEventBytes;

  struct Options {
    std::string_view client_model;  // copied
    int64_t created = 0;            // Unix seconds, for every chunk's "created"
    bool include_usage = false;     // the client asked stream_options.include_usage
    size_t max_event_bytes = kDefaultMaxEventBytes;
  };

  explicit AnthropicToOpenAIStream(const Options& options);

  // Consumes upstream bytes; appends translated SSE events (whole events only) to `out`.
  // After the end (message_stop, an error event, or an oversized event) input is ignored.
  void Feed(std::string_view bytes, std::string& out);
  // At end of upstream: translates a final event that lacks its blank line, and, when the
  // stream did not end properly, appends an error event. Call once, last.
  void Finish(std::string& out);

  // Usage read from message_start and message_delta, normalized as provider::Usage.
  const provider::Usage& usage() const { return usage_; }
  // True once message_stop was translated (the client got [DONE]).
  bool done() const { return state_ == State::kDone; }
  // OK, or why the translation ended early (upstream error event, oversized event, truncation).
  const Status& status() const { return status_; }

 private:
  enum class State { kRunning, kDone, kFailed };
  enum class BlockKind : uint8_t { kText, kToolUse, kThinking, kStructured, kOther };
  struct Block {
    BlockKind kind = BlockKind::kOther;
    int tool_index = -1;
  };

  void OnData(std::string_view data, std::string& out);
  // Appends one chunk: `delta_json` is the delta object, `finish_reason` a JSON literal.
  void AppendChunk(std::string_view delta_json, std::string_view finish_reason_json,
                   std::string& out);
  void Fail(Status status, std::string_view type, std::string& out);

  internal::ChatChunkWriter chunks_;
  size_t max_event_bytes_;

  State state_ = State::kRunning;
  Status status_;
  provider::SseSplitter splitter_;

  bool started_ = false;           // message_start seen
  std::map<int64_t, Block> open_;  // open content blocks by Anthropic index
  int next_tool_index_ = 0;
  bool structured_ = false;  // the response_format tool was used (see kStructuredOutputTool)
  provider::Usage usage_;
  int64_t input_ = 0, cache_read_ = 0, cache_write_ = 0;  // Anthropic reports these apart
};

// ---- OpenAI Responses upstreams (POST /v1/responses). Chat is the pivot: an Anthropic client
// reaches such a model through AnthropicToOpenAIChatRequest + OpenAIChatToResponsesRequest, and
// back through ResponsesToOpenAIChatResponse + OpenAIChatToAnthropicResponse (streams:
// ResponsesToOpenAIStream then OpenAIToAnthropicStream).

// Translates a Chat Completions request into a Responses request: messages -> input items
// (system/developer/user/assistant messages with input_text/output_text/input_image parts;
// assistant tool_calls -> function_call items; tool messages -> function_call_output items),
// max_(completion_)tokens -> max_output_tokens, tools -> flat function tools, tool_choice,
// response_format -> text.format, reasoning_effort -> reasoning.effort; "store": false unless
// the client set store (the Responses API stores by default, chat does not). InvalidArgument
// naming the field for what has no Responses counterpart (stop, n > 1, seed, penalties, …).
StatusOr<std::string> OpenAIChatToResponsesRequest(std::string_view body,
                                                   const TranslateOptions& options);

// Translates a Responses response body into a chat.completion: output_text parts -> content,
// refusal parts -> refusal, function_call items -> tool_calls (call_id as id), reasoning
// summaries -> reasoning_content; status completed -> "stop" (or "tool_calls"), incomplete ->
// "length" (or "content_filter"); usage renamed (input/output_tokens -> prompt/completion_tokens).
// Internal when the body has no output array.
StatusOr<std::string> ResponsesToOpenAIChatResponse(std::string_view body,
                                                    const ResponseOptions& options);

// Translates a Responses SSE stream into chat.completion.chunk SSE, event by event (the same
// contract as AnthropicToOpenAIStream): the first event -> the role chunk; output_text /
// refusal deltas -> delta.content; reasoning deltas -> delta.reasoning_content;
// output_item.added function_call -> a tool_calls chunk (index 0, 1, … in order of calls; id =
// call_id); function_call_arguments.delta -> argument fragments with that index;
// response.completed / .incomplete -> the finish_reason chunk, the usage chunk (include_usage),
// [DONE]; response.failed / error -> an OpenAI error event. Ending without response.completed
// gives an error event instead of [DONE].
//
// Thread safety: one object per stream; not thread-safe.
class ResponsesToOpenAIStream {
 public:
  static constexpr size_t kDefaultMaxEventBytes = provider::SseSplitter::kDefaultMaxEventBytes;

  struct Options {
    std::string_view client_model;  // copied
    int64_t created = 0;
    bool include_usage = false;
    size_t max_event_bytes = kDefaultMaxEventBytes;
  };

  explicit ResponsesToOpenAIStream(const Options& options);
  void Feed(std::string_view bytes, std::string& out);
  void Finish(std::string& out);
  const provider::Usage& usage() const { return usage_; }
  bool done() const { return state_ == State::kDone; }
  const Status& status() const { return status_; }

 private:
  enum class State { kRunning, kDone, kFailed };
  void OnData(std::string_view data, std::string& out);
  void Start(std::string_view id, std::string& out);  // the role chunk, once
  void Chunk(std::string_view delta, std::string_view finish_reason_json, std::string& out);
  void Fail(Status status, std::string& out);

  internal::ChatChunkWriter chunks_;
  size_t max_event_bytes_;
  provider::SseSplitter splitter_;
  State state_ = State::kRunning;
  Status status_;
  std::map<std::string, int> tools_;  // function_call item id -> tool_calls index
  provider::Usage usage_;
};

// Translates an OpenAI chat.completion.chunk SSE stream into an Anthropic Messages SSE stream,
// event by event (each upstream event is translated as soon as its blank line arrives; only the
// incomplete tail is held). The output is identical however the input is split across Feed().
//
// Output: message_start (id from the first chunk, usage zero: OpenAI reports it at the end);
// content blocks numbered 0, 1, … in order of appearance: delta.reasoning_content (or
// .reasoning) -> a thinking block (thinking_delta, no signature), delta.content -> a text block
// (text_delta), each tool_calls[] index -> a tool_use block (id, name, input {} at start, then
// input_json_delta per arguments fragment). A text or thinking block closes when another block
// starts; tool_use blocks stay open until the end, so a late fragment still reaches its own
// block. At "[DONE]": content_block_stop for open blocks (in index order), message_delta
// (stop_reason from the finish_reason, usage from the usage chunk split back into input /
// cache_read / output tokens), message_stop. Only choice 0 is read.
// An upstream {"error": …} chunk becomes an Anthropic "error" event and ends the translation; a
// stream that ends without "[DONE]" is complete when a finish_reason was seen (some compatible
// servers omit [DONE]), and otherwise gets an error event instead of message_stop.
//
// Memory is bounded as in AnthropicToOpenAIStream: an event longer than max_event_bytes ends the
// translation with an error event. Per-block state is one entry per tool call.
//
// Thread safety: one object per stream; not thread-safe.
class OpenAIToAnthropicStream {
 public:
  static constexpr size_t kDefaultMaxEventBytes = provider::SseSplitter::kDefaultMaxEventBytes;

  struct Options {
    std::string_view client_model;  // copied
    size_t max_event_bytes = kDefaultMaxEventBytes;
  };

  explicit OpenAIToAnthropicStream(const Options& options);

  // Consumes upstream bytes; appends translated SSE events (whole events only) to `out`.
  // After the end (message_stop, an error, an oversized event) input is ignored.
  void Feed(std::string_view bytes, std::string& out);
  // At end of upstream: translates a final event that lacks its blank line, then ends the
  // message (see above). Call once, last.
  void Finish(std::string& out);

  // Usage from the usage chunk, normalized as provider::Usage (present=false without one).
  const provider::Usage& usage() const { return usage_; }
  bool done() const { return state_ == State::kDone; }  // message_stop was written
  const Status& status() const { return status_; }      // OK, or why it ended early

 private:
  enum class State { kRunning, kDone, kFailed };
  enum class BlockKind : uint8_t { kNone, kText, kThinking };

  void OnData(std::string_view data, std::string& out);
  void Start(std::string_view id, std::string& out);  // message_start, once
  void CloseOpen(std::string& out);                   // the open text/thinking block
  void TextDelta(BlockKind kind, std::string_view text, std::string& out);
  // One tool_calls[] entry: opens its block the first time `tool_index` is seen.
  void ToolCallDelta(int64_t tool_index, std::string_view id, std::string_view name,
                     std::string_view arguments, std::string& out);
  void End(std::string& out);  // block stops, message_delta, message_stop
  void Fail(Status status, std::string& out);

  std::string client_model_;
  size_t max_event_bytes_;
  provider::SseSplitter splitter_;

  State state_ = State::kRunning;
  Status status_;
  bool started_ = false;
  int next_block_ = 0;
  BlockKind open_kind_ = BlockKind::kNone;  // the open text/thinking block, if any
  int open_index_ = -1;
  std::map<int64_t, int> tools_;  // OpenAI tool_calls index -> Anthropic block index (open)
  std::string stop_reason_;       // set by the finish_reason
  provider::Usage usage_;
};

// A Responses SSE stream to Anthropic events: ResponsesToOpenAIStream (with the usage chunk) into
// OpenAIToAnthropicStream, chunk by chunk; the same contract as each of them.
// Thread safety: one object per stream; not thread-safe.
class ResponsesToAnthropicStream {
 public:
  struct Options {
    std::string_view client_model;  // copied
    size_t max_event_bytes = ResponsesToOpenAIStream::kDefaultMaxEventBytes;
  };
  explicit ResponsesToAnthropicStream(const Options& options)
      : first_({.client_model = options.client_model, .include_usage = true,
                .max_event_bytes = options.max_event_bytes}),
        second_({.client_model = options.client_model,
                 .max_event_bytes = options.max_event_bytes}) {}
  void Feed(std::string_view bytes, std::string& out) {
    middle_.clear();
    first_.Feed(bytes, middle_);
    second_.Feed(middle_, out);
  }
  void Finish(std::string& out) {
    middle_.clear();
    first_.Finish(middle_);
    second_.Feed(middle_, out);
    second_.Finish(out);
  }
  const provider::Usage& usage() const { return first_.usage(); }

 private:
  ResponsesToOpenAIStream first_;
  OpenAIToAnthropicStream second_;
  std::string middle_;  // chat chunks between the two, one Feed() at a time
};

// ---- OpenAI Responses clients (POST /v1/responses) on openai-chat and anthropic-messages
// upstreams. Chat is the pivot again: a Responses request becomes a chat request
// (ResponsesToOpenAIChatRequest), and for an Anthropic model then an Anthropic one
// (OpenAIChatToAnthropicRequest); the answer comes back through chat (AnthropicToOpenAIChatResponse,
// then OpenAIChatToResponsesResponse; streams: AnthropicToResponsesStream =
// AnthropicToOpenAIStream into OpenAIToResponsesStream). keygate stores no responses.

// Translates a Responses request into a Chat Completions request: instructions -> a system
// message; input (a string, or items: messages with input_text / output_text / input_image parts,
// function_call -> an assistant message's tool_calls (call ids kept), function_call_output -> tool
// messages, reasoning items dropped) -> messages; flat function tools -> nested ones; tool_choice;
// max_output_tokens -> max_completion_tokens; text.format -> response_format; reasoning.effort ->
// reasoning_effort; stream adds stream_options.include_usage. InvalidArgument naming the field
// for what needs server-side state or has no chat counterpart (previous_response_id, store: true,
// background, built-in tools, item_reference, input_file, …; see docs/translation.md).
StatusOr<std::string> ResponsesToOpenAIChatRequest(std::string_view body,
                                                   const TranslateOptions& options);

// Translates a successful chat.completion body (its first choice) into a Responses `response`
// object: reasoning_content -> a reasoning item (summary text), content / refusal -> a message
// item (output_text / refusal parts), tool_calls -> function_call items (call_id = the tool-call
// id); finish_reason length / content_filter -> status "incomplete" with incomplete_details, else
// "completed"; usage renamed (prompt/completion_tokens -> input/output_tokens, cached and reasoning
// details kept). Ids: "resp_" + the upstream id; items "msg_…", "rs_…", "fc_" + call id. Internal
// when the body is not a chat.completion.
StatusOr<std::string> OpenAIChatToResponsesResponse(std::string_view body,
                                                    const ResponseOptions& options);

// Translates a chat.completion.chunk SSE stream into Responses SSE events, event by event (each
// upstream event is translated when its blank line arrives; the output is identical however the
// input is split). Output: response.created and response.in_progress at the first chunk; output
// items in order of appearance, each with output_item.added, its parts / deltas and .done events,
// then output_item.done: delta.reasoning_content (or .reasoning) -> a reasoning item
// (reasoning_summary_part / _text events), delta.content -> a message item's output_text part,
// delta.refusal -> its refusal part, each tool_calls[] index -> a function_call item
// (function_call_arguments.delta / .done). A reasoning or message item closes when another item
// starts; function_call items stay open until the end (fragments of parallel calls may
// interleave). At "[DONE]" (or the end after a finish_reason): open items close in output_index
// order, then response.completed, or response.incomplete for finish_reason length /
// content_filter, with the whole response and usage. Every event has "type" and
// "sequence_number" (0, 1, …) and an SSE "event:" line. An upstream {"error": …} chunk, an
// oversized event, or an end with neither [DONE] nor a finish_reason gives response.failed
// (status "failed", error.message says why) and ends the translation.
//
// Memory: the pending input is bounded by max_event_bytes plus one Feed(); the translated output
// text is kept (the .done events and response.completed repeat it, as the protocol requires).
//
// Thread safety: one object per stream; not thread-safe.
class OpenAIToResponsesStream {
 public:
  static constexpr size_t kDefaultMaxEventBytes = provider::SseSplitter::kDefaultMaxEventBytes;

  struct Options {
    std::string_view client_model;  // copied
    int64_t created = 0;            // Unix seconds, when the chunks carry no "created"
    size_t max_event_bytes = kDefaultMaxEventBytes;
  };

  explicit OpenAIToResponsesStream(const Options& options);
  ~OpenAIToResponsesStream();
  OpenAIToResponsesStream(OpenAIToResponsesStream&&) noexcept;
  OpenAIToResponsesStream& operator=(OpenAIToResponsesStream&&) noexcept;

  void Feed(std::string_view bytes, std::string& out);
  void Finish(std::string& out);
  // Usage from the usage chunk, normalized as provider::Usage (present=false without one).
  const provider::Usage& usage() const;
  bool done() const;  // response.completed or response.incomplete was written
  const Status& status() const;

 private:
  struct State;  // the items and counters (responses_out.cc)
  std::unique_ptr<State> s_;
};

// An Anthropic SSE stream to Responses events: AnthropicToOpenAIStream (with the usage chunk) into
// OpenAIToResponsesStream, chunk by chunk; the same contract as each. usage() is the Anthropic
// one (cache writes kept).
// Thread safety: one object per stream; not thread-safe.
class AnthropicToResponsesStream {
 public:
  struct Options {
    std::string_view client_model;  // copied
    int64_t created = 0;
    size_t max_event_bytes = AnthropicToOpenAIStream::kDefaultMaxEventBytes;
  };
  explicit AnthropicToResponsesStream(const Options& options)
      : first_({.client_model = options.client_model, .created = options.created,
                .include_usage = true, .max_event_bytes = options.max_event_bytes}),
        second_({.client_model = options.client_model, .created = options.created,
                 .max_event_bytes = options.max_event_bytes}) {}
  void Feed(std::string_view bytes, std::string& out) {
    middle_.clear();
    first_.Feed(bytes, middle_);
    second_.Feed(middle_, out);
  }
  void Finish(std::string& out) {
    middle_.clear();
    first_.Finish(middle_);
    second_.Feed(middle_, out);
    second_.Finish(out);
  }
  const provider::Usage& usage() const { return first_.usage(); }
  bool done() const { return second_.done(); }

 private:
  AnthropicToOpenAIStream first_;
  OpenAIToResponsesStream second_;
  std::string middle_;  // chat chunks between the two, one Feed() at a time
};

}  // namespace keygate::translate

#endif  // KEYGATE_TRANSLATE_TRANSLATE_H_
