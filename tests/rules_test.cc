// The rules file: what is refused at start-up, and which version governs.
#include <gtest/gtest.h>

#include "tests/scenario.h"

namespace fission {
namespace {

using nlohmann::json;

std::string RefusalOf(const std::function<void(json&)>& edit) {
  auto r = ParseRules(test::RulesJson(edit));
  return r.ok() ? "accepted" : r.error().message;
}

TEST(Rules, TheSpecExampleIsAccepted) { EXPECT_EQ(RefusalOf(nullptr), "accepted"); }

TEST(Rules, MoreThanThreeLevelsIsRefusedNamingTheField) {
  auto m = RefusalOf([](json& v) { v["commission"]["levels_bps"] = {500, 400, 300, 200}; });
  EXPECT_NE(m.find("tenants.default[0].commission.levels_bps"), std::string::npos) << m;
  EXPECT_NE(m.find("at most 3"), std::string::npos) << m;
}

TEST(Rules, RateSumWithLargestTierBonusAbove5000IsRefused) {
  // (2000+200) + (2000+200) + (400+200) = 5000: allowed.
  EXPECT_EQ(RefusalOf([](json& v) { v["commission"]["levels_bps"] = {2000, 2000, 400}; }), "accepted");
  auto m = RefusalOf([](json& v) { v["commission"]["levels_bps"] = {2000, 2000, 401}; });
  EXPECT_NE(m.find("5001"), std::string::npos) << m;
}

TEST(Rules, TierLevelsMustStartAtZeroAndIncrease) {
  auto m = RefusalOf([](json& v) { v["tiers"]["levels"][0]["min_growth"] = 10; });
  EXPECT_NE(m.find("tiers.levels[0].min_growth"), std::string::npos) << m;
  m = RefusalOf([](json& v) { v["tiers"]["levels"][2]["min_growth"] = 1000; });
  EXPECT_NE(m.find("tiers.levels[2].min_growth: levels must be strictly increasing"), std::string::npos) << m;
}

TEST(Rules, UnknownEnumValueIsRefused) {
  auto m = RefusalOf([](json& v) { v["commission"]["binding"] = "last_touch"; });
  EXPECT_NE(m.find("commission.binding: unknown value \"last_touch\""), std::string::npos) << m;
  m = RefusalOf([](json& v) { v["commission"]["refund_after_settlement"] = "forgive"; });
  EXPECT_NE(m.find("refund_after_settlement"), std::string::npos) << m;
  m = RefusalOf([](json& v) { v["checkin"]["after_last_day"] = 3; });
  EXPECT_NE(m.find("checkin.after_last_day"), std::string::npos) << m;
}

TEST(Rules, UnknownFieldIsRefusedRatherThanDefaulted) {
  auto m = RefusalOf([](json& v) { v["commission"]["freeze_dayz"] = 3; });
  EXPECT_NE(m.find("commission.freeze_dayz: unknown field"), std::string::npos) << m;
}

TEST(Rules, TierBonusMustNameAKnownTier) {
  auto m = RefusalOf([](json& v) { v["commission"]["tier_bonus_bps"] = {{"platinum", 100}}; });
  EXPECT_NE(m.find("tier_bonus_bps.platinum"), std::string::npos) << m;
}

TEST(Rules, VersionsOutOfOrderAreRefused) {
  json a = test::BaseRulesVersion(), b = test::BaseRulesVersion();
  b["version"] = "v2";
  b["effective_from"] = "2025-06-01T00:00:00+08:00";
  json doc;
  doc["tenants"]["default"] = {a, b};
  auto r = ParseRules(doc.dump());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("tenants.default[1].effective_from"), std::string::npos) << r.error().message;
}

TEST(Rules, MissingDefaultTenantIsRefused) {
  json doc;
  doc["tenants"]["shop"] = {test::BaseRulesVersion()};
  auto r = ParseRules(doc.dump());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("tenants.default"), std::string::npos);
}

TEST(Rules, EventUsesLastVersionInEffectAndFirstBeforeAny) {
  json a = test::BaseRulesVersion(), b = test::BaseRulesVersion(), s = test::BaseRulesVersion();
  b["version"] = "v2";
  b["effective_from"] = "2026-11-10T00:00:00+08:00";
  s["version"] = "shop-1";
  json doc;
  doc["tenants"]["default"] = {a, b};
  doc["tenants"]["shop"] = {s};
  RuleBook book = test::MustParseRules(doc.dump());
  EXPECT_EQ(book.For("default", Millis(test::Ms("2025-01-01T00:00:00Z"))).version, "v1");
  EXPECT_EQ(book.For("default", Millis(test::Ms("2026-11-09T23:59:59.999+08:00"))).version, "v1");
  EXPECT_EQ(book.For("default", Millis(test::Ms("2026-11-10T00:00:00+08:00"))).version, "v2");
  EXPECT_EQ(book.For("other", Millis(test::Ms("2026-12-01T00:00:00Z"))).version, "v2");
  EXPECT_EQ(book.For("shop", Millis(test::Ms("2026-12-01T00:00:00Z"))).version, "shop-1");
}

}  // namespace
}  // namespace fission

namespace fission {
namespace {

TEST(Rules, TheShippedExampleFileLoads) {
  auto r = LoadRulesFile(std::string(FISSION_SOURCE_DIR) + "/schemas/rules.example.json");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r.value().tenants.at("default").size(), 2u);
}

}  // namespace
}  // namespace fission
