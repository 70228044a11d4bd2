// The caches in front of RocksDB (engine/warm_rows.h): they may forget, never
// answer wrong; and the engine behind the smallest of them still matches the
// pure fold.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <map>
#include <random>
#include <sstream>

#include "engine/engine.h"
#include "engine/memory.h"
#include "engine/metrics.h"
#include "engine/state_db.h"
#include "engine/warm_rows.h"
#include "tests/scenario.h"
#include "tests/test_util.h"

namespace fission::test {
namespace {

// A full row key as StateDb builds it: table byte, tenant, 0x00, id.
std::string Key(char table, const std::string& id) { return std::string(1, table) + EntityKey("default", id); }

TEST(WarmRows, ATakenRowIsGoneAndAPutReplacesTheEarlierBytes) {
  WarmRows w(1 << 20);
  w.Put("Ma", "one");
  w.Put("Mb", "two");
  w.Put("Ma", "three");
  EXPECT_EQ(w.rows(), 2u);
  EXPECT_EQ(w.Take("Ma"), std::optional<std::string_view>("three"));
  EXPECT_EQ(w.Take("Ma"), std::nullopt);
  EXPECT_EQ(w.Take("Mc"), std::nullopt);
  EXPECT_EQ(w.Take("Mb"), std::optional<std::string_view>("two"));
  EXPECT_EQ(w.rows(), 0u);
  EXPECT_EQ(w.hits(), 2u);
  EXPECT_EQ(w.misses(), 2u);
}

TEST(WarmRows, AZeroBudgetKeepsNothing) {
  WarmRows w(0);
  w.Put("Ma", "one");
  EXPECT_EQ(w.Take("Ma"), std::nullopt);
  EXPECT_EQ(w.bytes(), 0u);
}

// Random puts and takes against a map, in a budget that holds a fraction of
// the keys: every answer is either nothing or the latest bytes put, memory
// stays within the budget, and with room for everything nothing is lost.
TEST(WarmRows, UnderPressureItForgetsOldRowsButNeverReturnsStaleBytes) {
  for (size_t budget : {size_t{64} << 10, size_t{256} << 10, size_t{64} << 20}) {
    WarmRows w(budget);
    std::map<std::string, std::string> model;  // what the store holds now
    std::mt19937_64 rng(budget);
    int answered = 0, forgotten = 0;
    for (int i = 0; i < 200'000; ++i) {
      const std::string key = Key('M', "m" + std::to_string(rng() % 20'000));
      if (rng() % 3 == 0) {
        auto got = w.Take(key);
        auto it = model.find(key);
        if (got) {
          ASSERT_NE(it, model.end()) << key << " was never put, or was taken";
          ASSERT_EQ(*got, it->second) << key;
          ++answered;
        } else if (it != model.end()) {
          ++forgotten;
        }
        if (it != model.end()) model.erase(it);
      } else {
        std::string value(rng() % 120, static_cast<char>('a' + i % 26));
        value += std::to_string(i);
        w.Put(key, value);
        model[key] = value;
      }
      ASSERT_LE(w.bytes(), budget);
    }
    EXPECT_GT(answered, 1000) << budget;
    if (budget >= (size_t{64} << 20)) {
      EXPECT_EQ(forgotten, 0);
      EXPECT_EQ(w.rows(), model.size());
      EXPECT_EQ(w.dropped(), 0u);
    } else {
      EXPECT_GT(w.dropped(), 0u) << budget;
    }
  }
}

TEST(WarmRows, ARowTooLargeForItsArenaIsNotKeptAndDropsAnOlderCopy) {
  WarmRows w(64 << 10);
  w.Put("Mbig", "small");
  w.Put("Mbig", std::string(64 << 10, 'x'));
  EXPECT_EQ(w.Take("Mbig"), std::nullopt);
}

TEST(SeenFilter, EveryKeyAddedIsReportedAndFewOthersAre) {
  SeenFilter f(256 << 10);  // 2M bits
  for (int i = 0; i < 160'000; ++i) f.Add(Key('d', "e" + std::to_string(i)));  // ~13 bits a key
  for (int i = 0; i < 160'000; ++i) ASSERT_TRUE(f.MayContain(Key('d', "e" + std::to_string(i)))) << i;
  int false_positives = 0;
  for (int i = 0; i < 100'000; ++i) false_positives += f.MayContain(Key('d', "x" + std::to_string(i)));
  EXPECT_LT(false_positives, 2'000);  // 2%; a blocked filter at 13 bits a key gives about 1%
  EXPECT_EQ(f.added(), 160'000u);
}

TEST(SeenFilter, DisabledItAnswersPerhapsForEveryKey) {
  SeenFilter f(0);
  EXPECT_FALSE(f.enabled());
  EXPECT_TRUE(f.MayContain("anything"));
}

// Rows evicted to the warm tier, then erased or overwritten without a read
// (EraseRow, OverwriteRow): the tier's copy must not come back.
TEST(WarmRows, ARowErasedOrOverwrittenAfterEvictionDoesNotComeBackFromTheWarmTier) {
  TempDir dir;
  DbOptions o;
  o.sync_commits = false;
  o.cache_rows_max = 1'000;
  auto opened = StateDb::Open(dir.str(), o);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  StateDb& db = *opened.value();
  const int n = 5'000;
  auto id = [](int i) { return EntityKey("default", "m" + std::to_string(i)); };
  for (int i = 0; i < n; ++i) db.Mutable<pb::Member>(Table::kMember, id(i))->set_points(i);
  ASSERT_FALSE(db.Commit().has_value());  // evicts most of them to the tier
  ASSERT_GT(db.warm_rows().rows(), size_t{n / 2});
  for (int i = 0; i < n; ++i) {
    if (i % 2 == 0) {
      db.EraseRow(Table::kMember, id(i));
    } else {
      db.OverwriteRow(Table::kMember, id(i));  // empty: points 0
    }
  }
  ASSERT_FALSE(db.Commit().has_value());
  for (int i = 0; i < n; ++i) {
    const auto* m = db.Find<pb::Member>(Table::kMember, id(i));
    if (i % 2 == 0) {
      EXPECT_EQ(m, nullptr) << i;
    } else {
      ASSERT_NE(m, nullptr) << i;
      EXPECT_EQ(m->points(), 0) << i;
    }
  }
}

// The engine with a decoded cache of 1,000 rows and the smallest warm budget
// (rows cycle through both arenas many times) and a tiny filter that is
// mostly "perhaps": the export is the pure fold's, across a restart.
TEST(WarmRows, TheEngineBehindTinyCachesMatchesThePureFoldAcrossARestart) {
  const Stream st = Synthetic(11, 800, 20);
  const std::string expected = PureExport(st);
  const RuleBook rules = MustParseRules(st.rules);
  // Three runs: the first half of the file, then all of it (its first half
  // again: duplicates), then all of it once more.
  const size_t cut = st.events.find('\n', st.events.size() / 2) + 1;
  const std::string first = st.events.substr(0, cut);
  for (size_t filter : {size_t{0}, size_t{64}, size_t{1} << 20}) {
    TempDir dir;
    EngineOptions opt;
    opt.batch_events = 500;
    opt.db.sync_commits = false;
    opt.db.cache_rows_max = 1'000;
    opt.db.warm_rows_bytes = 64 << 10;
    opt.db.dedupe_filter_bytes = filter;
    uint64_t hits = 0, saved = 0;
    for (const std::string* part : {&first, &st.events, &st.events}) {
      auto e = Engine::Open(dir.str(), rules, opt);
      ASSERT_TRUE(e.ok()) << e.error().message;
      std::istringstream in(*part);
      ASSERT_FALSE(e.value()->IngestJsonLines(in, "stream.jsonl").has_value());
      ASSERT_FALSE(e.value()->Finish().has_value());
      hits += e.value()->db().warm_rows().hits();
      saved += e.value()->db().dedupe_reads_saved();
    }
    EXPECT_EQ(ExportDir(dir.str()), expected) << "filter bytes " << filter;
    EXPECT_GT(hits, 0u) << "the warm rows were never used";
    if (filter >= (size_t{1} << 20)) {
      EXPECT_GT(saved, 0u);
    }
    if (filter == 0) {
      EXPECT_EQ(saved, 0u);
    }
  }
}


// ---- the memory report (engine/memory.h) ----

uint64_t Part(const std::vector<MemoryPart>& parts, const std::string& name) {
  for (const MemoryPart& p : parts) {
    if (p.name == name) return p.bytes;
  }
  ADD_FAILURE() << "no part " << name;
  return 0;
}

TEST(MemoryReport, OtherIsWhatTheAllocatorHoldsBeyondThePartsAndPinnedBlocksCountOnce) {
  const std::vector<MemoryPart> parts = {
      {"memtables", 10u << 20}, {"block_cache", 5u << 20}, {"block_cache_pinned", 1u << 20}};
  ProcessMemory p;
  p.resident = 50u << 20;
  p.peak_resident = 60u << 20;
  p.allocator_known = true;
  p.allocated = 20u << 20;
  p.allocator_resident = 30u << 20;
  p.retained = 7u << 20;
  EXPECT_EQ(FormatMemory(parts, p),
            "resident 50 MiB (peak 60), allocated 20 MiB (allocator resident 30, retained 7): "
            "memtables 10, block_cache 5, block_cache_pinned 1, other 5");
  p.allocated = 12u << 20;  // parts overstated (the warm arenas counted whole): never negative
  EXPECT_NE(FormatMemory(parts, p).find("other 0"), std::string::npos);
  p.allocator_known = false;
  EXPECT_EQ(FormatMemory(parts, p), "resident 50 MiB (peak 60): memtables 10, block_cache 5, block_cache_pinned 1");
}

TEST(MemoryReport, TheProcessFiguresComeFromTheKernel) {
  const ProcessMemory p = ReadProcessMemory();
  EXPECT_GT(p.resident, 1u << 20);
  EXPECT_GE(p.peak_resident, p.resident);
}

// Each configured part reports what it holds: the filter and the warm rows
// their budgets, the decoded rows more when more are kept, RocksDB its
// memtables; and the metrics carry the same parts.
TEST(MemoryReport, EachPartOfTheStoreReportsWhatItsConfigurationLetsItHold) {
  const Stream st = Synthetic(5, 400, 10);
  const RuleBook rules = MustParseRules(st.rules);
  uint64_t decoded[2] = {0, 0};
  const size_t cache_rows[2] = {1'000, 100'000};
  for (int i = 0; i < 2; ++i) {
    TempDir dir;
    EngineOptions opt;
    opt.batch_events = 500;
    opt.db.sync_commits = false;
    opt.db.cache_rows_max = cache_rows[i];
    opt.db.warm_rows_bytes = 1 << 20;
    opt.db.dedupe_filter_bytes = 64 << 10;
    auto e = Engine::Open(dir.str(), rules, opt);
    ASSERT_TRUE(e.ok()) << e.error().message;
    Metrics metrics;
    metrics.WatchDb(e.value()->db().raw(), e.value()->db().columns(), dir.str());
    e.value()->set_metrics(&metrics);
    std::istringstream in(st.events);
    ASSERT_FALSE(e.value()->IngestJsonLines(in, "stream.jsonl").has_value());
    const std::vector<MemoryPart> parts = e.value()->Memory();
    std::vector<std::string> names;
    for (const MemoryPart& p : parts) names.push_back(p.name);
    EXPECT_EQ(names, (std::vector<std::string>{"memtables", "table_readers", "block_cache", "block_cache_pinned",
                                               "decoded_rows", "warm_rows", "seen_filter", "commit_buffers", "timers"}));
    EXPECT_EQ(Part(parts, "seen_filter"), 64u << 10);
    EXPECT_GT(Part(parts, "warm_rows"), 512u << 10);
    EXPECT_LE(Part(parts, "warm_rows"), 1u << 20);
    EXPECT_GT(Part(parts, "memtables"), 0u);
    EXPECT_GT(Part(parts, "commit_buffers"), 0u);
    EXPECT_EQ(Part(parts, "timers") > 0, e.value()->processor().timers() > 0);
    decoded[i] = Part(parts, "decoded_rows");
    const std::string text = metrics.Scrape();
    for (const char* name : {"resident", "memtables", "block_cache", "decoded_rows", "warm_rows"}) {
      EXPECT_NE(text.find(fmt::format(R"(fission_memory_bytes{{part="{}"}})", name)), std::string::npos) << name;
    }
    EXPECT_NE(text.find(R"(fission_memory_bytes{part="seen_filter"} 65536)"), std::string::npos);
  }
  EXPECT_GT(decoded[0], 0u);
  EXPECT_GT(decoded[1], 2 * decoded[0]) << "keeping 100 times the rows should hold more memory";
}

}  // namespace
}  // namespace fission::test
