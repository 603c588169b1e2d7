#include "api/frontend.h"

#include <cstdio>

#include "model/errors.h"

namespace berth::api {

Frontend::Frontend(const SigV4Verifier* verifier, uint64_t request_id_seed)
    : verifier_(verifier), id_seed_(request_id_seed) {}

void Frontend::add_json_service(const JsonService& service) { json_services_.push_back(&service); }

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

}  // namespace berth::api
