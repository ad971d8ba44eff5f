#include "upstream/curl_failure.h"

#include <curl/curl.h>

#include <cctype>
#include <string>

namespace keygate::upstream {

std::string_view ErrorKindName(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kNone: return "none";
    case ErrorKind::kConnect: return "connect";
    case ErrorKind::kProxy: return "proxy";
    case ErrorKind::kTls: return "tls";
    case ErrorKind::kTimeout: return "timeout";
    case ErrorKind::kReset: return "reset";
    case ErrorKind::kCancelled: return "cancelled";
    case ErrorKind::kOther: return "other";
  }
  return "unknown";
}

namespace {

void ReplaceAll(std::string& text, std::string_view needle) {
  if (needle.empty()) return;
  for (size_t pos = text.find(needle); pos != std::string::npos;
       pos = text.find(needle, pos + 3)) {
    text.replace(pos, needle.size(), "***");
  }
}

std::string PercentEncode(std::string_view in) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : in) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

bool IsTlsError(int code) {
  switch (code) {
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CLIENTCERT:
    case CURLE_USE_SSL_FAILED:
      return true;
    default:
      return false;
  }
}

// Errors meaning "the connection failed or broke".
bool IsConnectionError(int code) {
  switch (code) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
      return true;
    default:
      return false;
  }
}

}  // namespace

std::string ScrubSecret(std::string text, std::string_view secret) {
  if (secret.empty()) return text;
  ReplaceAll(text, secret);
  std::string encoded = PercentEncode(secret);
  if (encoded != secret) ReplaceAll(text, encoded);
  return text;
}

Failure ClassifyCurlOutcome(const CurlOutcome& o, std::string_view secret) {
  Failure f;
  if (o.code == CURLE_OK) return f;

  // The table, first matching row wins. Order matters: a proxy's non-2xx answer to CONNECT is
  // reported as CURLE_RECV_ERROR (tinyproxy's 401) or CURLE_PROXY, so it is checked before the
  // generic rows, and a broken connection counts against the proxy only while the tunnel was
  // still being built (before PREREQFUNCTION).
  bool proxy_phase = o.via_proxy && !o.request_started;
  if (o.via_proxy && o.connect_code >= 300) {
    f.kind = ErrorKind::kProxy;
    f.proxy_status = static_cast<int>(o.connect_code);
  } else if (o.code == CURLE_COULDNT_RESOLVE_PROXY || o.code == CURLE_PROXY) {
    f.kind = ErrorKind::kProxy;
  } else if (o.code == CURLE_OPERATION_TIMEDOUT) {
    f.kind = ErrorKind::kTimeout;
  } else if (IsTlsError(o.code)) {
    f.kind = ErrorKind::kTls;
  } else if (proxy_phase && IsConnectionError(o.code)) {
    // With a proxy, curl only ever connects to the proxy: "couldn't connect" is the proxy, and
    // so is a connection dropped during the CONNECT / SOCKS handshake.
    f.kind = ErrorKind::kProxy;
  } else if (o.code == CURLE_COULDNT_RESOLVE_HOST || o.code == CURLE_COULDNT_CONNECT) {
    f.kind = ErrorKind::kConnect;
  } else if (IsConnectionError(o.code)) {
    f.kind = ErrorKind::kReset;
  } else {
    f.kind = ErrorKind::kOther;
  }

  std::string message(o.detail.empty() ? std::string_view(curl_easy_strerror(
                                             static_cast<CURLcode>(o.code)))
                                       : o.detail);
  while (!message.empty() && (message.back() == '\n' || message.back() == '\r')) {
    message.pop_back();
  }
  message += " (curl " + std::to_string(o.code);
  if (o.proxy_error != 0) message += ", proxy error " + std::to_string(o.proxy_error);
  message += ")";
  if (f.kind == ErrorKind::kProxy && !o.proxy_display.empty()) {
    message = "via proxy " + std::string(o.proxy_display) + ": " + message;
  }
  f.message = ScrubSecret(std::move(message), secret);
  return f;
}

}  // namespace keygate::upstream
