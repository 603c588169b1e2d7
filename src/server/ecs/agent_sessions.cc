#include "server/ecs/agent_sessions.h"

#include <boost/json/parse.hpp>
#include <boost/url/parse.hpp>

#include "api/json_service.h"
#include "server/ecs/task_reports.h"

namespace berth::server::ecs {

namespace {

api::HttpResponse refuse(int status, const Error& e) {
  api::HttpResponse r = api::json_error_response(e, "");
  r.status = status;
  return r;
}

std::string instance_id_of_arn(std::string_view arn) {
  auto slash = arn.rfind('/');
  return slash == std::string_view::npos ? std::string(arn) : std::string(arn.substr(slash + 1));
}

}  // namespace

class AgentSessions::Listener final : public api::WebSocketListener {
 public:
  Listener(AgentSessions& owner, std::shared_ptr<Session> s) : owner_(owner), s_(std::move(s)) {}
  void on_message(std::string_view text) override { owner_.on_message(s_, text); }
  void on_close() override { owner_.on_close(s_); }

 private:
  AgentSessions& owner_;
  std::shared_ptr<Session> s_;
};

AgentSessions::AgentSessions(EcsContext& ctx, const api::SigV4Verifier* verifier)
    : ctx_(ctx), verifier_(verifier), worker_([this] { worker(); }) {
  // A server that starts has no channels yet: instances whose agent had one show disconnected
  // until their agent reconnects. (Instances registered through the API alone never had a
  // channel and keep agentConnected as registered.)
  if (auto r = ctx_.store().range({"instances/", "", 0}); r.ok()) {
    for (const auto& kv : r->kvs) {
      boost::system::error_code ec;
      json::value v = json::parse(kv.value, ec);
      if (ec || !v.is_object()) continue;
      const json::object& o = v.as_object();
      const json::object* internal = opt_object(o, "_berth");
      if (internal && opt_bool(*internal, "channel").value_or(false) &&
          opt_bool(o, "agentConnected").value_or(false)) {
        std::string_view rest = std::string_view(kv.key).substr(10);  // "instances/"
        Key key{std::string(rest.substr(0, rest.find('/'))),
                std::string(rest.substr(rest.find('/') + 1))};
        post([this, key] { (void)set_connected(key, false); });
      }
    }
  }
  // Any change to a task is pushed to the agent of its instance. The watch also keeps an index
  // of each instance's live tasks, so a push reads that instance's tasks only (not the cluster).
  watch_ = ctx_.store().watch("tasks/",
                              [this](const std::vector<store::Event>& events, int64_t revision) {
                                index_tasks(events, revision, false);
                              });
  auto r = ctx_.store().range({"tasks/", "", 0});
  if (r.ok()) {
    std::vector<store::Event> initial;
    for (auto& kv : r->kvs) initial.push_back(store::Event{false, std::move(kv)});
    index_tasks(initial, r->revision, true);
  }
}

void AgentSessions::index_tasks(const std::vector<store::Event>& events, int64_t revision,
                                bool initial_load) {
  std::set<Key> touched;
  {
    std::lock_guard lock(mu_);
    // Watch events the initial load already covered are skipped; events applied before the load
    // are harmless (re-indexing a task replaces its entry).
    if (!initial_load && revision <= indexed_revision_) return;
    indexed_revision_ = std::max(indexed_revision_, revision);
    for (const auto& e : events) {
      if (auto old = task_instance_.find(e.kv.key); old != task_instance_.end()) {
        tasks_by_instance_[old->second].erase(e.kv.key);
        touched.insert(old->second);
        task_instance_.erase(old);
      }
      if (e.deleted) continue;  // only pruned STOPPED tasks are deleted
      boost::system::error_code ec;
      json::value v = json::parse(e.kv.value, ec);
      if (ec || !v.is_object()) continue;
      const json::object& t = v.as_object();
      std::string_view rest = std::string_view(e.kv.key).substr(6);  // "tasks/"
      Key key{std::string(rest.substr(0, rest.find('/'))),
              instance_id_of_arn(opt_string(t, "containerInstanceArn").value_or(""))};
      touched.insert(key);
      if (opt_string(t, "lastStatus") == "STOPPED") continue;
      tasks_by_instance_[key].insert(e.kv.key);
      task_instance_[e.kv.key] = key;
    }
    // One queued push per instance is enough: it sends the state at the time it runs.
    for (auto it = touched.begin(); it != touched.end();) {
      if (!sessions_.contains(*it) || !push_pending_.insert(*it).second) {
        it = touched.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (const auto& key : touched) post([this, key] { push(key); });
}

AgentSessions::~AgentSessions() {
  watch_.reset();
  {
    std::lock_guard lock(queue_mu_);
    stopping_ = true;
  }
  queue_cv_.notify_all();
  worker_.join();
}

size_t AgentSessions::size() {
  std::lock_guard lock(mu_);
  return sessions_.size();
}

void AgentSessions::post(std::function<void()> fn) {
  {
    std::lock_guard lock(queue_mu_);
    queue_.push_back(std::move(fn));
  }
  queue_cv_.notify_one();
}

void AgentSessions::worker() {
  std::unique_lock lock(queue_mu_);
  while (true) {
    queue_cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping and drained
    auto fn = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    fn();
    lock.lock();
  }
}

api::WebSocketAcceptor::Outcome AgentSessions::accept(const api::HttpRequest& upgrade,
                                                      std::shared_ptr<api::WebSocket> socket) {
  if (verifier_ != nullptr) {
    auto who = verifier_->verify(upgrade);
    if (!who.ok()) return refuse(403, who.error());
  }
  auto url = boost::urls::parse_origin_form(upgrade.target);
  if (!url) return refuse(400, invalid_parameter("Malformed request target."));
  std::string cluster_ref, instance_ref;
  for (auto p : url->params()) {
    if (p.key == "cluster") cluster_ref = p.value;
    if (p.key == "containerInstance") instance_ref = p.value;
  }
  auto cluster = cluster_name_from_ref(ctx_, cluster_ref.empty() ? "default" : cluster_ref);
  if (!cluster.ok()) return refuse(400, cluster.error());
  auto id = container_instance_id_from(ctx_, *cluster, instance_ref);
  if (!id.ok()) return refuse(400, id.error());
  auto doc = load_doc(ctx_.store(), keys::instance(*cluster, *id));
  if (!doc.ok()) return refuse(500, doc.error());
  if (!*doc || opt_string((*doc)->obj, "status") == "INACTIVE") {
    return refuse(
        400, client_error("Container instance " + *id +
                          " is not registered (or was deregistered) in cluster " + *cluster + "."));
  }
  auto s = std::make_shared<Session>();
  s->cluster = *cluster;
  s->instance_id = *id;
  s->socket = std::move(socket);
  Key key{*cluster, *id};
  std::shared_ptr<Session> old;
  {
    std::lock_guard lock(mu_);
    auto& slot = sessions_[key];
    old = std::exchange(slot, s);
  }
  // A new session replaces an older one of the same instance (the agent reconnected).
  if (old) old->socket->close("replaced by a newer session");
  post([this, key] {
    (void)set_connected(key, true);
    push(key);
  });
  return std::make_unique<Listener>(*this, s);
}

void AgentSessions::on_message(const std::shared_ptr<Session>& s, std::string_view text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) return;
  json::object msg = std::move(v.as_object());
  auto type = opt_string(msg, "type").value_or("");
  if (type == "heartbeat") {
    s->socket->send(R"({"type":"heartbeat_ack"})");
  } else if (type == "ack") {
    std::vector<std::string> ids;
    if (const json::array* tasks = opt_array(msg, "tasks")) {
      for (const auto& t : *tasks) {
        if (t.is_string()) ids.push_back(instance_id_of_arn(t.as_string()));
      }
    }
    post([this, s, ids = std::move(ids)] { (void)mark_acked(ctx_, s->cluster, ids); });
  } else if (type == "task_state") {
    post([this, s, msg = std::move(msg)] {
      json::object ack{{"type", "state_ack"},
                       {"seq", msg.contains("seq") ? msg.at("seq") : json::value(0)}};
      const json::object* report = opt_object(msg, "report");
      if (report == nullptr) {
        ack["ok"] = false;
        ack["error"] = "missing report";
      } else {
        auto r = apply_task_report(ctx_, s->cluster, *report);
        ack["ok"] = r.ok();
        if (!r.ok()) ack["error"] = r.error().message;
      }
      s->socket->send(dump(ack));
    });
  }
}

void AgentSessions::on_close(const std::shared_ptr<Session>& s) {
  Key key{s->cluster, s->instance_id};
  bool current;
  {
    std::lock_guard lock(mu_);
    auto it = sessions_.find(key);
    current = it != sessions_.end() && it->second == s;
    if (current) sessions_.erase(it);
  }
  if (current) post([this, key] { (void)set_connected(key, false); });
}

Status AgentSessions::set_connected(const Key& key, bool connected) {
  auto r = with_retries([&]() -> Result<json::value> {
    BERTH_TRY(auto doc, load_doc(ctx_.store(), keys::instance(key.first, key.second)));
    if (!doc) return json::value();
    const json::object* internal = opt_object(doc->obj, "_berth");
    bool had_channel = internal && opt_bool(*internal, "channel").value_or(false);
    if (opt_bool(doc->obj, "agentConnected") == connected && (!connected || had_channel)) {
      return json::value();
    }
    // A session may have replaced this one while the write was queued.
    {
      std::lock_guard lock(mu_);
      if (connected != sessions_.contains(key)) return json::value();
    }
    doc->obj["agentConnected"] = connected;
    // Remember that this instance's connection state comes from a channel (see the constructor).
    // and when it went away: the service controller treats its service tasks as lost once the
    // agent has stayed away past a grace period.
    if (connected) {
      doc->obj["_berth"] = json::object{{"channel", true}};
    } else {
      json::object internal =
          doc->obj["_berth"].is_object() ? doc->obj["_berth"].as_object() : json::object{};
      internal["disconnectedAt"] = ctx_.now();
      doc->obj["_berth"] = std::move(internal);
    }
    doc->obj["version"] = opt_int(doc->obj, "version").value_or(0) + 1;
    BERTH_CHECK(replace_doc(ctx_.store(), keys::instance(key.first, key.second), doc->obj,
                            doc->mod_revision));
    return json::value();
  });
  if (!r.ok()) return r.error();
  return {};
}

void AgentSessions::push(const Key& key) {
  std::shared_ptr<Session> s;
  std::vector<std::string> task_keys;
  {
    std::lock_guard lock(mu_);
    push_pending_.erase(key);
    auto it = sessions_.find(key);
    if (it == sessions_.end()) return;
    s = it->second;
    if (auto t = tasks_by_instance_.find(key); t != tasks_by_instance_.end()) {
      task_keys.assign(t->second.begin(), t->second.end());
    }
  }
  json::array tasks;
  for (const auto& task_key : task_keys) {
    auto doc = load_doc(ctx_.store(), task_key);
    if (!doc.ok() || !*doc) continue;
    json::object& t = (*doc)->obj;
    if (opt_string(t, "lastStatus") == "STOPPED") continue;
    std::string td_arn(opt_string(t, "taskDefinitionArn").value_or(""));
    json::object td;
    {
      std::lock_guard lock(mu_);
      if (auto it = task_definitions_.find(td_arn); it != task_definitions_.end()) td = it->second;
    }
    if (td.empty()) {
      auto found = find_task_definition(ctx_, td_arn);
      if (!found.ok() || !*found) continue;
      td = std::move(**found);
      std::lock_guard lock(mu_);
      task_definitions_[td_arn] = td;
    }
    json::object out;
    for (const char* k : {"taskArn", "desiredStatus", "lastStatus", "version", "group", "overrides",
                          "stopCode", "stoppedReason"}) {
      if (auto* f = t.if_contains(k)) out[k] = *f;
    }
    out["taskDefinition"] = std::move(td);
    tasks.push_back(std::move(out));
  }
  json::object msg{{"type", "tasks"}, {"seq", ++s->seq}, {"tasks", std::move(tasks)}};
  s->socket->send(dump(msg));
}

}  // namespace berth::server::ecs
