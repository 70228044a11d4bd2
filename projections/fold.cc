#include "projections/fold.h"

#include <fmt/format.h>

#include <algorithm>

#include "events/time.h"
#include "events/assert.h"

namespace fission {
namespace {

Rejected Reject(std::string reason, std::string detail) { return Rejected{std::move(reason), std::move(detail)}; }

int64_t GrowthOf(int64_t net_fen, const RuleVersion& r) { return net_fen / 100 * r.tiers.growth_per_yuan; }
int64_t PointsOf(int64_t net_fen, const RuleVersion& r) { return net_fen / 100 * r.tiers.points_per_yuan; }

RefundAfterSettlement PolicyOf(const RuleVersion& r) { return r.commission.refund_after_settlement; }

// Whether timer a fires after timer b (spec section 3; projections/README 5).
bool FiresAfter(const Tenant& t, const Timer& a, const Timer& b) {
  if (a.deadline_ms != b.deadline_ms) return a.deadline_ms > b.deadline_ms;
  if (a.kind != b.kind) return a.kind > b.kind;
  if (a.kind == TimerKind::kGroupExpiry) return t.groups[a.target].id > t.groups[b.target].id;
  const Line& la = t.lines[a.target];
  const Line& lb = t.lines[b.target];
  if (la.distributor != lb.distributor) return t.members[la.distributor].id > t.members[lb.distributor].id;
  if (la.order != lb.order) return t.orders[la.order].id > t.orders[lb.order].id;
  if (la.leader_bonus != lb.leader_bonus) return la.leader_bonus > lb.leader_bonus;
  return la.level > lb.level;
}

}  // namespace

void TimerHeap::Push(const Tenant& t, Timer timer) {
  heap_.push_back(timer);
  std::push_heap(heap_.begin(), heap_.end(), [&](const Timer& a, const Timer& b) { return FiresAfter(t, a, b); });
}

void TimerHeap::Pop(const Tenant& t) {
  std::pop_heap(heap_.begin(), heap_.end(), [&](const Timer& a, const Timer& b) { return FiresAfter(t, a, b); });
  heap_.pop_back();
}

bool TimerHeap::Live(const Tenant& t, const Timer& timer) {
  if (timer.kind == TimerKind::kGroupExpiry) {
    const Group& g = t.groups[timer.target];
    return g.status == GroupStatus::kForming && g.expires_at_ms == timer.deadline_ms;
  }
  const Line& l = t.lines[timer.target];
  return l.state == LineState::kPending && l.has_settles_at && l.settles_at_ms == timer.deadline_ms;
}

void AddLineToTotals(Distributor& d, const Line& l, int sign) {
  const int64_t net = sign * (l.amount_fen - l.reversed_fen);
  switch (l.state) {
    case LineState::kHeld: d.held_fen += net; break;
    case LineState::kPending: d.pending_fen += net; break;
    case LineState::kSettled: d.settled_fen += net; break;
    case LineState::kVoid: d.voided_fen += net; break;
  }
  d.reversed_fen += sign * l.reversed_fen;
  d.clawed_back_fen += sign * l.clawed_back_fen;
  d.waived_fen += sign * l.waived_fen;
}

void Fold::AddLine(Idx line, int sign) {
  Line& l = t_->lines[line];
  AddLineToTotals(Dist(l.distributor), l, sign);
  t_->TouchLine(line);
}

Distributor& Fold::Dist(Idx member) {
  Member& m = t_->members[member];
  if (m.dist == kNone) {
    m.dist = static_cast<Idx>(t_->distributors.size());
    t_->distributors.emplace_back();
  }
  t_->TouchDistributor(member);
  return t_->distributors[m.dist];
}

std::optional<Rejected> Fold::Apply(Tenant& t, TimerHeap& timers, const pb::Event& e, const Cause& cause) {
  t_ = &t;
  timers_ = &timers;
  cause_ = &cause;
  switch (e.type()) {
    case pb::SHARE: return ApplyShare(e);
    case pb::JOIN: return ApplyJoin(e);
    case pb::PAYMENT: return ApplyPayment(e);
    case pb::REFUND: return ApplyRefund(e);
    case pb::CHECKIN: ApplyCheckin(e); return std::nullopt;
    default: return Reject("unknown_type", "event type not handled by the fold");
  }
}

Idx Fold::TouchMember(std::string_view id, const pb::Event& e) {
  Idx m = t_->members.Find(id);
  if (m == kNone) {  // the first event naming this member: record the starting tier
    m = t_->members.Add(id);
    const RuleVersion& r = rules_.For(t_->name, Millis(e.occurred_at_ms()));
    t_->members[m].tier = state_.tiers.TierFor(r, 0);
    AppendTierChange(m, t_->members[m].tier, e.occurred_at_ms(), e.event_id());
  }
  t_->TouchMember(m);
  return m;
}

void Fold::AppendTierChange(Idx member, TierId tier, int64_t at_ms, std::string_view event_id) {
  Member& m = t_->members[member];
  pb::TierChange h;
  h.set_tier(state_.tiers.Name(tier));
  h.set_at_ms(at_ms);
  h.set_event_id(std::string(event_id));
  if (cause_) {
    h.set_source(state_.Source(cause_->source));
    h.set_position(cause_->position);
  }
  sink_.Put(Table::kTierChange, TierChangeKey(t_->name, m.id, m.tier_changes), h.SerializeAsString());
  ++m.tier_changes;
}

std::optional<Rejected> Fold::ApplyShare(const pb::Event& e) {
  if (Idx s = t_->FindShare(e.share_id()); s != kNone) {
    const Share& sh = t_->shares[s];
    return Reject("share_id_taken", fmt::format("share_id '{}' was registered by '{}' (event '{}')",
                                                e.share_id(), t_->members[sh.sharer].id, sh.event_id));
  }
  const Idx sharer = TouchMember(e.sharer(), e);
  const Idx s = t_->shares.Add(e.share_id());
  Share& sh = t_->shares[s];
  sh.sharer = sharer;
  sh.shared_at_ms = e.occurred_at_ms();
  sh.event_id.assign(cause_->event_id);
  t_->shares.MarkDirty(s);
  t_->members[sharer].distributor = true;
  Dist(sharer).shares += 1;
  return std::nullopt;
}

void Fold::Bind(const pb::Event& e, const RuleVersion& r) {
  if (!e.has_share_id()) return;
  const Idx s = t_->FindShare(e.share_id());
  if (s == kNone) return;
  const Idx d = t_->shares[s].sharer;
  const Idx known = t_->members.Find(e.member());  // kNone: M is new, so in no chain
  if (d == known) return;
  // Refuse a cycle: M must not be anywhere up D's chain. Chains are acyclic by
  // this very check, so the walk ends; the bound is a guard, not a limit.
  if (known != kNone) {
    Idx cur = d;
    for (int steps = 0; cur != kNone; ++steps) {
      FISSION_ASSERT(steps < 1'000'000, "upline chain longer than a million members");
      if (cur == known) return;
      cur = t_->members[cur].upline;
    }
  }
  const Idx m = TouchMember(e.member(), e);
  Member& mm = t_->members[m];
  bool bind = false;
  switch (r.commission.binding) {
    case BindingMode::kFirstTouch: bind = mm.upline == kNone; break;
    case BindingMode::kOverwrite: bind = true; break;
    case BindingMode::kWindow:
      bind = mm.upline == kNone ||
             e.occurred_at_ms() - mm.bound_at_ms >= int64_t{r.commission.binding_window_days} * kDayMs;
      break;
  }
  if (!bind) return;
  if (mm.upline != d) {
    if (mm.upline != kNone) Dist(mm.upline).downlines -= 1;
    Dist(d).downlines += 1;
  }
  mm.upline = d;
  mm.bound_at_ms = e.occurred_at_ms();
}

std::optional<Rejected> Fold::ApplyJoin(const pb::Event& e) {
  Idx g = t_->groups.Find(e.group_id());
  // A group that left memory exists and is closed (only closed groups
  // leave): the join is refused without bringing it and its orders back.
  const bool evicted = g == kNone && t_->faults && t_->faults->GroupEvicted(*t_, e.group_id());
  if (e.opens()) {
    if (g != kNone || evicted) return Reject("group_exists", fmt::format("group '{}' already exists", e.group_id()));
  } else {
    if (g == kNone && !evicted) return Reject("unknown_group", fmt::format("no group '{}'", e.group_id()));
    if (evicted || t_->groups[g].status != GroupStatus::kForming) {
      return Reject("group_closed", fmt::format("group '{}' is no longer forming", e.group_id()));
    }
    const Group& existing = t_->groups[g];
    if (existing.members.size() >= kMaxGroupMembers) {
      const Idx m = t_->members.Find(e.member());
      const bool in = m != kNone && std::any_of(existing.members.begin(), existing.members.end(),
                                                 [&](const GroupMember& gm) { return gm.member == m; });
      if (!in) {
        return Reject("group_member_limit",
                      fmt::format("group '{}' already has {} joined members, the most a group may hold",
                                  e.group_id(), kMaxGroupMembers));
      }
    }
  }
  const RuleVersion& r = rules_.For(t_->name, Millis(e.occurred_at_ms()));
  Bind(e, r);
  const Idx m = TouchMember(e.member(), e);
  if (e.opens()) {
    g = t_->groups.Add(e.group_id());
    Group& ng = t_->groups[g];
    ng.status = GroupStatus::kForming;
    ng.leader = m;
    ng.size = e.size();
    ng.product_id = e.product_id();
    ng.opened_at_ms = e.occurred_at_ms();
    ng.expires_at_ms = e.expires_at_ms();
    ng.virtual_success = r.group.virtual_success;
    ng.leader_bonus_fen = r.group.leader_bonus_fen.v;
    ng.leader_bonus_freeze_days = r.commission.freeze_days;
    ng.rule = &r;
    timers_->Push(*t_, Timer{e.expires_at_ms(), TimerKind::kGroupExpiry, g});
  }
  t_->TouchGroup(g);
  Group& grp = t_->groups[g];
  if (std::none_of(grp.members.begin(), grp.members.end(), [&](const GroupMember& gm) { return gm.member == m; })) {
    grp.members.push_back(GroupMember{m, e.occurred_at_ms(), false, kNone});
  }
  return std::nullopt;
}

void Fold::ChangeGrowth(Idx member, int64_t d_growth, int64_t d_points, const RuleVersion& tier_rules,
                        int64_t at_ms, std::string_view event_id) {
  t_->TouchMember(member);
  Member& m = t_->members[member];
  m.growth += d_growth;
  m.points += d_points;
  const TierId next = state_.tiers.TierFor(tier_rules, m.growth);
  if (next == m.tier) return;
  if (!tier_rules.tiers.demote_on_refund && state_.tiers.Rank(tier_rules, next) < state_.tiers.Rank(tier_rules, m.tier)) {
    return;  // a tier never goes down when demote_on_refund is off
  }
  m.tier = next;
  AppendTierChange(member, next, at_ms, event_id);
}

std::optional<Rejected> Fold::ApplyPayment(const pb::Event& e) {
  if (t_->FindOrder(e.order_id()) != kNone) {
    return Reject("duplicate_order", fmt::format("order '{}' was already paid", e.order_id()));
  }
  const int64_t t = e.occurred_at_ms();
  const RuleVersion& r = rules_.For(t_->name, Millis(t));

  // (1) binding
  Bind(e, r);
  const Idx buyer = TouchMember(e.member(), e);
  const bool buyer_is_distributor = t_->members[buyer].distributor;
  const Idx buyer_upline = t_->members[buyer].upline;

  // Where does the order stand in its group? Decided now; applied in step (4).
  enum class InGroup { kOutside, kCounts, kOverflow } in_group = InGroup::kOutside;
  const Idx g = e.has_group_id() ? t_->FindGroup(e.group_id()) : kNone;
  if (g != kNone) {
    const Group& grp = t_->groups[g];
    if (grp.status != GroupStatus::kForming) {
      in_group = InGroup::kOverflow;
    } else {
      in_group = InGroup::kCounts;
      for (const GroupMember& gm : grp.members) {
        if (gm.member == buyer && gm.paid) in_group = InGroup::kOverflow;
      }
    }
  }

  // (2) the order, the buyer's growth and points
  const Idx oi = t_->orders.Add(e.order_id());
  Order& o = t_->orders[oi];
  t_->orders.MarkDirty(oi);
  o.member = buyer;
  o.amount_fen = e.amount_fen();
  o.commission_base_fen = e.commission_base_fen();
  if (e.has_group_id()) {
    o.has_group_id = true;
    o.group_id = e.group_id();
  }
  o.paid_at_ms = t;
  o.rule = &r;
  o.paid_by = Provenance{std::string(cause_->event_id), cause_->source, cause_->position};
  o.growth = GrowthOf(e.amount_fen(), r);
  o.points = PointsOf(e.amount_fen(), r);
  ChangeGrowth(buyer, o.growth, o.points, r, t, e.event_id());

  // (3) commission lines
  if (in_group != InGroup::kOverflow) {
    std::array<Idx, 3> chain{};
    size_t n = 0;
    Idx next = (r.commission.self_purchase && buyer_is_distributor) ? buyer : buyer_upline;
    while (next != kNone && n < r.commission.levels_bps.size()) {
      if (std::find(chain.begin(), chain.begin() + static_cast<long>(n), next) != chain.begin() + static_cast<long>(n)) {
        break;
      }
      chain[n++] = next;
      next = t_->members[next].upline;
    }
    for (size_t k = 0; k < n; ++k) {
      const Idx b = chain[k];
      const Bps rate = r.commission.levels_bps[k] + state_.tiers.Bonus(r, t_->members[b].tier);
      const Idx li = t_->NewLine();
      Line& l = t_->lines[li];
      l.distributor = b;
      l.order = oi;
      l.level = static_cast<uint8_t>(k + 1);
      l.rate_bps = rate.v;
      l.base_fen = e.commission_base_fen();
      l.amount_fen = CommissionAmount(Fen(e.commission_base_fen()), rate).v;
      l.freeze_days = r.commission.freeze_days;
      l.refund_policy = PolicyOf(r);
      l.rule = &r;
      if (in_group == InGroup::kCounts) {
        l.state = LineState::kHeld;
      } else {
        StartFreeze(li, t);
      }
      AddLine(li, +1);
      Dist(b).lines += 1;
      o.lines[o.line_count++] = li;
    }
  }

  // (4) the group
  if (in_group == InGroup::kOverflow) {
    o.overflow = true;
    o.refund_due = true;
    o.grouped = true;
    t_->TouchGroup(g);
    auto& due = t_->groups[g].refund_due;
    auto at = std::lower_bound(due.begin(), due.end(), oi,
                               [&](Idx a, Idx b) { return t_->orders[a].id < t_->orders[b].id; });
    due.insert(at, oi);
  } else if (in_group == InGroup::kCounts) {
    t_->TouchGroup(g);
    Group& grp = t_->groups[g];
    auto gm = std::find_if(grp.members.begin(), grp.members.end(),
                           [&](const GroupMember& x) { return x.member == buyer; });
    if (gm == grp.members.end()) {  // implicit join
      grp.members.push_back(GroupMember{buyer, t, false, kNone});
      gm = grp.members.end() - 1;
    }
    gm->paid = true;
    gm->order = oi;
    o.grouped = true;
    grp.paid_count += 1;
    if (grp.paid_count >= grp.size) SucceedGroup(g, t, false);
  }
  return std::nullopt;
}

void Fold::ReleaseHeld(Idx line, int64_t at) {
  AddLine(line, -1);
  Line& l = t_->lines[line];
  if (l.state == LineState::kHeld) StartFreeze(line, at);
  AddLine(line, +1);
}

void Fold::StartFreeze(Idx line, int64_t at) {
  Line& l = t_->lines[line];
  l.has_settles_at = true;
  if (l.freeze_days == 0) {
    l.state = LineState::kSettled;
    l.settles_at_ms = at;
  } else {
    l.state = LineState::kPending;
    l.settles_at_ms = at + int64_t{l.freeze_days} * kDayMs;
    timers_->Push(*t_, Timer{l.settles_at_ms, TimerKind::kSettlement, line});
  }
}

void Fold::VoidHeld(Idx line) {
  AddLine(line, -1);
  Line& l = t_->lines[line];
  if (l.state == LineState::kHeld) l.state = LineState::kVoid;
  AddLine(line, +1);
}

void Fold::Settle(Idx line, int64_t at) {
  AddLine(line, -1);
  Line& l = t_->lines[line];
  if (l.state == LineState::kPending && l.settles_at_ms == at) l.state = LineState::kSettled;
  AddLine(line, +1);
}

void Fold::SucceedGroup(Idx gi, int64_t at, bool is_virtual) {
  t_->TouchGroup(gi);
  Group& g = t_->groups[gi];
  g.status = GroupStatus::kSucceeded;
  g.has_closed_at = true;
  g.closed_at_ms = at;
  g.is_virtual = is_virtual;
  Idx leader_order = kNone;
  for (const GroupMember& gm : g.members) {
    if (!gm.paid) continue;
    if (gm.member == g.leader) leader_order = gm.order;
    const Order& o = t_->orders[gm.order];
    for (uint8_t k = 0; k < o.line_count; ++k) ReleaseHeld(o.lines[k], at);
  }
  if (g.leader_bonus_fen > 0 && leader_order != kNone) {
    const Idx li = t_->NewLine();
    Line& l = t_->lines[li];
    l.distributor = g.leader;
    l.order = leader_order;
    l.leader_bonus = true;
    l.level = 0;
    l.amount_fen = g.leader_bonus_fen;
    l.freeze_days = g.leader_bonus_freeze_days;
    l.rule = g.rule;
    // The payment that filled the group, or (virtual success) its expiry timer.
    if (cause_) {
      t_->bonus_by[li] = Provenance{std::string(cause_->event_id), cause_->source, cause_->position};
    } else {
      l.created_by_timer = true;
    }
    StartFreeze(li, at);
    AddLine(li, +1);
    Dist(g.leader).lines += 1;
    t_->groups[gi].bonus_line = li;
  }
}

void Fold::FailGroup(Idx gi, int64_t at) {
  t_->TouchGroup(gi);
  Group& g = t_->groups[gi];
  g.status = GroupStatus::kFailed;
  g.has_closed_at = true;
  g.closed_at_ms = at;
  for (const GroupMember& gm : g.members) {
    if (!gm.paid) continue;
    Order& o = t_->orders[gm.order];
    t_->orders.MarkDirty(gm.order);
    if (o.refunded_fen < o.amount_fen) {
      o.refund_due = true;
      auto pos = std::lower_bound(g.refund_due.begin(), g.refund_due.end(), gm.order,
                                  [&](Idx a, Idx b) { return t_->orders[a].id < t_->orders[b].id; });
      if (pos == g.refund_due.end() || *pos != gm.order) g.refund_due.insert(pos, gm.order);
    }
    for (uint8_t k = 0; k < o.line_count; ++k) VoidHeld(o.lines[k]);
  }
}

const RuleVersion& Fold::OrderRules(const Order& o, int64_t fallback_ms) const {
  return o.rule ? *o.rule : rules_.For(t_->name, Millis(fallback_ms));
}

std::optional<Rejected> Fold::ApplyRefund(const pb::Event& e) {
  const Idx oi = t_->FindOrder(e.order_id());
  if (oi == kNone) return Reject("unknown_order", fmt::format("no order '{}'", e.order_id()));
  Order& o = t_->orders[oi];
  if (e.amount_fen() > o.amount_fen - o.refunded_fen) {
    return Reject("refund_exceeds_payment",
                  fmt::format("refund of {} fen on order '{}' exceeds the {} fen still refundable", e.amount_fen(),
                              e.order_id(), o.amount_fen - o.refunded_fen));
  }
  const int64_t t = e.occurred_at_ms();
  t_->orders.MarkDirty(oi);
  const Fen paid(o.amount_fen);
  const Fen refunded(o.refunded_fen + e.amount_fen());
  o.refunded_fen = refunded.v;

  for (uint8_t k = 0; k < o.line_count; ++k) {
    const Idx li = o.lines[k];
    AddLine(li, -1);
    Line& l = t_->lines[li];
    const Fen due = ProRata(Fen(l.amount_fen), refunded, paid);
    const int64_t take = due.v - l.reversed_fen - l.clawed_back_fen - l.waived_fen;
    FISSION_ASSERT(take >= 0, "a line was reduced by more than its refund share");
    if (take > 0) {
      switch (l.state) {
        case LineState::kHeld:
        case LineState::kPending: l.reversed_fen += take; break;
        case LineState::kSettled:
          switch (l.refund_policy) {
            case RefundAfterSettlement::kNegativeBalance: l.clawed_back_fen += take; break;
            case RefundAfterSettlement::kCapAtBalance: {
              // The distributor's balance before this refund; the line's own
              // contribution is out of the totals just now, so add it back.
              const Distributor& d = t_->distributors[t_->members[l.distributor].dist];
              const int64_t settled_before = d.settled_fen + (l.amount_fen - l.reversed_fen);
              const int64_t balance = settled_before - d.clawed_back_fen - l.clawed_back_fen;
              const int64_t claw = std::min(take, std::max<int64_t>(0, balance));
              l.clawed_back_fen += claw;
              l.waived_fen += take - claw;
              break;
            }
            case RefundAfterSettlement::kNone: l.waived_fen += take; break;
          }
          break;
        case LineState::kVoid: break;  // nothing more to take
      }
    }
    AddLine(li, +1);
  }

  // Growth and points at the payment's rates; tiers at the refund's rules.
  const RuleVersion& pr = OrderRules(o, o.paid_at_ms);
  const int64_t net = paid.v - refunded.v;
  const int64_t g = GrowthOf(net, pr), p = PointsOf(net, pr);
  const int64_t dg = g - o.growth, dp = p - o.points;
  o.growth = g;
  o.points = p;
  const Idx buyer = o.member;
  const bool fully = refunded == paid;
  const bool was_due = o.refund_due;
  if (fully) o.refund_due = false;
  ChangeGrowth(buyer, dg, dp, rules_.For(t_->name, Millis(t)), t, e.event_id());

  if (fully && o.has_group_id) {
    const Idx gi = t_->FindGroup(o.group_id);
    if (gi != kNone) {
      const Group& cg = t_->groups[gi];
      const bool counted_member =
          cg.status == GroupStatus::kForming &&
          std::any_of(cg.members.begin(), cg.members.end(), [&](const GroupMember& m) {
            return m.member == buyer && m.paid && m.order == oi;
          });
      if (was_due || counted_member) {
        t_->TouchGroup(gi);
        Group& g2 = t_->groups[gi];
        if (was_due) {
          auto it = std::find(g2.refund_due.begin(), g2.refund_due.end(), oi);
          if (it != g2.refund_due.end()) g2.refund_due.erase(it);
        }
        if (counted_member) {
          // A full refund while forming removes the member. Its held lines no
          // longer count for the group: they are void (all reversed, 0 net).
          auto it = std::find_if(g2.members.begin(), g2.members.end(),
                                 [&](const GroupMember& m) { return m.member == buyer; });
          if (it != g2.members.end()) g2.members.erase(it);
          g2.paid_count -= 1;
          for (uint8_t k = 0; k < o.line_count; ++k) VoidHeld(o.lines[k]);
        }
        // Whether g2 still refers to the order (see Order::grouped).
        o.grouped = std::any_of(g2.members.begin(), g2.members.end(), [&](const GroupMember& m) { return m.order == oi; }) ||
                    std::find(g2.refund_due.begin(), g2.refund_due.end(), oi) != g2.refund_due.end();
      }
    }
  }
  return std::nullopt;
}

void Fold::ApplyCheckin(const pb::Event& e) {
  const int64_t t = e.occurred_at_ms();
  const RuleVersion& r = rules_.For(t_->name, Millis(t));
  const Idx mi = TouchMember(e.member(), e);
  Member& m = t_->members[mi];
  const int64_t day = BusinessDay(Millis(t), r.utc_offset_minutes);
  // One per business date. A date earlier than the last one (possible only if
  // a rule change moved utc_offset_minutes) is treated as a repeat too.
  if (m.has_last_checkin && day <= m.last_checkin_day) return;
  const int64_t streak = (m.has_last_checkin && m.last_checkin_day == day - 1) ? m.checkin_streak + 1 : 1;
  m.checkin_streak = streak;
  m.has_last_checkin = true;
  m.last_checkin_day = day;
  m.checkins += 1;
  ChangeGrowth(mi, r.tiers.checkin_growth, r.CheckinPoints(streak), r, t, e.event_id());
}

void Fold::Fire(Tenant& t, TimerHeap& timers, const Timer& timer) {
  t_ = &t;
  timers_ = &timers;
  cause_ = nullptr;
  if (timer.kind == TimerKind::kSettlement) {
    Settle(timer.target, timer.deadline_ms);
    return;
  }
  const Group& g = t.groups[timer.target];
  if (g.status != GroupStatus::kForming) return;
  if (g.virtual_success && g.paid_count >= 1) {
    SucceedGroup(timer.target, timer.deadline_ms, true);
  } else {
    FailGroup(timer.target, timer.deadline_ms);
  }
}

}  // namespace fission
