// The typed state on its way out: the stored rows (records.proto, under the
// keys of keys.h) that the typed core writes, and the port it writes them to.
//
// Encoding happens here only: once per commit for each entity the batch
// dirtied (WriteBehind), and once per changed entity per applied event for
// history versions (RecordVersions). The rows are the ones readers already
// know (export, query, statements, replay), so the typed core changes how the
// state is held, not what is stored.
#pragma once

#include <string>
#include <string_view>

#include "fission/v1/records.pb.h"
#include "projections/keys.h"
#include "projections/store.h"
#include "projections/state.h"

namespace fission {

namespace pb = ::fission::v1;

// The stored row of each entity.
pb::Member MemberRow(const State& s, const Tenant& t, Idx m);
pb::Distributor DistributorRow(const Tenant& t, Idx m);
pb::Line LineRow(const State& s, const Tenant& t, Idx l);
pb::Order OrderRow(const State& s, const Tenant& t, Idx o);
pb::Group GroupRow(const Tenant& t, Idx g);
pb::Share ShareRow(const Tenant& t, Idx s);
pb::Provenance ProvenanceRow(const State& s, const Provenance& p);

// Row keys.
std::string LineRowKey(const Tenant& t, Idx l);

// Writes every entity changed since the last call, once each, and clears the
// marks.
void WriteBehind(const State& s, Tenant& t, RowSink& sink);
void WriteBehind(State& s, RowSink& sink);

// Writes a version of every entity the event or timer just applied touched
// (history table H, keys.h) and clears the touched marks. `cause` is the
// event (nullptr for a timer, named by `timer`).
void RecordVersions(const State& s, Tenant& t, int64_t at_ms, const pb::Provenance* cause,
                    std::string_view timer, RowSink& sink);

}  // namespace fission
