// The event archive: a file of fission.v1.LogRecord, for keeping years of
// history independent of Kafka retention, and for replay.
//
//   file   := magic block* footer
//   magic  := "FSNARC1\n"
//   block  := header zstd(payload)
//   header := "BLK1" u32 raw_len u32 stored_len u64 xxh3_64(stored bytes)
//             u64 first_record u32 records          (32 bytes, little-endian)
//   payload:= (varint length, serialized LogRecord)*
//   footer := lanes "END1" u32 lanes_len u64 records u64 blocks u64 xxh3_64(block checksums)
//   lanes  := the records' distinct lanes ("topic/partition"), one per line
//             (lanes_len bytes), so a replay knows every input lane up front
//
// Every block carries its own checksum, so a damaged block is found and named
// by its byte offset; the footer proves the file is complete (a copy cut short
// has none) and that no block was dropped or reordered. The writer writes
// FILE.partial and renames it at Finish, so an interrupted archive never looks
// complete. Nothing here skips damage: the reader stops with an error.
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "events/types.h"
#include "fission/v1/events.pb.h"

namespace fission {

namespace pb = ::fission::v1;

struct ArchiveError {
  std::string message;  // names the file, the block and its byte offset
};

class ArchiveWriter {
 public:
  static Result<std::unique_ptr<ArchiveWriter>, ArchiveError> Create(const std::string& path,
                                                                     size_t block_bytes = 1 << 20);
  ~ArchiveWriter();
  [[nodiscard]] std::optional<ArchiveError> Add(const pb::LogRecord& r);
  // Writes the last block and the footer, syncs, and renames into place.
  [[nodiscard]] std::optional<ArchiveError> Finish();
  int64_t records() const { return records_; }
  int64_t bytes_written() const { return offset_; }

 private:
  ArchiveWriter() = default;
  std::optional<ArchiveError> FlushBlock();
  std::optional<ArchiveError> Write(const void* data, size_t n);

  std::string path_, partial_;
  FILE* f_ = nullptr;
  size_t block_bytes_ = 0;
  std::string raw_;
  int64_t records_ = 0, block_first_ = 0, blocks_ = 0, offset_ = 0;
  int32_t block_records_ = 0;
  std::vector<uint64_t> sums_;
  std::set<std::string> lanes_;
};

class ArchiveReader {
 public:
  static Result<std::unique_ptr<ArchiveReader>, ArchiveError> Open(const std::string& path);
  ~ArchiveReader();
  // The next record; false at the verified end or on damage (see error()).
  bool Next(pb::LogRecord* r);
  const std::optional<ArchiveError>& error() const { return error_; }
  int64_t records_read() const { return records_; }
  int64_t bytes_read() const { return offset_; }
  int64_t file_bytes() const { return size_; }
  // The input lanes the footer lists (empty for file-fed history, or when the
  // file has no footer: reading it to the end then reports the truncation).
  const std::set<std::string>& lanes() const { return lanes_; }

 private:
  ArchiveReader() = default;
  bool LoadBlock();
  bool Fail(std::string message);

  std::string path_;
  FILE* f_ = nullptr;
  int64_t size_ = 0, offset_ = 0, records_ = 0, blocks_ = 0;
  std::string raw_;
  size_t pos_ = 0;
  int64_t block_left_ = 0;
  std::vector<uint64_t> sums_;
  bool done_ = false;
  std::optional<ArchiveError> error_;
  std::set<std::string> lanes_;
  int64_t lanes_len_ = 0;
  std::string lanes_raw_;
};

}  // namespace fission
