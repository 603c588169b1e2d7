#pragma once
// Result<T>: the value of an operation that can fail in a way the caller is expected to handle
// (bad input, conflicts, I/O). Each module declares its own `Errc` enum and registers it as a
// std::error_code category; the API layer maps codes to AWS exception names in one table.

#include <cassert>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>

namespace berth {

struct Error {
  std::error_code code;
  std::string message;

  Error() = default;
  Error(std::error_code c, std::string m) : code(c), message(std::move(m)) {}
  template <class E>
  requires std::is_error_code_enum_v<E> Error(E e, std::string m)
      : code(make_error_code(e)), message(std::move(m)) {}
};

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T v) : v_(std::in_place_index<0>, std::move(v)) {}      // NOLINT: implicit by design
  Result(Error e) : v_(std::in_place_index<1>, std::move(e)) {}  // NOLINT
  template <class U>
  requires(!std::is_same_v<std::decay_t<U>, T> && !std::is_same_v<std::decay_t<U>, Error> &&
           !std::is_same_v<std::decay_t<U>, Result> && std::is_constructible_v<T, U&&>)
      Result(U&& u)
      : v_(std::in_place_index<0>, std::forward<U>(u)) {}  // NOLINT
  /// Converts a Result of a compatible value type (e.g. Result<json::value> -> Result<Reply>).
  template <class U>
  requires(!std::is_same_v<U, T> && std::is_constructible_v<T, U&&>)
      Result(Result<U>&& other)  // NOLINT
      : v_(other.ok() ? std::variant<T, Error>(std::in_place_index<0>, std::move(other).value())
                      : std::variant<T, Error>(std::in_place_index<1>, std::move(other).error())) {}

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & {
    assert(ok());
    return std::get<0>(v_);
  }
  const T& value() const& {
    assert(ok());
    return std::get<0>(v_);
  }
  T&& value() && {
    assert(ok());
    return std::get<0>(std::move(v_));
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const& {
    assert(!ok());
    return std::get<1>(v_);
  }
  Error&& error() && {
    assert(!ok());
    return std::get<1>(std::move(v_));
  }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error e) : err_(std::move(e)), ok_(false) {}  // NOLINT

  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const& {
    assert(!ok_);
    return err_;
  }
  Error&& error() && { return std::move(err_); }

 private:
  Error err_;
  bool ok_ = true;
};

using Status = Result<void>;

}  // namespace berth

// BERTH_TRY(var, expr): assigns the value of a Result or returns its error from the caller.
#define BERTH_CONCAT_INNER(a, b) a##b
#define BERTH_CONCAT(a, b) BERTH_CONCAT_INNER(a, b)
#define BERTH_TRY(decl, expr)                                   \
  auto BERTH_CONCAT(berth_r_, __LINE__) = (expr);               \
  if (!BERTH_CONCAT(berth_r_, __LINE__).ok())                   \
    return std::move(BERTH_CONCAT(berth_r_, __LINE__)).error(); \
  decl = std::move(BERTH_CONCAT(berth_r_, __LINE__)).value()
#define BERTH_CHECK(expr)                                   \
  do {                                                      \
    auto berth_s_ = (expr);                                 \
    if (!berth_s_.ok()) return std::move(berth_s_).error(); \
  } while (0)
