// The typed core (projections/processor.h) alone, without the engine,
// against the simulator's independent reference fold: seeded streams with disorder, duplicates, invalid lines,
// several inputs and restarts (a checkpoint, then a new processor that loads
// what the old one wrote), with the revised section 3 (per-tenant watermark).
#include <gtest/gtest.h>

#include <sstream>

#include "projections/export.h"
#include "projections/processor.h"
#include "tests/sim/sim.h"

namespace fission {
namespace {

struct CoreRun {
  std::vector<std::string> lines;
  int64_t restarts = 0;
};

CoreRun RunCore(const sim::Plan& plan) {
  CoreRun out;
  auto rules = ParseRules(sim::RulesJson(plan.rules));
  EXPECT_TRUE(rules.ok());
  MemStore sink;
  const ProcessorOptions opt{.allowed_lateness_ms = plan.allowed_lateness_ms};
  auto p = std::make_unique<Processor>(rules.value(), sink, opt);
  p->Load(sink);
  int64_t log = 0;
  for (const sim::Input& in : plan.inputs) {
    int64_t position = 0;
    for (const sim::Arrival& a : in.lines) {
      ++position;
      if (a.line.find_first_not_of(" \t") == std::string::npos) continue;
      p->Offer(in.source, position, DecodeJson(a.line.substr(0, kMaxEventBytes + 1)), "");
      ++log;
    }
    if (in.ending == sim::Ending::kFinish) p->Flush();
    p->Checkpoint(log);
    if (in.ending == sim::Ending::kRestart) {
      p = std::make_unique<Processor>(rules.value(), sink, opt);
      p->Load(sink);
      ++out.restarts;
    }
  }
  std::ostringstream os;
  ExportAll(sink, os);
  std::istringstream is(os.str());
  for (std::string l; std::getline(is, l);) out.lines.push_back(l);
  return out;
}

TEST(Core, MatchesTheReferenceFoldOnSeededStreamsWithRestarts) {
  int64_t restarts = 0, lines = 0;
  for (uint64_t seed = 1; seed <= 150; ++seed) {
    const sim::Plan plan = sim::Generate(seed, sim::GenOptions{.events = 400, .faults = false});
    const CoreRun run = RunCore(plan);
    const std::string diff = sim::Compare(run.lines, sim::ReferenceExport(plan));
    ASSERT_EQ(diff, "") << "seed " << seed;
    restarts += run.restarts;
    lines += static_cast<int64_t>(run.lines.size());
  }
  EXPECT_GT(restarts, 20);  // the plans did restart the processor
  EXPECT_GT(lines, 10'000);
}

}  // namespace
}  // namespace fission
