// History as changes (projections/history.h): version chains through table V
// answer "as it stood at T" exactly, survive a restart, and a broken chain is
// an error, never an answer. The dedupe set rebuilt from stored events and
// rejections after a restart judges resends as the running processor did.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>

#include "projections/history.h"
#include "tests/scenario.h"

namespace fission::test {
namespace {

ReadChange Reader(MemStore& store) {
  return [&store](uint64_t seq, pb::Change* c) { return store.ReadRow(Table::kChange, ChangeKey(seq), c); };
}

// The row's bytes without its pointer into history (versions carry none).
template <class R>
std::string Content(R row) {
  row.clear_last_version();
  return row.SerializeAsString();
}

TEST(History, EveryInstantsVersionEqualsTheRowsAsTheyStoodThenAcrossARestart) {
  Scenario s;
  const std::vector<std::string> events = {
      Share("s1", At(1, 10), "A", "sh1"),  Pay("p1", At(1, 11), "B", "o1", 10000, ShareArg("sh1")),
      Checkin("c1", At(2, 9), "A"),        Pay("p2", At(2, 12), "B", "o2", 5000, ShareArg("sh1")),
      Refund("r1", At(3, 8), "o1", 4000),  Checkin("c2", At(3, 9), "A"),
      Checkin("c3", At(4, 9), "A"),        Pay("p3", At(5, 9), "A", "o3", 7000),
  };
  // The rows as they stood after each instant, by instant (see below).
  std::map<int64_t, std::string> dist, member, line;
  for (size_t i = 0; i < events.size(); ++i) {
    s.Send({events[i]});
    if (i == 4) s.Restart();  // Load must restore every chain's head and the change counter
  }
  s.Flush();
  // The events are hours apart: fed one by one with a flush after each, a
  // fresh processor shows the rows as they stood after each instant.
  {
    Scenario cut;
    for (const auto& e : events) {
      cut.Send({e}).Flush();
      const int64_t at = Ms(nlohmann::json::parse(e)["occurred_at"].get<std::string>());
      if (const auto* d = cut.Dist("A")) dist[at] = Content(*d);
      if (const auto* m = cut.store().Find<pb::Member>(Table::kMember, EntityKey("default", "A"))) member[at] = Content(*m);
      if (const auto* l = cut.Line("A", "o1", 1)) line[at] = Content(*l);
    }
  }
  ASSERT_FALSE(dist.empty());
  ASSERT_FALSE(line.empty());
  const auto read = Reader(s.store());
  auto check = [&](const std::map<int64_t, std::string>& want, uint64_t head, const char* what) {
    for (const auto& [at, bytes] : want) {
      for (int64_t probe : {at, at + 1}) {
        auto v = VersionAt(head, probe, read);
        ASSERT_TRUE(v.has_value()) << what << " at " << probe;
        EXPECT_EQ(v->row(), bytes) << what << " at " << probe;
      }
    }
    EXPECT_FALSE(VersionAt(head, want.begin()->first - 1, read).has_value()) << what << " before it existed";
  };
  check(dist, s.Dist("A")->last_version(), "distributor");
  check(member, s.store().Find<pb::Member>(Table::kMember, EntityKey("default", "A"))->last_version(), "member");
  check(line, s.Line("A", "o1", 1)->last_version(), "line");
}

TEST(History, TwoEventsAtOneInstantReadAsOneVersionTheLaterOne) {
  Scenario s;
  s.Send({Checkin("c1", At(1, 9), "M"), Pay("p1", At(1, 10), "M", "o1", 1000), Pay("p2", At(1, 10), "M", "o2", 2000),
          Checkin("c2", At(2, 9), "M")})
      .Flush();
  const auto* m = s.store().Find<pb::Member>(Table::kMember, EntityKey("default", "M"));
  ASSERT_NE(m, nullptr);
  std::vector<pb::Version> versions;
  ForEachVersion(m->last_version(), Reader(s.store()), [&](const pb::Version& v) {
    versions.push_back(v);
    return true;
  });
  ASSERT_EQ(versions.size(), 3u);  // 2 Nov 09:00, 1 Nov 10:00 (two payments, one instant), 1 Nov 09:00
  EXPECT_EQ(versions[1].at_ms(), Ms(At(1, 10)));
  EXPECT_EQ(versions[1].cause().event_id(), "p2");  // canonical order: p1 then p2
  pb::Member then, before;
  ASSERT_TRUE(then.ParseFromString(versions[1].row()));
  ASSERT_TRUE(before.ParseFromString(versions[2].row()));
  EXPECT_EQ(then.growth() - before.growth(), 30);  // both payments, 10 + 20
  auto at = VersionAt(m->last_version(), Ms(At(1, 10)), Reader(s.store()));
  ASSERT_TRUE(at.has_value());
  EXPECT_EQ(at->cause().event_id(), "p2");
}

TEST(History, ABrokenChainIsAnErrorNotAnAnswer) {
  Scenario s;
  s.Send({Checkin("c1", At(1, 9), "M"), Checkin("c2", At(2, 9), "M")}).Flush();
  const uint64_t head = s.store().Find<pb::Member>(Table::kMember, EntityKey("default", "M"))->last_version();
  ASSERT_TRUE(VersionAt(head, Ms(At(1, 9)), Reader(s.store())).has_value());
  s.store().Delete(Table::kChange, ChangeKey(VersionChange(head) - 1));  // the first check-in's change
  EXPECT_THROW(VersionAt(head, Ms(At(1, 9)), Reader(s.store())), std::runtime_error);
  // The latest version is still there and still answers for its own instant.
  EXPECT_TRUE(VersionAt(head, Ms(At(2, 9)), Reader(s.store())).has_value());
}

TEST(Dedupe, AfterARestartResendsAreJudgedAsBeforeIt) {
  const std::string valid = Pay("p1", At(1), "M", "o1", 1000);
  const std::string invalid =
      R"({"event_id":"x1","type":"payment","occurred_at":")" + At(1) + R"(","member":"M","order_id":"o2"})";  // no amount
  // The valid x1 comes before the invalid one is sent again (which would
  // mark the id seen anew): only the rebuilt dedupe set can refuse it.
  const std::vector<std::string> resends = {valid, Pay("p1", At(1), "M", "o1", 2000), Pay("x1", At(1), "M", "o2", 5),
                                            invalid};
  auto run = [&](bool restart) {
    Scenario s;
    s.Send({valid, invalid});
    if (restart) s.Restart();
    std::vector<Outcome> out;
    for (const auto& r : resends) out.push_back(s.Send({r}).last());
    s.Flush();
    return std::make_pair(out, s.Reasons());
  };
  const auto kept = run(false), restarted = run(true);

  EXPECT_EQ(restarted.first, kept.first);
  EXPECT_EQ(restarted.second, kept.second);
  // And what that is: an exact resend is a duplicate, a changed one a
  // conflicting duplicate, also for the invalid event's id; the invalid
  // event is invalid again.
  EXPECT_EQ(restarted.first, (std::vector<Outcome>{Outcome::kDuplicate, Outcome::kRejected, Outcome::kRejected,
                                                   Outcome::kRejected}));
  std::vector<std::string> reasons = restarted.second;  // in export order
  std::sort(reasons.begin(), reasons.end());
  EXPECT_EQ(reasons, (std::vector<std::string>{"conflicting_duplicate", "conflicting_duplicate", "invalid_event",
                                               "invalid_event"}));
}

TEST(Dedupe, AnInvalidFirstSightingFedAgainAfterACrashStillHoldsTheIdsFirstContent) {
  // Found by the simulator: the re-fed line rewrites its rejection row (same
  // source and position), which must still carry the id's first content.
  const RuleBook rules = MustParseRules(RulesJson());
  const std::string invalid = R"({"event_id":"x1","type":"like","occurred_at":")" + At(1) + R"(","member":"M"})";
  MemStore store;
  for (int run = 0; run < 2; ++run) {  // the same file position, before and after a crash
    Processor p(rules, store, {});
    p.Load(store);
    EXPECT_EQ(p.OfferJson("in.jsonl", 1, invalid), Outcome::kRejected);
    p.Checkpoint(1);
  }
  Processor p(rules, store, {});
  p.Load(store);
  EXPECT_EQ(p.OfferJson("in.jsonl", 2, Pay("x1", At(1), "M", "o1", 5)), Outcome::kRejected);
  EXPECT_EQ(p.last_reason(), "conflicting_duplicate");
  EXPECT_EQ(p.stats().dedupe_reads, 1);
}

}  // namespace
}  // namespace fission::test
