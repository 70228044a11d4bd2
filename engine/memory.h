// Where a fission process's memory goes.
//
// The parts that configuration bounds (RocksDB's block cache and memtables,
// the row caches of engine/warm_rows.h, the commit buffers) report what they
// hold; the allocator (jemalloc, when the executable links it) and the kernel
// give the totals. What the parts do not account for is the rest: the
// decoded rows' own structures beyond their estimate, the fold's working
// state, librdkafka, the allocator's retention.
//
// ReadProcessMemory is thread-safe; the parts come from Engine::Memory (fold
// thread) and RocksMemory (any thread: RocksDB properties).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace rocksdb {
class ColumnFamilyHandle;
class DB;
}

namespace fission {

struct MemoryPart {
  std::string name;  // a metric label value: lower case, underscores
  uint64_t bytes = 0;
};

struct ProcessMemory {
  uint64_t resident = 0;       // VmRSS
  uint64_t peak_resident = 0;  // VmHWM
  // jemalloc's figures (stats.*); all 0 when another allocator is in use.
  bool allocator_known = false;
  uint64_t allocated = 0;           // bytes the program holds
  uint64_t allocator_resident = 0;  // pages the allocator has resident, its metadata included
  uint64_t retained = 0;            // address space kept but returned to the kernel
};
ProcessMemory ReadProcessMemory();
// Returns freed pages to the kernel now (jemalloc: every arena purged;
// otherwise glibc's malloc_trim), so that a resident figure read next counts
// what is in use. Benchmarks call it between stages.
void ReleaseFreeMemory();

// RocksDB's parts for `db`, summed over `columns`: memtables (active and
// unflushed), table readers (what they hold outside the block cache), the
// block cache's usage and, of it, the pinned part.
std::vector<MemoryPart> RocksMemory(rocksdb::DB* db, const std::vector<rocksdb::ColumnFamilyHandle*>& columns);

// One line: "resident R MiB (peak P), allocated A MiB: part x, ..., other y".
// "other" is allocated minus the parts (omitted when the allocator is unknown).
std::string FormatMemory(const std::vector<MemoryPart>& parts, const ProcessMemory& process);

}  // namespace fission
