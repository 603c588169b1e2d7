#include "runtime/docker/docker_json.h"

#include <boost/json.hpp>
#include <charconv>
#include <cstdio>

#include "common/base64.h"

namespace berth::runtime::docker {
namespace json = boost::json;
namespace {

// Field access that tolerates absent keys and JSON nulls (Podman sends null for empty maps).
const json::value* field(const json::value& v, std::string_view key) {
  const json::object* o = v.if_object();
  if (!o) return nullptr;
  auto it = o->find(key);
  if (it == o->end() || it->value().is_null()) return nullptr;
  return &it->value();
}
std::string str(const json::value& v, std::string_view key) {
  const json::value* f = field(v, key);
  if (!f || !f->is_string()) return {};
  return std::string(f->get_string());
}
int64_t num(const json::value& v, std::string_view key) {
  const json::value* f = field(v, key);
  if (!f) return 0;
  if (f->is_int64()) return f->get_int64();
  if (f->is_uint64()) return static_cast<int64_t>(f->get_uint64());
  if (f->is_double()) return static_cast<int64_t>(f->get_double());
  return 0;
}
bool boolean(const json::value& v, std::string_view key) {
  const json::value* f = field(v, key);
  return f && f->is_bool() && f->get_bool();
}
Labels string_map(const json::value* v) {
  Labels out;
  if (!v || !v->is_object()) return out;
  for (const auto& kv : v->get_object())
    if (kv.value().is_string()) out[std::string(kv.key())] = std::string(kv.value().get_string());
  return out;
}
json::array string_array(const std::vector<std::string>& v) {
  json::array a;
  for (const auto& s : v) a.emplace_back(s);
  return a;
}

Result<json::value> parse_json(std::string_view text, std::string_view what) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec)
    return Error(Errc::engine, std::string(what) + ": malformed engine response: " + ec.message());
  return v;
}

uint16_t parse_port(std::string_view s) {
  unsigned v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && v <= 65535 ? static_cast<uint16_t>(v) : 0;
}

bool contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

}  // namespace

ImageRef split_image_ref(std::string_view ref) {
  if (auto at = ref.find('@'); at != std::string_view::npos)
    return {std::string(ref.substr(0, at)), std::string(ref.substr(at + 1))};
  // A ':' after the last '/' separates the tag; one before it is a registry port.
  auto colon = ref.rfind(':');
  auto slash = ref.rfind('/');
  if (colon != std::string_view::npos && (slash == std::string_view::npos || colon > slash))
    return {std::string(ref.substr(0, colon)), std::string(ref.substr(colon + 1))};
  return {std::string(ref), "latest"};
}

std::string url_encode(std::string_view s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::string filters_json(const std::map<std::string, std::vector<std::string>>& filters) {
  json::object o;
  for (const auto& [k, v] : filters)
    if (!v.empty()) o[k] = string_array(v);
  return json::serialize(o);
}

std::string registry_auth_header(const RegistryAuth& auth) {
  json::object o{{"username", auth.username},
                 {"password", auth.password},
                 {"serveraddress", auth.server_address}};
  // Docker decodes with Go's base64.URLEncoding.
  std::string b = base64_encode(json::serialize(o));
  for (char& c : b) c = c == '+' ? '-' : c == '/' ? '_' : c;
  return b;
}

Error error_from_response(int status, std::string_view body, std::string_view what) {
  std::string msg(body);
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  if (!ec && field(v, "message")) msg = str(v, "message");
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
  std::string full = std::string(what) + ": " + msg + " (HTTP " + std::to_string(status) + ")";
  switch (status) {
    case 404:
      return {Errc::not_found, full};
    case 409:
      return {Errc::conflict, full};
    case 400:
      return {Errc::bad_request, full};
    default:
      break;
  }
  if (status >= 500) {
    // Podman 4.3 uses 500 where Docker uses 409/404, and for an unknown executable at start.
    if (contains(msg, "already in use") || contains(msg, "container state improper") ||
        contains(msg, "is not running"))
      return {Errc::conflict, full};
    if (contains(msg, "no such container") || contains(msg, "no such image") ||
        contains(msg, "image not known"))
      return {Errc::not_found, full};
    if (contains(msg, "executable file not found") ||
        contains(msg, "attempted to invoke a command that was not found") ||
        contains(msg, "OCI permission denied"))
      return {Errc::bad_request, full};
    return {Errc::engine, full};
  }
  return {Errc::bad_request, full};  // 401, 403, 413...: the request will not succeed as is
}

std::optional<TimePoint> parse_time(std::string_view s) {
  int y, mo, d, h, mi, sec, consumed = 0;
  std::string buf(s.substr(0, 64));
  if (std::sscanf(buf.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec,
                  &consumed) != 6 ||
      y <= 1)
    return std::nullopt;
  using namespace std::chrono;
  auto days = sys_days(year(y) / month(static_cast<unsigned>(mo)) / day(static_cast<unsigned>(d)));
  nanoseconds t = days.time_since_epoch() + hours(h) + minutes(mi) + seconds(sec);
  std::string_view rest = s.substr(static_cast<size_t>(consumed));
  if (!rest.empty() && rest[0] == '.') {
    int64_t frac = 0;
    size_t digits = 0, i = 1;
    for (; i < rest.size() && std::isdigit(static_cast<unsigned char>(rest[i])); ++i)
      if (digits < 9) frac = frac * 10 + (rest[i] - '0'), ++digits;
    for (; digits < 9; ++digits) frac *= 10;
    t += nanoseconds(frac);
    rest = rest.substr(i);
  }
  if (rest.size() >= 6 && (rest[0] == '+' || rest[0] == '-')) {
    int oh = 0, om = 0;
    if (std::sscanf(std::string(rest.substr(1, 5)).c_str(), "%2d:%2d", &oh, &om) == 2) {
      auto off = hours(oh) + minutes(om);
      t += rest[0] == '+' ? -off : off;
    }
  }
  return TimePoint(duration_cast<system_clock::duration>(t));
}

Result<EngineVersion> parse_version(std::string_view text) {
  BERTH_TRY(json::value v, parse_json(text, "version"));
  EngineVersion out{.name = "Docker Engine",
                    .version = str(v, "Version"),
                    .api_version = str(v, "ApiVersion"),
                    .os = str(v, "Os"),
                    .arch = str(v, "Arch"),
                    .kernel = str(v, "KernelVersion")};
  if (const json::value* comps = field(v, "Components"); comps && comps->is_array())
    for (const auto& c : comps->get_array())
      if (auto n = str(c, "Name"); n.find("Engine") != std::string::npos) out.name = n;
  return out;
}

Result<ImageInfo> parse_image_inspect(std::string_view text, std::string_view ref) {
  BERTH_TRY(json::value v, parse_json(text, "inspect image"));
  ImageInfo out;
  out.id = str(v, "Id");
  if (out.id.empty()) return Error(Errc::engine, "inspect image: response has no Id");
  if (const json::value* tags = field(v, "RepoTags"); tags && tags->is_array())
    for (const auto& t : tags->get_array())
      if (t.is_string()) out.repo_tags.emplace_back(t.get_string());
  // RepoDigests entries are "repo@sha256:..."; prefer the one for the pulled repository.
  std::string repo = split_image_ref(ref).repository;
  if (const json::value* digests = field(v, "RepoDigests"); digests && digests->is_array()) {
    for (const auto& d : digests->get_array()) {
      if (!d.is_string()) continue;
      std::string_view s = d.get_string();
      auto at = s.find('@');
      if (at == std::string_view::npos) continue;
      std::string_view r = s.substr(0, at);
      bool match = r == repo || (r.size() > repo.size() && r.ends_with("/" + repo));
      if (match || out.digest.empty()) out.digest = std::string(s.substr(at + 1));
      if (match) break;
    }
  }
  return out;
}

namespace {

// NetworkSettings.Ports: {"80/tcp": [{"HostIp": "", "HostPort": "35207"}] or null}.
std::vector<PortBinding> parse_port_map(const json::value* ports) {
  std::vector<PortBinding> out;
  if (!ports || !ports->is_object()) return out;
  for (const auto& kv : ports->get_object()) {
    std::string_view key = kv.key();
    auto slash = key.find('/');
    uint16_t cport = parse_port(key.substr(0, slash));
    Protocol proto = slash != std::string_view::npos && key.substr(slash + 1) == "udp"
                         ? Protocol::udp
                         : Protocol::tcp;
    if (!kv.value().is_array()) continue;  // exposed but not published
    for (const auto& b : kv.value().get_array())
      out.push_back({cport, proto, str(b, "HostIp"), parse_port(str(b, "HostPort"))});
  }
  return out;
}

std::string strip_slash(std::string name) {
  if (!name.empty() && name[0] == '/') name.erase(0, 1);
  return name;
}

}  // namespace

Result<ContainerState> parse_inspect(std::string_view text) {
  BERTH_TRY(json::value v, parse_json(text, "inspect"));
  ContainerState s;
  s.id = str(v, "Id");
  if (s.id.empty()) return Error(Errc::engine, "inspect: response has no Id");
  s.name = strip_slash(str(v, "Name"));
  s.image_id = str(v, "Image");
  s.created_at = parse_time(str(v, "Created"));
  if (const json::value* config = field(v, "Config")) {
    s.image = str(*config, "Image");
    s.labels = string_map(field(*config, "Labels"));
  }
  if (const json::value* st = field(v, "State")) {
    s.status = parse_container_status(str(*st, "Status"));
    s.running = boolean(*st, "Running");
    s.exit_code = static_cast<int>(num(*st, "ExitCode"));
    s.error = str(*st, "Error");
    s.oom_killed = boolean(*st, "OOMKilled");
    s.started_at = parse_time(str(*st, "StartedAt"));
    s.finished_at = parse_time(str(*st, "FinishedAt"));
    if (const json::value* h = field(*st, "Health")) {
      s.health = parse_health_status(str(*h, "Status"));
      if (const json::value* log = field(*h, "Log");
          log && log->is_array() && !log->get_array().empty())
        s.health_output = str(log->get_array().back(), "Output");
    }
  }
  if (const json::value* host = field(v, "HostConfig")) s.memory_bytes = num(*host, "Memory");
  if (const json::value* net = field(v, "NetworkSettings"))
    s.ports = parse_port_map(field(*net, "Ports"));
  return s;
}

Result<std::vector<ContainerState>> parse_list(std::string_view text) {
  BERTH_TRY(json::value v, parse_json(text, "list"));
  if (!v.is_array()) return Error(Errc::engine, "list: response is not an array");
  std::vector<ContainerState> out;
  for (const auto& c : v.get_array()) {
    ContainerState s;
    s.id = str(c, "Id");
    if (const json::value* names = field(c, "Names"); names && names->is_array() &&
                                                      !names->get_array().empty() &&
                                                      names->get_array()[0].is_string())
      s.name = strip_slash(std::string(names->get_array()[0].get_string()));
    s.image = str(c, "Image");
    s.image_id = str(c, "ImageID");
    s.status = parse_container_status(str(c, "State"));
    s.running = s.status == ContainerStatus::running;
    s.labels = string_map(field(c, "Labels"));
    if (int64_t created = num(c, "Created"))
      s.created_at = TimePoint(std::chrono::seconds(created));
    // Status text: "Exited (3) 5 seconds ago" on both engines.
    std::string status_text = str(c, "Status");
    if (auto p = status_text.find("Exited ("); p != std::string::npos)
      s.exit_code = std::atoi(status_text.c_str() + p + 8);
    if (const json::value* ports = field(c, "Ports"); ports && ports->is_array())
      for (const auto& p : ports->get_array()) {
        if (num(p, "PublicPort") == 0) continue;
        s.ports.push_back({static_cast<uint16_t>(num(p, "PrivatePort")),
                           str(p, "Type") == "udp" ? Protocol::udp : Protocol::tcp, str(p, "IP"),
                           static_cast<uint16_t>(num(p, "PublicPort"))});
      }
    out.push_back(std::move(s));
  }
  return out;
}

Result<StatsSample> parse_stats(std::string_view text) {
  BERTH_TRY(json::value v, parse_json(text, "stats"));
  StatsSample s;
  s.read = parse_time(str(v, "read")).value_or(TimePoint{});
  if (const json::value* cpu = field(v, "cpu_stats")) {
    if (const json::value* usage = field(*cpu, "cpu_usage"))
      s.cpu_total_ns = static_cast<uint64_t>(num(*usage, "total_usage"));
    s.system_cpu_ns = static_cast<uint64_t>(num(*cpu, "system_cpu_usage"));
    s.online_cpus = static_cast<uint32_t>(num(*cpu, "online_cpus"));
  }
  if (const json::value* mem = field(v, "memory_stats")) {
    uint64_t usage = static_cast<uint64_t>(num(*mem, "usage"));
    uint64_t cache = 0;
    // As `docker stats`: cgroup v1 "total_inactive_file", v2 "inactive_file" (Podman sends none).
    if (const json::value* st = field(*mem, "stats")) {
      cache = static_cast<uint64_t>(num(*st, "total_inactive_file"));
      if (cache == 0) cache = static_cast<uint64_t>(num(*st, "inactive_file"));
    }
    s.memory_usage = cache < usage ? usage - cache : usage;
    s.memory_limit = static_cast<uint64_t>(num(*mem, "limit"));
  }
  return s;
}

Result<Event> parse_event(std::string_view line) {
  BERTH_TRY(json::value v, parse_json(line, "event"));
  Event e;
  e.type = str(v, "Type");
  std::string action = str(v, "Action");
  if (action.empty()) action = str(v, "status");  // pre-1.22 field, still sent by both
  // Docker appends details: "health_status: healthy", "exec_start: sh -c ...".
  std::string detail;
  if (auto p = action.find(": "); p != std::string::npos) {
    detail = action.substr(p + 2);
    action.resize(p);
  }
  e.action = action;
  const json::value* actor = field(v, "Actor");
  e.id = actor ? str(*actor, "ID") : std::string();
  if (e.id.empty()) e.id = str(v, "id");
  Labels attrs = string_map(actor ? field(*actor, "Attributes") : nullptr);
  if (auto it = attrs.find("exitCode"); it != attrs.end() && e.action == "die")
    e.exit_code = std::atoi(it->second.c_str());
  if (e.action == "health_status") {
    e.health = parse_health_status(detail);
    // Some Podman versions put it in an attribute instead.
    if (e.health == HealthStatus::none) e.health = parse_health_status(attrs["health_status"]);
  }
  e.name = attrs["name"];
  e.image = attrs["image"];
  if (e.image.empty()) e.image = str(v, "from");
  // Engine-owned attribute keys; what remains are the container's labels.
  for (const char* k : {"name", "image", "exitCode", "containerExitCode", "podId", "signal",
                        "execID", "health_status", "execDuration"})
    attrs.erase(k);
  e.labels = std::move(attrs);
  if (int64_t ns = num(v, "timeNano")) {
    e.time = TimePoint(std::chrono::duration_cast<std::chrono::system_clock::duration>(
        std::chrono::nanoseconds(ns)));
  } else {
    e.time = TimePoint(std::chrono::seconds(num(v, "time")));
  }
  return e;
}

Status check_pull_progress(std::string_view line) {
  boost::system::error_code ec;
  json::value v = json::parse(line, ec);
  if (ec) return {};  // progress lines are informational; a garbled one is not a failure
  std::string msg;
  if (const json::value* d = field(v, "errorDetail")) msg = str(*d, "message");
  if (msg.empty()) msg = str(v, "error");
  if (msg.empty()) return {};
  return Error(Errc::pull_failed, msg);
}

std::optional<std::string> pull_digest(std::string_view line) {
  if (line.find("Digest: ") == std::string_view::npos) return std::nullopt;  // cheap pre-check
  boost::system::error_code ec;
  json::value v = json::parse(line, ec);
  if (ec) return std::nullopt;
  std::string status = str(v, "status");
  if (status.rfind("Digest: ", 0) != 0) return std::nullopt;
  return status.substr(8);
}

void LineSplitter::feed(std::string_view chunk,
                        const std::function<void(std::string_view)>& on_line) {
  partial_.append(chunk);
  size_t start = 0;
  for (size_t nl; (nl = partial_.find('\n', start)) != std::string::npos; start = nl + 1) {
    std::string_view line(partial_.data() + start, nl - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (!line.empty()) on_line(line);
  }
  partial_.erase(0, start);
}

void ExecStreamDemuxer::keep(std::string_view bytes) {
  size_t room = max_ > out_.size() ? max_ - out_.size() : 0;
  if (bytes.size() > room) truncated_ = true;
  out_.append(bytes.substr(0, room));
}

void ExecStreamDemuxer::feed(std::string_view chunk) {
  if (mode_ == Mode::unknown && !chunk.empty())
    mode_ = static_cast<unsigned char>(chunk[0]) <= 2 ? Mode::framed : Mode::raw;
  if (mode_ == Mode::raw) return keep(chunk);
  while (!chunk.empty()) {
    if (frame_left_ > 0) {
      size_t n = std::min(frame_left_, chunk.size());
      keep(chunk.substr(0, n));
      frame_left_ -= n;
      chunk.remove_prefix(n);
      continue;
    }
    size_t need = 8 - header_.size();
    header_.append(chunk.substr(0, need));
    chunk.remove_prefix(std::min(need, chunk.size()));
    if (header_.size() < 8) return;
    auto b = [&](int i) { return static_cast<size_t>(static_cast<unsigned char>(header_[i])); };
    frame_left_ = b(4) << 24 | b(5) << 16 | b(6) << 8 | b(7);
    header_.clear();
  }
}

}  // namespace berth::runtime::docker
