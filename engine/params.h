// The HTTP API's request parameters: their types and their validation, apart
// from the server and the database so they can be fuzzed on their own
// (tests/fuzz/fuzz_query_params.cc).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "events/types.h"

namespace fission {

struct ApiError {
  int status;        // 400, 404, 409, 500
  std::string code;  // e.g. "not_found", "bad_parameter"
  std::string message;
};

inline constexpr int kMaxLimit = 1000;

struct Page {
  std::string after;  // opaque cursor from a previous answer's "next"; "" = from the start
  int limit = 100;    // 1..kMaxLimit
};

// The query parameters of a /v1 request, validated.
struct QueryParams {
  std::optional<int64_t> as_of_ms;
  Page page;  // after, limit
  bool has_limit = false;
  std::optional<std::string> sort, reason;
};

// Validates decoded query parameters (cpp-httplib's multimap): `as_of` an RFC
// 3339 time with an offset (a space is read as the '+' form decoding turned
// it into), `limit` 1..1000, `after` a cursor from this API. A repeated name
// counts once, its first value; unknown names are ignored. Never throws.
Result<QueryParams, ApiError> ParseQueryParams(const std::multimap<std::string, std::string>& params);

// A page cursor ("next" of an answer) back to its key suffix; nullopt if
// `cursor` is not one (lower-case hex of even length).
std::optional<std::string> DecodeCursor(std::string_view cursor);

// At most 80 bytes of a caller's value, for echoing it in a message.
std::string Clip(std::string_view v);

}  // namespace fission
