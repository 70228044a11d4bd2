// The embedded runtime: the event log as source, the typed core (Processor)
// as fold, the StateDb as store, wired together with one commit per batch.
//
// Ingest folds arriving lines in memory, appends them to the embedded log,
// then checkpoints: each commit holds the batch's log records and history;
// every few commits a full checkpoint adds the entities changed since the
// last one, once each, with the new log position, in the same WriteBatch
// (see state_db.cc for why this order is crash-safe). Opening an Engine loads the rows a previous run
// checkpointed, then catches up on any log records a crash left unprocessed.
#pragma once

#include <chrono>
#include <functional>
#include <istream>
#include <memory>
#include <optional>
#include <string>

#include "engine/metrics.h"
#include "engine/store/state_db.h"
#include "events/rules.h"
#include "projections/processor.h"

namespace fission {

struct EngineOptions {
  ProcessorOptions processor;
  DbOptions db;
  // Lines appended and processed per commit. Larger amortizes the commit's
  // fsync and writes an entity changed many times in a batch fewer times;
  // smaller bounds the work redone after a crash and the commit's buffers.
  // Default 8192.
  size_t batch_events = 8192;
  // A batch also ends once the rows written so far (changes, stored
  // events) reach this many bytes, so a commit's memory stays bounded. Default
  // 32 MiB.
  size_t batch_bytes = 32u << 20;
  // Commits per full checkpoint when the input is the log (ingest, replay,
  // catching up at start): the commits between carry the log records and
  // history alone, and the entities they changed, the stored events,
  // rejections and the position are written at the next full one
  // (Processor::Checkpoint). A full checkpoint also comes early when the rows
  // held for it pass `batch_bytes` or the state passes its memory budget,
  // and ends every input. Larger writes an entity changed in many batches
  // fewer times; smaller bounds what a restart after a crash folds again
  // and what readers of the data dir see late. 1: every commit is full.
  // Default 16 (131,072 events with the default batch).
  size_t checkpoint_every = 16;
  // Decode arriving records on a second thread, a few chunks ahead of the
  // fold (decode_ahead.h). Same results either way. Default on.
  bool decode_thread = true;

  // The process's memory budget (`--memory-mb`, default 1024): the typed
  // state gets what the block cache, the memtables (1.5x while one flushes)
  // and a reserve for commit buffers, decoder and allocator slack leave, at
  // least kMinStateMb. Set db's sizes first.
  static constexpr size_t kDefaultMemoryMb = 1024, kReserveMb = 256, kMinStateMb = 32;
  void SetMemoryBudget(size_t memory_mb) {
    const size_t others = (db.block_cache_bytes >> 20) + (db.write_buffer_bytes >> 20) * 3 / 2 + kReserveMb;
    const size_t state_mb = memory_mb > others + kMinStateMb ? memory_mb - others : kMinStateMb;
    processor.memory_budget_bytes = uint64_t{state_mb} << 20;
  }
};

struct IngestProgress {
  int64_t lines = 0;
  double seconds = 0;
};

class Engine {
 public:
  // Opens the data dir, loads its state and catches up on unprocessed log records.
  static Result<std::unique_ptr<Engine>, DbError> Open(const std::string& data_dir,
                                                       const RuleBook& rules,
                                                       EngineOptions options);

  // Reads JSON lines from `in` (named `source` in positions and rejections)
  // until EOF, appending and processing them batch by batch.
  [[nodiscard]] std::optional<DbError> IngestJsonLines(
      std::istream& in, const std::string& source,
      const std::function<void(const IngestProgress&)>& progress = nullptr);

  // The same for any source of log records (a replay): `next` fills the
  // record and returns true, or returns false at the end. Each record keeps
  // its source, position and lane; it is appended to this data dir's log.
  [[nodiscard]] std::optional<DbError> IngestRecords(
      const std::function<bool(pb::LogRecord*)>& next,
      const std::function<void(const IngestProgress&)>& progress = nullptr);

  // End of the finite input: applies everything buffered, fires due timers,
  // commits, and syncs the WAL if commits were not synced one by one.
  [[nodiscard]] std::optional<DbError> Finish();

  // Stores the processor's state and the current positions atomically (for
  // sources other than the embedded log, which record lane positions).
  [[nodiscard]] std::optional<DbError> Checkpoint();

  const RunStats& stats() const { return processor_->stats(); }
  const Processor& processor() const { return *processor_; }
  // Memory by part (engine/memory.h): RocksDB's (RocksMemory), then FoldMemory's.
  // Seconds Open spent loading the stored state (start-up cost).
  double load_seconds() const { return load_seconds_; }
  std::vector<MemoryPart> Memory() const;
  Processor& mutable_processor() { return *processor_; }
  StateDb& db() { return *db_; }

  // Reports commits and apply latency to `m` (may be null; must outlive the engine).
  void set_metrics(Metrics* m) { metrics_ = m; }
  Metrics* metrics() const { return metrics_; }
  // Offers one Protobuf record, timing it for the metrics.
  Outcome OfferProto(std::string_view source, int64_t position, std::string_view bytes,
                     const std::string& lane);

 private:
  // `checkpoint`: a full checkpoint (StateDb::Commit).
  std::optional<DbError> CommitBatch(bool checkpoint);
  Engine(std::unique_ptr<StateDb> db, const RuleBook& rules, EngineOptions options);
  std::optional<DbError> ProcessLog();
  // `seq`: the record's sequence in this data dir's log.
  void Offer(const pb::LogRecord& r, int64_t seq);
  void Offer(const pb::LogRecord& r, int64_t seq, Result<pb::Event, DecodeError> decoded,
             std::string_view content_key = {});

  std::unique_ptr<StateDb> db_;
  EngineOptions options_;
  std::unique_ptr<Processor> processor_;
  Metrics* metrics_ = nullptr;
  // The parts outside RocksDB: the typed state and the commit buffers.
  std::vector<MemoryPart> FoldMemory() const;
  // Writes what the batch changed (Processor::Checkpoint) and commits it.
  std::optional<DbError> Checkpoint(int64_t log_position, bool full = true);
  // Whether the next checkpoint of log input must be full (checkpoint_every).
  bool FullCheckpointDue() const;
  size_t light_since_full_ = 0;
  double load_seconds_ = 0;
  std::optional<std::chrono::steady_clock::time_point> memory_reported_;
};

// Reads lines of at most `max_bytes`; a longer line is cut to max_bytes + 1
// bytes (so validation can still see that it is too long) and the rest skipped.
class LineReader {
 public:
  LineReader(std::istream& in, size_t max_bytes) : in_(in), max_(max_bytes) {}
  // Next line without its "\n" (and "\r"); false at EOF. A line longer than
  // max_bytes keeps its first max_bytes + 1 bytes (so the decoder can tell
  // it is too long); the rest is skipped, never held.
  bool Next(std::string* line);
  int64_t line_number() const { return line_no_; }

 private:
  std::istream& in_;
  size_t max_;
  int64_t line_no_ = 0;
  // Read from the stream in blocks and searched with memchr (a call per
  // byte was a third of reading): [at_, buf_.size()) is not yet returned.
  std::string buf_;
  size_t at_ = 0;
};

}  // namespace fission
