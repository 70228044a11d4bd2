#include "events/decode.h"

#include <fmt/format.h>
#include <xxhash.h>

#include <nlohmann/json.hpp>
#include <simdjson.h>

#include <array>

#include "events/time.h"

namespace fission {
namespace {

using nlohmann::json;

// Thrown only inside this file, caught by DecodeJson.
struct Invalid {
  std::string detail;
};

[[noreturn]] void Fail(std::string detail) { throw Invalid{std::move(detail)}; }

std::string_view JsonTypeName(const json& v) {
  switch (v.type()) {
    case json::value_t::null: return "null";
    case json::value_t::boolean: return "boolean";
    case json::value_t::string: return "string";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: return "integer";
    case json::value_t::number_float: return "number with a fraction";
    case json::value_t::array: return "array";
    case json::value_t::object: return "object";
    default: return "value";
  }
}

class Fields {
 public:
  explicit Fields(const json& o) : o_(o) {}

  const json* Find(const char* name) const {
    auto it = o_.find(name);
    return it == o_.end() ? nullptr : &*it;
  }

  const std::string& String(const char* name, bool required) const {
    static const std::string kEmpty;
    const json* v = Find(name);
    if (v == nullptr) {
      if (required) Fail(fmt::format("missing required field '{}'", name));
      return kEmpty;
    }
    if (!v->is_string()) Fail(fmt::format("field '{}' must be a string, got {}", name, JsonTypeName(*v)));
    return v->get_ref<const std::string&>();
  }

  std::optional<std::string> Id(const char* name, bool required, size_t max_len = 64) const {
    if (!required && Find(name) == nullptr) return std::nullopt;
    const std::string& s = String(name, required);
    if (!IsValidId(s, max_len)) {
      Fail(fmt::format("field '{}' must be 1-{} characters of [A-Za-z0-9_.:-]", name, max_len));
    }
    return s;
  }

  std::optional<int64_t> Int(const char* name, bool required, int64_t lo, int64_t hi) const {
    const json* v = Find(name);
    if (v == nullptr) {
      if (required) Fail(fmt::format("missing required field '{}'", name));
      return std::nullopt;
    }
    if (!v->is_number_integer()) {
      Fail(fmt::format("field '{}' must be an integer, got {}", name, JsonTypeName(*v)));
    }
    // nlohmann stores non-negative integers as unsigned: compare without
    // narrowing so 2^63 and above cannot wrap into range.
    const bool in_range = v->is_number_unsigned()
                              ? v->get<uint64_t>() <= static_cast<uint64_t>(hi) && (lo <= 0 || v->get<uint64_t>() >= static_cast<uint64_t>(lo))
                              : v->get<int64_t>() >= lo && v->get<int64_t>() <= hi;
    if (!in_range) Fail(fmt::format("field '{}' must be in [{}, {}], got {}", name, lo, hi, v->dump()));
    return v->is_number_unsigned() ? static_cast<int64_t>(v->get<uint64_t>()) : v->get<int64_t>();
  }

  std::optional<Millis> Time(const char* name, bool required) const {
    if (!required && Find(name) == nullptr) return std::nullopt;
    const std::string& s = String(name, required);
    auto t = ParseRfc3339(s);
    if (!t) Fail(fmt::format("field '{}' is not an RFC 3339 timestamp with offset: '{}'", name, s.substr(0, 64)));
    return t;
  }

  std::optional<bool> Bool(const char* name) const {
    const json* v = Find(name);
    if (v == nullptr) return std::nullopt;
    if (!v->is_boolean()) Fail(fmt::format("field '{}' must be a boolean, got {}", name, JsonTypeName(*v)));
    return v->get<bool>();
  }

 private:
  const json& o_;
};

std::optional<pb::EventType> TypeFromName(std::string_view s) {
  if (s == "share") return pb::SHARE;
  if (s == "join") return pb::JOIN;
  if (s == "payment") return pb::PAYMENT;
  if (s == "refund") return pb::REFUND;
  if (s == "checkin") return pb::CHECKIN;
  return std::nullopt;
}

// Fills `e` from the fields of one JSON object (Fields, or FlatFields on the
// fast path); throws Invalid.
template <class F>
void FromFields(const F& f, pb::Event* e) {
  e->set_event_id(*f.Id("event_id", true, 128));
  const std::string& type = f.String("type", true);
  auto t = TypeFromName(type);
  if (!t) return;  // caller reports unknown_type after the envelope is read
  e->set_type(*t);
  e->set_occurred_at_ms(f.Time("occurred_at", true)->v);
  e->set_tenant(f.Id("tenant", false).value_or("default"));
  switch (*t) {
    case pb::SHARE: {
      e->set_sharer(*f.Id("sharer", true));
      e->set_share_id(*f.Id("share_id", true));
      if (f.Find("target_type")) {
        const std::string& s = f.String("target_type", true);
        if (s != "product" && s != "group") Fail("field 'target_type' must be \"product\" or \"group\"");
        e->set_target_type(s);
      }
      if (auto id = f.Id("target_id", false)) e->set_target_id(*id);
      if (f.Find("channel")) {
        const std::string& c = f.String("channel", true);
        if (c.empty() || c.size() > 64) Fail("field 'channel' must be 1-64 characters");
        e->set_channel(c);
      }
      break;
    }
    case pb::JOIN: {
      e->set_member(*f.Id("member", true));
      e->set_group_id(*f.Id("group_id", true));
      if (auto s = f.Id("share_id", false)) e->set_share_id(*s);
      if (f.Bool("opens").value_or(false)) {
        e->set_opens(true);
        e->set_size(static_cast<int32_t>(*f.Int("size", true, 2, 100)));
        Millis exp = *f.Time("expires_at", true);
        if (exp.v <= e->occurred_at_ms()) Fail("field 'expires_at' must be after 'occurred_at'");
        e->set_expires_at_ms(exp.v);
        e->set_product_id(*f.Id("product_id", true));
      }
      break;
    }
    case pb::PAYMENT: {
      e->set_member(*f.Id("member", true));
      e->set_order_id(*f.Id("order_id", true));
      const int64_t amount = *f.Int("amount_fen", true, 1, kMaxAmountFen);
      e->set_amount_fen(amount);
      e->set_commission_base_fen(f.Int("commission_base_fen", false, 0, amount).value_or(amount));
      if (auto g = f.Id("group_id", false)) e->set_group_id(*g);
      if (auto s = f.Id("share_id", false)) e->set_share_id(*s);
      break;
    }
    case pb::REFUND: {
      e->set_order_id(*f.Id("order_id", true));
      e->set_amount_fen(*f.Int("amount_fen", true, 1, std::numeric_limits<int64_t>::max()));
      break;
    }
    case pb::CHECKIN: {
      e->set_member(*f.Id("member", true));
      break;
    }
    default: break;
  }
}

// The fast path (DecodeJson): simdjson reads the common line, an object of
// known scalar fields, into FlatFields; the same FromFields validates it.
// Anything it is not sure of (an escape, an unknown or repeated field, a
// value that is not a plain string, integer or boolean, a field that fails
// validation) goes to the nlohmann path, which alone words rejections: so
// both paths accept exactly the same lines with the same result.
enum Field : uint8_t {
  kEventId, kType, kOccurredAt, kTenant, kSharer, kShareId, kTargetType, kTargetId, kChannel, kMember,
  kGroupId, kOpens, kSize, kExpiresAt, kProductId, kOrderId, kAmountFen, kCommissionBaseFen, kFieldCount
};
constexpr std::array<std::string_view, kFieldCount> kFieldNames = {
    "event_id", "type",     "occurred_at", "tenant",     "sharer",     "share_id",   "target_type",
    "target_id", "channel", "member",      "group_id",   "opens",      "size",       "expires_at",
    "product_id", "order_id", "amount_fen", "commission_base_fen"};

std::optional<Field> FieldOf(std::string_view name) {
  for (size_t i = 0; i < kFieldNames.size(); ++i) {
    if (kFieldNames[i] == name) return static_cast<Field>(i);
  }
  return std::nullopt;
}

struct NotSure {};  // thrown by FlatFields: the nlohmann path decides

class FlatFields {
 public:
  struct Value {
    enum Kind : uint8_t { kAbsent, kString, kInt, kBool } kind = kAbsent;
    std::string str;
    int64_t i = 0;
    bool b = false;
  };
  Value& Slot(Field f) { return values_[f]; }

  const Value* Find(const char* name) const {
    const Value& v = values_[*FieldOf(name)];
    return v.kind == Value::kAbsent ? nullptr : &v;
  }
  const std::string& String(const char* name, bool required) const {
    static const std::string kEmpty;
    const Value* v = Find(name);
    if (v == nullptr) {
      if (required) throw NotSure{};
      return kEmpty;
    }
    if (v->kind != Value::kString) throw NotSure{};
    return v->str;
  }
  std::optional<std::string> Id(const char* name, bool required, size_t max_len = 64) const {
    if (!required && Find(name) == nullptr) return std::nullopt;
    const std::string& s = String(name, required);
    if (!IsValidId(s, max_len)) throw NotSure{};
    return s;
  }
  std::optional<int64_t> Int(const char* name, bool required, int64_t lo, int64_t hi) const {
    const Value* v = Find(name);
    if (v == nullptr) {
      if (required) throw NotSure{};
      return std::nullopt;
    }
    if (v->kind != Value::kInt || v->i < lo || v->i > hi) throw NotSure{};
    return v->i;
  }
  std::optional<Millis> Time(const char* name, bool required) const {
    if (!required && Find(name) == nullptr) return std::nullopt;
    auto t = ParseRfc3339(String(name, required));
    if (!t) throw NotSure{};
    return t;
  }
  std::optional<bool> Bool(const char* name) const {
    const Value* v = Find(name);
    if (v == nullptr) return std::nullopt;
    if (v->kind != Value::kBool) throw NotSure{};
    return v->b;
  }

 private:
  std::array<Value, kFieldCount> values_;
};

// The event, when the fast path is sure of it; nullopt: ask the nlohmann path.
std::optional<pb::Event> DecodeFast(std::string_view line) {
  for (char c : line) {  // escapes and control bytes: nlohmann's reading
    if (c == '\\' || static_cast<unsigned char>(c) < 0x20) return std::nullopt;
  }
  // The DOM parser: its kernel (AVX2, AVX-512, ...) is chosen at run time
  // for the machine, where On Demand's is fixed at compile time.
  thread_local simdjson::dom::parser parser;
  thread_local std::string padded;
  padded.assign(line);
  padded.append(simdjson::SIMDJSON_PADDING, '\0');
  FlatFields f;
  simdjson::dom::object object;
  if (parser.parse(padded.data(), line.size(), false).get(object) != simdjson::SUCCESS) return std::nullopt;
  uint32_t seen = 0;
  for (const auto [key, value] : object) {
    const std::optional<Field> which = FieldOf(key);
    if (!which || (seen & (1u << *which)) != 0) return std::nullopt;  // unknown or repeated
    seen |= 1u << *which;
    FlatFields::Value& v = f.Slot(*which);
    switch (value.type()) {
      case simdjson::dom::element_type::STRING:
        v.kind = FlatFields::Value::kString;
        v.str.assign(std::string_view(value));
        break;
      case simdjson::dom::element_type::INT64:
        v.kind = FlatFields::Value::kInt;
        v.i = int64_t(value);
        break;
      case simdjson::dom::element_type::BOOL:
        v.kind = FlatFields::Value::kBool;
        v.b = bool(value);
        break;
      default: return std::nullopt;
    }
  }
  pb::Event e;
  try {
    FromFields(f, &e);
  } catch (const NotSure&) {
    return std::nullopt;
  } catch (const Invalid&) {
    return std::nullopt;
  }
  if (e.type() == pb::EVENT_TYPE_UNSPECIFIED) return std::nullopt;
  return e;
}

std::string Hash128(std::string_view bytes) {
  XXH128_hash_t h = XXH3_128bits(bytes.data(), bytes.size());
  std::string out(16, '\0');
  for (int i = 0; i < 8; ++i) {
    out[static_cast<size_t>(i)] = static_cast<char>(h.high64 >> (56 - 8 * i));
    out[static_cast<size_t>(8 + i)] = static_cast<char>(h.low64 >> (56 - 8 * i));
  }
  return out;
}

}  // namespace

bool IsValidId(std::string_view s, size_t max_len) {
  if (s.empty() || s.size() > max_len) return false;
  for (char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '.' || c == ':' || c == '-';
    if (!ok) return false;
  }
  return true;
}

std::string ValidUtf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    // Length of the sequence `c` starts and the range its second byte must
    // fall in (which excludes overlong forms, surrogates and > U+10FFFF).
    size_t len = 0;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c < 0x80) len = 1;
    else if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c == 0xE0) len = 3, lo = 0xA0;
    else if (c >= 0xE1 && c <= 0xEC) len = 3;
    else if (c == 0xED) len = 3, hi = 0x9F;
    else if (c >= 0xEE && c <= 0xEF) len = 3;
    else if (c == 0xF0) len = 4, lo = 0x90;
    else if (c >= 0xF1 && c <= 0xF3) len = 4;
    else if (c == 0xF4) len = 4, hi = 0x8F;
    bool ok = len > 0 && i + len <= s.size();
    for (size_t k = 1; ok && k < len; ++k) {
      const auto b = static_cast<unsigned char>(s[i + k]);
      ok = k == 1 ? (b >= lo && b <= hi) : (b >= 0x80 && b <= 0xBF);
    }
    if (ok) {
      out.append(s.substr(i, len));
      i += len;
    } else {
      out += fmt::format("\\x{:02X}", c);
      ++i;
    }
  }
  return out;
}

std::string_view TypeName(pb::EventType t) {
  switch (t) {
    case pb::SHARE: return "share";
    case pb::JOIN: return "join";
    case pb::PAYMENT: return "payment";
    case pb::REFUND: return "refund";
    case pb::CHECKIN: return "checkin";
    default: return "unknown";
  }
}

std::string ContentKey(const pb::Event& e) {
  std::string bytes;
  google::protobuf::io::StringOutputStream sos(&bytes);
  google::protobuf::io::CodedOutputStream cos(&sos);
  cos.SetSerializationDeterministic(true);
  e.SerializeToCodedStream(&cos);
  cos.Trim();
  return Hash128(bytes);
}

Result<pb::Event, DecodeError> DecodeJson(std::string_view line) {
  if (line.size() <= kMaxEventBytes) {
    if (std::optional<pb::Event> e = DecodeFast(line)) return std::move(*e);
  }
  return DecodeJsonSlowly(line);
}

Result<pb::Event, DecodeError> DecodeJsonSlowly(std::string_view line) {
  DecodeError err;
  err.reason = "invalid_event";
  if (line.size() > kMaxEventBytes) {
    err.detail = fmt::format("event exceeds the {} byte limit", kMaxEventBytes);
    err.content_key = Hash128(line);
    return Result<pb::Event, DecodeError>::Error(std::move(err));
  }
  json doc;
  try {
    // The callback bounds nesting depth before the parser builds deep values.
    doc = json::parse(line, [](int depth, json::parse_event_t, json&) {
      if (depth > kMaxJsonDepth) throw Invalid{fmt::format("JSON nested deeper than {}", kMaxJsonDepth)};
      return true;
    });
  } catch (const Invalid& e) {
    err.detail = e.detail;
  } catch (const json::exception& e) {
    err.detail = fmt::format("malformed JSON: {}", e.what());
  }
  if (!err.detail.empty()) {
    err.content_key = Hash128(line);
    return Result<pb::Event, DecodeError>::Error(std::move(err));
  }
  if (!doc.is_object()) {
    err.detail = fmt::format("event must be a JSON object, got {}", JsonTypeName(doc));
    err.content_key = Hash128(line);
    return Result<pb::Event, DecodeError>::Error(std::move(err));
  }
  // Best-effort envelope for the rejection record, read before validation.
  if (auto it = doc.find("event_id"); it != doc.end() && it->is_string() &&
                                      IsValidId(it->get_ref<const std::string&>(), 128)) {
    err.event_id = it->get<std::string>();
  }
  if (auto it = doc.find("tenant"); it != doc.end() && it->is_string() &&
                                    IsValidId(it->get_ref<const std::string&>())) {
    err.tenant = it->get<std::string>();
  }
  if (auto it = doc.find("type"); it != doc.end() && it->is_string()) {
    err.type = it->get<std::string>().substr(0, 64);
  }
  pb::Event e;
  try {
    FromFields(Fields(doc), &e);
    if (e.type() == pb::EVENT_TYPE_UNSPECIFIED) {
      err.reason = "unknown_type";
      err.detail = fmt::format("unknown event type '{}'", err.type.value_or(""));
    }
  } catch (const Invalid& inv) {
    err.detail = inv.detail;
  } catch (const std::exception& ex) {  // defensive: nlohmann accessors
    err.detail = fmt::format("invalid event: {}", ex.what());
  }
  if (!err.detail.empty()) {
    err.content_key = Hash128(doc.dump());  // parsed content: key order and spacing do not matter
    return Result<pb::Event, DecodeError>::Error(std::move(err));
  }
  return e;
}

Result<pb::Event, DecodeError> ValidateEvent(pb::Event in) {
  // Re-express as JSON-equivalent checks by encoding and decoding: one set of
  // rules for both transports.
  std::string as_json = EncodeJson(in);
  return DecodeJson(as_json);
}

Result<pb::Event, DecodeError> DecodeProto(std::string_view bytes) {
  pb::Event e;
  if (!e.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    DecodeError err;
    err.reason = "invalid_event";
    err.detail = "bytes are not a fission.v1.Event Protobuf message";
    return Result<pb::Event, DecodeError>::Error(std::move(err));
  }
  return ValidateEvent(std::move(e));
}

std::string EncodeJson(const pb::Event& e) {
  json o;
  o["event_id"] = e.event_id();
  o["type"] = std::string(TypeName(e.type()));
  o["occurred_at"] = FormatRfc3339(Millis(e.occurred_at_ms()));
  o["tenant"] = e.tenant().empty() ? "default" : e.tenant();
  if (e.has_sharer()) o["sharer"] = e.sharer();
  if (e.has_share_id()) o["share_id"] = e.share_id();
  if (e.has_target_type()) o["target_type"] = e.target_type();
  if (e.has_target_id()) o["target_id"] = e.target_id();
  if (e.has_channel()) o["channel"] = e.channel();
  if (e.has_member()) o["member"] = e.member();
  if (e.has_group_id()) o["group_id"] = e.group_id();
  if (e.has_opens()) o["opens"] = e.opens();
  if (e.has_size()) o["size"] = e.size();
  if (e.has_expires_at_ms()) o["expires_at"] = FormatRfc3339(Millis(e.expires_at_ms()));
  if (e.has_product_id()) o["product_id"] = e.product_id();
  if (e.has_order_id()) o["order_id"] = e.order_id();
  if (e.has_amount_fen()) o["amount_fen"] = e.amount_fen();
  if (e.has_commission_base_fen()) o["commission_base_fen"] = e.commission_base_fen();
  return o.dump();
}

}  // namespace fission
