// StateDb: the RocksDB store of one data dir, and its embedded event log.
//
// The writer's side is a RowSink: the typed core (projections/processor.h)
// puts its rows into the next commit's WriteBatch (each entity the batch
// changed once, written behind at the checkpoint; the write-once rows as they
// happen), and Commit() writes that batch, with the processor's meta row and
// log position in it, atomically. A crash at any point leaves the database
// at the last commit, and the engine resumes by loading those rows
// (RowSource) and re-reading the log after the stored position: nothing is
// lost and nothing is applied twice.
//
// Readers (export, statements, replay's source, the query API through raw())
// see committed rows through the Store port.
//
// Not thread-safe; one process opens a data dir at a time (RocksDB's LOCK).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "events/types.h"
#include "fission/v1/events.pb.h"
#include "engine/memory.h"
#include "projections/store.h"

#include <rocksdb/write_batch.h>

namespace rocksdb {
class ColumnFamilyHandle;
class SstFileWriter;
class DB;
class Env;
struct ColumnFamilyOptions;
struct Options;
}

namespace fission {

struct DbOptions {
  // fsync the WAL at every Commit that holds a checkpoint (and so every
  // write before it). Off loses the last commits on power loss (never on a
  // process crash); on costs one fsync per checkpoint. A commit between
  // checkpoints is not synced on its own: a power cut loses it and the
  // caller folds its input again from the checkpoint before. Default on.
  bool sync_commits = true;
  // Write each commit on a thread of its own (the writer), so the fold goes
  // on with the next batch while RocksDB inserts this one into its
  // memtables (most of a commit's time). One commit is in flight at a time;
  // Commit() reports a failed write at the next call (or Drain). Off: Commit
  // writes on the caller's thread. Default on.
  bool write_thread = true;
  // RocksDB block cache, which also holds indexes and filters. Default 64 MiB.
  size_t block_cache_bytes = 64u << 20;
  // RocksDB memtables of both column families together (a full one is
  // flushed while the next fills, so up to about 1.5x this is held). On 3M
  // events 64 MiB was faster than 128 (smaller skip lists) and than 32
  // (which compacts twice as much). Default 64 MiB.
  size_t write_buffer_bytes = 64u << 20;
  // The audit and log column families (history as changes, the log) take
  // writes in vector memtables: an insert is an append, which made a
  // 500k-event ingest 1.7x faster than a skip list. Reading it unflushed sorts a
  // copy, so this process's own reads of those rows (export, replay, a lane
  // drop) flush it first; a process that serves queries from its own writer
  // (`fission run --listen`) turns it off. Followers and read-only opens
  // always use a skip list. Default on.
  bool audit_vector_memtable = true;
  // Bulk load. Above 0, the log's and the history's rows are written into
  // table files that stay open from one checkpoint to the next (their keys
  // only grow), and the checkpoint finishes them and has RocksDB ingest
  // them: no write-ahead log, memtable or flush for them, and each lands on
  // the last level, never rewritten. The checkpoint's default-family rows,
  // if at least this many and no range deletion among them, go in as a
  // sorted table file too; fewer go in its WriteBatch. Order: the log's
  // file, the history's, a WriteBatch (the log head, what light commits
  // carried: rows of other families or out of key order), then the default
  // family's file with the meta row. A crash between leaves the log ahead
  // of the state (the next open folds the records past it again); a crash
  // before the checkpoint loses the light commits since the last one,
  // which were not synced before either: their input is fed again. On 1M
  // events ingest took 0.69 of the wall time (ops/BENCHMARKS.md).
  // 0: every commit goes through the memtables, light ones unsynced
  // (`fission run`, whose every commit is a full checkpoint of one poll's
  // batch). Default 4096.
  size_t ingest_min_rows = 4096;
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

// The data dir's other column families, for rows written once, in order of
// their keys, and read rarely: "audit" holds history as changes (V, keyed by
// sequence), "log" the embedded log ('l' be64(seq)). Each only ever grows at
// its end, so its flushed files never overlap and compaction moves them down
// the levels without rewriting them (they shared one family with the tier
// changes until format fission-7, and every merge rewrote all three). Their
// memtables are vectors (an insert is an append, sorted once at flush) and
// their tables carry no bloom filters: nothing probes them for absent keys.
// `writer` false (read-only and follower opens): a skip-list memtable,
// which readers seek in.
rocksdb::ColumnFamilyOptions AuditColumnOptions(const DbOptions& options, bool writer);
// The key of the embedded log's record `seq`: 'l' be64(seq).
std::string LogRecordKey(int64_t seq);
inline constexpr char kAuditColumn[] = "audit";
inline constexpr char kLogColumn[] = "log";
// Whether rows whose full key starts with `tag` (a Table byte) live in the
// audit column family (the log's own has the log alone).
inline bool InAuditColumn(char tag) { return tag == static_cast<char>(Table::kChange); }

class StateDb final : public Store, public RowSink, public RowSource {
 public:
  // Opens (creating if needed) the data dir for writing. A data dir of an
  // older layout is refused with a message naming the command that rebuilds it.
  static Result<std::unique_ptr<StateDb>, DbError> Open(const std::string& dir, DbOptions options);
  // Opens an existing data dir read-only (export, query while nothing writes,
  // replay's source). A reader of the log alone (replay's source) needs
  // little block cache: the log cursor reads past it. An older layout is
  // readable here only for its log (`replay --from` rebuilds from it).
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
  // The log's family; its record `seq` is under LogRecordKey(seq).
  rocksdb::ColumnFamilyHandle* log_column() const { return log_; }
  // Every column family of the data dir (default, audit, and log when it
  // has one of its own).
  const std::vector<rocksdb::ColumnFamilyHandle*>& columns() const { return handles_; }
  ~StateDb() override;

  // Store (committed rows only, the write in flight included: a read waits
  // for it). FindRow's rows are kept until the next commit: for readers that
  // look up a few rows, not for a writer.
  const google::protobuf::MessageLite* FindRow(Table t, std::string_view key) override;
  bool ReadRow(Table t, std::string_view key, google::protobuf::MessageLite* out) override;
  void ScanFrom(Table t, std::string_view prefix, std::string_view from, const ScanFn& fn) override;

  // RowSink: into the next commit's batch.
  void Put(Table t, std::string_view key, std::string_view value) override;
  void Delete(Table t, std::string_view key) override;
  void DeletePrefix(Table t, std::string_view prefix) override;
  // RowSource: committed rows (the commit in flight included: a read waits
  // for it).
  void ScanRows(Table t, std::string_view prefix, const Fn& fn) override;
  bool GetRow(Table t, std::string_view key, std::string* value) override;
  // Reads what earlier commits wrote while the writer thread writes the
  // last: every commit up to the checkpoint before the last one (Commit) is
  // written by then.
  bool GetSettledRow(Table t, std::string_view key, std::string* value) override;
  using RowSource::ScanRows;

  // Writes the batch atomically, with the log records appended since the
  // last commit. With DbOptions::write_thread the write is handed to the
  // writer and Commit returns once the previous write is done: the error it
  // returns is that write's. (A deeper queue, tried at two and three, bought
  // no time on two cores and held 45-130 MB more of buffers on 1M events.)
  // On error nothing of that write was stored and the caller must stop
  // applying (its state is ahead of the database).
  //
  // `checkpoint`: this commit holds a checkpoint of the caller's state: it
  // is synced (DbOptions::sync_commits) and counted by commits_written().
  // A commit that is not one (a light one) writes only its log and history
  // rows; its default-family rows (stored events, rejections, tier changes:
  // what a restart loads) are carried to the next checkpoint and land with
  // it, never ahead of the position they belong to.
  // Under bulk load (DbOptions::ingest_min_rows), nothing of a commit that
  // is not one is readable before the next checkpoint; while the writer is
  // busy, such a commit waits in the buffer and goes with the next.
  [[nodiscard]] std::optional<DbError> Commit(bool checkpoint = true);
  // A commit's buffers larger than this after it is written are freed
  // rather than kept for the next (a full checkpoint's are many times a
  // light one's). 16 MiB regrew them at every checkpoint on 1M events (page
  // faults and zeroing: a tenth of the fold thread); 32 and 96 measured the
  // same there, and 96 held 100 MB more at 10M.
  static constexpr uint64_t kKeepBufferBytes = 32u << 20;
  // Waits for the write in flight; its error, if it failed.
  [[nodiscard]] std::optional<DbError> Drain();
  // Commits written to the database, up to and including the last one that
  // holds a checkpoint (Commit): what a restart resumes from. Commits queued
  // after Commit returned, and written commits after the last checkpoint,
  // are not counted.
  int64_t commits_written() const;
  // Rows of the light commits since the last checkpoint that wait for the
  // next one in the writer's memory (the default family's: stored events,
  // rejections, tier changes; a restart must never load them ahead of the
  // position they belong to), as of the last commit written.
  uint64_t carried_bytes() const { return carried_bytes_.load(); }
  // Bytes waiting for the next commit (past the light commits held in it).
  size_t uncommitted_bytes() const { return fill_->arena.bytes - held_bytes_; }
  // Makes every write so far durable (fsyncs the WAL): ends a run whose
  // commits were not synced one by one (DbOptions::sync_commits off).
  [[nodiscard]] std::optional<DbError> Sync();

  // Embedded log. Append assigns consecutive sequence numbers after log_head()
  // and adds the records to the next commit, which stores them atomically
  // with the effects of processing them and the new position.
  void AppendLog(const std::vector<pb::LogRecord>& records);
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
  // The commit buffers' bytes (engine/memory.h's "commit_buffers").
  uint64_t BufferBytes() const;
  // Opened by OpenFollower: a RocksDB secondary, whose reads take no
  // snapshot (it sees what its last CatchUp saw).
  bool follower() const { return follower_; }
  // Checkpoints whose default-family rows went in as table files
  // (DbOptions::ingest_min_rows), by this process.
  int64_t ingested_checkpoints() const { return ingested_checkpoints_.load(); }

 private:
  StateDb(std::unique_ptr<rocksdb::DB> db, std::vector<rocksdb::ColumnFamilyHandle*> handles,
          DbOptions options, std::string dir);
  // Waits for the commit in flight, so this process reads what it committed;
  // throws if that write failed.
  void WaitWritten();
  // Which of handles_ a row whose full key starts with `tag` goes to.
  enum Column : uint8_t { kDefaultColumn = 0, kAuditColumnIndex = 1, kLogColumnIndex = 2 };
  static Column ColumnOf(char tag);
  // Waits for the commit in flight and flushes the vector memtable of
  // column `c` (audit or log) before this process reads it.
  void PrepareReads(Column c);
  void PrepareReads(Table t) {
    WaitWritten();
    if (InAuditColumn(static_cast<char>(t))) PrepareReads(kAuditColumnIndex);
  }
  const std::string& Full(Table t, std::string_view key);
  // A point read of (t, key) as RocksDB has it now; false when absent.
  bool Read(Table t, std::string_view key, std::string* value);

  // A commit on its way: the operations in the order made, their keys and
  // values in an arena of fixed-size blocks (filling it allocates rarely and
  // never moves what it holds: a full checkpoint's hundred megabytes grew
  // a string by copying; the blocks past kKeepBufferBytes are freed once it
  // is written).
  struct Keyed;  // a key to sort (below)
  struct Op {
    enum Kind : uint8_t { kPut, kDelete, kDeleteRange } kind;
    Column column;
    uint32_t key_len, value_len;
    const char* key;    // in the arena
    const char* value;  // for kDeleteRange, the end key
  };
  struct Arena {
    static constexpr size_t kBlock = 4u << 20;
    std::vector<std::unique_ptr<char[]>> blocks;
    std::vector<size_t> sizes;  // of each block
    size_t block = 0, used = 0;  // the block being filled, and its bytes used
    uint64_t bytes = 0;          // appended since Clear
    // Room for n bytes, contiguous.
    char* Allocate(size_t n);
    // Empties it, keeping blocks up to `keep` bytes.
    void Clear(uint64_t keep);
    uint64_t Capacity() const;
  };
  struct Pending {
    Arena arena;
    std::vector<Op> ops;
    bool checkpoint = true;  // Commit's: synced when DbOptions::sync_commits
    int64_t commits = 1;     // Commit calls it holds (light ones held while the writer was busy, and the last)
    uint64_t Capacity() const { return arena.Capacity() + ops.capacity() * sizeof(Op); }
    void Clear(uint64_t keep) {
      arena.Clear(keep);
      ops.clear();
      if (ops.capacity() * sizeof(Op) > keep) std::vector<Op>().swap(ops);
    }
  };
  void Add(Op::Kind kind, Table t, std::string_view key, std::string_view value);
  // Builds the WriteBatch of `p` (default-family keys sorted, so the skip
  // list inserts each next to its neighbour) and writes it.
  std::optional<DbError> Write(Pending& p);
  // Writes batch_ (synced for a checkpoint), if it holds anything.
  std::optional<DbError> WriteBatch(bool checkpoint);
  // Adds `op` to batch_.
  void Emit(const Op& op);
  // Under bulk load: appends `op` (of the audit or log family) to its open
  // table file, true; false when its key is not past the file's last (then
  // it is carried). A failed write sets *err (and returns true).
  bool Streams(const Op& op, std::optional<DbError>* err);
  // Copies `op` into carried_, for the next checkpoint's WriteBatch.
  void Carry(const Op& op);
  // Finishes column c's streamed table file and ingests it.
  std::optional<DbError> FinishStreamed(Column c);
  // Ingests the finished table file at `path` into column c (moved in).
  std::optional<DbError> IngestFile(Column c, const std::string& path);
  // Writes `rows` of column `c` (sorted; of a key written twice the later)
  // as a table file and ingests it.
  std::optional<DbError> IngestRows(Column c, const std::vector<Keyed>& rows);
  void WriterLoop();

  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;  // default, audit, log (when it has its own); owned
  rocksdb::ColumnFamilyHandle* audit_ = nullptr;
  rocksdb::ColumnFamilyHandle* log_ = nullptr;  // the log's family (audit's in a fission-6 dir, read-only)
  bool writer_ = false;           // opened by Open (flushes its memtables at a clean close)
  bool follower_ = false;         // opened by OpenFollower (a RocksDB secondary)
  bool vector_audit_ = false;     // the audit and log columns' memtables are vectors
  uint8_t unflushed_ = 0;         // bit c: column c may hold rows written by this process
  DbOptions options_;
  std::string dir_;
  int64_t log_head_ = 0;
  std::atomic<int64_t> ingested_checkpoints_{0};  // whose default-family rows went in as a table file
  uint64_t ingest_files_ = 0;                     // the writer's: names the next table file
  // The writer's, under bulk load (DbOptions::ingest_min_rows): the log's and
  // the history's rows since the last checkpoint, in table files that the
  // next one finishes and ingests; what of its light commits cannot go there
  // (rows out of key order, other families), and the last log head, for its
  // WriteBatch.
  struct StreamedTable {
    std::unique_ptr<rocksdb::SstFileWriter> writer;
    std::string path, last_key;
  };
  StreamedTable streamed_[3];  // by Column: audit and log
  std::string head_;
  uint64_t held_bytes_ = 0;  // the caller's: of fill_, light commits held while the writer was busy
  std::map<std::string, std::unique_ptr<google::protobuf::MessageLite>, std::less<>> found_;  // FindRow's
  std::string key_, scratch_;
  // Filled by the caller; swapped with the writer's once it is idle. Both
  // keep their capacity across commits up to kKeepBufferBytes (regrowing
  // them every batch cost a fifth of ingest time in reallocation and page
  // faults), as does the WriteBatch the writer builds.
  Pending carried_;  // the writer's: see streamed_ (and, through the memtables, a light commit's default-family rows)
  std::atomic<uint64_t> carried_bytes_{0};  // of carried_, as the writer last left it
  std::unique_ptr<Pending> fill_ = std::make_unique<Pending>();
  std::unique_ptr<Pending> writing_ = std::make_unique<Pending>();
  rocksdb::WriteBatch batch_;
  // A default-family key to sort: a view of it, its op, and 16 of its bytes
  // held inline (big-endian, zero-padded) from the end of the prefix all
  // keys of its first byte share in this commit, so that most comparisons
  // read no arena memory (sorting views alone spent most of its time in
  // cache misses: 1.1 s of the writer's 3.4 s on 1M events).
  struct Keyed {
    uint64_t hi = 0, lo = 0;
    std::string_view key;
    uint32_t index = 0;  // the order written (the later of two writes of a key wins)
    uint32_t from = 0;   // where hi starts in key
    const Op* op = nullptr;
  };
  std::vector<Keyed> order_, stretch_, sorted_;  // Write's scratch (sorted_ SortKeys')
  // Sorts `keys` (not &sorted_) by key; of a key written twice, the earlier write first.
  void SortKeys(std::vector<Keyed>* keys);
  // The writer thread and what it shares with the caller, under mu_.
  std::thread writer_thread_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool busy_ = false, stop_ = false;
  std::optional<DbError> write_error_;
  int64_t commits_written_ = 0;   // under mu_: every written commit
  int64_t checkpoint_written_ = 0;  // under mu_: the number of the last written checkpoint
  uint64_t writer_bytes_ = 0;  // the writer's buffers' capacity after its last write
};

}  // namespace fission
