#include "projections/store.h"

#include <algorithm>
#include <map>
#include <string>

namespace fission {

std::unique_ptr<google::protobuf::MessageLite> NewRow(Table t) {
  switch (t) {
    case Table::kDistributor: return std::make_unique<pb::Distributor>();
    case Table::kGroup: return std::make_unique<pb::Group>();
    case Table::kMember: return std::make_unique<pb::Member>();
    case Table::kOrder: return std::make_unique<pb::Order>();
    case Table::kRejection: return std::make_unique<pb::Rejection>();
    case Table::kLine: return std::make_unique<pb::Line>();
    case Table::kShare: return std::make_unique<pb::Share>();
    case Table::kPending: return std::make_unique<pb::Pending>();
    case Table::kTimer: return std::make_unique<pb::Timer>();
    case Table::kMeta: return std::make_unique<pb::ProcessorMeta>();
    case Table::kChange: return std::make_unique<pb::Change>();
    case Table::kEvent: return std::make_unique<pb::StoredEvent>();
    case Table::kTierChange: return std::make_unique<pb::TierChange>();
  }
  return nullptr;
}

struct MemStore::Impl {
  std::map<std::string, std::unique_ptr<google::protobuf::MessageLite>, std::less<>> rows[128];
  auto& Of(Table t) { return rows[static_cast<unsigned char>(t) & 127]; }
};

MemStore::MemStore() : impl_(std::make_unique<Impl>()) {}
MemStore::~MemStore() = default;

const google::protobuf::MessageLite* MemStore::FindRow(Table t, std::string_view key) {
  auto& m = impl_->Of(t);
  auto it = m.find(key);
  return it == m.end() ? nullptr : it->second.get();
}

bool MemStore::ReadRow(Table t, std::string_view key, google::protobuf::MessageLite* out) {
  const auto* row = FindRow(t, key);
  if (!row) return false;
  out->CheckTypeAndMergeFrom(*row);
  return true;
}

google::protobuf::MessageLite* MemStore::MutableRow(Table t, std::string_view key) {
  auto& m = impl_->Of(t);
  auto it = m.find(key);
  if (it == m.end()) it = m.emplace(std::string(key), NewRow(t)).first;
  return it->second.get();
}

void MemStore::Put(Table t, std::string_view key, std::string_view value) {
  auto* r = MutableRow(t, key);
  if (!r->ParseFromArray(value.data(), static_cast<int>(value.size()))) r->Clear();
}

void MemStore::Delete(Table t, std::string_view key) {
  auto& m = impl_->Of(t);
  auto it = m.find(key);
  if (it != m.end()) m.erase(it);
}

void MemStore::DeletePrefix(Table t, std::string_view prefix) {
  auto& m = impl_->Of(t);
  auto it = m.lower_bound(prefix);
  while (it != m.end() && it->first.starts_with(prefix)) it = m.erase(it);
}

void MemStore::ScanRows(Table t, std::string_view prefix, const Fn& fn) {
  auto& m = impl_->Of(t);
  for (auto it = m.lower_bound(prefix); it != m.end() && it->first.starts_with(prefix); ++it) {
    fn(it->first, it->second->SerializeAsString());
  }
}

bool MemStore::GetRow(Table t, std::string_view key, std::string* value) {
  const auto* row = FindRow(t, key);
  if (!row) return false;
  *value = row->SerializeAsString();
  return true;
}

void MemStore::ScanFrom(Table t, std::string_view prefix, std::string_view from, const ScanFn& fn) {
  auto& m = impl_->Of(t);
  for (auto it = m.lower_bound(std::max(prefix, from)); it != m.end(); ++it) {
    if (it->first.compare(0, prefix.size(), prefix) != 0) break;
    if (!fn(it->first, *it->second)) break;
  }
}

}  // namespace fission
