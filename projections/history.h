// History of projection rows, for as-of queries.
//
// HistoryRecorder is a Store that forwards to another and notes which
// distributor, group, member and line rows the fold changes. After each
// applied event or fired timer the Processor calls Record(at): every noted row
// is written, whole, as one Version under HistoryKey(table, key, at), with the
// event (or timer) that changed it. Rows change only in canonical order, so a
// row's versions are written in time order, and the version at or before T is
// the row as it stood at event time T: an as-of read is one reverse seek, not
// a replay. Several changes at one instant overwrite one version, which then
// holds the state after the last of them.
//
// Cost: one extra row write per changed row per event (a payment with three
// levels writes about eight); none for events that change nothing. Versions
// are never read by the fold. Disabled, the recorder only forwards.
#pragma once

#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "projections/store.h"

namespace fission {

class HistoryRecorder final : public Store {
 public:
  HistoryRecorder(Store& inner, bool enabled) : inner_(inner), enabled_(enabled) {}

  const google::protobuf::MessageLite* FindRow(Table t, std::string_view key) override {
    return inner_.FindRow(t, key);
  }
  google::protobuf::MessageLite* MutableRow(Table t, std::string_view key) override {
    if (enabled_ && Versioned(t)) Note(t, key);
    return inner_.MutableRow(t, key);
  }
  google::protobuf::MessageLite* CreateRow(Table t, std::string_view key) override {
    if (enabled_ && Versioned(t)) Note(t, key);
    return inner_.CreateRow(t, key);
  }
  google::protobuf::MessageLite* OverwriteRow(Table t, std::string_view key) override {
    if (enabled_ && Versioned(t)) Note(t, key);
    return inner_.OverwriteRow(t, key);
  }
  void EraseRow(Table t, std::string_view key) override { inner_.EraseRow(t, key); }
  void PutRow(Table t, std::string_view key, std::string_view bytes) override {
    inner_.PutRow(t, key, bytes);
  }
  void ScanFrom(Table t, std::string_view prefix, std::string_view from, const ScanFn& fn) override {
    inner_.ScanFrom(t, prefix, from, fn);
  }

  // Writes a version of every row changed since the last Record or Discard.
  // `cause` is the event applied (nullptr for a timer, named by `timer`).
  void Record(int64_t at_ms, const pb::Provenance* cause, std::string_view timer);
  // Forgets the noted rows (a rejected event changed nothing).
  void Discard() {
    touched_.clear();
    seen_.clear();
  }

  static bool Versioned(Table t) {
    return t == Table::kDistributor || t == Table::kGroup || t == Table::kMember || t == Table::kLine;
  }

 private:
  void Note(Table t, std::string_view key);

  Store& inner_;
  bool enabled_;
  std::vector<std::string> touched_;  // table byte + row key, in first-touch order
  std::unordered_set<std::string> seen_;
  pb::Version version_;
  std::string buf_;
};

}  // namespace fission
