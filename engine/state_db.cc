// Key layout of the RocksDB database (one column family):
//
//   <table byte><row key>   projection and processor rows; table bytes and row
//                           keys are defined in projections/keys.h. Values are
//                           the serialized records of schemas/.../records.proto.
//   'l' be64(seq)           embedded log record seq (fission.v1.LogRecord)
//   'h'                     log head: be64 of the last appended seq
//   'v'                     format version ("fission-2")
//
// Why the write order is safe: log records are appended first (unsynced); the
// processor's changes and its stored log position then go in one WriteBatch.
// A synced commit also makes every earlier WAL write durable, so a position
// can never refer past records that were lost. If the process dies between
// the two writes, the records are in the log and past the stored position, and
// are processed on restart.
#include "engine/state_db.h"

#include <fmt/format.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

#include <filesystem>

namespace fission {
namespace {

constexpr char kLogTag = 'l';
constexpr char kHeadKey[] = "h";
constexpr char kVersionKey[] = "v";
constexpr char kFormat[] = "fission-2";  // 2: history, stored events

std::string FullKey(Table t, std::string_view key) {
  std::string k;
  k.reserve(key.size() + 1);
  k.push_back(static_cast<char>(t));
  k.append(key);
  return k;
}

std::string LogKey(int64_t seq) {
  std::string k(1, kLogTag);
  PutBe64(&k, seq);
  return k;
}

}  // namespace

rocksdb::Options RocksOptions(const DbOptions& o) {
  rocksdb::Options opt;
  opt.create_if_missing = true;
  if (o.env != nullptr) opt.env = o.env;
  opt.IncreaseParallelism(2);
  opt.write_buffer_size = 64u << 20;
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
  return opt;
}

StateDb::StateDb(std::unique_ptr<rocksdb::DB> db, DbOptions options, std::string dir)
    : db_(std::move(db)), options_(options), dir_(std::move(dir)) {
  std::string v;
  if (db_->Get(rocksdb::ReadOptions(), kHeadKey, &v).ok() && v.size() == 8) log_head_ = GetBe64(v);
}

StateDb::~StateDb() = default;

Result<std::unique_ptr<StateDb>, DbError> StateDb::Open(const std::string& dir, DbOptions options) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Result<std::unique_ptr<StateDb>, DbError>::Error({fmt::format("cannot create data dir '{}': {}", dir, ec.message())});
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(RocksOptions(options), dir, &raw);
  if (!s.ok()) return Result<std::unique_ptr<StateDb>, DbError>::Error({fmt::format("cannot open data dir '{}': {}", dir, s.ToString())});
  std::unique_ptr<rocksdb::DB> db(raw);
  std::string v;
  s = db->Get(rocksdb::ReadOptions(), kVersionKey, &v);
  if (s.IsNotFound()) {
    s = db->Put(rocksdb::WriteOptions(), kVersionKey, kFormat);
  } else if (s.ok() && v != kFormat) {
    return Result<std::unique_ptr<StateDb>, DbError>::Error({fmt::format("data dir '{}' has format '{}', this build reads '{}'", dir, v, kFormat)});
  }
  if (!s.ok()) return Result<std::unique_ptr<StateDb>, DbError>::Error({fmt::format("data dir '{}': {}", dir, s.ToString())});
  return std::unique_ptr<StateDb>(new StateDb(std::move(db), options, dir));
}

Result<std::unique_ptr<StateDb>, DbError> StateDb::OpenReadOnly(const std::string& dir) {
  if (!std::filesystem::exists(std::filesystem::path(dir) / "CURRENT")) {
    return Result<std::unique_ptr<StateDb>, DbError>::Error({fmt::format("'{}' is not a fission data dir (no database found)", dir)});
  }
  rocksdb::DB* raw = nullptr;
  DbOptions options;
  rocksdb::Options opt = RocksOptions(options);
  opt.create_if_missing = false;
  rocksdb::Status s = rocksdb::DB::OpenForReadOnly(opt, dir, &raw);
  if (!s.ok()) return Result<std::unique_ptr<StateDb>, DbError>::Error({fmt::format("cannot open data dir '{}': {}", dir, s.ToString())});
  return std::unique_ptr<StateDb>(new StateDb(std::unique_ptr<rocksdb::DB>(raw), options, dir));
}

Result<std::unique_ptr<StateDb>, DbError> StateDb::OpenFollower(const std::string& dir,
                                                                const std::string& scratch_dir) {
  if (!std::filesystem::exists(std::filesystem::path(dir) / "CURRENT")) {
    return Result<std::unique_ptr<StateDb>, DbError>::Error({fmt::format("'{}' is not a fission data dir (no database found)", dir)});
  }
  std::error_code ec;
  std::filesystem::create_directories(scratch_dir, ec);
  rocksdb::DB* raw = nullptr;
  DbOptions options;
  rocksdb::Options opt = RocksOptions(options);
  opt.create_if_missing = false;
  opt.max_open_files = -1;  // required of a secondary
  rocksdb::Status s = rocksdb::DB::OpenAsSecondary(opt, dir, scratch_dir, &raw);
  if (!s.ok()) return Result<std::unique_ptr<StateDb>, DbError>::Error({fmt::format("cannot open data dir '{}': {}", dir, s.ToString())});
  return std::unique_ptr<StateDb>(new StateDb(std::unique_ptr<rocksdb::DB>(raw), options, dir));
}

std::optional<DbError> StateDb::CatchUp() {
  rocksdb::Status s = db_->TryCatchUpWithPrimary();
  if (!s.ok()) return DbError{fmt::format("cannot follow the data dir: {}", s.ToString())};
  return std::nullopt;
}

std::pair<const std::string*, StateDb::Entry*> StateDb::Load(Table t, std::string_view key) {
  // The key is built in a reused buffer: a hit (most lookups) allocates nothing.
  std::string& full = lookup_;
  full.clear();
  full.push_back(static_cast<char>(t));
  full.append(key);
  auto it = cache_.find(full);
  if (it != cache_.end()) return {&it->first, &it->second};
  Entry e;
  rocksdb::PinnableSlice value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), db_->DefaultColumnFamily(), full, &value);
  if (s.ok()) {
    e.row = NewRow(t);
    e.in_db = true;
    if (!e.row->ParseFromArray(value.data(), static_cast<int>(value.size()))) {
      throw std::runtime_error(fmt::format("corrupt row in table '{}': cannot parse", static_cast<char>(t)));
    }
  } else if (!s.IsNotFound()) {
    throw std::runtime_error(fmt::format("RocksDB read failed: {}", s.ToString()));
  }
  auto ins = cache_.emplace(full, std::move(e)).first;
  return {&ins->first, &ins->second};
}

void StateDb::MarkDirty(const std::string& key, Entry& e) {
  if (e.dirty) return;
  e.dirty = true;
  ++dirty_;
  dirty_list_.emplace_back(&key, &e);
}

const google::protobuf::MessageLite* StateDb::FindRow(Table t, std::string_view key) {
  return Load(t, key).second->row.get();
}

google::protobuf::MessageLite* StateDb::MutableRow(Table t, std::string_view key) {
  auto [k, e] = Load(t, key);
  if (!e->row) e->row = NewRow(t);
  MarkDirty(*k, *e);
  return e->row.get();
}

void StateDb::EraseRow(Table t, std::string_view key) {
  // A blind delete: no read is needed to remove a row that may not be cached.
  std::string full = FullKey(t, key);
  auto it = cache_.find(full);
  if (it == cache_.end()) {
    Entry e;
    e.in_db = true;  // perhaps; deleting an absent key is harmless
    it = cache_.emplace(std::move(full), std::move(e)).first;
  }
  it->second.row.reset();
  MarkDirty(it->first, it->second);
}

void StateDb::PutRow(Table t, std::string_view key, std::string_view bytes) {
  // Not cached and not readable before the commit: the fold never reads these
  // tables back (see Store::PutRow).
  const size_t begin = blind_arena_.size();
  blind_arena_.push_back(static_cast<char>(t));
  blind_arena_.append(key);
  blind_arena_.append(bytes);
  blind_.push_back({begin, key.size() + 1});
}

void StateDb::Scan(Table t, std::string_view prefix,
                   const std::function<bool(std::string_view, const google::protobuf::MessageLite&)>& fn) {
  if (uncommitted() != 0) {
    throw std::logic_error("StateDb::Scan with uncommitted changes");
  }
  const std::string start = FullKey(t, prefix);
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  auto row = NewRow(t);
  for (it->Seek(start); it->Valid(); it->Next()) {
    rocksdb::Slice k = it->key();
    if (!k.starts_with(start)) break;
    row->Clear();
    if (!row->ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      throw std::runtime_error("corrupt row during scan");
    }
    k.remove_prefix(1);
    if (!fn(std::string_view(k.data(), k.size()), *row)) break;
  }
}

std::optional<DbError> StateDb::Commit() {
  if (uncommitted() == 0) return std::nullopt;
  // The batch goes in key order: the memtable's skip list then inserts each
  // key next to the previous one instead of searching from the top (a third
  // of the commit's time when keys arrive in touch order).
  // Values are serialized into one arena reused across commits, and the
  // WriteBatch keeps its capacity too: regrowing both every batch cost a
  // fifth of ingest time in reallocation and fresh-page faults.
  using Op = CommitOp;
  constexpr size_t kBlind = CommitOp::kBlind;
  ops_.clear();
  ops_.reserve(blind_.size() + dirty_list_.size());
  const std::string_view arena(blind_arena_);
  for (size_t i = 0; i < blind_.size(); ++i) {
    const size_t end = i + 1 < blind_.size() ? blind_[i + 1].begin : arena.size();
    ops_.push_back({arena.substr(blind_[i].begin, blind_[i].key_size), kBlind, end, false});
  }
  values_.clear();
  for (auto& [k, e] : dirty_list_) {
    if (e->row) {
      const size_t begin = values_.size();
      e->row->AppendToString(&values_);
      ops_.push_back({*k, begin, values_.size(), false});
    } else if (e->in_db) {
      ops_.push_back({*k, 0, 0, true});
    }  // created and erased since the last commit: nothing to write
  }
  // Stable: several versions of one history key in one batch keep their order (the last wins).
  std::stable_sort(ops_.begin(), ops_.end(), [](const Op& a, const Op& b) { return a.key < b.key; });
  batch_.Clear();
  for (const Op& op : ops_) {
    const rocksdb::Slice key(op.key.data(), op.key.size());
    if (op.del) {
      batch_.Delete(key);
    } else if (op.value_begin == kBlind) {
      const char* value = op.key.data() + op.key.size();
      batch_.Put(key, rocksdb::Slice(value, static_cast<size_t>(blind_arena_.data() + op.value_end - value)));
    } else {
      batch_.Put(key, rocksdb::Slice(values_.data() + op.value_begin, op.value_end - op.value_begin));
    }
  }
  rocksdb::WriteOptions wo;
  wo.sync = options_.sync_commits;
  rocksdb::Status s = db_->Write(wo, &batch_);
  if (!s.ok()) return DbError{fmt::format("commit failed: {}", s.ToString())};
  blind_.clear();
  blind_arena_.clear();
  for (auto& [k, e] : dirty_list_) {
    e->dirty = false;
    e->in_db = e->row != nullptr;
    // Rows written once and rarely read again (dedupe keys, the reorder
    // buffer, timers, rejections) and erased rows leave the cache, so it
    // holds the hot entity rows.
    const auto table = static_cast<Table>((*k)[0]);
    if (!e->row || table == Table::kDedupe || table == Table::kPending || table == Table::kTimer ||
        table == Table::kRejection || table == Table::kHistory || table == Table::kEvent ||
        table == Table::kTierChange) {
      cache_.erase(cache_.find(*k));
    }
  }
  dirty_list_.clear();
  dirty_ = 0;
  if (cache_.size() > options_.cache_rows_max) Evict();
  return std::nullopt;
}

std::optional<DbError> StateDb::Sync() {
  rocksdb::Status s = db_->SyncWAL();
  if (!s.ok()) return DbError{fmt::format("sync failed: {}", s.ToString())};
  return std::nullopt;
}

void StateDb::Evict() {
  // Orders and lines are touched at payment, on refunds and at settlement;
  // members, distributors, groups and shares on most events. Drop the cold
  // kinds first, and everything only if that was not enough.
  for (auto it = cache_.begin(); it != cache_.end();) {
    const auto table = static_cast<Table>(it->first[0]);
    if (table == Table::kLine || table == Table::kOrder) {
      it = cache_.erase(it);
    } else {
      ++it;
    }
  }
  if (cache_.size() > options_.cache_rows_max / 2) cache_.clear();
}

std::optional<DbError> StateDb::AppendLog(const std::vector<pb::LogRecord>& records) {
  if (records.empty()) return std::nullopt;
  batch_.Clear();  // shared with Commit for its capacity; the two never overlap
  int64_t seq = log_head_;
  for (const auto& r : records) {
    scratch_.clear();
    r.SerializeToString(&scratch_);
    batch_.Put(LogKey(++seq), scratch_);
  }
  std::string head;
  PutBe64(&head, seq);
  batch_.Put(kHeadKey, head);
  rocksdb::Status s = db_->Write(rocksdb::WriteOptions(), &batch_);
  if (!s.ok()) return DbError{fmt::format("log append failed: {}", s.ToString())};
  log_head_ = seq;
  return std::nullopt;
}

void StateDb::ReadLog(int64_t after, int64_t until,
                      const std::function<bool(int64_t, const pb::LogRecord&)>& fn) {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  pb::LogRecord rec;
  for (it->Seek(LogKey(after + 1)); it->Valid(); it->Next()) {
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
  RocksLogCursor(rocksdb::DB* db, int64_t after) : it_(db->NewIterator(rocksdb::ReadOptions())) {
    it_->Seek(LogKey(after + 1));
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
  return std::make_unique<RocksLogCursor>(db_.get(), after);
}

uint64_t StateDb::DiskBytes() const {
  uint64_t n = 0;
  std::error_code ec;
  for (auto& f : std::filesystem::directory_iterator(dir_, ec)) {
    if (f.is_regular_file(ec)) n += f.file_size(ec);
  }
  return n;
}

}  // namespace fission
