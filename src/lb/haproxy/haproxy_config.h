#pragma once
// HAProxy configuration generation: a pure function of the desired state, so it is unit-tested
// without a proxy and the same DesiredState always yields the same text (frontends, backends and
// servers are sorted; routes are ordered by priority). The text without servers is hashed into a
// fingerprint that the configuration carries as `global description`, so the running worker
// reports (in `show info`) which configuration it runs: apply() reloads only when the
// fingerprints differ and otherwise changes servers through the runtime API.
//
// Names on the proxy: frontends are "fe_<id>", backends "be_<id>", servers keep their name.
//
// Routing: each request records the first route (by priority) it matches in the variable
// txn.route, then that route's action runs: `http-request return` for a fixed response,
// `use_backend` for a forward. (HAProxy runs every http-request rule before any use_backend, so
// conditions alone would let a fixed route shadow a forward route of higher priority.)

#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "lb/data_plane.h"

namespace berth::lb {

/// Files the configuration refers to (absolute paths inside the data plane's run directory).
struct ConfigPaths {
  std::string admin_socket;       // the worker's `stats socket`, level admin
  std::string server_state_file;  // written before each reload, read by the new worker
};

std::string frontend_name(std::string_view id);
std::string backend_name(std::string_view id);
inline constexpr std::string_view kBackendPrefix = "be_";

/// Rejects what HAProxy could not express or would misread: bad ids or names, duplicates,
/// routes or servers naming unknown backends, malformed patterns, matchers, addresses, ports,
/// fixed responses outside status 200-599 or with over 1024 characters of body (a body on 204
/// or 304 is left out), and routes (or defaults) with both a backend and a fixed response.
Status validate(const DesiredState& desired);

/// An ELBv2 wildcard pattern ('*' any run, '?' one character) as an anchored PCRE.
std::string wildcard_to_regex(std::string_view pattern);

/// The ELBv2 matcher ("200", "200,202", "200-299") as the argument of `http-check expect status`,
/// which in HAProxy 2.6 takes the same comma-separated list of codes and ranges.
Result<std::string> expect_status(std::string_view matcher);

/// "ADDR:PORT check inter .. rise .. fall .. [port ..]": the arguments of a `server` line and of
/// the runtime `add server` command. Dynamic servers do not inherit default-server settings, so
/// both carry the check parameters explicitly and behave the same way.
std::string server_arguments(const Server& server, const HealthCheck& check);

/// The fingerprint (16 hex digits) of the configuration without servers.
Result<std::string> config_fingerprint(const DesiredState& desired, const ConfigPaths& paths);

/// The whole configuration, with `servers` as server lines of their backends (servers of
/// backends not in `desired` are left out). Includes the fingerprint as global description.
Result<std::string> render_config(const DesiredState& desired, const ConfigPaths& paths,
                                  const std::vector<Server>& servers);

/// The `description` value a worker running this fingerprint reports.
std::string fingerprint_description(std::string_view fingerprint);

}  // namespace berth::lb
