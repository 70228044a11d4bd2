// A set of 64-bit hashes in about two bytes each, which may answer "maybe"
// for a hash it was never given: the dedupe set of spec check 2 keeps every
// event id ever seen, so it must not cost much per id.
//
// A blocked Bloom filter (one 512-bit block, one cache line, per hash; seven
// bits set in it), grown by layers: when the newest layer holds as many
// hashes as it was sized for, a layer twice its size starts, so the filter
// never needs to know how many will come. A full layer answers "maybe"
// wrongly for about 1 hash in 1,000 (16 bits per hash, 7 probes); a lookup
// asks every layer: at 10M hashes (8 layers, 32 MiB) 0.7% of hashes never
// given answer "maybe" (a test bounds it at 2M). Callers confirm a
// "maybe" against what the hash stands for (Processor::FirstSighting reads
// the stored event).
//
// Not thread-safe.
#pragma once

#include <bit>
#include <cstdint>
#include <vector>

namespace fission {

class HashFilter {
 public:
  void Insert(uint64_t h) {
    if (layers_.empty() || layers_.back().count >= layers_.back().capacity) AddLayer();
    Layer& l = layers_.back();
    uint64_t* block = &l.words[(h & l.block_mask) * kWordsPerBlock];
    uint64_t bits = Remix(h);
    for (int i = 0; i < kProbes; ++i, bits >>= 9) block[(bits >> 6) & 7] |= uint64_t{1} << (bits & 63);
    ++l.count;
    ++size_;
  }

  bool MayContain(uint64_t h) const {
    const uint64_t remixed = Remix(h);
    for (const Layer& l : layers_) {
      const uint64_t* block = &l.words[(h & l.block_mask) * kWordsPerBlock];
      uint64_t bits = remixed;
      bool all = true;
      for (int i = 0; i < kProbes && all; ++i, bits >>= 9) all = (block[(bits >> 6) & 7] >> (bits & 63)) & 1;
      if (all) return true;
    }
    return false;
  }

  // Hashes inserted (repeats counted).
  uint64_t size() const { return size_; }
  uint64_t MemoryBytes() const {
    uint64_t n = 0;
    for (const Layer& l : layers_) n += l.words.capacity() * sizeof(uint64_t);
    return n;
  }

 private:
  static constexpr int kProbes = 7;           // 9 bits each, from one 64-bit remix
  static constexpr uint64_t kBitsPerHash = 16;
  static constexpr uint64_t kWordsPerBlock = 8;  // 512 bits
  static constexpr uint64_t kFirstCapacity = uint64_t{1} << 16;

  struct Layer {
    std::vector<uint64_t> words;
    uint64_t block_mask = 0;
    uint64_t capacity = 0, count = 0;
  };

  // The bits inside a block come from a remix of the hash, so they do not
  // repeat the low bits that chose the block.
  static uint64_t Remix(uint64_t h) {
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    return h ^ (h >> 33);
  }

  void AddLayer() {
    Layer l;
    l.capacity = layers_.empty() ? kFirstCapacity : layers_.back().capacity * 2;
    const uint64_t blocks = std::bit_ceil(l.capacity * kBitsPerHash / 512);
    l.words.assign(blocks * kWordsPerBlock, 0);
    l.block_mask = blocks - 1;
    layers_.push_back(std::move(l));
  }

  std::vector<Layer> layers_;
  uint64_t size_ = 0;
};

}  // namespace fission
