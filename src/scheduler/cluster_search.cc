// ClusterIndex::place(): the search for each task's instance.
//
// Every candidate has a key: one value per strategy step (bucket count for spread, remaining
// amount for binpack) and finally its rotated snapshot position; the engine picks the smallest
// key, exactly as place_naive's successive filtering does. The search is organised by class:
//  - Leading spread(attribute) steps are constant within a class, so classes are visited in order
//    of those counts and the visit stops once a class cannot beat the best found.
//  - Within a class, the remaining per-instance steps decide the walk ("shape"): rotated order of
//    members; a binpack set from lower_bound(task size); or, for spread(instanceId), first the
//    members with no task of the group. Any other shape scans the class's members.

#include <algorithm>
#include <array>
#include <map>

#include "scheduler/cluster_index.h"
#include "scheduler/feasibility.h"
#include "scheduler/prng.h"

namespace berth::scheduler {

struct ClusterIndex::Search {
  using Kind = CompiledRequest::StepKind;
  enum class Shape { rotation, binpack, spread, spread_binpack, scan, random };

  struct Key {
    std::array<int64_t, kMaxStrategies + 1> v{};
    size_t len = 0;
    auto operator<=>(const Key& o) const {
      return std::lexicographical_compare_three_way(v.begin(), v.begin() + len, o.v.begin(),
                                                    o.v.begin() + o.len);
    }
    bool operator==(const Key& o) const { return (*this <=> o) == 0; }
  };

  Search(ClusterIndex& index, const CompiledRequest& compiled, uint64_t seed)
      : ix(index),
        cr(compiled),
        req(compiled.request()),
        steps(compiled.steps()),
        group(index.groups_[compiled.request().group]),
        rng(seed),
        n(static_cast<uint32_t>(index.slots_.size())) {
    std::vector<const Expression*> per_class;
    for (const auto& rule : cr.rules())
      if (rule.member_of)
        (rule.member_of->per_instance() ? per_instance : per_class).push_back(&*rule.member_of);
    for (uint32_t c = 0; c < ix.classes_.size(); ++c) {
      const Class& cl = ix.classes_[c];
      if (cl.members.empty() || !cl.rep.active || !cl.rep.agent_connected ||
          !has_required_attributes(cl.rep, req))
        continue;
      if (std::all_of(per_class.begin(), per_class.end(),
                      [&](const Expression* e) { return e->matches(cl.rep); }))
        eligible.push_back(c);
    }

    // spread(attribute:X): a bucket id per class and the group's task count per bucket.
    slot.assign(steps.size(), 0);
    for (size_t s = 0; s < steps.size(); ++s) {
      if (steps[s].kind != Kind::spread_attribute) continue;
      slot[s] = class_bucket.size();
      std::map<std::optional<std::string_view>, uint32_t> ids;
      std::vector<uint32_t> buckets(ix.classes_.size());
      for (uint32_t c = 0; c < ix.classes_.size(); ++c) {
        const auto id = static_cast<uint32_t>(ids.size());
        buckets[c] =
            ids.try_emplace(bucket_of(ix.classes_[c].rep, steps[s].attribute), id).first->second;
      }
      std::vector<int64_t> tasks(ids.size());
      for (const auto& [i, count] : group) tasks[buckets[ix.slots_[i].cls]] += count;
      class_bucket.push_back(std::move(buckets));
      bucket_tasks.push_back(std::move(tasks));
    }

    while (lead < steps.size() && steps[lead].kind == Kind::spread_attribute) ++lead;
    std::vector<Kind> per_instance_steps;
    for (const auto& s : steps)
      if (s.kind != Kind::spread_attribute) per_instance_steps.push_back(s.kind);
    auto is_binpack = [](Kind k) { return k == Kind::binpack_cpu || k == Kind::binpack_memory; };
    const auto& p = per_instance_steps;
    if (!p.empty() && p.back() == Kind::random) {
      shape = Shape::random;
    } else if (p.empty()) {
      shape = Shape::rotation;
    } else if (p.size() == 1 && is_binpack(p[0])) {
      shape = Shape::binpack;
      binpack = p[0];
    } else if (p.size() == 1 && p[0] == Kind::spread_instance) {
      shape = Shape::spread;
    } else if (p.size() == 2 && p[0] == Kind::spread_instance && is_binpack(p[1])) {
      shape = Shape::spread_binpack;
      binpack = p[1];
    } else {
      shape = Shape::scan;
    }
  }

  int32_t count(uint32_t i) const {
    auto it = group.find(i);
    return it == group.end() ? 0 : it->second;
  }

  bool feasible(uint32_t i) const {
    const InstanceView& v = ix.slots_[i].view;
    if (v.cpu_remaining < req.cpu || v.memory_remaining < req.memory) return false;
    for (uint16_t p : req.tcp_ports)
      if (std::binary_search(v.tcp_ports_used.begin(), v.tcp_ports_used.end(), p)) return false;
    for (uint16_t p : req.udp_ports)
      if (std::binary_search(v.udp_ports_used.begin(), v.udp_ports_used.end(), p)) return false;
    if (cr.distinct_instance() && count(i) > 0) return false;
    return std::all_of(per_instance.begin(), per_instance.end(),
                       [&](const Expression* e) { return e->matches(v); });
  }

  int64_t spread_count(size_t step, uint32_t cls) const {
    return bucket_tasks[slot[step]][class_bucket[slot[step]][cls]];
  }

  Key key(uint32_t i, size_t step_count, bool rotation) const {
    Key k;
    const InstanceView& v = ix.slots_[i].view;
    for (size_t s = 0; s < step_count; ++s) {
      switch (steps[s].kind) {
        case Kind::spread_attribute:
          k.v[k.len++] = spread_count(s, ix.slots_[i].cls);
          break;
        case Kind::spread_instance:
          k.v[k.len++] = count(i);
          break;
        case Kind::binpack_cpu:
          k.v[k.len++] = v.cpu_remaining;
          break;
        case Kind::binpack_memory:
          k.v[k.len++] = v.memory_remaining;
          break;
        case Kind::random:
          break;
      }
    }
    if (rotation) k.v[k.len++] = (i + n - start) % n;
    return k;
  }

  std::optional<uint32_t> best() {
    if (shape == Shape::random) return pick_random();
    order.clear();
    for (uint32_t c : eligible) {
      Key prefix;
      for (size_t s = 0; s < lead; ++s) prefix.v[prefix.len++] = spread_count(s, c);
      order.push_back({prefix, c});
    }
    if (lead > 0)
      std::sort(order.begin(), order.end(),
                [](const auto& a, const auto& b) { return a.first < b.first; });
    std::optional<uint32_t> best;
    Key best_key;
    for (const auto& [prefix, c] : order) {
      if (best && lead > 0 &&
          std::lexicographical_compare(best_key.v.begin(), best_key.v.begin() + lead,
                                       prefix.v.begin(), prefix.v.begin() + lead))
        break;  // every later class has a larger leading spread count
      auto i = best_in_class(ix.classes_[c]);
      if (!i) continue;
      Key k = key(*i, steps.size(), true);
      if (!best || k < best_key) {
        best = i;
        best_key = k;
      }
    }
    return best;
  }

  std::optional<uint32_t> best_in_class(const Class& cl) {
    auto any = [](uint32_t) { return true; };
    auto no_group_task = [this](uint32_t i) { return count(i) == 0; };
    const bool cpu = binpack == Kind::binpack_cpu;
    const ResourceOrder& order = cpu ? cl.by_cpu : cl.by_memory;
    const int64_t need = cpu ? req.cpu : req.memory, need_other = cpu ? req.memory : req.cpu;
    switch (shape) {
      case Shape::rotation:
        return rotated_members(cl, any);
      case Shape::binpack:
        return by_levels(order, need, need_other, any);
      case Shape::spread:
        if (auto i = rotated_members(cl, no_group_task)) return i;
        return scan_class(cl);
      case Shape::spread_binpack:
        if (auto i = by_levels(order, need, need_other, no_group_task)) return i;
        return scan_class(cl);
      case Shape::scan:
      case Shape::random:
        break;
    }
    return scan_class(cl);
  }

  // The first member at or after `start`, wrapping, that passes `want` and is feasible.
  template <class Want>
  std::optional<uint32_t> rotated_members(const Class& cl, Want want) const {
    const auto& m = cl.members;
    const auto mid = std::lower_bound(m.begin(), m.end(), start);
    for (auto it = mid; it != m.end(); ++it)
      if (want(*it) && feasible(*it)) return *it;
    for (auto it = m.begin(); it != mid; ++it)
      if (want(*it) && feasible(*it)) return *it;
    return std::nullopt;
  }

  // Walks a resource order upward from `need`, one level of equal remaining amount at a time;
  // within a level the rotated order decides. Blocks whose other resource is below
  // `need_other` are skipped whole (feasible() still checks every candidate).
  template <class Want>
  std::optional<uint32_t> by_levels(const ResourceOrder& order, int64_t need, int64_t need_other,
                                    Want want) const {
    auto ok = [&](size_t p) { return want(order[p].index) && feasible(order[p].index); };
    size_t p = order.next_with_other(order.lower_bound(need, 0), need_other);
    while (p < order.size()) {
      const int64_t level = order[p].key;
      const size_t end = order.upper_bound(level);
      if (end - p == 1) {  // a level of one: the usual case once amounts diverge
        if (ok(p)) return order[p].index;
      } else {
        const size_t mid = std::max(p, order.lower_bound(level, start));
        for (size_t q = order.next_with_other(mid, need_other); q < end;
             q = order.next_with_other(q + 1, need_other))
          if (ok(q)) return order[q].index;
        for (size_t q = p; q < mid; q = order.next_with_other(q + 1, need_other))
          if (ok(q)) return order[q].index;
      }
      p = order.next_with_other(end, need_other);
    }
    return std::nullopt;
  }

  std::optional<uint32_t> scan_class(const Class& cl) const {
    std::optional<uint32_t> best;
    Key best_key;
    for (uint32_t i : cl.members) {
      if (!feasible(i)) continue;
      Key k = key(i, steps.size(), true);
      if (!best || k < best_key) {
        best = i;
        best_key = k;
      }
    }
    return best;
  }

  // random ends the chain: a uniform pick, in snapshot order, among the candidates that tie on
  // the steps before it.
  std::optional<uint32_t> pick_random() {
    const size_t before = steps.size() - 1;
    std::optional<Key> best;
    std::vector<uint32_t> tied;
    for (uint32_t c : eligible) {
      for (uint32_t i : ix.classes_[c].members) {
        if (!feasible(i)) continue;
        Key k = key(i, before, false);
        if (!best || k < *best) {
          best = k;
          tied = {i};
        } else if (k == *best) {
          tied.push_back(i);
        }
      }
    }
    if (tied.empty()) return std::nullopt;
    std::sort(tied.begin(), tied.end());
    return tied[rng.below(tied.size())];
  }

  void commit(uint32_t i) {
    ix.consume(i, req, group);
    for (size_t k = 0; k < class_bucket.size(); ++k)
      ++bucket_tasks[k][class_bucket[k][ix.slots_[i].cls]];
  }

  std::vector<Failure> failures() const {
    std::vector<Failure> out;
    for (uint32_t i = 0; i < n; ++i) {
      const InstanceView& v = ix.slots_[i].view;
      if (!v.active) continue;
      if (auto reason = rejection(v, cr, count(i))) out.push_back({v.arn, std::string(*reason)});
    }
    return out;
  }

  ClusterIndex& ix;
  const CompiledRequest& cr;
  const PlacementRequest& req;
  const std::vector<CompiledRequest::Step>& steps;
  GroupCounts& group;
  Prng rng;
  const uint32_t n;
  uint32_t start = 0;  // this task's rotation origin

  std::vector<const Expression*> per_instance;  // memberOf evaluated per instance
  std::vector<uint32_t> eligible;               // classes passing the class-level checks
  std::vector<size_t> slot;                     // step -> its spread(attribute) tables
  std::vector<std::vector<uint32_t>> class_bucket;
  std::vector<std::vector<int64_t>> bucket_tasks;
  size_t lead = 0;  // leading spread(attribute) steps
  Shape shape = Shape::scan;
  Kind binpack = Kind::binpack_memory;
  std::vector<std::pair<Key, uint32_t>> order;  // reused across tasks
};

Plan ClusterIndex::place(const CompiledRequest& request, uint64_t seed) {
  Search search(*this, request, seed);
  Plan plan;
  for (int task = 0; task < request.request().count; ++task) {
    search.start = search.n == 0 ? 0 : static_cast<uint32_t>(search.rng.below(search.n));
    auto i = search.best();
    if (!i) {
      plan.failures = search.failures();
      break;
    }
    search.commit(*i);
    plan.placements.push_back(*i);
  }
  // Undo the simulated placements: place() only plans; apply() commits.
  for (auto it = plan.placements.rbegin(); it != plan.placements.rend(); ++it)
    release(static_cast<uint32_t>(*it), request.request(), search.group);
  return plan;
}

Plan place(const Snapshot& snapshot, const CompiledRequest& request, uint64_t seed) {
  ClusterIndex index(snapshot);
  return index.place(request, seed);
}

}  // namespace berth::scheduler
