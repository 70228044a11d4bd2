#include "projections/export.h"

#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "events/time.h"

namespace fission {
namespace {

using Json = nlohmann::ordered_json;

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
    j["rule_version"] = l.rule_version();
    j["event_id"] = l.created_by().event_id();
    j["source"] = l.created_by().source();
    j["position"] = l.created_by().position();
  }
  return j;
}

Json DistributorJson(Store& s, std::string_view key, const pb::Distributor& d, bool audit) {
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
  Json lines = Json::array();
  std::string prefix(key);
  prefix.push_back('\0');
  s.Scan(Table::kLine, prefix, [&](std::string_view, const google::protobuf::MessageLite& row) {
    lines.push_back(LineJson(static_cast<const pb::Line&>(row), audit));
    return true;
  });
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

Json MemberJson(std::string_view key, const pb::Member& m) {
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

std::string Dump(const Json& j, int indent = -1) {
  return j.dump(indent, ' ', false, Json::error_handler_t::replace);
}

}  // namespace

void ExportKeyed(Store& s, const std::function<void(int, std::string_view, const std::string&)>& fn) {
  s.Scan(Table::kDistributor, "", [&](std::string_view k, const google::protobuf::MessageLite& row) {
    const auto& d = static_cast<const pb::Distributor&>(row);
    if (d.lines() > 0 || d.shares() > 0) fn(0, k, Dump(DistributorJson(s, k, d, false)));
    return true;
  });
  s.Scan(Table::kGroup, "", [&](std::string_view k, const google::protobuf::MessageLite& row) {
    fn(1, k, Dump(GroupJson(k, static_cast<const pb::Group&>(row))));
    return true;
  });
  s.Scan(Table::kMember, "", [&](std::string_view k, const google::protobuf::MessageLite& row) {
    fn(2, k, Dump(MemberJson(k, static_cast<const pb::Member&>(row))));
    return true;
  });
  s.Scan(Table::kOrder, "", [&](std::string_view k, const google::protobuf::MessageLite& row) {
    fn(3, k, Dump(OrderJson(k, static_cast<const pb::Order&>(row), false)));
    return true;
  });
  s.Scan(Table::kRejection, "", [&](std::string_view k, const google::protobuf::MessageLite& row) {
    fn(4, k, Dump(RejectionJson(static_cast<const pb::Rejection&>(row))));
    return true;
  });
}

int64_t ExportAll(Store& s, std::ostream& out) {
  int64_t n = 0;
  ExportKeyed(s, [&](int, std::string_view, const std::string& line) {
    out << line << '\n';
    ++n;
  });
  return n;
}

std::optional<std::string> ExportMerged(const std::vector<Store*>& stores, std::ostream& out) {
  // Which store supplies each tenant.
  struct Claim {
    size_t store;
    int64_t position;  // -1: unknown
  };
  std::map<std::string, Claim> owner;
  std::map<std::string, int> claims;
  for (size_t i = 0; i < stores.size(); ++i) {
    const auto* meta = stores[i]->Find<pb::ProcessorMeta>(Table::kMeta, "");
    std::set<std::string> tenants;
    for (Table t : {Table::kDistributor, Table::kGroup, Table::kMember, Table::kOrder, Table::kRejection}) {
      stores[i]->Scan(t, "", [&](std::string_view k, const google::protobuf::MessageLite&) {
        tenants.emplace(KeyPart(k, 0));
        return true;
      });
    }
    for (const auto& tenant : tenants) {
      int64_t pos = -1;
      if (meta) {
        auto lane = meta->tenant_lanes().find(tenant);
        if (lane != meta->tenant_lanes().end()) {
          auto p = meta->lane_positions().find(lane->second);
          if (p != meta->lane_positions().end()) pos = p->second;
        }
      }
      ++claims[tenant];
      auto it = owner.find(tenant);
      if (it == owner.end()) {
        owner.emplace(tenant, Claim{i, pos});
      } else if (pos < 0 || it->second.position < 0) {
        return "tenant '" + tenant + "' is in several data dirs with no partition position to choose between them";
      } else if (pos > it->second.position) {
        it->second = Claim{i, pos};
      }
    }
  }
  struct Keyed {
    int kind;
    std::string key, line;
  };
  std::vector<Keyed> all;
  for (size_t i = 0; i < stores.size(); ++i) {
    ExportKeyed(*stores[i], [&](int kind, std::string_view key, const std::string& line) {
      if (owner.at(std::string(KeyPart(key, 0))).store == i) all.push_back({kind, std::string(key), line});
    });
  }
  std::stable_sort(all.begin(), all.end(), [](const Keyed& a, const Keyed& b) {
    return a.kind != b.kind ? a.kind < b.kind : a.key < b.key;
  });
  for (const auto& k : all) out << k.line << '\n';
  return std::nullopt;
}

std::optional<std::string> QueryJson(Store& s, std::string_view kind, std::string_view tenant,
                                     std::string_view id, int indent) {
  const std::string key = EntityKey(tenant, id);
  if (kind == "distributor") {
    const auto* d = s.Find<pb::Distributor>(Table::kDistributor, key);
    if (!d || (d->lines() == 0 && d->shares() == 0)) return std::nullopt;
    return Dump(DistributorJson(s, key, *d, true), indent);
  }
  if (kind == "group") {
    const auto* g = s.Find<pb::Group>(Table::kGroup, key);
    if (!g) return std::nullopt;
    return Dump(GroupJson(key, *g), indent);
  }
  if (kind == "member") {
    const auto* m = s.Find<pb::Member>(Table::kMember, key);
    if (!m) return std::nullopt;
    return Dump(MemberJson(key, *m), indent);
  }
  if (kind == "order") {
    const auto* o = s.Find<pb::Order>(Table::kOrder, key);
    if (!o) return std::nullopt;
    return Dump(OrderJson(key, *o, true), indent);
  }
  return std::nullopt;
}

}  // namespace fission
