// The reverse direction: Anthropic Messages request -> OpenAI Chat Completions request, and
// OpenAI chat.completion response -> Anthropic Messages response (non-streaming). Tables and
// reasons in docs/translation.md ("Reverse").
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
using internal::IsNumber;
using internal::Member;
using internal::Path;
using internal::Quote;
using internal::WrongType;

Status Unsupported(std::string_view field, std::string_view why) {
  return InvalidArgumentError("unsupported parameter " + Quote(field) +
                              " for an OpenAI-format model: " + std::string(why));
}

std::optional<std::string_view> TypeOf(Element block) {
  return internal::StringMember(block, "type");
}

class ReverseRequest : private internal::ArenaBuilder {
 public:
  // Every value of the tree is made with `sp`, the request's arena (internal::ArenaBuilder).
  ReverseRequest(const TranslateOptions& options, json::storage_ptr sp)
      : ArenaBuilder(std::move(sp)), options_(options), messages_(sp_) {}
  StatusOr<std::string> Run(Element root);

 private:
  StatusOr<json::value> TextOrParts(const std::string& path, Element content, bool images);
  StatusOr<json::object> Image(const std::string& path, Element block);
  Status UserMessage(const std::string& path, Element content);
  Status AssistantMessage(const std::string& path, Element content);

  const TranslateOptions& options_;
  json::array messages_;
};

StatusOr<json::object> ReverseRequest::Image(const std::string& path, Element block) {
  std::optional<Element> source = Member(block, "source");
  std::optional<std::string_view> type = source ? TypeOf(*source) : std::nullopt;
  std::string url;
  std::string_view s;
  if (type == "url" && source->at_key("url").get_string().get(s) == simdjson::SUCCESS) {
    url = s;
  } else if (type == "base64") {
    std::string_view media, data;
    if (source->at_key("media_type").get_string().get(media) != simdjson::SUCCESS ||
        source->at_key("data").get_string().get(data) != simdjson::SUCCESS) {
      return InvalidArgumentError(Quote(path + ".source") + " needs media_type and data");
    }
    url = "data:" + std::string(media) + ";base64," + std::string(data);
  } else {
    return Unsupported(path + ".source.type", "only url and base64 images are translated");
  }
  return Obj({{"type", "image_url"}, {"image_url", Obj({{"url", url}})}});
}

// A string, or text (and image) blocks as OpenAI content parts. cache_control is dropped:
// OpenAI caches prompt prefixes by itself.
StatusOr<json::value> ReverseRequest::TextOrParts(const std::string& path, Element content,
                                                  bool images) {
  std::string_view s;
  if (content.get_string().get(s) == simdjson::SUCCESS) return json::value(json::string(s, sp_));
  simdjson::dom::array blocks;
  if (content.get_array().get(blocks) != simdjson::SUCCESS) {
    return WrongType(path, "a string or an array of content blocks", content);
  }
  json::array parts(sp_);
  size_t j = 0;
  for (Element block : blocks) {
    const std::string block_path = Path(path, j++);
    std::optional<std::string_view> type = TypeOf(block);
    if (type == "text") {
      if (block.at_key("text").get_string().get(s) != simdjson::SUCCESS) {
        return InvalidArgumentError(Quote(block_path + ".text") + " must be a string");
      }
      parts.push_back(Obj({{"type", "text"}, {"text", s}}));
    } else if (type == "image" && images) {
      KG_ASSIGN_OR_RETURN(json::object part, Image(block_path, block));
      parts.push_back(std::move(part));
    } else {
      return Unsupported(block_path + ".type",
                         "content block type " + Quote(type.value_or("?")) + " is not translated");
    }
  }
  return json::value(std::move(parts));
}

// tool_result blocks become tool messages (first: they answer the previous assistant turn);
// the rest of the user's blocks follow as one user message.
Status ReverseRequest::UserMessage(const std::string& path, Element content) {
  std::string_view s;
  if (content.get_string().get(s) == simdjson::SUCCESS) {
    messages_.push_back(Obj({{"role", "user"}, {"content", s}}));
    return OkStatus();
  }
  simdjson::dom::array blocks;
  if (content.get_array().get(blocks) != simdjson::SUCCESS) {
    return WrongType(path, "a string or an array of content blocks", content);
  }
  json::array parts(sp_);
  size_t j = 0;
  for (Element block : blocks) {
    const std::string block_path = Path(path, j++);
    std::optional<std::string_view> type = TypeOf(block);
    if (type == "tool_result") {
      std::string_view id;
      if (block.at_key("tool_use_id").get_string().get(id) != simdjson::SUCCESS) {
        return InvalidArgumentError(Quote(block_path + ".tool_use_id") + " must be a string");
      }
      json::value result = "";
      if (std::optional<Element> c = Member(block, "content")) {
        KG_ASSIGN_OR_RETURN(result, TextOrParts(block_path + ".content", *c, false));
      }
      // is_error has no OpenAI field; the result text says what failed.
      messages_.push_back(
          Obj({{"role", "tool"}, {"tool_call_id", id}, {"content", std::move(result)}}));
    } else if (type == "text") {
      if (block.at_key("text").get_string().get(s) != simdjson::SUCCESS) {
        return InvalidArgumentError(Quote(block_path + ".text") + " must be a string");
      }
      parts.push_back(Obj({{"type", "text"}, {"text", s}}));
    } else if (type == "image") {
      KG_ASSIGN_OR_RETURN(json::object part, Image(block_path, block));
      parts.push_back(std::move(part));
    } else {
      return Unsupported(block_path + ".type",
                         "content block type " + Quote(type.value_or("?")) + " is not translated");
    }
  }
  if (!parts.empty()) messages_.push_back(Obj({{"role", "user"}, {"content", std::move(parts)}}));
  return OkStatus();
}

Status ReverseRequest::AssistantMessage(const std::string& path, Element content) {
  std::string_view s;
  if (content.get_string().get(s) == simdjson::SUCCESS) {
    messages_.push_back(Obj({{"role", "assistant"}, {"content", s}}));
    return OkStatus();
  }
  simdjson::dom::array blocks;
  if (content.get_array().get(blocks) != simdjson::SUCCESS) {
    return WrongType(path, "a string or an array of content blocks", content);
  }
  std::string text;
  json::array calls(sp_);
  size_t j = 0;
  for (Element block : blocks) {
    const std::string block_path = Path(path, j++);
    std::optional<std::string_view> type = TypeOf(block);
    if (type == "text") {
      if (block.at_key("text").get_string().get(s) == simdjson::SUCCESS) text.append(s);
    } else if (type == "tool_use") {
      std::string_view id, name;
      Element input;
      if (block.at_key("id").get_string().get(id) != simdjson::SUCCESS ||
          block.at_key("name").get_string().get(name) != simdjson::SUCCESS) {
        return InvalidArgumentError(Quote(block_path) + ": a tool_use block needs id and name");
      }
      std::string arguments = "{}";
      if (block.at_key("input").get(input) == simdjson::SUCCESS) {
        arguments = internal::Minify(input);
      }
      calls.push_back(Obj({{"id", id},
                           {"type", "function"},
                           {"function", Obj({{"name", name}, {"arguments", arguments}})}}));
    } else if (type == "thinking" || type == "redacted_thinking") {
      // Earlier thinking has no place in an OpenAI request; the model does not need it.
    } else {
      return Unsupported(block_path + ".type",
                         "content block type " + Quote(type.value_or("?")) + " is not translated");
    }
  }
  json::object message = Obj({{"role", "assistant"}});
  if (text.empty() && !calls.empty()) {
    message["content"] = nullptr;
  } else {
    message["content"] = text;
  }
  if (!calls.empty()) message["tool_calls"] = std::move(calls);
  messages_.push_back(std::move(message));
  return OkStatus();
}

StatusOr<std::string> ReverseRequest::Run(Element root) {
  if (!root.is_object()) return InvalidArgumentError("request body must be a JSON object");
  json::object out(sp_);
  std::set<std::string_view> seen;
  simdjson::dom::object root_object = root.get_object().value_unsafe();
  for (auto member : root_object) {
    if (!seen.insert(member.key).second) {
      return InvalidArgumentError("duplicate key " + Quote(member.key) + " in request body");
    }
  }
  auto get = [&](std::string_view key) { return Member(root, key); };

  std::string_view model;
  if (!get("model") || get("model")->get_string().get(model) != simdjson::SUCCESS ||
      model.empty()) {
    return InvalidArgumentError("'model' must be a non-empty string");
  }
  out["model"] = options_.upstream_model.empty() ? model : options_.upstream_model;

  if (std::optional<Element> system = get("system")) {
    KG_ASSIGN_OR_RETURN(json::value content, TextOrParts("system", *system, false));
    messages_.push_back(Obj({{"role", "system"}, {"content", std::move(content)}}));
  }
  std::optional<Element> messages = get("messages");
  simdjson::dom::array list;
  if (!messages || messages->get_array().get(list) != simdjson::SUCCESS) {
    return InvalidArgumentError("'messages' must be an array");
  }
  size_t i = 0;
  for (Element message : list) {
    const std::string path = Path("messages", i++);
    std::string_view role;
    std::optional<Element> content =
        message.is_object() ? Member(message, "content") : std::nullopt;
    if (!message.is_object() ||
        message.at_key("role").get_string().get(role) != simdjson::SUCCESS || !content) {
      return InvalidArgumentError(Quote(path) + " must be an object with role and content");
    }
    if (role == "user") {
      KG_RETURN_IF_ERROR(UserMessage(path + ".content", *content));
    } else if (role == "assistant") {
      KG_RETURN_IF_ERROR(AssistantMessage(path + ".content", *content));
    } else {
      return InvalidArgumentError(Quote(path + ".role") + " must be user or assistant");
    }
  }
  out["messages"] = std::move(messages_);

  int64_t max_tokens = 0;
  if (!get("max_tokens") || get("max_tokens")->get_int64().get(max_tokens) != simdjson::SUCCESS ||
      max_tokens < 1) {
    return InvalidArgumentError("'max_tokens' must be a positive integer");
  }
  // max_completion_tokens: the field current OpenAI models require (max_tokens is refused by
  // reasoning models); like Anthropic's max_tokens it counts reasoning tokens too.
  out["max_completion_tokens"] = max_tokens;

  for (std::string_view key : {"temperature", "top_p"}) {
    if (std::optional<Element> v = get(key)) {
      if (!IsNumber(*v)) return WrongType(key, "a number", *v);
      out[key] = internal::ToBoost(*v, sp_);
    }
  }
  if (std::optional<Element> stop = get("stop_sequences")) {
    if (!stop->is_array()) return WrongType("stop_sequences", "an array", *stop);
    if (stop->get_array().value_unsafe().size() > 4) {
      return Unsupported("stop_sequences", "OpenAI accepts at most 4 stop sequences");
    }
    out["stop"] = internal::ToBoost(*stop, sp_);
  }
  bool stream = false;
  if (std::optional<Element> s = get("stream")) {
    if (s->get_bool().get(stream) != simdjson::SUCCESS) return WrongType("stream", "a boolean", *s);
  }
  if (stream) {
    out["stream"] = true;
    // Anthropic streams always report usage; OpenAI only when asked.
    out["stream_options"] = Obj({{"include_usage", true}});
  }
  if (std::optional<Element> metadata = get("metadata")) {
    std::string_view user;
    if (metadata->at_key("user_id").get_string().get(user) == simdjson::SUCCESS && !user.empty()) {
      out["user"] = user;
    }
  }

  if (std::optional<Element> tools = get("tools")) {
    simdjson::dom::array tool_list;
    if (tools->get_array().get(tool_list) != simdjson::SUCCESS) {
      return WrongType("tools", "an array", *tools);
    }
    json::array out_tools(sp_);
    size_t k = 0;
    for (Element tool : tool_list) {
      const std::string path = Path("tools", k++);
      std::optional<std::string_view> type = tool.is_object() ? TypeOf(tool) : std::nullopt;
      if (type && *type != "custom") {
        return Unsupported(path + ".type", "server tools (" + Quote(*type) + ") are not available");
      }
      std::string_view name;
      if (!tool.is_object() || tool.at_key("name").get_string().get(name) != simdjson::SUCCESS) {
        return InvalidArgumentError(Quote(path + ".name") + " must be a string");
      }
      json::object fn = Obj({{"name", name}});
      if (std::optional<Element> d = Member(tool, "description"))
        fn["description"] = internal::ToBoost(*d, sp_);
      if (std::optional<Element> schema = Member(tool, "input_schema")) {
        fn["parameters"] = internal::ToBoost(*schema, sp_);
      }
      out_tools.push_back(Obj({{"type", "function"}, {"function", std::move(fn)}}));
    }
    if (!out_tools.empty()) out["tools"] = std::move(out_tools);
  }
  if (std::optional<Element> choice = get("tool_choice")) {
    std::optional<std::string_view> type = choice->is_object() ? TypeOf(*choice) : std::nullopt;
    std::string_view name;
    if (type == "auto") {
      out["tool_choice"] = "auto";
    } else if (type == "any") {
      out["tool_choice"] = "required";
    } else if (type == "none") {
      out["tool_choice"] = "none";
    } else if (type == "tool" &&
               choice->at_key("name").get_string().get(name) == simdjson::SUCCESS) {
      out["tool_choice"] = Obj({{"type", "function"}, {"function", Obj({{"name", name}})}});
    } else {
      return InvalidArgumentError("'tool_choice' must have type auto, any, none or tool");
    }
    bool disable = false;
    if (choice->at_key("disable_parallel_tool_use").get_bool().get(disable) == simdjson::SUCCESS &&
        disable) {
      out["parallel_tool_calls"] = false;
    }
  }
  if (std::optional<Element> thinking = get("thinking")) {
    std::optional<std::string_view> type = TypeOf(*thinking);
    int64_t budget = 0;
    if (type == "enabled") {
      if (thinking->at_key("budget_tokens").get_int64().get(budget) != simdjson::SUCCESS) {
        return InvalidArgumentError("'thinking.budget_tokens' must be an integer");
      }
      // The smallest effort whose budget covers the request's.
      const ThinkingBudgets& b = options_.thinking_budgets;
      out["reasoning_effort"] = budget <= b.low ? "low" : budget <= b.medium ? "medium" : "high";
    } else if (type != "disabled") {
      return InvalidArgumentError("'thinking.type' must be enabled or disabled");
    }
  }

  // Everything else: refused unless harmless (service_tier: Anthropic's tiers are per account).
  for (auto member : root_object) {
    std::string_view k = member.key;
    if (k == "model" || k == "system" || k == "messages" || k == "max_tokens" ||
        k == "temperature" || k == "top_p" || k == "stop_sequences" || k == "stream" ||
        k == "metadata" || k == "tools" || k == "tool_choice" || k == "thinking" ||
        k == "service_tier" || IsNull(member.value)) {
      continue;
    }
    if (k == "top_k") return Unsupported(k, "OpenAI has no top_k sampling");
    return Unsupported(k, "it has no OpenAI Chat Completions equivalent");
  }
  return internal::Serialize(out);
}

StatusOr<std::string> ReverseResponse(Element root, const ResponseOptions& options) {
  simdjson::dom::array choices;
  if (!root.is_object() || root.at_key("choices").get_array().get(choices) != simdjson::SUCCESS ||
      choices.size() == 0) {
    return InternalError("upstream response has no choices");
  }
  Element choice = choices.at(0).value_unsafe();
  std::optional<Element> message = Member(choice, "message");
  if (!message || !message->is_object()) return InternalError("upstream choice has no message");
  json::array content;
  std::string_view s;
  if (message->at_key("reasoning_content").get_string().get(s) == simdjson::SUCCESS && !s.empty()) {
    // No signature: the block is for display; the reverse request translator drops it again.
    content.push_back(json::object{{"type", "thinking"}, {"thinking", s}, {"signature", ""}});
  }
  if (message->at_key("content").get_string().get(s) == simdjson::SUCCESS && !s.empty()) {
    content.push_back(json::object{{"type", "text"}, {"text", s}});
  } else if (message->at_key("refusal").get_string().get(s) == simdjson::SUCCESS && !s.empty()) {
    content.push_back(json::object{{"type", "text"}, {"text", s}});
  }
  simdjson::dom::array calls;
  if (message->at_key("tool_calls").get_array().get(calls) == simdjson::SUCCESS) {
    for (Element call : calls) {
      std::string_view id, name, arguments;
      if (call.at_key("id").get_string().get(id) != simdjson::SUCCESS ||
          call.at_key("function").at_key("name").get_string().get(name) != simdjson::SUCCESS) {
        return InternalError("upstream tool call lacks id or function.name");
      }
      if (call.at_key("function").at_key("arguments").get_string().get(arguments) !=
          simdjson::SUCCESS) {
        arguments = "";
      }
      json::value input = json::object();
      if (arguments.find_first_not_of(" \t\r\n") != std::string_view::npos) {
        std::optional<json::value> parsed = internal::ParseBoost(arguments);
        // Anthropic clients expect an object; a model that wrote broken arguments is a failed
        // upstream answer, not something to pass on as {}.
        if (!parsed || !parsed->is_object()) {
          return InternalError("upstream tool call arguments are not a JSON object");
        }
        input = std::move(*parsed);
      }
      content.push_back(json::object{
          {"type", "tool_use"}, {"id", id}, {"name", name}, {"input", std::move(input)}});
    }
  }
  json::value stop_reason = nullptr;
  if (choice.at_key("finish_reason").get_string().get(s) == simdjson::SUCCESS) {
    stop_reason = StopReasonFromOpenAI(s);
  }
  std::string_view id;
  if (root.at_key("id").get_string().get(id) != simdjson::SUCCESS) id = "";

  // Usage back to Anthropic's split: cached tokens are reported apart from input_tokens.
  json::object usage{{"input_tokens", 0}, {"output_tokens", 0}};
  Element u;
  if (root.at_key("usage").get(u) == simdjson::SUCCESS && u.is_object()) {
    int64_t prompt = 0, completion = 0, cached = 0;
    if (u.at_key("prompt_tokens").get_int64().get(prompt) != simdjson::SUCCESS) prompt = 0;
    if (u.at_key("completion_tokens").get_int64().get(completion) != simdjson::SUCCESS) {
      completion = 0;
    }
    if (u.at_key("prompt_tokens_details").at_key("cached_tokens").get_int64().get(cached) !=
        simdjson::SUCCESS) {
      cached = 0;
    }
    prompt = std::max<int64_t>(prompt, 0);
    cached = std::clamp<int64_t>(cached, 0, prompt);
    usage = json::object{{"input_tokens", prompt - cached},
                         {"cache_creation_input_tokens", 0},
                         {"cache_read_input_tokens", cached},
                         {"output_tokens", std::max<int64_t>(completion, 0)}};
  }
  json::object out{{"id", id},
                   {"type", "message"},
                   {"role", "assistant"},
                   {"model", options.client_model},
                   {"content", std::move(content)},
                   {"stop_reason", std::move(stop_reason)},
                   {"stop_sequence", nullptr},
                   {"usage", std::move(usage)}};
  return internal::Serialize(out);
}

}  // namespace

std::string_view StopReasonFromOpenAI(std::string_view finish_reason) {
  if (finish_reason == "length") return "max_tokens";
  if (finish_reason == "tool_calls" || finish_reason == "function_call") return "tool_use";
  if (finish_reason == "content_filter") return "refusal";
  return "end_turn";
}

StatusOr<std::string> AnthropicToOpenAIChatRequest(std::string_view body,
                                                   const TranslateOptions& options) {
  return internal::TranslateRequestInArena(body, [&](Element root, json::storage_ptr sp) {
    return ReverseRequest(options, std::move(sp)).Run(root);
  });
}

StatusOr<std::string> OpenAIChatToAnthropicResponse(std::string_view body,
                                                    const ResponseOptions& options) {
  return internal::ParseAndTranslate(body, internal::BodyKind::kResponse, [&](Element root) {
    return ReverseResponse(root, options);
  });
}

}  // namespace keygate::translate
