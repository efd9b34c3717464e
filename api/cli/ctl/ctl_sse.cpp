#include "api/cli/ctl/ctl_sse.hpp"

#include <cctype>

namespace sluice::cli::ctl {

void SseParser::feed(std::string_view bytes) {
  buf_.append(bytes.data(), bytes.size());
  size_t pos = 0;
  for (;;) {
    const size_t eol = buf_.find('\n', pos);
    if (eol == std::string::npos) break;
    std::string_view l(buf_.data() + pos, eol - pos);
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
    pos = eol + 1;
    line(l);
  }
  buf_.erase(0, pos);
}

void SseParser::reset() {
  buf_.clear();
  event_ = SseEvent{};
  has_data_ = false;
}

void SseParser::line(std::string_view l) {
  if (l.empty()) {  // the end of an event
    if (has_data_) {
      if (event_.type.empty()) event_.type = "message";
      SseEvent done = std::move(event_);
      if (on_event) on_event(std::move(done));
    }
    event_ = SseEvent{};
    has_data_ = false;
    return;
  }
  if (l.front() == ':') return;  // a comment (heartbeat)
  const size_t colon = l.find(':');
  std::string_view field = l.substr(0, colon);
  std::string_view value = colon == std::string_view::npos ? "" : l.substr(colon + 1);
  if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  if (field == "data") {
    if (has_data_) event_.data += '\n';
    event_.data.append(value.data(), value.size());
    has_data_ = true;
  } else if (field == "event") {
    event_.type.assign(value.data(), value.size());
  } else if (field == "id") {
    event_.id.assign(value.data(), value.size());
  } else if (field == "retry") {
    bool digits = !value.empty();
    for (char c : value) digits = digits && std::isdigit(static_cast<unsigned char>(c)) != 0;
    if (digits && value.size() < 10 && on_retry) {
      on_retry(std::chrono::milliseconds(std::stoll(std::string(value))));
    }
  }
}

}  // namespace sluice::cli::ctl
