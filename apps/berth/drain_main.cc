// `berth drain INSTANCE --wait`: the instance-lifecycle hook of an autoscaling group. It sets the
// container instance DRAINING through the ECS API and, with --wait, returns once no service task
// is left on it (the service controller moves them elsewhere within each service's
// minimumHealthyPercent/maximumPercent), printing progress on the terminal.

#include <chrono>
#include <cstdio>
#include <thread>

#include "agent/api_client.h"
#include "agent_main.h"
#include "common/clock.h"
#include "drain_main.h"

namespace berth::apps {

namespace json = boost::json;

namespace {

struct DrainFlags {
  std::string instance;
  std::string cluster = "default";
  std::string server;
  std::string credentials;
  std::string profile;
  std::string region = "us-east-1";
  bool wait = false;
  int timeout_seconds = 3600;
};

// Service tasks still on the instance (standalone tasks are left alone by draining).
Result<std::vector<std::string>> service_tasks_on(agent::ApiClient& api, const DrainFlags& f) {
  std::vector<std::string> arns;
  std::string token;
  do {
    json::object req{{"cluster", f.cluster}, {"containerInstance", f.instance}};
    if (!token.empty()) req["nextToken"] = token;
    BERTH_TRY(json::value page, api.call("ListTasks", req));
    for (const auto& a : page.as_object().at("taskArns").as_array())
      arns.emplace_back(a.as_string());
    auto* next = page.as_object().if_contains("nextToken");
    token = next && next->is_string() ? std::string(next->as_string()) : "";
  } while (!token.empty());
  std::vector<std::string> service;
  for (size_t i = 0; i < arns.size(); i += 100) {
    json::array batch;
    for (size_t j = i; j < arns.size() && j < i + 100; ++j) batch.push_back(json::string(arns[j]));
    BERTH_TRY(json::value d,
              api.call("DescribeTasks", json::object{{"cluster", f.cluster}, {"tasks", batch}}));
    for (const auto& t : d.as_object().at("tasks").as_array()) {
      const auto* group = t.as_object().if_contains("group");
      if (group && group->is_string() &&
          std::string_view(group->as_string()).starts_with("service:")) {
        service.emplace_back(t.as_object().at("taskArn").as_string());
      }
    }
  }
  return service;
}

int run_drain(const DrainFlags& f) {
  auto endpoint = agent::Endpoint::parse(f.server);
  if (!endpoint.ok()) {
    std::fprintf(stderr, "berth drain: %s\n", endpoint.error().message.c_str());
    return 2;
  }
  auto key = load_access_key(f.credentials, f.profile);
  if (!key.ok()) {
    std::fprintf(stderr, "berth drain: %s\n", key.error().message.c_str());
    return 2;
  }
  SystemClock clock;
  agent::ApiClient api(*endpoint, *key, f.region, clock);
  auto set = api.call("UpdateContainerInstancesState",
                      json::object{{"cluster", f.cluster},
                                   {"containerInstances", json::array{json::string(f.instance)}},
                                   {"status", "DRAINING"}});
  if (!set.ok()) {
    std::fprintf(stderr, "berth drain: %s\n", set.error().message.c_str());
    return 1;
  }
  const auto& failures = set->as_object().at("failures").as_array();
  if (!failures.empty()) {
    std::fprintf(stderr, "berth drain: %s: %s\n", f.instance.c_str(),
                 std::string(failures[0].as_object().at("reason").as_string()).c_str());
    return 1;
  }
  std::printf("berth drain: %s is DRAINING\n", f.instance.c_str());
  std::fflush(stdout);
  if (!f.wait) return 0;
  auto start = std::chrono::steady_clock::now();
  auto deadline = start + std::chrono::seconds(f.timeout_seconds);
  while (true) {
    auto left = service_tasks_on(api, f);
    auto elapsed =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - start);
    if (left.ok()) {
      if (left->empty()) {
        std::printf("berth drain: %s drained in %llds\n", f.instance.c_str(),
                    static_cast<long long>(elapsed.count()));
        return 0;
      }
      std::printf("berth drain: %zu service task(s) left after %llds\n", left->size(),
                  static_cast<long long>(elapsed.count()));
    } else {
      // A transient API failure (server restarting) is not the end of the drain.
      std::printf("berth drain: %s (retrying)\n", left.error().message.c_str());
    }
    std::fflush(stdout);
    if (std::chrono::steady_clock::now() >= deadline || stop_requested()) {
      std::fprintf(stderr, "berth drain: gave up after %llds\n",
                   static_cast<long long>(elapsed.count()));
      return 1;
    }
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
}

}  // namespace

void add_drain_command(CLI::App& app, std::function<int()>& run) {
  static DrainFlags f;
  auto* cmd = app.add_subcommand(
      "drain", "Set a container instance DRAINING (and wait until its service tasks moved)");
  cmd->add_option("instance", f.instance, "Container instance id or ARN")->required();
  cmd->add_option("--cluster", f.cluster, "Cluster")->capture_default_str();
  cmd->add_option("--server", f.server, "Server endpoint, http://HOST:PORT")->required();
  cmd->add_option("--credentials", f.credentials, "AWS shared-credentials file")->required();
  cmd->add_option("--profile", f.profile, "Profile in the credentials file (default: the first)");
  cmd->add_option("--region", f.region, "Region for signatures")->capture_default_str();
  cmd->add_flag("--wait", f.wait, "Return once no service task is left on the instance");
  cmd->add_option("--timeout-seconds", f.timeout_seconds, "Give up waiting after this long")
      ->capture_default_str();
  cmd->callback([&run] {
    install_stop_handlers();
    run = [] { return run_drain(f); };
  });
}

}  // namespace berth::apps
