// The auditors' read model: every answer of the HTTP API, computed from the
// committed rows of a data dir. Thread-safe (each call reads one RocksDB
// snapshot); never writes.
//
// Answers are JSON objects built by projections/render.h, so they carry the
// same numbers as `fission export`. Failures are values: an ApiError with the
// HTTP status, a stable code and a message naming the problem.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <pthread.h>

#include <shared_mutex>
#include <string>

#include "engine/params.h"
#include "events/rules.h"
#include "events/types.h"
#include "projections/render.h"

namespace rocksdb {
class ColumnFamilyHandle;
class DB;
}

namespace fission {

class StateDb;
using ApiResult = Result<Json, ApiError>;

class QueryService {
 public:
  // `rules` (may be null) lets the ledger checks verify rates as well.
  // Reads `db`'s RocksDB (both column families) from any thread.
  QueryService(const StateDb& db, const RuleBook* rules);

  // A distributor with a page of its lines (provenance on each line). With
  // `as_of`, the distributor and its lines as they stood at that event time.
  ApiResult Distributor(const std::string& tenant, const std::string& id,
                        std::optional<int64_t> as_of_ms, const Page& page) const;
  // The top `limit` distributors by `sort` (a *_fen total, shares or downlines), descending.
  ApiResult Leaderboard(const std::string& tenant, const std::string& sort, int limit) const;
  ApiResult Group(const std::string& tenant, const std::string& id, std::optional<int64_t> as_of_ms) const;
  ApiResult Member(const std::string& tenant, const std::string& id, std::optional<int64_t> as_of_ms) const;
  // An order and its lines across all beneficiaries (its leader bonus included).
  ApiResult Order(const std::string& tenant, const std::string& id) const;
  // Rejections of the tenant, in key order, optionally of one reason.
  ApiResult Rejections(const std::string& tenant, const std::string& reason, const Page& page) const;
  // The stored event (first valid sighting), its input position, and any rejections under its id.
  ApiResult Event(const std::string& tenant, const std::string& event_id) const;
  // Recomputes every distributor's totals from its lines and every order's
  // lines from the contract's formula; reports each difference.
  ApiResult AuditChecks(const std::string& tenant) const;
  // Liveness and position of the fold.
  Json Health() const;
  // The fold's stored meta row (counters, watermark), if any.
  std::optional<pb::ProcessorMeta> Meta() const;

  // Runs `f` (a follower's catch-up) while no request is reading: it waits
  // for those in flight, and requests that arrive meanwhile wait for it.
  void Exclusive(const std::function<void()>& f) const {
    std::unique_lock lock(view_mu_);
    f();
  }

  // A readers-writer lock that lets a waiting writer (the catch-up) in
  // before new readers, so a steady stream of requests cannot hold it off.
  class ViewLock {
   public:
    ViewLock();
    ~ViewLock();
    ViewLock(const ViewLock&) = delete;
    ViewLock& operator=(const ViewLock&) = delete;
    void lock();
    void unlock();
    void lock_shared();
    void unlock_shared();

   private:
    pthread_rwlock_t rw_;
  };

 private:
  rocksdb::DB* db_;
  rocksdb::ColumnFamilyHandle* default_column_;
  rocksdb::ColumnFamilyHandle* audit_column_;
  rocksdb::ColumnFamilyHandle* log_column_;
  bool snapshots_;  // false on a follower (engine/query.cc, Reader)
  const RuleBook* rules_;
  mutable ViewLock view_mu_;
};

}  // namespace fission
