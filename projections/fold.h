// The domain fold on typed state: applies one accepted event, or one due
// timer, to a tenant's structs (spec section 6).
//
// Pure: no clock, no I/O, no randomness. Time comes from the event envelope
// or the timer's deadline. It mutates the structs of state.h in place,
// marks what it changed (dirty for write-behind, touched for history), puts
// the rows written once (tier changes) to a RowSink, and schedules timers in
// the tenant's timer heap.
//
// Contract: Apply either applies the whole event and returns nullopt, or
// returns a business rejection and changes nothing (every business check runs
// before the first change).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "events/decode.h"
#include "events/rules.h"
#include "projections/keys.h"
#include "projections/rows.h"
#include "projections/state.h"

namespace fission {

struct Rejected {
  std::string reason;  // e.g. "duplicate_order", "unknown_group"
  std::string detail;
};

// Joined members a forming group may hold (projections/README decision 20).
inline constexpr int kMaxGroupMembers = 1000;

// A scheduled timer of one tenant: a group's expiry or a line's settlement.
struct Timer {
  int64_t deadline_ms = 0;
  TimerKind kind = TimerKind::kGroupExpiry;
  Idx target = kNone;  // group or line
};

// The tenant's timers in firing order (spec section 3): by deadline, then
// expiries before settlements, then by group id or line key. A timer whose
// target no longer waits for it (a group that succeeded before its expiry)
// is skipped when it comes due, not removed when it is cancelled.
class TimerHeap {
 public:
  void Push(const Tenant& t, Timer timer);
  bool empty() const { return heap_.empty(); }
  const Timer& top() const { return heap_.front(); }
  void Pop(const Tenant& t);
  size_t size() const { return heap_.size(); }
  // Whether `timer` still waits: the group forming with that expiry, the
  // line pending with that settlement instant.
  static bool Live(const Tenant& t, const Timer& timer);

 private:
  std::vector<Timer> heap_;
};

class Fold {
 public:
  Fold(const RuleBook& rules, State& state, RowSink& sink) : rules_(rules), state_(state), sink_(sink) {}

  [[nodiscard]] std::optional<Rejected> Apply(Tenant& t, TimerHeap& timers, const pb::Event& e,
                                              const Cause& cause);
  // Fires a timer of `t` that TimerHeap::Live says still waits.
  void Fire(Tenant& t, TimerHeap& timers, const Timer& timer);

 private:
  std::optional<Rejected> ApplyShare(const pb::Event& e);
  std::optional<Rejected> ApplyJoin(const pb::Event& e);
  std::optional<Rejected> ApplyPayment(const pb::Event& e);
  std::optional<Rejected> ApplyRefund(const pb::Event& e);
  void ApplyCheckin(const pb::Event& e);

  // The member `id`, created (with its starting tier) when no event named it yet.
  Idx TouchMember(std::string_view id, const pb::Event& e);
  // The member's distributor totals, created empty when absent; touched.
  Distributor& Dist(Idx member);
  void Bind(const pb::Event& e, const RuleVersion& r);
  void ChangeGrowth(Idx member, int64_t d_growth, int64_t d_points, const RuleVersion& tier_rules,
                    int64_t at_ms, std::string_view event_id);
  void AppendTierChange(Idx member, TierId tier, int64_t at_ms, std::string_view event_id);
  void SucceedGroup(Idx g, int64_t at_ms, bool is_virtual);
  void FailGroup(Idx g, int64_t at_ms);
  void ReleaseHeld(Idx line, int64_t at_ms);
  // Starts a line's freeze at `at_ms`: settled at once when its freeze is 0
  // days, else pending with a settlement timer.
  void StartFreeze(Idx line, int64_t at_ms);
  void VoidHeld(Idx line);
  void Settle(Idx line, int64_t at_ms);
  void AddLine(Idx line, int sign);
  const RuleVersion& OrderRules(const Order& o, int64_t fallback_ms) const;

  const RuleBook& rules_;
  State& state_;
  RowSink& sink_;
  // The call being served.
  Tenant* t_ = nullptr;
  TimerHeap* timers_ = nullptr;
  const Cause* cause_ = nullptr;  // null while a timer fires
};

// Adds (sign +1) or removes (sign -1) a line's contribution to its
// distributor's totals. Every line mutation is bracketed by the two calls, so
// the totals always equal the sums over the lines.
void AddLineToTotals(Distributor& d, const Line& l, int sign);

}  // namespace fission
