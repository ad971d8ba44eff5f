#include "admin/dashboard.h"

namespace keygate::admin {

bool IsDashboardPath(std::string_view path) {
  return path == "/dashboard" || path.substr(0, 11) == "/dashboard/";
}

Response DashboardResponse(const http::Request& request) {
  http::Headers text{{"content-type", "text/plain; charset=utf-8"}};
  if (request.method != "GET" && request.method != "HEAD") {
    return Response{405, text, "the dashboard only answers GET\n"};
  }
  std::string_view path = request.path;
  if (path == "/dashboard" || path == "/dashboard/") path = "/dashboard/index.html";
  for (size_t i = 0; i < kDashboardAssetCount; ++i) {
    const DashboardAsset& a = kDashboardAssets[i];
    if (a.path != path) continue;
    // Same-origin everything, no inline script or style: an injected string can never run.
    return Response{200,
                    {{"content-type", std::string(a.content_type)},
                     {"content-security-policy",
                      "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' "
                      "data:; connect-src 'self'; form-action 'self'; base-uri 'none'; "
                      "frame-ancestors 'none'"},
                     {"x-content-type-options", "nosniff"},
                     {"referrer-policy", "no-referrer"},
                     {"cache-control", "no-cache"}},
                    std::string(a.body)};
  }
  return Response{404, text, "no such dashboard file: " + std::string(request.path) + "\n"};
}

}  // namespace keygate::admin
