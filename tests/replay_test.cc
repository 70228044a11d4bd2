// Finance's tools: exact rebuilds, replay up to an instant, what-if rules,
// statements that chain and reconcile, and an archive that refuses damage.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "engine/engine.h"
#include "engine/query.h"
#include "events/decode.h"
#include "events/time.h"
#include "replay/archive.h"
#include "replay/commands.h"
#include "replay/compare.h"
#include "replay/source.h"
#include "replay/statement.h"
#include "replay/synth.h"
#include "tests/scenario.h"
#include "tests/test_util.h"

namespace fission::test {
namespace {

namespace fs = std::filesystem;

class ReplayTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    SynthOptions o;
    o.seed = 11;
    o.members = 900;
    o.days = 21;
    o.tenants = 2;
    o.bad_fraction = 0.01;
    o.duplicate_fraction = 0.01;
    o.very_late_fraction = 0.002;
    events_ = new std::vector<std::string>();
    Synthesize(o, [&](const std::string& l) { events_->push_back(l); });
    rules_json_ = new std::string(SynthRulesJson(o));
    work_ = new TempDir();
    fs::create_directories(work_->str());
    std::ofstream(Path("rules.json")) << *rules_json_;
    // The live data dir: ingested as a file, as production would.
    EngineOptions opt;
    opt.db.sync_commits = false;
    RuleBook rules = MustParseRules(*rules_json_);
    auto e = Engine::Open(Path("live"), rules, opt);
    ASSERT_TRUE(e.ok());
    std::string all;
    for (const auto& l : *events_) all += l + "\n";
    std::istringstream in(all);
    ASSERT_FALSE(e.value()->IngestJsonLines(in, "stream.jsonl"));
    ASSERT_FALSE(e.value()->Finish());
  }
  static void TearDownTestSuite() {
    delete work_;
    delete events_;
    delete rules_json_;
  }
  static std::string Path(const std::string& name) { return (fs::path(work_->str()) / name).string(); }

  static std::string DigestDir(const std::string& dir) {
    auto db = StateDb::OpenReadOnly(dir);
    EXPECT_TRUE(db.ok());
    return DigestOf(*db.value()).hash;
  }

  static int Replay(const std::string& from, const std::string& out, const std::string& rules,
                    const std::string& until = "") {
    ReplayArgs a;
    a.from = from;
    a.out = out;
    a.rules = rules;
    a.until = until;
    a.quiet = true;
    return RunReplay(a);
  }

  static std::vector<std::string>* events_;
  static std::string* rules_json_;
  static TempDir* work_;
};

std::vector<std::string>* ReplayTest::events_;
std::string* ReplayTest::rules_json_;
TempDir* ReplayTest::work_;

TEST_F(ReplayTest, ReplayingTheLiveLogGivesTheLiveDigest) {
  const std::string out = Path("rebuilt");
  ASSERT_EQ(Replay(Path("live"), out, Path("rules.json")), 0);
  EXPECT_EQ(DigestDir(out), DigestDir(Path("live")));
  EXPECT_EQ(ExportDir(out), ExportDir(Path("live")));
  // A replay never writes over an existing data dir.
  EXPECT_EQ(Replay(Path("live"), out, Path("rules.json")), 2);
}

TEST_F(ReplayTest, ReplayUntilAnInstantEqualsAnIngestOfOnlyTheEventsUpToIt) {
  std::vector<int64_t> times;
  for (const auto& l : *events_) {
    auto d = DecodeJson(l);
    if (d.ok()) times.push_back(d.value().occurred_at_ms());
  }
  std::sort(times.begin(), times.end());
  const RuleBook rules = MustParseRules(*rules_json_);
  for (double q : {0.25, 0.7}) {
    const int64_t until = times[static_cast<size_t>(q * static_cast<double>(times.size()))];
    const std::string out = Path(fmt::format("until-{}", q));
    ASSERT_EQ(Replay(Path("live"), out, Path("rules.json"), FormatRfc3339(Millis(until))), 0);
    // The same input records (same file, same line numbers), less the events after the instant.
    const std::string cut = Path(fmt::format("cut-{}", q));
    {
      EngineOptions opt;
      opt.db.sync_commits = false;
      auto e = Engine::Open(cut, rules, opt);
      ASSERT_TRUE(e.ok());
      size_t i = 0;
      int64_t kept = 0;
      ASSERT_FALSE(e.value()->IngestRecords([&](pb::LogRecord* r) {
        while (i < events_->size()) {
          const std::string& l = (*events_)[i++];
          auto d = DecodeJson(l);
          if (d.ok() && d.value().occurred_at_ms() > until) continue;
          r->Clear();
          r->set_source("stream.jsonl");
          r->set_position(static_cast<int64_t>(i));
          r->set_payload(l);
          ++kept;
          return true;
        }
        return false;
      }));
      ASSERT_FALSE(e.value()->Finish());
      ASSERT_LT(kept, static_cast<int64_t>(events_->size()));
    }
    const std::string got = ExportDir(out);
    EXPECT_EQ(got, ExportDir(cut)) << "until " << FormatRfc3339(Millis(until));
    EXPECT_NE(got, ExportDir(Path("live")));
  }
}

// Spec section 3 (revised): `replay --until T` fires every timer due by T,
// so it equals the as-of view at T, also when a timer falls between the last
// event before T and T itself (here a settlement at day 8, T at day 9, the
// next event at day 20).
TEST_F(ReplayTest, ReplayUntilAnInstantFiresTheTimersDueByItAsTheAsOfViewShows) {
  TempDir dir;
  const std::string live = (fs::path(dir.str()) / "live").string();
  const std::string out = (fs::path(dir.str()) / "until").string();
  const std::string rules_path = (fs::path(dir.str()) / "rules.json").string();
  const RuleBook rules = MustParseRules(RulesJson());  // outlives the engine, which refers to it
  {
    auto e = Engine::Open(live, rules, EngineOptions{});
    ASSERT_TRUE(e.ok()) << e.error().message;
    std::istringstream in(Share("sh", At(1, 8), "D", "s1") + "\n" + Pay("p1", At(1, 9), "M", "o1", 10000, ShareArg("s1")) +
                          "\n" + Checkin("c1", At(20), "X") + "\n");
    ASSERT_FALSE(e.value()->IngestJsonLines(in, "e.jsonl"));
    ASSERT_FALSE(e.value()->Finish());
  }
  std::ofstream(rules_path) << RulesJson();
  const std::string until = At(9);
  ASSERT_EQ(Replay(live, out, rules_path, until), 0);
  auto replayed = StateDb::OpenReadOnly(out);
  ASSERT_TRUE(replayed.ok());
  const auto* line = replayed.value()->Find<pb::Line>(Table::kLine, LineKey("default", "D", "o1", false, 1));
  ASSERT_NE(line, nullptr);
  EXPECT_EQ(line->state(), pb::SETTLED) << "the settlement due at day 8 fired before T = day 9";
  // The live data dir's as-of view at T says the same.
  auto db = StateDb::OpenReadOnly(live);
  ASSERT_TRUE(db.ok());
  QueryService q(*db.value(), nullptr);
  auto asof = q.Distributor("default", "D", Ms(until), Page{});
  ASSERT_TRUE(asof.ok());
  EXPECT_EQ(asof.value()["lines"][0]["state"], "settled");
  EXPECT_EQ(asof.value()["settled_fen"].get<int64_t>(), line->amount_fen());
  QueryService r(*replayed.value(), nullptr);
  auto now = r.Distributor("default", "D", std::nullopt, Page{});
  ASSERT_TRUE(now.ok());
  EXPECT_EQ(now.value()["settled_fen"], asof.value()["settled_fen"]);
  EXPECT_EQ(now.value()["pending_fen"], asof.value()["pending_fen"]);
}

TEST_F(ReplayTest, AWhatIfWithAChangedLevelRateChangesExactlyTheLinesItGoverns) {
  // Proposed: level 1 of version v1 pays 3 points more.
  nlohmann::json proposed = nlohmann::json::parse(*rules_json_);
  int changed_versions = 0;
  for (auto& [tenant, versions] : proposed["tenants"].items()) {
    for (auto& v : versions) {
      if (v["version"] == "v1") {
        v["commission"]["levels_bps"][0] = v["commission"]["levels_bps"][0].get<int>() + 300;
        ++changed_versions;
      }
    }
  }
  ASSERT_GT(changed_versions, 0);
  std::ofstream(Path("proposed.json")) << proposed.dump(2);
  const std::string whatif = Path("whatif");
  ASSERT_EQ(Replay(Path("live"), whatif, Path("proposed.json")), 0);

  auto live = StateDb::OpenReadOnly(Path("live"));
  auto wi = StateDb::OpenReadOnly(whatif);
  ASSERT_TRUE(live.ok() && wi.ok());
  // Line by line: a level-1 commission of an order paid under v1 has rate +300
  // and the formula's amount; every other line is unchanged.
  std::map<std::string, pb::Line> before;
  live.value()->Scan(Table::kLine, "", [&](std::string_view k, const google::protobuf::MessageLite& row) {
    before[std::string(k)] = static_cast<const pb::Line&>(row);
    return true;
  });
  int governed = 0, untouched = 0, amount_changed = 0;
  size_t after_count = 0;
  wi.value()->Scan(Table::kLine, "", [&](std::string_view k, const google::protobuf::MessageLite& row) {
    const auto& b = static_cast<const pb::Line&>(row);
    ++after_count;
    auto it = before.find(std::string(k));
    EXPECT_NE(it, before.end()) << "a line the live books do not have";
    if (it == before.end()) return true;
    const pb::Line& a = it->second;
    if (!a.leader_bonus() && a.level() == 1 && a.rule_version() == "v1") {
      ++governed;
      EXPECT_EQ(b.rate_bps(), a.rate_bps() + 300);
      EXPECT_EQ(b.base_fen(), a.base_fen());
      EXPECT_EQ(b.amount_fen(), CommissionAmount(Fen(b.base_fen()), Bps(b.rate_bps())).v);
      EXPECT_EQ(b.state(), a.state());
      amount_changed += b.amount_fen() != a.amount_fen();
    } else {
      ++untouched;
      EXPECT_EQ(b.SerializeAsString(), a.SerializeAsString()) << b.order_id() << " level " << b.level();
    }
    return true;
  });
  EXPECT_EQ(after_count, before.size());
  EXPECT_GT(governed, 100);
  EXPECT_GT(untouched, 100);
  EXPECT_GT(amount_changed, governed / 2);
  // The report: only distributors differ, and its totals are the sums of the changes.
  const DiffReport r = Diff(*live.value(), *wi.value(), DiffOptions{});
  EXPECT_FALSE(r.same);
  EXPECT_FALSE(r.json["differing"].contains("member"));
  EXPECT_FALSE(r.json["differing"].contains("group"));
  EXPECT_TRUE(r.json["only_in_a"].empty());
  EXPECT_TRUE(r.json["only_in_b"].empty());
  int64_t settled_delta = 0;
  wi.value()->Scan(Table::kLine, "", [&](std::string_view k, const google::protobuf::MessageLite& row) {
    const auto& b = static_cast<const pb::Line&>(row);
    const pb::Line& a = before[std::string(k)];
    auto net_settled = [](const pb::Line& l) { return l.state() == pb::SETTLED ? l.amount_fen() - l.reversed_fen() : 0; };
    settled_delta += net_settled(b) - net_settled(a);
    return true;
  });
  EXPECT_EQ(r.json["distributor_totals"]["settled_fen"]["delta"].get<int64_t>(), settled_delta);
  EXPECT_GT(settled_delta, 0);
}

TEST_F(ReplayTest, StatementsOverConsecutivePeriodsChainAndSumToTheExport) {
  auto db = StateDb::OpenReadOnly(Path("live"));
  ASSERT_TRUE(db.ok());
  const int64_t day = kDayMs;
  const int64_t start = SynthOptions{}.start_ms;
  // (-inf, d3], (d3, d10], (d10, d17], (d17, +inf)
  const std::vector<int64_t> cuts = {INT64_MIN, start + 3 * day, start + 10 * day, start + 17 * day, INT64_MAX};
  using Key = std::pair<std::string, std::string>;
  std::map<Key, StatementRow> sum;
  std::map<Key, int64_t> closing_before;
  int periods_with_movement = 0;
  for (size_t i = 0; i + 1 < cuts.size(); ++i) {
    StatementOptions o;
    o.from_ms = cuts[i];
    o.to_ms = cuts[i + 1];
    auto s = ComputeStatements(*db.value(), o);
    ASSERT_TRUE(s.ok()) << s.error();
    std::map<Key, StatementRow> rows;
    for (const auto& r : s.value().rows) rows[{r.tenant, r.distributor}] = r;
    // Chain: what closed one period opens the next (absent = 0 both sides).
    for (const auto& [k, closing] : closing_before) {
      auto it = rows.find(k);
      EXPECT_EQ(it == rows.end() ? 0 : it->second.opening_balance, closing) << k.second << " period " << i;
    }
    for (const auto& [k, r] : rows) {
      if (i > 0 && !closing_before.count(k)) {
        EXPECT_EQ(r.opening_balance, 0) << k.second;
      }
      StatementRow& t = sum[k];
      t.accrued += r.accrued;
      t.leader_bonus += r.leader_bonus;
      t.reversed += r.reversed;
      t.clawed_back += r.clawed_back;
      t.waived += r.waived;
      t.settled += r.settled;
      t.voided += r.voided;
      t.closing_balance = r.closing_balance;
      t.closing_unsettled = r.closing_unsettled;
    }
    closing_before.clear();
    for (const auto& [k, r] : rows) closing_before[k] = r.closing_balance;
    periods_with_movement += !rows.empty();
  }
  EXPECT_EQ(periods_with_movement, 4);
  // The sums over the periods are the export's totals, distributor by distributor.
  int compared = 0;
  std::istringstream in(ExportDir(Path("live")));
  for (std::string l; std::getline(in, l);) {
    auto j = nlohmann::json::parse(l);
    if (j["kind"] != "distributor" || j["lines"].empty()) continue;
    const StatementRow& t = sum[{j["tenant"], j["id"]}];
    const std::string who = j["id"];
    EXPECT_EQ(t.settled - t.clawed_back, j["balance_fen"].get<int64_t>()) << who;
    EXPECT_EQ(t.closing_balance, j["balance_fen"].get<int64_t>()) << who;
    EXPECT_EQ(t.closing_unsettled, j["held_fen"].get<int64_t>() + j["pending_fen"].get<int64_t>()) << who;
    EXPECT_EQ(t.reversed, j["reversed_fen"].get<int64_t>()) << who;
    EXPECT_EQ(t.clawed_back, j["clawed_back_fen"].get<int64_t>()) << who;
    EXPECT_EQ(t.waived, j["waived_fen"].get<int64_t>()) << who;
    EXPECT_EQ(t.voided, j["voided_fen"].get<int64_t>()) << who;
    EXPECT_EQ(t.settled, j["settled_fen"].get<int64_t>()) << who;
    ++compared;
  }
  EXPECT_GT(compared, 100);
}

TEST_F(ReplayTest, AnArchiveRoundTripsAndADamagedBlockIsReportedWithItsOffset) {
  const std::string file = Path("history.fsa");
  {
    auto src = OpenSource(Path("live"), nullptr);
    ASSERT_TRUE(src.ok()) << src.error();
    auto w = ArchiveWriter::Create(file, 16 << 10);  // small blocks: many of them
    ASSERT_TRUE(w.ok());
    pb::LogRecord r;
    while (src.value()->Next(&r)) ASSERT_FALSE(w.value()->Add(r));
    ASSERT_FALSE(src.value()->error());
    ASSERT_FALSE(w.value()->Finish());
    EXPECT_EQ(w.value()->records(), static_cast<int64_t>(events_->size()));
  }
  ASSERT_EQ(Replay(file, Path("from-archive"), Path("rules.json")), 0);
  EXPECT_EQ(DigestDir(Path("from-archive")), DigestDir(Path("live")));

  std::string bytes = Slurp(file);
  // Block offsets, from the headers (magic 8 bytes; header 32 bytes, stored length at +8).
  std::vector<size_t> blocks;
  for (size_t at = 8; bytes.compare(at, 4, "BLK1") == 0;) {
    blocks.push_back(at);
    uint32_t stored = 0;
    for (int i = 3; i >= 0; --i) stored = (stored << 8) | static_cast<unsigned char>(bytes[at + 8 + static_cast<size_t>(i)]);
    at += 32 + stored;
  }
  ASSERT_GT(blocks.size(), 5u);
  auto read_all = [](const std::string& path) {
    auto r = ArchiveReader::Open(path);
    EXPECT_TRUE(r.ok());
    pb::LogRecord rec;
    int64_t n = 0;
    while (r.value()->Next(&rec)) ++n;
    return std::pair{n, r.value()->error() ? r.value()->error()->message : std::string()};
  };
  EXPECT_EQ(read_all(file), (std::pair<int64_t, std::string>{static_cast<int64_t>(events_->size()), ""}));

  // One flipped bit in block 3's data.
  std::string flipped = bytes;
  flipped[blocks[3] + 32 + 100] ^= 0x10;
  std::ofstream(Path("flipped.fsa"), std::ios::binary) << flipped;
  auto [n, err] = read_all(Path("flipped.fsa"));
  EXPECT_NE(err.find(fmt::format("block 3 at offset {}: checksum mismatch", blocks[3])), std::string::npos) << err;
  EXPECT_GT(n, 0);  // the blocks before it were read, and then it stopped
  EXPECT_EQ(Replay(Path("flipped.fsa"), Path("from-flipped"), Path("rules.json")), 2);

  // A block dropped from the middle.
  std::string dropped = bytes.substr(0, blocks[2]) + bytes.substr(blocks[3]);
  std::ofstream(Path("dropped.fsa"), std::ios::binary) << dropped;
  EXPECT_NE(read_all(Path("dropped.fsa")).second.find(fmt::format("block 2 at offset {}", blocks[2])), std::string::npos);

  // Cut short: no footer.
  std::ofstream(Path("cut.fsa"), std::ios::binary) << bytes.substr(0, blocks[4]);
  EXPECT_NE(read_all(Path("cut.fsa")).second.find("truncated"), std::string::npos);

  // Not an archive at all.
  std::ofstream(Path("not.fsa"), std::ios::binary) << "hello";
  EXPECT_FALSE(ArchiveReader::Open(Path("not.fsa")).ok());
}

}  // namespace
}  // namespace fission::test
