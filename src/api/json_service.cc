#include "api/json_service.h"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <cassert>

#include "api/errors.h"

namespace berth::api {

namespace json = boost::json;

JsonService::JsonService(const model::ServiceModel& model) : model_(model) {}

std::string Reply::serialize() const { return is_raw_ ? raw_ : json::serialize(value_); }

void JsonService::add(const std::string& action, JsonAction fn) {
  assert(model_.operation(action) != nullptr);
  actions_[action] = std::move(fn);
}

bool JsonService::has(std::string_view action) const {
  return actions_.find(std::string(action)) != actions_.end();
}

HttpResponse json_error_response(const Error& error, const std::string& request_id) {
  AwsError aws = to_aws_error(error.code);
  HttpResponse r;
  r.status = aws.status;
  json::object body;
  body["__type"] = aws.type;
  // Internal detail stays in the log; clients get a generic message for 500s.
  body["message"] = aws.status >= 500 ? std::string("An internal error occurred.") : error.message;
  r.body = json::serialize(body);
  r.headers.emplace_back("Content-Type", std::string(kAmzJson11));
  r.headers.emplace_back("x-amzn-RequestId", request_id);
  return r;
}

HttpResponse JsonService::handle(std::string_view action, const RequestContext& ctx,
                                 const HttpRequest& request) const {
  auto it = actions_.find(std::string(action));
  if (it == actions_.end()) {
    return json_error_response(
        Error(model::Errc::unknown_operation,
              model_.operation(action) ? std::string(action) + " is not supported yet."
                                       : "Unknown operation " + std::string(action) + "."),
        ctx.request_id);
  }
  json::value input;
  if (request.body.empty()) {
    input = json::object();  // the CLI sends "{}", but an empty body means the same
  } else {
    boost::system::error_code ec;
    input = json::parse(request.body, ec);
    if (ec) {
      return json_error_response(
          Error(model::Errc::client, "The request body is not valid JSON: " + ec.message()),
          ctx.request_id);
    }
  }
  if (!input.is_object()) {
    return json_error_response(
        Error(model::Errc::client, "The request body must be a JSON object."), ctx.request_id);
  }
  if (auto st = model_.validate_input(action, input); !st.ok()) {
    return json_error_response(st.error(), ctx.request_id);
  }
  Result<Reply> out = it->second(ctx, input.as_object());
  if (!out.ok()) return json_error_response(out.error(), ctx.request_id);
  HttpResponse r;
  r.body = out.value().serialize();
  r.headers.emplace_back("Content-Type", std::string(kAmzJson11));
  r.headers.emplace_back("x-amzn-RequestId", ctx.request_id);
  return r;
}

}  // namespace berth::api
