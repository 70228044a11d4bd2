// Helpers shared by the tests that touch files and data dirs.
#pragma once

#include <gtest/gtest.h>

#include <fmt/format.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "engine/state_db.h"
#include "projections/export.h"

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

}  // namespace fission::test
