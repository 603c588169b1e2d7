#include "agent/task_engine.h"

#include <cstdio>
#include <set>

namespace berth::agent {

namespace json = boost::json;

namespace {
std::string str(const json::object& o, std::string_view k) {
  auto* v = o.if_contains(k);
  return v && v->is_string() ? std::string(v->as_string()) : std::string();
}
}  // namespace

TaskEngine::TaskEngine(runtime::Driver& driver, Checkpoint& checkpoint, TaskConfig config,
                       Reporter reporter)
    : driver_(driver),
      checkpoint_(checkpoint),
      config_(std::move(config)),
      reporter_(std::move(reporter)) {}

TaskEngine::~TaskEngine() {
  {
    std::lock_guard lock(events_mu_);
    stopping_ = true;
  }
  events_cv_.notify_all();
  if (events_thread_.joinable()) events_thread_.join();
  std::lock_guard lock(mu_);
  for (auto& [arn, t] : tasks_) t->abandon();
  tasks_.clear();  // joins
}

Status TaskEngine::restore() {
  auto doc = checkpoint_.load();
  if (!doc.ok()) return doc.error();
  std::vector<json::object> saved;
  {
    std::lock_guard lock(ckpt_mu_);
    doc_ = std::move(*doc);
    if (auto* ts = doc_.if_contains("tasks"); ts && ts->is_object()) {
      for (const auto& [arn, s] : ts->as_object()) {
        if (s.is_object()) saved.push_back(s.as_object());
      }
    }
    if (auto* a = doc_.if_contains("instanceArn"); a && a->is_string()) {
      config_.instance_arn = std::string(a->as_string());
    }
  }
  std::lock_guard lock(mu_);
  for (const auto& s : saved) {
    auto t = ManagedTask::restore(driver_, *this, config_, s);
    auto* raw = t.get();
    tasks_[t->arn()] = std::move(t);
    raw->start();
  }
  return {};
}

std::string TaskEngine::saved_instance_arn() {
  std::lock_guard lock(ckpt_mu_);
  auto* a = doc_.if_contains("instanceArn");
  return a && a->is_string() ? std::string(a->as_string()) : std::string();
}

Status TaskEngine::set_instance_arn(const std::string& arn) {
  std::lock_guard lock(ckpt_mu_);
  config_.instance_arn = arn;
  doc_["instanceArn"] = arn;
  doc_["cluster"] = config_.cluster;
  return checkpoint_.save(doc_);
}

void TaskEngine::save_locked() {
  if (auto st = checkpoint_.save(doc_); !st.ok()) {
    // The agent keeps running: the containers carry labels, so a restart still finds them.
    std::fprintf(stderr, "berth agent: checkpoint: %s\n", st.error().message.c_str());
  }
}

void TaskEngine::persist(const std::string& arn, const json::object* snapshot) {
  std::lock_guard lock(ckpt_mu_);
  auto& tasks = doc_["tasks"];
  if (!tasks.is_object()) tasks = json::object();
  if (snapshot != nullptr) {
    tasks.as_object()[arn] = *snapshot;
  } else {
    tasks.as_object().erase(arn);
  }
  save_locked();
}

void TaskEngine::report(const json::object& report) { reporter_(report); }

std::vector<std::string> TaskEngine::apply(const json::array& tasks) {
  std::vector<std::string> taken;
  std::set<std::string> listed;
  bool first;
  {
    std::lock_guard lock(mu_);
    first = std::exchange(first_apply_, false);
    for (const auto& v : tasks) {
      if (!v.is_object()) continue;
      const auto& t = v.as_object();
      std::string arn = str(t, "taskArn");
      if (arn.empty()) continue;
      listed.insert(arn);
      taken.push_back(arn);
      if (auto it = tasks_.find(arn); it != tasks_.end()) {
        it->second->update(t);
        continue;
      }
      TaskConfig cfg = config_;
      {
        std::lock_guard ck(ckpt_mu_);
        cfg.instance_arn = config_.instance_arn;
      }
      auto task = std::make_unique<ManagedTask>(driver_, *this, cfg, t);
      auto* raw = task.get();
      tasks_[arn] = std::move(task);
      raw->start();
    }
    for (auto& [arn, t] : tasks_) {
      if (!listed.contains(arn)) t->stop_requested("Task is no longer assigned to this instance");
    }
  }
  if (first) remove_orphans();
  return taken;
}

void TaskEngine::remove_orphans() {
  if (config_.instance_arn.empty()) return;
  auto found = driver_.list({{"berth.container-instance=" + config_.instance_arn}, true});
  if (!found.ok()) return;
  for (const auto& c : *found) {
    std::string arn = c.labels.contains("berth.task-arn") ? c.labels.at("berth.task-arn") : "";
    bool claimed;
    {
      std::lock_guard lock(mu_);
      claimed = tasks_.contains(arn);
    }
    if (claimed) continue;
    std::fprintf(stderr, "berth agent: removing orphan container %s of %s\n", c.id.c_str(),
                 arn.c_str());
    (void)driver_.stop(c.id, std::chrono::seconds(10));
    (void)driver_.remove(c.id, true);
  }
}

void TaskEngine::stopped_acked(const std::string& arn) {
  std::lock_guard lock(mu_);
  if (auto it = tasks_.find(arn); it != tasks_.end()) it->second->stopped_acked();
}

void TaskEngine::reap() {
  std::vector<std::unique_ptr<ManagedTask>> finished;
  {
    std::lock_guard lock(mu_);
    for (auto it = tasks_.begin(); it != tasks_.end();) {
      if (it->second->done()) {
        finished.push_back(std::move(it->second));
        it = tasks_.erase(it);
      } else {
        ++it;
      }
    }
  }
  finished.clear();  // joins outside the lock
}

size_t TaskEngine::size() {
  std::lock_guard lock(mu_);
  return tasks_.size();
}

void TaskEngine::watch_events() {
  events_thread_ = std::thread([this] {
    while (true) {
      bool ended = false;
      runtime::EventFilter filter;
      filter.labels = {"berth.cluster=" + config_.cluster};
      filter.types = {"container"};
      runtime::EventHandlers h;
      h.on_event = [this](const runtime::Event& e) {
        if (e.action != "die" && e.action != "health_status" && e.action != "stop") return;
        std::lock_guard lock(mu_);
        for (auto& [arn, t] : tasks_) t->poke(e.id);
      };
      h.on_end = [this, &ended](const Error&) {
        std::lock_guard lock(events_mu_);
        ended = true;
        events_cv_.notify_all();
      };
      auto sub = driver_.events(filter, h);
      std::unique_lock lock(events_mu_);
      if (sub.ok()) {
        events_cv_.wait(lock, [&] { return stopping_ || ended; });
      }
      if (stopping_) {
        lock.unlock();
        if (sub.ok()) (*sub)->cancel();
        return;
      }
      // Broken stream: retry shortly; tasks poll meanwhile.
      events_cv_.wait_for(lock, std::chrono::seconds(1), [&] { return stopping_; });
      if (stopping_) return;
    }
  });
}

}  // namespace berth::agent
