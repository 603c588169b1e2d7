#pragma once
// The scheduler's only source of randomness: a seeded xoshiro256** generator (seeded through
// splitmix64, as its authors recommend). The seed is an input of place(), so the same inputs always
// give the same plan; nothing here reads the OS, the clock or a global generator.

#include <cstdint>

namespace berth::scheduler {

class Prng {
 public:
  explicit Prng(uint64_t seed) {
    for (auto& word : s_) word = splitmix64(seed);
  }

  uint64_t next() {
    const uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }

  /// Uniform in [0, n) for n > 0. Lemire's multiply-shift: the bias (n / 2^64) is negligible for
  /// cluster-sized n and, unlike a rejection loop, it always consumes exactly one draw, which keeps
  /// the indexed engine and the naive oracle in lockstep.
  uint64_t below(uint64_t n) {
    return static_cast<uint64_t>((static_cast<unsigned __int128>(next()) * n) >> 64);
  }

 private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  static uint64_t splitmix64(uint64_t& x) {
    uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

  uint64_t s_[4];
};

}  // namespace berth::scheduler
