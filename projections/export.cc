#include "projections/export.h"

#include <algorithm>
#include <map>
#include <set>

#include "projections/render.h"

namespace fission {
namespace {

// The rows of a child table (tier changes, lines) for parents visited in
// key order, read ahead in chunks: one iterator per chunk instead of one
// per parent (the export of a 1M-event dir opened 142k of them; with a
// dozen overlapping table files each was a dozen index seeks). A child key
// is its parent's key, 0x00, and more, so children sort as their parents do.
template <class Row>
class ChildRows {
 public:
  // Reads from `from` on (parents before it are not asked for).
  ChildRows(Store& s, Table t, std::string_view from = "") : s_(s), t_(t), from_(from) {}

  // Calls fn on each row under `parent` (its key then 0x00), in key order.
  // Parents come in ascending key order; rows of parents passed over (none
  // in a consistent dir) are skipped.
  template <class Fn>
  void ForEach(std::string_view parent, const Fn& fn) {
    prefix_.assign(parent).push_back('\0');
    for (;;) {
      if (at_ == rows_.size()) {
        if (done_) return;
        Fill();
        continue;
      }
      const std::string& k = rows_[at_].first;
      if (k.starts_with(prefix_)) {
        fn(rows_[at_].second);
      } else if (k > prefix_) {
        return;  // the next parent's
      }
      ++at_;
    }
  }

 private:
  void Fill() {
    rows_.clear();
    at_ = 0;
    // Small at first (a single parent's rows), then up to 4096.
    chunk_ = std::min<size_t>(chunk_ * 4, 4096);
    s_.ScanFrom(t_, "", from_, [&](std::string_view k, const google::protobuf::MessageLite& row) {
      rows_.emplace_back(std::string(k), static_cast<const Row&>(row));
      return rows_.size() < chunk_;
    });
    if (rows_.size() < chunk_) done_ = true;
    if (!rows_.empty()) from_ = rows_.back().first + '\0';  // the least key after the last
  }

  Store& s_;
  const Table t_;
  std::string from_;
  std::vector<std::pair<std::string, Row>> rows_;
  size_t at_ = 0, chunk_ = 16;
  bool done_ = false;
  std::string prefix_;
};

Json DistributorWithLines(std::string_view key, const pb::Distributor& d, bool audit, ChildRows<pb::Line>& lines) {
  Json out = Json::array();
  lines.ForEach(key, [&](const pb::Line& l) { out.push_back(LineJson(l, audit)); });
  return DistributorJson(key, d, std::move(out));
}

}  // namespace

void LoadTierHistory(Store& s, std::string_view member_key, pb::Member* m, std::optional<int64_t> as_of_ms) {
  std::string prefix(member_key);
  prefix.push_back('\0');
  s.Scan(Table::kTierChange, prefix, [&](std::string_view, const google::protobuf::MessageLite& row) {
    const auto& c = static_cast<const pb::TierChange&>(row);
    if (as_of_ms && c.at_ms() > *as_of_ms) return false;  // appended in canonical order
    *m->add_tier_history() = c;
    return true;
  });
}

void ExportKeyed(Store& s, const std::function<void(int, std::string_view, const std::string&)>& fn) {
  ChildRows<pb::Line> lines(s, Table::kLine);
  s.Scan(Table::kDistributor, "", [&](std::string_view k, const google::protobuf::MessageLite& row) {
    const auto& d = static_cast<const pb::Distributor&>(row);
    if (d.lines() > 0 || d.shares() > 0) fn(0, k, Dump(DistributorWithLines(k, d, false, lines)));
    return true;
  });
  s.Scan(Table::kGroup, "", [&](std::string_view k, const google::protobuf::MessageLite& row) {
    fn(1, k, Dump(GroupJson(k, static_cast<const pb::Group&>(row))));
    return true;
  });
  ChildRows<pb::TierChange> tiers(s, Table::kTierChange);
  s.Scan(Table::kMember, "", [&](std::string_view k, const google::protobuf::MessageLite& row) {
    pb::Member m = static_cast<const pb::Member&>(row);
    tiers.ForEach(k, [&](const pb::TierChange& c) { *m.add_tier_history() = c; });
    fn(2, k, Dump(MemberJson(k, m, false)));
    return true;
  });
  s.Scan(Table::kOrder, "", [&](std::string_view k, const google::protobuf::MessageLite& row) {
    fn(3, k, Dump(OrderJson(k, static_cast<const pb::Order&>(row), false)));
    return true;
  });
  s.Scan(Table::kRejection, "", [&](std::string_view k, const google::protobuf::MessageLite& row) {
    fn(4, k, Dump(RejectionJson(static_cast<const pb::Rejection&>(row))));
    return true;
  });
}

int64_t ExportAll(Store& s, std::ostream& out) {
  int64_t n = 0;
  ExportKeyed(s, [&](int, std::string_view, const std::string& line) {
    out << line << '\n';
    ++n;
  });
  return n;
}

std::optional<std::string> ExportMerged(const std::vector<Store*>& stores, std::ostream& out) {
  // Which store supplies each tenant.
  struct Claim {
    size_t store;
    int64_t position;  // -1: unknown
  };
  std::map<std::string, Claim> owner;
  std::map<std::string, int> claims;
  for (size_t i = 0; i < stores.size(); ++i) {
    const auto* meta = stores[i]->Find<pb::ProcessorMeta>(Table::kMeta, "");
    std::set<std::string> tenants;
    for (Table t : {Table::kDistributor, Table::kGroup, Table::kMember, Table::kOrder, Table::kRejection}) {
      stores[i]->Scan(t, "", [&](std::string_view k, const google::protobuf::MessageLite&) {
        tenants.emplace(KeyPart(k, 0));
        return true;
      });
    }
    for (const auto& tenant : tenants) {
      int64_t pos = -1;
      if (meta) {
        auto lane = meta->tenant_lanes().find(tenant);
        if (lane != meta->tenant_lanes().end()) {
          auto p = meta->lane_positions().find(lane->second);
          if (p != meta->lane_positions().end()) pos = p->second;
        }
      }
      ++claims[tenant];
      auto it = owner.find(tenant);
      if (it == owner.end()) {
        owner.emplace(tenant, Claim{i, pos});
      } else if (pos < 0 || it->second.position < 0) {
        return "tenant '" + tenant + "' is in several data dirs with no partition position to choose between them";
      } else if (pos > it->second.position) {
        it->second = Claim{i, pos};
      }
    }
  }
  struct Keyed {
    int kind;
    std::string key, line;
  };
  std::vector<Keyed> all;
  for (size_t i = 0; i < stores.size(); ++i) {
    ExportKeyed(*stores[i], [&](int kind, std::string_view key, const std::string& line) {
      if (owner.at(std::string(KeyPart(key, 0))).store == i) all.push_back({kind, std::string(key), line});
    });
  }
  std::stable_sort(all.begin(), all.end(), [](const Keyed& a, const Keyed& b) {
    return a.kind != b.kind ? a.kind < b.kind : a.key < b.key;
  });
  for (const auto& k : all) out << k.line << '\n';
  return std::nullopt;
}

std::optional<std::string> QueryJson(Store& s, std::string_view kind, std::string_view tenant,
                                     std::string_view id, int indent) {
  const std::string key = EntityKey(tenant, id);
  if (kind == "distributor") {
    const auto* d = s.Find<pb::Distributor>(Table::kDistributor, key);
    if (!d || (d->lines() == 0 && d->shares() == 0)) return std::nullopt;
    ChildRows<pb::Line> lines(s, Table::kLine, key);
    return Dump(DistributorWithLines(key, *d, true, lines), indent);
  }
  if (kind == "group") {
    const auto* g = s.Find<pb::Group>(Table::kGroup, key);
    if (!g) return std::nullopt;
    return Dump(GroupJson(key, *g), indent);
  }
  if (kind == "member") {
    const auto* found = s.Find<pb::Member>(Table::kMember, key);
    if (!found) return std::nullopt;
    pb::Member m = *found;
    LoadTierHistory(s, key, &m);
    return Dump(MemberJson(key, m, true), indent);
  }
  if (kind == "order") {
    const auto* o = s.Find<pb::Order>(Table::kOrder, key);
    if (!o) return std::nullopt;
    return Dump(OrderJson(key, *o, true), indent);
  }
  return std::nullopt;
}

}  // namespace fission
