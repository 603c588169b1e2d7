#include "model/service_model.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <unordered_map>

#include <boost/json.hpp>

#include "model/shape_table.h"

namespace berth::model {

extern const std::string_view kEcsModelJson;
extern const std::string_view kElbv2ModelJson;

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

bool bool_field(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v != nullptr && v->is_bool() && v->get_bool();
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
  std::vector<Member> members;  // model order
  if (const json::object* ms = def.contains("members") ? def.at("members").if_object() : nullptr) {
    for (const json::key_value_pair& kv : *ms) {
      std::string context = shape.name + "." + std::string(kv.key());
      BERTH_TRY(std::uint32_t target, reference(index, &kv.value(), context));
      const json::object& ref = kv.value().get_object();
      std::string wire = string_field(ref, "locationName");
      members.push_back(Member{wire.empty() ? std::string(kv.key()) : wire, target, false,
                               std::string(kv.key()), bool_field(ref, "flattened")});
    }
  }
  std::vector<std::uint32_t> required;  // model indices, in the order "required" lists them
  if (const json::array* req = def.contains("required") ? def.at("required").if_array() : nullptr) {
    for (const json::value& r : *req) {
      std::string_view name = r.is_string() ? std::string_view(r.get_string()) : "";
      auto it = std::find_if(members.begin(), members.end(),
                             [&](const Member& m) { return m.name == name; });
      if (it == members.end())
        return model_error(shape.name + " requires undeclared member \"" + std::string(name) +
                           "\"");
      if (it->required) continue;
      it->required = true;
      required.push_back(static_cast<std::uint32_t>(it - members.begin()));
    }
  }
  // Validation binary-searches members by wire name; replies are written in model order.
  std::vector<std::uint32_t> by_wire(members.size());
  for (std::uint32_t i = 0; i < by_wire.size(); ++i) by_wire[i] = i;
  std::stable_sort(by_wire.begin(), by_wire.end(), [&](std::uint32_t a, std::uint32_t b) {
    return members[a].wire_name < members[b].wire_name;
  });
  shape.model_order.resize(members.size());
  for (std::uint32_t sorted = 0; sorted < by_wire.size(); ++sorted) {
    shape.model_order[by_wire[sorted]] = sorted;
    shape.members.push_back(std::move(members[by_wire[sorted]]));
  }
  for (std::uint32_t i : required) shape.required.push_back(shape.model_order[i]);
  shape.required_count = static_cast<std::uint32_t>(shape.required.size());
  return {};
}

Status compile_shape(const ShapeIndex& index, const json::object& def, Shape& shape) {
  auto kind = kind_of(string_field(def, "type"));
  if (!kind) return model_error(shape.name + " has unsupported type " + string_field(def, "type"));
  shape.kind = *kind;
  shape.min = number_field(def, "min");
  shape.max = number_field(def, "max");
  shape.flattened = bool_field(def, "flattened");
  if (bool_field(def, "exception") || def.contains("error")) {
    const json::value* err = def.if_contains("error");
    const json::object* e = err != nullptr ? err->if_object() : nullptr;
    shape.error_code = e != nullptr ? string_field(*e, "code") : std::string();
    if (shape.error_code.empty()) shape.error_code = shape.name;
    std::optional<double> status = e != nullptr ? number_field(*e, "httpStatusCode") : std::nullopt;
    shape.error_status = status ? static_cast<int>(*status) : 400;
  }
  switch (shape.kind) {
    case ShapeKind::structure:
      return compile_structure(index, def, shape);
    case ShapeKind::list: {
      BERTH_TRY(shape.element, reference(index, def.if_contains("member"), shape.name + ".member"));
      shape.element_name = string_field(def.at("member").get_object(), "locationName");
      return {};
    }
    case ShapeKind::map: {
      BERTH_TRY(shape.key, reference(index, def.if_contains("key"), shape.name + ".key"));
      BERTH_TRY(shape.element, reference(index, def.if_contains("value"), shape.name + ".value"));
      shape.key_name = string_field(def.at("key").get_object(), "locationName");
      shape.element_name = string_field(def.at("value").get_object(), "locationName");
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
  std::string api_version;
  std::string xml_namespace;
  std::vector<Shape> shapes;
  std::vector<Operation> operations;                              // sorted by name
  std::vector<std::pair<std::string_view, std::uint32_t>> names;  // shape names, sorted

  std::uint32_t find_shape(std::string_view name) const {
    auto it =
        std::lower_bound(names.begin(), names.end(), name,
                         [](const auto& entry, std::string_view n) { return entry.first < n; });
    return it != names.end() && it->first == name ? it->second : kNoShape;
  }

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
  impl->api_version = string_field(*meta, "apiVersion");
  impl->xml_namespace = string_field(*meta, "xmlNamespace");

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
    if (const json::value* output = op->if_contains("output"); output && output->is_object())
      out.info.result_wrapper = string_field(output->get_object(), "resultWrapper");
  }
  std::sort(impl->operations.begin(), impl->operations.end(),
            [](const auto& a, const auto& b) { return a.info.name < b.info.name; });
  return ServiceModel(std::move(impl));
}

namespace {

ServiceModel parse_embedded(std::string_view name, std::string_view json_text) {
  Result<ServiceModel> parsed = ServiceModel::parse(json_text);
  if (!parsed) {
    // The model is part of the binary; failing to read it is a build defect, not a runtime case.
    std::fprintf(stderr, "embedded %.*s model: %s\n", static_cast<int>(name.size()), name.data(),
                 parsed.error().message.c_str());
    std::abort();
  }
  return std::move(parsed).value();
}

}  // namespace

// Function-local statics are initialised exactly once even when threads race to them.
const ServiceModel& ServiceModel::ecs() {
  static const ServiceModel model = parse_embedded("ECS", kEcsModelJson);
  return model;
}

const ServiceModel& ServiceModel::elbv2() {
  static const ServiceModel model = parse_embedded("ELBv2", kElbv2ModelJson);
  return model;
}

const std::string& ServiceModel::target_prefix() const { return impl_->target_prefix; }
const std::string& ServiceModel::signing_name() const { return impl_->signing_name; }
const std::string& ServiceModel::protocol() const { return impl_->protocol; }
const std::string& ServiceModel::api_version() const { return impl_->api_version; }
const std::string& ServiceModel::xml_namespace() const { return impl_->xml_namespace; }

ShapeView ServiceModel::shape(std::string_view name) const {
  std::uint32_t i = impl_->find_shape(name);
  return i == kNoShape ? ShapeView() : ShapeView(&impl_->shapes, i);
}

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
  std::vector<std::string_view> out;
  std::uint32_t i = impl_->find_shape(shape);
  if (i == kNoShape) return out;
  for (const Member& m : impl_->shapes[i].members) out.push_back(m.wire_name);
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

// ---- ShapeView

const Shape& ShapeView::get() const { return (*shapes_)[index_]; }
const std::string& ShapeView::name() const { return get().name; }
ShapeType ShapeView::type() const { return get().kind; }
bool ShapeView::flattened() const { return get().flattened; }
std::size_t ShapeView::member_count() const { return get().members.size(); }

MemberView ShapeView::member(std::size_t model_index) const {
  const Member& m = get().members[get().model_order.at(model_index)];
  ShapeView target(shapes_, m.shape);
  return MemberView{m.name, m.wire_name, target, m.required, m.flattened || target.flattened()};
}

std::optional<MemberView> ShapeView::find_member(std::string_view wire_name) const {
  const std::vector<Member>& members = get().members;
  auto it = std::lower_bound(
      members.begin(), members.end(), wire_name,
      [](const Member& m, std::string_view key) { return std::string_view(m.wire_name) < key; });
  if (it == members.end() || it->wire_name != wire_name) return std::nullopt;
  ShapeView target(shapes_, it->shape);
  return MemberView{it->name, it->wire_name, target, it->required,
                    it->flattened || target.flattened()};
}

ShapeView ShapeView::list_member() const {
  return get().kind == ShapeKind::list ? ShapeView(shapes_, get().element) : ShapeView();
}
std::string_view ShapeView::list_member_name() const { return get().element_name; }
ShapeView ShapeView::map_key() const {
  return get().kind == ShapeKind::map ? ShapeView(shapes_, get().key) : ShapeView();
}
ShapeView ShapeView::map_value() const {
  return get().kind == ShapeKind::map ? ShapeView(shapes_, get().element) : ShapeView();
}
std::string_view ShapeView::map_key_name() const { return get().key_name; }
std::string_view ShapeView::map_value_name() const { return get().element_name; }
std::string_view ShapeView::error_code() const { return get().error_code; }
int ShapeView::error_status() const { return get().error_status; }

}  // namespace berth::model
