#include "projections/fold.h"

#include <fmt/format.h>

#include "events/time.h"


#include <algorithm>
#include <cassert>
#include <vector>

namespace fission {
namespace {

Rejected Reject(std::string reason, std::string detail) {
  return Rejected{std::move(reason), std::move(detail)};
}

pb::RefundPolicy ToProto(RefundAfterSettlement p) {
  switch (p) {
    case RefundAfterSettlement::kNegativeBalance: return pb::NEGATIVE_BALANCE;
    case RefundAfterSettlement::kCapAtBalance: return pb::CAP_AT_BALANCE;
    case RefundAfterSettlement::kNone: return pb::NONE;
  }
  return pb::NEGATIVE_BALANCE;
}

pb::GroupMember* FindGroupMember(pb::Group* g, const std::string& member) {
  for (auto& m : *g->mutable_members()) {
    if (m.member() == member) return &m;
  }
  return nullptr;
}

void InsertSorted(google::protobuf::RepeatedPtrField<std::string>* v, const std::string& s) {
  auto it = std::lower_bound(v->begin(), v->end(), s);
  if (it != v->end() && *it == s) return;
  v->Add(std::string(s));
  std::rotate(std::upper_bound(v->begin(), v->end() - 1, s), v->end() - 1, v->end());
}

void EraseSorted(google::protobuf::RepeatedPtrField<std::string>* v, const std::string& s) {
  auto it = std::lower_bound(v->begin(), v->end(), s);
  if (it != v->end() && *it == s) v->erase(it);
}

int64_t GrowthOf(int64_t net_fen, const RuleVersion& r) { return net_fen / 100 * r.tiers.growth_per_yuan; }
int64_t PointsOf(int64_t net_fen, const RuleVersion& r) { return net_fen / 100 * r.tiers.points_per_yuan; }

}  // namespace

void AddLineToTotals(pb::Distributor* d, const pb::Line& l, int sign) {
  const int64_t net = sign * (l.amount_fen() - l.reversed_fen());
  switch (l.state()) {
    case pb::HELD: d->set_held_fen(d->held_fen() + net); break;
    case pb::PENDING: d->set_pending_fen(d->pending_fen() + net); break;
    case pb::SETTLED: d->set_settled_fen(d->settled_fen() + net); break;
    case pb::VOID: d->set_voided_fen(d->voided_fen() + net); break;
    default: break;
  }
  d->set_reversed_fen(d->reversed_fen() + sign * l.reversed_fen());
  d->set_clawed_back_fen(d->clawed_back_fen() + sign * l.clawed_back_fen());
  d->set_waived_fen(d->waived_fen() + sign * l.waived_fen());
}

// Brackets a line mutation with its distributor's totals. `is_new`: the line
// is being created for an order paid just now, so it cannot exist yet.
class LineEdit {
 public:
  LineEdit(Store& s, std::string_view line_key, bool is_new = false)
      : line_(is_new ? s.Create<pb::Line>(Table::kLine, line_key)
                     : s.Mutable<pb::Line>(Table::kLine, line_key)),
        dist_(s.Mutable<pb::Distributor>(Table::kDistributor,
                                         EntityKey(KeyPart(line_key, 0), KeyPart(line_key, 1)))) {
    AddLineToTotals(dist_, *line_, -1);
  }
  ~LineEdit() { AddLineToTotals(dist_, *line_, +1); }
  LineEdit(const LineEdit&) = delete;
  LineEdit& operator=(const LineEdit&) = delete;
  pb::Line* line() { return line_; }
  pb::Distributor* dist() { return dist_; }

 private:
  pb::Line* line_;
  pb::Distributor* dist_;
};

std::optional<Rejected> Fold::Apply(const pb::Event& e, const pb::Provenance& from) {
  from_ = &from;
  switch (e.type()) {
    case pb::SHARE: return ApplyShare(e, from);
    case pb::JOIN: return ApplyJoin(e);
    case pb::PAYMENT: return ApplyPayment(e, from);
    case pb::REFUND: return ApplyRefund(e);
    case pb::CHECKIN: ApplyCheckin(e); return std::nullopt;
    default: return Reject("unknown_type", "event type not handled by the fold");
  }
}

pb::Member* Fold::TouchMember(const std::string& tenant, const std::string& id, const pb::Event& e) {
  pb::Member* m = store_.Mutable<pb::Member>(Table::kMember, EntityKey(tenant, id));
  if (m->tier().empty()) {  // first event naming this member: record the starting tier
    const RuleVersion& r = rules_.For(tenant, Millis(e.occurred_at_ms()));
    m->set_tier(r.TierFor(0));
    AppendTierChange(tenant, id, m, m->tier(), e.occurred_at_ms(), e.event_id());
  }
  return m;
}

std::optional<Rejected> Fold::ApplyShare(const pb::Event& e, const pb::Provenance& from) {
  const std::string key = EntityKey(e.tenant(), e.share_id());
  if (const auto* s = store_.Find<pb::Share>(Table::kShare, key)) {
    return Reject("share_id_taken", fmt::format("share_id '{}' was registered by '{}' (event '{}')",
                                                e.share_id(), s->sharer(), s->event_id()));
  }
  auto* s = store_.Mutable<pb::Share>(Table::kShare, key);
  s->set_sharer(e.sharer());
  s->set_shared_at_ms(e.occurred_at_ms());
  s->set_event_id(from.event_id());
  TouchMember(e.tenant(), e.sharer(), e)->set_distributor(true);
  auto* d = store_.Mutable<pb::Distributor>(Table::kDistributor, EntityKey(e.tenant(), e.sharer()));
  d->set_shares(d->shares() + 1);
  return std::nullopt;
}

void Fold::Bind(const pb::Event& e, const RuleVersion& r) {
  if (!e.has_share_id()) return;
  const std::string& tenant = e.tenant();
  const std::string& m = e.member();
  const auto* share = store_.Find<pb::Share>(Table::kShare, EntityKey(tenant, e.share_id()));
  if (share == nullptr) return;
  const std::string d = share->sharer();
  if (d == m) return;
  // Refuse a cycle: M must not be anywhere up D's chain. Chains are acyclic by
  // this very check, so the walk ends; the bound is a guard, not a limit.
  std::string cur = d;
  for (int steps = 0; steps < 1'000'000; ++steps) {
    if (cur == m) return;
    const auto* cm = store_.Find<pb::Member>(Table::kMember, EntityKey(tenant, cur));
    if (cm == nullptr || !cm->has_upline()) break;
    cur = cm->upline();
  }
  pb::Member* mm = TouchMember(tenant, m, e);
  bool bind = false;
  switch (r.commission.binding) {
    case BindingMode::kFirstTouch: bind = !mm->has_upline(); break;
    case BindingMode::kOverwrite: bind = true; break;
    case BindingMode::kWindow:
      bind = !mm->has_upline() ||
             e.occurred_at_ms() - mm->bound_at_ms() >= int64_t{r.commission.binding_window_days} * kDayMs;
      break;
  }
  if (!bind) return;
  if (!mm->has_upline() || mm->upline() != d) {
    if (mm->has_upline()) {
      auto* old = store_.Mutable<pb::Distributor>(Table::kDistributor, EntityKey(tenant, mm->upline()));
      old->set_downlines(old->downlines() - 1);
    }
    auto* nd = store_.Mutable<pb::Distributor>(Table::kDistributor, EntityKey(tenant, d));
    nd->set_downlines(nd->downlines() + 1);
  }
  mm->set_upline(d);
  mm->set_bound_at_ms(e.occurred_at_ms());
}

std::optional<Rejected> Fold::ApplyJoin(const pb::Event& e) {
  const std::string& tenant = e.tenant();
  const std::string gkey = EntityKey(tenant, e.group_id());
  const auto* existing = store_.Find<pb::Group>(Table::kGroup, gkey);
  if (e.opens()) {
    if (existing) return Reject("group_exists", fmt::format("group '{}' already exists", e.group_id()));
  } else {
    if (!existing) return Reject("unknown_group", fmt::format("no group '{}'", e.group_id()));
    if (existing->status() != pb::Group::FORMING) {
      return Reject("group_closed", fmt::format("group '{}' is no longer forming", e.group_id()));
    }
    if (existing->members_size() >= kMaxGroupMembers &&
        FindGroupMember(const_cast<pb::Group*>(existing), e.member()) == nullptr) {
      return Reject("group_member_limit",
                    fmt::format("group '{}' already has {} joined members, the most a group may hold",
                                e.group_id(), kMaxGroupMembers));
    }
  }
  const RuleVersion& r = rules_.For(tenant, Millis(e.occurred_at_ms()));
  Bind(e, r);
  TouchMember(tenant, e.member(), e);
  auto* g = store_.Mutable<pb::Group>(Table::kGroup, gkey);
  if (e.opens()) {
    g->set_status(pb::Group::FORMING);
    g->set_leader(e.member());
    g->set_size(e.size());
    g->set_product_id(e.product_id());
    g->set_opened_at_ms(e.occurred_at_ms());
    g->set_expires_at_ms(e.expires_at_ms());
    g->set_virtual_success(r.group.virtual_success);
    g->set_leader_bonus_fen(r.group.leader_bonus_fen.v);
    g->set_leader_bonus_freeze_days(r.commission.freeze_days);
    g->set_rule_version(r.version);
    timers_.Schedule(TimerKey(e.expires_at_ms(), TimerKind::kGroupExpiry, gkey));
  }
  if (FindGroupMember(g, e.member()) == nullptr) {
    auto* gm = g->add_members();
    gm->set_member(e.member());
    gm->set_joined_at_ms(e.occurred_at_ms());
  }
  return std::nullopt;
}

void Fold::ChangeGrowth(const std::string& tenant, const std::string& member, int64_t d_growth,
                        int64_t d_points, const RuleVersion& tier_rules, Millis at,
                        const std::string& event_id) {
  auto* m = store_.Mutable<pb::Member>(Table::kMember, EntityKey(tenant, member));
  m->set_growth(m->growth() + d_growth);
  m->set_points(m->points() + d_points);
  assert(m->growth() >= 0 && m->points() >= 0);
  const std::string& next = tier_rules.TierFor(m->growth());
  if (next == m->tier()) return;
  if (!tier_rules.tiers.demote_on_refund &&
      tier_rules.TierRank(next) < tier_rules.TierRank(m->tier())) {
    return;  // a tier never goes down when demote_on_refund is off
  }
  m->set_tier(next);
  AppendTierChange(tenant, member, m, next, at.v, event_id);
}

void Fold::AppendTierChange(const std::string& tenant, const std::string& id, pb::Member* m,
                            const std::string& tier, int64_t at_ms, const std::string& event_id) {
  pb::TierChange h;
  h.set_tier(tier);
  h.set_at_ms(at_ms);
  h.set_event_id(event_id);
  if (from_) {
    h.set_source(from_->source());
    h.set_position(from_->position());
  }
  // Sequence numbers continue after any entries an older row kept inline.
  const int64_t seq = m->tier_changes() + m->tier_history_size();
  store_.PutRow(Table::kTierChange, TierChangeKey(tenant, id, seq), h.SerializeAsString());
  m->set_tier_changes(m->tier_changes() + 1);
}

std::optional<Rejected> Fold::ApplyPayment(const pb::Event& e, const pb::Provenance& from) {
  const std::string& tenant = e.tenant();
  const std::string okey = EntityKey(tenant, e.order_id());
  if (store_.Find<pb::Order>(Table::kOrder, okey)) {
    return Reject("duplicate_order", fmt::format("order '{}' was already paid", e.order_id()));
  }
  const Millis t(e.occurred_at_ms());
  const RuleVersion& r = rules_.For(tenant, t);

  // (1) binding
  Bind(e, r);
  pb::Member* buyer = TouchMember(tenant, e.member(), e);
  const bool buyer_is_distributor = buyer->distributor();
  std::optional<std::string> buyer_upline;
  if (buyer->has_upline()) buyer_upline = buyer->upline();

  // Where does the order stand in its group? Decided now; applied in step (4).
  enum class InGroup { kNone, kCounts, kOverflow } in_group = InGroup::kNone;
  const std::string gkey = e.has_group_id() ? EntityKey(tenant, e.group_id()) : std::string();
  if (e.has_group_id()) {
    if (const auto* g = store_.Find<pb::Group>(Table::kGroup, gkey)) {
      if (g->status() != pb::Group::FORMING) {
        in_group = InGroup::kOverflow;
      } else {
        in_group = InGroup::kCounts;
        for (const auto& gm : g->members()) {
          if (gm.member() == e.member() && gm.paid()) in_group = InGroup::kOverflow;
        }
      }
    }
  }

  // (2) the order, the buyer's growth and points
  auto* o = store_.Mutable<pb::Order>(Table::kOrder, okey);
  o->set_member(e.member());
  o->set_amount_fen(e.amount_fen());
  o->set_commission_base_fen(e.commission_base_fen());
  if (e.has_group_id()) o->set_group_id(e.group_id());
  o->set_paid_at_ms(t.v);
  o->set_rule_version(r.version);
  *o->mutable_paid_by() = from;
  o->set_growth(GrowthOf(e.amount_fen(), r));
  o->set_points(PointsOf(e.amount_fen(), r));
  ChangeGrowth(tenant, e.member(), o->growth(), o->points(), r, t, e.event_id());

  // (3) commission lines
  if (in_group != InGroup::kOverflow) {
    std::vector<std::string> chain;
    std::optional<std::string> next =
        (r.commission.self_purchase && buyer_is_distributor) ? std::optional(e.member()) : buyer_upline;
    while (next && chain.size() < r.commission.levels_bps.size()) {
      if (std::find(chain.begin(), chain.end(), *next) != chain.end()) break;
      chain.push_back(*next);
      const auto* nm = store_.Find<pb::Member>(Table::kMember, EntityKey(tenant, *next));
      next = (nm && nm->has_upline()) ? std::optional(nm->upline()) : std::nullopt;
    }
    for (size_t k = 0; k < chain.size(); ++k) {
      const std::string& b = chain[k];
      const auto* bm = store_.Find<pb::Member>(Table::kMember, EntityKey(tenant, b));
      const Bps rate = r.commission.levels_bps[k] + r.TierBonus(bm ? bm->tier() : std::string());
      const int level = static_cast<int>(k + 1);
      const std::string lkey = LineKey(tenant, b, e.order_id(), false, level);
      {
        LineEdit edit(store_, lkey, /*is_new=*/true);  // the order was not paid before (checked above)
        pb::Line* l = edit.line();
        l->set_distributor(b);
        l->set_order_id(e.order_id());
        l->set_level(level);
        l->set_rate_bps(rate.v);
        l->set_base_fen(e.commission_base_fen());
        l->set_amount_fen(CommissionAmount(Fen(e.commission_base_fen()), rate).v);
        l->set_freeze_days(r.commission.freeze_days);
        l->set_refund_policy(ToProto(r.commission.refund_after_settlement));
        l->set_rule_version(r.version);
        *l->mutable_created_by() = from;
        edit.dist()->set_lines(edit.dist()->lines() + 1);
        if (in_group == InGroup::kCounts) {
          l->set_state(pb::HELD);
        } else if (r.commission.freeze_days == 0) {
          l->set_state(pb::SETTLED);
          l->set_settles_at_ms(t.v);
        } else {
          l->set_state(pb::PENDING);
          l->set_settles_at_ms(t.v + int64_t{r.commission.freeze_days} * kDayMs);
          timers_.Schedule(TimerKey(l->settles_at_ms(), TimerKind::kSettlement, lkey));
        }
      }
      auto* ref = o->add_lines();
      ref->set_distributor(b);
      ref->set_level(level);
    }
  }

  // (4) the group
  if (in_group == InGroup::kOverflow) {
    o->set_overflow(true);
    o->set_refund_due(true);
    InsertSorted(store_.Mutable<pb::Group>(Table::kGroup, gkey)->mutable_refund_due(), e.order_id());
  } else if (in_group == InGroup::kCounts) {
    auto* g = store_.Mutable<pb::Group>(Table::kGroup, gkey);
    pb::GroupMember* gm = FindGroupMember(g, e.member());
    if (gm == nullptr) {  // implicit join
      gm = g->add_members();
      gm->set_member(e.member());
      gm->set_joined_at_ms(t.v);
    }
    gm->set_paid(true);
    gm->set_order_id(e.order_id());
    g->set_paid_count(g->paid_count() + 1);
    if (g->paid_count() >= g->size()) SucceedGroup(tenant, e.group_id(), g, t, false);
  }
  return std::nullopt;
}

void Fold::ReleaseHeld(const std::string& lkey, Millis at) {
  LineEdit edit(store_, lkey);
  pb::Line* l = edit.line();
  if (l->state() != pb::HELD) return;
  if (l->freeze_days() == 0) {
    l->set_state(pb::SETTLED);
    l->set_settles_at_ms(at.v);
  } else {
    l->set_state(pb::PENDING);
    l->set_settles_at_ms(at.v + int64_t{l->freeze_days()} * kDayMs);
    timers_.Schedule(TimerKey(l->settles_at_ms(), TimerKind::kSettlement, lkey));
  }
}

void Fold::VoidHeld(const std::string& lkey) {
  LineEdit edit(store_, lkey);
  if (edit.line()->state() == pb::HELD) edit.line()->set_state(pb::VOID);
}

void Fold::SucceedGroup(const std::string& tenant, const std::string& group_id, pb::Group* g,
                        Millis at, bool is_virtual) {
  g->set_status(pb::Group::SUCCEEDED);
  g->set_closed_at_ms(at.v);
  g->set_virtual_(is_virtual);
  timers_.Cancel(TimerKey(g->expires_at_ms(), TimerKind::kGroupExpiry, EntityKey(tenant, group_id)));
  std::optional<std::string> leader_order;
  for (const auto& gm : g->members()) {
    if (!gm.paid()) continue;
    if (gm.member() == g->leader()) leader_order = gm.order_id();
    const auto* o = store_.Find<pb::Order>(Table::kOrder, EntityKey(tenant, gm.order_id()));
    if (o == nullptr) continue;
    for (const auto& ref : o->lines()) {
      ReleaseHeld(LineKey(tenant, ref.distributor(), gm.order_id(), false, ref.level()), at);
    }
  }
  if (g->leader_bonus_fen() > 0 && leader_order) {
    const std::string lkey = LineKey(tenant, g->leader(), *leader_order, true, 0);
    LineEdit edit(store_, lkey);
    pb::Line* l = edit.line();
    l->set_distributor(g->leader());
    l->set_order_id(*leader_order);
    l->set_leader_bonus(true);
    l->set_level(0);
    l->set_amount_fen(g->leader_bonus_fen());
    l->set_freeze_days(g->leader_bonus_freeze_days());
    l->set_rule_version(g->rule_version());
    // The payment that filled the group, or (virtual success) its expiry timer.
    if (from_) {
      *l->mutable_created_by() = *from_;
    } else {
      l->mutable_created_by()->set_source(fmt::format("timer:group_expiry:{}", group_id));
    }
    edit.dist()->set_lines(edit.dist()->lines() + 1);
    if (l->freeze_days() == 0) {
      l->set_state(pb::SETTLED);
      l->set_settles_at_ms(at.v);
    } else {
      l->set_state(pb::PENDING);
      l->set_settles_at_ms(at.v + int64_t{l->freeze_days()} * kDayMs);
      timers_.Schedule(TimerKey(l->settles_at_ms(), TimerKind::kSettlement, lkey));
    }
  }
}

void Fold::FailGroup(const std::string& tenant, pb::Group* g, Millis at) {
  g->set_status(pb::Group::FAILED);
  g->set_closed_at_ms(at.v);
  for (const auto& gm : g->members()) {
    if (!gm.paid()) continue;
    auto* o = store_.Mutable<pb::Order>(Table::kOrder, EntityKey(tenant, gm.order_id()));
    if (o->refunded_fen() < o->amount_fen()) {
      o->set_refund_due(true);
      InsertSorted(g->mutable_refund_due(), gm.order_id());
    }
    for (const auto& ref : o->lines()) {
      VoidHeld(LineKey(tenant, ref.distributor(), gm.order_id(), false, ref.level()));
    }
  }
}

const RuleVersion& Fold::OrderRules(const std::string& tenant, const pb::Order& o, Millis fallback) {
  const RuleVersion* r = rules_.ByName(tenant, o.rule_version());
  return r ? *r : rules_.For(tenant, fallback);
}

std::optional<Rejected> Fold::ApplyRefund(const pb::Event& e) {
  const std::string& tenant = e.tenant();
  const std::string okey = EntityKey(tenant, e.order_id());
  const auto* found = store_.Find<pb::Order>(Table::kOrder, okey);
  if (!found) return Reject("unknown_order", fmt::format("no order '{}'", e.order_id()));
  if (e.amount_fen() > found->amount_fen() - found->refunded_fen()) {
    return Reject("refund_exceeds_payment",
                  fmt::format("refund of {} fen on order '{}' exceeds the {} fen still refundable",
                              e.amount_fen(), e.order_id(), found->amount_fen() - found->refunded_fen()));
  }
  const Millis t(e.occurred_at_ms());
  auto* o = store_.Mutable<pb::Order>(Table::kOrder, okey);
  const Fen paid(o->amount_fen());
  const Fen refunded(o->refunded_fen() + e.amount_fen());
  o->set_refunded_fen(refunded.v);

  for (const auto& ref : o->lines()) {
    LineEdit edit(store_, LineKey(tenant, ref.distributor(), e.order_id(), false, ref.level()));
    pb::Line* l = edit.line();
    const Fen due = ProRata(Fen(l->amount_fen()), refunded, paid);
    const int64_t take = due.v - l->reversed_fen() - l->clawed_back_fen() - l->waived_fen();
    assert(take >= 0);
    if (take <= 0) continue;
    switch (l->state()) {
      case pb::HELD:
      case pb::PENDING: l->set_reversed_fen(l->reversed_fen() + take); break;
      case pb::SETTLED:
        switch (l->refund_policy()) {
          case pb::NEGATIVE_BALANCE: l->set_clawed_back_fen(l->clawed_back_fen() + take); break;
          case pb::CAP_AT_BALANCE: {
            // The distributor's balance before this refund; the line's own
            // contribution is still in the totals (LineEdit removed it, so add it back).
            const pb::Distributor* d = edit.dist();
            const int64_t settled_before = d->settled_fen() + (l->amount_fen() - l->reversed_fen());
            const int64_t balance = settled_before - d->clawed_back_fen() - l->clawed_back_fen();
            const int64_t claw = std::min(take, std::max<int64_t>(0, balance));
            l->set_clawed_back_fen(l->clawed_back_fen() + claw);
            l->set_waived_fen(l->waived_fen() + (take - claw));
            break;
          }
          default: l->set_waived_fen(l->waived_fen() + take); break;
        }
        break;
      default: break;  // void: nothing more to take
    }
  }

  // Growth and points at the payment's rates; tiers at the refund's rules.
  const RuleVersion& pr = OrderRules(tenant, *o, Millis(o->paid_at_ms()));
  const int64_t net = paid.v - refunded.v;
  const int64_t g = GrowthOf(net, pr), p = PointsOf(net, pr);
  const int64_t dg = g - o->growth(), dp = p - o->points();
  o->set_growth(g);
  o->set_points(p);
  const std::string buyer = o->member();
  const std::optional<std::string> group_id =
      o->has_group_id() ? std::optional(o->group_id()) : std::nullopt;
  const bool fully = refunded == paid;
  const bool was_due = o->refund_due();
  if (fully) o->set_refund_due(false);
  ChangeGrowth(tenant, buyer, dg, dp, rules_.For(tenant, t), t, e.event_id());

  if (fully && group_id) {
    const std::string gkey = EntityKey(tenant, *group_id);
    if (const auto* cg = store_.Find<pb::Group>(Table::kGroup, gkey)) {
      const bool counted_member =
          cg->status() == pb::Group::FORMING &&
          std::any_of(cg->members().begin(), cg->members().end(), [&](const pb::GroupMember& m) {
            return m.member() == buyer && m.paid() && m.order_id() == e.order_id();
          });
      if (was_due || counted_member) {
        auto* g2 = store_.Mutable<pb::Group>(Table::kGroup, gkey);
        if (was_due) EraseSorted(g2->mutable_refund_due(), e.order_id());
        if (counted_member) {
          // A full refund while forming removes the member. Its held lines no
          // longer count for the group: they are void (all reversed, 0 net).
          auto* ms = g2->mutable_members();
          for (int i = 0; i < ms->size(); ++i) {
            if (ms->Get(i).member() == buyer) {
              ms->DeleteSubrange(i, 1);
              break;
            }
          }
          g2->set_paid_count(g2->paid_count() - 1);
          const auto* oo = store_.Find<pb::Order>(Table::kOrder, okey);
          for (const auto& ref : oo->lines()) {
            VoidHeld(LineKey(tenant, ref.distributor(), e.order_id(), false, ref.level()));
          }
        }
      }
    }
  }
  return std::nullopt;
}

void Fold::ApplyCheckin(const pb::Event& e) {
  const std::string& tenant = e.tenant();
  const Millis t(e.occurred_at_ms());
  const RuleVersion& r = rules_.For(tenant, t);
  pb::Member* m = TouchMember(tenant, e.member(), e);
  const int64_t day = BusinessDay(t, r.utc_offset_minutes);
  // One per business date. A date earlier than the last one (possible only if
  // a rule change moved utc_offset_minutes) is treated as a repeat too.
  if (m->has_last_checkin_day() && day <= m->last_checkin_day()) return;
  const int64_t streak =
      (m->has_last_checkin_day() && m->last_checkin_day() == day - 1) ? m->checkin_streak() + 1 : 1;
  m->set_checkin_streak(streak);
  m->set_last_checkin_day(day);
  m->set_checkins(m->checkins() + 1);
  ChangeGrowth(tenant, e.member(), r.tiers.checkin_growth, r.CheckinPoints(streak), r, t, e.event_id());
}

void Fold::SettleLine(const std::string& lkey, Millis at) {
  if (store_.Find<pb::Line>(Table::kLine, lkey) == nullptr) return;
  LineEdit edit(store_, lkey);
  pb::Line* l = edit.line();
  if (l->state() == pb::PENDING && l->settles_at_ms() == at.v) l->set_state(pb::SETTLED);
}

void Fold::Fire(std::string_view timer_key) {
  from_ = nullptr;
  const Millis at(GetBe64(timer_key.substr(0, 8)));
  const auto kind = static_cast<TimerKind>(timer_key[8]);
  const std::string target(timer_key.substr(9));
  if (kind == TimerKind::kSettlement) {
    SettleLine(target, at);
    return;
  }
  const std::string tenant(KeyPart(target, 0));
  const std::string group_id(KeyPart(target, 1));
  const auto* cg = store_.Find<pb::Group>(Table::kGroup, target);
  if (cg == nullptr || cg->status() != pb::Group::FORMING) return;
  auto* g = store_.Mutable<pb::Group>(Table::kGroup, target);
  if (g->virtual_success() && g->paid_count() >= 1) {
    SucceedGroup(tenant, group_id, g, at, true);
  } else {
    FailGroup(tenant, g, at);
  }
}

}  // namespace fission
