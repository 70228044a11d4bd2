#include "projections/state.h"

#include <algorithm>

namespace fission {

namespace {

// Sets `flag` and notes `item` in `list`, once until the flag is cleared.
template <class List, class Item>
void MarkOnce(bool& flag, List& list, Item item) {
  if (flag) return;
  flag = true;
  list.push_back(item);
}

}  // namespace

void Tenant::TouchMember(Idx m) {
  MarkOnce(members[m].dirty, members.dirty(), m);
  MarkOnce(members[m].touched, touched, Touch{Touch::kMember, m});
}

void Tenant::TouchDistributor(Idx m) {
  MarkOnce(members[m].dist_dirty, dirty_distributors, m);
  MarkOnce(members[m].dist_touched, touched, Touch{Touch::kDistributor, m});
}

void Tenant::TouchLine(Idx l) {
  MarkOnce(lines[l].dirty, dirty_lines, l);
  MarkOnce(lines[l].touched, touched, Touch{Touch::kLine, l});
}

void Tenant::TouchGroup(Idx g) {
  MarkOnce(groups[g].dirty, groups.dirty(), g);
  MarkOnce(groups[g].touched, touched, Touch{Touch::kGroup, g});
}

void Tenant::ClearTouched() {
  for (const Touch& t : touched) {
    switch (t.kind) {
      case Touch::kDistributor: members[t.idx].dist_touched = false; break;
      case Touch::kGroup: groups[t.idx].touched = false; break;
      case Touch::kMember: members[t.idx].touched = false; break;
      case Touch::kLine: lines[t.idx].touched = false; break;
    }
  }
  touched.clear();
}

TierTable::TierTable(const RuleBook& rules) {
  // Intern every name first, so each version's bonus table covers them all.
  for (const auto& [tenant, versions] : rules.tenants) {
    for (const RuleVersion& r : versions) {
      for (const TierLevel& l : r.tiers.levels) Intern(l.name);
      for (const auto& [name, bps] : r.commission.tier_bonus_bps) Intern(name);
    }
  }
  for (const auto& [tenant, versions] : rules.tenants) {
    for (const RuleVersion& r : versions) {
      PerVersion v;
      for (const TierLevel& l : r.tiers.levels) v.levels.emplace_back(l.min_growth, ids_.at(l.name));
      v.bonus.assign(names_.size(), Bps(0));
      for (const auto& [name, bps] : r.commission.tier_bonus_bps) v.bonus[ids_.at(name)] = bps;
      versions_.emplace(&r, std::move(v));
    }
  }
}

TierId TierTable::Intern(std::string_view name) {
  auto it = ids_.find(name);
  if (it != ids_.end()) return it->second;
  const auto id = static_cast<TierId>(names_.size());
  names_.emplace_back(name);
  ids_.emplace(std::string(name), id);
  return id;
}

const TierTable::PerVersion& TierTable::Of(const RuleVersion& r) const { return versions_.at(&r); }

TierId TierTable::TierFor(const RuleVersion& r, int64_t growth) const {
  const auto& levels = Of(r).levels;
  TierId best = levels.front().second;
  for (const auto& [min, id] : levels) {
    if (min <= growth) best = id;
  }
  return best;
}

int TierTable::Rank(const RuleVersion& r, TierId t) const {
  const auto& levels = Of(r).levels;
  for (size_t i = 0; i < levels.size(); ++i) {
    if (levels[i].second == t) return static_cast<int>(i);
  }
  return -1;
}

Bps TierTable::Bonus(const RuleVersion& r, TierId t) const {
  const auto& bonus = Of(r).bonus;
  return t < bonus.size() ? bonus[t] : Bps(0);
}

Tenant& State::GetTenant(std::string_view name) {
  auto it = tenants_.find(name);
  if (it == tenants_.end()) {
    auto t = std::make_unique<Tenant>();
    t->name.assign(name);
    it = tenants_.emplace(std::string(name), std::move(t)).first;
  }
  return *it->second;
}

Tenant* State::FindTenant(std::string_view name) {
  auto it = tenants_.find(name);
  return it == tenants_.end() ? nullptr : it->second.get();
}

void State::DropTenant(std::string_view name) {
  auto it = tenants_.find(name);
  if (it != tenants_.end()) tenants_.erase(it);
}

uint32_t State::InternSource(std::string_view source) {
  auto it = source_ids_.find(source);
  if (it != source_ids_.end()) return it->second;
  const auto id = static_cast<uint32_t>(sources.size());
  sources.emplace_back(source);
  source_ids_.emplace(std::string(source), id);
  return id;
}

}  // namespace fission
