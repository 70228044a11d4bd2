#include "projections/render.h"

#include "events/time.h"

namespace fission {
namespace {

Json Time(int64_t ms) { return FormatRfc3339(Millis(ms)); }

std::string_view StateName(pb::LineState s) {
  switch (s) {
    case pb::HELD: return "held";
    case pb::PENDING: return "pending";
    case pb::SETTLED: return "settled";
    case pb::VOID: return "void";
    default: return "?";
  }
}

std::string_view StatusName(pb::Group::Status s) {
  switch (s) {
    case pb::Group::FORMING: return "forming";
    case pb::Group::SUCCEEDED: return "succeeded";
    case pb::Group::FAILED: return "failed";
    default: return "?";
  }
}

}  // namespace

Json LineJson(const pb::Line& l, bool audit) {
  Json j;
  j["order_id"] = l.order_id();
  j["kind"] = l.leader_bonus() ? "leader_bonus" : "commission";
  j["level"] = l.level();
  j["rate_bps"] = l.rate_bps();
  j["base_fen"] = l.base_fen();
  j["amount_fen"] = l.amount_fen();
  j["reversed_fen"] = l.reversed_fen();
  j["clawed_back_fen"] = l.clawed_back_fen();
  j["waived_fen"] = l.waived_fen();
  j["state"] = StateName(l.state());
  j["settles_at"] = l.has_settles_at_ms() ? Time(l.settles_at_ms()) : Json(nullptr);
  if (audit) {
    j["distributor"] = l.distributor();
    j["rule_version"] = l.rule_version();
    j["event_id"] = l.created_by().event_id().empty() ? Json(nullptr) : Json(l.created_by().event_id());
    j["source"] = l.created_by().source();
    j["position"] = l.created_by().position();
  }
  return j;
}

Json DistributorJson(std::string_view key, const pb::Distributor& d, Json lines) {
  Json j;
  j["kind"] = "distributor";
  j["tenant"] = std::string(KeyPart(key, 0));
  j["id"] = std::string(KeyPart(key, 1));
  j["held_fen"] = d.held_fen();
  j["pending_fen"] = d.pending_fen();
  j["settled_fen"] = d.settled_fen();
  j["reversed_fen"] = d.reversed_fen();
  j["voided_fen"] = d.voided_fen();
  j["clawed_back_fen"] = d.clawed_back_fen();
  j["waived_fen"] = d.waived_fen();
  j["balance_fen"] = d.settled_fen() - d.clawed_back_fen();
  j["shares"] = d.shares();
  j["downlines"] = d.downlines();
  j["lines"] = std::move(lines);
  return j;
}

Json GroupJson(std::string_view key, const pb::Group& g) {
  Json j;
  j["kind"] = "group";
  j["tenant"] = std::string(KeyPart(key, 0));
  j["id"] = std::string(KeyPart(key, 1));
  j["status"] = StatusName(g.status());
  j["leader"] = g.leader();
  j["size"] = g.size();
  j["product_id"] = g.product_id();
  j["opened_at"] = Time(g.opened_at_ms());
  j["expires_at"] = Time(g.expires_at_ms());
  j["closed_at"] = g.has_closed_at_ms() ? Time(g.closed_at_ms()) : Json(nullptr);
  j["virtual"] = g.virtual_();
  j["paid_count"] = g.paid_count();
  Json members = Json::array();
  for (const auto& m : g.members()) {
    Json mj;
    mj["member"] = m.member();
    mj["joined_at"] = Time(m.joined_at_ms());
    mj["paid"] = m.paid();
    mj["order_id"] = m.has_order_id() ? Json(m.order_id()) : Json(nullptr);
    members.push_back(std::move(mj));
  }
  j["members"] = std::move(members);
  j["refund_due"] = Json::array();
  for (const auto& o : g.refund_due()) j["refund_due"].push_back(o);
  return j;
}

Json MemberJson(std::string_view key, const pb::Member& m, bool audit) {
  Json j;
  j["kind"] = "member";
  j["tenant"] = std::string(KeyPart(key, 0));
  j["id"] = std::string(KeyPart(key, 1));
  j["tier"] = m.tier();
  j["growth"] = m.growth();
  j["points"] = m.points();
  j["checkins"] = m.checkins();
  j["checkin_streak"] = m.checkin_streak();
  j["last_checkin_date"] = m.has_last_checkin_day() ? Json(FormatDay(m.last_checkin_day())) : Json(nullptr);
  j["upline"] = m.has_upline() ? Json(m.upline()) : Json(nullptr);
  j["bound_at"] = m.has_bound_at_ms() ? Time(m.bound_at_ms()) : Json(nullptr);
  Json h = Json::array();
  for (const auto& c : m.tier_history()) {
    Json cj;
    cj["tier"] = c.tier();
    cj["at"] = Time(c.at_ms());
    cj["event_id"] = c.event_id();
    if (audit) {
      cj["source"] = c.source();
      cj["position"] = c.position();
    }
    h.push_back(std::move(cj));
  }
  j["tier_history"] = std::move(h);
  return j;
}

Json OrderJson(std::string_view key, const pb::Order& o, bool audit) {
  Json j;
  j["kind"] = "order";
  j["tenant"] = std::string(KeyPart(key, 0));
  j["id"] = std::string(KeyPart(key, 1));
  j["member"] = o.member();
  j["amount_fen"] = o.amount_fen();
  j["commission_base_fen"] = o.commission_base_fen();
  j["refunded_fen"] = o.refunded_fen();
  j["group_id"] = o.has_group_id() ? Json(o.group_id()) : Json(nullptr);
  j["paid_at"] = Time(o.paid_at_ms());
  j["refund_due"] = o.refund_due();
  j["overflow"] = o.overflow();
  if (audit) {
    j["rule_version"] = o.rule_version();
    j["event_id"] = o.paid_by().event_id();
    j["source"] = o.paid_by().source();
    j["position"] = o.paid_by().position();
    Json lines = Json::array();
    for (const auto& ref : o.lines()) {
      Json lj;
      lj["distributor"] = ref.distributor();
      lj["level"] = ref.level();
      lines.push_back(std::move(lj));
    }
    j["lines"] = std::move(lines);
  }
  return j;
}

Json RejectionJson(const pb::Rejection& r) {
  Json j;
  j["kind"] = "rejection";
  j["tenant"] = r.tenant();
  j["id"] = r.has_event_id() ? Json(r.event_id()) : Json(nullptr);
  j["reason"] = r.reason();
  j["source"] = r.source();
  j["position"] = r.position();
  j["detail"] = r.detail();
  j["type"] = r.has_type() ? Json(r.type()) : Json(nullptr);
  return j;
}

std::string Dump(const Json& j, int indent) {
  return j.dump(indent, ' ', false, Json::error_handler_t::replace);
}

}  // namespace fission
