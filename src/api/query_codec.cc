#include "api/query_codec.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <map>
#include <string_view>

#include "model/errors.h"

namespace berth::api {

namespace {

namespace json = boost::json;
using model::MemberView;
using model::ShapeType;
using model::ShapeView;

// The deepest ELBv2 parameter has 8 parts (Actions.member.1.ForwardConfig.TargetGroups.member.1.
// TargetGroupArn); the cap keeps a hostile key from building a tree deep enough to exhaust the
// stack when it is walked or destroyed.
constexpr std::size_t kMaxKeyParts = 128;
// Error messages echo the value sent; the cut keeps a huge value from being reflected back.
constexpr std::size_t kMaxEchoedValue = 100;
// List indexes are 1-based and small; nine digits cannot overflow and no real list gets near.
constexpr std::size_t kMaxIndexDigits = 9;

// ---- Form -> JSON

// The form as a tree of its dotted key parts: "Matcher.HttpCode=200" is root -> Matcher ->
// HttpCode with value "200". Views point into the FormParams, which outlive the tree.
struct FormNode {
  const std::string* value = nullptr;
  std::map<std::string_view, FormNode, std::less<>> children;
};

Error bad_parameter(std::string message) {
  return Error(model::Errc::invalid_parameter, std::move(message));
}

std::string echo(std::string_view v) {
  std::string out = "'";
  out.append(v.substr(0, kMaxEchoedValue));
  if (v.size() > kMaxEchoedValue) out += "...";
  return out + "'";
}

Result<FormNode> build_tree(const FormParams& form) {
  FormNode root;
  for (const auto& [key, value] : form) {
    FormNode* node = &root;
    std::size_t parts = 0;
    for (std::size_t pos = 0; pos <= key.size();) {
      std::size_t dot = key.find('.', pos);
      if (dot == std::string::npos) dot = key.size();
      if (++parts > kMaxKeyParts)
        return bad_parameter("Parameter name " + echo(key) + " has more than " +
                             std::to_string(kMaxKeyParts) + " parts");
      node = &node->children[std::string_view(key).substr(pos, dot - pos)];
      pos = dot + 1;
    }
    node->value = &value;  // a repeated key: the last one wins
  }
  return root;
}

bool is_empty(const FormNode& node) {
  return node.children.empty() && (node.value == nullptr || node.value->empty());
}

// Index of a list element or map entry: "1", "2", ... without sign or leading zero.
std::optional<std::uint32_t> parse_index(std::string_view s) {
  if (s.empty() || s.size() > kMaxIndexDigits || s[0] == '0') return std::nullopt;
  std::uint32_t n = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (ec != std::errc{} || end != s.data() + s.size()) return std::nullopt;
  return n;
}

class FormReader {
 public:
  Result<json::value> read(const FormNode& node, ShapeView shape, bool flattened) {
    switch (shape.type()) {
      case ShapeType::structure:
        return read_structure(node, shape);
      case ShapeType::list:
        return read_list(node, shape, flattened);
      case ShapeType::map:
        return read_map(node, shape, flattened);
      default:
        return read_scalar(node, shape.type());
    }
  }

  Result<json::value> read_structure(const FormNode& node, ShapeView shape) {
    if (node.children.empty() && node.value != nullptr && !node.value->empty())
      return bad_parameter("Invalid value for parameter " + path_ + ": a structure is sent as " +
                           path_ + ".<Member> parameters, not " + echo(*node.value));
    json::object out;
    for (std::size_t i = 0; i < shape.member_count(); ++i) {
      MemberView m = shape.member(i);
      // botocore names a flattened list after its element when the element has a locationName.
      std::string_view key = m.wire_name;
      if (m.flattened && m.shape.type() == ShapeType::list && !m.shape.list_member_name().empty())
        key = m.shape.list_member_name();
      auto it = node.children.find(key);
      if (it == node.children.end()) continue;
      std::size_t mark = push(key);
      BERTH_TRY(json::value v, read(it->second, m.shape, m.flattened));
      path_.resize(mark);
      out[m.wire_name] = std::move(v);
    }
    return out;
  }

  Result<json::value> read_list(const FormNode& node, ShapeView shape, bool flattened) {
    // botocore sends an empty list as "Names=" (no elements).
    if (is_empty(node)) return json::array();
    const FormNode* items = &node;
    std::size_t mark = path_.size();
    if (!flattened) {
      std::string_view item = shape.list_member_name();
      if (item.empty()) item = "member";
      auto it = node.children.find(item);
      if (it == node.children.end())
        return bad_parameter("Invalid value for parameter " + path_ + ": a list is sent as " +
                             path_ + "." + std::string(item) + ".N parameters");
      items = &it->second;
      push(item);
    }
    BERTH_TRY(auto indexed, indexed_children(*items));
    json::array out;
    out.reserve(indexed.size());
    for (const auto& [index, child] : indexed) {
      std::size_t inner = push(std::to_string(index));
      BERTH_TRY(json::value v, read(*child, shape.list_member(), false));
      path_.resize(inner);
      out.push_back(std::move(v));
    }
    path_.resize(mark);
    return out;
  }

  Result<json::value> read_map(const FormNode& node, ShapeView shape, bool flattened) {
    if (is_empty(node)) return json::object();
    const FormNode* entries = &node;
    std::size_t mark = path_.size();
    if (!flattened) {
      auto it = node.children.find("entry");
      if (it == node.children.end())
        return bad_parameter("Invalid value for parameter " + path_ + ": a map is sent as " +
                             path_ + ".entry.N.key and " + path_ + ".entry.N.value parameters");
      entries = &it->second;
      push("entry");
    }
    std::string_view key_name = shape.map_key_name().empty() ? "key" : shape.map_key_name();
    std::string_view value_name = shape.map_value_name().empty() ? "value" : shape.map_value_name();
    BERTH_TRY(auto indexed, indexed_children(*entries));
    json::object out;
    for (const auto& [index, entry] : indexed) {
      std::size_t inner = push(std::to_string(index));
      auto k = entry->children.find(key_name);
      auto v = entry->children.find(value_name);
      if (k == entry->children.end() || k->second.value == nullptr || v == entry->children.end())
        return bad_parameter("Invalid value for parameter " + path_ + ": a map entry needs " +
                             path_ + "." + std::string(key_name) + " and " + path_ + "." +
                             std::string(value_name));
      push(value_name);
      BERTH_TRY(json::value value, read(v->second, shape.map_value(), false));
      path_.resize(inner);
      out[*k->second.value] = std::move(value);
    }
    path_.resize(mark);
    return out;
  }

  Result<json::value> read_scalar(const FormNode& node, ShapeType type) {
    if (node.value == nullptr)
      return bad_parameter("Invalid value for parameter " + path_ +
                           ": expected a single value, got " + path_ + "." +
                           std::string(node.children.begin()->first) + "...");
    const std::string& s = *node.value;
    switch (type) {
      case ShapeType::integer:
      case ShapeType::long_: {
        std::int64_t n = 0;
        auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
        if (ec == std::errc::result_out_of_range && end == s.data() + s.size())
          return bad_parameter("Invalid value for parameter " + path_ + ": " + echo(s) +
                               " is out of range for a 64-bit integer");
        if (ec != std::errc{} || end != s.data() + s.size())
          return bad_parameter("Invalid value for parameter " + path_ + ": " + echo(s) +
                               " is not an integer");
        return n;  // 32-bit range and min/max are the validator's to check
      }
      case ShapeType::double_:
      case ShapeType::float_: {
        double d = 0;
        auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), d);
        if (ec != std::errc{} || end != s.data() + s.size() || !std::isfinite(d))
          return bad_parameter("Invalid value for parameter " + path_ + ": " + echo(s) +
                               " is not a number");
        return d;
      }
      case ShapeType::boolean: {
        auto lower = [](char c) { return static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c); };
        std::string l(s.size(), '\0');
        std::transform(s.begin(), s.end(), l.begin(), lower);
        if (l == "true") return true;
        if (l == "false") return false;
        return bad_parameter("Invalid value for parameter " + path_ + ": " + echo(s) +
                             " is not a boolean (true or false)");
      }
      case ShapeType::timestamp: {
        // botocore sends ISO 8601 (checked by the validator); epoch seconds are also accepted.
        double d = 0;
        auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), d);
        if (ec == std::errc{} && end == s.data() + s.size() && std::isfinite(d)) return d;
        return json::string(s);
      }
      default:  // string, blob (base64, checked by the validator)
        return json::string(s);
    }
  }

 private:
  // Appends ".part" to the path; returns the length to resize back to.
  std::size_t push(std::string_view part) {
    std::size_t mark = path_.size();
    if (!path_.empty()) path_.push_back('.');
    path_.append(part);
    return mark;
  }

  Result<std::vector<std::pair<std::uint32_t, const FormNode*>>> indexed_children(
      const FormNode& node) {
    std::vector<std::pair<std::uint32_t, const FormNode*>> out;
    out.reserve(node.children.size());
    for (const auto& [key, child] : node.children) {
      std::optional<std::uint32_t> index = parse_index(key);
      if (!index)
        return bad_parameter("Invalid parameter " + path_ + "." + std::string(key) +
                             ": list and map positions are numbered 1, 2, ...");
      out.emplace_back(*index, &child);
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  std::string path_;
};

// ---- JSON -> XML

std::string number_text(const json::value& v) {
  if (v.is_int64()) return std::to_string(v.get_int64());
  if (v.is_uint64()) return std::to_string(v.get_uint64());
  double d = v.get_double();
  if (std::trunc(d) == d && std::fabs(d) < 1e15) return std::to_string(static_cast<long long>(d));
  std::array<char, 32> buf;
  auto [end, ec] = std::to_chars(buf.data(), buf.data() + buf.size(), d);
  return std::string(buf.data(), ec == std::errc{} ? end : buf.data());
}

class XmlEncoder {
 public:
  explicit XmlEncoder(XmlWriter& xml) : xml_(xml) {}

  Status members(ShapeView shape, const json::value& v) {
    if (!v.is_object()) return mismatch(shape, v);
    const json::object& obj = v.get_object();
    for (std::size_t i = 0; i < shape.member_count(); ++i) {
      MemberView m = shape.member(i);
      const json::value* mv = obj.if_contains(m.wire_name);
      if (mv == nullptr || mv->is_null()) continue;  // absent members are omitted
      std::size_t mark = path_.size();
      path_.append(path_.empty() ? "" : ".").append(m.wire_name);
      BERTH_CHECK(member(m, *mv));
      path_.resize(mark);
    }
    return {};
  }

 private:
  Status member(const MemberView& m, const json::value& v) {
    if (m.flattened && m.shape.type() == ShapeType::list) {
      // One element per item, named after the item's locationName if it has one.
      if (!v.is_array()) return mismatch(m.shape, v);
      std::string_view name =
          m.shape.list_member_name().empty() ? m.wire_name : m.shape.list_member_name();
      for (const json::value& item : v.get_array())
        BERTH_CHECK(wrapped(name, m.shape.list_member(), item));
      return {};
    }
    if (m.flattened && m.shape.type() == ShapeType::map) {
      if (!v.is_object()) return mismatch(m.shape, v);
      for (const json::key_value_pair& kv : v.get_object()) {
        xml_.open(m.wire_name);
        BERTH_CHECK(entry(m.shape, kv));
        xml_.close();
      }
      return {};
    }
    return wrapped(m.wire_name, m.shape, v);
  }

  Status wrapped(std::string_view name, ShapeView shape, const json::value& v) {
    xml_.open(name);
    BERTH_CHECK(contents(shape, v));
    xml_.close();
    return {};
  }

  Status entry(ShapeView map, const json::key_value_pair& kv) {
    xml_.element(map.map_key_name().empty() ? "key" : map.map_key_name(), kv.key());
    return wrapped(map.map_value_name().empty() ? "value" : map.map_value_name(), map.map_value(),
                   kv.value());
  }

  Status contents(ShapeView shape, const json::value& v) {
    switch (shape.type()) {
      case ShapeType::structure:
        return members(shape, v);
      case ShapeType::list: {
        if (!v.is_array()) return mismatch(shape, v);
        std::string_view item =
            shape.list_member_name().empty() ? "member" : shape.list_member_name();
        for (const json::value& e : v.get_array())
          BERTH_CHECK(wrapped(item, shape.list_member(), e));
        return {};
      }
      case ShapeType::map:
        if (!v.is_object()) return mismatch(shape, v);
        for (const json::key_value_pair& kv : v.get_object()) {
          xml_.open("entry");
          BERTH_CHECK(entry(shape, kv));
          xml_.close();
        }
        return {};
      case ShapeType::timestamp:
        if (v.is_number()) {
          std::string text = iso8601_millis(v.to_number<double>());
          if (text.empty()) return mismatch(shape, v);
          xml_.text(text);
          return {};
        }
        return scalar(shape, v);
      default:
        return scalar(shape, v);
    }
  }

  // Strings pass through (a timestamp already in ISO 8601, a number kept as text); numbers and
  // booleans are written as their JSON text, which is also the XML protocols' form.
  Status scalar(ShapeView shape, const json::value& v) {
    if (v.is_string()) {
      xml_.text(v.get_string());
    } else if (v.is_bool()) {
      xml_.text(v.get_bool() ? "true" : "false");
    } else if (v.is_number()) {
      xml_.text(number_text(v));
    } else {
      return mismatch(shape, v);
    }
    return {};
  }

  Error mismatch(ShapeView shape, const json::value& v) {
    static constexpr std::array<const char*, 7> kKinds = {"null",   "boolean", "integer", "integer",
                                                          "number", "string",  "array"};
    std::size_t k = static_cast<std::size_t>(v.kind());
    std::string kind = k < kKinds.size() ? kKinds[k] : "object";
    return Error(model::Errc::server, "reply member " + (path_.empty() ? "(root)" : path_) +
                                          " is a JSON " + kind + ", which does not fit shape " +
                                          shape.name());
  }

  XmlWriter& xml_;
  std::string path_;
};

}  // namespace

Result<json::object> read_query_form(const FormParams& form, ShapeView input) {
  if (!input) return json::object();
  BERTH_TRY(FormNode root, build_tree(form));
  FormReader reader;
  BERTH_TRY(json::value v, reader.read_structure(root, input));
  return std::move(v.as_object());
}

Status write_query_xml(XmlWriter& xml, ShapeView shape, const json::value& value) {
  if (value.is_null() || !shape) return {};
  return XmlEncoder(xml).members(shape, value);
}

std::string iso8601_millis(double epoch_seconds) {
  namespace chrono = std::chrono;
  // Years 0000-9999: what the four-digit form can say.
  constexpr double kMin = -62167219200.0, kMax = 253402300800.0;
  if (!std::isfinite(epoch_seconds) || epoch_seconds < kMin || epoch_seconds >= kMax) return {};
  const chrono::sys_time<chrono::milliseconds> t{
      chrono::milliseconds(std::llround(epoch_seconds * 1000.0))};
  const auto days = chrono::floor<chrono::days>(t);
  const chrono::year_month_day ymd(days);
  const chrono::hh_mm_ss hms(t - days);
  char buf[40];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ",
                static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
                static_cast<unsigned>(ymd.day()), static_cast<int>(hms.hours().count()),
                static_cast<int>(hms.minutes().count()), static_cast<int>(hms.seconds().count()),
                static_cast<int>(hms.subseconds().count()));
  return buf;
}

}  // namespace berth::api
