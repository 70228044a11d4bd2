// The port between the pure folds and whatever keeps their state.
//
// A Store holds rows of the tables in keys.h, each row a protobuf record. The
// folds read and write rows only through this interface; they never see
// RocksDB. Two implementations exist: MemStore (tests, the reference fold) and
// the engine's RocksDB-backed StateDb, which buffers changes and writes them,
// with the source position, in one atomic WriteBatch.
//
// Not thread-safe. Pointers returned by Find/Mutable stay valid until the
// owner checkpoints (StateDb::Commit) or the row is erased; callers must not
// hold them across a commit.
#pragma once

#include <functional>
#include <memory>
#include <string_view>

#include <google/protobuf/message_lite.h>

#include "fission/v1/records.pb.h"
#include "projections/keys.h"

namespace fission {

namespace pb = ::fission::v1;

class Store {
 public:
  virtual ~Store() = default;

  // The row, or nullptr when it does not exist. Does not mark it changed.
  virtual const google::protobuf::MessageLite* FindRow(Table t, std::string_view key) = 0;
  // The row, created empty when absent, marked changed.
  virtual google::protobuf::MessageLite* MutableRow(Table t, std::string_view key) = 0;
  // The row `key`, which the caller knows does not exist (its key is new by
  // construction): created empty and marked changed. A Store may skip looking
  // for it; the default looks, as MutableRow does.
  virtual google::protobuf::MessageLite* CreateRow(Table t, std::string_view key) {
    return MutableRow(t, key);
  }
  // The row `key`, reset to empty without regard to what was there (for rows
  // whose old content does not matter, such as timer markers), marked
  // changed. A Store may skip reading it.
  virtual google::protobuf::MessageLite* OverwriteRow(Table t, std::string_view key) {
    auto* row = MutableRow(t, key);
    row->Clear();
    return row;
  }
  // Removes the row if present.
  virtual void EraseRow(Table t, std::string_view key) = 0;
  // Sets the row to the serialized record `bytes` without reading what was
  // there: for rows written once and never read back by the fold (history
  // versions, stored events). A Store may make them visible only once
  // committed.
  virtual void PutRow(Table t, std::string_view key, std::string_view bytes) = 0;
  using ScanFn =
      std::function<bool(std::string_view key, const google::protobuf::MessageLite& row)>;
  // Visits rows of `t` whose key starts with `prefix` and is at or after
  // `from`, in key order, until `fn` returns false. Sees every change made so
  // far through this Store, except PutRow's (which a Store may show only once
  // committed). `fn` must not change the Store.
  virtual void ScanFrom(Table t, std::string_view prefix, std::string_view from,
                        const ScanFn& fn) = 0;
  // Every row of `t` whose key starts with `prefix`.
  void Scan(Table t, std::string_view prefix, const ScanFn& fn) { ScanFrom(t, prefix, prefix, fn); }

  template <class R>
  const R* Find(Table t, std::string_view key) {
    return static_cast<const R*>(FindRow(t, key));
  }
  template <class R>
  R* Mutable(Table t, std::string_view key) {
    return static_cast<R*>(MutableRow(t, key));
  }
  template <class R>
  R* Create(Table t, std::string_view key) {
    return static_cast<R*>(CreateRow(t, key));
  }
};

// A new empty record of the type stored in table `t`.
std::unique_ptr<google::protobuf::MessageLite> NewRow(Table t);

// All of the state in ordered maps; for tests and the reference fold.
class MemStore final : public Store {
 public:
  MemStore();
  ~MemStore() override;
  const google::protobuf::MessageLite* FindRow(Table t, std::string_view key) override;
  google::protobuf::MessageLite* MutableRow(Table t, std::string_view key) override;
  void EraseRow(Table t, std::string_view key) override;
  void PutRow(Table t, std::string_view key, std::string_view bytes) override;
  void ScanFrom(Table t, std::string_view prefix, std::string_view from, const ScanFn& fn) override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace fission
