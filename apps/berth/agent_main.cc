// `berth agent`: wires the DockerDriver, the task engine, the checkpoint and the session.

#include "agent_main.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <boost/json/serialize.hpp>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <thread>

#include "agent/api_client.h"
#include "agent/capabilities.h"
#include "agent/session.h"
#include "agent/task_engine.h"
#include "runtime/docker/docker_driver.h"

namespace berth::apps {

namespace json = boost::json;
using namespace std::chrono_literals;

Result<api::AccessKey> load_access_key(const std::string& path, const std::string& profile) {
  auto store = api::CredentialStore::load(path);
  if (!store.ok()) return store.error();
  const api::AccessKey* key = store->profile(profile);
  if (key == nullptr) {
    return Error(
        std::make_error_code(std::errc::invalid_argument),
        "no profile " + (profile.empty() ? std::string("with a key") : profile) + " in " + path);
  }
  return *key;
}

std::atomic<bool>& stop_requested() {
  static std::atomic<bool> flag{false};
  return flag;
}

void install_stop_handlers() {
  struct sigaction sa {};
  sa.sa_handler = [](int) { stop_requested() = true; };
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
}

namespace {

// `HOST=FILE` of --registry-auth: FILE holds `username:password` (one line) and must not be
// readable by anyone but its owner, as the password would otherwise leak to every local user.
// Until Berth has a secrets store for repositoryCredentials.credentialsParameter, the host's
// operator provides registry credentials here.
Result<std::pair<std::string, runtime::RegistryAuth>> load_registry_auth(const std::string& arg) {
  auto invalid = [&](const std::string& why) {
    return Error(std::make_error_code(std::errc::invalid_argument),
                 "--registry-auth " + arg + ": " + why);
  };
  auto eq = arg.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == arg.size())
    return invalid("expected HOST=FILE");
  std::string host = arg.substr(0, eq), path = arg.substr(eq + 1);
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return invalid("cannot stat " + path);
  if ((st.st_mode & 077) != 0) return invalid(path + " must be mode 0600 (chmod 600 " + path + ")");
  std::ifstream in(path);
  std::string line;
  if (!in || !std::getline(in, line)) return invalid("cannot read " + path);
  while (!line.empty() && (line.back() == '\r' || line.back() == '\n')) line.pop_back();
  auto colon = line.find(':');
  if (colon == std::string::npos || colon == 0)
    return invalid(path + " must hold username:password");
  return std::pair{host, runtime::RegistryAuth{.username = line.substr(0, colon),
                                               .password = line.substr(colon + 1),
                                               .server_address = host}};
}

// A stable id per (machine, data dir): several agents on one machine are distinct instances,
// and the same agent keeps its id across restarts.
std::string default_instance_id(const std::string& data_dir) {
  std::ifstream in("/etc/machine-id");
  std::string mid;
  std::getline(in, mid);
  uint64_t h = 1469598103934665603ULL;  // FNV-1a
  for (char c : mid + std::filesystem::absolute(data_dir).string()) {
    h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ULL;
  }
  char buf[24];
  std::snprintf(buf, sizeof buf, "i-%017llx",
                static_cast<unsigned long long>(h & 0xFFFFFFFFFFFFFFFULL));
  return buf;
}

// The local address the kernel would use to reach `host` (a UDP connect sends nothing).
std::string local_address_towards(const std::string& host, uint16_t port) {
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_DGRAM;
  addrinfo* res = nullptr;
  std::string out = "127.0.0.1";
  if (::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res) != 0) return out;
  int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  if (fd >= 0 && ::connect(fd, res->ai_addr, res->ai_addrlen) == 0) {
    sockaddr_in local{};
    socklen_t len = sizeof local;
    char buf[INET_ADDRSTRLEN];
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len) == 0 &&
        ::inet_ntop(AF_INET, &local.sin_addr, buf, sizeof buf) != nullptr)
      out = buf;
  }
  if (fd >= 0) ::close(fd);
  ::freeaddrinfo(res);
  return out;
}

json::object registration(const AgentFlags& f, runtime::Driver& driver,
                          const std::string& host_address) {
  long cores = ::sysconf(_SC_NPROCESSORS_ONLN);
  struct sysinfo si {};
  ::sysinfo(&si);
  int64_t mem_mib =
      static_cast<int64_t>(si.totalram) * si.mem_unit / (1024 * 1024) - f.reserved_memory_mib;
  json::array ports;
  std::stringstream ss(f.reserved_ports);
  for (std::string p; std::getline(ss, p, ',');) {
    if (!p.empty()) ports.emplace_back(p);
  }
  json::array resources{
      json::object{{"name", "CPU"}, {"type", "INTEGER"}, {"integerValue", cores * 1024}},
      json::object{
          {"name", "MEMORY"}, {"type", "INTEGER"}, {"integerValue", std::max<int64_t>(0, mem_mib)}},
      json::object{{"name", "PORTS"}, {"type", "STRINGSET"}, {"stringSetValue", ports}},
      json::object{
          {"name", "PORTS_UDP"}, {"type", "STRINGSET"}, {"stringSetValue", json::array{}}}};
  struct utsname u {};
  ::uname(&u);
  std::string arch = u.machine;
  if (arch == "aarch64") arch = "arm64";
  json::array attrs;
  auto add = [&](const std::string& k, const std::string& v = "") {
    json::object a{{"name", k}};
    if (!v.empty()) a["value"] = v;
    attrs.push_back(std::move(a));
  };
  add("ecs.os-type", "linux");
  add("ecs.cpu-architecture", arch);
  if (!f.availability_zone.empty()) add("ecs.availability-zone", f.availability_zone);
  if (!f.instance_type.empty()) add("ecs.instance-type", f.instance_type);
  for (const auto& c : agent::capability_attributes()) add(c);
  add("berth.host-address", host_address);
  for (const auto& kv : f.attributes) {
    auto eq = kv.find('=');
    add(kv.substr(0, eq), eq == std::string::npos ? "" : kv.substr(eq + 1));
  }
  std::string docker_version = "unknown";
  if (auto v = driver.version(); v.ok()) docker_version = v->name + " " + v->version;
  json::object identity{
      {"instanceId", f.instance_id.empty() ? default_instance_id(f.data_dir) : f.instance_id},
      {"availabilityZone", f.availability_zone},
      {"instanceType", f.instance_type}};
  return json::object{
      {"totalResources", std::move(resources)},
      {"attributes", std::move(attrs)},
      {"versionInfo", json::object{{"agentVersion", "berth-agent 0.1.0"},
                                   {"agentHash", "berth"},
                                   {"dockerVersion", "DockerVersion: " + docker_version}}},
      {"instanceIdentityDocument", json::serialize(identity)}};
}

}  // namespace

int run_agent(const AgentFlags& f, const std::atomic<bool>& stop,
              const std::function<void(const std::string&)>& on_registered) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(f.data_dir, ec);
  auto endpoint = agent::Endpoint::parse(f.server);
  if (!endpoint.ok()) {
    std::fprintf(stderr, "berth agent: %s\n", endpoint.error().message.c_str());
    return 2;
  }
  auto key = load_access_key(f.credentials, f.profile);
  if (!key.ok()) {
    std::fprintf(stderr, "berth agent: %s\n", key.error().message.c_str());
    return 2;
  }
  constexpr std::string_view kUnix = "unix://";
  if (!f.engine.starts_with(kUnix)) {
    std::fprintf(stderr, "berth agent: --engine must be unix:///path.sock\n");
    return 2;
  }
  std::map<std::string, runtime::RegistryAuth> registry_auth;
  for (const auto& arg : f.registry_auth) {
    auto a = load_registry_auth(arg);
    if (!a.ok()) {
      std::fprintf(stderr, "berth agent: %s\n", a.error().message.c_str());
      return 2;
    }
    registry_auth[a->first] = std::move(a->second);
  }
  runtime::DockerDriver driver(f.engine.substr(kUnix.size()));
  // The engine may still be starting (berth dev starts Podman's service just before).
  for (int i = 0; !driver.ping().ok(); ++i) {
    if (stop || i == 100) {
      std::fprintf(stderr, "berth agent: engine %s does not answer\n", f.engine.c_str());
      return 1;
    }
    std::this_thread::sleep_for(100ms);
  }

  if (in_addr probe{};
      !f.host_address.empty() && ::inet_pton(AF_INET, f.host_address.c_str(), &probe) != 1) {
    std::fprintf(stderr, "berth agent: --host-address must be an IPv4 address, not %s\n",
                 f.host_address.c_str());
    return 2;
  }
  SystemClock clock;
  agent::ApiClient api(*endpoint, *key, f.region, clock);
  agent::SessionConfig sc;
  sc.cluster = f.cluster;
  sc.registration =
      registration(f, driver,
                   f.host_address.empty() ? local_address_towards(endpoint->host, endpoint->port)
                                          : f.host_address);
  agent::Session session(api, sc);

  agent::TaskConfig tc;
  tc.cluster = f.cluster;
  tc.safety.allow_privileged = f.allow_privileged;
  tc.safety.allowed_host_paths = f.allowed_host_paths;
  tc.registry_auth = std::move(registry_auth);
  agent::Checkpoint checkpoint((fs::path(f.data_dir) / "agent-checkpoint.json").string());
  agent::TaskEngine engine(driver, checkpoint, tc,
                           [&session](const json::object& r) { session.submit(r); });
  session.set_engine(&engine);
  if (auto st = engine.restore(); !st.ok()) {
    std::fprintf(stderr, "berth agent: %s\n", st.error().message.c_str());
    return 1;
  }
  engine.watch_events();

  std::string arn = engine.saved_instance_arn();
  auto backoff = 100ms;
  while (true) {
    auto r = session.register_instance(arn);
    if (r.ok()) {
      arn = *r;
      break;
    }
    std::fprintf(stderr, "berth agent: register: %s\n", r.error().message.c_str());
    if (!agent::retriable(r.error())) return 1;
    for (auto until = std::chrono::steady_clock::now() + backoff;
         std::chrono::steady_clock::now() < until;) {
      if (stop) return 0;
      std::this_thread::sleep_for(50ms);
    }
    backoff = std::min<std::chrono::milliseconds>(backoff * 2, 5s);
  }
  if (auto st = engine.set_instance_arn(arn); !st.ok()) {
    std::fprintf(stderr, "berth agent: checkpoint: %s\n", st.error().message.c_str());
    return 1;
  }
  on_registered(arn);
  session.run(stop, arn);
  return 0;
}

void add_agent_command(CLI::App& app, std::function<int()>& run) {
  static AgentFlags f;
  auto* cmd = app.add_subcommand("agent", "Run the agent: registers this host and runs its tasks");
  cmd->add_option("--server", f.server, "Server endpoint, http://HOST:PORT")->required();
  cmd->add_option("--cluster", f.cluster, "Cluster to join")->capture_default_str();
  cmd->add_option("--credentials", f.credentials, "AWS shared-credentials file")->required();
  cmd->add_option("--profile", f.profile, "Profile in the credentials file (default: the first)");
  cmd->add_option("--region", f.region, "Region for signatures")->capture_default_str();
  cmd->add_option("--data-dir", f.data_dir, "Directory for the checkpoint")->capture_default_str();
  cmd->add_option("--engine", f.engine, "Docker Engine API socket, unix:///path.sock")
      ->capture_default_str();
  cmd->add_option("--reserved-memory", f.reserved_memory_mib, "MiB kept for the host")
      ->capture_default_str();
  cmd->add_option("--reserved-ports", f.reserved_ports, "Host ports tasks may not use")
      ->capture_default_str();
  cmd->add_option("--availability-zone", f.availability_zone, "ecs.availability-zone attribute");
  cmd->add_option("--host-address", f.host_address,
                  "Address load balancers use to reach this host's ports (default: the local "
                  "address of the route to the server)");
  cmd->add_option("--instance-type", f.instance_type, "ecs.instance-type attribute")
      ->capture_default_str();
  cmd->add_option("--attribute", f.attributes, "Custom attribute k=v (repeatable)");
  cmd->add_option("--instance-id", f.instance_id,
                  "Instance id (default: derived from machine-id and data dir)");
  cmd->add_flag("--allow-privileged", f.allow_privileged,
                "Allow privileged containers, host PID/IPC, added capabilities and devices");
  cmd->add_option("--allowed-host-path", f.allowed_host_paths,
                  "Root under which host volumes may be (repeatable)");
  cmd->add_option("--registry-auth", f.registry_auth,
                  "HOST=FILE: pull images from registry HOST with the username:password in FILE "
                  "(mode 0600; repeatable)");
  cmd->callback([&run] {
    run = [] {
      install_stop_handlers();
      return run_agent(f, stop_requested(), [](const std::string& arn) {
        std::printf("berth agent registered %s\n", arn.c_str());
        std::fflush(stdout);
      });
    };
  });
}

}  // namespace berth::apps
