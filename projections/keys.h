// Row keys of the projection state, shared by every Store implementation.
//
// Within a table, keys sort bytewise in exactly the order the canonical export
// (spec section 7) and the canonical event order (section 3) need:
//
//   entity (D,G,M,O,S)  tenant 0x00 id
//   line   (L)          tenant 0x00 distributor 0x00 order_id 0x00 kind level
//                       kind: 0x00 commission, 0x01 leader_bonus; level: one byte
//   rejection (R)       tenant 0x00 has_id(0x00|0x01) event_id 0x00 source 0x00 be64(position)
//   pending (p)         be64(occurred_at) event_id 0x00 tenant
//   timer (t)           be64(deadline) kind(0x00 group expiry, 0x01 settlement) target
//                       target: entity key of the group, or line key of the line
//   meta (m)            "" (one row)
//   change (V)          be64(seq)   (Change: what one applied event or fired
//                       timer changed; seq from 1, in fold order, so the
//                       table only ever grows at its end; each current row
//                       of D, G, M, L points at its latest version here)
//   event (E)           tenant 0x00 event_id (StoredEvent; with its content
//                       key, which the dedupe check loads at start; the
//                       event itself is the log record it names, when the
//                       input went through the embedded log)
//   tier change (T)     tenant 0x00 member 0x00 be64(seq)   (TierChange; seq from 0,
//                       the member's tier_changes counts them)
//
// be64 is big-endian with the sign bit flipped, so negative instants sort first.
// Ids never contain 0x00 (they are validated), which makes 0x00 a safe separator
// that also sorts a prefix before its extensions ("a" < "a.b").
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace fission {

enum class Table : char {
  kDistributor = 'D',
  kGroup = 'G',
  kMember = 'M',
  kOrder = 'O',
  kRejection = 'R',
  kLine = 'L',
  kShare = 'S',
  kPending = 'p',
  kTimer = 't',
  kMeta = 'm',
  kChange = 'V',
  kEvent = 'E',
  kTierChange = 'T',
};

enum class TimerKind : char { kGroupExpiry = 0, kSettlement = 1 };

inline void PutBe64(std::string* out, int64_t v) {
  const uint64_t u = static_cast<uint64_t>(v) ^ (uint64_t{1} << 63);
  for (int i = 7; i >= 0; --i) out->push_back(static_cast<char>(u >> (8 * i)));
}

inline int64_t GetBe64(std::string_view in) {
  uint64_t u = 0;
  for (int i = 0; i < 8; ++i) u = (u << 8) | static_cast<unsigned char>(in[static_cast<size_t>(i)]);
  return static_cast<int64_t>(u ^ (uint64_t{1} << 63));
}

inline std::string EntityKey(std::string_view tenant, std::string_view id) {
  std::string k;
  k.reserve(tenant.size() + id.size() + 1);
  k.append(tenant).push_back('\0');
  k.append(id);
  return k;
}

inline std::string LineKey(std::string_view tenant, std::string_view distributor,
                           std::string_view order_id, bool leader_bonus, int level) {
  std::string k = EntityKey(tenant, distributor);
  k.push_back('\0');
  k.append(order_id).push_back('\0');
  k.push_back(leader_bonus ? '\1' : '\0');
  k.push_back(static_cast<char>(level));
  return k;
}

inline std::string TierChangePrefix(std::string_view tenant, std::string_view member) {
  std::string k = EntityKey(tenant, member);
  k.push_back('\0');
  return k;
}

inline std::string TierChangeKey(std::string_view tenant, std::string_view member, int64_t seq) {
  std::string k = TierChangePrefix(tenant, member);
  PutBe64(&k, seq);
  return k;
}

// Splits "a\0b\0c" into its parts; the last part may contain no separator.
inline std::string_view KeyPart(std::string_view key, int index) {
  size_t start = 0;
  for (int i = 0; i < index; ++i) {
    size_t z = key.find('\0', start);
    if (z == std::string_view::npos) return {};
    start = z + 1;
  }
  size_t end = key.find('\0', start);
  return key.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
}

inline std::string PendingKey(int64_t occurred_at_ms, std::string_view event_id,
                              std::string_view tenant) {
  std::string k;
  PutBe64(&k, occurred_at_ms);
  k.append(event_id).push_back('\0');
  k.append(tenant);
  return k;
}

inline std::string TimerKey(int64_t deadline_ms, TimerKind kind, std::string_view target) {
  std::string k;
  PutBe64(&k, deadline_ms);
  k.push_back(static_cast<char>(kind));
  k.append(target);
  return k;
}

// Every rejection row of one event_id starts with this.
inline std::string RejectionIdPrefix(std::string_view tenant, std::string_view event_id) {
  std::string k = std::string(tenant);
  k.push_back('\0');
  k.push_back('\1');
  k.append(event_id).push_back('\0');
  return k;
}

inline std::string RejectionKey(std::string_view tenant, const std::string* event_id,
                                std::string_view source, int64_t position) {
  std::string k;
  if (event_id) {
    k = RejectionIdPrefix(tenant, *event_id);
  } else {
    k = std::string(tenant);
    k.append(std::string_view("\0\0\0", 3));
  }
  for (char c : source) k.push_back(c == '\0' ? '?' : c);
  k.push_back('\0');
  PutBe64(&k, position);
  return k;
}

// A row version's address (the last_version field of a row, ChangedRow.prev):
// the change's sequence and the row's index in it; 0 = none.
inline constexpr int kVersionIndexBits = 16;
inline uint64_t VersionRef(uint64_t change_seq, uint32_t index) {
  return (change_seq << kVersionIndexBits) | index;
}
inline uint64_t VersionChange(uint64_t ref) { return ref >> kVersionIndexBits; }
inline uint32_t VersionIndex(uint64_t ref) {
  return static_cast<uint32_t>(ref & ((uint64_t{1} << kVersionIndexBits) - 1));
}

inline std::string ChangeKey(uint64_t seq) {
  std::string k;
  PutBe64(&k, static_cast<int64_t>(seq));
  return k;
}

}  // namespace fission
