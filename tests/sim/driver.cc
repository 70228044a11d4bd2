// Drives the real engine through a plan (sim.h): inputs, restarts, store
// faults; compares exports.
#include <fmt/format.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "engine/engine.h"
#include "engine/store/state_db.h"
#include "projections/export.h"
#include "tests/fault_fs.h"
#include "tests/sim/sim.h"

namespace fission::sim {
namespace {

std::string Text(const Input& in) {
  std::string s;
  for (const Arrival& a : in.lines) s += a.line + "\n";
  return s;
}

const char* KindName(Fault::Kind k) {
  switch (k) {
    case Fault::Kind::kFailWrite: return "failed write";
    case Fault::Kind::kFailSync: return "failed sync";
    case Fault::Kind::kDiskFull: return "disk full";
    case Fault::Kind::kPowerCut: return "power cut";
  }
  return "?";
}

}  // namespace

EngineRun RunEngine(const Plan& plan, const std::string& work_dir) {
  EngineRun run;
  auto fs = std::make_shared<test::FaultFs>();
  std::unique_ptr<rocksdb::Env> env = rocksdb::NewCompositeEnv(fs);
  auto rules = ParseRules(RulesJson(plan.rules));
  if (!rules.ok()) {
    run.error = "the generated rules were refused: " + rules.error().message;
    return run;
  }
  EngineOptions opt;
  opt.processor.allowed_lateness_ms = plan.allowed_lateness_ms;
  opt.decode_thread = plan.decode_thread;
  opt.batch_events = plan.batch_events;
  opt.checkpoint_every = plan.checkpoint_every;
  opt.db.sync_commits = plan.sync_commits;
  opt.db.write_thread = plan.write_thread;
  opt.db.ingest_min_rows = plan.ingest_min_rows;
  opt.processor.memory_budget_bytes = plan.memory_budget_bytes;
  opt.db.env = env.get();
  const std::string dir = work_dir + "/data";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(work_dir);

  std::unique_ptr<Engine> engine;
  auto open = [&]() -> bool {
    auto e = Engine::Open(dir, rules.value(), opt);
    if (!e.ok()) {
      run.error = "open failed: " + e.error().message;
      return false;
    }
    engine = std::move(e).value();
    return true;
  };
  // Feeds one input whole; ends it if the plan says so.
  auto feed = [&](const Input& in) -> std::optional<DbError> {
    std::istringstream text(Text(in));
    if (auto err = engine->IngestJsonLines(text, in.source)) return err;
    if (in.ending == Ending::kFinish) return engine->Finish();
    return std::nullopt;
  };

  for (size_t i = 0; i < plan.inputs.size(); ++i) {
    const Input& in = plan.inputs[i];
    if (!engine && !open()) return run;
    std::optional<DbError> err;
    if (!in.fault) {
      err = feed(in);
      if (err) {
        run.error = fmt::format("{}: an ingest with no fault injected failed: {}", in.source, err->message);
        return run;
      }
    } else {
      const int64_t before = fs->faults_injected();
      switch (in.fault->kind) {
        case Fault::Kind::kFailWrite: fs->FailWriteAt(in.fault->at); break;
        case Fault::Kind::kFailSync: fs->FailSyncAt(in.fault->at); break;
        case Fault::Kind::kDiskFull: fs->DiskFullAfter(in.fault->at); break;
        case Fault::Kind::kPowerCut: fs->CutPowerAt(in.fault->at); break;
      }
      err = feed(in);
      const bool hit = fs->faults_injected() > before;
      run.faults_injected += fs->faults_injected() - before;
      if (err && !hit) {
        run.error = fmt::format("{}: the ingest failed with no fault hit: {}", in.source, err->message);
        return run;
      }
      if (hit) {
        // The ingest stopped on the error; or the fault hit RocksDB's
        // background work (a flush), which the next write or the close would
        // report. Either way the process stops, the fault clears, and a new
        // process re-feeds the whole input: what was acknowledged must still
        // be there, and the rest is applied exactly once.
        if (!err) ++run.faults_in_background;
        engine.reset();
        if (in.fault->kind == Fault::Kind::kPowerCut) {
          if (auto s = fs->DropUnsyncedData(); !s.ok()) {
            run.error = "dropping unsynced data failed: " + s.ToString();
            return run;
          }
        }
        fs->ClearFaults();
        ++run.restarts;
        if (!open()) return run;
        if (auto again = feed(in)) {
          run.error = fmt::format("{}: the re-fed input failed after the {} cleared: {}", in.source, KindName(in.fault->kind), again->message);
          return run;
        }
      }
      fs->ClearFaults();
    }
    if (in.ending == Ending::kRestart) {
      engine.reset();
      ++run.restarts;
    }
  }
  engine.reset();

  auto db = StateDb::OpenReadOnly(dir);
  if (!db.ok()) {
    run.error = "opening the data dir to export failed: " + db.error().message;
    return run;
  }
  std::ostringstream out;
  ExportAll(*db.value(), out);
  std::istringstream lines(out.str());
  for (std::string l; std::getline(lines, l);) run.lines.push_back(l);
  return run;
}

std::string Compare(const std::vector<std::string>& engine, const std::vector<std::string>& reference) {
  using nlohmann::json;
  auto label = [](const json& j) {
    return fmt::format("{} {}/{}", j.value("kind", "?"), j.value("tenant", "?"),
                       j.contains("id") ? j["id"].dump() : "?");
  };
  const size_t n = std::min(engine.size(), reference.size());
  for (size_t i = 0; i < n; ++i) {
    const json r = json::parse(reference[i]);
    json e;
    try {
      e = json::parse(engine[i]);
    } catch (const json::exception& ex) {
      return fmt::format("export line {} is not JSON: {}", i + 1, ex.what());
    }
    if (label(e) != label(r)) {
      return fmt::format("export line {}: the engine has {}, the reference {}\n  engine:    {}\n  reference: {}", i + 1,
                         label(e), label(r), engine[i], reference[i]);
    }
    for (auto it = r.begin(); it != r.end(); ++it) {
      if (!e.contains(it.key()) || e[it.key()] != it.value()) {
        return fmt::format("export line {} ({}): field '{}' is {} in the engine, {} in the reference\n"
                           "  engine:    {}\n  reference: {}",
                           i + 1, label(r), it.key(), e.contains(it.key()) ? e[it.key()].dump() : "absent",
                           it.value().dump(), engine[i], reference[i]);
      }
    }
  }
  if (engine.size() != reference.size()) {
    const bool more = engine.size() > reference.size();
    return fmt::format("the engine exports {} lines, the reference {}; first extra line ({}): {}", engine.size(),
                       reference.size(), more ? "engine" : "reference", more ? engine[n] : reference[n]);
  }
  return "";
}

SeedResult RunSeed(uint64_t seed, const GenOptions& options, const std::string& work_dir) {
  SeedResult res;
  const Plan plan = Generate(seed, options);
  const std::string dir = fmt::format("{}/seed-{}", work_dir, seed);
  const EngineRun run = RunEngine(plan, dir);
  res.faults_injected = run.faults_injected;
  res.faults_in_background = run.faults_in_background;
  res.restarts = run.restarts;
  for (const Input& in : plan.inputs) res.lines += static_cast<int64_t>(in.lines.size());
  res.events = options.events;
  std::string diff = run.error;
  if (diff.empty()) diff = Compare(run.lines, ReferenceExport(plan));
  if (diff.empty()) {
    std::filesystem::remove_all(dir);
    res.ok = true;
    return res;
  }
  res.report = fmt::format(
      "seed {} failed: {}\n  reproduce: fission_sim --seed {} --events {}{}\n  data dir kept: {}/data", seed, diff,
      seed, options.events, options.faults ? "" : " --no-faults", dir);
  return res;
}

}  // namespace fission::sim
