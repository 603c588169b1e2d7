// The ECS actions against the in-memory store, on a manual clock and a fixed seed. Every
// successful response is also checked against the model's output shape, so nothing unmodelled
// reaches SDKs. End-to-end behaviour with real clients lives in tests/integration.

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <set>

#include "server/ecs/ecs_service.h"
#include "server/ecs/janitor.h"
#include "server/ecs/task_definition_rules.h"
#include "server/tests/ecs_call.h"

namespace berth::server::ecs {
namespace {

class EcsTest : public ::testing::Test {
 protected:
  EcsTest()
      : store_(store::open_memory_store()),
        clock_(std::chrono::system_clock::time_point(std::chrono::seconds(1'700'000'000))),
        rng_(1),
        ecs_(*store_, clock_, rng_, {"us-east-1", "123456789012"}) {}

  // Calls an action; returns {type or "", body}.
  std::pair<std::string, json::object> call(const std::string& action, const std::string& body) {
    return testing::call(ecs_, action, body);
  }
  json::object ok(const std::string& action, const std::string& body) {
    return testing::ok(ecs_, action, body);
  }
  std::string err(const std::string& action, const std::string& body) {
    return testing::err(ecs_, action, body);
  }
  std::string register_instance(const std::string& cluster) {
    auto out = ok("RegisterContainerInstance", R"({"cluster":")" + cluster + R"(","totalResources":[
      {"name":"CPU","type":"INTEGER","integerValue":2048},
      {"name":"MEMORY","type":"INTEGER","integerValue":4096},
      {"name":"PORTS","type":"STRINGSET","stringSetValue":["22","51678"]}]})");
    return std::string(out.at("containerInstance").at("containerInstanceArn").as_string());
  }

  std::unique_ptr<store::Store> store_;
  ManualClock clock_;
  SeededRandom rng_;
  EcsService ecs_;
};

TEST_F(EcsTest, CreateClusterDefaultsAndIsIdempotent) {
  auto a = ok("CreateCluster", "{}");
  EXPECT_EQ(a.at("cluster").at("clusterName"), "default");
  EXPECT_EQ(a.at("cluster").at("clusterArn"), "arn:aws:ecs:us-east-1:123456789012:cluster/default");
  EXPECT_EQ(a.at("cluster").at("status"), "ACTIVE");
  int64_t rev = store_->revision();
  ok("CreateCluster", "{}");
  EXPECT_EQ(store_->revision(), rev);  // the existing cluster is returned, nothing written
  EXPECT_EQ(err("CreateCluster", R"({"clusterName":"bad name!"})"), "InvalidParameterException");
}

TEST_F(EcsTest, DescribeClustersReportsMissingAndCounts) {
  ok("CreateCluster", R"({"clusterName":"a","tags":[{"key":"k","value":"v"}]})");
  register_instance("a");
  auto out = ok("DescribeClusters", R"({"clusters":["a","nope"],"include":["TAGS","STATISTICS"]})");
  ASSERT_EQ(out.at("clusters").as_array().size(), 1u);
  const auto& c = out.at("clusters").at(0).as_object();
  EXPECT_EQ(c.at("registeredContainerInstancesCount"), 1);
  EXPECT_EQ(c.at("tags").as_array().size(), 1u);
  EXPECT_FALSE(c.at("statistics").as_array().empty());
  EXPECT_EQ(out.at("failures").at(0).at("reason"), "MISSING");
  EXPECT_EQ(out.at("failures").at(0).at("arn"), "arn:aws:ecs:us-east-1:123456789012:cluster/nope");
}

TEST_F(EcsTest, DeleteClusterRefusedWhileInstancesRemain) {
  ok("CreateCluster", R"({"clusterName":"a"})");
  std::string arn = register_instance("a");
  EXPECT_EQ(err("DeleteCluster", R"({"cluster":"a"})"),
            "ClusterContainsContainerInstancesException");
  ok("DeregisterContainerInstance", R"({"cluster":"a","containerInstance":")" + arn + "\"}");
  auto out = ok("DeleteCluster", R"({"cluster":"a"})");
  EXPECT_EQ(out.at("cluster").at("status"), "INACTIVE");
  // Still describable, no longer listed, and unusable.
  EXPECT_EQ(ok("DescribeClusters", R"({"clusters":["a"]})").at("clusters").at(0).at("status"),
            "INACTIVE");
  EXPECT_TRUE(ok("ListClusters", "{}").at("clusterArns").as_array().empty());
  EXPECT_EQ(err("ListContainerInstances", R"({"cluster":"a"})"), "ClusterNotFoundException");
}

TEST_F(EcsTest, ListClustersPagesWithoutGapsOrRepeats) {
  for (int i = 0; i < 25; ++i)
    ok("CreateCluster", R"({"clusterName":"c)" + std::to_string(i) + "\"}");
  std::set<std::string> seen;
  std::string token;
  int pages = 0;
  do {
    std::string body = token.empty() ? R"({"maxResults":10})"
                                     : R"({"maxResults":10,"nextToken":")" + token + "\"}";
    auto out = ok("ListClusters", body);
    for (const auto& a : out.at("clusterArns").as_array())
      EXPECT_TRUE(seen.insert(std::string(a.as_string())).second);
    token = out.contains("nextToken") ? std::string(out.at("nextToken").as_string()) : "";
    ++pages;
  } while (!token.empty());
  EXPECT_EQ(seen.size(), 25u);
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(err("ListClusters", R"({"nextToken":"garbage"})"), "InvalidParameterException");
  EXPECT_EQ(err("ListClusters", R"({"maxResults":0})"), "InvalidParameterException");
}

constexpr const char* kWeb =
    R"({"family":"web","containerDefinitions":[{"name":"web","image":"busybox",
  "memory":128,"portMappings":[{"containerPort":80}],"healthCheck":{"command":["CMD","true"]},
  "dockerLabels":{"a":"b"},"linuxParameters":{"initProcessEnabled":true}}],"tags":[{"key":"team","value":"x"}]})";

TEST_F(EcsTest, RegisterTaskDefinitionRevisionsAndDefaults) {
  auto one = ok("RegisterTaskDefinition", kWeb).at("taskDefinition").as_object();
  EXPECT_EQ(one.at("revision"), 1);
  EXPECT_EQ(one.at("taskDefinitionArn"),
            "arn:aws:ecs:us-east-1:123456789012:task-definition/web:1");
  const auto& c = one.at("containerDefinitions").at(0).as_object();
  EXPECT_EQ(c.at("essential"), true);
  EXPECT_EQ(c.at("portMappings").at(0).at("protocol"), "tcp");
  EXPECT_EQ(c.at("healthCheck").at("interval"), 30);
  EXPECT_EQ(c.at("dockerLabels").at("a"), "b");
  EXPECT_EQ(c.at("linuxParameters").at("initProcessEnabled"), true);
  EXPECT_EQ(ok("RegisterTaskDefinition", kWeb).at("taskDefinition").at("revision"), 2);

  auto latest = ok("DescribeTaskDefinition", R"({"taskDefinition":"web","include":["TAGS"]})");
  EXPECT_EQ(latest.at("taskDefinition").at("revision"), 2);
  EXPECT_EQ(latest.at("tags").at(0).at("key"), "team");
  ok("DeregisterTaskDefinition", R"({"taskDefinition":"web:2"})");
  EXPECT_EQ(ok("DescribeTaskDefinition", R"({"taskDefinition":"web"})")
                .at("taskDefinition")
                .at("revision"),
            1);
  EXPECT_EQ(ok("DescribeTaskDefinition", R"({"taskDefinition":"web:2"})")
                .at("taskDefinition")
                .at("status"),
            "INACTIVE");
  EXPECT_EQ(err("DeregisterTaskDefinition", R"({"taskDefinition":"web"})"),
            "InvalidParameterException");
  EXPECT_EQ(err("DescribeTaskDefinition", R"({"taskDefinition":"nope"})"), "ClientException");
  // Revisions are never reused after deregistration.
  EXPECT_EQ(ok("RegisterTaskDefinition", kWeb).at("taskDefinition").at("revision"), 3);
}

TEST_F(EcsTest, TaskDefinitionRules) {
  auto bad = [&](const std::string& containers, const std::string& extra = "") {
    return err("RegisterTaskDefinition",
               R"({"family":"f",)" + extra + R"("containerDefinitions":)" + containers + "}");
  };
  EXPECT_EQ(bad(R"([{"name":"a","image":"i","memory":64,"essential":false}])"), "ClientException");
  EXPECT_EQ(bad(R"([{"name":"a","image":"i"}])"), "ClientException");  // no memory anywhere
  EXPECT_EQ(bad(R"([{"name":"a","image":"i","memory":64,"memoryReservation":128}])"),
            "ClientException");
  EXPECT_EQ(
      bad(R"([{"name":"a","image":"i","memory":64,"dependsOn":[{"containerName":"zz","condition":"START"}]}])"),
      "ClientException");
  EXPECT_EQ(bad(R"([{"name":"a","image":"i","memory":64},{"name":"b","image":"i","memory":64,
                   "dependsOn":[{"containerName":"a","condition":"HEALTHY"}]}])"),
            "ClientException");
  EXPECT_EQ(
      bad(R"([{"name":"a","image":"i","memory":64,"essential":false,"dependsOn":[{"containerName":"b","condition":"START"}]},
                   {"name":"b","image":"i","memory":64,"dependsOn":[{"containerName":"a","condition":"START"}]}])"),
      "ClientException");  // cycle
  EXPECT_EQ(
      bad(R"([{"name":"a","image":"i","memory":64,"healthCheck":{"command":["CMD","x"],"interval":4}}])"),
      "ClientException");
  EXPECT_EQ(
      bad(R"([{"name":"a","image":"i","memory":64,"portMappings":[{"containerPort":80,"hostPort":81}]}])",
          R"("networkMode":"awsvpc",)"),
      "ClientException");
  EXPECT_EQ(
      bad(R"([{"name":"a","image":"i"}])",
          R"("requiresCompatibilities":["FARGATE"],"networkMode":"awsvpc","cpu":"256","memory":"4096",)"),
      "ClientException");
  std::string eleven = "[";
  for (int i = 0; i < 11; ++i)
    eleven += std::string(i ? "," : "") + R"({"name":"c)" + std::to_string(i) +
              R"(","image":"i","memory":8})";
  EXPECT_EQ(bad(eleven + "]"), "ClientException");
  EXPECT_EQ(
      err("RegisterTaskDefinition",
          R"({"family":"bad family","containerDefinitions":[{"name":"a","image":"i","memory":64}]})"),
      "ClientException");
  // A valid Fargate definition is Fargate-compatible.
  auto f = ok("RegisterTaskDefinition",
              R"({"family":"f","requiresCompatibilities":["FARGATE"],"networkMode":"awsvpc",
    "cpu":"0.25 vCPU","memory":"512","containerDefinitions":[{"name":"a","image":"i","portMappings":[{"containerPort":80}]}]})");
  EXPECT_EQ(f.at("taskDefinition")
                .at("containerDefinitions")
                .at(0)
                .at("portMappings")
                .at(0)
                .at("hostPort"),
            80);
  EXPECT_EQ(f.at("taskDefinition").at("compatibilities").as_array().size(), 3u);
}

TEST(TaskDefinitionUnits, ParsesCpuAndMemory) {
  EXPECT_EQ(parse_task_cpu("256"), 256);
  EXPECT_EQ(parse_task_cpu("1 vCPU"), 1024);
  EXPECT_EQ(parse_task_cpu("0.5 vcpu"), 512);
  EXPECT_FALSE(parse_task_cpu("lots").has_value());
  EXPECT_EQ(parse_task_memory("512"), 512);
  EXPECT_EQ(parse_task_memory("2 GB"), 2048);
  EXPECT_EQ(parse_task_memory("1GB"), 1024);
  EXPECT_FALSE(parse_task_memory("-1").has_value());
}

TEST_F(EcsTest, ListTaskDefinitionsSortsAndFilters) {
  ok("RegisterTaskDefinition", kWeb);
  ok("RegisterTaskDefinition", kWeb);
  ok("RegisterTaskDefinition",
     R"({"family":"api","containerDefinitions":[{"name":"a","image":"i","memory":64}]})");
  ok("RegisterTaskDefinition",
     R"({"family":"web-2","containerDefinitions":[{"name":"a","image":"i","memory":64}]})");
  auto all = ok("ListTaskDefinitions", "{}").at("taskDefinitionArns").as_array();
  ASSERT_EQ(all.size(), 4u);
  EXPECT_TRUE(std::string(all[0].as_string()).ends_with("api:1"));
  EXPECT_TRUE(std::string(all[1].as_string()).ends_with("web:1"));
  EXPECT_TRUE(std::string(all[3].as_string()).ends_with("web-2:1"));
  auto desc = ok("ListTaskDefinitions", R"({"familyPrefix":"web","sort":"DESC"})")
                  .at("taskDefinitionArns")
                  .as_array();
  ASSERT_EQ(desc.size(), 2u);
  EXPECT_TRUE(std::string(desc[0].as_string()).ends_with("web:2"));
  ok("DeregisterTaskDefinition", R"({"taskDefinition":"api:1"})");
  EXPECT_EQ(ok("ListTaskDefinitions", R"({"status":"INACTIVE"})")
                .at("taskDefinitionArns")
                .as_array()
                .size(),
            1u);
  EXPECT_EQ(ok("ListTaskDefinitionFamilies", "{}").at("families").as_array().size(), 2u);
  EXPECT_EQ(ok("ListTaskDefinitionFamilies", R"({"status":"INACTIVE"})").at("families").at(0),
            "api");
  EXPECT_EQ(ok("ListTaskDefinitionFamilies", R"({"status":"ALL","familyPrefix":"we"})")
                .at("families")
                .as_array()
                .size(),
            2u);
}

TEST_F(EcsTest, ContainerInstanceLifecycle) {
  ok("CreateCluster", R"({"clusterName":"a"})");
  std::string arn = register_instance("a");
  EXPECT_TRUE(arn.starts_with("arn:aws:ecs:us-east-1:123456789012:container-instance/a/"));
  // Re-registration with the saved ARN keeps identity.
  auto again =
      ok("RegisterContainerInstance", R"({"cluster":"a","containerInstanceArn":")" + arn + R"(",
      "totalResources":[{"name":"CPU","type":"INTEGER","integerValue":1024},{"name":"MEMORY","type":"INTEGER","integerValue":512}]})");
  EXPECT_EQ(again.at("containerInstance").at("containerInstanceArn").as_string(), arn);
  auto d = ok("DescribeContainerInstances",
              R"({"cluster":"a","containerInstances":[")" + arn + R"(","0000"]})");
  EXPECT_EQ(d.at("containerInstances").at(0).at("registeredResources").at(0).at("integerValue"),
            1024);
  EXPECT_EQ(d.at("containerInstances").at(0).at("agentConnected"), true);
  EXPECT_EQ(d.at("failures").at(0).at("reason"), "MISSING");
  auto drained = ok("UpdateContainerInstancesState",
                    R"({"cluster":"a","status":"DRAINING","containerInstances":[")" + arn + "\"]}");
  EXPECT_EQ(drained.at("containerInstances").at(0).at("status"), "DRAINING");
  EXPECT_EQ(ok("ListContainerInstances", R"({"cluster":"a","status":"DRAINING"})")
                .at("containerInstanceArns")
                .as_array()
                .size(),
            1u);
  EXPECT_EQ(err("UpdateContainerInstancesState",
                R"({"cluster":"a","status":"REGISTERING","containerInstances":["x"]})"),
            "InvalidParameterException");
  EXPECT_TRUE(ok("ListContainerInstances", R"({"cluster":"a","filter":"attribute:x == y"})")
                  .at("containerInstanceArns")
                  .as_array()
                  .empty());
  EXPECT_EQ(ok("ListContainerInstances", R"({"cluster":"a","filter":"agentConnected == true"})")
                .at("containerInstanceArns")
                .as_array()
                .size(),
            1u);
  EXPECT_EQ(err("ListContainerInstances", R"({"cluster":"a","filter":"attribute:x =="})"),
            "InvalidParameterException");
  EXPECT_EQ(
      err("RegisterContainerInstance",
          R"({"cluster":"a","totalResources":[{"name":"CPU","type":"INTEGER","integerValue":1}]})"),
      "InvalidParameterException");
}

TEST_F(EcsTest, AttributesAndTags) {
  ok("CreateCluster", R"({"clusterName":"a"})");
  std::string arn = register_instance("a");
  std::string id = arn.substr(arn.rfind('/') + 1);
  ok("PutAttributes",
     R"({"cluster":"a","attributes":[{"name":"stack","value":"prod","targetId":")" + id + "\"}]}");
  auto listed = ok("ListAttributes",
                   R"({"cluster":"a","targetType":"container-instance","attributeName":"stack"})");
  EXPECT_EQ(listed.at("attributes").at(0).at("targetId").as_string(), arn);
  EXPECT_EQ(
      err("PutAttributes", R"({"cluster":"a","attributes":[{"name":"x","targetId":"ffff"}]})"),
      "TargetNotFoundException");
  std::string many = "[";
  for (int i = 0; i < 11; ++i)
    many += std::string(i ? "," : "") + R"({"name":"n)" + std::to_string(i) + R"(","targetId":")" +
            id + "\"}";
  EXPECT_EQ(err("PutAttributes", R"({"cluster":"a","attributes":)" + many + "]}"),
            "AttributeLimitExceededException");
  ok("DeleteAttributes",
     R"({"cluster":"a","attributes":[{"name":"stack","targetId":")" + arn + "\"}]}");
  EXPECT_TRUE(ok("ListAttributes",
                 R"({"cluster":"a","targetType":"container-instance","attributeName":"stack"})")
                  .at("attributes")
                  .as_array()
                  .empty());

  std::string cluster_arn = "arn:aws:ecs:us-east-1:123456789012:cluster/a";
  ok("TagResource", R"({"resourceArn":")" + cluster_arn +
                        R"(","tags":[{"key":"a","value":"1"},{"key":"b","value":"2"}]})");
  ok("UntagResource", R"({"resourceArn":")" + cluster_arn + R"(","tagKeys":["a"]})");
  auto tags =
      ok("ListTagsForResource", R"({"resourceArn":")" + cluster_arn + "\"}").at("tags").as_array();
  ASSERT_EQ(tags.size(), 1u);
  EXPECT_EQ(tags[0].at("key"), "b");
  ok("TagResource", R"({"resourceArn":")" + arn + R"(","tags":[{"key":"x","value":"y"}]})");
  EXPECT_EQ(
      err("TagResource",
          R"({"resourceArn":"arn:aws:ecs:us-east-1:123456789012:cluster/zz","tags":[{"key":"a"}]})"),
      "ResourceNotFoundException");
  EXPECT_EQ(err("TagResource",
                R"({"resourceArn":")" + cluster_arn + R"(","tags":[{"key":"aws:x","value":"1"}]})"),
            "InvalidParameterException");
}

TEST_F(EcsTest, AccountSettings) {
  auto put = ok("PutAccountSetting", R"({"name":"containerInsights","value":"enabled"})");
  EXPECT_EQ(put.at("setting").at("principalArn"), "arn:aws:iam::123456789012:root");
  EXPECT_EQ(ok("ListAccountSettings", "{}").at("settings").as_array().size(), 1u);
  auto eff = ok("ListAccountSettings", R"({"effectiveSettings":true})").at("settings").as_array();
  EXPECT_EQ(eff.size(), 5u);
  ok("PutAccountSetting",
     R"({"name":"awsvpcTrunking","value":"enabled","principalArn":"arn:aws:iam::123456789012:user/bob"})");
  auto bob = ok(
      "ListAccountSettings",
      R"({"effectiveSettings":true,"name":"containerInsights","principalArn":"arn:aws:iam::123456789012:user/bob"})");
  EXPECT_EQ(bob.at("settings").at(0).at("value"), "enabled");  // inherited from the account default
  ok("DeleteAccountSetting", R"({"name":"containerInsights"})");
  EXPECT_TRUE(ok("ListAccountSettings", "{}").at("settings").as_array().empty());
  EXPECT_EQ(err("PutAccountSetting", R"({"name":"containerInsights","value":"maybe"})"),
            "InvalidParameterException");
}

TEST_F(EcsTest, RunTaskPlacesAndAccountsResources) {
  ok("CreateCluster", R"({"clusterName":"a"})");
  std::string arn = register_instance("a");  // 2048 CPU, 4096 MiB
  ok("RegisterTaskDefinition",
     R"({"family":"big","containerDefinitions":[{"name":"a","image":"i","memory":1500,"cpu":512,
      "portMappings":[{"containerPort":80,"hostPort":8080}]}]})");
  auto run = ok("RunTask", R"({"cluster":"a","taskDefinition":"big","count":1,"startedBy":"me"})");
  ASSERT_EQ(run.at("tasks").as_array().size(), 1u);
  const auto& t = run.at("tasks").at(0).as_object();
  EXPECT_EQ(t.at("lastStatus"), "PENDING");
  EXPECT_EQ(t.at("desiredStatus"), "RUNNING");
  EXPECT_EQ(t.at("containerInstanceArn").as_string(), arn);
  EXPECT_EQ(t.at("group"), "family:big");
  // The static host port is taken now: a second copy cannot go on the only instance.
  auto second = ok("RunTask", R"({"cluster":"a","taskDefinition":"big"})");
  EXPECT_TRUE(second.at("tasks").as_array().empty());
  EXPECT_EQ(second.at("failures").at(0).at("reason"), "RESOURCE:PORTS");
  auto d =
      ok("DescribeContainerInstances", R"({"cluster":"a","containerInstances":[")" + arn + "\"]}");
  const auto& rem = d.at("containerInstances").at(0).at("remainingResources").as_array();
  EXPECT_EQ(rem.at(0).at("integerValue"), 2048 - 512);
  EXPECT_EQ(rem.at(1).at("integerValue"), 4096 - 1500);
  EXPECT_EQ(d.at("containerInstances").at(0).at("pendingTasksCount"), 1);
  // Stopping the task (no agent took it yet) gives everything back.
  std::string task_arn(t.at("taskArn").as_string());
  auto stopped = ok("StopTask", R"({"cluster":"a","task":")" + task_arn + R"(","reason":"done"})");
  EXPECT_EQ(stopped.at("task").at("lastStatus"), "STOPPED");
  EXPECT_EQ(stopped.at("task").at("stopCode"), "UserInitiated");
  d = ok("DescribeContainerInstances", R"({"cluster":"a","containerInstances":[")" + arn + "\"]}");
  EXPECT_EQ(d.at("containerInstances").at(0).at("remainingResources").at(1).at("integerValue"),
            4096);
  EXPECT_EQ(
      ok("RunTask", R"({"cluster":"a","taskDefinition":"big"})").at("tasks").as_array().size(), 1u);
  EXPECT_EQ(ok("ListTasks", R"({"cluster":"a"})").at("taskArns").as_array().size(), 1u);
  EXPECT_EQ(ok("ListTasks", R"({"cluster":"a","desiredStatus":"STOPPED"})")
                .at("taskArns")
                .as_array()
                .size(),
            1u);
  EXPECT_EQ(ok("ListTasks", R"({"cluster":"a","startedBy":"me","desiredStatus":"STOPPED"})")
                .at("taskArns")
                .as_array()
                .size(),
            1u);
  EXPECT_EQ(ok("DescribeTasks", R"({"cluster":"a","tasks":[")" + task_arn + R"(","nope"]})")
                .at("failures")
                .at(0)
                .at("reason"),
            "MISSING");
  // A cluster with tasks cannot be deleted; bad input is refused.
  EXPECT_EQ(err("RunTask", R"({"cluster":"a","taskDefinition":"big","count":11})"),
            "InvalidParameterException");
  EXPECT_EQ(
      err("RunTask",
          R"({"cluster":"a","taskDefinition":"big","placementConstraints":[{"type":"memberOf","expression":"attribute:x =="}]})"),
      "InvalidParameterException");
  EXPECT_EQ(err("RunTask", R"({"cluster":"a","taskDefinition":"nope"})"), "ClientException");
  ok("CreateCluster", R"({"clusterName":"empty"})");
  EXPECT_EQ(err("RunTask", R"({"cluster":"empty","taskDefinition":"big"})"),
            "InvalidParameterException");
}

TEST_F(EcsTest, StartTaskUsesTheNamedInstances) {
  ok("CreateCluster", R"({"clusterName":"a"})");
  std::string arn = register_instance("a");
  ok("RegisterTaskDefinition",
     R"({"family":"small","containerDefinitions":[{"name":"a","image":"i","memory":1000}]})");
  auto out = ok("StartTask", R"({"cluster":"a","taskDefinition":"small","containerInstances":[")" +
                                 arn + "\",\"" + arn + "\",\"" + arn + "\",\"" + arn + "\",\"" +
                                 arn + R"(","ffff"]})");
  EXPECT_EQ(out.at("tasks").as_array().size(), 4u);  // 4096 MiB fits four
  ASSERT_EQ(out.at("failures").as_array().size(), 2u);
  EXPECT_EQ(out.at("failures").at(0).at("reason"), "RESOURCE:MEMORY");
  EXPECT_EQ(out.at("failures").at(1).at("reason"), "MISSING");
}

TEST_F(EcsTest, StoppedTasksArePrunedAfterAnHour) {
  ok("CreateCluster", R"({"clusterName":"a"})");
  register_instance("a");
  ok("RegisterTaskDefinition",
     R"({"family":"small","containerDefinitions":[{"name":"a","image":"i","memory":64}]})");
  auto run = ok("RunTask", R"({"cluster":"a","taskDefinition":"small","count":2})");
  std::string stopped(run.at("tasks").at(0).at("taskArn").as_string());
  std::string running(run.at("tasks").at(1).at("taskArn").as_string());
  ok("StopTask", R"({"cluster":"a","task":")" + stopped + "\"}");
  Janitor janitor(ecs_.context());
  clock_.advance(std::chrono::minutes(59));
  EXPECT_EQ(*janitor.sweep(), 0u);
  EXPECT_EQ(ok("DescribeTasks", R"({"cluster":"a","tasks":[")" + stopped + "\"]}")
                .at("tasks")
                .as_array()
                .size(),
            1u);
  clock_.advance(std::chrono::minutes(2));
  EXPECT_EQ(*janitor.sweep(), 1u);
  auto d =
      ok("DescribeTasks", R"({"cluster":"a","tasks":[")" + stopped + "\",\"" + running + "\"]}");
  EXPECT_EQ(d.at("tasks").as_array().size(), 1u);
  EXPECT_EQ(d.at("failures").at(0).at("reason"), "MISSING");
}

TEST_F(EcsTest, AgentReportsMoveTasksOn) {
  ok("CreateCluster", R"({"clusterName":"a"})");
  std::string arn = register_instance("a");
  ok("RegisterTaskDefinition",
     R"({"family":"web","containerDefinitions":[{"name":"web","image":"i","memory":256,
      "portMappings":[{"containerPort":80,"hostPort":0}]}]})");
  auto run = ok("RunTask", R"({"cluster":"a","taskDefinition":"web"})");
  std::string task(run.at("tasks").at(0).at("taskArn").as_string());
  ok("SubmitTaskStateChange",
     R"({"cluster":"a","task":")" + task + R"(","status":"RUNNING","containers":[
      {"containerName":"web","status":"RUNNING","runtimeId":"abc","networkBindings":[{"bindIP":"0.0.0.0","containerPort":80,"hostPort":32768,"protocol":"tcp"}]}]})");
  auto d = ok("DescribeTasks", R"({"cluster":"a","tasks":[")" + task + "\"]}")
               .at("tasks")
               .at(0)
               .as_object();
  EXPECT_EQ(d.at("lastStatus"), "RUNNING");
  EXPECT_EQ(d.at("containers").at(0).at("runtimeId"), "abc");
  EXPECT_EQ(d.at("containers").at(0).at("networkBindings").at(0).at("hostPort"), 32768);
  EXPECT_TRUE(d.contains("startedAt"));
  auto ci =
      ok("DescribeContainerInstances", R"({"cluster":"a","containerInstances":[")" + arn + "\"]}")
          .at("containerInstances")
          .at(0)
          .as_object();
  EXPECT_EQ(ci.at("runningTasksCount"), 1);
  EXPECT_EQ(ci.at("pendingTasksCount"), 0);
  // Status never goes back; an essential exit stops the task and frees its resources.
  ok("SubmitTaskStateChange", R"({"cluster":"a","task":")" + task + R"(","status":"PENDING"})");
  ok("SubmitTaskStateChange",
     R"({"cluster":"a","task":")" + task +
         R"(","status":"STOPPED","reason":"Essential container in task exited",
      "containers":[{"containerName":"web","status":"STOPPED","exitCode":3}]})");
  d = ok("DescribeTasks", R"({"cluster":"a","tasks":[")" + task + "\"]}")
          .at("tasks")
          .at(0)
          .as_object();
  EXPECT_EQ(d.at("lastStatus"), "STOPPED");
  EXPECT_EQ(d.at("stopCode"), "EssentialContainerExited");
  EXPECT_EQ(d.at("containers").at(0).at("exitCode"), 3);
  ci = ok("DescribeContainerInstances", R"({"cluster":"a","containerInstances":[")" + arn + "\"]}")
           .at("containerInstances")
           .at(0)
           .as_object();
  EXPECT_EQ(ci.at("runningTasksCount"), 0);
  EXPECT_EQ(ci.at("remainingResources").at(1).at("integerValue"), 4096);
}

}  // namespace
}  // namespace berth::server::ecs
