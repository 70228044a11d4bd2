// The projection state as plain structs, for the typed core (fold.h).
//
// Every entity of spec section 6 (member, distributor totals, commission
// line, order, group, share) is a struct of integers and a few strings, held
// per tenant in a std::deque (stable addresses, so an index or a pointer stays
// valid while the entity lives) and found by its id through a flat hash map
// whose keys view the entity's own id string: one copy of each id. Entities
// refer to one another by index within their tenant (a line's distributor, an
// order's lines, a group's members), never by building a string key.
//
// The fold mutates these structs in place and marks what it changed:
//   - `dirty`: changed since the last write-behind (WriteBehind encodes each
//     once per commit, however often the batch changed it);
//   - `touched`: changed by the event or timer being applied (Record writes a
//     version of each, for as-of queries).
// Nothing here does I/O; encoding to the stored rows (records.proto, keys.h)
// happens in rows.h, on the way out.
//
// Not thread-safe.
#pragma once

#include <absl/container/flat_hash_map.h>
#include <absl/hash/hash.h>

#include <array>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "events/assert.h"
#include "events/rules.h"
#include "events/types.h"

namespace fission {

// Hash maps keyed by strings, looked up by std::string_view without a copy
// (Debian's Abseil has its own string_view, so the transparent functors are
// ours).
struct StrHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const {
    return absl::Hash<absl::string_view>{}(absl::string_view(s.data(), s.size()));
  }
};
struct StrEq {
  using is_transparent = void;
  bool operator()(std::string_view a, std::string_view b) const { return a == b; }
};
template <class K, class V>
using StrMap = absl::flat_hash_map<K, V, StrHash, StrEq>;

using Idx = uint32_t;
inline constexpr Idx kNone = UINT32_MAX;

// A tier name, interned over the whole State (tier names are few). 0 means
// "no tier yet": a member no event has named.
using TierId = uint16_t;

enum class LineState : uint8_t { kHeld = 0, kPending = 1, kSettled = 2, kVoid = 3 };
enum class GroupStatus : uint8_t { kForming = 0, kSucceeded = 1, kFailed = 2 };

// Where an effect came from: the event and its input position. `source` is
// interned in State::sources.
struct Provenance {
  std::string event_id;
  uint32_t source = 0;
  int64_t position = 0;
};

// The event being applied, as the fold records it in provenance (a view of
// the event's id: valid while the event is).
struct Cause {
  std::string_view event_id;
  uint32_t source = 0;  // State::InternSource
  int64_t position = 0;
};

struct Distributor {
  int64_t held_fen = 0, pending_fen = 0, settled_fen = 0, reversed_fen = 0, voided_fen = 0,
          clawed_back_fen = 0, waived_fen = 0;
  int64_t shares = 0, downlines = 0, lines = 0;
  uint64_t version = 0;  // its latest version (keys.h VersionRef; 0: none)
};

struct Member {
  std::string id;
  TierId tier = 0;
  bool distributor = false;  // has shared at least once
  bool has_last_checkin = false;
  bool dirty = false, touched = false, dist_dirty = false, dist_touched = false;
  int64_t growth = 0, points = 0, checkins = 0, checkin_streak = 0;
  int64_t last_checkin_day = 0;  // business date, days since 1970-01-01
  Idx upline = kNone;            // a member of the same tenant
  int64_t bound_at_ms = 0;       // with upline
  int64_t tier_changes = 0;      // rows of table T: the next one's sequence number
  // Totals when a distributor row exists (index into Tenant::distributors).
  Idx dist = kNone;
  uint64_t version = 0;  // its latest version (keys.h VersionRef; 0: none)
};

struct Line {
  Idx distributor = kNone;  // member
  Idx order = kNone;
  bool leader_bonus = false;
  uint8_t level = 0;
  LineState state = LineState::kHeld;
  bool has_settles_at = false;
  bool dirty = false, touched = false;
  // A leader bonus of a group that succeeded virtually at its expiry: its
  // provenance is the timer, not an event.
  bool created_by_timer = false;
  RefundAfterSettlement refund_policy = RefundAfterSettlement::kNegativeBalance;
  int32_t freeze_days = 0;
  int64_t rate_bps = 0, base_fen = 0, amount_fen = 0, reversed_fen = 0, clawed_back_fen = 0,
          waived_fen = 0;
  int64_t settles_at_ms = 0;
  const RuleVersion* rule = nullptr;
  // Its provenance (Tenant::CreatedBy) is its order's payment, or for a
  // leader bonus in Tenant::bonus_by: not a copy per line.
  uint64_t version = 0;  // its latest version (keys.h VersionRef; 0: none)
};

struct Order {
  std::string id;
  std::string group_id;  // recorded even when no such group exists
  Idx member = kNone;
  bool has_group_id = false, refund_due = false, overflow = false, dirty = false;
  // A group in memory refers to it (a paid member's order, or due a refund):
  // the order leaves memory only with that group (Processor's eviction).
  bool grouped = false;
  uint8_t line_count = 0;
  std::array<Idx, 3> lines{kNone, kNone, kNone};  // commission lines, in level order
  int64_t amount_fen = 0, commission_base_fen = 0, refunded_fen = 0, paid_at_ms = 0;
  int64_t growth = 0, points = 0;  // currently credited by this order
  const RuleVersion* rule = nullptr;
  Provenance paid_by;
};

struct GroupMember {
  Idx member = kNone;
  int64_t joined_at_ms = 0;
  bool paid = false;
  Idx order = kNone;  // with paid
};

struct Group {
  std::string id;
  std::string product_id;
  GroupStatus status = GroupStatus::kForming;
  bool has_closed_at = false, is_virtual = false, dirty = false, touched = false;
  // Options from the opening join's rule version.
  bool virtual_success = false;
  int32_t size = 0, paid_count = 0, leader_bonus_freeze_days = 0;
  Idx leader = kNone;
  int64_t opened_at_ms = 0, expires_at_ms = 0, closed_at_ms = 0, leader_bonus_fen = 0;
  const RuleVersion* rule = nullptr;
  std::vector<GroupMember> members;  // join order
  std::vector<Idx> refund_due;       // orders, sorted by order id
  Idx bonus_line = kNone;            // the leader bonus line, while in memory
  uint64_t version = 0;              // its latest version (keys.h VersionRef; 0: none)
};

struct Share {
  std::string id;
  Idx sharer = kNone;
  bool dirty = false;
  int64_t shared_at_ms = 0;
  std::string event_id;
};

// Entities of one kind in one tenant: stable storage plus an id index. A
// removed entity's slot is reused by a later Add, so an index is an entity's
// name only while the entity is in memory.
template <class T>
class EntityTable {
 public:
  EntityTable() = default;
  EntityTable(const EntityTable&) = delete;
  EntityTable& operator=(const EntityTable&) = delete;

  // The index of `id`, or kNone.
  Idx Find(std::string_view id) const {
    auto it = index_.find(id);
    return it == index_.end() ? kNone : it->second;
  }
  // Adds an entity with id `id`, which must not exist yet.
  Idx Add(std::string_view id) {
    Idx i;
    if (!free_.empty()) {
      i = free_.back();
      free_.pop_back();
    } else {
      i = static_cast<Idx>(items_.size());
      items_.emplace_back();
    }
    T& t = items_[i];
    t.id.assign(id);
    index_.emplace(std::string_view(t.id), i);
    age_.push_back(i);
    return i;
  }
  // Forgets entity i (evicted: its row holds it). It must not be dirty.
  void Remove(Idx i) {
    T& t = items_[i];
    FISSION_ASSERT(!t.dirty, "an entity left memory before it was written");
    index_.erase(std::string_view(t.id));
    t = T{};
    free_.push_back(i);
  }
  T& operator[](Idx i) { return items_[i]; }
  const T& operator[](Idx i) const { return items_[i]; }
  // Slots, live or free: indexes run below it.
  size_t size() const { return items_.size(); }
  // Entities in memory.
  size_t live() const { return items_.size() - free_.size(); }
  std::vector<Idx>& dirty() { return dirty_; }
  // Indexes in the order their entities were added, oldest first: the
  // eviction's candidates. An index whose entity left memory, or whose slot
  // a later entity took, may still be listed (check before use).
  std::deque<Idx>& age() { return age_; }
  // Marks entity i changed since the last write-behind.
  void MarkDirty(Idx i) {
    T& t = items_[i];
    if (!t.dirty) {
      t.dirty = true;
      dirty_.push_back(i);
    }
  }

 private:
  std::deque<T> items_;
  StrMap<std::string_view, Idx> index_;
  std::vector<Idx> dirty_;
  std::vector<Idx> free_;
  std::deque<Idx> age_;
};

// Loads entities that left memory under a memory budget back from their
// rows (Processor implements it over the RowSource). A Find that misses asks
// it; it returns the entity's index, or kNone when no row holds the id.
struct Tenant;
class EntityFaults {
 public:
  virtual ~EntityFaults() = default;
  virtual Idx FaultOrder(Tenant& t, std::string_view id) = 0;
  virtual Idx FaultGroup(Tenant& t, std::string_view id) = 0;
  virtual Idx FaultShare(Tenant& t, std::string_view id) = 0;
  // Whether group `id` left memory (so it exists, and is closed: only closed
  // groups leave), read without bringing it and its orders back.
  virtual bool GroupEvicted(Tenant& t, std::string_view id) = 0;
};

// Everything one tenant owns. Nothing crosses tenants.
struct Tenant {
  std::string name;
  EntityTable<Member> members;
  EntityTable<Order> orders;
  EntityTable<Group> groups;
  EntityTable<Share> shares;
  std::deque<Line> lines;
  std::vector<Idx> free_lines;  // slots of lines that left memory
  // Where each leader bonus line in memory came from (the payment that filled
  // its group), unless created_by_timer.
  absl::flat_hash_map<Idx, Provenance> bonus_by;
  std::deque<Distributor> distributors;
  // Where evicted entities come back from; null when nothing is evicted.
  EntityFaults* faults = nullptr;
  std::vector<Idx> dirty_lines;
  std::vector<Idx> dirty_distributors;  // members whose totals changed
  // Entities changed by the event or timer being applied, in first-touch
  // order, for its history versions.
  struct Touch {
    enum Kind : uint8_t { kDistributor, kGroup, kMember, kLine } kind;
    Idx idx;
  };
  std::vector<Touch> touched;

  // Finds an order, group or share by id, in memory or else back from its row.
  Idx FindOrder(std::string_view id) {
    const Idx i = orders.Find(id);
    return i != kNone || !faults ? i : faults->FaultOrder(*this, id);
  }
  Idx FindGroup(std::string_view id) {
    const Idx i = groups.Find(id);
    return i != kNone || !faults ? i : faults->FaultGroup(*this, id);
  }
  Idx FindShare(std::string_view id) {
    const Idx i = shares.Find(id);
    return i != kNone || !faults ? i : faults->FaultShare(*this, id);
  }
  // A new line's slot (a free one when a line left memory).
  Idx NewLine() {
    if (free_lines.empty()) {
      lines.emplace_back();
      return static_cast<Idx>(lines.size() - 1);
    }
    const Idx l = free_lines.back();
    free_lines.pop_back();
    lines[l] = Line{};
    return l;
  }
  // The event that created line l (not for a line created by a timer).
  const Provenance& CreatedBy(Idx l) const {
    return lines[l].leader_bonus ? bonus_by.at(l) : orders[lines[l].order].paid_by;
  }
  // Frees line l's slot (evicted: its row holds it). It must not be dirty.
  void RemoveLine(Idx l) {
    FISSION_ASSERT(!lines[l].dirty, "a line left memory before it was written");
    if (lines[l].leader_bonus) bonus_by.erase(l);
    lines[l] = Line{};
    free_lines.push_back(l);
  }

  void TouchMember(Idx m);
  void TouchDistributor(Idx m);
  void TouchLine(Idx l);
  void TouchGroup(Idx g);
  // Clears the touched marks (after Record, or a rejected event's Discard).
  void ClearTouched();
};

// Tier names and rule lookups precomputed per rule version, so the fold
// compares small integers instead of strings.
class TierTable {
 public:
  explicit TierTable(const RuleBook& rules);
  TierId Intern(std::string_view name);
  const std::string& Name(TierId id) const { return names_[id]; }
  // The highest level of `r` whose min_growth <= growth.
  TierId TierFor(const RuleVersion& r, int64_t growth) const;
  // Index of tier `t` in r's levels, or -1 when r does not know it.
  int Rank(const RuleVersion& r, TierId t) const;
  Bps Bonus(const RuleVersion& r, TierId t) const;

 private:
  struct PerVersion {
    std::vector<std::pair<int64_t, TierId>> levels;  // min_growth ascending
    std::vector<Bps> bonus;                          // by TierId (sized to names_ at build)
  };
  const PerVersion& Of(const RuleVersion& r) const;
  std::vector<std::string> names_{""};
  StrMap<std::string, TierId> ids_;
  absl::flat_hash_map<const RuleVersion*, PerVersion> versions_;
};

// The whole projection state: tenants by name, and what they share (tier
// names, input source names).
class State {
 public:
  explicit State(const RuleBook& rules) : tiers(rules) { sources.emplace_back(); }
  State(const State&) = delete;
  State& operator=(const State&) = delete;

  // The tenant, created empty when absent. Pointers stay valid until the
  // tenant is dropped.
  Tenant& GetTenant(std::string_view name);
  Tenant* FindTenant(std::string_view name);
  void DropTenant(std::string_view name);
  // Every tenant, in name order.
  const std::map<std::string, std::unique_ptr<Tenant>, std::less<>>& tenants() const { return tenants_; }

  uint32_t InternSource(std::string_view source);
  const std::string& Source(uint32_t id) const { return sources[id]; }

  TierTable tiers;
  std::vector<std::string> sources;

 private:
  std::map<std::string, std::unique_ptr<Tenant>, std::less<>> tenants_;
  StrMap<std::string, uint32_t> source_ids_;
};

}  // namespace fission
