#include "engine/server.h"

#include <fmt/format.h>
#include <httplib.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <fstream>
#include <sstream>
#include <vector>

#include "events/decode.h"
#include "events/time.h"

namespace fission {
namespace {


std::vector<std::string> Split(const std::string& path) {
  std::vector<std::string> parts;
  std::string cur;
  for (char c : path) {
    if (c == '/') {
      if (!cur.empty()) parts.push_back(std::move(cur));
      cur.clear();
    } else {
      cur.push_back(c);
    }
  }
  if (!cur.empty()) parts.push_back(std::move(cur));
  return parts;
}

void SendJson(httplib::Response& res, int status, const Json& j) {
  res.status = status;
  res.set_content(Dump(j, 2) + "\n", "application/json");
}

void SendError(httplib::Response& res, const ApiError& e) {
  Json j;
  // Messages echo parts of the request, which may be any bytes; JSON must be UTF-8.
  j["error"] = {{"code", e.code}, {"message", ValidUtf8(e.message)}};
  SendJson(res, e.status, j);
}

// Constant-time comparison, so a token cannot be guessed byte by byte from timings.
bool SameToken(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  unsigned char d = 0;
  for (size_t i = 0; i < a.size(); ++i) d |= static_cast<unsigned char>(a[i] ^ b[i]);
  return d == 0;
}

}  // namespace

Result<std::map<std::string, Token>, std::string> LoadTokens(const std::string& path) {
  using R = Result<std::map<std::string, Token>, std::string>;
  std::ifstream in(path);
  if (!in) return R::Error(fmt::format("cannot read tokens file '{}'", path));
  std::map<std::string, Token> tokens;
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (auto h = line.find('#'); h != std::string::npos) line.resize(h);
    std::istringstream ls(line);
    std::string token, tenant, role, extra;
    if (!(ls >> token)) continue;
    if (!(ls >> tenant >> role) || (ls >> extra)) {
      return R::Error(fmt::format("{}:{}: expected 'TOKEN TENANT ROLE'", path, n));
    }
    if (token.size() < 16) return R::Error(fmt::format("{}:{}: token shorter than 16 characters", path, n));
    if (tenant != "*" && !IsValidId(tenant, 64)) return R::Error(fmt::format("{}:{}: tenant '{}' is not a valid id or *", path, n, tenant));
    if (role != "auditor" && role != "support") return R::Error(fmt::format("{}:{}: role '{}' is not auditor or support", path, n, role));
    if (!tokens.emplace(token, Token{tenant, role}).second) return R::Error(fmt::format("{}:{}: token repeated", path, n));
  }
  return tokens;
}

ApiServer::ApiServer(QueryService& query, Metrics& metrics, std::map<std::string, Token> tokens,
                     std::function<void()> before_request)
    : query_(query), metrics_(metrics), tokens_(std::move(tokens)), before_(std::move(before_request)),
      http_(std::make_unique<httplib::Server>()) {
  auto handle = [this](const httplib::Request& req, httplib::Response& res) {
    const auto start = std::chrono::steady_clock::now();
    std::string route = "other";
    try {
      route = Handle(req, res);
    } catch (const std::exception& ex) {
      SendError(res, {500, "internal", ex.what()});
    }
    metrics_.ObserveHttp(route, res.status,
                         std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  };
  http_->Get(".*", handle);
  auto not_allowed = [this](const httplib::Request&, httplib::Response& res) {
    SendError(res, {405, "method_not_allowed", "this API is read-only: GET only"});
    metrics_.ObserveHttp("other", 405, 0);
  };
  http_->Post(".*", not_allowed);
  http_->Put(".*", not_allowed);
  http_->Delete(".*", not_allowed);
  http_->Patch(".*", not_allowed);
  // Headers and body go out in separate writes: without TCP_NODELAY, Nagle's
  // algorithm meets the client's delayed ACK and every answer waits ~40 ms.
  http_->set_tcp_nodelay(true);
}

ApiServer::~ApiServer() { Stop(); }

std::optional<std::string> ApiServer::Bind(const ServerOptions& o) {
  http_->new_task_queue = [n = o.threads] { return new httplib::ThreadPool(static_cast<size_t>(n)); };
  if (o.port == 0) {
    port_ = http_->bind_to_any_port(o.host);
    if (port_ <= 0) return fmt::format("cannot listen on {}: no free port", o.host);
  } else {
    if (!http_->bind_to_port(o.host, o.port)) return fmt::format("cannot listen on {}:{} (in use, or not an address of this machine)", o.host, o.port);
    port_ = o.port;
  }
  return std::nullopt;
}

void ApiServer::Start() {
  thread_ = std::thread([this] { http_->listen_after_bind(); });
}

void ApiServer::Serve() { http_->listen_after_bind(); }

void ApiServer::Stop() {
  if (http_) http_->stop();
  if (thread_.joinable()) thread_.join();
}

std::string ApiServer::Handle(const httplib::Request& req, httplib::Response& res) {
  const std::vector<std::string> p = Split(req.path);
  if (p.size() == 1 && p[0] == "metrics") {
    res.set_content(metrics_.Scrape(), "text/plain; version=0.0.4");
    return "/metrics";
  }
  if (before_) before_();
  if (p.size() == 1 && p[0] == "healthz") {
    SendJson(res, 200, query_.Health());
    return "/healthz";
  }
  if (p.size() < 3 || p[0] != "v1") {
    SendError(res, {404, "no_route", fmt::format("no route {}; see GET /v1/{{tenant}}/...", req.path)});
    return "other";
  }
  const std::string& tenant = p[1];
  const std::string& what = p[2];
  // The route label, with ids elided (bounded cardinality).
  std::string route = "/v1/{tenant}/" + what;
  if (p.size() == 4) route += what == "audit" ? "/" + p[3] : "/{id}";
  // Authentication before anything else is revealed, even a 404.
  std::string token;
  const std::string auth = req.get_header_value("Authorization");
  if (auth.rfind("Bearer ", 0) == 0) token = auth.substr(7);
  const Token* who = nullptr;
  for (const auto& [t, tok] : tokens_) {
    if (SameToken(t, token)) who = &tok;
  }
  if (!who) {
    res.set_header("WWW-Authenticate", "Bearer");
    SendError(res, {401, "unauthorized",
                    tokens_.empty() ? "no tokens are configured: start the server with --tokens FILE"
                                    : token.empty() ? "send Authorization: Bearer TOKEN"
                                                    : "unknown token"});
    return route;
  }
  if (who->tenant != "*" && who->tenant != tenant) {
    SendError(res, {403, "forbidden", "this token is not for this tenant"});
    return route;
  }
  if (!IsValidId(tenant, 64)) {
    SendError(res, {400, "bad_parameter", "tenant: not a valid id ([A-Za-z0-9_.:-], 1-64)"});
    return route;
  }
  auto params = ParseQueryParams(req.params);
  if (!params.ok()) {
    SendError(res, params.error());
    return route;
  }
  const std::optional<int64_t> as_of = params.value().as_of_ms;
  const Page page = params.value().page;
  auto answer = [&](const ApiResult& r) {
    if (r.ok()) {
      SendJson(res, 200, r.value());
    } else {
      SendError(res, r.error());
    }
  };
  auto bad_id = [&](const std::string& id, size_t max) {
    if (IsValidId(id, max)) return false;
    SendError(res, {400, "bad_parameter", fmt::format("'{}' is not a valid id ([A-Za-z0-9_.:-], 1-{})", Clip(id), max)});
    return true;
  };
  auto refuse_as_of = [&]() {
    if (!as_of) return false;
    SendError(res, {400, "bad_parameter", "as_of is not supported on this route"});
    return true;
  };
  const bool auditor = who->role == "auditor";
  if (p.size() == 3 && what == "distributors") {
    if (refuse_as_of()) return route;
    answer(query_.Leaderboard(tenant, params.value().sort.value_or("settled_fen"),
                              params.value().has_limit ? page.limit : 10));
  } else if (p.size() == 4 && what == "distributors") {
    if (bad_id(p[3], 64)) return route;
    answer(query_.Distributor(tenant, p[3], as_of, page));
  } else if (p.size() == 4 && what == "groups") {
    if (bad_id(p[3], 64)) return route;
    answer(query_.Group(tenant, p[3], as_of));
  } else if (p.size() == 4 && what == "members") {
    if (bad_id(p[3], 64)) return route;
    answer(query_.Member(tenant, p[3], as_of));
  } else if (p.size() == 4 && what == "orders") {
    if (bad_id(p[3], 64) || refuse_as_of()) return route;
    answer(query_.Order(tenant, p[3]));
  } else if (p.size() == 3 && what == "rejections") {
    if (refuse_as_of()) return route;
    answer(query_.Rejections(tenant, params.value().reason.value_or(""), page));
  } else if (p.size() == 4 && what == "events") {
    if (!auditor) {
      SendError(res, {403, "forbidden", "events are for the auditor role"});
      return route;
    }
    if (bad_id(p[3], 128) || refuse_as_of()) return route;
    answer(query_.Event(tenant, p[3]));
  } else if (p.size() == 4 && what == "audit" && p[3] == "checks") {
    if (!auditor) {
      SendError(res, {403, "forbidden", "ledger checks are for the auditor role"});
      return route;
    }
    if (refuse_as_of()) return route;
    answer(query_.AuditChecks(tenant));
  } else {
    SendError(res, {404, "no_route", fmt::format("no route {}", req.path)});
    return "other";
  }
  return route;
}

}  // namespace fission
