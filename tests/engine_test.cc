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

}  // namespace
}  // namespace fission::test
