#include "server/http_server.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <csignal>
#include <ctime>
#include <deque>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string_view>
#include <system_error>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/rfc7230.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/websocket.hpp>

namespace berth::server {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using boost::system::error_code;

constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);

// The first read of a request. Typical API requests (headers plus a small JSON body) fit in one
// read; Beast grows the buffer when a request is larger.
constexpr size_t kFirstReadBytes = 4096;
// A body buffer that grew this large is released after the request, so one big request does not
// pin its memory for the rest of a long keep-alive connection.
constexpr size_t kKeepBodyCapacity = 64 * 1024;
// After an error response the client may still be sending (a body we refused): read and discard
// for a moment before closing, or the kernel answers the unread bytes with RST and the client
// may lose our response (nginx's "lingering close").
constexpr auto kLingerTime = std::chrono::milliseconds(1000);
// Backs the acceptor off when the process is out of file descriptors instead of spinning.
constexpr auto kAcceptRetryDelay = std::chrono::milliseconds(50);

enum class Errc { kBadListenAddress = 1 };

class ErrorCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "berth.http_server"; }
  std::string message(int code) const override {
    switch (static_cast<Errc>(code)) {
      case Errc::kBadListenAddress:
        return "bad listen address";
    }
    return "unknown http_server error";
  }
};

const std::error_category& error_category() {
  static const ErrorCategory category;
  return category;
}

std::error_code make_error_code(Errc e) { return {static_cast<int>(e), error_category()}; }

bool ascii_iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

std::string_view sv(beast::string_view s) { return {s.data(), s.size()}; }

std::string format_endpoint(const tcp::endpoint& ep) {
  std::string out =
      ep.address().is_v6() ? "[" + ep.address().to_string() + "]" : ep.address().to_string();
  return out + ":" + std::to_string(ep.port());
}

Result<tcp::endpoint> parse_listen(std::string_view listen) {
  auto bad = [&](std::string_view why) {
    return Error{make_error_code(Errc::kBadListenAddress),
                 "listen address \"" + std::string(listen) + "\": " + std::string(why)};
  };
  std::string_view host, port;
  if (listen.starts_with('[')) {
    size_t close = listen.find("]:");
    if (close == std::string_view::npos) return bad("expected [IPV6]:PORT");
    host = listen.substr(1, close - 1);
    port = listen.substr(close + 2);
  } else {
    size_t colon = listen.rfind(':');
    if (colon == std::string_view::npos) return bad("expected ADDR:PORT");
    host = listen.substr(0, colon);
    port = listen.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) return bad("IPv6 needs brackets: [ADDR]:PORT");
  }
  unsigned port_number = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), port_number);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size() ||
      port_number > 65535) {
    return bad("bad port");
  }
  if (host.empty()) host = "0.0.0.0";
  error_code parse_ec;
  auto address = asio::ip::make_address(host, parse_ec);
  if (!parse_ec) return tcp::endpoint(address, static_cast<uint16_t>(port_number));
  // Not a literal: resolve a name such as "localhost" once, at startup.
  asio::io_context ioc;
  tcp::resolver resolver(ioc);
  auto results = resolver.resolve(host, "", tcp::resolver::passive, parse_ec);
  if (parse_ec || results.empty()) return bad("cannot resolve host");
  return tcp::endpoint(results.begin()->endpoint().address(), static_cast<uint16_t>(port_number));
}

// Parses straight into the connection's reused HttpRequest rather than into a Beast message:
// Beast's fields allocate one node per header, while assigning into strings and pairs that
// survive across requests allocates nothing once a connection has warmed up.
class RequestParser final : public http::basic_parser<true> {
 public:
  explicit RequestParser(api::HttpRequest& request) : request_(request) {
    request_.method.clear();
    request_.target.clear();
    if (request_.body.capacity() > kKeepBodyCapacity) std::string().swap(request_.body);
    request_.body.clear();
  }

  int version() const { return version_; }
  bool expect_continue() const { return expect_continue_; }

 private:
  void on_request_impl(http::verb, beast::string_view method, beast::string_view target,
                       int version, error_code&) override {
    request_.method.assign(method.data(), method.size());
    request_.target.assign(target.data(), target.size());
    version_ = version;
  }
  void on_response_impl(int, beast::string_view, int, error_code&) override {}
  void on_field_impl(http::field field, beast::string_view name, beast::string_view value,
                     error_code&) override {
    auto& headers = request_.headers;
    if (fields_ < headers.size()) {
      headers[fields_].first.assign(name.data(), name.size());
      headers[fields_].second.assign(value.data(), value.size());
    } else {
      headers.emplace_back(std::string(name.data(), name.size()),
                           std::string(value.data(), value.size()));
    }
    ++fields_;
    if (field == http::field::expect && ascii_iequals(sv(value), "100-continue")) {
      expect_continue_ = true;
    }
  }
  void on_header_impl(error_code&) override { request_.headers.resize(fields_); }
  void on_body_init_impl(const boost::optional<std::uint64_t>& length, error_code&) override {
    // Safe to trust: the parser has already checked the length against body_limit.
    if (length) request_.body.reserve(*length);
  }
  size_t on_body_impl(beast::string_view body, error_code&) override {
    request_.body.append(body.data(), body.size());
    return body.size();
  }
  void on_chunk_header_impl(std::uint64_t, beast::string_view, error_code&) override {}
  size_t on_chunk_body_impl(std::uint64_t, beast::string_view body, error_code&) override {
    request_.body.append(body.data(), body.size());
    return body.size();
  }
  void on_finish_impl(error_code&) override {}

  api::HttpRequest& request_;
  size_t fields_ = 0;
  int version_ = 11;
  bool expect_continue_ = false;
};

// ---- WebSockets ---------------------------------------------------------------------------------

// Close reasons travel in a control frame, whose payload is capped at 125 bytes (RFC 6455 5.5):
// two for the code, the rest for the reason.
constexpr size_t kMaxCloseReason = 123;

std::string clip_close_reason(std::string_view reason) {
  if (reason.size() <= kMaxCloseReason) return std::string(reason);
  size_t n = kMaxCloseReason;
  // Never cut a UTF-8 sequence in half: the peer would fail the connection on invalid UTF-8.
  while (n > 0 && (static_cast<unsigned char>(reason[n]) & 0xC0) == 0x80) --n;
  return std::string(reason.substr(0, n));
}

bool has_token(std::string_view list, std::string_view token) {
  return http::token_list{beast::string_view(list.data(), list.size())}.exists(
      beast::string_view(token.data(), token.size()));
}

// The path part of a request target, for matching registered WebSocket paths.
std::string_view target_path(std::string_view target) { return target.substr(0, target.find('?')); }

bool is_upgrade_attempt(const api::HttpRequest& r) {
  return has_token(r.header("upgrade"), "websocket");
}

api::HttpResponse plain_response(int status, std::string body) {
  api::HttpResponse response;
  response.status = status;
  response.headers.emplace_back("Content-Type", "text/plain");
  response.body = std::move(body);
  return response;
}

// Mirrors the checks Beast's accept makes (RFC 6455 4.2.1), so that a request the acceptor sees is
// one Beast will upgrade, and so a client gets a plain HTTP answer saying what was wrong.
std::optional<api::HttpResponse> check_upgrade(const api::HttpRequest& r, int version) {
  if (r.method != "GET" || version != 11) {
    return plain_response(400, "WebSocket upgrade needs GET over HTTP/1.1");
  }
  if (!r.has_header("host")) return plain_response(400, "missing Host");
  if (!has_token(r.header("connection"), "upgrade") || !is_upgrade_attempt(r)) {
    return plain_response(400, "this path only serves WebSocket upgrades");
  }
  auto key = r.header("sec-websocket-key");
  // A key is 16 random bytes in base64, always 24 characters; Beast refuses longer ones.
  if (key.empty() || key.size() > 24) return plain_response(400, "bad Sec-WebSocket-Key");
  if (r.header("sec-websocket-version") != "13") {
    auto response = plain_response(426, "unsupported WebSocket version");
    response.headers.emplace_back("Sec-WebSocket-Version", "13");
    return response;
  }
  return std::nullopt;
}

// The transport under an upgraded connection: the TCP socket plus whatever the HTTP parser had
// already read past the upgrade request. RFC 6455 4.1 has a client wait for the 101 before
// sending frames, but one that pipelines them must not lose them.
class UpgradedSocket {
 public:
  using executor_type = tcp::socket::executor_type;
  using next_layer_type = tcp::socket;

  UpgradedSocket(tcp::socket socket, beast::flat_buffer pending)
      : socket_(std::move(socket)), pending_(std::move(pending)) {}

  executor_type get_executor() noexcept { return socket_.get_executor(); }
  tcp::socket& next_layer() noexcept { return socket_; }

  template <class MutableBuffers, class Token>
  auto async_read_some(const MutableBuffers& buffers, Token&& token) {
    return asio::async_initiate<Token, void(error_code, size_t)>(
        [this](auto handler, const MutableBuffers& buffers) {
          if (pending_.size() == 0) {
            socket_.async_read_some(buffers, std::move(handler));
            return;
          }
          size_t n = asio::buffer_copy(buffers, pending_.data());
          pending_.consume(n);
          // Never complete inline: Asio's contract is that the handler runs as if posted.
          auto ex = asio::get_associated_executor(handler, socket_.get_executor());
          asio::post(ex, beast::bind_front_handler(std::move(handler), error_code(), n));
        },
        token, buffers);
  }

  template <class ConstBuffers, class Token>
  auto async_write_some(const ConstBuffers& buffers, Token&& token) {
    return socket_.async_write_some(buffers, std::forward<Token>(token));
  }

 private:
  tcp::socket socket_;
  beast::flat_buffer pending_;
};

// Found by Beast through argument-dependent lookup when it closes the connection.
template <class Handler>
void async_teardown(beast::role_type role, UpgradedSocket& s, Handler&& handler) {
  websocket::async_teardown(role, s.next_layer(), std::forward<Handler>(handler));
}
[[maybe_unused]] void teardown(beast::role_type role, UpgradedSocket& s, error_code& ec) {
  websocket::teardown(role, s.next_layer(), ec);
}

class WsConnection;

// The api::WebSocket handed to the acceptor. It may outlive the connection (the session layer
// keeps it in its own maps), so it refers to the connection weakly and turns into a no-op once
// the connection has ended. Other threads never touch the Beast stream: they queue under mu_ and
// post one flush to the connection's io_context.
class WsHandle final : public api::WebSocket, public std::enable_shared_from_this<WsHandle> {
 public:
  WsHandle(asio::io_context& ioc, std::string remote) : ioc_(ioc), remote_(std::move(remote)) {}

  void send(std::string text) override {
    std::lock_guard lock(mu_);
    if (state_ == State::kClosed || close_reason_) return;
    outbox_.push_back(std::move(text));
    schedule_locked();
  }
  void close(std::string_view reason) override {
    std::lock_guard lock(mu_);
    if (state_ == State::kClosed || close_reason_) return;
    close_reason_ = clip_close_reason(reason);
    schedule_locked();
  }
  const std::string& remote() const override { return remote_; }

  // Both on the connection's I/O thread. Messages sent before attach (from inside accept())
  // were queued and go out right after the 101.
  void attach(const std::shared_ptr<WsConnection>& connection);
  void detach() {
    std::lock_guard lock(mu_);
    state_ = State::kClosed;
    connection_.reset();
    outbox_.clear();
  }

 private:
  enum class State { kPending, kOpen, kClosed };

  void schedule_locked() {
    if (state_ != State::kOpen || flush_posted_) return;
    flush_posted_ = true;
    asio::post(ioc_, [self = shared_from_this()] { self->flush(); });
  }
  void flush();

  asio::io_context& ioc_;
  const std::string remote_;
  std::mutex mu_;
  State state_ = State::kPending;
  std::weak_ptr<WsConnection> connection_;
  std::vector<std::string> outbox_;
  std::optional<std::string> close_reason_;
  bool close_flushed_ = false;
  bool flush_posted_ = false;
};

// One upgraded connection, owned by a shared_ptr because Beast's completion handlers (writes,
// pings, the close handshake) may run after the serving coroutine has moved on. Everything here
// runs on its worker's thread.
class WsConnection : public std::enable_shared_from_this<WsConnection> {
 public:
  WsConnection(tcp::socket socket, beast::flat_buffer pending, const HttpServerOptions& options,
               std::unique_ptr<api::WebSocketListener> listener, std::shared_ptr<WsHandle> handle)
      : ws_(std::move(socket), std::move(pending)),
        options_(options),
        listener_(std::move(listener)),
        handle_(std::move(handle)) {}

  // Completes the handshake, serves messages until the connection ends, then calls on_close().
  asio::awaitable<void> run(const api::HttpRequest& request);

  void enqueue(std::string text) {
    if (state_ == State::kClosed || close_started_) return;
    queue_.push_back(std::move(text));
  }
  // Starts a clean close once the messages already queued are written.
  void begin_close(websocket::close_code code, std::string_view reason) {
    if (state_ != State::kHandshake && state_ != State::kOpen) return;
    close_reason_ = websocket::close_reason(code, beast::string_view(reason.data(), reason.size()));
    // During the handshake the 101 may already be with the client, which then deserves a close
    // frame rather than a dropped connection: close as soon as the handshake completes.
    if (state_ == State::kHandshake) {
      close_after_handshake_ = true;
      return;
    }
    state_ = State::kClosing;
    pump();
  }
  // Drops the TCP connection; the read loop then ends and on_close() follows.
  void abort() {
    error_code ignored;
    beast::get_lowest_layer(ws_).close(ignored);
  }
  // Called by the worker's periodic sweep: keepalive pings and the idle and write deadlines.
  void on_sweep(Clock::time_point now);
  // Writes the next queued message, or the close frame once the queue is empty.
  void pump();

 private:
  enum class State { kHandshake, kOpen, kClosing, kClosed };

  asio::awaitable<void> read_loop();
  void finish();

  websocket::stream<UpgradedSocket> ws_;
  const HttpServerOptions& options_;
  std::unique_ptr<api::WebSocketListener> listener_;
  std::shared_ptr<WsHandle> handle_;
  State state_ = State::kHandshake;
  // A deque keeps the string being written in place while more are appended behind it.
  std::deque<std::string> queue_;
  websocket::close_reason close_reason_;
  bool writing_ = false;
  bool pinging_ = false;
  bool close_started_ = false;
  bool close_after_handshake_ = false;
  Clock::time_point last_frame_ = Clock::now();
  Clock::time_point next_ping_ = Clock::time_point::max();
  Clock::time_point write_deadline_ = Clock::time_point::max();
};

void WsHandle::attach(const std::shared_ptr<WsConnection>& connection) {
  {
    std::lock_guard lock(mu_);
    if (state_ != State::kPending) return;
    state_ = State::kOpen;
    connection_ = connection;
  }
  flush();
}

void WsHandle::flush() {
  std::vector<std::string> batch;
  std::optional<std::string> reason;
  std::shared_ptr<WsConnection> connection;
  {
    std::lock_guard lock(mu_);
    flush_posted_ = false;
    batch.swap(outbox_);
    if (close_reason_ && !close_flushed_) {
      close_flushed_ = true;
      reason = close_reason_;
    }
    connection = connection_.lock();
  }
  if (!connection) return;
  for (auto& text : batch) connection->enqueue(std::move(text));
  if (reason) connection->begin_close(websocket::close_code::normal, *reason);
  connection->pump();
}

asio::awaitable<void> WsConnection::run(const api::HttpRequest& request) {
  auto self = shared_from_this();
  // Beast's own timer bounds the 101 write and the closing handshake; liveness while open is the
  // sweep's job (pings and ws_idle_timeout), so Beast's idle timeout stays off.
  websocket::stream_base::timeout timeouts{};
  timeouts.handshake_timeout = options_.write_timeout;
  timeouts.idle_timeout = websocket::stream_base::none();
  timeouts.keep_alive_pings = false;
  ws_.set_option(timeouts);
  ws_.set_option(websocket::stream_base::decorator(
      [](websocket::response_type& response) { response.set(http::field::server, "berth"); }));
  ws_.read_message_max(options_.ws_max_message_bytes);
  ws_.control_callback(
      [this](websocket::frame_type, beast::string_view) { last_frame_ = Clock::now(); });

  http::request<http::empty_body> upgrade{http::verb::get, request.target, 11};
  for (const auto& [name, value] : request.headers) upgrade.insert(name, value);
  auto [ec] = co_await ws_.async_accept(upgrade, kUseTuple);
  if (!ec && state_ == State::kHandshake) {
    state_ = State::kOpen;
    ws_.text(true);
    last_frame_ = Clock::now();
    next_ping_ = last_frame_ + options_.ws_ping_interval;
    handle_->attach(self);
    if (close_after_handshake_) {
      state_ = State::kClosing;
      pump();
    }
    co_await read_loop();
  }
  finish();
}

asio::awaitable<void> WsConnection::read_loop() {
  beast::flat_buffer message;
  for (;;) {
    // read_some rather than read: every chunk of a large message counts as a sign of life.
    auto [ec, n] = co_await ws_.async_read_some(message, 0, kUseTuple);
    if (ec) co_return;
    last_frame_ = Clock::now();
    if (!ws_.is_message_done()) continue;
    if (!ws_.got_text()) {
      // The session protocol is JSON text; binary means a confused peer (1003).
      begin_close(websocket::close_code::unknown_data, "text messages only");
    } else if (state_ == State::kOpen || state_ == State::kClosing) {
      auto data = message.cdata();
      try {
        listener_->on_message(std::string_view(static_cast<const char*>(data.data()), data.size()));
      } catch (...) {
        // A listener bug costs this connection (1011), not the worker thread.
        begin_close(websocket::close_code::internal_error, "");
      }
    }
    message.clear();
    if (message.capacity() > kKeepBodyCapacity) message.shrink_to_fit();
  }
}

void WsConnection::finish() {
  if (state_ == State::kClosed) return;
  state_ = State::kClosed;
  handle_->detach();
  abort();
  try {
    listener_->on_close();
  } catch (...) {
    // Nothing left to protect: the connection is gone either way.
  }
}

void WsConnection::pump() {
  if (state_ == State::kHandshake || state_ == State::kClosed || writing_) return;
  if (!queue_.empty()) {
    writing_ = true;
    write_deadline_ = Clock::now() + options_.write_timeout;
    ws_.async_write(asio::buffer(queue_.front()),
                    [self = shared_from_this()](error_code ec, size_t) {
                      self->writing_ = false;
                      self->write_deadline_ = Clock::time_point::max();
                      self->queue_.pop_front();
                      if (ec) return self->abort();
                      self->pump();
                    });
    return;
  }
  if (state_ == State::kClosing && !close_started_) {
    close_started_ = true;
    // Completes once the peer's close frame arrived (the read loop then ends) or Beast's
    // handshake timeout dropped the connection.
    ws_.async_close(close_reason_, [self = shared_from_this()](error_code ec) {
      if (ec) self->abort();
    });
  }
}

void WsConnection::on_sweep(Clock::time_point now) {
  if (state_ != State::kOpen && state_ != State::kClosing) return;
  if (now >= write_deadline_ || now - last_frame_ >= options_.ws_idle_timeout) {
    abort();
    return;
  }
  if (state_ == State::kOpen && now >= next_ping_ && !pinging_) {
    pinging_ = true;
    next_ping_ = now + options_.ws_ping_interval;
    ws_.async_ping({}, [self = shared_from_this()](error_code) { self->pinging_ = false; });
  }
}

// ---- HTTP connections and workers ----------------------------------------------------------

class Server;
struct Worker;

// One accepted connection. Lives in its coroutine's frame and is linked into its worker's list
// so the sweeper can enforce deadlines and stop() can find idle connections.
struct Connection {
  Connection(Worker& w, tcp::socket s);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  void arm(std::chrono::milliseconds timeout) {
    deadline = Clock::now() + timeout;
    timed_out = false;
  }
  void disarm() { deadline = Clock::time_point::max(); }

  Worker& worker;
  tcp::socket socket;
  Clock::time_point deadline = Clock::time_point::max();
  bool timed_out = false;
  bool idle = false;  // waiting for the first byte of the next request
  // Set while the connection is an upgraded WebSocket: `socket` has then moved into it, and the
  // sweep and stop() act through this instead.
  WsConnection* ws = nullptr;
  Connection* prev = nullptr;
  Connection* next = nullptr;
};

// One io_context and one thread. Everything a worker owns is touched only from its thread, so
// connections need neither strands nor locks; the acceptor hands each new socket to a worker.
struct Worker {
  explicit Worker(Server& s) : server(s) {}

  void link(Connection* c) {
    c->next = head;
    if (head) head->prev = c;
    head = c;
    ++count;
  }
  void unlink(Connection* c);
  void begin_stop(std::chrono::milliseconds grace);
  void finish() {
    finished = true;
    grace_timer.cancel();
    sweep_timer.cancel();
    work.reset();
  }
  std::string_view date_header();

  Server& server;
  // Declared first so that it is destroyed last: the timers below belong to it.
  asio::io_context ioc{1};
  asio::executor_work_guard<asio::io_context::executor_type> work{ioc.get_executor()};
  asio::steady_timer sweep_timer{ioc};
  asio::steady_timer grace_timer{ioc};
  Connection* head = nullptr;
  size_t count = 0;
  bool stopping = false;
  bool finished = false;
  std::time_t date_second = 0;
  std::string date;
};

class Server {
 public:
  Server(HttpServerOptions options, api::HttpHandler& handler)
      : options_(std::move(options)), handler_(handler) {
    int threads = std::max(1, options_.threads);
    for (int i = 0; i < threads; ++i) workers_.push_back(std::make_unique<Worker>(*this));
  }

  Result<std::string> start();
  void run(bool handle_signals);
  void stop();
  void add_websocket(std::string path, api::WebSocketAcceptor& acceptor) {
    websockets_[std::move(path)] = &acceptor;
  }

  void connection_closed() { open_connections_.fetch_sub(1, std::memory_order_relaxed); }

 private:
  asio::awaitable<void> accept_loop();
  asio::awaitable<void> sweep(Worker& w);
  asio::awaitable<void> serve(Worker& w, tcp::socket socket);
  asio::awaitable<void> fail(Connection& c, const error_code& ec);
  api::WebSocketAcceptor* websocket_route(const api::HttpRequest& request) const;
  asio::awaitable<void> serve_websocket(Connection& c, const api::HttpRequest& request,
                                        beast::flat_buffer pending,
                                        std::unique_ptr<api::WebSocketListener> listener,
                                        std::shared_ptr<WsHandle> handle);
  asio::awaitable<void> reply_and_close(Connection& c, int status, std::string_view reason);
  void serialize(Worker& w, const api::HttpResponse& response, int version, bool keep_alive,
                 std::string& out);
  void begin_stop_all();

  HttpServerOptions options_;
  api::HttpHandler& handler_;
  // Filled before start() and only read afterwards, so the I/O threads need no lock.
  std::map<std::string, api::WebSocketAcceptor*, std::less<>> websockets_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::optional<tcp::acceptor> acceptor_;
  std::optional<asio::signal_set> signals_;
  std::atomic<bool> stopping_{false};
  std::atomic<size_t> open_connections_{0};
};

Connection::Connection(Worker& w, tcp::socket s) : worker(w), socket(std::move(s)) {
  worker.link(this);
}

Connection::~Connection() {
  worker.unlink(this);
  worker.server.connection_closed();
}

void Worker::unlink(Connection* c) {
  if (c->prev) c->prev->next = c->next;
  if (c->next) c->next->prev = c->prev;
  if (head == c) head = c->next;
  --count;
  if (stopping && count == 0 && !finished) finish();
}

void Worker::begin_stop(std::chrono::milliseconds grace) {
  if (stopping) return;
  stopping = true;
  for (Connection* c = head; c; c = c->next) {
    error_code ignored;
    // An idle keep-alive connection has nothing in flight; its coroutine sees `stopping` and
    // closes. Busy ones finish their request and then close. WebSockets are told the server is
    // going away (1001) and end when the peer answers the close.
    if (c->ws) {
      c->ws->begin_close(websocket::close_code::going_away, "server shutting down");
    } else if (c->idle) {
      c->socket.cancel(ignored);
    }
  }
  if (count == 0) {
    finish();
    return;
  }
  grace_timer.expires_after(grace);
  grace_timer.async_wait([this](error_code ec) {
    if (ec) return;
    for (Connection* c = head; c; c = c->next) {
      error_code ignored;
      if (c->ws) {
        c->ws->abort();
      } else {
        c->socket.close(ignored);
      }
    }
  });
}

std::string_view Worker::date_header() {
  // Formatted once a second per worker: strftime per response would show up in profiles.
  std::time_t now = std::time(nullptr);
  if (now != date_second || date.empty()) {
    date_second = now;
    std::tm tm{};
    gmtime_r(&now, &tm);
    char buf[64];
    size_t n = std::strftime(buf, sizeof buf, "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
    date.assign(buf, n);
  }
  return date;
}

Result<std::string> Server::start() {
  BERTH_TRY(tcp::endpoint endpoint, parse_listen(options_.listen));
  auto& ioc = workers_[0]->ioc;
  tcp::acceptor acceptor(ioc);
  error_code ec;
  auto failed = [&](std::string_view what) {
    return Error{std::error_code(ec),
                 std::string(what) + " " + options_.listen + ": " + ec.message()};
  };
  if (acceptor.open(endpoint.protocol(), ec)) return failed("open");
  if (acceptor.set_option(asio::socket_base::reuse_address(true), ec)) return failed("set option");
  if (acceptor.bind(endpoint, ec)) return failed("bind");
  // The kernel caps this at net.core.somaxconn; ask for the most so bursts of connects from
  // many agents at once are queued rather than refused.
  if (acceptor.listen(asio::socket_base::max_listen_connections, ec)) return failed("listen");
  auto local = acceptor.local_endpoint(ec);
  if (ec) return failed("local endpoint");
  acceptor_.emplace(std::move(acceptor));
  return format_endpoint(local);
}

void Server::run(bool handle_signals) {
  Worker& first = *workers_[0];
  if (acceptor_) asio::co_spawn(first.ioc, accept_loop(), asio::detached);
  for (auto& w : workers_) asio::co_spawn(w->ioc, sweep(*w), asio::detached);
  if (handle_signals) {
    signals_.emplace(first.ioc, SIGINT, SIGTERM);
    signals_->async_wait([this](error_code ec, int) {
      if (!ec) stop();
    });
  }
  std::vector<std::thread> threads;
  for (size_t i = 1; i < workers_.size(); ++i) {
    threads.emplace_back([w = workers_[i].get()] { w->ioc.run(); });
  }
  first.ioc.run();
  for (auto& t : threads) t.join();
  signals_.reset();
}

void Server::stop() {
  if (stopping_.exchange(true)) return;
  asio::post(workers_[0]->ioc, [this] { begin_stop_all(); });
}

void Server::begin_stop_all() {
  // Runs on worker 0, which owns the acceptor: once it is closed no new connection can be handed
  // to another worker after that worker's own stop, because those posts are queued in order.
  error_code ignored;
  if (acceptor_) acceptor_->close(ignored);
  if (signals_) signals_->cancel(ignored);
  workers_[0]->begin_stop(options_.shutdown_grace);
  for (size_t i = 1; i < workers_.size(); ++i) {
    Worker* w = workers_[i].get();
    asio::post(w->ioc, [this, w] { w->begin_stop(options_.shutdown_grace); });
  }
}

asio::awaitable<void> Server::accept_loop() {
  size_t next = 0;
  asio::steady_timer backoff(workers_[0]->ioc);
  for (;;) {
    Worker& target = *workers_[next];
    next = (next + 1) % workers_.size();
    auto [ec, socket] = co_await acceptor_->async_accept(target.ioc, kUseTuple);
    if (workers_[0]->stopping || ec == asio::error::operation_aborted) co_return;
    if (ec) {
      backoff.expires_after(kAcceptRetryDelay);
      co_await backoff.async_wait(kUseTuple);
      continue;
    }
    size_t open = open_connections_.fetch_add(1, std::memory_order_relaxed);
    if (options_.max_connections != 0 && open >= options_.max_connections) {
      open_connections_.fetch_sub(1, std::memory_order_relaxed);
      error_code ignored;
      socket.close(ignored);
      continue;
    }
    asio::co_spawn(target.ioc, serve(target, std::move(socket)), asio::detached);
  }
}

asio::awaitable<void> Server::sweep(Worker& w) {
  // Deadlines are checked by one periodic sweep per worker rather than a timer per read or
  // write: arming a deadline is then a clock read, not a timer-queue insert and cancel per I/O.
  // A timeout fires up to a quarter of the shortest timeout late, which is fine for all of them.
  auto shortest = std::min({options_.header_timeout, options_.body_timeout, options_.idle_timeout,
                            options_.write_timeout, kLingerTime, options_.ws_ping_interval,
                            options_.ws_idle_timeout});
  auto period =
      std::clamp(shortest / 4, std::chrono::milliseconds(5), std::chrono::milliseconds(1000));
  while (!w.finished) {
    w.sweep_timer.expires_after(period);
    co_await w.sweep_timer.async_wait(kUseTuple);
    if (w.finished) break;
    auto now = Clock::now();
    for (Connection* c = w.head; c; c = c->next) {
      if (c->ws) {
        c->ws->on_sweep(now);
      } else if (c->deadline <= now) {
        // Cancel rather than close: the coroutine may still owe the client a 408.
        c->timed_out = true;
        c->deadline = Clock::time_point::max();
        error_code ignored;
        c->socket.cancel(ignored);
      }
    }
  }
}

asio::awaitable<void> Server::serve(Worker& w, tcp::socket socket) {
  if (w.finished) {
    connection_closed();
    co_return;
  }
  Connection c(w, std::move(socket));
  error_code ec;
  // Responses are written whole; Nagle would only delay the last segment of each.
  c.socket.set_option(tcp::no_delay(true), ec);

  api::HttpRequest request;
  auto remote = c.socket.remote_endpoint(ec);
  if (!ec) request.remote = format_endpoint(remote);
  beast::flat_buffer buffer;
  std::string head;
  std::optional<RequestParser> parser;
  // The first request's wait for bytes counts against header_timeout, so a client that connects
  // and sends nothing is dropped as fast as one that sends half a header.
  c.arm(options_.header_timeout);
  bool first = true;

  for (;;) {
    if (buffer.size() == 0) {
      if (w.stopping) break;
      // A fresh connection counts as idle too: stop() need not wait for its first request.
      c.idle = true;
      if (!first) c.arm(options_.idle_timeout);
      auto [read_ec, n] =
          co_await c.socket.async_read_some(buffer.prepare(kFirstReadBytes), kUseTuple);
      c.idle = false;
      // Nothing of a request has arrived: peer closed, idle timeout or shutdown. Just close.
      if (read_ec) break;
      buffer.commit(n);
      if (!first) c.arm(options_.header_timeout);
    } else if (!first) {
      c.arm(options_.header_timeout);  // a pipelined request: its bytes are already here
    }
    first = false;

    parser.emplace(request);
    parser->header_limit(static_cast<std::uint32_t>(options_.max_header_bytes));
    parser->body_limit(options_.max_body_bytes);
    {
      auto [read_ec, n] = co_await http::async_read_header(c.socket, buffer, *parser, kUseTuple);
      if (read_ec) {
        co_await fail(c, read_ec);
        break;
      }
    }
    if (!parser->is_done()) {
      if (parser->expect_continue()) {
        static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
        c.arm(options_.write_timeout);
        auto [write_ec, n] =
            co_await asio::async_write(c.socket, asio::buffer(kContinue), kUseTuple);
        if (write_ec) break;
      }
      c.arm(options_.body_timeout);
      auto [read_ec, n] = co_await http::async_read(c.socket, buffer, *parser, kUseTuple);
      if (read_ec) {
        co_await fail(c, read_ec);
        break;
      }
    }
    c.disarm();

    api::HttpResponse response;
    // Answers about WebSocket upgrades close the connection: the client may already consider
    // itself upgraded, so carrying on with HTTP on the same stream is asking for confusion.
    bool upgrade_answer = false;
    if (api::WebSocketAcceptor* acceptor = websocket_route(request)) {
      upgrade_answer = true;
      if (auto refusal = check_upgrade(request, parser->version())) {
        response = std::move(*refusal);
      } else if (w.stopping) {
        response = plain_response(503, "server shutting down");
      } else {
        auto handle = std::make_shared<WsHandle>(w.ioc, request.remote);
        api::WebSocketAcceptor::Outcome outcome;
        try {
          outcome = acceptor->accept(request, handle);
        } catch (...) {
          outcome = plain_response(500, "");
        }
        auto* listener = std::get_if<std::unique_ptr<api::WebSocketListener>>(&outcome);
        if (listener && *listener) {
          co_await serve_websocket(c, request, std::move(buffer), std::move(*listener),
                                   std::move(handle));
          break;
        }
        handle->detach();
        response = listener ? plain_response(500, "") : std::get<api::HttpResponse>(outcome);
      }
    } else if (is_upgrade_attempt(request)) {
      upgrade_answer = true;
      response = plain_response(404, "no WebSocket endpoint here");
    } else {
      try {
        response = handler_.handle(request);
      } catch (...) {
        // A handler bug must cost one request, not the connection's coroutine or the server.
        response = api::HttpResponse{};
        response.status = 500;
      }
    }
    bool keep_alive =
        parser->keep_alive() && !upgrade_answer && !stopping_.load(std::memory_order_relaxed);
    for (const auto& [name, value] : response.headers) {
      if (ascii_iequals(name, "connection") && ascii_iequals(value, "close")) keep_alive = false;
    }
    bool head_only = request.method == "HEAD";
    serialize(w, response, parser->version(), keep_alive, head);

    c.arm(options_.write_timeout);
    std::array<asio::const_buffer, 2> buffers{
        asio::buffer(head), head_only ? asio::const_buffer() : asio::buffer(response.body)};
    auto [write_ec, n] = co_await asio::async_write(c.socket, buffers, kUseTuple);
    if (write_ec || !keep_alive) break;
  }
  c.socket.shutdown(tcp::socket::shutdown_both, ec);
  c.socket.close(ec);
}

api::WebSocketAcceptor* Server::websocket_route(const api::HttpRequest& request) const {
  if (websockets_.empty()) return nullptr;
  auto it = websockets_.find(target_path(request.target));
  return it == websockets_.end() ? nullptr : it->second;
}

asio::awaitable<void> Server::serve_websocket(Connection& c, const api::HttpRequest& request,
                                              beast::flat_buffer pending,
                                              std::unique_ptr<api::WebSocketListener> listener,
                                              std::shared_ptr<WsHandle> handle) {
  auto connection = std::make_shared<WsConnection>(
      std::move(c.socket), std::move(pending), options_, std::move(listener), std::move(handle));
  c.ws = connection.get();
  co_await connection->run(request);
  c.ws = nullptr;
}

// Answers a request that could not be read. Only called once some of the request has arrived.
asio::awaitable<void> Server::fail(Connection& c, const error_code& ec) {
  if (ec == asio::error::operation_aborted && c.timed_out) {
    co_await reply_and_close(c, 408, "Request Timeout");
  } else if (ec == http::error::body_limit) {
    co_await reply_and_close(c, 413, "Payload Too Large");
  } else if (ec == http::error::header_limit) {
    co_await reply_and_close(c, 431, "Request Header Fields Too Large");
  } else if (ec == http::error::end_of_stream || ec == http::error::partial_message) {
    // The client went away mid-request; there is nobody to answer.
  } else if (ec.category() == http::make_error_code(http::error::bad_method).category()) {
    co_await reply_and_close(c, 400, "Bad Request");
  }
}

asio::awaitable<void> Server::reply_and_close(Connection& c, int status, std::string_view reason) {
  std::string out =
      "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason) + "\r\nServer: berth\r\n";
  out += c.worker.date_header();
  out += "Content-Length: 0\r\nConnection: close\r\n\r\n";
  c.arm(options_.write_timeout);
  auto [write_ec, n] = co_await asio::async_write(c.socket, asio::buffer(out), kUseTuple);
  if (write_ec) co_return;
  error_code ec;
  c.socket.shutdown(tcp::socket::shutdown_send, ec);
  if (status == 408) co_return;  // the client stalled; it is not sending anything to drain
  c.arm(kLingerTime);
  char discard[4096];
  for (;;) {
    auto [read_ec, got] = co_await c.socket.async_read_some(asio::buffer(discard), kUseTuple);
    if (read_ec) break;
  }
}

void Server::serialize(Worker& w, const api::HttpResponse& response, int version, bool keep_alive,
                       std::string& out) {
  int status = response.status;
  if (status < 100 || status > 999) status = 500;
  auto known = http::int_to_status(static_cast<unsigned>(status));
  std::string_view reason =
      known == http::status::unknown ? std::string_view() : sv(http::obsolete_reason(known));
  char number[24];

  out.clear();
  out += "HTTP/1.1 ";
  out.append(number, std::to_chars(number, number + sizeof number, status).ptr);
  out += ' ';
  out += reason;
  out += "\r\nServer: berth\r\n";
  out += w.date_header();
  for (const auto& [name, value] : response.headers) {
    if (ascii_iequals(name, "content-length") || ascii_iequals(name, "connection")) continue;
    out += name;
    out += ": ";
    out += value;
    out += "\r\n";
  }
  // RFC 9110 8.6: no Content-Length on 1xx and 204; 304 describes the resource, not this body.
  if (status >= 200 && status != 204 && status != 304) {
    out += "Content-Length: ";
    out.append(number, std::to_chars(number, number + sizeof number, response.body.size()).ptr);
    out += "\r\n";
  }
  if (!keep_alive) {
    out += "Connection: close\r\n";
  } else if (version == 10) {
    out += "Connection: keep-alive\r\n";
  }
  out += "\r\n";
}

}  // namespace

struct HttpServer::Impl {
  Impl(HttpServerOptions options, api::HttpHandler& handler)
      : server(std::move(options), handler) {}
  Server server;
};

HttpServer::HttpServer(HttpServerOptions options, api::HttpHandler& handler)
    : impl_(std::make_unique<Impl>(std::move(options), handler)) {}

HttpServer::~HttpServer() = default;

Result<std::string> HttpServer::start() { return impl_->server.start(); }

void HttpServer::add_websocket(std::string path, api::WebSocketAcceptor& acceptor) {
  impl_->server.add_websocket(std::move(path), acceptor);
}

void HttpServer::run(bool handle_signals) { impl_->server.run(handle_signals); }

void HttpServer::stop() { impl_->server.stop(); }

}  // namespace berth::server
