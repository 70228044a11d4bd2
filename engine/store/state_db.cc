// Key layout of the RocksDB database. Three column families:
//
//   default:
//   <table byte><row key>   the current projection rows, written behind (each
//                           entity a batch changed, once per commit), the
//                           the events still buffered and the
//                           meta row; table bytes and row keys are defined in
//                           projections/keys.h. Values are the serialized
//                           records of schemas/.../records.proto. Read back
//                           when a writer starts (the typed core loads them),
//                           and by every reader.
//                           Also the write-once tables E (stored events) and
//                           T (tier changes), whose keys arrive in no order.
//   'v'                     format version ("fission-8")
//
//   audit (InAuditColumn):
//   'V' be64(seq)           history as changes (always appended at the end)
//
//   log:
//   'l' be64(seq)           embedded log record seq (fission.v1.LogRecord)
//   'h'                     log head: be64 of the last appended seq (in the
//                           default family until fission-7)
//
// A commit is one WriteBatch across all three, so it is atomic. The audit and
// log families only grow at their ends: their flushed files never overlap,
// and compaction moves them down without rewriting them.
//
// A checkpoint with many default-family rows (DbOptions::ingest_min_rows)
// is written in two steps instead: first a WriteBatch of its log and history
// rows (synced), then its default-family rows, meta row included, as one
// sorted table file ingested into the family (atomic on its own). A crash
// between the two leaves log and history past the stored position: the same
// state as after a light commit, folded again on restart. Light commits write
// nothing to the default family, so its memtable holds nothing the file
// overlaps and the ingestion flushes nothing.
//
// Commits between two checkpoints (Processor::Checkpoint's light ones) hold
// the log records, history and tier changes alone, and are not synced: the
// rows a restart loads and the stored position move only at a checkpoint, so
// a restart after losing or keeping them folds the same log records again
// and writes the same keys.
//
// Why the write order is safe: log records are appended first (unsynced); the
// processor's changes and its stored log position then go in one WriteBatch.
// A synced commit also makes every earlier WAL write durable, so a position
// can never refer past records that were lost. If the process dies between
// the two writes, the records are in the log and past the stored position, and
// are processed on restart.
#include "engine/store/state_db.h"

#include "events/assert.h"

#include <fmt/format.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/memtablerep.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/sst_file_writer.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

#include <pthread.h>

#include <algorithm>
#include <limits>
#include <cstring>
#include <filesystem>

namespace fission {
namespace {

constexpr char kLogTag = 'l';
// Table files of checkpoints on their way into the default family.
constexpr char kIngestPrefix[] = "fission-ingest-";
// A second link to the file being ingested, kept when its ingestion fails:
// RocksDB 7.8 deletes the file it linked in when the manifest edit adding it
// fails to write or sync, yet the edit may have reached the manifest, and
// the next open would miss the file (the simulator found it). Open restores
// it under the missing name.
constexpr char kIngestKept[] = "fission-ingesting.sst";
constexpr char kHeadKey[] = "h";
constexpr char kVersionKey[] = "v";
// 2: history, stored events; 3: the audit column family; 4: the typed core
// (per-tenant watermarks in the meta row, timers derived from the rows); 5:
// history as changes by sequence with version chains, no dedupe rows; 6:
// stored events in the default family; 7: the log in a family of its own,
// tier changes in the default one; 8: the log head in the log's family
// (checkpoints may be ingested into the default one).
constexpr char kFormat[] = "fission-8";

// The number of the table file an open failed to find, when that is why
// ("... /000073.ldb: No such file or directory ...": RocksDB looks for
// .sst, then .ldb).
std::optional<std::string> MissingTableFile(const std::string& message) {
  for (const char* tail : {".sst: No such file", ".ldb: No such file"}) {
    const size_t at = message.find(tail);
    if (at == std::string::npos) continue;
    size_t begin = at;
    while (begin > 0 && message[begin - 1] >= '0' && message[begin - 1] <= '9') --begin;
    if (begin < at) return message.substr(begin, at - begin);
  }
  return std::nullopt;
}

std::string FullKey(Table t, std::string_view key) {
  std::string k;
  k.reserve(key.size() + 1);
  k.push_back(static_cast<char>(t));
  k.append(key);
  return k;
}

}  // namespace

std::string LogRecordKey(int64_t seq) {
  std::string k(1, kLogTag);
  PutBe64(&k, seq);
  return k;
}

rocksdb::Options RocksOptions(const DbOptions& o) {
  rocksdb::Options opt;
  opt.create_if_missing = true;
  if (o.env != nullptr) opt.env = o.env;
  opt.IncreaseParallelism(2);
  opt.create_missing_column_families = true;
  // The audit column's vector memtable takes one writer at a time (ours).
  opt.allow_concurrent_memtable_write = false;
  // Memtables of both column families together; the larger is flushed first.
  opt.db_write_buffer_size = o.write_buffer_bytes;
  opt.write_buffer_size = o.write_buffer_bytes / 2;
  opt.max_write_buffer_number = 2;  // one filling, one flushing; a third bought no speed
  opt.compression = rocksdb::kLZ4Compression;
  // Most point reads miss (a new event's dedupe key, a new order): a bloom
  // filter on the memtables answers those without walking the skip lists.
  opt.memtable_whole_key_filtering = true;
  opt.memtable_prefix_bloom_size_ratio = 0.05;
  rocksdb::BlockBasedTableOptions t;
  // Indexes and filters live in the block cache, so memory is bounded by its
  // capacity however large the data grows (held by the table readers instead,
  // they took about 1.25 bytes per key: 600 MB peak at 1.1M events, 887 MB at
  // 10M). They are partitioned, so a miss loads one small partition rather
  // than a whole file's filter, which in a 1 MiB cache shard is evicted and
  // re-read from disk on every miss; the top-level index of each file stays
  // pinned, and index and filter blocks go in the cache's high-priority pool.
  // Cost: the 1.1M-event ingest takes 47 s instead of 38 s (each filter probe
  // is a cache lookup); whole filters in 4 MiB shards took 44 s, and thrash
  // once a level's filters outgrow the cache.
  t.block_cache = rocksdb::NewLRUCache(o.block_cache_bytes, /*num_shard_bits=*/-1,
                                       /*strict_capacity_limit=*/false, /*high_pri_pool_ratio=*/0.5);
  t.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  t.index_type = rocksdb::BlockBasedTableOptions::kTwoLevelIndexSearch;
  t.partition_filters = true;
  t.metadata_block_size = 4096;
  t.cache_index_and_filter_blocks = true;
  t.cache_index_and_filter_blocks_with_high_priority = true;
  t.pin_top_level_index_and_filter = true;
  opt.table_factory.reset(rocksdb::NewBlockBasedTableFactory(t));
  // The fold reads little back (faults of evicted entities, the rare
  // dedupe "maybe"), and its rows, overwritten entity by entity, arrive in no
  // order: every merge of L0 into L1 rewrites most of L1. Merging eight
  // flushed files at a time instead of four halves that: on the first 3M
  // events of the 10M stream, 1,220 -> 645 MB compacted, 20.0 -> 9.2 s of
  // compaction CPU, ingest 43.8 -> 37.0 s (sixteen: 5.3 s, 35.6 s, but a
  // point read looks in up to twice as many files again). The audit and log
  // families take the same settings, where files only move.
  opt.level0_file_num_compaction_trigger = 8;
  opt.level0_slowdown_writes_trigger = 20;
  opt.level0_stop_writes_trigger = 36;
  return opt;
}

rocksdb::ColumnFamilyOptions AuditColumnOptions(const DbOptions& o, bool writer) {
  const rocksdb::Options base = RocksOptions(o);
  rocksdb::ColumnFamilyOptions cf(base);
  cf.memtable_whole_key_filtering = false;
  cf.memtable_prefix_bloom_size_ratio = 0;
  if (writer && o.audit_vector_memtable) cf.memtable_factory = std::make_shared<rocksdb::VectorRepFactory>();
  // The same block cache, partitioned index pinned at the top, no filter.
  const auto* shared = base.table_factory->GetOptions<rocksdb::BlockBasedTableOptions>();
  rocksdb::BlockBasedTableOptions t = *shared;
  t.filter_policy.reset();
  t.partition_filters = false;
  cf.table_factory.reset(rocksdb::NewBlockBasedTableFactory(t));
  return cf;
}

namespace {

using OpenResult = Result<std::unique_ptr<rocksdb::DB>, DbError>;
enum class Mode { kWriter, kReadOnly, kFollower };

// Opens `dir` with its column families; `handles` gets default, audit, and
// log when the dir has one (a fission-6 dir, whose log is in the audit
// family, opens only read-only or as a follower: the writer refuses it).
OpenResult OpenColumns(const std::string& dir, const DbOptions& o, Mode mode,
                       const std::string& scratch_dir,
                       std::vector<rocksdb::ColumnFamilyHandle*>* handles) {
  rocksdb::Options opt = RocksOptions(o);
  if (mode != Mode::kWriter) opt.create_if_missing = false;
  if (mode == Mode::kFollower) opt.max_open_files = -1;  // required of a secondary
  bool own_log = true;
  if (std::filesystem::exists(std::filesystem::path(dir) / "CURRENT")) {
    std::vector<std::string> names;
    rocksdb::Status ls = rocksdb::DB::ListColumnFamilies(opt, dir, &names);
    auto has = [&](const char* name) { return std::find(names.begin(), names.end(), name) != names.end(); };
    // A dir whose creation was cut short (killed between creating the
    // database and its column families) holds no format row yet: it is new.
    auto created_unfinished = [&] {
      rocksdb::DB* db = nullptr;
      if (!rocksdb::DB::OpenForReadOnly(opt, dir, &db).ok()) return false;
      std::string v;
      const bool unfinished = db->Get(rocksdb::ReadOptions(), kVersionKey, &v).IsNotFound();
      delete db;
      return unfinished;
    };
    const bool unfinished =
        mode == Mode::kWriter && ls.ok() && (!has(kAuditColumn) || !has(kLogColumn)) && created_unfinished();
    if (ls.ok() && !has(kAuditColumn) && !unfinished) {
      return OpenResult::Error({fmt::format(
          "data dir '{}' was written by an older fission (format fission-2, one column family); "
          "this build reads {}: ingest its events again into a new data dir",
          dir, kFormat)});
    }
    own_log = !ls.ok() || has(kLogColumn) || unfinished;
    if (!own_log && mode == Mode::kWriter) {  // refused before anything of it changes
      return OpenResult::Error({fmt::format(
          "data dir '{}' was written by an older fission (format fission-6 or older, its log beside "
          "the history); this build writes '{}'. Rebuild it from its own log into a new data dir: "
          "fission replay --from {} --rules RULES --out NEW_DIR",
          dir, kFormat, dir)});
    }
  }
  std::vector<rocksdb::ColumnFamilyDescriptor> cfs = {
      {rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions(opt)},
      {kAuditColumn, AuditColumnOptions(o, mode == Mode::kWriter)}};
  if (own_log) cfs.push_back({kLogColumn, AuditColumnOptions(o, mode == Mode::kWriter)});
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s;
  switch (mode) {
    case Mode::kWriter: s = rocksdb::DB::Open(rocksdb::DBOptions(opt), dir, cfs, handles, &raw); break;
    case Mode::kReadOnly:
      s = rocksdb::DB::OpenForReadOnly(rocksdb::DBOptions(opt), dir, cfs, handles, &raw);
      break;
    case Mode::kFollower:
      s = rocksdb::DB::OpenAsSecondary(rocksdb::DBOptions(opt), dir, scratch_dir, cfs, handles, &raw);
      break;
  }
  if (!s.ok()) return OpenResult::Error({fmt::format("cannot open data dir '{}': {}", dir, s.ToString())});
  return std::unique_ptr<rocksdb::DB>(raw);
}

}  // namespace

StateDb::StateDb(std::unique_ptr<rocksdb::DB> db, std::vector<rocksdb::ColumnFamilyHandle*> handles,
                 DbOptions options, std::string dir)
    : db_(std::move(db)), handles_(std::move(handles)), options_(options), dir_(std::move(dir)) {
  audit_ = handles_.at(1);
  log_ = handles_.size() > 2 ? handles_[2] : audit_;
  vector_audit_ = options_.audit_vector_memtable;
  std::string v;
  // An older dir (read for its log only) has the head in the default family.
  if ((db_->Get(rocksdb::ReadOptions(), log_, kHeadKey, &v).ok() ||
       db_->Get(rocksdb::ReadOptions(), handles_[0], kHeadKey, &v).ok()) &&
      v.size() == 8) {
    log_head_ = GetBe64(v);
  }
  // A checkpoint's log goes in as a table file before the head is written
  // (Write): after a crash between the two, the records past the head are
  // the log's all the same (the state is behind them, and the next open
  // folds them again, as it does the log of a light commit).
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), log_));
  it->SeekForPrev(LogRecordKey(std::numeric_limits<int64_t>::max()));
  if (it->Valid() && it->key().size() == 9 && it->key()[0] == kLogTag) {
    log_head_ = std::max(log_head_, GetBe64(std::string_view(it->key().data() + 1, 8)));
  }
}

StateDb::~StateDb() {
  if (writer_thread_.joinable()) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    writer_thread_.join();
  }
  for (StreamedTable& t : streamed_) {  // a checkpoint never came: like a crash, nothing of them lands
    if (!t.writer) continue;
    t.writer.reset();
    (void)db_->GetEnv()->DeleteFile(t.path);
  }
  if (writer_) {
    // A clean close leaves no write-ahead log to replay: the next writer opens
    // faster, and a reader (replay's source, `digest`, `serve`) does not load
    // up to --write-buffer-mb of it into memtables of its own. Best effort:
    // on failure the log is still there, and replayed as after a crash.
    rocksdb::FlushOptions fo;
    fo.allow_write_stall = true;
    (void)db_->Flush(fo, handles_);
  }
  for (auto* h : handles_) db_->DestroyColumnFamilyHandle(h);
}

rocksdb::ColumnFamilyHandle* StateDb::column(Table t) const {
  return InAuditColumn(static_cast<char>(t)) ? audit_ : handles_[0];
}

StateDb::Column StateDb::ColumnOf(char tag) {
  if (InAuditColumn(tag)) return kAuditColumnIndex;
  return tag == kLogTag || tag == kHeadKey[0] ? kLogColumnIndex : kDefaultColumn;
}


Result<std::unique_ptr<StateDb>, DbError> StateDb::Open(const std::string& dir, DbOptions options) {
  using R = Result<std::unique_ptr<StateDb>, DbError>;
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return R::Error({fmt::format("cannot create data dir '{}': {}", dir, ec.message())});
  // A checkpoint's table file that a crash left before its ingestion: its
  // checkpoint never happened.
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    if (entry.path().filename().string().starts_with(kIngestPrefix)) std::filesystem::remove(entry.path(), ec);
  }
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  auto opened = OpenColumns(dir, options, Mode::kWriter, "", &handles);
  const std::filesystem::path kept = std::filesystem::path(dir) / kIngestKept;
  if (!opened.ok() && std::filesystem::exists(kept)) {
    if (const std::optional<std::string> missing = MissingTableFile(opened.error().message)) {
      std::filesystem::create_hard_link(kept, std::filesystem::path(dir) / (*missing + ".sst"), ec);
      if (!ec) {
        handles.clear();
        opened = OpenColumns(dir, options, Mode::kWriter, "", &handles);
      }
    }
  }
  if (!opened.ok()) return R::Error(opened.error());
  std::filesystem::remove(kept, ec);
  std::unique_ptr<StateDb> state(new StateDb(std::move(opened).value(), std::move(handles), options, dir));
  rocksdb::DB* db = state->raw();
  std::string v;
  rocksdb::Status s = db->Get(rocksdb::ReadOptions(), kVersionKey, &v);
  if (s.IsNotFound()) {
    s = db->Put(rocksdb::WriteOptions(), kVersionKey, kFormat);
  } else if (s.ok() && v != kFormat) {
    return R::Error({fmt::format(
        "data dir '{}' has format '{}', written by an older fission; this build writes '{}'. Rebuild it "
        "from its own log into a new data dir: fission replay --from {} --rules RULES --out NEW_DIR",
        dir, v, kFormat, dir)});
  }
  if (!s.ok()) return R::Error({fmt::format("data dir '{}': {}", dir, s.ToString())});
  state->writer_ = true;
  if (options.write_thread) {
    state->writer_thread_ = std::thread([p = state.get()] {
      pthread_setname_np(pthread_self(), "fission-write");  // as ps, top and perf show it
      p->WriterLoop();
    });
  }
  return state;
}

Result<std::unique_ptr<StateDb>, DbError> StateDb::OpenReadOnly(const std::string& dir, size_t block_cache_bytes) {
  using R = Result<std::unique_ptr<StateDb>, DbError>;
  if (!std::filesystem::exists(std::filesystem::path(dir) / "CURRENT")) {
    return R::Error({fmt::format("'{}' is not a fission data dir (no database found)", dir)});
  }
  DbOptions options;
  options.audit_vector_memtable = false;
  options.block_cache_bytes = block_cache_bytes;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  auto opened = OpenColumns(dir, options, Mode::kReadOnly, "", &handles);
  if (!opened.ok()) return R::Error(opened.error());
  return std::unique_ptr<StateDb>(new StateDb(std::move(opened).value(), std::move(handles), options, dir));
}

Result<std::unique_ptr<StateDb>, DbError> StateDb::OpenFollower(const std::string& dir,
                                                                const std::string& scratch_dir) {
  using R = Result<std::unique_ptr<StateDb>, DbError>;
  if (!std::filesystem::exists(std::filesystem::path(dir) / "CURRENT")) {
    return R::Error({fmt::format("'{}' is not a fission data dir (no database found)", dir)});
  }
  std::error_code ec;
  std::filesystem::create_directories(scratch_dir, ec);
  DbOptions options;
  options.audit_vector_memtable = false;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  auto opened = OpenColumns(dir, options, Mode::kFollower, scratch_dir, &handles);
  if (!opened.ok()) return R::Error(opened.error());
  std::unique_ptr<StateDb> db(new StateDb(std::move(opened).value(), std::move(handles), options, dir));
  db->follower_ = true;
  return db;
}

std::optional<DbError> StateDb::CatchUp() {
  rocksdb::Status s = db_->TryCatchUpWithPrimary();
  if (!s.ok()) return DbError{fmt::format("cannot follow the data dir: {}", s.ToString())};
  return std::nullopt;
}

const std::string& StateDb::Full(Table t, std::string_view key) {
  key_.clear();
  key_.push_back(static_cast<char>(t));
  key_.append(key);
  return key_;
}

void StateDb::WaitWritten() {
  if (!writer_thread_.joinable()) return;
  if (auto err = Drain()) throw std::runtime_error(err->message);
}

const google::protobuf::MessageLite* StateDb::FindRow(Table t, std::string_view key) {
  PrepareReads(t);
  const std::string& full = Full(t, key);
  if (auto it = found_.find(full); it != found_.end()) return it->second.get();
  rocksdb::PinnableSlice value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), column(t), full, &value);
  std::unique_ptr<google::protobuf::MessageLite> row;
  if (s.ok()) {
    row = NewRow(t);
    if (!row->ParseFromArray(value.data(), static_cast<int>(value.size()))) {
      throw std::runtime_error(fmt::format("corrupt row in table '{}': cannot parse", static_cast<char>(t)));
    }
  } else if (!s.IsNotFound()) {
    throw std::runtime_error(fmt::format("RocksDB read failed: {}", s.ToString()));
  }
  return found_.emplace(full, std::move(row)).first->second.get();
}

bool StateDb::ReadRow(Table t, std::string_view key, google::protobuf::MessageLite* out) {
  PrepareReads(t);
  rocksdb::PinnableSlice value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), column(t), Full(t, key), &value);
  if (s.IsNotFound()) return false;
  if (!s.ok()) throw std::runtime_error(fmt::format("RocksDB read failed: {}", s.ToString()));
  if (!out->ParseFromArray(value.data(), static_cast<int>(value.size()))) {
    throw std::runtime_error(fmt::format("corrupt row in table '{}': cannot parse", static_cast<char>(t)));
  }
  return true;
}

void StateDb::ScanFrom(Table t, std::string_view prefix, std::string_view from, const ScanFn& fn) {
  PrepareReads(t);
  const std::string full_prefix = FullKey(t, prefix);
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), column(t)));
  auto row = NewRow(t);
  for (it->Seek(FullKey(t, std::max(prefix, from))); it->Valid(); it->Next()) {
    const std::string_view k(it->key().data(), it->key().size());
    if (!k.starts_with(full_prefix)) break;
    row->Clear();
    if (!row->ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      throw std::runtime_error("corrupt row during scan");
    }
    if (!fn(k.substr(1), *row)) return;
  }
  if (!it->status().ok()) throw std::runtime_error(fmt::format("RocksDB scan failed: {}", it->status().ToString()));
}

bool StateDb::Read(Table t, std::string_view key, std::string* value) {
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), column(t), Full(t, key), value);
  if (s.IsNotFound()) return false;
  if (!s.ok()) throw std::runtime_error(fmt::format("RocksDB read failed: {}", s.ToString()));
  return true;
}

bool StateDb::GetRow(Table t, std::string_view key, std::string* value) {
  PrepareReads(t);
  return Read(t, key, value);
}

bool StateDb::GetSettledRow(Table t, std::string_view key, std::string* value) {
  FISSION_ASSERT(!InAuditColumn(static_cast<char>(t)), "settled reads are for current-state tables");
  if (writer_thread_.joinable()) {
    std::lock_guard<std::mutex> lock(mu_);
    if (write_error_) throw std::runtime_error(write_error_->message);
  }
  return Read(t, key, value);
}

void StateDb::ScanRows(Table t, std::string_view key_prefix, const Fn& fn) {
  PrepareReads(t);
  const std::string prefix = FullKey(t, key_prefix);
  rocksdb::ReadOptions ro;
  ro.fill_cache = false;  // one pass at start-up
  ro.readahead_size = 2u << 20;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, column(t)));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    fn(std::string_view(it->key().data() + 1, it->key().size() - 1),
       std::string_view(it->value().data(), it->value().size()));
  }
  if (!it->status().ok()) throw std::runtime_error(fmt::format("RocksDB scan failed: {}", it->status().ToString()));
}

void StateDb::Add(Op::Kind kind, Table t, std::string_view key, std::string_view value) {
  Pending& p = *fill_;
  FISSION_ASSERT(key.size() < (uint64_t{1} << 31) && value.size() < (uint64_t{1} << 31), "a row passed 2 GiB");
  char* at = p.arena.Allocate(key.size() + 1 + value.size());
  at[0] = static_cast<char>(t);
  if (!key.empty()) std::memcpy(at + 1, key.data(), key.size());  // a view of nothing may hold no pointer
  if (!value.empty()) std::memcpy(at + 1 + key.size(), value.data(), value.size());
  p.ops.push_back({kind, ColumnOf(static_cast<char>(t)), static_cast<uint32_t>(key.size() + 1),
                   static_cast<uint32_t>(value.size()), at, at + 1 + key.size()});
}

char* StateDb::Arena::Allocate(size_t n) {
  bytes += n;
  if (block < blocks.size() && used + n <= sizes[block]) {
    char* at = blocks[block].get() + used;
    used += n;
    return at;
  }
  // The next kept block if it is large enough, else a new one in its place.
  if (block < blocks.size() && used > 0) ++block;
  if (block < blocks.size() && sizes[block] < n) {
    blocks.erase(blocks.begin() + static_cast<ptrdiff_t>(block), blocks.end());
    sizes.resize(block);
  }
  if (block == blocks.size()) {
    const size_t size = std::max(kBlock, n);
    blocks.push_back(std::make_unique_for_overwrite<char[]>(size));  // every byte is written before it is read
    sizes.push_back(size);
  }
  used = n;
  return blocks[block].get();
}

void StateDb::Arena::Clear(uint64_t keep) {
  uint64_t kept = 0;
  size_t n = 0;
  while (n < blocks.size() && kept + sizes[n] <= keep) kept += sizes[n++];
  blocks.resize(n);
  sizes.resize(n);
  block = used = 0;
  bytes = 0;
}

uint64_t StateDb::Arena::Capacity() const {
  uint64_t n = 0;
  for (size_t s : sizes) n += s;
  return n;
}


void StateDb::Put(Table t, std::string_view key, std::string_view value) { Add(Op::kPut, t, key, value); }

void StateDb::Delete(Table t, std::string_view key) { Add(Op::kDelete, t, key, {}); }

void StateDb::DeletePrefix(Table t, std::string_view prefix) {
  // The end: the first key past every key that starts with the prefix.
  std::string end = FullKey(t, prefix);
  while (!end.empty() && static_cast<unsigned char>(end.back()) == 0xff) end.pop_back();
  if (end.empty()) throw std::logic_error("DeletePrefix of an unbounded range");
  end.back() = static_cast<char>(static_cast<unsigned char>(end.back()) + 1);
  Add(Op::kDeleteRange, t, prefix, end);
}

std::optional<DbError> StateDb::Write(Pending& p) {
  // Default-family operations go in key order within each stretch between
  // two range deletions (which must keep their place among the puts); a
  // stable sort keeps the later of two writes of one key later.
  batch_.Clear();
  auto keyed = [](const Op& op, size_t index) {
    return Keyed{.key = std::string_view(op.key, op.key_len), .index = static_cast<uint32_t>(index), .op = &op};
  };
  if (options_.ingest_min_rows == 0) {
    // Through the memtables: each stretch's default-family rows sorted; the
    // audit and log families' rows as they came (their vector memtables
    // sort at flush). A light commit's default-family rows are carried to
    // the checkpoint, which writes them first.
    if (!p.checkpoint) {
      for (const Op& op : p.ops) {
        if (op.column == kDefaultColumn) {
          Carry(op);
        } else {
          Emit(op);
        }
      }
      p.Clear(kKeepBufferBytes);
      carried_bytes_ = carried_.arena.bytes;
      return WriteBatch(false);
    }
    for (const Op& op : carried_.ops) Emit(op);
    for (size_t start = 0; start < p.ops.size();) {
      size_t end = start;
      while (end < p.ops.size() && p.ops[end].kind != Op::kDeleteRange) ++end;
      order_.clear();
      for (size_t i = start; i < end; ++i) {
        if (p.ops[i].column != kDefaultColumn) {
          Emit(p.ops[i]);
        } else {
          order_.push_back(keyed(p.ops[i], i));
        }
      }
      SortKeys(&order_);
      for (const Keyed& k : order_) Emit(*k.op);
      if (end < p.ops.size()) Emit(p.ops[end]);  // the range deletion
      start = end + 1;
    }
    p.Clear(kKeepBufferBytes);  // the batch holds copies
    std::optional<DbError> err = WriteBatch(true);
    if (!err) carried_.Clear(kKeepBufferBytes);
    carried_bytes_ = carried_.arena.bytes;
    return err;
  }
  // Bulk load. The log's and the history's rows go into table files that
  // stay open from one checkpoint to the next (their keys only grow); the
  // rest of a light commit is carried to the next checkpoint (its default
  // family's rows into the checkpoint's own, the others to its WriteBatch).
  std::optional<DbError> err;
  order_.clear();
  if (p.checkpoint) {
    // The default-family rows carried from light commits go with the
    // checkpoint's own, before them: into its table file with the meta row,
    // never ahead of it (a restart would load them as seen).
    for (const Op& op : carried_.ops) {
      if (op.column == kDefaultColumn) order_.push_back(keyed(op, order_.size()));
    }
  }
  const size_t carried_rows = order_.size();
  for (size_t i = 0; i < p.ops.size() && !err; ++i) {
    const Op& op = p.ops[i];
    if (op.column == kLogColumnIndex && op.key_len == 1 && op.key[0] == kHeadKey[0]) {
      head_.assign(op.value, op.value_len);  // the last write of the log head alone counts
    } else if (op.column != kDefaultColumn && op.kind != Op::kDeleteRange && Streams(op, &err)) {
    } else if (p.checkpoint && op.column == kDefaultColumn) {
      order_.push_back(keyed(op, carried_rows + i));
    } else {
      Carry(op);
    }
  }
  carried_bytes_ = carried_.arena.bytes;
  if (err || !p.checkpoint) {
    p.Clear(kKeepBufferBytes);
    return err;
  }
  // A checkpoint: the log's file, the history's, then a WriteBatch with what
  // was carried, the log head and the default family's rows when too few or
  // mixed with range deletions (in their order), then the default family's
  // file with the meta row.
  for (Column c : {kLogColumnIndex, kAuditColumnIndex}) {
    if (!err && streamed_[c].writer) err = FinishStreamed(c);
  }
  const bool one_stretch =
      std::none_of(order_.begin(), order_.end(), [](const Keyed& k) { return k.op->kind == Op::kDeleteRange; });
  for (const Op& op : carried_.ops) {
    if (op.column != kDefaultColumn) Emit(op);
  }
  if (!head_.empty()) batch_.Put(handles_[kLogColumnIndex],
                                 rocksdb::Slice(kHeadKey, 1), head_);
  const bool ingest = one_stretch && order_.size() >= options_.ingest_min_rows;
  if (ingest) {
    SortKeys(&order_);
  } else {
    // In their order, each stretch between range deletions sorted.
    for (size_t start = 0; start < order_.size();) {
      size_t end = start;
      while (end < order_.size() && order_[end].op->kind != Op::kDeleteRange) ++end;
      stretch_.assign(order_.begin() + static_cast<long>(start), order_.begin() + static_cast<long>(end));
      SortKeys(&stretch_);
      for (const Keyed& k : stretch_) Emit(*k.op);
      if (end < order_.size()) Emit(*order_[end].op);
      start = end + 1;
    }
  }
  if (!err) err = WriteBatch(true);
  if (!err && ingest) err = IngestRows(kDefaultColumn, order_);  // order_ views carried_: cleared after
  if (!err) {
    carried_.Clear(kKeepBufferBytes);
    carried_bytes_ = 0;
    head_.clear();
  }
  p.Clear(kKeepBufferBytes);
  return err;
}

void StateDb::Emit(const Op& op) {
  rocksdb::ColumnFamilyHandle* cf = handles_[op.column];
  const rocksdb::Slice key(op.key, op.key_len), value(op.value, op.value_len);
  switch (op.kind) {
    case Op::kPut: batch_.Put(cf, key, value); break;
    case Op::kDelete: batch_.Delete(cf, key); break;
    case Op::kDeleteRange: batch_.DeleteRange(cf, key, value); break;
  }
}

void StateDb::Carry(const Op& op) {
  Op copy = op;
  char* at = carried_.arena.Allocate(op.key_len + op.value_len);
  std::memcpy(at, op.key, op.key_len);
  if (op.value_len > 0) std::memcpy(at + op.key_len, op.value, op.value_len);
  copy.key = at;
  copy.value = at + op.key_len;
  carried_.ops.push_back(copy);
}

bool StateDb::Streams(const Op& op, std::optional<DbError>* err) {
  StreamedTable& t = streamed_[op.column];
  const std::string_view key(op.key, op.key_len);
  if (t.writer && key <= t.last_key) return false;  // out of order: carried
  rocksdb::Status s;
  if (!t.writer) {
    const rocksdb::Options o = db_->GetOptions(handles_[op.column]);
    t.writer = std::make_unique<rocksdb::SstFileWriter>(rocksdb::EnvOptions(o), o, handles_[op.column]);
    t.path = fmt::format("{}/{}{}.sst", dir_, kIngestPrefix, ++ingest_files_);
    s = t.writer->Open(t.path);
  }
  if (s.ok()) {
    const rocksdb::Slice k(op.key, op.key_len);
    s = op.kind == Op::kPut ? t.writer->Put(k, rocksdb::Slice(op.value, op.value_len)) : t.writer->Delete(k);
  }
  if (!s.ok()) {
    *err = DbError{fmt::format("commit failed: cannot write the {} rows' table file: {}",
                               op.column == kLogColumnIndex ? "log" : "history", s.ToString())};
    t.writer.reset();
    return true;
  }
  t.last_key.assign(key);
  return true;
}

std::optional<DbError> StateDb::FinishStreamed(Column c) {
  StreamedTable& t = streamed_[c];
  rocksdb::Status s = t.writer->Finish();  // synced
  t.writer.reset();
  t.last_key.clear();
  if (!s.ok()) {
    (void)db_->GetEnv()->DeleteFile(t.path);  // best effort; Open removes leftovers too
    return DbError{fmt::format("commit failed: cannot write the {} rows' table file: {}",
                               c == kLogColumnIndex ? "log" : "history", s.ToString())};
  }
  return IngestFile(c, t.path);
}

std::optional<DbError> StateDb::WriteBatch(bool checkpoint) {
  if (batch_.Count() == 0) return std::nullopt;
  rocksdb::WriteOptions wo;
  wo.sync = options_.sync_commits && checkpoint;
  rocksdb::Status s = db_->Write(wo, &batch_);
  if (!s.ok()) return DbError{fmt::format("commit failed: {}", s.ToString())};
  return std::nullopt;
}

void StateDb::SortKeys(std::vector<Keyed>* keys) {
  FISSION_ASSERT(keys != &sorted_, "SortKeys sorts through sorted_");
  std::vector<Keyed>& keyed = *keys;
  if (std::is_sorted(keyed.begin(), keyed.end(), [](const Keyed& a, const Keyed& b) { return a.key < b.key; })) return;
  // By first byte (the table), stably; then each table's keys by the bytes
  // after their common prefix, 16 of them inline.
  size_t count[257] = {};
  for (const Keyed& k : keyed) ++count[static_cast<unsigned char>(k.key[0]) + 1];
  for (size_t b = 1; b < 257; ++b) count[b] += count[b - 1];
  sorted_.resize(keyed.size());
  for (const Keyed& k : keyed) sorted_[count[static_cast<unsigned char>(k.key[0])]++] = k;
  keyed.swap(sorted_);
  auto load = [](std::string_view key, size_t at) {
    uint64_t v = 0;
    for (size_t i = 0; i < 8; ++i) v = (v << 8) | (at + i < key.size() ? static_cast<unsigned char>(key[at + i]) : 0u);
    return v;
  };
  for (size_t begin = 0; begin < keyed.size();) {
    size_t end = begin + 1;
    const std::string_view first = keyed[begin].key;
    size_t common = first.size();
    while (end < keyed.size() && keyed[end].key[0] == first[0]) {
      const std::string_view k = keyed[end].key;
      size_t n = 0;
      const size_t most = std::min(common, k.size());
      while (n < most && k[n] == first[n]) ++n;
      common = n;
      ++end;
    }
    for (size_t i = begin; i < end; ++i) {
      Keyed& k = keyed[i];
      k.from = static_cast<uint32_t>(common);
      k.hi = load(k.key, common);
      k.lo = load(k.key, common + 8);
    }
    std::sort(keyed.begin() + static_cast<long>(begin), keyed.begin() + static_cast<long>(end),
              [](const Keyed& a, const Keyed& b) {
                if (a.hi != b.hi) return a.hi < b.hi;
                if (a.lo != b.lo) return a.lo < b.lo;
                // Equal in their first from + 16 bytes, a key that ends
                // inside them padded with zeros (so it is a prefix of the
                // other, or equal to it): the rest decides, then the length.
                const int c = a.key.substr(std::min<size_t>(a.key.size(), a.from + 16))
                                  .compare(b.key.substr(std::min<size_t>(b.key.size(), b.from + 16)));
                if (c != 0) return c < 0;
                return a.key.size() != b.key.size() ? a.key.size() < b.key.size() : a.index < b.index;
              });
    begin = end;
  }
}

std::optional<DbError> StateDb::IngestRows(Column c, const std::vector<Keyed>& rows) {
  const rocksdb::Options o = db_->GetOptions(handles_[c]);
  rocksdb::SstFileWriter w(rocksdb::EnvOptions(o), o, handles_[c]);
  const std::string path = fmt::format("{}/{}{}.sst", dir_, kIngestPrefix, ++ingest_files_);
  rocksdb::Status s = w.Open(path);
  for (size_t i = 0; s.ok() && i < rows.size(); ++i) {
    if (i + 1 < rows.size() && rows[i + 1].key == rows[i].key) continue;  // the later write wins
    const Op& op = *rows[i].op;
    const rocksdb::Slice k(op.key, op.key_len);
    s = op.kind == Op::kPut ? w.Put(k, rocksdb::Slice(op.value, op.value_len)) : w.Delete(k);
  }
  if (s.ok()) s = w.Finish();  // synced
  if (!s.ok()) {
    (void)o.env->DeleteFile(path);  // best effort; Open removes leftovers too
    return DbError{fmt::format("commit failed: cannot ingest its rows: {}", s.ToString())};
  }
  return IngestFile(c, path);
}

std::optional<DbError> StateDb::IngestFile(Column c, const std::string& path) {
  rocksdb::Env* env = db_->GetEnv();
  const std::string kept = dir_ + "/" + kIngestKept;
  (void)env->DeleteFile(kept);
  rocksdb::Status s = env->LinkFile(path, kept);
  if (s.ok()) {
    rocksdb::IngestExternalFileOptions ifo;
    ifo.move_files = true;            // linked into the dir, not copied; our name is removed
    ifo.write_global_seqno = false;   // the sequence goes in the manifest, the file is not rewritten
    s = db_->IngestExternalFile(handles_[c], {path}, ifo);
  }
  if (!s.ok()) {
    (void)env->DeleteFile(path);  // best effort; Open removes leftovers too
    return DbError{fmt::format("commit failed: cannot ingest its rows: {}", s.ToString())};
  }
  (void)env->DeleteFile(kept);
  if (c == kDefaultColumn) ++ingested_checkpoints_;
  return std::nullopt;
}

void StateDb::WriterLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return busy_ || stop_; });
    if (!busy_) return;  // stopping, nothing in flight
    lock.unlock();
    std::optional<DbError> err = Write(*writing_);
    if (batch_.Data().capacity() > kKeepBufferBytes) batch_ = rocksdb::WriteBatch();
    const uint64_t bytes = batch_.Data().capacity() + writing_->Capacity();
    lock.lock();
    writer_bytes_ = bytes;
    if (err && !write_error_) write_error_ = std::move(err);
    if (!err && (commits_written_ += writing_->commits) && writing_->checkpoint) checkpoint_written_ = commits_written_;
    writing_->commits = 1;
    busy_ = false;
    cv_.notify_all();
  }
}

std::optional<DbError> StateDb::Drain() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return !busy_; });
  return write_error_;
}

int64_t StateDb::commits_written() const {
  std::lock_guard<std::mutex> lock(mu_);
  return checkpoint_written_;
}

std::optional<DbError> StateDb::Commit(bool checkpoint) {
  if (fill_->ops.empty()) return Drain();
  found_.clear();
  unflushed_ = (1u << kAuditColumnIndex) | (1u << kLogColumnIndex);
  fill_->checkpoint = checkpoint;
  if (!writer_thread_.joinable()) {
    if (write_error_) return write_error_;
    write_error_ = Write(*fill_);
    if (!write_error_ && ++commits_written_ && checkpoint) checkpoint_written_ = commits_written_;
    return write_error_;
  }
  std::unique_lock<std::mutex> lock(mu_);
  if (!checkpoint && busy_ && options_.ingest_min_rows > 0 && fill_->arena.bytes < kKeepBufferBytes) {
    // The writer is still on a checkpoint: this light commit waits in the
    // buffer and goes with the next commit, so the fold goes on meanwhile.
    held_bytes_ = fill_->arena.bytes;
    ++fill_->commits;
    return write_error_;
  }
  cv_.wait(lock, [&] { return !busy_; });
  if (write_error_) return write_error_;  // nothing more goes after a failed write
  held_bytes_ = 0;
  std::swap(fill_, writing_);
  busy_ = true;
  cv_.notify_all();
  return std::nullopt;
}

void StateDb::PrepareReads(Column c) {
  WaitWritten();
  if (!vector_audit_ || (unflushed_ & (1u << c)) == 0 || c >= handles_.size()) return;
  // An iterator over a vector memtable sorts a copy of it; flushed, the rows
  // are read from sorted tables instead.
  rocksdb::FlushOptions fo;
  fo.allow_write_stall = true;
  rocksdb::Status s = db_->Flush(fo, handles_[c]);
  if (!s.ok()) throw std::runtime_error(fmt::format("cannot flush the {} rows: {}", c == kLogColumnIndex ? "log" : "audit", s.ToString()));
  unflushed_ &= static_cast<uint8_t>(~(1u << c));
}

std::optional<DbError> StateDb::Sync() {
  if (auto err = Drain()) return err;
  rocksdb::Status s = db_->SyncWAL();
  if (!s.ok()) return DbError{fmt::format("sync failed: {}", s.ToString())};
  return std::nullopt;
}

void StateDb::AppendLog(const std::vector<pb::LogRecord>& records) {
  if (records.empty()) return;
  std::string key;
  for (const auto& r : records) {
    scratch_.clear();
    r.SerializeToString(&scratch_);
    key.clear();
    PutBe64(&key, ++log_head_);
    Add(Op::kPut, static_cast<Table>(kLogTag), key, scratch_);
  }
  key.clear();
  PutBe64(&key, log_head_);
  Add(Op::kPut, static_cast<Table>(kHeadKey[0]), "", key);
}

void StateDb::ReadLog(int64_t after, int64_t until,
                      const std::function<bool(int64_t, const pb::LogRecord&)>& fn) {
  PrepareReads(kLogColumnIndex);
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), log_));
  pb::LogRecord rec;
  for (it->Seek(LogRecordKey(after + 1)); it->Valid(); it->Next()) {
    rocksdb::Slice k = it->key();
    if (k.size() != 9 || k[0] != kLogTag) break;
    const int64_t seq = GetBe64(std::string_view(k.data() + 1, 8));
    if (seq > until) break;
    if (!rec.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      throw std::runtime_error(fmt::format("corrupt log record {}", seq));
    }
    if (!fn(seq, rec)) break;
  }
}

namespace {
class RocksLogCursor final : public StateDb::LogCursor {
 public:
  RocksLogCursor(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* log, int64_t after)
      : it_(db->NewIterator(ScanOptions(), log)) {
    it_->Seek(LogRecordKey(after + 1));
  }
  // One pass in key order: its blocks are read once, so they stay out of the
  // block cache (where they would evict what the process reads again: a
  // replay's source and target each have one), and are read ahead.
  static rocksdb::ReadOptions ScanOptions() {
    rocksdb::ReadOptions ro;
    ro.fill_cache = false;
    ro.readahead_size = 2u << 20;
    return ro;
  }
  bool Next(int64_t* seq, pb::LogRecord* r) override {
    if (!it_->Valid()) return false;
    rocksdb::Slice k = it_->key();
    if (k.size() != 9 || k[0] != kLogTag) return false;
    *seq = GetBe64(std::string_view(k.data() + 1, 8));
    if (!r->ParseFromArray(it_->value().data(), static_cast<int>(it_->value().size()))) {
      throw std::runtime_error(fmt::format("corrupt log record {}", *seq));
    }
    it_->Next();
    return true;
  }

 private:
  std::unique_ptr<rocksdb::Iterator> it_;
};
}  // namespace

std::unique_ptr<StateDb::LogCursor> StateDb::NewLogCursor(int64_t after) {
  PrepareReads(kLogColumnIndex);
  return std::make_unique<RocksLogCursor>(db_.get(), log_, after);
}

uint64_t StateDb::DiskBytes() const {
  uint64_t n = 0;
  std::error_code ec;
  for (auto& f : std::filesystem::directory_iterator(dir_, ec)) {
    if (f.is_regular_file(ec)) n += f.file_size(ec);
  }
  return n;
}

uint64_t StateDb::BufferBytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  const uint64_t writer = writer_thread_.joinable() ? writer_bytes_ : batch_.Data().capacity();
  return writer + fill_->Capacity() + key_.capacity() + scratch_.capacity() + carried_bytes_.load();
}

}  // namespace fission
