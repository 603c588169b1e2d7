// The body of POST /containers/create: an ECS container definition in Docker's terms.
#include <boost/json.hpp>

#include "runtime/docker/docker_json.h"

namespace berth::runtime::docker {
namespace json = boost::json;
namespace {

json::array string_array(const std::vector<std::string>& v) {
  json::array a;
  for (const auto& s : v) a.emplace_back(s);
  return a;
}

const char* proto_name(Protocol p) { return p == Protocol::udp ? "udp" : "tcp"; }

}  // namespace

std::string create_body(const ContainerSpec& s) {
  json::object c;
  c["Image"] = s.image;
  if (!s.entrypoint.empty()) c["Entrypoint"] = string_array(s.entrypoint);
  if (!s.command.empty()) c["Cmd"] = string_array(s.command);
  json::array env;
  for (const auto& [k, v] : s.env) env.emplace_back(k + "=" + v);
  c["Env"] = std::move(env);
  json::object labels;
  for (const auto& [k, v] : s.labels) labels[k] = v;
  c["Labels"] = std::move(labels);
  if (!s.working_dir.empty()) c["WorkingDir"] = s.working_dir;
  if (!s.user.empty()) c["User"] = s.user;
  if (!s.hostname.empty()) c["Hostname"] = s.hostname;
  if (s.stop_timeout) c["StopTimeout"] = s.stop_timeout->count();
  if (s.healthcheck) {
    const HealthCheck& h = *s.healthcheck;
    auto ns = [](std::chrono::milliseconds d) { return d.count() * 1'000'000; };
    c["Healthcheck"] = json::object{{"Test", string_array(h.test)},
                                    {"Interval", ns(h.interval)},
                                    {"Timeout", ns(h.timeout)},
                                    {"StartPeriod", ns(h.start_period)},
                                    {"Retries", h.retries}};
  }

  json::object host;
  const bool publish = s.network_mode == NetworkMode::bridge;
  json::object exposed, bindings;
  for (const PortMapping& p : s.ports) {
    std::string key = std::to_string(p.container_port) + "/" + proto_name(p.protocol);
    exposed[key] = json::object();
    if (!publish) continue;
    // HostPort "" asks for a dynamic port on both Docker and Podman ("0" only on Podman).
    json::object b{{"HostIp", p.host_ip},
                   {"HostPort", p.host_port ? std::to_string(p.host_port) : std::string()}};
    auto it = bindings.find(key);
    if (it == bindings.end()) {
      bindings[key] = json::array{std::move(b)};
    } else {
      it->value().as_array().emplace_back(std::move(b));
    }
  }
  if (!exposed.empty()) c["ExposedPorts"] = std::move(exposed);
  if (!bindings.empty()) host["PortBindings"] = std::move(bindings);
  host["NetworkMode"] = s.network_mode == NetworkMode::host   ? "host"
                        : s.network_mode == NetworkMode::none ? "none"
                                                              : "bridge";
  if (s.cpu_shares > 0) host["CpuShares"] = s.cpu_shares;
  if (s.memory_bytes > 0) host["Memory"] = s.memory_bytes;
  if (s.memory_reservation_bytes > 0) host["MemoryReservation"] = s.memory_reservation_bytes;
  json::array ulimits;
  for (const Ulimit& u : effective_ulimits(s))
    ulimits.push_back(json::object{{"Name", u.name}, {"Soft", u.soft}, {"Hard", u.hard}});
  host["Ulimits"] = std::move(ulimits);
  // Binds (not Mounts): Docker creates a missing bind source and a missing named volume for
  // Binds, as the ECS agent relies on, while Mounts rejects a missing source.
  json::array binds;
  json::object tmpfs;
  for (const Mount& m : s.mounts) {
    if (m.kind == MountKind::tmpfs) {
      tmpfs[m.target] = m.read_only ? "ro" : "";
    } else {
      binds.emplace_back(m.source + ":" + m.target + (m.read_only ? ":ro" : ":rw"));
    }
  }
  if (!binds.empty()) host["Binds"] = std::move(binds);
  if (!tmpfs.empty()) host["Tmpfs"] = std::move(tmpfs);
  if (!s.log.driver.empty()) {
    json::object opts;
    for (const auto& [k, v] : s.log.options) opts[k] = v;
    host["LogConfig"] = json::object{{"Type", s.log.driver}, {"Config", std::move(opts)}};
  }
  if (s.privileged) host["Privileged"] = true;
  if (s.readonly_rootfs) host["ReadonlyRootfs"] = true;
  if (s.init) host["Init"] = true;
  if (!s.dns_servers.empty()) host["Dns"] = string_array(s.dns_servers);
  if (!s.dns_search.empty()) host["DnsSearch"] = string_array(s.dns_search);
  if (!s.extra_hosts.empty()) {
    json::array hosts;
    for (const auto& [name, ip] : s.extra_hosts) hosts.emplace_back(name + ":" + ip);
    host["ExtraHosts"] = std::move(hosts);
  }
  if (!s.security_opts.empty()) host["SecurityOpt"] = string_array(s.security_opts);
  if (!s.sysctls.empty()) {
    json::object sysctls;
    for (const auto& [k, v] : s.sysctls) sysctls[k] = v;
    host["Sysctls"] = std::move(sysctls);
  }
  c["HostConfig"] = std::move(host);
  return json::serialize(c);
}

}  // namespace berth::runtime::docker
