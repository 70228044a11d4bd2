#include "engine/params.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>

#include "events/time.h"

namespace fission {

std::optional<std::string> DecodeCursor(std::string_view s) {
  if (s.size() % 2) return std::nullopt;
  auto val = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  std::string out;
  for (size_t i = 0; i < s.size(); i += 2) {
    int hi = val(s[i]), lo = val(s[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi * 16 + lo));
  }
  return out;
}

std::string Clip(std::string_view v) {
  return v.size() <= 80 ? std::string(v) : std::string(v.substr(0, 80)) + "...";
}

Result<QueryParams, ApiError> ParseQueryParams(const std::multimap<std::string, std::string>& params) {
  using Out = Result<QueryParams, ApiError>;
  auto first = [&](const char* name) -> std::optional<std::string> {
    auto it = params.find(name);
    return it == params.end() ? std::nullopt : std::optional(it->second);
  };
  QueryParams q;
  if (auto v = first("as_of")) {
    // An unencoded "+08:00" arrives as " 08:00" (form decoding); a space is
    // never part of an RFC 3339 time, so it can only have been a plus.
    std::replace(v->begin(), v->end(), ' ', '+');
    auto t = ParseRfc3339(*v);
    if (!t) {
      return Out::Error({400, "bad_parameter",
                         "as_of: not an RFC 3339 time with an offset, e.g. 2026-11-01T09:30:00+08:00"});
    }
    q.as_of_ms = t->v;
  }
  if (auto v = first("limit")) {
    int limit = 0;
    auto [ptr, ec] = std::from_chars(v->data(), v->data() + v->size(), limit);
    if (ec != std::errc() || ptr != v->data() + v->size() || limit < 1 || limit > kMaxLimit) {
      return Out::Error({400, "bad_parameter",
                         fmt::format("limit: '{}' is not a number from 1 to {}", Clip(*v), kMaxLimit)});
    }
    q.page.limit = limit;
    q.has_limit = true;
  }
  if (auto v = first("after")) {
    if (!v->empty() && !DecodeCursor(*v)) {
      return Out::Error({400, "bad_parameter", "after: not a cursor from this API"});
    }
    q.page.after = *v;
  }
  q.sort = first("sort");
  q.reason = first("reason");
  return q;
}

}  // namespace fission
