// OpenAI Chat Completions request -> Anthropic Messages request, and Anthropic Messages response
// -> OpenAI chat.completion response (non-streaming). The tables these implement, with the
// reasons for each refusal, are in docs/translation.md; keep the two in agreement.
//
// Requests are read with the simdjson DOM (it validates: malformed JSON is a 400) and built with
// Boost.JSON, whose objects keep insertion order, so the output is deterministic.
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
using simdjson::dom::element_type;

constexpr int64_t kMinThinkingBudget = 1024;  // Anthropic's minimum budget_tokens

Status Unsupported(std::string_view field, std::string_view why) {
  return InvalidArgumentError("unsupported parameter " + Quote(field) +
                              " for an Anthropic model: " + std::string(why));
}

double NumberValue(Element e) {
  switch (e.type()) {
    case element_type::INT64:
      return static_cast<double>(e.get_int64().value_unsafe());
    case element_type::UINT64:
      return static_cast<double>(e.get_uint64().value_unsafe());
    default:
      return e.get_double().value_unsafe();
  }
}

// A positive integer (12.0 counts, as OpenAI accepts it).
StatusOr<int64_t> PositiveInt(std::string_view path, Element e) {
  int64_t i = 0;
  if (e.get_int64().get(i) != simdjson::SUCCESS) {
    double d = 0;
    if (e.type() != element_type::DOUBLE || e.get_double().get(d) != simdjson::SUCCESS || d < 1 ||
        d > 9.0e15 || static_cast<double>(static_cast<int64_t>(d)) != d) {
      return InvalidArgumentError(Quote(path) + " must be a positive integer");
    }
    i = static_cast<int64_t>(d);
  }
  if (i < 1) return InvalidArgumentError(Quote(path) + " must be a positive integer");
  return i;
}

// ---------------------------------------------------------------- request

class RequestTranslator : private internal::ArenaBuilder {
 public:
  // Every value of the tree is made with `sp`, the request's arena (internal::ArenaBuilder).
  RequestTranslator(const TranslateOptions& options, json::storage_ptr sp)
      : ArenaBuilder(std::move(sp)), options_(options), system_(sp_), messages_(sp_), tools_(sp_) {}

  StatusOr<std::string> Run(Element root);

 private:
  Status Messages(Element messages);
  Status SystemContent(const std::string& path, Element content);
  // Text parts (and, when `images`, image parts) of a user/system/tool message.
  StatusOr<json::value> UserContent(const std::string& path, Element content, bool images);
  StatusOr<json::object> TextPart(const std::string& path, Element part);
  StatusOr<json::object> ImagePart(const std::string& path, Element part);
  Status AssistantMessage(const std::string& path, Element message);
  Status ToolMessage(const std::string& path, Element message);
  Status CheckMessageKeys(const std::string& path, Element message, std::string_view role);
  // Appends a message, merging it into the previous one of the same role (Anthropic wants
  // alternating turns; consecutive tool results become one user message).
  void Append(std::string_view role, json::value content);
  Status Tools(Element tools);
  StatusOr<json::object> ToolChoice(Element choice);

  const TranslateOptions& options_;
  json::array system_;
  json::array messages_;
  json::array tools_;
};

// Top-level fields: what each one becomes. An unknown field is refused, since it may carry
// meaning the upstream would silently lose; docs/translation.md has the same table.
enum class Field {
  kModel,
  kMessages,
  kMaxTokens,
  kMaxCompletionTokens,
  kTemperature,
  kTopP,
  kStop,
  kStream,
  kStreamOptions,
  kN,
  kLogprobs,
  kTopLogprobs,
  kPresencePenalty,
  kFrequencyPenalty,
  kLogitBias,
  kSeed,
  kUser,
  kSafetyIdentifier,
  kTools,
  kToolChoice,
  kParallelToolCalls,
  kResponseFormat,
  kReasoningEffort,
  kMetadata,
  kStore,
  kServiceTier,
  kModalities,
  kPromptCacheKey,
};
struct FieldRow {
  std::string_view name;
  Field field;
};
constexpr FieldRow kFields[] = {
    {"model", Field::kModel},
    {"messages", Field::kMessages},
    {"max_tokens", Field::kMaxTokens},
    {"max_completion_tokens", Field::kMaxCompletionTokens},
    {"temperature", Field::kTemperature},
    {"top_p", Field::kTopP},
    {"stop", Field::kStop},
    {"stream", Field::kStream},
    {"stream_options", Field::kStreamOptions},
    {"n", Field::kN},
    {"logprobs", Field::kLogprobs},
    {"top_logprobs", Field::kTopLogprobs},
    {"presence_penalty", Field::kPresencePenalty},
    {"frequency_penalty", Field::kFrequencyPenalty},
    {"logit_bias", Field::kLogitBias},
    {"seed", Field::kSeed},
    {"user", Field::kUser},
    {"safety_identifier", Field::kSafetyIdentifier},
    {"tools", Field::kTools},
    {"tool_choice", Field::kToolChoice},
    {"parallel_tool_calls", Field::kParallelToolCalls},
    {"response_format", Field::kResponseFormat},
    {"reasoning_effort", Field::kReasoningEffort},
    {"metadata", Field::kMetadata},
    {"store", Field::kStore},
    {"service_tier", Field::kServiceTier},
    {"modalities", Field::kModalities},
    {"prompt_cache_key", Field::kPromptCacheKey},
};
constexpr size_t kFieldCount = sizeof(kFields) / sizeof(kFields[0]);

// Known OpenAI fields with no Anthropic counterpart, with the reason given to the client.
struct RefusedRow {
  std::string_view name, why;
};
constexpr RefusedRow kRefused[] = {
    {"audio", "audio output is not available"},
    {"prediction", "predicted outputs are not available"},
    {"web_search_options", "OpenAI's web search is not available"},
    {"functions", "use 'tools' instead of the deprecated 'functions'"},
    {"function_call", "use 'tool_choice' instead of the deprecated 'function_call'"},
    {"verbosity", "there is no verbosity control"},
};

StatusOr<std::string> RequestTranslator::Run(Element root) {
  if (!root.is_object()) return InvalidArgumentError("request body must be a JSON object");
  std::optional<Element> fields[kFieldCount];
  std::set<std::string_view> seen;
  simdjson::dom::object root_object = root.get_object().value_unsafe();
  for (auto member : root_object) {
    std::string_view key = member.key;
    if (!seen.insert(key).second) {
      return InvalidArgumentError("duplicate key " + Quote(key) + " in request body");
    }
    bool known = false;
    for (size_t i = 0; i < kFieldCount; ++i) {
      if (kFields[i].name == key) {
        if (!IsNull(member.value)) fields[i] = member.value;
        known = true;
        break;
      }
    }
    if (known) continue;
    for (const RefusedRow& row : kRefused) {
      if (row.name == key) return Unsupported(key, row.why);
    }
    return Unsupported(key, "it has no Anthropic Messages equivalent");
  }
  auto get = [&](Field f) -> std::optional<Element>& { return fields[static_cast<size_t>(f)]; };
  auto name = [](Field f) { return kFields[static_cast<size_t>(f)].name; };

  json::object out(sp_);

  // model
  std::string_view model;
  if (!get(Field::kModel) || get(Field::kModel)->get_string().get(model) != simdjson::SUCCESS ||
      model.empty()) {
    return InvalidArgumentError("'model' must be a non-empty string");
  }
  out["model"] = options_.upstream_model.empty() ? model : options_.upstream_model;

  // max_tokens: Anthropic requires it. max_completion_tokens (the newer name, which counts
  // reasoning tokens too, as Anthropic's max_tokens counts thinking) wins over max_tokens.
  int64_t max_tokens = options_.default_max_tokens;
  std::string_view max_tokens_field;
  for (Field f : {Field::kMaxTokens, Field::kMaxCompletionTokens}) {
    if (!get(f)) continue;
    KG_ASSIGN_OR_RETURN(max_tokens, PositiveInt(name(f), *get(f)));
    max_tokens_field = name(f);
  }
  if (max_tokens < 1) return InvalidArgumentError("no 'max_tokens' and no default for the model");
  out["max_tokens"] = max_tokens;

  if (!get(Field::kMessages)) return InvalidArgumentError("'messages' is required");
  KG_RETURN_IF_ERROR(Messages(*get(Field::kMessages)));

  // Sampling. Anthropic's temperature range is [0, 1]; OpenAI's is [0, 2]. Values above 1 are
  // refused rather than clamped: a client asking for 1.5 should learn it did not get it.
  std::optional<double> temperature, top_p;
  if (get(Field::kTemperature)) {
    if (!IsNumber(*get(Field::kTemperature))) {
      return WrongType("temperature", "a number", *get(Field::kTemperature));
    }
    temperature = NumberValue(*get(Field::kTemperature));
    if (*temperature < 0 || *temperature > 1) {
      return Unsupported("temperature", "it must be between 0 and 1 (OpenAI allows up to 2)");
    }
  }
  if (get(Field::kTopP)) {
    if (!IsNumber(*get(Field::kTopP))) return WrongType("top_p", "a number", *get(Field::kTopP));
    top_p = NumberValue(*get(Field::kTopP));
  }

  // stop: a string or an array of strings.
  json::array stop_sequences(sp_);
  if (std::optional<Element> stop = get(Field::kStop)) {
    std::string_view s;
    if (stop->get_string().get(s) == simdjson::SUCCESS) {
      stop_sequences.emplace_back(s);
    } else if (stop->is_array()) {
      size_t i = 0;
      simdjson::dom::array items = stop->get_array().value_unsafe();
      for (Element item : items) {
        if (item.get_string().get(s) != simdjson::SUCCESS) {
          return WrongType(Path("stop", i), "a string", item);
        }
        stop_sequences.emplace_back(s);
        ++i;
      }
    } else {
      return WrongType("stop", "a string or an array of strings", *stop);
    }
  }

  bool stream = false;
  if (get(Field::kStream) && get(Field::kStream)->get_bool().get(stream) != simdjson::SUCCESS) {
    return WrongType("stream", "a boolean", *get(Field::kStream));
  }
  if (get(Field::kStreamOptions) && !get(Field::kStreamOptions)->is_object()) {
    return WrongType("stream_options", "an object", *get(Field::kStreamOptions));
  }

  // Fields accepted only at their neutral value.
  if (get(Field::kN)) {
    int64_t n = 0;
    if (get(Field::kN)->get_int64().get(n) != simdjson::SUCCESS || n != 1) {
      return Unsupported("n", "only one choice is returned (n must be 1)");
    }
  }
  bool logprobs = false;
  if (get(Field::kLogprobs) &&
      (get(Field::kLogprobs)->get_bool().get(logprobs) != simdjson::SUCCESS || logprobs)) {
    return Unsupported("logprobs", "log probabilities are not available");
  }
  if (get(Field::kTopLogprobs)) {
    return Unsupported("top_logprobs", "log probabilities are not available");
  }
  for (Field f : {Field::kPresencePenalty, Field::kFrequencyPenalty}) {
    if (get(f) && (!IsNumber(*get(f)) || NumberValue(*get(f)) != 0)) {
      return Unsupported(name(f), "there are no repetition penalties (only 0 is accepted)");
    }
  }
  if (get(Field::kLogitBias)) {
    simdjson::dom::object bias;
    if (get(Field::kLogitBias)->get_object().get(bias) != simdjson::SUCCESS || bias.size() != 0) {
      return Unsupported("logit_bias", "token biases are not available");
    }
  }
  // Structured output: a forced tool whose input schema is the requested one; the response
  // translators turn its input back into message content (see kStructuredOutputTool).
  std::optional<json::object> structured_tool;
  if (std::optional<Element> format = get(Field::kResponseFormat)) {
    std::optional<Element> type = Member(*format, "type");
    std::string_view t;
    if (!type || type->get_string().get(t) != simdjson::SUCCESS) {
      return InvalidArgumentError("'response_format.type' must be a string");
    }
    if (t == "json_schema" || t == "json_object") {
      json::value schema = Obj({{"type", "object"}});
      std::string description = "Give your answer by calling this tool: its input is the answer.";
      if (t == "json_schema") {
        std::optional<Element> js = Member(*format, "json_schema");
        std::optional<Element> sch = js ? Member(*js, "schema") : std::nullopt;
        std::string_view top;
        if (!sch || !sch->is_object() || sch->at_key("type").get_string().get(top) != simdjson::SUCCESS ||
            top != "object") {
          return Unsupported("response_format.json_schema.schema",
                             "Anthropic tool inputs are objects: the schema must have \"type\": \"object\"");
        }
        schema = internal::ToBoost(*sch, sp_);
        std::string_view d;
        if (js->at_key("description").get_string().get(d) == simdjson::SUCCESS) {
          description += " " + std::string(d);
        }
      }
      if (get(Field::kTools) || get(Field::kToolChoice)) {
        return Unsupported("response_format", std::string(t) +
                                                  " is translated as a forced tool and cannot be "
                                                  "combined with tools or tool_choice");
      }
      structured_tool = Obj({{"name", kStructuredOutputTool},
                             {"description", description},
                             {"input_schema", std::move(schema)}});
    } else if (t != "text") {
      return Unsupported("response_format.type", "only text, json_object and json_schema");
    }
  }
  if (get(Field::kModalities)) {
    simdjson::dom::array m;
    std::string_view only;
    if (get(Field::kModalities)->get_array().get(m) != simdjson::SUCCESS || m.size() != 1 ||
        m.at(0).get_string().get(only) != simdjson::SUCCESS || only != "text") {
      return Unsupported("modalities", "only [\"text\"] output is available");
    }
  }
  // Accepted and ignored (docs/translation.md says why each is harmless): seed, metadata, store,
  // service_tier, prompt_cache_key. Their types are still checked, so a typo is not ignored too.
  if (get(Field::kSeed) && !IsNumber(*get(Field::kSeed))) {
    return WrongType("seed", "an integer", *get(Field::kSeed));
  }
  if (get(Field::kMetadata) && !get(Field::kMetadata)->is_object()) {
    return WrongType("metadata", "an object", *get(Field::kMetadata));
  }
  if (get(Field::kStore) && !get(Field::kStore)->is_bool()) {
    return WrongType("store", "a boolean", *get(Field::kStore));
  }
  for (Field f : {Field::kServiceTier, Field::kPromptCacheKey}) {
    if (get(f) && !get(f)->is_string()) return WrongType(name(f), "a string", *get(f));
  }

  // Tools.
  if (get(Field::kTools)) KG_RETURN_IF_ERROR(Tools(*get(Field::kTools)));
  std::optional<json::object> tool_choice;
  if (get(Field::kToolChoice)) {
    KG_ASSIGN_OR_RETURN(tool_choice, ToolChoice(*get(Field::kToolChoice)));
  }
  const bool forced_json = structured_tool.has_value();
  if (structured_tool) {
    tools_.push_back(std::move(*structured_tool));
    tool_choice = Obj({{"type", "tool"}, {"name", kStructuredOutputTool}});
  }
  bool parallel = true;
  if (get(Field::kParallelToolCalls) &&
      get(Field::kParallelToolCalls)->get_bool().get(parallel) != simdjson::SUCCESS) {
    return WrongType("parallel_tool_calls", "a boolean", *get(Field::kParallelToolCalls));
  }
  if (!parallel && !tools_.empty()) {
    // Anthropic carries this on tool_choice; "none" calls no tool, so there is nothing to limit.
    if (!tool_choice) tool_choice = Obj({{"type", "auto"}});
    if ((*tool_choice)["type"] != "none") (*tool_choice)["disable_parallel_tool_use"] = true;
  }

  // Reasoning: a thinking budget from the table, kept below max_tokens (which counts thinking).
  std::optional<int64_t> budget;
  if (std::optional<Element> effort = get(Field::kReasoningEffort)) {
    std::string_view e;
    if (effort->get_string().get(e) != simdjson::SUCCESS) {
      return WrongType("reasoning_effort", "a string", *effort);
    }
    const ThinkingBudgets& b = options_.thinking_budgets;
    if (e == "minimal" || e == "low") {
      budget = b.low;
    } else if (e == "medium") {
      budget = b.medium;
    } else if (e == "high") {
      budget = b.high;
    } else if (e != "none") {
      return InvalidArgumentError(
          "'reasoning_effort' must be one of none, minimal, low, medium, high");
    }
    if (budget) {
      budget = std::min(*budget, max_tokens - 1);
      if (*budget < kMinThinkingBudget) {
        return InvalidArgumentError(
            Quote(max_tokens_field.empty() ? "max_tokens" : max_tokens_field) + " (" +
            std::to_string(max_tokens) + ") leaves no room for reasoning_effort " + Quote(e) +
            ": Anthropic needs a thinking budget of at least 1024 tokens below max_tokens");
      }
      // Anthropic's rules for extended thinking, refused here with the field named.
      if (temperature && *temperature != 1) {
        return Unsupported("temperature", "it cannot be combined with reasoning_effort");
      }
      if (top_p && (*top_p < 0.95 || *top_p > 1)) {
        return Unsupported("top_p", "with reasoning_effort it must be between 0.95 and 1");
      }
      if (forced_json) {
        return Unsupported("response_format",
                           "json output is a forced tool, which cannot be combined with "
                           "reasoning_effort");
      }
      if (tool_choice && ((*tool_choice)["type"] == "any" || (*tool_choice)["type"] == "tool")) {
        return Unsupported("tool_choice",
                           "forcing a tool call cannot be combined with reasoning_effort");
      }
    }
  }

  // Assemble, in the order Anthropic documents its fields.
  if (!system_.empty()) {
    // One plain system prompt stays a string; several (or any with cache_control) stay blocks.
    if (system_.size() == 1 && system_[0].as_object().size() == 2) {
      out["system"] = system_[0].as_object()["text"];
    } else {
      out["system"] = std::move(system_);
    }
  }
  out["messages"] = std::move(messages_);
  if (!tools_.empty()) out["tools"] = std::move(tools_);
  if (tool_choice) out["tool_choice"] = std::move(*tool_choice);
  if (!stop_sequences.empty()) out["stop_sequences"] = std::move(stop_sequences);
  if (temperature) out["temperature"] = internal::ToBoost(*get(Field::kTemperature));
  if (top_p) out["top_p"] = internal::ToBoost(*get(Field::kTopP));
  if (budget) out["thinking"] = Obj({{"type", "enabled"}, {"budget_tokens", *budget}});
  // user (or the newer safety_identifier) identifies the end user: Anthropic's metadata.user_id.
  for (Field f : {Field::kUser, Field::kSafetyIdentifier}) {
    if (!get(f)) continue;
    std::string_view user;
    if (get(f)->get_string().get(user) != simdjson::SUCCESS) {
      return WrongType(name(f), "a string", *get(f));
    }
    if (!out.contains("metadata") && !user.empty()) {
      out["metadata"] = Obj({{"user_id", user}});
    }
  }
  if (stream) out["stream"] = true;
  return internal::Serialize(out);
}

Status RequestTranslator::Messages(Element messages) {
  simdjson::dom::array list;
  if (messages.get_array().get(list) != simdjson::SUCCESS) {
    return WrongType("messages", "an array", messages);
  }
  if (list.size() == 0) return InvalidArgumentError("'messages' must not be empty");
  size_t i = 0;
  for (Element message : list) {
    const std::string path = Path("messages", i++);
    if (!message.is_object()) return WrongType(path, "an object", message);
    std::optional<Element> role_el = Member(message, "role");
    std::string_view role;
    if (!role_el || role_el->get_string().get(role) != simdjson::SUCCESS) {
      return InvalidArgumentError(Quote(path + ".role") + " must be a string");
    }
    KG_RETURN_IF_ERROR(CheckMessageKeys(path, message, role));
    if (role == "system" || role == "developer") {
      // Anthropic has one system prompt, outside the turns: every system/developer message joins
      // it, in order, wherever it stood in the conversation.
      std::optional<Element> content = Member(message, "content");
      if (!content) return InvalidArgumentError(Quote(path + ".content") + " is required");
      KG_RETURN_IF_ERROR(SystemContent(path + ".content", *content));
    } else if (role == "user") {
      std::optional<Element> content = Member(message, "content");
      if (!content) return InvalidArgumentError(Quote(path + ".content") + " is required");
      KG_ASSIGN_OR_RETURN(json::value c, UserContent(path + ".content", *content, true));
      Append("user", std::move(c));
    } else if (role == "assistant") {
      KG_RETURN_IF_ERROR(AssistantMessage(path, message));
    } else if (role == "tool") {
      KG_RETURN_IF_ERROR(ToolMessage(path, message));
    } else if (role == "function") {
      return Unsupported(path + ".role",
                         "use 'tool' messages instead of the deprecated 'function'");
    } else {
      return InvalidArgumentError(Quote(path + ".role") + " " + Quote(role) +
                                  " is not one of system, developer, user, assistant, tool");
    }
  }
  return OkStatus();
}

// Message members by role. `name` (a participant label) has no Anthropic place and is ignored;
// an assistant's `reasoning_content` and `annotations` (from an earlier response) are ignored:
// Anthropic accepts earlier thinking only with its signature, which OpenAI clients do not keep.
Status RequestTranslator::CheckMessageKeys(const std::string& path, Element message,
                                           std::string_view role) {
  simdjson::dom::object members = message.get_object().value_unsafe();
  for (auto member : members) {
    std::string_view k = member.key;
    if (k == "role" || k == "content" || k == "name") continue;
    if (role == "assistant" &&
        (k == "tool_calls" || k == "refusal" || k == "reasoning_content" || k == "annotations")) {
      continue;
    }
    if (role == "tool" && k == "tool_call_id") continue;
    if (k == "cache_control") {
      return Unsupported(path + ".cache_control", "put cache_control on a content part instead");
    }
    if (IsNull(member.value)) continue;
    return Unsupported(path + "." + std::string(k), "it has no Anthropic Messages equivalent");
  }
  return OkStatus();
}

StatusOr<json::object> RequestTranslator::TextPart(const std::string& path, Element part) {
  std::optional<Element> text = Member(part, "text");
  std::string_view t;
  if (!text || text->get_string().get(t) != simdjson::SUCCESS) {
    return InvalidArgumentError(Quote(path + ".text") + " must be a string");
  }
  json::object block = Obj({{"type", "text"}, {"text", t}});
  // cache_control on a part (the LiteLLM/OpenRouter extension of OpenAI's format) is Anthropic's
  // own prompt-caching hint: carried over as is.
  if (std::optional<Element> cc = Member(part, "cache_control")) {
    if (!cc->is_object()) return WrongType(path + ".cache_control", "an object", *cc);
    block["cache_control"] = internal::ToBoost(*cc, sp_);
  }
  return block;
}

StatusOr<json::object> RequestTranslator::ImagePart(const std::string& path, Element part) {
  std::optional<Element> image = Member(part, "image_url");
  std::string_view url;
  if (image && image->is_object()) {
    std::optional<Element> u = Member(*image, "url");
    if (!u || u->get_string().get(url) != simdjson::SUCCESS) {
      return InvalidArgumentError(Quote(path + ".image_url.url") + " must be a string");
    }
    // image_url.detail has no Anthropic counterpart (Anthropic sizes images itself): ignored.
  } else if (!image || image->get_string().get(url) != simdjson::SUCCESS) {
    return InvalidArgumentError(Quote(path + ".image_url") + " must be an object with a url");
  }
  json::object source(sp_);
  if (url.starts_with("data:")) {
    // data:<media type>;base64,<data>
    size_t comma = url.find(',');
    std::string_view meta = url.substr(5, comma == std::string_view::npos ? 0 : comma - 5);
    if (comma == std::string_view::npos || !meta.ends_with(";base64")) {
      return InvalidArgumentError(Quote(path + ".image_url.url") +
                                  " must be a base64 data URL (data:image/png;base64,…)");
    }
    meta.remove_suffix(7);
    source = {{"type", "base64"}, {"media_type", meta}, {"data", url.substr(comma + 1)}};
  } else if (url.starts_with("http://") || url.starts_with("https://")) {
    source = {{"type", "url"}, {"url", url}};
  } else {
    return InvalidArgumentError(Quote(path + ".image_url.url") +
                                " must be an http(s) URL or a base64 data URL");
  }
  json::object block = Obj({{"type", "image"}, {"source", std::move(source)}});
  if (std::optional<Element> cc = Member(part, "cache_control")) {
    if (!cc->is_object()) return WrongType(path + ".cache_control", "an object", *cc);
    block["cache_control"] = internal::ToBoost(*cc, sp_);
  }
  return block;
}

StatusOr<json::value> RequestTranslator::UserContent(const std::string& path, Element content,
                                                     bool images) {
  std::string_view s;
  if (content.get_string().get(s) == simdjson::SUCCESS) return json::value(json::string(s, sp_));
  simdjson::dom::array parts;
  if (content.get_array().get(parts) != simdjson::SUCCESS) {
    return WrongType(path, "a string or an array of content parts", content);
  }
  json::array blocks(sp_);
  size_t j = 0;
  for (Element part : parts) {
    const std::string part_path = Path(path, j++);
    std::optional<Element> type_el = Member(part, "type");
    std::string_view type;
    if (!part.is_object() || !type_el || type_el->get_string().get(type) != simdjson::SUCCESS) {
      return InvalidArgumentError(Quote(part_path) + " must be an object with a string 'type'");
    }
    if (type == "text") {
      KG_ASSIGN_OR_RETURN(json::object block, TextPart(part_path, part));
      // Anthropic refuses empty text blocks; an empty part carries nothing.
      if (block["text"].as_string().empty() && !block.contains("cache_control")) continue;
      blocks.push_back(std::move(block));
    } else if (type == "image_url" && images) {
      KG_ASSIGN_OR_RETURN(json::object block, ImagePart(part_path, part));
      blocks.push_back(std::move(block));
    } else {
      return Unsupported(part_path + ".type",
                         "content part type " + Quote(type) + " is not translated here");
    }
  }
  return json::value(std::move(blocks));
}

Status RequestTranslator::SystemContent(const std::string& path, Element content) {
  std::string_view s;
  if (content.get_string().get(s) == simdjson::SUCCESS) {
    if (!s.empty()) system_.push_back(Obj({{"type", "text"}, {"text", s}}));
    return OkStatus();
  }
  KG_ASSIGN_OR_RETURN(json::value blocks, UserContent(path, content, /*images=*/false));
  for (json::value& b : blocks.as_array()) system_.push_back(std::move(b));
  return OkStatus();
}

Status RequestTranslator::AssistantMessage(const std::string& path, Element message) {
  json::array blocks(sp_);
  std::optional<Element> content = Member(message, "content");
  std::optional<Element> calls = Member(message, "tool_calls");
  if (content) {
    std::string_view s;
    if (content->get_string().get(s) == simdjson::SUCCESS) {
      if (!calls) {
        Append("assistant", json::string(s, sp_));
        return OkStatus();
      }
      if (!s.empty()) blocks.push_back(Obj({{"type", "text"}, {"text", s}}));
    } else if (content->is_array()) {
      size_t j = 0;
      simdjson::dom::array parts = content->get_array().value_unsafe();
      for (Element part : parts) {
        const std::string part_path = Path(path + ".content", j++);
        std::optional<Element> type_el = Member(part, "type");
        std::string_view type;
        if (!part.is_object() || !type_el || type_el->get_string().get(type) != simdjson::SUCCESS) {
          return InvalidArgumentError(Quote(part_path) + " must be an object with a string 'type'");
        }
        if (type == "text") {
          KG_ASSIGN_OR_RETURN(json::object block, TextPart(part_path, part));
          if (block["text"].as_string().empty() && !block.contains("cache_control")) continue;
          blocks.push_back(std::move(block));
        } else if (type == "refusal") {
          // An earlier refusal is what the assistant said: it stays in the transcript as text.
          std::optional<Element> r = Member(part, "refusal");
          std::string_view t;
          if (!r || r->get_string().get(t) != simdjson::SUCCESS) {
            return InvalidArgumentError(Quote(part_path + ".refusal") + " must be a string");
          }
          if (!t.empty()) blocks.push_back(Obj({{"type", "text"}, {"text", t}}));
        } else {
          return Unsupported(part_path + ".type", "assistant content part type " + Quote(type) +
                                                      " is not translated here");
        }
      }
    } else {
      return WrongType(path + ".content", "a string or an array of content parts", *content);
    }
  }
  if (std::optional<Element> refusal = Member(message, "refusal")) {
    std::string_view t;
    if (refusal->get_string().get(t) != simdjson::SUCCESS) {
      return WrongType(path + ".refusal", "a string", *refusal);
    }
    if (!t.empty() && blocks.empty()) blocks.push_back(Obj({{"type", "text"}, {"text", t}}));
  }
  if (calls) {
    simdjson::dom::array list;
    if (calls->get_array().get(list) != simdjson::SUCCESS) {
      return WrongType(path + ".tool_calls", "an array", *calls);
    }
    size_t k = 0;
    for (Element call : list) {
      const std::string call_path = Path(path + ".tool_calls", k++);
      if (!call.is_object()) return WrongType(call_path, "an object", call);
      std::string_view id, type = "function", fn_name, arguments;
      std::optional<Element> id_el = Member(call, "id");
      if (!id_el || id_el->get_string().get(id) != simdjson::SUCCESS || id.empty()) {
        return InvalidArgumentError(Quote(call_path + ".id") + " must be a non-empty string");
      }
      if (std::optional<Element> t = Member(call, "type")) {
        if (t->get_string().get(type) != simdjson::SUCCESS || type != "function") {
          return Unsupported(call_path + ".type", "only function tool calls are translated");
        }
      }
      std::optional<Element> fn = Member(call, "function");
      std::optional<Element> name_el = fn ? Member(*fn, "name") : std::nullopt;
      if (!name_el || name_el->get_string().get(fn_name) != simdjson::SUCCESS) {
        return InvalidArgumentError(Quote(call_path + ".function.name") + " must be a string");
      }
      if (std::optional<Element> a = Member(*fn, "arguments")) {
        if (a->get_string().get(arguments) != simdjson::SUCCESS) {
          return WrongType(call_path + ".function.arguments", "a string", *a);
        }
      }
      // Anthropic wants the input as an object; "" (some clients send it for no arguments) is {}.
      json::value input = json::object(sp_);
      if (arguments.find_first_not_of(" \t\r\n") != std::string_view::npos) {
        std::optional<json::value> parsed = internal::ParseBoost(arguments);
        if (!parsed) {
          return InvalidArgumentError(Quote(call_path + ".function.arguments") +
                                      " is not valid JSON");
        }
        if (!parsed->is_object()) {
          return InvalidArgumentError(Quote(call_path + ".function.arguments") +
                                      " must encode a JSON object");
        }
        input = std::move(*parsed);
      }
      blocks.push_back(
          Obj({{"type", "tool_use"}, {"id", id}, {"name", fn_name}, {"input", std::move(input)}}));
    }
  }
  if (blocks.empty()) {
    return InvalidArgumentError(Quote(path) + ": an assistant message needs content or tool_calls");
  }
  Append("assistant", std::move(blocks));
  return OkStatus();
}

Status RequestTranslator::ToolMessage(const std::string& path, Element message) {
  std::optional<Element> id_el = Member(message, "tool_call_id");
  std::string_view id;
  if (!id_el || id_el->get_string().get(id) != simdjson::SUCCESS || id.empty()) {
    return InvalidArgumentError(Quote(path + ".tool_call_id") + " must be a non-empty string");
  }
  json::object result = Obj({{"type", "tool_result"}, {"tool_use_id", id}});
  if (std::optional<Element> content = Member(message, "content")) {
    KG_ASSIGN_OR_RETURN(json::value c, UserContent(path + ".content", *content, true));
    if (!(c.is_array() && c.as_array().empty())) result["content"] = std::move(c);
  }
  Append("user", Arr({std::move(result)}));
  return OkStatus();
}

void RequestTranslator::Append(std::string_view role, json::value content) {
  auto as_blocks = [this](json::value v) -> json::array {
    if (v.is_array()) return std::move(v.as_array());
    json::array blocks(sp_);
    if (!v.as_string().empty()) {
      blocks.push_back(Obj({{"type", "text"}, {"text", std::move(v.as_string())}}));
    }
    return blocks;
  };
  if (!messages_.empty() && messages_.back().as_object()["role"].as_string() == role) {
    json::value& prev = messages_.back().as_object()["content"];
    json::array merged = as_blocks(std::move(prev));
    for (json::value& b : as_blocks(std::move(content))) merged.push_back(std::move(b));
    prev = std::move(merged);
    return;
  }
  messages_.push_back(Obj({{"role", role}, {"content", std::move(content)}}));
}

Status RequestTranslator::Tools(Element tools) {
  simdjson::dom::array list;
  if (tools.get_array().get(list) != simdjson::SUCCESS) {
    return WrongType("tools", "an array", tools);
  }
  size_t i = 0;
  for (Element tool : list) {
    const std::string path = Path("tools", i++);
    if (!tool.is_object()) return WrongType(path, "an object", tool);
    std::optional<Element> type_el = Member(tool, "type");
    std::string_view type;
    if (!type_el || type_el->get_string().get(type) != simdjson::SUCCESS || type != "function") {
      return Unsupported(path + ".type", "only function tools are translated");
    }
    std::optional<Element> fn = Member(tool, "function");
    if (!fn || !fn->is_object()) {
      return InvalidArgumentError(Quote(path + ".function") + " must be an object");
    }
    std::optional<Element> name_el = Member(*fn, "name");
    std::string_view fn_name;
    if (!name_el || name_el->get_string().get(fn_name) != simdjson::SUCCESS || fn_name.empty()) {
      return InvalidArgumentError(Quote(path + ".function.name") + " must be a non-empty string");
    }
    if (fn_name == kStructuredOutputTool) {
      return InvalidArgumentError(Quote(path + ".function.name") + ": " + Quote(fn_name) +
                                  " is reserved by the gateway for response_format");
    }
    json::object out = Obj({{"name", fn_name}});
    if (std::optional<Element> d = Member(*fn, "description")) {
      if (!d->is_string()) return WrongType(path + ".function.description", "a string", *d);
      out["description"] = internal::ToBoost(*d, sp_);
    }
    // Anthropic requires input_schema; OpenAI lets a function without parameters take none.
    json::value schema = Obj({{"type", "object"}, {"properties", json::object(sp_)}});
    if (std::optional<Element> p = Member(*fn, "parameters")) {
      if (!p->is_object()) return WrongType(path + ".function.parameters", "an object", *p);
      schema = internal::ToBoost(*p, sp_);
    }
    out["input_schema"] = std::move(schema);
    // function.strict (OpenAI's schema-enforced arguments) has no Anthropic counterpart in the
    // stable API: ignored, documented. cache_control on the tool is Anthropic's own hint.
    if (std::optional<Element> cc = Member(tool, "cache_control")) {
      if (!cc->is_object()) return WrongType(path + ".cache_control", "an object", *cc);
      out["cache_control"] = internal::ToBoost(*cc, sp_);
    }
    tools_.push_back(std::move(out));
  }
  return OkStatus();
}

StatusOr<json::object> RequestTranslator::ToolChoice(Element choice) {
  std::string_view s;
  if (choice.get_string().get(s) == simdjson::SUCCESS) {
    if (s == "auto") return Obj({{"type", "auto"}});
    if (s == "none") return Obj({{"type", "none"}});
    if (s == "required") return Obj({{"type", "any"}});
    return InvalidArgumentError("'tool_choice' must be auto, none, required or an object");
  }
  std::optional<Element> type = choice.is_object() ? Member(choice, "type") : std::nullopt;
  std::optional<Element> fn = choice.is_object() ? Member(choice, "function") : std::nullopt;
  std::optional<Element> name = fn ? Member(*fn, "name") : std::nullopt;
  std::string_view t, n;
  if (!type || type->get_string().get(t) != simdjson::SUCCESS || t != "function" || !name ||
      name->get_string().get(n) != simdjson::SUCCESS) {
    return Unsupported("tool_choice",
                       "only {\"type\": \"function\", \"function\": {\"name\": …}} is translated");
  }
  return Obj({{"type", "tool"}, {"name", n}});
}

// ---------------------------------------------------------------- response

StatusOr<std::string> TranslateResponse(Element root, const ResponseOptions& options) {
  if (!root.is_object()) return InternalError("upstream response is not a JSON object");
  std::string_view type;
  if (root.at_key("type").get_string().get(type) == simdjson::SUCCESS && type != "message") {
    return InternalError("upstream response has type '" + std::string(type) + "', not 'message'");
  }
  simdjson::dom::array content;
  if (root.at_key("content").get_array().get(content) != simdjson::SUCCESS) {
    return InternalError("upstream response has no 'content' array");
  }
  std::string text, reasoning;
  json::array tool_calls;
  bool structured = false;
  for (Element block : content) {
    std::string_view block_type;
    if (block.at_key("type").get_string().get(block_type) != simdjson::SUCCESS) continue;
    std::string_view s;
    if (block_type == "text") {
      if (block.at_key("text").get_string().get(s) == simdjson::SUCCESS) text.append(s);
    } else if (block_type == "thinking") {
      if (block.at_key("thinking").get_string().get(s) == simdjson::SUCCESS) reasoning.append(s);
    } else if (block_type == "tool_use") {
      std::string_view id, name;
      Element input;
      if (block.at_key("id").get_string().get(id) != simdjson::SUCCESS ||
          block.at_key("name").get_string().get(name) != simdjson::SUCCESS) {
        return InternalError("upstream tool_use block lacks id or name");
      }
      std::string arguments = "{}";
      if (block.at_key("input").get(input) == simdjson::SUCCESS)
        arguments = internal::Minify(input);
      if (name == kStructuredOutputTool) {  // response_format: the input is the answer
        text.append(arguments);
        structured = true;
        continue;
      }
      tool_calls.push_back(
          json::object{{"id", id},
                       {"type", "function"},
                       {"function", json::object{{"name", name}, {"arguments", arguments}}}});
    }
    // redacted_thinking (encrypted) and server-tool blocks have no chat.completion place.
  }
  json::object message{{"role", "assistant"}};
  if (text.empty() && !tool_calls.empty()) {
    message["content"] = nullptr;
  } else {
    message["content"] = text;
  }
  if (!reasoning.empty()) message["reasoning_content"] = reasoning;
  if (!tool_calls.empty()) message["tool_calls"] = std::move(tool_calls);
  message["refusal"] = nullptr;

  json::value finish_reason = nullptr;
  std::string_view stop_reason;
  if (root.at_key("stop_reason").get_string().get(stop_reason) == simdjson::SUCCESS) {
    // The forced structured-output tool is the answer, not a call for the client to make.
    finish_reason = structured && stop_reason == "tool_use" ? std::string_view("stop")
                                                            : FinishReasonFromAnthropic(stop_reason);
  }

  std::string_view id;
  if (root.at_key("id").get_string().get(id) != simdjson::SUCCESS) id = "";
  json::object out{
      {"id", id},
      {"object", "chat.completion"},
      {"created", options.created},
      {"model", options.client_model},
      {"choices", json::array{json::object{{"index", 0},
                                           {"message", std::move(message)},
                                           {"logprobs", nullptr},
                                           {"finish_reason", std::move(finish_reason)}}}},
  };
  // Usage, normalized as provider::Usage: prompt_tokens counts every prompt token, cached or
  // not (Anthropic reports cache reads and writes apart from input_tokens).
  Element usage;
  if (root.at_key("usage").get(usage) == simdjson::SUCCESS && usage.is_object()) {
    auto count = [&](std::string_view key) -> int64_t {
      int64_t v = 0;
      if (usage.at_key(key).get_int64().get(v) != simdjson::SUCCESS || v < 0) return 0;
      return v;
    };
    int64_t cache_read = count("cache_read_input_tokens");
    int64_t prompt = count("input_tokens") + cache_read + count("cache_creation_input_tokens");
    int64_t completion = count("output_tokens");
    out["usage"] = json::object{
        {"prompt_tokens", prompt},
        {"completion_tokens", completion},
        {"total_tokens", prompt + completion},
        {"prompt_tokens_details", json::object{{"cached_tokens", cache_read}}},
    };
  }
  return internal::Serialize(out);
}

}  // namespace

std::string_view FinishReasonFromAnthropic(std::string_view stop_reason) {
  if (stop_reason == "max_tokens" || stop_reason == "model_context_window_exceeded") {
    return "length";
  }
  if (stop_reason == "tool_use") return "tool_calls";
  if (stop_reason == "refusal") return "content_filter";
  return "stop";  // end_turn, stop_sequence, pause_turn, and anything new
}

StatusOr<std::string> OpenAIChatToAnthropicRequest(std::string_view body,
                                                   const TranslateOptions& options) {
  return internal::TranslateRequestInArena(body, [&](Element root, json::storage_ptr sp) {
    return RequestTranslator(options, std::move(sp)).Run(root);
  });
}

StatusOr<std::string> AnthropicToOpenAIChatResponse(std::string_view body,
                                                    const ResponseOptions& options) {
  return internal::ParseAndTranslate(body, internal::BodyKind::kResponse, [&](Element root) {
    return TranslateResponse(root, options);
  });
}

}  // namespace keygate::translate
