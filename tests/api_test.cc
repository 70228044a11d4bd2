// The auditors' HTTP API against `fission export`: a server on a loopback
// port over a data dir built from a generated two-tenant stream, every
// endpoint checked for the same numbers, as-of checked against ingests cut at
// those instants, and the error, auth and tenant-isolation cases.
#include <gtest/gtest.h>
#include <thread>
#include <future>
#include <atomic>
#include <httplib.h>

#include <algorithm>
#include <map>
#include <set>
#include <sstream>

#include "engine/engine.h"
#include "engine/query.h"
#include "engine/server.h"
#include "events/time.h"
#include "replay/synth.h"
#include "tests/scenario.h"
#include "tests/test_util.h"

using namespace std::string_literals;

namespace fission::test {
namespace {

constexpr char kAuditor[] = "auditor-everything-0001";
constexpr char kShop0Auditor[] = "auditor-shop-00-only-01";
constexpr char kShop0Support[] = "support-shop-00-only-01";

using Export = std::map<std::pair<std::string, std::string>, Json>;  // (kind, tenant/id) -> object

Export ParseExport(const std::string& text) {
  Export out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) {
    Json j = Json::parse(l);
    const std::string kind = j["kind"];
    std::string id = j["id"].is_null() ? "" : j["id"].get<std::string>();
    if (kind == "rejection") id += "@" + j["source"].get<std::string>() + ":" + std::to_string(j["position"].get<int64_t>());
    std::pair<std::string, std::string> key{kind, j["tenant"].get<std::string>() + "/" + id};
    out[key] = std::move(j);  // (basic_json::operator= takes its argument by value)
  }
  return out;
}

// `api` reduced to the shape of `like` (the export's object): the extra audit
// fields dropped, so the two compare equal exactly when the numbers agree.
Json Project(const Json& api, const Json& like) {
  if (like.is_object() && api.is_object()) {
    Json out = Json::object();
    for (auto it = like.begin(); it != like.end(); ++it) {
      out[it.key()] = api.contains(it.key()) ? Project(api[it.key()], it.value()) : Json("<missing>");
    }
    return out;
  }
  if (like.is_array() && api.is_array() && like.size() == api.size()) {
    Json out = Json::array();
    for (size_t i = 0; i < like.size(); ++i) out.push_back(Project(api[i], like[i]));
    return out;
  }
  return api;
}

struct Reply {
  int status = 0;
  Json body;
};

class ApiTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    SynthOptions o;
    o.seed = 7;
    o.members = 700;
    o.days = 14;
    o.tenants = 2;
    o.bad_fraction = 0.01;
    o.duplicate_fraction = 0.01;
    o.very_late_fraction = 0;  // an ingest cut at T then sees exactly the events the full one applied by T
    Synthesize(o, [&](const std::string& l) { events_ += l + "\n"; });
    rules_ = new RuleBook(MustParseRules(SynthRulesJson(o)));
    dir_ = new TempDir();
    engine_ = Ingest(dir_->str(), events_, true).release();
    std::ostringstream out;
    ExportAll(engine_->db(), out);
    export_ = ParseExport(out.str());
    metrics_ = new Metrics();
    query_ = new QueryService(engine_->db(), rules_);
    server_ = new ApiServer(*query_, *metrics_,
                            {{kAuditor, {"*", "auditor"}},
                             {kShop0Auditor, {"shop-00", "auditor"}},
                             {kShop0Support, {"shop-00", "support"}}});
    ServerOptions so;
    so.port = 0;
    auto err = server_->Bind(so);
    ASSERT_FALSE(err) << *err;
    server_->Start();
  }

  static void TearDownTestSuite() {
    delete server_;
    delete query_;
    delete metrics_;
    delete engine_;
    delete dir_;
    delete rules_;
  }

  static std::unique_ptr<Engine> Ingest(const std::string& dir, const std::string& events, bool history) {
    EngineOptions opt;
    opt.db.sync_commits = false;
    opt.processor.history = history;
    // The API reads the writer's own database, as in `fission run --listen`.
    opt.db.audit_vector_memtable = false;
    auto e = Engine::Open(dir, *rules_, opt);
    EXPECT_TRUE(e.ok());
    std::istringstream in(events);
    EXPECT_FALSE(e.value()->IngestJsonLines(in, "stream.jsonl").has_value());
    EXPECT_FALSE(e.value()->Finish().has_value());
    return std::move(e).value();
  }

  static Reply Get(const std::string& path, const char* token = kAuditor, int port = 0) {
    httplib::Client c("127.0.0.1", port ? port : server_->port());
    httplib::Headers h;
    if (token) h.emplace("Authorization", std::string("Bearer ") + token);
    auto res = c.Get(path, h);
    Reply r;
    if (!res) {
      ADD_FAILURE() << "no answer for " << path;
      return r;
    }
    r.status = res->status;
    r.body = Json::parse(res->body, nullptr, false);
    return r;
  }

  static std::vector<const Json*> OfKind(const std::string& kind) {
    std::vector<const Json*> v;
    for (const auto& [k, j] : export_) {
      if (k.first == kind) v.push_back(&j);
    }
    return v;
  }

  // Every line of a distributor, walking the pages.
  static Json AllLines(const std::string& base, int limit, Json* head) {
    Json lines = Json::array();
    std::string after;
    for (int pages = 0; pages < 10000; ++pages) {
      std::string sep = base.find('?') == std::string::npos ? "?" : "&";
      Reply r = Get(base + sep + "limit=" + std::to_string(limit) + (after.empty() ? "" : "&after=" + after));
      EXPECT_EQ(r.status, 200) << base << " " << r.body.dump();
      if (r.status != 200) break;
      EXPECT_LE(r.body["lines"].size(), static_cast<size_t>(limit));
      for (auto& l : r.body["lines"]) lines.push_back(l);
      *head = r.body;
      if (r.body["lines_next"].is_null()) break;
      after = r.body["lines_next"];
    }
    (*head)["lines"] = lines;
    return lines;
  }

  static std::string events_;
  static RuleBook* rules_;
  static TempDir* dir_;
  static Engine* engine_;
  static Export export_;
  static Metrics* metrics_;
  static QueryService* query_;
  static ApiServer* server_;
};

std::string ApiTest::events_;
RuleBook* ApiTest::rules_;
TempDir* ApiTest::dir_;
Engine* ApiTest::engine_;
Export ApiTest::export_;
Metrics* ApiTest::metrics_;
QueryService* ApiTest::query_;
ApiServer* ApiTest::server_;

std::string Path(const Json& j, const std::string& what) {
  return "/v1/" + j["tenant"].get<std::string>() + "/" + what + "/" + j["id"].get<std::string>();
}

TEST_F(ApiTest, EveryDistributorMatchesTheExportPageByPage) {
  const auto ds = OfKind("distributor");
  ASSERT_GT(ds.size(), 50u);
  for (const Json* d : ds) {
    Json head;
    AllLines(Path(*d, "distributors"), 7, &head);
    ASSERT_EQ(Project(head, *d), *d) << Path(*d, "distributors");
  }
}

TEST_F(ApiTest, GroupsMembersAndOrdersMatchTheExport) {
  for (const auto& [kind, route] : {std::pair{"group", "groups"}, {"member", "members"}, {"order", "orders"}}) {
    const auto all = OfKind(kind);
    ASSERT_GT(all.size(), 20u) << kind;
    for (const Json* j : all) {
      Reply r = Get(Path(*j, route));
      ASSERT_EQ(r.status, 200) << Path(*j, route);
      ASSERT_EQ(Project(r.body, *j), *j) << Path(*j, route);
    }
  }
}

TEST_F(ApiTest, AnOrderListsItsLinesAcrossEveryBeneficiary) {
  // The export's lines of each order, gathered from every distributor.
  std::map<std::string, std::multiset<std::string>> by_order;  // tenant/order -> "distributor level kind amount"
  for (const Json* d : OfKind("distributor")) {
    for (const auto& l : (*d)["lines"]) {
      by_order[(*d)["tenant"].get<std::string>() + "/" + l["order_id"].get<std::string>()].insert(
          fmt::format("{} {} {} {}", (*d)["id"].get<std::string>(), l["level"].get<int>(), l["kind"].get<std::string>(),
                      l["amount_fen"].get<int64_t>()));
    }
  }
  int with_lines = 0;
  for (const Json* o : OfKind("order")) {
    Reply r = Get(Path(*o, "orders"));
    ASSERT_EQ(r.status, 200);
    std::multiset<std::string> got;
    for (const auto& l : r.body["lines"]) {
      got.insert(fmt::format("{} {} {} {}", l["distributor"].get<std::string>(), l["level"].get<int>(),
                             l["kind"].get<std::string>(), l["amount_fen"].get<int64_t>()));
    }
    const std::string key = (*o)["tenant"].get<std::string>() + "/" + (*o)["id"].get<std::string>();
    ASSERT_EQ(got, by_order[key]) << key;
    with_lines += !got.empty();
  }
  EXPECT_GT(with_lines, 100);
}

TEST_F(ApiTest, TheLeaderboardIsTheExportSortedByTheChosenTotal) {
  for (const std::string sort : {"settled_fen", "balance_fen", "shares"}) {
    for (const std::string tenant : {"shop-00", "shop-01"}) {
      std::vector<std::pair<int64_t, std::string>> want;
      for (const Json* d : OfKind("distributor")) {
        if ((*d)["tenant"] != tenant) continue;
        want.emplace_back(-(*d)[sort].get<int64_t>(), (*d)["id"].get<std::string>());
      }
      std::sort(want.begin(), want.end());
      want.resize(std::min<size_t>(want.size(), 25));
      Reply r = Get("/v1/" + tenant + "/distributors?sort=" + sort + "&limit=25");
      ASSERT_EQ(r.status, 200);
      std::vector<std::pair<int64_t, std::string>> got;
      for (const auto& d : r.body["distributors"]) got.emplace_back(-d[sort].get<int64_t>(), d["id"].get<std::string>());
      EXPECT_EQ(got, want) << sort << " " << tenant;
    }
  }
}

TEST_F(ApiTest, RejectionsPageThroughTheExportsRejections) {
  for (const std::string tenant : {"shop-00", "shop-01"}) {
    std::vector<std::string> want, want_late;
    for (const Json* j : OfKind("rejection")) {
      if ((*j)["tenant"] != tenant) continue;
      const std::string s = fmt::format("{} {} {}", (*j)["reason"].get<std::string>(), (*j)["source"].get<std::string>(),
                                        (*j)["position"].get<int64_t>());
      want.push_back(s);
      if ((*j)["reason"] == "conflicting_duplicate") want_late.push_back(s);
    }
    ASSERT_GT(want.size(), 10u);
    for (const std::string reason : {"", "conflicting_duplicate"}) {
      std::vector<std::string> got;
      std::string after;
      for (int pages = 0; pages < 1000; ++pages) {
        Reply r = Get("/v1/" + tenant + "/rejections?limit=13" + (reason.empty() ? "" : "&reason=" + reason) +
                      (after.empty() ? "" : "&after=" + after));
        ASSERT_EQ(r.status, 200);
        ASSERT_LE(r.body["rejections"].size(), 13u);
        for (const auto& j : r.body["rejections"]) {
          got.push_back(fmt::format("{} {} {}", j["reason"].get<std::string>(), j["source"].get<std::string>(),
                                    j["position"].get<int64_t>()));
        }
        if (r.body["next"].is_null()) break;
        after = r.body["next"];
      }
      EXPECT_EQ(got, reason.empty() ? want : want_late) << tenant << " " << reason;
    }
  }
}

TEST_F(ApiTest, EveryLineAndTierChangeLeadsBackToItsInputLine) {
  std::vector<std::string> input;
  std::istringstream in(events_);
  for (std::string l; std::getline(in, l);) input.push_back(l);
  auto check = [&](const std::string& tenant, const std::string& event_id, const std::string& source, int64_t pos) {
    ASSERT_EQ(source, "stream.jsonl");
    ASSERT_GE(pos, 1);
    ASSERT_LE(pos, static_cast<int64_t>(input.size()));
    EXPECT_NE(input[static_cast<size_t>(pos - 1)].find("\"event_id\":\"" + event_id + "\""), std::string::npos);
    Reply r = Get("/v1/" + tenant + "/events/" + event_id);
    ASSERT_EQ(r.status, 200) << event_id;
    EXPECT_EQ(r.body["position"], pos);
    EXPECT_EQ(r.body["event"]["event_id"], event_id);
    // The stored event is the input line, parsed: every field the line has agrees.
    Json line = Json::parse(input[static_cast<size_t>(pos - 1)]);
    for (const char* f : {"type", "member", "order_id", "amount_fen", "group_id", "sharer"}) {
      if (line.contains(f)) {
        EXPECT_EQ(r.body["event"][f], line[f]) << event_id << " " << f;
      }
    }
  };
  int lines = 0, changes = 0;
  for (const Json* d : OfKind("distributor")) {
    if (lines > 300) break;
    Reply r = Get(Path(*d, "distributors") + "?limit=1000");
    for (const auto& l : r.body["lines"]) {
      if (l["event_id"].is_null()) continue;  // a leader bonus made by an expiry timer
      check((*d)["tenant"], l["event_id"], l["source"], l["position"]);
      ++lines;
    }
  }
  for (const Json* m : OfKind("member")) {
    if (changes > 200) break;
    Reply r = Get(Path(*m, "members"));
    for (const auto& h : r.body["tier_history"]) {
      check((*m)["tenant"], h["event_id"], h["source"], h["position"]);
      ++changes;
    }
  }
  EXPECT_GT(lines, 300);
  EXPECT_GT(changes, 200);
}

TEST_F(ApiTest, AsOfMatchesAnIngestCutAtThatInstant) {
  // Valid events' times, to choose instants that are event times (a cut
  // ingest fires the timers due by its last event, as the full one had by then).
  std::vector<std::pair<int64_t, std::string>> timed;  // (occurred_at, line)
  std::istringstream in(events_);
  for (std::string l; std::getline(in, l);) {
    Json j = Json::parse(l, nullptr, false);
    if (j.is_discarded() || !j.contains("occurred_at") || !j["occurred_at"].is_string()) continue;
    auto t = ParseRfc3339(j["occurred_at"].get<std::string>());
    if (t) timed.emplace_back(t->v, l);
  }
  std::vector<int64_t> times;
  for (auto& [t, l] : timed) times.push_back(t);
  std::sort(times.begin(), times.end());
  for (double q : {0.3, 0.6, 0.9}) {
    const int64_t at = times[static_cast<size_t>(q * static_cast<double>(times.size()))];
    const std::string as_of = FormatRfc3339(Millis(at));
    std::string cut;
    for (auto& [t, l] : timed) {
      if (t <= at) cut += l + "\n";
    }
    TempDir cut_dir;
    std::string cut_export;
    {
      auto e = Ingest(cut_dir.str(), cut, true);
      std::ostringstream out;
      ExportAll(e->db(), out);
      cut_export = out.str();
    }
    const Export then = ParseExport(cut_export);
    int compared = 0;
    for (const auto& [key, j] : then) {
      const std::string kind = key.first;
      std::string route = kind == "distributor" ? "distributors" : kind == "group" ? "groups" : kind == "member" ? "members" : "";
      if (route.empty()) continue;
      Json got;
      if (kind == "distributor") {
        AllLines(Path(j, route) + "?as_of=" + as_of, 5, &got);
      } else {
        Reply r = Get(Path(j, route) + "?as_of=" + as_of);
        ASSERT_EQ(r.status, 200) << Path(j, route) << " " << as_of;
        got = r.body;
      }
      ASSERT_EQ(Project(got, j), j) << Path(j, route) << " as of " << as_of;
      ++compared;
    }
    EXPECT_GT(compared, 200);
    // What came later did not exist yet.
    int absent = 0;
    for (const auto& [key, j] : export_) {
      if (absent >= 40 || then.count(key) || (key.first != "group" && key.first != "member")) continue;
      Reply r = Get(Path(j, key.first == "group" ? "groups" : "members") + "?as_of=" + as_of);
      EXPECT_EQ(r.status, 404) << key.second << " as of " << as_of;
      ++absent;
    }
    if (q < 0.9) {
      EXPECT_GT(absent, 0);
    }
  }
}

TEST_F(ApiTest, ErrorsAreJsonWithAStatusAndACode) {
  const Json* m = OfKind("member").front();
  const std::string member = Path(*m, "members");
  struct Case {
    std::string path;
    const char* token;
    int status;
    std::string code;
  } cases[] = {
      {member, nullptr, 401, "unauthorized"},
      {member, "not-a-token-at-all-xx", 401, "unauthorized"},
      {"/v1/shop-01/members/m000001", kShop0Auditor, 403, "forbidden"},
      {"/v1/shop-00/audit/checks", kShop0Support, 403, "forbidden"},
      {"/v1/shop-00/events/e-x", kShop0Support, 403, "forbidden"},
      {"/v1/shop-00/members/nobody-here", kAuditor, 404, "not_found"},
      {"/v1/shop-00/orders/o-none", kAuditor, 404, "not_found"},
      {"/v1/shop-00/distributors/nobody-here", kAuditor, 404, "not_found"},
      {"/v1/shop-00/groups/g-none", kAuditor, 404, "not_found"},
      {"/v1/shop-00/events/e-none", kAuditor, 404, "not_found"},
      {"/v1/shop-00/nonsense/1", kAuditor, 404, "no_route"},
      {"/v2/whatever", kAuditor, 404, "no_route"},
      {member + "?as_of=yesterday", kAuditor, 400, "bad_parameter"},
      {member + "?as_of=2026-10-05T10:00:00", kAuditor, 400, "bad_parameter"},  // no offset
      {"/v1/shop-00/rejections?limit=0", kAuditor, 400, "bad_parameter"},
      {"/v1/shop-00/rejections?limit=1001", kAuditor, 400, "bad_parameter"},
      {"/v1/shop-00/rejections?limit=ten", kAuditor, 400, "bad_parameter"},
      {"/v1/shop-00/rejections?after=zz", kAuditor, 400, "bad_parameter"},
      {"/v1/shop-00/distributors?sort=height", kAuditor, 400, "bad_parameter"},
      {"/v1/shop-00/members/bad%20id", kAuditor, 400, "bad_parameter"},
      {"/v1/shop-00/orders/o1?as_of=2026-10-05T10:00:00Z", kAuditor, 400, "bad_parameter"},
  };
  // "+08:00" sent unencoded reads as a space after form decoding: still understood.
  EXPECT_EQ(Get(member + "?as_of=2026-12-31T10:00:00+08:00").status, 200);
  EXPECT_EQ(Get(member + "?as_of=2026-12-31T10:00:00%2B08:00").status, 200);
  for (const auto& c : cases) {
    Reply r = Get(c.path, c.token);
    EXPECT_EQ(r.status, c.status) << c.path;
    ASSERT_TRUE(r.body.is_object()) << c.path;
    EXPECT_EQ(r.body["error"]["code"], c.code) << c.path;
    EXPECT_FALSE(r.body["error"]["message"].get<std::string>().empty()) << c.path;
  }
  // Writes are refused; health and metrics need no token.
  httplib::Client c("127.0.0.1", server_->port());
  auto post = c.Post(member, "{}", "application/json");
  ASSERT_TRUE(post);
  EXPECT_EQ(post->status, 405);
  EXPECT_EQ(Get("/healthz", nullptr).status, 200);
  auto metrics = c.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_EQ(metrics->status, 200);
}

TEST_F(ApiTest, ATokenForOneTenantNeverSeesAnother) {
  // The same member id exists in both shops, with different records.
  Reply own = Get("/v1/shop-00/members/m000010", kShop0Auditor);
  Reply other_as_all = Get("/v1/shop-01/members/m000010", kAuditor);
  ASSERT_EQ(own.status, 200);
  ASSERT_EQ(other_as_all.status, 200);
  EXPECT_NE(own.body, other_as_all.body);
  for (const std::string path : {"/v1/shop-01/members/m000010", "/v1/shop-01/rejections", "/v1/shop-01/distributors",
                                 "/v1/shop-01/audit/checks", "/v1/shop-01/members/nobody-at-all"}) {
    Reply r = Get(path, kShop0Auditor);
    EXPECT_EQ(r.status, 403) << path;  // never 404: not even existence is revealed
  }
  Reply rej = Get("/v1/shop-00/rejections?limit=1000", kShop0Support);
  ASSERT_EQ(rej.status, 200);
  ASSERT_FALSE(rej.body["rejections"].empty());
  for (const auto& j : rej.body["rejections"]) EXPECT_EQ(j["tenant"], "shop-00");
}

TEST_F(ApiTest, LedgerChecksPassOnTheFoldAndCatchATamperedRow) {
  for (const std::string tenant : {"shop-00", "shop-01"}) {
    Reply r = Get("/v1/" + tenant + "/audit/checks");
    ASSERT_EQ(r.status, 200);
    EXPECT_TRUE(r.body["ok"].get<bool>()) << r.body.dump(2);
    EXPECT_GT(r.body["orders_checked"].get<int64_t>(), 100);
    EXPECT_GT(r.body["rates_checked"].get<int64_t>(), 100);
  }
  // A copy whose rows are then altered behind the fold's back.
  TempDir dir;
  auto e = Ingest(dir.str(), events_, true);
  std::string dist_id;
  pb::Line line;
  std::string line_key;
  e->db().Scan(Table::kLine, "shop-00\0"s, [&](std::string_view k, const google::protobuf::MessageLite& row) {
    const auto& l = static_cast<const pb::Line&>(row);
    if (l.leader_bonus() || l.amount_fen() < 10) return true;
    line = l;
    line_key = std::string(k);
    return false;
  });
  ASSERT_FALSE(line_key.empty());
  const std::string dkey = EntityKey("shop-00", line.distributor());
  pb::Distributor d = *e->db().Find<pb::Distributor>(Table::kDistributor, dkey);
  d.set_waived_fen(d.waived_fen() + 1);
  e->db().Put(Table::kDistributor, dkey, d.SerializeAsString());
  line.set_amount_fen(line.amount_fen() + 100);
  e->db().Put(Table::kLine, line_key, line.SerializeAsString());
  ASSERT_FALSE(e->db().Commit());
  ASSERT_FALSE(e->db().Drain());  // written, not only handed to the writer
  QueryService q(e->db(), rules_);
  auto checks = q.AuditChecks("shop-00");
  ASSERT_TRUE(checks.ok());
  const Json& j = checks.value();
  EXPECT_FALSE(j["ok"].get<bool>());
  std::set<std::string> found;
  for (const auto& diff : j["differences"]) {
    found.insert(diff["check"].get<std::string>() + ":" + diff.value("field", std::string()) + ":" +
                 diff.value("distributor", std::string()));
  }
  EXPECT_TRUE(found.count("distributor_totals:waived_fen:" + line.distributor())) << j.dump(2);
  // The line's amount no longer matches the formula, nor its distributor's totals.
  EXPECT_TRUE(found.count("order_lines:amount_fen:" + line.distributor())) << j.dump(2);
  EXPECT_GE(j["differences_total"].get<int64_t>(), 3);
  auto other = q.AuditChecks("shop-01");
  ASSERT_TRUE(other.ok());
  EXPECT_TRUE(other.value()["ok"].get<bool>());
}

// `fission serve` reads a data dir as a RocksDB secondary, which refuses
// reads under a snapshot: every request answered 500 until a follower read
// without one.
TEST_F(ApiTest, AFollowerOfTheDataDirAnswersAsTheWriterDoes) {
  TempDir scratch;
  auto follower = StateDb::OpenFollower(dir_->str(), scratch.str());
  ASSERT_TRUE(follower.ok()) << follower.error().message;
  ASSERT_FALSE(follower.value()->CatchUp().has_value());
  QueryService q(*follower.value(), rules_);
  for (const char* id : {"m000010", "m000123"}) {
    auto mine = q.Member("shop-00", id, std::nullopt);
    auto writers = query_->Member("shop-00", id, std::nullopt);
    ASSERT_EQ(mine.ok(), writers.ok()) << id;
    if (mine.ok()) {
      EXPECT_EQ(mine.value().dump(), writers.value().dump());
    } else {
      EXPECT_EQ(mine.error().status, 404) << mine.error().message;
    }
  }
  auto board = q.Leaderboard("shop-00", "settled_fen", 5);  // a scan
  ASSERT_TRUE(board.ok()) << board.error().message;
  EXPECT_EQ(board.value().dump(), query_->Leaderboard("shop-00", "settled_fen", 5).value().dump());
}

// A request reads under the view lock for its whole length; a follower's
// catch-up takes it exclusively between requests. Requests that keep
// overlapping must not hold the catch-up off (the lock lets a waiting writer
// in first): otherwise `serve` would fall behind the writer for as long as
// the traffic lasts.
TEST_F(ApiTest, ASteadyStreamOfRequestsDoesNotHoldOffTheCatchUp) {
  std::atomic<bool> stop{false};
  std::atomic<int64_t> answered{0};
  std::vector<std::thread> clients;
  for (int i = 0; i < 4; ++i) {
    clients.emplace_back([&] {
      while (!stop.load()) {
        if (query_->Member("shop-00", "m000010", std::nullopt).ok()) ++answered;
      }
    });
  }
  while (answered.load() < 100) std::this_thread::yield();
  auto catch_ups = std::async(std::launch::async, [&] {
    for (int i = 0; i < 50; ++i) query_->Exclusive([] {});
  });
  const bool done = catch_ups.wait_for(std::chrono::seconds(10)) == std::future_status::ready;
  stop = true;
  for (auto& c : clients) c.join();
  catch_ups.wait();
  EXPECT_TRUE(done) << "50 catch-ups did not get in within 10 s of steady requests (they take well under one)";
  EXPECT_GT(answered.load(), 100);
}

TEST_F(ApiTest, AsOfIsRefusedWhenHistoryWasNotKept) {
  TempDir dir;
  auto e = Ingest(dir.str(), events_, false);
  QueryService q(e->db(), rules_);
  auto now = q.Member("shop-00", "m000010", std::nullopt);
  ASSERT_TRUE(now.ok());
  auto then = q.Member("shop-00", "m000010", Millis(1'791'000'000'000).v);
  ASSERT_FALSE(then.ok());
  EXPECT_EQ(then.error().status, 409);
  EXPECT_EQ(then.error().code, "history_incomplete");
}

TEST_F(ApiTest, MetricsCountRequestsByRouteAndStatus) {
  Get("/v1/shop-00/members/m000010");
  Get("/v1/shop-00/members/nobody-here");
  httplib::Client c("127.0.0.1", server_->port());
  auto res = c.Get("/metrics");
  ASSERT_TRUE(res);
  const std::string& text = res->body;
  EXPECT_NE(text.find(R"(fission_http_requests_total{route="/v1/{tenant}/members/{id}",status="200"})"), std::string::npos);
  EXPECT_NE(text.find(R"(fission_http_requests_total{route="/v1/{tenant}/members/{id}",status="404"})"), std::string::npos);
  EXPECT_NE(text.find("fission_http_request_seconds_bucket"), std::string::npos);
}

}  // namespace
}  // namespace fission::test
