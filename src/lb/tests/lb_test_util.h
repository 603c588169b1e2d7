#pragma once
// Helpers for tests against a real HAProxy: busybox httpd upstreams, a tiny HTTP/1.1 client,
// bounded polling, and counting the proxy's processes.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <thread>

extern char** environ;

namespace berth::lb::testing {

inline constexpr const char* kHaproxy = "/usr/sbin/haproxy";
inline constexpr const char* kBusybox = "/bin/busybox";

/// Polls `f` every 50 ms until it returns true or `limit` passes.
template <class F>
bool eventually(F f, std::chrono::milliseconds limit = std::chrono::seconds(15)) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    if (f()) return true;
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

/// A port nothing listens on right now (the kernel's choice for port 0).
inline int free_port() {
  int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  socklen_t len = sizeof(a);
  ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(s);
  return ntohs(a.sin_port);
}

inline int connect_local(int port) {
  int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  timeval tv{5, 0};  // bounds every read: a test never hangs on a silent proxy
  ::setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  if (::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    ::close(s);
    return -1;
  }
  return s;
}

struct HttpReply {
  int status = 0;
  std::string body;
  bool closing = false;  // the server said "Connection: close"
  std::string content_type;
};

/// An HTTP/1.1 client connection that keeps the connection open between requests.
class HttpConnection {
 public:
  explicit HttpConnection(int port) : fd_(connect_local(port)) {}
  ~HttpConnection() {
    if (fd_ >= 0) ::close(fd_);
  }
  HttpConnection(const HttpConnection&) = delete;
  HttpConnection& operator=(const HttpConnection&) = delete;
  bool connected() const { return fd_ >= 0; }

  /// One request; nullopt when the connection failed or closed before a complete response.
  std::optional<HttpReply> get(const std::string& path, bool close = false,
                               const std::string& host = "test") {
    if (fd_ < 0) return std::nullopt;
    std::string req = "GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\n";
    if (close) req += "Connection: close\r\n";
    req += "\r\n";
    if (::send(fd_, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size()))
      return std::nullopt;
    std::string data;
    size_t head_end;
    while ((head_end = data.find("\r\n\r\n")) == std::string::npos)
      if (!read_more(data)) return std::nullopt;
    HttpReply r;
    std::string head = data.substr(0, head_end);
    if (head.size() < 12) return std::nullopt;
    r.status = std::atoi(head.c_str() + 9);
    std::string lower = head;
    for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    r.closing = lower.find("\r\nconnection: close") != std::string::npos;
    if (auto ct = lower.find("\r\ncontent-type:"); ct != std::string::npos) {
      size_t start = head.find_first_not_of(' ', ct + 15);
      r.content_type = head.substr(start, head.find("\r\n", start) - start);
    }
    std::string body = data.substr(head_end + 4);
    auto cl = lower.find("\r\ncontent-length:");
    if (cl != std::string::npos) {
      size_t n = std::strtoul(lower.c_str() + cl + 17, nullptr, 10);
      while (body.size() < n)
        if (!read_more(body)) return std::nullopt;
      r.body = body.substr(0, n);
    } else {  // no length (CGI through HTTP/1.0): the body ends with the connection
      while (read_more(body)) {
      }
      r.body = body;
      r.closing = true;
    }
    return r;
  }

 private:
  bool read_more(std::string& out) {
    char buf[4096];
    ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
    if (n <= 0) return false;
    out.append(buf, static_cast<size_t>(n));
    return true;
  }
  int fd_;
};

/// One request on its own connection.
inline std::optional<HttpReply> http_get(int port, const std::string& path,
                                         const std::string& host = "test") {
  HttpConnection c(port);
  return c.get(path, true, host);
}

/// A busybox httpd serving `dir` on 127.0.0.1:port, stopped by the destructor.
class Httpd {
 public:
  Httpd(std::string dir, int port) : dir_(std::move(dir)), port_(port) {
    std::string listen = "127.0.0.1:" + std::to_string(port_);
    const char* argv[] = {kBusybox,       "httpd", "-f",         "-p",
                          listen.c_str(), "-h",    dir_.c_str(), nullptr};
    posix_spawn(&pid_, kBusybox, nullptr, nullptr, const_cast<char**>(argv), environ);
    eventually([&] {
      int s = connect_local(port_);
      if (s >= 0) ::close(s);
      return s >= 0;
    });
  }
  ~Httpd() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  Httpd(const Httpd&) = delete;
  Httpd& operator=(const Httpd&) = delete;
  int port() const { return port_; }
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  int port_;
  pid_t pid_ = -1;
};

inline void write_file(const std::filesystem::path& p, const std::string& content,
                       bool executable = false) {
  std::filesystem::create_directories(p.parent_path());
  std::ofstream(p) << content;
  if (executable)
    std::filesystem::permissions(p, std::filesystem::perms::owner_all,
                                 std::filesystem::perm_options::add);
}

/// False once `pid` is gone or a zombie.
inline bool process_alive(int pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(f, line)) return false;
  auto p = line.rfind(')');
  return p != std::string::npos && p + 2 < line.size() && line[p + 2] != 'Z';
}

/// Live processes whose command line mentions `needle` (master and workers of one proxy).
inline int live_processes_mentioning(const std::string& needle) {
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    std::string name = e.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream f(e.path() / "cmdline", std::ios::binary);
    std::string cmd((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    if (cmd.find(needle) != std::string::npos && process_alive(std::stoi(name))) ++n;
  }
  return n;
}

}  // namespace berth::lb::testing
