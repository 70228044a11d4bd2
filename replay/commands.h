// Finance's commands: replay, archive, digest, diff, statement. The CLI
// (engine/main.cc) parses flags and calls these; each returns the process
// exit code (0 ok, 1 a finding such as "the data dirs differ", 2 an error).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "engine/kafka.h"
#include "engine/store/state_db.h"

namespace fission {

struct ReplayArgs {
  std::string from;  // data dir, archive file, or kafka:TOPIC
  std::string rules;
  std::string out;
  std::string until;  // RFC 3339, or empty
  bool no_history = false;
  bool no_decode_thread = false;  // decode on the folding thread (EngineOptions::decode_thread)
  bool quiet = false;
  int64_t allowed_lateness_ms = 60'000;
  std::optional<kafka::Settings> kafka;
  DbOptions db;  // memory settings of the new data dir (commits are not synced one by one)
  uint64_t memory_budget_bytes = 0;  // ProcessorOptions::memory_budget_bytes (0: none)
};
int RunReplay(const ReplayArgs& a);

struct ArchiveArgs {
  std::string from;
  std::string out;
  bool quiet = false;
  std::optional<kafka::Settings> kafka;
};
int RunArchive(const ArchiveArgs& a);

int RunDigest(const std::string& data_dir);
int RunDiff(const std::string& a, const std::string& b, bool json, int max_listed);

struct StatementArgs {
  std::string data_dir, from, to, tenant, format = "csv";
  bool movements = false;
};
int RunStatement(const StatementArgs& a);

}  // namespace fission
