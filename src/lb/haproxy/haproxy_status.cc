#include "lb/haproxy/haproxy_status.h"

#include <charconv>
#include <map>

#include "lb/errc.h"
#include "lb/haproxy/haproxy_config.h"

namespace berth::lb {
namespace {

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  for (;;) {
    size_t p = s.find(sep, start);
    out.push_back(
        s.substr(start, p == std::string_view::npos ? std::string_view::npos : p - start));
    if (p == std::string_view::npos) return out;
    start = p + 1;
  }
}

std::vector<std::string_view> lines(std::string_view s) {
  std::vector<std::string_view> out;
  for (auto l : split(s, '\n')) {
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
    if (!l.empty()) out.push_back(l);
  }
  return out;
}

int to_int(std::string_view s) {
  int v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

Error malformed(std::string_view what, std::string_view text) {
  return Error(Errc::rejected, std::string(what) + ": " + std::string(text.substr(0, 200)));
}

// Maps header names to column indexes; `header` without its "# " prefix.
std::map<std::string_view, size_t> columns(const std::vector<std::string_view>& header) {
  std::map<std::string_view, size_t> out;
  for (size_t i = 0; i < header.size(); ++i) out.emplace(header[i], i);
  return out;
}

}  // namespace

Result<std::vector<RuntimeServer>> parse_servers_state(std::string_view text) {
  auto ls = lines(text);
  // "1" (format version), "# be_id be_name ...", then one line per server.
  if (ls.size() < 2 || ls[0] != "1" || ls[1].substr(0, 2) != "# ")
    return malformed("unexpected 'show servers state' answer", text);
  auto col = columns(split(ls[1].substr(2), ' '));
  for (auto name :
       {"be_name", "srv_name", "srv_addr", "srv_port", "srv_op_state", "srv_admin_state"})
    if (!col.count(name)) return malformed("'show servers state' lacks column", name);
  std::vector<RuntimeServer> out;
  for (size_t i = 2; i < ls.size(); ++i) {
    auto f = split(ls[i], ' ');
    if (f.size() < col.size()) return malformed("short 'show servers state' line", ls[i]);
    RuntimeServer s;
    s.proxy = f[col["be_name"]];
    s.name = f[col["srv_name"]];
    s.address = f[col["srv_addr"]];
    s.port = to_int(f[col["srv_port"]]);
    s.op_state = to_int(f[col["srv_op_state"]]);
    s.admin_state = to_int(f[col["srv_admin_state"]]);
    out.push_back(std::move(s));
  }
  return out;
}

std::string servers_state_without_times(std::string_view text) {
  std::string out;
  size_t time_col = std::string_view::npos;
  for (auto l : lines(text)) {
    auto f = split(l, ' ');
    if (l.substr(0, 2) == "# ") {
      for (size_t i = 1; i < f.size(); ++i)
        if (f[i] == "srv_time_since_last_change") time_col = i - 1;
    } else if (time_col != std::string_view::npos && f.size() > time_col) {
      f[time_col] = "";
    }
    for (auto x : f) (out += x) += ' ';
    out += '\n';
  }
  return out;
}

Result<std::vector<StatServer>> parse_stat(std::string_view csv) {
  auto ls = lines(csv);
  if (ls.empty() || ls[0].substr(0, 2) != "# ")
    return malformed("unexpected 'show stat' answer", csv);
  auto col = columns(split(ls[0].substr(2), ','));
  for (auto name : {"pxname", "svname", "status", "check_status", "check_code", "scur", "type"})
    if (!col.count(name)) return malformed("'show stat' lacks column", name);
  std::vector<StatServer> out;
  for (size_t i = 1; i < ls.size(); ++i) {
    auto f = split(ls[i], ',');
    if (f.size() < col.size()) return malformed("short 'show stat' line", ls[i]);
    if (f[col["type"]] != "2") continue;  // 0 frontend, 1 backend, 2 server, 3 listener
    StatServer s;
    s.proxy = f[col["pxname"]];
    s.name = f[col["svname"]];
    s.status = f[col["status"]];
    std::string_view cs = f[col["check_status"]];
    if (cs.substr(0, 2) == "* ") cs.remove_prefix(2);  // a check is in progress
    s.check_status = cs;
    s.check_code = f[col["check_code"]];
    s.current_sessions = to_int(f[col["scur"]]);
    out.push_back(std::move(s));
  }
  return out;
}

bool check_passed(std::string_view cs) {
  return cs == "L4OK" || cs == "L6OK" || cs == "L7OK" || cs == "L7OKC";
}

ServerHealth to_server_health(const StatServer& row, bool registering) {
  ServerHealth h;
  h.backend = row.proxy.substr(std::min(row.proxy.size(), kBackendPrefix.size()));
  h.name = row.name;
  h.current_sessions = row.current_sessions;
  auto set = [&](const char* state, const char* reason, std::string description) {
    h.state = state;
    h.reason = reason;
    h.description = std::move(description);
  };
  const std::string_view st = row.status;
  // MAINT only happens on the way out: removal puts a server in maintenance before deleting it.
  if (st.starts_with("DRAIN") || st.starts_with("MAINT") || st.starts_with("NOLB")) {
    set("draining", "Target.DeregistrationInProgress", "Target deregistration is in progress");
  } else if (st == "no check") {
    set("unavailable", "Target.HealthCheckDisabled", "Health checks disabled");
  } else if (st.starts_with("UP")) {  // includes "UP 1/2": still taking traffic while going down
    set("healthy", "", "");
  } else if (row.check_status == "INI" || (registering && check_passed(row.check_status))) {
    set("initial", "Elb.InitialHealthChecking", "Initial health checks in progress");
  } else if (row.check_status == "L7STS") {
    set("unhealthy", "Target.ResponseCodeMismatch",
        "Health checks failed with these codes: [" + row.check_code + "]");
  } else if (row.check_status == "L4TOUT" || row.check_status == "L6TOUT" ||
             row.check_status == "L7TOUT") {
    set("unhealthy", "Target.Timeout", "Request timed out");
  } else {
    set("unhealthy", "Target.FailedHealthChecks", "Health checks failed");
  }
  return h;
}

}  // namespace berth::lb
