#include "server/http_server.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <csignal>
#include <ctime>
#include <exception>
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
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/status.hpp>

namespace berth::server {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
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

  void connection_closed() { open_connections_.fetch_sub(1, std::memory_order_relaxed); }

 private:
  asio::awaitable<void> accept_loop();
  asio::awaitable<void> sweep(Worker& w);
  asio::awaitable<void> serve(Worker& w, tcp::socket socket);
  asio::awaitable<void> fail(Connection& c, const error_code& ec);
  asio::awaitable<void> reply_and_close(Connection& c, int status, std::string_view reason);
  void serialize(Worker& w, const api::HttpResponse& response, int version, bool keep_alive,
                 std::string& out);
  void begin_stop_all();

  HttpServerOptions options_;
  api::HttpHandler& handler_;
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
    // closes. Busy ones finish their request and then close.
    if (c->idle) c->socket.cancel(ignored);
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
      c->socket.close(ignored);
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
                            options_.write_timeout, kLingerTime});
  auto period =
      std::clamp(shortest / 4, std::chrono::milliseconds(5), std::chrono::milliseconds(1000));
  while (!w.finished) {
    w.sweep_timer.expires_after(period);
    co_await w.sweep_timer.async_wait(kUseTuple);
    if (w.finished) break;
    auto now = Clock::now();
    for (Connection* c = w.head; c; c = c->next) {
      if (c->deadline <= now) {
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
    try {
      response = handler_.handle(request);
    } catch (...) {
      // A handler bug must cost one request, not the connection's coroutine or the server.
      response = api::HttpResponse{};
      response.status = 500;
    }
    bool keep_alive = parser->keep_alive() && !stopping_.load(std::memory_order_relaxed);
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

void HttpServer::run(bool handle_signals) { impl_->server.run(handle_signals); }

void HttpServer::stop() { impl_->server.stop(); }

}  // namespace berth::server
