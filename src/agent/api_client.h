#pragma once
// ApiClient: the agent's signed calls to the ECS API of the server (RegisterContainerInstance,
// SubmitTaskStateChange when the channel is down), one blocking request per call with a deadline.
// Beast stays inside api_client.cc.

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <system_error>

#include "api/credentials.h"
#include "common/clock.h"
#include "common/result.h"

namespace berth::agent {

enum class ClientErrc {
  transport = 1,  // could not connect / send / read: retriable
  server,         // 5xx: retriable
  rejected,       // 4xx: the message is "<__type>: <message>", not retriable
};
const std::error_category& client_category();
inline std::error_code make_error_code(ClientErrc e) {
  return {static_cast<int>(e), client_category()};
}
inline bool retriable(const Error& e) { return e.code != make_error_code(ClientErrc::rejected); }

struct Endpoint {
  std::string host;
  uint16_t port = 0;
  /// Parses "http://HOST:PORT" (only plain HTTP for now; the server listens on loopback or a
  /// private network — TLS termination belongs in front of it).
  static Result<Endpoint> parse(std::string_view url);
  std::string host_header() const { return host + ":" + std::to_string(port); }
};

/// The WebSocket target of an instance's push channel (the server's AgentSessions::kPath).
std::string channel_target(std::string_view cluster, std::string_view instance_arn);

class ApiClient {
 public:
  ApiClient(Endpoint endpoint, api::AccessKey key, std::string region, const Clock& clock);

  /// POSTs an ECS JSON 1.1 action and returns the parsed reply.
  Result<boost::json::value> call(std::string_view action, const boost::json::object& body,
                                  std::chrono::milliseconds timeout = std::chrono::seconds(10));

  const Endpoint& endpoint() const { return endpoint_; }
  const api::AccessKey& key() const { return key_; }
  const std::string& region() const { return region_; }

 private:
  Endpoint endpoint_;
  api::AccessKey key_;
  std::string region_;
  const Clock& clock_;
};

}  // namespace berth::agent

template <>
struct std::is_error_code_enum<berth::agent::ClientErrc> : std::true_type {};
