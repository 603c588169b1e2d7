#include "scheduler/resource_order.h"

#include <algorithm>
#include <cassert>
#include <limits>

namespace berth::scheduler {

size_t ResourceOrder::lower_bound(int64_t key, uint32_t index) const {
  return static_cast<size_t>(std::partition_point(entries_.begin(), entries_.end(),
                                                  [&](const Entry& e) {
                                                    return e.key < key ||
                                                           (e.key == key && e.index < index);
                                                  }) -
                             entries_.begin());
}

size_t ResourceOrder::upper_bound(int64_t key) const {
  return static_cast<size_t>(std::partition_point(entries_.begin(), entries_.end(),
                                                  [&](const Entry& e) { return e.key <= key; }) -
                             entries_.begin());
}

size_t ResourceOrder::next_with_other(size_t p, int64_t need) const {
  const size_t n = entries_.size();
  while (p < n) {
    const size_t block = p / kBlock;
    const size_t end = std::min(n, (block + 1) * kBlock);
    if (block_max_[block] < need) {
      p = end;
      continue;
    }
    for (; p < end; ++p)
      if (entries_[p].other >= need) return p;
  }
  return n;
}

void ResourceOrder::refresh(size_t first, size_t last) {
  block_max_.resize((entries_.size() + kBlock - 1) / kBlock);
  if (entries_.empty()) return;
  last = std::min(last, entries_.size() - 1);
  for (size_t b = first / kBlock; b <= last / kBlock; ++b) {
    int64_t m = std::numeric_limits<int64_t>::min();
    const size_t end = std::min(entries_.size(), (b + 1) * kBlock);
    for (size_t p = b * kBlock; p < end; ++p) m = std::max(m, entries_[p].other);
    block_max_[b] = m;
  }
}

void ResourceOrder::insert(int64_t key, int64_t other, uint32_t index) {
  const size_t p = lower_bound(key, index);
  entries_.insert(entries_.begin() + static_cast<ptrdiff_t>(p), Entry{key, other, index});
  refresh(p, entries_.size() - 1);  // everything after p shifted
}

void ResourceOrder::erase(int64_t key, uint32_t index) {
  const size_t p = lower_bound(key, index);
  assert(p < entries_.size() && entries_[p].index == index);
  entries_.erase(entries_.begin() + static_cast<ptrdiff_t>(p));
  refresh(p, entries_.size());
}

void ResourceOrder::update(int64_t old_key, uint32_t index, int64_t key, int64_t other) {
  const size_t from = lower_bound(old_key, index);
  assert(from < entries_.size() && entries_[from].index == index);
  auto at = [&](size_t p) { return entries_.begin() + static_cast<ptrdiff_t>(p); };
  entries_[from] = {key, other, index};
  if (key < old_key) {
    const size_t to = static_cast<size_t>(
        std::partition_point(
            at(0), at(from),
            [&](const Entry& e) { return e.key < key || (e.key == key && e.index < index); }) -
        entries_.begin());
    std::rotate(at(to), at(from), at(from + 1));
    refresh(to, from);
  } else if (key > old_key) {
    const size_t to = static_cast<size_t>(
        std::partition_point(
            at(from + 1), entries_.end(),
            [&](const Entry& e) { return e.key < key || (e.key == key && e.index < index); }) -
        entries_.begin());
    std::rotate(at(from), at(from + 1), at(to));
    refresh(from, to - 1);
  } else {
    refresh(from, from);
  }
}

}  // namespace berth::scheduler
