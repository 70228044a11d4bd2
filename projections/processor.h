// The canonical-order processor on typed state (spec sections 3 and 4).
//
// Offer() takes arriving input in arrival order and runs the checks of
// section 4: invalid -> rejection; same event_id seen before (within the
// tenant) -> duplicate (same content) or conflicting_duplicate; below the
// tenant's watermark -> late_event; otherwise the event is buffered and
// applied at its canonical place (occurred_at, event_id) once the tenant's
// watermark passes it, with the tenant's timers interleaved. Flush() ends a
// finite input: everything buffered is applied and every timer due by the
// greatest occurred_at seen (over all tenants; with `until_ms`, by that
// instant) fires.
//
// The watermark is per tenant (section 3 as revised): the greatest
// occurred_at among the tenant's events that passed checks 1 and 2, minus
// allowed_lateness_ms. Whether an event is late depends only on its own
// tenant's events, so any interleaving of tenants (partitions) gives the same
// books.
//
// State is typed (state.h) and held in memory. Rows leave through a
// RowSink: the change records (one per applied event or fired timer, keyed
// by sequence) as they happen and, at a full Checkpoint, each entity changed
// since the last one, the tier changes, stored events (with their content
// keys) and rejections of those batches, the events still buffered, and the
// meta row.
//
// Pure like the Fold: no clock, no I/O. Not thread-safe.
#pragma once

#include <absl/container/flat_hash_map.h>
#include <absl/container/flat_hash_set.h>

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "events/decode.h"
#include "events/rules.h"
#include "projections/outcome.h"
#include "fission/v1/records.pb.h"
#include "projections/fold.h"
#include "projections/hash_filter.h"
#include "projections/rows.h"
#include "projections/state.h"

namespace fission {

struct ProcessorOptions {
  // How far behind its tenant's greatest event time seen an event may arrive
  // and still be applied in order. Larger tolerates more disorder but delays
  // every projection (and timer) by as much. Default 60 s.
  int64_t allowed_lateness_ms = 60'000;
  // Write a version of every distributor, group, member and line at each
  // instant it changes, for as-of queries. Default on.
  bool history = true;
  // Replay up to an instant: valid events with occurred_at after it are
  // passed over (not applied, not rejected, not marked seen), and Flush fires
  // every timer due by it. Records whose time cannot be read are still
  // offered (they are rejected either way).
  std::optional<int64_t> until_ms = std::nullopt;
  // A budget for the typed state in memory, in bytes (0: none). At each
  // full checkpoint past it, finished entities leave memory, oldest first, until
  // the state is back under seven eighths of it: orders whose commission
  // lines are all settled or void, with those lines (and a closed group with
  // all its orders), and shares. An event that names one brings it back from
  // its row. Members, distributor totals, forming groups, lines still held
  // or pending, timers and the dedupe set's hashes stay: they bound what the
  // budget can reach (engine/README, "Memory").
  uint64_t memory_budget_bytes = 0;
};

using fission::Outcome;
using fission::RunStats;

class Processor final : private EntityFaults {
 public:
  // `sink` receives every row the processor writes; it must outlive it.
  Processor(const RuleBook& rules, RowSink& sink, ProcessorOptions options);
  ~Processor();

  // Loads the state a previous processor checkpointed (an empty source: a
  // new stream). Call once, before the first Offer. `rows` must outlive the
  // processor: the dedupe check reads the first content of old event ids
  // from it (it must see what the sink was given before each checkpoint).
  void Load(RowSource& rows);

  // `lane` names the input this record came from (a Kafka partition, ""
  // for files); the data dir remembers each tenant's lane for DropLane.
  // `content_key`: ContentKey of a decoded event when the caller computed it
  // already (on the decoding thread); empty: computed here. `log_seq`: the
  // embedded log's sequence of the record, when it is in the log (the stored
  // event then refers to it instead of holding a copy); 0 when not.
  Outcome Offer(std::string_view source, int64_t position, Result<pb::Event, DecodeError> decoded,
                const std::string& lane, std::string_view content_key = {}, int64_t log_seq = 0);
  Outcome OfferJson(std::string_view source, int64_t position, std::string_view line) {
    return Offer(source, position, DecodeJson(line), "");
  }
  // The bytes of a fission.v1.Event (Kafka).
  Outcome OfferProto(std::string_view source, int64_t position, std::string_view bytes, const std::string& lane) {
    return Offer(source, position, DecodeProto(bytes), lane);
  }

  // Why the last Offer was rejected (empty if it was not).
  const std::string& last_reason() const { return last_reason_; }
  const std::string& last_detail() const { return last_detail_; }

  // End of a finite input.
  void Flush();

  // A full checkpoint writes what the batches since the last full one
  // changed: each dirtied entity once, the buffered events that are new
  // (and deletes those applied since), and the meta row with
  // `log_position`. After it, the sink holds everything a restart needs, and
  // the memory budget is applied (Evict).
  //
  // A light one (`full` false) writes nothing itself. The rows written as
  // they happen (change records, stored events, rejections, tier changes)
  // have gone to the sink already; the sink's contract (StateDb::Commit) is
  // that those a restart loads (all but the change records, which are keyed
  // by sequence and never read at start) land with the next full checkpoint,
  // never ahead of the position they belong to. A restart after light
  // checkpoints loads the last full one and folds the log records after its
  // position again, which writes the same changes under the same keys.
  // Light checkpoints let a commit carry the log and history alone:
  // entities changed in many batches are written once per full checkpoint
  // instead of once per batch.
  void Checkpoint(int64_t log_position, bool full = true);

  // Records the last processed position of `lane` in the meta row.
  void SetLanePosition(const std::string& lane, int64_t position) {
    (*meta_.mutable_lane_positions())[lane] = position;
  }
  // Forgets everything of the tenants that arrive on `lane` (a revoked
  // partition: its new owner rebuilds them): their state in memory and, through
  // the sink, their rows (projections, stored events, rejections, buffered
  // events; their changes stay in table V, unreachable), and the lane's position. Returns the
  // tenants. Checkpoint afterwards to make it durable.
  std::vector<std::string> DropLane(const std::string& lane);

  const RunStats& stats() const { return stats_; }
  const pb::ProcessorMeta& meta() const { return meta_; }
  const State& state() const { return state_; }
  size_t buffered() const;
  size_t timers() const;
  // An estimate of the bytes the state in memory takes (entities, ids, index
  // tables, dedupe keys, timers, buffered events): engine/memory.h's
  // "typed_state". Walks the tenants: call it per report, not per event.
  uint64_t MemoryBytes() const;
  // The cheap estimate of MemoryBytes that the memory budget is held to
  // (entity counts times their sizes): call it as often as you like.
  uint64_t EstimatedBytes() const;
  // Whether a full checkpoint (where Evict runs) is due for the memory
  // budget: the state is over it, and has grown by a sixteenth of it since
  // the last eviction, which cannot always get back under it (members and
  // open work stay). Without the second condition a state stuck over its
  // budget made every commit a full checkpoint: at 10M events, a third of
  // all commits, each a table file for compaction to merge.
  bool EvictionDue() const;
  // The tenant's watermark; nullopt before any of its events passed check 2.
  std::optional<int64_t> watermark_ms(std::string_view tenant) const;

 private:
  struct Pending {
    pb::Event event;
    uint32_t source = 0;  // State::InternSource
    int64_t position = 0;
    bool persisted = false;  // a p row holds it
  };
  struct ContentId {
    uint64_t hi = 0, lo = 0;
    bool operator==(const ContentId&) const = default;
  };
  struct Run {  // one tenant's processing state
    Tenant* t = nullptr;
    TimerHeap timers;
    std::map<std::string, Pending> pending;  // by PendingKey: canonical order
    // The dedupe set of check 2: a filter of the 64-bit hashes of every
    // event_id seen (about two bytes an id), the exact hashes of the ids
    // whose first sighting was a rejection (few), and the first content of
    // the ids first seen since the checkpoint before last (marked with the
    // full checkpoint that writes them: `generation` is the next one's
    // number, and each full checkpoint drops those of the one before last).
    // The first content of an older id is read back (FirstSighting) from its
    // stored event, which an earlier commit holds, or from its rejection; a
    // "maybe" that matches no such row is another id's. One table whose
    // entries age out keeps its size from one checkpoint to the next: a
    // table cleared at every checkpoint was reallocated and grown again,
    // a tenth of the fold thread.
    HashFilter seen;
    absl::flat_hash_set<uint64_t> first_rejected;
    struct FirstContent {
      ContentId content;
      uint32_t generation = 0;
    };
    StrMap<std::string, FirstContent> first_contents;
    uint32_t generation = 0;
    std::optional<int64_t> max_seen;
    // Every timer due by this instant has been popped (FireDue).
    int64_t timers_through_ms = INT64_MIN;
    // Hashes (EvictedHash) of the orders, groups and shares that left
    // memory: a Find that misses reads a row only when the filter says
    // "maybe" (a new id does so for 1 in 150 or fewer, and finds no row).
    HashFilter evicted;
  };
  static ContentId IdOf(std::string_view content_key);
  static uint64_t IdHash(std::string_view event_id);
  // The content `id` was first seen with in this tenant; nullopt if never.
  // `h`: IdHash(id), computed once per offer.
  std::optional<ContentId> FirstSighting(Run& r, std::string_view id, uint64_t h);
  // `rejected`: this first sighting is a rejection (its row carries the content).
  void MarkSeen(Run& r, std::string_view id, uint64_t h, ContentId content, bool rejected);

  Run& RunOf(std::string_view tenant);

  // Rows to typed state, for Load and for the faults. Each resolves the
  // indexes it refers to by id (members, orders), so what it refers to is in
  // memory first.
  const RuleVersion* RuleOf(std::string_view tenant, const std::string& name, int64_t at_ms) const;
  void DecodeOrder(Tenant& t, Idx i, const pb::Order& row);
  // A new line, linked from its order (a commission line); a pending one gets its timer.
  Idx DecodeLine(Run& r, const pb::Line& row);
  void DecodeGroup(Run& r, Idx gi, const pb::Group& row);  // a forming one gets its timer
  void DecodeShare(Tenant& t, Idx i, const pb::Share& row);

  // EntityFaults: brings back what Evict sent out.
  Idx FaultOrder(Tenant& t, std::string_view id) override;
  Idx FaultGroup(Tenant& t, std::string_view id) override;
  Idx FaultShare(Tenant& t, std::string_view id) override;
  bool GroupEvicted(Tenant& t, std::string_view id) override;
  // Adds order `id` from its row, with its commission lines.
  Idx LoadOrder(Run& r, std::string_view id, const pb::Order& row);
  static uint64_t EvictedHash(Table table, std::string_view id);
  // The row of an evicted entity of `table`; nullopt when `id` was not
  // evicted (or the filter's "maybe" was wrong: no row).
  template <class Row>
  std::optional<Row> EvictedRow(Run& r, Table table, std::string_view id);
  static uint64_t RunBytes(const Run& r);  // EstimatedBytes of one tenant

  // Holds the typed state under options_.memory_budget_bytes (see there).
  void Evict();
  // Evicts order oi with its lines, or the closed group it belongs to with
  // all of that group's orders; false (nothing changed) when something of
  // it still waits (a line held or pending, a forming group).
  bool EvictOrderUnit(Run& r, Idx oi);
  void EvictOrder(Run& r, Idx oi);
  void Reject(const std::string& tenant, const std::string* event_id, std::string_view reason,
              std::string_view detail, std::string_view source, int64_t position, std::string_view type,
              std::optional<std::string_view> first_content_key = std::nullopt);
  void Drain(Run& r, bool flush);
  void FireDue(Run& r, int64_t up_to_ms);
  void ApplyPending(Run& r, const std::string& key, Pending& p);
  void Record(Run& r, int64_t at_ms, const Cause* cause, std::string_view timer);
  void StoreEvent(const pb::Event& e, std::string_view source, int64_t position, std::string_view content_key,
                  int64_t log_seq);


  const RuleBook& rules_;
  RowSink& sink_;
  ProcessorOptions options_;
  State state_;
  Fold fold_;
  pb::ProcessorMeta meta_;
  std::map<std::string, std::unique_ptr<Run>, std::less<>> runs_;
  Run* last_run_ = nullptr;  // the tenant of the last Offer: most streams have one
  std::vector<std::string> unpersisted_deletes_;  // p keys applied since the last checkpoint
  RunStats stats_;
  std::string last_reason_, last_detail_;
  RowSource* rows_ = nullptr;  // what Load read; dedupe reads go here
  RowEncoder encoder_;
  uint64_t evicted_to_ = 0;  // EstimatedBytes after the last Evict
  // meta_.applied_by_type's counters, by event type (found on first use:
  // a protobuf map's values stay where they are).
  std::array<int64_t*, 6> applied_counters_{};
  std::string buf_, read_buf_;
};

}  // namespace fission
