#include "api/http.h"

#include <algorithm>

namespace berth::api {

namespace {

// Header names are ASCII; locale-aware tolower would be slower and wrong for non-ASCII bytes.
char ascii_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + ('a' - 'A')) : c; }

}  // namespace

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return ascii_lower(x) == ascii_lower(y);
         });
}

std::string_view HttpRequest::header(std::string_view name) const {
  for (const auto& [n, v] : headers) {
    if (iequals(n, name)) return v;
  }
  return {};
}

bool HttpRequest::has_header(std::string_view name) const {
  return std::any_of(headers.begin(), headers.end(),
                     [&](const auto& h) { return iequals(h.first, name); });
}

void HttpResponse::set_header(std::string name, std::string value) {
  auto it = std::find_if(headers.begin(), headers.end(),
                         [&](const auto& h) { return iequals(h.first, name); });
  if (it == headers.end()) {
    headers.emplace_back(std::move(name), std::move(value));
    return;
  }
  it->first = std::move(name);
  it->second = std::move(value);
  // A header added by hand earlier may appear more than once; "replace" means one copy remains.
  headers.erase(std::remove_if(std::next(it), headers.end(),
                               [&](const auto& h) { return iequals(h.first, it->first); }),
                headers.end());
}

}  // namespace berth::api
