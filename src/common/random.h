#pragma once
// Randomness is injected (ids, jitter, later the scheduler's seed) so that tests are repeatable.
// Only apps/ seeds a generator from the OS.

#include <cstdint>
#include <mutex>
#include <random>
#include <string>

namespace berth {

class Random {
 public:
  virtual ~Random() = default;
  virtual uint64_t next() = 0;
};

/// A seeded, thread-safe generator. Not cryptographic: use OpenSSL for secrets.
class SeededRandom final : public Random {
 public:
  explicit SeededRandom(uint64_t seed) : gen_(seed) {}
  uint64_t next() override {
    std::lock_guard lock(mu_);
    return gen_();
  }

 private:
  std::mutex mu_;
  std::mt19937_64 gen_;
};

/// A UUID v4 string (the form ECS uses for container instance and task ids).
std::string make_uuid(Random& rng);

/// `n` random bytes from OpenSSL's CSPRNG, for secrets such as access keys.
std::string secure_random_bytes(size_t n);

}  // namespace berth
