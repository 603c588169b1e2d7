// Drives the real listener over loopback sockets with a tiny blocking client (plain POSIX
// sockets, so this file compiles without Asio or Beast).

#include "server/http_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstring>
#include <future>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace berth::server {
namespace {

using namespace std::chrono_literals;

// Echoes what it was given, so tests can see exactly what the server parsed. A few targets
// change behaviour: /status/NNN answers NNN, /close asks for the connection to close, /throw
// throws, and /slow takes at least 300 ms and does not finish before release_slow is set, so a
// test can be sure the request is still in flight when it acts.
class EchoHandler : public api::HttpHandler {
 public:
  api::HttpResponse handle(const api::HttpRequest& request) override {
    ++calls;
    api::HttpResponse response;
    if (request.target == "/slow") {
      slow_started = true;
      std::this_thread::sleep_for(300ms);
      for (int i = 0; i < 10'000 && !release_slow; ++i) std::this_thread::sleep_for(1ms);
    }
    if (request.target == "/throw") throw std::runtime_error("boom");
    if (request.target.starts_with("/status/"))
      response.status = std::stoi(request.target.substr(8));
    if (request.target == "/close") response.headers.emplace_back("Connection", "close");
    response.headers.emplace_back("X-Method", request.method);
    response.headers.emplace_back("X-Target", request.target);
    response.headers.emplace_back("X-Remote-Set", request.remote.empty() ? "no" : "yes");
    for (const auto& [name, value] : request.headers) response.body += name + "=" + value + "\n";
    response.body += "\n" + request.body;
    return response;
  }
  std::atomic<int> calls{0};
  std::atomic<bool> slow_started{false};
  std::atomic<bool> release_slow{false};
};

struct Response {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-cased names
  std::string body;
};

// A blocking client connection with a receive timeout, so a server bug fails a test instead of
// hanging it. Timing bounds in these tests are generous: CI machines are shared and a test
// process can be descheduled for seconds.
class Client {
 public:
  explicit Client(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    timeval tv{20, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  }
  ~Client() { ::close(fd_); }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  bool connected() const { return connected_; }

  void send(const std::string& data) {
    size_t off = 0;
    while (off < data.size()) {
      ssize_t n = ::send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return;
      off += static_cast<size_t>(n);
    }
  }

  // Reads one response (Content-Length framed, or no body for HEAD); nullopt on EOF, error or
  // timeout.
  std::optional<Response> read_response(bool head_only = false) {
    size_t end;
    while ((end = buf_.find("\r\n\r\n")) == std::string::npos) {
      if (!fill()) return std::nullopt;
    }
    Response r;
    std::string head = buf_.substr(0, end + 2);
    buf_.erase(0, end + 4);
    if (head.size() < 12 || head.rfind("HTTP/1.1 ", 0) != 0) return std::nullopt;
    r.status = std::stoi(head.substr(9, 3));
    size_t pos = head.find("\r\n") + 2;
    while (pos < head.size()) {
      size_t eol = head.find("\r\n", pos);
      std::string line = head.substr(pos, eol - pos);
      size_t colon = line.find(':');
      std::string name = line.substr(0, colon);
      for (char& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      r.headers[name] = line.substr(colon + 2);
      pos = eol + 2;
    }
    size_t length = r.headers.count("content-length") && !head_only
                        ? std::stoul(r.headers["content-length"])
                        : 0;
    while (buf_.size() < length) {
      if (!fill()) return std::nullopt;
    }
    r.body = buf_.substr(0, length);
    buf_.erase(0, length);
    return r;
  }

  std::optional<Response> request(const std::string& raw) {
    send(raw);
    return read_response();
  }

  // True when the server closed the connection (EOF or reset) with no further bytes.
  bool closed_by_peer() {
    if (!buf_.empty()) return false;
    char c;
    ssize_t n = ::recv(fd_, &c, 1, 0);
    return n == 0 || (n < 0 && errno == ECONNRESET);
  }

 private:
  bool fill() {
    char tmp[16384];
    ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
    if (n <= 0) return false;
    buf_.append(tmp, static_cast<size_t>(n));
    return true;
  }

  int fd_ = -1;
  bool connected_ = false;
  std::string buf_;
};

std::string get(const std::string& target, const std::string& extra = "") {
  return "GET " + target + " HTTP/1.1\r\nHost: test\r\n" + extra + "\r\n";
}

std::string post(const std::string& target, const std::string& body) {
  return "POST " + target +
         " HTTP/1.1\r\nHost: test\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" +
         body;
}

// A server started on 127.0.0.1:0 and run on a background thread; stopped on destruction.
class RunningServer {
 public:
  explicit RunningServer(HttpServerOptions options = {}, api::HttpHandler* handler = nullptr)
      : server_(std::move(options), handler ? *handler : echo) {
    auto bound = server_.start();
    if (!bound.ok()) {
      ADD_FAILURE() << bound.error().message;
      return;
    }
    address = *bound;
    port = static_cast<uint16_t>(std::stoi(address.substr(address.rfind(':') + 1)));
    done_ = std::async(std::launch::async, [this] { server_.run(false); });
  }
  ~RunningServer() {
    server_.stop();
    if (done_.valid()) done_.wait();
  }

  HttpServer& server() { return server_; }
  // Whether run() returned within `timeout`.
  bool wait_stopped(std::chrono::milliseconds timeout) {
    return done_.wait_for(timeout) == std::future_status::ready;
  }

  EchoHandler echo;
  std::string address;
  uint16_t port = 0;

 private:
  HttpServer server_;
  std::future<void> done_;
};

TEST(HttpServerTest, StartOnPortZeroReturnsTheRealPort) {
  RunningServer s;
  EXPECT_TRUE(s.address.starts_with("127.0.0.1:")) << s.address;
  EXPECT_NE(s.port, 0);
  Client c(s.port);
  EXPECT_TRUE(c.connected());
}

TEST(HttpServerTest, ListensOnIpv6Loopback) {
  EchoHandler handler;
  HttpServer server({.listen = "[::1]:0"}, handler);
  auto bound = server.start();
  if (!bound.ok()) GTEST_SKIP() << "no IPv6 here: " << bound.error().message;
  EXPECT_TRUE(bound->starts_with("[::1]:")) << *bound;
}

TEST(HttpServerTest, HandlerSeesMethodTargetHeadersAndBody) {
  RunningServer s;
  Client c(s.port);
  auto r = c.request(
      "POST /path?a=b HTTP/1.1\r\nHost: test\r\nX-Amz-Target: Foo.Bar\r\n"
      "Content-Length: 5\r\n\r\nhello");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->headers["x-method"], "POST");
  EXPECT_EQ(r->headers["x-target"], "/path?a=b");
  EXPECT_EQ(r->headers["x-remote-set"], "yes");
  EXPECT_EQ(r->headers["server"], "berth");
  EXPECT_TRUE(r->headers.count("date"));
  EXPECT_EQ(r->body, "Host=test\nX-Amz-Target=Foo.Bar\nContent-Length=5\n\nhello");
  EXPECT_EQ(r->headers["content-length"], std::to_string(r->body.size()));
}

TEST(HttpServerTest, ChunkedBodyIsReassembled) {
  RunningServer s;
  Client c(s.port);
  auto r = c.request(
      "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
      "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_TRUE(r->body.ends_with("\n\nabcde")) << r->body;
}

TEST(HttpServerTest, KeepAliveServesSeveralRequestsOnOneConnection) {
  RunningServer s;
  Client c(s.port);
  for (int i = 0; i < 5; ++i) {
    auto r = c.request(post("/n" + std::to_string(i), "body" + std::to_string(i)));
    ASSERT_TRUE(r) << i;
    EXPECT_EQ(r->headers["x-target"], "/n" + std::to_string(i));
    EXPECT_TRUE(r->body.ends_with("body" + std::to_string(i)));
    EXPECT_FALSE(r->headers.count("connection"));
  }
  // Pipelined: three requests in one write, answered in order.
  c.send(get("/p1") + post("/p2", "xyz") + get("/p3"));
  for (std::string target : {"/p1", "/p2", "/p3"}) {
    auto r = c.read_response();
    ASSERT_TRUE(r) << target;
    EXPECT_EQ(r->headers["x-target"], target);
  }
  EXPECT_EQ(s.echo.calls, 8);
}

TEST(HttpServerTest, ConnectionCloseFromClientIsHonoured) {
  RunningServer s;
  Client c(s.port);
  auto r = c.request(get("/", "Connection: close\r\n"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->headers["connection"], "close");
  EXPECT_TRUE(c.closed_by_peer());
}

TEST(HttpServerTest, ConnectionCloseFromHandlerIsHonoured) {
  RunningServer s;
  Client c(s.port);
  auto r = c.request(get("/close"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->headers["connection"], "close");
  EXPECT_TRUE(c.closed_by_peer());
}

TEST(HttpServerTest, Http10ClosesUnlessKeepAliveIsAsked) {
  RunningServer s;
  {
    Client c(s.port);
    auto r = c.request("GET /old HTTP/1.0\r\n\r\n");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_TRUE(c.closed_by_peer());
  }
  Client c(s.port);
  auto r = c.request("GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->headers["connection"], "keep-alive");
  r = c.request("GET /b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->headers["x-target"], "/b");
}

TEST(HttpServerTest, StatusAndHeadAndHandlerErrors) {
  RunningServer s;
  Client c(s.port);
  auto r = c.request(get("/status/404"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
  r = c.request(get("/throw"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 500);
  // HEAD: the headers GET would send and no body, so the next response starts right after.
  c.send("HEAD /h HTTP/1.1\r\nHost: t\r\n\r\n");
  r = c.read_response(/*head_only=*/true);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_NE(r->headers["content-length"], "0");
  r = c.request(get("/after"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->headers["x-target"], "/after");
}

TEST(HttpServerTest, ExpectContinueGetsAnInterimResponse) {
  RunningServer s;
  Client c(s.port);
  auto interim =
      c.request("POST / HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
  ASSERT_TRUE(interim);
  EXPECT_EQ(interim->status, 100);
  auto r = c.request("12345");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_TRUE(r->body.ends_with("\n\n12345"));
}

TEST(HttpServerTest, OversizedBodyWithContentLengthGets413) {
  RunningServer s({.max_body_bytes = 1024});
  Client c(s.port);
  // Only the header is sent: the limit must be applied before any body is read.
  auto r = c.request("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
  EXPECT_EQ(r->headers["connection"], "close");
  EXPECT_TRUE(c.closed_by_peer());
  EXPECT_EQ(s.echo.calls, 0);
}

TEST(HttpServerTest, OversizedChunkedBodyGets413) {
  RunningServer s({.max_body_bytes = 1024});
  Client c(s.port);
  std::string chunk(600, 'x');
  auto r = c.request("POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n258\r\n" +
                     chunk + "\r\n258\r\n" + chunk + "\r\n");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
  EXPECT_TRUE(c.closed_by_peer());
  EXPECT_EQ(s.echo.calls, 0);
}

TEST(HttpServerTest, BodyAtTheLimitIsAccepted) {
  RunningServer s({.max_body_bytes = 1024});
  Client c(s.port);
  auto r = c.request(post("/", std::string(1024, 'y')));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

TEST(HttpServerTest, OversizedHeaderGets431) {
  RunningServer s({.max_header_bytes = 1024});
  Client c(s.port);
  auto r = c.request(get("/", "X-Big: " + std::string(2000, 'h') + "\r\n"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 431);
}

TEST(HttpServerTest, PartialHeaderTimesOutWith408) {
  RunningServer s({.header_timeout = 200ms});
  Client c(s.port);
  auto started = std::chrono::steady_clock::now();
  auto r = c.request("GET / HTTP/1.1\r\nHost: t\r\n");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 408);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 10s);
  EXPECT_TRUE(c.closed_by_peer());
}

TEST(HttpServerTest, PartialBodyTimesOutWith408) {
  RunningServer s({.body_timeout = 200ms});
  Client c(s.port);
  auto r = c.request("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nonly-this");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 408);
  EXPECT_TRUE(c.closed_by_peer());
  EXPECT_EQ(s.echo.calls, 0);
}

TEST(HttpServerTest, SilentConnectionsAreClosedWithoutAResponse) {
  RunningServer s({.header_timeout = 200ms, .idle_timeout = 200ms});
  Client fresh(s.port);  // never sends anything
  Client used(s.port);   // idle after one request
  ASSERT_TRUE(used.request(get("/")));
  EXPECT_TRUE(fresh.closed_by_peer());
  EXPECT_TRUE(used.closed_by_peer());
}

TEST(HttpServerTest, GarbageGets400) {
  RunningServer s;
  Client c(s.port);
  auto r = c.request("\x01\x02 not http at all\r\n\r\n");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_TRUE(c.closed_by_peer());

  Client bad_version(s.port);
  r = bad_version.request("GET / HTTP/9\r\n\r\n");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
}

TEST(HttpServerTest, ManyConcurrentConnections) {
  RunningServer s;
  constexpr int kConnections = 200, kThreads = 8, kRounds = 10;
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < kConnections; ++i) {
    clients.push_back(std::make_unique<Client>(s.port));
    ASSERT_TRUE(clients.back()->connected());
  }
  // All 200 stay open while each thread takes turns on its share of them.
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < kRounds; ++round) {
        for (int i = t; i < kConnections; i += kThreads) {
          std::string body = std::to_string(i) + "/" + std::to_string(round);
          auto r = clients[i]->request(post("/c", body));
          if (r && r->status == 200 && r->body.ends_with("\n\n" + body)) ++ok;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok, kConnections * kRounds);
}

TEST(HttpServerTest, ConnectionsBeyondTheLimitAreClosed) {
  RunningServer s({.max_connections = 2});
  Client a(s.port), b(s.port);
  ASSERT_TRUE(a.request(get("/")));
  ASSERT_TRUE(b.request(get("/")));
  Client c(s.port);
  EXPECT_TRUE(c.closed_by_peer());
  EXPECT_TRUE(a.request(get("/")));  // the ones admitted keep working
}

TEST(HttpServerTest, StopFinishesRequestsInFlightAndClosesIdleConnections) {
  RunningServer s;
  Client idle(s.port);
  ASSERT_TRUE(idle.request(get("/")));
  Client fresh(s.port);  // connected, but has not sent a request yet
  Client busy(s.port);
  busy.send(get("/slow"));
  while (!s.echo.slow_started) std::this_thread::sleep_for(1ms);
  s.server().stop();
  s.echo.release_slow = true;

  auto r = busy.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->headers["connection"], "close");
  EXPECT_TRUE(busy.closed_by_peer());
  EXPECT_TRUE(idle.closed_by_peer());
  EXPECT_TRUE(fresh.closed_by_peer());
  EXPECT_TRUE(s.wait_stopped(20s));
  Client late(s.port);
  EXPECT_FALSE(late.connected());
}

TEST(HttpServerTest, SigtermStopsRunWhenAsked) {
  EchoHandler handler;
  HttpServer server({}, handler);
  auto bound = server.start();
  ASSERT_TRUE(bound.ok());
  auto done = std::async(std::launch::async, [&] { server.run(/*handle_signals=*/true); });
  Client c(static_cast<uint16_t>(std::stoi(bound->substr(bound->rfind(':') + 1))));
  // Once a request is answered run() has installed its signal handler.
  ASSERT_TRUE(c.request(get("/")));
  ::kill(::getpid(), SIGTERM);
  EXPECT_EQ(done.wait_for(20s), std::future_status::ready);
  EXPECT_TRUE(c.closed_by_peer());
}

TEST(HttpServerTest, StopGivesUpOnStalledRequestsAfterTheGrace) {
  // The grace, not the header timeout, must be what ends the stalled request.
  RunningServer s({.header_timeout = 60s, .shutdown_grace = 200ms});
  Client stalled(s.port);
  stalled.send("GET / HTTP/1.1\r\n");  // half a request: neither idle nor finishing
  std::this_thread::sleep_for(50ms);
  s.server().stop();
  EXPECT_TRUE(s.wait_stopped(30s));
}

TEST(HttpServerTest, StopBeforeRunMakesRunReturn) {
  EchoHandler handler;
  HttpServer server({}, handler);
  ASSERT_TRUE(server.start().ok());
  server.stop();
  auto done = std::async(std::launch::async, [&] { server.run(false); });
  EXPECT_EQ(done.wait_for(20s), std::future_status::ready);
}

TEST(HttpServerTest, BadListenAddressesAreErrors) {
  EchoHandler handler;
  for (std::string listen : {"not an address:80", "127.0.0.1", "127.0.0.1:99999", "127.0.0.1:x",
                             "::1:80", "[::1:80", "256.1.1.1:80"}) {
    HttpServer server({.listen = listen}, handler);
    auto bound = server.start();
    EXPECT_FALSE(bound.ok()) << listen;
    if (!bound.ok()) {
      EXPECT_NE(bound.error().message.find(listen), std::string::npos);
    }
  }
}

TEST(HttpServerTest, BusyPortIsAnError) {
  RunningServer first;
  EchoHandler handler;
  HttpServer second({.listen = first.address}, handler);
  auto bound = second.start();
  ASSERT_FALSE(bound.ok());
  EXPECT_EQ(bound.error().code, std::errc::address_in_use) << bound.error().message;
}

}  // namespace
}  // namespace berth::server
