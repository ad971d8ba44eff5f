#include "translate/json_util.h"

#include <boost/json.hpp>

namespace keygate::translate::internal {

namespace json = boost::json;

json::value ToBoost(Element e, json::storage_ptr sp) {
  switch (e.type()) {
    case simdjson::dom::element_type::OBJECT: {
      json::object obj(sp);
      simdjson::dom::object o = e.get_object().value_unsafe();
      obj.reserve(o.size());
      // A duplicate key keeps its first value, as simdjson's at_key() does everywhere else here.
      for (auto field : o) obj.emplace(field.key, ToBoost(field.value, sp));
      return obj;
    }
    case simdjson::dom::element_type::ARRAY: {
      json::array arr(sp);
      simdjson::dom::array a = e.get_array().value_unsafe();
      arr.reserve(a.size());
      for (Element item : a) arr.push_back(ToBoost(item, sp));
      return arr;
    }
    case simdjson::dom::element_type::STRING:
      return json::string(e.get_string().value_unsafe(), sp);
    case simdjson::dom::element_type::INT64:
      return json::value(e.get_int64().value_unsafe(), sp);
    case simdjson::dom::element_type::UINT64:
      return json::value(e.get_uint64().value_unsafe(), sp);
    case simdjson::dom::element_type::DOUBLE:
      return json::value(e.get_double().value_unsafe(), sp);
    case simdjson::dom::element_type::BOOL:
      return json::value(e.get_bool().value_unsafe(), sp);
    case simdjson::dom::element_type::NULL_VALUE:
      return json::value(nullptr, sp);
  }
  return json::value(nullptr, sp);
}

std::string Minify(Element e) { return simdjson::minify(e); }

std::string_view TypeName(Element e) {
  switch (e.type()) {
    case simdjson::dom::element_type::OBJECT:
      return "an object";
    case simdjson::dom::element_type::ARRAY:
      return "an array";
    case simdjson::dom::element_type::STRING:
      return "a string";
    case simdjson::dom::element_type::INT64:
    case simdjson::dom::element_type::UINT64:
    case simdjson::dom::element_type::DOUBLE:
      return "a number";
    case simdjson::dom::element_type::BOOL:
      return "a boolean";
    case simdjson::dom::element_type::NULL_VALUE:
      return "null";
  }
  return "a value";
}

std::optional<json::value> ParseBoost(std::string_view text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec) return std::nullopt;
  return v;
}

std::string Serialize(const json::value& v) { return json::serialize(v); }
std::string Serialize(const json::object& o) { return json::serialize(o); }
std::string Serialize(const json::array& a) { return json::serialize(a); }

ChatUsage ReadChatUsage(Element u) {
  auto count = [](Element e, std::string_view key) -> int64_t {
    int64_t v = 0;
    if (e.at_key(key).get_int64().get(v) != simdjson::SUCCESS) return 0;
    return v < 0 ? 0 : v;
  };
  const bool chat_names = u.at_key("prompt_tokens").error() == simdjson::SUCCESS ||
                          u.at_key("completion_tokens").error() == simdjson::SUCCESS;
  ChatUsage c;
  c.usage.present = true;
  c.usage.input_tokens = count(u, chat_names ? "prompt_tokens" : "input_tokens");
  c.usage.output_tokens = count(u, chat_names ? "completion_tokens" : "output_tokens");
  if (std::optional<Element> d =
          Member(u, chat_names ? "prompt_tokens_details" : "input_tokens_details")) {
    c.usage.cache_read_tokens = count(*d, "cached_tokens");
  }
  if (std::optional<Element> d =
          Member(u, chat_names ? "completion_tokens_details" : "output_tokens_details")) {
    c.reasoning_tokens = count(*d, "reasoning_tokens");
  }
  return c;
}

}  // namespace keygate::translate::internal
