// The read-only HTTP API over a data dir (cpp-httplib), with /metrics.
//
//   GET /healthz                                  no token needed
//   GET /metrics                                  no token needed (Prometheus text)
//   GET /v1/{tenant}/distributors?sort=&limit=    leaderboard
//   GET /v1/{tenant}/distributors/{id}?as_of=&after=&limit=
//   GET /v1/{tenant}/groups/{id}?as_of=
//   GET /v1/{tenant}/members/{id}?as_of=
//   GET /v1/{tenant}/orders/{id}
//   GET /v1/{tenant}/rejections?reason=&after=&limit=
//   GET /v1/{tenant}/events/{event_id}            role auditor
//   GET /v1/{tenant}/audit/checks                 role auditor
//
// Every /v1 request needs "Authorization: Bearer TOKEN" with a token from the
// tokens file whose tenant is the path's tenant (or "*"). Errors are JSON
// {"error":{"code","message"}}: 400 bad parameter, 401 no or unknown token,
// 403 another tenant's data or a role without the right, 404 unknown id or
// route, 405 a method other than GET, 409 as_of without complete history.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <memory>
#include <string>
#include <thread>

#include "engine/metrics.h"
#include "engine/params.h"
#include "engine/query.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}

namespace fission {

struct Token {
  std::string tenant;  // or "*"
  std::string role;    // "auditor" (everything) or "support" (records, not events or checks)
};

// Reads a tokens file: one "TOKEN TENANT ROLE" per line, # comments. Refuses
// (naming the line) short tokens, bad tenants, unknown roles and repeats.
Result<std::map<std::string, Token>, std::string> LoadTokens(const std::string& path);

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;  // 0: any free port (see port())
  int threads = 8;
};

class ApiServer {
 public:
  // `before_request` (optional) runs before each /v1 or /healthz answer (a
  // follower catches up there).
  ApiServer(QueryService& query, Metrics& metrics, std::map<std::string, Token> tokens,
            std::function<void()> before_request = nullptr);
  ~ApiServer();

  // Binds the listening socket; an error names the address.
  [[nodiscard]] std::optional<std::string> Bind(const ServerOptions& options);
  int port() const { return port_; }
  // Serves on a background thread until Stop().
  void Start();
  // Serves on this thread until Stop() from another.
  void Serve();
  void Stop();

 private:
  // Answers one GET; returns the route label for the metrics.
  std::string Handle(const httplib::Request& req, httplib::Response& res);

  QueryService& query_;
  Metrics& metrics_;
  std::map<std::string, Token> tokens_;
  std::function<void()> before_;
  std::unique_ptr<httplib::Server> http_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace fission
