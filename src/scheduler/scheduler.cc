#include "scheduler/scheduler.h"

namespace berth::scheduler {
namespace {

class Category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "scheduler"; }
  std::string message(int code) const override {
    switch (static_cast<Errc>(code)) {
      case Errc::invalid_strategy:
        return "invalid placement strategy";
      case Errc::invalid_constraint:
        return "invalid placement constraint";
      case Errc::invalid_request:
        return "invalid placement request";
      case Errc::invalid_expression:
        return "invalid cluster query expression";
    }
    return "unknown scheduler error";
  }
};

}  // namespace

const std::error_category& category() {
  static const Category instance;
  return instance;
}

}  // namespace berth::scheduler
