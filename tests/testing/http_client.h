// A blocking HTTP client for tests (libcurl easy): a real client, not a mock.
#ifndef KEYGATE_TESTS_TESTING_HTTP_CLIENT_H_
#define KEYGATE_TESTS_TESTING_HTTP_CLIENT_H_

#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace keygate::testing {

struct HttpResponse {
  int status = 0;                              // 0 when the transfer failed
  std::map<std::string, std::string> headers;  // lower-cased names (last value wins)
  std::string body;
  std::string error;  // curl's error when status == 0
};

// Sends one request. `on_data`, when set, sees body bytes as they arrive and may return false to
// abort the transfer (a client that disconnects).
HttpResponse HttpRequest(const std::string& method, const std::string& url,
                         const std::vector<std::pair<std::string, std::string>>& headers,
                         const std::string& body,
                         std::function<bool(std::string_view)> on_data = nullptr,
                         long timeout_ms = 30'000);

inline HttpResponse HttpPost(const std::string& url, const std::string& token,
                             const std::string& body) {
  return HttpRequest("POST", url,
                     {{"Authorization", "Bearer " + token}, {"Content-Type", "application/json"}},
                     body);
}

}  // namespace keygate::testing

#endif  // KEYGATE_TESTS_TESTING_HTTP_CLIENT_H_
