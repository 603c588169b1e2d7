#include "runtime/docker/docker_driver.h"

#include <boost/json.hpp>
#include <cstdio>
#include <future>
#include <thread>

#include "runtime/docker/docker_json.h"

namespace berth::runtime {
namespace json = boost::json;
using docker::HttpRequest;
using docker::HttpResponse;
using docker::UnixHttpClient;
using namespace std::chrono_literals;

namespace {

constexpr const char* kPreferredApi = "1.40";

// "1.40" -> 1040, for comparing API versions.
int api_number(std::string_view v) {
  int major = 0, minor = 0;
  std::sscanf(std::string(v).c_str(), "%d.%d", &major, &minor);
  return major * 1000 + minor;
}

// Keeps '/', ':' and '@' so image references stay routable ("localhost/x:1" in the path).
std::string path_encode(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '/' || c == ':' || c == '@') {
      out += c;
    } else {
      out += docker::url_encode(std::string_view(&c, 1));
    }
  }
  return out;
}

Error with_context(Error e, std::string_view what) {
  e.message = std::string(what) + ": " + e.message;
  return e;
}

class DockerEventSubscription final : public EventSubscription {
 public:
  ~DockerEventSubscription() override { cancel(); }
  void cancel() override {
    canceller_.cancel();
    if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
  }

  docker::StreamCanceller canceller_;
  std::thread thread_;
};

}  // namespace

DockerDriver::DockerDriver(std::string socket_path, Timeouts timeouts)
    : http_(std::move(socket_path)), timeouts_(timeouts) {}

Result<std::string> DockerDriver::api(std::string_view path) {
  {
    std::lock_guard lock(mu_);
    if (!prefix_.empty()) return prefix_ + std::string(path);
  }
  // Negotiated without the lock (no lock across I/O); concurrent first calls may each ask.
  auto r = http_.call({.method = "GET", .target = "/version"}, timeouts_.ping);
  if (!r.ok()) return r.error();
  if (r->status != 200) return docker::error_from_response(r->status, r->body, "version");
  boost::system::error_code ec;
  json::value v = json::parse(r->body, ec);
  std::string min_api;
  if (!ec && v.is_object() && v.as_object().contains("MinAPIVersion") &&
      v.at("MinAPIVersion").is_string())
    min_api = v.at("MinAPIVersion").as_string().c_str();
  std::string prefix = std::string("/v") +
                       (api_number(min_api) > api_number(kPreferredApi) ? min_api : kPreferredApi);
  std::lock_guard lock(mu_);
  prefix_ = prefix;
  return prefix_ + std::string(path);
}

Result<HttpResponse> DockerDriver::call(std::string method, std::string_view path,
                                        std::chrono::milliseconds timeout, std::string body) {
  BERTH_TRY(std::string target, api(path));
  return http_.call({.method = std::move(method), .target = target, .body = std::move(body)},
                    timeout);
}

Status DockerDriver::ping() {
  auto r = http_.call({.method = "GET", .target = "/_ping"}, timeouts_.ping);
  if (!r.ok()) return r.error();
  if (r->status != 200) return docker::error_from_response(r->status, r->body, "ping");
  return {};
}

Result<EngineVersion> DockerDriver::version() {
  auto r = http_.call({.method = "GET", .target = "/version"}, timeouts_.ping);
  if (!r.ok()) return r.error();
  if (r->status != 200) return docker::error_from_response(r->status, r->body, "version");
  return docker::parse_version(r->body);
}

Result<bool> DockerDriver::image_present(const std::string& image) {
  BERTH_TRY(auto r, call("GET", "/images/" + path_encode(image) + "/json", timeouts_.inspect));
  if (r.status == 200) return true;
  if (r.status == 404) return false;
  return docker::error_from_response(r.status, r.body, "inspect image " + image);
}

Result<ImageInfo> DockerDriver::inspect_image(const std::string& image) {
  BERTH_TRY(auto r, call("GET", "/images/" + path_encode(image) + "/json", timeouts_.inspect));
  if (r.status != 200)
    return docker::error_from_response(r.status, r.body, "inspect image " + image);
  return docker::parse_image_inspect(r.body, image);
}

Result<ImageInfo> DockerDriver::pull(const std::string& image,
                                     const std::optional<RegistryAuth>& auth) {
  const std::string what = "pull " + image;
  docker::ImageRef ref = docker::split_image_ref(image);
  BERTH_TRY(std::string target,
            api("/images/create?fromImage=" + docker::url_encode(ref.repository) +
                "&tag=" + docker::url_encode(ref.tag)));
  HttpRequest req{.method = "POST", .target = target};
  if (auth) req.headers.emplace_back("X-Registry-Auth", docker::registry_auth_header(*auth));

  // Registry failures arrive inside the 200 stream as {"errorDetail": ...}: stop at the first.
  std::optional<Error> failure;
  std::optional<std::string> digest;
  docker::LineSplitter lines;
  auto on_line = [&](std::string_view line) {
    if (failure) return;
    if (Status s = docker::check_pull_progress(line); !s.ok()) failure = std::move(s).error();
    if (auto d = docker::pull_digest(line)) digest = std::move(d);
  };
  auto r = http_.stream(req,
                        {.total = timeouts_.pull,
                         .inactivity = timeouts_.pull_inactivity,
                         .header = timeouts_.pull_inactivity},
                        [&](std::string_view piece) {
                          lines.feed(piece, on_line);
                          return !failure.has_value();
                        });
  if (!r.ok()) return with_context(std::move(r).error(), what);
  if (!failure && !lines.pending().empty()) on_line(lines.pending());
  if (failure) return Error(Errc::pull_failed, what + ": " + failure->message);
  if (r->status >= 300) {
    Error e = docker::error_from_response(r->status, r->body, what);
    // A missing repository or denied access is the registry's answer, not the engine's.
    if (!retriable(e)) e.code = make_error_code(Errc::pull_failed);
    return e;
  }
  auto info = inspect_image(image);
  if (!info.ok() && info.error().code == make_error_code(Errc::not_found))
    return Error(Errc::pull_failed, what + ": image not present after pull");
  // Docker names the pulled manifest's digest; otherwise RepoDigests is the best we have (on
  // Podman it may list several digests of the same image when it was stored under other names).
  if (info.ok() && digest) info->digest = *digest;
  return info;
}

Result<std::string> DockerDriver::create(const ContainerSpec& spec) {
  const std::string what = "create " + spec.name;
  std::string path = "/containers/create";
  if (!spec.name.empty()) path += "?name=" + docker::url_encode(spec.name);
  BERTH_TRY(auto r, call("POST", path, timeouts_.create, docker::create_body(spec)));
  if (r.status != 201 && r.status != 200)
    return docker::error_from_response(r.status, r.body, what);
  boost::system::error_code ec;
  json::value v = json::parse(r.body, ec);
  if (ec || !v.is_object() || !v.as_object().contains("Id") || !v.at("Id").is_string())
    return Error(Errc::engine, what + ": response has no Id");
  return std::string(v.at("Id").as_string());
}

Status DockerDriver::start(const std::string& id) {
  BERTH_TRY(auto r,
            call("POST", "/containers/" + docker::url_encode(id) + "/start", timeouts_.start));
  if (r.status == 204 || r.status == 304 || r.status == 200) return {};  // 304: already running
  return docker::error_from_response(r.status, r.body, "start " + id);
}

Status DockerDriver::stop(const std::string& id, std::chrono::seconds grace) {
  BERTH_TRY(auto r, call("POST",
                         "/containers/" + docker::url_encode(id) +
                             "/stop?t=" + std::to_string(grace.count()),
                         grace + timeouts_.stop_extra));
  if (r.status == 204 || r.status == 304 || r.status == 200) return {};  // 304: not running
  return docker::error_from_response(r.status, r.body, "stop " + id);
}

Status DockerDriver::kill(const std::string& id, const std::string& signal) {
  BERTH_TRY(auto r, call("POST",
                         "/containers/" + docker::url_encode(id) +
                             "/kill?signal=" + docker::url_encode(signal),
                         timeouts_.inspect));
  if (r.status == 204 || r.status == 200) return {};
  return docker::error_from_response(r.status, r.body, "kill " + id);
}

Status DockerDriver::remove(const std::string& id, bool force) {
  // v=true also removes anonymous volumes, as the ECS agent does, so they do not pile up.
  BERTH_TRY(auto r, call("DELETE",
                         "/containers/" + docker::url_encode(id) +
                             "?v=true&force=" + (force ? "true" : "false"),
                         timeouts_.remove));
  if (r.status == 204 || r.status == 200) return {};
  return docker::error_from_response(r.status, r.body, "remove " + id);
}

Result<ContainerState> DockerDriver::inspect(const std::string& id_or_name) {
  BERTH_TRY(auto r, call("GET", "/containers/" + docker::url_encode(id_or_name) + "/json",
                         timeouts_.inspect));
  if (r.status != 200)
    return docker::error_from_response(r.status, r.body, "inspect " + id_or_name);
  return docker::parse_inspect(r.body);
}

Result<std::vector<ContainerState>> DockerDriver::list(const ListFilter& filter) {
  std::string path = std::string("/containers/json?all=") + (filter.all ? "true" : "false");
  if (!filter.labels.empty())
    path += "&filters=" + docker::url_encode(docker::filters_json({{"label", filter.labels}}));
  BERTH_TRY(auto r, call("GET", path, timeouts_.list));
  if (r.status != 200) return docker::error_from_response(r.status, r.body, "list");
  return docker::parse_list(r.body);
}

Result<ExecResult> DockerDriver::exec_check(const std::string& id,
                                            const std::vector<std::string>& cmd,
                                            std::chrono::milliseconds timeout, size_t max_output) {
  const std::string what = "exec in " + id;
  json::array args;
  for (const auto& a : cmd) args.emplace_back(a);
  json::object create{
      {"AttachStdout", true}, {"AttachStderr", true}, {"Tty", false}, {"Cmd", std::move(args)}};
  BERTH_TRY(auto created, call("POST", "/containers/" + docker::url_encode(id) + "/exec",
                               timeouts_.exec_extra, json::serialize(create)));
  if (created.status != 201 && created.status != 200)
    return docker::error_from_response(created.status, created.body, what);
  boost::system::error_code ec;
  json::value v = json::parse(created.body, ec);
  if (ec || !v.is_object() || !v.as_object().contains("Id") || !v.at("Id").is_string())
    return Error(Errc::engine, what + ": exec create response has no Id");
  const std::string exec_id(v.at("Id").as_string());

  // The attach stream ends when the command exits (both engines close the connection).
  docker::ExecStreamDemuxer demux(max_output);
  BERTH_TRY(std::string start_target, api("/exec/" + exec_id + "/start"));
  auto started = http_.stream(
      {.method = "POST", .target = start_target, .body = R"({"Detach":false,"Tty":false})"},
      {.total = timeout, .header = std::min(timeout, timeouts_.exec_extra)},
      [&](std::string_view piece) {
        demux.feed(piece);
        return true;
      });
  if (!started.ok()) return with_context(std::move(started).error(), what);
  if (started->status >= 300)
    return docker::error_from_response(started->status, started->body, what);

  // Docker may report the exec as running for a moment after the stream closed.
  const auto deadline = std::chrono::steady_clock::now() + timeouts_.exec_extra;
  for (;;) {
    BERTH_TRY(auto r, call("GET", "/exec/" + exec_id + "/json", timeouts_.exec_extra));
    if (r.status != 200) return docker::error_from_response(r.status, r.body, what);
    json::value e = json::parse(r.body, ec);
    if (ec || !e.is_object()) return Error(Errc::engine, what + ": malformed exec inspect");
    const json::object& o = e.as_object();
    bool running = o.contains("Running") && o.at("Running").is_bool() && o.at("Running").as_bool();
    if (!running && o.contains("ExitCode") && o.at("ExitCode").is_number())
      return ExecResult{.exit_code = static_cast<int>(o.at("ExitCode").to_number<int64_t>()),
                        .output = demux.output(),
                        .truncated = demux.truncated()};
    if (std::chrono::steady_clock::now() > deadline)
      return Error(Errc::timeout, what + ": exec still running after its output ended");
    std::this_thread::sleep_for(10ms);
  }
}

Result<StatsSample> DockerDriver::stats(const std::string& id) {
  // one-shot skips Docker's one-second wait to fill precpu_stats, which we do not use.
  BERTH_TRY(
      auto r,
      call("GET", "/containers/" + docker::url_encode(id) + "/stats?stream=false&one-shot=true",
           timeouts_.inspect));
  if (r.status != 200) return docker::error_from_response(r.status, r.body, "stats " + id);
  return docker::parse_stats(r.body);
}

Result<std::unique_ptr<EventSubscription>> DockerDriver::events(const EventFilter& filter,
                                                                EventHandlers handlers) {
  std::map<std::string, std::vector<std::string>> f{
      {"label", filter.labels}, {"type", filter.types}, {"event", filter.actions}};
  std::string path = "/events?filters=" + docker::url_encode(docker::filters_json(f));
  if (filter.since) {
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(filter.since->time_since_epoch())
                  .count();
    char since[48];
    std::snprintf(since, sizeof since, "%lld.%09lld", static_cast<long long>(ns / 1'000'000'000),
                  static_cast<long long>(ns % 1'000'000'000));
    path += std::string("&since=") + since;
  }
  BERTH_TRY(std::string target, api(path));

  auto sub = std::make_unique<DockerEventSubscription>();
  auto accepted = std::make_shared<std::promise<Status>>();
  // The thread owns copies of what it uses, so it may outlive this driver.
  sub->thread_ = std::thread([http = http_, connect = timeouts_.events_connect, target,
                              handlers = std::move(handlers), accepted,
                              canceller = &sub->canceller_] {
    bool streaming = false;
    docker::LineSplitter lines;
    auto r = http.stream({.method = "GET", .target = target},
                         {.header = connect,
                          .on_header =
                              [&](int status) {
                                if (status >= 300) return;
                                streaming = true;
                                accepted->set_value({});
                              },
                          .canceller = canceller},
                         [&](std::string_view piece) {
                           lines.feed(piece, [&](std::string_view line) {
                             // A line we cannot parse is skipped: one odd event must not end the
                             // stream.
                             if (auto e = docker::parse_event(line); e.ok() && handlers.on_event)
                               handlers.on_event(*e);
                           });
                           return true;
                         });
    if (!streaming) {
      accepted->set_value(r.ok() ? Status(docker::error_from_response(r->status, r->body, "events"))
                                 : Status(std::move(r).error()));
      return;
    }
    if (handlers.on_end)
      handlers.on_end(r.ok() ? Error(Errc::unavailable, "events: the engine ended the stream")
                             : std::move(r).error());
  });
  Status s = accepted->get_future().get();
  if (!s.ok()) {
    sub->thread_.join();
    return std::move(s).error();
  }
  return std::unique_ptr<EventSubscription>(std::move(sub));
}

}  // namespace berth::runtime
