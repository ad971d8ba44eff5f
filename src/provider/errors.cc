// Error bodies in the shapes the clients' SDKs parse. Written by hand with a checked string
// encoder: messages may quote upstream text (quotes, newlines, any bytes), and the output must be
// valid JSON in valid UTF-8 whatever they contain.
#include <string>

#include "provider/json_text.h"
#include "provider/provider.h"

namespace keygate::provider {

std::string OpenAIErrorJson(std::string_view message, std::string_view type,
                            std::string_view code) {
  std::string out;
  out.reserve(message.size() + type.size() + code.size() + 64);
  out.append("{\"error\":{\"message\":");
  internal::AppendJsonString(out, message);
  out.append(",\"type\":");
  internal::AppendJsonString(out, type);
  out.append(",\"param\":null,\"code\":");
  if (code.empty()) {
    out.append("null");
  } else {
    internal::AppendJsonString(out, code);
  }
  out.append("}}");
  return out;
}

std::string AnthropicErrorJson(std::string_view message, std::string_view type) {
  std::string out;
  out.reserve(message.size() + type.size() + 48);
  out.append("{\"type\":\"error\",\"error\":{\"type\":");
  internal::AppendJsonString(out, type);
  out.append(",\"message\":");
  internal::AppendJsonString(out, message);
  out.append("}}");
  return out;
}

std::string JsonString(std::string_view s) {
  std::string out;
  internal::AppendJsonString(out, s);
  return out;
}

}  // namespace keygate::provider
