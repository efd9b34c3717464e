#include "core/store/shared_counter.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

namespace sluice {

std::unique_ptr<SharedCounter> SharedCounter::open(const std::string& path, std::string* error) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    *error = "cannot open " + path + ": " + std::strerror(errno);
    return nullptr;
  }
  struct stat st {};
  // Growing the file to 8 bytes only ever adds zeros: two processes doing it at once agree.
  if (::fstat(fd, &st) != 0 || (st.st_size < static_cast<off_t>(sizeof(uint64_t)) &&
                                ::ftruncate(fd, sizeof(uint64_t)) != 0)) {
    *error = "cannot size " + path + ": " + std::strerror(errno);
    ::close(fd);
    return nullptr;
  }
  void* p = ::mmap(nullptr, sizeof(uint64_t), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ::close(fd);  // the mapping keeps the file
  if (p == MAP_FAILED) {
    *error = "cannot map " + path + ": " + std::strerror(errno);
    return nullptr;
  }
  return std::unique_ptr<SharedCounter>(new SharedCounter(static_cast<uint64_t*>(p)));
}

SharedCounter::~SharedCounter() { ::munmap(value_, sizeof(uint64_t)); }

uint64_t SharedCounter::load() const {
  return std::atomic_ref<uint64_t>(*value_).load(std::memory_order_acquire);
}

void SharedCounter::bump() {
  std::atomic_ref<uint64_t>(*value_).fetch_add(1, std::memory_order_acq_rel);
}

}  // namespace sluice
