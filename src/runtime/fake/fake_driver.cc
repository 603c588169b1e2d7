#include "runtime/fake/fake_driver.h"

#include <algorithm>
#include <cstdio>
#include <thread>

namespace berth::runtime {
namespace {

bool labels_match(const Labels& labels, const std::vector<std::string>& wanted) {
  for (const std::string& w : wanted) {
    auto eq = w.find('=');
    auto it = labels.find(w.substr(0, eq));
    if (it == labels.end()) return false;
    if (eq != std::string::npos && it->second != w.substr(eq + 1)) return false;
  }
  return true;
}

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return v.empty() || std::find(v.begin(), v.end(), s) != v.end();
}

std::string hex_id(uint64_t n, const char* salt) {
  char buf[80];
  std::snprintf(buf, sizeof buf, "%s%056llx", salt, static_cast<unsigned long long>(n));
  return buf;
}

Error unavailable() { return {Errc::unavailable, "fake engine unavailable"}; }

}  // namespace

// One event stream: a queue drained by its own thread, like DockerDriver's reader thread.
struct FakeDriver::Subscriber {
  EventFilter filter;
  EventHandlers handlers;
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Event> queue;
  bool busy = false;
  std::optional<Error> end;
  bool ended = false;
  std::thread thread;

  bool matches(const Event& e) const {
    if (filter.since && e.time < *filter.since) return false;
    return contains(filter.types, e.type) && contains(filter.actions, e.action) &&
           labels_match(e.labels, filter.labels);
  }
  void push(const Event& e) {
    std::lock_guard lock(mu);
    if (end || !matches(e)) return;
    queue.push_back(e);
    cv.notify_all();
  }
  // Ends the stream; `drop` discards undelivered events (cancel) rather than delivering them
  // first (the engine closed a stream it had already written to).
  void finish(Error e, bool drop) {
    std::lock_guard lock(mu);
    if (drop) queue.clear();
    if (!end) end = std::move(e);
    cv.notify_all();
  }
  void wait_idle() {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return ended || (queue.empty() && !busy); });
  }
  void run() {
    std::unique_lock lock(mu);
    for (;;) {
      cv.wait(lock, [&] { return !queue.empty() || end; });
      if (!queue.empty()) {
        Event e = std::move(queue.front());
        queue.pop_front();
        busy = true;
        lock.unlock();
        if (handlers.on_event) handlers.on_event(e);
        lock.lock();
        busy = false;
        cv.notify_all();
        continue;
      }
      Error err = *end;
      lock.unlock();
      if (handlers.on_end) handlers.on_end(err);
      lock.lock();
      ended = true;
      cv.notify_all();
      return;
    }
  }
};

namespace {

class FakeSubscription final : public EventSubscription {
 public:
  explicit FakeSubscription(std::shared_ptr<FakeDriver::Subscriber> s) : s_(std::move(s)) {}
  ~FakeSubscription() override { cancel(); }
  void cancel() override {
    s_->finish(Error(Errc::cancelled, "events: cancelled"), /*drop=*/true);
    if (s_->thread.joinable() && s_->thread.get_id() != std::this_thread::get_id())
      s_->thread.join();
  }

 private:
  std::shared_ptr<FakeDriver::Subscriber> s_;
};

}  // namespace

std::unique_ptr<EventSubscription> FakeDriver::subscribe_locked(const EventFilter& f,
                                                                EventHandlers h) {
  auto s = std::make_shared<Subscriber>();
  s->filter = f;
  s->handlers = std::move(h);
  s->thread = std::thread([raw = s.get()] { raw->run(); });
  subscribers_.push_back(s);
  return std::make_unique<FakeSubscription>(std::move(s));
}

FakeDriver::FakeDriver() : now_(std::chrono::sys_days(std::chrono::year(2026) / 1 / 1)) {}

FakeDriver::~FakeDriver() {
  std::lock_guard lock(mu_);
  for (auto& s : subscribers_) s->finish(Error(Errc::unavailable, "fake engine destroyed"), false);
}

std::optional<FakeDriver::Failure> FakeDriver::begin(Op op, std::string target,
                                                     std::string detail) {
  calls_.push_back({op, std::move(target), std::move(detail)});
  if (!available_) return Failure{unavailable(), false};
  auto it = failures_.find(op);
  if (it == failures_.end() || it->second.empty()) return std::nullopt;
  Failure f = std::move(it->second.front());
  it->second.pop_front();
  return f;
}

FakeDriver::Container* FakeDriver::find(const std::string& key) {
  if (auto it = containers_.find(key); it != containers_.end()) return &it->second;
  for (auto& [id, c] : containers_)
    if (c.state.name == key || (key.size() >= 12 && id.rfind(key, 0) == 0)) return &c;
  return nullptr;
}

FakeDriver::Script& FakeDriver::script_for(const std::string& name) { return scripts_[name]; }

void FakeDriver::emit(const Container& c, std::string action, std::optional<int> exit_code) {
  Event e{.type = "container",
          .action = std::move(action),
          .id = c.state.id,
          .name = c.state.name,
          .image = c.state.image,
          .exit_code = exit_code,
          .health = HealthStatus::none,
          .labels = c.state.labels,
          .time = now_};
  if (e.action == "health_status") e.health = c.state.health;
  for (auto& s : subscribers_) s->push(e);
}

void FakeDriver::exit_locked(Container& c, int code, bool oom) {
  c.state.status = ContainerStatus::exited;
  c.state.running = false;
  c.state.exit_code = code;
  c.state.oom_killed = oom;
  c.state.finished_at = now_;
  ++c.run;  // invalidates a pending exit_after timer
  if (oom) emit(c, "oom");
  emit(c, "die", code);
}

// ---- Scripting ----

void FakeDriver::add_image(const std::string& image) {
  std::lock_guard lock(mu_);
  if (!images_.count(image)) images_[image] = "sha256:" + hex_id(images_.size() + 1, "1mage000");
}

void FakeDriver::set_pull_error(const std::string& image, std::optional<Error> e) {
  std::lock_guard lock(mu_);
  if (e) {
    pull_errors_[image] = std::move(*e);
  } else {
    pull_errors_.erase(image);
  }
}

void FakeDriver::fail_next(Op op, Error e, bool apply) {
  std::lock_guard lock(mu_);
  failures_[op].push_back({std::move(e), apply});
}

void FakeDriver::script(const std::string& name, Script s) {
  std::lock_guard lock(mu_);
  scripts_[name] = std::move(s);
}

Status FakeDriver::exit_now(const std::string& key, int exit_code, bool oom_killed) {
  std::lock_guard lock(mu_);
  Container* c = find(key);
  if (!c) return Error(Errc::not_found, "no such container: " + key);
  if (!c->state.running) return Error(Errc::conflict, "container not running: " + key);
  exit_locked(*c, exit_code, oom_killed);
  return {};
}

void FakeDriver::advance(std::chrono::milliseconds d) {
  std::lock_guard lock(mu_);
  const TimePoint target = now_ + d;
  for (;;) {
    auto due = std::min_element(timers_.begin(), timers_.end(), [](const Timer& a, const Timer& b) {
      return a.due != b.due ? a.due < b.due : a.seq < b.seq;
    });
    if (due == timers_.end() || due->due > target) break;
    Timer t = *due;
    timers_.erase(due);
    now_ = std::max(now_, t.due);
    auto it = containers_.find(t.id);
    if (it == containers_.end() || it->second.run != t.run || !it->second.state.running) continue;
    exit_locked(it->second, script_for(it->second.state.name).exit_code, false);
  }
  now_ = target;
}

Status FakeDriver::set_health(const std::string& key, HealthStatus h) {
  std::lock_guard lock(mu_);
  Container* c = find(key);
  if (!c) return Error(Errc::not_found, "no such container: " + key);
  c->state.health = h;
  emit(*c, "health_status");
  return {};
}

void FakeDriver::set_available(bool available) {
  std::lock_guard lock(mu_);
  available_ = available;
}

void FakeDriver::break_event_streams(Error e) {
  std::lock_guard lock(mu_);
  for (auto& s : subscribers_) s->finish(e, false);
  subscribers_.clear();
}

// ---- Observation ----

std::vector<FakeDriver::Call> FakeDriver::calls() const {
  std::lock_guard lock(mu_);
  return calls_;
}

size_t FakeDriver::count(Op op) const {
  std::lock_guard lock(mu_);
  return static_cast<size_t>(
      std::count_if(calls_.begin(), calls_.end(), [op](const Call& c) { return c.op == op; }));
}

void FakeDriver::clear_calls() {
  std::lock_guard lock(mu_);
  calls_.clear();
}

std::optional<ContainerSpec> FakeDriver::spec(const std::string& key) const {
  std::lock_guard lock(mu_);
  Container* c = const_cast<FakeDriver*>(this)->find(key);
  if (!c) return std::nullopt;
  return c->spec;
}

void FakeDriver::flush_events() {
  std::vector<std::shared_ptr<Subscriber>> subs;
  {
    std::lock_guard lock(mu_);
    subs = subscribers_;
  }
  for (auto& s : subs) s->wait_idle();
}

std::chrono::system_clock::time_point FakeDriver::now() const {
  std::lock_guard lock(mu_);
  return now_;
}

}  // namespace berth::runtime
