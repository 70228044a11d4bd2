// Event-time parsing and formatting (spec section 1).
//
// Input: RFC 3339 with an offset ("2026-11-01T09:30:00+08:00" or "...Z"),
// fractional seconds of 1 to 3 digits. Output: UTC with exactly three
// fractional digits ("2026-11-01T01:30:00.000Z"). Pure functions; no clock.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "events/types.h"

namespace fission {

// Returns nullopt when `s` is not a valid RFC 3339 timestamp as above
// (including impossible dates such as 2026-02-30 and leap seconds).
std::optional<Millis> ParseRfc3339(std::string_view s);

// Formats as UTC with milliseconds: "YYYY-MM-DDTHH:MM:SS.mmmZ".
std::string FormatRfc3339(Millis t);

// Business date of instant `t` at `utc_offset_minutes`, as days since 1970-01-01.
int64_t BusinessDay(Millis t, int utc_offset_minutes);

// "YYYY-MM-DD" for a day number since 1970-01-01.
std::string FormatDay(int64_t day);

// Days since 1970-01-01 of a proleptic Gregorian civil date.
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d);

}  // namespace fission
