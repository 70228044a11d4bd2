// fission_sim: the seeded simulator from the command line (sim.h).
//
//   fission_sim --seeds 1000               seeds 1..1000, 400 events each
//   fission_sim --seed 4242                one seed (what a failure report says to run)
//   fission_sim --seed 4242 --dump out/    also write its rules, inputs and the reference export
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "tests/sim/sim.h"

namespace {

void Dump(const fission::sim::Plan& plan, const std::string& dir) {
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/rules.json") << fission::sim::RulesJson(plan.rules) << "\n";
  for (const auto& in : plan.inputs) {
    std::ofstream f(dir + "/" + in.source);
    for (const auto& a : in.lines) f << a.line << "\n";
  }
  std::ofstream ref(dir + "/reference.jsonl");
  for (const auto& l : fission::sim::ReferenceExport(plan)) ref << l << "\n";
  std::ofstream p(dir + "/plan.txt");
  p << fmt::format("seed {}\nallowed_lateness_ms {}\nsync_commits {}\nbatch_events {}\ncheckpoint_every {}\n", plan.seed,
                   plan.allowed_lateness_ms, plan.sync_commits, plan.batch_events, plan.checkpoint_every);
  p << fmt::format("decode_thread {}\nwrite_thread {}\nmemory_budget_bytes {}\ningest_min_rows {}\n", plan.decode_thread,
                   plan.write_thread, plan.memory_budget_bytes, plan.ingest_min_rows);
  for (const auto& in : plan.inputs) {
    p << fmt::format("{}: {} lines, ends with {}", in.source, in.lines.size(),
                     in.ending == fission::sim::Ending::kFinish ? "finish" : "restart");
    if (in.fault) p << fmt::format(", fault kind {} at {}", static_cast<int>(in.fault->kind), in.fault->at);
    p << "\n";
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"fission_sim: random streams through the real engine (restarts, store faults), checked against "
               "an independent reference fold of the spec"};
  uint64_t first = 1, count = 100;
  std::optional<uint64_t> one;
  fission::sim::GenOptions gen;
  bool no_faults = false, keep_going = false;
  std::string work_dir = (std::filesystem::temp_directory_path() / "fission-sim").string();
  std::string dump;
  app.add_option("--seed", one, "Run this one seed");
  app.add_option("--first", first, "First seed of the range")->capture_default_str();
  app.add_option("--seeds", count, "How many seeds, from --first")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--events", gen.events, "Valid events per seed, before re-sends and invalid lines")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{1'000'000}));
  app.add_flag("--no-faults", no_faults, "Do not inject store faults");
  app.add_flag("--keep-going", keep_going, "Report every failing seed instead of stopping at the first");
  app.add_option("--work-dir", work_dir, "Where data dirs go (a failing seed's is kept)")->capture_default_str();
  app.add_option("--dump", dump, "With --seed: write the rules, inputs, plan and reference export here");
  CLI11_PARSE(app, argc, argv);
  gen.faults = !no_faults;
  if (one) {
    first = *one;
    count = 1;
    if (!dump.empty()) Dump(fission::sim::Generate(*one, gen), dump);
  }

  const auto start = std::chrono::steady_clock::now();
  int64_t passed = 0, failed = 0, faults = 0, background = 0, restarts = 0, lines = 0;
  for (uint64_t s = first; s < first + count; ++s) {
    const auto r = fission::sim::RunSeed(s, gen, work_dir);
    faults += r.faults_injected;
    background += r.faults_in_background;
    restarts += r.restarts;
    lines += r.lines;
    if (r.ok) {
      ++passed;
    } else {
      ++failed;
      fmt::print(stderr, "{}\n", r.report);
      if (!keep_going) break;
    }
    const uint64_t done = s - first + 1;
    if (done % 25 == 0 || done == count) {
      fmt::print(stderr, "fission_sim: {}/{} seeds, {} passed, {} failed, {} lines, {} faults injected, {} restarts, {:.0f} s\n",
                 done, count, passed, failed, lines, faults, restarts,
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
  }
  fmt::print("seeds {}..{}: {} passed, {} failed; {} input lines, {} store faults injected ({} of them in "
             "RocksDB's background work), {} restarts\n",
             first, first + static_cast<uint64_t>(passed + failed) - 1, passed, failed, lines, faults, background,
             restarts);
  return failed == 0 ? 0 : 1;
}
