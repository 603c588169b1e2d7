#pragma once
// Protocol-neutral WebSocket endpoints. The Beast listener (server/http_server.cc) performs the
// upgrade and frames messages; everything above sees only these interfaces. Used for the agent
// session: the server pushes desired task state, the agent sends heartbeats and acknowledgements.

#include <memory>
#include <string>
#include <string_view>
#include <variant>

#include "api/http.h"

namespace berth::api {

/// One accepted connection. send() and close() are thread-safe and never block on I/O: messages
/// are queued and written in order by the connection's I/O thread.
class WebSocket {
 public:
  virtual ~WebSocket() = default;
  virtual void send(std::string text) = 0;
  /// Starts a clean close; the listener's on_close() follows.
  virtual void close(std::string_view reason) = 0;
  /// Peer address, for logs.
  virtual const std::string& remote() const = 0;
};

/// Receives what arrives on one connection, on its I/O thread: keep the work short.
class WebSocketListener {
 public:
  virtual ~WebSocketListener() = default;
  virtual void on_message(std::string_view text) = 0;
  /// Called exactly once, when the connection ends for any reason (peer close, error, timeout,
  /// server shutdown).
  virtual void on_close() = 0;
};

/// Accepts or refuses upgrade requests for one path.
class WebSocketAcceptor {
 public:
  virtual ~WebSocketAcceptor() = default;
  using Outcome = std::variant<std::unique_ptr<WebSocketListener>, HttpResponse>;
  /// Returns a listener to accept the upgrade, or the HTTP response refusing it (e.g. 403 with an
  /// AWS-shaped error). `socket` stays valid for the life of the connection.
  virtual Outcome accept(const HttpRequest& upgrade, std::shared_ptr<WebSocket> socket) = 0;
};

}  // namespace berth::api
