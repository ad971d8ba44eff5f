// OpenAI Chat Completions <-> OpenAI Responses, for models whose upstream speaks the Responses API
// (POST /v1/responses): the chat request becomes a Responses request, and the Responses answer
// (whole or streamed) a chat.completion (chunks). Anthropic clients reach such models through
// chat as the pivot (the gateway composes the two translations). Tables: docs/translation.md.
#include <algorithm>
#include <boost/json.hpp>
#include <string>

#include "provider/json_text.h"
#include "translate/json_util.h"
#include "translate/sse_events.h"
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
using provider::internal::AppendJsonString;

Status Unsupported(std::string_view field, std::string_view why) {
  return InvalidArgumentError("unsupported parameter " + Quote(field) +
                              " for an OpenAI Responses model: " + std::string(why));
}

// Chat fields copied under the same name.
constexpr std::string_view kSameName[] = {
    "temperature", "top_p", "parallel_tool_calls", "user", "safety_identifier", "metadata",
    "service_tier", "prompt_cache_key", "stream", "top_logprobs"};
// Known chat fields with no Responses counterpart, with the reason.
struct RefusedRow {
  std::string_view name, why;
};
constexpr RefusedRow kRefused[] = {
    {"stop", "the Responses API has no stop sequences"},
    {"n", "only one choice is returned (n must be 1)"},
    {"logprobs", "log probabilities are not translated"},
    {"presence_penalty", "the Responses API has no presence penalty"},
    {"frequency_penalty", "the Responses API has no frequency penalty"},
    {"logit_bias", "the Responses API has no logit bias"},
    {"seed", "the Responses API has no seed"},
    {"audio", "audio output is not translated"},
    {"modalities", "output modalities are not translated"},
    {"prediction", "predicted outputs are not available"},
    {"web_search_options", "use a web search tool on the Responses API directly"},
    {"functions", "use 'tools' instead of the deprecated 'functions'"},
    {"function_call", "use 'tool_choice' instead of the deprecated 'function_call'"},
};

// A message's content as a string, for the item kinds that take only text (tool output).
StatusOr<std::string> TextOf(const std::string& path, Element content) {
  std::string_view s;
  if (content.get_string().get(s) == simdjson::SUCCESS) return std::string(s);
  simdjson::dom::array parts;
  if (content.get_array().get(parts) != simdjson::SUCCESS) {
    return WrongType(path, "a string or an array of parts", content);
  }
  std::string text;
  size_t i = 0;
  for (Element part : parts) {
    std::optional<std::string_view> t = StringMember(part, "text");
    if (StringMember(part, "type") != "text" || !t) {
      return InvalidArgumentError(Quote(Path(path, i)) + " must be a text part");
    }
    text.append(*t);
    ++i;
  }
  return text;
}

// Content parts of a message: strings and text parts become input_text (output_text for the
// assistant), image_url parts input_image.
StatusOr<json::value> Content(const std::string& path, Element content, bool assistant,
                              const json::storage_ptr& sp) {
  std::string_view s;
  if (content.get_string().get(s) == simdjson::SUCCESS) return json::value(json::string(s, sp));
  simdjson::dom::array parts;
  if (content.get_array().get(parts) != simdjson::SUCCESS) {
    return WrongType(path, "a string or an array of parts", content);
  }
  json::array out(sp);
  size_t i = 0;
  for (Element part : parts) {
    const std::string ppath = Path(path, i++);
    std::optional<std::string_view> type = StringMember(part, "type");
    if (type == "text") {
      std::optional<std::string_view> text = StringMember(part, "text");
      if (!text) return InvalidArgumentError(Quote(ppath + ".text") + " must be a string");
      out.push_back(
          json::object({{"type", assistant ? "output_text" : "input_text"}, {"text", *text}}, sp));
    } else if (type == "image_url" && !assistant) {
      std::optional<Element> image = Member(part, "image_url");
      std::optional<std::string_view> url = image ? StringMember(*image, "url") : std::nullopt;
      if (!url) return InvalidArgumentError(Quote(ppath + ".image_url.url") + " must be a string");
      json::object item({{"type", "input_image"}, {"image_url", *url}}, sp);
      if (std::optional<std::string_view> detail = StringMember(*image, "detail")) {
        item["detail"] = *detail;
      } else {
        item["detail"] = "auto";
      }
      out.push_back(std::move(item));
    } else if (type == "refusal" && assistant) {
      std::optional<std::string_view> text = StringMember(part, "refusal");
      out.push_back(json::object({{"type", "refusal"}, {"refusal", text.value_or("")}}, sp));
    } else {
      return Unsupported(ppath + ".type", "only text" + std::string(assistant ? "" : " and image_url") +
                                              " parts are translated");
    }
  }
  return json::value(std::move(out));
}

Status Messages(Element messages, json::array& input) {
  const json::storage_ptr& sp = input.storage();
  simdjson::dom::array list;
  if (messages.get_array().get(list) != simdjson::SUCCESS) {
    return WrongType("messages", "an array", messages);
  }
  size_t i = 0;
  for (Element m : list) {
    const std::string path = Path("messages", i++);
    std::optional<std::string_view> role = StringMember(m, "role");
    if (!role) return InvalidArgumentError(Quote(path + ".role") + " must be a string");
    std::optional<Element> content = Member(m, "content");
    if (*role == "tool") {
      std::optional<std::string_view> id = StringMember(m, "tool_call_id");
      if (!id) return InvalidArgumentError(Quote(path + ".tool_call_id") + " must be a string");
      std::string output;
      if (content) {
        KG_ASSIGN_OR_RETURN(output, TextOf(path + ".content", *content));
      }
      input.push_back(json::object(
          {{"type", "function_call_output"}, {"call_id", *id}, {"output", output}}, sp));
      continue;
    }
    if (*role != "system" && *role != "developer" && *role != "user" && *role != "assistant") {
      return Unsupported(path + ".role", "unknown role " + Quote(*role));
    }
    const bool assistant = *role == "assistant";
    if (content) {
      KG_ASSIGN_OR_RETURN(json::value c, Content(path + ".content", *content, assistant, sp));
      if (!(c.is_string() && c.get_string().empty() && assistant)) {
        input.push_back(
            json::object({{"type", "message"}, {"role", *role}, {"content", std::move(c)}}, sp));
      }
    }
    simdjson::dom::array calls;
    if (assistant && m.at_key("tool_calls").get_array().get(calls) == simdjson::SUCCESS) {
      size_t k = 0;
      for (Element call : calls) {
        const std::string cpath = Path(path + ".tool_calls", k++);
        std::optional<std::string_view> id = StringMember(call, "id");
        std::optional<Element> fn = Member(call, "function");
        std::optional<std::string_view> name = fn ? StringMember(*fn, "name") : std::nullopt;
        std::optional<std::string_view> args = fn ? StringMember(*fn, "arguments") : std::nullopt;
        if (!id || !name) {
          return InvalidArgumentError(Quote(cpath) + " must have an id and a function.name");
        }
        input.push_back(json::object({{"type", "function_call"},
                                      {"call_id", *id},
                                      {"name", *name},
                                      {"arguments", args.value_or("{}")}},
                                     sp));
      }
    }
  }
  return OkStatus();
}

StatusOr<std::string> ChatToResponses(Element root, const TranslateOptions& options,
                                      const json::storage_ptr& sp) {
  if (!root.is_object()) return InvalidArgumentError("request body must be a JSON object");
  json::object out(sp);
  json::array input(sp);
  bool store_set = false;
  simdjson::dom::object fields = root.get_object().value_unsafe();  // named: a temporary's
  for (auto [key, value] : fields) {                                  // value would dangle
    if (IsNull(value)) continue;
    if (key == "model") {
      std::string_view model;
      if (value.get_string().get(model) != simdjson::SUCCESS) {
        return WrongType("model", "a string", value);
      }
      out["model"] = options.upstream_model.empty() ? model : options.upstream_model;
    } else if (key == "messages") {
      KG_RETURN_IF_ERROR(Messages(value, input));
    } else if (key == "max_tokens" || key == "max_completion_tokens") {
      out["max_output_tokens"] = ToBoost(value);
    } else if (key == "stream_options") {
      // Responses streams always end with usage (response.completed): nothing to ask for.
    } else if (key == "store") {
      out["store"] = ToBoost(value);
      store_set = true;
    } else if (key == "reasoning_effort") {
      out["reasoning"] = json::object{{"effort", ToBoost(value)}};
    } else if (key == "tools") {
      simdjson::dom::array tools;
      if (value.get_array().get(tools) != simdjson::SUCCESS) return WrongType("tools", "an array", value);
      json::array list;
      size_t i = 0;
      for (Element tool : tools) {
        const std::string path = Path("tools", i++);
        std::optional<Element> fn = Member(tool, "function");
        if (StringMember(tool, "type") != "function" || !fn || !StringMember(*fn, "name")) {
          return Unsupported(path, "only function tools with a name are translated");
        }
        json::object t{{"type", "function"}, {"name", *StringMember(*fn, "name")}};
        for (std::string_view k : {"description", "parameters", "strict"}) {
          if (std::optional<Element> v = Member(*fn, k)) t[k] = ToBoost(*v);
        }
        list.push_back(std::move(t));
      }
      out["tools"] = std::move(list);
    } else if (key == "tool_choice") {
      std::string_view mode;
      if (value.get_string().get(mode) == simdjson::SUCCESS) {
        out["tool_choice"] = mode;
      } else {
        std::optional<Element> fn = Member(value, "function");
        std::optional<std::string_view> name = fn ? StringMember(*fn, "name") : std::nullopt;
        if (!name) return Unsupported("tool_choice", "only a mode or a named function is translated");
        out["tool_choice"] = json::object{{"type", "function"}, {"name", *name}};
      }
    } else if (key == "response_format") {
      std::optional<std::string_view> type = StringMember(value, "type");
      if (type == "json_schema") {
        json::object format{{"type", "json_schema"}};
        if (std::optional<Element> schema = Member(value, "json_schema")) {
          for (std::string_view k : {"name", "description", "schema", "strict"}) {
            if (std::optional<Element> v = Member(*schema, k)) format[k] = ToBoost(*v);
          }
        }
        out["text"] = json::object{{"format", std::move(format)}};
      } else if (type == "json_object") {
        out["text"] = json::object{{"format", json::object{{"type", "json_object"}}}};
      } else if (type != "text") {
        return Unsupported("response_format.type", "only text, json_object and json_schema");
      }
    } else if (std::find(std::begin(kSameName), std::end(kSameName), key) != std::end(kSameName)) {
      out[key] = ToBoost(value);
    } else {
      // n = 1 and logprobs = false ask for what the upstream does anyway.
      int64_t n = 0;
      bool flag = true;
      if ((key == "n" && value.get_int64().get(n) == simdjson::SUCCESS && n == 1) ||
          (key == "logprobs" && value.get_bool().get(flag) == simdjson::SUCCESS && !flag)) {
        continue;
      }
      std::string_view why = "it has no Responses API equivalent";
      for (const RefusedRow& row : kRefused) {
        if (row.name == key) why = row.why;
      }
      return Unsupported(key, why);
    }
  }
  if (!out.contains("model")) return InvalidArgumentError("'model' is required");
  out["input"] = std::move(input);
  // Chat completions are not stored unless asked; the Responses API stores by default.
  if (!store_set) out["store"] = false;
  return internal::Serialize(out);
}

// ---------------------------------------------------------------- responses

std::string_view FinishReason(Element response, bool tool_calls) {
  std::optional<std::string_view> status = StringMember(response, "status");
  if (status == "incomplete") {
    std::optional<Element> details = Member(response, "incomplete_details");
    std::optional<std::string_view> reason = details ? StringMember(*details, "reason") : std::nullopt;
    return reason == "content_filter" ? "content_filter" : "length";
  }
  return tool_calls ? "tool_calls" : "stop";
}

// Chat usage from a Responses usage object.
json::object ChatUsage(Element u) {
  auto count = [](Element e, std::string_view key) -> int64_t {
    int64_t v = 0;
    return e.at_key(key).get_int64().get(v) == simdjson::SUCCESS ? std::max<int64_t>(v, 0) : 0;
  };
  int64_t in = count(u, "input_tokens"), out = count(u, "output_tokens");
  int64_t cached = 0, reasoning = 0;
  if (std::optional<Element> d = Member(u, "input_tokens_details")) cached = count(*d, "cached_tokens");
  if (std::optional<Element> d = Member(u, "output_tokens_details")) reasoning = count(*d, "reasoning_tokens");
  return json::object{{"prompt_tokens", in},
                      {"completion_tokens", out},
                      {"total_tokens", in + out},
                      {"prompt_tokens_details", json::object{{"cached_tokens", cached}}},
                      {"completion_tokens_details", json::object{{"reasoning_tokens", reasoning}}}};
}

StatusOr<std::string> ResponsesToChat(Element root, const ResponseOptions& options) {
  simdjson::dom::array output;
  if (!root.is_object() || root.at_key("output").get_array().get(output) != simdjson::SUCCESS) {
    return InternalError("upstream response has no output");
  }
  std::string text, reasoning, refusal;
  json::array calls;
  for (Element item : output) {
    std::optional<std::string_view> type = StringMember(item, "type");
    if (type == "message") {
      simdjson::dom::array parts;
      if (item.at_key("content").get_array().get(parts) != simdjson::SUCCESS) continue;
      for (Element part : parts) {
        std::optional<std::string_view> ptype = StringMember(part, "type");
        if (ptype == "output_text") text.append(StringMember(part, "text").value_or(""));
        if (ptype == "refusal") refusal.append(StringMember(part, "refusal").value_or(""));
      }
    } else if (type == "function_call") {
      std::optional<std::string_view> id = StringMember(item, "call_id"), name = StringMember(item, "name");
      if (!id || !name) return InternalError("upstream function_call lacks call_id or name");
      calls.push_back(json::object{
          {"id", *id},
          {"type", "function"},
          {"function", json::object{{"name", *name},
                                    {"arguments", StringMember(item, "arguments").value_or("")}}}});
    } else if (type == "reasoning") {
      simdjson::dom::array summary;
      if (item.at_key("summary").get_array().get(summary) != simdjson::SUCCESS) continue;
      for (Element part : summary) reasoning.append(StringMember(part, "text").value_or(""));
    }
  }
  json::object message{{"role", "assistant"}};
  message["content"] = text.empty() && (!calls.empty() || !refusal.empty()) ? json::value(nullptr)
                                                                            : json::value(text);
  if (!refusal.empty()) message["refusal"] = refusal;
  if (!reasoning.empty()) message["reasoning_content"] = reasoning;
  const bool has_calls = !calls.empty();
  if (has_calls) message["tool_calls"] = std::move(calls);
  int64_t created = options.created;
  if (root.at_key("created_at").get_int64().get(created) != simdjson::SUCCESS) created = options.created;
  json::object out{{"id", StringMember(root, "id").value_or("")},
                   {"object", "chat.completion"},
                   {"created", created},
                   {"model", options.client_model},
                   {"choices", json::array{json::object{{"index", 0},
                                                        {"message", std::move(message)},
                                                        {"logprobs", nullptr},
                                                        {"finish_reason", FinishReason(root, has_calls)}}}}};
  if (std::optional<Element> u = Member(root, "usage"); u && u->is_object()) out["usage"] = ChatUsage(*u);
  return internal::Serialize(out);
}

}  // namespace

StatusOr<std::string> OpenAIChatToResponsesRequest(std::string_view body,
                                                   const TranslateOptions& options) {
  return internal::TranslateRequestInArena(body, [&](Element root, const json::storage_ptr& sp) {
    return ChatToResponses(root, options, sp);
  });
}

StatusOr<std::string> ResponsesToOpenAIChatResponse(std::string_view body,
                                                    const ResponseOptions& options) {
  return internal::ParseAndTranslate(body, internal::BodyKind::kResponse, [&](Element root) {
    return ResponsesToChat(root, options);
  });
}

// ---------------------------------------------------------------- stream

ResponsesToOpenAIStream::ResponsesToOpenAIStream(const Options& options)
    : chunks_(options.client_model, options.created, options.include_usage),
      max_event_bytes_(options.max_event_bytes),
      splitter_(options.max_event_bytes) {}

void ResponsesToOpenAIStream::Feed(std::string_view bytes, std::string& out) {
  if (state_ != State::kRunning) return;
  auto running = [this] { return state_ == State::kRunning; };
  if (!internal::FeedEvents(splitter_, bytes, running,
                            [&](std::string_view data) { OnData(data, out); })) {
    Fail(InternalError(internal::OversizedMessage(max_event_bytes_)), out);
  }
  if (state_ != State::kRunning) splitter_ = provider::SseSplitter(0);
}

void ResponsesToOpenAIStream::Finish(std::string& out) {
  if (state_ == State::kRunning) {
    internal::FinishEvents(splitter_, [&](std::string_view data) { OnData(data, out); });
  }
  if (state_ == State::kRunning) {
    Fail(UnavailableError("upstream stream ended before response.completed"), out);
  }
  splitter_ = provider::SseSplitter(0);
}

void ResponsesToOpenAIStream::Chunk(std::string_view delta, std::string_view finish,
                                    std::string& out) {
  chunks_.Chunk(delta, finish, out);
}

void ResponsesToOpenAIStream::Fail(Status status, std::string& out) {
  internal::ChatChunkWriter::Error(status.message(), "upstream_error", out);
  status_ = std::move(status);
  state_ = State::kFailed;
}

void ResponsesToOpenAIStream::Start(std::string_view id, std::string& out) {
  if (chunks_.has_id()) return;
  chunks_.SetId(id);
  Chunk(R"({"role":"assistant","content":""})", "null", out);
}

void ResponsesToOpenAIStream::OnData(std::string_view data, std::string& out) {
  provider::internal::DomParser parser(data.size());
  Element root;
  if (parser.Parse(data, root) != simdjson::SUCCESS || !root.is_object()) return;
  std::optional<std::string_view> type = StringMember(root, "type");
  if (!type) return;
  std::optional<Element> response = Member(root, "response");
  Start(response ? StringMember(*response, "id").value_or("") : "", out);

  std::string delta;
  if (*type == "response.output_text.delta" || *type == "response.refusal.delta" ||
      *type == "response.reasoning_summary_text.delta" || *type == "response.reasoning_text.delta") {
    std::string_view text = StringMember(root, "delta").value_or("");
    if (text.empty()) return;
    const bool reasoning = type->starts_with("response.reasoning");
    delta = reasoning ? R"({"reasoning_content":)" : R"({"content":)";
    AppendJsonString(delta, text);
    delta.push_back('}');
    Chunk(delta, "null", out);
  } else if (*type == "response.output_item.added") {
    std::optional<Element> item = Member(root, "item");
    if (!item || StringMember(*item, "type") != "function_call") return;
    const int tool = static_cast<int>(tools_.size());
    tools_[std::string(StringMember(*item, "id").value_or(""))] = tool;
    delta = R"({"tool_calls":[{"index":)" + std::to_string(tool) + R"(,"id":)";
    AppendJsonString(delta, StringMember(*item, "call_id").value_or(""));
    delta.append(R"(,"type":"function","function":{"name":)");
    AppendJsonString(delta, StringMember(*item, "name").value_or(""));
    delta.append(R"(,"arguments":)");
    AppendJsonString(delta, StringMember(*item, "arguments").value_or(""));
    delta.append("}}]}");
    Chunk(delta, "null", out);
  } else if (*type == "response.function_call_arguments.delta") {
    auto it = tools_.find(std::string(StringMember(root, "item_id").value_or("")));
    std::string_view args = StringMember(root, "delta").value_or("");
    if (it == tools_.end() || args.empty()) return;
    delta = R"({"tool_calls":[{"index":)" + std::to_string(it->second) + R"(,"function":{"arguments":)";
    AppendJsonString(delta, args);
    delta.append("}}]}");
    Chunk(delta, "null", out);
  } else if (*type == "response.completed" || *type == "response.incomplete") {
    if (!response) return;
    std::string finish = "\"";
    finish.append(FinishReason(*response, !tools_.empty()));
    finish.push_back('"');
    Chunk("{}", finish, out);
    if (std::optional<Element> u = Member(*response, "usage"); u && u->is_object()) {
      json::object usage = ChatUsage(*u);
      usage_.present = true;
      usage_.input_tokens = usage["prompt_tokens"].as_int64();
      usage_.output_tokens = usage["completion_tokens"].as_int64();
      usage_.cache_read_tokens = usage["prompt_tokens_details"].as_object()["cached_tokens"].as_int64();
      chunks_.UsageChunk(internal::Serialize(usage), out);
    }
    internal::ChatChunkWriter::Done(out);
    state_ = State::kDone;
  } else if (*type == "response.failed" || *type == "error") {
    std::string message = "upstream stream error";
    std::optional<Element> err = response ? Member(*response, "error") : Member(root, "error");
    if (err) message = std::string(StringMember(*err, "message").value_or(message));
    if (*type == "error") message = std::string(StringMember(root, "message").value_or(message));
    Fail(UnavailableError(message), out);
  }
  // response.created, .in_progress, content_part.*, *.done and the rest: nothing for the client.
}

}  // namespace keygate::translate
