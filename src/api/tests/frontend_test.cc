// Frontend + JsonService: routing by X-Amz-Target, authentication, error encoding.

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <set>

#include "api/frontend.h"
#include "api/json_service.h"
#include "api/sigv4.h"
#include "model/service_model.h"

namespace berth::api {
namespace {

namespace json = boost::json;

constexpr std::chrono::system_clock::time_point kNow{std::chrono::seconds(1'800'000'000)};

class FrontendTest : public ::testing::Test {
 protected:
  FrontendTest() : service_(model::ServiceModel::ecs()), verifier_(keys_, clock_, "us-east-1") {
    keys_.add({"p", "AKIDEXAMPLE", "secret"});
    service_.add("ListClusters",
                 [](const RequestContext&, const json::object& in) -> Result<json::value> {
                   if (in.contains("maxResults"))
                     return Error(model::Errc::cluster_not_found, "Cluster not found.");
                   return json::object{{"clusterArns", json::array{"a"}}};
                 });
    service_.add("DescribeClusters",
                 [](const RequestContext&, const json::object&) -> Result<json::value> {
                   return Error(model::Errc::server, "disk on fire");
                 });
    frontend_ = std::make_unique<Frontend>(&verifier_, 7);
    frontend_->add_json_service(service_);
  }

  HttpRequest ecs(std::string action, std::string body, bool sign = true) {
    HttpRequest r;
    r.method = "POST";
    r.target = "/";
    r.headers = {{"Host", "localhost:1"},
                 {"Content-Type", "application/x-amz-json-1.1"},
                 {"X-Amz-Target", "AmazonEC2ContainerServiceV20141113." + action}};
    r.body = std::move(body);
    if (sign) sign_request(r, *keys_.find("AKIDEXAMPLE"), "us-east-1", "ecs", kNow);
    return r;
  }

  static json::object parse(const HttpResponse& r) { return json::parse(r.body).as_object(); }
  static std::string header(const HttpResponse& r, std::string_view name) {
    for (const auto& [k, v] : r.headers) {
      if (iequals(k, name)) return v;
    }
    return "";
  }

  ManualClock clock_{kNow};
  CredentialStore keys_;
  JsonService service_;
  SigV4Verifier verifier_;
  std::unique_ptr<Frontend> frontend_;
};

TEST_F(FrontendTest, DispatchesSignedRequest) {
  HttpResponse r = frontend_->handle(ecs("ListClusters", "{}"));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(parse(r).at("clusterArns").as_array().size(), 1u);
  EXPECT_EQ(header(r, "Content-Type"), "application/x-amz-json-1.1");
  EXPECT_EQ(header(r, "x-amzn-RequestId").size(), 36u);
}

TEST_F(FrontendTest, RequestIdsAreUnique) {
  std::set<std::string> ids;
  for (int i = 0; i < 100; ++i)
    ids.insert(header(frontend_->handle(ecs("ListClusters", "{}")), "x-amzn-RequestId"));
  EXPECT_EQ(ids.size(), 100u);
}

TEST_F(FrontendTest, ModelledErrorsCarryTypeAndStatus) {
  HttpResponse r = frontend_->handle(ecs("ListClusters", R"({"maxResults": 5})"));
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(parse(r).at("__type"), "ClusterNotFoundException");
  EXPECT_EQ(parse(r).at("message"), "Cluster not found.");
  EXPECT_FALSE(header(r, "x-amzn-RequestId").empty());
}

TEST_F(FrontendTest, InternalErrorsAre500WithoutDetail) {
  HttpResponse r = frontend_->handle(ecs("DescribeClusters", "{}"));
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(parse(r).at("__type"), "ServerException");
  EXPECT_EQ(r.body.find("disk"), std::string::npos);
}

TEST_F(FrontendTest, ValidationNamesTheMember) {
  HttpResponse r = frontend_->handle(ecs("ListClusters", R"({"maxResults": "ten"})"));
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(parse(r).at("__type"), "InvalidParameterException");
  EXPECT_NE(std::string(parse(r).at("message").as_string()).find("maxResults"), std::string::npos);
}

TEST_F(FrontendTest, MalformedBodies) {
  for (const char* body : {"{", "[1,2]", "\"x\"", "{\"a\":}"}) {
    HttpResponse r = frontend_->handle(ecs("ListClusters", body));
    EXPECT_EQ(r.status, 400) << body;
    EXPECT_EQ(parse(r).at("__type"), "ClientException") << body;
  }
  EXPECT_EQ(frontend_->handle(ecs("ListClusters", "")).status, 200);  // empty body means {}
}

TEST_F(FrontendTest, UnknownAndUnimplementedOperations) {
  HttpResponse unknown = frontend_->handle(ecs("Frobnicate", "{}"));
  EXPECT_EQ(parse(unknown).at("__type"), "UnknownOperationException");
  HttpResponse later = frontend_->handle(ecs("CreateService", "{}"));
  EXPECT_EQ(parse(later).at("__type"), "UnknownOperationException");
  HttpRequest no_target = ecs("ListClusters", "{}");
  no_target.headers.erase(no_target.headers.begin() + 2);
  EXPECT_EQ(parse(frontend_->handle(no_target)).at("__type"), "UnknownOperationException");
}

TEST_F(FrontendTest, AuthenticationFailures) {
  EXPECT_EQ(parse(frontend_->handle(ecs("ListClusters", "{}", false))).at("__type"),
            "MissingAuthenticationTokenException");
  clock_.advance(std::chrono::minutes(6));
  HttpResponse skewed = frontend_->handle(ecs("ListClusters", "{}"));
  clock_.set(kNow);
  EXPECT_EQ(parse(skewed).at("__type"), "InvalidSignatureException");
  EXPECT_NE(skewed.body.find("Signature expired"), std::string::npos);
  HttpRequest wrong_service = ecs("ListClusters", "{}", false);
  sign_request(wrong_service, *keys_.find("AKIDEXAMPLE"), "us-east-1", "logs", kNow);
  EXPECT_EQ(parse(frontend_->handle(wrong_service)).at("__type"), "InvalidSignatureException");
}

TEST_F(FrontendTest, HealthNeedsNoAuth) {
  HttpRequest r;
  r.method = "GET";
  r.target = "/health";
  EXPECT_EQ(frontend_->handle(r).status, 200);
  r.target = "/other";
  EXPECT_EQ(frontend_->handle(r).status, 405);
}

}  // namespace
}  // namespace berth::api
