// The agent's WebSocket client against the real HttpServer (and, where a server must misbehave,
// against a raw socket that speaks just enough of the protocol).

#include "agent/ws_client.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/sha.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/base64.h"
#include "server/http_server.h"

namespace berth::agent {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

class Acceptor;

// Echoes "echo:<text>". "close-me" closes from the server; "push:N" sends N messages.
class Listener : public api::WebSocketListener {
 public:
  Listener(Acceptor& acceptor, std::shared_ptr<api::WebSocket> socket)
      : acceptor_(acceptor), socket_(std::move(socket)) {}
  void on_message(std::string_view text) override {
    if (text == "close-me") return socket_->close("bye");
    if (text.starts_with("push:")) {
      int n = std::stoi(std::string(text.substr(5)));
      for (int i = 0; i < n; ++i) socket_->send(std::string(static_cast<size_t>(i + 1), 'p'));
      return;
    }
    socket_->send("echo:" + std::string(text));
  }
  void on_close() override;

 private:
  Acceptor& acceptor_;
  std::shared_ptr<api::WebSocket> socket_;
};

class Acceptor : public api::WebSocketAcceptor {
 public:
  Outcome accept(const api::HttpRequest& upgrade, std::shared_ptr<api::WebSocket> socket) override {
    std::lock_guard lock(mu);
    request = upgrade;
    if (refuse) {
      api::HttpResponse response;
      response.status = 403;
      response.body = "{\"__type\":\"InvalidSignatureException\"}";
      return response;
    }
    sockets.push_back(socket);
    return std::make_unique<Listener>(*this, std::move(socket));
  }
  bool wait_closed(int n) {
    for (int i = 0; i < 20'000 && closed < n; ++i) std::this_thread::sleep_for(1ms);
    return closed == n;
  }

  std::mutex mu;
  bool refuse = false;
  api::HttpRequest request;
  std::vector<std::shared_ptr<api::WebSocket>> sockets;
  std::atomic<int> closed{0};
};

void Listener::on_close() { ++acceptor_.closed; }

class NoHttp : public api::HttpHandler {
 public:
  api::HttpResponse handle(const api::HttpRequest&) override { return {404, {}, ""}; }
};

// The real server with the acceptor on /ws, on a background thread.
class Server {
 public:
  explicit Server(server::HttpServerOptions options = {}) : server_(std::move(options), http_) {
    server_.add_websocket("/ws", acceptor);
    auto bound = server_.start();
    if (!bound.ok()) {
      ADD_FAILURE() << bound.error().message;
      return;
    }
    port = static_cast<uint16_t>(std::stoi(bound->substr(bound->rfind(':') + 1)));
    done_ = std::async(std::launch::async, [this] { server_.run(false); });
  }
  ~Server() { stop(); }
  void stop() {
    server_.stop();
    if (done_.valid()) done_.wait();
  }

  Acceptor acceptor;
  uint16_t port = 0;

 private:
  NoHttp http_;
  server::HttpServer server_;
  std::future<void> done_;
};

std::unique_ptr<WebSocketClient> connect_or_fail(uint16_t port,
                                                 WebSocketClientOptions options = {}) {
  auto client = WebSocketClient::connect("127.0.0.1", port, "/ws", {}, 5s, options);
  if (!client.ok()) {
    ADD_FAILURE() << client.error().message;
    return nullptr;
  }
  return std::move(*client);
}

// A port nothing listens on: bound to find a free one, then released.
uint16_t closed_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

// A listening socket that answers nothing, or (with `upgrade`) completes one WebSocket handshake
// and then goes silent: a server whose host froze.
class MuteServer {
 public:
  explicit MuteServer(bool upgrade) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    ::listen(fd_, 4);
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port = ntohs(addr.sin_port);
    if (upgrade) thread_ = std::thread([this] { answer_one(); });
  }
  ~MuteServer() {
    ::shutdown(fd_, SHUT_RDWR);
    if (thread_.joinable()) thread_.join();
    if (conn_ >= 0) ::close(conn_);
    ::close(fd_);
  }

  uint16_t port = 0;

 private:
  void answer_one() {
    conn_ = ::accept(fd_, nullptr, nullptr);
    if (conn_ < 0) return;
    timeval tv{10, 0};
    ::setsockopt(conn_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::string request;
    char buf[4096];
    while (request.find("\r\n\r\n") == std::string::npos) {
      ssize_t n = ::recv(conn_, buf, sizeof buf, 0);
      if (n <= 0) return;
      request.append(buf, static_cast<size_t>(n));
    }
    size_t at = request.find("Sec-WebSocket-Key: ") + 19;
    std::string key = request.substr(at, request.find("\r\n", at) - at);
    std::string input = key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    unsigned char digest[SHA_DIGEST_LENGTH];
    SHA1(reinterpret_cast<const unsigned char*>(input.data()), input.size(), digest);
    std::string response =
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Accept: " +
        base64_encode(std::string_view(reinterpret_cast<char*>(digest), sizeof digest)) +
        "\r\n\r\n";
    ::send(conn_, response.data(), response.size(), MSG_NOSIGNAL);
  }

  int fd_ = -1;
  int conn_ = -1;
  std::thread thread_;
};

TEST(WebSocketClientTest, HandshakeSendsHostPortTargetAndCallerHeaders) {
  Server s;
  auto client = WebSocketClient::connect(
      "127.0.0.1", s.port, "/ws?containerInstance=abc",
      {{"X-Amz-Date", "20240101T000000Z"}, {"Authorization", "AWS4-HMAC-SHA256 Credential=x"}}, 5s);
  ASSERT_TRUE(client.ok()) << client.error().message;
  std::lock_guard lock(s.acceptor.mu);
  const auto& r = s.acceptor.request;
  EXPECT_EQ(r.method, "GET");
  EXPECT_EQ(r.target, "/ws?containerInstance=abc");
  EXPECT_EQ(r.header("host"), "127.0.0.1:" + std::to_string(s.port));
  EXPECT_EQ(r.header("x-amz-date"), "20240101T000000Z");
  EXPECT_EQ(r.header("authorization"), "AWS4-HMAC-SHA256 Credential=x");
  EXPECT_EQ(r.header("user-agent"), "berth-agent");
}

TEST(WebSocketClientTest, ExchangesMessagesBothWays) {
  Server s;
  auto client = connect_or_fail(s.port);
  ASSERT_TRUE(client);
  ASSERT_TRUE(client->send("hello").ok());
  auto got = client->receive(5s);
  ASSERT_TRUE(got.ok()) << got.error().message;
  EXPECT_EQ(*got, "echo:hello");

  // Pushed by the server unprompted, as desired state is.
  std::shared_ptr<api::WebSocket> socket;
  {
    std::lock_guard lock(s.acceptor.mu);
    socket = s.acceptor.sockets.at(0);
  }
  socket->send("{\"type\":\"PayloadMessage\"}");
  got = client->receive(5s);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, "{\"type\":\"PayloadMessage\"}");

  std::string big(1 << 20, 'b');
  ASSERT_TRUE(client->send(big).ok());
  got = client->receive(5s);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, "echo:" + big);
}

TEST(WebSocketClientTest, ReceiveTimeoutReturnsNullopt) {
  Server s;
  auto client = connect_or_fail(s.port);
  ASSERT_TRUE(client);
  auto started = Clock::now();
  auto got = client->receive(100ms);
  ASSERT_TRUE(got.ok()) << got.error().message;
  EXPECT_FALSE(got->has_value());
  EXPECT_GE(Clock::now() - started, 90ms);
  EXPECT_LT(Clock::now() - started, 10s);
}

TEST(WebSocketClientTest, SendsFromAnotherThreadWhileReceiving) {
  Server s;
  auto client = connect_or_fail(s.port);
  ASSERT_TRUE(client);
  constexpr int kMessages = 200;
  std::thread sender([&] {
    for (int i = 0; i < kMessages; ++i) EXPECT_TRUE(client->send(std::to_string(i)).ok());
  });
  for (int i = 0; i < kMessages; ++i) {
    auto got = client->receive(10s);
    ASSERT_TRUE(got.ok() && got->has_value()) << i;
    EXPECT_EQ(**got, "echo:" + std::to_string(i));
  }
  sender.join();
}

TEST(WebSocketClientTest, ServerCloseIsDetectedAfterEarlierMessages) {
  Server s;
  auto client = connect_or_fail(s.port);
  ASSERT_TRUE(client);
  ASSERT_TRUE(client->send("push:3").ok());
  ASSERT_TRUE(client->send("close-me").ok());
  for (int i = 1; i <= 3; ++i) {
    auto got = client->receive(5s);
    ASSERT_TRUE(got.ok() && got->has_value()) << i;
    EXPECT_EQ(**got, std::string(static_cast<size_t>(i), 'p'));
  }
  auto got = client->receive(5s);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().code, WebSocketErrc::kClosed);
  EXPECT_NE(got.error().message.find("1000 bye"), std::string::npos) << got.error().message;
  auto sent = client->send("too late");
  ASSERT_FALSE(sent.ok());
  EXPECT_EQ(sent.error().code, WebSocketErrc::kClosed);
  EXPECT_TRUE(s.acceptor.wait_closed(1));
}

TEST(WebSocketClientTest, ServerStopIsDetected) {
  Server s;
  auto client = connect_or_fail(s.port);
  ASSERT_TRUE(client);
  auto stopped = std::async(std::launch::async, [&] { s.stop(); });
  auto got = client->receive(10s);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().code, WebSocketErrc::kClosed);
  EXPECT_NE(got.error().message.find("1001"), std::string::npos) << got.error().message;
  // The client answered the close, so stop need not wait out its grace period.
  EXPECT_EQ(stopped.wait_for(5s), std::future_status::ready);
  EXPECT_EQ(s.acceptor.closed, 1);
}

TEST(WebSocketClientTest, RejectedUpgradeCarriesTheStatusAndBody) {
  Server s;
  s.acceptor.refuse = true;
  auto client = WebSocketClient::connect("127.0.0.1", s.port, "/ws", {}, 5s);
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(client.error().code, WebSocketErrc::kRejected);
  EXPECT_NE(client.error().message.find("HTTP 403"), std::string::npos) << client.error().message;
  EXPECT_NE(client.error().message.find("InvalidSignatureException"), std::string::npos);
}

TEST(WebSocketClientTest, ConnectToAClosedPortFailsQuickly) {
  auto started = Clock::now();
  auto client = WebSocketClient::connect("127.0.0.1", closed_port(), "/ws", {}, 10s);
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(client.error().code, WebSocketErrc::kConnectFailed) << client.error().message;
  EXPECT_LT(Clock::now() - started, 2s);
}

TEST(WebSocketClientTest, ConnectTimesOutOnAServerThatNeverAnswers) {
  MuteServer mute(/*upgrade=*/false);  // the kernel completes the TCP handshake; nobody reads
  auto started = Clock::now();
  auto client = WebSocketClient::connect("127.0.0.1", mute.port, "/ws", {}, 200ms);
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(client.error().code, WebSocketErrc::kTimeout) << client.error().message;
  EXPECT_LT(Clock::now() - started, 5s);
}

TEST(WebSocketClientTest, AnswersPingsWhileNobodyReceives) {
  Server s({.ws_ping_interval = 50ms, .ws_idle_timeout = 300ms});
  auto client = connect_or_fail(s.port);
  ASSERT_TRUE(client);
  std::this_thread::sleep_for(1s);  // many pings, no receive() call
  ASSERT_TRUE(client->send("alive").ok());
  auto got = client->receive(5s);
  ASSERT_TRUE(got.ok()) << got.error().message;
  EXPECT_EQ(*got, "echo:alive");
  EXPECT_EQ(s.acceptor.closed, 0);
}

TEST(WebSocketClientTest, SilentServerIsDetected) {
  MuteServer mute(/*upgrade=*/true);
  auto client =
      WebSocketClient::connect("127.0.0.1", mute.port, "/ws", {}, 5s, {.idle_timeout = 300ms});
  ASSERT_TRUE(client.ok()) << client.error().message;
  auto started = Clock::now();
  auto got = (*client)->receive(10s);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().code, WebSocketErrc::kClosed);
  EXPECT_NE(got.error().message.find("silent"), std::string::npos) << got.error().message;
  EXPECT_LT(Clock::now() - started, 5s);
}

TEST(WebSocketClientTest, CloseUnblocksReceiveAndTellsTheServer) {
  Server s;
  auto client = connect_or_fail(s.port);
  ASSERT_TRUE(client);
  auto receiving = std::async(std::launch::async, [&] { return client->receive(20s); });
  std::this_thread::sleep_for(50ms);
  client->close();
  client->close();  // idempotent
  ASSERT_EQ(receiving.wait_for(5s), std::future_status::ready);
  auto got = receiving.get();
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().code, WebSocketErrc::kClosed);
  EXPECT_FALSE(client->send("after close").ok());
  EXPECT_TRUE(s.acceptor.wait_closed(1));
}

TEST(WebSocketClientTest, OversizedMessageFromTheServerFails) {
  Server s;
  auto client = connect_or_fail(s.port, {.max_message_bytes = 1024});
  ASSERT_TRUE(client);
  ASSERT_TRUE(client->send(std::string(2000, 'x')).ok());  // echoed back at 2005 bytes
  auto got = client->receive(5s);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().code, WebSocketErrc::kTooBig) << got.error().message;
}

}  // namespace
}  // namespace berth::agent
