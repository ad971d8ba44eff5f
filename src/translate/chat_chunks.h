// Internal to translate/: writing OpenAI chat.completion.chunk SSE events, shared by the stream
// translators whose client speaks Chat Completions (Anthropic -> OpenAI, Responses -> OpenAI).
// Chunks are written as text around a prefix built once per stream: each carries one small
// delta, and building a DOM per delta would cost more than the translation.
//
// Thread safety: one writer per stream; not thread-safe.
#ifndef KEYGATE_TRANSLATE_CHAT_CHUNKS_H_
#define KEYGATE_TRANSLATE_CHAT_CHUNKS_H_

#include <cstdint>
#include <string>
#include <string_view>

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

}  // namespace keygate::translate::internal

#endif  // KEYGATE_TRANSLATE_CHAT_CHUNKS_H_
