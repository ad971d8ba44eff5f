// OpenAI chat.completion.chunk SSE -> Anthropic Messages SSE, one event at a time.
//
// Events come from provider::SseSplitter (the splitter every stream reader uses), and each chunk
// is read by internal::ReadChatChunk (shared with the chat -> Responses translator). Anthropic
// content blocks are written as they open: a text or thinking block stays open while deltas of
// its kind follow and closes when another block starts; a tool_use block stays open until the
// message ends, so argument fragments of a call can arrive after other calls began (each goes to
// its own block index). Events are written as text: each carries one small delta.
#include <algorithm>
#include <string>
#include <vector>

#include "provider/json_text.h"
#include "translate/chat_chunks.h"
#include "translate/sse_events.h"
#include "translate/translate.h"

namespace keygate::translate {
namespace {

using provider::internal::AppendJsonString;

void AppendEvent(std::string_view name, std::string_view data, std::string& out) {
  out.append("event: ");
  out.append(name);
  out.append("\ndata: ");
  out.append(data);
  out.append("\n\n");
}

}  // namespace

OpenAIToAnthropicStream::OpenAIToAnthropicStream(const Options& options)
    : client_model_(options.client_model),
      max_event_bytes_(options.max_event_bytes),
      splitter_(options.max_event_bytes) {}

void OpenAIToAnthropicStream::Feed(std::string_view bytes, std::string& out) {
  if (state_ != State::kRunning) return;
  auto running = [this] { return state_ == State::kRunning; };
  if (!internal::FeedEvents(splitter_, bytes, running,
                            [&](std::string_view data) { OnData(data, out); })) {
    Fail(InternalError(internal::OversizedMessage(max_event_bytes_)), out);
  }
  if (state_ != State::kRunning) splitter_ = provider::SseSplitter(0);  // frees what it held
}

void OpenAIToAnthropicStream::Finish(std::string& out) {
  if (state_ == State::kRunning) {
    internal::FinishEvents(splitter_, [&](std::string_view data) { OnData(data, out); });
  }
  if (state_ == State::kRunning) {
    // Some OpenAI-compatible servers end after the finish_reason without "[DONE]": that answer
    // is complete. Without a finish_reason it was cut short.
    if (!stop_reason_.empty()) {
      End(out);
    } else {
      Fail(UnavailableError("upstream stream ended before its finish_reason"), out);
    }
  }
  splitter_ = provider::SseSplitter(0);
}

void OpenAIToAnthropicStream::Start(std::string_view id, std::string& out) {
  if (started_) return;
  started_ = true;
  std::string data = R"({"type":"message_start","message":{"id":)";
  AppendJsonString(data, id);
  data.append(R"(,"type":"message","role":"assistant","model":)");
  AppendJsonString(data, client_model_);
  // OpenAI reports usage only at the end: the counts arrive in message_delta.
  data.append(
      R"(,"content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":0,"output_tokens":0}}})");
  AppendEvent("message_start", data, out);
}

void OpenAIToAnthropicStream::CloseOpen(std::string& out) {
  if (open_kind_ == BlockKind::kNone) return;
  AppendEvent("content_block_stop",
              R"({"type":"content_block_stop","index":)" + std::to_string(open_index_) + "}", out);
  open_kind_ = BlockKind::kNone;
  open_index_ = -1;
}

void OpenAIToAnthropicStream::TextDelta(BlockKind kind, std::string_view text, std::string& out) {
  const bool thinking = kind == BlockKind::kThinking;
  if (open_kind_ != kind) {
    CloseOpen(out);
    open_kind_ = kind;
    open_index_ = next_block_++;
    AppendEvent("content_block_start",
                R"({"type":"content_block_start","index":)" + std::to_string(open_index_) +
                    (thinking ? R"(,"content_block":{"type":"thinking","thinking":"","signature":""}})"
                              : R"(,"content_block":{"type":"text","text":""}})"),
                out);
  }
  std::string data = R"({"type":"content_block_delta","index":)";
  data.append(std::to_string(open_index_));
  data.append(thinking ? R"(,"delta":{"type":"thinking_delta","thinking":)"
                       : R"(,"delta":{"type":"text_delta","text":)");
  AppendJsonString(data, text);
  data.append("}}");
  AppendEvent("content_block_delta", data, out);
}

void OpenAIToAnthropicStream::ToolCallDelta(int64_t tool_index, std::string_view id,
                                            std::string_view name, std::string_view arguments,
                                            std::string& out) {
  auto it = tools_.find(tool_index);
  if (it == tools_.end()) {
    CloseOpen(out);
    int block = next_block_++;
    it = tools_.emplace(tool_index, block).first;
    std::string data = R"({"type":"content_block_start","index":)";
    data.append(std::to_string(block));
    data.append(R"(,"content_block":{"type":"tool_use","id":)");
    AppendJsonString(data, id);
    data.append(R"(,"name":)");
    AppendJsonString(data, name);
    data.append(R"(,"input":{}}})");
    AppendEvent("content_block_start", data, out);
  }
  if (arguments.empty()) return;
  std::string data = R"({"type":"content_block_delta","index":)";
  data.append(std::to_string(it->second));
  data.append(R"(,"delta":{"type":"input_json_delta","partial_json":)");
  AppendJsonString(data, arguments);
  data.append("}}");
  AppendEvent("content_block_delta", data, out);
}

void OpenAIToAnthropicStream::End(std::string& out) {
  Start("", out);
  // Blocks close in index order: the open text/thinking block and every tool block.
  std::vector<int> open;
  if (open_kind_ != BlockKind::kNone) open.push_back(open_index_);
  for (const auto& [tool, block] : tools_) open.push_back(block);
  std::sort(open.begin(), open.end());
  for (int index : open) {
    AppendEvent("content_block_stop",
                R"({"type":"content_block_stop","index":)" + std::to_string(index) + "}", out);
  }
  open_kind_ = BlockKind::kNone;
  tools_.clear();

  const int64_t cached = std::min(usage_.cache_read_tokens, usage_.input_tokens);
  std::string data = R"({"type":"message_delta","delta":{"stop_reason":)";
  AppendJsonString(data, stop_reason_.empty() ? std::string_view("end_turn") : stop_reason_);
  data.append(R"(,"stop_sequence":null},"usage":{"input_tokens":)");
  data.append(std::to_string(usage_.input_tokens - cached));
  data.append(R"(,"cache_creation_input_tokens":0,"cache_read_input_tokens":)");
  data.append(std::to_string(cached));
  data.append(R"(,"output_tokens":)");
  data.append(std::to_string(usage_.output_tokens));
  data.append("}}");
  AppendEvent("message_delta", data, out);
  AppendEvent("message_stop", R"({"type":"message_stop"})", out);
  state_ = State::kDone;
}

void OpenAIToAnthropicStream::Fail(Status status, std::string& out) {
  // Anthropic reports a failure mid-stream as an "error" event, and sends no message_stop.
  std::string data = R"({"type":"error","error":{"type":"api_error","message":)";
  AppendJsonString(data, status.message());
  data.append("}}");
  AppendEvent("error", data, out);
  status_ = std::move(status);
  state_ = State::kFailed;
}

void OpenAIToAnthropicStream::OnData(std::string_view data, std::string& out) {
  if (data == "[DONE]") {
    End(out);
    return;
  }
  // The chunk's parts, in order, onto this stream's blocks (a local class: it may call the
  // private members).
  struct Handler final : internal::ChatChunkHandler {
    OpenAIToAnthropicStream& s;
    std::string& out;
    Handler(OpenAIToAnthropicStream& stream, std::string& o) : s(stream), out(o) {}
    void OnError(std::string_view message) override {
      s.Fail(UnavailableError(std::string(message)), out);
    }
    void OnChunk(std::string_view id, int64_t) override { s.Start(id, out); }
    void OnUsage(const provider::Usage& usage, int64_t) override { s.usage_ = usage; }
    void OnReasoning(std::string_view text) override {
      s.TextDelta(BlockKind::kThinking, text, out);
    }
    // A refusal is what the assistant said: text, as Anthropic has no refusal block.
    void OnContent(std::string_view text) override { s.TextDelta(BlockKind::kText, text, out); }
    void OnRefusal(std::string_view text) override { s.TextDelta(BlockKind::kText, text, out); }
    void OnToolCall(int64_t index, std::string_view id, std::string_view name,
                    std::string_view arguments) override {
      s.ToolCallDelta(index, id, name, arguments, out);
    }
    void OnFinish(std::string_view reason) override {
      s.stop_reason_ = StopReasonFromOpenAI(reason);
    }
  } handler(*this, out);
  internal::ReadChatChunk(data, handler);
}

}  // namespace keygate::translate
