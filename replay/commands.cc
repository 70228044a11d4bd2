#include "replay/commands.h"

#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <iostream>

#include "engine/engine.h"
#include "engine/memory.h"
#include "events/time.h"
#include "replay/archive.h"
#include "replay/compare.h"
#include "replay/source.h"
#include "replay/statement.h"

namespace fission {
namespace {

namespace fs = std::filesystem;

int Fail(const std::string& msg, int code = 2) {
  std::cerr << "fission: " << msg << "\n";
  return code;
}

// Progress on stderr: a line rewritten in place on a terminal, a plain line
// every 5 s otherwise (logs, CI).
class Progress {
 public:
  Progress(std::string verb, std::optional<int64_t> total, bool quiet)
      : verb_(std::move(verb)), total_(total), quiet_(quiet), tty_(isatty(STDERR_FILENO) != 0),
        start_(Clock::now()), last_(start_) {}
  void Update(int64_t done, bool final = false) {
    if (quiet_) return;
    const auto now = Clock::now();
    if (!final && now - last_ < (tty_ ? std::chrono::milliseconds(250) : std::chrono::milliseconds(5000))) return;
    last_ = now;
    const double secs = std::chrono::duration<double>(now - start_).count();
    const double rate = secs > 0 ? static_cast<double>(done) / secs : 0;
    std::string eta;
    if (total_ && *total_ > 0 && rate > 0 && !final) {
      const auto left = static_cast<int64_t>(static_cast<double>(std::max<int64_t>(*total_ - done, 0)) / rate);
      eta = fmt::format(", {:.0f}%, ETA {}:{:02}", 100.0 * static_cast<double>(done) / static_cast<double>(*total_),
                        left / 60, left % 60);
    }
    std::cerr << fmt::format("{}{} {} events{}, {:.0f} events/s{}", tty_ ? "\r" : "", verb_, done,
                             total_ ? fmt::format(" of {}", *total_) : "", rate, eta)
              << (tty_ && !final ? "    " : "\n");
  }

 private:
  using Clock = std::chrono::steady_clock;
  std::string verb_;
  std::optional<int64_t> total_;
  bool quiet_, tty_;
  Clock::time_point start_, last_;
};

std::optional<int64_t> ParseTime(const std::string& s, const char* flag, std::string* err) {
  auto t = ParseRfc3339(s);
  if (!t) {
    *err = fmt::format("{} '{}': not an RFC 3339 time with an offset, e.g. 2026-11-01T00:00:00+08:00", flag, s);
    return std::nullopt;
  }
  return t->v;
}

}  // namespace

int RunReplay(const ReplayArgs& a) {
  auto rules = LoadRulesFile(a.rules);
  if (!rules.ok()) return Fail(rules.error().message, 1);
  std::optional<int64_t> until;
  if (!a.until.empty()) {
    std::string err;
    until = ParseTime(a.until, "--until", &err);
    if (!until) return Fail(err);
  }
  std::error_code ec;
  if (fs::exists(a.out, ec) && !fs::is_empty(a.out, ec)) {
    return Fail(fmt::format("--out '{}' exists and is not empty: a replay builds a fresh data dir", a.out));
  }
  auto source = OpenSource(a.from, a.kafka ? &*a.kafka : nullptr);
  if (!source.ok()) return Fail(source.error());
  RecordSource& src = *source.value();
  EngineOptions opt;
  opt.processor.allowed_lateness_ms = a.allowed_lateness_ms;
  opt.processor.history = !a.no_history;
  opt.processor.until_ms = until;
  opt.processor.memory_budget_bytes = a.memory_budget_bytes;
  opt.decode_thread = !a.no_decode_thread;
  opt.db = a.db;
  opt.db.sync_commits = false;  // a rebuild: synced once at the end (Engine::Finish)
  auto engine = Engine::Open(a.out, rules.value(), opt);
  if (!engine.ok()) return Fail(engine.error().message);
  Engine& e = *engine.value();
  if (!a.quiet) std::cerr << fmt::format("Replaying {} into {}{}\n", src.Describe(), a.out, until ? " up to " + FormatRfc3339(Millis(*until)) : "");
  Progress progress("replayed", src.total(), a.quiet);
  const auto start = std::chrono::steady_clock::now();
  int64_t n = 0;
  auto err = e.IngestRecords([&](pb::LogRecord* r) {
    if (!src.Next(r)) return false;
    ++n;
    return true;
  }, [&](const IngestProgress& p) { progress.Update(p.lines); });
  if (err) return Fail(fmt::format("store error, replay stopped: {}", err->message));
  if (auto serr = src.error()) {
    return Fail(fmt::format("{} (replay stopped after {} records; {} is incomplete)", *serr, n, a.out));
  }
  if (auto ferr = e.Finish()) return Fail(fmt::format("store error at end of replay: {}", ferr->message));
  progress.Update(n, true);
  // As ingest's summary (engine/README "Memory"); the source's reads are in `other`.
  if (!a.quiet) std::cerr << "memory: " << FormatMemory(e.Memory(), ReadProcessMemory()) << "\n";
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const RunStats& s = e.stats();
  const Digest d = DigestOf(e.db());
  std::cout << fmt::format("replayed {} records in {:.1f} s ({:.0f} records/s): applied {}, duplicates {}, rejected {}, "
                           "timers fired {}{}\ndigest {} ({} lines)\n",
                           n, secs, secs > 0 ? static_cast<double>(n) / secs : 0.0, s.applied, s.duplicates,
                           s.rejected_total(), s.timers_fired,
                           until ? fmt::format(", after --until {}", s.beyond_until) : "", d.hash, d.lines);
  return 0;
}

int RunArchive(const ArchiveArgs& a) {
  auto source = OpenSource(a.from, a.kafka ? &*a.kafka : nullptr);
  if (!source.ok()) return Fail(source.error());
  RecordSource& src = *source.value();
  auto w = ArchiveWriter::Create(a.out);
  if (!w.ok()) return Fail(w.error().message);
  Progress progress("archived", src.total(), a.quiet);
  pb::LogRecord r;
  int64_t n = 0;
  while (src.Next(&r)) {
    if (auto e = w.value()->Add(r)) return Fail(e->message);
    progress.Update(++n);
  }
  if (auto serr = src.error()) return Fail(fmt::format("{} (nothing was written to {})", *serr, a.out));
  if (auto e = w.value()->Finish()) return Fail(e->message);
  progress.Update(n, true);
  std::cout << fmt::format("archived {} records from {} into {} ({} bytes)\n", n, src.Describe(), a.out,
                           w.value()->bytes_written());
  return 0;
}

int RunDigest(const std::string& data_dir) {
  auto db = StateDb::OpenReadOnly(data_dir);
  if (!db.ok()) return Fail(db.error().message);
  const Digest d = DigestOf(*db.value());
  std::string kinds;
  for (const auto& [k, n] : d.kinds) kinds += fmt::format("{}{} {}", kinds.empty() ? "" : ", ", k, n);
  std::cout << fmt::format("{}  {} lines ({})\n", d.hash, d.lines, kinds);
  return 0;
}

int RunDiff(const std::string& a, const std::string& b, bool json, int max_listed) {
  auto da = StateDb::OpenReadOnly(a);
  if (!da.ok()) return Fail(da.error().message);
  auto db = StateDb::OpenReadOnly(b);
  if (!db.ok()) return Fail(db.error().message);
  DiffOptions o;
  o.max_listed = max_listed;
  const DiffReport r = Diff(*da.value(), *db.value(), o);
  if (json) {
    std::cout << Dump(r.json, 2) << "\n";
  } else {
    PrintDiff(r, a, b, std::cout);
  }
  return r.same ? 0 : 1;
}

int RunStatement(const StatementArgs& a) {
  StatementOptions o;
  std::string err;
  if (!a.from.empty()) {
    auto t = ParseTime(a.from, "--from", &err);
    if (!t) return Fail(err);
    o.from_ms = *t;
  }
  if (!a.to.empty()) {
    auto t = ParseTime(a.to, "--to", &err);
    if (!t) return Fail(err);
    o.to_ms = *t;
  }
  if (!a.tenant.empty()) o.tenant = a.tenant;
  o.movements = a.movements;
  auto db = StateDb::OpenReadOnly(a.data_dir);
  if (!db.ok()) return Fail(db.error().message);
  auto s = ComputeStatements(*db.value(), o);
  if (!s.ok()) return Fail(s.error());
  std::ios::sync_with_stdio(false);
  if (a.format == "json") {
    WriteStatementsJson(s.value(), a.movements, std::cout);
  } else {
    WriteStatementsCsv(s.value(), a.movements, std::cout);
  }
  return 0;
}

}  // namespace fission
