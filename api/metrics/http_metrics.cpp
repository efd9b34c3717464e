#include "api/metrics/http_metrics.hpp"

#include "api/metrics/exposition.hpp"

namespace sluice::metrics {

void HttpMetrics::record(std::string_view method, std::string_view route, int code,
                         double seconds) {
  Histogram* h;
  {
    std::lock_guard lock(mu_);
    ++requests_[{std::string(method), std::string(route), code}];
    auto it = durations_.find(route);
    if (it == durations_.end()) {
      it = durations_
               .emplace(std::string(route),
                        std::make_unique<Histogram>(Histogram::defaultLatencyBounds()))
               .first;
    }
    h = it->second.get();  // never removed: stays valid
  }
  h->observe(seconds);
}

void HttpMetrics::write(std::string& out) const {
  ExpositionWriter w(out);
  std::lock_guard lock(mu_);
  w.family("sluice_http_requests_total", "counter",
           "HTTP requests answered, by method, route template and status code.");
  for (const auto& [key, count] : requests_) {
    const auto& [method, route, code] = key;
    const std::string code_text = std::to_string(code);
    w.sample("sluice_http_requests_total",
             {{"method", method}, {"route", route}, {"code", code_text}}, count);
  }
  w.family("sluice_http_request_duration_seconds", "histogram",
           "Time from a request's dispatch to its response, by route template.");
  for (const auto& [route, h] : durations_) {
    w.histogram("sluice_http_request_duration_seconds", {{"route", route}}, *h);
  }
}

}  // namespace sluice::metrics
