// Kafka adapters: client settings, publishing, the development broker, and
// the consumer loop that feeds the Processor.
//
// Exactly-once effects do not rely on Kafka transactions (the mock cluster
// stubs them, and they cannot cover RocksDB anyway): the consumer stores each
// partition's last processed offset in the same RocksDB WriteBatch as the
// effects, and seeks there on assignment. The offset committed to Kafka is
// advisory (for lag monitoring only).
//
// Errors from librdkafka are translated into KafkaError at this boundary.
#pragma once

#include <atomic>
#include <functional>
#include <istream>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "engine/engine.h"
#include "events/types.h"
#include "fission/v1/events.pb.h"

namespace fission::kafka {

struct KafkaError {
  std::string message;
};

// librdkafka properties, applied in order: bootstrap.servers from --brokers,
// then each line of a config file (key=value, # comments), then each -X.
struct Settings {
  std::vector<std::pair<std::string, std::string>> props;
};

// Builds Settings; `config_file` may be empty. Refuses malformed key=value.
Result<Settings, KafkaError> MakeSettings(const std::string& brokers,
                                          const std::vector<std::string>& x_props,
                                          const std::string& config_file);

// The partitioning key of an event: its tenant. Every effect of an event
// (bindings, commissions, tiers, groups) stays inside its tenant, so a
// partition carries whole tenants and an instance that reads it folds them
// completely: the tenant is the unit of scale-out.
std::string EventKey(const pb::Event& e);

struct PublishStats {
  int64_t lines = 0;
  int64_t sent = 0;     // delivered and acknowledged
  int64_t invalid = 0;  // refused before sending
  int64_t failed = 0;   // delivery failed
};

// Validates each JSON line, encodes it as fission.v1.Event and produces it
// with the idempotent producer. Invalid lines are reported through `invalid`
// (line number, reason, detail) and not sent.
Result<PublishStats, KafkaError> PublishJsonLines(
    const Settings& settings, const std::string& topic, std::istream& in,
    const std::function<void(int64_t line, const std::string& reason, const std::string& detail)>& invalid);

// librdkafka's in-process mock cluster on loopback: real protocol, in-memory
// storage (about 5 MiB per partition), no transactions. For development and tests.
class DevBroker {
 public:
  static Result<std::unique_ptr<DevBroker>, KafkaError> Start(int brokers);
  ~DevBroker();
  std::string bootstrap_servers() const;
  std::optional<KafkaError> CreateTopic(const std::string& topic, int partitions);
  void SetBrokerDown(int broker_id);
  void SetBrokerUp(int broker_id);

 private:
  DevBroker() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Reads every partition of a topic from its beginning to the end it had when
// opened (no consumer group, nothing committed): the source of a replay or an
// archive. Records come as LogRecords with source = lane = "topic/partition"
// and position = offset, exactly as `Run` offers them.
class TopicReader {
 public:
  static Result<std::unique_ptr<TopicReader>, KafkaError> Open(const Settings& settings, const std::string& topic);
  ~TopicReader();
  // The next record; false at the end or on an error (see error()).
  bool Next(pb::LogRecord* r);
  const std::optional<KafkaError>& error() const { return error_; }
  // Records between the beginnings and the ends at open time.
  int64_t total() const { return total_; }
  // The lanes ("topic/partition") of the partitions that hold records.
  std::set<std::string> lanes() const;

 private:
  TopicReader() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::optional<KafkaError> error_;
  int64_t total_ = 0;
};

struct RunOptions {
  Settings settings;
  std::string topic;
  std::string group = "fission";
  std::string dead_letter_topic;  // default "<topic>.dlq"
  // With exit_at_end: how long every partition must have been at its end,
  // and the group quiet (wall clock, engine-side), before the run ends. The
  // watermark is per tenant (spec section 3), so a quiet partition holds
  // nothing back while the run goes on.
  int64_t idle_ms = 10'000;
  // Exit once every assigned partition is at its end and the group has been
  // quiet for idle_ms: apply everything buffered and fire due timers first
  // (finite input, as `ingest` does).
  bool exit_at_end = false;
  size_t batch_events = 8192;
  int64_t checkpoint_ms = 500;
};

struct RunStats {
  int64_t consumed = 0;
  int64_t dead_lettered = 0;
  int64_t checkpoints = 0;
  int assigned_partitions = 0;  // the most held at once
  double consuming_seconds = 0;  // from the first record to the end (excludes the group join)
  int topic_partitions = 0;
};

// Consumes `options.topic` in consumer group `options.group`, folding into
// `engine`, until `stop` is set or (exit_at_end) the input is exhausted.
Result<RunStats, KafkaError> Run(Engine& engine, const RunOptions& options,
                                 const std::atomic<bool>& stop,
                                 const std::function<void(const std::string&)>& log);

}  // namespace fission::kafka
