#include "replay/statement.h"

#include <fmt/format.h>

#include <map>

#include "events/time.h"
#include "projections/history.h"
#include "projections/keys.h"
#include "projections/render.h"

namespace fission {
namespace {

struct Figures {
  int64_t balance = 0, unsettled = 0;
};

Figures Standing(const pb::Line& l) {
  Figures f;
  const int64_t net = l.amount_fen() - l.reversed_fen();
  if (l.state() == pb::SETTLED) f.balance += net;
  if (l.state() == pb::HELD || l.state() == pb::PENDING) f.unsettled += net;
  f.balance -= l.clawed_back_fen();
  return f;
}

}  // namespace

Result<Statements, std::string> ComputeStatements(Store& store, const StatementOptions& o) {
  using R = Result<Statements, std::string>;
  if (const auto* meta = store.Find<pb::ProcessorMeta>(Table::kMeta, ""); meta && meta->history_incomplete()) {
    return R::Error("this data dir was fed with --no-history at some point: statements need the full line history; "
                    "replay it into a fresh data dir (history is on by default)");
  } else if (meta && meta->applied() > 0 && !meta->history_as_changes()) {
    return R::Error("this data dir was written by an older fission, whose line history this build does not read; "
                    "rebuild it from its log: fission replay --from DIR --rules RULES --out NEW_DIR");
  }
  if (o.from_ms >= o.to_ms) return R::Error("--from must be before --to");
  std::map<std::pair<std::string, std::string>, StatementRow> rows;
  Statements out;
  std::string prefix;
  if (o.tenant) prefix.append(*o.tenant).push_back('\0');

  std::string cur_key;
  pb::Line prev, line;
  bool have_prev = false;
  Figures open_f, close_f;
  StatementRow* row = nullptr;
  auto finish_line = [&]() {
    if (!row) return;
    row->opening_balance += open_f.balance;
    row->opening_unsettled += open_f.unsettled;
    row->closing_balance += close_f.balance;
    row->closing_unsettled += close_f.unsettled;
  };
  // Each version of a line, oldest first.
  auto visit = [&](std::string_view line_key, const pb::Version& ver) {
    if (line_key != cur_key) {
      finish_line();
      cur_key.assign(line_key);
      have_prev = false;
      open_f = close_f = Figures{};
      const std::string tenant(KeyPart(line_key, 0)), dist(KeyPart(line_key, 1));
      row = &rows[{tenant, dist}];
      row->tenant = tenant;
      row->distributor = dist;
    }
    const int64_t at = ver.at_ms();
    if (!line.ParseFromString(ver.row())) throw std::runtime_error("corrupt line version");
    if (at <= o.from_ms) open_f = Standing(line);
    if (at <= o.to_ms) close_f = Standing(line);
    if (at > o.from_ms && at <= o.to_ms) {
      const std::string cause = ver.timer().empty() ? ver.cause().event_id() : "timer:" + ver.timer();
      auto move = [&](const char* what, int64_t amount, int64_t StatementRow::*field) {
        if (amount == 0) return;
        row->*field += amount;
        if (o.movements) {
          out.movements.push_back({row->tenant, row->distributor, line.order_id(), line.leader_bonus(), line.level(),
                                   at, what, amount, cause});
        }
      };
      if (!have_prev) {
        if (line.leader_bonus()) {
          move("leader_bonus", line.amount_fen(), &StatementRow::leader_bonus);
        } else {
          move("accrued", line.amount_fen(), &StatementRow::accrued);
        }
      }
      const pb::Line& p = have_prev ? prev : pb::Line::default_instance();
      move("reversed", line.reversed_fen() - p.reversed_fen(), &StatementRow::reversed);
      move("clawed_back", line.clawed_back_fen() - p.clawed_back_fen(), &StatementRow::clawed_back);
      move("waived", line.waived_fen() - p.waived_fen(), &StatementRow::waived);
      const bool was_settled = have_prev && p.state() == pb::SETTLED;
      const bool was_void = have_prev && p.state() == pb::VOID;
      if (line.state() == pb::SETTLED && !was_settled) {
        move("settled", line.amount_fen() - line.reversed_fen(), &StatementRow::settled);
      }
      if (line.state() == pb::VOID && !was_void) {
        move("voided", line.amount_fen() - line.reversed_fen(), &StatementRow::voided);
      }
    }
    prev = line;
    have_prev = true;
  };
  // The lines in key order (tenant, distributor, ...), each line's versions
  // through its chain (projections/history.h).
  const ReadChange read = [&](uint64_t seq, pb::Change* c) { return store.ReadRow(Table::kChange, ChangeKey(seq), c); };
  std::vector<pb::Version> versions;
  store.Scan(Table::kLine, prefix, [&](std::string_view k, const google::protobuf::MessageLite& msg) {
    versions.clear();
    ForEachVersion(static_cast<const pb::Line&>(msg).last_version(), read, [&](const pb::Version& v) {
      versions.push_back(v);
      return true;
    });
    for (auto it = versions.rbegin(); it != versions.rend(); ++it) visit(k, *it);
    return true;
  });
  finish_line();
  for (auto& [key, r] : rows) {
    if (r.closing_balance != r.opening_balance + r.settled - r.clawed_back ||
        r.closing_unsettled != r.opening_unsettled + r.accrued + r.leader_bonus - r.reversed - r.settled - r.voided) {
      return R::Error(fmt::format("the statement of {}/{} does not reconcile (opening {} + settled {} - clawed back {} "
                                  "!= closing {}): the line history is inconsistent",
                                  r.tenant, r.distributor, r.opening_balance, r.settled, r.clawed_back,
                                  r.closing_balance));
    }
    const bool any = r.opening_balance || r.opening_unsettled || r.accrued || r.leader_bonus || r.reversed ||
                     r.clawed_back || r.waived || r.settled || r.voided || r.closing_balance || r.closing_unsettled;
    if (any) out.rows.push_back(r);
  }
  return out;
}

void WriteStatementsCsv(const Statements& s, bool movements, std::ostream& out) {
  if (movements) {
    out << "tenant,distributor,order_id,kind,level,at,movement,amount_fen,cause\n";
    for (const auto& m : s.movements) {
      out << fmt::format("{},{},{},{},{},{},{},{},{}\n", m.tenant, m.distributor, m.order_id,
                         m.leader_bonus ? "leader_bonus" : "commission", m.level, FormatRfc3339(Millis(m.at_ms)),
                         m.what, m.amount, m.cause);
    }
    return;
  }
  out << "tenant,distributor,opening_balance_fen,accrued_fen,leader_bonus_fen,reversed_fen,clawed_back_fen,"
         "waived_fen,settled_fen,voided_fen,closing_balance_fen,opening_unsettled_fen,closing_unsettled_fen\n";
  for (const auto& r : s.rows) {
    out << fmt::format("{},{},{},{},{},{},{},{},{},{},{},{},{}\n", r.tenant, r.distributor, r.opening_balance,
                       r.accrued, r.leader_bonus, r.reversed, r.clawed_back, r.waived, r.settled, r.voided,
                       r.closing_balance, r.opening_unsettled, r.closing_unsettled);
  }
}

void WriteStatementsJson(const Statements& s, bool movements, std::ostream& out) {
  Json rows = Json::array();
  for (const auto& r : s.rows) {
    rows.push_back({{"tenant", r.tenant}, {"distributor", r.distributor}, {"opening_balance_fen", r.opening_balance},
                    {"accrued_fen", r.accrued}, {"leader_bonus_fen", r.leader_bonus}, {"reversed_fen", r.reversed},
                    {"clawed_back_fen", r.clawed_back}, {"waived_fen", r.waived}, {"settled_fen", r.settled},
                    {"voided_fen", r.voided}, {"closing_balance_fen", r.closing_balance},
                    {"opening_unsettled_fen", r.opening_unsettled}, {"closing_unsettled_fen", r.closing_unsettled}});
  }
  Json j = {{"statements", std::move(rows)}};
  if (movements) {
    Json ms = Json::array();
    for (const auto& m : s.movements) {
      ms.push_back({{"tenant", m.tenant}, {"distributor", m.distributor}, {"order_id", m.order_id},
                    {"kind", m.leader_bonus ? "leader_bonus" : "commission"}, {"level", m.level},
                    {"at", FormatRfc3339(Millis(m.at_ms))}, {"movement", m.what}, {"amount_fen", m.amount},
                    {"cause", m.cause}});
    }
    j["movements"] = std::move(ms);
  }
  out << Dump(j, 2) << "\n";
}

}  // namespace fission
