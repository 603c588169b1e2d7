#include "lb/haproxy/haproxy_process.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <thread>

#include "lb/errc.h"

extern char** environ;

namespace berth::lb {
namespace {

using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

// Readiness polls: short enough that a reload is noticed within a few tens of milliseconds.
constexpr auto kPollStep = 20ms;

// False once the process is gone or a zombie nobody reaped (an orphaned daemon may linger as one
// when the reaper is slow or absent, as in some containers).
bool process_alive(int pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(f, line)) return false;
  auto paren = line.rfind(')');
  if (paren == std::string::npos || paren + 2 >= line.size()) return false;
  char state = line[paren + 2];
  return state != 'Z' && state != 'X';
}

// Guards against a stale pid file naming a pid the kernel has since given to another program.
bool runs_master_socket(int pid, const std::string& master_socket) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/cmdline", std::ios::binary);
  std::string cmd((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  return cmd.find(master_socket) != std::string::npos;
}

std::string description_of(std::string_view info) {
  constexpr std::string_view key = "description: ";
  size_t p = info.find(std::string("\n").append(key));
  if (p == std::string_view::npos) return "";
  p += 1 + key.size();
  size_t e = info.find('\n', p);
  return std::string(info.substr(p, e == std::string_view::npos ? std::string_view::npos : e - p));
}

}  // namespace

RunPaths RunPaths::in(const std::string& dir) {
  std::string d = std::filesystem::absolute(dir).lexically_normal().string();
  while (d.size() > 1 && d.back() == '/') d.pop_back();
  return RunPaths{d,
                  d + "/haproxy.cfg",
                  d + "/master.sock",
                  d + "/admin.sock",
                  d + "/haproxy.pid",
                  d + "/server-state",
                  d + "/haproxy.log",
                  d + "/registering"};
}

Status write_file_atomic(const std::string& path, std::string_view content) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    f.write(content.data(), static_cast<std::streamsize>(content.size()));
    f.flush();
    if (!f) return Error(Errc::io, "cannot write " + tmp);
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) return Error(Errc::io, "cannot rename " + tmp + ": " + ec.message());
  return {};
}

Result<std::string> read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return Error(Errc::io, "cannot read " + path);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

HaproxyProcess::HaproxyProcess(std::string binary, RunPaths paths,
                               std::chrono::milliseconds socket_timeout,
                               std::chrono::milliseconds ready_timeout)
    : binary_(std::move(binary)),
      paths_(std::move(paths)),
      admin_(paths_.admin_socket, socket_timeout),
      master_(paths_.master_socket, socket_timeout),
      ready_timeout_(ready_timeout) {}

Result<std::string> HaproxyProcess::running_description() const {
  BERTH_TRY(std::string info, admin_.call("show info"));
  if (info.find("\nPid: ") == std::string::npos)
    return Error(Errc::unavailable, "unexpected 'show info' answer");
  return description_of(info);
}

bool HaproxyProcess::master_alive() const {
  auto r = master_.call_master("show proc");
  return r.ok() && r->find(" master ") != std::string::npos;
}

Result<int> HaproxyProcess::master_pid() const {
  if (auto r = master_.call_master("show proc"); r.ok()) {
    std::istringstream in(*r);
    std::string line;
    while (std::getline(in, line)) {
      std::istringstream l(line);
      int pid = 0;
      std::string type;
      if (l >> pid >> type && type == "master") return pid;
    }
  }
  // No master CLI (e.g. the master is shutting down): fall back to the pid file.
  auto text = read_file(paths_.pid_file);
  if (text.ok()) {
    int pid = std::atoi(text->c_str());
    if (pid > 0 && process_alive(pid) && runs_master_socket(pid, paths_.master_socket)) return pid;
  }
  return Error(Errc::unavailable, "no proxy runs from " + paths_.dir);
}

Result<int> HaproxyProcess::failed_reloads() const {
  BERTH_TRY(std::string proc, master_.call_master("show proc"));
  auto p = proc.find("[failed: ");
  if (p == std::string::npos) return Error(Errc::unavailable, "unexpected 'show proc' answer");
  return std::atoi(proc.c_str() + p + 9);
}

std::string HaproxyProcess::log_tail(const std::string& file) const {
  auto text = read_file(file);
  if (!text.ok()) return "";
  // Alerts name the cause (bad line, port in use); fall back to the end of the output.
  std::istringstream in(*text);
  std::string line, alerts;
  while (std::getline(in, line))
    if (line.find("ALERT") != std::string::npos) alerts += line + "\n";
  std::string out = alerts.empty() ? *text : alerts;
  if (out.empty()) return "no message from haproxy";
  if (out.size() > 800) out = out.substr(out.size() - 800);
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

Result<int> HaproxyProcess::run(const std::vector<std::string>& args,
                                const std::string& output) const {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, output.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  // The daemon must not keep Berth's sockets open (a restarted Berth could not bind them).
  posix_spawn_file_actions_addclosefrom_np(&fa, 3);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, defaults;
  sigemptyset(&none);
  sigemptyset(&defaults);
  for (int s : {SIGPIPE, SIGHUP, SIGINT, SIGTERM, SIGUSR1, SIGUSR2, SIGCHLD})
    sigaddset(&defaults, s);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = 0;
  int rc = posix_spawn(&pid, binary_.c_str(), &fa, &attr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) return Error(Errc::start_failed, binary_ + ": " + std::strerror(rc));

  // Both `-c` and the daemonizing launcher exit within milliseconds.
  const auto deadline = SteadyClock::now() + ready_timeout_;
  for (;;) {
    int status = 0;
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (r < 0 && errno == ECHILD) return 0;  // SIGCHLD ignored by the host process: reaped already
    if (r < 0 && errno != EINTR) return Error(Errc::start_failed, std::strerror(errno));
    if (SteadyClock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      return Error(Errc::timeout, binary_ + " did not exit in time");
    }
    std::this_thread::sleep_for(5ms);
  }
}

Status HaproxyProcess::check_config(const std::string& file) const {
  std::string out = paths_.dir + "/check.log";
  BERTH_TRY(int rc, run({binary_, "-c", "-f", file}, out));
  if (rc != 0)
    return Error(Errc::invalid_config, "haproxy rejected the configuration: " + log_tail(out));
  return {};
}

Status HaproxyProcess::start(std::string_view description) const {
  BERTH_TRY(int rc, run({binary_, "-W", "-D", "-S", paths_.master_socket, "-p", paths_.pid_file,
                         "-f", paths_.config},
                        paths_.log));
  if (rc != 0)
    return Error(Errc::start_failed,
                 "haproxy exited with " + std::to_string(rc) + ": " + log_tail(paths_.log));
  return wait_ready(description);
}

Status HaproxyProcess::reload(std::string_view description) const {
  BERTH_TRY(int failed_before, failed_reloads());
  // The master re-executes itself, which closes this connection; its answer is empty.
  BERTH_TRY(std::string ignored, master_.call("reload"));
  const auto deadline = SteadyClock::now() + ready_timeout_;
  for (;;) {
    auto d = running_description();
    if (d.ok() && *d == description) return {};
    // A worker that failed to start leaves the old one serving and counts a failed reload.
    // A master that cannot load the new configuration (typically: a listener's port is taken;
    // `haproxy -c` does not bind) counts a failed reload and keeps the old worker serving. Its
    // messages go nowhere once daemonized, hence no detail here.
    if (auto f = failed_reloads(); f.ok() && *f > failed_before)
      return Error(Errc::reload_failed,
                   "the proxy could not load the new configuration (a listener port in use?); "
                   "the previous configuration keeps serving");
    if (SteadyClock::now() > deadline)
      return Error(Errc::reload_failed, "no worker with the new configuration after reload");
    std::this_thread::sleep_for(kPollStep);
  }
}

Status HaproxyProcess::wait_ready(std::string_view description) const {
  const auto deadline = SteadyClock::now() + ready_timeout_;
  for (;;) {
    auto d = running_description();
    if (d.ok() && (description.empty() || *d == description)) return {};
    if (SteadyClock::now() > deadline)
      return Error(Errc::timeout,
                   "proxy did not answer on " + paths_.admin_socket + ": " + log_tail(paths_.log));
    std::this_thread::sleep_for(kPollStep);
  }
}

Status HaproxyProcess::stop() const {
  auto pid = master_pid();
  if (!pid.ok()) return {};
  if (::kill(*pid, SIGTERM) != 0 && errno != ESRCH)
    return Error(Errc::unavailable, "cannot signal proxy: " + std::string(std::strerror(errno)));
  const auto deadline = SteadyClock::now() + ready_timeout_;
  while (process_alive(*pid) || running_description().ok()) {
    if (SteadyClock::now() > deadline) return Error(Errc::timeout, "proxy did not stop");
    std::this_thread::sleep_for(kPollStep);
  }
  return {};
}

}  // namespace berth::lb
