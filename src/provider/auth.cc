#include <string>

#include "provider/provider.h"

namespace keygate::provider {

std::pair<std::string, std::string> AuthHeader(AuthStyle style, std::string_view secret) {
  switch (style) {
    case AuthStyle::kXApiKey:
      return {"x-api-key", std::string(secret)};
    case AuthStyle::kBearer:
      break;
  }
  std::string value;
  value.reserve(7 + secret.size());
  value.append("Bearer ").append(secret);
  return {"authorization", std::move(value)};
}

}  // namespace keygate::provider
