#pragma once
// WebSocketClient: the agent's end of its session with the server. A blocking API for the
// session thread over one background I/O thread, which keeps the connection alive on its own:
// it answers the server's pings and notices a server that went silent even while nobody is
// calling receive(). Beast and Asio stay inside ws_client.cc.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "common/result.h"

namespace berth::agent {

enum class WebSocketErrc {
  kConnectFailed = 1,  // resolve or TCP connect failed (server down, wrong port): retriable
  kRejected,           // the server answered the upgrade with an HTTP error (e.g. 403)
  kTimeout,            // connect, handshake or a send did not finish in time: retriable
  kClosed,             // the connection ended: closed by either side, lost, or gone silent
  kTooBig,             // a message from the server exceeded max_message_bytes
};
const std::error_category& websocket_category();
std::error_code make_error_code(WebSocketErrc e);

struct WebSocketClientOptions {
  // A server that sent nothing at all (it pings every 10 s by default) for this long is taken
  // for dead: receive() then fails with kClosed. Half-way through, the client pings on its own
  // so that an idle but healthy server always has something to answer.
  std::chrono::milliseconds idle_timeout{30'000};
  // Larger messages from the server fail the connection, bounding what a confused server can
  // make the agent buffer. Matches the server's own default limit.
  size_t max_message_bytes = 4 << 20;
};

class WebSocketClient {
 public:
  ~WebSocketClient();  // close()s
  WebSocketClient(const WebSocketClient&) = delete;
  WebSocketClient& operator=(const WebSocketClient&) = delete;

  /// Connects to ws://host:port/target. The upgrade request is
  ///   GET <target> HTTP/1.1
  ///   Host: <host>:<port>      (always with the port, even 80; an IPv6 literal as [addr]:port)
  ///   Upgrade, Connection, Sec-WebSocket-Key, Sec-WebSocket-Version: 13, User-Agent: berth-agent
  ///   <headers>, in order
  /// so SigV4 headers for it are signed over method GET, `target` as given (path and query) and
  /// host "host:port". A header in `headers` replaces a generated one of the same name (Host
  /// included). `timeout` bounds resolve + connect + handshake together, and later each send()
  /// and the close handshake. Errors: kConnectFailed, kRejected (the message carries the HTTP
  /// status and body), kTimeout.
  static Result<std::unique_ptr<WebSocketClient>> connect(
      const std::string& host, uint16_t port, const std::string& target,
      const std::vector<std::pair<std::string, std::string>>& headers,
      std::chrono::milliseconds timeout, WebSocketClientOptions options = {});

  /// Sends one text message; returns once it has been handed to the kernel. Safe to call from
  /// any thread, concurrently with receive(). Fails with kClosed once the connection has ended,
  /// and with kTimeout (after which the connection is dropped: a half-written frame cannot be
  /// taken back) when the server has not read for `timeout`.
  Status send(const std::string& text);

  /// The next message from the server: waits up to `timeout`, nullopt when none came. Messages
  /// that arrived before the connection ended are still returned; after them, an error (kClosed,
  /// kTooBig). One thread at a time.
  Result<std::optional<std::string>> receive(std::chrono::milliseconds timeout);

  /// Closes cleanly (1000), waiting up to `timeout` for the server's answer, then drops the
  /// connection. Idempotent; a receive() blocked on another thread returns kClosed.
  void close();

 private:
  struct State;
  explicit WebSocketClient(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace berth::agent

template <>
struct std::is_error_code_enum<berth::agent::WebSocketErrc> : std::true_type {};
