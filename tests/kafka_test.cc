// Kafka end to end over loopback TCP against librdkafka's mock cluster:
// publish, consume, dead letters, broker outages, and a SIGKILL mid-stream.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <fstream>
#include <sstream>
#include <thread>
#include <tuple>

#include "engine/kafka.h"
#include "engine/query.h"
#include "replay/commands.h"
#include "replay/compare.h"
#include "replay/synth.h"
#include "tests/scenario.h"
#include "tests/test_util.h"

namespace fission::test {
namespace {

namespace fs = std::filesystem;

struct Dir {
  Dir() : path(fs::temp_directory_path() / fmt::format("fission-kafka-{}-{}", getpid(), n++)) { fs::remove_all(path); fs::create_directories(path); }
  ~Dir() { fs::remove_all(path); }
  std::string operator/(const std::string& name) const { return (path / name).string(); }
  static inline int n = 0;
  fs::path path;
};


// Rejections locate their input differently per transport (file line versus
// topic/partition/offset); everything else must be identical.
std::string WithoutInputPositions(const std::string& exported) {
  std::istringstream in(exported);
  std::string out;
  for (std::string l; std::getline(in, l);) {
    if (l.rfind(R"({"kind":"rejection")", 0) == 0) l = l.substr(0, l.find(R"(,"source":)"));
    out += l + "\n";
  }
  return out;
}

// "" when equal, else the first line where `got` and `want` differ; both
// exports are then kept in the temp directory for investigation.
std::string FirstDifference(const std::string& got, const std::string& want) {
  if (got != want) {
    const std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::ofstream((fs::temp_directory_path() / ("fission-mismatch-" + name + "-got.jsonl")).string()) << got;
    std::ofstream((fs::temp_directory_path() / ("fission-mismatch-" + name + "-want.jsonl")).string()) << want;
  }
  std::istringstream g(got), w(want);
  std::string gl, wl;
  for (int n = 1;; ++n) {
    const bool gm = static_cast<bool>(std::getline(g, gl)), wm = static_cast<bool>(std::getline(w, wl));
    if (!gm && !wm) return "";
    if (!gm || !wm || gl != wl) {
      return fmt::format("line {}:\n got: {}\nwant: {}", n, gm ? gl.substr(0, 600) : "<end>", wm ? wl.substr(0, 600) : "<end>");
    }
  }
}

class KafkaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto b = kafka::DevBroker::Start(3);
    ASSERT_TRUE(b.ok()) << b.error().message;
    broker_ = std::move(b).value();
    ASSERT_FALSE(broker_->CreateTopic("events", 4).has_value());
    SynthOptions o;
    o.seed = 21;
    o.members = 1600;
    o.days = 14;
    o.tenants = 8;  // keys are tenants: eight shops spread over the four partitions
    o.bad_fraction = 0;  // hostile lines never reach Kafka: publish refuses them
    // An event beyond the lateness bound is late against the greatest time
    // seen; across partitions that is the slowest partition's (spec section
    // 3), so whether it is late depends on how partitions interleave. Every
    // event within the bound gives the same projections in any interleaving.
    o.very_late_fraction = 0;
    std::ofstream(dir_ / "events.jsonl") << "";
    std::ofstream ev(dir_ / "events.jsonl");
    Synthesize(o, [&](const std::string& l) { ev << l << "\n"; });
    ev.close();
    std::ofstream(dir_ / "rules.json") << SynthRulesJson(o);
    rules_ = MustParseRules(SynthRulesJson(o));
  }

  kafka::Settings Settings() {
    auto s = kafka::MakeSettings(broker_->bootstrap_servers(), {"session.timeout.ms=6000"}, "");
    EXPECT_TRUE(s.ok());
    return s.value();
  }

  void Publish() {
    std::ifstream in(dir_ / "events.jsonl");
    auto r = kafka::PublishJsonLines(Settings(), "events", in, nullptr);
    ASSERT_TRUE(r.ok()) << r.error().message;
    ASSERT_EQ(r.value().invalid, 0);
    ASSERT_EQ(r.value().sent, r.value().lines);
  }

  kafka::RunStats Consume(const std::string& data_dir, const std::atomic<bool>& stop, bool exit_at_end = true,
                          int64_t idle_ms = 1000,
                          std::function<void(const std::string&)> log = [](const std::string&) {}) {
    EngineOptions opt;
    opt.db.sync_commits = false;
    auto engine = Engine::Open(data_dir, rules_, opt);
    EXPECT_TRUE(engine.ok());
    kafka::RunOptions ro;
    ro.settings = Settings();
    ro.topic = "events";
    ro.group = "g";
    ro.exit_at_end = exit_at_end;
    ro.idle_ms = idle_ms;
    ro.batch_events = 200;
    auto r = kafka::Run(*engine.value(), ro, stop, log);
    EXPECT_TRUE(r.ok()) << r.error().message;
    return r.ok() ? r.value() : kafka::RunStats{};
  }

  std::string IngestExport() {
    EngineOptions opt;
    opt.db.sync_commits = false;
    auto e = Engine::Open(dir_ / "ingested", rules_, opt);
    EXPECT_TRUE(e.ok());
    std::ifstream in(dir_ / "events.jsonl");
    EXPECT_FALSE(e.value()->IngestJsonLines(in, dir_ / "events.jsonl").has_value());
    EXPECT_FALSE(e.value()->Finish().has_value());
    e.value().reset();
    return ExportDir(dir_ / "ingested");
  }

  Dir dir_;
  RuleBook rules_;
  std::unique_ptr<kafka::DevBroker> broker_;
};

TEST_F(KafkaTest, FourPartitionsConsumedEqualTheIngestOfTheSameEvents) {
  Publish();
  std::atomic<bool> stop{false};
  auto st = Consume(dir_ / "consumed", stop);
  EXPECT_EQ(st.assigned_partitions, 4);
  EXPECT_EQ(st.topic_partitions, 4);
  const std::string want = IngestExport();
  ASSERT_GT(want.size(), 50'000u);
  EXPECT_TRUE(WithoutInputPositions(ExportDir(dir_ / "consumed")) == WithoutInputPositions(want));
  EXPECT_NE(ExportDir(dir_ / "consumed").find(R"("source":"events/)"), std::string::npos);
}

int64_t LineCount(const std::string& path) {
  std::ifstream in(path);
  int64_t n = 0;
  for (std::string l; std::getline(in, l);) ++n;
  return n;
}

// The canonical export of several instances' data dirs, merged as `fission export` does.
std::string MergedExport(const std::vector<std::string>& dirs) {
  std::vector<std::unique_ptr<StateDb>> dbs;
  std::vector<Store*> stores;
  for (const auto& d : dirs) {
    auto db = StateDb::OpenReadOnly(d);
    EXPECT_TRUE(db.ok());
    dbs.push_back(std::move(db).value());
    stores.push_back(dbs.back().get());
  }
  std::ostringstream out;
  auto err = ExportMerged(stores, out);
  EXPECT_FALSE(err.has_value()) << *err;
  return out.str();
}

TEST_F(KafkaTest, RunReportsConsumerLagPerPartitionAndOffsetsAsProvenance) {
  Publish();
  EngineOptions opt;
  opt.db.sync_commits = false;
  opt.db.audit_vector_memtable = false;  // queried below from its own writer, as with --listen
  auto engine = Engine::Open(dir_ / "consumed", rules_, opt);
  ASSERT_TRUE(engine.ok());
  Metrics metrics;
  engine.value()->set_metrics(&metrics);
  kafka::RunOptions ro;
  auto settings = kafka::MakeSettings(broker_->bootstrap_servers(),
                                      {"session.timeout.ms=6000", "statistics.interval.ms=100"}, "");
  ASSERT_TRUE(settings.ok());
  ro.settings = settings.value();
  ro.topic = "events";
  ro.group = "g";
  ro.exit_at_end = true;
  ro.idle_ms = 1000;
  ro.batch_events = 200;
  std::atomic<bool> stop{false};
  auto r = kafka::Run(*engine.value(), ro, stop, [](const std::string&) {});
  ASSERT_TRUE(r.ok()) << r.error().message;
  const std::string text = metrics.Scrape();
  for (int p = 0; p < 4; ++p) {
    EXPECT_NE(text.find(fmt::format(R"(fission_consumer_lag{{partition="{}",topic="events"}})", p)), std::string::npos)
        << "partition " << p << "\n" << text.substr(0, 3000);
  }
  const auto& meta = engine.value()->processor().meta();
  EXPECT_NE(text.find(fmt::format("fission_events_offered_total {}", meta.offered())), std::string::npos);
  EXPECT_NE(text.find(fmt::format(R"(fission_events_applied_total{{type="payment"}} {})",
                                  meta.applied_by_type().at("payment"))), std::string::npos);
  // A commission line names the topic partition and offset it came from, and
  // the stored event is the one published there.
  QueryService q(engine.value()->db(), &rules_);
  auto lb = q.Leaderboard("shop-00", "settled_fen", 1);
  ASSERT_TRUE(lb.ok());
  ASSERT_EQ(lb.value()["distributors"].size(), 1u);
  auto d = q.Distributor("shop-00", lb.value()["distributors"][0]["id"], std::nullopt, Page{});
  ASSERT_TRUE(d.ok());
  const Json& line = d.value()["lines"][0];
  EXPECT_EQ(line["source"].get<std::string>().rfind("events/", 0), 0u) << line.dump();
  auto ev = q.Event("shop-00", line["event_id"]);
  ASSERT_TRUE(ev.ok());
  EXPECT_EQ(ev.value()["source"], line["source"]);
  EXPECT_EQ(ev.value()["position"], line["position"]);
  EXPECT_EQ(ev.value()["event"]["order_id"], line["order_id"]);
}

TEST_F(KafkaTest, ReplayFromTheTopicAndFromItsArchiveGivesTheConsumersDigest) {
  Publish();
  std::atomic<bool> stop{false};
  Consume(dir_ / "consumed", stop);
  auto digest = [](const std::string& dir) {
    auto db = StateDb::OpenReadOnly(dir);
    EXPECT_TRUE(db.ok());
    return db.ok() ? DigestOf(*db.value()).hash : std::string();
  };
  const std::string live = digest(dir_ / "consumed");
  ReplayArgs a;
  a.from = "kafka:events";
  a.rules = dir_ / "rules.json";
  a.out = dir_ / "replayed";
  a.quiet = true;
  a.kafka = Settings();
  ASSERT_EQ(RunReplay(a), 0);
  EXPECT_EQ(digest(dir_ / "replayed"), live);
  // A data dir fed from Kafka keeps no log: replay says where to replay from.
  a.from = dir_ / "consumed";
  a.out = dir_ / "nothing";
  EXPECT_EQ(RunReplay(a), 2);

  ArchiveArgs ar;
  ar.from = "kafka:events";
  ar.out = dir_ / "events.fsa";
  ar.quiet = true;
  ar.kafka = Settings();
  ASSERT_EQ(RunArchive(ar), 0);
  a.from = dir_ / "events.fsa";
  a.out = dir_ / "from-archive";
  a.kafka.reset();
  ASSERT_EQ(RunReplay(a), 0);
  EXPECT_EQ(digest(dir_ / "from-archive"), live);
}

TEST_F(KafkaTest, TwoInstancesInOneGroupShareThePartitionsAndTogetherEqualIngest) {
  // The group forms first (both join the empty topic), then the stream is
  // published: each instance reads its two partitions from the start. (Were
  // one to drain everything and leave before the other joined, the second
  // would rebuild every tenant: correct, but not a shared run.)
  std::atomic<bool> stop{false};
  std::atomic<int> holding_two{0};
  auto log = [&](const std::string& m) {
    if (m.find("reading 2 of 4") != std::string::npos) ++holding_two;
  };
  kafka::RunStats a, b;
  std::thread ta([&] { a = Consume(dir_ / "a", stop, true, 8000, log); });
  std::thread tb([&] { b = Consume(dir_ / "b", stop, true, 8000, log); });
  for (int i = 0; i < 600 && holding_two < 2; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const bool formed = holding_two >= 2;
  if (formed) Publish();
  if (!formed) stop = true;
  ta.join();
  tb.join();
  ASSERT_TRUE(formed) << "the two instances never split the partitions two and two";
  EXPECT_GT(a.consumed, 0);
  EXPECT_GT(b.consumed, 0);
  EXPECT_EQ(a.consumed + b.consumed, LineCount(dir_ / "events.jsonl"));
  EXPECT_EQ(FirstDifference(WithoutInputPositions(MergedExport({dir_ / "a", dir_ / "b"})), WithoutInputPositions(IngestExport())), "");
}

TEST_F(KafkaTest, ALateJoinerTakesPartitionsAndTheFirstInstanceDropsItsCopy) {
  Publish();
  std::atomic<bool> stop{false};
  kafka::RunStats a, b;
  std::atomic<bool> a_has_all{false};
  std::thread ta([&] {
    a = Consume(dir_ / "a", stop, true, 10000, [&](const std::string& m) {
      if (m.find("reading 4 of 4") != std::string::npos) a_has_all = true;
    });
  });
  // A holds all four partitions and consumes alone before B joins.
  for (int i = 0; i < 600 && !a_has_all; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  if (!a_has_all) {  // never leave a joinable thread behind
    stop = true;
    ta.join();
    FAIL() << "instance A never held all four partitions";
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  std::thread tb([&] { b = Consume(dir_ / "b", stop, true, 10000); });
  ta.join();
  tb.join();
  EXPECT_EQ(a.assigned_partitions, 4);
  EXPECT_GT(b.consumed, 0);
  EXPECT_GT(a.consumed + b.consumed, LineCount(dir_ / "events.jsonl")) << "B rebuilt what A had read";
  EXPECT_EQ(FirstDifference(WithoutInputPositions(MergedExport({dir_ / "a", dir_ / "b"})), WithoutInputPositions(IngestExport())), "");
}

TEST_F(KafkaTest, ARestartedConsumerResumesFromItsStoredPositions) {
  Publish();
  std::atomic<bool> stop{false};
  std::thread stopper([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    stop = true;
  });
  auto first = Consume(dir_ / "consumed", stop, false);
  stopper.join();
  std::atomic<bool> never{false};
  auto second = Consume(dir_ / "consumed", never);
  EXPECT_GT(first.consumed + second.consumed, 0);
  EXPECT_EQ(FirstDifference(WithoutInputPositions(ExportDir(dir_ / "consumed")), WithoutInputPositions(IngestExport())), "");
}

TEST_F(KafkaTest, ABrokerOutageLosesNothing) {
  Publish();
  std::atomic<bool> stop{false};
  std::thread outage([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    for (int id = 1; id <= 3; ++id) broker_->SetBrokerDown(id);
    std::this_thread::sleep_for(std::chrono::milliseconds(2500));
    for (int id = 1; id <= 3; ++id) broker_->SetBrokerUp(id);
  });
  Consume(dir_ / "consumed", stop);
  outage.join();
  EXPECT_EQ(FirstDifference(WithoutInputPositions(ExportDir(dir_ / "consumed")), WithoutInputPositions(IngestExport())), "");
}

// Produces raw bytes to partition 0 of `topic`.
void ProduceRaw(const std::string& bootstrap, const std::string& topic, const std::vector<std::string>& values) {
  char err[256];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap.c_str(), err, sizeof err);
  rd_kafka_t* p = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  ASSERT_NE(p, nullptr) << err;
  for (const auto& v : values) {
    ASSERT_EQ(rd_kafka_producev(p, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_PARTITION(0),
                                RD_KAFKA_V_VALUE(const_cast<char*>(v.data()), v.size()),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
              RD_KAFKA_RESP_ERR_NO_ERROR);
  }
  ASSERT_EQ(rd_kafka_flush(p, 10'000), RD_KAFKA_RESP_ERR_NO_ERROR);
  rd_kafka_destroy(p);
}

// Reads every message of `topic`'s partition 0 with its headers.
std::vector<std::map<std::string, std::string>> ReadHeaders(const std::string& bootstrap, const std::string& topic, size_t want) {
  char err[256];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap.c_str(), err, sizeof err);
  rd_kafka_conf_set(conf, "group.id", "reader", err, sizeof err);
  rd_kafka_t* c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
  rd_kafka_topic_partition_list_t* parts = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(parts, topic.c_str(), 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
  rd_kafka_assign(c, parts);
  rd_kafka_topic_partition_list_destroy(parts);
  std::vector<std::map<std::string, std::string>> out;
  for (int i = 0; i < 100 && out.size() < want; ++i) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(c, 100);
    if (!m) continue;
    if (!m->err) {
      std::map<std::string, std::string> h;
      rd_kafka_headers_t* hs = nullptr;
      if (rd_kafka_message_headers(m, &hs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        const char* name;
        const void* val;
        size_t size;
        for (size_t k = 0; rd_kafka_header_get_all(hs, k, &name, &val, &size) == RD_KAFKA_RESP_ERR_NO_ERROR; ++k) {
          h[name] = std::string(static_cast<const char*>(val), size);
        }
      }
      out.push_back(std::move(h));
    }
    rd_kafka_message_destroy(m);
  }
  rd_kafka_consumer_close(c);
  rd_kafka_destroy(c);
  return out;
}

TEST_F(KafkaTest, BadRecordsGoToTheDeadLetterTopicAndNeverStallThePartition) {
  ASSERT_FALSE(broker_->CreateTopic("events.dlq", 1).has_value());
  pb::Event missing;  // valid Protobuf without event_id, type or time
  missing.set_member("m1");
  pb::Event unknown;
  unknown.set_event_id("u1");
  unknown.set_occurred_at_ms(Ms(At(1)));
  unknown.set_type(static_cast<pb::EventType>(42));
  auto good = DecodeJson(Checkin("c-good", At(1), "after-the-bad-ones")).value();
  ProduceRaw(broker_->bootstrap_servers(), "events",
             {std::string("\xff\xff\xff\x01 garbage"), missing.SerializeAsString(), unknown.SerializeAsString(), good.SerializeAsString()});
  std::atomic<bool> stop{false};
  auto st = Consume(dir_ / "consumed", stop);
  EXPECT_EQ(st.dead_lettered, 3);
  const std::string out = ExportDir(dir_ / "consumed");
  EXPECT_NE(out.find(R"("id":"after-the-bad-ones")"), std::string::npos) << "the good record after the bad ones was applied";
  EXPECT_NE(out.find(R"("reason":"invalid_event","source":"events/0","position":0)"), std::string::npos) << out;
  EXPECT_NE(out.find(R"("id":"u1","reason":"unknown_type","source":"events/0","position":2)"), std::string::npos) << out;
  auto dlq = ReadHeaders(broker_->bootstrap_servers(), "events.dlq", 3);
  ASSERT_EQ(dlq.size(), 3u);
  EXPECT_EQ(dlq[0]["fission.reason"], "invalid_event");
  EXPECT_EQ(dlq[0]["fission.source.offset"], "0");
  EXPECT_NE(dlq[1]["fission.detail"].find("event_id"), std::string::npos);
  EXPECT_EQ(dlq[2]["fission.reason"], "unknown_type");
  EXPECT_EQ(dlq[2]["fission.source.partition"], "0");
}


pid_t SpawnFission(const std::vector<std::string>& args, const std::string& log) {
  pid_t pid = fork();
  if (pid == 0) {
    int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    std::vector<char*> argv{const_cast<char*>(FISSION_BIN)};
    for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(FISSION_BIN, argv.data());
    _exit(127);
  }
  return pid;
}

TEST_F(KafkaTest, SigkillMidStreamThenRestartLosesAndDoublesNothing) {
  Publish();
  const std::vector<std::string> args = {"run", "--brokers", broker_->bootstrap_servers(), "--topic", "events",
                                         "--group", "killed", "--data-dir", dir_ / "consumed", "--rules", dir_ / "rules.json",
                                         "--no-sync", "--idle-ms", "1000", "-X", "session.timeout.ms=6000", "--exit-at-end"};
  pid_t pid = SpawnFission(args, dir_ / "run1.log");
  // Kill 300 ms after the partitions are assigned: in the middle of consuming.
  for (int i = 0; i < 300 && Slurp(dir_ / "run1.log").find("assigned") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status));
  ASSERT_EQ(Slurp(dir_ / "run1.log").find("consumed"), std::string::npos) << "the first run finished before the kill";
  pid = SpawnFission(args, dir_ / "run2.log");
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_EQ(FirstDifference(WithoutInputPositions(ExportDir(dir_ / "consumed")), WithoutInputPositions(IngestExport())), "");
}

TEST_F(KafkaTest, SigkillOneOfTwoInstancesAndTheOtherTakesOverItsPartitions) {
  Publish();
  auto args = [&](const std::string& data) {
    return std::vector<std::string>{"run", "--brokers", broker_->bootstrap_servers(), "--topic", "events", "--group", "pair",
                                    "--data-dir", data, "--rules", dir_ / "rules.json", "--no-sync",
                                    "-X", "session.timeout.ms=6000", "--exit-at-end", "--idle-ms", "9000"};
  };
  pid_t a = SpawnFission(args(dir_ / "a"), dir_ / "a.log");
  pid_t b = SpawnFission(args(dir_ / "b"), dir_ / "b.log");
  // Kill A once both hold partitions, while A is consuming.
  for (int i = 0; i < 400; ++i) {
    if (Slurp(dir_ / "a.log").find("assigned") != std::string::npos &&
        Slurp(dir_ / "b.log").find("assigned") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  kill(a, SIGKILL);
  int status = 0;
  waitpid(a, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status));
  waitpid(b, &status, 0);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << Slurp(dir_ / "b.log");
  const std::string blog = Slurp(dir_ / "b.log");
  EXPECT_NE(blog.find("reading 4 of 4 partitions"), std::string::npos) << "B never took over A's partitions:\n" << blog;
  EXPECT_EQ(FirstDifference(WithoutInputPositions(ExportDir(dir_ / "b")), WithoutInputPositions(IngestExport())), "");
}

TEST_F(KafkaTest, PublishRefusesInvalidLinesWithTheirNumbersAndExitsNonZero) {
  std::ofstream(dir_ / "mixed.jsonl") << Checkin("c1", At(1), "m1") << "\n{broken\n"
                                       << Pay("p1", At(1), "m1", "o1", -5) << "\n" << Checkin("c2", At(1), "m2") << "\n";
  pid_t pid = SpawnFission({"publish", "--brokers", broker_->bootstrap_servers(), "--topic", "events", dir_ / "mixed.jsonl"},
                           dir_ / "publish.log");
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 1);
  const std::string log = Slurp(dir_ / "publish.log");
  EXPECT_NE(log.find("mixed.jsonl:2: invalid_event: malformed JSON"), std::string::npos) << log;
  EXPECT_NE(log.find("mixed.jsonl:3: invalid_event: field 'amount_fen' must be in [1, 1000000000000], got -5"), std::string::npos) << log;
  EXPECT_NE(log.find("published 2 of 4 lines"), std::string::npos) << log;
}

TEST(KafkaSettings, ConfigFileThenDashXInOrderAndMalformedLinesRefused) {
  auto s = kafka::MakeSettings("h:1", {"security.protocol=SASL_SSL", "session.timeout.ms = 7000"},
                               std::string(FISSION_SOURCE_DIR) + "/ops/kafka/fission.properties");
  ASSERT_TRUE(s.ok()) << s.error().message;
  const auto& p = s.value().props;
  EXPECT_EQ(p.front(), (std::pair<std::string, std::string>{"bootstrap.servers", "h:1"}));
  EXPECT_EQ(p.back(), (std::pair<std::string, std::string>{"session.timeout.ms", "7000"}));
  auto bad = kafka::MakeSettings("h:1", {"novalue"}, "");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("expected key=value"), std::string::npos);
}

TEST(KafkaKeys, ATenantsEventsShareOneKey) {
  auto pay = DecodeJson(Pay("p1", At(1), "m1", "o1", 100)).value();
  auto refund = DecodeJson(Refund("r1", At(2), "o2", 50)).value();
  auto checkin = DecodeJson(R"({"event_id":"c","type":"checkin","occurred_at":")" + At(1) + R"(","member":"m1","tenant":"shop"})").value();
  EXPECT_EQ(kafka::EventKey(pay), "default");
  EXPECT_EQ(kafka::EventKey(refund), kafka::EventKey(pay));
  EXPECT_EQ(kafka::EventKey(checkin), "shop");
}

}  // namespace
}  // namespace fission::test
