#include "replay/synth.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <queue>
#include <tuple>
#include <vector>

#include "events/time.h"
#include "events/types.h"

namespace fission {
namespace {

// splitmix64: small, fast, and the same on every platform (unlike <random>'s
// distributions), so a seed reproduces a stream anywhere.
class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed * 0x9E3779B97F4A7C15ull + 1) {}
  uint64_t Next() {
    uint64_t z = (s_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  int64_t Uniform(int64_t n) { return n <= 0 ? 0 : static_cast<int64_t>(Next() % static_cast<uint64_t>(n)); }
  int64_t Range(int64_t lo, int64_t hi) { return lo + Uniform(hi - lo + 1); }
  bool Chance(double p) { return static_cast<double>(Next() >> 11) * 0x1.0p-53 < p; }

 private:
  uint64_t s_;
};

struct Queued {
  int64_t arrival_ms;
  uint64_t seq;  // tie-break: generation order
  std::string line;
  bool operator>(const Queued& o) const {
    return arrival_ms != o.arrival_ms ? arrival_ms > o.arrival_ms : seq > o.seq;
  }
};

using Emit = std::function<void(int64_t arrival_ms, const std::string&)>;

class Generator {
 public:
  Generator(const SynthOptions& o, const Emit& emit, std::string tenant = "")
      : o_(o), rng_(o.seed), emit_(emit), tenant_(std::move(tenant)) {
    habit_.resize(static_cast<size_t>(o.members));
    for (auto& h : habit_) {
      const int64_t r = rng_.Uniform(100);
      h = r < 15 ? 0.9 : r < 40 ? 0.45 : 0.04;
    }
    is_distributor_.assign(static_cast<size_t>(o.members), false);
  }

  SynthCounts Run() {
    const int64_t per_day_shares = std::max<int64_t>(1, o_.members / 60);
    const int64_t per_day_groups = std::max<int64_t>(1, o_.members / 45);
    const int64_t per_day_orders = std::max<int64_t>(1, o_.members / 12);
    for (int64_t d = 0; d < o_.days; ++d) {
      const int64_t day0 = o_.start_ms + d * kDayMs;
      for (int64_t i = 0; i < per_day_shares; ++i) Share(day0 + rng_.Uniform(kDayMs), PickSharer(), "product");
      for (size_t m = 0; m < habit_.size(); ++m) {
        if (rng_.Chance(habit_[m])) Checkin(day0 + rng_.Range(6, 23) * 3'600'000 + rng_.Uniform(3'600'000), static_cast<int64_t>(m));
      }
      for (int64_t i = 0; i < per_day_groups; ++i) GroupBuy(day0 + rng_.Uniform(kDayMs));
      for (int64_t i = 0; i < per_day_orders; ++i) SoloOrder(day0 + rng_.Uniform(kDayMs));
      Release(day0 + kDayMs);
    }
    Release(INT64_MAX);
    return counts_;
  }

 private:
  std::string Member(int64_t i) const { return fmt::format("m{:06}", i); }
  std::string Ts(int64_t ms) const { return FormatRfc3339(Millis(ms)); }
  std::string NextId(char prefix) { return fmt::format("{}{:08}", prefix, ++ids_); }

  // Power law: a binding adds its sharer to `popular_`, so popular sharers get
  // picked more (preferential attachment).
  int64_t PickSharer() {
    if (!popular_.empty() && rng_.Chance(0.75)) return popular_[static_cast<size_t>(rng_.Uniform(static_cast<int64_t>(popular_.size())))];
    return rng_.Uniform(o_.members);
  }

  void Push(int64_t occurred_ms, std::string line) {
    if (!tenant_.empty()) line.insert(1, fmt::format(R"("tenant":"{}",)", tenant_));
    int64_t arrival = occurred_ms + rng_.Uniform(20'000);  // mild disorder, well within 60 s
    if (rng_.Chance(o_.very_late_fraction)) arrival += 300'000;
    if (rng_.Chance(o_.duplicate_fraction)) {
      queue_.push({arrival + rng_.Uniform(600'000), seq_++, line});
    }
    if (rng_.Chance(o_.bad_fraction)) {
      std::string bad = Hostile(occurred_ms);
      if (!tenant_.empty()) bad.insert(1, fmt::format(R"("tenant":"{}",)", tenant_));
      queue_.push({arrival, seq_++, std::move(bad)});
    }
    queue_.push({arrival, seq_++, std::move(line)});
  }

  std::string Hostile(int64_t t) {
    switch (rng_.Uniform(7)) {
      case 0: return fmt::format(R"({{"event_id":"{}","type":"payment","occurred_at":"{}","member":"m1",)", NextId('x'), Ts(t));
      case 1: return fmt::format(R"({{"event_id":"{}","type":"payment","occurred_at":"{}","member":"m000001","order_id":"{}","amount_fen":"12.50"}})", NextId('x'), Ts(t), NextId('o'));
      case 2: return fmt::format(R"({{"event_id":"{}","type":"like","occurred_at":"{}","member":"m000002"}})", NextId('x'), Ts(t));
      case 3: return fmt::format(R"({{"event_id":"{}","type":"refund","occurred_at":"{}","order_id":"o1","amount_fen":-300}})", NextId('x'), Ts(t));
      case 4: return fmt::format(R"({{"event_id":"{}","type":"checkin","occurred_at":"{}","member":"bad id!"}})", NextId('x'), Ts(t));
      case 5: return fmt::format(R"({{"event_id":"{}","type":"checkin","occurred_at":"2026-13-45T99:00:00+08:00","member":"m000003"}})", NextId('x'));
      default: {
        // A conflicting re-send: an id already used, with different content.
        std::string id = last_checkin_id_.empty() ? NextId('x') : last_checkin_id_;
        return fmt::format(R"({{"event_id":"{}","type":"checkin","occurred_at":"{}","member":"m000004"}})", id, Ts(t));
      }
    }
  }

  std::string Share(int64_t t, int64_t sharer, const char* target_type, const std::string& target = "") {
    const std::string sid = NextId('s');
    is_distributor_[static_cast<size_t>(sharer)] = true;
    share_owner_.emplace_back(sid, sharer);
    Push(t, fmt::format(R"({{"event_id":"e-{}","type":"share","occurred_at":"{}","sharer":"{}","share_id":"{}","target_type":"{}","target_id":"{}","channel":"wechat"}})",
                        sid, Ts(t), Member(sharer), sid, target_type, target.empty() ? "p" + std::to_string(rng_.Uniform(500)) : target));
    return sid;
  }

  void Checkin(int64_t t, int64_t m) {
    const std::string id = NextId('c');
    last_checkin_id_ = id;
    Push(t, fmt::format(R"({{"event_id":"{}","type":"checkin","occurred_at":"{}","member":"{}"}})", id, Ts(t), Member(m)));
  }

  int64_t Amount() {
    // Roughly log-uniform between 9.90 and 999.00 CNY.
    const double x = std::exp(std::log(990.0) + (std::log(99900.0) - std::log(990.0)) * static_cast<double>(rng_.Uniform(1'000'000)) / 1e6);
    return static_cast<int64_t>(x);
  }

  void Pay(int64_t t, int64_t buyer, const std::string& share_id, const std::string& group_id) {
    const std::string oid = NextId('o');
    const int64_t amount = Amount();
    std::string extra;
    if (rng_.Chance(0.2)) extra += fmt::format(R"(,"commission_base_fen":{})", amount * 9 / 10);
    if (!group_id.empty()) extra += fmt::format(R"(,"group_id":"{}")", group_id);
    if (!share_id.empty()) extra += fmt::format(R"(,"share_id":"{}")", share_id);
    Push(t, fmt::format(R"({{"event_id":"e-{}","type":"payment","occurred_at":"{}","member":"{}","order_id":"{}","amount_fen":{}{}}})",
                        oid, Ts(t), Member(buyer), oid, amount, extra));
    // Refunds days later: some partial, some full, some after settlement.
    const int64_t r = rng_.Uniform(100);
    if (r < 7) {
      const int64_t part = std::max<int64_t>(1, amount * rng_.Range(5, 60) / 100);
      const int64_t rt = t + rng_.Range(1, 12 * 24) * 3'600'000;
      Push(rt, fmt::format(R"({{"event_id":"r-{}-1","type":"refund","occurred_at":"{}","order_id":"{}","amount_fen":{}}})", oid, Ts(rt), oid, part));
      if (rng_.Chance(0.4)) {
        const int64_t rt2 = rt + rng_.Range(1, 5 * 24) * 3'600'000;
        Push(rt2, fmt::format(R"({{"event_id":"r-{}-2","type":"refund","occurred_at":"{}","order_id":"{}","amount_fen":{}}})", oid, Ts(rt2), oid, amount - part));
      }
    } else if (r < 11) {
      const int64_t rt = t + rng_.Range(1, 10 * 24) * 3'600'000;
      Push(rt, fmt::format(R"({{"event_id":"r-{}-1","type":"refund","occurred_at":"{}","order_id":"{}","amount_fen":{}}})", oid, Ts(rt), oid, amount));
    }
  }

  void SoloOrder(int64_t t) {
    const int64_t buyer = rng_.Uniform(o_.members);
    std::string sid;
    if (!share_owner_.empty() && rng_.Chance(0.6)) {
      // Links of popular sharers circulate more.
      const int64_t sharer = PickSharer();
      sid = ShareOf(sharer, t);
      if (rng_.Chance(0.9)) popular_.push_back(sharer);
    }
    Pay(t, buyer, sid, "");
  }

  std::string ShareOf(int64_t sharer, int64_t t) {
    auto it = latest_share_.find(sharer);
    if (it != latest_share_.end()) return it->second;
    std::string sid = Share(t - 60'000, sharer, "product");
    latest_share_[sharer] = sid;
    return sid;
  }

  void GroupBuy(int64_t t) {
    const int64_t leader = rng_.Chance(0.5) && !popular_.empty() ? PickSharer() : rng_.Uniform(o_.members);
    const std::string gid = NextId('g');
    const int64_t size = std::array<int64_t, 6>{2, 2, 3, 3, 3, 5}[static_cast<size_t>(rng_.Uniform(6))];
    const int64_t expires = t + kDayMs;
    Push(t, fmt::format(R"({{"event_id":"j-{}-0","type":"join","occurred_at":"{}","member":"{}","group_id":"{}","opens":true,"size":{},"expires_at":"{}","product_id":"p{}"}})",
                        gid, Ts(t), Member(leader), gid, size, Ts(expires), rng_.Uniform(500)));
    if (rng_.Chance(0.85)) Pay(t + rng_.Range(10, 600) * 1000, leader, "", gid);
    const std::string sid = Share(t + 5'000, leader, "group", gid);
    // Invitees: usually enough to fill, sometimes not; a few arrive after expiry.
    const int64_t invitees = rng_.Range(0, size + 1);
    for (int64_t k = 1; k <= invitees; ++k) {
      const int64_t m = rng_.Uniform(o_.members);
      const int64_t jt = t + 10'000 + rng_.Uniform(26 * 3'600'000);
      Push(jt, fmt::format(R"({{"event_id":"j-{}-{}","type":"join","occurred_at":"{}","member":"{}","group_id":"{}","share_id":"{}"}})",
                           gid, k, Ts(jt), Member(m), gid, sid));
      if (rng_.Chance(0.8)) Pay(jt + rng_.Range(30, 3600) * 1000, m, sid, gid);
    }
    if (rng_.Chance(0.9)) popular_.push_back(leader);
  }

  void Release(int64_t before_ms) {
    while (!queue_.empty() && queue_.top().arrival_ms < before_ms) {
      emit_(queue_.top().arrival_ms, queue_.top().line);
      ++counts_.lines;
      queue_.pop();
    }
  }

  SynthOptions o_;
  Rng rng_;
  const Emit& emit_;
  std::string tenant_;
  std::priority_queue<Queued, std::vector<Queued>, std::greater<>> queue_;
  std::vector<double> habit_;
  std::vector<bool> is_distributor_;
  std::vector<int64_t> popular_;
  std::vector<std::pair<std::string, int64_t>> share_owner_;
  std::unordered_map<int64_t, std::string> latest_share_;
  std::string last_checkin_id_;
  uint64_t seq_ = 0;
  uint64_t ids_ = 0;
  SynthCounts counts_;
};

}  // namespace

SynthCounts Synthesize(const SynthOptions& options, const std::function<void(const std::string&)>& emit) {
  if (options.tenants <= 1) {
    Emit e = [&](int64_t, const std::string& l) { emit(l); };
    return Generator(options, e).Run();
  }
  // Several shops: one generator each (own seed, own members), merged in
  // arrival order (ties by shop). Held in memory: meant for tests and demos.
  struct Line {
    int64_t arrival_ms;
    int64_t shop;
    uint64_t seq;
    std::string text;
  };
  std::vector<Line> all;
  for (int64_t k = 0; k < options.tenants; ++k) {
    SynthOptions o = options;
    o.seed = options.seed * 1000 + static_cast<uint64_t>(k);
    o.members = std::max<int64_t>(10, options.members / options.tenants);
    uint64_t seq = 0;
    Emit e = [&](int64_t arrival, const std::string& l) { all.push_back({arrival, k, seq++, l}); };
    Generator(o, e, fmt::format("shop-{:02}", k)).Run();
  }
  std::sort(all.begin(), all.end(), [](const Line& a, const Line& b) {
    return std::tie(a.arrival_ms, a.shop, a.seq) < std::tie(b.arrival_ms, b.shop, b.seq);
  });
  for (const auto& l : all) emit(l.text);
  return SynthCounts{static_cast<int64_t>(all.size())};
}

std::string SynthRulesJson(const SynthOptions& o) {
  // Tenants without their own list use "default"'s, so one list serves every shop.
  const std::string v2_from = FormatRfc3339(Millis(o.start_ms + o.days / 2 * kDayMs));
  return fmt::format(R"({{
  "tenants": {{
    "default": [
      {{
        "version": "v1", "effective_from": "2026-01-01T00:00:00+08:00", "utc_offset_minutes": 480,
        "commission": {{ "levels_bps": [1000, 500], "self_purchase": false, "freeze_days": 7,
                        "binding": "first_touch", "binding_window_days": 30,
                        "refund_after_settlement": "negative_balance", "tier_bonus_bps": {{ "gold": 200 }} }},
        "group": {{ "virtual_success": false, "leader_bonus_fen": 0 }},
        "tiers": {{ "growth_per_yuan": 1, "points_per_yuan": 1, "checkin_growth": 5, "demote_on_refund": true,
                   "levels": [ {{"name": "regular", "min_growth": 0}}, {{"name": "silver", "min_growth": 1000}},
                               {{"name": "gold", "min_growth": 5000}}, {{"name": "diamond", "min_growth": 20000}} ] }},
        "checkin": {{ "points_by_day": [1, 2, 3, 4, 5, 6, 10], "after_last_day": "repeat_last" }}
      }},
      {{
        "version": "v2", "effective_from": "{}", "utc_offset_minutes": 480,
        "commission": {{ "levels_bps": [1200, 500, 200], "self_purchase": true, "freeze_days": 10,
                        "binding": "window", "binding_window_days": 14,
                        "refund_after_settlement": "cap_at_balance", "tier_bonus_bps": {{ "gold": 200, "diamond": 300 }} }},
        "group": {{ "virtual_success": true, "leader_bonus_fen": 500 }},
        "tiers": {{ "growth_per_yuan": 1, "points_per_yuan": 2, "checkin_growth": 5, "demote_on_refund": false,
                   "levels": [ {{"name": "regular", "min_growth": 0}}, {{"name": "silver", "min_growth": 1000}},
                               {{"name": "gold", "min_growth": 5000}}, {{"name": "diamond", "min_growth": 20000}} ] }},
        "checkin": {{ "points_by_day": [1, 2, 3, 4, 5, 6, 10], "after_last_day": "restart" }}
      }}
    ]
  }}
}}
)", v2_from);
}

}  // namespace fission
