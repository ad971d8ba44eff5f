// Chat Completions answers -> OpenAI Responses answers, for Responses clients of chat (and,
// through chat, Anthropic) upstreams: the whole `response` object, and the SSE event stream.
// Both build the same output items (the Item model below), so a streamed answer's
// response.completed carries exactly what the non-streaming translation returns.
//
// The stream takes events from provider::SseSplitter (the splitter every stream reader uses),
// reads each chunk with internal::ReadChatChunk (shared with OpenAIToAnthropicStream) and writes
// each event as text: deltas are small, and building a DOM per delta would cost more than
// the translation. Items and the response object are built with Boost.JSON (a few per stream).
#include <algorithm>
#include <boost/json.hpp>
#include <string>
#include <vector>

#include "provider/json_text.h"
#include "translate/json_util.h"
#include "translate/sse_events.h"
#include "translate/translate.h"

namespace keygate::translate {
namespace {

namespace json = boost::json;
using internal::ChatUsage;
using internal::Element;
using internal::Member;
using internal::ReadChatUsage;
using internal::StringMember;
using provider::internal::AppendJsonString;

// One output item of a response, as it is being built.
struct Item {
  enum class Kind : uint8_t { kReasoning, kMessage, kFunctionCall };
  struct Part {
    bool refusal = false;
    std::string text;
  };
  Kind kind = Kind::kMessage;
  std::string id;
  std::string text;         // reasoning: the summary text; function_call: the arguments
  std::vector<Part> parts;  // message
  std::string call_id, name;
};

// The Responses usage object (null when the upstream reported none).
json::value UsageJson(const ChatUsage& c) {
  const provider::Usage& u = c.usage;
  if (!u.present) return nullptr;
  return json::object{
      {"input_tokens", u.input_tokens},
      {"input_tokens_details", json::object{{"cached_tokens", u.cache_read_tokens}}},
      {"output_tokens", u.output_tokens},
      {"output_tokens_details", json::object{{"reasoning_tokens", c.reasoning_tokens}}},
      {"total_tokens", u.input_tokens + u.output_tokens}};
}

json::object PartJson(const Item::Part& p) {
  if (p.refusal) return json::object{{"type", "refusal"}, {"refusal", p.text}};
  return json::object{{"type", "output_text"},
                      {"text", p.text},
                      {"annotations", json::array()},
                      {"logprobs", json::array()}};
}

json::object SummaryPart(std::string_view text) {
  return json::object{{"type", "summary_text"}, {"text", text}};
}

// `status`: "in_progress", "completed" or "incomplete" (message and function_call items). An
// item just added (output_item.added) is written empty: its content arrives in the deltas.
json::object ItemJson(const Item& item, std::string_view status, bool added = false) {
  switch (item.kind) {
    case Item::Kind::kReasoning: {
      json::array summary;
      if (!added) summary.push_back(SummaryPart(item.text));
      return json::object{{"id", item.id}, {"type", "reasoning"}, {"summary", std::move(summary)}};
    }
    case Item::Kind::kMessage: {
      json::array content;
      if (!added) {
        for (const Item::Part& p : item.parts) content.push_back(PartJson(p));
      }
      return json::object{{"id", item.id},
                          {"type", "message"},
                          {"status", status},
                          {"role", "assistant"},
                          {"content", std::move(content)}};
    }
    case Item::Kind::kFunctionCall:
      return json::object{
          {"id", item.id},           {"type", "function_call"},
          {"status", status},        {"arguments", added ? std::string() : item.text},
          {"call_id", item.call_id}, {"name", item.name}};
  }
  return {};
}

// Item ids: derived from the upstream id and the item's place, so the same answer gets the same
// ids streamed or whole (the translation is pure: no random ids).
std::string ItemId(Item::Kind kind, std::string_view upstream_id, size_t output_index,
                   std::string_view call_id) {
  if (kind == Item::Kind::kFunctionCall && !call_id.empty()) return "fc_" + std::string(call_id);
  std::string id = kind == Item::Kind::kReasoning ? "rs_"
                   : kind == Item::Kind::kMessage ? "msg_"
                                                  : "fc_";
  id.append(upstream_id);
  id.push_back('_');
  id.append(std::to_string(output_index));
  return id;
}

// How the response ended, from the chat finish_reason.
struct Ending {
  std::string_view status = "completed";  // completed | incomplete | failed | in_progress
  std::string_view incomplete_reason;     // max_output_tokens | content_filter
};
Ending EndingFor(std::string_view finish_reason) {
  if (finish_reason == "length") return {"incomplete", "max_output_tokens"};
  if (finish_reason == "content_filter") return {"incomplete", "content_filter"};
  return {};
}

// The `response` object. In an incomplete response the last item (the one cut short) is
// "incomplete"; the other finished items are "completed".
json::object ResponseJson(std::string_view upstream_id, int64_t created, std::string_view model,
                          const Ending& ending, const std::vector<Item>& items,
                          const ChatUsage& usage, std::string_view error_message) {
  json::array output;
  for (size_t i = 0; i < items.size(); ++i) {
    std::string_view status = "completed";
    if (ending.status == "in_progress" || ending.status == "failed") status = "in_progress";
    if (ending.status == "incomplete" && i + 1 == items.size()) status = "incomplete";
    output.push_back(ItemJson(items[i], status));
  }
  json::object r{{"id", "resp_" + std::string(upstream_id)},
                 {"object", "response"},
                 {"created_at", created},
                 {"status", ending.status},
                 {"background", false},
                 {"error", nullptr},
                 {"incomplete_details", nullptr},
                 {"model", model},
                 {"output", std::move(output)},
                 {"store", false},
                 {"usage", UsageJson(usage)}};
  if (!ending.incomplete_reason.empty()) {
    r["incomplete_details"] = json::object{{"reason", ending.incomplete_reason}};
  }
  if (ending.status == "failed") {
    r["error"] = json::object{{"code", "server_error"}, {"message", error_message}};
  }
  return r;
}

StatusOr<std::string> ChatToResponse(Element root, const ResponseOptions& options) {
  simdjson::dom::array choices;
  if (!root.is_object() || root.at_key("choices").get_array().get(choices) != simdjson::SUCCESS ||
      choices.size() == 0) {
    return InternalError("upstream response is not a chat.completion (no choices)");
  }
  Element choice = choices.at(0).value_unsafe();
  std::optional<Element> message = Member(choice, "message");
  if (!message || !message->is_object()) return InternalError("upstream choice has no message");
  const std::string_view id = StringMember(root, "id").value_or("");

  std::vector<Item> items;
  auto add = [&](Item::Kind kind, std::string_view call_id = "") -> Item& {
    Item& item = items.emplace_back();
    item.kind = kind;
    item.id = ItemId(kind, id, items.size() - 1, call_id);
    return item;
  };
  std::optional<std::string_view> reasoning = StringMember(*message, "reasoning_content");
  if (!reasoning) reasoning = StringMember(*message, "reasoning");
  if (reasoning && !reasoning->empty()) add(Item::Kind::kReasoning).text = *reasoning;

  std::string text;
  if (std::optional<std::string_view> s = StringMember(*message, "content")) {
    text = *s;
  } else if (std::optional<Element> parts = Member(*message, "content");
             parts && parts->is_array()) {
    for (Element p : parts->get_array().value_unsafe())
      text.append(StringMember(p, "text").value_or(""));
  }
  std::string_view refusal = StringMember(*message, "refusal").value_or("");
  simdjson::dom::array calls;
  const bool has_calls =
      message->at_key("tool_calls").get_array().get(calls) == simdjson::SUCCESS && calls.size() > 0;
  if (!text.empty() || !refusal.empty() || !has_calls) {
    Item& m = add(Item::Kind::kMessage);
    if (!text.empty() || refusal.empty()) m.parts.push_back({false, text});
    if (!refusal.empty()) m.parts.push_back({true, std::string(refusal)});
  }
  if (has_calls) {
    for (Element call : calls) {
      std::optional<Element> fn = Member(call, "function");
      std::optional<std::string_view> name = fn ? StringMember(*fn, "name") : std::nullopt;
      if (!name) return InternalError("upstream tool call has no function name");
      std::string_view call_id = StringMember(call, "id").value_or("");
      Item& item = add(Item::Kind::kFunctionCall, call_id);
      item.call_id = call_id;
      item.name = *name;
      item.text = StringMember(*fn, "arguments").value_or("");
    }
  }
  int64_t created = options.created;
  if (root.at_key("created").get_int64().get(created) != simdjson::SUCCESS)
    created = options.created;
  ChatUsage usage;
  if (std::optional<Element> u = Member(root, "usage"); u && u->is_object())
    usage = ReadChatUsage(*u);
  const Ending ending = EndingFor(StringMember(choice, "finish_reason").value_or("stop"));
  return internal::Serialize(
      ResponseJson(id, created, options.client_model, ending, items, usage, ""));
}

}  // namespace

StatusOr<std::string> OpenAIChatToResponsesResponse(std::string_view body,
                                                    const ResponseOptions& options) {
  return internal::ParseAndTranslate(body, internal::BodyKind::kResponse,
                                     [&](Element root) { return ChatToResponse(root, options); });
}

// ---------------------------------------------------------------- stream

struct OpenAIToResponsesStream::State {
  enum class Phase { kRunning, kDone, kFailed };

  explicit State(const Options& o)
      : client_model(o.client_model),
        created(o.created),
        max_event_bytes(o.max_event_bytes),
        splitter(o.max_event_bytes) {}

  std::string client_model;
  int64_t created;
  size_t max_event_bytes;
  provider::SseSplitter splitter;

  Phase phase = Phase::kRunning;
  Status status;
  bool started = false;
  std::string upstream_id;
  int64_t sequence = 0;
  std::vector<Item> items;       // every item, in output_index order
  int open = -1;                 // the open reasoning or message item, if any
  std::map<int64_t, int> tools;  // chat tool_calls index -> open function_call item
  std::string finish_reason;
  ChatUsage usage;  // from the usage chunk

  // One SSE event: "event: <type>" and data {"type":…,"sequence_number":…,<members>}.
  void Event(std::string_view type, std::string_view members, std::string& out) {
    out.append("event: ");
    out.append(type);
    out.append("\ndata: {\"type\":\"");
    out.append(type);
    out.append("\",\"sequence_number\":");
    out.append(std::to_string(sequence++));
    if (!members.empty()) {
      out.push_back(',');
      out.append(members);
    }
    out.append("}\n\n");
  }
  // `"item_id":…,"output_index":N`, the members most events start with.
  std::string Where(int index) const {
    std::string s = R"("item_id":)";
    AppendJsonString(s, items[index].id);
    s.append(R"(,"output_index":)");
    s.append(std::to_string(index));
    return s;
  }
  std::string Response(const Ending& ending, std::string_view error = "") const {
    return R"("response":)" + internal::Serialize(ResponseJson(upstream_id, created, client_model,
                                                               ending, items, usage, error));
  }

  void Start(std::string_view id, int64_t chunk_created, std::string& out) {
    if (started) return;
    started = true;
    upstream_id = id;
    if (chunk_created > 0) created = chunk_created;
    Event("response.created", Response({"in_progress", ""}), out);
    Event("response.in_progress", Response({"in_progress", ""}), out);
  }

  int Add(Item::Kind kind, std::string_view call_id) {
    const int index = static_cast<int>(items.size());
    Item& item = items.emplace_back();
    item.kind = kind;
    item.id = ItemId(kind, upstream_id, index, call_id);
    item.call_id = call_id;
    return index;
  }
  void ItemAdded(int index, std::string& out) {
    Event("response.output_item.added",
          R"("output_index":)" + std::to_string(index) + R"(,"item":)" +
              internal::Serialize(ItemJson(items[index], "in_progress", /*added=*/true)),
          out);
  }
  void ItemDone(int index, std::string_view status, std::string& out) {
    Event("response.output_item.done",
          R"("output_index":)" + std::to_string(index) + R"(,"item":)" +
              internal::Serialize(ItemJson(items[index], status)),
          out);
  }

  // Closes the open message's last part.
  void ClosePart(int index, std::string& out) {
    Item& item = items[index];
    if (item.parts.empty()) return;
    const size_t k = item.parts.size() - 1;
    const Item::Part& part = item.parts[k];
    std::string m = Where(index) + R"(,"content_index":)" + std::to_string(k);
    std::string text_member = part.refusal ? R"(,"refusal":)" : R"(,"text":)";
    AppendJsonString(text_member, part.text);
    Event(part.refusal ? "response.refusal.done" : "response.output_text.done",
          m + text_member + (part.refusal ? "" : R"(,"logprobs":[])"), out);
    Event("response.content_part.done", m + R"(,"part":)" + internal::Serialize(PartJson(part)),
          out);
  }

  // Closes item `index` (its parts, then output_item.done).
  void Close(int index, std::string_view status, std::string& out) {
    Item& item = items[index];
    switch (item.kind) {
      case Item::Kind::kReasoning: {
        std::string m = Where(index) + R"(,"summary_index":0)";
        std::string text = R"(,"text":)";
        AppendJsonString(text, item.text);
        Event("response.reasoning_summary_text.done", m + text, out);
        Event("response.reasoning_summary_part.done",
              m + R"(,"part":)" + internal::Serialize(SummaryPart(item.text)), out);
        break;
      }
      case Item::Kind::kMessage:
        ClosePart(index, out);
        break;
      case Item::Kind::kFunctionCall: {
        std::string m = Where(index) + R"(,"name":)";
        AppendJsonString(m, item.name);
        m.append(R"(,"arguments":)");
        AppendJsonString(m, item.text);
        Event("response.function_call_arguments.done", m, out);
        break;
      }
    }
    ItemDone(index, status, out);
  }

  void CloseOpen(std::string& out) {
    if (open < 0) return;
    Close(open, "completed", out);
    open = -1;
  }

  void Reasoning(std::string_view text, std::string& out) {
    if (open < 0 || items[open].kind != Item::Kind::kReasoning) {
      CloseOpen(out);
      open = Add(Item::Kind::kReasoning, "");
      ItemAdded(open, out);
      Event("response.reasoning_summary_part.added",
            Where(open) + R"(,"summary_index":0,"part":)" + internal::Serialize(SummaryPart("")),
            out);
    }
    items[open].text.append(text);
    std::string m = Where(open) + R"(,"summary_index":0,"delta":)";
    AppendJsonString(m, text);
    Event("response.reasoning_summary_text.delta", m, out);
  }

  void Text(bool refusal, std::string_view text, std::string& out) {
    if (open < 0 || items[open].kind != Item::Kind::kMessage) {
      CloseOpen(out);
      open = Add(Item::Kind::kMessage, "");
      ItemAdded(open, out);
    }
    Item& item = items[open];
    if (item.parts.empty() || item.parts.back().refusal != refusal) {
      ClosePart(open, out);
      item.parts.push_back({refusal, ""});
      Event("response.content_part.added",
            Where(open) + R"(,"content_index":)" + std::to_string(item.parts.size() - 1) +
                R"(,"part":)" + internal::Serialize(PartJson(item.parts.back())),
            out);
    }
    item.parts.back().text.append(text);
    std::string m = Where(open) + R"(,"content_index":)" + std::to_string(item.parts.size() - 1) +
                    R"(,"delta":)";
    AppendJsonString(m, text);
    if (!refusal) m.append(R"(,"logprobs":[])");
    Event(refusal ? "response.refusal.delta" : "response.output_text.delta", m, out);
  }

  void Tool(int64_t tool_index, std::string_view call_id, std::string_view name,
            std::string_view arguments, std::string& out) {
    auto it = tools.find(tool_index);
    if (it == tools.end()) {
      CloseOpen(out);
      const int index = Add(Item::Kind::kFunctionCall, call_id);
      items[index].name = name;
      it = tools.emplace(tool_index, index).first;
      ItemAdded(index, out);
    }
    if (arguments.empty()) return;
    items[it->second].text.append(arguments);
    std::string m = Where(it->second) + R"(,"delta":)";
    AppendJsonString(m, arguments);
    Event("response.function_call_arguments.delta", m, out);
  }

  void End(std::string& out) {
    Start("", 0, out);
    const Ending ending = EndingFor(finish_reason);
    // Open items close in output_index order; the last item is the one a truncation cut.
    std::vector<int> open_items;
    if (open >= 0) open_items.push_back(open);
    for (const auto& [tool, index] : tools) open_items.push_back(index);
    std::sort(open_items.begin(), open_items.end());
    for (int index : open_items) {
      const bool cut = ending.status == "incomplete" && index + 1 == static_cast<int>(items.size());
      Close(index, cut ? "incomplete" : "completed", out);
    }
    open = -1;
    tools.clear();
    Event(ending.status == "incomplete" ? "response.incomplete" : "response.completed",
          Response(ending), out);
    phase = Phase::kDone;
  }

  void Fail(Status why, std::string& out) {
    Start("", 0, out);
    Event("response.failed", Response({"failed", ""}, why.message()), out);
    status = std::move(why);
    phase = Phase::kFailed;
  }

  void OnData(std::string_view data, std::string& out) {
    if (data == "[DONE]") {
      End(out);
      return;
    }
    struct Handler final : internal::ChatChunkHandler {
      State& s;
      std::string& out;
      Handler(State& state, std::string& o) : s(state), out(o) {}
      void OnError(std::string_view message) override {
        s.Fail(UnavailableError(std::string(message)), out);
      }
      void OnChunk(std::string_view id, int64_t created) override { s.Start(id, created, out); }
      void OnUsage(const provider::Usage& usage, int64_t reasoning_tokens) override {
        s.usage = {usage, reasoning_tokens};
      }
      void OnReasoning(std::string_view text) override { s.Reasoning(text, out); }
      void OnContent(std::string_view text) override { s.Text(false, text, out); }
      void OnRefusal(std::string_view text) override { s.Text(true, text, out); }
      void OnToolCall(int64_t index, std::string_view id, std::string_view name,
                      std::string_view arguments) override {
        s.Tool(index, id, name, arguments, out);
      }
      void OnFinish(std::string_view reason) override { s.finish_reason = reason; }
    } handler(*this, out);
    internal::ReadChatChunk(data, handler);
  }
};

OpenAIToResponsesStream::OpenAIToResponsesStream(const Options& options)
    : s_(std::make_unique<State>(options)) {}
OpenAIToResponsesStream::~OpenAIToResponsesStream() = default;
OpenAIToResponsesStream::OpenAIToResponsesStream(OpenAIToResponsesStream&&) noexcept = default;
OpenAIToResponsesStream& OpenAIToResponsesStream::operator=(OpenAIToResponsesStream&&) noexcept =
    default;

void OpenAIToResponsesStream::Feed(std::string_view bytes, std::string& out) {
  State& s = *s_;
  if (s.phase != State::Phase::kRunning) return;
  auto running = [&s] { return s.phase == State::Phase::kRunning; };
  if (!internal::FeedEvents(s.splitter, bytes, running,
                            [&](std::string_view data) { s.OnData(data, out); })) {
    s.Fail(InternalError(internal::OversizedMessage(s.max_event_bytes)), out);
  }
  if (s.phase != State::Phase::kRunning) s.splitter = provider::SseSplitter(0);
}

void OpenAIToResponsesStream::Finish(std::string& out) {
  State& s = *s_;
  if (s.phase == State::Phase::kRunning) {
    internal::FinishEvents(s.splitter, [&](std::string_view data) { s.OnData(data, out); });
  }
  if (s.phase == State::Phase::kRunning) {
    // Some compatible servers end after the finish_reason without "[DONE]": that answer is
    // complete. Without a finish_reason it was cut short.
    if (!s.finish_reason.empty()) {
      s.End(out);
    } else {
      s.Fail(UnavailableError("upstream stream ended before its finish_reason"), out);
    }
  }
  s.splitter = provider::SseSplitter(0);
}

const provider::Usage& OpenAIToResponsesStream::usage() const { return s_->usage.usage; }
bool OpenAIToResponsesStream::done() const { return s_->phase == State::Phase::kDone; }
const Status& OpenAIToResponsesStream::status() const { return s_->status; }

}  // namespace keygate::translate
