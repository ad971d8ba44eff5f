// libFuzzer target for the stream code: provider::SseSplitter (through SseUsageFilter) and the
// stream translators (Anthropic, OpenAI chat and OpenAI Responses streams, each way). Properties
// checked on every input, beyond "no crash, no leak, no UB" (ASan/UBSan) and bounded memory
// (-rss_limit_mb; a small max_event_bytes is chosen by the input):
//   - the output is identical whether the input is fed whole or cut at input-chosen points;
//   - the usage filter without dropping passes every byte through unchanged;
//   - translated output is whole SSE events (ends with a blank line) whose data is JSON.
//
// Input layout: byte 0 picks the target (bits 0-1: Anthropic->OpenAI, OpenAI->Anthropic, the usage
// filter, Responses->OpenAI or (bit 2) Responses->Anthropic; with bit 4 set, OpenAI->Responses or
// (bit 2) Anthropic->Responses) and options (bit 2 include_usage; bits 3-4 the filter's format;
// bit 5 drop), bytes 1-2 the event size cap, bytes 3-6
// the cut points (as strides), the rest is the upstream stream. Build and run: docs/translation.md.
#include <boost/json.hpp>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "provider/provider.h"
#include "translate/translate.h"

namespace {

using keygate::config::Format;
using keygate::provider::SseUsageFilter;
using keygate::translate::AnthropicToOpenAIStream;
using keygate::translate::OpenAIToAnthropicStream;

void Check(bool ok) {
  if (!ok) std::abort();  // libFuzzer reports the input that broke a property
}

// Feeds `input` cut at `cuts` (ascending) to a new stream made by `make`; returns the output.
template <typename Make>
std::string Run(Make make, std::string_view input, const std::vector<size_t>& cuts) {
  auto stream = make();
  std::string out;
  size_t prev = 0;
  for (size_t cut : cuts) {
    stream.Feed(input.substr(prev, cut - prev), out);
    prev = cut;
  }
  stream.Feed(input.substr(prev), out);
  stream.Finish(out);
  return out;
}

// Every event of translated output is "…data: <JSON or [DONE]>\n\n".
void CheckEvents(std::string_view out) {
  size_t i = 0;
  while (i < out.size()) {
    size_t end = out.find("\n\n", i);
    Check(end != std::string_view::npos);
    std::string_view event = out.substr(i, end - i);
    size_t data = event.find("data: ");
    Check(data != std::string_view::npos);
    std::string_view payload = event.substr(data + 6);
    if (payload != "[DONE]") {
      boost::system::error_code ec;
      boost::json::parse(payload, ec);
      Check(!ec);
    }
    i = end + 2;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 7) return 0;
  const uint8_t mode = data[0];
  const size_t cap = 16 + (static_cast<size_t>(data[1]) << 8 | data[2]);  // 16..65551 bytes
  std::string_view input(reinterpret_cast<const char*>(data) + 7, size - 7);
  std::vector<size_t> cuts;
  for (size_t k = 3, pos = 0; k < 7; ++k) {
    pos += 1 + data[k];
    if (pos >= input.size()) break;
    cuts.push_back(pos);
  }

  switch (mode & 3) {
    case 0: {  // Anthropic SSE -> OpenAI chunks
      auto make = [&] {
        return AnthropicToOpenAIStream({.client_model = "m",
                                        .created = 1,
                                        .include_usage = (mode & 4) != 0,
                                        .max_event_bytes = cap});
      };
      std::string whole = Run(make, input, {});
      Check(Run(make, input, cuts) == whole);
      CheckEvents(whole);
      break;
    }
    case 1: {  // OpenAI chunks -> Anthropic SSE
      auto make = [&] {
        return OpenAIToAnthropicStream({.client_model = "m", .max_event_bytes = cap});
      };
      std::string whole = Run(make, input, {});
      Check(Run(make, input, cuts) == whole);
      CheckEvents(whole);
      break;
    }
    case 3: {  // OpenAI Responses SSE -> chat chunks, or on through chat to Anthropic events;
               // with bit 4: chat chunks (or Anthropic SSE, bit 2) -> Responses events
      std::string whole;
      if (mode & 16) {
        if (mode & 4) {
          auto make = [&] {
            return keygate::translate::AnthropicToResponsesStream(
                {.client_model = "m", .created = 1, .max_event_bytes = cap});
          };
          whole = Run(make, input, {});
          Check(Run(make, input, cuts) == whole);
        } else {
          auto make = [&] {
            return keygate::translate::OpenAIToResponsesStream(
                {.client_model = "m", .created = 1, .max_event_bytes = cap});
          };
          whole = Run(make, input, {});
          Check(Run(make, input, cuts) == whole);
        }
      } else if (mode & 4) {
        auto make = [&] {
          return keygate::translate::ResponsesToAnthropicStream(
              {.client_model = "m", .max_event_bytes = cap});
        };
        whole = Run(make, input, {});
        Check(Run(make, input, cuts) == whole);
      } else {
        auto make = [&] {
          return keygate::translate::ResponsesToOpenAIStream({.client_model = "m",
                                                              .created = 1,
                                                              .include_usage = (mode & 8) != 0,
                                                              .max_event_bytes = cap});
        };
        whole = Run(make, input, {});
        Check(Run(make, input, cuts) == whole);
      }
      CheckEvents(whole);
      break;
    }
    default: {  // the splitter under the pass-through filter
      const Format formats[] = {Format::kOpenAIChat, Format::kAnthropicMessages,
                                Format::kOpenAIResponses};
      const Format format = formats[(mode >> 3) % 3];
      const bool drop = (mode & 32) != 0;
      auto make = [&] { return SseUsageFilter(format, drop, cap); };
      std::string whole = Run(make, input, {});
      Check(Run(make, input, cuts) == whole);
      if (!drop) Check(whole == input);
      break;
    }
  }
  return 0;
}
