// Reading history: the versions of one row, through its chain of changes.
//
// History is written as changes (table V, keys.h; Change in records.proto):
// one record per applied event or fired timer, keyed by its sequence, with a
// version of every row it touched. A current row of D, G, M or L names its
// latest version (last_version); each version names the one before (prev).
// Readers walk that chain back from the current row. Several changes at one
// fold instant read as one version, the last: the row as it stood after that
// instant (what an as-of answer or a statement means by "at T").
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "fission/v1/records.pb.h"

namespace fission {

namespace pb = ::fission::v1;

// Reads change `seq` into `out`; false when there is no such change.
using ReadChange = std::function<bool(uint64_t seq, pb::Change* out)>;

// The latest version of the current row with the given last_version whose
// instant is at or before `at_ms`; nullopt when the row did not exist then.
// Throws on a broken chain (a missing change, an index out of range).
std::optional<pb::Version> VersionAt(uint64_t last_version, int64_t at_ms, const ReadChange& read);

// Every version of the row, newest first, one per instant, until fn returns
// false.
void ForEachVersion(uint64_t last_version, const ReadChange& read,
                    const std::function<bool(const pb::Version&)>& fn);

// The last_version field of a serialized current row of table `table` (D, G,
// M or L); 0 when it has none. Throws if the row does not parse.
uint64_t LastVersionOf(char table, std::string_view row);

}  // namespace fission
