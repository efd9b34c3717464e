// `line-pipe`: reads the lines appended to config.input, transforms each, appends them to
// config.output, and checkpoints its input offset in durable state after each written batch.
//
// Paths are relative to the engine's files root; absolute paths, `..` and symlinks leading out
// of the root are refused. Delivery is at-least-once: a batch is written, then checkpointed; a
// hard stop or a crash between the two re-reads the batch on the next start. After soft stops
// only, no line is duplicated (the step in flight finishes before the stop hook runs).
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sluice/sdk/flow.hpp>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;
using sluice::sdk::Status;

enum class Transform { kIdentity, kUpper, kLower, kJson };

void appendJsonLine(std::string& out, const std::string& line) {
  static const char* hex = "0123456789abcdef";
  out += "{\"line\":\"";
  for (unsigned char c : line) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out += hex[c >> 4];
          out += hex[c & 15];
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += "\"}";
}

class LinePipe : public sluice::sdk::StepFlow {
 public:
  static constexpr const char* kName = "line-pipe";
  static constexpr const char* kDescription =
      "Appends the lines appended to config.input (transformed: identity, upper, lower, json) "
      "to config.output, checkpointing its input offset.";
  static constexpr const char* kConfigSchema = R"({
    "type": "object",
    "required": ["input", "output"],
    "properties": {
      "input": {"type": "string", "minLength": 1, "maxLength": 4096},
      "output": {"type": "string", "minLength": 1, "maxLength": 4096},
      "transform": {"enum": ["identity", "upper", "lower", "json"]},
      "batch_lines": {"type": "integer", "minimum": 1, "maximum": 100000},
      "interval_ms": {"type": "integer", "minimum": 1, "maximum": 3600000}
    }
  })";
  static constexpr uint32_t kStepIntervalMs = 200;

  static void validate(const sluice::sdk::Config& config, sluice::sdk::Problems& problems) {
    const std::string input = config.getString("input", "");
    const std::string output = config.getString("output", "");
    if (auto why = sluice::sdk::filesPathProblem(input); !why.empty())
      problems.add("/input", "input " + why);
    if (auto why = sluice::sdk::filesPathProblem(output); !why.empty())
      problems.add("/output", "output " + why);
    if (fs::path(input).lexically_normal() == fs::path(output).lexically_normal()) {
      problems.add("/output", "output must differ from input");
    }
  }

  LinePipe(sluice::sdk::Host host, const sluice::sdk::Config& config)
      : StepFlow(host),
        input_(config.getString("input", "")),
        output_(config.getString("output", "")),
        batch_lines_(static_cast<size_t>(config.getInt("batch_lines", 1000))),
        interval_ms_(static_cast<uint32_t>(config.getInt("interval_ms", kStepIntervalMs))) {
    const std::string t = config.getString("transform", "identity");
    transform_ = t == "upper"   ? Transform::kUpper
                 : t == "lower" ? Transform::kLower
                 : t == "json"  ? Transform::kJson
                                : Transform::kIdentity;
  }

  Status start() override {
    // Relative, no "..", and no symlink leading out of the files root (sluice/sdk/files.hpp).
    const auto in = host().resolve(input_);
    if (!in.ok()) return Status::error("input " + in.error);
    const auto out = host().resolve(output_);
    if (!out.ok()) return Status::error("output " + out.error);
    in_path_ = in.path;
    out_path_ = out.path;
    std::error_code ec;
    fs::create_directories(out_path_.parent_path(), ec);
    // The checkpoint belongs to the input file: a new input starts at its beginning.
    // A checkpoint that cannot be read is not an absent one: starting over would copy the input
    // again, so the flow fails instead.
    offset_ = 0;
    auto saved = host().stateLookup(checkpointKey());
    if (!saved.ok()) {
      return Status::error("cannot read the checkpoint of " + input_ +
                           ": the engine's state store failed");
    }
    if (saved.has_value()) {
      try {
        offset_ = std::stoull(saved.value);
      } catch (...) {
        return Status::error("checkpoint is corrupt: '" + saved.value + "'");
      }
    }
    host().gaugeSet("offset", static_cast<double>(offset_));
    host().info("line-pipe " + input_ + " -> " + output_ + " from offset " +
                std::to_string(offset_));
    return Status::ok();
  }

  Status step(sluice::sdk::StepControl& control) override {
    control.nextIn(interval_ms_);
    std::ifstream in(in_path_, std::ios::binary);
    if (!in) return Status::ok();  // no input yet
    in.seekg(0, std::ios::end);
    const auto size = static_cast<uint64_t>(in.tellg());
    if (size < offset_) {
      if (!warned_truncation_)
        host().warn("input is shorter than the checkpoint; waiting for it to grow");
      warned_truncation_ = true;
      return Status::ok();
    }
    warned_truncation_ = false;
    if (size == offset_) return Status::ok();
    in.seekg(static_cast<std::streamoff>(offset_));
    std::string out;
    uint64_t consumed = 0;
    size_t lines = 0;
    std::string line;
    while (lines < batch_lines_ && std::getline(in, line)) {
      if (in.eof()) break;  // a line without its newline yet: wait for the rest
      if (host().cancelled()) return Status::ok();  // hard stop: abandon the batch (re-read later)
      consumed += line.size() + 1;
      ++lines;
      switch (transform_) {
        case Transform::kIdentity:
          out += line;
          break;
        case Transform::kUpper:
          for (char c : line) out += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
          break;
        case Transform::kLower:
          for (char c : line) out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
          break;
        case Transform::kJson:
          appendJsonLine(out, line);
          break;
      }
      out += '\n';
    }
    if (lines == 0) return Status::ok();
    if (Status s = append(out); !s.isOk()) return s;
    offset_ += consumed;
    if (!host().statePut(checkpointKey(), std::to_string(offset_))) {
      return Status::error("cannot store the checkpoint");
    }
    host().counterAdd("lines", static_cast<int64_t>(lines));
    host().counterAdd("batches");
    host().gaugeSet("offset", static_cast<double>(offset_));
    if (lines == batch_lines_) control.again();  // more may be waiting
    return Status::ok();
  }

 private:
  std::string checkpointKey() const { return "offset:" + input_; }

  Status append(const std::string& data) {
    int fd = ::open(out_path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
      return Status::error("cannot open " + out_path_.string() + ": " + std::strerror(errno));
    size_t done = 0;
    while (done < data.size()) {
      ssize_t n = ::write(fd, data.data() + done, data.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        std::string why = std::strerror(errno);
        ::close(fd);
        return Status::error("cannot write " + out_path_.string() + ": " + why);
      }
      done += static_cast<size_t>(n);
    }
    // Durable before the checkpoint says so.
    if (::fsync(fd) != 0) {
      std::string why = std::strerror(errno);
      ::close(fd);
      return Status::error("cannot sync " + out_path_.string() + ": " + why);
    }
    ::close(fd);
    return Status::ok();
  }

  std::string input_;
  std::string output_;
  size_t batch_lines_;
  uint32_t interval_ms_;
  Transform transform_ = Transform::kIdentity;
  fs::path in_path_;
  fs::path out_path_;
  uint64_t offset_ = 0;
  bool warned_truncation_ = false;
};

}  // namespace

SLUICE_PLUGIN("line-pipe", "1.0.0", LinePipe)
