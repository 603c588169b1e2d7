#include "agent/checkpoint.h"

#include <fcntl.h>
#include <unistd.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace berth::agent {

namespace {
Error io_error(const std::string& what) {
  return Error(std::error_code(errno, std::generic_category()), what + ": " + std::strerror(errno));
}
}  // namespace

Result<boost::json::object> Checkpoint::load() const {
  std::ifstream in(path_);
  if (!in) return boost::json::object{};
  std::stringstream text;
  text << in.rdbuf();
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(text.str(), ec);
  if (ec || !v.is_object()) {
    return Error(std::make_error_code(std::errc::illegal_byte_sequence),
                 "checkpoint " + path_ + " is not a JSON object");
  }
  return std::move(v.as_object());
}

Status Checkpoint::save(const boost::json::object& state) const {
  std::string tmp = path_ + ".tmp";
  std::string text = boost::json::serialize(state);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return io_error("open " + tmp);
  size_t off = 0;
  while (off < text.size()) {
    ssize_t n = ::write(fd, text.data() + off, text.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      auto e = io_error("write " + tmp);
      ::close(fd);
      return e;
    }
    off += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    auto e = io_error("fsync " + tmp);
    ::close(fd);
    return e;
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path_.c_str()) != 0) return io_error("rename " + tmp);
  // The rename itself must reach the disk too.
  std::string dir = std::filesystem::path(path_).parent_path().string();
  int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return {};
}

}  // namespace berth::agent
