#include "api/query_service.h"

#include <cassert>

#include "api/errors.h"
#include "api/query_codec.h"
#include "api/sigv4.h"
#include "api/xml.h"
#include "model/elbv2_errors.h"

namespace berth::api {

namespace {

namespace json = boost::json;

constexpr std::string_view kContentType = "text/xml";

// Form decoding (application/x-www-form-urlencoded): '+' is a space, a literal plus is %2B.
std::string form_decode(std::string_view s) { return percent_decode(s, /*plus_is_space=*/true); }

const std::string* find_param(const FormParams& form, std::string_view name) {
  for (const auto& [k, v] : form) {
    if (k == name) return &v;
  }
  return nullptr;
}

// Bad parameters reach the client as the query protocol's ValidationError, whichever layer (form
// typing, model validation) found them.
Error as_validation(Error e) {
  if (e.code == model::Errc::invalid_parameter || e.code == model::Errc::serialization)
    e.code = model::ElbErrc::validation;
  return e;
}

}  // namespace

QueryService::QueryService(const model::ServiceModel& model) : model_(model) {}

void QueryService::add(const std::string& action, QueryAction fn) {
  assert(model_.operation(action) != nullptr);
  actions_[action] = std::move(fn);
}

bool QueryService::has(std::string_view action) const {
  return actions_.find(std::string(action)) != actions_.end();
}

std::vector<std::pair<std::string, std::string>> QueryService::parse_form(std::string_view form) {
  std::vector<std::pair<std::string, std::string>> out;
  std::size_t pos = 0;
  while (pos < form.size()) {
    std::size_t amp = form.find('&', pos);
    if (amp == std::string_view::npos) amp = form.size();
    std::string_view pair = form.substr(pos, amp - pos);
    pos = amp + 1;
    if (pair.empty()) continue;
    std::size_t eq = pair.find('=');
    out.emplace_back(form_decode(pair.substr(0, eq)), eq == std::string_view::npos
                                                          ? std::string()
                                                          : form_decode(pair.substr(eq + 1)));
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> QueryService::request_form(
    const HttpRequest& request) {
  std::string_view target = request.target;
  std::size_t q = target.find('?');
  std::vector<std::pair<std::string, std::string>> form =
      q == std::string_view::npos ? FormParams() : parse_form(target.substr(q + 1));
  if (request.method == "POST") {
    FormParams body = parse_form(request.body);
    form.insert(form.end(), std::make_move_iterator(body.begin()),
                std::make_move_iterator(body.end()));
  }
  return form;
}

HttpResponse query_error_response(const Error& error, const std::string& request_id) {
  AwsError aws = to_aws_error(error.code, Protocol::query);
  XmlWriter xml;
  xml.open("ErrorResponse");
  xml.open("Error");
  xml.element("Type", aws.status >= 500 ? "Receiver" : "Sender");
  xml.element("Code", aws.type);
  // Internal detail stays in the log; clients get a generic message for 500s.
  xml.element("Message",
              aws.status >= 500 ? std::string("An internal error occurred.") : error.message);
  xml.close();
  xml.element("RequestId", request_id);
  HttpResponse r;
  r.status = aws.status;
  r.body = xml.take();
  r.headers.emplace_back("Content-Type", std::string(kContentType));
  r.headers.emplace_back("x-amzn-RequestId", request_id);
  return r;
}

HttpResponse QueryService::handle(RequestContext ctx, const HttpRequest& request) const {
  const FormParams form = request_form(request);
  const std::string* action_param = find_param(form, "Action");
  if (action_param == nullptr || action_param->empty()) {
    return query_error_response(
        Error(model::ElbErrc::missing_action, "The request must contain the parameter Action."),
        ctx.request_id);
  }
  const std::string action = *action_param;
  if (const std::string* version = find_param(form, "Version");
      version != nullptr && *version != model_.api_version()) {
    return query_error_response(
        Error(model::ElbErrc::no_such_version,
              "The requested version (" + *version + ") of service " + model_.signing_name() +
                  " does not exist; this endpoint serves " + model_.api_version() + "."),
        ctx.request_id);
  }
  const model::OperationInfo* op = model_.operation(action);
  auto it = actions_.find(action);
  if (op == nullptr || it == actions_.end()) {
    return query_error_response(
        Error(model::ElbErrc::invalid_action,
              op == nullptr ? "The action " + action + " is not valid for this web service."
                            : "The action " + action + " is not supported yet."),
        ctx.request_id);
  }
  ctx.action = action;

  Result<json::object> form_input = read_query_form(form, model_.shape(op->input_shape));
  if (!form_input.ok())
    return query_error_response(as_validation(form_input.error()), ctx.request_id);
  const json::value input(std::move(*form_input));
  if (Status st = model_.validate_input(action, input); !st.ok()) {
    return query_error_response(as_validation(st.error()), ctx.request_id);
  }
  Result<json::value> out = it->second(ctx, input.get_object());
  if (!out.ok()) return query_error_response(out.error(), ctx.request_id);

  // The root names the action; the result wrapper is written even when empty, because botocore
  // looks it up unconditionally (the CLI fails with a KeyError without it).
  XmlWriter xml;
  xml.open(action + "Response", model_.xml_namespace());
  if (!op->result_wrapper.empty()) xml.open(op->result_wrapper);
  if (Status st = write_query_xml(xml, model_.shape(op->output_shape), *out); !st.ok()) {
    return query_error_response(st.error(), ctx.request_id);
  }
  if (!op->result_wrapper.empty()) xml.close();
  xml.open("ResponseMetadata");
  xml.element("RequestId", ctx.request_id);
  xml.close();
  HttpResponse r;
  r.body = xml.take();
  r.headers.emplace_back("Content-Type", std::string(kContentType));
  r.headers.emplace_back("x-amzn-RequestId", ctx.request_id);
  return r;
}

}  // namespace berth::api
