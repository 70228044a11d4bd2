// Event time and decoding: what is valid, what is not, and what the rejection says.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "events/decode.h"
#include "events/time.h"
#include "replay/synth.h"
#include "tests/scenario.h"

namespace fission {
namespace {

TEST(EventTime, ParsesOffsetsToUtcMillis) {
  EXPECT_EQ(ParseRfc3339("2026-11-01T09:30:00+08:00")->v, ParseRfc3339("2026-11-01T01:30:00Z")->v);
  EXPECT_EQ(FormatRfc3339(*ParseRfc3339("2026-11-01T09:30:00+08:00")), "2026-11-01T01:30:00.000Z");
  EXPECT_EQ(FormatRfc3339(*ParseRfc3339("2026-11-01T09:30:00.5-02:30")), "2026-11-01T12:00:00.500Z");
  EXPECT_EQ(FormatRfc3339(*ParseRfc3339("2026-11-01T09:30:00.123Z")), "2026-11-01T09:30:00.123Z");
  EXPECT_EQ(FormatRfc3339(*ParseRfc3339("1969-12-31T23:59:59.999Z")), "1969-12-31T23:59:59.999Z");
  EXPECT_EQ(FormatRfc3339(*ParseRfc3339("2024-02-29T00:00:00Z")), "2024-02-29T00:00:00.000Z");
}

TEST(EventTime, RejectsImpossibleOrSloppyTimestamps) {
  for (const char* bad : {"2026-02-29T00:00:00Z", "2026-13-01T00:00:00Z", "2026-11-01T24:00:00Z",
                          "2026-11-01T10:00:60Z", "2026-11-01T10:00:00", "2026-11-01 10:00:00Z",
                          "2026-11-01T10:00:00.1234Z", "2026-11-01T10:00:00.Z", "2026-11-01T10:00:00+0800",
                          "2026-11-01T10:00:00+24:00", "", "yesterday", "2026-11-01T10:00:00Zjunk"}) {
    EXPECT_FALSE(ParseRfc3339(bad).has_value()) << bad;
  }
}

TEST(EventTime, BusinessDateTurnsAt1600UtcWithOffset480) {
  const Millis before = *ParseRfc3339("2026-11-01T15:59:59.999Z");
  const Millis after = *ParseRfc3339("2026-11-01T16:00:00.000Z");
  EXPECT_EQ(FormatDay(BusinessDay(before, 480)), "2026-11-01");
  EXPECT_EQ(FormatDay(BusinessDay(after, 480)), "2026-11-02");
  EXPECT_EQ(FormatDay(BusinessDay(after, 0)), "2026-11-01");
}

std::string ReasonOf(const std::string& line) {
  auto r = DecodeJson(line);
  return r.ok() ? "ok" : r.error().reason + ": " + r.error().detail;
}

TEST(DecodeJson, AcceptsEveryTypeAndFillsDefaults) {
  auto r = DecodeJson(test::Pay("e1", test::At(1), "m1", "o1", 1000));
  ASSERT_TRUE(r.ok()) << r.error().detail;
  EXPECT_EQ(r.value().tenant(), "default");
  EXPECT_EQ(r.value().commission_base_fen(), 1000);
  EXPECT_EQ(r.value().occurred_at_ms(), test::Ms(test::At(1)));
  for (const auto& l : {test::Share("e2", test::At(1), "m1", "s1"), test::Join("e3", test::At(1), "m1", "g1"),
                        test::Open("e4", test::At(1), "m1", "g1", 3, test::At(2)),
                        test::Refund("e5", test::At(1), "o1", 5), test::Checkin("e6", test::At(1), "m1")}) {
    EXPECT_EQ(ReasonOf(l), "ok") << l;
  }
}

TEST(DecodeJson, UnknownExtraFieldsAreIgnored) {
  EXPECT_EQ(ReasonOf(R"({"event_id":"e1","type":"checkin","occurred_at":"2026-11-01T10:00:00+08:00","member":"m1","app_version":"9.1","extra":{"a":[1,2]}})"), "ok");
}

TEST(DecodeJson, MissingWrongTypedOrOutOfRangeFieldsAreInvalid) {
  const std::string t = test::At(1);
  struct Case { std::string line; std::string expect; };
  std::vector<Case> cases = {
      {R"({"type":"checkin","occurred_at":")" + t + R"(","member":"m1"})", "missing required field 'event_id'"},
      {R"({"event_id":"e1","type":"checkin","member":"m1"})", "missing required field 'occurred_at'"},
      {R"({"event_id":"e1","type":"payment","occurred_at":")" + t + R"(","member":"m1","order_id":"o1","amount_fen":"100"})", "field 'amount_fen' must be an integer, got string"},
      {R"({"event_id":"e1","type":"payment","occurred_at":")" + t + R"(","member":"m1","order_id":"o1","amount_fen":100.0})", "field 'amount_fen' must be an integer, got number with a fraction"},
      {R"({"event_id":"e1","type":"payment","occurred_at":")" + t + R"(","member":"m1","order_id":"o1","amount_fen":0})", "field 'amount_fen' must be in [1, 1000000000000], got 0"},
      {R"({"event_id":"e1","type":"payment","occurred_at":")" + t + R"(","member":"m1","order_id":"o1","amount_fen":1000000000001})", "must be in [1, 1000000000000]"},
      {R"({"event_id":"e1","type":"payment","occurred_at":")" + t + R"(","member":"m1","order_id":"o1","amount_fen":100,"commission_base_fen":101})", "field 'commission_base_fen' must be in [0, 100]"},
      {R"({"event_id":"e1","type":"refund","occurred_at":")" + t + R"(","order_id":"o1","amount_fen":-300})", "field 'amount_fen' must be in [1,"},
      {R"({"event_id":"e1","type":"checkin","occurred_at":")" + t + R"(","member":"bad id!"})", "field 'member' must be 1-64 characters"},
      {R"({"event_id":"e1","type":"checkin","occurred_at":")" + t + R"(","member":")" + std::string(65, 'a') + R"("})", "field 'member' must be 1-64"},
      {R"({"event_id":"e1","type":"checkin","occurred_at":")" + t + R"(","member":"m1","tenant":""})", "field 'tenant' must be 1-64"},
      {R"({"event_id":"e1","type":"checkin","occurred_at":"2026-13-45T99:00:00+08:00","member":"m1"})", "field 'occurred_at' is not an RFC 3339"},
      {R"({"event_id":"e1","type":"join","occurred_at":")" + t + R"(","member":"m1","group_id":"g1","opens":true,"size":3,"expires_at":")" + t + R"(","product_id":"p"})", "field 'expires_at' must be after 'occurred_at'"},
      {R"({"event_id":"e1","type":"join","occurred_at":")" + t + R"(","member":"m1","group_id":"g1","opens":true,"size":101,"expires_at":"2027-01-01T00:00:00Z","product_id":"p"})", "field 'size' must be in [2, 100]"},
      {R"({"event_id":"e1","type":"join","occurred_at":")" + t + R"(","member":"m1","group_id":"g1","opens":true,"expires_at":"2027-01-01T00:00:00Z","product_id":"p"})", "missing required field 'size'"},
      {R"({"event_id":"e1","type":"join","occurred_at":")" + t + R"(","member":"m1","group_id":"g1","opens":"yes"})", "field 'opens' must be a boolean"},
      {R"({"event_id":"e1","type":"share","occurred_at":")" + t + R"(","sharer":"m1","share_id":"s1","target_type":"video"})", "field 'target_type' must be"},
      {R"({"event_id":"e1","type":"checkin","occurred_at":")" + t + R"(","member":null})", "field 'member' must be a string, got null"},
      {R"([1,2,3])", "event must be a JSON object, got array"},
      {R"({"event_id":"e1","type":"checkin",)", "malformed JSON"},
      {"\xff\xfe garbage", "malformed JSON"},
  };
  for (const auto& c : cases) {
    auto r = DecodeJson(c.line);
    ASSERT_FALSE(r.ok()) << c.line;
    EXPECT_EQ(r.error().reason, "invalid_event") << c.line;
    EXPECT_NE(r.error().detail.find(c.expect), std::string::npos) << "got: " << r.error().detail;
  }
}

TEST(DecodeJson, UnknownTypeIsItsOwnReason) {
  auto r = DecodeJson(R"({"event_id":"e1","type":"like","occurred_at":"2026-11-01T10:00:00+08:00"})");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().reason, "unknown_type");
  EXPECT_EQ(r.error().event_id.value_or(""), "e1");
}

TEST(DecodeJson, HostileShapesAreRejectedNotCrashed) {
  EXPECT_NE(ReasonOf(std::string(60000, '[')).find("nested deeper"), std::string::npos);
  EXPECT_NE(ReasonOf(std::string(100000, '[')).find("byte limit"), std::string::npos);
  EXPECT_NE(ReasonOf(R"({"event_id":"e1","type":"checkin","occurred_at":"2026-11-01T10:00:00+08:00","member":"m1","x":)" +
                     std::string(20, '[') + std::string(20, ']') + "}").find("nested deeper"), std::string::npos);
  EXPECT_NE(ReasonOf(R"({"event_id":"e1","type":"payment","occurred_at":"2026-11-01T10:00:00+08:00","member":"m1","order_id":"o","amount_fen":18446744073709551615})").find("must be in [1, 1000000000000], got 18446744073709551615"), std::string::npos);
  std::string big = R"({"event_id":"e1","type":"checkin","occurred_at":"2026-11-01T10:00:00+08:00","member":"m1","pad":")" +
                    std::string(kMaxEventBytes, 'x') + "\"}";
  EXPECT_NE(ReasonOf(big).find("byte limit"), std::string::npos);
  EXPECT_NE(ReasonOf(std::string("{\"event_id\":\"e\0\",", 18)).find("invalid_event"), std::string::npos);
}

TEST(ValidUtf8, KeepsWellFormedTextAndEscapesEveryOtherByte) {
  EXPECT_EQ(ValidUtf8("plain ascii"), "plain ascii");
  EXPECT_EQ(ValidUtf8("\u62fc\u56e2 \U0001F600"), "\u62fc\u56e2 \U0001F600");  // CJK and a 4-byte emoji
  EXPECT_EQ(ValidUtf8(std::string("a\xff\xfe{", 4)), "a\\xFF\\xFE{");
  EXPECT_EQ(ValidUtf8("\xC0\xAF"), "\\xC0\\xAF");          // overlong '/'
  EXPECT_EQ(ValidUtf8("\xED\xA0\x80"), "\\xED\\xA0\\x80");  // a surrogate
  EXPECT_EQ(ValidUtf8("\xE6\x8B"), "\\xE6\\x8B");          // cut short
  EXPECT_EQ(ValidUtf8("\xF4\x90\x80\x80"), "\\xF4\\x90\\x80\\x80");  // above U+10FFFF
}

TEST(DecodeJson, SameParsedContentHasSameKey) {
  auto a = DecodeJson(R"({"event_id":"e1","type":"payment","occurred_at":"2026-11-01T09:30:00+08:00","member":"m1","order_id":"o1","amount_fen":100})");
  auto b = DecodeJson(R"({ "amount_fen": 100, "order_id":"o1", "member":"m1","occurred_at":"2026-11-01T01:30:00.000Z","type":"payment","event_id":"e1","tenant":"default","commission_base_fen":100,"ignored":1})");
  auto c = DecodeJson(R"({"event_id":"e1","type":"payment","occurred_at":"2026-11-01T09:30:00+08:00","member":"m1","order_id":"o1","amount_fen":101})");
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(ContentKey(a.value()), ContentKey(b.value()));
  EXPECT_NE(ContentKey(a.value()), ContentKey(c.value()));
}

TEST(DecodeProto, ProtobufEventsPassTheSameValidation) {
  auto ok = DecodeJson(test::Pay("e1", test::At(1), "m1", "o1", 1000));
  ASSERT_TRUE(ok.ok());
  auto again = ValidateEvent(ok.value());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(ContentKey(again.value()), ContentKey(ok.value()));
  pb::Event bad = ok.value();
  bad.set_amount_fen(-5);
  EXPECT_FALSE(ValidateEvent(bad).ok());
  bad = ok.value();
  bad.clear_order_id();
  EXPECT_FALSE(ValidateEvent(bad).ok());
}


// DecodeJson reads most lines with simdjson and the rest with nlohmann
// (DecodeJsonSlowly): on every line, valid or hostile, both must give the same
// event or the same rejection. The lines: a generated stream with its hostile
// lines, each also cut, with bytes flipped, with a field repeated, escaped,
// retyped or added, and hand-picked edge cases.
TEST(DecodeJson, TheFastPathAgreesWithNlohmannOnEveryLine) {
  std::vector<std::string> lines;
  SynthOptions o;
  o.seed = 21;
  o.members = 300;
  o.days = 6;
  o.bad_fraction = 0.02;
  o.tenants = 2;
  Synthesize(o, [&](const std::string& line) { lines.push_back(line); });
  const size_t generated = lines.size();
  std::mt19937_64 rng(5);
  for (size_t i = 0; i < generated; i += 3) {
    const std::string l = lines[i];  // a copy: the pushes below move the lines
    std::string m = l;
    m[rng() % m.size()] = static_cast<char>(rng() % 256);
    lines.push_back(m);
    lines.push_back(l.substr(0, rng() % l.size()));
    if (l.size() > 2 && l.front() == '{') {
      lines.push_back("{\"type\":\"checkin\"," + l.substr(1));                 // a repeated field, maybe
      lines.push_back("{\"tenant\":\"t\\u0041\"," + l.substr(1));              // an escape
      lines.push_back("{\"amount_fen\":1.0," + l.substr(1));                   // a fraction
      lines.push_back("{\"amount_fen\":99999999999999999999," + l.substr(1));  // beyond int64
      lines.push_back("{\"x\":{\"y\":[1,2]}," + l.substr(1));                  // an unknown nested field
      lines.push_back("{\"opens\":null," + l.substr(1));
      lines.push_back(l + " ");
      lines.push_back(l + " x");
      lines.push_back(l + std::string(1, '\0') + "{\"not json");
      lines.push_back("\t" + l);
    }
  }
  for (const char* edge : {"", "{}", "[]", "null", "{\"event_id\":\"e1\"}", "{\"event_id\":\"e\\u00e9\"}",
                           "{\"event_id\":\"e1\",\"type\":\"checkin\",\"occurred_at\":\"2026-10-01T10:00:00+08:00\",\"member\":\"m1\",\"amount_fen\":-0}",
                           "{\"event_id\":\"e1\",\"type\":\"checkin\",\"occurred_at\":\"2026-10-01T10:00:00+08:00\",\"member\":\"m1\"}",
                           "{\"event_id\":\"e1\",\"type\":\"checkin\",\"occurred_at\":\"2026-10-01T10:00:00+08:00\",\"member\":\"m1\",\"member\":\"m2\"}",
                           "{\"event_id\":\"e1\",\"type\":\"checkin\",\"occurred_at\":\"2026-10-01T10:00:00+08:00\",\"member\":\"m\x01\"}",
                           "{\"event_id\":\"e1\",\"type\":\"checkin\",\"occurred_at\":\"2026-10-01T10:00:00+08:00\",\"member\":\"m1\"}}",
                           "{\"event_id\":\"e1\",\"type\":\"checkin\",\"occurred_at\":\"2026-10-01T10:00:00+08:00\",\"member\":\"\xff\"}"}) {
    lines.emplace_back(edge);
  }
  int fast_ok = 0;
  for (const std::string& line : lines) {
    auto fast = DecodeJson(line);
    auto slow = DecodeJsonSlowly(line);
    ASSERT_EQ(fast.ok(), slow.ok()) << line;
    if (fast.ok()) {
      ++fast_ok;
      EXPECT_EQ(fast.value().SerializeAsString(), slow.value().SerializeAsString()) << line;
    } else {
      EXPECT_EQ(fast.error().reason, slow.error().reason) << line;
      EXPECT_EQ(fast.error().detail, slow.error().detail) << line;
      EXPECT_EQ(fast.error().content_key, slow.error().content_key) << line;
    }
  }
  EXPECT_GT(fast_ok, static_cast<int>(generated / 2));
}

}  // namespace
}  // namespace fission
