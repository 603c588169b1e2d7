// Behaviour every Store implementation must share, run against each of them.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

#include "store/store.h"
#include "store/tests/temp_dir.h"

namespace berth::store {
namespace {

using namespace std::chrono_literals;

struct Impl {
  const char* name;
  std::function<std::unique_ptr<Store>(const testing::TempDir&)> open;
};

const Impl kImpls[] = {
    {"memory", [](const testing::TempDir&) { return open_memory_store(); }},
    {"sqlite",
     [](const testing::TempDir& dir) -> std::unique_ptr<Store> {
       auto r = open_sqlite_store(dir.file("berth.db"));
       if (!r.ok()) {
         ADD_FAILURE() << r.error().message;
         return nullptr;
       }
       return std::move(r).value();
     }},
};

class StoreConformance : public ::testing::TestWithParam<Impl> {
 protected:
  void SetUp() override {
    ASSERT_TRUE(dir_.ok());
    store_ = GetParam().open(dir_);
    ASSERT_NE(store_, nullptr);
  }

  int64_t put(const std::string& k, const std::string& v) {
    auto r = store_->commit({{}, {Op::put(k, v)}});
    EXPECT_TRUE(r.ok()) << r.error().message;
    return r.ok() ? *r : -1;
  }
  std::vector<std::string> keys(const RangeResult& r) {
    std::vector<std::string> out;
    for (const auto& kv : r.kvs) out.push_back(kv.key);
    return out;
  }

  testing::TempDir dir_;
  std::unique_ptr<Store> store_;
};

// Records watch callbacks and lets the test wait for a revision to arrive.
struct Collector {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::pair<std::vector<Event>, int64_t>> calls;

  std::function<void(const std::vector<Event>&, int64_t)> fn() {
    return [this](const std::vector<Event>& evs, int64_t rev) {
      std::lock_guard lock(mu);
      calls.emplace_back(evs, rev);
      cv.notify_all();
    };
  }
  bool wait_for(int64_t rev) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, 10s, [&] { return !calls.empty() && calls.back().second >= rev; });
  }
};

TEST_P(StoreConformance, GetPutDelete) {
  EXPECT_EQ(store_->revision(), 0);
  auto missing = store_->get("a");
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());

  EXPECT_EQ(put("a", "1"), 1);
  auto got = store_->get("a");
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((*got)->value, "1");
  EXPECT_EQ((*got)->create_revision, 1);
  EXPECT_EQ((*got)->mod_revision, 1);

  auto del = store_->commit({{}, {Op::del("a")}});
  ASSERT_TRUE(del.ok());
  EXPECT_EQ(*del, 2);
  EXPECT_FALSE(store_->get("a")->has_value());
  EXPECT_EQ(store_->revision(), 2);
}

TEST_P(StoreConformance, CreateRevisionSurvivesUpdatesAndResetsOnRecreate) {
  put("k", "v1");
  put("other", "x");
  put("k", "v2");
  auto kv = **store_->get("k");
  EXPECT_EQ(kv.value, "v2");
  EXPECT_EQ(kv.create_revision, 1);
  EXPECT_EQ(kv.mod_revision, 3);

  ASSERT_TRUE(store_->commit({{}, {Op::del("k")}}).ok());
  put("k", "v3");
  kv = **store_->get("k");
  EXPECT_EQ(kv.create_revision, 5);
  EXPECT_EQ(kv.mod_revision, 5);
}

TEST_P(StoreConformance, TxnWithoutChangesKeepsRevision) {
  put("a", "1");
  auto empty = store_->commit({});
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(*empty, 1);
  // Deleting a missing key is not an error and changes nothing.
  auto del = store_->commit({{}, {Op::del("nope")}});
  ASSERT_TRUE(del.ok());
  EXPECT_EQ(*del, 1);
  EXPECT_EQ(store_->revision(), 1);
  // Compares are still checked when there are no ops.
  auto bad = store_->commit({{{"a", 7}}, {}});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, Errc::conflict);
}

TEST_P(StoreConformance, TxnAppliesAllOpsAtOneRevision) {
  put("a", "old");
  auto r = store_->commit({{}, {Op::put("a", "1"), Op::put("b", "2"), Op::del("c")}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 2);
  EXPECT_EQ((*store_->get("a"))->mod_revision, 2);
  EXPECT_EQ((*store_->get("b"))->mod_revision, 2);
  EXPECT_EQ((*store_->get("b"))->create_revision, 2);
  // Ops apply in order: the last op on a key wins.
  r = store_->commit({{}, {Op::put("x", "1"), Op::del("x"), Op::put("y", "1"), Op::put("y", "2")}});
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(store_->get("x")->has_value());
  EXPECT_EQ((*store_->get("y"))->value, "2");
}

TEST_P(StoreConformance, FailedCompareAppliesNothing) {
  put("a", "1");  // rev 1
  put("b", "1");  // rev 2
  // One compare holds, one does not: nothing is applied.
  auto r =
      store_->commit({{{"a", 1}, {"b", 1}}, {Op::put("a", "2"), Op::del("b"), Op::put("c", "3")}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::conflict);
  EXPECT_EQ(r.error().code, make_error_code(Errc::conflict));
  EXPECT_FALSE(r.error().message.empty());
  EXPECT_EQ(store_->revision(), 2);
  EXPECT_EQ((*store_->get("a"))->value, "1");
  EXPECT_TRUE(store_->get("b")->has_value());
  EXPECT_FALSE(store_->get("c")->has_value());

  r = store_->commit({{{"a", 1}, {"b", 2}}, {Op::put("a", "2")}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 3);
}

TEST_P(StoreConformance, CompareZeroMeansKeyMustNotExist) {
  auto create = [&] { return store_->commit({{{"lock", 0}}, {Op::put("lock", "me")}}); };
  ASSERT_TRUE(create().ok());
  auto again = create();
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, Errc::conflict);
}

TEST_P(StoreConformance, RangeByPrefixStartAfterAndLimit) {
  for (const char* k : {"a", "svc/b", "svc/a", "svc/c", "svc0", "svd", "svc/d"}) put(k, "v");
  auto all = store_->range({"svc/", "", 0});
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(keys(*all), (std::vector<std::string>{"svc/a", "svc/b", "svc/c", "svc/d"}));
  EXPECT_FALSE(all->more);
  EXPECT_EQ(all->revision, 7);

  auto page1 = store_->range({"svc/", "", 2});
  EXPECT_EQ(keys(*page1), (std::vector<std::string>{"svc/a", "svc/b"}));
  EXPECT_TRUE(page1->more);
  auto page2 = store_->range({"svc/", page1->kvs.back().key, 2});
  EXPECT_EQ(keys(*page2), (std::vector<std::string>{"svc/c", "svc/d"}));
  EXPECT_FALSE(page2->more);  // the next key, "svc0", is outside the prefix

  // start_after before the prefix, or between keys, behaves as a lower bound.
  EXPECT_EQ(keys(*store_->range({"svc/", "a", 1})), (std::vector<std::string>{"svc/a"}));
  EXPECT_EQ(keys(*store_->range({"svc/", "svc/bb", 0})),
            (std::vector<std::string>{"svc/c", "svc/d"}));
  EXPECT_TRUE(store_->range({"svc/", "svc/d", 0})->kvs.empty());
  EXPECT_EQ(store_->range({"", "", 0})->kvs.size(), 7u);
  EXPECT_TRUE(store_->range({"zzz", "", 0})->kvs.empty());
}

TEST_P(StoreConformance, BinaryKeysAndValuesOrderByBytes) {
  const std::string k0("k\0a", 3), k1("k\x7f", 2), k2("k\xff", 2), v("\0\xff\x01", 3);
  put(k2, v);
  put(k0, "");
  put(k1, v);
  auto r = store_->range({"k", "", 0});
  EXPECT_EQ(keys(*r), (std::vector<std::string>{k0, k1, k2}));
  EXPECT_EQ((*store_->get(k2))->value, v);
  EXPECT_EQ((*store_->get(k0))->value, "");
}

TEST_P(StoreConformance, WatchDeliversPrefixFilteredEventsInOrder) {
  Collector c;
  auto sub = store_->watch("svc/", c.fn());
  put("svc/a", "1");   // 1
  put("task/x", "1");  // 2: not delivered
  ASSERT_TRUE(
      store_->commit({{}, {Op::put("svc/b", "2"), Op::put("task/y", "2"), Op::del("svc/a")}})
          .ok());                                                    // 3
  ASSERT_TRUE(store_->commit({{}, {Op::del("svc/missing")}}).ok());  // no change, no event
  put("svc/a", "3");                                                 // 4
  ASSERT_TRUE(c.wait_for(4));

  std::lock_guard lock(c.mu);
  ASSERT_EQ(c.calls.size(), 3u);
  EXPECT_EQ(c.calls[0].second, 1);
  ASSERT_EQ(c.calls[0].first.size(), 1u);
  EXPECT_EQ(c.calls[0].first[0].kv.value, "1");
  EXPECT_FALSE(c.calls[0].first[0].deleted);

  EXPECT_EQ(c.calls[1].second, 3);
  ASSERT_EQ(c.calls[1].first.size(), 2u);  // task/y filtered out; one event per key, key order
  EXPECT_EQ(c.calls[1].first[0].kv.key, "svc/a");
  EXPECT_TRUE(c.calls[1].first[0].deleted);
  EXPECT_EQ(c.calls[1].first[0].kv.mod_revision, 3);
  EXPECT_EQ(c.calls[1].first[1].kv.key, "svc/b");
  EXPECT_EQ(c.calls[1].first[1].kv.create_revision, 3);

  EXPECT_EQ(c.calls[2].second, 4);
  EXPECT_EQ(c.calls[2].first[0].kv.create_revision, 4);
}

TEST_P(StoreConformance, WatchSeesOnlyCommitsAfterItStarts) {
  put("a", "1");
  Collector c;
  auto sub = store_->watch("", c.fn());
  put("a", "2");
  ASSERT_TRUE(c.wait_for(2));
  std::lock_guard lock(c.mu);
  ASSERT_EQ(c.calls.size(), 1u);
  EXPECT_EQ(c.calls[0].second, 2);
}

TEST_P(StoreConformance, WatchOrderingHoldsUnderConcurrentCommitters) {
  Collector c;
  auto sub = store_->watch("", c.fn());
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i)
        put(std::string("t").append(std::to_string(t)).append("/").append(std::to_string(i)), "v");
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_TRUE(c.wait_for(100));
  std::lock_guard lock(c.mu);
  ASSERT_EQ(c.calls.size(), 100u);
  for (size_t i = 0; i < c.calls.size(); ++i) EXPECT_EQ(c.calls[i].second, int64_t(i + 1));
}

TEST_P(StoreConformance, CallbacksMayReadAndCommit) {
  Collector c;
  std::atomic<int> seen_value{0};
  auto reader = store_->watch("in/", [&](const std::vector<Event>& evs, int64_t rev) {
    auto got = store_->get(evs[0].kv.key);
    auto r = store_->range({"in/", "", 0});
    if (got.ok() && got->has_value() && r.ok() && r->revision >= rev) seen_value = 1;
    // Reacting to a change with a commit is the controller pattern; it must not deadlock.
    (void)store_->commit({{}, {Op::put("out/" + evs[0].kv.key.substr(3), "derived")}});
  });
  auto out = store_->watch("out/", c.fn());
  put("in/x", "1");
  ASSERT_TRUE(c.wait_for(2));
  EXPECT_EQ(seen_value, 1);
  EXPECT_EQ((*store_->get("out/x"))->value, "derived");
}

TEST_P(StoreConformance, DestroyedSubscriptionGetsNoMoreCallbacks) {
  std::atomic<int> calls{0};
  auto sub = store_->watch("", [&](const std::vector<Event>&, int64_t) { ++calls; });
  // Watchers are called in subscription order, so once `other` has a revision, `sub` has it too.
  Collector other;
  auto keep = store_->watch("", other.fn());
  put("a", "1");
  ASSERT_TRUE(other.wait_for(1));
  sub.reset();  // waits for any in-flight callback, so `calls` is final from here
  int after = calls;
  EXPECT_EQ(after, 1);
  put("a", "2");
  ASSERT_TRUE(other.wait_for(2));
  EXPECT_EQ(calls, after);
}

TEST_P(StoreConformance, UnsubscribeRacesWithCommitsSafely) {
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (int i = 0; !stop; ++i) put("k", std::to_string(i));
  });
  for (int i = 0; i < 50; ++i) {
    auto state = std::make_unique<std::atomic<int>>(0);
    auto sub = store_->watch("", [s = state.get()](const std::vector<Event>&, int64_t) { ++*s; });
    std::this_thread::sleep_for(1ms);
    sub.reset();
    state.reset();  // a callback after reset() would touch freed memory (caught by ASan)
  }
  // A callback may also end its own subscription.
  std::unique_ptr<Subscription> self;
  std::atomic<int> self_calls{0};
  std::mutex mu;
  {
    std::lock_guard lock(mu);
    self = store_->watch("", [&](const std::vector<Event>&, int64_t) {
      ++self_calls;
      std::lock_guard l(mu);
      self.reset();
    });
  }
  std::this_thread::sleep_for(50ms);
  stop = true;
  writer.join();
  EXPECT_EQ(self_calls, 1);
}

TEST_P(StoreConformance, ConcurrentReadModifyWriteIncrementsAreExact) {
  constexpr int kThreads = 4, kPerThread = 100;
  std::atomic<int> conflicts{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kPerThread;) {
        auto cur = store_->get("counter");
        ASSERT_TRUE(cur.ok());
        int64_t n = cur->has_value() ? std::stoll((*cur)->value) : 0;
        int64_t rev = cur->has_value() ? (*cur)->mod_revision : 0;
        auto r = store_->commit({{{"counter", rev}}, {Op::put("counter", std::to_string(n + 1))}});
        if (r.ok()) {
          ++i;
        } else {
          ASSERT_EQ(r.error().code, Errc::conflict) << r.error().message;
          ++conflicts;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ((*store_->get("counter"))->value, std::to_string(kThreads * kPerThread));
  EXPECT_EQ(store_->revision(), kThreads * kPerThread);
}

INSTANTIATE_TEST_SUITE_P(All, StoreConformance, ::testing::ValuesIn(kImpls),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace berth::store
