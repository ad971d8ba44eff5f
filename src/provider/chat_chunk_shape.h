// Internal to provider/: what the SSE usage filter reads of an OpenAI chat chunk, and the shape of
// the last chunk it read in full, so that the chunks of a stream that differ from it only inside
// string values (the content, and the per-chunk padding some providers add) are counted with a
// comparison and a scan of those strings instead of a JSON parse. Anthropic streams use it too,
// with only the counted string allowed to differ (their reader looks at the "type" strings).
//
// Why the shortcut gives ReadChatChunk's answer exactly: ReadChatChunk looks at the keys, the
// nesting and the types of values, and at string values only to count their characters. A chunk
// that is byte for byte the learned one outside the bodies of its string values, each body a
// well-formed JSON string body, has the same keys, nesting and types; its UTF-8 and control bytes
// are checked where they differ. So its answer is the learned chunk's, with the characters of the
// counted strings counted again. Match accepts only what it can decide exactly and returns
// nullopt for the rest (an escape other than the one-letter ones, a control byte, invalid UTF-8, a
// difference outside a string value), which the filter then reads in full.
//
// Thread safety: ChatChunkShape is a value used by one stream; ReadChatChunk is a pure function.
#ifndef KEYGATE_PROVIDER_CHAT_CHUNK_SHAPE_H_
#define KEYGATE_PROVIDER_CHAT_CHUNK_SHAPE_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace keygate::provider::internal {

// What the usage filter needs of an OpenAI chat chunk: the characters of its output (content,
// reasoning_content and tool-call arguments of each choice's delta) and whether it carries a usage
// object, read on demand (response.cc). `valid` is false when a visited part is malformed; then
// nothing of the chunk counts. The counted strings' bodies are located for ChatChunkShape.
struct ChatChunk {
  static constexpr size_t kMaxCounted = 8;

  bool valid = false;
  bool has_usage = false;
  size_t output_chars = 0;
  // Offsets in the chunk of the counted strings' bodies (just after the opening quote), in the
  // order read; `counted_overflow` when there were more than kMaxCounted.
  std::array<uint32_t, kMaxCounted> counted{};
  uint8_t counted_size = 0;
  bool counted_overflow = false;
  bool finishes = false;  // a choice's finish_reason is a string: its last chunk
};
ChatChunk ReadChatChunk(std::string_view data);

class ChatChunkShape {
 public:
  static constexpr size_t kMaxBytes = 4096;  // a longer chunk is not learned
  static constexpr size_t kMaxStrings = 32;  // nor one with more string values

  // Learns `data`, which a reader read as `read` (valid, without a usage object; its counted
  // strings located). With `strings_may_differ`, chunks whose other string values differ match
  // too (ReadChatChunk looks at them only to count them); without, only the counted strings may
  // differ (a reader that looks at other strings' contents: Anthropic's "type"). False, and the
  // shape is then empty, when the chunk is not worth or not fit to learn: too long, too many
  // strings, a counted string Match could not count (an escape other than the one-letter ones).
  bool Learn(std::string_view data, const ChatChunk& read, bool strings_may_differ = true);

  // The characters ReadChatChunk would count in `data`, when `data` is the learned chunk with only
  // the bodies of its string values changed, each changed body free of control bytes and of
  // escapes other than \" \\ \/ \b \f \n \r \t, in valid UTF-8. nullopt otherwise (also when
  // nothing is learned): read it in full.
  // Strings seen to differ are remembered, so that the next chunk is compared with one memcmp
  // between each of them, and walked string by string only when that fails.
  std::optional<size_t> Match(std::string_view data);

  bool empty() const { return text_.empty(); }
  void Clear();

 private:
  struct String {
    uint32_t begin;  // the body: text_[begin, end), end at the closing quote
    uint32_t end;
    bool counted;
    bool varies;     // counted, or seen to differ in a chunk matched
    uint32_t chars;  // the body's characters, when counted
  };
  // Compares `data` with the learned chunk; with `any` false only the strings known to vary may
  // differ (the rest is compared as bytes), with `any` every string value may.
  std::optional<size_t> Walk(std::string_view data, bool any);
  std::string text_;
  std::vector<String> strings_;  // the string values, in order
};

}  // namespace keygate::provider::internal

#endif  // KEYGATE_PROVIDER_CHAT_CHUNK_SHAPE_H_
