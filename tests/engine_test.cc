// The RocksDB engine against the pure fold: same stream, same export, however
// it is batched, restarted or re-fed.
#include <gtest/gtest.h>

#include <filesystem>
#include <sstream>

#include "engine/engine.h"
#include "replay/synth.h"
#include "tests/scenario.h"
#include "tests/test_util.h"

namespace fission::test {
namespace {

namespace fs = std::filesystem;

void Ingest(const std::string& dir, const RuleBook& rules, const std::string& events, size_t batch, bool finish) {
  EngineOptions opt;
  opt.batch_events = batch;
  opt.db.sync_commits = false;
  auto e = Engine::Open(dir, rules, opt);
  ASSERT_TRUE(e.ok()) << e.error().message;
  std::istringstream in(events);
  ASSERT_FALSE(e.value()->IngestJsonLines(in, "stream.jsonl").has_value());
  if (finish) {
    ASSERT_FALSE(e.value()->Finish().has_value());
  }
}

TEST(Engine, MatchesThePureFoldWhateverTheBatchSize) {
  const Stream st = Synthetic(7, 300, 20);
  const std::string expected = PureExport(st);
  ASSERT_GT(expected.size(), 10'000u);
  RuleBook rules = MustParseRules(st.rules);
  for (size_t batch : {size_t{1}, size_t{97}, size_t{100'000}}) {
    TempDir dir;
    Ingest(dir.str(), rules, st.events, batch, true);
    EXPECT_EQ(ExportDir(dir.str()), expected) << "batch " << batch;
  }
}

TEST(Engine, RestartMidStreamThenRefeedingTheFileMatchesAnUninterruptedRun) {
  const Stream st = Synthetic(11, 300, 20);
  const std::string expected = PureExport(st);
  RuleBook rules = MustParseRules(st.rules);
  TempDir dir;
  // First process: reads 40% of the lines and stops without reaching the end
  // of the input (as a killed process would: the log holds whole lines only).
  const size_t cut = st.events.find('\n', st.events.size() * 2 / 5) + 1;
  Ingest(dir.str(), rules, st.events.substr(0, cut), 50, false);
  // Second process: the whole file again; what was applied is deduplicated.
  Ingest(dir.str(), rules, st.events, 50, true);
  EXPECT_EQ(ExportDir(dir.str()), expected);
}

TEST(Engine, IngestingTheSameFileTwiceChangesNothing) {
  const Stream st = Synthetic(3, 200, 10);
  RuleBook rules = MustParseRules(st.rules);
  TempDir dir;
  Ingest(dir.str(), rules, st.events, 500, true);
  const std::string once = ExportDir(dir.str());
  Ingest(dir.str(), rules, st.events, 500, true);
  EXPECT_EQ(ExportDir(dir.str()), once);
}

TEST(Engine, ContinuingTheStreamInALaterRunAppliesNewEvents) {
  RuleBook rules = MustParseRules(RulesJson());
  TempDir dir;
  Ingest(dir.str(), rules, Pay("p1", At(1), "M", "o1", 10000) + "\n", 10, true);
  Ingest(dir.str(), rules, Refund("r1", At(2), "o1", 10000) + "\n", 10, true);
  const std::string out = ExportDir(dir.str());
  EXPECT_NE(out.find(R"("refunded_fen":10000)"), std::string::npos) << out;
}

TEST(Engine, StoredTimersAndBufferSurviveARestart) {
  RuleBook rules = MustParseRules(RulesJson());
  TempDir dir;
  // The payment stays buffered (within lateness) and its settlement timer pending.
  Ingest(dir.str(), rules, Share("sh", At(1, 8), "D", "s1") + "\n" + Pay("p1", At(1, 9), "M", "o1", 10000, ShareArg("s1")) + "\n", 10, false);
  Ingest(dir.str(), rules, Checkin("c1", At(9), "X") + "\n", 10, true);
  const std::string out = ExportDir(dir.str());
  EXPECT_NE(out.find(R"("state":"settled")"), std::string::npos) << out;
  EXPECT_NE(out.find(R"("settled_fen":1000)"), std::string::npos) << out;
}

// A flood of one member's events: payments and full refunds across the silver
// threshold, so every event moves the tier. Each change is a row of its own;
// before, every event rewrote and versioned a member row holding the whole
// history (10,000 pairs wrote about 3 GB).
TEST(Engine, AFloodOfOneMembersTierChangesCostsTheSameForEveryEvent) {
  const RuleBook rules = MustParseRules(RulesJson());  // demote_on_refund on, silver at 1000
  std::string events;
  const int pairs = 10'000;
  for (int i = 0; i < pairs; ++i) {
    const int64_t t = Ms(At(1)) + int64_t{i} * 2000;
    events += Pay(fmt::format("p{}", i), FormatRfc3339(Millis(t)), "M", fmt::format("o{}", i), 100'000) + "\n";
    events += Refund(fmt::format("r{}", i), FormatRfc3339(Millis(t + 1000)), fmt::format("o{}", i), 100'000) + "\n";
  }
  TempDir dir;
  Ingest(dir.str(), rules, events, 4096, true);
  uintmax_t bytes = 0;
  for (const auto& f : fs::recursive_directory_iterator(dir.str())) {
    if (f.is_regular_file()) bytes += f.file_size();
  }
  EXPECT_LT(bytes, uintmax_t{64} << 20) << "the data dir grew to " << bytes << " bytes for " << 2 * pairs << " events";
  auto db = StateDb::OpenReadOnly(dir.str());
  ASSERT_TRUE(db.ok());
  auto j = nlohmann::json::parse(*QueryJson(*db.value(), "member", "default", "M"));
  ASSERT_EQ(j["tier_history"].size(), size_t{2 * pairs + 1});
  EXPECT_EQ(j["tier_history"][1]["tier"], "silver");
  EXPECT_EQ(j["tier_history"][2 * pairs]["tier"], "regular");
  EXPECT_EQ(j["tier_history"][2 * pairs]["event_id"], fmt::format("r{}", pairs - 1));
}

}  // namespace
}  // namespace fission::test
