// Test harness: drives the typed core over a MemStore with JSON events,
// and reads records back. Events are written with small builders so each
// scenario reads like the story it tells.
#pragma once

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "events/rules.h"
#include "events/time.h"
#include "projections/export.h"
#include "projections/processor.h"

namespace fission::test {

// The spec's example rules, with points_per_yuan 1 so points are visible.
inline nlohmann::json BaseRulesVersion() {
  return nlohmann::json::parse(R"({
    "version": "v1", "effective_from": "2026-01-01T00:00:00+08:00", "utc_offset_minutes": 480,
    "commission": { "levels_bps": [1000, 500], "self_purchase": false, "freeze_days": 7,
                    "binding": "first_touch", "binding_window_days": 30,
                    "refund_after_settlement": "negative_balance", "tier_bonus_bps": { "gold": 200 } },
    "group":   { "virtual_success": false, "leader_bonus_fen": 0 },
    "tiers":   { "growth_per_yuan": 1, "points_per_yuan": 1, "checkin_growth": 5, "demote_on_refund": true,
                 "levels": [ {"name": "regular", "min_growth": 0}, {"name": "silver", "min_growth": 1000},
                             {"name": "gold", "min_growth": 5000}, {"name": "diamond", "min_growth": 20000} ] },
    "checkin": { "points_by_day": [1, 2, 3, 4, 5, 6, 10], "after_last_day": "repeat_last" }
  })");
}

inline std::string RulesJson(const std::function<void(nlohmann::json&)>& edit = nullptr) {
  nlohmann::json v = BaseRulesVersion();
  if (edit) edit(v);
  nlohmann::json doc;
  doc["tenants"]["default"] = nlohmann::json::array({v});
  return doc.dump();
}

// Rules with a second version "v2" from `v2_from`; each edit may be null.
inline std::string RulesWithChange(const std::string& v2_from,
                                   const std::function<void(nlohmann::json&)>& edit_v1,
                                   const std::function<void(nlohmann::json&)>& edit_v2) {
  nlohmann::json v1 = BaseRulesVersion(), v2 = BaseRulesVersion();
  if (edit_v1) edit_v1(v1);
  v2["version"] = "v2";
  v2["effective_from"] = v2_from;
  if (edit_v2) edit_v2(v2);
  nlohmann::json doc;
  doc["tenants"]["default"] = nlohmann::json::array({v1, v2});
  return doc.dump();
}

inline RuleBook MustParseRules(const std::string& json) {
  auto r = ParseRules(json);
  if (!r.ok()) ADD_FAILURE() << r.error().message;
  return r.ok() ? r.value() : RuleBook{};
}

// "2026-11-01T10:00:00+08:00" style instants: day d of November 2026, local +08:00.
inline std::string At(int day, int hh = 10, int mm = 0, int ss = 0, int ms = 0) {
  return fmt::format("2026-11-{:02}T{:02}:{:02}:{:02}.{:03}+08:00", day, hh, mm, ss, ms);
}
inline int64_t Ms(const std::string& ts) { return ParseRfc3339(ts)->v; }

// Event builders. `id` is the event_id.
inline std::string Share(const std::string& id, const std::string& t, const std::string& sharer,
                         const std::string& share_id) {
  return fmt::format(R"({{"event_id":"{}","type":"share","occurred_at":"{}","sharer":"{}","share_id":"{}"}})", id, t, sharer, share_id);
}
inline std::string Join(const std::string& id, const std::string& t, const std::string& member,
                        const std::string& group, const std::string& share_id = "") {
  return fmt::format(R"({{"event_id":"{}","type":"join","occurred_at":"{}","member":"{}","group_id":"{}"{}}})", id, t, member, group,
                     share_id.empty() ? "" : fmt::format(R"(,"share_id":"{}")", share_id));
}
inline std::string Open(const std::string& id, const std::string& t, const std::string& member,
                        const std::string& group, int size, const std::string& expires,
                        const std::string& share_id = "") {
  return fmt::format(R"({{"event_id":"{}","type":"join","occurred_at":"{}","member":"{}","group_id":"{}","opens":true,"size":{},"expires_at":"{}","product_id":"p1"{}}})",
                     id, t, member, group, size, expires, share_id.empty() ? "" : fmt::format(R"(,"share_id":"{}")", share_id));
}
inline std::string Pay(const std::string& id, const std::string& t, const std::string& member,
                       const std::string& order, int64_t amount, const std::string& extra = "") {
  return fmt::format(R"({{"event_id":"{}","type":"payment","occurred_at":"{}","member":"{}","order_id":"{}","amount_fen":{}{}}})",
                     id, t, member, order, amount, extra);
}
inline std::string Refund(const std::string& id, const std::string& t, const std::string& order, int64_t amount) {
  return fmt::format(R"({{"event_id":"{}","type":"refund","occurred_at":"{}","order_id":"{}","amount_fen":{}}})", id, t, order, amount);
}
inline std::string Checkin(const std::string& id, const std::string& t, const std::string& member) {
  return fmt::format(R"({{"event_id":"{}","type":"checkin","occurred_at":"{}","member":"{}"}})", id, t, member);
}
inline std::string ShareArg(const std::string& s) { return fmt::format(R"(,"share_id":"{}")", s); }
inline std::string GroupArg(const std::string& g) { return fmt::format(R"(,"group_id":"{}")", g); }

// The typed core (projections/processor.h) with a MemStore as its sink: a
// checkpoint after every offer writes behind what it changed, so each
// accessor reads the rows a data dir would hold at that point.
class Scenario {
 public:
  // `memory_budget_bytes`: ProcessorOptions::memory_budget_bytes (1: every
  // checkpoint evicts whatever is finished).
  explicit Scenario(const std::string& rules_json = RulesJson(), int64_t lateness_ms = 60'000,
                    uint64_t memory_budget_bytes = 0)
      : rules_(MustParseRules(rules_json)),
        options_{.allowed_lateness_ms = lateness_ms, .memory_budget_bytes = memory_budget_bytes},
        processor_(std::make_unique<Processor>(rules_, store_, options_)) {
    processor_->Load(store_);
  }

  // Offers events in the given arrival order; each is line n of "test.jsonl".
  Scenario& Send(std::initializer_list<std::string> lines) {
    for (const auto& l : lines) {
      last_ = processor_->OfferJson("test.jsonl", ++position_, l);
      processor_->Checkpoint(position_);
    }
    return *this;
  }
  // Offers one event in Protobuf form on input lane `lane` (a partition).
  Scenario& SendOn(const std::string& lane, const std::string& json) {
    auto e = DecodeJson(json);
    EXPECT_TRUE(e.ok()) << json;
    last_ = processor_->OfferProto(lane, ++position_, e.value().SerializeAsString(), lane);
    processor_->Checkpoint(position_);
    return *this;
  }
  // Stops the processor and starts a new one on what it checkpointed (a
  // restart of the process).
  Scenario& Restart() {
    processor_->Checkpoint(position_);
    processor_ = std::make_unique<Processor>(rules_, store_, options_);
    processor_->Load(store_);
    return *this;
  }
  // Writes the processor's meta row (after SetLanePosition, say).
  Scenario& Checkpoint() {
    processor_->Checkpoint(position_);
    return *this;
  }
  Processor& processor() { return *processor_; }
  Scenario& Flush() {
    processor_->Flush();
    processor_->Checkpoint(position_);
    return *this;
  }
  Outcome last() const { return last_; }

  const pb::Distributor* Dist(const std::string& id, const std::string& tenant = "default") {
    return store_.Find<pb::Distributor>(Table::kDistributor, EntityKey(tenant, id));
  }
  const pb::Line* Line(const std::string& dist, const std::string& order, int level, bool bonus = false) {
    return store_.Find<pb::Line>(Table::kLine, LineKey("default", dist, order, bonus, level));
  }
  // The member with its tier history filled in (a copy, valid until the next call).
  const pb::Member* Member(const std::string& id, const std::string& tenant = "default") {
    const auto* m = store_.Find<pb::Member>(Table::kMember, EntityKey(tenant, id));
    if (!m) return nullptr;
    member_ = *m;
    LoadTierHistory(store_, EntityKey(tenant, id), &member_);
    return &member_;
  }
  const pb::Group* Group(const std::string& id) {
    return store_.Find<pb::Group>(Table::kGroup, EntityKey("default", id));
  }
  const pb::Order* Order(const std::string& id) {
    return store_.Find<pb::Order>(Table::kOrder, EntityKey("default", id));
  }
  std::vector<pb::Rejection> Rejections() {
    std::vector<pb::Rejection> out;
    store_.Scan(Table::kRejection, "", [&](std::string_view, const google::protobuf::MessageLite& r) {
      out.push_back(static_cast<const pb::Rejection&>(r));
      return true;
    });
    return out;
  }
  // Reasons of all rejections, in export order.
  std::vector<std::string> Reasons() {
    std::vector<std::string> out;
    for (auto& r : Rejections()) out.push_back(r.reason());
    return out;
  }
  std::string Export() {
    std::ostringstream os;
    ExportAll(store_, os);
    return os.str();
  }
  int64_t Balance(const std::string& dist) {
    const auto* d = Dist(dist);
    return d ? d->settled_fen() - d->clawed_back_fen() : 0;
  }
  const RunStats& stats() const { return processor_->stats(); }
  MemStore& store() { return store_; }

 private:
  RuleBook rules_;
  MemStore store_;
  pb::Member member_;
  ProcessorOptions options_;
  std::unique_ptr<Processor> processor_;
  int64_t position_ = 0;
  Outcome last_ = Outcome::kAccepted;
};

// Checks that every distributor's totals equal the sums over its lines.
inline void ExpectLedgerBalanced(Store& s) {
  s.Scan(Table::kDistributor, "", [&](std::string_view k, const google::protobuf::MessageLite& row) {
    const auto& d = static_cast<const pb::Distributor&>(row);
    pb::Distributor sum;
    int64_t lines = 0;
    std::string prefix(k);
    prefix.push_back('\0');
    s.Scan(Table::kLine, prefix, [&](std::string_view, const google::protobuf::MessageLite& lr) {
      const auto& l = static_cast<const pb::Line&>(lr);
      // Spec section 7's formulas, summed here independently of the fold.
      const int64_t net = l.amount_fen() - l.reversed_fen();
      switch (l.state()) {
        case pb::HELD: sum.set_held_fen(sum.held_fen() + net); break;
        case pb::PENDING: sum.set_pending_fen(sum.pending_fen() + net); break;
        case pb::SETTLED: sum.set_settled_fen(sum.settled_fen() + net); break;
        default: sum.set_voided_fen(sum.voided_fen() + net); break;
      }
      sum.set_reversed_fen(sum.reversed_fen() + l.reversed_fen());
      sum.set_clawed_back_fen(sum.clawed_back_fen() + l.clawed_back_fen());
      sum.set_waived_fen(sum.waived_fen() + l.waived_fen());
      EXPECT_GE(l.amount_fen(), l.reversed_fen() + l.clawed_back_fen() + l.waived_fen()) << "line over-reduced";
      ++lines;
      return true;
    });
    EXPECT_EQ(d.held_fen(), sum.held_fen()) << k;
    EXPECT_EQ(d.pending_fen(), sum.pending_fen()) << k;
    EXPECT_EQ(d.settled_fen(), sum.settled_fen()) << k;
    EXPECT_EQ(d.voided_fen(), sum.voided_fen()) << k;
    EXPECT_EQ(d.reversed_fen(), sum.reversed_fen()) << k;
    EXPECT_EQ(d.clawed_back_fen(), sum.clawed_back_fen()) << k;
    EXPECT_EQ(d.waived_fen(), sum.waived_fen()) << k;
    EXPECT_EQ(d.lines(), lines) << k;
    return true;
  });
}

}  // namespace fission::test
