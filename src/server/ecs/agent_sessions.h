#pragma once
// AgentSessions: the server end of each agent's push channel (a WebSocket at
// /agent/v1/connect?cluster=C&containerInstance=ARN, SigV4-signed like any API call).
//
//  - On connect and after every change to a task on the instance, the server sends the full
//    desired state of the instance's tasks: {"type":"tasks","seq":N,"tasks":[...]} with each task's
//    arn, desired and last status, overrides and task definition. Full state rather than deltas,
//    so a missed message is repaired by the next one and a reconnect needs no replay.
//  - The agent answers {"type":"ack","seq":N,"tasks":[arns]} (the tasks are now its to run or
//    stop), reports {"type":"task_state","seq":N,"report":{SubmitTaskStateChange shape + stopCode,
//    healthStatus}} and gets {"type":"state_ack","seq":N,"ok":bool,"error":"..."} back.
//  - agentConnected follows the channel: true while a session is open; the WebSocket layer
//    closes a session whose pings go unanswered, and the instance then shows false. Tasks keep
//    running on a disconnected agent; the next session reconciles them.
// Store writes run on one worker thread so the I/O threads never wait on disk.

#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <thread>

#include "api/sigv4.h"
#include "api/websocket.h"
#include "server/ecs/context.h"

namespace berth::server::ecs {

class AgentSessions final : public api::WebSocketAcceptor {
 public:
  static constexpr std::string_view kPath = "/agent/v1/connect";

  /// `verifier` may be null (unsigned connections accepted, as with --insecure-no-auth).
  AgentSessions(EcsContext& ctx, const api::SigV4Verifier* verifier);
  ~AgentSessions() override;

  Outcome accept(const api::HttpRequest& upgrade, std::shared_ptr<api::WebSocket> socket) override;

  /// Number of open sessions (for tests and metrics).
  size_t size();

 private:
  class Listener;
  struct Session {
    std::string cluster, instance_id;
    std::shared_ptr<api::WebSocket> socket;
    uint64_t seq = 0;
  };
  using Key = std::pair<std::string, std::string>;  // cluster, instance id

  void post(std::function<void()> fn);
  void worker();
  void on_message(const std::shared_ptr<Session>& s, std::string_view text);
  void on_close(const std::shared_ptr<Session>& s);
  void push(const Key& key);  // worker thread
  void index_tasks(const std::vector<store::Event>& events, int64_t revision, bool initial_load);
  Status set_connected(const Key& key, bool connected);  // worker thread

  EcsContext& ctx_;
  const api::SigV4Verifier* verifier_;

  std::mutex mu_;
  std::map<Key, std::shared_ptr<Session>> sessions_;
  std::map<std::string, json::object> task_definitions_;  // by ARN; immutable except status
  // Live (not STOPPED) task keys per instance, kept by the tasks/ watch, and pushes queued.
  std::map<Key, std::set<std::string>> tasks_by_instance_;
  std::map<std::string, Key> task_instance_;
  std::set<Key> push_pending_;
  int64_t indexed_revision_ = 0;

  std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  std::deque<std::function<void()>> queue_;
  bool stopping_ = false;
  std::thread worker_;
  std::unique_ptr<store::Subscription> watch_;
};

}  // namespace berth::server::ecs
