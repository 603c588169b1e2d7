// Table-driven tests of the cluster query language: what matches a known instance, and where and
// why invalid expressions are rejected.

#include <gtest/gtest.h>

#include "scheduler/scheduler.h"

namespace berth::scheduler {
namespace {

InstanceView sample() {
  InstanceView v;
  v.arn = "arn:aws:ecs:us-east-1:123456789012:container-instance/c/1";
  v.ec2_instance_id = "i-0abc123";
  v.attributes = {{"ecs.availability-zone", "us-east-1a"},
                  {"ecs.instance-type", "t2.micro"},
                  {"ecs.os-type", "linux"},
                  {"stack", "prod"},
                  {"gpu-count", "4"},
                  {"a*b", "x"},
                  {"com.amazonaws.ecs.capability.docker-remote-api.1.17", std::nullopt}};
  v.agent_connected = true;
  v.agent_version = "1.68.2";
  v.registered_at = 1529360908.5;  // 2018-06-18T22:28:28.5Z
  v.running_tasks_count = 3;
  v.task_groups = {"service:web", "family:batch"};
  return v;
}

struct Case {
  const char* expression;
  bool matches;
};

const Case kValid[] = {
    {"attribute:ecs.instance-type == t2.micro", true},
    {"attribute:ecs.instance-type equals t2.micro", true},
    {"attribute:ecs.instance-type==t2.micro", true},
    {"attribute:ecs.instance-type == t2.*", true},  // wildcard
    {"attribute:ecs.instance-type == *.micro", true},
    {"attribute:ecs.instance-type == m5.*", false},
    {"attribute:ecs.instance-type == 't2.*'", false},  // quoted: a literal '*'
    {"attribute:ecs.instance-type == \"t2.micro\"", true},
    {"attribute:ecs.instance-type != t2.micro", false},
    {"attribute:ecs.instance-type not_equals m5.large", true},
    {"attribute:ecs.instance-type =~ t2.*", true},
    {"attribute:ecs.instance-type =~ t2", false},  // regex must match the whole value
    {"attribute:ecs.instance-type !~ m5.*", true},
    {"attribute:ecs.instance-type matches (t2|m5)\\.micro", true},
    {"attribute:ecs.instance-type not_matches (t2|m5)\\.micro", false},
    {"attribute:ecs.availability-zone in [us-east-1a, us-east-1b]", true},
    {"attribute:ecs.availability-zone in (us-east-1b, us-east-1c)", false},
    {"attribute:ecs.availability-zone in ['us-east-1b',\"us-east-1a\"]", true},
    {"attribute:ecs.availability-zone in [us-east-*]", true},
    {"attribute:ecs.availability-zone !in [us-east-1b]", true},
    {"attribute:ecs.availability-zone not_in [us-east-1a]", false},
    {"attribute:stack exists", true},
    {"attribute:missing exists", false},
    {"attribute:missing !exists", true},
    {"attribute:missing not_exists", true},
    {"attribute:missing == x", false},
    {"attribute:missing != x", true},
    {"attribute:missing > 1", false},
    {"attribute:com.amazonaws.ecs.capability.docker-remote-api.1.17 exists", true},
    {"attribute:com.amazonaws.ecs.capability.docker-remote-api.1.17 == x", false},
    {"attribute:gpu-count > 2", true},
    {"attribute:gpu-count >= 10", false},  // numeric, not string, comparison
    {"attribute:gpu-count less_than 10", true},
    {"attribute:gpu-count == 4", true},
    {"attribute:stack > alpha", true},  // string comparison
    {"attribute:stack greater_than_equal zulu", false},
    {"ec2InstanceId == i-0abc123", true},
    {"ec2InstanceId in ['i-0abc123', 'i-999']", true},
    {"ec2InstanceId =~ i-0.*", true},
    {"ec2InstanceId != i-0abc123", false},
    {"agentConnected == true", true},
    {"agentConnected == FALSE", false},
    {"agentConnected != false", true},
    {"agentConnected in [true]", true},
    {"agentVersion >= 1.20.0", true},
    {"agentVersion < 1.9", false},  // 1.68 > 1.9 component-wise
    {"agentVersion == 1.68.2", true},
    {"agentVersion <= v1.68.2", true},
    {"registeredAt > 2018-01-01", true},
    {"registeredAt == 2018-06-18", true},  // a bare date compares days
    {"registeredAt > 2018-06-18", false},
    {"registeredAt < 2018-06-18T22:28:29Z", true},
    {"registeredAt == 2018-06-18T23:28:28+01:00", true},
    {"registeredAt > 2018-06-18T22:28:28", false},
    {"registeredAt >= 2018-06-18T22:28:28.000Z", true},
    {"runningTasksCount == 3", true},
    {"runningTasksCount > 5", false},
    {"runningTasksCount <= 3", true},
    {"task:group == service:web", true},
    {"task:group != service:web", false},
    {"task:group == service:api", false},
    {"task:group != service:api", true},
    {"task:group in [service:api, family:batch]", true},
    {"task:group =~ service:.*", true},
    {"task:group !~ family:.*", false},
    {"attribute:ecs.instance-type =~ t2.* and attribute:ecs.availability-zone != us-east-1d", true},
    {"attribute:ecs.instance-type == m5.large || attribute:stack == prod", true},
    {"attribute:stack == prod or attribute:stack == test && runningTasksCount > 5", true},
    {"(attribute:stack == prod || attribute:stack == test) && runningTasksCount > 5", false},
    {"attribute:stack == dev || attribute:stack == prod && runningTasksCount > 0", true},
    {"!(attribute:stack == prod)", false},
    {"not(attribute:stack == dev)", true},
    {"! attribute:stack == dev", true},
    {"not attribute:stack exists", false},
    {"!!attribute:stack exists", true},
    {"(attribute:ecs.instance-type =~ (t2|m5).micro)", true},
    {"((attribute:stack==prod))&&(runningTasksCount>1)", true},
    {"  attribute:stack == prod  ", true},

};

TEST(QueryLanguage, ValidExpressions) {
  const InstanceView v = sample();
  for (const auto& c : kValid) {
    auto e = Expression::parse(c.expression);
    ASSERT_TRUE(e.ok()) << c.expression << ": " << e.error().message;
    EXPECT_EQ(e->matches(v), c.matches) << c.expression;
  }
}

struct Bad {
  const char* expression;
  size_t position;  // 1-based
  const char* message;
};

const Bad kInvalid[] = {
    {"", 1, "expression is empty"},
    {"   ", 4, "expression is empty"},
    {"attribute:ecs.instance-type t2.micro", 29, "expected operator"},
    {"attribute: == x", 11, "expected attribute name"},
    {"foo == bar", 1, "unknown subject 'foo'"},
    {"== bar", 1, "expected subject"},
    {"attribute:a ==", 15, "expected value"},
    {"attribute:a in a, b", 16, "expected '[' or '(' to start a value list"},
    {"attribute:a in [a, b", 21, "expected ',' or ']'"},
    {"attribute:a in (a b)", 19, "expected ',' or ')'"},
    {"attribute:a in []", 17, "expected value"},
    {"attribute:a == 'x", 16, "unterminated quoted value"},
    {"(attribute:a == x", 18, "expected ')'"},
    {"attribute:a == x)", 17, "expected '&&', '||' or end of expression"},
    {"attribute:a == x &&", 20, "expected subject"},
    {"attribute:a == x or", 20, "expected subject"},
    {"attribute:a == x y", 18, "expected '&&', '||' or end of expression"},
    {"attribute:a exists x", 20, "expected '&&', '||' or end of expression"},
    {"attribute:a !inx [a]", 13, "expected operator"},
    {"attribute:a*b == x", 12, "expected operator"},
    {"agentConnected > true", 16, "operator '>' is not valid for agentConnected"},
    {"agentVersion in [1.0]", 14, "operator 'in' is not valid for agentVersion"},
    {"runningTasksCount =~ 3", 19, "operator '=~' is not valid for runningTasksCount"},
    {"task:group exists", 12, "operator 'exists' is not valid for task:group"},
    {"registeredAt != ", 17, "expected value"},
    {"runningTasksCount == three", 22, "expected a whole number, got 'three'"},
    {"registeredAt > yesterday", 16, "invalid date 'yesterday'"},
    {"registeredAt > 2018-02-30", 16, "invalid date '2018-02-30'"},
    {"registeredAt > 2018-06-18T25:00:00Z", 16, "invalid date"},
    {"agentConnected == maybe", 19, "expected true or false, got 'maybe'"},
    {"attribute:a =~ [", 16, "invalid regular expression '['"},
    {"attribute:a == x && (attribute:b == y || )", 42, "expected subject"},
};

TEST(QueryLanguage, InvalidExpressionsNameThePosition) {
  for (const auto& c : kInvalid) {
    auto e = Expression::parse(c.expression);
    ASSERT_FALSE(e.ok()) << c.expression;
    EXPECT_EQ(e.error().code, make_error_code(Errc::invalid_expression));
    const std::string want = "Invalid expression at position " + std::to_string(c.position) + ": ";
    EXPECT_EQ(e.error().message.substr(0, want.size()), want)
        << c.expression << " -> " << e.error().message;
    EXPECT_NE(e.error().message.find(c.message), std::string::npos)
        << c.expression << " -> " << e.error().message;
  }
}

TEST(QueryLanguage, LengthLimit) {
  std::string text = "attribute:stack == ";
  text += std::string(kMaxExpressionLength - text.size(), 'x');
  EXPECT_TRUE(Expression::parse(text).ok());
  text += 'x';
  auto e = Expression::parse(text);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.error().message, "Invalid expression: longer than 2000 characters");
}

TEST(QueryLanguage, PerInstanceSubjectsAreFlagged) {
  EXPECT_FALSE(Expression::parse("attribute:a == b && agentVersion > 1")->per_instance());
  EXPECT_TRUE(Expression::parse("attribute:a == b || task:group == g")->per_instance());
  EXPECT_TRUE(Expression::parse("not runningTasksCount > 1")->per_instance());
  EXPECT_TRUE(Expression::parse("ec2InstanceId == i-1")->per_instance());
  EXPECT_TRUE(Expression::parse("registeredAt > 2020-01-01")->per_instance());
}

}  // namespace
}  // namespace berth::scheduler
