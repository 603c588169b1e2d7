#include "server/ecs/paging.h"

#include "common/base64.h"

namespace berth::server::ecs {

namespace {
Error bad_token() { return invalid_parameter("Invalid nextToken."); }
}  // namespace

Result<size_t> max_results_from(const json::object& in, size_t max) {
  auto m = opt_int(in, "maxResults");
  if (!m) return max;
  if (*m < 1 || static_cast<size_t>(*m) > max) {
    return invalid_parameter("maxResults must be between 1 and " + std::to_string(max) + ".");
  }
  return static_cast<size_t>(*m);
}

Result<Page> page_scan(
    store::Store& store, const std::string& prefix, const json::object& in, size_t max_results,
    const std::function<std::optional<json::value>(const store::KeyValue&)>& map) {
  std::string after;
  if (auto token = opt_string(in, "nextToken"); token && !token->empty()) {
    auto decoded = base64_decode(*token);
    if (!decoded || !decoded->starts_with("k:" + prefix)) return bad_token();
    after = decoded->substr(2);
  }
  Page page;
  // Scan in chunks: filters may skip many keys, and one huge read would hold the read lock long.
  constexpr size_t kChunk = 512;
  std::string last_key;
  while (true) {
    store::RangeRequest req{prefix, after, kChunk};
    auto r = store.range(req);
    if (!r.ok()) return store_failure(r.error());
    for (const auto& kv : r->kvs) {
      after = kv.key;
      auto item = map(kv);
      if (!item) continue;
      if (page.items.size() == max_results) {
        // One more item exists past the page: hand out a token for the last returned key.
        page.next_token = base64_encode("k:" + last_key);
        return page;
      }
      page.items.push_back(std::move(*item));
      last_key = kv.key;
    }
    if (!r->more) break;
  }
  return page;
}

Result<Page> page_list(json::array all, const json::object& in, size_t max_results) {
  size_t start = 0;
  if (auto token = opt_string(in, "nextToken"); token && !token->empty()) {
    auto decoded = base64_decode(*token);
    if (!decoded || !decoded->starts_with("i:")) return bad_token();
    try {
      start = std::stoul(decoded->substr(2));
    } catch (...) {
      return bad_token();
    }
    if (start > all.size()) return bad_token();
  }
  Page page;
  for (size_t i = start; i < all.size() && page.items.size() < max_results; ++i) {
    page.items.push_back(std::move(all[i]));
  }
  if (start + page.items.size() < all.size()) {
    page.next_token = base64_encode("i:" + std::to_string(start + page.items.size()));
  }
  return page;
}

void put_next_token(json::object& out, const Page& page) {
  if (page.next_token) out["nextToken"] = *page.next_token;
}

}  // namespace berth::server::ecs
