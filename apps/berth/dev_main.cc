// `berth dev`: a one-machine cluster. Starts (re-execs) `berth server` on an embedded store, a
// Podman service when no engine answers, builds the busybox image when absent, runs an agent in
// this process, and then a sample web task whose URL it prints once the URL answers.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/json/serialize.hpp>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "agent/api_client.h"
#include "agent_main.h"
#include "common/clock.h"
#include "runtime/docker/docker_driver.h"

namespace berth::apps {

namespace json = boost::json;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

constexpr const char* kImage = "localhost/berth-busybox:latest";

// Same steps as tests/runtime/make_busybox_image.sh (the binary must work without the repo).
constexpr const char* kBuildImage = R"SH(set -eu
image="$1"
bb=/bin/busybox; [ -x "$bb" ] || bb=/usr/bin/busybox
"$bb" --list >/dev/null 2>&1 || { echo "busybox-static is not installed (apt-get install -y busybox-static)" >&2; exit 1; }
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
root=$work/root
mkdir -p "$root/bin" "$root/etc" "$root/tmp" "$root/root" "$root/www"
chmod 1777 "$root/tmp"
cp "$bb" "$root/bin/busybox"
for applet in $("$bb" --list); do [ "$applet" = busybox ] && continue; ln -sf busybox "$root/bin/$applet"; done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n' >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
tar -C "$root" -cf "$work/img.tar" .
podman import -q --change 'CMD ["/bin/sh"]' --change 'ENV PATH=/bin' "$work/img.tar" "$image" >/dev/null
)SH";

pid_t spawn(const std::vector<std::string>& argv, int stdout_fd, const std::string& log) {
  pid_t pid = ::fork();
  if (pid == 0) {
    ::setpgid(0, 0);  // our Ctrl-C is handled by us, not delivered to children directly
    if (stdout_fd >= 0) ::dup2(stdout_fd, 1);
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd >= 0) ::dup2(fd, 2);
    if (stdout_fd < 0 && fd >= 0) ::dup2(fd, 1);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  return pid;
}

bool http_answers(uint16_t port, std::string* body) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{2, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  bool ok = false;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
    const char req[] = "GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if (::send(fd, req, sizeof req - 1, MSG_NOSIGNAL) > 0) {
      char buf[4096];
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n > 0) {
        body->assign(buf, static_cast<size_t>(n));
        ok = body->starts_with("HTTP/1.");
      }
    }
  }
  ::close(fd);
  return ok;
}

struct DevFlags {
  std::string data_dir = "berth-dev";
  std::string listen = "127.0.0.1:8080";
  std::string engine;  // default: unix://DATA_DIR/podman.sock
  bool no_sample = false;
  int agent_heartbeat_timeout_ms = 30'000;  // passed to the server (see `berth server --help`)
};

// Runs the sample web task (or finds the one from a previous run) and returns its URL.
Result<std::string> sample_task(agent::ApiClient& api) {
  auto listed = api.call(
      "ListTasks",
      {{"cluster", "default"}, {"family", "berth-sample-web"}, {"desiredStatus", "RUNNING"}});
  std::string arn;
  if (listed.ok() && !listed->at("taskArns").as_array().empty()) {
    arn = std::string(listed->at("taskArns").as_array()[0].as_string());
  } else {
    json::object web{
        {"name", "web"},
        {"image", kImage},
        {"essential", true},
        {"memory", 64},
        {"command",
         json::array{"sh", "-c",
                     "echo 'hello from berth' > /www/index.html && exec httpd -f -p 80 -h /www"}},
        {"portMappings", json::array{json::object{{"containerPort", 80}, {"hostPort", 0}}}}};
    auto td = api.call("RegisterTaskDefinition", {{"family", "berth-sample-web"},
                                                  {"containerDefinitions", json::array{web}}});
    if (!td.ok()) return td.error();
    auto run = api.call("RunTask", {{"cluster", "default"},
                                    {"taskDefinition", "berth-sample-web"},
                                    {"startedBy", "berth-dev"}});
    if (!run.ok()) return run.error();
    const auto& tasks = run->at("tasks").as_array();
    if (tasks.empty())
      return Error(agent::ClientErrc::rejected,
                   "RunTask placed nothing: " + json::serialize(run->at("failures")));
    arn = std::string(tasks[0].at("taskArn").as_string());
  }
  for (auto until = std::chrono::steady_clock::now() + 60s;
       std::chrono::steady_clock::now() < until;) {
    auto d = api.call("DescribeTasks",
                      {{"cluster", "default"}, {"tasks", json::array{json::value(arn)}}});
    if (d.ok() && !d->at("tasks").as_array().empty()) {
      const auto& t = d->at("tasks").as_array()[0].as_object();
      if (t.at("lastStatus").as_string() == "STOPPED") {
        return Error(agent::ClientErrc::rejected,
                     "sample task stopped: " + json::serialize(t.at("stoppedReason")));
      }
      const auto* cs = t.if_contains("containers");
      if (t.at("lastStatus").as_string() == "RUNNING" && cs && !cs->as_array().empty()) {
        const auto* nb = cs->as_array()[0].as_object().if_contains("networkBindings");
        if (nb && !nb->as_array().empty()) {
          auto port = nb->as_array()[0].at("hostPort").to_number<uint16_t>();
          std::string body;
          for (int i = 0; i < 50; ++i, std::this_thread::sleep_for(100ms)) {
            if (http_answers(port, &body)) return "http://127.0.0.1:" + std::to_string(port) + "/";
          }
          return Error(agent::ClientErrc::server,
                       "sample task runs but port " + std::to_string(port) + " does not answer");
        }
      }
    }
    std::this_thread::sleep_for(200ms);
  }
  return Error(agent::ClientErrc::server, "sample task did not reach RUNNING within 60 s");
}

int run_dev(const DevFlags& f) {
  install_stop_handlers();
  auto& stop = stop_requested();
  std::error_code ec;
  fs::create_directories(f.data_dir, ec);
  std::string dir = fs::absolute(f.data_dir).string();
  std::string engine = f.engine.empty() ? "unix://" + dir + "/podman.sock" : f.engine;
  std::string sock = engine.substr(std::string_view("unix://").size());

  // 1. The engine: use one that answers, else start Podman's service with the runc config
  //    these hosts need (PLATFORM.md: crun fails, both ulimits are needed).
  pid_t podman = -1;
  {
    runtime::DockerDriver probe(sock);
    if (!probe.ping().ok()) {
      std::string conf = dir + "/containers.conf";
      std::ofstream(conf) << "[engine]\nruntime = \"runc\"\n\n[containers]\n"
                             "default_ulimits = [\"nofile=1024:1024\", \"nproc=1024:1024\"]\n";
      ::setenv("CONTAINERS_CONF", conf.c_str(), 1);
      fs::remove(sock, ec);
      podman = spawn({"podman", "system", "service", "--time=0", "unix://" + sock}, -1,
                     dir + "/podman.log");
      bool up = false;
      for (int i = 0; i < 150 && !up && !stop; ++i, std::this_thread::sleep_for(100ms))
        up = probe.ping().ok();
      if (!up) {
        std::fprintf(stderr, "berth dev: podman service did not answer on %s (see %s/podman.log)\n",
                     sock.c_str(), dir.c_str());
        if (podman > 0) ::kill(podman, SIGTERM);
        return 1;
      }
    }
    if (auto present = probe.image_present(kImage); !present.ok() || !*present) {
      std::printf("berth dev: building %s from busybox-static\n", kImage);
      std::fflush(stdout);
      pid_t b = spawn({"/bin/sh", "-c", kBuildImage, "build-image", kImage}, -1,
                      dir + "/build-image.log");
      int status = 0;
      ::waitpid(b, &status, 0);
      if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        std::fprintf(stderr, "berth dev: building the image failed (see %s/build-image.log)\n",
                     dir.c_str());
      }
    }
  }

  // 2. The server, as a child re-exec of this binary: its own signal handling and store.
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) return 1;
  pid_t server =
      spawn({"/proc/self/exe", "server", "--listen", f.listen, "--data-dir", dir + "/server",
             "--agent-heartbeat-timeout-ms", std::to_string(f.agent_heartbeat_timeout_ms)},
            pipefd[1], dir + "/server.log");
  ::close(pipefd[1]);
  FILE* out = ::fdopen(pipefd[0], "r");
  char line[512];
  std::string endpoint;
  if (std::fgets(line, sizeof line, out) != nullptr) {
    std::string l(line);
    constexpr std::string_view kPrefix = "berth server listening on ";
    if (l.starts_with(kPrefix))
      endpoint = l.substr(kPrefix.size(), l.find_last_not_of("\r\n") + 1 - kPrefix.size());
  }
  if (endpoint.empty()) {
    std::fprintf(stderr, "berth dev: server did not start (see %s/server.log)\n", dir.c_str());
    ::kill(server, SIGTERM);
    return 1;
  }
  std::thread drain([out] {
    char buf[512];
    while (std::fgets(buf, sizeof buf, out) != nullptr) {
    }
    std::fclose(out);
  });
  std::string creds = dir + "/server/credentials";

  // 3. The cluster, then this host's agent.
  SystemClock clock;
  auto key = [&]() -> api::AccessKey {
    std::ifstream in(creds);
    api::AccessKey k{"berth", "", ""};
    for (std::string l; std::getline(in, l);) {
      auto eq = l.find('=');
      if (eq == std::string::npos) continue;
      std::string name = l.substr(0, l.find_first_of(" =")),
                  v = l.substr(l.find_first_not_of(" ", eq + 1));
      if (name == "aws_access_key_id") k.access_key_id = v;
      if (name == "aws_secret_access_key") k.secret_access_key = v;
    }
    return k;
  }();
  agent::ApiClient api(*agent::Endpoint::parse(endpoint), key, "us-east-1", clock);
  (void)api.call("CreateCluster", {{"clusterName", "default"}});

  AgentFlags af;
  af.server = endpoint;
  af.cluster = "default";
  af.credentials = creds;
  af.profile = "berth";
  af.data_dir = dir + "/agent";
  af.engine = engine;
  std::mutex mu;
  std::condition_variable cv;
  std::string arn;
  int agent_rc = 0;
  std::thread agent([&] {
    agent_rc = run_agent(af, stop, [&](const std::string& a) {
      std::lock_guard lock(mu);
      arn = a;
      cv.notify_all();
    });
    std::lock_guard lock(mu);
    if (arn.empty()) arn = "-";
    cv.notify_all();
  });
  {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return !arn.empty(); });
  }
  std::printf("berth dev: server listening on %s\n", endpoint.c_str());
  std::printf("  agent:       %s\n", arn.c_str());
  std::printf("  engine:      %s\n", engine.c_str());
  std::printf(
      "  credentials: AWS_SHARED_CREDENTIALS_FILE=%s AWS_PROFILE=berth AWS_REGION=us-east-1\n",
      creds.c_str());
  std::printf("  try:         aws ecs list-tasks --endpoint-url %s\n", endpoint.c_str());
  std::fflush(stdout);
  if (!f.no_sample && arn != "-") {
    auto url = sample_task(api);
    if (url.ok()) {
      std::printf("berth dev: sample web task answers at %s\n", url->c_str());
    } else {
      std::fprintf(stderr, "berth dev: sample task: %s\n", url.error().message.c_str());
    }
    std::fflush(stdout);
  }
  while (!stop && arn != "-") std::this_thread::sleep_for(100ms);
  stop = true;
  agent.join();
  ::kill(server, SIGTERM);
  ::waitpid(server, nullptr, 0);
  drain.join();
  // Containers keep running without the engine's API service; the next `berth dev` re-adopts.
  if (podman > 0) {
    ::kill(podman, SIGTERM);
    ::waitpid(podman, nullptr, 0);
  }
  return agent_rc;
}

}  // namespace

void add_dev_command(CLI::App& app, std::function<int()>& run) {
  static DevFlags f;
  auto* cmd = app.add_subcommand(
      "dev", "Run a one-machine cluster: server, Podman, agent and a sample task");
  cmd->add_option("--data-dir", f.data_dir, "Directory for all state")->capture_default_str();
  cmd->add_option("--listen", f.listen, "Server ADDR:PORT")->capture_default_str();
  cmd->add_option("--engine", f.engine,
                  "Engine socket (default: start Podman on DATA_DIR/podman.sock)");
  cmd->add_flag("--no-sample", f.no_sample, "Do not run the sample web task");
  cmd->add_option("--agent-heartbeat-timeout-ms", f.agent_heartbeat_timeout_ms,
                  "Server: drop an agent channel silent this long")
      ->capture_default_str()
      ->check(CLI::Range(300, 3'600'000));
  cmd->callback([&run] { run = [] { return run_dev(f); }; });
}

}  // namespace berth::apps
