// Group-buys (拼团): forming, success, failure, overflow, leader bonus.
#include <gtest/gtest.h>

#include "tests/scenario.h"

namespace fission::test {
namespace {

using nlohmann::json;

// D shares s1. L opens g1 (size 2, expires day 2 10:00) through s1 and pays o1.
Scenario& LeaderPaid(Scenario& s) {
  return s.Send({Share("sh", At(1, 8), "D", "s1"), Open("open", At(1, 10), "L", "g1", 2, At(2, 10), "s1"),
                 Pay("pL", At(1, 10, 5), "L", "o1", 10000, GroupArg("g1"))});
}

TEST(Group, LinesAreHeldWhileTheGroupForms) {
  Scenario s;
  LeaderPaid(s).Flush();
  EXPECT_EQ(s.Group("g1")->status(), pb::Group::FORMING);
  EXPECT_EQ(s.Line("D", "o1", 1)->state(), pb::HELD);
  EXPECT_FALSE(s.Line("D", "o1", 1)->has_settles_at_ms());
  EXPECT_EQ(s.Dist("D")->held_fen(), 1000);
  EXPECT_EQ(s.Group("g1")->paid_count(), 1);
}

TEST(Group, AFloodOfJoinsStopsAtTheMemberLimitAndPaymentsStillCount) {
  Scenario s;
  LeaderPaid(s);
  std::vector<std::string> joins;
  for (int i = 0; i < kMaxGroupMembers + 5; ++i) {
    joins.push_back(Join(fmt::format("j{}", i), At(1, 11, i / 60, i % 60), fmt::format("m{}", i), "g1"));
  }
  for (const auto& j : joins) s.Send({j});
  // Past the limit the joiner is refused; a member already in it is a no-op;
  // a payment by an outsider still joins it and fills it.
  s.Send({Join("again", At(1, 12), "m0", "g1"), Pay("pX", At(1, 12, 30), "X", "o9", 3000, GroupArg("g1"))}).Flush();
  EXPECT_EQ(s.Reasons(), std::vector<std::string>(6, "group_member_limit"));
  EXPECT_EQ(s.Group("g1")->members_size(), kMaxGroupMembers + 1);
  EXPECT_EQ(s.Group("g1")->status(), pb::Group::SUCCEEDED);
  EXPECT_EQ(s.Member("m1004"), nullptr);  // a rejected event changes nothing
}

TEST(Group, GroupThatFillsAtTheLastMomentSucceeds) {
  Scenario s;
  LeaderPaid(s).Send({Join("jM", At(1, 11), "M", "g1", "s1"),
                      Pay("pM", At(2, 9, 59, 59, 999), "M", "o2", 5000, GroupArg("g1")),
                      Checkin("tick", At(3), "X")}).Flush();
  const pb::Group* g = s.Group("g1");
  EXPECT_EQ(g->status(), pb::Group::SUCCEEDED);
  EXPECT_FALSE(g->virtual_());
  EXPECT_EQ(g->closed_at_ms(), Ms(At(2, 9, 59, 59, 999)));
  EXPECT_EQ(g->paid_count(), 2);
  // Held lines become pending, frozen from the success instant.
  for (const char* o : {"o1", "o2"}) {
    EXPECT_EQ(s.Line("D", o, 1)->state(), pb::PENDING) << o;
    EXPECT_EQ(s.Line("D", o, 1)->settles_at_ms(), Ms(At(2, 9, 59, 59, 999)) + 7 * kDayMs) << o;
  }
  EXPECT_TRUE(g->refund_due().empty());
  ExpectLedgerBalanced(s.store());
}

TEST(Group, PaymentAtTheExpiryInstantIsAnOverflow) {
  Scenario s;
  LeaderPaid(s).Send({Join("jM", At(1, 11), "M", "g1", "s1"), Pay("pM", At(2, 10), "M", "o2", 5000, GroupArg("g1"))}).Flush();
  const pb::Group* g = s.Group("g1");
  EXPECT_EQ(g->status(), pb::Group::FAILED);  // the expiry timer fires before events at its instant
  EXPECT_EQ(g->closed_at_ms(), Ms(At(2, 10)));
  const pb::Order* o2 = s.Order("o2");
  EXPECT_TRUE(o2->overflow());
  EXPECT_TRUE(o2->refund_due());
  EXPECT_EQ(o2->lines_size(), 0);
  EXPECT_EQ(s.Line("D", "o2", 1), nullptr);
  EXPECT_EQ(std::vector<std::string>(g->refund_due().begin(), g->refund_due().end()),
            (std::vector<std::string>{"o1", "o2"}));
}

TEST(Group, GroupExpiresWithOnePaidMemberFails) {
  Scenario s;
  LeaderPaid(s).Send({Join("jM", At(1, 11), "M", "g1"), Checkin("tick", At(2, 10), "X")}).Flush();
  const pb::Group* g = s.Group("g1");
  EXPECT_EQ(g->status(), pb::Group::FAILED);
  EXPECT_EQ(g->closed_at_ms(), Ms(At(2, 10)));
  EXPECT_FALSE(g->virtual_());
  EXPECT_TRUE(s.Order("o1")->refund_due());
  EXPECT_EQ(s.Line("D", "o1", 1)->state(), pb::VOID);
  EXPECT_EQ(s.Dist("D")->voided_fen(), 1000);
  EXPECT_EQ(s.Dist("D")->held_fen(), 0);
  // Refunding the order takes it out of refund_due; a void line has nothing to reverse.
  s.Send({Refund("r1", At(2, 12), "o1", 10000)}).Flush();
  EXPECT_FALSE(s.Order("o1")->refund_due());
  EXPECT_TRUE(s.Group("g1")->refund_due().empty());
  EXPECT_EQ(s.Line("D", "o1", 1)->reversed_fen(), 0);
  ExpectLedgerBalanced(s.store());
}

TEST(Group, GroupExpiresWithOnePaidMemberSucceedsVirtually) {
  Scenario s(RulesJson([](json& v) { v["group"]["virtual_success"] = true; v["group"]["leader_bonus_fen"] = 500; }));
  LeaderPaid(s).Send({Checkin("tick", At(2, 10), "X")}).Flush();
  const pb::Group* g = s.Group("g1");
  EXPECT_EQ(g->status(), pb::Group::SUCCEEDED);
  EXPECT_TRUE(g->virtual_());
  EXPECT_EQ(g->closed_at_ms(), Ms(At(2, 10)));
  EXPECT_EQ(s.Line("D", "o1", 1)->state(), pb::PENDING);
  EXPECT_EQ(s.Line("D", "o1", 1)->settles_at_ms(), Ms(At(9, 10)));
  const pb::Line* bonus = s.Line("L", "o1", 0, true);
  ASSERT_NE(bonus, nullptr);
  EXPECT_EQ(bonus->amount_fen(), 500);
  EXPECT_EQ(bonus->state(), pb::PENDING);
  EXPECT_EQ(bonus->settles_at_ms(), Ms(At(9, 10)));
  // Refunds do not reduce the leader bonus.
  s.Send({Refund("r1", At(3), "o1", 10000)}).Flush();
  EXPECT_EQ(s.Line("L", "o1", 0, true)->reversed_fen(), 0);
  EXPECT_EQ(s.Line("D", "o1", 1)->reversed_fen(), 1000);
  ExpectLedgerBalanced(s.store());
}

TEST(Group, VirtualSuccessNeedsAPaidMember) {
  Scenario s(RulesJson([](json& v) { v["group"]["virtual_success"] = true; }));
  s.Send({Open("open", At(1, 10), "L", "g1", 2, At(2, 10)), Checkin("tick", At(2, 10), "X")}).Flush();
  EXPECT_EQ(s.Group("g1")->status(), pb::Group::FAILED);
}

TEST(Group, LeaderBonusNeedsThePaidLeader) {
  Scenario s(RulesJson([](json& v) { v["group"]["leader_bonus_fen"] = 500; }));
  s.Send({Open("open", At(1, 10), "L", "g1", 2, At(2, 10)), Pay("p1", At(1, 11), "A", "o1", 100, GroupArg("g1")),
          Pay("p2", At(1, 12), "B", "o2", 100, GroupArg("g1"))}).Flush();
  EXPECT_EQ(s.Group("g1")->status(), pb::Group::SUCCEEDED);
  EXPECT_EQ(s.Dist("L"), nullptr);
  EXPECT_EQ(s.Group("g1")->members_size(), 3);  // implicit joins, in order
  EXPECT_EQ(s.Group("g1")->members(1).joined_at_ms(), Ms(At(1, 11)));
}

TEST(Group, LeaderBonusUsesTheOpeningJoinsRules) {
  Scenario s(RulesWithChange(
      "2026-11-01T12:00:00+08:00", [](json& v1) { v1["group"]["leader_bonus_fen"] = 300; },
      [](json& v2) {
        v2["group"]["leader_bonus_fen"] = 900;
        v2["commission"]["freeze_days"] = 1;
      }));
  s.Send({Open("open", At(1, 10), "L", "g1", 2, At(2, 10)), Pay("pL", At(1, 13), "L", "o1", 100, GroupArg("g1")),
          Pay("pM", At(1, 14), "M", "o2", 100, GroupArg("g1"))}).Flush();
  const pb::Line* bonus = s.Line("L", "o1", 0, true);
  ASSERT_NE(bonus, nullptr);
  EXPECT_EQ(bonus->amount_fen(), 300);
  EXPECT_EQ(bonus->settles_at_ms(), Ms(At(1, 14)) + 7 * kDayMs);
}

TEST(Group, SecondPaidOrderInTheSameGroupIsAnOverflow) {
  Scenario s;
  LeaderPaid(s).Send({Pay("pL2", At(1, 12), "L", "o9", 10000, GroupArg("g1"))}).Flush();
  EXPECT_TRUE(s.Order("o9")->overflow());
  EXPECT_TRUE(s.Order("o9")->refund_due());
  EXPECT_EQ(s.Order("o9")->lines_size(), 0);
  EXPECT_EQ(s.Group("g1")->paid_count(), 1);
  EXPECT_EQ(s.Group("g1")->status(), pb::Group::FORMING);
  // Growth still counts at payment: the order is recorded (spec step 2).
  EXPECT_EQ(s.Member("L")->growth(), 200);
  s.Send({Refund("r9", At(1, 13), "o9", 10000)}).Flush();
  EXPECT_FALSE(s.Order("o9")->refund_due());
  EXPECT_TRUE(s.Group("g1")->refund_due().empty());
  EXPECT_EQ(s.Group("g1")->paid_count(), 1);  // refunding the overflow does not remove L
}

TEST(Group, PaymentToAnUnknownGroupIsANormalOrder) {
  Scenario s;
  s.Send({Share("sh", At(1, 8), "D", "s1"), Pay("p", At(1, 9), "M", "o1", 1000, GroupArg("ghost") + ShareArg("s1"))}).Flush();
  EXPECT_EQ(s.Order("o1")->group_id(), "ghost");
  EXPECT_FALSE(s.Order("o1")->overflow());
  EXPECT_EQ(s.Line("D", "o1", 1)->state(), pb::PENDING);
  EXPECT_EQ(s.Group("ghost"), nullptr);
}

TEST(Group, FullRefundWhileFormingRemovesTheMember) {
  Scenario s;
  LeaderPaid(s).Send({Refund("r", At(1, 12), "o1", 10000)}).Flush();
  const pb::Group* g = s.Group("g1");
  EXPECT_EQ(g->members_size(), 0);
  EXPECT_EQ(g->paid_count(), 0);
  EXPECT_EQ(s.Line("D", "o1", 1)->reversed_fen(), 1000);
  EXPECT_EQ(s.Line("D", "o1", 1)->state(), pb::VOID);
  // The group then fails with nothing to refund.
  s.Send({Checkin("tick", At(2, 10), "X")}).Flush();
  EXPECT_EQ(s.Group("g1")->status(), pb::Group::FAILED);
  EXPECT_TRUE(s.Group("g1")->refund_due().empty());
  EXPECT_FALSE(s.Order("o1")->refund_due());
  ExpectLedgerBalanced(s.store());
}

TEST(Group, PartialRefundWhileFormingKeepsTheMember) {
  Scenario s;
  LeaderPaid(s).Send({Refund("r", At(1, 12), "o1", 4000)}).Flush();
  EXPECT_EQ(s.Group("g1")->paid_count(), 1);
  EXPECT_EQ(s.Line("D", "o1", 1)->reversed_fen(), 400);
  EXPECT_EQ(s.Dist("D")->held_fen(), 600);
}

TEST(Group, JoinRulesRejectUnknownClosedAndTakenGroups) {
  Scenario s;
  LeaderPaid(s).Send({Join("j1", At(1, 11), "M", "nope"), Join("j2", At(1, 11, 1), "M", "g1"),
                      Join("j3", At(1, 11, 2), "M", "g1"), Open("j4", At(1, 11, 3), "N", "g1", 2, At(3)),
                      Pay("pM", At(1, 12), "M", "o2", 100, GroupArg("g1")), Join("j5", At(1, 13), "Q", "g1")}).Flush();
  EXPECT_EQ(s.Reasons(), (std::vector<std::string>{"unknown_group", "group_exists", "group_closed"}));
  EXPECT_EQ(s.Group("g1")->members_size(), 2);  // the repeated join was a no-op
  EXPECT_EQ(s.Member("Q"), nullptr);
  EXPECT_EQ(s.Group("g1")->leader(), "L");
}

}  // namespace
}  // namespace fission::test
