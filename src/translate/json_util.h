// Internal to translate/: parsing with the simdjson DOM (validating) and building with Boost.JSON.
// simdjson costs ~3.5 s of compile time per TU, so only the translate .cc files include this.
//
// Thread safety: pure functions. Parse() uses provider's per-thread DomParser: an element stays
// valid until the next Parse() on the same thread, so never nest two parses (nested JSON text,
// such as tool-call arguments, is parsed with Boost.JSON instead).
#ifndef KEYGATE_TRANSLATE_JSON_UTIL_H_
#define KEYGATE_TRANSLATE_JSON_UTIL_H_

#include <simdjson.h>

#include <boost/json/value.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "provider/dom.h"

namespace keygate::translate::internal {

using Element = simdjson::dom::element;

// A copy of `e` as a Boost.JSON value (integers stay integers; key order is kept).
boost::json::value ToBoost(Element e);

// `e` serialized as compact JSON.
std::string Minify(Element e);

// "an object", "a string", … for error messages.
std::string_view TypeName(Element e);

// Parses `text` (JSON) with Boost.JSON; nullopt when it is not valid JSON. Never throws
// (except std::bad_alloc).
std::optional<boost::json::value> ParseBoost(std::string_view text);

// `v` serialized as compact JSON. Never throws (except std::bad_alloc).
std::string Serialize(const boost::json::value& v);

}  // namespace keygate::translate::internal

#endif  // KEYGATE_TRANSLATE_JSON_UTIL_H_
