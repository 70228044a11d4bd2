#include "engine/warm_rows.h"

#include <bit>
#include <cstring>
#include <functional>

namespace fission {
namespace {

// A record in an arena: key size, value size (both u32, native order), key, value.
constexpr size_t kHeader = 8;
constexpr size_t kMinSlots = 1024;

uint32_t ReadU32(const char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

}  // namespace

WarmRows::WarmRows(size_t budget_bytes) {
  if (budget_bytes < 64 * 1024) return;  // too small to be worth a lookup
  // A quarter of the budget at most for the table (16 bytes a slot, at most
  // half of them used), the rest for the two arenas.
  table_max_slots_ = std::bit_floor(budget_bytes / 4 / sizeof(Slot));
  arena_capacity_ = (budget_bytes - table_max_slots_ * sizeof(Slot)) / 2;
  // Reserved, not touched: pages become resident as records are written.
  arenas_[0].reserve(arena_capacity_);
  arenas_[1].reserve(arena_capacity_);
  table_.assign(std::min(kMinSlots, table_max_slots_), Slot{});
}

uint64_t WarmRows::Hash(std::string_view key) {
  const uint64_t h = std::hash<std::string_view>{}(key);
  return h < 2 ? h + 2 : h;  // never kEmpty or kTombstone
}

std::string_view WarmRows::KeyAt(const Slot& s) const {
  const char* p = arenas_[s.arena].data() + s.offset;
  return {p + kHeader, ReadU32(p)};
}

size_t WarmRows::Find(uint64_t h, std::string_view key) const {
  const size_t mask = table_.size() - 1;
  for (size_t i = h & mask;; i = (i + 1) & mask) {
    const Slot& s = table_[i];
    if (s.hash == kEmpty) return table_.size();
    if (s.hash == h && KeyAt(s) == key) return i;
  }
}

void WarmRows::Insert(uint64_t h, uint32_t arena, uint32_t offset) {
  const size_t mask = table_.size() - 1;
  for (size_t i = h & mask;; i = (i + 1) & mask) {
    Slot& s = table_[i];
    if (s.hash == kEmpty || s.hash == kTombstone) {
      if (s.hash == kEmpty) ++used_;
      s = {h, offset, arena};
      ++live_;
      return;
    }
  }
}

void WarmRows::Rehash(size_t slots, std::optional<uint32_t> drop_arena) {
  std::vector<Slot> old = std::move(table_);
  table_.assign(slots, Slot{});
  used_ = live_ = 0;
  for (const Slot& s : old) {
    if (s.hash <= kTombstone) continue;
    if (s.arena == drop_arena) {
      ++dropped_;
    } else {
      Insert(s.hash, s.arena, s.offset);
    }
  }
}

void WarmRows::Turn() {
  const uint32_t next = 1 - current_;
  Rehash(table_.size(), next);
  arenas_[next].clear();  // keeps its capacity
  current_ = next;
}

std::optional<std::string_view> WarmRows::Take(std::string_view key) {
  if (arena_capacity_ == 0) return std::nullopt;
  const size_t i = Find(Hash(key), key);
  if (i == table_.size()) {
    ++misses_;
    return std::nullopt;
  }
  Slot& s = table_[i];
  const char* p = arenas_[s.arena].data() + s.offset;
  const std::string_view value(p + kHeader + ReadU32(p), ReadU32(p + 4));
  s.hash = kTombstone;
  --live_;
  ++hits_;
  return value;
}

void WarmRows::Put(std::string_view key, std::string_view value) {
  if (arena_capacity_ == 0) return;
  const uint64_t h = Hash(key);
  if (const size_t i = Find(h, key); i != table_.size()) {
    table_[i].hash = kTombstone;  // its record becomes garbage
    --live_;
  }
  const size_t size = kHeader + key.size() + value.size();
  if (size > arena_capacity_ / 16) return;
  if (arenas_[current_].size() + size > arena_capacity_) Turn();
  // Keep the table at most half used: grow while the budget allows, clear
  // the tombstones, and failing both drop the older arena's rows.
  while (2 * (used_ + 1) > table_.size()) {
    if (table_.size() * 2 <= table_max_slots_ && 4 * live_ > table_.size()) {
      Rehash(table_.size() * 2);
    } else if (used_ > live_) {
      Rehash(table_.size());
    } else {
      Turn();
    }
  }
  std::vector<char>& arena = arenas_[current_];
  const auto offset = static_cast<uint32_t>(arena.size());
  const auto ks = static_cast<uint32_t>(key.size());
  const auto vs = static_cast<uint32_t>(value.size());
  char header[kHeader];
  std::memcpy(header, &ks, 4);
  std::memcpy(header + 4, &vs, 4);
  arena.insert(arena.end(), header, header + kHeader);
  arena.insert(arena.end(), key.begin(), key.end());
  arena.insert(arena.end(), value.begin(), value.end());
  Insert(h, current_, offset);
}

size_t WarmRows::bytes() const {
  return arenas_[0].size() + arenas_[1].size() + table_.size() * sizeof(Slot);
}

size_t WarmRows::allocated_bytes() const {
  return arenas_[0].capacity() + arenas_[1].capacity() + table_.capacity() * sizeof(Slot);
}

// ---- SeenFilter ----

namespace {

constexpr int kProbes = 6;  // bits per key, each 9 bits of a second hash

uint64_t Mix(uint64_t h) {  // a finalizer (splitmix64), for the bit positions
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ULL;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebULL;
  return h ^ (h >> 31);
}

// The block of hash `h` among `n`: the high 32 bits scaled to [0, n)
// (Lemire's multiply-shift; n is below 2^32 blocks).
size_t BlockOf(uint64_t h, size_t n) { return static_cast<size_t>(((h >> 32) * n) >> 32); }

}  // namespace

SeenFilter::SeenFilter(size_t bytes) : blocks_(bytes / sizeof(Block)) {}

void SeenFilter::Add(std::string_view key) {
  if (blocks_.empty()) return;
  const uint64_t h = std::hash<std::string_view>{}(key);
  Block& b = blocks_[BlockOf(h, blocks_.size())];
  uint64_t bits = Mix(h);
  for (int i = 0; i < kProbes; ++i, bits >>= 9) b.words[(bits >> 6) & 7] |= uint64_t{1} << (bits & 63);
  ++added_;
}

bool SeenFilter::MayContain(std::string_view key) const {
  if (blocks_.empty()) return true;
  const uint64_t h = std::hash<std::string_view>{}(key);
  const Block& b = blocks_[BlockOf(h, blocks_.size())];
  uint64_t bits = Mix(h);
  for (int i = 0; i < kProbes; ++i, bits >>= 9) {
    if (!(b.words[(bits >> 6) & 7] & (uint64_t{1} << (bits & 63)))) return false;
  }
  return true;
}

}  // namespace fission
