// The seeded simulator (after TigerBeetle's VOPR, written for our domain).
//
// One seed decides everything: the rules (1-3 versions per tenant, changes in
// the middle of the stream), a stream of events between a few dozen members
// over a few days, and how it arrives: out of order within and beyond the
// lateness bound, re-sent, re-sent with different content, mixed with invalid
// lines, cut into several inputs, with engine restarts and store faults in
// between. The stream is generated as `SimEvent`s (the model), then written
// as JSON lines for the engine.
//
// Two independent computations of the same stream are then compared:
//   - `RunEngine`: the real embedded engine (RocksDB, the log, the processor,
//     the fold) driven through the plan's inputs, restarts and faults;
//   - `ReferenceExport`: a deliberately simple in-memory fold written from the
//     spec (docs/domain contract sections 3-7) and projections/README's
//     decisions, sharing no code with projections/ or events/.
// `Compare` names the first line where they differ. A failure report always
// carries the seed; `fission_sim --seed N` replays exactly that run.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "engine/store/state_db.h"

namespace fission::sim {

// ---- the rules, as the reference reads them --------------------------------

struct SimTier {
  std::string name;
  int64_t min_growth = 0;
};

struct SimVersion {
  std::string name;
  int64_t effective_from_ms = 0;
  int utc_offset_minutes = 480;
  std::vector<int64_t> levels_bps;
  bool self_purchase = false;
  int freeze_days = 7;
  std::string binding = "first_touch";  // first_touch | overwrite | window
  int binding_window_days = 30;
  std::string refund_after_settlement = "negative_balance";  // | cap_at_balance | none
  std::map<std::string, int64_t> tier_bonus_bps;
  bool virtual_success = false;
  int64_t leader_bonus_fen = 0;
  int64_t growth_per_yuan = 1, points_per_yuan = 0, checkin_growth = 5;
  bool demote_on_refund = true;
  std::vector<SimTier> tiers;
  std::vector<int64_t> points_by_day;
  std::string after_last_day = "repeat_last";  // | restart
};

struct SimRules {
  std::map<std::string, std::vector<SimVersion>> tenants;  // "default" always present
};

// ---- the stream -------------------------------------------------------------

// A valid event, with every field the model knows (absent optionals empty).
struct SimEvent {
  std::string id, tenant = "default", type;
  int64_t t = 0;  // occurred_at, ms since the epoch
  std::string member, sharer, share_id, group_id, order_id, product_id, channel;
  bool opens = false;
  int64_t size = 0, expires_at = 0;
  int64_t amount_fen = 0, base_fen = 0;  // base_fen: commission_base_fen (defaults to amount)
  bool operator==(const SimEvent&) const = default;
};

// One line of one input, as it arrives.
struct Arrival {
  std::string line;  // what the engine reads ("" = a blank line)
  // The model's reading of the line: a valid event, or an invalid one.
  std::optional<SimEvent> event;
  std::string invalid_reason;            // "invalid_event" | "unknown_type" when !event
  std::optional<std::string> invalid_id;  // the well-formed event_id an invalid line carries
  std::string invalid_tenant = "default";
};

// How one input ends.
enum class Ending {
  kFinish,   // the input is complete: Finish() applies everything buffered
  kRestart,  // the process stops and a new one opens the data dir (no Finish)
};

// A store fault armed while one input is ingested; the input is then fed
// again, whole, once the fault clears (as an operator would re-run it).
struct Fault {
  enum class Kind { kFailWrite, kFailSync, kDiskFull, kPowerCut } kind;
  int64_t at = 0;  // the n-th append (or sync) after the data dir opened
};

struct Input {
  std::string source;  // its file name in rejections
  std::vector<Arrival> lines;
  Ending ending = Ending::kFinish;
  std::optional<Fault> fault;
};

struct Plan {
  uint64_t seed = 0;
  SimRules rules;
  int64_t allowed_lateness_ms = 60'000;
  bool sync_commits = true;
  size_t batch_events = 64;
  size_t checkpoint_every = 16;  // commits per full checkpoint (EngineOptions)
  // DbOptions::ingest_min_rows: 0 (never), 1 (every checkpoint as a table
  // file) or the default.
  size_t ingest_min_rows = DbOptions{}.ingest_min_rows;
  // Decode on a second thread ahead of the fold (EngineOptions::decode_thread).
  bool decode_thread = true;
  // Write commits on the store's writer thread (DbOptions::write_thread).
  bool write_thread = true;
  // ProcessorOptions::memory_budget_bytes: 0, or so small that every commit
  // evicts whatever is finished and events bring it back.
  uint64_t memory_budget_bytes = 0;
  std::vector<Input> inputs;  // the last one ends with kFinish
  // What the generator did, for the report.
  std::map<std::string, int64_t> counts;
};

struct GenOptions {
  int64_t events = 400;  // valid events generated before the hostile extras
  bool faults = true;
};

Plan Generate(uint64_t seed, const GenOptions& options);

// The rules file the engine reads (schemas/README's format).
std::string RulesJson(const SimRules& rules);

// The canonical export by the reference fold: one JSON object per line, with
// the fields spec section 7 requires.
std::vector<std::string> ReferenceExport(const Plan& plan);

struct EngineRun {
  std::vector<std::string> lines;  // the engine's export
  int64_t faults_injected = 0;
  int64_t faults_in_background = 0;  // hit a flush, not the ingest's own writes
  int64_t restarts = 0;
  std::string error;  // non-empty: the engine failed in a way the plan did not inject
};

// Drives the real engine through the plan in a fresh directory under `work_dir`.
EngineRun RunEngine(const Plan& plan, const std::string& work_dir);

// "" when every reference line's fields equal the engine line's at the same
// place (the engine may export extra fields); else a description of the first
// difference.
std::string Compare(const std::vector<std::string>& engine, const std::vector<std::string>& reference);

struct SeedResult {
  bool ok = false;
  std::string report;  // on failure: the seed, the difference, how to reproduce
  int64_t events = 0, lines = 0, faults_injected = 0, faults_in_background = 0, restarts = 0;
};

// Generate, run both, compare.
SeedResult RunSeed(uint64_t seed, const GenOptions& options, const std::string& work_dir);

}  // namespace fission::sim
