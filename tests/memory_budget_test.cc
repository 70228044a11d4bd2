// The memory budget (ProcessorOptions::memory_budget_bytes): finished orders
// with their lines, closed groups with all their orders, and shares leave
// memory at checkpoints, and an event that names one brings it back from its
// row. Every row written is the row an unbounded processor writes.
#include <gtest/gtest.h>

#include "tests/scenario.h"

namespace fission::test {
namespace {

const Tenant& Default(Scenario& s) { return *s.processor().state().tenants().at("default"); }

// Both scenarios hold the same rows for these entities.
void ExpectSameRows(Scenario& a, Scenario& b, const std::vector<std::string>& members,
                    const std::vector<std::string>& orders, const std::vector<std::string>& groups) {
  auto bytes = [](const google::protobuf::MessageLite* m) { return m ? m->SerializeAsString() : "(none)"; };
  for (const auto& m : members) {
    EXPECT_EQ(bytes(a.Member(m)), bytes(b.Member(m))) << "member " << m;
    EXPECT_EQ(bytes(a.Dist(m)), bytes(b.Dist(m))) << "distributor " << m;
  }
  for (const auto& o : orders) EXPECT_EQ(bytes(a.Order(o)), bytes(b.Order(o))) << "order " << o;
  for (const auto& g : groups) EXPECT_EQ(bytes(a.Group(g)), bytes(b.Group(g))) << "group " << g;
  const auto ra = a.Rejections(), rb = b.Rejections();
  ASSERT_EQ(ra.size(), rb.size());
  for (size_t i = 0; i < ra.size(); ++i) EXPECT_EQ(ra[i].SerializeAsString(), rb[i].SerializeAsString());
}

TEST(MemoryBudget, ASettledOrderLeavesMemoryAndALateRefundClawsItBackAsWithoutABudget) {
  Scenario bounded(RulesJson(), 60'000, 1), unbounded;
  for (Scenario* s : {&bounded, &unbounded}) {
    s->Send({Share("s1", At(1, 10), "A", "sh1"), Pay("p1", At(1, 11), "B", "o1", 10000, ShareArg("sh1")),
             Checkin("c1", At(9, 9), "C"),    // past the 7-day freeze: the line settles, and
             Checkin("c1b", At(9, 10), "C")});  // at the next checkpoint leaves memory
  }
  const Tenant& t = Default(bounded);
  EXPECT_EQ(t.orders.live(), 0u) << "the settled order stayed in memory";
  EXPECT_EQ(t.shares.live(), 0u) << "the share stayed in memory";
  EXPECT_GE(bounded.processor().stats().evicted, 3);  // share, order, line
  EXPECT_EQ(Default(unbounded).orders.live(), 1u);

  for (Scenario* s : {&bounded, &unbounded}) {
    s->Send({Refund("r1", At(10, 9), "o1", 4000),                // brings o1 and its line back
             Share("s2", At(10, 10), "C", "sh1"),                // share_id_taken: brings sh1 back
             Pay("p2", At(10, 11), "D", "o2", 3000, ShareArg("sh1")),  // binds D to A through sh1
             Refund("r2", At(10, 12), "o9", 100)});              // unknown_order: nothing to bring back
    s->Flush();
  }
  EXPECT_GE(bounded.processor().stats().faulted, 2);
  ASSERT_NE(bounded.Line("A", "o1", 1), nullptr);
  EXPECT_EQ(bounded.Line("A", "o1", 1)->clawed_back_fen(), 400);
  EXPECT_EQ(bounded.Member("D")->upline(), "A");
  ExpectSameRows(bounded, unbounded, {"A", "B", "C", "D"}, {"o1", "o2"}, {});
}

TEST(MemoryBudget, AClosedGroupLeavesWithItsOrdersAndComesBackForALatePayment) {
  const std::string rules = RulesJson([](nlohmann::json& v) { v["group"]["leader_bonus_fen"] = 300; });
  Scenario bounded(rules, 60'000, 1), unbounded(rules);
  for (Scenario* s : {&bounded, &unbounded}) {
    s->Send({Share("s1", At(1, 9), "U", "sh1"),
             Open("j1", At(1, 10), "A", "g1", 2, At(2, 10), "sh1"), Join("j2", At(1, 11), "B", "g1", "sh1"),
             Pay("p1", At(1, 12), "A", "o1", 10000, GroupArg("g1")), Pay("p2", At(1, 13), "B", "o2", 20000, GroupArg("g1")),
             Checkin("c1", At(9, 9), "C"),  // the group succeeded; its lines and the bonus settle
             Checkin("c1b", At(9, 10), "C")});
  }
  const Tenant& t = Default(bounded);
  EXPECT_EQ(t.groups.live(), 0u) << "the closed group stayed in memory";
  EXPECT_EQ(t.orders.live(), 0u);
  EXPECT_EQ(t.lines.size(), t.free_lines.size()) << "a settled line stayed in memory";

  const int64_t faulted_before = bounded.processor().stats().faulted;  // the share, for j1 and j2
  for (Scenario* s : {&bounded, &unbounded}) s->Send({Join("j3", At(10, 9), "C", "g1")}).Flush();
  // group_closed, told by the evicted group's row alone: nothing came back for it.
  EXPECT_EQ(bounded.processor().stats().faulted, faulted_before);
  EXPECT_EQ(t.groups.live(), 0u);
  ASSERT_FALSE(bounded.Rejections().empty());
  EXPECT_EQ(bounded.Rejections().back().reason(), "group_closed");
  for (Scenario* s : {&bounded, &unbounded}) {
    s->Send({Pay("p3", At(10, 10), "C", "o3", 5000, GroupArg("g1")),           // overflow: g1 is due a refund
             Refund("r1", At(10, 11), "o2", 20000),                            // claws back a settled line
             Refund("r2", At(10, 12), "o3", 5000)});                           // no longer due
    s->Flush();
  }
  EXPECT_GE(bounded.processor().stats().faulted, 3);  // g1 with o1 and o2
  ASSERT_NE(bounded.Group("g1"), nullptr);
  EXPECT_EQ(bounded.Group("g1")->refund_due_size(), 0);
  ExpectSameRows(bounded, unbounded, {"A", "B", "C", "U"}, {"o1", "o2", "o3"}, {"g1"});
}

TEST(MemoryBudget, ARestartLoadsOnlyWhatStillWaitsAndBringsTheRestBackWhenNamed) {
  Scenario bounded(RulesJson(), 60'000, 1), unbounded;
  for (Scenario* s : {&bounded, &unbounded}) {
    s->Send({Share("s1", At(1, 10), "A", "sh1"), Pay("p1", At(1, 11), "B", "o1", 10000, ShareArg("sh1")),
             Pay("p2", At(8, 9), "B", "o2", 5000, ShareArg("sh1")),  // pending until day 15
             Checkin("c1", At(9, 9), "C")});                          // o1's line settles
    s->Restart();
  }
  // Load brought back o2 (its line pending, with its timer) but not o1 or the share.
  const Tenant& t = Default(bounded);
  EXPECT_EQ(t.orders.live(), 1u);
  EXPECT_NE(t.orders.Find("o2"), kNone);
  EXPECT_EQ(t.shares.live(), 0u);
  EXPECT_EQ(bounded.processor().timers(), unbounded.processor().timers());
  for (Scenario* s : {&bounded, &unbounded}) {
    s->Send({Refund("r1", At(10, 9), "o1", 10000), Share("s2", At(10, 10), "D", "sh1"),
             Checkin("c2", At(16, 9), "C")});  // o2's line settles at its timer
    s->Flush();
  }
  EXPECT_GE(bounded.processor().stats().faulted, 2);  // o1 with its line, sh1
  ExpectSameRows(bounded, unbounded, {"A", "B", "C", "D"}, {"o1", "o2"}, {});
  EXPECT_EQ(bounded.Line("A", "o2", 1)->state(), pb::SETTLED);
}

}  // namespace
}  // namespace fission::test
