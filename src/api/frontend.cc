#include "api/frontend.h"

#include <algorithm>
#include <cstdio>

#include "api/query_codec.h"
#include "model/errors.h"

namespace berth::api {

Frontend::Frontend(const SigV4Verifier* verifier, uint64_t request_id_seed)
    : verifier_(verifier), id_seed_(request_id_seed) {}

void Frontend::add_json_service(const JsonService& service) { json_services_.push_back(&service); }
void Frontend::add_query_service(const QueryService& service) {
  query_services_.push_back(&service);
}

namespace {

bool starts_with_ci(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

// What the SDKs send for query-protocol calls: a form POST with no X-Amz-Target (botocore adds
// "; charset=utf-8"), or a GET carrying the parameters in the query string.
bool is_query_request(const HttpRequest& request) {
  if (request.method == "POST") {
    return !request.has_header("X-Amz-Target") &&
           starts_with_ci(request.header("Content-Type"), "application/x-www-form-urlencoded");
  }
  if (request.method != "GET") return false;
  std::size_t q = request.target.find('?');
  if (q == std::string::npos) return false;
  for (const auto& [name, value] :
       QueryService::parse_form(std::string_view(request.target).substr(q + 1))) {
    if (name == "Action") return true;
  }
  return false;
}

}  // namespace

std::string Frontend::next_request_id() {
  // Unique per process run without a lock: a per-run random seed mixed with a counter, formatted
  // like the UUIDs AWS uses.
  uint64_t n = id_counter_.fetch_add(1, std::memory_order_relaxed);
  uint64_t a = id_seed_ ^ (n * 0x9E3779B97F4A7C15ULL);
  char buf[37];
  std::snprintf(buf, sizeof buf, "%08x-%04x-4%03x-%04x-%012llx", static_cast<unsigned>(a >> 32),
                static_cast<unsigned>((a >> 16) & 0xFFFF), static_cast<unsigned>(a & 0xFFF),
                static_cast<unsigned>(0x8000 | ((n >> 48) & 0x3FFF)),
                static_cast<unsigned long long>(n & 0xFFFFFFFFFFFFULL));
  return buf;
}

HttpResponse Frontend::handle(const HttpRequest& request) {
  std::string request_id = next_request_id();

  if (request.method == "GET" && (request.target == "/health" || request.target == "/ping")) {
    HttpResponse r;
    r.body = "ok\n";
    r.headers.emplace_back("Content-Type", "text/plain");
    r.headers.emplace_back("x-amzn-RequestId", request_id);
    return r;
  }
  if (is_query_request(request)) return handle_query(request, request_id);
  if (request.method != "POST") {
    HttpResponse r = json_error_response(
        Error(model::Errc::unknown_operation, "Only POST requests are accepted."), request_id);
    r.status = 405;
    r.headers.emplace_back("Allow", "POST");
    return r;
  }

  std::string_view target = request.header("X-Amz-Target");
  auto dot = target.rfind('.');
  if (target.empty() || dot == std::string_view::npos) {
    return json_error_response(
        Error(model::Errc::unknown_operation, "Missing or malformed X-Amz-Target header."),
        request_id);
  }
  std::string_view prefix = target.substr(0, dot);
  std::string_view action = target.substr(dot + 1);
  const JsonService* service = nullptr;
  for (const JsonService* s : json_services_) {
    if (s->model().target_prefix() == prefix) service = s;
  }
  if (service == nullptr) {
    return json_error_response(
        Error(model::Errc::unknown_operation, "Unknown service " + std::string(prefix) + "."),
        request_id);
  }

  RequestContext ctx;
  ctx.request_id = request_id;
  ctx.action = action;
  if (verifier_ != nullptr) {
    Result<Principal> who = verifier_->verify(request);
    if (!who.ok()) return json_error_response(who.error(), request_id);
    if (who->service != service->model().signing_name()) {
      return json_error_response(
          Error(AuthErrc::invalid_signature, "Credential should be scoped to correct service: '" +
                                                 service->model().signing_name() + "'."),
          request_id);
    }
    ctx.principal = std::move(who).value();
  }
  return service->handle(action, ctx, request);
}

HttpResponse Frontend::handle_query(const HttpRequest& request, const std::string& request_id) {
  RequestContext ctx;
  ctx.request_id = request_id;
  std::vector<const QueryService*> candidates;
  if (verifier_ != nullptr) {
    // Verify before anything else, so an unsigned caller learns nothing about what is served.
    Result<Principal> who = verifier_->verify(request);
    if (!who.ok()) return query_error_response(who.error(), request_id);
    for (const QueryService* s : query_services_) {
      if (s->model().signing_name() == who->service) candidates.push_back(s);
    }
    if (candidates.empty()) {
      return query_error_response(Error(model::Errc::unknown_operation,
                                        "No query-protocol service here answers requests signed "
                                        "for '" +
                                            who->service + "'."),
                                  request_id);
    }
    ctx.principal = std::move(who).value();
  } else {
    candidates = query_services_;
    if (candidates.empty()) {
      return query_error_response(
          Error(model::Errc::unknown_operation, "No query-protocol service is served here."),
          request_id);
    }
  }

  // Several services may share a signing name (Classic ELB and ELBv2 both sign as
  // elasticloadbalancing): Version= tells them apart. One candidate answers for itself, including
  // NoSuchVersion for a Version it does not serve.
  const QueryService* service = candidates.size() == 1 ? candidates.front() : nullptr;
  if (service == nullptr) {
    FormParams form = QueryService::request_form(request);
    auto version =
        std::find_if(form.begin(), form.end(), [](const auto& p) { return p.first == "Version"; });
    for (const QueryService* s : candidates) {
      if (version != form.end() && s->model().api_version() == version->second) service = s;
    }
    if (service == nullptr) {
      return query_error_response(
          Error(model::Errc::unknown_operation,
                version == form.end()
                    ? std::string("The request names no Version, and several services could "
                                  "answer it.")
                    : "No service here serves API version " + version->second + "."),
          request_id);
    }
  }
  return service->handle(std::move(ctx), request);
}

}  // namespace berth::api
