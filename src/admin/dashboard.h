// The dashboard (/dashboard): static files (src/admin/dashboard/) embedded into the binary at build
// time (cmake/embed_assets.cmake) and served by keygate itself, no CDN. The pages call the admin API
// with the admin key the operator signs in with (kept in the browser tab's sessionStorage, sent as
// a Bearer header): the files themselves are public and hold no data.
//
// Thread safety: immutable data and pure functions.
#ifndef KEYGATE_ADMIN_DASHBOARD_H_
#define KEYGATE_ADMIN_DASHBOARD_H_

#include <cstddef>
#include <iterator>
#include <string_view>

#include "admin/admin.h"

namespace keygate::admin {

struct DashboardAsset {
  std::string_view path;  // "/dashboard/app.js"
  std::string_view content_type;
  std::string_view body;
};
extern const DashboardAsset kDashboardAssets[];
extern const size_t kDashboardAssetCount;

// True for /dashboard and everything under /dashboard/.
bool IsDashboardPath(std::string_view path);

// The file for a GET or HEAD of `request.path` ("/dashboard" and "/dashboard/" are index.html),
// with a strict Content-Security-Policy (same origin only, no inline script); a 404 or 405 text
// response otherwise.
Response DashboardResponse(const http::Request& request);

}  // namespace keygate::admin

#endif  // KEYGATE_ADMIN_DASHBOARD_H_
