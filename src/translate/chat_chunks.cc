#include "translate/chat_chunks.h"

#include "provider/json_text.h"
#include "translate/json_util.h"

namespace keygate::translate::internal {

using provider::internal::AppendJsonString;

void ReadChatChunk(std::string_view data, ChatChunkHandler& handler) {
  provider::internal::DomParser parser(data.size());
  Element root;
  if (parser.Parse(data, root) != simdjson::SUCCESS || !root.is_object()) return;

  Element err;
  if (root.at_key("error").get(err) == simdjson::SUCCESS && !IsNull(err)) {
    std::string_view message = "upstream stream error";
    if (err.is_object()) {
      message = StringMember(err, "message").value_or(message);
    } else if (err.is_string()) {
      message = err.get_string().value_unsafe();
    }
    handler.OnError(message);
    return;
  }
  int64_t created = 0;
  if (root.at_key("created").get_int64().get(created) != simdjson::SUCCESS) created = 0;
  handler.OnChunk(StringMember(root, "id").value_or(""), created);

  if (std::optional<Element> u = Member(root, "usage"); u && u->is_object()) {
    ChatUsage c = ReadChatUsage(*u);
    handler.OnUsage(c.usage, c.reasoning_tokens);
  }

  simdjson::dom::array choices;
  if (root.at_key("choices").get_array().get(choices) != simdjson::SUCCESS) return;
  for (Element choice : choices) {
    int64_t index = 0;
    if (choice.at_key("index").get_int64().get(index) == simdjson::SUCCESS && index != 0) {
      continue;  // only the first choice has a place in the translated answer
    }
    if (std::optional<Element> delta = Member(choice, "delta"); delta && delta->is_object()) {
      // Reasoning first: a chunk carrying both belongs to the thinking that precedes the text.
      std::optional<std::string_view> reasoning = StringMember(*delta, "reasoning_content");
      if (!reasoning) reasoning = StringMember(*delta, "reasoning");
      if (reasoning && !reasoning->empty()) handler.OnReasoning(*reasoning);
      std::optional<std::string_view> text = StringMember(*delta, "content");
      if (text && !text->empty()) handler.OnContent(*text);
      std::optional<std::string_view> refusal = StringMember(*delta, "refusal");
      if (refusal && !refusal->empty()) handler.OnRefusal(*refusal);
      simdjson::dom::array calls;
      if (delta->at_key("tool_calls").get_array().get(calls) == simdjson::SUCCESS) {
        for (Element call : calls) {
          if (!call.is_object()) continue;
          int64_t tool_index = 0;
          if (call.at_key("index").get_int64().get(tool_index) != simdjson::SUCCESS) tool_index = 0;
          std::string_view name, arguments;
          if (std::optional<Element> fn = Member(call, "function"); fn && fn->is_object()) {
            name = StringMember(*fn, "name").value_or("");
            arguments = StringMember(*fn, "arguments").value_or("");
          }
          handler.OnToolCall(tool_index, StringMember(call, "id").value_or(""), name, arguments);
        }
      }
    }
    std::string_view finish;
    if (choice.at_key("finish_reason").get_string().get(finish) == simdjson::SUCCESS) {
      handler.OnFinish(finish);
    }
  }
}

void ChatChunkWriter::SetId(std::string_view id) {
  prefix_ = R"(data: {"id":)";
  AppendJsonString(prefix_, id);
  prefix_.append(R"(,"object":"chat.completion.chunk","created":)");
  prefix_.append(std::to_string(created_));
  prefix_.append(R"(,"model":)");
  AppendJsonString(prefix_, client_model_);
  prefix_.push_back(',');
}

void ChatChunkWriter::Chunk(std::string_view delta_json, std::string_view finish_json,
                            std::string& out) const {
  out.append(prefix_);
  out.append(R"("choices":[{"index":0,"delta":)");
  out.append(delta_json);
  out.append(R"(,"logprobs":null,"finish_reason":)");
  out.append(finish_json);
  out.append(include_usage_ ? "}],\"usage\":null}\n\n" : "}]}\n\n");
}

void ChatChunkWriter::UsageChunk(std::string_view usage_json, std::string& out) const {
  if (!include_usage_) return;
  out.append(prefix_);
  out.append(R"("choices":[],"usage":)");
  out.append(usage_json);
  out.append("}\n\n");
}

void ChatChunkWriter::Error(std::string_view message, std::string_view type, std::string& out) {
  out.append(R"(data: {"error":{"message":)");
  AppendJsonString(out, message);
  out.append(R"(,"type":)");
  AppendJsonString(out, type);
  out.append(R"(,"param":null,"code":null}})");
  out.append("\n\n");
}

}  // namespace keygate::translate::internal
