#pragma once
// Frontend: the one HTTP front door. Every request gets an x-amzn-RequestId; POSTs are routed by
// X-Amz-Target ("<TargetPrefix>.<Action>") to a JSON 1.1 service after SigV4 verification.
// Query-protocol requests (ELBv2, later CloudFormation) are a form-encoded POST without
// X-Amz-Target, or a GET with ?Action=: after verification they go to the query service whose
// signing name is the credential scope's service (then by Version= if several share it); without
// a verifier, by Version= alone or to the only query service. Their errors are XML. GET /health
// answers without authentication (load balancers, supervisors, and the benchmark's
// fixed-response ceiling).

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "api/http.h"
#include "api/json_service.h"
#include "api/query_service.h"
#include "api/sigv4.h"

namespace berth::api {

class Frontend final : public HttpHandler {
 public:
  /// `verifier` may be null to accept unsigned requests (tests, --insecure-no-auth).
  Frontend(const SigV4Verifier* verifier, uint64_t request_id_seed);

  void add_json_service(const JsonService& service);
  void add_query_service(const QueryService& service);
  HttpResponse handle(const HttpRequest& request) override;

 private:
  std::string next_request_id();
  HttpResponse handle_query(const HttpRequest& request, const std::string& request_id);

  const SigV4Verifier* verifier_;
  std::vector<const JsonService*> json_services_;
  std::vector<const QueryService*> query_services_;
  uint64_t id_seed_;
  std::atomic<uint64_t> id_counter_{0};
};

}  // namespace berth::api
