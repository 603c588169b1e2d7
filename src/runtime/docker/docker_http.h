#pragma once
// HTTP/1.1 over the engine's unix socket, blocking with a deadline, one connection per request.
// Connections are cheap on a local socket (well under a millisecond) and a fresh one per call
// means a call that times out or is cancelled never leaves a half-read response behind for the
// next caller. Beast and Asio stay inside docker_http.cc: this header is included by code that
// must compile quickly.

#include <chrono>
#include <cstddef>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"

namespace berth::runtime::docker {

struct HttpRequest {
  std::string method{};  // "GET", "POST", "DELETE"
  std::string target{};  // "/v1.40/containers/json?all=1"
  std::string body{};    // JSON, sent with Content-Type: application/json when not empty
  std::vector<std::pair<std::string, std::string>> headers{};
};

struct HttpResponse {
  int status = 0;
  std::string body;  // for stream(): only the body of an unsuccessful (>= 300) response
};

/// Cancels a stream() in progress from another thread: closes its socket, so the blocked read
/// returns and stream() reports Errc::cancelled.
class StreamCanceller {
 public:
  void cancel();
  bool cancelled() const;

 private:
  friend class UnixHttpClient;
  // Returns false if already cancelled (the caller then does not start).
  bool set_hook(std::function<void()> hook);
  void clear_hook();

  mutable std::mutex mu_;
  bool cancelled_ = false;
  std::function<void()> hook_;
};

class UnixHttpClient {
 public:
  using Duration = std::chrono::milliseconds;
  static constexpr Duration kNoTimeout = Duration::max();

  explicit UnixHttpClient(std::string socket_path) : path_(std::move(socket_path)) {}
  const std::string& socket_path() const { return path_; }

  /// Sends the request and reads the whole response within `timeout`. A body longer than
  /// body_limit fails with Errc::engine (no engine reply we read is near the default).
  Result<HttpResponse> call(const HttpRequest& req, Duration timeout,
                            size_t body_limit = 64 << 20) const;

  struct StreamOptions {
    Duration total = kNoTimeout;                  // whole exchange
    Duration inactivity = kNoTimeout;             // longest wait for each read
    Duration header = kNoTimeout;                 // connect, send and read the response header
    std::function<void(int status)> on_header{};  // called once the header has arrived
    StreamCanceller* canceller = nullptr;
  };
  /// Sends the request and delivers a successful response's body to on_data as it arrives
  /// (chunked, length-delimited or until EOF); on_data returning false stops reading early.
  Result<HttpResponse> stream(const HttpRequest& req, const StreamOptions& opts,
                              const std::function<bool(std::string_view)>& on_data) const;

 private:
  std::string path_;
};

}  // namespace berth::runtime::docker
