#pragma once
// ResourceOrder: the members of one class sorted by one resource (remaining memory, say), for
// binpack's "least remaining that still fits". Kept in a sorted vector cut into blocks of
// kBlock entries, each block knowing the largest amount of the *other* resource among its
// entries. Without that, instances whose memory is left but whose CPU is exhausted sit low in the
// memory order and every search walks past them; with it, a search skips such blocks whole
// (measured: 2.5-5x on bench/scheduler once the cluster fills up).
//
// Updates move one entry by rotating the range between its old and new position, which is short
// because a placement changes an amount by one task's size.

#include <cstddef>
#include <cstdint>
#include <vector>

namespace berth::scheduler {

class ResourceOrder {
 public:
  struct Entry {
    int64_t key;    // the ordering resource
    int64_t other;  // the other resource, summarised per block
    uint32_t index;
  };

  void insert(int64_t key, int64_t other, uint32_t index);
  void erase(int64_t key, uint32_t index);
  /// Changes an entry's amounts (the entry must exist with old_key).
  void update(int64_t old_key, uint32_t index, int64_t key, int64_t other);

  size_t size() const { return entries_.size(); }
  const Entry& operator[](size_t position) const { return entries_[position]; }
  /// First position whose (key, index) is not less than the given pair.
  size_t lower_bound(int64_t key, uint32_t index) const;
  /// First position whose key is greater than `key`.
  size_t upper_bound(int64_t key) const;
  /// First position at or after `from` whose `other` is at least `need`, or size().
  size_t next_with_other(size_t from, int64_t need) const;

 private:
  static constexpr size_t kBlock = 32;      // a few cache lines: cheap to rescan, few to skip
  void refresh(size_t first, size_t last);  // block maxima for positions [first, last]

  std::vector<Entry> entries_;
  std::vector<int64_t> block_max_;
};

}  // namespace berth::scheduler
