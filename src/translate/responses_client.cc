// OpenAI Responses request -> Chat Completions request, for Responses clients (POST /v1/responses)
// of models whose upstream speaks chat (or Anthropic, through chat). keygate keeps no responses,
// so what needs server-side state (previous_response_id, store: true, background, item
// references) is refused, as are OpenAI's built-in tools. Tables: docs/translation.md.
#include <algorithm>
#include <boost/json.hpp>
#include <set>
#include <string>

#include "translate/json_util.h"
#include "translate/translate.h"

namespace keygate::translate {
namespace {

namespace json = boost::json;
using internal::Element;
using internal::IsNull;
using internal::Member;
using internal::Path;
using internal::Quote;
using internal::StringMember;
using internal::ToBoost;
using internal::WrongType;

Status Unsupported(std::string_view field, std::string_view why) {
  return InvalidArgumentError("unsupported parameter " + Quote(field) +
                              " on /v1/responses for this model: " + std::string(why));
}

// Responses fields copied to chat under the same name.
constexpr std::string_view kSameName[] = {
    "temperature",       "top_p",    "parallel_tool_calls", "user",
    "safety_identifier", "metadata", "service_tier",        "prompt_cache_key"};

struct RefusedRow {
  std::string_view name, why;
};
constexpr RefusedRow kRefused[] = {
    {"previous_response_id",
     "keygate keeps no responses: send the earlier turns in 'input' (and store: false)"},
    {"conversation", "keygate keeps no conversations: send the earlier turns in 'input'"},
    {"prompt", "stored prompt templates live on OpenAI's servers"},
    {"max_tool_calls", "the upstream has no limit on built-in tool calls"},
    {"prompt_cache_retention", "the upstream has no cache retention setting"},
};

// Item members that an output item echoed back as input carries and that mean nothing here.
bool EchoedMember(std::string_view key) { return key == "id" || key == "status"; }

Status OnlyMembers(const std::string& path, Element item,
                   std::initializer_list<std::string_view> known) {
  simdjson::dom::object obj = item.get_object().value_unsafe();
  for (auto [key, value] : obj) {
    if (IsNull(value) || EchoedMember(key)) continue;
    if (std::find(known.begin(), known.end(), key) == known.end()) {
      return Unsupported(path + "." + std::string(key), "it has no chat counterpart");
    }
  }
  return OkStatus();
}

// One input_image part -> a chat image_url part.
StatusOr<json::value> Image(const std::string& path, Element part, const json::storage_ptr& sp) {
  if (Member(part, "file_id")) {
    return Unsupported(path + ".file_id", "uploaded files are not translated: send image_url");
  }
  std::optional<std::string_view> url = StringMember(part, "image_url");
  if (!url) return InvalidArgumentError(Quote(path + ".image_url") + " must be a string");
  json::object image({{"url", *url}}, sp);
  if (std::optional<std::string_view> detail = StringMember(part, "detail"))
    image["detail"] = *detail;
  return json::value(json::object({{"type", "image_url"}, {"image_url", std::move(image)}}, sp));
}

// A message's content: a string stays a string; parts become chat parts (text, image_url).
// `refusal` collects refusal parts (assistant messages only).
StatusOr<json::value> Content(const std::string& path, Element content, bool assistant,
                              std::string& refusal, const json::storage_ptr& sp) {
  std::string_view s;
  if (content.get_string().get(s) == simdjson::SUCCESS) return json::value(json::string(s, sp));
  simdjson::dom::array parts;
  if (content.get_array().get(parts) != simdjson::SUCCESS) {
    return WrongType(path, "a string or an array of parts", content);
  }
  json::array out(sp);
  std::string text;  // an assistant's text parts, joined
  size_t i = 0;
  for (Element part : parts) {
    const std::string ppath = Path(path, i++);
    std::optional<std::string_view> type = StringMember(part, "type");
    if (type == "input_text" || type == "output_text") {
      std::optional<std::string_view> t = StringMember(part, "text");
      if (!t) return InvalidArgumentError(Quote(ppath + ".text") + " must be a string");
      // annotations / logprobs of an echoed output_text part describe the old answer: no input.
      if (assistant) {
        text.append(*t);
      } else {
        out.push_back(json::object({{"type", "text"}, {"text", *t}}, sp));
      }
    } else if (type == "refusal" && assistant) {
      refusal.append(StringMember(part, "refusal").value_or(""));
    } else if (type == "input_image" && !assistant) {
      KG_ASSIGN_OR_RETURN(json::value image, Image(ppath, part, sp));
      out.push_back(std::move(image));
    } else {
      return Unsupported(ppath + ".type",
                         "only input_text, output_text and input_image (by URL or "
                         "data URL) parts are translated");
    }
  }
  if (assistant) return json::value(json::string(text, sp));
  return json::value(std::move(out));
}

// function_call_output.output: a string, or input_text parts (joined).
StatusOr<std::string> ToolOutput(const std::string& path, Element output) {
  std::string_view s;
  if (output.get_string().get(s) == simdjson::SUCCESS) return std::string(s);
  simdjson::dom::array parts;
  if (output.get_array().get(parts) != simdjson::SUCCESS) {
    return WrongType(path, "a string or an array of parts", output);
  }
  std::string text;
  size_t i = 0;
  for (Element part : parts) {
    const std::string ppath = Path(path, i++);
    std::optional<std::string_view> t = StringMember(part, "text");
    if (StringMember(part, "type") != "input_text" || !t) {
      return Unsupported(ppath + ".type", "a tool's output is translated as text only");
    }
    text.append(*t);
  }
  return text;
}

Status Input(Element input, json::array& messages) {
  const json::storage_ptr& sp = messages.storage();
  std::string_view s;
  if (input.get_string().get(s) == simdjson::SUCCESS) {
    messages.push_back(json::object({{"role", "user"}, {"content", s}}, sp));
    return OkStatus();
  }
  simdjson::dom::array items;
  if (input.get_array().get(items) != simdjson::SUCCESS) {
    return WrongType("input", "a string or an array of items", input);
  }
  size_t i = 0;
  for (Element item : items) {
    const std::string path = Path("input", i++);
    if (!item.is_object()) return WrongType(path, "an object", item);
    std::optional<std::string_view> type = StringMember(item, "type");
    // An item with a role and no type is a message (the "easy input message" shape).
    if (!type && StringMember(item, "role")) type = "message";
    if (type == "message") {
      KG_RETURN_IF_ERROR(OnlyMembers(path, item, {"type", "role", "content"}));
      std::optional<std::string_view> role = StringMember(item, "role");
      if (role != "user" && role != "system" && role != "developer" && role != "assistant") {
        return Unsupported(path + ".role", "only user, system, developer and assistant messages");
      }
      std::optional<Element> content = Member(item, "content");
      if (!content) return InvalidArgumentError(Quote(path + ".content") + " is required");
      const bool assistant = role == "assistant";
      std::string refusal;
      KG_ASSIGN_OR_RETURN(json::value c,
                          Content(path + ".content", *content, assistant, refusal, sp));
      json::object m({{"role", *role}, {"content", std::move(c)}}, sp);
      if (!refusal.empty()) m["refusal"] = refusal;
      messages.push_back(std::move(m));
    } else if (type == "function_call") {
      KG_RETURN_IF_ERROR(OnlyMembers(path, item, {"type", "call_id", "name", "arguments"}));
      std::optional<std::string_view> call_id = StringMember(item, "call_id");
      std::optional<std::string_view> name = StringMember(item, "name");
      if (!call_id || !name) {
        return InvalidArgumentError(Quote(path) + " must have a string call_id and name");
      }
      json::object call(
          {{"id", *call_id},
           {"type", "function"},
           {"function",
            json::object(
                {{"name", *name}, {"arguments", StringMember(item, "arguments").value_or("{}")}},
                sp)}},
          sp);
      // Chat puts an assistant turn's calls on its one message: join the message (or the calls)
      // right before, as the Responses API lists them as separate items.
      json::object* last = messages.empty() ? nullptr : messages.back().if_object();
      if (last == nullptr || !last->contains("role") || last->at("role") != "assistant") {
        messages.push_back(json::object({{"role", "assistant"}, {"content", nullptr}}, sp));
        last = &messages.back().as_object();
      }
      json::value& content = (*last)["content"];
      if (content.is_string() && content.get_string().empty()) content = nullptr;
      if (!last->contains("tool_calls")) (*last)["tool_calls"] = json::array();
      (*last)["tool_calls"].as_array().push_back(std::move(call));
    } else if (type == "function_call_output") {
      KG_RETURN_IF_ERROR(OnlyMembers(path, item, {"type", "call_id", "output"}));
      std::optional<std::string_view> call_id = StringMember(item, "call_id");
      std::optional<Element> output = Member(item, "output");
      if (!call_id || !output) {
        return InvalidArgumentError(Quote(path) + " must have a string call_id and an output");
      }
      KG_ASSIGN_OR_RETURN(std::string text, ToolOutput(path + ".output", *output));
      messages.push_back(
          json::object({{"role", "tool"}, {"tool_call_id", *call_id}, {"content", text}}, sp));
    } else if (type == "reasoning") {
      // An earlier answer's reasoning echoed back: chat has no input place for it (as Anthropic
      // thinking going to chat), and the model does not need it to go on.
    } else if (type == "item_reference") {
      return Unsupported(path + ".type", "keygate keeps no responses to refer to: send the item");
    } else if (!type) {
      return InvalidArgumentError(Quote(path + ".type") + " must be a string");
    } else {
      return Unsupported(path + ".type", "item type " + Quote(*type) +
                                             " is not translated (built-in tools run on OpenAI's "
                                             "servers; only messages and function calls map)");
    }
  }
  return OkStatus();
}

StatusOr<json::value> Tools(Element value) {
  simdjson::dom::array tools;
  if (value.get_array().get(tools) != simdjson::SUCCESS)
    return WrongType("tools", "an array", value);
  json::array list;
  size_t i = 0;
  for (Element tool : tools) {
    const std::string path = Path("tools", i++);
    std::optional<std::string_view> type = StringMember(tool, "type");
    if (type != "function") {
      return Unsupported(path + ".type",
                         "only function tools are translated; built-in tools (web_search, "
                         "file_search, computer use, code_interpreter, mcp, …) run on OpenAI's "
                         "servers");
    }
    std::optional<std::string_view> name = StringMember(tool, "name");
    if (!name) return InvalidArgumentError(Quote(path + ".name") + " must be a string");
    json::object fn{{"name", *name}};
    for (std::string_view k : {"description", "parameters", "strict"}) {
      if (std::optional<Element> v = Member(tool, k)) fn[k] = ToBoost(*v);
    }
    list.push_back(json::object{{"type", "function"}, {"function", std::move(fn)}});
  }
  return json::value(std::move(list));
}

StatusOr<json::value> ToolChoice(Element value) {
  std::string_view mode;
  if (value.get_string().get(mode) == simdjson::SUCCESS) return json::value(json::string(mode));
  std::optional<std::string_view> name = StringMember(value, "name");
  if (StringMember(value, "type") != "function" || !name) {
    return Unsupported("tool_choice", "only a mode (auto, none, required) or a named function");
  }
  return json::value(
      json::object{{"type", "function"}, {"function", json::object{{"name", *name}}}});
}

Status Text(Element value, json::object& out) {
  if (!value.is_object()) return WrongType("text", "an object", value);
  simdjson::dom::object text = value.get_object().value_unsafe();
  for (auto [key, v] : text) {
    if (IsNull(v)) continue;
    if (key == "format") {
      std::optional<std::string_view> type = StringMember(v, "type");
      if (type == "json_schema") {
        json::object schema;
        for (std::string_view k : {"name", "description", "schema", "strict"}) {
          if (std::optional<Element> m = Member(v, k)) schema[k] = ToBoost(*m);
        }
        out["response_format"] =
            json::object{{"type", "json_schema"}, {"json_schema", std::move(schema)}};
      } else if (type == "json_object") {
        out["response_format"] = json::object{{"type", "json_object"}};
      } else if (type != "text") {
        return Unsupported("text.format.type", "only text, json_object and json_schema");
      }
    } else if (key == "verbosity") {
      out["verbosity"] = ToBoost(v);
    } else {
      return Unsupported("text." + std::string(key), "it has no chat counterpart");
    }
  }
  return OkStatus();
}

Status Reasoning(Element value, json::object& out) {
  if (!value.is_object()) return WrongType("reasoning", "an object", value);
  simdjson::dom::object reasoning = value.get_object().value_unsafe();
  for (auto [key, v] : reasoning) {
    if (IsNull(v)) continue;
    if (key == "effort") {
      out["reasoning_effort"] = ToBoost(v);
    } else if (key == "summary" || key == "generate_summary") {
      // Chat has no switch for it: the reasoning text comes back whenever the upstream gives it.
    } else {
      return Unsupported("reasoning." + std::string(key), "it has no chat counterpart");
    }
  }
  return OkStatus();
}

// Fields whose only accepted value is the neutral one: returns true when `value` is neutral.
bool Neutral(std::string_view key, Element value) {
  bool flag = true;
  int64_t n = -1;
  std::string_view s;
  if (key == "store" || key == "background") {
    return value.get_bool().get(flag) == simdjson::SUCCESS && !flag;
  }
  if (key == "truncation") return value.get_string().get(s) == simdjson::SUCCESS && s == "disabled";
  if (key == "top_logprobs") return value.get_int64().get(n) == simdjson::SUCCESS && n == 0;
  if (key == "include") {
    simdjson::dom::array a;
    return value.get_array().get(a) == simdjson::SUCCESS && a.size() == 0;
  }
  return false;
}

std::string_view NeutralWhy(std::string_view key) {
  if (key == "store") return "keygate keeps no responses: set store to false or leave it out";
  if (key == "background") return "keygate runs no background responses: leave background out";
  if (key == "truncation") return "only 'disabled': the upstream does not truncate the input";
  if (key == "top_logprobs") return "log probabilities are not translated";
  return "the extra outputs it asks for (logprobs, encrypted reasoning, tool results) are not "
         "translated";
}

StatusOr<std::string> ResponsesToChat(Element root, const TranslateOptions& options,
                                      const json::storage_ptr& sp) {
  if (!root.is_object()) return InvalidArgumentError("request body must be a JSON object");
  json::object out(sp);
  json::array messages(sp);
  std::optional<std::string_view> instructions;
  bool stream = false;
  std::set<std::string_view> seen;
  simdjson::dom::object fields = root.get_object().value_unsafe();  // named: a temporary's
  for (auto [key, value] : fields) {                                // value would dangle
    // Parsers disagree on which of two equal keys wins: refuse rather than guess.
    if (!seen.insert(key).second) {
      return InvalidArgumentError("duplicate key " + Quote(key) + " in request body");
    }
    if (IsNull(value)) continue;
    if (key == "model") {
      std::string_view model;
      if (value.get_string().get(model) != simdjson::SUCCESS) {
        return WrongType("model", "a string", value);
      }
      out["model"] = options.upstream_model.empty() ? model : options.upstream_model;
    } else if (key == "input") {
      KG_RETURN_IF_ERROR(Input(value, messages));
    } else if (key == "instructions") {
      std::string_view s;
      if (value.get_string().get(s) != simdjson::SUCCESS) {
        return WrongType("instructions", "a string", value);
      }
      instructions = s;
    } else if (key == "max_output_tokens") {
      out["max_completion_tokens"] = ToBoost(value);
    } else if (key == "stream") {
      if (value.get_bool().get(stream) != simdjson::SUCCESS)
        return WrongType("stream", "a boolean", value);
      out["stream"] = stream;
    } else if (key == "stream_options") {
      // Responses' stream_options asks for obfuscation padding only; keygate adds none.
    } else if (key == "tools") {
      KG_ASSIGN_OR_RETURN(out["tools"], Tools(value));
    } else if (key == "tool_choice") {
      KG_ASSIGN_OR_RETURN(out["tool_choice"], ToolChoice(value));
    } else if (key == "text") {
      KG_RETURN_IF_ERROR(Text(value, out));
    } else if (key == "reasoning") {
      KG_RETURN_IF_ERROR(Reasoning(value, out));
    } else if (std::find(std::begin(kSameName), std::end(kSameName), key) != std::end(kSameName)) {
      out[key] = ToBoost(value);
    } else if (key == "store" || key == "background" || key == "truncation" ||
               key == "top_logprobs" || key == "include") {
      if (!Neutral(key, value)) return Unsupported(key, NeutralWhy(key));
    } else {
      std::string_view why = "it has no chat counterpart";
      for (const RefusedRow& row : kRefused) {
        if (row.name == key) why = row.why;
      }
      return Unsupported(key, why);
    }
  }
  if (!out.contains("model")) return InvalidArgumentError("'model' is required");
  if (instructions) {
    messages.insert(messages.begin(), json::object{{"role", "system"}, {"content", *instructions}});
  }
  if (messages.empty()) return InvalidArgumentError("'input' is required");
  out["messages"] = std::move(messages);
  // Usage arrives in the last chunk only when asked for; response.completed must carry it.
  if (stream) out["stream_options"] = json::object{{"include_usage", true}};
  return internal::Serialize(out);
}

}  // namespace

StatusOr<std::string> ResponsesToOpenAIChatRequest(std::string_view body,
                                                   const TranslateOptions& options) {
  return internal::TranslateRequestInArena(body, [&](Element root, const json::storage_ptr& sp) {
    return ResponsesToChat(root, options, sp);
  });
}

}  // namespace keygate::translate
