#include "engine/query.h"

#include <fmt/format.h>
#include <rocksdb/db.h>

#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <vector>

#include "engine/decode_ahead.h"
#include "engine/store/state_db.h"
#include "events/assert.h"
#include "events/decode.h"
#include "events/time.h"
#include "projections/history.h"
#include "projections/keys.h"

namespace fission {
namespace {

constexpr size_t kMaxDifferences = 100;

ApiResult NotFound(std::string message) {
  return ApiResult::Error({404, "not_found", std::move(message)});
}

std::string Hex(std::string_view s) {
  static const char* d = "0123456789abcdef";
  std::string out;
  out.reserve(s.size() * 2);
  for (unsigned char c : s) {
    out.push_back(d[c >> 4]);
    out.push_back(d[c & 15]);
  }
  return out;
}

// All reads of one request see one state of the database: they read under
// one snapshot, and hold the view lock for the whole request, so a
// follower's catch-up waits until the request is answered. A follower (a
// RocksDB secondary) refuses reads under a snapshot ("not supported in
// secondary mode"): it reads without one, its state moving only at a
// catch-up, which the lock holds off. Point reads go through
// Get, whose bloom filters pass over the files that cannot hold the key;
// an iterator is opened only for a scan. (Until 2026-12-03 every request
// opened four iterators over every file of two families and sought points
// with them: most of a lookup's time.)
class Reader {
 public:
  Reader(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* main, rocksdb::ColumnFamilyHandle* audit,
         rocksdb::ColumnFamilyHandle* log, QueryService::ViewLock& mu, bool snapshot)
      : lock_(mu), db_(db), columns_{main, audit}, log_(log), snapshot_(snapshot ? db->GetSnapshot() : nullptr) {
    read_.snapshot = snapshot_;
  }
  ~Reader() {
    if (snapshot_ != nullptr) db_->ReleaseSnapshot(snapshot_);
  }
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;

  template <class R>
  bool Get(Table t, std::string_view key, R* row) {
    rocksdb::PinnableSlice value;
    if (!GetRaw(t, key, &value)) return false;
    if (!row->ParseFromArray(value.data(), static_cast<int>(value.size()))) throw std::runtime_error("corrupt row");
    return true;
  }

  // Rows of table `t` with keys starting with `prefix`, from just after
  // `after` (a full row key; "" = from the start). fn gets the row key.
  void Scan(Table t, std::string_view prefix, std::string_view after,
            const std::function<bool(std::string_view key, rocksdb::Slice value)>& fn) {
    const std::string start = Full(t, prefix);
    const int c = InAuditColumn(static_cast<char>(t)) ? 1 : 0;
    if (!scans_[c]) scans_[c].reset(db_->NewIterator(read_, columns_[c]));
    rocksdb::Iterator* it = scans_[c].get();
    if (after.empty()) {
      it->Seek(start);
    } else {
      const std::string a = Full(t, after);
      it->Seek(a);
      if (it->Valid() && it->key() == rocksdb::Slice(a)) it->Next();
    }
    for (; it->Valid(); it->Next()) {
      rocksdb::Slice k = it->key();
      if (!k.starts_with(start)) break;
      if (!fn(std::string_view(k.data() + 1, k.size() - 1), it->value())) break;
    }
    if (!it->status().ok()) throw std::runtime_error("cannot read the data dir: " + it->status().ToString());
  }

  // Record `seq` of the embedded log; false when there is none.
  bool GetLog(int64_t seq, pb::LogRecord* record) {
    rocksdb::PinnableSlice value;
    const rocksdb::Status s = db_->Get(read_, log_, LogRecordKey(seq), &value);
    if (s.IsNotFound()) return false;
    if (!s.ok()) throw std::runtime_error("cannot read the data dir: " + s.ToString());
    if (!record->ParseFromArray(value.data(), static_cast<int>(value.size()))) {
      throw std::runtime_error(fmt::format("corrupt log record {}", seq));
    }
    return true;
  }

  // The last version of row (t, key) at or before `at_ms`, through the
  // chain from its current row (projections/history.h).
  bool VersionAt(Table t, std::string_view key, int64_t at_ms, pb::Version* v) {
    rocksdb::PinnableSlice value;
    if (!GetRaw(t, key, &value)) return false;
    const uint64_t last = LastVersionOf(static_cast<char>(t), std::string_view(value.data(), value.size()));
    return VersionAtRef(last, at_ms, v);
  }
  // The same from a row's last_version.
  bool VersionAtRef(uint64_t last_version, int64_t at_ms, pb::Version* v) {
    auto found = fission::VersionAt(last_version, at_ms, [&](uint64_t seq, pb::Change* c) { return Get(Table::kChange, ChangeKey(seq), c); });
    if (!found) return false;
    *v = std::move(*found);
    return true;
  }

 private:
  static std::string Full(Table t, std::string_view key) {
    std::string k(1, static_cast<char>(t));
    k.append(key);
    return k;
  }
  bool GetRaw(Table t, std::string_view key, rocksdb::PinnableSlice* value) {
    const rocksdb::Status s =
        db_->Get(read_, columns_[InAuditColumn(static_cast<char>(t)) ? 1 : 0], Full(t, key), value);
    if (s.IsNotFound()) return false;
    if (!s.ok()) throw std::runtime_error("cannot read the data dir: " + s.ToString());
    return true;
  }

  std::shared_lock<QueryService::ViewLock> lock_;  // first: taken before the snapshot
  rocksdb::DB* db_;
  // [0]: the default column family, [1]: audit (engine/store/state_db.h).
  rocksdb::ColumnFamilyHandle* columns_[2];
  rocksdb::ColumnFamilyHandle* log_;
  const rocksdb::Snapshot* snapshot_;
  rocksdb::ReadOptions read_;
  std::unique_ptr<rocksdb::Iterator> scans_[2];
};

Json VersionJson(const pb::Version& v) {
  Json j;
  j["at"] = FormatRfc3339(Millis(v.at_ms()));
  if (!v.timer().empty()) {
    j["timer"] = v.timer();
  } else {
    j["event_id"] = v.cause().event_id();
    j["source"] = v.cause().source();
    j["position"] = v.cause().position();
  }
  return j;
}

std::optional<ApiError> CheckHistory(Reader& r, std::optional<int64_t> as_of) {
  if (!as_of) return std::nullopt;
  pb::ProcessorMeta meta;
  if (r.Get(Table::kMeta, "", &meta) && meta.history_incomplete()) {
    return ApiError{409, "history_incomplete",
                    "this data dir was fed with --no-history at some point, so past versions may be "
                    "missing; as_of is refused rather than answered wrongly"};
  }
  if (meta.applied() > 0 && !meta.history_as_changes()) {
    return ApiError{409, "history_incomplete",
                    "this data dir was written by an older fission, whose history this build does not read; "
                    "rebuild it from its log (fission replay --from DIR --rules RULES --out NEW_DIR) to ask as_of"};
  }
  return std::nullopt;
}

template <class R>
struct Loaded {
  R row;
  pb::Version version;  // with as_of: the version found
};

std::string NoSuch(std::string_view noun, std::string_view id, std::optional<int64_t> as_of) {
  return fmt::format("no {} '{}'{}", noun, id, as_of ? " at " + FormatRfc3339(Millis(*as_of)) : "");
}

// The record as it stands now, or (as_of) as it stood then, from its history.
template <class R>
Result<Loaded<R>, ApiError> LoadRecord(Reader& r, Table t, std::string_view noun, const std::string& tenant,
                                       const std::string& id, std::optional<int64_t> as_of) {
  using Out = Result<Loaded<R>, ApiError>;
  if (auto e = CheckHistory(r, as_of)) return Out::Error(*e);
  const std::string key = EntityKey(tenant, id);
  Loaded<R> out;
  bool found;
  if (!as_of) {
    found = r.Get(t, key, &out.row);
  } else {
    found = r.VersionAt(t, key, *as_of, &out.version);
    if (found && !out.row.ParseFromString(out.version.row())) throw std::runtime_error("corrupt version");
  }
  if (!found) return Out::Error({404, "not_found", NoSuch(noun, id, as_of)});
  return out;
}

void StampAsOf(Json& j, std::optional<int64_t> as_of, const pb::Version& v) {
  if (!as_of) return;
  j["as_of"] = FormatRfc3339(Millis(*as_of));
  j["version"] = VersionJson(v);
}

int64_t Field(const pb::Distributor& d, const std::string& sort) {
  if (sort == "settled_fen") return d.settled_fen();
  if (sort == "balance_fen") return d.settled_fen() - d.clawed_back_fen();
  if (sort == "pending_fen") return d.pending_fen();
  if (sort == "held_fen") return d.held_fen();
  if (sort == "reversed_fen") return d.reversed_fen();
  if (sort == "voided_fen") return d.voided_fen();
  if (sort == "clawed_back_fen") return d.clawed_back_fen();
  if (sort == "waived_fen") return d.waived_fen();
  if (sort == "shares") return d.shares();
  return d.downlines();
}

constexpr std::string_view kSorts[] = {"settled_fen", "balance_fen", "pending_fen", "held_fen",
                                       "reversed_fen", "voided_fen", "clawed_back_fen", "waived_fen",
                                       "shares", "downlines"};

}  // namespace

QueryService::QueryService(const StateDb& db, const RuleBook* rules)
    : db_(db.raw()),
      default_column_(db.raw()->DefaultColumnFamily()),
      audit_column_(db.audit_column()),
      log_column_(db.log_column()),
      snapshots_(!db.follower()),
      rules_(rules) {}

ApiResult QueryService::Distributor(const std::string& tenant, const std::string& id,
                                    std::optional<int64_t> as_of, const Page& page) const {
  Reader r(db_, default_column_, audit_column_, log_column_, view_mu_, snapshots_);
  auto loaded = LoadRecord<pb::Distributor>(r, Table::kDistributor, "distributor", tenant, id, as_of);
  if (!loaded.ok()) return ApiResult::Error(loaded.error());
  const pb::Distributor& d = loaded.value().row;
  if (d.lines() == 0 && d.shares() == 0) return NotFound(NoSuch("distributor", id, as_of));
  const std::string key = EntityKey(tenant, id);
  std::string after;
  if (!page.after.empty()) {
    auto a = DecodeCursor(page.after);
    if (!a) return ApiResult::Error({400, "bad_parameter", "after: not a cursor from this API"});
    after = key + '\0' + *a;
  }
  const std::string prefix = key + '\0';
  Json lines = Json::array();
  std::optional<std::string> next;
  if (!as_of) {
    pb::Line l;
    std::string last;
    r.Scan(Table::kLine, prefix, after, [&](std::string_view k, rocksdb::Slice val) {
      if (!l.ParseFromArray(val.data(), static_cast<int>(val.size()))) throw std::runtime_error("corrupt line");
      if (static_cast<int>(lines.size()) == page.limit) {
        next = Hex(last.substr(prefix.size()));
        return false;
      }
      last.assign(k);
      lines.push_back(LineJson(l, true));
      return true;
    });
  } else {
    // This distributor's lines as they stood then: each current line's
    // version at as_of, through its chain; lines created later are left out.
    pb::Line l;
    std::string last;
    r.Scan(Table::kLine, prefix, after, [&](std::string_view k, rocksdb::Slice val) {
      const uint64_t ref = LastVersionOf(static_cast<char>(Table::kLine), std::string_view(val.data(), val.size()));
      pb::Version ver;
      if (!r.VersionAtRef(ref, *as_of, &ver)) return true;
      if (static_cast<int>(lines.size()) == page.limit) {
        next = Hex(last.substr(prefix.size()));
        return false;
      }
      if (!l.ParseFromString(ver.row())) throw std::runtime_error("corrupt line version");
      last.assign(k);
      Json lj = LineJson(l, true);
      lj["version"] = VersionJson(ver);
      lines.push_back(std::move(lj));
      return true;
    });
  }
  Json j = DistributorJson(key, d, std::move(lines));
  j["lines_next"] = next ? Json(*next) : Json(nullptr);
  StampAsOf(j, as_of, loaded.value().version);
  return j;
}

ApiResult QueryService::Leaderboard(const std::string& tenant, const std::string& sort, int limit) const {
  if (std::find(std::begin(kSorts), std::end(kSorts), sort) == std::end(kSorts)) {
    return ApiResult::Error({400, "bad_parameter", fmt::format("sort: '{}' is not one of settled_fen, "
                             "balance_fen, pending_fen, held_fen, reversed_fen, voided_fen, "
                             "clawed_back_fen, waived_fen, shares, downlines", sort)});
  }
  Reader r(db_, default_column_, audit_column_, log_column_, view_mu_, snapshots_);
  struct Entry {
    int64_t value;
    std::string key;
    pb::Distributor d;
  };
  auto better = [](const Entry& a, const Entry& b) {
    return a.value != b.value ? a.value > b.value : a.key < b.key;
  };
  std::vector<Entry> top;  // a heap whose front is the worst kept
  int64_t considered = 0;
  pb::Distributor d;
  r.Scan(Table::kDistributor, tenant + '\0', "", [&](std::string_view k, rocksdb::Slice val) {
    if (!d.ParseFromArray(val.data(), static_cast<int>(val.size()))) throw std::runtime_error("corrupt distributor");
    if (d.lines() == 0 && d.shares() == 0) return true;
    ++considered;
    Entry e{Field(d, sort), std::string(k), d};
    if (static_cast<int>(top.size()) < limit) {
      top.push_back(std::move(e));
      std::push_heap(top.begin(), top.end(), better);
    } else if (better(e, top.front())) {
      std::pop_heap(top.begin(), top.end(), better);
      top.back() = std::move(e);
      std::push_heap(top.begin(), top.end(), better);
    }
    return true;
  });
  std::sort(top.begin(), top.end(), better);
  Json list = Json::array();
  for (auto& e : top) {
    Json j = DistributorJson(e.key, e.d, Json::array());
    j.erase("lines");
    j["lines_count"] = e.d.lines();
    list.push_back(std::move(j));
  }
  Json out;
  out["tenant"] = tenant;
  out["sort"] = sort;
  out["distributors_considered"] = considered;
  out["distributors"] = std::move(list);
  return out;
}

ApiResult QueryService::Group(const std::string& tenant, const std::string& id,
                              std::optional<int64_t> as_of) const {
  Reader r(db_, default_column_, audit_column_, log_column_, view_mu_, snapshots_);
  auto loaded = LoadRecord<pb::Group>(r, Table::kGroup, "group", tenant, id, as_of);
  if (!loaded.ok()) return ApiResult::Error(loaded.error());
  const pb::Group& g = loaded.value().row;
  Json j = GroupJson(EntityKey(tenant, id), g);
  j["rule_version"] = g.rule_version();
  StampAsOf(j, as_of, loaded.value().version);
  return j;
}

ApiResult QueryService::Member(const std::string& tenant, const std::string& id,
                               std::optional<int64_t> as_of) const {
  Reader r(db_, default_column_, audit_column_, log_column_, view_mu_, snapshots_);
  auto loaded = LoadRecord<pb::Member>(r, Table::kMember, "member", tenant, id, as_of);
  if (!loaded.ok()) return ApiResult::Error(loaded.error());
  pb::Member m = loaded.value().row;
  // The tier changes are rows of their own, appended in canonical order.
  r.Scan(Table::kTierChange, TierChangePrefix(tenant, id), "", [&](std::string_view, rocksdb::Slice v) {
    pb::TierChange c;
    if (!c.ParseFromArray(v.data(), static_cast<int>(v.size()))) throw std::runtime_error("corrupt row");
    if (as_of && c.at_ms() > *as_of) return false;
    *m.add_tier_history() = std::move(c);
    return true;
  });
  Json j = MemberJson(EntityKey(tenant, id), m, true);
  j["distributor"] = m.distributor();
  StampAsOf(j, as_of, loaded.value().version);
  return j;
}

ApiResult QueryService::Order(const std::string& tenant, const std::string& id) const {
  Reader r(db_, default_column_, audit_column_, log_column_, view_mu_, snapshots_);
  const std::string key = EntityKey(tenant, id);
  pb::Order o;
  if (!r.Get(Table::kOrder, key, &o)) return NotFound(fmt::format("no order '{}'", id));
  Json j = OrderJson(key, o, true);
  Json lines = Json::array();
  pb::Line l;
  for (const auto& ref : o.lines()) {
    if (r.Get(Table::kLine, LineKey(tenant, ref.distributor(), id, false, ref.level()), &l)) {
      lines.push_back(LineJson(l, true));
    }
  }
  if (r.Get(Table::kLine, LineKey(tenant, o.member(), id, true, 0), &l)) lines.push_back(LineJson(l, true));
  j["lines"] = std::move(lines);
  return j;
}

ApiResult QueryService::Rejections(const std::string& tenant, const std::string& reason,
                                   const Page& page) const {
  Reader r(db_, default_column_, audit_column_, log_column_, view_mu_, snapshots_);
  const std::string prefix = tenant + '\0';
  std::string after;
  if (!page.after.empty()) {
    auto a = DecodeCursor(page.after);
    if (!a) return ApiResult::Error({400, "bad_parameter", "after: not a cursor from this API"});
    after = prefix + *a;
  }
  Json list = Json::array();
  std::optional<std::string> next;
  std::string last;
  pb::Rejection rej;
  r.Scan(Table::kRejection, prefix, after, [&](std::string_view k, rocksdb::Slice val) {
    if (!rej.ParseFromArray(val.data(), static_cast<int>(val.size()))) throw std::runtime_error("corrupt rejection");
    if (!reason.empty() && rej.reason() != reason) return true;
    if (static_cast<int>(list.size()) == page.limit) {
      next = Hex(std::string_view(last).substr(prefix.size()));
      return false;
    }
    last.assign(k);
    list.push_back(RejectionJson(rej));
    return true;
  });
  Json out;
  out["tenant"] = tenant;
  out["reason"] = reason.empty() ? Json(nullptr) : Json(reason);
  out["rejections"] = std::move(list);
  out["next"] = next ? Json(*next) : Json(nullptr);
  return out;
}

ApiResult QueryService::Event(const std::string& tenant, const std::string& event_id) const {
  Reader r(db_, default_column_, audit_column_, log_column_, view_mu_, snapshots_);
  const std::string key = EntityKey(tenant, event_id);
  pb::StoredEvent stored;
  const bool have = r.Get(Table::kEvent, key, &stored);
  Json rejections = Json::array();
  std::string prefix = tenant + '\0';
  prefix.push_back('\1');
  prefix.append(event_id).push_back('\0');
  pb::Rejection rej;
  r.Scan(Table::kRejection, prefix, "", [&](std::string_view, rocksdb::Slice val) {
    if (!rej.ParseFromArray(val.data(), static_cast<int>(val.size()))) throw std::runtime_error("corrupt rejection");
    rejections.push_back(RejectionJson(rej));
    return true;
  });
  if (!have && rejections.empty()) return NotFound(fmt::format("no event '{}' was seen", event_id));
  Json j;
  j["tenant"] = tenant;
  j["event_id"] = event_id;
  if (have) {
    pb::Event e;
    if (stored.log_seq() > 0) {  // in the log, not copied
      pb::LogRecord record;
      if (!r.GetLog(stored.log_seq(), &record)) {
        throw std::runtime_error(fmt::format("stored event '{}' refers to log record {}, which is missing", event_id, stored.log_seq()));
      }
      auto decoded = Decode(record);
      if (!decoded.ok()) throw std::runtime_error(fmt::format("log record {} no longer decodes", stored.log_seq()));
      e = std::move(decoded).value();
    } else if (!e.ParseFromString(stored.event())) {
      throw std::runtime_error("corrupt stored event");
    }
    j["event"] = Json::parse(EncodeJson(e));
    j["source"] = stored.source();
    j["position"] = stored.position();
  } else {
    j["event"] = nullptr;  // never valid: the rejections say where the input was
  }
  j["rejections"] = std::move(rejections);
  return j;
}

ApiResult QueryService::AuditChecks(const std::string& tenant) const {
  Reader r(db_, default_column_, audit_column_, log_column_, view_mu_, snapshots_);
  const std::string prefix = tenant + '\0';
  Json diffs = Json::array();
  int64_t n_diffs = 0, n_dist = 0, n_lines = 0, n_orders = 0, rates_checked = 0;
  auto diff = [&](Json d) {
    ++n_diffs;
    if (diffs.size() < kMaxDifferences) diffs.push_back(std::move(d));
  };
  // 1. Totals: every distributor against the sums over its lines (spec section 7).
  struct Sums {
    int64_t held = 0, pending = 0, settled = 0, voided = 0, reversed = 0, clawed = 0, waived = 0, lines = 0;
  };
  std::map<std::string, Sums> sums;  // by distributor id
  pb::Line l;
  r.Scan(Table::kLine, prefix, "", [&](std::string_view, rocksdb::Slice val) {
    if (!l.ParseFromArray(val.data(), static_cast<int>(val.size()))) throw std::runtime_error("corrupt line");
    ++n_lines;
    Sums& s = sums[l.distributor()];
    const int64_t net = l.amount_fen() - l.reversed_fen();
    switch (l.state()) {
      case pb::HELD: s.held += net; break;
      case pb::PENDING: s.pending += net; break;
      case pb::SETTLED: s.settled += net; break;
      case pb::VOID: s.voided += net; break;
      default: break;
    }
    s.reversed += l.reversed_fen();
    s.clawed += l.clawed_back_fen();
    s.waived += l.waived_fen();
    ++s.lines;
    return true;
  });
  pb::Distributor d;
  r.Scan(Table::kDistributor, prefix, "", [&](std::string_view k, rocksdb::Slice val) {
    if (!d.ParseFromArray(val.data(), static_cast<int>(val.size()))) throw std::runtime_error("corrupt distributor");
    ++n_dist;
    const std::string id(KeyPart(k, 1));
    auto it = sums.find(id);
    const Sums s = it == sums.end() ? Sums{} : it->second;
    if (it != sums.end()) sums.erase(it);
    const std::pair<const char*, std::pair<int64_t, int64_t>> fields[] = {
        {"held_fen", {d.held_fen(), s.held}},           {"pending_fen", {d.pending_fen(), s.pending}},
        {"settled_fen", {d.settled_fen(), s.settled}},  {"voided_fen", {d.voided_fen(), s.voided}},
        {"reversed_fen", {d.reversed_fen(), s.reversed}}, {"clawed_back_fen", {d.clawed_back_fen(), s.clawed}},
        {"waived_fen", {d.waived_fen(), s.waived}},     {"lines", {d.lines(), s.lines}}};
    for (const auto& [name, v] : fields) {
      if (v.first != v.second) {
        diff({{"check", "distributor_totals"}, {"distributor", id}, {"field", name},
              {"stored", v.first}, {"recomputed", v.second}});
      }
    }
    return true;
  });
  for (const auto& [id, s] : sums) {
    diff({{"check", "distributor_totals"}, {"distributor", id}, {"field", "lines"}, {"stored", nullptr},
          {"recomputed", s.lines}, {"message", "lines exist for a distributor with no totals row"}});
  }
  // 2. Every order's commission lines against the formula (spec section 6).
  pb::Order o;
  r.Scan(Table::kOrder, prefix, "", [&](std::string_view k, rocksdb::Slice val) {
    if (!o.ParseFromArray(val.data(), static_cast<int>(val.size()))) throw std::runtime_error("corrupt order");
    ++n_orders;
    const std::string id(KeyPart(k, 1));
    const RuleVersion* rv = rules_ ? rules_->ByName(tenant, o.rule_version()) : nullptr;
    for (const auto& ref : o.lines()) {
      pb::Line line;
      if (!r.Get(Table::kLine, LineKey(tenant, ref.distributor(), id, false, ref.level()), &line)) {
        diff({{"check", "order_lines"}, {"order_id", id}, {"distributor", ref.distributor()},
              {"level", ref.level()}, {"message", "the order names a line that does not exist"}});
        continue;
      }
      auto bad = [&](const char* field, int64_t stored, int64_t expected) {
        if (stored != expected) {
          diff({{"check", "order_lines"}, {"order_id", id}, {"distributor", ref.distributor()},
                {"level", ref.level()}, {"field", field}, {"stored", stored}, {"expected", expected}});
        }
      };
      bad("base_fen", line.base_fen(), o.commission_base_fen());
      bad("amount_fen", line.amount_fen(), CommissionAmount(Fen(line.base_fen()), Bps(line.rate_bps())).v);
      const int64_t due = ProRata(Fen(line.amount_fen()), Fen(o.refunded_fen()), Fen(o.amount_fen())).v;
      const int64_t taken = line.reversed_fen() + line.clawed_back_fen() + line.waived_fen();
      if (line.state() == pb::VOID) {
        if (taken > due) bad("reductions_fen", taken, due);
      } else {
        bad("reductions_fen", taken, due);
      }
      if (rv && ref.level() >= 1 && static_cast<size_t>(ref.level()) <= rv->commission.levels_bps.size()) {
        ++rates_checked;
        const int64_t base_rate = rv->commission.levels_bps[static_cast<size_t>(ref.level() - 1)].v;
        bool ok = line.rate_bps() == base_rate;
        for (const auto& [tier, bonus] : rv->commission.tier_bonus_bps) ok = ok || line.rate_bps() == base_rate + bonus.v;
        if (!ok) {
          diff({{"check", "order_lines"}, {"order_id", id}, {"distributor", ref.distributor()},
                {"level", ref.level()}, {"field", "rate_bps"}, {"stored", line.rate_bps()},
                {"message", fmt::format("not levels_bps[{}] of rule version '{}' plus a tier bonus",
                                        ref.level() - 1, o.rule_version())}});
        }
      }
    }
    return true;
  });
  Json out;
  out["tenant"] = tenant;
  out["ok"] = n_diffs == 0;
  out["distributors_checked"] = n_dist;
  out["lines_checked"] = n_lines;
  out["orders_checked"] = n_orders;
  out["rates_checked"] = rates_checked;
  out["differences_total"] = n_diffs;
  out["differences"] = std::move(diffs);
  if (!rules_) out["note"] = "started without --rules: rates were not checked against the rule versions";
  return out;
}

std::optional<pb::ProcessorMeta> QueryService::Meta() const {
  Reader r(db_, default_column_, audit_column_, log_column_, view_mu_, snapshots_);
  pb::ProcessorMeta meta;
  if (!r.Get(Table::kMeta, "", &meta)) return std::nullopt;
  return meta;
}

Json QueryService::Health() const {
  Reader r(db_, default_column_, audit_column_, log_column_, view_mu_, snapshots_);
  pb::ProcessorMeta meta;
  Json j;
  j["status"] = "ok";
  if (r.Get(Table::kMeta, "", &meta)) {
    j["applied"] = meta.applied();
    j["log_position"] = meta.log_position();
    j["max_event_time"] = meta.has_max_seen() ? Json(FormatRfc3339(Millis(meta.max_seen_ms()))) : Json(nullptr);
    j["watermark"] = meta.has_watermark_ms() ? Json(FormatRfc3339(Millis(meta.watermark_ms()))) : Json(nullptr);
    j["history_incomplete"] = meta.history_incomplete();
  }
  return j;
}

QueryService::ViewLock::ViewLock() {
  pthread_rwlockattr_t attr;
  pthread_rwlockattr_init(&attr);
  pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
  FISSION_ASSERT(pthread_rwlock_init(&rw_, &attr) == 0, "cannot create the view lock");
  pthread_rwlockattr_destroy(&attr);
}
QueryService::ViewLock::~ViewLock() { pthread_rwlock_destroy(&rw_); }
void QueryService::ViewLock::lock() { FISSION_ASSERT(pthread_rwlock_wrlock(&rw_) == 0, "view lock"); }
void QueryService::ViewLock::unlock() { pthread_rwlock_unlock(&rw_); }
void QueryService::ViewLock::lock_shared() { FISSION_ASSERT(pthread_rwlock_rdlock(&rw_) == 0, "view lock"); }
void QueryService::ViewLock::unlock_shared() { pthread_rwlock_unlock(&rw_); }

}  // namespace fission
