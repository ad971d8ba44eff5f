// Internal to translate/: OpenAI chat.completion.chunk SSE events. Writing them is shared by the
// stream translators whose client speaks Chat Completions (Anthropic -> OpenAI, Responses ->
// OpenAI): chunks are written as text around a prefix built once per stream, since each carries
// one small delta and building a DOM per delta would cost more than the translation. Reading
// them (ReadChatChunk) is shared by the translators whose upstream speaks chat (OpenAI ->
// Anthropic, OpenAI -> Responses).
//
// Thread safety: one writer per stream; not thread-safe. ReadChatChunk is a pure function.
#ifndef KEYGATE_TRANSLATE_CHAT_CHUNKS_H_
#define KEYGATE_TRANSLATE_CHAT_CHUNKS_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "provider/provider.h"

namespace keygate::translate::internal {

class ChatChunkWriter {
 public:
  ChatChunkWriter(std::string_view client_model, int64_t created, bool include_usage)
      : client_model_(client_model), created_(created), include_usage_(include_usage) {}

  // Sets the id every later chunk carries (and builds their common prefix).
  void SetId(std::string_view id);
  bool has_id() const { return !prefix_.empty(); }
  bool include_usage() const { return include_usage_; }

  // One chunk with choice 0: `delta_json` is the delta object, `finish_json` a JSON literal
  // ("null" or a quoted reason). With include_usage every chunk has "usage": null, as OpenAI's.
  void Chunk(std::string_view delta_json, std::string_view finish_json, std::string& out) const;
  // The usage-only chunk ({"choices": [], "usage": <usage_json>}), written only with include_usage.
  void UsageChunk(std::string_view usage_json, std::string& out) const;
  // OpenAI's in-stream failure: {"error": {message, type, param: null, code: null}}; no [DONE].
  static void Error(std::string_view message, std::string_view type, std::string& out);
  static void Done(std::string& out) { out.append("data: [DONE]\n\n"); }

 private:
  std::string client_model_;
  int64_t created_;
  bool include_usage_;
  std::string prefix_;  // `data: {"id":…,"object":"chat.completion.chunk","created":…,"model":…,`
};

// What one chat chunk says, choice 0 only, in the order the calls come: OnChunk (every JSON
// object chunk that is not an error), OnUsage, then for the delta OnReasoning
// (reasoning_content, or reasoning), OnContent, OnRefusal (non-empty strings only), OnToolCall per
// tool_calls[] entry (index 0 when absent; empty strings for what the entry lacks), then
// OnFinish.
class ChatChunkHandler {
 public:
  virtual ~ChatChunkHandler() = default;
  // An {"error": …} chunk (its message, or "upstream stream error"): nothing else is read.
  virtual void OnError(std::string_view message) = 0;
  virtual void OnChunk(std::string_view id, int64_t created) = 0;  // created 0 when absent
  // `usage` normalized as provider::Usage (chat names, or input_/output_ names some compatible
  // servers write); reasoning_tokens from the output details.
  virtual void OnUsage(const provider::Usage& usage, int64_t reasoning_tokens) = 0;
  virtual void OnReasoning(std::string_view text) = 0;
  virtual void OnContent(std::string_view text) = 0;
  virtual void OnRefusal(std::string_view text) = 0;
  virtual void OnToolCall(int64_t index, std::string_view id, std::string_view name,
                          std::string_view arguments) = 0;
  virtual void OnFinish(std::string_view finish_reason) = 0;
};

// Reads the data of one chunk event ("[DONE]" is the caller's); data that is not a JSON object (a
// keep-alive, a stray line) calls nothing.
void ReadChatChunk(std::string_view data, ChatChunkHandler& handler);

}  // namespace keygate::translate::internal

#endif  // KEYGATE_TRANSLATE_CHAT_CHUNKS_H_
