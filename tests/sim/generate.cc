// The simulator's generator: rules, a stream, its hostile extras, and how the
// stream arrives (sim.h). Everything comes from one std::mt19937_64 seeded with
// the plan's seed, so a seed is a complete reproduction.
#include <fmt/format.h>

#include <algorithm>
#include <ctime>
#include <nlohmann/json.hpp>
#include <random>

#include "tests/sim/sim.h"

namespace fission::sim {
namespace {

using nlohmann::json;

constexpr int64_t kMinute = 60'000, kHour = 60 * kMinute, kDay = 24 * kHour;

int64_t UtcMs(int y, int mo, int d) {
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  return static_cast<int64_t>(timegm(&tm)) * 1000;
}

class Rng {
 public:
  explicit Rng(uint64_t seed) : g_(seed) {}
  int64_t In(int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(g_); }
  bool Chance(double p) { return std::uniform_real_distribution<double>(0, 1)(g_) < p; }
  template <typename T>
  const T& Pick(const std::vector<T>& v) { return v[static_cast<size_t>(In(0, static_cast<int64_t>(v.size()) - 1))]; }
  std::mt19937_64& engine() { return g_; }

 private:
  std::mt19937_64 g_;
};

// ---- rules ------------------------------------------------------------------

SimVersion RandomVersion(Rng& rng, const std::string& name, int64_t from, bool first) {
  SimVersion v;
  v.name = name;
  v.effective_from_ms = from;
  v.utc_offset_minutes = first || rng.Chance(0.7) ? 480 : static_cast<int>(rng.Pick(std::vector<int64_t>{0, -300, 330}));
  const int64_t n = rng.In(1, 3);
  int64_t sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    v.levels_bps.push_back(rng.Chance(0.1) ? 0 : rng.In(1, 1500));
    sum += v.levels_bps.back();
  }
  v.self_purchase = rng.Chance(0.3);
  v.freeze_days = static_cast<int>(rng.In(0, 2));
  v.binding = rng.Pick(std::vector<std::string>{"first_touch", "overwrite", "window"});
  v.binding_window_days = static_cast<int>(rng.In(0, 2));
  v.refund_after_settlement = rng.Pick(std::vector<std::string>{"negative_balance", "cap_at_balance", "none"});
  v.virtual_success = rng.Chance(0.4);
  v.leader_bonus_fen = rng.Chance(0.5) ? 0 : rng.In(1, 800);
  v.growth_per_yuan = rng.In(1, 3);
  v.points_per_yuan = rng.In(0, 2);
  v.checkin_growth = rng.Pick(std::vector<int64_t>{0, 5, 50});
  v.demote_on_refund = rng.Chance(0.5);
  // Names shift between versions now and then, so a member may hold a tier
  // the governing version does not know.
  std::vector<std::string> names = rng.Chance(0.8) ? std::vector<std::string>{"regular", "silver", "gold", "diamond"}
                                                   : std::vector<std::string>{"bronze", "silver", "platinum"};
  int64_t min = 0;
  for (size_t i = 0; i < names.size(); ++i) {
    v.tiers.push_back({names[i], min});
    min += rng.In(50, 2000);
  }
  const int64_t max_bonus = (5000 - sum) / n;
  for (const auto& t : v.tiers) {
    if (rng.Chance(0.4)) v.tier_bonus_bps[t.name] = rng.In(0, std::min<int64_t>(max_bonus, 500));
  }
  for (int64_t i = 0, k = rng.In(1, 7); i < k; ++i) v.points_by_day.push_back(rng.In(0, 10));
  v.after_last_day = rng.Chance(0.5) ? "repeat_last" : "restart";
  return v;
}

SimRules RandomRules(Rng& rng, int64_t t0, int64_t span) {
  SimRules r;
  for (const std::string tenant : {"default", "shop2"}) {
    if (tenant != "default" && rng.Chance(0.5)) continue;  // shop2 uses default's
    const int64_t n = rng.In(1, 3);
    // The first version starts before the stream, or (so that "the first
    // version if none" is exercised) inside it.
    int64_t from = rng.Chance(0.8) ? UtcMs(2026, 1, 1) : t0 + rng.In(0, span / 4);
    for (int64_t i = 0; i < n; ++i) {
      r.tenants[tenant].push_back(RandomVersion(rng, fmt::format("{}-v{}", tenant, i + 1), from, i == 0));
      from = std::max(from, t0) + rng.In(kHour, span / 2);
    }
  }
  return r;
}

// ---- rendering ----------------------------------------------------------------

// An RFC 3339 instant for `ms`, in one of several offsets and precisions.
std::string Timestamp(Rng& rng, int64_t ms) {
  const int offset = static_cast<int>(rng.Pick(std::vector<int64_t>{480, 480, 0, -300, 330}));
  const int64_t local = ms + int64_t{offset} * kMinute;
  const std::time_t secs = static_cast<std::time_t>(local / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  std::string s = fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                              tm.tm_hour, tm.tm_min, tm.tm_sec);
  const int64_t frac = local % 1000;
  if (frac != 0 || rng.Chance(0.3)) s += fmt::format(".{:03}", frac);
  if (offset == 0 && rng.Chance(0.5)) return s + "Z";
  const int a = std::abs(offset);
  return s + fmt::format("{}{:02}:{:02}", offset < 0 ? '-' : '+', a / 60, a % 60);
}

json EventJson(Rng& rng, const SimEvent& e) {
  json o = json::object();
  o["event_id"] = e.id;
  o["type"] = e.type;
  o["occurred_at"] = Timestamp(rng, e.t);
  if (e.tenant != "default" || rng.Chance(0.2)) o["tenant"] = e.tenant;
  if (e.type == "share") {
    o["sharer"] = e.sharer;
    o["share_id"] = e.share_id;
    if (!e.channel.empty()) o["channel"] = e.channel;
  } else if (e.type == "join") {
    o["member"] = e.member;
    o["group_id"] = e.group_id;
    if (!e.share_id.empty()) o["share_id"] = e.share_id;
    if (e.opens) {
      o["opens"] = true;
      o["size"] = e.size;
      o["expires_at"] = Timestamp(rng, e.expires_at);
      o["product_id"] = e.product_id;
    } else if (rng.Chance(0.1)) {
      o["opens"] = false;
    }
  } else if (e.type == "payment") {
    o["member"] = e.member;
    o["order_id"] = e.order_id;
    o["amount_fen"] = e.amount_fen;
    if (e.base_fen != e.amount_fen || rng.Chance(0.2)) o["commission_base_fen"] = e.base_fen;
    if (!e.group_id.empty()) o["group_id"] = e.group_id;
    if (!e.share_id.empty()) o["share_id"] = e.share_id;
  } else if (e.type == "refund") {
    o["order_id"] = e.order_id;
    o["amount_fen"] = e.amount_fen;
  } else {
    o["member"] = e.member;
  }
  if (rng.Chance(0.05)) o["x_client"] = json{{"app", "mini"}, {"v", json::array({1, 2})}};  // ignored
  return o;
}

// The object's members in a random order, with random spacing.
std::string Dump(Rng& rng, const json& o) {
  std::vector<std::string> parts;
  for (auto it = o.begin(); it != o.end(); ++it) {
    parts.push_back(json(it.key()).dump() + (rng.Chance(0.2) ? " : " : ":") + it.value().dump());
  }
  std::shuffle(parts.begin(), parts.end(), rng.engine());
  std::string s = rng.Chance(0.1) ? "  {" : "{";
  for (size_t i = 0; i < parts.size(); ++i) s += (i ? "," : "") + parts[i];
  return s + "}";
}

// ---- the stream -------------------------------------------------------------

struct Stream {
  std::vector<SimEvent> events;  // generation order = time order
};

std::string RandomId(Rng& rng, const std::string& prefix, int64_t k) {
  // A random first letter so events at the same instant are not applied in
  // generation order (ties go by event_id).
  return fmt::format("{}{}-{}", static_cast<char>('a' + rng.In(0, 25)), prefix, k);
}

Stream RandomStream(Rng& rng, int64_t n, int64_t t0, int64_t span, std::map<std::string, int64_t>& counts) {
  Stream s;
  const int64_t members = std::max<int64_t>(8, n / 12);
  struct GroupInfo {
    std::string tenant, id;
    int64_t expires_at;
  };
  std::vector<std::pair<std::string, std::string>> shares;  // tenant, share id
  std::vector<GroupInfo> groups;
  struct OrderInfo {
    std::string tenant, id;
    int64_t amount, refunded;
  };
  std::vector<OrderInfo> orders;
  int64_t t = t0;
  const int64_t mean_gap = std::max<int64_t>(1, span / n);
  for (int64_t k = 0; k < n; ++k) {
    if (!rng.Chance(0.08)) t += rng.In(0, 2 * mean_gap);  // some events share an instant
    if (rng.Chance(0.3)) t += rng.In(1, 999);
    SimEvent e;
    e.id = RandomId(rng, "e", k);
    e.tenant = rng.Chance(0.75) ? "default" : "shop2";
    e.t = t;
    auto member = [&] { return fmt::format("m{}", rng.In(0, members - 1)); };
    auto share_of_tenant = [&]() -> std::string {
      if (shares.empty() || rng.Chance(0.1)) return fmt::format("s{}", rng.In(0, 999));  // unknown share
      for (int tries = 0; tries < 8; ++tries) {
        const auto& sh = rng.Pick(shares);
        if (sh.first == e.tenant) return sh.second;
      }
      return "";
    };
    const int64_t roll = rng.In(0, 99);
    if (roll < 10) {
      e.type = "share";
      e.sharer = member();
      e.share_id = (!shares.empty() && rng.Chance(0.05)) ? rng.Pick(shares).second : fmt::format("s{}", k);
      if (rng.Chance(0.3)) e.channel = rng.Chance(0.5) ? "wechat" : "moments";
      shares.emplace_back(e.tenant, e.share_id);
    } else if (roll < 17) {
      e.type = "join";
      e.opens = true;
      e.member = member();
      e.group_id = (!groups.empty() && rng.Chance(0.03)) ? rng.Pick(groups).id : fmt::format("g{}", k);
      e.size = rng.In(2, 4);
      e.expires_at = t + rng.In(kHour, 30 * kHour);
      e.product_id = fmt::format("p{}", rng.In(0, 4));
      if (rng.Chance(0.4)) e.share_id = share_of_tenant();
      groups.push_back({e.tenant, e.group_id, e.expires_at});
    } else if (roll < 30) {
      e.type = "join";
      e.member = member();
      e.group_id = (groups.empty() || rng.Chance(0.05)) ? fmt::format("g{}", rng.In(0, 9999)) : rng.Pick(groups).id;
      if (rng.Chance(0.4)) e.share_id = share_of_tenant();
    } else if (roll < 63) {
      e.type = "payment";
      e.member = member();
      e.order_id = (!orders.empty() && rng.Chance(0.03)) ? rng.Pick(orders).id : fmt::format("o{}", k);
      const int64_t kind = rng.In(0, 99);
      e.amount_fen = kind < 4 ? rng.In(1, 1'000'000'000'000) : kind < 6 ? 1 : rng.In(100, 60'000);
      e.base_fen = rng.Chance(0.3) ? rng.In(0, e.amount_fen) : e.amount_fen;
      if (rng.Chance(0.55)) {
        e.group_id = (groups.empty() || rng.Chance(0.05)) ? fmt::format("g{}", rng.In(0, 9999)) : groups[static_cast<size_t>(rng.In(std::max<int64_t>(0, static_cast<int64_t>(groups.size()) - 6), static_cast<int64_t>(groups.size()) - 1))].id;
      }
      if (rng.Chance(0.4)) e.share_id = share_of_tenant();
      orders.push_back({e.tenant, e.order_id, e.amount_fen, 0});
    } else if (roll < 75) {
      e.type = "refund";
      if (orders.empty() || rng.Chance(0.05)) {
        e.order_id = fmt::format("o{}", rng.In(0, 9999));
        e.amount_fen = rng.In(1, 1000);
      } else {
        OrderInfo& o = orders[static_cast<size_t>(rng.In(0, static_cast<int64_t>(orders.size()) - 1))];
        e.tenant = rng.Chance(0.95) ? o.tenant : e.tenant;
        e.order_id = o.id;
        const int64_t left = o.amount - o.refunded;
        const int64_t kind = rng.In(0, 99);
        if (left <= 0 || kind < 10) {
          e.amount_fen = left + rng.In(1, 100);  // too much
        } else if (kind < 50) {
          e.amount_fen = left;
        } else {
          e.amount_fen = rng.In(1, left);
        }
        if (e.amount_fen <= left) o.refunded += e.amount_fen;
      }
    } else {
      e.type = "checkin";
      e.member = member();
    }
    // Now and then the same member acts again at the same instant through
    // another share: bindings and their windows at their boundary.
    const bool companion = (e.type == "payment" || e.type == "join") && !e.share_id.empty() && rng.Chance(0.15);
    SimEvent c = e;
    s.events.push_back(std::move(e));
    if (companion) {
      c.id = RandomId(rng, "c", k);
      c.type = "payment";
      c.opens = false;
      c.group_id.clear();
      c.order_id = fmt::format("oc{}", k);
      c.amount_fen = rng.In(100, 9'000);
      c.base_fen = c.amount_fen;
      c.share_id = share_of_tenant();
      orders.push_back({c.tenant, c.order_id, c.amount_fen, 0});
      s.events.push_back(std::move(c));
      ++counts["same_instant_rebinds"];
    }
  }
  counts["events"] = static_cast<int64_t>(s.events.size());
  return s;
}

// A copy of `e` that differs in content (a conflicting re-send).
SimEvent Conflicting(Rng& rng, SimEvent e) {
  if (e.type == "payment" || e.type == "refund") {
    e.amount_fen += 1;
    e.base_fen = e.type == "payment" ? std::min(e.base_fen, e.amount_fen) : 0;
  } else if (e.type == "share") {
    e.sharer += "x";
  } else {
    e.member = e.member + (rng.Chance(0.5) ? "x" : "y");
  }
  return e;
}

// A line the decoder must refuse, made from `e` or from nothing.
Arrival Invalid(Rng& rng, const SimEvent& e, int64_t k) {
  Arrival a;
  a.invalid_reason = "invalid_event";
  json o = EventJson(rng, e);
  const int64_t kind = rng.In(0, 9);
  auto with_id = [&] {
    a.invalid_id = e.id;
    a.invalid_tenant = e.tenant;
  };
  switch (kind) {
    case 0:
      a.line = rng.Pick(std::vector<std::string>{"{not json", "[]", "\"payment\"", "{}", "nul", "{\"event_id\":",
                                                 std::string("\xff\xfe{\x01}", 5)});
      return a;
    case 1:
      o["type"] = "like";
      a.invalid_reason = "unknown_type";
      with_id();
      break;
    case 2:
      o["event_id"] = fmt::format("bad id {}", k);  // malformed: no id to report
      a.invalid_tenant = e.tenant;
      break;
    case 3:
      o["occurred_at"] = "2026-13-01T00:00:00Z";
      with_id();
      break;
    case 4:
      o["tenant"] = "bad tenant";  // unreadable tenant: rejected under default
      with_id();
      a.invalid_tenant = "default";
      break;
    case 5:
      o.erase("type");
      with_id();
      break;
    case 6:
      o["occurred_at"] = nullptr;
      with_id();
      break;
    case 7:
      if (e.type == "payment" || e.type == "refund") {
        o["amount_fen"] = rng.Chance(0.5) ? json(0) : json(std::to_string(e.amount_fen));
      } else {
        o["event_id"] = std::string(129, 'x');  // too long: no id
        a.line = o.dump();
        a.invalid_tenant = e.tenant;
        return a;
      }
      with_id();
      break;
    case 8:
      o["x_deep"] = json::parse("[[[[[[[[[[1]]]]]]]]]]");  // deeper than 8 levels
      a.line = o.dump();
      return a;  // depth is refused before any field is read
    default:
      o["event_id"] = 42;  // wrong type: no id
      a.invalid_tenant = e.tenant;
      break;
  }
  a.line = Dump(rng, o);
  return a;
}

Arrival Valid(Rng& rng, const SimEvent& e) {
  Arrival a;
  a.event = e;
  a.line = Dump(rng, EventJson(rng, e));
  return a;
}

}  // namespace

Plan Generate(uint64_t seed, const GenOptions& options) {
  Rng rng(seed);
  Plan plan;
  plan.seed = seed;
  const int64_t t0 = UtcMs(2026, 11, 1);
  const int64_t span = rng.In(2, 5) * kDay;
  plan.rules = RandomRules(rng, t0, span);
  plan.allowed_lateness_ms = rng.Pick(std::vector<int64_t>{0, 60'000, 60'000, 30 * kMinute, 6 * kHour});
  plan.sync_commits = rng.Chance(0.5);
  plan.batch_events = static_cast<size_t>(rng.Pick(std::vector<int64_t>{1, 7, 64, 1000}));
  {  // from a stream of its own, so the other draws of a seed stay as they were
    Rng threads(seed ^ 0x5eed'0000'dec0'0003ULL);
    plan.decode_thread = threads.Chance(0.5);
    plan.write_thread = threads.Chance(0.5);
    plan.memory_budget_bytes = threads.Chance(0.5) ? 1 : 0;
  }
  {
    Rng checkpoints(seed ^ 0x5eed'0000'dec0'0004ULL);
    plan.checkpoint_every = static_cast<size_t>(checkpoints.Pick(std::vector<int64_t>{1, 3, 16}));
  }
  {
    Rng ingest(seed ^ 0x5eed'0000'dec0'0005ULL);
    plan.ingest_min_rows = static_cast<size_t>(ingest.Pick(std::vector<int64_t>{0, 1, 1, 64}));
  }
  const Stream s = RandomStream(rng, options.events, t0, span, plan.counts);

  // Arrival order: most events on time, some delayed within the lateness
  // bound, a few beyond it; re-sends, conflicting re-sends and invalid lines.
  const int64_t late = std::max<int64_t>(plan.allowed_lateness_ms, 1);
  std::vector<std::pair<int64_t, Arrival>> keyed;
  auto delay = [&]() -> int64_t {
    const int64_t r = rng.In(0, 99);
    if (r < 80) return 0;
    if (r < 96) return rng.In(0, late);
    ++plan.counts["delayed_beyond_lateness"];
    return rng.In(late, 3 * late + 2 * kHour);
  };
  int64_t k = 0;
  for (const SimEvent& e : s.events) {
    ++k;
    keyed.emplace_back(e.t + delay(), Valid(rng, e));
    if (rng.Chance(0.06)) {
      ++plan.counts["exact_resends"];
      keyed.emplace_back(e.t + rng.In(0, 2 * late + kHour), Valid(rng, e));
    }
    if (rng.Chance(0.02)) {
      ++plan.counts["conflicting_resends"];
      keyed.emplace_back(e.t + rng.In(-late, 2 * late), Valid(rng, Conflicting(rng, e)));
    }
    if (rng.Chance(0.04)) {
      ++plan.counts["invalid_lines"];
      keyed.emplace_back(e.t + rng.In(-late, late), Invalid(rng, e, k));
    }
    if (rng.Chance(0.01)) keyed.emplace_back(e.t, Arrival{});  // a blank line
  }
  std::stable_sort(keyed.begin(), keyed.end(), [](const auto& a, const auto& b) { return a.first < b.first; });

  // Cut into inputs.
  const int64_t n_inputs = rng.In(1, 5);
  std::vector<size_t> cuts{0};
  for (int64_t i = 1; i < n_inputs; ++i) cuts.push_back(static_cast<size_t>(rng.In(0, static_cast<int64_t>(keyed.size()))));
  cuts.push_back(keyed.size());
  std::sort(cuts.begin(), cuts.end());
  for (size_t i = 0; i + 1 < cuts.size(); ++i) {
    Input in;
    in.source = fmt::format("input-{}.jsonl", i + 1);
    for (size_t j = cuts[i]; j < cuts[i + 1]; ++j) in.lines.push_back(std::move(keyed[j].second));
    const bool last = i + 2 == cuts.size();
    in.ending = (last || rng.Chance(0.35)) ? Ending::kFinish : Ending::kRestart;
    ++plan.counts[in.ending == Ending::kFinish ? "inputs_finished" : "restarts"];
    if (options.faults && rng.Chance(0.4)) {
      Fault f;
      f.kind = rng.Pick(std::vector<Fault::Kind>{Fault::Kind::kFailWrite, Fault::Kind::kFailSync,
                                                 Fault::Kind::kDiskFull, Fault::Kind::kPowerCut});
      if (f.kind == Fault::Kind::kPowerCut && !plan.sync_commits) f.kind = Fault::Kind::kFailWrite;
      f.at = f.kind == Fault::Kind::kFailSync ? rng.In(1, 6) : rng.In(1, 60);
      in.fault = f;
      ++plan.counts["faults_armed"];
    }
    plan.inputs.push_back(std::move(in));
  }
  return plan;
}

std::string RulesJson(const SimRules& rules) {
  json doc;
  for (const auto& [tenant, versions] : rules.tenants) {
    json list = json::array();
    for (const SimVersion& v : versions) {
      json tiers = json::array();
      for (const SimTier& t : v.tiers) tiers.push_back({{"name", t.name}, {"min_growth", t.min_growth}});
      json bonus = json::object();
      for (const auto& [n, b] : v.tier_bonus_bps) bonus[n] = b;
      const std::time_t secs = static_cast<std::time_t>(v.effective_from_ms / 1000);
      std::tm tm{};
      gmtime_r(&secs, &tm);
      list.push_back({
          {"version", v.name},
          {"effective_from", fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                                         tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, v.effective_from_ms % 1000)},
          {"utc_offset_minutes", v.utc_offset_minutes},
          {"commission",
           {{"levels_bps", v.levels_bps},
            {"self_purchase", v.self_purchase},
            {"freeze_days", v.freeze_days},
            {"binding", v.binding},
            {"binding_window_days", v.binding_window_days},
            {"refund_after_settlement", v.refund_after_settlement},
            {"tier_bonus_bps", bonus}}},
          {"group", {{"virtual_success", v.virtual_success}, {"leader_bonus_fen", v.leader_bonus_fen}}},
          {"tiers",
           {{"growth_per_yuan", v.growth_per_yuan},
            {"points_per_yuan", v.points_per_yuan},
            {"checkin_growth", v.checkin_growth},
            {"demote_on_refund", v.demote_on_refund},
            {"levels", tiers}}},
          {"checkin", {{"points_by_day", v.points_by_day}, {"after_last_day", v.after_last_day}}},
      });
    }
    doc["tenants"][tenant] = list;
  }
  return doc.dump();
}

}  // namespace fission::sim
