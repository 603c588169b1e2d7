// UnixHttpClient against a scripted server on a unix socket: streaming delivery, deadlines,
// cancellation and connection errors, which a real engine cannot be made to produce on demand.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <future>
#include <thread>

#include "runtime/docker/docker_http.h"
#include "runtime/errc.h"

namespace berth::runtime::docker {
namespace {
using namespace std::chrono_literals;

// Accepts one connection, reads the request head and runs `script` on the connected fd.
class ScriptedServer {
 public:
  explicit ScriptedServer(std::function<void(int fd)> script) {
    path_ = "/tmp/berth-http-test-" + std::to_string(::getpid()) + "-" +
            std::to_string(counter_++) + ".sock";
    ::unlink(path_.c_str());
    listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path_.c_str());
    EXPECT_EQ(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(::listen(listen_fd_, 1), 0);
    thread_ = std::thread([this, script = std::move(script)] {
      int fd = ::accept(listen_fd_, nullptr, nullptr);
      if (fd < 0) return;
      std::string head;
      char c;
      while (head.find("\r\n\r\n") == std::string::npos && ::read(fd, &c, 1) == 1) head += c;
      script(fd);
      ::close(fd);
    });
  }
  ~ScriptedServer() {
    ::shutdown(listen_fd_, SHUT_RDWR);
    thread_.join();
    ::close(listen_fd_);
    ::unlink(path_.c_str());
  }
  const std::string& path() const { return path_; }

  static void send(int fd, std::string_view s) {
    EXPECT_EQ(::write(fd, s.data(), s.size()), static_cast<ssize_t>(s.size()));
  }

 private:
  static inline std::atomic<int> counter_{0};
  std::string path_;
  int listen_fd_ = -1;
  std::thread thread_;
};

constexpr std::string_view kChunkedHead =
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";

std::string chunk(std::string_view data) {
  char size[16];
  std::snprintf(size, sizeof size, "%zx\r\n", data.size());
  return std::string(size) + std::string(data) + "\r\n";
}

TEST(UnixHttpClient, DeliversEachChunkBeforeTheNextArrives) {
  std::promise<void> first_delivered;
  auto delivered = first_delivered.get_future();
  std::atomic<bool> in_time{false};
  ScriptedServer server([&](int fd) {
    ScriptedServer::send(fd, std::string(kChunkedHead) + chunk("{\"n\":1}\n"));
    // The client must hand over the first event while the stream is otherwise idle.
    in_time = delivered.wait_for(2s) == std::future_status::ready;
    ScriptedServer::send(fd, chunk("{\"n\":2}\n") + "0\r\n\r\n");
  });
  UnixHttpClient http(server.path());
  std::string got;
  bool first = true;
  auto r = http.stream({.method = "GET", .target = "/events"}, {}, [&](std::string_view piece) {
    got.append(piece);
    if (first && got.find('\n') != std::string::npos) {
      first = false;
      first_delivered.set_value();
    }
    return true;
  });
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(in_time);
  EXPECT_EQ(got, "{\"n\":1}\n{\"n\":2}\n");
}

TEST(UnixHttpClient, ReadsBodiesDelimitedByEof) {
  ScriptedServer server([](int fd) {
    ScriptedServer::send(
        fd, "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\n\r\n");
    ScriptedServer::send(fd, std::string("\1\0\0\0\0\0\0\3hi\n", 11));
  });
  UnixHttpClient http(server.path());
  auto r = http.call({.method = "POST", .target = "/exec/x/start"}, 2s);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body.size(), 11u);
}

TEST(UnixHttpClient, CollectsErrorBodies) {
  ScriptedServer server([](int fd) {
    ScriptedServer::send(
        fd, "HTTP/1.1 404 Not Found\r\nContent-Length: 24\r\n\r\n{\"message\":\"no such x\"}\n");
  });
  UnixHttpClient http(server.path());
  auto r = http.stream({.method = "GET", .target = "/x"}, {}, [](std::string_view) {
    ADD_FAILURE() << "error bodies are not streamed";
    return true;
  });
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 404);
  EXPECT_EQ(r->body, "{\"message\":\"no such x\"}\n");
}

TEST(UnixHttpClient, TimesOutOnASilentEngine) {
  std::promise<void> done;
  auto finished = done.get_future();
  ScriptedServer server([&](int) { finished.wait_for(5s); });
  UnixHttpClient http(server.path());
  auto t = std::chrono::steady_clock::now();
  auto r = http.call({.method = "GET", .target = "/containers/x/json"}, 200ms);
  done.set_value();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::timeout);
  EXPECT_TRUE(retriable(r.error()));
  EXPECT_LT(std::chrono::steady_clock::now() - t, 1s);
}

TEST(UnixHttpClient, InactivityBoundsEachRead) {
  std::promise<void> done;
  auto finished = done.get_future();
  ScriptedServer server([&](int fd) {
    ScriptedServer::send(fd, std::string(kChunkedHead) + chunk("progress\n"));
    finished.wait_for(5s);
  });
  UnixHttpClient http(server.path());
  auto r = http.stream({.method = "POST", .target = "/images/create"}, {.inactivity = 200ms},
                       [](std::string_view) { return true; });
  done.set_value();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::timeout);
}

TEST(UnixHttpClient, CancellerEndsAStreamFromAnotherThread) {
  std::promise<void> done;
  auto finished = done.get_future();
  ScriptedServer server([&](int fd) {
    ScriptedServer::send(fd, kChunkedHead);
    finished.wait_for(5s);
  });
  UnixHttpClient http(server.path());
  StreamCanceller canceller;
  std::promise<void> headers;
  auto got_headers = headers.get_future();
  auto result = std::async(std::launch::async, [&] {
    return http.stream({.method = "GET", .target = "/events"},
                       {.on_header = [&](int) { headers.set_value(); }, .canceller = &canceller},
                       [](std::string_view) { return true; });
  });
  ASSERT_EQ(got_headers.wait_for(2s), std::future_status::ready);
  canceller.cancel();
  ASSERT_EQ(result.wait_for(2s), std::future_status::ready);
  auto r = result.get();
  done.set_value();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::cancelled);
  // A cancelled canceller refuses new streams at once.
  auto again = http.stream({.method = "GET", .target = "/events"}, {.canceller = &canceller},
                           [](std::string_view) { return true; });
  EXPECT_EQ(again.error().code, Errc::cancelled);
}

TEST(UnixHttpClient, MissingSocketIsUnavailable) {
  UnixHttpClient http("/tmp/berth-no-such-engine.sock");
  auto r = http.call({.method = "GET", .target = "/_ping"}, 1s);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::unavailable);
  EXPECT_NE(r.error().message.find("/tmp/berth-no-such-engine.sock"), std::string::npos);
}

}  // namespace
}  // namespace berth::runtime::docker
