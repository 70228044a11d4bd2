#include "events/rules.h"

#include <fmt/format.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "events/decode.h"
#include "events/time.h"

namespace fission {
namespace {

using nlohmann::json;

struct Refuse {
  std::string message;
};

[[noreturn]] void RefuseAt(const std::string& path, const std::string& what) {
  throw Refuse{fmt::format("{}: {}", path, what)};
}

// Walks one JSON object, checking types and refusing unknown keys.
class Obj {
 public:
  Obj(const json& j, std::string path) : j_(j), path_(std::move(path)) {
    if (!j_.is_object()) RefuseAt(path_, "must be an object");
  }
  void AllowOnly(std::initializer_list<const char*> keys) const {
    std::set<std::string> ok(keys.begin(), keys.end());
    for (auto it = j_.begin(); it != j_.end(); ++it) {
      if (!ok.count(it.key())) RefuseAt(Path(it.key()), "unknown field");
    }
  }
  std::string Path(const std::string& k) const { return path_ + "." + k; }
  const json* Get(const char* k) const {
    auto it = j_.find(k);
    return it == j_.end() ? nullptr : &*it;
  }
  int64_t Int(const char* k, int64_t def, int64_t lo, int64_t hi) const {
    const json* v = Get(k);
    if (!v) return def;
    if (!v->is_number_integer()) RefuseAt(Path(k), "must be an integer");
    int64_t x = v->get<int64_t>();
    if (x < lo || x > hi) RefuseAt(Path(k), fmt::format("must be in [{}, {}], got {}", lo, hi, x));
    return x;
  }
  bool Bool(const char* k, bool def) const {
    const json* v = Get(k);
    if (!v) return def;
    if (!v->is_boolean()) RefuseAt(Path(k), "must be true or false");
    return v->get<bool>();
  }
  std::string Str(const char* k, const char* def) const {
    const json* v = Get(k);
    if (!v) {
      if (def == nullptr) RefuseAt(Path(k), "is required");
      return def;
    }
    if (!v->is_string()) RefuseAt(Path(k), "must be a string");
    return v->get<std::string>();
  }
  template <class E>
  E Enum(const char* k, E def, std::initializer_list<std::pair<const char*, E>> values) const {
    const json* v = Get(k);
    if (!v) return def;
    std::string names;
    if (v->is_string()) {
      for (auto& [n, e] : values) {
        if (*v == n) return e;
      }
    }
    for (auto& [n, e] : values) names += fmt::format("{}\"{}\"", names.empty() ? "" : ", ", n);
    RefuseAt(Path(k), fmt::format("unknown value {}; expected one of {}", v->dump(), names));
  }

 private:
  const json& j_;
  std::string path_;
};

RuleVersion ParseVersion(const json& j, const std::string& path) {
  Obj o(j, path);
  o.AllowOnly({"version", "effective_from", "utc_offset_minutes", "commission", "group", "tiers",
               "checkin"});
  RuleVersion v;
  v.version = o.Str("version", nullptr);
  if (v.version.empty()) RefuseAt(o.Path("version"), "must not be empty");
  const std::string from = o.Str("effective_from", nullptr);
  auto t = ParseRfc3339(from);
  if (!t) RefuseAt(o.Path("effective_from"), "is not an RFC 3339 timestamp with offset");
  v.effective_from = *t;
  v.utc_offset_minutes = static_cast<int>(o.Int("utc_offset_minutes", 480, -1439, 1439));

  static const json kEmpty = json::object();
  {
    const json* cj = o.Get("commission");
    Obj c(cj ? *cj : kEmpty, o.Path("commission"));
    c.AllowOnly({"levels_bps", "self_purchase", "freeze_days", "binding", "binding_window_days",
                 "refund_after_settlement", "tier_bonus_bps"});
    if (const json* l = c.Get("levels_bps")) {
      if (!l->is_array()) RefuseAt(c.Path("levels_bps"), "must be an array of integers");
      if (l->size() > 3) {
        RefuseAt(c.Path("levels_bps"),
                 fmt::format("at most 3 commission levels are allowed (got {}); deeper schemes are "
                             "treated as pyramid selling",
                             l->size()));
      }
      for (size_t i = 0; i < l->size(); ++i) {
        const json& r = (*l)[i];
        if (!r.is_number_integer() || r.get<int64_t>() < 0 || r.get<int64_t>() > 10000) {
          RefuseAt(fmt::format("{}[{}]", c.Path("levels_bps"), i), "must be an integer in [0, 10000]");
        }
        v.commission.levels_bps.emplace_back(r.get<int64_t>());
      }
    } else {
      v.commission.levels_bps = {Bps(1000), Bps(500)};
    }
    v.commission.self_purchase = c.Bool("self_purchase", false);
    v.commission.freeze_days = static_cast<int32_t>(c.Int("freeze_days", 7, 0, 3650));
    v.commission.binding = c.Enum<BindingMode>(
        "binding", BindingMode::kFirstTouch,
        {{"first_touch", BindingMode::kFirstTouch}, {"overwrite", BindingMode::kOverwrite},
         {"window", BindingMode::kWindow}});
    v.commission.binding_window_days = static_cast<int32_t>(c.Int("binding_window_days", 30, 0, 36500));
    v.commission.refund_after_settlement = c.Enum<RefundAfterSettlement>(
        "refund_after_settlement", RefundAfterSettlement::kNegativeBalance,
        {{"negative_balance", RefundAfterSettlement::kNegativeBalance},
         {"cap_at_balance", RefundAfterSettlement::kCapAtBalance},
         {"none", RefundAfterSettlement::kNone}});
    if (const json* b = c.Get("tier_bonus_bps")) {
      if (!b->is_object()) RefuseAt(c.Path("tier_bonus_bps"), "must be an object of tier name -> bps");
      for (auto it = b->begin(); it != b->end(); ++it) {
        if (!it->is_number_integer() || it->get<int64_t>() < 0 || it->get<int64_t>() > 10000) {
          RefuseAt(c.Path("tier_bonus_bps") + "." + it.key(), "must be an integer in [0, 10000]");
        }
        v.commission.tier_bonus_bps[it.key()] = Bps(it->get<int64_t>());
      }
    }
  }
  {
    const json* gj = o.Get("group");
    Obj g(gj ? *gj : kEmpty, o.Path("group"));
    g.AllowOnly({"virtual_success", "leader_bonus_fen"});
    v.group.virtual_success = g.Bool("virtual_success", false);
    v.group.leader_bonus_fen = Fen(g.Int("leader_bonus_fen", 0, 0, kMaxAmountFen));
  }
  {
    const json* tj = o.Get("tiers");
    Obj t2(tj ? *tj : kEmpty, o.Path("tiers"));
    t2.AllowOnly({"growth_per_yuan", "points_per_yuan", "checkin_growth", "demote_on_refund", "levels"});
    v.tiers.growth_per_yuan = t2.Int("growth_per_yuan", 1, 0, 1'000'000);
    v.tiers.points_per_yuan = t2.Int("points_per_yuan", 0, 0, 1'000'000);
    v.tiers.checkin_growth = t2.Int("checkin_growth", 5, 0, 1'000'000);
    v.tiers.demote_on_refund = t2.Bool("demote_on_refund", true);
    if (const json* l = t2.Get("levels")) {
      const std::string lp = t2.Path("levels");
      if (!l->is_array() || l->empty()) RefuseAt(lp, "must be a non-empty array");
      for (size_t i = 0; i < l->size(); ++i) {
        const std::string ip = fmt::format("{}[{}]", lp, i);
        Obj lv((*l)[i], ip);
        lv.AllowOnly({"name", "min_growth"});
        TierLevel level{lv.Str("name", nullptr), lv.Int("min_growth", -1, 0, INT64_MAX / 4)};
        if (!lv.Get("min_growth")) RefuseAt(ip + ".min_growth", "is required");
        if (level.name.empty()) RefuseAt(ip + ".name", "must not be empty");
        if (i == 0 && level.min_growth != 0) RefuseAt(ip + ".min_growth", "the first level must start at 0");
        if (i > 0 && level.min_growth <= v.tiers.levels.back().min_growth) {
          RefuseAt(ip + ".min_growth", "levels must be strictly increasing");
        }
        for (auto& prev : v.tiers.levels) {
          if (prev.name == level.name) RefuseAt(ip + ".name", "duplicate tier name");
        }
        v.tiers.levels.push_back(std::move(level));
      }
    } else {
      v.tiers.levels = {{"regular", 0}, {"silver", 1000}, {"gold", 5000}, {"diamond", 20000}};
    }
  }
  {
    const json* kj = o.Get("checkin");
    Obj k(kj ? *kj : kEmpty, o.Path("checkin"));
    k.AllowOnly({"points_by_day", "after_last_day"});
    if (const json* p = k.Get("points_by_day")) {
      if (!p->is_array() || p->empty()) RefuseAt(k.Path("points_by_day"), "must be a non-empty array");
      for (size_t i = 0; i < p->size(); ++i) {
        const json& x = (*p)[i];
        if (!x.is_number_integer() || x.get<int64_t>() < 0 || x.get<int64_t>() > 1'000'000) {
          RefuseAt(fmt::format("{}[{}]", k.Path("points_by_day"), i), "must be an integer in [0, 1000000]");
        }
        v.checkin.points_by_day.push_back(x.get<int64_t>());
      }
    } else {
      v.checkin.points_by_day = {1, 2, 3, 4, 5, 6, 10};
    }
    v.checkin.after_last_day = k.Enum<AfterLastDay>(
        "after_last_day", AfterLastDay::kRepeatLast,
        {{"repeat_last", AfterLastDay::kRepeatLast}, {"restart", AfterLastDay::kRestart}});
  }
  // Cross-field checks.
  for (auto& [name, bps] : v.commission.tier_bonus_bps) {
    if (v.TierRank(name) < 0) {
      RefuseAt(o.Path("commission.tier_bonus_bps.") + name, "names a tier that tiers.levels does not define");
    }
  }
  int64_t max_bonus = 0;
  for (auto& [name, bps] : v.commission.tier_bonus_bps) max_bonus = std::max(max_bonus, bps.v);
  int64_t total = 0;
  for (Bps r : v.commission.levels_bps) total += r.v + max_bonus;
  if (total > 5000) {
    RefuseAt(o.Path("commission.levels_bps"),
             fmt::format("the sum over levels of (level rate + largest tier bonus) is {} bps; the "
                         "limit is 5000",
                         total));
  }
  return v;
}

}  // namespace

Bps RuleVersion::TierBonus(const std::string& tier) const {
  auto it = commission.tier_bonus_bps.find(tier);
  return it == commission.tier_bonus_bps.end() ? Bps(0) : it->second;
}

const std::string& RuleVersion::TierFor(int64_t growth) const {
  const TierLevel* best = &tiers.levels.front();
  for (const TierLevel& l : tiers.levels) {
    if (l.min_growth <= growth) best = &l;
  }
  return best->name;
}

int RuleVersion::TierRank(const std::string& tier) const {
  for (size_t i = 0; i < tiers.levels.size(); ++i) {
    if (tiers.levels[i].name == tier) return static_cast<int>(i);
  }
  return -1;
}

int64_t RuleVersion::CheckinPoints(int64_t streak) const {
  const auto& t = checkin.points_by_day;
  const auto n = static_cast<int64_t>(t.size());
  if (streak <= n) return t[static_cast<size_t>(streak - 1)];
  if (checkin.after_last_day == AfterLastDay::kRepeatLast) return t.back();
  return t[static_cast<size_t>((streak - 1) % n)];
}

const RuleVersion& RuleBook::For(std::string_view tenant, Millis t) const {
  auto it = tenants.find(tenant);
  if (it == tenants.end()) it = tenants.find(std::string_view("default"));
  const auto& list = it->second;
  const RuleVersion* chosen = &list.front();
  for (const RuleVersion& v : list) {
    if (v.effective_from <= t) chosen = &v;
  }
  return *chosen;
}

const RuleVersion* RuleBook::ByName(std::string_view tenant, std::string_view version) const {
  auto it = tenants.find(tenant);
  if (it == tenants.end()) it = tenants.find(std::string_view("default"));
  for (const RuleVersion& v : it->second) {
    if (v.version == version) return &v;
  }
  return nullptr;
}

Result<RuleBook, RulesError> ParseRules(std::string_view text) {
  try {
    json doc = json::parse(text);
    Obj top(doc, "rules");
    top.AllowOnly({"tenants"});
    const json* tj = top.Get("tenants");
    if (!tj) RefuseAt("tenants", "is required");
    Obj tenants(*tj, "tenants");
    RuleBook book;
    for (auto it = tj->begin(); it != tj->end(); ++it) {
      const std::string tp = "tenants." + it.key();
      if (!IsValidId(it.key())) RefuseAt(tp, "tenant names are 1-64 characters of [A-Za-z0-9_.:-]");
      if (!it->is_array() || it->empty()) RefuseAt(tp, "must be a non-empty array of rule versions");
      std::vector<RuleVersion> versions;
      for (size_t i = 0; i < it->size(); ++i) {
        const std::string vp = fmt::format("{}[{}]", tp, i);
        RuleVersion v = ParseVersion((*it)[i], vp);
        if (!versions.empty() && v.effective_from <= versions.back().effective_from) {
          RefuseAt(vp + ".effective_from", "versions must be in strictly increasing effective_from order");
        }
        for (auto& p : versions) {
          if (p.version == v.version) RefuseAt(vp + ".version", "duplicate version name");
        }
        versions.push_back(std::move(v));
      }
      book.tenants.emplace(it.key(), std::move(versions));
    }
    if (!book.tenants.count("default")) RefuseAt("tenants.default", "is required (tenants without their own list use it)");
    return book;
  } catch (const Refuse& r) {
    return Result<RuleBook, RulesError>::Error({"invalid rules: " + r.message});
  } catch (const json::exception& e) {
    return Result<RuleBook, RulesError>::Error({fmt::format("invalid rules: malformed JSON: {}", e.what())});
  }
}

Result<RuleBook, RulesError> LoadRulesFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Result<RuleBook, RulesError>::Error({fmt::format("cannot read rules file '{}'", path)});
  std::stringstream ss;
  ss << in.rdbuf();
  auto r = ParseRules(ss.str());
  if (!r.ok()) return Result<RuleBook, RulesError>::Error({fmt::format("{}: {}", path, r.error().message)});
  return r;
}

std::string_view BindingModeName(BindingMode m) {
  switch (m) {
    case BindingMode::kFirstTouch: return "first_touch";
    case BindingMode::kOverwrite: return "overwrite";
    case BindingMode::kWindow: return "window";
  }
  return "?";
}

std::string_view RefundPolicyName(RefundAfterSettlement p) {
  switch (p) {
    case RefundAfterSettlement::kNegativeBalance: return "negative_balance";
    case RefundAfterSettlement::kCapAtBalance: return "cap_at_balance";
    case RefundAfterSettlement::kNone: return "none";
  }
  return "?";
}

}  // namespace fission
