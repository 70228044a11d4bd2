#include "replay/archive.h"

#include <fmt/format.h>
#include <unistd.h>
#include <xxhash.h>
#include <zstd.h>

#include <cstring>
#include <filesystem>
#include <set>

namespace fission {
namespace {

constexpr char kMagic[8] = {'F', 'S', 'N', 'A', 'R', 'C', '1', '\n'};
constexpr char kBlock[4] = {'B', 'L', 'K', '1'};
constexpr char kEnd[4] = {'E', 'N', 'D', '1'};
constexpr size_t kHeader = 32;
constexpr uint32_t kMaxBlock = 64u << 20;  // refuse absurd lengths from a damaged header

void Put32(std::string* s, uint32_t v) {
  for (int i = 0; i < 4; ++i) s->push_back(static_cast<char>(v >> (8 * i)));
}
void Put64(std::string* s, uint64_t v) {
  for (int i = 0; i < 8; ++i) s->push_back(static_cast<char>(v >> (8 * i)));
}
uint32_t Get32(const char* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}
uint64_t Get64(const char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}
void PutVarint(std::string* s, uint64_t v) {
  while (v >= 0x80) {
    s->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  s->push_back(static_cast<char>(v));
}
bool GetVarint(const std::string& s, size_t* pos, uint64_t* v) {
  *v = 0;
  for (int shift = 0; shift < 64 && *pos < s.size(); shift += 7) {
    const auto b = static_cast<unsigned char>(s[(*pos)++]);
    *v |= uint64_t{b & 0x7fu} << shift;
    if (!(b & 0x80)) return true;
  }
  return false;
}
// The footer's checksum: over every block's checksum, then the lanes list.
uint64_t SumOfSums(const std::vector<uint64_t>& sums, const std::string& lanes) {
  std::string all(reinterpret_cast<const char*>(sums.data()), sums.size() * sizeof(uint64_t));
  all += lanes;
  return XXH3_64bits(all.data(), all.size());
}

}  // namespace

// ---- writer ----

Result<std::unique_ptr<ArchiveWriter>, ArchiveError> ArchiveWriter::Create(const std::string& path, size_t block_bytes) {
  using R = Result<std::unique_ptr<ArchiveWriter>, ArchiveError>;
  std::unique_ptr<ArchiveWriter> w(new ArchiveWriter());
  w->path_ = path;
  w->partial_ = path + ".partial";
  w->block_bytes_ = block_bytes;
  w->f_ = std::fopen(w->partial_.c_str(), "wb");
  if (!w->f_) return R::Error({fmt::format("cannot create '{}': {}", w->partial_, std::strerror(errno))});
  if (auto e = w->Write(kMagic, sizeof kMagic)) return R::Error(*e);
  return w;
}

ArchiveWriter::~ArchiveWriter() {
  if (f_) {
    std::fclose(f_);
    std::remove(partial_.c_str());  // never finished: leave nothing that looks like an archive
  }
}

std::optional<ArchiveError> ArchiveWriter::Write(const void* data, size_t n) {
  if (std::fwrite(data, 1, n, f_) != n) {
    return ArchiveError{fmt::format("writing '{}': {}", partial_, std::strerror(errno))};
  }
  offset_ += static_cast<int64_t>(n);
  return std::nullopt;
}

std::optional<ArchiveError> ArchiveWriter::Add(const pb::LogRecord& r) {
  const std::string bytes = r.SerializeAsString();
  PutVarint(&raw_, bytes.size());
  raw_ += bytes;
  ++records_;
  ++block_records_;
  if (!r.lane().empty()) lanes_.insert(r.lane());
  if (raw_.size() >= block_bytes_) return FlushBlock();
  return std::nullopt;
}

std::optional<ArchiveError> ArchiveWriter::FlushBlock() {
  if (block_records_ == 0) return std::nullopt;
  std::string stored(ZSTD_compressBound(raw_.size()), '\0');
  const size_t n = ZSTD_compress(stored.data(), stored.size(), raw_.data(), raw_.size(), 3);
  if (ZSTD_isError(n)) return ArchiveError{fmt::format("compressing a block: {}", ZSTD_getErrorName(n))};
  stored.resize(n);
  const uint64_t sum = XXH3_64bits(stored.data(), stored.size());
  std::string h(kBlock, 4);
  Put32(&h, static_cast<uint32_t>(raw_.size()));
  Put32(&h, static_cast<uint32_t>(stored.size()));
  Put64(&h, sum);
  Put64(&h, static_cast<uint64_t>(block_first_));
  Put32(&h, static_cast<uint32_t>(block_records_));
  if (auto e = Write(h.data(), h.size())) return e;
  if (auto e = Write(stored.data(), stored.size())) return e;
  sums_.push_back(sum);
  ++blocks_;
  block_first_ = records_;
  block_records_ = 0;
  raw_.clear();
  return std::nullopt;
}

std::optional<ArchiveError> ArchiveWriter::Finish() {
  if (auto e = FlushBlock()) return e;
  std::string lanes;
  for (const auto& l : lanes_) lanes += l + "\n";
  std::string footer = lanes + std::string(kEnd, 4);
  Put32(&footer, static_cast<uint32_t>(lanes.size()));
  Put64(&footer, static_cast<uint64_t>(records_));
  Put64(&footer, static_cast<uint64_t>(blocks_));
  Put64(&footer, SumOfSums(sums_, lanes));
  if (auto e = Write(footer.data(), footer.size())) return e;
  if (std::fflush(f_) != 0 || fsync(fileno(f_)) != 0) {
    return ArchiveError{fmt::format("syncing '{}': {}", partial_, std::strerror(errno))};
  }
  std::fclose(f_);
  f_ = nullptr;
  std::error_code ec;
  std::filesystem::rename(partial_, path_, ec);
  if (ec) return ArchiveError{fmt::format("renaming '{}' to '{}': {}", partial_, path_, ec.message())};
  return std::nullopt;
}

// ---- reader ----

Result<std::unique_ptr<ArchiveReader>, ArchiveError> ArchiveReader::Open(const std::string& path) {
  using R = Result<std::unique_ptr<ArchiveReader>, ArchiveError>;
  std::unique_ptr<ArchiveReader> r(new ArchiveReader());
  r->path_ = path;
  r->f_ = std::fopen(path.c_str(), "rb");
  if (!r->f_) return R::Error({fmt::format("cannot read '{}': {}", path, std::strerror(errno))});
  std::error_code ec;
  r->size_ = static_cast<int64_t>(std::filesystem::file_size(path, ec));
  char magic[sizeof kMagic];
  if (std::fread(magic, 1, sizeof magic, r->f_) != sizeof magic || std::memcmp(magic, kMagic, sizeof magic) != 0) {
    return R::Error({fmt::format("'{}' is not a fission archive (no FSNARC1 header at offset 0)", path)});
  }
  r->offset_ = sizeof kMagic;
  // The lanes, from the footer at the end (if the file has one).
  if (r->size_ >= static_cast<int64_t>(sizeof kMagic) + 32) {
    char f[32];
    if (std::fseek(r->f_, static_cast<long>(r->size_ - 32), SEEK_SET) == 0 && std::fread(f, 1, 32, r->f_) == 32 &&
        std::memcmp(f, kEnd, 4) == 0) {
      const int64_t len = Get32(f + 4);
      if (len <= r->size_ - 32 - static_cast<int64_t>(sizeof kMagic)) {
        std::string lanes(static_cast<size_t>(len), '\0');
        if (std::fseek(r->f_, static_cast<long>(r->size_ - 32 - len), SEEK_SET) == 0 &&
            std::fread(lanes.data(), 1, lanes.size(), r->f_) == lanes.size()) {
          r->lanes_len_ = len;
          r->lanes_raw_ = lanes;
          for (size_t a = 0, b; (b = lanes.find('\n', a)) != std::string::npos; a = b + 1) r->lanes_.insert(lanes.substr(a, b - a));
        }
      }
    }
    std::fseek(r->f_, static_cast<long>(sizeof kMagic), SEEK_SET);
  }
  return r;
}

ArchiveReader::~ArchiveReader() {
  if (f_) std::fclose(f_);
}

bool ArchiveReader::Fail(std::string message) {
  error_ = ArchiveError{fmt::format("archive '{}': {}", path_, message)};
  done_ = true;
  return false;
}

bool ArchiveReader::LoadBlock() {
  const int64_t at = offset_;
  char h[kHeader];
  if (lanes_len_ > 0 && at == size_ - 32 - lanes_len_) {  // the lanes list before the footer
    if (std::fseek(f_, static_cast<long>(lanes_len_), SEEK_CUR) != 0) return Fail("cannot seek past the lanes list");
    offset_ += lanes_len_;
    return LoadBlock();
  }
  const size_t got = std::fread(h, 1, 4, f_);
  if (got == 0) return Fail(fmt::format("ends at offset {} after block {} with no footer (truncated)", at, blocks_));
  if (got < 4) return Fail(fmt::format("ends inside a block header at offset {} (truncated)", at));
  if (std::memcmp(h, kEnd, 4) == 0) {
    if (std::fread(h + 4, 1, 28, f_) != 28) return Fail(fmt::format("footer at offset {} is cut short (truncated)", at));
    const auto records = static_cast<int64_t>(Get64(h + 8));
    const auto blocks = static_cast<int64_t>(Get64(h + 16));
    if (records != records_ || blocks != blocks_ || Get64(h + 24) != SumOfSums(sums_, lanes_raw_)) {
      return Fail(fmt::format("footer at offset {} says {} records in {} blocks, but {} records in {} blocks were "
                              "read (a block was dropped, duplicated or reordered)",
                              at, records, blocks, records_, blocks_));
    }
    offset_ += 32;
    done_ = true;
    return false;
  }
  if (std::memcmp(h, kBlock, 4) != 0) return Fail(fmt::format("block {} at offset {}: bad block header", blocks_, at));
  if (std::fread(h + 4, 1, kHeader - 4, f_) != kHeader - 4) {
    return Fail(fmt::format("block {} at offset {}: header cut short (truncated)", blocks_, at));
  }
  const uint32_t raw_len = Get32(h + 4), stored_len = Get32(h + 8);
  const uint64_t sum = Get64(h + 12);
  const auto first = static_cast<int64_t>(Get64(h + 20));
  const uint32_t count = Get32(h + 28);
  if (raw_len > kMaxBlock || stored_len > kMaxBlock) {
    return Fail(fmt::format("block {} at offset {}: implausible lengths (damaged header)", blocks_, at));
  }
  if (first != records_) {
    return Fail(fmt::format("block {} at offset {}: starts at record {}, expected {} (a block is missing or repeated)",
                            blocks_, at, first, records_));
  }
  std::string stored(stored_len, '\0');
  if (std::fread(stored.data(), 1, stored_len, f_) != stored_len) {
    return Fail(fmt::format("block {} at offset {}: data cut short (truncated)", blocks_, at));
  }
  if (XXH3_64bits(stored.data(), stored.size()) != sum) {
    return Fail(fmt::format("block {} at offset {}: checksum mismatch (the block is corrupt)", blocks_, at));
  }
  raw_.assign(raw_len, '\0');
  const size_t n = ZSTD_decompress(raw_.data(), raw_.size(), stored.data(), stored.size());
  if (ZSTD_isError(n) || n != raw_len) {
    return Fail(fmt::format("block {} at offset {}: does not decompress", blocks_, at));
  }
  offset_ += static_cast<int64_t>(kHeader + stored_len);
  sums_.push_back(sum);
  ++blocks_;
  pos_ = 0;
  block_left_ = count;
  return true;
}

bool ArchiveReader::Next(pb::LogRecord* r) {
  if (done_) return false;
  while (block_left_ == 0) {
    if (!LoadBlock()) return false;
  }
  uint64_t len = 0;
  const int64_t block_at = offset_;
  if (!GetVarint(raw_, &pos_, &len) || pos_ + len > raw_.size() ||
      !r->ParseFromArray(raw_.data() + pos_, static_cast<int>(len))) {
    return Fail(fmt::format("record {} in the block ending at offset {} does not parse", records_, block_at));
  }
  pos_ += len;
  --block_left_;
  ++records_;
  return true;
}

}  // namespace fission
