#include "engine/engine.h"

#include <cstring>

#include <fmt/format.h>

#include <vector>

#include "engine/decode_ahead.h"
#include "events/decode.h"

namespace fission {

bool LineReader::Next(std::string* line) {
  constexpr size_t kBlock = 1u << 16;
  line->clear();
  bool any = false;
  for (;;) {
    if (at_ == buf_.size()) {
      // What the stream holds already, or what one read brings (a pipe
      // that is being written is never waited on for more than a line).
      std::streambuf* sb = in_.rdbuf();
      std::streamsize ready = in_.good() ? sb->in_avail() : -1;
      if (ready == 0) ready = sb->sgetc() == std::char_traits<char>::eof() ? -1 : std::max<std::streamsize>(sb->in_avail(), 1);
      if (ready <= 0) {
        in_.setstate(std::ios::eofbit);
        break;
      }
      buf_.resize(std::min<size_t>(static_cast<size_t>(ready), kBlock));
      buf_.resize(static_cast<size_t>(std::max<std::streamsize>(sb->sgetn(buf_.data(), static_cast<std::streamsize>(buf_.size())), 0)));
      at_ = 0;
      if (buf_.empty()) {
        in_.setstate(std::ios::eofbit);
        break;
      }
    }
    any = true;
    const char* begin = buf_.data() + at_;
    const size_t avail = buf_.size() - at_;
    const char* nl = static_cast<const char*>(std::memchr(begin, '\n', avail));
    const size_t take = nl ? static_cast<size_t>(nl - begin) : avail;
    if (line->size() <= max_) line->append(begin, std::min(take, max_ + 1 - line->size()));
    at_ += nl ? take + 1 : take;
    if (nl) break;
  }
  if (!any) return false;
  if (!line->empty() && line->back() == '\r') line->pop_back();
  ++line_no_;
  return true;
}

Engine::Engine(std::unique_ptr<StateDb> db, const RuleBook& rules, EngineOptions options)
    : db_(std::move(db)),
      options_(options),
      processor_(std::make_unique<Processor>(rules, *db_, options.processor)) {
  const auto start = std::chrono::steady_clock::now();
  processor_->Load(*db_);
  load_seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

Result<std::unique_ptr<Engine>, DbError> Engine::Open(const std::string& data_dir,
                                                      const RuleBook& rules,
                                                      EngineOptions options) {
  auto db = StateDb::Open(data_dir, options.db);
  if (!db.ok()) return Result<std::unique_ptr<Engine>, DbError>::Error(db.error());
  std::unique_ptr<Engine> e;
  try {
    e.reset(new Engine(std::move(db).value(), rules, options));
    if (auto err = e->ProcessLog()) return Result<std::unique_ptr<Engine>, DbError>::Error(*err);
  } catch (const std::exception& ex) {
    return Result<std::unique_ptr<Engine>, DbError>::Error({ex.what()});
  }
  return e;
}

void Engine::Offer(const pb::LogRecord& r, int64_t seq) { Offer(r, seq, Decode(r)); }

void Engine::Offer(const pb::LogRecord& r, int64_t seq, Result<pb::Event, DecodeError> decoded,
                   std::string_view content_key) {
  const auto start = metrics_ ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point{};
  processor_->Offer(r.source(), r.position(), std::move(decoded), r.lane(), content_key, seq);
  if (metrics_) metrics_->ObserveApply(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
}

Outcome Engine::OfferProto(std::string_view source, int64_t position, std::string_view bytes,
                           const std::string& lane) {
  if (!metrics_) return processor_->OfferProto(source, position, bytes, lane);
  const auto start = std::chrono::steady_clock::now();
  const Outcome o = processor_->OfferProto(source, position, bytes, lane);
  metrics_->ObserveApply(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  return o;
}

std::vector<MemoryPart> Engine::Memory() const {
  std::vector<MemoryPart> parts = RocksMemory(db_->raw(), db_->columns());
  for (MemoryPart& p : FoldMemory()) parts.push_back(std::move(p));
  return parts;
}

std::vector<MemoryPart> Engine::FoldMemory() const {
  return {{"typed_state", processor_->MemoryBytes()}, {"commit_buffers", db_->BufferBytes()}};
}

std::optional<DbError> Engine::CommitBatch(bool checkpoint) {
  const auto start = std::chrono::steady_clock::now();
  auto err = db_->Commit(checkpoint);
  if (!err && metrics_) {
    metrics_->ObserveCommit(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    metrics_->ReportTotals(processor_->meta());
    // The first commit, then at most every 10 s.
    const auto now = std::chrono::steady_clock::now();
    if (!memory_reported_ || now - *memory_reported_ > std::chrono::seconds(10)) {
      memory_reported_ = now;
      metrics_->ReportMemory(FoldMemory());
    }
  }
  return err;
}

std::optional<DbError> Engine::ProcessLog() {
  int64_t pos = processor_->meta().log_position();
  const int64_t head = db_->log_head();
  while (pos < head) {
    const int64_t until = std::min<int64_t>(head, pos + static_cast<int64_t>(options_.batch_events));
    db_->ReadLog(pos, until, [&](int64_t seq, const pb::LogRecord& r) {
      Offer(r, seq);
      pos = seq;
      return true;
    });
    if (pos < until) pos = until;  // defensive: a gap in the log is skipped, not looped on
    if (auto err = Checkpoint(pos, pos >= head || FullCheckpointDue())) return err;
  }
  return std::nullopt;
}

std::optional<DbError> Engine::IngestJsonLines(std::istream& in, const std::string& source,
                                               const std::function<void(const IngestProgress&)>& progress) {
  LineReader reader(in, kMaxEventBytes);
  std::string line;
  return IngestRecords(
      [&](pb::LogRecord* r) {
        while (reader.Next(&line)) {
          if (line.find_first_not_of(" \t") == std::string::npos) continue;  // blank line: no event
          r->set_source(ValidUtf8(source));
          r->set_position(reader.line_number());
          r->set_payload(line);
          return true;
        }
        return false;
      },
      progress);
}

std::optional<DbError> Engine::IngestRecords(const std::function<bool(pb::LogRecord*)>& next,
                                             const std::function<void(const IngestProgress&)>& progress) {
  // Records are read here, on the caller's thread, a few chunks ahead, and
  // decoded on the decoder's; the fold takes them back in order.
  constexpr size_t kChunk = 256, kChunksAhead = 4;
  DecodeAhead decoder(options_.decode_thread);
  bool source_more = true;
  auto read_ahead = [&] {
    while (source_more && decoder.in_flight() < kChunksAhead) {
      auto c = decoder.NewChunk();
      while (c->size() < kChunk) {
        DecodeAhead::Item& it = c->emplace_back();
        if (!(source_more = next(&it.record))) {
          c->pop_back();
          break;
        }
      }
      if (c->empty()) {
        decoder.Recycle(std::move(c));
      } else {
        decoder.Submit(std::move(c));
      }
    }
  };
  std::unique_ptr<DecodeAhead::Chunk> chunk;
  size_t at = 0;
  auto next_item = [&]() -> DecodeAhead::Item* {
    if (!chunk || at == chunk->size()) {
      if (chunk) decoder.Recycle(std::move(chunk));
      read_ahead();
      if (decoder.in_flight() == 0) return nullptr;
      chunk = decoder.Take();
      at = 0;
      read_ahead();  // the worker decodes the next while this one is folded
    }
    return &(*chunk)[at++];
  };
  try {
    std::vector<pb::LogRecord> batch;
    const auto start = std::chrono::steady_clock::now();
    IngestProgress p;
    bool more = true;
    // Progress counts the lines of commits that are written, not of those
    // still in flight on the writer thread (StateDb::Commit).
    if (auto err = db_->Drain()) return err;
    const int64_t base = db_->commits_written();
    std::vector<int64_t> lines_through;  // by commit of this call: lines in it and before
    auto report = [&] {
      const int64_t written = db_->commits_written() - base;
      p.lines = written > 0 ? lines_through[static_cast<size_t>(written - 1)] : 0;
      p.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (progress) progress(p);
    };
    while (more) {
      batch.clear();
      // Catch up first if a previous batch's processing failed half-way.
      if (processor_->meta().log_position() < db_->log_head()) {
        if (auto err = ProcessLog()) return err;
      }
      // Records are processed as they are read (in memory only), and the batch
      // ends at its count or byte budget. The records then go into the log in
      // the same commit as their effects and the new position: a crash
      // before it is written loses both, and the input is fed again.
      while (batch.size() < options_.batch_events && db_->uncommitted_bytes() < options_.batch_bytes) {
        DecodeAhead::Item* it = next_item();
        if (!(more = it != nullptr)) break;
        pb::LogRecord& r = batch.emplace_back(std::move(it->record));
        // The sequence AppendLog gives it below.
        Offer(r, db_->log_head() + static_cast<int64_t>(batch.size()), std::move(*it->decoded), it->content_key);
      }
      const int64_t first_seq = db_->log_head() + 1;
      db_->AppendLog(batch);
      if (auto err = Checkpoint(first_seq + static_cast<int64_t>(batch.size()) - 1, !more || FullCheckpointDue())) {
        return err;
      }
      lines_through.push_back((lines_through.empty() ? 0 : lines_through.back()) + static_cast<int64_t>(batch.size()));
      if (!more) {
        if (auto err = db_->Drain()) return err;
      }
      report();
    }
  } catch (const std::exception& ex) {
    return DbError{ex.what()};
  }
  return std::nullopt;
}

bool Engine::FullCheckpointDue() const {
  return light_since_full_ + 1 >= options_.checkpoint_every || db_->carried_bytes() >= options_.batch_bytes ||
         processor_->EvictionDue();
}

std::optional<DbError> Engine::Checkpoint(int64_t log_position, bool full) {
  processor_->Checkpoint(log_position, full);
  light_since_full_ = full ? 0 : light_since_full_ + 1;
  return CommitBatch(full);
}

std::optional<DbError> Engine::Checkpoint() {
  try {
    return Checkpoint(processor_->meta().log_position());
  } catch (const std::exception& ex) {
    return DbError{ex.what()};
  }
}

std::optional<DbError> Engine::Finish() {
  try {
    processor_->Flush();
    if (auto err = Checkpoint(processor_->meta().log_position())) return err;
    // Without a sync per commit, the end of the input is made durable once;
    // either way it is written before Finish returns.
    if (!options_.db.sync_commits) return db_->Sync();
    return db_->Drain();
  } catch (const std::exception& ex) {
    return DbError{ex.what()};
  }
}

}  // namespace fission
