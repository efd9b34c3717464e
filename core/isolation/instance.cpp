#include "core/isolation/instance.hpp"

#include <array>

namespace sluice {
namespace {

class InProcessInstance final : public Instance {
 public:
  InProcessInstance(std::shared_ptr<const FlowType> type, HostTable host, std::string config)
      : type_(std::move(type)), host_(std::move(host)), config_(std::move(config)) {}
  ~InProcessInstance() override { destroy(nullptr); }

  int32_t create(sluice_error* e) override {
    void* ptr = nullptr;
    const int32_t rc = type_->def->create(host_.get(), config_.data(), config_.size(), &ptr, e);
    if (rc != SLUICE_OK) return rc;
    if (ptr == nullptr) {
      sluice_error_set(e, "create hook returned no instance");
      return SLUICE_ERROR;
    }
    ptr_ = ptr;
    return SLUICE_OK;
  }
  int32_t destroy(sluice_error* e) override {
    void* ptr = ptr_;
    ptr_ = nullptr;
    if (ptr == nullptr) return SLUICE_OK;
    try {
      type_->def->destroy(ptr);
    } catch (...) {
      // a C hook that throws is the plugin's bug; the engine goes on
      sluice_error_set(e, "destroy hook threw an exception");
      return SLUICE_ERROR;
    }
    return SLUICE_OK;
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
  HostTable host_;
  std::string config_;
  void* ptr_ = nullptr;  // strand only: null before create and after destroy
};

// Runs create on a freshly made instance for the one-call helpers.
std::shared_ptr<Instance> created(std::shared_ptr<Instance> instance, std::string* error) {
  if (!instance) return nullptr;
  std::array<char, 1024> buf;  // not zeroed: empty, and cut at its end
  buf.front() = buf.back() = '\0';
  sluice_error e{sizeof(sluice_error), buf.data(), buf.size()};
  int32_t rc;
  try {
    rc = instance->create(&e);
  } catch (const std::exception& ex) {
    *error = std::string("create hook threw an exception: ") + ex.what();
    return nullptr;
  } catch (...) {
    *error = "create hook threw an exception";
    return nullptr;
  }
  if (rc != SLUICE_OK) {
    buf.back() = '\0';
    *error = std::string("create hook failed: ") + (buf[0] != '\0' ? buf.data() : "no message");
    return nullptr;
  }
  return instance;
}

}  // namespace

std::shared_ptr<Instance> makeInProcessInstance(const std::shared_ptr<const FlowType>& type,
                                                HostTable host, std::string config_json) {
  return std::make_shared<InProcessInstance>(type, std::move(host), std::move(config_json));
}

std::shared_ptr<Instance> createInProcessInstance(const std::shared_ptr<const FlowType>& type,
                                                  const sluice_host* host,
                                                  const std::string& config_json,
                                                  std::string* error) {
  HostTable borrowed(host, [](const sluice_host*) {});
  return created(makeInProcessInstance(type, borrowed, config_json), error);
}

std::shared_ptr<Instance> createProcessInstance(const std::shared_ptr<const FlowType>& type,
                                                const sluice_host* host,
                                                const std::string& config_json,
                                                const ProcessOptions& options,
                                                std::function<void(const std::string&)> on_death,
                                                std::string* error) {
  HostTable borrowed(host, [](const sluice_host*) {});
  return created(
      makeProcessInstance(type, borrowed, config_json, options, std::move(on_death), error), error);
}

}  // namespace sluice
