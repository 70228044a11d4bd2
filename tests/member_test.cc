// Members: growth, points, tiers and their history, check-in streaks.
#include <gtest/gtest.h>

#include "tests/scenario.h"

namespace fission::test {
namespace {

using nlohmann::json;

std::vector<std::string> Tiers(const pb::Member* m) {
  std::vector<std::string> out;
  for (const auto& h : m->tier_history()) out.push_back(h.tier());
  return out;
}

TEST(Tier, FirstEventRecordsTheStartingTier) {
  Scenario s;
  s.Send({Checkin("c1", At(1), "M")}).Flush();
  const pb::Member* m = s.Member("M");
  ASSERT_EQ(m->tier_history_size(), 1);
  EXPECT_EQ(m->tier_history(0).tier(), "regular");
  EXPECT_EQ(m->tier_history(0).at_ms(), Ms(At(1)));
  EXPECT_EQ(m->tier_history(0).event_id(), "c1");
}

TEST(Tier, PaymentPromotesAndRefundDemotes) {
  Scenario s;
  s.Send({Pay("p1", At(1), "M", "o1", 120'099), Refund("r1", At(2), "o1", 30'000)}).Flush();
  const pb::Member* m = s.Member("M");
  EXPECT_EQ(m->growth(), 900);   // floor(90099 / 100) yuan at 1 growth per yuan
  EXPECT_EQ(m->points(), 900);
  EXPECT_EQ(m->tier(), "regular");
  EXPECT_EQ(Tiers(m), (std::vector<std::string>{"regular", "silver", "regular"}));
  EXPECT_EQ(m->tier_history(1).event_id(), "p1");
  EXPECT_EQ(m->tier_history(2).event_id(), "r1");
  EXPECT_EQ(m->tier_history(2).at_ms(), Ms(At(2)));
}

TEST(Tier, WithoutDemoteOnRefundATierNeverGoesDown) {
  Scenario s(RulesJson([](json& v) { v["tiers"]["demote_on_refund"] = false; }));
  s.Send({Pay("p1", At(1), "M", "o1", 120'000), Refund("r1", At(2), "o1", 120'000)}).Flush();
  EXPECT_EQ(s.Member("M")->growth(), 0);
  EXPECT_EQ(s.Member("M")->tier(), "silver");
  EXPECT_EQ(Tiers(s.Member("M")), (std::vector<std::string>{"regular", "silver"}));
}

TEST(Tier, RefundUsesThePaymentsRatesButTheRefundsThresholds) {
  Scenario s(RulesWithChange(
      "2026-11-05T00:00:00+08:00", [](json& v1) { v1["tiers"]["growth_per_yuan"] = 2; },
      [](json& v2) {
        v2["tiers"]["growth_per_yuan"] = 1;
        v2["tiers"]["levels"][1]["min_growth"] = 100;  // silver at 100
      }));
  s.Send({Pay("p1", At(1), "M", "o1", 10'000), Refund("r1", At(6), "o1", 5'000)}).Flush();
  // v1: 100 yuan x 2 = 200 growth; after the refund 50 yuan x 2 (payment's rate) = 100.
  EXPECT_EQ(s.Member("M")->growth(), 100);
  // v2's thresholds, in force at the refund, make 100 silver.
  EXPECT_EQ(s.Member("M")->tier(), "silver");
}

TEST(Checkin, StreakCrossesTheBusinessDateBoundaryAt1600Utc) {
  Scenario s;
  s.Send({Checkin("c1", "2026-11-01T15:59:00Z", "M"),    // 23:59 on 11-01 in +08:00
          Checkin("c2", "2026-11-01T16:01:00Z", "M"),    // 00:01 on 11-02: next business date
          Checkin("c3", "2026-11-02T15:00:00Z", "M")})   // 23:00 on 11-02: same date, no-op
      .Flush();
  const pb::Member* m = s.Member("M");
  EXPECT_EQ(m->checkins(), 2);
  EXPECT_EQ(m->checkin_streak(), 2);
  EXPECT_EQ(m->points(), 1 + 2);
  EXPECT_EQ(m->growth(), 10);
  EXPECT_NE(s.Export().find(R"("last_checkin_date":"2026-11-02")"), std::string::npos);
}

TEST(Checkin, AMissedDayRestartsTheStreak) {
  Scenario s;
  s.Send({Checkin("c1", At(1), "M"), Checkin("c2", At(2), "M"), Checkin("c3", At(4), "M")}).Flush();
  EXPECT_EQ(s.Member("M")->checkin_streak(), 1);
  EXPECT_EQ(s.Member("M")->points(), 1 + 2 + 1);
}

TEST(Checkin, PastTheTableRepeatLastOrRestart) {
  for (const char* mode : {"repeat_last", "restart"}) {
    Scenario s(RulesJson([&](json& v) { v["checkin"]["after_last_day"] = mode; }));
    for (int d = 1; d <= 9; ++d) s.Send({Checkin("c" + std::to_string(d), At(d), "M")});
    s.Flush();
    // Table [1,2,3,4,5,6,10] sums to 31; days 8 and 9 give 10+10 or 1+2.
    EXPECT_EQ(s.Member("M")->points(), std::string(mode) == "restart" ? 34 : 51) << mode;
    EXPECT_EQ(s.Member("M")->checkin_streak(), 9);
  }
}

TEST(Checkin, CheckinGrowthCanPromote) {
  Scenario s(RulesJson([](json& v) { v["tiers"]["checkin_growth"] = 600; }));
  s.Send({Checkin("c1", At(1), "M"), Checkin("c2", At(2), "M")}).Flush();
  EXPECT_EQ(s.Member("M")->tier(), "silver");
  EXPECT_EQ(s.Member("M")->tier_history(1).event_id(), "c2");
}

}  // namespace
}  // namespace fission::test
