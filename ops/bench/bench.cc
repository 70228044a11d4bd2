// fission against the machine's own ceilings, in one run.
//
//   build/release/ops/fission_bench [--members 1000000] [--days 2] [--events N] [--json-out FILE]
//
// Generates a realistic stream (the demo's generator: power-law share trees,
// the demo's mix of event types), then measures on this machine:
//   ceilings  RocksDB batched sequential writes and random read-modify-write of
//             records like ours (same options), raw librdkafka consume from the
//             mock cluster, JSON decoding, raw log reads and point Gets;
//   fission   pure fold (in memory), durable embedded ingest, Kafka end to end
//             through the mock cluster, replay, query latency under load;
//   and peak resident memory per stage and on-disk bytes per event.
// Prints one table (each figure beside its ceiling, and the ratio) and writes
// it as JSON. Asserts nothing: benchmarks are not tests.
#include <fmt/format.h>
#include <httplib.h>
#include <librdkafka/rdkafka.h>
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <sstream>
#include <thread>

#include "engine/engine.h"
#include "engine/kafka.h"
#include "engine/query.h"
#include "engine/server.h"
#include "engine/memory.h"
#include "events/decode.h"
#include "projections/keys.h"
#include "replay/commands.h"
#include "replay/source.h"
#include "replay/synth.h"

using namespace fission;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

double Since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Peak resident memory since the last ResetPeak (Linux: VmHWM; clear_refs 5 resets it).
void ResetPeak() { std::ofstream("/proc/self/clear_refs") << "5"; }
int64_t PeakRssBytes() { return static_cast<int64_t>(ReadProcessMemory().peak_resident); }

int64_t DirBytes(const fs::path& dir) {
  int64_t n = 0;
  std::error_code ec;
  for (auto& f : fs::recursive_directory_iterator(dir, ec)) {
    if (f.is_regular_file(ec)) n += static_cast<int64_t>(f.file_size(ec));
  }
  return n;
}

struct Figure {
  std::string stage{}, what{};
  double value = 0;
  std::string unit{};
  std::string ceiling_what{};
  std::optional<double> ceiling{};
  bool lower_is_better = false;  // latencies
  int64_t peak_rss = 0;
};

std::vector<Figure> g_figures;

void Report(Figure f) {
  f.peak_rss = PeakRssBytes();
  std::cerr << fmt::format("  {:<34} {:>14.1f} {}\n", f.what, f.value, f.unit);
  g_figures.push_back(std::move(f));
}

double Percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())))];
}

// Raw RocksDB: sequential batched writes of `n` records of `bytes`, then `ops`
// random read-modify-writes over them, synced per batch like a commit.
std::pair<double, double> RocksCeilings(const fs::path& dir, int64_t n, int64_t ops, size_t bytes, size_t batch) {
  fs::remove_all(dir);
  rocksdb::Options opt = RocksOptions(DbOptions{});
  rocksdb::DB* raw = nullptr;
  if (!rocksdb::DB::Open(opt, dir.string(), &raw).ok()) throw std::runtime_error("cannot open the raw RocksDB");
  std::unique_ptr<rocksdb::DB> db(raw);
  rocksdb::WriteOptions wo;
  wo.sync = true;
  std::string value(bytes, 'x');
  auto key = [](int64_t i) {
    std::string k = "M";
    PutBe64(&k, i);
    return k;
  };
  auto t0 = Clock::now();
  rocksdb::WriteBatch b;
  for (int64_t i = 0; i < n; ++i) {
    b.Put(key(i), value);
    if (b.Count() == static_cast<uint32_t>(batch) || i + 1 == n) {
      db->Write(wo, &b);
      b.Clear();
    }
  }
  const double seq = static_cast<double>(n) / Since(t0);
  std::mt19937_64 rng(42);
  std::string v;
  t0 = Clock::now();
  for (int64_t i = 0; i < ops; ++i) {
    const std::string k = key(static_cast<int64_t>(rng() % static_cast<uint64_t>(n)));
    db->Get(rocksdb::ReadOptions(), k, &v);
    v[0] = static_cast<char>(i);
    b.Put(k, v);
    if (b.Count() == static_cast<uint32_t>(batch) || i + 1 == ops) {
      db->Write(wo, &b);
      b.Clear();
    }
  }
  const double rmw = static_cast<double>(ops) / Since(t0);
  db.reset();
  fs::remove_all(dir);
  return {seq, rmw};
}

// Reads every partition of `topic` to its end with a plain consumer.
int64_t RawConsume(const std::string& bootstrap, const std::string& topic, int partitions) {
  char err[256];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap.c_str(), err, sizeof err);
  rd_kafka_conf_set(conf, "group.id", "raw-bench", err, sizeof err);
  rd_kafka_conf_set(conf, "enable.partition.eof", "true", err, sizeof err);
  rd_kafka_t* c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
  rd_kafka_topic_partition_list_t* parts = rd_kafka_topic_partition_list_new(partitions);
  for (int p = 0; p < partitions; ++p) rd_kafka_topic_partition_list_add(parts, topic.c_str(), p)->offset = RD_KAFKA_OFFSET_BEGINNING;
  rd_kafka_assign(c, parts);
  rd_kafka_topic_partition_list_destroy(parts);
  int64_t n = 0;
  int at_end = 0;
  while (at_end < partitions) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(c, 100);
    if (!m) continue;
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      ++at_end;
    } else if (!m->err) {
      ++n;
    }
    rd_kafka_message_destroy(m);
  }
  rd_kafka_consumer_close(c);
  rd_kafka_destroy(c);
  return n;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"fission benchmark: every figure beside the machine's own ceiling, in one run"};
  SynthOptions o;
  o.members = 1'000'000;
  o.days = 2;
  std::string work = (fs::temp_directory_path() / "fission-bench").string();
  std::string json_out;
  int kafka_partitions = 8;
  int64_t kafka_events_max = 250'000;  // the mock cluster keeps about 5 MiB per partition
  double query_seconds = 10;
  int query_clients = 4;
  bool skip_kafka = false;
  int64_t events_max = 0;
  bool keep_work_dir = false;
  int64_t fold_events_max = 1'000'000;
  app.add_option("--members", o.members, "Members in the generated stream")->capture_default_str();
  app.add_option("--days", o.days, "Days of traffic (about 0.55 events per member per day)")->capture_default_str();
  app.add_option("--seed", o.seed, "Generator seed")->capture_default_str();
  app.add_option("--work-dir", work, "Scratch directory (recreated)")->capture_default_str();
  app.add_option("--json-out", json_out, "Also write the figures as JSON here");
  app.add_option("--kafka-partitions", kafka_partitions, "Partitions of the mock topic")->capture_default_str();
  app.add_option("--kafka-events", kafka_events_max, "Events sent through the mock cluster (it keeps ~5 MiB per partition)")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--query-seconds", query_seconds, "Duration of the query load")->capture_default_str();
  app.add_option("--query-clients", query_clients, "Concurrent query clients (keep-alive)")->capture_default_str();
  app.add_flag("--skip-kafka", skip_kafka, "Leave out the Kafka stages");
  app.add_option("--events", events_max,
                 "Stop the stream at this many events (0: all that --members x --days make); "
                 "e.g. --members 1000000 --days 30 --events 10000000")
      ->capture_default_str();
  app.add_flag("--keep-work-dir", keep_work_dir,
               "Keep the work dir (the ingested data dir is WORK/live, for wrk or other tools)");
  app.add_option("--fold-events", fold_events_max,
                 "Events for the in-memory fold stage (its MemStore keeps every row and version in "
                 "memory: about 1.8 KB per event)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);
  o.bad_fraction = 0.001;

  fs::remove_all(work);
  fs::create_directories(work);
  const fs::path root(work);

  // ---- the stream ----
  std::cerr << fmt::format("Generating {} members x {} days...\n", o.members, o.days);
  ResetPeak();
  auto t0 = Clock::now();
  // The stream goes to a file, read back by each stage as a user's would be:
  // no stage holds the whole input in memory.
  const fs::path events_file = root / "events.jsonl";
  int64_t n = 0;
  {
    std::ofstream out(events_file);
    Synthesize(o, [&](const std::string& l) {
      if (events_max > 0 && n >= events_max) return;
      out << l << '\n';
      ++n;
    });
  }
  std::cerr << fmt::format("  {} events in {:.1f} s\n", n, Since(t0));
  const std::string rules_json = SynthRulesJson(o);
  std::ofstream(root / "rules.json") << rules_json;
  const RuleBook rules = ParseRules(rules_json).value();
  // Calls fn on each line of the stream, until fn returns false.
  auto for_each_line = [&](const std::function<bool(const std::string&)>& fn) {
    std::ifstream in(events_file);
    for (std::string l; std::getline(in, l) && fn(l);) {
    }
  };
  // Between stages, freed memory goes back to the system, so each stage's
  // peak is its own.
  auto next_stage = [] {
    // What the last stage freed goes back to the kernel: each stage's peak is its own.
    ReleaseFreeMemory();
    ResetPeak();
  };

  // ---- ceilings ----
  std::cerr << "Ceilings\n";
  next_stage();
  t0 = Clock::now();
  int64_t ok = 0;
  for_each_line([&](const std::string& l) {
    ok += DecodeJson(l).ok();
    return true;
  });
  const double decode_rate = static_cast<double>(n) / Since(t0);
  Report({"ceiling", "JSON decode + validate", decode_rate, "events/s"});
  next_stage();
  const auto [seq_rate, rmw_rate] = RocksCeilings(root / "raw-rocksdb", std::min<int64_t>(n, 1'000'000), std::min<int64_t>(n, 1'000'000), 200, 32768);
  Report({"ceiling", "RocksDB sequential batched write", seq_rate, "records/s"});
  Report({"ceiling", "RocksDB random read-modify-write", rmw_rate, "records/s"});

  // ---- durable embedded ingest ----
  std::cerr << "fission\n";
  const fs::path live = root / "live";
  next_stage();
  {
    EngineOptions eo;  // defaults: synced commits, history on, --memory-mb's default budget
    eo.SetMemoryBudget(EngineOptions::kDefaultMemoryMb);
    auto e = Engine::Open(live.string(), rules, eo);
    if (!e.ok()) return std::cerr << e.error().message << "\n", 2;
    std::ifstream in(events_file);
    t0 = Clock::now();
    if (auto err = e.value()->IngestJsonLines(in, "bench.jsonl")) return std::cerr << err->message << "\n", 2;
    if (auto err = e.value()->Finish()) return std::cerr << err->message << "\n", 2;
    Report({"ingest", "embedded ingest (durable)", static_cast<double>(n) / Since(t0), "events/s",
            "RocksDB random read-modify-write", rmw_rate});
  }
  const double bytes_per_event = static_cast<double>(DirBytes(live)) / static_cast<double>(n);
  Report({"disk", "data dir bytes per event", bytes_per_event, "bytes"});

  // ---- replay ----
  double replay_rate = 0, fold_rate = 0;
  int64_t replay_peak = 0;
  next_stage();
  double log_read_rate = 0;
  {
    auto src = OpenSource(live.string(), nullptr);
    pb::LogRecord r;
    int64_t m = 0;
    t0 = Clock::now();
    while (src.value()->Next(&r)) ++m;
    log_read_rate = static_cast<double>(m) / Since(t0);
    Report({"ceiling", "raw log read", log_read_rate, "records/s"});
  }
  next_stage();
  {
    ReplayArgs a;
    a.from = live.string();
    a.rules = (root / "rules.json").string();
    a.out = (root / "replay").string();
    a.quiet = true;
    {
      EngineOptions budget;
      budget.SetMemoryBudget(EngineOptions::kDefaultMemoryMb);
      a.memory_budget_bytes = budget.processor.memory_budget_bytes;
    }
    std::ostringstream sink;
    auto* old = std::cout.rdbuf(sink.rdbuf());
    t0 = Clock::now();
    const int rc = RunReplay(a);
    const double secs = Since(t0);
    std::cout.rdbuf(old);
    if (rc != 0) return 2;
    replay_rate = static_cast<double>(n) / secs;
    replay_peak = PeakRssBytes();
    fs::remove_all(root / "replay");
  }

  // ---- queries ----
  next_stage();
  {
    auto db = StateDb::OpenReadOnly(live.string());
    if (!db.ok()) return std::cerr << db.error().message << "\n", 2;
    std::vector<std::string> ids;
    db.value()->Scan(Table::kMember, "", [&](std::string_view k, const google::protobuf::MessageLite&) {
      ids.emplace_back(KeyPart(k, 1));
      return true;
    });
    // Ceiling: a single point Get of a member row.
    std::vector<double> raw_lat;
    std::mt19937_64 rng(7);
    std::string v;
    for (int i = 0; i < 200'000; ++i) {
      const std::string k = "M" + EntityKey("default", ids[rng() % ids.size()]);
      const auto s = Clock::now();
      db.value()->raw()->Get(rocksdb::ReadOptions(), k, &v);
      raw_lat.push_back(Since(s) * 1e3);
    }
    Metrics metrics;
    QueryService q(*db.value(), &rules);
    ApiServer server(q, metrics, {{"bench-token-0123456789", {"*", "auditor"}}});
    ServerOptions so;
    so.port = 0;
    if (auto err = server.Bind(so)) return std::cerr << *err << "\n", 2;
    server.Start();
    std::vector<std::vector<double>> lat(static_cast<size_t>(query_clients));
    std::atomic<bool> stop{false};
    std::vector<std::thread> clients;
    for (int c = 0; c < query_clients; ++c) {
      clients.emplace_back([&, c] {
        httplib::Client cli("127.0.0.1", server.port());
        cli.set_keep_alive(true);
        cli.set_tcp_nodelay(true);
        httplib::Headers h{{"Authorization", "Bearer bench-token-0123456789"}};
        std::mt19937_64 r(static_cast<uint64_t>(c) + 1);
        while (!stop.load()) {
          const std::string path = "/v1/default/members/" + ids[r() % ids.size()];
          const auto s = Clock::now();
          auto res = cli.Get(path, h);
          lat[static_cast<size_t>(c)].push_back(Since(s) * 1e3);
          if (!res || res->status != 200) std::cerr << "query failed\n";
        }
      });
    }
    std::this_thread::sleep_for(std::chrono::duration<double>(query_seconds));
    stop = true;
    for (auto& t : clients) t.join();
    server.Stop();
    std::vector<double> all_lat;
    for (auto& l : lat) all_lat.insert(all_lat.end(), l.begin(), l.end());
    Report({"query", fmt::format("member lookup p50 ({} clients)", query_clients), Percentile(all_lat, 0.5), "ms",
            "RocksDB point Get p50", Percentile(raw_lat, 0.5), true});
    Report({"query", fmt::format("member lookup p99 ({} clients)", query_clients), Percentile(all_lat, 0.99), "ms",
            "RocksDB point Get p99", Percentile(raw_lat, 0.99), true});
    Report({"query", "member lookups", static_cast<double>(all_lat.size()) / query_seconds, "requests/s"});
    std::cerr << fmt::format("  ({} members in the data dir)\n", ids.size());
  }

  // ---- Kafka ----
  if (!skip_kafka) {
    next_stage();
    auto broker = kafka::DevBroker::Start(1);
    if (!broker.ok()) return std::cerr << broker.error().message << "\n", 2;
    const std::string bs = broker.value()->bootstrap_servers();
    if (auto e = broker.value()->CreateTopic("bench", kafka_partitions)) return std::cerr << e->message << "\n", 2;
    std::stringstream events;
    int64_t kn = 0;
    for_each_line([&](const std::string& l) {
      events << l << '\n';
      return ++kn < kafka_events_max;
    });
    auto settings = kafka::MakeSettings(bs, {}, "").value();
    auto pub = kafka::PublishJsonLines(settings, "bench", events, nullptr);
    if (!pub.ok()) return std::cerr << pub.error().message << "\n", 2;
    t0 = Clock::now();
    const int64_t raw_n = RawConsume(bs, "bench", kafka_partitions);
    const double raw_rate = static_cast<double>(raw_n) / Since(t0);
    Report({"ceiling", "raw librdkafka consume (mock)", raw_rate, "messages/s"});
    auto engine = Engine::Open((root / "kafka").string(), rules, EngineOptions{});
    if (!engine.ok()) return std::cerr << engine.error().message << "\n", 2;
    kafka::RunOptions ro;
    ro.settings = settings;
    ro.topic = "bench";
    ro.exit_at_end = true;
    ro.idle_ms = 0;
    std::atomic<bool> stop{false};
    auto run = kafka::Run(*engine.value(), ro, stop, [](const std::string&) {});
    if (!run.ok()) return std::cerr << run.error().message << "\n", 2;
    Report({"kafka", fmt::format("Kafka end to end ({} events)", run.value().consumed),
            static_cast<double>(run.value().consumed) / run.value().consuming_seconds, "events/s",
            "raw librdkafka consume (mock)", raw_rate});
  }

  // ---- pure fold (last: MemStore holds every row in memory, so on a prefix) ----
  next_stage();
  const int64_t fold_n = std::min(n, fold_events_max);
  const std::string fold_what =
      fold_n == n ? "pure fold (in memory)" : fmt::format("pure fold (in memory, first {})", fold_n);
  {
    MemStore store;
    Processor p(rules, store, ProcessorOptions{});
    p.Load(store);  // empty: a new stream
    t0 = Clock::now();
    int64_t pos = 0;
    for_each_line([&](const std::string& l) {
      p.OfferJson("bench", ++pos, l);
      return pos < fold_n;  // the rest of the file is not read, nor timed
    });
    p.Flush();
    fold_rate = static_cast<double>(fold_n) / Since(t0);
    Report({"fold", fold_what, fold_rate, "events/s", "JSON decode + validate", decode_rate});
  }

  {  // measured above; its ceiling is known only now
    Figure f{"replay", "replay (with history)", replay_rate, "events/s", fold_what, fold_rate};
    f.peak_rss = replay_peak;
    std::cerr << fmt::format("  {:<34} {:>14.1f} {}\n", f.what, f.value, f.unit);
    g_figures.push_back(std::move(f));
  }

  // ---- the table ----
  std::cout << fmt::format("\nfission bench: {} events, {} members x {} days, {} cores\n\n", n, o.members, o.days,
                           std::thread::hardware_concurrency());
  std::cout << fmt::format("{:<36} {:>14} {:<11} {:<34} {:>14} {:>7} {:>10}\n", "figure", "fission", "unit",
                           "ceiling", "value", "ratio", "peak RSS");
  nlohmann::json j;
  j["events"] = n;
  j["members"] = o.members;
  j["days"] = o.days;
  for (const auto& f : g_figures) {
    std::string ratio;
    if (f.ceiling && *f.ceiling > 0 && f.value > 0) {
      ratio = fmt::format("{:.2f}", f.lower_is_better ? *f.ceiling / f.value : f.value / *f.ceiling);
    }
    std::cout << fmt::format("{:<36} {:>14.3f} {:<11} {:<34} {:>14} {:>7} {:>7} MiB\n", f.what, f.value, f.unit,
                             f.ceiling_what, f.ceiling ? fmt::format("{:.3f}", *f.ceiling) : "", ratio,
                             f.peak_rss >> 20);
    j["figures"].push_back({{"stage", f.stage}, {"figure", f.what}, {"value", f.value}, {"unit", f.unit},
                            {"ceiling", f.ceiling_what}, {"ceiling_value", f.ceiling ? nlohmann::json(*f.ceiling) : nlohmann::json()},
                            {"peak_rss_bytes", f.peak_rss}});
  }
  if (!json_out.empty()) std::ofstream(json_out) << j.dump(2) << "\n";
  if (!keep_work_dir) fs::remove_all(work);
  return 0;
}
