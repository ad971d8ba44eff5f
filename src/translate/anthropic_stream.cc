// Anthropic Messages SSE -> OpenAI chat.completion.chunk SSE, one event at a time.
//
// Events come from provider::SseSplitter, the splitter the usage filter uses too, so a stream
// splits into the same events here as there, whatever its chunking. Chunks are written by
// internal::ChatChunkWriter.
#include <string>

#include "provider/json_text.h"
#include "translate/json_util.h"
#include "translate/sse_events.h"
#include "translate/translate.h"

namespace keygate::translate {
namespace {

using internal::Element;
using internal::StringMember;
using provider::internal::AppendJsonString;

std::optional<int64_t> Count(Element usage, std::string_view key) {
  int64_t v = 0;
  if (usage.at_key(key).get_int64().get(v) != simdjson::SUCCESS) return std::nullopt;
  return v < 0 ? 0 : v;
}

}  // namespace

AnthropicToOpenAIStream::AnthropicToOpenAIStream(const Options& options)
    : chunks_(options.client_model, options.created, options.include_usage),
      max_event_bytes_(options.max_event_bytes),
      splitter_(options.max_event_bytes) {}

void AnthropicToOpenAIStream::Feed(std::string_view bytes, std::string& out) {
  if (state_ != State::kRunning) return;
  auto running = [this] { return state_ == State::kRunning; };
  if (!internal::FeedEvents(splitter_, bytes, running,
                            [&](std::string_view data) { OnData(data, out); })) {
    Fail(InternalError(internal::OversizedMessage(max_event_bytes_)), "upstream_error", out);
  }
  if (state_ != State::kRunning) splitter_ = provider::SseSplitter(0);  // frees what it held
}

void AnthropicToOpenAIStream::Finish(std::string& out) {
  if (state_ == State::kRunning) {
    internal::FinishEvents(splitter_, [&](std::string_view data) { OnData(data, out); });
  }
  if (state_ == State::kRunning) {
    Fail(UnavailableError("upstream stream ended before message_stop"), "upstream_error", out);
  }
  splitter_ = provider::SseSplitter(0);
}

void AnthropicToOpenAIStream::AppendChunk(std::string_view delta_json,
                                          std::string_view finish_reason_json, std::string& out) {
  chunks_.Chunk(delta_json, finish_reason_json, out);
}

void AnthropicToOpenAIStream::Fail(Status status, std::string_view type, std::string& out) {
  // OpenAI reports a failure mid-stream as an event with an "error" object, and sends no [DONE].
  internal::ChatChunkWriter::Error(status.message(), type, out);
  status_ = std::move(status);
  state_ = State::kFailed;
}

void AnthropicToOpenAIStream::OnData(std::string_view data, std::string& out) {
  provider::internal::DomParser parser(data.size());
  Element root;
  // Not JSON (a stray "[DONE]", a keep-alive): nothing to translate.
  if (parser.Parse(data, root) != simdjson::SUCCESS || !root.is_object()) return;
  std::optional<std::string_view> type = StringMember(root, "type");
  if (!type) return;

  if (!chunks_.has_id() || *type == "message_start") {
    std::string_view id;
    Element message;
    if (*type == "message_start" && root.at_key("message").get(message) == simdjson::SUCCESS) {
      id = StringMember(message, "id").value_or("");
    }
    chunks_.SetId(id);
  }

  // Usage: counts are cumulative; each one present replaces the earlier value.
  Element usage;
  bool has_usage = false;
  if (*type == "message_start") {
    has_usage = root.at_key("message").at_key("usage").get(usage) == simdjson::SUCCESS;
  } else if (*type == "message_delta") {
    has_usage = root.at_key("usage").get(usage) == simdjson::SUCCESS;
  }
  if (has_usage && usage.is_object()) {
    std::optional<int64_t> in = Count(usage, "input_tokens"), o = Count(usage, "output_tokens"),
                           cr = Count(usage, "cache_read_input_tokens"),
                           cw = Count(usage, "cache_creation_input_tokens");
    if (in || o || cr || cw) {
      if (in) input_ = *in;
      if (cr) cache_read_ = *cr;
      if (cw) cache_write_ = *cw;
      if (o) usage_.output_tokens = *o;
      usage_.present = true;
      usage_.input_tokens = input_ + cache_read_ + cache_write_;
      usage_.cache_read_tokens = cache_read_;
      usage_.cache_write_tokens = cache_write_;
    }
  }

  std::string delta;
  if (*type == "message_start") {
    if (started_) return;
    started_ = true;
    AppendChunk(R"({"role":"assistant","content":""})", "null", out);
  } else if (*type == "content_block_start") {
    int64_t index = 0;
    Element block;
    if (root.at_key("index").get_int64().get(index) != simdjson::SUCCESS ||
        root.at_key("content_block").get(block) != simdjson::SUCCESS) {
      return;
    }
    std::string_view block_type = StringMember(block, "type").value_or("");
    Block& b = open_[index];
    b = Block{};
    if (block_type == "text") {
      b.kind = BlockKind::kText;
      std::string_view text = StringMember(block, "text").value_or("");
      if (text.empty()) return;
      delta = R"({"content":)";
      AppendJsonString(delta, text);
      delta.push_back('}');
    } else if (block_type == "thinking") {
      b.kind = BlockKind::kThinking;
      std::string_view text = StringMember(block, "thinking").value_or("");
      if (text.empty()) return;
      delta = R"({"reasoning_content":)";
      AppendJsonString(delta, text);
      delta.push_back('}');
    } else if (block_type == "tool_use") {
      // Tool calls are numbered by their order among tool blocks, not by Anthropic's content
      // index (which counts text and thinking blocks too): OpenAI clients index an array by it.
      if (StringMember(block, "name") == kStructuredOutputTool) {
        // response_format: the tool's input is the answer; its fragments become content.
        b.kind = BlockKind::kStructured;
        structured_ = true;
        Element input;
        if (block.at_key("input").get(input) == simdjson::SUCCESS && input.is_object() &&
            input.get_object().value_unsafe().size() > 0) {
          delta = R"({"content":)";
          AppendJsonString(delta, internal::Minify(input));
          delta.push_back('}');
          AppendChunk(delta, "null", out);
        }
        return;
      }
      b.kind = BlockKind::kToolUse;
      b.tool_index = next_tool_index_++;
      // The input normally arrives as input_json_delta fragments after an empty {} here; a
      // non-empty input given whole becomes the first arguments fragment.
      std::string arguments;
      Element input;
      if (block.at_key("input").get(input) == simdjson::SUCCESS && input.is_object() &&
          input.get_object().value_unsafe().size() > 0) {
        arguments = internal::Minify(input);
      }
      delta = R"({"tool_calls":[{"index":)";
      delta.append(std::to_string(b.tool_index));
      delta.append(R"(,"id":)");
      AppendJsonString(delta, StringMember(block, "id").value_or(""));
      delta.append(R"(,"type":"function","function":{"name":)");
      AppendJsonString(delta, StringMember(block, "name").value_or(""));
      delta.append(R"(,"arguments":)");
      AppendJsonString(delta, arguments);
      delta.append("}}]}");
    } else {
      // redacted_thinking and server-tool blocks have no chat.completion.chunk place.
      b.kind = BlockKind::kOther;
      return;
    }
    AppendChunk(delta, "null", out);
  } else if (*type == "content_block_delta") {
    int64_t index = 0;
    Element d;
    if (root.at_key("index").get_int64().get(index) != simdjson::SUCCESS ||
        root.at_key("delta").get(d) != simdjson::SUCCESS) {
      return;
    }
    std::string_view delta_type = StringMember(d, "type").value_or("");
    auto it = open_.find(index);
    if (delta_type == "text_delta") {
      std::string_view text = StringMember(d, "text").value_or("");
      if (text.empty()) return;
      delta = R"({"content":)";
      AppendJsonString(delta, text);
      delta.push_back('}');
    } else if (delta_type == "thinking_delta") {
      std::string_view text = StringMember(d, "thinking").value_or("");
      if (text.empty()) return;
      delta = R"({"reasoning_content":)";
      AppendJsonString(delta, text);
      delta.push_back('}');
    } else if (delta_type == "input_json_delta") {
      std::string_view partial = StringMember(d, "partial_json").value_or("");
      if (partial.empty() || it == open_.end()) return;
      if (it->second.kind == BlockKind::kStructured) {
        delta = R"({"content":)";
        AppendJsonString(delta, partial);
        delta.push_back('}');
        AppendChunk(delta, "null", out);
        return;
      }
      if (it->second.kind != BlockKind::kToolUse) return;
      delta = R"({"tool_calls":[{"index":)";
      delta.append(std::to_string(it->second.tool_index));
      delta.append(R"(,"function":{"arguments":)");
      AppendJsonString(delta, partial);
      delta.append("}}]}");
    } else {
      return;  // signature_delta, citations_delta: no place in the client format
    }
    AppendChunk(delta, "null", out);
  } else if (*type == "content_block_stop") {
    int64_t index = 0;
    if (root.at_key("index").get_int64().get(index) == simdjson::SUCCESS) open_.erase(index);
  } else if (*type == "message_delta") {
    std::string_view stop_reason;
    if (root.at_key("delta").at_key("stop_reason").get_string().get(stop_reason) !=
        simdjson::SUCCESS) {
      return;
    }
    std::string finish = "\"";
    finish.append(structured_ && stop_reason == "tool_use" ? std::string_view("stop")
                                                           : FinishReasonFromAnthropic(stop_reason));
    finish.push_back('"');
    AppendChunk("{}", finish, out);
  } else if (*type == "message_stop") {
    chunks_.UsageChunk(
        R"({"prompt_tokens":)" + std::to_string(usage_.input_tokens) + R"(,"completion_tokens":)" +
            std::to_string(usage_.output_tokens) + R"(,"total_tokens":)" +
            std::to_string(usage_.input_tokens + usage_.output_tokens) +
            R"(,"prompt_tokens_details":{"cached_tokens":)" +
            std::to_string(usage_.cache_read_tokens) + "}}",
        out);
    internal::ChatChunkWriter::Done(out);
    state_ = State::kDone;
    open_.clear();
  } else if (*type == "error") {
    Element err;
    std::string_view err_type = "upstream_error", message = "upstream stream error";
    if (root.at_key("error").get(err) == simdjson::SUCCESS) {
      err_type = StringMember(err, "type").value_or(err_type);
      message = StringMember(err, "message").value_or(message);
    }
    Fail(UnavailableError(std::string(message)), err_type, out);
  }
  // ping and unknown event types: nothing for the client.
}

}  // namespace keygate::translate
