// WebSocket upgrades on the real listener, driven by a tiny blocking client written on POSIX
// sockets (so this file compiles without Asio or Beast). Being raw lets a test do what a
// well-behaved client would not: ignore pings, pipeline frames behind the upgrade request, send a
// binary or oversized message.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "server/http_server.h"

namespace berth::server {
namespace {

using namespace std::chrono_literals;

constexpr int kText = 1, kBinary = 2, kClose = 8, kPing = 9, kPong = 10;

class EchoAcceptor;

// Echoes "echo:<text>"; a few messages act instead: "close-me" closes from the server side,
// "throw" throws from the listener.
class EchoListener : public api::WebSocketListener {
 public:
  EchoListener(EchoAcceptor& acceptor, std::shared_ptr<api::WebSocket> socket)
      : acceptor_(acceptor), socket_(std::move(socket)) {}
  void on_message(std::string_view text) override;
  void on_close() override;

 private:
  EchoAcceptor& acceptor_;
  std::shared_ptr<api::WebSocket> socket_;
  int closes_ = 0;
};

class EchoAcceptor : public api::WebSocketAcceptor {
 public:
  Outcome accept(const api::HttpRequest& upgrade, std::shared_ptr<api::WebSocket> socket) override {
    if (refuse) {
      api::HttpResponse response;
      response.status = 403;
      response.body = "{\"__type\":\"AccessDeniedException\"}";
      return response;
    }
    {
      std::lock_guard lock(mu);
      sockets.push_back(socket);
      targets.push_back(upgrade.target);
    }
    if (!greeting.empty()) socket->send(greeting);
    ++accepted;
    return std::make_unique<EchoListener>(*this, std::move(socket));
  }

  // Waits until `n` connections have ended; false after 20 s.
  bool wait_closed(int n) {
    for (int i = 0; i < 20'000 && closed < n; ++i) std::this_thread::sleep_for(1ms);
    return closed == n;
  }
  std::shared_ptr<api::WebSocket> socket(size_t i) {
    std::lock_guard lock(mu);
    return i < sockets.size() ? sockets[i] : nullptr;
  }

  bool refuse = false;
  std::string greeting;
  std::atomic<int> accepted{0}, closed{0}, double_closes{0}, messages{0};
  std::mutex mu;
  std::vector<std::shared_ptr<api::WebSocket>> sockets;
  std::vector<std::string> targets;
};

void EchoListener::on_message(std::string_view text) {
  ++acceptor_.messages;
  if (text == "close-me") return socket_->close("bye");
  if (text == "throw") throw std::runtime_error("listener bug");
  socket_->send("echo:" + std::string(text));
}

void EchoListener::on_close() {
  if (++closes_ > 1) ++acceptor_.double_closes;
  ++acceptor_.closed;
}

class NotFoundHandler : public api::HttpHandler {
 public:
  api::HttpResponse handle(const api::HttpRequest&) override {
    api::HttpResponse response;
    response.body = "plain";
    return response;
  }
};

struct Frame {
  int opcode = 0;
  std::string payload;
  int close_code() const {
    return payload.size() >= 2 ? (static_cast<unsigned char>(payload[0]) << 8) |
                                     static_cast<unsigned char>(payload[1])
                               : 0;
  }
};

// A blocking WebSocket client over a raw socket. Every read has a 20 s timeout so a server bug
// fails a test instead of hanging it.
class RawWs {
 public:
  explicit RawWs(uint16_t port) {
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
  ~RawWs() { ::close(fd_); }
  RawWs(const RawWs&) = delete;
  RawWs& operator=(const RawWs&) = delete;

  static std::string upgrade_request(const std::string& target, const std::string& extra = "",
                                     const std::string& version = "13") {
    return "GET " + target +
           " HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: " +
           version + "\r\n" + extra + "\r\n";
  }

  // Sends `raw` and reads the response head; returns its status (0 on failure). Headers land in
  // `headers` with lower-cased names; a body, if any, in `body`.
  int request(const std::string& raw) {
    send_raw(raw);
    size_t end;
    while ((end = buf_.find("\r\n\r\n")) == std::string::npos) {
      if (!fill()) return 0;
    }
    std::string head = buf_.substr(0, end + 2);
    buf_.erase(0, end + 4);
    headers.clear();
    size_t pos = head.find("\r\n") + 2;
    while (pos < head.size()) {
      size_t eol = head.find("\r\n", pos);
      std::string line = head.substr(pos, eol - pos);
      size_t colon = line.find(':');
      std::string name = line.substr(0, colon);
      for (char& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      headers[name] = line.substr(colon + 2);
      pos = eol + 2;
    }
    size_t length = headers.count("content-length") ? std::stoul(headers["content-length"]) : 0;
    while (buf_.size() < length) {
      if (!fill()) return 0;
    }
    body = buf_.substr(0, length);
    buf_.erase(0, length);
    return std::stoi(head.substr(9, 3));
  }

  bool upgrade(const std::string& target = "/agent") {
    return request(upgrade_request(target)) == 101;
  }

  // A client frame: always masked, as RFC 6455 5.3 requires of clients.
  static std::string frame(int opcode, const std::string& payload) {
    std::string out;
    out += static_cast<char>(0x80 | opcode);
    if (payload.size() < 126) {
      out += static_cast<char>(0x80 | payload.size());
    } else if (payload.size() < 65536) {
      out += static_cast<char>(0x80 | 126);
      out += static_cast<char>(payload.size() >> 8);
      out += static_cast<char>(payload.size() & 0xff);
    } else {
      out += static_cast<char>(0x80 | 127);
      for (int shift = 56; shift >= 0; shift -= 8) {
        out += static_cast<char>((static_cast<uint64_t>(payload.size()) >> shift) & 0xff);
      }
    }
    const char mask[4] = {0x12, 0x34, 0x56, 0x78};
    out.append(mask, 4);
    for (size_t i = 0; i < payload.size(); ++i) out += static_cast<char>(payload[i] ^ mask[i % 4]);
    return out;
  }

  void send_frame(int opcode, const std::string& payload) { send_raw(frame(opcode, payload)); }
  void send_text(const std::string& text) { send_frame(kText, text); }

  // The next frame as sent (server frames are unmasked); nullopt on EOF, error or timeout.
  std::optional<Frame> read_frame() {
    if (!need(2)) return std::nullopt;
    Frame f;
    f.opcode = buf_[0] & 0x0f;
    size_t len = static_cast<unsigned char>(buf_[1]) & 0x7f;
    size_t header = 2;
    if (len == 126 || len == 127) {
      size_t bytes = len == 126 ? 2 : 8;
      if (!need(2 + bytes)) return std::nullopt;
      len = 0;
      for (size_t i = 0; i < bytes; ++i) len = (len << 8) | static_cast<unsigned char>(buf_[2 + i]);
      header += bytes;
    }
    if (!need(header + len)) return std::nullopt;
    last_fin_ = (buf_[0] & 0x80) != 0;
    f.payload = buf_.substr(header, len);
    buf_.erase(0, header + len);
    return f;
  }

  // The next text message, answering pings on the way when `answer_pings`. nullopt when a close
  // frame (kept in `close`) or EOF comes first.
  std::optional<std::string> read_text(bool answer_pings = true) {
    std::string message;
    for (;;) {
      auto f = read_frame();
      if (!f) return std::nullopt;
      if (f->opcode == kPing) {
        if (answer_pings) send_frame(kPong, f->payload);
        continue;
      }
      if (f->opcode == kPong) continue;
      if (f->opcode == kClose) {
        close = f;
        return std::nullopt;
      }
      message += f->payload;
      if (last_fin_) return message;
    }
  }

  // True when the server dropped the TCP connection (EOF or reset) with no further bytes.
  bool closed_by_peer() {
    if (!buf_.empty()) return false;
    char c;
    ssize_t n = ::recv(fd_, &c, 1, 0);
    return n == 0 || (n < 0 && errno == ECONNRESET);
  }

  void send_raw(const std::string& data) {
    size_t off = 0;
    while (off < data.size()) {
      ssize_t n = ::send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return;
      off += static_cast<size_t>(n);
    }
  }

  bool connected() const { return connected_; }
  // Closes our end, as a real client does once the server has ended the TCP connection (the
  // server's teardown waits for that, RFC 6455 7.1.1).
  void disconnect() {
    ::close(fd_);
    fd_ = -1;
  }

  std::map<std::string, std::string> headers;
  std::string body;
  std::optional<Frame> close;

 private:
  bool need(size_t n) {
    while (buf_.size() < n) {
      if (!fill()) return false;
    }
    return true;
  }
  bool fill() {
    char tmp[16384];
    ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
    if (n <= 0) return false;
    buf_.append(tmp, static_cast<size_t>(n));
    return true;
  }

  int fd_ = -1;
  bool connected_ = false;
  bool last_fin_ = true;
  std::string buf_;
};

// A server with an EchoAcceptor on /agent, run on a background thread, stopped on destruction.
class WsServer {
 public:
  explicit WsServer(HttpServerOptions options = {}) : server_(std::move(options), handler_) {
    server_.add_websocket("/agent", acceptor);
    auto bound = server_.start();
    if (!bound.ok()) {
      ADD_FAILURE() << bound.error().message;
      return;
    }
    port = static_cast<uint16_t>(std::stoi(bound->substr(bound->rfind(':') + 1)));
    done_ = std::async(std::launch::async, [this] { server_.run(false); });
  }
  ~WsServer() {
    server_.stop();
    if (done_.valid()) done_.wait();
  }
  HttpServer& server() { return server_; }
  bool wait_stopped(std::chrono::milliseconds timeout) {
    return done_.wait_for(timeout) == std::future_status::ready;
  }

  EchoAcceptor acceptor;
  uint16_t port = 0;

 private:
  NotFoundHandler handler_;
  HttpServer server_;
  std::future<void> done_;
};

TEST(HttpWebSocketTest, UpgradesAndEchoes) {
  WsServer s;
  RawWs c(s.port);
  ASSERT_EQ(c.request(RawWs::upgrade_request("/agent?cluster=x")), 101);
  // RFC 6455 4.2.2: base64(SHA-1(key + the protocol's GUID)); the RFC's own example pair.
  EXPECT_EQ(c.headers["sec-websocket-accept"], "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  EXPECT_EQ(c.headers["server"], "berth");
  for (int i = 0; i < 3; ++i) {
    c.send_text("hello" + std::to_string(i));
    EXPECT_EQ(c.read_text(), "echo:hello" + std::to_string(i));
  }
  ASSERT_EQ(s.acceptor.accepted, 1);
  EXPECT_EQ(s.acceptor.targets[0], "/agent?cluster=x");  // the acceptor sees the query
  EXPECT_FALSE(s.acceptor.socket(0)->remote().empty());
}

TEST(HttpWebSocketTest, LargeMessagesArriveWhole) {
  WsServer s;
  RawWs c(s.port);
  ASSERT_TRUE(c.upgrade());
  std::string big(300'000, 'm');
  c.send_text(big);
  EXPECT_EQ(c.read_text(), "echo:" + big);
}

TEST(HttpWebSocketTest, MessagesSentInsideAcceptGoFirst) {
  WsServer s;
  s.acceptor.greeting = "welcome";
  RawWs c(s.port);
  ASSERT_TRUE(c.upgrade());
  EXPECT_EQ(c.read_text(), "welcome");
  c.send_text("x");
  EXPECT_EQ(c.read_text(), "echo:x");
}

TEST(HttpWebSocketTest, FramesPipelinedBehindTheUpgradeAreNotLost) {
  WsServer s;
  RawWs c(s.port);
  EXPECT_EQ(c.request(RawWs::upgrade_request("/agent") + RawWs::frame(kText, "early")), 101);
  EXPECT_EQ(c.read_text(), "echo:early");
}

TEST(HttpWebSocketTest, SendFromOtherThreadsKeepsEachThreadsOrder) {
  WsServer s;
  RawWs c(s.port);
  ASSERT_TRUE(c.upgrade());
  c.send_text("ready");  // once echoed, the acceptor has handed out the socket
  ASSERT_EQ(c.read_text(), "echo:ready");
  auto socket = s.acceptor.socket(0);
  constexpr int kThreads = 4, kPerThread = 200;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i)
        socket->send(std::to_string(t) + ":" + std::to_string(i));
    });
  }
  std::vector<int> next(kThreads, 0);
  for (int n = 0; n < kThreads * kPerThread; ++n) {
    auto text = c.read_text();
    ASSERT_TRUE(text) << n;
    int t = std::stoi(text->substr(0, text->find(':')));
    EXPECT_EQ(std::stoi(text->substr(text->find(':') + 1)), next[t]++);
  }
  for (auto& t : threads) t.join();
}

TEST(HttpWebSocketTest, RefusalIsThePlainHttpResponse) {
  WsServer s;
  s.acceptor.refuse = true;
  RawWs c(s.port);
  EXPECT_EQ(c.request(RawWs::upgrade_request("/agent")), 403);
  EXPECT_EQ(c.body, "{\"__type\":\"AccessDeniedException\"}");
  EXPECT_EQ(c.headers["connection"], "close");
  EXPECT_TRUE(c.closed_by_peer());
  EXPECT_EQ(s.acceptor.closed, 0);  // no listener, so nobody to tell
}

TEST(HttpWebSocketTest, BadUpgradesGetPlainHttpErrors) {
  WsServer s;
  {
    RawWs c(s.port);  // a plain request on the WebSocket path
    EXPECT_EQ(c.request("GET /agent HTTP/1.1\r\nHost: t\r\n\r\n"), 400);
    EXPECT_TRUE(c.closed_by_peer());
  }
  {
    RawWs c(s.port);
    EXPECT_EQ(c.request(RawWs::upgrade_request("/agent", "", "8")), 426);
    EXPECT_EQ(c.headers["sec-websocket-version"], "13");
  }
  {
    RawWs c(s.port);
    EXPECT_EQ(c.request("POST /agent HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\n"
                        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                        "Sec-WebSocket-Version: 13\r\nContent-Length: 0\r\n\r\n"),
              400);
  }
  {
    RawWs c(s.port);  // an upgrade on a path nobody serves
    EXPECT_EQ(c.request(RawWs::upgrade_request("/elsewhere")), 404);
    EXPECT_TRUE(c.closed_by_peer());
  }
  {
    RawWs c(s.port);  // plain requests elsewhere still reach the handler
    EXPECT_EQ(c.request("GET /agents HTTP/1.1\r\nHost: t\r\n\r\n"), 200);
    EXPECT_EQ(c.body, "plain");
  }
  EXPECT_EQ(s.acceptor.accepted, 0);
}

TEST(HttpWebSocketTest, IdleTimeoutClosesAClientThatIgnoresPings) {
  WsServer s({.ws_ping_interval = 50ms, .ws_idle_timeout = 300ms});
  RawWs c(s.port);
  ASSERT_TRUE(c.upgrade());
  auto started = std::chrono::steady_clock::now();
  int pings = 0;
  while (auto f = c.read_frame()) {
    if (f->opcode == kPing) ++pings;  // and never answered
  }
  EXPECT_GE(pings, 2);
  EXPECT_GE(std::chrono::steady_clock::now() - started, 250ms);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 15s);
  EXPECT_TRUE(s.acceptor.wait_closed(1));
}

TEST(HttpWebSocketTest, AnsweredPingsKeepTheConnectionOpen) {
  WsServer s({.ws_ping_interval = 50ms, .ws_idle_timeout = 300ms});
  RawWs c(s.port);
  ASSERT_TRUE(c.upgrade());
  int pings = 0;
  auto until = std::chrono::steady_clock::now() + 1s;
  while (std::chrono::steady_clock::now() < until) {
    auto f = c.read_frame();
    ASSERT_TRUE(f);
    ASSERT_EQ(f->opcode, kPing);
    c.send_frame(kPong, f->payload);
    ++pings;
  }
  EXPECT_GE(pings, 5);
  c.send_text("still here");
  EXPECT_EQ(c.read_text(), "echo:still here");
  EXPECT_EQ(s.acceptor.closed, 0);
}

TEST(HttpWebSocketTest, ServerSideCloseSendsACloseFrame) {
  WsServer s;
  RawWs c(s.port);
  ASSERT_TRUE(c.upgrade());
  c.send_text("a");
  c.send_text("close-me");
  EXPECT_EQ(c.read_text(), "echo:a");  // queued before the close, so still delivered
  EXPECT_FALSE(c.read_text());
  ASSERT_TRUE(c.close);
  EXPECT_EQ(c.close->close_code(), 1000);
  EXPECT_EQ(c.close->payload.substr(2), "bye");
  c.send_frame(kClose, c.close->payload.substr(0, 2));
  EXPECT_TRUE(c.closed_by_peer());
  c.disconnect();
  EXPECT_TRUE(s.acceptor.wait_closed(1));
}

TEST(HttpWebSocketTest, PeerCloseAndDisconnectCallOnCloseOnce) {
  WsServer s;
  {
    RawWs c(s.port);
    ASSERT_TRUE(c.upgrade());
    c.send_frame(kClose, std::string("\x03\xe8", 2));
    EXPECT_FALSE(c.read_text());
    ASSERT_TRUE(c.close);  // the server answers the close
    EXPECT_EQ(c.close->close_code(), 1000);
    EXPECT_TRUE(c.closed_by_peer());
  }
  {
    RawWs c(s.port);
    ASSERT_TRUE(c.upgrade());
  }  // dropped without a close frame
  EXPECT_TRUE(s.acceptor.wait_closed(2));
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(s.acceptor.double_closes, 0);
}

TEST(HttpWebSocketTest, SendAfterCloseIsANoOpEvenAfterTheServerIsGone) {
  std::shared_ptr<api::WebSocket> socket;
  {
    WsServer s;
    RawWs c(s.port);
    ASSERT_TRUE(c.upgrade());
    c.send_text("x");
    ASSERT_EQ(c.read_text(), "echo:x");
    socket = s.acceptor.socket(0);
  }
  socket->send("into the void");
  socket->close("again");
  EXPECT_FALSE(socket->remote().empty());
}

TEST(HttpWebSocketTest, OversizedMessageClosesWith1009) {
  WsServer s({.ws_max_message_bytes = 1024});
  RawWs c(s.port);
  ASSERT_TRUE(c.upgrade());
  c.send_text(std::string(1024, 'k'));  // at the limit: fine
  EXPECT_EQ(c.read_text(), "echo:" + std::string(1024, 'k'));
  c.send_text(std::string(2000, 'k'));
  EXPECT_FALSE(c.read_text());
  ASSERT_TRUE(c.close);
  EXPECT_EQ(c.close->close_code(), 1009);
  EXPECT_TRUE(s.acceptor.wait_closed(1));
}

TEST(HttpWebSocketTest, BinaryMessagesAndListenerErrorsClose) {
  WsServer s;
  {
    RawWs c(s.port);
    ASSERT_TRUE(c.upgrade());
    c.send_frame(kBinary, "\x01\x02");
    EXPECT_FALSE(c.read_text());
    ASSERT_TRUE(c.close);
    EXPECT_EQ(c.close->close_code(), 1003);
  }
  {
    RawWs c(s.port);
    ASSERT_TRUE(c.upgrade());
    c.send_text("throw");
    EXPECT_FALSE(c.read_text());
    ASSERT_TRUE(c.close);
    EXPECT_EQ(c.close->close_code(), 1011);
  }
  EXPECT_TRUE(s.acceptor.wait_closed(2));
}

TEST(HttpWebSocketTest, StopSendsGoingAwayAndCallsOnClose) {
  WsServer s({.shutdown_grace = 2s});
  RawWs polite(s.port), silent(s.port);
  ASSERT_TRUE(polite.upgrade());
  ASSERT_TRUE(silent.upgrade());
  s.server().stop();
  EXPECT_FALSE(polite.read_text());
  ASSERT_TRUE(polite.close);
  EXPECT_EQ(polite.close->close_code(), 1001);
  polite.send_frame(kClose, polite.close->payload.substr(0, 2));
  EXPECT_TRUE(polite.closed_by_peer());
  polite.disconnect();
  EXPECT_TRUE(s.acceptor.wait_closed(1));  // long before the grace ends
  EXPECT_FALSE(s.wait_stopped(0ms));
  // `silent` never answers its close frame: the grace period ends it.
  EXPECT_TRUE(s.wait_stopped(30s));
  EXPECT_EQ(s.acceptor.closed, 2);
}

TEST(HttpWebSocketTest, StopGivesUpOnSilentPeersAfterTheGrace) {
  WsServer s({.shutdown_grace = 200ms});
  RawWs silent(s.port);
  ASSERT_TRUE(silent.upgrade());
  auto started = std::chrono::steady_clock::now();
  s.server().stop();
  EXPECT_TRUE(s.wait_stopped(30s));
  EXPECT_LT(std::chrono::steady_clock::now() - started, 10s);
  EXPECT_EQ(s.acceptor.closed, 1);
}

TEST(HttpWebSocketTest, UpgradeDuringStopIsRefused) {
  WsServer s;
  RawWs late(s.port);
  std::string upgrade = RawWs::upgrade_request("/agent");
  late.send_raw(upgrade.substr(0, 20));  // mid-request, so stop() waits for it to finish
  std::this_thread::sleep_for(100ms);
  s.server().stop();
  EXPECT_EQ(late.request(upgrade.substr(20)), 503);
  EXPECT_TRUE(late.closed_by_peer());
  EXPECT_EQ(s.acceptor.accepted, 0);
}

TEST(HttpWebSocketTest, ManyConcurrentClients) {
  WsServer s;
  constexpr int kClients = 100, kThreads = 8, kRounds = 10;
  std::vector<std::unique_ptr<RawWs>> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.push_back(std::make_unique<RawWs>(s.port));
    ASSERT_TRUE(clients.back()->upgrade()) << i;
  }
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < kRounds; ++round) {
        for (int i = t; i < kClients; i += kThreads) {
          std::string text = std::to_string(i) + "/" + std::to_string(round);
          clients[i]->send_text(text);
          if (clients[i]->read_text() == "echo:" + text) ++ok;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok, kClients * kRounds);
  EXPECT_EQ(s.acceptor.accepted, kClients);
  clients.clear();
  EXPECT_TRUE(s.acceptor.wait_closed(kClients));
}

}  // namespace
}  // namespace berth::server
