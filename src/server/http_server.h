#pragma once
// HttpServer: the control plane's HTTP/1.1 listener (Boost.Beast on Asio, C++20 coroutines).
// Keep-alive, a body-size limit (413), header and body read timeouts (408), many concurrent
// connections, graceful shutdown (stop accepting, finish requests in flight, close idle
// connections). It also upgrades requests on registered paths to WebSockets (the agent session):
// the connection then belongs to an api::WebSocketListener, kept alive by pings and closed when
// the peer goes silent. Beast and Asio stay inside http_server.cc to keep compile times down.

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include "api/http.h"
#include "api/websocket.h"
#include "common/result.h"

namespace berth::server {

struct HttpServerOptions {
  std::string listen = "127.0.0.1:0";  // ADDR:PORT, port 0 picks a free port
  size_t max_body_bytes = 1 << 20;     // larger bodies get 413 (ECS's own limits are far below)
  std::chrono::milliseconds header_timeout{10'000};  // slow clients get 408, then close
  std::chrono::milliseconds body_timeout{30'000};
  std::chrono::milliseconds idle_timeout{60'000};    // idle keep-alive connections are closed
  std::chrono::milliseconds shutdown_grace{10'000};  // max wait for requests in flight on stop
  // A client that stops reading its responses would otherwise pin a connection forever.
  std::chrono::milliseconds write_timeout{30'000};
  // Bounds the memory one request line plus headers can take; larger gets 431. SigV4 headers
  // are well under 4 KiB, so 16 KiB leaves room without letting a client hoard memory.
  size_t max_header_bytes = 16 * 1024;
  // Beyond this many open connections new ones are accepted and closed at once, so a flood
  // cannot exhaust file descriptors the store and agents' sessions need. 0 means no limit.
  size_t max_connections = 10'000;
  int threads = 2;  // one io_context per thread; connections are spread round-robin
  // WebSockets: a ping goes out every ws_ping_interval, and a connection on which no frame at all
  // (message, pong, ping) arrived for ws_idle_timeout is closed. That is how the server notices an
  // agent whose host died without closing its socket: TCP alone would keep it "open" for hours.
  // Three missed pings before giving up rides out a brief network stall or GC-like pause.
  std::chrono::milliseconds ws_ping_interval{10'000};
  std::chrono::milliseconds ws_idle_timeout{30'000};
  // Larger messages close the connection with 1009. Desired state for a host full of tasks is far
  // below this; the bound keeps one peer from making the server buffer without limit.
  size_t ws_max_message_bytes = 4 << 20;
};

class HttpServer {
 public:
  HttpServer(HttpServerOptions options, api::HttpHandler& handler);
  ~HttpServer();

  /// Binds and listens. Returns the bound address "ADDR:PORT" (the real port when 0 was asked).
  Result<std::string> start();
  /// Serves WebSocket upgrades on `path` (exact match, query ignored) through `acceptor`, which
  /// must outlive the server. Call before start(). A valid upgrade (GET, HTTP/1.1, Upgrade:
  /// websocket, Connection: upgrade, Sec-WebSocket-Key, Sec-WebSocket-Version: 13) goes to
  /// acceptor.accept() on an I/O thread; any other request on `path` gets 400 (426 for a wrong
  /// version) and upgrade attempts on paths not registered get 404. On stop() open WebSockets
  /// get a close frame (1001 going away) and their listener's on_close().
  void add_websocket(std::string path, api::WebSocketAcceptor& acceptor);
  /// Serves on `threads` threads until stop() (or SIGTERM/SIGINT when handle_signals) and then
  /// shuts down gracefully. Returns when every thread has finished.
  void run(bool handle_signals);
  /// Thread-safe; may be called from any thread or a signal-safe context via run()'s handler.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace berth::server
