// The ports between the typed core and whatever keeps its rows.
//
// The core (processor.h) holds the projection state as structs in memory
// and writes rows out through a RowSink: the rows written once as they
// happen (rejections, stored events, tier changes, the changes that hold
// history) and, at each checkpoint, every entity the batch changed, encoded once
// (rows.h). When it starts on a store that is not empty, it reads them back
// through a RowSource. Readers (export, query, statements) see the rows
// through the Store port. The rows are protobuf records of
// schemas/fission/v1/records.proto under the keys of keys.h.
//
// The engine's StateDb implements all three over RocksDB (a RowSink there
// fills the next commit's WriteBatch); MemStore implements them in memory for
// tests. None is thread-safe.
#pragma once

#include <functional>
#include <memory>
#include <string_view>

#include <google/protobuf/message_lite.h>

#include "fission/v1/records.pb.h"
#include "projections/keys.h"

namespace fission {

namespace pb = ::fission::v1;

// Where rows go.
class RowSink {
 public:
  virtual ~RowSink() = default;
  virtual void Put(Table t, std::string_view key, std::string_view value) = 0;
  virtual void Delete(Table t, std::string_view key) = 0;
  // Deletes every row of `t` whose key starts with `prefix`.
  virtual void DeletePrefix(Table t, std::string_view prefix) = 0;
};

// Rows written earlier, read back: all of a table at start, and single rows
// or key ranges while running (what the state in memory keeps only in part,
// such as the content of old event ids, is faulted in from here). Reads see
// every row handed to the RowSink before the last checkpoint.
class RowSource {
 public:
  virtual ~RowSource() = default;
  using Fn = std::function<void(std::string_view key, std::string_view value)>;
  // Every row of table `t` whose key starts with `prefix`, in key order.
  virtual void ScanRows(Table t, std::string_view prefix, const Fn& fn) = 0;
  void ScanRows(Table t, const Fn& fn) { ScanRows(t, "", fn); }
  // The row's value; false when it does not exist.
  virtual bool GetRow(Table t, std::string_view key, std::string* value) = 0;
  // As GetRow, for a row of the current-state tables last handed to the sink
  // before the previous checkpoint: a store that writes commits behind need
  // not wait for the one in flight. (The memory budget's faults read only
  // such rows: nothing changed since that checkpoint leaves memory.)
  virtual bool GetSettledRow(Table t, std::string_view key, std::string* value) { return GetRow(t, key, value); }
};

// Rows as records, for readers.
class Store {
 public:
  virtual ~Store() = default;

  // The row, or nullptr when it does not exist. The pointer stays valid
  // until the Store is destroyed.
  virtual const google::protobuf::MessageLite* FindRow(Table t, std::string_view key) = 0;
  // Parses the row into `out`; false when it does not exist. Nothing is
  // kept (for readers that visit many rows once, such as history chains).
  virtual bool ReadRow(Table t, std::string_view key, google::protobuf::MessageLite* out) = 0;
  using ScanFn =
      std::function<bool(std::string_view key, const google::protobuf::MessageLite& row)>;
  // Visits rows of `t` whose key starts with `prefix` and is at or after
  // `from`, in key order, until `fn` returns false.
  virtual void ScanFrom(Table t, std::string_view prefix, std::string_view from,
                        const ScanFn& fn) = 0;
  // Every row of `t` whose key starts with `prefix`.
  void Scan(Table t, std::string_view prefix, const ScanFn& fn) { ScanFrom(t, prefix, prefix, fn); }

  template <class R>
  const R* Find(Table t, std::string_view key) {
    return static_cast<const R*>(FindRow(t, key));
  }
};

// A new empty record of the type stored in table `t`.
std::unique_ptr<google::protobuf::MessageLite> NewRow(Table t);

// All rows in ordered maps, decoded; for tests.
class MemStore final : public Store, public RowSink, public RowSource {
 public:
  MemStore();
  ~MemStore() override;
  const google::protobuf::MessageLite* FindRow(Table t, std::string_view key) override;
  bool ReadRow(Table t, std::string_view key, google::protobuf::MessageLite* out) override;
  void ScanFrom(Table t, std::string_view prefix, std::string_view from, const ScanFn& fn) override;
  // A value that does not parse is stored as an empty record.
  void Put(Table t, std::string_view key, std::string_view value) override;
  void Delete(Table t, std::string_view key) override;
  void DeletePrefix(Table t, std::string_view prefix) override;
  void ScanRows(Table t, std::string_view prefix, const Fn& fn) override;
  bool GetRow(Table t, std::string_view key, std::string* value) override;
  using RowSource::ScanRows;
  // The row, created empty when absent (tests that write rows by hand).
  google::protobuf::MessageLite* MutableRow(Table t, std::string_view key);
  template <class R>
  R* Mutable(Table t, std::string_view key) {
    return static_cast<R*>(MutableRow(t, key));
  }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace fission
