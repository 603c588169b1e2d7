#pragma once
// nextToken/maxResults paging for List actions. A token is the opaque (base64) store key of the
// last item returned, so a page is one prefix scan starting after it, and tokens stay valid while
// items are added or removed.

#include <functional>
#include <optional>
#include <string>

#include "server/ecs/context.h"

namespace berth::server::ecs {

struct Page {
  json::array items;
  std::optional<std::string> next_token;
};

/// Reads maxResults (1..`max`, default `max`) from the request.
Result<size_t> max_results_from(const json::object& in, size_t max = 100);

/// Scans keys under `prefix` after the request's nextToken, turning each into an item with `map`
/// (returning nullopt skips a key), until `max_results` items are collected.
Result<Page> page_scan(
    store::Store& store, const std::string& prefix, const json::object& in, size_t max_results,
    const std::function<std::optional<json::value>(const store::KeyValue&)>& map);

/// Pages an already-built list (used where the order is not the key order, e.g. sort=DESC);
/// the token is the index of the next item.
Result<Page> page_list(json::array all, const json::object& in, size_t max_results);

/// Adds "nextToken" to `out` when there is one.
void put_next_token(json::object& out, const Page& page);

}  // namespace berth::server::ecs
