// fission_fold_bench: the fold thread's cost, in memory, per event.
//
// Reads a JSONL stream, decodes the first --events lines up front (timed
// apart: it runs on another thread in the engine), then times the typed
// core (projections/processor.h) over the decoded events, with a checkpoint
// every --batch events that encodes each dirtied entity (write-behind) into a
// sink that counts the rows and bytes it is handed: the folding thread's
// whole share of an ingest, without RocksDB. Prints events/s, microseconds per
// event, and rows and bytes written per event. Figures only; it asserts
// nothing. (Until 2026-12 it also timed the Store-port fold it replaced.)
#include <CLI/CLI.hpp>
#include <absl/container/flat_hash_map.h>
#include <fmt/format.h>

#include <chrono>
#include <ctime>
#include <fstream>
#include <iostream>
#include <algorithm>
#include <array>
#include <memory>
#include <map>
#include <vector>

#include "events/decode.h"
#include "events/rules.h"
#include "projections/processor.h"

namespace {

using Clock = std::chrono::steady_clock;

// Counts what it is given, and keeps the stored events and rejections,
// which the dedupe check reads back (for a resent event id), as a store would.
// Keeping them costs the fold nothing in the engine (the writer thread
// stores them): here they go into large chunks, indexed by a hash map sized
// up front, so the bench's own bookkeeping stays small beside the fold it
// times. (An ordered map of strings took a sixth of the time measured, a hash
// map of strings a quarter of the rest.)
class CountingSink final : public fission::RowSink, public fission::RowSource {
 public:
  explicit CountingSink(size_t expected_rows) { index_.reserve(expected_rows); }
  void Put(fission::Table t, std::string_view key, std::string_view value) override {
    if (t == fission::Table::kEvent || t == fission::Table::kRejection) {
      const std::string_view k = Keep(std::string(1, static_cast<char>(t)).append(key));
      index_[k] = Keep(value);
    }
    ++rows;
    bytes += static_cast<int64_t>(key.size() + value.size());
    auto& [n, b] = by_table[static_cast<unsigned char>(t)];
    ++n;
    b += static_cast<int64_t>(key.size() + value.size());
  }
  void Delete(fission::Table, std::string_view) override { ++rows; }
  void DeletePrefix(fission::Table, std::string_view) override { ++rows; }
  void ScanRows(fission::Table t, std::string_view prefix, const Fn& fn) override {
    const std::string p = std::string(1, static_cast<char>(t)).append(prefix);
    std::vector<std::pair<std::string_view, std::string_view>> found;
    for (const auto& kv : index_) {
      if (kv.first.starts_with(p)) found.push_back(kv);
    }
    std::sort(found.begin(), found.end());
    for (const auto& [k, v] : found) fn(k.substr(1), v);
  }
  bool GetRow(fission::Table t, std::string_view key, std::string* value) override {
    auto it = index_.find(std::string(1, static_cast<char>(t)).append(key));
    if (it == index_.end()) return false;
    value->assign(it->second);
    return true;
  }
  int64_t rows = 0, bytes = 0;
  std::array<std::pair<int64_t, int64_t>, 256> by_table{};  // by table byte (keys.h): rows, bytes

 private:
  std::string_view Keep(std::string_view bytes_in) {
    static constexpr size_t kChunk = 64u << 20;
    if (chunks_.empty() || used_ + bytes_in.size() > kChunk) {
      chunks_.push_back(std::make_unique<char[]>(std::max(kChunk, bytes_in.size())));
      used_ = 0;
    }
    char* at = chunks_.back().get() + used_;
    std::copy(bytes_in.begin(), bytes_in.end(), at);
    used_ += bytes_in.size();
    return {at, bytes_in.size()};
  }
  std::vector<std::unique_ptr<char[]>> chunks_;
  size_t used_ = 0;
  absl::flat_hash_map<std::string_view, std::string_view> index_;
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
  int repeat = 1;
  app.add_flag("!--no-history", history, "Write no history versions");
  app.add_option("--repeat", repeat, "Fold the events this many times (each on a new processor) and report the fastest: the machine's speed moves from run to run")
      ->check(CLI::Range(1, 100));
  CLI11_PARSE(app, argc, argv);

  auto rules = fission::LoadRulesFile(rules_path);
  if (!rules.ok()) return std::cerr << rules.error().message << "\n", 2;
  std::vector<fission::Result<fission::pb::Event, fission::DecodeError>> decoded;
  {
    std::vector<std::string> lines;
    std::ifstream in(events_path);
    std::string line;
    while (static_cast<int64_t>(lines.size()) < max_events && std::getline(in, line)) lines.push_back(line);
    decoded.reserve(lines.size());
    const auto t0 = Clock::now();
    for (const std::string& l : lines) decoded.push_back(fission::DecodeJson(l));
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    std::cout << fmt::format("decode {:>9.0f} lines/s  {:>6.2f} us/line (the decoding thread's share, for comparison)\n",
                             static_cast<double>(lines.size()) / s, 1e6 * s / static_cast<double>(lines.size()));
  }
  // The engine computes each event's content key on the decoding thread and
  // hands it over with the event: so does the bench, untimed.
  std::vector<std::string> content_keys;
  content_keys.reserve(decoded.size());
  for (const auto& d : decoded) content_keys.push_back(d.ok() ? fission::ContentKey(d.value()) : std::string());
  const auto n = static_cast<int64_t>(decoded.size());
  std::cout << fmt::format("{} events decoded; history {}\n", n, history ? "on" : "off");
  double best_s = 0, best_cpu_s = 0;
  for (int round = 0; round < repeat; ++round) {
    auto events = decoded;  // Offer takes them
    CountingSink sink(decoded.size());
    fission::Processor p(rules.value(), sink, fission::ProcessorOptions{.history = history});
    p.Load(sink);
    timespec c0{}, c1{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0);
    const auto t0 = Clock::now();
    int64_t pos = 0;
    for (auto& d : events) {
      const std::string& key = content_keys[static_cast<size_t>(pos)];
      p.Offer("bench", ++pos, std::move(d), "", key);  // as the engine hands it over
      if (pos % batch == 0) p.Checkpoint(pos);
    }
    p.Flush();
    p.Checkpoint(pos);
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c1);
    const double cpu_s = static_cast<double>(c1.tv_sec - c0.tv_sec) + 1e-9 * static_cast<double>(c1.tv_nsec - c0.tv_nsec);
    const bool last = round + 1 == repeat;
    if (round == 0 || s < best_s) best_s = s;
    if (round == 0 || cpu_s < best_cpu_s) best_cpu_s = cpu_s;
    if (!last) continue;
    const double per = static_cast<double>(n);
    std::cout << fmt::format("fold  {:>10.0f} events/s  {:>6.2f} us/event ({:.2f} us of thread CPU)  {:.2f} rows and {:.0f} bytes written per event{}\n",
                             per / best_s, 1e6 * best_s / per, 1e6 * best_cpu_s / per, static_cast<double>(sink.rows) / per,
                             static_cast<double>(sink.bytes) / per, repeat > 1 ? fmt::format(" (fastest of {})", repeat) : "");
    for (size_t t = 0; t < sink.by_table.size(); ++t) {
      const auto& [rows, bytes] = sink.by_table[t];
      if (rows == 0) continue;
      std::cout << fmt::format("  table {}  {:>5.2f} rows  {:>4.0f} bytes per event\n", static_cast<char>(t),
                               static_cast<double>(rows) / per, static_cast<double>(bytes) / per);
    }
  }
  return 0;
}
