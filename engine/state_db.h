// StateDb: the durable Store, and the embedded event log, in one RocksDB.
//
// Changes made through the Store interface are buffered in a write-back cache
// and written by Commit() in a single rocksdb::WriteBatch, together with the
// processor's meta row (watermark, counters, log position). A crash at any
// point therefore leaves the database at the last commit, and the engine
// resumes by re-reading the log after the stored position: nothing is lost
// and nothing is applied twice.
//
// Scan() sees the committed rows with the uncommitted changes over them,
// except PutRow's, which become visible at the commit (as for FindRow).
//
// Not thread-safe; one process opens a data dir at a time (RocksDB's LOCK).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "events/types.h"
#include "fission/v1/events.pb.h"
#include "engine/memory.h"
#include "engine/warm_rows.h"
#include "projections/store.h"

#include <rocksdb/write_batch.h>

namespace rocksdb {
class ColumnFamilyHandle;
class DB;
class Env;
struct ColumnFamilyOptions;
struct Options;
}

namespace fission {

struct DbOptions {
  // fsync the WAL on every Commit. Off loses the last commits on power loss
  // (never on a process crash); on costs one fsync per batch. Default on.
  bool sync_commits = true;
  // Rows kept decoded in the write-back cache between commits; the ones
  // evicted go to the warm rows below. A decoded row takes about 650 bytes,
  // an encoded one about 150: on 3M events, 50k decoded rows with 128 MiB of
  // warm rows ingested in 128 s (648 MB peak), 200k with no warm rows in 164 s
  // (537 MB). Default 50k.
  size_t cache_rows_max = 50'000;
  // RocksDB block cache, which also holds indexes and filters. Default 64 MiB.
  size_t block_cache_bytes = 64u << 20;
  // RocksDB memtables of both column families together (a full one is
  // flushed while the next fills, so up to about 1.5x this is held). On 3M
  // events 64 MiB was faster than 128 (smaller skip lists) and than 32
  // (which compacts twice as much). Default 64 MiB.
  size_t write_buffer_bytes = 64u << 20;
  // The audit column family (history, stored events, tier changes, the log)
  // takes writes in a vector memtable: an insert is an append, which made a
  // 500k-event ingest 1.7x faster than a skip list. Reading it unflushed sorts a
  // copy, so this process's own reads of those rows (export, replay, a lane
  // drop) flush it first; a process that serves queries from its own writer
  // (`fission run --listen`) turns it off. Followers and read-only opens
  // always use a skip list. Default on.
  bool audit_vector_memtable = true;
  // Rows evicted from the decoded cache are kept encoded in memory, up to
  // this many bytes (WarmRows), so reloading one parses bytes instead of
  // reading RocksDB. About 150 bytes a row (140 to 150 measured at 3M and
  // 5M events: about 700k rows in 100 MiB). Writers only. Default 128 MiB.
  size_t warm_rows_bytes = 128u << 20;
  // A Bloom filter of the dedupe keys written (SeenFilter), built at open by
  // scanning them: a new event's dedupe probe, which always misses, then
  // skips RocksDB. Good to about 13 bits per key (16 MiB: 10M events at 1%
  // false positives); fuller, it answers "perhaps" more often and saves
  // fewer reads. 0 disables it. Writers only. Default 16 MiB.
  size_t dedupe_filter_bytes = 16u << 20;
  // The RocksDB environment (file system) to open the data dir through; not
  // owned. Null: the default. Tests pass one that injects faults.
  rocksdb::Env* env = nullptr;
};

struct DbError {
  std::string message;
};

// The RocksDB options every data dir is opened with, and those of its
// default column family, which holds the rows the fold reads back (benchmarks
// measure raw RocksDB ceilings with exactly these).
rocksdb::Options RocksOptions(const DbOptions& options);

// The data dir's second column family, "audit": the tables written once and
// never read by the fold (history versions H, stored events E, tier changes
// T) and the embedded log. They are half of every batch's keys. Its memtable
// is a vector (an insert is an append, sorted once at flush) and its tables
// carry no bloom filters: nothing probes them for absent keys. `writer` false
// (read-only and follower opens): a skip-list memtable, which readers seek in.
rocksdb::ColumnFamilyOptions AuditColumnOptions(const DbOptions& options, bool writer);
inline constexpr char kAuditColumn[] = "audit";
// Whether rows whose full key starts with `tag` (a Table byte, or the log's
// 'l') live in the audit column family.
inline bool InAuditColumn(char tag) {
  return tag == static_cast<char>(Table::kHistory) || tag == static_cast<char>(Table::kEvent) ||
         tag == static_cast<char>(Table::kTierChange) || tag == 'l';
}

class StateDb final : public Store {
 public:
  // Opens (creating if needed) the data dir.
  static Result<std::unique_ptr<StateDb>, DbError> Open(const std::string& dir, DbOptions options);
  // Opens an existing data dir read-only (export, query while nothing writes).
  // A reader of the log alone (replay's source) needs little block cache: the
  // log cursor reads past it.
  static Result<std::unique_ptr<StateDb>, DbError> OpenReadOnly(
      const std::string& dir, size_t block_cache_bytes = DbOptions{}.block_cache_bytes);
  // Opens an existing data dir as a RocksDB secondary: read-only, while
  // another process may be writing it; CatchUp() moves the view forward.
  // `scratch_dir` holds the secondary's own files.
  static Result<std::unique_ptr<StateDb>, DbError> OpenFollower(const std::string& dir,
                                                                const std::string& scratch_dir);
  [[nodiscard]] std::optional<DbError> CatchUp();

  // The database, for readers on other threads (the query API). RocksDB
  // reads are thread-safe; they see committed state only.
  rocksdb::DB* raw() const { return db_.get(); }
  // The column family that holds rows of `t` (InAuditColumn).
  rocksdb::ColumnFamilyHandle* column(Table t) const;
  rocksdb::ColumnFamilyHandle* audit_column() const { return audit_; }
  const std::vector<rocksdb::ColumnFamilyHandle*>& columns() const { return handles_; }
  ~StateDb() override;

  // Store
  const google::protobuf::MessageLite* FindRow(Table t, std::string_view key) override;
  google::protobuf::MessageLite* MutableRow(Table t, std::string_view key) override;
  // No read: a new row's key is absent from the cache and the database alike.
  google::protobuf::MessageLite* CreateRow(Table t, std::string_view key) override;
  // No read either; the row may be stored, so a later erase deletes it.
  google::protobuf::MessageLite* OverwriteRow(Table t, std::string_view key) override;
  void EraseRow(Table t, std::string_view key) override;
  void PutRow(Table t, std::string_view key, std::string_view bytes) override;
  // Merges the uncommitted changes of `t` (sorted per call: cheap for a
  // scan now and then, not for one per event) over the committed rows.
  void ScanFrom(Table t, std::string_view prefix, std::string_view from, const ScanFn& fn) override;

  // Writes every buffered change atomically. On error nothing was written and
  // the caller must stop applying (the cache is ahead of the database).
  [[nodiscard]] std::optional<DbError> Commit();
  size_t uncommitted() const { return dirty_ + blind_rows_; }
  // Makes every write so far durable (fsyncs the WAL): ends a run whose
  // commits were not synced one by one (DbOptions::sync_commits off).
  [[nodiscard]] std::optional<DbError> Sync();
  // Bytes of PutRow values waiting for the next commit (history versions and
  // stored events: the bulk of a batch).
  size_t uncommitted_bytes() const { return blind_bytes_; }

  // Embedded log. Append assigns consecutive sequence numbers after log_head()
  // and writes the records (not synced; the next synced Commit covers them).
  [[nodiscard]] std::optional<DbError> AppendLog(const std::vector<pb::LogRecord>& records);
  int64_t log_head() const { return log_head_; }
  // Visits log records with sequence in (after, until], in order, until fn returns false.
  void ReadLog(int64_t after, int64_t until,
               const std::function<bool(int64_t seq, const pb::LogRecord&)>& fn);

  // A pull-style reader of the log from sequence `after` + 1 (replay reads
  // another data dir's log with it). Valid while this StateDb lives.
  class LogCursor {
   public:
    virtual ~LogCursor() = default;
    // The next record; false at the end. Throws on a corrupt record.
    virtual bool Next(int64_t* seq, pb::LogRecord* r) = 0;
  };
  std::unique_ptr<LogCursor> NewLogCursor(int64_t after);

  // Approximate on-disk bytes (SST + WAL).
  uint64_t DiskBytes() const;

  // The caches in front of RocksDB, for stats.
  const WarmRows& warm_rows() const { return warm_; }
  const SeenFilter& seen_filter() const { return seen_; }
  // Dedupe probes that the filter answered without a read.
  uint64_t dedupe_reads_saved() const { return dedupe_reads_saved_; }
  // What this store holds in memory outside RocksDB (whose parts RocksMemory
  // reads), by part (engine/memory.h): the decoded rows (estimated from their keys,
  // cache nodes and encoded sizes: a lower bound), the warm rows (both arenas
  // whole), the seen filter and the commit buffers. Walks the decoded cache:
  // call it per report, not per event.
  std::vector<MemoryPart> CacheMemory() const;

 private:
  struct Entry {
    std::unique_ptr<google::protobuf::MessageLite> row;  // null: absent
    bool dirty = false;
    bool in_db = false;  // the database holds a value for this key
    bool referenced = false;  // read again since the last eviction sweep (CLOCK)
  };
  StateDb(std::unique_ptr<rocksdb::DB> db, std::vector<rocksdb::ColumnFamilyHandle*> handles,
          DbOptions options, std::string dir);
  rocksdb::ColumnFamilyHandle* ColumnOf(std::string_view full_key) const;
  // Flushes the audit column's vector memtable before this process reads it.
  void PrepareAuditReads();
  // Adds every stored dedupe key to seen_ (at a writer's open).
  void BuildSeenFilter();
  std::pair<const std::string*, Entry*> Load(Table t, std::string_view key);
  // The cache entry of (t, key) without reading the database; a new entry
  // gets in_db = `in_db_if_new`.
  std::pair<const std::string*, Entry*> Slot(Table t, std::string_view key, bool in_db_if_new);

  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;  // default, audit; owned
  rocksdb::ColumnFamilyHandle* audit_ = nullptr;
  bool writer_ = false;           // opened by Open (flushes its memtables at a clean close)
  bool vector_audit_ = false;     // the audit column's memtable is a vector
  bool audit_unflushed_ = false;  // it may hold rows written by this process
  DbOptions options_;
  std::string dir_;
  void MarkDirty(const std::string& key, Entry& e);
  // Only between commits (nothing is dirty): drops rows not read again since
  // the last sweep, then others, down to 3/4 of cache_rows_max.
  void Evict();

  // Node-based: references to keys and entries stay valid until erased.
  std::unordered_map<std::string, Entry> cache_;
  // Behind cache_: rows it evicted, encoded (a key is in at most one of the
  // two); and the dedupe keys ever written.
  WarmRows warm_;
  SeenFilter seen_;
  uint64_t dedupe_reads_saved_ = 0;
  std::vector<std::pair<const std::string*, Entry*>> dirty_list_;
  size_t dirty_ = 0;
  int64_t log_head_ = 0;
  std::string scratch_;
  std::string lookup_;  // Load's key buffer
  // The next commit's batch: PutRow's rows go in as they come; Commit adds
  // the dirty rows. blind_rows_ and blind_bytes_ count PutRow's.
  size_t blind_rows_ = 0;
  size_t blind_bytes_ = 0;
  std::string put_key_;
  // Commit's scratch, kept across commits for their capacity.
  struct CommitOp {
    std::string_view key;
    const google::protobuf::MessageLite* row;  // null: delete
  };
  std::vector<CommitOp> ops_;
  std::string value_;
  rocksdb::WriteBatch batch_;
  rocksdb::WriteBatch log_batch_;  // AppendLog's, between a batch's rows and its commit
};

}  // namespace fission
