// The canonical dump (spec section 7) and single-record views, read from any
// Store. Pure formatting: the same Store contents always give the same bytes.
#pragma once

#include <functional>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "projections/store.h"

namespace fission {

// Writes every projection as one JSON object per line, sorted by kind, tenant,
// id; returns the number of lines written.
int64_t ExportAll(Store& store, std::ostream& out);

// The same lines, each with its sort key: (kind index, row key). Ordering
// lines of several stores by that key gives the canonical order of their union.
void ExportKeyed(Store& store,
                 const std::function<void(int kind, std::string_view row_key, const std::string& line)>& fn);

// The canonical dump of several stores (data dirs of instances that share a
// consumer group), merged. A tenant found in more than one store is taken
// from the store whose stored offset for that tenant's partition is highest
// (a copy left behind when a partition moved is behind or, if complete,
// identical). Returns an error message, writing nothing, when it cannot
// decide (the same tenant with no partition position to compare).
std::optional<std::string> ExportMerged(const std::vector<Store*>& stores, std::ostream& out);

// Fills m->tier_history (after any entries an older row kept inline) from the
// member's tier-change rows; with `as_of_ms`, only the changes at or before it.
void LoadTierHistory(Store& store, std::string_view member_key, pb::Member* m,
                     std::optional<int64_t> as_of_ms = std::nullopt);

// One record as a JSON object (the export's line, plus extra audit fields),
// or nullopt when it does not exist. kind: distributor|group|member|order.
std::optional<std::string> QueryJson(Store& store, std::string_view kind, std::string_view tenant,
                                     std::string_view id, int indent = 2);

}  // namespace fission
