// Helpers shared by the tests that touch files and data dirs.
#pragma once

#include <gtest/gtest.h>

#include <fmt/format.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "engine/store/state_db.h"
#include "projections/export.h"
#include "projections/processor.h"
#include "replay/synth.h"
#include "tests/scenario.h"

namespace fission::test {

// A fresh directory under the system temp dir, removed with the object.
class TempDir {
 public:
  TempDir() {
    path_ = std::filesystem::temp_directory_path() / fmt::format("fission-test-{}-{}", getpid(), counter_++);
    std::filesystem::remove_all(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string str() const { return path_.string(); }

 private:
  static inline int counter_ = 0;
  std::filesystem::path path_;
};

// The whole content of a file ("" if it cannot be read).
inline std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The canonical export of a data dir, opened read-only.
inline std::string ExportDir(const std::string& dir) {
  auto db = StateDb::OpenReadOnly(dir);
  EXPECT_TRUE(db.ok()) << (db.ok() ? "" : db.error().message);
  if (!db.ok()) return "";
  std::ostringstream out;
  ExportAll(*db.value(), out);
  return out.str();
}

struct Stream {
  std::string events;
  std::string rules;
};

// A seeded synthetic stream with some hostile input, and its rules.
inline Stream Synthetic(uint64_t seed, int64_t members, int64_t days) {
  SynthOptions o;
  o.seed = seed;
  o.members = members;
  o.days = days;
  o.bad_fraction = 0.01;
  o.duplicate_fraction = 0.01;
  o.very_late_fraction = 0.002;
  Stream s;
  Synthesize(o, [&](const std::string& l) { s.events += l + "\n"; });
  s.rules = SynthRulesJson(o);
  return s;
}

// The export of the pure fold over the stream (a MemStore, no engine).
inline std::string PureExport(const Stream& st) {
  RuleBook rules = MustParseRules(st.rules);
  MemStore store;
  Processor p(rules, store, ProcessorOptions{});
  std::istringstream in(st.events);
  int64_t n = 0;
  for (std::string l; std::getline(in, l);) p.OfferJson("stream.jsonl", ++n, l);
  p.Flush();
  p.Checkpoint(n);
  ExpectLedgerBalanced(store);
  std::ostringstream out;
  ExportAll(store, out);
  return out.str();
}

}  // namespace fission::test
