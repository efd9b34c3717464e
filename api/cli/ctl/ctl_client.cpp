#include "api/cli/ctl/ctl_client.hpp"

#include <curl/curl.h>

#include <cctype>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <stdexcept>

#ifndef SLUICE_VERSION
#define SLUICE_VERSION "0.0.0"
#endif

namespace sluice::cli::ctl {

std::string Response::header(const std::string& lower_name) const {
  auto it = headers.find(lower_name);
  return it == headers.end() ? std::string() : it->second;
}

std::string normalizeServerUrl(std::string url) {
  if (url.find("://") == std::string::npos) url = "http://" + url;
  while (!url.empty() && url.back() == '/') url.pop_back();
  return url;
}

bool hasHttpScheme(const std::string& url) {
  std::string scheme = url.substr(0, url.find("://"));
  for (auto& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return url.find("://") != std::string::npos && (scheme == "http" || scheme == "https");
}

std::string Client::escape(std::string_view text) {
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) != 0 || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      char hex[4];
      std::snprintf(hex, sizeof hex, "%%%02X", c);
      out += hex;
    }
  }
  return out;
}

// One request in flight: what to send, what came back, and the stream's handlers (null for a
// plain request).
struct Client::Exchange {
  std::string method;
  std::string path;
  std::string body;
  std::vector<std::string> headers;
  const StreamHandlers* stream = nullptr;
  std::chrono::seconds stall{0};

  Response response;
  bool head_done = false;  // a final status line arrived
  bool stopped = false;    // a handler asked to stop
  CURL* curl = nullptr;    // borrowed from the client for the exchange
};

namespace {

std::once_flag curl_init_once;

size_t onHeader(char* data, size_t size, size_t count, void* user) {
  auto* x = static_cast<Client::Exchange*>(user);
  const size_t n = size * count;
  std::string line(data, n);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
  if (line.rfind("HTTP/", 0) == 0) {
    // A new status line (after a 100 Continue, say): the headers before it were not the
    // final response's.
    x->response.headers.clear();
    const size_t sp = line.find(' ');
    x->response.status = sp == std::string::npos ? 0 : std::atol(line.c_str() + sp + 1);
    x->head_done = x->response.status >= 200;
    return n;
  }
  const size_t colon = line.find(':');
  if (colon == std::string::npos) return n;
  std::string name = line.substr(0, colon);
  for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  size_t start = colon + 1;
  while (start < line.size() && (line[start] == ' ' || line[start] == '\t')) ++start;
  x->response.headers[name] = line.substr(start);
  return n;
}

size_t onBody(char* data, size_t size, size_t count, void* user) {
  auto* x = static_cast<Client::Exchange*>(user);
  const size_t n = size * count;
  if (x->stream != nullptr && x->response.status == 200) {
    if (x->stream->on_data && !x->stream->on_data(std::string_view(data, n))) {
      x->stopped = true;
      return 0;  // CURLE_WRITE_ERROR: the caller is done
    }
    return n;
  }
  // Error bodies are small JSON documents; a runaway one is cut (it is only printed).
  if (x->response.body.size() < (16U << 20)) x->response.body.append(data, n);
  return n;
}

int onProgress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* x = static_cast<Client::Exchange*>(user);
  if (x->stream != nullptr && x->stream->keep_going && !x->stream->keep_going()) {
    x->stopped = true;
    return 1;  // CURLE_ABORTED_BY_CALLBACK
  }
  return 0;
}

}  // namespace

Client::Client(ClientOptions options) : options_(std::move(options)) {
  std::call_once(curl_init_once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  curl_ = curl_easy_init();
  if (curl_ == nullptr) throw std::runtime_error("cannot initialise libcurl");
  options_.server = normalizeServerUrl(options_.server);
}

Client::~Client() { curl_easy_cleanup(static_cast<CURL*>(curl_)); }

Outcome Client::request(const std::string& method, const std::string& path, const std::string& body,
                        const std::vector<std::string>& headers) {
  Exchange x;
  x.method = method;
  x.path = path;
  x.body = body;
  x.headers = headers;
  return perform(x);
}

Outcome Client::stream(const std::string& path, const std::vector<std::string>& headers,
                       const StreamHandlers& handlers, std::chrono::seconds stall) {
  Exchange x;
  x.method = "GET";
  x.path = path;
  x.headers = headers;
  x.stream = &handlers;
  x.stall = stall;
  return perform(x);
}

Outcome Client::perform(Exchange& x) {
  CURL* curl = static_cast<CURL*>(curl_);
  // Reset keeps the connection cache: the next request reuses the open connection.
  curl_easy_reset(curl);
  x.curl = curl;
  const std::string url = options_.server + x.path;
  char errbuf[CURL_ERROR_SIZE] = {};
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  // Only HTTP(S): never file://, ftp://, ... (the URL was checked; this is the last word),
  // neither for the request nor for a redirect.
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_1_1));
  curl_easy_setopt(curl, CURLOPT_USERAGENT, "sluice-ctl/" SLUICE_VERSION);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(options_.connect_timeout.count()));
  if (x.stream == nullptr) {
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(options_.request_timeout.count()));
  } else {
    // No overall limit; a stream that stalls (no heartbeat either) is given up.
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, static_cast<long>(x.stall.count()));
    curl_easy_setopt(curl, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, onProgress);
    curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &x);
  }
  if (!options_.cacert.empty()) curl_easy_setopt(curl, CURLOPT_CAINFO, options_.cacert.c_str());
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, onHeader);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &x);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, onBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &x);

  const bool with_body =
      !x.body.empty() || x.method == "POST" || x.method == "PUT" || x.method == "PATCH";
  if (x.method == "GET") {
    curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
  } else if (x.method != "POST") {
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, x.method.c_str());
  }
  if (with_body) {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, x.body.data());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(x.body.size()));
  }

  curl_slist* list = nullptr;
  auto add = [&list](const std::string& h) { list = curl_slist_append(list, h.c_str()); };
  add(x.stream != nullptr ? "Accept: text/event-stream" : "Accept: application/json");
  add("Expect:");  // never wait for a 100 Continue
  if (with_body) add("Content-Type: application/json");
  if (!options_.token.empty()) add("Authorization: Bearer " + options_.token);
  for (const auto& h : x.headers) add(h);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);

  const CURLcode rc = curl_easy_perform(curl);
  curl_slist_free_all(list);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, nullptr);

  Outcome out;
  if (x.stopped) {
    out.aborted = true;
    out.response = std::move(x.response);
    return out;
  }
  if (rc == CURLE_OK) {
    out.response = std::move(x.response);
    return out;
  }
  std::string reason = errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc);
  long os_errno = 0;
  curl_easy_getinfo(curl, CURLINFO_OS_ERRNO, &os_errno);
  if (rc == CURLE_COULDNT_CONNECT && os_errno != 0)
    reason = std::strerror(static_cast<int>(os_errno));
  if (!x.head_done) {
    out.error = "cannot reach " + options_.server + ": " + reason;
  } else {
    // The head arrived: a stream keeps it, so that its caller knows it had been connected.
    if (x.stream != nullptr) out.response = std::move(x.response);
    out.error = "the connection to " + options_.server + " failed: " + reason;
  }
  return out;
}

}  // namespace sluice::cli::ctl
