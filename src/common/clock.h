#pragma once
// Time is injected so controllers, the verifier and the scheduler can run on a manual clock in
// tests. Only apps/ constructs a SystemClock.

#include <atomic>
#include <chrono>

namespace berth {

class Clock {
 public:
  virtual ~Clock() = default;
  /// Wall-clock time (used for timestamps shown to users and for signature skew checks).
  virtual std::chrono::system_clock::time_point now() const = 0;
};

class SystemClock final : public Clock {
 public:
  std::chrono::system_clock::time_point now() const override {
    return std::chrono::system_clock::now();
  }
};

class ManualClock final : public Clock {
 public:
  explicit ManualClock(std::chrono::system_clock::time_point t = {})
      : t_(t.time_since_epoch().count()) {}
  std::chrono::system_clock::time_point now() const override {
    return std::chrono::system_clock::time_point(std::chrono::system_clock::duration(t_.load()));
  }
  void set(std::chrono::system_clock::time_point t) { t_ = t.time_since_epoch().count(); }
  void advance(std::chrono::system_clock::duration d) { t_ += d.count(); }

 private:
  std::atomic<std::chrono::system_clock::rep> t_;
};

/// Seconds since the epoch with millisecond precision, as the AWS JSON protocols encode timestamps.
inline double epoch_seconds(std::chrono::system_clock::time_point t) {
  return static_cast<double>(
             std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count()) /
         1000.0;
}

}  // namespace berth
