// TimerSet: the timer keys a processor has scheduled, in key order (a timer
// key starts with its big-endian deadline, so the first key is the next due),
// held in about the bytes of the keys themselves.
//
// A processor holds the earliest of its pending timers here (a window of
// ProcessorOptions::timer_window; the rest wait in the Store). In a
// std::set<std::string> each took about 110 bytes (a tree node, a string, and
// the string's own allocation for a key of about 45 bytes); here each takes
// its bytes plus one or two of length, in sorted chunks of at most
// kChunkBytes.
//
// The same contract as a std::set<std::string> for the operations used:
// insert of a present key and erase of an absent one do nothing. Not
// thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace fission {

class TimerSet {
 public:
  // A chunk is split when its packed keys pass this many bytes.
  static constexpr size_t kChunkBytes = 4096;

  // True if the key was not present.
  bool insert(std::string_view key);
  // True if the key was present.
  bool erase(std::string_view key);
  bool contains(std::string_view key) const;
  bool empty() const { return size_ == 0; }
  size_t size() const { return size_; }
  // The smallest key; the set must not be empty. Valid until the next change.
  std::string_view front() const;
  void pop_front();
  // Keeps the `keep` smallest keys and removes the rest; returns the smallest
  // key removed, or nullopt when there were no more than `keep`.
  std::optional<std::string> TruncateTo(size_t keep);
  // Bytes allocated for the keys (chunk capacities; not the map's nodes).
  size_t bytes() const;

 private:
  // Keys packed in order, each as a varint length then its bytes. The map
  // key of a chunk is at most its first key, and above every key of the
  // chunk before it.
  using Chunks = std::map<std::string, std::string, std::less<>>;
  // The chunk that holds, or would hold, `key`; end() when there is none.
  Chunks::iterator ChunkFor(std::string_view key);
  Chunks::const_iterator ChunkFor(std::string_view key) const;
  // Splits `c` in two halves by bytes when it is over kChunkBytes.
  void MaybeSplit(Chunks::iterator c);
  // After an erase: drops an empty chunk; merges a small one into its successor.
  void Tidy(Chunks::iterator c);

  Chunks chunks_;
  size_t size_ = 0;
};

}  // namespace fission
