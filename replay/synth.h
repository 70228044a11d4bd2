// Seeded synthetic social-commerce traffic, for the demo, tests and benchmarks.
//
// The stream looks like a real shop's: a power-law share tree (popular
// distributors attract most bindings), group-buys that fill and that expire,
// solo orders through share links, partial and full refunds days later (some
// after settlement), members with daily check-in habits, a rule-version change
// halfway through, and a little hostile input: malformed lines, wrong types,
// unknown types, negative amounts, bad ids, exact re-sends, conflicting
// re-sends, mild arrival disorder and a few events later than the lateness
// bound. The same options always produce the same bytes.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

namespace fission {

struct SynthOptions {
  uint64_t seed = 1;
  int64_t members = 3000;
  int64_t days = 28;
  // 2026-10-01T00:00:00+08:00
  int64_t start_ms = 1'790'784'000'000;
  // Fraction of lines that are hostile (malformed, wrong types, ...).
  double bad_fraction = 0.002;
  // Fraction of events re-sent verbatim later.
  double duplicate_fraction = 0.003;
  // Fraction of events delayed far beyond the default lateness bound.
  double very_late_fraction = 0.0005;
  // Independent shops ("shop-00", "shop-01", ...), members split among them.
  // 1: a single tenant, "default" (the tenant field is omitted).
  int64_t tenants = 1;
};

struct SynthCounts {
  int64_t lines = 0;
};

// Calls `emit` with each JSON line in arrival order.
SynthCounts Synthesize(const SynthOptions& options, const std::function<void(const std::string&)>& emit);

// Rules matching the stream: "v1" from 2026-01-01, "v2" from the stream's midpoint.
std::string SynthRulesJson(const SynthOptions& options);

}  // namespace fission
