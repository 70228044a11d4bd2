// The RocksDB engine against the pure fold: same stream, same export, however
// it is batched, restarted or re-fed.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <random>
#include <set>
#include <sstream>

#include <rocksdb/db.h>

#include "engine/decode_ahead.h"
#include "engine/engine.h"
#include "events/decode.h"
#include "projections/export.h"
#include "replay/synth.h"
#include "tests/scenario.h"
#include "tests/test_util.h"

namespace fission::test {
namespace {

namespace fs = std::filesystem;

void Ingest(const std::string& dir, const RuleBook& rules, const std::string& events, size_t batch, bool finish,
            bool decode_thread = true) {
  EngineOptions opt;
  opt.batch_events = batch;
  opt.decode_thread = decode_thread;
  opt.db.sync_commits = false;
  auto e = Engine::Open(dir, rules, opt);
  ASSERT_TRUE(e.ok()) << e.error().message;
  std::istringstream in(events);
  ASSERT_FALSE(e.value()->IngestJsonLines(in, "stream.jsonl").has_value());
  if (finish) {
    ASSERT_FALSE(e.value()->Finish().has_value());
  }
}

TEST(Engine, MatchesThePureFoldWhateverTheBatchSizeDecodedOnEitherThread) {
  const Stream st = Synthetic(7, 300, 20);
  const std::string expected = PureExport(st);
  ASSERT_GT(expected.size(), 10'000u);
  RuleBook rules = MustParseRules(st.rules);
  for (bool decode_thread : {true, false}) {
    for (size_t batch : {size_t{1}, size_t{97}, size_t{100'000}}) {
      TempDir dir;
      Ingest(dir.str(), rules, st.events, batch, true, decode_thread);
      EXPECT_EQ(ExportDir(dir.str()), expected) << "batch " << batch << ", decode thread " << decode_thread;
    }
  }
}

// Small batches, a full checkpoint every `every` commits, unsynced; table
// files from `min_rows` rows (0: through the memtables).
EngineOptions CheckpointOptions(size_t batch, size_t every, size_t min_rows) {
  EngineOptions opt;
  opt.batch_events = batch;
  opt.checkpoint_every = every;
  opt.db.sync_commits = false;
  opt.db.ingest_min_rows = min_rows;
  return opt;
}

TEST(Engine, CheckpointsIngestedAsTableFilesEqualThoseWrittenThroughTheMemtable) {
  const Stream st = Synthetic(11, 300, 20);
  const std::string expected = PureExport(st);
  RuleBook rules = MustParseRules(st.rules);
  for (size_t min_rows : {size_t{0}, size_t{1}, size_t{200}}) {
    TempDir dir;
    const EngineOptions opt = CheckpointOptions(50, 3, min_rows);
    int64_t ingested = 0;
    {
      auto e = Engine::Open(dir.str(), rules, opt);
      ASSERT_TRUE(e.ok()) << e.error().message;
      std::istringstream in(st.events);
      ASSERT_FALSE(e.value()->IngestJsonLines(in, "stream.jsonl").has_value());
      ASSERT_FALSE(e.value()->Finish().has_value());
      ingested = e.value()->db().ingested_checkpoints();
    }
    if (min_rows == 0) {
      EXPECT_EQ(ingested, 0);
    } else {
      EXPECT_GT(ingested, 0) << "min_rows " << min_rows;
    }
    // No table file is left behind by a checkpoint.
    for (const auto& f : fs::directory_iterator(dir.str())) {
      EXPECT_FALSE(f.path().filename().string().starts_with("fission-ingest-")) << f.path();
    }
    EXPECT_EQ(ExportDir(dir.str()), expected) << "min_rows " << min_rows;
    // A writer reopening it goes on from where it stopped.
    auto again = Engine::Open(dir.str(), rules, opt);
    ASSERT_TRUE(again.ok()) << again.error().message;
    EXPECT_EQ(again.value()->processor().meta().log_position(), again.value()->db().log_head());
  }
}

TEST(Engine, LogRecordsPastTheHeadLeftByACrashAfterTheLogsTableFileAreFoldedAtTheNextOpen) {
  // A checkpoint's log goes in as a table file before the WriteBatch that
  // moves the log head: a crash between leaves records past the head, with
  // the state behind them. They are the log all the same (their input was
  // taken), so the next open folds them, as it does a light commit's.
  const Stream st = Synthetic(13, 200, 15);
  const std::string expected = PureExport(st);
  RuleBook rules = MustParseRules(st.rules);
  std::vector<std::string> lines;
  std::istringstream events(st.events);
  for (std::string line; std::getline(events, line);) lines.push_back(line);
  ASSERT_GT(lines.size(), 400u);
  const size_t half = lines.size() / 2;
  std::string first_half;
  for (size_t i = 0; i < half; ++i) first_half += lines[i] + "\n";
  TempDir dir;
  EngineOptions opt;
  opt.batch_events = 64;
  opt.db.sync_commits = false;
  int64_t head = 0;
  {
    auto e = Engine::Open(dir.str(), rules, opt);
    ASSERT_TRUE(e.ok()) << e.error().message;
    std::istringstream in(first_half);
    ASSERT_FALSE(e.value()->IngestJsonLines(in, "stream.jsonl").has_value());
    head = e.value()->db().log_head();
    // The rest of the input, as the crashed checkpoint's table file left
    // it: in the log's family, past the head, which still says `head`.
    StateDb& db = e.value()->db();
    for (size_t i = half; i < lines.size(); ++i) {
      pb::LogRecord r;
      r.set_source("stream.jsonl");
      r.set_position(static_cast<int64_t>(i + 1));
      r.set_payload(lines[i]);
      ASSERT_TRUE(db.raw()
                      ->Put(rocksdb::WriteOptions(), db.log_column(),
                            LogRecordKey(head + static_cast<int64_t>(i - half) + 1), r.SerializeAsString())
                      .ok());
    }
  }
  {
    auto e = Engine::Open(dir.str(), rules, opt);
    ASSERT_TRUE(e.ok()) << e.error().message;
    EXPECT_EQ(e.value()->db().log_head(), head + static_cast<int64_t>(lines.size() - half));
    EXPECT_EQ(e.value()->processor().meta().log_position(), e.value()->db().log_head());
    ASSERT_FALSE(e.value()->Finish().has_value());
  }
  EXPECT_EQ(ExportDir(dir.str()), expected);
}

TEST(Engine, ProgressCountsTheLinesOfTheLightCommitsAFullCheckpointWrote) {
  // Light commits are held for the full checkpoint under bulk load; the
  // progress a caller sees (ingest's and replay's percent) still counts
  // every line through the last checkpoint written, and ends at all.
  const Stream st = Synthetic(5, 200, 15);
  RuleBook rules = MustParseRules(st.rules);
  const int64_t lines = static_cast<int64_t>(std::count(st.events.begin(), st.events.end(), '\n'));
  for (size_t min_rows : {size_t{0}, size_t{1}}) {
    TempDir dir;
    auto e = Engine::Open(dir.str(), rules, CheckpointOptions(40, 4, min_rows));
    ASSERT_TRUE(e.ok()) << e.error().message;
    std::vector<int64_t> seen;
    std::istringstream in(st.events);
    ASSERT_FALSE(e.value()->IngestJsonLines(in, "stream.jsonl", [&](const IngestProgress& p) { seen.push_back(p.lines); })
                     .has_value());
    ASSERT_FALSE(seen.empty());
    EXPECT_EQ(seen.back(), lines) << "min_rows " << min_rows;
    EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));
    // Between, it moves in whole checkpoints: four batches at a time.
    EXPECT_TRUE(std::any_of(seen.begin(), seen.end(), [&](int64_t n) { return n == 160; })) << "min_rows " << min_rows;
  }
}

TEST(Engine, ALightCommitsStoredRowsWaitForTheCheckpointWhicheverWayItIsWritten) {
  // A restart loads stored events, rejections and tier changes as what the
  // last checkpoint saw: none may land before the checkpoint that holds the
  // position they belong to (a tier change would outlive the member row
  // that counts it, after a restart under other rules). The store carries a
  // light commit's default-family rows to the next checkpoint, through the
  // memtables or by bulk load; its log and history go ahead.
  for (size_t min_rows : {size_t{0}, size_t{1}}) {
    TempDir dir;
    DbOptions opt;
    opt.ingest_min_rows = min_rows;
    auto db = StateDb::Open(dir.str(), opt);
    ASSERT_TRUE(db.ok()) << db.error().message;
    StateDb& d = *db.value();
    const std::string key = TierChangeKey("default", "m1", 0);
    pb::LogRecord r;
    r.set_source("stream.jsonl");
    r.set_position(1);
    r.set_payload("{}");
    d.AppendLog({r});
    d.Put(Table::kTierChange, key, "silver");
    ASSERT_FALSE(d.Commit(/*checkpoint=*/false).has_value());
    ASSERT_FALSE(d.Drain().has_value());
    std::string v;
    EXPECT_FALSE(d.GetRow(Table::kTierChange, key, &v)) << "min_rows " << min_rows;
    d.Put(Table::kMeta, "", "position 1");
    ASSERT_FALSE(d.Commit(/*checkpoint=*/true).has_value());
    ASSERT_FALSE(d.Drain().has_value());
    ASSERT_TRUE(d.GetRow(Table::kTierChange, key, &v)) << "min_rows " << min_rows;
    EXPECT_EQ(v, "silver");
    int64_t logged = 0;
    d.ReadLog(0, d.log_head(), [&](int64_t, const pb::LogRecord&) { return ++logged > 0; });
    EXPECT_EQ(logged, 1) << "min_rows " << min_rows;
  }
}

TEST(Engine, AnIngestedCheckpointHoldsEveryKeyInByteOrderThoughTheyShareLongPrefixes) {
  // The writer sorts a checkpoint's keys by 16 bytes held inline past the
  // prefix they share; a table file takes them only in strict byte order.
  // Keys that are prefixes of one another, differ only past the inline
  // bytes, end inside them or hold zero bytes, and one written twice.
  std::mt19937_64 rng(17);
  std::set<std::string> keys;
  const std::string shared = "tenant-with-a-long-name\0m";
  for (int i = 0; i < 3000; ++i) {
    std::string k = shared.substr(0, rng() % shared.size());
    const size_t extra = rng() % 40;
    for (size_t j = 0; j < extra; ++j) k.push_back("\0\1ab\xff"[rng() % 5]);
    keys.insert(k);
  }
  TempDir dir;
  DbOptions opt;
  opt.ingest_min_rows = 1;
  {
    auto db = StateDb::Open(dir.str(), opt);
    ASSERT_TRUE(db.ok()) << db.error().message;
    for (const std::string& k : keys) db.value()->Put(Table::kShare, k, "first");
    for (const std::string& k : keys) {
      if (k.size() % 3 == 0) db.value()->Put(Table::kShare, k, k);  // the later write wins
    }
    ASSERT_FALSE(db.value()->Commit(true).has_value());
    ASSERT_FALSE(db.value()->Drain().has_value());
    EXPECT_EQ(db.value()->ingested_checkpoints(), 1);
  }
  auto db = StateDb::OpenReadOnly(dir.str());
  ASSERT_TRUE(db.ok()) << db.error().message;
  std::vector<std::string> read;
  db.value()->ScanRows(Table::kShare, [&](std::string_view k, std::string_view v) {
    read.emplace_back(k);
    EXPECT_EQ(v, k.size() % 3 == 0 ? k : std::string_view("first")) << "key of " << k.size() << " bytes";
  });
  EXPECT_EQ(read, std::vector<std::string>(keys.begin(), keys.end()));
}

// What came back decoded, comparable: the event's bytes, or the rejection.
std::string Describe(const Result<pb::Event, DecodeError>& d) {
  if (d.ok()) return "event " + d.value().SerializeAsString();
  const DecodeError& e = d.error();
  return fmt::format("error {} | {} | {} | {} | {}", e.reason, e.detail, e.event_id.value_or("-"), e.tenant,
                     e.content_key);
}

// Records of every kind a source hands over: the synthetic stream's lines
// (hostile ones included), the same events as Protobuf, and bytes that are
// no Protobuf message at all.
std::vector<pb::LogRecord> MixedRecords() {
  const Stream st = Synthetic(5, 1000, 14);
  std::vector<pb::LogRecord> out;
  std::istringstream in(st.events);
  std::string line;
  int64_t n = 0;
  while (std::getline(in, line)) {
    pb::LogRecord& r = out.emplace_back();
    r.set_source("stream.jsonl");
    r.set_position(++n);
    r.set_payload(line);
    if (n % 3 == 0) {
      auto d = DecodeJson(line);
      if (d.ok()) {
        pb::LogRecord& p = out.emplace_back(r);
        p.set_encoding(pb::LogRecord::PROTOBUF);
        p.set_payload(d.value().SerializeAsString());
      }
    }
    if (n % 101 == 0) {
      pb::LogRecord& g = out.emplace_back(r);
      g.set_encoding(pb::LogRecord::PROTOBUF);
      g.set_payload("\xff\xff not a message");
    }
  }
  return out;
}

// DecodeAhead hands every chunk back in the order submitted, each record
// decoded exactly as Decode() decodes it on the caller's thread, whatever the
// chunk sizes and however far ahead the caller submits.
TEST(Engine, DecodingAheadGivesBackEveryChunkInOrderDecodedAsOnTheCallersThread) {
  const std::vector<pb::LogRecord> records = MixedRecords();
  ASSERT_GT(records.size(), 2'000u);
  std::vector<std::string> expected;
  size_t errors = 0, protobuf = 0;
  for (const auto& r : records) {
    const auto d = Decode(r);
    expected.push_back(Describe(d) + " | key " + (d.ok() ? ContentKey(d.value()) : std::string()));
    errors += expected.back().starts_with("error");
    protobuf += r.encoding() == pb::LogRecord::PROTOBUF;
  }
  ASSERT_GT(errors, 5u) << "the stream has hostile lines";
  ASSERT_GT(protobuf, 300u);
  for (bool threaded : {true, false}) {
    std::mt19937_64 rng(threaded ? 1 : 2);
    DecodeAhead d(threaded);
    size_t next = 0;
    std::vector<std::string> got;
    while (got.size() < records.size()) {
      // Submit a few chunks of random sizes (1 to 300 records), then take some.
      for (int k = static_cast<int>(rng() % 5); k > 0 && next < records.size(); --k) {
        auto c = d.NewChunk();
        ASSERT_TRUE(c->empty());
        for (size_t m = 1 + rng() % 300; m > 0 && next < records.size(); --m) c->push_back({records[next++], {}, {}});
        d.Submit(std::move(c));
      }
      for (int k = 1 + static_cast<int>(rng() % 3); k > 0 && d.in_flight() > 0; --k) {
        auto c = d.Take();
        for (const auto& it : *c) {
          EXPECT_EQ(it.record.position(), records[got.size()].position());
          ASSERT_TRUE(it.decoded.has_value());
          got.push_back(Describe(*it.decoded) + " | key " + it.content_key);
        }
        d.Recycle(std::move(c));
      }
    }
    EXPECT_EQ(d.in_flight(), 0u);
    ASSERT_EQ(got.size(), expected.size());
    for (size_t i = 0; i < got.size(); ++i) {
      ASSERT_EQ(got[i], expected[i]) << "record " << i << (threaded ? ", threaded" : "");
    }
  }
}

// A caller that fails mid-stream destroys the decoder with chunks submitted
// and not taken: the worker stops after the chunk it is on, and nothing leaks
// (the sanitizer builds check that).
TEST(Engine, ADecoderDroppedWithChunksInFlightStopsPromptly) {
  const std::vector<pb::LogRecord> records = MixedRecords();
  for (int taken : {0, 1, 3}) {
    DecodeAhead d(true);
    for (int c = 0; c < 40; ++c) {
      auto chunk = d.NewChunk();
      for (size_t i = 0; i < 256; ++i) chunk->push_back({records[(c * 256 + i) % records.size()], {}, {}});
      d.Submit(std::move(chunk));
    }
    for (int t = 0; t < taken; ++t) {
      auto c = d.Take();
      EXPECT_EQ(c->size(), 256u);
      EXPECT_TRUE(c->back().decoded.has_value());
    }
    EXPECT_EQ(d.in_flight(), static_cast<size_t>(40 - taken));
  }
}

// A new process loads the state its predecessor checkpointed (entities,
// dedupe keys, buffered events) and derives the timers from it (pending
// lines, forming groups): stopped half-way without finishing, then fed the
// whole file again, it ends with the pure fold's export, however batched.
TEST(Engine, ARestartLoadsTheCheckpointedStateAndMatchesThePureFold) {
  const Stream st = Synthetic(11, 300, 20);
  const std::string expected = PureExport(st);
  RuleBook rules = MustParseRules(st.rules);
  const size_t half = st.events.find('\n', st.events.size() / 2) + 1;
  for (size_t batch : {size_t{1}, size_t{97}, size_t{100'000}}) {
    TempDir dir;
    Ingest(dir.str(), rules, st.events.substr(0, half), batch, false);
    {
      auto e = Engine::Open(dir.str(), rules, EngineOptions{});
      ASSERT_TRUE(e.ok()) << e.error().message;
      EXPECT_GT(e.value()->processor().timers(), 100u) << "the settlements still pending, derived from the lines";
      EXPECT_GT(e.value()->processor().state().tenants().size(), 0u);
    }
    Ingest(dir.str(), rules, st.events, batch, true);  // the first half again: duplicates
    EXPECT_EQ(ExportDir(dir.str()), expected) << "batch " << batch;
  }
}

// StateDb as a RowSink: puts, deletes and prefix deletes, committed now and
// then, leave the same rows, in the same order, as a MemStore given the same
// calls (what a scan sees after each commit).
TEST(StateDb, CommittedRowsMatchAMemStoreGivenTheSameWrites) {
  TempDir dir;
  auto db = StateDb::Open(dir.str(), DbOptions{});
  ASSERT_TRUE(db.ok()) << db.error().message;
  StateDb& s = *db.value();
  MemStore m;
  std::mt19937_64 rng(5);
  auto tenant = [&] { return "t" + std::to_string(rng() % 3) + (rng() % 4 == 0 ? "\xff" : ""); };
  auto key = [&] { return tenant() + '\0' + std::to_string(rng() % 60); };
  auto dump = [](Store& st, const std::string& prefix, const std::string& from) {
    std::string out;
    st.ScanFrom(Table::kMember, prefix, from, [&](std::string_view k, const google::protobuf::MessageLite& row) {
      out += std::string(k) + "=" + std::to_string(static_cast<const pb::Member&>(row).growth()) + ";";
      return out.size() < 400;  // stopping early stops both alike
    });
    return out;
  };
  int scans = 0, prefix_deletes = 0;
  for (int step = 0; step < 3000; ++step) {
    const int op = static_cast<int>(rng() % 10);
    if (op < 4) {
      const std::string k = key();
      pb::Member row;
      row.set_growth(static_cast<int64_t>(rng() % 1000));
      s.Put(Table::kMember, k, row.SerializeAsString());
      m.Put(Table::kMember, k, row.SerializeAsString());
    } else if (op < 5) {
      const std::string k = key();
      s.Delete(Table::kMember, k);
      m.Delete(Table::kMember, k);
    } else if (op < 6) {
      const std::string p = tenant() + '\0';
      s.DeletePrefix(Table::kMember, p);
      m.DeletePrefix(Table::kMember, p);
      ++prefix_deletes;
    } else {
      ASSERT_FALSE(s.Commit().has_value());
      const std::string prefix = rng() % 2 ? "" : tenant() + '\0';
      const std::string from = rng() % 2 ? "" : key();
      ASSERT_EQ(dump(s, prefix, from), dump(m, prefix, from)) << "step " << step;
      ++scans;
    }
  }
  EXPECT_GT(scans, 300);
  EXPECT_GT(prefix_deletes, 100);
}

// A clean close flushes the memtables: the write-ahead log left behind is
// empty, so a reader opening the data dir (replay's source) loads none of it.
TEST(Engine, ACleanCloseLeavesNoLogForAReaderToLoad) {
  const Stream st = Synthetic(3, 300, 20);
  RuleBook rules = MustParseRules(st.rules);
  TempDir dir;
  Ingest(dir.str(), rules, st.events, 1000, true);
  uintmax_t wal_bytes = 0;
  for (const auto& f : fs::directory_iterator(dir.str())) {
    if (f.path().extension() == ".log") wal_bytes += f.file_size();
  }
  EXPECT_EQ(wal_bytes, 0u);
  auto db = StateDb::OpenReadOnly(dir.str());
  ASSERT_TRUE(db.ok()) << db.error().message;
  uint64_t memtables = 0;
  for (auto* h : db.value()->columns()) {
    uint64_t v = 0;
    ASSERT_TRUE(db.value()->raw()->GetIntProperty(h, "rocksdb.cur-size-all-mem-tables", &v));
    memtables += v;
  }
  EXPECT_LT(memtables, 64u << 10) << "a reader loaded the log";
  EXPECT_EQ(ExportDir(dir.str()), PureExport(st));
}

TEST(Engine, AnExportFromTheWritersOwnStoreSeesEveryUnflushedAuditRow) {
  // The audit rows (tier changes, history, the log) sit in a vector memtable
  // while the writer runs; its own reads flush it first and miss nothing.
  const Stream st = Synthetic(5, 300, 20);
  const std::string expected = PureExport(st);
  RuleBook rules = MustParseRules(st.rules);
  TempDir dir;
  EngineOptions opt;
  opt.db.sync_commits = false;
  ASSERT_TRUE(opt.db.audit_vector_memtable);  // the default
  auto e = Engine::Open(dir.str(), rules, opt);
  ASSERT_TRUE(e.ok()) << e.error().message;
  std::istringstream in(st.events);
  ASSERT_FALSE(e.value()->IngestJsonLines(in, "stream.jsonl").has_value());
  ASSERT_FALSE(e.value()->Finish().has_value());
  std::ostringstream live;
  ExportAll(e.value()->db(), live);
  EXPECT_EQ(live.str(), expected);
  int64_t records = 0;
  e.value()->db().ReadLog(0, INT64_MAX, [&](int64_t, const pb::LogRecord&) { return ++records > 0; });
  EXPECT_EQ(records, e.value()->db().log_head());
}

TEST(Engine, ADataDirOfTheOlderSingleColumnLayoutIsRefusedNotRewritten) {
  TempDir dir;
  {
    rocksdb::Options o;
    o.create_if_missing = true;
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(o, dir.str(), &raw).ok());
    ASSERT_TRUE(raw->Put(rocksdb::WriteOptions(), "v", "fission-2").ok());
    delete raw;
  }
  for (bool read_only : {false, true}) {
    auto db = read_only ? StateDb::OpenReadOnly(dir.str()) : StateDb::Open(dir.str(), DbOptions{});
    ASSERT_FALSE(db.ok());
    EXPECT_NE(db.error().message.find("older fission"), std::string::npos) << db.error().message;
  }
  std::vector<std::string> families;
  ASSERT_TRUE(rocksdb::DB::ListColumnFamilies(rocksdb::Options(), dir.str(), &families).ok());
  EXPECT_EQ(families, std::vector<std::string>{"default"});  // untouched
}

TEST(Engine, AFission6DirIsRefusedForWritingUntouchedAndItsLogStillReads) {
  // Format fission-6 kept the log in the audit family, beside the history.
  TempDir dir;
  pb::LogRecord rec;
  rec.set_source("old.jsonl");
  rec.set_position(1);
  rec.set_payload(Checkin("c1", At(1), "M"));
  {
    rocksdb::Options o;
    o.create_if_missing = true;
    o.create_missing_column_families = true;
    std::vector<rocksdb::ColumnFamilyDescriptor> cfs = {{rocksdb::kDefaultColumnFamilyName, {}}, {"audit", {}}};
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(o, dir.str(), cfs, &handles, &raw).ok());
    std::string head;
    PutBe64(&head, 1);
    ASSERT_TRUE(raw->Put(rocksdb::WriteOptions(), "v", "fission-6").ok());
    ASSERT_TRUE(raw->Put(rocksdb::WriteOptions(), "h", head).ok());
    ASSERT_TRUE(raw->Put(rocksdb::WriteOptions(), handles[1], "l" + head, rec.SerializeAsString()).ok());
    for (auto* h : handles) raw->DestroyColumnFamilyHandle(h);
    delete raw;
  }
  auto writer = StateDb::Open(dir.str(), DbOptions{});
  ASSERT_FALSE(writer.ok());
  EXPECT_NE(writer.error().message.find("fission replay --from " + dir.str()), std::string::npos) << writer.error().message;
  std::vector<std::string> families;
  ASSERT_TRUE(rocksdb::DB::ListColumnFamilies(rocksdb::Options(), dir.str(), &families).ok());
  EXPECT_EQ(families, (std::vector<std::string>{"default", "audit"}));  // untouched
  // What `replay --from` reads: the log, where that format kept it.
  auto reader = StateDb::OpenReadOnly(dir.str());
  ASSERT_TRUE(reader.ok()) << reader.error().message;
  std::vector<std::string> payloads;
  auto cursor = reader.value()->NewLogCursor(0);
  int64_t seq = 0;
  pb::LogRecord r;
  while (cursor->Next(&seq, &r)) payloads.push_back(r.payload());
  EXPECT_EQ(payloads, std::vector<std::string>{rec.payload()});
}

TEST(Engine, ADirWhoseCreationWasKilledBeforeItsFamiliesOpensAsNew) {
  // RocksDB creates the database, then each column family: a kill between
  // leaves a dir with the default family alone and no format row.
  for (const std::vector<std::string>& made : {std::vector<std::string>{}, std::vector<std::string>{"audit"}}) {
    TempDir dir;
    {
      rocksdb::Options o;
      o.create_if_missing = true;
      rocksdb::DB* raw = nullptr;
      ASSERT_TRUE(rocksdb::DB::Open(o, dir.str(), &raw).ok());
      for (const std::string& name : made) {
        rocksdb::ColumnFamilyHandle* h = nullptr;
        ASSERT_TRUE(raw->CreateColumnFamily({}, name, &h).ok());
        raw->DestroyColumnFamilyHandle(h);
      }
      delete raw;
    }
    auto writer = StateDb::Open(dir.str(), DbOptions{});
    ASSERT_TRUE(writer.ok()) << writer.error().message;
    writer.value().reset();
    std::vector<std::string> families;
    ASSERT_TRUE(rocksdb::DB::ListColumnFamilies(rocksdb::Options(), dir.str(), &families).ok());
    EXPECT_EQ(families, (std::vector<std::string>{"default", "audit", "log"}));
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
