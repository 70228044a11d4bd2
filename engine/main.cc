// fission: the command-line entry point. Wires sources, the processor and the
// RocksDB store together; everything else lives in the modules.
#include <fmt/format.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <tuple>
#include <atomic>
#include <csignal>
#include <thread>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <vector>

#include "engine/engine.h"
#include "engine/kafka.h"
#include "engine/memory.h"
#include "engine/query.h"
#include "engine/server.h"
#include "events/rules.h"
#include "events/time.h"
#include "projections/export.h"
#include "replay/commands.h"
#include "replay/synth.h"

namespace fs = std::filesystem;
using namespace fission;

namespace {

int Fail(const std::string& msg, int code = 1) {
  std::cerr << "fission: " << msg << "\n";
  return code;
}

std::string Thousands(int64_t n) {
  const std::string digits = std::to_string(n < 0 ? -n : n);
  std::string s = n < 0 ? "-" : "";
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) s.push_back(',');
    s.push_back(digits[i]);
  }
  return s;
}

std::string Yuan(int64_t fen) {
  return fmt::format("{}{}.{:02}", fen < 0 ? "-" : "", Thousands((fen < 0 ? -fen : fen) / 100), (fen < 0 ? -fen : fen) % 100);
}

std::string SummaryLine(const RunStats& s, double seconds) {
  static const char* kTypes[] = {"?", "share", "join", "payment", "refund", "checkin"};
  std::string by_type;
  for (size_t i = 1; i < 6; ++i) {
    if (s.applied_by_type[i]) by_type += fmt::format("{}{} {}", by_type.empty() ? "" : ", ", kTypes[i], s.applied_by_type[i]);
  }
  std::string rej;
  for (auto& [r, n] : s.rejected) rej += fmt::format("{}{} {}", rej.empty() ? "" : ", ", r, n);
  const double rate = seconds > 0 ? static_cast<double>(s.offered) / seconds : 0;
  // Under --memory-mb: what left memory at commits, and what events brought back.
  const std::string budget =
      s.evicted > 0 ? fmt::format(" | evicted {}, brought back {}", Thousands(s.evicted), Thousands(s.faulted)) : "";
  return fmt::format("read {} | applied {} ({}) | duplicates {} | rejected {}{} | timers fired {} | {:.1f} s, {} events/s{}",
                     s.offered, s.applied, by_type.empty() ? "none" : by_type, s.duplicates,
                     s.rejected_total(), rej.empty() ? "" : " (" + rej + ")", s.timers_fired, seconds,
                     Thousands(static_cast<int64_t>(rate)), budget);
}

constexpr const char* kNoHistoryHelp =
    "Keep no row history (faster ingest; as-of queries then answer 409 for changes made without it)";
constexpr const char* kNoDecodeThreadHelp =
    "Decode events on the folding thread instead of a second one (same results; for one-core machines and comparisons)";

// Memory settings shared by the commands that fold (ingest, run, replay).
struct MemoryArgs {
  size_t memory_mb = EngineOptions::kDefaultMemoryMb;
  size_t block_cache_mb = DbOptions{}.block_cache_bytes >> 20;
  size_t write_buffer_mb = DbOptions{}.write_buffer_bytes >> 20;
  void ApplyTo(DbOptions* db) const {
    db->block_cache_bytes = block_cache_mb << 20;
    db->write_buffer_bytes = write_buffer_mb << 20;
  }
  void ApplyTo(EngineOptions* opt) const {
    ApplyTo(&opt->db);
    opt->SetMemoryBudget(memory_mb);
  }
};

void AddMemoryOptions(CLI::App* cmd, MemoryArgs& m) {
  cmd->add_option("--memory-mb", m.memory_mb,
                  "The process's memory budget in MiB. The projection state gets what the block cache, the "
                  "memtables and a 256 MiB reserve leave: past that, finished orders (every commission line settled "
                  "or void) with their lines, closed groups and shares leave memory at each full checkpoint and come back "
                  "from RocksDB when an event names them. Members, distributor totals and open work always stay")
      ->capture_default_str()
      ->check(CLI::Range(size_t{16}, size_t{1} << 24));
  cmd->add_option("--block-cache-mb", m.block_cache_mb,
                  "RocksDB block cache in MiB (data blocks, indexes and filters): the main bound on memory; "
                  "larger is faster once the data dir outgrows it")
      ->capture_default_str()
      ->check(CLI::Range(size_t{8}, size_t{1} << 20));
  cmd->add_option("--write-buffer-mb", m.write_buffer_mb,
                  "MiB of RocksDB memtables, both column families together (about 1.5x this is held while one "
                  "flushes); larger means fewer, larger flushes")
      ->capture_default_str()
      ->check(CLI::Range(size_t{8}, size_t{65536}));
}

struct IngestArgs {
  std::string data_dir;
  std::string rules;
  int64_t allowed_lateness_ms = 60'000;
  std::vector<std::string> inputs;
  bool no_sync = false;
  size_t batch = EngineOptions{}.batch_events;
  size_t checkpoint_every = EngineOptions{}.checkpoint_every;
  bool quiet = false;
  bool no_history = false;
  bool no_decode_thread = false;
  MemoryArgs memory;
};

// Runs an ingest; returns the exit code. `stats_out` receives the run's stats.
int RunIngest(const IngestArgs& a, RunStats* stats_out, double* seconds_out) {
  auto rules = LoadRulesFile(a.rules);
  if (!rules.ok()) return Fail(rules.error().message);
  EngineOptions opt;
  opt.processor.allowed_lateness_ms = a.allowed_lateness_ms;
  opt.processor.history = !a.no_history;
  opt.db.sync_commits = !a.no_sync;
  a.memory.ApplyTo(&opt);
  opt.batch_events = a.batch;
  opt.checkpoint_every = a.checkpoint_every;
  opt.decode_thread = !a.no_decode_thread;
  const auto start = std::chrono::steady_clock::now();
  auto engine = Engine::Open(a.data_dir, rules.value(), opt);
  if (!engine.ok()) return Fail(engine.error().message, 2);
  Engine& e = *engine.value();
  const bool tty = isatty(STDERR_FILENO) && !a.quiet;
  auto last = std::chrono::steady_clock::now();
  for (const std::string& in : a.inputs) {
    std::ifstream file;
    std::istream* stream = &std::cin;
    if (in != "-") {
      file.open(in, std::ios::binary);
      if (!file) return Fail(fmt::format("cannot read '{}'", in));
      stream = &file;
    }
    auto err = e.IngestJsonLines(*stream, in, [&](const IngestProgress& p) {
      auto now = std::chrono::steady_clock::now();
      if (!a.quiet && now - last > std::chrono::seconds(1)) {
        last = now;
        std::cerr << fmt::format("{}{}: {} lines, {:.0f} lines/s, {} MiB resident{}", tty ? "\r" : "", in,
                                 Thousands(p.lines), p.seconds > 0 ? static_cast<double>(p.lines) / p.seconds : 0.0,
                                 ReadProcessMemory().resident >> 20, tty ? "   " : "\n");
      }
    });
    if (tty) std::cerr << "\r" << std::string(100, ' ') << "\r";
    if (err) return Fail(fmt::format("store error, stopped without applying further: {}", err->message), 2);
  }
  if (auto err = e.Finish()) return Fail(fmt::format("store error at end of input: {}", err->message), 2);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (stats_out) *stats_out = e.stats();
  if (seconds_out) *seconds_out = secs;
  if (!a.quiet) {
    std::cout << SummaryLine(e.stats(), secs) << "\n";
    if (e.load_seconds() >= 0.1) std::cerr << fmt::format("state loaded at start in {:.1f} s\n", e.load_seconds());
    std::cerr << "memory: " << FormatMemory(e.Memory(), ReadProcessMemory()) << "\n";
  }
  return 0;
}

// One data dir streams; several (instances that each own some tenants) are
// merged into the canonical order of their union, in memory.
int RunExport(const std::vector<std::string>& data_dirs) {
  try {
    std::ios::sync_with_stdio(false);
    if (data_dirs.size() == 1) {
      auto db = StateDb::OpenReadOnly(data_dirs[0]);
      if (!db.ok()) return Fail(db.error().message, 2);
      ExportAll(*db.value(), std::cout);
    } else {
      std::vector<std::unique_ptr<StateDb>> dbs;
      std::vector<Store*> stores;
      for (const auto& dir : data_dirs) {
        auto db = StateDb::OpenReadOnly(dir);
        if (!db.ok()) return Fail(db.error().message, 2);
        dbs.push_back(std::move(db).value());
        stores.push_back(dbs.back().get());
      }
      if (auto err = ExportMerged(stores, std::cout)) return Fail(*err, 2);
    }
    std::cout.flush();
  } catch (const std::exception& ex) {
    return Fail(ex.what(), 2);
  }
  return 0;
}

int RunQuery(const std::string& data_dir, const std::string& kind, const std::string& id,
             const std::string& tenant) {
  auto db = StateDb::OpenReadOnly(data_dir);
  if (!db.ok()) return Fail(db.error().message, 2);
  auto j = QueryJson(*db.value(), kind, tenant, id);
  if (!j) return Fail(fmt::format("no {} '{}' in tenant '{}'", kind, id, tenant));
  std::cout << *j << "\n";
  return 0;
}

int RunGenerate(const SynthOptions& o, const std::string& out, const std::string& rules_out) {
  std::ofstream f(out, std::ios::binary);
  if (!f) return Fail(fmt::format("cannot write '{}'", out));
  auto c = Synthesize(o, [&](const std::string& l) { f << l << '\n'; });
  if (!rules_out.empty()) {
    std::ofstream r(rules_out, std::ios::binary);
    r << SynthRulesJson(o);
  }
  std::cerr << fmt::format("wrote {} lines to {}\n", Thousands(c.lines), out);
  return 0;
}

void PrintDemoSummary(const std::string& bin, const std::string& data_dir, const RunStats& stats,
                      double secs, const std::string& rules_path, const std::string& events_path) {
  auto dbr = StateDb::OpenReadOnly(data_dir);
  if (!dbr.ok()) return;
  StateDb& db = *dbr.value();
  std::map<int, int64_t> groups;
  int64_t virtual_successes = 0;
  db.Scan(Table::kGroup, "", [&](std::string_view, const google::protobuf::MessageLite& row) {
    const auto& g = static_cast<const pb::Group&>(row);
    ++groups[g.status()];
    if (g.virtual_()) ++virtual_successes;
    return true;
  });
  struct Top { std::string id; int64_t settled, pending, balance, downlines; };
  std::vector<Top> top;
  int64_t distributors = 0, total_settled = 0, total_clawed = 0;
  db.Scan(Table::kDistributor, "", [&](std::string_view k, const google::protobuf::MessageLite& row) {
    const auto& d = static_cast<const pb::Distributor&>(row);
    ++distributors;
    total_settled += d.settled_fen();
    total_clawed += d.clawed_back_fen();
    const std::string tenant(KeyPart(k, 0));
    top.push_back({(tenant == "default" ? "" : tenant + "/") + std::string(KeyPart(k, 1)), d.settled_fen(), d.pending_fen(),
                   d.settled_fen() - d.clawed_back_fen(), d.downlines()});
    return true;
  });
  std::sort(top.begin(), top.end(), [](const Top& a, const Top& b) { return a.settled != b.settled ? a.settled > b.settled : a.id < b.id; });
  std::map<std::string, int64_t> tiers;
  int64_t members = 0, best_streak = 0;
  db.Scan(Table::kMember, "", [&](std::string_view, const google::protobuf::MessageLite& row) {
    const auto& m = static_cast<const pb::Member&>(row);
    ++members;
    ++tiers[m.tier()];
    best_streak = std::max(best_streak, m.checkin_streak());
    return true;
  });
  int64_t orders = 0, gmv = 0, refunded = 0;
  db.Scan(Table::kOrder, "", [&](std::string_view, const google::protobuf::MessageLite& row) {
    const auto& o = static_cast<const pb::Order&>(row);
    ++orders;
    gmv += o.amount_fen();
    refunded += o.refunded_fen();
    return true;
  });

  const int64_t ok = groups[pb::Group::SUCCEEDED], failed = groups[pb::Group::FAILED];
  std::cout << "\n== fission demo ==\n";
  std::cout << SummaryLine(stats, secs) << "\n\n";
  std::cout << fmt::format("Orders: {} paid, GMV ¥{}, refunded ¥{}\n", Thousands(orders), Yuan(gmv), Yuan(refunded));
  std::cout << fmt::format("Group-buys (拼团): {} succeeded ({} virtual), {} failed, {} still forming; success rate {:.1f}%\n",
                           ok, virtual_successes, failed, groups[pb::Group::FORMING],
                           ok + failed ? 100.0 * static_cast<double>(ok) / static_cast<double>(ok + failed) : 0.0);
  std::cout << fmt::format("Distributors (分销): {}; settled commission ¥{}, clawed back ¥{}\n", Thousands(distributors), Yuan(total_settled), Yuan(total_clawed));
  std::cout << "\nTop distributors by settled earnings:\n";
  std::cout << fmt::format("  {:<16} {:>12} {:>12} {:>12} {:>9}\n", "id", "settled ¥", "pending ¥", "balance ¥", "downlines");
  for (size_t i = 0; i < std::min<size_t>(5, top.size()); ++i) {
    std::cout << fmt::format("  {:<16} {:>12} {:>12} {:>12} {:>9}\n", top[i].id, Yuan(top[i].settled), Yuan(top[i].pending), Yuan(top[i].balance), top[i].downlines);
  }
  std::cout << fmt::format("\nMember tiers (会员等级), {} members; longest current check-in streak {} days:\n", Thousands(members), best_streak);
  for (auto& [t, n] : tiers) std::cout << fmt::format("  {:<10} {:>8}  {:.1f}%\n", t, Thousands(n), 100.0 * static_cast<double>(n) / static_cast<double>(std::max<int64_t>(1, members)));
  std::cout << "\nRejections by reason:\n";
  if (stats.rejected.empty()) std::cout << "  none\n";
  for (auto& [r, n] : stats.rejected) std::cout << fmt::format("  {:<24} {:>6}\n", r, n);
  std::string who = top.empty() ? "m000001" : top[0].id;
  std::string tenant_flag;
  if (auto slash = who.find('/'); slash != std::string::npos) {
    tenant_flag = " --tenant " + who.substr(0, slash);
    who = who.substr(slash + 1);
  }
  std::cout << "\nLook further:\n"
            << fmt::format("  {} query --data-dir {}{} distributor {}\n", bin, data_dir, tenant_flag, who)
            << fmt::format("  {} query --data-dir {}{} member {}\n", bin, data_dir, tenant_flag, who)
            << fmt::format("  {} export --data-dir {} | grep '\"kind\":\"rejection\"' | head\n", bin, data_dir)
            << fmt::format("  {} ingest --data-dir /tmp/again --rules {} {}\n", bin, rules_path, events_path)
            << "The auditors' API over it (token file: TOKEN TENANT|* auditor|support per line):\n"
            << "  echo 'demo-auditor-token-0001 * auditor' > tokens\n"
            << fmt::format("  {} serve --data-dir {} --tokens tokens &\n", bin, data_dir)
            << fmt::format("  curl -H 'Authorization: Bearer demo-auditor-token-0001' "
                           "localhost:8080/v1/{}/distributors/{}\n",
                           tenant_flag.empty() ? "default" : tenant_flag.substr(10), who);
}

std::atomic<bool> g_stop{false};
void OnSignal(int) { g_stop.store(true); }

struct ApiArgs {
  std::string listen;  // HOST:PORT; empty = no API
  std::string tokens;
  int threads = 8;
};

void AddApiOptions(CLI::App* cmd, ApiArgs& a, const std::string& default_listen) {
  a.listen = default_listen;
  cmd->add_option("--listen", a.listen, "Address of the read-only HTTP API and /metrics, HOST:PORT (loopback unless told otherwise)"
                  + std::string(default_listen.empty() ? "; none when absent" : ""))->capture_default_str();
  cmd->add_option("--tokens", a.tokens, "Tokens file: 'TOKEN TENANT|* auditor|support' per line; without it only /healthz and /metrics answer")
      ->check(CLI::ExistingFile);
  cmd->add_option("--http-threads", a.threads, "HTTP worker threads")->capture_default_str()->check(CLI::Range(1, 256));
}

// Starts the API on a background thread; nullptr and a message on failure.
std::unique_ptr<ApiServer> StartApi(const ApiArgs& a, QueryService& q, Metrics& m, std::string* error) {
  std::map<std::string, Token> tokens;
  if (!a.tokens.empty()) {
    auto t = LoadTokens(a.tokens);
    if (!t.ok()) {
      *error = t.error();
      return nullptr;
    }
    tokens = std::move(t).value();
  }
  ServerOptions so;
  const auto colon = a.listen.rfind(':');
  if (colon == std::string::npos) {
    *error = fmt::format("--listen '{}': expected HOST:PORT", a.listen);
    return nullptr;
  }
  so.host = a.listen.substr(0, colon);
  try {
    so.port = std::stoi(a.listen.substr(colon + 1));
  } catch (const std::exception&) {
    so.port = -1;
  }
  if (so.port < 0 || so.port > 65535) {
    *error = fmt::format("--listen '{}': bad port", a.listen);
    return nullptr;
  }
  so.threads = a.threads;
  auto server = std::make_unique<ApiServer>(q, m, std::move(tokens));
  if (auto err = server->Bind(so)) {
    *error = *err;
    return nullptr;
  }
  server->Start();
  std::cerr << fmt::format("fission: API on http://{}:{} ({} tokens)\n", so.host, server->port(),
                           a.tokens.empty() ? "no" : "with");
  return server;
}

// `serve`: the API over a data dir that another process may be writing.
int RunServe(const std::string& data_dir, const std::string& rules_file, const ApiArgs& a) {
  std::optional<RuleBook> rules;
  if (!rules_file.empty()) {
    auto r = LoadRulesFile(rules_file);
    if (!r.ok()) return Fail(r.error().message);
    rules = std::move(r).value();
  }
  const std::string scratch = (fs::temp_directory_path() / fmt::format("fission-serve-{}", getpid())).string();
  auto db = StateDb::OpenFollower(data_dir, scratch);
  if (!db.ok()) return Fail(db.error().message, 2);
  Metrics metrics;
  metrics.WatchDb(db.value()->raw(), db.value()->columns(), data_dir);
  QueryService q(*db.value(), rules ? &*rules : nullptr);
  auto refresh = [&] {
    q.Exclusive([&] {
      if (auto err = db.value()->CatchUp()) std::cerr << "fission serve: " << err->message << "\n";
    });
    if (auto meta = q.Meta()) metrics.ReportTotals(*meta);
  };
  refresh();
  std::string error;
  auto server = StartApi(a, q, metrics, &error);
  if (!server) {
    fs::remove_all(scratch);
    return Fail(error, 2);
  }
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  // Follow the writer: new commits become visible within a second.
  while (!g_stop.load()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    refresh();
  }
  server->Stop();
  fs::remove_all(scratch);
  return 0;
}

struct KafkaArgs {
  std::string brokers;
  std::string topic = "fission.events";
  std::vector<std::string> x;
  std::string config;
};

void AddKafkaOptions(CLI::App* cmd, KafkaArgs& k, bool brokers_required) {
  auto* b = cmd->add_option("--brokers", k.brokers, "Kafka bootstrap servers, HOST:PORT[,HOST:PORT...]");
  if (brokers_required) b->required();
  cmd->add_option("--topic", k.topic, "Event topic")->capture_default_str();
  cmd->add_option("-X", k.x, "librdkafka setting key=value (repeatable), e.g. -X security.protocol=SASL_SSL");
  cmd->add_option("--kafka-config", k.config, "File of librdkafka key=value lines (applied before -X)")->check(CLI::ExistingFile);
}

int RunPublish(const KafkaArgs& k, const std::string& input) {
  auto settings = kafka::MakeSettings(k.brokers, k.x, k.config);
  if (!settings.ok()) return Fail(settings.error().message);
  std::ifstream file;
  std::istream* in = &std::cin;
  if (input != "-") {
    file.open(input, std::ios::binary);
    if (!file) return Fail(fmt::format("cannot read '{}'", input));
    in = &file;
  }
  auto r = kafka::PublishJsonLines(settings.value(), k.topic, *in, [&](int64_t line, const std::string& reason, const std::string& detail) {
    std::cerr << fmt::format("{}:{}: {}: {}\n", input, line, reason, detail);
  });
  if (!r.ok()) return Fail(r.error().message, 2);
  const auto& st = r.value();
  std::cout << fmt::format("published {} of {} lines to {} ({} invalid, not sent; {} failed delivery)\n", st.sent,
                           st.lines, k.topic, st.invalid, st.failed);
  return st.invalid > 0 || st.failed > 0 ? 1 : 0;
}

int RunDevBroker(int brokers, const std::string& topic, int partitions) {
  auto b = kafka::DevBroker::Start(brokers);
  if (!b.ok()) return Fail(b.error().message, 2);
  if (auto e = b.value()->CreateTopic(topic, partitions)) return Fail(e->message, 2);
  std::cerr << "WARNING: this is librdkafka's in-memory mock cluster, for development only. It keeps about\n"
               "5 MiB per partition and forgets everything when it stops. Use a real Kafka cluster\n"
               "(ops/kafka/) for anything you want to keep.\n";
  std::cout << fmt::format("bootstrap.servers={}\ntopic {} with {} partitions\n", b.value()->bootstrap_servers(), topic, partitions)
            << std::flush;
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  while (!g_stop.load()) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  return 0;
}

// The demo over Kafka: an in-process mock cluster, the events published as
// Protobuf (invalid lines are refused by publish, as for any producer), then
// consumed into the data dir.
int RunDemoOverKafka(const std::string& events, const std::string& rules_path, const std::string& data,
                     RunStats* stats, double* secs) {
  auto broker = kafka::DevBroker::Start(3);
  if (!broker.ok()) return Fail(broker.error().message, 2);
  if (auto e = broker.value()->CreateTopic("fission.events", 4)) return Fail(e->message, 2);
  std::cerr << fmt::format("Mock Kafka cluster (in memory, development only) at {}\n", broker.value()->bootstrap_servers());
  auto settings = kafka::MakeSettings(broker.value()->bootstrap_servers(), {}, "").value();
  std::ifstream in(events, std::ios::binary);
  auto pub = kafka::PublishJsonLines(settings, "fission.events", in, nullptr);
  if (!pub.ok()) return Fail(pub.error().message, 2);
  std::cerr << fmt::format("Published {} events ({} invalid lines refused by publish)\n", pub.value().sent, pub.value().invalid);
  auto rules = LoadRulesFile(rules_path);
  if (!rules.ok()) return Fail(rules.error().message);
  const auto start = std::chrono::steady_clock::now();
  {
    auto engine = Engine::Open(data, rules.value(), EngineOptions{});
    if (!engine.ok()) return Fail(engine.error().message, 2);
    kafka::RunOptions ro;
    ro.settings = settings;
    ro.topic = "fission.events";
    ro.group = "fission-demo";
    ro.exit_at_end = true;
    ro.idle_ms = 1000;
    std::cerr << "Consuming into " << data << " ...\n";
    auto r = kafka::Run(*engine.value(), ro, g_stop, [](const std::string& m) { std::cerr << "  " << m << "\n"; });
    if (!r.ok()) return Fail(r.error().message, 2);
    *stats = engine.value()->stats();
  }
  *secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"fission: event-sourced order and commission engine for social e-commerce (裂变)"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "fission 0.1.0");

  IngestArgs ia;
  auto* ingest = app.add_subcommand("ingest", "Append JSONL events to the embedded log and fold them into projections");
  ingest->add_option("--data-dir", ia.data_dir, "Data directory (created if missing)")->required();
  ingest->add_option("--rules", ia.rules, "Rules file (JSON, see schemas/README.md)")->required()->check(CLI::ExistingFile);
  ingest->add_option("--allowed-lateness-ms", ia.allowed_lateness_ms, "How late an event may arrive and still be applied in order")
      ->capture_default_str()->check(CLI::Range(int64_t{0}, int64_t{365} * kDayMs));
  ingest->add_option("--batch", ia.batch, "Events per atomic commit")->capture_default_str()->check(CLI::Range(1, 1'000'000));
  ingest->add_option("--checkpoint-every", ia.checkpoint_every,
                     "Commits per full checkpoint: the commits between hold the log and history, and the "
                     "projections, stored events and position are written at the next full one (and at the end). "
                     "Larger is faster; smaller means less to fold again after a crash and fresher rows for readers "
                     "of a data dir being written. 1: every commit")
      ->capture_default_str()->check(CLI::Range(1, 1'000'000));
  ingest->add_flag("--no-sync", ia.no_sync, "Do not fsync each full checkpoint, only once at the end of the input (faster; a power cut mid-run may lose the last batches)");
  ingest->add_flag("--quiet", ia.quiet, "No progress and no summary");
  ingest->add_flag("--no-history", ia.no_history, kNoHistoryHelp);
  ingest->add_flag("--no-decode-thread", ia.no_decode_thread, kNoDecodeThreadHelp);
  AddMemoryOptions(ingest, ia.memory);
  ingest->add_option("events", ia.inputs, "JSONL files, or - for standard input")->required();

  std::string data_dir;
  std::vector<std::string> export_dirs;
  auto* exp = app.add_subcommand("export", "Write every projection as canonical JSON lines (spec section 7) to stdout");
  exp->add_option("--data-dir", export_dirs, "Data directory; repeat to merge instances that own different tenants")->required();

  std::string q_kind, q_id, q_tenant = "default";
  auto* query = app.add_subcommand("query", "Print one record as JSON; exit 1 if it does not exist");
  query->add_option("--data-dir", data_dir, "Data directory")->required();
  query->add_option("--tenant", q_tenant, "Tenant")->capture_default_str();
  query->add_option("kind", q_kind, "distributor | group | member | order")->required()
      ->check(CLI::IsMember({"distributor", "group", "member", "order"}));
  query->add_option("id", q_id, "Record id")->required();

  SynthOptions so;
  std::string gen_out, gen_rules;
  auto* gen = app.add_subcommand("generate", "Write a seeded synthetic event stream (JSONL) and matching rules");
  gen->add_option("--seed", so.seed, "Random seed")->capture_default_str();
  gen->add_option("--members", so.members, "Number of members")->capture_default_str()->check(CLI::Range(int64_t{10}, int64_t{100'000'000}));
  gen->add_option("--days", so.days, "Days of traffic")->capture_default_str()->check(CLI::Range(int64_t{1}, int64_t{3650}));
  gen->add_option("--bad-fraction", so.bad_fraction, "Fraction of hostile lines")->capture_default_str()->check(CLI::Range(0.0, 1.0));
  gen->add_option("--tenants", so.tenants, "Independent shops (tenants shop-00...); 1 = tenant default")->capture_default_str()->check(CLI::Range(int64_t{1}, int64_t{1000}));
  gen->add_option("--out", gen_out, "Events file to write")->required();
  gen->add_option("--rules-out", gen_rules, "Also write the matching rules file here");

  std::string demo_dir = "fission-demo";
  SynthOptions demo_opt;
  demo_opt.members = 5000;
  demo_opt.days = 35;
  auto* demo = app.add_subcommand("demo", "Generate realistic traffic, ingest it into a fresh data dir, and summarize");
  demo->add_option("--dir", demo_dir, "Working directory (its data/ is recreated)")->capture_default_str();
  demo->add_option("--seed", demo_opt.seed, "Random seed")->capture_default_str();
  demo->add_option("--members", demo_opt.members, "Number of members")->capture_default_str()->check(CLI::Range(int64_t{10}, int64_t{10'000'000}));
  demo->add_option("--days", demo_opt.days, "Days of traffic")->capture_default_str()->check(CLI::Range(int64_t{1}, int64_t{3650}));
  demo->add_option("--tenants", demo_opt.tenants, "Independent shops")->capture_default_str()->check(CLI::Range(int64_t{1}, int64_t{100}));
  bool demo_kafka = false;
  demo->add_flag("--kafka", demo_kafka, "Run over an in-process mock Kafka cluster: publish, then consume (4 partitions)");

  KafkaArgs pk;
  std::string pub_input = "-";
  auto* publish = app.add_subcommand("publish", "Validate JSONL events and publish them to Kafka as Protobuf (idempotent producer)");
  AddKafkaOptions(publish, pk, true);
  publish->add_option("events", pub_input, "JSONL file, or - for standard input")->capture_default_str();

  int dev_brokers = 3, dev_partitions = 4;
  std::string dev_topic = "fission.events";
  auto* dev = app.add_subcommand("dev-broker", "Run librdkafka's in-memory mock Kafka cluster on loopback (development only)");
  dev->add_option("--brokers", dev_brokers, "Number of mock brokers")->capture_default_str()->check(CLI::Range(1, 9));
  dev->add_option("--topic", dev_topic, "Topic to create")->capture_default_str();
  dev->add_option("--partitions", dev_partitions, "Partitions of the topic")->capture_default_str()->check(CLI::Range(1, 256));

  std::string serve_dir, serve_rules;
  ApiArgs serve_api;
  auto* serve = app.add_subcommand("serve", "Serve the read-only HTTP API and /metrics over a data dir (which another process may be writing)");
  serve->add_option("--data-dir", serve_dir, "Data directory")->required();
  serve->add_option("--rules", serve_rules, "Rules file, so the ledger checks verify rates too")->check(CLI::ExistingFile);
  AddApiOptions(serve, serve_api, "127.0.0.1:8080");

  KafkaArgs rk;
  kafka::RunOptions ro;
  std::string run_dir, run_rules;
  int64_t run_lateness = 60'000;
  bool run_no_sync = false;
  bool run_no_history = false;
  auto* run = app.add_subcommand("run", "Consume events from Kafka in a consumer group and fold them into a data dir");
  AddKafkaOptions(run, rk, true);
  run->add_option("--group", ro.group, "Consumer group id")->capture_default_str();
  run->add_option("--data-dir", run_dir, "Data directory")->required();
  run->add_option("--rules", run_rules, "Rules file")->required()->check(CLI::ExistingFile);
  run->add_option("--allowed-lateness-ms", run_lateness, "How late an event may arrive and still be applied in order")->capture_default_str();
  run->add_option("--dead-letter-topic", ro.dead_letter_topic, "Topic for undecodable events (default TOPIC.dlq)");
  run->add_option("--idle-ms", ro.idle_ms, "With --exit-at-end: how long every partition must be at its end, and the group quiet, before the run ends")->capture_default_str();
  run->add_flag("--exit-at-end", ro.exit_at_end, "Stop when every partition is at its end, applying everything buffered");
  run->add_flag("--no-sync", run_no_sync, "Do not fsync commits");
  run->add_flag("--no-history", run_no_history, kNoHistoryHelp);
  MemoryArgs run_memory;
  AddMemoryOptions(run, run_memory);
  ApiArgs run_api;
  AddApiOptions(run, run_api, "");

  // Finance.
  ReplayArgs rp;
  KafkaArgs rp_kafka;
  auto* replay = app.add_subcommand("replay", "Rebuild every projection into a fresh data dir from a data dir's log, an archive, or a Kafka topic");
  replay->add_option("--from", rp.from, "SOURCE: a data dir (its event log), an archive file, or kafka:TOPIC (with --brokers)")->required();
  replay->add_option("--rules", rp.rules, "Rules file: the live one for an exact rebuild, a proposed one for a what-if")->required()->check(CLI::ExistingFile);
  replay->add_option("--out", rp.out, "New data dir (must not exist or be empty)")->required();
  replay->add_option("--until", rp.until, "Stop at this event time (RFC 3339): later events are passed over and every timer due by then fires, so the result is the as-of view at that instant");
  replay->add_option("--allowed-lateness-ms", rp.allowed_lateness_ms, "As for ingest; keep the live value for an exact rebuild")->capture_default_str();
  replay->add_flag("--no-history", rp.no_history, kNoHistoryHelp);
  replay->add_flag("--no-decode-thread", rp.no_decode_thread, kNoDecodeThreadHelp);
  replay->add_flag("--quiet", rp.quiet, "No progress");
  MemoryArgs rp_memory;
  AddMemoryOptions(replay, rp_memory);
  AddKafkaOptions(replay, rp_kafka, false);

  ArchiveArgs ar;
  KafkaArgs ar_kafka;
  auto* archive = app.add_subcommand("archive", "Write the event history to a compressed, checksummed archive file");
  archive->add_option("--from", ar.from, "SOURCE: a data dir (its event log), another archive, or kafka:TOPIC (with --brokers)")->required();
  archive->add_option("--out", ar.out, "Archive file to write (written as FILE.partial, renamed when complete)")->required();
  archive->add_flag("--quiet", ar.quiet, "No progress");
  AddKafkaOptions(archive, ar_kafka, false);

  std::string digest_dir;
  auto* digest = app.add_subcommand("digest", "Print a hash of a data dir's canonical export: equal digests, identical projections");
  digest->add_option("--data-dir", digest_dir, "Data directory")->required();

  std::string diff_a, diff_b;
  bool diff_json = false;
  int diff_max = 1000;
  auto* diff = app.add_subcommand("diff", "List per distributor, member and group the fields that differ between two data dirs, with totals; exit 1 if any differ");
  diff->add_option("a", diff_a, "Data dir A (e.g. live)")->required();
  diff->add_option("b", diff_b, "Data dir B (e.g. a replay under proposed rules)")->required();
  diff->add_flag("--json", diff_json, "The report as JSON");
  diff->add_option("--max-listed", diff_max, "Entities listed in full (all are counted)")->capture_default_str()->check(CLI::Range(0, 100'000'000));

  StatementArgs st;
  auto* statement = app.add_subcommand("statement", "Per-distributor statement for a period: opening, movements, closing, reconciled");
  statement->add_option("--data-dir", st.data_dir, "Data directory")->required();
  statement->add_option("--from", st.from, "Period start, exclusive (RFC 3339); default: the beginning");
  statement->add_option("--to", st.to, "Period end, inclusive (RFC 3339); default: the end");
  statement->add_option("--tenant", st.tenant, "Only this tenant (default: all)");
  statement->add_option("--format", st.format, "csv or json")->capture_default_str()->check(CLI::IsMember({"csv", "json"}));
  statement->add_flag("--lines", st.movements, "Line-level detail: every movement of every line in the period");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    std::cerr << "fission: " << e.what() << "\nRun with --help for usage.\n";
    return 2;
  }

  try {
    if (*ingest) return RunIngest(ia, nullptr, nullptr);
    if (*exp) return RunExport(export_dirs);
    if (*query) return RunQuery(data_dir, q_kind, q_id, q_tenant);
    if (*gen) return RunGenerate(so, gen_out, gen_rules);
    if (*publish) return RunPublish(pk, pub_input);
    if (*dev) return RunDevBroker(dev_brokers, dev_topic, dev_partitions);
    if (*serve) return RunServe(serve_dir, serve_rules, serve_api);
    if (*replay || *archive) {
      KafkaArgs& k = *replay ? rp_kafka : ar_kafka;
      std::optional<kafka::Settings> settings;
      if (!k.brokers.empty()) {
        auto made = kafka::MakeSettings(k.brokers, k.x, k.config);
        if (!made.ok()) return Fail(made.error().message, 2);
        settings = made.value();
      }
      if (*replay) {
        rp.kafka = settings;
        EngineOptions budget;
        rp_memory.ApplyTo(&budget);
        rp.db = budget.db;
        rp.memory_budget_bytes = budget.processor.memory_budget_bytes;
        return RunReplay(rp);
      }
      ar.kafka = settings;
      return RunArchive(ar);
    }
    if (*digest) return RunDigest(digest_dir);
    if (*diff) return RunDiff(diff_a, diff_b, diff_json, diff_max);
    if (*statement) return RunStatement(st);
    if (*run) {
      auto settings = kafka::MakeSettings(rk.brokers, rk.x, rk.config);
      if (!settings.ok()) return Fail(settings.error().message);
      auto rules = LoadRulesFile(run_rules);
      if (!rules.ok()) return Fail(rules.error().message);
      EngineOptions opt;
      opt.processor.allowed_lateness_ms = run_lateness;
      opt.processor.history = !run_no_history;
      opt.db.sync_commits = !run_no_sync;
      run_memory.ApplyTo(&opt);
      // The API reads this process's own writer: its audit rows must be seekable unflushed.
      if (!run_api.listen.empty()) opt.db.audit_vector_memtable = false;
      // Every commit of `run` is a full checkpoint of one poll's batch: as table
      // files they would pile up small for compaction to merge (as at 10M
      // events when the memory budget forced a full checkpoint per commit);
      // through the memtable they are flushed together.
      opt.db.ingest_min_rows = 0;
      auto engine = Engine::Open(run_dir, rules.value(), opt);
      if (!engine.ok()) return Fail(engine.error().message, 2);
      ro.settings = settings.value();
      ro.topic = rk.topic;
      std::signal(SIGINT, OnSignal);
      std::signal(SIGTERM, OnSignal);
      Metrics metrics;
      metrics.WatchDb(engine.value()->db().raw(), engine.value()->db().columns(), run_dir);
      engine.value()->set_metrics(&metrics);
      QueryService q(engine.value()->db(), &rules.value());
      std::unique_ptr<ApiServer> api;
      if (!run_api.listen.empty()) {
        std::string error;
        api = StartApi(run_api, q, metrics, &error);
        if (!api) return Fail(error, 2);
      }
      const auto start = std::chrono::steady_clock::now();
      auto r = kafka::Run(*engine.value(), ro, g_stop, [](const std::string& m) { std::cerr << "fission run: " << m << "\n"; });
      if (api) api->Stop();
      if (!r.ok()) return Fail(r.error().message, 2);
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::cout << SummaryLine(engine.value()->stats(), secs)
                << fmt::format(" | consumed {} | dead-lettered {}\n", r.value().consumed, r.value().dead_lettered);
      return 0;
    }
    if (*demo) {
      fs::create_directories(demo_dir);
      const std::string events = (fs::path(demo_dir) / "events.jsonl").string();
      const std::string rules = (fs::path(demo_dir) / "rules.json").string();
      const std::string data = (fs::path(demo_dir) / "data").string();
      fs::remove_all(data);
      std::cerr << fmt::format("Generating {} days of traffic for {} members (seed {})...\n", demo_opt.days, Thousands(demo_opt.members), demo_opt.seed);
      if (int rc = RunGenerate(demo_opt, events, rules)) return rc;
      RunStats stats;
      double secs = 0;
      if (demo_kafka) {
        if (int rc = RunDemoOverKafka(events, rules, data, &stats, &secs)) return rc;
      } else {
        std::cerr << fmt::format("Ingesting into {} ...\n", data);
        IngestArgs a;
        a.data_dir = data;
        a.rules = rules;
        a.inputs = {events};
        a.quiet = true;
        if (int rc = RunIngest(a, &stats, &secs)) return rc;
      }
      PrintDemoSummary(argv[0], data, stats, secs, rules, events);
      return 0;
    }
  } catch (const std::exception& ex) {
    return Fail(ex.what(), 2);
  }
  return 0;
}
