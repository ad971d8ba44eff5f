// Internal to provider/: what the SSE usage filter reads of an OpenAI chat chunk, and the shape of
// the last chunk it read in full, so that the chunks of a stream that differ from it only inside
// string values (the content, and the per-chunk padding some providers add) are counted with a
// comparison and a scan of those strings instead of a JSON parse. Anthropic streams use it too,
// with only the counted string allowed to differ (their reader looks at the "type" strings), and
// OpenAI Responses streams, whose events also differ in integers (each has its sequence_number)
// and whose reader looks at one string, the "type".
//
// Why the shortcut gives ReadChatChunk's answer exactly: ReadChatChunk looks at the keys, the
// nesting and the types of values, and at string values only to count their characters. A chunk
// that is byte for byte the learned one outside the bodies of its string values, each body a
// well-formed JSON string body, has the same keys, nesting and types; its UTF-8 and control bytes
// are checked where they differ. So its answer is the learned chunk's, with the characters of the
// counted strings counted again. The same holds for integers a reader does not look at: an
// integer of at most 18 digits is valid wherever the learned one was. Match accepts only what it
// can decide exactly and returns nullopt for the rest (an escape other than the one-letter ones,
// a control byte, invalid UTF-8, a number other than such an integer, a difference outside a
// value allowed to differ), which the filter then reads in full.
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
  // The body offset of a string value the reader compares (Responses' "type"): it stays byte for
  // byte the learned one even where other strings may differ. 0: none.
  uint32_t fixed = 0;

  // Records a counted string's body offset (or the overflow past kMaxCounted).
  void AddCounted(size_t body_at) {
    if (counted_size == kMaxCounted) {
      counted_overflow = true;
    } else {
      counted[counted_size++] = static_cast<uint32_t>(body_at);
    }
  }
};
ChatChunk ReadChatChunk(std::string_view data);

// What may differ in a chunk ChatChunkShape matches besides the bodies of the counted strings.
struct MayDiffer {
  // The bodies of the other string values but `ChatChunk::fixed` (ReadChatChunk looks at them
  // only to count them). Without, they are compared byte for byte: a reader that looks at other
  // strings' contents (Anthropic's "type").
  bool strings = true;
  // Integer values (-?[0-9]{1,18}, no leading zero), for a reader that does not look at numbers
  // (Responses: sequence_number, output_index, …).
  bool integers = false;
};

class ChatChunkShape {
 public:
  static constexpr size_t kMaxBytes = 4096;  // a longer chunk is not learned
  static constexpr size_t kMaxSlots = 32;    // nor one with more values that may differ

  // Learns `data`, which a reader read as `read` (valid, without a usage object; its counted
  // strings located). False, and the shape is then empty, when the chunk is not worth or not fit
  // to learn: too long, too many slots, a counted string Match could not count (an escape other
  // than the one-letter ones).
  bool Learn(std::string_view data, const ChatChunk& read, MayDiffer may_differ = {});

  // The characters ReadChatChunk would count in `data`, when `data` is the learned chunk with only
  // the values `MayDiffer` allowed changed: each changed string body free of control bytes and of
  // escapes other than \" \\ \/ \b \f \n \r \t, in valid UTF-8; each changed integer one as
  // above. nullopt otherwise (also when nothing is learned): read it in full.
  // Values seen to differ are remembered, so that the next chunk is compared with one memcmp
  // between each of them, and walked value by value only when that fails.
  std::optional<size_t> Match(std::string_view data);

  bool empty() const { return text_.empty(); }
  void Clear();

 private:
  // A value that may differ: a string's body, text_[begin, end) with end at the closing quote, or
  // an integer's token.
  struct Slot {
    uint32_t begin;
    uint32_t end;
    bool integer;
    bool counted;
    bool varies;     // counted, or seen to differ in a chunk matched
    uint32_t chars;  // the body's characters, when counted
  };
  // Compares `data` with the learned chunk; with `any` false only the slots known to vary may
  // differ (the rest is compared as bytes), with `any` every slot may.
  std::optional<size_t> Walk(std::string_view data, bool any);
  std::string text_;
  std::vector<Slot> slots_;  // in order
};

}  // namespace keygate::provider::internal

#endif  // KEYGATE_PROVIDER_CHAT_CHUNK_SHAPE_H_
