// The canonical-order processor (spec sections 3 and 4).
//
// Offer() takes arriving input in arrival order and runs the checks of
// section 4: invalid -> rejection; same event_id seen before -> duplicate (same
// content) or conflicting_duplicate; below the watermark -> late_event;
// otherwise the event is buffered and applied at its canonical place
// (occurred_at, event_id) once the watermark passes it, with timers
// interleaved. Flush() ends a finite input: everything buffered is applied and
// every timer due by the greatest occurred_at seen fires.
//
// All of its state (dedupe keys, the reorder buffer, timers, watermark and
// counters) lives in the Store beside the projections, so the engine commits
// it in the same atomic batch. After a Flush the stream may continue, but any
// later event at or before the flushed instant is late: it could no longer be
// applied in canonical order.
//
// Pure like the Fold: no clock, no I/O. Not thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "events/rules.h"
#include "projections/outcome.h"
#include "fission/v1/events.pb.h"
#include "projections/fold.h"
#include "projections/history.h"
#include "projections/store.h"
#include "projections/timer_set.h"

namespace fission {

struct ProcessorOptions {
  // How far behind the greatest event time seen an event may arrive and still
  // be applied in order. Larger tolerates more disorder but delays every
  // projection (and timer) by as much. Default 60 s.
  int64_t allowed_lateness_ms = 60'000;
  // Keep a version of every distributor, group, member and line at each
  // instant it changes (history.h), for as-of queries. Default on.
  bool history = true;
  // Replay up to an instant: valid events with occurred_at after it are
  // passed over (not applied, not rejected, not marked seen). Records whose
  // time cannot be read are still offered (they are rejected either way).
  std::optional<int64_t> until_ms = std::nullopt;
  // Timers held in memory: the earliest this many (at most twice as many
  // between trims). The rest wait in the Store's timer table and are read a
  // window at a time as the earlier ones fire, so memory does not grow with
  // the number pending (a week of settlements: over a million at the 10M
  // benchmark). About 50 bytes a timer. Default 65,536; at least 1.
  size_t timer_window = 65'536;
};


class Processor final : private TimerQueue {
 public:
  // Loads the processor's state from `store` (empty store: a new stream).
  Processor(const RuleBook& rules, Store& store, ProcessorOptions options);

  Outcome OfferJson(std::string_view source, int64_t position, std::string_view line);
  // `lane` names the input this record came from (a Kafka partition); the
  // watermark is the smallest over the active lanes. Files use lane "".
  Outcome OfferProto(std::string_view source, int64_t position, std::string_view bytes,
                     const std::string& lane = "");
  // The same for an input decoded already (DecodeJson or DecodeProto, which
  // are pure and may run on another thread): OfferJson is
  // Offer(source, position, DecodeJson(line), "").
  Outcome Offer(std::string_view source, int64_t position, Result<pb::Event, DecodeError> decoded,
                const std::string& lane);

  // Declares the lanes the watermark waits for (e.g. the assigned partitions,
  // less those the engine found idle). A declared lane that has seen no event
  // yet holds the watermark back. Empty (the default): every lane seen so far.
  void SetActiveLanes(std::set<std::string> lanes) { active_lanes_ = std::move(lanes); }
  // Records the last processed position of `lane` in the meta row.
  void SetLanePosition(const std::string& lane, int64_t position) {
    (*meta_.mutable_lane_positions())[lane] = position;
  }
  // Forgets everything this store holds for the tenants that arrive on
  // `lane`: their projection rows, dedupe keys, rejections, buffered events and
  // timers, and the lane's position. Used when a partition is revoked: its new
  // owner rebuilds those tenants from the topic, so no stale copy remains here.
  // The store must have no uncommitted changes (commit before and after).
  // Returns the tenants dropped.
  std::vector<std::string> DropLane(const std::string& lane);

  // Why the last Offer was rejected (empty if it was not).
  const std::string& last_reason() const { return last_reason_; }
  const std::string& last_detail() const { return last_detail_; }

  // End of a finite input.
  void Flush();

  // Writes the meta row (watermark, counters, `log_position`) into the store.
  // Call before the engine commits.
  void SaveMeta(int64_t log_position);

  const RunStats& stats() const { return stats_; }
  const pb::ProcessorMeta& meta() const { return meta_; }
  size_t buffered() const { return pending_.size(); }
  // Timers held in memory (the earliest pending; see timer_window).
  size_t timers() const { return timers_.size(); }
  // Bytes the timers held take in memory (engine/memory.h's "timers").
  size_t timer_bytes() const { return timers_.bytes(); }
  // The smallest greatest-occurred_at over the active lanes, minus the
  // lateness bound; nullopt while a lane has seen nothing (or before any event).
  std::optional<int64_t> watermark_ms() const;

 private:
  void Reject(const std::string& tenant, const std::string* event_id, std::string_view reason,
              std::string_view detail, std::string_view source, int64_t position,
              std::string_view type);
  void Drain(bool flush);
  void FireDue(int64_t up_to_ms);
  // Reads the next window of timers, from horizon_ on, out of the Store.
  void LoadTimers();
  void ApplyPending(const std::string& key, const pb::Pending& p);

  void Schedule(const std::string& timer_key) override;
  void Cancel(const std::string& timer_key) override;

  Store& store_;
  ProcessorOptions options_;
  HistoryRecorder history_;  // the fold's view of store_
  Fold fold_;
  pb::ProcessorMeta meta_;
  std::map<std::string, pb::Pending> pending_;  // canonical order by key
  // Every scheduled timer is a row of the Store's timer table. timers_ holds
  // exactly those with keys below horizon_ (all of them when it is nullopt),
  // in deadline order: the next due is its front, unless it is empty and
  // horizon_ is set (then LoadTimers reads on).
  TimerSet timers_;
  std::optional<std::string> horizon_ = std::string();  // at first: none held yet
  RunStats stats_;
  std::set<std::string> active_lanes_;
  std::string last_reason_, last_detail_;
};

}  // namespace fission
