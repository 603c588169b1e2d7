#pragma once
// Reading the proxy's view of its servers from runtime API answers: `show servers state` (what
// apply() diffs against and what the server-state file holds) and `show stat` (what health()
// maps to ELBv2 target health). Pure parsing and mapping, unit-tested on captured answers.

#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "lb/data_plane.h"

namespace berth::lb {

/// One server line of `show servers state`.
struct RuntimeServer {
  std::string proxy;  // HAProxy backend name, "be_<id>"
  std::string name;
  std::string address;
  int port = 0;
  int op_state = 0;     // 0 stopped (DOWN), 1 starting, 2 running (UP), 3 stopping
  int admin_state = 0;  // SRV_ADMF_* bits

  static constexpr int kRunning = 2;
  // Forced, inherited, configured, resolution and hostname maintenance (SRV_ADMF_*MAINT).
  bool in_maintenance() const { return (admin_state & 0x67) != 0; }
  // Forced or inherited drain (SRV_ADMF_FDRAIN | SRV_ADMF_IDRAIN).
  bool draining() const { return (admin_state & 0x18) != 0; }
};

/// Parses the answer to `show servers state` (format version 1; columns found by header name).
Result<std::vector<RuntimeServer>> parse_servers_state(std::string_view text);

/// The answer with the "time since last change" column blanked: equal texts mean the
/// server-state file need not be rewritten.
std::string servers_state_without_times(std::string_view text);

/// The `show stat` columns health() needs, for one server row.
struct StatServer {
  std::string proxy;
  std::string name;
  std::string status;        // "UP", "UP 1/2", "DOWN", "DOWN 1/2", "DRAIN", "MAINT", "no check"
  std::string check_status;  // "INI", "L7OK", "L7STS", "L4CON", ... without the "* " prefix
  std::string check_code;    // the HTTP status of the last L7 check, "" if none
  int current_sessions = 0;  // scur
};

/// Parses `show stat` CSV (columns found by the "# pxname,..." header) keeping server rows only.
Result<std::vector<StatServer>> parse_stat(std::string_view csv);

/// True for check results that count as a success.
bool check_passed(std::string_view check_status);

/// ELBv2 health of one server row. `registering`: the server was added and has not been UP
/// since, so a DOWN server whose checks pass is still in its initial checks.
ServerHealth to_server_health(const StatServer& row, bool registering);

}  // namespace berth::lb
