#include "engine/memory.h"

#include <malloc.h>

#include <fstream>
#include <string_view>

#include <fmt/format.h>
#include <rocksdb/db.h>

// jemalloc's control interface, when the executable links jemalloc (weak: the
// sanitizer builds and the tests link glibc's malloc, and then it is null).
extern "C" int mallctl(const char* name, void* oldp, size_t* oldlenp, void* newp, size_t newlen)
    __attribute__((weak));

namespace fission {
namespace {

uint64_t StatusKiB(std::string_view text, std::string_view field) {
  const size_t at = text.find(field);
  if (at == std::string_view::npos) return 0;
  uint64_t v = 0;
  for (size_t i = at + field.size(); i < text.size() && text[i] != '\n'; ++i) {
    if (text[i] >= '0' && text[i] <= '9') v = v * 10 + static_cast<uint64_t>(text[i] - '0');
  }
  return v;
}

bool JemallocStat(const char* name, uint64_t* out) {
  size_t v = 0, len = sizeof(v);
  if (mallctl(name, &v, &len, nullptr, 0) != 0) return false;
  *out = v;
  return true;
}

std::string MiB(uint64_t bytes) { return fmt::format("{:.0f}", static_cast<double>(bytes) / (1 << 20)); }

}  // namespace

ProcessMemory ReadProcessMemory() {
  ProcessMemory m;
  std::ifstream f("/proc/self/status");
  const std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  m.resident = StatusKiB(text, "VmRSS:") << 10;
  m.peak_resident = StatusKiB(text, "VmHWM:") << 10;
  if (mallctl != nullptr) {
    // The statistics are a snapshot refreshed by writing the epoch.
    uint64_t epoch = 1;
    size_t len = sizeof(epoch);
    mallctl("epoch", &epoch, &len, &epoch, len);
    m.allocator_known = JemallocStat("stats.allocated", &m.allocated) &&
                        JemallocStat("stats.resident", &m.allocator_resident) &&
                        JemallocStat("stats.retained", &m.retained);
  }
  return m;
}

void ReleaseFreeMemory() {
  if (mallctl != nullptr) {
    // "arena.<MALLCTL_ARENAS_ALL>.purge", MALLCTL_ARENAS_ALL being 4096.
    mallctl("arena.4096.purge", nullptr, nullptr, nullptr, 0);
  } else {
    malloc_trim(0);
  }
}

std::vector<MemoryPart> RocksMemory(rocksdb::DB* db, const std::vector<rocksdb::ColumnFamilyHandle*>& columns) {
  auto sum = [&](const char* property) {
    uint64_t total = 0;
    for (auto* cf : columns) {
      uint64_t v = 0;
      if (db->GetIntProperty(cf, property, &v)) total += v;
    }
    return total;
  };
  // The block cache is shared by the column families: read it once.
  uint64_t cache = 0, pinned = 0;
  db->GetIntProperty(rocksdb::DB::Properties::kBlockCacheUsage, &cache);
  db->GetIntProperty(rocksdb::DB::Properties::kBlockCachePinnedUsage, &pinned);
  return {{"memtables", sum(rocksdb::DB::Properties::kSizeAllMemTables.c_str())},
          {"table_readers", sum(rocksdb::DB::Properties::kEstimateTableReadersMem.c_str())},
          {"block_cache", cache},
          {"block_cache_pinned", pinned}};
}

std::string FormatMemory(const std::vector<MemoryPart>& parts, const ProcessMemory& p) {
  std::string out = fmt::format("resident {} MiB (peak {})", MiB(p.resident), MiB(p.peak_resident));
  if (p.allocator_known) {
    out += fmt::format(", allocated {} MiB (allocator resident {}, retained {})", MiB(p.allocated),
                       MiB(p.allocator_resident), MiB(p.retained));
  }
  out += ":";
  uint64_t accounted = 0;
  for (const MemoryPart& part : parts) {
    out += fmt::format(" {} {},", part.name, MiB(part.bytes));
    // The pinned blocks are part of the block cache's usage.
    if (part.name != "block_cache_pinned") accounted += part.bytes;
  }
  if (p.allocator_known) {
    out += fmt::format(" other {}", p.allocated > accounted ? MiB(p.allocated - accounted) : "0");
  } else if (!parts.empty()) {
    out.pop_back();
  }
  return out;
}

}  // namespace fission
