#include "model/service_model.h"

#include <chrono>
#include <cstdio>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <boost/json.hpp>

namespace berth::model {
namespace {

namespace json = boost::json;
using ::testing::HasSubstr;

const ServiceModel& ecs() { return ServiceModel::ecs(); }

// Shaped like what `aws ecs register-task-definition --cli-input-json` sends.
json::value register_task_definition() {
  return json::parse(R"({
    "family": "web",
    "taskRoleArn": "arn:aws:iam::123456789012:role/web",
    "networkMode": "bridge",
    "requiresCompatibilities": ["EC2"],
    "cpu": "256",
    "memory": "512",
    "tags": [{"key": "team", "value": "platform"}],
    "volumes": [{"name": "data", "host": {"sourcePath": "/srv/data"}}],
    "containerDefinitions": [{
      "name": "nginx",
      "image": "nginx:1.25",
      "cpu": 128,
      "memory": 256,
      "memoryReservation": 128,
      "essential": true,
      "portMappings": [
        {"containerPort": 80, "hostPort": 8080, "protocol": "tcp"},
        {"containerPort": 443, "hostPort": 8443, "protocol": "tcp", "name": "https"}
      ],
      "environment": [{"name": "MODE", "value": "prod"}],
      "environmentFiles": [{"value": "arn:aws:s3:::bucket/web.env", "type": "s3"}],
      "mountPoints": [{"sourceVolume": "data", "containerPath": "/data", "readOnly": false}],
      "command": ["nginx", "-g", "daemon off;"],
      "dockerLabels": {"com.example.tier": "frontend"},
      "ulimits": [{"name": "nofile", "softLimit": 65536, "hardLimit": 65536}],
      "logConfiguration": {"logDriver": "json-file", "options": {"max-size": "10m"}},
      "healthCheck": {"command": ["CMD-SHELL", "curl -f http://localhost/"], "interval": 30,
                      "timeout": 5, "retries": 3, "startPeriod": 10}
    }, {
      "name": "sidecar",
      "image": "busybox",
      "memory": 32,
      "dependsOn": [{"containerName": "nginx", "condition": "START"}]
    }]
  })");
}

// Returns the error message of validating `body` (with `edit` applied) or "" if it passes.
template <class Edit>
std::string input_error(Edit edit, std::string_view op = "RegisterTaskDefinition") {
  json::value body = register_task_definition();
  edit(body);
  Status s = ecs().validate_input(op, body);
  return s.ok() ? std::string() : s.error().message;
}

json::object& container(json::value& body, std::size_t i) {
  return body.at("containerDefinitions").as_array().at(i).as_object();
}

TEST(ServiceModel, EmbeddedEcsModelParses) {
  const ServiceModel& m = ecs();
  EXPECT_EQ(m.target_prefix(), "AmazonEC2ContainerServiceV20141113");
  EXPECT_EQ(m.signing_name(), "ecs");
  EXPECT_EQ(m.protocol(), "json");
  EXPECT_GE(m.operation_names().size(), 50u);
  const OperationInfo* op = m.operation("RegisterTaskDefinition");
  ASSERT_NE(op, nullptr);
  EXPECT_EQ(op->input_shape, "RegisterTaskDefinitionRequest");
  EXPECT_EQ(op->output_shape, "RegisterTaskDefinitionResponse");
  EXPECT_EQ(m.operation("NoSuchThing"), nullptr);
  EXPECT_THAT(m.member_names("PortMapping"),
              ::testing::IsSupersetOf({"containerPort", "hostPort", "protocol"}));
  EXPECT_TRUE(m.member_names("Nope").empty());
  EXPECT_EQ(&ServiceModel::ecs(), &m);
}

TEST(ServiceModel, RealisticRegisterTaskDefinitionPasses) {
  EXPECT_EQ(input_error([](json::value&) {}), "");
}

TEST(ServiceModel, WrongTypeNamesTheFullPath) {
  EXPECT_EQ(input_error([](json::value& b) { container(b, 0)["memory"] = "abc"; }),
            "Invalid type for parameter containerDefinitions[0].memory, value: \"abc\", type: "
            "string, valid types: integer");
  std::string deep = input_error([](json::value& b) {
    container(b, 0)["portMappings"].as_array()[1].as_object()["containerPort"] = "443";
  });
  EXPECT_THAT(deep, HasSubstr("containerDefinitions[0].portMappings[1].containerPort"));
  EXPECT_THAT(deep, HasSubstr("valid types: integer"));
  EXPECT_THAT(input_error([](json::value& b) { container(b, 0)["essential"] = "true"; }),
              HasSubstr("containerDefinitions[0].essential, value: \"true\", type: string, "
                        "valid types: boolean"));
  EXPECT_THAT(input_error([](json::value& b) { b.as_object()["containerDefinitions"] = "x"; }),
              HasSubstr("parameter containerDefinitions, value: \"x\", type: string, valid "
                        "types: array"));
  EXPECT_THAT(input_error([](json::value& b) { container(b, 0)["logConfiguration"] = 1; }),
              HasSubstr("containerDefinitions[0].logConfiguration, value: 1, type: integer, "
                        "valid types: object"));
  EXPECT_THAT(input_error([](json::value& b) { container(b, 0)["command"].as_array()[2] = 7; }),
              HasSubstr("containerDefinitions[0].command[2]"));
  EXPECT_THAT(input_error([](json::value& b) { container(b, 0)["cpu"] = 1.5; }),
              HasSubstr("containerDefinitions[0].cpu, value: 1.5, type: number"));
}

TEST(ServiceModel, IntegralDoubleIsAnInteger) {
  EXPECT_EQ(input_error([](json::value& b) { container(b, 0)["memory"] = 512.0; }), "");
}

TEST(ServiceModel, MissingRequiredMembers) {
  EXPECT_EQ(input_error([](json::value& b) { b.as_object().erase("family"); }),
            "Missing required parameter: family");
  EXPECT_EQ(input_error([](json::value& b) {
              container(b, 0)["environmentFiles"].as_array()[0].as_object().erase("type");
            }),
            "Missing required parameter: containerDefinitions[0].environmentFiles[0].type");
  EXPECT_EQ(input_error([](json::value& b) {
              container(b, 1)["dependsOn"].as_array()[0].as_object().erase("condition");
            }),
            "Missing required parameter: containerDefinitions[1].dependsOn[0].condition");
}

TEST(ServiceModel, NullRequiredIsMissingAndNullOptionalIsAbsent) {
  EXPECT_EQ(input_error([](json::value& b) { b.as_object()["family"] = nullptr; }),
            "Missing required parameter: family");
  EXPECT_EQ(input_error([](json::value& b) {
              container(b, 0)["logConfiguration"].as_object()["logDriver"] = nullptr;
            }),
            "Missing required parameter: containerDefinitions[0].logConfiguration.logDriver");
  EXPECT_EQ(input_error([](json::value& b) {
              b.as_object()["networkMode"] = nullptr;
              container(b, 0)["portMappings"] = nullptr;
            }),
            "");
}

TEST(ServiceModel, EnumMembership) {
  EXPECT_EQ(input_error([](json::value& b) { b.as_object()["networkMode"] = "foo"; }),
            "Invalid value \"foo\" for parameter networkMode: must be one of bridge, host, awsvpc, "
            "none");
  EXPECT_THAT(
      input_error([](json::value& b) { b.as_object()["requiresCompatibilities"] = {"ec2"}; }),
      HasSubstr("parameter requiresCompatibilities[0]: must be one of EC2, FARGATE"));
}

TEST(ServiceModel, IntegerRanges) {
  EXPECT_EQ(input_error([](json::value& b) { container(b, 0)["memory"] = 3000000000; }),
            "parameter containerDefinitions[0].memory: value 3000000000 is out of range for a "
            "32-bit integer");
  EXPECT_THAT(input_error([](json::value& b) {
                container(b, 0)["memory"] = std::uint64_t{18000000000000000000u};
              }),
              HasSubstr("out of range for a 32-bit integer"));
  EXPECT_THAT(input_error([](json::value& b) { container(b, 0)["cpu"] = -2147483649; }),
              HasSubstr("out of range for a 32-bit integer"));
  EXPECT_EQ(input_error([](json::value& b) { container(b, 0)["cpu"] = 2147483647; }), "");
  // CapacityProviderStrategyItem.weight declares min 0, max 1000.
  std::string err = input_error(
      [](json::value& b) {
        b = json::parse(R"({"serviceName": "web",
                            "capacityProviderStrategy": [{"capacityProvider": "cp", "weight": 2000}]})");
      },
      "CreateService");
  EXPECT_EQ(err,
            "parameter capacityProviderStrategy[0].weight: value 2000 is out of range, must be "
            "between 0 and 1000");
}

TEST(ServiceModel, LengthLimits) {
  EXPECT_EQ(
      input_error([](json::value& b) { b.as_object()["tags"] = json::parse(R"([{"key": ""}])"); }),
      "Invalid length of value for parameter tags[0].key: 0 characters, must be between 1 "
      "and 128");
  // Characters, not bytes: 128 two-byte characters are within TagKey's 128.
  std::string wide;
  for (int i = 0; i < 128; ++i) wide += "\xc3\xa9";
  EXPECT_EQ(input_error([&](json::value& b) { b.as_object()["tags"] = {{{"key", wide}}}; }), "");
  EXPECT_THAT(
      input_error([](json::value& b) {
        json::array tags;
        for (int i = 0; i < 51; ++i) tags.push_back(json::object{{"key", std::to_string(i)}});
        b.as_object()["tags"] = tags;
      }),
      HasSubstr("Invalid length for parameter tags: 51 elements, must be between 0 and 50"));
}

TEST(ServiceModel, MapValuesAreCheckedWithKeyInPath) {
  EXPECT_THAT(
      input_error([](json::value& b) {
        container(b, 0)["dockerLabels"] = {{"com.example.tier", 1}};
      }),
      HasSubstr("parameter containerDefinitions[0].dockerLabels.com.example.tier, value: 1"));
  EXPECT_THAT(input_error([](json::value& b) {
                container(b, 0)["dockerLabels"] = {"a", "b"};
              }),
              HasSubstr("containerDefinitions[0].dockerLabels, value: [\"a\",\"b\"], type: array"));
}

TEST(ServiceModel, UnknownMembersAreIgnoredOnInput) {
  EXPECT_EQ(input_error([](json::value& b) {
              b.as_object()["futureFeature"] = {{"x", 1}};
              container(b, 0)["alsoNew"] = "whatever";
            }),
            "");
}

TEST(ServiceModel, BodyMustBeAnObject) {
  for (json::value body : {json::value(json::array{}), json::value("x"), json::value(nullptr)}) {
    Status s = ecs().validate_input("ListClusters", body);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.error().code, Errc::serialization);
    EXPECT_THAT(s.error().message, HasSubstr("must be a JSON object"));
  }
  EXPECT_TRUE(ecs().validate_input("ListClusters", json::object{}).ok());
}

TEST(ServiceModel, ErrorsCarryCodesThatNameTheAwsException) {
  Status s = ecs().validate_input("RegisterTaskDefinition", json::object{});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, Errc::invalid_parameter);
  EXPECT_THAT(s.error().code.message(), HasSubstr("InvalidParameterException"));
  Status unknown = ecs().validate_input("DoSomething", json::object{});
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code, Errc::unknown_operation);
  EXPECT_THAT(std::error_code(Errc::cluster_not_found).message(),
              HasSubstr("ClusterNotFoundException"));
}

TEST(ServiceModel, OutputRejectsUndeclaredMembersButNotMissingRequired) {
  json::value out = json::parse(R"({"taskDefinition": {
      "taskDefinitionArn": "arn:aws:ecs:us-east-1:123456789012:task-definition/web:1",
      "family": "web", "revision": 1, "status": "ACTIVE", "registeredAt": 1714550400.25,
      "containerDefinitions": [{"name": "nginx", "image": "nginx", "memory": 256}]}})");
  EXPECT_TRUE(ecs().validate_output("RegisterTaskDefinition", out).ok());
  out.at("taskDefinition").as_object()["registeredAt"] = "2024-05-01T08:00:00.250Z";
  EXPECT_TRUE(ecs().validate_output("RegisterTaskDefinition", out).ok());
  out.at("taskDefinition").as_object()["registeredAt"] = "yesterday";
  EXPECT_THAT(ecs().validate_output("RegisterTaskDefinition", out).error().message,
              HasSubstr("Invalid timestamp for parameter taskDefinition.registeredAt"));
  out.at("taskDefinition").as_object()["registeredAt"] = 0;
  out.at("taskDefinition").at("containerDefinitions").as_array()[0].as_object()["internal"] = 1;
  Status s = ecs().validate_output("RegisterTaskDefinition", out);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.error().message,
              HasSubstr("Unknown parameter in taskDefinition.containerDefinitions[0]: "
                        "\"internal\", must be one of: "));
  s = ecs().validate_output("RegisterTaskDefinition", json::parse(R"({"extra": 1})"));
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.error().message, HasSubstr("Unknown parameter in output: \"extra\""));
}

// A small hand-written model covers what ECS does not use: recursion, blobs, locationName,
// operations without input.
constexpr std::string_view kTinyModel = R"({
  "metadata": {"endpointPrefix": "tiny", "protocol": "json", "targetPrefix": "Tiny_1"},
  "operations": {
    "Ping": {"name": "Ping"},
    "Put": {"name": "Put", "input": {"shape": "Node"}, "output": {"shape": "Node"}}
  },
  "shapes": {
    "Node": {"type": "structure", "required": ["id"], "members": {
      "id": {"shape": "Id"}, "child": {"shape": "Node"}, "data": {"shape": "Data"},
      "size": {"shape": "Size", "locationName": "Size"}, "ratio": {"shape": "Ratio"}}},
    "Id": {"type": "string"},
    "Data": {"type": "blob"},
    "Size": {"type": "long", "min": 1},
    "Ratio": {"type": "float", "max": 1}
  }
})";

TEST(ServiceModel, HandWrittenModelFeatures) {
  Result<ServiceModel> parsed = ServiceModel::parse(kTinyModel);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  const ServiceModel& m = *parsed;
  EXPECT_EQ(m.signing_name(), "tiny");
  EXPECT_EQ(m.operation("Ping")->input_shape, "");
  EXPECT_TRUE(m.validate_input("Ping", json::object{}).ok());
  EXPECT_TRUE(m.validate_output("Ping", json::object{}).ok());
  EXPECT_FALSE(m.validate_output("Ping", json::parse(R"({"a":1})")).ok());

  auto error = [&](std::string_view body) {
    Status s = m.validate_input("Put", json::parse(body));
    return s.ok() ? std::string() : s.error().message;
  };
  EXPECT_EQ(error(R"({"id": "a", "data": "aGk=", "Size": 9000000000, "ratio": 0.5})"), "");
  EXPECT_EQ(error(R"({"id": "a", "data": "not base64!"})"),
            "Invalid base64 for parameter data, value: \"not base64!\"");
  EXPECT_EQ(error(R"({"id": "a", "Size": 0})"),
            "parameter Size: value 0 is out of range, must be at least 1");
  EXPECT_EQ(error(R"({"id": "a", "Size": 18446744073709551615})"),
            "parameter Size: value 18446744073709551615 is out of range for a 64-bit integer");
  EXPECT_EQ(error(R"({"id": "a", "ratio": 1.5})"),
            "parameter ratio: value 1.5 is out of range, must be at most 1");
  EXPECT_EQ(error(R"({"id": "a", "child": {"id": "b", "child": {"child": {"id": "d"}}}})"),
            "Missing required parameter: child.child.id");
}

TEST(ServiceModel, RecursionIsCappedAt64Levels) {
  Result<ServiceModel> m = ServiceModel::parse(kTinyModel);
  ASSERT_TRUE(m.ok());
  // Built directly: Boost.JSON's parser would itself refuse this depth.
  auto nested = [](int depth) {
    json::value v = {{"id", "leaf"}};
    for (int i = 0; i < depth; ++i) v = {{"id", std::to_string(i)}, {"child", std::move(v)}};
    return v;
  };
  EXPECT_TRUE(m->validate_input("Put", nested(63)).ok());
  Status s = m->validate_input("Put", nested(200));
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.error().message, HasSubstr("nested deeper than 64 levels"));
  EXPECT_THAT(s.error().message, HasSubstr("parameter child.child.child."));
}

TEST(ServiceModel, BrokenModelsAreErrors) {
  EXPECT_FALSE(ServiceModel::parse("{").ok());
  EXPECT_FALSE(ServiceModel::parse(R"({"metadata": {}})").ok());
  Result<ServiceModel> dangling = ServiceModel::parse(
      R"({"metadata": {}, "operations": {}, "shapes": {"A": {"type": "list", "member": {"shape": "B"}}}})");
  ASSERT_FALSE(dangling.ok());
  EXPECT_THAT(dangling.error().message, HasSubstr("unknown shape \"B\""));
}

TEST(ServiceModel, ValidationRate) {
  json::value body = register_task_definition();
  constexpr int kRounds = 10000;
  auto start = std::chrono::steady_clock::now();
  int ok = 0;
  for (int i = 0; i < kRounds; ++i) ok += ecs().validate_input("RegisterTaskDefinition", body).ok();
  std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(ok, kRounds);
  std::printf("validated %d RegisterTaskDefinition bodies in %.1f ms: %.0f/s (%.2f us each)\n",
              kRounds, took.count() * 1e3, kRounds / took.count(), took.count() * 1e6 / kRounds);
}

}  // namespace
}  // namespace berth::model
