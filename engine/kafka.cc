#include "engine/kafka.h"

#include <fmt/format.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <chrono>
#include <fstream>
#include <map>
#include <set>

#include "events/decode.h"

namespace fission::kafka {
namespace {

using Clock = std::chrono::steady_clock;

struct KafkaDeleter {
  void operator()(rd_kafka_t* rk) const { rd_kafka_destroy(rk); }
};
using KafkaHandle = std::unique_ptr<rd_kafka_t, KafkaDeleter>;

std::string Trim(std::string s) {
  const auto a = s.find_first_not_of(" \t\r");
  const auto b = s.find_last_not_of(" \t\r");
  return a == std::string::npos ? std::string() : s.substr(a, b - a + 1);
}

// A configured rd_kafka_conf_t with `settings` and then `overrides` applied.
Result<rd_kafka_conf_t*, KafkaError> MakeConf(
    const Settings& settings, const std::vector<std::pair<std::string, std::string>>& defaults,
    const std::vector<std::pair<std::string, std::string>>& overrides) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char err[512];
  auto apply = [&](const std::pair<std::string, std::string>& kv) -> std::optional<KafkaError> {
    if (rd_kafka_conf_set(conf, kv.first.c_str(), kv.second.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
      return KafkaError{fmt::format("Kafka setting {}={}: {}", kv.first, kv.second, err)};
    }
    return std::nullopt;
  };
  for (auto* list : {&defaults, &settings.props, &overrides}) {
    for (const auto& kv : *list) {
      if (auto e = apply(kv)) {
        rd_kafka_conf_destroy(conf);
        return Result<rd_kafka_conf_t*, KafkaError>::Error(*e);
      }
    }
  }
  return conf;
}

Result<KafkaHandle, KafkaError> NewClient(rd_kafka_type_t type, rd_kafka_conf_t* conf) {
  char err[512];
  rd_kafka_t* rk = rd_kafka_new(type, conf, err, sizeof err);
  if (!rk) {
    rd_kafka_conf_destroy(conf);
    return Result<KafkaHandle, KafkaError>::Error({fmt::format("cannot create Kafka client: {}", err)});
  }
  return KafkaHandle(rk);
}

void CountDelivery(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
  auto* stats = static_cast<PublishStats*>(opaque);
  if (m->err) {
    ++stats->failed;
  } else {
    ++stats->sent;
  }
}

// Produces with back-pressure: waits on delivery reports while the local queue is full.
rd_kafka_resp_err_t Produce(rd_kafka_t* rk, const std::string& topic, const std::string& key,
                            const std::string& value, rd_kafka_headers_t* headers) {
  for (;;) {
    rd_kafka_resp_err_t e;
    if (headers) {
      e = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_KEY(key.data(), key.size()),
                            RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
                            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(headers), RD_KAFKA_V_END);
    } else {
      e = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_KEY(key.data(), key.size()),
                            RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
                            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
    }
    if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) return e;
    rd_kafka_poll(rk, 50);
  }
}

}  // namespace

Result<Settings, KafkaError> MakeSettings(const std::string& brokers, const std::vector<std::string>& x_props,
                                          const std::string& config_file) {
  Settings s;
  if (!brokers.empty()) s.props.emplace_back("bootstrap.servers", brokers);
  auto add = [&](const std::string& line, const std::string& where) -> std::optional<KafkaError> {
    const auto eq = line.find('=');
    if (eq == std::string::npos || Trim(line.substr(0, eq)).empty()) {
      return KafkaError{fmt::format("{}: expected key=value, got '{}'", where, line)};
    }
    s.props.emplace_back(Trim(line.substr(0, eq)), Trim(line.substr(eq + 1)));
    return std::nullopt;
  };
  if (!config_file.empty()) {
    std::ifstream in(config_file);
    if (!in) return Result<Settings, KafkaError>::Error({fmt::format("cannot read Kafka config '{}'", config_file)});
    int n = 0;
    for (std::string line; std::getline(in, line);) {
      ++n;
      line = Trim(line);
      if (line.empty() || line[0] == '#') continue;
      if (auto e = add(line, fmt::format("{}:{}", config_file, n))) return Result<Settings, KafkaError>::Error(*e);
    }
  }
  for (const auto& x : x_props) {
    if (auto e = add(x, "-X")) return Result<Settings, KafkaError>::Error(*e);
  }
  return s;
}

std::string EventKey(const pb::Event& e) { return e.tenant(); }

Result<PublishStats, KafkaError> PublishJsonLines(
    const Settings& settings, const std::string& topic, std::istream& in,
    const std::function<void(int64_t, const std::string&, const std::string&)>& invalid) {
  PublishStats stats;
  auto conf = MakeConf(settings, {{"linger.ms", "5"}},
                       {{"enable.idempotence", "true"}});  // never weakened by -X: no duplicates, no reordering
  if (!conf.ok()) return Result<PublishStats, KafkaError>::Error(conf.error());
  rd_kafka_conf_set_opaque(conf.value(), &stats);
  rd_kafka_conf_set_dr_msg_cb(conf.value(), CountDelivery);
  auto rk = NewClient(RD_KAFKA_PRODUCER, conf.value());
  if (!rk.ok()) return Result<PublishStats, KafkaError>::Error(rk.error());
  LineReader reader(in, kMaxEventBytes);
  std::string line;
  while (reader.Next(&line)) {
    ++stats.lines;
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    auto e = DecodeJson(line);
    if (!e.ok()) {
      ++stats.invalid;
      if (invalid) invalid(reader.line_number(), e.error().reason, e.error().detail);
      continue;
    }
    const rd_kafka_resp_err_t err = Produce(rk.value().get(), topic, EventKey(e.value()), e.value().SerializeAsString(), nullptr);
    if (err) return Result<PublishStats, KafkaError>::Error({fmt::format("produce to '{}' failed: {}", topic, rd_kafka_err2str(err))});
    rd_kafka_poll(rk.value().get(), 0);
  }
  const rd_kafka_resp_err_t err = rd_kafka_flush(rk.value().get(), 120'000);
  if (err) return Result<PublishStats, KafkaError>::Error({fmt::format("flush failed: {} ({} not acknowledged)", rd_kafka_err2str(err), rd_kafka_outq_len(rk.value().get()))});
  return stats;
}

struct DevBroker::Impl {
  KafkaHandle rk;
  rd_kafka_mock_cluster_t* cluster = nullptr;
  ~Impl() {
    if (cluster) rd_kafka_mock_cluster_destroy(cluster);
  }
};

Result<std::unique_ptr<DevBroker>, KafkaError> DevBroker::Start(int brokers) {
  auto conf = MakeConf({}, {}, {{"log_level", "3"}});
  if (!conf.ok()) return Result<std::unique_ptr<DevBroker>, KafkaError>::Error(conf.error());
  auto rk = NewClient(RD_KAFKA_PRODUCER, conf.value());
  if (!rk.ok()) return Result<std::unique_ptr<DevBroker>, KafkaError>::Error(rk.error());
  std::unique_ptr<DevBroker> b(new DevBroker());
  b->impl_ = std::make_unique<Impl>();
  b->impl_->rk = std::move(rk).value();
  b->impl_->cluster = rd_kafka_mock_cluster_new(b->impl_->rk.get(), brokers);
  if (!b->impl_->cluster) return Result<std::unique_ptr<DevBroker>, KafkaError>::Error({"cannot start the mock cluster"});
  return b;
}

DevBroker::~DevBroker() = default;

std::string DevBroker::bootstrap_servers() const { return rd_kafka_mock_cluster_bootstraps(impl_->cluster); }

std::optional<KafkaError> DevBroker::CreateTopic(const std::string& topic, int partitions) {
  rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(impl_->cluster, topic.c_str(), partitions, 1);
  if (e) return KafkaError{fmt::format("cannot create topic '{}': {}", topic, rd_kafka_err2str(e))};
  return std::nullopt;
}

struct TopicReader::Impl {
  KafkaHandle rk;
  std::string topic;
  std::map<int32_t, int64_t> end;  // partition -> offset one past the last record at open
  std::set<int32_t> done;
};

Result<std::unique_ptr<TopicReader>, KafkaError> TopicReader::Open(const Settings& settings, const std::string& topic) {
  using R = Result<std::unique_ptr<TopicReader>, KafkaError>;
  auto conf = MakeConf(settings, {}, {{"group.id", "fission-reader"}, {"enable.auto.commit", "false"},
                                      {"enable.auto.offset.store", "false"}, {"enable.partition.eof", "false"}});
  if (!conf.ok()) return R::Error(conf.error());
  auto rk = NewClient(RD_KAFKA_CONSUMER, conf.value());
  if (!rk.ok()) return R::Error(rk.error());
  std::unique_ptr<TopicReader> r(new TopicReader());
  r->impl_ = std::make_unique<Impl>();
  r->impl_->rk = std::move(rk).value();
  r->impl_->topic = topic;
  rd_kafka_t* h = r->impl_->rk.get();
  rd_kafka_poll_set_consumer(h);
  const rd_kafka_metadata_t* md = nullptr;
  rd_kafka_topic_t* tp = rd_kafka_topic_new(h, topic.c_str(), nullptr);
  rd_kafka_resp_err_t err = rd_kafka_metadata(h, 0, tp, &md, 10'000);
  rd_kafka_topic_destroy(tp);
  if (err || !md || md->topic_cnt != 1 || md->topics[0].err) {
    const auto e = err ? err : (md && md->topic_cnt == 1 ? md->topics[0].err : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC);
    if (md) rd_kafka_metadata_destroy(md);
    return R::Error({fmt::format("topic '{}': {}", topic, rd_kafka_err2str(e))});
  }
  rd_kafka_topic_partition_list_t* parts = rd_kafka_topic_partition_list_new(md->topics[0].partition_cnt);
  for (int i = 0; i < md->topics[0].partition_cnt; ++i) {
    const int32_t p = md->topics[0].partitions[i].id;
    int64_t low = 0, high = 0;
    err = rd_kafka_query_watermark_offsets(h, topic.c_str(), p, &low, &high, 10'000);
    if (err) {
      rd_kafka_metadata_destroy(md);
      rd_kafka_topic_partition_list_destroy(parts);
      return R::Error({fmt::format("offsets of {}/{}: {}", topic, p, rd_kafka_err2str(err))});
    }
    r->total_ += high - low;
    if (high > low) {
      r->impl_->end[p] = high;
      rd_kafka_topic_partition_list_add(parts, topic.c_str(), p)->offset = low;
    }
  }
  rd_kafka_metadata_destroy(md);
  err = parts->cnt > 0 ? rd_kafka_assign(h, parts) : RD_KAFKA_RESP_ERR_NO_ERROR;
  rd_kafka_topic_partition_list_destroy(parts);
  if (err) return R::Error({fmt::format("assign {}: {}", topic, rd_kafka_err2str(err))});
  return r;
}

std::set<std::string> TopicReader::lanes() const {
  std::set<std::string> out;
  for (const auto& [p, end] : impl_->end) out.insert(fmt::format("{}/{}", impl_->topic, p));
  return out;
}

TopicReader::~TopicReader() {
  if (impl_ && impl_->rk) rd_kafka_consumer_close(impl_->rk.get());
}

bool TopicReader::Next(pb::LogRecord* r) {
  Impl& s = *impl_;
  int idle_polls = 0;
  while (s.done.size() < s.end.size()) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(s.rk.get(), 500);
    if (!m) {
      if (++idle_polls > 120) {  // a minute without a record while some are still due
        error_ = KafkaError{fmt::format("no records from '{}' for a minute with {} of {} partitions unfinished",
                                        s.topic, s.end.size() - s.done.size(), s.end.size())};
        return false;
      }
      continue;
    }
    idle_polls = 0;
    if (m->err) {
      const std::string what = rd_kafka_message_errstr(m);
      const bool fatal = m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF;
      rd_kafka_message_destroy(m);
      if (fatal) {
        error_ = KafkaError{fmt::format("reading '{}': {}", s.topic, what)};
        return false;
      }
      continue;
    }
    auto it = s.end.find(m->partition);
    if (it == s.end.end() || m->offset >= it->second) {  // past the end at open: not part of this read
      if (it != s.end.end()) s.done.insert(m->partition);
      rd_kafka_message_destroy(m);
      continue;
    }
    const std::string lane = fmt::format("{}/{}", s.topic, m->partition);
    r->Clear();
    r->set_source(lane);
    r->set_lane(lane);
    r->set_position(m->offset);
    r->set_payload(static_cast<const char*>(m->payload), m->len);
    r->set_encoding(pb::LogRecord::PROTOBUF);
    if (m->offset + 1 >= it->second) s.done.insert(m->partition);
    rd_kafka_message_destroy(m);
    return true;
  }
  return false;
}

void DevBroker::SetBrokerDown(int id) { rd_kafka_mock_broker_set_down(impl_->cluster, id); }
void DevBroker::SetBrokerUp(int id) { rd_kafka_mock_broker_set_up(impl_->cluster, id); }

namespace {

// Consumer state shared with the rebalance callback.
struct Consumer {
  Engine* engine = nullptr;
  const RunOptions* options = nullptr;
  const std::function<void(const std::string&)>* log = nullptr;
  std::set<std::string> assigned;                    // lanes "topic/partition"
  std::map<std::string, Clock::time_point> at_end;   // lanes at their end since
  std::optional<DbError> error;
  RunStats stats;
  Clock::time_point last_rebalance = Clock::now();

  static std::string Lane(const char* topic, int32_t partition) { return fmt::format("{}/{}", topic, partition); }

  void Checkpoint(rd_kafka_t* rk) {
    if (error) return;
    if (auto e = engine->Checkpoint()) {
      error = e;
      return;
    }
    ++stats.checkpoints;
    // Advisory: the stored lane positions are the truth; this serves lag monitoring.
    rd_kafka_topic_partition_list_t* offsets = rd_kafka_topic_partition_list_new(static_cast<int>(assigned.size()));
    const auto& pos = engine->processor().meta().lane_positions();
    for (const auto& lane : assigned) {
      auto it = pos.find(lane);
      if (it == pos.end()) continue;
      const auto slash = lane.rfind('/');
      rd_kafka_topic_partition_list_add(offsets, lane.substr(0, slash).c_str(), std::stoi(lane.substr(slash + 1)))->offset = it->second + 1;
    }
    if (offsets->cnt > 0) rd_kafka_commit(rk, offsets, 1);
    rd_kafka_topic_partition_list_destroy(offsets);
  }

  void Rebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts) {
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
      // Partitions this data dir held before and was not given back now
      // belong to another instance, which rebuilds their tenants from the
      // topic: drop them here so no stale copy remains (and should one come
      // back later, it is rebuilt from the beginning too).
      std::set<std::string> incoming;
      for (int i = 0; i < parts->cnt; ++i) incoming.insert(Lane(parts->elems[i].topic, parts->elems[i].partition));
      std::vector<std::string> gone;
      for (const auto& [lane, offset] : engine->processor().meta().lane_positions()) {
        if (lane.rfind(options->topic + "/", 0) == 0 && !incoming.count(lane)) gone.push_back(lane);
      }
      Checkpoint(rk);
      for (const auto& lane : gone) {
        if (error) break;
        try {
          const auto dropped = engine->mutable_processor().DropLane(lane);
          (*log)(fmt::format("{} now belongs to another instance: dropped its {} tenants here", lane, dropped.size()));
        } catch (const std::exception& ex) {  // never let an exception unwind into librdkafka
          error = DbError{ex.what()};
          break;
        }
        Checkpoint(rk);  // the drop's deletes, with the lane's position gone, in one commit
      }
      const auto& pos = engine->processor().meta().lane_positions();
      for (int i = 0; i < parts->cnt; ++i) {
        auto& p = parts->elems[i];
        const std::string lane = Lane(p.topic, p.partition);
        auto it = pos.find(lane);
        p.offset = it == pos.end() ? RD_KAFKA_OFFSET_BEGINNING : it->second + 1;  // the stored position is the truth
        assigned.insert(lane);
        (*log)(fmt::format("assigned {} from offset {}", lane, it == pos.end() ? std::string("beginning") : std::to_string(p.offset)));
      }
      rd_kafka_assign(rk, parts);
    } else {
      Checkpoint(rk);
      for (int i = 0; i < parts->cnt; ++i) {
        const std::string lane = Lane(parts->elems[i].topic, parts->elems[i].partition);
        assigned.erase(lane);
        at_end.erase(lane);
      }
      rd_kafka_assign(rk, nullptr);
      (*log)(fmt::format("revoked {} partitions", parts->cnt));
    }
    stats.assigned_partitions = std::max(stats.assigned_partitions, static_cast<int>(assigned.size()));
    last_rebalance = Clock::now();
  }
};

void RebalanceCb(rd_kafka_t* rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts, void* opaque) {
  static_cast<Consumer*>(opaque)->Rebalance(rk, err, parts);
}

}  // namespace

Result<RunStats, KafkaError> Run(Engine& engine, const RunOptions& options, const std::atomic<bool>& stop,
                                 const std::function<void(const std::string&)>& log) {
  Consumer c;
  c.engine = &engine;
  c.options = &options;
  c.log = &log;
  auto conf = MakeConf(options.settings, {{"auto.offset.reset", "earliest"}},
                       {{"group.id", options.group}, {"enable.auto.commit", "false"},
                        {"enable.auto.offset.store", "false"}, {"enable.partition.eof", "true"}});
  if (!conf.ok()) return Result<RunStats, KafkaError>::Error(conf.error());
  rd_kafka_conf_set_opaque(conf.value(), &c);
  rd_kafka_conf_set_rebalance_cb(conf.value(), RebalanceCb);
  if (engine.metrics()) {
    // Consumer lag per partition for /metrics, unless -X statistics.interval.ms=0.
    bool user_set = false;
    for (const auto& kv : options.settings.props) user_set = user_set || kv.first == "statistics.interval.ms";
    char err[256];
    if (!user_set) rd_kafka_conf_set(conf.value(), "statistics.interval.ms", "5000", err, sizeof err);
    rd_kafka_conf_set_stats_cb(conf.value(), [](rd_kafka_t*, char* json, size_t len, void* opaque) {
      static_cast<Consumer*>(opaque)->engine->metrics()->ReportKafkaStatistics(std::string(json, len));
      return 0;  // librdkafka frees the JSON
    });
  }
  auto consumer = NewClient(RD_KAFKA_CONSUMER, conf.value());
  if (!consumer.ok()) return Result<RunStats, KafkaError>::Error(consumer.error());
  rd_kafka_t* rk = consumer.value().get();
  rd_kafka_poll_set_consumer(rk);

  // Dead letters: the same bytes, with headers saying why.
  auto pconf = MakeConf(options.settings, {{"linger.ms", "5"}}, {{"enable.idempotence", "true"}});
  if (!pconf.ok()) return Result<RunStats, KafkaError>::Error(pconf.error());
  auto producer = NewClient(RD_KAFKA_PRODUCER, pconf.value());
  if (!producer.ok()) return Result<RunStats, KafkaError>::Error(producer.error());
  const std::string dlq = options.dead_letter_topic.empty() ? options.topic + ".dlq" : options.dead_letter_topic;

  rd_kafka_topic_partition_list_t* subs = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(subs, options.topic.c_str(), RD_KAFKA_PARTITION_UA);
  rd_kafka_resp_err_t serr = rd_kafka_subscribe(rk, subs);
  rd_kafka_topic_partition_list_destroy(subs);
  if (serr) return Result<RunStats, KafkaError>::Error({fmt::format("subscribe to '{}': {}", options.topic, rd_kafka_err2str(serr))});

  // How many partitions the topic has, to warn when this instance reads only some.
  const rd_kafka_metadata_t* md = nullptr;
  rd_kafka_topic_t* tp = rd_kafka_topic_new(rk, options.topic.c_str(), nullptr);
  if (rd_kafka_metadata(rk, 0, tp, &md, 10'000) == RD_KAFKA_RESP_ERR_NO_ERROR && md->topic_cnt == 1) {
    c.stats.topic_partitions = md->topics[0].partition_cnt;
  }
  if (md) rd_kafka_metadata_destroy(md);
  rd_kafka_topic_destroy(tp);

  Processor& proc = engine.mutable_processor();
  size_t since_checkpoint = 0;
  auto last_checkpoint = Clock::now();
  int reported_partitions = -1;
  Clock::time_point first_record{};
  while (!stop.load() && !c.error) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(rk, 100);
    const auto now = Clock::now();
    if (m) {
      const std::string lane = m->rkt ? Consumer::Lane(rd_kafka_topic_name(m->rkt), m->partition) : std::string();
      if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        c.at_end.emplace(lane, now);
      } else if (m->err) {
        log(fmt::format("Kafka: {}", rd_kafka_message_errstr(m)));
      } else {
        if (c.stats.consumed++ == 0) first_record = now;
        c.at_end.erase(lane);
        const std::string_view bytes(static_cast<const char*>(m->payload), m->len);
        const Outcome o = engine.OfferProto(lane, m->offset, bytes, lane);
        if (o == Outcome::kRejected && (proc.last_reason() == "invalid_event" || proc.last_reason() == "unknown_type")) {
          rd_kafka_headers_t* h = rd_kafka_headers_new(5);
          const std::string off = std::to_string(m->offset), part = std::to_string(m->partition);
          rd_kafka_header_add(h, "fission.reason", -1, proc.last_reason().data(), static_cast<ssize_t>(proc.last_reason().size()));
          rd_kafka_header_add(h, "fission.detail", -1, proc.last_detail().data(), static_cast<ssize_t>(proc.last_detail().size()));
          rd_kafka_header_add(h, "fission.source.topic", -1, options.topic.data(), static_cast<ssize_t>(options.topic.size()));
          rd_kafka_header_add(h, "fission.source.partition", -1, part.data(), static_cast<ssize_t>(part.size()));
          rd_kafka_header_add(h, "fission.source.offset", -1, off.data(), static_cast<ssize_t>(off.size()));
          const std::string key(static_cast<const char*>(m->key ? m->key : ""), m->key_len);
          if (Produce(producer.value().get(), dlq, key, std::string(bytes), h) != RD_KAFKA_RESP_ERR_NO_ERROR) {
            rd_kafka_headers_destroy(h);
            log(fmt::format("could not dead-letter {}@{}; it is in the local rejection store", lane, m->offset));
          } else {
            ++c.stats.dead_lettered;
          }
        }
        proc.SetLanePosition(lane, m->offset);
        ++since_checkpoint;
      }
      rd_kafka_message_destroy(m);
    }
    rd_kafka_poll(producer.value().get(), 0);
    if (since_checkpoint >= options.batch_events ||
        (since_checkpoint > 0 && now - last_checkpoint >= std::chrono::milliseconds(options.checkpoint_ms))) {
      c.Checkpoint(rk);
      since_checkpoint = 0;
      last_checkpoint = now;
    }
    if (!c.assigned.empty() && static_cast<int>(c.assigned.size()) != reported_partitions) {
      reported_partitions = static_cast<int>(c.assigned.size());
      log(fmt::format("reading {} of {} partitions of '{}': projections of the tenants keyed to them",
                      reported_partitions, c.stats.topic_partitions, options.topic));
    }
    if (options.exit_at_end && !c.assigned.empty() && c.at_end.size() == c.assigned.size()) {
      // Drained, and the group quiet for idle_ms: no partition is about to
      // move here (a peer that died is noticed within its session timeout).
      Clock::time_point last = c.last_rebalance;
      for (const auto& [lane, since] : c.at_end) last = std::max(last, since);
      if (now - last >= std::chrono::milliseconds(options.idle_ms)) {
        engine.mutable_processor().Flush();
        c.Checkpoint(rk);
        break;
      }
    }
  }
  if (!c.error && since_checkpoint > 0) c.Checkpoint(rk);
  if (c.stats.consumed > 0) c.stats.consuming_seconds = std::chrono::duration<double>(Clock::now() - first_record).count();
  rd_kafka_flush(producer.value().get(), 30'000);
  rd_kafka_consumer_close(rk);
  if (c.error) return Result<RunStats, KafkaError>::Error({fmt::format("store error, stopped without applying further: {}", c.error->message)});
  return c.stats;
}

}  // namespace fission::kafka
