#pragma once
// Verifies AWS Signature Version 4 on incoming requests (Authorization header form), exactly as
// AWS computes it: canonical request over the request's own SignedHeaders list, credential scope
// date/region/service/aws4_request, and a bounded clock skew.

#include <chrono>
#include <string>
#include <system_error>

#include "api/credentials.h"
#include "api/http.h"
#include "common/clock.h"
#include "common/result.h"

namespace berth::api {

enum class AuthErrc {
  missing_authentication_token = 1,  // no Authorization header (or not AWS4-HMAC-SHA256)
  incomplete_signature,              // malformed Authorization header, missing X-Amz-Date ...
  unrecognized_client,               // unknown access key id
  invalid_signature,                 // signature mismatch, wrong region/scope
  signature_expired,                 // X-Amz-Date more than max_skew from now
};
const std::error_category& auth_category();
inline std::error_code make_error_code(AuthErrc e) {
  return {static_cast<int>(e), auth_category()};
}

struct Principal {
  std::string access_key_id;
  std::string profile;
  std::string region;   // from the credential scope
  std::string service;  // from the credential scope, e.g. "ecs"
};

class SigV4Verifier {
 public:
  SigV4Verifier(const CredentialStore& keys, const Clock& clock, std::string region,
                std::chrono::seconds max_skew = std::chrono::minutes(5));

  /// The signer's identity, or an AuthErrc with the message AWS would give.
  Result<Principal> verify(const HttpRequest& request) const;

 private:
  const CredentialStore& keys_;
  const Clock& clock_;
  std::string region_;
  std::chrono::seconds max_skew_;
};

/// The value of the hex digit `c` (either case), or -1.
int hex_value(char c);

/// Percent-decodes `s`; a '%' not followed by two hex digits is kept as is. SigV4 keeps '+' a
/// literal plus (SDKs encode spaces as %20 and '+' as %2B); form bodies (query protocol) decode
/// it as a space (`plus_is_space`), as botocore's urlencode writes spaces that way.
std::string percent_decode(std::string_view s, bool plus_is_space = false);

/// Exposed for tests and for clients (bench, agent): signs `request` in place, adding X-Amz-Date
/// and Authorization, signing every header present plus host.
void sign_request(HttpRequest& request, const AccessKey& key, const std::string& region,
                  const std::string& service, std::chrono::system_clock::time_point when);

}  // namespace berth::api

template <>
struct std::is_error_code_enum<berth::api::AuthErrc> : std::true_type {};
