#pragma once
// The one table that maps error codes from every module to the AWS error name and HTTP status a
// client expects. Codes from categories the table does not know become ServerException (JSON) or
// InternalFailure (query), 500, with the detail logged rather than shown.
//
// The two protocols name some errors differently, as AWS does: a bad signature is
// InvalidSignatureException (400) to a JSON service and SignatureDoesNotMatch (403) to a query
// service; a bad parameter is InvalidParameterException to ECS and ValidationError to ELBv2.

#include <string_view>
#include <system_error>

namespace berth::api {

struct AwsError {
  std::string_view type;  // "__type" in JSON protocols, <Code> in query protocols
  int status;
};

enum class Protocol { json, query };

AwsError to_aws_error(const std::error_code& code, Protocol protocol = Protocol::json);

}  // namespace berth::api
