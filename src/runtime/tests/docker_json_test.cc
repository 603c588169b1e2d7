// The Docker driver's pure codecs against responses recorded from Podman 4.3 and written from
// Docker's API reference (tests/data/).
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <fstream>
#include <sstream>

#include "runtime/docker/docker_json.h"

namespace berth::runtime::docker {
namespace {
namespace json = boost::json;

std::string fixture(const std::string& name) {
  std::ifstream in(std::string(BERTH_RUNTIME_TESTDATA) + "/" + name);
  EXPECT_TRUE(in) << name;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  LineSplitter s;
  s.feed(text, [&](std::string_view l) { out.emplace_back(l); });
  return out;
}

TEST(DockerJson, SplitsImageReferences) {
  auto check = [](std::string_view ref, std::string repo, std::string tag) {
    ImageRef r = split_image_ref(ref);
    EXPECT_EQ(r.repository, repo) << ref;
    EXPECT_EQ(r.tag, tag) << ref;
  };
  check("busybox", "busybox", "latest");
  check("nginx:1.25", "nginx", "1.25");
  check("127.0.0.1:5000/team/app", "127.0.0.1:5000/team/app", "latest");
  check("127.0.0.1:5000/team/app:v2", "127.0.0.1:5000/team/app", "v2");
  check("repo@sha256:abcd", "repo", "sha256:abcd");
}

TEST(DockerJson, RegistryHostOfImageReferences) {
  EXPECT_EQ(registry_host("busybox"), "docker.io");
  EXPECT_EQ(registry_host("library/busybox:1"), "docker.io");
  EXPECT_EQ(registry_host("localhost/berth-busybox:latest"), "localhost");
  EXPECT_EQ(registry_host("127.0.0.1:5000/app:1"), "127.0.0.1:5000");
  EXPECT_EQ(registry_host("123456789012.dkr.ecr.us-east-1.amazonaws.com/web@sha256:ab"),
            "123456789012.dkr.ecr.us-east-1.amazonaws.com");
}

TEST(DockerJson, EncodesQueryValuesAndFilters) {
  EXPECT_EQ(url_encode("a b/c=d"), "a%20b%2Fc%3Dd");
  EXPECT_EQ(filters_json({{"label", {"k=v"}}, {"type", {}}}), R"({"label":["k=v"]})");
}

TEST(DockerJson, RegistryAuthIsBase64UrlJson) {
  std::string h = registry_auth_header({"AWS", "p+w/?>", "123.dkr.ecr.us-east-1.amazonaws.com"});
  EXPECT_EQ(h.find_first_of("+/"), std::string::npos);
}

TEST(DockerJson, CreateBodyCarriesTheWholeSpec) {
  ContainerSpec s;
  s.name = "web";
  s.image = "nginx:1.25";
  s.command = {"nginx", "-g", "daemon off;"};
  s.env = {{"A", "1"}};
  s.labels = {{"k", "v"}};
  s.ports = {{80, Protocol::tcp, 0, ""},
             {80, Protocol::tcp, 8080, "127.0.0.1"},
             {53, Protocol::udp, 0, ""}};
  s.memory_bytes = 128 << 20;
  s.memory_reservation_bytes = 64 << 20;
  s.cpu_shares = 512;
  s.ulimits = {{"nofile", 4096, 8192}, {"core", 0, 0}};
  s.mounts = {{MountKind::bind, "/data", "/data", true},
              {MountKind::volume, "cache", "/cache", false},
              {MountKind::tmpfs, "", "/run", false}};
  s.healthcheck = HealthCheck{{"CMD-SHELL", "true"},
                              std::chrono::seconds(5),
                              std::chrono::seconds(2),
                              std::chrono::seconds(1),
                              3};
  s.stop_timeout = std::chrono::seconds(10);
  s.extra_hosts = {{"db", "10.0.0.5"}};
  s.sysctls = {{"net.core.somaxconn", "1024"}};
  s.init = true;

  json::value v = json::parse(create_body(s));
  EXPECT_EQ(v.at("Image"), "nginx:1.25");
  EXPECT_EQ(v.at("Cmd").as_array().size(), 3u);
  EXPECT_EQ(v.at("Env").as_array()[0], "A=1");
  EXPECT_EQ(v.at("StopTimeout"), 10);
  EXPECT_EQ(v.at("Healthcheck").at("Interval"), 5'000'000'000);
  EXPECT_TRUE(v.at("ExposedPorts").as_object().contains("53/udp"));
  const json::value& host = v.at("HostConfig");
  const json::array& b80 = host.at("PortBindings").at("80/tcp").as_array();
  ASSERT_EQ(b80.size(), 2u);
  EXPECT_EQ(b80[0].at("HostPort"), "");  // dynamic
  EXPECT_EQ(b80[1].at("HostPort"), "8080");
  EXPECT_EQ(b80[1].at("HostIp"), "127.0.0.1");
  EXPECT_EQ(host.at("Memory"), 128 << 20);
  EXPECT_EQ(host.at("MemoryReservation"), 64 << 20);
  EXPECT_EQ(host.at("CpuShares"), 512);
  EXPECT_EQ(host.at("NetworkMode"), "bridge");
  EXPECT_EQ(host.at("LogConfig").at("Type"), "json-file");
  EXPECT_EQ(host.at("Binds").as_array()[0], "/data:/data:ro");
  EXPECT_EQ(host.at("Binds").as_array()[1], "cache:/cache:rw");
  EXPECT_TRUE(host.at("Tmpfs").as_object().contains("/run"));
  EXPECT_EQ(host.at("ExtraHosts").as_array()[0], "db:10.0.0.5");
  EXPECT_EQ(host.at("Init"), true);
  // nproc default kept, nofile overridden, core added.
  using Limits = std::pair<int64_t, int64_t>;
  std::map<std::string, Limits> ul;
  for (const auto& u : host.at("Ulimits").as_array())
    ul[std::string(u.at("Name").as_string())] = {u.at("Soft").as_int64(), u.at("Hard").as_int64()};
  EXPECT_EQ(ul["nproc"], Limits(1024, 1024));
  EXPECT_EQ(ul["nofile"], Limits(4096, 8192));
  EXPECT_TRUE(ul.count("core"));
}

TEST(DockerJson, HostNetworkPublishesNothing) {
  ContainerSpec s;
  s.image = "x";
  s.network_mode = NetworkMode::host;
  s.ports = {{80, Protocol::tcp, 80, ""}};
  json::value v = json::parse(create_body(s));
  EXPECT_FALSE(v.at("HostConfig").as_object().contains("PortBindings"));
  EXPECT_EQ(v.at("HostConfig").at("NetworkMode"), "host");
}

TEST(DockerJson, ClassifiesErrorsFromBothEngines) {
  auto code = [](int status, std::string body) {
    return error_from_response(status, body, "x").code;
  };
  EXPECT_EQ(code(404, R"({"message":"No such container: x"})"), Errc::not_found);
  EXPECT_EQ(code(409, R"({"message":"Conflict."})"), Errc::conflict);
  EXPECT_EQ(code(400, R"({"message":"invalid"})"), Errc::bad_request);
  EXPECT_EQ(code(500, R"({"message":"boom"})"), Errc::engine);
  // Podman's 500s that mean something more specific:
  EXPECT_EQ(
      code(
          500,
          R"({"cause":"that name is already in use","message":"the container name \"a\" is already in use"})"),
      Errc::conflict);
  EXPECT_EQ(
      code(500,
           R"({"message":"cannot remove container x as it is running: container state improper"})"),
      Errc::conflict);
  EXPECT_EQ(
      code(
          500,
          R"({"message":"runc: exec: \"/nonexistent\": OCI runtime attempted to invoke a command that was not found"})"),
      Errc::bad_request);
  Error e = error_from_response(404, R"({"message":"No such container: x"})", "inspect x");
  EXPECT_EQ(e.message, "inspect x: No such container: x (HTTP 404)");
  EXPECT_FALSE(retriable(e));
  EXPECT_TRUE(retriable(error_from_response(503, "", "x")));
}

TEST(DockerJson, ParsesTimes) {
  using namespace std::chrono;
  auto t = parse_time("2024-03-01T10:00:01.5Z");
  ASSERT_TRUE(t);
  EXPECT_EQ(duration_cast<milliseconds>(t->time_since_epoch()).count(), 1709287201500);
  auto offset = parse_time("2024-03-01T12:00:01.5+02:00");
  ASSERT_TRUE(offset);
  EXPECT_EQ(*offset, *t);
  EXPECT_FALSE(parse_time("0001-01-01T00:00:00Z"));
  EXPECT_FALSE(parse_time(""));
}

TEST(DockerJson, ParsesPodmanInspectOfARunningContainer) {
  auto s = parse_inspect(fixture("podman_inspect_running.json"));
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(s->name, "fixture-web");
  EXPECT_EQ(s->image, "localhost/berth-busybox:latest");
  EXPECT_EQ(s->image_id.rfind("sha256:", 0), 0u);
  EXPECT_EQ(s->status, ContainerStatus::running);
  EXPECT_TRUE(s->running);
  EXPECT_TRUE(s->started_at);
  EXPECT_FALSE(s->finished_at);
  EXPECT_EQ(s->health, HealthStatus::healthy);
  EXPECT_EQ(s->health_output, "hi");
  EXPECT_EQ(s->memory_bytes, 67108864);
  EXPECT_EQ(s->labels.at("com.example.task"), "t1");
  ASSERT_EQ(s->ports.size(), 2u);
  for (const PortBinding& p : s->ports) {
    EXPECT_NE(p.host_port, 0);
    if (p.protocol == Protocol::udp) {
      EXPECT_EQ(p.container_port, 53);
      EXPECT_EQ(p.host_ip, "127.0.0.1");
    } else {
      EXPECT_EQ(p.container_port, 80);
      EXPECT_EQ(p.host_ip, "");  // Podman leaves it empty where Docker says 0.0.0.0
    }
  }
}

TEST(DockerJson, ParsesPodmanInspectOfAnExitedContainer) {
  auto s = parse_inspect(fixture("podman_inspect_exited.json"));
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(s->status, ContainerStatus::exited);
  EXPECT_FALSE(s->running);
  EXPECT_EQ(s->exit_code, 3);
  EXPECT_TRUE(s->finished_at);
  EXPECT_EQ(s->health, HealthStatus::none);
}

TEST(DockerJson, ParsesDockerInspect) {
  auto s = parse_inspect(fixture("docker_inspect.json"));
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(s->name, "ecs-web-1-nginx-e0a0b0c0d0");
  EXPECT_EQ(s->image, "nginx:1.25");
  EXPECT_EQ(s->health, HealthStatus::unhealthy);
  EXPECT_EQ(s->health_output, "curl: (7) Failed to connect\n");
  EXPECT_EQ(s->memory_bytes, 134217728);
  ASSERT_EQ(s->ports.size(), 2u);  // IPv4 and IPv6 bindings; 443 exposed but unpublished
  EXPECT_EQ(s->ports[0].host_port, 49153);
  EXPECT_EQ(s->ports[1].host_ip, "::");
}

TEST(DockerJson, RejectsMalformedInspect) {
  EXPECT_EQ(parse_inspect("{").error().code, Errc::engine);
  EXPECT_EQ(parse_inspect("{}").error().code, Errc::engine);
}

TEST(DockerJson, ParsesPodmanList) {
  auto l = parse_list(fixture("podman_list.json"));
  ASSERT_TRUE(l.ok()) << l.error().message;
  ASSERT_EQ(l->size(), 2u);
  std::map<std::string, ContainerState> by_name;
  for (auto& s : *l) by_name[s.name] = s;
  EXPECT_TRUE(by_name.at("fixture-web").running);
  EXPECT_EQ(by_name.at("fixture-web").ports.size(), 2u);
  EXPECT_EQ(by_name.at("fixture-exit").status, ContainerStatus::exited);
  EXPECT_EQ(by_name.at("fixture-exit").exit_code, 3);
  EXPECT_EQ(by_name.at("fixture-exit").labels.at("berth.test"), "fixture");
}

TEST(DockerJson, ParsesStats) {
  auto p = parse_stats(fixture("podman_stats.json"));
  ASSERT_TRUE(p.ok());
  EXPECT_GT(p->cpu_total_ns, 0u);
  EXPECT_GT(p->system_cpu_ns, 0u);
  EXPECT_GT(p->memory_usage, 0u);
  EXPECT_EQ(p->memory_limit, 67108864u);
  auto d = parse_stats(fixture("docker_stats.json"));
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->cpu_total_ns, 123456789u);
  EXPECT_EQ(d->online_cpus, 4u);
  EXPECT_EQ(d->memory_usage, 10485760u - 2097152u);  // minus inactive_file, as docker stats
}

TEST(DockerJson, ParsesPodmanEvents) {
  auto lines = lines_of(fixture("podman_events.jsonl"));
  ASSERT_EQ(lines.size(), 3u);
  auto start = parse_event(lines[0]);
  ASSERT_TRUE(start.ok());
  EXPECT_EQ(start->type, "container");
  EXPECT_EQ(start->action, "start");
  EXPECT_EQ(start->name, "explore1");
  EXPECT_EQ(start->labels, (Labels{{"berth.test", "x"}}));
  EXPECT_FALSE(start->exit_code);
  auto health = parse_event(lines[1]);
  EXPECT_EQ(health->action, "health_status");
  EXPECT_EQ(health->health, HealthStatus::none);  // Podman 4.3 does not say which: inspect
  auto die = parse_event(lines[2]);
  EXPECT_EQ(die->action, "die");
  EXPECT_EQ(die->exit_code, 137);
  EXPECT_GT(die->time.time_since_epoch().count(), 0);
}

TEST(DockerJson, ParsesDockerEvents) {
  auto lines = lines_of(fixture("docker_events.jsonl"));
  ASSERT_EQ(lines.size(), 4u);
  auto start = parse_event(lines[0]);
  EXPECT_EQ(start->labels, (Labels{{"maintainer", "NGINX"}}));
  EXPECT_EQ(
      std::chrono::duration_cast<std::chrono::milliseconds>(start->time.time_since_epoch()).count(),
      1709287201500);
  auto health = parse_event(lines[1]);
  EXPECT_EQ(health->action, "health_status");
  EXPECT_EQ(health->health, HealthStatus::unhealthy);
  auto die = parse_event(lines[2]);
  EXPECT_EQ(die->exit_code, 137);
  EXPECT_FALSE(die->labels.count("execDuration"));
  EXPECT_EQ(parse_event(lines[3])->type, "network");
}

TEST(DockerJson, PullStreamErrorsBecomePullFailed) {
  std::optional<std::string> digest;
  for (const auto& l : lines_of(fixture("docker_pull_ok.jsonl"))) {
    EXPECT_TRUE(check_pull_progress(l).ok());
    if (auto d = pull_digest(l)) digest = d;
  }
  EXPECT_EQ(digest, "sha256:0d17b565c37bcbd895e9d92315a05c1c3c9a29f762b011a10c54a66cd53c9b31");
  auto lines = lines_of(fixture("docker_pull_error.jsonl"));
  EXPECT_TRUE(check_pull_progress(lines[0]).ok());
  Status s = check_pull_progress(lines[1]);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, Errc::pull_failed);
  EXPECT_NE(s.error().message.find("manifest unknown"), std::string::npos);
  // What Podman sends for an unreachable registry.
  Status p = check_pull_progress(
      R"({"progressDetail":{},"errorDetail":{"message":"pinging container registry 127.0.0.1:1: connection refused"},"error":"x"})");
  EXPECT_EQ(p.error().code, Errc::pull_failed);
}

TEST(DockerJson, ParsesImageAndVersion) {
  auto img = parse_image_inspect(fixture("podman_image.json"), "localhost/berth-busybox:latest");
  ASSERT_TRUE(img.ok());
  EXPECT_EQ(img->id.rfind("sha256:", 0), 0u);
  EXPECT_EQ(img->digest.rfind("sha256:", 0), 0u);
  EXPECT_EQ(img->repo_tags.at(0), "localhost/berth-busybox:latest");
  auto v = parse_version(fixture("podman_version.json"));
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->name, "Podman Engine");
  EXPECT_EQ(v->api_version, "1.41");
}

TEST(LineSplitter, ReassemblesLinesAcrossChunks) {
  LineSplitter s;
  std::vector<std::string> out;
  auto sink = [&](std::string_view l) { out.emplace_back(l); };
  s.feed("{\"a\":", sink);
  s.feed("1}\n{\"b\"", sink);
  s.feed(":2}\r\n\n{\"c\":3", sink);
  EXPECT_EQ(out, (std::vector<std::string>{"{\"a\":1}", "{\"b\":2}"}));
  EXPECT_EQ(s.pending(), "{\"c\":3");
}

TEST(ExecStreamDemuxer, DecodesFramesSplitAnywhereAndTruncates) {
  std::string stream;
  auto frame = [&](char kind, std::string payload) {
    stream += std::string{kind, 0, 0, 0, 0, 0, 0, static_cast<char>(payload.size())} + payload;
  };
  frame(1, "out\n");
  frame(2, "err\n");
  frame(1, "more\n");
  for (size_t step : {1u, 3u, 100u}) {
    ExecStreamDemuxer d(1000);
    for (size_t i = 0; i < stream.size(); i += step)
      d.feed(std::string_view(stream).substr(i, step));
    EXPECT_EQ(d.output(), "out\nerr\nmore\n") << step;
    EXPECT_FALSE(d.truncated());
  }
  ExecStreamDemuxer small(6);
  small.feed(stream);
  EXPECT_EQ(small.output(), "out\ner");
  EXPECT_TRUE(small.truncated());
  ExecStreamDemuxer raw(100);
  raw.feed("plain tty output");
  EXPECT_EQ(raw.output(), "plain tty output");
}

}  // namespace
}  // namespace berth::runtime::docker
