// The canonical dump (spec section 7) and single-record views, read from any
// Store. Pure formatting: the same Store contents always give the same bytes.
#pragma once

#include <functional>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>

#include "projections/store.h"

namespace fission {

// Writes every projection as one JSON object per line, sorted by kind, tenant,
// id; returns the number of lines written.
int64_t ExportAll(Store& store, std::ostream& out);

// The same lines, each with its sort key: (kind index, row key). Ordering
// lines of several stores by that key gives the canonical order of their union.
void ExportKeyed(Store& store,
                 const std::function<void(int kind, std::string_view row_key, const std::string& line)>& fn);

// One record as a JSON object (the export's line, plus extra audit fields),
// or nullopt when it does not exist. kind: distributor|group|member|order.
std::optional<std::string> QueryJson(Store& store, std::string_view kind, std::string_view tenant,
                                     std::string_view id, int indent = 2);

}  // namespace fission
