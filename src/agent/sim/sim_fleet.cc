#include "agent/sim/sim_fleet.h"

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <cstdio>
#include <deque>
#include <mutex>
#include <optional>
#include <random>
#include <thread>
#include <vector>

#include "api/sigv4.h"

namespace berth::agent::sim {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;
using Stream = websocket::stream<beast::tcp_stream>;
using Strand = asio::strand<asio::io_context::executor_type>;

namespace {

// One simulated instance: everything here is used on its strand only (the atomics excepted).
struct Instance {
  Instance(asio::io_context& ioc, SimAgent a)
      : strand(asio::make_strand(ioc)), wake(strand), retry(strand), agent(std::move(a)) {}
  Strand strand;
  asio::steady_timer wake;   // the writer sleeps on it until the next due time or a new message
  asio::steady_timer retry;  // reconnect backoff
  SimAgent agent;
  std::string arn;
  std::deque<std::string> outq;
  std::shared_ptr<Stream> ws;  // the open session, if any
  std::atomic<size_t> running{0};
};

}  // namespace

struct SimFleet::State {
  State(FleetOptions o, const Clock& c) : options(std::move(o)), clock(c) {}
  FleetOptions options;
  const Clock& clock;
  SystemClock signing_clock;
  asio::io_context ioc;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::vector<std::thread> threads;
  std::vector<std::unique_ptr<Instance>> instances;
  tcp::endpoint server;
  std::atomic<bool> stopping{false};
  std::atomic<size_t> registered{0}, connected{0}, live{0};
  std::atomic<uint64_t> reports{0};

  void enqueue(Instance& in, std::vector<std::string> msgs) {
    if (!in.ws) return;  // reports are re-sent on the next connection; acks are re-asked for
    for (auto& m : msgs) in.outq.push_back(std::move(m));
    if (!msgs.empty()) in.wake.cancel();
  }

  std::vector<std::pair<std::string, std::string>> signed_headers(const std::string& target) {
    api::HttpRequest req;
    req.method = "GET";
    req.target = target;
    req.headers = {{"Host", options.endpoint.host_header()}};
    api::sign_request(req, options.key, options.sim.region, "ecs", signing_clock.now());
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& [k, v] : req.headers) {
      if (k != "Host") out.emplace_back(k, v);
    }
    return out;
  }

  // Sends queued messages and due reports while the session `ws` is the open one.
  asio::awaitable<void> writer(Instance& in, std::shared_ptr<Stream> ws) {
    boost::system::error_code ec;
    while (in.ws == ws && !stopping) {
      enqueue(in, in.agent.tick());
      in.running = in.agent.running();
      while (!in.outq.empty() && in.ws == ws) {
        std::string m = std::move(in.outq.front());
        in.outq.pop_front();
        co_await ws->async_write(asio::buffer(m), asio::redirect_error(asio::use_awaitable, ec));
        if (ec) {
          beast::get_lowest_layer(*ws).close();  // the reader sees it and reconnects
          co_return;
        }
        if (m.starts_with(R"({"type":"task_state")")) ++reports;
      }
      // Until the next start or heartbeat, a new message, or a short poll: the injected clock
      // may be a manual one that moves without telling anybody.
      auto delay =
          std::chrono::duration_cast<std::chrono::milliseconds>(in.agent.next_due() - clock.now());
      in.wake.expires_after(std::clamp<std::chrono::milliseconds>(delay, 1ms, 250ms));
      co_await in.wake.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
  }

  asio::awaitable<void> session(Instance& in, uint64_t jitter_seed) {
    std::mt19937_64 rng(jitter_seed);
    std::string target = channel_target(options.cluster, in.arn);
    boost::system::error_code ec;
    while (!stopping) {
      auto ws = std::make_shared<Stream>(in.strand);
      beast::get_lowest_layer(*ws).expires_after(10s);
      co_await beast::get_lowest_layer(*ws).async_connect(
          server, asio::redirect_error(asio::use_awaitable, ec));
      if (!ec) {
        beast::get_lowest_layer(*ws).expires_never();
        websocket::stream_base::timeout t{};
        t.handshake_timeout = 10s;
        // The server pings every 10 s; a server silent for 30 s is taken for dead.
        t.idle_timeout = 30s;
        t.keep_alive_pings = false;
        ws->set_option(t);
        ws->set_option(websocket::stream_base::decorator(
            [h = signed_headers(target)](websocket::request_type& req) {
              for (const auto& [k, v] : h) req.set(k, v);
              req.set(beast::http::field::user_agent, "berth-sim-agent");
            }));
        co_await ws->async_handshake(options.endpoint.host_header(), target,
                                     asio::redirect_error(asio::use_awaitable, ec));
      }
      if (!ec && !stopping) {
        in.ws = ws;
        in.outq.clear();
        ++connected;
        enqueue(in, in.agent.on_connected());
        ++live;
        asio::co_spawn(in.strand, writer(in, ws), [this](std::exception_ptr) { --live; });
        beast::flat_buffer buf;
        while (!stopping) {
          co_await ws->async_read(buf, asio::redirect_error(asio::use_awaitable, ec));
          if (ec) break;
          enqueue(in, in.agent.handle(beast::buffers_to_string(buf.data())));
          in.running = in.agent.running();
          buf.consume(buf.size());
        }
        in.ws.reset();
        in.wake.cancel();
        --connected;
      }
      beast::get_lowest_layer(*ws).close();
      if (stopping) break;
      // About a second, jittered so a restarted server does not get every instance at once.
      in.retry.expires_after(std::chrono::milliseconds(500 + rng() % 1000));
      co_await in.retry.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
  }
};

SimFleet::SimFleet(FleetOptions options, const Clock& clock)
    : state_(std::make_unique<State>(std::move(options), clock)) {
  for (size_t i = 0; i < state_->options.count; ++i) {
    state_->instances.push_back(
        std::make_unique<Instance>(state_->ioc, SimAgent(state_->options.sim, i, clock)));
  }
}

SimFleet::~SimFleet() { stop(); }

Status SimFleet::register_all() {
  State& s = *state_;
  std::atomic<size_t> next{0};
  std::mutex mu;
  std::optional<Error> failed;
  auto work = [&] {
    ApiClient api(s.options.endpoint, s.options.key, s.options.sim.region, s.signing_clock);
    for (size_t i; (i = next++) < s.instances.size();) {
      {
        std::lock_guard lock(mu);
        if (failed) return;
      }
      Instance& in = *s.instances[i];
      auto body = in.agent.registration(s.options.cluster);
      Result<boost::json::value> r = Error(ClientErrc::transport, "not tried");
      for (int attempt = 0; attempt < 20; ++attempt) {
        r = api.call("RegisterContainerInstance", body);
        if (r.ok() || !retriable(r.error())) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(100 * (attempt + 1)));
      }
      const boost::json::value* arn = nullptr;
      if (r.ok() && r->is_object()) {
        if (auto* ci = r->as_object().if_contains("containerInstance"); ci && ci->is_object()) {
          arn = ci->as_object().if_contains("containerInstanceArn");
        }
      }
      if (arn == nullptr || !arn->is_string()) {
        std::lock_guard lock(mu);
        failed = r.ok() ? Error(ClientErrc::server, "RegisterContainerInstance: no ARN in reply")
                        : r.error();
        return;
      }
      in.arn = std::string(arn->as_string());
      ++s.registered;
    }
  };
  std::vector<std::thread> pool;
  for (int t = 0; t < std::max(1, s.options.register_parallelism); ++t) pool.emplace_back(work);
  for (auto& t : pool) t.join();
  if (failed) return *failed;
  return {};
}

void SimFleet::start() {
  State& s = *state_;
  tcp::resolver resolver(s.ioc);
  boost::system::error_code ec;
  auto found =
      resolver.resolve(s.options.endpoint.host, std::to_string(s.options.endpoint.port), ec);
  if (!ec && !found.empty()) s.server = *found.begin();
  s.work.emplace(s.ioc.get_executor());
  for (size_t i = 0; i < s.instances.size(); ++i) {
    Instance& in = *s.instances[i];
    if (in.arn.empty()) continue;
    ++s.live;
    asio::co_spawn(in.strand, s.session(in, s.options.sim.seed ^ (i * 0x2545F4914F6CDD1DULL)),
                   [&s](std::exception_ptr) { --s.live; });
  }
  for (int t = 0; t < std::max(1, s.options.threads); ++t) {
    s.threads.emplace_back([&s] { s.ioc.run(); });
  }
}

void SimFleet::stop() {
  State& s = *state_;
  if (s.stopping.exchange(true)) return;
  for (auto& p : s.instances) {
    Instance* in = p.get();
    asio::post(in->strand, [in] {
      if (in->ws) beast::get_lowest_layer(*in->ws).close();
      in->wake.cancel();
      in->retry.cancel();
    });
  }
  s.work.reset();
  // Every coroutine ends once its socket is closed; a stuck one must not hang the process.
  for (int i = 0; i < 100 && s.live > 0; ++i) std::this_thread::sleep_for(50ms);
  s.ioc.stop();
  for (auto& t : s.threads) t.join();
  s.threads.clear();
}

size_t SimFleet::registered() const { return state_->registered; }
size_t SimFleet::connected() const { return state_->connected; }
uint64_t SimFleet::reports_sent() const { return state_->reports; }
size_t SimFleet::running_tasks() const {
  size_t n = 0;
  for (const auto& in : state_->instances) n += in->running;
  return n;
}

}  // namespace berth::agent::sim
