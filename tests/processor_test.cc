// Arrival vs canonical order: duplicates, conflicts, lateness, the watermark.
#include <gtest/gtest.h>

#include "tests/scenario.h"

namespace fission::test {
namespace {

TEST(Processor, AnExactResendIsADuplicateNotARejection) {
  Scenario s;
  const std::string p = Pay("p1", At(1), "M", "o1", 1000);
  s.Send({p});
  s.Send({p});
  EXPECT_EQ(s.last(), Outcome::kDuplicate);
  s.Flush();
  EXPECT_EQ(s.stats().duplicates, 1);
  EXPECT_TRUE(s.Rejections().empty());
  EXPECT_EQ(s.Member("M")->growth(), 10);
}

TEST(Processor, InvalidUtf8IsRejectedAndTheRejectionCanBeStoredAndExported) {
  // Found by the simulator: the JSON parser's message quotes the bad bytes,
  // and a Protobuf string field refuses them on parse, so the export threw.
  Scenario s;
  s.Send({std::string("\xff\xfe{\x01}", 5), Checkin("c1", At(1), "M")}).Flush();
  auto r = s.Rejections();
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].reason(), "invalid_event");
  EXPECT_NE(r[0].detail().find("\\xFF"), std::string::npos) << r[0].detail();
  EXPECT_NE(s.Export().find("\"reason\":\"invalid_event\""), std::string::npos);
}

TEST(Processor, SameIdWithDifferentContentIsAConflictingDuplicate) {
  Scenario s;
  s.Send({Pay("p1", At(1), "M", "o1", 1000), Pay("p1", At(1), "M", "o1", 2000)}).Flush();
  auto r = s.Rejections();
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].reason(), "conflicting_duplicate");
  EXPECT_EQ(r[0].event_id(), "p1");
  EXPECT_EQ(r[0].position(), 2);
  EXPECT_EQ(s.Order("o1")->amount_fen(), 1000);
}

TEST(Processor, EventIdsAreScopedByTenant) {
  Scenario s;
  s.Send({Checkin("c1", At(1), "M"),
          R"({"event_id":"c1","type":"checkin","occurred_at":")" + At(1) + R"(","member":"M","tenant":"shop2"})"}).Flush();
  EXPECT_TRUE(s.Rejections().empty());
  EXPECT_NE(s.Member("M", "shop2"), nullptr);
}

TEST(Processor, ARejectedInvalidEventsIdStillCountsAsSeen) {
  Scenario s;
  s.Send({R"({"event_id":"x1","type":"payment","occurred_at":")" + At(1) + R"(","member":"M","order_id":"o1","amount_fen":-5})",
          Pay("x1", At(1), "M", "o1", 5)}).Flush();
  EXPECT_EQ(s.Reasons(), (std::vector<std::string>{"invalid_event", "conflicting_duplicate"}));
  EXPECT_EQ(s.Order("o1"), nullptr);
}

TEST(Processor, LateEventIsRejectedAndItsIdStillCountsAsSeen) {
  Scenario s;  // 60 s lateness
  const std::string late = Checkin("c0", At(1, 10, 3, 59), "M");
  s.Send({Checkin("c1", At(1, 10, 5), "N"), late});
  EXPECT_EQ(s.last(), Outcome::kRejected);
  s.Send({late});
  EXPECT_EQ(s.last(), Outcome::kDuplicate);
  s.Flush();
  EXPECT_EQ(s.Reasons(), std::vector<std::string>{"late_event"});
  EXPECT_EQ(s.Member("M"), nullptr);
}

TEST(Processor, AnEventWithinTheLatenessBoundTakesItsCanonicalPlace) {
  Scenario s;
  // The refund arrives first but happened 30 s after the payment.
  s.Send({Refund("r1", At(1, 10, 0, 30), "o1", 400), Pay("p1", At(1, 10), "M", "o1", 1000)}).Flush();
  EXPECT_TRUE(s.Rejections().empty());
  EXPECT_EQ(s.Order("o1")->refunded_fen(), 400);
}

TEST(Processor, EventsAtTheSameInstantApplyInEventIdOrder) {
  Scenario s;
  s.Send({Share("b", At(1), "B", "s1"), Share("a", At(1), "A", "s1")}).Flush();
  auto r = s.Rejections();
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].event_id(), "b");
  EXPECT_EQ(r[0].reason(), "share_id_taken");
  EXPECT_EQ(s.Dist("A")->shares(), 1);
  EXPECT_EQ(s.Dist("B"), nullptr);
}

TEST(Processor, TheWatermarkReleasesEventsBeforeTheEndOfInput) {
  Scenario s;
  s.Send({Pay("p1", At(1, 10), "M", "o1", 1000)});
  EXPECT_EQ(s.Order("o1"), nullptr);  // buffered: within the lateness bound
  s.Send({Checkin("c1", At(1, 10, 1, 0, 1), "N")});  // watermark passes 10:00
  EXPECT_NE(s.Order("o1"), nullptr);
}

TEST(Processor, AfterTheEndOfAnInputEarlierEventsAreLate) {
  Scenario s;
  s.Send({Checkin("c1", At(2), "M")}).Flush();
  s.Send({Checkin("c2", At(2), "N"), Checkin("c3", At(2, 10, 0, 0, 1), "Q")}).Flush();
  EXPECT_EQ(s.Reasons(), std::vector<std::string>{"late_event"});
  EXPECT_NE(s.Member("Q"), nullptr);
}

TEST(Processor, BadLinesAreRejectedWithTheirPositionAndGoodOnesApplied) {
  Scenario s;
  s.Send({Checkin("c1", At(1), "M"), "{not json", R"({"event_id":"e2","type":"like","occurred_at":")" + At(1) + R"("})",
          R"({"event_id":"e3","type":"payment","occurred_at":")" + At(1) + R"(","member":"M","order_id":"o1","amount_fen":"10"})",
          Checkin("c2", At(2), "M")}).Flush();
  auto r = s.Rejections();
  ASSERT_EQ(r.size(), 3u);
  EXPECT_FALSE(r[0].has_event_id());  // no event_id could be read: sorts first
  EXPECT_EQ(r[0].position(), 2);
  EXPECT_EQ(r[1].event_id(), "e2");
  EXPECT_EQ(r[1].reason(), "unknown_type");
  EXPECT_EQ(r[1].position(), 3);
  EXPECT_EQ(r[2].reason(), "invalid_event");
  EXPECT_EQ(r[2].position(), 4);
  EXPECT_EQ(s.Member("M")->checkins(), 2);
}

TEST(Export, CanonicalDumpIsSortedAndNullsAbsentValues) {
  Scenario s;
  s.Send({Share("sh", At(1, 8), "D", "s1"), Pay("p1", At(1, 9), "M", "o1", 1000, ShareArg("s1")), "oops"}).Flush();
  std::istringstream in(s.Export());
  std::vector<std::string> lines;
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  ASSERT_EQ(lines.size(), 5u);  // distributor D, members D and M, order o1, one rejection
  EXPECT_EQ(lines[0].rfind(R"({"kind":"distributor","tenant":"default","id":"D","held_fen":)", 0), 0u) << lines[0];
  EXPECT_EQ(lines[3],
            R"({"kind":"order","tenant":"default","id":"o1","member":"M","amount_fen":1000,"commission_base_fen":1000,"refunded_fen":0,"group_id":null,"paid_at":"2026-11-01T01:00:00.000Z","refund_due":false,"overflow":false})");
  EXPECT_NE(lines[2].find(R"("upline":"D","bound_at":"2026-11-01T01:00:00.000Z")"), std::string::npos);
  EXPECT_NE(lines[1].find(R"("upline":null,"bound_at":null)"), std::string::npos);
  EXPECT_NE(lines[4].find(R"({"kind":"rejection","tenant":"default","id":null,"reason":"invalid_event","source":"test.jsonl","position":3)"), std::string::npos);
}

}  // namespace
}  // namespace fission::test

namespace fission::test {
namespace {

// Spec section 3 as revised: each tenant's watermark comes from its own
// events, so a shop whose feed runs ten minutes behind another's is not late.
TEST(Watermark, IsPerTenantSoAShopBehindAnotherIsNotLate) {
  Scenario s;
  auto in = [](const std::string& tenant, std::string json) { return json.insert(1, R"("tenant":")" + tenant + R"(",)"); };
  s.SendOn("t/0", in("a", Pay("p1", At(1, 10, 10), "M", "o1", 1000)))
      .SendOn("t/1", in("b", Pay("p2", At(1, 10, 0), "N", "o2", 1000)));
  EXPECT_EQ(s.last(), Outcome::kAccepted) << "b's first event is not measured against a's clock";
  // Within a tenant, lateness is as before.
  s.SendOn("t/0", in("a", Checkin("c1", At(1, 10, 8), "M")));
  EXPECT_EQ(s.last(), Outcome::kRejected);
  EXPECT_EQ(s.processor().last_reason(), "late_event");
  EXPECT_EQ(s.processor().watermark_ms("a"), Ms(At(1, 10, 9)));
  EXPECT_EQ(s.processor().watermark_ms("b"), Ms(At(1, 9, 59)));
}

// A tenant's events are applied once its own watermark passes them, whatever
// another tenant (on another partition) has or has not said.
TEST(Watermark, ATenantsEventsApplyWhenItsOwnWatermarkPasses) {
  Scenario s;
  auto in = [](const std::string& tenant, std::string json) { return json.insert(1, R"("tenant":")" + tenant + R"(",)"); };
  s.SendOn("t/1", in("b", Pay("p0", At(1, 9), "Q", "o0", 1000)));
  s.SendOn("t/0", in("a", Pay("p1", At(1, 10), "M", "o1", 1000)));
  EXPECT_EQ(s.Order("o1"), nullptr) << "within a's lateness bound: buffered";
  s.SendOn("t/0", in("a", Checkin("c1", At(1, 10, 2), "N")));
  ASSERT_NE(s.store().Find<pb::Order>(Table::kOrder, EntityKey("a", "o1")), nullptr);
  EXPECT_EQ(s.store().Find<pb::Order>(Table::kOrder, EntityKey("b", "o0")), nullptr) << "b's own watermark has not passed it";
}

TEST(Lanes, UndecodableBytesAreRejectedWithTheirPartitionAndOffset) {
  Scenario s;
  s.processor().OfferProto("topic/3", 42, "\xff\xff\xff garbage", "topic/3");
  EXPECT_EQ(s.processor().last_reason(), "invalid_event");
  s.Checkpoint();  // rejections are stored with the position they belong to
  auto r = s.Rejections();
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].source(), "topic/3");
  EXPECT_EQ(r[0].position(), 42);
  pb::Event missing;  // valid Protobuf, but no event_id, type or time
  missing.set_member("m1");
  s.processor().OfferProto("topic/3", 43, missing.SerializeAsString(), "topic/3");
  EXPECT_EQ(s.processor().last_reason(), "invalid_event");
  EXPECT_NE(s.processor().last_detail().find("event_id"), std::string::npos) << s.processor().last_detail();
}

}  // namespace
}  // namespace fission::test

namespace fission::test {
namespace {

TEST(Lanes, DroppingALaneForgetsItsTenantsAndNothingElse) {
  Scenario s;
  auto in = [](const std::string& tenant, std::string json) { return json.insert(1, R"("tenant":")" + tenant + R"(",)"); };
  s.SendOn("t/0", in("a", Share("sh", At(1, 8), "D", "s1")))
      .SendOn("t/0", in("a", Pay("p1", At(1, 9), "M", "o1", 1000, ShareArg("s1"))))
      .SendOn("t/1", in("b", Pay("p2", At(1, 9), "N", "o2", 1000)))
      .SendOn("t/0", in("a", Checkin("c1", At(1, 9, 0, 30), "M")));  // still buffered
  const auto dropped = s.processor().DropLane("t/0");
  s.Checkpoint();
  EXPECT_EQ(dropped, std::vector<std::string>{"a"});
  EXPECT_EQ(s.Member("M", "a"), nullptr);
  EXPECT_EQ(s.Dist("D", "a"), nullptr);
  EXPECT_EQ(s.processor().meta().lane_positions().count("t/0"), 0u);
  EXPECT_EQ(s.processor().meta().tenant_max_seen_ms().count("a"), 0u);
  s.Flush();
  EXPECT_EQ(s.Member("M", "a"), nullptr) << "the buffered check-in of the dropped tenant was dropped too";
  EXPECT_EQ(s.processor().timers(), 0u) << "the dropped line's settlement timer is gone";
  ASSERT_NE(s.Member("N", "b"), nullptr) << "the other lane's tenant is intact";
  EXPECT_EQ(s.Member("N", "b")->growth(), 10);
  // Its dedupe keys are gone too: the same event, fed again, applies afresh.
  s.SendOn("t/0", in("a", Checkin("c1", At(2), "M"))).Flush();
  ASSERT_NE(s.Member("M", "a"), nullptr);
  EXPECT_EQ(s.Member("M", "a")->checkins(), 1);
}

// The dropped tenant's timers go with it; the other tenant's still fire.
TEST(Lanes, DroppingALaneForgetsItsTimersAndTheOthersStillFire) {
  Scenario s;
  auto in = [](const std::string& tenant, std::string json) { return json.insert(1, R"("tenant":")" + tenant + R"(",)"); };
  for (const std::string tenant : {"a", "b"}) {
    const std::string lane = tenant == "a" ? "t/0" : "t/1";
    s.SendOn(lane, in(tenant, Share("sh" + tenant, At(1, 8), "D", "s" + tenant)));
    for (int i = 0; i < 5; ++i) {
      s.SendOn(lane, in(tenant, Pay(fmt::format("p{}{}", tenant, i), At(1, 9, i), "M" + std::to_string(i),
                                    fmt::format("o{}{}", tenant, i), 1000, ShareArg("s" + tenant))));
    }
    s.SendOn(lane, in(tenant, Checkin("c" + tenant, At(1, 10), "X")));  // releases the payments
  }
  ASSERT_EQ(s.processor().timers(), 10u) << "one settlement timer per payment";
  s.processor().DropLane("t/0");
  s.Checkpoint();
  EXPECT_EQ(s.processor().timers(), 5u);
  s.SendOn("t/1", in("b", Checkin("late", At(20), "X"))).Flush();
  EXPECT_EQ(s.processor().timers(), 0u);
  ASSERT_NE(s.Dist("D", "b"), nullptr);
  EXPECT_EQ(s.Dist("D", "b")->settled_fen(), 500) << "five lines of 100 fen settled";
  EXPECT_EQ(s.Dist("D", "a"), nullptr);
}

}  // namespace
}  // namespace fission::test

namespace fission::test {
namespace {

TEST(Export, MergingDataDirsTakesEachTenantFromTheCopyFurthestAlong) {
  auto in = [](const std::string& tenant, std::string json) { return json.insert(1, R"("tenant":")" + tenant + R"(",)"); };
  // Instance A read partitions 0 and 1 (tenants a, b) but stopped early on 1;
  // instance B took partition 1 over and read it further.
  Scenario a, b;
  a.SendOn("t/0", in("a", Pay("p1", At(1), "M", "o1", 1000))).SendOn("t/1", in("b", Pay("p2", At(1), "N", "o2", 1000))).Flush();
  b.SendOn("t/1", in("b", Pay("p2", At(1), "N", "o2", 1000))).SendOn("t/1", in("b", Refund("r2", At(2), "o2", 500))).Flush();
  a.processor().SetLanePosition("t/1", 5);
  b.processor().SetLanePosition("t/1", 9);
  a.Checkpoint();
  b.Checkpoint();
  std::ostringstream out;
  ASSERT_FALSE(ExportMerged({&a.store(), &b.store()}, out).has_value());
  const std::string merged = out.str();
  EXPECT_NE(merged.find(R"("tenant":"a","id":"o1")"), std::string::npos);
  EXPECT_NE(merged.find(R"("tenant":"b","id":"o2","member":"N","amount_fen":1000,"commission_base_fen":1000,"refunded_fen":500)"), std::string::npos) << merged;
  size_t orders_b = 0;
  for (size_t p = merged.find(R"("kind":"order","tenant":"b")"); p != std::string::npos; p = merged.find(R"("kind":"order","tenant":"b")", p + 1)) ++orders_b;
  EXPECT_EQ(orders_b, 1u) << "tenant b comes from one copy only";
}

TEST(Export, MergingRefusesOverlapsItCannotDecide) {
  Scenario a, b;  // file ingests: no partition positions
  a.Send({Pay("p1", At(1), "M", "o1", 1000)}).Flush();
  b.Send({Pay("p1", At(1), "M", "o1", 1000)}).Flush();
  std::ostringstream out;
  auto err = ExportMerged({&a.store(), &b.store()}, out);
  ASSERT_TRUE(err.has_value());
  EXPECT_NE(err->find("tenant 'default'"), std::string::npos);
  EXPECT_TRUE(out.str().empty());
}

}  // namespace
}  // namespace fission::test
