// Internal to translate/: the event loop both stream translators share, over the one
// provider::SseSplitter.
//
// Thread safety: pure functions over a splitter the caller owns.
#ifndef KEYGATE_TRANSLATE_SSE_EVENTS_H_
#define KEYGATE_TRANSLATE_SSE_EVENTS_H_

#include <string>
#include <string_view>

#include "provider/provider.h"

namespace keygate::translate::internal {

// Calls on_data(data) with the data of `event`, if it has a data line (comments and blank events
// have none).
template <typename OnData>
void EventData(std::string_view event, OnData&& on_data) {
  std::string storage;
  std::string_view data;
  bool has_content = false;
  if (provider::SseEventData(event, storage, data, has_content)) on_data(data);
}

// Appends `bytes` to `splitter` and calls on_data(data) for each complete event, while running()
// holds. Returns false when an event longer than the splitter's cap arrived (it cannot be
// translated without holding it whole; the caller ends the translation).
template <typename Running, typename OnData>
bool FeedEvents(provider::SseSplitter& splitter, std::string_view bytes, Running&& running,
                OnData&& on_data) {
  splitter.Append(bytes);
  std::string_view event;
  bool ended = false;
  while (running()) {
    provider::SseSplitter::Piece kind = splitter.Next(event, ended);
    if (kind == provider::SseSplitter::Piece::kNone) return true;
    if (kind == provider::SseSplitter::Piece::kOversized) return false;
    EventData(event, on_data);
  }
  return true;
}

// At end of stream: calls on_data for a final event that lacks its blank line, then empties
// the splitter.
template <typename OnData>
void FinishEvents(provider::SseSplitter& splitter, OnData&& on_data) {
  if (!splitter.in_oversized() && !splitter.rest().empty()) EventData(splitter.rest(), on_data);
  splitter = provider::SseSplitter(0);
}

inline std::string OversizedMessage(size_t max_event_bytes) {
  return "upstream SSE event longer than " + std::to_string(max_event_bytes) + " bytes";
}

}  // namespace keygate::translate::internal

#endif  // KEYGATE_TRANSLATE_SSE_EVENTS_H_
