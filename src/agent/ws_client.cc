#include "agent/ws_client.h"

#include <condition_variable>
#include <deque>
#include <exception>
#include <future>
#include <mutex>
#include <thread>
#include <tuple>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket.hpp>

namespace berth::agent {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using boost::system::error_code;

constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);

class Category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "berth.agent.websocket"; }
  std::string message(int code) const override {
    switch (static_cast<WebSocketErrc>(code)) {
      case WebSocketErrc::kConnectFailed:
        return "cannot connect";
      case WebSocketErrc::kRejected:
        return "upgrade rejected";
      case WebSocketErrc::kTimeout:
        return "timed out";
      case WebSocketErrc::kClosed:
        return "connection closed";
      case WebSocketErrc::kTooBig:
        return "message too big";
    }
    return "unknown websocket error";
  }
};

std::string host_header(const std::string& host, uint16_t port) {
  // An IPv6 literal needs brackets in Host (RFC 9110 7.2), or its colons read as the port's.
  bool ipv6 = host.find(':') != std::string::npos && !host.starts_with('[');
  return (ipv6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

}  // namespace

const std::error_category& websocket_category() {
  static const Category category;
  return category;
}

std::error_code make_error_code(WebSocketErrc e) {
  return {static_cast<int>(e), websocket_category()};
}

// Everything the I/O thread touches. Members under "I/O thread only" are used by nobody else
// once the thread has started; the rest is guarded by mu.
struct WebSocketClient::State {
  State(std::chrono::milliseconds t, WebSocketClientOptions o) : timeout(t), options(o) {}

  Status open(const std::string& host, uint16_t port, const std::string& target,
              const std::vector<std::pair<std::string, std::string>>& headers);
  asio::awaitable<Status> handshake(
      tcp::resolver& resolver, const std::string& host, uint16_t port, const std::string& target,
      const std::vector<std::pair<std::string, std::string>>& headers);
  void start();
  void read();
  void pump();
  void fail(const error_code& ec);
  void drop() {
    error_code ignored;
    ws.next_layer().close(ignored);
  }

  const std::chrono::milliseconds timeout;
  const WebSocketClientOptions options;
  // Declared before the stream so that it is destroyed after it.
  asio::io_context ioc{1};
  websocket::stream<tcp::socket> ws{ioc};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::thread io_thread;
  bool open_timed_out = false;  // set by the connect deadline, on the connecting thread

  // I/O thread only.
  struct Write {
    std::string text;
    std::shared_ptr<std::promise<Status>> done;
  };
  std::deque<Write> writes;
  bool writing = false;
  beast::flat_buffer read_buffer;

  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::string> inbox;
  std::optional<Error> failure;  // set once, when the connection has ended
  bool closing = false;          // close() has begun: no new sends
};

Status WebSocketClient::State::open(
    const std::string& host, uint16_t port, const std::string& target,
    const std::vector<std::pair<std::string, std::string>>& headers) {
  // One deadline for resolve, connect and handshake together, run on the caller's thread
  // before the I/O thread exists: when it fires, whatever step is pending fails.
  tcp::resolver resolver(ioc);
  asio::steady_timer deadline(ioc, timeout);
  deadline.async_wait([&](error_code ec) {
    if (ec) return;
    open_timed_out = true;
    resolver.cancel();
    drop();
  });
  Status result = Error{WebSocketErrc::kConnectFailed, "connect did not finish"};
  asio::co_spawn(ioc, handshake(resolver, host, port, target, headers),
                 [&](std::exception_ptr e, Status s) {
                   if (e) s = Error{WebSocketErrc::kConnectFailed, "unexpected exception"};
                   result = std::move(s);
                   deadline.cancel();
                 });
  ioc.run();
  if (!result.ok() && open_timed_out) {
    return Error{WebSocketErrc::kTimeout, "connect to " + host_header(host, port) + target +
                                              " timed out after " +
                                              std::to_string(timeout.count()) + " ms"};
  }
  return result;
}

asio::awaitable<Status> WebSocketClient::State::handshake(
    tcp::resolver& resolver, const std::string& host, uint16_t port, const std::string& target,
    const std::vector<std::pair<std::string, std::string>>& headers) {
  std::string where = host_header(host, port);
  auto [resolve_ec, endpoints] =
      co_await resolver.async_resolve(host, std::to_string(port), kUseTuple);
  if (open_timed_out) co_return Error{};
  if (resolve_ec) {
    co_return Error{WebSocketErrc::kConnectFailed, "resolve " + host + ": " + resolve_ec.message()};
  }
  auto [connect_ec, endpoint] = co_await asio::async_connect(ws.next_layer(), endpoints, kUseTuple);
  if (open_timed_out) co_return Error{};
  if (connect_ec) {
    co_return Error{WebSocketErrc::kConnectFailed,
                    "connect " + where + ": " + connect_ec.message()};
  }
  error_code ignored;
  // Session messages are small and latency matters more than segment count.
  ws.next_layer().set_option(tcp::no_delay(true), ignored);
  ws.set_option(websocket::stream_base::decorator([headers](websocket::request_type& request) {
    request.set(beast::http::field::user_agent, "berth-agent");
    for (const auto& [name, value] : headers) request.set(name, value);
  }));
  ws.read_message_max(options.max_message_bytes);
  websocket::response_type response;
  auto [handshake_ec] = co_await ws.async_handshake(response, where, target, kUseTuple);
  if (open_timed_out) co_return Error{};
  if (handshake_ec == websocket::error::upgrade_declined) {
    co_return Error{WebSocketErrc::kRejected, "upgrade " + where + target + " rejected: HTTP " +
                                                  std::to_string(response.result_int()) + " " +
                                                  response.body()};
  }
  if (handshake_ec) {
    co_return Error{WebSocketErrc::kConnectFailed,
                    "handshake " + where + target + ": " + handshake_ec.message()};
  }
  co_return Status{};
}

void WebSocketClient::State::start() {
  // From here on Beast's own timer watches the connection: the close handshake gets `timeout`,
  // and a server silent for idle_timeout fails the read (pinging it half-way first).
  websocket::stream_base::timeout timeouts{};
  timeouts.handshake_timeout = timeout;
  timeouts.idle_timeout = options.idle_timeout;
  timeouts.keep_alive_pings = true;
  ws.set_option(timeouts);
  ws.text(true);
  ioc.restart();
  work.emplace(ioc.get_executor());
  read();  // only queues the operation; it runs on the I/O thread
  io_thread = std::thread([this] { ioc.run(); });
}

void WebSocketClient::State::read() {
  ws.async_read(read_buffer, [this](error_code ec, size_t) {
    if (ec) return fail(ec);
    {
      std::lock_guard lock(mu);
      inbox.push_back(beast::buffers_to_string(read_buffer.data()));
    }
    cv.notify_all();
    read_buffer.clear();
    read();
  });
}

void WebSocketClient::State::pump() {
  if (writing || writes.empty()) return;
  writing = true;
  ws.async_write(asio::buffer(writes.front().text), [this](error_code ec, size_t) {
    writing = false;
    auto done = std::move(writes.front().done);
    writes.pop_front();
    if (ec) {
      fail(ec);
      std::lock_guard lock(mu);
      done->set_value(*failure);
    } else {
      done->set_value(Status{});
    }
    pump();
  });
}

void WebSocketClient::State::fail(const error_code& ec) {
  Error error;
  if (ec == websocket::error::message_too_big) {
    error = Error{WebSocketErrc::kTooBig, "message from server over " +
                                              std::to_string(options.max_message_bytes) + " bytes"};
  } else if (ec == websocket::error::closed) {
    const auto& reason = ws.reason();
    error = Error{WebSocketErrc::kClosed, "server closed the connection (" +
                                              std::to_string(reason.code) + " " +
                                              std::string(reason.reason.c_str()) + ")"};
  } else if (ec == beast::error::timeout) {
    error = Error{WebSocketErrc::kClosed,
                  "server silent for " + std::to_string(options.idle_timeout.count()) + " ms"};
  } else {
    error = Error{WebSocketErrc::kClosed, "connection lost: " + ec.message()};
  }
  {
    std::lock_guard lock(mu);
    if (failure) return;
    // Our own close() shows up as an abort or a clean close; say so rather than "lost".
    if (closing) error = Error{WebSocketErrc::kClosed, "closed by the client"};
    failure = std::move(error);
  }
  cv.notify_all();
  drop();
}

WebSocketClient::WebSocketClient(std::unique_ptr<State> state) : state_(std::move(state)) {}

WebSocketClient::~WebSocketClient() { close(); }

Result<std::unique_ptr<WebSocketClient>> WebSocketClient::connect(
    const std::string& host, uint16_t port, const std::string& target,
    const std::vector<std::pair<std::string, std::string>>& headers,
    std::chrono::milliseconds timeout, WebSocketClientOptions options) {
  auto state = std::make_unique<State>(timeout, options);
  BERTH_CHECK(state->open(host, port, target, headers));
  state->start();
  return std::unique_ptr<WebSocketClient>(new WebSocketClient(std::move(state)));
}

Status WebSocketClient::send(const std::string& text) {
  State& s = *state_;
  auto done = std::make_shared<std::promise<Status>>();
  auto result = done->get_future();
  {
    // Posting under the lock orders every send before close()'s shutdown of the I/O thread, so
    // a posted write always runs and always fulfils its promise.
    std::lock_guard lock(s.mu);
    if (s.failure) return *s.failure;
    if (s.closing) return Error{WebSocketErrc::kClosed, "closed by the client"};
    asio::post(s.ioc, [&s, text, done] {
      s.writes.push_back({text, done});
      s.pump();
    });
  }
  if (result.wait_for(s.timeout) != std::future_status::ready) {
    asio::post(s.ioc, [&s] { s.drop(); });
    return Error{WebSocketErrc::kTimeout,
                 "send not written within " + std::to_string(s.timeout.count()) + " ms"};
  }
  try {
    return result.get();
  } catch (const std::future_error&) {
    // Only if the client was destroyed under a concurrent send: a caller bug, but not a crash.
    return Error{WebSocketErrc::kClosed, "closed by the client"};
  }
}

Result<std::optional<std::string>> WebSocketClient::receive(std::chrono::milliseconds timeout) {
  State& s = *state_;
  std::unique_lock lock(s.mu);
  s.cv.wait_for(lock, timeout, [&] { return !s.inbox.empty() || s.failure.has_value(); });
  if (!s.inbox.empty()) {
    std::string message = std::move(s.inbox.front());
    s.inbox.pop_front();
    return std::optional<std::string>(std::move(message));
  }
  if (s.failure) return *s.failure;
  return std::optional<std::string>();
}

void WebSocketClient::close() {
  State& s = *state_;
  {
    std::lock_guard lock(s.mu);
    if (s.closing) return;
    s.closing = true;
  }
  asio::post(s.ioc, [&s] {
    if (s.ws.is_open()) {
      s.ws.async_close(websocket::close_code::normal, [&s](error_code ec) {
        if (ec) s.drop();
      });
    }
  });
  {
    // The read loop ends once the server has answered the close frame.
    std::unique_lock lock(s.mu);
    s.cv.wait_for(lock, s.timeout, [&] { return s.failure.has_value(); });
  }
  // Stop rather than let run() drain: Beast's keep-alive timer would hold it for up to half the
  // idle timeout. What the stop leaves queued (failed writes, whose senders wait on them) is run
  // right after, on this thread, now that the I/O thread is gone.
  asio::post(s.ioc, [&s] {
    s.drop();
    s.ioc.stop();
  });
  s.work.reset();
  if (s.io_thread.joinable()) s.io_thread.join();
  s.ioc.restart();
  s.ioc.poll();
  {
    std::lock_guard lock(s.mu);
    if (!s.failure) s.failure = Error{WebSocketErrc::kClosed, "closed by the client"};
  }
  s.cv.notify_all();
}

}  // namespace berth::agent
