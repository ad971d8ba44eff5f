#include "translate/chat_chunks.h"

#include "provider/json_text.h"

namespace keygate::translate::internal {

using provider::internal::AppendJsonString;

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
