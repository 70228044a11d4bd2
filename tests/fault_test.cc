// Store faults injected at the file system seam (tests/fault_fs.h): a failed
// write, a failed sync, a full disk, a power cut that loses unsynced data. The
// engine must stop applying on the error, say so, lose nothing it had
// acknowledged, and, once the fault clears, resume to exactly the export of the
// pure fold.
#include <gtest/gtest.h>

#include <sstream>

#include "engine/engine.h"
#include "tests/fault_fs.h"
#include "tests/test_util.h"

namespace fission::test {
namespace {

class StoreFaults : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    stream_ = new Stream(Synthetic(23, 400, 30));
    expected_ = new std::string(PureExport(*stream_));
  }
  static void TearDownTestSuite() {
    delete stream_;
    delete expected_;
  }

  void SetUp() override {
    fs_ = std::make_shared<FaultFs>();
    env_ = rocksdb::NewCompositeEnv(fs_);
  }

  EngineOptions Options() const {
    EngineOptions opt;
    opt.batch_events = 100;
    opt.checkpoint_every = 4;  // faults land in light commits and in full ones
    opt.db.sync_commits = true;
    // Every full checkpoint's rows as a table file ingested: faults land in
    // those writes too (the memtable path is the other tests' and a quarter of
    // the simulator's seeds).
    opt.db.ingest_min_rows = 1;
    opt.db.env = env_.get();
    return opt;
  }

  // Ingests the whole stream with `arm` applied once the data dir is open.
  // Returns the error the ingest stopped on (nullopt if it went through) and
  // the lines acknowledged by commits before it.
  std::pair<std::optional<DbError>, int64_t> IngestWithFault(const std::string& dir,
                                                             const std::function<void()>& arm) {
    const RuleBook rules = MustParseRules(stream_->rules);
    auto e = Engine::Open(dir, rules, Options());
    EXPECT_TRUE(e.ok()) << e.error().message;
    if (!e.ok()) return {DbError{"open failed"}, 0};
    arm();
    std::istringstream in(stream_->events);
    int64_t acknowledged = 0;
    auto err = e.value()->IngestJsonLines(in, "stream.jsonl", [&](const IngestProgress& p) { acknowledged = p.lines; });
    if (!err) err = e.value()->Finish();
    appends_until_finish_ = fs_->appends();  // closing the database (a memtable flush) appends more
    syncs_until_finish_ = fs_->wal_syncs();
    return {err, acknowledged};
  }

  // The fault cleared, a new process re-feeds the whole file and ends it.
  void ResumeAndCheck(const std::string& dir, int64_t acknowledged) {
    fs_->ClearFaults();
    const RuleBook rules = MustParseRules(stream_->rules);
    auto e = Engine::Open(dir, rules, Options());
    ASSERT_TRUE(e.ok()) << e.error().message;
    // Nothing a commit acknowledged was lost.
    EXPECT_GE(e.value()->processor().meta().log_position(), acknowledged);
    std::istringstream in(stream_->events);
    ASSERT_FALSE(e.value()->IngestJsonLines(in, "stream.jsonl").has_value());
    ASSERT_FALSE(e.value()->Finish().has_value());
    e.value().reset();
    EXPECT_TRUE(ExportDir(dir) == *expected_) << "the resumed export differs from the pure fold's";
  }

  // How many appends, and syncs of the write-ahead log (one per full
  // checkpoint), a clean ingest of the whole stream makes before it is
  // acknowledged, to place faults inside it.
  struct Counts {
    int64_t appends = 0, wal_syncs = 0;
  };
  Counts CountsOfACleanRun() {
    TempDir dir;
    const Counts before{fs_->appends(), fs_->wal_syncs()};
    auto [err, acked] = IngestWithFault(dir.str(), [] {});
    EXPECT_FALSE(err.has_value()) << err->message;
    return {appends_until_finish_ - before.appends, syncs_until_finish_ - before.wal_syncs};
  }

  static inline Stream* stream_ = nullptr;
  static inline std::string* expected_ = nullptr;
  std::shared_ptr<FaultFs> fs_;
  int64_t appends_until_finish_ = 0, syncs_until_finish_ = 0;
  std::unique_ptr<rocksdb::Env> env_;
};

TEST_F(StoreFaults, AFailedWriteStopsTheIngestAndAResumeMatchesTheFold) {
  const int64_t total = CountsOfACleanRun().appends;
  ASSERT_GT(total, 40);
  for (int64_t at : {int64_t{3}, total / 3, total * 4 / 5}) {
    TempDir dir;
    const int64_t injected = fs_->faults_injected();
    auto [err, acked] = IngestWithFault(dir.str(), [&] { fs_->FailWriteAt(at); });
    ASSERT_GT(fs_->faults_injected(), injected) << "the fault at append " << at << " was never hit";
    ASSERT_TRUE(err.has_value()) << "a failed write at append " << at << " went unreported";
    EXPECT_NE(err->message.find("FaultFs"), std::string::npos) << err->message;
    ResumeAndCheck(dir.str(), acked);
  }
}

TEST_F(StoreFaults, AFailedSyncStopsTheIngestAndAResumeMatchesTheFold) {
  const int64_t total = CountsOfACleanRun().wal_syncs;
  ASSERT_GT(total, 6);
  for (int64_t at : {int64_t{1}, total / 3, total * 2 / 3}) {
    TempDir dir;
    auto [err, acked] = IngestWithFault(dir.str(), [&] { fs_->FailWalSyncAt(at); });
    ASSERT_TRUE(err.has_value()) << "a failed sync at sync " << at << " of " << total << " (of the write-ahead log) went unreported";
    EXPECT_NE(err->message.find("sync"), std::string::npos) << err->message;
    ResumeAndCheck(dir.str(), acked);
  }
}

TEST_F(StoreFaults, ADiskFullStopsTheIngestUntilSpaceIsFreed) {
  const int64_t total = CountsOfACleanRun().appends;
  TempDir dir;
  auto [err, acked] = IngestWithFault(dir.str(), [&] { fs_->DiskFullAfter(total / 2); });
  ASSERT_TRUE(err.has_value());
  EXPECT_NE(err->message.find("disk full"), std::string::npos) << err->message;
  ResumeAndCheck(dir.str(), acked);
}

TEST_F(StoreFaults, APowerCutLosesOnlyUnsyncedWritesAndARestartMatchesTheFold) {
  const int64_t total = CountsOfACleanRun().appends;
  // Not near the end: the commits are written on the writer thread while
  // RocksDB flushes on its own, so the last appends of a run may be a flush
  // after the last commit, which a power cut would not interrupt.
  for (int64_t at : {total / 5, total / 2, total * 7 / 10}) {
    TempDir dir;
    auto [err, acked] = IngestWithFault(dir.str(), [&] { fs_->CutPowerAt(at); });
    ASSERT_TRUE(err.has_value()) << "the power cut at append " << at << " went unnoticed";
    // The process is gone; what the disk kept is what was synced.
    ASSERT_TRUE(fs_->DropUnsyncedData().ok());
    ResumeAndCheck(dir.str(), acked);
  }
}

}  // namespace
}  // namespace fission::test
