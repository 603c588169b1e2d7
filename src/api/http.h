#pragma once
// Protocol-neutral HTTP request/response values. The Beast listener (server/) converts to and from
// these so that the API layer, and everything below it, never includes Beast or Asio.

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace berth::api {

struct HttpRequest {
  std::string method;                                        // "POST"
  std::string target;                                        // path and query as received: "/?a=b"
  std::vector<std::pair<std::string, std::string>> headers;  // names as received, in order
  std::string body;
  std::string remote;  // peer address, for logs

  /// The first header named `name` (ASCII case-insensitive), or empty if absent.
  std::string_view header(std::string_view name) const;
  bool has_header(std::string_view name) const;
};

struct HttpResponse {
  int status = 200;
  std::vector<std::pair<std::string, std::string>>
      headers;  // Content-Length is added by the server
  std::string body;

  void set_header(std::string name, std::string value);
};

/// Answers one request. Implementations are thread-safe: the listener calls handle() from several
/// threads at once.
class HttpHandler {
 public:
  virtual ~HttpHandler() = default;
  virtual HttpResponse handle(const HttpRequest& request) = 0;
};

bool iequals(std::string_view a, std::string_view b);

}  // namespace berth::api
