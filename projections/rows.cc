#include "projections/rows.h"

#include "events/assert.h"

namespace fission {
namespace {

pb::RefundPolicy PolicyRow(RefundAfterSettlement p) {
  switch (p) {
    case RefundAfterSettlement::kNegativeBalance: return pb::NEGATIVE_BALANCE;
    case RefundAfterSettlement::kCapAtBalance: return pb::CAP_AT_BALANCE;
    case RefundAfterSettlement::kNone: return pb::NONE;
  }
  return pb::NEGATIVE_BALANCE;
}

}  // namespace

void FillProvenance(const State& s, const Provenance& p, pb::Provenance* r) {
  r->set_event_id(p.event_id);
  r->set_source(s.Source(p.source));
  r->set_position(p.position);
}

void FillMemberRow(const State& s, const Tenant& t, Idx i, pb::Member* out) {
  const Member& m = t.members[i];
  pb::Member& r = *out;
  r.Clear();
  r.set_tier(s.tiers.Name(m.tier));
  r.set_growth(m.growth);
  r.set_points(m.points);
  r.set_checkins(m.checkins);
  r.set_checkin_streak(m.checkin_streak);
  if (m.has_last_checkin) r.set_last_checkin_day(m.last_checkin_day);
  if (m.upline != kNone) {
    r.set_upline(t.members[m.upline].id);
    r.set_bound_at_ms(m.bound_at_ms);
  }
  r.set_distributor(m.distributor);
  r.set_tier_changes(m.tier_changes);
  r.set_last_version(m.version);
}

void FillDistributorRow(const Tenant& t, Idx m, pb::Distributor* out) {
  const Distributor& d = t.distributors[t.members[m].dist];
  pb::Distributor& r = *out;
  r.Clear();
  r.set_held_fen(d.held_fen);
  r.set_pending_fen(d.pending_fen);
  r.set_settled_fen(d.settled_fen);
  r.set_reversed_fen(d.reversed_fen);
  r.set_voided_fen(d.voided_fen);
  r.set_clawed_back_fen(d.clawed_back_fen);
  r.set_waived_fen(d.waived_fen);
  r.set_shares(d.shares);
  r.set_downlines(d.downlines);
  r.set_lines(d.lines);
  r.set_last_version(d.version);
}

void FillLineRow(const State& s, const Tenant& t, Idx i, pb::Line* out) {
  const Line& l = t.lines[i];
  pb::Line& r = *out;
  r.Clear();
  r.set_distributor(t.members[l.distributor].id);
  r.set_order_id(t.orders[l.order].id);
  r.set_leader_bonus(l.leader_bonus);
  r.set_level(l.level);
  r.set_rate_bps(l.rate_bps);
  r.set_base_fen(l.base_fen);
  r.set_amount_fen(l.amount_fen);
  r.set_reversed_fen(l.reversed_fen);
  r.set_clawed_back_fen(l.clawed_back_fen);
  r.set_waived_fen(l.waived_fen);
  r.set_state(static_cast<pb::LineState>(l.state));
  if (l.has_settles_at) r.set_settles_at_ms(l.settles_at_ms);
  r.set_freeze_days(l.freeze_days);
  r.set_refund_policy(PolicyRow(l.refund_policy));
  r.set_rule_version(l.rule->version);
  if (l.created_by_timer) {
    const Order& o = t.orders[l.order];
    r.mutable_created_by()->set_source("timer:group_expiry:" + o.group_id);
  } else {
    FillProvenance(s, t.CreatedBy(i), r.mutable_created_by());
  }
  r.set_last_version(l.version);
}

void FillOrderRow(const State& s, const Tenant& t, Idx i, pb::Order* out) {
  const Order& o = t.orders[i];
  pb::Order& r = *out;
  r.Clear();
  r.set_member(t.members[o.member].id);
  r.set_amount_fen(o.amount_fen);
  r.set_commission_base_fen(o.commission_base_fen);
  r.set_refunded_fen(o.refunded_fen);
  if (o.has_group_id) r.set_group_id(o.group_id);
  r.set_paid_at_ms(o.paid_at_ms);
  r.set_refund_due(o.refund_due);
  r.set_overflow(o.overflow);
  for (uint8_t k = 0; k < o.line_count; ++k) {
    const Line& l = t.lines[o.lines[k]];
    auto* ref = r.add_lines();
    ref->set_distributor(t.members[l.distributor].id);
    ref->set_level(l.level);
  }
  r.set_growth(o.growth);
  r.set_points(o.points);
  r.set_rule_version(o.rule->version);
  FillProvenance(s, o.paid_by, r.mutable_paid_by());
}

void FillGroupRow(const Tenant& t, Idx i, pb::Group* out) {
  const Group& g = t.groups[i];
  pb::Group& r = *out;
  r.Clear();
  r.set_status(static_cast<pb::Group::Status>(g.status));
  r.set_leader(t.members[g.leader].id);
  r.set_size(g.size);
  r.set_product_id(g.product_id);
  r.set_opened_at_ms(g.opened_at_ms);
  r.set_expires_at_ms(g.expires_at_ms);
  if (g.has_closed_at) r.set_closed_at_ms(g.closed_at_ms);
  r.set_virtual_(g.is_virtual);
  r.set_paid_count(g.paid_count);
  for (const GroupMember& gm : g.members) {
    auto* m = r.add_members();
    m->set_member(t.members[gm.member].id);
    m->set_joined_at_ms(gm.joined_at_ms);
    m->set_paid(gm.paid);
    if (gm.order != kNone) m->set_order_id(t.orders[gm.order].id);
  }
  for (Idx o : g.refund_due) r.add_refund_due(t.orders[o].id);
  r.set_virtual_success(g.virtual_success);
  r.set_leader_bonus_fen(g.leader_bonus_fen);
  r.set_leader_bonus_freeze_days(g.leader_bonus_freeze_days);
  r.set_rule_version(g.rule->version);
  r.set_last_version(g.version);
}

void FillShareRow(const Tenant& t, Idx i, pb::Share* out) {
  const Share& s = t.shares[i];
  pb::Share& r = *out;
  r.Clear();
  r.set_sharer(t.members[s.sharer].id);
  r.set_shared_at_ms(s.shared_at_ms);
  r.set_event_id(s.event_id);
}

std::string LineRowKey(const Tenant& t, Idx i) {
  const Line& l = t.lines[i];
  return LineKey(t.name, t.members[l.distributor].id, t.orders[l.order].id, l.leader_bonus, l.level);
}

void RowEncoder::WriteBehind(const State& s, Tenant& t, RowSink& sink) {
  // Each dirty entity of one kind: its row under its key, then its mark cleared.
  auto flush = [&](std::vector<Idx>& dirty, Table table, auto key_of, auto& row, auto fill, auto clear) {
    for (Idx i : dirty) {
      fill(i, &row);
      buf_.clear();
      row.SerializeToString(&buf_);
      sink.Put(table, key_of(i), buf_);
      clear(i);
    }
    dirty.clear();
  };
  auto entity_key = [&](const auto& table) { return [&](Idx i) { return EntityKey(t.name, table[i].id); }; };
  auto clear_dirty = [](auto& table) { return [&](Idx i) { table[i].dirty = false; }; };
  flush(t.members.dirty(), Table::kMember, entity_key(t.members), member_,
        [&](Idx i, pb::Member* r) { FillMemberRow(s, t, i, r); }, clear_dirty(t.members));
  flush(t.dirty_distributors, Table::kDistributor, entity_key(t.members), distributor_,
        [&](Idx i, pb::Distributor* r) { FillDistributorRow(t, i, r); }, [&](Idx i) { t.members[i].dist_dirty = false; });
  flush(t.dirty_lines, Table::kLine, [&](Idx i) { return LineRowKey(t, i); }, line_,
        [&](Idx i, pb::Line* r) { FillLineRow(s, t, i, r); }, clear_dirty(t.lines));
  flush(t.orders.dirty(), Table::kOrder, entity_key(t.orders), order_,
        [&](Idx i, pb::Order* r) { FillOrderRow(s, t, i, r); }, clear_dirty(t.orders));
  flush(t.groups.dirty(), Table::kGroup, entity_key(t.groups), group_,
        [&](Idx i, pb::Group* r) { FillGroupRow(t, i, r); }, clear_dirty(t.groups));
  flush(t.shares.dirty(), Table::kShare, entity_key(t.shares), share_,
        [&](Idx i, pb::Share* r) { FillShareRow(t, i, r); }, clear_dirty(t.shares));
}

void RowEncoder::WriteBehind(State& s, RowSink& sink) {
  for (const auto& [name, t] : s.tenants()) WriteBehind(s, *t, sink);
}

void RowEncoder::RecordChange(const State& s, Tenant& t, uint64_t seq, int64_t at_ms, const pb::Provenance* cause,
                              std::string_view timer, RowSink& sink) {
  FISSION_ASSERT(t.touched.size() < (size_t{1} << kVersionIndexBits), "one change touched too many rows");
  change_.Clear();
  change_.set_at_ms(at_ms);
  if (cause) *change_.mutable_cause() = *cause;
  change_.set_timer(std::string(timer));
  uint32_t index = 0;
  // Each touched row: its row as it stands now, after the version it chains
  // back to; the entity then points at this one.
  auto add = [&](Table table, uint64_t& version, const google::protobuf::MessageLite& row) {
    pb::ChangedRow* c = change_.add_rows();
    c->set_table(static_cast<uint32_t>(table));
    c->set_prev(version);
    row.SerializeToString(c->mutable_row());
    version = VersionRef(seq, index++);
  };
  for (const Tenant::Touch& touch : t.touched) {
    switch (touch.kind) {
      case Tenant::Touch::kDistributor: {
        Distributor& d = t.distributors[t.members[touch.idx].dist];
        FillDistributorRow(t, touch.idx, &distributor_);
        distributor_.clear_last_version();
        add(Table::kDistributor, d.version, distributor_);
        break;
      }
      case Tenant::Touch::kGroup:
        FillGroupRow(t, touch.idx, &group_);
        group_.clear_last_version();
        add(Table::kGroup, t.groups[touch.idx].version, group_);
        break;
      case Tenant::Touch::kMember:
        FillMemberRow(s, t, touch.idx, &member_);
        member_.clear_last_version();
        add(Table::kMember, t.members[touch.idx].version, member_);
        break;
      case Tenant::Touch::kLine:
        FillLineRow(s, t, touch.idx, &line_);
        line_.clear_last_version();
        add(Table::kLine, t.lines[touch.idx].version, line_);
        break;
    }
  }
  t.ClearTouched();
  buf_.clear();
  change_.SerializeToString(&buf_);
  sink.Put(Table::kChange, ChangeKey(seq), buf_);
}

}  // namespace fission
