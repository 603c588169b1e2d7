#include <gtest/gtest.h>

#include <regex>
#include <set>
#include <vector>

#include "common/base64.h"
#include "common/clock.h"
#include "common/random.h"
#include "common/result.h"

namespace berth {
namespace {

TEST(Uuid, IsVersion4AndRepeatableForASeed) {
  SeededRandom a(42), b(42);
  std::string u = make_uuid(a);
  EXPECT_EQ(u, make_uuid(b));
  EXPECT_TRUE(std::regex_match(
      u, std::regex("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")))
      << u;
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) seen.insert(make_uuid(a));
  EXPECT_EQ(seen.size(), 1000u);
}

TEST(Base64, RoundTripsAndRejectsGarbage) {
  for (const std::string& s :
       std::vector<std::string>{"", "a", "ab", "abc", "abcd", std::string("\0\xff\x10", 3)}) {
    auto d = base64_decode(base64_encode(s));
    ASSERT_TRUE(d.has_value());
    EXPECT_EQ(*d, s);
  }
  EXPECT_FALSE(base64_decode("abc").has_value());
  EXPECT_FALSE(base64_decode("a!c=").has_value());
}

TEST(ManualClock, Advances) {
  ManualClock c(std::chrono::system_clock::time_point(std::chrono::seconds(100)));
  c.advance(std::chrono::milliseconds(1500));
  EXPECT_DOUBLE_EQ(epoch_seconds(c.now()), 101.5);
}

enum class TestErrc { bad = 1 };
struct TestCategory : std::error_category {
  const char* name() const noexcept override { return "test"; }
  std::string message(int) const override { return "bad"; }
};
std::error_code make_error_code(TestErrc e) {
  static TestCategory cat;
  return {static_cast<int>(e), cat};
}
}  // namespace
}  // namespace berth
template <>
struct std::is_error_code_enum<berth::TestErrc> : std::true_type {};
namespace berth {
namespace {

Result<int> parse_positive(int v) {
  if (v <= 0) return Error(TestErrc::bad, "not positive");
  return v;
}
Result<int> twice(int v) {
  BERTH_TRY(int x, parse_positive(v));
  return 2 * x;
}

TEST(Result, PropagatesErrors) {
  EXPECT_EQ(*twice(3), 6);
  auto r = twice(-1);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, TestErrc::bad);
  EXPECT_EQ(r.error().message, "not positive");
}

}  // namespace
}  // namespace berth
