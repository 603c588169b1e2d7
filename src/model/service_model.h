#pragma once
// ServiceModel: an AWS service's request/response shapes, read from the botocore model
// (botocore/data/<service>/<version>/service-2.json, shipped in Debian's python3-botocore), which
// is our spec. The ECS and ELBv2 models are embedded in the binary at build time (documentation
// stripped).
//
// validate_input() enforces what the model declares: member types, required members, enums,
// list/string length and numeric min/max, 32-bit range for `integer`. Unknown members are ignored,
// as AWS does. Errors are model::Errc::invalid_parameter with a message naming the member path,
// e.g. "containerDefinitions[0].portMappings[1].containerPort". JSON documents are keyed by each
// member's wire name (its locationName if the model sets one, else its name) for every protocol:
// the query protocol's form keys and XML elements use the same names.
//
// ShapeView and MemberView expose the shapes themselves, for protocols that must be driven by the
// model (the query protocol types form values and writes XML by walking the shapes).

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/fwd.hpp>

#include "common/result.h"
#include "model/errors.h"

namespace berth::model {

namespace detail {
struct Shape;
}

struct OperationInfo {
  std::string name;
  std::string input_shape;     // empty if the operation takes no input
  std::string output_shape;    // empty if none
  std::string result_wrapper;  // query protocol: the XML element wrapping the output, or empty
};

enum class ShapeType : std::uint8_t {
  structure,
  list,
  map,
  string,
  integer,  // 32-bit
  long_,
  boolean,
  double_,
  float_,
  timestamp,
  blob,
};

struct MemberView;

/// One shape of a ServiceModel; cheap to copy and valid as long as the model. A default-constructed
/// view refers to no shape (operator bool is false) and must not be asked anything else.
class ShapeView {
 public:
  ShapeView() = default;
  explicit operator bool() const { return shapes_ != nullptr; }
  bool operator==(const ShapeView& o) const { return shapes_ == o.shapes_ && index_ == o.index_; }

  const std::string& name() const;
  ShapeType type() const;
  /// Lists and maps: serialized without a wrapping element (query protocol and XML).
  bool flattened() const;

  /// Structures: members in model order. find_member() looks up by wire name.
  std::size_t member_count() const;
  MemberView member(std::size_t model_index) const;
  std::optional<MemberView> find_member(std::string_view wire_name) const;

  /// Lists: the element shape, and the element's locationName ("" means the default "member").
  ShapeView list_member() const;
  std::string_view list_member_name() const;

  /// Maps: key and value shapes and their locationNames ("" means the defaults "key"/"value").
  ShapeView map_key() const;
  ShapeView map_value() const;
  std::string_view map_key_name() const;
  std::string_view map_value_name() const;

  /// Error shapes: the error code clients see (error.code, else the shape name) and its HTTP
  /// status; "" and 0 for shapes that are not errors.
  std::string_view error_code() const;
  int error_status() const;

 private:
  friend class ServiceModel;
  friend struct MemberView;
  ShapeView(const std::vector<detail::Shape>* shapes, std::uint32_t index)
      : shapes_(shapes), index_(index) {}
  const detail::Shape& get() const;

  const std::vector<detail::Shape>* shapes_ = nullptr;
  std::uint32_t index_ = 0;
};

/// A structure member.
struct MemberView {
  std::string_view name;       // as declared in the model, e.g. "HealthCheckPort"
  std::string_view wire_name;  // locationName if set, else name: JSON key, form key, XML element
  ShapeView shape;
  bool required = false;
  bool flattened = false;  // the member reference or its target shape is flattened
};

class ServiceModel {
 public:
  ~ServiceModel();
  ServiceModel(ServiceModel&&) noexcept;
  ServiceModel& operator=(ServiceModel&&) noexcept;

  /// Parses a service-2.json document.
  static Result<ServiceModel> parse(std::string_view service_json);
  /// The embedded ECS 2014-11-13 model.
  static const ServiceModel& ecs();
  /// The embedded Elastic Load Balancing v2 2015-12-01 model (query protocol).
  static const ServiceModel& elbv2();

  const std::string& target_prefix() const;  // "AmazonEC2ContainerServiceV20141113"
  const std::string& signing_name() const;   // "ecs", "elasticloadbalancing"
  const std::string& protocol() const;       // "json", "query"
  const std::string& api_version() const;    // "2014-11-13"; the query protocol's Version=
  /// metadata.xmlNamespace: the xmlns of query-protocol replies; empty for JSON services.
  const std::string& xml_namespace() const;
  const OperationInfo* operation(std::string_view name) const;  // nullptr if unknown
  std::vector<std::string> operation_names() const;             // sorted
  /// A shape by name; an invalid view if there is none (including for an empty name).
  ShapeView shape(std::string_view name) const;
  /// Wire names of a structure shape's members, sorted; empty if the shape is unknown or not a
  /// structure. Views stay valid as long as this model.
  std::vector<std::string_view> member_names(std::string_view shape) const;

  /// Checks a request body (already parsed JSON) against the operation's input shape. Errors:
  /// unknown_operation; serialization if the body is not an object; invalid_parameter otherwise.
  Status validate_input(std::string_view operation, const boost::json::value& input) const;
  /// Checks a response against the output shape, additionally rejecting members the model does
  /// not declare (used by tests to keep responses parseable by SDKs).
  Status validate_output(std::string_view operation, const boost::json::value& output) const;

 private:
  struct Impl;
  explicit ServiceModel(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace berth::model
