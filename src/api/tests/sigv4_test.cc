// SigV4 verification against requests signed by botocore itself (tools/gen_sigv4_vectors.py), so
// "verifies" means "the AWS CLI and boto3 can talk to us", not "agrees with our own signer".

#include "api/sigv4.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "api/tests/data/sigv4_vectors.h"

namespace berth::api {
namespace {

using testdata::kSigV4Vectors;
using testdata::SigV4Vector;

const SigV4Vector& vector_named(std::string_view name) {
  for (const auto& v : kSigV4Vectors) {
    if (v.name == name) return v;
  }
  ADD_FAILURE() << "no vector " << name;
  return kSigV4Vectors.front();
}

std::chrono::system_clock::time_point signing_time(const SigV4Vector& v) {
  return std::chrono::system_clock::time_point(std::chrono::seconds(v.epoch_seconds));
}

HttpRequest signed_request(const SigV4Vector& v) {
  HttpRequest r;
  r.method = v.method;
  r.target = v.target;
  r.headers = v.headers;
  r.headers.emplace_back("Authorization", v.authorization);
  r.body = v.body;
  return r;
}

std::string& header_ref(HttpRequest& r, std::string_view name) {
  for (auto& [n, value] : r.headers) {
    if (iequals(n, name)) return value;
  }
  ADD_FAILURE() << "no header " << name;
  return r.headers.front().second;
}

CredentialStore store_for(const SigV4Vector& v) {
  CredentialStore store;
  store.add({"default", v.access_key_id, v.secret_access_key});
  return store;
}

// Runs `verify` on the request with the clock at the vector's signing time.
struct Fixture {
  explicit Fixture(const SigV4Vector& v, std::string region = "")
      : keys(store_for(v)),
        clock(signing_time(v)),
        verifier(keys, clock, region.empty() ? v.region : region) {}
  CredentialStore keys;
  ManualClock clock;
  SigV4Verifier verifier;
};

std::error_code code_of(const Result<Principal>& r) {
  return r.ok() ? std::error_code() : r.error().code;
}

TEST(HttpTest, HeaderLookupIgnoresCase) {
  HttpRequest r;
  r.headers = {{"X-Amz-Target", "a"}, {"x-amz-target", "b"}, {"Host", "h"}};
  EXPECT_EQ(r.header("x-AMZ-target"), "a");
  EXPECT_TRUE(r.has_header("HOST"));
  EXPECT_FALSE(r.has_header("Hos"));
  EXPECT_EQ(r.header("Date"), "");
  EXPECT_TRUE(iequals("Content-Type", "content-type"));
  EXPECT_FALSE(iequals("Content-Type", "content-typ"));
}

TEST(HttpTest, SetHeaderReplacesWhateverTheCase) {
  HttpResponse r;
  r.set_header("Content-Type", "text/plain");
  r.headers.emplace_back("content-type", "duplicate");
  r.set_header("X-Amzn-RequestId", "1");
  r.set_header("CONTENT-TYPE", "application/x-amz-json-1.1");
  ASSERT_EQ(r.headers.size(), 2u);
  EXPECT_EQ(r.headers[0].first, "CONTENT-TYPE");
  EXPECT_EQ(r.headers[0].second, "application/x-amz-json-1.1");
  EXPECT_EQ(r.headers[1].second, "1");
}

TEST(SigV4Test, VerifiesEveryBotocoreVector) {
  for (const auto& v : kSigV4Vectors) {
    SCOPED_TRACE(v.name);
    Fixture f(v);
    auto principal = f.verifier.verify(signed_request(v));
    ASSERT_TRUE(principal.ok()) << principal.error().message;
    EXPECT_EQ(principal->access_key_id, v.access_key_id);
    EXPECT_EQ(principal->profile, "default");
    EXPECT_EQ(principal->region, v.region);
    EXPECT_EQ(principal->service, v.service);
    // Twice: the second run takes the cached signing key.
    EXPECT_TRUE(f.verifier.verify(signed_request(v)).ok());
  }
}

TEST(SigV4Test, SignRequestReproducesBotocoreExactly) {
  for (const auto& v : kSigV4Vectors) {
    SCOPED_TRACE(v.name);
    HttpRequest r;
    r.method = v.method;
    r.target = v.target;
    r.body = v.body;
    for (const auto& [name, value] : v.headers) {
      // The signer adds its own date; a stale one must be replaced, not signed.
      if (iequals(name, "X-Amz-Date")) continue;
      r.headers.emplace_back(name, iequals(name, "Date") ? "Thu, 01 Jan 1970 00:00:00 GMT" : value);
    }
    r.headers.emplace_back("Authorization", "stale");
    sign_request(r, {"default", v.access_key_id, v.secret_access_key}, v.region, v.service,
                 signing_time(v));
    EXPECT_EQ(r.header("Authorization"), v.authorization);
    for (const auto& [name, value] : v.headers) {
      if (iequals(name, "X-Amz-Date") || iequals(name, "Date")) {
        EXPECT_EQ(r.header(name), value);
      }
    }
  }
}

TEST(SigV4Test, ChangingAnyBodyByteBreaksTheSignature) {
  for (const auto* name : {"ecs_describe_services_body", "extra_signed_headers"}) {
    const auto& v = vector_named(name);
    Fixture f(v);
    for (size_t i = 0; i < v.body.size(); ++i) {
      HttpRequest r = signed_request(v);
      r.body[i] ^= 0x01;
      EXPECT_EQ(code_of(f.verifier.verify(r)), AuthErrc::invalid_signature) << name << " @" << i;
    }
    HttpRequest r = signed_request(v);
    r.body += " ";
    EXPECT_EQ(code_of(f.verifier.verify(r)), AuthErrc::invalid_signature);
  }
}

TEST(SigV4Test, ChangingAnySignedHeaderByteBreaksTheSignature) {
  for (const auto* name : {"ecs_list_clusters", "extra_signed_headers"}) {
    const auto& v = vector_named(name);
    Fixture f(v);
    for (size_t h = 0; h < v.headers.size(); ++h) {
      const auto& [header, value] = v.headers[h];
      if (iequals(header, "User-Agent")) continue;  // botocore leaves it unsigned
      for (size_t i = 0; i < value.size(); ++i) {
        HttpRequest r = signed_request(v);
        r.headers[h].second[i] ^= 0x01;
        const auto result = f.verifier.verify(r);
        if (iequals(header, "X-Amz-Date")) {
          // A different date fails earlier (format, scope or skew): still never accepted.
          EXPECT_FALSE(result.ok()) << header << " @" << i;
        } else {
          EXPECT_EQ(code_of(result), AuthErrc::invalid_signature) << header << " @" << i;
        }
      }
    }
  }
}

TEST(SigV4Test, ChangingAnyTargetByteBreaksTheSignature) {
  const auto& v = vector_named("query_special_chars");
  Fixture f(v);
  for (size_t i = 0; i < v.target.size(); ++i) {
    HttpRequest r = signed_request(v);
    r.target[i] ^= 0x01;
    EXPECT_EQ(code_of(f.verifier.verify(r)), AuthErrc::invalid_signature)
        << "@" << i << ": " << r.target;
  }
  HttpRequest r = signed_request(v);
  r.method = "POST";
  EXPECT_EQ(code_of(f.verifier.verify(r)), AuthErrc::invalid_signature);
}

TEST(SigV4Test, QueryIsCanonicalizedNotComparedRaw) {
  const auto& v = vector_named("query_special_chars");
  Fixture f(v);
  HttpRequest r = signed_request(v);
  // Same parameters in another order, with lowercase escapes and an escaped unreserved character.
  r.target =
      "/v1/items/a%20b?Action=List&Filter=%25~x%2a&Filter=a%2fb%2bc%3dd%26e&Empty=&Name=my%20"
      "clust%65r&caf%c3%a9=%C3%BCber%20%281%29";
  EXPECT_TRUE(f.verifier.verify(r).ok());
}

TEST(SigV4Test, UnsignedHeadersMayChange) {
  const auto& v = vector_named("ecs_list_clusters");
  Fixture f(v);
  HttpRequest r = signed_request(v);
  header_ref(r, "User-Agent") = "rewritten by a proxy";
  r.headers.emplace_back("X-Forwarded-For", "10.0.0.1");
  EXPECT_TRUE(f.verifier.verify(r).ok());
}

TEST(SigV4Test, UnknownAccessKey) {
  const auto& v = vector_named("ecs_list_clusters");
  CredentialStore keys;
  keys.add({"other", "AKIAOTHER", v.secret_access_key});
  ManualClock clock(signing_time(v));
  SigV4Verifier verifier(keys, clock, v.region);
  auto r = verifier.verify(signed_request(v));
  ASSERT_EQ(code_of(r), AuthErrc::unrecognized_client);
  EXPECT_EQ(r.error().message, "The security token included in the request is invalid.");
}

TEST(SigV4Test, WrongSecretAfterTheRightOneWasCached) {
  const auto& v = vector_named("ecs_list_clusters");
  Fixture good(v);
  ASSERT_TRUE(good.verifier.verify(signed_request(v)).ok());
  CredentialStore keys;
  keys.add({"default", v.access_key_id, "x" + v.secret_access_key.substr(1)});
  SigV4Verifier verifier(keys, good.clock, v.region);
  auto r = verifier.verify(signed_request(v));
  ASSERT_EQ(code_of(r), AuthErrc::invalid_signature);
  EXPECT_EQ(r.error().message,
            "The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method. Consult the service "
            "documentation for details.");
}

TEST(SigV4Test, MissingOrForeignAuthorization) {
  const auto& v = vector_named("ecs_list_clusters");
  Fixture f(v);
  HttpRequest r = signed_request(v);
  std::erase_if(r.headers, [](const auto& h) { return iequals(h.first, "Authorization"); });
  auto result = f.verifier.verify(r);
  ASSERT_EQ(code_of(result), AuthErrc::missing_authentication_token);
  EXPECT_EQ(result.error().message, "Missing Authentication Token");

  for (const char* other : {"Bearer abc", "AWS AKIDEXAMPLE:sig", "AWS4-HMAC-SHA256", ""}) {
    HttpRequest o = signed_request(v);
    header_ref(o, "Authorization") = other;
    EXPECT_EQ(code_of(f.verifier.verify(o)), AuthErrc::missing_authentication_token) << other;
  }
}

TEST(SigV4Test, MalformedAuthorization) {
  const auto& v = vector_named("ecs_list_clusters");
  Fixture f(v);
  const std::string sig = v.authorization.substr(v.authorization.find("Signature="));
  const std::string scope = "Credential=AKIDEXAMPLE/20261125/us-east-1/ecs/aws4_request";
  const std::string host = "SignedHeaders=content-type;host;x-amz-date;x-amz-target";
  const struct {
    std::string header;
    std::string message_start;
  } cases[] = {
      {"AWS4-HMAC-SHA256 " + scope + ", " + host,
       "Authorization header requires 'Signature' parameter. Authorization=AWS4-HMAC-SHA256"},
      {"AWS4-HMAC-SHA256 " + host + ", " + sig,
       "Authorization header requires 'Credential' parameter."},
      {"AWS4-HMAC-SHA256 " + scope + ", " + sig,
       "Authorization header requires 'SignedHeaders' parameter."},
      {"AWS4-HMAC-SHA256 garbage", "Authorization header requires 'Credential' parameter."},
      {"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261125/us-east-1/ecs, " + host + ", " + sig,
       "Credential must have exactly 5 slash-delimited elements, e.g. "
       "keyid/date/region/service/term, got 'AKIDEXAMPLE/20261125/us-east-1/ecs'"},
      {"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261125/us-east-1/ecs/aws4, " + host + ", " + sig,
       "Credential should be scoped with a valid terminator: 'aws4_request', not 'aws4'."},
      {"AWS4-HMAC-SHA256 " + scope + ", SignedHeaders=content-type;x-amz-date, " + sig,
       "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."},
  };
  for (const auto& c : cases) {
    HttpRequest r = signed_request(v);
    header_ref(r, "Authorization") = c.header;
    auto result = f.verifier.verify(r);
    ASSERT_EQ(code_of(result), AuthErrc::incomplete_signature) << c.header;
    EXPECT_TRUE(result.error().message.starts_with(c.message_start)) << result.error().message;
  }

  HttpRequest no_date = signed_request(v);
  std::erase_if(no_date.headers, [](const auto& h) { return iequals(h.first, "X-Amz-Date"); });
  auto result = f.verifier.verify(no_date);
  ASSERT_EQ(code_of(result), AuthErrc::incomplete_signature);
  EXPECT_TRUE(result.error().message.starts_with(
      "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."));

  HttpRequest bad_date = signed_request(v);
  header_ref(bad_date, "X-Amz-Date") = "2026-11-25T08:15:00Z";
  result = f.verifier.verify(bad_date);
  ASSERT_EQ(code_of(result), AuthErrc::incomplete_signature);
  EXPECT_EQ(result.error().message,
            "Date must be in ISO-8601 'basic format'. Got '2026-11-25T08:15:00Z'. See "
            "http://en.wikipedia.org/wiki/ISO_8601");
}

TEST(SigV4Test, WrongRegion) {
  const auto& v = vector_named("ecs_list_clusters");
  Fixture f(v, "eu-west-1");
  auto r = f.verifier.verify(signed_request(v));
  ASSERT_EQ(code_of(r), AuthErrc::invalid_signature);
  EXPECT_EQ(r.error().message, "Credential should be scoped to a valid region.");
}

TEST(SigV4Test, ScopeDateMustMatchRequestDate) {
  const auto& v = vector_named("ecs_list_clusters");
  Fixture f(v);
  HttpRequest r = signed_request(v);
  std::string& auth = header_ref(r, "Authorization");
  auth.replace(auth.find("/20261125/"), 10, "/20261124/");
  auto result = f.verifier.verify(r);
  ASSERT_EQ(code_of(result), AuthErrc::invalid_signature);
  EXPECT_EQ(result.error().message,
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from "
            "HTTP: '20261124' != '20261125', from '20261125T081500Z'.");
}

TEST(SigV4Test, ClockSkewOfFiveMinutesIsTheLimit) {
  using std::chrono::minutes;
  using std::chrono::seconds;
  const auto& v = vector_named("ecs_list_clusters");  // signed at 20261125T081500Z
  Fixture f(v);
  const auto t = signing_time(v);
  for (const seconds d : {seconds(0), seconds(minutes(4) + seconds(59)), seconds(minutes(5))}) {
    f.clock.set(t + d);
    EXPECT_TRUE(f.verifier.verify(signed_request(v)).ok()) << d.count();
    f.clock.set(t - d);
    EXPECT_TRUE(f.verifier.verify(signed_request(v)).ok()) << -d.count();
  }

  f.clock.set(t + minutes(5) + seconds(1));
  auto late = f.verifier.verify(signed_request(v));
  ASSERT_EQ(code_of(late), AuthErrc::signature_expired);
  EXPECT_EQ(late.error().message,
            "Signature expired: 20261125T081500Z is now earlier than 20261125T081501Z "
            "(20261125T082001Z - 5 min.)");

  f.clock.set(t - minutes(5) - seconds(1));
  auto early = f.verifier.verify(signed_request(v));
  ASSERT_EQ(code_of(early), AuthErrc::signature_expired);
  EXPECT_EQ(early.error().message,
            "Signature not yet current: 20261125T081500Z is still later than 20261125T081459Z "
            "(20261125T080959Z + 5 min.)");
}

TEST(SigV4Test, DateHeaderCountsForSkewToo) {
  const auto& v = vector_named("date_header");
  Fixture f(v);
  f.clock.set(signing_time(v) + std::chrono::minutes(6));
  EXPECT_EQ(code_of(f.verifier.verify(signed_request(v))), AuthErrc::signature_expired);
}

TEST(SigV4Test, OwnSignerRoundTripsThroughVerifier) {
  CredentialStore keys;
  keys.add({"agent", "AKIAAGENT", "s3cr3t/with+chars"});
  ManualClock clock(std::chrono::system_clock::time_point(std::chrono::seconds(1795594500)));
  SigV4Verifier verifier(keys, clock, "us-west-2");
  HttpRequest r;
  r.method = "POST";
  r.target = "/";
  r.headers = {{"Host", "127.0.0.1:4000"},
               {"Content-Type", "application/x-amz-json-1.1"},
               {"X-Amz-Target", "AmazonEC2ContainerServiceV20141113.SubmitTaskStateChange"}};
  r.body = R"({"cluster":"default"})";
  sign_request(r, *keys.find("AKIAAGENT"), "us-west-2", "ecs", clock.now());
  auto principal = verifier.verify(r);
  ASSERT_TRUE(principal.ok()) << principal.error().message;
  EXPECT_EQ(principal->profile, "agent");
}

TEST(SigV4Test, ConcurrentVerificationAcrossKeysAndDays) {
  // Each thread alternates between vectors with different dates, regions and services, so the
  // per-thread signing-key cache keeps turning over while other threads do the same.
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 300; ++i) {
        const auto& v = kSigV4Vectors[(t + i) % kSigV4Vectors.size()];
        Fixture f(v);
        if (!f.verifier.verify(signed_request(v)).ok()) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
}

}  // namespace
}  // namespace berth::api
