#include "engine/metrics.h"

#include <nlohmann/json.hpp>
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>
#include <rocksdb/db.h>

#include <chrono>
#include <filesystem>

#include "events/decode.h"

namespace fission {
namespace {

prometheus::Histogram::BucketBoundaries LatencyBuckets() {
  return {0.000'01, 0.000'025, 0.000'05, 0.000'1, 0.000'25, 0.000'5, 0.001, 0.002'5,
          0.005,    0.01,      0.025,    0.05,     0.1,       0.25,     0.5,   1,     2.5, 5};
}

constexpr const char* kTypes[] = {"share", "join", "payment", "refund", "checkin"};

}  // namespace

Metrics::Metrics() : registry_(std::make_shared<prometheus::Registry>()) {
  using namespace prometheus;
  applied_ = &BuildCounter().Name("fission_events_applied_total")
                  .Help("Events applied to the projections, by type").Register(*registry_);
  rejected_ = &BuildCounter().Name("fission_events_rejected_total")
                   .Help("Events rejected, by reason (spec section 4 and business rejections)")
                   .Register(*registry_);
  duplicates_ = &BuildCounter().Name("fission_events_duplicate_total")
                     .Help("Exact duplicates ignored (same event_id, same content)")
                     .Register(*registry_).Add({});
  late_ = &BuildCounter().Name("fission_events_late_total")
               .Help("Events rejected as late (below the watermark)").Register(*registry_).Add({});
  offered_ = &BuildCounter().Name("fission_events_offered_total")
                  .Help("Input records offered to the fold (valid or not)").Register(*registry_).Add({});
  timers_ = &BuildCounter().Name("fission_timers_fired_total")
                 .Help("Group expiry and settlement timers fired").Register(*registry_).Add({});
  batches_ = &BuildCounter().Name("fission_batches_committed_total")
                  .Help("Atomic commits of projection state and source position")
                  .Register(*registry_).Add({});
  watermark_ = &BuildGauge().Name("fission_watermark_seconds")
                    .Help("The watermark (event time, Unix seconds): events below it are late")
                    .Register(*registry_).Add({});
  watermark_lag_ = &BuildGauge().Name("fission_watermark_lag_seconds")
                        .Help("Wall-clock time now minus the watermark")
                        .Register(*registry_).Add({});
  apply_seconds_ = &BuildHistogram().Name("fission_apply_seconds")
                        .Help("Time to offer one event to the fold: decode, checks, apply")
                        .Register(*registry_).Add({}, LatencyBuckets());
  commit_seconds_ = &BuildHistogram().Name("fission_commit_seconds")
                         .Help("Time to commit one batch (one RocksDB WriteBatch, fsynced by default)")
                         .Register(*registry_).Add({}, LatencyBuckets());
  consumer_lag_ = &BuildGauge().Name("fission_consumer_lag")
                       .Help("Kafka consumer lag in messages, per partition (librdkafka statistics)")
                       .Register(*registry_);
  rocksdb_ = &BuildGauge().Name("fission_rocksdb")
                  .Help("RocksDB figures read at scrape: live_sst_bytes, memtable_bytes, "
                        "pending_compaction_bytes, running_compactions, write_stopped, delayed_write_rate")
                  .Register(*registry_);
  dir_bytes_ = &BuildGauge().Name("fission_data_dir_bytes")
                    .Help("Bytes in the data dir (SST files, WAL, manifest), read at scrape")
                    .Register(*registry_).Add({});
  http_requests_ = &BuildCounter().Name("fission_http_requests_total")
                        .Help("HTTP requests, by route and status").Register(*registry_);
  http_seconds_ = &BuildHistogram().Name("fission_http_request_seconds")
                       .Help("HTTP request latency, by route").Register(*registry_);
  memory_ = &BuildGauge().Name("fission_memory_bytes")
                 .Help("Memory by part: resident and peak_resident (kernel), allocated, allocator_resident "
                       "and retained (jemalloc), memtables, table_readers, block_cache, block_cache_pinned "
                       "(RocksDB, at scrape), typed_state, commit_buffers (the fold's)")
                 .Register(*registry_);
  for (const char* t : kTypes) applied_->Add({{"type", t}});
  for (const char* r : {"invalid_event", "unknown_type", "conflicting_duplicate", "late_event"}) {
    rejected_->Add({{"reason", r}});
  }
}

Metrics::~Metrics() = default;

void Metrics::ReportTotals(const pb::ProcessorMeta& m) {
  std::lock_guard<std::mutex> lock(mu_);
  auto grow = [](prometheus::Counter& c, int64_t now, int64_t before) {
    if (now > before) c.Increment(static_cast<double>(now - before));
  };
  auto prev = [](const google::protobuf::Map<std::string, int64_t>& map, const std::string& k) {
    auto it = map.find(k);
    return it == map.end() ? int64_t{0} : it->second;
  };
  for (const auto& [type, n] : m.applied_by_type()) grow(applied_->Add({{"type", type}}), n, prev(last_.applied_by_type(), type));
  for (const auto& [reason, n] : m.rejected()) {
    grow(rejected_->Add({{"reason", reason}}), n, prev(last_.rejected(), reason));
    if (reason == "late_event") grow(*late_, n, prev(last_.rejected(), reason));
  }
  grow(*duplicates_, m.duplicates(), last_.duplicates());
  grow(*timers_, m.timers_fired(), last_.timers_fired());
  grow(*offered_, m.offered(), last_.offered());
  if (m.has_watermark_ms()) watermark_ms_.store(m.watermark_ms());
  last_ = m;
}

void Metrics::WatchDb(rocksdb::DB* db, std::vector<rocksdb::ColumnFamilyHandle*> columns, std::string dir) {
  dir_ = std::move(dir);
  columns_ = std::move(columns);
  db_.store(db);
}

void Metrics::ReportMemory(const std::vector<MemoryPart>& parts) {
  for (const MemoryPart& p : parts) memory_->Add({{"part", p.name}}).Set(static_cast<double>(p.bytes));
}

void Metrics::ObserveCommit(double seconds) {
  batches_->Increment();
  commit_seconds_->Observe(seconds);
}

void Metrics::ObserveApply(double seconds) { apply_seconds_->Observe(seconds); }

void Metrics::ReportKafkaStatistics(const std::string& json) {
  auto j = nlohmann::json::parse(json, nullptr, false);
  if (j.is_discarded() || !j.contains("topics") || !j["topics"].is_object()) return;
  for (const auto& [topic, t] : j["topics"].items()) {
    if (!t.contains("partitions") || !t["partitions"].is_object()) continue;
    for (const auto& [partition, p] : t["partitions"].items()) {
      if (partition == "-1" || !p.contains("consumer_lag") || !p["consumer_lag"].is_number()) continue;
      const int64_t lag = p["consumer_lag"].get<int64_t>();
      if (lag < 0) continue;  // unknown yet (no committed or fetched position)
      consumer_lag_->Add({{"topic", topic}, {"partition", partition}}).Set(static_cast<double>(lag));
    }
  }
}

void Metrics::ObserveHttp(const std::string& route, int status, double seconds) {
  http_requests_->Add({{"route", route}, {"status", std::to_string(status)}}).Increment();
  http_seconds_->Add({{"route", route}}, LatencyBuckets()).Observe(seconds);
}

std::string Metrics::Scrape() {
  const int64_t wm = watermark_ms_.load();
  if (wm != INT64_MIN) {
    watermark_->Set(static_cast<double>(wm) / 1000.0);
    const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch()).count();
    watermark_lag_->Set(static_cast<double>(now_ms - wm) / 1000.0);
  }
  if (rocksdb::DB* db = db_.load()) {
    const std::pair<const char*, const char*> props[] = {
        {"live_sst_bytes", "rocksdb.live-sst-files-size"},
        {"memtable_bytes", "rocksdb.cur-size-all-mem-tables"},
        {"pending_compaction_bytes", "rocksdb.estimate-pending-compaction-bytes"},
        {"running_compactions", "rocksdb.num-running-compactions"},
        {"write_stopped", "rocksdb.is-write-stopped"},
        {"delayed_write_rate", "rocksdb.actual-delayed-write-rate"}};
    for (size_t i = 0; i < std::size(props); ++i) {
      const auto& [name, prop] = props[i];
      uint64_t v = 0;
      // The first three are per column family (summed over both); the rest are the database's.
      const bool ok = i < 3 ? db->GetAggregatedIntProperty(prop, &v) : db->GetIntProperty(prop, &v);
      if (ok) rocksdb_->Add({{"figure", name}}).Set(static_cast<double>(v));
    }
    ReportMemory(RocksMemory(db, columns_));
  }
  const ProcessMemory pm = ReadProcessMemory();
  std::vector<MemoryPart> process = {{"resident", pm.resident}, {"peak_resident", pm.peak_resident}};
  if (pm.allocator_known) {
    process.push_back({"allocated", pm.allocated});
    process.push_back({"allocator_resident", pm.allocator_resident});
    process.push_back({"retained", pm.retained});
  }
  ReportMemory(process);
  if (!dir_.empty()) {
    uint64_t n = 0;
    std::error_code ec;
    for (const auto& f : std::filesystem::directory_iterator(dir_, ec)) {
      if (f.is_regular_file(ec)) n += f.file_size(ec);
    }
    dir_bytes_->Set(static_cast<double>(n));
  }
  return prometheus::TextSerializer().Serialize(registry_->Collect());
}

}  // namespace fission
