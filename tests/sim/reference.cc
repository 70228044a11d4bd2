// The reference fold: the domain contract (spec sections 3-7) written again,
// as plainly as possible, over std::map. It shares no code with projections/
// or events/: where it and the engine disagree, one of them misreads the spec.
//
// It works in two passes, as the spec is written: the arrival pass decides
// which lines are rejected at arrival (invalid, conflicting duplicate, late)
// and which are accepted; the canonical pass sorts the accepted events by
// (occurred_at, event_id) and folds them with the timers interleaved. It is
// quadratic in places (timers are found by scanning); it is for a few
// thousand events, not for speed.
#include <fmt/format.h>

#include <algorithm>
#include <cassert>
#include <ctime>
#include <nlohmann/json.hpp>
#include <set>
#include <tuple>

#include "tests/sim/sim.h"

namespace fission::sim {
namespace {

using nlohmann::json;
using Key = std::pair<std::string, std::string>;  // tenant, id

constexpr int64_t kDay = 86'400'000;
__extension__ using Wide = __int128;  // 10^12 fen x 10^12 fen does not fit in int64

std::string Utc(int64_t ms) {
  const std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                     tm.tm_hour, tm.tm_min, tm.tm_sec, ms % 1000);
}

std::string Date(int64_t day) {
  const std::time_t secs = static_cast<std::time_t>(day * 86'400);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  return fmt::format("{:04}-{:02}-{:02}", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
}

json Opt(const std::optional<int64_t>& ms) { return ms ? json(Utc(*ms)) : json(nullptr); }
json Opt(const std::optional<std::string>& s) { return s ? json(*s) : json(nullptr); }

int64_t FloorDiv(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

struct Line {
  std::string dist, order;
  bool bonus = false;
  int level = 0;
  int64_t rate = 0, base = 0, amount = 0, reversed = 0, clawed = 0, waived = 0;
  std::string state;  // held | pending | settled | void
  std::optional<int64_t> settles_at;
  int freeze_days = 0;
  std::string policy;
};

struct Member {
  std::string tier;
  int64_t growth = 0, points = 0, checkins = 0, streak = 0;
  std::optional<int64_t> last_day;
  std::optional<std::string> upline;
  std::optional<int64_t> bound_at;
  bool distributor = false;
  json history = json::array();
};

struct GroupMember {
  std::string member;
  int64_t joined_at = 0;
  bool paid = false;
  std::optional<std::string> order;
};

struct Group {
  std::string status = "forming", leader, product;
  int64_t size = 0, opened_at = 0, expires_at = 0;
  std::optional<int64_t> closed_at;
  bool is_virtual = false, virtual_success = false;
  int64_t bonus = 0;
  int bonus_freeze = 0;
  std::vector<GroupMember> members;
  std::set<std::string> refund_due;
  int64_t paid_count() const {
    return std::count_if(members.begin(), members.end(), [](const GroupMember& m) { return m.paid; });
  }
};

struct Order {
  std::string member;
  int64_t amount = 0, base = 0, refunded = 0, paid_at = 0;
  std::optional<std::string> group;
  bool refund_due = false, overflow = false;
  const SimVersion* rules = nullptr;
  std::vector<std::string> lines;  // keys into Model::lines (commission lines only)
};

struct Rejection {
  std::string tenant;
  std::optional<std::string> id;
  std::string reason, source;
  int64_t position = 0;
};

struct Accepted {
  SimEvent e;
  std::string source;
  int64_t position = 0;
};

class Model {
 public:
  explicit Model(const SimRules& rules) : rules_(rules) {}

  const SimVersion& For(const std::string& tenant, int64_t t) const {
    auto it = rules_.tenants.find(tenant);
    const auto& list = it != rules_.tenants.end() ? it->second : rules_.tenants.at("default");
    const SimVersion* v = &list.front();
    for (const auto& x : list) {
      if (x.effective_from_ms <= t) v = &x;
    }
    return *v;
  }

  // Every timer due at or before `t`, in deadline order; at one deadline,
  // expiries (by tenant, group) before settlements (by line key).
  void FireUpTo(int64_t t) {
    for (;;) {
      std::optional<int64_t> next;
      for (auto& [k, g] : groups_) {
        if (g.status == "forming" && g.expires_at <= t && (!next || g.expires_at < *next)) next = g.expires_at;
      }
      for (auto& [k, l] : lines_) {
        if (l.state == "pending" && *l.settles_at <= t && (!next || *l.settles_at < *next)) next = l.settles_at;
      }
      if (!next) return;
      for (auto& [k, g] : groups_) {
        if (g.status == "forming" && g.expires_at == *next) Expire(k, g);
      }
      for (auto& [k, l] : lines_) {
        if (l.state == "pending" && *l.settles_at == *next) l.state = "settled";
      }
    }
  }

  // Applies one event at its canonical place; a business rejection changes nothing.
  std::optional<std::string> Apply(const SimEvent& e) {
    const SimVersion& r = For(e.tenant, e.t);
    if (e.type == "share") {
      const Key sk{e.tenant, e.share_id};
      if (shares_.count(sk)) return "share_id_taken";
      shares_[sk] = e.sharer;
      Touch(e.tenant, e.sharer, e).distributor = true;
      ++share_counts_[{e.tenant, e.sharer}];
      return std::nullopt;
    }
    if (e.type == "join") {
      const Key gk{e.tenant, e.group_id};
      auto it = groups_.find(gk);
      if (e.opens && it != groups_.end()) return "group_exists";
      if (!e.opens && it == groups_.end()) return "unknown_group";
      if (!e.opens && it->second.status != "forming") return "group_closed";
      if (!e.opens && it->second.members.size() >= 1000 &&
          std::none_of(it->second.members.begin(), it->second.members.end(),
                       [&](auto& m) { return m.member == e.member; })) {
        return "group_member_limit";  // projections/README: at most 1000 joined members
      }
      Bind(e, r);
      Touch(e.tenant, e.member, e);
      if (e.opens) {
        Group g;
        g.leader = e.member;
        g.product = e.product_id;
        g.size = e.size;
        g.opened_at = e.t;
        g.expires_at = e.expires_at;
        g.virtual_success = r.virtual_success;
        g.bonus = r.leader_bonus_fen;
        g.bonus_freeze = r.freeze_days;
        it = groups_.emplace(gk, g).first;
      }
      Group& g = it->second;
      if (std::none_of(g.members.begin(), g.members.end(), [&](auto& m) { return m.member == e.member; })) {
        g.members.push_back({e.member, e.t, false, std::nullopt});
      }
      return std::nullopt;
    }
    if (e.type == "payment") return Pay(e, r);
    if (e.type == "refund") return RefundOrder(e);
    // checkin
    Member& m = Touch(e.tenant, e.member, e);
    const int64_t day = FloorDiv(e.t + int64_t{r.utc_offset_minutes} * 60'000, kDay);
    if (m.last_day && day <= *m.last_day) return std::nullopt;
    m.streak = (m.last_day && *m.last_day == day - 1) ? m.streak + 1 : 1;
    m.last_day = day;
    ++m.checkins;
    const auto& table = r.points_by_day;
    const size_t n = table.size();
    const size_t i = static_cast<size_t>(m.streak - 1);
    const int64_t pts = i < n ? table[i] : (r.after_last_day == "restart" ? table[i % n] : table.back());
    Grow(e.tenant, e.member, r.checkin_growth, pts, r, e);
    return std::nullopt;
  }

  std::vector<json> Export(const std::vector<Rejection>& rejections) const {
    std::vector<json> out;
    // distributors: every one with a line or a share
    std::map<Key, std::vector<const Line*>> by_dist;
    for (const auto& [k, l] : lines_) by_dist[{std::get<0>(k), l.dist}].push_back(&l);
    std::set<Key> dists;
    for (const auto& [k, v] : by_dist) dists.insert(k);
    for (const auto& [k, n] : share_counts_) dists.insert(k);
    for (const Key& d : dists) {
      int64_t held = 0, pending = 0, settled = 0, voided = 0, rev = 0, claw = 0, waived = 0;
      json lines = json::array();
      auto it = by_dist.find(d);
      std::vector<const Line*> ls = it == by_dist.end() ? std::vector<const Line*>{} : it->second;
      std::sort(ls.begin(), ls.end(), [](const Line* a, const Line* b) {
        return std::tuple(a->order, a->bonus, a->level) < std::tuple(b->order, b->bonus, b->level);
      });
      for (const Line* l : ls) {
        const int64_t net = l->amount - l->reversed;
        (l->state == "held" ? held : l->state == "pending" ? pending : l->state == "settled" ? settled : voided) += net;
        rev += l->reversed;
        claw += l->clawed;
        waived += l->waived;
        lines.push_back({{"order_id", l->order},
                         {"kind", l->bonus ? "leader_bonus" : "commission"},
                         {"level", l->level},
                         {"rate_bps", l->rate},
                         {"base_fen", l->base},
                         {"amount_fen", l->amount},
                         {"reversed_fen", l->reversed},
                         {"clawed_back_fen", l->clawed},
                         {"waived_fen", l->waived},
                         {"state", l->state},
                         {"settles_at", Opt(l->settles_at)}});
      }
      int64_t downlines = 0;
      for (const auto& [mk, m] : members_) {
        if (mk.first == d.first && m.upline == d.second) ++downlines;
      }
      auto sc = share_counts_.find(d);
      out.push_back({{"kind", "distributor"}, {"tenant", d.first}, {"id", d.second}, {"held_fen", held},
                     {"pending_fen", pending}, {"settled_fen", settled}, {"reversed_fen", rev},
                     {"voided_fen", voided}, {"clawed_back_fen", claw}, {"waived_fen", waived},
                     {"balance_fen", settled - claw}, {"shares", sc == share_counts_.end() ? 0 : sc->second},
                     {"downlines", downlines}, {"lines", lines}});
    }
    for (const auto& [k, g] : groups_) {
      json members = json::array();
      for (const auto& m : g.members) {
        members.push_back({{"member", m.member}, {"joined_at", Utc(m.joined_at)}, {"paid", m.paid}, {"order_id", Opt(m.order)}});
      }
      out.push_back({{"kind", "group"}, {"tenant", k.first}, {"id", k.second}, {"status", g.status},
                     {"leader", g.leader}, {"size", g.size}, {"product_id", g.product},
                     {"opened_at", Utc(g.opened_at)}, {"expires_at", Utc(g.expires_at)}, {"closed_at", Opt(g.closed_at)},
                     {"virtual", g.is_virtual}, {"paid_count", g.paid_count()}, {"members", members},
                     {"refund_due", json(std::vector<std::string>(g.refund_due.begin(), g.refund_due.end()))}});
    }
    for (const auto& [k, m] : members_) {
      out.push_back({{"kind", "member"}, {"tenant", k.first}, {"id", k.second}, {"tier", m.tier},
                     {"growth", m.growth}, {"points", m.points}, {"checkins", m.checkins},
                     {"checkin_streak", m.streak},
                     {"last_checkin_date", m.last_day ? json(Date(*m.last_day)) : json(nullptr)},
                     {"upline", Opt(m.upline)}, {"bound_at", Opt(m.bound_at)}, {"tier_history", m.history}});
    }
    for (const auto& [k, o] : orders_) {
      out.push_back({{"kind", "order"}, {"tenant", k.first}, {"id", k.second}, {"member", o.member},
                     {"amount_fen", o.amount}, {"commission_base_fen", o.base}, {"refunded_fen", o.refunded},
                     {"group_id", Opt(o.group)}, {"paid_at", Utc(o.paid_at)}, {"refund_due", o.refund_due},
                     {"overflow", o.overflow}});
    }
    std::vector<const Rejection*> rs;
    for (const auto& r : rejections) rs.push_back(&r);
    std::sort(rs.begin(), rs.end(), [](const Rejection* a, const Rejection* b) {
      return std::tuple(a->tenant, a->id.has_value(), a->id.value_or(""), a->source, a->position) <
             std::tuple(b->tenant, b->id.has_value(), b->id.value_or(""), b->source, b->position);
    });
    for (const Rejection* r : rs) {
      out.push_back({{"kind", "rejection"}, {"tenant", r->tenant}, {"id", Opt(r->id)}, {"reason", r->reason},
                     {"source", r->source}, {"position", r->position}});
    }
    // members, groups, ... are each already in (tenant, id) order; kinds are
    // emitted in their bytewise order.
    return out;
  }

 private:
  using LineKey = std::tuple<std::string, std::string, std::string, bool, int>;  // tenant, dist, order, bonus, level

  Member& Touch(const std::string& tenant, const std::string& id, const SimEvent& e) {
    auto [it, fresh] = members_.try_emplace({tenant, id});
    if (fresh) {  // the starting tier, under the first event's rules
      it->second.tier = For(tenant, e.t).tiers.front().name;
      it->second.history.push_back({{"tier", it->second.tier}, {"at", Utc(e.t)}, {"event_id", e.id}});
    }
    return it->second;
  }

  static int Rank(const SimVersion& r, const std::string& tier) {
    for (size_t i = 0; i < r.tiers.size(); ++i) {
      if (r.tiers[i].name == tier) return static_cast<int>(i);
    }
    return -1;
  }

  void Grow(const std::string& tenant, const std::string& id, int64_t dg, int64_t dp, const SimVersion& r,
            const SimEvent& e) {
    Member& m = members_.at({tenant, id});
    m.growth += dg;
    m.points += dp;
    std::string next = r.tiers.front().name;
    for (const auto& t : r.tiers) {
      if (t.min_growth <= m.growth) next = t.name;
    }
    if (next == m.tier) return;
    if (!r.demote_on_refund && Rank(r, next) < Rank(r, m.tier)) return;
    m.tier = next;
    m.history.push_back({{"tier", next}, {"at", Utc(e.t)}, {"event_id", e.id}});
  }

  void Bind(const SimEvent& e, const SimVersion& r) {
    if (e.share_id.empty()) return;
    auto s = shares_.find({e.tenant, e.share_id});
    if (s == shares_.end()) return;
    const std::string d = s->second;
    if (d == e.member) return;
    for (std::optional<std::string> cur = d; cur;) {
      if (*cur == e.member) return;  // M is up D's chain: a cycle
      auto it = members_.find({e.tenant, *cur});
      cur = it == members_.end() ? std::nullopt : it->second.upline;
    }
    Member& m = Touch(e.tenant, e.member, e);
    bool bind = false;
    if (r.binding == "first_touch") bind = !m.upline;
    if (r.binding == "overwrite") bind = true;
    if (r.binding == "window") bind = !m.upline || e.t - *m.bound_at >= int64_t{r.binding_window_days} * kDay;
    if (!bind) return;
    m.upline = d;
    m.bound_at = e.t;
  }

  static int64_t Growth(int64_t net, const SimVersion& r) { return net / 100 * r.growth_per_yuan; }
  static int64_t Points(int64_t net, const SimVersion& r) { return net / 100 * r.points_per_yuan; }

  void Schedule(Line& l, int64_t from) {
    if (l.freeze_days == 0) {
      l.state = "settled";
      l.settles_at = from;
    } else {
      l.state = "pending";
      l.settles_at = from + int64_t{l.freeze_days} * kDay;
    }
  }

  std::optional<std::string> Pay(const SimEvent& e, const SimVersion& r) {
    const Key ok{e.tenant, e.order_id};
    if (orders_.count(ok)) return "duplicate_order";
    Bind(e, r);
    Member& buyer = Touch(e.tenant, e.member, e);
    // Where the order stands in its group.
    Group* g = nullptr;
    bool overflow = false;
    if (!e.group_id.empty()) {
      auto it = groups_.find({e.tenant, e.group_id});
      if (it != groups_.end()) {
        g = &it->second;
        overflow = g->status != "forming" ||
                   std::any_of(g->members.begin(), g->members.end(),
                               [&](auto& m) { return m.member == e.member && m.paid; });
      }
    }
    Order& o = orders_[ok];
    o.member = e.member;
    o.amount = e.amount_fen;
    o.base = e.base_fen;
    o.paid_at = e.t;
    o.rules = &r;
    if (!e.group_id.empty()) o.group = e.group_id;
    Grow(e.tenant, e.member, Growth(e.amount_fen, r), Points(e.amount_fen, r), r, e);
    if (overflow) {
      o.overflow = o.refund_due = true;
      g->refund_due.insert(e.order_id);
      return std::nullopt;
    }
    // Beneficiaries.
    std::vector<std::string> chain;
    std::optional<std::string> next = (r.self_purchase && buyer.distributor) ? std::optional(e.member) : buyer.upline;
    while (next && chain.size() < r.levels_bps.size() && std::find(chain.begin(), chain.end(), *next) == chain.end()) {
      chain.push_back(*next);
      next = members_.at({e.tenant, *next}).upline;
    }
    for (size_t k = 0; k < chain.size(); ++k) {
      Line l;
      l.dist = chain[k];
      l.order = e.order_id;
      l.level = static_cast<int>(k + 1);
      auto bonus = r.tier_bonus_bps.find(members_.at({e.tenant, chain[k]}).tier);
      l.rate = r.levels_bps[k] + (bonus == r.tier_bonus_bps.end() ? 0 : bonus->second);
      l.base = e.base_fen;
      l.amount = static_cast<int64_t>(static_cast<Wide>(e.base_fen) * l.rate / 10000);
      l.freeze_days = r.freeze_days;
      l.policy = r.refund_after_settlement;
      if (g) {
        l.state = "held";
      } else {
        Schedule(l, e.t);
      }
      lines_[{e.tenant, l.dist, l.order, false, l.level}] = l;
      o.lines.push_back(l.dist);
    }
    if (g) {
      auto m = std::find_if(g->members.begin(), g->members.end(), [&](auto& x) { return x.member == e.member; });
      if (m == g->members.end()) {
        g->members.push_back({e.member, e.t, false, std::nullopt});
        m = g->members.end() - 1;
      }
      m->paid = true;
      m->order = e.order_id;
      if (g->paid_count() >= g->size) Succeed(e.tenant, *g, e.t, false);
    }
    return std::nullopt;
  }

  Line& OrderLine(const std::string& tenant, const std::string& dist, const std::string& order, size_t k) {
    return lines_.at({tenant, dist, order, false, static_cast<int>(k + 1)});
  }

  void Succeed(const std::string& tenant, Group& g, int64_t at, bool is_virtual) {
    g.status = "succeeded";
    g.closed_at = at;
    g.is_virtual = is_virtual;
    std::optional<std::string> leader_order;
    for (const auto& m : g.members) {
      if (!m.paid) continue;
      if (m.member == g.leader) leader_order = m.order;
      const Order& o = orders_.at({tenant, *m.order});
      for (size_t k = 0; k < o.lines.size(); ++k) {
        Line& l = OrderLine(tenant, o.lines[k], *m.order, k);
        if (l.state == "held") Schedule(l, at);
      }
    }
    if (g.bonus > 0 && leader_order) {
      Line l;
      l.dist = g.leader;
      l.order = *leader_order;
      l.bonus = true;
      l.level = 0;
      l.amount = g.bonus;
      l.freeze_days = g.bonus_freeze;
      Schedule(l, at);
      lines_[{tenant, l.dist, l.order, true, 0}] = l;
    }
  }

  void Expire(const Key& k, Group& g) {
    if (g.virtual_success && g.paid_count() >= 1) {
      Succeed(k.first, g, g.expires_at, true);
      return;
    }
    g.status = "failed";
    g.closed_at = g.expires_at;
    for (const auto& m : g.members) {
      if (!m.paid) continue;
      Order& o = orders_.at({k.first, *m.order});
      if (o.refunded < o.amount) {
        o.refund_due = true;
        g.refund_due.insert(*m.order);
      }
      for (size_t i = 0; i < o.lines.size(); ++i) {
        Line& l = OrderLine(k.first, o.lines[i], *m.order, i);
        if (l.state == "held") l.state = "void";
      }
    }
  }

  int64_t Balance(const std::string& tenant, const std::string& dist) const {
    int64_t b = 0;
    for (const auto& [k, l] : lines_) {
      if (std::get<0>(k) != tenant || l.dist != dist) continue;
      if (l.state == "settled") b += l.amount - l.reversed;
      b -= l.clawed;
    }
    return b;
  }

  std::optional<std::string> RefundOrder(const SimEvent& e) {
    auto it = orders_.find({e.tenant, e.order_id});
    if (it == orders_.end()) return "unknown_order";
    Order& o = it->second;
    if (o.refunded + e.amount_fen > o.amount) return "refund_exceeds_payment";
    o.refunded += e.amount_fen;
    for (size_t k = 0; k < o.lines.size(); ++k) {
      Line& l = OrderLine(e.tenant, o.lines[k], e.order_id, k);
      const int64_t due = static_cast<int64_t>(static_cast<Wide>(l.amount) * o.refunded / o.amount);
      const int64_t take = due - l.reversed - l.clawed - l.waived;
      if (take <= 0) continue;
      if (l.state == "held" || l.state == "pending") {
        l.reversed += take;
      } else if (l.state == "settled") {
        if (l.policy == "negative_balance") {
          l.clawed += take;
        } else if (l.policy == "cap_at_balance") {
          const int64_t claw = std::min(take, std::max<int64_t>(0, Balance(e.tenant, l.dist)));
          l.clawed += claw;
          l.waived += take - claw;
        } else {
          l.waived += take;
        }
      }
    }
    // Growth and points at the payment's rates, tiers by the refund's rules.
    const SimVersion& pr = *o.rules;
    const int64_t before = o.amount - (o.refunded - e.amount_fen), net = o.amount - o.refunded;
    Grow(e.tenant, o.member, Growth(net, pr) - Growth(before, pr), Points(net, pr) - Points(before, pr),
         For(e.tenant, e.t), e);
    if (o.refunded == o.amount) {
      const bool was_due = o.refund_due;
      o.refund_due = false;
      if (o.group) {
        auto g = groups_.find({e.tenant, *o.group});
        if (g != groups_.end()) {
          if (was_due) g->second.refund_due.erase(e.order_id);
          auto& ms = g->second.members;
          auto m = std::find_if(ms.begin(), ms.end(), [&](auto& x) {
            return x.member == o.member && x.paid && x.order == e.order_id;
          });
          if (g->second.status == "forming" && m != ms.end()) {
            ms.erase(m);
            for (size_t k = 0; k < o.lines.size(); ++k) {
              Line& l = OrderLine(e.tenant, o.lines[k], e.order_id, k);
              if (l.state == "held") l.state = "void";
            }
          }
        }
      }
    }
    return std::nullopt;
  }

  const SimRules& rules_;
  std::map<Key, std::string> shares_;  // share id -> sharer
  std::map<Key, int64_t> share_counts_;
  std::map<Key, Member> members_;
  std::map<Key, Group> groups_;
  std::map<Key, Order> orders_;
  std::map<LineKey, Line> lines_;
};

}  // namespace

std::vector<std::string> ReferenceExport(const Plan& plan) {
  // Arrival pass: checks 1-3 of section 4.
  std::vector<Rejection> rejections;
  std::vector<Accepted> accepted;
  std::map<Key, std::optional<SimEvent>> seen;  // nullopt: first seen as an invalid line
  std::optional<int64_t> max_seen, flushed_through;
  std::map<std::string, int64_t> tenant_max_seen;
  for (const Input& in : plan.inputs) {
    int64_t position = 0;
    for (const Arrival& a : in.lines) {
      ++position;
      if (a.line.empty()) continue;  // blank: not an event
      if (!a.event) {
        rejections.push_back({a.invalid_tenant, a.invalid_id, a.invalid_reason, in.source, position});
        if (a.invalid_id) seen.try_emplace({a.invalid_tenant, *a.invalid_id}, std::nullopt);
        continue;
      }
      const SimEvent& e = *a.event;
      const Key k{e.tenant, e.id};
      if (auto it = seen.find(k); it != seen.end()) {
        if (!(it->second && *it->second == e)) rejections.push_back({e.tenant, e.id, "conflicting_duplicate", in.source, position});
        continue;
      }
      seen.emplace(k, e);
      // The watermark is the tenant's own (spec section 3, revised).
      auto m = tenant_max_seen.find(e.tenant);
      const std::optional<int64_t> own_max =
          m == tenant_max_seen.end() ? std::nullopt : std::optional<int64_t>(m->second);
      if ((own_max && e.t < *own_max - plan.allowed_lateness_ms) || (flushed_through && e.t <= *flushed_through)) {
        rejections.push_back({e.tenant, e.id, "late_event", in.source, position});
        continue;
      }
      max_seen = std::max(max_seen.value_or(e.t), e.t);
      tenant_max_seen[e.tenant] = std::max(own_max.value_or(e.t), e.t);
      accepted.push_back({e, in.source, position});
    }
    if (in.ending == Ending::kFinish) flushed_through = max_seen;
  }

  // Canonical pass: (occurred_at, event_id), timers interleaved.
  std::stable_sort(accepted.begin(), accepted.end(), [](const Accepted& a, const Accepted& b) {
    return std::tie(a.e.t, a.e.id, a.e.tenant) < std::tie(b.e.t, b.e.id, b.e.tenant);
  });
  Model model(plan.rules);
  for (const Accepted& a : accepted) {
    model.FireUpTo(a.e.t);
    if (auto reason = model.Apply(a.e)) rejections.push_back({a.e.tenant, a.e.id, *reason, a.source, a.position});
  }
  if (max_seen) model.FireUpTo(*max_seen);

  std::vector<std::string> out;
  for (const json& j : model.Export(rejections)) out.push_back(j.dump());
  return out;
}

}  // namespace fission::sim
