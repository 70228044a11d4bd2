// The typed state on its way out: the stored rows (records.proto, under the
// keys of keys.h) that the typed core writes, and the port it writes them to.
//
// Encoding happens here only: once per commit for each entity the batch
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

// The stored row of each entity, filled into `out` (cleared first).
void FillMemberRow(const State& s, const Tenant& t, Idx m, pb::Member* out);
void FillDistributorRow(const Tenant& t, Idx m, pb::Distributor* out);
void FillLineRow(const State& s, const Tenant& t, Idx l, pb::Line* out);
void FillOrderRow(const State& s, const Tenant& t, Idx o, pb::Order* out);
void FillGroupRow(const Tenant& t, Idx g, pb::Group* out);
void FillShareRow(const Tenant& t, Idx s, pb::Share* out);
void FillProvenance(const State& s, const Provenance& p, pb::Provenance* out);

// Row keys.
std::string LineRowKey(const Tenant& t, Idx l);

// Encodes rows into a RowSink. Keeps one message of each kind and a buffer
// across calls, so encoding reuses their memory instead of allocating per row.
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
  void RecordChange(const State& s, Tenant& t, uint64_t seq, int64_t at_ms, const pb::Provenance* cause,
                    std::string_view timer, RowSink& sink);

 private:
  pb::Member member_;
  pb::Distributor distributor_;
  pb::Line line_;
  pb::Order order_;
  pb::Group group_;
  pb::Share share_;
  pb::Change change_;
  std::string buf_;
};

}  // namespace fission
