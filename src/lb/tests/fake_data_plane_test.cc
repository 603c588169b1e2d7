// FakeDataPlane records what was applied and reports scripted or default health.
#include <gtest/gtest.h>

#include "lb/errc.h"
#include "lb/fake/fake_data_plane.h"

namespace berth::lb {
namespace {

TEST(FakeDataPlane, RecordsStateAndReportsHealth) {
  FakeDataPlane dp;
  EXPECT_FALSE(dp.applied());
  EXPECT_TRUE(dp.health()->empty());

  DesiredState d;
  d.backends = {{"web", {}}};
  d.servers = {{"web", "a", "10.0.0.1", 80, false}, {"web", "b", "10.0.0.2", 80, true}};
  ASSERT_TRUE(dp.apply(d).ok());
  EXPECT_TRUE(dp.applied());
  EXPECT_EQ(dp.last().servers.size(), 2u);

  auto h = dp.health().value();
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h[0].state, "healthy");
  EXPECT_EQ(h[1].state, "draining");
  EXPECT_EQ(h[1].reason, "Target.DeregistrationInProgress");

  dp.set_health("web", "a", "unhealthy", "Target.Timeout", "Request timed out");
  EXPECT_EQ(dp.health()->at(0).reason, "Target.Timeout");
  dp.clear_health("web", "a");
  EXPECT_EQ(dp.health()->at(0).state, "healthy");

  dp.fail_apply(Error(Errc::unavailable, "down"));
  EXPECT_FALSE(dp.apply(DesiredState{}).ok());
  EXPECT_EQ(dp.last().servers.size(), 2u);  // a failed apply changes nothing
  EXPECT_EQ(dp.apply_count(), 2);
  dp.fail_health(Error(Errc::unavailable, "down"));
  EXPECT_FALSE(dp.health().ok());
}

}  // namespace
}  // namespace berth::lb
