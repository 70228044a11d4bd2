// Decoding and validating arriving events (spec sections 2 and 4, check 1).
//
// Every input is hostile: DecodeJson never throws and never crashes on any
// byte string; it returns either a fully validated Event or a DecodeError that
// says precisely what is wrong. A validated Event is canonical: defaults are
// filled in (tenant "default", commission_base_fen = amount_fen) and fields
// that do not belong to its type are cleared, so two events with the same
// parsed content have the same ContentKey.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "events/types.h"
#include "fission/v1/events.pb.h"

namespace fission {

namespace pb = ::fission::v1;

inline constexpr size_t kMaxEventBytes = 64 * 1024;  // a larger line is invalid
inline constexpr int kMaxJsonDepth = 8;

struct DecodeError {
  std::string reason;                   // "invalid_event" or "unknown_type"
  std::string detail;                   // human-readable: which field, what is wrong
  std::optional<std::string> event_id;  // when a well-formed event_id could be read
  std::string tenant = "default";       // the event's tenant when it could be read
  std::optional<std::string> type;      // the raw type string when there was one
  std::string content_key;              // identity of the rejected content, for dedupe
};

// Parses one JSON object (one line of a JSONL file). A line of known fields
// with plain values is read by simdjson; any other line, and every line it
// rejects, by nlohmann, which words the rejection: the result is always
// DecodeJsonSlowly's.
Result<pb::Event, DecodeError> DecodeJson(std::string_view line);
// DecodeJson on nlohmann alone: the reference the fast path is tested against.
Result<pb::Event, DecodeError> DecodeJsonSlowly(std::string_view line);

// Validates an Event that arrived already in Protobuf form (Kafka) by the same
// rules as DecodeJson, canonicalizing it in place.
Result<pb::Event, DecodeError> ValidateEvent(pb::Event event);

// Parses the bytes of a fission.v1.Event and validates it (ValidateEvent).
Result<pb::Event, DecodeError> DecodeProto(std::string_view bytes);

// Identity of an event's parsed content: equal for equal content.
std::string ContentKey(const pb::Event& e);

// True for 1-64 (or up to `max_len`) characters of [A-Za-z0-9_.:-].
bool IsValidId(std::string_view s, size_t max_len = 64);

// `s` with every byte that is not part of a well-formed UTF-8 sequence written
// as the four characters \xNN. Text derived from hostile input (a parser's
// message quoting the bytes it choked on, a file name) passes through this
// before it goes into a Protobuf `string` field or a JSON document, both of
// which refuse invalid UTF-8.
std::string ValidUtf8(std::string_view s);

std::string_view TypeName(pb::EventType t);

// JSON form of a validated event (for `fission query` and the events API).
std::string EncodeJson(const pb::Event& e);

}  // namespace fission
