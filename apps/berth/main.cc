// berth: one binary, subcommands. This is the only place concrete types are wired together.

#include <sys/stat.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <mutex>
#include <random>
#include <thread>

#include "agent_main.h"
#include "api/credentials.h"
#include "api/frontend.h"
#include "api/sigv4.h"
#include "common/clock.h"
#include "common/random.h"
#include "drain_main.h"
#include "lb/haproxy/haproxy_data_plane.h"
#include "server/ecs/agent_sessions.h"
#include "server/ecs/ecs_service.h"
#include "server/ecs/janitor.h"
#include "server/ecs/service_controller.h"
#include "server/elbv2/elbv2_service.h"
#include "server/elbv2/lb_controller.h"
#include "server/elbv2/service_targets.h"
#include "server/http_server.h"
#include "sim_main.h"
#include "store/store.h"

namespace {

struct ServerFlags {
  std::string listen = "127.0.0.1:8080";
  std::string data_dir = "berth-data";
  std::string credentials;
  std::string region = "us-east-1";
  std::string account_id = "123456789012";
  int threads = 2;
  size_t max_body_bytes = 1 << 20;
  int header_timeout_ms = 10'000;
  int body_timeout_ms = 30'000;
  bool no_auth = false;
  int task_retention_seconds = 3600;
  // An agent channel silent this long (no heartbeat, no pong) is dropped and the instance shows
  // agentConnected=false. 30 s, as the ECS agent's heartbeat window; pings go out every third of
  // it, so three unanswered pings are needed before giving up.
  int agent_heartbeat_timeout_ms = 30'000;
  // A service task whose instance's agent stays disconnected this long is replaced elsewhere.
  int agent_lost_grace_seconds = 300;
  // Load balancing: listeners bind here unless CreateLoadBalancer names an address.
  std::string lb_default_address = "0.0.0.0";
  // The HAProxy binary that carries load-balanced traffic; "none" serves the ELBv2 API without a
  // data plane (targets then stay in their initial health).
  std::string haproxy = "/usr/sbin/haproxy";
  std::string lb_run_dir;  // default DATA_DIR/haproxy
};

// Runs `fn` every `period` on its own thread until destroyed.
class Ticker {
 public:
  Ticker(std::chrono::milliseconds period, std::function<void()> fn)
      : thread_([this, period, fn = std::move(fn)] {
          std::unique_lock lock(mu_);
          while (!cv_.wait_for(lock, period, [this] { return stop_; })) {
            lock.unlock();
            fn();
            lock.lock();
          }
        }) {}
  ~Ticker() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

std::unique_ptr<berth::lb::DataPlane> make_haproxy_data_plane(const std::string& binary,
                                                              const std::string& run_dir) {
  berth::lb::HaproxyOptions o;
  o.haproxy_binary = binary;
  o.run_dir = run_dir;
  return std::make_unique<berth::lb::HaproxyDataPlane>(std::move(o));
}

uint64_t os_seed() {
  std::random_device rd;
  return (static_cast<uint64_t>(rd()) << 32) ^ rd();
}

int run_server(const ServerFlags& f) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(f.data_dir, ec);
  if (ec) {
    std::fprintf(stderr, "berth: cannot create data dir %s: %s\n", f.data_dir.c_str(),
                 ec.message().c_str());
    return 1;
  }
  ::chmod(f.data_dir.c_str(), 0700);

  auto store = berth::store::open_sqlite_store((fs::path(f.data_dir) / "state.db").string());
  if (!store.ok()) {
    std::fprintf(stderr, "berth: cannot open store: %s\n", store.error().message.c_str());
    return 1;
  }

  std::string cred_path = f.credentials.empty()
                              ? fs::absolute(fs::path(f.data_dir) / "credentials").string()
                              : f.credentials;
  std::string profile = "berth";
  if (f.credentials.empty() && !fs::exists(cred_path)) {
    auto created = berth::api::CredentialStore::create_file(cred_path, profile);
    if (!created.ok()) {
      std::fprintf(stderr, "berth: cannot create credentials: %s\n",
                   created.error().message.c_str());
      return 1;
    }
  }
  auto creds = berth::api::CredentialStore::load(cred_path);
  if (!creds.ok()) {
    std::fprintf(stderr, "berth: cannot load credentials %s: %s\n", cred_path.c_str(),
                 creds.error().message.c_str());
    return 1;
  }

  berth::SystemClock clock;
  berth::SeededRandom rng(os_seed());
  berth::server::ecs::EcsService ecs(**store, clock, rng, {f.region, f.account_id});
  berth::api::SigV4Verifier verifier(*creds, clock, f.region);
  berth::api::Frontend frontend(f.no_auth ? nullptr : &verifier, os_seed());
  frontend.add_json_service(ecs.json());
  berth::server::elbv2::Elbv2Service elbv2(**store, clock, rng,
                                           {f.region, f.account_id, f.lb_default_address});
  frontend.add_query_service(elbv2.query());
  berth::server::elbv2::StoreLoadBalancing load_balancing(**store, clock);
  ecs.context().set_load_balancing(&load_balancing);
  std::unique_ptr<berth::lb::DataPlane> data_plane;
  if (f.haproxy != "none") {
    data_plane = make_haproxy_data_plane(
        f.haproxy,
        f.lb_run_dir.empty() ? (fs::path(f.data_dir) / "haproxy").string() : f.lb_run_dir);
  }

  berth::server::HttpServerOptions opts;
  opts.listen = f.listen;
  opts.threads = f.threads;
  opts.max_body_bytes = f.max_body_bytes;
  opts.header_timeout = std::chrono::milliseconds(f.header_timeout_ms);
  opts.body_timeout = std::chrono::milliseconds(f.body_timeout_ms);
  opts.ws_idle_timeout = std::chrono::milliseconds(f.agent_heartbeat_timeout_ms);
  opts.ws_ping_interval = opts.ws_idle_timeout / 3;
  berth::server::HttpServer http(opts, frontend);
  // The agents' push channel (task assignments, state reports, agentConnected).
  berth::server::ecs::AgentSessions agent_sessions(ecs.context(), f.no_auth ? nullptr : &verifier);
  http.add_websocket(std::string(berth::server::ecs::AgentSessions::kPath), agent_sessions);
  auto bound = http.start();
  if (!bound.ok()) {
    std::fprintf(stderr, "berth: cannot listen on %s: %s\n", f.listen.c_str(),
                 bound.error().message.c_str());
    return 1;
  }
  // The first line is machine-readable: tests and scripts read the endpoint from it.
  std::printf("berth server listening on http://%s\n", bound->c_str());
  std::printf("  data dir:    %s\n", fs::absolute(f.data_dir).c_str());
  std::printf("  credentials: %s%s\n", cred_path.c_str(), f.no_auth ? " (auth disabled)" : "");
  std::printf(
      "  try:         AWS_SHARED_CREDENTIALS_FILE=%s AWS_PROFILE=%s AWS_REGION=%s "
      "aws ecs create-cluster --cluster-name demo --endpoint-url http://%s\n",
      cred_path.c_str(), profile.c_str(), f.region.c_str(), bound->c_str());
  std::fflush(stdout);
  berth::server::ecs::Janitor janitor(ecs.context(),
                                      std::chrono::seconds(f.task_retention_seconds));
  // Sweep often enough that a stopped task disappears within ~10% of its retention.
  auto sweep_every = std::chrono::milliseconds(
      std::clamp<int64_t>(int64_t{f.task_retention_seconds} * 100, 100, 60'000));
  Ticker sweeper(sweep_every, [&janitor] {
    if (auto r = janitor.sweep(); !r.ok()) {
      std::fprintf(stderr, "berth: task janitor: %s\n", r.error().message.c_str());
    }
  });
  // Keeps every service's tasks at its desired state (ticks every second and on store changes).
  berth::server::ecs::ServiceController service_controller(
      ecs.context(), ecs.placer(), std::chrono::seconds(f.agent_lost_grace_seconds));
  service_controller.start();
  // Drives the proxy from the ELBv2 records; the proxy itself outlives the server on purpose, so
  // restarting Berth does not interrupt load-balanced traffic.
  berth::server::elbv2::LbController lb_controller(**store, clock, data_plane.get());
  lb_controller.start();
  http.run(/*handle_signals=*/true);
  std::printf("berth server stopped\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"berth: a self-hosted container orchestrator that speaks the Amazon ECS API"};
  app.require_subcommand(1);

  ServerFlags sf;
  auto* server = app.add_subcommand("server", "Run the control plane (ECS API endpoint)");
  server->add_option("--listen", sf.listen, "ADDR:PORT to listen on (port 0 picks a free port)")
      ->capture_default_str();
  server->add_option("--data-dir", sf.data_dir, "Directory for the state database and credentials")
      ->capture_default_str();
  server->add_option("--credentials", sf.credentials,
                     "AWS shared-credentials file with the accepted access keys (default: "
                     "DATA_DIR/credentials, created with a fresh key pair on first start)");
  server->add_option("--region", sf.region, "Region in ARNs and signatures")->capture_default_str();
  server->add_option("--account-id", sf.account_id, "Account id in ARNs")->capture_default_str();
  server->add_option("--threads", sf.threads, "Listener threads")
      ->capture_default_str()
      ->check(CLI::Range(1, 256));
  server->add_option("--max-body-bytes", sf.max_body_bytes, "Largest accepted request body")
      ->capture_default_str();
  server->add_option("--header-timeout-ms", sf.header_timeout_ms, "Request header read timeout")
      ->capture_default_str();
  server->add_option("--body-timeout-ms", sf.body_timeout_ms, "Request body read timeout")
      ->capture_default_str();
  server->add_flag("--insecure-no-auth", sf.no_auth, "Accept unsigned requests (testing only)");
  server
      ->add_option("--task-retention-seconds", sf.task_retention_seconds,
                   "How long STOPPED tasks stay describable")
      ->capture_default_str()
      ->check(CLI::Range(1, 7 * 24 * 3600));
  server
      ->add_option("--agent-heartbeat-timeout-ms", sf.agent_heartbeat_timeout_ms,
                   "Drop an agent channel silent this long (agentConnected=false); pings every "
                   "third of it")
      ->capture_default_str()
      ->check(CLI::Range(300, 3'600'000));
  server
      ->add_option("--agent-lost-grace-seconds", sf.agent_lost_grace_seconds,
                   "Replace service tasks of an instance whose agent stays disconnected this long")
      ->capture_default_str()
      ->check(CLI::Range(1, 7 * 24 * 3600));

  server
      ->add_option("--lb-default-address", sf.lb_default_address,
                   "Address load balancer listeners bind when CreateLoadBalancer names none "
                   "(SubnetMappings PrivateIPv4Address)")
      ->capture_default_str();
  server
      ->add_option("--haproxy", sf.haproxy,
                   "HAProxy binary for the load balancers' data plane (run and supervised in "
                   "DATA_DIR/haproxy; it keeps serving while Berth restarts), or \"none\"")
      ->capture_default_str();

  server->add_option("--lb-run-dir", sf.lb_run_dir,
                     "Directory of the HAProxy Berth drives (config, sockets, pid file); a proxy "
                     "already running from it is adopted (default: DATA_DIR/haproxy)");

  std::function<int()> run_other;
  berth::apps::add_agent_command(app, run_other);
  berth::apps::add_dev_command(app, run_other);
  berth::apps::add_sim_command(app, run_other);
  berth::apps::add_drain_command(app, run_other);

  CLI11_PARSE(app, argc, argv);
  if (*server) return run_server(sf);
  if (run_other) return run_other();
  return 2;
}
