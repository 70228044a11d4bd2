#include "projections/timer_set.h"

#include <cassert>

namespace fission {
namespace {

// A new chunk's capacity: a full chunk plus room for the key that overfills it.
constexpr size_t kReserve = TimerSet::kChunkBytes + 128;

void PutLength(std::string* out, size_t n) {
  while (n >= 0x80) {
    out->push_back(static_cast<char>((n & 0x7f) | 0x80));
    n >>= 7;
  }
  out->push_back(static_cast<char>(n));
}

// The key at `pos` of a packed chunk; `*next` receives the position after it.
std::string_view KeyAt(const std::string& d, size_t pos, size_t* next) {
  size_t n = 0;
  int shift = 0;
  for (;;) {
    const auto b = static_cast<unsigned char>(d[pos++]);
    n |= static_cast<size_t>(b & 0x7f) << shift;
    if (b < 0x80) break;
    shift += 7;
  }
  *next = pos + n;
  return std::string_view(d).substr(pos, n);
}

std::string Packed(std::string_view key) {
  std::string d;
  d.reserve(kReserve);
  PutLength(&d, key.size());
  d.append(key);
  return d;
}

// Where `key` is in chunk `d` (found), or where it would go.
struct Position {
  size_t at;
  bool found;
  bool at_end;
};
Position Locate(const std::string& d, std::string_view key) {
  size_t pos = 0;
  while (pos < d.size()) {
    size_t next = 0;
    const std::string_view k = KeyAt(d, pos, &next);
    const int c = k.compare(key);
    if (c == 0) return {pos, true, false};
    if (c > 0) return {pos, false, false};
    pos = next;
  }
  return {pos, false, true};
}

}  // namespace

TimerSet::Chunks::iterator TimerSet::ChunkFor(std::string_view key) {
  auto it = chunks_.upper_bound(key);
  if (it == chunks_.begin()) return chunks_.end();
  return std::prev(it);
}

TimerSet::Chunks::const_iterator TimerSet::ChunkFor(std::string_view key) const {
  auto it = chunks_.upper_bound(key);
  if (it == chunks_.begin()) return chunks_.end();
  return std::prev(it);
}

bool TimerSet::insert(std::string_view key) {
  if (chunks_.empty()) {
    chunks_.emplace(std::string(key), Packed(key));
    ++size_;
    return true;
  }
  auto c = ChunkFor(key);
  if (c == chunks_.end()) {
    // Below every key: the first chunk takes it, and is keyed by it now.
    auto node = chunks_.extract(chunks_.begin());
    node.key() = std::string(key);
    c = chunks_.insert(std::move(node)).position;
  }
  std::string& d = c->second;
  const Position p = Locate(d, key);
  if (p.found) return false;
  std::string entry;
  PutLength(&entry, key.size());
  entry.append(key);
  d.insert(p.at, entry);
  ++size_;
  if (d.size() > kChunkBytes) {
    // Keys mostly arrive in deadline order, at the end of the last chunk:
    // then the full chunk keeps all but the new key, and stays full.
    size_t split = 0;
    if (p.at_end) {
      split = p.at;
    } else {
      for (size_t next = 0; split < d.size() / 2; split = next) KeyAt(d, split, &next);
    }
    if (split > 0 && split < d.size()) {
      size_t next = 0;
      std::string tail;
      tail.reserve(kReserve);
      tail.append(d, split, std::string::npos);
      std::string first(KeyAt(tail, 0, &next));
      d.resize(split);
      chunks_.emplace_hint(std::next(c), std::move(first), std::move(tail));
    }
  }
  return true;
}

bool TimerSet::erase(std::string_view key) {
  auto c = ChunkFor(key);
  if (c == chunks_.end()) return false;
  const Position p = Locate(c->second, key);
  if (!p.found) return false;
  size_t next = 0;
  KeyAt(c->second, p.at, &next);
  c->second.erase(p.at, next - p.at);
  --size_;
  Tidy(c);
  return true;
}

bool TimerSet::contains(std::string_view key) const {
  auto c = ChunkFor(key);
  return c != chunks_.end() && Locate(c->second, key).found;
}

std::string_view TimerSet::front() const {
  assert(!empty());
  size_t next = 0;
  return KeyAt(chunks_.begin()->second, 0, &next);
}

void TimerSet::pop_front() {
  assert(!empty());
  auto c = chunks_.begin();
  size_t next = 0;
  KeyAt(c->second, 0, &next);
  c->second.erase(0, next);
  --size_;
  Tidy(c);
}

void TimerSet::Tidy(Chunks::iterator c) {
  if (c->second.empty()) {
    chunks_.erase(c);
    return;
  }
  // A chunk under a quarter full takes in its successor when both fit in one.
  auto n = std::next(c);
  if (c->second.size() < kChunkBytes / 4 && n != chunks_.end() && c->second.size() + n->second.size() <= kChunkBytes) {
    c->second.append(n->second);
    chunks_.erase(n);
  }
}

std::optional<std::string> TimerSet::TruncateTo(size_t keep) {
  if (size_ <= keep) return std::nullopt;
  size_t kept = 0;
  auto c = chunks_.begin();
  size_t pos = 0;  // in *c, where the first removed key begins
  for (;; ++c) {
    size_t next = 0;
    for (pos = 0; pos < c->second.size() && kept < keep; pos = next, ++kept) KeyAt(c->second, pos, &next);
    if (pos < c->second.size()) break;  // kept == keep inside this chunk
  }
  size_t next = 0;
  std::optional<std::string> first(std::string(KeyAt(c->second, pos, &next)));
  if (pos == 0) {
    chunks_.erase(c, chunks_.end());
  } else {
    c->second.resize(pos);
    chunks_.erase(std::next(c), chunks_.end());
  }
  size_ = keep;
  return first;
}

size_t TimerSet::bytes() const {
  size_t n = 0;
  for (const auto& [first, d] : chunks_) n += d.capacity() + first.capacity();
  return n;
}

}  // namespace fission
