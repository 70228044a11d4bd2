// libFuzzer target: the rules-file parser (events/rules.h).
//
// An accepted rule book must satisfy the contract's limits (section 5): at
// most 3 commission levels, levels + the largest tier bonus within 5000 bps,
// tiers from 0 strictly increasing, versions in increasing effective_from;
// and For() must answer for any tenant and instant.
#include <cstdlib>
#include <string_view>

#include "events/rules.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto r = fission::ParseRules(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!r.ok()) {
    if (r.error().message.empty()) std::abort();
    return 0;
  }
  const fission::RuleBook& book = r.value();
  if (book.tenants.find("default") == book.tenants.end()) std::abort();
  for (const auto& [tenant, versions] : book.tenants) {
    if (versions.empty()) std::abort();
    for (size_t i = 0; i < versions.size(); ++i) {
      const auto& v = versions[i];
      if (i > 0 && !(versions[i - 1].effective_from.v < v.effective_from.v)) std::abort();
      if (v.commission.levels_bps.size() > 3) std::abort();
      int64_t max_bonus = 0, sum = 0;
      for (const auto& [name, b] : v.commission.tier_bonus_bps) max_bonus = std::max(max_bonus, b.v);
      for (const auto& l : v.commission.levels_bps) sum += l.v + max_bonus;
      if (sum > 5000) std::abort();
      if (v.tiers.levels.empty() || v.tiers.levels.front().min_growth != 0) std::abort();
      for (size_t k = 1; k < v.tiers.levels.size(); ++k) {
        if (!(v.tiers.levels[k - 1].min_growth < v.tiers.levels[k].min_growth)) std::abort();
      }
    }
    (void)book.For(tenant, fission::Millis(INT64_MIN));
    (void)book.For(tenant, fission::Millis(INT64_MAX));
  }
  (void)book.For("no-such-tenant", fission::Millis(0));
  return 0;
}
