// Internal to provider/: the simdjson DOM parser and a few typed lookups. simdjson costs ~3.5 s of
// compile time per TU, so only request.cc and response.cc include this header.
//
// Thread safety: DomParser hands out a per-thread parser; the elements it returns are valid until
// the next parse on the same thread, so never nest two DomParser uses.
#ifndef KEYGATE_PROVIDER_DOM_H_
#define KEYGATE_PROVIDER_DOM_H_

#include <simdjson.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace keygate::provider::internal {

// A validating DOM parser for one document (UTF-8, structure, no trailing content).
// Documents up to kSharedLimit bytes reuse one parser per thread, so the hot path does not
// allocate once warm. Larger ones get a parser of their own, freed afterwards: a simdjson parser
// keeps buffers of several times the largest document it has seen, and one 10 MiB body must not
// pin that much memory in a worker thread forever.
class DomParser {
 public:
  static constexpr size_t kSharedLimit = 1 << 20;

  explicit DomParser(size_t len) {
    if (len <= kSharedLimit) {
      static thread_local simdjson::dom::parser shared;
      parser_ = &shared;
    } else {
      own_ = std::make_unique<simdjson::dom::parser>();
      parser_ = own_.get();
    }
  }

  // Parses `text` (copied into the parser's padded buffer: callers need no padding).
  // Empty text is EMPTY, without calling simdjson: it would memcpy from a null data() (UB; found
  // by fuzz/translate_fuzzer on an SSE "data:" line with no value).
  simdjson::error_code Parse(std::string_view text, simdjson::dom::element& root) {
    if (text.empty()) return simdjson::EMPTY;
    return parser_->parse(text.data(), text.size()).get(root);
  }

  // Where the last parsed document's structure is: the offsets simdjson's first stage found, in
  // order, of every { } [ ] : , and of each value's first byte (a string's opening quote). A few
  // per member, so a walk over them skips long strings without reading them. simdjson 3 keeps
  // them in a public member of the parser that it documents as private ("for benchmarking
  // access"); the static_assert makes a new major version look here again.
  std::span<const uint32_t> Structurals() const {
    static_assert(simdjson::SIMDJSON_VERSION_MAJOR == 3, "simdjson's stage-1 index moved?");
    const auto* impl = parser_->implementation.get();
    if (impl == nullptr || impl->structural_indexes == nullptr) return {};
    return {impl->structural_indexes.get(), impl->n_structural_indexes};
  }

 private:
  std::unique_ptr<simdjson::dom::parser> own_;
  simdjson::dom::parser* parser_;
};

// An on-demand (non-validating) parser for one document: only what the caller visits is read
// and checked. Same buffer policy as DomParser: documents up to its kSharedLimit reuse one parser
// and one padded copy per thread; larger ones get their own, freed afterwards. The document
// refers to the parser: use it before the next Iterate on the same thread.
class OnDemandParser {
 public:
  explicit OnDemandParser(size_t len) {
    if (len <= DomParser::kSharedLimit) {
      static thread_local State shared;
      state_ = &shared;
    } else {
      own_ = std::make_unique<State>();
      state_ = own_.get();
    }
  }

  // Starts reading `text` (copied into a padded buffer: callers need no padding).
  simdjson::error_code Iterate(std::string_view text, simdjson::ondemand::document& doc) {
    if (text.empty()) return simdjson::EMPTY;
    std::string& padded = state_->padded;
    padded.reserve(text.size() + simdjson::SIMDJSON_PADDING);
    padded.assign(text);
    return state_->parser
        .iterate(simdjson::padded_string_view(padded.data(), padded.size(), padded.capacity()))
        .get(doc);
  }
  // The padded copy the document reads: raw tokens point into it.
  const char* data() const { return state_->padded.data(); }

 private:
  struct State {
    simdjson::ondemand::parser parser;
    std::string padded;
  };
  std::unique_ptr<State> own_;
  State* state_;
};

inline std::optional<simdjson::dom::element> Field(simdjson::dom::element e, std::string_view key) {
  simdjson::dom::object obj;
  if (e.get_object().get(obj) != simdjson::SUCCESS) return std::nullopt;
  simdjson::dom::element v;
  if (obj.at_key(key).get(v) != simdjson::SUCCESS) return std::nullopt;
  return v;
}

inline std::optional<std::string_view> StringField(simdjson::dom::element e, std::string_view key) {
  auto v = Field(e, key);
  std::string_view s;
  if (!v || v->get_string().get(s) != simdjson::SUCCESS) return std::nullopt;
  return s;
}

// An integer field; also accepts an unsigned value that fits and a float with no fraction
// (some OpenAI-compatible servers write 12.0).
inline std::optional<int64_t> IntField(simdjson::dom::element e, std::string_view key) {
  auto v = Field(e, key);
  if (!v) return std::nullopt;
  int64_t i;
  if (v->get_int64().get(i) == simdjson::SUCCESS) return i;
  double d;
  if (v->is_double() && v->get_double().get(d) == simdjson::SUCCESS && d >= -9.0e15 &&
      d <= 9.0e15 && static_cast<double>(static_cast<int64_t>(d)) == d) {
    return static_cast<int64_t>(d);
  }
  return std::nullopt;
}

inline bool IsObject(const std::optional<simdjson::dom::element>& e) { return e && e->is_object(); }

}  // namespace keygate::provider::internal

#endif  // KEYGATE_PROVIDER_DOM_H_
