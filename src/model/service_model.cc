#include "model/service_model.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <unordered_map>

#include <boost/json.hpp>

#include "model/shape_table.h"

namespace berth::model {

extern const std::string_view kEcsModelJson;

namespace {

namespace json = boost::json;
using detail::kNoShape;
using detail::Member;
using detail::Shape;
using detail::ShapeKind;

Error model_error(std::string message) {
  return Error{Errc::server, "invalid service model: " + std::move(message)};
}

std::string string_field(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v != nullptr && v->is_string() ? std::string(v->get_string()) : std::string();
}

std::optional<double> number_field(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr || !v->is_number()) return std::nullopt;
  return v->to_number<double>();
}

std::optional<ShapeKind> kind_of(std::string_view type) {
  static const std::unordered_map<std::string_view, ShapeKind> kinds = {
      {"structure", ShapeKind::structure},
      {"list", ShapeKind::list},
      {"map", ShapeKind::map},
      {"string", ShapeKind::string},
      {"integer", ShapeKind::integer},
      {"long", ShapeKind::long_},
      {"boolean", ShapeKind::boolean},
      {"double", ShapeKind::double_},
      {"float", ShapeKind::float_},
      {"timestamp", ShapeKind::timestamp},
      {"blob", ShapeKind::blob},
  };
  auto it = kinds.find(type);
  return it == kinds.end() ? std::nullopt : std::optional(it->second);
}

using ShapeIndex = std::unordered_map<std::string, std::uint32_t>;

// Resolves {"shape": "Name"} to an index.
Result<std::uint32_t> reference(const ShapeIndex& index, const json::value* ref,
                                std::string_view context) {
  const json::object* o = ref != nullptr ? ref->if_object() : nullptr;
  std::string name = o != nullptr ? string_field(*o, "shape") : std::string();
  auto it = index.find(name);
  if (it == index.end())
    return model_error(std::string(context) + " refers to unknown shape \"" + name + "\"");
  return it->second;
}

Status compile_structure(const ShapeIndex& index, const json::object& def, Shape& shape) {
  std::vector<std::pair<std::string, Member>> members;  // (model name, member)
  if (const json::object* ms = def.contains("members") ? def.at("members").if_object() : nullptr) {
    for (const json::key_value_pair& kv : *ms) {
      std::string context = shape.name + "." + std::string(kv.key());
      BERTH_TRY(std::uint32_t target, reference(index, &kv.value(), context));
      std::string wire = string_field(kv.value().get_object(), "locationName");
      members.emplace_back(std::string(kv.key()),
                           Member{wire.empty() ? std::string(kv.key()) : wire, target, false});
    }
  }
  std::sort(members.begin(), members.end(),
            [](const auto& a, const auto& b) { return a.second.wire_name < b.second.wire_name; });
  if (const json::array* req = def.contains("required") ? def.at("required").if_array() : nullptr) {
    for (const json::value& r : *req) {
      std::string_view name = r.is_string() ? std::string_view(r.get_string()) : "";
      auto it = std::find_if(members.begin(), members.end(),
                             [&](const auto& m) { return m.first == name; });
      if (it == members.end())
        return model_error(shape.name + " requires undeclared member \"" + std::string(name) +
                           "\"");
      if (it->second.required) continue;
      it->second.required = true;
      shape.required.push_back(static_cast<std::uint32_t>(it - members.begin()));
    }
  }
  shape.required_count = static_cast<std::uint32_t>(shape.required.size());
  for (auto& [name, member] : members) shape.members.push_back(std::move(member));
  return {};
}

Status compile_shape(const ShapeIndex& index, const json::object& def, Shape& shape) {
  auto kind = kind_of(string_field(def, "type"));
  if (!kind) return model_error(shape.name + " has unsupported type " + string_field(def, "type"));
  shape.kind = *kind;
  shape.min = number_field(def, "min");
  shape.max = number_field(def, "max");
  switch (shape.kind) {
    case ShapeKind::structure:
      return compile_structure(index, def, shape);
    case ShapeKind::list: {
      BERTH_TRY(shape.element, reference(index, def.if_contains("member"), shape.name + ".member"));
      return {};
    }
    case ShapeKind::map: {
      BERTH_TRY(shape.key, reference(index, def.if_contains("key"), shape.name + ".key"));
      BERTH_TRY(shape.element, reference(index, def.if_contains("value"), shape.name + ".value"));
      return {};
    }
    case ShapeKind::string:
      if (const json::value* e = def.if_contains("enum"); e != nullptr && e->is_array()) {
        for (const json::value& v : e->get_array()) {
          if (!v.is_string()) return model_error(shape.name + " has a non-string enum value");
          shape.enum_sorted.emplace_back(v.get_string());
          shape.enum_text += (shape.enum_text.empty() ? "" : ", ") + shape.enum_sorted.back();
        }
        std::sort(shape.enum_sorted.begin(), shape.enum_sorted.end());
      }
      return {};
    default:
      return {};
  }
}

}  // namespace

struct ServiceModel::Impl {
  struct Operation {
    OperationInfo info;
    std::uint32_t input = kNoShape;
    std::uint32_t output = kNoShape;
  };

  std::string target_prefix;
  std::string signing_name;
  std::string protocol;
  std::vector<Shape> shapes;
  std::vector<Operation> operations;                              // sorted by name
  std::vector<std::pair<std::string_view, std::uint32_t>> names;  // shape names, sorted

  const Operation* find(std::string_view name) const {
    auto it = std::lower_bound(
        operations.begin(), operations.end(), name,
        [](const Operation& op, std::string_view n) { return std::string_view(op.info.name) < n; });
    return it != operations.end() && it->info.name == name ? &*it : nullptr;
  }
};

ServiceModel::ServiceModel(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ServiceModel::~ServiceModel() = default;
ServiceModel::ServiceModel(ServiceModel&&) noexcept = default;
ServiceModel& ServiceModel::operator=(ServiceModel&&) noexcept = default;

Result<ServiceModel> ServiceModel::parse(std::string_view service_json) {
  boost::system::error_code ec;
  json::value doc = json::parse(service_json, ec);
  if (ec) return model_error("not JSON: " + ec.message());
  const json::object* root = doc.if_object();
  const json::object* meta =
      root && root->contains("metadata") ? root->at("metadata").if_object() : nullptr;
  const json::object* shapes =
      root && root->contains("shapes") ? root->at("shapes").if_object() : nullptr;
  const json::object* ops =
      root && root->contains("operations") ? root->at("operations").if_object() : nullptr;
  if (!meta || !shapes || !ops) return model_error("needs metadata, shapes and operations");

  auto impl = std::make_unique<Impl>();
  impl->target_prefix = string_field(*meta, "targetPrefix");
  impl->signing_name = string_field(*meta, "signingName");
  if (impl->signing_name.empty()) impl->signing_name = string_field(*meta, "endpointPrefix");
  impl->protocol = string_field(*meta, "protocol");

  // Two passes, so members may refer to shapes defined later (or to their own shape).
  ShapeIndex index;
  for (const json::key_value_pair& kv : *shapes) {
    index.emplace(std::string(kv.key()), static_cast<std::uint32_t>(impl->shapes.size()));
    impl->shapes.emplace_back().name = std::string(kv.key());
  }
  for (const json::key_value_pair& kv : *shapes) {
    Shape& shape = impl->shapes[index.at(std::string(kv.key()))];
    if (!kv.value().is_object()) return model_error(shape.name + " is not an object");
    BERTH_CHECK(compile_shape(index, kv.value().get_object(), shape));
  }
  for (std::uint32_t i = 0; i < impl->shapes.size(); ++i)
    impl->names.emplace_back(impl->shapes[i].name, i);
  std::sort(impl->names.begin(), impl->names.end());

  for (const json::key_value_pair& kv : *ops) {
    const json::object* op = kv.value().if_object();
    if (!op) return model_error("operation " + std::string(kv.key()) + " is not an object");
    Impl::Operation& out = impl->operations.emplace_back();
    out.info.name = std::string(kv.key());
    for (auto [field, shape_name, shape_index] :
         {std::tuple("input", &out.info.input_shape, &out.input),
          std::tuple("output", &out.info.output_shape, &out.output)}) {
      if (!op->contains(field)) continue;
      BERTH_TRY(*shape_index, reference(index, op->if_contains(field), out.info.name));
      *shape_name = impl->shapes[*shape_index].name;
    }
  }
  std::sort(impl->operations.begin(), impl->operations.end(),
            [](const auto& a, const auto& b) { return a.info.name < b.info.name; });
  return ServiceModel(std::move(impl));
}

const ServiceModel& ServiceModel::ecs() {
  // A function-local static is initialised exactly once even when threads race to it.
  static const ServiceModel model = [] {
    Result<ServiceModel> parsed = parse(kEcsModelJson);
    if (!parsed) {
      // The model is part of the binary; failing to read it is a build defect, not a runtime case.
      std::fprintf(stderr, "embedded ECS model: %s\n", parsed.error().message.c_str());
      std::abort();
    }
    return std::move(parsed).value();
  }();
  return model;
}

const std::string& ServiceModel::target_prefix() const { return impl_->target_prefix; }
const std::string& ServiceModel::signing_name() const { return impl_->signing_name; }
const std::string& ServiceModel::protocol() const { return impl_->protocol; }

const OperationInfo* ServiceModel::operation(std::string_view name) const {
  const Impl::Operation* op = impl_->find(name);
  return op ? &op->info : nullptr;
}

std::vector<std::string> ServiceModel::operation_names() const {
  std::vector<std::string> out;
  out.reserve(impl_->operations.size());
  for (const auto& op : impl_->operations) out.push_back(op.info.name);
  return out;
}

std::vector<std::string_view> ServiceModel::member_names(std::string_view shape) const {
  auto it = std::lower_bound(impl_->names.begin(), impl_->names.end(), shape,
                             [](const auto& entry, std::string_view n) { return entry.first < n; });
  std::vector<std::string_view> out;
  if (it == impl_->names.end() || it->first != shape) return out;
  for (const Member& m : impl_->shapes[it->second].members) out.push_back(m.wire_name);
  return out;
}

Status ServiceModel::validate_input(std::string_view operation,
                                    const boost::json::value& input) const {
  const Impl::Operation* op = impl_->find(operation);
  if (!op) return Error{Errc::unknown_operation, "Unknown operation " + std::string(operation)};
  return detail::validate_shape(impl_->shapes, op->input, input, detail::Direction::input);
}

Status ServiceModel::validate_output(std::string_view operation,
                                     const boost::json::value& output) const {
  const Impl::Operation* op = impl_->find(operation);
  if (!op) return Error{Errc::unknown_operation, "Unknown operation " + std::string(operation)};
  return detail::validate_shape(impl_->shapes, op->output, output, detail::Direction::output);
}

}  // namespace berth::model
