// DockerDriver against a real engine: starts its own `podman system service` on a private socket
// (runc and default ulimits via CONTAINERS_CONF, as PLATFORM.md requires on these hosts), uses
// the busybox image from tests/runtime/make_busybox_image.sh, and removes every container it
// made. Skips only when podman is not installed.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <thread>

#include "runtime/docker/docker_driver.h"

namespace berth::runtime {
namespace {
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

constexpr const char* kImage = "localhost/berth-busybox:latest";

bool podman_installed() { return std::system("command -v podman >/dev/null 2>&1") == 0; }

double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

template <class Pred>
bool wait_for(Pred pred, std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return pred();
}

// A plain HTTP/1.0 GET on loopback; returns the body or "" on failure.
std::string http_get(uint16_t port, const std::string& path = "/") {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string resp;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    std::string req = "GET " + path + " HTTP/1.0\r\nHost: localhost\r\n\r\n";
    if (::write(fd, req.data(), req.size()) == static_cast<ssize_t>(req.size())) {
      char buf[4096];
      for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;)
        resp.append(buf, static_cast<size_t>(n));
    }
  }
  ::close(fd);
  auto body = resp.find("\r\n\r\n");
  return body == std::string::npos ? "" : resp.substr(body + 4);
}

// Starts argv as a child that dies with this process, stderr to `log`.
pid_t spawn(std::vector<std::string> argv, const std::string& log) {
  pid_t pid = ::fork();
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);  // never outlive a crashed test binary
    FILE* f = std::freopen(log.c_str(), "w", stderr);
    (void)f;
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  return pid;
}

void terminate(pid_t& pid) {
  if (pid <= 0) return;
  ::kill(pid, SIGTERM);
  int status = 0;
  for (int i = 0; i < 100 && ::waitpid(pid, &status, WNOHANG) == 0; ++i)
    std::this_thread::sleep_for(50ms);
  if (::waitpid(pid, &status, WNOHANG) == 0) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
  }
  pid = -1;
}

uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

// One Podman service for the whole binary.
class PodmanService {
 public:
  static PodmanService& get() {
    static PodmanService s;
    return s;
  }
  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  const std::string& socket() const { return socket_; }
  const std::string& run_label() const { return run_label_; }

  const std::string& dir() const { return dir_; }
  uint16_t registry_port() const { return registry_port_; }

  void stop() {
    if (pid_ <= 0) return;
    terminate(pid_);
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

 private:
  PodmanService() {
    char tmpl[] = "/tmp/berth-rt-XXXXXX";
    if (!::mkdtemp(tmpl)) {
      error_ = "mkdtemp failed";
      return;
    }
    dir_ = tmpl;
    socket_ = dir_ + "/podman.sock";
    run_label_ = "berth.test.run=" + fs::path(dir_).filename().string();
    // crun fails on these hosts (hybrid cgroups, setrlimit EPERM); runc works. Both ulimits are
    // needed because the host's hard nofile limit is lower than Podman's default.
    std::ofstream(dir_ + "/containers.conf")
        << "[engine]\nruntime = \"runc\"\n"
        << "[containers]\ndefault_ulimits = [\"nofile=1024:1024\", \"nproc=1024:1024\"]\n";
    ::setenv("CONTAINERS_CONF", (dir_ + "/containers.conf").c_str(), 1);
    // A plain-HTTP registry the pull test may start on this port; the engine reads the file
    // at startup, so the port is fixed now.
    registry_port_ = free_port();
    std::ofstream(dir_ + "/registries.conf")
        << "[[registry]]\nlocation = \"127.0.0.1:" << registry_port_ << "\"\ninsecure = true\n";
    ::setenv("CONTAINERS_REGISTRIES_CONF", (dir_ + "/registries.conf").c_str(), 1);

    std::string make = std::string(BERTH_MAKE_BUSYBOX_IMAGE) + " " + kImage;
    if (std::system(make.c_str()) != 0) {
      error_ = "make_busybox_image.sh failed";
      return;
    }
    pid_ = spawn({"podman", "system", "service", "--time=0", "unix://" + socket_},
                 dir_ + "/service.log");
    DockerDriver probe(socket_);
    if (!wait_for([&] { return probe.ping().ok(); }, 15s)) error_ = "podman service did not answer";
  }
  ~PodmanService() { stop(); }

  std::string dir_, socket_, run_label_, error_;
  pid_t pid_ = -1;
  uint16_t registry_port_ = 0;
};

class DockerDriverTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!podman_installed()) return;
    (void)PodmanService::get();
  }
  // The service stops when the binary exits (PodmanService's destructor), so --gtest_repeat
  // and several suites can share it.

  void SetUp() override {
    if (!podman_installed())
      GTEST_SKIP() << "podman is not installed (apt-get install podman runc)";
    ASSERT_TRUE(PodmanService::get().ok()) << PodmanService::get().error();
    driver_ = std::make_unique<DockerDriver>(PodmanService::get().socket());
  }

  // Removes every container this binary created, whatever the test did.
  void TearDown() override {
    if (!driver_) return;
    auto mine = driver_->list({.labels = {PodmanService::get().run_label()}});
    ASSERT_TRUE(mine.ok()) << mine.error().message;
    for (const auto& c : *mine) EXPECT_TRUE(driver_->remove(c.id, true).ok()) << c.name;
  }

  ContainerSpec spec(const std::string& name, std::vector<std::string> cmd) {
    ContainerSpec s;
    s.name = name + "-" + std::to_string(::getpid());
    s.image = kImage;
    s.command = std::move(cmd);
    auto label = PodmanService::get().run_label();
    s.labels[label.substr(0, label.find('='))] = label.substr(label.find('=') + 1);
    s.network_mode = NetworkMode::none;  // 140 ms faster per start than the bridge
    return s;
  }

  std::string run(const ContainerSpec& s) {
    auto id = driver_->create(s);
    EXPECT_TRUE(id.ok()) << id.error().message;
    if (!id.ok()) return {};
    auto st = driver_->start(*id);
    EXPECT_TRUE(st.ok()) << st.error().message;
    return *id;
  }

  Result<ContainerState> wait_exited(const std::string& id) {
    Result<ContainerState> s = Error(Errc::timeout, "never exited");
    wait_for([&] { return (s = driver_->inspect(id)).ok() && !s->running; }, 10s);
    return s;
  }

  std::unique_ptr<Driver> driver_;  // through the interface, as the agent uses it
};

const char* kTermLoop = "trap 'exit 0' TERM; while :; do sleep 0.05; done";
const char* kStubbornLoop = "trap '' TERM; while :; do sleep 0.05; done";

TEST_F(DockerDriverTest, PingAndVersion) {
  ASSERT_TRUE(driver_->ping().ok());
  auto v = driver_->version();
  ASSERT_TRUE(v.ok()) << v.error().message;
  EXPECT_EQ(v->name, "Podman Engine");
  EXPECT_FALSE(v->api_version.empty());
}

TEST_F(DockerDriverTest, ImagePresentAndInspect) {
  EXPECT_TRUE(*driver_->image_present(kImage));
  EXPECT_FALSE(*driver_->image_present("localhost/berth-does-not-exist:latest"));
  auto img = driver_->inspect_image(kImage);
  ASSERT_TRUE(img.ok()) << img.error().message;
  EXPECT_EQ(img->id.rfind("sha256:", 0), 0u);
}

TEST_F(DockerDriverTest, PullFromUnreachableRegistryFailsFast) {
  auto t = Clock::now();
  auto r = driver_->pull("127.0.0.1:1/berth/nothing:latest", std::nullopt);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::pull_failed) << r.error().message;
  EXPECT_NE(r.error().message.find("127.0.0.1:1"), std::string::npos) << r.error().message;
  EXPECT_FALSE(retriable(r.error()));
  EXPECT_LT(ms_since(t), 15'000);
}

TEST_F(DockerDriverTest, PullFromALocalRegistry) {
  if (std::system("command -v docker-registry >/dev/null && command -v skopeo >/dev/null") != 0)
    GTEST_SKIP() << "needs docker-registry and skopeo (apt-get install docker-registry skopeo)";
  auto& svc = PodmanService::get();
  const std::string port = std::to_string(svc.registry_port());
  std::ofstream(svc.dir() + "/registry.yml")
      << "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: "
      << svc.dir() << "/registry\nhttp:\n  addr: 127.0.0.1:" << port << "\n";
  pid_t registry =
      spawn({"docker-registry", "serve", svc.dir() + "/registry.yml"}, svc.dir() + "/registry.log");
  struct Stop {
    pid_t& pid;
    ~Stop() { terminate(pid); }
  } stop_registry{registry};
  ASSERT_TRUE(wait_for([&] { return http_get(svc.registry_port(), "/v2/") == "{}"; }, 10s));
  const std::string ref = "127.0.0.1:" + port + "/berth/busybox:" + std::to_string(::getpid());
  std::string copy =
      "skopeo copy -q --dest-tls-verify=false containers-storage:" + std::string(kImage) +
      " docker://" + ref;
  ASSERT_EQ(std::system(copy.c_str()), 0);

  auto t = Clock::now();
  // The registry has no auth; sending credentials exercises X-Registry-Auth all the same.
  auto img = driver_->pull(ref, RegistryAuth{"AWS", "secret", "127.0.0.1:" + port});
  double pull_ms = ms_since(t);
  ASSERT_TRUE(img.ok()) << img.error().message;
  EXPECT_EQ(img->id, driver_->inspect_image(kImage)->id);  // the same image, by another name
  EXPECT_EQ(img->digest.rfind("sha256:", 0), 0u);
  EXPECT_TRUE(*driver_->image_present(ref));
  std::system(("podman rmi " + ref + " >/dev/null 2>&1").c_str());

  // A tag the registry does not have fails inside the stream and is not retriable.
  auto missing = driver_->pull("127.0.0.1:" + port + "/berth/busybox:nope", std::nullopt);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, Errc::pull_failed) << missing.error().message;
  std::cout << "[latency] pull from a local registry " << pull_ms << " ms\n";
}

TEST_F(DockerDriverTest, WebServerOnDynamicPortAnswers) {
  ContainerSpec s = spec("web", {"sh", "-c",
                                 "mkdir -p /www && echo hi > /www/index.html && "
                                 "exec httpd -f -p 80 -h /www"});
  s.network_mode = NetworkMode::bridge;
  s.ports = {{80, Protocol::tcp, 0, ""}};
  auto t = Clock::now();
  auto id = driver_->create(s);
  ASSERT_TRUE(id.ok()) << id.error().message;
  double create_ms = ms_since(t);
  t = Clock::now();
  ASSERT_TRUE(driver_->start(*id).ok());
  double start_ms = ms_since(t);
  t = Clock::now();
  auto st = driver_->inspect(*id);
  double inspect_ms = ms_since(t);
  ASSERT_TRUE(st.ok()) << st.error().message;
  EXPECT_EQ(st->status, ContainerStatus::running);
  ASSERT_EQ(st->ports.size(), 1u);
  uint16_t port = st->ports[0].host_port;
  ASSERT_NE(port, 0);
  std::string body;
  EXPECT_TRUE(wait_for([&] { return (body = http_get(port)) == "hi\n"; }, 5s)) << body;
  t = Clock::now();
  // httpd as PID 1 has no SIGTERM handler, and the kernel ignores unhandled signals for PID 1:
  // stop waits out the 1 s grace and SIGKILLs.
  ASSERT_TRUE(driver_->stop(*id, 1s).ok());
  double stop_ms = ms_since(t);
  EXPECT_EQ(driver_->inspect(*id)->exit_code, 137);
  std::cout << "[latency] bridge create " << create_ms << " ms, start " << start_ms
            << " ms, inspect " << inspect_ms << " ms, stop " << stop_ms << " ms\n";
}

TEST_F(DockerDriverTest, EnvWorkdirUserAndUlimitsAreApplied) {
  ContainerSpec s = spec("env", {"sleep", "30"});
  s.env = {{"GREETING", "hello world"}};
  s.working_dir = "/tmp";
  s.user = "65534";
  s.labels["berth.test.case"] = "env";
  std::string id = run(s);
  auto r =
      driver_->exec_check(id, {"sh", "-c", "echo $GREETING; pwd; id -u; ulimit -n; ulimit -u"}, 5s);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->exit_code, 0);
  EXPECT_EQ(r->output, "hello world\n/tmp\n65534\n1024\n1024\n");
  auto st = driver_->inspect(id);
  EXPECT_EQ(st->labels.at("berth.test.case"), "env");
  EXPECT_EQ(st->image, kImage);
}

TEST_F(DockerDriverTest, ExitCodeIsReported) {
  std::string id = run(spec("exit3", {"sh", "-c", "exit 3"}));
  auto st = wait_exited(id);
  ASSERT_TRUE(st.ok()) << st.error().message;
  EXPECT_EQ(st->status, ContainerStatus::exited);
  EXPECT_EQ(st->exit_code, 3);
  EXPECT_TRUE(st->finished_at);
  EXPECT_FALSE(st->oom_killed);
}

TEST_F(DockerDriverTest, StopHonoursTheGracePeriod) {
  std::string stubborn = run(spec("stubborn", {"sh", "-c", kStubbornLoop}));
  std::string polite = run(spec("polite", {"sh", "-c", kTermLoop}));
  std::this_thread::sleep_for(200ms);  // let the shells install their traps

  auto t = Clock::now();
  ASSERT_TRUE(driver_->stop(polite, 10s).ok());
  double polite_ms = ms_since(t);
  EXPECT_LT(polite_ms, 3000);
  EXPECT_EQ(driver_->inspect(polite)->exit_code, 0);

  t = Clock::now();
  ASSERT_TRUE(driver_->stop(stubborn, 1s).ok());
  double stubborn_ms = ms_since(t);
  EXPECT_GE(stubborn_ms, 950);
  EXPECT_LT(stubborn_ms, 5000);
  EXPECT_EQ(driver_->inspect(stubborn)->exit_code, 137);
  EXPECT_TRUE(driver_->stop(stubborn, 1s).ok());  // already stopped: still success
  std::cout << "[latency] stop on SIGTERM " << polite_ms << " ms, stop after 1 s grace "
            << stubborn_ms << " ms\n";
}

TEST_F(DockerDriverTest, KillDeliversSignals) {
  std::string id = run(spec("kill", {"sh", "-c", kTermLoop}));
  std::this_thread::sleep_for(200ms);
  ASSERT_TRUE(driver_->kill(id, "SIGKILL").ok());
  auto st = wait_exited(id);
  EXPECT_EQ(st->exit_code, 137);
  auto again = driver_->kill(id, "SIGKILL");
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, Errc::conflict) << again.error().message;
}

TEST_F(DockerDriverTest, EventsCarryStartAndDieWithExitCodeAndLabels) {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<Event> seen;
  std::optional<Error> ended;
  const std::string tag = "events-" + std::to_string(::getpid());
  auto sub = driver_->events({.labels = {"berth.test.case=" + tag}, .types = {"container"}},
                             {[&](const Event& e) {
                                std::lock_guard l(mu);
                                seen.push_back(e);
                                cv.notify_all();
                              },
                              [&](const Error& e) {
                                std::lock_guard l(mu);
                                ended = e;
                                cv.notify_all();
                              }});
  ASSERT_TRUE(sub.ok()) << sub.error().message;
  ContainerSpec s = spec("events", {"sh", "-c", "exit 7"});
  s.labels["berth.test.case"] = tag;
  std::string id = run(s);
  {
    std::unique_lock l(mu);
    bool died = cv.wait_for(l, 10s, [&] {
      return std::any_of(seen.begin(), seen.end(),
                         [](const Event& e) { return e.action == "die"; });
    });
    std::string got;
    for (const auto& e : seen) got += e.action + " ";
    ASSERT_TRUE(died) << "events seen: " << got << (ended ? "ended: " + ended->message : "");
    auto start =
        std::find_if(seen.begin(), seen.end(), [](auto& e) { return e.action == "start"; });
    auto die = std::find_if(seen.begin(), seen.end(), [](auto& e) { return e.action == "die"; });
    ASSERT_NE(start, seen.end());
    EXPECT_LT(start - seen.begin(), die - seen.begin());
    EXPECT_EQ(die->id, id);
    EXPECT_EQ(die->exit_code, 7);
    EXPECT_EQ(die->name, s.name);
    EXPECT_EQ(die->labels.at("berth.test.case"), tag);
  }
  (*sub)->cancel();
  std::lock_guard l(mu);
  ASSERT_TRUE(ended);
  EXPECT_EQ(ended->code, Errc::cancelled);
}

TEST_F(DockerDriverTest, ListFiltersByLabelAndIncludesStopped) {
  const std::string tag = "list-" + std::to_string(::getpid());
  ContainerSpec a = spec("list-a", {"sh", "-c", "exit 2"});
  a.labels["berth.test.case"] = tag;
  ContainerSpec b = spec("list-b", {"sleep", "30"});
  b.labels["berth.test.case"] = "other";
  std::string ida = run(a);
  ASSERT_TRUE(driver_->create(b).ok());  // created, never started
  ASSERT_TRUE(wait_exited(ida).ok());
  auto l = driver_->list({.labels = {"berth.test.case=" + tag}});
  ASSERT_TRUE(l.ok()) << l.error().message;
  ASSERT_EQ(l->size(), 1u);
  EXPECT_EQ(l->at(0).id, ida);
  EXPECT_EQ(l->at(0).name, a.name);
  EXPECT_EQ(l->at(0).status, ContainerStatus::exited);
  EXPECT_EQ(l->at(0).exit_code, 2);
  EXPECT_EQ(driver_->list({.labels = {"berth.test.case"}})->size(), 2u);
  EXPECT_EQ(driver_->list({.labels = {"berth.test.case"}, .all = false})->size(), 0u);
}

TEST_F(DockerDriverTest, RemoveAndNameConflicts) {
  ContainerSpec s = spec("rm", {"sleep", "30"});
  std::string id = run(s);
  auto dup = driver_->create(s);
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.error().code, Errc::conflict) << dup.error().message;
  auto busy = driver_->remove(id, false);
  ASSERT_FALSE(busy.ok());
  EXPECT_EQ(busy.error().code, Errc::conflict) << busy.error().message;
  ASSERT_TRUE(driver_->remove(id, true).ok());
  EXPECT_EQ(driver_->inspect(id).error().code, Errc::not_found);
  EXPECT_EQ(driver_->remove(id, true).error().code, Errc::not_found);
  EXPECT_EQ(driver_->start(id).error().code, Errc::not_found);
  ContainerSpec missing = spec("noimage", {"true"});
  missing.image = "localhost/berth-does-not-exist:latest";
  EXPECT_EQ(driver_->create(missing).error().code, Errc::not_found);
}

TEST_F(DockerDriverTest, UnknownExecutableIsAPermanentStartError) {
  auto id = driver_->create(spec("badexe", {"/no/such/binary"}));
  ASSERT_TRUE(id.ok());
  auto st = driver_->start(*id);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, Errc::bad_request) << st.error().message;
  EXPECT_FALSE(retriable(st.error()));
}

TEST_F(DockerDriverTest, MemoryLimitAndStats) {
  ContainerSpec s = spec("mem", {"sleep", "30"});
  s.memory_bytes = 64 << 20;
  s.memory_reservation_bytes = 32 << 20;
  s.cpu_shares = 256;
  std::string id = run(s);
  EXPECT_EQ(driver_->inspect(id)->memory_bytes, 64 << 20);
  auto t = Clock::now();
  auto st = driver_->stats(id);
  double stats_ms = ms_since(t);
  ASSERT_TRUE(st.ok()) << st.error().message;
  EXPECT_GT(st->memory_usage, 0u);
  EXPECT_EQ(st->memory_limit, 64u << 20);
  EXPECT_GT(st->system_cpu_ns, 0u);
  std::cout << "[latency] stats " << stats_ms << " ms\n";
}

TEST_F(DockerDriverTest, ExecCheckReportsExitCodesOutputAndTimeouts) {
  std::string id = run(spec("exec", {"sleep", "30"}));
  auto t = Clock::now();
  auto ok = driver_->exec_check(id, {"true"}, 5s);
  double exec_ms = ms_since(t);
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ(ok->exit_code, 0);
  auto fail = driver_->exec_check(id, {"sh", "-c", "echo out; echo err >&2; exit 1"}, 5s);
  ASSERT_TRUE(fail.ok());
  EXPECT_EQ(fail->exit_code, 1);
  EXPECT_EQ(fail->output, "out\nerr\n");
  auto big = driver_->exec_check(id, {"sh", "-c", "yes | head -c 100000"}, 5s, 1000);
  ASSERT_TRUE(big.ok());
  EXPECT_EQ(big->output.size(), 1000u);
  EXPECT_TRUE(big->truncated);
  t = Clock::now();
  auto slow = driver_->exec_check(id, {"sleep", "5"}, 500ms);
  ASSERT_FALSE(slow.ok());
  EXPECT_EQ(slow.error().code, Errc::timeout);
  EXPECT_LT(ms_since(t), 2000);
  auto missing = driver_->exec_check(id + "x", {"true"}, 1s);
  EXPECT_EQ(missing.error().code, Errc::not_found) << missing.error().message;
  std::cout << "[latency] exec_check " << exec_ms << " ms\n";
}

TEST_F(DockerDriverTest, CallLatencies) {
  // Five create/start/inspect/stop cycles without networking; medians are what the agent's
  // timeouts and the task launch budget are compared against.
  std::vector<double> c, s, i, st;
  for (int n = 0; n < 5; ++n) {
    ContainerSpec spec_n = spec("lat" + std::to_string(n), {"sh", "-c", kTermLoop});
    auto t = Clock::now();
    auto id = driver_->create(spec_n);
    c.push_back(ms_since(t));
    ASSERT_TRUE(id.ok());
    t = Clock::now();
    ASSERT_TRUE(driver_->start(*id).ok());
    s.push_back(ms_since(t));
    t = Clock::now();
    ASSERT_TRUE(driver_->inspect(*id).ok());
    i.push_back(ms_since(t));
    std::this_thread::sleep_for(100ms);
    t = Clock::now();
    ASSERT_TRUE(driver_->stop(*id, 5s).ok());
    st.push_back(ms_since(t));
  }
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  std::cout << "[latency] median of 5 (network none): create " << median(c) << " ms, start "
            << median(s) << " ms, inspect " << median(i) << " ms, stop " << median(st) << " ms\n";
}

}  // namespace
}  // namespace berth::runtime
