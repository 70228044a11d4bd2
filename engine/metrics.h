// Prometheus metrics of one fission process (prometheus-cpp), served as text
// at /metrics by the HTTP server. Names and meanings are listed in
// ops/README.md; the alert rules and dashboard in ops/ use them.
//
// Thread-safe: the fold's thread reports batches, HTTP threads report
// requests and scrape.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "engine/memory.h"
#include "projections/processor.h"

namespace prometheus {
class Registry;
class Counter;
class Gauge;
class Histogram;
template <class T>
class Family;
}  // namespace prometheus

namespace rocksdb {
class ColumnFamilyHandle;
class DB;
}

namespace fission {

class Metrics {
 public:
  Metrics();
  ~Metrics();

  // The fold's running totals as stored in its meta row (after each commit
  // by the folding process, or each catch-up by `serve`): counters advance by
  // the difference from the previous report; the first report counts all.
  void ReportTotals(const pb::ProcessorMeta& meta);
  void ObserveCommit(double seconds);
  // The memory the fold's own parts hold (Engine::Memory: the typed state, the commit buffers), reported now
  // and then by the fold's thread; RocksDB's parts and the process totals are
  // read at each scrape.
  void ReportMemory(const std::vector<MemoryPart>& parts);
  // Time to offer one event to the processor (decode, checks, apply).
  void ObserveApply(double seconds);
  // librdkafka statistics (JSON, from its stats callback): consumer lag per partition.
  void ReportKafkaStatistics(const std::string& json);
  void ObserveHttp(const std::string& route, int status, double seconds);
  // The database whose size, stall and memory figures are read at each
  // scrape; `columns` are its column families (valid while it is open).
  void WatchDb(rocksdb::DB* db, std::vector<rocksdb::ColumnFamilyHandle*> columns, std::string dir);

  // The text exposition format, with scrape-time gauges refreshed.
  std::string Scrape();

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>* applied_;
  prometheus::Family<prometheus::Counter>* rejected_;
  prometheus::Counter* duplicates_;
  prometheus::Counter* late_;
  prometheus::Counter* timers_;
  prometheus::Counter* offered_;
  prometheus::Counter* batches_;
  prometheus::Gauge* watermark_;
  prometheus::Gauge* watermark_lag_;
  prometheus::Histogram* apply_seconds_;
  prometheus::Histogram* commit_seconds_;
  prometheus::Family<prometheus::Gauge>* consumer_lag_;
  prometheus::Family<prometheus::Gauge>* rocksdb_;
  prometheus::Gauge* dir_bytes_;
  std::string dir_;  // set once, before serving
  std::vector<rocksdb::ColumnFamilyHandle*> columns_;  // likewise
  prometheus::Family<prometheus::Counter>* http_requests_;
  prometheus::Family<prometheus::Histogram>* http_seconds_;

  prometheus::Family<prometheus::Gauge>* memory_;

  std::mutex mu_;  // guards last_
  pb::ProcessorMeta last_;
  std::atomic<int64_t> watermark_ms_{INT64_MIN};
  std::atomic<rocksdb::DB*> db_{nullptr};
};

}  // namespace fission
