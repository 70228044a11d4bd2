#include "projections/history.h"

namespace fission {

void HistoryRecorder::Note(Table t, std::string_view key) {
  std::string k;
  k.reserve(key.size() + 1);
  k.push_back(static_cast<char>(t));
  k.append(key);
  if (seen_.insert(k).second) touched_.push_back(std::move(k));
}

void HistoryRecorder::Record(int64_t at_ms, const pb::Provenance* cause, std::string_view timer) {
  version_.Clear();
  version_.set_at_ms(at_ms);
  if (cause) *version_.mutable_cause() = *cause;
  version_.set_timer(std::string(timer));
  for (const std::string& k : touched_) {
    const auto t = static_cast<Table>(k[0]);
    const std::string_view key = std::string_view(k).substr(1);
    const auto* row = inner_.FindRow(t, key);
    if (!row) continue;  // erased since: nothing stands at this instant
    // The Version's fields, then its `row` (field 4) appended in wire format:
    // the row is serialized once, straight into place.
    buf_.clear();
    version_.SerializeToString(&buf_);
    const size_t n = row->ByteSizeLong();
    buf_.push_back(static_cast<char>((4 << 3) | 2));
    for (uint64_t v = n; ; v >>= 7) {
      if (v < 0x80) {
        buf_.push_back(static_cast<char>(v));
        break;
      }
      buf_.push_back(static_cast<char>((v & 0x7f) | 0x80));
    }
    row->AppendToString(&buf_);
    inner_.PutRow(Table::kHistory, HistoryKey(t, key, at_ms), buf_);
  }
  Discard();
}

}  // namespace fission
