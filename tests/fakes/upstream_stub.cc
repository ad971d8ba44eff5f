#include "tests/fakes/upstream_stub.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>

namespace keygate::testing {

namespace {

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

std::string Chunk(std::string_view data) {
  char len[20];
  std::snprintf(len, sizeof(len), "%zx\r\n", data.size());
  return std::string(len) + std::string(data) + "\r\n";
}

// The value of a top-level JSON field in a request body: a crude scan, enough for the stub.
std::string FindJsonString(const std::string& body, const std::string& field) {
  size_t p = body.find("\"" + field + "\"");
  if (p == std::string::npos) return {};
  p = body.find(':', p);
  if (p == std::string::npos) return {};
  p = body.find('"', p);
  if (p == std::string::npos) return {};
  size_t e = body.find('"', p + 1);
  return e == std::string::npos ? std::string() : body.substr(p + 1, e - p - 1);
}

bool JsonTrue(const std::string& body, const std::string& field) {
  size_t p = body.find("\"" + field + "\"");
  if (p == std::string::npos) return false;
  p = body.find(':', p);
  if (p == std::string::npos) return false;
  size_t v = body.find_first_not_of(" \t\r\n", p + 1);
  return v != std::string::npos && body.compare(v, 4, "true") == 0;
}

void SleepMs(int ms) {
  if (ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

std::string ErrorBody(const std::string& path, const StubBehavior& b) {
  bool anthropic = path.rfind("/v1/messages", 0) == 0;  // and /v1/messages/count_tokens
  std::string type = b.error_type, message = b.error_message;
  if (type.empty()) {
    switch (b.status) {
      case 401: type = anthropic ? "authentication_error" : "invalid_api_key"; break;
      case 402: type = "insufficient_quota"; break;
      case 403: type = anthropic ? "permission_error" : "forbidden"; break;
      case 429: type = anthropic ? "rate_limit_error" : "rate_limit_exceeded"; break;
      case 529: type = "overloaded_error"; break;
      default: type = b.status >= 500 ? "server_error" : "invalid_request_error";
    }
  }
  if (message.empty()) message = "stub error " + std::to_string(b.status);
  if (anthropic) {
    return "{\"type\":\"error\",\"error\":{\"type\":\"" + type + "\",\"message\":\"" + message +
           "\"}}";
  }
  return "{\"error\":{\"message\":\"" + message + "\",\"type\":\"" + type +
         "\",\"param\":null,\"code\":\"" + type + "\"}}";
}

// The stub's embedding, [0.1, 0.2, 0.3], as OpenAI sends it for "encoding_format": "base64":
// little-endian float32s, base64-encoded (the official SDKs ask for this by default).
std::string Base64Embedding() {
  static const char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const float values[] = {0.1f, 0.2f, 0.3f};
  unsigned char bytes[sizeof(values)];
  std::memcpy(bytes, values, sizeof(values));  // x86-64 and aarch64 are little-endian
  std::string out;
  for (size_t i = 0; i < sizeof(bytes); i += 3) {  // 12 bytes: no padding needed
    uint32_t v = (bytes[i] << 16) | (bytes[i + 1] << 8) | bytes[i + 2];
    for (int shift = 18; shift >= 0; shift -= 6) out += kAlphabet[(v >> shift) & 63];
  }
  return out;
}

std::string OkBody(const std::string& path, const std::string& model, const StubBehavior& b,
                   bool base64_embedding) {
  std::string p = std::to_string(b.prompt_tokens), c = std::to_string(b.completion_tokens);
  if (path == "/v1/messages/count_tokens") return "{\"input_tokens\":" + p + "}";
  if (path == "/v1/messages") {
    return "{\"id\":\"msg_stub\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"" + model +
           "\",\"content\":[{\"type\":\"text\",\"text\":\"Hello from the stub\"}],"
           "\"stop_reason\":\"end_turn\",\"stop_sequence\":null,\"usage\":{\"input_tokens\":" +
           p + ",\"output_tokens\":" + c + "}}";
  }
  if (path == "/v1/embeddings") {
    std::string vector = base64_embedding ? "\"" + Base64Embedding() + "\"" : "[0.1,0.2,0.3]";
    return "{\"object\":\"list\",\"data\":[{\"object\":\"embedding\",\"index\":0,\"embedding\":" +
           vector + "}],\"model\":\"" + model + "\",\"usage\":{\"prompt_tokens\":" + p +
           ",\"total_tokens\":" + p + "}}";
  }
  if (path == "/v1/responses") {
    return "{\"id\":\"resp_stub\",\"object\":\"response\",\"status\":\"completed\",\"model\":\"" +
           model + "\",\"output\":[{\"type\":\"message\",\"role\":\"assistant\",\"content\":"
           "[{\"type\":\"output_text\",\"text\":\"Hello from the stub\"}]}],\"usage\":"
           "{\"input_tokens\":" + p + ",\"output_tokens\":" + c + ",\"total_tokens\":" +
           std::to_string(b.prompt_tokens + b.completion_tokens) + "}}";
  }
  if (path == "/v1/completions") {
    return "{\"id\":\"cmpl-stub\",\"object\":\"text_completion\",\"created\":1,\"model\":\"" + model +
           "\",\"choices\":[{\"text\":\"Hello from the stub\",\"index\":0,\"finish_reason\":"
           "\"stop\"}],\"usage\":{\"prompt_tokens\":" + p + ",\"completion_tokens\":" + c +
           ",\"total_tokens\":" + std::to_string(b.prompt_tokens + b.completion_tokens) + "}}";
  }
  return "{\"id\":\"chatcmpl-stub\",\"object\":\"chat.completion\",\"created\":1,\"model\":\"" +
         model + "\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":"
         "\"Hello from the stub\"},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":" +
         p + ",\"completion_tokens\":" + c + ",\"total_tokens\":" +
         std::to_string(b.prompt_tokens + b.completion_tokens) + "}}";
}

// The name of the tool the stub calls: the first tool a chat or messages request offers, as long
// as the request carries no tool result yet (so a client's tool loop ends on its second turn).
// Empty when the stub answers with text.
std::string ToolToCall(const std::string& path, const std::string& body) {
  if (path != "/v1/chat/completions" && path != "/v1/messages" && path != "/v1/responses") {
    return {};
  }
  size_t tools = body.find("\"tools\"");
  if (tools == std::string::npos) return {};
  if (body.find("\"tool_result\"") != std::string::npos ||
      body.find("\"role\":\"tool\"") != std::string::npos ||
      body.find("\"function_call_output\"") != std::string::npos) {
    return {};
  }
  return FindJsonString(body.substr(tools), "name");
}

// One Responses SSE event: "event: <type>" and data {"type": <type>, <fields>}.
std::string ResponsesEvent(const std::string& type, const std::string& fields) {
  return "event: " + type + "\ndata: {\"type\":\"" + type + "\"," + fields + "}\n\n";
}

// The fields of response.completed: the response with its usage (output items left out).
std::string ResponsesCompleted(const std::string& model, const StubBehavior& b) {
  return "\"response\":{\"id\":\"resp_stub\",\"object\":\"response\",\"status\":\"completed\","
         "\"model\":\"" + model + "\",\"output\":[],\"usage\":{\"input_tokens\":" +
         std::to_string(b.prompt_tokens) + ",\"output_tokens\":" + std::to_string(b.completion_tokens) +
         ",\"total_tokens\":" + std::to_string(b.prompt_tokens + b.completion_tokens) + "}}";
}

// A call of `tool` with the arguments {"city": "Paris"}, whole or in two fragments.
constexpr const char* kToolArguments = R"({\"city\": \"Paris\"})";
constexpr const char* kToolArgumentParts[] = {R"({\"city\":)", R"( \"Paris\"})"};

std::string ToolCallBody(const std::string& path, const std::string& model, const std::string& tool,
                         const StubBehavior& b) {
  std::string p = std::to_string(b.prompt_tokens), c = std::to_string(b.completion_tokens);
  if (path == "/v1/messages") {
    return "{\"id\":\"msg_stub\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"" + model +
           "\",\"content\":[{\"type\":\"tool_use\",\"id\":\"toolu_stub\",\"name\":\"" + tool +
           "\",\"input\":{\"city\":\"Paris\"}}],\"stop_reason\":\"tool_use\",\"stop_sequence\":null,"
           "\"usage\":{\"input_tokens\":" + p + ",\"output_tokens\":" + c + "}}";
  }
  if (path == "/v1/responses") {
    return "{\"id\":\"resp_stub\",\"object\":\"response\",\"status\":\"completed\",\"model\":\"" +
           model + "\",\"output\":[{\"type\":\"function_call\",\"id\":\"fc_stub\",\"call_id\":"
           "\"call_stub\",\"name\":\"" + tool + "\",\"arguments\":\"" + kToolArguments +
           "\",\"status\":\"completed\"}],\"usage\":{\"input_tokens\":" + p + ",\"output_tokens\":" + c +
           ",\"total_tokens\":" + std::to_string(b.prompt_tokens + b.completion_tokens) + "}}";
  }
  return "{\"id\":\"chatcmpl-stub\",\"object\":\"chat.completion\",\"created\":1,\"model\":\"" +
         model + "\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":null,"
         "\"tool_calls\":[{\"id\":\"call_stub\",\"type\":\"function\",\"function\":{\"name\":\"" + tool +
         "\",\"arguments\":\"" + kToolArguments + "\"}}]},\"finish_reason\":\"tool_calls\"}],"
         "\"usage\":{\"prompt_tokens\":" + p + ",\"completion_tokens\":" + c + ",\"total_tokens\":" +
         std::to_string(b.prompt_tokens + b.completion_tokens) + "}}";
}

std::vector<std::string> ToolCallEvents(const std::string& path, const std::string& model,
                                        const std::string& tool, const StubBehavior& b,
                                        bool include_usage) {
  std::vector<std::string> ev;
  std::string p = std::to_string(b.prompt_tokens), c = std::to_string(b.completion_tokens);
  if (path == "/v1/messages") {
    ev.push_back("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":"
                 "\"msg_stub\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"" + model +
                 "\",\"content\":[],\"usage\":{\"input_tokens\":" + p + ",\"output_tokens\":1}}}\n\n");
    ev.push_back("event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,"
                 "\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_stub\",\"name\":\"" + tool +
                 "\",\"input\":{}}}\n\n");
    for (const char* part : kToolArgumentParts) {
      ev.push_back("event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
                   "\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"" + std::string(part) +
                   "\"}}\n\n");
    }
    ev.push_back("event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n");
    ev.push_back("event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
                 "\"tool_use\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":" + c + "}}\n\n");
    ev.push_back("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
    return ev;
  }
  if (path == "/v1/responses") {
    ev.push_back(ResponsesEvent("response.created", "\"response\":{\"id\":\"resp_stub\",\"status\":"
                                                    "\"in_progress\",\"model\":\"" + model + "\",\"output\":[]}"));
    ev.push_back(ResponsesEvent("response.output_item.added",
                                "\"output_index\":0,\"item\":{\"type\":\"function_call\",\"id\":\"fc_stub\","
                                "\"call_id\":\"call_stub\",\"name\":\"" + tool + "\",\"arguments\":\"\"}"));
    for (const char* part : kToolArgumentParts) {
      ev.push_back(ResponsesEvent("response.function_call_arguments.delta",
                                  "\"item_id\":\"fc_stub\",\"output_index\":0,\"delta\":\"" +
                                      std::string(part) + "\""));
    }
    ev.push_back(ResponsesEvent("response.completed", ResponsesCompleted(model, b)));
    return ev;
  }
  const std::string head = "data: {\"id\":\"chatcmpl-stub\",\"object\":\"chat.completion.chunk\","
                           "\"created\":1,\"model\":\"" + model + "\",";
  ev.push_back(head + "\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":null,"
               "\"tool_calls\":[{\"index\":0,\"id\":\"call_stub\",\"type\":\"function\",\"function\":"
               "{\"name\":\"" + tool + "\",\"arguments\":\"\"}}]},\"finish_reason\":null}]}\n\n");
  for (const char* part : kToolArgumentParts) {
    ev.push_back(head + "\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,"
                 "\"function\":{\"arguments\":\"" + std::string(part) + "\"}}]},\"finish_reason\":null}]}\n\n");
  }
  ev.push_back(head + "\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n");
  if (include_usage) {
    ev.push_back(head + "\"choices\":[],\"usage\":{\"prompt_tokens\":" + p +
                 ",\"completion_tokens\":" + c + ",\"total_tokens\":" +
                 std::to_string(b.prompt_tokens + b.completion_tokens) + "}}\n\n");
  }
  ev.push_back("data: [DONE]\n\n");
  return ev;
}

// The stream events for a path: content events, then the closing ones.
std::vector<std::string> StreamEvents(const std::string& path, const std::string& model,
                                      const StubBehavior& b, bool include_usage) {
  std::vector<std::string> ev;
  std::string p = std::to_string(b.prompt_tokens), c = std::to_string(b.completion_tokens);
  const std::string padding(static_cast<size_t>(std::max(0, b.event_padding_bytes)), 'x');
  if (path == "/v1/messages") {
    ev.push_back("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":"
                 "\"msg_stub\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"" + model +
                 "\",\"content\":[],\"usage\":{\"input_tokens\":" + p +
                 ",\"output_tokens\":1}}}\n\n");
    ev.push_back("event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,"
                 "\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n");
    for (int i = 0; i < b.stream_events; ++i) {
      ev.push_back("event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
                   "\"delta\":{\"type\":\"text_delta\",\"text\":\"tok" + std::to_string(i) +
                   " " + padding + "\"}}\n\n");
    }
    ev.push_back("event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n");
    ev.push_back("event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
                 "\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":" + c +
                 "}}\n\n");
    ev.push_back("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
    return ev;
  }
  if (path == "/v1/responses") {
    ev.push_back(ResponsesEvent("response.created", "\"response\":{\"id\":\"resp_stub\",\"status\":"
                                                    "\"in_progress\",\"model\":\"" + model + "\",\"output\":[]}"));
    for (int i = 0; i < b.stream_events; ++i) {
      ev.push_back(ResponsesEvent("response.output_text.delta",
                                  "\"item_id\":\"msg_stub\",\"output_index\":0,\"content_index\":0,"
                                  "\"delta\":\"tok" + std::to_string(i) + " " + padding + "\""));
    }
    ev.push_back(ResponsesEvent("response.completed", ResponsesCompleted(model, b)));
    return ev;
  }
  for (int i = 0; i < b.stream_events; ++i) {
    ev.push_back("data: {\"id\":\"chatcmpl-stub\",\"object\":\"chat.completion.chunk\",\"created\":1,"
                 "\"model\":\"" + model + "\",\"choices\":[{\"index\":0,\"delta\":{" +
                 (i == 0 ? "\"role\":\"assistant\"," : "") + "\"content\":\"tok" +
                 std::to_string(i) + " " + padding + "\"},\"finish_reason\":null}]}\n\n");
  }
  ev.push_back("data: {\"id\":\"chatcmpl-stub\",\"object\":\"chat.completion.chunk\",\"created\":1,"
               "\"model\":\"" + model + "\",\"choices\":[{\"index\":0,\"delta\":{},"
               "\"finish_reason\":\"stop\"}]}\n\n");
  if (include_usage) {
    ev.push_back("data: {\"id\":\"chatcmpl-stub\",\"object\":\"chat.completion.chunk\",\"created\":1,"
                 "\"model\":\"" + model + "\",\"choices\":[],\"usage\":{\"prompt_tokens\":" + p +
                 ",\"completion_tokens\":" + c + ",\"total_tokens\":" +
                 std::to_string(b.prompt_tokens + b.completion_tokens) + "}}\n\n");
  }
  ev.push_back("data: [DONE]\n\n");
  return ev;
}

// "/sse?events=3&size=10": the integer value of `name`, or `fallback`.
long long QueryInt(const std::string& target, const std::string& name, long long fallback) {
  size_t q = target.find('?');
  if (q == std::string::npos) return fallback;
  std::string query = "&" + target.substr(q + 1);
  size_t at = query.find("&" + name + "=");
  if (at == std::string::npos) return fallback;
  return std::atoll(query.c_str() + at + name.size() + 2);
}

std::string WireEvent(long long i, long long size) {
  std::string e = "data: " + std::to_string(i) + " ";
  if (size > static_cast<long long>(e.size()) + 2) e.append(size - e.size() - 2, 'x');
  e.append("\n\n");
  return e;
}

// Reads and drops whatever the peer sends until it closes the connection (or Stop() shuts it).
void WaitForPeerClose(int fd) {
  char sink[512];
  while (::recv(fd, sink, sizeof(sink), 0) > 0) {
  }
}

}  // namespace

std::string StubRequest::Header(const std::string& lower_name) const {
  auto it = headers.find(lower_name);
  return it == headers.end() ? std::string() : it->second;
}

UpstreamStub::UpstreamStub() = default;

UpstreamStub::~UpstreamStub() { Stop(); }

bool UpstreamStub::Start(uint16_t port) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::listen(listen_fd_, 1024) != 0) {
    ::close(listen_fd_);
    listen_fd_ = -1;
    return false;
  }
  socklen_t len = sizeof(addr);
  getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  acceptor_ = std::thread([this] { AcceptLoop(); });
  return true;
}

void UpstreamStub::Stop() {
  if (stopping_.exchange(true)) return;
  {
    std::lock_guard<std::mutex> lock(mu_);  // a held spend answer sees stopping_ and goes on
  }
  released_cv_.notify_all();
  if (listen_fd_ >= 0) ::shutdown(listen_fd_, SHUT_RDWR);
  if (acceptor_.joinable()) acceptor_.join();
  if (listen_fd_ >= 0) ::close(listen_fd_);
  std::vector<std::thread> workers;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (int fd : open_fds_) ::shutdown(fd, SHUT_RDWR);
    workers.swap(workers_);
  }
  for (auto& t : workers) t.join();
}

void UpstreamStub::Script(const std::string& key, StubBehavior behavior) {
  std::lock_guard<std::mutex> lock(mu_);
  scripts_[key] = behavior;
}

void UpstreamStub::SetSpend(const std::string& key, StubSpend spend) {
  std::lock_guard<std::mutex> lock(mu_);
  spends_[key] = std::move(spend);
}

int UpstreamStub::held() const {
  std::lock_guard<std::mutex> lock(mu_);
  return held_;
}

void UpstreamStub::ReleaseHeld() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++releases_;
  }
  released_cv_.notify_all();
}

void UpstreamStub::ClearScripts() {
  std::lock_guard<std::mutex> lock(mu_);
  scripts_.clear();
}

std::vector<StubRequest> UpstreamStub::requests() const {
  std::lock_guard<std::mutex> lock(mu_);
  return requests_;
}

size_t UpstreamStub::request_count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return requests_.size();
}

size_t UpstreamStub::CountForKey(const std::string& key) const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<size_t>(std::count_if(requests_.begin(), requests_.end(),
                                           [&](const StubRequest& r) { return r.key == key; }));
}

int UpstreamStub::connections_closed() const {
  std::lock_guard<std::mutex> lock(mu_);
  return closed_;
}

bool UpstreamStub::WaitForClosed(int n, std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> lock(mu_);
  return closed_cv_.wait_for(lock, timeout, [&] { return closed_ >= n; });
}

UpstreamStub::Wire UpstreamStub::ServeWireRoute(int fd, const StubRequest& req) {
  const std::string path = req.path.substr(0, req.path.find('?'));
  auto param = [&](const char* name, long long fallback) {
    return QueryInt(req.path, name, fallback);
  };
  const std::string conn = "x-stub-connection: " + std::to_string(req.connection_id) + "\r\n";
  const std::string chunked_head =
      "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n" +
      conn + "\r\n";
  auto keep = [](bool ok) { return ok ? Wire::kKeepAlive : Wire::kClose; };
  if (path == "/echo" || path == "/delay") {
    if (path == "/delay") SleepMs(static_cast<int>(param("ms", 0)));
    return keep(WriteAll(fd, "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n" + conn +
                                 "X-Multi: a\r\nX-Multi: b\r\nContent-Length: " +
                                 std::to_string(req.body.size()) + "\r\n\r\n" + req.body));
  }
  if (path == "/fold") {
    // An obs-folded field (RFC 9112 5.2: a line starting with a space continues the previous
    // value) after another field.
    return keep(WriteAll(fd, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n" + conn +
                                 "X-Other: c\r\nX-Fold: a\r\n b\r\nContent-Length: 2\r\n\r\nok"));
  }
  if (path == "/echo_close") {
    // Answers as a keep-alive response and then closes the connection, as a server does when its
    // keep-alive timeout ends an idle connection.
    WriteAll(fd, "HTTP/1.1 200 OK\r\n" + conn + "Content-Length: 0\r\n\r\n");
    return Wire::kClose;
  }
  if (path == "/status") {
    long long code = param("code", 500);
    std::string body = R"({"error":{"message":"stub status )" + std::to_string(code) + "\"}}";
    return keep(WriteAll(fd, "HTTP/1.1 " + std::to_string(code) + " Stub\r\n" + conn +
                                 "Content-Type: application/json\r\nContent-Length: " +
                                 std::to_string(body.size()) + "\r\n\r\n" + body));
  }
  if (path == "/sse") {
    long long events = param("events", 10), size = param("size", 64);
    int delay = static_cast<int>(param("delay_ms", 0));
    if (!WriteAll(fd, chunked_head)) return Wire::kClose;
    std::string batch;
    for (long long i = 0; i < events; ++i) {
      batch += WireEvent(i, size);
      if (delay > 0 || batch.size() >= (64 << 10) || i + 1 == events) {
        if (!WriteAll(fd, Chunk(batch))) return Wire::kClose;
        sse_written_ += static_cast<int64_t>(batch.size());
        batch.clear();
        SleepMs(delay);
      }
    }
    return keep(WriteAll(fd, "0\r\n\r\n"));
  }
  if (path == "/stall") {
    if (WriteAll(fd, chunked_head + Chunk(std::string(param("bytes", 10), 's')))) {
      WaitForPeerClose(fd);
    }
    return Wire::kClose;
  }
  if (path == "/reset") {
    if (!WriteAll(fd, "HTTP/1.1 200 OK\r\n" + conn + "Content-Length: " +
                          std::to_string(10 << 20) + "\r\n\r\n" +
                          std::string(param("bytes", 1000), 'r'))) {
      return Wire::kClose;
    }
    SleepMs(100);  // let the client read what was sent: an RST may discard unread data
    linger lg{1, 0};  // close() now sends RST
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    return Wire::kClose;
  }
  if (path == "/forever") {
    if (!WriteAll(fd, chunked_head)) return Wire::kClose;
    for (long long i = 0; !stopping_.load(); ++i) {
      if (!WriteAll(fd, Chunk(WireEvent(i, 64)))) break;
      SleepMs(5);
    }
    return Wire::kClose;
  }
  return Wire::kNotWire;
}

void UpstreamStub::ClearRequests() {
  std::lock_guard<std::mutex> lock(mu_);
  requests_.clear();
}

StubBehavior UpstreamStub::BehaviorFor(const std::string& key) const {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = scripts_.find(key); it != scripts_.end()) return it->second;
  }
  StubBehavior b;
  for (int s : {401, 402, 403, 429, 500, 529}) {
    if (key.find("-s" + std::to_string(s) + "-") != std::string::npos) b.status = s;
  }
  if (b.status == 429) b.retry_after_s = 1;
  if (key.find("-budget-") != std::string::npos) {
    b.status = 400;
    b.error_type = "budget_exceeded";
    b.error_message = "Budget has been exceeded! Current cost: 10.01, Max budget: 10.0";
  }
  if (key.find("-slow-") != std::string::npos) b.first_byte_delay_ms = 1500;
  if (key.find("-reset-") != std::string::npos) {
    b.stream_events = 50;
    b.event_interval_ms = 5;
    b.reset_after_events = 3;
  }
  if (key.find("-long-") != std::string::npos) {
    b.stream_events = 200;
    b.event_interval_ms = 20;
  }
  if (key.find("-big-") != std::string::npos) {
    b.stream_events = 20000;
    b.event_padding_bytes = 1000;
  }
  return b;
}

std::string UpstreamStub::SpendResponse(const StubRequest& req) const {
  std::optional<StubSpend> spend;
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (auto it = spends_.find(req.key); it != spends_.end()) spend = it->second;
    if (spend && spend->hold) {
      ++held_;
      const uint64_t seen = releases_;
      released_cv_.wait(lock, [&] { return releases_ != seen || stopping_.load(); });
      --held_;
      spend.reset();
      if (auto it = spends_.find(req.key); it != spends_.end()) spend = it->second;
    }
  }
  auto money = [](std::optional<double> v) {
    if (!v) return std::string("null");
    char buf[64];
    std::snprintf(buf, sizeof(buf), "%.6f", *v);
    return std::string(buf);
  };
  int status = 200;
  std::string body;
  if (!spend) {
    status = 401;
    body = R"({"error":{"message":"Authentication Error, Invalid proxy server token passed.","type":"auth_error","param":"None","code":"401"}})";
  } else {
    SleepMs(spend->delay_ms);
    status = spend->status;
    if (!spend->raw_body.empty()) {
      body = spend->raw_body;
    } else if (spend->budget_exceeded) {
      status = 400;
      body = "{\"error\":{\"message\":\"Budget has been exceeded! Current cost: " +
             money(spend->spend_usd) + ", Max budget: " + money(spend->budget_usd) +
             "\",\"type\":\"budget_exceeded\",\"param\":null,\"code\":\"400\"}}";
    } else if (status != 200) {
      body = R"({"error":{"message":"stub spend error","type":"server_error","code":")" +
             std::to_string(status) + "\"}}";
    } else if (req.path == "/key/info") {
      body = "{\"key\":\"hashed\",\"info\":{\"key_name\":\"sk-...\",\"spend\":" +
             money(spend->spend_usd) + ",\"max_budget\":" + money(spend->budget_usd) +
             ",\"models\":[],\"metadata\":{}}}";
    } else {
      body = "{\"data\":{\"label\":\"stub\",\"usage\":" + money(spend->spend_usd) +
             ",\"limit\":" + money(spend->budget_usd) + ",\"is_free_tier\":false}}";
    }
  }
  return "HTTP/1.1 " + std::to_string(status) +
         " Stub\r\nContent-Type: application/json\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n\r\n" + body;
}

void UpstreamStub::AcceptLoop() {
  int next_id = 0;
  while (!stopping_.load()) {
    sockaddr_in peer{};
    socklen_t len = sizeof(peer);
    int fd = ::accept4(listen_fd_, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_CLOEXEC);
    if (fd < 0) {
      if (stopping_.load()) return;
      continue;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    char ip[INET_ADDRSTRLEN] = {0};
    inet_ntop(AF_INET, &peer.sin_addr, ip, sizeof(ip));
    std::string peer_s = std::string(ip) + ":" + std::to_string(ntohs(peer.sin_port));
    connections_.fetch_add(1);
    std::lock_guard<std::mutex> lock(mu_);
    open_fds_.push_back(fd);
    int id = ++next_id;
    workers_.emplace_back([this, fd, id, peer_s] { Serve(fd, id, peer_s); });
  }
}

void UpstreamStub::Serve(int fd, int connection_id, std::string peer) {
  std::string buf;
  char tmp[16384];
  auto close_fd = [&] {
    {
      std::lock_guard<std::mutex> lock(mu_);
      open_fds_.erase(std::remove(open_fds_.begin(), open_fds_.end(), fd), open_fds_.end());
      ::close(fd);
      ++closed_;
    }
    closed_cv_.notify_all();
  };
  while (!stopping_.load()) {
    size_t header_end;
    while ((header_end = buf.find("\r\n\r\n")) == std::string::npos) {
      ssize_t n = ::recv(fd, tmp, sizeof(tmp), 0);
      if (n <= 0) return close_fd();
      buf.append(tmp, static_cast<size_t>(n));
    }
    StubRequest req;
    req.connection_id = connection_id;
    req.peer = peer;
    req.peer_port = static_cast<uint16_t>(std::stoi(peer.substr(peer.rfind(':') + 1)));
    std::string head = buf.substr(0, header_end);
    size_t line_end = head.find("\r\n");
    std::string request_line = head.substr(0, line_end);
    size_t sp1 = request_line.find(' '), sp2 = request_line.rfind(' ');
    req.method = request_line.substr(0, sp1);
    req.path = request_line.substr(sp1 + 1, sp2 - sp1 - 1);
    size_t pos = line_end + 2;
    while (pos < head.size()) {
      size_t e = head.find("\r\n", pos);
      if (e == std::string::npos) e = head.size();
      std::string line = head.substr(pos, e - pos);
      size_t colon = line.find(':');
      if (colon != std::string::npos) {
        std::string v = line.substr(colon + 1);
        v.erase(0, v.find_first_not_of(' '));
        req.headers[Lower(line.substr(0, colon))] = v;
      }
      pos = e + 2;
    }
    size_t content_length = 0;
    if (auto it = req.headers.find("content-length"); it != req.headers.end()) {
      content_length = std::stoul(it->second);
    }
    buf.erase(0, header_end + 4);
    while (buf.size() < content_length) {
      ssize_t n = ::recv(fd, tmp, sizeof(tmp), 0);
      if (n <= 0) return close_fd();
      buf.append(tmp, static_cast<size_t>(n));
    }
    req.body = buf.substr(0, content_length);
    buf.erase(0, content_length);
    if (auto it = req.headers.find("authorization"); it != req.headers.end()) {
      req.key = it->second.rfind("Bearer ", 0) == 0 ? it->second.substr(7) : it->second;
    } else if (auto it2 = req.headers.find("x-api-key"); it2 != req.headers.end()) {
      req.key = it2->second;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      requests_.push_back(req);
    }

    if (Wire w = ServeWireRoute(fd, req); w != Wire::kNotWire) {
      if (w == Wire::kClose) return close_fd();
      continue;
    }
    if (req.method == "GET" && (req.path == "/key/info" || req.path == "/api/v1/key")) {
      if (!WriteAll(fd, SpendResponse(req))) return close_fd();
      continue;
    }
    StubBehavior b = BehaviorFor(req.key);
    SleepMs(b.first_byte_delay_ms);
    std::string model = FindJsonString(req.body, "model");
    if (b.status != 200) {
      std::string body = ErrorBody(req.path, b);
      std::string resp = "HTTP/1.1 " + std::to_string(b.status) +
                         " Stub\r\nContent-Type: application/json\r\nContent-Length: " +
                         std::to_string(body.size()) + "\r\n";
      if (b.retry_after_s >= 0) resp += "Retry-After: " + std::to_string(b.retry_after_s) + "\r\n";
      resp += "\r\n" + body;
      if (!WriteAll(fd, resp)) return close_fd();
      continue;
    }
    bool stream = JsonTrue(req.body, "stream");
    const std::string tool = ToolToCall(req.path, req.body);
    if (!stream) {
      std::string body =
          !b.ok_body.empty() ? b.ok_body
          : tool.empty()
              ? OkBody(req.path, model, b, FindJsonString(req.body, "encoding_format") == "base64")
              : ToolCallBody(req.path, model, tool, b);
      std::string resp = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
                         std::to_string(body.size()) + "\r\n\r\n" + body;
      if (!WriteAll(fd, resp)) return close_fd();
      continue;
    }
    bool include_usage = JsonTrue(req.body, "include_usage");
    if (!WriteAll(fd, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                      "Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n")) {
      return close_fd();
    }
    std::vector<std::string> events =
        tool.empty() ? StreamEvents(req.path, model, b, include_usage)
                     : ToolCallEvents(req.path, model, tool, b, include_usage);
    for (size_t i = 0; i < events.size(); ++i) {
      if (b.reset_after_events >= 0 && static_cast<int>(i) == b.reset_after_events) {
        linger lg{1, 0};  // RST, not FIN: a broken upstream
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        return close_fd();
      }
      if (!WriteAll(fd, Chunk(events[i]))) return close_fd();
      SleepMs(b.event_interval_ms);
    }
    if (!WriteAll(fd, "0\r\n\r\n")) return close_fd();
  }
  close_fd();
}

}  // namespace keygate::testing
