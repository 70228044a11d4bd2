// FaultFs: a RocksDB FileSystem that fails on command, for tests of the
// storage seam (after LevelDB's ErrorEnv and RocksDB's FaultInjectionTestFS,
// written for our needs).
//
// It wraps a real FileSystem and counts every Append and every Sync/Fsync made
// through files it opened for writing. A test arms one fault at a time:
//
//   FailWriteAt(n)   the n-th Append from now returns an IOError (once)
//   FailSyncAt(n)    the n-th Sync from now returns an IOError (once)
//   FailWalSyncAt(n) the same, counting the syncs of write-ahead logs only
//                    (a commit's: RocksDB's own syncs of tables and of the
//                    manifest come and go with its background work)
//   DiskFullAfter(n) the n-th Append from now and every one after it return
//                    NoSpace, until ClearFaults()
//   CutPowerAt(n)    from the n-th Append on, every write and sync fails (the
//                    machine is off); DropUnsyncedData() then truncates every
//                    file written through this FileSystem to the size it had at
//                    its last successful sync, as a power cut would leave it
//
// RocksDB's info log (LOG) is neither counted nor failed: it is not data, and
// RocksDB ignores its write errors.
//
// Simplifications, stated: a file's directory entry is taken as durable once
// the file was created or renamed (no directory fsync is modelled); a file
// never synced is truncated to zero bytes, not removed.
//
// Thread-safe: RocksDB writes from its background threads too.
#pragma once

#include <rocksdb/env.h>
#include <rocksdb/file_system.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace fission::test {

class FaultFs final : public rocksdb::FileSystemWrapper {
 public:
  explicit FaultFs(std::shared_ptr<rocksdb::FileSystem> base = rocksdb::FileSystem::Default())
      : FileSystemWrapper(std::move(base)) {}
  const char* Name() const override { return "FaultFs"; }

  void FailWriteAt(int64_t n) { Arm(Mode::kFailWrite, n); }
  void FailSyncAt(int64_t n) { Arm(Mode::kFailSync, n); }
  void FailWalSyncAt(int64_t n) { Arm(Mode::kFailWalSync, n); }
  void DiskFullAfter(int64_t n) { Arm(Mode::kDiskFull, n); }
  void CutPowerAt(int64_t n) { Arm(Mode::kPowerCut, n); }
  void ClearFaults() { Arm(Mode::kNone, 0); }

  // Truncates every tracked file to its last synced size. Call after a power
  // cut, with the database closed.
  rocksdb::IOStatus DropUnsyncedData();

  // Faults returned so far (a test asserts its fault was actually hit).
  int64_t faults_injected() const { return injected_.load(); }
  int64_t appends() const { return appends_.load(); }
  int64_t wal_syncs() const { return wal_syncs_.load(); }

  rocksdb::IOStatus NewWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                                    std::unique_ptr<rocksdb::FSWritableFile>* r,
                                    rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus ReopenWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                                       std::unique_ptr<rocksdb::FSWritableFile>* r,
                                       rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus ReuseWritableFile(const std::string& f, const std::string& old,
                                      const rocksdb::FileOptions& o,
                                      std::unique_ptr<rocksdb::FSWritableFile>* r,
                                      rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus RenameFile(const std::string& src, const std::string& target,
                               const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus DeleteFile(const std::string& f, const rocksdb::IOOptions& o,
                               rocksdb::IODebugContext* dbg) override;

 private:
  friend class FaultFile;
  enum class Mode { kNone, kFailWrite, kFailSync, kFailWalSync, kDiskFull, kPowerCut };
  struct Tracked {
    uint64_t size = 0;
    uint64_t synced = 0;
  };

  void Arm(Mode m, int64_t n);
  // The fault for the next Append (ok if none), counting it.
  rocksdb::IOStatus BeforeAppend();
  rocksdb::IOStatus BeforeSync(const std::string& name);
  void Appended(const std::string& name, uint64_t bytes);
  void Synced(const std::string& name);
  rocksdb::IOStatus Wrap(const std::string& f, rocksdb::IOStatus s, bool keep_size,
                         std::unique_ptr<rocksdb::FSWritableFile>* r);

  std::mutex mu_;
  Mode mode_ = Mode::kNone;
  int64_t countdown_ = 0;  // operations of the armed kind left before the fault
  bool tripped_ = false;   // disk full or power cut in force
  std::map<std::string, Tracked> files_;
  std::atomic<int64_t> injected_{0};
  std::atomic<int64_t> appends_{0};
  std::atomic<int64_t> wal_syncs_{0};
};

}  // namespace fission::test
