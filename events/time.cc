#include "events/time.h"

#include <fmt/format.h>

namespace fission {
namespace {

// Floor division for negative instants (before 1970).
int64_t FloorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

struct Civil {
  int64_t y;
  unsigned m;
  unsigned d;
};

// Inverse of DaysFromCivil (the era-based algorithm for the proleptic
// Gregorian calendar: 400-year eras of 146097 days).
Civil CivilFromDays(int64_t z) {
  z += 719468;
  const int64_t era = FloorDiv(z, 146097);
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  const auto d = static_cast<unsigned>(doy - (153 * mp + 2) / 5 + 1);
  const auto m = static_cast<unsigned>(mp < 10 ? mp + 3 : mp - 9);
  return {yoe + era * 400 + (m <= 2 ? 1 : 0), m, d};
}

bool IsLeap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

unsigned DaysInMonth(int64_t y, unsigned m) {
  static constexpr unsigned kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return (m == 2 && IsLeap(y)) ? 29 : kDays[m - 1];
}

// Reads exactly `n` decimal digits at s[*i]; advances *i.
bool Digits(std::string_view s, size_t* i, size_t n, int64_t* out) {
  if (*i + n > s.size()) return false;
  int64_t v = 0;
  for (size_t k = 0; k < n; ++k) {
    char c = s[*i + k];
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *i += n;
  *out = v;
  return true;
}

bool Expect(std::string_view s, size_t* i, char c) {
  if (*i >= s.size() || s[*i] != c) return false;
  ++*i;
  return true;
}

}  // namespace

int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2 ? 1 : 0;
  const int64_t era = FloorDiv(y, 400);
  const int64_t yoe = y - era * 400;
  const int64_t mp = m > 2 ? m - 3 : m + 9;
  const int64_t doy = (153 * mp + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

std::optional<Millis> ParseRfc3339(std::string_view s) {
  size_t i = 0;
  int64_t year = 0, mon = 0, day = 0, hh = 0, mm = 0, ss = 0;
  if (!Digits(s, &i, 4, &year) || !Expect(s, &i, '-') || !Digits(s, &i, 2, &mon) ||
      !Expect(s, &i, '-') || !Digits(s, &i, 2, &day) || !Expect(s, &i, 'T') ||
      !Digits(s, &i, 2, &hh) || !Expect(s, &i, ':') || !Digits(s, &i, 2, &mm) ||
      !Expect(s, &i, ':') || !Digits(s, &i, 2, &ss)) {
    return std::nullopt;
  }
  if (mon < 1 || mon > 12 || day < 1 ||
      day > DaysInMonth(year, static_cast<unsigned>(mon)) || hh > 23 || mm > 59 || ss > 59) {
    return std::nullopt;
  }
  int64_t ms = 0;
  if (i < s.size() && s[i] == '.') {
    ++i;
    size_t n = 0;
    while (i + n < s.size() && s[i + n] >= '0' && s[i + n] <= '9') ++n;
    if (n < 1 || n > 3) return std::nullopt;
    int64_t frac = 0;
    Digits(s, &i, n, &frac);
    for (size_t k = n; k < 3; ++k) frac *= 10;
    ms = frac;
  }
  int64_t offset_min = 0;
  if (i < s.size() && s[i] == 'Z') {
    ++i;
  } else if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
    const int sign = s[i] == '-' ? -1 : 1;
    ++i;
    int64_t oh = 0, om = 0;
    if (!Digits(s, &i, 2, &oh) || !Expect(s, &i, ':') || !Digits(s, &i, 2, &om) || oh > 23 ||
        om > 59) {
      return std::nullopt;
    }
    offset_min = sign * (oh * 60 + om);
  } else {
    return std::nullopt;
  }
  if (i != s.size()) return std::nullopt;
  const int64_t days =
      DaysFromCivil(year, static_cast<unsigned>(mon), static_cast<unsigned>(day));
  const int64_t secs = days * 86400 + hh * 3600 + mm * 60 + ss - offset_min * 60;
  return Millis(secs * 1000 + ms);
}

std::string FormatRfc3339(Millis t) {
  const int64_t day = FloorDiv(t.v, kDayMs);
  const int64_t in_day = t.v - day * kDayMs;
  const Civil c = CivilFromDays(day);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", c.y, c.m, c.d,
                     in_day / 3'600'000, in_day / 60'000 % 60, in_day / 1000 % 60, in_day % 1000);
}

int64_t BusinessDay(Millis t, int utc_offset_minutes) {
  return FloorDiv(t.v + int64_t{utc_offset_minutes} * 60'000, kDayMs);
}

std::string FormatDay(int64_t day) {
  const Civil c = CivilFromDays(day);
  return fmt::format("{:04}-{:02}-{:02}", c.y, c.m, c.d);
}

}  // namespace fission
