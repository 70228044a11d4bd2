#include "tests/fault_fs.h"

#include <filesystem>
#include <system_error>

namespace fission::test {

using rocksdb::DataVerificationInfo;
using rocksdb::IODebugContext;
using rocksdb::IOOptions;
using rocksdb::IOStatus;
using rocksdb::Slice;

// A writable file that asks its FaultFs before every append and sync.
class FaultFile final : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  FaultFile(FaultFs* fs, std::string name, std::unique_ptr<rocksdb::FSWritableFile> f)
      : FSWritableFileOwnerWrapper(std::move(f)), fs_(fs), name_(std::move(name)) {}

  IOStatus Append(const Slice& data, const IOOptions& o, IODebugContext* dbg) override {
    return Write(data.size(), [&] { return target()->Append(data, o, dbg); });
  }
  IOStatus Append(const Slice& data, const IOOptions& o, const DataVerificationInfo& v,
                  IODebugContext* dbg) override {
    return Write(data.size(), [&] { return target()->Append(data, o, v, dbg); });
  }
  IOStatus PositionedAppend(const Slice& data, uint64_t offset, const IOOptions& o,
                            IODebugContext* dbg) override {
    return Write(data.size(), [&] { return target()->PositionedAppend(data, offset, o, dbg); });
  }
  IOStatus PositionedAppend(const Slice& data, uint64_t offset, const IOOptions& o,
                            const DataVerificationInfo& v, IODebugContext* dbg) override {
    return Write(data.size(), [&] { return target()->PositionedAppend(data, offset, o, v, dbg); });
  }
  IOStatus Sync(const IOOptions& o, IODebugContext* dbg) override {
    return SyncWith([&] { return target()->Sync(o, dbg); });
  }
  IOStatus Fsync(const IOOptions& o, IODebugContext* dbg) override {
    return SyncWith([&] { return target()->Fsync(o, dbg); });
  }
  IOStatus RangeSync(uint64_t, uint64_t, const IOOptions&, IODebugContext*) override {
    return IOStatus::OK();  // a hint to the kernel, no durability promise: nothing to model
  }

 private:
  // Asks for the armed fault, then writes `bytes` with `write` and records them.
  template <class F>
  IOStatus Write(size_t bytes, F&& write) {
    if (IOStatus s = fs_->BeforeAppend(); !s.ok()) return s;
    IOStatus s = write();
    if (s.ok()) fs_->Appended(name_, bytes);
    return s;
  }
  template <class F>
  IOStatus SyncWith(F&& sync) {
    if (IOStatus s = fs_->BeforeSync(name_); !s.ok()) return s;
    IOStatus s = sync();
    if (s.ok()) fs_->Synced(name_);
    return s;
  }

  FaultFs* fs_;
  std::string name_;
};

void FaultFs::Arm(Mode m, int64_t n) {
  std::lock_guard lock(mu_);
  mode_ = m;
  countdown_ = n;
  tripped_ = false;
}

IOStatus FaultFs::BeforeAppend() {
  appends_.fetch_add(1);
  std::lock_guard lock(mu_);
  if (tripped_) {
    injected_.fetch_add(1);
    return mode_ == Mode::kDiskFull ? IOStatus::NoSpace("FaultFs: disk full")
                                    : IOStatus::IOError("FaultFs: power is off");
  }
  if (mode_ == Mode::kFailWrite || mode_ == Mode::kDiskFull || mode_ == Mode::kPowerCut) {
    if (--countdown_ == 0) {
      injected_.fetch_add(1);
      switch (mode_) {
        case Mode::kFailWrite:
          mode_ = Mode::kNone;
          return IOStatus::IOError("FaultFs: injected write error");
        case Mode::kDiskFull:
          tripped_ = true;
          return IOStatus::NoSpace("FaultFs: disk full");
        default:
          tripped_ = true;
          return IOStatus::IOError("FaultFs: power is off");
      }
    }
  }
  return IOStatus::OK();
}

IOStatus FaultFs::BeforeSync(const std::string& name) {
  std::lock_guard lock(mu_);
  const bool wal = name.ends_with(".log");
  if (wal) wal_syncs_.fetch_add(1);
  if (tripped_ && mode_ == Mode::kPowerCut) {
    injected_.fetch_add(1);
    return IOStatus::IOError("FaultFs: power is off");
  }
  if ((mode_ == Mode::kFailSync || (mode_ == Mode::kFailWalSync && wal)) && --countdown_ == 0) {
    mode_ = Mode::kNone;
    injected_.fetch_add(1);
    return IOStatus::IOError("FaultFs: injected sync error");
  }
  return IOStatus::OK();
}

void FaultFs::Appended(const std::string& name, uint64_t bytes) {
  std::lock_guard lock(mu_);
  files_[name].size += bytes;
}

void FaultFs::Synced(const std::string& name) {
  std::lock_guard lock(mu_);
  Tracked& t = files_[name];
  t.synced = t.size;
}

IOStatus FaultFs::Wrap(const std::string& f, IOStatus s, bool keep_size,
                       std::unique_ptr<rocksdb::FSWritableFile>* r) {
  if (!s.ok()) return s;
  // RocksDB's info log (LOG, LOG.old.*) is not data and its write errors are
  // ignored: a fault placed there would never surface, so it is left alone.
  if (std::filesystem::path(f).filename().string().rfind("LOG", 0) == 0) return s;
  uint64_t existing = 0;
  if (keep_size) {
    std::error_code ec;
    existing = std::filesystem::file_size(f, ec);
    if (ec) existing = 0;
  }
  {
    std::lock_guard lock(mu_);
    // A reopened file's existing bytes are taken as durable.
    files_[f] = Tracked{existing, existing};
  }
  *r = std::make_unique<FaultFile>(this, f, std::move(*r));
  return s;
}

IOStatus FaultFs::NewWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                                  std::unique_ptr<rocksdb::FSWritableFile>* r, IODebugContext* dbg) {
  return Wrap(f, target()->NewWritableFile(f, o, r, dbg), false, r);
}

IOStatus FaultFs::ReopenWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                                     std::unique_ptr<rocksdb::FSWritableFile>* r, IODebugContext* dbg) {
  return Wrap(f, target()->ReopenWritableFile(f, o, r, dbg), true, r);
}

IOStatus FaultFs::ReuseWritableFile(const std::string& f, const std::string& old,
                                    const rocksdb::FileOptions& o,
                                    std::unique_ptr<rocksdb::FSWritableFile>* r, IODebugContext* dbg) {
  {
    std::lock_guard lock(mu_);
    files_.erase(old);
  }
  return Wrap(f, target()->ReuseWritableFile(f, old, o, r, dbg), false, r);
}

IOStatus FaultFs::RenameFile(const std::string& src, const std::string& dst, const IOOptions& o,
                             IODebugContext* dbg) {
  IOStatus s = target()->RenameFile(src, dst, o, dbg);
  if (s.ok()) {
    std::lock_guard lock(mu_);
    auto it = files_.find(src);
    if (it != files_.end()) {
      files_[dst] = it->second;
      files_.erase(src);
    } else {
      files_.erase(dst);  // replaced by an untracked file: its content is durable
    }
  }
  return s;
}

IOStatus FaultFs::DeleteFile(const std::string& f, const IOOptions& o, IODebugContext* dbg) {
  IOStatus s = target()->DeleteFile(f, o, dbg);
  if (s.ok()) {
    std::lock_guard lock(mu_);
    files_.erase(f);
  }
  return s;
}

IOStatus FaultFs::DropUnsyncedData() {
  std::lock_guard lock(mu_);
  for (auto& [name, t] : files_) {
    std::error_code ec;
    if (!std::filesystem::exists(name, ec)) continue;
    std::filesystem::resize_file(name, t.synced, ec);
    if (ec) return IOStatus::IOError("FaultFs: cannot truncate " + name + ": " + ec.message());
    t.size = t.synced;
  }
  return IOStatus::OK();
}

}  // namespace fission::test
