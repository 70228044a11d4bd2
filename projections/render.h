// JSON views of stored records: the canonical export's objects (spec section
// 7), and with `audit` the extra fields an auditor needs (rule version, the
// event and input position behind each line, order and tier change). Shared
// by `export`, `query` and the HTTP API, so every view shows the same numbers.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "projections/store.h"

namespace fission {

using Json = nlohmann::ordered_json;

Json LineJson(const pb::Line& l, bool audit);
// `key` is the entity key (tenant 0x00 id); `lines` the array of LineJson.
Json DistributorJson(std::string_view key, const pb::Distributor& d, Json lines);
Json GroupJson(std::string_view key, const pb::Group& g);
Json MemberJson(std::string_view key, const pb::Member& m, bool audit);
Json OrderJson(std::string_view key, const pb::Order& o, bool audit);
Json RejectionJson(const pb::Rejection& r);
// Compact (indent -1) or indented; invalid UTF-8 is replaced, never thrown on.
std::string Dump(const Json& j, int indent = -1);

}  // namespace fission
