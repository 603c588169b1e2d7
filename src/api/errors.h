#pragma once
// The one table that maps error codes from every module to the AWS exception name and HTTP status
// a client expects. Codes from categories the table does not know become ServerException (500),
// with the detail logged rather than shown.

#include <string_view>
#include <system_error>

namespace berth::api {

struct AwsError {
  std::string_view type;  // "__type" in JSON protocols, <Code> in query protocols
  int status;
};

AwsError to_aws_error(const std::error_code& code);

}  // namespace berth::api
