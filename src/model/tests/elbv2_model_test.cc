// The embedded ELBv2 model (query protocol) and the shape introspection the query protocol uses.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "model/elbv2_errors.h"
#include "model/service_model.h"

namespace berth::model {
namespace {

namespace json = boost::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

const ServiceModel& elbv2() { return ServiceModel::elbv2(); }

std::string input_error(std::string_view op, std::string_view body) {
  Status s = elbv2().validate_input(op, json::parse(body));
  return s.ok() ? std::string() : s.error().message;
}

std::vector<std::string> member_order(ShapeView shape) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < shape.member_count(); ++i)
    out.emplace_back(shape.member(i).wire_name);
  return out;
}

TEST(Elbv2Model, EmbeddedModelParses) {
  const ServiceModel& m = elbv2();
  EXPECT_EQ(&ServiceModel::elbv2(), &m);
  EXPECT_EQ(m.signing_name(), "elasticloadbalancing");
  EXPECT_EQ(m.protocol(), "query");
  EXPECT_EQ(m.api_version(), "2015-12-01");
  EXPECT_EQ(m.xml_namespace(), "http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/");
  EXPECT_EQ(m.target_prefix(), "");
  const OperationInfo* op = m.operation("DescribeTargetGroups");
  ASSERT_NE(op, nullptr);
  EXPECT_EQ(op->input_shape, "DescribeTargetGroupsInput");
  EXPECT_EQ(op->output_shape, "DescribeTargetGroupsOutput");
  EXPECT_EQ(op->result_wrapper, "DescribeTargetGroupsResult");
  for (const std::string& name : m.operation_names())
    EXPECT_EQ(m.operation(name)->result_wrapper, name + "Result") << name;
  // ECS is JSON: no wrapper, no namespace.
  EXPECT_EQ(ServiceModel::ecs().operation("ListClusters")->result_wrapper, "");
  EXPECT_EQ(ServiceModel::ecs().xml_namespace(), "");
  EXPECT_EQ(ServiceModel::ecs().api_version(), "2014-11-13");
}

TEST(Elbv2Model, StructureMembersKeepModelOrder) {
  ShapeView tg = elbv2().shape("TargetGroup");
  ASSERT_TRUE(tg);
  EXPECT_EQ(tg.type(), ShapeType::structure);
  std::vector<std::string> order = member_order(tg);
  ASSERT_GE(order.size(), 5u);
  EXPECT_THAT(std::vector<std::string>(order.begin(), order.begin() + 5),
              ElementsAre("TargetGroupArn", "TargetGroupName", "Protocol", "Port", "VpcId"));
  // The ECS model is embedded the same way (members of PortMapping in model order).
  EXPECT_EQ(member_order(ServiceModel::ecs().shape("PortMapping")).front(), "containerPort");
}

TEST(Elbv2Model, ShapeIntrospection) {
  const ServiceModel& m = elbv2();
  EXPECT_FALSE(m.shape("NoSuchShape"));
  EXPECT_FALSE(m.shape(""));

  std::optional<MemberView> groups =
      m.shape("DescribeTargetGroupsOutput").find_member("TargetGroups");
  ASSERT_TRUE(groups);
  EXPECT_EQ(groups->name, "TargetGroups");
  EXPECT_EQ(groups->shape.type(), ShapeType::list);
  EXPECT_FALSE(groups->flattened);
  EXPECT_EQ(groups->shape.list_member().name(), "TargetGroup");
  EXPECT_EQ(groups->shape.list_member_name(), "");
  EXPECT_FALSE(m.shape("TargetGroup").find_member("targetGroupArn"));  // names are case-sensitive

  ShapeView tg = m.shape("TargetGroup");
  EXPECT_EQ(tg.find_member("Port")->shape.type(), ShapeType::integer);
  EXPECT_EQ(tg.find_member("HealthCheckEnabled")->shape.type(), ShapeType::boolean);
  EXPECT_EQ(tg.find_member("Matcher")->shape.find_member("HttpCode")->shape.type(),
            ShapeType::string);
  EXPECT_EQ(m.shape("LoadBalancer").find_member("CreatedTime")->shape.type(), ShapeType::timestamp);
  EXPECT_TRUE(m.shape("CreateTargetGroupInput").find_member("Name")->required);
  EXPECT_FALSE(m.shape("CreateTargetGroupInput").find_member("Port")->required);

  ShapeView extra = m.shape("AuthenticateOidcActionAuthenticationRequestExtraParams");
  EXPECT_EQ(extra.type(), ShapeType::map);
  EXPECT_EQ(extra.map_key().type(), ShapeType::string);
  EXPECT_EQ(extra.map_value().type(), ShapeType::string);
  EXPECT_EQ(extra.map_key_name(), "");
  EXPECT_FALSE(extra.list_member());
}

TEST(Elbv2Model, ErrorShapesCarryCodesAndStatus) {
  ShapeView nf = elbv2().shape("TargetGroupNotFoundException");
  EXPECT_EQ(nf.error_code(), "TargetGroupNotFound");
  EXPECT_EQ(nf.error_status(), 400);
  EXPECT_EQ(elbv2().shape("HealthUnavailableException").error_status(), 500);
  EXPECT_EQ(elbv2().shape("TargetGroup").error_code(), "");
  EXPECT_EQ(elbv2().shape("TargetGroup").error_status(), 0);
  EXPECT_THAT(std::error_code(ElbErrc::target_group_not_found).message(),
              HasSubstr("TargetGroupNotFound"));
  EXPECT_STREQ(std::error_code(ElbErrc::validation).category().name(), "berth.model.elbv2");
}

TEST(Elbv2Model, ValidateInputWithPascalCaseMembers) {
  EXPECT_EQ(input_error("CreateTargetGroup", R"({"Name": "web", "Protocol": "HTTP", "Port": 80,
      "VpcId": "vpc-1", "HealthCheckEnabled": true, "HealthCheckIntervalSeconds": 10,
      "Matcher": {"HttpCode": "200"}, "Tags": [{"Key": "team", "Value": "web"}]})"),
            "");
  EXPECT_EQ(input_error("DescribeTargetGroups", R"({"Names": ["a", "b"], "PageSize": 10})"), "");
  EXPECT_EQ(input_error("ModifyTargetGroupAttributes", R"({"TargetGroupArn": "arn",
      "Attributes": [{"Key": "deregistration_delay.timeout_seconds", "Value": "5"}]})"),
            "");
  EXPECT_EQ(input_error("CreateTargetGroup", R"({"Port": 80})"),
            "Missing required parameter: Name");
  EXPECT_EQ(input_error("CreateTargetGroup", R"({"Name": "web", "Port": 70000})"),
            "parameter Port: value 70000 is out of range, must be between 1 and 65535");
  EXPECT_THAT(input_error("CreateTargetGroup", R"({"Name": "web", "Protocol": "FTP"})"),
              HasSubstr("for parameter Protocol: must be one of HTTP, HTTPS"));
  EXPECT_THAT(input_error("CreateRule", R"({"ListenerArn": "l", "Priority": 1,
      "Conditions": [{"Field": "path-pattern", "Values": ["/a"]}],
      "Actions": [{"TargetGroupArn": "t"}]})"),
              HasSubstr("Missing required parameter: Actions[0].Type"));
  EXPECT_THAT(input_error("CreateTargetGroup", R"({"Name": "web", "Tags": []})"),
              HasSubstr("Invalid length for parameter Tags: 0 elements, must be at least 1"));
}

// What ELBv2 does not use but other query/XML services do: locationName on members, list
// members and map entries, and flattened lists and maps.
constexpr std::string_view kXmlModel = R"({
  "metadata": {"endpointPrefix": "q", "protocol": "query", "apiVersion": "2020-01-01",
               "xmlNamespace": "urn:q"},
  "operations": {"Get": {"name": "Get", "input": {"shape": "In"},
                         "output": {"shape": "Out", "resultWrapper": "GetResult"}}},
  "shapes": {
    "In": {"type": "structure", "required": ["b", "a"], "members": {
      "b": {"shape": "S", "locationName": "Bee"}, "a": {"shape": "S"},
      "items": {"shape": "Items", "flattened": true}, "attrs": {"shape": "Attrs"}}},
    "Out": {"type": "structure", "members": {"items": {"shape": "Flat"}}},
    "Items": {"type": "list", "member": {"shape": "S", "locationName": "Item"}},
    "Flat": {"type": "list", "member": {"shape": "S"}, "flattened": true},
    "Attrs": {"type": "map", "key": {"shape": "S", "locationName": "Name"},
              "value": {"shape": "S", "locationName": "Val"}},
    "Oops": {"type": "structure", "members": {}, "exception": true},
    "S": {"type": "string"}
  }
})";

TEST(Elbv2Model, XmlSerializationTraits) {
  Result<ServiceModel> parsed = ServiceModel::parse(kXmlModel);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  const ServiceModel& m = *parsed;
  EXPECT_EQ(m.api_version(), "2020-01-01");
  EXPECT_EQ(m.xml_namespace(), "urn:q");
  ShapeView in = m.shape("In");
  EXPECT_EQ(member_order(in), (std::vector<std::string>{"Bee", "a", "items", "attrs"}));
  EXPECT_EQ(in.member(0).name, "b");
  EXPECT_EQ(in.find_member("Bee")->name, "b");
  EXPECT_FALSE(in.find_member("b"));
  EXPECT_TRUE(in.find_member("items")->flattened);  // on the member reference
  EXPECT_FALSE(in.find_member("items")->shape.flattened());
  EXPECT_EQ(in.find_member("items")->shape.list_member_name(), "Item");
  EXPECT_TRUE(m.shape("Out").find_member("items")->flattened);  // on the shape
  EXPECT_EQ(in.find_member("attrs")->shape.map_key_name(), "Name");
  EXPECT_EQ(in.find_member("attrs")->shape.map_value_name(), "Val");
  EXPECT_EQ(m.shape("Oops").error_code(), "Oops");  // no error.code: the shape name
  EXPECT_EQ(m.shape("Oops").error_status(), 400);
  // Required members are reported in the model's order, by wire name.
  Status s = m.validate_input("Get", json::object{});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().message, "Missing required parameter: Bee");
}

}  // namespace
}  // namespace berth::model
