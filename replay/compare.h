// Finance's comparisons of whole projections: a digest of the canonical
// export, and the field-by-field difference of two data dirs (the what-if
// report when one of them was replayed under proposed rules).
#pragma once

#include <cstdint>
#include <map>
#include <ostream>
#include <string>

#include "projections/render.h"
#include "projections/store.h"

namespace fission {

struct Digest {
  std::string hash;                      // "xxh3-128:" + 32 hex digits, over the export's bytes
  int64_t lines = 0;
  std::map<std::string, int64_t> kinds;  // lines per kind
};

// The digest of ExportAll(store): equal digests mean byte-identical exports.
Digest DigestOf(Store& store);

struct DiffOptions {
  int max_listed = 1000;  // entities listed in full; all are counted
};

struct DiffReport {
  Json json;         // {"differing": {...}, "only_in_a": {...}, "only_in_b": {...}, "entities": [...], "totals": {...}}
  bool same = true;  // no difference at all (rejections and orders included)
};

// Compares the projections of `a` and `b` entity by entity: for each
// distributor, member and group present in both, the fields whose values
// differ (a distributor's lines by order, kind and level), entities present
// in only one, and for distributors the sum of each money field in a and b.
// Orders and rejections are counted, not listed. Streams both exports side by
// side: memory does not grow with the data.
DiffReport Diff(Store& a, Store& b, const DiffOptions& options);

// The report as readable text.
void PrintDiff(const DiffReport& r, const std::string& name_a, const std::string& name_b, std::ostream& out);

}  // namespace fission
