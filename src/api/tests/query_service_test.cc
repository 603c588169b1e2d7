// QueryService on the ELBv2 model: form decoding and typing, validation errors, XML replies and
// errors as the SDKs parse them.

#include "api/query_service.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "api/errors.h"
#include "api/query_codec.h"
#include "api/sigv4.h"
#include "api/xml.h"
#include "model/elbv2_errors.h"

namespace berth::api {
namespace {

namespace json = boost::json;
using ::testing::HasSubstr;
using ::testing::Pair;

constexpr std::string_view kXmlns =
    R"( xmlns="http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/")";

class QueryServiceTest : public ::testing::Test {
 protected:
  QueryServiceTest() : service_(model::ServiceModel::elbv2()) {
    // Actions that record their input, so tests see the typed JSON the form became.
    for (const char* name : {"CreateTargetGroup", "CreateRule", "ModifyTargetGroupAttributes"}) {
      service_.add(name, [this](const RequestContext& ctx, const json::object& in) {
        input_ = in;
        action_ = std::string(ctx.action);
        return Result<json::value>(json::object{});
      });
    }
    service_.add("DescribeTargetGroups",
                 [this](const RequestContext&, const json::object& in) -> Result<json::value> {
                   input_ = in;
                   return reply_;
                 });
    service_.add("DescribeLoadBalancers",
                 [this](const RequestContext&, const json::object&) -> Result<json::value> {
                   return reply_;
                 });
    service_.add("DeleteTargetGroup",
                 [](const RequestContext&, const json::object& in) -> Result<json::value> {
                   if (in.at("TargetGroupArn") == "missing")
                     return Error(model::ElbErrc::target_group_not_found,
                                  "Target groups 'missing' not found");
                   return json::value();  // null: no output members
                 });
    service_.add("DescribeTargetHealth",
                 [](const RequestContext&, const json::object&) -> Result<json::value> {
                   return Error(model::ElbErrc::health_unavailable, "haproxy socket: EPIPE");
                 });
  }

  HttpResponse post(std::string form) {
    HttpRequest r;
    r.method = "POST";
    r.target = "/";
    r.headers = {{"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"}};
    r.body = std::move(form);
    RequestContext ctx;
    ctx.request_id = "req-1";
    return service_.handle(ctx, r);
  }

  // The recorded input of a call that must succeed.
  json::object call(std::string form) {
    input_ = {};
    HttpResponse r = post(std::move(form));
    EXPECT_EQ(r.status, 200) << r.body;
    return input_;
  }

  static std::string header(const HttpResponse& r, std::string_view name) {
    for (const auto& [k, v] : r.headers) {
      if (iequals(k, name)) return v;
    }
    return "";
  }

  // <Code> and <Message> of an error reply.
  static std::pair<std::string, std::string> error_of(const HttpResponse& r) {
    auto text = [&](std::string_view tag) {
      std::string open = "<" + std::string(tag) + ">", close = "</" + std::string(tag) + ">";
      std::size_t a = r.body.find(open), b = r.body.find(close);
      return a == std::string::npos || b == std::string::npos
                 ? std::string("(no " + std::string(tag) + ")")
                 : r.body.substr(a + open.size(), b - a - open.size());
    };
    return {text("Code"), text("Message")};
  }

  using CodeAndMessage = std::pair<std::string, std::string>;

  QueryService service_;
  json::object input_;
  std::string action_;
  json::value reply_ = json::object{};
};

TEST(QueryForm, ParseFormDecodes) {
  EXPECT_THAT(
      QueryService::parse_form("Action=X&Name=a+b%2Bc&Empty=&Flag&%41=%zz&&k=v%3D1&u=%C3%A9%2"),
      ::testing::ElementsAre(Pair("Action", "X"), Pair("Name", "a b+c"), Pair("Empty", ""),
                             Pair("Flag", ""), Pair("A", "%zz"), Pair("k", "v=1"),
                             Pair("u", "\xC3\xA9%2")));
  EXPECT_TRUE(QueryService::parse_form("").empty());
}

TEST(QueryForm, RequestFormJoinsQueryStringAndBody) {
  HttpRequest r;
  r.method = "POST";
  r.target = "/path?Action=A";
  r.body = "Version=1";
  EXPECT_THAT(QueryService::request_form(r),
              ::testing::ElementsAre(Pair("Action", "A"), Pair("Version", "1")));
  r.method = "GET";
  EXPECT_THAT(QueryService::request_form(r), ::testing::ElementsAre(Pair("Action", "A")));
}

TEST_F(QueryServiceTest, FormBecomesTypedJson) {
  json::object in = call(
      "Action=CreateTargetGroup&Version=2015-12-01&Name=web&Protocol=HTTP&Port=80"
      "&HealthCheckEnabled=true&HealthCheckIntervalSeconds=10&HealthCheckPath=%2Fhealth%3Fa%3D1"
      "&Matcher.HttpCode=200-299&Tags.member.1.Key=team&Tags.member.1.Value=a+b&Unknown=1");
  EXPECT_EQ(action_, "CreateTargetGroup");
  EXPECT_EQ(json::value(in), json::parse(R"({"Name": "web", "Protocol": "HTTP", "Port": 80,
      "HealthCheckEnabled": true, "HealthCheckPath": "/health?a=1",
      "HealthCheckIntervalSeconds": 10, "Matcher": {"HttpCode": "200-299"},
      "Tags": [{"Key": "team", "Value": "a b"}]})"));
  EXPECT_TRUE(in.at("Port").is_int64());
  EXPECT_EQ(
      call("Action=CreateTargetGroup&Name=w&HealthCheckEnabled=FALSE").at("HealthCheckEnabled"),
      false);
}

TEST_F(QueryServiceTest, ListsFollowTheirIndexes) {
  EXPECT_EQ(json::value(call("Action=DescribeTargetGroups&Names.member.2=b&Names.member.10=c"
                             "&Names.member.1=a")),
            json::parse(R"({"Names": ["a", "b", "c"]})"));
  // botocore sends an empty list as "Names=".
  EXPECT_EQ(json::value(call("Action=DescribeTargetGroups&Names=")),
            json::parse(R"({"Names": []})"));
  EXPECT_EQ(json::value(call("Action=ModifyTargetGroupAttributes&TargetGroupArn=t"
                             "&Attributes.member.2.Key=stickiness.enabled"
                             "&Attributes.member.2.Value=true"
                             "&Attributes.member.1.Key=deregistration_delay.timeout_seconds"
                             "&Attributes.member.1.Value=5")),
            json::parse(R"({"TargetGroupArn": "t", "Attributes": [
                {"Key": "deregistration_delay.timeout_seconds", "Value": "5"},
                {"Key": "stickiness.enabled", "Value": "true"}]})"));
}

TEST_F(QueryServiceTest, NestedListsStructuresAndMaps) {
  json::object in = call(
      "Action=CreateRule&ListenerArn=l&Priority=5"
      "&Conditions.member.1.Field=path-pattern&Conditions.member.1.Values.member.1=%2Fapi%2F*"
      "&Conditions.member.1.Values.member.2=%2Fv2%2F*"
      "&Actions.member.1.Type=forward"
      "&Actions.member.1.ForwardConfig.TargetGroups.member.1.TargetGroupArn=tg1"
      "&Actions.member.1.ForwardConfig.TargetGroups.member.1.Weight=10"
      "&Actions.member.1.ForwardConfig.TargetGroups.member.2.TargetGroupArn=tg2"
      "&Actions.member.1.ForwardConfig.TargetGroupStickinessConfig.Enabled=false"
      "&Actions.member.2.Type=authenticate-oidc&Actions.member.2.Order=1"
      "&Actions.member.2.AuthenticateOidcConfig.Issuer=i"
      "&Actions.member.2.AuthenticateOidcConfig.AuthorizationEndpoint=a"
      "&Actions.member.2.AuthenticateOidcConfig.TokenEndpoint=t"
      "&Actions.member.2.AuthenticateOidcConfig.UserInfoEndpoint=u"
      "&Actions.member.2.AuthenticateOidcConfig.ClientId=c"
      "&Actions.member.2.AuthenticateOidcConfig.SessionTimeout=604800"
      "&Actions.member.2.AuthenticateOidcConfig.AuthenticationRequestExtraParams.entry.2.key=k2"
      "&Actions.member.2.AuthenticateOidcConfig.AuthenticationRequestExtraParams.entry.2.value=v2"
      "&Actions.member.2.AuthenticateOidcConfig.AuthenticationRequestExtraParams.entry.1.key=k1"
      "&Actions.member.2.AuthenticateOidcConfig.AuthenticationRequestExtraParams.entry.1.value=v1");
  EXPECT_EQ(json::value(in), json::parse(R"({"ListenerArn": "l",
      "Conditions": [{"Field": "path-pattern", "Values": ["/api/*", "/v2/*"]}],
      "Priority": 5,
      "Actions": [
        {"Type": "forward", "ForwardConfig": {
            "TargetGroups": [{"TargetGroupArn": "tg1", "Weight": 10}, {"TargetGroupArn": "tg2"}],
            "TargetGroupStickinessConfig": {"Enabled": false}}},
        {"Type": "authenticate-oidc", "AuthenticateOidcConfig": {
            "Issuer": "i", "AuthorizationEndpoint": "a", "TokenEndpoint": "t",
            "UserInfoEndpoint": "u", "ClientId": "c", "SessionTimeout": 604800,
            "AuthenticationRequestExtraParams": {"k1": "v1", "k2": "v2"}},
         "Order": 1}]})"))
      << json::serialize(in);
}

TEST_F(QueryServiceTest, BadValuesAreValidationErrorsNamingTheParameter) {
  struct Case {
    std::string form;
    std::string message;
  };
  const Case cases[] = {
      {"Name=w&Port=abc", "Invalid value for parameter Port: 'abc' is not an integer"},
      {"Name=w&Port=8O", "Invalid value for parameter Port: '8O' is not an integer"},
      {"Name=w&Port=", "Invalid value for parameter Port: '' is not an integer"},
      {"Name=w&Port=99999999999999999999",
       "Invalid value for parameter Port: '99999999999999999999' is out of range for a 64-bit "
       "integer"},
      {"Name=w&HealthCheckEnabled=yes",
       "Invalid value for parameter HealthCheckEnabled: 'yes' is not a boolean (true or false)"},
      {"Name=w&Matcher=200",
       "Invalid value for parameter Matcher: a structure is sent as Matcher.<Member> parameters, "
       "not '200'"},
      {"Name=w&Tags.1.Key=a",
       "Invalid value for parameter Tags: a list is sent as Tags.member.N parameters"},
      {"Name=w&Tags.member.first.Key=a",
       "Invalid parameter Tags.member.first: list and map positions are numbered 1, 2, ..."},
      {"Name=w&Tags.member.01.Key=a",
       "Invalid parameter Tags.member.01: list and map positions are numbered 1, 2, ..."},
      {"Name=w&Port.member.1=80",
       "Invalid value for parameter Port: expected a single value, got Port.member..."},
      // Found by the model's validation, after typing.
      {"Name=w&Port=70000",
       "parameter Port: value 70000 is out of range, must be between 1 and "
       "65535"},
      {"Name=w&Port=4294967376",
       "parameter Port: value 4294967376 is out of range for a 32-bit "
       "integer"},
      {"Port=80", "Missing required parameter: Name"},
      {"Name=w&Protocol=FTP",
       "Invalid value \"FTP\" for parameter Protocol: must be one of HTTP, "
       "HTTPS, TCP, TLS, UDP, TCP_UDP, GENEVE"},
      {"Name=w&Tags=", "Invalid length for parameter Tags: 0 elements, must be at least 1"},
      {"Name=w&Tags.member.1.Value=v", "Missing required parameter: Tags[0].Key"},
  };
  for (const Case& c : cases) {
    HttpResponse r = post("Action=CreateTargetGroup&" + c.form);
    EXPECT_EQ(r.status, 400) << c.form;
    EXPECT_EQ(error_of(r), CodeAndMessage("ValidationError", xml_escape(c.message))) << c.form;
  }
  HttpResponse deep = post("Action=DescribeTargetGroups&Names" + std::string(200, '.'));
  EXPECT_EQ(error_of(deep).first, "ValidationError");
  EXPECT_THAT(error_of(deep).second, HasSubstr("has more than 128 parts"));
  HttpResponse size = post("Action=DescribeTargetGroups&PageSize=1.5");
  EXPECT_EQ(error_of(size).second,
            xml_escape("Invalid value for parameter PageSize: '1.5' is not an integer"));
}

TEST_F(QueryServiceTest, ActionAndVersionErrors) {
  HttpResponse unknown = post("Action=Frobnicate&Version=2015-12-01");
  EXPECT_EQ(unknown.status, 400);
  EXPECT_EQ(
      error_of(unknown),
      CodeAndMessage("InvalidAction", "The action Frobnicate is not valid for this web service."));
  HttpResponse later = post("Action=CreateLoadBalancer&Name=x");
  EXPECT_EQ(error_of(later).first, "InvalidAction");
  EXPECT_THAT(error_of(later).second, HasSubstr("not supported yet"));
  EXPECT_EQ(error_of(post("Name=x")).first, "MissingAction");
  EXPECT_EQ(post("Name=x").status, 400);
  HttpResponse classic = post("Action=DescribeTargetGroups&Version=2012-06-01");
  EXPECT_EQ(classic.status, 400);
  EXPECT_EQ(error_of(classic).first, "NoSuchVersion");
}

TEST_F(QueryServiceTest, XmlReplyFollowsTheOutputShape) {
  // Members deliberately out of model order, a timestamp as epoch seconds and one as a string,
  // null and unknown members (omitted), and an empty list.
  reply_ = json::parse(R"({"LoadBalancers": [
      {"Type": "application", "LoadBalancerName": "web", "CreatedTime": 1795600800.25,
       "LoadBalancerArn": "arn:lb/web", "Scheme": null, "Internal": "dropped",
       "State": {"Code": "active"},
       "AvailabilityZones": [{"ZoneName": "local-a", "LoadBalancerAddresses": []}]},
      {"LoadBalancerName": "api", "CreatedTime": "2026-11-25T10:00:00Z", "SecurityGroups": []}],
    "NextMarker": null})");
  HttpResponse r = post("Action=DescribeLoadBalancers&Version=2015-12-01");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(header(r, "Content-Type"), "text/xml");
  EXPECT_EQ(header(r, "x-amzn-RequestId"), "req-1");
  EXPECT_EQ(r.body,
            "<DescribeLoadBalancersResponse" + std::string(kXmlns) +
                "><DescribeLoadBalancersResult><LoadBalancers>"
                "<member><LoadBalancerArn>arn:lb/web</LoadBalancerArn>"
                "<CreatedTime>2026-11-25T10:00:00.250Z</CreatedTime>"
                "<LoadBalancerName>web</LoadBalancerName><State><Code>active</Code></State>"
                "<Type>application</Type><AvailabilityZones><member><ZoneName>local-a</ZoneName>"
                "<LoadBalancerAddresses></LoadBalancerAddresses></member></AvailabilityZones>"
                "</member>"
                "<member><CreatedTime>2026-11-25T10:00:00Z</CreatedTime>"
                "<LoadBalancerName>api</LoadBalancerName><SecurityGroups></SecurityGroups>"
                "</member>"
                "</LoadBalancers></DescribeLoadBalancersResult>"
                "<ResponseMetadata><RequestId>req-1</RequestId></ResponseMetadata>"
                "</DescribeLoadBalancersResponse>");
}

TEST_F(QueryServiceTest, ScalarsAndEscapingInReplies) {
  reply_ = json::parse(R"({"TargetGroups": [{"TargetGroupName": "a<b>&\"c'\r",
      "Port": 80, "HealthCheckEnabled": false, "HealthyThresholdCount": 3.0,
      "Matcher": {"HttpCode": "200"}, "LoadBalancerArns": ["x", "y"]}]})");
  reply_.at("TargetGroups").at(0).as_object()["VpcId"] = "bad\x01\xff\xc3\xa9";
  HttpResponse r = post("Action=DescribeTargetGroups");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_THAT(r.body, HasSubstr("<DescribeTargetGroupsResult><TargetGroups><member>"
                                "<TargetGroupName>a&lt;b&gt;&amp;&quot;c&apos;&#13;"
                                "</TargetGroupName><Port>80</Port>"
                                "<VpcId>bad\xEF\xBF\xBD\xEF\xBF\xBD\xc3\xa9</VpcId>"
                                "<HealthCheckEnabled>false</HealthCheckEnabled>"
                                "<HealthyThresholdCount>3</HealthyThresholdCount>"
                                "<Matcher><HttpCode>200</HttpCode></Matcher>"
                                "<LoadBalancerArns><member>x</member><member>y</member>"
                                "</LoadBalancerArns></member></TargetGroups>"));
}

TEST_F(QueryServiceTest, EmptyResultKeepsTheWrapper) {
  HttpResponse r = post("Action=DeleteTargetGroup&TargetGroupArn=arn");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, "<DeleteTargetGroupResponse" + std::string(kXmlns) +
                        "><DeleteTargetGroupResult></DeleteTargetGroupResult>"
                        "<ResponseMetadata><RequestId>req-1</RequestId></ResponseMetadata>"
                        "</DeleteTargetGroupResponse>");
}

TEST_F(QueryServiceTest, ErrorResponses) {
  HttpResponse nf = post("Action=DeleteTargetGroup&TargetGroupArn=missing");
  EXPECT_EQ(nf.status, 400);
  EXPECT_EQ(header(nf, "Content-Type"), "text/xml");
  EXPECT_EQ(nf.body,
            "<ErrorResponse><Error><Type>Sender</Type><Code>TargetGroupNotFound</Code>"
            "<Message>Target groups &apos;missing&apos; not found</Message></Error>"
            "<RequestId>req-1</RequestId></ErrorResponse>");
  HttpResponse health = post("Action=DescribeTargetHealth&TargetGroupArn=t");
  EXPECT_EQ(health.status, 500);
  EXPECT_THAT(health.body, HasSubstr("<Type>Receiver</Type><Code>HealthUnavailable</Code>"
                                     "<Message>An internal error occurred.</Message>"));
  EXPECT_EQ(health.body.find("EPIPE"), std::string::npos);
}

TEST_F(QueryServiceTest, RepliesThatDoNotFitTheShapeAre500) {
  reply_ = json::parse(R"({"TargetGroups": {"not": "a list"}})");
  HttpResponse r = post("Action=DescribeTargetGroups");
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(error_of(r).first, "InternalFailure");
  reply_ = json::parse(R"({"TargetGroups": [{"Matcher": "200"}]})");
  EXPECT_EQ(post("Action=DescribeTargetGroups").status, 500);
  reply_ = json::array{};
  EXPECT_EQ(post("Action=DescribeTargetGroups").status, 500);
}

TEST_F(QueryServiceTest, GetWithQueryString) {
  HttpRequest r;
  r.method = "GET";
  r.target = "/?Action=DescribeTargetGroups&Version=2015-12-01&Names.member.1=a%20b";
  RequestContext ctx;
  ctx.request_id = "req-2";
  HttpResponse resp = service_.handle(ctx, r);
  EXPECT_EQ(resp.status, 200) << resp.body;
  EXPECT_EQ(json::value(input_), json::parse(R"({"Names": ["a b"]})"));
  EXPECT_THAT(resp.body, HasSubstr("<RequestId>req-2</RequestId>"));
}

TEST(QueryErrors, TableMatchesTheModelsErrorShapes) {
  using model::ElbErrc;
  const std::pair<ElbErrc, const char*> modelled[] = {
      {ElbErrc::load_balancer_not_found, "LoadBalancerNotFoundException"},
      {ElbErrc::target_group_not_found, "TargetGroupNotFoundException"},
      {ElbErrc::listener_not_found, "ListenerNotFoundException"},
      {ElbErrc::rule_not_found, "RuleNotFoundException"},
      {ElbErrc::duplicate_load_balancer_name, "DuplicateLoadBalancerNameException"},
      {ElbErrc::duplicate_target_group_name, "DuplicateTargetGroupNameException"},
      {ElbErrc::duplicate_listener, "DuplicateListenerException"},
      {ElbErrc::priority_in_use, "PriorityInUseException"},
      {ElbErrc::invalid_target, "InvalidTargetException"},
      {ElbErrc::resource_in_use, "ResourceInUseException"},
      {ElbErrc::invalid_configuration_request, "InvalidConfigurationRequestException"},
      {ElbErrc::too_many_targets, "TooManyTargetsException"},
      {ElbErrc::too_many_rules, "TooManyRulesException"},
      {ElbErrc::unsupported_protocol, "UnsupportedProtocolException"},
      {ElbErrc::operation_not_permitted, "OperationNotPermittedException"},
      {ElbErrc::target_group_association_limit, "TargetGroupAssociationLimitException"},
      {ElbErrc::health_unavailable, "HealthUnavailableException"},
      {ElbErrc::too_many_tags, "TooManyTagsException"},
      {ElbErrc::duplicate_tag_keys, "DuplicateTagKeysException"},
      {ElbErrc::too_many_listeners, "TooManyListenersException"},
      {ElbErrc::too_many_load_balancers, "TooManyLoadBalancersException"},
      {ElbErrc::too_many_target_groups, "TooManyTargetGroupsException"},
      {ElbErrc::too_many_actions, "TooManyActionsException"},
      {ElbErrc::too_many_certificates, "TooManyCertificatesException"},
      {ElbErrc::too_many_registrations_for_target_id, "TooManyRegistrationsForTargetIdException"},
      {ElbErrc::too_many_unique_target_groups_per_load_balancer,
       "TooManyUniqueTargetGroupsPerLoadBalancerException"},
      {ElbErrc::incompatible_protocols, "IncompatibleProtocolsException"},
      {ElbErrc::invalid_load_balancer_action, "InvalidLoadBalancerActionException"},
      {ElbErrc::invalid_scheme, "InvalidSchemeException"},
      {ElbErrc::invalid_security_group, "InvalidSecurityGroupException"},
      {ElbErrc::invalid_subnet, "InvalidSubnetException"},
      {ElbErrc::subnet_not_found, "SubnetNotFoundException"},
      {ElbErrc::availability_zone_not_supported, "AvailabilityZoneNotSupportedException"},
      {ElbErrc::allocation_id_not_found, "AllocationIdNotFoundException"},
      {ElbErrc::certificate_not_found, "CertificateNotFoundException"},
      {ElbErrc::ssl_policy_not_found, "SSLPolicyNotFoundException"},
      {ElbErrc::alpn_policy_not_supported, "ALPNPolicyNotSupportedException"},
  };
  for (const auto& [code, shape_name] : modelled) {
    model::ShapeView shape = model::ServiceModel::elbv2().shape(shape_name);
    ASSERT_TRUE(shape) << shape_name;
    AwsError aws = to_aws_error(code, Protocol::query);
    EXPECT_EQ(aws.type, shape.error_code()) << shape_name;
    EXPECT_EQ(aws.status, shape.error_status()) << shape_name;
    EXPECT_EQ(to_aws_error(code).type, aws.type);  // ELBv2 codes are the same either way
  }
  EXPECT_EQ(to_aws_error(ElbErrc::validation).type, "ValidationError");
  EXPECT_EQ(to_aws_error(ElbErrc::invalid_action).type, "InvalidAction");
  // Generic codes take the query protocol's names there, and keep the JSON ones elsewhere.
  EXPECT_EQ(to_aws_error(model::Errc::invalid_parameter, Protocol::query).type, "ValidationError");
  EXPECT_EQ(to_aws_error(model::Errc::invalid_parameter).type, "InvalidParameterException");
  EXPECT_EQ(to_aws_error(model::Errc::server, Protocol::query).type, "InternalFailure");
  EXPECT_EQ(to_aws_error(AuthErrc::invalid_signature, Protocol::query).type,
            "SignatureDoesNotMatch");
  EXPECT_EQ(to_aws_error(AuthErrc::invalid_signature, Protocol::query).status, 403);
  EXPECT_EQ(to_aws_error(AuthErrc::invalid_signature).type, "InvalidSignatureException");
  EXPECT_EQ(to_aws_error(std::make_error_code(std::errc::io_error), Protocol::query).status, 500);
}

TEST(QueryXml, Timestamps) {
  EXPECT_EQ(iso8601_millis(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(iso8601_millis(1795600800), "2026-11-25T10:00:00.000Z");
  EXPECT_EQ(iso8601_millis(1795600800.1234), "2026-11-25T10:00:00.123Z");
  EXPECT_EQ(iso8601_millis(-1.5), "1969-12-31T23:59:58.500Z");
  EXPECT_EQ(iso8601_millis(1e300), "");
  EXPECT_EQ(iso8601_millis(std::numeric_limits<double>::quiet_NaN()), "");
}

TEST(QueryXml, Escaping) {
  EXPECT_EQ(xml_escape("plain"), "plain");
  EXPECT_EQ(xml_escape("<a href=\"x\">&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&apos;&lt;/a&gt;");
  EXPECT_EQ(xml_escape("tab\tnl\ncr\r"), "tab\tnl\ncr&#13;");
  EXPECT_EQ(xml_escape(std::string("nul\0x", 5)), "nul\xEF\xBF\xBDx");
  // Valid multi-byte UTF-8 passes; overlong, surrogate and truncated sequences are replaced.
  EXPECT_EQ(xml_escape("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"),
            "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
  EXPECT_EQ(xml_escape("\xc0\xaf"), "\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(xml_escape("\xed\xa0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(xml_escape("\xe2\x82"), "\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(xml_escape("\xef\xbf\xbe"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // U+FFFE

  XmlWriter w;
  w.open("Root", "urn:a&b");
  w.element("A", "1<2");
  w.open("B");
  w.text("x");
  EXPECT_EQ(w.take(), "<Root xmlns=\"urn:a&amp;b\"><A>1&lt;2</A><B>x</B></Root>");
}

// A query/XML model with what ELBv2 lacks: flattened lists and maps, and locationNames.
constexpr std::string_view kXmlModel = R"({
  "metadata": {"endpointPrefix": "q", "protocol": "query", "apiVersion": "2020-01-01",
               "xmlNamespace": "urn:q"},
  "operations": {"Get": {"name": "Get", "input": {"shape": "Msg"},
                         "output": {"shape": "Msg", "resultWrapper": "GetResult"}}},
  "shapes": {
    "Msg": {"type": "structure", "members": {
      "Attr": {"shape": "Attrs", "flattened": true, "locationName": "Attribute"},
      "Names": {"shape": "Names", "flattened": true},
      "Ids": {"shape": "Ids"},
      "Tags": {"shape": "Tags"}}},
    "Attrs": {"type": "map", "key": {"shape": "S", "locationName": "Name"},
              "value": {"shape": "S", "locationName": "Value"}},
    "Names": {"type": "list", "member": {"shape": "S", "locationName": "Name"}},
    "Ids": {"type": "list", "member": {"shape": "I", "locationName": "Id"}},
    "Tags": {"type": "map", "key": {"shape": "S"}, "value": {"shape": "S"}},
    "S": {"type": "string"},
    "I": {"type": "integer"}
  }
})";

TEST(QueryCodec, FlattenedAndRenamedCollections) {
  Result<model::ServiceModel> m = model::ServiceModel::parse(kXmlModel);
  ASSERT_TRUE(m.ok()) << m.error().message;
  model::ShapeView msg = m->shape("Msg");
  Result<json::object> in = read_query_form(
      QueryService::parse_form("Attribute.1.Name=a&Attribute.1.Value=1&Name.2=y&Name.1=x"
                               "&Ids.Id.1=7&Tags.entry.1.key=k&Tags.entry.1.value=v"),
      msg);
  ASSERT_TRUE(in.ok()) << in.error().message;
  EXPECT_EQ(json::value(*in), json::parse(R"({"Attribute": {"a": "1"}, "Names": ["x", "y"],
      "Ids": [7], "Tags": {"k": "v"}})"));
  XmlWriter xml;
  ASSERT_TRUE(write_query_xml(xml, msg, *in).ok());
  EXPECT_EQ(xml.take(),
            "<Attribute><Name>a</Name><Value>1</Value></Attribute>"
            "<Name>x</Name><Name>y</Name><Ids><Id>7</Id></Ids>"
            "<Tags><entry><key>k</key><value>v</value></entry></Tags>");
  Result<json::object> bad = read_query_form(QueryService::parse_form("Tags.entry.1.key=k"), msg);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message,
            "Invalid value for parameter Tags.entry.1: a map entry needs Tags.entry.1.key and "
            "Tags.entry.1.value");
}

}  // namespace
}  // namespace berth::api
