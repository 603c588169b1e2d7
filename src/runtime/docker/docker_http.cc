#include "runtime/docker/docker_http.h"

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <optional>

#include "runtime/errc.h"

namespace berth::runtime::docker {
namespace asio = boost::asio;
namespace http = boost::beast::http;
using boost::system::error_code;
using Clock = std::chrono::steady_clock;

void StreamCanceller::cancel() {
  // The hook only posts to the stream's io_context (thread-safe), and clear_hook() waits for
  // mu_, so the context is alive while we post.
  std::lock_guard lock(mu_);
  cancelled_ = true;
  if (hook_) hook_();
}

bool StreamCanceller::cancelled() const {
  std::lock_guard lock(mu_);
  return cancelled_;
}

bool StreamCanceller::set_hook(std::function<void()> hook) {
  std::lock_guard lock(mu_);
  if (cancelled_) return false;
  hook_ = std::move(hook);
  return true;
}

void StreamCanceller::clear_hook() {
  std::lock_guard lock(mu_);
  hook_ = nullptr;
}

namespace {

Clock::time_point deadline_after(UnixHttpClient::Duration d) {
  if (d == UnixHttpClient::kNoTimeout) return Clock::time_point::max();
  return Clock::now() + d;
}

// One connection driven by async operations on a private io_context, so every blocking step
// can be abandoned at a deadline (the pattern of Asio's blocking_*_client_timeout examples).
class Connection {
 public:
  // Runs the async operation started by `start` (which must call its handler exactly once)
  // until it completes or `deadline` passes; on timeout the socket is closed and the operation
  // completes with an error, which this reports as timed_out.
  template <class Start>
  error_code run(Start start, Clock::time_point deadline, bool& timed_out) {
    error_code result = asio::error::would_block;
    start([&](error_code ec, auto&&...) { result = ec; });
    ioc_.restart();
    if (deadline == Clock::time_point::max()) {
      ioc_.run();
    } else {
      ioc_.run_until(deadline);
    }
    timed_out = false;
    if (result == asio::error::would_block) {
      timed_out = true;
      error_code ignored;
      socket_.close(ignored);
      ioc_.restart();
      ioc_.run();
    }
    return result;
  }

  asio::io_context& ioc() { return ioc_; }
  asio::local::stream_protocol::socket& socket() { return socket_; }

 private:
  asio::io_context ioc_{1};
  asio::local::stream_protocol::socket socket_{ioc_};
};

}  // namespace

Result<HttpResponse> UnixHttpClient::call(const HttpRequest& req, Duration timeout,
                                          size_t body_limit) const {
  std::string body;
  bool too_big = false;
  StreamOptions opts{.total = timeout, .inactivity = kNoTimeout, .header = kNoTimeout};
  auto r = stream(req, opts, [&](std::string_view piece) {
    if (body.size() + piece.size() > body_limit) {
      too_big = true;
      return false;
    }
    body.append(piece);
    return true;
  });
  if (!r.ok()) return r;
  if (too_big) return Error(Errc::engine, req.target + ": response larger than the limit");
  if (r->status < 300) r->body = std::move(body);
  return r;
}

Result<HttpResponse> UnixHttpClient::stream(
    const HttpRequest& req, const StreamOptions& opts,
    const std::function<bool(std::string_view)>& on_data) const {
  const Clock::time_point total = deadline_after(opts.total);
  const Clock::time_point header_deadline = std::min(total, deadline_after(opts.header));
  auto step_deadline = [&] { return std::min(total, deadline_after(opts.inactivity)); };
  const std::string what = req.method + " " + req.target;

  Connection conn;
  auto& sock = conn.socket();
  if (opts.canceller && !opts.canceller->set_hook([&conn] {
        asio::post(conn.ioc(), [&conn] {
          error_code ignored;
          conn.socket().close(ignored);
        });
      }))
    return Error(Errc::cancelled, what + ": cancelled");
  struct Unhook {
    StreamCanceller* c;
    ~Unhook() {
      if (c) c->clear_hook();
    }
  } unhook{opts.canceller};

  bool timed_out = false;
  // Maps a failed step to the error the caller sees.
  auto fail = [&](error_code ec, const char* step) -> Error {
    if (opts.canceller && opts.canceller->cancelled())
      return {Errc::cancelled, what + ": cancelled"};
    if (timed_out) return {Errc::timeout, what + ": timed out while " + step};
    return {Errc::unavailable, what + ": " + step + " " + path_ + ": " + ec.message()};
  };

  error_code ec = conn.run(
      [&](auto handler) {
        sock.async_connect(asio::local::stream_protocol::endpoint(path_), std::move(handler));
      },
      header_deadline, timed_out);
  if (ec) return fail(ec, "connecting to");

  http::request<http::string_body> r;
  r.method_string(req.method);
  r.target(req.target);
  r.version(11);
  r.set(http::field::host, "docker");  // required by Docker; any name does on a unix socket
  r.set(http::field::user_agent, "berth-agent");
  for (const auto& [k, v] : req.headers) r.set(k, v);
  if (!req.body.empty()) r.set(http::field::content_type, "application/json");
  r.body() = req.body;
  r.prepare_payload();
  ec = conn.run([&](auto handler) { http::async_write(sock, r, std::move(handler)); },
                header_deadline, timed_out);
  if (ec) return fail(ec, "sending to");

  boost::beast::flat_buffer buf;
  http::response_parser<http::buffer_body> parser;
  parser.body_limit(boost::none);  // streams are unbounded; call() enforces its own limit
  ec = conn.run(
      [&](auto handler) { http::async_read_header(sock, buf, parser, std::move(handler)); },
      header_deadline, timed_out);
  if (ec) return fail(ec, "reading the response from");
  // Not eager: an eager parser consumes a chunk's data, then asks the socket for the next chunk
  // header before returning (it reads the chunk's trailing CRLF as part of the next header), so
  // an event would only be delivered once the following one arrived.

  HttpResponse resp;
  resp.status = static_cast<int>(parser.get().result_int());
  if (opts.on_header) opts.on_header(resp.status);
  const bool success = resp.status < 300;

  char chunk[16384];
  while (!parser.is_done()) {
    parser.get().body().data = chunk;
    parser.get().body().size = sizeof chunk;
    ec = conn.run(
        [&](auto handler) { http::async_read_some(sock, buf, parser, std::move(handler)); },
        step_deadline(), timed_out);
    if (ec == http::error::need_buffer) ec = {};
    size_t n = sizeof chunk - parser.get().body().size;
    if (n > 0) {
      std::string_view piece(chunk, n);
      if (!success) {
        if (resp.body.size() < 65536) resp.body.append(piece);
      } else if (!on_data(piece)) {
        return resp;  // the caller has what it needs; closing the connection ends the rest
      }
    }
    if (ec) return fail(ec, "reading the response body from");
  }
  return resp;
}

}  // namespace berth::runtime::docker
