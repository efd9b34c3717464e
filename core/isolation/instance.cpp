#include "core/isolation/instance.hpp"

#include <array>

namespace sluice {
namespace {

class InProcessInstance final : public Instance {
 public:
  InProcessInstance(std::shared_ptr<const FlowType> type, void* ptr)
      : type_(std::move(type)), ptr_(ptr) {}
  ~InProcessInstance() override {
    try {
      type_->def->destroy(ptr_);
    } catch (...) {
      // a C hook that throws is the plugin's bug; the engine goes on
    }
  }
  int32_t start(sluice_error* e) override { return type_->def->start(ptr_, e); }
  int32_t stop(int32_t mode, sluice_error* e) override { return type_->def->stop(ptr_, mode, e); }
  int32_t pause(sluice_error* e) override {
    return type_->def->pause != nullptr ? type_->def->pause(ptr_, e) : SLUICE_OK;
  }
  int32_t resume(sluice_error* e) override {
    return type_->def->resume != nullptr ? type_->def->resume(ptr_, e) : SLUICE_OK;
  }
  int32_t step(uint32_t* next, sluice_error* e) override { return type_->def->step(ptr_, next, e); }
  int32_t reconfigure(const std::string& config, sluice_error* e) override {
    return type_->def->reconfigure(ptr_, config.data(), config.size(), e);
  }
  int32_t run(sluice_error* e) override { return type_->def->run(ptr_, e); }
  bool canReconfigure() const override { return type_->def->reconfigure != nullptr; }

 private:
  std::shared_ptr<const FlowType> type_;  // co-owns the library
  void* ptr_;
};

}  // namespace

std::shared_ptr<Instance> createInProcessInstance(const std::shared_ptr<const FlowType>& type,
                                                  const sluice_host* host,
                                                  const std::string& config_json,
                                                  std::string* error) {
  std::array<char, 1024> buf{};
  sluice_error e{sizeof(sluice_error), buf.data(), buf.size()};
  void* ptr = nullptr;
  int32_t rc;
  try {
    rc = type->def->create(host, config_json.data(), config_json.size(), &ptr, &e);
  } catch (...) {
    *error = "create hook threw an exception";
    return nullptr;
  }
  if (rc != SLUICE_OK) {
    buf.back() = '\0';
    *error = std::string("create hook failed: ") + (buf[0] != '\0' ? buf.data() : "no message");
    return nullptr;
  }
  if (ptr == nullptr) {
    *error = "create hook returned no instance";
    return nullptr;
  }
  return std::make_shared<InProcessInstance>(type, ptr);
}

}  // namespace sluice
