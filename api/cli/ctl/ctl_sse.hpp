// A Server-Sent Events parser for `sluice ctl watch`, fed the stream's bytes in any slices
// (https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation).
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <string_view>

namespace sluice::cli::ctl {

struct SseEvent {
  std::string id;    // the `id:` field ("" when the event had none)
  std::string type;  // the `event:` field; "message" when none
  std::string data;  // the `data:` lines joined with '\n'
};

class SseParser {
 public:
  std::function<void(SseEvent&&)> on_event;                 // each complete event
  std::function<void(std::chrono::milliseconds)> on_retry;  // a `retry:` field

  void feed(std::string_view bytes);
  /// Forgets a partial event (a new connection starts afresh).
  void reset();

 private:
  void line(std::string_view l);

  std::string buf_;
  SseEvent event_;
  bool has_data_ = false;
};

}  // namespace sluice::cli::ctl
