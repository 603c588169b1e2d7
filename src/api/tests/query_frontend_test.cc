// Frontend routing of query-protocol requests: signed for elasticloadbalancing, GET with Action=,
// unsigned (auth disabled) by Version, and the JSON path left as it was.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

#include "api/frontend.h"
#include "api/json_service.h"
#include "api/query_service.h"
#include "api/sigv4.h"
#include "model/service_model.h"

namespace berth::api {
namespace {

namespace json = boost::json;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr std::chrono::system_clock::time_point kNow{std::chrono::seconds(1'800'000'000)};
constexpr std::string_view kForm = "application/x-www-form-urlencoded; charset=utf-8";

// A second query service, as CloudFormation will be.
constexpr std::string_view kOtherModel = R"({
  "metadata": {"endpointPrefix": "cloudformation", "protocol": "query",
               "apiVersion": "2010-05-15", "xmlNamespace": "urn:cfn"},
  "operations": {"ListStacks": {"name": "ListStacks",
                                "output": {"shape": "Out", "resultWrapper": "ListStacksResult"}}},
  "shapes": {"Out": {"type": "structure", "members": {}}}
})";

class QueryFrontendTest : public ::testing::Test {
 protected:
  QueryFrontendTest()
      : ecs_(model::ServiceModel::ecs()),
        elbv2_(model::ServiceModel::elbv2()),
        other_model_(model::ServiceModel::parse(kOtherModel).value()),
        other_(other_model_),
        verifier_(keys_, clock_, "us-east-1") {
    keys_.add({"p", "AKIDEXAMPLE", "secret"});
    ecs_.add("ListClusters", [](const RequestContext&, const json::object&) -> Result<json::value> {
      return json::object{{"clusterArns", json::array{}}};
    });
    elbv2_.add("DescribeTargetGroups",
               [this](const RequestContext& ctx, const json::object& in) -> Result<json::value> {
                 principal_ = ctx.principal.access_key_id;
                 input_ = in;
                 return json::object{{"TargetGroups", json::array{}}};
               });
    other_.add("ListStacks", [](const RequestContext&, const json::object&) -> Result<json::value> {
      return json::object{};
    });
    signed_ = std::make_unique<Frontend>(&verifier_, 7);
    signed_->add_json_service(ecs_);
    signed_->add_query_service(elbv2_);
    signed_->add_query_service(other_);
  }

  HttpRequest elb(std::string body, std::string service = "elasticloadbalancing") {
    HttpRequest r;
    r.method = "POST";
    r.target = "/";
    r.headers = {{"Host", "localhost:1"}, {"Content-Type", std::string(kForm)}};
    r.body = std::move(body);
    if (!service.empty()) sign_request(r, *keys_.find("AKIDEXAMPLE"), "us-east-1", service, kNow);
    return r;
  }

  static std::string code_of(const HttpResponse& r) {
    std::size_t a = r.body.find("<Code>"), b = r.body.find("</Code>");
    return a == std::string::npos ? "(none)" : r.body.substr(a + 6, b - a - 6);
  }

  ManualClock clock_{kNow};
  CredentialStore keys_;
  JsonService ecs_;
  QueryService elbv2_;
  model::ServiceModel other_model_;
  QueryService other_;
  SigV4Verifier verifier_;
  std::unique_ptr<Frontend> signed_;
  std::string principal_;
  json::object input_;
};

TEST_F(QueryFrontendTest, SignedFormPostReachesElbv2) {
  HttpResponse r = signed_->handle(
      elb("Action=DescribeTargetGroups&Version=2015-12-01&Names.member.1=web%2Bapi"));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_THAT(r.body, StartsWith("<DescribeTargetGroupsResponse xmlns=\"http://elasticloadbalancing"
                                 ".amazonaws.com/doc/2015-12-01/\"><DescribeTargetGroupsResult>"
                                 "<TargetGroups></TargetGroups></DescribeTargetGroupsResult>"));
  EXPECT_EQ(principal_, "AKIDEXAMPLE");
  EXPECT_EQ(json::value(input_), json::parse(R"({"Names": ["web+api"]})"));
  // The request id in the body is the one in the header.
  std::string id;
  for (const auto& [k, v] : r.headers) {
    if (iequals(k, "x-amzn-RequestId")) id = v;
  }
  EXPECT_THAT(r.body, HasSubstr("<RequestId>" + id + "</RequestId>"));
}

TEST_F(QueryFrontendTest, SignedGetWithActionInTheQueryString) {
  HttpRequest r;
  r.method = "GET";
  r.target = "/?Action=DescribeTargetGroups&Version=2015-12-01&Names.member.1=a";
  r.headers = {{"Host", "localhost:1"}};
  sign_request(r, *keys_.find("AKIDEXAMPLE"), "us-east-1", "elasticloadbalancing", kNow);
  HttpResponse resp = signed_->handle(r);
  EXPECT_EQ(resp.status, 200) << resp.body;
  EXPECT_EQ(json::value(input_), json::parse(R"({"Names": ["a"]})"));
}

TEST_F(QueryFrontendTest, RoutesByCredentialScopeService) {
  HttpResponse cfn = signed_->handle(elb("Action=ListStacks&Version=2010-05-15", "cloudformation"));
  EXPECT_EQ(cfn.status, 200) << cfn.body;
  EXPECT_THAT(cfn.body, HasSubstr("<ListStacksResult></ListStacksResult>"));
  // Signed for a service that has no query endpoint here: an XML error.
  HttpResponse ecs = signed_->handle(elb("Action=DescribeTargetGroups", "ecs"));
  EXPECT_EQ(ecs.status, 400);
  EXPECT_EQ(code_of(ecs), "InvalidAction");
  EXPECT_THAT(ecs.body, HasSubstr("signed for &apos;ecs&apos;"));
  // An ELBv2 action signed for cloudformation goes to CloudFormation, which does not know it.
  EXPECT_EQ(code_of(signed_->handle(elb("Action=DescribeTargetGroups", "cloudformation"))),
            "InvalidAction");
  EXPECT_EQ(code_of(signed_->handle(
                elb("Action=DescribeTargetGroups&Version=2015-12-01", "cloudformation"))),
            "NoSuchVersion");
}

TEST_F(QueryFrontendTest, AuthFailuresAreXml) {
  HttpResponse unsigned_req = signed_->handle(elb("Action=DescribeTargetGroups", ""));
  EXPECT_EQ(unsigned_req.status, 403);
  EXPECT_EQ(code_of(unsigned_req), "MissingAuthenticationToken");
  EXPECT_THAT(unsigned_req.body, HasSubstr("<Type>Sender</Type>"));
  // The body is signed as sent: changing it breaks the signature.
  HttpRequest tampered = elb("Action=DescribeTargetGroups&Names.member.1=a");
  tampered.body += "&Names.member.2=b";
  HttpResponse r = signed_->handle(tampered);
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(code_of(r), "SignatureDoesNotMatch");
  EXPECT_TRUE(input_.empty());  // verified before the action ran
  clock_.advance(std::chrono::minutes(6));
  EXPECT_EQ(code_of(signed_->handle(elb("Action=DescribeTargetGroups"))), "SignatureDoesNotMatch");
}

TEST_F(QueryFrontendTest, JsonPathIsUnchanged) {
  HttpRequest ecs = elb("{}", "");
  ecs.headers = {{"Host", "localhost:1"},
                 {"Content-Type", "application/x-amz-json-1.1"},
                 {"X-Amz-Target", "AmazonEC2ContainerServiceV20141113.ListClusters"}};
  sign_request(ecs, *keys_.find("AKIDEXAMPLE"), "us-east-1", "ecs", kNow);
  HttpResponse ok = signed_->handle(ecs);
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(json::parse(ok.body).at("clusterArns").as_array().size(), 0u);

  // No X-Amz-Target with a JSON body: still the JSON error.
  HttpRequest no_target = elb("{}", "");
  no_target.headers = {{"Host", "localhost:1"}, {"Content-Type", "application/x-amz-json-1.1"}};
  HttpResponse json_error = signed_->handle(no_target);
  EXPECT_EQ(json::parse(json_error.body).at("__type"), "UnknownOperationException");
  // A malformed X-Amz-Target with a form body: the JSON error too.
  HttpRequest malformed = elb("Action=DescribeTargetGroups", "");
  malformed.headers.emplace_back("X-Amz-Target", "nodot");
  EXPECT_EQ(json::parse(signed_->handle(malformed).body).at("__type"), "UnknownOperationException");
  // A GET without Action= is not a query request.
  HttpRequest get;
  get.method = "GET";
  get.target = "/?Version=2015-12-01";
  EXPECT_EQ(signed_->handle(get).status, 405);
  get.target = "/health";
  EXPECT_EQ(signed_->handle(get).status, 200);
}

TEST_F(QueryFrontendTest, WithoutAuthRoutesByVersion) {
  Frontend open(nullptr, 1);
  EXPECT_EQ(code_of(open.handle(elb("Action=DescribeTargetGroups", ""))), "InvalidAction");
  open.add_query_service(elbv2_);
  // Only one query service: it answers, Version or not.
  EXPECT_EQ(open.handle(elb("Action=DescribeTargetGroups", "")).status, 200);
  open.add_query_service(other_);
  EXPECT_EQ(open.handle(elb("Action=DescribeTargetGroups&Version=2015-12-01", "")).status, 200);
  EXPECT_EQ(open.handle(elb("Version=2010-05-15&Action=ListStacks", "")).status, 200);
  HttpResponse none = open.handle(elb("Action=DescribeTargetGroups", ""));
  EXPECT_EQ(none.status, 400);
  EXPECT_THAT(none.body, HasSubstr("names no Version"));
  EXPECT_EQ(code_of(open.handle(elb("Action=DescribeTargetGroups&Version=1999-01-01", ""))),
            "InvalidAction");
}

}  // namespace
}  // namespace berth::api
