// WarmRows: rows evicted from StateDb's decoded cache, kept encoded in memory
// within a byte budget; SeenFilter: a Bloom filter of the dedupe keys written.
//
// Both sit between StateDb's decoded row cache and RocksDB and only ever save
// a read; neither decides anything.
//
// WarmRows is exclusive of the decoded cache: a row enters when it is evicted
// from it (clean, so the bytes equal what is committed) and leaves when it is
// loaded back (Take). A key is therefore in at most one of the two, and a
// commit, which only writes rows held decoded, never has to update it. Its
// bytes go in two arenas of half the budget each: records are appended to the
// current one; when it is full, the other one's records are dropped (the
// oldest half) and it becomes current. Lookups go through an open-addressing
// table of 64-bit hashes that is rebuilt at each turn; keys are compared in
// full, so a hash collision costs a comparison, never a wrong row.
//
// SeenFilter answers "was this key possibly written?" with no false
// negatives: a key it has not seen is certainly absent from the dedupe table,
// which saves the RocksDB read every new event would otherwise pay (it always
// misses). Blocked: the bits of one key share a 64-byte line, one cache miss
// per probe. Built at open by scanning the dedupe table's keys; a full filter
// only answers "possibly" more often (false positives cost the read it saves).
//
// Neither is thread-safe; StateDb's writer owns them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace fission {

class WarmRows {
 public:
  // `budget_bytes` bounds the arenas and the table together; 0 keeps nothing.
  explicit WarmRows(size_t budget_bytes);

  // Removes `key` and returns its bytes, valid until the next Put. nullopt:
  // not held (never put, taken, or dropped with its half).
  std::optional<std::string_view> Take(std::string_view key);
  // Holds `value` as the bytes of `key`, replacing any earlier ones. A record
  // larger than a sixteenth of an arena is not kept.
  void Put(std::string_view key, std::string_view value);

  size_t rows() const { return live_; }
  // Bytes of memory in use (arena bytes written, and the table).
  size_t bytes() const;
  // Bytes allocated: both arenas whole (reserved at construction; their pages
  // become resident as records are written) and the table.
  size_t allocated_bytes() const;
  uint64_t hits() const { return hits_; }
  uint64_t misses() const { return misses_; }
  uint64_t dropped() const { return dropped_; }

 private:
  struct Slot {
    uint64_t hash = 0;    // kEmpty, kTombstone, or the key's hash (never those two)
    uint32_t offset = 0;  // of the record in arena `arena`
    uint32_t arena = 0;
  };
  static constexpr uint64_t kEmpty = 0, kTombstone = 1;
  static uint64_t Hash(std::string_view key);
  // The slot holding `key`, or the table's size when absent.
  size_t Find(uint64_t h, std::string_view key) const;
  std::string_view KeyAt(const Slot& s) const;
  void Insert(uint64_t h, uint32_t arena, uint32_t offset);
  // Rebuilds the table at `slots` (a power of two) from the live records,
  // leaving out those in `drop_arena`.
  void Rehash(size_t slots, std::optional<uint32_t> drop_arena = std::nullopt);
  // Drops the other arena's records and makes it current.
  void Turn();

  size_t arena_capacity_ = 0;  // each
  size_t table_max_slots_ = 0;
  std::vector<char> arenas_[2];
  uint32_t current_ = 0;
  std::vector<Slot> table_;
  size_t used_ = 0;  // slots not empty (live + tombstones)
  size_t live_ = 0;
  uint64_t hits_ = 0, misses_ = 0, dropped_ = 0;
};

class SeenFilter {
 public:
  // `bytes` of bits, rounded down to whole 64-byte blocks; 0 disables it
  // (MayContain is then always true).
  explicit SeenFilter(size_t bytes);
  void Add(std::string_view key);
  // False: `key` was certainly never added.
  bool MayContain(std::string_view key) const;
  bool enabled() const { return !blocks_.empty(); }
  size_t added() const { return added_; }
  size_t bytes() const { return blocks_.size() * sizeof(Block); }

 private:
  struct alignas(64) Block {
    uint64_t words[8];
  };
  std::vector<Block> blocks_;
  size_t added_ = 0;
};

}  // namespace fission
