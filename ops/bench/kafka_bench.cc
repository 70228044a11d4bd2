// Kafka throughput in one run on one mock cluster: the raw librdkafka consume
// rate of the topic against fission's consume-to-projection rate.
//
//   build/release/ops/fission_kafka_bench [--members N] [--days N] [--partitions N]
//
// Prints figures; asserts nothing (benchmarks are not tests).
#include <fmt/format.h>
#include <librdkafka/rdkafka.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <sstream>

#include "engine/kafka.h"
#include "replay/synth.h"

using namespace fission;
using Clock = std::chrono::steady_clock;

namespace {

// Reads every partition of `topic` to its end with a plain consumer; returns
// the messages and payload bytes read.
std::pair<int64_t, int64_t> RawConsume(const std::string& bootstrap, const std::string& topic, int partitions) {
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
  int64_t n = 0, bytes = 0;
  int at_end = 0;
  while (at_end < partitions) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(c, 100);
    if (!m) continue;
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      ++at_end;
    } else if (!m->err) {
      ++n;
      bytes += static_cast<int64_t>(m->len);
    }
    rd_kafka_message_destroy(m);
  }
  rd_kafka_consumer_close(c);
  rd_kafka_destroy(c);
  return {n, bytes};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"fission Kafka benchmark: raw consume vs consume-to-projection on one mock cluster"};
  SynthOptions o;
  o.members = 6000;
  o.days = 14;
  o.bad_fraction = 0;
  int partitions = 4;
  app.add_option("--members", o.members, "Members in the generated stream")->capture_default_str();
  app.add_option("--days", o.days, "Days of traffic")->capture_default_str();
  app.add_option("--partitions", partitions, "Topic partitions")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  auto broker = kafka::DevBroker::Start(1);
  if (!broker.ok()) return std::cerr << broker.error().message << "\n", 2;
  const std::string bs = broker.value()->bootstrap_servers();
  if (auto e = broker.value()->CreateTopic("bench", partitions)) return std::cerr << e->message << "\n", 2;
  std::stringstream events;
  auto counts = Synthesize(o, [&](const std::string& l) { events << l << '\n'; });
  auto settings = kafka::MakeSettings(bs, {}, "").value();
  auto t0 = Clock::now();
  auto pub = kafka::PublishJsonLines(settings, "bench", events, nullptr);
  if (!pub.ok()) return std::cerr << pub.error().message << "\n", 2;
  const double publish_s = std::chrono::duration<double>(Clock::now() - t0).count();

  t0 = Clock::now();
  const auto [raw_n, raw_bytes] = RawConsume(bs, "bench", partitions);
  const double raw_s = std::chrono::duration<double>(Clock::now() - t0).count();

  const auto dir = std::filesystem::temp_directory_path() / fmt::format("fission-kafka-bench-{}", getpid());
  std::filesystem::remove_all(dir);
  auto rules = ParseRules(SynthRulesJson(o)).value();
  EngineOptions eo;
  auto engine = Engine::Open(dir.string(), rules, eo);
  if (!engine.ok()) return std::cerr << engine.error().message << "\n", 2;
  kafka::RunOptions ro;
  ro.settings = settings;
  ro.topic = "bench";
  ro.exit_at_end = true;
  ro.idle_ms = 0;
  std::atomic<bool> stop{false};
  t0 = Clock::now();
  auto run = kafka::Run(*engine.value(), ro, stop, [](const std::string&) {});
  const double run_s = std::chrono::duration<double>(Clock::now() - t0).count();
  if (!run.ok()) return std::cerr << run.error().message << "\n", 2;
  engine.value().reset();
  std::filesystem::remove_all(dir);

  const double raw_rate = static_cast<double>(raw_n) / raw_s;
  const double run_rate = static_cast<double>(run.value().consumed) / run.value().consuming_seconds;
  std::cout << fmt::format("events {} on {} partitions (published in {:.2f} s)\n", counts.lines, partitions, publish_s)
            << fmt::format("raw librdkafka consume     {:>10.0f} msg/s  ({} in {:.2f} s, {:.1f} MiB)\n", raw_rate, raw_n, raw_s, static_cast<double>(raw_bytes) / (1 << 20))
            << fmt::format("fission consume->project   {:>10.0f} ev/s   ({} in {:.2f} s from the first record; {:.2f} s with the group join)\n", run_rate, run.value().consumed, run.value().consuming_seconds, run_s)
            << fmt::format("ratio                      {:>10.2f}\n", run_rate / raw_rate);
  return 0;
}
