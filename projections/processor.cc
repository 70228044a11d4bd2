#include "projections/processor.h"

#include <fmt/format.h>

#include <cassert>

#include "events/decode.h"
#include "events/time.h"

namespace fission {

Processor::Processor(const RuleBook& rules, Store& store, ProcessorOptions options)
    : store_(store),
      options_(options),
      history_(store, options.history),
      fold_(rules, history_, *this) {
  if (const auto* m = store_.Find<pb::ProcessorMeta>(Table::kMeta, "")) meta_ = *m;
  if (!options_.history) meta_.set_history_incomplete(true);
  store_.Scan(Table::kPending, "", [&](std::string_view k, const google::protobuf::MessageLite& row) {
    pending_.emplace(std::string(k), static_cast<const pb::Pending&>(row));
    return true;
  });
  if (options_.timer_window == 0) options_.timer_window = 1;
  LoadTimers();
}

void Processor::LoadTimers() {
  assert(horizon_);
  std::optional<std::string> next;  // the first timer not taken: the new horizon
  size_t taken = 0;
  store_.ScanFrom(Table::kTimer, "", *horizon_,
                  [&](std::string_view k, const google::protobuf::MessageLite&) {
                    if (taken == options_.timer_window) {
                      next.emplace(k);
                      return false;
                    }
                    timers_.insert(k);
                    ++taken;
                    return true;
                  });
  horizon_ = std::move(next);
}

std::optional<int64_t> Processor::watermark_ms() const {
  if (!meta_.has_max_seen()) return std::nullopt;
  const auto& seen = meta_.lane_max_seen_ms();
  std::optional<int64_t> low;
  auto consider = [&](int64_t v) { low = low ? std::min(*low, v) : v; };
  if (active_lanes_.empty()) {
    for (const auto& [lane, v] : seen) consider(v);
  } else {
    for (const std::string& lane : active_lanes_) {
      auto it = seen.find(lane);
      if (it == seen.end()) return std::nullopt;  // a lane that has said nothing yet holds it back
      consider(it->second);
    }
  }
  if (!low) return std::nullopt;
  return *low - options_.allowed_lateness_ms;
}

Outcome Processor::OfferJson(std::string_view source, int64_t position, std::string_view line) {
  return Offer(source, position, DecodeJson(line), "");
}

Outcome Processor::OfferProto(std::string_view source, int64_t position, std::string_view bytes,
                              const std::string& lane) {
  return Offer(source, position, DecodeProto(bytes), lane);
}

void Processor::Reject(const std::string& tenant, const std::string* event_id,
                       std::string_view reason, std::string_view detail, std::string_view source,
                       int64_t position, std::string_view type) {
  auto* r = store_.Mutable<pb::Rejection>(Table::kRejection,
                                          RejectionKey(tenant, event_id, source, position));
  r->set_tenant(tenant);
  if (event_id) r->set_event_id(*event_id);
  r->set_reason(std::string(reason));
  // The detail may quote the hostile bytes (a JSON parser's message), and a
  // source is a file name: both must be valid UTF-8 to be stored and rendered.
  r->set_detail(ValidUtf8(detail));
  r->set_source(ValidUtf8(source));
  r->set_position(position);
  if (!type.empty()) r->set_type(ValidUtf8(type));
  ++stats_.rejected[std::string(reason)];
  ++(*meta_.mutable_rejected())[std::string(reason)];
  last_reason_ = reason;
  last_detail_ = detail;
}

Outcome Processor::Offer(std::string_view source, int64_t position,
                         Result<pb::Event, DecodeError> decoded, const std::string& lane) {
  last_reason_.clear();
  last_detail_.clear();
  if (options_.until_ms && decoded.ok() && decoded.value().occurred_at_ms() > *options_.until_ms) {
    ++stats_.beyond_until;
    return Outcome::kBeyondUntil;
  }
  ++stats_.offered;
  meta_.set_offered(meta_.offered() + 1);
  if (!lane.empty()) {
    const std::string& tenant = decoded.ok() ? decoded.value().tenant() : decoded.error().tenant;
    auto& lanes = *meta_.mutable_tenant_lanes();
    if (lanes.find(tenant) == lanes.end()) lanes[tenant] = lane;
  }
  // Check 1: invalid. The event_id, when readable, still counts as seen.
  if (!decoded.ok()) {
    const DecodeError& err = decoded.error();
    const std::string* id = err.event_id ? &*err.event_id : nullptr;
    Reject(err.tenant, id, err.reason, err.detail, source, position, err.type.value_or(""));
    if (id) {
      const std::string dkey = EntityKey(err.tenant, *id);
      if (!store_.Find<pb::Seen>(Table::kDedupe, dkey)) {
        store_.Mutable<pb::Seen>(Table::kDedupe, dkey)->set_content_key(err.content_key);
      }
    }
    return Outcome::kRejected;
  }
  const pb::Event& e = decoded.value();
  const std::string type(TypeName(e.type()));
  // Check 2: duplicate / conflicting duplicate.
  const std::string dkey = EntityKey(e.tenant(), e.event_id());
  const std::string content = ContentKey(e);
  if (const auto* seen = store_.Find<pb::Seen>(Table::kDedupe, dkey)) {
    if (seen->content_key() == content) {
      ++stats_.duplicates;
      meta_.set_duplicates(meta_.duplicates() + 1);
      return Outcome::kDuplicate;
    }
    Reject(e.tenant(), &e.event_id(), "conflicting_duplicate",
           "event_id was seen before with different content", source, position, type);
    return Outcome::kRejected;
  }
  store_.Mutable<pb::Seen>(Table::kDedupe, dkey)->set_content_key(content);
  {  // the first valid sighting is kept for auditors (GET .../events/{id})
    pb::StoredEvent stored;
    e.SerializeToString(stored.mutable_event());
    stored.set_source(std::string(source));
    stored.set_position(position);
    store_.PutRow(Table::kEvent, dkey, stored.SerializeAsString());
  }
  // Check 3: late.
  const int64_t t = e.occurred_at_ms();
  if (auto wm = watermark_ms(); wm && t < *wm) {
    Reject(e.tenant(), &e.event_id(), "late_event",
           fmt::format("occurred_at is below the watermark {}", FormatRfc3339(Millis(*wm))), source,
           position, type);
    return Outcome::kRejected;
  }
  if (meta_.has_flushed_through_ms() && t <= meta_.flushed_through_ms()) {
    Reject(e.tenant(), &e.event_id(), "late_event",
           fmt::format("occurred_at is at or before {}, where an earlier input ended and was "
                       "applied in full",
                       FormatRfc3339(Millis(meta_.flushed_through_ms()))),
           source, position, type);
    return Outcome::kRejected;
  }
  ++stats_.accepted;
  if (!meta_.has_max_seen() || t > meta_.max_seen_ms()) {
    meta_.set_has_max_seen(true);
    meta_.set_max_seen_ms(t);
  }
  auto& lane_max = *meta_.mutable_lane_max_seen_ms();
  if (auto it = lane_max.find(lane); it == lane_max.end() || t > it->second) lane_max[lane] = t;
  // Check 4: buffer for the canonical place.
  const std::string pkey = PendingKey(t, e.event_id(), e.tenant());
  pb::Pending p;
  e.SerializeToString(p.mutable_event());
  p.set_source(std::string(source));
  p.set_position(position);
  // The key holds the event_id, seen for the first time just above: a new row.
  *store_.Create<pb::Pending>(Table::kPending, pkey) = p;
  pending_.emplace(pkey, std::move(p));
  Drain(false);
  return Outcome::kAccepted;
}

void Processor::FireDue(int64_t up_to_ms) {
  for (;;) {
    if (timers_.empty()) {
      if (!horizon_) break;
      LoadTimers();
      if (timers_.empty()) break;
    }
    if (GetBe64(timers_.front()) > up_to_ms) break;
    const std::string key(timers_.front());
    timers_.pop_front();
    store_.EraseRow(Table::kTimer, key);
    fold_.Fire(key);
    history_.Record(GetBe64(key), nullptr,
                    static_cast<TimerKind>(key[8]) == TimerKind::kGroupExpiry ? "group_expiry"
                                                                               : "settlement");
    ++stats_.timers_fired;
    meta_.set_timers_fired(meta_.timers_fired() + 1);
  }
}

void Processor::ApplyPending(const std::string& key, const pb::Pending& p) {
  pb::Event e;
  const bool parsed = e.ParseFromString(p.event());
  assert(parsed);
  (void)parsed;
  FireDue(e.occurred_at_ms());  // timers due at or before this instant come first
  pb::Provenance from;
  from.set_event_id(e.event_id());
  from.set_source(p.source());
  from.set_position(p.position());
  if (auto rej = fold_.Apply(e, from)) {
    history_.Discard();
    Reject(e.tenant(), &e.event_id(), rej->reason, rej->detail, p.source(), p.position(),
           TypeName(e.type()));
  } else {
    history_.Record(e.occurred_at_ms(), &from, "");
    ++stats_.applied;
    ++stats_.applied_by_type[static_cast<size_t>(e.type())];
    meta_.set_applied(meta_.applied() + 1);
    ++(*meta_.mutable_applied_by_type())[std::string(TypeName(e.type()))];
  }
  store_.EraseRow(Table::kPending, key);
}

void Processor::Drain(bool flush) {
  const auto wm = watermark_ms();
  while (!pending_.empty()) {
    auto it = pending_.begin();
    if (!flush && !(wm && GetBe64(it->first) < *wm)) break;
    auto node = pending_.extract(it);
    ApplyPending(node.key(), node.mapped());
  }
  // Every event before the watermark is applied and every later one will be at
  // or after it, so timers due by then can fire now.
  if (flush) {
    if (meta_.has_max_seen()) FireDue(meta_.max_seen_ms());
  } else if (wm) {
    FireDue(*wm);
  }
}

void Processor::Flush() {
  // The greatest time seen on the lanes still held (all of them, for one reader).
  if (!meta_.lane_max_seen_ms().empty()) {
    int64_t m = INT64_MIN;
    for (const auto& [lane, v] : meta_.lane_max_seen_ms()) m = std::max(m, v);
    meta_.set_max_seen_ms(m);
  }
  Drain(true);
  if (meta_.has_max_seen()) meta_.set_flushed_through_ms(meta_.max_seen_ms());
}

std::vector<std::string> Processor::DropLane(const std::string& lane) {
  std::vector<std::string> tenants;
  for (const auto& [tenant, l] : meta_.tenant_lanes()) {
    if (l == lane) tenants.push_back(tenant);
  }
  // Collect first: a Store may not scan over its own uncommitted erases.
  std::vector<std::pair<Table, std::string>> rows;
  for (const std::string& tenant : tenants) {
    for (Table t : {Table::kDistributor, Table::kGroup, Table::kMember, Table::kOrder, Table::kRejection,
                    Table::kLine, Table::kShare, Table::kDedupe, Table::kEvent, Table::kTierChange}) {
      store_.Scan(t, tenant + '\0', [&](std::string_view k, const google::protobuf::MessageLite&) {
        rows.emplace_back(t, std::string(k));
        return true;
      });
    }
    for (Table t : {Table::kDistributor, Table::kGroup, Table::kMember, Table::kLine}) {
      std::string prefix(1, static_cast<char>(t));
      prefix.append(tenant).push_back('\0');
      store_.Scan(Table::kHistory, prefix, [&](std::string_view k, const google::protobuf::MessageLite&) {
        rows.emplace_back(Table::kHistory, std::string(k));
        return true;
      });
    }
  }
  for (const auto& [t, k] : rows) store_.EraseRow(t, k);
  for (const std::string& tenant : tenants) {
    for (auto it = pending_.begin(); it != pending_.end();) {  // key: be64 event_id 0x00 tenant
      if (std::string_view(it->first).substr(it->first.rfind('\0') + 1) == tenant) {
        store_.EraseRow(Table::kPending, it->first);
        it = pending_.erase(it);
      } else {
        ++it;
      }
    }
    meta_.mutable_tenant_lanes()->erase(tenant);
  }
  // Timers, held in memory or not, are the timer table's rows. Key: be64
  // deadline, kind, target (tenant 0x00 ...).
  const std::set<std::string, std::less<>> dropped(tenants.begin(), tenants.end());
  std::vector<std::string> timers;
  if (!dropped.empty()) {
    store_.Scan(Table::kTimer, "", [&](std::string_view k, const google::protobuf::MessageLite&) {
      const std::string_view target = k.substr(9);
      if (dropped.contains(target.substr(0, target.find('\0')))) timers.emplace_back(k);
      return true;
    });
  }
  for (const std::string& k : timers) {
    timers_.erase(k);
    store_.EraseRow(Table::kTimer, k);
  }
  meta_.mutable_lane_positions()->erase(lane);
  meta_.mutable_lane_max_seen_ms()->erase(lane);
  return tenants;
}

void Processor::SaveMeta(int64_t log_position) {
  assert(log_position >= meta_.log_position());
  meta_.set_log_position(log_position);
  if (auto wm = watermark_ms()) meta_.set_watermark_ms(*wm);
  *store_.Mutable<pb::ProcessorMeta>(Table::kMeta, "") = meta_;
}

void Processor::Schedule(const std::string& timer_key) {
  store_.OverwriteRow(Table::kTimer, timer_key);  // an empty marker: nothing to read
  if (horizon_ && timer_key >= *horizon_) return;  // beyond the window: read when it comes
  timers_.insert(timer_key);
  // Over twice the window: the latest go back to waiting in the Store only.
  if (timers_.size() > 2 * options_.timer_window) horizon_ = timers_.TruncateTo(options_.timer_window);
}

void Processor::Cancel(const std::string& timer_key) {
  timers_.erase(timer_key);
  store_.EraseRow(Table::kTimer, timer_key);
}

}  // namespace fission
