#pragma once
// ServiceModel: an AWS service's request/response shapes, read from the botocore model
// (botocore/data/<service>/<version>/service-2.json, shipped in Debian's python3-botocore), which
// is our spec. The ECS model is embedded in the binary at build time (documentation stripped).
//
// validate_input() enforces what the model declares: member types, required members, enums,
// list/string length and numeric min/max, 32-bit range for `integer`. Unknown members are ignored,
// as AWS does. Errors are model::Errc::invalid_parameter with a message naming the member path,
// e.g. "containerDefinitions[0].portMappings[1].containerPort".

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/fwd.hpp>

#include "common/result.h"
#include "model/errors.h"

namespace berth::model {

struct OperationInfo {
  std::string name;
  std::string input_shape;   // empty if the operation takes no input
  std::string output_shape;  // empty if none
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

  const std::string& target_prefix() const;  // "AmazonEC2ContainerServiceV20141113"
  const std::string& signing_name() const;   // "ecs"
  const std::string& protocol() const;       // "json"
  const OperationInfo* operation(std::string_view name) const;  // nullptr if unknown
  std::vector<std::string> operation_names() const;             // sorted
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
