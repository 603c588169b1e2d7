#pragma once
// QueryService: one AWS query-protocol service (ELBv2 now, CloudFormation later). Requests are
// form-encoded (`Action=CreateTargetGroup&Version=2015-12-01&Name=web&Port=80`, lists as
// `Names.member.1`, maps as `Attributes.entry.1.key`, nested structures as `Matcher.HttpCode`).
// The service turns the form into a JSON object keyed by the model's member names, with values
// typed by the model (integers, booleans, lists, structures), validates it against the operation's
// input shape, calls the action, and writes the action's JSON result as the XML the SDKs expect:
//   <CreateTargetGroupResponse xmlns="http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/">
//     <CreateTargetGroupResult>...</CreateTargetGroupResult>
//     <ResponseMetadata><RequestId>...</RequestId></ResponseMetadata>
//   </CreateTargetGroupResponse>
// Lists are written as <member> elements, timestamps (JSON numbers of epoch seconds, or strings
// already in ISO 8601) as ISO 8601 UTC. Errors are
//   <ErrorResponse><Error><Type>Sender</Type><Code>...</Code><Message>...</Message></Error>
//   <RequestId>...</RequestId></ErrorResponse>
// with the code and status from api::to_aws_error(code, Protocol::query): Type is Sender for 4xx
// and Receiver for 5xx, and 5xx messages carry no internal detail. Bad parameters, whether the
// form cannot be typed or the model's validation rejects it, are ValidationError.

#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include "api/http.h"
#include "api/json_service.h"
#include "common/result.h"
#include "model/service_model.h"

namespace berth::api {

/// An action: input members by model name; returns the output shape's members as a JSON object
/// (e.g. {"TargetGroups": [{"TargetGroupArn": "...", "Port": 80, ...}]}).
using QueryAction =
    std::function<Result<boost::json::value>(const RequestContext&, const boost::json::object&)>;

class QueryService {
 public:
  explicit QueryService(const model::ServiceModel& model);

  /// Registers an action; the name must be an operation of the model.
  void add(const std::string& action, QueryAction fn);
  bool has(std::string_view action) const;
  const model::ServiceModel& model() const { return model_; }

  /// Handles a form-encoded request (body, or the query string of a GET). Reads `Action` itself;
  /// `ctx.action` is filled in before the action runs. A `Version` other than the model's
  /// api_version() is NoSuchVersion; a missing one is accepted.
  HttpResponse handle(RequestContext ctx, const HttpRequest& request) const;

  /// The form parameters of a request body or query string, percent-decoded ('+' is a space), in
  /// order.
  static std::vector<std::pair<std::string, std::string>> parse_form(std::string_view form);
  /// All parameters of a request: its query string's, then (for a POST) its body's.
  static std::vector<std::pair<std::string, std::string>> request_form(const HttpRequest& request);

 private:
  const model::ServiceModel& model_;
  std::unordered_map<std::string, QueryAction> actions_;
};

/// An error response in the query-protocol XML shape.
HttpResponse query_error_response(const Error& error, const std::string& request_id);

}  // namespace berth::api
