#include "replay/source.h"

#include <fmt/format.h>

#include <filesystem>

#include "engine/store/state_db.h"
#include "replay/archive.h"

namespace fission {
namespace {

class LogSource final : public RecordSource {
 public:
  LogSource(std::unique_ptr<StateDb> db, std::string dir)
      : db_(std::move(db)), cursor_(db_->NewLogCursor(0)), dir_(std::move(dir)) {}
  bool Next(pb::LogRecord* r) override {
    if (error_) return false;
    try {
      int64_t seq;
      return cursor_->Next(&seq, r);
    } catch (const std::exception& e) {
      error_ = fmt::format("data dir '{}': {}", dir_, e.what());
      return false;
    }
  }
  std::optional<std::string> error() const override { return error_; }
  std::optional<int64_t> total() const override { return db_->log_head(); }
  std::string Describe() const override { return fmt::format("the event log of data dir {}", dir_); }

 private:
  std::unique_ptr<StateDb> db_;
  std::unique_ptr<StateDb::LogCursor> cursor_;
  std::string dir_;
  std::optional<std::string> error_;
};

class ArchiveSource final : public RecordSource {
 public:
  ArchiveSource(std::unique_ptr<ArchiveReader> r, std::string path) : r_(std::move(r)), path_(std::move(path)) {}
  bool Next(pb::LogRecord* r) override { return r_->Next(r); }
  std::optional<std::string> error() const override {
    if (r_->error()) return r_->error()->message;
    return std::nullopt;
  }
  std::optional<int64_t> total() const override { return std::nullopt; }
  std::string Describe() const override { return fmt::format("archive {}", path_); }
  std::set<std::string> lanes() const override { return r_->lanes(); }
  const ArchiveReader& reader() const { return *r_; }

 private:
  std::unique_ptr<ArchiveReader> r_;
  std::string path_;
};

class TopicSource final : public RecordSource {
 public:
  TopicSource(std::unique_ptr<kafka::TopicReader> r, std::string topic) : r_(std::move(r)), topic_(std::move(topic)) {}
  bool Next(pb::LogRecord* r) override { return r_->Next(r); }
  std::optional<std::string> error() const override {
    if (r_->error()) return r_->error()->message;
    return std::nullopt;
  }
  std::optional<int64_t> total() const override { return r_->total(); }
  std::string Describe() const override { return fmt::format("Kafka topic {} from its beginning", topic_); }
  std::set<std::string> lanes() const override { return r_->lanes(); }

 private:
  std::unique_ptr<kafka::TopicReader> r_;
  std::string topic_;
};

}  // namespace

Result<std::unique_ptr<RecordSource>, std::string> OpenSource(const std::string& source,
                                                              const kafka::Settings* settings) {
  using R = Result<std::unique_ptr<RecordSource>, std::string>;
  if (source.rfind("kafka:", 0) == 0) {
    const std::string topic = source.substr(6);
    if (topic.empty()) return R::Error("kafka:TOPIC needs a topic name");
    if (!settings) return R::Error(fmt::format("'{}' needs --brokers (and any -X settings)", source));
    auto r = kafka::TopicReader::Open(*settings, topic);
    if (!r.ok()) return R::Error(r.error().message);
    return std::unique_ptr<RecordSource>(std::make_unique<TopicSource>(std::move(r).value(), topic));
  }
  std::error_code ec;
  if (std::filesystem::is_directory(source, ec)) {
    // The log is read once, in order, past the block cache; the cache holds
    // its index partitions. A replay's target has the full cache.
    auto db = StateDb::OpenReadOnly(source, 8u << 20);
    if (!db.ok()) return R::Error(db.error().message);
    if (db.value()->log_head() == 0) {
      const auto* meta = db.value()->Find<pb::ProcessorMeta>(Table::kMeta, "");
      if (meta && !meta->lane_positions().empty()) {
        return R::Error(fmt::format("data dir '{}' was fed from Kafka and keeps no event log: replay from "
                                    "kafka:TOPIC or from an archive of it", source));
      }
    }
    return std::unique_ptr<RecordSource>(std::make_unique<LogSource>(std::move(db).value(), source));
  }
  if (std::filesystem::is_regular_file(source, ec)) {
    auto r = ArchiveReader::Open(source);
    if (!r.ok()) return R::Error(r.error().message);
    return std::unique_ptr<RecordSource>(std::make_unique<ArchiveSource>(std::move(r).value(), source));
  }
  return R::Error(fmt::format("source '{}' is neither a data dir, an archive file, nor kafka:TOPIC", source));
}

}  // namespace fission
