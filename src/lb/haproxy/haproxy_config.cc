#include "lb/haproxy/haproxy_config.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <map>
#include <set>
#include <sstream>

#include "lb/errc.h"

namespace berth::lb {
namespace {

Error invalid(std::string message) { return Error(Errc::invalid_config, std::move(message)); }

// Proxy and server names: HAProxy allows a little more, ELBv2 ids and our target names use these.
bool valid_id(std::string_view s) {
  if (s.empty() || s.size() > 100) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
  });
}

// IP literals only: dynamic servers cannot resolve names in 2.6, and these also never need
// quoting in the configuration or on the runtime API line.
bool valid_address(std::string_view s) {
  if (s.empty() || s.size() > 45) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == '.' ||
           c == ':';
  });
}

bool valid_port(int p, bool zero_ok = false) {
  return (zero_ok && p == 0) || (p >= 1 && p <= 65535);
}

// Visible ASCII without the characters HAProxy's config tokenizer treats specially outside
// quotes; patterns are single-quoted in the output, so only the quote itself is excluded.
bool valid_path_pattern(std::string_view s) {
  if (s.empty() || s.size() > 128) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return c > ' ' && c < 0x7f; });
}

bool valid_host_pattern(std::string_view s) {
  if (s.empty() || s.size() > 128) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '*' || c == '?';
  });
}

bool valid_check_path(std::string_view s) {
  if (s.empty() || s.front() != '/' || s.size() > 1024) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return c > ' ' && c < 0x7f && c != '"' && c != '\'' && c != '\\' && c != '#';
  });
}

// ELBv2 limits the message body to 1024 characters; counted as UTF-8 code points.
constexpr size_t kMaxFixedBodyChars = 1024;

Status validate_fixed(const FixedResponse& r, const std::string& where) {
  if (r.status < 200 || r.status > 599)
    return invalid(where + ": fixed response status " + std::to_string(r.status) +
                   " outside 200-599");
  // A header value: no control characters (a newline would end the header).
  if (r.content_type.size() > 128 || !std::all_of(r.content_type.begin(), r.content_type.end(),
                                                  [](char c) { return c >= ' ' && c < 0x7f; }))
    return invalid(where + ": bad fixed response content type");
  // NUL would cut HAProxy's string short; anything else is escaped.
  if (r.body.find('\0') != std::string::npos)
    return invalid(where + ": fixed response body contains NUL");
  size_t chars = std::count_if(r.body.begin(), r.body.end(), [](char c) {
    return (static_cast<unsigned char>(c) & 0xc0) != 0x80;  // not a UTF-8 continuation byte
  });
  if (chars > kMaxFixedBodyChars)
    return invalid(where + ": fixed response body longer than " +
                   std::to_string(kMaxFixedBodyChars) + " characters");
  return {};
}

bool is_any_address(std::string_view a) { return a == "0.0.0.0" || a == "::"; }

// FNV-1a: a stable, dependency-free hash; only used to notice configuration changes.
uint64_t fnv1a(std::string_view s) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

// " inter ..s rise .. fall .. [port ..]"
std::string check_timing(const HealthCheck& hc) {
  std::string out = " inter " + std::to_string(hc.interval_seconds);
  out.append("s rise ").append(std::to_string(hc.healthy_threshold));
  out.append(" fall ").append(std::to_string(hc.unhealthy_threshold));
  if (hc.port != 0) out.append(" port ").append(std::to_string(hc.port));
  return out;
}

std::string quoted(std::string_view s) {
  std::string out;  // built by append: GCC 12 warns (-Wrestrict) on "'" + std::string
  out.reserve(s.size() + 2);
  out.append(1, '\'').append(s).append(1, '\'');
  return out;
}

template <class T>
std::vector<const T*> sorted_by_id(const std::vector<T>& v) {
  std::vector<const T*> out;
  for (const auto& x : v) out.push_back(&x);
  std::sort(out.begin(), out.end(), [](const T* a, const T* b) { return a->id < b->id; });
  return out;
}

// A double-quoted argument for HAProxy 2.6's configuration tokenizer, which inside double quotes
// expands "$NAME" environment variables and decodes \" \\ \$ \n \r \t \xHH. Whatever is not
// printable ASCII is written as \xHH, so the value is taken byte for byte and the line stays text.
std::string double_quoted(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"':
      case '\\':
      case '$':
        out.append(1, '\\').append(1, static_cast<char>(c));
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20 || c >= 0x7f) {
          char hex[5];
          std::snprintf(hex, sizeof(hex), "\\x%02x", c);
          out += hex;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

// "http-request return status N [content-type "T" string "BODY"]". HAProxy refuses an empty
// `string`, a payload without a content type, and any payload on 204 and 304 (which HTTP forbids:
// left out), and ignores a content type without a payload.
std::string return_rule(const FixedResponse& r) {
  std::string out = "http-request return status " + std::to_string(r.status);
  if (!r.body.empty() && r.status != 204 && r.status != 304) {
    out.append(" content-type ")
        .append(double_quoted(r.content_type.empty() ? "text/plain" : r.content_type))
        .append(" string ")
        .append(double_quoted(r.body));
  }
  return out;
}

// Routing (see the header): the first route a request matches is recorded in this variable.
constexpr std::string_view kRouteVar = "txn.route";

std::string route_is(size_t i) {
  return "{ var(" + std::string(kRouteVar) + ") -m int " + std::to_string(i) + " }";
}

void render_frontend(std::ostringstream& o, const Frontend& f) {
  o << "\nfrontend " << frontend_name(f.id) << "\n";
  o << "  bind " << f.address << ":" << f.port << "\n";
  // ELB adds these; applications use them for redirects and client addresses.
  o << "  option forwardfor\n";
  o << "  http-request set-header X-Forwarded-Proto http\n";
  o << "  http-request set-header X-Forwarded-Port %[dst_port]\n";

  std::vector<const Route*> routes;
  for (const auto& r : f.routes) routes.push_back(&r);
  std::stable_sort(routes.begin(), routes.end(),
                   [](const Route* a, const Route* b) { return a->priority < b->priority; });

  std::vector<std::string> conditions;  // per route, "" when it has no condition
  for (size_t i = 0; i < routes.size(); ++i) {
    const Route& r = *routes[i];
    std::string cond;
    const std::string n = std::string("r").append(std::to_string(i));
    if (!r.path_patterns.empty()) {
      o << "  acl " << n << "_path path -m reg";
      for (const auto& p : r.path_patterns) o << " " << quoted(wildcard_to_regex(p));
      o << "\n";
      cond.append(n).append("_path");
    }
    if (!r.host_patterns.empty()) {
      // The Host header without its port; ELB host conditions are case-insensitive.
      o << "  acl " << n << "_host req.hdr(host),field(1,:) -i -m reg";
      for (const auto& p : r.host_patterns) o << " " << quoted(wildcard_to_regex(p));
      o << "\n";
      cond.append(cond.empty() ? "" : " ").append(n).append("_host");
    }
    conditions.push_back(cond);
  }
  const std::string unmatched = "{ var(" + std::string(kRouteVar) + ") -m found }";
  for (size_t i = 0; i < routes.size(); ++i) {
    // The first route that matches wins: later ones only look at requests still unrouted.
    std::string cond = i == 0 ? "" : "!" + unmatched;
    cond.append(cond.empty() || conditions[i].empty() ? "" : " ").append(conditions[i]);
    o << "  http-request set-var(" << kRouteVar << ") int(" << i << ")";
    if (!cond.empty()) o << " if " << cond;
    o << "\n";
  }
  for (size_t i = 0; i < routes.size(); ++i)
    if (routes[i]->fixed)
      o << "  " << return_rule(*routes[i]->fixed) << " if " << route_is(i) << "\n";
  // Requests no route matched get the default action; without one, 503 like an ELB whose
  // listener has nothing to forward to.
  if (f.default_backend.empty()) {
    o << "  " << return_rule(f.default_fixed.value_or(FixedResponse{503, "", ""}));
    if (!routes.empty()) o << " unless " << unmatched;
    o << "\n";
  }
  for (size_t i = 0; i < routes.size(); ++i)
    if (!routes[i]->fixed)
      o << "  use_backend " << backend_name(routes[i]->backend) << " if " << route_is(i) << "\n";
  if (!f.default_backend.empty())
    o << "  default_backend " << backend_name(f.default_backend) << "\n";
}

void render_backend(std::ostringstream& o, const Backend& b,
                    const std::vector<const Server*>& servers) {
  const HealthCheck& hc = b.health_check;
  o << "\nbackend " << backend_name(b.id) << "\n";
  o << "  balance roundrobin\n";
  if (hc.enabled) {
    o << "  option httpchk GET " << hc.path << "\n";
    o << "  http-check expect status " << expect_status(hc.matcher).value() << "\n";
    o << "  timeout check " << hc.timeout_seconds << "s\n";
    // Servers repeat these (dynamic ones ignore default-server); here they make the fingerprint
    // change with them, since the runtime API cannot change a server's check timing.
    o << "  default-server" << check_timing(hc) << "\n";
  }
  for (const Server* s : servers)
    o << "  server " << s->name << " " << server_arguments(*s, hc) << "\n";
}

// Everything but servers is what the fingerprint covers; `description` is left out of the hash.
std::string render(const DesiredState& d, const ConfigPaths& paths,
                   const std::vector<const Server*>& servers, std::string_view fingerprint) {
  std::ostringstream o;
  o << "# Generated by Berth; changes are overwritten.\n";
  o << "global\n";
  if (!fingerprint.empty()) o << "  description " << fingerprint_description(fingerprint) << "\n";
  // Two cores: 4096 connections (8k fds) is far below what they can proxy, and bounds memory.
  o << "  maxconn 4096\n";
  // After a reload, the old worker hands keep-alive clients "Connection: close" on their next
  // response over 5 s instead of closing idle connections at once (2.6 closes them otherwise).
  o << "  close-spread-time 5s\n";
  // Long transfers and WebSockets keep an old worker alive; ELB's default deregistration delay.
  o << "  hard-stop-after 5m\n";
  // expose-fd listeners: the new worker takes the listening sockets over, no connection refused.
  o << "  stats socket " << quoted(paths.admin_socket) << " level admin expose-fd listeners\n";
  o << "  server-state-file " << quoted(paths.server_state_file) << "\n";
  o << "\ndefaults\n";
  o << "  mode http\n";
  o << "  timeout connect 5s\n";
  // ELB's default idle timeout.
  o << "  timeout client 60s\n";
  o << "  timeout server 60s\n";
  o << "  timeout http-request 10s\n";
  o << "  timeout queue 30s\n";
  o << "  option redispatch\n";
  o << "  retries 3\n";
  o << "  retry-on conn-failure empty-response response-timeout\n";
  o << "  load-server-state-from-file global\n";

  for (const Frontend* f : sorted_by_id(d.frontends)) render_frontend(o, *f);
  for (const Backend* b : sorted_by_id(d.backends)) {
    std::vector<const Server*> mine;
    for (const Server* s : servers)
      if (s->backend == b->id) mine.push_back(s);
    render_backend(o, *b, mine);
  }
  return o.str();
}

// The paths are single-quoted in the configuration, and the run directory also appears in the
// `-S path,options` argument, where a comma would start the options.
Status validate_paths(const ConfigPaths& p) {
  for (const auto* s : {&p.admin_socket, &p.server_state_file})
    if (s->empty() || s->find_first_of("', \t\n") != std::string::npos)
      return invalid("unusable run directory path: " + *s);
  return {};
}

}  // namespace

std::string frontend_name(std::string_view id) { return "fe_" + std::string(id); }
std::string backend_name(std::string_view id) {
  return std::string(kBackendPrefix) + std::string(id);
}
std::string fingerprint_description(std::string_view fp) {
  return "berth-config-" + std::string(fp);
}

std::string wildcard_to_regex(std::string_view pattern) {
  std::string out = "^";
  for (char c : pattern) {
    switch (c) {
      case '*':
        out += ".*";
        break;
      case '?':
        out += '.';
        break;
      case '\\':
      case '^':
      case '$':
      case '.':
      case '|':
      case '+':
      case '(':
      case ')':
      case '[':
      case ']':
      case '{':
      case '}':
        out += '\\';
        out += c;
        break;
      case '\'':  // the pattern is single-quoted in the configuration
        out += "\\x27";
        break;
      default:
        out += c;
    }
  }
  return out + "$";
}

Result<std::string> expect_status(std::string_view matcher) {
  auto code = [](std::string_view s) {
    return s.size() == 3 &&
           std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }) &&
           s[0] >= '1' && s[0] <= '5';
  };
  if (matcher.empty()) return invalid("empty health check matcher");
  size_t start = 0;
  while (start <= matcher.size()) {
    size_t comma = matcher.find(',', start);
    std::string_view item = matcher.substr(
        start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    size_t dash = item.find('-');
    bool ok = dash == std::string_view::npos
                  ? code(item)
                  : code(item.substr(0, dash)) && code(item.substr(dash + 1)) &&
                        item.substr(0, dash) <= item.substr(dash + 1);
    if (!ok) return invalid("bad health check matcher '" + std::string(matcher) + "'");
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return std::string(matcher);
}

std::string server_arguments(const Server& s, const HealthCheck& hc) {
  std::string out = s.address + ":" + std::to_string(s.port);
  if (hc.enabled) out.append(" check").append(check_timing(hc));
  return out;
}

Status validate(const DesiredState& d) {
  std::set<std::string> backends;
  for (const auto& b : d.backends) {
    if (!valid_id(b.id)) return invalid("bad backend id '" + b.id + "'");
    if (!backends.insert(b.id).second) return invalid("duplicate backend '" + b.id + "'");
    const HealthCheck& hc = b.health_check;
    if (!hc.enabled) continue;
    if (!valid_check_path(hc.path)) return invalid("bad health check path '" + hc.path + "'");
    if (!valid_port(hc.port, true)) return invalid("bad health check port in " + b.id);
    if (hc.interval_seconds < 1 || hc.timeout_seconds < 1 || hc.healthy_threshold < 1 ||
        hc.unhealthy_threshold < 1)
      return invalid("health check interval, timeout and thresholds must be positive in " + b.id);
    BERTH_TRY(auto m, expect_status(hc.matcher));
    (void)m;
  }

  std::set<std::string> frontends;
  std::map<int, std::vector<std::string>> addresses_by_port;
  for (const auto& f : d.frontends) {
    if (!valid_id(f.id)) return invalid("bad frontend id '" + f.id + "'");
    if (!frontends.insert(f.id).second) return invalid("duplicate frontend '" + f.id + "'");
    if (!valid_address(f.address) || !valid_port(f.port))
      return invalid("bad listen address " + f.address + ":" + std::to_string(f.port));
    // HAProxy sets SO_REUSEPORT, so a second bind of the same port would silently share it.
    for (const auto& other : addresses_by_port[f.port])
      if (other == f.address || is_any_address(other) || is_any_address(f.address))
        return invalid("frontends share port " + std::to_string(f.port));
    addresses_by_port[f.port].push_back(f.address);
    if (!f.default_backend.empty() && !backends.count(f.default_backend))
      return invalid("frontend " + f.id + ": unknown default backend '" + f.default_backend + "'");
    if (f.default_fixed) {
      if (!f.default_backend.empty())
        return invalid("frontend " + f.id +
                       ": both a default backend and a default fixed response");
      BERTH_CHECK(validate_fixed(*f.default_fixed, "frontend " + f.id + " default"));
    }
    for (const auto& r : f.routes) {
      if (r.fixed) {
        if (!r.backend.empty())
          return invalid("frontend " + f.id + ": route with both a backend and a fixed response");
        BERTH_CHECK(
            validate_fixed(*r.fixed, "frontend " + f.id + " route " + std::to_string(r.priority)));
      } else if (!backends.count(r.backend)) {
        return invalid("frontend " + f.id + ": route to unknown backend '" + r.backend + "'");
      }
      for (const auto& p : r.path_patterns)
        if (!valid_path_pattern(p)) return invalid("bad path pattern '" + p + "'");
      for (const auto& p : r.host_patterns)
        if (!valid_host_pattern(p)) return invalid("bad host pattern '" + p + "'");
    }
  }

  std::set<std::pair<std::string, std::string>> servers;
  for (const auto& s : d.servers) {
    if (!backends.count(s.backend))
      return invalid("server " + s.name + ": unknown backend '" + s.backend + "'");
    if (!valid_id(s.name)) return invalid("bad server name '" + s.name + "'");
    if (!servers.insert({s.backend, s.name}).second)
      return invalid("duplicate server " + s.backend + "/" + s.name);
    if (!valid_address(s.address) || !valid_port(s.port))
      return invalid("bad server address " + s.address + ":" + std::to_string(s.port));
  }
  return {};
}

Result<std::string> config_fingerprint(const DesiredState& d, const ConfigPaths& paths) {
  BERTH_CHECK(validate(d));
  BERTH_CHECK(validate_paths(paths));
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx",
                static_cast<unsigned long long>(fnv1a(render(d, paths, {}, ""))));
  return std::string(buf);
}

Result<std::string> render_config(const DesiredState& d, const ConfigPaths& paths,
                                  const std::vector<Server>& servers) {
  BERTH_TRY(std::string fp, config_fingerprint(d, paths));
  std::vector<const Server*> sorted;
  for (const auto& s : servers) sorted.push_back(&s);
  std::sort(sorted.begin(), sorted.end(), [](const Server* a, const Server* b) {
    return std::tie(a->backend, a->name) < std::tie(b->backend, b->name);
  });
  return render(d, paths, sorted, fp);
}

}  // namespace berth::lb
