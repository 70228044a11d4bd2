// The domain fold: applies one accepted event, or one due timer, to the
// projection state (spec section 6).
//
// Pure: no clock, no I/O, no randomness. Time comes from the event envelope or
// the timer's deadline. State lives behind the Store port; timers are handed
// to a TimerQueue, which decides when they are due (the Processor).
//
// Contract: Apply either applies the whole event and returns nullopt, or
// returns a business rejection and changes nothing (every business check runs
// before the first write).
#pragma once

#include <optional>
#include <string>

#include "events/decode.h"
#include "events/rules.h"
#include "projections/store.h"

namespace fission {

struct Rejected {
  std::string reason;  // e.g. "duplicate_order", "unknown_group"
  std::string detail;
};

class TimerQueue {
 public:
  virtual ~TimerQueue() = default;
  virtual void Schedule(const std::string& timer_key) = 0;
  virtual void Cancel(const std::string& timer_key) = 0;
};

// Joined members a forming group may hold. The contract sets no bound, but
// a group of at most 100 that thousands join is a flood, and every join
// rewrites (and versions) the group's row. Joins beyond this are rejected as
// `group_member_limit`; a payment's implicit join is never refused (paid
// members are bounded by the group's size). Our decision, documented in
// projections/README.
inline constexpr int kMaxGroupMembers = 1000;

class Fold {
 public:
  Fold(const RuleBook& rules, Store& store, TimerQueue& timers)
      : rules_(rules), store_(store), timers_(timers) {}

  [[nodiscard]] std::optional<Rejected> Apply(const pb::Event& e, const pb::Provenance& from);

  // Fires the timer whose key (keys.h) is `timer_key`. Its deadline is the
  // instant the effects are dated with.
  void Fire(std::string_view timer_key);

 private:
  std::optional<Rejected> ApplyShare(const pb::Event& e, const pb::Provenance& from);
  std::optional<Rejected> ApplyJoin(const pb::Event& e);
  std::optional<Rejected> ApplyPayment(const pb::Event& e, const pb::Provenance& from);
  std::optional<Rejected> ApplyRefund(const pb::Event& e);
  void ApplyCheckin(const pb::Event& e);

  pb::Member* TouchMember(const std::string& tenant, const std::string& id, const pb::Event& e);
  void Bind(const pb::Event& e, const RuleVersion& rules);
  void ChangeGrowth(const std::string& tenant, const std::string& member, int64_t d_growth,
                    int64_t d_points, const RuleVersion& tier_rules, Millis at,
                    const std::string& event_id);
  void SucceedGroup(const std::string& tenant, const std::string& group_id, pb::Group* g,
                    Millis at, bool is_virtual);
  void FailGroup(const std::string& tenant, pb::Group* g, Millis at);
  // Moves a held line to pending (or settled when its freeze is 0 days).
  void ReleaseHeld(const std::string& line_key, Millis at);
  void VoidHeld(const std::string& line_key);
  void SettleLine(const std::string& line_key, Millis at);
  // Dates a tier change with the input position of the event being applied.
  // Appends a tier change to the member's history: a row of its own (table T),
  // written once, so a member whose tier moves often costs the same per event.
  void AppendTierChange(const std::string& tenant, const std::string& id, pb::Member* m,
                        const std::string& tier, int64_t at_ms, const std::string& event_id);
  const RuleVersion& OrderRules(const std::string& tenant, const pb::Order& o, Millis fallback);

  const RuleBook& rules_;
  Store& store_;
  TimerQueue& timers_;
  const pb::Provenance* from_ = nullptr;  // the event being applied (Apply only)
};

// Adds (sign +1) or removes (sign -1) a line's contribution to its
// distributor's totals. Every line mutation is bracketed by the two calls, so
// the totals always equal the sums over the lines (checked in tests).
void AddLineToTotals(pb::Distributor* d, const pb::Line& l, int sign);

}  // namespace fission
