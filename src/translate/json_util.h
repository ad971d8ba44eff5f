// Internal to translate/: parsing with the simdjson DOM (validating) and building with Boost.JSON.
// simdjson costs ~3.5 s of compile time per TU, so only the translate .cc files include this.
//
// Thread safety: pure functions. Parse() uses provider's per-thread DomParser: an element stays
// valid until the next Parse() on the same thread, so never nest two parses (nested JSON text,
// such as tool-call arguments, is parsed with Boost.JSON instead).
#ifndef KEYGATE_TRANSLATE_JSON_UTIL_H_
#define KEYGATE_TRANSLATE_JSON_UTIL_H_

#include <simdjson.h>

#include <boost/json/array.hpp>
#include <boost/json/monotonic_resource.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "common/status.h"
#include "provider/dom.h"
#include "provider/provider.h"

namespace keygate::translate::internal {

using Element = simdjson::dom::element;

// A copy of `e` as a Boost.JSON value (integers stay integers; key order is kept), made with `sp`.
boost::json::value ToBoost(Element e, boost::json::storage_ptr sp = {});

// The first block of the arena a request translator builds its output tree in (see
// TranslateRequestInArena), for a body of `body_bytes`. The arena grows geometrically past it.
inline size_t ArenaSize(size_t body_bytes) { return 2 * body_bytes + 4096; }

// For a translator class whose tree lives in an arena: sp_ is the arena's storage (set before the
// derived class's members, so they can be made with it), Obj and Arr make objects and arrays in
// it. A value made without sp_ is still correct, copied into the arena when inserted; only slower.
class ArenaBuilder {
 protected:
  explicit ArenaBuilder(boost::json::storage_ptr sp) : sp_(std::move(sp)) {}
  boost::json::object Obj(
      std::initializer_list<std::pair<boost::json::string_view, boost::json::value_ref>> init)
      const {
    return boost::json::object(init, sp_);
  }
  boost::json::array Arr(std::initializer_list<boost::json::value_ref> init) const {
    return boost::json::array(init, sp_);
  }

  boost::json::storage_ptr sp_;
};

inline bool IsNull(Element e) { return e.type() == simdjson::dom::element_type::NULL_VALUE; }
inline bool IsNumber(Element e) {
  return e.type() == simdjson::dom::element_type::INT64 ||
         e.type() == simdjson::dom::element_type::UINT64 ||
         e.type() == simdjson::dom::element_type::DOUBLE;
}

// The member `key` of object `obj`; nullopt when absent, null, or `obj` is not an object.
inline std::optional<Element> Member(Element obj, std::string_view key) {
  Element v;
  if (obj.at_key(key).get(v) != simdjson::SUCCESS || IsNull(v)) return std::nullopt;
  return v;
}

inline std::string Quote(std::string_view s) { return "'" + std::string(s) + "'"; }

// "a string", "an object", … for error messages.
std::string_view TypeName(Element e);

// InvalidArgument "'path' must be <want>, not <type of got>".
inline Status WrongType(std::string_view path, std::string_view want, Element got) {
  return InvalidArgumentError(Quote(path) + " must be " + std::string(want) + ", not " +
                              std::string(TypeName(got)));
}

// The string member `key` of `e`; nullopt when absent, not a string, or `e` is not an object.
inline std::optional<std::string_view> StringMember(Element e, std::string_view key) {
  std::string_view s;
  if (e.at_key(key).get_string().get(s) != simdjson::SUCCESS) return std::nullopt;
  return s;
}

// "base[index]", for error messages.
inline std::string Path(std::string_view base, size_t index) {
  return std::string(base) + "[" + std::to_string(index) + "]";
}

enum class BodyKind { kRequest, kResponse };

// Parses `body` and returns translate(root). A body that is not JSON gives InvalidArgument for a
// request (the client's fault: a 400) and Internal for a response (the upstream's: a 502). An
// exception from building the output (Boost.JSON throws only on misuse or allocation failure)
// becomes Internal.
template <typename Translate>
StatusOr<std::string> ParseAndTranslate(std::string_view body, BodyKind kind,
                                        Translate&& translate) {
  provider::internal::DomParser parser(body.size());
  Element root;
  const bool request = kind == BodyKind::kRequest;
  if (parser.Parse(body, root) != simdjson::SUCCESS) {
    return request ? InvalidArgumentError("request body is not valid JSON")
                   : InternalError("upstream response is not valid JSON");
  }
  try {
    return translate(root);
  } catch (const std::exception& e) {
    return InternalError(std::string(request ? "translating the request: "
                                             : "translating the response: ") +
                         e.what());
  }
}

// ParseAndTranslate for a request, with translate(root, sp) building its output tree in one
// arena for the request (boost::json::monotonic_resource, first block ArenaSize): a few block
// allocations instead of one per value, key and string, and nothing to walk when the tree goes
// (deallocation in the arena is a no-op, so Boost.JSON skips the destructors).
template <typename Translate>
StatusOr<std::string> TranslateRequestInArena(std::string_view body, Translate&& translate) {
  return ParseAndTranslate(body, BodyKind::kRequest, [&](Element root) {
    boost::json::monotonic_resource arena(ArenaSize(body.size()));
    return translate(root, boost::json::storage_ptr(&arena));
  });
}

// `e` serialized as compact JSON.
std::string Minify(Element e);

// The counts of an OpenAI usage object (chat's prompt_/completion_tokens, or the input_/
// output_tokens that some compatible servers write) normalized as provider::Usage, plus the
// reasoning tokens of its output details. Missing or negative counts read as 0.
struct ChatUsage {
  provider::Usage usage;  // present = true
  int64_t reasoning_tokens = 0;
};
ChatUsage ReadChatUsage(Element u);

// Parses `text` (JSON) with Boost.JSON; nullopt when it is not valid JSON. Never throws
// (except std::bad_alloc).
std::optional<boost::json::value> ParseBoost(std::string_view text);

// `v` serialized as compact JSON. Never throws (except std::bad_alloc). The object and array
// overloads are not conveniences: without them an object converts to a temporary value, a deep
// copy of the whole tree (28 % of a 64 KB request's translation).
std::string Serialize(const boost::json::value& v);
std::string Serialize(const boost::json::object& o);
std::string Serialize(const boost::json::array& a);

}  // namespace keygate::translate::internal

#endif  // KEYGATE_TRANSLATE_JSON_UTIL_H_
