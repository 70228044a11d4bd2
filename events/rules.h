// Versioned business rules per tenant (spec section 5).
//
// A RuleBook is immutable once loaded. LoadRules refuses a bad file with a
// message that names the offending field by its JSON path, e.g.
// "tenants.default[0].commission.levels_bps: at most 3 levels ...".
// Unknown keys are refused too: a typo in a rules file must not silently fall
// back to a default when money depends on it.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "events/types.h"

namespace fission {

enum class BindingMode { kFirstTouch, kOverwrite, kWindow };
enum class RefundAfterSettlement { kNegativeBalance, kCapAtBalance, kNone };
enum class AfterLastDay { kRepeatLast, kRestart };

struct TierLevel {
  std::string name;
  int64_t min_growth = 0;
};

struct RuleVersion {
  std::string version;
  Millis effective_from;
  int utc_offset_minutes = 480;
  struct {
    std::vector<Bps> levels_bps;                 // at most 3
    bool self_purchase = false;
    int32_t freeze_days = 7;
    BindingMode binding = BindingMode::kFirstTouch;
    int32_t binding_window_days = 30;
    RefundAfterSettlement refund_after_settlement = RefundAfterSettlement::kNegativeBalance;
    std::map<std::string, Bps> tier_bonus_bps;  // by tier name
  } commission;
  struct {
    bool virtual_success = false;
    Fen leader_bonus_fen;
  } group;
  struct {
    int64_t growth_per_yuan = 1;
    int64_t points_per_yuan = 0;
    int64_t checkin_growth = 5;
    bool demote_on_refund = true;
    std::vector<TierLevel> levels;               // starts at 0, strictly increasing
  } tiers;
  struct {
    std::vector<int64_t> points_by_day;
    AfterLastDay after_last_day = AfterLastDay::kRepeatLast;
  } checkin;

  Bps TierBonus(const std::string& tier) const;
  // The highest level whose min_growth <= growth.
  const std::string& TierFor(int64_t growth) const;
  // Index of `tier` in levels, or -1 when this version does not know it.
  int TierRank(const std::string& tier) const;
  int64_t CheckinPoints(int64_t streak) const;
};

class RuleBook {
 public:
  // The version governing an event of `tenant` at `t`: the tenant's own list,
  // else "default"'s; the last version with effective_from <= t, else the first.
  const RuleVersion& For(std::string_view tenant, Millis t) const;
  // Looks up a version by name within the tenant's list (falls back as For does).
  const RuleVersion* ByName(std::string_view tenant, std::string_view version) const;

  std::map<std::string, std::vector<RuleVersion>, std::less<>> tenants;
};

struct RulesError {
  std::string message;
};

Result<RuleBook, RulesError> ParseRules(std::string_view json_text);
Result<RuleBook, RulesError> LoadRulesFile(const std::string& path);

std::string_view BindingModeName(BindingMode m);
std::string_view RefundPolicyName(RefundAfterSettlement p);

}  // namespace fission
