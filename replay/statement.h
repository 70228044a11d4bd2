// Distributor statements for a period, from the line history the fold keeps
// (projections/history.h: each line's chain of versions): every movement of every commission line is dated
// by the event time of the event or timer that caused it, so the same period
// always gives the same statement, whenever it is run.
//
// The period is (from, to]: the opening figures are the lines as they stood
// at `from` (the same instant as an as-of query at `from`), the closing ones
// as they stood at `to`. Two identities hold for every distributor, and are
// checked (a failure is an error, not a statement):
//
//   closing_balance   = opening_balance + settled - clawed_back
//   closing_unsettled = opening_unsettled + accrued + leader_bonus - reversed - settled - voided
//
// with balance = settled lines' (amount - reversed) - clawed back (spec
// section 7's balance_fen) and unsettled = held and pending lines' (amount -
// reversed).
#pragma once

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "events/types.h"
#include "projections/store.h"

namespace fission {

struct StatementRow {
  std::string tenant, distributor;
  int64_t opening_balance = 0, opening_unsettled = 0;
  int64_t accrued = 0;       // commission lines created
  int64_t leader_bonus = 0;  // leader bonus lines created
  int64_t reversed = 0, clawed_back = 0, waived = 0;
  int64_t settled = 0;       // (amount - reversed) of lines that settled
  int64_t voided = 0;        // (amount - reversed) of held lines voided with their group
  int64_t closing_balance = 0, closing_unsettled = 0;
};

// One movement of one line, for the line-level detail.
struct Movement {
  std::string tenant, distributor, order_id;
  bool leader_bonus = false;
  int level = 0;
  int64_t at_ms = 0;
  std::string what;  // accrued | leader_bonus | reversed | clawed_back | waived | settled | voided
  int64_t amount = 0;
  std::string cause;  // event_id, or "timer:settlement" / "timer:group_expiry"
};

struct StatementOptions {
  std::optional<std::string> tenant;  // all tenants when absent
  int64_t from_ms = INT64_MIN;
  int64_t to_ms = INT64_MAX;
  bool movements = false;  // also list every movement in the period
};

struct Statements {
  std::vector<StatementRow> rows;  // by tenant, distributor; those with any non-zero figure
  std::vector<Movement> movements;
};

// Computes the statements; an error names what could not be trusted (history
// not kept, or an identity that does not hold).
Result<Statements, std::string> ComputeStatements(Store& store, const StatementOptions& options);

void WriteStatementsCsv(const Statements& s, bool movements, std::ostream& out);
void WriteStatementsJson(const Statements& s, bool movements, std::ostream& out);

}  // namespace fission
