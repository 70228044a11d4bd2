#include "projections/history.h"

#include <fmt/format.h>

#include <stdexcept>

#include "projections/keys.h"

namespace fission {
namespace {

// The version at `ref`: its change read into `change` (kept when the change
// is the one already there), the row's entry copied out with the change's
// time and cause.
void Load(uint64_t ref, const ReadChange& read, pb::Change& change, uint64_t& loaded, pb::Version* v,
          uint64_t* prev) {
  const uint64_t seq = VersionChange(ref);
  if (seq != loaded) {
    change.Clear();
    if (!read(seq, &change)) throw std::runtime_error(fmt::format("history is broken: change {} is missing", seq));
    loaded = seq;
  }
  const uint32_t index = VersionIndex(ref);
  if (index >= static_cast<uint32_t>(change.rows_size())) {
    throw std::runtime_error(fmt::format("history is broken: change {} has no row {}", seq, index));
  }
  const pb::ChangedRow& row = change.rows(static_cast<int>(index));
  v->set_at_ms(change.at_ms());
  *v->mutable_cause() = change.cause();
  v->set_timer(change.timer());
  v->set_row(row.row());
  *prev = row.prev();
}

}  // namespace

std::optional<pb::Version> VersionAt(uint64_t last_version, int64_t at_ms, const ReadChange& read) {
  pb::Change change;
  uint64_t loaded = 0, prev = 0;
  pb::Version v;
  for (uint64_t ref = last_version; ref != 0; ref = prev) {
    Load(ref, read, change, loaded, &v, &prev);
    if (v.at_ms() <= at_ms) return v;
  }
  return std::nullopt;
}

void ForEachVersion(uint64_t last_version, const ReadChange& read,
                    const std::function<bool(const pb::Version&)>& fn) {
  pb::Change change;
  uint64_t loaded = 0, prev = 0;
  pb::Version v;
  std::optional<int64_t> newer_at;  // the instant of the version just visited
  for (uint64_t ref = last_version; ref != 0; ref = prev) {
    Load(ref, read, change, loaded, &v, &prev);
    if (newer_at && *newer_at == v.at_ms()) continue;  // an earlier change of the same instant
    newer_at = v.at_ms();
    if (!fn(v)) return;
  }
}

uint64_t LastVersionOf(char table, std::string_view row) {
  auto parse = [&](auto msg) {
    if (!msg.ParseFromArray(row.data(), static_cast<int>(row.size()))) {
      throw std::runtime_error(fmt::format("corrupt row in table '{}'", table));
    }
    return msg.last_version();
  };
  switch (static_cast<Table>(table)) {
    case Table::kDistributor: return parse(pb::Distributor());
    case Table::kGroup: return parse(pb::Group());
    case Table::kMember: return parse(pb::Member());
    case Table::kLine: return parse(pb::Line());
    default: throw std::logic_error(fmt::format("table '{}' keeps no history", table));
  }
}

}  // namespace fission
