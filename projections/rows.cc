#include "projections/rows.h"

#include "events/assert.h"
#include "projections/wire.h"

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

void EncodeProvenance(const State& s, const Provenance& p, WireWriter& w) {
  w.Bytes(pb::Provenance::kEventIdFieldNumber, p.event_id);
  w.Bytes(pb::Provenance::kSourceFieldNumber, s.Source(p.source));
  w.Int(pb::Provenance::kPositionFieldNumber, p.position);
}

void EncodeMemberRow(const State& s, const Tenant& t, Idx i, bool with_version, std::string* out) {
  using R = pb::Member;
  const Member& m = t.members[i];
  WireWriter w(out);
  w.Bytes(R::kTierFieldNumber, s.tiers.Name(m.tier));
  w.Int(R::kGrowthFieldNumber, m.growth);
  w.Int(R::kPointsFieldNumber, m.points);
  w.Int(R::kCheckinsFieldNumber, m.checkins);
  w.Int(R::kCheckinStreakFieldNumber, m.checkin_streak);
  if (m.has_last_checkin) w.OptInt(R::kLastCheckinDayFieldNumber, m.last_checkin_day);
  if (m.upline != kNone) {
    w.OptBytes(R::kUplineFieldNumber, t.members[m.upline].id);
    w.OptInt(R::kBoundAtMsFieldNumber, m.bound_at_ms);
  }
  w.Int(R::kDistributorFieldNumber, m.distributor);
  w.Int(R::kTierChangesFieldNumber, m.tier_changes);
  if (with_version) w.Int(R::kLastVersionFieldNumber, static_cast<int64_t>(m.version));
}

void EncodeDistributorRow(const Tenant& t, Idx m, bool with_version, std::string* out) {
  using R = pb::Distributor;
  const Distributor& d = t.distributors[t.members[m].dist];
  WireWriter w(out);
  w.Int(R::kHeldFenFieldNumber, d.held_fen);
  w.Int(R::kPendingFenFieldNumber, d.pending_fen);
  w.Int(R::kSettledFenFieldNumber, d.settled_fen);
  w.Int(R::kReversedFenFieldNumber, d.reversed_fen);
  w.Int(R::kVoidedFenFieldNumber, d.voided_fen);
  w.Int(R::kClawedBackFenFieldNumber, d.clawed_back_fen);
  w.Int(R::kWaivedFenFieldNumber, d.waived_fen);
  w.Int(R::kSharesFieldNumber, d.shares);
  w.Int(R::kDownlinesFieldNumber, d.downlines);
  w.Int(R::kLinesFieldNumber, d.lines);
  if (with_version) w.Int(R::kLastVersionFieldNumber, static_cast<int64_t>(d.version));
}

void EncodeLineRow(const State& s, const Tenant& t, Idx i, bool with_version, std::string* out) {
  using R = pb::Line;
  const Line& l = t.lines[i];
  WireWriter w(out);
  w.Bytes(R::kDistributorFieldNumber, t.members[l.distributor].id);
  w.Bytes(R::kOrderIdFieldNumber, t.orders[l.order].id);
  w.Int(R::kLeaderBonusFieldNumber, l.leader_bonus);
  w.Int(R::kLevelFieldNumber, l.level);
  w.Int(R::kRateBpsFieldNumber, l.rate_bps);
  w.Int(R::kBaseFenFieldNumber, l.base_fen);
  w.Int(R::kAmountFenFieldNumber, l.amount_fen);
  w.Int(R::kReversedFenFieldNumber, l.reversed_fen);
  w.Int(R::kClawedBackFenFieldNumber, l.clawed_back_fen);
  w.Int(R::kWaivedFenFieldNumber, l.waived_fen);
  w.Int(R::kStateFieldNumber, static_cast<pb::LineState>(l.state));
  if (l.has_settles_at) w.OptInt(R::kSettlesAtMsFieldNumber, l.settles_at_ms);
  w.Int(R::kFreezeDaysFieldNumber, l.freeze_days);
  w.Int(R::kRefundPolicyFieldNumber, PolicyRow(l.refund_policy));
  w.Bytes(R::kRuleVersionFieldNumber, l.rule->version);
  w.Sub(R::kCreatedByFieldNumber, false, [&] {
    if (l.created_by_timer) {
      const Order& o = t.orders[l.order];
      std::string source = "timer:group_expiry:";
      source.append(o.group_id);
      w.Bytes(pb::Provenance::kSourceFieldNumber, source);
    } else {
      EncodeProvenance(s, t.CreatedBy(i), w);
    }
  });
  if (with_version) w.Int(R::kLastVersionFieldNumber, static_cast<int64_t>(l.version));
}

void EncodeOrderRow(const State& s, const Tenant& t, Idx i, std::string* out) {
  using R = pb::Order;
  const Order& o = t.orders[i];
  WireWriter w(out);
  w.Bytes(R::kMemberFieldNumber, t.members[o.member].id);
  w.Int(R::kAmountFenFieldNumber, o.amount_fen);
  w.Int(R::kCommissionBaseFenFieldNumber, o.commission_base_fen);
  w.Int(R::kRefundedFenFieldNumber, o.refunded_fen);
  if (o.has_group_id) w.OptBytes(R::kGroupIdFieldNumber, o.group_id);
  w.Int(R::kPaidAtMsFieldNumber, o.paid_at_ms);
  w.Int(R::kRefundDueFieldNumber, o.refund_due);
  w.Int(R::kOverflowFieldNumber, o.overflow);
  for (uint8_t k = 0; k < o.line_count; ++k) {
    const Line& l = t.lines[o.lines[k]];
    w.Sub(R::kLinesFieldNumber, false, [&] {
      w.Bytes(pb::LineRef::kDistributorFieldNumber, t.members[l.distributor].id);
      w.Int(pb::LineRef::kLevelFieldNumber, l.level);
    });
  }
  w.Int(R::kGrowthFieldNumber, o.growth);
  w.Int(R::kPointsFieldNumber, o.points);
  w.Bytes(R::kRuleVersionFieldNumber, o.rule->version);
  w.Sub(R::kPaidByFieldNumber, false, [&] { EncodeProvenance(s, o.paid_by, w); });
}

void EncodeGroupRow(const Tenant& t, Idx i, bool with_version, std::string* out) {
  using R = pb::Group;
  const Group& g = t.groups[i];
  WireWriter w(out);
  w.Int(R::kStatusFieldNumber, static_cast<pb::Group::Status>(g.status));
  w.Bytes(R::kLeaderFieldNumber, t.members[g.leader].id);
  w.Int(R::kSizeFieldNumber, g.size);
  w.Bytes(R::kProductIdFieldNumber, g.product_id);
  w.Int(R::kOpenedAtMsFieldNumber, g.opened_at_ms);
  w.Int(R::kExpiresAtMsFieldNumber, g.expires_at_ms);
  if (g.has_closed_at) w.OptInt(R::kClosedAtMsFieldNumber, g.closed_at_ms);
  w.Int(R::kVirtualFieldNumber, g.is_virtual);
  w.Int(R::kPaidCountFieldNumber, g.paid_count);
  for (const GroupMember& gm : g.members) {
    w.Sub(R::kMembersFieldNumber, false, [&] {
      w.Bytes(pb::GroupMember::kMemberFieldNumber, t.members[gm.member].id);
      w.Int(pb::GroupMember::kJoinedAtMsFieldNumber, gm.joined_at_ms);
      w.Int(pb::GroupMember::kPaidFieldNumber, gm.paid);
      if (gm.order != kNone) w.OptBytes(pb::GroupMember::kOrderIdFieldNumber, t.orders[gm.order].id);
    });
  }
  for (Idx o : g.refund_due) w.OptBytes(R::kRefundDueFieldNumber, t.orders[o].id);
  w.Int(R::kVirtualSuccessFieldNumber, g.virtual_success);
  w.Int(R::kLeaderBonusFenFieldNumber, g.leader_bonus_fen);
  w.Int(R::kLeaderBonusFreezeDaysFieldNumber, g.leader_bonus_freeze_days);
  w.Bytes(R::kRuleVersionFieldNumber, g.rule->version);
  if (with_version) w.Int(R::kLastVersionFieldNumber, static_cast<int64_t>(g.version));
}

void EncodeShareRow(const Tenant& t, Idx i, std::string* out) {
  using R = pb::Share;
  const Share& sh = t.shares[i];
  WireWriter w(out);
  w.Bytes(R::kSharerFieldNumber, t.members[sh.sharer].id);
  w.Int(R::kSharedAtMsFieldNumber, sh.shared_at_ms);
  w.Bytes(R::kEventIdFieldNumber, sh.event_id);
}

std::string LineRowKey(const Tenant& t, Idx i) {
  const Line& l = t.lines[i];
  return LineKey(t.name, t.members[l.distributor].id, t.orders[l.order].id, l.leader_bonus, l.level);
}

void RowEncoder::WriteBehind(const State& s, Tenant& t, RowSink& sink) {
  // Each dirty entity of one kind: its row under its key, then its mark cleared.
  auto flush = [&](std::vector<Idx>& dirty, Table table, auto key_of, auto encode, auto clear) {
    for (Idx i : dirty) {
      buf_.clear();
      encode(i);
      sink.Put(table, key_of(i), buf_);
      clear(i);
    }
    dirty.clear();
  };
  auto entity_key = [&](const auto& table) { return [&](Idx i) { return EntityKey(t.name, table[i].id); }; };
  auto clear_dirty = [](auto& table) { return [&](Idx i) { table[i].dirty = false; }; };
  flush(t.members.dirty(), Table::kMember, entity_key(t.members),
        [&](Idx i) { EncodeMemberRow(s, t, i, true, &buf_); }, clear_dirty(t.members));
  flush(t.dirty_distributors, Table::kDistributor, entity_key(t.members),
        [&](Idx i) { EncodeDistributorRow(t, i, true, &buf_); }, [&](Idx i) { t.members[i].dist_dirty = false; });
  flush(t.dirty_lines, Table::kLine, [&](Idx i) { return LineRowKey(t, i); },
        [&](Idx i) { EncodeLineRow(s, t, i, true, &buf_); }, clear_dirty(t.lines));
  flush(t.orders.dirty(), Table::kOrder, entity_key(t.orders),
        [&](Idx i) { EncodeOrderRow(s, t, i, &buf_); }, clear_dirty(t.orders));
  flush(t.groups.dirty(), Table::kGroup, entity_key(t.groups),
        [&](Idx i) { EncodeGroupRow(t, i, true, &buf_); }, clear_dirty(t.groups));
  flush(t.shares.dirty(), Table::kShare, entity_key(t.shares),
        [&](Idx i) { EncodeShareRow(t, i, &buf_); }, clear_dirty(t.shares));
}

void RowEncoder::WriteBehind(State& s, RowSink& sink) {
  for (const auto& [name, t] : s.tenants()) WriteBehind(s, *t, sink);
}

void RowEncoder::RecordChange(const State& s, Tenant& t, uint64_t seq, int64_t at_ms, const Cause* cause,
                              std::string_view timer, RowSink& sink) {
  FISSION_ASSERT(t.touched.size() < (size_t{1} << kVersionIndexBits), "one change touched too many rows");
  using C = pb::Change;
  using CR = pb::ChangedRow;
  buf_.clear();
  WireWriter w(&buf_);
  w.Int(C::kAtMsFieldNumber, at_ms);
  if (cause) {
    w.Sub(C::kCauseFieldNumber, false, [&] {
      w.Bytes(pb::Provenance::kEventIdFieldNumber, cause->event_id);
      w.Bytes(pb::Provenance::kSourceFieldNumber, s.Source(cause->source));
      w.Int(pb::Provenance::kPositionFieldNumber, cause->position);
    });
  }
  w.Bytes(C::kTimerFieldNumber, timer);
  uint32_t index = 0;
  // Each touched row: its row as it stands now (without last_version), after
  // the version it chains back to; the entity then points at this one.
  auto add = [&](Table table, uint64_t& version, auto encode) {
    w.Sub(C::kRowsFieldNumber, false, [&] {
      w.Int(CR::kTableFieldNumber, static_cast<int64_t>(table));
      w.Sub(CR::kRowFieldNumber, true, encode);
      w.Int(CR::kPrevFieldNumber, static_cast<int64_t>(version));
    });
    version = VersionRef(seq, index++);
  };
  for (const Tenant::Touch& touch : t.touched) {
    const Idx i = touch.idx;
    switch (touch.kind) {
      case Tenant::Touch::kDistributor:
        add(Table::kDistributor, t.distributors[t.members[i].dist].version,
            [&] { EncodeDistributorRow(t, i, false, &buf_); });
        break;
      case Tenant::Touch::kGroup:
        add(Table::kGroup, t.groups[i].version, [&] { EncodeGroupRow(t, i, false, &buf_); });
        break;
      case Tenant::Touch::kMember:
        add(Table::kMember, t.members[i].version, [&] { EncodeMemberRow(s, t, i, false, &buf_); });
        break;
      case Tenant::Touch::kLine:
        add(Table::kLine, t.lines[i].version, [&] { EncodeLineRow(s, t, i, false, &buf_); });
        break;
    }
  }
  t.ClearTouched();
  sink.Put(Table::kChange, ChangeKey(seq), buf_);
}

}  // namespace fission
