#include "lb/errc.h"

#include <string>

namespace berth::lb {
namespace {

class Category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "lb"; }
  std::string message(int c) const override {
    switch (static_cast<Errc>(c)) {
      case Errc::invalid_config:
        return "invalid load balancer configuration";
      case Errc::unavailable:
        return "proxy unavailable";
      case Errc::timeout:
        return "timeout";
      case Errc::rejected:
        return "proxy rejected the command";
      case Errc::start_failed:
        return "proxy failed to start";
      case Errc::reload_failed:
        return "proxy reload failed";
      case Errc::io:
        return "run directory I/O error";
    }
    return "unknown lb error";
  }
};

}  // namespace

const std::error_category& category() {
  static const Category c;
  return c;
}

bool retriable(const Error& e) {
  return e.code.category() == category() &&
         static_cast<Errc>(e.code.value()) != Errc::invalid_config;
}

}  // namespace berth::lb
