#include "server/ecs/janitor.h"

#include <boost/json/parse.hpp>

namespace berth::server::ecs {

Result<size_t> Janitor::sweep() {
  double cutoff = ctx_.now() - static_cast<double>(retention_.count());
  size_t removed = 0;
  std::string after;
  constexpr size_t kChunk = 1000;  // bounded reads and transactions
  while (true) {
    auto r = ctx_.store().range({"tasks/", after, kChunk});
    if (!r.ok()) return store_failure(r.error());
    store::Txn txn;
    for (const auto& kv : r->kvs) {
      after = kv.key;
      boost::system::error_code ec;
      json::value v = json::parse(kv.value, ec);
      if (ec || !v.is_object()) continue;
      const auto& t = v.as_object();
      auto* stopped = t.if_contains("stoppedAt");
      if (opt_string(t, "lastStatus") != "STOPPED" || stopped == nullptr || !stopped->is_number())
        continue;
      if (stopped->to_number<double>() >= cutoff) continue;
      // Compare so a task that changed meanwhile is left for the next sweep.
      txn.compares.push_back({kv.key, kv.mod_revision});
      txn.ops.push_back(store::Op::del(kv.key));
    }
    if (!txn.ops.empty()) {
      auto c = ctx_.store().commit(txn);
      if (c.ok())
        removed += txn.ops.size();
      else if (c.error().code != store::Errc::conflict)
        return store_failure(c.error());
    }
    if (!r->more) break;
  }
  return removed;
}

}  // namespace berth::server::ecs
