// libFuzzer target for the request path: provider::InspectRequest (which finds the top-level
// members from simdjson's structural index) and provider::RewriteRequest. Properties checked on
// every input the inspector accepts, beyond "no crash, no leak, no UB" (ASan/UBSan):
//   - its spans (model, stream_options, the closing brace) equal the byte scanner's
//     (internal::ForEachMember) over the same body, as tests/provider/request_test.cc checks on
//     random mutations;
//   - its model is the decoded "model" token, and its stream flag is the "stream" member's
//     literal being true;
//   - the rewritten body (a model that needs escaping, with and without include_usage added) is
//     accepted again, with the new model and, when added, include_usage.
// The input is the request body. Build and run: docs/translation.md, "Fuzzing".
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "provider/json_text.h"
#include "provider/provider.h"

namespace {

namespace provider = keygate::provider;
namespace internal = keygate::provider::internal;

void Check(bool ok) {
  if (!ok) std::abort();  // libFuzzer reports the input that broke a property
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  auto info = provider::InspectRequest(body);
  if (!info.ok()) return 0;

  provider::Span model, stream_options, stream;
  const size_t end = internal::ForEachMember(
      body, internal::SkipWs(body, 0), [&](std::string_view key, provider::Span value) {
        if (internal::JsonStringEquals(key, "model")) model = value;
        if (internal::JsonStringEquals(key, "stream_options")) stream_options = value;
        if (internal::JsonStringEquals(key, "stream")) stream = value;
      });
  Check(info->object_end == end);
  Check(info->model_value.begin == model.begin && info->model_value.end == model.end);
  Check(info->stream_options_value.begin == stream_options.begin &&
        info->stream_options_value.end == stream_options.end);
  auto decoded = internal::DecodeJsonString(body.substr(model.begin, model.end - model.begin));
  Check(decoded.has_value() && *decoded == info->model);
  Check(info->stream == (body.substr(stream.begin, stream.end - stream.begin) == "true"));

  for (bool add : {false, true}) {
    const std::string out = provider::RewriteRequest(body, *info, "new\"m\xc3\xa9", add);
    auto again = provider::InspectRequest(out);
    Check(again.ok());
    Check(again->model == "new\"m\xc3\xa9");
    Check(again->stream == info->stream);
    if (add) Check(again->include_usage);
  }
  return 0;
}
