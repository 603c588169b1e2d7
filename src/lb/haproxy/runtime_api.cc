#include "lb/haproxy/runtime_api.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "lb/errc.h"

namespace berth::lb {
namespace {

using Deadline = std::chrono::steady_clock::time_point;

// Closes the descriptor on every return path.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

int remaining_ms(Deadline deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  return left.count() > 0 ? static_cast<int>(left.count()) : 0;
}

Error sys_error(const std::string& path, const char* what, int err) {
  return Error(Errc::unavailable, path + ": " + what + ": " + std::strerror(err));
}

// Waits for `events` on fd; false on deadline.
Result<bool> wait_for(int fd, short events, Deadline deadline, const std::string& path) {
  for (;;) {
    pollfd p{fd, events, 0};
    int n = ::poll(&p, 1, remaining_ms(deadline));
    if (n > 0) return true;
    if (n == 0) return false;
    if (errno != EINTR) return sys_error(path, "poll", errno);
  }
}

}  // namespace

Result<std::string> RuntimeApi::call(std::string_view command) const {
  const Deadline deadline = std::chrono::steady_clock::now() + timeout_;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path_.size() >= sizeof(addr.sun_path))
    return Error(Errc::invalid_config, "socket path too long: " + path_);
  std::memcpy(addr.sun_path, path_.data(), path_.size());

  Fd s{::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)};
  if (s.fd < 0) return sys_error(path_, "socket", errno);
  if (::connect(s.fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    // A unix socket connects at once or fails at once, except when the backlog is full.
    if (errno != EAGAIN && errno != EINPROGRESS) return sys_error(path_, "connect", errno);
    BERTH_TRY(bool ready, wait_for(s.fd, POLLOUT, deadline, path_));
    if (!ready) return Error(Errc::timeout, path_ + ": connect timed out");
  }

  std::string out(command);
  out += '\n';
  size_t sent = 0;
  while (sent < out.size()) {
    ssize_t n = ::send(s.fd, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EAGAIN) return sys_error(path_, "send", errno);
    BERTH_TRY(bool ready, wait_for(s.fd, POLLOUT, deadline, path_));
    if (!ready) return Error(Errc::timeout, path_ + ": send timed out");
  }

  std::string reply;
  char buf[16384];
  for (;;) {
    ssize_t n = ::recv(s.fd, buf, sizeof(buf), 0);
    if (n > 0) {
      reply.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n == 0) return reply;  // the proxy closes after the last command's answer
    if (errno == EINTR) continue;
    if (errno != EAGAIN) return sys_error(path_, "recv", errno);
    BERTH_TRY(bool ready, wait_for(s.fd, POLLIN, deadline, path_));
    if (!ready)
      return Error(Errc::timeout, path_ + ": no complete answer to '" + std::string(command) + "'");
  }
}

Result<std::string> RuntimeApi::call_master(std::string_view command) const {
  return call(std::string(command) + "; quit");
}

bool reply_ok(std::string_view reply, std::initializer_list<std::string_view> success) {
  auto b = reply.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return true;
  auto e = reply.find_last_not_of(" \t\r\n");
  std::string_view t = reply.substr(b, e - b + 1);
  for (auto s : success)
    if (t == s) return true;
  return false;
}

}  // namespace berth::lb
