// What happened to one offered input, and a run's counters: shared by the
// processors and everything that reports on them.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>

namespace fission {

enum class Outcome { kAccepted, kDuplicate, kRejected, kBeyondUntil };

// Counters for one run (the stored meta keeps running totals).
struct RunStats {
  int64_t offered = 0;
  int64_t accepted = 0;  // passed checks 1-3
  int64_t applied = 0;
  std::array<int64_t, 6> applied_by_type{};
  int64_t duplicates = 0;
  int64_t timers_fired = 0;
  int64_t beyond_until = 0;  // passed over by the processor's until_ms
  // Dedupe checks that read an id's first content back from the store (the
  // id was seen before the last checkpoint: a duplicate, a conflict, or a
  // rare hash collision).
  int64_t dedupe_reads = 0;
  // Under a memory budget: entities that left memory at checkpoints (orders,
  // lines, groups, shares), and those an event brought back from their rows.
  int64_t evicted = 0;
  int64_t faulted = 0;
  std::map<std::string, int64_t> rejected;  // by reason
  int64_t rejected_total() const {
    int64_t n = 0;
    for (auto& [r, c] : rejected) n += c;
    return n;
  }
};

}  // namespace fission
