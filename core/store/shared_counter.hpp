// A 64-bit counter in a small file that every process opening it maps: a bump by one process is
// seen by the others' next load, without a system call. The SQLite store bumps one after every
// committed token change so that a running server sees what the `sluice token` CLI did.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

namespace sluice {

class SharedCounter {
 public:
  /// Opens (creating it when missing) the counter file at `path`; nullptr and *error set when
  /// it cannot.
  static std::unique_ptr<SharedCounter> open(const std::string& path, std::string* error);
  ~SharedCounter();
  SharedCounter(const SharedCounter&) = delete;
  SharedCounter& operator=(const SharedCounter&) = delete;

  uint64_t load() const;
  void bump();

 private:
  explicit SharedCounter(uint64_t* value) : value_(value) {}
  uint64_t* value_;  // in a MAP_SHARED mapping of the file
};

}  // namespace sluice
