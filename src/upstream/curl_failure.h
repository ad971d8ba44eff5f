// How a finished curl transfer maps to a Failure: one table, no I/O, tested row by row.
//
// Internal to upstream/ (the public contract is upstream.h). Thread safety: pure functions.
#ifndef KEYGATE_UPSTREAM_CURL_FAILURE_H_
#define KEYGATE_UPSTREAM_CURL_FAILURE_H_

#include <string>
#include <string_view>

#include "upstream/upstream.h"

namespace keygate::upstream {

// What curl reported about a transfer that ended.
struct CurlOutcome {
  int code = 0;                // CURLcode
  long connect_code = 0;       // CURLINFO_HTTP_CONNECTCODE: the proxy's answer to CONNECT, or 0
  long proxy_error = 0;        // CURLINFO_PROXY_ERROR (CURLproxycode), 0 = none
  bool via_proxy = false;      // a proxy was configured for this transfer
  bool request_started = false;  // the connection (tunnel, TLS) was ready: PREREQFUNCTION ran
  std::string_view detail;     // curl's error buffer; may be empty; may name the proxy host
  std::string_view proxy_display;  // the proxy URL without password, for the message
};

// Classifies `outcome`. kNone for CURLE_OK. The message is built from `detail` (or curl's generic
// text) with every occurrence of `secret` (raw and percent-encoded) replaced by "***".
Failure ClassifyCurlOutcome(const CurlOutcome& outcome, std::string_view secret);

// Replaces every occurrence of `secret` and of its percent-encoded form in `text` with "***".
std::string ScrubSecret(std::string text, std::string_view secret);

}  // namespace keygate::upstream

#endif  // KEYGATE_UPSTREAM_CURL_FAILURE_H_
