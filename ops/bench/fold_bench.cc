// fission_fold_bench: the fold thread's cost, in memory, per event.
//
// Reads a JSONL stream, decodes the first --events lines up front (decoding is
// not timed: it runs on another thread in the engine), then times the typed
// core (projections/processor.h) over the decoded events, with a checkpoint
// every --batch events that encodes each dirtied entity (write-behind) into a
// sink that counts the rows and bytes it is handed: the folding thread's
// whole share of an ingest, without RocksDB. Prints events/s, microseconds per
// event, and rows and bytes written per event. Figures only; it asserts
// nothing. (Until 2026-12 it also timed the Store-port fold it replaced.)
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <chrono>
#include <fstream>
#include <iostream>
#include <map>

#include "events/decode.h"
#include "events/rules.h"
#include "projections/processor.h"

namespace {

using Clock = std::chrono::steady_clock;

// Counts what it is given, and keeps the stored events and rejections,
// which the dedupe check reads back (for a resent event id), as a store would.
class CountingSink final : public fission::RowSink, public fission::RowSource {
 public:
  void Put(fission::Table t, std::string_view key, std::string_view value) override {
    if (t == fission::Table::kEvent || t == fission::Table::kRejection) {
      kept_[std::string(1, static_cast<char>(t)).append(key)] = value;
    }
    ++rows;
    bytes += static_cast<int64_t>(key.size() + value.size());
    auto& [n, b] = by_table[static_cast<char>(t)];
    ++n;
    b += static_cast<int64_t>(key.size() + value.size());
  }
  void Delete(fission::Table, std::string_view) override { ++rows; }
  void DeletePrefix(fission::Table, std::string_view) override { ++rows; }
  void ScanRows(fission::Table t, std::string_view prefix, const Fn& fn) override {
    const std::string p = std::string(1, static_cast<char>(t)).append(prefix);
    for (auto it = kept_.lower_bound(p); it != kept_.end() && it->first.starts_with(p); ++it) {
      fn(std::string_view(it->first).substr(1), it->second);
    }
  }
  bool GetRow(fission::Table t, std::string_view key, std::string* value) override {
    auto it = kept_.find(std::string(1, static_cast<char>(t)).append(key));
    if (it == kept_.end()) return false;
    *value = it->second;
    return true;
  }
  int64_t rows = 0, bytes = 0;
  std::map<char, std::pair<int64_t, int64_t>> by_table;  // table byte (keys.h): rows, bytes

 private:
  std::map<std::string, std::string, std::less<>> kept_;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"The fold thread's cost per event, in memory (figures only)"};
  std::string events_path, rules_path;
  int64_t max_events = 1'000'000;
  int64_t batch = 8192;
  bool history = true;
  app.add_option("events", events_path, "JSONL stream (fission generate)")->required()->check(CLI::ExistingFile);
  app.add_option("--rules", rules_path, "Rules file")->required()->check(CLI::ExistingFile);
  app.add_option("--events", max_events, "Events to fold (the first N lines)")->check(CLI::PositiveNumber);
  app.add_option("--batch", batch, "Events per checkpoint")->check(CLI::PositiveNumber);
  app.add_flag("!--no-history", history, "Write no history versions");
  CLI11_PARSE(app, argc, argv);

  auto rules = fission::LoadRulesFile(rules_path);
  if (!rules.ok()) return std::cerr << rules.error().message << "\n", 2;
  std::vector<fission::Result<fission::pb::Event, fission::DecodeError>> decoded;
  {
    std::ifstream in(events_path);
    std::string line;
    while (static_cast<int64_t>(decoded.size()) < max_events && std::getline(in, line)) {
      decoded.push_back(fission::DecodeJson(line));
    }
  }
  const auto n = static_cast<int64_t>(decoded.size());
  std::cout << fmt::format("{} events decoded; history {}\n", n, history ? "on" : "off");
  {
    CountingSink sink;
    fission::Processor p(rules.value(), sink, fission::ProcessorOptions{.history = history});
    p.Load(sink);
    const auto t0 = Clock::now();
    int64_t pos = 0;
    for (auto& d : decoded) {
      p.Offer("bench", ++pos, std::move(d), "");  // as the engine hands it over
      if (pos % batch == 0) p.Checkpoint(pos);
    }
    p.Flush();
    p.Checkpoint(pos);
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    const double rate = static_cast<double>(n) / s;
    std::cout << fmt::format("fold  {:>10.0f} events/s  {:>6.2f} us/event  {:.2f} rows and {:.0f} bytes written per event\n",
                             rate, 1e6 * s / static_cast<double>(n), static_cast<double>(sink.rows) / static_cast<double>(n),
                             static_cast<double>(sink.bytes) / static_cast<double>(n));
    for (const auto& [t, rb] : sink.by_table) {
      std::cout << fmt::format("  table {}  {:>5.2f} rows  {:>4.0f} bytes per event\n", t,
                               static_cast<double>(rb.first) / static_cast<double>(n),
                               static_cast<double>(rb.second) / static_cast<double>(n));
    }
  }
  return 0;
}
