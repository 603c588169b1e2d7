#include "store/store.h"

namespace berth::store {
namespace {

class StoreCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "berth.store"; }
  std::string message(int c) const override {
    switch (static_cast<Errc>(c)) {
      case Errc::conflict:
        return "transaction compare failed; re-read and retry";
      case Errc::io:
        return "storage failed; the transaction was not applied";
      case Errc::corrupt:
        return "storage holds data this version cannot read";
    }
    return "unknown store error";
  }
};

}  // namespace

const std::error_category& category() {
  static const StoreCategory kCategory;
  return kCategory;
}

}  // namespace berth::store
