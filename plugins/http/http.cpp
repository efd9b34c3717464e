// `http`: one HTTP request per run (each start of the flow), with libcurl, on a thread of its
// own. The run completes when the response's status is expected, fails otherwise (or when the
// request cannot be made), and a stop aborts the transfer in flight and leaves the flow stopped.
// With config.output, the body of an expected response is appended to a file under the files
// root. A step of a DAG: a webhook called when a job finished, say. See docs/http.md.
#define SLUICE_PLUGIN_MIN_ABI_MINOR 3  // Status::done() (SLUICE_DONE)

#include <curl/curl.h>
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <sluice/sdk/duration.hpp>
#include <sluice/sdk/flow.hpp>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>

#include "http_config.hpp"

namespace {

namespace fs = std::filesystem;
using sluice::http_flow::HttpConfig;
using sluice::sdk::Status;

#define SLUICE_HTTP_VERSION "1.0.0"
constexpr const char* kUserAgent = "sluice-http/" SLUICE_HTTP_VERSION;
constexpr size_t kSnippetBytes = 200;            // of a body quoted in an error
constexpr uint64_t kMaxBodyBytes = 64ull << 20;  // kept for config.output

// ---- the plugin-level hooks: libcurl's global state, once per load
Status initCurl() {
  if (CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT); rc != CURLE_OK) {
    return Status::error(std::string("curl_global_init failed: ") + curl_easy_strerror(rc));
  }
  return Status::ok();
}
void cleanupCurl() { curl_global_cleanup(); }

// The first kSnippetBytes of `body` for a message: control characters, backslashes and bytes
// that are not UTF-8 escaped, "..." when cut.
std::string snippet(std::string_view body) {
  static const char* hex = "0123456789abcdef";
  const std::string_view head = body.substr(0, kSnippetBytes);
  std::string out;
  for (size_t i = 0; i < head.size();) {
    const auto c = static_cast<unsigned char>(head[i]);
    size_t len = c < 0x80           ? 1
                 : (c >> 5) == 0x6  ? 2
                 : (c >> 4) == 0xe  ? 3
                 : (c >> 3) == 0x1e ? 4
                                    : 0;
    for (size_t k = 1; len > 1 && k < len; ++k) {
      if (i + k >= head.size() || (static_cast<unsigned char>(head[i + k]) >> 6) != 0x2) len = 0;
    }
    if (len > 1) {
      out.append(head.substr(i, len));
      i += len;
      continue;
    }
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\\') {
      out += "\\\\";
    } else if (c < 0x20 || c >= 0x7f) {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
    ++i;
  }
  if (body.size() > kSnippetBytes) out += "...";
  return out;
}

// What the libcurl callbacks of one transfer share with the run.
struct Transfer {
  const sluice::sdk::Host* host = nullptr;
  bool keep_body = false;  // the whole body (for config.output), else its first bytes only
  std::string body;
  uint64_t received = 0;
  bool too_large = false;
  bool stopped = false;
  // A HEAD with a body goes out as a request with a body, which libcurl would then expect in
  // the response too: the transfer ends with the response's head instead.
  bool head_only = false;
  bool head_done = false;
  CURL* easy = nullptr;

  bool stopping() {
    stopped = stopped || host->stopRequested() || host->cancelled();
    return stopped;
  }
  static size_t onBody(char* data, size_t size, size_t count, void* ctx) {
    auto* t = static_cast<Transfer*>(ctx);
    const size_t n = size * count;
    t->received += n;
    if (t->keep_body) {
      if (t->body.size() + n > kMaxBodyBytes) {
        t->too_large = true;
        return 0;  // a short count aborts the transfer (CURLE_WRITE_ERROR)
      }
      t->body.append(data, n);
    } else if (t->body.size() < kSnippetBytes + 1) {
      t->body.append(data, std::min(n, kSnippetBytes + 1 - t->body.size()));
    }
    return n;
  }
  static size_t onHeader(char* data, size_t size, size_t count, void* ctx) {
    auto* t = static_cast<Transfer*>(ctx);
    const size_t n = size * count;
    const std::string_view line(data, n);
    if (t->head_only && (line == "\r\n" || line == "\n")) {
      long status = 0;
      curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
      if (status >= 200) {  // the final response's head (not a 1xx one): done
        t->head_done = true;
        return 0;  // ends the transfer (CURLE_WRITE_ERROR, taken for success)
      }
    }
    return n;
  }
  static int onProgress(void* ctx, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
    return static_cast<Transfer*>(ctx)->stopping() ? 1 : 0;  // non-zero aborts the transfer
  }
};

struct CurlDeleter {
  void operator()(CURL* h) const { curl_easy_cleanup(h); }
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

bool hasHeader(const HttpConfig& c, std::string_view name) {
  for (const auto& [n, v] : c.headers) {
    if (n.size() != name.size()) continue;
    bool same = true;
    for (size_t i = 0; i < n.size(); ++i) {
      same = same && std::tolower(static_cast<unsigned char>(n[i])) ==
                         std::tolower(static_cast<unsigned char>(name[i]));
    }
    if (same) return true;
  }
  return false;
}

class HttpFlow : public sluice::sdk::ThreadFlow {
 public:
  static constexpr const char* kName = "http";
  static constexpr const char* kDescription =
      "Sends one HTTP request per run (config.url, method, headers, body); completes on an "
      "expected status (config.expect_status, default 2xx), fails otherwise; config.output "
      "appends the response body to a file.";
  static constexpr const char* kConfigSchema = sluice::http_flow::kConfigSchema;

  static void validate(const sluice::sdk::Config& config, sluice::sdk::Problems& problems) {
    HttpConfig parsed;
    std::vector<sluice::http_flow::ConfigProblem> found;
    sluice::http_flow::parseConfig(config, &parsed, &found);
    for (const auto& p : found) problems.add(p.path, p.message);
  }

  HttpFlow(sluice::sdk::Host host, const sluice::sdk::Config& config) : ThreadFlow(host) {
    std::vector<sluice::http_flow::ConfigProblem> found;
    sluice::http_flow::parseConfig(config, &config_, &found);
    if (!found.empty()) {
      throw std::invalid_argument("config member " + found.front().path + ": " +
                                  found.front().message);
    }
    shown_url_ = sluice::http_flow::redactUrl(config_.url);
  }

  Status run() override {
    if (!idleWhilePaused()) return Status::ok();
    fs::path output;
    if (!config_.output.empty()) {
      // Checked before the request: a response that cannot be kept is not asked for.
      const auto resolved = host().resolve(config_.output);
      if (!resolved.ok()) return Status::error("output " + resolved.error);
      output = resolved.path;
      if (Status s = checkDirectory(output); !s.isOk()) return s;
    }

    Transfer transfer;
    transfer.host = &host();
    transfer.keep_body = !output.empty();
    long status = 0;
    if (Status s = perform(&transfer, &status); !s.isOk() || transfer.stopped) return s;

    host().counterAdd("requests");
    host().counterAdd("bytes_in", static_cast<int64_t>(transfer.received));
    host().gaugeSet("last_status", static_cast<double>(status));
    if (!config_.expects(status)) {
      std::string message = "unexpected status " + std::to_string(status) + " from " +
                            config_.method + " " + shown_url_ + " (expected " +
                            config_.expectedText() + ")";
      message += transfer.body.empty() ? "; empty body" : "; body: " + snippet(transfer.body);
      return Status::error(message);
    }
    if (!output.empty()) {
      if (Status s = append(output, transfer.body); !s.isOk()) return s;
    }
    host().info(config_.method + " " + shown_url_ + ": " + std::to_string(status) + ", " +
                std::to_string(transfer.received) + " bytes");
    return Status::done();
  }

 private:
  // Idles while the flow is paused before its request; false when a stop came meanwhile.
  bool idleWhilePaused() const {
    while (!host().stopRequested() && !host().cancelled()) {
      if (!host().pauseRequested()) return true;
      if (const int fd = host().stopFd(); fd >= 0) {
        pollfd p{fd, POLLIN, 0};
        ::poll(&p, 1, 100);
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    }
    return false;
  }

  Status checkDirectory(const fs::path& file) const {
    std::error_code ec;
    if (!fs::is_directory(file.parent_path(), ec)) {
      return Status::error("output " + config_.output + ": the directory " +
                           file.parent_path().string() +
                           " does not exist (the flow creates the file, not its directories)");
    }
    return Status::ok();
  }

  // The request, from start to its last byte, or until a stop aborts it (transfer->stopped
  // then, and ok). An error when no response came.
  Status perform(Transfer* transfer, long* status) {
    // Declared before the handle, which uses them until its cleanup.
    char error_text[CURL_ERROR_SIZE] = "";
    std::unique_ptr<curl_slist, CurlDeleter> headers;
    auto add_header = [&](const std::string& line) {
      curl_slist* head = curl_slist_append(headers.get(), line.c_str());
      if (head == nullptr) return false;  // the list is unchanged
      if (!headers) headers.reset(head);  // else the same head, one item longer
      return true;
    };
    bool headers_ok = true;
    for (const auto& [name, value] : config_.headers) {
      // "Name:" would remove a header; "Name;" sends it empty.
      headers_ok = headers_ok && add_header(value.empty() ? name + ";" : name + ": " + value);
    }
    const bool sends_body = config_.has_body || config_.method == "POST" ||
                            config_.method == "PUT" || config_.method == "PATCH";
    // Sent as is: no form content type of libcurl's own, no 100-continue round trip.
    if (sends_body && !hasHeader(config_, "Content-Type")) {
      headers_ok = headers_ok && add_header("Content-Type:");
    }
    if (!hasHeader(config_, "Expect")) headers_ok = headers_ok && add_header("Expect:");
    if (!headers_ok) return Status::error("cannot build the request's headers: out of memory");

    std::unique_ptr<CURL, CurlDeleter> easy(curl_easy_init());
    if (!easy) return Status::error("curl_easy_init failed");
    CURL* h = easy.get();
    CURLcode rc = CURLE_OK;
    auto set = [&rc](CURLcode c) {
      if (rc == CURLE_OK) rc = c;
    };
    set(curl_easy_setopt(h, CURLOPT_ERRORBUFFER, error_text));
    set(curl_easy_setopt(h, CURLOPT_URL, config_.url.c_str()));
#if CURL_AT_LEAST_VERSION(7, 85, 0)
    set(curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https"));
#else
    set(curl_easy_setopt(h, CURLOPT_PROTOCOLS,
                         static_cast<long>(CURLPROTO_HTTP | CURLPROTO_HTTPS)));
#endif
    set(curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L));
    set(curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L));
    set(curl_easy_setopt(h, CURLOPT_USERAGENT, kUserAgent));
    set(curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(config_.timeout.count())));
    set(curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(config_.timeout.count())));
    set(curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers.get()));
    set(curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &Transfer::onBody));
    set(curl_easy_setopt(h, CURLOPT_WRITEDATA, transfer));
    set(curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L));
    set(curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, &Transfer::onProgress));
    set(curl_easy_setopt(h, CURLOPT_XFERINFODATA, transfer));
    // The method: GET, POST and HEAD (without a body) as libcurl has them, the others named.
    if (config_.method == "HEAD" && !sends_body) set(curl_easy_setopt(h, CURLOPT_NOBODY, 1L));
    if (config_.method == "HEAD" && sends_body) {
      transfer->head_only = true;
      transfer->easy = h;
      set(curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, &Transfer::onHeader));
      set(curl_easy_setopt(h, CURLOPT_HEADERDATA, transfer));
    }
    if (sends_body) {
      set(curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
                           static_cast<curl_off_t>(config_.body.size())));
      set(curl_easy_setopt(h, CURLOPT_POSTFIELDS, config_.body.c_str()));
    }
    if (config_.method != "POST" && (config_.method != "GET" || sends_body) &&
        (config_.method != "HEAD" || sends_body)) {
      set(curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, config_.method.c_str()));
    }
    if (rc != CURLE_OK) {
      return Status::error(std::string("cannot set up the request: ") + curl_easy_strerror(rc));
    }

    rc = drive(h, transfer);
    if (rc == CURLE_WRITE_ERROR && transfer->head_done) rc = CURLE_OK;
    // A response that arrived in full before the stop is still judged.
    if (rc == CURLE_OK) transfer->stopped = false;
    if (transfer->stopped && rc == CURLE_ABORTED_BY_CALLBACK) {
      host().info(config_.method + " " + shown_url_ + " aborted: the flow was stopped");
      return Status::ok();
    }
    if (rc != CURLE_OK) {
      std::string what = curl_easy_strerror(rc);
      std::string detail = error_text;
      while (!detail.empty() && (detail.back() == '\n' || detail.back() == '\r')) detail.pop_back();
      if (!detail.empty()) what += " (" + detail + ")";
      const std::string request = config_.method + " " + shown_url_;
      if (rc == CURLE_OPERATION_TIMEDOUT) {
        return Status::error(request + " timed out after " +
                             sluice::sdk::formatDuration(config_.timeout) + ": " + what);
      }
      if (transfer->too_large) {
        return Status::error(request + " failed: the response body is larger than " +
                             std::to_string(kMaxBodyBytes >> 20) + " MiB, the most config.output " +
                             "keeps");
      }
      return Status::error(request + " failed: " + what);
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
    return Status::ok();
  }

  // Runs the transfer on a multi handle, waiting on its sockets and on the host's stop
  // descriptor, so that a stop aborts it at once (the progress callback aborts it too).
  CURLcode drive(CURL* easy, Transfer* transfer) const {
    std::unique_ptr<CURLM, decltype(&curl_multi_cleanup)> multi(curl_multi_init(),
                                                                &curl_multi_cleanup);
    if (!multi) return CURLE_OUT_OF_MEMORY;
    if (curl_multi_add_handle(multi.get(), easy) != CURLM_OK) return CURLE_FAILED_INIT;
    CURLcode result = CURLE_OK;
    int running = 1;
    while (running > 0) {
      if (curl_multi_perform(multi.get(), &running) != CURLM_OK) {
        result = CURLE_FAILED_INIT;
        break;
      }
      if (running == 0) break;
      if (transfer->stopping()) {
        result = CURLE_ABORTED_BY_CALLBACK;  // as the progress callback would have
        break;
      }
      const int fd = host().stopFd();
      curl_waitfd stop{fd, CURL_WAIT_POLLIN, 0};
      if (curl_multi_wait(multi.get(), fd >= 0 ? &stop : nullptr, fd >= 0 ? 1u : 0u,
                          fd >= 0 ? 1000 : 100, nullptr) != CURLM_OK) {
        result = CURLE_FAILED_INIT;
        break;
      }
    }
    int left = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi.get(), &left)) {
      if (msg->msg == CURLMSG_DONE && msg->easy_handle == easy) result = msg->data.result;
    }
    curl_multi_remove_handle(multi.get(), easy);
    return result;
  }

  Status append(const fs::path& path, const std::string& data) const {
    const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
      const std::string why = std::strerror(errno);
      if (Status s = checkDirectory(path); !s.isOk()) return s;  // removed since the check
      return Status::error("cannot open output " + path.string() + ": " + why);
    }
    size_t done = 0;
    while (done < data.size()) {
      const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        const std::string why = std::strerror(errno);
        ::close(fd);
        return Status::error("cannot write output " + path.string() + ": " + why);
      }
      done += static_cast<size_t>(n);
    }
    if (::fsync(fd) != 0) {
      const std::string why = std::strerror(errno);
      ::close(fd);
      return Status::error("cannot sync output " + path.string() + ": " + why);
    }
    ::close(fd);
    return Status::ok();
  }

  HttpConfig config_;
  std::string shown_url_;  // the URL without its password, for messages
};

}  // namespace

SLUICE_PLUGIN_WITH_HOOKS("http", SLUICE_HTTP_VERSION, initCurl, cleanupCurl, HttpFlow)
