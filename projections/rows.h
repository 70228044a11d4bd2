// The typed state on its way out: the stored rows (records.proto, under the
// keys of keys.h) that the typed core writes, and the port it writes them to.
//
// Encoding happens here only (straight into wire format, wire.h): once per commit for each entity the batch
// dirtied (WriteBehind), and once per changed entity per applied event for
// history (RecordChange: one change record per event or timer, keyed by its
// sequence). The current rows are the ones readers already know (export,
// query, statements, replay); history is read through version chains
// (Change, records.proto).
#pragma once

#include <string>
#include <string_view>

#include "fission/v1/records.pb.h"
#include "projections/keys.h"
#include "projections/store.h"
#include "projections/state.h"

namespace fission {

namespace pb = ::fission::v1;

// The stored row of each entity, appended to `out` in the wire format of its
// records.proto message (projections/wire.h: the bytes protobuf would write).
// `with_version`: with last_version, as a current row; the versions of
// history leave it out (their chain links are in the change record).
void EncodeMemberRow(const State& s, const Tenant& t, Idx m, bool with_version, std::string* out);
void EncodeDistributorRow(const Tenant& t, Idx m, bool with_version, std::string* out);
void EncodeLineRow(const State& s, const Tenant& t, Idx l, bool with_version, std::string* out);
void EncodeOrderRow(const State& s, const Tenant& t, Idx o, std::string* out);
void EncodeGroupRow(const Tenant& t, Idx g, bool with_version, std::string* out);
void EncodeShareRow(const Tenant& t, Idx s, std::string* out);

// Row keys.
std::string LineRowKey(const Tenant& t, Idx l);

// Encodes rows into a RowSink. Keeps its buffer across calls, so encoding
// allocates nothing per row.
class RowEncoder {
 public:
  // Writes every entity changed since the last call, once each, and clears
  // the marks. Each row carries its entity's latest version (last_version).
  void WriteBehind(const State& s, Tenant& t, RowSink& sink);
  void WriteBehind(State& s, RowSink& sink);

  // Writes change `seq` (table V, keys.h): a version of every entity the
  // event or timer just applied touched, each chained to that entity's
  // previous version, which it then replaces as the entity's latest; clears
  // the touched marks. `cause` is the event (nullptr for a timer, named by
  // `timer`).
  void RecordChange(const State& s, Tenant& t, uint64_t seq, int64_t at_ms, const Cause* cause,
                    std::string_view timer, RowSink& sink);

 private:
  std::string buf_;
};

}  // namespace fission
