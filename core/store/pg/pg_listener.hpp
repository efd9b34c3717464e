// A connection of its own that LISTENs on channels and calls back on each NOTIFY, on a thread.
// It reconnects while the server is away, and reports each LISTEN that took effect (the first
// one too): notifications sent before it are lost, so the caller re-reads what it watches.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace sluice::pg {

class Listener {
 public:
  /// `on_notify(channel, payload)`; `on_reconnect()` after each LISTEN that took effect.
  Listener(std::string url, std::vector<std::string> channels,
           std::function<void(const std::string&, const std::string&)> on_notify,
           std::function<void()> on_reconnect);
  ~Listener();
  /// Waits until the first LISTEN took effect (notifications sent after it arrive); false when
  /// `bound` passed first.
  bool waitListening(std::chrono::milliseconds bound);
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

 private:
  void run();

  const std::string url_;
  const std::vector<std::string> channels_;
  const std::function<void(const std::string&, const std::string&)> on_notify_;
  const std::function<void()> on_reconnect_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::condition_variable listening_cv_;
  bool listening_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace sluice::pg
