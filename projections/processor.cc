#include "projections/processor.h"

#include <fmt/format.h>

#include "events/assert.h"
#include "events/time.h"
#include "projections/wire.h"

namespace fission {
namespace {

std::string_view TimerName(TimerKind k) { return k == TimerKind::kGroupExpiry ? "group_expiry" : "settlement"; }

template <class Row>
Row Parse(Table t, std::string_view key, std::string_view value) {
  Row r;
  if (!r.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
    throw std::runtime_error(fmt::format("corrupt row in table '{}' (key of {} bytes)", static_cast<char>(t), key.size()));
  }
  return r;
}

LineState StateOf(pb::LineState s) { return static_cast<LineState>(s); }

RefundAfterSettlement PolicyOf(pb::RefundPolicy p) {
  switch (p) {
    case pb::CAP_AT_BALANCE: return RefundAfterSettlement::kCapAtBalance;
    case pb::NONE: return RefundAfterSettlement::kNone;
    default: return RefundAfterSettlement::kNegativeBalance;
  }
}

}  // namespace

Processor::Processor(const RuleBook& rules, RowSink& sink, ProcessorOptions options)
    : rules_(rules), sink_(sink), options_(options), state_(rules), fold_(rules, state_, sink_) {
  if (!options_.history) meta_.set_history_incomplete(true);
}

Processor::~Processor() = default;

Processor::ContentId Processor::IdOf(std::string_view k) {
  ContentId id;
  for (size_t i = 0; i < k.size() && i < 16; ++i) {
    uint64_t& half = i < 8 ? id.hi : id.lo;
    half = (half << 8) | static_cast<unsigned char>(k[i]);
  }
  return id;
}

uint64_t Processor::IdHash(std::string_view event_id) { return absl::Hash<std::string_view>{}(event_id); }

void Processor::MarkSeen(Run& r, std::string_view id, uint64_t h, ContentId content, bool rejected) {
  r.seen.Insert(h);
  if (rejected) r.first_rejected.insert(h);
  r.first_contents.try_emplace(id, Run::FirstContent{content, r.generation});
}

std::optional<Processor::ContentId> Processor::FirstSighting(Run& r, std::string_view id, uint64_t h) {
  if (!r.seen.MayContain(h)) return std::nullopt;
  if (auto it = r.first_contents.find(id); it != r.first_contents.end()) return it->second.content;
  // Seen before the checkpoint before last, or the filter's "maybe": read
  // the row. A stored event is in an earlier commit than the one in flight.
  FISSION_ASSERT(rows_ != nullptr, "the processor was not loaded");
  ++stats_.dedupe_reads;
  const std::string& tenant = r.t->name;
  if (rows_->GetSettledRow(Table::kEvent, EntityKey(tenant, id), &read_buf_)) {
    pb::StoredEvent stored;
    if (!stored.ParseFromString(read_buf_)) throw std::runtime_error("corrupt stored event");
    return IdOf(stored.content_key());
  }
  if (!r.first_rejected.contains(h)) return std::nullopt;
  std::optional<ContentId> found;
  rows_->ScanRows(Table::kRejection, RejectionIdPrefix(tenant, id), [&](std::string_view, std::string_view v) {
    pb::Rejection rej;
    if (!rej.ParseFromArray(v.data(), static_cast<int>(v.size()))) throw std::runtime_error("corrupt rejection");
    if (!found && rej.carries_first_content()) found = IdOf(rej.first_content_key());
  });
  return found;
}

Processor::Run& Processor::RunOf(std::string_view tenant) {
  if (last_run_ != nullptr && last_run_->t->name == tenant) return *last_run_;
  auto it = runs_.find(tenant);
  if (it == runs_.end()) {
    auto r = std::make_unique<Run>();
    r->t = &state_.GetTenant(tenant);
    if (options_.memory_budget_bytes > 0) r->t->faults = this;
    if (auto m = meta_.tenant_max_seen_ms().find(std::string(tenant)); m != meta_.tenant_max_seen_ms().end()) {
      r->max_seen = m->second;
    }
    it = runs_.emplace(std::string(tenant), std::move(r)).first;
  }
  last_run_ = it->second.get();
  return *last_run_;
}

std::optional<int64_t> Processor::watermark_ms(std::string_view tenant) const {
  auto it = runs_.find(tenant);
  if (it == runs_.end() || !it->second->max_seen) return std::nullopt;
  return *it->second->max_seen - options_.allowed_lateness_ms;
}

size_t Processor::buffered() const {
  size_t n = 0;
  for (const auto& [name, r] : runs_) n += r->pending.size();
  return n;
}

size_t Processor::timers() const {
  size_t n = 0;
  for (const auto& [name, r] : runs_) n += r->timers.size();
  return n;
}

uint64_t Processor::MemoryBytes() const {
  auto str = [](const std::string& x) -> uint64_t { return x.capacity() > 15 ? x.capacity() + 1 : 0; };
  uint64_t n = 0;
  for (const auto& [name, r] : runs_) {
    const Tenant& t = *r->t;
    n += t.members.size() * (sizeof(Member) + 2 * sizeof(Idx) + sizeof(std::string_view));
    n += t.orders.size() * (sizeof(Order) + 2 * sizeof(Idx) + sizeof(std::string_view));
    n += t.groups.size() * (sizeof(Group) + 2 * sizeof(Idx) + sizeof(std::string_view));
    n += t.shares.size() * (sizeof(Share) + 2 * sizeof(Idx) + sizeof(std::string_view));
    n += t.lines.size() * sizeof(Line) + t.distributors.size() * sizeof(Distributor);
    for (Idx i = 0; i < t.members.size(); ++i) n += str(t.members[i].id);
    for (Idx i = 0; i < t.orders.size(); ++i) n += str(t.orders[i].id) + str(t.orders[i].paid_by.event_id);
    for (Idx i = 0; i < t.groups.size(); ++i) {
      const Group& g = t.groups[i];
      n += str(g.id) + g.members.capacity() * sizeof(GroupMember) + g.refund_due.capacity() * sizeof(Idx);
    }
    n += t.bonus_by.capacity() * (sizeof(std::pair<Idx, Provenance>) + 1);
    for (const auto& [l, p] : t.bonus_by) n += str(p.event_id);
    n += r->seen.MemoryBytes() + r->evicted.MemoryBytes() + r->first_rejected.capacity() * (sizeof(uint64_t) + 1);
    n += (t.free_lines.capacity() + t.members.size() + t.orders.size() + t.groups.size() + t.shares.size()) * sizeof(Idx);
    n += r->first_contents.capacity() * (sizeof(std::pair<std::string, Run::FirstContent>) + 1);
    for (const auto& [id, c] : r->first_contents) n += str(id);
    n += r->timers.size() * sizeof(Timer);
    n += r->pending.size() * (sizeof(Pending) + 96);
  }
  return n;
}

void Processor::Reject(const std::string& tenant, const std::string* event_id, std::string_view reason,
                       std::string_view detail, std::string_view source, int64_t position, std::string_view type,
                       std::optional<std::string_view> first_content_key) {
  pb::Rejection r;
  r.set_tenant(tenant);
  if (event_id) r.set_event_id(*event_id);
  r.set_reason(std::string(reason));
  // The detail may quote the hostile bytes (a JSON parser's message), and a
  // source is a file name: both must be valid UTF-8 to be stored and rendered.
  r.set_detail(ValidUtf8(detail));
  r.set_source(ValidUtf8(source));
  r.set_position(position);
  if (!type.empty()) r.set_type(ValidUtf8(type));
  if (first_content_key) {
    r.set_carries_first_content(true);
    r.set_first_content_key(std::string(*first_content_key));
  }
  buf_.clear();
  r.SerializeToString(&buf_);
  sink_.Put(Table::kRejection, RejectionKey(tenant, event_id, source, position), buf_);
  ++stats_.rejected[std::string(reason)];
  ++(*meta_.mutable_rejected())[std::string(reason)];
  last_reason_ = reason;
  last_detail_ = detail;
}

void Processor::StoreEvent(const pb::Event& e, std::string_view source, int64_t position,
                           std::string_view content_key, int64_t log_seq) {
  using R = pb::StoredEvent;
  buf_.clear();
  WireWriter w(&buf_);
  if (log_seq == 0) w.Sub(R::kEventFieldNumber, true, [&] { e.AppendToString(&buf_); });
  w.Bytes(R::kSourceFieldNumber, source);
  w.Int(R::kPositionFieldNumber, position);
  w.Bytes(R::kContentKeyFieldNumber, content_key);
  w.Int(R::kLogSeqFieldNumber, log_seq);
  sink_.Put(Table::kEvent, EntityKey(e.tenant(), e.event_id()), buf_);
}

Outcome Processor::Offer(std::string_view source, int64_t position, Result<pb::Event, DecodeError> decoded,
                         const std::string& lane, std::string_view content_key, int64_t log_seq) {
  last_reason_.clear();
  last_detail_.clear();
  if (options_.until_ms && decoded.ok() && decoded.value().occurred_at_ms() > *options_.until_ms) {
    ++stats_.beyond_until;
    return Outcome::kBeyondUntil;
  }
  ++stats_.offered;
  meta_.set_offered(meta_.offered() + 1);
  const std::string& tenant = decoded.ok() ? decoded.value().tenant() : decoded.error().tenant;
  if (!lane.empty()) {
    auto& lanes = *meta_.mutable_tenant_lanes();
    if (lanes.find(tenant) == lanes.end()) lanes[tenant] = lane;
  }
  Run& r = RunOf(tenant);
  // Check 1: invalid. The event_id, when readable, still counts as seen.
  if (!decoded.ok()) {
    const DecodeError& err = decoded.error();
    const std::string* id = err.event_id ? &*err.event_id : nullptr;
    // The rejection row carries the content key when it is the id's first
    // sighting: Load rebuilds the dedupe set from these and the stored events.
    // (Also when the same bytes come again: a file fed again after a crash
    // rewrites the first sighting's row, which must keep saying so.)
    const ContentId mine = IdOf(err.content_key);
    const uint64_t h = id ? IdHash(*id) : 0;
    const std::optional<ContentId> first = id ? FirstSighting(r, *id, h) : std::nullopt;
    if (id && !first) MarkSeen(r, *id, h, mine, true);
    const bool carries = id && (!first || *first == mine);
    Reject(err.tenant, id, err.reason, err.detail, source, position, err.type.value_or(""),
           carries ? std::optional<std::string_view>(err.content_key) : std::nullopt);
    return Outcome::kRejected;
  }
  const pb::Event& e = decoded.value();
  const std::string_view type = TypeName(e.type());
  // Check 2: duplicate / conflicting duplicate.
  std::string computed;
  if (content_key.empty()) content_key = computed = ContentKey(e);
  const ContentId cid = IdOf(content_key);
  const uint64_t h = IdHash(e.event_id());
  if (const std::optional<ContentId> first = FirstSighting(r, e.event_id(), h)) {
    if (*first == cid) {
      ++stats_.duplicates;
      meta_.set_duplicates(meta_.duplicates() + 1);
      return Outcome::kDuplicate;
    }
    Reject(e.tenant(), &e.event_id(), "conflicting_duplicate", "event_id was seen before with different content",
           source, position, type);
    return Outcome::kRejected;
  }
  MarkSeen(r, e.event_id(), h, cid, false);
  StoreEvent(e, source, position, content_key, log_seq);  // the first valid sighting: for auditors and the dedupe set
  // Check 3: late, against the tenant's own watermark.
  const int64_t t = e.occurred_at_ms();
  if (r.max_seen && t < *r.max_seen - options_.allowed_lateness_ms) {
    Reject(e.tenant(), &e.event_id(), "late_event",
           fmt::format("occurred_at is below the watermark {}",
                       FormatRfc3339(Millis(*r.max_seen - options_.allowed_lateness_ms))),
           source, position, type);
    return Outcome::kRejected;
  }
  if (meta_.has_flushed_through_ms() && t <= meta_.flushed_through_ms()) {
    Reject(e.tenant(), &e.event_id(), "late_event",
           fmt::format("occurred_at is at or before {}, where an earlier input ended and was applied in full",
                       FormatRfc3339(Millis(meta_.flushed_through_ms()))),
           source, position, type);
    return Outcome::kRejected;
  }
  ++stats_.accepted;
  if (!meta_.has_max_seen() || t > meta_.max_seen_ms()) {
    meta_.set_has_max_seen(true);
    meta_.set_max_seen_ms(t);
  }
  if (!r.max_seen || t > *r.max_seen) {
    r.max_seen = t;
    (*meta_.mutable_tenant_max_seen_ms())[e.tenant()] = t;
  }
  // Check 4: buffer for the canonical place.
  Pending& p = r.pending[PendingKey(t, e.event_id(), e.tenant())];
  p.event = std::move(decoded).value();
  p.source = state_.InternSource(source);
  p.position = position;
  Drain(r, false);
  return Outcome::kAccepted;
}

void Processor::Record(Run& r, int64_t at_ms, const Cause* cause, std::string_view timer) {
  if (options_.history) {
    meta_.set_changes(meta_.changes() + 1);
    encoder_.RecordChange(state_, *r.t, meta_.changes(), at_ms, cause, timer, sink_);
  } else {
    r.t->ClearTouched();
  }
}

void Processor::FireDue(Run& r, int64_t up_to_ms) {
  r.timers_through_ms = std::max(r.timers_through_ms, up_to_ms);
  while (!r.timers.empty() && r.timers.top().deadline_ms <= up_to_ms) {
    const Timer timer = r.timers.top();
    r.timers.Pop(*r.t);
    if (!TimerHeap::Live(*r.t, timer)) continue;  // cancelled: its group closed before it came due
    fold_.Fire(*r.t, r.timers, timer);
    Record(r, timer.deadline_ms, nullptr, TimerName(timer.kind));
    ++stats_.timers_fired;
    meta_.set_timers_fired(meta_.timers_fired() + 1);
  }
}

void Processor::ApplyPending(Run& r, const std::string& key, Pending& p) {
  const pb::Event& e = p.event;
  FireDue(r, e.occurred_at_ms());  // timers due at or before this instant come first
  const Cause cause{e.event_id(), p.source, p.position};
  if (auto rej = fold_.Apply(*r.t, r.timers, e, cause)) {
    r.t->ClearTouched();
    Reject(e.tenant(), &e.event_id(), rej->reason, rej->detail, state_.Source(p.source), p.position,
           TypeName(e.type()));
  } else {
    Record(r, e.occurred_at_ms(), &cause, "");
    const auto type = static_cast<size_t>(e.type());
    ++stats_.applied;
    ++stats_.applied_by_type[type];
    meta_.set_applied(meta_.applied() + 1);
    FISSION_ASSERT(type < applied_counters_.size(), "an event type past the counters");
    if (!applied_counters_[type]) applied_counters_[type] = &(*meta_.mutable_applied_by_type())[std::string(TypeName(e.type()))];
    ++*applied_counters_[type];
  }
  if (p.persisted) unpersisted_deletes_.push_back(key);
}

void Processor::Drain(Run& r, bool flush) {
  std::optional<int64_t> wm;
  if (r.max_seen) wm = *r.max_seen - options_.allowed_lateness_ms;
  while (!r.pending.empty()) {
    auto it = r.pending.begin();
    if (!flush && !(wm && GetBe64(it->first) < *wm)) break;
    auto node = r.pending.extract(it);
    ApplyPending(r, node.key(), node.mapped());
  }
  // Every event of this tenant before its watermark is applied and every
  // later one will be at or after it, so its timers due by then can fire now.
  if (!flush && wm) FireDue(r, *wm);
}

void Processor::Flush() {
  std::optional<int64_t> limit = options_.until_ms;
  if (!limit && meta_.has_max_seen()) limit = meta_.max_seen_ms();
  for (auto& [name, r] : runs_) {
    Drain(*r, true);
    if (limit) FireDue(*r, *limit);
  }
  if (limit) meta_.set_flushed_through_ms(limit.value());
}

void Processor::Checkpoint(int64_t log_position, bool full) {
  FISSION_ASSERT(log_position >= meta_.log_position(), "the log position went backwards");
  // In memory only: what the next full checkpoint stores, and how far the
  // caller has handed records over (it catches up on the log past it).
  meta_.set_log_position(log_position);
  if (!full) return;
  // Before write-behind: only what the batches since the last full
  // checkpoint left unchanged leaves memory, so its row is in an earlier
  // commit (RowSource::GetSettledRow).
  Evict();
  encoder_.WriteBehind(state_, sink_);
  for (const std::string& k : unpersisted_deletes_) sink_.Delete(Table::kPending, k);
  unpersisted_deletes_.clear();
  for (auto& [name, r] : runs_) {
    for (auto& [key, p] : r->pending) {
      if (p.persisted) continue;
      pb::Pending row;
      p.event.SerializeToString(row.mutable_event());
      row.set_source(state_.Source(p.source));
      row.set_position(p.position);
      buf_.clear();
      row.SerializeToString(&buf_);
      sink_.Put(Table::kPending, key, buf_);
      p.persisted = true;
    }
  }
  meta_.set_history_as_changes(true);
  for (auto& [name, r] : runs_) {  // in the sink now; read back from there once the commit after next begins
    ++r->generation;
    absl::erase_if(r->first_contents, [&](const auto& e) { return e.second.generation + 1 < r->generation; });
  }
  meta_.clear_watermark_ms();
  for (const auto& [name, r] : runs_) {  // the lowest over tenants: how far everything is applied
    if (auto wm = watermark_ms(name); wm && (!meta_.has_watermark_ms() || *wm < meta_.watermark_ms())) {
      meta_.set_watermark_ms(*wm);
    }
  }
  buf_.clear();
  meta_.SerializeToString(&buf_);
  sink_.Put(Table::kMeta, "", buf_);
}

std::vector<std::string> Processor::DropLane(const std::string& lane) {
  std::vector<std::string> tenants;
  for (const auto& [tenant, l] : meta_.tenant_lanes()) {
    if (l == lane) tenants.push_back(tenant);
  }
  for (const std::string& tenant : tenants) {
    if (auto it = runs_.find(tenant); it != runs_.end()) {
      if (last_run_ == it->second.get()) last_run_ = nullptr;
      for (auto& [key, p] : it->second->pending) {
        if (p.persisted) unpersisted_deletes_.push_back(key);
      }
      runs_.erase(it);
    }
    state_.DropTenant(tenant);
    const std::string prefix = tenant + '\0';
    for (Table t : {Table::kDistributor, Table::kGroup, Table::kMember, Table::kOrder, Table::kRejection,
                    Table::kLine, Table::kShare, Table::kEvent, Table::kTierChange}) {
      sink_.DeletePrefix(t, prefix);
    }
    // Their changes (table V) stay: nothing points at them any more, and
    // the table is only ever read through the chains of current rows.
    meta_.mutable_tenant_lanes()->erase(tenant);
    meta_.mutable_tenant_max_seen_ms()->erase(tenant);
  }
  meta_.mutable_lane_positions()->erase(lane);
  return tenants;
}

void Processor::Load(RowSource& rows) {
  rows.ScanRows(Table::kMeta, [&](std::string_view k, std::string_view v) { meta_ = Parse<pb::ProcessorMeta>(Table::kMeta, k, v); });
  if (!options_.history) meta_.set_history_incomplete(true);
  // Members first (two passes: an upline may sort after its downline), then
  // what refers to them.
  struct Upline {
    Tenant* t;
    Idx member;
    std::string upline;
  };
  std::vector<Upline> uplines;
  rows.ScanRows(Table::kMember, [&](std::string_view k, std::string_view v) {
    const auto row = Parse<pb::Member>(Table::kMember, k, v);
    Run& r = RunOf(KeyPart(k, 0));
    const Idx i = r.t->members.Add(KeyPart(k, 1));
    Member& m = r.t->members[i];
    m.tier = state_.tiers.Intern(row.tier());
    m.growth = row.growth();
    m.points = row.points();
    m.checkins = row.checkins();
    m.checkin_streak = row.checkin_streak();
    m.has_last_checkin = row.has_last_checkin_day();
    m.last_checkin_day = row.last_checkin_day();
    m.bound_at_ms = row.bound_at_ms();
    m.distributor = row.distributor();
    m.tier_changes = row.tier_changes();
    m.version = row.last_version();
    if (row.has_upline()) uplines.push_back({r.t, i, row.upline()});
  });
  for (const Upline& u : uplines) {
    const Idx up = u.t->members.Find(u.upline);
    FISSION_ASSERT(up != kNone, "a member's upline has no member row");
    u.t->members[u.member].upline = up;
  }
  rows.ScanRows(Table::kDistributor, [&](std::string_view k, std::string_view v) {
    const auto row = Parse<pb::Distributor>(Table::kDistributor, k, v);
    Run& r = RunOf(KeyPart(k, 0));
    const Idx m = r.t->members.Find(KeyPart(k, 1));
    FISSION_ASSERT(m != kNone, "a distributor row has no member row");
    r.t->members[m].dist = static_cast<Idx>(r.t->distributors.size());
    Distributor& d = r.t->distributors.emplace_back();
    d.held_fen = row.held_fen();
    d.pending_fen = row.pending_fen();
    d.settled_fen = row.settled_fen();
    d.reversed_fen = row.reversed_fen();
    d.voided_fen = row.voided_fen();
    d.clawed_back_fen = row.clawed_back_fen();
    d.waived_fen = row.waived_fen();
    d.shares = row.shares();
    d.downlines = row.downlines();
    d.lines = row.lines();
    d.version = row.last_version();
  });
  // Under a memory budget only what still waits comes into memory: orders
  // with a line held or pending, the groups that form or refer to such an
  // order, with all their orders, and those orders' lines. The rest (and
  // every share) is left to its rows and brought back when an event names
  // it, as if Evict had sent it out.
  const bool bounded = options_.memory_budget_bytes > 0;
  auto id_in = [](std::string_view tenant, std::string_view id) { return fmt::format("{}\n{}", tenant, id); };
  absl::flat_hash_set<std::string> waiting_orders, kept_groups;
  if (bounded) {
    rows.ScanRows(Table::kLine, [&](std::string_view k, std::string_view v) {
      const auto row = Parse<pb::Line>(Table::kLine, k, v);
      if (row.state() == pb::HELD || row.state() == pb::PENDING) waiting_orders.insert(id_in(KeyPart(k, 0), row.order_id()));
    });
    rows.ScanRows(Table::kGroup, [&](std::string_view k, std::string_view v) {
      const auto row = Parse<pb::Group>(Table::kGroup, k, v);
      const std::string_view tenant = KeyPart(k, 0);
      bool keep = row.status() == pb::Group::FORMING;
      for (const auto& gm : row.members()) keep = keep || (gm.has_order_id() && waiting_orders.contains(id_in(tenant, gm.order_id())));
      for (const auto& o : row.refund_due()) keep = keep || waiting_orders.contains(id_in(tenant, o));
      if (!keep) return;
      kept_groups.insert(id_in(tenant, KeyPart(k, 1)));
      for (const auto& gm : row.members()) {
        if (gm.has_order_id()) waiting_orders.insert(id_in(tenant, gm.order_id()));
      }
      for (const auto& o : row.refund_due()) waiting_orders.insert(id_in(tenant, o));
    });
  }
  // Whether an entity of `table` comes into memory; if not, it is noted as
  // evicted.
  auto admit = [&](Table table, const absl::flat_hash_set<std::string>& kept, std::string_view k) {
    if (!bounded) return true;
    const std::string_view tenant = KeyPart(k, 0), id = KeyPart(k, 1);
    if (kept.contains(id_in(tenant, id))) return true;
    RunOf(tenant).evicted.Insert(EvictedHash(table, id));
    return false;
  };
  rows.ScanRows(Table::kOrder, [&](std::string_view k, std::string_view v) {
    if (!admit(Table::kOrder, waiting_orders, k)) return;
    const auto row = Parse<pb::Order>(Table::kOrder, k, v);
    Run& r = RunOf(KeyPart(k, 0));
    DecodeOrder(*r.t, r.t->orders.Add(KeyPart(k, 1)), row);
  });
  rows.ScanRows(Table::kLine, [&](std::string_view k, std::string_view v) {
    const auto row = Parse<pb::Line>(Table::kLine, k, v);
    Run& r = RunOf(KeyPart(k, 0));
    if (bounded && r.t->orders.Find(row.order_id()) == kNone) return;
    DecodeLine(r, row);
  });
  const absl::flat_hash_set<std::string> no_shares;
  rows.ScanRows(Table::kShare, [&](std::string_view k, std::string_view v) {
    if (!admit(Table::kShare, no_shares, k)) return;
    const auto row = Parse<pb::Share>(Table::kShare, k, v);
    Run& r = RunOf(KeyPart(k, 0));
    DecodeShare(*r.t, r.t->shares.Add(KeyPart(k, 1)), row);
  });
  rows.ScanRows(Table::kGroup, [&](std::string_view k, std::string_view v) {
    if (!admit(Table::kGroup, kept_groups, k)) return;
    const auto row = Parse<pb::Group>(Table::kGroup, k, v);
    Run& r = RunOf(KeyPart(k, 0));
    DecodeGroup(r, r.t->groups.Add(KeyPart(k, 1)), row);
  });
  // Each group's leader bonus line, which its eviction waits for.
  for (const auto& [name, r] : runs_) {
    Tenant& t = *r->t;
    for (Idx li = 0; li < t.lines.size(); ++li) {
      const Line& l = t.lines[li];
      if (!l.leader_bonus || !t.orders[l.order].has_group_id) continue;
      if (const Idx g = t.groups.Find(t.orders[l.order].group_id); g != kNone) t.groups[g].bonus_line = li;
    }
  }
  // The dedupe set: each id's first sighting is a stored event (valid) or a
  // rejection that carries the content key (invalid, with a readable id).
  // Only the ids' hashes are held; FirstSighting reads the content back.
  rows_ = &rows;
  rows.ScanRows(Table::kEvent, [&](std::string_view k, std::string_view) {
    RunOf(KeyPart(k, 0)).seen.Insert(IdHash(KeyPart(k, 1)));
  });
  rows.ScanRows(Table::kRejection, [&](std::string_view k, std::string_view v) {
    const auto row = Parse<pb::Rejection>(Table::kRejection, k, v);
    if (!row.carries_first_content()) return;
    Run& r = RunOf(row.tenant());
    r.seen.Insert(IdHash(row.event_id()));
    r.first_rejected.insert(IdHash(row.event_id()));
  });
  rows.ScanRows(Table::kPending, [&](std::string_view k, std::string_view v) {
    const auto row = Parse<pb::Pending>(Table::kPending, k, v);
    Pending p;
    if (!p.event.ParseFromString(row.event())) throw std::runtime_error("corrupt buffered event");
    p.source = state_.InternSource(row.source());
    p.position = row.position();
    p.persisted = true;
    RunOf(p.event.tenant()).pending.emplace(std::string(k), std::move(p));
  });
}

const RuleVersion* Processor::RuleOf(std::string_view tenant, const std::string& name, int64_t at_ms) const {
  const RuleVersion* rv = rules_.ByName(tenant, name);
  return rv ? rv : &rules_.For(tenant, Millis(at_ms));
}

void Processor::DecodeOrder(Tenant& t, Idx i, const pb::Order& row) {
  Order& o = t.orders[i];
  o.member = t.members.Find(row.member());
  FISSION_ASSERT(o.member != kNone, "an order's buyer has no member row");
  o.amount_fen = row.amount_fen();
  o.commission_base_fen = row.commission_base_fen();
  o.refunded_fen = row.refunded_fen();
  o.has_group_id = row.has_group_id();
  o.group_id = row.group_id();
  o.paid_at_ms = row.paid_at_ms();
  o.refund_due = row.refund_due();
  o.overflow = row.overflow();
  o.growth = row.growth();
  o.points = row.points();
  o.rule = RuleOf(t.name, row.rule_version(), row.paid_at_ms());
  const pb::Provenance& p = row.paid_by();
  o.paid_by = Provenance{p.event_id(), state_.InternSource(p.source()), p.position()};
}

Idx Processor::DecodeLine(Run& r, const pb::Line& row) {
  Tenant& t = *r.t;
  const Idx li = t.NewLine();
  Line& l = t.lines[li];
  l.distributor = t.members.Find(row.distributor());
  l.order = t.orders.Find(row.order_id());
  FISSION_ASSERT(l.distributor != kNone && l.order != kNone, "a line's distributor or order has no row");
  l.leader_bonus = row.leader_bonus();
  l.level = static_cast<uint8_t>(row.level());
  l.state = StateOf(row.state());
  l.has_settles_at = row.has_settles_at_ms();
  l.settles_at_ms = row.settles_at_ms();
  l.refund_policy = PolicyOf(row.refund_policy());
  l.freeze_days = row.freeze_days();
  l.rate_bps = row.rate_bps();
  l.base_fen = row.base_fen();
  l.amount_fen = row.amount_fen();
  l.reversed_fen = row.reversed_fen();
  l.clawed_back_fen = row.clawed_back_fen();
  l.waived_fen = row.waived_fen();
  l.rule = RuleOf(t.name, row.rule_version(), t.orders[l.order].paid_at_ms);
  const pb::Provenance& p = row.created_by();
  l.created_by_timer = p.event_id().empty() && p.source().starts_with("timer:");
  if (l.leader_bonus && !l.created_by_timer) {
    t.bonus_by[li] = Provenance{p.event_id(), state_.InternSource(p.source()), p.position()};
  }
  l.version = row.last_version();
  if (l.state == LineState::kPending && l.has_settles_at) {
    r.timers.Push(t, Timer{l.settles_at_ms, TimerKind::kSettlement, li});
  }
  if (!l.leader_bonus) {  // the order's reference to it, by level
    FISSION_ASSERT(l.level >= 1 && l.level <= 3, "a commission line's level is out of range");
    Order& o = t.orders[l.order];
    o.lines[l.level - 1] = li;
    o.line_count = std::max<uint8_t>(o.line_count, l.level);
  }
  return li;
}

void Processor::DecodeGroup(Run& r, Idx gi, const pb::Group& row) {
  Tenant& t = *r.t;
  Group& g = t.groups[gi];
  g.status = static_cast<GroupStatus>(row.status());
  g.leader = t.members.Find(row.leader());
  g.size = row.size();
  g.product_id = row.product_id();
  g.opened_at_ms = row.opened_at_ms();
  g.expires_at_ms = row.expires_at_ms();
  g.has_closed_at = row.has_closed_at_ms();
  g.closed_at_ms = row.closed_at_ms();
  g.is_virtual = row.virtual_();
  g.paid_count = row.paid_count();
  auto order = [&](const std::string& id) {
    const Idx o = t.orders.Find(id);
    FISSION_ASSERT(o != kNone, "a group's order has no row");
    t.orders[o].grouped = true;
    return o;
  };
  for (const auto& gm : row.members()) {
    GroupMember m{t.members.Find(gm.member()), gm.joined_at_ms(), gm.paid(), kNone};
    if (gm.has_order_id()) m.order = order(gm.order_id());
    g.members.push_back(m);
  }
  for (const auto& o : row.refund_due()) g.refund_due.push_back(order(o));
  g.virtual_success = row.virtual_success();
  g.leader_bonus_fen = row.leader_bonus_fen();
  g.leader_bonus_freeze_days = row.leader_bonus_freeze_days();
  g.rule = RuleOf(t.name, row.rule_version(), row.opened_at_ms());
  g.version = row.last_version();
  if (g.status == GroupStatus::kForming) r.timers.Push(t, Timer{g.expires_at_ms, TimerKind::kGroupExpiry, gi});
}

void Processor::DecodeShare(Tenant& t, Idx i, const pb::Share& row) {
  Share& s = t.shares[i];
  s.sharer = t.members.Find(row.sharer());
  FISSION_ASSERT(s.sharer != kNone, "a share's sharer has no member row");
  s.shared_at_ms = row.shared_at_ms();
  s.event_id = row.event_id();
}

uint64_t Processor::EvictedHash(Table table, std::string_view id) {
  return absl::Hash<std::pair<char, std::string_view>>{}({static_cast<char>(table), id});
}

template <class Row>
std::optional<Row> Processor::EvictedRow(Run& r, Table table, std::string_view id) {
  if (!r.evicted.MayContain(EvictedHash(table, id))) return std::nullopt;
  if (!rows_->GetSettledRow(table, EntityKey(r.t->name, id), &read_buf_)) return std::nullopt;
  return Parse<Row>(table, id, read_buf_);
}

Idx Processor::FaultOrder(Tenant& t, std::string_view id) {
  Run& r = RunOf(t.name);
  const auto found = EvictedRow<pb::Order>(r, Table::kOrder, id);
  if (!found) return kNone;
  const pb::Order& row = *found;
  // A closed group in memory refers to its orders: it comes back first,
  // and brings the order with it when it refers to it.
  if (row.has_group_id() && t.groups.Find(row.group_id()) == kNone && FaultGroup(t, row.group_id()) != kNone) {
    if (const Idx i = t.orders.Find(id); i != kNone) return i;
  }
  return LoadOrder(r, id, row);
}

Idx Processor::LoadOrder(Run& r, std::string_view id, const pb::Order& row) {
  Tenant& t = *r.t;
  const Idx oi = t.orders.Add(id);
  DecodeOrder(t, oi, row);
  std::string buf;
  for (const pb::LineRef& ref : row.lines()) {
    FISSION_ASSERT(ref.level() >= 1 && ref.level() <= 3, "a commission line's level is out of range");
    if (!rows_->GetSettledRow(Table::kLine, LineKey(t.name, ref.distributor(), id, false, ref.level()), &buf)) {
      throw std::runtime_error(fmt::format("order '{}' of tenant '{}' refers to a line with no row", id, t.name));
    }
    const Idx li = DecodeLine(r, Parse<pb::Line>(Table::kLine, id, buf));
    FISSION_ASSERT(t.lines[li].state == LineState::kSettled || t.lines[li].state == LineState::kVoid,
                   "an evicted order's line was still waiting");
  }
  ++stats_.faulted;
  return oi;
}

Idx Processor::FaultGroup(Tenant& t, std::string_view id) {
  Run& r = RunOf(t.name);
  const auto found = EvictedRow<pb::Group>(r, Table::kGroup, id);
  if (!found) return kNone;
  const pb::Group& row = *found;
  FISSION_ASSERT(row.status() != pb::Group::FORMING, "an evicted group was still forming");
  // Its orders first: the group refers to them by index.
  auto bring = [&](const std::string& oid) {
    if (t.orders.Find(oid) != kNone) return;
    std::string buf;
    if (!rows_->GetSettledRow(Table::kOrder, EntityKey(t.name, oid), &buf)) {
      throw std::runtime_error(fmt::format("group '{}' of tenant '{}' refers to order '{}' with no row", id, t.name, oid));
    }
    LoadOrder(r, oid, Parse<pb::Order>(Table::kOrder, oid, buf));
  };
  for (const auto& gm : row.members()) {
    if (gm.has_order_id()) bring(gm.order_id());
  }
  for (const auto& o : row.refund_due()) bring(o);
  const Idx gi = t.groups.Add(id);
  DecodeGroup(r, gi, row);
  ++stats_.faulted;
  return gi;
}

bool Processor::GroupEvicted(Tenant& t, std::string_view id) {
  Run& r = RunOf(t.name);
  return r.evicted.MayContain(EvictedHash(Table::kGroup, id)) &&
         rows_->GetSettledRow(Table::kGroup, EntityKey(t.name, id), &read_buf_);
}

Idx Processor::FaultShare(Tenant& t, std::string_view id) {
  const auto row = EvictedRow<pb::Share>(RunOf(t.name), Table::kShare, id);
  if (!row) return kNone;
  const Idx i = t.shares.Add(id);
  DecodeShare(t, i, *row);
  ++stats_.faulted;
  return i;
}

namespace {

// What the budget counts per entity in memory: the struct, its index entry,
// and a little for the ids that outgrow the string's own buffer.
constexpr uint64_t kIndexEntry = 2 * sizeof(Idx) + sizeof(std::string_view) + 1;
constexpr uint64_t kMemberBytes = sizeof(Member) + kIndexEntry + 8;
constexpr uint64_t kOrderBytes = sizeof(Order) + kIndexEntry + 24;
constexpr uint64_t kLineBytes = sizeof(Line) + 8;
constexpr uint64_t kGroupBytes = sizeof(Group) + kIndexEntry + 3 * sizeof(GroupMember) + 8;
constexpr uint64_t kShareBytes = sizeof(Share) + kIndexEntry + 8;
constexpr uint64_t kHashSlot = sizeof(uint64_t) + 1;

}  // namespace

uint64_t Processor::RunBytes(const Run& r) {
  const Tenant& t = *r.t;
  uint64_t n = t.members.live() * kMemberBytes + t.distributors.size() * sizeof(Distributor);
  n += t.orders.live() * kOrderBytes + (t.lines.size() - t.free_lines.size()) * kLineBytes;
  n += t.groups.live() * kGroupBytes + t.shares.live() * kShareBytes;
  n += r.seen.MemoryBytes() + r.evicted.MemoryBytes() + r.first_rejected.capacity() * kHashSlot;
  n += r.timers.size() * sizeof(Timer) + r.pending.size() * (sizeof(Pending) + 96);
  return n;
}

uint64_t Processor::EstimatedBytes() const {
  uint64_t n = 0;
  for (const auto& [name, r] : runs_) n += RunBytes(*r);
  return n;
}

void Processor::EvictOrder(Run& r, Idx oi) {
  Tenant& t = *r.t;
  Order& o = t.orders[oi];
  for (uint8_t k = 0; k < o.line_count; ++k) t.RemoveLine(o.lines[k]);
  r.evicted.Insert(EvictedHash(Table::kOrder, o.id));
  stats_.evicted += 1 + o.line_count;
  t.orders.Remove(oi);
}

bool Processor::EvictOrderUnit(Run& r, Idx oi) {
  Tenant& t = *r.t;
  auto final_line = [&](Idx li) {
    const Line& l = t.lines[li];
    return !l.dirty && (l.state == LineState::kSettled || l.state == LineState::kVoid);
  };
  auto finished = [&](Idx i) {
    const Order& o = t.orders[i];
    if (o.dirty) return false;
    for (uint8_t k = 0; k < o.line_count; ++k) {
      if (!final_line(o.lines[k])) return false;
    }
    return true;
  };
  if (!finished(oi)) return false;
  if (!t.orders[oi].grouped) {
    EvictOrder(r, oi);
    return true;
  }
  const Idx gi = t.groups.Find(t.orders[oi].group_id);
  FISSION_ASSERT(gi != kNone, "a grouped order's group is not in memory");
  Group& g = t.groups[gi];
  if (g.status == GroupStatus::kForming || g.dirty) return false;
  // A group that succeeded early leaves its expiry timer in the heap until
  // due; its slot must not be reused before then (the heap orders by id).
  if (g.expires_at_ms > r.timers_through_ms) return false;
  if (g.bonus_line != kNone && !final_line(g.bonus_line)) return false;
  std::vector<Idx> orders;
  for (const GroupMember& gm : g.members) {
    if (gm.order != kNone) orders.push_back(gm.order);
  }
  orders.insert(orders.end(), g.refund_due.begin(), g.refund_due.end());
  std::sort(orders.begin(), orders.end());
  orders.erase(std::unique(orders.begin(), orders.end()), orders.end());
  for (Idx o : orders) {
    if (!finished(o)) return false;
  }
  if (g.bonus_line != kNone) {
    t.RemoveLine(g.bonus_line);
    ++stats_.evicted;
  }
  for (Idx o : orders) EvictOrder(r, o);
  r.evicted.Insert(EvictedHash(Table::kGroup, g.id));
  ++stats_.evicted;
  t.groups.Remove(gi);
  return true;
}

bool Processor::EvictionDue() const {
  const uint64_t budget = options_.memory_budget_bytes;
  if (budget == 0) return false;
  const uint64_t total = EstimatedBytes();
  return total > budget && total >= evicted_to_ + budget / 16;
}

void Processor::Evict() {
  const uint64_t budget = options_.memory_budget_bytes;
  if (budget == 0) return;
  uint64_t total = EstimatedBytes();
  if (total <= budget) return;
  const uint64_t target = budget - budget / 8;
  // Finished orders first, oldest first, then shares (which payments and
  // joins name for years: they come back more often). An order that still
  // waits goes to the back of the line; a pass gives up after this many of
  // them in a row (the rest are younger still).
  constexpr int kPatience = 4096;
  for (auto& [name, rp] : runs_) {
    Run& r = *rp;
    Tenant& t = *r.t;
    const uint64_t others = total - RunBytes(r);
    auto over = [&] { return others + RunBytes(r) > target; };
    auto& orders = t.orders.age();
    int waiting = 0;
    for (size_t n = orders.size(); n > 0 && waiting < kPatience && over(); --n) {
      const Idx o = orders.front();
      orders.pop_front();
      if (t.orders[o].id.empty()) continue;  // left with its group already
      if (EvictOrderUnit(r, o)) {
        waiting = 0;
      } else {
        orders.push_back(o);
        ++waiting;
      }
    }
    auto& shares = t.shares.age();
    while (!shares.empty() && over()) {
      const Idx s = shares.front();
      if (t.shares[s].dirty) break;  // new in this batch, as are all after it
      shares.pop_front();
      if (t.shares[s].id.empty()) continue;  // gone already
      r.evicted.Insert(EvictedHash(Table::kShare, t.shares[s].id));
      t.shares.Remove(s);
      ++stats_.evicted;
    }
    total = others + RunBytes(r);
  }
  evicted_to_ = total;
}

}  // namespace fission
