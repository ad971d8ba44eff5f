// OpenAI chat.completion.chunk SSE -> Anthropic Messages SSE, one event at a time.
//
// Events come from provider::SseSplitter (the splitter every stream reader uses). Anthropic
// content blocks are written as they open: a text or thinking block stays open while deltas of
// its kind follow and closes when another block starts; a tool_use block stays open until the
// message ends, so argument fragments of a call can arrive after other calls began (each goes to
// its own block index). Events are written as text: each carries one small delta.
#include <algorithm>
#include <string>
#include <vector>

#include "provider/json_text.h"
#include "translate/json_util.h"
#include "translate/sse_events.h"
#include "translate/translate.h"

namespace keygate::translate {
namespace {

using internal::Element;
using internal::StringMember;
using provider::internal::AppendJsonString;

int64_t Count(Element e, std::string_view key) {
  int64_t v = 0;
  if (e.at_key(key).get_int64().get(v) != simdjson::SUCCESS) return 0;
  return std::max<int64_t>(v, 0);
}

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
  provider::internal::DomParser parser(data.size());
  Element root;
  // Not a JSON object (a keep-alive, a stray line): nothing to translate.
  if (parser.Parse(data, root) != simdjson::SUCCESS || !root.is_object()) return;

  Element err;
  if (root.at_key("error").get(err) == simdjson::SUCCESS && !internal::IsNull(err)) {
    std::string message = "upstream stream error";
    if (err.is_object()) {
      message = std::string(StringMember(err, "message").value_or(message));
    } else if (err.is_string()) {
      message = std::string(err.get_string().value_unsafe());
    }
    Fail(UnavailableError(message), out);
    return;
  }

  Start(StringMember(root, "id").value_or(""), out);

  Element u;
  if (root.at_key("usage").get(u) == simdjson::SUCCESS && u.is_object()) {
    // Chat completions say prompt_/completion_tokens; some compatible servers input_/output_.
    const bool chat_names = u.at_key("prompt_tokens").error() == simdjson::SUCCESS ||
                            u.at_key("completion_tokens").error() == simdjson::SUCCESS;
    usage_.present = true;
    usage_.input_tokens = Count(u, chat_names ? "prompt_tokens" : "input_tokens");
    usage_.output_tokens = Count(u, chat_names ? "completion_tokens" : "output_tokens");
    Element details;
    usage_.cache_read_tokens =
        u.at_key(chat_names ? "prompt_tokens_details" : "input_tokens_details").get(details) ==
                    simdjson::SUCCESS &&
                details.is_object()
            ? Count(details, "cached_tokens")
            : 0;
    usage_.cache_write_tokens = 0;
  }

  simdjson::dom::array choices;
  if (root.at_key("choices").get_array().get(choices) != simdjson::SUCCESS) return;
  for (Element choice : choices) {
    int64_t index = 0;
    if (choice.at_key("index").get_int64().get(index) == simdjson::SUCCESS && index != 0) {
      continue;  // only the first choice has a place in an Anthropic message
    }
    Element delta;
    if (choice.at_key("delta").get(delta) == simdjson::SUCCESS && delta.is_object()) {
      // Reasoning first: a chunk carrying both belongs to the thinking that precedes the text.
      std::optional<std::string_view> reasoning = StringMember(delta, "reasoning_content");
      if (!reasoning) reasoning = StringMember(delta, "reasoning");
      if (reasoning && !reasoning->empty()) TextDelta(BlockKind::kThinking, *reasoning, out);
      std::optional<std::string_view> text = StringMember(delta, "content");
      if (!text) text = StringMember(delta, "refusal");
      if (text && !text->empty()) TextDelta(BlockKind::kText, *text, out);
      simdjson::dom::array calls;
      if (delta.at_key("tool_calls").get_array().get(calls) == simdjson::SUCCESS) {
        for (Element call : calls) {
          if (!call.is_object()) continue;
          int64_t tool_index = 0;
          if (call.at_key("index").get_int64().get(tool_index) != simdjson::SUCCESS) tool_index = 0;
          Element fn;
          std::string_view name, arguments;
          if (call.at_key("function").get(fn) == simdjson::SUCCESS && fn.is_object()) {
            name = StringMember(fn, "name").value_or("");
            arguments = StringMember(fn, "arguments").value_or("");
          }
          ToolCallDelta(tool_index, StringMember(call, "id").value_or(""), name, arguments, out);
        }
      }
    }
    std::string_view finish;
    if (choice.at_key("finish_reason").get_string().get(finish) == simdjson::SUCCESS) {
      stop_reason_ = StopReasonFromOpenAI(finish);
    }
  }
}

}  // namespace keygate::translate
