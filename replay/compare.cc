#include "replay/compare.h"

#include <fmt/format.h>
#include <xxhash.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>

#include "projections/export.h"

namespace fission {
namespace {

constexpr const char* kKinds[] = {"distributor", "group", "member", "order", "rejection"};
constexpr const char* kMoneyFields[] = {"held_fen", "pending_fen", "settled_fen", "reversed_fen", "voided_fen",
                                        "clawed_back_fen", "waived_fen", "balance_fen"};

struct Keyed {
  int kind;
  std::string key, line;
};

// ExportKeyed of one store, produced on its own thread and consumed in
// order: a bounded queue, so two exports can be walked side by side.
class ExportStream {
 public:
  explicit ExportStream(Store& s) {
    thread_ = std::thread([this, &s] {
      ExportKeyed(s, [&](int kind, std::string_view key, const std::string& line) {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return q_.size() < 1024 || stop_; });
        if (stop_) return;
        q_.push_back({kind, std::string(key), line});
        cv_.notify_all();
      });
      std::lock_guard lock(mu_);
      done_ = true;
      cv_.notify_all();
    });
  }
  ~ExportStream() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
      cv_.notify_all();
    }
    thread_.join();
  }
  // The next keyed line, or nullptr at the end. Valid until the next call.
  const Keyed* Peek() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return !q_.empty() || done_; });
    if (q_.empty()) return nullptr;
    cur_ = q_.front();
    return &cur_;
  }
  void Pop() {
    std::lock_guard lock(mu_);
    q_.pop_front();
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Keyed> q_;
  Keyed cur_;
  bool done_ = false, stop_ = false;
  std::thread thread_;
};

std::string Show(const Json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

// Field differences of two records of one kind.
Json FieldDiffs(const std::string& kind, const Json& a, const Json& b) {
  Json fields = Json::object();
  for (auto it = a.begin(); it != a.end(); ++it) {
    if (it.key() == "lines" && kind == "distributor") continue;
    const Json& bv = b.contains(it.key()) ? b[it.key()] : Json(nullptr);
    if (it.value() != bv) {
      Json d = {{"a", it.value()}, {"b", bv}};
      if (it.value().is_number_integer() && bv.is_number_integer()) d["delta"] = bv.get<int64_t>() - it.value().get<int64_t>();
      fields[it.key()] = std::move(d);
    }
  }
  if (kind == "distributor") {
    // Lines by (order_id, kind, level): the same order in both lists.
    auto key = [](const Json& l) {
      return fmt::format("{} {} {}", l["order_id"].get<std::string>(), l["kind"].get<std::string>(), l["level"].get<int>());
    };
    std::map<std::string, const Json*> la, lb;
    for (const auto& l : a["lines"]) la[key(l)] = &l;
    for (const auto& l : b["lines"]) lb[key(l)] = &l;
    Json lines = Json::array();
    for (const auto& [k, l] : la) {
      auto it = lb.find(k);
      if (it == lb.end()) {
        lines.push_back({{"line", k}, {"only_in", "a"}, {"amount_fen", (*l)["amount_fen"]}});
        continue;
      }
      Json d = Json::object();
      for (auto f = l->begin(); f != l->end(); ++f) {
        const Json& bv = (*it->second)[f.key()];
        if (f.value() != bv) d[f.key()] = {{"a", f.value()}, {"b", bv}};
      }
      if (!d.empty()) lines.push_back({{"line", k}, {"fields", std::move(d)}});
    }
    for (const auto& [k, l] : lb) {
      if (!la.count(k)) lines.push_back({{"line", k}, {"only_in", "b"}, {"amount_fen", (*l)["amount_fen"]}});
    }
    if (!lines.empty()) fields["lines"] = std::move(lines);
  }
  return fields;
}

}  // namespace

Digest DigestOf(Store& store) {
  Digest d;
  XXH3_state_t* st = XXH3_createState();
  XXH3_128bits_reset(st);
  ExportKeyed(store, [&](int kind, std::string_view, const std::string& line) {
    XXH3_128bits_update(st, line.data(), line.size());
    XXH3_128bits_update(st, "\n", 1);
    ++d.lines;
    ++d.kinds[kKinds[kind]];
  });
  const XXH128_hash_t h = XXH3_128bits_digest(st);
  XXH3_freeState(st);
  d.hash = fmt::format("xxh3-128:{:016x}{:016x}", h.high64, h.low64);
  return d;
}

DiffReport Diff(Store& a, Store& b, const DiffOptions& options) {
  DiffReport r;
  Json differing = Json::object(), only_a = Json::object(), only_b = Json::object(), listed = Json::array();
  Json totals_a = Json::object(), totals_b = Json::object();
  for (const char* f : kMoneyFields) totals_a[f] = 0, totals_b[f] = 0;
  auto bump = [](Json& counts, const char* kind) { counts[kind] = counts.value(kind, 0) + 1; };
  auto add_totals = [&](Json& totals, const Json& d) {
    for (const char* f : kMoneyFields) totals[f] = totals[f].get<int64_t>() + d[f].get<int64_t>();
  };
  auto list = [&](Json entry) {
    if (static_cast<int>(listed.size()) < options.max_listed) listed.push_back(std::move(entry));
  };
  auto id_of = [](const Json& j) {
    return j["tenant"].get<std::string>() + "/" + (j["id"].is_null() ? std::string("-") : j["id"].get<std::string>());
  };
  ExportStream sa(a), sb(b);
  for (;;) {
    const Keyed* x = sa.Peek();
    const Keyed* y = sb.Peek();
    if (!x && !y) break;
    const bool take_a = x && (!y || std::tie(x->kind, x->key) < std::tie(y->kind, y->key));
    const bool take_b = y && (!x || std::tie(y->kind, y->key) < std::tie(x->kind, x->key));
    const char* kind = kKinds[(take_b ? y : x)->kind];
    const bool listable = std::string_view(kind) != "order" && std::string_view(kind) != "rejection";
    if (take_a || take_b) {
      Json j = Json::parse((take_a ? x : y)->line);
      if (std::string_view(kind) == "distributor") add_totals(take_a ? totals_a : totals_b, j);
      bump(take_a ? only_a : only_b, kind);
      if (listable) list({{"kind", kind}, {"id", id_of(j)}, {"only_in", take_a ? "a" : "b"}});
      r.same = false;
      (take_a ? sa : sb).Pop();
      continue;
    }
    if (x->line != y->line) {
      Json ja = Json::parse(x->line), jb = Json::parse(y->line);
      bump(differing, kind);
      r.same = false;
      if (listable) list({{"kind", kind}, {"id", id_of(ja)}, {"fields", FieldDiffs(kind, ja, jb)}});
      if (std::string_view(kind) == "distributor") add_totals(totals_a, ja), add_totals(totals_b, jb);
    } else if (std::string_view(kind) == "distributor") {
      Json j = Json::parse(x->line);
      add_totals(totals_a, j), add_totals(totals_b, j);
    }
    sa.Pop();
    sb.Pop();
  }
  Json totals = Json::object();
  for (const char* f : kMoneyFields) {
    const int64_t va = totals_a[f].get<int64_t>(), vb = totals_b[f].get<int64_t>();
    totals[f] = {{"a", va}, {"b", vb}, {"delta", vb - va}};
  }
  r.json["same"] = r.same;
  r.json["differing"] = std::move(differing);
  r.json["only_in_a"] = std::move(only_a);
  r.json["only_in_b"] = std::move(only_b);
  r.json["distributor_totals"] = std::move(totals);
  r.json["listed"] = listed.size();
  r.json["entities"] = std::move(listed);
  return r;
}

void PrintDiff(const DiffReport& r, const std::string& name_a, const std::string& name_b, std::ostream& out) {
  out << fmt::format("a = {}\nb = {}\n", name_a, name_b);
  if (r.same) {
    out << "no differences\n";
    return;
  }
  for (const auto& e : r.json["entities"]) {
    if (e.contains("only_in")) {
      out << fmt::format("{} {}: only in {}\n", e["kind"].get<std::string>(), e["id"].get<std::string>(),
                         e["only_in"].get<std::string>());
      continue;
    }
    out << fmt::format("{} {}:\n", e["kind"].get<std::string>(), e["id"].get<std::string>());
    for (auto f = e["fields"].begin(); f != e["fields"].end(); ++f) {
      if (f.key() == "lines") {
        for (const auto& l : f.value()) {
          if (l.contains("only_in")) {
            out << fmt::format("    line {}: only in {} ({} fen)\n", l["line"].get<std::string>(),
                               l["only_in"].get<std::string>(), l["amount_fen"].dump());
          } else {
            std::string parts;
            for (auto g = l["fields"].begin(); g != l["fields"].end(); ++g) {
              parts += fmt::format(" {} {} -> {};", g.key(), Show(g.value()["a"]), Show(g.value()["b"]));
            }
            out << fmt::format("    line {}:{}\n", l["line"].get<std::string>(), parts);
          }
        }
        continue;
      }
      const Json& d = f.value();
      out << fmt::format("    {}: {} -> {}{}\n", f.key(), Show(d["a"]), Show(d["b"]),
                         d.contains("delta") ? fmt::format(" ({:+})", d["delta"].get<int64_t>()) : "");
    }
  }
  const size_t listed = r.json["listed"].get<size_t>();
  int64_t total = 0;
  for (const char* k : {"differing", "only_in_a", "only_in_b"}) {
    for (const auto& [kind, n] : r.json[k].items()) {
      if (kind != "order" && kind != "rejection") total += n.get<int64_t>();
    }
  }
  if (static_cast<int64_t>(listed) < total) out << fmt::format("... {} more not listed (--max-listed)\n", total - static_cast<int64_t>(listed));
  out << "\nsummary:\n";
  for (const char* k : {"differing", "only_in_a", "only_in_b"}) {
    for (const auto& [kind, n] : r.json[k].items()) out << fmt::format("  {} {}: {}\n", kind, k, n.get<int64_t>());
  }
  out << "distributor totals (fen):            a               b           delta\n";
  for (const auto& [f, v] : r.json["distributor_totals"].items()) {
    out << fmt::format("  {:<16} {:>16} {:>15} {:>+15}\n", f, v["a"].get<int64_t>(), v["b"].get<int64_t>(),
                       v["delta"].get<int64_t>());
  }
}

}  // namespace fission
